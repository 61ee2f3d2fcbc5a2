//! Autoconfig's stages together, against a DNS server and an HTTPS server in the test: which
//! stage wins for each role, what the user is told about each, and that silent servers cost
//! no more than the stage limit.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mailcat_session::autoconfig::providers::SignIn;
use mailcat_session::autoconfig::{discover, Discovery, Source, Stage};
use mailcat_tests::dns_server::{Answer, DnsServer};
use mailcat_tests::https_server::{HttpsServer, Route};
use mailcat_transport::{Protocol, Security, TlsSettings};

const EXAMPLE_CONFIG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    <displayName>Example Mail</displayName>
    <incomingServer type="imap">
      <hostname>imap.example.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.example.test</hostname>
      <port>110</port>
      <socketType>plain</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.test</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILLOCALPART%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#;

fn srv(priority: u16, port: u16, target: &str) -> Answer {
    Answer::Srv {
        priority,
        weight: 0,
        port,
        target: target.into(),
    }
}

/// A search that uses only the servers of the test, and does not guess.
fn discovery(dns: &DnsServer, web: &HttpsServer) -> Discovery {
    Discovery {
        tls: TlsSettings::only_ca_file(web.ca_file()),
        dns_server: Some(dns.addr()),
        url_base: Some(format!("https://localhost:{}", web.port())),
        stage_timeout: Duration::from_secs(3),
        probe: false,
    }
}

#[tokio::test]
async fn the_domains_own_file_wins_over_dns() {
    let web = HttpsServer::start(vec![Route {
        headers: vec![("Content-Type".into(), "text/xml".into())],
        ..Route::ok(
            "/autoconfig.example.test/mail/config-v1.1.xml?emailaddress=alice%40example.test",
            EXAMPLE_CONFIG,
        )
    }]);
    let dns = DnsServer::start(vec![(
        "_imaps._tcp.example.test".into(),
        srv(0, 993, "other.example.test"),
    )]);
    let found = discover("alice@example.test", &discovery(&dns, &web))
        .await
        .unwrap();
    assert_eq!(found.provider.as_deref(), Some("Example Mail"));
    // The plain-text POP3 server is left out, and the user is told why.
    assert_eq!(found.incoming.len(), 1, "{found:?}");
    let imap = &found.incoming[0];
    assert_eq!(imap.endpoint.url(), "imaps://imap.example.test:993");
    assert_eq!(imap.login.as_deref(), Some("alice"));
    mailcat_tests::assert_matches!(&imap.source, Source::AutoconfigFile { url } if url.contains("autoconfig.example.test"));
    assert_eq!(
        found.outgoing[0].endpoint.url(),
        "smtp://smtp.example.test:587"
    );
    assert!(
        found.notes.iter().any(|n| n.contains("plain")),
        "{:?}",
        found.notes
    );
    // Every stage ran and says what it saw; the SRV record was found but not needed.
    let stages: Vec<(Stage, bool)> = found.attempts.iter().map(|a| (a.stage, a.found)).collect();
    assert_eq!(
        stages,
        [
            (Stage::ProviderTable, false),
            (Stage::AutoconfigFile, true),
            (Stage::Srv, true),
            (Stage::MxMatch, false),
        ]
    );
}

#[tokio::test]
async fn srv_records_give_servers_in_rfc_8314_order_and_flag_other_domains() {
    let web = HttpsServer::start(Vec::new());
    let dns = DnsServer::start(vec![
        (
            "_imap._tcp.example.test".into(),
            srv(0, 143, "mail.example.test"),
        ),
        (
            "_imaps._tcp.example.test".into(),
            srv(10, 993, "mail.example.test"),
        ),
        (
            "_imaps._tcp.example.test".into(),
            srv(5, 1993, "imap.example.test"),
        ),
        ("_pop3s._tcp.example.test".into(), srv(0, 0, ".")),
        (
            "_submission._tcp.example.test".into(),
            srv(0, 587, "smtp.hoster.test"),
        ),
    ]);
    let found = discover("bob@example.test", &discovery(&dns, &web))
        .await
        .unwrap();
    let incoming: Vec<String> = found.incoming.iter().map(|s| s.endpoint.url()).collect();
    // Implicit TLS before STARTTLS whatever the priorities; by priority within a service; the
    // "." target (no POP3 here) gives no server.
    assert_eq!(
        incoming,
        [
            "imaps://imap.example.test:1993",
            "imaps://mail.example.test:993",
            "imap://mail.example.test:143"
        ]
    );
    let smtp = &found.outgoing[0];
    assert_eq!(
        (
            smtp.endpoint.protocol,
            smtp.endpoint.security,
            smtp.endpoint.port
        ),
        (Protocol::Smtp, Security::StartTls, 587)
    );
    assert!(
        found
            .notes
            .iter()
            .any(|n| n.contains("smtp.hoster.test") && n.contains("not authenticated")),
        "{:?}",
        found.notes
    );
    let file = &found.attempts[1];
    assert_eq!((file.stage, file.found), (Stage::AutoconfigFile, false));
    assert!(file.detail.contains("404"), "{}", file.detail);
}

#[tokio::test]
async fn a_custom_domain_at_microsoft_365_is_known_by_its_mx() {
    let web = HttpsServer::start(Vec::new());
    let dns = DnsServer::start(vec![(
        "contoso.test".into(),
        Answer::Mx {
            preference: 0,
            exchange: "contoso-test.mail.protection.outlook.com".into(),
        },
    )]);
    let found = discover("carol@contoso.test", &discovery(&dns, &web))
        .await
        .unwrap();
    assert_eq!(found.provider.as_deref(), Some("Microsoft 365"));
    assert_eq!(found.incoming[0].endpoint.host, "outlook.office365.com");
    assert_eq!(found.outgoing[0].endpoint.host, "smtp.office365.com");
    assert_eq!(found.sign_in, Some(SignIn::OAuth2Only));
    mailcat_tests::assert_matches!(&found.incoming[0].source, Source::MxMatch { exchange } if exchange == "contoso-test.mail.protection.outlook.com");
}

#[tokio::test]
async fn silent_servers_cost_one_stage_limit_and_say_so() {
    let web = HttpsServer::silent();
    let dns = DnsServer::silent();
    let mut how = discovery(&dns, &web);
    how.stage_timeout = Duration::from_millis(400);
    // A hang would be caught here; the stages must end on their own limit.
    let found = tokio::time::timeout(Duration::from_secs(20), discover("dan@example.test", &how))
        .await
        .expect("discover ends")
        .unwrap();
    assert!(found.incoming.is_empty() && found.outgoing.is_empty());
    for attempt in &found.attempts[1..] {
        assert!(!attempt.found);
        assert!(!attempt.detail.is_empty(), "{attempt:?}");
    }
    assert!(dns.queries() > 0, "the DNS server was asked");
}
