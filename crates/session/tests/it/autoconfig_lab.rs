//! Autoconfig's last stage against the lab: a guessed server counts only when it answers as a
//! mail server of the protocol guessed, over TLS.
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mailcat_session::autoconfig::probe;
use mailcat_tests::lab::Lab;
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};

#[tokio::test]
async fn only_a_server_of_the_guessed_protocol_is_confirmed() {
    let lab = Lab::from_env();
    let at = |protocol, host: &str, security, port| {
        Endpoint::new(protocol, host, security).with_port(port)
    };
    let candidates = [
        // Right: IMAP with implicit TLS, certificate for this name.
        at(
            Protocol::Imap,
            &lab.tls_name,
            Security::ImplicitTls,
            lab.imaps_port,
        ),
        // A POP3 guess on the IMAP port: another protocol answers.
        at(
            Protocol::Pop3,
            &lab.tls_name,
            Security::ImplicitTls,
            lab.imaps_port,
        ),
        // Nothing listens.
        at(Protocol::Imap, &lab.tls_name, Security::ImplicitTls, 1),
        // Right: submission with STARTTLS.
        at(
            Protocol::Smtp,
            &lab.tls_name,
            Security::StartTls,
            lab.submission_port,
        ),
    ];
    let tls = TlsSettings::only_ca_file(&lab.ca_file)
        .client_config()
        .unwrap();
    let outcomes = probe::confirm(
        &candidates,
        tls,
        &Timeouts::uniform(Duration::from_secs(5)),
        Duration::from_secs(10),
    )
    .await;
    let confirmed: Vec<bool> = outcomes.iter().map(|(_, o)| o.is_ok()).collect();
    assert_eq!(confirmed, [true, false, false, true], "{outcomes:#?}");
    let why = |i: usize| outcomes[i].1.clone().unwrap_err();
    assert!(why(1).contains("IMAP"), "{}", why(1));
    assert!(why(2).contains("refused"), "{}", why(2));
}
