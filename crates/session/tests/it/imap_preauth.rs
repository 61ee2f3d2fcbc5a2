//! A server that greets with PREAUTH (RFC 3501 §7.1.4: a connection it has authenticated by
//! other means) is in the authenticated state already: the account's credential is not sent,
//! and the session works. Over a loopback socket, through `Account::receive`.

#![allow(clippy::unwrap_used)]

use mailcat_session::{ListDetail, Plaintext};

use mailcat_session::{Account, Credential};
use mailcat_tests::script::{send, serve, serve_tcp, Answer};
use mailcat_transport::{Endpoint, Security};

#[tokio::test]
async fn a_preauth_greeting_skips_the_login_and_the_session_works() {
    let server = serve_tcp(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 AUTH=PLAIN] welcome, trusted client\r\n"),
        serve(|line| {
            let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
            let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
            Answer::reply(match verb.as_str() {
                "LOGIN" | "AUTHENTICATE" => format!("{tag} BAD already authenticated\r\n"),
                "EXAMINE" | "SELECT" => format!(
                    "* 0 EXISTS\r\n* OK [UIDVALIDITY 9] ok\r\n{tag} OK [READ-ONLY] done\r\n"
                ),
                "LOGOUT" => format!("* BYE bye\r\n{tag} OK done\r\n"),
                _ => format!("{tag} OK done\r\n"),
            })
        }),
    ])
    .await;
    let port = server.port();
    let seen = server.live();

    let mut incoming = Endpoint::parse_url(&format!("imap://127.0.0.1:{port}")).unwrap();
    incoming.security = Security::DangerousPlaintext;
    let outgoing = Endpoint::parse_url("smtp://127.0.0.1:1").unwrap();
    let mut account = Account::new(
        "alice@example.test",
        Credential::password("alice@example.test", "secret"),
        incoming,
        outgoing,
    );
    account.plaintext = Plaintext::DangerouslyAllow;
    let mut inbox = account.receive().await.unwrap();
    assert!(inbox
        .list(None, ListDetail::Sizes)
        .await
        .unwrap()
        .is_empty());
    inbox.close().await.unwrap();

    let commands = seen.lock().unwrap().clone();
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("LOGIN") || c.contains("AUTHENTICATE") || c.contains("secret")),
        "no credential goes to a PREAUTH connection: {commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.contains("EXAMINE INBOX")),
        "{commands:?}"
    );
}
