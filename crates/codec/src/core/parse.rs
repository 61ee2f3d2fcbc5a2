//! Glue between nom parsers and [`DecodeError`]: an error type that remembers where it failed
//! and what was expected, and the conversion to a buffer offset.

use nom::error::{ContextError, ErrorKind};

use crate::DecodeError;

/// What went wrong, before the offset is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The grammar wanted this here.
    Expected(&'static str),
    /// Nesting went past the limit.
    TooDeep { limit: usize },
    /// A literal announced more than the limit.
    LiteralTooLarge { len: u64, limit: u64 },
}

/// The nom error type of all parsers in this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError<'a> {
    /// The input at the failure point (a suffix of the parsed buffer).
    pub input: &'a [u8],
    /// What went wrong.
    pub problem: Problem,
    /// True once a `context` or an explicit expectation named the problem.
    named: bool,
}

impl<'a> ParseError<'a> {
    pub(crate) fn new(input: &'a [u8], problem: Problem) -> Self {
        ParseError {
            input,
            problem,
            named: true,
        }
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for ParseError<'a> {
    fn from_error_kind(input: &'a [u8], kind: ErrorKind) -> Self {
        ParseError {
            input,
            problem: Problem::Expected(kind_name(kind)),
            named: false,
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Keep the error that got furthest into the input: it is the most specific one.
        if other.input.len() <= self.input.len() {
            other
        } else {
            self
        }
    }
}

impl<'a> ContextError<&'a [u8]> for ParseError<'a> {
    fn add_context(input: &'a [u8], ctx: &'static str, other: Self) -> Self {
        if other.named {
            other
        } else {
            ParseError {
                input,
                problem: Problem::Expected(ctx),
                named: true,
            }
        }
    }
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Tag => "a keyword",
        ErrorKind::Char => "a particular character",
        ErrorKind::Digit => "a digit",
        ErrorKind::Eof => "the end of the line",
        ErrorKind::TakeWhile1 => "at least one valid character",
        ErrorKind::Alt => "one of the allowed alternatives",
        ErrorKind::Many1 | ErrorKind::SeparatedList => "a list of items",
        _ => "valid syntax",
    }
}

/// The result type of every parser.
pub(crate) type PResult<'a, O> = nom::IResult<&'a [u8], O, ParseError<'a>>;

/// A recoverable failure: "expected `what` here" (alternatives may still match).
pub(crate) fn expected<'a, O>(input: &'a [u8], what: &'static str) -> PResult<'a, O> {
    Err(nom::Err::Error(ParseError::new(
        input,
        Problem::Expected(what),
    )))
}

/// An unrecoverable failure: no alternative may try again.
pub(crate) fn failure<O>(input: &[u8], problem: Problem) -> PResult<'_, O> {
    Err(nom::Err::Failure(ParseError::new(input, problem)))
}

/// Turns a nom error on a suffix of `full` into a [`DecodeError`] with an offset into `full`.
pub(crate) fn to_decode_error(full: &[u8], err: nom::Err<ParseError<'_>>) -> DecodeError {
    match err {
        nom::Err::Incomplete(_) => DecodeError::Incomplete,
        nom::Err::Error(e) | nom::Err::Failure(e) => {
            let offset = offset_in(full, e.input);
            match e.problem {
                Problem::Expected(expected) => DecodeError::Invalid { offset, expected },
                Problem::TooDeep { limit } => DecodeError::TooDeep { offset, limit },
                Problem::LiteralTooLarge { len, limit } => {
                    DecodeError::LiteralTooLarge { offset, len, limit }
                }
            }
        }
    }
}

/// Offset of `part` (a suffix of `full`) within `full`.
pub(crate) fn offset_in(full: &[u8], part: &[u8]) -> usize {
    let start = full.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at.saturating_sub(start).min(full.len())
}

/// Parses an unsigned decimal number that fits in `u32` (RFC 3501 `number`), refusing overflow.
pub(crate) fn number_u32(input: &[u8]) -> PResult<'_, u32> {
    let (rest, n) = number_u64(input)?;
    match u32::try_from(n) {
        Ok(n) => Ok((rest, n)),
        Err(_) => failure(input, Problem::Expected("a number below 2^32")),
    }
}

/// Parses an unsigned decimal number that fits in `u64`, refusing overflow and signs.
pub(crate) fn number_u64(input: &[u8]) -> PResult<'_, u64> {
    let digits = input.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return expected(input, "a number");
    }
    let mut n: u64 = 0;
    for &d in &input[..digits] {
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(n) => n,
            None => return failure(input, Problem::Expected("a number below 2^64")),
        };
    }
    Ok((&input[digits..], n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_refuse_overflow() {
        assert_eq!(number_u32(b"4294967295 "), Ok((&b" "[..], u32::MAX)));
        crate::assert_matches!(number_u32(b"4294967296"), Err(nom::Err::Failure(_)));
        crate::assert_matches!(
            number_u64(b"18446744073709551616"),
            Err(nom::Err::Failure(_))
        );
        crate::assert_matches!(number_u64(b"-1"), Err(nom::Err::Error(_)));
    }

    #[test]
    fn offsets_point_into_the_full_buffer() {
        let full = b"abc def";
        let err = expected::<()>(&full[4..], "x").unwrap_err();
        assert_eq!(
            to_decode_error(full, err),
            DecodeError::Invalid {
                offset: 4,
                expected: "x"
            }
        );
    }
}
