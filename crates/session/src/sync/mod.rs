//! Sync: fetch everything new since last time into a [`Store`], durably, and optionally delete
//! on the server what is stored, over IMAP or POP3.
//!
//! ```no_run
//! # async fn example(account: mailcat_session::Account) -> Result<(), Box<dyn std::error::Error>> {
//! use mailcat_session::store::{FetchState, Source, StoreLock};
//! use mailcat_session::sync::{Event, MaildirStore, Sync};
//!
//! let dir = std::path::Path::new("/home/me/Mail/inbox");
//! std::fs::create_dir_all(dir)?;
//! // One sync at a time on a store, and the record of what was fetched beside it.
//! let _lock = StoreLock::try_acquire(&dir.join(".mailcat.lock"))?;
//! let mut state = FetchState::load(dir.join(".mailcat-state.json"))?;
//! let mut store = MaildirStore::open(dir)?;
//!
//! let incoming = account.receive().await?;
//! let source = Source { login: "me@example.org", host: "imap.example.org", mailbox: Some("INBOX") };
//! let cancel = tokio::sync::Notify::new(); // notify_one() from elsewhere stops the sync
//! let report = Sync::new(&mut store, &mut state, source)
//!     .delete_stored()
//!     .on_event(|event| {
//!         if let Event::Done { size } = event {
//!             eprintln!("one more message ({size} bytes)");
//!         }
//!     })
//!     .run(incoming, cancel.notified())
//!     .await?; // on an error: `Stopped`, with the report of what was stored before
//! println!("{} new, {} deleted", report.stored, report.deleted);
//! # Ok(())
//! # }
//! ```
//!
//! # The order of things, and why a crash anywhere is harmless
//!
//! Messages are downloaded in batches of up to 256 messages (the first 16, each next one twice
//! the one before) or 4 MiB of listed size (IMAP: one `UID FETCH` of UID ranges; POP3: the
//! `RETR`s of every new message sent ahead through one window, pipelined when the server
//! allows), each into a writer of the store ([`Store::begin`]). While a batch is settled, the
//! next one downloads: the server goes on sending as the store syncs. A batch is settled in
//! list order, in groups of up to 16 messages (fewer if [`Store::group_limit`] says so),
//! Maildir and mbox alike:
//!
//! 1. **write**: the download is in the store's scratch place, out of view;
//! 2. **sync**: [`Store::commit`] makes the group durable and visible, with one sync for the
//!    group (Maildir: an `fdatasync` of each file, the renames into `new/`, one `fsync` of
//!    `new/`);
//! 3. **record**: the group is recorded in the [`FetchState`] with one `fdatasync` of its log
//!    ([`FetchState::record_many`]);
//! 4. **delete**: only when every new message is stored and the state saved
//!    ([`FetchState::save`]) does a sync told [`Sync::delete_stored`] delete on the server
//!    what is stored (IMAP: `\Deleted` + `UID EXPUNGE` per 500; POP3: `DELE`, carried out by
//!    the server at the `QUIT` that ends the sync). A sync that fails to write deletes nothing
//!    at all, not even what it stored before the failure.
//!
//! Group commit keeps the guarantee that nothing is deleted on the server before it is durably
//! stored and recorded: a message is recorded only after the commit of its whole group has
//! returned (every file and the directory entry that names it synced), and deleted only after
//! the record of every message of the run is synced and the state saved. Batching changes how
//! many messages share one sync, never the order of the steps for any message; what a crash
//! can lose is only work (messages committed and not yet recorded), never mail:
//!
//! - Killed before the commit: the scratch files are out of view (Maildir: tagged files in
//!   `tmp/`, removed by the next [`MaildirStore::open`]; mbox: the spool files). The messages
//!   are still on the server and are fetched again.
//! - Killed during or after the commit, before the record: a Maildir file name carries a tag,
//!   16 hex digits of SHA-256 of the message's id (`KEY/UIDVALIDITY/UID` or `KEY/UIDL`), so
//!   the next sync finds what reached `new/` ([`Store::contains`]), records it without fetching
//!   it again (counted in [`SyncReport::recovered`]), and fetches the rest. In an mbox the
//!   state's recorded length is the commit point: the next sync cuts the unrecorded group off
//!   (its group journal, `.FILE.mailcat-group`, shows the bytes are that group's) and fetches
//!   it again.
//! - Killed after the record: the message is known; the next sync does not fetch it and, told
//!   to delete, deletes it then.
//! - Killed between `DELE` and `QUIT` (POP3): no `QUIT`, so the server deletes nothing; the
//!   next sync skips the recorded messages and deletes them.
//!
//! # Ids that last
//!
//! IMAP messages are recorded by UIDVALIDITY and UID, POP3 ones by UIDL, under the key of the
//! source ([`Source::key`]; another name of the same server goes on with the record made under
//! the first, see [`FetchState::resolve`]). If an IMAP mailbox's UIDVALIDITY changed, its
//! record is reset: everything is fetched again, and nothing is deleted by an old UID. A
//! mailbox without UIDVALIDITY, or a POP3 server without UIDL, has no id that lasts from one
//! session to the next: the sync is refused before anything is fetched. A message whose size
//! is not the listed one is stored as received and counted ([`SyncReport::resized`]); one
//! deleted by another client between the listing and its download is skipped
//! ([`SyncReport::gone`]).
//!
//! # Cancellation
//!
//! [`Sync::run`] takes a future: when it completes, the sync stops at the next await point,
//! gives up on (removes) the messages downloaded and not committed, deletes nothing, drops the
//! connection without `QUIT`/`LOGOUT` (POP3: so no `DELE` is carried out) and returns
//! [`StopReason::Cancelled`] with the report of what was stored. A store's commit may be cut
//! short too; [`Store::commit`] says what a store must then leave.

mod store;

#[doc(hidden)]
pub mod fault;

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

pub use store::{Committed, MaildirStore, MboxStore, Place, Spooled, Store};

use crate::store::{FetchState, Identity, Resolved, Source};
use crate::{Error, Incoming, Listing, MessageId, MessageSummary};

/// Stored messages are deleted, at the end of the sync, in batches of this many (IMAP: one
/// STORE + EXPUNGE each).
const DELETE_BATCH: usize = 500;

/// Messages are downloaded in batches of at most this many (IMAP: one `UID FETCH` of ranges;
/// fewer batches, fewer round trips with the server idle) ...
const FETCH_BATCH: usize = 256;

/// ... the first of them of at most this many, each next one twice the one before.
const FIRST_BATCH: usize = 16;

/// ... and at most this many bytes of listed size (one message may be bigger): what the sync
/// holds in memory, twice (one batch downloading while the one before is committed).
const FETCH_BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// A batch is committed in groups of at most this many messages (fewer if the store says so,
/// [`Store::group_limit`]): one sync of the directory and one of the state's log per group.
/// A crash loses at most a group's work, never mail; progress is told a group at a time.
const COMMIT_GROUP: usize = 16;

/// What a sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// Messages fetched and stored.
    pub stored: u64,
    /// Their bytes, as the server sent them.
    pub bytes: u64,
    /// Messages found already stored, by a sync that stopped between the commit and the
    /// record: recorded without fetching them again.
    pub recovered: u64,
    /// Listed, then deleted on the server by another client before they could be fetched:
    /// skipped.
    pub gone: u64,
    /// Fetched with another size than the server listed (stored as received).
    pub resized: u64,
    /// Deleted on the server (IMAP: expunged; POP3: carried out at `QUIT`).
    pub deleted: u64,
    /// POP3: `DELE`s sent in a sync that stopped before `QUIT`, so the server carried none of
    /// them out.
    pub deletes_dropped: u64,
}

/// Why a sync stopped early.
#[derive(Debug)]
#[non_exhaustive]
pub enum StopReason {
    /// The server or the session failed.
    Session(Error),
    /// The store (or the state) could not be written.
    Store(io::Error),
    /// The cancellation future completed.
    Cancelled,
}

/// A sync that stopped early, with what it did before.
#[derive(Debug)]
pub struct Stopped {
    /// What was stored (and deleted) before it stopped.
    pub report: SyncReport,
    /// Why.
    pub reason: StopReason,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            StopReason::Session(e) => write!(f, "{e}"),
            StopReason::Store(e) => write!(f, "cannot write the store: {e}"),
            StopReason::Cancelled => f.write_str("cancelled"),
        }?;
        write!(f, " ({} messages stored before)", self.report.stored)
    }
}

impl std::error::Error for Stopped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            StopReason::Session(e) => Some(e),
            StopReason::Store(e) => Some(e),
            StopReason::Cancelled => None,
        }
    }
}

/// What a sync tells as it goes ([`Sync::on_event`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'e> {
    /// The record to go on from was found under another name of the server, or records under
    /// other names turned out to be of another mailbox (see [`FetchState::resolve`]). Not sent
    /// for [`Resolved::Known`] or [`Resolved::New`].
    Resolved {
        /// What was found.
        resolved: &'e Resolved,
        /// The mailbox's UIDVALIDITY (IMAP), by which it was told.
        uidvalidity: Option<u32>,
    },
    /// The mailbox's UIDVALIDITY changed: its record was reset, and everything is fetched again.
    UidValidityChanged {
        /// The one recorded.
        before: Option<u32>,
        /// The one now.
        now: Option<u32>,
    },
    /// The new messages are known: the progress to expect.
    Listed {
        /// How many.
        messages: u64,
        /// Their listed size.
        bytes: u64,
    },
    /// A message is durably stored and recorded.
    Stored {
        /// Its id on the server.
        id: &'e MessageId,
        /// Its bytes, as the server sent them.
        bytes: u64,
        /// Where it is.
        place: &'e Place,
    },
    /// One more message is done (stored, found stored, or gone): `size` is its listed size.
    Done {
        /// Its listed size.
        size: u64,
    },
}

/// One sync of one source (a POP3 maildrop, an IMAP mailbox) into one store; see the
/// [module](self).
pub struct Sync<'a, S> {
    store: &'a mut S,
    state: &'a mut FetchState,
    source: Source<'a>,
    mailbox: Option<&'a str>,
    delete: bool,
    on_event: Box<dyn FnMut(Event<'_>) + 'a>,
}

impl<S> std::fmt::Debug for Sync<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sync")
            .field("source", &self.source.key())
            .field("delete", &self.delete)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Store> Sync<'a, S> {
    /// A sync from `source` into `store`, recorded in `state`. `source.mailbox` names the
    /// record's IMAP mailbox (`None` for POP3) and is the mailbox selected unless
    /// [`Sync::mailbox`] says otherwise.
    pub fn new(store: &'a mut S, state: &'a mut FetchState, source: Source<'a>) -> Self {
        Sync {
            store,
            state,
            mailbox: source.mailbox,
            source,
            delete: false,
            on_event: Box::new(|_| {}),
        }
    }

    /// The IMAP mailbox to select (`None`: the session's default, `INBOX`).
    #[must_use]
    pub fn mailbox(mut self, mailbox: Option<&'a str>) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// Deletes on the server every listed message that is stored (this sync's, and those of
    /// earlier syncs), once everything new is stored and the state saved.
    #[must_use]
    pub fn delete_stored(mut self) -> Self {
        self.delete = true;
        self
    }

    /// Calls `f` as the sync goes: progress ([`Event::Listed`], [`Event::Done`]), each message
    /// stored, and what is worth telling a user.
    #[must_use]
    pub fn on_event(mut self, f: impl FnMut(Event<'_>) + 'a) -> Self {
        self.on_event = Box::new(f);
        self
    }

    /// Runs the sync on `incoming` (logged in), which it ends: with `QUIT`/`LOGOUT` when all
    /// went well, by dropping the connection otherwise. Stops cleanly when `cancel` completes
    /// (see the [module](self)). The state is saved before anything is deleted.
    pub async fn run<T: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        mut incoming: Incoming<T>,
        cancel: impl Future<Output = ()>,
    ) -> Result<SyncReport, Stopped> {
        let cancel = std::pin::pin!(cancel);
        let cancel = Cancel::new(cancel);
        let pop3 = matches!(incoming, Incoming::Pop3 { .. });
        let mut report = SyncReport::default();
        let result = self.session(&mut incoming, &cancel, &mut report).await;
        // Nothing is deleted before everything is written: the messages, then the state.
        let result = match result {
            Ok(to_delete) => match save_state(self.state) {
                Ok(()) => delete_stored(&mut incoming, &to_delete, &mut report, &cancel).await,
                Err(e) => Err(StopReason::Store(e)),
            },
            Err(stop) => Err(stop),
        };
        let result = match result {
            Ok(()) => {
                if pop3 && self.delete && report.deleted > 0 {
                    fault::abort_at("between_dele_and_quit");
                }
                match cancel.until(incoming.close()).await {
                    None => Err(StopReason::Cancelled),
                    Some(Err(e)) => Err(StopReason::Session(e)),
                    Some(Ok(())) => Ok(()),
                }
            }
            Err(stop) => {
                // POP3: no QUIT, so no DELE of this session takes effect.
                incoming.abort().await;
                if pop3 {
                    report.deletes_dropped = std::mem::take(&mut report.deleted);
                }
                Err(stop)
            }
        };
        self.store.finish();
        match result {
            Ok(()) => Ok(report),
            Err(reason) => Err(Stopped { report, reason }),
        }
    }

    /// The sync itself, on a logged-in session: stores what is new and returns what may be
    /// deleted (when told to: every listed message that is stored), for [`delete_stored`]
    /// once nothing more is written.
    async fn session<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        incoming: &mut Incoming<T>,
        cancel: &Cancel<'_, impl Future<Output = ()>>,
        report: &mut SyncReport,
    ) -> Result<Vec<MessageId>, StopReason> {
        let source = self.source;
        // POP3 with a record already (the usual run): each UIDL is looked up in the record as
        // the listing streams in, marked there if found, and held only if new (or to be
        // deleted): a maildrop of a million messages with nothing new holds none of them, nor
        // a set of its UIDLs, and needs no LIST.
        let streamed_key = match incoming {
            Incoming::Pop3 { .. } => self.state.known_key(&source).filter(|key| {
                self.state
                    .mailbox(key)
                    .is_some_and(|record| record.uidvalidity.is_none())
            }),
            Incoming::Imap { .. } => None,
        };
        let recorded = streamed_key
            .as_deref()
            .and_then(|key| self.state.mailbox(key))
            .map(|record| &record.fetched);
        let mut marks = recorded.map(|fetched| fetched.marks());
        let delete = self.delete;
        let listing = match (recorded, marks.as_mut()) {
            (Some(fetched), Some(marks)) => {
                let keep = |uidl: &str| !fetched.check(uidl, marks) || delete;
                let listing = incoming.list_start_filtered(self.mailbox, None, keep);
                cancel.until(listing).await
            }
            // Which messages there are (IMAP: UIDs as ranges), without a summary of any: a
            // mailbox of a million messages with nothing new is done after one SEARCH.
            _ => cancel.until(incoming.list_start(self.mailbox, None)).await,
        };
        let mut listing = listing
            .ok_or(StopReason::Cancelled)?
            .map_err(StopReason::Session)?;
        // IMAP without a valid UIDVALIDITY (threat model #43): a UID may then name another
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
            // POP3 without UIDL (threat model #53): a message number may name another message
            // on the next run, so the same holds.
            Incoming::Pop3 { .. } if !listing.stable_ids() => {
                return Err(no_stable_ids(
                    incoming,
                    "the server has no UIDL (it is optional in RFC 1939)",
                ))
            }
            _ => None,
        };
        // The record the listing was checked against is the one `resolve_record` would find.
        let key = match streamed_key {
            Some(key) => key,
            None => self.resolve_record(uidvalidity, &listing)?,
        };
        if let Some(recorded) = self.state.mailbox(&key) {
            if recorded.uidvalidity != uidvalidity {
                (self.on_event)(Event::UidValidityChanged {
                    before: recorded.uidvalidity,
                    now: uidvalidity,
                });
                self.state
                    .reset(&key, uidvalidity)
                    .map_err(StopReason::Store)?;
            }
        }
        // Forget what the server no longer has, so the record does not grow for ever.
        match (listing.uids(), marks) {
            (Some(present), _) => self.state.retain_uids(&key, present),
            // Checked as the listing streamed in.
            (None, Some(marks)) => self.state.retain_marked(&key, &marks),
            (None, _) => {
                let present: HashSet<Cow<'_, str>> = listing.keys().collect();
                self.state.retain(&key, |id| present.contains(id));
            }
        }
        let known = split_known(&mut listing, self.state, &key, uidvalidity, self.delete);
        // Summaries (sizes) of the new messages only.
        let mut new: Vec<MessageSummary> = Vec::new();
        while let Some(batch) = cancel
            .until(incoming.list_next(&mut listing, crate::ListDetail::Sizes))
            .await
            .ok_or(StopReason::Cancelled)?
            .map_err(StopReason::Session)?
        {
            new.extend(batch);
        }
        fault::pause("after_list").await;

        let mut to_delete: Vec<MessageId> = Vec::new();
        if self.delete {
            // Stored by an earlier sync that did not get as far as deleting them.
            to_delete.extend(known);
        }
        (self.on_event)(Event::Listed {
            messages: new.len() as u64,
            bytes: new.iter().map(|m| m.size.unwrap_or(0)).sum(),
        });
        let mut saver = Saver {
            key: &key,
            uidvalidity,
            store: &mut *self.store,
            state: &mut *self.state,
            report,
            on_event: &mut self.on_event,
            to_delete: &mut to_delete,
            delete: self.delete,
        };
        // Which new messages the store has already (a sync stopped between a commit and its
        // record): recorded, not fetched again.
        let ids: Vec<String> = new.iter().map(|m| saver.full_id(m)).collect();
        let mut stored = Vec::with_capacity(new.len());
        for id in &ids {
            stored.push(saver.is_stored(id)?);
        }
        // POP3: one `RETR` for each new message not found stored, all sent ahead through one
        // window (with PIPELINING), so the window never drains while a batch is committed:
        // the server goes on sending the next batch's messages meanwhile.
        let mut fetching = None;
        if let Incoming::Pop3 { .. } = incoming {
            let ids: Vec<&MessageId> = new
                .iter()
                .zip(&stored)
                .filter(|(_, stored)| !**stored)
                .map(|(m, _)| &m.id)
                .collect();
            let started = cancel
                .until(incoming.fetch_start(&ids))
                .await
                .ok_or(StopReason::Cancelled)?
                .map_err(StopReason::Session)?;
            fetching = Some(started);
        }
        // Each batch is downloaded while the one before is committed and recorded: the
        // commit's syncs run on the blocking pool as the next messages come in. A message is
        // still recorded only after its own group's commit, and nothing is deleted before the
        // whole run is stored.
        //
        // The first batch is small, so the first messages are stored (and progress told) soon
        // after the listing; each next batch is twice as big, up to [`FETCH_BATCH`].
        let cap = FETCH_BATCH.min(saver.store.open_limit()).max(1);
        let mut batch_max = FIRST_BATCH.min(cap);
        let mut pending: Option<Downloaded<'_, S::Message>> = None;
        let mut done = 0;
        let mut second = false;
        loop {
            let next = (done < new.len()).then(|| {
                let rest = &new[done..];
                (
                    &rest[..batch_len(rest, batch_max)],
                    &ids[done..],
                    &stored[done..],
                )
            });
            let mut sinks = match next {
                // Two batches are open at once: the slots of every other batch come after
                // the first batch's.
                Some((batch, ids, stored)) => {
                    let first_slot = if second { cap } else { 0 };
                    match saver
                        .open_batch(first_slot, &ids[..batch.len()], stored)
                        .await
                    {
                        Ok(sinks) => sinks,
                        Err(stop) => {
                            if let Some((batch, got)) = pending.take() {
                                saver.settle(cancel, batch, got).await?;
                            }
                            return Err(stop);
                        }
                    }
                }
                None => Vec::new(),
            };
            let (settled, downloaded) = tokio::join!(
                async {
                    match pending.take() {
                        Some((batch, got)) => saver.settle(cancel, batch, got).await,
                        None => Ok(()),
                    }
                },
                async {
                    let (batch, _, _) = next?;
                    Some(download(incoming, cancel, batch, &mut sinks, fetching.as_mut()).await)
                },
            );
            if let Err(stop) = settled {
                saver.abort_all(sinks.into_iter().flatten()).await;
                return Err(stop);
            }
            let (Some((batch, _, _)), Some((outcomes, failure))) = (next, downloaded) else {
                break;
            };
            let got = sinks
                .into_iter()
                .zip(outcomes)
                .map(|(sink, outcome)| match (outcome, sink) {
                    (Outcome::Fetched(result), Some(sink)) => Got::Fetched(sink, result),
                    (Outcome::Stored, _) => Got::Stored,
                    (_, sink) => Got::Skipped(sink),
                })
                .collect();
            if let Some(stop) = failure {
                // The messages before the failure are settled, then the sync stops.
                saver.settle(cancel, batch, got).await?;
                return Err(stop);
            }
            pending = Some((batch, got));
            done += batch.len();
            second = !second;
            batch_max = (batch_max * 2).min(cap);
        }
        Ok(to_delete)
    }

    /// The key of the record for the source (see [`FetchState::resolve`]).
    fn resolve_record(
        &mut self,
        uidvalidity: Option<u32>,
        listing: &Listing,
    ) -> Result<String, StopReason> {
        let ids = std::cell::OnceCell::new();
        let listed_id = |id: &str| {
            ids.get_or_init(|| listing.keys().collect::<HashSet<_>>())
                .contains(id)
        };
        let identity = match uidvalidity {
            Some(v) => Identity::Imap(v),
            None => Identity::Pop3(&listed_id),
        };
        let resolved = self
            .state
            .resolve(&self.source, &identity)
            .map_err(StopReason::Store)?;
        if matches!(
            resolved,
            Resolved::Adopted { .. } | Resolved::Unrelated { .. }
        ) {
            (self.on_event)(Event::Resolved {
                resolved: &resolved,
                uidvalidity,
            });
        }
        Ok(resolved.key().to_owned())
    }
}

/// The cancellation future, polled at each await point of the sync; once it has completed,
/// every later wait ends at once. Shared (`&self`) so that a batch's commit and the next
/// batch's download, run side by side, both stop on it.
struct Cancel<'f, F> {
    /// Borrowed only inside a poll, never across an await.
    future: std::cell::RefCell<Pin<&'f mut F>>,
    done: std::cell::Cell<bool>,
}

impl<'f, F: Future<Output = ()>> Cancel<'f, F> {
    fn new(future: Pin<&'f mut F>) -> Self {
        Self {
            future: std::cell::RefCell::new(future),
            done: std::cell::Cell::new(false),
        }
    }

    /// Ready once the cancellation future has completed (it is never polled after that).
    fn poll_cancelled(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.done.get() {
            return std::task::Poll::Ready(());
        }
        let ready = self.future.borrow_mut().as_mut().poll(cx).is_ready();
        if ready {
            self.done.set(true);
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    }

    /// Waits for the cancellation.
    async fn wait(&self) {
        std::future::poll_fn(|cx| self.poll_cancelled(cx)).await;
    }

    /// Runs `work` unless the cancellation comes first (`None` then: `work` is dropped).
    async fn until<W: Future>(&self, work: W) -> Option<W::Output> {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            if self.poll_cancelled(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
            work.as_mut().poll(cx).map(Some)
        })
        .await
    }
}

/// Saves the state at the end of a sync (fault `fail_save_state`: fails as a full disk would).
fn save_state(state: &mut FetchState) -> io::Result<()> {
    if fault::reached("fail_save_state") {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "No space left on device (MAILCAT_FAULT=fail_save_state)",
        ));
    }
    state.save()
}

/// Leaves in `listing` only the messages not fetched before, and returns the ids of those that
/// were (when `want_known`: to delete them). IMAP: two range lists subtracted, never a look at
/// each message, so a million messages with nothing new cost microseconds.
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
fn no_stable_ids<T>(incoming: &Incoming<T>, why: &str) -> StopReason
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let endpoint = incoming.endpoint();
    StopReason::Session(Error::Protocol {
        host: endpoint.host.clone(),
        protocol: endpoint.protocol,
        detail: format!(
            "{why}, so new mail cannot be told from mail fetched before; nothing was fetched or deleted (`mailcat list` and `cat` still work)"
        ),
    })
}

/// A session that answered fewer messages than were asked for (a bug, not the server's).
fn missing_result<T>(incoming: &Incoming<T>) -> StopReason
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    StopReason::Session(Error::Protocol {
        host: incoming.endpoint().host.clone(),
        protocol: incoming.endpoint().protocol,
        detail: "fewer messages came back than were asked for; nothing more was stored".into(),
    })
}

/// How many of `messages` (at least one) the next batch takes: `max` messages, or fewer when
/// their listed sizes add up to more than [`FETCH_BATCH_BYTES`].
fn batch_len(messages: &[MessageSummary], max: usize) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for message in messages.iter().take(max) {
        bytes += message.size.unwrap_or(0);
        if n > 0 && bytes > FETCH_BATCH_BYTES {
            break;
        }
        n += 1;
    }
    n
}

/// A failure inside a fetch: local I/O (the sink) is the store's, the rest the session's.
fn session_or_store(error: Error) -> StopReason {
    match error {
        Error::Io(e) => StopReason::Store(e),
        e => StopReason::Session(e),
    }
}

/// Deletes the stored messages `ids` on the server, in batches of [`DELETE_BATCH`]. Called
/// only after every message of the sync is stored and the state saved.
async fn delete_stored<T: AsyncRead + AsyncWrite + Unpin>(
    incoming: &mut Incoming<T>,
    ids: &[MessageId],
    report: &mut SyncReport,
    cancel: &Cancel<'_, impl Future<Output = ()>>,
) -> Result<(), StopReason> {
    for batch in ids.chunks(DELETE_BATCH) {
        cancel
            .until(incoming.delete(batch))
            .await
            .ok_or(StopReason::Cancelled)?
            .map_err(StopReason::Session)?;
        report.deleted += batch.len() as u64;
    }
    Ok(())
}

/// What became of one message of a batch.
enum Got<M> {
    /// Already in the store (a sync killed after the commit, before the record).
    Stored,
    /// Downloaded (or not) into this message of the store.
    Fetched(M, Result<u64, Error>),
    /// Not downloaded: an earlier message of the batch failed (its message of the store, if
    /// one was opened, is given up on).
    Skipped(Option<M>),
}

/// What the download of one message of a batch gave.
enum Outcome {
    /// Already in the store: not asked for.
    Stored,
    /// Its length, or why that message alone could not be had.
    Fetched(Result<u64, Error>),
    /// Not read: the batch failed before it.
    Skipped,
}

/// Downloads `batch` into `sinks` (`None` for a message stored already): IMAP with a window
/// of `UID FETCH` commands, POP3 from `fetching` (the `RETR`s of the whole sync, sent ahead).
/// Touches neither the store nor the state, so it runs while the batch before is committed.
/// A failure that ends the batch comes with it: the messages before it are still settled.
async fn download<T, M>(
    incoming: &mut Incoming<T>,
    cancel: &Cancel<'_, impl Future<Output = ()>>,
    batch: &[MessageSummary],
    sinks: &mut [Option<M>],
    fetching: Option<&mut crate::Fetching>,
) -> (Vec<Outcome>, Option<StopReason>)
where
    T: AsyncRead + AsyncWrite + Unpin,
    M: AsyncWrite + Unpin,
{
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.len());
    let Some(fetching) = fetching else {
        let mut requests: Vec<(&MessageId, &mut M)> = batch
            .iter()
            .zip(sinks.iter_mut())
            .filter_map(|(m, sink)| Some((&m.id, sink.as_mut()?)))
            .collect();
        let mut results = match cancel.until(incoming.fetch_many(&mut requests)).await {
            Some(Ok(results)) => results.into_iter(),
            // The connection failed: no message of the batch can be trusted whole.
            failed => {
                let stop = match failed {
                    Some(Err(e)) => session_or_store(e),
                    _ => StopReason::Cancelled,
                };
                outcomes.resize_with(batch.len(), || Outcome::Skipped);
                return (outcomes, Some(stop));
            }
        };
        for sink in sinks.iter() {
            outcomes.push(match sink {
                None => Outcome::Stored,
                Some(_) => match results.next() {
                    Some(result) => Outcome::Fetched(result),
                    None => {
                        outcomes.clear();
                        outcomes.resize_with(batch.len(), || Outcome::Skipped);
                        return (outcomes, Some(missing_result(incoming)));
                    }
                },
            });
        }
        return (outcomes, None);
    };
    for sink in sinks.iter_mut() {
        let Some(sink) = sink else {
            outcomes.push(Outcome::Stored);
            continue;
        };
        match cancel.until(incoming.fetch_next(fetching, sink)).await {
            Some(Ok(Some(result))) => outcomes.push(Outcome::Fetched(result)),
            failed => {
                let stop = match failed {
                    Some(Ok(None)) => missing_result(incoming),
                    Some(Err(e)) => session_or_store(e),
                    _ => StopReason::Cancelled,
                };
                outcomes.resize_with(batch.len(), || Outcome::Skipped);
                return (outcomes, Some(stop));
            }
        }
    }
    (outcomes, None)
}

/// A batch downloaded and not yet settled: its messages, and what became of each.
type Downloaded<'m, M> = (&'m [MessageSummary], Vec<Got<M>>);

/// A group to commit, in list order: each message, with its download and bytes (`None`: found
/// stored already).
type Group<'m, M> = Vec<(&'m MessageSummary, Option<(M, u64)>)>;

/// Stores and records downloaded messages, in list order.
struct Saver<'s, 'a, S> {
    key: &'s str,
    uidvalidity: Option<u32>,
    store: &'s mut S,
    state: &'s mut FetchState,
    report: &'s mut SyncReport,
    on_event: &'s mut Box<dyn FnMut(Event<'_>) + 'a>,
    to_delete: &'s mut Vec<MessageId>,
    delete: bool,
}

impl<S: Store> Saver<'_, '_, S> {
    /// The id under which the state and the store know `message`.
    fn full_id(&self, message: &MessageSummary) -> String {
        let id = message.id.key();
        match self.uidvalidity {
            Some(v) => format!("{}/{v}/{id}", self.key),
            None => format!("{}/{id}", self.key),
        }
    }

    /// Whether the store has the message `id` already (a sync stopped between its commit and
    /// its record): then it is recorded, not fetched again.
    fn is_stored(&mut self, id: &str) -> Result<bool, StopReason> {
        self.store.contains(id).map_err(StopReason::Store)
    }

    /// Gives up on every message still open: nothing half-done stays.
    async fn abort_all(&mut self, sinks: impl IntoIterator<Item = S::Message>) {
        for sink in sinks {
            self.store.abort(sink).await;
        }
    }

    /// A message of the store for each of the messages `ids` (`None` for one `stored`
    /// already), in slots from `first_slot`. On an error, those opened are given up on.
    async fn open_batch(
        &mut self,
        first_slot: usize,
        ids: &[String],
        stored: &[bool],
    ) -> Result<Vec<Option<S::Message>>, StopReason> {
        let mut sinks = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if stored[i] {
                sinks.push(None);
                continue;
            }
            match self.store.begin(first_slot + i, id).await {
                Ok(sink) => sinks.push(Some(sink)),
                Err(e) => {
                    self.abort_all(sinks.into_iter().flatten()).await;
                    return Err(StopReason::Store(e));
                }
            }
        }
        Ok(sinks)
    }

    /// A batch, in list order, in groups of [`COMMIT_GROUP`] (or [`Store::group_limit`]):
    /// each group committed with one commit (found stored, or gone: nothing to commit), then
    /// recorded with one sync of the state's log, then queued for deletion. Only a committed
    /// or found message is recorded or deleted.
    ///
    /// A failed download ends the batch: the messages from it on are given up on first (a big
    /// message's scratch file frees its space, which matters on a full disk), then the ones
    /// before it are committed.
    async fn settle(
        &mut self,
        cancel: &Cancel<'_, impl Future<Output = ()>>,
        batch: &[MessageSummary],
        mut got: Vec<Got<S::Message>>,
    ) -> Result<(), StopReason> {
        let end = got
            .iter()
            .position(|one| match one {
                Got::Stored => false,
                Got::Fetched(_, result) => {
                    !matches!(result, Ok(_) | Err(Error::MessageGone { .. }))
                }
                Got::Skipped(_) => true,
            })
            .unwrap_or(got.len());
        let mut failure = None;
        let mut given_up = Vec::new();
        for one in got.split_off(end) {
            match one {
                Got::Fetched(sink, result) => {
                    if let (None, Err(e)) = (&failure, result) {
                        failure = Some(session_or_store(e));
                    }
                    given_up.push(sink);
                }
                Got::Skipped(Some(sink)) => given_up.push(sink),
                Got::Stored | Got::Skipped(None) => {}
            }
        }
        self.abort_all(given_up).await;

        let limit = self.store.group_limit().clamp(1, COMMIT_GROUP);
        // (message, its bytes) of the group to commit, with the messages in that group found
        // stored (to tell in list order after the commit).
        let mut group: Group<'_, S::Message> = Vec::new();
        let mut got = batch.iter().zip(got);
        while let Some((message, one)) = got.next() {
            match one {
                Got::Stored => group.push((message, None)),
                Got::Fetched(sink, Ok(bytes)) => {
                    let to_commit = group.iter().filter(|(_, m)| m.is_some()).count();
                    if to_commit == limit {
                        if let Err(stop) = self.commit_group(cancel, &mut group).await {
                            let rest = got.filter_map(|(_, one)| match one {
                                Got::Fetched(sink, _) | Got::Skipped(Some(sink)) => Some(sink),
                                Got::Stored | Got::Skipped(None) => None,
                            });
                            let rest: Vec<_> = std::iter::once(sink).chain(rest).collect();
                            self.abort_group(group, rest).await;
                            return Err(stop);
                        }
                    }
                    group.push((message, Some((sink, bytes))));
                }
                // Deleted on the server by another client meanwhile (the only failure left
                // before `end`): skipped.
                Got::Fetched(sink, Err(_)) => {
                    self.store.abort(sink).await;
                    self.report.gone += 1;
                    (self.on_event)(Event::Done {
                        size: message.size.unwrap_or(0),
                    });
                }
                Got::Skipped(sink) => self.abort_all(sink).await,
            }
        }
        if let Err(stop) = self.commit_group(cancel, &mut group).await {
            self.abort_group(group, Vec::new()).await;
            return Err(stop);
        }
        match failure {
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }

    /// Gives up on what is left of `group` after a failed commit (the commit took the
    /// messages it was given), and on `rest`.
    async fn abort_group(&mut self, group: Group<'_, S::Message>, rest: Vec<S::Message>) {
        let left = group
            .into_iter()
            .filter_map(|(_, m)| m.map(|(sink, _)| sink));
        let all: Vec<_> = left.chain(rest).collect();
        self.abort_all(all).await;
    }

    /// Commits and records `group` (emptied): the fault points `after_retr` (each message to
    /// commit) and `after_rename_before_state` (each, after the commit) on the way.
    async fn commit_group(
        &mut self,
        cancel: &Cancel<'_, impl Future<Output = ()>>,
        group: &mut Group<'_, S::Message>,
    ) -> Result<(), StopReason> {
        if group.is_empty() {
            return Ok(());
        }
        for (_, fetched) in group.iter() {
            if fetched.is_some() {
                fault::abort_at("after_retr");
                if fault::reached("stall_after_retr") {
                    // Said, for a test to know the downloads wait here (held in memory: a
                    // small message has no file before its commit).
                    eprintln!("mailcat fetch: stalled at after_retr (test hook)");
                    cancel.wait().await;
                    return Err(StopReason::Cancelled);
                }
            }
        }
        let members = std::mem::take(group);
        let mut sinks = Vec::new();
        let mut order = Vec::with_capacity(members.len());
        for (message, fetched) in members {
            match fetched {
                Some((sink, bytes)) => {
                    sinks.push(sink);
                    order.push((message, Some(bytes)));
                }
                None => order.push((message, None)),
            }
        }
        let committed = if sinks.is_empty() {
            Vec::new()
        } else {
            cancel
                .until(self.store.commit(sinks))
                .await
                .ok_or(StopReason::Cancelled)?
                .map_err(StopReason::Store)?
        };
        let mut committed = committed.into_iter();
        let mut placed = Vec::with_capacity(order.len());
        for (message, bytes) in order {
            match bytes {
                Some(bytes) => {
                    let Some(c) = committed.next() else {
                        return Err(StopReason::Store(io::Error::other(
                            "the store committed fewer messages than it was given",
                        )));
                    };
                    fault::abort_at("after_rename_before_state");
                    placed.push((message, Some((bytes, c))));
                }
                None => placed.push((message, None)),
            }
        }
        let ids: Vec<(String, Option<u64>)> = placed
            .iter()
            .map(|(m, c)| (m.id.key(), c.as_ref().and_then(|(_, c)| c.store_len)))
            .collect();
        self.state
            .record_many(
                self.key,
                self.uidvalidity,
                ids.iter().map(|(id, len)| (id.as_str(), *len)),
            )
            .map_err(StopReason::Store)?;
        for (message, stored) in placed {
            match stored {
                None => self.report.recovered += 1,
                Some((bytes, committed)) => {
                    self.report.stored += 1;
                    self.report.bytes += bytes;
                    // Stored as received all the same (threat model #53): the download ended
                    // at the protocol's end marker, and some servers list estimates, not sizes.
                    if message.size.is_some_and(|listed| listed != bytes) {
                        self.report.resized += 1;
                    }
                    (self.on_event)(Event::Stored {
                        id: &message.id,
                        bytes,
                        place: &committed.place,
                    });
                }
            }
            (self.on_event)(Event::Done {
                size: message.size.unwrap_or(0),
            });
            if self.delete {
                self.to_delete.push(message.id.clone());
            }
        }
        Ok(())
    }
}
