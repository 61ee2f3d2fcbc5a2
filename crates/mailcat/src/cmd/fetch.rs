//! `mailcat fetch --to maildir:DIR|mbox:FILE [--mailbox M] [--delete]`: download what is new
//! since the last run, durably, and delete on the server only what is stored.
//!
//! # Where things live
//!
//! | store | state (what was fetched) | one run at a time |
//! |---|---|---|
//! | `maildir:DIR` | `DIR/.mailcat-state.json` (+ `.log`) | `DIR/.mailcat.lock` |
//! | `mbox:DIR/FILE` | `DIR/.FILE.mailcat-state.json` (+ `.log`) | `DIR/.FILE.mailcat.lock` |
//!
//! An mbox's files are hidden (a dot first), so mail readers do not list them as folders (mutt's
//! default `$mask` is `!^\.[^.]`), and sit beside it rather than under `$XDG_STATE_HOME`: they
//! go where the mbox goes, on its file system (the spool copy stays local), whatever path or
//! symlink names it. mailcat before this kept them visible (`FILE.mailcat-state.json`,
//! `FILE.mailcat.lock`): the first run moves the state to the hidden name. While a message is
//! appended, the mbox also carries the locks mutt and procmail honour: the dot-lock
//! `FILE.lock` and a `fcntl` lock (a minute's wait for a mail reader holding them, then exit
//! 75). In the state, each source has its own record
//! keyed `imap://LOGIN@HOST/MAILBOX` or `pop3://LOGIN@HOST`, so two accounts, or two mailboxes,
//! can share one store. IMAP messages are recorded by UIDVALIDITY and UID, POP3 ones by UIDL.
//! Another name of the same server (`127.0.0.1` for `localhost`) goes on with the record made
//! under the first name when the server shows it is the same mailbox (UIDVALIDITY; the UIDLs
//! recorded are listed), and gets a record of its own otherwise (`FetchState::resolve`).
//!
//! # The order of things, and why a crash anywhere is harmless
//!
//! For each new message: fetch into the store (Maildir: a file in `tmp/`; mbox: a spool file
//! `.FILE.mailcat-spool[.N]`, then appended after the last complete message, a local copy of
//! milliseconds), commit (fsync; Maildir: rename into `new/` and fsync `new/`),
//! record it in the state (one fsynced log line). Only when every new message is stored and
//! the state saved does `--delete` delete what is stored on the server (IMAP: `\Deleted` +
//! UID EXPUNGE per batch; POP3: DELE, carried out by the server at the QUIT that follows), so a
//! run that fails to write (exit 74) deletes nothing at all.
//!
//! Downloads are pipelined, in batches of up to 16 messages or 4 MiB of listed size, so a
//! server far away costs a round trip per window of messages, not per message. IMAP: a sink
//! for each message of the batch (Maildir: its file in `tmp/`; mbox: its spool file), all
//! downloaded with a window of `UID FETCH` commands in flight, then each committed and
//! recorded in list order. POP3: the batch's `RETR` commands go out ahead (a window of them,
//! when the server announces PIPELINING), and each message is committed and recorded as soon
//! as it is in, before the next one's file is even opened. The order of
//! commit, record and delete for each message is the one above, whatever the batching; a
//! download that fails for one message alone (a full disk, an IMAP message gone) leaves the
//! messages before it to be stored as usual.
//!
//! - Killed before the commit: Maildir leaves a file in `tmp/` (IMAP: the rest of the batch too;
//!   invisible; the next fetch, holding the lock, removes them); an mbox the spool file
//!   (invisible), or, if killed during the local append, a partial message after the last recorded
//!   length, which the next run cuts off. The message is still on the server and is fetched again.
//! - Killed after the commit, before the record: the message is stored but the state does not
//!   know. A Maildir file name carries a tag, 16 hex digits of SHA-256 of
//!   `KEY/UIDVALIDITY/UID` (or `KEY/UIDL`), so the next run sees the tag in `new/` or `cur/`,
//!   records the message without fetching it again, and no duplicate appears. In an mbox the
//!   state's recorded length is the commit point: the next run cuts the unrecorded message off
//!   (it looks like one message of ours after the recorded length) and fetches it again. The
//!   length before the first message is recorded too (at the start of each run where the file
//!   is not as long as recorded), so this also holds for the first message ever appended.
//! - Killed after the record: the message is known; the next run does not fetch it and, with
//!   `--delete`, deletes it then.
//! - Killed between DELE and QUIT (POP3): no QUIT, so the server deletes nothing; the next run
//!   skips the recorded messages and deletes them.
//!
//! If an IMAP mailbox's UIDVALIDITY changed, its record is reset (the old UIDs may name other
//! messages now): everything is fetched again, and nothing is deleted by an old UID (the
//! session also checks UIDVALIDITY again when it selects the mailbox to delete). A mailbox
//! without UIDVALIDITY, or a POP3 server without UIDL (optional in RFC 1939), has no id that
//! lasts from one run to the next, so neither "fetched before" nor a deletion could be trusted:
//! the run is refused before anything is fetched (SECURITY.md #43, #53). A message whose size
//! is not the listed one is stored as received and counted in the summary.
//!
//! A store that cannot be written (no space, a read-only place) stops the run with exit 74
//! before anything is deleted (not even the messages stored before the failure).
//! SIGINT and SIGTERM stop the run the same way (the messages downloaded and not yet committed
//! are removed) with exit 130 (SIGINT) or 143 (SIGTERM). A second `mailcat fetch` on the same
//! store fails at once with exit 75.
//!
//! An mbox is appended in place, so a crash during the local append (not during the
//! download) can leave a truncated last message in view until the next run; and a message
//! committed but not recorded is seen until the next run cuts it and fetches it again. If a
//! mail reader rewrote the file meanwhile, the tail is not ours to cut and is left alone: that
//! message may then appear twice. Maildir has none of these windows.
//!
//! After a UIDVALIDITY change the messages fetched before are fetched again (they cannot be
//! told apart from new mail), so they appear twice in the store, as with fetchmail.
//!
//! # Fault injection (for the crash tests)
//!
//! `MAILCAT_FAULT=POINT` or `POINT@N` (the N-th time the point is reached; default the first)
//! aborts the process there, as abruptly as SIGKILL: `after_retr` (message fetched, not yet
//! committed; reached once per message, in list order, when its turn to be committed comes),
//! `after_rename_before_state` (committed, not recorded), `between_dele_and_quit` (POP3, all DELEs
//! sent). The store's own `after_write_before_rename` fires on the first message.
//! `stall_after_retr[@N]` waits at `after_retr` for SIGINT or SIGTERM instead, so a test can signal
//! a run at a known moment. `fail_save_state` makes the state's save at the end of the run fail
//! as a full disk would (exit 74).

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailcat_session::store::{
    FetchState, Identity, Maildir, MaildirMessage, Mbox, MboxMessage, Resolved, Source, StoreLock,
};
use mailcat_session::{Incoming, Listing, MessageId, MessageSummary};
use mailcat_transport::Protocol;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::cli::{Cli, FetchArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Stored messages are deleted, at the end of the run, in batches of this many (IMAP: one
/// STORE + EXPUNGE each).
const DELETE_BATCH: usize = 500;

/// Messages are downloaded in batches of at most this many ...
const FETCH_BATCH: usize = 16;

/// ... and at most this many bytes of listed size (one message may be bigger).
const FETCH_BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// Runs the command; returns the exit code.
pub fn run(cli: &Cli, args: &FetchArgs) -> u8 {
    match fetch(cli, args) {
        Ok(()) => exit::OK,
        Err(Exit(code)) => code,
    }
}

/// Where the messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Maildir(PathBuf),
    Mbox(PathBuf),
}

impl Target {
    fn parse(to: &str) -> Option<Target> {
        let (kind, path) = to.split_once(':')?;
        if path.is_empty() {
            return None;
        }
        match kind {
            "maildir" => Some(Target::Maildir(path.into())),
            "mbox" => Some(Target::Mbox(path.into())),
            _ => None,
        }
    }

    /// The same target with a leading `~` or `~USER` of its path expanded.
    fn with_home_expanded(self) -> Result<Target, crate::tilde::TildeError> {
        Ok(match self {
            Target::Maildir(dir) => Target::Maildir(crate::tilde::expand(&dir)?),
            Target::Mbox(file) => Target::Mbox(crate::tilde::expand(&file)?),
        })
    }

    fn path(&self) -> &Path {
        match self {
            Target::Maildir(p) | Target::Mbox(p) => p,
        }
    }

    /// The state file and the lock file.
    fn state_and_lock(&self) -> (PathBuf, PathBuf) {
        match self {
            Target::Maildir(dir) => (dir.join(".mailcat-state.json"), dir.join(".mailcat.lock")),
            Target::Mbox(file) => (
                hidden_beside(file, ".mailcat-state.json"),
                hidden_beside(file, ".mailcat.lock"),
            ),
        }
    }
}

/// `DIR/.FILE<suffix>` for the mbox `DIR/FILE`: beside it, hidden from mail readers' folder lists.
fn hidden_beside(file: &Path, suffix: &str) -> PathBuf {
    match file.file_name() {
        Some(name) => {
            let mut hidden = std::ffi::OsString::from(".");
            hidden.push(name);
            hidden.push(suffix);
            file.with_file_name(hidden)
        }
        // `mbox:/` or `mbox:..`: no file to open anyway; opening it says so.
        None => with_suffix(file, suffix),
    }
}

/// Moves an mbox's state from where mailcat kept it before (`FILE.mailcat-state.json`, visible
/// in mail readers) to its hidden place, and removes the old lock and spool files. Runs under
/// the store lock; an older mailcat still fetching holds the old lock: exit 75, as for a run
/// of this one.
fn migrate_visible_files(cli: &Cli, target: &Target, state_path: &Path) -> Result<(), Exit> {
    let Target::Mbox(file) = target else {
        return Ok(());
    };
    let old_state = with_suffix(file, ".mailcat-state.json");
    let old_log = with_suffix(&old_state, ".log");
    let old_lock = with_suffix(file, ".mailcat.lock");
    if !old_state.exists() && !old_log.exists() && !old_lock.exists() {
        return Ok(());
    }
    let fail = |e: io::Error| fail_store(target, "move the state of", &e);
    let _old = match StoreLock::try_acquire(&old_lock) {
        Ok(lock) => lock,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            eprintln!("mailcat fetch: {e}");
            return Err(Exit(exit::TEMPFAIL));
        }
        Err(e) => return Err(fail(e)),
    };
    let new_log = with_suffix(state_path, ".log");
    if old_state.exists() || old_log.exists() {
        if state_path.exists() || new_log.exists() {
            eprintln!(
                "mailcat fetch: {} is left from an older mailcat; {} is used (remove the old one)",
                old_state.display(),
                state_path.display()
            );
        } else {
            for (old, new) in [(&old_state, state_path), (&old_log, new_log.as_path())] {
                match std::fs::rename(old, new) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(fail(e)),
                    _ => {}
                }
            }
            let dir = match state_path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
            if !cli.quiet {
                eprintln!(
                    "mailcat fetch: moved {} to {}, where mail readers do not list it",
                    old_state.display(),
                    state_path.display()
                );
            }
        }
    }
    // The debris of a killed older run, then its lock (held: nobody is using it).
    let old_spool = with_suffix(file, ".mailcat-spool");
    for slot in 0..FETCH_BATCH {
        let _ = std::fs::remove_file(spool_path(&old_spool, slot));
    }
    let _ = std::fs::remove_file(&old_lock);
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// How a run ended early.
#[derive(Debug)]
enum Stop {
    /// The server or the session failed.
    Session(mailcat_session::Error),
    /// The store could not be written.
    Store(io::Error),
    /// SIGINT or SIGTERM.
    Interrupted,
}

impl From<mailcat_session::Error> for Stop {
    fn from(e: mailcat_session::Error) -> Self {
        Stop::Session(e)
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// `--delete` was given: the summary says what was deleted.
    delete: bool,
    fetched: u64,
    bytes: u64,
    deleted: u64,
    /// POP3: DELEs sent in a run that stopped before QUIT (the server carried none out).
    dropped: u64,
    /// Found already stored (a crash came between the commit and the record).
    recovered: u64,
    /// Listed, then deleted on the server by another client before we fetched it.
    gone: u64,
    /// Fetched with another size than the server listed (Exchange's POP3 does this).
    resized: u64,
}

/// The open store.
enum Store {
    Maildir {
        maildir: Maildir,
        /// Tags of the messages present, read when first needed.
        tags: Option<HashSet<String>>,
    },
    Mbox {
        mbox: Mbox,
        /// `.FILE.mailcat-spool`: each message is downloaded here first, so the mbox only ever
        /// sees a fast local copy, never a download in progress.
        spool: PathBuf,
    },
}

fn fail_store(target: &Target, what: &str, error: &io::Error) -> Exit {
    if error.kind() == io::ErrorKind::WouldBlock {
        // A mail reader holds the mbox's locks: not a write failure, try later.
        return common::failed("fetch", &error.to_string(), exit::TEMPFAIL);
    }
    common::failed(
        "fetch",
        &format!("cannot {what} {}: {error}", target.path().display()),
        exit::IOERR,
    )
}

fn fetch(cli: &Cli, args: &FetchArgs) -> Result<(), Exit> {
    let Some(target) = Target::parse(&args.to) else {
        return Err(common::failed(
            "fetch",
            &format!(
                "--to {}: say maildir:DIR or mbox:FILE",
                terminal_safe(&args.to)
            ),
            exit::USAGE,
        ));
    };
    let target = target.with_home_expanded().map_err(|e| {
        common::failed(
            "fetch",
            &format!("--to {}: {e}", terminal_safe(&args.to)),
            exit::USAGE,
        )
    })?;
    let settings = common::settings(cli, "fetch")?;
    let account = common::account(cli, &settings, "fetch", true, false)?;
    let (state_path, lock_path) = target.state_and_lock();
    if let Target::Maildir(dir) = &target {
        std::fs::create_dir_all(dir).map_err(|e| fail_store(&target, "create", &e))?;
    }
    let _lock = StoreLock::try_acquire(&lock_path).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            common::failed("fetch", &e.to_string(), exit::TEMPFAIL)
        } else {
            fail_store(&target, "lock", &e)
        }
    })?;
    migrate_visible_files(cli, &target, &state_path)?;
    let mut state = FetchState::load(&state_path).map_err(|e| {
        eprintln!("mailcat fetch: {e}");
        Exit(if e.kind() == io::ErrorKind::InvalidData {
            exit::DATAERR
        } else {
            exit::IOERR
        })
    })?;
    let source = Source {
        login: &settings.login,
        host: &account.incoming.host,
        mailbox: match account.incoming.protocol {
            Protocol::Pop3 => None,
            _ => Some(args.mailbox.as_deref().unwrap_or("INBOX")),
        },
    };
    let runtime = common::runtime()?;
    runtime.block_on(async {
        let mut store = match &target {
            Target::Maildir(dir) => {
                let maildir = Maildir::open(dir).map_err(|e| fail_store(&target, "open", &e))?;
                // What a killed fetch left in tmp/ (we hold the lock: nobody is writing it).
                maildir
                    .remove_tagged_tmp()
                    .map_err(|e| fail_store(&target, "clean tmp/ of", &e))?;
                Store::Maildir {
                    maildir,
                    tags: None,
                }
            }
            Target::Mbox(file) => {
                let mbox = Mbox::open(file, state.mbox_len())
                    .await
                    .map_err(|e| fail_store(&target, "open", &e))?;
                // The length to cut back to if this run is killed after appending a message
                // and before recording it (first run, or a mail reader rewrote the file).
                let len = std::fs::metadata(file)
                    .map_err(|e| fail_store(&target, "open", &e))?
                    .len();
                if state.mbox_len() != Some(len) {
                    state
                        .record_mbox_len(len)
                        .map_err(|e| fail_store(&target, "record the length of", &e))?;
                }
                Store::Mbox {
                    mbox,
                    spool: hidden_beside(file, ".mailcat-spool"),
                }
            }
        };
        let mut tally = Tally {
            delete: args.delete,
            ..Tally::default()
        };
        // Until the login is done, Ctrl-C kills as usual (nothing is written yet, and a
        // password prompt cannot be interrupted by a caught signal).
        let incoming = account
            .receive()
            .await
            .map_err(|e| common::fail("fetch", &e))?;
        let mut stop = match StopSignal::new() {
            Ok(stop) => stop,
            Err(e) => {
                eprintln!("mailcat fetch: cannot watch for signals: {e}");
                incoming.abort().await;
                return Err(Exit(exit::IOERR));
            }
        };
        let pop3 = matches!(incoming, Incoming::Pop3 { .. });
        let mut written = Written::new(cli.json);
        let mut incoming = Some(incoming);
        let result = run_session(
            cli,
            args,
            &source,
            &mut store,
            &mut state,
            &mut stop,
            incoming.as_mut().expect("just set"),
            &mut tally,
            &mut written,
        )
        .await;
        // Nothing is deleted before everything is written: the messages, then the state.
        let result = match result {
            Ok(to_delete) => match save_state(&mut state) {
                Ok(()) => {
                    delete_stored(
                        incoming.as_mut().expect("still there"),
                        &to_delete,
                        &mut tally,
                        &mut stop,
                    )
                    .await
                }
                Err(e) => Err(Stop::Store(e)),
            },
            Err(stop) => Err(stop),
        };
        let incoming = incoming.take().expect("still there");
        let result = match result {
            Ok(()) => {
                if pop3 && args.delete && tally.deleted > 0 {
                    fault("between_dele_and_quit");
                }
                match until_stopped(&mut stop, incoming.close()).await {
                    None => Err(Stop::Interrupted),
                    Some(Err(e)) => Err(Stop::Session(e)),
                    Some(Ok(())) => Ok(()),
                }
            }
            Err(stop) => {
                // POP3: no QUIT, so no DELE of this session takes effect.
                incoming.abort().await;
                if pop3 {
                    tally.dropped = std::mem::take(&mut tally.deleted);
                }
                Err(stop)
            }
        };
        if let Store::Mbox { spool, .. } = &store {
            for slot in 0..FETCH_BATCH {
                let _ = std::fs::remove_file(spool_path(spool, slot));
            }
        }
        match result {
            Ok(()) => {
                summary(cli, &target, &tally, &written);
                Ok(())
            }
            Err(reason) => Err(report(cli, &target, &tally, reason, stop.exit_code(), pop3)),
        }
    })
}

/// The fetch itself, on a logged-in session: stores what is new and returns what may be
/// deleted (with `--delete`: every listed message that is stored), for [`delete_stored`] once
/// nothing more is written.
#[allow(clippy::too_many_arguments)]
async fn run_session(
    cli: &Cli,
    args: &FetchArgs,
    source: &Source<'_>,
    store: &mut Store,
    state: &mut FetchState,
    stop: &mut StopSignal,
    incoming: &mut Incoming,
    tally: &mut Tally,
    written: &mut Written,
) -> Result<Vec<MessageId>, Stop> {
    // POP3 with a record already (the usual run): each UIDL is looked up in the record as
    // the listing streams in, marked there if found, and held only if new (or to be deleted):
    // a maildrop of a million messages with nothing new holds none of them, nor a set of its
    // UIDLs, and needs no LIST.
    let streamed_key = match incoming {
        Incoming::Pop3 { .. } => state.known_key(source).filter(|key| {
            state
                .mailbox(key)
                .is_some_and(|record| record.uidvalidity.is_none())
        }),
        Incoming::Imap { .. } => None,
    };
    let recorded = streamed_key
        .as_deref()
        .and_then(|key| state.mailbox(key))
        .map(|record| &record.fetched);
    let mut marks = recorded.map(|fetched| fetched.marks());
    let listing = match (recorded, marks.as_mut()) {
        (Some(fetched), Some(marks)) => {
            let keep = |uidl: &str| !fetched.check(uidl, marks) || args.delete;
            let listing = incoming.list_start_filtered(args.mailbox.as_deref(), None, keep);
            until_stopped(stop, listing).await
        }
        // Which messages there are (IMAP: UIDs as ranges), without a summary of any: a
        // mailbox of a million messages with nothing new is done after one SEARCH.
        _ => until_stopped(stop, incoming.list_start(args.mailbox.as_deref(), None)).await,
    };
    let mut listing = listing.ok_or(Stop::Interrupted)??;
    // IMAP without a valid UIDVALIDITY (SECURITY.md #43): a UID may then name another
    // message on the next run, so neither "already fetched" nor a deletion can be trusted.
    let uidvalidity = match &*incoming {
        Incoming::Imap {
            selected: Some((_, Some(v))),
            ..
        } => Some(*v),
        Incoming::Imap {
            selected: Some((name, None)),
            ..
        } => {
            return Err(no_stable_ids(
                incoming,
                &format!("the mailbox {name} has no UIDVALIDITY (RFC 3501 requires one)"),
            ))
        }
        // POP3 without UIDL (SECURITY.md #53): a message number may name another message on
        // the next run, so the same holds.
        Incoming::Pop3 { .. } if !listing.stable_ids() => {
            return Err(no_stable_ids(
                incoming,
                "the server has no UIDL (it is optional in RFC 1939)",
            ))
        }
        _ => None,
    };
    // The record the listing was checked against is the one `resolve_record` would find.
    let key = &match streamed_key {
        Some(key) => key,
        None => resolve_record(cli, state, source, uidvalidity, &listing)?,
    };
    if let Some(recorded) = state.mailbox(key) {
        if recorded.uidvalidity != uidvalidity {
            if !cli.quiet {
                eprintln!(
                    "mailcat fetch: the mailbox's UIDVALIDITY changed ({} → {}): what was fetched before cannot be told apart from new mail, so everything is fetched again",
                    recorded.uidvalidity.map(|v| v.to_string()).unwrap_or_else(|| "none".into()),
                    uidvalidity.map(|v| v.to_string()).unwrap_or_else(|| "none".into()),
                );
            }
            state.reset(key, uidvalidity).map_err(Stop::Store)?;
        }
    }
    // Forget what the server no longer has, so the record does not grow for ever.
    match (listing.uids(), marks) {
        (Some(present), _) => state.retain_uids(key, present),
        // Checked as the listing streamed in.
        (None, Some(marks)) => state.retain_marked(key, &marks),
        (None, _) => {
            let present: HashSet<Cow<'_, str>> = listing.keys().collect();
            state.retain(key, |id| present.contains(id));
        }
    }
    let known = split_known(&mut listing, state, key, uidvalidity, args.delete);
    // Summaries (sizes) of the new messages only.
    let mut new: Vec<MessageSummary> = Vec::new();
    while let Some(batch) = until_stopped(stop, incoming.list_next(&mut listing, false))
        .await
        .ok_or(Stop::Interrupted)??
    {
        new.extend(batch);
    }
    pause("after_list").await;

    let mut to_delete: Vec<MessageId> = Vec::new();
    if args.delete {
        // Stored by an earlier run that did not get as far as deleting them.
        to_delete.extend(known);
    }

    let progress = Progress::new(
        cli,
        new.len() as u64,
        new.iter().map(|m| m.size.unwrap_or(0)).sum(),
    );
    let mut saver = Saver {
        key,
        uidvalidity,
        store,
        state,
        tally,
        progress: &progress,
        to_delete: &mut to_delete,
        delete: args.delete,
        written,
    };
    let mut rest = &new[..];
    while !rest.is_empty() {
        let batch = &rest[..batch_len(rest)];
        rest = &rest[batch.len()..];
        match incoming {
            Incoming::Imap { .. } => saver.imap_batch(incoming, stop, batch).await?,
            Incoming::Pop3 { .. } => saver.pop3_batch(incoming, stop, batch).await?,
        }
    }
    progress.finish();
    Ok(to_delete)
}

/// The key of the record for `source` (see [`FetchState::resolve`]): under another host name
/// of the same server, the record made under that name; says so when it adopts one, or when
/// records under other names are of another mailbox.
fn resolve_record(
    cli: &Cli,
    state: &mut FetchState,
    source: &Source<'_>,
    uidvalidity: Option<u32>,
    listing: &Listing,
) -> Result<String, Stop> {
    let ids = std::cell::OnceCell::new();
    let listed_id = |id: &str| {
        ids.get_or_init(|| listing.keys().collect::<HashSet<_>>())
            .contains(id)
    };
    let identity = match uidvalidity {
        Some(v) => Identity::Imap(v),
        None => Identity::Pop3(&listed_id),
    };
    let resolved = state.resolve(source, &identity).map_err(Stop::Store)?;
    if !cli.quiet {
        let host = terminal_safe(source.host);
        let (same, other) = match uidvalidity {
            Some(v) => (
                format!("the same UIDVALIDITY {v}"),
                format!("its UIDVALIDITY {v} is another"),
            ),
            None => (
                "the messages fetched from there are listed".to_owned(),
                "few of the messages fetched from there are listed".to_owned(),
            ),
        };
        match &resolved {
            Resolved::Adopted { host: before, .. } => eprintln!(
                "mailcat fetch: {host} is another name of {} ({same}): going on from what was fetched from there",
                terminal_safe(before)
            ),
            Resolved::Unrelated { hosts, .. } => eprintln!(
                "mailcat fetch: {host} is not the mailbox fetched from before as {} ({other}): it gets a record of its own, and all its mail counts as new",
                hosts.iter().map(|h| terminal_safe(h)).collect::<Vec<_>>().join(", ")
            ),
            Resolved::Known(_) | Resolved::New(_) => {}
        }
    }
    Ok(resolved.key().to_owned())
}

/// Leaves in `listing` only the messages not fetched before, and returns the ids of those that
/// were (when `want_known`: `fetch --delete` deletes them). IMAP: two range lists subtracted,
/// never a look at each message, so a million messages with nothing new cost microseconds.
fn split_known(
    listing: &mut Listing,
    state: &FetchState,
    key: &str,
    uidvalidity: Option<u32>,
    want_known: bool,
) -> Vec<MessageId> {
    if let Some(all) = listing.uids() {
        let fetched = state.fetched_uids(key, uidvalidity);
        let new = all.difference(fetched);
        let known = if want_known {
            all.intersection(fetched)
                .iter()
                .map(|uid| MessageId::Imap {
                    uid_validity: uidvalidity,
                    uid,
                })
                .collect()
        } else {
            Vec::new()
        };
        listing.keep_uids(&new);
        return known;
    }
    let mut known = Vec::new();
    listing.retain(|id| {
        let fetched = state.is_fetched(key, uidvalidity, &id.key());
        if fetched && want_known {
            known.push(id.clone());
        }
        !fetched
    });
    known
}

/// The refusal to fetch from a server whose ids do not last from one session to the next.
fn no_stable_ids(incoming: &Incoming, why: &str) -> Stop {
    let endpoint = incoming.endpoint();
    Stop::Session(mailcat_session::Error::Protocol {
        host: endpoint.host.clone(),
        protocol: endpoint.protocol,
        detail: format!(
            "{why}, so new mail cannot be told from mail fetched before; nothing was fetched or deleted (`mailcat list` and `cat` still work)"
        ),
    })
}

/// How many of `messages` (at least one) the next batch takes: [`FETCH_BATCH`] messages, or
/// fewer when their listed sizes add up to more than [`FETCH_BATCH_BYTES`].
fn batch_len(messages: &[MessageSummary]) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for message in messages.iter().take(FETCH_BATCH) {
        bytes += message.size.unwrap_or(0);
        if n > 0 && bytes > FETCH_BATCH_BYTES {
            break;
        }
        n += 1;
    }
    n
}

/// Where one message is downloaded to, until it is committed.
enum Sink {
    /// A tagged file in the Maildir's `tmp/`.
    Maildir(MaildirMessage),
    /// A spool file beside the mbox, appended to it once whole.
    Spool(tokio::fs::File),
}

impl Sink {
    fn writer(&mut self) -> &mut (dyn tokio::io::AsyncWrite + Unpin) {
        match self {
            Sink::Maildir(message) => message.writer(),
            Sink::Spool(file) => file,
        }
    }

    /// Gives up on the message (a Maildir file leaves `tmp/`; a spool file is reused or
    /// removed at the end of the run).
    async fn abort(self) {
        if let Sink::Maildir(message) = self {
            let _ = message.abort().await;
        }
    }
}

/// Gives up on every sink still open (the run stops): nothing half-done stays in `tmp/`.
async fn abort_all(sinks: &mut [Option<Sink>]) {
    for sink in sinks.iter_mut().filter_map(Option::take) {
        sink.abort().await;
    }
}

/// What became of one message of a batch (short-lived, one at a time: its size is no matter).
#[allow(clippy::large_enum_variant)]
enum Got {
    /// Already in the Maildir (a run killed after the commit, before the record).
    Stored,
    /// Downloaded (or not) into this sink.
    Fetched(Sink, Result<u64, mailcat_session::Error>),
}

/// Stores and records downloaded messages, one at a time, in list order.
struct Saver<'a> {
    key: &'a str,
    uidvalidity: Option<u32>,
    store: &'a mut Store,
    state: &'a mut FetchState,
    tally: &'a mut Tally,
    progress: &'a Progress,
    to_delete: &'a mut Vec<MessageId>,
    delete: bool,
    written: &'a mut Written,
}

impl Saver<'_> {
    /// IMAP: a sink for each message, all downloaded with a window of `UID FETCH` commands in
    /// flight, then each committed and recorded in list order.
    async fn imap_batch(
        &mut self,
        incoming: &mut Incoming,
        stop: &mut StopSignal,
        batch: &[MessageSummary],
    ) -> Result<(), Stop> {
        let mut sinks: Vec<Option<Sink>> = Vec::with_capacity(batch.len());
        for (i, message) in batch.iter().enumerate() {
            match self.open(i, message).await {
                Ok(sink) => sinks.push(sink),
                Err(stop) => {
                    abort_all(&mut sinks).await;
                    return Err(stop);
                }
            }
        }
        let mut requests: Vec<(&MessageId, &mut (dyn tokio::io::AsyncWrite + Unpin))> = batch
            .iter()
            .zip(sinks.iter_mut())
            .filter_map(|(m, sink)| Some((&m.id, sink.as_mut()?.writer())))
            .collect();
        let fetched = until_stopped(stop, incoming.fetch_many(&mut requests)).await;
        drop(requests);
        let mut results = match fetched {
            Some(Ok(results)) => results.into_iter(),
            Some(Err(e)) => {
                abort_all(&mut sinks).await;
                return Err(session_or_store(e));
            }
            None => {
                abort_all(&mut sinks).await;
                return Err(Stop::Interrupted);
            }
        };
        for i in 0..batch.len() {
            let got = match sinks[i].take() {
                None => Got::Stored,
                Some(sink) => match results.next() {
                    Some(result) => Got::Fetched(sink, result),
                    None => {
                        sink.abort().await;
                        abort_all(&mut sinks).await;
                        return Err(Stop::Session(missing_result(incoming)));
                    }
                },
            };
            if let Err(e) = self.settle(stop, &batch[i], got).await {
                abort_all(&mut sinks).await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// POP3: `RETR` for the whole batch sent ahead (a window of them with PIPELINING), each
    /// message committed and recorded as soon as it is in, before the next sink is opened.
    async fn pop3_batch(
        &mut self,
        incoming: &mut Incoming,
        stop: &mut StopSignal,
        batch: &[MessageSummary],
    ) -> Result<(), Stop> {
        let mut stored = Vec::with_capacity(batch.len());
        for message in batch {
            stored.push(self.is_stored(message)?);
        }
        let ids: Vec<&MessageId> = batch
            .iter()
            .zip(&stored)
            .filter(|(_, stored)| !**stored)
            .map(|(m, _)| &m.id)
            .collect();
        let mut fetching = until_stopped(stop, incoming.fetch_start(&ids))
            .await
            .ok_or(Stop::Interrupted)??;
        for (i, message) in batch.iter().enumerate() {
            let got = if stored[i] {
                Got::Stored
            } else {
                let Some(mut sink) = self.open(0, message).await? else {
                    return Err(Stop::Store(io::Error::other(
                        "the store changed under the run",
                    )));
                };
                match until_stopped(stop, incoming.fetch_next(&mut fetching, &mut sink.writer()))
                    .await
                {
                    Some(Ok(Some(result))) => Got::Fetched(sink, result),
                    Some(Ok(None)) => {
                        sink.abort().await;
                        return Err(Stop::Session(missing_result(incoming)));
                    }
                    Some(Err(e)) => {
                        sink.abort().await;
                        return Err(session_or_store(e));
                    }
                    None => {
                        sink.abort().await;
                        return Err(Stop::Interrupted);
                    }
                }
            };
            self.settle(stop, message, got).await?;
        }
        Ok(())
    }

    /// The id under which the state and the Maildir tag know `message`.
    fn full_id(&self, message: &MessageSummary) -> String {
        let id = message.id.key();
        match self.uidvalidity {
            Some(v) => format!("{}/{v}/{id}", self.key),
            None => format!("{}/{id}", self.key),
        }
    }

    /// True if `message` is in the Maildir already (its tag is in `new/` or `cur/`).
    fn is_stored(&mut self, message: &MessageSummary) -> Result<bool, Stop> {
        let tag = Maildir::tag_for(&self.full_id(message));
        let Store::Maildir { maildir, tags } = &mut *self.store else {
            return Ok(false);
        };
        if tags.is_none() {
            *tags = Some(maildir.tags().map_err(Stop::Store)?);
        }
        Ok(tags.as_ref().is_some_and(|t| t.contains(&tag)))
    }

    /// A sink for `message` (the `slot`-th of its batch), or `None` if it is stored already.
    async fn open(&mut self, slot: usize, message: &MessageSummary) -> Result<Option<Sink>, Stop> {
        if self.is_stored(message)? {
            return Ok(None);
        }
        let tag = Maildir::tag_for(&self.full_id(message));
        match &*self.store {
            Store::Maildir { maildir, .. } => Ok(Some(Sink::Maildir(
                maildir.begin_tagged(&tag).await.map_err(Stop::Store)?,
            ))),
            Store::Mbox { spool, .. } => {
                let file = tokio::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(spool_path(spool, slot))
                    .await
                    .map_err(Stop::Store)?;
                Ok(Some(Sink::Spool(file)))
            }
        }
    }

    /// One message, in list order: committed (or found stored, or gone), recorded, and queued
    /// for deletion. Only a committed or found message is recorded or deleted.
    async fn settle(
        &mut self,
        stop: &mut StopSignal,
        message: &MessageSummary,
        got: Got,
    ) -> Result<(), Stop> {
        let id = message.id.key();
        match got {
            Got::Stored => {
                self.state
                    .record(self.key, self.uidvalidity, &id, None)
                    .map_err(Stop::Store)?;
                self.tally.recovered += 1;
            }
            Got::Fetched(sink, Err(mailcat_session::Error::MessageGone { .. })) => {
                sink.abort().await;
                self.tally.gone += 1;
                self.progress.done(message.size.unwrap_or(0));
                return Ok(());
            }
            Got::Fetched(sink, Err(e)) => {
                sink.abort().await;
                return Err(session_or_store(e));
            }
            Got::Fetched(sink, Ok(bytes)) => {
                fault("after_retr");
                if stall(stop, "after_retr").await {
                    sink.abort().await;
                    return Err(Stop::Interrupted);
                }
                let (mbox_len, place) = match (sink, &*self.store) {
                    (Sink::Maildir(file), _) => {
                        let path = file.commit().await.map_err(Stop::Store)?;
                        (None, json!({ "path": path.display().to_string() }))
                    }
                    (Sink::Spool(mut file), Store::Mbox { mbox, .. }) => {
                        // Waiting for a mail reader's lock can be interrupted; the local
                        // copy that follows is quick.
                        let entry = until_stopped(stop, mbox.begin(None))
                            .await
                            .ok_or(Stop::Interrupted)?
                            .map_err(Stop::Store)?;
                        let (offset, end) = append_to_mbox(entry, &mut file)
                            .await
                            .map_err(Stop::Store)?;
                        (
                            Some(end),
                            json!({ "offset": offset, "length": end - offset }),
                        )
                    }
                    (Sink::Spool(_), Store::Maildir { .. }) => {
                        unreachable!("a spool only for an mbox")
                    }
                };
                self.written.add(&message.id, bytes, place);
                fault("after_rename_before_state");
                self.state
                    .record(self.key, self.uidvalidity, &id, mbox_len)
                    .map_err(Stop::Store)?;
                self.tally.fetched += 1;
                self.tally.bytes += bytes;
                // Stored as received all the same (SECURITY.md #53): the download ended at the
                // protocol's end marker, and some servers list estimates, not sizes.
                if message.size.is_some_and(|listed| listed != bytes) {
                    self.tally.resized += 1;
                }
            }
        }
        self.progress.done(message.size.unwrap_or(0));
        if self.delete {
            self.to_delete.push(message.id.clone());
        }
        Ok(())
    }
}

/// A session that answered fewer messages than were asked for (a bug, not the server's).
fn missing_result(incoming: &Incoming) -> mailcat_session::Error {
    mailcat_session::Error::Protocol {
        host: incoming.endpoint().host.clone(),
        protocol: incoming.endpoint().protocol,
        detail: "fewer messages came back than were asked for; nothing more was stored".into(),
    }
}

/// The spool file of the `slot`-th message of a batch: `.FILE.mailcat-spool`, then `…-spool.1`…
fn spool_path(spool: &Path, slot: usize) -> PathBuf {
    if slot == 0 {
        spool.to_owned()
    } else {
        with_suffix(spool, &format!(".{slot}"))
    }
}

/// Deletes the stored messages `ids` on the server, in batches of [`DELETE_BATCH`]. Called
/// only after every message of the run is stored and the state saved: a run that cannot write
/// its store (exit 74) deletes nothing, not even what it stored before the failure.
async fn delete_stored(
    incoming: &mut Incoming,
    ids: &[MessageId],
    tally: &mut Tally,
    stop: &mut StopSignal,
) -> Result<(), Stop> {
    for batch in ids.chunks(DELETE_BATCH) {
        until_stopped(stop, incoming.delete(batch))
            .await
            .ok_or(Stop::Interrupted)??;
        tally.deleted += batch.len() as u64;
    }
    Ok(())
}

/// Appends the spooled message to the mbox as `entry` and commits it; returns where it starts
/// (its `From ` line) and the mbox's new length. On an error the mbox is cut back to where it
/// was.
async fn append_to_mbox(
    mut entry: MboxMessage,
    spool: &mut tokio::fs::File,
) -> io::Result<(u64, u64)> {
    use tokio::io::AsyncSeekExt;
    if let Err(e) = async {
        spool.flush().await?;
        spool.rewind().await
    }
    .await
    {
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
            let _ = entry.abort().await;
            return Err(e);
        }
    }
    let offset = entry.offset();
    Ok((offset, entry.commit().await?))
}

/// A failure inside a fetch: local I/O (the sink) is the store's, the rest the session's.
fn session_or_store(error: mailcat_session::Error) -> Stop {
    match error {
        mailcat_session::Error::Io(e) => Stop::Store(e),
        e => Stop::Session(e),
    }
}

/// SIGINT and SIGTERM, caught from the start of the run (a signal that comes while nobody
/// waits is kept, and seen at the next wait).
struct StopSignal {
    interrupt: Signal,
    terminate: Signal,
    /// The exit code of the signal that came: 130 (SIGINT) or 143 (SIGTERM).
    stopped: Option<u8>,
}

impl StopSignal {
    fn new() -> io::Result<StopSignal> {
        Ok(StopSignal {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            stopped: None,
        })
    }

    async fn wait(&mut self) {
        if self.stopped.is_none() {
            let code = tokio::select! {
                _ = self.interrupt.recv() => exit::INTERRUPTED,
                _ = self.terminate.recv() => exit::TERMINATED,
            };
            self.stopped = Some(code);
        }
    }

    /// The exit code for a run this signal stopped.
    fn exit_code(&self) -> u8 {
        self.stopped.unwrap_or(exit::INTERRUPTED)
    }
}

/// Runs `work` unless SIGINT or SIGTERM comes first (`None` then: `work` is dropped).
async fn until_stopped<F: std::future::Future>(
    stop: &mut StopSignal,
    work: F,
) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = stop.wait() => None,
        output = work => Some(output),
    }
}

/// The progress line on a terminal (stderr): a bar of the listed bytes, then "message 12 of
/// 3000", the bytes, the speed and the time left, in as much of the line as the terminal has
/// (the text is cut at its end, never wrapped; the layout follows a resize at the next message).
struct Progress {
    bar: ProgressBar,
    messages: u64,
    done: std::cell::Cell<u64>,
    /// The terminal's width now, and as the layout was made for.
    screen_width: fn() -> u16,
    width: std::cell::Cell<u16>,
}

impl Progress {
    fn new(cli: &Cli, messages: u64, bytes: u64) -> Progress {
        let bar = if cli.quiet || !io::stderr().is_terminal() || messages == 0 {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr())
        };
        Progress::with_bar(bar, messages, terminal_width)
    }

    fn with_bar(bar: ProgressBar, messages: u64, screen_width: fn() -> u16) -> Progress {
        let progress = Progress {
            bar,
            messages,
            done: std::cell::Cell::new(0),
            screen_width,
            width: std::cell::Cell::new(0),
        };
        progress.fit((progress.screen_width)());
        progress.bar.set_message(progress.text());
        progress
    }

    /// One more message is done (stored, found stored, or gone).
    fn done(&self, size: u64) {
        self.done.set(self.done.get() + 1);
        self.bar.inc(size);
        if self.bar.is_hidden() {
            return; // cron, -q: no text to make for each message
        }
        self.fit((self.screen_width)());
        self.bar.set_message(self.text());
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// The layout for a terminal `width` columns wide, if it changed.
    fn fit(&self, width: u16) {
        if self.width.replace(width) == width {
            return;
        }
        let template = match Progress::bar_width(width) {
            0 => "{wide_msg}",
            12 => "{spinner} [{bar:12}] {wide_msg}",
            _ => "{spinner} [{bar:30}] {wide_msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
    }

    /// The bar's width on a terminal `width` columns wide (0: no bar).
    fn bar_width(width: u16) -> u16 {
        match width {
            100.. => 30,
            50.. => 12,
            _ => 0,
        }
    }

    /// What is shown beside the bar: as many of its parts as fit, the most useful first.
    fn text(&self) -> String {
        let done = self.done.get();
        let next = (done + 1).min(self.messages);
        let mut parts = vec![
            format!("message {next} of {}", self.messages),
            format!(
                "{} of {}",
                HumanBytes(self.bar.position()),
                HumanBytes(self.bar.length().unwrap_or(0))
            ),
        ];
        if done > 0 {
            parts.push(format!("{}/s", HumanBytes(self.bar.per_sec() as u64)));
            parts.push(format!("{} left", HumanDuration(self.bar.eta())));
        }
        let bar = Progress::bar_width(self.width.get());
        // The spinner, a space, the bracketed bar and a space come first.
        let room = usize::from(self.width.get()).saturating_sub(match bar {
            0 => 0,
            n => usize::from(n) + 5,
        });
        let mut text = String::new();
        for part in parts {
            let sep = if text.is_empty() { "" } else { ", " };
            if !text.is_empty() && text.len() + sep.len() + part.len() > room {
                break;
            }
            text.push_str(sep);
            text.push_str(&part);
        }
        text
    }
}

/// The width of the terminal on stderr (80 if it cannot be told).
fn terminal_width() -> u16 {
    rustix::termios::tcgetwinsize(io::stderr())
        .ok()
        .map(|size| size.ws_col)
        .filter(|&cols| cols > 0)
        .unwrap_or(80)
}

/// The messages a run wrote into the store, for `--json` (kept only then), each as its JSON
/// text: a million of them are a few hundred bytes each, not a tree of values.
struct Written {
    keep: bool,
    messages: Vec<Box<str>>,
}

impl Written {
    fn new(keep: bool) -> Written {
        Written {
            keep,
            messages: Vec::new(),
        }
    }

    /// `id` is stored, `size` bytes as the server sent it, at `place` (`path`, or `offset` and
    /// `length` in an mbox).
    fn add(&mut self, id: &MessageId, size: u64, mut place: serde_json::Value) {
        if !self.keep {
            return;
        }
        place["id"] = json!(id.key());
        if let MessageId::Imap { uid, .. } = id {
            place["uid"] = json!(uid);
        }
        place["size"] = json!(size);
        self.messages.push(place.to_string().into());
    }
}

fn summary(cli: &Cli, target: &Target, tally: &Tally, written: &Written) {
    if cli.json {
        let head = json!({
            "fetched": tally.fetched,
            "bytes": tally.bytes,
            "deleted": tally.deleted,
            "recovered": tally.recovered,
            "gone": tally.gone,
            "resized": tally.resized,
            "to": target_text(target),
            "store": match target {
                Target::Maildir(_) => "maildir",
                Target::Mbox(_) => "mbox",
            },
        })
        .to_string();
        // The object with one more member, "messages", spliced in as text.
        let head = head.strip_suffix('}').unwrap_or(&head);
        outln!("{head},\"messages\":[{}]}}", written.messages.join(","));
    }
    if !cli.quiet {
        eprintln!("{}", summary_line(target, tally));
    }
}

fn target_text(target: &Target) -> String {
    target.path().display().to_string()
}

fn summary_line(target: &Target, tally: &Tally) -> String {
    let plural = if tally.fetched == 1 { "" } else { "s" };
    let mut line = format!(
        "fetched {} new message{plural} ({}) into {}",
        tally.fetched,
        HumanBytes(tally.bytes),
        target_text(target),
    );
    if tally.delete {
        line.push_str(&format!("; deleted {} on the server", tally.deleted));
    }
    if tally.recovered > 0 {
        line.push_str(&format!(
            "; {} found already stored by an interrupted run",
            tally.recovered
        ));
    }
    if tally.gone > 0 {
        line.push_str(&format!(
            "; {} deleted on the server by another client before they could be fetched",
            tally.gone
        ));
    }
    if tally.resized > 0 {
        line.push_str(&format!(
            "; {} differed in size from the server's list and were stored as received",
            tally.resized
        ));
    }
    line
}

/// Says why the run stopped and what it did before; returns the exit code (`signalled`: the
/// one for the signal, when one stopped it). Deletions wait for the end of the run (see
/// [`delete_stored`]), so a store that cannot be written (exit 74) always ends with "nothing
/// was deleted on the server".
fn report(
    cli: &Cli,
    target: &Target,
    tally: &Tally,
    stop: Stop,
    signalled: u8,
    pop3: bool,
) -> Exit {
    let code = match &stop {
        Stop::Session(e) => common::fail("fetch", e).0,
        Stop::Store(e) => fail_store(target, "write to", e).0,
        Stop::Interrupted => common::failed("fetch", "interrupted", signalled).0,
    };
    if !cli.quiet {
        let shown = Tally {
            delete: false,
            ..*tally
        };
        let mut line = format!("stopped: {}", summary_line(target, &shown));
        if tally.delete && tally.deleted == 0 {
            line.push_str("; nothing was deleted on the server");
        } else if tally.delete {
            line.push_str(&format!("; deleted {} on the server", tally.deleted));
        }
        if pop3 && tally.dropped > 0 {
            line.push_str(" (POP3: no QUIT, so the DELEs sent were not carried out)");
        }
        eprintln!("{line}");
    }
    Exit(code)
}

/// Saves the state at the end of a run (`MAILCAT_FAULT=fail_save_state`: fails as a full disk
/// would, for the tests).
fn save_state(state: &mut FetchState) -> io::Result<()> {
    if reached("fail_save_state") {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "No space left on device (MAILCAT_FAULT=fail_save_state)",
        ));
    }
    state.save()
}

/// The test hook: `MAILCAT_FAULT=POINT[@N]` aborts the N-th time `point` is reached.
fn fault(point: &str) {
    if reached(point) {
        std::process::abort();
    }
}

/// The test hook: `MAILCAT_FAULT=stall_POINT[@N]` waits there, the N-th time, for SIGINT or
/// SIGTERM (true then), so a test can signal a run at a known moment.
async fn stall(stop: &mut StopSignal, point: &str) -> bool {
    if reached(&format!("stall_{point}")) {
        stop.wait().await;
        return true;
    }
    false
}

/// The test hook: `MAILCAT_FAULT=pause_POINT` says so on stderr and waits there for SIGUSR1,
/// so a test can change the server under a run (delete a listed message) at a known moment.
async fn pause(point: &str) {
    if !reached(&format!("pause_{point}")) {
        return;
    }
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut resume) = signal(SignalKind::user_defined1()) else {
        return;
    };
    eprintln!("mailcat fetch: paused at {point} (test hook); SIGUSR1 resumes");
    resume.recv().await;
}

/// True the N-th time `point` is reached, when `MAILCAT_FAULT=POINT[@N]` names it.
fn reached(point: &str) -> bool {
    static REACHED: AtomicU32 = AtomicU32::new(0);
    let Ok(configured) = std::env::var("MAILCAT_FAULT") else {
        return false;
    };
    let (name, nth) = match configured.split_once('@') {
        Some((name, n)) => (name, n.parse().unwrap_or(1)),
        None => (configured.as_str(), 1),
    };
    name == point && REACHED.fetch_add(1, Ordering::Relaxed) + 1 == nth
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal `width` columns wide that keeps what is drawn on it.
    #[derive(Debug, Clone)]
    struct Screen {
        width: u16,
        drawn: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> io::Result<()> {
            self.write_str(line)
        }
        fn write_str(&self, text: &str) -> io::Result<()> {
            if !text.is_empty() {
                self.drawn.lock().unwrap().push(text.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_progress_line_counts_messages_and_fits_any_terminal_width() {
        let widths: [(u16, fn() -> u16); 5] = [
            (24, || 24),
            (40, || 40),
            (60, || 60),
            (80, || 80),
            (132, || 132),
        ];
        for (width, screen_width) in widths {
            let screen = Screen {
                width,
                drawn: Default::default(),
            };
            let bar = ProgressBar::with_draw_target(
                Some(3_000 * 70_000),
                ProgressDrawTarget::term_like(Box::new(screen.clone())),
            );
            let progress = Progress::with_bar(bar, 3_000, screen_width);
            for _ in 0..11 {
                progress.done(70_000);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            progress.bar.tick();
            let drawn = screen
                .drawn
                .lock()
                .unwrap()
                .iter()
                .rfind(|line| line.contains("message"))
                .cloned()
                .unwrap();
            assert!(
                drawn.chars().count() <= usize::from(width),
                "{width} columns: {drawn:?}"
            );
            assert!(
                drawn.contains("message 12 of 3000"),
                "{width} columns: {drawn:?}"
            );
            if width >= 80 {
                assert!(
                    drawn.contains("] message 12 of 3000, 751.95 KiB of 200.27 MiB, "),
                    "{width} columns: {drawn:?}"
                );
            }
        }
    }

    #[test]
    fn the_summary_gives_sizes_for_people() {
        let tally = Tally {
            fetched: 3,
            bytes: 7_500,
            ..Tally::default()
        };
        assert_eq!(
            summary_line(&Target::Maildir("/m".into()), &tally),
            "fetched 3 new messages (7.32 KiB) into /m"
        );
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("maildir:/m"),
            Some(Target::Maildir("/m".into()))
        );
        assert_eq!(Target::parse("mbox:a:b"), Some(Target::Mbox("a:b".into())));
        assert_eq!(Target::parse("maildir:"), None);
        assert_eq!(Target::parse("/m"), None);
        assert_eq!(Target::parse("mh:/m"), None);
    }

    #[test]
    fn state_and_lock_sit_hidden_beside_an_mbox_and_not_at_the_dot_lock_name() {
        let (state, lock) = Target::Mbox("/mail/inbox".into()).state_and_lock();
        assert_eq!(state, Path::new("/mail/.inbox.mailcat-state.json"));
        assert_eq!(lock, Path::new("/mail/.inbox.mailcat.lock"));
        let (state, _) = Target::Mbox("inbox".into()).state_and_lock();
        assert_eq!(state, Path::new(".inbox.mailcat-state.json"));
        let (state, lock) = Target::Maildir("/mail/md".into()).state_and_lock();
        assert_eq!(state, Path::new("/mail/md/.mailcat-state.json"));
        assert_eq!(lock, Path::new("/mail/md/.mailcat.lock"));
    }
}
