//! An IMAP greeting that lists the capabilities (`* OK [CAPABILITY …]`, RFC 9051 §7.1) saves
//! the CAPABILITY round trip, but only over implicit TLS: before STARTTLS anyone on the path
//! could have written the greeting, and the capabilities are asked for as ever.

use super::support::*;
use mailcat_transport::{Protocol, Security, Step};

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ID] ready\r\n";

#[tokio::test]
async fn over_implicit_tls_the_greetings_capabilities_are_used_without_asking() {
    let (client, server_config) = valid_pki();
    let server = Server::start(vec![Act::StartTls(server_config), send(GREETING)]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::ImplicitTls, "127.0.0.1");
    let mut reports = Vec::new();
    let opened = mailcat_session::open(&endpoint, client, &quick(), &mut |r| reports.push(r))
        .await
        .unwrap();
    assert!(opened.capabilities.has("SASL-IR") && opened.capabilities.has("ID"));
    drop(opened);
    let received = server.received().await;
    assert_eq!(received.text(), "", "nothing asked");
    // The account check says where they came from: no query was made.
    let step = reports
        .iter()
        .find(|r| r.step == Step::Capabilities)
        .unwrap();
    assert!(
        step.detail
            .starts_with("listed in the greeting: IMAP4rev1 SASL-IR"),
        "{step:?}"
    );
}

#[tokio::test]
async fn in_plaintext_the_capabilities_are_asked_for_all_the_same() {
    let server = Server::start(vec![
        send(GREETING),
        expect("A0001 CAPABILITY"),
        send("* CAPABILITY IMAP4rev1 IDLE\r\nA0001 OK done\r\n"),
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::DangerousPlaintext, "127.0.0.1");
    let opened = open(&endpoint, any_client_config()).await.unwrap();
    assert!(opened.capabilities.has("IDLE") && !opened.capabilities.has("SASL-IR"));
    drop(opened);
    assert_eq!(server.received().await.text(), "A0001 CAPABILITY\r\n");
}
