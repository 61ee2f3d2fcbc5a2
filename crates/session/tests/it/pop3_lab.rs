//! Pop3Session against the lab's Dovecot, as bob: POP3S and POP3+STLS (strict host), STAT,
//! LIST and UIDL agree, every message retrieved byte for byte as the Maildir holds it,
//! pipelined retrieval against lock-step, and deletions only at QUIT.
//!
//! Needs the lab (`tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`); fails, never skips,
//! without it. The tests reseed bob's mailbox and take turns on it.
#![allow(clippy::unwrap_used)]

use mailcat_session::Plaintext;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use mailcat_session::{pop3, Credential, Error, Pop3Session};
use mailcat_tests::lab::{lock_mailboxes, Lab, MailboxLock};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use ring::digest;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

const SMALL: u32 = 200;
const SMALL_SIZE: u64 = 4096;
const LARGE: u32 = 3;
const LARGE_SIZE: u64 = 1 << 20;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the lab (tests/lab/lab.sh up) and eval \"$(tests/lab/lab.sh env)\"")
    })
}

fn bob() -> Credential {
    Credential::password(var("MAILCAT_LAB_USER2"), var("MAILCAT_LAB_PASSWORD2"))
}

/// The tests share bob's mailbox, with each other and with sync_lab: one at a time.
async fn turn() -> MailboxLock {
    lock_mailboxes(&[&var("MAILCAT_LAB_USER2")]).await
}

fn lab_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/lab.sh")
}

/// 200 × 4 KiB and 3 × 1 MiB messages, nothing else.
fn seed() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(lab_sh())
            .arg("seed")
            .args(["--user", &var("MAILCAT_LAB_USER2")])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab.sh seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "--count",
        &SMALL.to_string(),
        "--size",
        &SMALL_SIZE.to_string(),
        "--reset",
    ]);
    run(&[
        "--count",
        &LARGE.to_string(),
        "--size",
        &LARGE_SIZE.to_string(),
        "--start-index",
        &(SMALL + 1).to_string(),
    ]);
}

/// Size and SHA-256 of each message as POP3 serves it (LF → CRLF), in Maildir (= message
/// number) order.
fn maildir_messages() -> Vec<(u64, Vec<u8>)> {
    let root = PathBuf::from(var("MAILCAT_LAB_DIR")).join("mail/example.test/bob/Maildir");
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    // Seeded names start with 1700000000 + index: they sort in delivery order.
    files.sort_by_key(|p| p.file_name().unwrap().to_owned());
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            let mut served = Vec::with_capacity(bytes.len() + bytes.len() / 40);
            for &b in &bytes {
                if b == b'\n' && served.last() != Some(&b'\r') {
                    served.push(b'\r');
                }
                served.push(b);
            }
            (
                served.len() as u64,
                digest::digest(&digest::SHA256, &served).as_ref().to_vec(),
            )
        })
        .collect()
}

/// A sink that only hashes what it gets.
struct Hasher(Option<digest::Context>, u64);

impl Hasher {
    fn new() -> Self {
        Self(Some(digest::Context::new(&digest::SHA256)), 0)
    }
    fn finish(&mut self) -> Vec<u8> {
        self.0.take().unwrap().finish().as_ref().to_vec()
    }
}

impl AsyncWrite for Hasher {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.as_mut().unwrap().update(buf);
        self.1 += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn open(host: &str, port: u16, security: Security) -> Pop3Session<TcpStream> {
    let lab = Lab::from_env();
    let endpoint = Endpoint::new(Protocol::Pop3, host, security).with_port(port);
    let mut session = pop3::connect(
        &endpoint,
        &TlsSettings::only_ca_file(&lab.ca_file),
        &Timeouts::default(),
    )
    .await
    .unwrap();
    session.login(&bob(), Plaintext::Refuse).await.unwrap();
    session
}

async fn pop3s() -> Pop3Session<TcpStream> {
    let lab = Lab::from_env();
    open(&lab.host, lab.pop3s_port, Security::ImplicitTls).await
}

async fn stls() -> Pop3Session<TcpStream> {
    let lab = Lab::from_env();
    open(&lab.strict_host, lab.pop3_port, Security::StartTls).await
}

/// STAT, LIST and UIDL agree with each other and with the Maildir.
async fn check_listings(session: &mut Pop3Session<TcpStream>, maildir: &[(u64, Vec<u8>)]) {
    let stat = session.stat().await.unwrap();
    let list = session.list().await.unwrap();
    let uids = session.uidl().await.unwrap();
    assert_eq!(stat.count, SMALL + LARGE);
    assert_eq!(list.len(), stat.count as usize);
    assert_eq!(uids.len(), stat.count as usize);
    assert_eq!(list.iter().map(|l| l.octets).sum::<u64>(), stat.octets);
    for (i, (l, u)) in list.iter().zip(&uids).enumerate() {
        assert_eq!((l.msg, u.msg), (i as u32 + 1, i as u32 + 1));
        // The seeder's sizes are exact but for the odd message one line longer (4097 B).
        let seeded = if l.msg <= SMALL {
            SMALL_SIZE
        } else {
            LARGE_SIZE
        };
        assert!(l.octets.abs_diff(seeded) <= 2, "message {}", l.msg);
        assert_eq!(l.octets, maildir[i].0, "message {}", l.msg);
    }
    let distinct: std::collections::HashSet<_> = uids.iter().map(|u| &u.uid).collect();
    assert_eq!(distinct.len(), uids.len());
    assert_eq!(session.list_one(3).await.unwrap().octets, maildir[2].0);
    assert_eq!(session.uidl_one(3).await.unwrap(), uids[2]);
}

#[tokio::test]
async fn pop3s_listings_agree_and_every_message_is_byte_exact() {
    let _turn = turn().await;
    seed();
    let want = maildir_messages();
    assert_eq!(want.len(), (SMALL + LARGE) as usize);
    let mut session = pop3s().await;
    assert!(session.pipelining());
    check_listings(&mut session, &want).await;
    for msg in 1..=SMALL + LARGE {
        let mut sink = Hasher::new();
        let octets = session.retrieve(msg, &mut sink).await.unwrap();
        assert_eq!((octets, sink.1), (want[msg as usize - 1].0, octets));
        assert_eq!(sink.finish(), want[msg as usize - 1].1, "message {msg}");
    }
    let mut header = Vec::new();
    session.top(1, 0, &mut header).await.unwrap();
    assert!(header.ends_with(b"\r\n\r\n") && header.len() < 1024);
    mailcat_tests::assert_matches!(
        session.retrieve(999, &mut Vec::new()).await,
        Err(Error::Rejected { .. })
    );
    session.quit().await.unwrap();
}

#[tokio::test]
async fn stls_on_the_strict_host_listings_agree_and_messages_are_byte_exact() {
    let _turn = turn().await;
    seed();
    let want = maildir_messages();
    let mut session = stls().await;
    check_listings(&mut session, &want).await;
    // A few small ones and the large ones, pipelined.
    let messages: Vec<u32> = (1..=5).chain(SMALL + 1..=SMALL + LARGE).collect();
    let hashes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sinks = hashes.clone();
    let results = session
        .retrieve_many(&messages, move |msg| {
            let sinks = sinks.clone();
            async move { Ok(Collect(msg, Hasher::new(), sinks)) }
        })
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    let hashes = hashes.lock().unwrap().clone();
    assert_eq!(hashes.len(), messages.len());
    for (msg, hash) in hashes {
        assert_eq!(hash, want[msg as usize - 1].1, "message {msg}");
    }
    session.quit().await.unwrap();
}

/// Message numbers and hashes, filled by [`Collect`] sinks.
type Hashes = std::sync::Arc<std::sync::Mutex<Vec<(u32, Vec<u8>)>>>;

/// A hashing sink that files its hash under its message number when shut down (= complete).
struct Collect(u32, Hasher, Hashes);

impl AsyncWrite for Collect {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.1).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let (msg, hash) = (self.0, self.1.finish());
        self.2.lock().unwrap().push((msg, hash));
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn no_login_before_stls_on_the_strict_host() {
    let lab = Lab::from_env();
    let endpoint = Endpoint::new(
        Protocol::Pop3,
        &lab.strict_host,
        Security::DangerousPlaintext,
    )
    .with_port(lab.pop3_port);
    let mut session = pop3::connect(&endpoint, &TlsSettings::default(), &Timeouts::default())
        .await
        .unwrap();
    // Dovecot offers neither USER nor SASL in clear text to a remote client; even with
    // plaintext allowed, nothing is sent.
    let err = session
        .login(&bob(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoUsableMechanism { .. }), "{err}");
    // And without the opt-in, refused too (nothing to use is said before the missing TLS).
    let err = session.login(&bob(), Plaintext::Refuse).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoUsableMechanism { .. } | Error::PlaintextAuthRefused { .. }
        ),
        "{err}"
    );
    session.abort().await;
}

#[tokio::test]
async fn wrong_password_over_pop3s_is_an_auth_failure() {
    let lab = Lab::from_env();
    let endpoint =
        Endpoint::new(Protocol::Pop3, &lab.host, Security::ImplicitTls).with_port(lab.pop3s_port);
    let mut session = pop3::connect(
        &endpoint,
        &TlsSettings::only_ca_file(&lab.ca_file),
        &Timeouts::default(),
    )
    .await
    .unwrap();
    let err = session
        .login(
            &Credential::password(var("MAILCAT_LAB_USER2"), "not-the-password"),
            Plaintext::Refuse,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err}");
    session.abort().await;
}

#[tokio::test]
async fn pipelined_retrieve_many_against_lock_step() {
    let _turn = turn().await;
    seed();
    let want = maildir_messages();
    let messages: Vec<u32> = (1..=SMALL).collect();

    let mut session = pop3s().await;
    let started = Instant::now();
    for &msg in &messages {
        let mut sink = Hasher::new();
        session.retrieve(msg, &mut sink).await.unwrap();
        assert_eq!(sink.finish(), want[msg as usize - 1].1);
    }
    let lock_step = started.elapsed();

    let hashes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sinks = hashes.clone();
    let started = Instant::now();
    let results = session
        .retrieve_many(&messages, move |msg| {
            let sinks = sinks.clone();
            async move { Ok(Collect(msg, Hasher::new(), sinks)) }
        })
        .await
        .unwrap();
    let pipelined = started.elapsed();
    assert!(results.iter().all(|r| r.is_ok()));
    for (msg, hash) in hashes.lock().unwrap().iter() {
        assert_eq!(hash, &want[*msg as usize - 1].1);
    }
    println!(
        "RETR of {} x {} B: one at a time {:?} ({:.0} msg/s), pipelined (window {}) {:?} ({:.0} msg/s)",
        SMALL,
        SMALL_SIZE,
        lock_step,
        f64::from(SMALL) / lock_step.as_secs_f64(),
        pop3::PIPELINE_WINDOW,
        pipelined,
        f64::from(SMALL) / pipelined.as_secs_f64(),
    );
    session.quit().await.unwrap();
}

#[tokio::test]
async fn deletions_happen_only_at_quit() {
    let _turn = turn().await;
    seed();
    let total = SMALL + LARGE;
    let uid_of_1 = {
        let mut s = pop3s().await;
        let uid = s.uidl_one(1).await.unwrap().uid;
        s.quit().await.unwrap();
        uid
    };

    // DELE then RSET then QUIT: everything kept.
    let mut s = pop3s().await;
    s.dele(1).await.unwrap();
    s.dele(2).await.unwrap();
    assert_eq!(s.stat().await.unwrap().count, total - 2);
    assert!(s.retrieve(1, &mut Vec::new()).await.is_err());
    s.rset().await.unwrap();
    assert_eq!(s.stat().await.unwrap().count, total);
    s.quit().await.unwrap();
    assert_eq!(pop3s().await.stat().await.unwrap().count, total);

    // DELE then abort (no QUIT): everything kept.
    let mut s = pop3s().await;
    s.dele(1).await.unwrap();
    s.abort().await;
    // DELE then drop: everything kept.
    let mut s = pop3s().await;
    s.dele(1).await.unwrap();
    drop(s);
    let mut s = pop3s().await;
    assert_eq!(s.stat().await.unwrap().count, total);
    assert_eq!(s.uidl_one(1).await.unwrap().uid, uid_of_1);

    // DELE then QUIT: gone.
    s.dele(1).await.unwrap();
    s.dele(2).await.unwrap();
    s.quit().await.unwrap();
    let mut s = pop3s().await;
    assert_eq!(s.stat().await.unwrap().count, total - 2);
    assert!(s.uidl().await.unwrap().iter().all(|u| u.uid != uid_of_1));
    s.quit().await.unwrap();
    seed();
}
