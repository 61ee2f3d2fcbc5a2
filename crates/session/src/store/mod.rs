//! Durable local storage for fetched mail: Maildir and mbox writers, the record of what has
//! been fetched, and a lock so two runs cannot share a store.
//!
//! The rule they serve: a message is deleted from a server only after it is durably stored
//! locally. "Durably" means written, `fsync`ed, made visible atomically (Maildir: rename from
//! `tmp/` into `new/`; mbox: appended, `fsync`ed, and the new length recorded), and the
//! directory `fsync`ed, before the caller is told it is stored. A crash at any moment leaves
//! either no trace or a complete message, never a partial one in view.

mod eol;
mod lock;
mod maildir;
mod mbox;
mod mbox_lock;
mod state;
mod uidl_set;

pub use eol::LfWriter;
pub use lock::StoreLock;
pub use maildir::{Maildir, MaildirMessage};
pub use mbox::{Mbox, MboxMessage};
pub use state::{FetchState, Identity, MailboxState, Resolved, Source};
pub use uidl_set::{Marks, UidlSet};

use std::io;
use std::path::Path;

/// This machine's name (for unique file names, and to tell whose lock a dot-lock is).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// `fsync` a directory, so a rename or a new file in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
