//! ImapSession against scripted servers that behave as foreign servers do where RFC 3501
//! leaves room or where they bend it: GNU Mailutils imap4d (a bare LF after AUTHENTICATE),
//! Courier (no UIDNEXT on SELECT), a mailbox another session holds (SELECT answered READ-ONLY).
#![allow(clippy::unwrap_used)]

#[path = "support/imap_script.rs"]
mod imap_script;

use imap_script::{cmd, line, session};
use mailcat_session::Credential;

const PLAIN_B64: &str = "AGFsaWNlAHMzY3JldA==";

fn alice() -> Credential {
    Credential::password("alice", "s3cret")
}

#[tokio::test]
async fn mailutils_bare_lf_after_authenticate_is_a_login() {
    // GNU Mailutils 3.15 imap4d, default set-up: the tagged OK ends with LF alone.
    let (mut s, server, _) = session(
        "IMAP4rev1 AUTH=PLAIN",
        vec![
            cmd("AUTHENTICATE PLAIN", "+ \r\n"),
            line(PLAIN_B64, "{tag} OK AUTHENTICATE Completed\n"),
            cmd(
                "CAPABILITY",
                "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK CAPABILITY Completed\n",
            ),
            cmd(
                "LOGOUT",
                "* BYE Session terminating.\r\n{tag} OK LOGOUT Completed\n",
            ),
        ],
    )
    .await;
    s.login(&alice(), true).await.unwrap();
    s.logout().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_bare_lf_inside_a_quoted_string_is_still_refused() {
    let (mut s, server, _) = session(
        "IMAP4rev1 AUTH=PLAIN",
        vec![
            cmd("AUTHENTICATE PLAIN", "+ \r\n"),
            line(
                PLAIN_B64,
                "* OK [ALERT] \"text\n{tag} OK fake\r\n{tag} OK done\r\n",
            ),
        ],
    )
    .await;
    let error = s.login(&alice(), true).await.unwrap_err();
    assert!(error.to_string().contains("bare LF"), "{error}");
    drop(s);
    server.await.unwrap();
}
