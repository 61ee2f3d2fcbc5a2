//! One run per store: an exclusive `flock` on a file of its own (the CLI's are
//! `<maildir>/.mailcat.lock` and `.<mbox>.mailcat.lock` beside an mbox). It is not the mbox's
//! dot-lock `<mbox>.lock` that mail readers honour, which is held only while a message is
//! appended (`mbox_lock`).

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// Holds the lock until dropped. The lock is the operating system's (`flock`), so it is
/// released when the process ends, however it ends: no stale lock files after a crash.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Takes the lock at `path`, or fails at once if another process holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                path: path.to_owned(),
            }),
            Err(TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "another mailcat is using this store (lock {} is held); wait for it to finish",
                    path.display()
                ),
            )),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("mailcat-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.lock");
        let first = StoreLock::try_acquire(&path).unwrap();
        let second = StoreLock::try_acquire(&path).unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        assert!(second.to_string().contains("another mailcat"));
        drop(first);
        StoreLock::try_acquire(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
