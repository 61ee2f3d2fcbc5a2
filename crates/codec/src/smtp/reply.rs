//! SMTP replies (RFC 5321 §4.2) and enhanced status codes (RFC 3463, RFC 2034).
//!
//! ```text
//! Reply-line  = *( Reply-code "-" [ textstring ] CRLF )
//!                  Reply-code [ SP textstring ] CRLF
//! Reply-code  = %x32-35 %x30-35 %x30-39
//! status-code = class "." subject "." detail      ; RFC 3463, at the start of the text
//! ```
//!
//! The greeting (`220 host ESMTP ...`, or `421`/`554` when the server refuses the session) and
//! every reply to a command go through the same [`parse_reply`].

use std::borrow::Cow;
use std::fmt;

use crate::core::line::find_line_end;
use crate::{Decode, DecodeError, Decoded, Limits};

/// A three-digit reply code: first digit 2–5, second 0–5, third 0–9 (RFC 5321 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// `250 OK`.
    pub const OK: Self = Self(250);
    /// `220` service ready (the greeting).
    pub const SERVICE_READY: Self = Self(220);
    /// `354` start mail input (after DATA).
    pub const START_MAIL_INPUT: Self = Self(354);
    /// `334` SASL challenge (RFC 4954).
    pub const AUTH_CHALLENGE: Self = Self(334);
    /// `421` service not available, closing the channel.
    pub const SERVICE_NOT_AVAILABLE: Self = Self(421);
    /// `554` transaction failed; as a greeting: no SMTP service here.
    pub const TRANSACTION_FAILED: Self = Self(554);

    /// The code if `value` is a valid reply code.
    pub const fn new(value: u16) -> Option<Self> {
        let (first, second) = (value / 100, value / 10 % 10);
        if first >= 2 && first <= 5 && second <= 5 {
            Some(Self(value))
        } else {
            None
        }
    }

    /// The number, 200–559.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 2 positive completion, 3 intermediate, 4 transient, 5 permanent.
    pub const fn class(self) -> u8 {
        (self.0 / 100) as u8
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An enhanced mail system status code `class.subject.detail` (RFC 3463), e.g. `5.7.139`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u8,
    /// 0–999: the category (7 = security or policy status, ...).
    pub subject: u16,
    /// 0–999: the detail within the subject.
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One SMTP reply, possibly of many lines, all with the same code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The reply code, the same on every line.
    pub code: ReplyCode,
    /// The enhanced status code of the first line that has one whose class matches the code.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line after the code and its separator, enhanced code included, CRLF
    /// excluded. Never empty: a reply has at least one line (whose text may be empty).
    pub lines: Vec<Cow<'a, [u8]>>,
}

impl<'a> Reply<'a> {
    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        self.code.class() == 2
    }

    /// 3xx: the server waits for more (DATA's 354, AUTH's 334).
    pub fn is_intermediate(&self) -> bool {
        self.code.class() == 3
    }

    /// 4xx: failed for now; the same command may work later.
    pub fn is_transient(&self) -> bool {
        self.code.class() == 4
    }

    /// 5xx: failed; do not repeat it unchanged.
    pub fn is_permanent(&self) -> bool {
        self.code.class() == 5
    }

    /// 421: the server is closing the connection (at any point, greeting included): no further
    /// command may be sent (RFC 5321 §3.8).
    pub fn is_closing(&self) -> bool {
        self.code == ReplyCode::SERVICE_NOT_AVAILABLE
    }

    /// Each line's text without its enhanced status code (when it has one of the reply's class)
    /// and the spaces after it: what to show a person.
    pub fn texts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let class = self.code.class();
        self.lines
            .iter()
            .map(move |line| match status_code(line, class) {
                Some((_, rest)) => rest,
                None => &line[..],
            })
    }

    /// An owned copy that no longer borrows the input buffer.
    pub fn into_owned(self) -> Reply<'static> {
        Reply {
            code: self.code,
            enhanced: self.enhanced,
            lines: self
                .lines
                .into_iter()
                .map(|line| Cow::Owned(line.into_owned()))
                .collect(),
        }
    }
}

/// Decodes one reply from the front of `buf`: `(consumed, reply)`.
///
/// Refused, with the offset of the offending byte: a code that is not three digits with the
/// first 2–5 and the second 0–5 (`2x0`, `25`, `600`, `099`); anything but SP, `-` or CRLF after
/// the code; a continuation line whose code differs from the first line's (threat model #66);
/// a NUL byte; a bare LF; a line longer than `limits.max_line` (CRLF included; RFC 5321 §4.5.3.1.5 sets
/// 512); more than `limits.max_lines` lines; more than `limits.max_response` bytes. Syntax
/// errors in a line not yet complete are reported at once, without waiting for its CRLF.
///
/// The older form of [`ReplyDecoder`]'s [`Decode::decode`] and a thin wrapper over it (the bound
/// of an incomplete reply is dropped).
pub fn parse_reply<'a>(buf: &'a [u8], limits: &Limits) -> Result<(usize, Reply<'a>), DecodeError> {
    decode_reply(buf, limits).into_result()
}

/// Call when the stream ended with `unread` bytes still buffered: a reply cut off mid-line or
/// between continuation lines is [`DecodeError::Truncated`]; nothing buffered is fine.
///
/// The same as [`ReplyDecoder`]'s [`Decode::end_of_input`].
pub fn end_of_input(unread: &[u8]) -> Result<(), DecodeError> {
    if unread.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::Truncated {
            offset: 0,
            inside: "an SMTP reply",
        })
    }
}

/// The SMTP reply decoder for one connection: the [`Decode`] contract over [`parse_reply`]'s
/// rules, one [`Reply`] per event (a multi-line reply such as EHLO's is one event).
///
/// SMTP replies carry no body and every reply frames itself, so the decoder keeps nothing
/// between replies but its [`Limits`]. An incomplete reply's bound is where its current line
/// must end (`max_line` after the line's start), at most one byte past `max_response`.
#[derive(Debug, Clone)]
pub struct ReplyDecoder {
    limits: Limits,
}

impl ReplyDecoder {
    /// A decoder enforcing `limits` (usually [`Limits::smtp`]).
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Decode for ReplyDecoder {
    type Event<'a> = Reply<'a>;

    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<Reply<'a>> {
        decode_reply(input, &self.limits)
    }

    fn end_of_input(&self, unread: &[u8]) -> Result<(), DecodeError> {
        end_of_input(unread)
    }
}

/// [`ReplyDecoder`]'s step: one whole reply, or how far an incomplete one may go.
fn decode_reply<'a>(buf: &'a [u8], limits: &Limits) -> Decoded<Reply<'a>> {
    // The line in progress ends within `max_line` bytes of its start, and the reply stays
    // within `max_response` bytes: past either, it is refused.
    let bound = |line_start: usize| {
        line_start
            .saturating_add(limits.max_line)
            .min(limits.max_response.saturating_add(1))
    };
    let mut pos = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        if lines.len() >= limits.max_lines {
            return Decoded::Invalid(DecodeError::TooManyLines {
                offset: 0,
                limit: limits.max_lines,
            });
        }
        let end = match find_line_end(buf, pos, limits.max_line) {
            Ok(end) => end,
            Err(DecodeError::Incomplete) => {
                let partial = no_nul(&buf[pos..])
                    .and_then(|()| reply_code(&buf[pos..], code))
                    .map_err(|e| e.shifted(pos));
                return match partial {
                    Err(e) => Decoded::Invalid(e),
                    Ok(_) => match size_check(buf.len(), limits) {
                        Some(e) => Decoded::Invalid(e),
                        None => Decoded::Incomplete { bound: bound(pos) },
                    },
                };
            }
            Err(e) => return Decoded::Invalid(e),
        };
        if let Some(err) = size_check(end, limits) {
            return Decoded::Invalid(err);
        }
        let line = &buf[pos..end - 2];
        let parsed = no_nul(line)
            .and_then(|()| reply_line(line, code))
            .map_err(|e| e.shifted(pos));
        let (line_code, last, text) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => return Decoded::Invalid(e),
        };
        code = Some(line_code);
        lines.push(Cow::Borrowed(text));
        pos = end;
        if last {
            break;
        }
    }
    // `code` is set: the loop ran at least once.
    let code = code.unwrap_or(ReplyCode::OK);
    let enhanced = lines
        .iter()
        .find_map(|line| status_code(line, code.class()).map(|(c, _)| c));
    Decoded::Event {
        consumed: pos,
        event: Reply {
            code,
            enhanced,
            lines,
        },
    }
}

/// A NUL byte is no text a server means (RFC 5321 §4.2: `textstring` is printable ASCII, SP
/// and HT); a C client would cut the line there, so two clients would read different replies.
fn no_nul(line: &[u8]) -> Result<(), DecodeError> {
    match memchr::memchr(0, line) {
        Some(offset) => Err(DecodeError::Invalid {
            offset,
            expected: "no NUL byte in a reply line",
        }),
        None => Ok(()),
    }
}

fn size_check(len: usize, limits: &Limits) -> Option<DecodeError> {
    (len > limits.max_response).then_some(DecodeError::ResponseTooLarge {
        offset: 0,
        limit: limits.max_response,
    })
}

/// `Reply-code ( "-" / SP / <end> ) textstring` for one complete line without its CRLF:
/// `(code, is_last_line, text)`.
fn reply_line(
    line: &[u8],
    expected: Option<ReplyCode>,
) -> Result<(ReplyCode, bool, &[u8]), DecodeError> {
    let code = reply_code(line, expected)?;
    let code = code.ok_or(DecodeError::Invalid {
        offset: line.len(),
        expected: "a three-digit reply code",
    })?;
    match line.get(3) {
        None => Ok((code, true, &line[3..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(_) => Err(DecodeError::Invalid {
            offset: 3,
            expected: "SP, \"-\" or CRLF after the reply code",
        }),
    }
}

/// Checks `Reply-code` and the separator in what is there of a line (complete or not): `None`
/// if fewer than three digits are there yet. A code different from `expected` is refused.
fn reply_code(line: &[u8], expected: Option<ReplyCode>) -> Result<Option<ReplyCode>, DecodeError> {
    const RANGES: [(u8, u8, &str); 3] = [
        (b'2', b'5', "a reply code starting with 2, 3, 4 or 5"),
        (b'0', b'5', "a reply code whose second digit is 0 to 5"),
        (b'0', b'9', "a three-digit reply code"),
    ];
    let mut value: u16 = 0;
    for (i, (low, high, what)) in RANGES.iter().enumerate() {
        match line.get(i) {
            None => return Ok(None),
            Some(&d) if (*low..=*high).contains(&d) => value = value * 10 + u16::from(d - b'0'),
            Some(_) => {
                return Err(DecodeError::Invalid {
                    offset: i,
                    expected: what,
                })
            }
        }
    }
    if !matches!(line.get(3), None | Some(b' ' | b'-' | b'\r')) {
        return Err(DecodeError::Invalid {
            offset: 3,
            expected: "SP, \"-\" or CRLF after the reply code",
        });
    }
    // The ranges above make this a valid code.
    let code = ReplyCode(value);
    match expected {
        Some(first) if first != code => Err(DecodeError::Invalid {
            offset: 0,
            expected: "the same reply code as the reply's first line",
        }),
        _ => Ok(Some(code)),
    }
}

/// `status-code SP` at the start of `text` (RFC 3463 §2), recognised only if its class is the
/// reply code's first digit (RFC 2034 §4): `(code, text after it and its spaces)`.
///
/// ```text
/// status-code = class "." subject "." detail
/// class       = "2" / "4" / "5"
/// subject     = 1*3digit
/// detail      = 1*3digit
/// ```
fn status_code(text: &[u8], reply_class: u8) -> Option<(EnhancedCode, &[u8])> {
    let (&class, rest) = text.split_first()?;
    let class = class.checked_sub(b'0')?;
    if !matches!(class, 2 | 4 | 5) || class != reply_class {
        return None;
    }
    let rest = rest.strip_prefix(b".")?;
    let (subject, rest) = one_to_three_digits(rest)?;
    let rest = rest.strip_prefix(b".")?;
    let (detail, rest) = one_to_three_digits(rest)?;
    let after = match rest.first() {
        None => rest,
        Some(b' ') => {
            let spaces = rest.iter().take_while(|&&b| b == b' ').count();
            &rest[spaces..]
        }
        Some(_) => return None,
    };
    Some((
        EnhancedCode {
            class,
            subject,
            detail,
        },
        after,
    ))
}

fn one_to_three_digits(input: &[u8]) -> Option<(u16, &[u8])> {
    let n = input.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&n) {
        return None;
    }
    let value = input[..n]
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    Some((value, &input[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(buf: &[u8]) -> Result<(usize, Reply<'_>), DecodeError> {
        parse_reply(buf, &Limits::smtp())
    }

    fn lines<'a>(reply: &'a Reply<'_>) -> Vec<&'a [u8]> {
        reply.lines.iter().map(|l| &l[..]).collect()
    }

    #[test]
    fn single_line_reply() {
        let (n, r) = parse(b"250 OK\r\nnext").unwrap();
        assert_eq!(n, 8);
        assert_eq!(r.code, ReplyCode::OK);
        assert_eq!(lines(&r), [&b"OK"[..]]);
        assert!(r.is_positive() && !r.is_transient() && !r.is_permanent());
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn code_alone_ends_the_reply() {
        let (n, r) = parse(b"250-first\r\n250\r\n").unwrap();
        assert_eq!(n, 16);
        assert_eq!(lines(&r), [&b"first"[..], b""]);
        let (_, r) = parse(b"354\r\n").unwrap();
        assert!(r.is_intermediate());
    }

    #[test]
    fn enhanced_code_matches_the_class_only() {
        let (_, r) = parse(b"550 5.1.1 <x@example.com>: Recipient address rejected\r\n").unwrap();
        assert_eq!(
            r.enhanced,
            Some(EnhancedCode {
                class: 5,
                subject: 1,
                detail: 1
            })
        );
        assert_eq!(r.enhanced.unwrap().to_string(), "5.1.1");
        assert_eq!(
            r.texts().next(),
            Some(&b"<x@example.com>: Recipient address rejected"[..])
        );
        // A 4.x.x code in a 5xx reply is text.
        let (_, r) = parse(b"550 4.1.1 odd\r\n").unwrap();
        assert_eq!(r.enhanced, None);
        // Four digits in a part, or no separator after it: not a status code.
        let (_, r) = parse(b"250 2.1000.0 x\r\n").unwrap();
        assert_eq!(r.enhanced, None);
        let (_, r) = parse(b"250 2.1.0x\r\n").unwrap();
        assert_eq!(r.enhanced, None);
        let (_, r) = parse(b"250 2.0.0\r\n").unwrap();
        assert_eq!(r.enhanced.map(|c| c.detail), Some(0));
    }

    #[test]
    fn refuses_malformed_codes() {
        // threat model #66.
        for (wire, offset) in [
            (&b"2x0 OK\r\n"[..], 1),
            (b"25\r\n", 2),
            (b"600 no\r\n", 0),
            (b"099 no\r\n", 0),
            (b"160 no\r\n", 0),
            (b"260 no\r\n", 1),
            (b"2500 x\r\n", 3),
            (b"250_x\r\n", 3),
            (b"\r\n", 0),
            (b"250\r\r\n", 3),
        ] {
            let err = parse(wire).unwrap_err();
            assert!(
                matches!(err, DecodeError::Invalid { offset: o, .. } if o == offset),
                "{wire:?}: {err:?}"
            );
        }
    }

    #[test]
    fn refuses_a_code_change_across_lines() {
        // threat model #66: 250- then 550 must not be read as one reply.
        assert_eq!(
            parse(b"250-ok\r\n550 no\r\n"),
            Err(DecodeError::Invalid {
                offset: 8,
                expected: "the same reply code as the reply's first line"
            })
        );
        // Also before the line is complete.
        crate::assert_matches!(parse(b"250-ok\r\n55"), Err(DecodeError::Incomplete));
        crate::assert_matches!(
            parse(b"250-ok\r\n550"),
            Err(DecodeError::Invalid { offset: 8, .. })
        );
    }

    #[test]
    fn syntax_errors_are_reported_before_the_crlf() {
        crate::assert_matches!(parse(b"2x"), Err(DecodeError::Invalid { offset: 1, .. }));
        assert_eq!(parse(b"25"), Err(DecodeError::Incomplete));
        assert_eq!(parse(b"250-abc"), Err(DecodeError::Incomplete));
    }

    #[test]
    fn refuses_long_lines_and_many_lines() {
        let mut long = b"250 ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 600));
        assert_eq!(
            parse(&long),
            Err(DecodeError::LineTooLong {
                offset: 0,
                limit: 512
            })
        );
        let mut many = Vec::new();
        for _ in 0..1000 {
            many.extend_from_slice(b"250-x\r\n");
        }
        let mut exactly = many.clone();
        exactly.extend_from_slice(b"250 x\r\n");
        assert_eq!(
            parse(&exactly),
            Err(DecodeError::TooManyLines {
                offset: 0,
                limit: 1000
            })
        );
        let mut limits = Limits::smtp();
        limits.max_response = 20;
        crate::assert_matches!(
            parse_reply(&many, &limits),
            Err(DecodeError::ResponseTooLarge { limit: 20, .. })
        );
    }

    #[test]
    fn bare_lf_is_refused() {
        crate::assert_matches!(
            parse(b"250 ok\n"),
            Err(DecodeError::Invalid { offset: 6, .. })
        );
    }

    #[test]
    fn nul_byte_is_refused_with_its_offset() {
        // A NUL in a reply line is no text a server means; C clients truncate there.
        assert_eq!(
            parse(b"250-mx.example\r\n250-X\0Y\r\n250 SIZE 10\r\n"),
            Err(DecodeError::Invalid {
                offset: 21,
                expected: "no NUL byte in a reply line"
            })
        );
        // Seen before the CRLF arrives.
        crate::assert_matches!(
            parse(b"220 hi\0"),
            Err(DecodeError::Invalid { offset: 6, .. })
        );
    }

    #[test]
    fn end_of_input_mid_reply_is_truncated() {
        assert_eq!(end_of_input(b""), Ok(()));
        for unread in [&b"250-a\r\n"[..], b"250 partial", b"2"] {
            assert_eq!(
                end_of_input(unread),
                Err(DecodeError::Truncated {
                    offset: 0,
                    inside: "an SMTP reply"
                })
            );
        }
    }

    #[test]
    fn into_owned_outlives_the_buffer() {
        let owned = {
            let buf = b"221 2.0.0 Bye\r\n".to_vec();
            parse(&buf).unwrap().1.into_owned()
        };
        assert_eq!(owned.lines, vec![Cow::Borrowed(&b"2.0.0 Bye"[..])]);
    }

    #[test]
    fn gmail_greeting() {
        let (_, r) = parse(
            b"220 smtp.gmail.com ESMTP d9443c01a7336-21c4a7a1bd2sm12345675ad.123 - gsmtp\r\n",
        )
        .unwrap();
        assert_eq!(r.code, ReplyCode::SERVICE_READY);
        assert!(r.lines[0].starts_with(b"smtp.gmail.com ESMTP"));
    }

    #[test]
    fn gmail_bad_credentials_with_two_spaces() {
        // Gmail puts two spaces after the enhanced code on its continuation lines.
        let wire = b"535-5.7.8 Username and Password not accepted. For more information, go to\r\n\
535 5.7.8  https://support.google.com/mail/?p=BadCredentials 41be03b00d2f7-7fd5de1b5f7sm1234567a12.34 - gsmtp\r\n";
        let (n, r) = parse(wire).unwrap();
        assert_eq!(n, wire.len());
        assert!(r.is_permanent());
        assert_eq!(r.enhanced.unwrap().to_string(), "5.7.8");
        let texts: Vec<&[u8]> = r.texts().collect();
        assert!(texts[1].starts_with(b"https://support.google.com/"));
    }

    #[test]
    fn outlook_basic_auth_disabled() {
        let wire = b"535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [BN9PR03CA0123.namprd03.prod.outlook.com 2024-01-01T00:00:00.000Z 08DC0000000000]\r\n";
        let (_, r) = parse(wire).unwrap();
        assert_eq!(
            r.enhanced,
            Some(EnhancedCode {
                class: 5,
                subject: 7,
                detail: 139
            })
        );
    }

    #[test]
    fn outlook_greeting() {
        let (_, r) = parse(b"220 BN9PR03CA0123.outlook.office365.com Microsoft ESMTP MAIL Service ready at Mon, 1 Jan 2024 12:00:00 +0000 08DC0000000000\r\n").unwrap();
        assert_eq!(r.code.get(), 220);
    }

    #[test]
    fn multi_line_greeting_mdaemon() {
        // MDaemon sends a banner of many 220- lines before the last one.
        let wire = b"220-mydomain.com ESMTP Sat, 26 Jul 2014 12:58:47 +0200\r\n220-*\r\n220-* This site does not authorise unsolicited bulk email\r\n220 *\r\n";
        let (n, r) = parse(wire).unwrap();
        assert_eq!((n, r.lines.len()), (wire.len(), 4));
    }

    #[test]
    fn refusing_greetings_421_and_554() {
        let (_, r) =
            parse(b"421 4.3.2 Service not available, closing transmission channel\r\n").unwrap();
        assert!(r.is_closing() && r.is_transient());
        let (_, r) = parse(b"554 mail.example.com ESMTP not accepting messages\r\n").unwrap();
        assert_eq!(r.code, ReplyCode::TRANSACTION_FAILED);
        assert!(r.is_permanent() && !r.is_closing());
    }

    #[test]
    fn postfix_rejection() {
        let (_, r) = parse(b"554 5.7.1 <spam@example.org>: Relay access denied\r\n").unwrap();
        assert_eq!(r.enhanced.map(|c| (c.subject, c.detail)), Some((7, 1)));
    }

    #[test]
    fn exim_temporary_failure() {
        let (_, r) = parse(b"451 Temporary local problem - please try later\r\n").unwrap();
        assert!(r.is_transient());
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn reply_code_constructor_checks_digits() {
        assert_eq!(ReplyCode::new(250).map(ReplyCode::get), Some(250));
        for bad in [0, 99, 199, 260, 600, 1250] {
            assert_eq!(ReplyCode::new(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_split_point_gives_the_same_reply(cut in 0usize..200) {
            let wire = b"250-smtp.example.com Hello\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250 2.0.0 ENHANCEDSTATUSCODES\r\n";
            let cut = cut.min(wire.len());
            let whole = parse(wire).unwrap();
            if cut < wire.len() {
                prop_assert_eq!(parse(&wire[..cut]), Err(DecodeError::Incomplete));
            }
            prop_assert_eq!(whole.0, wire.len());
            prop_assert_eq!(whole.1.lines.len(), 4);
        }

        #[test]
        fn never_panics_and_prefixes_of_valid_replies_are_incomplete(
            code in 200u16..560, texts in proptest::collection::vec("[ -~]{0,20}", 1..5), cut in 0usize..200,
        ) {
            prop_assume!(ReplyCode::new(code).is_some());
            let mut wire = Vec::new();
            for (i, t) in texts.iter().enumerate() {
                let sep = if i + 1 == texts.len() { ' ' } else { '-' };
                wire.extend_from_slice(format!("{code}{sep}{t}\r\n").as_bytes());
            }
            let (n, r) = parse(&wire).unwrap();
            prop_assert_eq!(n, wire.len());
            prop_assert_eq!(r.lines.len(), texts.len());
            let cut = cut.min(wire.len() - 1);
            prop_assert_eq!(parse(&wire[..cut]), Err(DecodeError::Incomplete));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
        }
    }
}
