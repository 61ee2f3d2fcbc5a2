//! The typed answers of STAT, LIST and UIDL (RFC 1939 §5 and §7).
//!
//! ```text
//! stat-text     = count SP octets [ SP text ]          ; "+OK 2 320"
//! scan-listing  = msg-number SP octets [ SP text ]     ; LIST line, or "+OK 1 120" for LIST 1
//! uid-listing   = msg-number SP unique-id              ; UIDL line, or "+OK 1 whqtswO00WBw418f9t5JxYwZ"
//! unique-id     = 1*70 %x21-7E
//! ```
//!
//! Lenient: runs of spaces (and leading or trailing spaces), text after the octet count (RFC
//! 1939: "this memo makes no requirement on what follows the message size"). Numbers are
//! overflow-checked; message numbers start at 1. Unique-ids longer than RFC 1939's 70 characters
//! are accepted (up to the line limit): they are only ever compared, and refusing one would make
//! its message unreachable.

use std::borrow::Cow;

use nom::bytes::complete::take_while1;
use nom::character::complete::{space0, space1};
use nom::combinator::{eof, rest};
use nom::error::context;
use nom::Parser;

use crate::core::parse::{expected, number_u32, number_u64, to_decode_error, PResult};
use crate::DecodeError;

/// The answer to STAT: `+OK count octets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Messages in the maildrop (deleted ones not counted).
    pub count: u32,
    /// Their total size in octets.
    pub octets: u64,
}

impl Stat {
    /// Parses the text of STAT's `+OK` line (after `+OK `).
    pub fn parse(text: &[u8]) -> Result<Self, DecodeError> {
        let mut parser = (space0, count, separator, octets, trailing_text);
        parser
            .parse(text)
            .map(|(_, (_, count, _, octets, _))| Self { count, octets })
            .map_err(|e| to_decode_error(text, e))
    }
}

/// One `scan listing`: a LIST line, or the text of `+OK` after `LIST n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanListing {
    /// The message number, from 1.
    pub msg: u32,
    /// The message size in octets (as the server counts it: with CRLF line endings).
    pub octets: u64,
}

impl ScanListing {
    /// Parses `msg-number SP octets`, from a LIST body line or the text after `+OK `.
    pub fn parse(line: &[u8]) -> Result<Self, DecodeError> {
        let mut parser = (space0, msg_number, separator, octets, trailing_text);
        parser
            .parse(line)
            .map(|(_, (_, msg, _, octets, _))| Self { msg, octets })
            .map_err(|e| to_decode_error(line, e))
    }
}

/// One `unique-id listing`: a UIDL line, or the text of `+OK` after `UIDL n`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UniqueIdListing<'a> {
    /// The message number, from 1.
    pub msg: u32,
    /// The unique-id: printable ASCII without spaces, stable across sessions.
    pub unique_id: Cow<'a, [u8]>,
}

impl<'a> UniqueIdListing<'a> {
    /// Parses `msg-number SP unique-id`, from a UIDL body line or the text after `+OK `.
    pub fn parse(line: &'a [u8]) -> Result<Self, DecodeError> {
        let mut parser = (space0, msg_number, separator, unique_id, space0, end);
        parser
            .parse(line)
            .map(|(_, (_, msg, _, id, _, _))| UniqueIdListing {
                msg,
                unique_id: Cow::Borrowed(id),
            })
            .map_err(|e| to_decode_error(line, e))
    }

    /// An owned copy.
    pub fn into_owned(self) -> UniqueIdListing<'static> {
        UniqueIdListing {
            msg: self.msg,
            unique_id: Cow::Owned(self.unique_id.into_owned()),
        }
    }
}

/// `SP`, or several.
fn separator(input: &[u8]) -> PResult<'_, &[u8]> {
    context("a space", space1).parse(input)
}

/// `msg-number`: a decimal number from 1, below 2^32.
fn msg_number(input: &[u8]) -> PResult<'_, u32> {
    let (rest, n) = context("a message number", number_u32).parse(input)?;
    if n == 0 {
        return expected(input, "a message number from 1");
    }
    Ok((rest, n))
}

/// The message count of STAT (may be 0).
fn count(input: &[u8]) -> PResult<'_, u32> {
    context("a message count", number_u32).parse(input)
}

/// A size in octets, below 2^64.
fn octets(input: &[u8]) -> PResult<'_, u64> {
    context("a size in octets", number_u64).parse(input)
}

/// `unique-id = 1*70 %x21-7E` (longer ones accepted, see the module docs).
fn unique_id(input: &[u8]) -> PResult<'_, &[u8]> {
    context(
        "a unique-id (printable ASCII)",
        take_while1(|b: u8| (0x21..=0x7e).contains(&b)),
    )
    .parse(input)
}

/// Nothing, or spaces and any text.
fn trailing_text(input: &[u8]) -> PResult<'_, &[u8]> {
    if input.is_empty() {
        return Ok((input, input));
    }
    let (after, _) = context("a space or the end of the line", space1).parse(input)?;
    rest(after)
}

fn end(input: &[u8]) -> PResult<'_, &[u8]> {
    context("the end of the line", eof).parse(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1939_examples() {
        assert_eq!(
            Stat::parse(b"2 320"),
            Ok(Stat {
                count: 2,
                octets: 320
            })
        );
        assert_eq!(
            ScanListing::parse(b"1 120"),
            Ok(ScanListing {
                msg: 1,
                octets: 120
            })
        );
        assert_eq!(
            ScanListing::parse(b"2 200"),
            Ok(ScanListing {
                msg: 2,
                octets: 200
            })
        );
        let u = UniqueIdListing::parse(b"1 whqtswO00WBw418f9t5JxYwZ").unwrap();
        assert_eq!(
            (u.msg, &u.unique_id[..]),
            (1, &b"whqtswO00WBw418f9t5JxYwZ"[..])
        );
        let u = UniqueIdListing::parse(b"2 QhdPYR:00WBw1Ph7x7").unwrap();
        assert_eq!(&u.unique_id[..], b"QhdPYR:00WBw1Ph7x7");
    }

    #[test]
    fn lenient_spacing_and_trailing_text() {
        assert_eq!(
            Stat::parse(b"  2   320 messages"),
            Ok(Stat {
                count: 2,
                octets: 320
            })
        );
        assert_eq!(
            Stat::parse(b"0 0"),
            Ok(Stat {
                count: 0,
                octets: 0
            })
        );
        assert_eq!(
            ScanListing::parse(b"3  4096 extra"),
            Ok(ScanListing {
                msg: 3,
                octets: 4096
            })
        );
        assert_eq!(
            UniqueIdListing::parse(b"7  abc  ").map(|u| u.unique_id.into_owned()),
            Ok(b"abc".to_vec())
        );
    }

    #[test]
    fn over_long_unique_ids_are_accepted() {
        let mut line = b"1 ".to_vec();
        line.extend(std::iter::repeat_n(b'x', 200));
        assert_eq!(UniqueIdListing::parse(&line).unwrap().unique_id.len(), 200);
    }

    #[test]
    fn refuses_non_numbers_zero_and_overflow() {
        for (line, offset, what) in [
            (&b"x 120"[..], 0, "a number"),
            (b"0 120", 0, "a message number from 1"),
            (b"-1 120", 0, "a number"),
            (b"4294967296 1", 0, "a number below 2^32"),
            (b"1 18446744073709551616", 2, "a number below 2^64"),
            (b"1", 1, "a space"),
            (b"1 12x", 4, "a space or the end of the line"),
            (b"1 ", 2, "a number"),
        ] {
            assert_eq!(
                ScanListing::parse(line),
                Err(DecodeError::Invalid {
                    offset,
                    expected: what
                }),
                "{line:?}"
            );
        }
        assert!(Stat::parse(b"two 320").is_err());
        assert!(UniqueIdListing::parse(b"1 abc def").is_err());
        assert!(UniqueIdListing::parse(b"1 ab\x7fc").is_err());
        assert!(UniqueIdListing::parse(b"1 ").is_err());
        assert!(UniqueIdListing::parse(b"0 abc").is_err());
    }

    #[test]
    fn gmail_uidl_line() {
        let u = UniqueIdListing::parse(b"1 GmailId18c8f0e5a1b2c3d4").unwrap();
        assert_eq!(
            u.into_owned().unique_id,
            Cow::<[u8]>::Owned(b"GmailId18c8f0e5a1b2c3d4".to_vec())
        );
    }

    #[test]
    fn dovecot_uidl_line() {
        // Dovecot's default pop3_uidl_format %08Xu%08Xv.
        let u = UniqueIdListing::parse(b"1 000000015f1e7a3b").unwrap();
        assert_eq!(&u.unique_id[..], b"000000015f1e7a3b");
    }

    #[test]
    fn outlook_uidl_line() {
        let u = UniqueIdListing::parse(b"1 AQHZ7sdRb2mFkOqJ3k2wQ7yJc1nF4w==").unwrap();
        assert_eq!(u.msg, 1);
    }
}
