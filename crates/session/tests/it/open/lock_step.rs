//! POP3 and SMTP answer one command at a time: a reply nobody asked for (a second greeting
//! line, a second reply to CAPA or EHLO) would be taken for the answer to the next command, so
//! the connection is refused instead (threat model #52). IMAP's untagged data stays legal.

use super::support::*;
use mailcat_transport::{Error, Protocol, Security, Step};

/// `open` must fail with [`Error::OutOfStep`] for `step`, `extra` bytes having been waiting.
fn assert_out_of_step(error: &Error, step: Step, extra: &str) {
    match error {
        Error::OutOfStep {
            step: got,
            buffered,
            ..
        } => {
            assert_eq!(*got, step, "{error}");
            assert_eq!(*buffered, extra.len(), "{error}");
        }
        other => panic!("expected OutOfStep after the {step}, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("one command at a time"), "{text}");
}

#[tokio::test]
async fn a_second_greeting_line_is_refused_before_any_command() {
    // The audit's case: `+OK a\r\n+OK b\r\n` in one write; the extra line used to be taken as
    // the answer to CAPA.
    let cases = [
        (Protocol::Pop3, "+OK a\r\n", "+OK b\r\n"),
        (
            Protocol::Smtp,
            "220 mx.example ESMTP\r\n",
            "250 mx.example\r\n",
        ),
        (
            Protocol::Smtp,
            "220-mx.example\r\n220 ESMTP\r\n",
            "220 again\r\n",
        ),
    ];
    for (protocol, greeting, extra) in cases {
        for security in [Security::StartTls, Security::DangerousPlaintext] {
            let server = Server::start(vec![send(format!("{greeting}{extra}"))]).await;
            let endpoint = server.endpoint(protocol, security, "127.0.0.1");
            let error = err(open(&endpoint, any_client_config()).await);
            assert_out_of_step(&error, Step::Greeting, extra);
            let received = server.received().await;
            assert!(
                received.bytes.is_empty(),
                "{protocol}: {:?}",
                received.text()
            );
        }
    }
}

#[tokio::test]
async fn a_second_reply_to_the_capability_query_is_refused_before_starttls() {
    // A fake "+OK" / "250" waiting after the real reply would be read as the STLS / STARTTLS
    // go-ahead, or as the answer to whatever the session sends next.
    let cases = [
        (
            Protocol::Pop3,
            "+OK POP3 ready\r\n",
            "CAPA",
            "+OK\r\nUIDL\r\nSTLS\r\n.\r\n",
            "+OK Begin TLS negotiation\r\n",
        ),
        (
            Protocol::Smtp,
            "220 mx.example ESMTP\r\n",
            "EHLO [127.0.0.1]",
            "250-mx.example\r\n250 STARTTLS\r\n",
            "220 2.0.0 Ready to start TLS\r\n",
        ),
    ];
    for (protocol, greeting, command, reply, extra) in cases {
        for security in [Security::StartTls, Security::DangerousPlaintext] {
            let server = Server::start(vec![
                send(greeting),
                expect(command),
                send(format!("{reply}{extra}")),
            ])
            .await;
            let endpoint = server.endpoint(protocol, security, "127.0.0.1");
            let error = err(open(&endpoint, any_client_config()).await);
            assert_out_of_step(&error, Step::Capabilities, extra);
            let received = server.received().await;
            assert_eq!(received.text(), format!("{command}\r\n"), "{protocol}");
        }
    }
}

#[tokio::test]
async fn untagged_imap_data_after_the_greeting_is_still_legal() {
    // IMAP servers may send untagged responses at any time (RFC 9051 §2.2.2).
    let server = Server::start(vec![
        send("* OK IMAP ready\r\n* OK [ALERT] maintenance tonight\r\n"),
        expect("A0001 CAPABILITY"),
        send("* CAPABILITY IMAP4rev1 IDLE\r\nA0001 OK done\r\n* 3 EXISTS\r\n"),
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::DangerousPlaintext, "127.0.0.1");
    let opened = open(&endpoint, any_client_config()).await.unwrap();
    assert!(opened.capabilities.has("IDLE"));
    drop(opened);
    server.received().await;
}

#[tokio::test]
async fn a_flood_of_capability_data_before_login_is_refused() {
    // threat model #40, before any login: a CAPABILITY answered with endless untagged
    // responses, a CAPA listing without end. Real servers send one response, a few dozen lines.
    let imap_flood: String = (0..1_200)
        .map(|i| format!("* CAPABILITY IMAP4rev1 X{i}\r\n"))
        .collect();
    let pop3_flood: String = (0..1_200).map(|i| format!("X-CAP{i}\r\n")).collect();
    let cases = [
        (
            Protocol::Imap,
            "* OK ready\r\n",
            "A0001 CAPABILITY",
            format!("{imap_flood}A0001 OK done\r\n"),
        ),
        (
            Protocol::Pop3,
            "+OK ready\r\n",
            "CAPA",
            format!("+OK\r\n{pop3_flood}.\r\n"),
        ),
    ];
    for (protocol, greeting, command, reply) in cases {
        let server = Server::start(vec![send(greeting), expect(command), send(reply)]).await;
        let endpoint = server.endpoint(protocol, Security::DangerousPlaintext, "127.0.0.1");
        let error = err(open(&endpoint, any_client_config()).await);
        let text = error.to_string();
        mailcat_tests::assert_matches!(error, Error::Protocol { .. }, "{protocol}");
        assert!(text.contains("at most 1,000"), "{protocol}: {text}");
    }
}

#[tokio::test]
async fn a_reply_arriving_after_the_last_one_was_read_is_found_before_the_next_command() {
    // Over real TCP, plaintext and TLS: the late line comes in a packet of its own, after CAPA's
    // reply was read and the buffer was empty (threat model #52). `unsolicited` must see it
    // without waiting for more, and see nothing when nothing came.
    for tls in [false, true] {
        let (client, server_config) = valid_pki();
        let mut script = Vec::new();
        if tls {
            script.push(Act::StartTls(server_config));
        }
        script.extend([
            send("+OK ready\r\n"),
            expect("CAPA"),
            send("+OK\r\nUSER\r\n.\r\n"),
            Act::Sleep(std::time::Duration::from_millis(300)),
            send("+OK late\r\n"),
            Act::Sleep(std::time::Duration::from_millis(500)),
        ]);
        let server = Server::start(script).await;
        let security = if tls {
            Security::ImplicitTls
        } else {
            Security::DangerousPlaintext
        };
        let endpoint = server.endpoint(Protocol::Pop3, security, "127.0.0.1");
        let opened = open(&endpoint, client).await.unwrap();
        let (mut connection, _) = opened.connection.into_parts();
        assert_eq!(connection.unsolicited().await.unwrap(), None, "tls: {tls}");
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(
            connection.unsolicited().await.unwrap().as_deref(),
            Some("+OK late"),
            "tls: {tls}"
        );
        assert_eq!(
            connection.buffered(),
            "+OK late\r\n".len(),
            "kept for the caller"
        );
        drop(connection);
        server.received().await;
    }
}
