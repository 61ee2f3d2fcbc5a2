//! What has been fetched already, so each run downloads only what is new and never twice.
//!
//! IMAP messages are known by (UIDVALIDITY, UID): when the mailbox's UIDVALIDITY changes, the
//! old UIDs mean nothing any more, so the record is forgotten (and nothing may be deleted by
//! them). POP3 messages are known by their UIDL.
//!
//! A record is keyed by where it was made (`imap://LOGIN@HOST/MAILBOX`, `pop3://LOGIN@HOST`),
//! but one server has many names (`localhost` and `127.0.0.1`; `pop3.live.com` and
//! `outlook.office365.com`). A source under a host name not seen before adopts the record of
//! the same login (and mailbox) under another host name only when the server shows it is the
//! same mailbox ([`Identity`]): the same UIDVALIDITY, or most of the recorded UIDLs listed. The
//! new name is remembered (`spellings` in the file) and the record keeps its key, so the
//! Maildir tags made from it stay the same. Otherwise the source gets a record of its own:
//! two servers' records are never mixed.
//!
//! IMAP UIDs are kept as ranges (`"fetched_uids": "1:1000000"`), so the record of a
//! million-message mailbox is a few bytes, read in microseconds, and "what is new" is a
//! difference of two range lists. Files written before kept them in `fetched` as strings
//! (`["1","2",…]`); those are still read, and moved to `fetched_uids` when the file is next
//! written. (An older mailcat reading a newer file sees no IMAP UID fetched and would fetch
//! those messages again: duplicates, never a loss.)
//!
//! POP3 UIDLs have no order to make ranges of: they are kept in one sorted arena
//! ([`UidlSet`], ~20 bytes a 16-character UIDL), read from the file string by string without a
//! `String` apiece, and written as the same JSON array of strings as ever. The server's
//! `UIDL` is checked against them line by line as it streams in ([`UidlSet::check`]), so "what
//! is new" of a million messages holds neither the listing nor a second set.
//!
//! The snapshot is read and written as a stream, never whole in memory, and written only when
//! something changed: a fetch that finds nothing new writes nothing.
//!
//! Durability: `state.json` is replaced atomically (write a temporary file, `fsync`, rename,
//! `fsync` the directory). Between two such snapshots every stored message is recorded at once
//! in `state.json.log`, one line per message, `fsync`ed: cheap enough for every message, and a
//! line torn by a crash (no newline) is ignored when the state is read back.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use mailcat_codec::imap::UidSet;
use serde::{Deserialize, Serialize};

use super::sync_dir;
use super::uidl_set::{Marks, UidlSet};

/// The record for one mailbox (IMAP) or one POP3 account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxState {
    /// IMAP UIDVALIDITY the ids belong to; `None` for POP3.
    pub uidvalidity: Option<u32>,
    /// Ids of the messages stored: POP3 UIDLs (IMAP UIDs are in `fetched_uids`).
    pub fetched: UidlSet,
    /// IMAP: the UIDs of the messages stored, as ranges (`"1:5000,5002"`).
    #[serde(default, with = "uid_ranges", skip_serializing_if = "UidSet::is_empty")]
    pub fetched_uids: UidSet,
    /// For an mbox store: its length after the last complete message.
    pub mbox_len: Option<u64>,
}

/// The whole record, keyed by `imap://host/mailbox` or `pop3://user@host`.
#[derive(Debug)]
pub struct FetchState {
    path: PathBuf,
    mailboxes: BTreeMap<String, MailboxState>,
    /// Keys under other host names → the record they were found to be.
    spellings: BTreeMap<String, String>,
    /// The mbox length after the last complete message, whichever mailbox it came from.
    mbox_len: Option<u64>,
    log: Option<std::fs::File>,
    /// Something changed since the snapshot was read: [`FetchState::save`] has work to do.
    dirty: bool,
}

/// `fetched_uids` as one string of ranges.
mod uid_ranges {
    use mailcat_codec::imap::UidSet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(set: &UidSet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(set)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UidSet, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl MailboxState {
    /// Records `id` as stored: an IMAP UID (a mailbox with a UIDVALIDITY, an id in canonical
    /// decimal) in the ranges, anything else as a string.
    fn insert(&mut self, id: &str) {
        match self.imap_uid(id) {
            Some(uid) => self.fetched_uids.insert(uid),
            None => {
                self.fetched.insert(id);
            }
        }
    }

    fn contains(&self, id: &str) -> bool {
        match self.imap_uid(id) {
            Some(uid) => self.fetched_uids.contains(uid),
            None => self.fetched.contains(id),
        }
    }

    fn imap_uid(&self, id: &str) -> Option<u32> {
        self.uidvalidity?;
        id.parse::<u32>()
            .ok()
            .filter(|uid| *uid > 0 && id.len() == uid.to_string().len() && !id.starts_with('+'))
    }

    /// Moves IMAP UIDs written as strings (files from before `fetched_uids`) to the ranges.
    /// Returns whether there were any.
    fn normalize(&mut self) -> bool {
        if self.uidvalidity.is_none() || self.fetched.is_empty() {
            return false;
        }
        let strings = std::mem::take(&mut self.fetched);
        for id in strings.iter() {
            self.insert(id);
        }
        true
    }
}

#[derive(Deserialize)]
struct Snapshot {
    #[allow(dead_code)] // read to check it is there, as the file has always had it
    version: u32,
    mailboxes: BTreeMap<String, MailboxState>,
    #[serde(default)]
    mbox_len: Option<u64>,
    /// Keys under other host names → the record they were found to be (absent in files
    /// written before host names were told apart).
    #[serde(default)]
    spellings: BTreeMap<String, String>,
}

/// [`Snapshot`] as written: borrowed from the state, not a copy of a million ids.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    mailboxes: &'a BTreeMap<String, MailboxState>,
    mbox_len: Option<u64>,
    #[serde(skip_serializing_if = "no_spellings")]
    spellings: &'a BTreeMap<String, String>,
}

fn no_spellings(spellings: &&BTreeMap<String, String>) -> bool {
    spellings.is_empty()
}

/// One line of the log.
#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    uidvalidity: Option<u32>,
    id: Option<String>,
    mbox_len: Option<u64>,
    /// `key` is another name of the record `same_as` (nothing else in the entry counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    same_as: Option<String>,
}

/// Where fetched messages come from, as the record names it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The login.
    pub login: &'a str,
    /// The server's host name, as it was given.
    pub host: &'a str,
    /// The IMAP mailbox; `None` for POP3.
    pub mailbox: Option<&'a str>,
}

impl Source<'_> {
    /// `imap://LOGIN@HOST/MAILBOX` or `pop3://LOGIN@HOST`.
    pub fn key(&self) -> String {
        self.key_for(self.host)
    }

    fn key_for(&self, host: &str) -> String {
        match self.mailbox {
            Some(mailbox) => format!("imap://{}@{host}/{mailbox}", self.login),
            None => format!("pop3://{}@{host}", self.login),
        }
    }

    /// The host of `key` if it is this login's (and mailbox's) record under another host name.
    fn other_host<'k>(&self, key: &'k str) -> Option<&'k str> {
        let prefix = self.key_for("");
        let (start, end) = match self.mailbox {
            Some(mailbox) => (
                prefix.strip_suffix(&format!("/{mailbox}"))?.to_owned(),
                format!("/{mailbox}"),
            ),
            None => (prefix, String::new()),
        };
        let host = key
            .strip_prefix(start.as_str())?
            .strip_suffix(end.as_str())?;
        (!host.is_empty() && host != self.host && !host.contains(['/', '@'])).then_some(host)
    }
}

/// What the server shows of itself, to tell whether a record made under another of its host
/// names is this mailbox's.
pub enum Identity<'a> {
    /// IMAP: the mailbox's UIDVALIDITY (a record with the same one is the same mailbox).
    Imap(u32),
    /// POP3: whether the server lists a UIDL now (a record most of whose UIDLs are listed is
    /// the same mailbox).
    Pop3(&'a dyn Fn(&str) -> bool),
}

impl std::fmt::Debug for Identity<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Imap(uidvalidity) => write!(f, "Imap({uidvalidity})"),
            Identity::Pop3(_) => f.write_str("Pop3(..)"),
        }
    }
}

impl Identity<'_> {
    fn matches(&self, record: &MailboxState) -> bool {
        match self {
            Identity::Imap(uidvalidity) => record.uidvalidity == Some(*uidvalidity),
            Identity::Pop3(listed) => {
                let found = record.fetched.iter().filter(|id| listed(id)).count();
                found > 0 && found * 2 >= record.fetched.len()
            }
        }
    }
}

/// How [`FetchState::resolve`] found the record of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The record made under this host name (or adopted by it before).
    Known(String),
    /// No record yet, under any host name.
    New(String),
    /// The record made under another host name of the same server: adopted.
    Adopted {
        /// The record's key.
        key: String,
        /// The host name it was made under.
        host: String,
    },
    /// Records of this login under other host names are of another server (or mailbox): this
    /// one gets its own.
    Unrelated {
        /// The new record's key.
        key: String,
        /// The other host names.
        hosts: Vec<String>,
    },
}

impl Resolved {
    /// The key of the record to use.
    pub fn key(&self) -> &str {
        match self {
            Self::Known(key)
            | Self::New(key)
            | Self::Adopted { key, .. }
            | Self::Unrelated { key, .. } => key,
        }
    }
}

impl FetchState {
    /// Reads the record at `path` (and its log); a missing file is an empty record. Both are
    /// read as streams: the record of a million POP3 messages costs its compact form in memory
    /// (~20 bytes a UIDL), not the file's text besides.
    pub fn load(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let mut dirty = false;
        let (mut mailboxes, mut mbox_len, mut spellings) = match std::fs::File::open(&path) {
            Ok(file) => {
                let snapshot: Snapshot = serde_json::from_reader(BufReader::new(file)).map_err(|e| {
                    if e.is_io() {
                        return io::Error::new(e.io_error_kind().unwrap_or(io::ErrorKind::Other), format!("{}: {e}", path.display()));
                    }
                    io::Error::new(io::ErrorKind::InvalidData, format!("{} is damaged ({e}); move it away to start afresh (messages fetched before may then be fetched again)", path.display()))
                })?;
                let mut mailboxes = snapshot.mailboxes;
                for mailbox in mailboxes.values_mut() {
                    dirty |= mailbox.normalize();
                }
                (mailboxes, snapshot.mbox_len, snapshot.spellings)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                (BTreeMap::new(), None, BTreeMap::new())
            }
            Err(e) => return Err(e),
        };
        if let Ok(log) = std::fs::File::open(log_path(&path)) {
            // The log goes into the snapshot at the next save, which removes it.
            dirty = true;
            let mut log = BufReader::new(log);
            let mut line = Vec::new();
            loop {
                line.clear();
                match log.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    // Only whole lines: the last may have been torn by a crash.
                    Ok(_) if !line.ends_with(b"\n") => break,
                    Ok(_) => {}
                }
                if let Ok(entry) = serde_json::from_slice::<Entry>(&line) {
                    if let Some(record) = entry.same_as {
                        spellings.insert(entry.key, record);
                        continue;
                    }
                    mbox_len = entry.mbox_len.or(mbox_len);
                    apply(&mut mailboxes, entry);
                }
            }
        }
        Ok(Self {
            path,
            mailboxes,
            spellings,
            mbox_len,
            log: None,
            dirty,
        })
    }

    /// For an mbox store: its length after the last complete message recorded, from any
    /// mailbox. Two accounts may share one mbox, so this, not a mailbox's own
    /// [`MailboxState::mbox_len`], is what [`super::Mbox::open`] must be given: the other
    /// account's later messages lie beyond a mailbox's own length.
    pub fn mbox_len(&self) -> Option<u64> {
        self.mbox_len
    }

    /// For an mbox store: records its length as it is now, before anything is appended (at the
    /// first run, or after a mail reader rewrote it). Without it, a message appended and then
    /// cut short by a crash before [`FetchState::record`] would have no recorded length to be
    /// cut back to, and would be fetched again: a duplicate.
    pub fn record_mbox_len(&mut self, len: u64) -> io::Result<()> {
        let entry = Entry {
            key: String::new(),
            uidvalidity: None,
            id: None,
            mbox_len: Some(len),
            same_as: None,
        };
        self.append(&entry)?;
        self.mbox_len = Some(len);
        Ok(())
    }

    /// The key of the record a POP3 `source` already has, known without asking the server:
    /// the one made under its host name, or the one an earlier run found this host name to be
    /// another name of — what [`FetchState::resolve`] would find first, whatever the server
    /// shows. `None` for an IMAP source (its other names are checked against the UIDVALIDITY
    /// each time) and when only [`FetchState::resolve`] can tell. With it, the record's UIDLs
    /// can be checked while the server's listing streams in.
    pub fn known_key(&self, source: &Source<'_>) -> Option<String> {
        if source.mailbox.is_some() {
            return None;
        }
        let key = source.key();
        if self.mailboxes.contains_key(&key) {
            return Some(key);
        }
        self.spellings
            .get(&key)
            .filter(|record| self.mailboxes.contains_key(*record))
            .cloned()
    }

    /// Finds the record of `source`: the one made under its host name, or one made under
    /// another host name of the same login (and mailbox) that `identity` shows to be the same
    /// mailbox — adopted then, and the new name remembered (the first such record, in key
    /// order). Use the returned key for everything else.
    pub fn resolve(
        &mut self,
        source: &Source<'_>,
        identity: &Identity<'_>,
    ) -> io::Result<Resolved> {
        let key = source.key();
        if self.mailboxes.contains_key(&key) {
            return Ok(Resolved::Known(key));
        }
        if let Some(record) = self.spellings.get(&key) {
            // Trusted once adopted, unless IMAP says outright that it is another mailbox now
            // (the name points elsewhere): then the record stays the other name's alone.
            let contradicted =
                |r: &MailboxState| matches!(identity, Identity::Imap(_)) && !identity.matches(r);
            if self.mailboxes.get(record).is_some_and(|r| !contradicted(r)) {
                return Ok(Resolved::Known(record.clone()));
            }
        }
        let mut hosts = Vec::new();
        let mut adopt = None;
        for (other, record) in &self.mailboxes {
            let Some(host) = source.other_host(other) else {
                continue;
            };
            if identity.matches(record) {
                adopt = Some((other.clone(), host.to_owned()));
                break;
            }
            hosts.push(host.to_owned());
        }
        if let Some((record, host)) = adopt {
            self.append(&Entry {
                key: key.clone(),
                uidvalidity: None,
                id: None,
                mbox_len: None,
                same_as: Some(record.clone()),
            })?;
            self.spellings.insert(key, record.clone());
            return Ok(Resolved::Adopted { key: record, host });
        }
        Ok(if hosts.is_empty() {
            Resolved::New(key)
        } else {
            Resolved::Unrelated { key, hosts }
        })
    }

    /// The record of one mailbox.
    pub fn mailbox(&self, key: &str) -> Option<&MailboxState> {
        self.mailboxes.get(key)
    }

    /// True if the message `id` of mailbox `key` (with that UIDVALIDITY) is stored.
    pub fn is_fetched(&self, key: &str, uidvalidity: Option<u32>, id: &str) -> bool {
        self.mailboxes
            .get(key)
            .is_some_and(|m| m.uidvalidity == uidvalidity && m.contains(id))
    }

    /// IMAP: the UIDs of mailbox `key` stored under `uidvalidity` (empty if none, or if the
    /// record is for another UIDVALIDITY).
    pub fn fetched_uids(&self, key: &str, uidvalidity: Option<u32>) -> &UidSet {
        static NONE: UidSet = UidSet::new();
        match self.mailboxes.get(key) {
            Some(m) if m.uidvalidity == uidvalidity => &m.fetched_uids,
            _ => &NONE,
        }
    }

    /// Records that a message is durably stored (call right after the store's commit).
    /// A different UIDVALIDITY than recorded starts the mailbox's record afresh.
    pub fn record(
        &mut self,
        key: &str,
        uidvalidity: Option<u32>,
        id: &str,
        mbox_len: Option<u64>,
    ) -> io::Result<()> {
        let entry = Entry {
            key: key.to_owned(),
            uidvalidity,
            id: Some(id.to_owned()),
            mbox_len,
            same_as: None,
        };
        self.append(&entry)?;
        self.mbox_len = entry.mbox_len.or(self.mbox_len);
        apply(&mut self.mailboxes, entry);
        Ok(())
    }

    /// Records a group of messages durably stored (call right after the store's commit of the
    /// group): `(id, mbox_len)` each, in order, as [`FetchState::record`] would, with one
    /// `fdatasync` of the log for them all. Either the whole group's lines are synced when this
    /// returns `Ok`, or the call failed (some may then be recorded, each whole: a line cut short
    /// by a crash is ignored when the log is read).
    pub fn record_many<'i>(
        &mut self,
        key: &str,
        uidvalidity: Option<u32>,
        ids: impl IntoIterator<Item = (&'i str, Option<u64>)>,
    ) -> io::Result<()> {
        let entries: Vec<Entry> = ids
            .into_iter()
            .map(|(id, mbox_len)| Entry {
                key: key.to_owned(),
                uidvalidity,
                id: Some(id.to_owned()),
                mbox_len,
                same_as: None,
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        self.append_all(&entries)?;
        for entry in entries {
            self.mbox_len = entry.mbox_len.or(self.mbox_len);
            apply(&mut self.mailboxes, entry);
        }
        Ok(())
    }

    /// Starts the record of `key` afresh for a new UIDVALIDITY (the old UIDs are meaningless).
    pub fn reset(&mut self, key: &str, uidvalidity: Option<u32>) -> io::Result<()> {
        let entry = Entry {
            key: key.to_owned(),
            uidvalidity,
            id: None,
            mbox_len: None,
            same_as: None,
        };
        self.append(&entry)?;
        apply(&mut self.mailboxes, entry);
        Ok(())
    }

    /// Forgets ids the server no longer has (after deleting them), keeping the record small.
    pub fn retain(&mut self, key: &str, keep: impl Fn(&str) -> bool) {
        if let Some(mailbox) = self.mailboxes.get_mut(key) {
            let before = (mailbox.fetched.len(), mailbox.fetched_uids.len());
            mailbox.fetched.retain(|id| keep(id));
            if !mailbox.fetched_uids.is_empty() {
                mailbox.fetched_uids = mailbox
                    .fetched_uids
                    .iter()
                    .filter(|uid| keep(&uid.to_string()))
                    .collect();
            }
            self.dirty |= before != (mailbox.fetched.len(), mailbox.fetched_uids.len());
        }
    }

    /// POP3: forgets the UIDLs of record `key` that `marks` did not mark (made from the
    /// record's [`MailboxState::fetched`] with [`UidlSet::marks`] and filled by
    /// [`UidlSet::check`] as the server's `UIDL` streamed in): those the server no longer has.
    pub fn retain_marked(&mut self, key: &str, marks: &Marks) {
        if let Some(mailbox) = self.mailboxes.get_mut(key) {
            self.dirty |= mailbox.fetched.retain_marked(marks);
        }
    }

    /// IMAP: forgets the UIDs of mailbox `key` that are not in `present` (the mailbox's UIDs
    /// now), in one pass over the ranges.
    pub fn retain_uids(&mut self, key: &str, present: &UidSet) {
        if let Some(mailbox) = self.mailboxes.get_mut(key) {
            let before = mailbox.fetched_uids.len();
            mailbox.fetched_uids = mailbox.fetched_uids.intersection(present);
            self.dirty |= mailbox.fetched_uids.len() != before;
        }
    }

    /// Writes a snapshot atomically and empties the log; nothing at all when nothing changed
    /// since the snapshot was read (a fetch that found nothing new). The snapshot is written
    /// as it is serialized, never held whole.
    pub fn save(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let snapshot = SnapshotRef {
            version: 1,
            mailboxes: &self.mailboxes,
            mbox_len: self.mbox_len,
            spellings: &self.spellings,
        };
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut file = BufWriter::new(std::fs::File::create(&tmp)?);
            serde_json::to_writer_pretty(&mut file, &snapshot).map_err(io::Error::other)?;
            let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        self.log = None;
        match std::fs::remove_file(log_path(&self.path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }?;
        self.dirty = false;
        Ok(())
    }

    fn append(&mut self, entry: &Entry) -> io::Result<()> {
        self.append_all(std::slice::from_ref(entry))
    }

    /// Appends `entries` to the log, one line each, with one `fdatasync` for them all.
    fn append_all(&mut self, entries: &[Entry]) -> io::Result<()> {
        self.dirty = true;
        if self.log.is_none() {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path(&self.path))?;
            self.log = Some(log);
        }
        let log = self.log.as_mut().expect("opened above");
        let mut lines = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut lines, entry).map_err(io::Error::other)?;
            lines.push(b'\n');
        }
        log.write_all(&lines)?;
        log.sync_data()
    }
}

fn log_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

fn apply(mailboxes: &mut BTreeMap<String, MailboxState>, entry: Entry) {
    if entry.key.is_empty() {
        return; // the store's, not a mailbox's (record_mbox_len)
    }
    let mailbox = mailboxes.entry(entry.key).or_default();
    if mailbox.uidvalidity != entry.uidvalidity {
        *mailbox = MailboxState {
            uidvalidity: entry.uidvalidity,
            ..MailboxState::default()
        };
    }
    if let Some(id) = entry.id {
        mailbox.insert(&id);
    }
    if entry.mbox_len.is_some() {
        mailbox.mbox_len = entry.mbox_len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailcat-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.json")
    }

    #[test]
    fn records_survive_a_crash_before_the_snapshot() {
        let path = temp("log");
        let mut state = FetchState::load(&path).unwrap();
        state.record("imap://h/INBOX", Some(7), "1", None).unwrap();
        state.record("imap://h/INBOX", Some(7), "2", None).unwrap();
        drop(state); // no save: as if killed
        let state = FetchState::load(&path).unwrap();
        assert!(state.is_fetched("imap://h/INBOX", Some(7), "1"));
        assert!(state.is_fetched("imap://h/INBOX", Some(7), "2"));
        assert!(
            !state.is_fetched("imap://h/INBOX", Some(8), "1"),
            "another UIDVALIDITY"
        );
    }

    #[test]
    fn a_torn_last_log_line_is_ignored() {
        let path = temp("torn");
        let mut state = FetchState::load(&path).unwrap();
        state.record("pop3://a@h", None, "uidl-1", None).unwrap();
        drop(state);
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(log_path(&path))
            .unwrap();
        log.write_all(br#"{"key":"pop3://a@h","uidvalidity":null,"id":"uidl-2""#)
            .unwrap();
        let state = FetchState::load(&path).unwrap();
        assert!(state.is_fetched("pop3://a@h", None, "uidl-1"));
        assert!(!state.is_fetched("pop3://a@h", None, "uidl-2"));
    }

    #[test]
    fn a_new_uidvalidity_forgets_the_old_uids() {
        let path = temp("uidvalidity");
        let mut state = FetchState::load(&path).unwrap();
        state.record("imap://h/INBOX", Some(1), "5", None).unwrap();
        state.reset("imap://h/INBOX", Some(2)).unwrap();
        let mailbox = state.mailbox("imap://h/INBOX").unwrap();
        assert!(mailbox.fetched.is_empty() && mailbox.fetched_uids.is_empty());
        state.save().unwrap();
        let state = FetchState::load(&path).unwrap();
        assert_eq!(
            state.mailbox("imap://h/INBOX").unwrap().uidvalidity,
            Some(2)
        );
        assert!(!state.is_fetched("imap://h/INBOX", Some(1), "5"));
    }

    #[test]
    fn save_replaces_the_snapshot_and_empties_the_log() {
        let path = temp("save");
        let mut state = FetchState::load(&path).unwrap();
        state
            .record("imap://h/INBOX", Some(1), "1", Some(120))
            .unwrap();
        state.save().unwrap();
        assert!(!log_path(&path).exists());
        state
            .record("imap://h/INBOX", Some(1), "2", Some(240))
            .unwrap();
        let state = FetchState::load(&path).unwrap();
        let mailbox = state.mailbox("imap://h/INBOX").unwrap();
        assert_eq!(mailbox.fetched_uids.len(), 2);
        assert_eq!(mailbox.mbox_len, Some(240));
    }

    #[test]
    fn the_mbox_length_is_the_last_recorded_whichever_mailbox_wrote_it() {
        let path = temp("shared-mbox");
        let mut state = FetchState::load(&path).unwrap();
        state.record("pop3://a@h", None, "x", Some(100)).unwrap();
        state.record("pop3://b@h", None, "y", Some(250)).unwrap();
        assert_eq!(state.mbox_len(), Some(250));
        drop(state);
        let mut state = FetchState::load(&path).unwrap();
        assert_eq!(state.mbox_len(), Some(250), "from the log");
        assert_eq!(state.mailbox("pop3://a@h").unwrap().mbox_len, Some(100));
        state.save().unwrap();
        assert_eq!(
            FetchState::load(&path).unwrap().mbox_len(),
            Some(250),
            "from the snapshot"
        );
    }

    #[test]
    fn the_mbox_length_before_the_first_message_is_recorded_for_no_mailbox() {
        let path = temp("base-mbox");
        let mut state = FetchState::load(&path).unwrap();
        state.record_mbox_len(42).unwrap();
        assert_eq!(state.mbox_len(), Some(42));
        drop(state); // killed before any message was recorded
        let mut state = FetchState::load(&path).unwrap();
        assert_eq!(state.mbox_len(), Some(42));
        assert!(state.mailbox("").is_none());
        state.save().unwrap();
        assert_eq!(FetchState::load(&path).unwrap().mbox_len(), Some(42));
    }

    const ALICE: Source<'static> = Source {
        login: "alice",
        host: "localhost",
        mailbox: Some("INBOX"),
    };

    fn respelled<'a>(source: Source<'a>, host: &'a str) -> Source<'a> {
        Source { host, ..source }
    }

    #[test]
    fn another_name_of_the_same_imap_mailbox_adopts_its_record_and_is_remembered() {
        let path = temp("respelled-imap");
        let mut state = FetchState::load(&path).unwrap();
        let key = ALICE.key();
        assert_eq!(key, "imap://alice@localhost/INBOX");
        assert_eq!(
            state.resolve(&ALICE, &Identity::Imap(7)).unwrap(),
            Resolved::New(key.clone())
        );
        state.record(&key, Some(7), "1", None).unwrap();
        let numeric = respelled(ALICE, "127.0.0.1");
        let adopted = Resolved::Adopted {
            key: key.clone(),
            host: "localhost".into(),
        };
        assert_eq!(
            state.resolve(&numeric, &Identity::Imap(7)).unwrap(),
            adopted
        );
        assert!(state.is_fetched(adopted.key(), Some(7), "1"));
        drop(state); // the adoption is in the log
        let mut state = FetchState::load(&path).unwrap();
        assert_eq!(
            state.resolve(&numeric, &Identity::Imap(7)).unwrap(),
            Resolved::Known(key.clone())
        );
        state.save().unwrap(); // and in the snapshot
        let mut state = FetchState::load(&path).unwrap();
        assert_eq!(
            state.resolve(&numeric, &Identity::Imap(7)).unwrap(),
            Resolved::Known(key.clone())
        );
        // The name points at another server now: the record stays localhost's alone.
        assert_eq!(
            state.resolve(&numeric, &Identity::Imap(9)).unwrap(),
            Resolved::Unrelated {
                key: numeric.key(),
                hosts: vec!["localhost".into()]
            }
        );
    }

    #[test]
    fn another_server_under_a_new_name_gets_a_record_of_its_own() {
        let path = temp("other-server");
        let mut state = FetchState::load(&path).unwrap();
        state.record(&ALICE.key(), Some(7), "1", None).unwrap();
        let other = respelled(ALICE, "mail.example.org");
        assert_eq!(
            state.resolve(&other, &Identity::Imap(8)).unwrap(),
            Resolved::Unrelated {
                key: "imap://alice@mail.example.org/INBOX".into(),
                hosts: vec!["localhost".into()]
            }
        );
        // Another login or mailbox is no candidate at all.
        let bob = Source {
            login: "bob",
            ..other
        };
        let sent = Source {
            mailbox: Some("Sent"),
            ..other
        };
        for source in [bob, sent] {
            assert_eq!(
                state.resolve(&source, &Identity::Imap(7)).unwrap(),
                Resolved::New(source.key())
            );
        }
        assert!(state.is_fetched(&ALICE.key(), Some(7), "1"));
    }

    #[test]
    fn a_pop3_record_is_adopted_when_most_of_its_uidls_are_listed() {
        let path = temp("respelled-pop3");
        let mut state = FetchState::load(&path).unwrap();
        let pop3 = Source {
            login: "bob",
            host: "pop3.live.com",
            mailbox: None,
        };
        assert_eq!(pop3.key(), "pop3://bob@pop3.live.com");
        for id in ["a", "b", "c"] {
            state.record(&pop3.key(), None, id, None).unwrap();
        }
        let today = respelled(pop3, "outlook.office365.com");
        let listed = |id: &str| ["b", "c", "d"].contains(&id);
        assert_eq!(
            state.resolve(&today, &Identity::Pop3(&listed)).unwrap(),
            Resolved::Adopted {
                key: pop3.key(),
                host: "pop3.live.com".into()
            }
        );
        let elsewhere = respelled(pop3, "pop.example.org");
        let listed = |id: &str| id == "c";
        assert_eq!(
            state.resolve(&elsewhere, &Identity::Pop3(&listed)).unwrap(),
            Resolved::Unrelated {
                key: elsewhere.key(),
                hosts: vec!["pop3.live.com".into()]
            },
            "one UIDL of three is no proof"
        );
    }

    #[test]
    fn a_state_file_from_before_host_names_were_told_apart_is_read() {
        let path = temp("version-1");
        std::fs::write(
            &path,
            br#"{"version":1,"mailboxes":{"imap://alice@localhost/INBOX":{"uidvalidity":7,"fetched":["1","2"],"mbox_len":null}},"mbox_len":null}"#,
        )
        .unwrap();
        let mut state = FetchState::load(&path).unwrap();
        assert_eq!(
            state.resolve(&ALICE, &Identity::Imap(7)).unwrap(),
            Resolved::Known(ALICE.key())
        );
        assert_eq!(
            state
                .resolve(&respelled(ALICE, "127.0.0.1"), &Identity::Imap(7))
                .unwrap()
                .key(),
            ALICE.key()
        );
        state.save().unwrap();
        assert!(FetchState::load(&path)
            .unwrap()
            .is_fetched(&ALICE.key(), Some(7), "2"));
    }

    #[test]
    fn imap_uids_are_kept_as_ranges_and_old_files_are_still_read() {
        let path = temp("ranges");
        // As written before `fetched_uids`: every UID a string.
        std::fs::write(
            &path,
            br#"{"version":1,"mailboxes":{"imap://h/INBOX":{"uidvalidity":7,"fetched":["1","2","3","5"],"mbox_len":null},"pop3://a@h":{"uidvalidity":null,"fetched":["17","x"],"mbox_len":null}}}"#,
        )
        .unwrap();
        let mut state = FetchState::load(&path).unwrap();
        assert!(state.is_fetched("imap://h/INBOX", Some(7), "2"));
        assert!(!state.is_fetched("imap://h/INBOX", Some(7), "4"));
        assert!(!state.is_fetched("imap://h/INBOX", Some(7), "02"));
        assert!(
            state.is_fetched("pop3://a@h", None, "17"),
            "a UIDL stays a string"
        );
        assert_eq!(
            state.fetched_uids("imap://h/INBOX", Some(7)).to_string(),
            "1:3,5"
        );
        assert!(state.fetched_uids("imap://h/INBOX", Some(8)).is_empty());
        for uid in 6..=1_000_000 {
            // What a first fetch of a million messages leaves (without a log line each).
            state
                .mailboxes
                .get_mut("imap://h/INBOX")
                .unwrap()
                .insert(&uid.to_string());
        }
        state.record("imap://h/INBOX", Some(7), "4", None).unwrap();
        state.save().unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.contains(r#""fetched_uids": "1:1000000""#),
            "{written}"
        );
        assert!(written.len() < 1000, "a million UIDs in a few bytes");
        let mut state = FetchState::load(&path).unwrap();
        assert!(state.is_fetched("imap://h/INBOX", Some(7), "999999"));
        assert!(state.is_fetched("pop3://a@h", None, "x"));
        state.retain_uids("imap://h/INBOX", &"10:20".parse().unwrap());
        assert_eq!(
            state.fetched_uids("imap://h/INBOX", Some(7)).to_string(),
            "10:20"
        );
    }

    #[test]
    fn a_pop3_record_is_checked_against_the_listing_as_it_streams_and_keeps_its_format() {
        let path = temp("pop3-marks");
        // As every mailcat wrote it: the UIDLs as a JSON array of strings.
        std::fs::write(
            &path,
            br#"{"version":1,"mailboxes":{"pop3://bob@h":{"uidvalidity":null,"fetched":["u1","u2","u3"],"mbox_len":null}},"mbox_len":null,"spellings":{"pop3://bob@h2":"pop3://bob@h"}}"#,
        )
        .unwrap();
        let mut state = FetchState::load(&path).unwrap();
        let bob = Source {
            login: "bob",
            host: "h",
            mailbox: None,
        };
        assert_eq!(state.known_key(&bob).as_deref(), Some("pop3://bob@h"));
        let adopted = respelled(bob, "h2");
        assert_eq!(state.known_key(&adopted).as_deref(), Some("pop3://bob@h"));
        assert_eq!(
            state.known_key(&respelled(bob, "h3")),
            None,
            "only resolve can tell"
        );
        assert_eq!(
            state.known_key(&ALICE),
            None,
            "IMAP: resolve checks UIDVALIDITY"
        );
        // Nothing changed: nothing is written (the file keeps its one line).
        state.save().unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains('\n'));

        let fetched = &state.mailbox("pop3://bob@h").unwrap().fetched;
        let mut marks = fetched.marks();
        let new: Vec<&str> = ["u2", "u3", "u4"]
            .into_iter()
            .filter(|uidl| !fetched.check(uidl, &mut marks))
            .collect();
        assert_eq!(new, ["u4"]);
        state.retain_marked("pop3://bob@h", &marks);
        state.save().unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        let snapshot: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            snapshot["mailboxes"]["pop3://bob@h"]["fetched"],
            serde_json::json!(["u2", "u3"]),
            "u1 is no longer listed: forgotten; {written}"
        );
        assert_eq!(snapshot["spellings"]["pop3://bob@h2"], "pop3://bob@h");
        let state = FetchState::load(&path).unwrap();
        assert!(state.is_fetched("pop3://bob@h", None, "u3"));
        assert!(!state.is_fetched("pop3://bob@h", None, "u1"));
    }

    #[test]
    fn a_damaged_snapshot_says_what_to_do() {
        let path = temp("damaged");
        std::fs::write(&path, b"{not json").unwrap();
        let error = FetchState::load(&path).unwrap_err();
        assert!(error.to_string().contains("move it away"), "{error}");
    }
}
