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

    /// How many messages one [`Store::commit`] may take. An mbox says 1: its recorded length
    /// is its commit point, so each message is committed and recorded before the next is
    /// appended.
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
/// (so the mbox only ever sees a fast local copy, never a download in progress), then
/// appended under the mbox's locks, `fsync`ed, and its new length recorded with it.
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

    async fn commit(&mut self, messages: Vec<Spooled>) -> io::Result<Vec<Committed>> {
        let mut out = Vec::with_capacity(messages.len());
        for mut message in messages {
            // Waiting for a mail reader's lock may be cut short by a cancellation: nothing is
            // written yet.
            let entry = self.mbox.begin(None).await?;
            let (offset, end) = append_to_mbox(entry, self.mbox.path(), &mut message.file).await?;
            out.push(Committed {
                place: Place::Range {
                    offset,
                    length: end - offset,
                },
                store_len: Some(end),
            });
        }
        Ok(out)
    }

    fn group_limit(&self) -> usize {
        1
    }

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
/// future dropped) leaves no partial message in view. Dropped before the message's locks.
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

/// Appends the spooled message to the mbox as `entry` and commits it; returns where it starts
/// (its `From ` line) and the mbox's new length. On an error the mbox is cut back to where it
/// was.
async fn append_to_mbox(
    mut entry: MboxMessage,
    path: &Path,
    spool: &mut tokio::fs::File,
) -> io::Result<(u64, u64)> {
    let mut cut = CutBack {
        path,
        len: entry.start(),
        armed: true,
    };
    if let Err(e) = async {
        spool.flush().await?;
        spool.rewind().await
    }
    .await
    {
        cut.armed = false;
        let _ = entry.abort().await;
        return Err(e);
    }
    let mut buf = vec![0; 64 * 1024];
    loop {
        let read = match spool.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => entry.write(&buf[..n]).await.map(|()| n),
            Err(e) => Err(e),
        };
        if let Err(e) = read {
            cut.armed = false;
            let _ = entry.abort().await;
            return Err(e);
        }
    }
    let offset = entry.offset();
    let end = entry.commit().await;
    cut.armed = false;
    Ok((offset, end?))
}
