//! `mailcat send` against a scripted SMTP server on the loopback (plain TCP, with
//! `--allow-plaintext`): what the lab's Postfix cannot show. Postfix removes Bcc headers itself,
//! so only the bytes mailcat sends prove that mailcat removes them; a server that answers 4xx
//! shows exit 75; the MAIL FROM line shows SIZE and BODY=8BITMIME announced for a piped message.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::thread;

use mailcat_tests::script::{send as say, serve_each, serve_tcp_blocking, Answer, BlockingServer};

/// What the server saw: every command line and the DATA bytes (without the final `.`).
#[derive(Debug, Default)]
struct Seen {
    commands: Vec<String>,
    data: Vec<u8>,
}

/// The EHLO reply of [`server`]: AUTH PLAIN, SIZE and 8BITMIME.
const EHLO: &str = "250-scripted\r\n250-AUTH PLAIN\r\n250-SIZE 10000000\r\n250 8BITMIME\r\n";

/// A one-connection SMTP server that offers AUTH PLAIN, SIZE and 8BITMIME, accepts any login,
/// and answers each RCPT TO with `rcpt_reply(address)`.
fn server(rcpt_reply: fn(&str) -> &'static str) -> (u16, BlockingServer) {
    server_with(EHLO, rcpt_reply)
}

/// [`server`] with another EHLO reply.
fn server_with(ehlo: &'static str, rcpt_reply: fn(&str) -> &'static str) -> (u16, BlockingServer) {
    let server = serve_tcp_blocking(vec![
        say("220 scripted ESMTP\r\n"),
        serve_each(move || {
            let mut in_data = false;
            move |line: &str| {
                if in_data {
                    // The body, line by line, until the terminator.
                    if line != "." {
                        return Answer::reply("");
                    }
                    in_data = false;
                    return Answer::reply("250 2.0.0 queued as SCRIPTED\r\n");
                }
                let verb = line
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                Answer::reply(match verb.as_str() {
                    "EHLO" => ehlo,
                    "AUTH" => "235 2.7.0 ok\r\n",
                    "MAIL" | "RSET" | "NOOP" => "250 2.0.0 ok\r\n",
                    "RCPT" => rcpt_reply(
                        line.split_once('<')
                            .and_then(|(_, rest)| rest.split_once('>'))
                            .map_or("", |(address, _)| address),
                    ),
                    "DATA" => {
                        in_data = true;
                        "354 go ahead\r\n"
                    }
                    "QUIT" => return Answer::last("221 2.0.0 bye\r\n"),
                    _ => "502 5.5.2 what?\r\n",
                })
            }
        }),
    ]);
    (server.port, server)
}

/// What `server` saw, once the session is over (a failed expectation fails the test here, with
/// the transcript): the command lines, and the bytes between DATA and its `.` line.
fn finish(server: BlockingServer) -> Seen {
    let received = server.finish();
    let mut seen = Seen::default();
    let mut in_data = false;
    for line in received.bytes.split_inclusive(|&b| b == b'\n') {
        if in_data {
            if line == b".\r\n" {
                in_data = false;
            } else {
                seen.data.extend_from_slice(line);
            }
        } else {
            let command = String::from_utf8_lossy(line).trim_end().to_owned();
            in_data = command == "DATA";
            seen.commands.push(command);
        }
    }
    seen
}

fn accept_all(_: &str) -> &'static str {
    "250 2.1.5 ok\r\n"
}

/// `mailcat send --allow-plaintext` to the scripted server, `message` piped to stdin.
fn send(port: u16, args: &[&str], message: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args([
            "send",
            "--allow-plaintext",
            "--email",
            "alice@example.test",
            "--outgoing",
            &format!("smtp://127.0.0.1:{port}"),
        ])
        .args(args)
        .env("MAILCAT_PASSWORD", "pw")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailcat runs");
    let mut stdin = child.stdin.take().expect("piped");
    let message = message.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&message);
    });
    let output = child.wait_with_output().expect("mailcat ends");
    writer.join().expect("writer");
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bcc_and_resent_bcc_never_reach_the_server_and_the_rest_is_byte_exact() {
    let (port, server) = server(accept_all);
    let message = "From: alice@example.test\r\nTo: a@example.test\r\n\
                   BCC: hidden1@example.test,\r\n\thidden2@example.test\r\n\
                   Subject: s\r\nResent-Bcc: hidden3@example.test\r\nX-Bcc-Note: kept\r\n\
                   Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <m@example.test>\r\n\
                   \r\nBcc: in the body, kept\r\n";
    let output = send(port, &["a@example.test"], message.as_bytes());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen = finish(server);
    let rcpts: Vec<_> = seen
        .commands
        .iter()
        .filter(|c| c.starts_with("RCPT"))
        .collect();
    assert_eq!(rcpts, ["RCPT TO:<a@example.test>"]);
    let data = String::from_utf8(seen.data).expect("UTF-8");
    assert_eq!(
        data,
        "From: alice@example.test\r\nTo: a@example.test\r\nSubject: s\r\n\
         X-Bcc-Note: kept\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\
         Message-ID: <m@example.test>\r\n\r\nBcc: in the body, kept\r\n"
    );
}

#[test]
fn a_piped_message_announces_its_size_and_8bit_body() {
    let (port, server) = server(accept_all);
    let body = "Grüße\n".repeat(10_000);
    let message = format!(
        "From: alice@example.test\nTo: a@example.test\nSubject: s\n\
         Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <m@example.test>\n\n{body}"
    );
    let output = send(port, &["a@example.test"], message.as_bytes());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen = finish(server);
    // As sent: every LF a CRLF.
    let size = message.len() + message.matches('\n').count();
    let mail = seen
        .commands
        .iter()
        .find(|c| c.starts_with("MAIL FROM:"))
        .expect("MAIL FROM");
    assert!(mail.starts_with("MAIL FROM:<alice@example.test>"), "{mail}");
    assert!(mail.contains(&format!("SIZE={size}")), "{mail}");
    assert!(mail.contains("BODY=8BITMIME"), "{mail}");
    assert_eq!(seen.data.len(), size);
}

#[test]
fn a_temporary_refusal_is_exit_75_and_nothing_is_sent() {
    fn busy(address: &str) -> &'static str {
        if address.starts_with("busy") {
            "450 4.2.1 mailbox busy, try later\r\n"
        } else {
            "250 2.1.5 ok\r\n"
        }
    }
    let (port, server) = server(busy);
    let message = "Subject: s\n\nx\n";
    let output = send(
        port,
        &["ok@example.test", "busy@example.test"],
        message.as_bytes(),
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(75), "{shown}");
    assert!(
        shown.contains("<busy@example.test>: refused: 450"),
        "{shown}"
    );
    assert!(shown.contains("try again later"), "{shown}");
    let seen = finish(server);
    assert!(
        !seen.commands.iter().any(|c| c == "DATA"),
        "{:?}",
        seen.commands
    );
    assert!(seen.data.is_empty());
}

#[test]
fn a_successful_send_is_silent_and_v_shows_each_recipient_and_the_reply() {
    let message =
        "Subject: s\nDate: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <m@example.test>\n\nx\n";
    let (port, quiet) = server(accept_all);
    let output = send(port, &["a@example.test"], message.as_bytes());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // As sendmail and msmtp: nothing to say when all went well (cron mails any output).
    // (But for the warning that --allow-plaintext, which this scripted server needs, always gives.)
    let said: Vec<String> = stderr(&output)
        .lines()
        .filter(|line| !line.starts_with("mailcat: WARNING: --allow-plaintext"))
        .map(str::to_owned)
        .collect();
    assert!(said.is_empty(), "{said:?}");
    assert!(output.stdout.is_empty());
    finish(quiet);

    let (port, server) = server(accept_all);
    let output = send(port, &["-v", "a@example.test"], message.as_bytes());
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("<a@example.test>: accepted"), "{shown}");
    assert!(
        shown.contains("sent: 250 2.0.0 queued as SCRIPTED"),
        "{shown}"
    );
    finish(server);
}

fn mail_from(seen: &Seen) -> &str {
    seen.commands
        .iter()
        .find(|c| c.starts_with("MAIL FROM:"))
        .expect("MAIL FROM")
}

#[test]
fn v_envid_goes_to_a_server_with_dsn_xtext_encoded_and_is_not_the_version() {
    const DSN: &str = "250-scripted\r\n250-AUTH PLAIN\r\n250-DSN\r\n250 8BITMIME\r\n";
    let message = "Subject: s\n\nx\n";
    let (port, with_dsn) = server_with(DSN, accept_all);
    // sendmail's -V: the envelope id that delivery status notifications quote.
    let output = send(
        port,
        &["-V", "QQ314159+a=b", "a@example.test"],
        message.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "printed the version?");
    let seen = finish(with_dsn);
    let mail = mail_from(&seen);
    assert!(mail.ends_with(" ENVID=QQ314159+2Ba+3Db"), "{mail}");
    assert!(!seen.data.is_empty(), "the message was sent");

    // Without DSN on the server the message goes without the id (as sendmail does); -v says so.
    let (port, server) = server(accept_all);
    let output = send(
        port,
        &["-v", "-V", "QQ314159", "a@example.test"],
        message.as_bytes(),
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("does not offer DSN"), "{shown}");
    let seen = finish(server);
    assert!(!mail_from(&seen).contains("ENVID"), "{}", mail_from(&seen));
    assert!(!seen.data.is_empty(), "the message was sent");
}

#[test]
fn refused_recipients_are_counted_in_words_and_partial_sending_is_offered_only_with_others() {
    fn refuse(_: &str) -> &'static str {
        "550 5.1.1 no such user\r\n"
    }
    fn refuse_nobody(address: &str) -> &'static str {
        if address.starts_with("nobody") {
            "550 5.1.1 no such user\r\n"
        } else {
            "250 2.1.5 ok\r\n"
        }
    }
    struct Case {
        name: &'static str,
        rcpt_reply: fn(&str) -> &'static str,
        to: &'static [&'static str],
        says: &'static [&'static str],
        never: &'static [&'static str],
    }
    let cases = [
        // No plural for one recipient; with nobody accepted, sending to "the others" is no way
        // out.
        Case {
            name: "the only recipient refused",
            rcpt_reply: refuse,
            to: &["nobody@example.test"],
            says: &["refused the only recipient"],
            never: &["1 of 1", "others", "--allow-partial"],
        },
        Case {
            name: "both recipients refused",
            rcpt_reply: refuse,
            to: &["a@example.test", "b@example.test"],
            says: &["refused both recipients"],
            never: &["others", "--allow-partial"],
        },
        Case {
            name: "one of two refused",
            rcpt_reply: refuse_nobody,
            to: &["ok@example.test", "nobody@example.test"],
            says: &[
                "refused 1 of 2 recipients",
                "--allow-partial to reach the other one",
            ],
            never: &[],
        },
    ];
    for case in cases {
        let name = case.name;
        let (port, server) = server(case.rcpt_reply);
        let output = send(port, case.to, b"Subject: s\n\nx\n");
        let seen = finish(server);
        let shown = stderr(&output);
        assert_eq!(output.status.code(), Some(69), "{name}: {shown}");
        for text in case.says {
            assert!(shown.contains(text), "{name}: no {text:?} in\n{shown}");
        }
        for text in case.never {
            assert!(!shown.contains(text), "{name}: {text:?} in\n{shown}");
        }
        assert!(seen.data.is_empty(), "{name}: {seen:?}");
    }
}

#[test]
fn save_copy_usage_errors_come_before_anything_is_sent() {
    // No server listens: a usage error (64) is told before any connection (69 or 75).
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let message = b"Subject: x\r\n\r\nbody\r\n";
    let output = send(port, &["--save-copy", "bob@example.test"], message);
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{shown}");
    assert!(
        shown.contains("the account has no incoming server"),
        "{shown}"
    );
    assert!(shown.contains("--incoming imaps://"), "{shown}");
    let output = send(
        port,
        &[
            "--incoming",
            "imap://127.0.0.1:1",
            "--save-copy=",
            "bob@example.test",
        ],
        message,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{shown}");
    assert!(shown.contains("--save-copy=: "), "{shown}");
}

#[test]
fn a_copy_that_cannot_be_saved_leaves_the_send_a_success_with_a_warning() {
    let (port, server) = server(accept_all);
    // Nothing listens on the incoming port: the copy fails after the message went out.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let imap = format!(
        "imap://127.0.0.1:{}",
        closed.local_addr().expect("address").port()
    );
    drop(closed);
    let output = send(
        port,
        &["--incoming", &imap, "-q", "--save-copy", "bob@example.test"],
        b"Subject: x\r\n\r\nbody\r\n",
    );
    let seen = finish(server);
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(seen.data.ends_with(b"body\r\n"), "{seen:?}");
    // Even with -q: the copy the user asked for is not there.
    let warning = shown
        .lines()
        .filter(|l| !l.contains("--allow-plaintext"))
        .collect::<Vec<_>>();
    assert_eq!(warning.len(), 1, "{shown}");
    assert!(
        warning[0].starts_with("mailcat send: sent, but the copy could not be saved to Sent: "),
        "{shown}"
    );
}
