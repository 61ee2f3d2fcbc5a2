//! Servers that are silent, slow or gone while a connection opens: every wait ends with an
//! error naming the step (threat model #18, #38, #45), and connect/DNS failures say what to
//! check.
//!
//! These run on the wall clock, not a paused tokio clock: `mailcat_session::open` connects to a
//! real loopback server (it resolves and connects itself; there is no in-memory stream to give
//! it), and with a paused clock the runtime auto-advances whenever it looks idle, which it does
//! while a real socket operation (the TCP handshake, a byte in flight) is pending: the connect,
//! greeting or handshake timeout would fire before the loopback peer could answer, and the tests
//! would fail or pass by chance. So the timeouts are short (`quick()`: 1 s of silence, 2 s for
//! a response) and the bounds on the time taken generous (several times the timeout, still under
//! the hard 8 s limit of `open`); the lower bound on the drip-fed deadline is the one that
//! shows a timeout that fires too early.

use std::time::{Duration, Instant};

use mailcat_codec::imap::StatusKind;
use mailcat_transport::{Endpoint, Error, Protocol, Security, Step};

use super::support::*;
use crate::support::case::Case;

#[tokio::test]
async fn silent_server_times_out_in_the_greeting() {
    let server = Server::start(vec![]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    match &error {
        Error::Timeout {
            step: Step::Greeting,
            after,
            port,
            hint,
            ..
        } => {
            assert_eq!(*after, Duration::from_secs(1));
            assert_eq!(*port, endpoint.port);
            // Not a well-known port: the generic hint about implicit TLS.
            let hint = hint.as_deref().unwrap_or_default();
            assert!(hint.contains("implicit TLS"), "{hint}");
        }
        other => panic!("expected a greeting timeout, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("timed out after 1.0 s during the server greeting"),
        "{text}"
    );
    assert!(server.received().await.bytes.is_empty());
}

#[tokio::test]
async fn silent_server_after_the_tls_handshake_times_out_in_the_greeting() {
    let (client, server_config) = valid_pki();
    let server = Server::start(vec![Act::StartTls(server_config)]).await;
    let endpoint = server.endpoint(Protocol::Pop3, Security::ImplicitTls, "127.0.0.1");
    let error = err(open(&endpoint, client).await);
    mailcat_tests::assert_matches!(
        error,
        Error::Timeout {
            step: Step::Greeting,
            hint: None,
            ..
        }
    );
    assert!(server.received().await.tls);
}

#[tokio::test]
async fn tls_handshake_that_never_completes_times_out() {
    // TCP accepted, ClientHello read, nothing answered (threat model #18).
    let server = Server::start(vec![]).await;
    let endpoint = server.endpoint(Protocol::Smtp, Security::ImplicitTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    mailcat_tests::assert_matches!(
        error,
        Error::Timeout {
            step: Step::TlsHandshake,
            ..
        }
    );
    assert!(error.is_transient());
    assert!(error.to_string().contains("during the TLS handshake"));
    let received = server.received().await;
    assert_eq!(
        received.bytes.first(),
        Some(&0x16),
        "a ClientHello was sent"
    );
}

#[tokio::test]
async fn drip_feeding_server_hits_the_response_deadline() {
    // One byte every 300 ms, well under the 1 s silence limit: only the 2 s deadline for the
    // whole response stops it (threat model #37).
    let mut greeting = b"* OK ".to_vec();
    greeting.extend_from_slice(&[b'x'; 200]);
    greeting.extend_from_slice(b"\r\n");
    let server = Server::start(vec![Act::Drip(greeting, Duration::from_millis(300))]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900),
        "returned before the deadline: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    match &error {
        Error::Timeout {
            step: Step::Greeting,
            after,
            hint,
            ..
        } => {
            assert_eq!(*after, Duration::from_secs(2));
            // Bytes did arrive: "the server sent no greeting" would be wrong.
            assert_eq!(*hint, None, "{error}");
        }
        other => panic!("expected a greeting timeout, got {other:?}"),
    }
    server.received().await;
}

#[tokio::test]
async fn drip_feeding_server_during_a_response() {
    let mut capability = b"* CAPABILITY IMAP4rev1".to_vec();
    capability.extend_from_slice(&[b' '; 1]);
    capability.extend_from_slice(&[b'X'; 200]);
    let server = Server::start(vec![
        send("* OK ready\r\n"),
        expect("A0001 CAPABILITY"),
        Act::Drip(capability, Duration::from_millis(250)),
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    mailcat_tests::assert_matches!(
        error,
        Error::Timeout {
            step: Step::Capabilities,
            ..
        }
    );
    server.received().await;
}

#[tokio::test]
async fn server_that_closes_mid_response() {
    let cases = [
        (Protocol::Imap, "* OK partial"),
        (Protocol::Pop3, "+OK partial"),
        (Protocol::Smtp, "220-first line\r\n220 sec"),
    ];
    for (protocol, partial) in cases {
        let _case = Case::new(format!("{protocol} closed after {partial:?}"));
        let server = Server::start(vec![send(partial), Act::CloseWrite]).await;
        let endpoint = server.endpoint(protocol, Security::StartTls, "127.0.0.1");
        let error = err(open(&endpoint, any_client_config()).await);
        match &error {
            Error::Closed {
                step: Step::Greeting,
                detail,
                ..
            } => assert!(detail.is_some(), "{protocol}: {error}"),
            other => panic!("{protocol}: expected Closed, got {other:?}"),
        }
        let text = error.to_string();
        assert!(
            text.contains("closed the connection during the server greeting"),
            "{text}"
        );
        server.received().await;
    }
}

#[tokio::test]
async fn server_that_closes_after_the_greeting() {
    let server = Server::start(vec![
        send("* OK ready\r\n"),
        expect("A0001 CAPABILITY"),
        Act::CloseWrite,
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    mailcat_tests::assert_matches!(
        error,
        Error::Closed {
            step: Step::Capabilities,
            detail: None,
            ..
        }
    );
    server.received().await;
}

#[tokio::test]
async fn bye_greeting_is_refused_with_the_servers_words() {
    let server = Server::start(vec![send("* BYE too many connections\r\n")]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    match &error {
        Error::Refused {
            step: Step::Greeting,
            reply,
            ..
        } => {
            assert!(
                reply.to_string().contains("too many connections"),
                "{reply}"
            );
            assert_eq!(
                reply.imap_status(),
                Some(StatusKind::Bye),
                "typed: {reply:?}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(server.received().await.bytes.is_empty(), "nothing sent");
}

#[tokio::test]
async fn every_refusing_greeting_is_refused_before_anything_is_sent() {
    // threat model #46 (NO / BAD greetings) and the POP3 and SMTP equivalents: an error with the
    // server's words, no capability query, no authentication.
    let cases = [
        (
            Protocol::Imap,
            "* NO not accepting connections\r\n",
            "NO not accepting",
        ),
        (
            Protocol::Imap,
            "* BAD not accepting connections\r\n",
            "BAD not accepting",
        ),
        (
            Protocol::Pop3,
            "-ERR not accepting connections\r\n",
            "-ERR not accepting",
        ),
        (
            Protocol::Smtp,
            "554 5.3.2 not accepting connections\r\n",
            "554 5.3.2 not",
        ),
        (
            Protocol::Smtp,
            "421 4.3.2 not accepting connections\r\n",
            "421 4.3.2 not",
        ),
    ];
    for (protocol, greeting, words) in cases {
        let server = Server::start(vec![send(greeting)]).await;
        let endpoint = server.endpoint(protocol, Security::StartTls, "127.0.0.1");
        let error = err(open(&endpoint, any_client_config()).await);
        match &error {
            Error::Refused {
                step: Step::Greeting,
                reply,
                ..
            } => {
                assert!(reply.with_status().contains(words), "{greeting:?}: {reply}");
                // Typed: the status or code, whichever the protocol has.
                let typed = match protocol {
                    Protocol::Imap => reply.imap_status().map(|s| s.as_str().to_owned()),
                    Protocol::Pop3 => reply.as_pop3().map(|r| format!("{:?}", r.status)),
                    Protocol::Smtp => reply.smtp_code().map(|c| c.to_string()),
                };
                let expected = words.split(' ').next().unwrap().replace("-ERR", "Err");
                assert_eq!(typed.as_deref(), Some(&*expected), "{reply:?}");
            }
            other => panic!("{greeting:?}: expected Refused, got {other:?}"),
        }
        assert!(server.received().await.bytes.is_empty(), "{greeting:?}");
    }
}

#[tokio::test]
async fn garbage_greeting_is_a_protocol_error() {
    // threat model #46.
    let server = Server::start(vec![send("1Gdo00V4 wFaIW2WP\r\n")]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    mailcat_tests::assert_matches!(
        error,
        Error::Protocol {
            step: Step::Greeting,
            ..
        }
    );
    assert!(server.received().await.bytes.is_empty(), "nothing sent");
}

#[tokio::test]
async fn connection_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint =
        Endpoint::new(Protocol::Imap, "127.0.0.1", Security::ImplicitTls).with_port(port);
    let error = err(open(&endpoint, any_client_config()).await);
    match &error {
        Error::ConnectionRefused { port: p, addr, .. } => {
            assert_eq!(*p, port);
            assert_eq!(addr.port(), port);
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    assert_eq!(error.step(), Some(Step::Connect));
    let text = error.to_string();
    assert!(text.contains("refused the connection"), "{text}");
    assert!(text.contains("nothing listens there"), "{text}");
}

#[tokio::test]
async fn host_in_a_top_level_domain_that_does_not_exist() {
    // `.vom` is not a TLD: whatever the resolver answers (NXDOMAIN, or no network), the error
    // is "not found" with the likely correction.
    let endpoint = Endpoint::new(Protocol::Pop3, "pop3.live.vom", Security::ImplicitTls);
    let error = err(open(&endpoint, any_client_config()).await);
    match &error {
        Error::HostNotFound { host, hint } => {
            assert_eq!(host, "pop3.live.vom");
            assert_eq!(hint.as_deref(), Some("pop3.live.com"));
        }
        other => panic!("expected HostNotFound, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("pop3.live.vom was not found"), "{text}");
    assert!(text.contains("pop3.live.com"), "{text}");
}
