//! Sending mail over SMTP submission: RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 4954 (AUTH),
//! RFC 2920 (PIPELINING), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8) and
//! RFC 3463 (enhanced status codes).
//!
//! ```text
//!  dialogue::open: 220 ─▶ EHLO ─▶ [STARTTLS ─▶ TLS ─▶ EHLO]      (then SmtpSession::new)
//!  login:          AUTH mech [ir] ─▶ 334 challenge ... ─▶ 235
//!  send:           MAIL FROM ─▶ RCPT TO ... ─▶ DATA ─▶ 354 ─▶ body ─▶ . ─▶ 250
//!                  (again for the next message; RSET after a failed one)
//!  logout:         QUIT ─▶ 221
//! ```
//!
//! - **Greeting, EHLO, STARTTLS** are done by [`crate::open`], with an
//!   address literal as the EHLO name (never a user or file name, threat model #32). There is no
//!   HELO fallback: `open` refuses a server that refuses EHLO. That is required when TLS is
//!   required (threat model #5: HELO has no STARTTLS), and submission always wants EHLO (AUTH
//!   is an EHLO extension); a plaintext relay that only speaks HELO is not supported.
//! - **AUTH**: the best mechanism for the credential, or the one it names
//!   (`auth::choose`, crate-private), one attempt per session, never without TLS unless
//!   [`crate::Plaintext::DangerouslyAllow`]. The initial response goes on the AUTH line when
//!   the line fits in 512 octets, else in answer to the empty `334` (RFC 4954 §4). `235` logs
//!   in; `4xx` is temporary; `5xx` is a refusal (`535 5.7.139`: basic authentication is
//!   disabled, use OAuth2).
//! - **MAIL FROM** carries `SIZE=n` when the size is known and the server offers SIZE,
//!   `BODY=8BITMIME` for 8-bit content (UTF-8 headers included), `SMTPUTF8` for a UTF-8 address
//!   (and for UTF-8 headers too with [`SmtpUtf8::Strict`], see there why not by default). What the
//!   message needs is described by a [`MessageInfo`], computed by [`MessageInfo::scan`] (a file:
//!   read once, then rewound) or [`MessageInfo::of_bytes`]. A need the server cannot meet is
//!   refused before anything is sent (threat model #67): a message larger than the server's SIZE
//!   ([`Error::MessageTooLarge`]), 8-bit content without 8BITMIME, UTF-8 without SMTPUTF8
//!   ([`Error::MissingExtension`]).
//! - **RCPT TO**: a result per recipient. By default, if any recipient is refused the message is
//!   not sent at all (RSET) and [`Error::RecipientsRefused`] lists each one (threat model #62);
//!   [`SmtpSession::set_partial_delivery`] sends to the accepted ones and reports the refused ones
//!   in the [`SendReport`].
//! - **DATA** streams the message from a reader in 64 KiB chunks through the codec's
//!   [`DotStuffer`]: CRLF normalisation (bare CR and bare LF become CRLF), dot-stuffing, a final
//!   CRLF when missing, then the `.` terminator; nothing in the body can end the DATA phase early
//!   (SMTP smuggling, threat model #60, #61). Memory stays bounded whatever the message size.
//! - **PIPELINING**: when offered, MAIL, every RCPT and DATA go in one write (RFC 2920 §3.1: DATA
//!   last in the group), and the replies are read in order. At most 100 commands are in flight:
//!   a longer envelope is topped up as the replies come. With several recipients and partial
//!   sending not allowed, DATA waits for the RCPT replies: a `354` would leave no way to back out
//!   but dropping the connection. One group per message does not run into the lab's "gotcha 23"
//!   (the final `250` held by the server's Nagle until the client's delayed ACK, about 40 ms a
//!   message, seen with `MAIL+RCPT+BDAT`): with DATA the body itself goes out after the `354`
//!   and acknowledges it. Measured against the lab's Postfix over TLS, 100 messages of 4 KiB on
//!   one session, release build: 510–690 msgs/s pipelined, 570–690 lock-step (server-bound).
//! - **Replies**: `4xx` is [`Error::Temporary`], `5xx` [`Error::Rejected`]; a `421` at any point is
//!   [`Error::Closed`] and no further command is sent (RFC 5321 §3.8). A connection lost after the
//!   terminator but before the final reply is [`Error::DeliveryUnknown`]: sending again may
//!   deliver twice (RFC 5321 §4.1.1.4, threat model #65).
//! - **Reuse**: one session sends any number of messages; after a failed transaction the session
//!   sends RSET itself, and [`SmtpSession::reset`] is there for callers.
//! - **Cancellation**: a call dropped halfway (a `select!`, a timeout around it) leaves replies
//!   due or a message half sent; the next call then fails with [`Error::Protocol`] and the
//!   session sends nothing more, rather than take a late reply for the answer to a new command.
//!
//! Every rule above lives in the session's sans-I/O core (`core::smtp`, tested with byte
//! transcripts); the session reads the caller's message and moves bytes.

#[cfg(doc)]
use mailcat_codec::core::dot::DotStuffer;
use mailcat_codec::smtp::command::Command;
use mailcat_codec::smtp::Extensions;
use mailcat_codec::EncodeError;
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Timeouts, TlsSettings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite};
use tokio::net::TcpStream;

pub use mailcat_codec::smtp::address::Address;
pub use mailcat_codec::smtp::command::{Notify, Ret};

use crate::auth::{self, LoginMethod, Offer, SaslReply};
use crate::core::smtp::{Event, SmtpCore, Transaction};
use crate::driver::Driver;
use crate::open::{self as dialogue, MailConnection, ServerCapabilities};
use crate::{message, Credential, Error};

/// How much message data is read, stuffed and written at a time.
const CHUNK: usize = 64 * 1024;

/// Who sends a message to whom: the SMTP envelope, independent of the `From:`/`To:` headers
/// (Bcc recipients are in the envelope only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (`MAIL FROM`), where bounces go; `None` is the null path `<>`.
    pub from: Option<Address>,
    /// The forward paths (`RCPT TO`), at least one.
    pub to: Vec<Address>,
    /// The delivery status notifications asked for (none by default).
    pub dsn: Dsn,
}

/// When `MAIL FROM` declares `SMTPUTF8` (RFC 6531).
///
/// An address that is not ASCII cannot travel without it. UTF-8 in the header section (a raw
/// `Subject: Grüße`) can: declared `BODY=8BITMIME` only, it goes through every hop that takes
/// 8-bit mail, as msmtp and Postfix's sendmail send it; declared `SMTPUTF8`, a later hop
/// without SMTPUTF8 (Dovecot 2.3's LMTP, many relays) must bounce it (RFC 6531 §3.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpUtf8 {
    /// Only when an envelope address needs it (the default): the choice that gets the mail
    /// delivered.
    #[default]
    Auto,
    /// Also when the header section holds UTF-8 (RFC 6532 read strictly): a hop without
    /// SMTPUTF8 then refuses the message instead of passing 8-bit headers on.
    Strict,
}

/// Delivery status notifications (RFC 3461), what `sendmail -N` and `-R` ask for: reports sent
/// to the envelope sender. Asking for reports (`NOTIFY`, `RET`) needs the server's `DSN`
/// extension; without it the message is refused before anything is sent, rather than sent
/// without the reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// When to report, for every recipient (`NOTIFY=`); `None`: the server's default
    /// (failures and delays).
    pub notify: Option<Notify>,
    /// How much of the message a report returns (`RET=`); `None`: the server's choice.
    pub ret: Option<Ret>,
    /// An envelope id the reports quote (`ENVID=`, printable ASCII, at most 100 characters,
    /// sent as xtext). It asks for no report itself: a server without DSN gets the message
    /// without it, as sendmail sends it (`NOTIFY` or `RET` are refused there instead).
    pub envid: Option<String>,
}

impl Dsn {
    /// True when nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.notify.is_none() && self.ret.is_none() && self.envid.is_none()
    }
}

/// What the server must accept for a message to go through: its size and whether it holds
/// 8-bit bytes or UTF-8 headers. Computed by [`MessageInfo::scan`] or
/// [`MessageInfo::of_bytes`]; [`MessageInfo::default`] says "unknown size, 7-bit ASCII", and
/// 8-bit bytes then travel without `BODY=8BITMIME`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageInfo {
    /// The size in octets as sent, line endings as CRLF, before dot-stuffing (RFC 1870 §3):
    /// announced with `SIZE=` and checked against the server's limit before sending.
    pub size: Option<u64>,
    /// Some byte is above 127: the message needs `BODY=8BITMIME` (RFC 6152).
    pub eight_bit: bool,
    /// Some byte above 127 is in the header section: `SMTPUTF8` is declared for it with
    /// [`SmtpUtf8::Strict`] (else it travels as 8-bit content).
    pub utf8_headers: bool,
    /// The longest line in octets as sent, without its CRLF, a dot added by dot-stuffing
    /// included. Over [`MAX_LINE`] breaks RFC 5321 §4.5.3.1.6: servers may cut such a line,
    /// which corrupts what it carries, or refuse the message. Sent as it is all the same (a
    /// client cannot re-encode a body without breaking signatures): callers warn.
    pub longest_line: u64,
}

/// The longest text line RFC 5321 §4.5.3.1.6 allows, without its CRLF.
pub const MAX_LINE: u64 = 998;

impl MessageInfo {
    /// Scans a whole message held in memory.
    pub fn of_bytes(message: &[u8]) -> Self {
        let mut scanner = Scanner::default();
        scanner.push(message);
        scanner.finish()
    }

    /// Reads `reader` to its end, then seeks back to where it was: one pass over a file before
    /// sending it, with bounded memory.
    pub async fn scan<R: AsyncRead + AsyncSeek + Unpin>(reader: &mut R) -> std::io::Result<Self> {
        let start = reader.stream_position().await?;
        let mut scanner = Scanner::default();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            scanner.push(&buf[..n]);
        }
        reader.seek(std::io::SeekFrom::Start(start)).await?;
        Ok(scanner.finish())
    }
}

/// The size of `bytes` as sent: line endings as CRLF, before dot-stuffing (no final CRLF
/// added). Whole lines add up: the size of a message is the sum of its lines' sizes.
pub(crate) fn size_as_sent(bytes: &[u8]) -> u64 {
    let mut scanner = Scanner::default();
    scanner.push(bytes);
    scanner.size
}

/// Computes [`MessageInfo`] over chunks, with the line-ending rules of [`DotStuffer`].
#[derive(Debug)]
struct Scanner {
    size: u64,
    line: u64,
    longest_line: u64,
    eight_bit: bool,
    utf8_headers: bool,
    in_headers: bool,
    at_line_start: bool,
    skip_lf: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            size: 0,
            line: 0,
            longest_line: 0,
            eight_bit: false,
            utf8_headers: false,
            in_headers: true,
            at_line_start: true,
            skip_lf: false,
        }
    }
}

impl Scanner {
    fn push(&mut self, input: &[u8]) {
        for &b in input {
            match b {
                b'\n' if self.skip_lf => self.skip_lf = false,
                b'\r' | b'\n' => {
                    self.size += 2;
                    // An empty line ends the header section.
                    if self.at_line_start {
                        self.in_headers = false;
                    }
                    self.at_line_start = true;
                    self.skip_lf = b == b'\r';
                    self.line = 0;
                }
                _ => {
                    self.size += 1;
                    // A leading dot goes out doubled.
                    self.line += if b == b'.' && self.at_line_start {
                        2
                    } else {
                        1
                    };
                    self.longest_line = self.longest_line.max(self.line);
                    if b >= 0x80 {
                        self.eight_bit = true;
                        self.utf8_headers |= self.in_headers;
                    }
                    self.at_line_start = false;
                    self.skip_lf = false;
                }
            }
        }
    }

    fn finish(self) -> MessageInfo {
        let final_crlf = if self.at_line_start { 0 } else { 2 };
        MessageInfo {
            size: Some(self.size + final_crlf),
            eight_bit: self.eight_bit,
            utf8_headers: self.utf8_headers,
            longest_line: self.longest_line,
        }
    }
}

use mailcat_transport::SmtpReply;

/// What happened to a message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// The recipients the server accepted.
    pub accepted: Vec<Address>,
    /// The recipients it refused, with its reply (only with partial sending allowed: else any
    /// refusal fails the send with [`Error::RecipientsRefused`]).
    pub refused: Vec<(Address, SmtpReply)>,
    /// The final reply after the message (`250 2.0.0 Ok: queued as ...`).
    pub reply: SmtpReply,
}

/// An SMTP submission session, after greeting, EHLO and STARTTLS: AUTH, then any number of
/// messages, then QUIT.
///
/// A thin layer over the SMTP core (`core::smtp`, crate-private), which decides everything
/// about the conversation, and the driver, which moves its bytes; the session reads the
/// caller's message and hands it to the core.
#[derive(Debug)]
pub struct SmtpSession<S> {
    driver: Driver<S>,
    core: SmtpCore,
    capabilities: ServerCapabilities,
    login_attempted: bool,
    headers: HeaderCompletion,
}

/// What happens when the server refuses some of a message's recipients and accepts others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartialDelivery {
    /// The send fails and nothing goes out (the default, threat model #62): the sender decides
    /// what to do with a message that would reach only some of its recipients.
    #[default]
    AllOrNothing,
    /// Send to the accepted recipients and report the refused ones in the [`SendReport`].
    ToAccepted,
}

/// Whether commands are pipelined (RFC 2920) when the server offers PIPELINING.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pipelining {
    /// When offered (the default): MAIL, RCPT and DATA in one write.
    #[default]
    WhenOffered,
    /// Never: one command, one reply (for a server that advertises it and breaks it).
    Off,
}

/// What [`SmtpSession::send`] does with a message's header section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderCompletion {
    /// Remove Bcc and Resent-Bcc, add `Date` and `Message-ID` when missing (the default), as
    /// [`HeaderSection::completed`](crate::message::HeaderSection::completed) does.
    #[default]
    Complete,
    /// Send the bytes as given (a message already complete, or a test of the data path).
    AsGiven,
}

/// Connects to an SMTP `endpoint` (`smtps://` or `smtp://` with STARTTLS) and reads the greeting
/// and the extensions: the session is ready for [`SmtpSession::login`].
pub async fn connect(
    endpoint: &Endpoint,
    tls: &TlsSettings,
    timeouts: &Timeouts,
) -> Result<SmtpSession<TcpStream>, Error> {
    let config = tls.client_config()?;
    let opened = dialogue::open(endpoint, config, timeouts, &mut |_| {}).await?;
    Ok(SmtpSession::new(opened.connection, opened.capabilities))
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpSession<S> {
    /// Takes over a connection after greeting and EHLO (and STARTTLS), done by
    /// [`dialogue::open`] or by a test; `capabilities` are the EHLO lines (after TLS).
    pub fn new(connection: MailConnection<S>, capabilities: ServerCapabilities) -> Self {
        let (connection, _) = connection.into_parts();
        let core = SmtpCore::new(
            connection.endpoint().clone(),
            capabilities.smtp_extensions(),
        );
        Self {
            driver: Driver::new(connection),
            core,
            capabilities,
            login_attempted: false,
            headers: HeaderCompletion::default(),
        }
    }

    /// The EHLO extensions as the server listed them.
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.capabilities
    }

    /// The EHLO extensions, parsed.
    pub fn extensions(&self) -> &Extensions {
        self.core.extensions()
    }

    /// The server.
    pub fn endpoint(&self) -> &Endpoint {
        self.driver.connection().endpoint()
    }

    /// True once the server ended the session (421) or the connection broke: every further
    /// operation fails with [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        self.core.is_poisoned()
    }

    /// What to do when some recipients are refused (default: [`PartialDelivery::AllOrNothing`],
    /// threat model #62).
    pub fn set_partial_delivery(&mut self, partial: PartialDelivery) {
        self.core
            .set_allow_partial(partial == PartialDelivery::ToAccepted);
    }

    /// What [`SmtpSession::send`] does with the header section (default:
    /// [`HeaderCompletion::Complete`]).
    pub fn set_header_completion(&mut self, headers: HeaderCompletion) {
        self.headers = headers;
    }

    /// When to declare SMTPUTF8 (default: [`SmtpUtf8::Auto`], for a non-ASCII address only).
    pub fn set_smtputf8(&mut self, when: SmtpUtf8) {
        self.core.set_smtputf8(when);
    }

    /// Whether to pipeline when the server offers PIPELINING (default:
    /// [`Pipelining::WhenOffered`]).
    pub fn set_pipelining(&mut self, pipelining: Pipelining) {
        self.core
            .set_pipelining(pipelining == Pipelining::WhenOffered);
    }

    /// Logs in with `credential`, once per session: once a call has sent anything, a second
    /// one fails with [`Error::AuthenticationAlreadyAttempted`], whatever the first one's
    /// outcome. A refusal that sent nothing (plaintext refused, no usable mechanism) leaves the
    /// attempt for a later call.
    ///
    /// Without TLS nothing is sent unless [`crate::Plaintext::DangerouslyAllow`] (the password
    /// or token would cross the network readable): [`Error::PlaintextAuthRefused`].
    ///
    /// A `235` before the SASL exchange is complete (before the credentials were sent, or
    /// without SCRAM's verified server-final message) is an [`Error::Protocol`], not a login;
    /// after any protocol error here the session sends nothing more ([`Error::Closed`]).
    pub async fn login(
        &mut self,
        credential: &Credential,
        plaintext: crate::Plaintext,
    ) -> Result<(), Error> {
        auth::login(self, credential, plaintext).await
    }

    /// Sends one message: MAIL FROM, RCPT TO for each recipient, DATA and the message streamed
    /// from `message` (see the module documentation for what is checked first and how replies
    /// are treated). `info` tells what the message needs (size, 8-bit, UTF-8 headers).
    ///
    /// The header section is completed first, as `mailcat send` does
    /// ([`HeaderSection::completed`](crate::message::HeaderSection::completed)): Bcc and
    /// Resent-Bcc are removed, and `Date` and `Message-ID` (in the envelope sender's domain) are
    /// added when missing; `info.size` is adjusted to match. A header section over
    /// [`message::MAX_HEADER`] is an [`Error::MessageHeader`] and nothing is sent.
    pub async fn send<R: AsyncRead + Unpin>(
        &mut self,
        envelope: &Envelope,
        message: &mut R,
        info: &MessageInfo,
    ) -> Result<SendReport, Error> {
        if self.headers == HeaderCompletion::AsGiven {
            return self.send_as_given(envelope, message, info).await;
        }
        let mut message = tokio::io::BufReader::with_capacity(CHUNK, message);
        let header = message::read_async(&mut message)
            .await
            .map_err(|e| match e {
                message::HeaderError::Io(e) => Error::Io(e),
                other => Error::MessageHeader(other),
            })?;
        let sender = envelope.from.as_ref().map(ToString::to_string);
        let head = header.completed(sender.as_deref().unwrap_or_default());
        let info = MessageInfo {
            size: info
                .size
                .map(|size| size.saturating_sub(header.consumed_as_sent()) + size_as_sent(&head)),
            ..*info
        };
        let mut message = std::io::Cursor::new(head).chain(message);
        self.send_as_given(envelope, &mut message, &info).await
    }

    /// [`SmtpSession::send`] of the bytes as they are.
    async fn send_as_given<R: AsyncRead + Unpin>(
        &mut self,
        envelope: &Envelope,
        message: &mut R,
        info: &MessageInfo,
    ) -> Result<SendReport, Error> {
        let transaction = self.core.prepare(envelope, info)?;
        let result = self.transaction(transaction, message).await;
        if result.is_err() && !self.core.is_poisoned() {
            // The server may hold a half-done transaction: clear it, so the session can send
            // the next message. Its failure is not the one to report.
            let _ = self.reset().await;
        }
        result
    }

    /// Sends one message, then QUIT: the whole life of a one-message session. The send's
    /// failure is the one reported, not QUIT's; and once the server has accepted the message
    /// (its `250` after the final dot: RFC 5321 §6.1, the message is its responsibility now),
    /// a QUIT that fails changes nothing: reporting it as a failure would have the caller send
    /// the message again, and deliver it twice.
    pub async fn send_and_quit<R: AsyncRead + Unpin>(
        mut self,
        envelope: &Envelope,
        message: &mut R,
        info: &MessageInfo,
    ) -> Result<SendReport, Error> {
        let report = self.send(envelope, message, info).await;
        if let Err(quit) = self.logout().await {
            tracing::debug!("QUIT after the send failed, which changes nothing: {quit}");
        }
        report
    }

    /// RSET: abandons the current transaction, if any (RFC 5321 §4.1.1.5).
    pub async fn reset(&mut self) -> Result<(), Error> {
        self.command(&Command::Rset).await
    }

    /// NOOP: checks that the server still answers.
    pub async fn noop(&mut self) -> Result<(), Error> {
        self.command(&Command::Noop).await
    }

    /// QUIT and close. After a 421 or a broken connection only the close.
    pub async fn logout(mut self) -> Result<(), Error> {
        let result = if !self.core.is_poisoned() {
            self.command(&Command::Quit).await
        } else {
            Ok(())
        };
        self.driver.shutdown().await;
        result
    }

    /// The envelope, then the message once the server said `354`.
    async fn transaction<R: AsyncRead + Unpin>(
        &mut self,
        transaction: Transaction,
        message: &mut R,
    ) -> Result<SendReport, Error> {
        let buffered = self.driver.arrived(&mut self.core).await?;
        self.core.begin(transaction, buffered)?;
        loop {
            match self.driver.next(&mut self.core).await?.0 {
                Event::Continue => {}
                Event::SendBody => self.stream_body(message).await?,
                Event::Sent(result) => return result,
                other => return Err(self.unexpected(&other)),
            }
        }
    }

    /// Reads the message and hands it to the core, which stuffs it and ends it; writes as the
    /// core asks.
    async fn stream_body<R: AsyncRead + Unpin>(&mut self, message: &mut R) -> Result<(), Error> {
        let mut input = vec![0u8; CHUNK];
        loop {
            let n = match message.read(&mut input).await {
                Ok(n) => n,
                Err(e) => {
                    // Part of the message is out: ending it with the terminator would deliver
                    // a truncated message. Send nothing more; closing the connection makes the
                    // server drop the transaction.
                    self.core
                        .out_of_step(format!("reading the message failed mid-DATA: {e}"));
                    return Err(Error::Io(e));
                }
            };
            if n == 0 {
                self.core.body_end();
                return self.driver.flush(&mut self.core).await;
            }
            self.core.body_push(&input[..n]);
            self.driver.flush(&mut self.core).await?;
        }
    }

    /// RSET, NOOP or QUIT: one command, one reply.
    async fn command(&mut self, command: &Command) -> Result<(), Error> {
        self.core.check()?;
        let buffered = self.driver.arrived(&mut self.core).await?;
        self.core.command(command, buffered)?;
        match self.driver.next(&mut self.core).await?.0 {
            Event::Done(result) => result,
            other => Err(self.unexpected(&other)),
        }
    }

    /// An event the step in progress does not have (a session bug): nothing more is sent.
    fn unexpected(&mut self, event: &Event) -> Error {
        self.core
            .out_of_step(format!("the SMTP core answered {event:?} out of turn"));
        self.core
            .protocol_error("the reply the command in progress waits for".into())
    }
}

/// The SMTP framing of a SASL exchange: `AUTH mech [ir]`, `334 base64` challenges, base64
/// response lines, `*` to cancel; `235` success. The core encodes and interprets; this moves
/// the lines.
struct SmtpSasl<'a, S> {
    session: &'a mut SmtpSession<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> auth::AuthLines for SmtpSasl<'_, S> {
    fn auth_line(&self, mechanism: &str, initial: Option<&[u8]>) -> Result<Vec<u8>, EncodeError> {
        SmtpCore::auth_line(mechanism, initial)
    }

    async fn write_line(&mut self, line: &[u8], redaction: Redaction) -> Result<(), Error> {
        let session = &mut *self.session;
        session.core.sasl_line(line, redaction)?;
        session.driver.flush(&mut session.core).await
    }

    async fn sasl_reply(&mut self) -> Result<SaslReply, Error> {
        let session = &mut *self.session;
        match session.driver.next(&mut session.core).await?.0 {
            Event::Sasl(reply) => reply,
            other => Err(session.unexpected(&other)),
        }
    }

    fn abandon(&mut self, reason: &str) {
        self.session
            .core
            .out_of_step(format!("authentication failed: {reason}"));
    }
}

/// SMTP's part of the login preamble (`auth::login`).
impl<S: AsyncRead + AsyncWrite + Unpin> auth::LoginSession for SmtpSession<S> {
    fn login_endpoint(&self) -> &Endpoint {
        self.core.endpoint()
    }

    fn login_usable(&self) -> Result<(), Error> {
        self.core.check()
    }

    fn login_offer(&self) -> Offer {
        Offer {
            sasl: self
                .core
                .extensions()
                .auth_mechanisms()
                .iter()
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect(),
            plain_command: false,
            tls: self.driver.connection().is_tls(),
        }
    }

    fn attempted(&self) -> bool {
        self.login_attempted
    }

    fn spend_attempt(&mut self) {
        self.login_attempted = true;
    }

    fn written(&self) -> u64 {
        self.driver.connection().written()
    }

    async fn before_login(&mut self) -> Result<(), Error> {
        // A planted "235" waiting here would otherwise pass for the answer to AUTH.
        let buffered = self.driver.arrived(&mut self.core).await?;
        self.core.nothing_unsolicited(buffered)
    }

    async fn log_in(
        &mut self,
        method: LoginMethod,
        credential: &Credential,
        secret: crate::Secret,
    ) -> Result<(), Error> {
        let LoginMethod::Sasl(mechanism) = method else {
            // `choose` never picks a plain command for SMTP, which has none.
            return Err(self.core.protocol_error("a SASL mechanism for AUTH".into()));
        };
        let endpoint = self.core.endpoint().clone();
        // RFC 4954 §4: AUTH always allows an initial response; the driver sends it after the
        // `334 ` instead when the line would be too long.
        auth::authenticate(
            &mut SmtpSasl { session: self },
            mechanism,
            credential.login(),
            &secret,
            true,
            &endpoint,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use mailcat_codec::smtp::command::ClientId;
    use mailcat_transport::{Connection, MailStream, Protocol, Security};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;

    /// A server that accepts one message and then, at QUIT, drops the connection without a
    /// reply (a connection lost after the `250`, as the fault run found it).
    async fn accept_then_lose_the_connection_at_quit(
        server: tokio::io::DuplexStream,
    ) -> std::io::Result<bool> {
        let mut server = BufReader::new(server);
        server.write_all(b"220 smtp.test ESMTP\r\n").await?;
        let mut line = String::new();
        let mut in_data = false;
        let mut accepted = false;
        loop {
            line.clear();
            if server.read_line(&mut line).await? == 0 {
                return Ok(accepted);
            }
            let reply: &[u8] = if in_data {
                if line != ".\r\n" {
                    continue;
                }
                in_data = false;
                accepted = true;
                b"250 2.0.0 Ok: queued as 1A2B3C\r\n"
            } else if line.starts_with("QUIT") {
                return Ok(accepted);
            } else if line.starts_with("DATA") {
                in_data = true;
                b"354 End data with <CR><LF>.<CR><LF>\r\n"
            } else if line.starts_with("EHLO") {
                b"250 smtp.test\r\n"
            } else {
                b"250 2.1.0 Ok\r\n"
            };
            server.write_all(reply).await?;
            server.flush().await?;
        }
    }

    #[tokio::test]
    async fn a_quit_lost_after_the_message_was_accepted_is_still_a_success() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(accept_then_lose_the_connection_at_quit(server));
        let endpoint = Endpoint::new(Protocol::Smtp, "smtp.test", Security::DangerousPlaintext);
        let timeouts = Timeouts::uniform(Duration::from_secs(5));
        let connection = Connection::new(MailStream::Plain(client), endpoint, timeouts);
        let mut connection = MailConnection::new(connection, ClientId::Ipv4(Ipv4Addr::LOCALHOST));
        connection.greeting().await.expect("greeting");
        let capabilities = connection.capabilities().await.expect("EHLO");
        let session = SmtpSession::new(connection, capabilities);
        let envelope = Envelope {
            from: Some(Address::new("alice@example.test").expect("address")),
            to: vec![Address::new("bob@example.test").expect("address")],
            ..Default::default()
        };
        let message = b"Subject: hi\r\n\r\nhello\r\n";
        let sent = session
            .send_and_quit(
                &envelope,
                &mut &message[..],
                &MessageInfo::of_bytes(message),
            )
            .await;
        let accepted = server.await.expect("server task").expect("server I/O");
        assert!(accepted, "the server never got the final dot");
        let report = sent.expect("accepted by the server, so sent: a lost QUIT changes nothing");
        assert_eq!(report.accepted.len(), 1, "{report:?}");
    }
}
