//! `mailcat fetch --to maildir:DIR|mbox:FILE [--mailbox M] [--delete]`: download what is new
//! since the last run, durably, and delete on the server only what is stored.
//!
//! # Where things live
//!
//! | store | state (what was fetched) | lock |
//! |---|---|---|
//! | `maildir:DIR` | `DIR/.mailcat-state.json` (+ `.log`) | `DIR/.mailcat.lock` |
//! | `mbox:FILE` | `FILE.mailcat-state.json` (+ `.log`) | `FILE.mailcat.lock` |
//!
//! (Not `FILE.lock`: that is the dot-lock name mutt and procmail use, and a file that exists
//! there would look like a lock held forever.) In the state, each source has its own record
//! keyed `imap://LOGIN@HOST/MAILBOX` or `pop3://LOGIN@HOST`, so two accounts, or two mailboxes,
//! can share one store. IMAP messages are recorded by UIDVALIDITY and UID, POP3 ones by UIDL.
//!
//! # The order of things, and why a crash anywhere is harmless
//!
//! For each new message: fetch into the store (Maildir: a file in `tmp/`; mbox: a spool file
//! `FILE.mailcat-spool[.N]`, then appended after the last complete message, a local copy of
//! milliseconds), commit (fsync; Maildir: rename into `new/` and fsync `new/`),
//! record it in the state (one fsynced log line), and only then — with `--delete` — delete it
//! on the server (IMAP: `\Deleted` + UID EXPUNGE per batch of stored messages; POP3: DELE,
//! which the server carries out only at the QUIT sent after everything succeeded).
//!
//! Downloads are pipelined, in batches of up to 16 messages or 4 MiB of listed size, so a
//! server far away costs a round trip per window of messages, not per message. IMAP: a sink
//! for each message of the batch (Maildir: its file in `tmp/`; mbox: its spool file), all
//! downloaded with a window of `UID FETCH` commands in flight, then each committed and
//! recorded in list order. POP3: the batch's `RETR` commands go out ahead (a window of them,
//! when the server announces PIPELINING), and each message is committed and recorded as soon
//! as it is in, before the next one's file is even opened; the DELEs follow the batch (no
//! command may go between pipelined replies, and a DELE waits for QUIT anyway). The order of
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
//! before anything more is deleted; POP3 then ends without QUIT, so no DELE takes effect.
//! SIGINT and SIGTERM stop the run the same way (the messages downloaded and not yet committed
//! are removed) with exit 130. A second `mailcat fetch` on the same store fails at once with
//! exit 75.
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
//! a run at a known moment.

use std::collections::HashSet;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailcat_session::store::{FetchState, Maildir, MaildirMessage, Mbox, StoreLock};
use mailcat_session::{Incoming, Listing, MessageId, MessageSummary};
use mailcat_transport::Protocol;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::cli::{Cli, FetchArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// IMAP deletes stored messages in batches of this many (one STORE + EXPUNGE each).
const DELETE_BATCH: usize = 50;

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
                with_suffix(file, ".mailcat-state.json"),
                with_suffix(file, ".mailcat.lock"),
            ),
        }
    }
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
        /// `FILE.mailcat-spool`: each message is downloaded here first, so the mbox only ever
        /// sees a fast local copy, never a download in progress.
        spool: PathBuf,
    },
}

fn fail_store(target: &Target, what: &str, error: &io::Error) -> Exit {
    eprintln!(
        "mailcat fetch: cannot {what} {}: {error}",
        target.path().display()
    );
    Exit(exit::IOERR)
}

fn fetch(cli: &Cli, args: &FetchArgs) -> Result<(), Exit> {
    let Some(target) = Target::parse(&args.to) else {
        eprintln!(
            "mailcat fetch: --to {}: say maildir:DIR or mbox:FILE",
            terminal_safe(&args.to)
        );
        return Err(Exit(exit::USAGE));
    };
    let settings = common::settings(cli, "fetch")?;
    let account = common::account(cli, &settings, "fetch", true, false)?;
    let (state_path, lock_path) = target.state_and_lock();
    if let Target::Maildir(dir) = &target {
        std::fs::create_dir_all(dir).map_err(|e| fail_store(&target, "create", &e))?;
    }
    let _lock = StoreLock::try_acquire(&lock_path).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            eprintln!("mailcat fetch: {e}");
            Exit(exit::TEMPFAIL)
        } else {
            fail_store(&target, "lock", &e)
        }
    })?;
    let mut state = FetchState::load(&state_path).map_err(|e| {
        eprintln!("mailcat fetch: {e}");
        Exit(if e.kind() == io::ErrorKind::InvalidData {
            exit::DATAERR
        } else {
            exit::IOERR
        })
    })?;
    let key = match account.incoming.protocol {
        Protocol::Pop3 => format!("pop3://{}@{}", settings.login, account.incoming.host),
        _ => format!(
            "imap://{}@{}/{}",
            settings.login,
            account.incoming.host,
            args.mailbox.as_deref().unwrap_or("INBOX")
        ),
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
                    spool: with_suffix(file, ".mailcat-spool"),
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
        let mut incoming = Some(incoming);
        let result = run_session(
            cli,
            args,
            &key,
            &mut store,
            &mut state,
            &mut stop,
            incoming.as_mut().expect("just set"),
            &mut tally,
        )
        .await;
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
                    tally.deleted = 0;
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
                state
                    .save()
                    .map_err(|e| fail_store(&target, "save the state of", &e))?;
                summary(cli, &target, &tally);
                Ok(())
            }
            Err(stop) => Err(report(cli, &target, &tally, stop, pop3)),
        }
    })
}

/// The fetch itself, on a logged-in session.
#[allow(clippy::too_many_arguments)]
async fn run_session(
    cli: &Cli,
    args: &FetchArgs,
    key: &str,
    store: &mut Store,
    state: &mut FetchState,
    stop: &mut StopSignal,
    incoming: &mut Incoming,
    tally: &mut Tally,
) -> Result<(), Stop> {
    // Which messages there are (IMAP: UIDs as ranges), without a summary of any: a mailbox
    // of a million messages with nothing new is done after one SEARCH.
    let mut listing = until_stopped(stop, incoming.list_start(args.mailbox.as_deref(), None))
        .await
        .ok_or(Stop::Interrupted)??;
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
        Incoming::Pop3 { .. } if listing.ids().any(|id| !id.is_stable()) => {
            return Err(no_stable_ids(
                incoming,
                "the server has no UIDL (it is optional in RFC 1939)",
            ))
        }
        _ => None,
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
    match listing.uids() {
        Some(present) => state.retain_uids(key, present),
        None => {
            let present: HashSet<String> = listing.ids().map(|id| id.key()).collect();
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
        flush_deletes(incoming, &mut to_delete, tally, stop, 1).await?;
    }

    let progress = progress_bar(cli, new.iter().map(|m| m.size.unwrap_or(0)).sum());
    // POP3: DELE after each batch (it takes effect at QUIT; none may be sent while RETR
    // replies are pending); IMAP: in batches of DELETE_BATCH.
    let delete_at = if uidvalidity.is_some() {
        DELETE_BATCH
    } else {
        1
    };
    let mut saver = Saver {
        key,
        uidvalidity,
        store,
        state,
        tally,
        progress: &progress,
        to_delete: &mut to_delete,
        delete: args.delete,
    };
    let mut rest = &new[..];
    while !rest.is_empty() {
        let batch = &rest[..batch_len(rest)];
        rest = &rest[batch.len()..];
        match incoming {
            Incoming::Imap { .. } => saver.imap_batch(incoming, stop, batch).await?,
            Incoming::Pop3 { .. } => saver.pop3_batch(incoming, stop, batch).await?,
        }
        flush_deletes(incoming, saver.to_delete, saver.tally, stop, delete_at).await?;
    }
    progress.finish_and_clear();
    flush_deletes(incoming, &mut to_delete, tally, stop, 1).await
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
    fn writer(&mut self) -> &mut tokio::fs::File {
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
    progress: &'a ProgressBar,
    to_delete: &'a mut Vec<MessageId>,
    delete: bool,
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
        let mut requests: Vec<(&MessageId, &mut tokio::fs::File)> = batch
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
                match until_stopped(stop, incoming.fetch_next(&mut fetching, sink.writer())).await {
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
                self.progress.inc(message.size.unwrap_or(0));
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
                let mbox_len = match (sink, &*self.store) {
                    (Sink::Maildir(file), _) => {
                        file.commit().await.map_err(Stop::Store)?;
                        None
                    }
                    (Sink::Spool(mut file), Store::Mbox { mbox, .. }) => {
                        Some(append_to_mbox(mbox, &mut file).await.map_err(Stop::Store)?)
                    }
                    (Sink::Spool(_), Store::Maildir { .. }) => {
                        unreachable!("a spool only for an mbox")
                    }
                };
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
        self.progress.inc(message.size.unwrap_or(0));
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

/// The spool file of the `slot`-th message of a batch: `FILE.mailcat-spool`, then `…-spool.1`…
fn spool_path(spool: &Path, slot: usize) -> PathBuf {
    if slot == 0 {
        spool.to_owned()
    } else {
        with_suffix(spool, &format!(".{slot}"))
    }
}

/// Deletes the stored messages in `pending` once there are `at_least` of them.
async fn flush_deletes(
    incoming: &mut Incoming,
    pending: &mut Vec<MessageId>,
    tally: &mut Tally,
    stop: &mut StopSignal,
    at_least: usize,
) -> Result<(), Stop> {
    if pending.is_empty() || pending.len() < at_least {
        return Ok(());
    }
    until_stopped(stop, incoming.delete(pending))
        .await
        .ok_or(Stop::Interrupted)??;
    tally.deleted += pending.len() as u64;
    pending.clear();
    Ok(())
}

/// Appends the spooled message to the mbox and commits it; returns the mbox's new length.
/// On an error the mbox is cut back to where it was.
async fn append_to_mbox(mbox: &Mbox, spool: &mut tokio::fs::File) -> io::Result<u64> {
    use tokio::io::AsyncSeekExt;
    spool.flush().await?;
    spool.rewind().await?;
    let mut entry = mbox.begin(None).await?;
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
    entry.commit().await
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
    stopped: bool,
}

impl StopSignal {
    fn new() -> io::Result<StopSignal> {
        Ok(StopSignal {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            stopped: false,
        })
    }

    async fn wait(&mut self) {
        if !self.stopped {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
            self.stopped = true;
        }
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

fn progress_bar(cli: &Cli, total: u64) -> ProgressBar {
    if cli.quiet || !io::stderr().is_terminal() || total == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} fetching [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn summary(cli: &Cli, target: &Target, tally: &Tally) {
    if cli.json {
        outln!(
            "{}",
            json!({
                "fetched": tally.fetched,
                "bytes": tally.bytes,
                "deleted": tally.deleted,
                "recovered": tally.recovered,
                "gone": tally.gone,
                "to": target_text(target),
            })
        );
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
        "fetched {} new message{plural} ({} bytes) into {}",
        tally.fetched,
        tally.bytes,
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

/// Says why the run stopped and what it did before; returns the exit code.
fn report(cli: &Cli, target: &Target, tally: &Tally, stop: Stop, pop3: bool) -> Exit {
    let code = match &stop {
        Stop::Session(e) => common::fail("fetch", e).0,
        Stop::Store(e) => fail_store(target, "write to", e).0,
        Stop::Interrupted => {
            eprintln!("mailcat fetch: interrupted");
            exit::INTERRUPTED
        }
    };
    if !cli.quiet {
        // POP3 deletes at QUIT, which a stopped run does not send: nothing was deleted.
        let shown = Tally {
            delete: tally.delete && !pop3,
            ..*tally
        };
        let mut line = format!("stopped: {}", summary_line(target, &shown));
        if pop3 && tally.delete {
            line.push_str(" (POP3: no QUIT, so the server deleted nothing)");
        }
        eprintln!("{line}");
    }
    Exit(code)
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
    fn state_and_lock_sit_beside_the_store_but_not_at_the_dot_lock_name() {
        let (state, lock) = Target::Mbox("/mail/inbox".into()).state_and_lock();
        assert_eq!(state, Path::new("/mail/inbox.mailcat-state.json"));
        assert_eq!(lock, Path::new("/mail/inbox.mailcat.lock"));
        let (state, lock) = Target::Maildir("/mail/md".into()).state_and_lock();
        assert_eq!(state, Path::new("/mail/md/.mailcat-state.json"));
        assert_eq!(lock, Path::new("/mail/md/.mailcat.lock"));
    }
}
