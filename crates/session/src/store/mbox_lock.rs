//! The locks that mail readers and delivery agents honour on an mbox while it is written, taken
//! as mutt and procmail take them: a dot-lock `FILE.lock` and a `fcntl` lock on the whole file.
//!
//! The dot-lock is created atomically in the way that also holds over NFS (liblockfile, mutt's
//! dotlock): a uniquely named file is written, hard-linked to `FILE.lock`, and the lock is ours
//! when that file's link count is then 2. It holds our process id, as liblockfile writes it, and
//! its time is renewed every minute while held. A dot-lock is stale, and removed, when the
//! process it names is gone (a `PID` or Dovecot's `PID:HOST` naming this host), or, naming no
//! process of this host, when it is older than [`STALE_AFTER`] by the file system's own clock
//! (liblockfile's rules; mutt's dotlock writes no process id).
//!
//! Both are tried without blocking and let go together when either is busy, so mailcat never
//! holds one while waiting for the other (a reader taking them in the other order would
//! otherwise wait for us while we wait for it).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A dot-lock older than this is left over by a program that died (liblockfile's 5 minutes).
pub(super) const STALE_AFTER: Duration = Duration::from_secs(300);

/// How long a writer waits for a mail reader to let go of the mbox by default.
pub(super) const DEFAULT_WAIT: Duration = Duration::from_secs(60);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Both locks on an mbox, held until dropped. The file is the one `fcntl` locked: write through
/// it, and open no other descriptor of the mbox meanwhile (closing any descriptor of a file
/// drops a process's `fcntl` locks on it).
#[derive(Debug)]
pub(crate) struct MboxLock {
    /// The mbox, opened to read and append.
    pub(crate) file: File,
    pub(crate) dotlock: DotLock,
}

/// `FILE.lock`, removed when dropped.
#[derive(Debug)]
pub(crate) struct DotLock {
    path: PathBuf,
    touched: Instant,
}

impl DotLock {
    /// Keeps a lock held a long time (a big message) from looking stale to others: its time
    /// is renewed every minute (liblockfile's `lockfile_touch`).
    pub(crate) fn keep_fresh(&mut self) {
        if self.touched.elapsed() < Duration::from_secs(60) {
            return;
        }
        self.touched = Instant::now();
        let touched = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|file| file.set_modified(SystemTime::now()));
        if let Err(e) = touched {
            tracing::warn!("cannot renew the dot-lock {}: {e}", self.path.display());
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes both locks on the mbox at `path` (creating it, mode 0600, if needed), waiting up to
/// `wait` for another program to let go; then fails with [`io::ErrorKind::WouldBlock`].
pub(crate) async fn lock(path: &Path, wait: Duration) -> io::Result<MboxLock> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(50);
    loop {
        let held_by = match try_dotlock(path)? {
            Err(held) => held,
            Ok(dotlock) => {
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(path)?;
                match rustix::fs::fcntl_lock(
                    &file,
                    rustix::fs::FlockOperation::NonBlockingLockExclusive,
                ) {
                    Ok(()) => return Ok(MboxLock { file, dotlock }),
                    Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
                        "a fcntl lock on it".to_owned()
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if Instant::now() + pause > deadline {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is locked by another program ({held_by}) — a mail reader or delivery agent is writing it; waited {} s, try again later",
                    path.display(),
                    wait.as_secs()
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// `FILE.lock` for the mbox `FILE`.
pub(crate) fn dotlock_path(mbox: &Path) -> PathBuf {
    let mut name = mbox.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// One attempt at the dot-lock: `Ok(Err(what))` says who holds it.
fn try_dotlock(mbox: &Path) -> io::Result<Result<DotLock, String>> {
    let lock = dotlock_path(mbox);
    let dir = match mbox.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = mbox.file_name().unwrap_or_default().to_string_lossy();
    // Hidden, so a mail reader's folder list never shows it.
    let unique = dir.join(format!(
        ".{name}.lock.mailcat-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&unique)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the dot-lock for {} in {}: {e}",
                    mbox.display(),
                    dir.display()
                ),
            )
        })?;
    // No fsync: a lock needs no durability (a crash ends its holder, which makes it stale).
    let written = writeln!(file, "{}", std::process::id());
    let now = file.metadata().and_then(|m| m.modified());
    drop(file);
    let got = written.and_then(|()| {
        // link(2) may report a failure that happened (NFS): the link count tells.
        let _ = std::fs::hard_link(&unique, &lock);
        Ok(std::fs::metadata(&unique)?.nlink() == 2)
    });
    let _ = std::fs::remove_file(&unique);
    if got? {
        return Ok(Ok(DotLock {
            path: lock,
            touched: Instant::now(),
        }));
    }
    let Some(why) = stale(&lock, now.unwrap_or_else(|_| SystemTime::now())) else {
        return Ok(Err(format!("its dot-lock {}", lock.display())));
    };
    tracing::warn!("removing the stale dot-lock {} ({why})", lock.display());
    match std::fs::remove_file(&lock) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(Err(format!(
            "a stale dot-lock {} just removed",
            lock.display()
        ))),
    }
}

/// Why the dot-lock at `lock` is stale, if it is; `now` is the file system's time. A lock that
/// names a process of this machine is stale exactly when that process is gone; any other by
/// its age (liblockfile's rules).
fn stale(lock: &Path, now: SystemTime) -> Option<String> {
    let metadata = std::fs::metadata(lock).ok()?;
    if let Some(pid) = local_pid(lock) {
        return match rustix::process::test_kill_process(pid) {
            Err(rustix::io::Errno::SRCH) => Some(format!("process {pid} is gone")),
            _ => None,
        };
    }
    let age = now
        .duration_since(metadata.modified().ok()?)
        .unwrap_or_default();
    (age > STALE_AFTER).then(|| format!("{} s old", age.as_secs()))
}

/// The process a dot-lock names (`PID`, or Dovecot's `PID:HOST`), if it is of this machine.
fn local_pid(lock: &Path) -> Option<rustix::process::Pid> {
    let text = std::fs::read_to_string(lock).ok()?;
    let (pid, host) = match text.trim().split_once(':') {
        Some((pid, host)) => (pid, Some(host)),
        None => (text.trim(), None),
    };
    if host.is_some_and(|h| h != super::hostname()) {
        return None;
    }
    rustix::process::Pid::from_raw(pid.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailcat-mboxlock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("inbox")
    }

    fn entries(mbox: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(mbox.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn the_dot_lock_is_there_while_held_and_gone_after() {
        let mbox = temp("held");
        let lock = lock(&mbox, Duration::ZERO).await.unwrap();
        assert_eq!(
            entries(&mbox),
            ["inbox", "inbox.lock"],
            "no other file left"
        );
        assert_eq!(
            std::fs::read_to_string(dotlock_path(&mbox)).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(lock);
        assert_eq!(entries(&mbox), ["inbox"]);
    }

    #[tokio::test]
    async fn a_dot_lock_of_a_live_process_is_waited_for_then_refused() {
        let mbox = temp("live");
        // Process 1 is always there.
        std::fs::write(dotlock_path(&mbox), "1\n").unwrap();
        let error = lock(&mbox, Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert!(error.to_string().contains("inbox.lock"), "{error}");
        assert!(dotlock_path(&mbox).exists(), "another's lock stays");
        // Dovecot's form, naming another host: its process cannot be checked from here.
        std::fs::write(dotlock_path(&mbox), "999999999:elsewhere.example\n").unwrap();
        assert!(lock(&mbox, Duration::ZERO).await.is_err());
        // A live process's lock is not stale however old (it may be appending a big message).
        std::fs::write(dotlock_path(&mbox), "1\n").unwrap();
        File::options()
            .write(true)
            .open(dotlock_path(&mbox))
            .unwrap()
            .set_modified(SystemTime::now() - 2 * STALE_AFTER)
            .unwrap();
        assert!(lock(&mbox, Duration::ZERO).await.is_err());
    }

    #[tokio::test]
    async fn a_dot_lock_of_a_dead_process_or_an_old_one_is_stale() {
        let mbox = temp("stale");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(dotlock_path(&mbox), format!("{dead}\n")).unwrap();
        drop(lock(&mbox, Duration::from_secs(2)).await.unwrap());

        // mutt's dotlock writes nothing: only the age tells.
        let file = File::create(dotlock_path(&mbox)).unwrap();
        file.set_modified(SystemTime::now() - STALE_AFTER - Duration::from_secs(5))
            .unwrap();
        drop(file);
        drop(lock(&mbox, Duration::from_secs(2)).await.unwrap());
        assert_eq!(entries(&mbox), ["inbox"]);
    }

    #[tokio::test]
    async fn a_lock_held_long_is_renewed_so_it_never_looks_stale() {
        let mbox = temp("renewed");
        let mut lock = lock(&mbox, Duration::ZERO).await.unwrap();
        let old = SystemTime::now() - STALE_AFTER;
        File::options()
            .write(true)
            .open(dotlock_path(&mbox))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let modified = || {
            std::fs::metadata(dotlock_path(&mbox))
                .unwrap()
                .modified()
                .unwrap()
        };
        lock.dotlock.keep_fresh();
        assert_eq!(modified(), old, "renewed once a minute, not at every write");
        lock.dotlock.touched -= Duration::from_secs(61);
        lock.dotlock.keep_fresh();
        assert!(modified() > old + STALE_AFTER / 2, "renewed");
    }

    #[tokio::test]
    async fn a_fcntl_lock_of_another_process_is_waited_for() {
        let mbox = temp("fcntl");
        std::fs::write(&mbox, b"").unwrap();
        // Python's lockf is fcntl(F_SETLKW), as mutt's.
        let mut holder = std::process::Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)",
            ])
            .arg(&mbox)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "locked\n");
        let error = lock(&mbox, Duration::from_millis(300)).await.unwrap_err();
        assert!(error.to_string().contains("fcntl"), "{error}");
        assert!(
            !dotlock_path(&mbox).exists(),
            "the dot-lock is let go while waiting"
        );
        holder.kill().unwrap();
        holder.wait().unwrap();
        drop(lock(&mbox, Duration::from_secs(2)).await.unwrap());
    }
}
