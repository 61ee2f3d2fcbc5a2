//! The opening of every mail session, for IMAP, POP3 and SMTP alike: the greeting, the
//! capabilities (IMAP `CAPABILITY`, POP3 `CAPA`, SMTP `EHLO`), the STARTTLS decision and
//! exchange, and the goodbye. A sans-I/O core: bytes in, bytes and events out, no runtime, no
//! clock. [`crate::open`] drives it and does the I/O (connect, TLS, the upgrade itself).
//!
//! ```text
//!            ┌─ a TLS record / another protocol's greeting: the wrong port or TLS mode
//! greeting ──┼─ refusal (BYE, -ERR, 421/554): the server's words
//!            └─ OK / PREAUTH / +OK / 220 ─► capabilities ─► [STARTTLS ─► (TLS) ─► capabilities]
//! ```
//!
//! The rules held here, each tested below with a byte transcript:
//! - the first bytes are recognised before the protocol's decoder sees them: a TLS record means
//!   the port expects implicit TLS, another protocol's greeting means another service;
//! - `PREAUTH` before STARTTLS leaves no way to start TLS: refused (RFC 3501 §6.2.1);
//! - a greeting's `[ALERT]` is kept only over implicit TLS: before STARTTLS anyone on the path
//!   could have written it (RFC 3501 §7.1);
//! - POP3 `CAPA` answered `-ERR` means no capabilities (RFC 1939 servers); any other failure to
//!   answer the capability query is an error, never "no STARTTLS, carry on" (CVE-2021-22946);
//! - STARTTLS is required with [`Security::StartTls`]: not offered is
//!   [`TransportError::StartTlsNotOffered`], refused is an error, never a plaintext fallback;
//!   a byte after the go-ahead is an injection (CVE-2021-22947);
//! - POP3 and SMTP are lock-step: a reply nobody asked for is refused (SECURITY.md #52); IMAP's
//!   untagged data may come at any time;
//! - at most 1,000 untagged responses or listing lines to one command before any login
//!   (SECURITY.md row 40).
//!
//! Its errors are the transport's ([`TransportError`]), as the account check has always shown
//! them; through [`Core`] they come wrapped in [`Error::Transport`].

use mailcat_codec::core::text::escape_bytes;
use mailcat_codec::imap::command::{Command as ImapCommand, EncodeOptions};
use mailcat_codec::imap::{self, Code, Data, Response, StatusKind, TagGenerator};
use mailcat_codec::smtp::command::{ClientId, Command as SmtpCommand};
use mailcat_codec::{pop3, smtp, DecodeError, Limits};
use mailcat_transport::sniff::{is_tls_record, plaintext_greeting};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Error as TransportError, Protocol, Security, Step};

use super::{Core, Outbox, Poison, Progress, Transmit};
use crate::Error;

/// The server's greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Its text, escaped for display (never trust it: before TLS anyone could have written it).
    pub text: String,
    /// IMAP `PREAUTH`: the server logged the client in already.
    pub preauth: bool,
    /// Capabilities announced in the greeting itself (IMAP `[CAPABILITY …]`), if any.
    pub capabilities: Option<Capabilities>,
    /// The text of an IMAP greeting's `[ALERT]`, escaped, to be shown to the user (RFC 3501
    /// §7.1). Only a greeting that came over implicit TLS keeps it: one before STARTTLS could
    /// have been written by anyone on the path, and a message planted there is a phishing tool.
    pub alert: Option<String>,
}

/// What the server says it can do: IMAP capability atoms, POP3 CAPA lines or SMTP EHLO
/// extension lines, as the server sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The protocol they belong to.
    pub protocol: Protocol,
    /// One entry per atom (IMAP) or line (POP3, SMTP), as sent.
    pub items: Vec<String>,
}

impl Capabilities {
    /// True if the first word of an entry is `name` (case-insensitive): `has("IDLE")`,
    /// `has("SIZE")`, `has("STLS")`.
    pub fn has(&self, name: &str) -> bool {
        self.items.iter().any(|item| {
            let word = item.split([' ', '=']).next().unwrap_or_default();
            word.eq_ignore_ascii_case(name)
        })
    }

    /// True if the server offers to start TLS (`STARTTLS`, or `STLS` for POP3).
    pub fn offers_starttls(&self) -> bool {
        self.has(self.protocol.starttls_command())
    }
}

/// The most untagged responses or listing lines one command of the opening (CAPABILITY, CAPA,
/// STARTTLS) may bring: real servers send one response or a few dozen lines; a server that
/// sends more, before any login, is trying to exhaust memory (SECURITY.md row 40).
const MAX_ITEMS: usize = 1_000;

/// What the opening core made of some input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Part of a reply (an untagged response, a listing line): used, nothing to act on yet.
    Part,
    /// The greeting, accepted.
    Greeting(Greeting),
    /// The answer to the capability query.
    Capabilities(Capabilities),
    /// The server's go-ahead for TLS, with nothing after it: the handshake may start.
    StartTls,
}

/// The protocol decoders and encoder state the opening needs between calls.
#[derive(Debug)]
enum Codec {
    Imap {
        decoder: imap::ResponseDecoder,
        tags: TagGenerator,
        options: EncodeOptions,
    },
    Pop3 {
        decoder: pop3::Decoder,
    },
    Smtp {
        limits: Limits,
    },
}

/// What the core waits for.
#[derive(Debug)]
enum Due {
    /// The greeting (the state a connection starts in).
    Greeting,
    /// Nothing: a command may be sent.
    Nothing,
    /// The reply to the capability query or to STARTTLS (`step` says which).
    Reply(Exchange),
    /// The goodbye was sent: nothing more.
    Gone,
}

/// One command's reply, as it comes in.
#[derive(Debug)]
struct Exchange {
    /// [`Step::Capabilities`] or [`Step::StartTls`].
    step: Step,
    /// The IMAP tag the command was sent with.
    tag: Option<String>,
    /// IMAP untagged responses so far.
    untagged: usize,
    /// IMAP capability atoms from untagged `CAPABILITY`, or POP3 listing lines.
    items: Vec<String>,
    /// The POP3 `+OK` text of a multi-line reply, once read.
    status: Option<String>,
}

/// The opening conversation of one connection (see the module's documentation). A new one
/// is made after STARTTLS: nothing learned before the upgrade is kept.
#[derive(Debug)]
pub(crate) struct Opening {
    endpoint: Endpoint,
    /// TLS is on (implicit TLS, or after STARTTLS).
    tls: bool,
    codec: Codec,
    client_id: ClientId,
    due: Due,
    outbox: Outbox,
    poison: Poison,
    /// Some byte of the greeting came: a greeting timeout is then not "the server is silent".
    heard: bool,
}

impl Opening {
    /// The opening of a connection to `endpoint`, `tls` when TLS is already on; `client_id` is
    /// the name given in SMTP EHLO.
    pub(crate) fn new(endpoint: Endpoint, tls: bool, client_id: ClientId) -> Self {
        let codec = match endpoint.protocol {
            Protocol::Imap => Codec::Imap {
                decoder: imap::ResponseDecoder::new(Limits::imap()),
                tags: TagGenerator::new(),
                options: EncodeOptions::default(),
            },
            Protocol::Pop3 => Codec::Pop3 {
                decoder: pop3::Decoder::new(Limits::pop3()),
            },
            Protocol::Smtp => Codec::Smtp {
                limits: Limits::smtp(),
            },
        };
        Opening {
            endpoint,
            tls,
            codec,
            client_id,
            due: Due::Greeting,
            outbox: Outbox::default(),
            poison: Poison::default(),
            heard: false,
        }
    }

    /// The opening over TLS after STARTTLS: no greeting comes, the capabilities are asked
    /// again, and nothing from before the upgrade is kept (fresh decoders, IMAP tags from the
    /// start), RFC 3207 §4.2, RFC 2595 §3.1.
    pub(crate) fn after_starttls(endpoint: Endpoint, client_id: ClientId) -> Self {
        let mut opening = Opening::new(endpoint, true, client_id);
        opening.due = Due::Nothing;
        opening
    }

    /// The server.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The EHLO name, for the opening after STARTTLS.
    pub(crate) fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The IMAP tag generator, for the session that takes over (tags keep counting up).
    pub(crate) fn into_tags(self) -> Option<TagGenerator> {
        match self.codec {
            Codec::Imap { tags, .. } => Some(tags),
            _ => None,
        }
    }

    /// Queues the capability query (IMAP `CAPABILITY`, POP3 `CAPA`, SMTP `EHLO`). `arrived`
    /// is every byte buffered now, when no reply is due: for POP3 and SMTP they were not asked
    /// for.
    pub(crate) fn ask_capabilities(&mut self, arrived: &[u8]) -> Result<(), TransportError> {
        self.ask(Step::Capabilities, arrived)
    }

    /// Whether STARTTLS must be done now, given the capabilities asked in plaintext: yes with
    /// [`Security::StartTls`] before TLS. Not offered is an error: never a plaintext fallback
    /// (the offer may have been stripped by someone on the path).
    pub(crate) fn needs_starttls(
        &self,
        capabilities: &Capabilities,
    ) -> Result<bool, TransportError> {
        if self.endpoint.security != Security::StartTls || self.tls {
            return Ok(false);
        }
        if !capabilities.offers_starttls() {
            return Err(TransportError::StartTlsNotOffered {
                host: self.endpoint.host.clone(),
                command: self.endpoint.protocol.starttls_command(),
                tls_url: self.own_implicit_tls_url(),
            });
        }
        Ok(true)
    }

    /// Queues STARTTLS (STLS for POP3). Its answer must be the go-ahead (IMAP tagged OK,
    /// `+OK`, `220`) with nothing after it ([`Event::StartTls`]); a refusal is an error.
    pub(crate) fn ask_starttls(&mut self, arrived: &[u8]) -> Result<(), TransportError> {
        self.ask(Step::StartTls, arrived)
    }

    /// Queues the goodbye (`LOGOUT`, `QUIT`); nothing more is sent, and its answer is not
    /// awaited.
    pub(crate) fn goodbye(&mut self) {
        if matches!(self.due, Due::Gone) || self.poison.is_poisoned() {
            return;
        }
        let bytes = match &mut self.codec {
            Codec::Imap { tags, options, .. } => ImapCommand::Logout
                .encode(&tags.next_tag(), options)
                .map(|e| e.to_bytes()),
            Codec::Pop3 { .. } => pop3::command::Command::Quit.encode(),
            Codec::Smtp { .. } => SmtpCommand::Quit.encode(),
        };
        if let Ok(bytes) = bytes {
            self.outbox.push(bytes, Redaction::Normal);
        }
        self.due = Due::Gone;
    }

    /// Checks that a command may be sent now, and queues it.
    fn ask(&mut self, step: Step, arrived: &[u8]) -> Result<(), TransportError> {
        if self.poison.is_poisoned() || !matches!(self.due, Due::Nothing) {
            // A reply is still due (a call dropped halfway), or the conversation is over.
            self.poison
                .out_of_step("a command while another reply was due");
            return Err(self.error(
                step,
                "no command before the reply due (the opening is out of step after an earlier error)",
            ));
        }
        // POP3 and SMTP: bytes waiting before the command came after the previous reply.
        self.lock_step(Step::Response, arrived.len())?;
        let bytes = match &mut self.codec {
            Codec::Imap { tags, options, .. } => {
                let command = if step == Step::StartTls {
                    ImapCommand::StartTls
                } else {
                    ImapCommand::Capability
                };
                let tag = tags.next_tag();
                let encoded = command.encode(&tag, options).map(|e| e.to_bytes());
                encoded.map(|bytes| (bytes, Some(tag.as_str().to_owned())))
            }
            Codec::Pop3 { decoder } => {
                let command = if step == Step::StartTls {
                    decoder.expect(pop3::Expect::SingleLine);
                    pop3::command::Command::Stls
                } else {
                    decoder.expect(pop3::Expect::MultiLine(pop3::Body::Lines));
                    pop3::command::Command::Capa
                };
                command.encode().map(|bytes| (bytes, None))
            }
            Codec::Smtp { .. } => {
                let command = if step == Step::StartTls {
                    SmtpCommand::StartTls
                } else {
                    SmtpCommand::Ehlo(self.client_id.clone())
                };
                command.encode().map(|bytes| (bytes, None))
            }
        };
        let (bytes, tag) = bytes.map_err(|e| TransportError::Refused {
            host: self.endpoint.host.clone(),
            step: Step::Write,
            reply: e.to_string(),
        })?;
        self.outbox.push(bytes, Redaction::Normal);
        self.due = Due::Reply(Exchange {
            step,
            tag,
            untagged: 0,
            items: Vec::new(),
            status: None,
        });
        Ok(())
    }

    /// Decodes the front of `input` (see [`Core::handle_input`]), with the transport's errors.
    pub(crate) fn input(&mut self, input: &[u8]) -> Result<Progress<Event>, TransportError> {
        if input.is_empty() {
            return Ok(Progress::NeedInput);
        }
        let result = match self.due {
            Due::Greeting => {
                self.heard = true;
                self.greeting(input)
            }
            Due::Reply(_) => self.reply(input),
            Due::Nothing | Due::Gone => return Ok(Progress::NeedInput),
        };
        match result {
            Ok(Some((consumed, event))) => Ok(Progress::Event { consumed, event }),
            Ok(None) => Ok(Progress::NeedInput),
            Err(e) => {
                self.poison.out_of_step(e.to_string());
                Err(e)
            }
        }
    }

    /// The greeting: first bytes, then the protocol's decoder.
    fn greeting(&mut self, input: &[u8]) -> Result<Option<(usize, Event)>, TransportError> {
        let protocol = self.endpoint.protocol;
        match first_bytes(input, protocol) {
            First::Wait => return Ok(None),
            First::Tls => {
                return Err(TransportError::TlsServerOnPlaintextConnection {
                    host: self.endpoint.host.clone(),
                    port: self.endpoint.port,
                    tls_url: Endpoint {
                        security: Security::ImplicitTls,
                        ..self.endpoint.clone()
                    }
                    .url(),
                })
            }
            First::Foreign(found, greeting) => {
                return Err(TransportError::WrongProtocol {
                    tls: self.tls,
                    host: self.endpoint.host.clone(),
                    port: self.endpoint.port,
                    expected: protocol,
                    found,
                    greeting,
                })
            }
            First::Expected => {}
        }
        let decoded = match &mut self.codec {
            Codec::Imap { decoder, .. } => decoder
                .decode(input)
                .and_then(|(used, event)| Ok((used, imap_greeting(event)?))),
            Codec::Pop3 { decoder } => decoder.decode(input).and_then(|(used, event)| {
                let pop3::Event::Status(status) = event else {
                    return Err(DecodeError::Invalid {
                        offset: 0,
                        expected: "+OK or -ERR",
                    });
                };
                let text = escape_bytes(&status.text);
                Ok((
                    used,
                    if status.is_ok() {
                        Ok(plain_greeting(text))
                    } else {
                        Err(format!("-ERR {text}"))
                    },
                ))
            }),
            Codec::Smtp { limits } => smtp::parse_reply(input, limits).map(|(used, reply)| {
                let text = smtp_text(&reply);
                (
                    used,
                    if reply.code.get() == 220 {
                        Ok(plain_greeting(text))
                    } else {
                        Err(format!("{} {text}", reply.code.get()))
                    },
                )
            }),
        };
        let (used, greeting) = match decoded {
            Ok(decoded) => decoded,
            Err(DecodeError::Incomplete) => return Ok(None),
            Err(source) => return Err(self.decode_error(Step::Greeting, source)),
        };
        let mut greeting = greeting.map_err(|reply| TransportError::Refused {
            host: self.endpoint.host.clone(),
            step: Step::Greeting,
            reply,
        })?;
        self.lock_step(Step::Greeting, input.len() - used)?;
        if self.endpoint.security != Security::ImplicitTls {
            greeting.alert = None;
        }
        if self.endpoint.security == Security::StartTls && greeting.preauth && !self.tls {
            // SECURITY.md #6: PREAUTH in clear text leaves no way to start TLS.
            return Err(TransportError::PreauthBeforeTls {
                host: self.endpoint.host.clone(),
                tls_url: self.own_implicit_tls_url(),
            });
        }
        self.due = Due::Nothing;
        Ok(Some((used, Event::Greeting(greeting))))
    }

    /// One item of the reply due.
    fn reply(&mut self, input: &[u8]) -> Result<Option<(usize, Event)>, TransportError> {
        let Due::Reply(exchange) = &mut self.due else {
            return Ok(None);
        };
        let step = exchange.step;
        let outcome = match &mut self.codec {
            Codec::Imap { decoder, .. } => imap_item(decoder, input, exchange),
            Codec::Pop3 { decoder } => pop3_item(decoder, input, exchange),
            Codec::Smtp { limits } => smtp_item(limits, input, step),
        };
        let (used, item) = match outcome {
            Ok(decoded) => decoded,
            Err(DecodeError::Incomplete) => return Ok(None),
            Err(source) => return Err(self.decode_error(step, source)),
        };
        let unread = input.len() - used;
        let (ok, reply) = match item {
            Item::Part => return Ok(Some((used, Event::Part))),
            Item::Invalid(expected) => return Err(self.error(step, expected)),
            Item::Done { ok, reply } => (ok, reply),
        };
        let Due::Reply(exchange) = std::mem::replace(&mut self.due, Due::Nothing) else {
            return Ok(None);
        };
        let protocol = self.endpoint.protocol;
        if step == Step::StartTls {
            if !ok {
                return Err(self.refused(step, reply.text));
            }
            if unread > 0 {
                // After the go-ahead the server says nothing until the handshake: these bytes
                // were injected on the path, to be read as the first answer over TLS.
                return Err(TransportError::StartTlsInjection {
                    host: self.endpoint.host.clone(),
                    command: protocol.starttls_command(),
                    buffered: unread,
                });
            }
            return Ok(Some((used, Event::StartTls)));
        }
        let items = match protocol {
            Protocol::Imap => {
                if !ok {
                    return Err(self.refused(step, reply.text));
                }
                if exchange.items.is_empty() {
                    reply.items
                } else {
                    exchange.items
                }
            }
            // RFC 1939 servers have no CAPA: `-ERR` is an empty list, not a failure.
            Protocol::Pop3 => {
                self.lock_step(step, unread)?;
                if ok {
                    exchange.items
                } else {
                    Vec::new()
                }
            }
            Protocol::Smtp => {
                self.lock_step(step, unread)?;
                if !ok {
                    return Err(self.refused(step, reply.text));
                }
                reply.items
            }
        };
        Ok(Some((
            used,
            Event::Capabilities(Capabilities { protocol, items }),
        )))
    }

    /// POP3 and SMTP are lock-step: the server speaks once after connecting and once per
    /// command. Bytes waiting once a reply is complete (or before a command is sent) were not
    /// asked for, and would be read as the answer to the next command: a desync or an
    /// injection (SECURITY.md #52). PIPELINING changes nothing here, since the opening sends
    /// one command at a time. IMAP is exempt: untagged data may come at any time.
    fn lock_step(&mut self, step: Step, buffered: usize) -> Result<(), TransportError> {
        if buffered == 0 || self.endpoint.protocol == Protocol::Imap {
            return Ok(());
        }
        let error = TransportError::OutOfStep {
            host: self.endpoint.host.clone(),
            protocol: self.endpoint.protocol,
            step,
            buffered,
        };
        self.poison.out_of_step(error.to_string());
        Err(error)
    }

    /// The step a read is for: the greeting has its own silence limit.
    fn step(&self) -> Step {
        match &self.due {
            Due::Greeting => Step::Greeting,
            Due::Reply(exchange) => exchange.step,
            Due::Nothing | Due::Gone => Step::Response,
        }
    }

    /// The implicit-TLS URL with the protocol's own implicit-TLS port.
    fn own_implicit_tls_url(&self) -> String {
        Endpoint {
            security: Security::ImplicitTls,
            ..self.endpoint.clone()
        }
        .with_port(self.endpoint.protocol.default_port(Security::ImplicitTls))
        .url()
    }

    fn decode_error(&self, step: Step, source: DecodeError) -> TransportError {
        TransportError::Protocol {
            host: self.endpoint.host.clone(),
            protocol: self.endpoint.protocol,
            step,
            source,
        }
    }

    fn error(&self, step: Step, expected: &'static str) -> TransportError {
        self.decode_error(
            step,
            DecodeError::Invalid {
                offset: 0,
                expected,
            },
        )
    }

    fn refused(&self, step: Step, reply: String) -> TransportError {
        TransportError::Refused {
            host: self.endpoint.host.clone(),
            step,
            reply,
        }
    }

    /// The server closed the connection with `unread` bytes buffered (see [`Core::handle_end`]).
    fn end(&mut self, unread: &[u8]) -> TransportError {
        let step = self.step();
        let detail = (!unread.is_empty()).then(|| match &self.codec {
            Codec::Imap { decoder, .. } => decoder.end_of_input(unread),
            Codec::Pop3 { decoder } => {
                decoder
                    .end_of_input(unread)
                    .err()
                    .unwrap_or(DecodeError::Truncated {
                        offset: 0,
                        inside: "a POP3 response",
                    })
            }
            Codec::Smtp { .. } => {
                smtp::end_of_input(unread)
                    .err()
                    .unwrap_or(DecodeError::Truncated {
                        offset: 0,
                        inside: "an SMTP reply",
                    })
            }
        });
        let error = TransportError::Closed {
            host: self.endpoint.host.clone(),
            step,
            detail,
        };
        self.poison.out_of_step(error.to_string());
        error
    }

    /// The connection failed (see [`Core::handle_failure`]): a silent server where a greeting
    /// was due gets the hint that the port may expect implicit TLS.
    fn failure(&mut self, error: TransportError) -> TransportError {
        self.poison.out_of_step(error.to_string());
        if matches!(self.due, Due::Greeting) && !self.heard {
            add_greeting_timeout_hint(error, &self.endpoint)
        } else {
            error
        }
    }
}

impl Core for Opening {
    type Event = Event;

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop()
    }

    fn handle_input(&mut self, input: &[u8]) -> Result<Progress<Event>, Error> {
        self.input(input).map_err(Error::Transport)
    }

    fn handle_end(&mut self, unread: &[u8]) -> Error {
        Error::Transport(self.end(unread))
    }

    fn handle_failure(&mut self, error: TransportError, _doing: &str) -> Error {
        Error::Transport(self.failure(error))
    }

    fn read_step(&self) -> Step {
        self.step()
    }
}

/// A greeting that is only text (POP3 `+OK`, SMTP `220`).
fn plain_greeting(text: String) -> Greeting {
    Greeting {
        text,
        preauth: false,
        capabilities: None,
        alert: None,
    }
}

/// What the first bytes of a connection are.
#[derive(Debug, PartialEq, Eq)]
enum First {
    /// Not enough bytes to tell yet.
    Wait,
    /// The expected protocol's greeting, or bytes for its decoder to judge.
    Expected,
    /// A TLS record: the port expects implicit TLS.
    Tls,
    /// Another protocol's greeting: the port belongs to another service.
    Foreign(Protocol, String),
}

/// Recognises a TLS record or another protocol's greeting before the protocol's decoder sees
/// the bytes (it would only say "invalid at byte 0"). Waits for four bytes, enough to tell.
fn first_bytes(buf: &[u8], expected: Protocol) -> First {
    if is_tls_record(buf) {
        return First::Tls;
    }
    if let Some(greeting) = plaintext_greeting(buf) {
        if let Some(found) = greeting.protocol.filter(|&p| p != expected) {
            return First::Foreign(found, greeting.text);
        }
    } else if buf.len() < 4
        && [&b"* OK"[..], b"+OK", b"-ERR", b"220 ", b"\x16\x03"]
            .iter()
            .any(|g| g.starts_with(buf))
    {
        return First::Wait;
    }
    First::Expected
}

/// An IMAP greeting: `* OK`, `* PREAUTH` (accepted) or `* BYE` (a refusal).
fn imap_greeting(event: imap::Event<'_>) -> Result<Result<Greeting, String>, DecodeError> {
    match event {
        imap::Event::Response(Response::Status {
            tag: None,
            kind,
            code,
            text,
        }) => {
            let text = escape_bytes(&text);
            Ok(match kind {
                StatusKind::Ok | StatusKind::PreAuth => Ok(Greeting {
                    preauth: kind == StatusKind::PreAuth,
                    capabilities: imap_capabilities(code.as_ref()),
                    alert: matches!(code, Some(Code::Alert)).then(|| text.clone()),
                    text,
                }),
                _ => Err(format!("{} {text}", kind.as_str())),
            })
        }
        imap::Event::Response(Response::Status { tag: Some(_), .. }) => Err(DecodeError::Invalid {
            offset: 0,
            expected: "an untagged greeting (* OK), not a tagged response",
        }),
        _ => Err(DecodeError::Invalid {
            offset: 0,
            expected: "a greeting (* OK, * PREAUTH or * BYE)",
        }),
    }
}

fn imap_capabilities(code: Option<&Code<'_>>) -> Option<Capabilities> {
    match code {
        Some(Code::Capability(caps)) => Some(Capabilities {
            protocol: Protocol::Imap,
            items: caps
                .iter()
                .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
                .collect(),
        }),
        _ => None,
    }
}

fn smtp_text(reply: &smtp::Reply<'_>) -> String {
    reply
        .lines
        .iter()
        .map(|l| escape_bytes(l))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// One decoded item of a reply.
enum Item {
    /// Used; the reply goes on.
    Part,
    /// The reply is complete: success or not, and what it said.
    Done { ok: bool, reply: Final },
    /// Not what the protocol allows here.
    Invalid(&'static str),
}

/// What the completing item of a reply said.
#[derive(Default)]
struct Final {
    /// The status as the server worded it, for a refusal (`NO …`, `-ERR …`, `454 …`).
    text: String,
    /// IMAP: the capabilities of a tagged `[CAPABILITY …]` code; SMTP: the EHLO lines.
    items: Vec<String>,
}

/// One IMAP response to CAPABILITY or STARTTLS: untagged ones are counted (capabilities kept),
/// the tagged one must carry the command's tag; a continuation request is a protocol error
/// (SECURITY.md #3, #41).
fn imap_item(
    decoder: &mut imap::ResponseDecoder,
    input: &[u8],
    exchange: &mut Exchange,
) -> Result<(usize, Item), DecodeError> {
    let (used, event) = decoder.decode(input)?;
    let imap::Event::Response(response) = event else {
        return Ok((used, Item::Part));
    };
    let item = match response {
        Response::Status {
            tag: Some(got),
            kind,
            code,
            text,
        } => {
            if Some(got.as_str()) != exchange.tag.as_deref() {
                Item::Invalid("the tag of the command sent")
            } else {
                Item::Done {
                    ok: kind == StatusKind::Ok,
                    reply: Final {
                        text: format!("{} {}", kind.as_str(), escape_bytes(&text)),
                        items: imap_capabilities(code.as_ref())
                            .map(|c| c.items)
                            .unwrap_or_default(),
                    },
                }
            }
        }
        Response::Continuation { .. } => Item::Invalid("a tagged response, not a continuation"),
        other => {
            exchange.untagged += 1;
            if exchange.untagged > MAX_ITEMS {
                Item::Invalid("at most 1,000 untagged responses to one command")
            } else {
                // Before STARTTLS, untagged data is discarded: it came before TLS.
                if let (Step::Capabilities, Response::Data(Data::Capability(caps))) =
                    (exchange.step, &other)
                {
                    exchange.items.extend(
                        caps.iter()
                            .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned()),
                    );
                }
                Item::Part
            }
        }
    };
    Ok((used, item))
}

/// One POP3 item of the answer to CAPA (a status, listing lines, the end) or STLS (a status).
fn pop3_item(
    decoder: &mut pop3::Decoder,
    input: &[u8],
    exchange: &mut Exchange,
) -> Result<(usize, Item), DecodeError> {
    let (used, event) = decoder.decode(input)?;
    let item = match event {
        pop3::Event::Status(status) => {
            let text = escape_bytes(&status.text);
            if !status.is_ok() {
                Item::Done {
                    ok: false,
                    reply: Final {
                        text: format!("-ERR {text}"),
                        items: Vec::new(),
                    },
                }
            } else if decoder.is_in_body() {
                exchange.status = Some(text);
                Item::Part
            } else {
                Item::Done {
                    ok: true,
                    reply: Final::default(),
                }
            }
        }
        pop3::Event::Line(line) => {
            exchange
                .items
                .push(String::from_utf8_lossy(line).into_owned());
            if exchange.items.len() > MAX_ITEMS {
                Item::Invalid("at most 1,000 lines in a capability listing")
            } else {
                Item::Part
            }
        }
        pop3::Event::End => Item::Done {
            ok: true,
            reply: Final::default(),
        },
        pop3::Event::Continuation(_) | pop3::Event::BodyChunk(_) => Item::Invalid("+OK or -ERR"),
    };
    Ok((used, item))
}

/// The SMTP reply to EHLO (`250`, its lines after the first are the extensions) or STARTTLS
/// (`220`, the go-ahead: nothing else is).
fn smtp_item(limits: &Limits, input: &[u8], step: Step) -> Result<(usize, Item), DecodeError> {
    let (used, reply) = smtp::parse_reply(input, limits)?;
    let code = reply.code.get();
    let success = if step == Step::StartTls { 220 } else { 250 };
    Ok((
        used,
        Item::Done {
            ok: code == success,
            reply: Final {
                text: format!("{code} {}", smtp_text(&reply)),
                items: reply
                    .lines
                    .iter()
                    .skip(1)
                    .map(|l| String::from_utf8_lossy(l).trim().to_owned())
                    .collect(),
            },
        },
    ))
}

/// A silent server on a plaintext connection is most often an implicit-TLS port.
fn add_greeting_timeout_hint(error: TransportError, endpoint: &Endpoint) -> TransportError {
    match error {
        TransportError::Timeout {
            host,
            port,
            step: Step::Greeting,
            after,
            hint: None,
            too_slow: None,
        } if endpoint.security != Security::ImplicitTls => {
            let hint = match endpoint.protocol.security_of_port(port) {
                Some(Security::ImplicitTls) => format!(
                    "port {port} is the {} port for implicit TLS: use {}",
                    endpoint.protocol,
                    Endpoint { security: Security::ImplicitTls, ..endpoint.clone() }.url()
                ),
                _ => "the server sent no greeting; if this port expects TLS from the first byte, use implicit TLS".to_owned(),
            };
            TransportError::Timeout {
                host,
                port,
                step: Step::Greeting,
                after,
                hint: Some(hint),
                too_slow: None,
            }
        }
        other => other,
    }
}
