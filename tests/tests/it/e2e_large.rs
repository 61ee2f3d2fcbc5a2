//! A 50 MB message (a base64 attachment, generated on the fly) sent through SMTP and fetched
//! back through IMAP and POP3 into a hashing sink: byte-exact, and the process never holds it
//! (its peak resident set grows by far less than the message). Alone in its test binary so the
//! peak belongs to this test only.

use mailcat_session::ListDetail;
use std::time::{Duration, Instant};

use mailcat_session::smtp::{Envelope, MessageInfo};
use mailcat_session::{Account, Credential};
use mailcat_tests::lab::Lab;
use mailcat_tests::roundtrip::{peak_rss_kib, GeneratedMessage, HashFrom, HashSink};
use mailcat_transport::{Endpoint, Timeouts, TlsSettings};

const LINES: u64 = 641_026; // 641,026 lines of 78 bytes: 50 MB of body

#[tokio::test(flavor = "multi_thread")]
async fn a_50_mb_attachment_round_trips_in_bounded_memory() {
    let lab = Lab::from_env();
    let token = format!("large-{}", std::process::id());
    let header = format!(
        "From: Tricky <tricky@example.test>\r\nTo: tricky@example.test\r\nSubject: {token}\r\n\
         Date: Thu, 26 Nov 2026 06:00:00 +0000\r\nMessage-ID: <{token}@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let message = GeneratedMessage::new(header.clone(), LINES);
    let size = message.len();
    assert!(size > 50_000_000);

    // What the message hashes to: the same generator into the hashing sink.
    let mut expected = HashSink::new(0);
    tokio::io::copy(
        &mut GeneratedMessage::new(header.clone(), LINES),
        &mut expected,
    )
    .await
    .expect("generate");

    let before = peak_rss_kib();
    let account = |incoming: String| {
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
        account.timeouts = Timeouts::uniform(Duration::from_secs(60));
        account
    };
    let sender = account(format!("imaps://{}:{}", lab.tls_name, lab.imaps_port));
    let envelope = Envelope {
        from: Some(lab.tricky_user.parse().expect("address")),
        to: vec![lab.tricky_user.parse().expect("address")],
        ..Default::default()
    };
    let info = MessageInfo {
        size: Some(size),
        eight_bit: false,
        utf8_headers: false,
        longest_line: 0,
    };
    let started = Instant::now();
    sender
        .send(
            &envelope,
            &mut GeneratedMessage::new(header.clone(), LINES),
            &info,
        )
        .await
        .expect("sent");
    println!(
        "sent {size} bytes in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    for url in [
        format!("imaps://{}:{}", lab.tls_name, lab.imaps_port),
        format!("pop3s://{}:{}", lab.tls_name, lab.pop3s_port),
    ] {
        let mut incoming = account(url.clone()).receive().await.expect("log in");
        let deadline = Instant::now() + Duration::from_secs(60);
        let found = loop {
            let listed = incoming
                .list(None, ListDetail::Headers)
                .await
                .expect("list");
            if let Some(m) = listed
                .into_iter()
                .find(|m| m.headers.subject.as_deref() == Some(token.as_str()))
            {
                break m;
            }
            assert!(
                Instant::now() < deadline,
                "{url}: not delivered within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        // Postfix's trace headers come first; hash from our header on.
        let mut sink = HashFrom::new(b"From: Tricky");
        let started = Instant::now();
        let len = incoming.fetch(&found.id, &mut sink).await.expect("fetch");
        println!(
            "{url}: fetched {len} bytes in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(
            sink.result(),
            Some((expected.sha256(), size)),
            "{url}: the message differs from what was sent"
        );
        incoming.close().await.expect("logout");
    }
    let grown_kib = peak_rss_kib().saturating_sub(before);
    println!(
        "peak resident set grew by {grown_kib} KiB while sending and fetching {size} bytes twice"
    );
    // Bounded memory is a correctness property: holding the message would add 50,000 KiB.
    assert!(
        grown_kib < 32 * 1024,
        "the peak resident set grew by {grown_kib} KiB"
    );
}
