//! Sequence sets (RFC 3501 §9 `sequence-set`, RFC 4315 `uid-set`), kept as ranges.
//!
//! A server can describe four billion messages in 12 bytes (`1:4294967295`); the set is kept as
//! the ranges it was sent as and never expanded, so `[COPYUID 1 1:4294967295 1:4294967295]`
//! costs two small vectors.

use crate::core::parse::PResult;

use super::primitive::nz_number;

/// One end of a range: a number or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqBound {
    /// A message sequence number or UID.
    Number(u32),
    /// `*`: the largest number in use in the mailbox.
    Largest,
}

/// `seq-range = seq-number ":" seq-number`, or a single `seq-number` (then `start == end`).
/// The ends are kept in the order the server sent them (RFC 3501: `4:2` is `2:4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// The first end as sent.
    pub start: SeqBound,
    /// The second end as sent (equal to `start` for a single number).
    pub end: SeqBound,
}

impl SeqRange {
    /// The range's bounds in increasing order, with `*` replaced by `largest`.
    pub fn bounds(&self, largest: u32) -> (u32, u32) {
        let resolve = |b: SeqBound| match b {
            SeqBound::Number(n) => n,
            SeqBound::Largest => largest,
        };
        let (a, b) = (resolve(self.start), resolve(self.end));
        (a.min(b), a.max(b))
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`, as a list of ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SequenceSet(pub Vec<SeqRange>);

impl SequenceSet {
    /// The ranges, in the order sent.
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

    /// Every number in the set, in order sent, lazily (an iterator, not a vector).
    pub fn iter(&self, largest: u32) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(move |r| {
            let (a, b) = r.bounds(largest);
            a..=b
        })
    }
}

impl std::fmt::Display for SeqBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeqBound::Number(n) => write!(f, "{n}"),
            SeqBound::Largest => f.write_str("*"),
        }
    }
}

/// The set as IMAP writes it: `1:4,7,9:*`.
impl std::fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if range.start == range.end {
                write!(f, "{}", range.start)?;
            } else {
                write!(f, "{}:{}", range.start, range.end)?;
            }
        }
        Ok(())
    }
}

/// `seq-number = nz-number / "*"`.
fn seq_number(input: &[u8]) -> PResult<'_, SeqBound> {
    match input.first() {
        Some(b'*') => Ok((&input[1..], SeqBound::Largest)),
        _ => nz_number(input).map(|(r, n)| (r, SeqBound::Number(n))),
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`.
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

    #[test]
    fn parses_numbers_ranges_and_star() {
        let (rest, set) = sequence_set(b"1,3:5,7:*,9 x").unwrap();
        assert_eq!(rest, b" x");
        assert_eq!(set.0.len(), 4);
        assert_eq!(set.0[2].end, SeqBound::Largest);
        assert_eq!(set.iter(8).collect::<Vec<_>>(), vec![1, 3, 4, 5, 7, 8, 9]);
    }

    #[test]
    fn huge_range_is_not_expanded() {
        let (_, set) = sequence_set(b"1:4294967295").unwrap();
        assert_eq!(set.0.len(), 1);
        assert_eq!(set.count(0), 4_294_967_295);
        assert!(set.contains(4_000_000_000, 0));
    }

    #[test]
    fn reversed_range_is_normalised_by_bounds() {
        let (_, set) = sequence_set(b"5:2").unwrap();
        assert_eq!(set.0[0].bounds(0), (2, 5));
    }

    #[test]
    fn zero_and_overflow_are_refused() {
        assert!(sequence_set(b"0").is_err());
        assert!(sequence_set(b"4294967296").is_err());
        assert!(sequence_set(b"1:").is_err());
    }
}
