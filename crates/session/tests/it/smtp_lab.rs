//! SmtpSession against the lab's Postfix: alice sends through submission (STARTTLS) and
//! submissions (implicit TLS) to `outbound@example.test` (everything outside example.test is
//! rewritten to it as well), and the test reads the delivered Maildir file: it must end with the
//! message as sent (line endings aside: Dovecot stores LF). Also a refused recipient, a 5 MB
//! message, and 50 messages over one session with the throughput printed.
//!
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.
#![allow(clippy::unwrap_used)]

use mailcat_session::Plaintext;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mailcat_session::smtp::{
    self, Address, Envelope, MessageInfo, PartialDelivery, Pipelining, SmtpSession,
};
use mailcat_session::{Credential, Error};
use mailcat_tests::lab::Lab;
use mailcat_tests::roundtrip::as_stored;
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use tokio::net::TcpStream;

fn addr(a: &str) -> Address {
    Address::new(a).unwrap()
}

fn outbound_dir() -> PathBuf {
    let dir = std::env::var("MAILCAT_LAB_DIR")
        .expect("MAILCAT_LAB_DIR is not set: eval \"$(tests/lab/lab.sh env)\"");
    PathBuf::from(dir).join("mail/example.test/outbound/Maildir")
}

/// Alice logged in over submission (STARTTLS, on the strict host) or submissions.
async fn alice(implicit_tls: bool) -> SmtpSession<TcpStream> {
    let lab = Lab::from_env();
    let endpoint = if implicit_tls {
        Endpoint::new(Protocol::Smtp, &lab.host, Security::ImplicitTls)
            .with_port(lab.submissions_port)
    } else {
        Endpoint::new(Protocol::Smtp, &lab.strict_host, Security::StartTls)
            .with_port(lab.submission_port)
    };
    let tls = TlsSettings::only_ca_file(&lab.ca_file);
    let mut session = smtp::connect(&endpoint, &tls, &Timeouts::uniform(Duration::from_secs(30)))
        .await
        .unwrap();
    let credential = Credential::password(&lab.user, lab.password.as_bytes());
    session.login(&credential, Plaintext::Refuse).await.unwrap();
    session
}

fn from_alice(to: &[&str]) -> Envelope {
    Envelope {
        from: Some(addr(&Lab::from_env().user)),
        to: to.iter().map(|t| addr(t)).collect(),
        ..Default::default()
    }
}

/// A unique token to find the delivered message by.
fn token(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("mailcat-smtp-{what}-{}-{nanos}", std::process::id())
}

/// Waits (up to 15 s) until `count` files in the outbound Maildir hold `token`; returns them.
async fn delivered(token: &str, count: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(outbound_dir().join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(bytes) = std::fs::read(entry.path()) else {
                    continue;
                };
                if bytes.windows(token.len()).any(|w| w == token.as_bytes()) {
                    found.push(bytes);
                }
            }
        }
        if found.len() >= count || Instant::now() > deadline {
            assert!(
                found.len() >= count,
                "{} of {count} messages with {token} arrived in {}",
                found.len(),
                outbound_dir().display()
            );
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_ends_with(file: &[u8], message: &[u8]) {
    let stored = as_stored(file);
    let sent = as_stored(message);
    assert!(
        stored.ends_with(&sent),
        "the delivered file does not end with the message sent:\n--- delivered (end) ---\n{}\n--- sent ---\n{}",
        String::from_utf8_lossy(&stored[stored.len().saturating_sub(sent.len() + 200)..]),
        String::from_utf8_lossy(&sent)
    );
}

/// Complete headers, so that Postfix adds none (it adds Date and Message-ID when missing).
fn headers(token: &str) -> String {
    format!(
        "From: alice@example.test\r\nTo: outbound@example.test\r\nSubject: {token}\r\n\
         Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <{token}@example.test>\r\n"
    )
}

/// A message with the hard parts: lines of dots, a bare LF, a bare CR, 8-bit UTF-8, a long
/// line, `\r\n.\r\n` inside, no final line ending.
fn tricky_message(token: &str) -> Vec<u8> {
    let long = "x".repeat(900);
    format!(
        "{}MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         .leading dot\r\n.\r\n..two dots\r\nbare LF\nbare CR\rcaf\u{e9} na\u{ef}ve \u{2713}\r\n\
         {long}\r\n\r\n.\r\nMAIL FROM:<evil@example.test>\r\nend without newline",
        headers(token)
    )
    .into_bytes()
}

#[tokio::test]
async fn submission_with_starttls_delivers_byte_exact_to_two_recipients() {
    let token = token("starttls");
    let message = tricky_message(&token);
    let mut session = alice(false).await;
    assert!(session.extensions().pipelining());
    let report = session
        .send(
            &from_alice(&["outbound@example.test", "hidden-copy@example.net"]),
            &mut &message[..],
            &MessageInfo::of_bytes(&message),
        )
        .await
        .unwrap();
    assert_eq!(report.accepted.len(), 2);
    assert_eq!(report.reply.code, 250, "{}", report.reply);
    session.logout().await.unwrap();
    // Both recipients end up in the outbound mailbox; Postfix may merge the two copies.
    for file in delivered(&token, 1).await {
        assert_ends_with(&file, &message);
    }
}

#[tokio::test]
async fn submissions_with_implicit_tls_delivers_byte_exact() {
    let token = token("implicit");
    let message = tricky_message(&token);
    let mut session = alice(true).await;
    session
        .send(
            &from_alice(&["outbound@example.test"]),
            &mut &message[..],
            &MessageInfo::of_bytes(&message),
        )
        .await
        .unwrap();
    session.logout().await.unwrap();
    assert_ends_with(&delivered(&token, 1).await[0], &message);
}

#[tokio::test]
async fn a_refused_recipient_stops_the_send_and_partial_sending_delivers_to_the_rest() {
    let token = token("refused");
    let message = format!("{}\r\nfor outbound only\r\n", headers(&token)).into_bytes();
    let info = MessageInfo::of_bytes(&message);
    let envelope = from_alice(&["outbound@example.test", "nobody@example.test"]);
    let mut session = alice(false).await;
    let err = session
        .send(&envelope, &mut &message[..], &info)
        .await
        .unwrap_err();
    match &err {
        Error::RecipientsRefused {
            refused, accepted, ..
        } => {
            assert_eq!(refused.len(), 1, "{refused:?}");
            assert_eq!(refused[0].0, "nobody@example.test");
            assert_eq!(refused[0].1.code, 550, "{refused:?}");
            assert_eq!(accepted, &["outbound@example.test".to_owned()]);
        }
        other => panic!("{other}"),
    }
    println!("refused: {err}");
    // The same session goes on, now sending to the accepted recipient.
    session.set_partial_delivery(PartialDelivery::ToAccepted);
    let report = session
        .send(&envelope, &mut &message[..], &info)
        .await
        .unwrap();
    assert_eq!(report.accepted, vec![addr("outbound@example.test")]);
    assert_eq!(report.refused[0].1.code, 550);
    session.logout().await.unwrap();
    // Exactly one copy: the first attempt delivered nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(delivered(&token, 1).await.len(), 1);
}

#[tokio::test]
async fn a_5_mb_message_streams_through() {
    let token = token("5mb");
    let mut message = format!("{}Content-Type: text/plain\r\n\r\n", headers(&token)).into_bytes();
    let mut line = 0u64;
    while message.len() < 5_000_000 {
        // Some lines start with a dot; every 1000th ends with a bare LF.
        let ending: &[u8] = if line.is_multiple_of(1000) {
            b"\n"
        } else {
            b"\r\n"
        };
        let start = if line.is_multiple_of(7) { "." } else { "" };
        message.extend_from_slice(format!("{start}line {line:08} of the big one").as_bytes());
        message.extend_from_slice(ending);
        line += 1;
    }
    let info = MessageInfo::of_bytes(&message);
    let mut session = alice(false).await;
    let started = Instant::now();
    session
        .send(
            &from_alice(&["outbound@example.test"]),
            &mut &message[..],
            &info,
        )
        .await
        .unwrap();
    let elapsed = started.elapsed();
    println!(
        "5 MB message sent in {elapsed:?} ({:.0} MB/s)",
        message.len() as f64 / 1e6 / elapsed.as_secs_f64()
    );
    session.logout().await.unwrap();
    assert_ends_with(&delivered(&token, 1).await[0], &message);
}

/// Sends `count` small messages over one session; returns msgs/s.
async fn many(count: usize, pipelining: bool) -> (String, f64) {
    let token = token(if pipelining {
        "many-pipelined"
    } else {
        "many-lockstep"
    });
    let mut session = alice(false).await;
    session.set_pipelining(if pipelining {
        Pipelining::WhenOffered
    } else {
        Pipelining::Off
    });
    let envelope = from_alice(&["outbound@example.test"]);
    let started = Instant::now();
    for i in 0..count {
        let message = format!(
            "Subject: {token} {i}\r\n\r\n{}\r\n",
            "four kilobytes of text. ".repeat(170)
        )
        .into_bytes();
        session
            .send(
                &envelope,
                &mut &message[..],
                &MessageInfo::of_bytes(&message),
            )
            .await
            .unwrap();
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    session.logout().await.unwrap();
    (token, rate)
}

#[tokio::test]
async fn fifty_messages_over_one_session_with_pipelining() {
    let (token, pipelined) = many(50, true).await;
    let (_, lockstep) = many(50, false).await;
    println!(
        "50 x 4 KiB over one session: {pipelined:.0} msgs/s pipelined, {lockstep:.0} msgs/s lock-step"
    );
    // Both runs deliver everything; the rates are printed, not asserted (speed belongs in
    // benchmarks, and a loaded CI machine must not fail a correct client).
    assert_eq!(delivered(&token, 50).await.len(), 50);
}

async fn connect_submission() -> SmtpSession<TcpStream> {
    let lab = Lab::from_env();
    let endpoint = Endpoint::new(Protocol::Smtp, &lab.strict_host, Security::StartTls)
        .with_port(lab.submission_port);
    let tls = TlsSettings::only_ca_file(&lab.ca_file);
    smtp::connect(&endpoint, &tls, &Timeouts::uniform(Duration::from_secs(30)))
        .await
        .unwrap()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: eval \"$(tests/lab/lab.sh env)\" (tests/lab/lab.sh up first)")
    })
}

#[tokio::test]
async fn an_oauth2_token_logs_in_with_xoauth2_and_a_bad_one_is_refused_once() {
    let user = env("MAILCAT_LAB_OAUTH2_USER");
    let mut session = connect_submission().await;
    session
        .login(
            &Credential::oauth2(&user, env("MAILCAT_LAB_OAUTH2_TOKEN")),
            Plaintext::Refuse,
        )
        .await
        .unwrap();
    session.logout().await.unwrap();

    let mut session = connect_submission().await;
    let bad = Credential::oauth2(&user, "not-a-valid-token");
    let err = session.login(&bad, Plaintext::Refuse).await.unwrap_err();
    println!("bad token: {err}");
    assert!(err.is_auth(), "{err:?}");
    mailcat_tests::assert_matches!(
        session.login(&bad, Plaintext::Refuse).await.unwrap_err(),
        Error::AuthenticationAlreadyAttempted { .. }
    );
    // The session is still usable for QUIT after the refusal.
    session.logout().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused_as_an_auth_error() {
    let lab = Lab::from_env();
    let mut session = connect_submission().await;
    let err = session
        .login(
            &Credential::password(&lab.user, "wrong password"),
            Plaintext::Refuse,
        )
        .await
        .unwrap_err();
    println!("wrong password: {err}");
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err:?}");
    session.logout().await.unwrap();
}

#[tokio::test]
async fn a_message_over_postfix_size_limit_is_refused_before_sending() {
    let mut session = alice(false).await;
    let limit = session.extensions().size().flatten().unwrap();
    let info = MessageInfo {
        size: Some(limit + 1),
        ..MessageInfo::default()
    };
    // The reader is never touched: the refusal comes from SIZE in the EHLO reply.
    let mut reader = tokio::io::empty();
    let err = session
        .send(&from_alice(&["outbound@example.test"]), &mut reader, &info)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
    println!("{err}");
    // Nothing was sent: the session is still in step.
    session.noop().await.unwrap();
    session.logout().await.unwrap();
}
