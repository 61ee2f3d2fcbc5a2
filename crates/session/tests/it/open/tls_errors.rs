//! Implicit TLS against in-process rustls servers: a valid certificate works; every kind of bad
//! certificate, an old TLS version and a plaintext server give their own error, which says what
//! is wrong and what to do (threat model #12–#17).
#![allow(clippy::type_complexity)]

use super::support::*;
use crate::support::case::Case;
use mailcat_session::Opened;
use mailcat_transport::{
    CertificateProblem, Error, Fingerprint, Protocol, Security, TlsSettings, TrustHint,
};

/// Implicit-TLS IMAP: handshake with `leaf`, then greeting and CAPABILITY.
fn imap_script(server: std::sync::Arc<rustls::ServerConfig>) -> Vec<Act> {
    vec![
        Act::StartTls(server),
        send("* OK IMAP ready\r\n"),
        expect("A0001 CAPABILITY"),
        send("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA0001 OK done\r\n"),
    ]
}

/// Serves `leaf` (signed by whatever) to a client that trusts `trusted` only, on `host`.
async fn certificate_error(trusted: &Ca, leaf: &Leaf, host: &str) -> (CertificateProblem, String) {
    let server = Server::start(imap_script(leaf.server_config())).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::ImplicitTls, host);
    let error = err(open(&endpoint, trusted.client_config()).await);
    let received = server.received().await;
    assert!(!received.tls, "the handshake must not complete");
    assert!(
        received.bytes.is_empty(),
        "nothing may be sent after a refused certificate"
    );
    let text = error.to_string();
    match error {
        Error::Certificate { host: h, problem } => {
            assert_eq!(h, host);
            (problem, text)
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[tokio::test]
async fn valid_certificate_opens_the_connection() {
    let ca = Ca::new("mailcat test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], Validity::Now);
    for host in ["127.0.0.1", "localhost"] {
        let server = Server::start(imap_script(leaf.server_config())).await;
        let endpoint = server.endpoint(Protocol::Imap, Security::ImplicitTls, host);
        let opened = open(&endpoint, ca.client_config())
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(opened.greeting.text, "IMAP ready");
        assert_eq!(opened.capabilities.items, ["IMAP4rev1", "AUTH=PLAIN"]);
        assert!(opened.connection.connection().is_tls());
        let description = opened.connection.connection().tls_description().unwrap();
        assert!(description.starts_with("TLSv1."), "{description}");
        drop(opened);
        let received = server.received().await;
        assert!(received.tls);
        assert_eq!(received.text(), "A0001 CAPABILITY\r\n");
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_possible_attack_not_a_suggestion() {
    // An attacker with a valid certificate for a host of their own must not get mailcat to
    // recommend connecting to that host: the names are shown as facts, with a warning.
    let ca = Ca::new("mailcat test CA");
    let leaf = ca.leaf(&["other.example.org"], Validity::Now);
    for host in ["127.0.0.1", "localhost"] {
        let (problem, text) = certificate_error(&ca, &leaf, host).await;
        assert_eq!(
            problem,
            CertificateProblem::NameMismatch {
                valid_for: vec!["other.example.org".into()],
                respelling: None,
            },
            "{host}"
        );
        assert!(text.contains("not valid for this name"), "{text}");
        assert!(text.contains("other.example.org"), "{text}");
        assert!(text.contains("may be an attack"), "{text}");
        assert!(text.contains("do not switch"), "{text}");
        assert!(!text.contains("connect to one of those names"), "{text}");
        assert!(!text.contains("use that name"), "{text}");
    }
}

#[test]
fn a_certificate_for_the_same_domain_is_named_as_the_fix() {
    // The other side: a name in the very domain typed is obviously the same server.
    let error = Error::Certificate {
        host: "imap.example.com".into(),
        problem: CertificateProblem::NameMismatch {
            valid_for: vec!["mail.example.com".into()],
            respelling: Some("mail.example.com".into()),
        },
    };
    let text = error.to_string();
    assert!(text.contains("use that name instead"), "{text}");
    assert!(!text.contains("attack"), "{text}");
}

/// A certificate signed by the trusted CA that does not fit: its names (threat model #15: the
/// configured name is verified, and an IP SAN is not a DNS name nor the reverse) or its dates
/// (#16). Each case: the certificate's names and validity, the host asked for, the problem
/// named and words the message must hold.
#[tokio::test]
async fn a_certificate_that_does_not_fit_is_refused_naming_why() {
    let cases: [(&str, &[&str], Validity, &str, CertificateProblem, &[&str]); 4] = [
        (
            "an IP-only certificate does not cover a host name",
            &["127.0.0.1"],
            Validity::Now,
            "localhost",
            CertificateProblem::NameMismatch {
                valid_for: vec!["127.0.0.1".into()],
                respelling: None,
            },
            &["issued for: 127.0.0.1"],
        ),
        (
            "a DNS-only certificate does not cover an IP address",
            &["localhost"],
            Validity::Now,
            "127.0.0.1",
            CertificateProblem::NameMismatch {
                valid_for: vec!["localhost".into()],
                respelling: None,
            },
            &["issued for: localhost"],
        ),
        (
            "an expired certificate",
            &["localhost", "127.0.0.1"],
            Validity::Expired,
            "127.0.0.1",
            CertificateProblem::Expired,
            &["expired", "check this machine's date"],
        ),
        (
            "a not yet valid certificate",
            &["localhost", "127.0.0.1"],
            Validity::NotYetValid,
            "127.0.0.1",
            CertificateProblem::NotYetValid,
            &["not valid yet", "check this machine's date"],
        ),
    ];
    let ca = Ca::new("mailcat test CA");
    for (name, names, validity, host, expected, words) in cases {
        let case = Case::new(name);
        let leaf = ca.leaf(names, validity);
        let (problem, text) = certificate_error(&ca, &leaf, host).await;
        assert_eq!(problem, expected, "{case}");
        for word in words {
            assert!(text.contains(word), "{case}: {text}");
        }
    }
}

#[tokio::test]
async fn unknown_issuer() {
    let trusted = Ca::new("mailcat test CA");
    let other = Ca::new("someone else's CA");
    let leaf = other.leaf(&["localhost", "127.0.0.1"], Validity::Now);
    let (problem, text) = certificate_error(&trusted, &leaf, "127.0.0.1").await;
    let fingerprint = Fingerprint::of(&leaf.cert);
    assert_eq!(
        problem,
        CertificateProblem::UnknownIssuer {
            fingerprint: Some(fingerprint)
        }
    );
    assert!(text.contains("does not trust"), "{text}");
    assert!(text.contains(&fingerprint.to_string()), "{text}");
    assert!(text.contains("trust its CA"), "{text}");
    // A library names no CLI option; it says what can be done, typed, for the app to word.
    assert!(!text.contains("--"), "{text}");
    let error = Error::Certificate {
        host: "127.0.0.1".into(),
        problem,
    };
    assert_eq!(error.trust_hint(), Some(TrustHint::TrustCa));
}

#[tokio::test]
async fn self_signed_leaf() {
    let trusted = Ca::new("mailcat test CA");
    let leaf = Leaf::self_signed(&["localhost", "127.0.0.1"]);
    let (problem, text) = certificate_error(&trusted, &leaf, "127.0.0.1").await;
    let fingerprint = Fingerprint::of(&leaf.cert);
    assert_eq!(problem, CertificateProblem::SelfSigned { fingerprint });
    assert!(text.contains("self-signed"), "{text}");
    // What the owner compares on the server, and the two ways to trust exactly this certificate.
    assert!(text.contains(&fingerprint.to_string()), "{text}");
    assert!(
        text.contains("openssl x509 -noout -fingerprint -sha256"),
        "{text}"
    );
    assert!(!text.contains("--"), "{text}");
    assert!(text.contains("may be an attack"), "{text}");
    let error = Error::Certificate {
        host: "127.0.0.1".into(),
        problem,
    };
    assert_eq!(
        error.trust_hint(),
        Some(TrustHint::PinCertificate(fingerprint))
    );
}

#[tokio::test]
async fn self_signed_certificate_marked_as_a_ca_is_called_self_signed() {
    // `openssl req -x509` marks what it makes as a CA (CA:TRUE), which WebPKI reports as "CA
    // used as end entity". The person needs to hear "self-signed", with the fingerprint.
    let trusted = Ca::new("mailcat test CA");
    let leaf = Leaf::self_signed_with(&["localhost", "127.0.0.1"], Validity::Now, true);
    let (problem, text) = certificate_error(&trusted, &leaf, "127.0.0.1").await;
    assert_eq!(
        problem,
        CertificateProblem::SelfSigned {
            fingerprint: Fingerprint::of(&leaf.cert)
        },
        "{text}"
    );
}

/// Trusts nothing but `pinned` and the certificates in `ca_files`.
fn trusting(pinned: Vec<Fingerprint>, ca_files: Vec<std::path::PathBuf>) -> TlsSettings {
    TlsSettings {
        webpki_roots: false,
        native_roots: false,
        extra_ca_files: ca_files,
        pinned,
    }
}

/// Opens an implicit-TLS IMAP connection to a server presenting `leaf`, as `host`.
async fn open_as(leaf: &Leaf, host: &str, settings: &TlsSettings) -> Result<Opened, Error> {
    let server = Server::start(imap_script(leaf.server_config())).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::ImplicitTls, host);
    open(&endpoint, settings.client_config().unwrap()).await
}

#[tokio::test]
async fn a_pinned_certificate_is_trusted_as_it_is() {
    // threat model #19: pinned by its fingerprint, a self-signed certificate is trusted whatever
    // it says: here it is for another name and long expired, marked as a CA, and still opens.
    for marked_as_ca in [false, true] {
        let leaf = Leaf::self_signed_with(&["mail.home.lan"], Validity::Expired, marked_as_ca);
        let settings = trusting(vec![Fingerprint::of(&leaf.cert)], Vec::new());
        let opened = open_as(&leaf, "127.0.0.1", &settings)
            .await
            .unwrap_or_else(|e| panic!("CA:TRUE {marked_as_ca}: {e}"));
        assert_eq!(opened.greeting.text, "IMAP ready");
        let presented = opened.connection.connection().peer_certificate();
        assert_eq!(presented, Some(Fingerprint::of(&leaf.cert)));
    }
}

#[tokio::test]
async fn a_pin_trusts_that_certificate_only_and_a_changed_one_is_called_changed() {
    // Not "an untrusted authority": the certificate is not the pinned one. Both fingerprints
    // are shown, and re-pinning is not offered (it may be an attack).
    let pinned = Leaf::self_signed(&["localhost", "127.0.0.1"]);
    let other = Leaf::self_signed(&["localhost", "127.0.0.1"]);
    let settings = trusting(vec![Fingerprint::of(&pinned.cert)], Vec::new());
    let error = err(open_as(&other, "127.0.0.1", &settings).await);
    let text = error.to_string();
    match &error {
        Error::Certificate {
            problem:
                CertificateProblem::PinMismatch {
                    presented,
                    pinned: pins,
                },
            ..
        } => {
            assert_eq!(*presented, Fingerprint::of(&other.cert));
            assert_eq!(*pins, vec![Fingerprint::of(&pinned.cert)]);
        }
        other => panic!("expected PinMismatch, got {other:?}"),
    }
    assert!(text.contains("certificate changed"), "{text}");
    assert!(
        text.contains(&Fingerprint::of(&other.cert).to_string()),
        "{text}"
    );
    assert!(
        text.contains(&Fingerprint::of(&pinned.cert).to_string()),
        "{text}"
    );
    assert!(text.contains("attack"), "{text}");
    assert!(!text.contains("does not trust"), "{text}");
    assert_eq!(error.trust_hint(), None);
}

#[tokio::test]
async fn a_server_that_aborts_the_handshake_is_named_as_the_one_failing() {
    // OpenSMTPD under OpenSSL 3: the ClientHello is answered with a fatal internal_error alert,
    // or the connection is closed. The server's fault, not a certificate or settings problem.
    for (answer, said) in [
        (
            vec![Act::ReadAny, send(b"\x15\x03\x03\x00\x02\x02\x50")],
            "alert: internal error",
        ),
        (
            vec![Act::ReadAny, Act::CloseWrite],
            "it closed the connection",
        ),
    ] {
        let server = Server::start(answer).await;
        let endpoint = server.endpoint(Protocol::Smtp, Security::ImplicitTls, "127.0.0.1");
        let error = err(open(&endpoint, any_client_config()).await);
        drop(server);
        mailcat_tests::assert_matches!(error, Error::TlsAbortedByServer { .. });
        let text = error.to_string();
        assert!(text.contains(said), "{text}");
        assert!(text.contains("on the server's side"), "{text}");
        assert!(!text.contains("--"), "{text}");
    }
}

#[tokio::test]
async fn a_self_signed_certificate_in_the_ca_file_is_trusted() {
    // The owner of a self-signed server copies its certificate into a file, as mbsync's
    // CertificateFile allows; `openssl req -x509` certificates (CA:TRUE) included.
    for marked_as_ca in [false, true] {
        let leaf = Leaf::self_signed_with(&["mail.home.lan"], Validity::Now, marked_as_ca);
        let settings = trusting(Vec::new(), vec![write_pem(&leaf.pem)]);
        let opened = open_as(&leaf, "127.0.0.1", &settings)
            .await
            .unwrap_or_else(|e| panic!("CA:TRUE {marked_as_ca}: {e}"));
        assert_eq!(opened.greeting.text, "IMAP ready");
    }
}

#[tokio::test]
async fn self_signed_leaf_for_another_name_is_still_refused() {
    // Self-signed *and* for the wrong name: refused either way; never accepted.
    let trusted = Ca::new("mailcat test CA");
    let leaf = Leaf::self_signed(&["other.example.org"]);
    let (problem, _) = certificate_error(&trusted, &leaf, "127.0.0.1").await;
    mailcat_tests::assert_matches!(
        problem,
        CertificateProblem::UnknownIssuer { .. } | CertificateProblem::SelfSigned { .. }
    );
}

#[tokio::test]
async fn tls_version_too_old() {
    // A server that only speaks TLS 1.0/1.1 answers a 1.2+ ClientHello with a protocol_version
    // alert (threat model #17).
    let server = Server::start(vec![Act::ReadAny, send(b"\x15\x03\x01\x00\x02\x02\x46")]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::ImplicitTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    let received = server.received().await;
    assert_eq!(
        received.bytes.first(),
        Some(&0x16),
        "a ClientHello was sent"
    );
    mailcat_tests::assert_matches!(&error, Error::TlsVersionTooOld { host } if host == "127.0.0.1");
    let text = error.to_string();
    assert!(text.contains("TLS 1.2 or newer"), "{text}");
    assert!(text.contains("Ask the provider"), "{text}");
}

#[tokio::test]
async fn plaintext_server_on_an_implicit_tls_connection() {
    // threat model #12: the plaintext greeting is recognised and named, never used.
    let cases = [
        (Protocol::Imap, "* OK IMAP ready\r\n", "imap://", 993),
        (Protocol::Pop3, "+OK POP3 ready\r\n", "pop3://", 995),
        (Protocol::Smtp, "220 mx.example ESMTP\r\n", "smtp://", 465),
    ];
    for (protocol, greeting, scheme, tls_port) in cases {
        let server = Server::start(vec![send(greeting)]).await;
        let endpoint = server.endpoint(protocol, Security::ImplicitTls, "127.0.0.1");
        let error = err(open(&endpoint, any_client_config()).await);
        let received = server.received().await;
        assert_eq!(
            received.bytes.first(),
            Some(&0x16),
            "a ClientHello was sent"
        );
        let text = error.to_string();
        match error {
            Error::PlaintextServerOnTlsConnection {
                protocol: named,
                greeting: shown,
                starttls_url,
                tls_port: port,
                ..
            } => {
                assert_eq!(named, protocol);
                assert_eq!(shown, greeting.trim_end());
                assert_eq!(starttls_url, format!("{scheme}127.0.0.1:{}", endpoint.port));
                assert_eq!(port, tls_port);
            }
            other => panic!("{protocol}: expected PlaintextServerOnTlsConnection, got {other:?}"),
        }
        assert!(text.contains(&format!("plaintext {protocol}")), "{text}");
        assert!(text.contains("use STARTTLS"), "{text}");
        assert!(text.contains(scheme), "{text}");
    }
}

#[tokio::test]
async fn another_protocols_plaintext_server_on_an_implicit_tls_connection() {
    // imaps:// on the SMTP port: not "use STARTTLS on this port (imap://…:587)", which would
    // be IMAP to an SMTP server again, but the protocol that is there and the port to use.
    let server = Server::start(vec![send("220 mx.example ESMTP\r\n")]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::ImplicitTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    drop(server);
    match &error {
        Error::WrongProtocol {
            expected, found, ..
        } => assert_eq!((*expected, *found), (Protocol::Imap, Protocol::Smtp)),
        other => panic!("expected WrongProtocol, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("is SMTP, not IMAP"), "{text}");
    assert!(text.contains("(993)"), "{text}");
    assert!(!text.contains("imap://"), "{text}");
    assert!(error.is_config(), "{error:?}");
}

#[tokio::test]
async fn garbage_instead_of_a_server_hello_is_a_tls_error() {
    let server = Server::start(vec![Act::ReadAny, send("HTTP/1.1 400 Bad Request\r\n\r\n")]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::ImplicitTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    server.received().await;
    if !error.is_tls() {
        mailcat_tests::assert_matches!(error, Error::Io { .. }, "neither a TLS error nor I/O");
    }
}
