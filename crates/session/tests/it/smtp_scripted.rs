//! SmtpSession against scripted servers: AUTH (PLAIN with and without an initial response,
//! LOGIN, the XOAUTH2 failure, basic auth disabled, one attempt only, no password without TLS,
//! a chosen mechanism: that one or none), pipelining, per-recipient results, 4xx/5xx/421,
//! SIZE/8BITMIME/SMTPUTF8 checks before sending, dot-stuffing and CRLF normalisation, a lost
//! connection after the final dot, reuse.
#![allow(clippy::unwrap_used)]

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
use smtp_script::{data, expect, group, respond, send, start, Act};
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

#[tokio::test]
async fn auth_plain_goes_as_an_initial_response_and_only_once() {
    let ir = b64(b"\0alice@example.test\0s3cret");
    let (mut session, server) = start(
        &["AUTH PLAIN LOGIN", "PIPELINING"],
        vec![
            expect(&format!("AUTH PLAIN {ir}")),
            send("235 2.7.0 Authentication successful\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    let again = session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::AuthenticationAlreadyAttempted { .. }),
        "{again:?}"
    );
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn auth_plain_answers_the_empty_challenge_when_the_line_would_be_too_long() {
    let password = "p".repeat(400);
    let payload = format!("\0alice@example.test\0{password}");
    let (mut session, server) = start(
        &["AUTH PLAIN"],
        vec![
            expect("AUTH PLAIN"),
            send("334 \r\n"),
            expect(&b64(payload.as_bytes())),
            send("235 2.7.0 ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let credential = Credential::password("alice@example.test", password);
    session
        .login(&credential, Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn auth_login_answers_two_prompts() {
    let (mut session, server) = start(
        &["AUTH LOGIN"],
        vec![
            expect("AUTH LOGIN"),
            send("334 VXNlcm5hbWU6\r\n"),
            expect(&b64(b"alice@example.test")),
            send("334 UGFzc3dvcmQ6\r\n"),
            expect(&b64(b"s3cret")),
            send("235 2.7.0 ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(session);
    server.await.unwrap();
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
async fn reply_535_5_7_139_says_basic_authentication_is_disabled() {
    let ir = b64(b"\0alice@example.test\0s3cret");
    let (mut session, server) = start(
        &["AUTH LOGIN PLAIN XOAUTH2"],
        vec![
            expect(&format!("AUTH PLAIN {ir}")),
            send("535 5.7.139 Authentication unsuccessful, basic authentication is disabled.\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let err = session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BasicAuthDisabled { .. }), "{err:?}");
    assert!(err.to_string().contains("OAuth2"), "{err}");
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn a_wrong_password_is_one_attempt_and_an_auth_error() {
    let ir = b64(b"\0alice@example.test\0s3cret");
    let (mut session, server) = start(
        &["AUTH PLAIN LOGIN"],
        vec![
            expect(&format!("AUTH PLAIN {ir}")),
            send("535 5.7.8 Error: authentication failed: authentication failure\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let err = session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("535 5.7.8"), "{err}");
    // Not LOGIN next with the same password: the session refuses a second attempt.
    mailcat_tests::assert_matches!(
        session
            .login(&alice(), Plaintext::DangerouslyAllow)
            .await
            .unwrap_err(),
        Error::AuthenticationAlreadyAttempted { .. }
    );
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn reply_454_is_a_temporary_authentication_failure() {
    let ir = b64(b"\0alice@example.test\0s3cret");
    let (mut session, server) = start(
        &["AUTH PLAIN"],
        vec![
            expect(&format!("AUTH PLAIN {ir}")),
            send("454 4.7.0 Temporary authentication failure\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let err = session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationUnavailable { .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn no_password_is_sent_without_tls_unless_allowed() {
    let (mut session, server) = start(&["AUTH PLAIN LOGIN"], vec![Act::Eof]).await;
    let err = session
        .login(&alice(), Plaintext::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PlaintextAuthRefused { .. }), "{err:?}");
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
}

#[tokio::test]
async fn a_plaintext_refusal_sends_nothing_and_leaves_the_one_attempt() {
    // The login preamble's rule, the same for IMAP, POP3 and SMTP: only a login that sent
    // something uses up the one attempt. (SMTP used to spend it on this refusal.)
    let ir = b64(b"\0alice@example.test\0s3cret");
    let (mut session, server) = start(
        &["AUTH PLAIN LOGIN"],
        vec![
            expect(&format!("AUTH PLAIN {ir}")),
            send("235 2.7.0 Authentication successful\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let err = session
        .login(&alice(), Plaintext::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PlaintextAuthRefused { .. }), "{err:?}");
    session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn a_login_that_sent_nothing_leaves_the_one_attempt() {
    // A password PLAIN cannot carry (a NUL) is refused before anything goes out.
    let ir = b64(b"\0alice@example.test\0s3cret");
    let (mut session, server) = start(
        &["AUTH PLAIN LOGIN"],
        vec![
            expect(&format!("AUTH PLAIN {ir}")),
            send("235 2.7.0 Authentication successful\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let nul = Credential::password("alice@example.test", "s3\0cret");
    let err = session
        .login(&nul, Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(!err.is_auth(), "{err:?}");
    session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn a_server_without_a_usable_mechanism_gets_nothing() {
    let (mut session, server) = start(&["AUTH XOAUTH2"], vec![Act::Eof]).await;
    let err = session
        .login(&alice(), Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoUsableMechanism { .. }), "{err:?}");
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
}

// ---- AUTH with the mechanism the credential names (msmtp's `auth`) ----

#[tokio::test]
async fn a_chosen_oauthbearer_is_used_where_xoauth2_would_be_picked() {
    let token = "ya29.token";
    let port = mailcat_transport::Endpoint::new(
        mailcat_transport::Protocol::Smtp,
        smtp_script::HOST,
        mailcat_transport::Security::DangerousPlaintext,
    )
    .port;
    let ir = b64(format!(
        "n,a=alice@example.test,\x01host={}\x01port={port}\x01auth=Bearer {token}\x01\x01",
        smtp_script::HOST
    )
    .as_bytes());
    let (mut session, server) = start(
        &["AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER"],
        vec![
            expect(&format!("AUTH OAUTHBEARER {ir}")),
            send("235 2.7.0 Authentication successful\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let credential = Credential::oauth2("alice@example.test", token)
        .with_mechanism(Mechanism::OAuthBearer)
        .unwrap();
    session
        .login(&credential, Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    drop(session);
    assert_eq!(server.await.unwrap().count("AUTH"), 1);
}

#[tokio::test]
async fn a_chosen_mechanism_the_server_lacks_sends_nothing_and_no_other_is_tried() {
    // SCRAM-SHA-256 asked for, so that the password itself never crosses the wire; the server
    // offers PLAIN and LOGIN, which the automatic choice would take (threat model #21).
    let (mut session, server) = start(&["AUTH PLAIN LOGIN"], vec![Act::Eof]).await;
    let credential = alice().with_mechanism(Mechanism::ScramSha256).unwrap();
    let err = session
        .login(&credential, Plaintext::DangerouslyAllow)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::MechanismNotOffered { mechanism: Mechanism::ScramSha256, offered, .. }
                if offered == &["PLAIN", "LOGIN"]
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("smtp.test does not offer SCRAM-SHA-256, the login mechanism asked for (it offers: PLAIN, LOGIN)"),
        "{err}"
    );
    assert!(!err.is_auth() && err.is_config(), "{err:?}");
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
}

#[tokio::test]
async fn a_chosen_plain_is_still_not_sent_without_tls_unless_allowed() {
    let (mut session, server) = start(&["AUTH PLAIN LOGIN"], vec![Act::Eof]).await;
    let credential = alice().with_mechanism(Mechanism::Plain).unwrap();
    let err = session
        .login(&credential, Plaintext::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PlaintextAuthRefused { .. }), "{err:?}");
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
}

// ---- AUTH: success only once the exchange is complete (threat model #41's class) ----

/// The login failed with "the server claimed success ..." and the session sends no message.
async fn assert_claimed_success_and_unusable(
    result: Result<(), Error>,
    session: &mut mailcat_session::smtp::SmtpSession<tokio::io::DuplexStream>,
) {
    let e = result.unwrap_err();
    assert!(
        matches!(e, Error::Protocol { ref detail, .. } if detail.contains("claimed success")),
        "{e:?}"
    );
    assert!(!e.is_auth(), "{e:?}");
    assert!(session.is_closed());
    let again = send_bytes(
        session,
        &envelope(&["bob@example.test"]),
        b"Subject: x\r\n\r\nx\r\n",
    )
    .await
    .unwrap_err();
    // Poisoned after a desync, as IMAP and POP3 are: a protocol error, not the server's close.
    assert!(matches!(again, Error::Protocol { .. }), "{again:?}");
}

#[tokio::test]
async fn xoauth2_too_long_for_an_initial_response_answered_235_before_the_token_is_not_a_login() {
    // A real token (1-2 KiB) never fits on the 512-octet AUTH line: it goes after `334 `.
    let token = "t".repeat(1500);
    let (mut session, server) = start(
        &["AUTH XOAUTH2", "PIPELINING"],
        vec![
            expect("AUTH XOAUTH2"),
            send("235 2.7.0 Authentication successful\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let result = session
        .login(
            &Credential::oauth2("alice@example.test", token),
            Plaintext::DangerouslyAllow,
        )
        .await;
    assert_claimed_success_and_unusable(result, &mut session).await;
    drop(session);
    assert_eq!(server.await.unwrap().text(), "AUTH XOAUTH2\r\n");
}

#[tokio::test]
async fn a_long_xoauth2_token_goes_after_the_empty_challenge() {
    let token = "t".repeat(1500);
    let line = b64(format!("user=alice@example.test\x01auth=Bearer {token}\x01\x01").as_bytes());
    let (mut session, server) = start(
        &["AUTH XOAUTH2"],
        vec![
            expect("AUTH XOAUTH2"),
            send("334 \r\n"),
            expect(&line),
            send("235 2.7.0 Authentication successful\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session
        .login(
            &Credential::oauth2("alice@example.test", token),
            Plaintext::DangerouslyAllow,
        )
        .await
        .unwrap();
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn plain_too_long_for_an_initial_response_answered_235_instead_of_334_is_not_a_login() {
    let password = "p".repeat(400);
    let (mut session, server) = start(
        &["AUTH PLAIN"],
        vec![expect("AUTH PLAIN"), send("235 2.7.0 ok\r\n"), Act::Drain],
    )
    .await;
    let result = session
        .login(
            &Credential::password("alice@example.test", password),
            Plaintext::DangerouslyAllow,
        )
        .await;
    assert_claimed_success_and_unusable(result, &mut session).await;
    drop(session);
    assert_eq!(server.await.unwrap().text(), "AUTH PLAIN\r\n");
}

#[tokio::test]
async fn auth_login_answered_235_after_the_user_name_is_not_a_login() {
    let (mut session, server) = start(
        &["AUTH LOGIN"],
        vec![
            expect("AUTH LOGIN"),
            send("334 VXNlcm5hbWU6\r\n"),
            expect(&b64(b"alice@example.test")),
            send("235 2.7.0 ok\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let result = session.login(&alice(), Plaintext::DangerouslyAllow).await;
    assert_claimed_success_and_unusable(result, &mut session).await;
    drop(session);
    assert_eq!(
        server.await.unwrap().text(),
        format!("AUTH LOGIN\r\n{}\r\n", b64(b"alice@example.test")),
        "the password was sent"
    );
}

fn scram_user() -> Credential {
    Credential::password(scram_server::USER, scram_server::PASSWORD)
}

fn smtp_server_first(line: &str) -> String {
    assert!(line.starts_with("AUTH SCRAM-SHA-256 "), "{line}");
    format!("334 {}\r\n", scram_server::server_first(line))
}

#[tokio::test]
async fn scram_answered_235_without_the_server_final_message_is_not_a_login() {
    let (mut session, server) = start(
        &["AUTH SCRAM-SHA-256 PLAIN"],
        vec![
            respond(smtp_server_first),
            respond(|l| {
                scram_server::server_final(l);
                "235 2.7.0 ok\r\n".into()
            }),
            Act::Drain,
        ],
    )
    .await;
    let result = session
        .login(&scram_user(), Plaintext::DangerouslyAllow)
        .await;
    assert_claimed_success_and_unusable(result, &mut session).await;
    drop(session);
    assert_eq!(server.await.unwrap().count("MAIL"), 0);
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
    assert!(
        matches!(e, Error::Protocol { ref detail, .. } if detail.contains("signature is wrong")),
        "{e:?}"
    );
    assert!(session.is_closed());
    let again = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::Protocol { .. }), "{again:?}");
    drop(session);
    assert_eq!(server.await.unwrap().count("MAIL"), 0);
}

#[tokio::test]
async fn scram_with_the_right_server_final_message_logs_in() {
    let (mut session, server) = start(
        &["AUTH SCRAM-SHA-256 PLAIN"],
        vec![
            respond(smtp_server_first),
            respond(|l| format!("334 {}\r\n", scram_server::server_final(l))),
            expect(""),
            send("235 2.7.0 Authentication successful\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session
        .login(&scram_user(), Plaintext::DangerouslyAllow)
        .await
        .unwrap();
    assert!(!session.is_closed());
    drop(session);
    server.await.unwrap();
}

// ---- sending ----

const HELLO: &[u8] = b"Subject: hi\r\n\r\nHello\r\n";

#[tokio::test]
async fn pipelining_sends_mail_rcpt_rcpt_data_in_one_write() {
    let (mut session, server) = start(
        &["PIPELINING", "SIZE 10000000", "8BITMIME"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test> SIZE=22",
                "RCPT TO:<bob@example.test>",
                "RCPT TO:<carol@example.test>",
                "DATA",
            ]),
            send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            send("250 2.0.0 Ok: queued as 1234\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session.set_partial_delivery(PartialDelivery::ToAccepted);
    let report = send_bytes(
        &mut session,
        &envelope(&["bob@example.test", "carol@example.test"]),
        HELLO,
    )
    .await
    .unwrap();
    assert_eq!(report.accepted.len(), 2);
    assert!(report.refused.is_empty());
    assert_eq!(report.reply.to_string(), "250 2.0.0 Ok: queued as 1234");
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn with_several_recipients_data_waits_for_their_replies_by_default() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
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
            Act::Eof,
        ],
    )
    .await;
    let report = send_bytes(
        &mut session,
        &envelope(&["bob@example.test", "carol@example.test"]),
        HELLO,
    )
    .await
    .unwrap();
    assert_eq!(report.accepted.len(), 2);
    drop(session);
    server.await.unwrap();
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
async fn all_recipients_refused_with_partial_sending_sends_nothing() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<nobody@example.test>",
                "DATA",
            ]),
            send("250 2.1.0 Ok\r\n550 5.1.1 User unknown\r\n554 5.5.1 Error: no valid recipients\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    session.set_partial_delivery(PartialDelivery::ToAccepted);
    let err = send_bytes(&mut session, &envelope(&["nobody@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RecipientsRefused { .. }), "{err:?}");
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn a_354_without_recipients_gets_a_lone_dot() {
    // A broken server that says 354 although it refused the only recipient: RFC 2920 §3.1.
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<nobody@example.test>",
                "DATA",
            ]),
            send("250 2.1.0 Ok\r\n550 5.1.1 User unknown\r\n354 go\r\n"),
            data(b".\r\n"),
            send("554 5.5.1 no valid recipients\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let err = send_bytes(&mut session, &envelope(&["nobody@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RecipientsRefused { .. }), "{err:?}");
    drop(session);
    server.await.unwrap();
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
    assert!(matches!(err, Error::Temporary { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("451 4.3.0"), "{err}");
    send_bytes(&mut session, &env, HELLO).await.unwrap();
    session.logout().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn reply_452_to_rcpt_is_a_temporary_recipient_refusal() {
    let (mut session, server) = start(
        &[],
        vec![
            expect("MAIL FROM:<alice@example.test>"),
            send("250 2.1.0 Ok\r\n"),
            expect("RCPT TO:<bob@example.test>"),
            send("452 4.5.3 Too many recipients\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RecipientsRefused {
                transient: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    drop(session);
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
    assert!(matches!(err, Error::Closed { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(session.is_closed());
    let again = send_bytes(&mut session, &env, HELLO).await.unwrap_err();
    assert!(matches!(again, Error::Closed { .. }), "{again:?}");
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
    assert!(
        matches!(err, Error::Rejected { ref command, .. } if command == "DATA"),
        "{err:?}"
    );
    let err = send_bytes(&mut session, &env, HELLO).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("552 5.3.4"), "{err}");
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_before_sending() {
    let (mut session, server) = start(&["PIPELINING", "SIZE 1000"], vec![Act::Eof]).await;
    let message = vec![b'x'; 2000];
    let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), &message)
        .await
        .unwrap_err();
    match err {
        Error::MessageTooLarge { size, limit, .. } => {
            assert_eq!(size, 2002); // the final CRLF the message gets
            assert_eq!(limit, 1000);
        }
        other => panic!("{other:?}"),
    }
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
}

/// `err` says the server lacks `extension`: the message was refused before anything was sent.
fn assert_missing(err: &Error, extension: &str) {
    assert!(
        matches!(err, Error::MissingExtension { extension: e, .. } if *e == extension),
        "{err:?}"
    );
}

#[tokio::test]
async fn eight_bit_content_is_declared_or_refused() {
    let message = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    let body_only = "Subject: cafe\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    // 8BITMIME and SMTPUTF8 offered: UTF-8 in a header is 8-bit content, declared SMTPUTF8 only
    // when asked to be strict (a later hop without SMTPUTF8 would bounce it).
    for (when, mail) in [
        (
            SmtpUtf8::Auto,
            "MAIL FROM:<alice@example.test> BODY=8BITMIME",
        ),
        (
            SmtpUtf8::Strict,
            "MAIL FROM:<alice@example.test> BODY=8BITMIME SMTPUTF8",
        ),
    ] {
        let (mut session, server) = start(
            &["8BITMIME", "SMTPUTF8"],
            vec![
                expect(mail),
                send("250 2.1.0 Ok\r\n"),
                expect("RCPT TO:<bob@example.test>"),
                send("250 2.1.5 Ok\r\n"),
                expect("DATA"),
                send("354 go\r\n"),
                data([message, b".\r\n"].concat()),
                send("250 2.0.0 Ok\r\n"),
                Act::Eof,
            ],
        )
        .await;
        session.set_smtputf8(when);
        send_bytes(&mut session, &envelope(&["bob@example.test"]), message)
            .await
            .unwrap();
        drop(session);
        server.await.unwrap();
    }

    // Neither offered: refused before anything is sent.
    let (mut session, server) = start(&["PIPELINING"], vec![Act::Eof]).await;
    let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), body_only)
        .await
        .unwrap_err();
    assert_missing(&err, "8BITMIME");
    let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), message)
        .await
        .unwrap_err();
    assert_missing(&err, "8BITMIME");
    let err = send_bytes(&mut session, &envelope(&["j\u{f6}rg@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert_missing(&err, "SMTPUTF8");
    session.set_smtputf8(SmtpUtf8::Strict);
    let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), message)
        .await
        .unwrap_err();
    assert_missing(&err, "SMTPUTF8");
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
}

#[tokio::test]
async fn delivery_status_notifications_are_asked_for_or_refused_without_dsn() {
    let asked = Envelope {
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
    let (mut session, server) = start(
        &["DSN"],
        vec![
            expect("MAIL FROM:<alice@example.test> RET=HDRS"),
            send("250 2.1.0 Ok\r\n"),
            expect("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE"),
            send("250 2.1.5 Ok\r\n"),
            expect("DATA"),
            send("354 go\r\n"),
            data([HELLO, b".\r\n"].concat()),
            send("250 2.0.0 Ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    send_bytes(&mut session, &asked, HELLO).await.unwrap();
    drop(session);
    server.await.unwrap();

    // Without DSN: refused before anything is sent, not sent without the reports.
    let (mut session, server) = start(&["PIPELINING"], vec![Act::Eof]).await;
    let err = send_bytes(&mut session, &asked, HELLO).await.unwrap_err();
    assert_missing(&err, "DSN");
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
}

#[tokio::test]
async fn an_envelope_id_goes_as_xtext_with_dsn_and_is_left_out_without() {
    let with_id = Envelope {
        dsn: Dsn {
            notify: None,
            ret: None,
            envid: Some("QQ314159 a+b".into()),
        },
        ..envelope(&["bob@example.test"])
    };
    for (offer, mail) in [
        (
            "DSN",
            "MAIL FROM:<alice@example.test> ENVID=QQ314159+20a+2Bb",
        ),
        // sendmail sends it anyway, without the id: it asks for no report by itself.
        ("8BITMIME", "MAIL FROM:<alice@example.test>"),
    ] {
        let (mut session, server) = start(
            &[offer],
            vec![
                expect(mail),
                send("250 2.1.0 Ok\r\n"),
                expect("RCPT TO:<bob@example.test>"),
                send("250 2.1.5 Ok\r\n"),
                expect("DATA"),
                send("354 go\r\n"),
                data([HELLO, b".\r\n"].concat()),
                send("250 2.0.0 Ok\r\n"),
                Act::Eof,
            ],
        )
        .await;
        send_bytes(&mut session, &with_id, HELLO).await.unwrap();
        drop(session);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn a_utf8_address_is_sent_with_smtputf8() {
    let (mut session, server) = start(
        &["PIPELINING", "8BITMIME", "SMTPUTF8"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test> BODY=8BITMIME SMTPUTF8",
                "RCPT TO:<j\u{f6}rg@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            send("250 Ok\r\n"),
            Act::Eof,
        ],
    )
    .await;
    send_bytes(&mut session, &envelope(&["j\u{f6}rg@example.test"]), HELLO)
        .await
        .unwrap();
    drop(session);
    server.await.unwrap();
}

/// Sends `message` with one recipient and returns what crossed the wire after 354.
async fn wire_of(message: &[u8], expected_wire: &[u8]) {
    let (mut session, server) = start(
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
        .unwrap();
    drop(session);
    let received = server.await.unwrap();
    assert!(received.0.ends_with(expected_wire));
}

#[tokio::test]
async fn data_is_dot_stuffed_including_the_first_line() {
    wire_of(
        b".first\r\nok\r\n.\r\n..two\r\n\r\n.after blank\r\n",
        b"..first\r\nok\r\n..\r\n...two\r\n\r\n..after blank\r\n.\r\n",
    )
    .await;
}

#[tokio::test]
async fn bare_lf_and_bare_cr_become_crlf_and_a_final_crlf_is_added() {
    wire_of(
        b"Subject: x\n\nline one\nline two\rline three\r\n\r\nno final newline",
        b"Subject: x\r\n\r\nline one\r\nline two\r\nline three\r\n\r\nno final newline\r\n.\r\n",
    )
    .await;
}

#[tokio::test]
async fn smuggling_attempts_in_the_body_are_stuffed() {
    // `\r\n.\r\n` inside the body must not end DATA; `\n.\n` and `\r.\r` become stuffed lines.
    wire_of(
        b"Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<evil@example.test>\r\nbare\n.\nand\r.\rend\r\n",
        b"Subject: x\r\n\r\nhi\r\n..\r\nMAIL FROM:<evil@example.test>\r\nbare\r\n..\r\nand\r\n..\r\nend\r\n.\r\n",
    )
    .await;
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
async fn an_empty_message_is_just_the_terminator() {
    wire_of(b"", b".\r\n").await;
}

#[tokio::test]
async fn a_connection_lost_after_the_final_dot_leaves_the_outcome_unknown() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            // and the server goes away without a reply
        ],
    )
    .await;
    let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeliveryUnknown { .. }), "{err:?}");
    assert!(err.to_string().contains("twice"), "{err}");
    assert!(!err.is_transient());
    assert!(session.is_closed());
    server.await.unwrap();
}

#[tokio::test]
async fn a_server_silent_after_the_final_dot_leaves_the_outcome_unknown() {
    // threat model #39: no reply after the terminator (within the read timeout) is as
    // ambiguous as a lost connection: the message may or may not have been queued.
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
            data(b"Subject: hi\r\n\r\nHello\r\n.\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let err = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeliveryUnknown { .. }), "{err:?}");
    assert!(!err.is_transient(), "sending again could deliver it twice");
    assert!(session.is_closed());
    drop(session);
    server.await.unwrap();
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
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
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
    assert!(matches!(err, Error::Io(_)), "{err:?}");
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

#[tokio::test]
async fn without_pipelining_commands_go_one_at_a_time() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
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
            Act::Eof,
        ],
    )
    .await;
    session.set_pipelining(Pipelining::Off);
    send_bytes(
        &mut session,
        &envelope(&["bob@example.test", "carol@example.test"]),
        HELLO,
    )
    .await
    .unwrap();
    drop(session);
    server.await.unwrap();
}

#[tokio::test]
async fn an_empty_recipient_list_is_refused_before_sending() {
    let (mut session, server) = start(&[], vec![Act::Eof]).await;
    let err = send_bytes(&mut session, &envelope(&[]), HELLO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Encode(_)), "{err:?}");
    drop(session);
    assert!(server.await.unwrap().0.is_empty());
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
async fn an_extra_reply_to_mail_from_is_a_desync_and_nothing_more_is_sent() {
    let (mut session, server) = start(
        &["8BITMIME"],
        vec![
            expect("MAIL FROM:<alice@example.test>"),
            send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let e = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Protocol { ref detail, .. } if detail.contains("MAIL FROM")),
        "{e:?}"
    );
    assert!(session.is_closed());
    session.logout().await.unwrap();
    let received = server.await.unwrap().text();
    assert_eq!(
        received, "MAIL FROM:<alice@example.test>\r\n",
        "no RCPT, DATA, RSET or QUIT after the desync"
    );
}

#[tokio::test]
async fn a_reply_beyond_a_pipelined_group_is_a_desync_and_the_message_is_not_sent() {
    let (mut session, server) = start(
        &["PIPELINING"],
        vec![
            group(&[
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA",
            ]),
            send("250 Ok\r\n250 Ok\r\n354 go\r\n250 2.0.0 Ok: queued as FAKE\r\n"),
            Act::Drain,
        ],
    )
    .await;
    let e = send_bytes(&mut session, &envelope(&["bob@example.test"]), HELLO)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Protocol { ref detail, .. } if detail.contains("DATA")),
        "{e:?}"
    );
    drop(session);
    let received = server.await.unwrap().text();
    assert!(
        !received.contains("Subject"),
        "the body was sent: {received:?}"
    );
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
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
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
    assert!(
        matches!(&again, Error::Protocol { detail, .. } if detail.contains("cannot be used any more")),
        "{again:?}"
    );
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
    assert!(
        matches!(e, Error::Protocol { ref detail, .. } if detail.contains("250 planted")),
        "{e:?}"
    );
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
    assert!(
        matches!(e, Error::Closed { ref reply, .. } if reply.to_string().contains("timeout exceeded")),
        "{e:?}"
    );
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
    assert!(
        matches!(e, Error::Misuse { ref what, .. } if what.contains("abandoned")),
        "the dropped call is the caller's doing, not the server's: {e:?}"
    );
    assert!(session.is_closed());
    drop(session);
    let received = server.await.unwrap().text();
    assert!(!received.contains("carol"), "{received:?}");
}
