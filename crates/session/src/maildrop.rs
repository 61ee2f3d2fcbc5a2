//! What a POP3 listing learned of a maildrop: each message's number, UIDL and size, in flat
//! arrays (the UIDLs in one arena), so a million messages cost some 30 bytes each and no
//! allocation apiece — where a `String` and a map entry per message cost over 100.
//!
//! [`MaildropBuilder`] takes the `UIDL` (or `LIST`) lines as they stream in and keeps only what
//! it is told to: the caller's choice, line by line, and at most the newest `n` (a ring: the
//! last `2n` lines at most are held at any time). So `list --limit 20` of a million messages
//! holds 20 entries, and a `fetch` that finds nothing new holds none.

use std::fmt;
use std::sync::Arc;

use mailcat_codec::DecodeError;

/// The size of a message that `LIST` did not give (a listed size is at most `u64::MAX - 1`:
/// a larger one is kept as that, which no real message is near).
const NO_SIZE: u64 = u64::MAX;

/// The messages of one POP3 listing, by number: each one's UIDL (`None` when the server has
/// no UIDL) and size. Cheap to clone (shared): the listing and the session that may fetch and
/// delete from it hold the same one.
#[derive(Clone, Default)]
pub struct Maildrop(Arc<Table>);

#[derive(Default)]
struct Table {
    /// The message numbers, strictly increasing.
    numbers: Vec<u32>,
    /// Where each UIDL ends in `text` (it starts where the one before ends); an empty UIDL is
    /// none (a unique-id has at least one character).
    ends: Vec<u32>,
    /// All the UIDLs, one after the other (printable ASCII).
    text: String,
    /// The sizes; [`NO_SIZE`] where `LIST` gave none.
    sizes: Vec<u64>,
}

impl Table {
    fn uidl(&self, index: usize) -> Option<&str> {
        let start = match index {
            0 => 0,
            i => self.ends[i - 1] as usize,
        };
        let uidl = &self.text[start..self.ends[index] as usize];
        (!uidl.is_empty()).then_some(uidl)
    }

    fn index(&self, number: u32) -> Option<usize> {
        self.numbers.binary_search(&number).ok()
    }
}

impl Maildrop {
    /// How many messages.
    pub fn len(&self) -> usize {
        self.0.numbers.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.numbers.is_empty()
    }

    /// The message number of entry `index` (entries are in increasing number order).
    pub fn number(&self, index: usize) -> u32 {
        self.0.numbers[index]
    }

    /// The UIDL of entry `index` (`None`: the server has no UIDL).
    pub fn uidl(&self, index: usize) -> Option<&str> {
        self.0.uidl(index)
    }

    /// The size `LIST` gave for entry `index`, if it gave one.
    pub fn size(&self, index: usize) -> Option<u64> {
        Some(self.0.sizes[index]).filter(|&s| s != NO_SIZE)
    }

    /// The entry of message `number`, if it is listed: O(log n).
    pub fn index_of(&self, number: u32) -> Option<usize> {
        self.0.index(number)
    }

    /// True when message `number` is listed with exactly `uidl` (what a fetch or a deletion
    /// checks: an id from another session may give the number to another message).
    pub fn names(&self, number: u32, uidl: Option<&str>) -> bool {
        self.index_of(number)
            .is_some_and(|index| self.uidl(index) == uidl)
    }

    /// A maildrop of the entries `indices` (increasing) of this one.
    pub(crate) fn subset(&self, indices: impl IntoIterator<Item = usize>) -> Self {
        let mut builder = MaildropBuilder::new(None);
        for index in indices {
            // The entries come from a table whose UIDLs fit.
            let _ = builder.push(self.number(index), self.uidl(index), self.size(index));
        }
        builder.finish()
    }

    /// Bytes held on the heap (capacities), for tests and for people who measure.
    pub fn heap_bytes(&self) -> usize {
        let t = &self.0;
        t.numbers.capacity() * 4
            + t.ends.capacity() * 4
            + t.text.capacity()
            + t.sizes.capacity() * 8
    }
}

impl fmt::Debug for Maildrop {
    // A million entries are no debugging aid: how many, and the first and last number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maildrop")
            .field("len", &self.len())
            .field("first", &self.0.numbers.first())
            .field("last", &self.0.numbers.last())
            .finish()
    }
}

/// (number, UIDL) pairs, as a session's list of what may be fetched was once written (tests,
/// callers that name messages themselves). A number given twice keeps its last UIDL.
impl FromIterator<(u32, Option<String>)> for Maildrop {
    fn from_iter<I: IntoIterator<Item = (u32, Option<String>)>>(iter: I) -> Self {
        let mut builder = MaildropBuilder::new(None);
        for (number, uidl) in iter {
            // Beyond 4 GiB of UIDLs the rest is left out; no caller comes near.
            if builder.push(number, uidl.as_deref(), None).is_err() {
                break;
            }
        }
        builder.finish()
    }
}

/// Builds a [`Maildrop`] from listing lines as they arrive, keeping at most the last `n`.
#[derive(Debug)]
pub(crate) struct MaildropBuilder {
    table: Table,
    /// Keep only the last this many entries.
    newest: Option<usize>,
    /// The numbers came in strictly increasing order so far (as every server sends them).
    ascending: bool,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.numbers.len())
            .finish()
    }
}

impl MaildropBuilder {
    /// A builder that keeps every entry pushed, or only the last `newest`.
    pub(crate) fn new(newest: Option<u64>) -> Self {
        Self {
            table: Table::default(),
            newest: newest.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            ascending: true,
        }
    }

    /// How many entries are held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.table.numbers.len()
    }

    /// Adds message `number`, with its UIDL and size if known. Fails only when the UIDLs would
    /// pass 4 GiB (the listing limits stop a server long before).
    pub(crate) fn push(
        &mut self,
        number: u32,
        uidl: Option<&str>,
        size: Option<u64>,
    ) -> Result<(), DecodeError> {
        if self.newest == Some(0) {
            return Ok(());
        }
        let t = &mut self.table;
        if t.numbers.last().is_some_and(|&last| last >= number) {
            self.ascending = false;
        }
        t.text.push_str(uidl.unwrap_or(""));
        let end = u32::try_from(t.text.len()).map_err(|_| DecodeError::ResponseTooLarge {
            offset: 0,
            limit: u32::MAX as usize,
        })?;
        t.numbers.push(number);
        t.ends.push(end);
        t.sizes.push(size.map_or(NO_SIZE, |s| s.min(NO_SIZE - 1)));
        if let Some(n) = self.newest {
            // A ring in two halves: at 2n entries, the oldest n go (amortised O(1) a line).
            if t.numbers.len() >= n.saturating_mul(2).max(64) {
                self.keep_last(n);
            }
        }
        Ok(())
    }

    /// Keeps only the last `n` entries.
    fn keep_last(&mut self, n: usize) {
        let t = &mut self.table;
        let drop = t.numbers.len().saturating_sub(n);
        if drop == 0 {
            return;
        }
        let cut = t.ends[drop - 1];
        t.text.drain(..cut as usize);
        t.numbers.drain(..drop);
        t.ends.drain(..drop);
        t.sizes.drain(..drop);
        for end in &mut t.ends {
            *end -= cut;
        }
    }

    /// Sets the size of message `number` if it is held (`LIST` after `UIDL`). `hint`: where to
    /// look first (the entry after the last one found: `LIST` comes in the same order as
    /// `UIDL`, so each line is found in O(1), else by binary search).
    pub(crate) fn set_size(&mut self, number: u32, size: u64, hint: &mut usize) {
        self.settle();
        let t = &mut self.table;
        let index = if t.numbers.get(*hint) == Some(&number) {
            Some(*hint)
        } else {
            t.index(number)
        };
        if let Some(index) = index {
            t.sizes[index] = size.min(NO_SIZE - 1);
            *hint = index + 1;
        }
    }

    /// Only the last `newest` entries, in increasing number order (a number listed twice keeps
    /// its last entry): what [`MaildropBuilder::finish`] gives, and what sizes are looked up in.
    fn settle(&mut self) {
        if let Some(n) = self.newest {
            self.keep_last(n);
        }
        if !self.ascending {
            self.table = sorted(&self.table);
            self.ascending = true;
        }
    }

    /// True when nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.table.numbers.is_empty()
    }

    /// The maildrop: the last `newest` entries, in increasing number order (a number listed
    /// twice keeps its last entry).
    pub(crate) fn finish(mut self) -> Maildrop {
        self.settle();
        let mut t = self.table;
        t.numbers.shrink_to_fit();
        t.ends.shrink_to_fit();
        t.text.shrink_to_fit();
        t.sizes.shrink_to_fit();
        Maildrop(Arc::new(t))
    }
}

/// `t` in increasing number order, each number once (its last entry): the rare server that does
/// not list in order.
fn sorted(t: &Table) -> Table {
    let mut order: Vec<usize> = (0..t.numbers.len()).collect();
    // Stable: of entries with the same number, the last stays last.
    order.sort_by_key(|&i| t.numbers[i]);
    let mut out = Table::default();
    for (k, &i) in order.iter().enumerate() {
        if order
            .get(k + 1)
            .is_some_and(|&j| t.numbers[j] == t.numbers[i])
        {
            continue;
        }
        out.text.push_str(t.uidl(i).unwrap_or(""));
        out.numbers.push(t.numbers[i]);
        // No longer than the table it comes from.
        out.ends.push(out.text.len() as u32);
        out.sizes.push(t.sizes[i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uidls(m: &Maildrop) -> Vec<(u32, Option<&str>, Option<u64>)> {
        (0..m.len())
            .map(|i| (m.number(i), m.uidl(i), m.size(i)))
            .collect()
    }

    #[test]
    fn keeps_exactly_the_last_n_of_a_long_listing_holding_at_most_2n() {
        for n in [0u64, 1, 3, 20, 100] {
            let mut b = MaildropBuilder::new(Some(n));
            let mut most = 0;
            for i in 1..=100_000u32 {
                b.push(i, Some(&format!("u{i}")), None).unwrap();
                most = most.max(b.held());
            }
            assert!(most <= (2 * n as usize).max(64), "n={n}: held {most}");
            let mut hint = 0;
            for i in 1..=100_000u32 {
                b.set_size(i, u64::from(i) * 10, &mut hint);
            }
            let m = b.finish();
            let want: Vec<_> = (100_001 - n as u32..=100_000)
                .map(|i| (i, format!("u{i}"), u64::from(i) * 10))
                .collect();
            let got: Vec<_> = uidls(&m)
                .into_iter()
                .map(|(i, u, s)| (i, u.unwrap().to_owned(), s.unwrap()))
                .collect();
            assert_eq!(got, want, "n={n}");
            assert!(
                m.heap_bytes() <= n as usize * 40,
                "n={n}: {} bytes",
                m.heap_bytes()
            );
        }
    }

    #[test]
    fn all_of_a_listing_in_flat_arrays() {
        let mut b = MaildropBuilder::new(None);
        for i in 1..=1000u32 {
            b.push(i, Some(&format!("{i:016X}")), None).unwrap();
        }
        let mut hint = 0;
        b.set_size(500, 5, &mut hint);
        let m = b.finish();
        assert_eq!(m.len(), 1000);
        assert_eq!(m.uidl(0), Some("0000000000000001"));
        assert_eq!(m.uidl(999), Some("00000000000003E8"));
        assert_eq!(m.size(499), Some(5));
        assert_eq!(m.size(500), None, "not listed by LIST");
        assert!(m.names(1000, Some("00000000000003E8")));
        assert!(!m.names(1000, Some("00000000000003E7")));
        assert!(!m.names(1001, None));
        // 16 bytes of UIDL, 4 of number, 4 of end, 8 of size: 32 a message, nothing else.
        assert_eq!(m.heap_bytes(), 32 * 1000);
    }

    #[test]
    fn numbers_out_of_order_or_twice_are_sorted_and_the_last_entry_wins() {
        let m: Maildrop = [
            (3, Some("c".to_owned())),
            (1, Some("a".to_owned())),
            (2, Some("b".to_owned())),
            (1, Some("a2".to_owned())),
            (4, None),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            uidls(&m),
            [
                (1, Some("a2"), None),
                (2, Some("b"), None),
                (3, Some("c"), None),
                (4, None, None)
            ]
        );
        assert!(m.names(4, None));
        assert!(!m.names(1, Some("a")));
        assert!(Maildrop::default().is_empty());
    }

    #[test]
    fn sizes_out_of_order_still_land_on_their_message() {
        let mut b = MaildropBuilder::new(None);
        for i in [5u32, 1, 9] {
            b.push(i, Some("x"), None).unwrap();
        }
        let mut hint = 0;
        for (i, s) in [(9, 90), (1, 10), (5, 50), (7, 70), (5, u64::MAX)] {
            b.set_size(i, s, &mut hint);
        }
        let m = b.finish();
        assert_eq!(
            uidls(&m),
            [
                (1, Some("x"), Some(10)),
                (5, Some("x"), Some(u64::MAX - 1)),
                (9, Some("x"), Some(90))
            ]
        );
    }
}
