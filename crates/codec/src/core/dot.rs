//! Dot-stuffing (SMTP DATA, RFC 5321 §4.5.2) and dot-unstuffing (POP3 multi-line responses,
//! RFC 1939 §3).
//!
//! Both protocols end a message body with a line holding a single `.`; a body line that starts
//! with `.` gets one more `.` in front of it on the wire. Both directions here are streaming
//! state machines, so a body of any size passes through in chunks with bounded memory, and any
//! split of the input into chunks gives the same result.
//!
//! ```text
//! body:  "Hi\r\n.hidden\r\n"      wire: "Hi\r\n..hidden\r\n.\r\n"
//!          DotStuffer ──────────────▶      ◀────────────── DotUnstuffer
//! ```
//!
//! Line endings are strict on both sides, because a mismatch between the client's idea of where
//! a body ends and the server's is exactly how SMTP smuggling (CVE-2023-51764) works:
//! - [`DotUnstuffer`] only recognises CRLF as a line end: `\n.\n` or `\r.\r` are body bytes.
//! - [`DotStuffer`] turns every bare CR and bare LF into CRLF, so it never emits one.

use std::ops::Range;

use crate::DecodeError;

/// One step of [`DotUnstuffer::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unstuffed<'a> {
    /// Body bytes, already unstuffed: a sub-slice of the input buffer.
    Data(&'a [u8]),
    /// The terminating `.` CRLF line was consumed; the body is complete.
    End,
}

/// Streaming dot-unstuffer for a POP3 multi-line response body (RFC 1939 §3).
///
/// > If any line of the multi-line response begins with the termination octet, the line is
/// > "byte-stuffed" by pre-pending the termination octet to that line of the response. [...]
/// > When examining a multi-line response, the client checks to see if the line begins with the
/// > termination octet. If so and if octets other than CRLF follow, the first octet of the line
/// > (the termination octet) is stripped away. If so and if CRLF immediately follows the
/// > termination character, then the response from the POP server is ended and the line
/// > containing ".CRLF" is not considered part of the multi-line response.
///
/// Feed it the bytes that follow the `+OK` status line. Each call returns one run of body bytes
/// borrowed from the input, or [`Unstuffed::End`]. The CRLF before the terminator belongs to the
/// body. A line start is only ever after CRLF; a line `.x` (unstuffed `x`), which RFC 1939 does
/// not allow servers to send, is unstuffed as the RFC tells clients to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DotUnstuffer {
    /// The next byte starts a line (true at the start of the body).
    at_line_start: bool,
    /// The last byte handed out was a CR (so an LF at the start of the next buffer ends a line).
    after_cr: bool,
}

impl Default for DotUnstuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotUnstuffer {
    /// A decoder positioned at the start of a body (just after the status line's CRLF).
    pub const fn new() -> Self {
        Self {
            at_line_start: true,
            after_cr: false,
        }
    }

    /// Decodes the next run of body bytes from `buf`, which starts at the first unread byte.
    ///
    /// Returns the bytes consumed and either a run of body bytes (a sub-slice of `buf`, never
    /// empty) or [`Unstuffed::End`]. [`DecodeError::Incomplete`] means nothing can be decided
    /// yet: `buf` is empty, or a line starts with `.` or `.\r` and the next byte is missing.
    /// Unlike other decoders, the consumed bytes must be dropped before the next call: the state
    /// remembers what they were. After [`Unstuffed::End`] the decoder is ready for a new body.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<(usize, Unstuffed<'a>), DecodeError> {
        let (consumed, data) = self.decode_range(buf)?;
        Ok((
            consumed,
            data.map_or(Unstuffed::End, |range| Unstuffed::Data(&buf[range])),
        ))
    }

    /// [`DotUnstuffer::decode`] with the body bytes given as their range in `buf` (`None` for
    /// the end), for decoders that pass ranges on.
    pub(crate) fn decode_range(
        &mut self,
        buf: &[u8],
    ) -> Result<(usize, Option<Range<usize>>), DecodeError> {
        if buf.is_empty() {
            return Err(DecodeError::Incomplete);
        }
        let mut start = 0;
        if self.at_line_start && buf[0] == b'.' {
            match buf.get(1..3) {
                Some(b"\r\n") => {
                    *self = Self::new();
                    return Ok((3, None));
                }
                // `.` or `.\r` alone: it may still become the terminator.
                _ if buf.len() < 2 || (buf.len() < 3 && buf[1] == b'\r') => {
                    return Err(DecodeError::Incomplete);
                }
                // A stuffed line: drop the leading dot.
                _ => start = 1,
            }
        }
        // The byte before buf[start], as far as CRLF detection is concerned.
        let initial_prev_cr = start == 0 && !self.at_line_start && self.after_cr;
        let mut prev_cr = initial_prev_cr;
        let mut i = start;
        let end = loop {
            match memchr::memchr(b'\n', &buf[i..]) {
                None => break buf.len(),
                Some(k) => {
                    let lf = i + k;
                    let is_crlf = if lf > start {
                        buf[lf - 1] == b'\r'
                    } else {
                        prev_cr
                    };
                    prev_cr = false;
                    i = lf + 1;
                    // A line that starts with `.` is handled by the next call.
                    if is_crlf && (i == buf.len() || buf[i] == b'.') {
                        break i;
                    }
                }
            }
        };
        let data = &buf[start..end];
        // `data` is never empty: with start == 1, buf[1] exists.
        self.at_line_start = ends_line(initial_prev_cr, data);
        self.after_cr = data.last() == Some(&b'\r');
        Ok((end, Some(start..end)))
    }

    /// Call when the stream ended: a body not yet terminated is [`DecodeError::Truncated`].
    ///
    /// The offset is 0: the start of the bytes not yet consumed.
    pub fn end_of_input(&self) -> DecodeError {
        DecodeError::Truncated {
            offset: 0,
            inside: "a multi-line response body",
        }
    }
}

/// True if `data` ends with a CRLF line ending; `prev_cr` says whether the byte before `data` was
/// a CR (for an LF that starts `data`).
fn ends_line(prev_cr: bool, data: &[u8]) -> bool {
    match data {
        [.., b'\r', b'\n'] => true,
        [b'\n'] => prev_cr,
        _ => false,
    }
}

/// Unstuffs a whole body held in memory: `(body, consumed)`, where `consumed` includes the
/// terminator. [`DecodeError::Incomplete`] if the terminator has not arrived.
pub fn unstuff_all(buf: &[u8]) -> Result<(Vec<u8>, usize), DecodeError> {
    let mut unstuffer = DotUnstuffer::new();
    let mut body = Vec::with_capacity(buf.len());
    let mut pos = 0;
    loop {
        match unstuffer.decode(&buf[pos..])? {
            (n, Unstuffed::Data(data)) => {
                body.extend_from_slice(data);
                pos += n;
            }
            (n, Unstuffed::End) => return Ok((body, pos + n)),
        }
    }
}

/// Streaming dot-stuffer for an SMTP DATA body (RFC 5321 §4.5.2), normalising line endings.
///
/// > Before sending a line of mail text, the SMTP client checks the first character of the line.
/// > If it is a period, one additional period is inserted at the beginning of the line.
///
/// and (RFC 5321 §2.3.8) "the SMTP client MUST NOT send bare CR or LF": every CRLF, bare CR and
/// bare LF in the input becomes CRLF (a CR at the end of one chunk and an LF at the start of the
/// next are one line ending). [`DotStuffer::finish`] ends the body with CRLF if it did not end
/// with one and appends the `.` CRLF terminator, so no input can end the DATA phase early
/// (SMTP smuggling, CVE-2023-51764).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DotStuffer {
    /// The next input byte starts a line (true at the start of the body).
    at_line_start: bool,
    /// The last input byte was a CR, already written as CRLF: an LF now is part of it.
    skip_lf: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// A stuffer at the start of a body.
    pub const fn new() -> Self {
        Self {
            at_line_start: true,
            skip_lf: false,
        }
    }

    /// Stuffs the next chunk of the body, appending the wire bytes to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 2);
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            if b == b'\n' {
                if !self.skip_lf {
                    out.extend_from_slice(b"\r\n");
                }
                self.skip_lf = false;
                self.at_line_start = true;
                i += 1;
                continue;
            }
            if b == b'\r' {
                out.extend_from_slice(b"\r\n");
                self.skip_lf = true;
                self.at_line_start = true;
                i += 1;
                continue;
            }
            if self.at_line_start && b == b'.' {
                out.push(b'.');
            }
            let run_end = memchr::memchr2(b'\r', b'\n', &input[i..]).map_or(input.len(), |k| i + k);
            out.extend_from_slice(&input[i..run_end]);
            self.at_line_start = false;
            self.skip_lf = false;
            i = run_end;
        }
    }

    /// Ends the body: CRLF if it did not end with a line ending, then the `.` CRLF terminator.
    /// An empty body gives just the terminator.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Stuffs a whole body held in memory, terminator included.
pub fn stuff_all(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    let mut stuffer = DotStuffer::new();
    stuffer.push(body, &mut out);
    stuffer.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `wire` in the given chunks to one unstuffer, as a transport would: unconsumed bytes
    /// stay buffered and are given again with the next chunk. Returns the body and whether the
    /// terminator was seen, and what followed it.
    fn unstuff_chunked(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, bool, Vec<u8>) {
        let mut unstuffer = DotUnstuffer::new();
        let mut body = Vec::new();
        let mut buffered: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(wire.len())).collect();
        cuts.sort_unstable();
        cuts.push(wire.len());
        for cut in cuts {
            buffered.extend_from_slice(&wire[fed..cut.max(fed)]);
            fed = cut.max(fed);
            loop {
                match unstuffer.decode(&buffered) {
                    Ok((n, Unstuffed::Data(d))) => {
                        assert!(!d.is_empty());
                        body.extend_from_slice(d);
                        buffered.drain(..n);
                    }
                    Ok((n, Unstuffed::End)) => {
                        buffered.drain(..n);
                        buffered.extend_from_slice(&wire[fed..]);
                        return (body, true, buffered);
                    }
                    Err(DecodeError::Incomplete) => break,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
        (body, false, buffered)
    }

    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let (body, consumed) = unstuff_all(wire).unwrap();
        assert_eq!(consumed, wire.len());
        body
    }

    /// Every CR, LF and CRLF as CRLF, plus a final CRLF if the text does not end with one.
    fn normalise_crlf(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                    if input.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b'\n' => out.extend_from_slice(b"\r\n"),
                b => out.push(b),
            }
            i += 1;
        }
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn rfc1939_examples_unstuff() {
        assert_eq!(unstuff(b"..x\r\n.\r\n"), b".x\r\n");
        assert_eq!(unstuff(b"..\r\n.\r\n"), b".\r\n");
        assert_eq!(unstuff(b"...\r\n.\r\n"), b"..\r\n");
        assert_eq!(unstuff(b"a\r\n..b\r\nc\r\n.\r\n"), b"a\r\n.b\r\nc\r\n");
        assert_eq!(unstuff(b".\r\n"), b"");
        assert_eq!(unstuff(b"\r\n.\r\n"), b"\r\n");
    }

    #[test]
    fn single_dot_then_text_is_unstuffed_as_the_rfc_says() {
        // Not allowed from a server, but RFC 1939 tells the client to strip the dot.
        assert_eq!(unstuff(b".x\r\n.\r\n"), b"x\r\n");
        assert_eq!(unstuff(b"a\r\n.x\r\n.\r\n"), b"a\r\nx\r\n");
    }

    #[test]
    fn bare_lf_terminator_is_body_data() {
        // threat model #51: only CRLF . CRLF ends the body.
        assert_eq!(
            unstuff_all(b"a\n.\nb\r\n"),
            Err(DecodeError::Incomplete),
            "\\n.\\n must not end the body"
        );
        assert_eq!(unstuff(b"a\n.\nb\r\n.\r\n"), b"a\n.\nb\r\n");
        assert_eq!(unstuff(b"a\r.\rb\r\n.\r\n"), b"a\r.\rb\r\n");
        // `.\n` at a line start is a stuffed line whose dot is dropped, not a terminator.
        assert_eq!(unstuff(b".\nx\r\n.\r\n"), b"\nx\r\n");
        assert_eq!(unstuff(b"a\r\n.\r\r\n.\r\n"), b"a\r\n\r\r\n");
    }

    #[test]
    fn runs_are_borrowed_and_stop_before_dot_lines() {
        let wire = b"one\r\ntwo\r\n..three\r\n.\r\nrest";
        let mut u = DotUnstuffer::new();
        assert_eq!(
            u.decode(wire),
            Ok((10, Unstuffed::Data(&b"one\r\ntwo\r\n"[..])))
        );
        assert_eq!(
            u.decode(&wire[10..]),
            Ok((9, Unstuffed::Data(&b".three\r\n"[..])))
        );
        assert_eq!(u.decode(&wire[19..]), Ok((3, Unstuffed::End)));
        assert_eq!(&wire[22..], b"rest");
        // Ready for the next body.
        assert_eq!(u, DotUnstuffer::new());
    }

    #[test]
    fn terminator_split_at_every_point_is_incomplete_not_data() {
        let mut u = DotUnstuffer::new();
        assert_eq!(u.decode(b"x\r\n"), Ok((3, Unstuffed::Data(&b"x\r\n"[..]))));
        assert_eq!(u.decode(b""), Err(DecodeError::Incomplete));
        assert_eq!(u.decode(b"."), Err(DecodeError::Incomplete));
        assert_eq!(u.decode(b".\r"), Err(DecodeError::Incomplete));
        assert_eq!(u.decode(b".\r\n"), Ok((3, Unstuffed::End)));
        // CR and LF of a line ending in two reads.
        let mut u = DotUnstuffer::new();
        assert_eq!(u.decode(b"x\r"), Ok((2, Unstuffed::Data(&b"x\r"[..]))));
        assert_eq!(u.decode(b"\n"), Ok((1, Unstuffed::Data(&b"\n"[..]))));
        assert_eq!(u.decode(b".\r\n"), Ok((3, Unstuffed::End)));
        // An LF after a non-CR is no line ending, even across reads.
        let mut u = DotUnstuffer::new();
        assert_eq!(u.decode(b"x"), Ok((1, Unstuffed::Data(&b"x"[..]))));
        assert_eq!(
            u.decode(b"\n.\r\n"),
            Ok((4, Unstuffed::Data(&b"\n.\r\n"[..])))
        );
    }

    #[test]
    fn end_of_input_is_truncated() {
        assert_eq!(
            DotUnstuffer::new().end_of_input(),
            DecodeError::Truncated {
                offset: 0,
                inside: "a multi-line response body"
            }
        );
    }

    #[test]
    fn stuffer_doubles_leading_dots_everywhere() {
        // threat model #60: first line, lines after blank lines, after a double CRLF.
        assert_eq!(stuff_all(b".a\r\n"), b"..a\r\n.\r\n");
        assert_eq!(stuff_all(b"a\r\n\r\n.b\r\n"), b"a\r\n\r\n..b\r\n.\r\n");
        assert_eq!(stuff_all(b"a\r\n.\r\nb"), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(stuff_all(b"x.y\r\n"), b"x.y\r\n.\r\n");
    }

    #[test]
    fn stuffer_normalises_bare_cr_and_lf() {
        // threat model #61, SMTP smuggling.
        assert_eq!(stuff_all(b"a\n.\nb"), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(stuff_all(b"a\r.\rb"), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(stuff_all(b"a\r\r\nb"), b"a\r\n\r\nb\r\n.\r\n");
        assert_eq!(stuff_all(b"a\n\rb"), b"a\r\n\r\nb\r\n.\r\n");
    }

    #[test]
    fn stuffer_ends_the_body() {
        assert_eq!(stuff_all(b""), b".\r\n");
        assert_eq!(stuff_all(b"a"), b"a\r\n.\r\n");
        assert_eq!(stuff_all(b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(stuff_all(b"a\r"), b"a\r\n.\r\n");
    }

    #[test]
    fn stuffer_joins_cr_and_lf_across_chunks() {
        let mut out = Vec::new();
        let mut s = DotStuffer::new();
        s.push(b"a\r", &mut out);
        s.push(b"\n.b", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"a\r\n..b\r\n.\r\n");
    }

    fn stuff_chunked(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut s = DotStuffer::new();
        let mut from = 0;
        for cut in cuts {
            s.push(&input[from..cut], &mut out);
            from = cut;
        }
        s.push(&input[from..], &mut out);
        s.finish(&mut out);
        out
    }

    fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Mostly the bytes that matter, so that dots, CRs and LFs meet often.
        proptest::collection::vec(
            prop_oneof![
                Just(b'.'),
                Just(b'\r'),
                Just(b'\n'),
                Just(b'a'),
                any::<u8>()
            ],
            0..64,
        )
    }

    proptest! {
        #[test]
        fn stuffed_output_has_no_bare_cr_or_lf_and_no_early_end(
            input in body_bytes(),
            cuts in proptest::collection::vec(0usize..64, 0..4),
        ) {
            let wire = stuff_chunked(&input, &cuts);
            prop_assert!(wire.ends_with(b".\r\n"));
            for (i, &b) in wire.iter().enumerate() {
                if b == b'\r' {
                    prop_assert_eq!(wire.get(i + 1), Some(&b'\n'));
                }
                if b == b'\n' {
                    prop_assert!(i > 0 && wire[i - 1] == b'\r');
                }
            }
            let body = &wire[..wire.len() - 3];
            prop_assert!(memchr::memmem::find(body, b"\r\n.\r\n").is_none());
            prop_assert!(!body.starts_with(b".\r\n"));
        }

        #[test]
        fn unstuff_of_stuff_is_the_normalised_body(
            input in body_bytes(),
            cuts in proptest::collection::vec(0usize..64, 0..4),
        ) {
            let wire = stuff_chunked(&input, &cuts);
            prop_assert_eq!(&wire, &stuff_all(&input));
            let (body, consumed) = unstuff_all(&wire).unwrap();
            prop_assert_eq!(consumed, wire.len());
            prop_assert_eq!(body, normalise_crlf(&input));
        }

        #[test]
        fn unstuffing_any_split_gives_the_same_body(
            input in body_bytes(),
            raw_tail in proptest::collection::vec(any::<u8>(), 0..8),
            cuts in proptest::collection::vec(0usize..80, 0..5),
        ) {
            let mut wire = stuff_all(&input);
            wire.extend_from_slice(&raw_tail);
            let (body, ended, rest) = unstuff_chunked(&wire, &cuts);
            prop_assert!(ended);
            prop_assert_eq!(body, normalise_crlf(&input));
            prop_assert_eq!(rest, raw_tail);
        }

        #[test]
        fn unstuffing_arbitrary_wire_bytes_is_split_independent(
            wire in body_bytes(),
            cuts in proptest::collection::vec(0usize..64, 0..5),
        ) {
            let whole = unstuff_chunked(&wire, &[]);
            let split = unstuff_chunked(&wire, &cuts);
            prop_assert_eq!(whole, split);
        }
    }
}
