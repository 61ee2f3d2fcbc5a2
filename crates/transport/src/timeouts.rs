//! How long each network step may take.
//!
//! The defaults follow what mail clients have long used: Thunderbird waits 100 s for a silent
//! server, curl 300 s for a connection; RFC 5321 §4.5.3.2 gives SMTP servers up to 5 minutes for
//! most replies and 10 minutes after the end of DATA. Every wait has a limit: silence between two
//! reads is limited by [`Timeouts::read`], and a server that does send, but too little, is
//! stopped by a throughput floor ([`Timeouts::min_rate`] over windows of [`Timeouts::response`]),
//! so a server that drips a byte every few seconds cannot hold the client (threat model #37).

use std::time::Duration;

/// The default [`Timeouts::min_rate`]: 1 KiB/s.
const DEFAULT_MIN_RATE: u32 = 1024;

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
    /// The length of a progress window, the slow-drip defence (threat model #37).
    ///
    /// A window starts when the connection is made (for the greeting) and again with every
    /// command sent, and counts only the time spent waiting for the server (time the caller
    /// spends between reads is not the server's fault). When a window is over and the response
    /// is still unfinished, the server must have sent at least [`Timeouts::min_rate`] bytes a
    /// second during it; then the next window starts, else the read fails with a
    /// [`crate::Error::Timeout`] that says how little came. An answer that ends within one
    /// window is never judged by its rate, so a server may pause to think (each pause shorter
    /// than [`Timeouts::read`]) as long as its answer takes less than a window; a long download
    /// (a large body, a long listing) continues for as long as it keeps up the minimum rate,
    /// however long that takes.
    pub response: Duration,
    /// The throughput floor, in bytes per second, that a server must keep up over each
    /// [`Timeouts::response`] window while the client waits for it (like curl's
    /// `--speed-limit` with `--speed-time`); 0 turns the floor off, leaving only the silence
    /// limit [`Timeouts::read`].
    ///
    /// The default, 1024 bytes/s, is below the slowest links still in use (a 9.6 kbit/s GSM
    /// data call moves about 1,200 bytes/s; GPRS, EDGE and anything newer several times that)
    /// and far above a drip: a server that sends one byte a second, or one short line every few
    /// seconds, fails at the end of the first window (10 minutes with the defaults).
    pub min_rate: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            resolve: Duration::from_secs(30),
            connect: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(30),
            greeting: Duration::from_secs(100),
            read: Duration::from_secs(100),
            write: Duration::from_secs(100),
            response: Duration::from_secs(600),
            min_rate: DEFAULT_MIN_RATE,
        }
    }
}

impl Timeouts {
    /// Every step limited to `limit` (the progress window to six times that, the throughput
    /// floor at its default), as `mailcat --timeout` sets them.
    pub fn uniform(limit: Duration) -> Self {
        Self {
            resolve: limit,
            connect: limit,
            tls_handshake: limit,
            greeting: limit,
            read: limit,
            write: limit,
            response: limit.saturating_mul(6),
            min_rate: DEFAULT_MIN_RATE,
        }
    }
}
