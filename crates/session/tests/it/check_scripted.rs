//! The account check against scripted servers: a failing step is named for what it was
//! (capability query, login), never the catch-all "server response".
#![allow(clippy::unwrap_used)]

use mailcat_session::Plaintext;
use std::time::Duration;

use mailcat_session::check::{self, Options, Progress, Role};
use mailcat_session::{Account, Credential};
use mailcat_tests::script::{cmd, send, serve_tcp, Step};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts};

/// A plaintext IMAP server for one connection: greets, answers CAPABILITY if `capability`,
/// and then reads without answering, so the next step times out.
async fn stalling_imap_server(capability: bool) -> u16 {
    let mut script = vec![send("* OK ready\r\n")];
    if capability {
        script.push(cmd(
            "CAPABILITY",
            "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n",
        ));
    }
    script.push(Step::Hang);
    serve_tcp(script).await.port()
}

/// The name of the step the check reports as failed.
async fn failed_step(capability: bool) -> String {
    let port = stalling_imap_server(capability).await;
    let incoming =
        Endpoint::new(Protocol::Imap, "127.0.0.1", Security::DangerousPlaintext).with_port(port);
    let outgoing = Endpoint::new(Protocol::Smtp, "127.0.0.1", Security::DangerousPlaintext);
    let mut account = Account::new(
        "alice@example.test",
        Credential::password("alice@example.test", "pw"),
        incoming.clone(),
        outgoing,
    );
    account.plaintext = Plaintext::DangerouslyAllow;
    account.timeouts = Timeouts::uniform(Duration::from_millis(500));
    let mut failed = Vec::new();
    let servers = [(Role::Incoming, incoming)];
    let options = Options::default();
    let mut observer = |progress: Progress<'_>| {
        if let Progress::Failed { step, .. } = progress {
            failed.push(step.to_owned());
        }
    };
    let run = check::check(&account, &servers, &options, &mut observer);
    tokio::time::timeout(Duration::from_secs(8), run)
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    failed.remove(0)
}

#[tokio::test]
async fn a_silent_capability_query_is_named() {
    assert_eq!(failed_step(false).await, "capability query");
}

#[tokio::test]
async fn a_server_silent_after_the_login_command_fails_the_login_step() {
    assert_eq!(failed_step(true).await, "login");
}
