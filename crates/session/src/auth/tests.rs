//! The SASL driver against scripted channels: each mechanism's happy path and refusals,
//! SASL-IR or not, the failure challenges of OAuth2, SCRAM with RFC 7677's example.

use std::collections::VecDeque;

use super::*;
use crate::credential::CredentialKind;

/// A channel that answers from a script and records what the client sent.
#[derive(Default)]
struct Script {
    replies: VecDeque<SaslReply>,
    sent: Vec<String>,
    /// What the driver gave as the reason to abandon the session, if it did.
    abandoned: Option<String>,
    /// No initial response fits on the command line (an SMTP or POP3 line limit).
    too_long: bool,
}

impl Script {
    fn new(replies: impl IntoIterator<Item = SaslReply>) -> Self {
        Self {
            replies: replies.into_iter().collect(),
            sent: Vec::new(),
            abandoned: None,
            too_long: false,
        }
    }

    fn too_long(mut self) -> Self {
        self.too_long = true;
        self
    }

    fn next(&mut self) -> SaslReply {
        self.replies
            .pop_front()
            .expect("the client sent more than the script expects")
    }
}

impl SaslChannel for Script {
    fn initial_response_fits(&self, _mechanism: &str, _initial: &[u8]) -> bool {
        !self.too_long
    }

    async fn start(&mut self, mechanism: &str, initial: Option<&[u8]>) -> Result<SaslReply, Error> {
        let ir = initial
            .map(|i| format!(" {}", String::from_utf8_lossy(i)))
            .unwrap_or_default();
        self.sent.push(format!("START {mechanism}{ir}"));
        Ok(self.next())
    }

    async fn respond(&mut self, payload: &[u8], _secret: bool) -> Result<SaslReply, Error> {
        self.sent
            .push(String::from_utf8_lossy(payload).into_owned());
        Ok(self.next())
    }

    async fn cancel(&mut self) -> Result<SaslReply, Error> {
        self.sent.push("*".into());
        Ok(self.next())
    }

    fn abandon(&mut self, reason: &str) {
        self.abandoned = Some(reason.to_owned());
    }
}

fn endpoint() -> Endpoint {
    Endpoint::new(
        Protocol::Imap,
        "mail.example.com",
        mailcat_transport::Security::ImplicitTls,
    )
}

fn password() -> Secret {
    Secret::new(&b"pencil"[..])
}

fn challenge(text: &str) -> SaslReply {
    SaslReply::Challenge(text.as_bytes().to_vec())
}

fn offer(sasl: &[&str], plain_command: bool) -> Offer {
    Offer {
        sasl: sasl.iter().map(|s| s.to_string()).collect(),
        plain_command,
        tls: true,
    }
}

#[test]
fn the_best_mechanism_for_each_credential() {
    let e = endpoint();
    let all = offer(
        &["PLAIN", "LOGIN", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER"],
        true,
    );
    assert_eq!(
        choose(&all, CredentialKind::Password, None, &e).unwrap(),
        LoginMethod::Sasl(Mechanism::ScramSha256)
    );
    assert_eq!(
        choose(&all, CredentialKind::OAuth2Token, None, &e).unwrap(),
        LoginMethod::Sasl(Mechanism::XOAuth2)
    );
    assert_eq!(
        choose(
            &offer(&["login", "plain"], true),
            CredentialKind::Password,
            None,
            &e
        )
        .unwrap(),
        LoginMethod::Sasl(Mechanism::Plain)
    );
    assert_eq!(
        choose(&offer(&["LOGIN"], true), CredentialKind::Password, None, &e).unwrap(),
        LoginMethod::Sasl(Mechanism::Login)
    );
    assert_eq!(
        choose(&offer(&[], true), CredentialKind::Password, None, &e).unwrap(),
        LoginMethod::PlainCommand
    );
    assert_eq!(
        choose(
            &offer(&["OAUTHBEARER"], false),
            CredentialKind::OAuth2Token,
            None,
            &e
        )
        .unwrap(),
        LoginMethod::Sasl(Mechanism::OAuthBearer)
    );
}

#[test]
fn no_way_in_says_why() {
    let e = endpoint();
    // Outlook.com-like: only OAuth2 offered, a password configured.
    let error = choose(
        &offer(&["XOAUTH2"], false),
        CredentialKind::Password,
        None,
        &e,
    )
    .unwrap_err();
    assert!(!error.is_auth(), "the password was never tried: {error:?}");
    assert!(error.to_string().contains("OAuth2 tokens"), "{error}");
    // LOGINDISABLED before STARTTLS: nothing at all.
    let clear = Offer {
        tls: false,
        ..offer(&[], false)
    };
    let error = choose(&clear, CredentialKind::Password, None, &e).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no login without TLS (LOGINDISABLED)"),
        "{error}"
    );
    // A token where only passwords are taken; SMTP has no plain command.
    let smtp = Endpoint::new(
        Protocol::Smtp,
        "smtp.example.com",
        mailcat_transport::Security::StartTls,
    );
    assert!(choose(
        &offer(&["PLAIN"], true),
        CredentialKind::OAuth2Token,
        None,
        &smtp
    )
    .is_err());
}

#[tokio::test]
async fn plain_with_and_without_initial_response() {
    let mut with_ir = Script::new([SaslReply::Success]);
    authenticate(
        &mut with_ir,
        Mechanism::Plain,
        "alice",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap();
    assert_eq!(with_ir.sent, ["START PLAIN \0alice\0pencil"]);

    let mut without = Script::new([challenge(""), SaslReply::Success]);
    authenticate(
        &mut without,
        Mechanism::Plain,
        "alice",
        &password(),
        false,
        &endpoint(),
    )
    .await
    .unwrap();
    assert_eq!(without.sent, ["START PLAIN", "\0alice\0pencil"]);
}

#[tokio::test]
async fn login_answers_two_prompts_and_one_refusal_is_final() {
    let mut ok = Script::new([
        challenge("Username:"),
        challenge("Password:"),
        SaslReply::Success,
    ]);
    authenticate(
        &mut ok,
        Mechanism::Login,
        "alice",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap();
    assert_eq!(ok.sent, ["START LOGIN", "alice", "pencil"]);

    let mut refused = Script::new([
        challenge("Username:"),
        challenge("Password:"),
        SaslReply::Failure("[AUTHENTICATIONFAILED] Authentication failed.".into()),
    ]);
    let error = authenticate(
        &mut refused,
        Mechanism::Login,
        "alice",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, Error::AuthenticationFailed { .. }),
        "{error:?}"
    );
    assert!(
        refused.abandoned.is_none(),
        "a refusal is an answer, not a broken protocol"
    );
    assert_eq!(
        refused.sent.len(),
        3,
        "exactly one attempt: {:?}",
        refused.sent
    );
}

#[tokio::test]
async fn outlook_basic_auth_disabled_asks_for_oauth2() {
    let mut script = Script::new([SaslReply::Failure(
        "5.7.139 Authentication unsuccessful, basic authentication is disabled.".into(),
    )]);
    let error = authenticate(
        &mut script,
        Mechanism::Plain,
        "alice@outlook.com",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, Error::BasicAuthDisabled { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("OAuth2"));
    // Microsoft IMAP's terse refusal after a password: a hint, not a certainty.
    let mut script = Script::new([SaslReply::Failure("AUTHENTICATE failed.".into())]);
    let error = authenticate(
        &mut script,
        Mechanism::Plain,
        "alice@outlook.com",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(error.hint().unwrap().contains("OAuth2"), "{error:?}");
}

#[tokio::test]
async fn xoauth2_two_line_form_and_decoded_failure() {
    // Microsoft POP3: no initial response; `+ ` then the token on its own line.
    let token = Secret::new(&b"ya29.token"[..]);
    let mut ok = Script::new([challenge(""), SaslReply::Success]);
    authenticate(
        &mut ok,
        Mechanism::XOAuth2,
        "alice@outlook.com",
        &token,
        false,
        &endpoint(),
    )
    .await
    .unwrap();
    assert_eq!(
        ok.sent,
        [
            "START XOAUTH2",
            "user=alice@outlook.com\x01auth=Bearer ya29.token\x01\x01"
        ]
    );

    // Gmail's failure: a base64 JSON challenge, acknowledged with an empty line, then a refusal.
    let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
    let mut refused = Script::new([
        challenge(json),
        SaslReply::Failure("5.7.9 Invalid credentials".into()),
    ]);
    let error = authenticate(
        &mut refused,
        Mechanism::XOAuth2,
        "alice@gmail.com",
        &token,
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    match &error {
        Error::OAuth2Rejected { status, scope, .. } => {
            assert_eq!(status, "401");
            assert_eq!(scope.as_deref(), Some("https://mail.google.com/"));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("expired"), "{error}");
    assert_eq!(
        refused.sent[1], "",
        "the failure challenge is acknowledged with an empty response"
    );
}

#[tokio::test]
async fn oauthbearer_failure_is_acknowledged_with_ctrl_a() {
    let token = Secret::new(&b"tok"[..]);
    let json = r#"{"status":"invalid_token"}"#;
    let mut refused = Script::new([
        challenge(json),
        SaslReply::Failure("authentication failed".into()),
    ]);
    let error = authenticate(
        &mut refused,
        Mechanism::OAuthBearer,
        "alice",
        &token,
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::OAuth2Rejected { .. }), "{error:?}");
    assert!(refused.sent[0].starts_with(
        "START OAUTHBEARER n,a=alice,\x01host=mail.example.com\x01port=993\x01auth=Bearer tok"
    ));
    assert_eq!(refused.sent[1], "\x01");
}

#[tokio::test]
async fn temporary_refusal_is_transient() {
    let mut script = Script::new([SaslReply::Unavailable("[UNAVAILABLE] try later".into())]);
    let error = authenticate(
        &mut script,
        Mechanism::Plain,
        "alice",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(error.is_transient() && !error.is_auth(), "{error:?}");
}

#[tokio::test]
async fn endless_challenges_are_refused() {
    let mut script = Script::new([
        challenge(""),
        challenge("again"),
        SaslReply::Failure("cancelled".into()),
    ]);
    let error = authenticate(
        &mut script,
        Mechanism::Plain,
        "alice",
        &password(),
        false,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Protocol { .. } | Error::AuthenticationFailed { .. }
        ),
        "{error:?}"
    );
    assert_eq!(
        script.sent.last().map(String::as_str),
        Some("*"),
        "the exchange is cancelled"
    );
}

/// RFC 7677 §3: user "user", password "pencil".
const RFC7677_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC7677_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn scram_context<'a>(e: &'a Endpoint) -> Context<'a> {
    Context {
        endpoint: e,
        login: "user",
        mechanism: Mechanism::ScramSha256,
    }
}

#[tokio::test]
async fn scram_sha_256_matches_rfc_7677() {
    let e = endpoint();
    let mut script = Script::new([
        challenge(RFC7677_SERVER_FIRST),
        challenge(RFC7677_SERVER_FINAL),
        SaslReply::Success,
    ]);
    scram::run(
        &mut script,
        &scram_context(&e),
        &password(),
        true,
        RFC7677_CLIENT_NONCE,
    )
    .await
    .unwrap();
    assert_eq!(
        script.sent,
        [
            format!("START SCRAM-SHA-256 n,,n=user,r={RFC7677_CLIENT_NONCE}"),
            RFC7677_CLIENT_FINAL.to_owned(),
            String::new()
        ]
    );
}

#[tokio::test]
async fn scram_refuses_a_server_that_does_not_know_the_password() {
    let e = endpoint();
    let forged = "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    let mut script = Script::new([
        challenge(RFC7677_SERVER_FIRST),
        challenge(forged),
        SaslReply::Failure("cancelled".into()),
    ]);
    let error = scram::run(
        &mut script,
        &scram_context(&e),
        &password(),
        true,
        RFC7677_CLIENT_NONCE,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("signature is wrong"), "{error}");
}

#[test]
fn scram_checks_the_server_first_message() {
    assert!(
        scram::parse_server_first("r=abc,s=c2FsdA==,i=4096", "xyz").is_err(),
        "foreign nonce"
    );
    assert!(
        scram::parse_server_first("r=abc,s=c2FsdA==,i=4096", "abc").is_err(),
        "nonce not extended"
    );
    assert!(scram::parse_server_first("r=abcd,s=c2FsdA==,i=0", "abc").is_err());
    assert!(
        scram::parse_server_first("r=abcd,s=c2FsdA==,i=99999999", "abc").is_err(),
        "CPU bomb"
    );
    assert!(scram::parse_server_first("m=ext,r=abcd,s=c2FsdA==,i=4096", "abc").is_err());
    assert!(scram::parse_server_first("r=abcd,s=c2FsdA==,i=4096", "abc").is_ok());
    assert_eq!(scram::saslname("a,b=c"), "a=2Cb=3Dc");
}

// ----- a success counts only once the exchange is complete (threat model #41's class) -----

fn assert_early_success(error: &Error) {
    assert!(
        matches!(error, Error::Protocol { detail, .. } if detail.contains("claimed success")),
        "{error:?}"
    );
    assert!(
        !error.is_auth(),
        "not a refusal of the credentials: {error:?}"
    );
}

async fn run(script: &mut Script, mechanism: Mechanism, ir: bool) -> Result<(), Error> {
    let secret = match mechanism {
        Mechanism::XOAuth2 | Mechanism::OAuthBearer => Secret::new(&b"ya29.token"[..]),
        _ => password(),
    };
    authenticate(script, mechanism, "alice", &secret, ir, &endpoint()).await
}

#[tokio::test]
async fn a_success_before_the_one_message_was_sent_is_a_protocol_error() {
    // PLAIN, XOAUTH2 and OAUTHBEARER without an initial response: `OK` instead of `+`.
    for mechanism in [Mechanism::Plain, Mechanism::XOAuth2, Mechanism::OAuthBearer] {
        let mut script = Script::new([SaslReply::Success]);
        let error = run(&mut script, mechanism, false).await.unwrap_err();
        assert_early_success(&error);
        assert_eq!(script.sent, [format!("START {}", mechanism.name())]);
        assert!(
            script.abandoned.is_some(),
            "the channel is told to take no further command"
        );
    }
    // The same when the initial response is too long for the line (SMTP XOAUTH2 tokens).
    for mechanism in [Mechanism::Plain, Mechanism::XOAuth2, Mechanism::OAuthBearer] {
        let mut script = Script::new([SaslReply::Success]).too_long();
        let error = run(&mut script, mechanism, true).await.unwrap_err();
        assert_early_success(&error);
        assert_eq!(script.sent, [format!("START {}", mechanism.name())]);
    }
}

#[tokio::test]
async fn a_too_long_initial_response_goes_after_the_first_challenge() {
    let mut script = Script::new([challenge(""), SaslReply::Success]).too_long();
    run(&mut script, Mechanism::XOAuth2, true).await.unwrap();
    assert_eq!(
        script.sent,
        [
            "START XOAUTH2",
            "user=alice\x01auth=Bearer ya29.token\x01\x01"
        ]
    );
    // A refusal instead of the challenge is a refusal, the token unsent.
    let mut script = Script::new([SaslReply::Failure("5.7.8 no".into())]).too_long();
    let error = run(&mut script, Mechanism::XOAuth2, true)
        .await
        .unwrap_err();
    assert!(error.is_auth(), "{error:?}");
    assert_eq!(script.sent, ["START XOAUTH2"]);
}

#[tokio::test]
async fn login_needs_both_the_user_name_and_the_password_sent() {
    let mut script = Script::new([SaslReply::Success]);
    assert_early_success(&run(&mut script, Mechanism::Login, false).await.unwrap_err());
    assert_eq!(script.sent, ["START LOGIN"]);

    let mut script = Script::new([challenge("Username:"), SaslReply::Success]);
    assert_early_success(&run(&mut script, Mechanism::Login, false).await.unwrap_err());
    assert_eq!(
        script.sent,
        ["START LOGIN", "alice"],
        "the password was sent"
    );
}

#[tokio::test]
async fn scram_success_without_the_server_final_message_is_a_protocol_error() {
    let e = endpoint();
    // Straight after the client-first message ...
    let mut script = Script::new([SaslReply::Success]);
    let error = scram::run(
        &mut script,
        &scram_context(&e),
        &password(),
        true,
        RFC7677_CLIENT_NONCE,
    )
    .await
    .unwrap_err();
    assert_early_success(&error);
    // ... before it, without SASL-IR ...
    let mut script = Script::new([SaslReply::Success]);
    let error = scram::run(
        &mut script,
        &scram_context(&e),
        &password(),
        false,
        RFC7677_CLIENT_NONCE,
    )
    .await
    .unwrap_err();
    assert_early_success(&error);
    assert_eq!(script.sent, ["START SCRAM-SHA-256"]);
    // ... and after the client-final message, in place of the server-final one: the server
    // never proved it knows the password.
    let mut script = Script::new([challenge(RFC7677_SERVER_FIRST), SaslReply::Success]);
    let error = scram::run(
        &mut script,
        &scram_context(&e),
        &password(),
        true,
        RFC7677_CLIENT_NONCE,
    )
    .await
    .unwrap_err();
    assert_early_success(&error);
    assert!(error.to_string().contains("server-final"), "{error}");
}

#[tokio::test]
async fn scram_refuses_a_forged_signature_even_when_the_server_then_says_ok() {
    let e = endpoint();
    let forged = "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    let mut script = Script::new([
        challenge(RFC7677_SERVER_FIRST),
        challenge(forged),
        SaslReply::Success,
    ]);
    let error = scram::run(
        &mut script,
        &scram_context(&e),
        &password(),
        true,
        RFC7677_CLIENT_NONCE,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("signature is wrong"), "{error}");
    assert_eq!(script.sent.last().map(String::as_str), Some("*"));
}

#[test]
fn nothing_offered_over_tls_is_said_plainly_per_protocol() {
    // aiosmtpd on implicit TLS without AUTH, a POP3 server with neither SASL nor USER: TLS is
    // on, so STARTTLS and LOGINDISABLED are not the explanation.
    for protocol in [Protocol::Imap, Protocol::Pop3, Protocol::Smtp] {
        let e = Endpoint::new(
            protocol,
            "mail.example.com",
            mailcat_transport::Security::ImplicitTls,
        );
        let error = choose(&offer(&[], false), CredentialKind::Password, None, &e).unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, Error::NoUsableMechanism { .. }),
            "{error:?}"
        );
        assert!(text.contains("even over TLS"), "{protocol:?}: {text}");
        assert!(!text.contains("STARTTLS"), "{protocol:?}: {text}");
    }
    let smtp = Endpoint::new(
        Protocol::Smtp,
        "mx.example.com",
        mailcat_transport::Security::ImplicitTls,
    );
    let text = choose(&offer(&[], false), CredentialKind::Password, None, &smtp)
        .unwrap_err()
        .to_string();
    assert!(text.contains("announces no AUTH at all"), "{text}");
    let pop3 = Endpoint::new(
        Protocol::Pop3,
        "pop.example.com",
        mailcat_transport::Security::ImplicitTls,
    );
    let text = choose(&offer(&[], false), CredentialKind::Password, None, &pop3)
        .unwrap_err()
        .to_string();
    assert!(!text.contains("LOGINDISABLED"), "{text}");
}

#[test]
fn cram_md5_is_the_last_resort_and_only_over_tls() {
    let e = endpoint();
    let cram = |m: &[&str], plain_command: bool, tls: bool| {
        choose(
            &Offer {
                tls,
                ..offer(m, plain_command)
            },
            CredentialKind::Password,
            None,
            &e,
        )
    };
    for better in ["SCRAM-SHA-256", "PLAIN", "LOGIN"] {
        assert_ne!(
            cram(&["CRAM-MD5", better], false, true).unwrap(),
            LoginMethod::Sasl(Mechanism::CramMd5),
            "{better}"
        );
    }
    assert_eq!(
        cram(&["CRAM-MD5"], true, true).unwrap(),
        LoginMethod::PlainCommand
    );
    assert_eq!(
        cram(&["cram-md5"], false, true).unwrap(),
        LoginMethod::Sasl(Mechanism::CramMd5)
    );
    let error = cram(&["CRAM-MD5"], false, false).unwrap_err();
    assert!(
        error.to_string().contains("CRAM-MD5 only over TLS"),
        "{error}"
    );
    // Never for a token.
    assert!(choose(
        &offer(&["CRAM-MD5"], false),
        CredentialKind::OAuth2Token,
        None,
        &e
    )
    .is_err());
}

#[tokio::test]
async fn cram_md5_answers_the_challenge_with_the_rfc2195_digest() {
    let mut script = Script::new([
        challenge("<1896.697170952@postoffice.reston.mci.net>"),
        SaslReply::Success,
    ]);
    authenticate(
        &mut script,
        Mechanism::CramMd5,
        "tim",
        &Secret::new(&b"tanstaaftanstaaf"[..]),
        true,
        &endpoint(),
    )
    .await
    .unwrap();
    assert_eq!(
        script.sent,
        ["START CRAM-MD5", "tim b913a602c7eda7a495b4e6e7334d3890"]
    );
}

#[tokio::test]
async fn cram_md5_success_before_the_answer_or_a_second_challenge_is_refused() {
    let mut early = Script::new([SaslReply::Success]);
    let error = authenticate(
        &mut early,
        Mechanism::CramMd5,
        "tim",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::Protocol { .. }), "{error:?}");
    assert!(early.abandoned.is_some());

    let mut again = Script::new([
        challenge("<1@x>"),
        challenge("<2@x>"),
        SaslReply::Failure("no".into()),
    ]);
    let error = authenticate(
        &mut again,
        Mechanism::CramMd5,
        "tim",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(error.is_auth(), "{error:?}");
    assert_eq!(again.sent.last().map(String::as_str), Some("*"));

    let mut refused = Script::new([challenge("<1@x>"), SaslReply::Failure("wrong".into())]);
    let error = authenticate(
        &mut refused,
        Mechanism::CramMd5,
        "tim",
        &password(),
        true,
        &endpoint(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            Error::AuthenticationFailed {
                mechanism: "CRAM-MD5",
                ..
            }
        ),
        "{error:?}"
    );
}

// ---- a mechanism chosen for the credential (msmtp's `auth`) ----

/// Every mechanism mailcat has, offered in lower case.
fn everything() -> Offer {
    offer(
        &[
            "scram-sha-256",
            "plain",
            "login",
            "cram-md5",
            "xoauth2",
            "oauthbearer",
        ],
        true,
    )
}

#[test]
fn a_chosen_mechanism_is_used_when_offered_whatever_the_automatic_choice_would_be() {
    let e = endpoint();
    for mechanism in Mechanism::ALL {
        assert_eq!(
            choose(
                &everything(),
                mechanism.credential_kind(),
                Some(mechanism),
                &e
            )
            .unwrap(),
            LoginMethod::Sasl(mechanism),
            "{mechanism}"
        );
    }
    // Chosen, CRAM-MD5 is not kept for TLS: whether anything goes out without TLS is the
    // sessions' plaintext rule.
    let clear = Offer {
        tls: false,
        ..offer(&["CRAM-MD5", "PLAIN"], false)
    };
    assert_eq!(
        choose(
            &clear,
            CredentialKind::Password,
            Some(Mechanism::CramMd5),
            &e
        )
        .unwrap(),
        LoginMethod::Sasl(Mechanism::CramMd5)
    );
}

#[test]
fn a_chosen_mechanism_not_offered_is_an_error_naming_both_and_nothing_else_is_tried() {
    let e = endpoint();
    // The automatic choice would take XOAUTH2; the user asked for OAUTHBEARER.
    let error = choose(
        &offer(&["PLAIN", "XOAUTH2"], true),
        CredentialKind::OAuth2Token,
        Some(Mechanism::OAuthBearer),
        &e,
    )
    .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::MechanismNotOffered { mechanism: Mechanism::OAuthBearer, offered, .. }
                if offered == &["PLAIN", "XOAUTH2", "LOGIN command"]
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("mail.example.com does not offer OAUTHBEARER"),
        "{text}"
    );
    assert!(
        text.contains("it offers: PLAIN, XOAUTH2, LOGIN command"),
        "{text}"
    );
    assert!(!error.is_auth(), "the token was never tried: {error:?}");
    assert!(error.is_config(), "{error:?}");
    // No downgrade (threat model #21): SCRAM asked for, PLAIN and the LOGIN command offered.
    // No fallback to the protocol's own command either.
    for (mechanism, offered) in [
        (Mechanism::ScramSha256, &["PLAIN", "LOGIN"][..]),
        (Mechanism::Plain, &[][..]),
        (Mechanism::CramMd5, &["SCRAM-SHA-256"][..]),
    ] {
        let error = choose(
            &offer(offered, true),
            CredentialKind::Password,
            Some(mechanism),
            &e,
        )
        .unwrap_err();
        assert!(
            matches!(error, Error::MechanismNotOffered { mechanism: m, .. } if m == mechanism),
            "{mechanism}: {error:?}"
        );
    }
    // A server that offers nothing before TLS: the usual hint comes along.
    let clear = Offer {
        tls: false,
        ..offer(&[], false)
    };
    let error = choose(&clear, CredentialKind::Password, Some(Mechanism::Plain), &e).unwrap_err();
    assert!(error.to_string().contains("it offers: nothing"), "{error}");
    assert!(
        error.hint().is_some_and(|h| h.contains("LOGINDISABLED")),
        "{error:?}"
    );
}

#[test]
fn a_chosen_mechanism_must_fit_the_kind_of_credential() {
    let e = endpoint();
    for mechanism in Mechanism::ALL {
        for kind in [CredentialKind::Password, CredentialKind::OAuth2Token] {
            if mechanism.credential_kind() == kind {
                continue;
            }
            // Even when the server offers it: the secret would be presented wrongly.
            let error = choose(&everything(), kind, Some(mechanism), &e).unwrap_err();
            assert!(
                matches!(error, Error::MechanismUnfit { mechanism: m, kind: k } if m == mechanism && k == kind),
                "{mechanism} {kind:?}: {error:?}"
            );
            assert!(error.is_config() && !error.is_auth(), "{error:?}");
        }
    }
    let error = choose(
        &everything(),
        CredentialKind::OAuth2Token,
        Some(Mechanism::Plain),
        &e,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "PLAIN cannot log in with an OAuth2 token: it takes a password"
    );
}

#[test]
fn a_credential_takes_only_a_mechanism_that_fits_it() {
    use crate::Credential;
    let password = Credential::password("alice@example.com", "pw");
    assert_eq!(password.mechanism(), None);
    let chosen = password.clone().with_mechanism(Mechanism::Login).unwrap();
    assert_eq!(chosen.mechanism(), Some(Mechanism::Login));
    let error = password.with_mechanism(Mechanism::XOAuth2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "XOAUTH2 cannot log in with a password: it takes an OAuth2 token"
    );
    let token = Credential::oauth2("alice@example.com", "ya29.token");
    assert_eq!(
        token
            .clone()
            .with_mechanism(Mechanism::OAuthBearer)
            .unwrap()
            .mechanism(),
        Some(Mechanism::OAuthBearer)
    );
    for mechanism in [
        Mechanism::ScramSha256,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
    ] {
        assert!(
            matches!(
                token.clone().with_mechanism(mechanism),
                Err(Error::MechanismUnfit { .. })
            ),
            "{mechanism}"
        );
    }
}

#[test]
fn mechanism_names_are_read_in_any_case() {
    for mechanism in Mechanism::ALL {
        assert_eq!(mechanism.name().parse::<Mechanism>(), Ok(mechanism));
        let lower = mechanism.name().to_ascii_lowercase();
        assert_eq!(lower.parse::<Mechanism>(), Ok(mechanism));
        assert_eq!(mechanism.to_string(), mechanism.name());
    }
    assert_eq!("OAuthBearer".parse(), Ok(Mechanism::OAuthBearer));
    let error = "digest-md5".parse::<Mechanism>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown SASL mechanism \"digest-md5\": mailcat has SCRAM-SHA-256, PLAIN, LOGIN, \
         CRAM-MD5, XOAUTH2, OAUTHBEARER (in any case)"
    );
    assert!("".parse::<Mechanism>().is_err());
    assert!(
        "PLAIN ".parse::<Mechanism>().is_ok(),
        "surrounding blanks are no part of a name"
    );
}
