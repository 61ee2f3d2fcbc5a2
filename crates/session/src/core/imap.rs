//! The IMAP conversation as a state machine with no I/O (RFC 3501, RFC 9051).
//!
//! IMAP answers by tag, not by position: every command gets a tag from the core's generator,
//! and its tagged completion may come after other commands' (pipelined fetches complete in any
//! order on Dovecot). So this core does not use [`super::InOrder`]: it keeps the commands in
//! flight by tag, and routes what the server sends.
//!
//! - **A tagged completion** must carry a tag in flight; any other tag poisons the session
//!   (threat model #41). A completion before a synchronising literal was sent is a refusal
//!   (NO, BAD) or a desync (OK: the literal's bytes would be read as a command).
//! - **Untagged data** goes to the command in flight that asked for it (a LIST line to LIST,
//!   EXISTS and FLAGS to SELECT ...), everything else to the unsolicited queue
//!   ([`ImapCore::take_unsolicited`]). BYE poisons the session as closed, with the server's
//!   words; CAPABILITY updates the capabilities; `[ALERT]` is shown through the alert sink.
//!   Untagged responses are counted against [`crate::imap::MAX_UNTAGGED_PER_COMMAND`] and
//!   [`crate::imap::MAX_UNTAGGED_BYTES_PER_COMMAND`].
//! - **Between commands** (nothing in flight) untagged data is taken in and recorded, never
//!   a desync: IMAP servers send news at any time. A tagged response or a `+` then is one.
//! - **Continuation requests** release the rest of a command after a synchronising literal
//!   (LOGIN, APPEND), start IDLE, or carry a SASL challenge to AUTHENTICATE.
//! - **Long SEARCH and ESEARCH lines** come in pieces, merged into the search's [`UidSet`]
//!   within its bound; **message bodies** come as byte ranges of the input, routed to the
//!   fetch they answer by UID (or sequence number), never by position, with at most the fetch
//!   window of `UID FETCH` commands in flight.
//!
//! # Cancellation
//!
//! The core changes only inside its own (synchronous) methods, so whatever call of the async
//! session is dropped, the core still knows which tags are due. [`ImapCore::abandon`] is what
//! the next command calls when it finds commands still in flight: a running IDLE gets its
//! `DONE`, the late answers are read and discarded (untagged news is kept), and a command that
//! cannot be finished (an AUTHENTICATE exchange, a literal waiting for `+`, a write cut short)
//! poisons the session instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;

use mailcat_codec::core::text::escape_bytes;
use mailcat_codec::imap::command::{self as cmd, Command, EncodeOptions, Fragment};
use mailcat_codec::imap::{
    Capability, Code, Data, ESearch, ESearchItem, Event, Fetch, FetchItem, NameAttribute, Response,
    ResponseDecoder, SectionData, SequenceSet, StatusKind, Tag, TagGenerator, UidSet,
};
use mailcat_codec::{Decode, Decoded, Limits};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, ImapReply, Reply, Step};

use super::{Core, Outbox, Poison, Progress, Transmit};
use crate::imap::{
    AppendUid, CopyUid, MailboxCounts, MailboxInfo, SelectedMailbox, Summary, Unsolicited,
    DEFAULT_FETCH_WINDOW, MAX_FLAGS_LINE, MAX_UNSOLICITED, MAX_UNTAGGED_BYTES_PER_COMMAND,
    MAX_UNTAGGED_PER_COMMAND,
};
use crate::{AlertSink, Error};

/// A tagged completion, typed as errors carry it: status, response code, escaped text.
pub(crate) type Tagged = ImapReply;

/// What a command is, as far as its answer goes: which untagged responses are its answer.
#[derive(Debug)]
pub(crate) enum Kind {
    /// Nothing untagged is its answer (NOOP, STORE, EXPUNGE, LOGIN ...).
    Plain,
    /// `* CAPABILITY`.
    Capability,
    /// `* ID`.
    Id,
    /// `* ENABLED`.
    Enable,
    /// `* LIST`.
    List,
    /// SELECT or EXAMINE: FLAGS, EXISTS, RECENT and the `* OK [...]` codes. Its lines may be
    /// long (every keyword of the mailbox): the line limit is raised while it is in flight.
    Open,
    /// `UID SEARCH`: `* SEARCH`.
    Search,
    /// `UID SEARCH` into a set, pieces of long lines included.
    SearchSet(SearchSink),
    /// `UID FETCH set (UID)`: FETCH with a UID and no flags (those are another client's news).
    Uids,
    /// The sequence numbers of these UIDs, before pipelined body fetches: each FETCH is folded
    /// into the map (sequence number → UID) as it comes, not kept (2,000 kept responses were
    /// 1.2 MB of peak heap).
    SeqMap(UidSet, HashMap<u32, u32>),
    /// Summaries of these UIDs: FETCH with one of them and a size.
    Summaries(UidSet),
    /// `UID MOVE`: the untagged `OK [COPYUID ...]`.
    Move,
    /// `STATUS`: `* STATUS`.
    Status,
    /// One whole-message `UID FETCH` of [`ImapCore::begin_bodies`], over a set of UIDs: the
    /// indices of the requests it covers.
    Bodies(Vec<usize>),
    /// IDLE.
    Idle,
    /// AUTHENTICATE: each `+` is a challenge.
    Authenticate,
    /// LOGOUT.
    Logout,
}

impl Kind {
    /// True if `response` (untagged) answers this command.
    fn keeps(&self, response: &Response<'static>) -> bool {
        match self {
            Self::Capability => matches!(response, Response::Data(Data::Capability(_))),
            Self::Id => matches!(response, Response::Data(Data::Id(_))),
            Self::Enable => matches!(response, Response::Data(Data::Enabled(_))),
            Self::List => matches!(response, Response::Data(Data::List(_))),
            Self::Open => match response {
                Response::Data(Data::Flags(_) | Data::Exists(_) | Data::Recent(_)) => true,
                Response::Status {
                    tag: None,
                    kind: StatusKind::Ok,
                    code: Some(code),
                    ..
                } => matches!(
                    code,
                    Code::UidValidity(_)
                        | Code::UidNext(_)
                        | Code::PermanentFlags(_)
                        | Code::Unseen(_)
                        | Code::HighestModSeq(_)
                ),
                _ => false,
            },
            Self::Search => matches!(response, Response::Data(Data::Search { .. })),
            Self::Status => matches!(response, Response::Data(Data::Status(_))),
            Self::SearchSet(_) => matches!(
                response,
                Response::Data(Data::Search { .. } | Data::ESearch(ESearch { uid: true, .. }))
            ),
            // The answer carries the UID only; a FETCH with flags is another client's change.
            Self::Uids => {
                matches!(response, Response::Data(Data::Fetch(f)) if f.uid().is_some() && f.flags().is_none())
            }
            Self::SeqMap(wanted, _) => {
                matches!(response, Response::Data(Data::Fetch(f)) if f.uid().is_some_and(|u| wanted.contains(u)))
            }
            // An answer carries the UID asked for and the size; a FETCH with flags only is
            // another client's change. Matched by a binary search over the ranges asked for:
            // a batch of 50,000 scattered UIDs stays linear.
            Self::Summaries(wanted) => match response {
                Response::Data(Data::Fetch(f)) => {
                    f.uid().is_some_and(|u| wanted.contains(u)) && f.rfc822_size().is_some()
                }
                _ => false,
            },
            Self::Move => matches!(
                response,
                Response::Status {
                    tag: None,
                    kind: StatusKind::Ok,
                    code: Some(Code::CopyUid { .. }),
                    ..
                }
            ),
            Self::Plain | Self::Bodies(_) | Self::Idle | Self::Authenticate | Self::Logout => false,
        }
    }
}

/// A command's answer: its untagged responses and its completion.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) tag: Tag<'static>,
    pub(crate) kind: Kind,
    pub(crate) kept: Vec<Response<'static>>,
    pub(crate) tagged: Tagged,
}

/// What one step of the server's bytes was, for the session.
#[derive(Debug)]
pub(crate) enum ImapEvent {
    /// Taken in by the core (news recorded, a literal released, a late answer discarded):
    /// nothing for the caller.
    Quiet,
    /// A SASL challenge (the `+` line's text, base64-decoded) for AUTHENTICATE.
    Challenge(Vec<u8>),
    /// The server accepted IDLE (`+`).
    IdleStarted,
    /// A command completed.
    Done(Done),
    /// Bytes of the body of request `index`: this range of the event's input.
    BodyChunk { index: usize, range: Range<usize> },
    /// The whole body of request `index`, sent inside its FETCH response.
    InlineBody { index: usize, bytes: Vec<u8> },
}

/// Where a command in flight is.
#[derive(Debug)]
enum Stage {
    /// Sent up to a synchronising literal; the rest waits for `+`.
    Literal {
        rest: VecDeque<Fragment>,
        literal: Redaction,
        text: Redaction,
        sensitive: bool,
    },
    /// Sent whole; its completion is due.
    Sent,
    /// IDLE sent, `+` due.
    IdleStarting,
    /// IDLE running: news comes until DONE.
    Idling,
    /// DONE sent: the completion is due.
    IdleDone,
    /// AUTHENTICATE: challenges and then the completion.
    Sasl,
}

#[derive(Debug)]
struct InFlight {
    tag: Tag<'static>,
    name: &'static str,
    kind: Kind,
    stage: Stage,
    kept: Vec<Response<'static>>,
    /// Its call was dropped: the answer is read and discarded (news kept).
    orphan: bool,
}

impl InFlight {
    /// An ID whose answer nobody waits for ([`ImapCore::start_unawaited`]).
    fn unawaited(&self) -> bool {
        self.orphan && matches!((&self.stage, &self.kind), (Stage::Sent, Kind::Id))
    }
}

/// Where the UIDs of a `UID SEARCH` answer go while it is read, and how many it may name.
#[derive(Debug)]
pub(crate) struct SearchSink {
    pub(crate) uids: UidSet,
    /// How many UIDs the answer named so far (a number sent twice counts twice, so a line that
    /// repeats itself forever is stopped too).
    named: u64,
    /// The mailbox's EXISTS when the search was sent.
    expected: u32,
}

impl SearchSink {
    pub(crate) fn new(expected: u32) -> Self {
        Self {
            uids: UidSet::new(),
            named: 0,
            expected,
        }
    }

    /// Adds `uids`, which the answer wrote as `named` numbers; refuses more than
    /// [`crate::imap::search_count_limit`] in all.
    fn add(&mut self, uids: &UidSet, named: u64) -> Result<(), String> {
        self.named = self.named.saturating_add(named);
        let most = crate::imap::search_count_limit(self.expected);
        if self.named > most {
            return Err(format!(
                "the answer to UID SEARCH names more than {most} messages, far more than the \
                 {} the mailbox holds: it is longer than the limit for this search",
                self.expected
            ));
        }
        self.uids.insert_set(uids);
        Ok(())
    }

    fn add_numbers(&mut self, numbers: Vec<u32>) -> Result<(), String> {
        let named = numbers.len() as u64;
        self.add(&numbers.into_iter().collect(), named)
    }

    /// `*`, which a UID search never answers (RFC 4731 §3.1), is taken as 0.
    fn add_set(&mut self, set: &SequenceSet) -> Result<(), String> {
        self.add(&UidSet::from_sequence_set(set, 0), set.count(0))
    }

    /// The set, with what the completed answer's responses add.
    pub(crate) fn finish(mut self, kept: Vec<Response<'static>>) -> Result<UidSet, String> {
        for r in kept {
            match r {
                Response::Data(Data::Search { numbers, .. }) => self.add_numbers(numbers)?,
                Response::Data(Data::ESearch(e)) => {
                    e.items.iter().try_for_each(|item| match item {
                        ESearchItem::All(set) => self.add_set(set),
                        _ => Ok(()),
                    })?;
                }
                _ => {}
            }
        }
        Ok(self.uids)
    }
}

/// Most messages one whole-message `UID FETCH` asks for. Its answer is one FETCH response per
/// message, counted against [`MAX_UNTAGGED_PER_COMMAND`]; a longer list of requests is cut
/// into several commands, pipelined within the fetch window.
pub(crate) const MAX_BODIES_PER_FETCH: usize = 1_000;

/// Most ranges in the set of one whole-message `UID FETCH`: scattered UIDs make a long command
/// line (`4294967290:4294967295,` is 22 bytes), and servers cap it (Dovecot at 64 KiB).
pub(crate) const MAX_RANGES_PER_FETCH: usize = 500;

/// The whole-message fetches of one [`ImapCore::begin_bodies`].
#[derive(Debug)]
struct Bodies {
    uids: Vec<u32>,
    index_of: HashMap<u32, usize>,
    /// Sequence number → UID, for routing streamed bodies when several are in flight.
    uid_of_seq: HashMap<u32, u32>,
    /// The requests' indices in UID order: the commands cover runs of it.
    order: Vec<usize>,
    /// Commands in flight (by tag): the requests each covers.
    pending: HashMap<String, Vec<usize>>,
    /// The next request to send, as a position in `order`.
    next: usize,
    lens: Vec<Option<u64>>,
    /// The message whose body is streaming now, and the bytes passed on so far.
    streaming: Option<(usize, u64)>,
    /// A streamed literal that is not a whole message asked for: read and dropped.
    discarding: bool,
    /// A streamed body that came before its message's sequence number was known and without
    /// the UID in front: read and dropped, its request fetched again ([`ImapCore::end_bodies`]).
    unrouted: bool,
    /// The requests whose bodies were dropped so, to be fetched again (a set: a server that
    /// drops every body of a long list must not make each check linear).
    again: HashSet<usize>,
}

/// The IMAP core of one connection.
#[derive(Debug)]
pub(crate) struct ImapCore {
    endpoint: Endpoint,
    decoder: ResponseDecoder,
    tags: TagGenerator,
    capabilities: Vec<Capability<'static>>,
    options: EncodeOptions,
    /// Capabilities learned after login (from a code or an untagged CAPABILITY).
    capabilities_fresh: bool,
    poison: Poison,
    outbox: Outbox,
    /// Commands sent whose completion is due, oldest first.
    in_flight: Vec<InFlight>,
    unsolicited: VecDeque<Unsolicited>,
    /// Untagged responses (count, bytes) read since the last command was sent.
    untagged_read: (usize, usize),
    alerts: Option<AlertSink>,
    fetch_window: usize,
    /// The server puts the UID first in its FETCH responses, so a streamed body can be routed
    /// by it (learned from the bodies seen).
    uid_leads: bool,
    bodies: Option<Bodies>,
    /// The last input ended inside an item.
    partial: bool,
}

impl ImapCore {
    pub(crate) fn new(
        endpoint: Endpoint,
        tags: TagGenerator,
        capabilities: Vec<Capability<'static>>,
    ) -> Self {
        let mut core = Self {
            endpoint,
            decoder: ResponseDecoder::new(Limits::imap()),
            tags,
            capabilities: Vec::new(),
            options: EncodeOptions::default(),
            capabilities_fresh: false,
            poison: Poison::default(),
            outbox: Outbox::default(),
            in_flight: Vec::new(),
            unsolicited: VecDeque::new(),
            untagged_read: (0, 0),
            alerts: None,
            fetch_window: DEFAULT_FETCH_WINDOW,
            uid_leads: false,
            bodies: None,
            partial: false,
        };
        core.set_capabilities(capabilities);
        core
    }

    // ----- state the session reads -----

    pub(crate) fn capabilities(&self) -> &[Capability<'static>] {
        &self.capabilities
    }

    pub(crate) fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c.is(name))
    }

    pub(crate) fn set_capabilities(&mut self, items: Vec<Capability<'static>>) {
        self.capabilities = items;
        self.options.literal_plus = self.has_capability("LITERAL+");
        self.options.literal_minus = self.has_capability("LITERAL-");
    }

    pub(crate) fn capabilities_fresh(&self) -> bool {
        self.capabilities_fresh
    }

    /// Only capabilities sent with or after the login's answer count as post-login ones.
    pub(crate) fn forget_fresh_capabilities(&mut self) {
        self.capabilities_fresh = false;
    }

    /// `UTF8=ACCEPT` was enabled: names go out in UTF-8.
    pub(crate) fn set_utf8_accept(&mut self, on: bool) {
        self.options.utf8_accept = on;
    }

    pub(crate) fn set_alert_sink(&mut self, sink: Option<AlertSink>) {
        self.alerts = sink;
    }

    pub(crate) fn alert_sink(&self) -> Option<&AlertSink> {
        self.alerts.as_ref()
    }

    pub(crate) fn set_fetch_window(&mut self, window: usize) {
        self.fetch_window = window.max(1);
    }

    pub(crate) fn uid_leads(&self) -> bool {
        self.uid_leads
    }

    /// The untagged responses no command asked for, oldest first.
    pub(crate) fn take_unsolicited(&mut self) -> Vec<Unsolicited> {
        self.unsolicited.drain(..).collect()
    }

    pub(crate) fn has_unsolicited(&self) -> bool {
        !self.unsolicited.is_empty()
    }

    /// Fails with [`Error::Closed`] once the server said BYE, and with [`Error::Protocol`] once
    /// the conversation is out of step.
    pub(crate) fn usable(&self) -> Result<(), Error> {
        self.poison.check(&self.endpoint)
    }

    /// Fuzzing: the decoder with smaller `limits`, so a fuzzer's short inputs reach the checks.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fuzz_limits(&mut self, limits: Limits) {
        self.decoder = ResponseDecoder::new(limits);
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poison.is_poisoned()
    }

    pub(crate) fn closed_by_server(&self) -> Option<&Reply> {
        self.poison.closed_by_server()
    }

    /// A protocol violation: the session refuses every further command (threat model #41).
    pub(crate) fn protocol(&mut self, detail: impl Into<String>) -> Error {
        self.poison.desync(&self.endpoint, detail)
    }

    /// Poisons the session with `why`, without an error for anyone (an abandoned SASL
    /// exchange).
    pub(crate) fn out_of_step(&mut self, why: &str) {
        self.poison.out_of_step(why);
    }

    /// True while commands are in flight.
    #[cfg(test)]
    pub(crate) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Commands are in flight whose answers must come before the next command is sent: all
    /// but an ID sent with [`ImapCore::start_unawaited`].
    pub(crate) fn has_awaited_in_flight(&self) -> bool {
        self.in_flight.iter().any(|c| !c.unawaited())
    }

    /// Starts `command` and never awaits its answer: it is read and dropped whenever it comes,
    /// and the next command is pipelined behind it. Only for ID (RFC 2971), whose answer
    /// changes nothing: waiting for it cost every login a round trip.
    pub(crate) fn start_unawaited(&mut self, command: &Command) -> Result<(), Error> {
        let tag = self.start(command, Kind::Id)?;
        if let Some(sent) = self.in_flight.iter_mut().find(|c| c.tag == tag) {
            sent.orphan = true;
        }
        Ok(())
    }

    // ----- commands -----

    /// Starts `command`: checks the session may take it, gives it a tag, encodes it and queues
    /// its bytes up to its first synchronising literal (the rest goes when the server's `+`
    /// comes). Returns the tag.
    pub(crate) fn start(&mut self, command: &Command, kind: Kind) -> Result<Tag<'static>, Error> {
        self.usable()?;
        if let Some(busy) = self.in_flight.iter().find(|c| {
            !c.unawaited()
                && (c.orphan
                    || !matches!(
                        (&c.stage, &c.kind),
                        (Stage::Sent, Kind::Bodies(_) | Kind::SeqMap(..))
                    ))
        }) {
            // The session finishes what a dropped call left first (`abandon`); only body
            // fetches (and the map that routes them) are pipelined, and anything behind an
            // unawaited ID.
            let detail = format!(
                "{} while {} {} is in progress",
                command.name(),
                busy.name,
                busy.tag.as_str()
            );
            return Err(self.protocol(detail));
        }
        let tag = self.tags.next_tag();
        let encoded = command.encode(&tag, &self.options)?;
        self.untagged_read = (0, 0);
        let sensitive = command.is_sensitive();
        let literal = if sensitive {
            Redaction::Secret
        } else {
            Redaction::Data
        };
        if matches!(kind, Kind::Open) {
            // FLAGS and PERMANENTFLAGS list every keyword ever used in the mailbox, on one line.
            self.decoder.set_max_line(MAX_FLAGS_LINE);
        }
        let stage = match kind {
            Kind::Idle => Stage::IdleStarting,
            Kind::Authenticate => Stage::Sasl,
            _ => Stage::Sent,
        };
        let mut entry = InFlight {
            tag: tag.clone(),
            name: command.name(),
            kind,
            stage: Stage::Literal {
                rest: encoded.into_fragments().into(),
                literal,
                text: Redaction::Normal,
                sensitive,
            },
            kept: Vec::new(),
            orphan: false,
        };
        if self.release(&mut entry) {
            entry.stage = stage;
        }
        self.in_flight.push(entry);
        Ok(tag)
    }

    /// Queues the fragments of `entry` up to its next synchronising literal (the literal
    /// itself was released by a `+`, or there is none); true when all of it is queued.
    fn release(&mut self, entry: &mut InFlight) -> bool {
        let Stage::Literal {
            rest,
            literal,
            text,
            sensitive,
        } = &mut entry.stage
        else {
            return true;
        };
        // Consecutive pieces that need no wait go out in one write.
        let mut out = Vec::new();
        let mut first = true;
        while let Some(fragment) = rest.pop_front() {
            match fragment {
                Fragment::Line(line) => out.extend_from_slice(&line),
                Fragment::Literal { data, sync } => {
                    if sync && !first {
                        rest.push_front(Fragment::Literal { data, sync });
                        push(&mut self.outbox, out, *text);
                        return false;
                    }
                    push(&mut self.outbox, std::mem::take(&mut out), *text);
                    push(&mut self.outbox, data, *literal);
                    // What follows a literal of a LOGIN (the password, or its literal's
                    // length) is as secret as the literal.
                    if *sensitive {
                        *text = Redaction::Secret;
                    }
                }
            }
            first = false;
        }
        push(&mut self.outbox, out, *text);
        true
    }

    /// A SASL response (or cancel) line for the AUTHENTICATE in flight.
    pub(crate) fn sasl_send(&mut self, line: Vec<u8>, redaction: Redaction) -> Result<(), Error> {
        self.usable()?;
        if !self
            .in_flight
            .iter()
            .any(|c| matches!(c.stage, Stage::Sasl) && !c.orphan)
        {
            return Err(self.protocol("a SASL step before AUTHENTICATE"));
        }
        self.outbox.push(line, redaction);
        Ok(())
    }

    /// Ends IDLE: queues DONE. The completion follows.
    pub(crate) fn idle_done(&mut self) {
        if let Some(idle) = self
            .in_flight
            .iter_mut()
            .find(|c| matches!(c.stage, Stage::Idling))
        {
            idle.stage = Stage::IdleDone;
            self.outbox
                .push(cmd::idle_done().to_vec(), Redaction::Normal);
        }
    }

    /// The calls that sent the commands in flight are gone (dropped, or returned early): their
    /// answers are read and discarded from now on, news kept. IDLE is ended. A command that
    /// cannot be finished poisons the session: a write cut short, a literal still waiting for
    /// the server's `+` (the caller gave it up), an AUTHENTICATE exchange (its state was the
    /// dropped call's). Returns the poison's error then.
    pub(crate) fn abandon(&mut self) -> Result<(), Error> {
        self.bodies = None;
        if self.outbox.cut_off() {
            return Err(self.protocol(
                "a command was only partly written when its call was dropped: the server may \
                 take what comes next as the rest of it",
            ));
        }
        let mut unfinishable = None;
        for command in &mut self.in_flight {
            command.orphan = true;
            match command.stage {
                Stage::Literal { .. } => {
                    unfinishable = Some(format!(
                        "{} {} was given up waiting for the server's `+` before its literal",
                        command.name,
                        command.tag.as_str()
                    ));
                }
                Stage::Sasl => {
                    unfinishable = Some(format!(
                        "the AUTHENTICATE exchange {} was given up in the middle",
                        command.tag.as_str()
                    ));
                }
                Stage::Idling => {
                    command.stage = Stage::IdleDone;
                    self.outbox
                        .push(cmd::idle_done().to_vec(), Redaction::Normal);
                }
                Stage::Sent | Stage::IdleStarting | Stage::IdleDone => {}
            }
        }
        match unfinishable {
            Some(why) => Err(self.protocol(why)),
            None => Ok(()),
        }
    }

    // ----- whole-message fetches -----

    /// Starts streaming the whole messages `uids` (distinct), with the map from sequence
    /// numbers to UIDs if one was fetched. [`ImapCore::send_bodies`] sends the commands.
    pub(crate) fn begin_bodies(&mut self, uids: Vec<u32>, uid_of_seq: HashMap<u32, u32>) {
        let index_of = uids.iter().enumerate().map(|(i, u)| (*u, i)).collect();
        let mut order: Vec<usize> = (0..uids.len()).collect();
        order.sort_unstable_by_key(|&i| uids[i]);
        self.bodies = Some(Bodies {
            lens: vec![None; uids.len()],
            uids,
            index_of,
            uid_of_seq,
            order,
            pending: HashMap::new(),
            next: 0,
            streaming: None,
            discarding: false,
            unrouted: false,
            again: HashSet::new(),
        });
    }

    /// Queues `UID FETCH uids (UID)` ahead of the body fetches [`ImapCore::send_bodies`] is
    /// about to pipeline: each answer goes into the routing map as it comes. A server that runs
    /// the commands one after the other (most do) answers every sequence number before the
    /// first body, so this costs no round trip of its own. One that runs them side by side may
    /// send a body before its number, and then routing needs the UID in front of the body: a
    /// body without either is dropped and its message fetched again ([`ImapCore::end_bodies`]).
    pub(crate) fn start_seq_map(&mut self, uids: &[u32]) -> Result<(), Error> {
        let (command, kind) = seq_map(uids)?;
        self.start(&command, kind).map(drop)
    }

    /// A sequence-number map is being fetched alongside the bodies.
    fn seq_map_in_flight(&self) -> bool {
        self.in_flight
            .iter()
            .any(|c| !c.orphan && matches!(c.kind, Kind::SeqMap(..)))
    }

    /// Queues fetches up to the window: each `UID FETCH` asks for the next run of the requested
    /// UIDs (in UID order, as ranges: `UID FETCH 1:500,502 (UID BODY.PEEK[])`), at most
    /// [`MAX_BODIES_PER_FETCH`] messages and [`MAX_RANGES_PER_FETCH`] ranges. A UID that does
    /// not exist gets no response. Returns false once every fetch completed.
    pub(crate) fn send_bodies(&mut self) -> Result<bool, Error> {
        loop {
            let Some(bodies) = &self.bodies else {
                return Ok(false);
            };
            if bodies.next >= bodies.order.len() || bodies.pending.len() >= self.fetch_window {
                return Ok(!bodies.pending.is_empty() || self.seq_map_in_flight());
            }
            let (covered, set) = next_run(bodies)?;
            let command = Command::UidFetch {
                set,
                items: vec![
                    cmd::FetchAttribute::Uid,
                    cmd::FetchAttribute::BodyPeek {
                        section: cmd::Section::full(),
                        partial: None,
                    },
                ],
                changed_since: None,
            };
            let tag = self.start(&command, Kind::Bodies(covered.clone()))?;
            if let Some(bodies) = &mut self.bodies {
                bodies.next += covered.len();
                bodies.pending.insert(tag.as_str().to_owned(), covered);
            }
        }
    }

    /// The length of each message fetched (`None`: no such UID, or one of the second list),
    /// and the requests whose bodies were dropped unrouted ([`ImapCore::start_seq_map`]), to be
    /// fetched again with the map learned first.
    pub(crate) fn end_bodies(&mut self) -> (Vec<Option<u64>>, Vec<usize>) {
        self.bodies
            .take()
            .map(|b| (b.lens, b.again.into_iter().collect()))
            .unwrap_or_default()
    }

    // ----- the server's bytes -----

    /// An untagged response or a search piece of `len` bytes, against the command's limits.
    fn count_untagged(&mut self, len: usize) -> Result<(), Error> {
        let (count, bytes) = &mut self.untagged_read;
        *count += 1;
        *bytes = bytes.saturating_add(len);
        let (count, bytes) = (*count, *bytes);
        // The limits on one command's answer: threat model #40.
        if count > MAX_UNTAGGED_PER_COMMAND {
            return Err(self.protocol(format!(
                "more than {MAX_UNTAGGED_PER_COMMAND} untagged responses to one command \
                 (the limit, MAX_UNTAGGED_PER_COMMAND)"
            )));
        }
        if bytes > MAX_UNTAGGED_BYTES_PER_COMMAND {
            return Err(self.protocol(format!(
                "more than {} MiB of untagged responses to one command (the limit, \
                 MAX_UNTAGGED_BYTES_PER_COMMAND)",
                MAX_UNTAGGED_BYTES_PER_COMMAND >> 20
            )));
        }
        Ok(())
    }

    /// What every untagged response tells the session itself: BYE, new capabilities.
    fn observe(&mut self, response: &Response<'static>) {
        match response {
            Response::Status {
                tag: None,
                kind: StatusKind::Bye,
                code,
                text,
            } => self
                .poison
                .closed(ImapReply::new(StatusKind::Bye, code.clone(), text)),
            Response::Data(Data::Capability(caps)) => {
                self.set_capabilities(caps.clone());
                self.capabilities_fresh = true;
            }
            _ => {}
        }
    }

    /// Keeps an untagged response for the caller. The queue holds at most
    /// [`MAX_UNSOLICITED`] entries: beyond, the oldest are dropped.
    fn record(&mut self, response: Response<'static>) {
        if let Some(event) = unsolicited(response) {
            if self.unsolicited.len() >= MAX_UNSOLICITED {
                self.unsolicited.pop_front();
            }
            self.unsolicited.push_back(event);
        }
    }

    /// Takes the capabilities from a `[CAPABILITY ...]` code, if there is one.
    fn note_capability_code(&mut self, tagged: &Tagged) {
        if let Some(Code::Capability(caps)) = &tagged.code {
            self.set_capabilities(caps.clone());
            self.capabilities_fresh = true;
        }
    }

    fn wrong_tag(&mut self, got: &[u8]) -> Error {
        if self.in_flight.is_empty() {
            return self.protocol(format!(
                "a response nothing asked for, between commands (tagged {:?})",
                escape_bytes(got)
            ));
        }
        let expected = self
            .in_flight
            .iter()
            .map(|c| c.tag.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        // threat model #41
        self.protocol(format!(
            "a response tagged {:?} where {expected:?} was due",
            escape_bytes(got)
        ))
    }

    fn tagged(&mut self, tag: Tag<'static>, tagged: Tagged) -> Result<ImapEvent, Error> {
        let Some(at) = self.in_flight.iter().position(|c| c.tag == tag) else {
            return Err(self.wrong_tag(tag.as_bytes()));
        };
        let command = &self.in_flight[at];
        match (&command.stage, tagged.status) {
            (Stage::Literal { .. }, StatusKind::No | StatusKind::Bad) => {}
            (Stage::Literal { .. }, kind) => {
                // threat model #41
                let detail = format!(
                    "{} {} before its literal was sent: the command was not complete",
                    command.name,
                    kind.as_str()
                );
                return Err(self.protocol(detail));
            }
            // The server ends IDLE only when DONE came.
            (Stage::Idling, _) => return Err(self.wrong_tag(tag.as_bytes())),
            (Stage::IdleStarting, StatusKind::Ok) if !command.orphan => {
                return Err(self.protocol("IDLE completed without a continuation"));
            }
            _ => {}
        }
        if let (Kind::Bodies(covered), Some(bodies)) = (&command.kind, &mut self.bodies) {
            if bodies.streaming.is_some_and(|(i, _)| covered.contains(&i)) {
                return Err(self.protocol("a FETCH completed inside its message body"));
            }
            bodies.pending.remove(tag.as_str());
        }
        let command = self.in_flight.remove(at);
        if matches!(command.kind, Kind::Open) {
            self.decoder.set_max_line(Limits::imap().max_line);
        }
        self.note_capability_code(&tagged);
        if command.orphan {
            return Ok(ImapEvent::Quiet);
        }
        Ok(ImapEvent::Done(Done {
            tag,
            kind: command.kind,
            kept: command.kept,
            tagged,
        }))
    }

    fn continuation(&mut self, text: &[u8]) -> Result<ImapEvent, Error> {
        let Some(at) = self.in_flight.iter().position(|c| {
            matches!(
                c.stage,
                Stage::Literal { .. } | Stage::IdleStarting | Stage::Idling | Stage::Sasl
            )
        }) else {
            let during = match self.in_flight.first() {
                Some(c) if matches!(c.stage, Stage::IdleDone) => "after DONE".to_owned(),
                Some(c) => format!("during {}", c.name),
                None => "between commands".to_owned(),
            };
            return Err(self.protocol(format!("a continuation request {during}")));
        };
        if self.poison.is_poisoned() {
            // The server ended the session (BYE): a `+` now asks for nothing that may go — not
            // the rest of a command (a password maybe), not an IDLE's DONE, not a SASL answer.
            return Ok(ImapEvent::Quiet);
        }
        let mut command = self.in_flight.remove(at);
        let event = match command.stage {
            Stage::Literal { .. } => {
                if self.release(&mut command) {
                    command.stage = match command.kind {
                        Kind::Idle => Stage::IdleStarting,
                        Kind::Authenticate => Stage::Sasl,
                        _ => Stage::Sent,
                    };
                }
                ImapEvent::Quiet
            }
            Stage::IdleStarting if command.orphan => {
                command.stage = Stage::IdleDone;
                self.outbox
                    .push(cmd::idle_done().to_vec(), Redaction::Normal);
                ImapEvent::Quiet
            }
            Stage::IdleStarting => {
                command.stage = Stage::Idling;
                ImapEvent::IdleStarted
            }
            Stage::Sasl => {
                // A challenge is base64 (RFC 3501 §7.5); a few servers put text there for an
                // empty challenge.
                use base64::Engine;
                ImapEvent::Challenge(
                    base64::engine::general_purpose::STANDARD
                        .decode(text.trim_ascii())
                        .unwrap_or_default(),
                )
            }
            // Servers may say `+ idling` again; nothing to do.
            _ => ImapEvent::Quiet,
        };
        self.in_flight.insert(at, command);
        Ok(event)
    }

    /// Shows an `[ALERT]` (tagged or untagged, during any command) as it arrives.
    fn show_alert(&self, response: &Response<'static>) {
        if let (
            Response::Status {
                code: Some(Code::Alert),
                text,
                ..
            },
            Some(sink),
        ) = (response, &self.alerts)
        {
            sink.alert(&self.endpoint.host, &escape_bytes(text));
        }
    }

    fn untagged(&mut self, response: Response<'static>) -> Result<ImapEvent, Error> {
        self.observe(&response);
        if let Response::Data(Data::Fetch(f)) = response {
            if self.bodies.is_some() {
                return self.body_response(f);
            }
            if self
                .in_flight
                .iter()
                .all(|c| c.orphan && matches!(c.kind, Kind::Bodies(_)))
                && !self.in_flight.is_empty()
                && whole_body(&f).is_some()
            {
                // The late answer of a dropped fetch: its body was the caller's, now gone.
                return Ok(ImapEvent::Quiet);
            }
            return Ok(self.route(Response::Data(Data::Fetch(f))));
        }
        Ok(self.route(response))
    }

    /// An untagged response: the answer of the command that asked for it, or news.
    fn route(&mut self, response: Response<'static>) -> ImapEvent {
        let owner = self.in_flight.iter_mut().find(|c| {
            !c.orphan && c.kind.keeps(&response) && !answers_another_command(&response, &c.tag)
        });
        match owner {
            Some(command) => match (&mut command.kind, response) {
                (Kind::SeqMap(_, map), Response::Data(Data::Fetch(f))) => {
                    let uid = f.uid().unwrap_or_default();
                    match &mut self.bodies {
                        Some(bodies) => bodies.uid_of_seq.insert(f.seq, uid),
                        None => map.insert(f.seq, uid),
                    };
                }
                (_, response) => command.kept.push(response),
            },
            None => self.record(response),
        }
        ImapEvent::Quiet
    }

    fn search_piece(&mut self, piece: SearchPiece) -> Result<ImapEvent, Error> {
        let Some(command) = self
            .in_flight
            .iter_mut()
            .find(|c| matches!(c.kind, Kind::SearchSet(_)))
        else {
            let name = match piece {
                SearchPiece::Numbers(_) => "SEARCH",
                SearchPiece::Ranges { .. } => "ESEARCH",
            };
            let detail = format!(
                "a {name} response line longer than the limit of {} bytes",
                self.decoder.limits().max_line
            );
            return Err(self.protocol(detail));
        };
        let Kind::SearchSet(sink) = &mut command.kind else {
            unreachable!("found by kind")
        };
        let added = match piece {
            SearchPiece::Numbers(numbers) => sink.add_numbers(numbers),
            SearchPiece::Ranges {
                tag: Some(other), ..
            } if other != command.tag.as_bytes() => Err(format!(
                "an ESEARCH response for another command (TAG \"{}\") during UID SEARCH {}",
                escape_bytes(&other),
                command.tag.as_str()
            )),
            SearchPiece::Ranges { uid: false, .. } => Err(
                "an ESEARCH response with message numbers (no UID indicator) to UID SEARCH"
                    .to_owned(),
            ),
            SearchPiece::Ranges { set, .. } => sink.add_set(&set),
        };
        added
            .map(|()| ImapEvent::Quiet)
            .map_err(|detail| self.protocol(detail))
    }

    fn body_start(&mut self, whole: bool, seq: u32, uid: Option<u32>) -> Result<ImapEvent, Error> {
        let Some(bodies) = &mut self.bodies else {
            // A body nobody asked for (an unsolicited FETCH with a large literal): dropped.
            return Ok(ImapEvent::Quiet);
        };
        if !whole || bodies.streaming.is_some() {
            bodies.discarding = true;
            return Ok(ImapEvent::Quiet);
        }
        let index = if let Some(only) = bodies.only() {
            Some(only)
        } else {
            uid.or_else(|| bodies.uid_of_seq.get(&seq).copied())
                .and_then(|uid| bodies.index_of.get(&uid))
                .copied()
        };
        let Some(index) = index else {
            if uid.is_none() && self.seq_map_in_flight() {
                // Its number is not known yet: dropped, fetched again once it is.
                if let Some(bodies) = &mut self.bodies {
                    (bodies.discarding, bodies.unrouted) = (true, true);
                }
                return Ok(ImapEvent::Quiet);
            }
            return Err(self.protocol(format!(
                "a message body for sequence number {seq}, which was not asked for"
            )));
        };
        if bodies.lens[index].is_some() || bodies.again.contains(&index) {
            let uid = bodies.uids[index];
            return Err(self.protocol(format!("a second body for UID {uid}")));
        }
        bodies.streaming = Some((index, 0));
        Ok(ImapEvent::Quiet)
    }

    fn body_chunk(&mut self, range: Range<usize>) -> ImapEvent {
        match &mut self.bodies {
            Some(Bodies {
                streaming: Some((index, written)),
                discarding: false,
                ..
            }) => {
                *written += range.len() as u64;
                ImapEvent::BodyChunk {
                    index: *index,
                    range,
                }
            }
            _ => ImapEvent::Quiet,
        }
    }

    fn body_end(&mut self) -> ImapEvent {
        if let Some(bodies) = &mut self.bodies {
            bodies.discarding = false;
        }
        ImapEvent::Quiet
    }

    /// A FETCH response while whole messages are fetched: the response of a body (a streamed
    /// one's follows its body), or news.
    fn body_response(&mut self, f: Fetch<'static>) -> Result<ImapEvent, Error> {
        let Some(body) = whole_body(&f) else {
            // A sequence-number map's answer, or news.
            return Ok(self.route(Response::Data(Data::Fetch(f))));
        };
        let Some(bodies) = &mut self.bodies else {
            return Ok(ImapEvent::Quiet);
        };
        if std::mem::take(&mut bodies.unrouted) {
            // The dropped body's response names its message: fetched again later.
            self.uid_leads = false;
            let Some(uid) = f.uid() else {
                return Err(self.protocol(
                    "a message body with no UID in its UID FETCH answer (RFC 3501 §6.4.8), \
                     sent before its sequence number was known: it cannot be routed",
                ));
            };
            let index = bodies.index_of.get(&uid).copied();
            let (Some(index), SectionData::Streamed { .. }) = (index, &body) else {
                return Err(self.protocol(format!(
                    "a message body for UID {uid}, which was not asked for"
                )));
            };
            if bodies.lens[index].is_some() || !bodies.again.insert(index) {
                let uid = bodies.uids[index];
                return Err(self.protocol(format!("a second body for UID {uid}")));
            }
            return Ok(ImapEvent::Quiet);
        }
        // Every body's response tells whether the server puts the UID first, for the next
        // call; one that stops doing so gets the sequence-number map again from then on.
        self.uid_leads = matches!(f.items.first(), Some(FetchItem::Uid(_)));
        let uid = f.uid().or_else(|| bodies.uid_of_seq.get(&f.seq).copied());
        let only = bodies.only();
        let index = match (&body, uid.and_then(|u| bodies.index_of.get(&u).copied())) {
            (SectionData::Streamed { .. }, _) if only.is_some() => bodies.streaming.map(|(i, _)| i),
            (_, Some(index)) => Some(index),
            (_, None) => only,
        };
        let Some(index) = index else {
            return Err(self.protocol(format!(
                "a message body for UID {}, which was not asked for",
                uid.unwrap_or_default()
            )));
        };
        let streaming = bodies.streaming.take();
        let event = match body {
            SectionData::Streamed { len } => {
                if streaming != Some((index, len)) {
                    let uid = bodies.uids[index];
                    return Err(self.protocol(format!(
                        "the streamed body of UID {uid} does not match its response"
                    )));
                }
                bodies.lens[index] = Some(len);
                ImapEvent::Quiet
            }
            SectionData::Inline(bytes) => {
                if bodies.lens[index].is_some() || streaming.is_some() {
                    let uid = bodies.uids[index];
                    return Err(self.protocol(format!("a second body for UID {uid}")));
                }
                bodies.lens[index] = Some(bytes.len() as u64);
                ImapEvent::InlineBody {
                    index,
                    bytes: bytes.into_owned(),
                }
            }
            SectionData::Nil => ImapEvent::Quiet,
        };
        Ok(event)
    }

    /// The error for a decoder's refusal: the bytes do not follow IMAP.
    fn invalid(&mut self, source: mailcat_codec::DecodeError) -> Error {
        self.poison.out_of_step(format!(
            "the server sent an invalid IMAP response: {source}"
        ));
        Error::Transport(mailcat_transport::Error::Protocol {
            host: self.endpoint.host.clone(),
            protocol: self.endpoint.protocol,
            step: Step::Response,
            source,
        })
    }
}

impl Bodies {
    /// The one request in flight, when a single command for a single message is: its body
    /// needs no UID to be routed.
    fn only(&self) -> Option<usize> {
        match self.pending.values().next() {
            Some(covered) if self.pending.len() == 1 && covered.len() == 1 => Some(covered[0]),
            _ => None,
        }
    }
}

/// `UID FETCH uids (UID)`, the command that maps the sequence numbers of `uids` to them, and
/// its kind.
pub(crate) fn seq_map(uids: &[u32]) -> Result<(Command, Kind), Error> {
    let command = Command::UidFetch {
        set: SequenceSet::from_numbers(uids.iter().copied())?,
        items: vec![cmd::FetchAttribute::Uid],
        changed_since: None,
    };
    let wanted = uids.iter().copied().collect();
    Ok((command, Kind::SeqMap(wanted, HashMap::new())))
}

/// The next run of requests for one `UID FETCH`, from `bodies.next` on in UID order, and its
/// set: at most [`MAX_BODIES_PER_FETCH`] messages in [`MAX_RANGES_PER_FETCH`] ranges.
fn next_run(bodies: &Bodies) -> Result<(Vec<usize>, SequenceSet), Error> {
    let mut covered = Vec::new();
    let mut ranges = 0;
    let mut last: Option<u32> = None;
    for &index in &bodies.order[bodies.next..] {
        let uid = bodies.uids[index];
        let extends = last.is_some_and(|l| l.checked_add(1) == Some(uid));
        if !extends {
            if ranges == MAX_RANGES_PER_FETCH {
                break;
            }
            ranges += 1;
        }
        covered.push(index);
        last = Some(uid);
        if covered.len() == MAX_BODIES_PER_FETCH {
            break;
        }
    }
    let set = SequenceSet::from_numbers(covered.iter().map(|&i| bodies.uids[i]))?;
    Ok((covered, set))
}

/// Queues `bytes` unless empty.
fn push(outbox: &mut Outbox, bytes: Vec<u8>, redaction: Redaction) {
    if !bytes.is_empty() {
        outbox.push(bytes, redaction);
    }
}

/// The whole-message section of a FETCH response, if it has one.
fn whole_body(f: &Fetch<'static>) -> Option<SectionData<'static>> {
    f.sections()
        .find(|(s, origin, _)| s.part.is_empty() && s.text.is_none() && origin.is_none())
        .map(|(_, _, d)| d.clone())
}

/// A piece of a `* SEARCH` or `* ESEARCH` line too long to hold whole.
enum SearchPiece {
    Numbers(Vec<u32>),
    Ranges {
        tag: Option<Vec<u8>>,
        uid: bool,
        set: SequenceSet,
    },
}

/// One decoded item, owned, with the decoder's borrow released.
enum Item {
    Response(Response<'static>),
    BodyStart {
        whole: bool,
        seq: u32,
        uid: Option<u32>,
    },
    Chunk(Range<usize>),
    BodyEnd,
    SearchPiece(SearchPiece),
}

impl Core for ImapCore {
    type Event = ImapEvent;

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop(&self.poison)
    }

    fn transmitted(&mut self) {
        self.outbox.written();
    }

    fn handle_input(&mut self, input: &[u8]) -> Result<Progress<ImapEvent>, Error> {
        let bare_lf_lines = self.decoder.bare_lf_lines();
        let (consumed, item) = match Decode::decode(&mut self.decoder, input) {
            Decoded::Event { consumed, event } => (
                consumed,
                match event {
                    Event::Response(r) => Item::Response(r.into_owned()),
                    Event::BodyStart {
                        seq,
                        uid,
                        section,
                        origin,
                        ..
                    } => Item::BodyStart {
                        seq,
                        uid,
                        whole: section.part.is_empty()
                            && section.text.is_none()
                            && origin.is_none(),
                    },
                    Event::BodyChunk(range) => Item::Chunk(range),
                    Event::BodyEnd => Item::BodyEnd,
                    Event::SearchNumbers(numbers) => {
                        Item::SearchPiece(SearchPiece::Numbers(numbers))
                    }
                    Event::ESearchRanges { tag, uid, set } => {
                        Item::SearchPiece(SearchPiece::Ranges {
                            tag: tag.map(<[u8]>::to_vec),
                            uid,
                            set,
                        })
                    }
                },
            ),
            Decoded::Incomplete { .. } => {
                self.partial = !input.is_empty() || self.decoder.is_streaming();
                return Ok(Progress::NeedInput);
            }
            Decoded::Invalid(source) => return Err(self.invalid(source)),
        };
        self.partial = self.decoder.is_streaming();
        if self.decoder.bare_lf_lines() != bare_lf_lines {
            tracing::debug!(
                target: mailcat_transport::trace::TARGET,
                "S: (that line ended with a bare LF, not CRLF: accepted, as it is one line \
                 without a literal or an open quoted string)"
            );
        }
        if let Item::Response(response) = &item {
            self.show_alert(response);
        }
        let event = match item {
            Item::Response(Response::Status {
                tag: Some(tag),
                kind,
                code,
                text,
            }) => self.tagged(tag, ImapReply::new(kind, code, &text))?,
            Item::Response(Response::Continuation { text, .. }) => {
                self.count_untagged(consumed)?;
                self.continuation(&text)?
            }
            Item::Response(response) => {
                self.count_untagged(consumed)?;
                let event = self.untagged(response)?;
                if let ImapEvent::InlineBody { bytes, .. } = &event {
                    // A body passed on to its sink is not held: like a streamed one, it does
                    // not count against the bytes of untagged responses (its response does).
                    self.untagged_read.1 = self.untagged_read.1.saturating_sub(bytes.len());
                }
                event
            }
            Item::SearchPiece(piece) => {
                self.count_untagged(consumed)?;
                self.search_piece(piece)?
            }
            Item::BodyStart { whole, seq, uid } => self.body_start(whole, seq, uid)?,
            Item::Chunk(range) => self.body_chunk(range),
            Item::BodyEnd => self.body_end(),
        };
        Ok(Progress::Event { consumed, event })
    }

    fn handle_end(&mut self, unread: &[u8]) -> Error {
        let detail = Decode::end_of_input(&self.decoder, unread).err();
        if let Some(words) = self.poison.closed_by_server() {
            return Error::Closed {
                host: self.endpoint.host.clone(),
                reply: words.clone(),
            };
        }
        let error = mailcat_transport::Error::Closed {
            host: self.endpoint.host.clone(),
            step: Step::Response,
            detail,
        };
        self.poison.out_of_step(error.to_string());
        Error::Transport(error)
    }

    fn handle_failure(&mut self, error: mailcat_transport::Error, doing: &str) -> Error {
        // Silence longer than the read timeout is what IDLE is for: nothing is out of step.
        let idling = self
            .in_flight
            .iter()
            .any(|c| matches!(c.stage, Stage::Idling) && !c.orphan);
        if idling && !self.partial && matches!(error, mailcat_transport::Error::Timeout { .. }) {
            return Error::Transport(error);
        }
        if let (Some(words), mailcat_transport::Error::Closed { .. }) =
            (self.poison.closed_by_server(), &error)
        {
            return Error::Closed {
                host: self.endpoint.host.clone(),
                reply: words.clone(),
            };
        }
        self.poison.out_of_step(format!("{doing}: {error}"));
        Error::Transport(error)
    }
}

// ----- what the answers mean -----

/// True for an ESEARCH response whose correlator (`(TAG "…")`, RFC 4466's search-correlator)
/// names another command than the one tagged `tag`: whatever it says, it is not that command's
/// answer.
fn answers_another_command(response: &Response<'_>, tag: &Tag<'_>) -> bool {
    matches!(
        response,
        Response::Data(Data::ESearch(ESearch { tag: Some(t), .. })) if t.as_ref() != tag.as_bytes()
    )
}

/// `[UNAVAILABLE]` and `[INUSE]` (RFC 5530) say "try again later".
pub(crate) fn temporary(code: Option<&Code<'_>>) -> bool {
    matches!(code, Some(Code::Unavailable | Code::InUse))
}

/// OK passes; NO with `[UNAVAILABLE]`/`[INUSE]` is temporary; other NO and BAD are
/// refusals.
pub(crate) fn expect_ok(
    endpoint: &Endpoint,
    command: &str,
    tagged: Tagged,
) -> Result<Tagged, Error> {
    let host = endpoint.host.clone();
    match tagged.status {
        StatusKind::Ok => Ok(tagged),
        StatusKind::No if temporary(tagged.code.as_ref()) => Err(Error::Temporary {
            host,
            command: command.to_owned(),
            reply: tagged.into(),
        }),
        _ => Err(Error::Rejected {
            host,
            command: command.to_owned(),
            reply: tagged.into(),
        }),
    }
}

pub(crate) fn copy_uid(code: Option<Code<'static>>) -> Option<CopyUid> {
    match code {
        Some(Code::CopyUid {
            uid_validity,
            source,
            target,
        }) => Some(CopyUid {
            uid_validity,
            source,
            target,
        }),
        _ => None,
    }
}

/// The STATUS items [`mailbox_counts`] reads.
pub(crate) const COUNTS: [cmd::StatusItem; 4] = [
    cmd::StatusItem::Messages,
    cmd::StatusItem::Unseen,
    cmd::StatusItem::UidNext,
    cmd::StatusItem::UidValidity,
];

/// `APPEND mailbox [(flags)] [date] {n}` with the message as its literal: non-synchronising
/// when the server has LITERAL+ (or LITERAL- and at most 4 KiB), else sent when the server's
/// `+` comes ([`ImapCore::start`] holds it back).
pub(crate) fn append(
    mailbox: &cmd::Mailbox,
    message: &[u8],
    flags: &[mailcat_codec::imap::Flag<'static>],
    internal_date: Option<&cmd::DateTime>,
) -> Command {
    Command::Append {
        mailbox: mailbox.clone(),
        flags: flags.to_vec(),
        date: internal_date.copied(),
        message: message.to_vec(),
    }
}

/// The `[APPENDUID uidvalidity uid]` of an APPEND's completion (UIDPLUS, RFC 4315 §3), if
/// it has one naming one message. A UIDVALIDITY of 0 is none (threat model #43).
pub(crate) fn appended(tagged: &Tagged) -> Option<AppendUid> {
    match &tagged.code {
        Some(Code::AppendUid { uid_validity, uids }) if *uid_validity != 0 => {
            let mut all = uids.iter(0);
            match (all.next(), all.next()) {
                (Some(uid), None) if uid != 0 => Some(AppendUid {
                    uid_validity: *uid_validity,
                    uid,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The counts of a STATUS answer for `mailbox` (INBOX in any case). Errs with what is
/// missing: an answer for another mailbox, or without MESSAGES or UNSEEN.
pub(crate) fn mailbox_counts(
    kept: Vec<Response<'static>>,
    mailbox: &cmd::Mailbox,
) -> Result<MailboxCounts, String> {
    let wanted = mailbox.as_str();
    let is_wanted = |name: &str| {
        name == wanted
            || (name.eq_ignore_ascii_case("INBOX") && wanted.eq_ignore_ascii_case("INBOX"))
    };
    let status = kept
        .into_iter()
        .find_map(|r| match r {
            Response::Data(Data::Status(s)) if is_wanted(&s.mailbox.display()) => Some(s),
            _ => None,
        })
        .ok_or_else(|| format!("no STATUS response for mailbox {wanted:?}"))?;
    let (mut messages, mut unseen) = (None, None);
    let mut counts = MailboxCounts::default();
    for item in status.items {
        match item {
            mailcat_codec::imap::StatusItem::Messages(n) => messages = Some(n),
            mailcat_codec::imap::StatusItem::Unseen(n) => unseen = Some(n),
            mailcat_codec::imap::StatusItem::UidNext(n) => counts.uid_next = Some(n),
            // 0 is no UIDVALIDITY at all (threat model #43).
            mailcat_codec::imap::StatusItem::UidValidity(n) => {
                counts.uid_validity = (n != 0).then_some(n);
            }
            _ => {}
        }
    }
    counts.messages = messages.ok_or("a STATUS response without MESSAGES")?;
    counts.unseen = unseen.ok_or("a STATUS response without UNSEEN")?;
    Ok(counts)
}

/// The mailbox LIST marks with the special use `role` (RFC 6154), the first if several; or
/// else the selectable one named `fallback` (case-insensitively, as servers without
/// SPECIAL-USE name them), if given.
pub(crate) fn special_use(
    mailboxes: Vec<MailboxInfo>,
    role: &NameAttribute<'static>,
    fallback: Option<&str>,
) -> Option<MailboxInfo> {
    let by_role = mailboxes
        .iter()
        .position(|m| m.attributes.contains(role) && m.is_selectable());
    let at = by_role.or_else(|| {
        let name = fallback?;
        mailboxes
            .iter()
            .position(|m| m.name.eq_ignore_ascii_case(name) && m.is_selectable())
    })?;
    mailboxes.into_iter().nth(at)
}

/// The capabilities an answer to CAPABILITY lists.
pub(crate) fn capabilities(kept: Vec<Response<'static>>) -> Vec<Capability<'static>> {
    let mut items = Vec::new();
    for r in kept {
        if let Response::Data(Data::Capability(caps)) = r {
            items.extend(caps);
        }
    }
    items
}

/// True if an answer to `ENABLE UTF8=ACCEPT` enabled it.
pub(crate) fn utf8_enabled(done: &Done) -> bool {
    done.tagged.status == StatusKind::Ok
        && done.kept.iter().any(|r| {
            matches!(r, Response::Data(Data::Enabled(caps)) if caps.iter().any(|c| c.is("UTF8=ACCEPT")))
        })
}

/// The mailboxes of a LIST answer.
pub(crate) fn mailboxes(kept: Vec<Response<'static>>) -> Vec<MailboxInfo> {
    kept.into_iter()
        .filter_map(|r| match r {
            Response::Data(Data::List(l)) => Some(MailboxInfo {
                name: l.mailbox.display().into_owned(),
                raw: l.mailbox.raw.to_vec(),
                delimiter: l.delimiter.map(char::from),
                attributes: l.attributes,
            }),
            _ => None,
        })
        .collect()
}

/// The state a SELECT or EXAMINE answer reports.
pub(crate) fn mailbox_state(kept: Vec<Response<'static>>, tagged: &Tagged) -> SelectedMailbox {
    let mut state = SelectedMailbox {
        read_only: matches!(tagged.code, Some(Code::ReadOnly)),
        ..SelectedMailbox::default()
    };
    for r in kept {
        match r {
            Response::Data(Data::Flags(f)) => state.flags = f,
            Response::Data(Data::Exists(n)) => state.exists = n,
            Response::Data(Data::Recent(n)) => state.recent = Some(n),
            Response::Status { code: Some(c), .. } => match c {
                // RFC 3501 §2.3.1.1: a non-zero number. 0 is no UIDVALIDITY at all, never a
                // value to key UIDs by (threat model #43).
                Code::UidValidity(n) => state.uid_validity = (n != 0).then_some(n),
                Code::UidNext(n) => state.uid_next = Some(n),
                Code::PermanentFlags(f) => state.permanent_flags = f,
                Code::Unseen(n) => state.first_unseen = Some(n),
                Code::HighestModSeq(n) => state.highest_modseq = Some(n),
                _ => {}
            },
            _ => {}
        }
    }
    state
}

/// The numbers of a `* SEARCH` answer, in the order sent.
pub(crate) fn search_numbers(kept: Vec<Response<'static>>) -> Vec<u32> {
    kept.into_iter()
        .flat_map(|r| match r {
            Response::Data(Data::Search { numbers, .. }) => numbers,
            _ => Vec::new(),
        })
        .collect()
}

/// The UIDs of FETCH responses, in the order sent.
pub(crate) fn fetched_uids(kept: Vec<Response<'static>>) -> Vec<u32> {
    kept.into_iter()
        .filter_map(|r| match r {
            Response::Data(Data::Fetch(f)) => f.uid(),
            _ => None,
        })
        .collect()
}

/// The COPYUID of a MOVE answer (untagged, or in the completion).
pub(crate) fn moved(done: Done) -> Option<CopyUid> {
    let code = done
        .kept
        .into_iter()
        .find_map(|r| match r {
            Response::Status { code, .. } => code,
            _ => None,
        })
        .or(done.tagged.code);
    copy_uid(code)
}

/// The summaries of a FETCH answer.
pub(crate) fn summaries(kept: Vec<Response<'static>>) -> Vec<Summary> {
    kept.into_iter()
        .filter_map(|r| match r {
            Response::Data(Data::Fetch(f)) => Some(summary(f)),
            _ => None,
        })
        .collect()
}

fn summary(f: Fetch<'static>) -> Summary {
    let headers = f
        .sections()
        .find(|(s, _, _)| {
            matches!(
                s.text,
                Some(mailcat_codec::imap::SectionText::HeaderFields(_))
            )
        })
        .and_then(|(_, _, d)| d.bytes().map(<[u8]>::to_vec));
    Summary {
        uid: f.uid().unwrap_or_default(),
        seq: f.seq,
        flags: f.flags().map(<[_]>::to_vec).unwrap_or_default(),
        size: f.rfc822_size(),
        internal_date: f
            .internal_date()
            .map(|d| String::from_utf8_lossy(d).into_owned()),
        envelope: f.envelope().cloned(),
        headers,
    }
}

/// The caller's view of an untagged response; `None` for what the session consumed itself
/// (capabilities) and plain `* OK` chatter.
fn unsolicited(response: Response<'static>) -> Option<Unsolicited> {
    Some(match response {
        Response::Data(Data::Exists(n)) => Unsolicited::Exists(n),
        Response::Data(Data::Recent(n)) => Unsolicited::Recent(n),
        Response::Data(Data::Expunge(n)) => Unsolicited::Expunge(n),
        Response::Data(Data::Vanished { earlier, uids }) => Unsolicited::Vanished { earlier, uids },
        Response::Data(Data::Fetch(f)) => Unsolicited::Fetch {
            seq: f.seq,
            uid: f.uid(),
            flags: f.flags().map(<[_]>::to_vec),
        },
        Response::Data(Data::Flags(flags)) => Unsolicited::Flags(flags),
        // An unawaited ID's answer ([`ImapCore::start_unawaited`]) is no news either.
        Response::Data(Data::Capability(_) | Data::Id(_)) => return None,
        Response::Status {
            tag: None,
            kind: StatusKind::Bye,
            text,
            ..
        } => Unsolicited::Bye(escape_bytes(&text)),
        Response::Status {
            code: Some(Code::Alert),
            text,
            ..
        } => Unsolicited::Alert(escape_bytes(&text)),
        Response::Status {
            tag: None,
            kind: StatusKind::Ok,
            code: None,
            ..
        } => return None,
        other => Unsolicited::Other(other),
    })
}

#[cfg(test)]
mod tests {
    //! Byte transcripts: bytes in, bytes out, events; no runtime.
    use super::*;
    use mailcat_transport::{Protocol, Security};

    fn core(capabilities: &[&str]) -> ImapCore {
        ImapCore::new(
            Endpoint::new(Protocol::Imap, "mail.test", Security::ImplicitTls),
            TagGenerator::new(),
            capabilities
                .iter()
                .map(|c| Capability(c.as_bytes().to_vec().into()))
                .collect(),
        )
    }

    /// Everything queued, as the driver writes it (and then says it was written).
    fn sent(core: &mut ImapCore) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(t) = core.poll_transmit() {
            out.extend_from_slice(&t.bytes);
        }
        core.transmitted();
        out
    }

    /// What the core made of `bytes`, fed in pieces of `split` bytes: each event with the
    /// bytes it was decoded from.
    fn feed(
        core: &mut ImapCore,
        bytes: &[u8],
        split: usize,
    ) -> Result<Vec<(ImapEvent, Vec<u8>)>, Error> {
        let mut events = Vec::new();
        let mut buffered: Vec<u8> = Vec::new();
        for piece in bytes.chunks(split.max(1)) {
            buffered.extend_from_slice(piece);
            while let Progress::Event { consumed, event } = core.handle_input(&buffered)? {
                events.push((event, buffered.drain(..consumed).collect()));
            }
        }
        assert!(buffered.is_empty(), "left undecoded: {buffered:?}");
        Ok(events)
    }

    fn feed_all(core: &mut ImapCore, bytes: &[u8]) -> Result<Vec<ImapEvent>, Error> {
        Ok(feed(core, bytes, usize::MAX)?
            .into_iter()
            .map(|(e, _)| e)
            .collect())
    }

    fn done(events: Vec<ImapEvent>) -> Vec<Done> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ImapEvent::Done(done) => Some(done),
                _ => None,
            })
            .collect()
    }

    fn protocol_detail(error: &Error) -> &str {
        match error {
            Error::Protocol { detail, .. } => detail,
            other => panic!("not a protocol error: {other:?}"),
        }
    }

    #[test]
    fn completions_match_their_tag_and_a_wrong_tag_poisons() {
        let mut core = core(&[]);
        let tag = core.start(&Command::Noop, Kind::Plain).expect("start");
        assert_eq!(sent(&mut core), b"A0001 NOOP\r\n");
        let answer = done(feed_all(&mut core, b"A0001 OK NOOP done\r\n").expect("ok"));
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0].tag, tag);
        assert_eq!(answer[0].tagged.status, StatusKind::Ok);
        assert!(!core.has_in_flight());

        core.start(&Command::Noop, Kind::Plain).expect("start");
        assert_eq!(sent(&mut core), b"A0002 NOOP\r\n");
        let err = feed_all(&mut core, b"A0009 OK planted\r\n").expect_err("wrong tag");
        assert!(protocol_detail(&err).contains("\"A0002\""), "{err}");
        assert!(core.is_poisoned());
        assert!(core.start(&Command::Noop, Kind::Plain).is_err());
        assert!(sent(&mut core).is_empty(), "nothing is sent once poisoned");
    }

    #[test]
    fn untagged_data_between_commands_is_news_not_a_desync() {
        let mut core = core(&[]);
        let events = feed_all(
            &mut core,
            b"* 3 EXISTS\r\n* OK [ALERT] maintenance\r\n* OK hi\r\n",
        )
        .expect("taken in");
        assert!(events.iter().all(|e| matches!(e, ImapEvent::Quiet)));
        assert!(!core.is_poisoned());
        assert_eq!(
            core.take_unsolicited(),
            [
                Unsolicited::Exists(3),
                Unsolicited::Alert("maintenance".into())
            ]
        );
        // A command's answer goes to it; the rest stays news.
        core.start(&Command::Noop, Kind::List).expect("start");
        sent(&mut core);
        let answer = done(
            feed_all(
                &mut core,
                b"* LIST () \"/\" INBOX\r\n* 4 EXISTS\r\nA0001 OK\r\n",
            )
            .expect("answer"),
        );
        assert_eq!(
            mailboxes(answer.into_iter().next().expect("done").kept).len(),
            1
        );
        assert_eq!(core.take_unsolicited(), [Unsolicited::Exists(4)]);
        // But a tagged response (or a `+`) with nothing in flight answers nothing.
        let err = feed_all(&mut core, b"A0002 OK early\r\n").expect_err("unasked");
        assert!(protocol_detail(&err).contains("between commands"), "{err}");
        assert!(core.is_poisoned());
    }

    #[test]
    fn alerts_tagged_or_not_are_shown_as_they_arrive() {
        let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let mut core = core(&[]);
        let into = shown.clone();
        core.set_alert_sink(Some(AlertSink::new(move |_, text| {
            into.lock().expect("lock").push(text.to_owned());
        })));
        core.start(&Command::Noop, Kind::Plain).expect("start");
        sent(&mut core);
        feed_all(
            &mut core,
            b"* OK [ALERT] one\x1b[2J\r\nA0001 OK [ALERT] two\r\n",
        )
        .expect("ok");
        assert_eq!(*shown.lock().expect("lock"), ["one\\x1b[2J", "two"]);
    }

    #[test]
    fn bye_in_the_middle_of_a_command_closes_with_the_servers_words() {
        let mut core = core(&[]);
        core.start(&Command::Noop, Kind::Plain).expect("start");
        sent(&mut core);
        feed_all(&mut core, b"* BYE going down\r\n").expect("taken in");
        assert_eq!(
            core.closed_by_server().map(ToString::to_string).as_deref(),
            Some("going down")
        );
        match core.handle_end(b"") {
            Error::Closed { reply, .. } => assert_eq!(reply.to_string(), "going down"),
            other => panic!("{other:?}"),
        }
        mailcat_tests::assert_matches!(core.usable(), Err(Error::Closed { reply, .. }) if reply.imap_status() == Some(StatusKind::Bye) && reply.to_string() == "going down");
        assert!(core.start(&Command::Noop, Kind::Plain).is_err());
    }

    #[test]
    fn a_long_esearch_answer_comes_in_pieces_into_the_set() {
        let mut core = core(&["ESEARCH"]);
        let key = cmd::SearchKey::All;
        core.start(
            &Command::UidSearchReturnAll(key.clone()),
            Kind::SearchSet(SearchSink::new(100_000)),
        )
        .expect("start");
        assert!(sent(&mut core).ends_with(b"RETURN (ALL) ALL\r\n"));
        // 100,000 scattered UIDs: a line of ~700 KB, past the 64 KiB line limit.
        let uids: Vec<u32> = (0..100_000).map(|i| 1 + i * 3).collect();
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let answer = format!("* ESEARCH (TAG \"A0001\") UID ALL {set}\r\nA0001 OK done\r\n");
        assert!(answer.len() > 4 * Limits::imap().max_line);
        let events = feed(&mut core, answer.as_bytes(), 10_000).expect("read in pieces");
        assert!(events.len() > 4, "pieces: {}", events.len());
        let done = done(events.into_iter().map(|(e, _)| e).collect())
            .pop()
            .expect("done");
        let Kind::SearchSet(sink) = done.kind else {
            panic!("kind")
        };
        let got = sink.finish(done.kept).expect("within the bound");
        assert_eq!(got.len(), 100_000);
        assert!(got.contains(1) && got.contains(299_998) && !got.contains(2));

        // The same answer to a mailbox announced 100 times smaller is refused.
        let mut small = self::core(&["ESEARCH"]);
        small
            .start(
                &Command::UidSearchReturnAll(key),
                Kind::SearchSet(SearchSink::new(0)),
            )
            .expect("start");
        let many: String = (0..150_000).map(|i| format!("{},", 1 + i * 2)).collect();
        let answer = format!("* ESEARCH (TAG \"A0001\") UID ALL {many}1\r\nA0001 OK\r\n");
        let Err(err) = feed(&mut small, answer.as_bytes(), 100_000) else {
            panic!("too many UIDs were taken");
        };
        assert!(
            protocol_detail(&err).contains("names more than 100000"),
            "{err}"
        );
        assert!(small.is_poisoned());
    }

    #[test]
    fn a_body_literal_split_across_inputs_comes_as_ranges_of_them() {
        let mut core = core(&[]);
        core.begin_bodies(vec![7], HashMap::new());
        assert!(core.send_bodies().expect("sent"));
        assert_eq!(sent(&mut core), b"A0001 UID FETCH 7 (UID BODY.PEEK[])\r\n");
        let body: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut reply = format!("* 1 FETCH (UID 7 BODY[] {{{}}}\r\n", body.len()).into_bytes();
        reply.extend_from_slice(&body);
        reply.extend_from_slice(b")\r\nA0001 OK done\r\n");
        let mut got = Vec::new();
        let mut completed = false;
        for (event, bytes) in feed(&mut core, &reply, 7_001).expect("streamed") {
            match event {
                ImapEvent::BodyChunk { index: 0, range } => got.extend_from_slice(&bytes[range]),
                ImapEvent::Done(Done {
                    kind: Kind::Bodies(_),
                    ..
                }) => completed = true,
                ImapEvent::Quiet => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(completed);
        assert!(got == body, "byte exact");
        assert!(!core.send_bodies().expect("nothing left"));
        assert_eq!(core.end_bodies(), (vec![Some(body.len() as u64)], vec![]));

        // A small body comes inside its response.
        core.begin_bodies(vec![8], HashMap::new());
        core.send_bodies().expect("sent");
        sent(&mut core);
        let events = feed_all(
            &mut core,
            b"* 2 FETCH (UID 8 BODY[] {5}\r\nhello)\r\nA0002 OK\r\n",
        )
        .expect("inline");
        mailcat_tests::assert_matches!(&events[0], ImapEvent::InlineBody { index: 0, bytes } if bytes == b"hello");
    }

    #[test]
    fn bodies_are_asked_for_by_uid_ranges_cut_into_commands_within_the_window() {
        let mut core = core(&[]);
        core.set_fetch_window(2);
        // 2,100 contiguous UIDs (asked for in reverse), then 600 scattered ones.
        let mut uids: Vec<u32> = (1..=2_100).rev().collect();
        uids.extend((0..600).map(|i| 5_000 + 2 * i));
        core.begin_bodies(uids.clone(), HashMap::new());
        assert!(core.send_bodies().expect("sent"));
        // Two commands (the window) of 1,000 messages each, in UID order.
        assert_eq!(
            sent(&mut core),
            b"A0001 UID FETCH 1:1000 (UID BODY.PEEK[])\r\n\
              A0002 UID FETCH 1001:2000 (UID BODY.PEEK[])\r\n"
        );
        // Answers in any order: each body goes to its request; a UID without a response gets
        // none. The first command's completion lets the third go.
        let events = feed_all(
            &mut core,
            b"* 1500 FETCH (UID 1500 BODY[] {2}\r\nhi)\r\n\
              * 7 FETCH (UID 7 BODY[] {3}\r\nbye)\r\nA0001 OK\r\n",
        )
        .expect("routed");
        let index = |uid: u32| uids.iter().position(|&u| u == uid).expect("asked for");
        mailcat_tests::assert_matches!(&events[0], ImapEvent::InlineBody { index: i, bytes } if *i == index(1500) && bytes == b"hi");
        mailcat_tests::assert_matches!(&events[1], ImapEvent::InlineBody { index: i, bytes } if *i == index(7) && bytes == b"bye");
        mailcat_tests::assert_matches!(&events[2], ImapEvent::Done(Done { kind: Kind::Bodies(c), .. }) if c.len() == 1_000);
        assert!(core.send_bodies().expect("sent"));
        // The rest of the contiguous run and the first scattered UIDs, up to 500 ranges.
        let third = String::from_utf8(sent(&mut core)).expect("ascii");
        assert!(
            third.starts_with("A0003 UID FETCH 2001:2100,5000,5002,"),
            "{third}"
        );
        assert_eq!(third.matches(',').count(), 499, "{third}");
        feed_all(&mut core, b"A0002 OK\r\n").expect("done");
        assert!(core.send_bodies().expect("sent"));
        let fourth = String::from_utf8(sent(&mut core)).expect("ascii");
        assert!(fourth.starts_with("A0004 UID FETCH 5998,6000,"), "{fourth}");
        feed_all(&mut core, b"A0003 OK\r\nA0004 OK\r\n").expect("done");
        assert!(!core.send_bodies().expect("all done"));
        let (lens, again) = core.end_bodies();
        assert!(again.is_empty());
        assert_eq!(lens.iter().filter(|l| l.is_some()).count(), 2);
        assert_eq!((lens[index(1500)], lens[index(7)]), (Some(2), Some(3)));
    }

    #[test]
    fn a_streamed_body_with_its_uid_after_it_is_routed_by_its_sequence_number() {
        let mut core = core(&[]);
        core.begin_bodies(vec![12, 11], HashMap::from([(1, 11), (2, 12)]));
        core.send_bodies().expect("sent");
        assert_eq!(
            sent(&mut core),
            b"A0001 UID FETCH 11:12 (UID BODY.PEEK[])\r\n"
        );
        let big = vec![b'x'; 70_000];
        let mut reply = b"* 1 FETCH (BODY[] {70000}\r\n".to_vec();
        reply.extend_from_slice(&big);
        reply.extend_from_slice(b" UID 11)\r\nA0001 OK\r\n");
        let mut got = 0;
        for (event, _) in feed(&mut core, &reply, 8_192).expect("routed") {
            match event {
                ImapEvent::BodyChunk { index: 1, range } => got += range.len(),
                ImapEvent::BodyChunk { index, .. } => panic!("to request {index}"),
                _ => {}
            }
        }
        assert_eq!(got, 70_000);
        assert_eq!(core.end_bodies(), (vec![None, Some(70_000)], vec![]));
        assert!(!core.uid_leads());

        // Without the map, a body of a range that names no UID before it cannot be routed.
        core.begin_bodies(vec![12, 11], HashMap::new());
        core.send_bodies().expect("sent");
        sent(&mut core);
        let err = feed_all(&mut core, &reply).expect_err("unroutable");
        assert!(protocol_detail(&err).contains("not asked for"), "{err}");
    }

    #[test]
    fn a_literal_waits_for_the_continuation_and_a_completion_instead_is_refusal_or_desync() {
        let append = Command::Append {
            mailbox: cmd::Mailbox::inbox(),
            flags: Vec::new(),
            date: None,
            message: b"hello".to_vec(),
        };
        let mut core = core(&[]);
        core.start(&append, Kind::Plain).expect("start");
        assert_eq!(sent(&mut core), b"A0001 APPEND INBOX {5}\r\n");
        let events = feed_all(&mut core, b"+ go ahead\r\n").expect("continued");
        mailcat_tests::assert_matches!(events[..], [ImapEvent::Quiet]);
        assert_eq!(sent(&mut core), b"hello\r\n");
        assert_eq!(
            done(feed_all(&mut core, b"A0001 OK APPEND done\r\n").expect("ok")).len(),
            1
        );

        // NO instead of `+`: the command is refused, its literal never sent.
        core.start(&append, Kind::Plain).expect("start");
        sent(&mut core);
        let refused = done(feed_all(&mut core, b"A0002 NO [OVERQUOTA] full\r\n").expect("no"));
        assert_eq!(refused[0].tagged.status, StatusKind::No);
        assert!(sent(&mut core).is_empty());
        assert!(!core.is_poisoned());

        // OK instead of `+`: the literal would be read as a command of its own.
        core.start(&append, Kind::Plain).expect("start");
        sent(&mut core);
        let err = feed_all(&mut core, b"A0003 OK\r\n").expect_err("desync");
        assert!(
            protocol_detail(&err).contains("before its literal"),
            "{err}"
        );
        assert!(sent(&mut core).is_empty());
        assert!(core.is_poisoned());
    }

    #[test]
    fn idle_starts_on_the_continuation_keeps_news_and_ends_with_done() {
        let mut core = core(&["IDLE"]);
        let tag = core.start(&Command::Idle, Kind::Idle).expect("start");
        assert_eq!(sent(&mut core), b"A0001 IDLE\r\n");
        let events = feed_all(&mut core, b"+ idling\r\n").expect("started");
        mailcat_tests::assert_matches!(events[..], [ImapEvent::IdleStarted]);
        feed_all(&mut core, b"* 4 EXISTS\r\n* OK Still here\r\n").expect("news");
        assert!(core.has_unsolicited());
        core.idle_done();
        assert_eq!(sent(&mut core), b"DONE\r\n");
        let answer =
            done(feed_all(&mut core, b"* 1 EXPUNGE\r\nA0001 OK IDLE done\r\n").expect("ok"));
        assert_eq!(answer[0].tag, tag);
        assert_eq!(
            core.take_unsolicited(),
            [Unsolicited::Exists(4), Unsolicited::Expunge(1)]
        );
        // The server may not end IDLE before DONE.
        core.start(&Command::Idle, Kind::Idle).expect("start");
        feed_all(&mut core, b"+ idling\r\n").expect("started");
        let err = feed_all(&mut core, b"A0002 OK\r\n").expect_err("early");
        assert!(protocol_detail(&err).contains("was due"), "{err}");
    }

    #[test]
    fn sasl_challenges_are_passed_on_and_responses_go_out() {
        let mut core = core(&[]);
        let auth = Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: None,
        };
        core.start(&auth, Kind::Authenticate).expect("start");
        assert_eq!(sent(&mut core), b"A0001 AUTHENTICATE PLAIN\r\n");
        let events = feed_all(&mut core, b"+ aGk=\r\n").expect("challenge");
        mailcat_tests::assert_matches!(&events[..], [ImapEvent::Challenge(c)] if c == b"hi");
        core.sasl_send(cmd::sasl_response(b"x"), Redaction::Secret)
            .expect("respond");
        let out = core.poll_transmit().expect("queued");
        assert_eq!(
            (out.bytes.as_slice(), out.redaction),
            (&b"eA==\r\n"[..], Redaction::Secret)
        );
        assert_eq!(
            done(feed_all(&mut core, b"A0001 OK\r\n").expect("ok")).len(),
            1
        );
    }

    #[test]
    fn untagged_responses_to_one_command_are_limited() {
        let mut core = core(&[]);
        core.start(&Command::Noop, Kind::List).expect("start");
        sent(&mut core);
        let line = b"* LIST () \"/\" x\r\n";
        for _ in 0..MAX_UNTAGGED_PER_COMMAND {
            core.handle_input(line).expect("within the limit");
        }
        let err = core.handle_input(line).expect_err("one too many");
        assert!(
            protocol_detail(&err).contains("MAX_UNTAGGED_PER_COMMAND"),
            "{err}"
        );
        assert!(core.is_poisoned());
        // The count starts again with each command.
        let mut core = self::core(&[]);
        for _ in 0..2 {
            core.start(&Command::Noop, Kind::Plain).expect("start");
            sent(&mut core);
            for _ in 0..MAX_UNTAGGED_PER_COMMAND / 2 + 1 {
                core.handle_input(b"* OK hi\r\n").expect("within the limit");
            }
            let tag = format!(
                "A000{} OK\r\n",
                if core.in_flight[0].tag.as_str() == "A0001" {
                    1
                } else {
                    2
                }
            );
            feed_all(&mut core, tag.as_bytes()).expect("completed");
        }
    }

    #[test]
    fn a_dropped_command_is_read_to_its_end_and_discarded_with_news_kept() {
        let mut core = core(&["IDLE"]);
        core.start(&Command::Noop, Kind::Plain).expect("start");
        sent(&mut core);
        // The call is dropped before the answer; the next command finds it in flight.
        core.abandon().expect("can be finished");
        let events = feed_all(&mut core, b"* 2 EXPUNGE\r\nA0001 OK\r\n").expect("late answer");
        assert!(
            events.iter().all(|e| matches!(e, ImapEvent::Quiet)),
            "discarded"
        );
        assert!(!core.has_in_flight());
        assert_eq!(core.take_unsolicited(), [Unsolicited::Expunge(2)]);
        core.start(&Command::Noop, Kind::Plain).expect("in step");
        sent(&mut core);
        feed_all(&mut core, b"A0002 OK\r\n").expect("ok");

        // A dropped IDLE gets its DONE; what came meanwhile stays news.
        core.start(&Command::Idle, Kind::Idle).expect("start");
        sent(&mut core);
        feed_all(&mut core, b"+ idling\r\n* 9 EXISTS\r\n").expect("started");
        assert!(
            core.start(&Command::Noop, Kind::Plain).is_err(),
            "IDLE is in the way"
        );
        let mut core = {
            // (that refusal poisoned; replay on a fresh core)
            let mut core = self::core(&["IDLE"]);
            core.start(&Command::Idle, Kind::Idle).expect("start");
            sent(&mut core);
            feed_all(&mut core, b"+ idling\r\n* 9 EXISTS\r\n").expect("started");
            core
        };
        core.abandon().expect("ends IDLE");
        assert_eq!(sent(&mut core), b"DONE\r\n");
        feed_all(&mut core, b"* 10 EXISTS\r\nA0001 OK IDLE terminated\r\n").expect("done");
        assert_eq!(
            core.take_unsolicited(),
            [Unsolicited::Exists(9), Unsolicited::Exists(10)]
        );
        assert!(!core.has_in_flight() && !core.is_poisoned());

        // Dropped before the server's `+`: DONE goes when it comes.
        core.start(&Command::Idle, Kind::Idle).expect("start");
        sent(&mut core);
        core.abandon().expect("ends IDLE");
        assert!(sent(&mut core).is_empty());
        feed_all(&mut core, b"+ idling\r\n").expect("started");
        assert_eq!(sent(&mut core), b"DONE\r\n");
        feed_all(&mut core, b"A0002 OK\r\n").expect("done");
        assert!(!core.has_in_flight());

        // A dropped fetch: its body is read and dropped.
        core.begin_bodies(vec![5], HashMap::new());
        core.send_bodies().expect("sent");
        sent(&mut core);
        core.abandon().expect("can be finished");
        let mut reply = b"* 1 FETCH (UID 5 BODY[] {70000}\r\n".to_vec();
        reply.extend_from_slice(&[b'x'; 70_000]);
        reply.extend_from_slice(b")\r\nA0003 OK\r\n");
        let events = feed(&mut core, &reply, 9_000).expect("discarded");
        assert!(events.iter().all(|(e, _)| matches!(e, ImapEvent::Quiet)));
        assert!(!core.has_unsolicited() && !core.has_in_flight());
    }

    #[test]
    fn after_bye_a_continuation_does_not_release_the_password_literal() {
        // Found by the imap_core fuzz target: BYE, then a `+` for the LOGIN literal. The
        // server is ending the session: the password must not follow.
        let mut core = core(&[]);
        let login = Command::Login {
            username: "alice".into(),
            password: cmd::Secret::new(b"pa\"ss\xe9".to_vec()),
        };
        core.start(&login, Kind::Plain).expect("start");
        let first = sent(&mut core);
        assert!(first.ends_with(b"}\r\n"), "{first:?}");
        let events = feed_all(&mut core, b"* BYE going away\r\n+ go ahead\r\n").expect("read");
        assert!(
            events.iter().all(|e| matches!(e, ImapEvent::Quiet)),
            "{events:?}"
        );
        assert!(core.is_poisoned());
        assert_eq!(sent(&mut core), b"", "written after BYE");
    }

    #[test]
    fn after_bye_a_continuation_neither_starts_idle_nor_gets_a_done() {
        // Found by the imap_core fuzz target: IDLE, then BYE and a `+`. The session is over:
        // no IdleStarted for the caller, and no DONE on the wire, even when the caller (or an
        // abandoned IDLE) asks to end it.
        for orphan in [false, true] {
            let mut core = core(&[]);
            core.start(&Command::Idle, Kind::Idle).expect("start");
            assert_eq!(sent(&mut core), b"A0001 IDLE\r\n");
            if orphan {
                core.abandon().expect("an IDLE can be ended");
            }
            let events = feed_all(&mut core, b"* BYE going away\r\n+ idling\r\n").expect("read");
            assert!(
                events.iter().all(|e| matches!(e, ImapEvent::Quiet)),
                "orphan {orphan}: {events:?}"
            );
            core.idle_done();
            assert!(core.is_poisoned());
            assert_eq!(sent(&mut core), b"", "orphan {orphan}: written after BYE");
        }
    }

    #[test]
    fn a_dropped_command_that_cannot_be_finished_poisons() {
        // A literal still waiting for the server's `+`.
        let mut core = core(&[]);
        let login = Command::Login {
            username: "alice".into(),
            password: cmd::Secret::new(b"pa\"ss\xe9\x01".to_vec()),
        };
        core.start(&login, Kind::Plain).expect("start");
        let first = sent(&mut core);
        assert!(first.ends_with(b"}\r\n"), "{first:?}");
        let err = core.abandon().expect_err("cannot be finished");
        assert!(protocol_detail(&err).contains("`+`"), "{err}");
        assert!(core.usable().is_err());

        // A write cut short: the server may take what comes next as its rest.
        let mut core = self::core(&[]);
        core.start(&Command::Noop, Kind::Plain).expect("start");
        let _ = core.poll_transmit().expect("being written");
        assert!(core.abandon().is_err());
        assert!(core.is_poisoned());

        // An AUTHENTICATE exchange: its state was the dropped call's.
        let mut core = self::core(&[]);
        let auth = Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: None,
        };
        core.start(&auth, Kind::Authenticate).expect("start");
        sent(&mut core);
        assert!(core.abandon().is_err());
        assert!(core.is_poisoned());
    }
}
