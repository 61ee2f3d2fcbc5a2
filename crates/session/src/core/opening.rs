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
//! - POP3 and SMTP are lock-step: a reply nobody asked for is refused (threat model #52); IMAP's
//!   untagged data may come at any time;
//! - at most 1,000 untagged responses or listing lines to one command before any login
//!   (threat model #40).
//!
//! Its errors are the transport's ([`TransportError`]), as the account check has always shown
//! them; through [`Core`] they come wrapped in [`Error::Transport`].

use std::borrow::Cow;

use mailcat_codec::core::text::escape_bytes;
use mailcat_codec::imap::command::{Command as ImapCommand, EncodeOptions};
use mailcat_codec::imap::{self, Capability, Code, Data, Response, StatusKind, TagGenerator};
use mailcat_codec::smtp::command::{ClientId, Command as SmtpCommand};
use mailcat_codec::{pop3, smtp, DecodeError, Limits};
use mailcat_transport::sniff::{is_tls_record, plaintext_greeting};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{
    Endpoint, Error as TransportError, ImapReply, Pop3Reply, Protocol, Reply, Security, SmtpReply,
    Step,
};

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
    pub capabilities: Option<ServerCapabilities>,
    /// The text of an IMAP greeting's `[ALERT]`, escaped, to be shown to the user (RFC 3501
    /// §7.1). Only a greeting that came over implicit TLS keeps it: one before STARTTLS could
    /// have been written by anyone on the path, and a message planted there is a phishing tool.
    pub alert: Option<String>,
}

/// What the server says it can do: IMAP capability atoms, POP3 CAPA lines or SMTP EHLO
/// extension lines, as the server sent them, and for POP3 and SMTP the codec's typed form of
/// the same lines ([`ServerCapabilities::pop3`], [`ServerCapabilities::smtp`]), parsed once where they were
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCapabilities {
    /// The protocol they belong to.
    pub protocol: Protocol,
    /// One entry per atom (IMAP) or line (POP3, SMTP), as sent (for display).
    pub items: Vec<String>,
    typed: Typed,
}

/// The codec's form of the capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Typed {
    /// IMAP: the atoms as the codec holds them (`is`, `auth_mechanism`).
    Imap(Vec<Capability<'static>>),
    Pop3(pop3::Capabilities),
    Smtp(smtp::Extensions),
}

impl ServerCapabilities {
    /// The capabilities of `protocol` from their entries as text (IMAP atoms, POP3 CAPA lines, SMTP
    /// EHLO lines after the first), parsed into the typed form. The sessions build them from
    /// the bytes read instead.
    pub fn new(protocol: Protocol, items: Vec<String>) -> Self {
        let typed = match protocol {
            Protocol::Imap => Typed::Imap(
                items
                    .iter()
                    .map(|item| Capability(Cow::Owned(item.as_bytes().to_vec())))
                    .collect(),
            ),
            Protocol::Pop3 => {
                let mut capa = pop3::Capabilities::new();
                for item in &items {
                    capa.push_line(item.as_bytes());
                }
                Typed::Pop3(capa)
            }
            Protocol::Smtp => {
                let mut lines = vec![Cow::Borrowed(&b"server"[..])];
                lines.extend(items.iter().map(|i| Cow::Borrowed(i.as_bytes())));
                let reply = smtp::Reply {
                    code: smtp::ReplyCode::OK,
                    enhanced: None,
                    lines,
                };
                match smtp::Extensions::from_reply(&reply) {
                    Ok(extensions) => Typed::Smtp(extensions),
                    Err(_) => unreachable!("a 250 reply always lists extensions"),
                }
            }
        };
        Self {
            protocol,
            items,
            typed,
        }
    }

    /// POP3 capabilities from the CAPA lines as the codec holds them.
    pub(crate) fn from_pop3(capa: pop3::Capabilities) -> Self {
        Self {
            protocol: Protocol::Pop3,
            items: capa
                .lines()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
            typed: Typed::Pop3(capa),
        }
    }

    /// SMTP capabilities from the reply to EHLO, as the codec holds it.
    pub(crate) fn from_smtp(extensions: smtp::Extensions) -> Self {
        Self {
            protocol: Protocol::Smtp,
            items: extensions
                .lines()
                .skip(1)
                .map(|l| String::from_utf8_lossy(l).trim().to_owned())
                .collect(),
            typed: Typed::Smtp(extensions),
        }
    }

    /// IMAP capabilities from the atoms as the codec holds them.
    pub(crate) fn from_imap(atoms: Vec<Capability<'static>>) -> Self {
        Self {
            protocol: Protocol::Imap,
            items: atoms
                .iter()
                .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
                .collect(),
            typed: Typed::Imap(atoms),
        }
    }

    /// The IMAP capability atoms, typed (`is`, `auth_mechanism`).
    pub fn imap(&self) -> Option<&[Capability<'static>]> {
        match &self.typed {
            Typed::Imap(atoms) => Some(atoms),
            _ => None,
        }
    }

    /// The POP3 CAPA lines, typed (`sasl_mechanisms`, `user`, `pipelining` ...).
    pub fn pop3(&self) -> Option<&pop3::Capabilities> {
        match &self.typed {
            Typed::Pop3(capa) => Some(capa),
            _ => None,
        }
    }

    /// The SMTP EHLO extensions, typed (`size`, `auth_mechanisms`, `pipelining` ...).
    pub fn smtp(&self) -> Option<&smtp::Extensions> {
        match &self.typed {
            Typed::Smtp(extensions) => Some(extensions),
            _ => None,
        }
    }

    /// The SMTP extensions: parsed when the EHLO reply was read, or from the entries for
    /// capabilities of another protocol.
    pub(crate) fn smtp_extensions(&self) -> smtp::Extensions {
        match &self.typed {
            Typed::Smtp(extensions) => extensions.clone(),
            _ => match Self::new(Protocol::Smtp, self.items.clone()).typed {
                Typed::Smtp(extensions) => extensions,
                _ => unreachable!("SMTP capabilities are typed as SMTP"),
            },
        }
    }

    /// True if the first word of an entry is `name` (case-insensitive): `has("IDLE")`,
    /// `has("SIZE")`, `has("STLS")`.
    pub fn has(&self, name: &str) -> bool {
        match &self.typed {
            Typed::Pop3(capa) => capa.has(name),
            Typed::Smtp(extensions) => extensions.has(name),
            Typed::Imap(atoms) => atoms.iter().any(|atom| {
                let bytes = atom.as_bytes();
                let word = bytes.split(|&b| b == b'=').next().unwrap_or_default();
                word.eq_ignore_ascii_case(name.as_bytes())
            }),
        }
    }

    /// True if the server offers to start TLS (`STARTTLS`, or `STLS` for POP3).
    pub fn offers_starttls(&self) -> bool {
        self.has(self.protocol.starttls_command())
    }
}

/// The most untagged responses or listing lines one command of the opening (CAPABILITY, CAPA,
/// STARTTLS) may bring: real servers send one response or a few dozen lines; a server that
/// sends more, before any login, is trying to exhaust memory (threat model #40).
const MAX_ITEMS: usize = 1_000;

/// What the opening core made of some input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Part of a reply (an untagged response, a listing line): used, nothing to act on yet.
    Part,
    /// The greeting, accepted.
    Greeting(Greeting),
    /// The answer to the capability query.
    ServerCapabilities(ServerCapabilities),
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
    /// IMAP untagged responses, or POP3 listing lines, so far.
    untagged: usize,
    /// IMAP capability atoms from untagged `CAPABILITY`.
    items: Vec<Capability<'static>>,
    /// POP3 listing lines, as the codec holds them.
    capa: pop3::Capabilities,
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
        Self {
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
        let mut opening = Self::new(endpoint, true, client_id);
        opening.due = Due::Nothing;
        opening
    }

    /// The server.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Fuzzing: whether the opening is poisoned.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fuzz_poisoned(&self) -> bool {
        self.poison.is_poisoned()
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
        capabilities: &ServerCapabilities,
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
            // The conversation failed or is over, or a reply is still due (a call was dropped
            // halfway): a command now would be out of step. Nothing is sent.
            let expected = if self.outbox.cut_off() {
                "nothing more: a command was cut off while it was being written"
            } else if self.poison.is_poisoned() || matches!(self.due, Due::Gone) {
                "nothing more: the opening failed or ended earlier"
            } else {
                "the reply to an earlier command first (a call was dropped halfway)"
            };
            self.poison.out_of_step(expected);
            return Err(self.error(step, expected));
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
            reply: Reply::Text(e.to_string()),
        })?;
        self.outbox.push(bytes, Redaction::Normal);
        self.due = Due::Reply(Exchange {
            step,
            tag,
            untagged: 0,
            items: Vec::new(),
            capa: pop3::Capabilities::new(),
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
                Ok((
                    used,
                    if status.is_ok() {
                        Ok(plain_greeting(escape_bytes(&status.text)))
                    } else {
                        Err(Pop3Reply::from_status(&status).into())
                    },
                ))
            }),
            Codec::Smtp { limits } => smtp::parse_reply(input, limits).map(|(used, reply)| {
                (
                    used,
                    if reply.code.get() == 220 {
                        Ok(plain_greeting(smtp_text(&reply)))
                    } else {
                        Err(SmtpReply::from_reply(&reply).into())
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
            // threat model #6: PREAUTH in clear text leaves no way to start TLS.
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
                return Err(self.refused(step, reply.reply));
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
        let capabilities = match protocol {
            Protocol::Imap => {
                if !ok {
                    return Err(self.refused(step, reply.reply));
                }
                ServerCapabilities::from_imap(if exchange.items.is_empty() {
                    reply.items
                } else {
                    exchange.items
                })
            }
            // RFC 1939 servers have no CAPA: `-ERR` is an empty list, not a failure.
            Protocol::Pop3 => {
                self.lock_step(step, unread)?;
                ServerCapabilities::from_pop3(if ok {
                    exchange.capa
                } else {
                    pop3::Capabilities::new()
                })
            }
            Protocol::Smtp => {
                self.lock_step(step, unread)?;
                match reply.extensions {
                    Some(extensions) if ok => ServerCapabilities::from_smtp(extensions),
                    _ => return Err(self.refused(step, reply.reply)),
                }
            }
        };
        Ok(Some((used, Event::ServerCapabilities(capabilities))))
    }

    /// POP3 and SMTP are lock-step: the server speaks once after connecting and once per
    /// command. Bytes waiting once a reply is complete (or before a command is sent) were not
    /// asked for, and would be read as the answer to the next command: a desync or an
    /// injection (threat model #52). PIPELINING changes nothing here, since the opening sends
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

    fn refused(&self, step: Step, reply: Option<Reply>) -> TransportError {
        let reply = reply.unwrap_or_else(|| Reply::Text(String::new()));
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
        self.outbox.pop(&self.poison)
    }

    fn transmitted(&mut self) {
        self.outbox.written();
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
fn imap_greeting(event: imap::Event<'_>) -> Result<Result<Greeting, Reply>, DecodeError> {
    match event {
        imap::Event::Response(Response::Status {
            tag: None,
            kind,
            code,
            text,
        }) => Ok(match kind {
            StatusKind::Ok | StatusKind::PreAuth => {
                let text = escape_bytes(&text);
                Ok(Greeting {
                    preauth: kind == StatusKind::PreAuth,
                    capabilities: imap_capabilities(code.as_ref()),
                    alert: matches!(code, Some(Code::Alert)).then(|| text.clone()),
                    text,
                })
            }
            _ => Err(ImapReply::new(kind, code.map(own_code), &text).into()),
        }),
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

fn imap_capabilities(code: Option<&Code<'_>>) -> Option<ServerCapabilities> {
    match code {
        Some(Code::Capability(caps)) => Some(ServerCapabilities::from_imap(
            caps.iter().cloned().map(Capability::into_owned).collect(),
        )),
        _ => None,
    }
}

/// An owned copy of an IMAP response code.
fn own_code(code: Code<'_>) -> Code<'static> {
    code.into_owned()
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
    /// The reply, for a refusal (`NO …`, `-ERR …`, `454 …`).
    reply: Option<Reply>,
    /// IMAP: the capabilities of a tagged `[CAPABILITY …]` code.
    items: Vec<Capability<'static>>,
    /// SMTP: the reply to EHLO, typed.
    extensions: Option<smtp::Extensions>,
}

/// One IMAP response to CAPABILITY or STARTTLS: untagged ones are counted (capabilities kept),
/// the tagged one must carry the command's tag; a continuation request is a protocol error
/// (threat model #3, #41).
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
                        items: match &code {
                            Some(Code::Capability(caps)) => {
                                caps.iter().cloned().map(Capability::into_owned).collect()
                            }
                            _ => Vec::new(),
                        },
                        reply: Some(ImapReply::new(kind, code.map(own_code), &text).into()),
                        extensions: None,
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
                    exchange
                        .items
                        .extend(caps.iter().cloned().map(Capability::into_owned));
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
            if !status.is_ok() {
                Item::Done {
                    ok: false,
                    reply: Final {
                        reply: Some(Pop3Reply::from_status(&status).into()),
                        ..Final::default()
                    },
                }
            } else if decoder.is_in_body() {
                exchange.status = Some(escape_bytes(&status.text));
                Item::Part
            } else {
                Item::Done {
                    ok: true,
                    reply: Final::default(),
                }
            }
        }
        pop3::Event::Line(line) => {
            exchange.capa.push_line(line);
            exchange.untagged += 1;
            if exchange.untagged > MAX_ITEMS {
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
                extensions: smtp::Extensions::from_reply(&reply).ok(),
                reply: Some(SmtpReply::from_reply(&reply).into()),
                items: Vec::new(),
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

#[cfg(test)]
mod tests {
    //! Byte transcripts, one per rule: bytes in, bytes out and events, no runtime.

    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    const HOST: &str = "mail.test";

    fn opening(protocol: Protocol, security: Security) -> Opening {
        Opening::new(
            Endpoint::new(protocol, HOST, security),
            security == Security::ImplicitTls,
            ClientId::Ipv4(Ipv4Addr::LOCALHOST),
        )
    }

    /// Feeds `input` as the driver does (every byte not yet used) until an event other than
    /// [`Event::Part`]; returns it and how many bytes were used in all.
    fn feed(core: &mut Opening, input: &[u8]) -> Result<(Event, usize), TransportError> {
        let mut at = 0;
        loop {
            match core.input(&input[at..])? {
                Progress::Event { consumed, event } => {
                    at += consumed;
                    if event != Event::Part {
                        return Ok((event, at));
                    }
                }
                Progress::NeedInput => panic!("more input needed after {at} bytes"),
            }
        }
    }

    /// Everything the core queued, as the driver would write it.
    fn sent(core: &mut Opening) -> String {
        let mut bytes = Vec::new();
        while let Some(transmit) = core.poll_transmit() {
            bytes.extend_from_slice(&transmit.bytes);
        }
        core.transmitted();
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// A core past its greeting.
    fn greeted(protocol: Protocol, security: Security) -> Opening {
        let mut core = opening(protocol, security);
        let greeting: &[u8] = match protocol {
            Protocol::Imap => b"* OK ready\r\n",
            Protocol::Pop3 => b"+OK ready\r\n",
            Protocol::Smtp => b"220 mx.test ESMTP\r\n",
        };
        mailcat_tests::assert_matches!(feed(&mut core, greeting), Ok((Event::Greeting(_), _)));
        core
    }

    /// A core that asked for the capabilities, and got `reply`.
    fn capabilities(
        protocol: Protocol,
        security: Security,
        reply: &[u8],
    ) -> (Opening, Result<(Event, usize), TransportError>) {
        let mut core = greeted(protocol, security);
        core.ask_capabilities(b"").expect("may ask");
        sent(&mut core);
        let result = feed(&mut core, reply);
        (core, result)
    }

    fn items(event: Event) -> Vec<String> {
        match event {
            Event::ServerCapabilities(c) => c.items,
            other => panic!("expected capabilities, got {other:?}"),
        }
    }

    // -- greeting -------------------------------------------------------------------------

    #[test]
    fn each_protocols_greeting_is_accepted_and_nothing_is_sent_before_it() {
        for (protocol, greeting, text) in [
            (
                Protocol::Imap,
                &b"* OK Dovecot ready.\r\n"[..],
                "Dovecot ready.",
            ),
            (Protocol::Pop3, b"+OK Dovecot ready.\r\n", "Dovecot ready."),
            (
                Protocol::Smtp,
                b"220-mx.test ESMTP\r\n220 hello\r\n",
                "mx.test ESMTP / hello",
            ),
        ] {
            let mut core = opening(protocol, Security::ImplicitTls);
            assert_eq!(core.read_step(), Step::Greeting);
            assert_eq!(sent(&mut core), "");
            let (event, used) = feed(&mut core, greeting).unwrap();
            assert_eq!(used, greeting.len());
            let Event::Greeting(g) = event else {
                panic!("{protocol}: {event:?}")
            };
            assert_eq!(g.text, text);
        }
    }

    #[test]
    fn a_greeting_split_anywhere_gives_the_same_result() {
        let greeting = b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n";
        let whole = feed(
            &mut opening(Protocol::Imap, Security::ImplicitTls),
            greeting,
        )
        .unwrap();
        for split in 1..greeting.len() {
            let mut core = opening(Protocol::Imap, Security::ImplicitTls);
            assert!(
                matches!(core.input(&greeting[..split]), Ok(Progress::NeedInput)),
                "split at {split}"
            );
            assert_eq!(
                feed(&mut core, greeting).unwrap(),
                whole,
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_tls_record_where_the_greeting_was_due_means_implicit_tls() {
        for protocol in [Protocol::Imap, Protocol::Pop3, Protocol::Smtp] {
            let mut core = opening(protocol, Security::StartTls);
            // Two bytes cannot tell yet.
            mailcat_tests::assert_matches!(core.input(b"\x16\x03"), Ok(Progress::NeedInput));
            let error = feed(&mut core, b"\x16\x03\x03\x00\x2a\x02\x00").unwrap_err();
            assert!(
                matches!(&error, TransportError::TlsServerOnPlaintextConnection { tls_url, .. } if tls_url.starts_with(&format!("{}s://", protocol.to_string().to_lowercase()))),
                "{protocol}: {error:?}"
            );
        }
    }

    #[test]
    fn another_protocols_greeting_names_that_protocol() {
        for (protocol, greeting, found) in [
            (
                Protocol::Pop3,
                &b"* OK IMAP4rev1 ready\r\n"[..],
                Protocol::Imap,
            ),
            (Protocol::Imap, b"+OK POP3 ready\r\n", Protocol::Pop3),
            (Protocol::Imap, b"220 mx.test ESMTP\r\n", Protocol::Smtp),
        ] {
            let mut core = opening(protocol, Security::StartTls);
            let error = feed(&mut core, greeting).unwrap_err();
            assert!(
                matches!(&error, TransportError::WrongProtocol { found: f, tls: false, expected, .. } if *f == found && *expected == protocol),
                "{protocol}: {error:?}"
            );
        }
        // Over implicit TLS, the finding says so (the port is the other's TLS port).
        let mut core = opening(Protocol::Pop3, Security::ImplicitTls);
        let error = feed(&mut core, b"* OK IMAP ready\r\n").unwrap_err();
        assert!(
            matches!(error, TransportError::WrongProtocol { tls: true, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_refusing_greeting_is_an_error_with_the_servers_words() {
        for (protocol, greeting, words) in [
            (
                Protocol::Imap,
                &b"* BYE too many connections\r\n"[..],
                "BYE too many connections",
            ),
            (Protocol::Pop3, b"-ERR busy\r\n", "-ERR busy"),
            (Protocol::Smtp, b"554 no service\r\n", "554 no service"),
        ] {
            let mut core = opening(protocol, Security::ImplicitTls);
            let error = feed(&mut core, greeting).unwrap_err();
            assert!(
                matches!(&error, TransportError::Refused { step: Step::Greeting, reply, .. } if reply.with_status() == words),
                "{protocol}: {error:?}"
            );
            assert!(core.ask_capabilities(b"").is_err(), "poisoned");
            assert_eq!(sent(&mut core), "");
        }
    }

    #[test]
    fn garbage_instead_of_a_greeting_is_a_protocol_error() {
        let mut core = opening(Protocol::Imap, Security::ImplicitTls);
        let error = feed(&mut core, b"HELLO there\r\n").unwrap_err();
        assert!(
            matches!(
                error,
                TransportError::Protocol {
                    step: Step::Greeting,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn preauth_is_refused_before_starttls_and_kept_over_implicit_tls() {
        let greeting = b"* PREAUTH [CAPABILITY IMAP4rev1] logged in\r\n";
        let mut core = opening(Protocol::Imap, Security::StartTls);
        let error = feed(&mut core, greeting).unwrap_err();
        assert!(
            matches!(&error, TransportError::PreauthBeforeTls { tls_url, .. } if tls_url == "imaps://mail.test:993"),
            "{error:?}"
        );
        let mut core = opening(Protocol::Imap, Security::ImplicitTls);
        let (Event::Greeting(g), _) = feed(&mut core, greeting).unwrap() else {
            panic!("a greeting")
        };
        assert!(g.preauth);
        assert_eq!(
            g.capabilities.map(|c| c.items),
            Some(vec!["IMAP4rev1".to_owned()])
        );
    }

    #[test]
    fn an_alert_is_kept_only_from_a_greeting_over_implicit_tls() {
        let greeting = b"* OK [ALERT] Password expires tomorrow\r\n";
        for (security, kept) in [
            (Security::ImplicitTls, true),
            (Security::StartTls, false),
            (Security::DangerousPlaintext, false),
        ] {
            let mut core = opening(Protocol::Imap, security);
            let (Event::Greeting(g), _) = feed(&mut core, greeting).unwrap() else {
                panic!("a greeting")
            };
            assert_eq!(
                g.alert.as_deref(),
                kept.then_some("Password expires tomorrow"),
                "{security:?}"
            );
        }
    }

    // -- lock-step and the unsolicited rule ----------------------------------------------

    #[test]
    fn a_second_greeting_line_is_out_of_step_for_pop3_and_smtp_but_not_imap() {
        for (protocol, greeting, extra) in [
            (Protocol::Pop3, &b"+OK a\r\n"[..], &b"+OK b\r\n"[..]),
            (Protocol::Smtp, b"220 mx ESMTP\r\n", b"250 planted\r\n"),
        ] {
            let mut core = opening(protocol, Security::StartTls);
            let error = feed(&mut core, &[greeting, extra].concat()).unwrap_err();
            assert!(
                matches!(error, TransportError::OutOfStep { step: Step::Greeting, buffered, .. } if buffered == extra.len()),
                "{protocol}: {error:?}"
            );
            assert!(core.ask_capabilities(b"").is_err(), "poisoned");
        }
        let mut core = opening(Protocol::Imap, Security::StartTls);
        let (event, used) = feed(&mut core, b"* OK a\r\n* OK [ALERT] b\r\n").unwrap();
        mailcat_tests::assert_matches!(event, Event::Greeting(_));
        assert_eq!(used, 8, "the untagged line stays for what follows");
    }

    #[test]
    fn bytes_waiting_before_a_command_are_refused_for_pop3_and_smtp_and_nothing_is_sent() {
        for protocol in [Protocol::Pop3, Protocol::Smtp] {
            let mut core = greeted(protocol, Security::StartTls);
            let error = core.ask_capabilities(b"+OK planted\r\n").unwrap_err();
            assert!(
                matches!(
                    error,
                    TransportError::OutOfStep {
                        step: Step::Response,
                        buffered: 13,
                        ..
                    }
                ),
                "{protocol}: {error:?}"
            );
            assert_eq!(sent(&mut core), "", "{protocol}");
            assert!(core.ask_capabilities(b"").is_err(), "poisoned");
        }
        // IMAP: untagged data may come at any time.
        let mut core = greeted(Protocol::Imap, Security::StartTls);
        core.ask_capabilities(b"* 3 EXISTS\r\n").unwrap();
        assert_eq!(sent(&mut core), "A0001 CAPABILITY\r\n");
    }

    #[test]
    fn a_second_reply_to_the_capability_query_is_out_of_step() {
        for (protocol, reply, extra) in [
            (
                Protocol::Pop3,
                &b"+OK\r\nSTLS\r\n.\r\n"[..],
                &b"+OK Begin TLS\r\n"[..],
            ),
            (
                Protocol::Smtp,
                b"250-mx\r\n250 STARTTLS\r\n",
                b"220 go ahead\r\n",
            ),
        ] {
            let (_, result) = capabilities(protocol, Security::StartTls, &[reply, extra].concat());
            let error = result.unwrap_err();
            assert!(
                matches!(error, TransportError::OutOfStep { step: Step::Capabilities, buffered, .. } if buffered == extra.len()),
                "{protocol}: {error:?}"
            );
        }
    }

    // -- capabilities ---------------------------------------------------------------------

    #[test]
    fn imap_capabilities_come_from_untagged_data_or_the_tagged_code() {
        let mut core = greeted(Protocol::Imap, Security::ImplicitTls);
        core.ask_capabilities(b"").unwrap();
        assert_eq!(core.read_step(), Step::Capabilities);
        assert_eq!(sent(&mut core), "A0001 CAPABILITY\r\n");
        let (event, _) = feed(
            &mut core,
            b"* CAPABILITY IMAP4rev1 IDLE\r\n* 2 EXISTS\r\nA0001 OK done\r\n",
        )
        .unwrap();
        assert_eq!(items(event), ["IMAP4rev1", "IDLE"]);
        // Tags keep counting up for the session that takes over.
        core.goodbye();
        assert_eq!(sent(&mut core), "A0002 LOGOUT\r\n");

        let (_, result) = capabilities(
            Protocol::Imap,
            Security::ImplicitTls,
            b"A0001 OK [CAPABILITY IMAP4rev1 MOVE] done\r\n",
        );
        assert_eq!(items(result.unwrap().0), ["IMAP4rev1", "MOVE"]);
    }

    #[test]
    fn a_wrong_tag_or_a_continuation_in_answer_is_a_protocol_error() {
        for reply in [&b"A0002 OK done\r\n"[..], b"+ go on\r\n"] {
            let (mut core, result) = capabilities(Protocol::Imap, Security::ImplicitTls, reply);
            let error = result.unwrap_err();
            assert!(
                matches!(
                    error,
                    TransportError::Protocol {
                        step: Step::Capabilities,
                        ..
                    }
                ),
                "{error:?}"
            );
            core.goodbye();
            assert_eq!(sent(&mut core), "", "a poisoned core says nothing more");
        }
    }

    #[test]
    fn pop3_capa_refused_means_no_capabilities_but_other_failures_are_errors() {
        let (_, result) = capabilities(
            Protocol::Pop3,
            Security::ImplicitTls,
            b"+OK list\r\nUSER\r\nSASL PLAIN\r\n.\r\n",
        );
        assert_eq!(items(result.unwrap().0), ["USER", "SASL PLAIN"]);
        // RFC 1939 servers have no CAPA.
        let (_, result) = capabilities(
            Protocol::Pop3,
            Security::ImplicitTls,
            b"-ERR unknown command\r\n",
        );
        assert_eq!(items(result.unwrap().0), Vec::<String>::new());
    }

    #[test]
    fn no_answer_to_the_capability_query_is_an_error_not_no_starttls() {
        // CVE-2021-22946: a failed capability query must not read as "STARTTLS not offered,
        // carry on in plaintext".
        for (protocol, reply) in [
            (Protocol::Imap, &b"A0001 BAD not now\r\n"[..]),
            (Protocol::Smtp, b"421 shutting down\r\n"),
        ] {
            let (_, result) = capabilities(protocol, Security::StartTls, reply);
            let error = result.unwrap_err();
            assert!(
                matches!(
                    error,
                    TransportError::Refused {
                        step: Step::Capabilities,
                        ..
                    }
                ),
                "{protocol}: {error:?}"
            );
        }
        // The connection closed before the answer (or in the middle of it).
        for (protocol, partial) in [
            (Protocol::Imap, &b""[..]),
            (Protocol::Pop3, b"+OK\r\nUSER\r\n"),
            (Protocol::Smtp, b"250-mx\r\n"),
        ] {
            let mut core = greeted(protocol, Security::StartTls);
            core.ask_capabilities(b"").unwrap();
            let mut at = 0;
            while let Ok(Progress::Event { consumed, .. }) = core.input(&partial[at..]) {
                at += consumed;
            }
            let error = core.end(&partial[at..]);
            assert!(
                matches!(
                    error,
                    TransportError::Closed {
                        step: Step::Capabilities,
                        ..
                    }
                ),
                "{protocol}: {error:?}"
            );
            assert!(core.ask_starttls(b"").is_err(), "{protocol}: poisoned");
        }
    }

    #[test]
    fn smtp_ehlo_gives_the_extension_lines_and_only_250_is_success() {
        let mut core = greeted(Protocol::Smtp, Security::ImplicitTls);
        core.ask_capabilities(b"").unwrap();
        assert_eq!(sent(&mut core), "EHLO [127.0.0.1]\r\n");
        let (event, _) = feed(
            &mut core,
            b"250-mx.test greets you\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
        )
        .unwrap();
        assert_eq!(items(event), ["SIZE 1000", "STARTTLS"]);
        // A go-ahead is no answer to EHLO.
        let (_, result) = capabilities(Protocol::Smtp, Security::StartTls, b"220 ready\r\n");
        assert!(
            matches!(result, Err(TransportError::Refused { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn a_flood_of_capability_data_is_refused_at_1000_items() {
        let imap: Vec<u8> = (0..1_001)
            .flat_map(|i| format!("* CAPABILITY X{i}\r\n").into_bytes())
            .chain(b"A0001 OK done\r\n".iter().copied())
            .collect();
        let pop3: Vec<u8> = b"+OK\r\n"
            .iter()
            .copied()
            .chain((0..1_001).flat_map(|i| format!("X-CAP{i}\r\n").into_bytes()))
            .chain(b".\r\n".iter().copied())
            .collect();
        for (protocol, reply) in [(Protocol::Imap, imap), (Protocol::Pop3, pop3)] {
            let (_, result) = capabilities(protocol, Security::ImplicitTls, &reply);
            let error = result.unwrap_err();
            assert!(
                matches!(&error, TransportError::Protocol { .. })
                    && error.to_string().contains("at most 1,000"),
                "{protocol}: {error}"
            );
        }
        // 1,000 is fine.
        let reply: Vec<u8> = b"+OK\r\n"
            .iter()
            .copied()
            .chain((0..1_000).flat_map(|i| format!("X-CAP{i}\r\n").into_bytes()))
            .chain(b".\r\n".iter().copied())
            .collect();
        let (_, result) = capabilities(Protocol::Pop3, Security::ImplicitTls, &reply);
        assert_eq!(items(result.unwrap().0).len(), 1_000);
    }

    // -- STARTTLS ---------------------------------------------------------------------------

    fn caps(protocol: Protocol, items: &[&str]) -> ServerCapabilities {
        ServerCapabilities::new(protocol, items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn starttls_is_required_with_starttls_security_and_only_then() {
        let core = greeted(Protocol::Pop3, Security::StartTls);
        assert!(core
            .needs_starttls(&caps(Protocol::Pop3, &["USER", "STLS"]))
            .unwrap());
        let error = core
            .needs_starttls(&caps(Protocol::Pop3, &["USER"]))
            .unwrap_err();
        assert!(
            matches!(&error, TransportError::StartTlsNotOffered { command: "STLS", tls_url, .. } if tls_url == "pop3s://mail.test:995"),
            "{error:?}"
        );
        for security in [Security::ImplicitTls, Security::DangerousPlaintext] {
            let core = greeted(Protocol::Imap, security);
            assert!(!core
                .needs_starttls(&caps(Protocol::Imap, &["STARTTLS"]))
                .unwrap());
        }
        // After the upgrade, never again.
        let core = Opening::after_starttls(
            Endpoint::new(Protocol::Smtp, HOST, Security::StartTls),
            ClientId::Ipv4(Ipv4Addr::LOCALHOST),
        );
        assert!(!core.needs_starttls(&caps(Protocol::Smtp, &[])).unwrap());
    }

    /// A core that asked for STARTTLS after its capabilities, and got `reply`.
    fn starttls(
        protocol: Protocol,
        reply: &[u8],
    ) -> (Opening, Result<(Event, usize), TransportError>) {
        let caps_reply: &[u8] = match protocol {
            Protocol::Imap => b"* CAPABILITY IMAP4rev1 STARTTLS\r\nA0001 OK done\r\n",
            Protocol::Pop3 => b"+OK\r\nSTLS\r\n.\r\n",
            Protocol::Smtp => b"250-mx\r\n250 STARTTLS\r\n",
        };
        let (mut core, result) = capabilities(protocol, Security::StartTls, caps_reply);
        let (Event::ServerCapabilities(offered), _) = result.unwrap() else {
            panic!("capabilities")
        };
        assert!(core.needs_starttls(&offered).unwrap());
        core.ask_starttls(b"").unwrap();
        assert_eq!(core.read_step(), Step::StartTls);
        let command = sent(&mut core);
        let expected = match protocol {
            Protocol::Imap => "A0002 STARTTLS\r\n",
            Protocol::Pop3 => "STLS\r\n",
            Protocol::Smtp => "STARTTLS\r\n",
        };
        assert_eq!(command, expected);
        let result = feed(&mut core, reply);
        (core, result)
    }

    #[test]
    fn the_go_ahead_alone_lets_the_handshake_start() {
        for (protocol, reply) in [
            (
                Protocol::Imap,
                &b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] discarded\r\nA0002 OK go\r\n"[..],
            ),
            (Protocol::Pop3, b"+OK Begin TLS negotiation\r\n"),
            (Protocol::Smtp, b"220 2.0.0 Ready to start TLS\r\n"),
        ] {
            let (_, result) = starttls(protocol, reply);
            assert_eq!(
                result.unwrap(),
                (Event::StartTls, reply.len()),
                "{protocol}"
            );
        }
    }

    #[test]
    fn bytes_after_the_go_ahead_are_an_injection() {
        // CVE-2021-22947: a reply planted after the go-ahead, in the same write, would be read
        // as the first answer over TLS.
        for (protocol, go_ahead, injected) in [
            (
                Protocol::Imap,
                &b"A0002 OK go\r\n"[..],
                &b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"[..],
            ),
            (Protocol::Pop3, b"+OK go\r\n", b"+OK\r\nUSER\r\n.\r\n"),
            (
                Protocol::Smtp,
                b"220 go\r\n",
                b"250-mx\r\n250 AUTH PLAIN\r\n",
            ),
        ] {
            let (mut core, result) = starttls(protocol, &[go_ahead, injected].concat());
            let error = result.unwrap_err();
            assert!(
                matches!(error, TransportError::StartTlsInjection { buffered, .. } if buffered == injected.len()),
                "{protocol}: {error:?}"
            );
            assert!(core.ask_capabilities(b"").is_err(), "poisoned");
            assert_eq!(sent(&mut core), "");
        }
    }

    #[test]
    fn a_refused_starttls_is_an_error_never_a_plaintext_fallback() {
        for (protocol, reply, words) in [
            (Protocol::Imap, &b"A0002 NO not now\r\n"[..], "NO not now"),
            (Protocol::Imap, b"A0002 BAD what\r\n", "BAD what"),
            (Protocol::Pop3, b"-ERR not now\r\n", "-ERR not now"),
            (
                Protocol::Smtp,
                b"454 TLS not available\r\n",
                "454 TLS not available",
            ),
            // Not the go-ahead: only 220 is.
            (Protocol::Smtp, b"250 ok\r\n", "250 ok"),
        ] {
            let (mut core, result) = starttls(protocol, reply);
            let error = result.unwrap_err();
            assert!(
                matches!(&error, TransportError::Refused { step: Step::StartTls, reply, .. } if reply.with_status() == words),
                "{protocol}: {error:?}"
            );
            assert!(core.ask_capabilities(b"").is_err(), "poisoned");
        }
    }

    #[test]
    fn after_starttls_no_greeting_is_due_and_tags_start_again() {
        let mut core = Opening::after_starttls(
            Endpoint::new(Protocol::Imap, HOST, Security::StartTls),
            ClientId::Ipv4(Ipv4Addr::LOCALHOST),
        );
        core.ask_capabilities(b"").unwrap();
        assert_eq!(sent(&mut core), "A0001 CAPABILITY\r\n");
    }

    // -- cancellation, failures, goodbye ----------------------------------------------------

    #[test]
    fn a_call_dropped_halfway_leaves_the_reply_due_and_a_new_command_is_refused() {
        let mut core = greeted(Protocol::Pop3, Security::ImplicitTls);
        core.ask_capabilities(b"").unwrap();
        assert_eq!(sent(&mut core), "CAPA\r\n");
        // Part of the reply came, then the caller gave up.
        mailcat_tests::assert_matches!(
            core.input(b"+OK\r\nUSER\r\n"),
            Ok(Progress::Event {
                event: Event::Part,
                ..
            })
        );
        assert_eq!(core.read_step(), Step::Capabilities, "still due");
        let error = core.ask_starttls(b"").unwrap_err();
        assert!(error.to_string().contains("dropped halfway"), "{error}");
        assert_eq!(sent(&mut core), "", "nothing is sent out of step");
        assert!(core.ask_capabilities(b"").is_err(), "poisoned");
    }

    #[test]
    fn a_write_cut_off_halfway_is_out_of_step() {
        let mut core = greeted(Protocol::Smtp, Security::ImplicitTls);
        core.ask_capabilities(b"").unwrap();
        // The driver took the bytes and its call was dropped before it said they were written.
        assert!(core.poll_transmit().is_some());
        let error = core.ask_starttls(b"").unwrap_err();
        assert!(error.to_string().contains("cut off"), "{error}");
        // Written in full: the reply is merely due.
        let mut core = greeted(Protocol::Smtp, Security::ImplicitTls);
        core.ask_capabilities(b"").unwrap();
        assert!(core.poll_transmit().is_some());
        core.transmitted();
        let error = core.ask_starttls(b"").unwrap_err();
        assert!(error.to_string().contains("dropped halfway"), "{error}");
    }

    #[test]
    fn a_silent_server_gets_the_implicit_tls_hint_one_that_spoke_does_not() {
        let timeout = || TransportError::Timeout {
            host: HOST.into(),
            port: 993,
            step: Step::Greeting,
            after: Duration::from_secs(1),
            hint: None,
            too_slow: None,
        };
        let mut core = Opening::new(
            Endpoint::new(Protocol::Imap, HOST, Security::StartTls).with_port(993),
            false,
            ClientId::Ipv4(Ipv4Addr::LOCALHOST),
        );
        mailcat_tests::assert_matches!(core.input(b""), Ok(Progress::NeedInput));
        let error = core.failure(timeout());
        assert!(
            matches!(&error, TransportError::Timeout { hint: Some(h), .. } if h.contains("imaps://mail.test:993")),
            "{error:?}"
        );
        let mut core = opening(Protocol::Imap, Security::StartTls);
        mailcat_tests::assert_matches!(core.input(b"* OK"), Ok(Progress::NeedInput));
        let error = core.failure(timeout());
        assert!(
            matches!(error, TransportError::Timeout { hint: None, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_greeting_cut_off_says_what_was_unfinished() {
        let mut core = opening(Protocol::Smtp, Security::ImplicitTls);
        mailcat_tests::assert_matches!(core.input(b"220-mx\r\n"), Ok(Progress::NeedInput));
        let error = core.end(b"220-mx\r\n");
        assert!(
            matches!(
                error,
                TransportError::Closed {
                    step: Step::Greeting,
                    detail: Some(_),
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn goodbye_is_quit_or_logout_and_said_once() {
        for (protocol, bye) in [
            (Protocol::Pop3, "QUIT\r\n"),
            (Protocol::Smtp, "QUIT\r\n"),
            (Protocol::Imap, "A0001 LOGOUT\r\n"),
        ] {
            let mut core = greeted(protocol, Security::ImplicitTls);
            core.goodbye();
            core.goodbye();
            assert_eq!(sent(&mut core), bye, "{protocol}");
            assert!(core.ask_capabilities(b"").is_err(), "{protocol}: gone");
        }
    }
}
