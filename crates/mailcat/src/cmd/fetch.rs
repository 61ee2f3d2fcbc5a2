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
//! The engine is the library's ([`mailcat_session::sync`], where the order, group commit and
//! crash windows are documented in full); this command keeps the arguments, the target, the
//! store's lock and state files, the signals (SIGINT and SIGTERM are the sync's cancellation),
//! the progress bar, the summary and the exit codes. In short:
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
//! for each message of the batch (Maildir: held in memory, written into its file in `tmp/` by
//! the commit, or as it comes for a message over 256 KiB; mbox: its spool file), all
//! downloaded with one `UID FETCH` of ranges, then committed and recorded in list order, in
//! groups of 16, while the next batch downloads. POP3: the `RETR` commands of every new message
//! go out through one window (when the server announces PIPELINING), across batches, so the
//! server keeps sending while a batch is committed; a Maildir and an mbox alike commit each
//! group with one sync (an mbox: appended under one lock, one `fsync`). The order of
//! commit, record and delete for each message is the one above, whatever the batching; a
//! download that fails for one message alone (a full disk, an IMAP message gone) leaves the
//! messages before it to be stored as usual.
//!
//! - Killed before the commit: Maildir leaves a file in `tmp/` (IMAP: the rest of the batch too;
//!   invisible; the next fetch, holding the lock, removes them); an mbox the spool files
//!   (invisible), or, if killed during the local append, a partial group after the last recorded
//!   length, which the next run cuts off. The message is still on the server and is fetched again.
//! - Killed after the commit, before the record: the message is stored but the state does not
//!   know. A Maildir file name carries a tag, 16 hex digits of SHA-256 of
//!   `KEY/UIDVALIDITY/UID` (or `KEY/UIDL`), so the next run sees the tag in `new/` or `cur/`,
//!   records the message without fetching it again, and no duplicate appears. In an mbox the
//!   state's recorded length is the commit point: the next run cuts the unrecorded group off
//!   (the group journal `.FILE.mailcat-group` proves the bytes are that group's) and fetches it
//!   again. The length before the first message is recorded too (at the start of each run
//!   where the file is not as long as recorded), so this also holds for the first message ever
//!   appended.
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
//! the run is refused before anything is fetched (threat model #43, #53). A message whose size
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
//! Built with the `fault-injection` feature only (which `cargo test --features lab` turns
//! on): `MAILCAT_FAULT=POINT[@N]` aborts the process at a point of the
//! sync; see `mailcat_session::sync::fault` for the points. Without the feature the variable
//! does nothing.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailcat_session::store::{FetchState, Maildir, Mbox, Resolved, Source, StoreLock};
use mailcat_session::sync::{
    Event, MaildirStore, MboxStore, Place, StopReason, Stopped, Sync, SyncReport,
};
use mailcat_session::MessageId;
use mailcat_transport::Protocol;
use serde_json::json;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::cli::{Cli, FetchArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Spool files an older mailcat may have left beside an mbox (one per message of a batch).
const OLD_SPOOL_SLOTS: usize = 16;

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli, args: &FetchArgs) -> u8 {
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
    fn parse(to: &str) -> Option<Self> {
        let (kind, path) = to.split_once(':')?;
        if path.is_empty() {
            return None;
        }
        match kind {
            "maildir" => Some(Self::Maildir(path.into())),
            "mbox" => Some(Self::Mbox(path.into())),
            _ => None,
        }
    }

    /// The same target with a leading `~` or `~USER` of its path expanded.
    fn with_home_expanded(self) -> Result<Self, crate::tilde::TildeError> {
        Ok(match self {
            Self::Maildir(dir) => Self::Maildir(crate::tilde::expand(&dir)?),
            Self::Mbox(file) => Self::Mbox(crate::tilde::expand(&file)?),
        })
    }

    fn path(&self) -> &Path {
        match self {
            Self::Maildir(p) | Self::Mbox(p) => p,
        }
    }

    /// The state file and the lock file.
    fn state_and_lock(&self) -> (PathBuf, PathBuf) {
        match self {
            Self::Maildir(dir) => (dir.join(".mailcat-state.json"), dir.join(".mailcat.lock")),
            Self::Mbox(file) => (
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
    for slot in 0..OLD_SPOOL_SLOTS {
        let _ = std::fs::remove_file(MboxStore::spool_path(&old_spool, slot));
    }
    let _ = std::fs::remove_file(&old_lock);
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What a run did, as the summary tells it.
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

impl Tally {
    fn new(delete: bool, report: &SyncReport) -> Self {
        Self {
            delete,
            fetched: report.stored,
            bytes: report.bytes,
            deleted: report.deleted,
            dropped: report.deletes_dropped,
            recovered: report.recovered,
            gone: report.gone,
            resized: report.resized,
        }
    }
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
        host: &common::incoming(&account).host,
        mailbox: match common::incoming(&account).protocol {
            Protocol::Pop3 => None,
            _ => Some(args.mailbox.as_deref().unwrap_or("INBOX")),
        },
    };
    let runtime = common::runtime()?;
    runtime.block_on(async {
        let mut maildir_store = None;
        let mut mbox_store = None;
        match &target {
            Target::Maildir(dir) => {
                let maildir = Maildir::open(dir).map_err(|e| fail_store(&target, "open", &e))?;
                // What a killed fetch left in tmp/ (we hold the lock: nobody is writing it).
                maildir
                    .remove_tagged_tmp()
                    .map_err(|e| fail_store(&target, "clean tmp/ of", &e))?;
                maildir_store = Some(MaildirStore::new(maildir));
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
                mbox_store = Some(MboxStore::new(mbox, hidden_beside(file, ".mailcat-spool")));
            }
        }
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
        let pop3 = matches!(incoming, mailcat_session::Incoming::Pop3 { .. });
        let mut written = Written::new(cli.json);
        let mut progress: Option<Progress> = None;
        let on_event =
            |event: Event<'_>| on_event(cli, &source, &mut progress, &mut written, event);
        let result = match (&mut maildir_store, &mut mbox_store) {
            (Some(store), _) => {
                let sync = Sync::new(store, &mut state, source).mailbox(args.mailbox.as_deref());
                let sync = if args.delete {
                    sync.delete_stored()
                } else {
                    sync
                };
                sync.on_event(on_event).run(incoming, stop.wait()).await
            }
            (_, Some(store)) => {
                let sync = Sync::new(store, &mut state, source).mailbox(args.mailbox.as_deref());
                let sync = if args.delete {
                    sync.delete_stored()
                } else {
                    sync
                };
                sync.on_event(on_event).run(incoming, stop.wait()).await
            }
            (None, None) => unreachable!("one store is open"),
        };
        if let Some(progress) = progress.take() {
            if result.is_ok() {
                progress.finish();
            }
        }
        match result {
            Ok(report) => {
                summary(cli, &target, &Tally::new(args.delete, &report), &written);
                Ok(())
            }
            Err(Stopped { report, reason }) => Err(self::report(
                cli,
                &target,
                &Tally::new(args.delete, &report),
                reason,
                stop.exit_code(),
                pop3,
            )),
        }
    })
}

/// What the sync tells as it goes: notices on stderr, the progress bar, the JSON list.
fn on_event(
    cli: &Cli,
    source: &Source<'_>,
    progress: &mut Option<Progress>,
    written: &mut Written,
    event: Event<'_>,
) {
    match event {
        Event::Resolved {
            resolved,
            uidvalidity,
        } => {
            if cli.quiet {
                return;
            }
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
            match resolved {
                Resolved::Adopted { host: before, .. } => eprintln!(
                    "mailcat fetch: {host} is another name of {} ({same}): going on from what was fetched from there",
                    terminal_safe(before)
                ),
                Resolved::Unrelated { hosts, .. } => eprintln!(
                    "mailcat fetch: {host} is not the mailbox fetched from before as {} ({other}): it gets a record of its own, and all its mail counts as new",
                    hosts.iter().map(|h| terminal_safe(h)).collect::<Vec<_>>().join(", ")
                ),
                _ => {}
            }
        }
        Event::UidValidityChanged { before, now } if !cli.quiet => {
            eprintln!(
                    "mailcat fetch: the mailbox's UIDVALIDITY changed ({} → {}): what was fetched before cannot be told apart from new mail, so everything is fetched again",
                    before.map(|v| v.to_string()).unwrap_or_else(|| "none".into()),
                    now.map(|v| v.to_string()).unwrap_or_else(|| "none".into()),
                );
        }
        Event::Listed { messages, bytes } => *progress = Some(Progress::new(cli, messages, bytes)),
        Event::Stored { id, bytes, place } => {
            let place = match place {
                Place::File(path) => json!({ "path": path.display().to_string() }),
                Place::Range { offset, length } => json!({ "offset": offset, "length": length }),
                _ => json!({}),
            };
            written.add(id, bytes, place);
        }
        Event::Done { size } => {
            if let Some(progress) = progress {
                progress.done(size);
            }
        }
        _ => {}
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
    fn new() -> io::Result<Self> {
        Ok(Self {
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
    fn new(cli: &Cli, messages: u64, bytes: u64) -> Self {
        let bar = if cli.quiet || !io::stderr().is_terminal() || messages == 0 {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr())
        };
        Self::with_bar(bar, messages, terminal_width)
    }

    fn with_bar(bar: ProgressBar, messages: u64, screen_width: fn() -> u16) -> Self {
        let progress = Self {
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
        let template = match Self::bar_width(width) {
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
        let bar = Self::bar_width(self.width.get());
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
    fn new(keep: bool) -> Self {
        Self {
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
/// `mailcat_session::sync`), so a store that cannot be written (exit 74) always ends with "nothing
/// was deleted on the server".
fn report(
    cli: &Cli,
    target: &Target,
    tally: &Tally,
    stop: StopReason,
    signalled: u8,
    pop3: bool,
) -> Exit {
    let code = match &stop {
        StopReason::Session(e) => common::fail("fetch", e).0,
        StopReason::Store(e) => fail_store(target, "write to", e).0,
        _ => common::failed("fetch", "interrupted", signalled).0,
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
