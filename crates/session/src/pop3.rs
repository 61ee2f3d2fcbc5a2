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
//! and the server keeps every message (threat model #54, #55). After an interrupted reply (a
//! sink that failed, a connection error, unsolicited data) the session refuses every further
//! command, `QUIT` included, for the same reason.
//!
//! # The core and the driver
//!
//! Every decision (what may be sent now, what each reply means, the limits, when the session
//! is out of step) is made by the sans-I/O core in `core/pop3.rs`; this module only drives it
//! over the connection and routes message bytes to sinks.
//!
//! # Cancellation
//!
//! Every method may be dropped (in a `select!`, on a timeout) at any await. The session stays
//! usable: replies the dropped call left unread are read and discarded before the next
//! command, and a message whose `RETR` was dropped is left incomplete in its sink, which is
//! never shut down (see [`Pop3Session::retrieve_many`]). A `DELE` whose reply was discarded
//! may or may not be marked; `RSET` unmarks everything. Only a command cut off in the middle
//! of being written leaves the session unusable (it says so at the next command). A
//! [`Retrieval`] must be read to its end, or the session dropped.
//!
//! # Pipelining
//!
//! When the server announces `PIPELINING` (RFC 2449 §6.6), [`Pop3Session::retrieve_many`]
//! keeps up to [`PIPELINE_WINDOW`] `RETR` commands in flight and reads the replies in order;
//! without it, one command at a time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailcat_session::Error> {
//! use mailcat_session::{pop3, Credential, Plaintext};
//! use mailcat_transport::{Endpoint, TlsSettings, Timeouts};
//!
//! let endpoint = Endpoint::parse_url("pop3s://pop.example.com").expect("a valid URL");
//! let mut session =
//!     pop3::connect(&endpoint, &TlsSettings::default(), &Timeouts::default()).await?;
//! session.login(&Credential::password("me@example.com", "secret"), Plaintext::Refuse).await?;
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

use base64::Engine;
use bytes::Bytes;
use mailcat_codec::pop3::command::Command;
use mailcat_codec::pop3::{Status, StatusLine, UniqueIdListing};
use mailcat_codec::{DecodeError, EncodeError};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Timeouts, TlsSettings};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::{self, LoginMethod, Mechanism, Offer, SaslReply};
use crate::core::pop3::{
    is_temporary, server_reply, Due, ListingLimits, LoginState, Pop3Core, Pop3Event,
};
use crate::driver::Driver;
use crate::open::{self as dialogue, Greeting, MailConnection, ServerCapabilities};
use crate::{Credential, CredentialKind, Error};

pub use crate::core::pop3::{MAX_CAPA_BYTES, MAX_CAPA_LINES, MAX_LISTING_BYTES, PIPELINE_WINDOW};
pub use mailcat_codec::pop3::{ScanListing, Stat};

/// One line of `UIDL`: a message number and its unique-id (printable ASCII, stable across
/// sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueId {
    /// The message number in this session.
    pub msg: u32,
    /// The unique-id.
    pub uid: String,
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
    driver: Driver<S>,
    core: Pop3Core,
    capabilities: ServerCapabilities,
    apop_timestamp: Option<String>,
}

/// Pipelined `RETR` commands in progress, from [`Pop3Session::retrieve_start`]: read each reply,
/// in order, with [`Pop3Session::retrieve_next`]. Until the last one is read the session takes
/// no other command (their replies would be taken for ours); abandon it only with the session.
#[derive(Debug)]
pub struct Retrieval {
    /// `RETR` or `TOP`, for a refusal's message.
    command: &'static str,
    total: usize,
    read: usize,
}

impl Retrieval {
    /// How many replies are still to be read.
    pub fn remaining(&self) -> usize {
        self.total - self.read
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3Session<S> {
    /// Takes over a connection after greeting and capabilities (and STLS) were done by
    /// [`dialogue::open`] or by a test. Bytes the server sent unasked before this point (a
    /// multi-line greeting, a desynchronised reply) make every command fail.
    pub fn new(connection: MailConnection<S>, capabilities: ServerCapabilities) -> Self {
        let (connection, _) = connection.into_parts();
        let core = Pop3Core::new(
            connection.endpoint().clone(),
            capabilities.has("PIPELINING"),
            connection.input().len(),
        );
        Self {
            driver: Driver::new(connection),
            core,
            capabilities,
            apop_timestamp: None,
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
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.capabilities
    }

    /// True when the server announced `PIPELINING` (RFC 2449 §6.6).
    pub fn pipelining(&self) -> bool {
        self.capabilities.has("PIPELINING")
    }

    /// The server's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.core.endpoint()
    }

    /// True once [`Pop3Session::login`] succeeded.
    pub fn is_logged_in(&self) -> bool {
        self.core.login_state() == LoginState::Transaction
    }

    /// What the server offers for logging in: its `SASL` mechanisms, and `USER`/`PASS` when
    /// CAPA lists `USER` or the server has no CAPA at all (RFC 1939 servers).
    pub fn offer(&self) -> Offer {
        let sasl = match self.capabilities.pop3() {
            Some(capa) => capa
                .sasl_mechanisms()
                .into_iter()
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect(),
            None => Vec::new(),
        };
        Offer {
            sasl,
            plain_command: self.capabilities.items.is_empty() || self.capabilities.has("USER"),
            tls: self.driver.connection().is_tls(),
        }
    }
    /// Logs in, once: SASL `AUTH` with the best mechanism offered for the credential (XOAUTH2 in
    /// Microsoft's two-line form), else `USER`/`PASS` for a password; with only the mechanism
    /// the credential names, if it names one ([`crate::Credential::with_mechanism`]).
    ///
    /// Exactly one attempt per session: once a call has sent anything, a second one fails
    /// without sending anything, whatever the first one's outcome (a refusal that sent nothing
    /// leaves the attempt). Without TLS, nothing secret is sent unless
    /// [`crate::Plaintext::DangerouslyAllow`] ([`Error::PlaintextAuthRefused`]). `-ERR [IN-USE]`,
    /// `[LOGIN-DELAY]` and `[SYS/TEMP]` give [`Error::AuthenticationUnavailable`]; other
    /// refusals (`[AUTH]` or none) an authentication failure. A `+OK` before the SASL exchange
    /// is complete (before the credentials were sent, or without SCRAM's verified server-final
    /// message) is an [`Error::Protocol`], not a login, and leaves the session unusable.
    pub async fn login(
        &mut self,
        credential: &Credential,
        plaintext: crate::Plaintext,
    ) -> Result<(), Error> {
        auth::login(self, credential, plaintext).await?;
        // RFC 2449 §5: capabilities may change after login (PIPELINING, EXPIRE ...).
        if !self.capabilities.items.is_empty() {
            let mut capa = mailcat_codec::pop3::Capabilities::new();
            let status = self
                .lines(Command::Capa, ListingLimits::CAPA, |line| {
                    capa.push_line(line);
                    Ok(())
                })
                .await?;
            if status.is_ok() {
                self.capabilities = ServerCapabilities::from_pop3(capa);
                self.core
                    .set_pipelining(self.capabilities.has("PIPELINING"));
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
            let reply = server_reply(status);
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
        for (line, redaction, name) in [
            (user, Redaction::Normal, "USER"),
            (pass, Redaction::Secret, "PASS"),
        ] {
            self.core.queue(line, redaction, Some(Due::Status(name)))?;
            let status = self.status().await?;
            if !status.is_ok() {
                return Err(refused(&status));
            }
        }
        Ok(())
    }
    /// `STAT`: the number of messages and their total size.
    pub async fn stat(&mut self) -> Result<Stat, Error> {
        let status = self.simple(Command::Stat).await?;
        Stat::parse(&status.text).map_err(|e| self.core.bad_reply("STAT", e))
    }

    /// `LIST`: each message's number and size. Read line by line; at most
    /// `Limits::pop3().max_lines` (10^6) lines and [`MAX_LISTING_BYTES`] are accepted.
    pub async fn list(&mut self) -> Result<Vec<ScanListing>, Error> {
        self.list_within(ListingLimits::LISTING).await
    }

    /// `LIST` of a maildrop that [`Pop3Session::stat`] said holds `count` messages: the
    /// limits scale with it (one line a message and 1,000 more, 82 bytes a line), so a
    /// mailbox of any size is read, and a server cannot send much more than it announced.
    pub async fn list_expecting(&mut self, count: u32) -> Result<Vec<ScanListing>, Error> {
        self.list_within(ListingLimits::for_count(count)).await
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
        self.list_each_within(ListingLimits::for_count(count), each)
            .await
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
        ScanListing::parse(&status.text).map_err(|e| self.core.bad_reply("LIST", e))
    }

    /// `UIDL`: each message's unique-id (RFC 1939 §7). Read line by line, as [`Pop3Session::list`].
    pub async fn uidl(&mut self) -> Result<Vec<UniqueId>, Error> {
        self.uidl_within(ListingLimits::LISTING).await
    }

    /// `UIDL` of a maildrop that [`Pop3Session::stat`] said holds `count` messages, with
    /// limits scaled as [`Pop3Session::list_expecting`]'s.
    pub async fn uidl_expecting(&mut self, count: u32) -> Result<Vec<UniqueId>, Error> {
        self.uidl_within(ListingLimits::for_count(count)).await
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
        self.uidl_each_within(ListingLimits::for_count(count), each)
            .await
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
            .map_err(|e| self.core.bad_reply("UIDL", e))
    }

    /// `TOP n lines`: the header and the first `lines` body lines, unstuffed, streamed to
    /// `sink`. Returns the bytes written.
    pub async fn top(
        &mut self,
        msg: u32,
        lines: u32,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        let command = Command::Top {
            message: msg,
            lines,
        };
        self.body(command, "TOP", sink).await
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
        self.body(Command::Retr(msg), "RETR", sink).await
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
        let commands = messages.iter().map(|&n| Command::Retr(n));
        // Not held: if this call is dropped, the replies due are abandoned and discarded.
        let mut retrieval = self.bodies_start("RETR", commands, false).await?;
        let mut results = Vec::with_capacity(messages.len());
        for &msg in messages {
            // The sink is opened when the status line says a body follows.
            let status = self.status().await?;
            if status.is_ok() {
                let mut sink = match sink_for(msg).await {
                    Ok(sink) => sink,
                    Err(e) => return Err(self.core.sink_failed(e)),
                };
                let octets = self.body_after_status(&mut sink).await?;
                retrieval.read += 1;
                if let Err(e) = sink.shutdown().await {
                    return Err(self.core.sink_failed(e));
                }
                results.push(Ok(octets));
            } else {
                retrieval.read += 1;
                results.push(Err(self.core.refused(retrieval.command, &status)));
            }
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
        self.bodies_start("RETR", commands, true).await
    }

    /// [`Pop3Session::retrieve_start`] for `TOP n lines`: the header and the first `lines`
    /// lines of each of `messages`, pipelined the same way (a list of many messages' headers
    /// costs a round trip per window, not per message).
    pub async fn top_start(&mut self, messages: &[u32], lines: u32) -> Result<Retrieval, Error> {
        let commands = messages
            .iter()
            .map(|&message| Command::Top { message, lines });
        self.bodies_start("TOP", commands, true).await
    }

    async fn bodies_start(
        &mut self,
        command: &'static str,
        commands: impl Iterator<Item = Command>,
        held: bool,
    ) -> Result<Retrieval, Error> {
        self.ready().await?;
        let total = self.core.start_bodies(command, commands, held)?;
        self.driver.flush(&mut self.core).await?;
        Ok(Retrieval {
            command,
            total,
            read: 0,
        })
    }

    /// The next reply of `retrieval`: the message streamed, dot-unstuffed, into `sink` (flushed),
    /// `Some(Ok(octets))`; the server's refusal of that one, `Some(Err(_))` (nothing written);
    /// `None` when every reply was read. A transport failure or a failing sink ends the call with
    /// an error and leaves the session unusable (nothing is committed).
    ///
    /// Dropping this call in the middle of a message skips that message: its sink is left
    /// incomplete (never flushed), and the next call reads the rest of it away and returns the
    /// next message.
    pub async fn retrieve_next(
        &mut self,
        retrieval: &mut Retrieval,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<Option<Result<u64, Error>>, Error> {
        if self.core.in_reply() && retrieval.remaining() > 0 {
            // An earlier call was dropped in the middle of this message.
            self.body_after_status(&mut tokio::io::sink()).await?;
            retrieval.read += 1;
        }
        if retrieval.remaining() == 0 {
            return Ok(None);
        }
        if self.core.replies_due() == 0 {
            return Err(self
                .core
                .misuse("a reply was asked for that is not pending"));
        }
        let status = self.status().await?;
        let result = if status.is_ok() {
            let octets = self.body_after_status(sink).await?;
            retrieval.read += 1;
            if let Err(e) = sink.flush().await {
                return Err(self.core.sink_failed(e));
            }
            Ok(octets)
        } else {
            retrieval.read += 1;
            Err(self.core.refused(retrieval.command, &status))
        };
        // The next command of the window goes out now, not when the caller asks again.
        self.driver.flush(&mut self.core).await?;
        Ok(Some(result))
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
        let sent = match self.core.usable() {
            Ok(()) => self.discard_abandoned().await,
            Err(e) => Err(e),
        }
        .and_then(|()| self.core.command(&Command::Quit, Due::Status("QUIT")));
        if let Err(e) = sent {
            self.driver.shutdown().await;
            return Err(e);
        }
        let status = self.status().await?;
        let result = if status.is_ok() {
            Ok(())
        } else {
            Err(self.core.refused("QUIT", &status))
        };
        self.driver.shutdown().await;
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
        self.driver.shutdown().await;
    }

    // ---- driving the core ----

    /// Reads and discards the replies of calls that were dropped before they read them.
    async fn discard_abandoned(&mut self) -> Result<(), Error> {
        self.core.forget_unsent();
        while self.core.abandoned() {
            self.driver.next(&mut self.core).await?;
        }
        Ok(())
    }

    /// Before a command that expects to be the only one in flight: the session is usable,
    /// the replies of dropped calls are read, and the server sent nothing unasked.
    async fn ready(&mut self) -> Result<(), Error> {
        self.core.usable()?;
        self.discard_abandoned().await?;
        let buffered = self.driver.arrived(&mut self.core).await?;
        self.core.may_start(buffered)
    }

    /// The next event of the reply due.
    async fn event(&mut self) -> Result<(Pop3Event, Bytes), Error> {
        self.driver.next(&mut self.core).await
    }

    /// Reads a status line (after writing what is queued).
    async fn status(&mut self) -> Result<StatusLine<'static>, Error> {
        match self.event().await? {
            (Pop3Event::Status(status), _) => Ok(status),
            _ => Err(self.core.desync("a +OK or -ERR status line")),
        }
    }

    /// One single-line command; `-ERR` is an error.
    async fn simple(&mut self, command: Command) -> Result<StatusLine<'static>, Error> {
        self.ready().await?;
        let name = command.name();
        self.core.command(&command, Due::Status(name))?;
        let status = self.status().await?;
        if status.is_ok() {
            Ok(status)
        } else {
            Err(self.core.refused(name, &status))
        }
    }

    fn multi_line_ok(&self, command: &str, status: &StatusLine<'_>) -> Result<(), Error> {
        if status.is_ok() {
            Ok(())
        } else {
            Err(self.core.refused(command, status))
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
        let name = command.name();
        let due = Due::Listing {
            command: name,
            limits,
            lines: 0,
            bytes: 0,
        };
        self.core.command(&command, due)?;
        let status = self.status().await?;
        if status.is_ok() {
            loop {
                match self.event().await? {
                    (Pop3Event::Line(range), raw) => {
                        if let Err(e) = each(&raw[range]) {
                            return Err(self.core.listing_failed(name, e));
                        }
                    }
                    (Pop3Event::End, _) => break,
                    _ => return Err(self.core.desync("a listing line")),
                }
            }
        }
        Ok(status)
    }

    /// A RETR/TOP command alone in flight, its body streamed to `sink`.
    async fn body(
        &mut self,
        command: Command,
        name: &'static str,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        self.ready().await?;
        self.core.command(&command, Due::Body(name))?;
        let status = self.status().await?;
        if !status.is_ok() {
            return Err(self.core.refused(name, &status));
        }
        let octets = self.body_after_status(sink).await?;
        if let Err(e) = sink.flush().await {
            // The reply was read whole: the session is still in step.
            return Err(Error::Io(e));
        }
        Ok(octets)
    }

    /// Streams a body to `sink` up to its `.` line, zero-copy from the read buffer.
    async fn body_after_status(
        &mut self,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        let mut octets = 0u64;
        loop {
            match self.event().await? {
                (Pop3Event::Chunk(range), raw) => {
                    let chunk = raw.slice(range);
                    if let Err(e) = sink.write_all(&chunk).await {
                        return Err(self.core.sink_failed(e));
                    }
                    octets += chunk.len() as u64;
                }
                (Pop3Event::End, _) => break,
                _ => return Err(self.core.desync("message data")),
            }
        }
        Ok(octets)
    }
}

/// POP3's part of the login preamble (`auth::login`).
impl<S: AsyncRead + AsyncWrite + Unpin> auth::LoginSession for Pop3Session<S> {
    fn login_endpoint(&self) -> &Endpoint {
        self.core.endpoint()
    }

    fn login_usable(&self) -> Result<(), Error> {
        self.core.usable()
    }

    fn login_offer(&self) -> Offer {
        self.offer()
    }

    fn attempted(&self) -> bool {
        self.core.login_state() != LoginState::Authorization
    }

    fn spend_attempt(&mut self) {
        self.core.logged_in(false);
    }

    fn written(&self) -> u64 {
        self.driver.connection().written()
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
                    &mut Channel {
                        session: self,
                        started: false,
                    },
                    mechanism,
                    credential.login(),
                    &secret,
                    initial_response,
                    &endpoint,
                )
                .await?;
            }
        }
        self.core.logged_in(true);
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

/// POP3's framing of SASL (RFC 5034): `AUTH mechanism [initial-response]`, `+ base64`
/// challenges answered by base64 lines, `*` to cancel, `+OK`/`-ERR` at the end.
struct Channel<'a, S> {
    session: &'a mut Pop3Session<S>,
    /// The `AUTH` line was written.
    started: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Channel<'_, S> {
    async fn reply(&mut self) -> Result<SaslReply, Error> {
        let session = &mut *self.session;
        Ok(match session.event().await? {
            (Pop3Event::Challenge(range), raw) => {
                let challenge = base64::engine::general_purpose::STANDARD
                    .decode(raw[range].trim_ascii())
                    .map_err(|_| session.core.desync("a base64 challenge"))?;
                SaslReply::Challenge(challenge)
            }
            (Pop3Event::Status(status), _) if status.is_ok() => SaslReply::Success,
            (Pop3Event::Status(status), _) if is_temporary(&status) => {
                SaslReply::Unavailable(server_reply(&status))
            }
            (Pop3Event::Status(status), _) => SaslReply::Failure(server_reply(&status)),
            _ => return Err(session.core.desync("a SASL challenge or a status line")),
        })
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
        // The first line (AUTH) starts the exchange's one reply; the responses continue it.
        let due = (!self.started).then_some(Due::Sasl);
        self.started = true;
        let session = &mut *self.session;
        session.core.queue(line.to_vec(), redaction, due)?;
        session.driver.flush(&mut session.core).await
    }

    async fn sasl_reply(&mut self) -> Result<SaslReply, Error> {
        self.reply().await
    }

    fn abandon(&mut self, reason: &str) {
        self.session.core.abandon(reason);
    }
}
