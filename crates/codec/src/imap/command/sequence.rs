//! Sequence sets (RFC 3501 §9 / RFC 9051 §9: `sequence-set`, `seq-range`, `seq-number`).
//!
//! `seq-number = nz-number / "*"`: numbers start at 1, `*` is the largest number in use. A range
//! may be written in either order (`7:3` means `3:7`); we always send it low first.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use crate::EncodeError;

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
        NonZeroU32::new(value)
            .map(SeqNumber::Value)
            .ok_or(EncodeError::Invalid {
                field: "sequence set",
                reason: "message numbers and UIDs start at 1",
            })
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNumber::Value(n) => write!(f, "{n}"),
            SeqNumber::Largest => f.write_str("*"),
        }
    }
}

/// `seq-range = seq-number ":" seq-number`, or a single number; kept with `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    start: SeqNumber,
    end: SeqNumber,
}

impl SeqRange {
    /// A range in either order.
    pub fn new(a: SeqNumber, b: SeqNumber) -> Self {
        SeqRange {
            start: a.min(b),
            end: a.max(b),
        }
    }

    /// The lower end.
    pub fn start(&self) -> SeqNumber {
        self.start
    }

    /// The upper end.
    pub fn end(&self) -> SeqNumber {
        self.end
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

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`: one or more ranges, never
/// expanded into numbers (a `1:4294967295` costs nothing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(Vec<SeqRange>);

impl SequenceSet {
    /// One number (`5`).
    pub fn single(n: u32) -> Result<Self, EncodeError> {
        let n = SeqNumber::new(n)?;
        Ok(SequenceSet(vec![SeqRange::new(n, n)]))
    }

    /// `a:b`, in either order.
    pub fn range(a: u32, b: u32) -> Result<Self, EncodeError> {
        Ok(SequenceSet(vec![SeqRange::new(
            SeqNumber::new(a)?,
            SeqNumber::new(b)?,
        )]))
    }

    /// `a:*`: from `a` to the last message.
    pub fn from(a: u32) -> Result<Self, EncodeError> {
        Ok(SequenceSet(vec![SeqRange::new(
            SeqNumber::new(a)?,
            SeqNumber::Largest,
        )]))
    }

    /// `1:*`: every message.
    pub fn all() -> Self {
        SequenceSet(vec![SeqRange::new(
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
        Ok(SequenceSet(ranges))
    }

    /// A set of single numbers (`3,5,9`), in the given order; empty or 0 is refused.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> Result<Self, EncodeError> {
        let ranges = numbers
            .into_iter()
            .map(|n| SeqNumber::new(n).map(|n| SeqRange::new(n, n)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_ranges(ranges)
    }

    /// Adds a range.
    pub fn push(&mut self, range: SeqRange) {
        self.0.push(range);
    }

    /// The ranges.
    pub fn ranges(&self) -> &[SeqRange] {
        &self.0
    }
}

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

    /// Reads `1:*`, `5`, `3:7,9`; refuses 0, empty parts and anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const BAD: EncodeError = EncodeError::Invalid {
            field: "sequence set",
            reason: "expected numbers, '*', ':' and ',' as in 1:*, 5 or 3:7,9",
        };
        let number = |part: &str| -> Result<SeqNumber, EncodeError> {
            if part == "*" {
                Ok(SeqNumber::Largest)
            } else if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                SeqNumber::new(part.parse::<u32>().map_err(|_| BAD)?)
            } else {
                Err(BAD)
            }
        };
        let ranges = s
            .split(',')
            .map(|item| match item.split_once(':') {
                Some((a, b)) => Ok(SeqRange::new(number(a)?, number(b)?)),
                None => number(item).map(|n| SeqRange::new(n, n)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_ranges(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut set = SequenceSet::range(3, 7).unwrap();
        set.push(SeqRange::new(
            SeqNumber::new(9).unwrap(),
            SeqNumber::new(9).unwrap(),
        ));
        assert_eq!(set.to_string(), "3:7,9");
    }

    #[test]
    fn parses_and_normalises() {
        for (input, shown) in [
            ("1:*", "1:*"),
            ("*:1", "1:*"),
            ("5", "5"),
            ("3:7,9", "3:7,9"),
            ("9:3", "3:9"),
            ("*", "*"),
            ("4294967295", "4294967295"),
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
    }
}
