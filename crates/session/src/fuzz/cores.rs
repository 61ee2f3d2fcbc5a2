//! Fuzz bodies for the protocol cores ([`crate::core`]): a hostile server's bytes fed to each
//! core through the [`Core`] contract, by a driver that does what [`crate::driver::Driver`]
//! does (write what is queued, hand over every byte buffered, read more when asked), around the
//! commands a session sends.
//!
//! Each input's first byte sets options (pipelining, the size of the reads); the rest is what
//! the server sends, cut into reads of that size. What every body checks, besides not
//! panicking:
//! - an event never uses more bytes than it was given, and the core makes progress;
//! - the core never asks for more input while it holds more than its limits allow (the
//!   decoders get small limits so that short inputs reach them);
//! - an error from `handle_input` poisons the core, and a poisoned core transmits nothing and
//!   takes no command;
//! - the opening never sends a credential, and never declares the connection ready for login
//!   in plain text when TLS is required; nothing buffered survives the STARTTLS go-ahead;
//! - SMTP: no message data goes out before the server's `354`, and a message is reported sent
//!   only after its terminator went out and the server accepted it.

use std::collections::HashMap;

use mailcat_codec::imap::command::{
    Command as ImapCommand, FetchAttribute, Mailbox, SearchKey, SelectParams, SequenceSet,
};
use mailcat_codec::imap::{Capability, TagGenerator};
use mailcat_codec::pop3::command::{Command as Pop3Command, Secret as Pop3Secret};
use mailcat_codec::smtp::command::{ClientId, Command as SmtpCommand};
use mailcat_codec::smtp::{parse_reply, Extensions};
use mailcat_codec::Limits;
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Protocol, Security};

use crate::auth::SaslReply;
use crate::core::imap::{ImapCore, ImapEvent, Kind};
use crate::core::opening::{Event as OpeningEvent, Opening};
use crate::core::pop3::{Due, ListingLimits, Pop3Core, Pop3Event};
use crate::core::smtp::{Event as SmtpEvent, SmtpCore};
use crate::core::{Core, Progress};
use crate::smtp::{Address, Envelope, MessageInfo};
use crate::Error;

/// The password every core is given: it must never be written before TLS, and is found in
/// the transcript by these bytes.
const PASSWORD: &str = "s3cr3t-Pa55";

/// The server side of a connection, as a core's driver sees it.
struct Server<'a> {
    /// What the server has yet to send.
    rest: &'a [u8],
    /// How many bytes one read brings.
    read_size: usize,
    /// Bytes read and not yet used by the core.
    buf: Vec<u8>,
    /// Bytes the core used, in order.
    used: Vec<u8>,
    /// Everything the core wrote, in order, with what the trace may show of it.
    written: Vec<(Vec<u8>, Redaction)>,
    /// Events in a row that used no byte: a core that keeps answering without using anything
    /// would hang its session.
    idle_events: usize,
    /// How many bytes the last event used: the byte ranges it hands on lie inside them.
    last_used: usize,
}

/// What the driver got from a core.
enum Step<E> {
    Event(E),
    /// The server closed the connection: the core's error for it.
    End(Error),
    /// `handle_input` failed (its error was shown).
    Failed,
}

impl<'a> Server<'a> {
    fn new(options: u8, bytes: &'a [u8]) -> Self {
        // 1, 2, 3, 5, 8 ... 64 bytes a read, or everything at once.
        const SIZES: [usize; 8] = [1, 2, 3, 7, 16, 64, 512, usize::MAX];
        Server {
            rest: bytes,
            read_size: SIZES[usize::from(options >> 5)],
            buf: Vec::new(),
            used: Vec::new(),
            written: Vec::new(),
            idle_events: 0,
            last_used: 0,
        }
    }

    /// One read; false once the server closed the connection.
    fn fill(&mut self) -> bool {
        if self.rest.is_empty() {
            return false;
        }
        let n = self.read_size.min(self.rest.len());
        self.buf.extend_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        true
    }

    /// Writes what `core` queued. A poisoned core has nothing to write: `poisoned` is its
    /// state now.
    fn flush<C: Core + Poisoned>(&mut self, core: &mut C) {
        let poisoned = core.poisoned();
        while let Some(transmit) = core.poll_transmit() {
            assert!(
                !poisoned,
                "a poisoned core wrote {:?}",
                String::from_utf8_lossy(&transmit.bytes)
            );
            self.written.push((transmit.bytes, transmit.redaction));
        }
        core.transmitted();
    }

    /// Everything written, as one stream.
    fn wire(&self) -> Vec<u8> {
        self.written.iter().flat_map(|(b, _)| b.clone()).collect()
    }

    /// Hands `core` every byte buffered until it has an event, reading more when it asks, as
    /// the driver does. `max_buffered`: the most bytes the core may hold and still ask for
    /// more (its limits).
    fn next<C: Core>(&mut self, core: &mut C, max_buffered: usize) -> Step<C::Event> {
        loop {
            let len = self.buf.len();
            match core.handle_input(&self.buf) {
                Ok(Progress::Event { consumed, event }) => {
                    assert!(consumed <= len, "used {consumed} bytes of {len}");
                    if consumed == 0 {
                        self.idle_events += 1;
                        assert!(self.idle_events < 64, "events without progress");
                    } else {
                        self.idle_events = 0;
                    }
                    self.used.extend(self.buf.drain(..consumed));
                    self.last_used = consumed;
                    return Step::Event(event);
                }
                Ok(Progress::NeedInput) => {
                    assert!(
                        len <= max_buffered,
                        "{len} bytes buffered and more wanted: the limit is {max_buffered}"
                    );
                    if !self.fill() {
                        let error = core.handle_end(&self.buf);
                        let _ = error.to_string();
                        return Step::End(error);
                    }
                }
                Err(error) => {
                    let _ = error.to_string();
                    return Step::Failed;
                }
            }
        }
    }
}

/// Whether a core is poisoned (takes no more commands, writes nothing more).
trait Poisoned {
    fn poisoned(&self) -> bool;
}

impl Poisoned for Pop3Core {
    fn poisoned(&self) -> bool {
        self.fuzz_poisoned()
    }
}

impl Poisoned for SmtpCore {
    fn poisoned(&self) -> bool {
        self.is_poisoned()
    }
}

impl Poisoned for ImapCore {
    fn poisoned(&self) -> bool {
        self.is_poisoned()
    }
}

impl Poisoned for Opening {
    fn poisoned(&self) -> bool {
        self.fuzz_poisoned()
    }
}

fn endpoint(protocol: Protocol, security: Security) -> Endpoint {
    Endpoint::new(protocol, "mail.example.com", security)
}

/// Small limits, so that short inputs reach every limit check.
fn small_limits(base: Limits) -> Limits {
    let mut limits = base;
    limits.max_line = limits.max_line.min(200);
    limits.max_literal = limits.max_literal.min(300);
    limits.stream_threshold = limits.stream_threshold.min(48);
    limits.max_response = limits.max_response.min(1000);
    limits.max_lines = limits.max_lines.min(8);
    limits.max_depth = limits.max_depth.min(8);
    limits
}

// ---------------------------------------------------------------- POP3

/// What the POP3 session asks, in order: a login, the listings, pipelined retrievals, CAPA,
/// AUTH and QUIT.
enum Pop3Op {
    Single(Pop3Command, Due),
    Bodies(u32),
    Auth,
}

/// The POP3 core after the greeting, fed the server's replies to a whole session.
pub fn pop3_core(data: &[u8]) {
    let Some((&options, bytes)) = data.split_first() else {
        return;
    };
    let limits = small_limits(Limits::pop3());
    let mut core = Pop3Core::new(
        endpoint(Protocol::Pop3, Security::ImplicitTls),
        options & 1 != 0,
        0,
    );
    core.fuzz_limits(limits);
    let mut server = Server::new(options, bytes);
    let listing = |command| Due::Listing {
        command,
        limits: ListingLimits::for_count(3),
        lines: 0,
        bytes: 0,
    };
    let ops = [
        Pop3Op::Single(Pop3Command::User("alice".into()), Due::Status("USER")),
        Pop3Op::Single(
            Pop3Command::Pass(Pop3Secret::new(PASSWORD.as_bytes())),
            Due::Status("PASS"),
        ),
        Pop3Op::Single(Pop3Command::Stat, Due::Status("STAT")),
        Pop3Op::Single(Pop3Command::List(None), listing("LIST")),
        Pop3Op::Single(Pop3Command::Uidl(None), listing("UIDL")),
        Pop3Op::Bodies(if options & 2 != 0 { 12 } else { 3 }),
        Pop3Op::Single(
            Pop3Command::Capa,
            Due::Listing {
                command: "CAPA",
                limits: ListingLimits::CAPA,
                lines: 0,
                bytes: 0,
            },
        ),
        Pop3Op::Auth,
        Pop3Op::Single(Pop3Command::Quit, Due::Status("QUIT")),
    ];
    // A line (status, listing line) is at most max_line; body lines stream.
    let max_buffered = limits.max_line;
    for op in ops {
        let poisoned = core.fuzz_poisoned();
        let started = core.may_start(&server.buf).and_then(|()| match &op {
            Pop3Op::Single(command, due) => core.command(command, due.clone()).map(|()| 1),
            Pop3Op::Bodies(n) => core.start_bodies("RETR", (1..=*n).map(Pop3Command::Retr), true),
            Pop3Op::Auth => core
                .command(
                    &Pop3Command::Auth {
                        mechanism: "PLAIN".into(),
                        initial_response: None,
                    },
                    Due::Sasl,
                )
                .map(|()| 1),
        });
        if poisoned {
            assert!(started.is_err(), "a poisoned core took a command");
        }
        server.flush(&mut core);
        let Ok(mut replies) = started else {
            continue;
        };
        while replies > 0 {
            let step = server.next(&mut core, max_buffered);
            server.flush(&mut core);
            match step {
                Step::Event(Pop3Event::Status(status)) => {
                    if !core.in_reply() {
                        replies -= 1;
                    }
                    let _ = status.is_ok();
                }
                Step::Event(Pop3Event::Challenge(range)) => {
                    assert!(
                        range.end <= server.last_used,
                        "{range:?} outside the bytes used"
                    );
                    // Answer the challenge, then the final status comes.
                    let _ = core.queue(b"*\r\n".to_vec(), Redaction::Normal, None);
                    server.flush(&mut core);
                }
                Step::Event(Pop3Event::Line(range) | Pop3Event::Chunk(range)) => {
                    assert!(
                        range.end <= server.last_used,
                        "{range:?} outside the bytes used"
                    );
                }
                Step::Event(Pop3Event::End) => replies -= 1,
                Step::End(_) | Step::Failed => {
                    assert!(core.fuzz_poisoned(), "an error left the POP3 core usable");
                    break;
                }
            }
        }
        if core.fuzz_poisoned() {
            assert!(core.usable().is_err(), "a poisoned core is usable");
        }
    }
}

// ---------------------------------------------------------------- SMTP

/// The SMTP core after EHLO, fed the server's replies to AUTH, a message to two recipients,
/// RSET, NOOP and QUIT.
pub fn smtp_core(data: &[u8]) {
    let Some((&options, bytes)) = data.split_first() else {
        return;
    };
    let limits = small_limits(Limits::smtp());
    let mut ehlo = b"250-mail.example.com\r\n250-8BITMIME\r\n".to_vec();
    if options & 1 != 0 {
        ehlo.extend_from_slice(b"250-PIPELINING\r\n");
    }
    ehlo.extend_from_slice(b"250 AUTH PLAIN\r\n");
    let (_, ehlo) = parse_reply(&ehlo, &Limits::smtp()).expect("the EHLO reply parses");
    let extensions = Extensions::from_reply(&ehlo).expect("a 250 reply");
    let mut core = SmtpCore::new(endpoint(Protocol::Smtp, Security::ImplicitTls), extensions);
    core.fuzz_limits(limits);
    core.set_pipelining(options & 1 != 0);
    core.set_allow_partial(options & 2 != 0);
    let mut server = Server::new(options, bytes);
    // A reply is held whole: at most max_response.
    let max_buffered = limits.max_response;

    // AUTH PLAIN with an initial response; any challenge is answered with `*`.
    let initial = format!("\0alice\0{PASSWORD}");
    let auth = SmtpCore::auth_line("PLAIN", Some(initial.as_bytes())).expect("fits");
    if core.sasl_line(&auth, Redaction::Secret).is_ok() {
        loop {
            server.flush(&mut core);
            match server.next(&mut core, max_buffered) {
                Step::Event(SmtpEvent::Sasl(Ok(SaslReply::Challenge(_)))) => {
                    if core.sasl_line(b"*\r\n", Redaction::Normal).is_err() {
                        break;
                    }
                }
                Step::Event(SmtpEvent::Sasl(_)) => break,
                Step::Event(other) => panic!("{other:?} answers AUTH"),
                Step::End(_) | Step::Failed => {
                    assert!(core.is_poisoned(), "an error left the SMTP core usable");
                    break;
                }
            }
        }
    }

    // A message.
    let envelope = Envelope {
        from: Some(Address::new("alice@example.com").expect("valid")),
        to: vec![
            Address::new("bob@example.com").expect("valid"),
            Address::new("carol@example.com").expect("valid"),
        ],
        ..Default::default()
    };
    let body = b"Subject: hi\r\n\r\n.leading dot\r\nMARKER-BODY\r\n";
    let poisoned = core.is_poisoned();
    let begun = core
        .prepare(&envelope, &MessageInfo::default())
        .and_then(|t| core.begin(t, &server.buf));
    if poisoned {
        assert!(begun.is_err(), "a poisoned core took a message");
    }
    if begun.is_ok() {
        let mut body_sent = false;
        loop {
            server.flush(&mut core);
            let data_out = server.written.iter().any(|(bytes, redaction)| {
                *redaction == Redaction::Data || contains(bytes, b"MARKER-BODY")
            });
            assert_eq!(data_out, body_sent, "message data written before the 354");
            match server.next(&mut core, max_buffered) {
                Step::Event(SmtpEvent::SendBody) => {
                    assert!(!body_sent, "two 354s for one message");
                    let last = server.used[..server.used.len().saturating_sub(1)]
                        .rsplit(|&b| b == b'\n')
                        .next()
                        .unwrap_or_default();
                    assert!(
                        last.starts_with(b"354"),
                        "the message goes after {:?}",
                        String::from_utf8_lossy(last)
                    );
                    body_sent = true;
                    core.body_push(body);
                    core.body_end();
                }
                Step::Event(SmtpEvent::Continue) => {}
                Step::Event(SmtpEvent::Sent(result)) => {
                    if result.is_ok() {
                        assert!(body_sent, "reported sent without the message");
                        assert!(
                            server.wire().ends_with(b"\r\n.\r\n"),
                            "reported sent before the terminator went out"
                        );
                    }
                    break;
                }
                Step::Event(other) => panic!("{other:?} answers a message"),
                Step::End(error) => {
                    assert!(core.is_poisoned(), "an error left the SMTP core usable");
                    if body_sent {
                        // The terminator may have reached the server: the connection lost
                        // before its answer leaves the outcome unknown (threat model #65).
                        assert!(
                            matches!(error, Error::DeliveryUnknown { .. }),
                            "closed after the message, reported as {error:?}"
                        );
                    }
                    break;
                }
                Step::Failed => {
                    assert!(core.is_poisoned(), "an error left the SMTP core usable");
                    break;
                }
            }
        }
        server.flush(&mut core);
    }

    // RSET, NOOP, QUIT.
    for command in [SmtpCommand::Rset, SmtpCommand::Noop, SmtpCommand::Quit] {
        let poisoned = core.is_poisoned();
        let started = core.command(&command, &server.buf);
        if poisoned {
            assert!(started.is_err(), "a poisoned core took {command:?}");
        }
        server.flush(&mut core);
        if started.is_err() {
            continue;
        }
        let step = server.next(&mut core, max_buffered);
        server.flush(&mut core);
        match step {
            Step::Event(SmtpEvent::Done(_)) => {}
            Step::Event(other) => panic!("{other:?} answers {command:?}"),
            Step::End(_) | Step::Failed => {
                assert!(core.is_poisoned(), "an error left the SMTP core usable");
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------- IMAP

/// The IMAP core after the greeting, fed the server's responses to LOGIN (its password in a
/// synchronising literal), CAPABILITY, SELECT, UID SEARCH, pipelined body fetches, IDLE and
/// LOGOUT.
pub fn imap_core(data: &[u8]) {
    let Some((&options, bytes)) = data.split_first() else {
        return;
    };
    let limits = small_limits(Limits::imap());
    let capabilities = if options & 1 != 0 {
        vec![
            Capability(b"IMAP4rev1".as_slice().into()),
            Capability(b"LITERAL+".as_slice().into()),
        ]
    } else {
        vec![Capability(b"IMAP4rev1".as_slice().into())]
    };
    let mut core = ImapCore::new(
        endpoint(Protocol::Imap, Security::ImplicitTls),
        TagGenerator::new(),
        capabilities,
    );
    core.fuzz_limits(limits);
    let mut server = Server::new(options, bytes);
    // A response is held whole, streamed bodies excepted: at most max_response (the longer
    // line allowed while SELECT is in flight is capped by it too). The decoder checks the
    // size at each line's end, so a line still coming may add up to max_line to it.
    let max_buffered = limits.max_response + limits.max_line;

    // A password with a quote and a byte over 127 goes in a literal.
    let password = format!("{PASSWORD}\"\u{e9}");
    let commands: Vec<(ImapCommand, Kind)> = vec![
        (
            ImapCommand::Login {
                username: "alice".into(),
                password: mailcat_codec::imap::command::Secret::new(password.as_bytes()),
            },
            Kind::Plain,
        ),
        (ImapCommand::Capability, Kind::Capability),
        (
            ImapCommand::Select {
                mailbox: Mailbox::new("INBOX".to_owned()).expect("valid"),
                params: SelectParams::None,
            },
            Kind::Open,
        ),
        (ImapCommand::UidSearch(SearchKey::All), Kind::Search),
        (
            ImapCommand::UidFetch {
                set: SequenceSet::all(),
                items: vec![FetchAttribute::Uid],
                changed_since: None,
            },
            Kind::Uids,
        ),
    ];
    for (command, kind) in commands {
        let poisoned = core.is_poisoned();
        let started = core.start(&command, kind);
        if poisoned {
            assert!(started.is_err(), "a poisoned core took {}", command.name());
        }
        server.flush(&mut core);
        let Ok(tag) = started else {
            continue;
        };
        if !imap_until_done(&mut core, &mut server, max_buffered, tag.as_str()) {
            continue;
        }
    }

    // Pipelined whole-message fetches.
    if !core.is_poisoned() {
        core.begin_bodies(vec![3, 1, 2, 9], HashMap::new());
        loop {
            let more = core.send_bodies();
            server.flush(&mut core);
            match more {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
            let step = server.next(&mut core, max_buffered);
            server.flush(&mut core);
            match step {
                Step::Event(ImapEvent::BodyChunk { range, .. }) => {
                    assert!(
                        range.end <= server.last_used,
                        "{range:?} outside the bytes used"
                    );
                }
                Step::Event(_) => {}
                Step::End(_) | Step::Failed => {
                    assert!(core.is_poisoned(), "an error left the IMAP core usable");
                    break;
                }
            }
        }
        let _ = core.end_bodies();
    }

    // IDLE, ended at once, then LOGOUT.
    let poisoned = core.is_poisoned();
    if let Ok(tag) = core.start(&ImapCommand::Idle, Kind::Idle) {
        assert!(!poisoned, "a poisoned core took IDLE");
        server.flush(&mut core);
        loop {
            let step = server.next(&mut core, max_buffered);
            server.flush(&mut core);
            match step {
                Step::Event(ImapEvent::IdleStarted) => {
                    core.idle_done();
                    server.flush(&mut core);
                }
                Step::Event(ImapEvent::Done(done)) => {
                    assert_eq!(done.tag.as_str(), tag.as_str());
                    break;
                }
                Step::Event(_) => {}
                Step::End(_) | Step::Failed => {
                    assert!(core.is_poisoned(), "an error left the IMAP core usable");
                    break;
                }
            }
        }
    }
    let poisoned = core.is_poisoned();
    let logout = core.start(&ImapCommand::Logout, Kind::Logout);
    if poisoned {
        assert!(logout.is_err(), "a poisoned core took LOGOUT");
    }
    server.flush(&mut core);
    if let Ok(tag) = logout {
        imap_until_done(&mut core, &mut server, max_buffered, tag.as_str());
    }

    // The password went out only after the server's `+` asked for it (without LITERAL+).
    if options & 1 == 0 {
        let wire = server.wire();
        if let Some(at) = find(&wire, PASSWORD.as_bytes()) {
            let _ = at;
            assert!(
                server.used.starts_with(b"+") || contains(&server.used, b"\n+"),
                "the password's literal went out before the server's `+`"
            );
        }
    }
}

/// Reads responses until the command tagged `tag` completes; false on an error.
fn imap_until_done(
    core: &mut ImapCore,
    server: &mut Server<'_>,
    max_buffered: usize,
    tag: &str,
) -> bool {
    loop {
        let step = server.next(core, max_buffered);
        server.flush(core);
        match step {
            Step::Event(ImapEvent::Done(done)) => {
                if done.tag.as_str() == tag {
                    return true;
                }
            }
            Step::Event(ImapEvent::BodyChunk { range, .. }) => {
                assert!(
                    range.end <= server.last_used,
                    "{range:?} outside the bytes used"
                );
            }
            Step::Event(_) => {}
            Step::End(_) | Step::Failed => {
                assert!(core.is_poisoned(), "an error left the IMAP core usable");
                return false;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------- the opening

/// The opening of a connection that requires STARTTLS (or, with option bit 2, implicit TLS),
/// for the protocol the option bits 0-1 choose, driven as [`crate::open`] drives it: the
/// greeting, the capabilities, STARTTLS if needed, then (over "TLS": the rest of the input)
/// the capabilities again. The server's bytes before the upgrade are the input up to the first
/// `0xFF` byte... or all of it.
pub fn opening_core(data: &[u8]) {
    let Some((&options, bytes)) = data.split_first() else {
        return;
    };
    let protocol = match options & 3 {
        0 => Protocol::Imap,
        1 => Protocol::Pop3,
        _ => Protocol::Smtp,
    };
    let security = if options & 4 != 0 {
        Security::ImplicitTls
    } else {
        Security::StartTls
    };
    // Before TLS and after it: split at the first 0xFF.
    let (plain, over_tls) = match bytes.iter().position(|&b| b == 0xFF) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let client = ClientId::from(std::net::IpAddr::from([192, 0, 2, 1]));
    let endpoint = endpoint(protocol, security);
    let tls = security == Security::ImplicitTls;
    let mut core = Opening::new(endpoint.clone(), tls, client.clone());
    let mut server = Server::new(options, plain);
    let ready = open_phase(&mut core, &mut server, true);
    check_opening_writes(&server.wire(), protocol);
    let Some(upgrade) = ready else {
        return;
    };
    if !upgrade {
        // Ready for login without STARTTLS: only where TLS was on from the start.
        assert!(
            tls,
            "ready for login in plain text although STARTTLS is required"
        );
        return;
    }
    // The handshake happened; a new core over TLS, nothing kept.
    let mut core = Opening::after_starttls(endpoint, client);
    let mut over = Server::new(options, over_tls);
    let ready = open_phase(&mut core, &mut over, false);
    check_opening_writes(&over.wire(), protocol);
    assert_ne!(ready, Some(true), "STARTTLS asked for twice");
}

/// One connection's opening until it is ready for login (`Some(false)`), needs the TLS
/// upgrade (`Some(true)`), or fails (`None`).
fn open_phase(core: &mut Opening, server: &mut Server<'_>, greeting: bool) -> Option<bool> {
    let mut poisoned = false;
    let mut step = |core: &mut Opening, server: &mut Server<'_>, poisoned: &mut bool| {
        server.flush(core);
        let step = server.next(core, usize::MAX);
        match step {
            Step::Event(event) => Some(event),
            Step::End(_) | Step::Failed => {
                *poisoned = true;
                // A poisoned opening takes no command.
                assert!(core.ask_capabilities(&[]).is_err());
                assert!(core.ask_starttls(&[]).is_err());
                core.goodbye();
                server.flush(core);
                None
            }
        }
    };
    let until = |core: &mut Opening,
                 server: &mut Server<'_>,
                 poisoned: &mut bool,
                 step: &mut dyn FnMut(
        &mut Opening,
        &mut Server<'_>,
        &mut bool,
    ) -> Option<OpeningEvent>| loop {
        match step(core, server, poisoned)? {
            OpeningEvent::Part => {}
            event => return Some(event),
        }
    };
    if greeting {
        match until(core, server, &mut poisoned, &mut step)? {
            OpeningEvent::Greeting(g) => {
                let _ = g;
            }
            other => panic!("{other:?} for a greeting"),
        }
    }
    let asked = core.ask_capabilities(&server.buf);
    server.flush(core);
    if asked.is_err() {
        return None;
    }
    let capabilities = match until(core, server, &mut poisoned, &mut step)? {
        OpeningEvent::ServerCapabilities(c) => c,
        other => panic!("{other:?} for capabilities"),
    };
    match core.needs_starttls(&capabilities) {
        Err(_) => return None,
        Ok(false) => return Some(false),
        Ok(true) => {}
    }
    let asked = core.ask_starttls(&server.buf);
    server.flush(core);
    if asked.is_err() {
        return None;
    }
    match until(core, server, &mut poisoned, &mut step)? {
        OpeningEvent::StartTls => {
            // Nothing buffered may be carried over into TLS (CVE-2021-22947): the core saw
            // everything read so far.
            assert!(
                server.buf.is_empty(),
                "{} bytes buffered at the STARTTLS go-ahead",
                server.buf.len()
            );
            Some(true)
        }
        other => panic!("{other:?} for STARTTLS"),
    }
}

/// The opening writes only its own commands: never a login.
fn check_opening_writes(wire: &[u8], protocol: Protocol) {
    let text = String::from_utf8_lossy(wire).to_ascii_uppercase();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split(' ').collect();
        let command = match protocol {
            Protocol::Imap => words.get(1).copied().unwrap_or(""),
            _ => words[0],
        };
        assert!(
            matches!(
                command,
                "CAPABILITY" | "STARTTLS" | "LOGOUT" | "CAPA" | "STLS" | "QUIT" | "EHLO"
            ),
            "the opening wrote {line:?}"
        );
    }
    assert!(find(wire, PASSWORD.as_bytes()).is_none());
}
