//! One scripted server for every test that plays the server's side of a mail protocol: a script
//! of what the client must send and what the server answers, played over an in-memory duplex
//! stream or a loopback TCP connection, in plain text or TLS (from the first byte, or switched
//! on by a [`Step::StartTls`] after a STARTTLS exchange).
//!
//! When the client sends something the script did not expect, the server's task panics with the
//! **transcript so far** (`C:` client lines, `S:` server bytes, `--` events), which the test
//! shows when it fails; [`Server::finish`] hands that panic to the test, and returns what the
//! client sent otherwise ([`Received`]).
//!
//! It depends on tokio and rustls only, never on the crates under test, so that a crate's own
//! tests can use it without two copies of that crate in one test binary: the tests wrap the
//! client's end ([`DuplexStream`] or a TCP address) in their own types.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use mailcat_tests::script::{expect, send, serve_duplex};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! let (client, server) = serve_duplex(vec![send("+OK ready\r\n"), expect("QUIT"), send("+OK\r\n")]);
//! let mut client = BufReader::new(client);
//! let mut line = String::new();
//! client.read_line(&mut line).await.unwrap();
//! assert_eq!(line, "+OK ready\r\n");
//! client.write_all(b"QUIT\r\n").await.unwrap();
//! drop(client);
//! assert_eq!(server.finish().await.text(), "QUIT\r\n");
//! # }
//! ```
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long the server waits for a connection, a TLS handshake or [`Step::ReadAny`], and
/// [`Server::finish`] (three times this) for the script to end: long enough for a slow machine,
/// short enough that a stuck test fails rather than hangs. An expected line is waited for
/// without a limit of its own (on a paused clock a client may idle for hours first); a client
/// that is stuck meets its own timeouts and closes.
pub const WAIT: Duration = Duration::from_secs(10);

/// One step of the server's part.
#[derive(Clone)]
pub enum Step {
    /// Send these bytes. A client that went away already is noted, not an error (a test of an
    /// abort judges from what was received): later sends and pauses are then skipped, later
    /// expectations still fail.
    Send(Vec<u8>),
    /// Send these bytes one at a time, flushing each, with this pause after each (a yield for a
    /// zero pause).
    Drip(Vec<u8>, Duration),
    /// Send `count` lines made by `line(i)` (CRLF included), generated as the client reads them
    /// (never all in memory); stops quietly when the client goes away.
    Lines {
        /// How many.
        count: usize,
        /// The `i`-th line.
        line: fn(usize) -> String,
    },
    /// Read one line, which must end in CRLF and match `line`, then send `reply` (which may be
    /// empty). In a reply to a tagged line, and to every line after one, `{tag}` stands for
    /// the last tag received.
    Expect {
        /// What the line must be.
        line: Line,
        /// The answer.
        reply: Vec<u8>,
    },
    /// Read one line and send what `reply` makes of it (the line without CRLF, and without its
    /// tag if `tagged`): for answers that depend on what the client sent (SCRAM). `{tag}` as in
    /// [`Step::Expect`].
    Respond {
        /// Whether the line starts with a tag (IMAP).
        tagged: bool,
        /// The answer to the line.
        reply: fn(&str) -> String,
    },
    /// The next single read must hold exactly these lines, each with CRLF: a pipelined group,
    /// written at once.
    Group(Vec<String>),
    /// The bytes up to and including the `.` CRLF terminator of a dot-stuffed body must be
    /// these.
    Data(Vec<u8>),
    /// The bytes up to and including the `.` CRLF terminator are handed to this check, which
    /// panics on a mismatch: for a body with a part the client makes up (a Message-ID, a Date).
    DataWith(fn(&[u8])),
    /// Read whatever arrives next (at least one byte, e.g. a ClientHello); the script ends
    /// quietly if nothing does.
    ReadAny,
    /// The client must send nothing for this long (and not close).
    Silence(Duration),
    /// Let this much (paused or real) time pass.
    Sleep(Duration),
    /// Run the server side of a TLS handshake; everything after it is encrypted. A failed
    /// handshake ends the script ([`Received::tls_error`]).
    StartTls(Arc<ServerConfig>),
    /// Shut down the write side (TLS close_notify, then FIN) and end the script: the connection
    /// is closed, and what the client sends afterwards is lost.
    Close,
    /// Shut down the write side (TLS close_notify, then FIN), then record whatever the client
    /// still sends until it closes (the script ends): a half-closed connection.
    CloseWrite,
    /// Keep the connection open without answering, recording, until the client goes away.
    Hang,
    /// The client must send nothing more and close (over TLS: with a close_notify first; a
    /// bare end of the connection fails).
    Eof,
    /// Record whatever the client sends until it closes.
    Drain,
    /// Read until the client has sent this many bytes more, then close (the script ends).
    CloseAfter(usize),
    /// Mark this point: [`Received::since_mark`] is what the client sent after it (what a test
    /// sent after a fixed opening, say).
    Mark,
    /// Answer every line (without CRLF) by what the responder makes of it, whatever the order:
    /// a server that plays a protocol rather than one conversation. The script goes on after an
    /// [`Answer::Next`], and ends when the client closes or after an [`Answer::Last`].
    Serve(Responder),
}

/// What a [`Step::Serve`] responder says to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send this (nothing, and nothing in the transcript, if it is empty) and wait for the next
    /// line.
    Reply(Vec<u8>),
    /// Send this, then close the connection (the script ends).
    Last(Vec<u8>),
    /// Send this, then go on with the script's next step.
    Next(Vec<u8>),
}

impl Answer {
    /// [`Answer::Reply`] of `text`.
    pub fn reply(text: impl AsRef<[u8]>) -> Self {
        Self::Reply(text.as_ref().to_vec())
    }

    /// [`Answer::Last`] of `text`.
    pub fn last(text: impl AsRef<[u8]>) -> Self {
        Self::Last(text.as_ref().to_vec())
    }
}

/// The function behind a [`Step::Serve`], made anew for each connection the step plays on (so
/// that a responder's state — "a mailbox is selected", "inside DATA" — is per connection).
#[derive(Clone)]
pub struct Responder(Arc<dyn Fn() -> AnswerFn + Send + Sync>);

/// One connection's responder.
type AnswerFn = Box<dyn FnMut(&str) -> Answer + Send>;

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

/// [`Step::Serve`] with `answer`, which keeps no state.
pub fn serve(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Step {
    let answer = Arc::new(answer);
    Step::Serve(Responder(Arc::new(move || {
        let answer = Arc::clone(&answer);
        Box::new(move |line: &str| answer(line))
    })))
}

/// [`Step::Serve`] with a responder that keeps state for one connection: `make` builds a fresh
/// one for each connection (a server that plays a protocol across several connections).
pub fn serve_each<R>(make: impl Fn() -> R + Send + Sync + 'static) -> Step
where
    R: FnMut(&str) -> Answer + Send + 'static,
{
    Step::Serve(Responder(Arc::new(move || Box::new(make()))))
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Send(bytes) => write!(f, "Send({:?})", String::from_utf8_lossy(bytes)),
            Self::Drip(bytes, pause) => {
                write!(f, "Drip({:?}, {pause:?})", String::from_utf8_lossy(bytes))
            }
            Self::Lines { count, .. } => write!(f, "Lines({count})"),
            Self::Expect { line, reply } => write!(
                f,
                "Expect({line:?}, reply {:?})",
                String::from_utf8_lossy(reply)
            ),
            Self::Respond { tagged, .. } => write!(f, "Respond(tagged: {tagged})"),
            Self::Group(lines) => write!(f, "Group({lines:?})"),
            Self::Data(bytes) => write!(f, "Data({} bytes)", bytes.len()),
            Self::DataWith(_) => write!(f, "DataWith(..)"),
            Self::ReadAny => write!(f, "ReadAny"),
            Self::Silence(d) => write!(f, "Silence({d:?})"),
            Self::Sleep(d) => write!(f, "Sleep({d:?})"),
            Self::StartTls(_) => write!(f, "StartTls"),
            Self::Close => write!(f, "Close"),
            Self::CloseWrite => write!(f, "CloseWrite"),
            Self::Hang => write!(f, "Hang"),
            Self::Eof => write!(f, "Eof"),
            Self::Drain => write!(f, "Drain"),
            Self::CloseAfter(n) => write!(f, "CloseAfter({n})"),
            Self::Mark => write!(f, "Mark"),
            Self::Serve(_) => write!(f, "Serve"),
        }
    }
}

/// What an expected line must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Exactly this (without CRLF).
    Exact(String),
    /// A tag (any first word), a space, then exactly this: an IMAP command.
    Tagged(String),
    /// Anything starting with this.
    Prefix(String),
}

/// [`Step::Send`].
pub fn send(bytes: impl AsRef<[u8]>) -> Step {
    Step::Send(bytes.as_ref().to_vec())
}

/// The line `line` exactly, with no answer.
pub fn expect(line: &str) -> Step {
    reply_to(line, "")
}

/// The line `line` exactly, answered by `reply`.
pub fn reply_to(line: &str, reply: impl AsRef<[u8]>) -> Step {
    Step::Expect {
        line: Line::Exact(line.to_owned()),
        reply: reply.as_ref().to_vec(),
    }
}

/// A tagged command (IMAP: any tag, then `line`), answered by `reply` (`{tag}`: its tag).
pub fn cmd(line: &str, reply: impl AsRef<[u8]>) -> Step {
    Step::Expect {
        line: Line::Tagged(line.to_owned()),
        reply: reply.as_ref().to_vec(),
    }
}

/// A line starting with `prefix`, answered by `reply`.
pub fn prefix(prefix: &str, reply: impl AsRef<[u8]>) -> Step {
    Step::Expect {
        line: Line::Prefix(prefix.to_owned()),
        reply: reply.as_ref().to_vec(),
    }
}

/// A server configuration for [`Step::StartTls`] with a certificate for `localhost` and
/// `127.0.0.1` from a fresh test CA, and that CA's certificate as a PEM file of its own (what a
/// client is told to trust: `mailcat --ca-file`).
pub fn test_tls() -> (Arc<ServerConfig>, PathBuf) {
    let (ca_pem, config) = crate::https_server::test_pki();
    (config, crate::https_server::write_ca(&ca_pem, 0))
}

/// [`Step::Group`]: these lines in one read.
pub fn group(lines: &[&str]) -> Step {
    Step::Group(lines.iter().map(|l| (*l).to_owned()).collect())
}

/// [`Step::Data`]: the wire form of a message body, terminator included.
pub fn data(wire: impl AsRef<[u8]>) -> Step {
    Step::Data(wire.as_ref().to_vec())
}

/// What the client sent, and how the script ended.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Every byte read, plaintext and (after a handshake) decrypted alike; the TLS handshake's
    /// own bytes are not included, but those read by [`Step::ReadAny`] are.
    pub bytes: Vec<u8>,
    /// The bytes read before any TLS handshake started.
    pub before_tls: Vec<u8>,
    /// Whether a TLS handshake completed.
    pub tls: bool,
    /// The server side's error from a failed handshake.
    pub tls_error: Option<String>,
    /// Where [`Step::Mark`] was, in `bytes`.
    pub mark: usize,
    /// The transcript: `C:` client lines, `S:` server bytes, `--` events.
    pub transcript: String,
}

impl Received {
    /// Everything received, lossily as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The lines received, without CRLF (a last line without CRLF too).
    pub fn lines(&self) -> Vec<String> {
        lines_of(&self.bytes)
    }

    /// What the client sent after [`Step::Mark`].
    pub fn since_mark(&self) -> &[u8] {
        &self.bytes[self.mark..]
    }

    /// How many lines after the mark start with the word `word` (e.g. AUTH attempts).
    pub fn count(&self, word: &str) -> usize {
        lines_of(self.since_mark())
            .iter()
            .filter(|l| l.split(' ').next() == Some(word))
            .count()
    }
}

fn lines_of(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// What the client has sent so far, line by line (without CRLF), as the script reads it: for
/// tests that look while the session is still open.
pub type Live = Arc<Mutex<Vec<String>>>;

/// The transcript as the script plays, shared with the [`Server`] that shows it.
type Transcript = Arc<Mutex<String>>;

/// Shows the transcript so far if the test panics while the server is still held (an
/// assertion of the test failed, not the script's own): what was said before the failure.
#[derive(Debug)]
struct ShownOnPanic {
    transcript: Transcript,
    armed: bool,
}

impl Drop for ShownOnPanic {
    fn drop(&mut self) {
        if !self.armed || !std::thread::panicking() {
            return;
        }
        let transcript = self.transcript.lock().unwrap_or_else(|e| e.into_inner());
        if !transcript.is_empty() {
            eprintln!(
                "--- the scripted server's transcript when the test failed (C: client, S: server) \
                 ---\n{transcript}---"
            );
        }
    }
}

/// A running scripted server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens (TCP servers only).
    pub addr: Option<SocketAddr>,
    handle: JoinHandle<Received>,
    live: Live,
    shown: ShownOnPanic,
}

impl Server {
    /// The port it listens on (TCP servers only).
    pub fn port(&self) -> u16 {
        self.addr.expect("a TCP server").port()
    }

    /// The lines received so far, updated as the script reads them.
    pub fn live(&self) -> Live {
        Arc::clone(&self.live)
    }

    /// Waits for the script to end (the client must have closed its side, or the script ended
    /// it) and returns what was received. A failed expectation, with its transcript, fails the
    /// test here; so does a server still waiting after [`WAIT`] times 3.
    pub async fn finish(mut self) -> Received {
        let outcome = timeout(WAIT * 3, &mut self.handle).await;
        match outcome {
            Err(_) => panic!(
                "the scripted server did not finish: the client did not close; received so \
                 far: {:?}",
                self.live.lock().unwrap()
            ),
            Ok(result) => self.ended(result),
        }
    }

    /// [`Server::finish`] without a time limit: for a task that waits for the server from the
    /// start of a test, whatever (paused or real) time the test lets pass.
    pub async fn join(mut self) -> Received {
        let result = (&mut self.handle).await;
        self.ended(result)
    }

    /// The script's end: what it received, or its panic (which shows the transcript itself,
    /// so the test's own failure does not show it again). Until then a test that fails while
    /// it waits here shows the transcript so far.
    fn ended(mut self, result: Result<Received, tokio::task::JoinError>) -> Received {
        self.shown.armed = false;
        match result {
            Ok(received) => received,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the scripted server's task failed: {e}"),
        }
    }

    /// Everything the client sent, as text, when the script ends.
    pub async fn finish_text(self) -> String {
        self.finish().await.text()
    }
}

/// Plays `script` on one end of an in-memory duplex stream (1 MiB of buffer each way); returns
/// the client's end.
pub fn serve_duplex(script: Vec<Step>) -> (DuplexStream, Server) {
    serve_duplex_with(script, 1 << 20)
}

/// [`serve_duplex`] with `buffer` bytes of buffer each way (a small one makes a writer wait).
pub fn serve_duplex_with(script: Vec<Step>, buffer: usize) -> (DuplexStream, Server) {
    let (client, server) = tokio::io::duplex(buffer);
    let live = Live::default();
    let transcript = Transcript::default();
    let handle = tokio::spawn(play(
        Box::new(server),
        script,
        Arc::clone(&live),
        Arc::clone(&transcript),
    ));
    (
        client,
        Server {
            addr: None,
            handle,
            live,
            shown: ShownOnPanic {
                transcript,
                armed: true,
            },
        },
    )
}

/// Binds 127.0.0.1:0 and plays `script` to the first connection.
pub async fn serve_tcp(script: Vec<Step>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let live = Live::default();
    let log = Arc::clone(&live);
    let transcript = Transcript::default();
    let shared = Arc::clone(&transcript);
    let handle = tokio::spawn(async move {
        let Ok(Ok((tcp, _))) = timeout(WAIT, listener.accept()).await else {
            return Received {
                transcript: "-- no client connected\n".into(),
                ..Received::default()
            };
        };
        play(Box::new(tcp), script, log, shared).await
    });
    Server {
        addr: Some(addr),
        handle,
        live,
        shown: ShownOnPanic {
            transcript,
            armed: true,
        },
    }
}

/// Binds 127.0.0.1:0 and plays `script` to every connection, each in a task of its own, until
/// the server is dropped; returns the server and every line received, over all connections.
/// A failed expectation fails that connection's task (its panic shows the transcript).
pub async fn serve_tcp_each(script: Vec<Step>) -> (EachServer, Live) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let live = Live::default();
    let log = Arc::clone(&live);
    let accept = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(play(
                Box::new(tcp),
                script.clone(),
                Arc::clone(&log),
                Transcript::default(),
            ));
        }
    });
    (EachServer { port, accept }, live)
}

/// [`serve_tcp_each`] from a thread of its own, with a runtime of its own, for the life of the
/// test process: for tests that are not async (a `mailcat` process as the client).
pub fn serve_tcp_each_blocking(script: Vec<Step>) -> (u16, Live) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (server, live) = serve_tcp_each(script).await;
            tx.send((server.port, live)).unwrap();
            std::future::pending::<()>().await;
            drop(server);
        });
    });
    rx.recv().expect("the scripted server started")
}

/// A server from [`serve_tcp_each`]; it stops accepting when dropped.
#[derive(Debug)]
pub struct EachServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    accept: JoinHandle<()>,
}

impl Drop for EachServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// [`serve_tcp`] from a thread of its own, with a runtime of its own: for tests that are not
/// async (a `mailcat` process as the client).
pub fn serve_tcp_blocking(script: Vec<Step>) -> BlockingServer {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = serve_tcp(script).await;
            tx.send(server.port()).unwrap();
            server.finish().await
        })
    });
    let port = rx.recv().expect("the scripted server started");
    BlockingServer { port, thread }
}

/// A server from [`serve_tcp_blocking`].
#[derive(Debug)]
pub struct BlockingServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    thread: std::thread::JoinHandle<Received>,
}

impl BlockingServer {
    /// As [`Server::finish`].
    pub fn finish(self) -> Received {
        match self.thread.join() {
            Ok(received) => received,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The bytes read ahead before a TLS handshake, given back to the handshake first.
struct Rewound {
    ahead: Vec<u8>,
    inner: Box<dyn Io>,
}

impl AsyncRead for Rewound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.ahead.is_empty() {
            let n = self.ahead.len().min(buf.remaining());
            buf.put_slice(&self.ahead[..n]);
            self.ahead.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The server's side of one connection while a script plays.
struct Player {
    stream: Box<dyn Io>,
    /// Read but not yet consumed by a step.
    pending: Vec<u8>,
    got: Received,
    live: Live,
    /// The transcript so far (`got.transcript` once the script ends).
    transcript: Transcript,
    /// The last IMAP tag received, once one has been.
    tag: Option<String>,
    /// A partial client line for the transcript.
    partial: Vec<u8>,
    /// Whether a write failed: the client is gone, and the script's later sends and pauses are
    /// skipped (its later expectations still fail).
    gone: bool,
}

impl Player {
    /// Fails the test: `what`, then the transcript so far.
    fn fail(&mut self, what: &str) -> ! {
        self.flush_partial();
        let transcript = self.transcript.lock().unwrap().clone();
        panic!(
            "scripted server: {what}\n--- transcript so far (C: client, S: server) ---\n{transcript}---"
        );
    }

    fn note(&mut self, event: &str) {
        self.flush_partial();
        self.log(format_args!("-- {event}"));
    }

    /// Adds a line to the transcript, which keeps only its last 256 KiB or so.
    fn log(&mut self, line: std::fmt::Arguments<'_>) {
        const KEEP: usize = 256 * 1024;
        let mut transcript = self.transcript.lock().unwrap();
        let _ = writeln!(transcript, "{line}");
        if transcript.len() > 2 * KEEP {
            let mut cut = transcript.len() - KEEP;
            while !transcript.is_char_boundary(cut) {
                cut += 1;
            }
            transcript.replace_range(..cut, "-- (earlier transcript dropped)\n");
        }
    }

    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let text = String::from_utf8_lossy(&self.partial).into_owned();
            self.log(format_args!("C: {text:?} (no CRLF yet)"));
            self.live.lock().unwrap().push(text);
            self.partial.clear();
        }
    }

    /// Records bytes the client sent.
    fn record(&mut self, bytes: &[u8]) {
        self.got.bytes.extend_from_slice(bytes);
        if !self.got.tls && self.got.tls_error.is_none() {
            self.got.before_tls.extend_from_slice(bytes);
        }
        for &b in bytes {
            self.partial.push(b);
            if b == b'\n' {
                let text = String::from_utf8_lossy(&self.partial).into_owned();
                let line = text.trim_end_matches("\r\n").to_owned();
                if self.partial.len() <= 400 {
                    self.log(format_args!("C: {line}"));
                } else {
                    let start: String = line.chars().take(200).collect();
                    let len = self.partial.len();
                    self.log(format_args!("C: {start}… ({len} bytes)"));
                }
                self.live.lock().unwrap().push(line);
                self.partial.clear();
            }
        }
    }

    /// Reads more into `pending`; `Ok(0)` at the end of the stream.
    async fn read_more(&mut self, wait: Duration) -> Result<usize, String> {
        let mut buf = vec![0u8; 64 * 1024];
        match timeout(wait, self.stream.read(&mut buf)).await {
            Err(_) => Err(format!("nothing from the client for {wait:?}")),
            Ok(Err(e)) => Err(format!("reading failed: {e}")),
            Ok(Ok(n)) => {
                self.record(&buf[..n]);
                self.pending.extend_from_slice(&buf[..n]);
                Ok(n)
            }
        }
    }

    /// Takes bytes from `pending` up to the end `end` finds, reading as needed.
    async fn take_until(&mut self, what: &str, end: impl Fn(&[u8]) -> Option<usize>) -> Vec<u8> {
        loop {
            if let Some(n) = end(&self.pending) {
                return self.pending.drain(..n).collect();
            }
            // No limit of its own: on a paused clock the client may wait for hours (IDLE) before
            // it sends, and a client that is stuck meets its own timeouts, and closes.
            match self.read_more(Duration::MAX).await {
                Ok(0) => self.fail(&format!("the client closed; expected {what}")),
                Ok(_) => {}
                Err(e) => self.fail(&format!("{e}; expected {what}")),
            }
        }
    }

    /// As [`Player::take_until`], or `None` when the client closes first.
    async fn take_until_or_close(
        &mut self,
        end: impl Fn(&[u8]) -> Option<usize>,
    ) -> Option<Vec<u8>> {
        loop {
            if let Some(n) = end(&self.pending) {
                return Some(self.pending.drain(..n).collect());
            }
            match self.read_more(Duration::MAX).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next line, without its CRLF (a line without CR fails).
    async fn line(&mut self, what: &str) -> String {
        let raw = self
            .take_until(what, |p| memchr(b'\n', p).map(|i| i + 1))
            .await;
        let text = String::from_utf8_lossy(&raw).into_owned();
        match text.strip_suffix("\r\n") {
            Some(line) => line.to_owned(),
            None => self.fail(&format!(
                "a line ends in a bare LF: {text:?}; expected {what}"
            )),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        let shown = String::from_utf8_lossy(bytes);
        let shown = if bytes.len() <= 400 {
            format!("S: {shown:?}")
        } else {
            format!(
                "S: {:?}… ({} bytes)",
                shown.chars().take(200).collect::<String>(),
                bytes.len()
            )
        };
        self.flush_partial();
        self.log(format_args!("{shown}"));
        let ok = self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok();
        if !ok {
            self.gone();
        }
        ok
    }

    fn with_tag(&self, reply: &[u8]) -> Vec<u8> {
        match &self.tag {
            Some(tag) => replace(reply, b"{tag}", tag.as_bytes()),
            None => reply.to_vec(),
        }
    }

    /// Splits off the tag of `line` (remembering it).
    fn untag(&mut self, line: &str) -> String {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        self.tag = Some(tag.to_owned());
        rest.to_owned()
    }

    /// Records what the client sends until it closes.
    async fn drain(&mut self) {
        self.pending.clear();
        loop {
            match self.read_more(Duration::MAX).await {
                Ok(0) | Err(_) => break,
                Ok(_) => self.pending.clear(),
            }
        }
    }

    fn gone(&mut self) {
        self.gone = true;
        self.note("the client is gone: later sends and pauses are skipped");
    }

    async fn step(&mut self, step: Step) -> bool {
        if self.gone
            && matches!(
                step,
                Step::Send(_) | Step::Drip(..) | Step::Lines { .. } | Step::Sleep(_)
            )
        {
            return true;
        }
        match step {
            Step::Send(bytes) => {
                self.write(&bytes).await;
            }
            Step::Drip(bytes, pause) => {
                self.note(&format!("dripping {} bytes, {pause:?} apart", bytes.len()));
                for b in bytes {
                    if self.stream.write_all(&[b]).await.is_err()
                        || self.stream.flush().await.is_err()
                    {
                        self.gone();
                        return true;
                    }
                    if pause.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
            Step::Lines { count, line } => {
                self.note(&format!("sending {count} generated lines"));
                let mut chunk = String::new();
                for i in 0..count {
                    chunk.push_str(&line(i));
                    if chunk.len() >= 64 * 1024 || i + 1 == count {
                        if self.stream.write_all(chunk.as_bytes()).await.is_err() {
                            self.gone();
                            return true;
                        }
                        chunk.clear();
                    }
                }
            }
            Step::Expect { line: want, reply } => {
                let what = format!("{want:?}");
                let got = self.line(&what).await;
                let ok = match &want {
                    Line::Exact(want) => got == *want,
                    Line::Tagged(want) => self.untag(&got) == *want,
                    Line::Prefix(want) => got.starts_with(want.as_str()),
                };
                if !ok {
                    self.fail(&format!("expected {what}, the client sent {got:?}"));
                }
                if !reply.is_empty() {
                    let reply = self.with_tag(&reply);
                    self.write(&reply).await;
                }
            }
            Step::Respond { tagged, reply } => {
                let got = self.line("a line to answer").await;
                let rest = if tagged { self.untag(&got) } else { got };
                let answer = self.with_tag(reply(&rest).as_bytes());
                self.write(&answer).await;
            }
            Step::Group(lines) => {
                if !self.pending.is_empty() {
                    let early = String::from_utf8_lossy(&self.pending).into_owned();
                    self.fail(&format!("bytes before the pipelined group: {early:?}"));
                }
                let want: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
                match self.read_more(Duration::MAX).await {
                    Ok(_) => {
                        let got = String::from_utf8_lossy(&self.pending).into_owned();
                        if got != want {
                            self.fail(&format!(
                                "expected the pipelined group {want:?} in one read, got {got:?}"
                            ));
                        }
                        self.pending.clear();
                    }
                    Err(e) => self.fail(&format!("{e}; expected the group {want:?}")),
                }
            }
            Step::Data(_) | Step::DataWith(_) => {
                let got = self
                    .take_until("a message body ending in CRLF . CRLF", |p| {
                        if p.starts_with(b".\r\n") {
                            Some(3)
                        } else {
                            find(p, b"\r\n.\r\n").map(|i| i + 5)
                        }
                    })
                    .await;
                let wire = match step {
                    Step::DataWith(check) => {
                        check(&got);
                        return true;
                    }
                    Step::Data(wire) => wire,
                    _ => unreachable!("matched above"),
                };
                if got != wire {
                    self.fail(&format!(
                        "the message as it crossed the wire differs:\n  expected {:?}\n  got      {:?}",
                        String::from_utf8_lossy(&wire),
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
            Step::ReadAny => {
                if self.pending.is_empty() {
                    match self.read_more(WAIT).await {
                        Ok(n) if n > 0 => {}
                        _ => return false,
                    }
                }
                self.pending.clear();
            }
            Step::Silence(period) => {
                if !self.pending.is_empty() {
                    let early = String::from_utf8_lossy(&self.pending).into_owned();
                    self.fail(&format!(
                        "the client sent {early:?} when it should have waited"
                    ));
                }
                match self.read_more(period).await {
                    Err(_) => {}
                    Ok(0) => self.fail("the client closed during a silence"),
                    Ok(_) => {
                        let early = String::from_utf8_lossy(&self.pending).into_owned();
                        self.fail(&format!(
                            "the client sent {early:?} when it should have waited"
                        ));
                    }
                }
            }
            Step::Sleep(pause) => tokio::time::sleep(pause).await,
            Step::StartTls(config) => {
                self.note("TLS handshake");
                let ahead = std::mem::take(&mut self.pending);
                let stream = std::mem::replace(
                    &mut self.stream,
                    Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
                );
                let rewound = Rewound {
                    ahead,
                    inner: stream,
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                match timeout(WAIT, acceptor.accept(rewound)).await {
                    Ok(Ok(tls)) => {
                        self.got.tls = true;
                        self.stream = Box::new(tls);
                        self.note("TLS established");
                    }
                    Ok(Err(e)) => {
                        self.got.tls_error = Some(e.to_string());
                        self.note(&format!("TLS handshake failed: {e}"));
                        return false;
                    }
                    Err(_) => {
                        self.got.tls_error = Some("handshake timed out".into());
                        self.note("TLS handshake timed out");
                        return false;
                    }
                }
            }
            Step::Close => {
                self.note("server closes");
                let _ = self.stream.shutdown().await;
                return false;
            }
            Step::CloseWrite => {
                self.note("server closes its side");
                let _ = self.stream.shutdown().await;
                self.drain().await;
                return false;
            }
            Step::Hang => {
                self.note("server hangs");
                self.drain().await;
                return false;
            }
            Step::Eof => {
                if !self.pending.is_empty() {
                    let early = String::from_utf8_lossy(&self.pending).into_owned();
                    self.fail(&format!("expected the client to close; it sent {early:?}"));
                }
                match self.read_more(Duration::MAX).await {
                    Ok(0) => self.note("client closed"),
                    Ok(_) => {
                        let more = String::from_utf8_lossy(&self.pending).into_owned();
                        self.fail(&format!("expected the client to close; it sent {more:?}"));
                    }
                    Err(e) => self.fail(&format!("expected the client to close: {e}")),
                }
                return false;
            }
            Step::Drain => {
                self.drain().await;
                return false;
            }
            Step::CloseAfter(n) => {
                let start = self.got.bytes.len() - self.pending.len();
                while self.got.bytes.len() - start < n {
                    match self.read_more(Duration::MAX).await {
                        Ok(0) => self.fail(&format!("the client closed before {n} bytes")),
                        Ok(_) => {}
                        Err(e) => self.fail(&e),
                    }
                }
                self.note("server closes");
                let _ = self.stream.shutdown().await;
                return false;
            }
            Step::Mark => {
                self.got.mark = self.got.bytes.len() - self.pending.len();
            }
            Step::Serve(Responder(make)) => {
                let mut answer = make();
                loop {
                    let Some(raw) = self
                        .take_until_or_close(|p| memchr(b'\n', p).map(|i| i + 1))
                        .await
                    else {
                        self.note("client closed");
                        return false;
                    };
                    let text = String::from_utf8_lossy(&raw).into_owned();
                    let line = text.trim_end_matches(['\r', '\n']);
                    let answered =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer(line)));
                    let answered = match answered {
                        Ok(answered) => answered,
                        Err(panic) => {
                            let why = panic
                                .downcast_ref::<String>()
                                .map(String::as_str)
                                .or_else(|| panic.downcast_ref::<&str>().copied())
                                .unwrap_or("a panic");
                            self.fail(&format!("the responder failed on {line:?}: {why}"))
                        }
                    };
                    match answered {
                        // Nothing to send (a line of a message body, say): nothing to show.
                        Answer::Reply(bytes) if bytes.is_empty() => {}
                        Answer::Reply(bytes) => {
                            self.write(&bytes).await;
                        }
                        Answer::Next(bytes) => {
                            self.write(&bytes).await;
                            break;
                        }
                        Answer::Last(bytes) => {
                            self.write(&bytes).await;
                            self.note("server closes");
                            let _ = self.stream.shutdown().await;
                            return false;
                        }
                    }
                }
            }
        }
        true
    }
}

async fn play(
    stream: Box<dyn Io>,
    script: Vec<Step>,
    live: Live,
    transcript: Transcript,
) -> Received {
    let mut player = Player {
        stream,
        pending: Vec::new(),
        got: Received::default(),
        live,
        transcript,
        tag: None,
        partial: Vec::new(),
        gone: false,
    };
    let mut ended = false;
    for step in script {
        if !player.step(step).await {
            ended = true;
            break;
        }
    }
    if !ended {
        // Whatever the client still sends is recorded until it closes (the connection stays
        // open meanwhile: a client waiting for an answer meets its own timeout).
        player.drain().await;
    }
    player.flush_partial();
    player.got.transcript = player.transcript.lock().unwrap().clone();
    player.got
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `from` replaced by `to`, byte for byte (bodies may be binary).
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{reply_to, serve, serve_each, serve_tcp, serve_tcp_each, test_tls, Answer, Step};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// Sends `lines` on a new connection and returns the answers.
    async fn exchange(port: u16, lines: &[&str]) -> Vec<String> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut stream = BufReader::new(stream);
        let mut answers = Vec::new();
        for line in lines {
            stream
                .get_mut()
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .expect("write");
            let mut answer = String::new();
            stream.read_line(&mut answer).await.expect("read");
            answers.push(answer.trim_end().to_owned());
        }
        answers
    }

    #[tokio::test]
    async fn an_empty_reply_sends_nothing_and_is_not_in_the_transcript() {
        let server = serve_tcp(vec![serve(|line: &str| {
            if line == "quiet" {
                Answer::reply("")
            } else {
                Answer::reply(format!("got {line}\r\n"))
            }
        })])
        .await;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .expect("connect");
        let mut stream = BufReader::new(stream);
        stream
            .get_mut()
            .write_all(b"quiet\r\nloud\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        stream.read_line(&mut answer).await.expect("read");
        assert_eq!(answer, "got loud\r\n");
        drop(stream);
        let received = server.finish().await;
        assert!(
            !received.transcript.contains("S: \"\""),
            "{}",
            received.transcript
        );
    }

    #[tokio::test]
    async fn test_tls_is_trusted_through_its_ca_file_from_the_first_byte() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        let (config, ca_file) = test_tls();
        let server = serve_tcp(vec![
            Step::StartTls(config),
            reply_to("HELLO", "+OK\r\n"),
            Step::Eof,
        ])
        .await;
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&ca_file).expect("the CA file");
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.expect("a certificate")).expect("the CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("a name");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .expect("the handshake: the CA file's CA signed the certificate");
        let mut tls = BufReader::new(tls);
        tls.get_mut().write_all(b"HELLO\r\n").await.expect("write");
        let mut answer = String::new();
        tls.read_line(&mut answer).await.expect("read");
        assert_eq!(answer, "+OK\r\n");
        // Step::Eof wants the close_notify (without it, the script fails).
        tls.get_mut().shutdown().await.expect("close_notify");
        let received = server.finish().await;
        assert!(received.tls, "{}", received.transcript);
        assert_eq!(received.before_tls, b"");
        let _ = std::fs::remove_file(ca_file);
    }

    #[tokio::test]
    async fn a_stateful_responder_starts_afresh_on_each_connection() {
        let (server, live) = serve_tcp_each(vec![serve_each(|| {
            let mut count = 0;
            move |line: &str| {
                count += 1;
                Answer::reply(format!("{count} {line}\r\n"))
            }
        })])
        .await;
        assert_eq!(exchange(server.port, &["a", "b"]).await, ["1 a", "2 b"]);
        assert_eq!(exchange(server.port, &["c"]).await, ["1 c"]);
        assert_eq!(*live.lock().unwrap(), ["a", "b", "c"]);
    }
}
