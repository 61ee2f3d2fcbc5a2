//! A TLS server where a plaintext greeting was due (STARTTLS or plaintext configured on an
//! implicit-TLS port). The opposite mix-up, plaintext on an implicit-TLS connection, is in
//! `tls_errors.rs`; a silent server on a STARTTLS connection in `timeouts.rs`.

use super::support::*;
use mailcat_transport::{Error, Protocol, Security, Step};

/// A TLS alert record (handshake_failure), as a TLS server sends when it gets no ClientHello.
const TLS_ALERT: &[u8] = b"\x15\x03\x03\x00\x02\x02\x28";
/// The start of a TLS handshake record.
const TLS_HANDSHAKE: &[u8] = b"\x16\x03\x01\x00\x40\x02\x00\x00\x3c\x03\x03";

#[tokio::test]
async fn tls_server_on_a_starttls_connection() {
    let cases = [
        (Protocol::Imap, "imaps://", TLS_ALERT),
        (Protocol::Pop3, "pop3s://", TLS_HANDSHAKE),
        (Protocol::Smtp, "smtps://", TLS_ALERT),
    ];
    for (protocol, scheme, record) in cases {
        for security in [Security::StartTls, Security::DangerousPlaintext] {
            let server = Server::start(vec![send(record)]).await;
            let endpoint = server.endpoint(protocol, security, "127.0.0.1");
            let error = err(open(&endpoint, any_client_config()).await);
            match &error {
                Error::TlsServerOnPlaintextConnection { tls_url, port, .. } => {
                    assert_eq!(*tls_url, format!("{scheme}127.0.0.1:{}", endpoint.port));
                    assert_eq!(*port, endpoint.port);
                }
                other => panic!("{protocol} {security:?}: expected TlsServerOnPlaintextConnection, got {other:?}"),
            }
            assert_eq!(error.step(), Some(Step::Greeting));
            let text = error.to_string();
            assert!(text.contains("expects TLS from the first byte"), "{text}");
            assert!(text.contains("use implicit TLS"), "{text}");
            assert!(
                server.received().await.bytes.is_empty(),
                "{protocol}: nothing may be sent to it"
            );
        }
    }
}

/// A real implicit-TLS server: every connection (mailcat's, then its probe) waits, silent, for
/// a ClientHello, as Dovecot on 993 does, sends `greeting` once TLS is up, then waits for what
/// the client sends.
async fn implicit_tls_server(
    config: std::sync::Arc<rustls::ServerConfig>,
    greeting: &'static str,
) -> mailcat_tests::script::EachServer {
    let (server, _) = mailcat_tests::script::serve_tcp_each(vec![
        Act::StartTls(config),
        send(greeting),
        Act::ReadAny,
    ])
    .await;
    server
}

#[tokio::test]
async fn starttls_url_on_an_implicit_tls_port_is_found_out_within_two_seconds() {
    // pop3://host:995 and friends: the server waits for a ClientHello and says nothing. A short
    // silence, then a TLS handshake on a second connection, tell "this port expects TLS" long
    // before the greeting timeout, and the error names the URL to use.
    let (client, server_config) = valid_pki();
    for (protocol, scheme, greeting) in [
        (Protocol::Imap, "imaps://", "* OK ready\r\n"),
        (Protocol::Pop3, "pop3s://", "+OK ready\r\n"),
        (Protocol::Smtp, "smtps://", "220 mx.example ESMTP\r\n"),
        // A server that does not greet (or a certificate mailcat cannot check): TLS is enough.
        (Protocol::Imap, "imaps://", ""),
    ] {
        let server = implicit_tls_server(server_config.clone(), greeting).await;
        let endpoint = mailcat_transport::Endpoint::new(protocol, "localhost", Security::StartTls)
            .with_port(server.port);
        let mut timeouts = quick();
        timeouts.greeting = std::time::Duration::from_secs(6);
        let started = std::time::Instant::now();
        let error = err(open_with(&endpoint, client.clone(), &timeouts).await);
        let elapsed = started.elapsed();
        // One second of silence, a handshake, and (without a greeting) half a second more.
        let limit = if greeting.is_empty() { 2500 } else { 2000 };
        assert!(
            elapsed < std::time::Duration::from_millis(limit),
            "{protocol}: took {elapsed:?}: {error}"
        );
        match &error {
            Error::TlsServerOnPlaintextConnection { tls_url, .. } => {
                assert_eq!(*tls_url, format!("{scheme}localhost:{}", server.port));
            }
            other => panic!("{protocol}: expected TlsServerOnPlaintextConnection, got {other:?}"),
        }
        assert!(error.is_config(), "{error:?}");
        assert!(!error.is_transient(), "{error:?}");
    }
}

#[tokio::test]
async fn starttls_url_on_another_protocols_implicit_tls_port_names_that_protocol() {
    // pop3:// on an IMAPS port: not "use pop3s:// on this port" (IMAP again), but what is there.
    let (client, server_config) = valid_pki();
    let server = implicit_tls_server(server_config, "* OK IMAP ready\r\n").await;
    let endpoint =
        mailcat_transport::Endpoint::new(Protocol::Pop3, "localhost", Security::StartTls)
            .with_port(server.port);
    let mut timeouts = quick();
    timeouts.greeting = std::time::Duration::from_secs(6);
    let error = err(open_with(&endpoint, client, &timeouts).await);
    match &error {
        Error::WrongProtocol {
            expected,
            found,
            tls,
            ..
        } => assert_eq!(
            (*expected, *found, *tls),
            (Protocol::Pop3, Protocol::Imap, true)
        ),
        other => panic!("expected WrongProtocol, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("is IMAP, not POP3"), "{text}");
    assert!(text.contains("(995)"), "{text}");
    assert!(text.contains("an imaps:// URL"), "{text}");
    assert!(error.is_config());
}

#[tokio::test]
async fn a_slow_plaintext_greeting_is_not_taken_for_tls() {
    // A server that greets late (a greet pause, a slow reverse lookup) answers the probe with
    // no TLS: the greeting is still awaited, and accepted.
    let server = Server::start(vec![
        Act::Sleep(std::time::Duration::from_millis(1500)),
        send("* OK late but fine\r\n"),
        expect("A0001 CAPABILITY"),
        send("* CAPABILITY IMAP4rev1\r\nA0001 OK done\r\n"),
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::DangerousPlaintext, "127.0.0.1");
    let mut timeouts = quick();
    timeouts.greeting = std::time::Duration::from_secs(4);
    let opened = open_with(&endpoint, any_client_config(), &timeouts)
        .await
        .expect("a slow greeting is still a greeting");
    assert_eq!(opened.greeting.text, "late but fine");
}
