//! A set of POP3 UIDLs kept compact: sorted, one after the other in one string, found by binary
//! search. A million 16-character UIDLs cost 20 MB (16 bytes each and a 4-byte offset), where a
//! `BTreeSet<String>` costs some 90 MB and an allocation apiece.
//!
//! Inserting into the middle of the arena would move all of it, so ids inserted out of order
//! wait in a small side set that is merged in once it grows past an eighth of the arena (a
//! first fetch of a million messages merges some hundred times, each a linear pass). Ids that
//! arrive in increasing order — mailcat's own state files, and servers whose UIDLs grow with
//! each message, as Dovecot's do — go straight to the end of the arena.
//!
//! The server's listing is checked against the set one UIDL at a time as it streams in
//! ([`UidlSet::check`]), marking what it lists ([`Marks`], one bit per id), so that what it no
//! longer lists is forgotten afterwards ([`UidlSet::retain_marked`]) without the listing ever
//! being held.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::iter::Peekable;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sorted set of short strings (POP3 UIDLs) in one arena. Serialized as a JSON array of
/// strings, in order: the same as the `BTreeSet<String>` it replaces, so state files are read
/// and written as before.
#[derive(Clone, Default)]
pub struct UidlSet {
    /// The arena's ids, sorted, each once: id `i` is `text[ends[i - 1]..ends[i]]`.
    text: String,
    ends: Vec<u32>,
    /// Ids inserted out of order since the arena was last rebuilt (none of them in it).
    added: BTreeSet<Box<str>>,
    /// Changes whenever an id of the arena moves or goes: [`Marks`] made before no longer fit.
    generation: u64,
}

/// Which ids of a [`UidlSet`]'s arena were seen, one bit each: made by [`UidlSet::marks`],
/// filled by [`UidlSet::check`], used by [`UidlSet::retain_marked`].
#[derive(Debug, Clone)]
pub struct Marks {
    bits: Vec<u64>,
    /// How many ids the arena had.
    len: usize,
    generation: u64,
}

impl Marks {
    fn set(&mut self, index: usize) {
        self.bits[index / 64] |= 1 << (index % 64);
    }

    fn get(&self, index: usize) -> bool {
        self.bits[index / 64] & (1 << (index % 64)) != 0
    }

    fn count(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl UidlSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.ends.len() + self.added.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, index: usize) -> &str {
        let start = match index {
            0 => 0,
            i => self.ends[i - 1] as usize,
        };
        &self.text[start..self.ends[index] as usize]
    }

    /// Where `id` is in the arena: O(log n), no allocation.
    fn position(&self, id: &str) -> Option<usize> {
        let (mut low, mut high) = (0, self.ends.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.get(mid).cmp(id) {
                Ordering::Less => low = mid + 1,
                Ordering::Greater => high = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// True when `id` is in the set.
    pub fn contains(&self, id: &str) -> bool {
        self.position(id).is_some() || self.added.contains(id)
    }

    /// Adds `id`; false when it was there already.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.contains(id) {
            return false;
        }
        if self.added.is_empty() && self.append(id) {
            return true;
        }
        self.added.insert(id.into());
        if self.added.len() > (self.ends.len() / 8).max(1024) {
            self.merge();
        }
        true
    }

    /// Puts `id` at the end of the arena if it sorts after every id there and fits; else false.
    fn append(&mut self, id: &str) -> bool {
        if self.ends.last().is_some() && self.get(self.ends.len() - 1) >= id {
            return false;
        }
        let Ok(end) = u32::try_from(self.text.len() + id.len()) else {
            return false;
        };
        self.text.push_str(id);
        self.ends.push(end);
        true
    }

    /// Every id, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        Merge {
            arena: (0..self.ends.len()).map(|i| self.get(i)).peekable(),
            added: self.added.iter().map(|s| &**s).peekable(),
        }
    }

    /// Rebuilds the arena from the ids `ids` yields (sorted, distinct); what would pass 4 GiB
    /// stays in the side set.
    fn rebuild<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Self {
        let mut out = Self {
            generation: self.generation + 1,
            ..Self::default()
        };
        for id in ids {
            if !out.added.is_empty() || !out.append(id) {
                out.added.insert(id.into());
            }
        }
        out.text.shrink_to_fit();
        out.ends.shrink_to_fit();
        out
    }

    /// Merges the side set into the arena.
    fn merge(&mut self) {
        if !self.added.is_empty() {
            *self = self.rebuild(self.iter());
        }
    }

    /// Keeps only the ids for which `keep` says yes.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let kept: Vec<bool> = self.iter().map(&mut keep).collect();
        if kept.iter().all(|&k| k) {
            return;
        }
        let mut kept = kept.into_iter();
        *self = self.rebuild(self.iter().filter(|_| kept.next().unwrap_or(true)));
    }

    /// No id marked yet, for [`UidlSet::check`].
    pub fn marks(&self) -> Marks {
        Marks {
            bits: vec![0; self.ends.len().div_ceil(64)],
            len: self.ends.len(),
            generation: self.generation,
        }
    }

    /// True when `id` is in the set; marks it in `marks` if so (and if `marks` was made for
    /// the set as it is now).
    pub fn check(&self, id: &str, marks: &mut Marks) -> bool {
        match self.position(id) {
            Some(index) => {
                if marks.generation == self.generation && index < marks.len {
                    marks.set(index);
                }
                true
            }
            None => self.added.contains(id),
        }
    }

    /// Forgets the ids `marks` did not mark. Ids inserted since `marks` was made stay, and so
    /// does everything when the set changed otherwise meanwhile (a record that keeps an id too
    /// long costs nothing; one that forgets an id the server still has fetches it again).
    /// Returns whether anything was forgotten.
    pub fn retain_marked(&mut self, marks: &Marks) -> bool {
        if marks.generation != self.generation || marks.count() == marks.len {
            return false;
        }
        let mut arena = Self {
            generation: self.generation + 1,
            ..Self::default()
        };
        for index in (0..self.ends.len()).filter(|&i| i >= marks.len || marks.get(i)) {
            arena.append(self.get(index));
        }
        arena.text.shrink_to_fit();
        arena.ends.shrink_to_fit();
        arena.added = std::mem::take(&mut self.added);
        *self = arena;
        true
    }

    /// Bytes held on the heap by the arena (the side set not counted), for tests and for
    /// people who measure.
    pub fn arena_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 4
    }
}

/// Two sorted, disjoint sequences as one.
struct Merge<'a, A: Iterator<Item = &'a str>, B: Iterator<Item = &'a str>> {
    arena: Peekable<A>,
    added: Peekable<B>,
}

impl<'a, A: Iterator<Item = &'a str>, B: Iterator<Item = &'a str>> Iterator for Merge<'a, A, B> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match (self.arena.peek(), self.added.peek()) {
            (Some(a), Some(b)) if b < a => self.added.next(),
            (Some(_), _) => self.arena.next(),
            (None, _) => self.added.next(),
        }
    }
}

impl PartialEq for UidlSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for UidlSet {}

impl fmt::Debug for UidlSet {
    // The first few: a record of a million ids is no debugging aid.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let mut list = f.debug_set();
        list.entries(self.iter().take(SHOWN));
        if self.len() > SHOWN {
            list.entry(&format_args!("… {} in all", self.len()));
        }
        list.finish()
    }
}

impl<'a> FromIterator<&'a str> for UidlSet {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut set = Self::new();
        for id in iter {
            set.insert(id);
        }
        set.merge();
        set
    }
}

impl Serialize for UidlSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for UidlSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(SetVisitor)
    }
}

struct SetVisitor;

impl<'de> Visitor<'de> for SetVisitor {
    type Value = UidlSet;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UidlSet, A::Error> {
        let mut set = UidlSet::new();
        // Each string straight into the set, never a String apiece.
        while seq.next_element_seed(Insert(&mut set))?.is_some() {}
        set.merge();
        set.text.shrink_to_fit();
        set.ends.shrink_to_fit();
        Ok(set)
    }
}

/// Deserializes one string into the set.
struct Insert<'s>(&'s mut UidlSet);

impl<'de> DeserializeSeed<'de> for Insert<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Insert<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<(), E> {
        self.0.insert(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uidl(i: u32) -> String {
        format!("{i:08X}5F3A2B1C")
    }

    #[test]
    fn ids_in_order_or_not_make_the_same_sorted_set() {
        let ids: Vec<String> = (0..5000).map(|i| uidl(i * 7919 % 5003)).collect();
        let shuffled: UidlSet = ids.iter().map(String::as_str).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        let in_order: UidlSet = sorted.iter().map(String::as_str).collect();
        assert_eq!(shuffled, in_order);
        assert!(shuffled.iter().eq(sorted.iter().map(String::as_str)));
        assert_eq!(shuffled.len(), sorted.len());
        assert!(shuffled.added.is_empty() && in_order.added.is_empty());
        for id in &sorted {
            assert!(shuffled.contains(id), "{id}");
        }
        assert!(!shuffled.contains("x"));
        assert!(!shuffled.contains(""));
    }

    #[test]
    fn inserts_land_in_the_side_set_then_the_arena_and_are_found_in_both() {
        let mut set: UidlSet = (0..10_000)
            .map(|i| uidl(i * 2))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect();
        assert!(!set.insert(&uidl(4)), "there already");
        assert!(set.insert(&uidl(3)));
        assert!(set.contains(&uidl(3)) && set.added.len() == 1);
        assert!(set.insert(&uidl(1_000_000)));
        for i in 0..2000 {
            set.insert(&uidl(i * 2 + 1));
        }
        assert!(
            set.added.len() < 1500,
            "merged on the way: {}",
            set.added.len()
        );
        for i in 0..2000 {
            assert!(set.contains(&uidl(i * 2 + 1)));
        }
        let all: Vec<&str> = set.iter().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        assert_eq!(all.len(), set.len());
    }

    #[test]
    fn a_uidl_costs_its_bytes_and_a_four_byte_offset() {
        const N: usize = 100_000;
        let json = {
            let ids: Vec<String> = (1..=N as u32).map(uidl).collect();
            serde_json::to_vec(&ids).unwrap()
        };
        let set: UidlSet = serde_json::from_slice(&json).unwrap();
        assert_eq!(set.len(), N);
        assert!(set.added.is_empty());
        // 16 bytes of text and a 4-byte offset each (a BTreeSet<String> took ~90).
        assert_eq!(set.arena_bytes(), 20 * N);
        assert!(set.contains(&uidl(77_777)));
        // Written back exactly as read: a JSON array of the strings, in order.
        assert_eq!(serde_json::to_vec(&set).unwrap(), json);
    }

    #[test]
    fn what_the_listing_did_not_mark_is_forgotten() {
        let mut set: UidlSet = ["a", "b", "c", "d"].into_iter().collect();
        let mut marks = set.marks();
        for listed in ["b", "d", "e"] {
            assert_eq!(set.check(listed, &mut marks), listed != "e");
        }
        assert!(set.insert("zz"), "inserted after the marks: kept");
        assert!(set.retain_marked(&marks));
        assert_eq!(set.iter().collect::<Vec<_>>(), ["b", "d", "zz"]);
        // All marked: nothing to do.
        let mut marks = set.marks();
        for id in ["b", "d", "zz"] {
            set.check(id, &mut marks);
        }
        assert!(!set.retain_marked(&marks));
        // Marks of a set that changed since keep everything.
        let marks = set.marks();
        set.insert("a");
        set.retain(|id| id != "zz");
        assert!(!set.retain_marked(&marks));
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b", "d"]);
    }

    #[test]
    fn unsorted_and_repeated_ids_in_a_file_are_read_as_a_set() {
        let set: UidlSet = serde_json::from_str(r#"["c","a","b","a","c"]"#).unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["a","b","c"]"#);
        assert!(serde_json::from_str::<UidlSet>(r#"["a",1]"#).is_err());
        assert!(serde_json::from_str::<UidlSet>(r#""a""#).is_err());
    }
}
