//! Sequence sets (RFC 3501 §9 / RFC 9051 §9 `sequence-set`, `seq-range`, `seq-number`;
//! RFC 4315 `uid-set`), kept as ranges: one type for the sets a client sends and the sets a
//! server answers with.
//!
//! `seq-number = nz-number / "*"`: numbers start at 1, `*` is the largest number in use. A server
//! can describe four billion messages in 12 bytes (`1:4294967295`); a set is kept as the ranges
//! it was written as and never expanded, so `[COPYUID 1 1:4294967295 1:4294967295]` costs two
//! small vectors.
//!
//! A range may be written in either order (`7:3` means `3:7`). The constructors put the lower
//! end first (that is what a client sends); a parsed range keeps the order the server sent, and
//! [`SeqRange::bounds`] gives it in increasing order.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use crate::core::parse::PResult;
use crate::EncodeError;

use super::primitive::nz_number;

/// The error for a 0 where a message number or UID goes.
const ZERO: EncodeError = EncodeError::Invalid {
    field: "sequence set",
    reason: "message numbers and UIDs start at 1",
};

/// `seq-number`: a message sequence number or UID (never 0), or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeqNumber {
    /// A number, 1 or more.
    Value(NonZeroU32),
    /// `*`: the largest number in use in the mailbox.
    Largest,
}

impl SeqNumber {
    /// A number; 0 is refused.
    pub fn new(value: u32) -> Result<Self, EncodeError> {
        NonZeroU32::new(value).map(SeqNumber::Value).ok_or(ZERO)
    }

    /// The number, with `*` taken as `largest`.
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            Self::Value(n) => n.get(),
            Self::Largest => largest,
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(n) => write!(f, "{n}"),
            Self::Largest => f.write_str("*"),
        }
    }
}

/// `seq-range = seq-number ":" seq-number`, or a single `seq-number` (then `start == end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    start: SeqNumber,
    end: SeqNumber,
}

impl SeqRange {
    /// A range in either order, kept with the lower end first.
    pub fn new(a: SeqNumber, b: SeqNumber) -> Self {
        Self {
            start: a.min(b),
            end: a.max(b),
        }
    }

    /// A single number.
    pub fn single(n: SeqNumber) -> Self {
        Self { start: n, end: n }
    }

    /// The first end: the lower one for a range built here, the first one sent for a parsed
    /// range.
    pub fn start(&self) -> SeqNumber {
        self.start
    }

    /// The second end (equal to [`SeqRange::start`] for a single number).
    pub fn end(&self) -> SeqNumber {
        self.end
    }

    /// The range's bounds in increasing order, with `*` taken as `largest`.
    pub fn bounds(&self, largest: u32) -> (u32, u32) {
        let (a, b) = (self.start.resolve(largest), self.end.resolve(largest));
        (a.min(b), a.max(b))
    }
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}:{}", self.start, self.end)
        }
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`: one or more ranges, in the order
/// given, never expanded into numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(Vec<SeqRange>);

impl SequenceSet {
    /// One number (`5`).
    pub fn single(n: u32) -> Result<Self, EncodeError> {
        Ok(Self(vec![SeqRange::single(SeqNumber::new(n)?)]))
    }

    /// `a:b`, in either order.
    pub fn range(a: u32, b: u32) -> Result<Self, EncodeError> {
        Ok(Self(vec![SeqRange::new(
            SeqNumber::new(a)?,
            SeqNumber::new(b)?,
        )]))
    }

    /// `a:*`: from `a` to the last message.
    pub fn from(a: u32) -> Result<Self, EncodeError> {
        Ok(Self(vec![SeqRange::new(
            SeqNumber::new(a)?,
            SeqNumber::Largest,
        )]))
    }

    /// `1:*`: every message.
    pub fn all() -> Self {
        Self(vec![SeqRange::new(
            SeqNumber::Value(NonZeroU32::MIN),
            SeqNumber::Largest,
        )])
    }

    /// A set of ranges; an empty list is refused.
    pub fn from_ranges(ranges: Vec<SeqRange>) -> Result<Self, EncodeError> {
        if ranges.is_empty() {
            return Err(EncodeError::Empty {
                field: "sequence set",
            });
        }
        Ok(Self(ranges))
    }

    /// The set of `numbers`, in increasing order with runs written as ranges (`1:2000,2005`,
    /// never `1,2,…,2000,2005`): a command naming a million UIDs stays a few bytes long when
    /// they are consecutive. Duplicates are dropped; empty or 0 is refused.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> Result<Self, EncodeError> {
        let mut numbers: Vec<u32> = numbers.into_iter().collect();
        numbers.sort_unstable();
        numbers.dedup();
        if numbers.first() == Some(&0) {
            return Err(ZERO);
        }
        let mut ranges: Vec<SeqRange> = Vec::new();
        for n in numbers {
            let n = SeqNumber::new(n)?;
            match ranges.last_mut() {
                Some(last) if last.end.resolve(0).checked_add(1) == Some(n.resolve(0)) => {
                    last.end = n;
                }
                _ => ranges.push(SeqRange::single(n)),
            }
        }
        Self::from_ranges(ranges)
    }

    /// Adds a range.
    pub fn push(&mut self, range: SeqRange) {
        self.0.push(range);
    }

    /// The ranges, in order (never empty).
    pub fn ranges(&self) -> &[SeqRange] {
        &self.0
    }

    /// True if `n` is in the set (`*` taken as `largest`). Does not expand the set.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|r| {
            let (a, b) = r.bounds(largest);
            (a..=b).contains(&n)
        })
    }

    /// How many numbers the set names, counting overlaps twice (`*` taken as `largest`).
    pub fn count(&self, largest: u32) -> u64 {
        self.0
            .iter()
            .map(|r| {
                let (a, b) = r.bounds(largest);
                u64::from(b - a) + 1
            })
            .sum()
    }

    /// Every number in the set, range by range, lazily (an iterator, not a vector).
    pub fn iter(&self, largest: u32) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(move |r| {
            let (a, b) = r.bounds(largest);
            a..=b
        })
    }
}

/// The set as IMAP writes it: `1:4,7,9:*`.
impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

impl FromStr for SequenceSet {
    type Err = EncodeError;

    /// Reads `1:*`, `5`, `3:7,9` with the IMAP grammar, each range put lower end first;
    /// refuses 0, empty parts and anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match sequence_set(s.as_bytes()) {
            Ok(([], set)) => Ok(Self(
                set.0
                    .iter()
                    .map(|r| SeqRange::new(r.start, r.end))
                    .collect(),
            )),
            // The grammar stops at a 0 where a number starts: say why.
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) if e.input.first() == Some(&b'0') => {
                Err(ZERO)
            }
            _ => Err(EncodeError::Invalid {
                field: "sequence set",
                reason: "expected numbers, '*', ':' and ',' as in 1:*, 5 or 3:7,9",
            }),
        }
    }
}

/// `seq-number = nz-number / "*"`.
fn seq_number(input: &[u8]) -> PResult<'_, SeqNumber> {
    match input.first() {
        Some(b'*') => Ok((&input[1..], SeqNumber::Largest)),
        _ => nz_number(input).map(|(r, n)| (r, SeqNumber::Value(n))),
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`, each range kept in the order
/// sent.
pub(crate) fn sequence_set(input: &[u8]) -> PResult<'_, SequenceSet> {
    let mut ranges = Vec::new();
    let mut rest = input;
    loop {
        let (r, start) = seq_number(rest)?;
        let (r, end) = match r.strip_prefix(b":") {
            Some(r) => seq_number(r)?,
            None => (r, start),
        };
        ranges.push(SeqRange { start, end });
        match r.strip_prefix(b",") {
            Some(r) => rest = r,
            None => return Ok((r, SequenceSet(ranges))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> SeqNumber {
        SeqNumber::new(v).unwrap()
    }

    #[test]
    fn parses_numbers_ranges_and_star() {
        let (rest, set) = sequence_set(b"1,3:5,7:*,9 x").unwrap();
        assert_eq!(rest, b" x");
        assert_eq!(set.ranges().len(), 4);
        assert_eq!(set.ranges()[2].end(), SeqNumber::Largest);
        assert_eq!(set.iter(8).collect::<Vec<_>>(), vec![1, 3, 4, 5, 7, 8, 9]);
    }

    #[test]
    fn huge_range_is_not_expanded() {
        let (_, set) = sequence_set(b"1:4294967295").unwrap();
        assert_eq!(set.ranges().len(), 1);
        assert_eq!(set.count(0), 4_294_967_295);
        assert!(set.contains(4_000_000_000, 0));
        assert_eq!(set.to_string(), "1:4294967295");
    }

    #[test]
    fn reversed_range_is_normalised_by_bounds() {
        let (_, set) = sequence_set(b"5:2").unwrap();
        assert_eq!(set.ranges()[0].bounds(0), (2, 5));
        // A parsed range keeps the server's order.
        assert_eq!(set.ranges()[0].start(), n(5));
        assert_eq!(set.to_string(), "5:2");
    }

    #[test]
    fn zero_and_overflow_are_refused() {
        assert!(sequence_set(b"0").is_err());
        assert!(sequence_set(b"4294967296").is_err());
        assert!(sequence_set(b"1:").is_err());
    }

    #[test]
    fn displays_ranges() {
        assert_eq!(SequenceSet::all().to_string(), "1:*");
        assert_eq!(SequenceSet::single(5).unwrap().to_string(), "5");
        assert_eq!(SequenceSet::range(7, 3).unwrap().to_string(), "3:7");
        assert_eq!(SequenceSet::from(4).unwrap().to_string(), "4:*");
        assert_eq!(
            SequenceSet::from_numbers([3, 5, 9]).unwrap().to_string(),
            "3,5,9"
        );
        // Runs are ranges, in increasing order, whatever order the numbers came in.
        assert_eq!(
            SequenceSet::from_numbers(1..=2000).unwrap().to_string(),
            "1:2000"
        );
        assert_eq!(
            SequenceSet::from_numbers([9, 2, 3, 4, 7, 8, 3, u32::MAX])
                .unwrap()
                .to_string(),
            "2:4,7:9,4294967295"
        );
        assert_eq!(SequenceSet::from_numbers([5, 0]), Err(ZERO));
        let mut set = SequenceSet::range(3, 7).unwrap();
        set.push(SeqRange::new(n(9), n(9)));
        assert_eq!(set.to_string(), "3:7,9");
    }

    #[test]
    fn from_str_parses_and_normalises() {
        for (input, shown) in [
            ("1:*", "1:*"),
            ("*:1", "1:*"),
            ("5", "5"),
            ("3:7,9", "3:7,9"),
            ("9:3", "3:9"),
            ("*", "*"),
            ("4294967295", "4294967295"),
            ("1:4294967295", "1:4294967295"),
        ] {
            assert_eq!(input.parse::<SequenceSet>().unwrap().to_string(), shown);
        }
    }

    #[test]
    fn refuses_zero_empty_and_junk() {
        assert!(SequenceSet::single(0).is_err());
        assert!(SequenceSet::range(0, 5).is_err());
        assert!(SequenceSet::from_numbers([]).is_err());
        for bad in [
            "",
            "0",
            "1:0",
            "1,,2",
            "1:",
            ":2",
            "a",
            "1 2",
            "-1",
            "4294967296",
            "1\r\nA2 X",
        ] {
            assert!(bad.parse::<SequenceSet>().is_err(), "{bad:?}");
        }
        assert_eq!("1:0".parse::<SequenceSet>().unwrap_err(), ZERO);
        assert_ne!("1:x".parse::<SequenceSet>().unwrap_err(), ZERO);
    }
}
