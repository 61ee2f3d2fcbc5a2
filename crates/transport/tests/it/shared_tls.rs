//! One TLS configuration per settings, shared by every connection (issue 12): a reconnection
//! to the same server resumes its TLS session, and still knows the server's certificate; the
//! same server under a name its certificate does not have is still refused.

#![allow(clippy::unwrap_used)]

use crate::support::*;
use mailcat_transport::connect::tls_handshake;
use mailcat_transport::{
    CertificateProblem, Endpoint, Error, MailStream, Protocol, Security, TlsSettings,
};
use rustls::HandshakeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_reconnection_with_the_same_settings_resumes_its_tls_session() {
    let ca = Ca::new("resumption test CA");
    let server_config = ca
        .leaf(&["localhost", "127.0.0.1"], Validity::Now)
        .server_config();
    // One server configuration (one server-side session cache) for every connection: greets
    // after the handshake (the session tickets go first), then waits for the client to close.
    let (server, _) = mailcat_tests::script::serve_tcp_each(vec![
        Act::StartTls(server_config),
        send("* OK ready\r\n"),
        Act::Drain,
    ])
    .await;
    let port = server.port;

    let settings = TlsSettings::only_ca_file(ca.write_pem());
    let endpoint =
        Endpoint::new(Protocol::Imap, "localhost", Security::ImplicitTls).with_port(port);
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let config = settings.client_config().unwrap();
        let tls = tls_handshake(tcp, &endpoint, config, &quick())
            .await
            .unwrap();
        let mut stream = MailStream::Tls(Box::new(tls));
        // Reading the greeting reads the session tickets before it.
        let mut greeting = [0u8; 12];
        stream.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"* OK ready\r\n");
        let MailStream::Tls(tls) = &stream else {
            unreachable!()
        };
        kinds.push(tls.get_ref().1.handshake_kind());
        assert!(stream.peer_certificate().is_some());
        stream.shutdown().await.unwrap();
    }
    assert_eq!(
        kinds,
        [Some(HandshakeKind::Full), Some(HandshakeKind::Resumed)]
    );

    // The same server, the same configuration (its session store holds a ticket for
    // "localhost"), another name: verified afresh, and refused.
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let elsewhere =
        Endpoint::new(Protocol::Imap, "mail.example.test", Security::ImplicitTls).with_port(port);
    let config = settings.client_config().unwrap();
    let error = tls_handshake(tcp, &elsewhere, config, &quick())
        .await
        .err()
        .unwrap();
    mailcat_tests::assert_matches!(
        error,
        Error::Certificate {
            problem: CertificateProblem::NameMismatch { .. },
            ..
        }
    );
    drop(server);
}
