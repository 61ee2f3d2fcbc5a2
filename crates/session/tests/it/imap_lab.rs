//! ImapSession against the lab's Dovecot, as carol: IMAPS and IMAP+STARTTLS logins, LIST with
//! special-use folders, a seeded INBOX searched, summarised in one FETCH, a message fetched
//! byte for byte against its Maildir file, STORE, MOVE, and IDLE seeing an LMTP delivery; a
//! big INBOX with every other message deleted, whose ESEARCH answer is read in pieces; the
//! mailbox operations (APPEND, STATUS, COPY, MOVE, STORE, RENAME, DELETE) on mailboxes of
//! their own.
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.
#![allow(clippy::unwrap_used)]

use mailcat_session::Plaintext;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use mailcat_codec::imap::command::{Mailbox, SearchKey, StoreMode};
use mailcat_codec::imap::{Flag, NameAttribute, SequenceSet, UidSet};
use mailcat_session::imap::{connect, AppendUid, SummaryRequest, Unsolicited};
use mailcat_session::{Credential, ImapSession};
use mailcat_tests::lab::{lock_mailboxes, Lab, MailboxLock};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use tokio::net::TcpStream;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the lab (tests/lab/lab.sh up; eval \"$(tests/lab/lab.sh env)\")")
    })
}

/// Held by each test that reseeds carol's INBOX, so two never run at once.
static CAROL_INBOX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn carol() -> Credential {
    Credential::password(var("MAILCAT_LAB_USER3"), var("MAILCAT_LAB_PASSWORD3"))
}

/// The tests share carol's mailbox, with each other and with sync_lab: one at a time.
async fn turn() -> MailboxLock {
    lock_mailboxes(&[&var("MAILCAT_LAB_USER3")]).await
}

fn lab_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/lab.sh")
}

fn seed(args: &[&str]) {
    let out = Process::new(lab_sh())
        .arg("seed")
        .args(["--user", "carol@example.test"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lab.sh seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn open(lab: &Lab, security: Security) -> ImapSession<TcpStream> {
    let (host, port) = match security {
        Security::ImplicitTls => (&lab.host, lab.imaps_port),
        _ => (&lab.strict_host, lab.imap_port),
    };
    let endpoint = Endpoint::new(Protocol::Imap, host.clone(), security).with_port(port);
    let tls = TlsSettings::only_ca_file(&lab.ca_file);
    let mut session = connect(&endpoint, &tls, &Timeouts::uniform(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(session.is_tls());
    session.login(&carol(), Plaintext::Refuse).await.unwrap();
    session
}

/// Every file of carol's Maildir folder `folder` ("" for INBOX), as served: LF → CRLF.
fn maildir_messages(folder: &str) -> Vec<Vec<u8>> {
    let root = Path::new(&var("MAILCAT_LAB_DIR")).join("mail/example.test/carol/Maildir");
    let dir = if folder.is_empty() {
        root
    } else {
        root.join(format!(".{folder}"))
    };
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let mut crlf = Vec::with_capacity(bytes.len() + 100);
            for &b in &bytes {
                if b == b'\n' && crlf.last() != Some(&b'\r') {
                    crlf.push(b'\r');
                }
                crlf.push(b);
            }
            out.push(crlf);
        }
    }
    out
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn starttls_login_and_list_show_inbox_and_special_use_folders() {
    let _turn = turn().await;
    let lab = Lab::from_env();
    let mut s = open(&lab, Security::StartTls).await;
    let list = s.list().await.unwrap();
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert!(names.contains(&"INBOX"), "{names:?}");
    for (name, attribute) in [
        ("Archive", NameAttribute::Archive),
        ("Sent", NameAttribute::Sent),
        ("Junk", NameAttribute::Junk),
        ("Drafts", NameAttribute::Drafts),
    ] {
        let m = list
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} in {names:?}"));
        assert_eq!(m.special_use(), Some(&attribute), "{name}");
    }
    s.logout().await.unwrap();
}

#[tokio::test]
async fn imaps_seeded_inbox_search_summaries_fetch_store_move_idle() {
    let _turn = turn().await;
    let _inbox = CAROL_INBOX.lock().await;
    let lab = Lab::from_env();
    seed(&["--count", "50", "--size", "4096", "--reset"]);
    let mut s = open(&lab, Security::ImplicitTls).await;
    assert!(s.has_capability("IDLE"));

    let state = s.select(&Mailbox::inbox()).await.unwrap();
    assert_eq!(state.exists, 50);
    assert!(state.uid_validity.is_some() && !state.read_only);

    let uids = s.uid_search(&SearchKey::All).await.unwrap();
    assert_eq!(uids.len(), 50);

    let t = Instant::now();
    let all = SequenceSet::from_numbers(uids.iter().copied()).unwrap();
    let request = SummaryRequest {
        envelope: true,
        header_fields: vec!["Subject".into(), "Message-ID".into()],
    };
    let summaries = s.fetch_summaries(&all, &request).await.unwrap();
    let summaries_time = t.elapsed();
    assert_eq!(summaries.len(), 50);
    assert!(summaries.iter().all(|m| m.size == Some(4096)));
    assert!(summaries.iter().all(|m| m.envelope.is_some()));

    // One whole message, byte for byte against its Maildir file.
    let on_disk: Vec<Vec<u8>> = maildir_messages("").iter().map(|m| digest(m)).collect();
    let mut body = Vec::new();
    let t = Instant::now();
    let len = s.fetch_message(uids[0], &mut body).await.unwrap();
    let one_time = t.elapsed();
    assert_eq!(len, Some(4096));
    assert_eq!(body.len(), 4096);
    assert!(
        on_disk.contains(&digest(&body)),
        "the fetched message is not on disk as is"
    );

    // All fifty, pipelined, each to its own sink.
    let mut sinks: Vec<(u32, Vec<u8>)> = uids.iter().map(|&u| (u, Vec::new())).collect();
    let t = Instant::now();
    let lens = s.fetch_messages(&mut sinks).await.unwrap();
    let all_time = t.elapsed();
    assert!(lens.iter().all(|l| *l == Some(4096)));
    for (uid, sink) in &sinks {
        assert!(
            on_disk.contains(&digest(sink)),
            "UID {uid} differs from its file"
        );
    }
    s.set_fetch_window(1);
    let mut one_by_one: Vec<(u32, Vec<u8>)> = uids.iter().map(|&u| (u, Vec::new())).collect();
    let t = Instant::now();
    s.fetch_messages(&mut one_by_one).await.unwrap();
    let lockstep_time = t.elapsed();
    s.set_fetch_window(mailcat_session::imap::DEFAULT_FETCH_WINDOW);
    assert!(one_by_one == sinks);
    eprintln!("lab timings: 50 messages one at a time {lockstep_time:?}; ");
    eprintln!(
        "lab timings: summaries of 50 in one FETCH {summaries_time:?}; one message {one_time:?}; \
         50 messages pipelined {all_time:?}"
    );

    // \Seen was not set by BODY.PEEK; STORE sets it.
    let first = SequenceSet::single(uids[0]).unwrap();
    s.store_flags(&first, StoreMode::Add, &[Flag::Seen])
        .await
        .unwrap();
    let after = s
        .fetch_summaries(&first, &SummaryRequest::default())
        .await
        .unwrap();
    assert!(after[0].flags.contains(&Flag::Seen));
    let second = s
        .fetch_summaries(
            &SequenceSet::single(uids[1]).unwrap(),
            &SummaryRequest::default(),
        )
        .await
        .unwrap();
    assert!(
        !second[0].flags.contains(&Flag::Seen),
        "BODY.PEEK set \\Seen"
    );

    // MOVE to Archive.
    let archive = Mailbox::new("Archive").unwrap();
    s.move_messages(&first, &archive).await.unwrap();
    assert_eq!(s.uid_search(&SearchKey::All).await.unwrap().len(), 49);
    assert!(s
        .take_unsolicited()
        .iter()
        .any(|u| matches!(u, Unsolicited::Expunge(_))));
    let archived = maildir_messages("Archive")
        .iter()
        .map(|m| digest(m))
        .collect::<Vec<_>>();
    assert!(
        archived.contains(&digest(&sinks[0].1)),
        "the message is in Archive"
    );

    // IDLE sees a delivery over LMTP.
    let deliver = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(500));
        seed(&[
            "--via",
            "lmtp",
            "--start-index",
            "1000",
            "--count",
            "1",
            "--size",
            "4096",
        ]);
    });
    let t = Instant::now();
    let events = s.idle(Duration::from_secs(30)).await.unwrap();
    let idle_time = t.elapsed();
    deliver.join().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, Unsolicited::Exists(50))),
        "{events:?}"
    );
    eprintln!("IDLE reported the LMTP delivery after {idle_time:?} (delivery started at 500 ms)");
    s.logout().await.unwrap();
}

#[tokio::test]
async fn esearch_of_a_big_inbox_with_scattered_uids_is_read_in_pieces() {
    let _turn = turn().await;
    let _inbox = CAROL_INBOX.lock().await;
    let lab = Lab::from_env();
    seed(&["--count", "30000", "--size", "100", "--reset"]);
    let mut s = open(&lab, Security::ImplicitTls).await;
    assert!(s.has_capability("ESEARCH"), "{:?}", s.capabilities());
    let state = s.select(&Mailbox::inbox()).await.unwrap();
    assert_eq!(state.exists, 30_000);
    let all = s
        .uid_search_set(&SearchKey::All, state.exists)
        .await
        .unwrap();
    assert_eq!(all.len(), 30_000);
    // Every other message deleted: 15,000 scattered UIDs, an ESEARCH line of ~90 KB.
    let deleted: UidSet = all.iter().step_by(2).collect();
    for chunk in deleted.chunks(2_000) {
        s.store_flags(&chunk, StoreMode::Add, &[Flag::Deleted])
            .await
            .unwrap();
        s.expunge(&chunk).await.unwrap();
    }
    let kept = all.difference(&deleted);
    assert!(
        kept.to_string().len() > 65_536,
        "longer than a line: {}",
        kept.to_string().len()
    );
    let state = s.select(&Mailbox::inbox()).await.unwrap();
    assert_eq!(state.exists, 15_000);
    let t = Instant::now();
    let got = s
        .uid_search_set(&SearchKey::All, state.exists)
        .await
        .unwrap();
    eprintln!(
        "lab timings: ESEARCH of 15,000 scattered UIDs {:?}",
        t.elapsed()
    );
    assert_eq!(got, kept);
    s.logout().await.unwrap();
}

/// A message for APPEND, CRLF line endings, told apart by `n`.
fn appendable(n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: carol@example.test\r\nTo: carol@example.test\r\nSubject: ops {n}\r\n\
         Message-ID: <ops-{n}@example.test>\r\n\r\n"
    )
    .into_bytes();
    m.extend(std::iter::repeat_n(b"line of the body\r\n".as_slice(), 10 + n).flatten());
    m
}

#[tokio::test]
async fn mailbox_operations_append_status_copy_move_flags_rename_delete() {
    let _turn = turn().await;
    // Mailboxes of this run only: carol's INBOX and folders are other tests'.
    let lab = Lab::from_env();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let unique = format!("mailcat-ops-{now}-{}", std::process::id());
    let (a, b, renamed) = (
        Mailbox::new(format!("{unique}-a")).unwrap(),
        Mailbox::new(format!("{unique}-b")).unwrap(),
        Mailbox::new(format!("{unique}-c")).unwrap(),
    );
    let mut s = open(&lab, Security::ImplicitTls).await;
    // What a failed run left, an hour old or more, goes.
    for m in s.list().await.unwrap() {
        let started = m
            .name
            .strip_prefix("mailcat-ops-")
            .and_then(|rest| rest.split('-').next()?.parse::<u64>().ok());
        if started.is_some_and(|t| t + 3600 < now) {
            s.delete(&m.mailbox().unwrap()).await.unwrap();
        }
    }
    assert_eq!(s.sent_mailbox().await.unwrap().unwrap().name, "Sent");
    s.create(&a).await.unwrap();
    s.create(&b).await.unwrap();
    assert!(s.create(&a).await.is_err(), "it exists");

    let messages: Vec<Vec<u8>> = (0..3).map(appendable).collect();
    let date = mailcat_codec::imap::command::DateTime::new(
        mailcat_codec::imap::command::Date::new(2026, 3, 5).unwrap(),
        10,
        0,
        0,
        60,
    )
    .unwrap();
    let mut appended: Vec<AppendUid> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let flags = if i == 0 { vec![Flag::Seen] } else { Vec::new() };
        let date = (i == 0).then_some(&date);
        appended.push(
            s.append(&a, m, &flags, date)
                .await
                .unwrap()
                .expect("APPENDUID"),
        );
    }
    let counts = s.status(&a).await.unwrap();
    assert_eq!((counts.messages, counts.unseen), (3, 2));
    assert_eq!(counts.uid_validity, Some(appended[0].uid_validity));
    assert_eq!(counts.uid_next, Some(appended[2].uid + 1));

    let state = s.select(&a).await.unwrap();
    assert_eq!(state.exists, 3);
    let uids: Vec<u32> = appended.iter().map(|x| x.uid).collect();
    // The bodies, in one range FETCH, byte for byte; the first kept its internal date.
    let mut sinks: Vec<(u32, Vec<u8>)> = uids.iter().rev().map(|&u| (u, Vec::new())).collect();
    let lens = s.fetch_messages(&mut sinks).await.unwrap();
    for (i, (uid, sink)) in sinks.iter().enumerate() {
        let n = uids.iter().position(|u| u == uid).unwrap();
        assert!(*sink == messages[n], "UID {uid} differs");
        assert_eq!(lens[i], Some(messages[n].len() as u64));
    }
    let all = SequenceSet::from_numbers(uids.iter().copied()).unwrap();
    let summaries = s
        .fetch_summaries(&all, &SummaryRequest::default())
        .await
        .unwrap();
    let first = summaries.iter().find(|x| x.uid == uids[0]).unwrap();
    // The same instant (Dovecot gives it in UTC).
    assert_eq!(
        first.internal_date.as_deref(),
        Some("05-Mar-2026 09:00:00 +0000")
    );
    let kept = |flags: &[Flag<'static>]| -> Vec<Flag<'static>> {
        flags
            .iter()
            .filter(|f| **f != Flag::Recent)
            .cloned()
            .collect()
    };
    assert_eq!(kept(&first.flags), vec![Flag::Seen]);

    let one = |uid: u32| SequenceSet::single(uid).unwrap();
    let copied = s.copy_messages(&one(uids[0]), &b).await.unwrap().unwrap();
    assert_eq!(copied.source, one(uids[0]));
    let moved = s.move_messages(&one(uids[1]), &b).await.unwrap().unwrap();
    assert_eq!(moved.uid_validity, copied.uid_validity);
    s.store_flags(&one(uids[2]), StoreMode::Add, &[Flag::Flagged, Flag::Seen])
        .await
        .unwrap();
    s.store_flags(&one(uids[2]), StoreMode::Remove, &[Flag::Seen])
        .await
        .unwrap();
    let left = s
        .fetch_summaries(&all, &SummaryRequest::default())
        .await
        .unwrap();
    let flags: Vec<(u32, Vec<Flag<'static>>)> =
        left.into_iter().map(|x| (x.uid, kept(&x.flags))).collect();
    assert_eq!(
        flags,
        vec![(uids[0], vec![Flag::Seen]), (uids[2], vec![Flag::Flagged])]
    );
    let in_b = s.status(&b).await.unwrap();
    assert_eq!((in_b.messages, in_b.unseen), (2, 1));

    // Renamed and deleted while another mailbox is selected.
    s.examine(&b).await.unwrap();
    s.rename(&a, &renamed).await.unwrap();
    assert!(s.status(&a).await.is_err(), "renamed away");
    assert_eq!(s.status(&renamed).await.unwrap().messages, 2);
    s.delete(&renamed).await.unwrap();
    s.logout().await.unwrap();
    let mut s = open(&lab, Security::ImplicitTls).await;
    s.delete(&b).await.unwrap();
    let names: Vec<String> = s
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(&unique)), "{names:?}");
    s.logout().await.unwrap();
}
