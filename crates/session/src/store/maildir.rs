//! Maildir (cr.yp.to/proto/maildir.html): each message a file, written in `tmp/`, `fsync`ed,
//! then renamed into `new/`; the rename is atomic, so `new/` only ever holds whole messages.
//! Files have LF line ends, as Dovecot, getmail, fetchmail and mbsync write them and mail
//! readers expect (mutt shows a CR as `^M`); every other byte is the server's.
//!
//! A message is written with `std::fs`, not through an async file: it is held in memory (LF
//! already) up to [`SPILL`] bytes, and a bigger one goes to its file in chunks of that size,
//! each written on tokio's blocking pool while the download goes on. A commit is one trip to
//! the blocking pool for a whole group: each file created (if no chunk made it yet), written,
//! `fdatasync`ed and renamed, then `new/` `fsync`ed once. A message of a few KiB thus costs
//! its file's system calls and nothing more, where an async file costs a hop to the blocking
//! pool for every chunk and every operation.

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::eol::CrlfToLf;
use super::sync_dir;

/// A message holds this many bytes in memory before they go to its file: a message this size
/// or smaller is written by its commit alone. Also the size of each write of a bigger one.
const SPILL: usize = 256 * 1024;

/// A Maildir folder.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
}

/// Files left in `tmp/` longer than this are debris of a crash, removed when the folder opens
/// (the Maildir specification's 36 hours).
const STALE_TMP: Duration = Duration::from_secs(36 * 3600);

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Maildir {
    /// Opens the folder, creating `tmp/`, `new/` and `cur/` (mode 0700) if needed, and clears
    /// stale debris from `tmp/`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            if !dir.is_dir() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode_private()
                    .create(&dir)?;
            }
        }
        let maildir = Self { root };
        maildir.remove_stale_tmp(STALE_TMP)?;
        Ok(maildir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Removes files in `tmp/` older than `age`.
    pub fn remove_stale_tmp(&self, age: Duration) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            let modified = entry.metadata()?.modified()?;
            if SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default()
                > age
            {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the files in `tmp/` that [`Maildir::begin_tagged`] started and nobody committed:
    /// the debris of a fetch that was killed. Call only while holding the store's
    /// [`super::StoreLock`] (another fetch may be writing them otherwise); files other programs
    /// write carry no tag and are left to [`Maildir::remove_stale_tmp`].
    pub fn remove_tagged_tmp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            if entry.file_name().to_str().and_then(tag_of).is_some() {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts a message: a new file in `tmp/` with a unique name (created when the first
    /// bytes go to it, at the latest by the commit).
    pub async fn begin(&self) -> io::Result<MaildirMessage> {
        Ok(self.begin_named(unique_name("")))
    }

    /// Starts a message that carries `tag` in its name (see [`Maildir::tag_for`]), so a later
    /// run can tell that it is already here with [`Maildir::tags`], even after the message was
    /// moved to `cur/` and given flags by a mail reader.
    pub async fn begin_tagged(&self, tag: &str) -> io::Result<MaildirMessage> {
        Ok(self.begin_named(unique_name(tag)))
    }

    /// The tag for a message known by `id` (any string naming it for good, such as
    /// `imap://user@host/INBOX/<uidvalidity>/<uid>`): 16 hex digits of its SHA-256.
    pub fn tag_for(id: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
        let mut tag = String::with_capacity(16);
        for b in &digest.as_ref()[..8] {
            tag.push(HEX[usize::from(b >> 4)].into());
            tag.push(HEX[usize::from(b & 15)].into());
        }
        tag
    }

    /// The tags of the messages in `new/` and `cur/` (those written by
    /// [`Maildir::begin_tagged`]).
    pub fn tags(&self) -> io::Result<std::collections::HashSet<String>> {
        let mut tags = std::collections::HashSet::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.root.join(sub))? {
                let name = entry?.file_name();
                if let Some(tag) = name.to_str().and_then(tag_of) {
                    tags.insert(tag.to_owned());
                }
            }
        }
        Ok(tags)
    }

    fn begin_named(&self, name: String) -> MaildirMessage {
        MaildirMessage {
            eol: CrlfToLf::default(),
            buf: Vec::new(),
            spare: Vec::new(),
            file: None,
            spilling: None,
            failed: None,
            tmp: self.root.join("tmp").join(&name),
            new: self.root.join("new").join(&name),
            new_dir: self.root.join("new"),
        }
    }
}

/// What a chunk written on the blocking pool gives back: the file (created by the first
/// chunk), and the buffer, emptied, for the next chunk.
type Spill = (io::Result<std::fs::File>, Vec<u8>);

/// A message being written. Write to it (it is an `AsyncWrite`: the message as the server
/// sends it, CRLF; it stores LF), then [`MaildirMessage::commit`] (or
/// [`MaildirMessage::commit_all`] for a group). Its file in `tmp/` is created when the first
/// 256 KiB go to it, else by the commit; dropped without commit, a file already
/// created stays in `tmp/` (invisible) until [`Maildir::remove_tagged_tmp`] or the stale-file
/// sweep removes it, and [`MaildirMessage::abort`] removes it at once.
///
/// Flushing it does not write what it holds to the file: only the commit makes the message
/// anything more than a download in progress.
#[derive(Debug)]
pub struct MaildirMessage {
    eol: CrlfToLf,
    /// Converted bytes not yet written to the file.
    buf: Vec<u8>,
    /// The buffer of the chunk written before, emptied, for the next one.
    spare: Vec<u8>,
    /// The file, once a chunk created it (away while a chunk is being written).
    file: Option<std::fs::File>,
    /// The chunk being written on the blocking pool.
    spilling: Option<JoinHandle<Spill>>,
    /// A chunk that could not be written: the message is lost, every later call says so.
    failed: Option<io::ErrorKind>,
    tmp: PathBuf,
    new: PathBuf,
    new_dir: PathBuf,
}

/// A message handed to the blocking pool by a commit.
struct ToCommit {
    file: Option<std::fs::File>,
    buf: Vec<u8>,
    tmp: PathBuf,
    new: PathBuf,
}

impl MaildirMessage {
    /// Makes the message durable and visible: its file written and `fsync`ed, renamed into
    /// `new/`, `new/` `fsync`ed. Returns its final path. Only after this may the server copy
    /// go.
    pub async fn commit(self) -> io::Result<PathBuf> {
        let mut paths = Self::commit_all(vec![self]).await?;
        Ok(paths.pop().expect("one message committed"))
    }

    /// Group commit: makes every message of `messages` durable and visible with one `fsync`
    /// of `new/` for them all: each file written and `fdatasync`ed (its data and length), each
    /// renamed into `new/`, then `new/` `fsync`ed once, all in one trip to the blocking pool.
    /// Returns their final paths, in order. Only after this returns may the server copies go.
    ///
    /// The guarantee is [`MaildirMessage::commit`]'s: a message is in view only once its file
    /// is whole and synced (the rename comes after the `fdatasync`), and the call returns only
    /// once the renames are durable too. On an error, the files not yet renamed are removed
    /// from `tmp/`; those renamed are whole but may not be durable, and the caller records
    /// none of them. A message that cannot be written (a full disk) does not stop the ones
    /// before it: they are committed, and the call still fails. Dropped while the blocking
    /// pool works on it (a cancellation), the commit goes on there to its end, so each message
    /// is left whole in `new/` or in `tmp/`.
    pub async fn commit_all(messages: Vec<Self>) -> io::Result<Vec<PathBuf>> {
        let Some(dir) = messages.first().map(|m| m.new_dir.clone()) else {
            return Ok(Vec::new());
        };
        let mut jobs = Vec::with_capacity(messages.len());
        let mut messages = messages.into_iter();
        while let Some(mut message) = messages.next() {
            if let Err(e) = std::future::poll_fn(|cx| message.poll_spilled(cx)).await {
                let _ = message.abort().await;
                for rest in messages {
                    let _ = rest.abort().await;
                }
                for job in jobs {
                    remove_tmp(&job);
                }
                return Err(e);
            }
            message.eol.finish(&mut message.buf);
            jobs.push(ToCommit {
                file: message.file.take(),
                buf: std::mem::take(&mut message.buf),
                tmp: std::mem::take(&mut message.tmp),
                new: std::mem::take(&mut message.new),
            });
        }
        tokio::task::spawn_blocking(move || commit_blocking(jobs, &dir))
            .await
            .map_err(io::Error::other)?
    }

    /// Gives up on the message: its file in `tmp/`, if it has one yet, is removed.
    pub async fn abort(mut self) -> io::Result<()> {
        let spilled = std::future::poll_fn(|cx| self.poll_spilled(cx)).await;
        let had_file = self.file.take().is_some() || spilled.is_err();
        match std::fs::remove_file(&self.tmp) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !had_file => Ok(()),
            other => other,
        }
    }

    /// Waits for the chunk being written, if any; then starts on the next one if the buffer
    /// is full.
    fn poll_spilled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(kind) = self.failed {
            return Poll::Ready(Err(io::Error::new(
                kind,
                "an earlier write of this message failed",
            )));
        }
        if let Some(spilling) = self.spilling.as_mut() {
            let (file, spare) = match ready!(Pin::new(spilling).poll(cx)) {
                Ok(spill) => spill,
                Err(e) => (Err(io::Error::other(e)), Vec::new()),
            };
            self.spilling = None;
            match file {
                Ok(file) => {
                    self.file = Some(file);
                    self.spare = spare;
                }
                Err(e) => {
                    self.failed = Some(e.kind());
                    return Poll::Ready(Err(e));
                }
            }
        }
        if self.buf.len() >= SPILL {
            self.spill();
        }
        Poll::Ready(Ok(()))
    }

    /// Writes the buffer to the file (creating it) on the blocking pool.
    fn spill(&mut self) {
        let mut chunk = std::mem::replace(&mut self.buf, std::mem::take(&mut self.spare));
        let file = self.file.take();
        let tmp = self.tmp.clone();
        self.spilling = Some(tokio::task::spawn_blocking(move || {
            let written = match file {
                Some(file) => Ok(file),
                None => create(&tmp),
            }
            .and_then(|mut file| file.write_all(&chunk).map(|()| file));
            chunk.clear();
            (written, chunk)
        }));
    }
}

impl Drop for MaildirMessage {
    fn drop(&mut self) {
        // A chunk being written goes on to its end; its file stays in `tmp/` (see the type).
        self.spilling.take();
    }
}

/// Creates a message's file in `tmp/`: new, private (0600, like the 0700 directories, as
/// procmail and Dovecot do).
fn create(tmp: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
}

fn remove_tmp(job: &ToCommit) {
    let _ = std::fs::remove_file(&job.tmp);
}

/// The blocking half of [`MaildirMessage::commit_all`], in phases, so that a file system with
/// a journal commits it once for the group rather than once per message: every file written
/// (and its write-back started), then each `fdatasync`ed, then each renamed, then `new/`
/// `fsync`ed once. Each rename still comes after its file's `fdatasync`.
///
/// On ext4, `fdatasync` of a file whose blocks are not yet allocated (delayed allocation)
/// allocates them and commits the journal for it: one commit per message when each is synced
/// in turn. Started write-back (`POSIX_FADV_DONTNEED` starts it, as `sync_file_range` would)
/// allocates every file's blocks in the running transaction, so the first `fdatasync` commits
/// them all and the others only wait for their data.
fn commit_blocking(mut jobs: Vec<ToCommit>, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let fail = |jobs: &[ToCommit], e: io::Error| {
        for job in jobs {
            remove_tmp(job);
        }
        Err(e)
    };
    let mut files = Vec::with_capacity(jobs.len());
    // A file that cannot be written (a full disk) ends the group there: the ones before it
    // are still committed (and the call fails all the same, so none is recorded: the next
    // sync finds them by their tags), as they would be had each been committed alone.
    let mut failed = None;
    for job in jobs.iter_mut() {
        let written = match job.file.take() {
            Some(file) => Ok(file),
            None => create(&job.tmp),
        }
        .and_then(|mut file| {
            file.write_all(&job.buf)?;
            // Only a hint: a file system without write-back (tmpfs) ignores it.
            let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
            Ok(file)
        });
        match written {
            Ok(file) => files.push(file),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_some() {
        for job in &jobs[files.len()..] {
            remove_tmp(job);
        }
        jobs.truncate(files.len());
    }
    for file in &files {
        if let Err(e) = file.sync_data() {
            return fail(&jobs, failed.unwrap_or(e));
        }
    }
    drop(files);
    let mut done = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        crate::sync::fault::abort_at("after_write_before_rename");
        if let Err(e) = std::fs::rename(&job.tmp, &job.new) {
            return fail(&jobs[i..], failed.unwrap_or(e));
        }
        done.push(job.new.clone());
    }
    if !done.is_empty() {
        sync_dir(dir)?;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// The message's sink: CRLF in, LF stored. Each write takes all it is given (and reports it
/// all, so a caller counts the message as the server sent it), unless the buffer is full and
/// the chunk before is still being written.
impl tokio::io::AsyncWrite for MaildirMessage {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() >= SPILL || this.failed.is_some() {
            ready!(this.poll_spilled(cx))?;
        }
        this.eol.convert(data, &mut this.buf);
        if this.buf.len() >= SPILL && this.spilling.is_none() {
            this.spill();
        }
        Poll::Ready(Ok(data.len()))
    }

    /// Waits for the chunk being written, if any (what is held stays held: see the type).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.spilling.is_some() || this.failed.is_some() {
            ready!(this.poll_spilled(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// `time.M<micros>P<pid>Q<counter>[X<tag>].<host>`: unique across processes and hosts.
fn unique_name(tag: &str) -> String {
    // The host name read once (a file read per message otherwise); the pid asked each time
    // (a process may fork).
    static HOST: OnceLock<String> = OnceLock::new();
    let host = HOST.get_or_init(hostname);
    let pid = std::process::id();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let x = if tag.is_empty() { "" } else { "X" };
    format!(
        "{}.M{}P{pid}Q{count}{x}{tag}.{host}",
        now.as_secs(),
        now.subsec_micros(),
    )
}

/// The tag in a file name written by [`Maildir::begin_tagged`]: the unique part (second
/// dot-separated field) ends with `X` and 16 lower-case hex digits.
fn tag_of(name: &str) -> Option<&str> {
    let unique = name.split(':').next()?.split('.').nth(1)?;
    let (_, tag) = unique.rsplit_once('X')?;
    (tag.len() == 16 && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(tag)
}

fn hostname() -> String {
    // The specification: `/` as \057 and `:` as \072.
    super::hostname()
        .replace('/', "\\057")
        .replace(':', "\\072")
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for std::fs::DirBuilder {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailcat-maildir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn a_committed_message_is_in_new_and_nothing_is_left_in_tmp() {
        let root = temp("commit");
        let maildir = Maildir::open(&root).unwrap();
        let mut message = maildir.begin().await.unwrap();
        message
            .write_all(b"Subject: hi\r\n\r\nbody\r\n")
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_dir(root.join("new")).unwrap().count(),
            0,
            "invisible before commit"
        );
        let path = message.commit().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"Subject: hi\n\nbody\n");
        assert!(path.starts_with(root.join("new")));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mail is readable by its owner only");
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn crlf_is_stored_as_lf_across_writes_and_a_bare_cr_stays() {
        let root = temp("lf");
        let maildir = Maildir::open(&root).unwrap();
        let mut message = maildir.begin().await.unwrap();
        for chunk in [&b"Subject: x\r"[..], b"\n\r\nA\rB\r\n", b"last\r"] {
            message.write_all(chunk).await.unwrap();
        }
        let path = message.commit().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"Subject: x\n\nA\rB\nlast\r");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn an_aborted_message_leaves_no_trace_and_names_are_unique() {
        let root = temp("abort");
        let maildir = Maildir::open(&root).unwrap();
        let a = maildir.begin().await.unwrap();
        let b = maildir.begin().await.unwrap();
        assert_ne!(a.tmp, b.tmp);
        a.abort().await.unwrap();
        b.abort().await.unwrap();
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn a_tagged_message_is_found_in_new_and_in_cur_with_flags() {
        let root = temp("tagged");
        let maildir = Maildir::open(&root).unwrap();
        let tag = Maildir::tag_for("imap://carol@h/INBOX/7/1");
        assert_eq!(tag.len(), 16);
        assert_ne!(tag, Maildir::tag_for("imap://carol@h/INBOX/7/2"));
        assert!(maildir.tags().unwrap().is_empty());
        let untagged = maildir.begin().await.unwrap().commit().await.unwrap();
        let path = maildir
            .begin_tagged(&tag)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
        assert_eq!(
            maildir.tags().unwrap().into_iter().collect::<Vec<_>>(),
            std::slice::from_ref(&tag)
        );
        // A mail reader moves it to cur/ and adds flags; Dovecot adds ,S=size.
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        std::fs::rename(&path, root.join("cur").join(format!("{name},S=0:2,S"))).unwrap();
        std::fs::remove_file(untagged).unwrap();
        assert!(maildir.tags().unwrap().contains(&tag));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn tagged_debris_in_tmp_is_swept_and_other_files_stay() {
        let root = temp("tagged-debris");
        let maildir = Maildir::open(&root).unwrap();
        // A killed fetch leaves files with a tag (a commit cut short, or the first chunk of
        // a big message); other programs' files have none.
        std::fs::write(
            root.join("tmp").join(unique_name(&Maildir::tag_for("x"))),
            b"x",
        )
        .unwrap();
        std::fs::write(root.join("tmp").join(unique_name("")), b"x").unwrap();
        assert_eq!(maildir.remove_tagged_tmp().unwrap(), 1);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn stale_tmp_files_are_swept() {
        let root = temp("stale");
        let maildir = Maildir::open(&root).unwrap();
        std::fs::write(root.join("tmp/debris"), b"partial").unwrap();
        assert_eq!(
            maildir.remove_stale_tmp(Duration::from_secs(3600)).unwrap(),
            0,
            "fresh files stay"
        );
        assert_eq!(maildir.remove_stale_tmp(Duration::ZERO).unwrap(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A message of `lines` lines of 100 bytes (CRLF), and the same with LF.
    fn big(lines: usize) -> (Vec<u8>, Vec<u8>) {
        let mut crlf = Vec::new();
        let mut lf = Vec::new();
        for i in 0..lines {
            let line = format!("{i:097}");
            crlf.extend_from_slice(line.as_bytes());
            crlf.extend_from_slice(b"\r\n");
            lf.extend_from_slice(line.as_bytes());
            lf.push(b'\n');
        }
        (crlf, lf)
    }

    #[tokio::test]
    async fn a_big_message_goes_to_its_file_in_chunks_and_is_whole_after_commit() {
        let root = temp("big");
        let maildir = Maildir::open(&root).unwrap();
        let (crlf, lf) = big(3 * SPILL / 100 + 77);
        let mut message = maildir.begin_tagged("0123456789abcdef").await.unwrap();
        // Chunks of an odd size, so line ends are split between them.
        for chunk in crlf.chunks(4093) {
            assert_eq!(message.write(chunk).await.unwrap(), chunk.len());
        }
        message.flush().await.unwrap();
        assert_eq!(
            std::fs::read_dir(root.join("tmp")).unwrap().count(),
            1,
            "the first chunks are in tmp/, out of view"
        );
        assert_eq!(std::fs::read_dir(root.join("new")).unwrap().count(), 0);
        let path = message.commit().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), lf);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        // Given up on after its first chunks: nothing is left.
        let mut message = maildir.begin().await.unwrap();
        message.write_all(&crlf).await.unwrap();
        message.flush().await.unwrap();
        message.abort().await.unwrap();
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn a_group_is_committed_in_order_and_a_small_message_touches_no_file_before() {
        let root = temp("group");
        let maildir = Maildir::open(&root).unwrap();
        let mut messages = Vec::new();
        for i in 0..5 {
            let mut message = maildir.begin().await.unwrap();
            let body = format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(i * 1000));
            message.write_all(body.as_bytes()).await.unwrap();
            message.flush().await.unwrap();
            messages.push(message);
        }
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        let paths = MaildirMessage::commit_all(messages).await.unwrap();
        assert_eq!(paths.len(), 5);
        for (i, path) in paths.iter().enumerate() {
            let want = format!("Subject: {i}\n\n{}\n", "x".repeat(i * 1000));
            assert_eq!(std::fs::read(path).unwrap(), want.as_bytes());
        }
        assert_eq!(std::fs::read_dir(root.join("new")).unwrap().count(), 5);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
