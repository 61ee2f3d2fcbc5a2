//! What can go wrong with an HTTPS request, and how hyper's and rustls' errors are sorted into
//! it.

use std::io;
use std::time::Duration;

use super::{MAX_HEAD, MAX_HEADERS};

/// Why a request failed. Display gives the URL and what happened; it never includes a request
/// or response body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsError {
    /// The URL does not start with `https://`.
    #[error("{url}: not an https:// URL (only HTTPS is used)")]
    NotHttps {
        /// The URL.
        url: String,
    },
    /// The URL could not be understood.
    #[error("{url}: bad URL: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name could not be looked up.
    #[error("{url}: could not look up {host}: {source}")]
    Resolve {
        /// The URL.
        url: String,
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No address of the host accepted a TCP connection.
    #[error("{url}: could not connect to {host} port {port}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The last address's error.
        source: io::Error,
    },
    /// The server's certificate was refused.
    #[error("{url}: the server's certificate was refused: {reason}")]
    Certificate {
        /// The URL.
        url: String,
        /// Why (rustls' words).
        reason: String,
    },
    /// The TLS handshake failed for another reason.
    #[error("{url}: TLS handshake failed: {reason}")]
    Tls {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Sending the request or reading the response failed.
    #[error("{url}: connection failed: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The error.
        source: io::Error,
    },
    /// The whole operation, redirects included, took longer than the timeout.
    #[error("{url}: no complete answer within {}", secs(*after))]
    Timeout {
        /// The URL first asked for.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The answer was not the one asked for: not 200 where only 200 will do
    /// (`Response::require_ok`).
    #[error(
        "{url}: the server answered with status {status}{}",
        reason_suffix(reason)
    )]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The reason phrase, as sent.
        reason: String,
    },
    /// The body is larger than allowed.
    #[error("{url}: the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The answer is not valid HTTP/1.1, or ended before it was complete.
    #[error("{url}: malformed HTTP response: {reason}")]
    Malformed {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// More than `MAX_REDIRECTS` (3) redirects.
    #[error("{url}: more than {limit} redirects")]
    TooManyRedirects {
        /// The URL first asked for.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A redirect pointed to something other than `https://`.
    #[error("{url}: redirect to {location}, which is not https://: refused")]
    RedirectNotHttps {
        /// The URL that redirected.
        url: String,
        /// Where it pointed.
        location: String,
    },
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

/// A TLS handshake error, told apart: certificate refused, or another TLS failure (the
/// connection closed during the handshake among them).
pub(super) fn handshake_error(url: &str, error: io::Error) -> HttpsError {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(e)) => HttpsError::Certificate {
            url: url.to_owned(),
            reason: e.to_string(),
        },
        Some(other) => HttpsError::Tls {
            url: url.to_owned(),
            reason: other.to_string(),
        },
        None => HttpsError::Tls {
            url: url.to_owned(),
            reason: error.to_string(),
        },
    }
}

/// An error of hyper's while the request was sent or the answer read: an answer that is not
/// HTTP/1.1, or too large a head, or one cut short, is [`HttpsError::Malformed`]; a failure of
/// the connection itself is [`HttpsError::Io`].
pub(super) fn exchange_error(url: &str, error: hyper::Error) -> HttpsError {
    let malformed = |reason: String| HttpsError::Malformed {
        url: url.to_owned(),
        reason,
    };
    if error.is_parse_too_large() {
        return malformed(format!(
            "the status line and headers are over {MAX_HEAD} bytes or {MAX_HEADERS} lines"
        ));
    }
    if error.is_parse() {
        // hyper's words: "invalid HTTP version parsed", "invalid HTTP status-code parsed" …
        return malformed(error.to_string());
    }
    if error.is_incomplete_message() {
        return malformed(
            "the connection ended before the status line and headers were complete".into(),
        );
    }
    let Some(io) = io_cause(&error) else {
        return HttpsError::Io {
            url: url.to_owned(),
            source: io::Error::other(error.to_string()),
        };
    };
    let from_tls = io
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>());
    match io.kind() {
        // A body cut short: hyper's "end of file before message length reached", or a TLS
        // connection closed without close_notify while the body ran until the close.
        io::ErrorKind::UnexpectedEof => malformed(format!(
            "the connection ended before the end of the body ({io})"
        )),
        // hyper's body decoder: "Invalid chunk size line: missing size digit" …
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if !from_tls => {
            malformed(io.to_string())
        }
        _ => HttpsError::Io {
            url: url.to_owned(),
            source: io::Error::new(io.kind(), io.to_string()),
        },
    }
}

/// Whether `error` says what went wrong: a parse error, an answer cut short, or an I/O error
/// underneath (rather than hyper's bare "connection error" to a body reader).
pub(super) fn is_informative(error: &hyper::Error) -> bool {
    error.is_parse() || error.is_incomplete_message() || io_cause(error).is_some()
}

/// The I/O error under a hyper error, if there is one.
fn io_cause(error: &hyper::Error) -> Option<&io::Error> {
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_url_and_what_happened() {
        let e = HttpsError::Status {
            url: "https://h.example/x".into(),
            status: 404,
            reason: "Not Found".into(),
        };
        assert_eq!(
            e.to_string(),
            "https://h.example/x: the server answered with status 404 (Not Found)"
        );
        let e = HttpsError::Timeout {
            url: "https://h.example/x".into(),
            after: Duration::from_millis(500),
        };
        assert_eq!(
            e.to_string(),
            "https://h.example/x: no complete answer within 0.5 s"
        );
    }
}
