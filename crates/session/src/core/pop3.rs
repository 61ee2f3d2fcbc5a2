//! The POP3 conversation after the greeting, as a state machine with no I/O (RFC 1939, RFC 2449
//! CAPA and PIPELINING, RFC 5034 SASL, RFC 3206 response codes).
//!
//! The core decides everything [`crate::pop3::Pop3Session`] does: whether a command may go now,
//! its bytes, which replies are due and what each means, the listing limits, when the session
//! is out of step. The session drives it with [`crate::driver::Driver`] and routes body chunks
//! to the caller's sinks.
//!
//! Replies are matched to commands by the one in-order window ([`InOrder`]) POP3 shares with
//! SMTP. A command that must be alone in flight ([`Pop3Core::may_start`]) finds the window
//! empty and nothing buffered; pipelined `RETR`/`TOP` ([`Pop3Core::start_bodies`]) keep up to
//! [`PIPELINE_WINDOW`] in flight and queue the next one as each reply completes.
//!
//! # A call dropped halfway
//!
//! The core always knows which replies are still due. Replies left unread by a call that was
//! dropped are read and discarded before the next command ([`Pop3Core::abandoned`]), so the
//! session stays in step. A command whose bytes were only partly written cannot be repaired:
//! the session is then poisoned ([`Outbox::cut_off`]).

use std::collections::VecDeque;
use std::ops::Range;

use mailcat_codec::pop3::command::Command;
use mailcat_codec::pop3::{Body, Decoder, Event, Expect, ResponseCodeKind, StatusLine};
use mailcat_codec::{Decode, DecodeError, Decoded, EncodeError, Limits};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Protocol, Step};

use super::{nothing_unsolicited, Core, InOrder, Outbox, Poison, Progress, Transmit};
use crate::Error;

/// How many `RETR` or `TOP` commands are kept in flight when the server announced PIPELINING.
pub const PIPELINE_WINDOW: usize = 8;

/// Most bytes of listing lines (CRLF not counted) one `LIST` or `UIDL` may send: 128 MiB.
///
/// With the codec's 1,000,000 lines ([`Limits::pop3`]) this bounds what a listing costs in
/// memory (threat model #40): without it, 10^6 lines of 8 KiB each would be 8 GB. Real listings
/// are far inside: a `UIDL` line is at most 81 bytes (a 10-digit number, a space and RFC 1939's
/// 70-character unique-id), so 10^6 RFC-sized lines are ~80 MiB; mailboxes served over POP3
/// hold up to some 100,000 messages.
pub const MAX_LISTING_BYTES: usize = 128 * 1024 * 1024;

/// Most lines of a `CAPA` answer: 1,000. Servers send 10 to 20.
pub const MAX_CAPA_LINES: usize = 1_000;

/// Most bytes of a `CAPA` answer's lines: 64 KiB. Servers send under 1 KiB.
pub const MAX_CAPA_BYTES: usize = 64 * 1024;

/// The limits of one listing: lines and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListingLimits {
    pub(crate) lines: usize,
    pub(crate) bytes: usize,
}

impl ListingLimits {
    /// `LIST` and `UIDL` of a maildrop of unknown size.
    pub(crate) const LISTING: Self = Self {
        lines: Limits::pop3().max_lines,
        bytes: MAX_LISTING_BYTES,
    };

    /// `CAPA`.
    pub(crate) const CAPA: Self = Self {
        lines: MAX_CAPA_LINES,
        bytes: MAX_CAPA_BYTES,
    };

    /// `LIST` or `UIDL` of a maildrop that STAT says holds `count` messages: one line a
    /// message, plus 1,000 for a server that does not lock the maildrop (RFC 1939 §8 says it
    /// should) and gets new mail meanwhile; 82 bytes a line (a `UIDL` line is at most 81: a
    /// 10-digit number, a space, a 70-character unique-id), and 4 GiB at most whatever the
    /// count (some 50 million RFC-sized lines: the UIDLs a listing keeps are then addressed
    /// with 32-bit offsets). A million messages: ~80 MiB at most.
    pub(crate) fn for_count(count: u32) -> Self {
        let lines = (count as usize).saturating_add(1_000);
        let bytes = lines
            .saturating_mul(82)
            .min(usize::try_from(u32::MAX).unwrap_or(usize::MAX));
        Self { lines, bytes }
    }
}

/// The codec's limits, with as many listing lines as a maildrop can have messages (2^32 - 1):
/// every listing is bounded by the core instead, by what the command expects (`CAPA`: a
/// thousand lines; `LIST`/`UIDL`: what STAT announced, [`ListingLimits::for_count`]), where a
/// fixed million lines would refuse the listing of a larger mailbox.
fn decoder_limits() -> Limits {
    let mut limits = Limits::pop3();
    limits.max_lines = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
    limits
}

/// What a reply still due answers, and what is needed to understand it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// A single-line reply to the named command.
    Status(&'static str),
    /// A listing (`LIST`, `UIDL`, `CAPA`): status, then lines, counted against `limits`.
    Listing {
        command: &'static str,
        limits: ListingLimits,
        lines: usize,
        bytes: usize,
    },
    /// A message (`RETR`, `TOP`): status, then body chunks.
    Body(&'static str),
    /// A SASL exchange (`AUTH`): challenges until a status line.
    Sasl,
}

impl Due {
    fn expect(&self) -> Expect {
        match self {
            Self::Status(_) => Expect::SingleLine,
            Self::Listing { .. } => Expect::MultiLine(Body::Lines),
            Self::Body(_) => Expect::MultiLine(Body::Chunks),
            Self::Sasl => Expect::SaslContinuation,
        }
    }

    fn command(&self) -> &'static str {
        match self {
            Self::Status(command) | Self::Body(command) => command,
            Self::Listing { command, .. } => command,
            Self::Sasl => "AUTH",
        }
    }
}

/// One step of a reply. Byte ranges are offsets into the bytes the event was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pop3Event {
    /// A status line. For a single-line reply, an `-ERR`, or the end of a SASL exchange, the
    /// reply is complete; after `+OK` to a listing or a message, lines or chunks follow.
    Status(StatusLine<'static>),
    /// A SASL challenge: the base64 text after `+ `.
    Challenge(Range<usize>),
    /// One listing line, unstuffed, without CRLF (already counted against the limits).
    Line(Range<usize>),
    /// Unstuffed message bytes.
    Chunk(Range<usize>),
    /// The `.` line: the listing or message is complete.
    End,
}

/// Where the login stands (RFC 1939 AUTHORIZATION and TRANSACTION states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginState {
    /// Before login.
    Authorization,
    /// The one login attempt was made and failed.
    Failed,
    /// Logged in.
    Transaction,
}

/// The POP3 conversation after the greeting.
#[derive(Debug)]
pub(crate) struct Pop3Core {
    endpoint: Endpoint,
    decoder: Decoder,
    window: InOrder<Due>,
    outbox: Outbox,
    poison: Poison,
    login: LoginState,
    pipelining: bool,
    /// Pipelined `RETR`/`TOP` not sent yet: they go out as earlier replies complete.
    waiting: VecDeque<(Vec<u8>, &'static str)>,
    /// A retrieval ([`Pop3Core::start_bodies`]) held by the caller has replies unread: only
    /// the caller reading them may go on.
    retrieving: bool,
}

impl Pop3Core {
    /// A core taking over after the greeting and capabilities; `unread` bytes the server sent
    /// unasked before this point (a multi-line greeting, a desynchronised reply) make every
    /// command fail.
    pub(crate) fn new(endpoint: Endpoint, pipelining: bool, unread: usize) -> Self {
        let mut poison = Poison::default();
        if unread > 0 {
            // threat model #52
            poison.out_of_step(format!(
                "the server sent {unread} bytes nobody asked for before login"
            ));
        }
        Self {
            endpoint,
            decoder: Decoder::new(decoder_limits()),
            window: InOrder::new(1),
            outbox: Outbox::default(),
            poison,
            login: LoginState::Authorization,
            pipelining,
            waiting: VecDeque::new(),
            retrieving: false,
        }
    }

    /// The server.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Fuzzing: the decoder with smaller `limits`, so a fuzzer's short inputs reach the checks.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fuzz_limits(&mut self, limits: Limits) {
        self.decoder = Decoder::new(limits);
    }

    /// Fuzzing: whether the session is poisoned.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fuzz_poisoned(&self) -> bool {
        self.poison.is_poisoned()
    }

    /// Where the login stands.
    pub(crate) fn login_state(&self) -> LoginState {
        self.login
    }

    /// The login attempt was made: `succeeded` or not.
    pub(crate) fn logged_in(&mut self, succeeded: bool) {
        self.login = match (succeeded, self.login) {
            (true, _) => LoginState::Transaction,
            (false, LoginState::Authorization) => LoginState::Failed,
            (false, state) => state,
        };
    }

    /// Whether `RETR`/`TOP` may be pipelined (the server announced `PIPELINING`).
    pub(crate) fn set_pipelining(&mut self, pipelining: bool) {
        self.pipelining = pipelining;
    }

    /// How many replies are due.
    pub(crate) fn replies_due(&self) -> usize {
        self.window.len()
    }

    /// True when replies are due that no caller will read: their call was dropped. The session
    /// reads and discards them before the next command ([`Pop3Core::forget_unsent`] first).
    pub(crate) fn abandoned(&self) -> bool {
        !self.window.is_empty() && !self.retrieving
    }

    /// Drops the pipelined commands of an abandoned retrieval that were not sent yet: only
    /// the replies already due are read and discarded.
    pub(crate) fn forget_unsent(&mut self) {
        if !self.retrieving {
            self.waiting.clear();
        }
    }

    /// True in the middle of a reply: its status line was read, its lines or body were not
    /// all read.
    pub(crate) fn in_reply(&self) -> bool {
        self.decoder.is_in_body()
    }

    /// The session takes commands (not poisoned, no retrieval in the way, no write cut off).
    pub(crate) fn usable(&self) -> Result<(), Error> {
        if self.outbox.cut_off() {
            return Err(self.misuse(
                "the session cannot be used any more: a call was dropped while its command \
                 was being written, so the server may hold part of it",
            ));
        }
        self.poison.check(&self.endpoint)?;
        if self.retrieving {
            return Err(self.misuse(
                "pipelined RETR or TOP replies are still unread: read them with retrieve_next first",
            ));
        }
        Ok(())
    }

    /// Before a command that must be the only one in flight: [`Pop3Core::usable`], no reply
    /// due, and nothing `buffered` (a late second reply would be taken as the answer to the
    /// command about to go, threat model #52).
    pub(crate) fn may_start(&mut self, buffered: &[u8]) -> Result<(), Error> {
        self.usable()?;
        if !self.window.is_empty() {
            return Err(self.misuse("a reply is still due: read it before the next command"));
        }
        nothing_unsolicited(&mut self.poison, &self.endpoint, buffered)
    }

    /// Queues `command`, whose reply is `due`. Encoded first: a CR or LF in an argument sends
    /// nothing.
    pub(crate) fn command(&mut self, command: &Command, due: Due) -> Result<(), Error> {
        let bytes = command.encode()?;
        let redaction = match command {
            Command::Pass(_) => Redaction::Secret,
            _ => Redaction::Normal,
        };
        self.queue(bytes, redaction, Some(due))
    }

    /// Queues a line the caller encoded (a SASL response), as part of the reply already due
    /// (`due` None) or with its own.
    pub(crate) fn queue(
        &mut self,
        bytes: Vec<u8>,
        redaction: Redaction,
        due: Option<Due>,
    ) -> Result<(), Error> {
        self.poison.check(&self.endpoint)?;
        self.outbox.push(bytes, redaction);
        if let Some(due) = due {
            self.window.sent(due);
        }
        Ok(())
    }

    /// Starts pipelined `RETR` or `TOP` commands: up to [`PIPELINE_WINDOW`] go out at once
    /// with PIPELINING (one without), and one more as each reply completes. The caller reads
    /// one reply per command, in order. With `held` (a retrieval the caller holds between
    /// calls), no other command may go until the last reply; without, the replies of a call
    /// that was dropped count as abandoned.
    pub(crate) fn start_bodies(
        &mut self,
        name: &'static str,
        commands: impl Iterator<Item = Command>,
        held: bool,
    ) -> Result<usize, Error> {
        // Encode all first: an invalid number (0) sends nothing.
        let commands = commands
            .map(|c| c.encode())
            .collect::<Result<Vec<_>, EncodeError>>()?;
        let count = commands.len();
        self.window
            .set_limit(if self.pipelining { PIPELINE_WINDOW } else { 1 });
        self.waiting = commands.into_iter().map(|c| (c, name)).collect();
        self.retrieving = held && count > 0;
        self.send_waiting();
        Ok(count)
    }

    /// Moves waiting bodies' commands to the outbox while the window has room.
    fn send_waiting(&mut self) {
        while self.window.room() > 0 {
            let Some((bytes, name)) = self.waiting.pop_front() else {
                break;
            };
            self.outbox.push(bytes, Redaction::Normal);
            self.window.sent(Due::Body(name));
        }
    }

    /// A listing line was refused by the caller (`error`): the listing is left half read.
    pub(crate) fn listing_failed(&mut self, command: &str, error: DecodeError) -> Error {
        self.poison.out_of_step("a listing was left half read");
        self.bad_reply(command, error)
    }

    /// A sink failed in the middle of a reply: the rest of it is unread.
    pub(crate) fn sink_failed(&mut self, error: std::io::Error) -> Error {
        self.poison
            .out_of_step(format!("a reply was left half read: {error}"));
        Error::Io(error)
    }

    /// A SASL exchange ended without its reply read out (`reason`).
    pub(crate) fn abandon(&mut self, reason: &str) {
        self.poison
            .out_of_step(format!("authentication failed: {reason}"));
    }

    /// The reply read was not what `expected` says: out of step.
    pub(crate) fn desync(&mut self, expected: &str) -> Error {
        self.poison
            .desync(&self.endpoint, format!("expected {expected}"))
    }

    /// An answer that does not parse (`STAT`'s numbers, `LIST n`'s size).
    pub(crate) fn bad_reply(&self, command: &str, error: DecodeError) -> Error {
        Error::Protocol {
            host: self.endpoint.host.clone(),
            protocol: Protocol::Pop3,
            detail: format!("a malformed answer to {command}: {error}"),
        }
    }

    /// The server's `-ERR` to `command`: temporary or not, with its words.
    pub(crate) fn refused(&self, command: &str, status: &StatusLine<'_>) -> Error {
        let reply = server_reply(status);
        if is_temporary(status) {
            Error::Temporary {
                host: self.endpoint.host.clone(),
                command: command.to_owned(),
                reply,
            }
        } else {
            Error::Rejected {
                host: self.endpoint.host.clone(),
                command: command.to_owned(),
                reply,
            }
        }
    }

    /// A call the session's own rules forbid now (the caller's mistake, not the server's).
    pub(crate) fn misuse(&self, what: &str) -> Error {
        Error::Misuse {
            host: self.endpoint.host.clone(),
            protocol: Protocol::Pop3,
            what: what.to_owned(),
        }
    }

    /// The reply due is complete, `unread` bytes follow it: the next command of a retrieval
    /// may go, and bytes after the last reply due are a desync.
    fn complete(&mut self, unread: usize) -> Result<(), Error> {
        let answered = self.window.answered(unread);
        if answered.is_ok() {
            self.send_waiting();
        } else {
            // Out of step: the pipelined commands not sent yet never go.
            self.waiting.clear();
        }
        if self.window.is_empty() {
            self.retrieving = false;
        }
        match answered {
            Ok(_) => Ok(()),
            Err(_) => Err(self.desync("nothing (the server sent more than the reply)")),
        }
    }

    fn frame_error(&mut self, source: DecodeError) -> Error {
        self.poison
            .out_of_step("a reply could not be read: the stream cannot be framed");
        mailcat_transport::Error::Protocol {
            host: self.endpoint.host.clone(),
            protocol: Protocol::Pop3,
            step: Step::Response,
            source,
        }
        .into()
    }
}

impl Core for Pop3Core {
    type Event = Pop3Event;

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop(&self.poison)
    }

    fn transmitted(&mut self) {
        self.outbox.written();
    }

    fn handle_input(&mut self, input: &[u8]) -> Result<Progress<Pop3Event>, Error> {
        let Some(due) = self.window.due() else {
            return Err(self.desync("no reply (none is due)"));
        };
        let single_line = matches!(due, Due::Status(_) | Due::Sasl);
        if !self.decoder.is_in_body() {
            self.decoder.expect(due.expect());
        }
        let (consumed, event) = match Decode::decode(&mut self.decoder, input) {
            Decoded::Event { consumed, event } => (consumed, event),
            Decoded::Incomplete { .. } => return Ok(Progress::NeedInput),
            Decoded::Invalid(error) => return Err(self.frame_error(error)),
        };
        let unread = input.len() - consumed;
        let event = match event {
            Event::Status(status) => {
                let status = status.into_owned();
                if single_line || !status.is_ok() {
                    self.complete(unread)?;
                }
                Pop3Event::Status(status)
            }
            Event::Continuation(range) => Pop3Event::Challenge(range),
            Event::Line(range) => {
                let len = range.len();
                let Some(Due::Listing {
                    command,
                    limits,
                    lines,
                    bytes,
                }) = self.window.due_mut()
                else {
                    return Err(self.desync("a listing line only in a listing"));
                };
                *lines += 1;
                *bytes = bytes.saturating_add(len);
                // threat model #40
                if *lines > limits.lines || *bytes > limits.bytes {
                    let detail = format!(
                        "the answer to {} is longer than the limit of {} lines and {} KiB",
                        command,
                        limits.lines,
                        limits.bytes >> 10
                    );
                    self.poison.out_of_step("a listing was left half read");
                    return Err(Error::Protocol {
                        host: self.endpoint.host.clone(),
                        protocol: Protocol::Pop3,
                        detail,
                    });
                }
                Pop3Event::Line(range)
            }
            Event::BodyChunk(range) => Pop3Event::Chunk(range),
            Event::End => {
                self.complete(unread)?;
                Pop3Event::End
            }
        };
        Ok(Progress::Event { consumed, event })
    }

    fn handle_end(&mut self, unread: &[u8]) -> Error {
        let command = self.window.due().map(Due::command).unwrap_or("QUIT");
        self.poison
            .out_of_step(format!("the server closed the connection during {command}"));
        let detail = (!unread.is_empty()).then(|| {
            self.decoder
                .end_of_input(unread)
                .err()
                .unwrap_or(DecodeError::Truncated {
                    offset: 0,
                    inside: "a POP3 reply",
                })
        });
        mailcat_transport::Error::Closed {
            host: self.endpoint.host.clone(),
            step: Step::Response,
            detail,
        }
        .into()
    }

    fn handle_failure(&mut self, error: mailcat_transport::Error, doing: &str) -> Error {
        self.poison.out_of_step(doing);
        error.into()
    }
}

/// A status line as people read it: `[CODE] text`, escaped.
pub(crate) fn server_reply(status: &StatusLine<'_>) -> crate::Reply {
    crate::Pop3Reply::from_status(status).into()
}

/// `-ERR [IN-USE]`, `[LOGIN-DELAY]` and `[SYS/TEMP]` mean "later" (RFC 2449 §8, RFC 3206).
pub(crate) fn is_temporary(status: &StatusLine<'_>) -> bool {
    matches!(
        status.code.as_ref().map(|c| c.kind()),
        Some(ResponseCodeKind::InUse | ResponseCodeKind::LoginDelay | ResponseCodeKind::SysTemp)
    )
}

#[cfg(test)]
mod tests {
    //! Transcripts: bytes in, bytes out and events, no runtime.

    use super::*;
    use mailcat_transport::Security;

    /// An event as a test compares it, with its bytes copied out.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Status(bool, String),
        Challenge(Vec<u8>),
        Line(Vec<u8>),
        Chunk(Vec<u8>),
        End,
    }

    fn core(pipelining: bool) -> Pop3Core {
        let endpoint = Endpoint::new(Protocol::Pop3, "pop.test", Security::ImplicitTls);
        Pop3Core::new(endpoint, pipelining, 0)
    }

    /// Everything the core wants written, as the driver writes it.
    fn written(core: &mut Pop3Core) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(transmit) = core.poll_transmit() {
            out.extend_from_slice(&transmit.bytes);
        }
        core.transmitted();
        out
    }

    /// Feeds `input` as the driver does (all buffered bytes each time) until the core needs
    /// more or has no reply due; returns the events and the bytes left unused.
    fn feed(core: &mut Pop3Core, mut input: &[u8]) -> Result<(Vec<Seen>, usize), Error> {
        let mut seen = Vec::new();
        while core.replies_due() > 0 {
            match core.handle_input(input)? {
                Progress::NeedInput => break,
                Progress::Event { consumed, event } => {
                    let bytes = |r: Range<usize>| input[r].to_vec();
                    seen.push(match event {
                        Pop3Event::Status(s) => {
                            Seen::Status(s.is_ok(), String::from_utf8_lossy(&s.text).into())
                        }
                        Pop3Event::Challenge(r) => Seen::Challenge(bytes(r)),
                        Pop3Event::Line(r) => Seen::Line(bytes(r)),
                        Pop3Event::Chunk(r) => Seen::Chunk(bytes(r)),
                        Pop3Event::End => Seen::End,
                    });
                    input = &input[consumed..];
                }
            }
        }
        Ok((seen, input.len()))
    }

    fn ok(text: &str) -> Seen {
        Seen::Status(true, text.into())
    }

    #[test]
    fn a_single_line_command_is_written_and_its_reply_completes_it() {
        let mut core = core(false);
        core.may_start(b"").expect("idle");
        core.command(&Command::Stat, Due::Status("STAT"))
            .expect("queued");
        assert_eq!(written(&mut core), b"STAT\r\n");
        let (seen, left) = feed(&mut core, b"+OK 2 320\r\n").expect("a reply");
        assert_eq!((seen, left), (vec![ok("2 320")], 0));
        assert_eq!(core.replies_due(), 0);
        core.may_start(b"").expect("in step");
    }

    #[test]
    fn bytes_before_a_command_poison_and_nothing_more_is_written() {
        let mut core = core(false);
        let err = core
            .may_start(b"+OK planted answer\r\n")
            .expect_err("unsolicited");
        assert!(err.to_string().contains("planted answer"), "{err}");
        let later = core
            .command(&Command::Dele(1), Due::Status("DELE"))
            .expect_err("poisoned");
        assert!(
            later.to_string().contains("cannot be used any more"),
            "{later}"
        );
        assert!(
            written(&mut core).is_empty(),
            "nothing may be sent after a desync"
        );
    }

    #[test]
    fn a_second_reply_after_the_one_due_is_a_desync() {
        let mut core = core(false);
        core.command(&Command::Noop, Due::Status("NOOP"))
            .expect("queued");
        written(&mut core);
        let err = feed(&mut core, b"+OK\r\n+OK for the next command\r\n").expect_err("extra");
        assert!(err.to_string().contains("more than the reply"), "{err}");
        assert!(core.usable().is_err());
    }

    #[test]
    fn pipelined_bodies_keep_a_window_of_eight_and_refill_it_reply_by_reply() {
        let mut core = core(true);
        core.may_start(b"").expect("idle");
        let count = core
            .start_bodies("RETR", (1..=10).map(Command::Retr), true)
            .expect("started");
        assert_eq!(count, 10);
        let first: String = (1..=8).map(|n| format!("RETR {n}\r\n")).collect();
        assert_eq!(
            written(&mut core),
            first.as_bytes(),
            "one write for the window"
        );
        // Another command may not cut in while the replies are due.
        assert!(core.may_start(b"").is_err());
        let (seen, _) = feed(&mut core, b"+OK\r\nbody 1\r\n.\r\n").expect("reply 1");
        assert_eq!(
            seen,
            [ok(""), Seen::Chunk(b"body 1\r\n".to_vec()), Seen::End]
        );
        assert_eq!(
            written(&mut core),
            b"RETR 9\r\n",
            "the next one as a reply completes"
        );
        let (seen, _) = feed(&mut core, b"-ERR no such message\r\n").expect("reply 2");
        assert_eq!(seen, [Seen::Status(false, "no such message".into())]);
        assert_eq!(written(&mut core), b"RETR 10\r\n");
        assert!(written(&mut core).is_empty());
        assert_eq!(core.replies_due(), 8);
    }

    #[test]
    fn without_pipelining_one_body_command_is_in_flight() {
        let mut core = core(false);
        core.start_bodies(
            "TOP",
            (1..=3).map(|message| Command::Top { message, lines: 0 }),
            true,
        )
        .expect("started");
        assert_eq!(written(&mut core), b"TOP 1 0\r\n");
        feed(&mut core, b"+OK\r\nSubject: a\r\n.\r\n").expect("reply 1");
        assert_eq!(written(&mut core), b"TOP 2 0\r\n");
    }

    #[test]
    fn bytes_after_a_body_poison_and_the_next_pipelined_command_is_not_written() {
        // Found by the pop3_core fuzz target: the reply to RETR 1 completes with bytes after
        // it that nothing asked for. The session is out of step, so RETR 2 must not go out
        // (a later call would write it and read the planted bytes as its answer).
        let mut core = core(false);
        core.may_start(b"").expect("idle");
        let commands = [Command::Retr(1), Command::Retr(2)].into_iter();
        assert_eq!(
            core.start_bodies("RETR", commands, true).expect("queued"),
            2
        );
        assert_eq!(written(&mut core), b"RETR 1\r\n");
        let err = feed(&mut core, b"+OK\r\nbody\r\n.\r\n+OK planted\r\n").expect_err("desync");
        assert!(err.to_string().contains("expected nothing"), "{err}");
        assert_eq!(
            written(&mut core),
            b"",
            "a command written after the desync"
        );
        assert_eq!(core.replies_due(), 0);
        assert!(core.usable().is_err());
    }

    #[test]
    fn replies_split_at_every_byte_give_the_same_events() {
        let wire: &[u8] = b"+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n";
        let whole = {
            let mut core = core(false);
            core.command(
                &Command::List(None),
                Due::Listing {
                    command: "LIST",
                    limits: ListingLimits::LISTING,
                    lines: 0,
                    bytes: 0,
                },
            )
            .expect("queued");
            feed(&mut core, wire).expect("whole").0
        };
        assert_eq!(
            whole,
            [
                ok("2 messages"),
                Seen::Line(b"1 120".to_vec()),
                Seen::Line(b"2 200".to_vec()),
                Seen::End
            ]
        );
        for cut in 0..wire.len() {
            let mut core = core(false);
            core.command(
                &Command::List(None),
                Due::Listing {
                    command: "LIST",
                    limits: ListingLimits::LISTING,
                    lines: 0,
                    bytes: 0,
                },
            )
            .expect("queued");
            let (mut seen, left) = feed(&mut core, &wire[..cut]).expect("first part");
            let rest = [&wire[cut - left..cut], &wire[cut..]].concat();
            seen.extend(feed(&mut core, &rest).expect("second part").0);
            assert_eq!(seen, whole, "split at {cut}");
        }
    }

    #[test]
    fn a_listing_longer_than_stat_announced_stops_at_the_limit_and_poisons() {
        let mut core = core(false);
        let limits = ListingLimits::for_count(1);
        core.command(
            &Command::Uidl(None),
            Due::Listing {
                command: "UIDL",
                limits,
                lines: 0,
                bytes: 0,
            },
        )
        .expect("queued");
        let mut wire = b"+OK\r\n".to_vec();
        for n in 1..=limits.lines + 5 {
            wire.extend_from_slice(format!("{n} uid{n}\r\n").as_bytes());
        }
        let err = feed(&mut core, &wire).expect_err("over the limit");
        assert!(err.to_string().contains("1001 lines"), "{err}");
        assert!(core.usable().is_err());
    }

    #[test]
    fn a_large_listing_streams_line_by_line() {
        let mut core = core(false);
        core.command(
            &Command::Uidl(None),
            Due::Listing {
                command: "UIDL",
                limits: ListingLimits::for_count(100_000),
                lines: 0,
                bytes: 0,
            },
        )
        .expect("queued");
        let mut wire = b"+OK\r\n".to_vec();
        for n in 1..=100_000 {
            wire.extend_from_slice(format!("{n} {n:08x}\r\n").as_bytes());
        }
        wire.extend_from_slice(b".\r\n");
        let (seen, left) = feed(&mut core, &wire).expect("listing");
        assert_eq!(left, 0);
        assert_eq!(seen.len(), 100_002);
        assert_eq!(seen[100_000], Seen::Line(b"100000 000186a0".to_vec()));
    }

    #[test]
    fn replies_of_a_dropped_call_are_read_and_discarded_before_the_next_command() {
        let mut core = core(false);
        core.may_start(b"").expect("idle");
        core.command(&Command::Retr(1), Due::Body("RETR"))
            .expect("queued");
        written(&mut core);
        // The call was dropped here: its reply is due and no one reads it.
        assert!(core.abandoned());
        assert!(core.may_start(b"").is_err(), "not before the reply is read");
        let (seen, _) = feed(&mut core, b"+OK\r\nlate body\r\n.\r\n").expect("discarded");
        assert_eq!(seen.last(), Some(&Seen::End));
        assert!(!core.abandoned());
        core.may_start(b"").expect("in step again");
    }

    #[test]
    fn a_dropped_pipelined_retrieval_sends_nothing_more_and_its_due_replies_are_discarded() {
        let mut core = core(true);
        core.start_bodies("RETR", (1..=100).map(Command::Retr), false)
            .expect("started");
        assert_eq!(written(&mut core).len(), 8 * 8, "RETR 1 .. RETR 8");
        // The call that would read them was dropped.
        assert!(core.abandoned());
        core.forget_unsent();
        let replies: Vec<u8> = (1..=8)
            .flat_map(|n| format!("+OK\r\nmessage {n}\r\n.\r\n").into_bytes())
            .collect();
        feed(&mut core, &replies).expect("discarded");
        assert!(
            written(&mut core).is_empty(),
            "RETR 9 and on are never sent"
        );
        core.may_start(b"").expect("in step");
    }

    #[test]
    fn a_command_cut_off_while_written_makes_the_session_unusable() {
        let mut core = core(false);
        core.command(&Command::Dele(3), Due::Status("DELE"))
            .expect("queued");
        // The driver took the bytes, and its call was dropped before they were all written.
        assert!(core.poll_transmit().is_some());
        let err = core.usable().expect_err("cut off");
        assert!(err.to_string().contains("part of it"), "{err}");
    }

    #[test]
    fn a_server_that_closes_in_the_middle_of_a_message_poisons_with_what_was_cut() {
        let mut core = core(false);
        core.command(&Command::Retr(1), Due::Body("RETR"))
            .expect("queued");
        written(&mut core);
        let (_, left) = feed(&mut core, b"+OK\r\nhalf a mess").expect("part");
        let err = core.handle_end(&b"+OK\r\nhalf a mess"[..][15 - left..]);
        assert!(
            matches!(
                err,
                Error::Transport(mailcat_transport::Error::Closed {
                    detail: Some(_),
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(core.usable().is_err());
    }

    #[test]
    fn a_sasl_exchange_is_one_reply_with_challenges() {
        let mut core = core(false);
        core.queue(
            b"AUTH PLAIN\r\n".to_vec(),
            Redaction::Normal,
            Some(Due::Sasl),
        )
        .expect("queued");
        assert_eq!(written(&mut core), b"AUTH PLAIN\r\n");
        let (seen, _) = feed(&mut core, b"+ \r\n").expect("challenge");
        assert_eq!(seen, [Seen::Challenge(Vec::new())]);
        assert_eq!(core.replies_due(), 1, "the exchange goes on");
        core.queue(b"AGxvZ2luAHB3\r\n".to_vec(), Redaction::Secret, None)
            .expect("queued");
        let secret = core.poll_transmit().expect("queued");
        assert_eq!(secret.redaction, Redaction::Secret);
        core.transmitted();
        let (seen, _) = feed(&mut core, b"+OK logged in\r\n").expect("end");
        assert_eq!(seen, [ok("logged in")]);
        assert_eq!(core.replies_due(), 0);
    }
}
