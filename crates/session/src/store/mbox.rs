//! mbox (mboxrd): messages appended to one file, each after a `From ` line; a body line that
//! starts with `From ` (after any number of `>`) gets one more `>`, so readers can undo it.
//! Line endings become LF, as mbox files on Unix have them.
//!
//! A message is appended under the locks mutt and procmail honour (a dot-lock `FILE.lock` and a
//! `fcntl` lock, see `mbox_lock`), then `fsync`ed; if anything fails the file is cut back to its
//! length before the message. [`Mbox::open`] cuts back a file longer than the length recorded
//! after the last complete message (the debris of a crash) — but only when what lies beyond
//! looks like one message of ours (a `From ` line right there, and no other): a mail reader
//! that rewrote the file (adding `Status:` headers makes it longer) must not lose its mail.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

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
                if actual > len && is_one_partial_message(&lock.file, len)? {
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
    /// unknown). The file is locked (dot-lock and `fcntl`, as mutt and procmail expect) until
    /// the message is committed or aborted.
    pub async fn begin(&self, sender: Option<&str>) -> io::Result<MboxMessage> {
        let MboxLock { file, dotlock } = self.lock().await?;
        let start = file.metadata()?.len();
        let sender = sender
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .unwrap_or("MAILER-DAEMON");
        let line = format!("From {sender} {}\n", crate::utc::UtcTime::now().asctime());
        // A file that does not end with a blank line gets one (only as many newlines as it
        // lacks: one more would become part of the message before), so `From ` starts a line.
        let pad: &[u8] = match last_two_bytes(&file, start)? {
            [_, b'\n', b'\n'] | [0, _, _] => b"",
            [_, _, b'\n'] => b"\n",
            _ => b"\n\n",
        };
        let mut message = MboxMessage::new(File::from_std(file), dotlock, start);
        message.offset = start + pad.len() as u64;
        let written = async {
            message.file.write_all(pad).await?;
            message.file.write_all(line.as_bytes()).await
        }
        .await;
        match written {
            Ok(()) => Ok(message),
            Err(e) => {
                let _ = message.abort().await;
                Err(e)
            }
        }
    }
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

/// A message being appended: feed it with [`MboxMessage::write`], then commit or abort.
#[derive(Debug)]
pub struct MboxMessage {
    file: File,
    /// Let go after the file (dropped in this order): the `fcntl` lock goes with the file.
    dotlock: DotLock,
    start: u64,
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

impl MboxMessage {
    fn new(file: File, dotlock: DotLock, start: u64) -> Self {
        Self {
            file,
            dotlock,
            start,
            offset: start,
            line_start: true,
            run: Vec::new(),
            eol: CrlfToLf::default(),
            last: None,
        }
    }

    /// Appends message bytes (any chunking): CRLF becomes LF, `From ` lines are quoted.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.dotlock.keep_fresh();
        let mut lf = Vec::with_capacity(chunk.len());
        self.eol.convert(chunk, &mut lf);
        let mut out = Vec::with_capacity(lf.len() + 16);
        for b in lf {
            self.push(&mut out, b);
        }
        self.emit(out).await
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

    async fn emit(&mut self, out: Vec<u8>) -> io::Result<()> {
        if let Some(&last) = out.last() {
            self.last = Some(last);
        }
        self.file.write_all(&out).await
    }

    /// The file's length before this message (what an abort cuts it back to).
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Where the message starts in the file: the byte offset of its `From ` line. It ends at
    /// the length [`MboxMessage::commit`] returns.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Ends the message with a blank line and makes it durable; returns the file's new length,
    /// to be recorded as the committed length.
    pub async fn commit(mut self) -> io::Result<u64> {
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
        let result = async {
            self.file.write_all(&tail).await?;
            self.file.flush().await?;
            self.file.sync_all().await?;
            Ok::<_, io::Error>(self.file.metadata().await?.len())
        }
        .await;
        if result.is_err() {
            let _ = self.file.set_len(self.start).await;
        }
        result
    }

    /// Gives up: the file is cut back to its length before this message.
    pub async fn abort(self) -> io::Result<()> {
        self.file.set_len(self.start).await?;
        self.file.sync_all().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("mailcat-mbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
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
        std::fs::remove_file(&path).unwrap();
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
        std::fs::remove_file(&path).unwrap();
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
        std::fs::remove_file(&path).unwrap();
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
        std::fs::remove_file(&path).unwrap();
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
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[tokio::test]
    async fn a_torn_separator_is_cut_too() {
        let path = temp("torn");
        let mbox = Mbox::open(&path, None).await.unwrap();
        let committed = append(&mbox, &[b"a\r\n"]).await;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        io::Write::write_all(&mut file, b"\nFro").unwrap();
        Mbox::open(&path, Some(committed)).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
        std::fs::remove_file(&path).unwrap();
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
        std::fs::remove_file(&path).unwrap();
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
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_from_line_date_is_asctime() {
        let date = crate::utc::UtcTime::now().asctime();
        assert_eq!(date.len(), 24, "{date}");
        assert_eq!(&date[3..4], " ");
    }
}
