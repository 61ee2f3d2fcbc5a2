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

use crate::core::parse::to_decode_error;
use crate::{DecodeError, Limits};

use super::fetch::{section_name, Section};
use super::framing::{frame, truncated, FrameLimits, FrameState, Framed};
use super::primitive::{number, Ctx, STREAMED_MARKER};
use super::response::{greeting, response, Greeting, Response};

/// What [`ResponseDecoder::decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// One whole response.
    Response(Response<'a>),
    /// A large body section starts; its bytes follow as [`Event::BodyChunk`]s.
    BodyStart {
        /// The message sequence number of the FETCH response.
        seq: u32,
        /// The section (its `name` is the item as sent, e.g. `BODY[]`).
        section: Section<'a>,
        /// `<origin>` of a partial fetch.
        origin: Option<u32>,
        /// The literal's length: the number of bytes the chunks will add up to.
        len: u64,
    },
    /// Some bytes of the body, a slice of the buffer given to `decode` (no copy). The caller
    /// must drop them from its buffer (the `consumed` count says so) before calling again.
    BodyChunk(&'a [u8]),
    /// The body section is complete.
    BodyEnd,
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
    /// The FETCH response around streamed literals.
    skeleton: Vec<u8>,
    /// The framer's progress in the current response.
    frame: FrameState,
}

impl ResponseDecoder {
    /// A decoder enforcing `limits` (usually [`Limits::imap`]).
    pub fn new(limits: Limits) -> Self {
        ResponseDecoder {
            limits,
            state: State::Idle,
            skeleton: Vec::new(),
            frame: FrameState::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True between a [`Event::BodyStart`] and the [`Event::Response`] that closes it.
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
    pub fn decode<'a>(&'a mut self, buf: &'a [u8]) -> Result<(usize, Event<'a>), DecodeError> {
        match self.state {
            State::Idle => {
                self.skeleton.clear();
                let lim = self.frame_limits(0);
                match frame(buf, &mut self.frame, &lim) {
                    Err(DecodeError::Incomplete) => Err(DecodeError::Incomplete),
                    Err(e) => {
                        self.frame = FrameState::default();
                        Err(e)
                    }
                    Ok(Framed::Complete(end)) => {
                        self.frame = FrameState::default();
                        let ctx = self.ctx();
                        let frame = &buf[..end];
                        match response(frame, &ctx) {
                            Ok((_, r)) => Ok((end, Event::Response(r))),
                            Err(e) => Err(to_decode_error(buf, e)),
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
                }
            }
            State::Streaming { remaining } => {
                if remaining == 0 {
                    self.state = State::AfterBody;
                    self.frame = FrameState::fetch_continuation();
                    return Ok((0, Event::BodyEnd));
                }
                if buf.is_empty() {
                    return Err(DecodeError::Incomplete);
                }
                let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                self.state = State::Streaming {
                    remaining: remaining - n as u64,
                };
                Ok((n, Event::BodyChunk(&buf[..n])))
            }
            State::AfterBody => {
                let before = self.skeleton.len();
                let lim = self.frame_limits(before);
                match frame(buf, &mut self.frame, &lim) {
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
                            return Err(skeleton_offset_to_buf(e, before));
                        }
                        let (_, r) = response(&self.skeleton, &ctx)
                            .map_err(|e| to_decode_error(&self.skeleton, e))?;
                        Ok((end, Event::Response(r)))
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
                }
            }
        }
    }

    /// Appends `head` (the response up to a body literal's `{`) and the marker to the skeleton,
    /// and returns the [`Event::BodyStart`]. `name` is the item name's offset in `head`.
    fn start_stream(
        &mut self,
        head: &[u8],
        name: usize,
        data: usize,
        len: u64,
    ) -> Result<(usize, Event<'_>), DecodeError> {
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
            return Err(skeleton_offset_to_buf(e, base));
        }
        self.state = State::Streaming { remaining: len };
        let (seq, section, origin) = body_start(&self.skeleton, name_at, name_end, &ctx)?;
        Ok((
            data,
            Event::BodyStart {
                seq,
                section,
                origin,
                len,
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
    pub fn end_of_input(&self, remaining: &[u8]) -> DecodeError {
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
        }
    }
}

/// Maps an error offset in the skeleton to one in the current buffer (0 if it lies in an
/// earlier part, whose bytes the caller has already dropped).
fn skeleton_offset_to_buf(e: DecodeError, tail_start: usize) -> DecodeError {
    match &e {
        DecodeError::Invalid { offset, expected } => DecodeError::Invalid {
            offset: offset.saturating_sub(tail_start),
            expected,
        },
        _ => e.shifted(0),
    }
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
    let end = match frame(buf, &mut FrameState::default(), &stateless_limits(limits))? {
        Framed::Complete(end) => end,
        Framed::Stream { .. } => {
            return Err(DecodeError::Invalid {
                offset: 0,
                expected: "a response (streaming is off)",
            })
        }
    };
    let (_, r) = response(&buf[..end], &ctx(limits)).map_err(|e| to_decode_error(buf, e))?;
    Ok((end, r))
}

/// Parses the server greeting (`* OK`, `* PREAUTH` or `* BYE`) from the start of `buf`.
pub fn parse_greeting<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<(usize, Greeting<'a>), DecodeError> {
    let end = match frame(buf, &mut FrameState::default(), &stateless_limits(limits))? {
        Framed::Complete(end) => end,
        Framed::Stream { .. } => {
            return Err(DecodeError::Invalid {
                offset: 0,
                expected: "a greeting",
            })
        }
    };
    let (_, g) = greeting(&buf[..end], &ctx(limits)).map_err(|e| to_decode_error(buf, e))?;
    Ok((end, g))
}
