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
//!   (SECURITY.md #52); a connection lost once the terminator is out leaves the outcome unknown
//!   ([`Error::DeliveryUnknown`], SECURITY.md #65).
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
use crate::smtp::{Address, Envelope, MessageInfo, SendReport, ServerReply, SmtpUtf8};
use crate::Error;

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
            Due::Mail => "MAIL FROM",
            Due::Rcpt(_) => "RCPT TO",
            Due::Data => "DATA",
            Due::EndOfData => "the end of the message",
            Due::LoneDot => "the end of an empty message",
            Due::Auth => "AUTH",
            Due::Rset => "RSET",
            Due::Noop => "NOOP",
            Due::Quit => "QUIT",
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
    mail: Option<(bool, ServerReply)>,
    accepted: Vec<Address>,
    refused: Vec<(Address, ServerReply)>,
    data: Option<ServerReply>,
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
    /// Bytes were handed to the driver to write since the last input: a failure now is the
    /// write's.
    writing: bool,
    allow_partial: bool,
    pipelining: bool,
    smtputf8: SmtpUtf8,
}

impl SmtpCore {
    /// The core for a session with `endpoint`, whose EHLO listed `extensions`.
    pub(crate) fn new(endpoint: Endpoint, extensions: Extensions) -> Self {
        SmtpCore {
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
            writing: false,
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
                let due = self.window.len();
                Err(self.poison.desync(
                    &self.endpoint,
                    format!(
                        "{what} was abandoned halfway ({due} replies still due): the server \
                         may still be answering it"
                    ),
                ))
            }
        }
    }

    /// The rule "nothing unsolicited before a command" over `buffered`, what the driver found
    /// waiting before a command. A `421` there is the server ending the session (an idle
    /// timeout): closed with its words.
    pub(crate) fn nothing_unsolicited(&mut self, buffered: &[u8]) -> Result<(), Error> {
        if buffered.starts_with(b"421") {
            let words = match self.decoder.decode(buffered) {
                Decoded::Event { event, .. } => ServerReply::from_reply(&event).to_string(),
                _ => first_line(buffered),
            };
            return Err(self.closed(words));
        }
        nothing_unsolicited(&mut self.poison, &self.endpoint, buffered)
    }

    /// The server ended the session with `words`.
    fn closed(&mut self, words: String) -> Error {
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
                return Err(self.protocol_error(format!(
                    "{} is not a command the session sends on its own",
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
                        t.mail = Some((reply.is_positive(), ServerReply::from_reply(&reply)));
                    }
                    Due::Rcpt(i) => {
                        let to = t.to[i].clone();
                        if reply.is_positive() {
                            t.accepted.push(to);
                        } else {
                            t.refused.push((to, ServerReply::from_reply(&reply)));
                        }
                    }
                    _ => t.data = Some(ServerReply::from_reply(&reply)),
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
                        reply: ServerReply::from_reply(&reply),
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
                .map(|(a, r)| (a.as_str().to_owned(), r.to_string()))
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
        let text = || ServerReply::from_reply(reply).to_string();
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
        self.refusal_of(command, &ServerReply::from_reply(reply))
    }

    fn refusal_of(&self, command: &str, reply: &ServerReply) -> Error {
        let host = self.endpoint.host.clone();
        let text = reply.to_string();
        match reply.code / 100 {
            4 => Error::Temporary {
                host,
                command: command.to_owned(),
                reply: text,
            },
            5 => Error::Rejected {
                host,
                command: command.to_owned(),
                reply: text,
            },
            _ => Error::Protocol {
                host,
                protocol: Protocol::Smtp,
                detail: format!("unexpected reply to {command}: {text}"),
            },
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
        let transmit = self.outbox.pop()?;
        self.writing = true;
        Some(transmit)
    }

    fn handle_input(&mut self, input: &[u8]) -> Result<Progress<Event>, Error> {
        self.writing = false;
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
            let words = ServerReply::from_reply(&reply).to_string();
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
        let writing = std::mem::take(&mut self.writing);
        self.broken(error, writing)
    }
}

fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
