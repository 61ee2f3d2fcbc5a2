//! The SMTP submission core: every decision of [`crate::smtp::SmtpSession`] after EHLO, with
//! no I/O (RFC 5321, RFC 2920 PIPELINING, RFC 4954 AUTH framing, RFC 1870 SIZE, RFC 6152
//! 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN).
//!
//! What it decides:
//! - **Before a command**: the session is in step (not poisoned, no earlier command abandoned
//!   halfway with replies still due) and the server sent nothing unasked
//!   ([`crate::core::nothing_unsolicited`] over the bytes the driver found waiting; a waiting
//!   `421` is the server's goodbye and closes the session with its words).
//! - **A message** ([`SmtpCore::prepare`], [`SmtpCore::begin`]): what the server must offer
//!   for it (SIZE, 8BITMIME, SMTPUTF8, DSN), refused before anything is sent; the envelope
//!   encoded at once, so nothing goes out when one command cannot be; then MAIL, every RCPT and
//!   DATA through the one in-order window ([`InOrder`]): all in one write with PIPELINING
//!   (DATA last, RFC 2920 §3.1), one command at a time without. DATA waits for the RCPT
//!   replies when a refused recipient must stop the send (several recipients, partial sending
//!   off): a `354` would leave no way to back out. Then what the replies mean: the refused
//!   recipients, whether to go on, a lone dot after a `354` nobody wanted.
//! - **The body**: dot-stuffing, line endings and the terminator ([`DotStuffer`]); the wrapper
//!   only reads the caller's message and hands it over.
//! - **Every reply**: matched to the command it answers, in order; a `421` closes the session;
//!   bytes after the last reply due are replies nobody asked for and poison the session
//!   (threat model #52); a connection lost once the terminator is out leaves the outcome unknown
//!   ([`Error::DeliveryUnknown`], threat model #65).
//! - **AUTH**: the `AUTH` line, and what `334`/`235`/`4xx`/`5xx` mean for the SASL driver
//!   ([`crate::auth::authenticate`]).
//! - **RSET, NOOP, QUIT**: one command, one reply.
//!
//! # Cancellation
//!
//! A call dropped halfway leaves the core with replies still due, or a body half sent: the
//! next command finds the core busy and poisons it rather than read a stale reply as its own.

use std::collections::VecDeque;

use mailcat_codec::core::dot::DotStuffer;
use mailcat_codec::smtp::command::{Body, Command, MailParameters, RcptParameters};
use mailcat_codec::smtp::{Extensions, Reply, ReplyCode, ReplyDecoder};
use mailcat_codec::{Decode, DecodeError, Decoded, EncodeError, Limits};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Protocol, Step};

use super::{first_line, nothing_unsolicited, Core, InOrder, Outbox, Poison, Progress, Transmit};
use crate::auth::SaslReply;
use crate::smtp::{Address, Envelope, MessageInfo, SendReport, SmtpUtf8};
use crate::Error;
use mailcat_transport::SmtpReply;

/// How many commands may be in flight with PIPELINING: an envelope with more recipients goes
/// out in several writes, topped up as replies come (a server's buffers are finite, and a
/// client that writes without reading can deadlock with one that does the same).
const PIPELINE_WINDOW: usize = 100;

/// How much stuffed message data is written at a time.
const BODY_WRITE: usize = 64 * 1024;

/// A command whose reply is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Mail,
    Rcpt(usize),
    Data,
    /// The terminator: the final reply to the message.
    EndOfData,
    /// A lone dot after a `354` that came when the message was not to be sent.
    LoneDot,
    Auth,
    Rset,
    Noop,
    Quit,
}

impl Due {
    /// The command, as messages name it.
    fn name(self) -> &'static str {
        match self {
            Self::Mail => "MAIL FROM",
            Self::Rcpt(_) => "RCPT TO",
            Self::Data => "DATA",
            Self::EndOfData => "the end of the message",
            Self::LoneDot => "the end of an empty message",
            Self::Auth => "AUTH",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
        }
    }
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing due: a command may start.
    Idle,
    /// RSET, NOOP or QUIT sent, its reply due.
    Command,
    /// An AUTH exchange under way (between two steps when nothing is due).
    Sasl,
    /// MAIL, RCPT, DATA: replies due.
    Envelope,
    /// The `354` came: the message is being written.
    Body,
}

/// What one reply meant, for the session.
#[derive(Debug)]
pub(crate) enum Event {
    /// Taken in: more replies are due, or the core queued the next command itself.
    Continue,
    /// The server said `354`: the message goes now ([`SmtpCore::body_push`],
    /// [`SmtpCore::body_end`]).
    SendBody,
    /// The transaction is over: the report, or why the message was not accepted (the session
    /// is still in step unless poisoned).
    Sent(Result<SendReport, Error>),
    /// The reply to RSET, NOOP or QUIT: success or the server's refusal.
    Done(Result<(), Error>),
    /// The server's answer to a step of AUTH.
    Sasl(Result<SaslReply, Error>),
}

/// A message on its way: the envelope, and what came back so far.
#[derive(Debug)]
pub(crate) struct Transaction {
    /// Commands encoded and not yet sent, in order.
    pending: VecDeque<(Due, Vec<u8>)>,
    to: Vec<Address>,
    /// DATA waits for the envelope's replies (it is not in `pending`).
    data_after_replies: bool,
    mail: Option<(bool, SmtpReply)>,
    accepted: Vec<Address>,
    refused: Vec<(Address, SmtpReply)>,
    data: Option<SmtpReply>,
    /// Why the message is not sent, once a lone dot went after an unwanted `354`.
    abandoned: Option<Error>,
}

/// The SMTP conversation after EHLO.
#[derive(Debug)]
pub(crate) struct SmtpCore {
    endpoint: Endpoint,
    extensions: Extensions,
    decoder: ReplyDecoder,
    poison: Poison,
    window: InOrder<Due>,
    outbox: Outbox,
    state: State,
    transaction: Option<Transaction>,
    stuffer: DotStuffer,
    body: Vec<u8>,
    allow_partial: bool,
    pipelining: bool,
    smtputf8: SmtpUtf8,
}

impl SmtpCore {
    /// The core for a session with `endpoint`, whose EHLO listed `extensions`.
    pub(crate) fn new(endpoint: Endpoint, extensions: Extensions) -> Self {
        Self {
            endpoint,
            extensions,
            decoder: ReplyDecoder::new(Limits::smtp()),
            poison: Poison::default(),
            window: InOrder::new(1),
            outbox: Outbox::default(),
            state: State::Idle,
            transaction: None,
            stuffer: DotStuffer::new(),
            body: Vec::new(),
            allow_partial: false,
            pipelining: true,
            smtputf8: SmtpUtf8::default(),
        }
    }

    pub(crate) fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(crate) fn set_allow_partial(&mut self, allow: bool) {
        self.allow_partial = allow;
    }

    pub(crate) fn set_smtputf8(&mut self, when: SmtpUtf8) {
        self.smtputf8 = when;
    }

    pub(crate) fn set_pipelining(&mut self, pipelining: bool) {
        self.pipelining = pipelining;
    }

    /// True once the session takes no more commands.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poison.is_poisoned()
    }

    /// Fuzzing: the decoder with smaller `limits`, so a fuzzer's short inputs reach the checks.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fuzz_limits(&mut self, limits: Limits) {
        self.decoder = ReplyDecoder::new(limits);
    }

    /// Fails when the session takes no more commands; sends nothing.
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.poison.check(&self.endpoint)
    }

    /// Poisons the session: `why` it is out of step (an AUTH exchange broke off, the message
    /// could not be read mid-DATA).
    pub(crate) fn out_of_step(&mut self, why: impl Into<String>) {
        self.poison.out_of_step(why);
    }

    /// Before a command starts: in step, and nothing left over from one abandoned halfway.
    fn ready(&mut self, allow_sasl: bool) -> Result<(), Error> {
        self.check()?;
        let busy = match self.state {
            State::Idle => None,
            State::Sasl if allow_sasl && self.window.is_empty() => None,
            State::Sasl => Some("an AUTH exchange"),
            State::Command => Some("a command"),
            State::Envelope => Some("a message's envelope"),
            State::Body => Some("a message"),
        };
        match busy {
            None => Ok(()),
            Some(what) => {
                // The caller's doing (a call dropped halfway), not the server's: a misuse, and
                // the session is poisoned as for any desync.
                let due = self.window.len();
                let what = format!(
                    "{what} was abandoned halfway ({due} replies still due): the server \
                     may still be answering it"
                );
                self.poison.out_of_step(what.clone());
                Err(self.misuse(what))
            }
        }
    }

    /// The rule "nothing unsolicited before a command" over `buffered`, what the driver found
    /// waiting before a command. A `421` there is the server ending the session (an idle
    /// timeout): closed with its words.
    pub(crate) fn nothing_unsolicited(&mut self, buffered: &[u8]) -> Result<(), Error> {
        if buffered.starts_with(b"421") {
            let words: crate::Reply = match self.decoder.decode(buffered) {
                Decoded::Event { event, .. } => SmtpReply::from_reply(&event).into(),
                _ => first_line(buffered).into(),
            };
            return Err(self.closed(words));
        }
        nothing_unsolicited(&mut self.poison, &self.endpoint, buffered)
    }

    /// The server ended the session with `words`.
    fn closed(&mut self, words: crate::Reply) -> Error {
        self.poison.closed(words.clone());
        Error::Closed {
            host: self.endpoint.host.clone(),
            reply: words,
        }
    }

    // ---- RSET, NOOP, QUIT ----

    /// Queues RSET, NOOP or QUIT, after the unsolicited check over `buffered` (not for QUIT:
    /// whatever came, the session ends). Its reply is an [`Event::Done`].
    pub(crate) fn command(&mut self, command: &Command, buffered: &[u8]) -> Result<(), Error> {
        self.ready(false)?;
        let due = match command {
            Command::Rset => Due::Rset,
            Command::Noop => Due::Noop,
            Command::Quit => Due::Quit,
            other => {
                return Err(self.misuse(format!(
                    "{} is not a command that goes on its own",
                    other.name()
                )))
            }
        };
        if due != Due::Quit {
            self.nothing_unsolicited(buffered)?;
        }
        let line = command.encode()?;
        self.state = State::Command;
        self.send(due, line, Redaction::Normal);
        Ok(())
    }

    // ---- AUTH ----

    /// The `AUTH` line; [`EncodeError::TooLong`] when the initial response does not fit in
    /// 512 octets (it then goes after the empty `334`, RFC 4954 §4).
    pub(crate) fn auth_line(
        mechanism: &str,
        initial: Option<&[u8]>,
    ) -> Result<Vec<u8>, EncodeError> {
        Command::Auth {
            mechanism: mechanism.to_owned(),
            initial_response: initial.map(crate::Secret::new),
        }
        .encode()
    }

    /// Queues one line of an AUTH exchange (the `AUTH` line, a response, `*`); its reply is an
    /// [`Event::Sasl`].
    pub(crate) fn sasl_line(&mut self, line: &[u8], redaction: Redaction) -> Result<(), Error> {
        self.ready(true)?;
        self.state = State::Sasl;
        self.send(Due::Auth, line.to_vec(), redaction);
        Ok(())
    }

    // ---- a message ----

    /// Checks the message against the server's extensions and encodes every command of its
    /// envelope, so that nothing is sent when one of them cannot be.
    pub(crate) fn prepare(
        &self,
        envelope: &Envelope,
        info: &MessageInfo,
    ) -> Result<Transaction, Error> {
        self.check()?;
        let host = || self.endpoint.host.clone();
        if envelope.to.is_empty() {
            return Err(EncodeError::Empty {
                field: "recipient list",
            }
            .into());
        }
        let utf8_address = envelope.from.as_ref().is_some_and(Address::needs_smtputf8)
            || envelope.to.iter().any(Address::needs_smtputf8);
        let smtputf8 = utf8_address || (info.utf8_headers && self.smtputf8 == SmtpUtf8::Strict);
        if smtputf8 && !self.extensions.smtp_utf8() {
            return Err(Error::MissingExtension {
                host: host(),
                extension: "SMTPUTF8",
                needed_for: if utf8_address {
                    "an address that is not ASCII"
                } else {
                    "a message with UTF-8 in its headers (declared strictly)"
                },
            });
        }
        let body = if info.eight_bit || smtputf8 {
            if self.extensions.eight_bit_mime() {
                Some(Body::EightBitMime)
            } else if info.eight_bit {
                return Err(Error::MissingExtension {
                    host: host(),
                    extension: "8BITMIME",
                    needed_for: "a message with 8-bit content",
                });
            } else {
                None
            }
        } else {
            None
        };
        let size = match self.extensions.size() {
            None => None,
            Some(limit) => {
                if let (Some(size), Some(limit)) = (info.size, limit) {
                    if size > limit {
                        return Err(Error::MessageTooLarge {
                            host: host(),
                            size,
                            limit,
                        });
                    }
                }
                info.size
            }
        };
        let dsn = self.extensions.dsn();
        if (envelope.dsn.notify.is_some() || envelope.dsn.ret.is_some()) && !dsn {
            return Err(Error::MissingExtension {
                host: host(),
                extension: "DSN",
                needed_for: "delivery status notifications (NOTIFY, RET)",
            });
        }
        let mut pending = VecDeque::with_capacity(envelope.to.len() + 2);
        let mail = Command::MailFrom {
            reverse_path: envelope.from.clone(),
            parameters: MailParameters {
                size,
                body,
                smtputf8,
                ret: envelope.dsn.ret,
                // An envelope id alone asks for no report: without DSN it is left out, as
                // sendmail does.
                envid: envelope.dsn.envid.clone().filter(|_| dsn),
            },
        };
        pending.push_back((Due::Mail, mail.encode()?));
        for (i, to) in envelope.to.iter().enumerate() {
            let rcpt = Command::RcptTo {
                forward_path: to.clone(),
                parameters: RcptParameters {
                    notify: envelope.dsn.notify,
                    orcpt: None,
                },
            };
            pending.push_back((Due::Rcpt(i), rcpt.encode()?));
        }
        // DATA joins the group only when its 354 cannot come at a moment the client wants to
        // back out: one recipient (no recipient, no 354), or partial sending allowed.
        let data_after_replies =
            !self.pipelined() || (envelope.to.len() > 1 && !self.allow_partial);
        if !data_after_replies {
            pending.push_back((Due::Data, b"DATA\r\n".to_vec()));
        }
        Ok(Transaction {
            pending,
            to: envelope.to.clone(),
            data_after_replies,
            mail: None,
            accepted: Vec::new(),
            refused: Vec::new(),
            data: None,
            abandoned: None,
        })
    }

    /// Starts a prepared message, after the unsolicited check over `buffered`: its envelope
    /// is queued, all in one write with PIPELINING, else MAIL alone.
    pub(crate) fn begin(&mut self, transaction: Transaction, buffered: &[u8]) -> Result<(), Error> {
        self.ready(false)?;
        self.nothing_unsolicited(buffered)?;
        self.window
            .set_limit(if self.pipelined() { PIPELINE_WINDOW } else { 1 });
        self.state = State::Envelope;
        self.transaction = Some(transaction);
        self.top_up();
        Ok(())
    }

    fn pipelined(&self) -> bool {
        self.pipelining && self.extensions.pipelining()
    }

    /// Sends the envelope's next commands while the window has room.
    fn top_up(&mut self) {
        while self.window.room() > 0 {
            let Some((due, line)) = self
                .transaction
                .as_mut()
                .and_then(|t| t.pending.pop_front())
            else {
                break;
            };
            self.send(due, line, Redaction::Normal);
        }
    }

    /// Stuffs the next part of the message (after [`Event::SendBody`]); queues a write once
    /// enough is ready.
    pub(crate) fn body_push(&mut self, input: &[u8]) {
        if self.state != State::Body {
            return;
        }
        self.stuffer.push(input, &mut self.body);
        if self.body.len() >= BODY_WRITE {
            let chunk = std::mem::replace(
                &mut self.body,
                Vec::with_capacity(BODY_WRITE + BODY_WRITE / 16),
            );
            self.outbox.push(chunk, Redaction::Data);
        }
    }

    /// Ends the message: the rest of it with the terminator is queued, and the final reply is
    /// due.
    pub(crate) fn body_end(&mut self) {
        if self.state != State::Body {
            return;
        }
        std::mem::take(&mut self.stuffer).finish(&mut self.body);
        let chunk = std::mem::take(&mut self.body);
        self.outbox.push(chunk, Redaction::Data);
        self.window.sent(Due::EndOfData);
        self.state = State::Envelope;
    }

    /// Queues `line` and records its reply as due.
    fn send(&mut self, due: Due, line: Vec<u8>, redaction: Redaction) {
        self.outbox.push(line, redaction);
        self.window.sent(due);
    }

    // ---- replies ----

    /// What `reply` (to `due`) means.
    fn answer(&mut self, due: Due, reply: Reply<'_>) -> Event {
        match due {
            Due::Rset | Due::Noop | Due::Quit => {
                self.state = State::Idle;
                Event::Done(if reply.is_positive() {
                    Ok(())
                } else {
                    Err(self.refusal(due.name(), &reply))
                })
            }
            Due::Auth => Event::Sasl(self.sasl_reply(&reply)),
            Due::Mail | Due::Rcpt(_) | Due::Data => {
                let Some(t) = self.transaction.as_mut() else {
                    return Event::Continue;
                };
                match due {
                    Due::Mail => {
                        if !reply.is_positive() {
                            // Nothing more of the envelope goes.
                            t.pending.clear();
                        }
                        t.mail = Some((reply.is_positive(), SmtpReply::from_reply(&reply)));
                    }
                    Due::Rcpt(i) => {
                        let to = t.to[i].clone();
                        if reply.is_positive() {
                            t.accepted.push(to);
                        } else {
                            t.refused.push((to, SmtpReply::from_reply(&reply)));
                        }
                    }
                    _ => t.data = Some(SmtpReply::from_reply(&reply)),
                }
                self.top_up();
                if self.window.is_empty() {
                    self.envelope_answered()
                } else {
                    Event::Continue
                }
            }
            Due::LoneDot => {
                let error = self
                    .transaction
                    .as_mut()
                    .and_then(|t| t.abandoned.take())
                    .unwrap_or_else(|| self.protocol_error("a reason for the lone dot".into()));
                self.finish(Err(error))
            }
            Due::EndOfData => {
                let result = if reply.is_positive() {
                    let t = self.transaction.take();
                    let (accepted, refused) =
                        t.map(|t| (t.accepted, t.refused)).unwrap_or_default();
                    Ok(SendReport {
                        accepted,
                        refused,
                        reply: SmtpReply::from_reply(&reply),
                    })
                } else {
                    Err(self.refusal("the message (after DATA)", &reply))
                };
                self.finish(result)
            }
        }
    }

    /// Every reply of the envelope is in: go on with DATA or the message, or stop.
    fn envelope_answered(&mut self) -> Event {
        let Some(t) = self.transaction.as_ref() else {
            return Event::Continue;
        };
        let mail_ok = t.mail.as_ref().is_some_and(|(ok, _)| *ok);
        let go = mail_ok && !t.accepted.is_empty() && (t.refused.is_empty() || self.allow_partial);
        let data = t.data.clone();
        let started = data
            .as_ref()
            .map(|r| r.code == ReplyCode::START_MAIL_INPUT.get());
        match (go, started) {
            (true, None) if t.data_after_replies => {
                if let Some(t) = self.transaction.as_mut() {
                    t.data_after_replies = false;
                }
                self.send(Due::Data, b"DATA\r\n".to_vec(), Redaction::Normal);
                Event::Continue
            }
            (true, Some(true)) => {
                self.state = State::Body;
                self.stuffer = DotStuffer::new();
                self.body = Vec::with_capacity(BODY_WRITE + BODY_WRITE / 16);
                Event::SendBody
            }
            (true, _) => {
                let error = match &data {
                    Some(reply) => self.refusal_of("DATA", reply),
                    None => self.protocol_error("a reply to DATA".into()),
                };
                self.finish(Err(error))
            }
            (false, Some(true)) => {
                // A server that accepted DATA without a valid recipient (it should have said
                // 503 or 554): RFC 2920 §3.1 says to send a lone dot, which delivers nothing.
                let error = self.not_sent();
                if let Some(t) = self.transaction.as_mut() {
                    t.abandoned = Some(error);
                }
                self.send(Due::LoneDot, b".\r\n".to_vec(), Redaction::Normal);
                Event::Continue
            }
            (false, _) => {
                let error = self.not_sent();
                self.finish(Err(error))
            }
        }
    }

    /// Why a message whose envelope failed is not sent: MAIL refused, or recipients refused.
    fn not_sent(&self) -> Error {
        let Some(t) = self.transaction.as_ref() else {
            return self.protocol_error("a transaction".into());
        };
        if let Some((false, reply)) = &t.mail {
            return self.refusal_of("MAIL FROM", reply);
        }
        Error::RecipientsRefused {
            host: self.endpoint.host.clone(),
            transient: t.refused.iter().all(|(_, r)| r.code / 100 == 4),
            refused: t
                .refused
                .iter()
                .map(|(a, r)| (a.as_str().to_owned(), r.clone()))
                .collect(),
            accepted: t.accepted.iter().map(|a| a.as_str().to_owned()).collect(),
        }
    }

    fn finish(&mut self, result: Result<SendReport, Error>) -> Event {
        self.transaction = None;
        self.state = State::Idle;
        Event::Sent(result)
    }

    /// What a reply to an AUTH step means for the SASL driver.
    fn sasl_reply(&mut self, reply: &Reply<'_>) -> Result<SaslReply, Error> {
        let text = || SmtpReply::from_reply(reply).into();
        if reply.code != ReplyCode::AUTH_CHALLENGE {
            self.state = State::Idle;
        }
        match reply.code.get() {
            334 => {
                let encoded: Vec<u8> = reply
                    .lines
                    .first()
                    .map(|l| {
                        l.iter()
                            .copied()
                            .filter(|b| !b.is_ascii_whitespace())
                            .collect()
                    })
                    .unwrap_or_default();
                base64_decode(&encoded)
                    .map(SaslReply::Challenge)
                    .ok_or_else(|| self.protocol_error("a base64 challenge after 334".into()))
            }
            235 => Ok(SaslReply::Success),
            400..=499 => Ok(SaslReply::Unavailable(text())),
            500..=599 => Ok(SaslReply::Failure(text())),
            _ => Err(self.refusal("AUTH", reply)),
        }
    }

    /// The error for a reply that is not the success expected: 4xx temporary, 5xx permanent.
    fn refusal(&self, command: &str, reply: &Reply<'_>) -> Error {
        self.refusal_of(command, &SmtpReply::from_reply(reply))
    }

    fn refusal_of(&self, command: &str, reply: &SmtpReply) -> Error {
        let host = self.endpoint.host.clone();
        match reply.code / 100 {
            4 => Error::Temporary {
                host,
                command: command.to_owned(),
                reply: reply.clone().into(),
            },
            5 => Error::Rejected {
                host,
                command: command.to_owned(),
                reply: reply.clone().into(),
            },
            _ => Error::Protocol {
                host,
                protocol: Protocol::Smtp,
                detail: format!("unexpected reply to {command}: {reply}"),
            },
        }
    }

    /// A call the session's rules forbid now: the caller's mistake, not the server's.
    pub(crate) fn misuse(&self, what: impl Into<String>) -> Error {
        Error::Misuse {
            host: self.endpoint.host.clone(),
            protocol: Protocol::Smtp,
            what: what.into(),
        }
    }

    /// "expected `expected`".
    pub(crate) fn protocol_error(&self, expected: String) -> Error {
        Error::Protocol {
            host: self.endpoint.host.clone(),
            protocol: Protocol::Smtp,
            detail: format!("expected {expected}"),
        }
    }

    /// A broken connection or a reply that cannot be read: the session is out of step. Once
    /// the terminator is out, whether the message was accepted is unknown.
    fn broken(&mut self, error: mailcat_transport::Error, writing: bool) -> Error {
        self.poison.out_of_step(error.to_string());
        if self.window.due() == Some(&Due::EndOfData) {
            return Error::DeliveryUnknown {
                host: self.endpoint.host.clone(),
                reason: if writing {
                    format!("sending the end of the message failed: {error}")
                } else {
                    format!("no reply after the end of the message: {error}")
                },
            };
        }
        Error::Transport(error)
    }
}

impl Core for SmtpCore {
    type Event = Event;

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop(&self.poison)
    }

    fn transmitted(&mut self) {
        self.outbox.written();
    }

    fn handle_input(&mut self, input: &[u8]) -> Result<Progress<Event>, Error> {
        let Some(&due) = self.window.due() else {
            return Err(self.poison.desync(
                &self.endpoint,
                "a reply was read when none was due (a session bug)",
            ));
        };
        let (consumed, reply) = match self.decoder.decode(input) {
            Decoded::Event { consumed, event } => (consumed, event),
            Decoded::Incomplete { .. } => return Ok(Progress::NeedInput),
            Decoded::Invalid(source) => {
                let error = mailcat_transport::Error::Protocol {
                    host: self.endpoint.host.clone(),
                    protocol: Protocol::Smtp,
                    step: Step::Response,
                    source,
                };
                return Err(self.broken(error, false));
            }
        };
        if reply.is_closing() {
            let words = SmtpReply::from_reply(&reply).into();
            return Err(self.closed(words));
        }
        let reply = reply.into_owned();
        if let Err(unasked) = self.window.answered(input.len() - consumed) {
            return Err(self.poison.desync(
                &self.endpoint,
                format!(
                    "the server sent {} more bytes after its reply to {}, which nothing asked \
                     for: replies out of step",
                    unasked.extra,
                    due.name()
                ),
            ));
        }
        let event = self.answer(due, reply);
        Ok(Progress::Event { consumed, event })
    }

    fn handle_end(&mut self, unread: &[u8]) -> Error {
        let detail = (!unread.is_empty()).then(|| {
            self.decoder
                .end_of_input(unread)
                .err()
                .unwrap_or(DecodeError::Incomplete)
        });
        let error = mailcat_transport::Error::Closed {
            host: self.endpoint.host.clone(),
            step: Step::Response,
            detail,
        };
        self.broken(error, false)
    }

    fn handle_failure(&mut self, error: mailcat_transport::Error, _doing: &str) -> Error {
        // A failure while bytes were out and not yet all written is the write's.
        let writing = self.outbox.cut_off();
        self.broken(error, writing)
    }
}

fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    //! Byte transcripts: commands out, replies in, no runtime.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use mailcat_codec::smtp::parse_reply;
    use mailcat_transport::Security;

    /// A core for a server whose EHLO listed `extensions`.
    fn core(extensions: &[&str]) -> SmtpCore {
        let mut ehlo = String::from("250-smtp.test\r\n");
        for ext in extensions {
            ehlo.push_str(&format!("250-{ext}\r\n"));
        }
        ehlo.push_str("250 ENHANCEDSTATUSCODES\r\n");
        let (_, reply) = parse_reply(ehlo.as_bytes(), &Limits::smtp()).unwrap();
        let endpoint = Endpoint::new(Protocol::Smtp, "smtp.test", Security::ImplicitTls);
        SmtpCore::new(endpoint, Extensions::from_reply(&reply).unwrap())
    }

    fn envelope(to: &[&str]) -> Envelope {
        Envelope {
            from: Some(Address::new("alice@example.test").unwrap()),
            to: to.iter().map(|t| Address::new(t).unwrap()).collect(),
            ..Default::default()
        }
    }

    /// Every write the core queued, one string per write.
    fn writes(core: &mut SmtpCore) -> Vec<String> {
        let written = std::iter::from_fn(|| core.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .collect();
        // As the driver does once everything went out.
        core.transmitted();
        written
    }

    /// Feeds `bytes` as the server's and returns every event the core makes of them while
    /// replies are due (as the driver asks), and how much was left unused; stops at the first
    /// error.
    fn replies(core: &mut SmtpCore, bytes: &[u8]) -> (Vec<Result<Event, Error>>, usize) {
        let mut input = bytes;
        let mut events = Vec::new();
        while !core.window.is_empty() {
            match core.handle_input(input) {
                Ok(Progress::Event { consumed, event }) => {
                    input = &input[consumed..];
                    events.push(Ok(event));
                }
                Ok(Progress::NeedInput) => return (events, input.len()),
                Err(e) => {
                    events.push(Err(e));
                    return (events, input.len());
                }
            }
        }
        (events, input.len())
    }

    fn start(core: &mut SmtpCore, to: &[&str]) {
        let t = core
            .prepare(&envelope(to), &MessageInfo::default())
            .unwrap();
        core.begin(t, b"").unwrap();
    }

    fn kinds(events: &[Result<Event, Error>]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                Ok(Event::Continue) => "continue",
                Ok(Event::SendBody) => "body",
                Ok(Event::Sent(Ok(_))) => "sent",
                Ok(Event::Sent(Err(_))) => "not sent",
                Ok(Event::Done(Ok(()))) => "done",
                Ok(Event::Done(Err(_))) => "refused",
                Ok(Event::Sasl(_)) => "sasl",
                Err(_) => "error",
            })
            .collect()
    }

    #[test]
    fn with_pipelining_the_envelope_goes_out_in_one_write() {
        let mut core = core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        assert_eq!(
            writes(&mut core),
            ["MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"]
        );
        let (events, _) = replies(&mut core, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
        assert_eq!(kinds(&events), ["continue", "continue", "body"]);
        core.body_push(b".hidden\n");
        core.body_end();
        assert_eq!(writes(&mut core), ["..hidden\r\n.\r\n"]);
        let (events, _) = replies(&mut core, b"250 2.0.0 Ok: queued\r\n");
        let Some(Ok(Event::Sent(Ok(report)))) = events.into_iter().next() else {
            panic!("no report")
        };
        assert_eq!(report.reply.to_string(), "250 2.0.0 Ok: queued");
        assert_eq!(report.accepted.len(), 1);
        assert!(writes(&mut core).is_empty());
        assert_eq!(core.state, State::Idle);
    }

    #[test]
    fn without_pipelining_one_command_goes_at_a_time() {
        for mut core in [core(&[]), {
            let mut c = core(&["PIPELINING"]);
            c.set_pipelining(false);
            c
        }] {
            start(&mut core, &["bob@example.test", "carol@example.test"]);
            assert_eq!(writes(&mut core), ["MAIL FROM:<alice@example.test>\r\n"]);
            assert_eq!(kinds(&replies(&mut core, b"250 Ok\r\n").0), ["continue"]);
            assert_eq!(writes(&mut core), ["RCPT TO:<bob@example.test>\r\n"]);
            assert_eq!(kinds(&replies(&mut core, b"250 Ok\r\n").0), ["continue"]);
            assert_eq!(writes(&mut core), ["RCPT TO:<carol@example.test>\r\n"]);
            assert_eq!(kinds(&replies(&mut core, b"250 Ok\r\n").0), ["continue"]);
            assert_eq!(writes(&mut core), ["DATA\r\n"]);
            assert_eq!(kinds(&replies(&mut core, b"354 go\r\n").0), ["body"]);
        }
    }

    #[test]
    fn without_pipelining_a_second_reply_is_not_taken_for_the_next_commands() {
        let mut core = core(&[]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        let (events, _) = replies(&mut core, b"250 Ok\r\n250 planted for RCPT\r\n");
        let Some(Err(Error::Protocol { detail, .. })) = events.last() else {
            panic!("{events:?}")
        };
        assert!(detail.contains("after its reply to MAIL FROM"), "{detail}");
        assert!(writes(&mut core).is_empty(), "no RCPT after the desync");
        assert!(core.is_poisoned());
    }

    #[test]
    fn replies_are_matched_to_the_commands_in_order() {
        let mut core = core(&["PIPELINING"]);
        core.set_allow_partial(true);
        start(&mut core, &["bob@example.test", "carol@example.test"]);
        assert_eq!(writes(&mut core).len(), 1, "one write, DATA included");
        // Handed over in one piece: the first reply is not the last one due.
        let (events, left) = replies(
            &mut core,
            b"250 Ok\r\n550 5.1.1 <bob@example.test>: unknown\r\n250 Ok\r\n354 go\r\n",
        );
        assert_eq!(kinds(&events), ["continue", "continue", "continue", "body"]);
        assert_eq!(left, 0);
        core.body_end();
        writes(&mut core);
        let (events, _) = replies(&mut core, b"250 queued\r\n");
        let Some(Ok(Event::Sent(Ok(report)))) = events.into_iter().next() else {
            panic!("no report")
        };
        assert_eq!(report.accepted[0].as_str(), "carol@example.test");
        assert_eq!(report.refused[0].0.as_str(), "bob@example.test");
        assert_eq!(report.refused[0].1.code, 550);
    }

    #[test]
    fn a_partly_refused_recipient_list_sends_no_message() {
        let mut core = core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test", "carol@example.test"]);
        assert_eq!(
            writes(&mut core),
            [
                "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n\
              RCPT TO:<carol@example.test>\r\n"
            ],
            "DATA waits for the recipients' replies"
        );
        let (mut events, _) = replies(&mut core, b"250 Ok\r\n250 Ok\r\n452 4.2.2 full\r\n");
        let Some(Ok(Event::Sent(Err(Error::RecipientsRefused {
            refused,
            accepted,
            transient,
            ..
        })))) = events.pop()
        else {
            panic!("{events:?}")
        };
        assert_eq!(refused[0].0, "carol@example.test");
        // Typed: the code and the enhanced code, not words to match on.
        assert_eq!(refused[0].1.code, 452);
        assert_eq!(
            refused[0]
                .1
                .enhanced
                .map(|c| (c.class, c.subject, c.detail)),
            Some((4, 2, 2))
        );
        assert_eq!(accepted, ["bob@example.test"]);
        assert!(transient);
        assert!(writes(&mut core).is_empty(), "no DATA");
        assert!(
            !core.is_poisoned(),
            "in step: the session may RSET and go on"
        );
        core.command(&Command::Rset, b"").unwrap();
        assert_eq!(writes(&mut core), ["RSET\r\n"]);
    }

    #[test]
    fn an_unwanted_354_gets_a_lone_dot() {
        let mut core = core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        let (events, _) = replies(&mut core, b"250 Ok\r\n550 no such user\r\n354 go\r\n");
        assert_eq!(kinds(&events), ["continue", "continue", "continue"]);
        assert_eq!(writes(&mut core), [".\r\n"]);
        let (mut events, _) = replies(&mut core, b"554 no valid recipients\r\n");
        assert!(
            matches!(
                events.pop(),
                Some(Ok(Event::Sent(Err(Error::RecipientsRefused { .. }))))
            ),
            "{events:?}"
        );
    }

    #[test]
    fn a_refused_mail_from_stops_the_envelope_without_pipelining() {
        let mut core = core(&[]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        let (mut events, _) = replies(&mut core, b"451 4.3.0 try later\r\n");
        assert!(
            matches!(
                events.pop(),
                Some(Ok(Event::Sent(Err(Error::Temporary { ref command, .. })))) if command == "MAIL FROM"
            ),
            "{events:?}"
        );
        assert!(writes(&mut core).is_empty());
    }

    #[test]
    fn bytes_waiting_before_mail_from_poison_and_nothing_is_queued() {
        let mut core = core(&["PIPELINING"]);
        let t = core
            .prepare(&envelope(&["bob@example.test"]), &MessageInfo::default())
            .unwrap();
        let e = core.begin(t, b"250 planted\r\n").unwrap_err();
        assert!(
            matches!(&e, Error::Protocol { detail, .. } if detail.contains("250 planted")),
            "{e:?}"
        );
        assert!(core.is_poisoned());
        assert!(writes(&mut core).is_empty());
    }

    #[test]
    fn a_421_waiting_before_a_command_closes_with_its_words() {
        let mut core = core(&[]);
        let e = core
            .command(&Command::Noop, b"421 4.4.2 timeout exceeded\r\n")
            .unwrap_err();
        assert!(
            matches!(&e, Error::Closed { reply, .. } if reply.to_string() == "421 4.4.2 timeout exceeded"),
            "{e:?}"
        );
        assert_eq!(e.reply().and_then(crate::Reply::smtp_code), Some(421));
        assert!(writes(&mut core).is_empty());
        mailcat_tests::assert_matches!(core.check(), Err(Error::Closed { .. }));
    }

    #[test]
    fn an_extra_reply_after_the_last_one_due_poisons() {
        // After DATA's 354, the end of a pipelined group.
        let mut core = core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        let (events, _) = replies(&mut core, b"250 Ok\r\n250 Ok\r\n354 go\r\n250 fake\r\n");
        let Some(Err(Error::Protocol { detail, .. })) = events.last() else {
            panic!("{events:?}")
        };
        assert!(detail.contains("after its reply to DATA"), "{detail}");
        assert!(core.is_poisoned());

        // After the final reply to the message.
        let mut core = self::core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        replies(&mut core, b"250 Ok\r\n250 Ok\r\n354 go\r\n");
        core.body_end();
        writes(&mut core);
        let (events, _) = replies(&mut core, b"250 queued\r\n250 planted\r\n");
        let Some(Err(Error::Protocol { detail, .. })) = events.last() else {
            panic!("{events:?}")
        };
        assert!(detail.contains("the end of the message"), "{detail}");
        assert!(core.is_poisoned());
    }

    #[test]
    fn a_421_mid_transaction_closes_with_the_servers_words() {
        let mut core = core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        let (events, _) = replies(&mut core, b"250 Ok\r\n421 4.3.2 shutting down\r\n");
        assert_eq!(kinds(&events), ["continue", "error"]);
        let Some(Err(Error::Closed { reply, .. })) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(reply.to_string(), "421 4.3.2 shutting down");
        assert_eq!(reply.smtp_code(), Some(421));
        let again = core.check().unwrap_err();
        assert!(
            matches!(&again, Error::Closed { reply, .. } if reply.smtp_code() == Some(421)),
            "the goodbye stays typed in the poison: {again:?}"
        );
    }

    #[test]
    fn a_poisoned_core_refuses_every_command_and_queues_nothing() {
        let mut core = core(&["PIPELINING", "AUTH PLAIN"]);
        core.out_of_step("a test");
        assert!(core.command(&Command::Noop, b"").is_err());
        assert!(core.command(&Command::Quit, b"").is_err());
        assert!(core
            .prepare(&envelope(&["bob@example.test"]), &MessageInfo::default())
            .is_err());
        assert!(core
            .sasl_line(b"AUTH PLAIN\r\n", Redaction::Normal)
            .is_err());
        assert!(writes(&mut core).is_empty());
    }

    #[test]
    fn a_call_dropped_with_replies_due_poisons_the_next_command() {
        let mut core = core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        // Only MAIL's reply was read when the send was dropped: RCPT's and DATA's are due.
        replies(&mut core, b"250 Ok\r\n");
        let e = core
            .prepare(&envelope(&["carol@example.test"]), &MessageInfo::default())
            .and_then(|t| core.begin(t, b""))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Misuse { what, .. } if what.contains("abandoned")),
            "the caller's dropped call is a misuse, not the server's fault: {e:?}"
        );
        assert!(writes(&mut core).is_empty());
        assert!(core.is_poisoned());
        // Poisoned as before: the next command fails at its start, blaming the earlier error.
        let later = core.command(&Command::Noop, b"").unwrap_err();
        assert!(
            matches!(&later, Error::Protocol { detail, .. } if detail.contains("abandoned")),
            "{later:?}"
        );

        // Dropped mid-body: the server is still in DATA.
        let mut core = self::core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        replies(&mut core, b"250 Ok\r\n250 Ok\r\n354 go\r\n");
        core.body_push(b"half a message");
        mailcat_tests::assert_matches!(
            core.command(&Command::Noop, b""),
            Err(Error::Misuse { .. })
        );
        assert!(writes(&mut core).is_empty());
        assert!(core.is_poisoned());
    }

    #[test]
    fn a_connection_lost_after_the_terminator_leaves_the_outcome_unknown() {
        let mut core = core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        replies(&mut core, b"250 Ok\r\n250 Ok\r\n354 go\r\n");
        core.body_push(b"Hello");
        // The write of the end fails ...
        core.body_end();
        assert!(core.poll_transmit().is_some());
        let io = || mailcat_transport::Error::Closed {
            host: "smtp.test".into(),
            step: Step::Write,
            detail: None,
        };
        let e = core.handle_failure(io(), "writing");
        assert!(
            matches!(&e, Error::DeliveryUnknown { reason, .. } if reason.contains("sending the end")),
            "{e:?}"
        );
        assert!(core.is_poisoned());

        // ... or the end went out and the connection fails while the reply is awaited ...
        let mut core = self::core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        replies(&mut core, b"250 Ok\r\n250 Ok\r\n354 go\r\n");
        core.body_end();
        writes(&mut core);
        let e = core.handle_failure(io(), "reading");
        assert!(
            matches!(&e, Error::DeliveryUnknown { reason, .. } if reason.contains("no reply after")),
            "{e:?}"
        );

        // ... or the server goes before its final reply.
        let mut core = self::core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        replies(&mut core, b"250 Ok\r\n250 Ok\r\n354 go\r\n");
        core.body_end();
        writes(&mut core);
        replies(&mut core, b"");
        let e = core.handle_end(b"250 que");
        assert!(
            matches!(&e, Error::DeliveryUnknown { reason, .. } if reason.contains("no reply")),
            "{e:?}"
        );

        // Before the terminator, a lost connection is a transport error.
        let mut core = self::core(&["PIPELINING"]);
        start(&mut core, &["bob@example.test"]);
        writes(&mut core);
        replies(&mut core, b"250 Ok\r\n");
        mailcat_tests::assert_matches!(core.handle_end(b""), Error::Transport(_));
    }

    #[test]
    fn a_large_envelope_is_pipelined_within_the_window() {
        let mut core = core(&["PIPELINING"]);
        core.set_allow_partial(true);
        let to: Vec<String> = (0..150).map(|i| format!("r{i}@example.test")).collect();
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        start(&mut core, &to);
        let first = writes(&mut core);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].matches("\r\n").count(), PIPELINE_WINDOW);
        assert_eq!(kinds(&replies(&mut core, b"250 Ok\r\n").0), ["continue"]);
        assert_eq!(writes(&mut core), ["RCPT TO:<r99@example.test>\r\n"]);
        let rest = "250 Ok\r\n".repeat(PIPELINE_WINDOW + 50);
        let (events, _) = replies(&mut core, rest.as_bytes());
        assert_eq!(events.len(), PIPELINE_WINDOW + 50);
        mailcat_tests::assert_matches!(events.last(), Some(Ok(Event::Continue)));
        let refilled: usize = writes(&mut core)
            .iter()
            .map(|w| w.matches("\r\n").count())
            .sum();
        assert_eq!(refilled, 51, "the rest of the RCPTs, then DATA");
    }

    #[test]
    fn auth_lines_and_what_each_reply_means() {
        assert_eq!(
            SmtpCore::auth_line("PLAIN", Some(b"\0a\0b")).unwrap(),
            b"AUTH PLAIN AGEAYg==\r\n"
        );
        mailcat_tests::assert_matches!(
            SmtpCore::auth_line("PLAIN", Some(&[b'x'; 600])),
            Err(EncodeError::TooLong { .. })
        );
        let mut core = core(&["AUTH PLAIN LOGIN"]);
        core.sasl_line(b"AUTH LOGIN\r\n", Redaction::Normal)
            .unwrap();
        assert_eq!(writes(&mut core), ["AUTH LOGIN\r\n"]);
        let (events, _) = replies(&mut core, b"334 VXNlcm5hbWU6\r\n");
        assert!(
            matches!(&events[..], [Ok(Event::Sasl(Ok(SaslReply::Challenge(c))))] if c == b"Username:"),
            "{events:?}"
        );
        // Between two steps of the exchange the next line may go.
        core.sasl_line(b"YQ==\r\n", Redaction::Secret).unwrap();
        let (events, _) = replies(&mut core, b"535 5.7.8 Authentication failed\r\n");
        assert!(
            matches!(&events[..], [Ok(Event::Sasl(Ok(SaslReply::Failure(t))))] if t.enhanced_code().is_some_and(|c| c.to_string() == "5.7.8")),
            "{events:?}"
        );
        assert_eq!(core.state, State::Idle);

        for (reply, want) in [
            (&b"235 2.7.0 ok\r\n"[..], "success"),
            (b"454 4.7.0 later\r\n", "unavailable"),
            (b"334 not*base64\r\n", "error"),
        ] {
            let mut core = self::core(&["AUTH PLAIN"]);
            core.sasl_line(b"AUTH PLAIN\r\n", Redaction::Normal)
                .unwrap();
            let (mut events, _) = replies(&mut core, reply);
            let got = match events.pop() {
                Some(Ok(Event::Sasl(Ok(SaslReply::Success)))) => "success",
                Some(Ok(Event::Sasl(Ok(SaslReply::Unavailable(_))))) => "unavailable",
                Some(Ok(Event::Sasl(Err(Error::Protocol { .. })))) => "error",
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want);
        }
    }

    #[test]
    fn rset_noop_quit_are_one_command_one_reply() {
        let mut core = core(&[]);
        core.command(&Command::Noop, b"").unwrap();
        assert_eq!(writes(&mut core), ["NOOP\r\n"]);
        assert_eq!(kinds(&replies(&mut core, b"250 Ok\r\n").0), ["done"]);
        core.command(&Command::Rset, b"").unwrap();
        assert_eq!(writes(&mut core), ["RSET\r\n"]);
        assert_eq!(kinds(&replies(&mut core, b"502 no\r\n").0), ["refused"]);
        // QUIT goes whatever is waiting: the session ends anyway.
        core.command(&Command::Quit, b"250 late\r\n").unwrap();
        assert_eq!(writes(&mut core), ["QUIT\r\n"]);
    }

    #[test]
    fn what_the_server_lacks_is_refused_before_anything_is_queued() {
        let core = core(&["SIZE 1000"]);
        let big = MessageInfo {
            size: Some(2000),
            ..Default::default()
        };
        mailcat_tests::assert_matches!(
            core.prepare(&envelope(&["bob@example.test"]), &big),
            Err(Error::MessageTooLarge { .. })
        );
        let eight = MessageInfo {
            eight_bit: true,
            ..Default::default()
        };
        mailcat_tests::assert_matches!(
            core.prepare(&envelope(&["bob@example.test"]), &eight),
            Err(Error::MissingExtension {
                extension: "8BITMIME",
                ..
            })
        );
        mailcat_tests::assert_matches!(
            core.prepare(&envelope(&["bøb@example.test"]), &MessageInfo::default()),
            Err(Error::MissingExtension {
                extension: "SMTPUTF8",
                ..
            })
        );
    }
}
