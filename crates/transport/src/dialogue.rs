//! The first exchanges every mail session starts with, for the three protocols alike: the
//! greeting, the capabilities (IMAP `CAPABILITY`, POP3 `CAPA`, SMTP `EHLO`) and STARTTLS. And
//! [`open`], which runs resolve → connect → TLS or STARTTLS → greeting → capabilities, reporting
//! each step, as the account check shows them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailcat_codec::core::text::escape_bytes;
use mailcat_codec::imap::command::{Command as ImapCommand, EncodeOptions};
use mailcat_codec::imap::{self, Code, Data, Response, StatusKind, TagGenerator};
use mailcat_codec::smtp::command::{ClientId, Command as SmtpCommand};
use mailcat_codec::{pop3, smtp, DecodeError, Limits};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::connect::{
    answers_tls, connect_tcp_to, resolve, tls_handshake, tls_handshake_after_starttls,
};
use crate::error::{Error, Step};
use crate::sniff::{is_tls_record, plaintext_greeting, PlaintextGreeting};
use crate::stream::MailStream;
use crate::trace::Redaction;
use crate::{Connection, Endpoint, Protocol, Security, Timeouts};

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

/// The protocol decoders a connection needs between calls.
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

impl Codec {
    fn new(protocol: Protocol) -> Self {
        match protocol {
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
        }
    }
}

/// A connection with the protocol state around it: decoders, IMAP tags, the EHLO name.
#[derive(Debug)]
pub struct MailConnection<S> {
    connection: Connection<S>,
    codec: Codec,
    client_id: ClientId,
}

/// An IMAP exchange's result: the untagged responses that came first, then the tagged one.
type ImapExchange = (Vec<Response<'static>>, Response<'static>);

impl<S: AsyncRead + AsyncWrite + Unpin> MailConnection<S> {
    /// Wraps a connection; `client_id` is the name given in SMTP EHLO (an address literal of
    /// the local address is the private, always-valid choice).
    pub fn new(connection: Connection<S>, client_id: ClientId) -> Self {
        let codec = Codec::new(connection.endpoint().protocol);
        MailConnection {
            connection,
            codec,
            client_id,
        }
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection<S> {
        &self.connection
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.connection.endpoint()
    }

    /// Hands the connection over to a protocol session, with the IMAP tag generator (so tags
    /// keep counting up) when the protocol is IMAP.
    pub fn into_parts(self) -> (Connection<S>, Option<TagGenerator>) {
        let tags = match self.codec {
            Codec::Imap { tags, .. } => Some(tags),
            _ => None,
        };
        (self.connection, tags)
    }

    /// Reads the greeting. A TLS record where a greeting was due means the port expects
    /// implicit TLS; a greeting that refuses service (IMAP BYE, POP3 -ERR, SMTP 421/554) is an
    /// error with the server's words.
    pub async fn greeting(&mut self) -> Result<Greeting, Error> {
        let endpoint = self.connection.endpoint().clone();
        let protocol = endpoint.protocol;
        let read = match &mut self.codec {
            Codec::Imap { decoder, .. } => {
                self.connection
                    .read_frame(
                        Step::Greeting,
                        decoder,
                        |decoder, buf| {
                            if let Err(stop) = first_bytes(buf, protocol) {
                                return stop.into();
                            }
                            let (used, event) = decoder.decode(buf)?;
                            Ok((used, First::Greeting(imap_greeting(event)?)))
                        },
                        |decoder, rest| decoder.end_of_input(rest),
                    )
                    .await
            }
            Codec::Pop3 { decoder } => {
                self.connection
                    .read_frame(
                        Step::Greeting,
                        decoder,
                        |decoder, buf| {
                            if let Err(stop) = first_bytes(buf, protocol) {
                                return stop.into();
                            }
                            let (used, event) = decoder.decode(buf)?;
                            match event {
                                pop3::Event::Status(status) => {
                                    let text = escape_bytes(&status.text);
                                    let greeting = if status.is_ok() {
                                        Ok(Greeting {
                                            text,
                                            preauth: false,
                                            capabilities: None,
                                            alert: None,
                                        })
                                    } else {
                                        Err(format!("-ERR {text}"))
                                    };
                                    Ok((used, First::Greeting(greeting)))
                                }
                                _ => Err(DecodeError::Invalid {
                                    offset: 0,
                                    expected: "+OK or -ERR",
                                }),
                            }
                        },
                        pop3_end_of_input,
                    )
                    .await
            }
            Codec::Smtp { limits } => {
                let limits = *limits;
                self.connection
                    .read_frame(
                        Step::Greeting,
                        &mut (),
                        |_, buf| {
                            if let Err(stop) = first_bytes(buf, protocol) {
                                return stop.into();
                            }
                            let (used, reply) = smtp::parse_reply(buf, &limits)?;
                            let text = smtp_text(&reply);
                            let greeting = if reply.code.get() == 220 {
                                Ok(Greeting {
                                    text,
                                    preauth: false,
                                    capabilities: None,
                                    alert: None,
                                })
                            } else {
                                Err(format!("{} {text}", reply.code.get()))
                            };
                            Ok((used, First::Greeting(greeting)))
                        },
                        smtp_end_of_input,
                    )
                    .await
            }
        };
        let result = match read {
            Ok((First::Greeting(Ok(greeting)), _)) => {
                self.lock_step(Step::Greeting).map(|()| greeting)
            }
            Ok((First::Greeting(Err(refusal)), _)) => Err(Error::Refused {
                host: endpoint.host.clone(),
                step: Step::Greeting,
                reply: refusal,
            }),
            Ok((First::Tls, _)) => Err(Error::TlsServerOnPlaintextConnection {
                host: endpoint.host.clone(),
                port: endpoint.port,
                tls_url: Endpoint {
                    security: Security::ImplicitTls,
                    ..endpoint.clone()
                }
                .url(),
            }),
            Ok((First::Foreign(found, greeting), _)) => Err(Error::WrongProtocol {
                tls: self.connection.is_tls(),
                host: endpoint.host.clone(),
                port: endpoint.port,
                expected: protocol,
                found,
                greeting,
            }),
            Err(e) => Err(e),
        };
        // The hint is about a silent server: one that sent part of a greeting is not one.
        let silent = self.connection.buffered() == 0;
        result.map_err(|e| {
            if silent {
                add_greeting_timeout_hint(e, &endpoint)
            } else {
                e
            }
        })
    }

    /// Asks for the capabilities (IMAP `CAPABILITY`, POP3 `CAPA`, SMTP `EHLO`).
    ///
    /// A POP3 server without CAPA (RFC 1939 only) answers `-ERR`: that is an empty list. Any
    /// other failure is an error: never "no answer, so no STARTTLS, carry on" (CVE-2021-22946).
    pub async fn capabilities(&mut self) -> Result<Capabilities, Error> {
        let protocol = self.endpoint().protocol;
        match protocol {
            Protocol::Imap => {
                let (untagged, tagged) = self
                    .imap_exchange(ImapCommand::Capability, Step::Capabilities)
                    .await?;
                self.imap_expect_ok(&tagged, Step::Capabilities)?;
                let mut items = Vec::new();
                for response in &untagged {
                    if let Response::Data(Data::Capability(caps)) = response {
                        items.extend(
                            caps.iter()
                                .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned()),
                        );
                    }
                }
                if items.is_empty() {
                    if let Response::Status { code, .. } = &tagged {
                        items = imap_capabilities(code.as_ref())
                            .map(|c| c.items)
                            .unwrap_or_default();
                    }
                }
                Ok(Capabilities { protocol, items })
            }
            Protocol::Pop3 => {
                let (ok, _, lines) = self
                    .pop3_exchange(&pop3::command::Command::Capa, true, Step::Capabilities)
                    .await?;
                self.lock_step(Step::Capabilities)?;
                Ok(Capabilities {
                    protocol,
                    items: if ok { lines } else { Vec::new() },
                })
            }
            Protocol::Smtp => {
                let command = SmtpCommand::Ehlo(self.client_id.clone());
                let reply = self.smtp_exchange(&command, Step::Capabilities).await?;
                self.lock_step(Step::Capabilities)?;
                if reply.code.get() != 250 {
                    return Err(self.refused(
                        Step::Capabilities,
                        format!("{} {}", reply.code.get(), smtp_text(&reply)),
                    ));
                }
                let items = reply
                    .lines
                    .iter()
                    .skip(1)
                    .map(|l| String::from_utf8_lossy(l).trim().to_owned())
                    .collect();
                Ok(Capabilities { protocol, items })
            }
        }
    }

    /// Sends one IMAP command and reads until its tagged completion. Untagged responses before
    /// it are returned (and, before TLS, must be ignored by the caller). A tagged response with
    /// another tag, or a continuation request, is a protocol error (SECURITY.md #3, #41).
    /// Errors name `step` (the capability query, STARTTLS), as the account check shows it.
    async fn imap_exchange(
        &mut self,
        command: ImapCommand,
        step: Step,
    ) -> Result<ImapExchange, Error> {
        let Codec::Imap { tags, options, .. } = &mut self.codec else {
            unreachable_codec()
        };
        let tag = tags.next_tag();
        let encoded = command.encode(&tag, options).map_err(|e| Error::Refused {
            host: self.connection.endpoint().host.clone(),
            step: Step::Write,
            reply: e.to_string(),
        })?;
        self.connection
            .send(&encoded.to_bytes(), Redaction::Normal)
            .await?;
        let mut untagged = Vec::new();
        loop {
            let Codec::Imap { decoder, .. } = &mut self.codec else {
                unreachable_codec()
            };
            let (response, _) = self
                .connection
                .read_frame(
                    step,
                    decoder,
                    |decoder, buf| {
                        let (used, event) = decoder.decode(buf)?;
                        Ok((
                            used,
                            match event {
                                imap::Event::Response(r) => Some(r.into_owned()),
                                _ => None,
                            },
                        ))
                    },
                    |decoder, rest| decoder.end_of_input(rest),
                )
                .await?;
            match response {
                Some(Response::Status {
                    tag: Some(got),
                    kind,
                    code,
                    text,
                }) => {
                    if got.as_bytes() != tag.as_bytes() {
                        return Err(protocol_error(
                            self.endpoint(),
                            step,
                            "the tag of the command sent",
                        ));
                    }
                    return Ok((
                        untagged,
                        Response::Status {
                            tag: Some(got),
                            kind,
                            code,
                            text,
                        },
                    ));
                }
                Some(Response::Continuation { .. }) => {
                    return Err(protocol_error(
                        self.endpoint(),
                        step,
                        "a tagged response, not a continuation",
                    ));
                }
                Some(other) => {
                    untagged.push(other);
                    if untagged.len() > MAX_DIALOGUE_ITEMS {
                        return Err(protocol_error(
                            self.endpoint(),
                            step,
                            "at most 1,000 untagged responses to one command",
                        ));
                    }
                }
                None => {}
            }
        }
    }

    fn imap_expect_ok(&self, tagged: &Response<'_>, step: Step) -> Result<(), Error> {
        match tagged {
            Response::Status {
                kind: StatusKind::Ok,
                ..
            } => Ok(()),
            Response::Status { kind, text, .. } => {
                Err(self.refused(step, format!("{} {}", kind.as_str(), escape_bytes(text))))
            }
            _ => Err(protocol_error(
                self.endpoint(),
                step,
                "a tagged status response",
            )),
        }
    }

    /// Sends one POP3 command; returns `+OK`?, the status text and, for a multi-line reply, its
    /// lines (listings are small here: CAPA). Errors name `step`.
    async fn pop3_exchange(
        &mut self,
        command: &pop3::command::Command,
        multi_line: bool,
        step: Step,
    ) -> Result<(bool, String, Vec<String>), Error> {
        let bytes = command
            .encode()
            .map_err(|e| self.refused(Step::Write, e.to_string()))?;
        let Codec::Pop3 { decoder } = &mut self.codec else {
            unreachable_codec()
        };
        decoder.expect(if multi_line {
            pop3::Expect::MultiLine(pop3::Body::Lines)
        } else {
            pop3::Expect::SingleLine
        });
        // Bytes waiting before the command came after the previous reply.
        self.nothing_unsolicited().await?;
        self.connection.send(&bytes, Redaction::Normal).await?;
        let mut status = None;
        let mut lines = Vec::new();
        loop {
            let Codec::Pop3 { decoder } = &mut self.codec else {
                unreachable_codec()
            };
            let (event, _) = self
                .connection
                .read_frame(
                    step,
                    decoder,
                    |decoder, buf| {
                        let (used, event) = decoder.decode(buf)?;
                        Ok((
                            used,
                            match event {
                                pop3::Event::Status(s) => {
                                    Pop3Item::Status(s.is_ok(), escape_bytes(&s.text))
                                }
                                pop3::Event::Line(l) => {
                                    Pop3Item::Line(String::from_utf8_lossy(l).into_owned())
                                }
                                pop3::Event::End => Pop3Item::End,
                                pop3::Event::Continuation(_) | pop3::Event::BodyChunk(_) => {
                                    Pop3Item::Unexpected
                                }
                            },
                        ))
                    },
                    pop3_end_of_input,
                )
                .await?;
            let in_body = matches!(&self.codec, Codec::Pop3 { decoder } if decoder.is_in_body());
            match event {
                Pop3Item::Status(ok, text) => {
                    if !ok || !in_body {
                        return Ok((ok, text, lines));
                    }
                    status = Some(text);
                }
                Pop3Item::Line(line) => {
                    lines.push(line);
                    if lines.len() > MAX_DIALOGUE_ITEMS {
                        return Err(protocol_error(
                            self.endpoint(),
                            step,
                            "at most 1,000 lines in a capability listing",
                        ));
                    }
                }
                Pop3Item::End => return Ok((true, status.unwrap_or_default(), lines)),
                Pop3Item::Unexpected => {
                    return Err(protocol_error(self.endpoint(), step, "+OK or -ERR"));
                }
            }
        }
    }

    /// Sends one SMTP command and reads its reply.
    async fn smtp_exchange(
        &mut self,
        command: &SmtpCommand,
        step: Step,
    ) -> Result<smtp::Reply<'static>, Error> {
        let bytes = command
            .encode()
            .map_err(|e| self.refused(Step::Write, e.to_string()))?;
        // Bytes waiting before the command came after the previous reply.
        self.nothing_unsolicited().await?;
        self.connection.send(&bytes, Redaction::Normal).await?;
        let Codec::Smtp { limits, .. } = &self.codec else {
            unreachable_codec()
        };
        let limits = *limits;
        let (reply, _) = self
            .connection
            .read_frame(
                step,
                &mut (),
                |_, buf| {
                    smtp::parse_reply(buf, &limits).map(|(used, reply)| (used, reply.into_owned()))
                },
                smtp_end_of_input,
            )
            .await?;
        Ok(reply)
    }

    /// Upgrades to TLS with STARTTLS (IMAP, SMTP) or STLS (POP3). The one audited place where
    /// that happens:
    /// 1. the server must have offered it (the caller checks [`Capabilities::offers_starttls`]);
    /// 2. the command is sent and its answer must be the go-ahead (IMAP tagged OK, `+OK`, `220`);
    ///    a refusal is an error, never a reason to carry on in plaintext;
    /// 3. if any byte is buffered after the go-ahead, the connection is dropped: it was injected
    ///    by someone on the path (CVE-2021-22947);
    /// 4. the handshake verifies the certificate for the configured host;
    /// 5. everything learned before is forgotten: a fresh connection value, fresh decoders and
    ///    tags; the caller must ask for capabilities again (RFC 3207 §4.2, RFC 2595 §3.1).
    pub async fn starttls(mut self, config: Arc<ClientConfig>) -> Result<Self, Error> {
        let endpoint = self.endpoint().clone();
        let command = endpoint.protocol.starttls_command();
        match endpoint.protocol {
            Protocol::Imap => {
                // Untagged responses before the OK are discarded: they came before TLS.
                let (_, tagged) = self
                    .imap_exchange(ImapCommand::StartTls, Step::StartTls)
                    .await?;
                self.imap_expect_ok(&tagged, Step::StartTls)?;
            }
            Protocol::Pop3 => {
                let (ok, text, _) = self
                    .pop3_exchange(&pop3::command::Command::Stls, false, Step::StartTls)
                    .await?;
                if !ok {
                    return Err(self.refused(Step::StartTls, format!("-ERR {text}")));
                }
            }
            Protocol::Smtp => {
                let reply = self
                    .smtp_exchange(&SmtpCommand::StartTls, Step::StartTls)
                    .await?;
                if reply.code.get() != 220 {
                    return Err(self.refused(
                        Step::StartTls,
                        format!("{} {}", reply.code.get(), smtp_text(&reply)),
                    ));
                }
            }
        }
        if self.connection.buffered() > 0 {
            return Err(Error::StartTlsInjection {
                host: endpoint.host.clone(),
                command,
                buffered: self.connection.buffered(),
            });
        }
        let client_id = self.client_id.clone();
        let (stream, _empty, endpoint, timeouts) = self.connection.into_parts();
        let MailStream::Plain(plain) = stream else {
            return Err(protocol_error(
                &endpoint,
                Step::StartTls,
                "a plaintext connection (TLS is already on)",
            ));
        };
        let tls = tls_handshake_after_starttls(plain, &endpoint, config, &timeouts).await?;
        let connection = Connection::new(MailStream::Tls(Box::new(tls)), endpoint, timeouts);
        Ok(MailConnection::new(connection, client_id))
    }

    /// Says goodbye (LOGOUT / QUIT) and closes, ignoring errors: nothing depends on it.
    pub async fn close(mut self) {
        let bytes = match &mut self.codec {
            Codec::Imap { tags, options, .. } => ImapCommand::Logout
                .encode(&tags.next_tag(), options)
                .map(|e| e.to_bytes())
                .unwrap_or_default(),
            Codec::Pop3 { .. } => b"QUIT\r\n".to_vec(),
            Codec::Smtp { .. } => b"QUIT\r\n".to_vec(),
        };
        let _ = self.connection.send(&bytes, Redaction::Normal).await;
        self.connection.shutdown().await;
    }

    /// POP3 and SMTP are lock-step: the server speaks once after connecting and once per
    /// command. Bytes waiting once a reply is complete (or before a command is sent) were not
    /// asked for, and would be read as the answer to the next command: a desync or an injection
    /// (SECURITY.md #52). PIPELINING changes nothing here, since these steps send one command at
    /// a time. IMAP is exempt: untagged data may come at any time.
    fn lock_step(&self, step: Step) -> Result<(), Error> {
        let endpoint = self.endpoint();
        let buffered = self.connection.buffered();
        if buffered == 0 || endpoint.protocol == Protocol::Imap {
            return Ok(());
        }
        Err(Error::OutOfStep {
            host: endpoint.host.clone(),
            protocol: endpoint.protocol,
            step,
            buffered,
        })
    }

    /// Before a POP3 or SMTP command: the lock-step rule of [`Self::lock_step`], with what
    /// arrived since the last reply was read taken in first ([`Connection::unsolicited`], the
    /// one check of "nothing unsolicited before a command", which never waits).
    async fn nothing_unsolicited(&mut self) -> Result<(), Error> {
        if self.endpoint().protocol != Protocol::Imap {
            self.connection.unsolicited().await?;
        }
        self.lock_step(Step::Response)
    }

    fn refused(&self, step: Step, reply: String) -> Error {
        Error::Refused {
            host: self.endpoint().host.clone(),
            step,
            reply,
        }
    }
}

enum Pop3Item {
    Status(bool, String),
    Line(String),
    End,
    Unexpected,
}

fn unreachable_codec() -> ! {
    unreachable!("the codec state always matches the endpoint's protocol")
}

fn pop3_end_of_input(decoder: &pop3::Decoder, rest: &[u8]) -> DecodeError {
    decoder
        .end_of_input(rest)
        .err()
        .unwrap_or(DecodeError::Truncated {
            offset: 0,
            inside: "a POP3 response",
        })
}

fn smtp_end_of_input(_: &(), rest: &[u8]) -> DecodeError {
    smtp::end_of_input(rest)
        .err()
        .unwrap_or(DecodeError::Truncated {
            offset: 0,
            inside: "an SMTP reply",
        })
}

/// What the first bytes of a connection turned out to be.
enum First {
    /// The expected protocol's greeting (or its refusal, with the server's words).
    Greeting(Result<Greeting, String>),
    /// A TLS record: the port expects implicit TLS.
    Tls,
    /// Another protocol's greeting: the port belongs to another service.
    Foreign(Protocol, String),
}

/// Recognises a TLS record or another protocol's greeting before the protocol's decoder sees
/// the bytes (it would only say "invalid at byte 0"). Waits for four bytes, enough to tell.
fn first_bytes(buf: &[u8], expected: Protocol) -> Result<(), FirstBytes> {
    if is_tls_record(buf) {
        return Err(FirstBytes::Found(First::Tls));
    }
    if let Some(greeting) = plaintext_greeting(buf) {
        if let Some(found) = greeting.protocol.filter(|&p| p != expected) {
            return Err(FirstBytes::Found(First::Foreign(found, greeting.text)));
        }
    } else if buf.len() < 4
        && [&b"* OK"[..], b"+OK", b"-ERR", b"220 ", b"\x16\x03"]
            .iter()
            .any(|g| g.starts_with(buf))
    {
        return Err(FirstBytes::Wait);
    }
    Ok(())
}

/// Why [`first_bytes`] stopped the decoder.
enum FirstBytes {
    /// Not enough bytes to tell yet.
    Wait,
    /// The answer: a frame of zero bytes carrying it.
    Found(First),
}

impl From<FirstBytes> for Result<(usize, First), DecodeError> {
    fn from(stop: FirstBytes) -> Self {
        match stop {
            FirstBytes::Wait => Err(DecodeError::Incomplete),
            FirstBytes::Found(first) => Ok((0, first)),
        }
    }
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

/// The most untagged responses or listing lines one command of the dialogue (CAPABILITY,
/// CAPA, STARTTLS) may bring: real servers send one response or a few dozen lines; a server
/// that sends more, before any login, is trying to exhaust memory (SECURITY.md row 40).
const MAX_DIALOGUE_ITEMS: usize = 1_000;

fn protocol_error(endpoint: &Endpoint, step: Step, expected: &'static str) -> Error {
    Error::Protocol {
        host: endpoint.host.clone(),
        protocol: endpoint.protocol,
        step,
        source: DecodeError::Invalid {
            offset: 0,
            expected,
        },
    }
}

/// A silent server on a plaintext connection is most often an implicit-TLS port.
fn add_greeting_timeout_hint(error: Error, endpoint: &Endpoint) -> Error {
    match error {
        Error::Timeout {
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
            Error::Timeout {
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

/// How long a plaintext connection may wait for its greeting before mailcat asks, on a second
/// connection, whether the port expects TLS from the first byte (an implicit-TLS server waits,
/// silent, for the client's TLS hello; mail servers greet within milliseconds).
const TLS_PROBE_AFTER: Duration = Duration::from_secs(1);

/// Reads the greeting of a plaintext connection; if the server stays silent for a while, finds
/// out whether the port expects implicit TLS (a STARTTLS URL on port 993 ...) by a TLS
/// handshake on a second connection, and if so fails at once with the URL to use instead of
/// waiting for the greeting timeout. A server that merely greets late (a greet pause, a slow
/// reverse lookup) does not answer in TLS, and its greeting is still awaited.
///
/// Not on the ports a protocol uses for STARTTLS (143, 110, 587, 25), where a server that
/// pauses before greeting may take a client that talks first for a spammer (Postfix's
/// postscreen), and where a TLS server would be a surprise anyway.
async fn greeting_or_tls(
    connection: &mut MailConnection<TcpStream>,
    peer: Option<std::net::SocketAddr>,
    tls: Arc<ClientConfig>,
    timeouts: &Timeouts,
) -> Result<Greeting, Error> {
    let endpoint = connection.endpoint().clone();
    let probe_wait = TLS_PROBE_AFTER.min(timeouts.greeting / 2);
    let may_probe = endpoint.security != Security::ImplicitTls
        && endpoint.protocol.security_of_port(endpoint.port) != Some(Security::StartTls);
    let (Some(peer), true) = (peer, may_probe) else {
        return connection.greeting().await;
    };
    let greeting = connection.greeting();
    tokio::pin!(greeting);
    tokio::select! {
        result = &mut greeting => return result,
        () = tokio::time::sleep(probe_wait) => {}
    }
    let probe = answers_tls(peer, &endpoint, tls, timeouts.tls_handshake);
    tokio::select! {
        result = &mut greeting => result,
        Some(answer) = probe => Err(match answer.greeting {
            // Another protocol's TLS port (a POP3 URL on the IMAPS port).
            Some(PlaintextGreeting {
                protocol: Some(found),
                text,
            }) if found != endpoint.protocol => Error::WrongProtocol {
                host: endpoint.host.clone(),
                port: endpoint.port,
                expected: endpoint.protocol,
                found,
                greeting: text,
                tls: true,
            },
            _ => Error::TlsServerOnPlaintextConnection {
                host: endpoint.host.clone(),
                port: endpoint.port,
                tls_url: implicit_tls_url(&endpoint),
            },
        }),
    }
}

/// The implicit-TLS URL to use instead of `endpoint`: the same port, unless it is another
/// protocol's implicit-TLS port (`pop3://host:993`), then the protocol's own.
fn implicit_tls_url(endpoint: &Endpoint) -> String {
    let port = endpoint.port;
    let others_port = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp]
        .into_iter()
        .any(|p| p != endpoint.protocol && p.default_port(Security::ImplicitTls) == port);
    let implicit = Endpoint {
        security: Security::ImplicitTls,
        ..endpoint.clone()
    };
    if others_port {
        implicit
            .with_port(endpoint.protocol.default_port(Security::ImplicitTls))
            .url()
    } else {
        implicit.url()
    }
}

/// One step of [`open`], as it finished.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Which step.
    pub step: Step,
    /// How long it took.
    pub elapsed: Duration,
    /// What it found (the addresses, the TLS version, the greeting ...).
    pub detail: String,
}

/// Everything [`open`] learned.
#[derive(Debug)]
pub struct Opened {
    /// The connection, ready for login.
    pub connection: MailConnection<TcpStream>,
    /// The greeting (before STARTTLS, if that was used: not to be trusted).
    pub greeting: Greeting,
    /// The capabilities, asked over TLS.
    pub capabilities: Capabilities,
}

/// Connects to `endpoint` and gets it ready for login: resolve, connect, implicit TLS or
/// STARTTLS, greeting, capabilities. Each finished step is reported to `observer`.
///
/// With [`Security::StartTls`], the upgrade is required: a server that does not offer it, or
/// refuses it, is an error (never a plaintext fallback); a `PREAUTH` greeting before TLS too.
pub async fn open(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    timeouts: &Timeouts,
    observer: &mut (dyn FnMut(StepReport) + Send),
) -> Result<Opened, Error> {
    let mut clock = Instant::now();
    let mut report = |step: Step, detail: String| {
        observer(StepReport {
            step,
            elapsed: clock.elapsed(),
            detail,
        });
        clock = Instant::now();
    };

    let addrs = resolve(endpoint, timeouts).await?;
    report(
        Step::Resolve,
        addrs
            .iter()
            .map(|a| a.ip().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let tcp = connect_tcp_to(endpoint, &addrs, timeouts).await?;
    let local = tcp
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let peer = tcp.peer_addr().ok();
    report(
        Step::Connect,
        peer.map(|a| a.to_string()).unwrap_or_default(),
    );

    let stream = match endpoint.security {
        Security::ImplicitTls => {
            let tls = tls_handshake(tcp, endpoint, tls.clone(), timeouts).await?;
            let stream = MailStream::Tls(Box::new(tls));
            report(
                Step::TlsHandshake,
                stream.tls_description().unwrap_or_default(),
            );
            stream
        }
        Security::StartTls | Security::DangerousPlaintext => MailStream::Plain(tcp),
    };
    let mut connection = MailConnection::new(
        Connection::new(stream, endpoint.clone(), *timeouts),
        ClientId::from(local),
    );
    let mut greeting = greeting_or_tls(&mut connection, peer, tls.clone(), timeouts).await?;
    if endpoint.security != Security::ImplicitTls {
        greeting.alert = None;
    }
    if endpoint.security == Security::StartTls && greeting.preauth {
        // SECURITY.md #6: PREAUTH in clear text leaves no way to start TLS.
        return Err(Error::PreauthBeforeTls {
            host: endpoint.host.clone(),
            tls_url: Endpoint {
                security: Security::ImplicitTls,
                ..endpoint.clone()
            }
            .with_port(endpoint.protocol.default_port(Security::ImplicitTls))
            .url(),
        });
    }
    report(Step::Greeting, greeting.text.clone());
    let mut capabilities = connection.capabilities().await?;
    report(Step::Capabilities, capabilities.items.join(" "));

    if endpoint.security == Security::StartTls {
        if !capabilities.offers_starttls() {
            return Err(Error::StartTlsNotOffered {
                host: endpoint.host.clone(),
                command: endpoint.protocol.starttls_command(),
                tls_url: Endpoint {
                    security: Security::ImplicitTls,
                    ..endpoint.clone()
                }
                .with_port(endpoint.protocol.default_port(Security::ImplicitTls))
                .url(),
            });
        }
        connection = connection.starttls(tls).await?;
        report(
            Step::StartTls,
            connection
                .connection()
                .tls_description()
                .unwrap_or_default(),
        );
        capabilities = connection.capabilities().await?;
        report(Step::Capabilities, capabilities.items.join(" "));
    }
    Ok(Opened {
        connection,
        greeting,
        capabilities,
    })
}
