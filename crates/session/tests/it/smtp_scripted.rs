//! SmtpSession against scripted servers: AUTH (PLAIN with and without an initial response,
//! LOGIN, the XOAUTH2 failure, basic auth disabled, one attempt only, no password without TLS,
//! a chosen mechanism: that one or none), pipelining, per-recipient results, 4xx/5xx/421,
//! SIZE/8BITMIME/SMTPUTF8 checks before sending, dot-stuffing and CRLF normalisation, a lost
//! connection after the final dot, reuse.
// A table of cases is a tuple per case: its type is long, and named only once.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use crate::support::scram_server;
use crate::support::smtp_script;

use mailcat_session::Plaintext;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use mailcat_session::smtp::{
    Address, Dsn, Envelope, HeaderCompletion, MessageInfo, Notify, PartialDelivery, Pipelining,
    Ret, SmtpUtf8,
};
use mailcat_session::{Credential, Error, Mechanism};
use smtp_script::{data, expect, group, respond, send, start, start_case, Act, Case};
use tokio::io::{AsyncRead, ReadBuf};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn addr(a: &str) -> Address {
    Address::new(a).unwrap()
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        from: Some(addr("alice@example.test")),
        to: to.iter().map(|t| addr(t)).collect(),
        ..Default::default()
    }
}

fn alice() -> Credential {
    Credential::password("alice@example.test", "s3cret")
}

/// Sends `message` with the info a scan gives.
async fn send_bytes(
    session: &mut mailcat_session::smtp::SmtpSession<tokio::io::DuplexStream>,
    envelope: &Envelope,
    message: &[u8],
) -> Result<mailcat_session::smtp::SendReport, Error> {
    let info = MessageInfo::of_bytes(message);
    session.send(envelope, &mut &message[..], &info).await
}

// ---- AUTH ----

/// A login whose exchange the server completes: one AUTH, a session that stays open, and a
/// second login refused without anything sent.
struct LoginCase {
    name: &'static str,
    extensions: &'static [&'static str],
    credential: Credential,
    script: Vec<Act>,
}

#[tokio::test]
async fn each_mechanism_logs_in_with_one_auth_and_only_once() {
    let plain_ir = b64(b"\0alice@example.test\0s3cret");
    let long_password = "p".repeat(400);
    let long_token = "t".repeat(1500);
    let token = "ya29.token";
    let port = mailcat_transport::Endpoint::new(
        mailcat_transport::Protocol::Smtp,
        smtp_script::HOST,
        mailcat_transport::Security::DangerousPlaintext,
    )
    .port;
    let oauthbearer_ir = b64(format!(
        "n,a=alice@example.test,\x01host={}\x01port={port}\x01auth=Bearer {token}\x01\x01",
        smtp_script::HOST
    )
    .as_bytes());
    let cases = vec![
        LoginCase {
            name: "PLAIN goes as an initial response",
            extensions: &["AUTH PLAIN LOGIN", "PIPELINING"],
            credential: alice(),
            script: vec![
                expect(&format!("AUTH PLAIN {plain_ir}")),
                send("235 2.7.0 Authentication successful\r\n"),
            ],
        },
        LoginCase {
            name: "PLAIN answers the empty challenge when the line would be too long",
            extensions: &["AUTH PLAIN"],
            credential: Credential::password("alice@example.test", long_password.clone()),
            script: vec![
                expect("AUTH PLAIN"),
                send("334 \r\n"),
                expect(&b64(
                    format!("\0alice@example.test\0{long_password}").as_bytes()
                )),
                send("235 2.7.0 ok\r\n"),
            ],
        },
        LoginCase {
            name: "LOGIN answers two prompts",
            extensions: &["AUTH LOGIN"],
            credential: alice(),
            script: vec![
                expect("AUTH LOGIN"),
                send("334 VXNlcm5hbWU6\r\n"),
                expect(&b64(b"alice@example.test")),
                send("334 UGFzc3dvcmQ6\r\n"),
                expect(&b64(b"s3cret")),
                send("235 2.7.0 ok\r\n"),
            ],
        },
        LoginCase {
            name: "a long XOAUTH2 token goes after the empty challenge",
            extensions: &["AUTH XOAUTH2"],
            credential: Credential::oauth2("alice@example.test", long_token.clone()),
            script: vec![
                expect("AUTH XOAUTH2"),
                send("334 \r\n"),
                expect(&b64(format!(
                    "user=alice@example.test\x01auth=Bearer {long_token}\x01\x01"
                )
                .as_bytes())),
                send("235 2.7.0 Authentication successful\r\n"),
            ],
        },
        LoginCase {
            name: "a chosen OAUTHBEARER is used where XOAUTH2 would be picked",
            extensions: &["AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER"],
            credential: Credential::oauth2("alice@example.test", token)
                .with_mechanism(Mechanism::OAuthBearer)
                .unwrap(),
            script: vec![
                expect(&format!("AUTH OAUTHBEARER {oauthbearer_ir}")),
                send("235 2.7.0 Authentication successful\r\n"),
            ],
        },
        LoginCase {
            name: "SCRAM with the right server-final message",
            extensions: &["AUTH SCRAM-SHA-256 PLAIN"],
            credential: scram_user(),
            script: vec![
                respond(smtp_server_first),
                respond(|l| format!("334 {}\r\n", scram_server::server_final(l))),
                expect(""),
                send("235 2.7.0 Authentication successful\r\n"),
            ],
        },
    ];
    for LoginCase {
        name,
        extensions,
        credential,
        mut script,
    } in cases
    {
        script.push(Act::Eof);
        let (mut session, server, case) = start_case(name, extensions, script).await;
        session
            .login(&credential, Plaintext::DangerouslyAllow)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert!(!session.is_closed(), "{case}");
        let again = session
            .login(&credential, Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        mailcat_tests::assert_matches!(
            again,
            Error::AuthenticationAlreadyAttempted { .. },
            "{case}"
        );
        drop(session);
        assert_eq!(server.await.unwrap().count("AUTH"), 1, "{case}");
    }
}

#[tokio::test]
async fn a_refused_xoauth2_token_reports_the_decoded_json_after_one_attempt() {
    let token = "ya29.token";
    let ir = b64(format!("user=alice@example.test\x01auth=Bearer {token}\x01\x01").as_bytes());
    let json = b64(br#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#);
    let (mut session, server) = start(
        &["AUTH PLAIN LOGIN XOAUTH2"],
        vec![
            expect(&format!("AUTH XOAUTH2 {ir}")),
            send(format!("334 {json}\r\n")),
            expect(""),
            send("535 5.7.8 Username and Password not accepted\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let credential = Credential::oauth2("alice@example.test", token);
    let err = session
        .login(&credential, Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    match &err {
        Error::OAuth2Rejected { status, scope, .. } => {
            assert_eq!(status, "401");
            assert_eq!(scope.as_deref(), Some("https://mail.google.com/"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_auth());
    let again = session
        .login(&credential, Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(again, Error::AuthenticationAlreadyAttempted { .. });
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn a_refused_auth_is_one_attempt_and_an_error_named_for_its_reply() {
    let ir = b64(b"\0alice@example.test\0s3cret");
    let cases: [(&str, &[&str], &str, fn(&Error)); 3] = [
        (
            "535 5.7.139 says basic authentication is disabled",
            &["AUTH LOGIN PLAIN XOAUTH2"],
            "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.\r\n",
            |err| {
                mailcat_tests::assert_matches!(err, Error::BasicAuthDisabled { .. });
                assert!(err.to_string().contains("OAuth2"), "{err}");
            },
        ),
        (
            "535 5.7.8 is a wrong password, an auth error",
            &["AUTH PLAIN LOGIN"],
            "535 5.7.8 Error: authentication failed: authentication failure\r\n",
            |err| {
                mailcat_tests::assert_matches!(err, Error::AuthenticationFailed { .. });
                assert!(err.to_string().contains("535 5.7.8"), "{err}");
            },
        ),
        (
            "454 is a temporary authentication failure",
            &["AUTH PLAIN"],
            "454 4.7.0 Temporary authentication failure\r\n",
            |err| {
                mailcat_tests::assert_matches!(err, Error::AuthenticationUnavailable { .. });
                assert!(err.is_transient(), "{err:?}");
            },
        ),
    ];
    for (name, extensions, reply, check) in cases {
        let (mut session, server, case) = start_case(
            name,
            extensions,
            vec![expect(&format!("AUTH PLAIN {ir}")), send(reply), Act::Eof],
        )
        .await;
        let err = session
            .login(&alice(), Plaintext::DangerouslyAllow)
            .await
            .unwrap_err();
        check(&err);
        // Not LOGIN next with the same password: the session refuses a second attempt.
        mailcat_tests::assert_matches!(
            session
                .login(&alice(), Plaintext::DangerouslyAllow)
                .await
                .unwrap_err(),
            Error::AuthenticationAlreadyAttempted { .. },
            "{case}"
        );
        drop(session);
        assert_eq!(server.await.unwrap().count("AUTH"), 1, "{case}");
    }
}

#[tokio::test]
async fn a_login_that_cannot_go_sends_nothing() {
    let cases: [(&str, &[&str], Credential, Plaintext, fn(&Error)); 4] = [
        (
            "no password is sent without TLS unless allowed",
            &["AUTH PLAIN LOGIN"],
            alice(),
            Plaintext::Refuse,
            |err| mailcat_tests::assert_matches!(err, Error::PlaintextAuthRefused { .. }),
        ),
        (
            "a server without a usable mechanism gets nothing",
            &["AUTH XOAUTH2"],
            alice(),
            Plaintext::DangerouslyAllow,
            |err| mailcat_tests::assert_matches!(err, Error::NoUsableMechanism { .. }),
        ),
        (
            // SCRAM-SHA-256 asked for, so that the password itself never crosses the wire; the
            // server offers PLAIN and LOGIN, which the automatic choice would take (threat
            // model #21).
            "a chosen mechanism the server lacks: no other is tried",
            &["AUTH PLAIN LOGIN"],
            alice().with_mechanism(Mechanism::ScramSha256).unwrap(),
            Plaintext::DangerouslyAllow,
            |err| {
                mailcat_tests::assert_matches!(
                    err,
                    Error::MechanismNotOffered { mechanism: Mechanism::ScramSha256, offered, .. }
                        if offered == &["PLAIN", "LOGIN"]
                );
                assert!(
                    err.to_string().starts_with(
                        "smtp.test does not offer SCRAM-SHA-256, the login mechanism asked for \
                         (it offers: PLAIN, LOGIN)"
                    ),
                    "{err}"
                );
                assert!(!err.is_auth() && err.is_config(), "{err:?}");
            },
        ),
        (
            "a chosen PLAIN is still not sent without TLS unless allowed",
            &["AUTH PLAIN LOGIN"],
            alice().with_mechanism(Mechanism::Plain).unwrap(),
            Plaintext::Refuse,
            |err| mailcat_tests::assert_matches!(err, Error::PlaintextAuthRefused { .. }),
        ),
    ];
    for (name, extensions, credential, plaintext, check) in cases {
        let (mut session, server, case) = start_case(name, extensions, vec![Act::Eof]).await;
        let err = session.login(&credential, plaintext).await.unwrap_err();
        check(&err);
        drop(session);
        assert!(server.await.unwrap().0.is_empty(), "{case}");
    }
}

#[tokio::test]
async fn a_login_refused_before_anything_is_sent_leaves_the_one_attempt() {
    // The login preamble's rule, the same for IMAP, POP3 and SMTP: only a login that sent
    // something uses up the one attempt. (SMTP used to spend it on a plaintext refusal.)
    let ir = b64(b"\0alice@example.test\0s3cret");
    let cases: [(&str, Credential, Plaintext, fn(&Error)); 2] = [
        ("a plaintext refusal", alice(), Plaintext::Refuse, |err| {
            mailcat_tests::assert_matches!(err, Error::PlaintextAuthRefused { .. });
        }),
        (
            // A password PLAIN cannot carry (a NUL) is refused before anything goes out.
            "a password PLAIN cannot carry",
            Credential::password("alice@example.test", "s3\0cret"),
            Plaintext::DangerouslyAllow,
            |err| assert!(!err.is_auth(), "{err:?}"),
        ),
    ];
    for (name, first, plaintext, check) in cases {
        let (mut session, server, case) = start_case(
            name,
            &["AUTH PLAIN LOGIN"],
            vec![
                expect(&format!("AUTH PLAIN {ir}")),
                send("235 2.7.0 Authentication successful\r\n"),
                Act::Eof,
            ],
        )
        .await;
        let err = session.login(&first, plaintext).await.unwrap_err();
        check(&err);
        session
            .login(&alice(), Plaintext::DangerouslyAllow)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        drop(session);
        assert_eq!(server.await.unwrap().count("AUTH"), 1, "{case}");
    }
}

// ---- AUTH: success only once the exchange is complete (threat model #41's class) ----

/// The login failed with "the server claimed success ..." and the session sends no message.
async fn assert_claimed_success_and_unusable(
    case: &Case,
    result: Result<(), Error>,
    session: &mut mailcat_session::smtp::SmtpSession<tokio::io::DuplexStream>,
) {
    let e = result.unwrap_err();
    mailcat_tests::assert_matches!(
        e,
        Error::Protocol { ref detail, .. } if detail.contains("claimed success"),
        "{case}"
    );
    assert!(!e.is_auth(), "{case}: {e:?}");
    assert!(session.is_closed(), "{case}");
    let again = send_bytes(
        session,
        &envelope(&["bob@example.test"]),
        b"Subject: x\r\n\r\nx\r\n",
    )
    .await
    .unwrap_err();
    // Poisoned after a desync, as IMAP and POP3 are: a protocol error, not the server's close.
    mailcat_tests::assert_matches!(again, Error::Protocol { .. }, "{case}");
}

#[tokio::test]
async fn a_235_before_the_exchange_is_complete_is_not_a_login() {
    let cases = vec![
        (
            // A real token (1-2 KiB) never fits on the 512-octet AUTH line: it goes after
            // `334 `.
            "XOAUTH2 too long for an initial response, answered 235 before the token",
            &["AUTH XOAUTH2", "PIPELINING"][..],
            Credential::oauth2("alice@example.test", "t".repeat(1500)),
            vec![
                expect("AUTH XOAUTH2"),
                send("235 2.7.0 Authentication successful\r\n"),
            ],
            Some("AUTH XOAUTH2\r\n".to_owned()),
        ),
        (
            "PLAIN too long for an initial response, answered 235 instead of 334",
            &["AUTH PLAIN"][..],
            Credential::password("alice@example.test", "p".repeat(400)),
            vec![expect("AUTH PLAIN"), send("235 2.7.0 ok\r\n")],
            Some("AUTH PLAIN\r\n".to_owned()),
        ),
        (
            // The password is not sent.
            "LOGIN answered 235 after the user name",
            &["AUTH LOGIN"][..],
            alice(),
            vec![
                expect("AUTH LOGIN"),
                send("334 VXNlcm5hbWU6\r\n"),
                expect(&b64(b"alice@example.test")),
                send("235 2.7.0 ok\r\n"),
            ],
            Some(format!("AUTH LOGIN\r\n{}\r\n", b64(b"alice@example.test"))),
        ),
        (
            "SCRAM answered 235 without the server-final message",
            &["AUTH SCRAM-SHA-256 PLAIN"][..],
            scram_user(),
            vec![
                respond(smtp_server_first),
                respond(|l| {
                    scram_server::server_final(l);
                    "235 2.7.0 ok\r\n".into()
                }),
            ],
            None,
        ),
    ];
    for (name, extensions, credential, mut script, sent) in cases {
        script.push(Act::Drain);
        let (mut session, server, case) = start_case(name, extensions, script).await;
        let result = session
            .login(&credential, Plaintext::DangerouslyAllow)
            .await;
        assert_claimed_success_and_unusable(&case, result, &mut session).await;
        drop(session);
        let received = server.await.unwrap();
        assert_eq!(received.count("MAIL"), 0, "{case}");
        if let Some(sent) = sent {
            assert_eq!(received.text(), sent, "{case}: all the client sent");
        }
    }
}

fn scram_user() -> Credential {
    Credential::password(scram_server::USER, scram_server::PASSWORD)
}

fn smtp_server_first(line: &str) -> String {
    assert!(line.starts_with("AUTH SCRAM-SHA-256 "), "{line}");
    format!("334 {}\r\n", scram_server::server_first(line))
}

#[tokio::test]
async fn scram_with_a_forged_server_signature_is_refused_and_the_session_unusable() {
    let (mut session, server) = start(
        &["AUTH SCRAM-SHA-256 PLAIN"],
        vec![
            respond(smtp_server_first),
            respond(|l| format!("334 {}\r\n", scram_server::forged_final(l))),
            // The client cancels; the hostile server says 235 all the same.
            expect("*"),
            send("235 2.7.0 ok\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let e = session
        .login(&scram_user(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(
        e,
        Error::Protocol { ref detail, .. } if detail.contains("signature is wrong")
    );
    assert!(session.is_closed());
    let again = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(again, Error::Protocol { .. });
    drop(session);
    assert_eq!(server.await.unwrap().count("MAIL"), 0);
}

// ---- sending ----

const HELLO: &[u8] = b"Subject: hi\r\n\r\nHello\r\n";

type Session = mailcat_session::smtp::SmtpSession<tokio::io::DuplexStream>;

/// A message the server takes: what crossed the wire for it, given the extensions offered and
/// the session's settings.
struct SendCase {
    name: &'static str,
    extensions: &'static [&'static str],
    setup: fn(&mut Session),
    envelope: Envelope,
    message: &'static [u8],
    script: Vec<Act>,
    /// The server's last reply, as the report gives it.
    reply: &'static str,
}

#[tokio::test]
async fn a_message_goes_with_what_the_extensions_and_settings_ask_for() {
    let eight_bit = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    let dsn_asked = Envelope {
        dsn: Dsn {
            notify: Some(Notify::On {
                success: true,
                failure: true,
                delay: false,
            }),
            ret: Some(Ret::Headers),
            envid: None,
        },
        ..envelope(&["bob@example.test"])
    };
    let with_id = Envelope {
        dsn: Dsn {
            notify: None,
            ret: None,
            envid: Some("QQ314159 a+b".into()),
        },
        ..envelope(&["bob@example.test"])
    };
    /// MAIL, RCPT and DATA one at a time with `mail` for MAIL, then the body.
    fn one_by_one(mail: &str, rcpt: &str, message: &[u8]) -> Vec<Act> {
        vec![
            expect(mail),
            send("250 2.1.0 Ok\r\n"),
            expect(rcpt),
            send("250 2.1.5 Ok\r\n"),
            expect("DATA"),
            send("354 go\r\n"),
            data([message, b".\r\n"].concat()),
            send("250 2.0.0 Ok\r\n"),
        ]
    }
    let cases = vec![
        SendCase {
            name: "pipelining sends MAIL, RCPT, RCPT, DATA in one write",
            extensions: &["PIPELINING", "SIZE 10000000", "8BITMIME"],
            setup: |s| s.set_partial_delivery(PartialDelivery::ToAccepted),
            envelope: envelope(&["bob@example.test", "carol@example.test"]),
            message: HELLO,
            script: vec![
                group(&[
                    "MAIL FROM:<alice@example.test> SIZE=22",
                    "RCPT TO:<bob@example.test>",
                    "RCPT TO:<carol@example.test>",
                    "DATA",
                ]),
                send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
                data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
                send("250 2.0.0 Ok: queued as 1234\r\n"),
            ],
            reply: "250 2.0.0 Ok: queued as 1234",
        },
        SendCase {
            name: "with several recipients, DATA waits for their replies by default",
            extensions: &["PIPELINING"],
            setup: |_| {},
            envelope: envelope(&["bob@example.test", "carol@example.test"]),
            message: HELLO,
            script: vec![
                group(&[
                    "MAIL FROM:<alice@example.test>",
                    "RCPT TO:<bob@example.test>",
                    "RCPT TO:<carol@example.test>",
                ]),
                send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"),
                expect("DATA"),
                send("354 go\r\n"),
                data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
                send("250 2.0.0 Ok: queued\r\n"),
            ],
            reply: "250 2.0.0 Ok: queued",
        },
        SendCase {
            name: "without pipelining, commands go one at a time",
            extensions: &["PIPELINING"],
            setup: |s| s.set_pipelining(Pipelining::Off),
            envelope: envelope(&["bob@example.test", "carol@example.test"]),
            message: HELLO,
            script: vec![
                expect("MAIL FROM:<alice@example.test>"),
                send("250 Ok\r\n"),
                expect("RCPT TO:<bob@example.test>"),
                send("250 Ok\r\n"),
                expect("RCPT TO:<carol@example.test>"),
                send("250 Ok\r\n"),
                expect("DATA"),
                send("354 go\r\n"),
                data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
                send("250 Ok\r\n"),
            ],
            reply: "250 Ok",
        },
        SendCase {
            name: "a UTF-8 address is sent with SMTPUTF8",
            extensions: &["PIPELINING", "8BITMIME", "SMTPUTF8"],
            setup: |_| {},
            envelope: envelope(&["j\u{f6}rg@example.test"]),
            message: HELLO,
            script: vec![
                group(&[
                    "MAIL FROM:<alice@example.test> BODY=8BITMIME SMTPUTF8",
                    "RCPT TO:<j\u{f6}rg@example.test>",
                    "DATA",
                ]),
                send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
                data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
                send("250 Ok\r\n"),
            ],
            reply: "250 Ok",
        },
        // 8BITMIME and SMTPUTF8 offered: UTF-8 in a header is 8-bit content, declared SMTPUTF8
        // only when asked to be strict (a later hop without SMTPUTF8 would bounce it).
        SendCase {
            name: "UTF-8 in a header is declared 8BITMIME",
            extensions: &["8BITMIME", "SMTPUTF8"],
            setup: |s| s.set_smtputf8(SmtpUtf8::Auto),
            envelope: envelope(&["bob@example.test"]),
            message: eight_bit,
            script: one_by_one(
                "MAIL FROM:<alice@example.test> BODY=8BITMIME",
                "RCPT TO:<bob@example.test>",
                eight_bit,
            ),
            reply: "250 2.0.0 Ok",
        },
        SendCase {
            name: "UTF-8 in a header is declared SMTPUTF8 when strict",
            extensions: &["8BITMIME", "SMTPUTF8"],
            setup: |s| s.set_smtputf8(SmtpUtf8::Strict),
            envelope: envelope(&["bob@example.test"]),
            message: eight_bit,
            script: one_by_one(
                "MAIL FROM:<alice@example.test> BODY=8BITMIME SMTPUTF8",
                "RCPT TO:<bob@example.test>",
                eight_bit,
            ),
            reply: "250 2.0.0 Ok",
        },
        SendCase {
            name: "delivery status notifications are asked for with DSN",
            extensions: &["DSN"],
            setup: |_| {},
            envelope: dsn_asked.clone(),
            message: HELLO,
            script: one_by_one(
                "MAIL FROM:<alice@example.test> RET=HDRS",
                "RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE",
                HELLO,
            ),
            reply: "250 2.0.0 Ok",
        },
        SendCase {
            name: "an envelope id goes as xtext with DSN",
            extensions: &["DSN"],
            setup: |_| {},
            envelope: with_id.clone(),
            message: HELLO,
            script: one_by_one(
                "MAIL FROM:<alice@example.test> ENVID=QQ314159+20a+2Bb",
                "RCPT TO:<bob@example.test>",
                HELLO,
            ),
            reply: "250 2.0.0 Ok",
        },
        SendCase {
            // sendmail sends it anyway, without the id: it asks for no report by itself.
            name: "an envelope id is left out without DSN",
            extensions: &["8BITMIME"],
            setup: |_| {},
            envelope: with_id,
            message: HELLO,
            script: one_by_one(
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                HELLO,
            ),
            reply: "250 2.0.0 Ok",
        },
    ];
    for SendCase {
        name,
        extensions,
        setup,
        envelope,
        message,
        mut script,
        reply,
    } in cases
    {
        script.push(Act::Eof);
        let (mut session, server, case) = start_case(name, extensions, script).await;
        setup(&mut session);
        let report = send_bytes(&mut session, &envelope, message)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(report.accepted.len(), envelope.to.len(), "{case}");
        assert!(report.refused.is_empty(), "{case}: {report:?}");
        assert_eq!(report.reply.to_string(), reply, "{case}");
        drop(session);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn a_message_the_server_cannot_take_is_refused_before_anything_is_sent() {
    let eight_bit_header = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    let eight_bit_body = "Subject: cafe\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    let dsn_asked = Envelope {
        dsn: Dsn {
            notify: Some(Notify::On {
                success: true,
                failure: true,
                delay: false,
            }),
            ret: Some(Ret::Headers),
            envid: None,
        },
        ..envelope(&["bob@example.test"])
    };
    let bob = envelope(&["bob@example.test"]);
    let big = vec![b'x'; 2000];
    let cases: Vec<(&str, &[&str], fn(&mut Session), Envelope, &[u8], fn(&Error))> = vec![
        (
            "a message over the size limit",
            &["PIPELINING", "SIZE 1000"],
            |_| {},
            bob.clone(),
            &big,
            |err| match err {
                Error::MessageTooLarge { size, limit, .. } => {
                    assert_eq!(*size, 2002); // the final CRLF the message gets
                    assert_eq!(*limit, 1000);
                }
                other => panic!("{other:?}"),
            },
        ),
        (
            "an 8-bit body without 8BITMIME",
            &["PIPELINING"],
            |_| {},
            bob.clone(),
            eight_bit_body,
            |err| assert_missing(err, "8BITMIME"),
        ),
        (
            "an 8-bit header without 8BITMIME",
            &["PIPELINING"],
            |_| {},
            bob.clone(),
            eight_bit_header,
            |err| assert_missing(err, "8BITMIME"),
        ),
        (
            "a UTF-8 address without SMTPUTF8",
            &["PIPELINING"],
            |_| {},
            envelope(&["j\u{f6}rg@example.test"]),
            HELLO,
            |err| assert_missing(err, "SMTPUTF8"),
        ),
        (
            "a UTF-8 header without SMTPUTF8 when strict",
            &["PIPELINING"],
            |s| s.set_smtputf8(SmtpUtf8::Strict),
            bob.clone(),
            eight_bit_header,
            |err| assert_missing(err, "SMTPUTF8"),
        ),
        (
            // Not sent without the reports.
            "delivery status notifications without DSN",
            &["PIPELINING"],
            |_| {},
            dsn_asked,
            HELLO,
            |err| assert_missing(err, "DSN"),
        ),
        (
            "an empty recipient list",
            &[],
            |_| {},
            envelope(&[]),
            HELLO,
            |err| mailcat_tests::assert_matches!(err, Error::Encode(_)),
        ),
    ];
    for (name, extensions, setup, envelope, message, check) in cases {
        let (mut session, server, case) = start_case(name, extensions, vec![Act::Eof]).await;
        setup(&mut session);
        let err = send_bytes(&mut session, &envelope, message)
            .await
            .unwrap_err();
        check(&err);
        drop(session);
        assert!(server.await.unwrap().0.is_empty(), "{case}");
    }
}

/// `err` says the server lacks `extension`: the message was refused before anything was sent.
fn assert_missing(err: &Error, extension: &str) {
    mailcat_tests::assert_matches!(
        err,
        Error::MissingExtension { extension: e, .. } if *e == extension
    );
}

#[tokio::test]
async fn the_body_goes_dot_stuffed_with_crlf_line_ends_and_a_final_crlf() {
    let cases: [(&str, &[u8], &[u8]); 4] = [
        (
            "dot-stuffing, the first line included",
            b".first\r\nok\r\n.\r\n..two\r\n\r\n.after blank\r\n",
            b"..first\r\nok\r\n..\r\n...two\r\n\r\n..after blank\r\n.\r\n",
        ),
        (
            "bare LF and bare CR become CRLF and a final CRLF is added",
            b"Subject: x\n\nline one\nline two\rline three\r\n\r\nno final newline",
            b"Subject: x\r\n\r\nline one\r\nline two\r\nline three\r\n\r\nno final newline\r\n.\r\n",
        ),
        (
            // `\r\n.\r\n` inside the body must not end DATA; `\n.\n` and `\r.\r` become stuffed
            // lines.
            "smuggling attempts in the body are stuffed",
            b"Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<evil@example.test>\r\nbare\n.\nand\r.\rend\r\n",
            b"Subject: x\r\n\r\nhi\r\n..\r\nMAIL FROM:<evil@example.test>\r\nbare\r\n..\r\nand\r\n..\r\nend\r\n.\r\n",
        ),
        ("an empty message is just the terminator", b"", b".\r\n"),
    ];
    for (name, message, expected_wire) in cases {
        let (mut session, server, case) = start_case(
            name,
            &["PIPELINING"],
            vec![
                group(&[
                    "MAIL FROM:<alice@example.test>",
                    "RCPT TO:<bob@example.test>",
                    "DATA",
                ]),
                send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
                data(expected_wire),
                send("250 Ok: queued\r\n"),
                Act::Eof,
            ],
        )
        .await;
        let info = MessageInfo {
            size: None,
            ..MessageInfo::of_bytes(message)
        };
        session
            .send(&envelope(&["bob@example.test"]), &mut &message[..], &info)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        drop(session);
        let received = server.await.unwrap();
        assert!(received.0.ends_with(expected_wire), "{case}");
    }
}

#[tokio::test]
async fn one_refused_recipient_fails_the_whole_send_and_resets() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "RCPT TO:<nobody@example.test>",
                "RCPT TO:<carol@example.test>",
            ]),
            send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n250 2.1.5 Ok\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let err = send_bytes(
        &mut session,
        &envelope(&[
            "bob@example.test",
            "nobody@example.test",
            "carol@example.test",
        ]),
        HELLO,
    )
    .await
    .unwrap_err();
    match &err {
        Error::RecipientsRefused {
            refused,
            accepted,
            transient,
            ..
        } => {
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].0, "nobody@example.test");
            // Typed: the code and the enhanced code, no words to match on.
            assert_eq!(refused[0].1.code, 550, "{refused:?}");
            assert_eq!(
                refused[0].1.enhanced.map(|c| c.to_string()).as_deref(),
                Some("5.1.1")
            );
            assert_eq!(accepted.len(), 2);
            assert!(!transient);
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
    drop(session);
    let received = server.await.unwrap();
    assert_eq!(received.count("DATA"), 0);
}

#[tokio::test]
async fn partial_sending_reports_the_refused_recipient() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "RCPT TO:<nobody@example.test>",
                "DATA",
            ]),
            send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            send("250 2.0.0 Ok: queued\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session.set_partial_delivery(PartialDelivery::ToAccepted);
    let report = send_bytes(
        &mut session,
        &envelope(&["bob@example.test", "nobody@example.test"]),
        HELLO,
    )
    .await
    .unwrap();
    assert_eq!(report.accepted, vec![addr("bob@example.test")]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, addr("nobody@example.test"));
    assert_eq!(report.refused[0].1.code, 550);
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn refused_recipients_send_no_message_and_reset() {
    let cases: [(&str, &[&str], PartialDelivery, Vec<Act>, fn(&Error)); 3] = [
        (
            "all recipients refused with partial sending",
            &["PIPELINING"],
            PartialDelivery::ToAccepted,
            vec![
                group(&[
                    "MAIL FROM:<alice@example.test>",
                    "RCPT TO:<nobody@example.test>",
                    "DATA",
                ]),
                send("250 2.1.0 Ok\r\n550 5.1.1 User unknown\r\n554 5.5.1 Error: no valid recipients\r\n"),
            ],
            |err| mailcat_tests::assert_matches!(err, Error::RecipientsRefused { .. }),
        ),
        (
            // A broken server that says 354 although it refused the only recipient: RFC 2920
            // §3.1. It gets a lone dot.
            "a 354 without recipients gets a lone dot",
            &["PIPELINING"],
            PartialDelivery::AllOrNothing,
            vec![
                group(&[
                    "MAIL FROM:<alice@example.test>",
                    "RCPT TO:<nobody@example.test>",
                    "DATA",
                ]),
                send("250 2.1.0 Ok\r\n550 5.1.1 User unknown\r\n354 go\r\n"),
                data(b".\r\n"),
                send("554 5.5.1 no valid recipients\r\n"),
            ],
            |err| mailcat_tests::assert_matches!(err, Error::RecipientsRefused { .. }),
        ),
        (
            "452 to RCPT is a temporary recipient refusal",
            &[],
            PartialDelivery::AllOrNothing,
            vec![
                expect("MAIL FROM:<alice@example.test>"),
                send("250 2.1.0 Ok\r\n"),
                expect("RCPT TO:<nobody@example.test>"),
                send("452 4.5.3 Too many recipients\r\n"),
            ],
            |err| {
                mailcat_tests::assert_matches!(
                    err,
                    Error::RecipientsRefused {
                        transient: true,
                        ..
                    }
                );
                assert!(err.is_transient(), "{err:?}");
            },
        ),
    ];
    for (name, extensions, partial, mut script, check) in cases {
        script.extend([expect("RSET"), send("250 2.0.0 Ok\r\n"), Act::Eof]);
        let (mut session, server, case) = start_case(name, extensions, script).await;
        session.set_partial_delivery(partial);
        let err = send_bytes(&mut session, &envelope(&["nobody@example.test"]), HELLO)
            .await
            .unwrap_err();
        check(&err);
        drop(session);
        server.await.unwrap();
        drop(case);
    }
}

#[tokio::test]
async fn reply_451_to_mail_is_temporary_and_the_session_goes_on() {
    let (mut session, server) = start(
        &[],
        vec![
            expect("MAIL FROM:<alice@example.test>"),
            send("451 4.3.0 Try again later\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            expect("MAIL FROM:<alice@example.test>"),
            send("250 2.1.0 Ok\r\n"),
            expect("RCPT TO:<bob@example.test>"),
            send("250 2.1.5 Ok\r\n"),
            expect("DATA"),
            send("354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            send("250 2.0.0 Ok: queued\r\n"),
            expect("QUIT"),
            send("221 2.0.0 Bye\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let env = envelope(&["bob@example.test"]);
    let err = send_bytes(&mut session, &env, HELLO).await.unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Temporary { .. });
    assert!(err.is_transient());
    assert!(err.to_string().contains("451 4.3.0"), "{err}");
    send_bytes(&mut session, &env, HELLO).await.unwrap();
    session.logout().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn reply_421_mid_transaction_closes_the_session_and_nothing_more_is_sent() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 2.1.0 Ok\r\n421 4.3.2 Service shutting down\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let env = envelope(&["bob@example.test"]);
    let err = send_bytes(&mut session, &env, HELLO).await.unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Closed { .. });
    assert!(err.is_transient());
    assert!(session.is_closed());
    let again = send_bytes(&mut session, &env, HELLO).await.unwrap_err();
    mailcat_tests::assert_matches!(again, Error::Closed { .. });
    mailcat_tests::assert_matches!(session.noop().await.unwrap_err(), Error::Closed { .. });
    session.logout().await.unwrap(); // no QUIT after 421: the script's Eof checks it
    server.await.unwrap();
}

#[tokio::test]
async fn data_refused_and_message_refused_are_permanent() {
    let (mut session, server) = start(
        &[],
        vec![
            expect("MAIL FROM:<alice@example.test>"),
            send("250 2.1.0 Ok\r\n"),
            expect("RCPT TO:<bob@example.test>"),
            send("250 2.1.5 Ok\r\n"),
            expect("DATA"),
            send("554 5.5.1 Error: no valid recipients\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            expect("MAIL FROM:<alice@example.test>"),
            send("250 2.1.0 Ok\r\n"),
            expect("RCPT TO:<bob@example.test>"),
            send("250 2.1.5 Ok\r\n"),
            expect("DATA"),
            send("354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            send("552 5.3.4 Message size exceeds fixed limit\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let env = envelope(&["bob@example.test"]);
    let err = send_bytes(&mut session, &env, HELLO).await.unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Rejected { ref command, .. } if command == "DATA");
    let err = send_bytes(&mut session, &env, HELLO).await.unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Rejected { .. });
    assert!(err.to_string().contains("552 5.3.4"), "{err}");
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn by_default_bcc_goes_and_date_and_message_id_come_with_the_size_to_match() {
    let (mut session, server) = start(
        &["SIZE 100000"],
        vec![
            respond(|mail| {
                // SIZE= is the completed message's: 25 bytes less Bcc, plus Date and Message-ID.
                let size: u64 = mail.rsplit_once("SIZE=").unwrap().1.parse().unwrap();
                assert!((120..200).contains(&size), "{mail}");
                "250 Ok\r\n".into()
            }),
            expect("RCPT TO:<bob@example.test>"),
            send("250 Ok\r\n"),
            expect("DATA"),
            send("354 go\r\n"),
            Act::DataWith(|wire| {
                let text = String::from_utf8_lossy(wire);
                assert!(text.starts_with("To: bob@example.test\r\nDate: "), "{text}");
                assert!(text.contains("\r\nMessage-ID: <mailcat."), "{text}");
                assert!(text.contains("@example.test>\r\n\r\nhi\r\n.\r\n"), "{text}");
                assert!(!text.contains("hidden"), "{text}");
            }),
            send("250 Ok: queued\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session.set_header_completion(HeaderCompletion::Complete);
    let message = b"To: bob@example.test\nBcc: hidden@example.test\n\nhi\n";
    send_bytes(&mut session, &envelope(&["bob@example.test"]), message)
        .await
        .unwrap();
    drop(session);
    let received = server.await.unwrap().text();
    let size: usize = received
        .split("SIZE=")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .unwrap()
        .parse()
        .unwrap();
    let sent = received
        .split_once("DATA\r\n")
        .unwrap()
        .1
        .strip_suffix(".\r\n")
        .unwrap()
        .len();
    assert_eq!(size, sent, "SIZE= announced what was sent: {received}");
}

#[tokio::test]
async fn no_reply_after_the_final_dot_leaves_the_outcome_unknown() {
    // threat model #39: no reply after the terminator (within the read timeout) is as
    // ambiguous as a lost connection: the message may or may not have been queued.
    let cases = [
        ("the connection is lost after the final dot", None),
        ("the server is silent after the final dot", Some(Act::Drain)),
    ];
    for (name, after) in cases {
        let mut script = vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
        ];
        // Without a step after the body, the script ends and closes the connection.
        script.extend(after);
        let (mut session, server, case) = start_case(name, &["PIPELINING"], script).await;
        let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
            .await
            .unwrap_err();
        mailcat_tests::assert_matches!(err, Error::DeliveryUnknown { .. }, "{case}");
        assert!(err.to_string().contains("twice"), "{case}: {err}");
        assert!(
            !err.is_transient(),
            "{case}: sending again could deliver it twice"
        );
        assert!(session.is_closed(), "{case}");
        drop(session);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn a_connection_lost_mid_data_is_a_transport_error_not_an_unknown_outcome() {
    // Larger than the duplex buffer, so the client is still writing when the server goes.
    let message = vec![b'z'; 8 << 20];
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            Act::CloseAfter(100_000),
        ],
    )
    .await;
    let info = MessageInfo::default();
    let err = session
        .send(&envelope(&["bob@example.test"]), &mut &message[..], &info)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Transport(_));
    assert!(err.is_transient());
    assert!(session.is_closed());
    server.await.unwrap();
}

/// A reader that gives `first` and then fails.
struct FailingReader {
    first: Option<Vec<u8>>,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.first.take() {
            Some(bytes) => {
                buf.put_slice(&bytes);
                Poll::Ready(Ok(()))
            }
            None => Poll::Ready(Err(std::io::Error::other("disk on fire"))),
        }
    }
}

#[tokio::test]
async fn a_read_error_mid_message_never_sends_the_terminator() {
    let chunk = vec![b'a'; 64 * 1024]; // one write's worth
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let mut reader = FailingReader {
        first: Some(chunk.clone()),
    };
    let err = session
        .send(
            &envelope(&["bob@example.test"]),
            &mut reader,
            &MessageInfo::default(),
        )
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(err, Error::Io(_));
    assert!(session.is_closed());
    session.logout().await.unwrap(); // closes without QUIT
    let received = server.await.unwrap();
    assert!(received.0.ends_with(&chunk), "{} bytes", received.0.len());
    assert!(!received.text().contains("\r\n.\r\n") && !received.text().contains("QUIT"));
}

#[tokio::test]
async fn two_messages_over_one_session_with_rset_between() {
    let (mut session, server) = start(
        &["PIPELINING", "SIZE 0"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test> SIZE=22",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            send("250 Ok: queued as A\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            group(&[
                "MAIL FROM:<> SIZE=22",
                "RCPT TO:<carol@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            data(b"Subject: two\r\n\r\n..dot\r\n.\r\n"),
            send("250 Ok: queued as B\r\n"),
            expect("QUIT"),
            send("221 Bye\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let first = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap();
    assert!(first.reply.text.ends_with("queued as A"));
    session.reset().await.unwrap();
    let bounce = Envelope {
        from: None,
        to: vec![addr("carol@example.test")],
        ..Default::default()
    };
    let second = send_bytes(&mut session, &bounce, b"Subject: two\n\n.dot")
        .await
        .unwrap();
    assert!(second.reply.text.ends_with("queued as B"));
    session.logout().await.unwrap();
    server.await.unwrap();
}

#[test]
fn message_info_counts_crlf_and_finds_8bit_headers() {
    let info = MessageInfo::of_bytes(b"Subject: x\n\nbody\r\nmore");
    assert_eq!(info.size, Some(12 + 2 + 6 + 6));
    assert!(!info.eight_bit);
    let info = MessageInfo::of_bytes("Subject: x\r\n\r\nna\u{ef}ve\r\n".as_bytes());
    assert!(info.eight_bit && !info.utf8_headers);
    let info = MessageInfo::of_bytes("Subject: caf\u{e9}\r\n\r\nx\r\n".as_bytes());
    assert!(info.eight_bit && info.utf8_headers);
}

#[test]
fn message_info_finds_the_longest_line_as_sent() {
    let line = |n: usize, first: u8| {
        let mut l = vec![first];
        l.resize(n, b'x');
        l
    };
    let mut message = b"Subject: x\r\n\r\n".to_vec();
    message.extend(line(998, b'x'));
    message.extend(b"\n");
    message.extend(line(10, b'y'));
    let info = MessageInfo::of_bytes(&message);
    assert_eq!(info.longest_line, 998);
    // Dot-stuffing makes a 998-octet line that starts with "." one octet too long.
    let mut stuffed = b"Subject: x\r\n\r\n".to_vec();
    stuffed.extend(line(998, b'.'));
    assert_eq!(MessageInfo::of_bytes(&stuffed).longest_line, 999);
    // Bare CR, bare LF and CRLF all end a line.
    let info = MessageInfo::of_bytes(b"aaaa\rbbb\ncc\r\nd");
    assert_eq!(info.longest_line, 4);
}

#[tokio::test]
async fn message_info_scan_rewinds_a_file() {
    use tokio::io::AsyncReadExt;
    let path = std::env::temp_dir().join(format!("mailcat-smtp-scan-{}", std::process::id()));
    std::fs::write(&path, b"Subject: x\n\nbody\n").unwrap();
    let mut file = tokio::fs::File::open(&path).await.unwrap();
    let info = MessageInfo::scan(&mut file).await.unwrap();
    assert_eq!(info.size, Some(12 + 2 + 6));
    let mut all = Vec::new();
    file.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"Subject: x\n\nbody\n");
    std::fs::remove_file(&path).unwrap();
}

// ---- replies nobody asked for ----

#[tokio::test]
async fn an_extra_reply_in_a_transaction_is_a_desync_and_the_message_is_not_sent() {
    let cases: [(&str, &[&str], Vec<Act>, &str, &str); 2] = [
        (
            "an extra reply to MAIL FROM: no RCPT, DATA, RSET or QUIT after it",
            &["8BITMIME"],
            vec![
                expect("MAIL FROM:<alice@example.test>"),
                send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
            ],
            "MAIL FROM",
            "MAIL FROM:<alice@example.test>\r\n",
        ),
        (
            "a reply beyond a pipelined group: the body is not sent",
            &["PIPELINING"],
            vec![
                group(&[
                    "MAIL FROM:<alice@example.test>",
                    "RCPT TO:<bob@example.test>",
                    "DATA",
                ]),
                send("250 Ok\r\n250 Ok\r\n354 go\r\n250 2.0.0 Ok: queued as FAKE\r\n"),
            ],
            "DATA",
            "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
        ),
    ];
    for (name, extensions, mut script, detail_names, sent) in cases {
        script.push(Act::Drain);
        let (mut session, server, case) = start_case(name, extensions, script).await;
        let e = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
            .await
            .unwrap_err();
        mailcat_tests::assert_matches!(
            e,
            Error::Protocol { ref detail, .. } if detail.contains(detail_names),
            "{case}"
        );
        assert!(session.is_closed(), "{case}");
        session.logout().await.unwrap();
        let received = server.await.unwrap().text();
        assert_eq!(received, sent, "{case}: all the client sent");
    }
}

#[tokio::test]
async fn an_extra_reply_after_auth_or_noop_is_a_desync() {
    let (mut session, server) = start(
        &["AUTH PLAIN"],
        vec![
            expect(&format!(
                "AUTH PLAIN {}",
                b64(b"\0alice@example.test\0s3cret")
            )),
            send("235 2.7.0 Authentication successful\r\n250 injected\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let e = session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { .. });
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);

    let (mut session, server) = start(
        &[],
        vec![
            expect("NOOP"),
            send("250 Ok\r\n550 injected\r\n"),
            Act::Drain,
        ],
    )
    .await;
    mailcat_tests::assert_matches!(session.noop().await, Err(Error::Protocol { .. }));
    // Poisoned: the reason again, and nothing sent.
    let again = session.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(&again, Error::Protocol { detail, .. } if detail.contains("cannot be used any more"));
    drop(session);
    assert_eq!(server.await.unwrap().count("NOOP"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_comes_late_is_not_taken_as_the_answer_to_the_next_command() {
    // The planted reply arrives in a packet of its own after the real one was read, so it is
    // not in the buffer then; it is found before the next command goes.
    let (mut session, server) = start(
        &[],
        vec![
            expect("NOOP"),
            send("250 Ok\r\n"),
            Act::Sleep(Duration::from_millis(50)),
            send("250 planted\r\n"),
            Act::Drain,
        ],
    )
    .await;
    session.noop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Protocol { ref detail, .. } if detail.contains("250 planted"));
    assert!(session.is_closed());
    drop(session);
    let received = server.await.unwrap().text();
    assert_eq!(received, "NOOP\r\n", "nothing after the planted reply");
}

#[tokio::test(start_paused = true)]
async fn a_421_while_idle_closes_the_session_with_its_text() {
    let (mut session, server) = start(
        &[],
        vec![
            expect("NOOP"),
            send("250 Ok\r\n"),
            Act::Sleep(Duration::from_millis(50)),
            send("421 4.4.2 smtp.test Error: timeout exceeded\r\n"),
            Act::Drain,
        ],
    )
    .await;
    session.noop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = session.noop().await.unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Closed { ref reply, .. } if reply.to_string().contains("timeout exceeded"));
    assert_eq!(
        e.reply().and_then(|r| r.smtp_code()),
        Some(421),
        "the goodbye is typed: {e:?}"
    );
    drop(session);
    assert_eq!(server.await.unwrap().count("NOOP"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_send_dropped_with_replies_due_leaves_the_session_refusing_not_desynchronised() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            // Only MAIL's reply before the caller gives up; the rest comes late.
            send("250 Ok\r\n"),
            Act::Sleep(Duration::from_millis(300)),
            send("250 Ok\r\n354 go\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO),
    )
    .await;
    assert!(dropped.is_err(), "the send was still waiting: {dropped:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The late "250 Ok" and "354" must not pass for the answers to this message's MAIL and RCPT.
    let e = send_bytes(&mut session, &envelope(&["carol@example.test"]), HELLO)
        .await
        .unwrap_err();
    mailcat_tests::assert_matches!(e, Error::Misuse { ref what, .. } if what.contains("abandoned"), "the dropped call is the caller's doing, not the server's: {e:?}");
    assert!(session.is_closed());
    drop(session);
    let received = server.await.unwrap().text();
    assert!(!received.contains("carol"), "{received:?}");
}
