//! The transport against the real servers of the lab (Dovecot, Postfix): every endpoint connects
//! with the security its URL asks for, over TLS verified against the lab's CA, and STARTTLS
//! replaces what the server said before TLS with what it says after.

use std::time::Duration;

use mailcat_session::{open, Opened};
use mailcat_tests::lab::Lab;
use mailcat_transport::{
    CertificateProblem, Endpoint, Error, Security, Step, Timeouts, TlsSettings,
};

fn timeouts() -> Timeouts {
    Timeouts::uniform(Duration::from_secs(10))
}

async fn open_url(url: &str, tls: TlsSettings) -> (Result<Opened, Error>, Vec<Step>) {
    let endpoint = Endpoint::parse_url(url).expect("lab URL");
    let config = tls.client_config().expect("TLS config");
    let mut steps = Vec::new();
    let result = open(&endpoint, config, &timeouts(), &mut |report| {
        steps.push(report.step);
    })
    .await;
    (result, steps)
}

#[tokio::test]
async fn every_endpoint_connects_with_the_right_security() {
    let lab = Lab::from_env();
    for host in [
        lab.host.as_str(),
        lab.strict_host.as_str(),
        lab.tls_name.as_str(),
    ] {
        for (url, protocol, implicit) in lab.urls(host) {
            let (result, steps) = open_url(&url, TlsSettings::only_ca_file(&lab.ca_file)).await;
            let opened = result.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(opened.connection.connection().is_tls(), "{url}: not TLS");
            let expected: &[Step] = if implicit {
                &[
                    Step::Resolve,
                    Step::Connect,
                    Step::TlsHandshake,
                    Step::Greeting,
                    Step::Capabilities,
                ]
            } else {
                &[
                    Step::Resolve,
                    Step::Connect,
                    Step::Greeting,
                    Step::Capabilities,
                    Step::StartTls,
                    Step::Capabilities,
                ]
            };
            assert_eq!(steps, expected, "{url}");
            assert_eq!(opened.capabilities.protocol.name(), protocol);
            assert!(
                !opened.capabilities.offers_starttls(),
                "{url}: STARTTLS offered again over TLS"
            );
            let can_log_in = match protocol {
                "IMAP" => {
                    opened.capabilities.has("AUTH")
                        || opened
                            .capabilities
                            .items
                            .iter()
                            .any(|c| c.starts_with("AUTH="))
                }
                "POP3" => opened.capabilities.has("SASL"),
                _ => opened.capabilities.has("AUTH"),
            };
            assert!(
                can_log_in,
                "{url}: no way to log in offered over TLS: {:?}",
                opened.capabilities.items
            );
            opened.connection.close().await;
        }
    }
}

#[tokio::test]
async fn strict_host_offers_login_only_after_starttls() {
    // Dovecot treats 127.0.0.2 as remote: LOGINDISABLED before TLS, AUTH=PLAIN after (SECURITY #9).
    let lab = Lab::from_env();
    let url = format!("imap://{}:{}", lab.strict_host, lab.imap_port);
    let endpoint = Endpoint::parse_url(&url).expect("URL");
    let config = TlsSettings::only_ca_file(&lab.ca_file)
        .client_config()
        .expect("config");
    let mut details = Vec::new();
    let opened = open(&endpoint, config, &timeouts(), &mut |r| {
        details.push((r.step, r.detail.clone()));
    })
    .await
    .expect("opens");
    let before = &details
        .iter()
        .find(|(s, _)| *s == Step::Capabilities)
        .expect("caps before")
        .1;
    assert!(before.contains("LOGINDISABLED"), "before TLS: {before}");
    assert!(
        !opened.capabilities.has("LOGINDISABLED"),
        "after TLS: {:?}",
        opened.capabilities.items
    );
    assert!(
        opened.capabilities.items.iter().any(|c| c == "AUTH=PLAIN"),
        "{:?}",
        opened.capabilities.items
    );
    opened.connection.close().await;
}

#[tokio::test]
async fn wrong_tls_mode_gives_its_specific_error() {
    let lab = Lab::from_env();
    let tls = || TlsSettings::only_ca_file(&lab.ca_file);
    // Implicit TLS to the STARTTLS port: the server greets in plaintext.
    let (result, _) = open_url(&format!("imaps://{}:{}", lab.host, lab.imap_port), tls()).await;
    assert!(
        matches!(result, Err(Error::PlaintextServerOnTlsConnection { .. })),
        "{result:?}"
    );
    let (result, _) = open_url(
        &format!("smtps://{}:{}", lab.host, lab.submission_port),
        tls(),
    )
    .await;
    assert!(
        matches!(result, Err(Error::PlaintextServerOnTlsConnection { .. })),
        "{result:?}"
    );
    // STARTTLS to the implicit-TLS port: the server waits for a ClientHello and no greeting
    // comes; a TLS probe finds out why and names the URL to use, instead of a timeout.
    let endpoint =
        Endpoint::parse_url(&format!("pop3://{}:{}", lab.host, lab.pop3s_port)).expect("URL");
    let config = tls().client_config().expect("config");
    let result = open(
        &endpoint,
        config,
        &Timeouts::uniform(Duration::from_secs(5)),
        &mut |_| {},
    )
    .await;
    match result {
        Err(Error::TlsServerOnPlaintextConnection { tls_url, .. }) => {
            assert_eq!(tls_url, format!("pop3s://{}:{}", lab.host, lab.pop3s_port));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_port_for_the_protocol_names_the_protocol_found() {
    let lab = Lab::from_env();
    let (result, _) = open_url(
        &format!("pop3s://{}:{}", lab.host, lab.imaps_port),
        TlsSettings::only_ca_file(&lab.ca_file),
    )
    .await;
    match result {
        Err(e @ Error::WrongProtocol { .. }) => {
            let text = e.to_string();
            assert!(text.contains("is IMAP, not POP3"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn untrusted_ca_is_refused_before_any_command() {
    let lab = Lab::from_env();
    // Only the public roots: the lab's CA is unknown to them.
    let settings = TlsSettings {
        extra_ca_files: Vec::new(),
        ..TlsSettings::default()
    };
    for (url, _, _) in lab.urls(&lab.host) {
        let (result, _) = open_url(&url, settings.clone()).await;
        match result {
            Err(Error::Certificate {
                problem:
                    CertificateProblem::UnknownIssuer {
                        fingerprint: Some(_),
                    },
                ..
            }) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
    let endpoint =
        Endpoint::parse_url(&format!("imaps://{}:{}", lab.host, lab.imaps_port)).expect("URL");
    assert_eq!(endpoint.security, Security::ImplicitTls);
}
