//! A set of UIDs (or message numbers) kept as sorted, disjoint ranges: the mailbox's UIDs as
//! ESEARCH reports them (`1:1000000` is one range), the UIDs already fetched, the difference
//! of the two. Membership is a binary search, set arithmetic a linear merge of ranges, and a
//! million consecutive UIDs cost one pair of numbers.
//!
//! Building a set is linear in increasing order and O(n log n) in any other: numbers that
//! arrive out of order are sorted and merged in once, never inserted one by one into the
//! middle of a long list of ranges (a server answering a search in decreasing order would
//! otherwise cost a quadratic number of moves).

use std::fmt;
use std::str::FromStr;

use crate::EncodeError;

use super::sequence::SequenceSet;

/// Sorted, disjoint, non-adjacent inclusive ranges of numbers from 1 to `u32::MAX`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UidSet {
    /// `(first, last)`, increasing; ranges never touch (`1:3,4:5` is kept as `1:5`).
    ranges: Vec<(u32, u32)>,
}

impl UidSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self { ranges: Vec::new() }
    }

    /// The numbers of `set`, with `*` taken as `largest`; 0 (only possible as `*` in an empty
    /// mailbox) is left out.
    pub fn from_sequence_set(set: &SequenceSet, largest: u32) -> Self {
        Self::from_unsorted(set.ranges().iter().map(|r| r.bounds(largest)).collect())
    }

    /// The set of inclusive ranges in any order (each in either order; 0 left out): sorted
    /// once, then coalesced.
    fn from_unsorted(mut ranges: Vec<(u32, u32)>) -> Self {
        for r in &mut ranges {
            *r = (r.0.min(r.1).max(1), r.0.max(r.1));
        }
        ranges.retain(|&(_, b)| b > 0);
        ranges.sort_unstable();
        let mut out = Self::new();
        for (a, b) in ranges {
            out.push_coalescing(a, b);
        }
        out
    }

    /// Appends `a..=b` (`a >= 1`), which starts at or after the last range's start.
    fn push_coalescing(&mut self, a: u32, b: u32) {
        match self.ranges.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => self.ranges.push((a, b)),
        }
    }

    /// Adds `n` (0 is ignored). Adding in increasing order is O(1).
    pub fn insert(&mut self, n: u32) {
        self.insert_range(n, n);
    }

    /// Adds `a..=b` (in either order; 0 is ignored).
    pub fn insert_range(&mut self, a: u32, b: u32) {
        let (a, b) = (a.min(b).max(1), a.max(b));
        if b == 0 {
            return;
        }
        // Fast path: appending after the last range.
        match self.ranges.last_mut() {
            None => {
                self.ranges.push((a, b));
                return;
            }
            Some(last) if a > last.1 => {
                if a - last.1 == 1 {
                    last.1 = b;
                } else {
                    self.ranges.push((a, b));
                }
                return;
            }
            _ => {}
        }
        // The first range that ends at or after a - 1 (it may touch or overlap the new one) ...
        let first = self.ranges.partition_point(|r| r.1.saturating_add(1) < a);
        // ... and the first that starts after b + 1 (it stays apart).
        let end = self.ranges.partition_point(|r| r.0 <= b.saturating_add(1));
        if first == end {
            self.ranges.insert(first, (a, b));
            return;
        }
        let merged = (a.min(self.ranges[first].0), b.max(self.ranges[end - 1].1));
        self.ranges.splice(first..end, [merged]);
    }

    /// Adds every number of `other`: appended if it lies after `self`, else merged in one pass
    /// over both (linear, however the two interleave).
    pub fn insert_set(&mut self, other: &Self) {
        let Some(&(first, _)) = other.ranges.first() else {
            return;
        };
        if self.ranges.last().is_none_or(|&(_, last)| first > last) || other.ranges.len() == 1 {
            for &(a, b) in &other.ranges {
                self.insert_range(a, b);
            }
            return;
        }
        let mine = std::mem::take(&mut self.ranges);
        self.ranges.reserve(mine.len() + other.ranges.len());
        let (mut i, mut j) = (0, 0);
        while i < mine.len() || j < other.ranges.len() {
            let next =
                if j == other.ranges.len() || (i < mine.len() && mine[i].0 <= other.ranges[j].0) {
                    i += 1;
                    mine[i - 1]
                } else {
                    j += 1;
                    other.ranges[j - 1]
                };
            self.push_coalescing(next.0, next.1);
        }
    }

    /// True if `n` is in the set: a binary search.
    pub fn contains(&self, n: u32) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < n);
        self.ranges.get(i).is_some_and(|r| r.0 <= n)
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// True if the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The largest number, if any.
    pub fn max(&self) -> Option<u32> {
        self.ranges.last().map(|r| r.1)
    }

    /// The ranges, `(first, last)` inclusive, in increasing order.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Every number, in increasing order, lazily.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The numbers of `self` that are not in `other`: a linear merge of the two range lists.
    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = Self::new();
        let mut j = 0;
        for &(a, b) in &self.ranges {
            let mut from = a;
            while j < other.ranges.len() && other.ranges[j].1 < from {
                j += 1;
            }
            let mut k = j;
            while from <= b {
                match other.ranges.get(k) {
                    Some(&(oa, ob)) if oa <= b => {
                        if oa > from {
                            out.insert_range(from, oa - 1);
                        }
                        match ob.checked_add(1) {
                            Some(next) => from = next.max(from),
                            None => break,
                        }
                        k += 1;
                    }
                    _ => {
                        out.insert_range(from, b);
                        break;
                    }
                }
            }
        }
        out
    }

    /// The numbers in both `self` and `other`.
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        self.difference(&self.difference(other))
    }

    /// The `n` smallest numbers.
    #[must_use]
    pub fn first(&self, n: u64) -> Self {
        Self {
            ranges: take(self.ranges.iter().copied(), n, |(a, _), k| (a, a + k - 1)),
        }
    }

    /// The `n` largest numbers.
    #[must_use]
    pub fn last(&self, n: u64) -> Self {
        let mut ranges = take(self.ranges.iter().rev().copied(), n, |(_, b), k| {
            (b - k + 1, b)
        });
        ranges.reverse();
        Self { ranges }
    }

    /// The set cut into pieces of at most `max` numbers each (at least 1), in increasing
    /// order, each as a [`SequenceSet`] of ranges ready to send.
    pub fn chunks(&self, max: u64) -> Vec<SequenceSet> {
        let max = max.max(1);
        let mut out = Vec::new();
        let mut current = Self::new();
        let mut room = max;
        for &(a, b) in &self.ranges {
            let mut from = a;
            loop {
                let size = u64::from(b - from) + 1;
                if size <= room {
                    current.insert_range(from, b);
                    room -= size;
                    break;
                }
                // room < size, so from + room - 1 < b.
                let to = from + u32::try_from(room).unwrap_or(u32::MAX) - 1;
                current.insert_range(from, to);
                out.extend(current.to_sequence_set());
                current = Self::new();
                room = max;
                from = to + 1;
            }
            if room == 0 {
                out.extend(current.to_sequence_set());
                current = Self::new();
                room = max;
            }
        }
        out.extend(current.to_sequence_set());
        out
    }

    /// The set as a [`SequenceSet`] (`None` when empty: IMAP has no empty set).
    pub fn to_sequence_set(&self) -> Option<SequenceSet> {
        self.to_string().parse().ok()
    }
}

/// Numbers in increasing order are appended as they come; the others are set aside, sorted
/// and merged in at the end (0 is ignored).
impl Extend<u32> for UidSet {
    fn extend<I: IntoIterator<Item = u32>>(&mut self, iter: I) {
        let mut late = Vec::new();
        for n in iter {
            match self.ranges.last() {
                Some(&(_, last)) if n <= last => late.push((n, n)),
                _ => self.insert(n),
            }
        }
        self.insert_set(&Self::from_unsorted(late));
    }
}

impl FromIterator<u32> for UidSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

/// As IMAP writes a set: `1:5,7,9:12`; the empty set is the empty string.
impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}:{b}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for UidSet {
    type Err = EncodeError;

    /// Reads what [`fmt::Display`] writes (the empty string is the empty set); `*` is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self::new());
        }
        if s.contains('*') {
            return Err(EncodeError::Invalid {
                field: "UID set",
                reason: "'*' names no number by itself",
            });
        }
        let set: SequenceSet = s.parse()?;
        Ok(Self::from_sequence_set(&set, 0))
    }
}

/// Whole ranges from `ranges` until `n` numbers are taken; the range that holds more than are
/// left is cut to `k` numbers by `cut(range, k)` (0 < k < its size).
fn take(
    ranges: impl Iterator<Item = (u32, u32)>,
    n: u64,
    cut: impl Fn((u32, u32), u32) -> (u32, u32),
) -> Vec<(u32, u32)> {
    let mut left = n;
    let mut out = Vec::new();
    for (a, b) in ranges {
        if left == 0 {
            break;
        }
        let size = u64::from(b - a) + 1;
        if size <= left {
            out.push((a, b));
            left -= size;
        } else {
            // left < size <= u32::MAX + 1, so it fits and the cut stays inside (a, b).
            out.push(cut((a, b), u32::try_from(left).unwrap_or(u32::MAX)));
            left = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set(s: &str) -> UidSet {
        s.parse().unwrap()
    }

    #[test]
    fn keeps_runs_as_ranges_in_any_insertion_order() {
        let s: UidSet = [5, 1, 2, 3, 9, 4, 10, 7].into_iter().collect();
        assert_eq!(s.to_string(), "1:5,7,9:10");
        assert_eq!(s.len(), 8);
        assert!(s.contains(4) && s.contains(7) && !s.contains(6) && !s.contains(11));
        let big: UidSet = (1..=1_000_000).collect();
        assert_eq!(big.ranges(), &[(1, 1_000_000)]);
        assert_eq!(set("").len(), 0);
        assert!(set("3:1").contains(2));
        assert!("1:*".parse::<UidSet>().is_err());
    }

    #[test]
    fn difference_last_and_chunks() {
        assert_eq!(set("1:100").difference(&set("1:99")).to_string(), "100");
        assert_eq!(
            set("1:10,20:30").difference(&set("3,5:21,29")).to_string(),
            "1:2,4,22:28,30"
        );
        assert!(set("1:4294967295")
            .difference(&set("1:4294967295"))
            .is_empty());
        assert_eq!(set("1:5,8:9").last(3).to_string(), "5,8:9");
        assert_eq!(set("1:5").last(9).to_string(), "1:5");
        let chunks: Vec<String> = set("1:5,8:9,11")
            .chunks(3)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(chunks, ["1:3", "4:5,8", "9,11"]);
        assert_eq!(set("1:6").chunks(3).len(), 2);
        assert!(UidSet::new().chunks(3).is_empty());
    }

    #[test]
    fn building_in_decreasing_order_is_not_quadratic() {
        // 500,000 scattered numbers, largest first, as a hostile server may answer a search;
        // inserted one by one into the front of the ranges this took minutes.
        let started = std::time::Instant::now();
        let down: UidSet = (1..=1_000_000u32).rev().step_by(2).collect();
        assert_eq!(down.ranges().len(), 500_000);
        assert_eq!(down, (2..=1_000_000u32).step_by(2).collect::<UidSet>());
        let mut merged = UidSet::new();
        for piece in down.ranges().chunks(10_000).rev() {
            let piece: UidSet = piece.iter().map(|&(a, _)| a).collect();
            merged.insert_set(&piece);
        }
        assert_eq!(merged, down);
        let set: SequenceSet = down
            .iter()
            .rev()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
            .parse()
            .unwrap();
        assert_eq!(UidSet::from_sequence_set(&set, 0), down);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(
            a in proptest::collection::vec(1u32..200, 0..80),
            b in proptest::collection::vec(1u32..200, 0..80),
            n in 0u64..100,
        ) {
            let (sa, sb): (UidSet, UidSet) = (a.iter().copied().collect(), b.iter().copied().collect());
            let (ta, tb): (BTreeSet<u32>, BTreeSet<u32>) = (a.into_iter().collect(), b.iter().copied().collect());
            prop_assert_eq!(sa.iter().collect::<Vec<_>>(), ta.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(sa.len(), ta.len() as u64);
            let mut union = sa.clone();
            union.insert_set(&sb);
            prop_assert_eq!(
                union.iter().collect::<Vec<_>>(),
                ta.union(&tb).copied().collect::<Vec<_>>()
            );
            let mut extended = sa.clone();
            extended.extend(b.iter().copied());
            prop_assert_eq!(&extended, &union);
            prop_assert_eq!(
                sa.difference(&sb).iter().collect::<Vec<_>>(),
                ta.difference(&tb).copied().collect::<Vec<_>>()
            );
            prop_assert_eq!(
                sa.intersection(&sb).iter().collect::<Vec<_>>(),
                ta.intersection(&tb).copied().collect::<Vec<_>>()
            );
            let last: Vec<u32> = ta.iter().rev().take(n as usize).rev().copied().collect();
            let first: Vec<u32> = ta.iter().take(n as usize).copied().collect();
            prop_assert_eq!(sa.first(n).iter().collect::<Vec<_>>(), first);
            prop_assert_eq!(sa.last(n).iter().collect::<Vec<_>>(), last);
            for x in 0..201 {
                prop_assert_eq!(sa.contains(x), ta.contains(&x));
            }
            let chunked: Vec<u32> = sa.chunks(7).iter().flat_map(|c| c.iter(0).collect::<Vec<_>>()).collect();
            prop_assert_eq!(chunked, ta.iter().copied().collect::<Vec<_>>());
            prop_assert!(sa.chunks(7).iter().all(|c| c.count(0) <= 7));
            prop_assert_eq!(sa.to_string().parse::<UidSet>().unwrap(), sa);
        }
    }
}
