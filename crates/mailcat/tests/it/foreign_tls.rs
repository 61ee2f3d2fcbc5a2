//! Foreign servers that need TLS on mailcat's side, played by a scripted server over implicit
//! TLS (a test CA given with `--ca-file`): CRAM-MD5-only servers (nodemailer's smtp-server
//! configured so, old Courier and Cyrus set-ups), servers that offer no login method mailcat
//! can use, and what mailcat sends after a refused login (LOGOUT/QUIT, then TLS close_notify).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use mailcat_tests::tls_line_server::{LineConn, TlsLineServer};

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

fn mailcat<T>(server: &TlsLineServer<T>, args: &[&str], url: &str) -> Command {
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
        .arg(server.ca_file())
        .env("MAILCAT_PASSWORD", PASSWORD)
        .env_remove("XDG_CONFIG_HOME");
    if url.starts_with("smtp") {
        command.args(["--outgoing", url]);
    } else {
        command.args(["--incoming", url]);
    }
    command
}

fn send<T>(server: &TlsLineServer<T>) -> Output {
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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Greeting and EHLO with these extension lines (after the first EHLO line).
fn smtp_opening(conn: &mut LineConn, extensions: &[&str]) {
    conn.send("220 localhost ESMTP scripted\r\n");
    conn.expect("EHLO ");
    let mut reply = String::from("250-localhost\r\n");
    for ext in extensions {
        reply.push_str(&format!("250-{ext}\r\n"));
    }
    reply.push_str("250 8BITMIME\r\n");
    conn.send(&reply);
}

#[test]
fn smtp_cram_md5_only_server_takes_the_message() {
    let server = TlsLineServer::start(|conn| {
        smtp_opening(conn, &["AUTH CRAM-MD5"]);
        conn.expect("AUTH CRAM-MD5");
        conn.send(&format!("334 {}\r\n", b64(CHALLENGE)));
        let answer = conn.line().unwrap();
        if answer != b64(RESPONSE) {
            conn.send("535 5.7.8 wrong\r\n");
            return conn.received.clone();
        }
        conn.send("235 2.7.0 Authentication successful\r\n");
        conn.expect("MAIL FROM:<tim@example.test>");
        conn.send("250 2.1.0 ok\r\n");
        conn.expect("RCPT TO:<bob@example.test>");
        conn.send("250 2.1.5 ok\r\n");
        conn.expect("DATA");
        conn.send("354 go on\r\n");
        while conn.line().is_some_and(|l| l != ".") {}
        conn.send("250 2.0.0 queued\r\n");
        conn.expect("QUIT");
        conn.send("221 bye\r\n");
        conn.received.clone()
    });
    let output = send(&server);
    let received = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(received.contains(&b64(RESPONSE)), "{received:?}");
}

#[test]
fn imap_cram_md5_only_server_lets_mailcat_in() {
    let server = TlsLineServer::start(|conn| {
        conn.send("* OK [CAPABILITY IMAP4rev1 AUTH=CRAM-MD5] scripted\r\n");
        loop {
            let Some(line) = conn.line() else {
                return false;
            };
            let (tag, command) = line.split_once(' ').unwrap();
            match command.to_ascii_uppercase().as_str() {
                "AUTHENTICATE CRAM-MD5" => {
                    conn.send(&format!("+ {}\r\n", b64(CHALLENGE)));
                    let answer = conn.line().unwrap();
                    if answer != b64(RESPONSE) {
                        conn.send(&format!("{tag} NO [AUTHENTICATIONFAILED] wrong\r\n"));
                        return false;
                    }
                    conn.send(&format!("{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n"));
                }
                c if c.starts_with("LIST") => {
                    conn.send("* LIST () \"/\" INBOX\r\n");
                    conn.send(&format!("{tag} OK done\r\n"));
                }
                "LOGOUT" => {
                    conn.send(&format!("* BYE bye\r\n{tag} OK done\r\n"));
                    return true;
                }
                _ => conn.send(&format!("{tag} OK done\r\n")),
            }
        }
    });
    let url = format!("imaps://localhost:{}", server.port());
    let output = mailcat(&server, &["mailboxes"], &url).output().unwrap();
    let logged_out = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("INBOX"));
    assert!(logged_out);
}

#[test]
fn pop3_cram_md5_only_server_lets_mailcat_in() {
    let server = TlsLineServer::start(|conn| {
        conn.send("+OK scripted\r\n");
        conn.expect("CAPA");
        conn.send("+OK\r\nSASL CRAM-MD5\r\nUIDL\r\n.\r\n");
        conn.expect("AUTH CRAM-MD5");
        conn.send(&format!("+ {}\r\n", b64(CHALLENGE)));
        if conn.line().unwrap() != b64(RESPONSE) {
            conn.send("-ERR [AUTH] wrong\r\n");
            return false;
        }
        conn.send("+OK logged in\r\n");
        loop {
            match conn.line().as_deref() {
                Some("CAPA") => conn.send("+OK\r\nUIDL\r\n.\r\n"),
                Some("STAT") => conn.send("+OK 0 0\r\n"),
                Some("UIDL") | Some("LIST") => conn.send("+OK\r\n.\r\n"),
                Some("QUIT") => {
                    conn.send("+OK bye\r\n");
                    return true;
                }
                _ => return false,
            }
        }
    });
    let url = format!("pop3s://localhost:{}", server.port());
    let output = mailcat(&server, &["list"], &url).output().unwrap();
    let quit = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(quit);
}

#[test]
fn no_usable_mechanism_is_said_so_and_is_not_a_wrong_password() {
    let server = TlsLineServer::start(|conn| {
        smtp_opening(conn, &["AUTH GSSAPI NTLM"]);
        conn.line()
    });
    let output = send(&server);
    let next = server.finish();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{text}");
    assert!(
        text.contains("offers no way to log in with a password"),
        "{text}"
    );
    assert!(text.contains("GSSAPI, NTLM"), "{text}");
    // Nothing was tried: the next line is QUIT, not AUTH.
    assert_eq!(next.as_deref(), Some("QUIT"));
}

#[test]
fn smtp_server_without_auth_over_tls_is_named_plainly() {
    // aiosmtpd on implicit TLS without an authenticator: no AUTH in EHLO at all.
    let server = TlsLineServer::start(|conn| {
        smtp_opening(conn, &["SIZE 33554432"]);
        conn.line()
    });
    let output = send(&server);
    server.finish();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{text}");
    assert!(text.contains("announces no AUTH at all"), "{text}");
    assert!(
        !text.contains("LOGINDISABLED") && !text.contains("STARTTLS"),
        "{text}"
    );
}

#[test]
fn pop3_server_without_a_login_method_over_tls_is_not_blamed_on_starttls() {
    let server = TlsLineServer::start(|conn| {
        conn.send("+OK scripted\r\n");
        conn.expect("CAPA");
        conn.send("+OK\r\nUIDL\r\nTOP\r\n.\r\n");
        conn.line()
    });
    let url = format!("pop3s://localhost:{}", server.port());
    let output = mailcat(&server, &["list"], &url).output().unwrap();
    server.finish();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{text}");
    assert!(text.contains("no login method even over TLS"), "{text}");
    assert!(
        !text.contains("LOGINDISABLED") && !text.contains("STARTTLS"),
        "{text}"
    );
}

// ---- a refused login ends in LOGOUT/QUIT and TLS close_notify, not a dropped connection ----

#[test]
fn smtp_refused_login_says_quit_and_closes_tls_cleanly() {
    let server = TlsLineServer::start(|conn| {
        smtp_opening(conn, &["AUTH PLAIN LOGIN"]);
        conn.expect("AUTH PLAIN ");
        conn.send("535 5.7.8 Error: authentication failed\r\n");
        conn.expect("QUIT");
        conn.send("221 2.0.0 Bye\r\n");
        conn.closed_cleanly()
    });
    let output = send(&server);
    let clean = server.finish();
    assert_eq!(output.status.code(), Some(77), "{}", stderr(&output));
    assert!(clean, "no TLS close_notify after QUIT");
}

#[test]
fn imap_refused_login_says_logout_and_closes_tls_cleanly() {
    let server = TlsLineServer::start(|conn| {
        conn.send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] scripted\r\n");
        while let Some(line) = conn.line() {
            let (tag, command) = line.split_once(' ').unwrap();
            if command.starts_with("AUTHENTICATE PLAIN") {
                conn.send(&format!(
                    "{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
                ));
            } else if command == "LOGOUT" {
                conn.send(&format!(
                    "* BYE Logging out\r\n{tag} OK Logout completed.\r\n"
                ));
                return conn.closed_cleanly();
            } else if command == "CAPABILITY" {
                conn.send(&format!(
                    "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n{tag} OK done\r\n"
                ));
            } else {
                panic!("unexpected {line}");
            }
        }
        false
    });
    let url = format!("imaps://localhost:{}", server.port());
    let output = mailcat(&server, &["mailboxes"], &url).output().unwrap();
    let clean = server.finish();
    assert_eq!(output.status.code(), Some(77), "{}", stderr(&output));
    assert!(clean, "no TLS close_notify after LOGOUT");
}

#[test]
fn pop3_refused_login_says_quit_and_closes_tls_cleanly() {
    let server = TlsLineServer::start(|conn| {
        conn.send("+OK scripted\r\n");
        conn.expect("CAPA");
        conn.send("+OK\r\nSASL PLAIN\r\nUSER\r\nUIDL\r\n.\r\n");
        conn.expect("AUTH PLAIN");
        conn.send("-ERR [AUTH] Authentication failed.\r\n");
        conn.expect("QUIT");
        conn.send("+OK Logging out\r\n");
        conn.closed_cleanly()
    });
    let url = format!("pop3s://localhost:{}", server.port());
    let output = mailcat(&server, &["list"], &url).output().unwrap();
    let clean = server.finish();
    assert_eq!(output.status.code(), Some(77), "{}", stderr(&output));
    assert!(clean, "no TLS close_notify after QUIT");
}

/// A server whose greeting (over implicit TLS) carries an `[ALERT]`, then answers a login and
/// an empty INBOX.
fn greeting_alert_server() -> TlsLineServer<()> {
    TlsLineServer::start(|conn| {
        conn.send("* OK [ALERT] Maintenance tonight at 22:00\x1b[2J\r\n");
        while let Some(line) = conn.line() {
            let (tag, command) = line.split_once(' ').unwrap();
            if command == "LOGOUT" {
                conn.send(&format!(
                    "* BYE Logging out\r\n{tag} OK Logout completed.\r\n"
                ));
                return;
            } else if command.starts_with("SELECT") || command.starts_with("EXAMINE") {
                conn.send(&format!(
                    "* 0 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 1] n\r\n{tag} OK [READ-WRITE] done\r\n"
                ));
            } else if command.starts_with("UID SEARCH") {
                conn.send(&format!("* SEARCH\r\n{tag} OK done\r\n"));
            } else {
                conn.send(&format!(
                    "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n{tag} OK done\r\n"
                ));
            }
        }
    })
}

#[test]
fn an_alert_in_the_greeting_over_tls_is_shown_by_check_and_list() {
    for command in ["check", "list"] {
        let server = greeting_alert_server();
        let url = format!("imaps://localhost:{}", server.port());
        let output = mailcat(&server, &[command], &url).output().unwrap();
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
    let server = TlsLineServer::start(|conn| {
        conn.send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] scripted\r\n");
        while let Some(line) = conn.line() {
            let (tag, command) = line.split_once(' ').unwrap();
            if command.starts_with("AUTHENTICATE PLAIN") {
                conn.send("* OK [ALERT] Your password expires in 3 days\x07\r\n");
                conn.send(&format!("{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n"));
            } else if command == "LOGOUT" {
                conn.send(&format!(
                    "* BYE Logging out\r\n{tag} OK Logout completed.\r\n"
                ));
                return;
            } else {
                conn.send(&format!(
                    "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n{tag} OK done\r\n"
                ));
            }
        }
    });
    let url = format!("imaps://localhost:{}", server.port());
    let output = mailcat(&server, &["check"], &url).output().unwrap();
    server.finish();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("mailcat: server alert: Your password expires in 3 days\\x07"),
        "{text}"
    );
}
