//! The response decoder: frames, parses, and streams large message bodies.
//!
//! ```text
//!            ┌────────── small literals, other responses: Response (borrows buf) ──┐
//!   Idle ────┤                                                                    ├─► Idle
//!            └─ body literal > stream_threshold: BodyStart ─► Streaming ──────────┘
//!                                           BodyChunk* │ BodyEnd   ▲
//!                                                      ▼           │ another body literal
//!                                                  AfterBody ──────┘
//!                                                      │ rest of the FETCH framed
//!                                                      └─► Response (from the skeleton) ─► Idle
//! ```
//!
//! When a body literal is streamed, the response around it (the "skeleton") is copied into the
//! decoder with the literal replaced by a marker, so the final [`Event::Response`] says
//! [`SectionData::Streamed`] for that item instead of carrying its bytes.
//!
//! Two kinds of line are legitimately longer than any fixed limit: the answer to a search of a
//! big mailbox names every match on one line. A `* SEARCH` line longer than `max_line` comes
//! out as [`Event::SearchNumbers`] pieces, a `* ESEARCH` line as [`Event::ESearchRanges`]
//! pieces of its `ALL` set; each ends with the [`Event::Response`] that closes the line. The
//! caller bounds the total by what it asked for.

use std::ops::Range;

use crate::core::parse::{to_decode_error, PResult};
use crate::{Decode, DecodeError, Decoded, Limits};

use super::fetch::{section_name, Section};
use super::framing::{frame, truncated, FrameLimits, FrameState, Framed};
use super::primitive::{number, Ctx, STREAMED_MARKER};
use super::response::{esearch_all_start, greeting, response, search, Data, Greeting, Response};
use super::sequence::{sequence_set, SequenceSet};

/// What [`ResponseDecoder`] found: one step of decoding.
///
/// `B` is how a body chunk points at its bytes: through the [`Decode`] trait, a range of the
/// input (`Event<'a, Range<usize>>`); through the older [`ResponseDecoder::decode`], a slice of it
/// (`Event<'a>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a, B = &'a [u8]> {
    /// One whole response.
    Response(Response<'a>),
    /// A large body section starts; its bytes follow as [`Event::BodyChunk`]s.
    BodyStart {
        /// The message sequence number of the FETCH response.
        seq: u32,
        /// The UID, when it is the response's first item (`* 5 FETCH (UID 12 BODY[] {…}`, as
        /// servers answer `UID FETCH`): a client with several fetches in flight can route the
        /// body at once, without first mapping sequence numbers to UIDs.
        uid: Option<u32>,
        /// The section (its `name` is the item as sent, e.g. `BODY[]`).
        section: Section<'a>,
        /// `<origin>` of a partial fetch.
        origin: Option<u32>,
        /// The literal's length: the number of bytes the chunks will add up to.
        len: u64,
    },
    /// Some bytes of the body, within the `consumed` bytes of the input: their range (or, from
    /// [`ResponseDecoder::decode`], the slice itself). No copy is made; the caller routes them
    /// and drops the consumed bytes from its buffer before calling again.
    BodyChunk(B),
    /// The body section is complete.
    BodyEnd,
    /// Some numbers of a `* SEARCH` line too long for `max_line` (a `UID SEARCH ALL` of a big
    /// mailbox names every message on one line): the line is passed on in chunks of at most
    /// `max_line` bytes, so it is never held whole. The last numbers (and a `MODSEQ`) come
    /// in the [`Event::Response`] (`Data::Search`) that ends the line. A caller that cannot
    /// take numbers this way treats the event as the line being too long.
    SearchNumbers(Vec<u32>),
    /// Some ranges of the `ALL` set of a `* ESEARCH` line too long for `max_line` (the answer
    /// to `UID SEARCH RETURN (ALL)` in a big mailbox whose UIDs are scattered: a million
    /// messages with every other UID deleted make a line of ~7 MB). The line is passed on in
    /// pieces cut between two ranges, each at most `max_line` bytes, so it is never held whole.
    /// The rest of the set and the other items (`MIN`, `COUNT`, `MODSEQ` ...) come in the
    /// [`Event::Response`] (`Data::ESearch`) that ends the line; its `ALL` item holds only the
    /// last ranges. A caller that cannot take ranges this way treats the event as the line
    /// being too long.
    ESearchRanges {
        /// The correlator (`(TAG "A5")`): the tag of the command answered, if the server
        /// named it.
        tag: Option<&'a [u8]>,
        /// True if the numbers are UIDs (the `UID` indicator).
        uid: bool,
        /// The ranges of this piece, as sent.
        set: SequenceSet,
    },
}

/// Where the decoder is between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a response.
    Idle,
    /// Passing on this many more bytes of a body literal.
    Streaming { remaining: u64 },
    /// After a streamed literal, framing the rest of its FETCH response into the skeleton.
    AfterBody,
    /// Inside a `* SEARCH` line longer than `max_line`, passing its numbers on in chunks.
    SearchNumbers,
    /// Inside the `ALL` set of a `* ESEARCH` line longer than `max_line`, passing its ranges on
    /// in pieces; the line's start up to the set is in the skeleton. The first `skip` bytes of
    /// the buffer are that start, not yet consumed.
    ESearchAll { skip: usize },
}

/// The IMAP response decoder for one connection.
///
/// Give it the bytes received so far, always starting at the first byte not yet consumed;
/// it returns an [`Event`] and how many bytes it used. On [`DecodeError::Incomplete`], read
/// more and call again with the whole (longer) buffer. Any other error is final.
///
/// Memory use is bounded by the [`Limits`]: a streamed body passes through in chunks, and
/// only the rest of its response (at most `max_response` bytes) is kept.
#[derive(Debug, Clone)]
pub struct ResponseDecoder {
    limits: Limits,
    state: State,
    /// The FETCH response around streamed literals; in a long ESEARCH line, its start.
    skeleton: Vec<u8>,
    /// The correlator and UID indicator of the long ESEARCH line being passed on.
    esearch_tag: Option<Vec<u8>>,
    esearch_uid: bool,
    /// The framer's progress in the current response.
    frame: FrameState,
    /// How many responses so far ended with a bare LF instead of CRLF (accepted where nothing
    /// can be misread: see [`ResponseDecoder::bare_lf_lines`]).
    bare_lf_lines: u64,
}

impl ResponseDecoder {
    /// A decoder enforcing `limits` (usually [`Limits::imap`]).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Idle,
            skeleton: Vec::new(),
            esearch_tag: None,
            esearch_uid: false,
            frame: FrameState::default(),
            bare_lf_lines: 0,
        }
    }

    /// How many responses so far ended with a bare LF instead of CRLF. RFC 3501 wants CRLF, but
    /// GNU Mailutils imap4d ends its tagged reply to AUTHENTICATE with a bare LF; it is accepted
    /// in a response of one line (no literal), outside a quoted string, and refused everywhere
    /// else. A connection notes each one in its trace.
    pub fn bare_lf_lines(&self) -> u64 {
        self.bare_lf_lines
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sets the longest line accepted from now on (CRLF included), for a command whose answer
    /// is legitimately one long line that is not passed on in pieces: SELECT's `* FLAGS` names
    /// every keyword in use. The caller scales it by what it asked for and puts
    /// [`Limits::imap`]'s back afterwards. It never exceeds `max_response`.
    pub fn set_max_line(&mut self, max_line: usize) {
        self.limits.max_line = max_line.min(self.limits.max_response);
    }

    /// True while a response is only partly decoded: between a [`Event::BodyStart`] and the
    /// [`Event::Response`] that closes it, or inside a long SEARCH or ESEARCH line.
    pub fn is_streaming(&self) -> bool {
        self.state != State::Idle
    }

    fn ctx(&self) -> Ctx {
        ctx(&self.limits)
    }

    fn frame_limits(&self, base: usize) -> FrameLimits {
        FrameLimits {
            max_line: self.limits.max_line,
            max_literal: self.limits.max_literal,
            max_response: self.limits.max_response,
            stream: Some((self.limits.stream_threshold, self.limits.max_message)),
            base,
        }
    }

    /// Decodes the next event from `buf`: `Ok((consumed, event))`, or
    /// [`DecodeError::Incomplete`], or a final error with an offset into `buf`.
    ///
    /// The older form of [`Decode::decode`], kept for callers not yet on the contract: a thin
    /// wrapper over the same step, compiled to give body chunks as slices of `buf` instead of
    /// ranges; the bound of an incomplete response is dropped. (With the trait in scope this
    /// method still wins: call the trait's as `Decode::decode(&mut decoder, buf)`.)
    pub fn decode<'a>(&'a mut self, buf: &'a [u8]) -> Result<(usize, Event<'a>), DecodeError> {
        self.next_event(buf, |range| &buf[range]).into_result()
    }

    /// One step in whichever state the decoder is, with a body chunk given as `bytes` makes it
    /// from its range in `buf`: the range itself for [`Decode::decode`], the slice for
    /// [`ResponseDecoder::decode`] (each gets its own copy of the code, with no conversion of
    /// the event on the way out).
    fn next_event<'a, B>(
        &'a mut self,
        buf: &'a [u8],
        bytes: impl FnOnce(Range<usize>) -> B,
    ) -> Decoded<Event<'a, B>> {
        let max_line = self.limits.max_line;
        match self.state {
            State::Idle => self.idle(buf),
            // A piece ends within `max_line` bytes of where the line's rest starts.
            State::SearchNumbers => Decoded::from_result(self.search_chunk(buf, 0), max_line),
            State::ESearchAll { skip } => {
                Decoded::from_result(self.esearch_chunk(buf, skip), skip.saturating_add(max_line))
            }
            State::Streaming { remaining } => {
                if remaining == 0 {
                    self.state = State::AfterBody;
                    self.frame = FrameState::fetch_continuation();
                    return Decoded::Event {
                        consumed: 0,
                        event: Event::BodyEnd,
                    };
                }
                if buf.is_empty() {
                    // Any byte is a chunk.
                    return Decoded::Incomplete { bound: 1 };
                }
                let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                self.state = State::Streaming {
                    remaining: remaining - n as u64,
                };
                Decoded::Event {
                    consumed: n,
                    event: Event::BodyChunk(bytes(0..n)),
                }
            }
            State::AfterBody => self.after_body(buf),
        }
    }

    /// At the start of a response: frames it, and parses it once it is all there.
    fn idle<'a, B>(&'a mut self, buf: &'a [u8]) -> Decoded<Event<'a, B>> {
        self.skeleton.clear();
        let lim = self.frame_limits(0);
        let framed = frame(buf, &mut self.frame, &lim);
        // The line in progress ends within `max_line` bytes of its start (or is too long);
        // a literal before it has its length announced.
        let bound = self.frame.line_start().saturating_add(self.limits.max_line);
        let result = match framed {
            Err(DecodeError::Incomplete) => Err(DecodeError::Incomplete),
            Err(DecodeError::LineTooLong { offset: 0, .. }) if is_search_head(buf) => {
                self.frame = FrameState::default();
                self.state = State::SearchNumbers;
                // The chunks start at the space before the first number.
                match self.search_chunk(buf, SEARCH_HEAD.len()) {
                    // Less than a window after the head: the head is done with.
                    Err(DecodeError::Incomplete) => {
                        Ok((SEARCH_HEAD.len(), Event::SearchNumbers(Vec::new())))
                    }
                    other => other,
                }
            }
            Err(e @ DecodeError::LineTooLong { offset: 0, .. }) => {
                self.frame = FrameState::default();
                let max_line = self.limits.max_line;
                return match self.start_esearch(buf) {
                    Some(skip) => Decoded::from_result(
                        self.esearch_chunk(buf, skip),
                        skip.saturating_add(max_line),
                    ),
                    None => Decoded::Invalid(e),
                };
            }
            Err(e) => {
                self.frame = FrameState::default();
                Err(e)
            }
            Ok(Framed::Complete(end)) => {
                let bare_lf = self.frame.bare_lf();
                self.frame = FrameState::default();
                let ctx = self.ctx();
                if bare_lf {
                    // One line ended by a bare LF (GNU Mailutils): parse a copy with
                    // CRLF, so the parsers keep their one rule.
                    self.bare_lf_lines += 1;
                    self.skeleton.extend_from_slice(&buf[..end - 1]);
                    self.skeleton.extend_from_slice(b"\r\n");
                    match response(&self.skeleton, &ctx) {
                        Ok((_, r)) => Ok((end, Event::Response(r))),
                        Err(e) => Err(to_decode_error(&self.skeleton, e)),
                    }
                } else {
                    let frame = &buf[..end];
                    match response(frame, &ctx) {
                        Ok((_, r)) => Ok((end, Event::Response(r))),
                        Err(e) => Err(to_decode_error(buf, e)),
                    }
                }
            }
            Ok(Framed::Stream {
                name,
                literal,
                data,
                len,
            }) => {
                self.frame = FrameState::default();
                self.start_stream(&buf[..literal], name, data, len)
            }
        };
        Decoded::from_result(result, bound)
    }

    /// After a streamed literal: frames the rest of its FETCH response into the skeleton.
    fn after_body<'a, B>(&'a mut self, buf: &'a [u8]) -> Decoded<Event<'a, B>> {
        let before = self.skeleton.len();
        let lim = self.frame_limits(before);
        let framed = frame(buf, &mut self.frame, &lim);
        let bound = self.frame.line_start().saturating_add(self.limits.max_line);
        let result = match framed {
            Err(DecodeError::Incomplete) => Err(DecodeError::Incomplete),
            Err(e) => {
                self.reset();
                Err(e)
            }
            Ok(Framed::Complete(end)) => {
                self.skeleton.extend_from_slice(&buf[..end]);
                self.state = State::Idle;
                self.frame = FrameState::default();
                let ctx = self.ctx();
                if let Err(e) = response(&self.skeleton, &ctx) {
                    let e = to_decode_error(&self.skeleton, e);
                    self.reset();
                    return Decoded::Invalid(skeleton_offset_to_buf(e, before, 0));
                }
                response(&self.skeleton, &ctx)
                    .map(|(_, r)| (end, Event::Response(r)))
                    .map_err(|e| to_decode_error(&self.skeleton, e))
            }
            Ok(Framed::Stream {
                name,
                literal,
                data,
                len,
            }) => {
                self.frame = FrameState::default();
                self.start_stream(&buf[..literal], name, data, len)
            }
        };
        Decoded::from_result(result, bound)
    }

    /// Appends `head` (the response up to a body literal's `{`) and the marker to the skeleton,
    /// and returns the [`Event::BodyStart`]. `name` is the item name's offset in `head`.
    fn start_stream<B>(
        &mut self,
        head: &[u8],
        name: usize,
        data: usize,
        len: u64,
    ) -> Result<(usize, Event<'_, B>), DecodeError> {
        let base = self.skeleton.len();
        self.skeleton.extend_from_slice(head);
        let name_at = base + name;
        let name_end = self.skeleton.len();
        self.skeleton.push(STREAMED_MARKER);
        self.skeleton
            .extend_from_slice(format!("{{{len}}}").as_bytes());
        let ctx = self.ctx();
        // Check first, then borrow for the event: the error path must be able to reset.
        if let Err(e) = body_start(&self.skeleton, name_at, name_end, &ctx) {
            self.reset();
            return Err(skeleton_offset_to_buf(e, base, 0));
        }
        self.state = State::Streaming { remaining: len };
        let (seq, section, origin) = body_start(&self.skeleton, name_at, name_end, &ctx)?;
        let uid = leading_uid(&self.skeleton[..name_at]);
        Ok((
            data,
            Event::BodyStart {
                seq,
                uid,
                section,
                origin,
                len,
            },
        ))
    }

    /// The next piece of a long `* SEARCH` line from `buf[from..]` (which starts with a space
    /// or ends the line): its numbers up to the last space within `max_line` bytes, or, once
    /// the line's end is in reach, the rest as the closing `Data::Search` response.
    fn search_chunk<'a, B>(
        &mut self,
        buf: &'a [u8],
        from: usize,
    ) -> Result<(usize, Event<'a, B>), DecodeError> {
        let window_end = buf.len().min(from.saturating_add(self.limits.max_line));
        let window = &buf[from..window_end];
        let invalid = |at: usize, expected: &'static str| DecodeError::Invalid {
            offset: from + at,
            expected,
        };
        let numbers = |chunk: &[u8], at: usize| match search(chunk) {
            Ok(([], Data::Search { numbers, modseq })) => Ok((numbers, modseq)),
            _ => Err(invalid(
                at,
                "numbers separated by spaces in a SEARCH response",
            )),
        };
        if let Some(lf) = memchr::memchr2(b'\n', 0, window) {
            let result = if window[lf] == 0 {
                Err(invalid(lf, "no NUL byte outside a literal"))
            } else if lf == 0 || window[lf - 1] != b'\r' {
                Err(invalid(lf, "CR before LF (bare LF line ending)"))
            } else {
                numbers(&window[..lf - 1], 0).map(|(numbers, modseq)| {
                    (
                        from + lf + 1,
                        Event::Response(Response::Data(Data::Search { numbers, modseq })),
                    )
                })
            };
            self.reset();
            return result;
        }
        if window.len() < self.limits.max_line {
            return Err(DecodeError::Incomplete);
        }
        // Cut before the last token, which may go on past the window; a `(MODSEQ n)` is
        // never cut apart, it ends the line.
        let mut cut = memchr::memrchr(b' ', window).unwrap_or(0);
        if window[cut..].starts_with(b" (") || window[..cut].ends_with(b"(MODSEQ") {
            cut = memchr::memrchr(b' ', &window[..cut]).unwrap_or(0);
            while window[..cut].ends_with(b"(MODSEQ") {
                cut = memchr::memrchr(b' ', &window[..cut]).unwrap_or(0);
            }
        }
        if cut == 0 {
            self.reset();
            return Err(DecodeError::LineTooLong {
                offset: from,
                limit: self.limits.max_line,
            });
        }
        if let Some(nul) = memchr::memchr(0, &window[..cut]) {
            self.reset();
            return Err(invalid(nul, "no NUL byte outside a literal"));
        }
        match numbers(&window[..cut], 0) {
            Ok((numbers, None)) => Ok((from + cut, Event::SearchNumbers(numbers))),
            Ok((_, Some(_))) => {
                self.reset();
                Err(invalid(0, "MODSEQ only at the end of a SEARCH response"))
            }
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// At the start of a line longer than `max_line`: if it is a `* ESEARCH` line whose items
    /// up to `ALL` fit in a line, keeps that start and goes on to pass the `ALL` set on in
    /// pieces. Returns the length of the start.
    fn start_esearch(&mut self, buf: &[u8]) -> Option<usize> {
        let ctx = self.ctx();
        let line = &buf[..buf.len().min(self.limits.max_line)];
        let (start, (tag, uid)) = esearch_all_start(line, &ctx)?;
        self.esearch_tag = tag.map(|t| t.into_owned());
        self.esearch_uid = uid;
        self.skeleton.clear();
        self.skeleton.extend_from_slice(&buf[..start]);
        self.state = State::ESearchAll { skip: start };
        Some(start)
    }

    /// The next piece of a long ESEARCH line's `ALL` set from `buf[from..]` (which starts with a
    /// range, or ends the set): its ranges up to the last comma within `max_line` bytes, or,
    /// once the line's end is in reach, the rest as the closing `Data::ESearch` response, parsed
    /// with the line's start. A range is never cut apart; a piece's comma is consumed with it.
    fn esearch_chunk<'a, B>(
        &'a mut self,
        buf: &'a [u8],
        from: usize,
    ) -> Result<(usize, Event<'a, B>), DecodeError> {
        let max_line = self.limits.max_line;
        let window = &buf[from..buf.len().min(from.saturating_add(max_line))];
        let invalid = |at: usize, expected: &'static str| DecodeError::Invalid {
            offset: from + at,
            expected,
        };
        if let Some(at) = memchr::memchr2(b'\n', 0, window) {
            if window[at] == 0 {
                self.reset();
                return Err(invalid(at, "no NUL byte outside a literal"));
            }
            if at == 0 || window[at - 1] != b'\r' {
                self.reset();
                return Err(invalid(at, "CR before LF (bare LF line ending)"));
            }
            let head = self.skeleton.len();
            self.skeleton.extend_from_slice(&window[..=at]);
            let ctx = self.ctx();
            // Check first, then borrow for the event: the error path must be able to reset.
            if let Err(e) = response(&self.skeleton, &ctx) {
                let e = to_decode_error(&self.skeleton, e);
                self.reset();
                return Err(skeleton_offset_to_buf(e, head, from));
            }
            // Idle clears the skeleton before the next response.
            self.state = State::Idle;
            self.frame = FrameState::default();
            let (_, r) =
                response(&self.skeleton, &ctx).map_err(|e| to_decode_error(&self.skeleton, e))?;
            return Ok((from + at + 1, Event::Response(r)));
        }
        if window.len() < max_line {
            return Err(DecodeError::Incomplete);
        }
        // Cut at the last comma before the set ends: the last range may go on past the window,
        // and what follows the set (more items) must reach the line's end in one window.
        let set_len = window
            .iter()
            .position(|&b| !(b.is_ascii_digit() || matches!(b, b':' | b',' | b'*')))
            .unwrap_or(window.len());
        if set_len == 0 {
            self.reset();
            return Err(invalid(0, "a number or a range in an ESEARCH ALL set"));
        }
        if window
            .get(set_len)
            .is_some_and(|&b| b != b' ' && b != b'\r')
        {
            self.reset();
            return Err(invalid(
                set_len,
                "a comma, a space or CRLF after a range in an ESEARCH ALL set",
            ));
        }
        let Some(cut) = memchr::memrchr(b',', &window[..set_len]) else {
            self.reset();
            return Err(DecodeError::LineTooLong {
                offset: from,
                limit: max_line,
            });
        };
        let set = match sequence_set(&window[..cut]) {
            Ok(([], set)) => set,
            Ok((rest, _)) => {
                let at = cut - rest.len();
                self.reset();
                return Err(invalid(
                    at,
                    "a comma between the ranges of an ESEARCH ALL set",
                ));
            }
            Err(e) => {
                let e = to_decode_error(window, e);
                self.reset();
                return Err(e.shifted(from));
            }
        };
        self.state = State::ESearchAll { skip: 0 };
        Ok((
            from + cut + 1,
            Event::ESearchRanges {
                tag: self.esearch_tag.as_deref(),
                uid: self.esearch_uid,
                set,
            },
        ))
    }

    fn reset(&mut self) {
        self.state = State::Idle;
        self.frame = FrameState::default();
        self.skeleton.clear();
    }

    /// What to report when the stream ends with `remaining` bytes not consumed (or in the
    /// middle of a streamed body): [`DecodeError::Truncated`] naming what was unfinished —
    /// "a literal", "a quoted string", "a response line" — with its offset in `remaining`.
    ///
    /// The older form of [`Decode::end_of_input`], for a caller that already knows the stream
    /// was cut (`remaining` is not empty, or [`ResponseDecoder::is_streaming`]); the trait's says
    /// whether it was.
    pub fn end_of_input(&self, remaining: &[u8]) -> DecodeError {
        self.truncation(remaining)
    }

    fn truncation(&self, remaining: &[u8]) -> DecodeError {
        match self.state {
            State::Streaming { .. } => DecodeError::Truncated {
                offset: 0,
                inside: "a literal (a streamed message body)",
            },
            State::AfterBody => {
                if remaining.is_empty() {
                    return DecodeError::Truncated {
                        offset: 0,
                        inside: "a response line (after a streamed message body)",
                    };
                }
                truncated(
                    remaining,
                    FrameState::fetch_continuation(),
                    &self.frame_limits(self.skeleton.len()),
                )
            }
            State::Idle => truncated(remaining, FrameState::default(), &self.frame_limits(0)),
            State::SearchNumbers => DecodeError::Truncated {
                offset: 0,
                inside: "a response line (a long SEARCH response)",
            },
            State::ESearchAll { .. } => DecodeError::Truncated {
                offset: 0,
                inside: "a response line (a long ESEARCH response)",
            },
        }
    }
}

/// The decode contract. An incomplete response's bound is where its current line must end (a
/// literal announced before it included); in a streamed body, one byte; in a long SEARCH or
/// ESEARCH line, the end of the next piece.
impl Decode for ResponseDecoder {
    type Event<'a> = Event<'a, Range<usize>>;

    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<Self::Event<'a>> {
        self.next_event(input, |range| range)
    }

    fn end_of_input(&self, unread: &[u8]) -> Result<(), DecodeError> {
        if unread.is_empty() && !self.is_streaming() {
            Ok(())
        } else {
            Err(self.truncation(unread))
        }
    }
}

/// The start of a SEARCH response whose numbers may be passed on in chunks.
const SEARCH_HEAD: &[u8] = b"* SEARCH";

/// `* SEARCH ` (the keyword case-insensitive) at the start of `buf`.
fn is_search_head(buf: &[u8]) -> bool {
    buf.len() > SEARCH_HEAD.len()
        && buf[..SEARCH_HEAD.len()].eq_ignore_ascii_case(SEARCH_HEAD)
        && buf[SEARCH_HEAD.len()] == b' '
}

/// Maps an error's offset in the skeleton to one in the current buffer, whatever the error:
/// the skeleton from `tail_start` on holds the bytes of the buffer from `tail_at` on. An offset
/// before `tail_start` lies in an earlier part: if that part is still at the buffer's start (a
/// long ESEARCH line's head, `tail_at` bytes long) the offset stands, otherwise its bytes were
/// dropped already and the offset is 0.
fn skeleton_offset_to_buf(e: DecodeError, tail_start: usize, tail_at: usize) -> DecodeError {
    e.map_offset(|offset| offset.saturating_add(tail_at).saturating_sub(tail_start))
}

/// Parses the sequence number and the streamed item's name out of the skeleton.
fn body_start<'a>(
    skeleton: &'a [u8],
    name_at: usize,
    name_end: usize,
    ctx: &Ctx,
) -> Result<(u32, Section<'a>, Option<u32>), DecodeError> {
    let bad = |offset| DecodeError::Invalid {
        offset,
        expected: "a FETCH body section before a literal",
    };
    let seq = skeleton
        .get(2..)
        .and_then(|s| number(s).ok())
        .map(|(_, n)| n)
        .ok_or(bad(2))?;
    let name = skeleton.get(name_at..name_end).ok_or(bad(name_at))?;
    match section_name(name, ctx) {
        Ok((rest, Some((section, origin, false)))) if rest == b" " => Ok((seq, section, origin)),
        _ => Err(bad(name_at)),
    }
}

/// The UID of a FETCH response head (`* 5 FETCH (UID 12 `…) when it is the first item.
fn leading_uid(head: &[u8]) -> Option<u32> {
    let open = memchr::memchr(b'(', head)?;
    let item = head.get(open + 1..open + 5)?;
    if !item.eq_ignore_ascii_case(b"UID ") {
        return None;
    }
    let (rest, uid) = number(&head[open + 5..]).ok()?;
    (uid > 0 && rest.first() == Some(&b' ')).then_some(uid)
}

fn ctx(limits: &Limits) -> Ctx {
    Ctx {
        max_depth: limits.max_depth,
        max_literal: limits.max_literal,
    }
}

fn stateless_limits(limits: &Limits) -> FrameLimits {
    FrameLimits {
        max_line: limits.max_line,
        max_literal: limits.max_literal,
        max_response: limits.max_response,
        stream: None,
        base: 0,
    }
}

/// Parses one response from the start of `buf`, without streaming: body literals are inline
/// and bounded by `max_literal`. For tests and simple tools; a connection should use
/// [`ResponseDecoder`].
pub fn parse_response<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<(usize, Response<'a>), DecodeError> {
    parse_framed(buf, limits, "a response (streaming is off)", response)
}

/// Parses the server greeting (`* OK`, `* PREAUTH` or `* BYE`) from the start of `buf`.
pub fn parse_greeting<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<(usize, Greeting<'a>), DecodeError> {
    parse_framed(buf, limits, "a greeting", greeting)
}

/// Frames one response at the start of `buf` without streaming (a body literal to stream is
/// an error that expects `what`), then reads it with `parse`.
fn parse_framed<'a, T>(
    buf: &'a [u8],
    limits: &Limits,
    what: &'static str,
    parse: impl FnOnce(&'a [u8], &Ctx) -> PResult<'a, T>,
) -> Result<(usize, T), DecodeError> {
    let mut st = FrameState::default();
    let end = match frame(buf, &mut st, &stateless_limits(limits))? {
        // Only a connection's decoder takes a bare LF (it parses a copy with CRLF).
        Framed::Complete(end) if st.bare_lf() => {
            return Err(DecodeError::Invalid {
                offset: end - 1,
                expected: "CR before LF (bare LF line ending)",
            })
        }
        Framed::Complete(end) => end,
        Framed::Stream { .. } => {
            return Err(DecodeError::Invalid {
                offset: 0,
                expected: what,
            })
        }
    };
    let (_, v) = parse(&buf[..end], &ctx(limits)).map_err(|e| to_decode_error(buf, e))?;
    Ok((end, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::{
        Code, Data, ESearch, ESearchItem, FetchItem, Flag, SectionData, StatusKind, UidSet,
    };
    use proptest::prelude::*;

    /// An event that owns its bytes, for comparing runs.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Response(Response<'static>),
        BodyStart {
            seq: u32,
            uid: Option<u32>,
            section: Section<'static>,
            origin: Option<u32>,
            len: u64,
        },
        Body(Vec<u8>),
        BodyEnd,
        SearchNumbers(Vec<u32>),
        ESearchRanges {
            tag: Option<Vec<u8>>,
            uid: bool,
            set: SequenceSet,
        },
    }

    fn own(e: Event<'_>) -> Owned {
        match e {
            Event::Response(r) => Owned::Response(r.into_owned()),
            Event::BodyStart {
                seq,
                uid,
                section,
                origin,
                len,
            } => Owned::BodyStart {
                seq,
                uid,
                section: section.into_owned(),
                origin,
                len,
            },
            Event::BodyChunk(c) => Owned::Body(c.to_vec()),
            Event::BodyEnd => Owned::BodyEnd,
            Event::SearchNumbers(n) => Owned::SearchNumbers(n),
            Event::ESearchRanges { tag, uid, set } => Owned::ESearchRanges {
                tag: tag.map(<[u8]>::to_vec),
                uid,
                set,
            },
        }
    }

    /// Feeds `input` in pieces cut at `cuts`, as a transport would: append what arrived,
    /// decode until Incomplete, drop what was consumed. Body chunks are merged.
    fn drive(input: &[u8], cuts: &[usize], limits: Limits) -> (Vec<Owned>, Option<DecodeError>) {
        let mut decoder = ResponseDecoder::new(limits);
        let mut buf: Vec<u8> = Vec::new();
        let mut events: Vec<Owned> = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        points.sort_unstable();
        points.push(input.len());
        let mut fed = 0;
        for p in points {
            buf.extend_from_slice(&input[fed..p.max(fed)]);
            fed = p.max(fed);
            loop {
                match decoder.decode(&buf) {
                    Ok((n, e)) => {
                        let e = own(e);
                        match (events.last_mut(), e) {
                            (Some(Owned::Body(prev)), Owned::Body(more)) => prev.extend(more),
                            (_, e) => events.push(e),
                        }
                        buf.drain(..n);
                    }
                    Err(DecodeError::Incomplete) => break,
                    Err(e) => return (events, Some(e)),
                }
            }
        }
        let end = (!buf.is_empty() || decoder.is_streaming()).then(|| decoder.end_of_input(&buf));
        (events, end)
    }

    fn streaming_limits() -> Limits {
        Limits {
            stream_threshold: 10,
            ..Limits::imap()
        }
    }

    fn fetch_of(e: &Owned) -> &crate::imap::Fetch<'static> {
        match e {
            Owned::Response(Response::Data(Data::Fetch(f))) => f,
            other => panic!("{other:?}"),
        }
    }

    fn small_lines() -> Limits {
        Limits {
            max_line: 64,
            ..Limits::imap()
        }
    }

    /// The numbers of the SEARCH events in `events`, the MODSEQ, and what came after.
    fn search_numbers(events: &[Owned]) -> (Vec<u32>, Option<u64>, usize) {
        let mut all = Vec::new();
        for (i, e) in events.iter().enumerate() {
            match e {
                Owned::SearchNumbers(n) => all.extend(n),
                Owned::Response(Response::Data(Data::Search { numbers, modseq })) => {
                    all.extend(numbers);
                    return (all, *modseq, events.len() - i - 1);
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("no closing SEARCH response: {events:?}")
    }

    #[test]
    fn a_search_line_longer_than_max_line_comes_in_chunks() {
        let numbers: Vec<String> = (1..=500).map(|n| n.to_string()).collect();
        for tail in ["", " (MODSEQ 77)", " (modseq 77) "] {
            let wire = format!("* search {}{tail}\r\n* OK next\r\n", numbers.join(" "));
            for cuts in [
                vec![],
                vec![3, 70, 71, 200, 1000],
                (0..wire.len()).step_by(7).collect(),
            ] {
                let (events, end) = drive(wire.as_bytes(), &cuts, small_lines());
                assert_eq!(end, None, "{tail:?} {cuts:?}");
                let (got, modseq, after) = search_numbers(&events);
                assert_eq!(got, (1..=500).collect::<Vec<u32>>(), "{tail:?} {cuts:?}");
                assert_eq!(modseq, (!tail.is_empty()).then_some(77));
                assert_eq!(after, 1, "the next response is read as usual");
                assert!(events.len() > 10, "in chunks of at most 64 bytes");
            }
        }
        // A short SEARCH is one response, as before.
        let (events, _) = drive(b"* SEARCH 1 2\r\n", &[], small_lines());
        assert_eq!(search_numbers(&events), (vec![1, 2], None, 0));
    }

    #[test]
    fn a_long_search_line_is_still_checked() {
        let long = |middle: &str| {
            let numbers: Vec<String> = (1..=40).map(|n| n.to_string()).collect();
            format!(
                "* SEARCH {} {middle} {}\r\n",
                numbers.join(" "),
                numbers.join(" ")
            )
        };
        for (bad, what) in [
            (long("x"), "numbers"),
            (long("4294967296"), "numbers"),
            (long("1\x002"), "NUL"),
            (long("1\n2"), "bare LF"),
            (long("(MODSEQ 5) 3"), "MODSEQ at the end"),
        ] {
            let (_, end) = drive(bad.as_bytes(), &[], small_lines());
            assert!(
                matches!(end, Some(DecodeError::Invalid { .. })),
                "{what}: {end:?}"
            );
        }
        // One token longer than a line: refused, not cut.
        let wire = format!("* SEARCH 1 {}\r\n", "9".repeat(100));
        let (_, end) = drive(wire.as_bytes(), &[], small_lines());
        assert!(
            matches!(end, Some(DecodeError::LineTooLong { .. })),
            "{end:?}"
        );
        // Only SEARCH is streamed: another long line is too long, as before.
        let wire = format!("* SEARCHES {}\r\n", "1 ".repeat(100));
        let (_, end) = drive(wire.as_bytes(), &[], small_lines());
        assert!(
            matches!(end, Some(DecodeError::LineTooLong { .. })),
            "{end:?}"
        );
        // Cut off in the middle.
        let numbers: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
        let wire = format!("* SEARCH {}", numbers.join(" "));
        let (_, end) = drive(wire.as_bytes(), &[], small_lines());
        assert!(
            matches!(end, Some(DecodeError::Truncated { .. })),
            "{end:?}"
        );
    }

    /// What the events of one long ESEARCH line say: every UID of its pieces and of the
    /// closing response's `ALL`, how many pieces there were, the closing response, and how
    /// many events came after it. Each piece must carry the line's correlator and UID flag.
    fn esearch_read(events: &[Owned]) -> (UidSet, usize, ESearch<'static>, usize) {
        let mut set = UidSet::new();
        for (i, e) in events.iter().enumerate() {
            match e {
                Owned::ESearchRanges { .. } => {}
                Owned::Response(Response::Data(Data::ESearch(closing))) => {
                    for piece in &events[..i] {
                        let Owned::ESearchRanges { tag, uid, set: s } = piece else {
                            unreachable!()
                        };
                        assert_eq!(tag.as_deref(), closing.tag.as_deref());
                        assert_eq!(*uid, closing.uid);
                        set.insert_set(&UidSet::from_sequence_set(s, 0));
                    }
                    for item in &closing.items {
                        if let ESearchItem::All(s) = item {
                            set.insert_set(&UidSet::from_sequence_set(s, 0));
                        }
                    }
                    return (set, i, closing.clone(), events.len() - i - 1);
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("no closing ESEARCH response: {events:?}")
    }

    /// The items of an ESEARCH response other than `ALL`.
    fn other_items(e: &ESearch<'static>) -> Vec<ESearchItem<'static>> {
        e.items
            .iter()
            .filter(|i| !matches!(i, ESearchItem::All(_)))
            .cloned()
            .collect()
    }

    #[test]
    fn a_long_esearch_line_comes_in_pieces() {
        // Scattered UIDs (every other one) and one run: ~2.5 KB of ranges, lines of 64 bytes.
        let uids: UidSet = (3..=1001).step_by(2).chain(2000..=2100).collect();
        for (head, tail) in [
            ("(TAG \"A7\") UID MIN 3 ALL ", " COUNT 601 MODSEQ 9"),
            ("uid all ", ""),
            ("(tag \"x y\")  ALL ", " X-VENDOR (a \"b\")"),
        ] {
            let wire = format!("* ESEARCH {head}{uids}{tail}\r\n* OK next\r\n");
            for cuts in [
                vec![],
                vec![3, 70, 71, 200, 1000],
                (0..wire.len()).step_by(7).collect(),
            ] {
                let (events, end) = drive(wire.as_bytes(), &cuts, small_lines());
                assert_eq!(end, None, "{head:?} {cuts:?}");
                let (got, pieces, closing, after) = esearch_read(&events);
                assert_eq!(got, uids, "{head:?} {cuts:?}");
                assert!(pieces > 10, "in pieces of at most 64 bytes: {pieces}");
                assert_eq!(after, 1, "the next response is read as usual");
                // The correlator, UID flag and other items are what a short line gives.
                let short = format!("* ESEARCH {head}1{tail}\r\n");
                let (_, short) = parse_response(short.as_bytes(), &Limits::imap()).unwrap();
                let Response::Data(Data::ESearch(short)) = short.into_owned() else {
                    panic!()
                };
                assert_eq!(closing.tag, short.tag);
                assert_eq!(closing.uid, short.uid);
                assert_eq!(other_items(&closing), other_items(&short));
            }
        }
        // A short ESEARCH is one response, as before.
        let (events, _) = drive(
            b"* ESEARCH (TAG \"A1\") UID ALL 1:3,7 COUNT 4\r\n",
            &[],
            small_lines(),
        );
        let (got, pieces, closing, _) = esearch_read(&events);
        assert_eq!((got.to_string().as_str(), pieces), ("1:3,7", 0));
        assert_eq!(other_items(&closing), [ESearchItem::Count(4)]);
    }

    #[test]
    fn an_esearch_line_read_in_two_parts_cut_anywhere_gives_the_same_set() {
        // Lines of 32 bytes: the line is passed on in pieces, and a read may end inside the
        // head, a number, a range, the items after the set or the CRLF.
        let limits = Limits {
            max_line: 32,
            ..Limits::imap()
        };
        let wire: &[u8] = b"* ESEARCH (TAG \"T1\") UID ALL 1,3:4,60,79:70,100000,100002:100004,\
              4294967295,7 COUNT 21\r\nT1 OK done\r\n";
        let whole = Limits {
            max_line: 1024,
            ..Limits::imap()
        };
        let (events, _) = drive(wire, &[], whole);
        let (expected, pieces, _, _) = esearch_read(&events);
        assert_eq!(pieces, 0);
        assert_eq!(
            expected.to_string(),
            "1,3:4,7,60,70:79,100000,100002:100004,4294967295"
        );
        let (events, end) = drive(wire, &[], limits);
        assert_eq!(end, None);
        let reference = events.clone();
        assert!(esearch_read(&events).1 >= 2, "{events:?}");
        for cut in 0..=wire.len() {
            let (events, end) = drive(wire, &[cut], limits);
            assert_eq!(end, None, "cut at {cut}");
            assert_eq!(events, reference, "cut at {cut}");
            assert_eq!(esearch_read(&events).0, expected, "cut at {cut}");
        }
        let every_byte: Vec<usize> = (0..wire.len()).collect();
        assert_eq!(drive(wire, &every_byte, limits), (reference, None));
    }

    #[test]
    fn a_long_esearch_line_is_still_checked() {
        let ranges: Vec<String> = (1..=60).map(|n| (2 * n).to_string()).collect();
        let ranges = ranges.join(",");
        let long =
            |middle: &str| format!("* ESEARCH (TAG \"a\") UID ALL {ranges},{middle},{ranges}\r\n");
        for (bad, what) in [
            (long("x"), "a letter"),
            (long("0"), "zero"),
            (long("4294967296"), "an overflow"),
            (long("1:2:3"), "two colons"),
            (long(""), "an empty range"),
            (long("7x"), "a letter after a number"),
            (long("1\x002"), "NUL"),
            (long("1\n2"), "bare LF"),
            (
                format!("* ESEARCH UID ALL {ranges},{ranges},0\r\n"),
                "zero at the end",
            ),
            (
                format!("* ESEARCH UID ALL {ranges},{ranges} COUNT x\r\n"),
                "a bad item after",
            ),
            (
                format!("* ESEARCH UID ALL {ranges},{ranges} X-A {{5}}\r\nabcde\r\n"),
                "a literal after the set",
            ),
        ] {
            let (_, end) = drive(bad.as_bytes(), &[], small_lines());
            assert!(
                matches!(end, Some(DecodeError::Invalid { .. })),
                "{what}: {end:?}"
            );
        }
        let too_long = [
            // One range longer than a line: refused, not cut.
            format!("* ESEARCH UID ALL 1,{}\r\n", "9".repeat(100)),
            // What follows the set does not reach the line's end within a line.
            format!(
                "* ESEARCH UID ALL {ranges} X-LONG ({})\r\n",
                "a ".repeat(50)
            ),
            // The items before ALL do not fit in a line.
            format!(
                "* ESEARCH UID X-LONG ({}) ALL {ranges}\r\n",
                "a ".repeat(50)
            ),
            // No ALL: only its set is passed on in pieces.
            format!("* ESEARCH UID X-LONG ({})\r\n", "1 ".repeat(100)),
            format!("* ESEARCHES ALL {ranges}\r\n"),
        ];
        for wire in too_long {
            let (_, end) = drive(wire.as_bytes(), &[], small_lines());
            assert!(
                matches!(end, Some(DecodeError::LineTooLong { .. })),
                "{wire}: {end:?}"
            );
        }
        // Cut off in the middle.
        let wire = format!("* ESEARCH UID ALL {ranges},{ranges}");
        let (_, end) = drive(wire.as_bytes(), &[], small_lines());
        assert!(
            matches!(end, Some(DecodeError::Truncated { inside, .. }) if inside.contains("ESEARCH")),
            "{end:?}"
        );
    }

    proptest! {
        #[test]
        fn an_esearch_line_in_pieces_gives_the_set_the_whole_line_gives(
            ranges in proptest::collection::vec((1u32..=u32::MAX, 0u32..3000), 1..300),
            cuts in proptest::collection::vec(0usize..6000, 0..12),
        ) {
            // Ranges as a server may write them: unsorted, overlapping, high end first.
            let written: Vec<String> = ranges
                .iter()
                .map(|&(a, span)| match span {
                    0 => a.to_string(),
                    s if s % 2 == 0 => format!("{a}:{}", a.saturating_sub(s).max(1)),
                    s => format!("{a}:{}", a.saturating_add(s)),
                })
                .collect();
            let wire = format!(
                "* ESEARCH (TAG \"A1\") UID ALL {} COUNT 3\r\nA1 OK\r\n",
                written.join(",")
            );
            let whole = Limits { max_line: 8192, ..Limits::imap() };
            let (events, end) = drive(wire.as_bytes(), &[], whole);
            prop_assert_eq!(end, None);
            let (expected, _, _, _) = esearch_read(&events);
            let (events, end) = drive(wire.as_bytes(), &cuts, small_lines());
            prop_assert_eq!(end, None);
            let (got, _, closing, after) = esearch_read(&events);
            prop_assert_eq!(got, expected);
            prop_assert_eq!(after, 1);
            prop_assert_eq!(other_items(&closing), [ESearchItem::Count(3)]);
        }
    }

    #[test]
    fn a_long_flags_line_passes_once_the_line_limit_is_raised() {
        let keywords: Vec<String> = (1..=20_000).map(|n| format!("$k{n}")).collect();
        let wire = format!("* FLAGS (\\Seen {})\r\n", keywords.join(" "));
        let mut d = ResponseDecoder::new(Limits::imap());
        crate::assert_matches!(
            d.decode(wire.as_bytes()),
            Err(DecodeError::LineTooLong { .. })
        );
        d.set_max_line(wire.len());
        let (n, event) = d.decode(wire.as_bytes()).unwrap();
        assert_eq!(n, wire.len());
        let Event::Response(Response::Data(Data::Flags(flags))) = event else {
            panic!("{event:?}")
        };
        assert_eq!(flags.len(), 20_001);
        d.set_max_line(usize::MAX);
        assert_eq!(d.limits().max_line, Limits::imap().max_response);
    }

    #[test]
    fn small_responses_borrow_from_the_buffer() {
        let buf = b"* 1 FETCH (UID 5 BODY[] {5}\r\nhello)\r\nA1 OK done\r\n";
        let mut d = ResponseDecoder::new(Limits::imap());
        let (n, e) = d.decode(buf).unwrap();
        assert_eq!(n, 37);
        let Event::Response(Response::Data(Data::Fetch(f))) = e else {
            panic!("{e:?}")
        };
        let (_, _, data) = f.sections().next().unwrap();
        let SectionData::Inline(std::borrow::Cow::Borrowed(b)) = data else {
            panic!()
        };
        // The very bytes of the input buffer: no copy.
        assert_eq!(b.as_ptr(), buf[29..].as_ptr());
        let (m, e) = d.decode(&buf[n..]).unwrap();
        assert_eq!(m, 12);
        crate::assert_matches!(
            e,
            Event::Response(Response::Status {
                kind: StatusKind::Ok,
                ..
            })
        );
    }

    #[test]
    fn the_uid_of_a_streamed_body_is_known_at_its_start_only_when_it_comes_first() {
        let uid_at_start = |head: &str| {
            let mut input = head.as_bytes().to_vec();
            input.extend_from_slice(&[b'x'; 30]);
            input.extend_from_slice(b")\r\n");
            let (events, _) = drive(&input, &[], streaming_limits());
            match &events[0] {
                Owned::BodyStart { uid, .. } => *uid,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(uid_at_start("* 7 FETCH (UID 9 BODY[] {30}\r\n"), Some(9));
        assert_eq!(uid_at_start("* 7 FETCH (uid 9 BODY[] {30}\r\n"), Some(9));
        // After other items, or after the body: not known at the start.
        assert_eq!(
            uid_at_start("* 7 FETCH (FLAGS () UID 9 BODY[] {30}\r\n"),
            None
        );
        assert_eq!(uid_at_start("* 7 FETCH (BODY[] {30}\r\n"), None);
        // UID 0 is not a UID; neither is a number run into the next item.
        assert_eq!(uid_at_start("* 7 FETCH (UID 0 BODY[] {30}\r\n"), None);
    }

    #[test]
    fn a_large_body_is_streamed_and_the_response_says_so() {
        let body = b"0123456789abcdefghijklmnopqrst";
        let mut input = b"* 7 FETCH (UID 9 BODY[]<0> {30}\r\n".to_vec();
        input.extend_from_slice(body);
        input.extend_from_slice(b" FLAGS (\\Seen))\r\nA1 OK done\r\n");
        let (events, end) = drive(&input, &[], streaming_limits());
        assert_eq!(end, None);
        assert_eq!(events.len(), 5, "{events:?}");
        let Owned::BodyStart {
            seq,
            uid,
            section,
            origin,
            len,
        } = &events[0]
        else {
            panic!()
        };
        assert_eq!(
            (*seq, *uid, &*section.name, *origin, *len),
            (7, Some(9), &b"BODY[]"[..], Some(0), 30)
        );
        assert_eq!(events[1], Owned::Body(body.to_vec()));
        assert_eq!(events[2], Owned::BodyEnd);
        let f = fetch_of(&events[3]);
        assert_eq!(f.uid(), Some(9));
        assert_eq!(f.flags(), Some(&[Flag::Seen][..]));
        assert_eq!(
            f.sections().next().unwrap().2,
            &SectionData::Streamed { len: 30 }
        );
        crate::assert_matches!(events[4], Owned::Response(Response::Status { .. }));
    }

    #[test]
    fn two_streamed_bodies_and_a_small_one_in_one_fetch() {
        let mut input = b"* 1 FETCH (BODY[1] {12}\r\nfirst-body-1 BODY[2] {3}\r\nabc BINARY[3] ~{11}\r\n\0second-bin UID 4)\r\n".to_vec();
        input.extend_from_slice(b"* 2 EXISTS\r\n");
        let (events, end) = drive(&input, &[], streaming_limits());
        assert_eq!(end, None);
        let kinds: Vec<_> = events
            .iter()
            .map(|e| match e {
                Owned::BodyStart { .. } => "start",
                Owned::Body(_) => "chunk",
                Owned::BodyEnd => "end",
                Owned::Response(_) => "response",
                Owned::SearchNumbers(_) | Owned::ESearchRanges { .. } => "search",
            })
            .collect();
        assert_eq!(
            kinds,
            ["start", "chunk", "end", "start", "chunk", "end", "response", "response"]
        );
        let f = fetch_of(&events[6]);
        let secs: Vec<_> = f
            .sections()
            .map(|(s, _, d)| (s.name.to_vec(), d.clone()))
            .collect();
        assert_eq!(secs[0].1, SectionData::Streamed { len: 12 });
        assert_eq!(secs[1].1.bytes(), Some(&b"abc"[..]));
        assert_eq!(secs[2].1, SectionData::Streamed { len: 11 });
        assert_eq!(events[4], Owned::Body(b"\0second-bin".to_vec()));
        assert_eq!(f.uid(), Some(4));
    }

    #[test]
    fn chunks_come_as_bytes_arrive_and_the_caller_buffer_stays_small() {
        // A 1 GiB body fed 64 KiB at a time: nothing grows.
        let len: u64 = 1 << 30;
        let mut d = ResponseDecoder::new(Limits::imap());
        let head = format!("* 1 FETCH (UID 1 RFC822 {{{len}}}\r\n");
        let (n, e) = d.decode(head.as_bytes()).unwrap();
        assert_eq!(n, head.len());
        crate::assert_matches!(e, Event::BodyStart { len: l, .. } if l == len);
        let piece = vec![b'x'; 64 * 1024];
        let mut seen = 0u64;
        while seen < len {
            let (n, e) = d.decode(&piece).unwrap();
            crate::assert_matches!(e, Event::BodyChunk(c) if c.len() == n);
            seen += n as u64;
        }
        assert_eq!(seen, len);
        assert_eq!(d.decode(&[]), Ok((0, Event::BodyEnd)));
        assert_eq!(d.decode(b")\r"), Err(DecodeError::Incomplete));
        let (n, e) = d.decode(b")\r\n").unwrap();
        assert_eq!(n, 3);
        let Event::Response(Response::Data(Data::Fetch(f))) = e else {
            panic!()
        };
        crate::assert_matches!(f.items[1], FetchItem::Section { data: SectionData::Streamed { len: l }, .. } if l == len);
        assert!(d.skeleton.capacity() < 4096);
    }

    #[test]
    fn an_empty_buffer_while_streaming_is_incomplete() {
        let mut d = ResponseDecoder::new(streaming_limits());
        d.decode(b"* 1 FETCH (BODY[] {20}\r\n").unwrap();
        assert_eq!(d.decode(b""), Err(DecodeError::Incomplete));
        assert!(d.is_streaming());
    }

    #[test]
    fn an_error_in_the_part_before_a_streamed_body_points_into_the_buffer_given() {
        // The literal length before the body is only parsed once the response is whole, in
        // the skeleton; its bytes were consumed long ago. The error must not point past the
        // three bytes of the last call (found by the fuzzer: the offset was the skeleton's).
        let mut d = ResponseDecoder::new(streaming_limits());
        let mut input = b"* 1 FETCH (X-A {99999999999999999999 BODY[] {20}\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 20]);
        let mut at = 0;
        while let Ok((n, e)) = d.decode(&input[at..]) {
            assert!(!matches!(e, Event::Response(_)), "{e:?}");
            at += n;
        }
        assert_eq!(at, input.len());
        let err = d.decode(b")\r\n").unwrap_err();
        assert!(
            matches!(err, DecodeError::LiteralTooLarge { .. }),
            "{err:?}"
        );
        assert_eq!(err.offset(), Some(0));
    }

    #[test]
    fn a_body_over_max_message_is_refused_before_streaming() {
        let limits = Limits {
            stream_threshold: 10,
            max_message: 100,
            ..Limits::imap()
        };
        let mut d = ResponseDecoder::new(limits);
        assert_eq!(
            d.decode(b"* 1 FETCH (BODY[] {101}\r\n"),
            Err(DecodeError::LiteralTooLarge {
                offset: 18,
                len: 101,
                limit: 100
            })
        );
    }

    #[test]
    fn literal_bombs() {
        for bomb in ["{18446744073709551615}", "{4294967296}", "{99999999999}"] {
            for item in ["BODY[]", "X-GM-LABELS ("] {
                let line = format!("* 1 FETCH ({item} {bomb}\r\n");
                assert!(
                    matches!(
                        parse_response(line.as_bytes(), &Limits::imap()),
                        Err(DecodeError::LiteralTooLarge { .. })
                    ),
                    "{line}"
                );
                // Through the decoder, a body literal is checked against `max_message` (4 GiB in
                // `Limits::imap()`, so exactly 4 GiB may stream); anything else against
                // `max_literal`.
                let mut d = ResponseDecoder::new(Limits::imap());
                let r = d.decode(line.as_bytes());
                if item == "BODY[]" && bomb == "{4294967296}" {
                    crate::assert_matches!(
                        r,
                        Ok((
                            _,
                            Event::BodyStart {
                                len: 4294967296,
                                ..
                            }
                        ))
                    );
                } else {
                    assert!(
                        matches!(r, Err(DecodeError::LiteralTooLarge { .. })),
                        "{line}"
                    );
                }
            }
        }
        let (n, _) = parse_response(b"* 1 FETCH (BODY[] {0}\r\n)\r\n", &Limits::imap()).unwrap();
        assert_eq!(n, 26);
    }

    #[test]
    fn refusals() {
        let lim = Limits::imap();
        crate::assert_matches!(
            parse_response(b"* 4294967296 EXISTS\r\n", &lim),
            Err(DecodeError::Invalid { offset: 2, .. })
        );
        crate::assert_matches!(
            parse_response(b"* LIST () \"/\" \"a\0b\"\r\n", &lim),
            Err(DecodeError::Invalid { offset: 16, .. })
        );
        crate::assert_matches!(
            parse_response(b"* LIST () \"/\" \"a\rb\"\r\n", &lim),
            Err(DecodeError::Invalid { .. })
        );
        crate::assert_matches!(
            parse_response(b"* OK x\ny\r\n", &lim),
            Err(DecodeError::Invalid { offset: 6, .. })
        );
        let small = Limits {
            max_line: 32,
            max_response: 40,
            ..Limits::imap()
        };
        assert_eq!(
            parse_response(b"* OK 0123456789abcdef0123456789abcdef", &small),
            Err(DecodeError::LineTooLong {
                offset: 0,
                limit: 32
            })
        );
        assert_eq!(
            parse_response(b"* 1 FETCH (BODY[] {30}\r\n", &small),
            Err(DecodeError::ResponseTooLarge {
                offset: 0,
                limit: 40
            })
        );
    }

    #[test]
    fn a_hundred_thousand_parentheses_are_too_deep() {
        let limits = Limits {
            max_line: 1 << 20,
            ..Limits::imap()
        };
        let mut line = b"* 1 FETCH (BODYSTRUCTURE ".to_vec();
        line.extend(std::iter::repeat_n(b'(', 100_000));
        line.extend_from_slice(b"\r\n");
        crate::assert_matches!(
            parse_response(&line, &limits),
            Err(DecodeError::TooDeep { limit: 64, .. })
        );
        // The same in an unknown item, skipped by shape.
        let mut line = b"* 1 FETCH (X-UNKNOWN ".to_vec();
        line.extend(std::iter::repeat_n(b'(', 100_000));
        line.extend_from_slice(b"\r\n");
        crate::assert_matches!(
            parse_response(&line, &limits),
            Err(DecodeError::TooDeep { .. })
        );
    }

    #[test]
    fn end_of_input_names_what_was_cut() {
        let (_, end) = drive(b"* 1 FETCH (BODY[] {5}\r\nab", &[], Limits::imap());
        assert_eq!(
            end,
            Some(DecodeError::Truncated {
                offset: 23,
                inside: "a literal"
            })
        );
        let (_, end) = drive(b"* 1 FETCH (BODY[] {50}\r\nab", &[], streaming_limits());
        crate::assert_matches!(end, Some(DecodeError::Truncated { inside, .. }) if inside.starts_with("a literal"));
        let (_, end) = drive(b"* OK done\r\n* LIST () \"/\" \"IN", &[], Limits::imap());
        assert_eq!(
            end,
            Some(DecodeError::Truncated {
                offset: 14,
                inside: "a quoted string"
            })
        );
        let (_, end) = drive(b"* 3 EXI", &[], Limits::imap());
        assert_eq!(
            end,
            Some(DecodeError::Truncated {
                offset: 0,
                inside: "a response line"
            })
        );
        let (_, end) = drive(
            b"* 1 FETCH (BODY[] {50}\r\n01234567890123456789012345678901234567890123456789 UID",
            &[],
            streaming_limits(),
        );
        crate::assert_matches!(end, Some(DecodeError::Truncated { inside, .. }) if inside.starts_with("a response line"));
    }

    #[test]
    fn greeting_forms() {
        let lim = Limits::imap();
        let (n, g) = parse_greeting(b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\nrest", &lim).unwrap();
        assert_eq!(n, 103);
        crate::assert_matches!(g.code, Some(Code::Capability(ref c)) if c.len() == 8);
        assert_eq!(
            parse_greeting(b"* OK Gimap ready", &lim),
            Err(DecodeError::Incomplete)
        );
        assert!(parse_greeting(b"A1 OK hi\r\n", &lim).is_err());
    }

    /// A session as Gmail sends it (code with no text, X-GM items, lower-case nothing).
    const GMAIL: &[u8] = b"* OK Gimap ready for requests from 192.0.2.1 a1mb12345678abc\r\n\
* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER\r\n\
A1 OK Thats all she wrote! a1mb12345678abc\r\n\
* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)\r\n\
* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing \\*)] Flags permitted.\r\n\
* OK [UIDVALIDITY 1]\r\n\
* 1234 EXISTS\r\n\
* 0 RECENT\r\n\
* OK [UIDNEXT 98765] Predicted next UID.\r\n\
* OK [HIGHESTMODSEQ 13637]\r\n\
A2 OK [READ-WRITE] INBOX selected. (Success)\r\n\
* 1 FETCH (X-GM-THRID 1266894439832287888 X-GM-MSGID 1278455344230334865 X-GM-LABELS (\\Important \"\\\\Sent\") UID 4 RFC822.SIZE 4096 FLAGS (\\Seen))\r\n\
* LIST (\\All \\HasNoChildren) \"/\" \"[Gmail]/All Mail\"\r\n\
A3 OK Success\r\n";

    /// Outlook / Office 365 and Exchange: codes with quoted strings, trailing spaces.
    const OUTLOOK: &[u8] = b"* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAAMQBDAEEAMAAwADAAMQAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]\r\n\
+\r\n\
RUBY0001 OK [Error=\"Microsoft.Exchange.Data.Storage.WrongServerException:Cross Server access is not allowed for mailbox 0000\" AuthResultFromPopImapEnd=0 Proxy=AM0PR01MB0001.EURPRD01.PROD.OUTLOOK.COM:1993:SSL MailboxBE=AM0PR01MB0002.EURPRD01.PROD.OUTLOOK.COM Service=Imap4] AUTHENTICATE completed.\r\n\
* STATUS INBOX (MESSAGES 0 UIDNEXT 1 ) \r\n\
* SEARCH 2 84 882 \r\n\
* OK [COPYUID 14  ]\r\n\
B00000011 OK MOVE completed.\r\n";

    /// Dovecot, iCloud, Yahoo, QQ/163, mail.ru vectors in one stream.
    const OTHERS: &[u8] = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n\
* 80 FETCH (UID 111 BODYSTRUCTURE ((\"text\" \"plain\" (\"CHARSET\" \"UTF-8\") NIL NIL NIL 1694 51 NIL NIL NIL NIL)(\"text\" \"html\" (\"CHARSET\" \"UTF-8\") NIL NIL \"quoted-printable\" 5750 77 NIL NIL NIL NIL) \"alternative\" (\"BOUNDARY\" \"Apple-Mail=_1\") NIL NIL NIL))\r\n\
* 2 FETCH (UID 3 BODY (\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL))\r\n\
* 11487 FETCH (UID 19436 )\r\n\
* LIST (\\HasNoChildren) \"/\" \"已发送\"\r\n\
* BYE\r\n\
+ \r\n\
A00000001 NO [AUTHENTICATIONFAILED] Authentication failed\r\n\
* ok [unseen 3] lower case\r\n"
        .as_bytes();

    #[test]
    fn gmail_session() {
        let (events, end) = drive(GMAIL, &[], Limits::imap());
        assert_eq!(end, None);
        assert_eq!(events.len(), 14);
        let names: Vec<_> = events
            .iter()
            .map(|e| match e {
                Owned::Response(r) => r.type_name().to_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names[..6], ["OK", "CAPABILITY", "OK", "FLAGS", "OK", "OK"]);
        crate::assert_matches!(&events[5], Owned::Response(Response::Status { code: Some(Code::UidValidity(1)), text, .. }) if text.is_empty());
        let f = fetch_of(&events[11]);
        assert_eq!((f.uid(), f.rfc822_size()), (Some(4), Some(4096)));
        crate::assert_matches!(&events[12], Owned::Response(Response::Data(Data::List(l))) if l.mailbox.name.as_deref() == Some("[Gmail]/All Mail"));
    }

    #[test]
    fn outlook_session() {
        let (events, end) = drive(OUTLOOK, &[], Limits::imap());
        assert_eq!(end, None, "{events:?}");
        assert_eq!(events.len(), 7);
        crate::assert_matches!(&events[1], Owned::Response(Response::Continuation { text, .. }) if text.is_empty());
        crate::assert_matches!(
            &events[2],
            Owned::Response(Response::Status {
                code: Some(Code::Other { .. }),
                ..
            })
        );
        crate::assert_matches!(&events[3], Owned::Response(Response::Data(Data::Status(s))) if s.items.len() == 2);
        crate::assert_matches!(&events[4], Owned::Response(Response::Data(Data::Search { numbers, .. })) if numbers.len() == 3);
    }

    #[test]
    fn dovecot_icloud_yahoo_qq_mailru_session() {
        let (events, end) = drive(OTHERS, &[], Limits::imap());
        assert_eq!(end, None, "{events:?}");
        assert_eq!(events.len(), 9);
        crate::assert_matches!(
            &events[8],
            Owned::Response(Response::Status {
                code: Some(Code::Unseen(3)),
                ..
            })
        );
    }

    /// `count` FETCH responses of a 4 KiB body each, as the benches decode.
    fn bench_shape(count: u32) -> Vec<u8> {
        let mut input = Vec::new();
        for n in 1..=count {
            input.extend_from_slice(
                format!(
                    "* {n} FETCH (UID {} RFC822.SIZE 4096 FLAGS (\\Seen) BODY[] {{4096}}\r\n",
                    n + 100
                )
                .as_bytes(),
            );
            input.extend(std::iter::repeat_n(b'a', 4096));
            input.extend_from_slice(b")\r\n");
        }
        input
    }

    #[test]
    fn the_bench_shape_decodes() {
        let input = bench_shape(20);
        let (events, end) = drive(&input, &[], Limits::imap());
        assert_eq!(end, None);
        assert_eq!(events.len(), 20);
        assert_eq!(fetch_of(&events[19]).uid(), Some(120));
    }

    #[test]
    fn courier_cyrus_zimbra_yahoo_greetings_and_id() {
        // Representative shapes of these servers' greetings and ID replies: CAPABILITY codes
        // with vendor atoms, long free text, ID parameter lists.
        let lim = Limits::imap();
        for greeting in [
            &b"* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE ACL ACL2=UNION STARTTLS] Courier-IMAP ready. Copyright 1998-2018 Double Precision, Inc.  See COPYING for distribution information.\r\n"[..],
            b"* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE STARTTLS AUTH=PLAIN SASL-IR] imap.example.org Cyrus IMAP 3.4.3 server ready\r\n",
            b"* OK imap.example.org Zimbra IMAP4rev1 server ready\r\n",
            b"* OK [CAPABILITY IMAP4rev1 ID MOVE NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT UNSELECT OBJECTID] IMAP4rev1 Hello\r\n",
        ] {
            let (n, g) = parse_greeting(greeting, &lim).unwrap();
            assert_eq!(n, greeting.len());
            assert_eq!(g.kind, crate::imap::GreetingKind::Ok);
        }
        let (_, r) = parse_response(b"* ID (\"NAME\" \"Zimbra\" \"VERSION\" \"8.8.15_GA_4177\" \"RELEASE\" \"20211112\")\r\n", &lim).unwrap();
        crate::assert_matches!(r, Response::Data(Data::Id(Some(p))) if p.len() == 3);
    }

    fn corpus() -> Vec<u8> {
        let mut all = Vec::new();
        all.extend_from_slice(GMAIL);
        all.extend_from_slice(OUTLOOK);
        all.extend_from_slice(OTHERS);
        all.extend_from_slice(b"* 7 FETCH (UID 9 BODY[]<0> {30}\r\n0123456789abcdefghijklmnopqrst FLAGS (\\Seen))\r\n");
        all.extend_from_slice(
            b"* 8 FETCH (BODY[1] {12}\r\nfirst-body-1 BODY[2] {3}\r\nabc UID 4)\r\n",
        );
        all
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(cuts in proptest::collection::vec(0usize..3000, 0..12)) {
            let input = corpus();
            let whole = drive(&input, &[], streaming_limits());
            prop_assert_eq!(whole.1.clone(), None);
            let split = drive(&input, &cuts, streaming_limits());
            prop_assert_eq!(split, whole);
        }

        #[test]
        fn byte_at_a_time_in_a_region(start in 0usize..2500) {
            let input = corpus();
            let cuts: Vec<usize> = (start..start + 200).collect();
            prop_assert_eq!(drive(&input, &cuts, streaming_limits()), drive(&input, &[], streaming_limits()));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), cuts in proptest::collection::vec(0usize..400, 0..4)) {
            let _ = drive(&bytes, &cuts, streaming_limits());
            let _ = parse_response(&bytes, &Limits::imap());
            let _ = parse_greeting(&bytes, &Limits::imap());
        }

        #[test]
        fn prefixes_of_valid_input_are_incomplete_not_invalid(cut in 0usize..3000) {
            let input = corpus();
            let cut = cut.min(input.len());
            // Decode whole responses from the prefix; whatever is left must be Incomplete.
            let mut d = ResponseDecoder::new(streaming_limits());
            let mut at = 0;
            loop {
                match d.decode(&input[at..cut]) {
                    Ok((n, _)) => at += n,
                    Err(e) => { prop_assert_eq!(e, DecodeError::Incomplete); break; }
                }
            }
        }
    }
}
