//! One stream type for plaintext and TLS, so a connection keeps its type across STARTTLS.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;

use crate::fingerprint::Fingerprint;
use crate::sniff::Sniffed;

/// A byte stream to a mail server: plaintext (before STARTTLS, or by dangerous opt-in) or TLS.
///
/// Generic over the underlying stream so tests can run the whole stack over in-memory pipes.
#[derive(Debug)]
pub enum MailStream<S> {
    /// No encryption.
    Plain(S),
    /// TLS, with the server's first bytes kept for diagnosis.
    Tls(Box<TlsStream<Sniffed<S>>>),
}

impl<S> MailStream<S> {
    /// True once TLS protects the stream.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// The underlying stream (the TCP socket), under TLS if TLS is up: to tune the socket, never
    /// to read or write past the TLS layer.
    pub fn get_ref(&self) -> &S {
        match self {
            Self::Plain(s) => s,
            Self::Tls(tls) => tls.get_ref().0.get_ref(),
        }
    }

    /// The fingerprint of the certificate the server presented, if TLS is up.
    pub fn peer_certificate(&self) -> Option<Fingerprint> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(tls) => {
                let (_, session) = tls.get_ref();
                Some(Fingerprint::of(session.peer_certificates()?.first()?))
            }
        }
    }

    /// The negotiated TLS version and cipher suite, for display.
    pub fn tls_description(&self) -> Option<String> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(tls) => {
                let (_, session) = tls.get_ref();
                let version = session
                    .protocol_version()
                    .and_then(|v| v.as_str())
                    .unwrap_or("TLS");
                let suite = session
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))
                    .unwrap_or_default();
                Some(
                    format!("{} {}", version.replace('_', "."), suite)
                        .trim()
                        .to_owned(),
                )
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MailStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MailStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
