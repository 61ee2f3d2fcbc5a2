//! Recognising the wrong kind of server from its first bytes: a plaintext greeting (`* OK`,
//! `+OK`, `220 `) where a TLS record was due, or a TLS record where a greeting was due.
//!
//! Pure functions over bytes, for diagnosis only: the protocol cores (in `mailcat-session`) use
//! them on a greeting's first bytes, the handshakes here on what came instead of a ServerHello.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Protocol;

/// How many of the server's first bytes are kept for diagnosis.
const KEEP: usize = 64;

/// A stream that remembers the first bytes the server sent, so a failed TLS handshake can say
/// "this server speaks plaintext IMAP" instead of "corrupt message".
#[derive(Debug)]
pub struct Sniffed<S> {
    inner: S,
    first: Vec<u8>,
}

impl<S> Sniffed<S> {
    /// Wraps a stream.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            first: Vec::new(),
        }
    }

    /// The first bytes received (at most 64).
    pub fn first_bytes(&self) -> &[u8] {
        &self.first
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.first.len() < KEEP {
            let new = &buf.filled()[before..];
            let take = new.len().min(KEEP - self.first.len());
            let bytes = new[..take].to_vec();
            self.first.extend_from_slice(&bytes);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A plaintext greeting recognised in bytes that should have been TLS (or, at the start of a
/// plaintext connection, another protocol's greeting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaintextGreeting {
    /// The protocol it belongs to, when the greeting says (`* OK` is IMAP, `+OK` POP3, `220` SMTP).
    pub protocol: Option<Protocol>,
    /// The greeting's first line, escaped for display.
    pub text: String,
}

/// Recognises a plaintext mail greeting at the start of `bytes`.
pub fn plaintext_greeting(bytes: &[u8]) -> Option<PlaintextGreeting> {
    let protocol = if bytes.starts_with(b"* OK")
        || bytes.starts_with(b"* PREAUTH")
        || bytes.starts_with(b"* BYE")
    {
        Some(Protocol::Imap)
    } else if bytes.starts_with(b"+OK") || bytes.starts_with(b"-ERR") {
        Some(Protocol::Pop3)
    } else if bytes.len() >= 4
        && matches!(bytes[0], b'2'..=b'5')
        && bytes[1..3].iter().all(u8::is_ascii_digit)
        && matches!(bytes[3], b' ' | b'-')
    {
        // Any reply, not only a greeting (220, 421, 554): after STARTTLS an injected `250 …`
        // is plaintext where the ServerHello was due too.
        Some(Protocol::Smtp)
    } else {
        return None;
    };
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    Some(PlaintextGreeting {
        protocol,
        text: mailcat_codec::core::text::escape_bytes(&bytes[..line_end]),
    })
}

/// True if `bytes` start like a TLS record (handshake or alert, TLS 1.0 to 1.3 record version).
pub fn is_tls_record(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && matches!(bytes[0], 0x15 | 0x16) && bytes[1] == 0x03 && bytes[2] <= 0x04
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_protocols_greeting() {
        let imap = plaintext_greeting(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n").unwrap();
        assert_eq!(imap.protocol, Some(Protocol::Imap));
        assert_eq!(imap.text, "* OK [CAPABILITY IMAP4rev1] Dovecot ready.");
        assert_eq!(
            plaintext_greeting(b"+OK Dovecot ready.\r\n")
                .unwrap()
                .protocol,
            Some(Protocol::Pop3)
        );
        assert_eq!(
            plaintext_greeting(b"220 mx.example ESMTP\r\n")
                .unwrap()
                .protocol,
            Some(Protocol::Smtp)
        );
        assert_eq!(
            plaintext_greeting(b"220-multi\r\n").unwrap().protocol,
            Some(Protocol::Smtp)
        );
        assert_eq!(plaintext_greeting(b"\x16\x03\x03\x00\x2a"), None);
        assert_eq!(plaintext_greeting(b"2200"), None);
        assert_eq!(
            plaintext_greeting(b"250 injected\r\n").unwrap().protocol,
            Some(Protocol::Smtp)
        );
        assert_eq!(plaintext_greeting(b"\x15\x03\x03"), None);
    }

    #[test]
    fn escapes_what_it_shows() {
        let g = plaintext_greeting(b"* OK \x1b[31mred\r\n").unwrap();
        assert_eq!(g.text, "* OK \\x1b[31mred");
    }

    #[test]
    fn recognises_tls_records() {
        assert!(is_tls_record(b"\x16\x03\x01\x02\x00"));
        assert!(is_tls_record(b"\x15\x03\x03\x00\x02\x02\x46"));
        assert!(!is_tls_record(b"* OK"));
    }
}
