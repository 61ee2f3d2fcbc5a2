//! Foreign servers that need TLS on mailcat's side, played by a scripted server over implicit
//! TLS (a test CA given with `--ca-file`): CRAM-MD5-only servers (nodemailer's smtp-server
//! configured so, old Courier and Cyrus set-ups), servers that offer no login method mailcat
//! can use, and what mailcat sends after a refused login (LOGOUT/QUIT, then TLS close_notify).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use mailcat_tests::script::{
    expect, prefix, reply_to, send as say, serve, serve_each, serve_tcp_blocking, test_tls, Answer,
    BlockingServer, Received, Step,
};

/// RFC 2195's example: this user, password and challenge give this response.
const USER: &str = "tim";
const PASSWORD: &str = "tanstaaftanstaaf";
const CHALLENGE: &str = "<1896.697170952@postoffice.reston.mci.net>";
const RESPONSE: &str = "tim b913a602c7eda7a495b4e6e7334d3890";

fn b64(text: &str) -> String {
    // A tiny base64 encoder, so the test does not lean on the code it checks.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A scripted server for one connection over implicit TLS, with a certificate from a fresh
/// test CA.
struct TlsServer {
    server: BlockingServer,
    ca_file: PathBuf,
}

impl TlsServer {
    /// Plays `script` after the TLS handshake.
    fn start(script: Vec<Step>) -> Self {
        let (config, ca_file) = test_tls();
        let mut steps = vec![Step::StartTls(config)];
        steps.extend(script);
        Self {
            server: serve_tcp_blocking(steps),
            ca_file,
        }
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    /// What the client sent; a failed expectation fails the test here, with the transcript.
    fn finish(self) -> Received {
        let _ = std::fs::remove_file(&self.ca_file);
        self.server.finish()
    }
}

fn mailcat(server: &TlsServer, args: &[&str], url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailcat"));
    command
        .args(args)
        .args([
            "--email",
            "tim@example.test",
            "--user",
            USER,
            "--timeout",
            "5",
        ])
        .arg("--ca-file")
        .arg(&server.ca_file)
        .env("MAILCAT_PASSWORD", PASSWORD)
        .env_remove("XDG_CONFIG_HOME");
    if url.starts_with("smtp") {
        command.args(["--outgoing", url]);
    } else {
        command.args(["--incoming", url]);
    }
    command
}

/// Runs `mailcat send` with a message to `server` (SMTP).
fn send(server: &TlsServer) -> Output {
    let url = format!("smtps://localhost:{}", server.port());
    let mut child = mailcat(server, &["send", "bob@example.test"], &url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(
        b"From: tim@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nhello\r\n",
    );
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Runs `mailcat <command>` against `server` (`scheme`: `imaps` or `pop3s`).
fn incoming(server: &TlsServer, scheme: &str, command: &str) -> Output {
    let url = format!("{scheme}://localhost:{}", server.port());
    mailcat(server, &[command], &url).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The SMTP greeting and EHLO, answered with these extension lines (after the first EHLO
/// line), then `rest`.
fn smtp(extensions: &[&str], rest: Vec<Step>) -> Vec<Step> {
    let mut reply = String::from("250-localhost\r\n");
    for ext in extensions {
        reply.push_str(&format!("250-{ext}\r\n"));
    }
    reply.push_str("250 8BITMIME\r\n");
    let mut steps = vec![
        say("220 localhost ESMTP scripted\r\n"),
        prefix("EHLO ", reply),
    ];
    steps.extend(rest);
    steps
}

/// The tag and the command of an IMAP command line.
fn tagged(line: &str) -> (&str, &str) {
    line.split_once(' ').unwrap()
}

#[test]
fn smtp_cram_md5_only_server_takes_the_message() {
    let server = TlsServer::start(smtp(
        &["AUTH CRAM-MD5"],
        vec![
            prefix("AUTH CRAM-MD5", format!("334 {}\r\n", b64(CHALLENGE))),
            reply_to(&b64(RESPONSE), "235 2.7.0 Authentication successful\r\n"),
            prefix("MAIL FROM:<tim@example.test>", "250 2.1.0 ok\r\n"),
            prefix("RCPT TO:<bob@example.test>", "250 2.1.5 ok\r\n"),
            prefix("DATA", "354 go on\r\n"),
            Step::DataWith(|_| {}),
            say("250 2.0.0 queued\r\n"),
            prefix("QUIT", "221 bye\r\n"),
        ],
    ));
    let output = send(&server);
    let received = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(received.lines().contains(&b64(RESPONSE)), "{received:?}");
}

#[test]
fn imap_cram_md5_only_server_lets_mailcat_in() {
    let server = TlsServer::start(vec![
        say("* OK [CAPABILITY IMAP4rev1 AUTH=CRAM-MD5] scripted\r\n"),
        serve_each(|| {
            // The tag of the AUTHENTICATE whose answer to the challenge is next.
            let mut authenticating: Option<String> = None;
            move |line: &str| {
                if let Some(tag) = authenticating.take() {
                    assert_eq!(line, b64(RESPONSE), "the CRAM-MD5 response");
                    return Answer::reply(format!("{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n"));
                }
                let (tag, command) = tagged(line);
                match command.to_ascii_uppercase().as_str() {
                    "AUTHENTICATE CRAM-MD5" => {
                        authenticating = Some(tag.to_owned());
                        Answer::reply(format!("+ {}\r\n", b64(CHALLENGE)))
                    }
                    c if c.starts_with("LIST") => {
                        Answer::reply(format!("* LIST () \"/\" INBOX\r\n{tag} OK done\r\n"))
                    }
                    "LOGOUT" => Answer::last(format!("* BYE bye\r\n{tag} OK done\r\n")),
                    _ => Answer::reply(format!("{tag} OK done\r\n")),
                }
            }
        }),
    ]);
    let output = incoming(&server, "imaps", "mailboxes");
    let received = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("INBOX"));
    assert!(
        received.lines().iter().any(|l| l.ends_with(" LOGOUT")),
        "{}",
        received.transcript
    );
}

#[test]
fn pop3_cram_md5_only_server_lets_mailcat_in() {
    let server = TlsServer::start(vec![
        say("+OK scripted\r\n"),
        prefix("CAPA", "+OK\r\nSASL CRAM-MD5\r\nUIDL\r\n.\r\n"),
        prefix("AUTH CRAM-MD5", format!("+ {}\r\n", b64(CHALLENGE))),
        reply_to(&b64(RESPONSE), "+OK logged in\r\n"),
        serve(|line| match line {
            "CAPA" => Answer::reply("+OK\r\nUIDL\r\n.\r\n"),
            "STAT" => Answer::reply("+OK 0 0\r\n"),
            "UIDL" | "LIST" => Answer::reply("+OK\r\n.\r\n"),
            "QUIT" => Answer::last("+OK bye\r\n"),
            other => panic!("unexpected {other:?}"),
        }),
    ]);
    let output = incoming(&server, "pop3s", "list");
    let received = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(received.lines().last().map(String::as_str), Some("QUIT"));
}

#[test]
fn a_server_without_a_usable_login_method_over_tls_is_said_so_and_nothing_is_tried() {
    struct Case {
        name: &'static str,
        /// What the server offers, after the greeting.
        script: Vec<Step>,
        /// `mailcat list` against this scheme, or `mailcat send` (None).
        scheme: Option<&'static str>,
        says: &'static [&'static str],
        never: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "SMTP with mechanisms mailcat lacks",
            script: smtp(&["AUTH GSSAPI NTLM"], vec![]),
            scheme: None,
            says: &["offers no way to log in with a password", "GSSAPI, NTLM"],
            never: &[],
        },
        // aiosmtpd on implicit TLS without an authenticator: no AUTH in EHLO at all.
        Case {
            name: "SMTP without AUTH",
            script: smtp(&["SIZE 33554432"], vec![]),
            scheme: None,
            says: &["announces no AUTH at all"],
            never: &["LOGINDISABLED", "STARTTLS"],
        },
        Case {
            name: "POP3 without SASL or USER",
            script: vec![
                say("+OK scripted\r\n"),
                prefix("CAPA", "+OK\r\nUIDL\r\nTOP\r\n.\r\n"),
            ],
            scheme: Some("pop3s"),
            says: &["no login method even over TLS"],
            never: &["LOGINDISABLED", "STARTTLS"],
        },
    ];
    for case in cases {
        let name = case.name;
        // Nothing is tried: the next line ends the session, it is no login.
        let mut script = case.script;
        script.extend([expect("QUIT"), Step::Close]);
        let server = TlsServer::start(script);
        let output = match case.scheme {
            None => send(&server),
            Some(scheme) => incoming(&server, scheme, "list"),
        };
        server.finish();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(69), "{name}: {text}");
        for says in case.says {
            assert!(text.contains(says), "{name}: no {says:?} in {text}");
        }
        for never in case.never {
            assert!(!text.contains(never), "{name}: {never:?} in {text}");
        }
    }
}

// ---- a refused login ends in LOGOUT/QUIT and TLS close_notify, not a dropped connection ----

#[test]
fn a_refused_login_says_logout_or_quit_and_closes_tls_cleanly() {
    let cases = [
        (
            "SMTP",
            smtp(
                &["AUTH PLAIN LOGIN"],
                vec![
                    prefix("AUTH PLAIN ", "535 5.7.8 Error: authentication failed\r\n"),
                    prefix("QUIT", "221 2.0.0 Bye\r\n"),
                ],
            ),
            None,
        ),
        (
            "IMAP",
            vec![
                say("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] scripted\r\n"),
                serve(|line| {
                    let (tag, command) = tagged(line);
                    if command.starts_with("AUTHENTICATE PLAIN") {
                        Answer::reply(format!(
                            "{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
                        ))
                    } else if command == "LOGOUT" {
                        Answer::Next(
                            format!("* BYE Logging out\r\n{tag} OK Logout completed.\r\n")
                                .into_bytes(),
                        )
                    } else if command == "CAPABILITY" {
                        Answer::reply(format!(
                            "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n{tag} OK done\r\n"
                        ))
                    } else {
                        panic!("unexpected {line}")
                    }
                }),
            ],
            Some("imaps"),
        ),
        (
            "POP3",
            vec![
                say("+OK scripted\r\n"),
                prefix("CAPA", "+OK\r\nSASL PLAIN\r\nUSER\r\nUIDL\r\n.\r\n"),
                prefix("AUTH PLAIN", "-ERR [AUTH] Authentication failed.\r\n"),
                prefix("QUIT", "+OK Logging out\r\n"),
            ],
            Some("pop3s"),
        ),
    ];
    for (name, mut script, scheme) in cases {
        // After LOGOUT/QUIT, a TLS close_notify: a connection that just ends fails here.
        script.push(Step::Eof);
        let server = TlsServer::start(script);
        let output = match scheme {
            None => send(&server),
            Some("imaps") => incoming(&server, "imaps", "mailboxes"),
            Some(scheme) => incoming(&server, scheme, "list"),
        };
        let received = server.finish();
        assert_eq!(
            output.status.code(),
            Some(77),
            "{name}: {}",
            stderr(&output)
        );
        assert!(
            received.transcript.contains("-- client closed"),
            "{name}: {}",
            received.transcript
        );
    }
}

/// A server whose greeting (over implicit TLS) carries an `[ALERT]`, then answers a login and
/// an empty INBOX.
fn greeting_alert_server() -> TlsServer {
    TlsServer::start(vec![
        say("* OK [ALERT] Maintenance tonight at 22:00\x1b[2J\r\n"),
        serve(|line| {
            let (tag, command) = tagged(line);
            if command == "LOGOUT" {
                Answer::last(format!(
                    "* BYE Logging out\r\n{tag} OK Logout completed.\r\n"
                ))
            } else if command.starts_with("SELECT") || command.starts_with("EXAMINE") {
                Answer::reply(format!(
                    "* 0 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 1] n\r\n{tag} OK [READ-WRITE] done\r\n"
                ))
            } else if command.starts_with("UID SEARCH") {
                Answer::reply(format!("* SEARCH\r\n{tag} OK done\r\n"))
            } else {
                Answer::reply(format!(
                    "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n{tag} OK done\r\n"
                ))
            }
        }),
    ])
}

#[test]
fn an_alert_in_the_greeting_over_tls_is_shown_by_check_and_list() {
    for command in ["check", "list"] {
        let server = greeting_alert_server();
        let output = incoming(&server, "imaps", command);
        server.finish();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{command}: {text}");
        assert!(
            text.contains("mailcat: server alert: Maintenance tonight at 22:00\\x1b[2J"),
            "{command}: {text}"
        );
    }
}

#[test]
fn check_shows_an_alert_sent_with_the_login() {
    let server = TlsServer::start(vec![
        say("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] scripted\r\n"),
        serve(|line| {
            let (tag, command) = tagged(line);
            if command.starts_with("AUTHENTICATE PLAIN") {
                Answer::reply(format!(
                    "* OK [ALERT] Your password expires in 3 days\x07\r\n{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n"
                ))
            } else if command == "LOGOUT" {
                Answer::last(format!(
                    "* BYE Logging out\r\n{tag} OK Logout completed.\r\n"
                ))
            } else {
                Answer::reply(format!(
                    "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n{tag} OK done\r\n"
                ))
            }
        }),
    ]);
    let output = incoming(&server, "imaps", "check");
    server.finish();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("mailcat: server alert: Your password expires in 3 days\\x07"),
        "{text}"
    );
}
