//! `mailcat_session::sync` against the lab's Dovecot: IMAP (carol) and POP3 (bob) into a
//! Maildir, each message stored once, nothing the second time, deletion only of what is stored,
//! cancellation, group commit (one commit per batch), a store that commits one message at a
//! time, and a store that fails mid-run.
//!
//! Needs the lab (`eval "$(tests/lab/lab.sh env)"`); fails, never skips, without it. Shares
//! bob's and carol's mailboxes with crates/mailcat/tests/it/fetch_lab.rs: run one at a time.
#![allow(clippy::unwrap_used)]

use mailcat_session::ListDetail;
use std::io;
use std::path::{Path, PathBuf};

use mailcat_session::store::{FetchState, Source};
use mailcat_session::sync::{Committed, Event, MaildirStore, StopReason, Store, Sync, SyncReport};
use mailcat_session::{Account, Credential, Incoming};
use mailcat_tests::lab::{lock_mailboxes, Lab, MailboxLock};
use mailcat_transport::{Endpoint, Protocol, Security, TlsSettings};

/// The tests share bob's and carol's mailboxes, with each other and with imap_lab and pop3_lab:
/// one at a time.
async fn mailboxes() -> MailboxLock {
    lock_mailboxes(&[&var("MAILCAT_LAB_USER2"), &var("MAILCAT_LAB_USER3")]).await
}

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: eval \"$(tests/lab/lab.sh env)\""))
}

/// carol over IMAPS, or bob over POP3S.
fn account(lab: &Lab, pop3: bool) -> (Account, String) {
    let (user, password, endpoint) = if pop3 {
        (
            var("MAILCAT_LAB_USER2"),
            var("MAILCAT_LAB_PASSWORD2"),
            Endpoint::new(Protocol::Pop3, &lab.tls_name, Security::ImplicitTls)
                .with_port(lab.pop3s_port),
        )
    } else {
        (
            var("MAILCAT_LAB_USER3"),
            var("MAILCAT_LAB_PASSWORD3"),
            Endpoint::new(Protocol::Imap, &lab.tls_name, Security::ImplicitTls)
                .with_port(lab.imaps_port),
        )
    };
    let outgoing = Endpoint::new(Protocol::Smtp, &lab.tls_name, Security::StartTls)
        .with_port(lab.submission_port);
    let mut account = Account::new(
        &user,
        Credential::password(&user, password.as_str()),
        endpoint,
        outgoing,
    );
    account.tls = TlsSettings::only_ca_file(&lab.ca_file);
    (account, user)
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mailcat-sync-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

async fn on_server(account: &Account) -> usize {
    let mut incoming = account.receive().await.unwrap();
    let n = incoming.list(None, ListDetail::Sizes).await.unwrap().len();
    incoming.close().await.unwrap();
    n
}

/// One sync of `account` into the Maildir `dir` (`delete`: delete what is stored).
async fn sync_into<S: Store>(
    account: &Account,
    user: &str,
    store: &mut S,
    dir: &Path,
    delete: bool,
) -> Result<SyncReport, mailcat_session::sync::Stopped> {
    let mut state = FetchState::load(dir.join(".mailcat-state.json")).unwrap();
    let incoming = account.receive().await.unwrap();
    let source = Source {
        login: user,
        host: &account.incoming.as_ref().expect("an incoming server").host,
        mailbox: match incoming {
            Incoming::Imap { .. } => Some("INBOX"),
            Incoming::Pop3 { .. } => None,
        },
    };
    let sync = Sync::new(store, &mut state, source);
    let sync = if delete { sync.delete_stored() } else { sync };
    sync.run(incoming, std::future::pending()).await
}

#[tokio::test]
async fn every_message_is_stored_once_then_nothing_and_deleted_only_once_stored() {
    let _guard = mailboxes().await;
    let lab = Lab::from_env();
    for pop3 in [false, true] {
        let (account, user) = account(&lab, pop3);
        lab.seed(&user, 5, 3000, true, false, 1);
        let dir = fresh(if pop3 { "once-pop3" } else { "once-imap" });
        let maildir = dir.join("Mail");
        let mut store = MaildirStore::open(&maildir).unwrap();

        let report = sync_into(&account, &user, &mut store, &maildir, false)
            .await
            .unwrap();
        assert_eq!((report.stored, report.deleted), (5, 0), "{report:?}");
        assert!(report.bytes >= 5 * 3000, "{report:?}");
        assert_eq!(count(&maildir.join("new")), 5);
        assert_eq!(count(&maildir.join("tmp")), 0);

        let report = sync_into(&account, &user, &mut store, &maildir, true)
            .await
            .unwrap();
        assert_eq!(report.stored, 0, "nothing new the second time: {report:?}");
        assert_eq!(report.deleted, 5, "what is stored is deleted: {report:?}");
        assert_eq!(count(&maildir.join("new")), 5);
        assert_eq!(on_server(&account).await, 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A Maildir that counts its commits, or fails the `fail_at`-th: what an application's own
/// store looks like.
struct Counting {
    inner: MaildirStore,
    commits: usize,
    fail_at: Option<usize>,
    /// [`Store::group_limit`]: 1 for a store that must commit each message alone.
    group_limit: usize,
}

impl Counting {
    /// A fresh count over the Maildir at `dir`.
    fn open(dir: &Path, fail_at: Option<usize>, group_limit: usize) -> Self {
        Self {
            inner: MaildirStore::open(dir).unwrap(),
            commits: 0,
            fail_at,
            group_limit,
        }
    }
}

impl Store for Counting {
    type Message = <MaildirStore as Store>::Message;

    fn contains(&mut self, id: &str) -> io::Result<bool> {
        self.inner.contains(id)
    }

    async fn begin(&mut self, slot: usize, id: &str) -> io::Result<Self::Message> {
        self.inner.begin(slot, id).await
    }

    async fn abort(&mut self, message: Self::Message) {
        self.inner.abort(message).await;
    }

    fn group_limit(&self) -> usize {
        self.group_limit
    }

    async fn commit(&mut self, messages: Vec<Self::Message>) -> io::Result<Vec<Committed>> {
        assert!(
            messages.len() <= self.group_limit,
            "a group over the store's limit"
        );
        self.commits += 1;
        if self.fail_at == Some(self.commits) {
            for message in messages {
                self.inner.abort(message).await;
            }
            return Err(io::Error::new(io::ErrorKind::StorageFull, "full (test)"));
        }
        self.inner.commit(messages).await
    }
}

/// A store that must commit each message alone (an application's database without
/// transactions over several rows, say) gets one commit per message, each recorded before the
/// next: a failed commit keeps the ones before it, and nothing is deleted in that run.
#[tokio::test]
async fn a_store_that_commits_one_message_at_a_time_gets_one_commit_each() {
    let _guard = mailboxes().await;
    let lab = Lab::from_env();
    for pop3 in [false, true] {
        let (account, user) = account(&lab, pop3);
        lab.seed(&user, 6, 1000, true, false, 1);
        let dir = fresh(if pop3 { "alone-pop3" } else { "alone-imap" });
        let maildir = dir.join("Mail");
        let mut store = Counting::open(&maildir, Some(3), 1);
        let stopped = sync_into(&account, &user, &mut store, &maildir, true)
            .await
            .unwrap_err();
        assert!(matches!(stopped.reason, StopReason::Store(_)), "{stopped}");
        assert_eq!(stopped.report.stored, 2, "{stopped:?}");
        assert_eq!(stopped.report.deleted, 0, "{stopped:?}");
        assert_eq!(count(&maildir.join("new")), 2);
        assert_eq!(count(&maildir.join("tmp")), 0);
        assert_eq!(on_server(&account).await, 6, "nothing deleted");

        let mut store = Counting::open(&maildir, None, 1);
        let report = sync_into(&account, &user, &mut store, &maildir, true)
            .await
            .unwrap();
        assert_eq!(store.commits, 4, "one commit for each of the 4 left");
        assert_eq!((report.stored, report.deleted), (4, 6), "{report:?}");
        assert_eq!(count(&maildir.join("new")), 6);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn a_batch_is_committed_and_recorded_as_one_group_and_a_failed_commit_deletes_nothing() {
    let _guard = mailboxes().await;
    let lab = Lab::from_env();
    for pop3 in [false, true] {
        let (account, user) = account(&lab, pop3);
        // 20 messages: a batch of 16, then 4.
        lab.seed(&user, 20, 1000, true, false, 1);
        let dir = fresh(if pop3 { "group-pop3" } else { "group-imap" });
        let maildir = dir.join("Mail");

        // The second commit fails: the first batch stays stored and recorded, nothing is
        // deleted, the second batch leaves nothing behind.
        let mut store = Counting::open(&maildir, Some(2), usize::MAX);
        let stopped = sync_into(&account, &user, &mut store, &maildir, true)
            .await
            .unwrap_err();
        assert!(matches!(stopped.reason, StopReason::Store(_)), "{stopped}");
        assert_eq!(stopped.report.stored, 16, "{stopped:?}");
        assert_eq!(stopped.report.deleted, 0, "{stopped:?}");
        assert_eq!(count(&maildir.join("new")), 16);
        assert_eq!(count(&maildir.join("tmp")), 0);
        assert_eq!(on_server(&account).await, 20, "nothing deleted");

        // One commit per batch; the first batch was recorded (not fetched again).
        let mut store = Counting::open(&maildir, None, usize::MAX);
        let report = sync_into(&account, &user, &mut store, &maildir, true)
            .await
            .unwrap();
        assert_eq!(store.commits, 1, "the last 4 in one commit");
        assert_eq!((report.stored, report.recovered), (4, 0), "{report:?}");
        assert_eq!(report.deleted, 20);
        assert_eq!(count(&maildir.join("new")), 20);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn a_cancelled_sync_reports_what_it_stored_and_leaves_no_partial_file() {
    let _guard = mailboxes().await;
    let lab = Lab::from_env();
    for pop3 in [false, true] {
        let (account, user) = account(&lab, pop3);
        lab.seed(&user, 20, 1000, true, false, 1);
        let dir = fresh(if pop3 { "cancel-pop3" } else { "cancel-imap" });
        let maildir = dir.join("Mail");
        let mut store = MaildirStore::open(&maildir).unwrap();
        let mut state = FetchState::load(maildir.join(".mailcat-state.json")).unwrap();
        let incoming = account.receive().await.unwrap();
        let source = Source {
            login: &user,
            host: &account.incoming.as_ref().expect("an incoming server").host,
            mailbox: (!pop3).then_some("INBOX"),
        };
        // Cancelled as soon as the first message is stored (the first batch's group).
        let cancel = tokio::sync::Notify::new();
        let mut progress = (0, 0);
        let stopped = Sync::new(&mut store, &mut state, source)
            .delete_stored()
            .on_event(|event| match event {
                Event::Listed { messages, .. } => progress.0 = messages,
                Event::Stored { .. } => cancel.notify_one(),
                Event::Done { .. } => progress.1 += 1,
                _ => {}
            })
            .run(incoming, cancel.notified())
            .await
            .unwrap_err();
        assert!(matches!(stopped.reason, StopReason::Cancelled), "{stopped}");
        assert_eq!(progress, (20, 16));
        assert_eq!(stopped.report.stored, 16, "{stopped:?}");
        assert_eq!(stopped.report.deleted, 0);
        assert_eq!(count(&maildir.join("new")), 16);
        assert_eq!(count(&maildir.join("tmp")), 0, "no partial file");
        assert_eq!(on_server(&account).await, 20, "nothing deleted");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
