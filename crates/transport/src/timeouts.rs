//! How long each network step may take.
//!
//! The defaults follow what mail clients have long used: Thunderbird waits 100 s for a silent
//! server, curl 300 s for a connection; RFC 5321 §4.5.3.2 gives SMTP servers up to 5 minutes for
//! most replies and 10 minutes after the end of DATA. Every wait has a limit, and a whole
//! response has one too, so a server that drips a byte every few seconds cannot hold the client.

use std::time::Duration;

/// The limits for each step of a connection. All are configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// DNS resolution of the host name.
    pub resolve: Duration,
    /// One TCP connection attempt (each resolved address gets its own).
    pub connect: Duration,
    /// The TLS handshake, implicit or after STARTTLS.
    pub tls_handshake: Duration,
    /// The server's greeting after the connection (and TLS) is up.
    pub greeting: Duration,
    /// Silence between two reads while a response is due.
    pub read: Duration,
    /// One write of a command or body chunk.
    pub write: Duration,
    /// A whole response, however many reads it takes (a slow-drip defence).
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            resolve: Duration::from_secs(30),
            connect: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(30),
            greeting: Duration::from_secs(100),
            read: Duration::from_secs(100),
            write: Duration::from_secs(100),
            response: Duration::from_secs(600),
        }
    }
}

impl Timeouts {
    /// Every step limited to `limit` (the whole-response deadline to six times that), as
    /// `mailcat --timeout` sets them.
    pub fn uniform(limit: Duration) -> Self {
        Timeouts {
            resolve: limit,
            connect: limit,
            tls_handshake: limit,
            greeting: limit,
            read: limit,
            write: limit,
            response: limit.saturating_mul(6),
        }
    }
}
