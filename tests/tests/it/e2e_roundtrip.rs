//! The whole engine against the real servers: a message sent through SMTP submission (STARTTLS)
//! with the account's one credential is found again through IMAP (implicit TLS and STARTTLS)
//! and POP3 (implicit TLS and STLS), byte for byte what SMTP delivers: dot lines, a line of
//! only `.`, 8-bit and UTF-8 text, long lines, bare LFs and CRs normalised to CRLF.
//!
//! The account is the lab's `tricky` user, whose password has quotes, a backslash and spaces.

use mailcat_session::ListDetail;
use std::time::{Duration, Instant};

use mailcat_session::smtp::{Envelope, MessageInfo};
use mailcat_session::{Account, Credential, Error, Incoming, MessageSummary};
use mailcat_tests::lab::Lab;
use mailcat_tests::roundtrip::normalise;
use mailcat_transport::{Endpoint, Timeouts, TlsSettings};

fn account(lab: &Lab, incoming: String) -> Account {
    let mut account = Account::new(
        lab.tricky_user.clone(),
        Credential::password(lab.tricky_user.clone(), lab.tricky_password.clone()),
        Endpoint::parse_url(&incoming).expect("URL"),
        Endpoint::parse_url(&format!(
            "smtp://{}:{}",
            lab.strict_host, lab.submission_port
        ))
        .expect("URL"),
    );
    account.tls = TlsSettings::only_ca_file(&lab.ca_file);
    account.timeouts = Timeouts::uniform(Duration::from_secs(20));
    account
}

/// The four ways in: IMAP and POP3, each with implicit TLS and with STARTTLS (strict host).
fn incoming_urls(lab: &Lab) -> [String; 4] {
    [
        format!("imaps://{}:{}", lab.tls_name, lab.imaps_port),
        format!("imap://{}:{}", lab.strict_host, lab.imap_port),
        format!("pop3s://{}:{}", lab.tls_name, lab.pop3s_port),
        format!("pop3://{}:{}", lab.strict_host, lab.pop3_port),
    ]
}

fn tricky_message(token: &str) -> Vec<u8> {
    // The longest line RFC 5321 §4.5.3.1.6 allows (998 + CRLF); Postfix folds longer ones.
    let long = "x".repeat(998);
    format!(
        "From: Tricky <tricky@example.test>\r\nTo: tricky@example.test\r\nSubject: roundtrip {token} \
         =?UTF-8?Q?caf=C3=A9?=\r\nDate: Thu, 26 Nov 2026 06:00:00 +0000\r\nMessage-ID: <{token}@example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         .a line that starts with a dot\r\n.\r\n..two dots\r\n\r\n.\r\nUTF-8: Grüße, Привет, 你好, 🙂\r\n\
         bare LF here\nbare CR here\rand CRLF\r\n{long}\r\n\
         a smuggling attempt: \r\n.\r\nMAIL FROM:<evil@example.test>\r\nlast line without a newline"
    )
    .into_bytes()
}

/// Finds the message whose Subject carries `token`, waiting for delivery.
async fn find(incoming: &mut Incoming, token: &str) -> Result<MessageSummary, Error> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = incoming.list(None, ListDetail::Headers).await?;
        if let Some(found) = listed.into_iter().find(|m| {
            m.headers
                .subject
                .as_deref()
                .is_some_and(|s| s.contains(token))
        }) {
            return Ok(found);
        }
        assert!(
            Instant::now() < deadline,
            "message {token} not delivered within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sent_message_comes_back_byte_for_byte_through_imap_and_pop3() {
    let lab = Lab::from_env();
    let token = format!("rt-{}", std::process::id());
    let message = tricky_message(&token);
    let expected = normalise(&message);
    let urls = incoming_urls(&lab);

    // Send with the account's one credential ("use same settings as my incoming server").
    let sender = account(&lab, urls[0].clone());
    assert!(sender.outgoing_credential.is_none());
    let envelope = Envelope {
        from: Some(lab.tricky_user.parse().expect("address")),
        to: vec![lab.tricky_user.parse().expect("address")],
        ..Default::default()
    };
    let info = MessageInfo::of_bytes(&message);
    assert!(info.eight_bit);
    let report = sender
        .send(&envelope, &mut &message[..], &info)
        .await
        .expect("sent");
    assert_eq!(report.accepted.len(), 1);

    let mut copies = Vec::new();
    for url in &urls {
        let mut incoming = account(&lab, url.clone())
            .receive()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let found = find(&mut incoming, &token)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            found.headers.subject.as_deref(),
            Some(format!("roundtrip {token} café").as_str()),
            "{url}"
        );
        let mut fetched = Vec::new();
        let len = incoming
            .fetch(&found.id, &mut fetched)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(len, fetched.len() as u64);
        // Postfix puts its trace headers on top; everything after is what was sent.
        assert!(
            fetched.ends_with(&expected),
            "{url}: the delivered message differs from what was sent"
        );
        assert_eq!(
            found.size,
            Some(len),
            "{url}: the listed size is the fetched size"
        );
        incoming.close().await.expect("logout");
        copies.push(fetched);
    }
    assert!(
        copies.windows(2).all(|pair| pair[0] == pair[1]),
        "IMAP and POP3 return the same bytes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_separate_outgoing_credential_is_used_for_sending_only() {
    let lab = Lab::from_env();
    let mut account = account(&lab, incoming_urls(&lab)[0].clone());
    account.outgoing_credential = Some(Credential::password(lab.user.clone(), "not the password"));
    let envelope = Envelope {
        from: Some(lab.user.parse().expect("address")),
        to: vec![lab.tricky_user.parse().expect("address")],
        ..Default::default()
    };
    let body = b"Subject: x\r\n\r\nx\r\n";
    let error = account
        .send(&envelope, &mut &body[..], &MessageInfo::of_bytes(body))
        .await
        .unwrap_err();
    assert!(error.is_auth(), "{error}");
    // The incoming side still logs in with the account's own credential.
    account
        .receive()
        .await
        .expect("receive")
        .close()
        .await
        .expect("logout");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_one_attempt_and_an_auth_error_everywhere() {
    let lab = Lab::from_env();
    for url in incoming_urls(&lab) {
        let mut account = account(&lab, url.clone());
        account.credential = Credential::password(lab.tricky_user.clone(), "wrong");
        let error = account.receive().await.map(|_| ()).unwrap_err();
        assert!(error.is_auth() && !error.is_transient(), "{url}: {error:?}");
        assert!(
            error.hint().is_some(),
            "{url}: a refused password comes with a hint"
        );
    }
}
