//! ImapSession against scripted servers that behave as foreign servers do where RFC 3501
//! leaves room or where they bend it: GNU Mailutils imap4d (a bare LF after AUTHENTICATE),
//! and its new mail reported only when IDLE ends, a mailbox another session holds (SELECT
//! answered READ-ONLY).
#![allow(clippy::unwrap_used)]

use crate::support::imap_script;

use mailcat_session::Plaintext;
use std::time::Duration;

use imap_script::{cmd, line, send, session};
use mailcat_session::imap::Unsolicited;
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
    s.login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
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
    let error = s
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("bare LF"), "{error}");
    drop(s);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_is_refreshed_after_a_quiet_spell_when_asked_and_a_keepalive_defers_it() {
    // GNU Mailutils reports new mail only when IDLE ends (here: with the answer to DONE).
    let (mut s, server, _) = session(
        "IMAP4rev1 AUTH=PLAIN",
        vec![
            cmd("AUTHENTICATE PLAIN", "+ \r\n"),
            line(
                PLAIN_B64,
                "{tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n",
            ),
            cmd("IDLE", "+ idling\r\n"),
            line("DONE", "* 2 EXISTS\r\n{tag} OK IDLE Completed\r\n"),
            cmd("IDLE", "+ idling\r\n"),
            imap_script::Step::Sleep(Duration::from_secs(100)),
            send("* OK Still here\r\n"),
            line("DONE", "* 3 EXISTS\r\n{tag} OK IDLE Completed\r\n"),
        ],
    )
    .await;
    s.login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    s.set_idle_quiet_refresh(Some(Duration::from_secs(120)));
    let start = tokio::time::Instant::now();
    let events = s.idle(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(events, vec![Unsolicited::Exists(2)]);
    assert_eq!(start.elapsed(), Duration::from_secs(120));
    // A keep-alive after 100 s starts the quiet interval again: DONE at 220 s.
    let start = tokio::time::Instant::now();
    let events = s.idle(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(events, vec![Unsolicited::Exists(3)]);
    assert_eq!(start.elapsed(), Duration::from_secs(220));
    drop(s);
    server.await.unwrap();
}
