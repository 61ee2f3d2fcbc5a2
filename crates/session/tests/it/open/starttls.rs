//! The audited STARTTLS upgrade for IMAP, POP3 and SMTP against scripted servers: the happy
//! path, stripping, refusal, response injection (same and second write), PREAUTH, wrong tags
//! and continuations (threat model #1–#9, #11, #41).

use std::time::Duration;

use super::support::*;
use mailcat_transport::{CertificateProblem, Error, Protocol, Security, Step};

/// One protocol's side of a STARTTLS dialogue.
struct Dialogue {
    protocol: Protocol,
    greeting: &'static str,
    /// The capability command as the client sends it first.
    caps_command: &'static str,
    /// The capability reply, with `{tls}` where the STARTTLS entry goes.
    caps_reply: &'static str,
    /// The entry that offers STARTTLS.
    tls_entry: &'static str,
    starttls_command: &'static str,
    go_ahead: &'static str,
    /// Every way the server may refuse STARTTLS (threat model #2).
    refusals: &'static [&'static str],
    /// A plaintext line an attacker injects after the go-ahead.
    injected: &'static str,
    /// The capability command after TLS (IMAP tags start again).
    post_caps_command: &'static str,
    /// The post-TLS capability reply, different from the first.
    post_caps_reply: &'static str,
    post_caps: &'static [&'static str],
}

const IMAP: Dialogue = Dialogue {
    protocol: Protocol::Imap,
    greeting: "* OK IMAP ready\r\n",
    caps_command: "A0001 CAPABILITY",
    caps_reply: "* CAPABILITY IMAP4rev1{tls} LOGINDISABLED\r\nA0001 OK done\r\n",
    tls_entry: " STARTTLS",
    starttls_command: "A0002 STARTTLS",
    go_ahead: "A0002 OK Begin TLS negotiation now\r\n",
    refusals: &[
        "A0002 NO [UNAVAILABLE] not now\r\n",
        "A0002 BAD not now, not ever\r\n",
    ],
    injected: "* OK injected\r\n",
    post_caps_command: "A0001 CAPABILITY",
    post_caps_reply: "* CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE\r\nA0001 OK done\r\n",
    post_caps: &["IMAP4rev1", "AUTH=PLAIN", "IDLE"],
};

const POP3: Dialogue = Dialogue {
    protocol: Protocol::Pop3,
    greeting: "+OK POP3 ready\r\n",
    caps_command: "CAPA",
    caps_reply: "+OK Capability list follows\r\nTOP\r\nUIDL{tls}\r\n.\r\n",
    tls_entry: "\r\nSTLS",
    starttls_command: "STLS",
    go_ahead: "+OK Begin TLS negotiation\r\n",
    refusals: &["-ERR not now\r\n"],
    injected: "+OK injected\r\n",
    post_caps_command: "CAPA",
    post_caps_reply: "+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN\r\nUSER\r\n.\r\n",
    post_caps: &["TOP", "UIDL", "SASL PLAIN", "USER"],
};

const SMTP: Dialogue = Dialogue {
    protocol: Protocol::Smtp,
    greeting: "220 mx.example ESMTP\r\n",
    caps_command: "EHLO [127.0.0.1]",
    caps_reply: "250-mx.example{tls}\r\n250 SIZE 1000\r\n",
    tls_entry: "\r\n250-STARTTLS",
    starttls_command: "STARTTLS",
    go_ahead: "220 2.0.0 Ready to start TLS\r\n",
    refusals: &[
        "454 4.7.0 TLS not available due to temporary reason\r\n",
        "530 5.7.0 Must issue a STARTTLS command first, or not now\r\n",
    ],
    injected: "250 injected\r\n",
    post_caps_command: "EHLO [127.0.0.1]",
    post_caps_reply: "250-mx.example\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1000\r\n",
    post_caps: &["AUTH PLAIN LOGIN", "SIZE 1000"],
};

const ALL: [&Dialogue; 3] = [&IMAP, &POP3, &SMTP];

impl Dialogue {
    fn caps(&self, offer_tls: bool) -> String {
        self.caps_reply
            .replace("{tls}", if offer_tls { self.tls_entry } else { "" })
    }

    /// Greeting, capabilities offering STARTTLS, the STARTTLS command.
    fn until_starttls(&self) -> Vec<Act> {
        vec![
            send(self.greeting),
            expect(self.caps_command),
            send(self.caps(true)),
            expect(self.starttls_command),
        ]
    }

    fn endpoint(&self, server: &Server) -> mailcat_transport::Endpoint {
        server.endpoint(self.protocol, Security::StartTls, "127.0.0.1")
    }

    /// What the client sent before TLS in a dialogue that reached STARTTLS.
    fn plaintext_sent(&self) -> String {
        format!("{}\r\n{}\r\n", self.caps_command, self.starttls_command)
    }
}

#[tokio::test]
async fn starttls_upgrades_and_uses_only_the_post_tls_capabilities() {
    for d in ALL {
        let (client, server_config) = valid_pki();
        let mut script = d.until_starttls();
        script.extend([
            send(d.go_ahead),
            Act::StartTls(server_config),
            expect(d.post_caps_command),
            send(d.post_caps_reply),
        ]);
        let server = Server::start(script).await;
        let opened = open(&d.endpoint(&server), client)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", d.protocol));
        // threat model #9: what was learned before TLS is forgotten.
        assert_eq!(opened.capabilities.items, d.post_caps, "{}", d.protocol);
        assert!(!opened.capabilities.offers_starttls());
        assert!(opened.connection.connection().is_tls());
        assert_eq!(opened.connection.connection().buffered(), 0);
        drop(opened);
        let received = server.received().await;
        assert!(received.tls);
        assert_eq!(
            String::from_utf8_lossy(&received.before_tls),
            d.plaintext_sent()
        );
        assert_eq!(
            received.text(),
            format!("{}{}\r\n", d.plaintext_sent(), d.post_caps_command)
        );
    }
}

#[tokio::test]
async fn untagged_responses_before_the_starttls_ok_are_discarded() {
    // threat model #8: they come before TLS and change nothing.
    let (client, server_config) = valid_pki();
    let mut script = IMAP.until_starttls();
    script.extend([
        send("* 3 EXISTS\r\n* OK [ALERT] click here\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA0002 OK go\r\n"),
        Act::StartTls(server_config),
        expect("A0001 CAPABILITY"),
        send("* CAPABILITY IMAP4rev1 IDLE\r\nA0001 OK done\r\n"),
    ]);
    let server = Server::start(script).await;
    let opened = open(&IMAP.endpoint(&server), client).await.unwrap();
    assert_eq!(opened.capabilities.items, ["IMAP4rev1", "IDLE"]);
    drop(opened);
    server.received().await;
}

#[tokio::test]
async fn starttls_not_offered_is_refused_before_anything_else() {
    // threat model #1: stripping.
    for d in ALL {
        let server = Server::start(vec![
            send(d.greeting),
            expect(d.caps_command),
            send(d.caps(false)),
        ])
        .await;
        let error = err(open(&d.endpoint(&server), any_client_config()).await);
        match &error {
            Error::StartTlsNotOffered {
                command, tls_url, ..
            } => {
                assert_eq!(*command, d.protocol.starttls_command());
                assert!(tls_url.contains("s://127.0.0.1:"), "{tls_url}");
            }
            other => panic!("{}: expected StartTlsNotOffered, got {other:?}", d.protocol),
        }
        let text = error.to_string();
        assert!(text.contains("cannot be encrypted"), "{text}");
        assert!(text.contains("use implicit TLS"), "{text}");
        let received = server.received().await;
        assert_eq!(received.text(), format!("{}\r\n", d.caps_command));
    }
}

#[tokio::test]
async fn starttls_refused_is_an_error_without_a_plaintext_fallback() {
    // threat model #2.
    for d in ALL {
        for refusal in d.refusals {
            let mut script = d.until_starttls();
            script.push(send(refusal));
            let server = Server::start(script).await;
            let error = err(open(&d.endpoint(&server), any_client_config()).await);
            match &error {
                Error::Refused {
                    step: Step::StartTls,
                    reply,
                    ..
                } => {
                    // The server's status word (NO, BAD, -ERR, 454, 530) and its text.
                    let word = refusal.trim_start_matches("A0002 ").split(' ').next();
                    assert!(
                        reply.with_status().starts_with(word.unwrap()),
                        "{refusal:?}: {reply}"
                    );
                    assert!(reply.to_string().contains("not"), "{refusal:?}: {reply}");
                }
                other => panic!("{refusal:?}: expected Refused, got {other:?}"),
            }
            let received = server.received().await;
            assert_eq!(received.text(), d.plaintext_sent(), "{refusal:?}");
        }
    }
}

#[tokio::test]
async fn response_injected_in_the_same_write_as_the_go_ahead() {
    // threat model #7: the bytes after the go-ahead are never fed to TLS or to the protocol.
    for d in ALL {
        let mut script = d.until_starttls();
        script.push(send(format!("{}{}", d.go_ahead, d.injected)));
        let server = Server::start(script).await;
        let error = err(open(&d.endpoint(&server), any_client_config()).await);
        match &error {
            Error::StartTlsInjection {
                command, buffered, ..
            } => {
                assert_eq!(*command, d.protocol.starttls_command());
                assert_eq!(*buffered, d.injected.len(), "{}", d.protocol);
            }
            other => panic!("{}: expected StartTlsInjection, got {other:?}", d.protocol),
        }
        assert!(error.to_string().contains("response injection"));
        let received = server.received().await;
        assert_eq!(received.text(), d.plaintext_sent(), "no ClientHello either");
    }
}

#[tokio::test]
async fn response_injected_in_a_second_write() {
    // The go-ahead alone, then the injection after a pause: the handshake meets plaintext.
    for d in ALL {
        let mut script = d.until_starttls();
        script.extend([
            send(d.go_ahead),
            Act::Sleep(Duration::from_millis(150)),
            send(d.injected),
        ]);
        let server = Server::start(script).await;
        let error = err(open(&d.endpoint(&server), any_client_config()).await);
        mailcat_tests::assert_matches!(
            error,
            Error::StartTlsInjection { .. },
            "{}: {error:?}",
            d.protocol
        );
        let received = server.received().await;
        let after = &received.bytes[d.plaintext_sent().len()..];
        assert_eq!(after.first(), Some(&0x16), "only a ClientHello followed");
    }
}

#[tokio::test]
async fn tagged_imap_line_injected_in_a_second_write() {
    // Not a greeting-like line: still plaintext where a ServerHello was due, so still injection.
    let mut script = IMAP.until_starttls();
    script.extend([
        send(IMAP.go_ahead),
        Act::Sleep(Duration::from_millis(150)),
        send("A0003 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"),
    ]);
    let server = Server::start(script).await;
    let error = err(open(&IMAP.endpoint(&server), any_client_config()).await);
    mailcat_tests::assert_matches!(error, Error::StartTlsInjection { .. });
    server.received().await;
}

#[tokio::test]
async fn garbage_instead_of_a_server_hello_after_the_go_ahead() {
    // threat model #11: a TLS error, never plaintext.
    for d in ALL {
        let mut script = d.until_starttls();
        script.extend([send(d.go_ahead), Act::ReadAny, send("hello there\r\n")]);
        let server = Server::start(script).await;
        let error = err(open(&d.endpoint(&server), any_client_config()).await);
        assert!(error.is_tls(), "{}: {error:?}", d.protocol);
        server.received().await;
    }
}

#[tokio::test]
async fn certificate_is_verified_for_the_configured_name_after_starttls() {
    let ca = Ca::new("mailcat test CA");
    let leaf = ca.leaf(&["other.example.org"], Validity::Now);
    let mut script = SMTP.until_starttls();
    script.extend([send(SMTP.go_ahead), Act::StartTls(leaf.server_config())]);
    let server = Server::start(script).await;
    let error = err(open(&SMTP.endpoint(&server), ca.client_config()).await);
    mailcat_tests::assert_matches!(
        &error,
        Error::Certificate {
            problem: CertificateProblem::NameMismatch { .. },
            ..
        }
    );
    let received = server.received().await;
    assert!(!received.tls);
    assert_eq!(received.text(), SMTP.plaintext_sent());
}

#[tokio::test]
async fn preauth_greeting_with_starttls_required_is_refused() {
    // threat model #6: nothing is sent after a cleartext PREAUTH.
    let server = Server::start(vec![send(
        "* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n",
    )])
    .await;
    let mut steps = Vec::new();
    let error = err(tokio::time::timeout(
        Duration::from_secs(8),
        mailcat_session::open(
            &IMAP.endpoint(&server),
            any_client_config(),
            &quick(),
            &mut |report| steps.push(report.step),
        ),
    )
    .await
    .expect("no hang"));
    // Named for what it is, not "does not offer STARTTLS"; and the greeting is not shown as a
    // step that passed.
    mailcat_tests::assert_matches!(error, Error::PreauthBeforeTls { .. });
    assert_eq!(error.step(), Some(Step::Greeting));
    assert!(!steps.contains(&Step::Greeting), "{steps:?}");
    let text = error.to_string();
    assert!(text.contains("PREAUTH"), "{text}");
    assert!(text.contains("without authentication"), "{text}");
    assert!(text.contains("attack"), "{text}");
    assert!(text.contains("imaps://127.0.0.1:993"), "{text}");
    assert!(!text.contains("does not offer"), "{text}");
    assert!(server.received().await.bytes.is_empty());
}

#[tokio::test]
async fn continuation_or_wrong_tag_in_answer_to_starttls_is_a_protocol_error() {
    // threat model #3, #41: never taken as the go-ahead.
    for answer in [
        "+ go ahead\r\n",
        "A0009 OK Begin TLS\r\n",
        "A0001 OK Begin TLS\r\n",
    ] {
        let mut script = IMAP.until_starttls();
        script.push(send(answer));
        let server = Server::start(script).await;
        let error = err(open(&IMAP.endpoint(&server), any_client_config()).await);
        mailcat_tests::assert_matches!(error, Error::Protocol { .. }, "{answer:?}: {error:?}");
        let received = server.received().await;
        assert_eq!(received.text(), IMAP.plaintext_sent(), "{answer:?}");
    }
}

#[tokio::test]
async fn smtp_intermediate_or_closing_reply_to_starttls_aborts() {
    // threat model #3: 354 and 221 are not a go-ahead.
    for answer in ["354 go on\r\n", "221 bye\r\n", "502 5.5.1 unknown\r\n"] {
        let mut script = SMTP.until_starttls();
        script.push(send(answer));
        let server = Server::start(script).await;
        let error = err(open(&SMTP.endpoint(&server), any_client_config()).await);
        mailcat_tests::assert_matches!(
            error,
            Error::Refused {
                step: Step::StartTls,
                ..
            } | Error::Protocol { .. },
            "{answer:?}: {error:?}"
        );
        let received = server.received().await;
        assert_eq!(received.text(), SMTP.plaintext_sent(), "{answer:?}");
    }
}

#[tokio::test]
async fn failing_capability_query_is_never_read_as_no_tls() {
    // threat model #4, #5: abort; no HELO fallback, no STARTTLS guess.
    let cases: [(&Dialogue, &str); 2] = [
        (&IMAP, "A0001 BAD unknown command\r\n"),
        (&SMTP, "502 5.5.2 EHLO not supported\r\n"),
    ];
    for (d, answer) in cases {
        let server =
            Server::start(vec![send(d.greeting), expect(d.caps_command), send(answer)]).await;
        let error = err(open(&d.endpoint(&server), any_client_config()).await);
        mailcat_tests::assert_matches!(
            error,
            Error::Refused {
                step: Step::Capabilities,
                ..
            },
            "{}: {error:?}",
            d.protocol
        );
        let received = server.received().await;
        assert_eq!(received.text(), format!("{}\r\n", d.caps_command));
    }
}

#[tokio::test]
async fn an_alert_in_a_greeting_before_starttls_is_not_kept_for_the_user() {
    // RFC 3501 §7.1 wants ALERT texts shown, but before TLS anyone on the path can write one
    // ("your mailbox is full, sign in at …"): only a greeting over TLS may reach the user.
    let (client, server_config) = valid_pki();
    let mut script = vec![
        send("* OK [ALERT] Your account is locked: sign in at https://evil.example\r\n"),
        expect(IMAP.caps_command),
        send(IMAP.caps(true)),
        expect(IMAP.starttls_command),
    ];
    script.extend([
        send(IMAP.go_ahead),
        Act::StartTls(server_config),
        expect(IMAP.post_caps_command),
        send(IMAP.post_caps_reply),
    ]);
    let server = Server::start(script).await;
    let opened = open(&IMAP.endpoint(&server), client).await.unwrap();
    assert!(
        opened.greeting.text.contains("locked"),
        "the greeting was read"
    );
    assert_eq!(opened.greeting.alert, None);
    drop(opened);
    server.received().await;
}
