//! `--capture FILE`: the exact bytes each server sends, written to a file that `mailcat decode`
//! can read back (the `-v` trace escapes and cuts lines, so it cannot be replayed).
//!
//! One file per protocol, so that a command talking to an incoming and an outgoing server
//! (`check`, `send` with a copy to Sent) keeps their streams apart: `FILE.imap`, `FILE.pop3`,
//! `FILE.smtp` ([`path_for`]). Each file is created with mode 0600 on the first byte its server
//! sends, and holds the bytes of every connection to that server in this run, in order (a
//! reconnection starts with a new greeting). Only what the server sends is written: after
//! STARTTLS, the decrypted bytes follow the plaintext ones.
//!
//! Secrets the client sent (a password, a SASL response, a token) are replaced by [`MARKER`]
//! wherever a server echoes one back (some put the failed command in their error text). A
//! secret shorter than four bytes is not looked for: replacing it everywhere would garble
//! the capture. The bytes are otherwise exact.
//!
//! The capture is process-wide, like the trace: [`start`] once, [`finish`] at the end.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::endpoint::Protocol;
use crate::trace::{redact_credentials, Redaction};

/// What replaces a client secret echoed by a server.
pub const MARKER: &[u8] = b"<mailcat: secret redacted>";

/// Shorter secrets are not looked for (see the module docs).
const MIN_SECRET: usize = 4;

/// Most secrets remembered (a run sends a handful).
const MAX_SECRETS: usize = 32;

static CAPTURE: Mutex<Option<Capture>> = Mutex::new(None);

/// The capture in progress.
struct Capture {
    base: PathBuf,
    /// One per protocol, in [`index`] order; created on first use.
    sinks: [Option<Sink>; 3],
    secrets: Vec<Vec<u8>>,
    /// The first failure, reported by [`finish`]; capturing stops for that file.
    failure: Option<(PathBuf, io::Error)>,
}

/// One capture file.
struct Sink {
    path: PathBuf,
    file: Option<File>,
    /// Received bytes not yet written: the end of what came, while it may be the start of a
    /// secret.
    pending: Vec<u8>,
    /// Creating or writing the file failed: nothing more is written.
    failed: bool,
}

/// The file the bytes of `protocol`'s server go to: `base` with `.imap`, `.pop3` or `.smtp`
/// added.
pub fn path_for(base: &Path, protocol: Protocol) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(protocol.name().to_ascii_lowercase());
    PathBuf::from(name)
}

/// Starts capturing every server's bytes to files named after `base` (see [`path_for`]).
pub fn start(base: &Path) {
    *lock() = Some(Capture {
        base: base.to_owned(),
        sinks: [None, None, None],
        secrets: Vec::new(),
        failure: None,
    });
}

/// Writes what is still held back and stops capturing. The error is the first file that could
/// not be created or written, if any (its capture is incomplete).
pub fn finish() -> Result<(), (PathBuf, io::Error)> {
    let Some(mut capture) = lock().take() else {
        return Ok(());
    };
    capture.flush_all(true);
    match capture.failure {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// Bytes a server sent, as they arrive.
pub(crate) fn server(protocol: Protocol, bytes: &[u8]) {
    if let Some(capture) = lock().as_mut() {
        capture.write(protocol, bytes);
    }
}

/// Bytes the client sends: remembers the secrets in them, and writes out what was held back
/// (the server's turn is over).
pub(crate) fn client(bytes: &[u8], redaction: Redaction) {
    if let Some(capture) = lock().as_mut() {
        for secret in secrets(bytes, redaction) {
            capture.remember(secret);
        }
        capture.flush_all(false);
    }
}

fn lock() -> MutexGuard<'static, Option<Capture>> {
    // A panic elsewhere while holding the lock leaves the capture usable.
    CAPTURE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Imap => 0,
        Protocol::Pop3 => 1,
        Protocol::Smtp => 2,
    }
}

/// The secrets in a client write: all of a secret write and what follows its first word; for
/// a command the trace redacts (LOGIN, PASS, AUTH with an initial response ...), the redacted
/// part and what follows its first word; each also without surrounding quotes.
fn secrets(bytes: &[u8], redaction: Redaction) -> Vec<&[u8]> {
    let line = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
    let tail = match redaction {
        Redaction::Data => return Vec::new(),
        Redaction::Secret => line,
        Redaction::Normal => {
            let redacted = redact_credentials(line);
            let Some(kept) = redacted.strip_suffix(b" <redacted>") else {
                return Vec::new();
            };
            line.get(kept.len() + 1..).unwrap_or_default()
        }
    };
    let after_first = tail
        .iter()
        .position(|&b| b == b' ')
        .map(|space| &tail[space + 1..]);
    let mut found = Vec::new();
    for part in std::iter::once(tail).chain(after_first) {
        found.push(part);
        if let Some(inner) = part.strip_prefix(b"\"").and_then(|p| p.strip_suffix(b"\"")) {
            found.push(inner);
        }
    }
    found.retain(|s| s.len() >= MIN_SECRET);
    found
}

impl Capture {
    fn remember(&mut self, secret: &[u8]) {
        if self.secrets.len() < MAX_SECRETS && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_vec());
        }
    }

    fn write(&mut self, protocol: Protocol, bytes: &[u8]) {
        let slot = &mut self.sinks[index(protocol)];
        let sink = slot.get_or_insert_with(|| Sink {
            path: path_for(&self.base, protocol),
            file: None,
            pending: Vec::new(),
            failed: false,
        });
        sink.pending.extend_from_slice(bytes);
        if let Err(error) = sink.flush(&self.secrets, false) {
            record(&mut self.failure, sink, error);
        }
    }

    fn flush_all(&mut self, at_end: bool) {
        for sink in self.sinks.iter_mut().flatten() {
            if let Err(error) = sink.flush(&self.secrets, at_end) {
                record(&mut self.failure, sink, error);
            }
        }
    }
}

/// Keeps the first failure and stops writing to that sink.
fn record(failure: &mut Option<(PathBuf, io::Error)>, sink: &mut Sink, error: io::Error) {
    if failure.is_none() {
        *failure = Some((sink.path.clone(), error));
    }
    sink.pending = Vec::new();
    sink.file = None;
    sink.failed = true;
}

impl Sink {
    /// Writes the pending bytes, secrets replaced, except (unless `at_end`) a tail that may
    /// still become a secret.
    fn flush(&mut self, secrets: &[Vec<u8>], at_end: bool) -> io::Result<()> {
        if self.failed || self.pending.is_empty() {
            self.pending.clear();
            return Ok(());
        }
        let (out, used) = scrub(&self.pending, secrets, at_end);
        self.pending.drain(..used);
        if out.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.file = Some(create_private(&self.path)?);
        }
        match self.file.as_mut() {
            Some(file) => file.write_all(&out),
            None => Ok(()),
        }
    }
}

/// Creates (or truncates) `path` readable by its owner only: captures hold mail.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // An existing file keeps its mode on open: set it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

/// `pending` with every secret replaced by [`MARKER`]: the bytes to write, and how many of
/// `pending` they stand for. Unless `at_end`, stops before a tail that is the start of a secret.
fn scrub(pending: &[u8], secrets: &[Vec<u8>], at_end: bool) -> (Vec<u8>, usize) {
    if secrets.is_empty() {
        return (pending.to_vec(), pending.len());
    }
    let mut out = Vec::with_capacity(pending.len());
    let mut i = 0;
    'scan: while i < pending.len() {
        let rest = &pending[i..];
        if let Some(secret) = secrets.iter().find(|s| rest.starts_with(s)) {
            out.extend_from_slice(MARKER);
            i += secret.len();
            continue;
        }
        if !at_end
            && secrets
                .iter()
                .any(|s| s.len() > rest.len() && s.starts_with(rest))
        {
            break 'scan;
        }
        out.push(pending[i]);
        i += 1;
    }
    (out, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(chunks: &[&[u8]], secrets: &[&[u8]]) -> Vec<u8> {
        let secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.to_vec()).collect();
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            let (written, used) = scrub(&pending, &secrets, false);
            out.extend(written);
            pending.drain(..used);
        }
        let (written, _) = scrub(&pending, &secrets, true);
        out.extend(written);
        out
    }

    #[test]
    fn an_echoed_secret_is_replaced_even_across_reads() {
        let want = b"-ERR bad PASS <mailcat: secret redacted>\r\n".to_vec();
        assert_eq!(
            scrubbed(&[b"-ERR bad PASS s3cr", b"et\r\n"], &[b"s3cret"]),
            want
        );
        assert_eq!(scrubbed(&[b"-ERR bad PASS s3cret\r\n"], &[b"s3cret"]), want);
    }

    #[test]
    fn bytes_that_only_start_like_a_secret_are_kept_exactly() {
        assert_eq!(
            scrubbed(&[b"+OK s3c", b"ond\r\n"], &[b"s3cret"]),
            b"+OK s3cond\r\n"
        );
        // A tail still held back at the end is written as it is.
        assert_eq!(scrubbed(&[b"+OK s3cr"], &[b"s3cret"]), b"+OK s3cr");
        assert_eq!(scrubbed(&[b"any \0 bytes"], &[]), b"any \0 bytes");
    }

    #[test]
    fn secrets_come_from_the_commands_that_carry_them() {
        assert_eq!(
            secrets(b"PASS my pass word\r\n", Redaction::Secret),
            [&b"PASS my pass word"[..], b"my pass word"]
        );
        assert_eq!(
            secrets(b"A1 LOGIN alice \"s3cret pw\"\r\n", Redaction::Normal),
            [&b"alice \"s3cret pw\""[..], b"\"s3cret pw\"", b"s3cret pw"]
        );
        assert_eq!(
            secrets(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n", Redaction::Normal),
            [&b"AGFsaWNlAHMzY3JldA=="[..]]
        );
        assert!(secrets(b"USER alice\r\n", Redaction::Normal).is_empty());
        assert!(secrets(b"Subject: s3cret\r\n", Redaction::Data).is_empty());
    }

    #[test]
    fn file_names_say_the_protocol() {
        assert_eq!(
            path_for(Path::new("/tmp/run"), Protocol::Pop3),
            PathBuf::from("/tmp/run.pop3")
        );
    }
}
