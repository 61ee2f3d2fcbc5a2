//! Finding where one response ends, without parsing it (RFC 3501 §4.3, §7.5; RFC 7888).
//!
//! A response is a line up to CRLF; if the line ends with a literal announcement (`{N}`,
//! `{N+}` or `~{N}` just before CRLF), N bytes of literal follow, then another line, and so on.
//! The framer walks lines with `memchr` and jumps over literals by their length, so it does no
//! per-byte work inside a literal. Once a whole frame is buffered the parsers run on it.
//!
//! Status lines (`+ ...`, `tag OK|NO|BAD ...`, `* OK|NO|BAD|BYE|PREAUTH ...`) never announce a
//! literal: a trailing `{5}` there is just text.
//!
//! Every length is checked before it is used: a literal against `max_literal` (or, for a body
//! section about to be streamed, `max_message`), a line against `max_line`, the whole response
//! against `max_response`. A NUL byte outside a literal is refused (RFC 3501: `CHAR8` and
//! `TEXT-CHAR` exclude it), which also keeps a server from forging the streamed-literal marker.
//!
//! A bare LF (no CR before it) ends a line only where nothing can be smuggled or misread: in a
//! response that is one line (no literal before it, none announced on it), outside a quoted
//! string. GNU Mailutils imap4d ends its tagged reply to AUTHENTICATE that way; every other bare
//! LF is refused, as RFC 3501 wants. [`FrameState::bare_lf`] tells the decoder, which parses a
//! copy of the line with CRLF and lets the caller say so in the trace.

use crate::DecodeError;

use super::response::status_keyword;

/// Where the framer has got to in one response; kept across calls so a response that arrives
/// in many reads is scanned once.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameState {
    /// Offset where the current line starts (after the previous literal, if any).
    line_start: usize,
    /// How far the current line has been searched for LF.
    scanned: usize,
    /// The first line has been classified.
    classified: bool,
    /// Status or continuation response: no literals.
    status: bool,
    /// `* n FETCH`: body literals may be streamed.
    fetch: bool,
    /// Offset of the first byte of the last literal jumped over.
    literal_data: usize,
    /// The response is one line that ended with a bare LF (accepted, see the module docs).
    bare_lf: bool,
}

impl FrameState {
    /// The state for the rest of a FETCH response after a streamed literal.
    pub(crate) fn fetch_continuation() -> Self {
        Self {
            classified: true,
            fetch: true,
            ..Self::default()
        }
    }

    /// Where the current (unfinished) line starts.
    pub(crate) fn line_start(&self) -> usize {
        self.line_start
    }

    /// The complete response just framed is one line ended by a bare LF, not CRLF.
    pub(crate) fn bare_lf(&self) -> bool {
        self.bare_lf
    }
}

/// What the framer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framed {
    /// The response ends just before this offset (its final CRLF included).
    Complete(usize),
    /// A body section literal to stream. `buf[..literal]` is the response so far (up to the
    /// `{` or `~`), the item's name starts at `name`, its bytes at `data`.
    Stream {
        /// Offset of the item name (`BODY[...]<...>`, `RFC822` ...).
        name: usize,
        /// Offset of the literal's `{` (or `~`).
        literal: usize,
        /// Offset of the literal's first byte.
        data: usize,
        /// The literal's length.
        len: u64,
    },
}

/// The bounds the framer enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameLimits {
    /// Longest line, CRLF included.
    pub max_line: usize,
    /// Largest literal kept in the response.
    pub max_literal: u64,
    /// Largest response, streamed literals excluded.
    pub max_response: usize,
    /// `(stream_threshold, max_message)` if body literals may be streamed.
    pub stream: Option<(u64, u64)>,
    /// Bytes of this response already held elsewhere (the skeleton of a streamed response).
    pub base: usize,
}

/// Frames one response starting at `buf[0]`, resuming from `st`.
///
/// Returns [`DecodeError::Incomplete`] while the response is not all there; `st` then records
/// the progress, and the next call must pass the same bytes (and more) from the same start.
pub(crate) fn frame(
    buf: &[u8],
    st: &mut FrameState,
    lim: &FrameLimits,
) -> Result<Framed, DecodeError> {
    loop {
        let start = st.line_start;
        if start > buf.len() {
            // Inside a literal whose bytes have not all arrived.
            return Err(DecodeError::Incomplete);
        }
        let from = st.scanned.max(start);
        let window_end = buf.len().min(start.saturating_add(lim.max_line));
        let found = if from < window_end {
            memchr::memchr2(b'\n', 0, &buf[from..window_end]).map(|i| from + i)
        } else {
            None
        };
        let Some(p) = found else {
            if buf.len() - start >= lim.max_line {
                return Err(DecodeError::LineTooLong {
                    offset: start,
                    limit: lim.max_line,
                });
            }
            st.scanned = window_end;
            return Err(DecodeError::Incomplete);
        };
        if buf[p] == 0 {
            return Err(DecodeError::Invalid {
                offset: p,
                expected: "no NUL byte outside a literal",
            });
        }
        let bare_lf = p == start || buf[p - 1] != b'\r';
        if bare_lf {
            bare_lf_allowed(buf, start, p, st, lim)?;
        }
        let line_end = p + 1;
        if lim.base.saturating_add(line_end) > lim.max_response {
            return Err(DecodeError::ResponseTooLarge {
                offset: 0,
                limit: lim.max_response,
            });
        }
        let line = &buf[start..if bare_lf { p } else { p - 1 }];
        if !st.classified {
            st.classified = true;
            st.status = is_status_line(line);
            st.fetch = !st.status && is_fetch_line(line);
        }
        if st.status {
            st.bare_lf = bare_lf;
            return Ok(Framed::Complete(line_end));
        }
        let Some((at, len)) = literal_announcement(line) else {
            st.bare_lf = bare_lf;
            return Ok(Framed::Complete(line_end));
        };
        if bare_lf {
            return Err(DecodeError::Invalid {
                offset: p,
                expected: "CR before LF after a literal announcement (bare LF line ending)",
            });
        }
        let literal = start + at;
        if let Some((threshold, max_message)) = lim.stream {
            if st.fetch && len > threshold {
                if let Some(name) = body_item_name(&line[..at]) {
                    if len > max_message {
                        return Err(DecodeError::LiteralTooLarge {
                            offset: literal,
                            len,
                            limit: max_message,
                        });
                    }
                    return Ok(Framed::Stream {
                        name: start + name,
                        literal,
                        data: line_end,
                        len,
                    });
                }
            }
        }
        if len > lim.max_literal {
            return Err(DecodeError::LiteralTooLarge {
                offset: literal,
                len,
                limit: lim.max_literal,
            });
        }
        let next = (line_end as u64).saturating_add(len);
        if (lim.base as u64).saturating_add(next) > lim.max_response as u64 {
            return Err(DecodeError::ResponseTooLarge {
                offset: 0,
                limit: lim.max_response,
            });
        }
        // Fits in usize: it is at most max_response.
        let next = usize::try_from(next).unwrap_or(usize::MAX);
        st.literal_data = line_end;
        st.line_start = next;
        st.scanned = next;
    }
}

/// Whether the bare LF at `lf` may end the line that starts at `start`: only in a response of
/// one line (not after a literal, not in the rest of a streamed FETCH) and outside a quoted
/// string. Whether the line announces a literal is checked by the caller, once it knows.
fn bare_lf_allowed(
    buf: &[u8],
    start: usize,
    lf: usize,
    st: &FrameState,
    lim: &FrameLimits,
) -> Result<(), DecodeError> {
    let refuse = |expected| {
        Err(DecodeError::Invalid {
            offset: lf,
            expected,
        })
    };
    if start != 0 || lim.base != 0 || (st.classified && st.fetch) {
        return refuse("CR before LF after a literal (bare LF line ending)");
    }
    if open_quote(&buf[start..lf]).is_some() {
        return refuse("CR before LF (a bare LF inside a quoted string)");
    }
    Ok(())
}

/// The offset of a quoted string left open at the end of `line`, if any.
fn open_quote(line: &[u8]) -> Option<usize> {
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < line.len() {
        match (line[i], open) {
            (b'"', None) => open = Some(i),
            (b'"', Some(_)) => open = None,
            (b'\\', Some(_)) => i += 1,
            _ => {}
        }
        i += 1;
    }
    open
}

/// `+ ...`, `tag OK|NO|BAD ...`, `* OK|NO|BAD|BYE|PREAUTH ...` (keywords case-insensitive).
fn is_status_line(line: &[u8]) -> bool {
    if line.first() == Some(&b'+') {
        return true;
    }
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    status_keyword(&line[sp + 1..]).is_some()
}

/// `* n FETCH ...` (case-insensitive).
fn is_fetch_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"* ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let rest = &rest[digits..];
    rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b" FETCH ")
}

/// If `line` (CRLF excluded) ends with `{N}`, `{N+}` or `~{N}`: the offset of its `{` (or `~`)
/// and N. A length too large for 64 bits is reported as `u64::MAX`, which every limit refuses.
pub(crate) fn literal_announcement(line: &[u8]) -> Option<(usize, u64)> {
    let body = line.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let open = body.len().checked_sub(digits + 1)?;
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let len = body[open + 1..].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    let at = if open > 0 && body[open - 1] == b'~' {
        open - 1
    } else {
        open
    };
    Some((at, len.unwrap_or(u64::MAX)))
}

/// If `prefix` (the line up to a literal) ends with a body section item name and a space —
/// `BODY[...]`, `BINARY[...]` (each with an optional `<origin>`), `RFC822`, `RFC822.HEADER`,
/// `RFC822.TEXT` — the offset where the name starts.
fn body_item_name(prefix: &[u8]) -> Option<usize> {
    let p = prefix.strip_suffix(b" ")?;
    let p_origin = if p.ends_with(b">") {
        &p[..memchr::memrchr(b'<', p)?]
    } else {
        p
    };
    let (keyword_end, bracketed) = if p_origin.ends_with(b"]") {
        (memchr::memrchr(b'[', p_origin)?, true)
    } else {
        (p_origin.len(), false)
    };
    let kw_len = p_origin[..keyword_end]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'.')
        .count();
    let start = keyword_end - kw_len;
    if !matches!(
        start.checked_sub(1).map(|i| p_origin[i]),
        Some(b' ') | Some(b'(')
    ) {
        return None;
    }
    let keyword = &p_origin[start..keyword_end];
    let ok = if bracketed {
        keyword.eq_ignore_ascii_case(b"BODY") || keyword.eq_ignore_ascii_case(b"BINARY")
    } else {
        [&b"RFC822"[..], b"RFC822.HEADER", b"RFC822.TEXT"]
            .iter()
            .any(|k| keyword.eq_ignore_ascii_case(k))
    };
    ok.then_some(start)
}

/// What an unfinished frame was in the middle of when the stream ended: used for
/// [`DecodeError::Truncated`]. `st` is the framer's state for `buf`.
pub(crate) fn truncated(buf: &[u8], mut st: FrameState, lim: &FrameLimits) -> DecodeError {
    match frame(buf, &mut st, lim) {
        Err(DecodeError::Incomplete) => {}
        Err(e) => return e,
        Ok(_) => {
            return DecodeError::Truncated {
                offset: 0,
                inside: "a response (a whole response was left undecoded)",
            }
        }
    }
    let start = st.line_start();
    if start > buf.len() {
        return DecodeError::Truncated {
            offset: st.literal_data,
            inside: "a literal",
        };
    }
    // An odd number of unescaped quotes on the partial line: inside a quoted string.
    match open_quote(&buf[start..]) {
        Some(q) => DecodeError::Truncated {
            offset: start + q,
            inside: "a quoted string",
        },
        None => DecodeError::Truncated {
            offset: start,
            inside: "a response line",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_only_digits_and_brace_is_no_literal() {
        // Found by the fuzzer: `{100}` with nothing before the `{` used to underflow.
        assert_eq!(literal_announcement(b"100}"), None);
        assert_eq!(literal_announcement(b"{100}"), Some((0, 100)));
        assert_eq!(literal_announcement(b"~{7}"), Some((0, 7)));
        assert_eq!(literal_announcement(b"x {7+}"), Some((2, 7)));
    }

    const LIM: FrameLimits = FrameLimits {
        max_line: 100,
        max_literal: 1000,
        max_response: 5000,
        stream: None,
        base: 0,
    };

    fn run(buf: &[u8], lim: &FrameLimits) -> Result<Framed, DecodeError> {
        frame(buf, &mut FrameState::default(), lim)
    }

    #[test]
    fn one_line() {
        assert_eq!(run(b"* 1 EXISTS\r\n* 2", &LIM), Ok(Framed::Complete(12)));
        assert_eq!(run(b"* 1 EXISTS\r", &LIM), Err(DecodeError::Incomplete));
    }

    #[test]
    fn literals_are_jumped_over() {
        let buf = b"* 1 FETCH (BODY[] {5}\r\n)\r\n\r\n)\r\nnext";
        // The literal's bytes contain CRLF and `)`: they are skipped by length.
        assert_eq!(run(buf, &LIM), Ok(Framed::Complete(buf.len() - 4)));
        assert_eq!(run(&buf[..25], &LIM), Err(DecodeError::Incomplete));
        assert_eq!(
            run(b"* 1 FETCH (BODY[] {0}\r\n)\r\n", &LIM),
            Ok(Framed::Complete(26))
        );
        assert_eq!(
            run(b"* 1 FETCH (BINARY[] ~{2}\r\n\0\n)\r\n", &LIM),
            Ok(Framed::Complete(31))
        );
        assert_eq!(
            run(b"* 1 FETCH (BODY[] {2+}\r\nab)\r\n", &LIM),
            Ok(Framed::Complete(29))
        );
    }

    #[test]
    fn literal_at_the_end_of_the_buffer_is_incomplete() {
        assert_eq!(
            run(b"* 1 FETCH (BODY[] {5}\r\n", &LIM),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(
            run(b"* 1 FETCH (BODY[] {5}\r\nhello", &LIM),
            Err(DecodeError::Incomplete)
        );
    }

    #[test]
    fn status_lines_never_announce_literals() {
        assert_eq!(run(b"* OK see {5}\r\nxx", &LIM), Ok(Framed::Complete(14)));
        assert_eq!(run(b"a1 no {5}\r\n", &LIM), Ok(Framed::Complete(11)));
        assert_eq!(run(b"+ {5}\r\n", &LIM), Ok(Framed::Complete(7)));
    }

    #[test]
    fn literal_bombs_are_refused_before_anything() {
        for (bomb, len) in [
            (
                &b"* 1 FETCH (BODY[] {18446744073709551615}\r\n"[..],
                u64::MAX,
            ),
            (b"* 1 FETCH (BODY[] {4294967296}\r\n", 4294967296),
            (b"* 1 FETCH (BODY[] {99999999999}\r\n", 99999999999),
            (b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n", u64::MAX),
        ] {
            assert_eq!(
                run(bomb, &LIM),
                Err(DecodeError::LiteralTooLarge {
                    offset: 18,
                    len,
                    limit: 1000
                })
            );
        }
    }

    #[test]
    fn nul_and_bare_lf_and_long_lines() {
        crate::assert_matches!(
            run(b"* OK a\0b\r\n", &LIM),
            Err(DecodeError::Invalid { offset: 6, .. })
        );
        // A bare LF inside a quoted string is refused; see `bare_lf_*` for where it ends a line.
        crate::assert_matches!(
            run(b"* 1 LIST () \"/\" \"a\nb\"\r\n", &LIM),
            Err(DecodeError::Invalid { offset: 18, .. })
        );
        assert_eq!(
            run(&[b'x'; 100], &LIM),
            Err(DecodeError::LineTooLong {
                offset: 0,
                limit: 100
            })
        );
        // A NUL inside a literal is data.
        assert!(run(b"* 1 FETCH (BODY[] {1}\r\n\0)\r\n", &LIM).is_ok());
    }

    #[test]
    fn bare_lf_ends_a_one_line_response() {
        // GNU Mailutils imap4d: the tagged reply to AUTHENTICATE.
        let buf = b"A0002 OK AUTHENTICATE Completed\nA0003";
        let mut st = FrameState::default();
        assert_eq!(frame(buf, &mut st, &LIM), Ok(Framed::Complete(32)));
        assert!(st.bare_lf());
        let mut st = FrameState::default();
        assert_eq!(
            frame(b"* 3 EXISTS\n", &mut st, &LIM),
            Ok(Framed::Complete(11))
        );
        assert!(st.bare_lf());
        let mut st = FrameState::default();
        assert_eq!(
            frame(b"* 3 EXISTS\r\n", &mut st, &LIM),
            Ok(Framed::Complete(12))
        );
        assert!(!st.bare_lf());
        // An empty line that is only LF is accepted as one (and the parser refuses it).
        assert_eq!(run(b"\n", &LIM), Ok(Framed::Complete(1)));
    }

    #[test]
    fn bare_lf_is_refused_where_it_could_be_misread() {
        let refused = |buf: &[u8], offset: usize| {
            assert!(
                matches!(run(buf, &LIM), Err(DecodeError::Invalid { offset: o, .. }) if o == offset),
                "{:?}: {:?}",
                String::from_utf8_lossy(buf),
                run(buf, &LIM)
            );
        };
        // Inside a quoted string: the rest could pose as a response of its own.
        refused(b"* 1 FETCH (ENVELOPE (\"x\nA1 OK hi\" NIL))\r\n", 23);
        // On a line that announces a literal: where does the literal start?
        refused(b"* 1 FETCH (BODY[] {5}\nhello)\r\n", 21);
        // After a literal.
        refused(b"* 1 FETCH (BODY[] {5}\r\nhello)\n", 29);
        // The rest of a streamed FETCH.
        let lim = FrameLimits { base: 40, ..LIM };
        crate::assert_matches!(
            frame(b" UID 3)\n", &mut FrameState::fetch_continuation(), &lim),
            Err(DecodeError::Invalid { offset: 7, .. })
        );
        // A literal's bytes may hold any LF: they are jumped over.
        assert!(run(b"* 1 FETCH (BODY[] {3}\r\na\nb)\r\n", &LIM).is_ok());
    }

    #[test]
    fn response_size_is_bounded() {
        let lim = FrameLimits {
            max_response: 30,
            ..LIM
        };
        assert_eq!(
            run(b"* 1 FETCH (BODY[] {20}\r\n", &lim),
            Err(DecodeError::ResponseTooLarge {
                offset: 0,
                limit: 30
            })
        );
    }

    #[test]
    fn streaming_only_body_items_in_fetch() {
        let lim = FrameLimits {
            stream: Some((10, 1 << 20)),
            ..LIM
        };
        let buf = b"* 12 FETCH (UID 3 BODY[1.2]<0> {500}\r\n";
        assert_eq!(
            run(buf, &lim),
            Ok(Framed::Stream {
                name: 18,
                literal: 31,
                data: buf.len(),
                len: 500
            })
        );
        crate::assert_matches!(
            run(b"* 1 fetch (rfc822 {500}\r\n", &lim),
            Ok(Framed::Stream { name: 11, .. })
        );
        // Small: inline. Not a body item: inline (and bounded by max_literal).
        assert_eq!(
            run(b"* 1 FETCH (BODY[] {5}\r\n", &lim),
            Err(DecodeError::Incomplete)
        );
        crate::assert_matches!(
            run(b"* 1 FETCH (X-GM-LABELS ({5000}\r\n", &lim),
            Err(DecodeError::LiteralTooLarge { limit: 1000, .. })
        );
        assert_eq!(
            run(b"* LIST () \"/\" {5000}\r\n", &lim),
            Err(DecodeError::LiteralTooLarge {
                offset: 14,
                len: 5000,
                limit: 1000
            })
        );
        // Over max_message.
        let small = FrameLimits {
            stream: Some((10, 100)),
            ..LIM
        };
        assert_eq!(
            run(b"* 1 FETCH (BODY[] {500}\r\n", &small),
            Err(DecodeError::LiteralTooLarge {
                offset: 18,
                len: 500,
                limit: 100
            })
        );
    }

    #[test]
    fn body_item_names() {
        assert_eq!(body_item_name(b"* 1 FETCH (BODY[] "), Some(11));
        assert_eq!(
            body_item_name(b"(UID 1 BODY[HEADER.FIELDS (A B)]<5> "),
            Some(7)
        );
        assert_eq!(body_item_name(b"(binary[1] "), Some(1));
        assert_eq!(body_item_name(b"(RFC822.TEXT "), Some(1));
        assert_eq!(body_item_name(b"(XBODY[] "), None);
        assert_eq!(body_item_name(b"(\"BODY[]\" "), None);
        assert_eq!(body_item_name(b"(BODY[]"), None);
    }

    #[test]
    fn resumes_where_it_stopped() {
        let buf = b"* 1 FETCH (BODY[] {3}\r\nabc UID 1)\r\n";
        let mut st = FrameState::default();
        for cut in 0..buf.len() {
            assert_eq!(
                frame(&buf[..cut], &mut st, &LIM),
                Err(DecodeError::Incomplete)
            );
        }
        assert_eq!(frame(buf, &mut st, &LIM), Ok(Framed::Complete(buf.len())));
    }

    #[test]
    fn truncation_names_what_was_unfinished() {
        let t = |b: &[u8]| truncated(b, FrameState::default(), &LIM);
        assert_eq!(
            t(b"* 1 FETCH (BODY[] {5}\r\nab"),
            DecodeError::Truncated {
                offset: 23,
                inside: "a literal"
            }
        );
        assert_eq!(
            t(b"* OK \"abc"),
            DecodeError::Truncated {
                offset: 5,
                inside: "a quoted string"
            }
        );
        assert_eq!(
            t(b"* OK abc"),
            DecodeError::Truncated {
                offset: 0,
                inside: "a response line"
            }
        );
    }
}
