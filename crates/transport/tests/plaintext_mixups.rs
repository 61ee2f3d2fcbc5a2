//! A TLS server where a plaintext greeting was due (STARTTLS or plaintext configured on an
//! implicit-TLS port). The opposite mix-up, plaintext on an implicit-TLS connection, is in
//! `tls_errors.rs`; a silent server on a STARTTLS connection in `timeouts.rs`.

#![allow(clippy::unwrap_used)]

mod support;

use mailcat_transport::{Error, Protocol, Security, Step};
use support::*;

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
