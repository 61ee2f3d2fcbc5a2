//! The core rules of the IMAP grammar (RFC 3501 §9, RFC 9051 §9): atoms, numbers, strings,
//! `nil`, `nstring`, `astring`, literals, and a generic skipper for values nobody asked about.
//!
//! These parsers run on a whole frame (see [`super::framing`]): every literal's bytes are
//! already in the buffer, so they are complete (non-streaming) parsers. Running out of input
//! here is a syntax error, never "incomplete".

use std::borrow::Cow;
use std::num::NonZeroU32;

use nom::bytes::complete::tag_no_case;
use nom::Parser;

use crate::core::parse::{expected, failure, number_u32, number_u64, PResult, Problem};
use crate::EncodeError;

/// What the parsers need to know from [`crate::Limits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// Deepest nesting of parenthesised lists.
    pub max_depth: usize,
    /// Largest literal (already checked by the framer; checked again for defence in depth).
    pub max_literal: u64,
}

/// The limits the parsers' unit tests run with.
#[cfg(test)]
pub(crate) const TEST_CTX: Ctx = Ctx {
    max_depth: 16,
    max_literal: 1 << 20,
};

/// Marks a literal whose bytes were streamed out of the response (see [`super::decoder`]):
/// `NUL "{" number "}"`. A NUL byte never reaches the parser from the wire outside a literal,
/// because the framer refuses it (RFC 3501: `TEXT-CHAR` and `CHAR8` exclude NUL).
pub(crate) const STREAMED_MARKER: u8 = 0;

/// Turns a borrowed value into an owned one.
pub(crate) fn own(value: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
    Cow::Owned(value.into_owned())
}

/// Turns an optional borrowed value into an owned one.
pub(crate) fn own_opt(value: Option<Cow<'_, [u8]>>) -> Option<Cow<'static, [u8]>> {
    value.map(own)
}

/// `SP`: exactly one space.
pub(crate) fn sp(input: &[u8]) -> PResult<'_, ()> {
    match input.first() {
        Some(b' ') => Ok((&input[1..], ())),
        _ => expected(input, "a space"),
    }
}

/// `SP` where real servers send one or more (Exchange, QQ Mail): at least one space, all skipped.
pub(crate) fn sp1(input: &[u8]) -> PResult<'_, ()> {
    let (rest, ()) = sp(input)?;
    Ok((spaces(rest), ()))
}

/// Skips any number of spaces (lenient separators: Exchange, QQ and GreenMail send extra ones).
pub(crate) fn spaces(input: &[u8]) -> &[u8] {
    let n = input.iter().take_while(|&&b| b == b' ').count();
    &input[n..]
}

/// One specific byte.
pub(crate) fn byte<'a>(input: &'a [u8], b: u8, what: &'static str) -> PResult<'a, ()> {
    match input.first() {
        Some(&c) if c == b => Ok((&input[1..], ())),
        _ => expected(input, what),
    }
}

/// A keyword, matched case-insensitively (servers send `* ok`, `fetch`, `uid`: see the tests).
pub(crate) fn keyword<'a>(input: &'a [u8], word: &'static str) -> PResult<'a, ()> {
    let r: PResult<'a, &'a [u8]> = tag_no_case(word.as_bytes()).parse(input);
    match r {
        Ok((rest, _)) => Ok((rest, ())),
        Err(_) => expected(input, word),
    }
}

/// `ATOM-CHAR = <any CHAR except atom-specials>`;
/// `atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials`.
pub(crate) fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// Checks that a value a client sends bare is an atom (keywords, capabilities): not empty, no
/// CR, LF or NUL, only `ATOM-CHAR`s.
pub(crate) fn check_atom(field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
    crate::core::text::check_line_safe(field, value)?;
    if value.is_empty() {
        return Err(EncodeError::Empty { field });
    }
    if !value.iter().all(|&b| is_atom_char(b)) {
        return Err(EncodeError::Invalid {
            field,
            reason: "must be an atom: no spaces, ()[]{}%*\"\\, controls or 8-bit",
        });
    }
    Ok(())
}

/// `atom = 1*ATOM-CHAR`.
pub(crate) fn atom(input: &[u8]) -> PResult<'_, &[u8]> {
    let n = input.iter().take_while(|&&b| is_atom_char(b)).count();
    if n == 0 {
        return expected(input, "an atom");
    }
    Ok((&input[n..], &input[..n]))
}

/// `number = 1*DIGIT` (unsigned 32-bit), overflow refused.
pub(crate) fn number(input: &[u8]) -> PResult<'_, u32> {
    number_u32(input)
}

/// `nz-number = digit-nz *DIGIT`.
pub(crate) fn nz_number(input: &[u8]) -> PResult<'_, NonZeroU32> {
    let (rest, n) = number_u32(input)?;
    match NonZeroU32::new(n) {
        Some(n) => Ok((rest, n)),
        None => expected(input, "a non-zero number"),
    }
}

/// `number64 = 1*DIGIT` (RFC 9051, unsigned 63-bit; accepted up to 64 bits).
pub(crate) fn number64(input: &[u8]) -> PResult<'_, u64> {
    number_u64(input)
}

/// `nil = "NIL"` (case-insensitive).
pub(crate) fn nil(input: &[u8]) -> PResult<'_, ()> {
    if input.len() >= 3 && input[..3].eq_ignore_ascii_case(b"NIL") {
        let next = input.get(3).copied();
        if next.is_none_or(|b| !is_atom_char(b)) {
            return Ok((&input[3..], ()));
        }
    }
    expected(input, "NIL")
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`;
/// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials`.
///
/// Refuses NUL, CR and LF inside the string (they cannot be TEXT-CHAR). 8-bit bytes are kept
/// (RFC 9051 allows UTF-8; older servers send raw 8-bit). An escaped byte other than `"` or `\`
/// is kept as is (Courier and others escape freely).
pub(crate) fn quoted(input: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    if input.first() != Some(&b'"') {
        return expected(input, "a quoted string");
    }
    let body = &input[1..];
    // Fast path: no backslash before the closing quote.
    let mut i = 0;
    let mut owned: Option<Vec<u8>> = None;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let value = match owned {
                    Some(v) => Cow::Owned(v),
                    None => Cow::Borrowed(&body[..i]),
                };
                return Ok((&body[i + 1..], value));
            }
            b'\\' => {
                let Some(&escaped) = body.get(i + 1) else {
                    break;
                };
                if matches!(escaped, 0 | b'\r' | b'\n') {
                    return failure(
                        &body[i + 1..],
                        Problem::Expected("no NUL, CR or LF in a quoted string"),
                    );
                }
                let v = owned.get_or_insert_with(|| body[..i].to_vec());
                v.push(escaped);
                i += 2;
            }
            0 | b'\r' | b'\n' => {
                return failure(
                    &body[i..],
                    Problem::Expected("no NUL, CR or LF in a quoted string"),
                );
            }
            b => {
                if let Some(v) = owned.as_mut() {
                    v.push(b);
                }
                i += 1;
            }
        }
    }
    failure(input, Problem::Expected("a closing quote"))
}

/// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` and `literal8 = "~{" number64 "}" CRLF *OCTET`
/// (RFC 9051, RFC 3516, RFC 7888). Returns the literal's bytes, borrowed.
///
/// The length is checked against the limit before anything else, and against the bytes present:
/// the framer has put the whole literal in the frame, so fewer bytes is a syntax error.
pub(crate) fn literal<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, &'a [u8]> {
    let (rest, len) = literal_header(input, ctx)?;
    let Ok(n) = usize::try_from(len) else {
        return failure(
            input,
            Problem::LiteralTooLarge {
                len,
                limit: ctx.max_literal,
            },
        );
    };
    if rest.len() < n {
        return failure(input, Problem::Expected("the literal's announced bytes"));
    }
    Ok((&rest[n..], &rest[..n]))
}

/// `"~"? "{" number64 ["+"] "}" CRLF`: the literal's announcement, checked against the limit.
fn literal_header<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, u64> {
    let after_tilde = match input.first() {
        Some(b'~') => &input[1..],
        _ => input,
    };
    let (rest, ()) = byte(after_tilde, b'{', "a literal")?;
    let (rest, len) = match number64(rest) {
        Ok(v) => v,
        // An overflowing length is a literal bomb, not a typo.
        Err(nom::Err::Failure(_)) => {
            return failure(
                input,
                Problem::LiteralTooLarge {
                    len: u64::MAX,
                    limit: ctx.max_literal,
                },
            )
        }
        Err(e) => return Err(e),
    };
    if len > ctx.max_literal {
        return failure(
            input,
            Problem::LiteralTooLarge {
                len,
                limit: ctx.max_literal,
            },
        );
    }
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    let Some(rest) = rest.strip_prefix(b"}\r\n") else {
        return failure(
            rest,
            Problem::Expected("\"}\" and CRLF after a literal's length"),
        );
    };
    Ok((rest, len))
}

/// `string = quoted / literal`.
pub(crate) fn string<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Cow<'a, [u8]>> {
    match input.first() {
        Some(b'"') => quoted(input),
        Some(b'{') | Some(b'~') => literal(input, ctx).map(|(r, v)| (r, Cow::Borrowed(v))),
        _ => expected(input, "a string"),
    }
}

/// `nstring = string / nil`.
pub(crate) fn nstring<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Option<Cow<'a, [u8]>>> {
    match input.first() {
        Some(b'"') | Some(b'{') | Some(b'~') => string(input, ctx).map(|(r, v)| (r, Some(v))),
        _ => nil(input)
            .map(|(r, ())| (r, None))
            .or_else(|_| expected(input, "a string or NIL")),
    }
}

/// `astring = 1*ASTRING-CHAR / string`.
pub(crate) fn astring<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Cow<'a, [u8]>> {
    match input.first() {
        Some(b'"') | Some(b'{') | Some(b'~') => string(input, ctx),
        _ => {
            let n = input.iter().take_while(|&&b| is_astring_char(b)).count();
            if n == 0 {
                return expected(input, "an atom or a string");
            }
            Ok((&input[n..], Cow::Borrowed(&input[..n])))
        }
    }
}

/// Like [`astring`] but also accepts 8-bit bytes in the bare form. Mailbox names: servers with
/// `UTF8=ACCEPT` (and some that never announced it, such as 163.com) send raw UTF-8.
pub(crate) fn astring_8bit<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Cow<'a, [u8]>> {
    match input.first() {
        Some(b'"') | Some(b'{') | Some(b'~') => string(input, ctx),
        _ => {
            let n = input
                .iter()
                .take_while(|&&b| is_astring_char(b) || b >= 0x80)
                .count();
            if n == 0 {
                return expected(input, "an atom or a string");
            }
            Ok((&input[n..], Cow::Borrowed(&input[..n])))
        }
    }
}

/// A string or NIL where the RFC wants a string. Lenient on purpose: iCloud sends NIL for the
/// body encoding, Mail.ru for a boundary parameter value.
pub(crate) fn string_or_nil<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Cow<'a, [u8]>> {
    nstring(input, ctx).map(|(r, v)| (r, v.unwrap_or(Cow::Borrowed(&b""[..]))))
}

/// Skips one value of any shape: an atom (with `[...]` and `<...>` parts, as in `BODY[1]<0>`),
/// a number, a quoted string, a literal, NIL or a parenthesised list of those. Iterative, with
/// the nesting checked against `max_depth` before going deeper. Returns the skipped bytes.
pub(crate) fn skip_value<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, &'a [u8]> {
    let mut rest = input;
    let mut depth = 0usize;
    loop {
        match rest.first() {
            Some(b'(') => {
                if depth >= ctx.max_depth {
                    return failure(
                        rest,
                        Problem::TooDeep {
                            limit: ctx.max_depth,
                        },
                    );
                }
                depth += 1;
                rest = &rest[1..];
                continue;
            }
            Some(b')') if depth > 0 => {
                depth -= 1;
                rest = &rest[1..];
            }
            Some(b'"') => rest = quoted(rest)?.0,
            Some(b'{') | Some(b'~') => rest = literal(rest, ctx)?.0,
            Some(b' ') if depth > 0 => {
                rest = &rest[1..];
                continue;
            }
            Some(_) => {
                let n = bracketed_atom_len(rest);
                if n == 0 {
                    return expected(rest, "a value");
                }
                rest = &rest[n..];
            }
            None => return expected(rest, "a value"),
        }
        if depth == 0 {
            let used = input.len() - rest.len();
            return Ok((rest, &input[..used]));
        }
    }
}

/// Length of an atom that may carry `[...]` (no nesting) and `<...>` parts, as fetch item names
/// and unknown response code arguments do. Stops at SP, `(`, `)` outside brackets, CR, LF, NUL.
fn bracketed_atom_len(input: &[u8]) -> usize {
    let mut i = 0;
    let mut in_bracket = false;
    while let Some(&b) = input.get(i) {
        match b {
            b'[' => in_bracket = true,
            b']' if in_bracket => in_bracket = false,
            b' ' | b'(' | b')' if !in_bracket => break,
            b'"' | b'{' if !in_bracket => break,
            0 | b'\r' | b'\n' => break,
            _ => {}
        }
        i += 1;
    }
    i
}

/// `"(" [item *(SP item)] ")"` with lenient spacing (spaces after `(` or before `)`, several
/// spaces between items). Nesting is the caller's business.
pub(crate) fn paren_list<'a, T>(
    input: &'a [u8],
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (mut rest, ()) = byte(input, b'(', "\"(\"")?;
    let mut items = Vec::new();
    loop {
        rest = spaces(rest);
        if let Some(r) = rest.strip_prefix(b")") {
            return Ok((r, items));
        }
        let (r, v) = item(rest)?;
        items.push(v);
        match r.first() {
            Some(b' ') | Some(b')') => rest = r,
            _ => return expected(r, "a space or \")\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Ctx = Ctx {
        max_depth: 8,
        max_literal: 100,
    };

    #[test]
    fn quoted_borrows_without_escapes_and_unescapes_with() {
        assert_eq!(
            quoted(b"\"abc\" x").unwrap(),
            (&b" x"[..], Cow::Borrowed(&b"abc"[..]))
        );
        let (rest, v) = quoted(b"\"a\\\"b\\\\c\"").unwrap();
        assert!(rest.is_empty());
        assert_eq!(&*v, b"a\"b\\c");
        crate::assert_matches!(v, Cow::Owned(_));
    }

    #[test]
    fn quoted_refuses_nul_cr_lf_and_a_missing_quote() {
        for bad in [
            &b"\"a\0b\""[..],
            b"\"a\rb\"",
            b"\"a\nb\"",
            b"\"a\\\rb\"",
            b"\"abc",
        ] {
            assert!(matches!(quoted(bad), Err(nom::Err::Failure(_))), "{bad:?}");
        }
    }

    #[test]
    fn quoted_keeps_8bit() {
        let (_, v) = quoted("\"Grüße\"".as_bytes()).unwrap();
        assert_eq!(&*v, "Grüße".as_bytes());
    }

    #[test]
    fn literal_forms() {
        assert_eq!(
            literal(b"{3}\r\nabc)", &CTX).unwrap(),
            (&b")"[..], &b"abc"[..])
        );
        assert_eq!(literal(b"{3+}\r\nabc", &CTX).unwrap().1, b"abc");
        assert_eq!(literal(b"~{3}\r\na\0c", &CTX).unwrap().1, b"a\0c");
        assert_eq!(literal(b"{0}\r\n)", &CTX).unwrap(), (&b")"[..], &b""[..]));
    }

    #[test]
    fn literal_over_the_limit_or_overflowing_is_refused() {
        for bomb in [
            &b"{101}\r\n"[..],
            b"{18446744073709551615}\r\n",
            b"{99999999999999999999999}\r\n",
        ] {
            match literal(bomb, &CTX) {
                Err(nom::Err::Failure(e)) => {
                    assert!(
                        matches!(e.problem, Problem::LiteralTooLarge { .. }),
                        "{bomb:?}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn nstring_and_nil_are_case_insensitive() {
        assert_eq!(nstring(b"nil)", &CTX).unwrap(), (&b")"[..], None));
        assert_eq!(nstring(b"NIL", &CTX).unwrap().1, None);
        assert!(nstring(b"NILS", &CTX).is_err());
    }

    #[test]
    fn skip_value_handles_nesting_strings_and_literals() {
        let input = b"(a \"b)\" {2}\r\n)) (c)) rest";
        let (rest, skipped) = skip_value(input, &CTX).unwrap();
        assert_eq!(rest, b" rest");
        assert_eq!(skipped, &input[..input.len() - 5]);
        let (rest, _) = skip_value(b"BODY[1 (A)]<0> x", &CTX).unwrap();
        assert_eq!(rest, b" x");
    }

    #[test]
    fn skip_value_refuses_deep_nesting_without_recursion() {
        let deep = vec![b'('; 100_000];
        match skip_value(&deep, &CTX) {
            Err(nom::Err::Failure(e)) => {
                crate::assert_matches!(e.problem, Problem::TooDeep { limit: 8 });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paren_list_tolerates_extra_spaces() {
        let (rest, v) = paren_list(b"( 1  2 ) x", number).unwrap();
        assert_eq!((rest, v), (&b" x"[..], vec![1, 2]));
        let (_, v) = paren_list(b"()", number).unwrap();
        assert!(v.is_empty());
        assert!(paren_list(b"(1 2", number).is_err());
    }
}
