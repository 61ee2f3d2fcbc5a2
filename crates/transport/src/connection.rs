//! A connection to a mail server: one stream, one read buffer for its whole life, reads driven
//! by a codec decoder, writes with timeouts, and a deadline for every response.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mailcat_codec::DecodeError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::connect::timeout_error;
use crate::error::{Error, Step};
use crate::stream::MailStream;
use crate::trace::{self, Redaction};
use crate::{Endpoint, Timeouts};

/// Bytes read from the socket at a time (at least).
const READ_CHUNK: usize = 64 * 1024;

/// A connection: the stream, its read buffer, the endpoint (for error messages) and timeouts.
///
/// Bytes are never dropped between calls: whatever the server sent beyond one response stays
/// in the buffer for the next [`Connection::read_frame`]. Only STARTTLS refuses to carry buffered
/// bytes over (see [`crate::dialogue::MailConnection::starttls`]).
#[derive(Debug)]
pub struct Connection<S> {
    stream: MailStream<S>,
    buf: BytesMut,
    endpoint: Endpoint,
    timeouts: Timeouts,
    eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// A connection over an established stream.
    pub fn new(stream: MailStream<S>, endpoint: Endpoint, timeouts: Timeouts) -> Self {
        Connection {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            endpoint,
            timeouts,
            eof: false,
        }
    }

    /// The server this connection goes to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// True once TLS protects the connection.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The negotiated TLS version and cipher suite, if TLS is up.
    pub fn tls_description(&self) -> Option<String> {
        self.stream.tls_description()
    }

    /// How many received bytes are waiting in the buffer, not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Reads until `decode` finds a whole frame at the front of the buffer, then consumes it.
    ///
    /// `decode` gets the decoder `state` and every byte buffered so far, and answers `Ok((used, value))`,
    /// `Err(DecodeError::Incomplete)` or a final error. Returns the value and the consumed bytes
    /// (zero-copy: a body chunk the value points into can be sliced out of them). The silence
    /// between two reads is limited by the read timeout (the greeting timeout for
    /// [`Step::Greeting`]), the whole frame by the response deadline. When the server closes
    /// the connection mid-frame, `end_of_input` explains what was cut off.
    pub async fn read_frame<D, T>(
        &mut self,
        step: Step,
        state: &mut D,
        mut decode: impl FnMut(&mut D, &[u8]) -> Result<(usize, T), DecodeError>,
        end_of_input: impl FnOnce(&D, &[u8]) -> DecodeError,
    ) -> Result<(T, Bytes), Error> {
        let silence = if step == Step::Greeting {
            self.timeouts.greeting
        } else {
            self.timeouts.read
        };
        let deadline = Instant::now() + self.timeouts.response;
        loop {
            if !self.buf.is_empty() {
                match decode(state, &self.buf) {
                    Ok((used, value)) => {
                        let raw = self.buf.split_to(used).freeze();
                        trace::server(&raw);
                        return Ok((value, raw));
                    }
                    Err(DecodeError::Incomplete) => {}
                    Err(source) => {
                        trace::server(&self.buf);
                        return Err(Error::Protocol {
                            host: self.endpoint.host.clone(),
                            protocol: self.endpoint.protocol,
                            step,
                            source,
                        });
                    }
                }
            }
            if self.eof {
                let detail = (!self.buf.is_empty()).then(|| end_of_input(state, &self.buf));
                return Err(Error::Closed {
                    host: self.endpoint.host.clone(),
                    step,
                    detail,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout_error(
                    &self.endpoint,
                    step,
                    self.timeouts.response,
                    None,
                ));
            }
            let (wait, limit) = if left < silence {
                (left, self.timeouts.response)
            } else {
                (silence, silence)
            };
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            match timeout(wait, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(_)) => {}
                // A TLS peer that closes without close_notify: an end like any other. Mail
                // responses are framed, so a cut response is still reported as incomplete.
                Ok(Err(source)) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                }
                Ok(Err(source)) => {
                    return Err(Error::Io {
                        host: self.endpoint.host.clone(),
                        step,
                        source,
                    });
                }
                Err(_) => return Err(timeout_error(&self.endpoint, step, limit, None)),
            }
        }
    }

    /// Writes `bytes` and flushes, within the write timeout. `redaction` says what the trace
    /// may show.
    pub async fn send(&mut self, bytes: &[u8], redaction: Redaction) -> Result<(), Error> {
        trace::client(bytes, redaction);
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match timeout(self.timeouts.write, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(Error::Io {
                host: self.endpoint.host.clone(),
                step: Step::Write,
                source,
            }),
            Err(_) => Err(timeout_error(
                &self.endpoint,
                Step::Write,
                self.timeouts.write,
                None,
            )),
        }
    }

    /// Closes the connection (TLS close_notify, then TCP FIN), within the write timeout.
    pub async fn shutdown(mut self) {
        let _ = timeout(self.timeouts.write, self.stream.shutdown()).await;
    }

    /// Takes the connection apart: the stream and whatever is still buffered.
    pub(crate) fn into_parts(self) -> (MailStream<S>, BytesMut, Endpoint, Timeouts) {
        (self.stream, self.buf, self.endpoint, self.timeouts)
    }
}
