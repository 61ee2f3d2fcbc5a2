//! Maildir (cr.yp.to/proto/maildir.html): each message a file, written in `tmp/`, `fsync`ed,
//! then renamed into `new/`; the rename is atomic, so `new/` only ever holds whole messages.
//! Files have LF line ends, as Dovecot, getmail, fetchmail and mbsync write them and mail
//! readers expect (mutt shows a CR as `^M`); every other byte is the server's.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::fs::File;
use tokio::io::AsyncWriteExt;

use super::eol::LfWriter;
use super::sync_dir;

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

    /// Starts a message: a new file in `tmp/` with a unique name.
    pub async fn begin(&self) -> io::Result<MaildirMessage> {
        self.begin_named(unique_name("")).await
    }

    /// Starts a message that carries `tag` in its name (see [`Maildir::tag_for`]), so a later
    /// run can tell that it is already here with [`Maildir::tags`], even after the message was
    /// moved to `cur/` and given flags by a mail reader.
    pub async fn begin_tagged(&self, tag: &str) -> io::Result<MaildirMessage> {
        self.begin_named(unique_name(tag)).await
    }

    /// The tag for a message known by `id` (any string naming it for good, such as
    /// `imap://user@host/INBOX/<uidvalidity>/<uid>`): 16 hex digits of its SHA-256.
    pub fn tag_for(id: &str) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
        digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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

    async fn begin_named(&self, name: String) -> io::Result<MaildirMessage> {
        let tmp = self.root.join("tmp").join(&name);
        // Mail is private: 0600, like the 0700 directories (procmail and Dovecot do the same).
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .await?;
        Ok(MaildirMessage {
            file: Some(LfWriter::new(file)),
            tmp,
            new: self.root.join("new").join(&name),
            new_dir: self.root.join("new"),
        })
    }
}

/// A message being written. Write to it (it is an `AsyncWrite`), then [`MaildirMessage::commit`];
/// dropped without commit, its file stays in `tmp/` (invisible) until [`MaildirMessage::abort`]
/// or the stale-file sweep removes it.
#[derive(Debug)]
pub struct MaildirMessage {
    file: Option<LfWriter<File>>,
    tmp: PathBuf,
    new: PathBuf,
    new_dir: PathBuf,
}

impl MaildirMessage {
    /// The file being written, as a sink for a fetch: give it the message as the server sends
    /// it (CRLF); it stores LF.
    pub fn writer(&mut self) -> &mut LfWriter<File> {
        self.file
            .as_mut()
            .expect("the file is there until commit or abort")
    }

    /// Makes the message durable and visible: flush, `fsync` the file, rename it into `new/`,
    /// `fsync` `new/`. Returns its final path. Only after this may the server copy go.
    pub async fn commit(mut self) -> io::Result<PathBuf> {
        let mut file = self.file.take().expect("commit runs once");
        file.finish().await?;
        file.flush().await?;
        file.get_mut().sync_all().await?;
        drop(file);
        crate::sync::fault::abort_at("after_write_before_rename");
        tokio::fs::rename(&self.tmp, &self.new).await?;
        let dir = self.new_dir.clone();
        tokio::task::spawn_blocking(move || sync_dir(&dir))
            .await
            .map_err(io::Error::other)??;
        Ok(self.new.clone())
    }

    /// Group commit: makes every message of `messages` durable and visible with one `fsync`
    /// of `new/` for them all: each file flushed and `fdatasync`ed (its data and length), each
    /// renamed into `new/`, then `new/` `fsync`ed once. Returns their final paths, in order.
    /// Only after this returns may the server copies go.
    ///
    /// The guarantee is [`MaildirMessage::commit`]'s: a message is in view only once its file
    /// is whole and synced (the rename comes after the `fdatasync`), and the call returns only
    /// once the renames are durable too. On an error, the files not yet renamed are removed
    /// from `tmp/`; those renamed are whole but may not be durable, and the caller records
    /// none of them.
    pub async fn commit_all(messages: Vec<Self>) -> io::Result<Vec<PathBuf>> {
        let mut messages = messages.into_iter();
        let mut done = Vec::with_capacity(messages.len());
        let mut dir = None;
        while let Some(mut message) = messages.next() {
            let result = async {
                let mut file = message.file.take().expect("commit runs once");
                file.finish().await?;
                file.flush().await?;
                file.get_mut().sync_data().await?;
                drop(file);
                crate::sync::fault::abort_at("after_write_before_rename");
                tokio::fs::rename(&message.tmp, &message.new).await
            }
            .await;
            if let Err(e) = result {
                let _ = tokio::fs::remove_file(&message.tmp).await;
                for rest in messages {
                    let _ = rest.abort().await;
                }
                return Err(e);
            }
            dir.get_or_insert_with(|| message.new_dir.clone());
            done.push(message.new.clone());
        }
        if let Some(dir) = dir {
            tokio::task::spawn_blocking(move || sync_dir(&dir))
                .await
                .map_err(io::Error::other)??;
        }
        Ok(done)
    }

    /// Gives up on the message: its file in `tmp/` is removed.
    pub async fn abort(mut self) -> io::Result<()> {
        self.file.take();
        tokio::fs::remove_file(&self.tmp).await
    }
}

/// The message's file as a sink (as [`MaildirMessage::writer`]): CRLF in, LF stored.
impl tokio::io::AsyncWrite for MaildirMessage {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(self.writer()).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(self.writer()).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(self.writer()).poll_shutdown(cx)
    }
}

/// `time.M<micros>P<pid>Q<counter>[X<tag>].<host>`: unique across processes and hosts.
fn unique_name(tag: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag = if tag.is_empty() {
        String::new()
    } else {
        format!("X{tag}")
    };
    format!(
        "{}.M{}P{}Q{}{tag}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        count,
        hostname()
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
            .writer()
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
            message.writer().write_all(chunk).await.unwrap();
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
        drop(maildir.begin_tagged(&Maildir::tag_for("x")).await.unwrap());
        drop(maildir.begin().await.unwrap());
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
}
