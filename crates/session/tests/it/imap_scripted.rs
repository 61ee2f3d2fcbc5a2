//! ImapSession against scripted servers: every command's happy path and its NO/BAD/BYE
//! replies, unsolicited responses, one-attempt authentication, streamed and pipelined bodies,
//! IDLE refresh on a paused clock.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use crate::support::case::Case;
use crate::support::imap_script;
use crate::support::scram_server;

use mailcat_session::{ListDetail, Plaintext};
use std::time::Duration;

use imap_script::{cmd, cmd_bytes, cmd_fn, line, line_fn, send, session, session_with, Step};
use mailcat_codec::imap::command::{Date, DateTime, Mailbox, SearchKey, StoreMode};
use mailcat_codec::imap::{Flag, NameAttribute, SequenceSet, UidSet};
use mailcat_session::imap::{AppendUid, SummaryRequest, Unsolicited};
use mailcat_session::{Credential, Error};
use mailcat_transport::Timeouts;

const PLAIN_IR: &str = "AUTHENTICATE PLAIN AGFsaWNlAHMzY3JldA==";
const PLAIN_B64: &str = "AGFsaWNlAHMzY3JldA==";

fn alice() -> Credential {
    Credential::password("alice", "s3cret")
}

fn count(received: &imap_script::Received, word: &str) -> usize {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.split(' ').nth(1) == Some(word))
        .count()
}

/// A session logged in with SASL-IR PLAIN; the OK carries the new capabilities.
async fn logged_in(
    caps_after: &str,
    steps: Vec<Step>,
) -> (
    mailcat_session::ImapSession<tokio::io::DuplexStream>,
    tokio::task::JoinHandle<()>,
    imap_script::Received,
) {
    let mut all = vec![cmd(
        PLAIN_IR,
        &format!("{{tag}} OK [CAPABILITY {caps_after}] Logged in\r\n"),
    )];
    all.extend(steps);
    let (mut s, server, received) = session("IMAP4rev1 SASL-IR AUTH=PLAIN", all).await;
    s.login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    (s, server, received)
}

#[tokio::test]
async fn sasl_ir_login_takes_capabilities_from_the_ok_then_id_and_enable() {
    let (mut s, server, received) = session(
        "IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN LITERAL+",
        vec![
            cmd(PLAIN_IR, "* CAPABILITY IMAP4rev1 ID ENABLE UTF8=ACCEPT IDLE MOVE UIDPLUS\r\n{tag} OK Logged in\r\n"),
            cmd(
                &format!("ID (\"name\" \"mailcat\" \"version\" \"{}\")", env!("CARGO_PKG_VERSION")),
                "* ID (\"name\" \"Dovecot\")\r\n{tag} OK ID completed\r\n",
            ),
            cmd("ENABLE UTF8=ACCEPT", "* ENABLED UTF8=ACCEPT\r\n{tag} OK Enabled\r\n"),
            cmd("SELECT \"Entwürfe\"", "* 0 EXISTS\r\n{tag} OK [READ-WRITE] Selected\r\n"),
        ],
    )
    .await;
    s.login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    assert!(s.has_capability("IDLE") && s.has_capability("MOVE"));
    assert!(
        !s.has_capability("AUTH=PLAIN"),
        "capabilities were replaced after login"
    );
    // UTF8=ACCEPT on: the name goes as UTF-8, not modified UTF-7.
    s.select(&Mailbox::new("Entwürfe").unwrap()).await.unwrap();
    drop(s);
    server.await.unwrap();
    assert_eq!(
        count(&received, "CAPABILITY"),
        1,
        "no CAPABILITY after login"
    );
}

#[tokio::test]
async fn the_id_after_login_is_not_waited_for_and_its_answer_is_no_news() {
    // The server answers ID only once the next command came: a client waiting for it would
    // never send that command.
    let (mut s, server, received) = session(
        "IMAP4rev1 SASL-IR AUTH=PLAIN",
        vec![
            cmd(PLAIN_IR, "{tag} OK [CAPABILITY IMAP4rev1 ID] Logged in\r\n"),
            cmd(
                &format!(
                    "ID (\"name\" \"mailcat\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ),
                "",
            ),
            cmd(
                "EXAMINE INBOX",
                "* ID (\"name\" \"Dovecot\")\r\nA0003 NO not today\r\n* 2 EXISTS\r\n\
                 * OK [UIDVALIDITY 7] UIDs valid\r\n{tag} OK [READ-ONLY] Examined\r\n",
            ),
        ],
    )
    .await;
    s.login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    let state = s.examine(&Mailbox::inbox()).await.unwrap();
    assert_eq!(state.exists, 2);
    assert_eq!(s.take_unsolicited(), vec![], "the ID answer is not news");
    drop(s);
    server.await.unwrap();
    let lines = received.lock().unwrap().clone();
    assert_eq!(
        lines.len(),
        4,
        "CAPABILITY, AUTHENTICATE, ID, EXAMINE: {lines:?}"
    );
}

/// A login that goes through: `steps` are the mechanism's exchange (and the CAPABILITY after
/// it, where the OK carries none), then a NOOP.
struct LoginCase {
    name: &'static str,
    caps: &'static str,
    credential: Credential,
    steps: Vec<Step>,
    /// The command that logs in (`AUTHENTICATE` or `LOGIN`), sent once.
    command: &'static str,
    /// How many lines the client sent in all, the first CAPABILITY and the NOOP included.
    lines: usize,
}

#[tokio::test]
async fn each_mechanism_logs_in_once_and_takes_the_capabilities_after() {
    let cases = vec![
        LoginCase {
            name:
                "without SASL-IR, PLAIN waits for the continuation and asks the capabilities after",
            caps: "IMAP4rev1 AUTH=PLAIN",
            credential: alice(),
            steps: vec![
                cmd("AUTHENTICATE PLAIN", "+ \r\n"),
                line(PLAIN_B64, "{tag} OK Logged in\r\n"),
                cmd("CAPABILITY", "* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK\r\n"),
            ],
            command: "AUTHENTICATE",
            lines: 5,
        },
        LoginCase {
            name: "SCRAM with the right server-final message logs in",
            caps: SCRAM_CAPS,
            credential: scram_user(),
            steps: vec![
                cmd_fn(imap_server_first),
                line_fn(|l| format!("+ {}\r\n", scram_server::server_final(l))),
                line("", "{tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"),
            ],
            command: "AUTHENTICATE",
            lines: 5,
        },
        LoginCase {
            // CR/LF in the password: the encoder must use a literal, and (without LITERAL+)
            // send it only once the server says `+`.
            name: "a LOGIN literal is sent after the continuation",
            caps: "IMAP4rev1",
            credential: Credential::password("alice", "pw\r\nx"),
            steps: vec![
                cmd("LOGIN alice {5}", "+ Ready for literal data\r\n"),
                line("pw", ""),
                line("x", "{tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"),
            ],
            command: "LOGIN",
            lines: 5,
        },
    ];
    for LoginCase {
        name,
        caps,
        credential,
        mut steps,
        command,
        lines,
    } in cases
    {
        steps.push(cmd("NOOP", "{tag} OK NOOP completed\r\n"));
        let (mut s, server, received) = session(caps, steps).await;
        let case = Case::with_live(name, received.clone());
        s.login(&credential, Plaintext::DangerouslyAllow)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert!(s.has_capability("IDLE"), "{case}: the capabilities after");
        assert!(
            !s.has_capability("AUTH=PLAIN"),
            "{case}: capabilities were replaced after login"
        );
        s.noop().await.unwrap_or_else(|e| panic!("{case}: {e:?}"));
        drop(s);
        server.await.unwrap();
        assert_eq!(count(&received, command), 1, "{case}");
        assert_eq!(received.lock().unwrap().len(), lines, "{case}");
    }
}

#[tokio::test]
async fn a_login_that_sent_nothing_leaves_the_one_attempt() {
    // A password PLAIN cannot carry (a NUL) is refused before anything goes out: the one
    // attempt is still there for the right credential (the login preamble's rule, the same for
    // IMAP, POP3 and SMTP).
    let (mut s, server, received) = session(
        "IMAP4rev1 SASL-IR AUTH=PLAIN",
        vec![cmd(
            PLAIN_IR,
            "{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n",
        )],
    )
    .await;
    let e = s
        .login(
            &Credential::password("alice", "s3\0cret"),
            Plaintext::DangerouslyAllow,
        )
        .await
        .unwrap_err();
    assert!(!e.is_auth(), "{e:?}");
    s.login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(s);
    server.await.unwrap();
    assert_eq!(count(&received, "AUTHENTICATE"), 1);
}

/// The lines the client sent, the first CAPABILITY left out, against `expected`, where a
/// line ending in `…` stands for any line that begins with what precedes it.
fn assert_sent(received: &imap_script::Received, expected: &[&str], case: &Case) {
    let lines = received.lock().unwrap().clone();
    let after = lines.get(1..).unwrap_or_default();
    let matches = after.len() == expected.len()
        && after
            .iter()
            .zip(expected)
            .all(|(l, e)| match e.strip_suffix('…') {
                Some(prefix) => l.starts_with(prefix),
                None => l == e,
            });
    assert!(
        lines.first().map(String::as_str) == Some("A0001 CAPABILITY") && matches,
        "{case}: the client sent {lines:?}, not CAPABILITY then {expected:?}"
    );
}

#[tokio::test]
async fn a_refused_login_is_one_attempt_only() {
    // A listener where the referral points: it must get no connection.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = elsewhere.local_addr().unwrap().port();
    let failed = "{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
    let plain_ir = format!("A0002 {PLAIN_IR}");
    let cases: [(&str, &str, Credential, Step, fn(&Error), &[&str]); 5] = [
        (
            "a refused SASL login: no second mechanism",
            "IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN",
            alice(),
            cmd(PLAIN_IR, failed),
            |e| {
                mailcat_tests::assert_matches!(e, Error::AuthenticationFailed { .. });
                assert!(e.is_auth(), "{e:?}");
            },
            &[plain_ir.as_str()],
        ),
        (
            "the LOGIN command only without SASL, its refusal counted once",
            "IMAP4rev1",
            alice(),
            cmd("LOGIN alice s3cret", failed),
            |e| {
                mailcat_tests::assert_matches!(
                    e,
                    Error::AuthenticationFailed {
                        mechanism: "LOGIN command",
                        ..
                    }
                );
            },
            &["A0002 LOGIN alice s3cret"],
        ),
        (
            "an unavailable login is temporary",
            "IMAP4rev1 SASL-IR AUTH=PLAIN",
            alice(),
            cmd(PLAIN_IR, "{tag} NO [UNAVAILABLE] Try later\r\n"),
            |e| {
                mailcat_tests::assert_matches!(e, Error::AuthenticationUnavailable { .. });
                assert!(e.is_transient(), "{e:?}");
            },
            &[plain_ir.as_str()],
        ),
        (
            "a referral is not followed and the login is one attempt",
            "IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN",
            alice(),
            cmd(
                PLAIN_IR,
                &format!(
                    "{{tag}} NO [REFERRAL imap://alice@127.0.0.1:{port}/] Log in over there\r\n"
                ),
            ),
            |e| assert!(e.is_auth(), "{e:?}"),
            &[plain_ir.as_str()],
        ),
        (
            // CR/LF in the password: a literal, which waits for the server's `+`.
            "a NO instead of the literal's continuation is a refusal, the literal unsent",
            "IMAP4rev1",
            Credential::password("alice", "pw\r\nx"),
            cmd("LOGIN alice {5}", failed),
            |e| mailcat_tests::assert_matches!(e, Error::AuthenticationFailed { .. }),
            &["A0002 LOGIN alice {5}"],
        ),
    ];
    for (name, caps, credential, reply, check, sent) in cases {
        let (mut s, server, received) = session(caps, vec![reply]).await;
        let case = Case::with_live(name, received.clone());
        let e = s
            .login(&credential, Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        check(&e);
        let again = s
            .login(&credential, Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        mailcat_tests::assert_matches!(
            again,
            Error::AuthenticationAlreadyAttempted { .. },
            "{case}"
        );
        drop(s);
        server.await.unwrap();
        assert_sent(&received, sent, &case);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), elsewhere.accept())
            .await
            .is_err(),
        "the client connected to the referral's server"
    );
}

#[tokio::test]
async fn a_login_that_cannot_go_sends_nothing() {
    let cases: [(&str, &str, Plaintext, fn(&Error)); 2] = [
        (
            "LOGINDISABLED sends nothing",
            "IMAP4rev1 STARTTLS LOGINDISABLED",
            Plaintext::DangerouslyAllow,
            |e| mailcat_tests::assert_matches!(e, Error::NoUsableMechanism { .. }),
        ),
        (
            "plaintext auth is refused before anything is sent",
            "IMAP4rev1 SASL-IR AUTH=PLAIN",
            Plaintext::Refuse,
            |e| mailcat_tests::assert_matches!(e, Error::PlaintextAuthRefused { .. }),
        ),
    ];
    for (name, caps, plaintext, check) in cases {
        let (mut s, server, received) = session(caps, vec![]).await;
        let case = Case::with_live(name, received.clone());
        let e = s.login(&alice(), plaintext).await.unwrap_err();
        check(&e);
        drop(s);
        server.await.unwrap();
        assert_sent(&received, &[], &case);
    }
}

// ----- SASL: success only once the exchange is complete (threat model #41's class and #87) -----

#[tokio::test]
async fn an_ok_before_the_exchange_is_complete_is_not_a_login() {
    // The login fails with a protocol error naming why, and the session refuses NOOP. A LOGIN
    // command whose password needs a synchronising literal (no LITERAL+) is not complete
    // either until the literal is out.
    let claimed = "claimed success";
    let early = "before its literal";
    let cases: [(&str, &str, Credential, Vec<Step>, &str, &[&str]); 6] = [
        (
            "PLAIN without SASL-IR answered OK instead of the continuation",
            "IMAP4rev1 AUTH=PLAIN",
            alice(),
            vec![cmd("AUTHENTICATE PLAIN", "{tag} OK Logged in\r\n")],
            claimed,
            &["A0002 AUTHENTICATE PLAIN"],
        ),
        (
            "XOAUTH2 without SASL-IR answered OK before the token",
            "IMAP4rev1 AUTH=XOAUTH2",
            Credential::oauth2("alice", "ya29.tok"),
            vec![cmd("AUTHENTICATE XOAUTH2", "{tag} OK Logged in\r\n")],
            claimed,
            &["A0002 AUTHENTICATE XOAUTH2"],
        ),
        (
            "the LOGIN mechanism answered OK after the user name",
            "IMAP4rev1 AUTH=LOGIN",
            alice(),
            vec![
                cmd("AUTHENTICATE LOGIN", "+ VXNlcm5hbWU6\r\n"),
                line("YWxpY2U=", "{tag} OK Logged in\r\n"),
            ],
            claimed,
            &["A0002 AUTHENTICATE LOGIN", "YWxpY2U="],
        ),
        (
            "SCRAM answered OK without the server-final message",
            SCRAM_CAPS,
            scram_user(),
            vec![
                cmd_fn(imap_server_first),
                // The proof is right, but the server skips its own.
                line_fn(|l| {
                    scram_server::server_final(l);
                    "{tag} OK Logged in\r\n".into()
                }),
            ],
            claimed,
            &["A0002 AUTHENTICATE SCRAM-SHA-256 …", "…"],
        ),
        (
            "a LOGIN answered OK instead of the continuation, CR/LF in the password",
            "IMAP4rev1",
            Credential::password("alice", "pw\r\nx"),
            vec![cmd("LOGIN alice {5}", "{tag} OK LOGIN completed\r\n")],
            early,
            &["A0002 LOGIN alice {5}"],
        ),
        (
            "a LOGIN answered OK instead of the continuation, 8-bit without UTF8=ACCEPT",
            "IMAP4rev1",
            Credential::password("alice", "pässwörd"),
            vec![cmd("LOGIN alice {10}", "{tag} OK LOGIN completed\r\n")],
            early,
            &["A0002 LOGIN alice {10}"],
        ),
    ];
    for (name, caps, credential, steps, detail, sent) in cases {
        let (mut s, server, received) = session(caps, steps).await;
        let case = Case::with_live(name, received.clone());
        let e = s
            .login(&credential, Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        mailcat_tests::assert_matches!(
            e,
            Error::Protocol { detail: ref d, .. } if d.contains(detail),
            "{case}"
        );
        assert!(!e.is_auth(), "{case}: {e:?}");
        let again = s.noop().await.unwrap_err();
        mailcat_tests::assert_matches!(again, Error::Protocol { .. }, "{case}");
        drop(s);
        server.await.unwrap();
        // The password, the token (or anything else) was not sent.
        assert_sent(&received, sent, &case);
    }
}

#[tokio::test]
async fn list_decodes_names_and_special_use() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1 SPECIAL-USE LIST-EXTENDED",
        vec![cmd(
            "LIST \"\" * RETURN (SPECIAL-USE)",
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
             * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
             * 3 EXISTS\r\n\
             * LIST (\\HasNoChildren \\Archive) \"/\" \"Archiv &AOQ-\"\r\n\
             {tag} OK List completed\r\n",
        )],
    )
    .await;
    let list = s.list().await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].name, "INBOX");
    assert_eq!(list[1].special_use(), Some(&NameAttribute::Sent));
    assert_eq!(list[2].name, "Archiv ä");
    assert_eq!(list[2].delimiter, Some('/'));
    assert_eq!(s.take_unsolicited(), vec![Unsolicited::Exists(3)]);
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn select_examine_and_their_refusals() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd(
                "SELECT INBOX",
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
                 * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
                 * 50 EXISTS\r\n* 2 RECENT\r\n\
                 * OK [UIDVALIDITY 1700000000] UIDs valid\r\n\
                 * OK [UIDNEXT 51] Predicted next UID\r\n\
                 * OK [ALERT] Maintenance tonight\r\n\
                 {tag} OK [READ-WRITE] Select completed.\r\n",
            ),
            cmd("EXAMINE Sent", "* 3 EXISTS\r\n{tag} OK [READ-ONLY] Examine completed.\r\n"),
            cmd("SELECT Nope", "{tag} NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n"),
            cmd("SELECT Busy", "{tag} NO [INUSE] Mailbox is locked\r\n"),
            cmd("SELECT Bad", "{tag} BAD Error in IMAP command\r\n"),
        ],
    )
    .await;
    let state = s.select(&Mailbox::inbox()).await.unwrap();
    assert_eq!(state.exists, 50);
    assert_eq!(state.recent, Some(2));
    assert_eq!(state.uid_validity, Some(1_700_000_000));
    assert_eq!(state.uid_next, Some(51));
    assert_eq!(state.flags.len(), 5);
    assert!(state.permanent_flags.contains(&Flag::MayCreate));
    assert!(!state.read_only);
    assert_eq!(
        s.take_unsolicited(),
        vec![Unsolicited::Alert("Maintenance tonight".into())]
    );
    let sent = s.examine(&Mailbox::new("Sent").unwrap()).await.unwrap();
    assert!(sent.read_only);
    assert_eq!(sent.exists, 3);
    let e = s.select(&Mailbox::new("Nope").unwrap()).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Rejected { .. });
    let e = s.select(&Mailbox::new("Busy").unwrap()).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Temporary { .. });
    assert_eq!(
        e.reply().and_then(|r| r.imap_code()),
        Some(&mailcat_codec::imap::Code::InUse),
        "the code of a temporary refusal is typed: {e:?}"
    );
    let e = s.select(&Mailbox::new("Bad").unwrap()).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Rejected { .. });
    assert_eq!(
        e.reply().and_then(|r| r.imap_status()),
        Some(mailcat_codec::imap::StatusKind::Bad),
        "{e:?}"
    );
    assert!(e.to_string().contains(": BAD "), "{e}");
    drop(s);
    server.await.unwrap();
}

/// `* SEARCH` with every UID of a 100,000-message mailbox but a few: one line of ~600 KB.
fn search_line(count: u32, gaps: &[u32]) -> String {
    let numbers: Vec<String> = (1..=count)
        .filter(|n| !gaps.contains(n))
        .map(|n| n.to_string())
        .collect();
    format!(
        "* SEARCH {}\r\n{{tag}} OK Search done\r\n",
        numbers.join(" ")
    )
}

#[tokio::test]
async fn a_search_answer_longer_than_a_line_limit_is_read_as_ranges() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![cmd("UID SEARCH ALL", &search_line(100_000, &[5, 70_000]))],
    )
    .await;
    let uids = s.uid_search_set(&SearchKey::All, 100_000).await.unwrap();
    assert_eq!(uids.to_string(), "1:4,6:69999,70001:100000");
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn a_search_answer_far_longer_than_the_mailbox_is_refused() {
    // 10 messages announced, 250,000 UIDs sent: the bound scales with what was asked.
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![cmd("UID SEARCH ALL", &search_line(250_000, &[]))],
    )
    .await;
    let e = s.uid_search_set(&SearchKey::All, 10).await.unwrap_err();
    assert!(e.to_string().contains("longer than the limit"), "{e}");
    drop(s);
    let _ = server.await;
}

#[tokio::test]
async fn summaries_of_100k_scattered_uids_are_matched_in_linear_time() {
    // Every other UID: 100,000 single-number ranges. Matching each response by a scan of the
    // ranges asked for took O(n²): about a minute here in a debug build.
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![cmd_fn(|_| {
            let mut reply = String::new();
            for (i, uid) in (1..=200_000u32).step_by(2).enumerate() {
                reply.push_str(&format!("* {} FETCH (UID {uid} RFC822.SIZE 10)\r\n", i + 1));
            }
            reply.push_str("{tag} OK done\r\n");
            reply
        })],
    )
    .await;
    let set = SequenceSet::from_numbers((1..=200_000).step_by(2)).unwrap();
    let started = std::time::Instant::now();
    let summaries = s
        .fetch_summaries(&set, &SummaryRequest::default())
        .await
        .unwrap();
    assert_eq!(summaries.len(), 100_000);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn a_mailbox_with_thousands_of_keywords_can_be_opened() {
    // FLAGS and PERMANENTFLAGS name every keyword on one line each: ~100 KB here.
    fn reply(_: &str) -> String {
        let keywords: Vec<String> = (0..8_000).map(|i| format!("$label{i}")).collect();
        let keywords = keywords.join(" ");
        format!(
            "* FLAGS (\\Seen {keywords})\r\n* OK [PERMANENTFLAGS (\\Seen {keywords} \\*)] ok\r\n\
             * 3 EXISTS\r\n* OK [UIDVALIDITY 9] ok\r\n{{tag}} OK [READ-ONLY] done\r\n"
        )
    }
    let (mut s, server, _) = logged_in("IMAP4rev1", vec![cmd_fn(reply)]).await;
    let state = s.examine(&Mailbox::new("INBOX").unwrap()).await.unwrap();
    assert_eq!(state.flags.len(), 8_001);
    assert_eq!(state.exists, 3);
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn esearch_is_used_when_offered_and_its_ranges_kept() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1 ESEARCH",
        vec![
            cmd(
                "UID SEARCH RETURN (ALL) ALL",
                "* ESEARCH (TAG \"{tag}\") UID ALL 1:400000,400002:1000001\r\n{tag} OK done\r\n",
            ),
            // No match: ESEARCH without ALL.
            cmd(
                "UID SEARCH RETURN (ALL) UNSEEN",
                "* ESEARCH (TAG \"{tag}\") UID\r\n{tag} OK done\r\n",
            ),
        ],
    )
    .await;
    let uids = s.uid_search_set(&SearchKey::All, 1_000_000).await.unwrap();
    assert_eq!(uids.ranges(), &[(1, 400_000), (400_002, 1_000_001)]);
    assert!(s
        .uid_search_set(&SearchKey::Unseen, 10)
        .await
        .unwrap()
        .is_empty());
    drop(s);
    server.await.unwrap();
}

/// The answer to `UID SEARCH RETURN (ALL) ALL` naming `uids`, with other items around `ALL`.
fn esearch_answer(uids: &UidSet) -> String {
    format!(
        "* ESEARCH (TAG \"{{tag}}\") UID MIN {} ALL {uids} COUNT {}\r\n{{tag}} OK done\r\n",
        uids.iter().next().unwrap_or(1),
        uids.len()
    )
}

#[tokio::test]
async fn a_long_esearch_answer_of_scattered_uids_is_read_in_pieces() {
    // SELECT said 1,000 messages and 60,001 had arrived when the search ran (EXISTS + 100,000
    // are allowed, as for SEARCH). Every other UID, then a run: a line of ~320 KB, five times
    // the line limit. It was read whole with a limit of 11 bytes a message announced (76 KB
    // here), and refused.
    let uids: UidSet = (1..=100_000).step_by(2).chain(200_000..=210_000).collect();
    let answer = format!("* 60001 EXISTS\r\n{}", esearch_answer(&uids));
    let (mut s, server, received) = logged_in(
        "IMAP4rev1 ESEARCH",
        vec![cmd("UID SEARCH RETURN (ALL) ALL", &answer)],
    )
    .await;
    let got = s.uid_search_set(&SearchKey::All, 1_000).await.unwrap();
    assert_eq!(got, uids);
    assert_eq!(got.ranges().len(), 50_001);
    assert_eq!(s.take_unsolicited(), vec![Unsolicited::Exists(60_001)]);
    drop(s);
    server.await.unwrap();
    assert_eq!(count(&received, "UID"), 1);
}

#[tokio::test]
async fn a_million_scattered_uids_in_one_esearch_line() {
    // A million messages with every other UID deleted: one line of ~7.9 MB.
    let uids: UidSet = (1..=2_000_000).step_by(2).collect();
    let (mut s, server, _) = logged_in(
        "IMAP4rev1 ESEARCH",
        vec![cmd("UID SEARCH RETURN (ALL) ALL", &esearch_answer(&uids))],
    )
    .await;
    let started = std::time::Instant::now();
    let got = s.uid_search_set(&SearchKey::All, 1_000_000).await.unwrap();
    assert_eq!(got.ranges().len(), 1_000_000);
    assert_eq!(got, uids);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn an_endless_esearch_line_is_stopped_at_the_limit_for_the_mailbox() {
    // Ten messages announced; the server goes on naming UIDs (new ones, or the same range
    // again) and never ends the line. The client stops at EXISTS + 100,000 UIDs named.
    let endless: [fn(usize) -> String; 2] = [|i| format!(",{}", 2 * i + 3), |_| ",1:2".into()];
    for line in endless {
        let (mut s, server, _) = logged_in(
            "IMAP4rev1 ESEARCH",
            vec![
                cmd(
                    "UID SEARCH RETURN (ALL) ALL",
                    "* ESEARCH (TAG \"{tag}\") UID ALL 1",
                ),
                Step::Lines {
                    count: usize::MAX,
                    line,
                },
            ],
        )
        .await;
        let e = s.uid_search_set(&SearchKey::All, 10).await.unwrap_err();
        mailcat_tests::assert_matches!(e, Error::Protocol { .. });
        assert!(
            e.to_string().contains("names more than 100010 messages"),
            "{e}"
        );
        drop(s);
        server.await.unwrap();
    }
    // A short line can name four billion UIDs: refused alike.
    let (mut s, server, _) = logged_in(
        "IMAP4rev1 ESEARCH",
        vec![cmd(
            "UID SEARCH RETURN (ALL) ALL",
            "* ESEARCH (TAG \"{tag}\") UID ALL 1:4294967295\r\n{tag} OK done\r\n",
        )],
    )
    .await;
    let e = s.uid_search_set(&SearchKey::All, 10).await.unwrap_err();
    assert!(e.to_string().contains("names more than 100010"), "{e}");
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn an_esearch_answer_must_answer_this_command_with_uids() {
    // A short ESEARCH naming another command's tag is not the answer.
    let (mut s, server, _) = logged_in(
        "IMAP4rev1 ESEARCH",
        vec![cmd(
            "UID SEARCH RETURN (ALL) ALL",
            "* ESEARCH (TAG \"A0001\") UID ALL 1:5\r\n* ESEARCH (TAG \"{tag}\") UID ALL 7\r\n\
             {tag} OK done\r\n",
        )],
    )
    .await;
    let got = s.uid_search_set(&SearchKey::All, 10).await.unwrap();
    assert_eq!(got.to_string(), "7");
    drop(s);
    server.await.unwrap();
    // A long one is refused as soon as it shows it is not: another tag, no UID indicator, or
    // no search under way.
    let scattered: UidSet = (1..=40_000).step_by(2).collect();
    for (command, head, why) in [
        (
            "UID SEARCH RETURN (ALL) ALL",
            "(TAG \"A0001\") UID",
            "for another command",
        ),
        (
            "UID SEARCH RETURN (ALL) ALL",
            "(TAG \"{tag}\")",
            "no UID indicator",
        ),
        (
            "NOOP",
            "UID",
            "ESEARCH response line longer than the limit of 65536 bytes",
        ),
    ] {
        let answer = format!("* ESEARCH {head} ALL {scattered}\r\n{{tag}} OK done\r\n");
        let (mut s, server, _) = logged_in("IMAP4rev1 ESEARCH", vec![cmd(command, &answer)]).await;
        let e = if command == "NOOP" {
            s.noop().await.unwrap_err()
        } else {
            s.uid_search_set(&SearchKey::All, 30_000).await.unwrap_err()
        };
        mailcat_tests::assert_matches!(e, Error::Protocol { .. });
        assert!(e.to_string().contains(why), "{why}: {e}");
        drop(s);
        let _ = server.await;
    }
}

#[tokio::test]
async fn uid_search_keeps_unsolicited_news_apart() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd(
                "UID SEARCH ALL",
                "* 4 EXISTS\r\n* SEARCH 3 7 9\r\n* 1 FETCH (FLAGS (\\Seen))\r\n{tag} OK Search done\r\n",
            ),
            cmd("UID SEARCH UNSEEN", "{tag} NO [CANNOT] nope\r\n"),
        ],
    )
    .await;
    assert_eq!(s.uid_search(&SearchKey::All).await.unwrap(), vec![3, 7, 9]);
    assert_eq!(
        s.take_unsolicited(),
        vec![
            Unsolicited::Exists(4),
            Unsolicited::Fetch {
                seq: 1,
                uid: None,
                flags: Some(vec![Flag::Seen])
            }
        ]
    );
    assert!(s.take_unsolicited().is_empty());
    mailcat_tests::assert_matches!(
        s.uid_search(&SearchKey::Unseen).await,
        Err(Error::Rejected { .. })
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn summaries_of_many_messages_in_one_command() {
    let (mut s, server, received) = logged_in(
        "IMAP4rev1",
        vec![cmd(
            "UID FETCH 1:3 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODY.PEEK[HEADER.FIELDS (From Subject)])",
            "* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 4096 INTERNALDATE \"17-Jul-2024 02:44:25 +0000\" ENVELOPE (\"Wed, 17 Jul 2024 02:44:25 +0000\" \"Hello\" ((\"Bob\" NIL \"bob\" \"example.test\")) NIL NIL ((NIL NIL \"carol\" \"example.test\")) NIL NIL NIL \"<1@x>\") BODY[HEADER.FIELDS (FROM SUBJECT)] {38}\r\nFrom: bob@example.test\r\nSubject: H\r\n\r\n)\r\n\
             * 9 FETCH (FLAGS (\\Deleted))\r\n\
             * 2 FETCH (UID 2 FLAGS () RFC822.SIZE 10 INTERNALDATE \"17-Jul-2024 02:44:26 +0000\" ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) BODY[HEADER.FIELDS (FROM SUBJECT)] {2}\r\n\r\n)\r\n\
             {tag} OK Fetch completed.\r\n",
        )],
    )
    .await;
    let request = SummaryRequest {
        envelope: true,
        header_fields: vec!["From".into(), "Subject".into()],
    };
    let list = s
        .fetch_summaries(&SequenceSet::range(1, 3).unwrap(), &request)
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].uid, 1);
    assert_eq!(list[0].size, Some(4096));
    assert_eq!(list[0].flags, vec![Flag::Seen]);
    assert_eq!(
        list[0].internal_date.as_deref(),
        Some("17-Jul-2024 02:44:25 +0000")
    );
    assert!(list[0].envelope.is_some());
    assert_eq!(
        list[0].headers.as_deref(),
        Some(&b"From: bob@example.test\r\nSubject: H\r\n\r\n"[..])
    );
    assert_eq!(list[1].uid, 2);
    mailcat_tests::assert_matches!(
        s.take_unsolicited()[..],
        [Unsolicited::Fetch { seq: 9, .. }]
    );
    drop(s);
    server.await.unwrap();
    assert_eq!(count(&received, "UID"), 1, "one command for all");
}

fn body(len: usize) -> Vec<u8> {
    let mut b = b"Subject: big\r\n\r\n".to_vec();
    b.extend((0..len - b.len()).map(|i| {
        if i % 80 == 78 {
            b'\r'
        } else if i % 80 == 79 {
            b'\n'
        } else {
            b'a' + (i % 26) as u8
        }
    }));
    b
}

#[tokio::test]
async fn whole_messages_stream_byte_exact_small_and_over_64_kib_with_news_in_between() {
    let small = body(300);
    let large = body(200_000);
    let mut reply_small =
        b"* 4 FETCH (FLAGS (\\Seen))\r\n* 1 FETCH (UID 5 BODY[] {300}\r\n".to_vec();
    reply_small.extend_from_slice(&small);
    reply_small.extend_from_slice(b")\r\n* 7 EXISTS\r\n{tag} OK Fetch completed.\r\n");
    let mut reply_large = b"* 2 FETCH (UID 6 BODY[] {200000}\r\n".to_vec();
    reply_large.extend_from_slice(&large);
    reply_large
        .extend_from_slice(b" FLAGS (\\Seen))\r\n* 2 EXPUNGE\r\n{tag} OK Fetch completed.\r\n");
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd_bytes("UID FETCH 5 (UID BODY.PEEK[])", reply_small),
            cmd_bytes("UID FETCH 6 (UID BODY.PEEK[])", reply_large),
            cmd(
                "UID FETCH 99 (UID BODY.PEEK[])",
                "{tag} OK Fetch completed.\r\n",
            ),
            cmd(
                "UID FETCH 7 (UID BODY.PEEK[])",
                "{tag} NO [SERVERBUG] Internal error\r\n",
            ),
        ],
    )
    .await;
    let mut sink = Vec::new();
    assert_eq!(s.fetch_message(5, &mut sink).await.unwrap(), Some(300));
    assert_eq!(sink, small);
    let mut sink = Vec::new();
    assert_eq!(s.fetch_message(6, &mut sink).await.unwrap(), Some(200_000));
    assert!(sink == large, "the streamed body differs");
    let mut sink = Vec::new();
    assert_eq!(s.fetch_message(99, &mut sink).await.unwrap(), None);
    assert!(sink.is_empty());
    mailcat_tests::assert_matches!(
        s.fetch_message(7, &mut Vec::new()).await,
        Err(Error::Rejected { .. })
    );
    assert_eq!(
        s.take_unsolicited(),
        vec![
            Unsolicited::Fetch {
                seq: 4,
                uid: None,
                flags: Some(vec![Flag::Seen])
            },
            Unsolicited::Exists(7),
            Unsolicited::Expunge(2),
        ]
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn one_range_fetch_routes_bodies_answered_in_any_order_to_their_sinks() {
    let bodies = [body(100), body(70_000), body(50), body(80_000)];
    // Tags: A0001 CAPABILITY, A0002 AUTHENTICATE, A0003 the UID → sequence number map,
    // A0004 the one fetch of all four. The server answers in its own order, the UID before
    // the body or after it (a streamed body is then routed by its sequence number); UID 15
    // does not exist and gets no response.
    let mut answer = streamed_item(2, 12, &bodies[1], false);
    answer.extend(streamed_item(4, 20, &bodies[3], true));
    answer.extend(streamed_item(1, 11, &bodies[0], false));
    answer.extend(b"* 9 EXISTS\r\n");
    answer.extend(streamed_item(3, 13, &bodies[2], true));
    answer.extend(b"{tag} OK Fetch completed.\r\n");
    let (mut s, server, received) = logged_in(
        "IMAP4rev1",
        vec![
            cmd(
                "UID FETCH 11:13,15,20 (UID)",
                "* 1 FETCH (UID 11)\r\n* 2 FETCH (UID 12)\r\n* 3 FETCH (UID 13)\r\n\
                 * 4 FETCH (UID 20)\r\n{tag} OK\r\n",
            ),
            cmd_bytes("UID FETCH 11:13,15,20 (UID BODY.PEEK[])", answer),
        ],
    )
    .await;
    let mut sinks: Vec<(u32, Vec<u8>)> = [13, 20, 11, 15, 12]
        .iter()
        .map(|&u| (u, Vec::new()))
        .collect();
    let lens = s.fetch_messages(&mut sinks).await.unwrap();
    assert_eq!(
        lens,
        vec![Some(50), Some(80_000), Some(100), None, Some(70_000)]
    );
    for (uid, sink) in &sinks {
        let expected: &[u8] = match uid {
            11 => &bodies[0],
            12 => &bodies[1],
            13 => &bodies[2],
            20 => &bodies[3],
            _ => b"",
        };
        assert!(sink == expected, "UID {uid} got another body");
    }
    assert_eq!(s.take_unsolicited(), vec![Unsolicited::Exists(9)]);
    drop(s);
    server.await.unwrap();
    let lines = received.lock().unwrap().clone();
    let fetches = lines.iter().filter(|l| l.contains("BODY.PEEK[]")).count();
    assert_eq!(fetches, 1, "one command for all: {lines:?}");
}

/// A FETCH response with a streamed body, the UID before it (`first`) or after it.
fn streamed_item(seq: usize, uid: u32, b: &[u8], first: bool) -> Vec<u8> {
    let mut r = if first {
        format!("* {seq} FETCH (UID {uid} BODY[] {{{}}}\r\n", b.len())
    } else {
        format!("* {seq} FETCH (BODY[] {{{}}}\r\n", b.len())
    }
    .into_bytes();
    r.extend_from_slice(b);
    if !first {
        r.extend_from_slice(format!(" UID {uid}").as_bytes());
    }
    r.extend_from_slice(b")\r\n");
    r
}

/// Two `fetch_messages` calls of two bodies each (streamed from `size` bytes on, inline below),
/// answered out of order; the server puts the UID first or not. Returns how many sequence-number
/// maps (`UID FETCH set (UID)`) the client asked for.
async fn maps_in_two_pipelined_fetches(uid_first: bool, size: usize) -> usize {
    let name = if uid_first {
        format!("UID first, {size}-byte bodies")
    } else {
        format!("UID after the body, {size}-byte bodies")
    };
    let bodies = [body(size), body(size + 1), body(size + 2), body(size + 3)];
    let pair = |(seq1, uid1, b1), (seq2, uid2, b2)| {
        let mut r = streamed_item(seq2, uid2, b2, uid_first);
        r.extend(streamed_item(seq1, uid1, b1, uid_first));
        r.extend(b"{tag} OK Fetch completed.\r\n");
        r
    };
    let mut steps = vec![
        cmd(
            "UID FETCH 11:12 (UID)",
            "* 1 FETCH (UID 11)\r\n* 2 FETCH (UID 12)\r\n{tag} OK\r\n",
        ),
        cmd_bytes(
            "UID FETCH 11:12 (UID BODY.PEEK[])",
            pair((1, 11, &bodies[0]), (2, 12, &bodies[1])),
        ),
    ];
    // The second call: the map again only when the server did not put the UID first.
    if !uid_first {
        steps.push(cmd(
            "UID FETCH 13:14 (UID)",
            "* 3 FETCH (UID 13)\r\n* 4 FETCH (UID 14)\r\n{tag} OK\r\n",
        ));
    }
    steps.push(cmd_bytes(
        "UID FETCH 13:14 (UID BODY.PEEK[])",
        pair((3, 13, &bodies[2]), (4, 14, &bodies[3])),
    ));
    let (mut s, server, received) = logged_in("IMAP4rev1", steps).await;
    let case = Case::with_live(name, received.clone());
    for call in [[11, 12], [13, 14]] {
        let mut sinks: Vec<(u32, Vec<u8>)> = call.iter().map(|&u| (u, Vec::new())).collect();
        let lens = s.fetch_messages(&mut sinks).await.unwrap();
        for (i, (uid, sink)) in sinks.iter().enumerate() {
            let expected = &bodies[(*uid - 11) as usize];
            assert_eq!(lens[i], Some(expected.len() as u64), "{case}");
            assert!(sink == expected, "{case}: UID {uid} got another body");
        }
    }
    drop(s);
    server.await.unwrap();
    let maps = received
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.ends_with("(UID)"))
        .count();
    maps
}

#[tokio::test]
async fn the_sequence_map_is_fetched_only_until_the_server_shows_it_puts_the_uid_first() {
    // Streamed bodies, and inline ones (which tell it just the same).
    for size in [70_000, 100] {
        let first = maps_in_two_pipelined_fetches(true, size).await;
        assert_eq!(first, 1, "UID first, {size}-byte bodies");
        let after = maps_in_two_pipelined_fetches(false, size).await;
        assert_eq!(after, 2, "UID after the body, {size}-byte bodies");
    }
}

/// A server that runs the pipelined sequence-number map and body fetch side by side and sends
/// bodies before their numbers, UIDs behind (or in front, `uid_first_for_12`): each body it
/// could not route is dropped and its message fetched once more after the map. Returns the
/// body fetch commands the client sent.
async fn bodies_before_their_numbers(uid_first_for_12: bool) -> Vec<String> {
    let bodies = [body(70_000), body(70_001)];
    // A0003 is the map, A0004 the bodies: both answered after the second line came.
    let mut side_by_side = streamed_item(2, 12, &bodies[1], uid_first_for_12);
    side_by_side.extend(streamed_item(1, 11, &bodies[0], false));
    side_by_side.extend(b"* 1 FETCH (UID 11)\r\n* 2 FETCH (UID 12)\r\nA0003 OK\r\n{tag} OK\r\n");
    let mut steps = vec![
        cmd("UID FETCH 11:12 (UID)", ""),
        cmd_bytes("UID FETCH 11:12 (UID BODY.PEEK[])", side_by_side),
    ];
    if uid_first_for_12 {
        // Only UID 11 is left: one message needs no map.
        steps.push(cmd_bytes(
            "UID FETCH 11 (UID BODY.PEEK[])",
            [
                streamed_item(1, 11, &bodies[0], false),
                b"{tag} OK\r\n".to_vec(),
            ]
            .concat(),
        ));
    } else {
        steps.push(cmd(
            "UID FETCH 11:12 (UID)",
            "* 1 FETCH (UID 11)\r\n* 2 FETCH (UID 12)\r\n{tag} OK\r\n",
        ));
        let mut both = streamed_item(2, 12, &bodies[1], false);
        both.extend(streamed_item(1, 11, &bodies[0], false));
        both.extend(b"{tag} OK\r\n");
        steps.push(cmd_bytes("UID FETCH 11:12 (UID BODY.PEEK[])", both));
    }
    let (mut s, server, received) = logged_in("IMAP4rev1", steps).await;
    let mut sinks: Vec<(u32, Vec<u8>)> = vec![(11, Vec::new()), (12, Vec::new())];
    let lens = s.fetch_messages(&mut sinks).await.unwrap();
    assert_eq!(lens, [Some(70_000), Some(70_001)]);
    for (i, (uid, sink)) in sinks.iter().enumerate() {
        assert!(
            sink == &bodies[i],
            "UID {uid}: {} bytes, not its body once",
            sink.len()
        );
    }
    drop(s);
    server.await.unwrap();
    let lines = received.lock().unwrap().clone();
    lines
        .into_iter()
        .filter(|l| l.contains("UID FETCH"))
        .collect()
}

#[tokio::test]
async fn bodies_sent_before_their_sequence_numbers_are_fetched_again_once() {
    let fetches = bodies_before_their_numbers(false).await;
    assert_eq!(
        fetches.len(),
        4,
        "map and bodies pipelined, then map, bodies: {fetches:?}"
    );
    let fetches = bodies_before_their_numbers(true).await;
    assert_eq!(
        fetches.len(),
        3,
        "only the unrouted body again: {fetches:?}"
    );
}

#[tokio::test]
async fn a_body_before_its_sequence_number_and_with_no_uid_at_all_is_a_protocol_error() {
    let big = body(70_000);
    let mut reply = format!("* 2 FETCH (BODY[] {{{}}}\r\n", big.len()).into_bytes();
    reply.extend_from_slice(&big);
    reply.extend_from_slice(b")\r\n");
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd("UID FETCH 11:12 (UID)", ""),
            cmd_bytes("UID FETCH 11:12 (UID BODY.PEEK[])", reply),
        ],
    )
    .await;
    let mut sinks: Vec<(u32, Vec<u8>)> = vec![(11, Vec::new()), (12, Vec::new())];
    let e = s.fetch_messages(&mut sinks).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { .. });
    assert!(
        e.to_string().contains("no UID in its UID FETCH answer"),
        "{e}"
    );
    assert!(
        sinks.iter().all(|(_, sink)| sink.is_empty()),
        "nothing written"
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn an_unknown_tag_among_pipelined_fetches_is_a_protocol_error() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![cmd(
            "UID FETCH 11 (UID BODY.PEEK[])",
            "A0999 OK Fetch completed.\r\n",
        )],
    )
    .await;
    let e = s.fetch_message(11, &mut Vec::new()).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { .. });
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn store_expunge_and_move_with_and_without_extensions() {
    let (mut s, server, _) =
        logged_in(
            "IMAP4rev1 UIDPLUS MOVE",
            vec![
            cmd("UID STORE 5 +FLAGS.SILENT (\\Seen)", "{tag} OK Store completed.\r\n"),
            cmd("UID STORE 5 -FLAGS.SILENT (\\Seen)", "{tag} NO [CANNOT] read-only\r\n"),
            cmd("UID EXPUNGE 5", "* 3 EXPUNGE\r\n{tag} OK Expunge completed.\r\n"),
            cmd(
                "UID MOVE 6 Archive",
                "* OK [COPYUID 99 6 1] Moved UIDs.\r\n* 2 EXPUNGE\r\n{tag} OK Move completed.\r\n",
            ),
            cmd("UID MOVE 7 Nowhere", "{tag} NO [TRYCREATE] Mailbox doesn't exist: Nowhere\r\n"),
        ],
        )
        .await;
    let five = SequenceSet::single(5).unwrap();
    s.store_flags(&five, StoreMode::Add, &[Flag::Seen])
        .await
        .unwrap();
    mailcat_tests::assert_matches!(
        s.store_flags(&five, StoreMode::Remove, &[Flag::Seen]).await,
        Err(Error::Rejected { .. })
    );
    s.expunge(&five).await.unwrap();
    let moved = s
        .move_messages(
            &SequenceSet::single(6).unwrap(),
            &Mailbox::new("Archive").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.uid_validity, 99);
    assert!(s
        .move_messages(
            &SequenceSet::single(7).unwrap(),
            &Mailbox::new("Nowhere").unwrap()
        )
        .await
        .is_err());
    assert_eq!(
        s.take_unsolicited(),
        vec![Unsolicited::Expunge(3), Unsolicited::Expunge(2)]
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn move_without_move_is_copy_store_expunge() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd(
                "UID COPY 6 Archive",
                "{tag} OK [COPYUID 99 6 1] Copy completed.\r\n",
            ),
            cmd(
                "UID STORE 6 +FLAGS.SILENT (\\Deleted)",
                "{tag} OK Store completed.\r\n",
            ),
            cmd("EXPUNGE", "* 2 EXPUNGE\r\n{tag} OK Expunge completed.\r\n"),
        ],
    )
    .await;
    let moved = s
        .move_messages(
            &SequenceSet::single(6).unwrap(),
            &Mailbox::new("Archive").unwrap(),
        )
        .await
        .unwrap();
    assert!(moved.is_some());
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn bye_mid_command_closes_the_session_and_nothing_more_is_sent() {
    let (mut s, server, received) = logged_in(
        "IMAP4rev1",
        vec![cmd("NOOP", "* BYE Server shutting down.\r\n"), Step::Close],
    )
    .await;
    let e = s.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Closed { .. });
    let e = s.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Closed { .. });
    s.logout().await.unwrap();
    server.await.unwrap();
    assert_eq!(count(&received, "NOOP"), 1);
    assert_eq!(count(&received, "LOGOUT"), 0);
}

/// A caller's mistake is its own error, found before anything is sent, and the session
/// stays usable: the NOOP after it is the next command the server sees.
#[tokio::test]
async fn a_uid_asked_for_twice_is_misuse_and_sends_nothing() {
    let (mut s, server, received) = logged_in(
        "IMAP4rev1",
        vec![cmd("NOOP", "{tag} OK NOOP completed.\r\n")],
    )
    .await;
    let mut requests = [(7, Vec::new()), (9, Vec::new()), (7, Vec::new())];
    let e = s.fetch_messages(&mut requests).await.unwrap_err();
    assert!(e.is_misuse(), "{e:?}");
    assert!(e.to_string().contains("UID 7 is asked for twice"), "{e}");
    s.noop().await.expect("still usable");
    drop(s);
    server.await.unwrap();
    assert_eq!(count(&received, "FETCH"), 0);
}

#[tokio::test]
async fn a_wrong_tag_is_a_protocol_error() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![cmd("NOOP", "Z999 OK NOOP completed.\r\n")],
    )
    .await;
    let e = s.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { .. });
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn logout_reads_bye_and_ok() {
    let (s, server, received) = logged_in(
        "IMAP4rev1",
        vec![cmd(
            "LOGOUT",
            "* BYE Logging out\r\n{tag} OK Logout completed.\r\n",
        )],
    )
    .await;
    s.logout().await.unwrap();
    server.await.unwrap();
    assert_eq!(count(&received, "LOGOUT"), 1);
}

fn idle_caps() -> &'static str {
    "IMAP4rev1 IDLE"
}

#[tokio::test(start_paused = true)]
async fn idle_is_refreshed_every_25_minutes_and_reports_news() {
    let (mut s, server, received) = logged_in(
        idle_caps(),
        vec![
            cmd("IDLE", "+ idling\r\n"),
            line("DONE", "{tag} OK Idle completed.\r\n"),
            cmd("IDLE", "+ idling\r\n"),
            Step::Sleep(Duration::from_secs(60)),
            send("* 51 EXISTS\r\n* 1 RECENT\r\n"),
            line("DONE", "{tag} OK Idle completed.\r\n"),
        ],
    )
    .await;
    let start = tokio::time::Instant::now();
    let events = s.idle(Duration::from_secs(3600)).await.unwrap();
    let waited = start.elapsed();
    assert_eq!(
        events,
        vec![Unsolicited::Exists(51), Unsolicited::Recent(1)]
    );
    assert!(
        waited >= Duration::from_secs(26 * 60) && waited < Duration::from_secs(27 * 60),
        "{waited:?}"
    );
    drop(s);
    server.await.unwrap();
    let lines = received.lock().unwrap().clone();
    assert_eq!(lines.iter().filter(|l| l.ends_with(" IDLE")).count(), 2);
    assert_eq!(lines.iter().filter(|l| *l == "DONE").count(), 2);
}

#[tokio::test(start_paused = true)]
async fn idle_with_nothing_new_returns_empty_at_the_deadline_and_honours_the_refresh_setting() {
    let (mut s, server, received) = logged_in(
        idle_caps(),
        vec![
            cmd("IDLE", "+ idling\r\n"),
            line("DONE", "{tag} OK Idle completed.\r\n"),
            cmd("IDLE", "+ idling\r\n"),
            line("DONE", "{tag} OK Idle completed.\r\n"),
        ],
    )
    .await;
    s.set_idle_refresh(Duration::from_secs(5 * 60));
    let start = tokio::time::Instant::now();
    let events = s.idle(Duration::from_secs(8 * 60)).await.unwrap();
    assert!(events.is_empty());
    assert_eq!(start.elapsed(), Duration::from_secs(8 * 60));
    drop(s);
    server.await.unwrap();
    assert_eq!(
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == "DONE")
            .count(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn idle_notices_a_dead_connection_when_done_goes_unanswered() {
    let (mut s, server, _) = logged_in(
        idle_caps(),
        vec![cmd("IDLE", "+ idling\r\n"), line("DONE", ""), Step::Hang],
    )
    .await;
    let e = s.idle(Duration::from_secs(3600)).await.unwrap_err();
    mailcat_tests::assert_matches!(
        e,
        Error::Transport(mailcat_transport::Error::Timeout { .. })
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bye_while_idling_is_closed() {
    let (mut s, server, _) = logged_in(
        idle_caps(),
        vec![
            cmd("IDLE", "+ idling\r\n"),
            send("* 3 EXISTS\r\n"),
            Step::Sleep(Duration::from_secs(1)),
            send("* BYE Disconnected for inactivity.\r\n"),
            Step::Close,
        ],
    )
    .await;
    // The EXISTS ends the wait first; DONE is then sent to a server that says BYE.
    let r = s.idle(Duration::from_secs(3600)).await;
    match &r {
        Ok(e) => assert_eq!(e, &vec![Unsolicited::Exists(3)]),
        Err(_) => mailcat_tests::assert_matches!(r, Err(Error::Closed { .. })),
    }
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn idle_needs_the_extension() {
    let (mut s, server, _) = logged_in("IMAP4rev1", vec![]).await;
    mailcat_tests::assert_matches!(
        s.idle(Duration::from_secs(1)).await,
        Err(Error::MissingExtension {
            extension: "IDLE",
            ..
        })
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn short_timeouts_do_not_break_a_normal_exchange() {
    let (mut s, server, _) = session_with(
        "IMAP4rev1 SASL-IR AUTH=PLAIN",
        vec![cmd(PLAIN_IR, "{tag} OK [CAPABILITY IMAP4rev1] ok\r\n")],
        Timeouts::uniform(Duration::from_secs(1)),
    )
    .await;
    s.login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(s);
    server.await.unwrap();
}

// ----- hostile servers (threat model #26, #40, #41, #43) -----

#[tokio::test]
async fn two_million_list_responses_stop_at_the_per_command_limit() {
    // Generated as the client reads: the client must stop long before the end.
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd("LIST \"\" *", ""),
            Step::Lines {
                count: 2_000_000,
                line: |i| format!("* LIST (\\HasNoChildren) \"/\" m{i}\r\n"),
            },
        ],
    )
    .await;
    let e = s.list().await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { ref detail, .. } if detail.contains("MAX_UNTAGGED_PER_COMMAND"));
    mailcat_tests::assert_matches!(s.noop().await, Err(Error::Protocol { .. }));
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn endless_unsolicited_news_during_one_command_stops_at_the_limit_too() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd("NOOP", ""),
            Step::Lines {
                count: 2_000_000,
                line: |i| format!("* {} EXISTS\r\n", i + 1),
            },
        ],
    )
    .await;
    let e = s.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { ref detail, .. } if detail.contains("MAX_UNTAGGED_PER_COMMAND"));
    // The news kept for the caller stays bounded: the newest ones.
    let news = s.take_unsolicited();
    assert_eq!(news.len(), mailcat_session::imap::MAX_UNSOLICITED);
    assert_eq!(
        news.last(),
        Some(&Unsolicited::Exists(
            mailcat_session::imap::MAX_UNTAGGED_PER_COMMAND as u32
        ))
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn large_unsolicited_responses_stop_at_the_per_command_byte_limit() {
    // ~2,000 FETCH responses of 65,000 bytes each (inline: under the 64 KiB streaming
    // threshold) pass 128 MiB long before the count limit.
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd("NOOP", ""),
            Step::Lines {
                count: 1_000_000,
                line: |_| {
                    format!(
                        "* 1 FETCH (BODY[HEADER] {{65000}}\r\n{})\r\n",
                        "x".repeat(65_000)
                    )
                },
            },
        ],
    )
    .await;
    let e = s.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { ref detail, .. } if detail.contains("MAX_UNTAGGED_BYTES_PER_COMMAND"));
    // 128 MiB / 65,030 bytes: the limit was reached after 2,064 of them.
    assert_eq!(s.take_unsolicited().len(), 2_063);
    drop(s);
    server.await.unwrap();
}

/// The case `name`: EXAMINE without a usable UIDVALIDITY (`validity`: the line that should
/// carry it), then a list, a fetch of UID 1 and a refused delete.
async fn list_fetch_delete_without_uidvalidity(name: &str, validity: &str) {
    let (s, server, received) = logged_in(
        "IMAP4rev1 UIDPLUS",
        vec![
            cmd(
                "EXAMINE INBOX",
                &format!(
                    "* 2 EXISTS\r\n{validity}* OK [UIDNEXT 3] Predicted next UID\r\n\
                     {{tag}} OK [READ-ONLY] Examine completed.\r\n"
                ),
            ),
            cmd("UID SEARCH ALL", "* SEARCH 1 2\r\n{tag} OK Search done\r\n"),
            cmd(
                "UID FETCH 1:2 (UID FLAGS RFC822.SIZE INTERNALDATE)",
                "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 5 INTERNALDATE \"17-Jul-2024 02:44:25 +0000\")\r\n\
                 * 2 FETCH (UID 2 FLAGS () RFC822.SIZE 5 INTERNALDATE \"17-Jul-2024 02:44:26 +0000\")\r\n\
                 {tag} OK Fetch completed.\r\n",
            ),
            cmd(
                "UID FETCH 1 (UID BODY.PEEK[])",
                "* 1 FETCH (UID 1 BODY[] {5}\r\nHello)\r\n{tag} OK Fetch completed.\r\n",
            ),
        ],
    )
    .await;
    let case = Case::with_live(name, received.clone());
    let mut incoming = mailcat_session::Incoming::Imap {
        session: s,
        selected: None,
    };
    let listed = incoming.list(None, ListDetail::Sizes).await.unwrap();
    assert_eq!(listed.len(), 2, "{case}");
    assert_eq!(
        listed[0].id,
        mailcat_session::MessageId::Imap {
            uid_validity: None,
            uid: 1
        }
    );
    // Reading within the session works (cat) ...
    let mut sink = Vec::new();
    assert_eq!(incoming.fetch(&listed[0].id, &mut sink).await.unwrap(), 5);
    assert_eq!(sink, b"Hello");
    // ... deleting by UID does not, and sends nothing.
    let e = incoming
        .delete(&[listed[0].id.clone(), listed[1].id.clone()])
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { ref detail, .. } if detail.contains("UIDVALIDITY"));
    drop(incoming);
    server.await.unwrap();
    let lines = received.lock().unwrap().clone();
    for word in ["SELECT", "STORE", "EXPUNGE"] {
        assert!(
            !lines.iter().any(|l| l.contains(word)),
            "{case}: {word} was sent: {lines:?}"
        );
    }
}

#[tokio::test]
async fn without_uidvalidity_list_and_fetch_work_but_delete_is_refused() {
    for (case, validity) in [
        ("no UIDVALIDITY at all", ""),
        (
            "UIDVALIDITY 0 is no UIDVALIDITY",
            "* OK [UIDVALIDITY 0] UIDs valid\r\n",
        ),
    ] {
        list_fetch_delete_without_uidvalidity(case, validity).await;
    }
}

// ----- SCRAM (threat model #88) -----

const SCRAM_CAPS: &str = "IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-256 AUTH=PLAIN";

fn scram_user() -> Credential {
    Credential::password(scram_server::USER, scram_server::PASSWORD)
}

fn imap_server_first(line: &str) -> String {
    assert!(line.starts_with("AUTHENTICATE SCRAM-SHA-256 "), "{line}");
    format!("+ {}\r\n", scram_server::server_first(line))
}

#[tokio::test]
async fn scram_with_a_forged_server_signature_is_refused_and_the_session_unusable() {
    let (mut s, server, received) = session(
        SCRAM_CAPS,
        vec![
            cmd_fn(imap_server_first),
            line_fn(|l| format!("+ {}\r\n", scram_server::forged_final(l))),
            // The client cancels; the hostile server says OK all the same.
            line("*", "{tag} OK Logged in\r\n"),
        ],
    )
    .await;
    let e = s
        .login(&scram_user(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { ref detail, .. } if detail.contains("signature is wrong"));
    let again = s.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(again, Error::Protocol { .. });
    drop(s);
    server.await.unwrap();
    assert_eq!(received.lock().unwrap().len(), 4, "{:?}", received.lock());
}

// ---- Incoming::fetch_many (pipelined downloads for `mailcat fetch`) ----

/// A sink that keeps what it is given, or fails every write.
#[derive(Default)]
struct Sink {
    bytes: Vec<u8>,
    fail: bool,
}

impl tokio::io::AsyncWrite for Sink {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.fail {
            return std::task::Poll::Ready(Err(std::io::Error::other("disk full")));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// One message's FETCH response.
fn body_item(seq: usize, uid: u32, b: &[u8]) -> Vec<u8> {
    let mut r = format!("* {seq} FETCH (UID {uid} BODY[] {{{}}}\r\n", b.len()).into_bytes();
    r.extend_from_slice(b);
    r.extend_from_slice(b")\r\n");
    r
}

/// One message's FETCH response and the completion.
fn body_reply(seq: usize, uid: u32, b: &[u8]) -> Vec<u8> {
    let mut r = body_item(seq, uid, b);
    r.extend_from_slice(b"{tag} OK Fetch completed.\r\n");
    r
}

fn imap_id(uid_validity: Option<u32>, uid: u32) -> mailcat_session::MessageId {
    mailcat_session::MessageId::Imap { uid_validity, uid }
}

#[tokio::test]
async fn incoming_fetch_many_routes_bodies_byte_exact_and_a_gone_uid_is_message_gone() {
    let bodies = [body(300), body(70_000)];
    let (s, server, received) = logged_in(
        "IMAP4rev1",
        vec![
            // UID 12 was expunged by another client after the list.
            cmd(
                "UID FETCH 11:13 (UID)",
                "* 1 FETCH (UID 11)\r\n* 2 FETCH (UID 13)\r\n{tag} OK\r\n",
            ),
            cmd_bytes(
                "UID FETCH 11:13 (UID BODY.PEEK[])",
                [body_item(1, 11, &bodies[0]), body_reply(2, 13, &bodies[1])].concat(),
            ),
        ],
    )
    .await;
    let mut incoming = mailcat_session::Incoming::Imap {
        session: s,
        selected: Some(("INBOX".into(), Some(7))),
    };
    // A stale id (another UIDVALIDITY) is refused before anything is sent.
    let stale = imap_id(Some(6), 11);
    let mut requests = vec![(&stale, Sink::default())];
    let e = incoming.fetch_many(&mut requests).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { .. });

    let ids = [
        imap_id(Some(7), 11),
        imap_id(Some(7), 12),
        imap_id(Some(7), 13),
    ];
    let mut requests: Vec<_> = ids.iter().map(|id| (id, Sink::default())).collect();
    let results = incoming.fetch_many(&mut requests).await.unwrap();
    assert_eq!(*results[0].as_ref().unwrap(), 300);
    mailcat_tests::assert_matches!(&results[1], Err(Error::MessageGone { id, .. }) if id == "12", "{:?}", results[1]);
    assert_eq!(*results[2].as_ref().unwrap(), 70_000);
    assert!(requests[0].1.bytes == bodies[0], "message 11 differs");
    assert!(requests[1].1.bytes.is_empty());
    assert!(requests[2].1.bytes == bodies[1], "message 13 differs");
    drop(incoming);
    server.await.unwrap();
    let lines = received.lock().unwrap().clone();
    assert!(
        lines[2].starts_with("A0003 UID FETCH 11:13 (UID)"),
        "the stale request sent nothing: {lines:?}"
    );
}

#[tokio::test]
async fn incoming_fetch_many_with_a_failing_sink_fails_that_message_only() {
    let bodies = [body(100), body(200)];
    let (s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd(
                "UID FETCH 1:2 (UID)",
                "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\n{tag} OK\r\n",
            ),
            cmd_bytes(
                "UID FETCH 1:2 (UID BODY.PEEK[])",
                [body_item(1, 1, &bodies[0]), body_reply(2, 2, &bodies[1])].concat(),
            ),
            cmd("NOOP", "{tag} OK\r\n"),
        ],
    )
    .await;
    // No UIDVALIDITY: reading is allowed all the same (deleting is not).
    let mut incoming = mailcat_session::Incoming::Imap {
        session: s,
        selected: Some(("INBOX".into(), None)),
    };
    let ids = [imap_id(None, 1), imap_id(None, 2)];
    let mut requests = vec![
        (
            &ids[0],
            Sink {
                bytes: Vec::new(),
                fail: true,
            },
        ),
        (&ids[1], Sink::default()),
    ];
    let results = incoming.fetch_many(&mut requests).await.unwrap();
    mailcat_tests::assert_matches!(results[0], Err(Error::Io(_)), "{:?}", results[0]);
    assert_eq!(*results[1].as_ref().unwrap(), 200);
    assert!(requests[1].1.bytes == bodies[1], "the other message whole");
    // The session is still in step.
    let mailcat_session::Incoming::Imap { session, .. } = &mut incoming else {
        unreachable!()
    };
    session.noop().await.unwrap();
    drop(incoming);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_server_that_gave_up_waiting_for_the_password_says_so_not_wrong_password() {
    let (mut s, server, received) = session(
        "IMAP4rev1 SASL-IR AUTH=PLAIN",
        vec![
            Step::Send(b"* BYE Disconnected for inactivity.\r\n".to_vec()),
            Step::Close,
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = s
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(!err.is_auth(), "{err}");
    assert!(
        err.to_string().contains("Disconnected for inactivity"),
        "{err}"
    );
    drop(s);
    server.await.unwrap();
    assert_eq!(count(&received, "AUTHENTICATE"), 0);
}

#[tokio::test(start_paused = true)]
async fn idle_dropped_in_a_select_is_ended_by_the_next_call_and_its_news_kept() {
    let (mut s, server, received) = logged_in(
        idle_caps(),
        vec![
            cmd("IDLE", "+ idling\r\n"),
            // News that comes after the caller stopped waiting, before the next call.
            Step::Sleep(Duration::from_secs(20)),
            send("* 6 EXISTS\r\n"),
            line("DONE", "* 7 EXISTS\r\n{tag} OK Idle completed.\r\n"),
            cmd("NOOP", "* 8 EXISTS\r\n{tag} OK NOOP completed.\r\n"),
        ],
    )
    .await;
    // The caller's own event ends the wait: the idle() future is dropped mid-IDLE.
    tokio::select! {
        r = s.idle(Duration::from_secs(3600)) => panic!("nothing came: {r:?}"),
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    // The next idle() ends the old IDLE (DONE) and returns what came, without a new IDLE.
    let events = s.idle(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(events, [Unsolicited::Exists(6), Unsolicited::Exists(7)]);
    // And the session is in step: the next command is answered.
    s.noop().await.unwrap();
    assert_eq!(s.take_unsolicited(), [Unsolicited::Exists(8)]);
    drop(s);
    server.await.unwrap();
    let lines = received.lock().unwrap().clone();
    assert_eq!(lines.iter().filter(|l| l.ends_with(" IDLE")).count(), 1);
    assert_eq!(lines.iter().filter(|l| *l == "DONE").count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_dropped_mid_body_is_read_to_its_end_by_the_next_command() {
    let body = body(200_000);
    let mut head = format!("* 1 FETCH (UID 5 BODY[] {{{}}}\r\n", body.len()).into_bytes();
    head.extend_from_slice(&body[..100_000]);
    let mut rest = body[100_000..].to_vec();
    // The tags: CAPABILITY A0001, AUTHENTICATE A0002, this fetch A0003.
    rest.extend_from_slice(b")\r\n* 3 EXPUNGE\r\nA0003 OK Fetch completed.\r\n");
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd_bytes("UID FETCH 5 (UID BODY.PEEK[])", head),
            Step::Sleep(Duration::from_secs(3)),
            Step::Send(rest),
            cmd("NOOP", "{tag} OK NOOP completed.\r\n"),
        ],
    )
    .await;
    let mut sink = Vec::new();
    tokio::select! {
        r = s.fetch_message(5, &mut sink) => panic!("the body is not complete: {r:?}"),
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    assert!(sink.len() <= 100_000 && body.starts_with(&sink));
    s.noop().await.unwrap();
    assert_eq!(s.take_unsolicited(), [Unsolicited::Expunge(3)]);
    drop(s);
    server.await.unwrap();
}

fn mailbox(name: &str) -> Mailbox {
    Mailbox::new(name).unwrap()
}

/// A message of three lines on the wire: `Subject: t`, an empty line, `hi`.
const LITTLE: &[u8] = b"Subject: t\r\n\r\nhi";

#[tokio::test]
async fn append_waits_for_the_continuation_and_returns_the_appenduid() {
    let date = DateTime::new(Date::new(2026, 3, 5).unwrap(), 10, 0, 0, 60).unwrap();
    let (mut s, server, received) = logged_in(
        "IMAP4rev1 UIDPLUS",
        vec![
            cmd(
                "APPEND Work (\\Seen $Done) \" 5-Mar-2026 10:00:00 +0100\" {16}",
                "+ Ready for literal data\r\n",
            ),
            line("Subject: t", ""),
            line("", ""),
            line(
                "hi",
                "* 3 EXISTS\r\n{tag} OK [APPENDUID 38505 3955] APPEND completed\r\n",
            ),
            // No APPENDUID (a server without UIDPLUS): nothing to say where it went.
            cmd("APPEND Work {16}", "+ go\r\n"),
            line("Subject: t", ""),
            line("", ""),
            line("hi", "{tag} OK APPEND completed\r\n"),
            // Refused before the literal: it is never sent, the session stays in step.
            cmd(
                "APPEND Nowhere {16}",
                "{tag} NO [TRYCREATE] Mailbox doesn't exist\r\n",
            ),
            cmd("NOOP", "{tag} OK\r\n"),
        ],
    )
    .await;
    let flags = [
        Flag::Seen,
        Flag::Keyword(mailcat_codec::imap::Keyword::new("$Done").unwrap()),
    ];
    let at = s
        .append(&mailbox("Work"), LITTLE, &flags, Some(&date))
        .await
        .unwrap();
    assert_eq!(
        at,
        Some(AppendUid {
            uid_validity: 38505,
            uid: 3955
        })
    );
    assert_eq!(
        s.append(&mailbox("Work"), LITTLE, &[], None).await.unwrap(),
        None
    );
    let e = s
        .append(&mailbox("Nowhere"), LITTLE, &[], None)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Rejected { .. });
    s.noop().await.unwrap();
    assert_eq!(s.take_unsolicited(), vec![Unsolicited::Exists(3)]);
    drop(s);
    server.await.unwrap();
    assert!(!received.lock().unwrap().iter().any(|l| l.contains("{16+}")));
}

#[tokio::test]
async fn append_with_literal_plus_sends_the_message_without_waiting() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1 LITERAL+",
        vec![
            cmd("APPEND Work {16+}", ""),
            line("Subject: t", ""),
            line("", ""),
            line("hi", "{tag} OK APPEND completed\r\n"),
        ],
    )
    .await;
    assert_eq!(
        s.append(&mailbox("Work"), LITTLE, &[], None).await.unwrap(),
        None
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn create_rename_delete_status_copy_and_flags() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1 UIDPLUS",
        vec![
            cmd("CREATE Work/2026", "{tag} OK CREATE completed\r\n"),
            cmd(
                "CREATE Work/2026",
                "{tag} NO [ALREADYEXISTS] Mailbox already exists\r\n",
            ),
            cmd(
                "STATUS Work/2026 (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)",
                "* STATUS INBOX (MESSAGES 9 UNSEEN 9)\r\n\
                 * STATUS \"Work/2026\" (MESSAGES 2 UNSEEN 1 UIDNEXT 4 UIDVALIDITY 77)\r\n\
                 {tag} OK STATUS completed\r\n",
            ),
            cmd(
                "STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)",
                "* STATUS inbox (MESSAGES 5 UNSEEN 0 UIDVALIDITY 0)\r\n{tag} OK\r\n",
            ),
            // An answer without the counts asked for is the server's fault.
            cmd(
                "STATUS Work (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)",
                "* STATUS Work (UIDNEXT 4)\r\n{tag} OK\r\n",
            ),
        ],
    )
    .await;
    let work = mailbox("Work/2026");
    s.create(&work).await.unwrap();
    let e = s.create(&work).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Rejected { .. });
    let counts = s.status(&work).await.unwrap();
    assert_eq!(
        (
            counts.messages,
            counts.unseen,
            counts.uid_next,
            counts.uid_validity
        ),
        (2, 1, Some(4), Some(77))
    );
    let inbox = s.status(&mailbox("inbox")).await.unwrap();
    assert_eq!(
        (
            inbox.messages,
            inbox.unseen,
            inbox.uid_next,
            inbox.uid_validity
        ),
        (5, 0, None, None)
    );
    let e = s.status(&mailbox("Work")).await.unwrap_err();
    mailcat_tests::assert_matches!(&e, Error::Protocol { detail, .. } if detail.contains("MESSAGES"));
    drop(s);
    server.await.unwrap();

    let (mut s, server, _) = logged_in(
        "IMAP4rev1 UIDPLUS",
        vec![
            cmd(
                "UID COPY 3:4,9 Archive",
                "{tag} OK [COPYUID 12 3:4,9 100:102] Copy completed\r\n",
            ),
            cmd("UID COPY 5 Archive", "{tag} OK Copy completed\r\n"),
            cmd(
                "UID COPY 6 Nowhere",
                "{tag} NO [TRYCREATE] Mailbox doesn't exist\r\n",
            ),
            cmd(
                "UID STORE 3:4 FLAGS.SILENT (\\Answered $Label)",
                "{tag} OK Store completed\r\n",
            ),
            cmd(
                "UID STORE 3:4 -FLAGS.SILENT (\\Flagged)",
                "{tag} OK Store completed\r\n",
            ),
            cmd("RENAME Work/2026 Play", "{tag} OK RENAME completed\r\n"),
            cmd("DELETE Play", "{tag} OK DELETE completed\r\n"),
            cmd("DELETE Play", "{tag} NO [NONEXISTENT] No such mailbox\r\n"),
        ],
    )
    .await;
    let set = |text: &str| text.parse::<SequenceSet>().unwrap();
    let copied = s
        .copy_messages(&set("3:4,9"), &mailbox("Archive"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (copied.uid_validity, copied.source, copied.target),
        (12, set("3:4,9"), set("100:102"))
    );
    assert_eq!(
        s.copy_messages(&set("5"), &mailbox("Archive"))
            .await
            .unwrap(),
        None
    );
    mailcat_tests::assert_matches!(
        s.copy_messages(&set("6"), &mailbox("Nowhere")).await,
        Err(Error::Rejected { .. })
    );
    s.store_flags(
        &set("3:4"),
        StoreMode::Replace,
        &[
            Flag::Answered,
            Flag::Keyword(mailcat_codec::imap::Keyword::new("$Label").unwrap()),
        ],
    )
    .await
    .unwrap();
    s.store_flags(&set("3:4"), StoreMode::Remove, &[Flag::Flagged])
        .await
        .unwrap();
    s.rename(&work, &mailbox("Play")).await.unwrap();
    s.delete(&mailbox("Play")).await.unwrap();
    mailcat_tests::assert_matches!(
        s.delete(&mailbox("Play")).await,
        Err(Error::Rejected { .. })
    );
    drop(s);
    server.await.unwrap();
}

#[tokio::test]
async fn the_sent_mailbox_is_found_by_special_use_else_by_name() {
    let (mut s, server, _) = logged_in(
        "IMAP4rev1",
        vec![
            cmd(
                "LIST \"\" *",
                "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
                 * LIST (\\HasNoChildren) \"/\" Sent\r\n\
                 * LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Messages\"\r\n{tag} OK\r\n",
            ),
            cmd(
                "LIST \"\" *",
                "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
                 * LIST (\\Noselect) \"/\" SENT\r\n\
                 * LIST (\\HasNoChildren) \"/\" sent\r\n{tag} OK\r\n",
            ),
            cmd(
                "LIST \"\" *",
                "* LIST (\\HasNoChildren) \"/\" INBOX\r\n{tag} OK\r\n",
            ),
            cmd(
                "LIST \"\" *",
                "* LIST (\\HasNoChildren \\Trash) \"/\" Bin\r\n{tag} OK\r\n",
            ),
        ],
    )
    .await;
    let sent = s.sent_mailbox().await.unwrap().unwrap();
    assert_eq!(sent.name, "Sent Messages");
    // Without SPECIAL-USE: the selectable one named Sent, in any case.
    let sent = s.sent_mailbox().await.unwrap().unwrap();
    assert_eq!(sent.name, "sent");
    assert_eq!(s.sent_mailbox().await.unwrap(), None);
    let trash = s
        .special_use_mailbox(&NameAttribute::Trash, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trash.name, "Bin");
    drop(s);
    server.await.unwrap();
}
