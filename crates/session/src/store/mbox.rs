//! mbox (mboxrd): messages appended to one file, each after a `From ` line; a body line that
//! starts with `From ` (after any number of `>`) gets one more `>`, so readers can undo it.
//! Line endings become LF, as mbox files on Unix have them.
//!
//! Messages are appended under the locks mutt and procmail honour (a dot-lock `FILE.lock` and a
//! `fcntl` lock, see `mbox_lock`), a group of them with one lock and one `fsync`
//! ([`MboxMessage::next`]); if anything fails the file is cut back to its length before the
//! group. [`Mbox::open`] cuts back a file longer than the length recorded after the last
//! complete message (the debris of a crash), but only what is provably ours: a mail reader that
//! rewrote the file (adding `Status:` headers makes it longer) or a delivery agent that
//! appended to it after us must not lose its mail.
//!
//! # The group journal, and the rule for cutting back
//!
//! While a group is appended, a small file beside the mbox, `.FILE.mailcat-group` (hidden, as
//! the rest of mailcat's files), says where the group started (`S`), where its last complete
//! message ends (`E`), the SHA-256 of the bytes from `S` to `E`, and whether a message is still
//! being written after `E` (`open`) or the group is over (`done`). It is rewritten (not synced)
//! before each message's first byte and before the group's `fsync`. With `R` the recorded
//! length and the file longer than `R`, [`Mbox::open`] cuts the file back to `R` when:
//!
//! - the journal has `S <= R <= E <= length`, and the bytes from `S` to `E` are still the ones
//!   it hashed (so they are the group's whole messages, and `R`, a length recorded after one of
//!   them, is one of their ends), and beyond `E` there is nothing, or (`open`) the start of
//!   one more message of ours (below);
//! - or, with no journal that says so (an mbox written by a mailcat before groups, or a power
//!   cut that lost the unsynced journal), what lies beyond `R` looks like the start of one
//!   message of ours: at most two newlines, a `From ` line right there, and no other `From `
//!   line (the rule before groups).
//!
//! Anything else is left as it is, with a warning: the unrecorded messages are fetched again
//! (duplicates), but no mail of another program is ever cut. After a process kill the journal
//! is always there (written before the bytes it describes, in the page cache); after a power
//! cut it may be older than the file, and then its hash or lengths do not match.

use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::fs::OpenOptions;

use super::eol::CrlfToLf;
use super::mbox_lock::{self, DotLock, MboxLock};

/// An mbox file.
#[derive(Debug, Clone)]
pub struct Mbox {
    path: PathBuf,
    lock_wait: Duration,
}

impl Mbox {
    /// Opens (or creates, mode 0600) the file. `committed_len` is the length recorded after the
    /// last complete message (from the fetch state); anything beyond it is cut off.
    pub async fn open(path: impl Into<PathBuf>, committed_len: Option<u64>) -> io::Result<Self> {
        let path = path.into();
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .await?;
        let mbox = Self {
            path,
            lock_wait: mbox_lock::DEFAULT_WAIT,
        };
        if let Some(len) = committed_len {
            if tokio::fs::metadata(&mbox.path).await?.len() > len {
                let lock = mbox.lock().await?;
                let actual = lock.file.metadata()?.len();
                if actual > len && is_ours_beyond(&lock.file, &mbox.journal_path(), len)? {
                    lock.file.set_len(len)?;
                    lock.file.sync_all()?;
                } else if actual > len {
                    tracing::warn!(
                        "{} changed since the last fetch (length {actual}, recorded {len}); left as it is",
                        mbox.path.display()
                    );
                }
            }
        }
        Ok(mbox)
    }

    /// The group journal beside the file, `.FILE.mailcat-group` (see the module's docs).
    pub fn journal_path(&self) -> PathBuf {
        let mut hidden = std::ffi::OsString::from(".");
        match self.path.file_name() {
            Some(name) => {
                hidden.push(name);
                hidden.push(".mailcat-group");
                self.path.with_file_name(hidden)
            }
            // `/` or `..`: no file to open anyway.
            None => {
                let mut name = self.path.as_os_str().to_owned();
                name.push(".mailcat-group");
                PathBuf::from(name)
            }
        }
    }

    /// How long to wait for a mail reader's lock on the file before giving up
    /// ([`io::ErrorKind::WouldBlock`]); a minute unless set.
    #[must_use]
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The dot-lock file mail readers look for (`FILE.lock`), held while a message is appended.
    pub fn dotlock_path(&self) -> PathBuf {
        mbox_lock::dotlock_path(&self.path)
    }

    async fn lock(&self) -> io::Result<MboxLock> {
        mbox_lock::lock(&self.path, self.lock_wait).await
    }

    /// Starts appending a message from `sender` (for the `From ` line; `MAILER-DAEMON` if
    /// unknown), the first of a group ([`MboxMessage::next`] starts the others). The file is
    /// locked (dot-lock and `fcntl`, as mutt and procmail expect) until the group is committed
    /// or aborted.
    pub async fn begin(&self, sender: Option<&str>) -> io::Result<MboxMessage> {
        let MboxLock { file, dotlock } = self.lock().await?;
        let start = file.metadata()?.len();
        // A file that does not end with a blank line gets one (only as many newlines as it
        // lacks: one more would become part of the message before), so `From ` starts a line.
        let pad: &[u8] = match last_two_bytes(&file, start)? {
            [_, b'\n', b'\n'] | [0, _, _] => b"",
            [_, _, b'\n'] => b"\n",
            _ => b"\n\n",
        };
        let journal = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.journal_path())?;
        let mut message = MboxMessage::new(file, dotlock, journal, start);
        let written = message
            .note(Journal::OPEN)
            .and_then(|()| message.put(pad))
            .and_then(|()| message.begin_next(sender));
        match written {
            Ok(()) => Ok(message),
            Err(e) => {
                let _ = message.abort().await;
                Err(e)
            }
        }
    }
}

/// What the group journal says (see the module's docs): one line of fixed length, so that
/// rewriting it in place never leaves a longer old one's tail.
#[derive(Debug, PartialEq, Eq)]
struct Journal {
    /// Where the group starts (the file's length before it).
    start: u64,
    /// Where its last complete message ends.
    end: u64,
    /// A message is being written after `end`.
    open: bool,
    /// SHA-256 of the bytes from `start` to `end`.
    digest: [u8; 32],
}

impl Journal {
    const OPEN: bool = true;
    const DONE: bool = false;
    const MAGIC: &'static str = "mailcat-mbox-group 1";

    fn encode(&self) -> String {
        let digest: String = self.digest.iter().map(|b| format!("{b:02x}")).collect();
        let state = if self.open { "open" } else { "done" };
        format!(
            "{} {:020} {:020} {state} {digest}\n",
            Self::MAGIC,
            self.start,
            self.end
        )
    }

    /// The journal at `path`, or `None` if there is none or it is not one (torn, foreign).
    fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let rest = text.strip_prefix(Self::MAGIC)?.strip_suffix('\n')?;
        let mut fields = rest.split(' ').skip(1);
        let start = fields.next()?.parse().ok()?;
        let end = fields.next()?.parse().ok()?;
        let open = match fields.next()? {
            "open" => true,
            "done" => false,
            _ => return None,
        };
        let hex = fields.next()?;
        if fields.next().is_some() || hex.len() != 64 {
            return None;
        }
        let mut digest = [0; 32];
        for (i, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self {
            start,
            end,
            open,
            digest,
        })
    }
}

/// True if the bytes of `file` beyond `recorded` are ours to cut: the rule of the module's
/// docs, with the group journal at `journal`.
fn is_ours_beyond(file: &std::fs::File, journal: &Path, recorded: u64) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if let Some(group) = Journal::read(journal) {
        if group.start <= recorded && recorded <= group.end && group.end <= len {
            if digest_of(file, group.start, group.end)? != group.digest {
                return Ok(false);
            }
            return Ok(group.end == len || (group.open && is_one_partial_message(file, group.end)?));
        }
    }
    is_one_partial_message(file, recorded)
}

/// SHA-256 of the bytes of `file` from `start` to `end`.
fn digest_of(file: &std::fs::File, mut start: u64, end: u64) -> io::Result<[u8; 32]> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0; 64 * 1024];
    while start < end {
        let want = usize::try_from(end - start)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        file.read_exact_at(&mut buf[..want], start)?;
        context.update(&buf[..want]);
        start += want as u64;
    }
    Ok(digest_bytes(context))
}

fn digest_bytes(context: ring::digest::Context) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// The file's last two bytes before `len` as `[n, a, b]`: `n` how many there are (0 to 2).
fn last_two_bytes(file: &std::fs::File, len: u64) -> io::Result<[u8; 3]> {
    let n = len.min(2);
    let mut out = [n as u8, 0, 0];
    if n > 0 {
        file.read_exact_at(&mut out[3 - n as usize..], len - n)?;
    }
    Ok(out)
}

/// True if the bytes from `offset` on are what [`Mbox::begin`] and writes leave: at most two
/// newlines (the blank line that ends the message before), `From ` or a prefix of it, and no
/// other `From ` line (message lines starting with `From ` are quoted).
fn is_one_partial_message(file: &std::fs::File, mut offset: u64) -> io::Result<bool> {
    let mut buf = vec![0; 64 * 1024];
    let (mut newlines, mut matched, mut started) = (0, 0, false);
    // The last bytes seen, so a `\nFrom ` across two reads is found.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            return Ok(true);
        }
        offset += n as u64;
        let mut rest = &buf[..n];
        while !started {
            let Some((&b, tail)) = rest.split_first() else {
                break;
            };
            if matched == 0 && b == b'\n' && newlines < 2 {
                newlines += 1;
            } else if b == b"From "[matched] {
                matched += 1;
                started = matched == 5;
            } else {
                return Ok(false);
            }
            rest = tail;
        }
        carry.extend_from_slice(rest);
        if carry.windows(6).any(|w| w == b"\nFrom ") {
            return Ok(false);
        }
        carry.drain(..carry.len().saturating_sub(5));
    }
}

/// A message being appended: feed it with [`MboxMessage::write`], then commit or abort (or go
/// on to the next message of the group with [`MboxMessage::next`]).
pub struct MboxMessage {
    file: std::fs::File,
    /// Let go after the file (dropped in this order): the `fcntl` lock goes with the file.
    dotlock: DotLock,
    /// The group journal (see the module's docs).
    journal: std::fs::File,
    /// The file's length before the group (what an abort cuts it back to).
    start: u64,
    /// The file's length with what is written so far.
    len: u64,
    /// SHA-256 of what is written so far, from `start`.
    digest: ring::digest::Context,
    /// Where the message's `From ` line starts (after the newlines that end the one before).
    offset: u64,
    /// At the start of a line (where a `From ` must be quoted).
    line_start: bool,
    /// Bytes at a line start that may still turn out to be `>*From `: held back until decided.
    run: Vec<u8>,
    /// CRLF to LF, across chunks.
    eol: CrlfToLf,
    /// The last byte written, to end the message with a newline.
    last: Option<u8>,
}

impl std::fmt::Debug for MboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MboxMessage")
            .field("file", &self.file)
            .field("start", &self.start)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl MboxMessage {
    fn new(file: std::fs::File, dotlock: DotLock, journal: std::fs::File, start: u64) -> Self {
        Self {
            file,
            dotlock,
            journal,
            start,
            len: start,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            offset: start,
            line_start: true,
            run: Vec::new(),
            eol: CrlfToLf::default(),
            last: None,
        }
    }

    /// Appends message bytes (any chunking): CRLF becomes LF, `From ` lines are quoted. The
    /// bytes are in the file (its page cache, not synced) when this returns.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.dotlock.keep_fresh();
        let mut lf = Vec::with_capacity(chunk.len());
        self.eol.convert(chunk, &mut lf);
        let mut out = Vec::with_capacity(lf.len() + 16);
        for b in lf {
            self.push(&mut out, b);
        }
        self.emit(&out)
    }

    fn push(&mut self, out: &mut Vec<u8>, b: u8) {
        if !self.line_start {
            out.push(b);
            self.line_start = b == b'\n';
            return;
        }
        self.run.push(b);
        let rest = &self.run[self.run.iter().take_while(|&&c| c == b'>').count()..];
        if b"From ".starts_with(rest) {
            if rest.len() == 5 {
                out.push(b'>');
                out.append(&mut self.run);
                self.line_start = false;
            }
            return; // still undecided
        }
        out.append(&mut self.run);
        self.line_start = b == b'\n';
    }

    fn emit(&mut self, out: &[u8]) -> io::Result<()> {
        if let Some(&last) = out.last() {
            self.last = Some(last);
        }
        self.put(out)
    }

    /// Writes `bytes` to the file: every byte of the group goes through here. The write is
    /// done when this returns (a local file, in the page cache: no sync), never left in
    /// flight: a group cut back because its future was dropped (a cancellation) cannot have
    /// a late write land after the cut.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.len)?;
        self.digest.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Writes the `From ` line of a message from `sender` where the file ends now.
    fn begin_next(&mut self, sender: Option<&str>) -> io::Result<()> {
        let sender = sender
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .unwrap_or("MAILER-DAEMON");
        let line = format!("From {sender} {}\n", crate::utc::UtcTime::now().asctime());
        self.offset = self.len;
        self.line_start = true;
        self.run.clear();
        self.eol = CrlfToLf::default();
        self.last = None;
        self.put(line.as_bytes())
    }

    /// Ends the message with a blank line (what is held back written out); not durable yet.
    fn end(&mut self) -> io::Result<()> {
        let mut cr = Vec::new();
        self.eol.finish(&mut cr);
        let mut tail = Vec::new();
        for b in cr {
            self.push(&mut tail, b);
        }
        tail.append(&mut self.run);
        let last = tail.last().copied().or(self.last);
        if last != Some(b'\n') {
            tail.push(b'\n');
        }
        tail.push(b'\n');
        // Written (not synced) before the journal says it is there.
        self.put(&tail)
    }

    /// Rewrites the group journal: the group from `start` to the end of its last complete
    /// message (the whole file as written so far), `open` if a message follows.
    fn note(&mut self, open: bool) -> io::Result<()> {
        let journal = Journal {
            start: self.start,
            end: self.len,
            open,
            digest: digest_bytes(self.digest.clone()),
        };
        self.journal.write_all_at(journal.encode().as_bytes(), 0)
    }

    /// The file's length before the group (what an abort cuts it back to).
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Ends this message (not durable yet) and starts the next one of the group, from
    /// `sender`, under the same locks; returns where the ended message ends (where the next
    /// one's `From ` line starts, [`MboxMessage::offset`] now). The group is made durable by
    /// one [`MboxMessage::commit`], or cut off whole by [`MboxMessage::abort`].
    pub async fn next(&mut self, sender: Option<&str>) -> io::Result<u64> {
        self.end()?;
        let end = self.len;
        self.note(Journal::OPEN)?;
        self.begin_next(sender)?;
        Ok(end)
    }

    /// Where the message starts in the file: the byte offset of its `From ` line. It ends at
    /// the length [`MboxMessage::commit`] (or [`MboxMessage::next`]) returns.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Ends the message with a blank line and makes the group durable, with one `fsync`;
    /// returns the file's new length, to be recorded as the committed length. On an error the
    /// file is cut back to its length before the group.
    pub async fn commit(mut self) -> io::Result<u64> {
        let result = async {
            self.end()?;
            self.note(Journal::DONE)?;
            sync_all(&self.file).await?;
            Ok::<_, io::Error>(self.len)
        }
        .await;
        if result.is_err() {
            let _ = self.file.set_len(self.start);
        }
        result
    }

    /// Gives up: the file is cut back to its length before the group.
    pub async fn abort(self) -> io::Result<()> {
        self.file.set_len(self.start)?;
        sync_all(&self.file).await
    }
}

/// `fsync` of `file` on the blocking pool (a clone of its descriptor: dropped midway, the sync
/// goes on there, which writes nothing of its own).
async fn sync_all(file: &std::fs::File) -> io::Result<()> {
    let file = file.try_clone()?;
    tokio::task::spawn_blocking(move || file.sync_all())
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("mailcat-mbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// Removes the mbox and its group journal.
    fn remove(path: &Path) {
        let journal = Mbox {
            path: path.to_owned(),
            lock_wait: Duration::ZERO,
        }
        .journal_path();
        let _ = std::fs::remove_file(journal);
        std::fs::remove_file(path).unwrap();
    }

    async fn append(mbox: &Mbox, chunks: &[&[u8]]) -> u64 {
        let mut message = mbox.begin(Some("alice@example.com")).await.unwrap();
        let offset = message.offset();
        for chunk in chunks {
            message.write(chunk).await.unwrap();
        }
        let end = message.commit().await.unwrap();
        let text = std::fs::read(mbox.path()).unwrap();
        assert_eq!(text.len() as u64, end);
        assert!(
            text[offset as usize..].starts_with(b"From alice@example.com "),
            "the offset is where the message starts"
        );
        end
    }

    /// The messages: each after its `From ` line, before the blank line that ends it.
    fn messages(text: &str) -> Vec<String> {
        let text = text.strip_suffix("\n\n").expect("ends with a blank line");
        text.split("\n\nFrom ")
            .map(|m| format!("{}\n", m.split_once('\n').unwrap().1))
            .collect()
    }

    #[tokio::test]
    async fn from_lines_are_quoted_and_crlf_becomes_lf_whatever_the_chunking() {
        let path = temp("quote");
        let mbox = Mbox::open(&path, None).await.unwrap();
        let body =
            b"Subject: x\r\n\r\nFrom the start\r\n>From quoted\r\nFromage\r\nnot From here\r\n";
        append(&mbox, &[body]).await;
        let pieces: Vec<&[u8]> = body.chunks(3).collect();
        append(&mbox, &pieces).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("From alice@example.com "), "{text}");
        let all = messages(&text);
        assert_eq!(all.len(), 2, "{text}");
        for m in all {
            assert_eq!(
                m,
                "Subject: x\n\n>From the start\n>>From quoted\nFromage\nnot From here\n"
            );
        }
        remove(&path);
    }

    #[tokio::test]
    async fn a_crash_leftover_beyond_the_committed_length_is_cut() {
        let path = temp("crash");
        let mbox = Mbox::open(&path, None).await.unwrap();
        let committed = append(&mbox, &[b"Subject: one\r\n\r\nbody\r\n"]).await;
        // A crash in the middle of the next message.
        let mut partial = mbox.begin(None).await.unwrap();
        partial
            .write(b"Subject: two\r\n\r\nhalf a bo")
            .await
            .unwrap();
        drop(partial);
        assert!(std::fs::metadata(&path).unwrap().len() > committed);
        Mbox::open(&path, Some(committed)).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
        remove(&path);
    }

    #[tokio::test]
    async fn a_file_rewritten_by_a_mail_reader_is_not_cut() {
        let path = temp("rewritten");
        let mbox = Mbox::open(&path, None).await.unwrap();
        append(&mbox, &[b"Subject: one\r\n\r\nbody\r\n"]).await;
        let committed = append(&mbox, &[b"Subject: two\r\n\r\nbody\r\n"]).await;
        // mutt marks both read: the file grows, and what lies beyond `committed` is the tail
        // of the second message, not a message of ours.
        let text = std::fs::read_to_string(&path).unwrap();
        let rewritten = text.replace("Subject: ", "Status: RO\nSubject: ");
        std::fs::write(&path, &rewritten).unwrap();
        Mbox::open(&path, Some(committed)).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), rewritten);
        // Nor when another account's whole messages lie beyond (two `From ` lines).
        append(&mbox, &[b"a\r\n"]).await;
        append(&mbox, &[b"b\r\n"]).await;
        let before = std::fs::read(&path).unwrap();
        Mbox::open(&path, Some(rewritten.len() as u64))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
        remove(&path);
    }

    #[tokio::test]
    async fn one_blank_line_between_messages_and_none_added_to_a_message() {
        let path = temp("blank");
        let mbox = Mbox::open(&path, None).await.unwrap();
        append(&mbox, &[b"a\r\n"]).await;
        append(&mbox, &[b"b"]).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("\n\n").count(), 2, "{text:?}");
        assert_eq!(messages(&text), ["a\n", "b\n"], "{text:?}");
        // A file someone else left without the blank line gets it before our message.
        std::fs::write(&path, b"From x Thu Nov 26 05:02:21 2026\nc\n").unwrap();
        append(&mbox, &[b"d\r\n"]).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(messages(&text), ["c\n", "d\n"], "{text:?}");
        remove(&path);
    }

    #[tokio::test]
    async fn a_whole_unrecorded_message_is_cut_whatever_separator_it_needed() {
        // A crash after the commit, before the state recorded the new length.
        for before in [
            &b""[..],
            b"From x Thu Nov 26 05:02:21 2026\nc\n",
            b"From x Thu Nov 26 05:02:21 2026\nc",
        ] {
            let path = temp("unrecorded");
            std::fs::write(&path, before).unwrap();
            let mbox = Mbox::open(&path, None).await.unwrap();
            append(&mbox, &[b"From me\r\nb\r\n"]).await;
            Mbox::open(&path, Some(before.len() as u64)).await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), before);
            remove(&path);
        }
    }

    #[tokio::test]
    async fn a_torn_separator_is_cut_too() {
        let path = temp("torn");
        let mbox = Mbox::open(&path, None).await.unwrap();
        let committed = append(&mbox, &[b"a\r\n"]).await;
        // Killed while the next group's `From ` line was written: the journal says a message
        // is open after `committed`.
        let next = mbox.begin(None).await.unwrap();
        drop(next);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(committed + 4).unwrap();
        Mbox::open(&path, Some(committed)).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
        // An older mailcat's debris (no journal): a separator torn after the newline.
        std::fs::remove_file(mbox.journal_path()).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        io::Write::write_all(&mut file, b"\nFro").unwrap();
        Mbox::open(&path, Some(committed)).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
        remove(&path);
    }

    #[tokio::test]
    async fn a_group_gives_each_message_its_place_and_end_with_the_quoting_of_one() {
        let path = temp("group");
        std::fs::write(&path, b"From x Thu Nov 26 05:02:21 2026\nc").unwrap();
        let mbox = Mbox::open(&path, None).await.unwrap();
        let bodies: [&[u8]; 3] = [b"Subject: a\r\n\r\nFrom here\r\n", b"b", b">From b\r\n\r\n"];
        let mut group = mbox.begin(None).await.unwrap();
        let mut offsets = vec![group.offset()];
        let mut ends = Vec::new();
        group.write(bodies[0]).await.unwrap();
        for body in &bodies[1..] {
            ends.push(group.next(None).await.unwrap());
            offsets.push(group.offset());
            group.write(body).await.unwrap();
        }
        assert!(mbox.dotlock_path().exists(), "one lock for the whole group");
        ends.push(group.commit().await.unwrap());
        let text = std::fs::read(&path).unwrap();
        assert_eq!(*ends.last().unwrap(), text.len() as u64);
        let expected = [&b"Subject: a\n\n>From here\n"[..], b"b\n", b">>From b\n\n"];
        for ((offset, end), body) in offsets.iter().zip(&ends).zip(expected) {
            let message = &text[*offset as usize..*end as usize];
            assert!(message.starts_with(b"From MAILER-DAEMON "), "{message:?}");
            let body_at = message.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert_eq!(&message[body_at..], [body, b"\n"].concat(), "{message:?}");
        }
        let all = String::from_utf8(text).unwrap();
        assert_eq!(
            messages(&all)[1..],
            ["Subject: a\n\n>From here\n", "b\n", ">>From b\n\n"]
        );
        // Each end is where the next message starts.
        assert_eq!(ends[..2], offsets[1..]);
        remove(&path);
    }

    #[tokio::test]
    async fn a_group_committed_and_not_recorded_is_cut_off_whole_or_after_its_recorded_part() {
        for recorded_part in [0, 1, 2] {
            let path = temp(&format!("group-unrecorded-{recorded_part}"));
            let mbox = Mbox::open(&path, None).await.unwrap();
            let before = append(&mbox, &[b"Subject: kept\r\n\r\nbody\r\n"]).await;
            let mut group = mbox.begin(None).await.unwrap();
            let mut ends = vec![before];
            for body in [&b"one\r\n"[..], b"two\r\n"] {
                group.write(body).await.unwrap();
                ends.push(group.next(None).await.unwrap());
            }
            group.write(b"three\r\n").await.unwrap();
            group.commit().await.unwrap();
            // The sync died before recording the group, or after recording part of it.
            let recorded = ends[recorded_part];
            let kept = std::fs::read(&path).unwrap()[..recorded as usize].to_vec();
            Mbox::open(&path, Some(recorded)).await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), kept, "{recorded_part}");
            remove(&path);
        }
    }

    #[tokio::test]
    async fn a_group_killed_in_its_third_message_is_cut_off_whole() {
        let path = temp("group-killed");
        let mbox = Mbox::open(&path, None).await.unwrap();
        let before = append(&mbox, &[b"a\r\n"]).await;
        let mut group = mbox.begin(None).await.unwrap();
        group.write(b"one\r\n").await.unwrap();
        group.next(None).await.unwrap();
        group.write(b"two\r\n").await.unwrap();
        group.next(None).await.unwrap();
        group.write(b"half of thr").await.unwrap();
        // Killed: no abort, no cut (the locks go with the process).
        drop(group);
        assert!(std::fs::metadata(&path).unwrap().len() > before);
        Mbox::open(&path, Some(before)).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
        remove(&path);
    }

    #[tokio::test]
    async fn a_group_another_program_changed_after_the_crash_is_not_cut() {
        let setup = |name: &'static str| async move {
            let path = temp(name);
            let mbox = Mbox::open(&path, None).await.unwrap();
            let before = append(&mbox, &[b"Subject: kept\r\n\r\nbody\r\n"]).await;
            let mut group = mbox.begin(None).await.unwrap();
            group.write(b"Subject: one\r\n\r\n").await.unwrap();
            group.next(None).await.unwrap();
            group.write(b"Subject: two\r\n\r\n").await.unwrap();
            group.commit().await.unwrap();
            (path, mbox, before)
        };
        // A delivery agent appended a message after the group (which was done).
        let (path, mbox, before) = setup("group-delivered").await;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        io::Write::write_all(&mut file, b"From bob Thu Nov 26 05:02:21 2026\nhi\n\n").unwrap();
        let changed = std::fs::read(&path).unwrap();
        Mbox::open(&path, Some(before)).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), changed, "delivered");
        drop(mbox);
        remove(&path);
        // A mail reader rewrote a header of the group in place (same length).
        let (path, _mbox, before) = setup("group-rewritten").await;
        let text = std::fs::read_to_string(&path).unwrap();
        let changed = text.replace("Subject: two", "Subject: TWO");
        std::fs::write(&path, &changed).unwrap();
        Mbox::open(&path, Some(before)).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            changed,
            "rewritten"
        );
        remove(&path);
        // With no journal (lost in a power cut), two whole messages are not provably ours.
        let (path, mbox, before) = setup("group-no-journal").await;
        std::fs::remove_file(mbox.journal_path()).unwrap();
        let changed = std::fs::read(&path).unwrap();
        Mbox::open(&path, Some(before)).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), changed, "no journal");
        remove(&path);
    }

    #[test]
    fn the_journal_reads_back_what_it_wrote_and_refuses_anything_else() {
        let path = temp("journal");
        let journal = Journal {
            start: 12,
            end: 3456,
            open: true,
            digest: [0xa5; 32],
        };
        std::fs::write(&path, journal.encode()).unwrap();
        assert_eq!(Journal::read(&path), Some(journal));
        let text = std::fs::read_to_string(&path).unwrap();
        for bad in [&text[..text.len() - 2], &text.replace("open", "opem"), ""] {
            std::fs::write(&path, bad).unwrap();
            assert_eq!(Journal::read(&path), None, "{bad:?}");
        }
        remove(&path);
    }

    #[tokio::test]
    async fn abort_cuts_the_message_out() {
        let path = temp("abort");
        let mbox = Mbox::open(&path, None).await.unwrap();
        let len = append(&mbox, &[b"a\r\n"]).await;
        let mut message = mbox.begin(None).await.unwrap();
        message.write(b"b\r\n").await.unwrap();
        message.abort().await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        remove(&path);
    }

    /// True if another process can take a `fcntl` lock on `path` now (Python's lockf is
    /// fcntl, as mutt's lock).
    fn fcntl_free(path: &Path) -> bool {
        std::process::Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys; fcntl.lockf(open(sys.argv[1],'a'), fcntl.LOCK_EX | fcntl.LOCK_NB)",
            ])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("python3 runs")
            .success()
    }

    #[tokio::test]
    async fn appending_holds_the_dot_lock_and_the_fcntl_lock_mutt_honours() {
        let path = temp("locked");
        let mbox = Mbox::open(&path, None).await.unwrap();
        assert!(fcntl_free(&path));
        let mut message = mbox.begin(None).await.unwrap();
        message.write(b"a\r\n").await.unwrap();
        assert!(mbox.dotlock_path().exists(), "the dot-lock while appending");
        assert!(!fcntl_free(&path), "the fcntl lock while appending");
        message.commit().await.unwrap();
        assert!(!mbox.dotlock_path().exists());
        assert!(fcntl_free(&path));

        // A mail reader's dot-lock is waited for.
        std::fs::write(mbox.dotlock_path(), b"1\n").unwrap();
        let error = mbox
            .clone()
            .lock_wait(Duration::from_millis(100))
            .begin(None)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock, "{error}");
        std::fs::remove_file(mbox.dotlock_path()).unwrap();
        remove(&path);
    }

    #[test]
    fn the_from_line_date_is_asctime() {
        let date = crate::utc::UtcTime::now().asctime();
        assert_eq!(date.len(), 24, "{date}");
        assert_eq!(&date[3..4], " ");
    }
}
