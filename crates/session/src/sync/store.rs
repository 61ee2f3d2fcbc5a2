//! Where a sync puts messages: the [`Store`] trait, and its Maildir and mbox implementations.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use crate::store::{Maildir, MaildirMessage, Mbox, MboxMessage};

/// Where a stored message is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// A file of its own (Maildir: in `new/`).
    File(PathBuf),
    /// A range of one file (mbox: from its `From ` line to the blank line that ends it).
    Range {
        /// Where the message starts.
        offset: u64,
        /// Its length in the file.
        length: u64,
    },
    /// Somewhere only the store knows (an application's database).
    Other,
}

/// A message made durable by [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Where it is.
    pub place: Place,
    /// For a store whose length is its commit point (mbox): the length after this message, kept
    /// in the state's record with it (see [`crate::store::FetchState::mbox_len`]).
    pub store_len: Option<u64>,
}

impl Committed {
    /// A message at `place`, with no length to record.
    pub fn at(place: Place) -> Self {
        Self {
            place,
            store_len: None,
        }
    }
}

/// A place to keep messages durably, for [`crate::sync::Sync`].
///
/// The sync calls it in this order for each group of messages: [`Store::begin`] for each (the
/// download goes into the returned writer, as the server sends it, CRLF line ends),
/// [`Store::commit`] for the group (or [`Store::abort`] for each message given up on); only once
/// `commit` has returned does the sync record the messages in the state, and only once the
/// whole run is stored and the state saved does it delete anything on the server.
///
/// The contract that makes that safe: when `commit` returns `Ok`, every message it was given
/// is durable (it survives a power cut), and a message is never visible half-written, whatever
/// moment the process dies at. A commit that fails may have made some of the group durable;
/// the sync records none of them, so they are fetched again (or found by
/// [`Store::contains`]) by the next sync.
///
/// A store used by a sync must not be written by another at the same time: hold a lock (the
/// CLI holds a [`crate::store::StoreLock`]).
pub trait Store {
    /// A message being written.
    type Message: AsyncWrite + Unpin;

    /// True if the message known for good as `id` (see [`crate::sync`] for the form) is durably
    /// in the store already: it was committed by a sync that died before recording it. The
    /// sync then records it without fetching it again. The default says no, which is right for
    /// a store that cannot tell; it means such a message is stored twice.
    fn contains(&mut self, id: &str) -> io::Result<bool> {
        let _ = id;
        Ok(false)
    }

    /// Starts the message known for good as `id`, in `slot`: each message begun and not yet
    /// committed or aborted has a slot of its own, below twice [`Store::open_limit`] (a store
    /// may keep one scratch file per slot).
    fn begin(&mut self, slot: usize, id: &str) -> impl Future<Output = io::Result<Self::Message>>;

    /// Gives up on a message begun (the download failed, or the sync stopped): it leaves no
    /// trace in view.
    fn abort(&mut self, message: Self::Message) -> impl Future<Output = ()>;

    /// Makes `messages` durable and visible, in this order: **group commit**, one sync of the
    /// directory (or file) for the whole group when the store can. Returns where each is.
    ///
    /// The sync may drop this future at an await point when it is cancelled: a store must then
    /// leave each message either whole and durable, or out of view.
    fn commit(
        &mut self,
        messages: Vec<Self::Message>,
    ) -> impl Future<Output = io::Result<Vec<Committed>>>;

    /// How many messages one [`Store::commit`] may take (the sync commits in groups of at most
    /// 16 anyway). A store that must commit each message alone says 1: the sync then commits
    /// and records the messages one by one.
    fn group_limit(&self) -> usize {
        usize::MAX
    }

    /// How many messages of one batch the sync may hold begun at once (two batches are open:
    /// one downloading while the other is committed). A store that keeps a scratch file per
    /// message begun (the mbox's spool files) bounds its open files with it.
    fn open_limit(&self) -> usize {
        usize::MAX
    }

    /// The sync is over (whatever its outcome): remove scratch files.
    fn finish(&mut self) {}
}

/// A Maildir as a [`Store`]: each message a file in `tmp/` named with a tag of its id (so
/// [`Store::contains`] can find it in `new/` or `cur/` later); a group is committed with an
/// `fdatasync` of each file, their renames into `new/`, and one `fsync` of `new/`.
#[derive(Debug)]
pub struct MaildirStore {
    maildir: Maildir,
    /// Tags of the messages present, read when first needed.
    tags: Option<std::collections::HashSet<String>>,
}

impl MaildirStore {
    /// Opens the folder (creating it), and removes what a killed sync left in `tmp/`. Hold the
    /// store's lock first.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let maildir = Maildir::open(dir)?;
        maildir.remove_tagged_tmp()?;
        Ok(Self::new(maildir))
    }

    /// A store over a folder already opened (and cleaned with [`Maildir::remove_tagged_tmp`]).
    pub fn new(maildir: Maildir) -> Self {
        Self {
            maildir,
            tags: None,
        }
    }

    /// The folder.
    pub fn maildir(&self) -> &Maildir {
        &self.maildir
    }
}

impl Store for MaildirStore {
    type Message = MaildirMessage;

    fn contains(&mut self, id: &str) -> io::Result<bool> {
        if self.tags.is_none() {
            self.tags = Some(self.maildir.tags()?);
        }
        let tag = Maildir::tag_for(id);
        Ok(self.tags.as_ref().is_some_and(|t| t.contains(&tag)))
    }

    async fn begin(&mut self, _slot: usize, id: &str) -> io::Result<MaildirMessage> {
        self.maildir.begin_tagged(&Maildir::tag_for(id)).await
    }

    async fn abort(&mut self, message: MaildirMessage) {
        let _ = message.abort().await;
    }

    async fn commit(&mut self, messages: Vec<MaildirMessage>) -> io::Result<Vec<Committed>> {
        Ok(MaildirMessage::commit_all(messages)
            .await?
            .into_iter()
            .map(|path| Committed::at(Place::File(path)))
            .collect())
    }
}

/// The spool files an mbox sync may have in each of its two batches.
const MBOX_SPOOLS: usize = 16;

/// An mbox as a [`Store`]: each message is downloaded into a hidden spool file beside it first
/// (so the mbox only ever sees a fast local copy, never a download in progress, and a group's
/// spool files, one per slot, exist at once); then a group is appended under one taking of
/// the mbox's locks, with one `fsync`, and each message's end recorded with it. The mbox's
/// recorded length is its commit point: a group appended and not recorded (a crash) is cut off
/// by the next [`Mbox::open`], which the group journal lets tell our debris from another
/// program's mail, and fetched again.
#[derive(Debug)]
pub struct MboxStore {
    mbox: Mbox,
    spool: PathBuf,
}

/// A message spooled for an mbox.
#[derive(Debug)]
pub struct Spooled {
    file: tokio::fs::File,
}

impl AsyncWrite for Spooled {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.file).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

impl MboxStore {
    /// A store over `mbox` (opened with the state's recorded length, and that length recorded
    /// if the file is not as long), spooling to `spool`, `spool.1`, … (one per slot).
    pub fn new(mbox: Mbox, spool: impl Into<PathBuf>) -> Self {
        Self {
            mbox,
            spool: spool.into(),
        }
    }

    /// The spool file of `slot`: `spool`, then `spool.1`, `spool.2`…
    pub fn spool_path(spool: &Path, slot: usize) -> PathBuf {
        if slot == 0 {
            spool.to_owned()
        } else {
            let mut name = spool.as_os_str().to_owned();
            name.push(format!(".{slot}"));
            PathBuf::from(name)
        }
    }
}

impl Store for MboxStore {
    type Message = Spooled;

    async fn begin(&mut self, slot: usize, _id: &str) -> io::Result<Spooled> {
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(Self::spool_path(&self.spool, slot))
            .await?;
        Ok(Spooled { file })
    }

    async fn abort(&mut self, _message: Spooled) {
        // The spool file is reused, or removed by `finish`.
    }

    async fn commit(&mut self, mut messages: Vec<Spooled>) -> io::Result<Vec<Committed>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // Waiting for a mail reader's lock may be cut short by a cancellation: nothing is
        // written yet.
        let entry = self.mbox.begin(None).await?;
        let spools = messages.iter_mut().map(|m| &mut m.file);
        let ranges = append_to_mbox(entry, self.mbox.path(), spools).await?;
        Ok(ranges
            .into_iter()
            .map(|(offset, end)| Committed {
                place: Place::Range {
                    offset,
                    length: end - offset,
                },
                store_len: Some(end),
            })
            .collect())
    }

    /// At most 16 messages of a batch are begun at once, each with its spool file (a group,
    /// appended under one taking of the mbox's locks, is never bigger).
    fn open_limit(&self) -> usize {
        MBOX_SPOOLS
    }

    fn finish(&mut self) {
        for slot in 0..2 * MBOX_SPOOLS {
            let _ = std::fs::remove_file(Self::spool_path(&self.spool, slot));
        }
    }
}

/// Cuts the mbox back to `len` if dropped armed: an append cut short by a cancellation (the
/// future dropped) leaves no partial group in view. Dropped before the group's locks.
struct CutBack<'a> {
    path: &'a Path,
    len: u64,
    armed: bool,
}

impl Drop for CutBack<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .open(self.path)
                .and_then(|f| {
                    f.set_len(self.len)?;
                    f.sync_all()
                });
        }
    }
}

/// Appends the spooled messages to the mbox, the first as `entry` and the others after it
/// under the same locks, and commits them with one `fsync`; returns where each starts (its
/// `From ` line) and ends (the mbox's length after it). On an error, or a cancellation, the
/// mbox is cut back to where it was before the group.
async fn append_to_mbox(
    mut entry: MboxMessage,
    path: &Path,
    spools: impl Iterator<Item = &mut tokio::fs::File>,
) -> io::Result<Vec<(u64, u64)>> {
    let mut cut = CutBack {
        path,
        len: entry.start(),
        armed: true,
    };
    let mut offsets = Vec::new();
    let mut ends = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    let copied = async {
        for (i, spool) in spools.enumerate() {
            if i > 0 {
                ends.push(entry.next(None).await?);
            }
            offsets.push(entry.offset());
            copy_spool(spool, &mut entry, &mut buf).await?;
        }
        Ok::<_, io::Error>(())
    }
    .await;
    if let Err(e) = copied {
        cut.armed = false;
        let _ = entry.abort().await;
        return Err(e);
    }
    // `commit` cuts the file back itself if it fails.
    let end = entry.commit().await;
    cut.armed = false;
    ends.push(end?);
    Ok(offsets.into_iter().zip(ends).collect())
}

/// Copies a spooled message, from its start, into the mbox's message `entry`.
async fn copy_spool(
    spool: &mut tokio::fs::File,
    entry: &mut MboxMessage,
    buf: &mut [u8],
) -> io::Result<()> {
    spool.flush().await?;
    spool.rewind().await?;
    loop {
        match spool.read(buf).await? {
            0 => return Ok(()),
            n => entry.write(&buf[..n]).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("mailcat-mbox-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// A store over a fresh mbox holding one message already; its length.
    async fn store(name: &str) -> (MboxStore, PathBuf, u64) {
        let path = temp(name);
        let mbox = Mbox::open(&path, None).await.unwrap();
        let mut store = MboxStore::new(mbox, temp(&format!("{name}-spool")));
        let mut first = store.begin(0, "x").await.unwrap();
        first
            .write_all(b"Subject: before\r\n\r\nbody\r\n")
            .await
            .unwrap();
        let committed = store.commit(vec![first]).await.unwrap();
        let len = committed[0].store_len.unwrap();
        assert_eq!(len, std::fs::metadata(&path).unwrap().len());
        (store, path, len)
    }

    async fn spooled(store: &mut MboxStore, slot: usize, body: &[u8]) -> Spooled {
        let mut message = store.begin(slot, "x").await.unwrap();
        message.write_all(body).await.unwrap();
        message
    }

    fn clean(mut store: MboxStore, path: &Path) {
        store.finish();
        let _ = std::fs::remove_file(store.mbox.journal_path());
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn a_group_is_appended_with_one_commit_each_message_with_its_range_and_end() {
        let (mut store, path, before) = store("group").await;
        let bodies: [&[u8]; 3] = [
            b"Subject: 1\r\n\r\none\r\n",
            b"Subject: 2\r\n\r\ntwo",
            b"x\r\n",
        ];
        let mut group = Vec::new();
        for (slot, body) in bodies.iter().enumerate() {
            group.push(spooled(&mut store, slot, body).await);
        }
        let committed = store.commit(group).await.unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(committed.len(), 3);
        let mut at = before;
        for (c, body) in committed
            .iter()
            .zip(["Subject: 1\n\none\n", "Subject: 2\n\ntwo\n", "x\n"])
        {
            let Place::Range { offset, length } = c.place else {
                panic!("{c:?}")
            };
            assert_eq!(offset, at, "each message right after the one before");
            assert_eq!(c.store_len, Some(offset + length), "{c:?}");
            let message =
                std::str::from_utf8(&text[offset as usize..(offset + length) as usize]).unwrap();
            assert!(message.starts_with("From MAILER-DAEMON "), "{message:?}");
            assert!(message.ends_with(&format!("\n{body}\n")), "{message:?}");
            at = offset + length;
        }
        assert_eq!(at, text.len() as u64, "the last end is the file's length");
        // The whole group is durable by then: nothing is cut back as a crash's debris when the
        // group is recorded.
        Mbox::open(&path, Some(at)).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), text);
        clean(store, &path);
    }

    #[tokio::test]
    async fn a_group_whose_third_message_cannot_be_read_leaves_the_mbox_as_it_was() {
        let (mut store, path, before) = store("group-error").await;
        let content = std::fs::read(&path).unwrap();
        let mut group = vec![
            spooled(&mut store, 0, b"one\r\n").await,
            spooled(&mut store, 1, b"two\r\n").await,
        ];
        // The third spool file opened write-only: reading it fails.
        let third = temp("group-error-unreadable");
        std::fs::write(&third, b"three\r\n").unwrap();
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&third)
            .await
            .unwrap();
        group.push(Spooled { file });
        assert!(store.commit(group).await.is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "cut back to {before}"
        );
        assert!(!store.mbox.dotlock_path().exists(), "the locks let go");
        std::fs::remove_file(third).unwrap();
        clean(store, &path);
    }

    #[tokio::test]
    async fn a_group_cut_short_by_a_cancellation_leaves_the_mbox_as_it_was() {
        let (mut store, path, before) = store("group-cancel").await;
        let content = std::fs::read(&path).unwrap();
        let big = vec![b'x'; 48 << 20];
        let group = vec![
            spooled(&mut store, 0, b"one\r\n").await,
            spooled(&mut store, 1, &big).await,
            spooled(&mut store, 2, b"three\r\n").await,
        ];
        let mut commit = Box::pin(store.commit(group));
        // Dropped while the second message is being appended.
        loop {
            tokio::select! {
                result = &mut commit => panic!("the commit ended before it was cancelled: {result:?}"),
                () = tokio::time::sleep(std::time::Duration::from_millis(1)) => {
                    if std::fs::metadata(&path).unwrap().len() > before + (1 << 20) {
                        break;
                    }
                }
            }
        }
        drop(commit);
        assert_eq!(std::fs::read(&path).unwrap(), content);
        assert!(!store.mbox.dotlock_path().exists(), "the locks let go");
        clean(store, &path);
    }

    #[tokio::test]
    async fn a_group_committed_and_not_recorded_is_cut_off_by_the_next_open() {
        let (mut store, path, before) = store("group-unrecorded").await;
        let content = std::fs::read(&path).unwrap();
        let group = vec![
            spooled(&mut store, 0, b"one\r\n").await,
            spooled(&mut store, 1, b"two\r\n").await,
            spooled(&mut store, 2, b"three\r\n").await,
        ];
        store.commit(group).await.unwrap();
        // The sync died before recording the group: the next run opens with the old length.
        Mbox::open(&path, Some(before)).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), content);
        clean(store, &path);
    }
}
