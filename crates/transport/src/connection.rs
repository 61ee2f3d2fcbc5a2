//! A connection to a mail server: one stream, one read buffer for its whole life, reads driven
//! by a codec decoder, writes with timeouts, a silence limit for every read and a throughput
//! floor for every command's responses.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mailcat_codec::DecodeError;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

use crate::capture;
use crate::connect::{timeout_error, tls_handshake_after_starttls};
use crate::error::{Error, Step, TooSlow};
use crate::stream::MailStream;
use crate::trace::{self, Redaction};
use crate::{Endpoint, Timeouts};

/// Bytes read from the socket at a time (at least).
const READ_CHUNK: usize = 64 * 1024;

/// A connection: the stream, its read buffer, the endpoint (for error messages) and timeouts.
///
/// Bytes are never dropped between calls: whatever the server sent beyond one response stays
/// in the buffer for the next [`Connection::read_frame`]. Only STARTTLS refuses to carry buffered
/// bytes over (see [`Connection::upgrade_to_tls`]).
///
/// # The slow-drip defence (threat model #37)
///
/// Every read waits at most [`Timeouts::read`] for the next byte. That alone lets a server hold
/// the client forever by sending a byte just before each limit, and a streamed body or a
/// listing is many frames, so a limit per frame does not help either. So the connection keeps a
/// progress window: it starts when the connection is made and again with every
/// [`Connection::send`], and adds up the time spent waiting in [`Connection::read_frame`] and the
/// bytes received meanwhile. Whenever [`Timeouts::response`] of waiting have gone by, the
/// bytes must add up to [`Timeouts::min_rate`] a second: then a new window starts; else the
/// read fails with [`Error::Timeout`] carrying [`TooSlow`]. A timeout ends the window too, so a
/// caller that goes on waiting after one (IMAP IDLE, where silence is expected and each silence
/// timeout is ignored) starts a fresh window rather than failing at once.
#[derive(Debug)]
pub struct Connection<S> {
    stream: MailStream<S>,
    buf: BytesMut,
    endpoint: Endpoint,
    timeouts: Timeouts,
    eof: bool,
    window: Window,
    /// Bytes handed to the stream so far.
    written: u64,
}

/// The current progress window: time spent waiting for the server, and what came meanwhile.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    waited: Duration,
    received: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// A connection over an established stream.
    pub fn new(stream: MailStream<S>, endpoint: Endpoint, timeouts: Timeouts) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            endpoint,
            timeouts,
            eof: false,
            window: Window::default(),
            written: 0,
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

    /// The stream, plaintext or TLS: to tune its socket ([`crate::connect::ack_promptly`]).
    pub fn stream(&self) -> &MailStream<S> {
        &self.stream
    }

    /// The SHA-256 fingerprint of the certificate the server presented, if TLS is up.
    pub fn peer_certificate(&self) -> Option<crate::Fingerprint> {
        self.stream.peer_certificate()
    }

    /// How many bytes were handed to the stream so far, whether or not they all reached the
    /// server: while it stays the same, nothing was sent (a login that failed before its
    /// first byte did not use up the session's one attempt).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// How many received bytes are waiting in the buffer, not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Reads until `decode` finds a whole frame at the front of the buffer, then consumes it.
    ///
    /// `decode` gets the decoder `state` and every byte buffered so far, and answers `Ok((used, value))`,
    /// `Err(DecodeError::Incomplete)` or a final error. Returns the value and the consumed bytes
    /// (zero-copy: a body chunk the value points into can be sliced out of them). Timeouts as
    /// [`Connection::fill`]. When the server closes the connection mid-frame, `end_of_input`
    /// explains what was cut off.
    ///
    /// Cancel-safe: a read abandoned (in a `select!`) loses no bytes and leaves the window as it was.
    pub async fn read_frame<D, T>(
        &mut self,
        step: Step,
        state: &mut D,
        mut decode: impl FnMut(&mut D, &[u8]) -> Result<(usize, T), DecodeError>,
        end_of_input: impl FnOnce(&D, &[u8]) -> DecodeError,
    ) -> Result<(T, Bytes), Error> {
        loop {
            if !self.buf.is_empty() {
                match decode(state, &self.buf) {
                    Ok((used, value)) => return Ok((value, self.consume(used))),
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
                return Err(self.closed(step, detail));
            }
            self.fill(step).await?;
        }
    }

    /// The bytes received and not yet consumed: what a decoder looks at.
    pub fn input(&self) -> &[u8] {
        &self.buf
    }

    /// True once the server closed its side: nothing more will be added to [`Connection::input`].
    pub fn at_end(&self) -> bool {
        self.eof
    }

    /// Takes the first `used` bytes of the input (a decoded item), zero-copy, and traces them.
    ///
    /// # Panics
    /// If `used` is more than is buffered: a decoder never reports more than it was given.
    pub fn consume(&mut self, used: usize) -> Bytes {
        let raw = self.buf.split_to(used).freeze();
        trace::server(&raw);
        raw
    }

    /// The error for a server that closed the connection during `step`, with `detail` saying
    /// what was cut off (None when it closed between items).
    pub fn closed(&self, step: Step, detail: Option<DecodeError>) -> Error {
        Error::Closed {
            host: self.endpoint.host.clone(),
            step,
            detail,
        }
    }

    /// Reads more of the server's bytes into [`Connection::input`]: returns once at least one
    /// byte came, or the server closed its side ([`Connection::at_end`]).
    ///
    /// The silence before the first byte is limited by the read timeout (the greeting timeout
    /// for [`Step::Greeting`]); the progress window (see [`Connection`]) limits a server that
    /// is not silent but sends too little, across calls. Both end in [`Error::Timeout`].
    ///
    /// Cancel-safe: a read abandoned (in a `select!`) loses no bytes and leaves the window as it was.
    pub async fn fill(&mut self, step: Step) -> Result<(), Error> {
        if self.eof {
            return Ok(());
        }
        let silence = if step == Step::Greeting {
            self.timeouts.greeting
        } else {
            self.timeouts.read
        };
        let silence_ends = later(Instant::now(), silence);
        loop {
            // Still waiting for the server: judge the window if it is over.
            let window_left = self.judge_window(step)?;
            let now = Instant::now();
            let until = match window_left {
                Some(left) => silence_ends.min(later(now, left)),
                None => silence_ends,
            };
            self.make_room();
            let read = timeout_at(until, self.stream.read_buf(&mut self.buf)).await;
            let after = Instant::now();
            self.window.waited += after.saturating_duration_since(now);
            match read {
                Ok(result) => {
                    let n = self.took(result, step)?;
                    capture::server(self.endpoint.protocol, &self.buf[self.buf.len() - n..]);
                    self.window.received = self.window.received.saturating_add(n as u64);
                    return Ok(());
                }
                // The silence limit; otherwise the window is over and is judged next round.
                Err(_) if after >= silence_ends => {
                    self.window = Window::default();
                    return Err(timeout_error(&self.endpoint, step, silence, None));
                }
                Err(_) => {}
            }
        }
    }

    /// Takes in what the server has already sent without waiting for anything: bytes the
    /// kernel already holds, for a socket the runtime knows to be readable, join
    /// [`Connection::input`]. One poll of the stream's read, no timer (a zero-length timeout
    /// costs a timer tick, about 1 ms, per command). For the rule "nothing unsolicited before
    /// a command": the protocol core looks at the input afterwards.
    pub async fn take_arrived(&mut self) -> Result<(), Error> {
        if !self.buf.is_empty() || self.eof {
            return Ok(());
        }
        // Let the runtime take note of a socket that became readable since it last looked
        // (a scheduler round, no timer).
        tokio::task::yield_now().await;
        self.make_room();
        let read = {
            let mut read = std::pin::pin!(self.stream.read_buf(&mut self.buf));
            std::future::poll_fn(|cx| match read.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending => Poll::Ready(None),
            })
            .await
        };
        if let Some(result) = read {
            let n = self.took(result, Step::Response)?;
            capture::server(self.endpoint.protocol, &self.buf[self.buf.len() - n..]);
        }
        Ok(())
    }

    /// What the server has sent that nothing asked for, if anything: call it only when no
    /// reply is due, before a command that expects to be the only one in flight. This is the
    /// one place the rule "nothing unsolicited before a command" looks at the wire; the
    /// sessions' protocol cores decide what a finding means for their protocol.
    ///
    /// A reply that comes after the one that was read (a desync, or a second reply planted to
    /// answer the next command, threat model #52) may arrive in a later packet than the reply
    /// before it, so it is not in the buffer when that reply is read. So besides the bytes
    /// already buffered, this polls the stream's read exactly once and takes what it gives
    /// at once (bytes the kernel already holds, for a socket the runtime knows to be
    /// readable); a read that would wait counts as nothing. It never waits and never parks on
    /// a timer: a zero-length timeout costs a timer tick (about 1 ms) per command. Bytes
    /// still in flight cannot be seen by any such check; they are found as replies nobody
    /// asked for after the next reply ([`Connection::buffered`]).
    ///
    /// If anything is there, it returns its first line (lossy UTF-8, without CRLF, at most 200
    /// bytes) so the session can refuse to go on. The bytes stay buffered. A connection the
    /// server has closed reports nothing here: the command that follows finds out.
    pub async fn unsolicited(&mut self) -> Result<Option<String>, Error> {
        self.take_arrived().await?;
        if self.buf.is_empty() {
            return Ok(None);
        }
        let line = self.buf[..]
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let shown = &line[..line.len().min(200)];
        Ok(Some(String::from_utf8_lossy(shown).into_owned()))
    }

    /// Keeps room for at least a quarter of a read chunk at the end of the buffer.
    fn make_room(&mut self) {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
    }

    /// The outcome of one read into the buffer: the bytes it added, 0 at the end of the stream
    /// (which sets `eof`), or the error, named with `step`.
    fn took(&mut self, read: std::io::Result<usize>, step: Step) -> Result<usize, Error> {
        match read {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            // A TLS peer that closes without close_notify: an end like any other. Mail
            // responses are framed, so a cut response is still reported as incomplete.
            Err(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.eof = true;
                Ok(0)
            }
            Err(source) => Err(Error::Io {
                host: self.endpoint.host.clone(),
                step,
                source,
            }),
        }
    }

    /// The throughput floor. While the window lasts: how much of it is left (`None` when the
    /// floor is off). When it is over: a new window if the server kept up
    /// [`Timeouts::min_rate`], else the timeout that says how little came.
    fn judge_window(&mut self, step: Step) -> Result<Option<Duration>, Error> {
        let (length, min_rate) = (self.timeouts.response, self.timeouts.min_rate);
        if min_rate == 0 || length.is_zero() {
            return Ok(None);
        }
        let window = self.window;
        if window.waited < length {
            return Ok(Some(length - window.waited));
        }
        self.window = Window::default();
        let floor = u128::from(min_rate) * window.waited.as_millis() / 1000;
        if u128::from(window.received) >= floor {
            return Ok(Some(length));
        }
        Err(Error::Timeout {
            host: self.endpoint.host.clone(),
            port: self.endpoint.port,
            step,
            after: length,
            hint: None,
            too_slow: Some(TooSlow {
                received: window.received,
                during: window.waited,
                min_rate,
            }),
        })
    }

    /// Writes `bytes` and flushes, within the write timeout. `redaction` says what the trace
    /// may show.
    ///
    /// Starts a new progress window: the server's answer to this command is judged on its own.
    pub async fn send(&mut self, bytes: &[u8], redaction: Redaction) -> Result<(), Error> {
        self.window = Window::default();
        self.written = self.written.saturating_add(bytes.len() as u64);
        trace::client(bytes, redaction);
        capture::client(bytes, redaction);
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

    /// The mechanics of STARTTLS (STLS), once the protocol core has read the server's
    /// go-ahead: the one place a connection goes from plaintext to TLS.
    ///
    /// 1. If any byte is buffered, the upgrade is refused: after the go-ahead the server has
    ///    nothing to say until the handshake, so those bytes were injected by someone on the
    ///    path and would be taken for the first response over TLS (CVE-2021-22947).
    /// 2. The handshake verifies the certificate for the configured host; anything but a TLS
    ///    record in answer to the ClientHello is plaintext injected on the path too.
    /// 3. The result is a fresh connection: an empty buffer and a fresh progress window; the
    ///    caller forgets everything learned before and asks for the capabilities again
    ///    (RFC 3207 §4.2, RFC 2595 §3.1).
    pub async fn upgrade_to_tls(self, config: Arc<ClientConfig>) -> Result<Self, Error> {
        let Self {
            stream,
            buf,
            endpoint,
            timeouts,
            ..
        } = self;
        if !buf.is_empty() {
            trace::server(&buf);
            return Err(Error::StartTlsInjection {
                host: endpoint.host.clone(),
                command: endpoint.protocol.starttls_command(),
                buffered: buf.len(),
            });
        }
        let MailStream::Plain(plain) = stream else {
            return Err(Error::Protocol {
                host: endpoint.host.clone(),
                protocol: endpoint.protocol,
                step: Step::StartTls,
                source: DecodeError::Invalid {
                    offset: 0,
                    expected: "a plaintext connection (TLS is already on)",
                },
            });
        };
        let tls = tls_handshake_after_starttls(plain, &endpoint, config, &timeouts).await?;
        Ok(Self::new(
            MailStream::Tls(Box::new(tls)),
            endpoint,
            timeouts,
        ))
    }
}

/// `start + wait`, or some 30 years on when the sum would not fit (a limit set to "forever").
fn later(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(start)
}
