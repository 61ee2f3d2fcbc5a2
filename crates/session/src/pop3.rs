//! A POP3 session: RFC 1939 (POP3), RFC 2449 (CAPA, extended response codes, PIPELINING),
//! RFC 2595 (STLS), RFC 5034 (SASL `AUTH`), RFC 3206 (`[SYS/…]`, `[AUTH]` codes).
//!
//! [`dialogue::open`] connects, reads the greeting, asks `CAPA` and does `STLS`; a
//! [`Pop3Session`] takes over from there: one login ([`Pop3Session::login`]), then the
//! transaction commands. Message bodies (`RETR`, `TOP`) are dot-unstuffed byte for byte and
//! streamed to a sink as they arrive, never held whole in memory.
//!
//! # Deletions happen only at QUIT
//!
//! `DELE` only marks a message; the server removes marked messages when it receives `QUIT`
//! (RFC 1939 §6, the UPDATE state). [`Pop3Session::quit`] (or [`Pop3Session::logout`], the
//! same) is therefore the **only** way a deletion takes effect. To end a session without
//! committing anything — a save failed, the process is shutting down — call
//! [`Pop3Session::abort`] or simply drop the session: the connection closes without `QUIT`,
//! and the server keeps every message (SECURITY.md #54, #55). After an interrupted reply (a
//! sink that failed, a connection error, unsolicited data) the session refuses every further
//! command, `QUIT` included, for the same reason.
//!
//! # Pipelining
//!
//! When the server announces `PIPELINING` (RFC 2449 §6.6), [`Pop3Session::retrieve_many`]
//! keeps up to [`PIPELINE_WINDOW`] `RETR` commands in flight and reads the replies in order;
//! without it, one command at a time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailcat_session::Error> {
//! use mailcat_session::{pop3, Credential};
//! use mailcat_transport::{Endpoint, TlsSettings, Timeouts};
//!
//! let endpoint = Endpoint::parse_url("pop3s://pop.example.com").expect("a valid URL");
//! let mut session =
//!     pop3::connect(&endpoint, &TlsSettings::default(), &Timeouts::default()).await?;
//! session.login(&Credential::password("me@example.com", "secret"), false).await?;
//! let stat = session.stat().await?;
//! if stat.count > 0 {
//!     let mut file = tokio::fs::File::create("message-1.eml").await?;
//!     session.retrieve(1, &mut file).await?;
//! }
//! session.quit().await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::ops::Range;

use base64::Engine;
use bytes::Bytes;
use mailcat_codec::core::text::escape_bytes;
use mailcat_codec::pop3::command::Command;
use mailcat_codec::pop3::{
    Body, Decoder, Event, Expect, ResponseCodeKind, Status, StatusLine, UniqueIdListing,
};
use mailcat_codec::{DecodeError, EncodeError, Limits};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Connection, Endpoint, Protocol, Step, Timeouts, TlsSettings};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::{self, LoginMethod, Mechanism, Offer, SaslReply};
use crate::core::Poison;
use crate::open::{self as dialogue, Capabilities, Greeting, MailConnection};
use crate::{Credential, CredentialKind, Error};

pub use mailcat_codec::pop3::{ScanListing, Stat};

/// How many `RETR` commands [`Pop3Session::retrieve_many`] keeps in flight with PIPELINING.
pub const PIPELINE_WINDOW: usize = 8;

/// Most bytes of listing lines (CRLF not counted) one `LIST` or `UIDL` may send: 128 MiB.
///
/// With the codec's 1,000,000 lines ([`Limits::pop3`]) this bounds what a listing costs in
/// memory (SECURITY.md #40): without it, 10^6 lines of 8 KiB each would be 8 GB. Real listings
/// are far inside: a `UIDL` line is at most 81 bytes (a 10-digit number, a space and RFC 1939's
/// 70-character unique-id), so 10^6 RFC-sized lines are ~80 MiB; mailboxes served over POP3
/// hold up to some 100,000 messages.
pub const MAX_LISTING_BYTES: usize = 128 * 1024 * 1024;

/// Most lines of a `CAPA` answer: 1,000. Servers send 10 to 20.
pub const MAX_CAPA_LINES: usize = 1_000;

/// Most bytes of a `CAPA` answer's lines: 64 KiB. Servers send under 1 KiB.
pub const MAX_CAPA_BYTES: usize = 64 * 1024;

/// The limits of one listing: lines and bytes.
#[derive(Debug, Clone, Copy)]
struct ListingLimits {
    lines: usize,
    bytes: usize,
}

/// `LIST` and `UIDL`.
const LISTING: ListingLimits = ListingLimits {
    lines: Limits::pop3().max_lines,
    bytes: MAX_LISTING_BYTES,
};

/// The limits of a `LIST` or `UIDL` of a maildrop that STAT says holds `count` messages: one
/// line a message, plus 1,000 for a server that does not lock the maildrop (RFC 1939 §8 says
/// it should) and gets new mail meanwhile; 82 bytes a line (a `UIDL` line is at most 81: a
/// 10-digit number, a space, a 70-character unique-id), and 4 GiB at most whatever the count
/// (some 50 million RFC-sized lines: the UIDLs a listing keeps are then addressed with 32-bit
/// offsets). A million messages: ~80 MiB at most.
fn listing_limits_for(count: u32) -> (usize, usize) {
    let lines = (count as usize).saturating_add(1_000);
    let bytes = lines
        .saturating_mul(82)
        .min(usize::try_from(u32::MAX).unwrap_or(usize::MAX));
    (lines, bytes)
}

fn listing_limits(count: u32) -> ListingLimits {
    let (lines, bytes) = listing_limits_for(count);
    ListingLimits { lines, bytes }
}

/// `CAPA`.
const CAPA: ListingLimits = ListingLimits {
    lines: MAX_CAPA_LINES,
    bytes: MAX_CAPA_BYTES,
};

/// The codec's limits, with as many listing lines as a maildrop can have messages (2^32 - 1):
/// every listing is bounded by the session instead, by what the command expects (`CAPA`: a
/// thousand lines; `LIST`/`UIDL`: what STAT announced, [`listing_limits_for`]), where a fixed
/// million lines would refuse the listing of a larger mailbox.
fn decoder_limits() -> Limits {
    let mut limits = Limits::pop3();
    limits.max_lines = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
    limits
}

/// One line of `UIDL`: a message number and its unique-id (printable ASCII, stable across
/// sessions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UniqueId {
    /// The message number, from 1 (valid for this session only).
    pub msg: u32,
    /// The unique-id.
    pub uid: String,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before login (RFC 1939 AUTHORIZATION).
    Authorization,
    /// The one login attempt was made and failed.
    LoginFailed,
    /// Logged in (TRANSACTION).
    Transaction,
}

/// Connects to a POP3 server and gets it ready for [`Pop3Session::login`]: implicit TLS or
/// STLS as the endpoint says, greeting, `CAPA` (again after STLS).
pub async fn connect(
    endpoint: &Endpoint,
    tls: &TlsSettings,
    timeouts: &Timeouts,
) -> Result<Pop3Session<TcpStream>, Error> {
    let config = tls.client_config()?;
    let opened = dialogue::open(endpoint, config, timeouts, &mut |_| {}).await?;
    let mut session = Pop3Session::new(opened.connection, opened.capabilities);
    session.set_greeting(&opened.greeting);
    Ok(session)
}

/// An authenticated POP3 session (RFC 1939) over any stream.
#[derive(Debug)]
pub struct Pop3Session<S> {
    connection: Connection<S>,
    decoder: Decoder,
    capabilities: Capabilities,
    apop_timestamp: Option<String>,
    state: State,
    /// Set once the session can no longer be used (a desync, a reply left half read).
    poison: Poison,
    /// A [`Retrieval`] has replies still unread: only [`Pop3Session::retrieve_next`] may run.
    retrieving: bool,
}

/// Pipelined `RETR` commands in progress, from [`Pop3Session::retrieve_start`]: read each reply,
/// in order, with [`Pop3Session::retrieve_next`]. Until the last one is read the session takes
/// no other command (their replies would be taken for ours); abandon it only with the session.
#[derive(Debug)]
pub struct Retrieval {
    /// `RETR` or `TOP`, for a refusal's message.
    command: &'static str,
    commands: Vec<Vec<u8>>,
    window: usize,
    sent: usize,
    read: usize,
}

impl Retrieval {
    /// How many replies are still to be read.
    pub fn remaining(&self) -> usize {
        self.commands.len() - self.read
    }
}

/// What one frame of a reply was; body bytes and lines are given as their place in the frame.
enum Item {
    Status(StatusLine<'static>),
    Continuation(Range<usize>),
    Chunk(Range<usize>),
    Line(Range<usize>),
    End,
}

fn place(part: &[u8], frame: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - frame.as_ptr() as usize;
    start..start + part.len()
}

fn decode_item(decoder: &mut Decoder, buf: &[u8]) -> Result<(usize, Item), DecodeError> {
    let (used, event) = decoder.decode(buf)?;
    let item = match event {
        Event::Status(status) => Item::Status(status.into_owned()),
        Event::Continuation(text) => Item::Continuation(place(text, buf)),
        Event::BodyChunk(data) => Item::Chunk(place(data, buf)),
        Event::Line(line) => Item::Line(place(line, buf)),
        Event::End => Item::End,
    };
    Ok((used, item))
}

fn end_of_input(decoder: &Decoder, rest: &[u8]) -> DecodeError {
    decoder
        .end_of_input(rest)
        .err()
        .unwrap_or(DecodeError::Truncated {
            offset: 0,
            inside: "a POP3 reply",
        })
}

/// A status line as people read it: `[CODE] text`, escaped.
fn reply_text(status: &StatusLine<'_>) -> String {
    match &status.code {
        Some(code) => format!(
            "[{}] {}",
            escape_bytes(code.as_bytes()),
            escape_bytes(&status.text)
        ),
        None => escape_bytes(&status.text),
    }
}

/// `-ERR [IN-USE]`, `[LOGIN-DELAY]` and `[SYS/TEMP]` mean "later" (RFC 2449 §8, RFC 3206).
fn is_temporary(status: &StatusLine<'_>) -> bool {
    matches!(
        status.code.as_ref().map(|c| c.kind()),
        Some(ResponseCodeKind::InUse | ResponseCodeKind::LoginDelay | ResponseCodeKind::SysTemp)
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3Session<S> {
    /// Takes over a connection after greeting and capabilities (and STLS) were done by
    /// [`dialogue::open`] or by a test. Bytes the server sent unasked before this point (a
    /// multi-line greeting, a desynchronised reply) make every command fail.
    pub fn new(connection: MailConnection<S>, capabilities: Capabilities) -> Self {
        let (connection, _) = connection.into_parts();
        let mut poison = Poison::default();
        if connection.buffered() > 0 {
            poison.out_of_step(format!(
                "the server sent {} bytes nobody asked for before login (SECURITY.md #52)",
                connection.buffered()
            ));
        }
        Pop3Session {
            connection,
            decoder: Decoder::new(decoder_limits()),
            capabilities,
            apop_timestamp: None,
            state: State::Authorization,
            poison,
            retrieving: false,
        }
    }

    /// Keeps the APOP timestamp (`<…@…>`, RFC 1939 §7) of the greeting, if it has one.
    pub fn set_greeting(&mut self, greeting: &Greeting) {
        let line = StatusLine {
            status: Status::Ok,
            code: None,
            text: greeting.text.as_bytes().into(),
        };
        self.apop_timestamp = line
            .apop_timestamp()
            .map(|t| String::from_utf8_lossy(t).into_owned());
    }

    /// The greeting's APOP timestamp, brackets included, when [`Pop3Session::set_greeting`]
    /// found one. (mailcat does not log in with APOP: it relies on MD5 and is refused by
    /// modern servers; the timestamp is kept for callers that want it.)
    pub fn apop_timestamp(&self) -> Option<&str> {
        self.apop_timestamp.as_deref()
    }

    /// The capabilities (`CAPA` lines), as asked over TLS, refreshed after login.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// True when the server announced `PIPELINING` (RFC 2449 §6.6).
    pub fn pipelining(&self) -> bool {
        self.capabilities.has("PIPELINING")
    }

    /// The server's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.connection.endpoint()
    }

    /// True once [`Pop3Session::login`] succeeded.
    pub fn is_logged_in(&self) -> bool {
        self.state == State::Transaction
    }

    /// What the server offers for logging in: its `SASL` mechanisms, and `USER`/`PASS` when
    /// CAPA lists `USER` or the server has no CAPA at all (RFC 1939 servers).
    pub fn offer(&self) -> Offer {
        let sasl = self
            .capabilities
            .items
            .iter()
            .filter_map(|item| {
                let mut words = item.split_ascii_whitespace();
                words
                    .next()
                    .filter(|w| w.eq_ignore_ascii_case("SASL"))
                    .map(|_| words.map(str::to_owned).collect::<Vec<_>>())
            })
            .flatten()
            .collect();
        Offer {
            sasl,
            plain_command: self.capabilities.items.is_empty() || self.capabilities.has("USER"),
            tls: self.connection.is_tls(),
        }
    }

    /// Logs in, once: SASL `AUTH` with the best mechanism offered for the credential (XOAUTH2 in
    /// Microsoft's two-line form), else `USER`/`PASS` for a password; with only the mechanism
    /// the credential names, if it names one ([`crate::Credential::with_mechanism`]).
    ///
    /// Exactly one attempt per session: once a call has sent anything, a second one fails
    /// without sending anything, whatever the first one's outcome (a refusal that sent nothing
    /// leaves the attempt). Without TLS, nothing secret is sent unless
    /// `dangerous_allow_plaintext_auth` ([`Error::PlaintextAuthRefused`]). `-ERR [IN-USE]`,
    /// `[LOGIN-DELAY]` and `[SYS/TEMP]` give [`Error::AuthenticationUnavailable`]; other
    /// refusals (`[AUTH]` or none) an authentication failure. A `+OK` before the SASL exchange
    /// is complete (before the credentials were sent, or without SCRAM's verified server-final
    /// message) is an [`Error::Protocol`], not a login, and leaves the session unusable.
    pub async fn login(
        &mut self,
        credential: &Credential,
        dangerous_allow_plaintext_auth: bool,
    ) -> Result<(), Error> {
        auth::login(self, credential, dangerous_allow_plaintext_auth).await?;
        // RFC 2449 §5: capabilities may change after login (PIPELINING, EXPIRE ...).
        if !self.capabilities.items.is_empty() {
            let mut items = Vec::new();
            let status = self
                .lines(Command::Capa, CAPA, |line| {
                    items.push(String::from_utf8_lossy(line).into_owned());
                    Ok(())
                })
                .await?;
            if status.is_ok() {
                self.capabilities.items = items;
            }
        }
        Ok(())
    }

    async fn user_pass(&mut self, login: &str, password: crate::Secret) -> Result<(), Error> {
        let endpoint = self.endpoint().clone();
        // Both lines are encoded before anything is sent: a CR/LF in either sends nothing.
        let user = Command::User(login.to_owned()).encode()?;
        let pass = Command::Pass(password).encode()?;
        let refused = |status: &StatusLine<'_>| {
            let reply = reply_text(status);
            if is_temporary(status) {
                Error::AuthenticationUnavailable {
                    host: endpoint.host.clone(),
                    login: login.to_owned(),
                    reply,
                }
            } else {
                auth::refusal(
                    &endpoint,
                    login,
                    "USER/PASS",
                    CredentialKind::Password,
                    reply,
                )
            }
        };
        self.send(&user, Redaction::Normal).await?;
        let status = self.status(Expect::SingleLine).await?;
        if !status.is_ok() {
            return Err(refused(&status));
        }
        self.send(&pass, Redaction::Secret).await?;
        let status = self.status(Expect::SingleLine).await?;
        if !status.is_ok() {
            return Err(refused(&status));
        }
        Ok(())
    }

    /// `STAT`: the number of messages and their total size.
    pub async fn stat(&mut self) -> Result<Stat, Error> {
        let status = self.simple(Command::Stat).await?;
        Stat::parse(&status.text).map_err(|e| self.bad_reply("STAT", e))
    }

    /// `LIST`: each message's number and size. Read line by line; at most
    /// `Limits::pop3().max_lines` (10^6) lines and [`MAX_LISTING_BYTES`] are accepted.
    pub async fn list(&mut self) -> Result<Vec<ScanListing>, Error> {
        self.list_within(LISTING).await
    }

    /// `LIST` of a maildrop that [`Pop3Session::stat`] said holds `count` messages: the
    /// limits scale with it (one line a message and 1,000 more, 82 bytes a line), so a
    /// mailbox of any size is read, and a server cannot send much more than it announced.
    pub async fn list_expecting(&mut self, count: u32) -> Result<Vec<ScanListing>, Error> {
        self.list_within(listing_limits(count)).await
    }

    async fn list_within(&mut self, limits: ListingLimits) -> Result<Vec<ScanListing>, Error> {
        let mut out = Vec::new();
        self.list_each_within(limits, |listing| {
            out.push(listing);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// `LIST` of a maildrop that [`Pop3Session::stat`] said holds `count` messages (limits as
    /// [`Pop3Session::list_expecting`]'s), each line handed to `each` as it is read and nothing
    /// collected: what a caller keeps of a million lines is up to it. An error from `each`
    /// ends the listing as a malformed answer (the session is then unusable).
    pub async fn list_each(
        &mut self,
        count: u32,
        each: impl FnMut(ScanListing) -> Result<(), DecodeError>,
    ) -> Result<(), Error> {
        self.list_each_within(listing_limits(count), each).await
    }

    async fn list_each_within(
        &mut self,
        limits: ListingLimits,
        mut each: impl FnMut(ScanListing) -> Result<(), DecodeError>,
    ) -> Result<(), Error> {
        let status = self
            .lines(Command::List(None), limits, |line| {
                each(ScanListing::parse(line)?)
            })
            .await?;
        self.multi_line_ok("LIST", &status)
    }

    /// `LIST n`: one message's size.
    pub async fn list_one(&mut self, msg: u32) -> Result<ScanListing, Error> {
        let status = self.simple(Command::List(Some(msg))).await?;
        ScanListing::parse(&status.text).map_err(|e| self.bad_reply("LIST", e))
    }

    /// `UIDL`: each message's unique-id (RFC 1939 §7). Read line by line, as [`Pop3Session::list`].
    pub async fn uidl(&mut self) -> Result<Vec<UniqueId>, Error> {
        self.uidl_within(LISTING).await
    }

    /// `UIDL` of a maildrop that [`Pop3Session::stat`] said holds `count` messages, with
    /// limits scaled as [`Pop3Session::list_expecting`]'s.
    pub async fn uidl_expecting(&mut self, count: u32) -> Result<Vec<UniqueId>, Error> {
        self.uidl_within(listing_limits(count)).await
    }

    async fn uidl_within(&mut self, limits: ListingLimits) -> Result<Vec<UniqueId>, Error> {
        let mut out = Vec::new();
        self.uidl_each_within(limits, |listing| {
            out.push(unique_id(listing));
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// `UIDL` of a maildrop that [`Pop3Session::stat`] said holds `count` messages (limits as
    /// [`Pop3Session::list_expecting`]'s), each line handed to `each` as it is read and nothing
    /// collected: a caller can keep the newest few, or only what it has not seen before,
    /// without a `String` per message. An error from `each` ends the listing as a malformed
    /// answer (the session is then unusable).
    pub async fn uidl_each(
        &mut self,
        count: u32,
        each: impl FnMut(UniqueIdListing<'_>) -> Result<(), DecodeError>,
    ) -> Result<(), Error> {
        self.uidl_each_within(listing_limits(count), each).await
    }

    async fn uidl_each_within(
        &mut self,
        limits: ListingLimits,
        mut each: impl FnMut(UniqueIdListing<'_>) -> Result<(), DecodeError>,
    ) -> Result<(), Error> {
        let status = self
            .lines(Command::Uidl(None), limits, |line| {
                each(UniqueIdListing::parse(line)?)
            })
            .await?;
        self.multi_line_ok("UIDL", &status)
    }

    /// `UIDL n`: one message's unique-id.
    pub async fn uidl_one(&mut self, msg: u32) -> Result<UniqueId, Error> {
        let status = self.simple(Command::Uidl(Some(msg))).await?;
        UniqueIdListing::parse(&status.text)
            .map(unique_id)
            .map_err(|e| self.bad_reply("UIDL", e))
    }

    /// `TOP n lines`: the header and the first `lines` body lines, unstuffed, streamed to
    /// `sink`. Returns the bytes written.
    pub async fn top(
        &mut self,
        msg: u32,
        lines: u32,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        self.ready().await?;
        let command = Command::Top {
            message: msg,
            lines,
        };
        self.send(&command.encode()?, Redaction::Normal).await?;
        let result = self.body(sink).await?;
        self.no_extra_bytes()?;
        result.map_err(|status| self.refused("TOP", &status))
    }

    /// `RETR n`: the whole message, dot-unstuffed byte for byte, streamed to `sink` as it
    /// arrives (memory stays bounded whatever the size). Returns the bytes written; the sink
    /// is flushed. On any error the message is incomplete and must not be kept; if the sink
    /// failed, the session is left unusable (drop it: nothing is committed).
    pub async fn retrieve(
        &mut self,
        msg: u32,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        self.ready().await?;
        self.send(&Command::Retr(msg).encode()?, Redaction::Normal)
            .await?;
        let result = self.body(sink).await?;
        self.no_extra_bytes()?;
        result.map_err(|status| self.refused("RETR", &status))
    }

    /// `RETR` for each message of `messages`, in order, each streamed to a sink that
    /// `sink_for(msg)` opens. With `PIPELINING` up to [`PIPELINE_WINDOW`] commands are in
    /// flight at once; without it, one at a time.
    ///
    /// A sink is flushed and shut down only when its message arrived whole: a sink can make
    /// the message visible there (rename a temporary file) and treat being dropped without a
    /// shutdown as an incomplete message.
    ///
    /// The result has one entry per message: its size, or the server's refusal of that one
    /// (`-ERR no such message`). A failure that leaves the connection out of step (transport,
    /// a sink that cannot be opened or written) ends the whole call with an error and leaves
    /// the session unusable.
    pub async fn retrieve_many<W, F, Fut>(
        &mut self,
        messages: &[u32],
        mut sink_for: F,
    ) -> Result<Vec<Result<u64, Error>>, Error>
    where
        W: AsyncWrite + Unpin,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = std::io::Result<W>>,
    {
        let mut retrieval = self.retrieve_start(messages).await?;
        let mut results = Vec::with_capacity(messages.len());
        for &msg in messages {
            // The sink is opened when the status line says a body follows.
            let status = self.status(Expect::MultiLine(Body::Chunks)).await?;
            if status.is_ok() {
                let mut sink = match sink_for(msg).await {
                    Ok(sink) => sink,
                    Err(e) => return Err(self.break_with(e)),
                };
                let octets = self.body_after_status(&mut sink).await?;
                if let Err(e) = sink.shutdown().await {
                    return Err(self.break_with(e));
                }
                results.push(Ok(octets));
            } else {
                results.push(Err(self.refused("RETR", &status)));
            }
            self.reply_read(&mut retrieval).await?;
        }
        Ok(results)
    }

    /// Starts `RETR` for each of `messages`: with `PIPELINING` up to [`PIPELINE_WINDOW`]
    /// commands are sent at once (and one more after each reply), without it one at a time.
    /// Read the replies in order with [`Pop3Session::retrieve_next`], each into its own sink:
    /// unlike [`Pop3Session::retrieve_many`], the caller opens the next sink (and is done with
    /// the last one) between two replies.
    pub async fn retrieve_start(&mut self, messages: &[u32]) -> Result<Retrieval, Error> {
        let commands = messages.iter().map(|&n| Command::Retr(n));
        self.bodies_start("RETR", commands).await
    }

    /// [`Pop3Session::retrieve_start`] for `TOP n lines`: the header and the first `lines`
    /// lines of each of `messages`, pipelined the same way (a list of many messages' headers
    /// costs a round trip per window, not per message).
    pub async fn top_start(&mut self, messages: &[u32], lines: u32) -> Result<Retrieval, Error> {
        let commands = messages
            .iter()
            .map(|&message| Command::Top { message, lines });
        self.bodies_start("TOP", commands).await
    }

    async fn bodies_start(
        &mut self,
        command: &'static str,
        commands: impl Iterator<Item = Command>,
    ) -> Result<Retrieval, Error> {
        self.ready().await?;
        // Encode all first: an invalid number (0) sends nothing.
        let commands = commands
            .map(|c| c.encode())
            .collect::<Result<Vec<_>, EncodeError>>()?;
        let window = if self.pipelining() {
            PIPELINE_WINDOW
        } else {
            1
        };
        let mut retrieval = Retrieval {
            command,
            commands,
            window,
            sent: 0,
            read: 0,
        };
        if retrieval.remaining() > 0 {
            retrieval.sent = retrieval.commands.len().min(retrieval.window);
            self.retrieving = true;
            self.send(
                &retrieval.commands[..retrieval.sent].concat(),
                Redaction::Normal,
            )
            .await?;
        }
        Ok(retrieval)
    }

    /// The next reply of `retrieval`: the message streamed, dot-unstuffed, into `sink` (flushed),
    /// `Some(Ok(octets))`; the server's refusal of that one, `Some(Err(_))` (nothing written);
    /// `None` when every reply was read. A transport failure or a failing sink ends the call with
    /// an error and leaves the session unusable (nothing is committed).
    pub async fn retrieve_next(
        &mut self,
        retrieval: &mut Retrieval,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<Option<Result<u64, Error>>, Error> {
        if retrieval.remaining() == 0 {
            return Ok(None);
        }
        if !self.retrieving {
            return Err(self.protocol_misuse("a reply was asked for that is not pending"));
        }
        self.not_broken()?;
        let status = self.status(Expect::MultiLine(Body::Chunks)).await?;
        let result = if status.is_ok() {
            let octets = self.body_after_status(sink).await?;
            if let Err(e) = sink.flush().await {
                return Err(self.break_with(e));
            }
            Ok(octets)
        } else {
            Err(self.refused(retrieval.command, &status))
        };
        self.reply_read(retrieval).await?;
        Ok(Some(result))
    }

    /// One reply of `retrieval` was read: the next command of the window goes out, and after
    /// the last reply the session takes other commands again (with nothing more buffered).
    async fn reply_read(&mut self, retrieval: &mut Retrieval) -> Result<(), Error> {
        retrieval.read += 1;
        if retrieval.sent < retrieval.commands.len() {
            self.send(&retrieval.commands[retrieval.sent], Redaction::Normal)
                .await?;
            retrieval.sent += 1;
        }
        if retrieval.remaining() == 0 {
            self.retrieving = false;
            self.no_extra_bytes()?;
        }
        Ok(())
    }

    /// `DELE n`: marks a message for deletion. Nothing is removed until [`Pop3Session::quit`];
    /// [`Pop3Session::rset`] unmarks, and a session dropped without `QUIT` removes nothing.
    pub async fn dele(&mut self, msg: u32) -> Result<(), Error> {
        self.simple(Command::Dele(msg)).await.map(drop)
    }

    /// `RSET`: unmarks every message marked for deletion in this session.
    pub async fn rset(&mut self) -> Result<(), Error> {
        self.simple(Command::Rset).await.map(drop)
    }

    /// `NOOP`: keeps the connection alive, checks the server still answers.
    pub async fn noop(&mut self) -> Result<(), Error> {
        self.simple(Command::Noop).await.map(drop)
    }

    /// `QUIT`: ends the session and **commits the deletions** (RFC 1939 §6) — the only way a
    /// [`Pop3Session::dele`] takes effect. `-ERR` (some deletions failed) is
    /// [`Error::Rejected`]. A session that was left unusable by an earlier error does not send
    /// `QUIT`: it closes and the server keeps everything.
    pub async fn quit(mut self) -> Result<(), Error> {
        if let Err(e) = self.usable() {
            self.connection.shutdown().await;
            return Err(e);
        }
        self.send(&Command::Quit.encode()?, Redaction::Normal)
            .await?;
        let status = self.status(Expect::SingleLine).await?;
        let result = if status.is_ok() {
            Ok(())
        } else {
            Err(self.refused("QUIT", &status))
        };
        self.connection.shutdown().await;
        result
    }

    /// The same as [`Pop3Session::quit`] (the common name across the sessions): commits the
    /// deletions.
    pub async fn logout(self) -> Result<(), Error> {
        self.quit().await
    }

    /// Closes the connection **without** `QUIT`: the server stays out of its UPDATE state and
    /// removes nothing, whatever was marked with `DELE` (RFC 1939 §6). Dropping the session
    /// does the same, without the orderly TLS close.
    pub async fn abort(self) {
        self.connection.shutdown().await;
    }

    // ---- plumbing ----

    fn protocol_misuse(&self, detail: &str) -> Error {
        Error::Protocol {
            host: self.endpoint().host.clone(),
            protocol: Protocol::Pop3,
            detail: detail.to_owned(),
        }
    }

    fn usable(&self) -> Result<(), Error> {
        if self.retrieving {
            return Err(self.protocol_misuse(
                "pipelined RETR or TOP replies are still unread: read them with retrieve_next first",
            ));
        }
        self.not_broken()
    }

    /// [`Self::usable`], and nothing from the server that no command asked for: a late second
    /// reply would otherwise be taken as the answer to the command about to go (SECURITY.md
    /// #52). Called before each command that expects to be the only one in flight.
    async fn ready(&mut self) -> Result<(), Error> {
        self.usable()?;
        match self.connection.unsolicited().await {
            Ok(None) => Ok(()),
            Ok(Some(line)) => Err(self.desync(&format!(
                "nothing before the next command, but the server sent {line:?}"
            ))),
            Err(e) => {
                self.poison
                    .out_of_step("the connection failed between commands");
                Err(e.into())
            }
        }
    }

    fn not_broken(&self) -> Result<(), Error> {
        self.poison.check(self.endpoint())
    }

    /// Marks the session unusable after a local I/O failure in the middle of a reply.
    fn break_with(&mut self, e: std::io::Error) -> Error {
        self.poison
            .out_of_step(format!("a reply was left half read: {e}"));
        Error::Io(e)
    }

    async fn send(&mut self, bytes: &[u8], redaction: Redaction) -> Result<(), Error> {
        if let Err(e) = self.connection.send(bytes, redaction).await {
            self.poison.out_of_step("a command could not be sent");
            return Err(e.into());
        }
        Ok(())
    }

    /// Reads one frame; a failure leaves the session unusable.
    async fn frame(&mut self) -> Result<(Item, Bytes), Error> {
        match self
            .connection
            .read_frame(Step::Response, &mut self.decoder, decode_item, end_of_input)
            .await
        {
            Ok(frame) => Ok(frame),
            Err(e) => {
                self.poison
                    .out_of_step("the connection failed in the middle of a reply");
                Err(e.into())
            }
        }
    }

    /// Reads a status line, having told the decoder what it answers.
    async fn status(&mut self, expect: Expect) -> Result<StatusLine<'static>, Error> {
        self.decoder.expect(expect);
        match self.frame().await? {
            (Item::Status(status), _) => Ok(status),
            _ => Err(self.desync("a +OK or -ERR status line")),
        }
    }

    /// After a complete reply and with nothing more asked, the server has nothing to say: bytes
    /// already buffered were sent unasked, and would be taken as the next reply (SECURITY.md
    /// #52).
    fn no_extra_bytes(&mut self) -> Result<(), Error> {
        if self.connection.buffered() > 0 {
            return Err(self.desync("nothing (the server sent more than the reply)"));
        }
        Ok(())
    }

    fn desync(&mut self, expected: &str) -> Error {
        self.poison
            .desync(self.connection.endpoint(), format!("expected {expected}"))
    }

    fn bad_reply(&self, command: &str, e: DecodeError) -> Error {
        Error::Protocol {
            host: self.endpoint().host.clone(),
            protocol: Protocol::Pop3,
            detail: format!("a malformed answer to {command}: {e}"),
        }
    }

    fn refused(&self, command: &str, status: &StatusLine<'_>) -> Error {
        self_refused(self.endpoint(), command, status)
    }

    /// One single-line command; `-ERR` is an error.
    async fn simple(&mut self, command: Command) -> Result<StatusLine<'static>, Error> {
        self.ready().await?;
        self.send(&command.encode()?, Redaction::Normal).await?;
        let status = self.status(Expect::SingleLine).await?;
        self.no_extra_bytes()?;
        if status.is_ok() {
            Ok(status)
        } else {
            Err(self.refused(command.name(), &status))
        }
    }

    fn multi_line_ok(&self, command: &str, status: &StatusLine<'_>) -> Result<(), Error> {
        if status.is_ok() {
            Ok(())
        } else {
            Err(self.refused(command, status))
        }
    }

    /// A command with a listing: each line (unstuffed, without CRLF) goes to `each` as it is
    /// read, up to `limits`. Returns the status line; on `-ERR` there are no lines.
    async fn lines(
        &mut self,
        command: Command,
        limits: ListingLimits,
        mut each: impl FnMut(&[u8]) -> Result<(), DecodeError>,
    ) -> Result<StatusLine<'static>, Error> {
        self.ready().await?;
        self.send(&command.encode()?, Redaction::Normal).await?;
        let status = self.status(Expect::MultiLine(Body::Lines)).await?;
        if status.is_ok() {
            let (mut lines, mut bytes) = (0usize, 0usize);
            loop {
                match self.frame().await? {
                    (Item::Line(range), raw) => {
                        lines += 1;
                        bytes = bytes.saturating_add(range.len());
                        if lines > limits.lines || bytes > limits.bytes {
                            self.poison.out_of_step("a listing was left half read");
                            return Err(Error::Protocol {
                                host: self.endpoint().host.clone(),
                                protocol: Protocol::Pop3,
                                detail: format!(
                                    "the answer to {} is longer than the limit of {} lines and \
                                     {} KiB (SECURITY.md #40)",
                                    command.name(),
                                    limits.lines,
                                    limits.bytes >> 10
                                ),
                            });
                        }
                        if let Err(e) = each(&raw[range]) {
                            self.poison.out_of_step("a listing was left half read");
                            return Err(self.bad_reply(command.name(), e));
                        }
                    }
                    (Item::End, _) => break,
                    _ => return Err(self.desync("a listing line")),
                }
            }
        }
        self.no_extra_bytes()?;
        Ok(status)
    }

    /// Reads a RETR/TOP reply: `Err(status)` for `-ERR`, else the body streamed to `sink`.
    async fn body(
        &mut self,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<Result<u64, StatusLine<'static>>, Error> {
        let status = self.status(Expect::MultiLine(Body::Chunks)).await?;
        if !status.is_ok() {
            return Ok(Err(status));
        }
        self.body_after_status(sink).await.map(Ok)
    }

    /// Streams a body to `sink` up to its `.` line, zero-copy from the read buffer.
    async fn body_after_status(
        &mut self,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        let mut octets = 0u64;
        loop {
            match self.frame().await? {
                (Item::Chunk(range), raw) => {
                    let chunk = raw.slice(range);
                    if let Err(e) = sink.write_all(&chunk).await {
                        return Err(self.break_with(e));
                    }
                    octets += chunk.len() as u64;
                }
                (Item::End, _) => break,
                _ => return Err(self.desync("message data")),
            }
        }
        if let Err(e) = sink.flush().await {
            // The reply was read whole: the session is still in step.
            return Err(Error::Io(e));
        }
        Ok(octets)
    }
}

/// POP3's part of the login preamble (`auth::login`).
impl<S: AsyncRead + AsyncWrite + Unpin> auth::LoginSession for Pop3Session<S> {
    fn login_endpoint(&self) -> &Endpoint {
        self.connection.endpoint()
    }

    fn login_usable(&self) -> Result<(), Error> {
        self.usable()
    }

    fn login_offer(&self) -> Offer {
        self.offer()
    }

    fn attempted(&self) -> bool {
        self.state != State::Authorization
    }

    fn spend_attempt(&mut self) {
        if self.state == State::Authorization {
            self.state = State::LoginFailed;
        }
    }

    fn written(&self) -> u64 {
        self.connection.written()
    }

    async fn before_login(&mut self) -> Result<(), Error> {
        // A prompt may have taken longer than the server waits: its "-ERR Disconnected for
        // inactivity" must not pass for the answer to USER.
        self.ready().await
    }

    async fn log_in(
        &mut self,
        method: LoginMethod,
        credential: &Credential,
        secret: crate::Secret,
    ) -> Result<(), Error> {
        let endpoint = self.endpoint().clone();
        match method {
            LoginMethod::PlainCommand => self.user_pass(credential.login(), secret).await?,
            LoginMethod::Sasl(mechanism) => {
                // RFC 5034 allows an initial response; Microsoft's POP3 wants XOAUTH2's token on
                // its own line after `+ `.
                let initial_response = mechanism != Mechanism::XOAuth2;
                auth::authenticate(
                    &mut Channel { session: self },
                    mechanism,
                    credential.login(),
                    &secret,
                    initial_response,
                    &endpoint,
                )
                .await?;
            }
        }
        self.state = State::Transaction;
        Ok(())
    }
}

fn unique_id(listing: UniqueIdListing<'_>) -> UniqueId {
    UniqueId {
        msg: listing.msg,
        // The parser accepts only printable ASCII.
        uid: String::from_utf8_lossy(&listing.unique_id).into_owned(),
    }
}

fn self_refused(endpoint: &Endpoint, command: &str, status: &StatusLine<'_>) -> Error {
    let reply = reply_text(status);
    if is_temporary(status) {
        Error::Temporary {
            host: endpoint.host.clone(),
            command: command.to_owned(),
            reply,
        }
    } else {
        Error::Rejected {
            host: endpoint.host.clone(),
            command: command.to_owned(),
            reply,
        }
    }
}

/// POP3's framing of SASL (RFC 5034): `AUTH mechanism [initial-response]`, `+ base64`
/// challenges answered by base64 lines, `*` to cancel, `+OK`/`-ERR` at the end.
struct Channel<'a, S> {
    session: &'a mut Pop3Session<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Channel<'_, S> {
    async fn reply(&mut self) -> Result<SaslReply, Error> {
        let session = &mut *self.session;
        session.decoder.expect(Expect::SaslContinuation);
        let reply = match session.frame().await? {
            (Item::Continuation(range), raw) => {
                let text = &raw[range];
                let challenge = base64::engine::general_purpose::STANDARD
                    .decode(text.trim_ascii())
                    .map_err(|_| session.desync("a base64 challenge"))?;
                SaslReply::Challenge(challenge)
            }
            (Item::Status(status), _) if status.is_ok() => SaslReply::Success,
            (Item::Status(status), _) if is_temporary(&status) => {
                SaslReply::Unavailable(reply_text(&status))
            }
            (Item::Status(status), _) => SaslReply::Failure(reply_text(&status)),
            _ => return Err(session.desync("a SASL challenge or a status line")),
        };
        if !matches!(reply, SaslReply::Challenge(_)) {
            session.no_extra_bytes()?;
        }
        Ok(reply)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> auth::AuthLines for Channel<'_, S> {
    fn auth_line(&self, mechanism: &str, initial: Option<&[u8]>) -> Result<Vec<u8>, EncodeError> {
        Command::Auth {
            mechanism: mechanism.to_owned(),
            initial_response: initial.map(crate::Secret::new),
        }
        .encode()
    }

    async fn write_line(&mut self, line: &[u8], redaction: Redaction) -> Result<(), Error> {
        self.session.send(line, redaction).await
    }

    async fn sasl_reply(&mut self) -> Result<SaslReply, Error> {
        self.reply().await
    }

    fn abandon(&mut self, reason: &str) {
        self.session
            .poison
            .out_of_step(format!("authentication failed: {reason}"));
    }
}
