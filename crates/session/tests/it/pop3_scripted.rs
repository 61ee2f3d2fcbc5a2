//! Pop3Session against scripted servers: every command's happy path and refusals, byte-exact
//! dot-unstuffing, terminator edge cases, pipelining order and window, one-attempt login, the
//! two-line XOAUTH2, plaintext refusal, and the no-data-loss rules (threat model #20-27, #50-55).
// A table of cases is a tuple per case: its type is long, and named only once.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use crate::support::pop3_script;
use crate::support::scram_server;

use mailcat_session::{ListDetail, Plaintext};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use mailcat_codec::pop3::ResponseCodeKind;
use mailcat_session::{Credential, Error, Incoming, MessageId};
use pop3_script::*;
use tokio::io::AsyncWrite;

fn password() -> Credential {
    Credential::password("bob", PASSWORD)
}

fn count(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

// ---- login ----

#[tokio::test]
async fn user_pass_logs_in_and_refreshes_capabilities() {
    let (session, server) = logged_in(TX_CAPS_PIPELINING, vec![]).await;
    assert!(session.is_logged_in());
    assert!(session.pipelining());
    assert_eq!(
        session.apop_timestamp(),
        Some("<1896.697170952@dbc.mtview.us>")
    );
    drop(session);
    assert_eq!(
        server.received_text().await,
        format!("CAPA\r\nUSER bob\r\nPASS {PASSWORD}\r\nCAPA\r\n")
    );
}

#[tokio::test]
async fn user_pass_is_used_by_a_server_without_capa() {
    let (mut session, server) = session(
        None,
        vec![
            expect("USER bob"),
            send("+OK\r\n"),
            expect(&format!("PASS {PASSWORD}")),
            send("+OK\r\n"),
        ],
    )
    .await;
    session
        .login(&password(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(session);
    // No CAPA after login: the server has none.
    assert_eq!(count(&server.received_text().await, "CAPA"), 1);
}

#[tokio::test]
async fn a_login_that_cannot_go_sends_nothing() {
    let cases: [(&str, &[&str], Credential, Plaintext, fn(&Error)); 3] = [
        (
            "USER/PASS is not used when CAPA does not offer it",
            &["TOP", "SASL XOAUTH2"],
            password(),
            Plaintext::DangerouslyAllow,
            |err| mailcat_tests::assert_matches!(err, Error::NoUsableMechanism { .. }),
        ),
        (
            "plaintext auth is refused before anything is sent",
            CAPS,
            password(),
            Plaintext::Refuse,
            |err| mailcat_tests::assert_matches!(err, Error::PlaintextAuthRefused { .. }),
        ),
        (
            "a password with CRLF",
            &["USER"],
            Credential::password("bob", "pw\r\nDELE 1"),
            Plaintext::DangerouslyAllow,
            |err| mailcat_tests::assert_matches!(err, Error::Encode(_)),
        ),
    ];
    for (name, caps, credential, plaintext, check) in cases {
        let (mut session, server) = session(Some(caps), vec![]).await;
        let case = server.case(name);
        let err = session.login(&credential, plaintext).await.unwrap_err();
        check(&err);
        drop(session);
        assert_eq!(server.received_text().await, "CAPA\r\n", "{case}");
    }
}

#[tokio::test]
async fn a_login_that_sent_nothing_leaves_the_one_attempt() {
    // A password PASS cannot carry (a NUL) is refused before anything goes out: the one
    // attempt is still there for the right credential (the login preamble's rule, the same for
    // IMAP, POP3 and SMTP).
    let (mut session, server) = session(
        None,
        vec![
            expect("USER bob"),
            send("+OK\r\n"),
            expect(&format!("PASS {PASSWORD}")),
            send("+OK\r\n"),
        ],
    )
    .await;
    let err = session
        .login(
            &Credential::password("bob", "s3\0cret"),
            Plaintext::DangerouslyAllow,
        )
        .await
        .unwrap_err();
    assert!(!err.is_auth(), "{err:?}");
    session
        .login(&password(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    assert!(session.is_logged_in());
    drop(session);
    assert_eq!(
        server.received_text().await,
        format!("CAPA\r\nUSER bob\r\nPASS {PASSWORD}\r\n")
    );
}

#[tokio::test]
async fn a_refused_login_is_one_attempt_only() {
    let plain_ir = base64(format!("\0bob\0{PASSWORD}").as_bytes());
    let cases: [(&str, &[&str], Vec<Step>, fn(&Error), fn(&str)); 2] = [
        (
            "a wrong password",
            TX_CAPS,
            vec![
                expect("USER bob"),
                send("+OK\r\n"),
                expect(&format!("PASS {PASSWORD}")),
                send("-ERR [AUTH] Authentication failed.\r\n"),
            ],
            |err| {
                assert!(err.is_auth(), "{err}");
                mailcat_tests::assert_matches!(err, Error::AuthenticationFailed { .. });
                assert!(err.to_string().contains("[AUTH] Authentication failed."));
            },
            |received| {
                assert_eq!(count(received, "PASS"), 1, "{received}");
                assert_eq!(count(received, "USER"), 1, "{received}");
            },
        ),
        (
            "a SASL failure",
            CAPS,
            vec![
                expect(&format!("AUTH PLAIN {plain_ir}")),
                send("-ERR [AUTH] Authentication failed.\r\n"),
            ],
            |err| {
                mailcat_tests::assert_matches!(
                    err,
                    Error::AuthenticationFailed {
                        mechanism: "PLAIN",
                        ..
                    }
                );
            },
            |received| {
                assert_eq!(count(received, "AUTH"), 1, "{received}");
                assert_eq!(
                    count(received, "USER"),
                    0,
                    "no fallback to USER/PASS: {received}"
                );
            },
        ),
    ];
    for (name, caps, script, check, check_received) in cases {
        let (mut session, server) = session(Some(caps), script).await;
        let case = server.case(name);
        let err = session
            .login(&password(), Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        check(&err);
        // A second call sends nothing.
        let again = session
            .login(&password(), Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        mailcat_tests::assert_matches!(
            again,
            Error::AuthenticationAlreadyAttempted { .. },
            "{case}"
        );
        drop(session);
        check_received(&server.received_text().await);
    }
}

#[tokio::test]
async fn a_second_login_after_success_fails_without_sending() {
    let (mut session, server) = logged_in(TX_CAPS, vec![]).await;
    assert!(session
        .login(&password(), Plaintext::DangerouslyAllow)
        .await
        .is_err());
    drop(session);
    assert_eq!(count(&server.received_text().await, "USER"), 1);
}

#[tokio::test]
async fn each_mechanism_logs_in_and_refreshes_capabilities() {
    let long = "p".repeat(300);
    let token_line = base64(b"user=bob@example.test\x01auth=Bearer tok3n\x01\x01");
    let cases = vec![
        (
            "SASL PLAIN with an initial response",
            CAPS,
            password(),
            vec![
                expect(&format!(
                    "AUTH PLAIN {}",
                    base64(format!("\0bob\0{PASSWORD}").as_bytes())
                )),
                send("+OK Logged in.\r\n"),
                expect("CAPA"),
                send("+OK\r\nTOP\r\nUIDL\r\n.\r\n"),
            ],
            &["TOP", "UIDL"][..],
            None,
        ),
        (
            // RFC 5034 §4: an AUTH line over 255 octets must not carry the initial response.
            "a long initial response goes after an empty challenge",
            CAPS,
            Credential::password("bob", long.as_bytes()),
            vec![
                expect("AUTH PLAIN"),
                send("+ \r\n"),
                expect(&base64(format!("\0bob\0{long}").as_bytes())),
                send("+OK\r\n"),
                expect("CAPA"),
                send("+OK\r\n.\r\n"),
            ],
            &[][..],
            None,
        ),
        (
            // Exactly: `AUTH XOAUTH2` CRLF, then the token on its own line.
            "XOAUTH2 in Microsoft's two-line form",
            &["USER", "SASL XOAUTH2 PLAIN"][..],
            Credential::oauth2("bob@example.test", "tok3n"),
            vec![
                expect("AUTH XOAUTH2"),
                send("+ \r\n"),
                expect(&token_line),
                send("+OK User successfully authenticated.\r\n"),
                expect("CAPA"),
                send("+OK\r\nUIDL\r\n.\r\n"),
            ],
            &["UIDL"][..],
            Some(format!(
                "CAPA\r\nAUTH XOAUTH2\r\n{token_line}\r\nCAPA\r\nSTAT\r\n"
            )),
        ),
        (
            "SCRAM with the right server-final message",
            SCRAM_CAPS,
            scram_user(),
            vec![
                respond(pop3_server_first),
                respond(|l| format!("+ {}\r\n", scram_server::server_final(l))),
                expect(""),
                send("+OK Logged in.\r\n"),
                expect("CAPA"),
                send("+OK\r\nUIDL\r\n.\r\n"),
            ],
            &["UIDL"][..],
            None,
        ),
    ];
    for (name, caps, credential, mut script, caps_after, sent) in cases {
        script.extend([expect("STAT"), send("+OK 0 0\r\n")]);
        let (mut session, server) = session(Some(caps), script).await;
        let case = server.case(name);
        session
            .login(&credential, Plaintext::DangerouslyAllow)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert!(session.is_logged_in(), "{case}");
        assert_eq!(session.capabilities().items, caps_after, "{case}");
        session
            .stat()
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        drop(session);
        let received = server.received_text().await;
        assert_eq!(count(&received, "AUTH"), 1, "{case}: {received}");
        if let Some(sent) = sent {
            assert_eq!(received, sent, "{case}: all the client sent");
        }
    }
}

#[tokio::test]
async fn xoauth2_failure_json_is_decoded() {
    let json = base64(br#"{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/POP.AccessAsUser.All"}"#);
    let (mut session, server) = session(
        Some(&["SASL XOAUTH2"]),
        vec![
            expect("AUTH XOAUTH2"),
            send("+ \r\n"),
            expect(&base64(b"user=bob\x01auth=Bearer old\x01\x01")),
            send(format!("+ {json}\r\n")),
            expect(""),
            send("-ERR Authentication failure\r\n"),
        ],
    )
    .await;
    let err = session
        .login(
            &Credential::oauth2("bob", "old"),
            Plaintext::DangerouslyAllow,
        )
        .await
        .unwrap_err();
    match &err {
        Error::OAuth2Rejected { status, scope, .. } => {
            assert_eq!(status, "401");
            assert!(scope.as_deref().unwrap().contains("POP.AccessAsUser.All"));
        }
        other => panic!("{other}"),
    }
    drop(session);
    assert_eq!(count(&server.received_text().await, "AUTH"), 1);
}

#[tokio::test]
async fn a_temporary_login_refusal_is_transient_and_its_code_typed() {
    let user_pass = |reply: String| {
        vec![
            expect("USER bob"),
            send("+OK\r\n"),
            expect(&format!("PASS {PASSWORD}")),
            send(reply),
        ]
    };
    let mut cases: Vec<(
        String,
        &[&str],
        Vec<Step>,
        &str,
        &str,
        Option<ResponseCodeKind>,
    )> = ["IN-USE", "LOGIN-DELAY", "SYS/TEMP"]
        .into_iter()
        .map(|code| {
            (
                format!("USER/PASS refused with [{code}]"),
                TX_CAPS,
                user_pass(format!("-ERR [{code}] try later\r\n")),
                code,
                "try later",
                None,
            )
        })
        .collect();
    cases.push((
        "SASL refused with [IN-USE]".into(),
        CAPS,
        vec![
            expect(&format!(
                "AUTH PLAIN {}",
                base64(format!("\0bob\0{PASSWORD}").as_bytes())
            )),
            send("-ERR [IN-USE] mailbox locked\r\n"),
        ],
        "IN-USE",
        "mailbox locked",
        Some(ResponseCodeKind::InUse),
    ));
    for (name, caps, script, code, text, kind) in cases {
        let (mut session, server) = session(Some(caps), script).await;
        let case = server.case(&name);
        let err = session
            .login(&password(), Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        mailcat_tests::assert_matches!(err, Error::AuthenticationUnavailable { .. }, "{case}");
        // The response code is typed: no words to match on.
        let reply = err.reply().expect("the server's reply");
        assert_eq!(
            reply.pop3_code().map(|c| c.as_bytes()),
            Some(code.as_bytes()),
            "{case}: {reply:?}"
        );
        if let Some(kind) = kind {
            assert_eq!(reply.pop3_code_kind(), Some(kind), "{case}: {err:?}");
        }
        assert_eq!(reply.to_string(), format!("[{code}] {text}"), "{case}");
        assert!(err.is_transient(), "{case}");
        drop(session);
        server.received().await;
    }
}

// ---- transaction commands ----

#[tokio::test]
async fn stat_list_uidl() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("STAT"),
            send("+OK 2 320\r\n"),
            expect("LIST"),
            send("+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"),
            expect("LIST 2"),
            send("+OK 2 200\r\n"),
            expect("UIDL"),
            send("+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"),
            expect("UIDL 1"),
            send("+OK 1 whqtswO00WBw418f9t5JxYwZ\r\n"),
            expect("LIST 9"),
            send("-ERR no such message, only 2 messages in maildrop\r\n"),
            expect("UIDL 9"),
            send("-ERR no such message\r\n"),
            expect("LIST"),
            send("-ERR [SYS/TEMP] busy\r\n"),
            expect("STAT"),
            send("-ERR [SYS/PERM] broken\r\n"),
            expect("UIDL"),
            send("-ERR [SYS/TEMP] busy\r\n"),
        ],
    )
    .await;
    let stat = session.stat().await.unwrap();
    assert_eq!((stat.count, stat.octets), (2, 320));
    let list = session.list().await.unwrap();
    assert_eq!(
        list.iter().map(|l| (l.msg, l.octets)).collect::<Vec<_>>(),
        [(1, 120), (2, 200)]
    );
    assert_eq!(session.list_one(2).await.unwrap().octets, 200);
    let uids = session.uidl().await.unwrap();
    assert_eq!(uids.len(), 2);
    assert_eq!(uids[1].msg, 2);
    assert_eq!(uids[1].uid, "QhdPYR:00WBw1Ph7x7");
    assert_eq!(
        session.uidl_one(1).await.unwrap().uid,
        "whqtswO00WBw418f9t5JxYwZ"
    );
    mailcat_tests::assert_matches!(session.list_one(9).await, Err(Error::Rejected { .. }));
    mailcat_tests::assert_matches!(session.uidl_one(9).await, Err(Error::Rejected { .. }));
    let busy = session.list().await.unwrap_err();
    mailcat_tests::assert_matches!(busy, Error::Temporary { .. });
    assert!(busy.is_transient(), "{busy}");
    mailcat_tests::assert_matches!(session.stat().await, Err(Error::Rejected { .. }));
    mailcat_tests::assert_matches!(session.uidl().await, Err(Error::Temporary { .. }));
    drop(session);
    server.received().await;
}

#[tokio::test]
async fn a_malformed_stat_is_a_protocol_error() {
    let (mut session, server) =
        logged_in(TX_CAPS, vec![expect("STAT"), send("+OK lots\r\n")]).await;
    mailcat_tests::assert_matches!(session.stat().await, Err(Error::Protocol { .. }));
    drop(session);
    server.received().await;
}

#[tokio::test]
async fn top_streams_the_header() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("TOP 1 0"),
            send("+OK\r\nSubject: hi\r\n..hidden: x\r\n\r\n.\r\n"),
            expect("TOP 7 3"),
            send("-ERR no such message\r\n"),
        ],
    )
    .await;
    let mut out = Vec::new();
    assert_eq!(session.top(1, 0, &mut out).await.unwrap(), 27);
    assert_eq!(out, b"Subject: hi\r\n.hidden: x\r\n\r\n");
    let mut none = Vec::new();
    mailcat_tests::assert_matches!(
        session.top(7, 3, &mut none).await,
        Err(Error::Rejected { .. })
    );
    assert!(none.is_empty());
    drop(session);
    server.received().await;
}

#[tokio::test]
async fn dele_rset_noop_quit() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("DELE 1"),
            send("+OK message 1 deleted\r\n"),
            expect("DELE 1"),
            send("-ERR message 1 already deleted\r\n"),
            expect("DELE 2"),
            send("-ERR [SYS/TEMP] try again\r\n"),
            expect("RSET"),
            send("+OK maildrop has 2 messages\r\n"),
            expect("NOOP"),
            send("+OK\r\n"),
            expect("QUIT"),
            send("+OK bye\r\n"),
        ],
    )
    .await;
    session.dele(1).await.unwrap();
    mailcat_tests::assert_matches!(session.dele(1).await, Err(Error::Rejected { .. }));
    let temporary = session.dele(2).await.unwrap_err();
    mailcat_tests::assert_matches!(temporary, Error::Temporary { .. });
    assert_eq!(
        temporary.reply().and_then(|r| r.pop3_code_kind()),
        Some(ResponseCodeKind::SysTemp),
        "the response code of a Temporary is typed: {temporary:?}"
    );
    assert_eq!(
        temporary.to_string(),
        "pop.test.invalid temporarily refused DELE: [SYS/TEMP] try again",
        "the message reads as it always did"
    );
    session.rset().await.unwrap();
    session.noop().await.unwrap();
    session.quit().await.unwrap();
    server.received().await;
}

#[tokio::test]
async fn rset_noop_and_quit_refusals() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("RSET"),
            send("-ERR no\r\n"),
            expect("NOOP"),
            send("-ERR [SYS/TEMP] no\r\n"),
            expect("QUIT"),
            send("-ERR some deleted messages not removed\r\n"),
        ],
    )
    .await;
    mailcat_tests::assert_matches!(session.rset().await, Err(Error::Rejected { .. }));
    mailcat_tests::assert_matches!(session.noop().await, Err(Error::Temporary { .. }));
    mailcat_tests::assert_matches!(session.quit().await, Err(Error::Rejected { .. }));
    server.received().await;
}

#[tokio::test]
async fn message_number_zero_sends_nothing() {
    let (mut session, server) = logged_in(TX_CAPS, vec![]).await;
    mailcat_tests::assert_matches!(session.dele(0).await, Err(Error::Encode(_)));
    mailcat_tests::assert_matches!(
        session
            .retrieve_many(&[1, 0], |_| async { Ok(Vec::new()) })
            .await,
        Err(Error::Encode(_))
    );
    drop(session);
    let received = server.received_text().await;
    assert!(
        !received.contains("DELE") && !received.contains("RETR"),
        "{received}"
    );
}

// ---- RETR: byte-exact unstuffing and terminators (threat model #50, #51) ----

const STUFFED: &[u8] = b"Subject: dots\r\n\r\n..x\r\n..\r\n...\r\n\r\n..\r\nend .\r\n";
const UNSTUFFED: &[u8] = b"Subject: dots\r\n\r\n.x\r\n.\r\n..\r\n\r\n.\r\nend .\r\n";

fn retr_reply(body: &[u8]) -> Vec<u8> {
    let mut reply = b"+OK message follows\r\n".to_vec();
    reply.extend_from_slice(body);
    reply.extend_from_slice(b".\r\n");
    reply
}

/// Each case: how the server sends message 1, and the body that must come of it.
#[tokio::test]
async fn a_message_arrives_byte_exact_and_the_next_reply_is_its_own() {
    let cases: [(&str, Step, &[u8]); 5] = [
        (
            "RETR unstuffs byte-exact",
            Step::Send(retr_reply(STUFFED)),
            UNSTUFFED,
        ),
        (
            "RETR split byte by byte",
            Step::Drip(retr_reply(STUFFED), Duration::ZERO),
            UNSTUFFED,
        ),
        ("an empty message", send("+OK\r\n.\r\n"), b""),
        (
            // The server adds the CRLF before the dot: it is part of the message.
            "a message without a final CRLF",
            send("+OK\r\nno newline at the end\r\n.\r\n"),
            b"no newline at the end\r\n",
        ),
        (
            "a bare LF terminator is not the end",
            send("+OK\r\nline\n.\nmore\r\n.\r\n"),
            b"line\n.\nmore\r\n",
        ),
    ];
    for (name, reply, body) in cases {
        let (mut session, server) = logged_in(
            TX_CAPS,
            vec![expect("RETR 1"), reply, expect("NOOP"), send("+OK\r\n")],
        )
        .await;
        let case = server.case(name);
        let mut out = Vec::new();
        let n = session
            .retrieve(1, &mut out)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(body),
            "{case}"
        );
        assert_eq!(out, body, "{case}");
        assert_eq!(n, body.len() as u64, "{case}");
        // The reply was consumed exactly: the next command gets its own answer.
        session
            .noop()
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        drop(session);
        server.received().await;
    }
}

#[tokio::test]
async fn eof_before_the_terminator_is_an_error() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("RETR 1"),
            send("+OK\r\npartial message\r\n.\r"),
            Step::CloseWrite,
        ],
    )
    .await;
    let mut out = Vec::new();
    let err = session.retrieve(1, &mut out).await.unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Transport(_), "{err}");
    // The session is unusable: no QUIT is sent, nothing is committed.
    assert!(session.noop().await.is_err());
    assert!(session.quit().await.is_err());
    let received = server.received_text().await;
    assert!(
        !received.contains("QUIT") && !received.contains("NOOP"),
        "{received}"
    );
}

/// A sink that records what it got and whether it was shut down (= complete).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

/// A message number, the bytes its sink got, and whether the sink was shut down.
type Recorded = (u32, Vec<u8>, bool);

struct RecorderSink {
    all: Recorder,
    index: usize,
}

impl Recorder {
    fn open(&self, msg: u32) -> RecorderSink {
        let mut all = self.0.lock().unwrap();
        all.push((msg, Vec::new(), false));
        RecorderSink {
            all: self.clone(),
            index: all.len() - 1,
        }
    }

    fn take(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }
}

impl AsyncWrite for RecorderSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.all.0.lock().unwrap()[self.index]
            .1
            .extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.all.0.lock().unwrap()[self.index].2 = true;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn eof_mid_pipeline_reports_nothing_incomplete_as_complete() {
    let (mut session, server) = logged_in(
        TX_CAPS_PIPELINING,
        vec![
            expect("RETR 1"),
            expect("RETR 2"),
            send("+OK\r\none\r\n.\r\n+OK\r\ntwo, cut"),
            Step::CloseWrite,
        ],
    )
    .await;
    let recorder = Recorder::default();
    let r = recorder.clone();
    let err = session
        .retrieve_many(&[1, 2], move |msg| {
            let sink = r.open(msg);
            async move { Ok(sink) }
        })
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Transport(_), "{err}");
    assert_eq!(
        recorder.take(),
        [
            (1, b"one\r\n".to_vec(), true),
            (2, b"two, cut".to_vec(), false)
        ]
    );
    drop(session);
    server.received().await;
}

// ---- pipelining (RFC 2449 §6.6) ----

#[tokio::test]
async fn pipelined_retrs_are_all_sent_before_the_first_reply() {
    let (mut session, server) = logged_in(
        TX_CAPS_PIPELINING,
        vec![
            expect("RETR 3"),
            expect("RETR 1"),
            expect("RETR 2"),
            // Only now, with all three read, does the server answer.
            send("+OK\r\nthree\r\n.\r\n-ERR [SYS/TEMP] message 1 locked\r\n+OK\r\n..two\r\n.\r\n"),
            expect("NOOP"),
            send("+OK\r\n"),
        ],
    )
    .await;
    let recorder = Recorder::default();
    let r = recorder.clone();
    let results = session
        .retrieve_many(&[3, 1, 2], move |msg| {
            let sink = r.open(msg);
            async move { Ok(sink) }
        })
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &7);
    mailcat_tests::assert_matches!(results[1], Err(Error::Temporary { .. }));
    assert_eq!(results[2].as_ref().unwrap(), &6);
    assert_eq!(
        recorder.take(),
        [
            (3, b"three\r\n".to_vec(), true),
            (2, b".two\r\n".to_vec(), true)
        ]
    );
    session.noop().await.unwrap();
    drop(session);
    server.received().await;
}

#[tokio::test(start_paused = true)]
async fn the_pipeline_window_is_bounded() {
    let count = 12u32;
    let mut script = Vec::new();
    for n in 1..=8 {
        script.push(expect(&format!("RETR {n}")));
    }
    script.push(Step::Silence(Duration::from_millis(100)));
    for n in 1..=count {
        script.push(send(format!("+OK\r\nmessage {n}\r\n.\r\n")));
        if n + 8 <= count {
            script.push(expect(&format!("RETR {}", n + 8)));
        }
    }
    let (mut session, server) = logged_in(TX_CAPS_PIPELINING, script).await;
    let recorder = Recorder::default();
    let r = recorder.clone();
    let messages: Vec<u32> = (1..=count).collect();
    let results = session
        .retrieve_many(&messages, move |msg| {
            let sink = r.open(msg);
            async move { Ok(sink) }
        })
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    for (i, (msg, body, complete)) in recorder.take().into_iter().enumerate() {
        assert_eq!(msg, i as u32 + 1);
        assert_eq!(body, format!("message {msg}\r\n").into_bytes());
        assert!(complete);
    }
    drop(session);
    server.received().await;
}

#[tokio::test(start_paused = true)]
async fn without_pipelining_one_command_at_a_time() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("RETR 1"),
            Step::Silence(Duration::from_millis(100)),
            send("+OK\r\none\r\n.\r\n"),
            expect("RETR 2"),
            Step::Silence(Duration::from_millis(50)),
            send("+OK\r\ntwo\r\n.\r\n"),
        ],
    )
    .await;
    let results = session
        .retrieve_many(&[1, 2], |_| async { Ok(Vec::new()) })
        .await
        .unwrap();
    assert_eq!(
        results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(),
        [5, 5]
    );
    drop(session);
    server.received().await;
}

// ---- no data loss (threat model #52, #54, #55) ----

#[tokio::test]
async fn a_session_ended_after_dele_sends_no_quit() {
    for (name, abort) in [("abort after DELE", true), ("dropping after DELE", false)] {
        let (mut session, server) =
            logged_in(TX_CAPS, vec![expect("DELE 1"), send("+OK\r\n")]).await;
        let case = server.case(name);
        session
            .dele(1)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        if abort {
            session.abort().await;
        } else {
            drop(session);
        }
        let received = server.received_text().await;
        assert!(!received.contains("QUIT"), "{case}: {received}");
    }
}

/// Fails every write after `left` bytes (a full disk).
struct FullDisk {
    left: usize,
}

impl AsyncWrite for FullDisk {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.left == 0 {
            return Poll::Ready(Err(std::io::Error::other("No space left on device")));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_failing_sink_leaves_the_session_unusable_and_quit_unsent() {
    let mut body = b"+OK\r\n".to_vec();
    for i in 0..2000 {
        body.extend_from_slice(format!("line {i} of a long message\r\n").as_bytes());
    }
    body.extend_from_slice(b".\r\n");
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("DELE 2"),
            send("+OK\r\n"),
            expect("RETR 1"),
            Step::Send(body),
        ],
    )
    .await;
    session.dele(2).await.unwrap();
    let err = session
        .retrieve(1, &mut FullDisk { left: 100 })
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Io(_), "{err}");
    mailcat_tests::assert_matches!(session.dele(1).await, Err(Error::Protocol { .. }));
    assert!(session.quit().await.is_err());
    let received = server.received_text().await;
    assert!(!received.contains("QUIT"), "{received}");
    assert_eq!(count(&received, "DELE"), 1);
}

#[tokio::test]
async fn unsolicited_lines_after_a_reply_stop_the_session() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![expect("NOOP"), send("+OK\r\n+OK injected\r\n")],
    )
    .await;
    mailcat_tests::assert_matches!(session.noop().await, Err(Error::Protocol { .. }));
    assert!(session.dele(1).await.is_err());
    drop(session);
    assert!(!server.received_text().await.contains("DELE"));
}

#[tokio::test]
async fn a_continuation_outside_auth_is_a_protocol_error() {
    let (mut session, server) = logged_in(TX_CAPS, vec![expect("STAT"), send("+ abc\r\n")]).await;
    mailcat_tests::assert_matches!(session.stat().await, Err(Error::Transport(_)));
    drop(session);
    server.received().await;
}

// ---- huge listings (threat model #40) ----

#[tokio::test]
async fn a_listing_over_a_million_lines_is_refused() {
    let mut listing = b"+OK\r\n".to_vec();
    for n in 1..=1_000_001u32 {
        listing.extend_from_slice(format!("{n} 4096\r\n").as_bytes());
    }
    listing.extend_from_slice(b".\r\n");
    let (mut session, server) = logged_in(TX_CAPS, vec![expect("LIST"), Step::Send(listing)]).await;
    let err = session.list().await.unwrap_err();
    assert!(err.to_string().contains("lines"), "{err}");
    drop(session);
    server.received().await;
}

#[tokio::test]
async fn a_large_uidl_streams_line_by_line() {
    let lines = 200_000u32;
    let mut listing = b"+OK\r\n".to_vec();
    for n in 1..=lines {
        listing.extend_from_slice(format!("{n} 000000{n:08x}5f3c2a11\r\n").as_bytes());
    }
    listing.extend_from_slice(b".\r\n");
    let (mut session, server) = logged_in(TX_CAPS, vec![expect("UIDL"), Step::Send(listing)]).await;
    let uids = session.uidl().await.unwrap();
    assert_eq!(uids.len(), lines as usize);
    assert_eq!(uids[199_999].uid, format!("000000{:08x}5f3c2a11", 200_000));
    drop(session);
    server.received().await;
}

#[tokio::test]
async fn a_uidl_of_long_ids_stops_at_the_byte_limit() {
    // 8,000-character unique-ids (the parser accepts them up to the line limit): 10^6 of them
    // would be 8 GB; the listing stops at MAX_LISTING_BYTES.
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("UIDL"),
            send("+OK\r\n"),
            Step::Lines {
                count: 1_000_000,
                line: |i| format!("{} {}\r\n", i + 1, "u".repeat(8_000)),
            },
        ],
    )
    .await;
    let err = session.uidl().await.unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Protocol { ref detail, .. } if detail.contains("131072 KiB"), "{err}");
    assert!(session.noop().await.is_err(), "the session is out of step");
    drop(session);
    server.received().await;
}

#[tokio::test]
async fn a_capa_of_endless_lines_after_login_is_refused() {
    let (mut session, server) = session(
        Some(TX_CAPS),
        vec![
            expect("USER bob"),
            send("+OK\r\n"),
            expect(&format!("PASS {PASSWORD}")),
            send("+OK logged in\r\n"),
            expect("CAPA"),
            send("+OK\r\n"),
            Step::Lines {
                count: 1_000_000,
                line: |i| format!("X-CAP-{i}\r\n"),
            },
        ],
    )
    .await;
    let err = session
        .login(&password(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Protocol { ref detail, .. } if detail.contains("1000 lines"), "{err}");
    drop(session);
    server.received().await;
}

#[tokio::test]
async fn incoming_list_matches_200k_sizes_and_ids_in_linear_time() {
    // Quadratic matching (a search of the LIST answer per UIDL line) takes over a minute here.
    const N: usize = 200_000;
    let (session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("STAT"),
            send("+OK 200000 0\r\n"),
            expect("UIDL"),
            send("+OK\r\n"),
            Step::Lines {
                count: N,
                line: |i| format!("{} uid-{i}\r\n", i + 1),
            },
            send(".\r\n"),
            expect("LIST"),
            send("+OK\r\n"),
            // Newest first: the order of LIST does not matter.
            Step::Lines {
                count: N,
                line: |i| format!("{} {}\r\n", N - i, 1000 + N - i),
            },
            send(".\r\n"),
        ],
    )
    .await;
    let mut incoming = Incoming::Pop3 {
        session,
        numbers: Default::default(),
    };
    let started = std::time::Instant::now();
    let listed = incoming.list(None, ListDetail::Sizes).await.unwrap();
    // A generous bound: ~2 s here in a debug build, ~85 s with the quadratic matching.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(listed.len(), N);
    for i in [0, 1, N / 2, N - 1] {
        assert_eq!(listed[i].id.key(), format!("uid-{i}"));
        assert_eq!(listed[i].size, Some(1000 + i as u64 + 1));
    }
    drop(incoming);
    server.received().await;
}

// ---- large bodies stream (DESIGN.md: bounded memory whatever the size) ----

/// Counts bytes and remembers the largest single write.
#[derive(Default)]
struct Meter {
    total: u64,
    largest: usize,
    dots: u64,
}

impl AsyncWrite for Meter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.total += buf.len() as u64;
        self.largest = self.largest.max(buf.len());
        self.dots += buf.iter().filter(|&&b| b == b'.').count() as u64;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_50_mb_message_streams_in_chunks() {
    // 50 MiB of 1 KiB lines, each starting with a stuffed dot.
    let mut line = b"..".to_vec();
    line.resize(1022, b'x');
    line.extend_from_slice(b"\r\n");
    let lines = 50 * 1024;
    let mut reply = b"+OK\r\n".to_vec();
    reply.reserve(lines * line.len() + 8);
    for _ in 0..lines {
        reply.extend_from_slice(&line);
    }
    reply.extend_from_slice(b".\r\n");
    let (mut session, server) = session_with_buffer(
        Some(TX_CAPS),
        {
            let mut s = login_steps(TX_CAPS);
            s.extend([expect("RETR 1"), Step::Send(reply)]);
            s
        },
        256 * 1024,
    )
    .await;
    session
        .login(&password(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    let mut meter = Meter::default();
    let n = session.retrieve(1, &mut meter).await.unwrap();
    assert_eq!(n, (lines * 1023) as u64);
    assert_eq!(meter.total, n);
    assert_eq!(
        meter.dots, lines as u64,
        "one dot per line after unstuffing"
    );
    assert!(
        meter.largest <= 1 << 20,
        "a write of {} bytes: the body was buffered",
        meter.largest
    );
    drop(session);
    server.received().await;
}

// ---- SASL: success only once the exchange is complete (threat model #41's class) ----

/// The login failed with "the server claimed success ..." and the session refuses STAT.
async fn assert_claimed_success_and_unusable(
    case: &Case,
    result: Result<(), Error>,
    session: &mut mailcat_session::Pop3Session<tokio::io::DuplexStream>,
) {
    let e = result.unwrap_err();
    mailcat_tests::assert_matches!(
        e,
        Error::Protocol { ref detail, .. } if detail.contains("claimed success"),
        "{case}"
    );
    assert!(!e.is_auth(), "{case}: {e:?}");
    assert!(!session.is_logged_in(), "{case}");
    let again = session.stat().await.unwrap_err();
    mailcat_tests::assert_matches!(again, Error::Protocol { .. }, "{case}");
}

#[tokio::test]
async fn an_ok_before_the_exchange_is_complete_is_not_a_login() {
    let cases = vec![
        (
            "XOAUTH2's two-line form answered +OK before the token",
            &["SASL XOAUTH2"][..],
            Credential::oauth2("bob@example.test", "tok3n"),
            vec![
                expect("AUTH XOAUTH2"),
                send("+OK User successfully authenticated.\r\n"),
            ],
            Some("CAPA\r\nAUTH XOAUTH2\r\n".to_owned()),
        ),
        (
            "PLAIN too long for an initial response answered +OK instead of +",
            CAPS,
            Credential::password("bob", "p".repeat(300).as_bytes()),
            vec![expect("AUTH PLAIN"), send("+OK Logged in.\r\n")],
            Some("CAPA\r\nAUTH PLAIN\r\n".to_owned()),
        ),
        (
            // The password is not sent.
            "LOGIN answered +OK after the user name",
            &["SASL LOGIN"][..],
            password(),
            vec![
                expect("AUTH LOGIN"),
                send("+ VXNlcm5hbWU6\r\n"),
                expect(&base64(b"bob")),
                send("+OK Logged in.\r\n"),
            ],
            Some(format!("CAPA\r\nAUTH LOGIN\r\n{}\r\n", base64(b"bob"))),
        ),
        (
            "SCRAM answered +OK without the server-final message",
            SCRAM_CAPS,
            scram_user(),
            vec![
                respond(pop3_server_first),
                respond(|l| {
                    scram_server::server_final(l);
                    "+OK Logged in.\r\n".into()
                }),
            ],
            None,
        ),
    ];
    for (name, caps, credential, script, sent) in cases {
        let (mut session, server) = session(Some(caps), script).await;
        let case = server.case(name);
        let result = session
            .login(&credential, Plaintext::DangerouslyAllow)
            .await;
        assert_claimed_success_and_unusable(&case, result, &mut session).await;
        drop(session);
        let received = server.received_text().await;
        assert_eq!(count(&received, "STAT"), 0, "{case}");
        if let Some(sent) = sent {
            assert_eq!(received, sent, "{case}: all the client sent");
        }
    }
}

const SCRAM_CAPS: &[&str] = &["UIDL", "SASL SCRAM-SHA-256 PLAIN"];

fn scram_user() -> Credential {
    Credential::password(scram_server::USER, scram_server::PASSWORD)
}

fn pop3_server_first(line: &str) -> String {
    assert!(line.starts_with("AUTH SCRAM-SHA-256 "), "{line}");
    format!("+ {}\r\n", scram_server::server_first(line))
}

#[tokio::test]
async fn scram_with_a_forged_server_signature_is_refused_and_the_session_unusable() {
    let (mut session, server) = session(
        Some(SCRAM_CAPS),
        vec![
            respond(pop3_server_first),
            respond(|l| format!("+ {}\r\n", scram_server::forged_final(l))),
            // The client cancels; the hostile server says +OK all the same.
            expect("*"),
            send("+OK Logged in.\r\n"),
        ],
    )
    .await;
    let e = session
        .login(&scram_user(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { ref detail, .. } if detail.contains("signature is wrong"));
    assert!(!session.is_logged_in());
    let again = session.stat().await.unwrap_err();
    mailcat_tests::assert_matches!(again, Error::Protocol { .. });
    drop(session);
    assert_eq!(count(&server.received_text().await, "STAT"), 0);
}

// ---- Incoming::fetch_many / fetch_start (pipelined downloads for `mailcat fetch`) ----

/// A sink that keeps what it is given, or fails every write.
#[derive(Default)]
struct Sink {
    bytes: Vec<u8>,
    fail: bool,
}

impl Sink {
    fn failing() -> Self {
        Self {
            bytes: Vec::new(),
            fail: true,
        }
    }
}

impl AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.fail {
            return Poll::Ready(Err(std::io::Error::other("disk full")));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// An `Incoming` over a scripted session that listed messages 1..=3 as `u1`..`u3`.
fn incoming_of(
    session: mailcat_session::Pop3Session<tokio::io::DuplexStream>,
) -> (Incoming<tokio::io::DuplexStream>, Vec<MessageId>) {
    let ids: Vec<_> = (1..=3)
        .map(|n| MessageId::Pop3 {
            uidl: Some(format!("u{n}")),
            number: n,
        })
        .collect();
    let incoming = Incoming::Pop3 {
        session,
        numbers: (1..=3).map(|n| (n, Some(format!("u{n}")))).collect(),
    };
    (incoming, ids)
}

#[tokio::test]
async fn fetch_many_pipelines_retr_and_routes_each_body_to_its_sink_byte_exact() {
    let (session, server) = logged_in(
        TX_CAPS_PIPELINING,
        vec![
            expect("RETR 1"),
            expect("RETR 2"),
            expect("RETR 3"),
            // All three commands are in before the first reply: pipelined.
            send("+OK\r\n..one\r\nline\r\n.\r\n-ERR no such message\r\n+OK\r\nthree\r\n.\r\n"),
            expect("NOOP"),
            send("+OK\r\n"),
        ],
    )
    .await;
    let (mut incoming, ids) = incoming_of(session);
    let mut requests: Vec<_> = ids.iter().map(|id| (id, Sink::default())).collect();
    let results = incoming.fetch_many(&mut requests).await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &12);
    mailcat_tests::assert_matches!(results[1], Err(Error::MessageGone { ref id, .. }) if id == "2");
    assert_eq!(results[2].as_ref().unwrap(), &7);
    assert_eq!(requests[0].1.bytes, b".one\r\nline\r\n");
    assert_eq!(requests[1].1.bytes, b"");
    assert_eq!(requests[2].1.bytes, b"three\r\n");
    // All replies read: the session takes commands again.
    let Incoming::Pop3 { session, .. } = &mut incoming else {
        unreachable!()
    };
    session.noop().await.unwrap();
    drop(incoming);
    server.received().await;
}

/// POP3 has no expunge notice: a server without an exclusive maildrop lock refuses the RETR of
/// a listed message another client deleted. Words that say so make it `MessageGone` (that
/// message skipped, not the fetch failed); a response code or other words do not.
#[tokio::test]
async fn a_retr_refused_because_the_message_was_deleted_meanwhile_is_message_gone() {
    for (reply, gone) in [
        ("-ERR Message 2 expunged.", true),
        ("-ERR no such message", true),
        ("-ERR Message already deleted", true),
        ("-ERR [SYS/PERM] message expunged", false),
        ("-ERR [SYS/TEMP] try again later", false),
        ("-ERR cannot read that message", false),
    ] {
        let (session, server) = logged_in(
            TX_CAPS_PIPELINING,
            vec![
                expect("RETR 2"),
                send(format!("{reply}\r\n")),
                expect("RETR 2"),
                send(format!("{reply}\r\n")),
            ],
        )
        .await;
        let _case = server.case(&format!(
            "{reply:?} is {}",
            if gone {
                "message gone"
            } else {
                "another refusal"
            }
        ));
        let (mut incoming, ids) = incoming_of(session);
        let mut fetching = incoming.fetch_start(&[&ids[1]]).await.unwrap();
        let streamed = incoming
            .fetch_next(&mut fetching, &mut Sink::default())
            .await
            .unwrap()
            .expect("one reply");
        let single = incoming.fetch(&ids[1], &mut Sink::default()).await;
        for (how, result) in [("fetch_next", streamed), ("fetch", single)] {
            let err = result.expect_err(reply);
            assert_eq!(
                matches!(err, Error::MessageGone { ref id, .. } if id == "2"),
                gone,
                "{reply} through {how}: {err:?}"
            );
        }
        drop(incoming);
        server.received().await;
    }
}

#[tokio::test]
async fn fetch_many_without_pipelining_sends_one_retr_at_a_time() {
    let (session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("RETR 2"),
            send("+OK\r\ntwo\r\n.\r\n"),
            expect("RETR 3"),
            send("+OK\r\nthree\r\n.\r\n"),
        ],
    )
    .await;
    let (mut incoming, ids) = incoming_of(session);
    let mut requests = vec![(&ids[1], Sink::default()), (&ids[2], Sink::default())];
    let results = incoming.fetch_many(&mut requests).await.unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| *r.as_ref().unwrap())
            .collect::<Vec<_>>(),
        [5, 7]
    );
    assert_eq!(requests[0].1.bytes, b"two\r\n");
    assert_eq!(requests[1].1.bytes, b"three\r\n");
    drop(incoming);
    server.received().await;
}

#[tokio::test]
async fn fetch_many_with_a_failing_sink_fails_that_message_only_and_stays_in_step() {
    let (session, server) = logged_in(
        TX_CAPS_PIPELINING,
        vec![
            expect("RETR 1"),
            expect("RETR 2"),
            expect("RETR 3"),
            send("+OK\r\none\r\n.\r\n+OK\r\ntwo\r\n.\r\n+OK\r\nthree\r\n.\r\n"),
            expect("NOOP"),
            send("+OK\r\n"),
        ],
    )
    .await;
    let (mut incoming, ids) = incoming_of(session);
    let mut requests = vec![
        (&ids[0], Sink::default()),
        (&ids[1], Sink::failing()),
        (&ids[2], Sink::default()),
    ];
    let results = incoming.fetch_many(&mut requests).await.unwrap();
    assert_eq!(*results[0].as_ref().unwrap(), 5);
    mailcat_tests::assert_matches!(results[1], Err(Error::Io(_)), "{:?}", results[1]);
    assert_eq!(*results[2].as_ref().unwrap(), 7);
    assert_eq!(requests[0].1.bytes, b"one\r\n");
    assert_eq!(requests[2].1.bytes, b"three\r\n", "the next message whole");
    let Incoming::Pop3 { session, .. } = &mut incoming else {
        unreachable!()
    };
    session.noop().await.unwrap();
    drop(incoming);
    server.received().await;
}

#[tokio::test]
async fn fetch_many_and_fetch_start_check_every_id_before_sending_anything() {
    let (session, server) = logged_in(TX_CAPS_PIPELINING, vec![]).await;
    let (mut incoming, ids) = incoming_of(session);
    let stale = MessageId::Pop3 {
        uidl: Some("another".into()),
        number: 2,
    };
    let mut requests = vec![(&ids[0], Sink::default()), (&stale, Sink::default())];
    let e = incoming.fetch_many(&mut requests).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Misuse { .. });
    let e = incoming.fetch_start(&[&ids[0], &stale]).await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Misuse { .. });
    drop(incoming);
    let sent = String::from_utf8_lossy(&server.received().await).into_owned();
    assert!(!sent.contains("RETR"), "{sent}");
}

#[tokio::test]
async fn fetch_start_lets_each_sink_be_opened_between_replies_and_blocks_other_commands() {
    let (session, server) = logged_in(
        TX_CAPS_PIPELINING,
        vec![
            expect("RETR 1"),
            expect("RETR 3"),
            send("+OK\r\none\r\n.\r\n+OK\r\nthree\r\n.\r\n"),
            expect("DELE 1"),
            send("+OK\r\n"),
        ],
    )
    .await;
    let (mut incoming, ids) = incoming_of(session);
    let mut fetching = incoming.fetch_start(&[&ids[0], &ids[2]]).await.unwrap();
    let mut first = Sink::default();
    assert_eq!(
        incoming
            .fetch_next(&mut fetching, &mut first)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        5
    );
    assert_eq!(first.bytes, b"one\r\n");
    // A reply is still unread: a DELE now would take it for its own. Refused, nothing sent.
    let e = incoming.delete(&ids[..1]).await.unwrap_err();
    mailcat_tests::assert_matches!(
        e,
        Error::Misuse { .. },
        "the caller's mistake, not the server's: {e:?}"
    );
    let mut third = Sink::default();
    assert_eq!(
        incoming
            .fetch_next(&mut fetching, &mut third)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        7
    );
    assert_eq!(third.bytes, b"three\r\n");
    assert!(incoming
        .fetch_next(&mut fetching, &mut Sink::default())
        .await
        .unwrap()
        .is_none());
    incoming.delete(&ids[..1]).await.unwrap();
    drop(incoming);
    server.received().await;
}

#[tokio::test]
async fn a_session_with_retr_replies_unread_sends_no_quit() {
    let (mut session, server) =
        logged_in(TX_CAPS_PIPELINING, vec![expect("RETR 1"), expect("RETR 2")]).await;
    let _pending = session.retrieve_start(&[1, 2]).await.unwrap();
    assert!(session.quit().await.is_err());
    let sent = String::from_utf8_lossy(&server.received().await).into_owned();
    assert!(!sent.contains("QUIT"), "{sent}");
}

// ---- Incoming::list on servers without the optional UIDL and TOP (threat model #53) ----

fn incoming(
    session: mailcat_session::Pop3Session<tokio::io::DuplexStream>,
) -> Incoming<tokio::io::DuplexStream> {
    Incoming::Pop3 {
        session,
        numbers: Default::default(),
    }
}

/// A listing: the server's caps and its answers after STAT, the detail asked for, then each
/// message listed (its key, size and subject), whether its ids are stable, and that the last
/// one can be fetched on the session by the id listed.
struct ListingCase {
    name: &'static str,
    caps: &'static [&'static str],
    stat: &'static str,
    script: Vec<Step>,
    detail: ListDetail,
    listed: &'static [(&'static str, u64, Option<&'static str>)],
    stable: bool,
}

#[tokio::test]
async fn a_listing_gets_each_size_id_and_subject_to_its_message() {
    let cases = vec![
        ListingCase {
            name: "a server without UIDL is listed by message numbers valid in the session",
            caps: &["USER", "TOP"],
            stat: "+OK 2 30\r\n",
            script: vec![
                expect("UIDL"),
                send("-ERR unknown command\r\n"),
                expect("LIST"),
                send("+OK\r\n1 10\r\n2 20\r\n.\r\n"),
            ],
            detail: ListDetail::Sizes,
            listed: &[("1", 10, None), ("2", 20, None)],
            stable: false,
        },
        ListingCase {
            name: "a server listing out of order gets each size to its message, oldest first",
            caps: TX_CAPS,
            stat: "+OK 3 60\r\n",
            script: vec![
                expect("UIDL"),
                send("+OK\r\n3 c\r\n1 a\r\n2 b\r\n.\r\n"),
                expect("LIST"),
                send("+OK\r\n2 20\r\n3 30\r\n1 10\r\n.\r\n"),
            ],
            detail: ListDetail::Sizes,
            listed: &[("a", 10, None), ("b", 20, None), ("c", 30, None)],
            stable: true,
        },
        ListingCase {
            // TOP once: the next line the server sees is the RETR.
            name: "without TOP the list has no headers and tries TOP once",
            caps: &["USER", "UIDL"],
            stat: "+OK 2 30\r\n",
            script: vec![
                expect("UIDL"),
                send("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
                expect("LIST"),
                send("+OK\r\n1 10\r\n2 20\r\n.\r\n"),
                expect("TOP 1 0"),
                send("-ERR unknown command\r\n"),
            ],
            detail: ListDetail::Headers,
            listed: &[("a", 10, None), ("b", 20, None)],
            stable: true,
        },
        ListingCase {
            name: "a list with headers pipelines TOP and keeps each subject with its message",
            caps: TX_CAPS_PIPELINING,
            stat: "+OK 3 60\r\n",
            script: vec![
                expect("UIDL"),
                send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n.\r\n"),
                expect("LIST"),
                send("+OK\r\n1 10\r\n2 20\r\n3 30\r\n.\r\n"),
                expect("TOP 1 0"),
                expect("TOP 2 0"),
                expect("TOP 3 0"),
                // All three are in before the first reply: pipelined. The second is gone.
                send("+OK\r\nSubject: one\r\n\r\n.\r\n-ERR no such message\r\n+OK\r\nSubject: three\r\n\r\n.\r\n"),
            ],
            detail: ListDetail::Headers,
            listed: &[("a", 10, Some("one")), ("b", 20, None), ("c", 30, Some("three"))],
            stable: true,
        },
    ];
    for ListingCase {
        name,
        caps,
        stat,
        script,
        detail,
        listed: expected,
        stable,
    } in cases
    {
        let last = expected.len();
        let mut steps = vec![expect("STAT"), send(stat)];
        steps.extend(script);
        steps.extend([
            expect(&format!("RETR {last}")),
            send("+OK\r\nlast\r\n.\r\n"),
        ]);
        let (session, server) = logged_in(caps, steps).await;
        let case = server.case(name);
        let mut incoming = incoming(session);
        let listed = incoming
            .list(None, detail)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        let got: Vec<_> = listed
            .iter()
            .map(|m| (m.id.key(), m.size, m.headers.subject.clone()))
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|&(key, size, subject)| (key.to_owned(), Some(size), subject.map(str::to_owned)))
            .collect();
        assert_eq!(got, want, "{case}");
        assert!(
            listed.iter().all(|m| m.id.is_stable() == stable),
            "{case}: stable ids: {stable}"
        );
        let mut sink = Sink::default();
        incoming
            .fetch(&listed[last - 1].id, &mut sink)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(sink.bytes, b"last\r\n", "{case}");
        drop(incoming);
        server.received().await;
    }
}

#[tokio::test]
async fn a_listing_the_server_gets_wrong_is_an_error() {
    let cases: [(&str, Vec<Step>, fn(&Error), bool); 2] = [
        (
            "UIDL refused by a server that announces it is an error",
            vec![expect("UIDL"), send("-ERR not now\r\n")],
            |err| mailcat_tests::assert_matches!(err, Error::Rejected { .. }, "{err}"),
            true,
        ),
        (
            // The client stops reading: the server is not waited for.
            "a listing far longer than STAT announced is refused",
            vec![
                expect("UIDL"),
                send("+OK\r\n"),
                Step::Lines {
                    count: 5_000,
                    line: |i| format!("{} u{i}\r\n", i + 1),
                },
                send(".\r\n"),
            ],
            |err| mailcat_tests::assert_matches!(err, Error::Protocol { ref detail, .. } if detail.contains("1002 lines"), "{err}"),
            false,
        ),
    ];
    for (name, script, check, read_to_the_end) in cases {
        let mut steps = vec![expect("STAT"), send("+OK 2 20\r\n")];
        steps.extend(script);
        let (session, server) = logged_in(TX_CAPS, steps).await;
        let case = server.case(name);
        let err = incoming(session)
            .list(None, ListDetail::Sizes)
            .await
            .unwrap_err();
        check(&err);
        if read_to_the_end {
            server.received().await;
        }
        drop(case);
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_second_reply_stops_the_session_before_the_next_command() {
    // The planted reply comes in a packet of its own, after the real one was read.
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("NOOP"),
            send("+OK\r\n"),
            Step::Silence(Duration::from_millis(50)),
            send("+OK planted\r\n"),
        ],
    )
    .await;
    session.noop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = session.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Protocol { ref detail, .. } if detail.contains("+OK planted"), "{err}");
    assert!(session.noop().await.is_err(), "the session is out of step");
    drop(session);
    let received = server.received_text().await;
    assert_eq!(count(&received, "NOOP"), 1, "{received:?}");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_gave_up_waiting_for_the_password_is_not_sent_it() {
    // The server's inactivity limit passed while the password was being typed: its parting
    // words must not be taken for the answer to USER (a "wrong password").
    let (mut session, server) = session(
        Some(TX_CAPS),
        vec![
            Step::Silence(Duration::from_millis(50)),
            send("-ERR Disconnected for inactivity.\r\n"),
            Step::CloseWrite,
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = session
        .login(&password(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Protocol { ref detail, .. } if detail.contains("Disconnected for inactivity"), "{err}");
    drop(session);
    let received = server.received_text().await;
    assert_eq!(count(&received, "USER"), 0, "{received:?}");
}

#[tokio::test]
async fn incoming_lists_more_than_a_million_messages_as_stat_announced() {
    // A fixed limit of 10^6 listing lines refused the UIDL of a larger maildrop.
    const N: usize = 1_000_500;
    let (session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("STAT"),
            send("+OK 1000500 600300000\r\n"),
            expect("UIDL"),
            send("+OK\r\n"),
            Step::Lines {
                count: N,
                line: |i| format!("{} u{i}\r\n", i + 1),
            },
            send(".\r\n"),
            expect("LIST"),
            send("+OK\r\n"),
            Step::Lines {
                count: N,
                line: |i| format!("{} 600\r\n", i + 1),
            },
            send(".\r\n"),
        ],
    )
    .await;
    let mut incoming = incoming(session);
    let mut listing = incoming.list_start(None, Some(2)).await.unwrap();
    assert_eq!(listing.len(), 2, "the newest two");
    // Only those two were held, not the million before them (a ring of the last lines).
    let Incoming::Pop3 { numbers, .. } = &incoming else {
        unreachable!()
    };
    assert_eq!(numbers.len(), 2);
    assert!(numbers.heap_bytes() < 100, "{} bytes", numbers.heap_bytes());
    let batch = incoming
        .list_next(&mut listing, ListDetail::Sizes)
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<_> = batch.iter().map(|m| (m.id.key(), m.size)).collect();
    assert_eq!(
        keys,
        [
            ("u1000498".to_owned(), Some(600)),
            ("u1000499".to_owned(), Some(600))
        ]
    );
    assert!(incoming
        .list_next(&mut listing, ListDetail::Sizes)
        .await
        .unwrap()
        .is_none());
    // An older message was not listed on this session: it is neither fetched nor deleted.
    let older = MessageId::Pop3 {
        uidl: Some("u0".into()),
        number: 1,
    };
    let err = incoming
        .fetch(&older, &mut Sink::default())
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Misuse { ref what, .. } if what.contains("not in this session's list"), "{err}");
    assert!(incoming.delete(&[older]).await.is_err());
    drop(incoming);
    let received = server.received_text().await;
    assert!(
        !received.contains("RETR") && !received.contains("DELE"),
        "{received}"
    );
}

#[tokio::test]
async fn a_filtered_listing_holds_only_what_is_kept_and_needs_no_list_when_that_is_nothing() {
    let (session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("STAT"),
            send("+OK 5 150\r\n"),
            expect("UIDL"),
            send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n4 d\r\n5 e\r\n.\r\n"),
            expect("LIST"),
            send("+OK\r\n1 10\r\n2 20\r\n3 30\r\n4 40\r\n5 50\r\n.\r\n"),
            expect("DELE 4"),
            send("+OK\r\n"),
            // The second listing: every UIDL refused, so no LIST.
            expect("STAT"),
            send("+OK 4 110\r\n"),
            expect("UIDL"),
            send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n5 e\r\n.\r\n"),
            expect("NOOP"),
            send("+OK\r\n"),
        ],
    )
    .await;
    let mut incoming = incoming(session);
    let mut asked = Vec::new();
    let mut listing = incoming
        .list_start_filtered(None, None, |uidl| {
            asked.push(uidl.to_owned());
            uidl == "b" || uidl == "d"
        })
        .await
        .unwrap();
    assert_eq!(asked, ["a", "b", "c", "d", "e"], "each UIDL, as it came");
    assert!(listing.stable_ids());
    let listed = incoming
        .list_next(&mut listing, ListDetail::Sizes)
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<_> = listed.iter().map(|m| (m.id.key(), m.size)).collect();
    assert_eq!(
        keys,
        [("b".to_owned(), Some(20)), ("d".to_owned(), Some(40))]
    );
    // What was left out cannot be fetched or deleted on the session; what was kept can.
    let left_out = MessageId::Pop3 {
        uidl: Some("a".into()),
        number: 1,
    };
    assert!(incoming.delete(&[left_out]).await.is_err());
    incoming.delete(&[listed[1].id.clone()]).await.unwrap();

    let listing = incoming
        .list_start_filtered(None, None, |_| false)
        .await
        .unwrap();
    assert!(listing.is_empty());
    assert!(
        listing.stable_ids(),
        "the server has UIDL, nothing was kept"
    );
    let Incoming::Pop3 { session, numbers } = &mut incoming else {
        unreachable!()
    };
    assert!(numbers.is_empty());
    // In step: the next command gets its own answer (LIST was not sent).
    session.noop().await.unwrap();
    drop(incoming);
    let received = server.received_text().await;
    assert_eq!(count(&received, "LIST"), 1, "{received}");
    assert_eq!(count(&received, "DELE"), 1, "{received}");
}

#[tokio::test]
async fn a_filtered_listing_without_uidl_still_says_its_ids_are_not_stable() {
    let (session, server) = logged_in(
        &["USER", "TOP"],
        vec![
            expect("STAT"),
            send("+OK 2 30\r\n"),
            expect("UIDL"),
            send("-ERR unknown command\r\n"),
            expect("LIST"),
            send("+OK\r\n1 10\r\n2 20\r\n.\r\n"),
        ],
    )
    .await;
    let mut incoming = incoming(session);
    let mut asked = Vec::new();
    let listing = incoming
        .list_start_filtered(None, None, |key| {
            asked.push(key.to_owned());
            false
        })
        .await
        .unwrap();
    assert_eq!(asked, ["1", "2"], "the numbers, as keys");
    assert!(listing.is_empty());
    // A caller that checks before trusting "nothing new" is told, even with nothing kept.
    assert!(!listing.stable_ids());
    drop(incoming);
    server.received().await;
}

/// Cancel safety: a `retrieve` dropped in the middle of its message (a `select!` that chose a
/// timeout) leaves the session in step. The rest of the reply is read and discarded before the
/// next command, whose answer is its own.
#[tokio::test(start_paused = true)]
async fn a_retrieve_dropped_halfway_leaves_the_session_in_step() {
    let (mut session, server) = logged_in(
        TX_CAPS,
        vec![
            expect("RETR 1"),
            send("+OK\r\nSubject: first half\r\n"),
            Step::Silence(Duration::from_millis(300)),
            send("second half\r\n.\r\n"),
            expect("STAT"),
            send("+OK 1 44\r\n"),
        ],
    )
    .await;
    let mut out = Vec::new();
    tokio::select! {
        _ = session.retrieve(1, &mut out) => panic!("the message is not complete yet"),
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    assert_eq!(out, b"Subject: first half\r\n", "what came before the drop");
    let stat = session.stat().await.expect("the session is still usable");
    assert_eq!((stat.count, stat.octets), (1, 44));
    drop(session);
    server.received().await;
}

/// Cancel safety of pipelining: a `retrieve_many` dropped in its second message sends no
/// further `RETR` (the ninth went out when the first reply completed); the replies already due
/// are read and discarded, and the next command gets its own answer.
#[tokio::test(start_paused = true)]
async fn a_retrieve_many_dropped_sends_nothing_more_and_stays_in_step() {
    let mut script: Vec<Step> = (1..=8).map(|n| expect(&format!("RETR {n}"))).collect();
    script.extend([
        send("+OK\r\none\r\n.\r\n+OK\r\ntwo, half"),
        expect("RETR 9"),
        Step::Silence(Duration::from_millis(300)),
        send(" two\r\n.\r\n"),
    ]);
    script.extend((3..=9).map(|n| send(format!("+OK\r\nmessage {n}\r\n.\r\n"))));
    // RETR 10 and on are never sent: NOOP comes next.
    script.extend([expect("NOOP"), send("+OK\r\n")]);
    let (mut session, server) = logged_in(TX_CAPS_PIPELINING, script).await;
    let recorder = Recorder::default();
    let r = recorder.clone();
    let messages: Vec<u32> = (1..=20).collect();
    tokio::select! {
        _ = session.retrieve_many(&messages, move |msg| {
            let sink = r.open(msg);
            async move { Ok(sink) }
        }) => panic!("message 2 is not complete yet"),
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    assert_eq!(
        recorder.take(),
        [
            (1, b"one\r\n".to_vec(), true),
            (2, b"two, half".to_vec(), false)
        ],
        "the message cut by the drop was never shut down"
    );
    session.noop().await.expect("in step");
    drop(session);
    server.received().await;
}

/// Standard base64, as SASL sends it.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
