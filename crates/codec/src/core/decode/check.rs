//! A driver's read loop over any [`Decode`] implementation, checking the contract at every
//! step; the split tests and the fuzz targets both feed decoders through it.
//!
//! It plays the transport: the input arrives in pieces, every piece is appended to one buffer,
//! the decoder is called until it needs more, and consumed bytes are dropped. On the way it
//! asserts what [`Decode`] promises: an event consumes no more than it was given and passes on
//! only bytes within what it consumed; a decoder does not stall on events that consume
//! nothing; `Incomplete`'s bound is larger than the input; an error names an offset inside the
//! input and is never `Incomplete`; `end_of_input` says "clean" only with nothing left over.
#![allow(clippy::panic, clippy::expect_used)]

use crate::{Decode, DecodeError, Decoded};

/// What a test or fuzz target does around a decoder, as a session would.
pub(crate) trait Session {
    /// The decoder it reads with.
    type Decoder: Decode;

    /// A fresh decoder, as at the start of a connection.
    fn decoder(&self) -> Self::Decoder;

    /// Notes `event` in `out`. `consumed` is the part of the input the event used: a range the
    /// event passes on is taken from it (so indexing it checks that the range is in there).
    fn record(
        &mut self,
        event: <Self::Decoder as Decode>::Event<'_>,
        consumed: &[u8],
        out: &mut Transcript,
    );

    /// After each event: tells the decoder what comes next, as the session's commands decide
    /// (POP3's expectations). Nothing by default.
    fn after(&mut self, _decoder: &mut Self::Decoder) {}
}

/// One entry of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// An event as the session describes it.
    Item(String),
    /// Bytes passed on (body chunks): adjacent ones are merged, since how a body is cut into
    /// chunks depends on how its bytes arrived.
    Bytes(Vec<u8>),
}

/// What a run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Transcript {
    pub seen: Vec<Seen>,
}

impl Transcript {
    /// Notes an event.
    pub(crate) fn item(&mut self, text: impl Into<String>) {
        self.seen.push(Seen::Item(text.into()));
    }

    /// Notes bytes passed on, merged with the bytes just before.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        match self.seen.last_mut() {
            Some(Seen::Bytes(before)) => before.extend_from_slice(bytes),
            _ => self.seen.push(Seen::Bytes(bytes.to_vec())),
        }
    }
}

/// A whole run: the transcript, and how the stream ended — `Ok` if cleanly, the decoder's
/// error if it refused the input or found it cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub transcript: Transcript,
    pub end: Result<(), DecodeError>,
}

/// Feeds `input` through a fresh decoder of `session`, delivered in pieces ending at `cuts`
/// (in any order; out-of-range cuts count as the end), checking the contract at every step.
pub(crate) fn feed<S: Session>(session: &mut S, input: &[u8], cuts: &[usize]) -> Run {
    let mut decoder = session.decoder();
    let mut out = Transcript::default();
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    points.sort_unstable();
    points.push(input.len());
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    // Events in a row that consumed nothing: a decoder that keeps doing that never ends.
    let mut idle = 0;
    for point in points {
        if point <= fed && point < input.len() {
            continue;
        }
        buf.extend_from_slice(&input[fed..point]);
        fed = point;
        loop {
            // The event borrows the decoder and the buffer: it is done with by the end of this
            // statement, before the session speaks to the decoder and the bytes are dropped.
            let consumed = match decoder.decode(&buf) {
                Decoded::Event { consumed, event } => {
                    assert!(
                        consumed <= buf.len(),
                        "an event consumed {consumed} bytes of {}",
                        buf.len()
                    );
                    session.record(event, &buf[..consumed], &mut out);
                    consumed
                }
                Decoded::Incomplete { bound } => {
                    assert!(
                        bound > buf.len(),
                        "incomplete with {} bytes, but the bound is {bound}",
                        buf.len()
                    );
                    break;
                }
                Decoded::Invalid(error) => {
                    assert!(!error.is_incomplete(), "Invalid(Incomplete)");
                    let offset = error.offset().expect("an error has an offset");
                    assert!(
                        offset <= buf.len(),
                        "{error} is past the {} bytes given",
                        buf.len()
                    );
                    return Run {
                        transcript: out,
                        end: Err(error),
                    };
                }
            };
            idle = if consumed == 0 { idle + 1 } else { 0 };
            assert!(idle < 2, "the decoder makes no progress");
            session.after(&mut decoder);
            buf.drain(..consumed);
        }
    }
    let end = decoder.end_of_input(&buf);
    if end.is_ok() {
        assert!(
            buf.is_empty(),
            "a clean end with {} bytes unread",
            buf.len()
        );
    }
    Run {
        transcript: out,
        end,
    }
}

/// Feeds `input` whole, then cut at every position, then a byte at a time, and asserts that
/// every way of delivering it gives the same events and the same end as the whole. Returns the
/// whole run.
#[cfg(test)]
pub(crate) fn assert_same_at_every_split<S: Session + Clone>(session: &S, input: &[u8]) -> Run {
    let whole = feed(&mut session.clone(), input, &[]);
    for cut in 0..=input.len() {
        let split = feed(&mut session.clone(), input, &[cut]);
        assert_eq!(split, whole, "input cut at byte {cut}");
    }
    let every_byte: Vec<usize> = (0..input.len()).collect();
    let bytewise = feed(&mut session.clone(), input, &every_byte);
    assert_eq!(bytewise, whole, "input fed a byte at a time");
    whole
}

/// IMAP as a client reads it: responses, body bytes, and the pieces of a long SEARCH or ESEARCH
/// line merged into the response that closes it (how a line is cut into pieces depends on how
/// its bytes arrived); each ESEARCH piece must carry its line's correlator and UID flag.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImapSession {
    limits: Option<crate::Limits>,
    search: Vec<u32>,
    ranges: Vec<crate::imap::SeqRange>,
    heads: Vec<(Option<Vec<u8>>, bool)>,
}

impl ImapSession {
    /// A session whose decoder enforces `limits`.
    pub(crate) fn new(limits: crate::Limits) -> Self {
        Self {
            limits: Some(limits),
            ..Self::default()
        }
    }
}

impl Session for ImapSession {
    type Decoder = crate::imap::ResponseDecoder;

    fn decoder(&self) -> Self::Decoder {
        crate::imap::ResponseDecoder::new(self.limits.unwrap_or(crate::Limits::imap()))
    }

    fn record(
        &mut self,
        event: crate::imap::Event<'_, std::ops::Range<usize>>,
        consumed: &[u8],
        out: &mut Transcript,
    ) {
        use crate::imap::{Data, ESearchItem, Event, Response, SequenceSet};
        match event {
            Event::BodyChunk(range) => out.bytes(&consumed[range]),
            Event::SearchNumbers(numbers) => self.search.extend(numbers),
            Event::ESearchRanges { tag, uid, set } => {
                self.heads.push((tag.map(<[u8]>::to_vec), uid));
                self.ranges.extend_from_slice(set.ranges());
            }
            Event::Response(response) => {
                let mut response = response.into_owned();
                if let Response::Data(Data::Search { numbers, .. }) = &mut response {
                    numbers.splice(0..0, self.search.drain(..));
                }
                if let Response::Data(Data::ESearch(e)) = &mut response {
                    for (tag, uid) in self.heads.drain(..) {
                        assert_eq!(tag.as_deref(), e.tag.as_deref(), "piece correlator");
                        assert_eq!(uid, e.uid, "piece UID flag");
                    }
                    if let Some(ESearchItem::All(set)) = e
                        .items
                        .iter_mut()
                        .find(|i| matches!(i, ESearchItem::All(_)))
                    {
                        self.ranges.extend_from_slice(set.ranges());
                        *set = SequenceSet::from_ranges(std::mem::take(&mut self.ranges))
                            .expect("an ALL set has ranges");
                    }
                }
                assert!(
                    self.search.is_empty(),
                    "SEARCH pieces without their line's end"
                );
                assert!(
                    self.ranges.is_empty(),
                    "ESEARCH pieces without their line's end"
                );
                out.item(format!("{response:?}"));
            }
            other => out.item(format!("{other:?}")),
        }
    }
}

/// What a POP3 session expects of each reply, in order (the greeting is reply 0).
#[derive(Debug, Clone)]
pub(crate) enum Script {
    /// These expectations, then single lines.
    #[cfg_attr(not(test), allow(dead_code))]
    List(Vec<crate::pop3::Expect>),
    /// Chosen from the bits of a fuzzer's byte; the greeting is a single line.
    Seeded(u8),
}

/// POP3 as a client reads it: the session tells the decoder what each reply is, after the
/// reply before it is complete (as with PIPELINING); bytes passed on are recorded as bytes.
#[derive(Debug, Clone)]
pub(crate) struct Pop3Session {
    limits: crate::Limits,
    script: Script,
    replies: usize,
}

impl Pop3Session {
    /// A session whose decoder enforces `limits` and expects replies as `script` says.
    pub(crate) fn new(limits: crate::Limits, script: Script) -> Self {
        Self {
            limits,
            script,
            replies: 0,
        }
    }

    fn expect(&self, reply: usize) -> crate::pop3::Expect {
        use crate::pop3::{Body, Expect};
        match &self.script {
            Script::List(list) => list.get(reply).copied().unwrap_or(Expect::SingleLine),
            Script::Seeded(_) if reply == 0 => Expect::SingleLine,
            Script::Seeded(seed) => match (u32::from(*seed) >> (reply % 8)) & 3 {
                0 => Expect::SingleLine,
                1 => Expect::MultiLine(Body::Chunks),
                2 => Expect::MultiLine(Body::Lines),
                _ => Expect::SaslContinuation,
            },
        }
    }
}

impl Session for Pop3Session {
    type Decoder = crate::pop3::Decoder;

    fn decoder(&self) -> Self::Decoder {
        let mut decoder = crate::pop3::Decoder::new(self.limits);
        decoder.expect(self.expect(0));
        decoder
    }

    fn record(
        &mut self,
        event: crate::pop3::Event<'_, std::ops::Range<usize>>,
        consumed: &[u8],
        out: &mut Transcript,
    ) {
        use crate::pop3::Event;
        match event {
            Event::Status(status) => out.item(format!("{status:?}")),
            Event::Continuation(range) => out.item(format!(
                "continuation {}",
                crate::core::text::escape_bytes(&consumed[range])
            )),
            Event::BodyChunk(range) => out.bytes(&consumed[range]),
            Event::Line(range) => out.item(format!(
                "line {}",
                crate::core::text::escape_bytes(&consumed[range])
            )),
            Event::End => out.item("end"),
        }
    }

    fn after(&mut self, decoder: &mut Self::Decoder) {
        if !decoder.is_in_body() {
            // A reply is complete (or a challenge answered): the next one is for the next
            // command.
            self.replies += 1;
            decoder.expect(self.expect(self.replies));
        }
    }
}

/// SMTP as a client reads it: one reply per event, never empty, its extensions read when it
/// lists any.
#[derive(Debug, Clone)]
pub(crate) struct SmtpSession {
    limits: crate::Limits,
}

impl SmtpSession {
    /// A session whose decoder enforces `limits`.
    pub(crate) fn new(limits: crate::Limits) -> Self {
        Self { limits }
    }
}

impl Session for SmtpSession {
    type Decoder = crate::smtp::ReplyDecoder;

    fn decoder(&self) -> Self::Decoder {
        crate::smtp::ReplyDecoder::new(self.limits)
    }

    fn record(&mut self, reply: crate::smtp::Reply<'_>, consumed: &[u8], out: &mut Transcript) {
        assert!(!consumed.is_empty(), "a reply of no bytes");
        if let Ok(extensions) = crate::smtp::Extensions::from_reply(&reply) {
            let _ = (extensions.size(), extensions.auth_mechanisms().len());
        }
        out.item(format!("{:?}", reply.into_owned()));
    }
}
