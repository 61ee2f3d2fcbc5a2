//! `-v` never shows a secret, nor its length: not after a literal either (a non-ASCII login
//! goes out as a literal, and the password follows it on the continuation line).

use std::process::Command;

use mailcat_tests::script::{send, serve_each, serve_tcp_blocking, Answer, BlockingServer};

const PASSWORD: &str = "s3cret-Pw.42";

/// One IMAP connection: greeting, CAPABILITY, then a LOGIN whose login is a literal; the
/// login is refused, so mailcat ends at once.
fn server() -> BlockingServer {
    serve_tcp_blocking(vec![
        send("* OK ready\r\n"),
        serve_each(|| {
            // The tag of a LOGIN whose literals are still coming: each literal arrives with the
            // rest of the command after it, as the next line.
            let mut login: Option<String> = None;
            move |line: &str| {
                let (tag, in_login) = match login.take() {
                    Some(tag) => (tag, true),
                    None => (line.split(' ').next().unwrap_or_default().to_owned(), false),
                };
                if in_login || line.contains("LOGIN") {
                    if literal_size(line).is_some() {
                        login = Some(tag);
                        Answer::reply("+ go on\r\n")
                    } else {
                        Answer::reply(format!("{tag} NO [AUTHENTICATIONFAILED] no\r\n"))
                    }
                } else if line.contains("CAPABILITY") {
                    Answer::reply(format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n"))
                } else if line.contains("LOGOUT") {
                    Answer::last(format!("* BYE bye\r\n{tag} OK bye\r\n"))
                } else {
                    panic!("unexpected: {line:?}")
                }
            }
        }),
    ])
}

/// The size of the synchronising literal a command line ends with, if it does.
fn literal_size(line: &str) -> Option<usize> {
    line.trim_end()
        .strip_suffix('}')?
        .rsplit('{')
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_password_after_a_login_literal_is_not_in_the_trace() {
    let cases = [
        (
            "an ASCII password, in clear after the login literal",
            PASSWORD,
        ),
        ("a non-ASCII password, a literal of its own", "pässwörd-42"),
    ];
    for (name, password) in cases {
        let server = server();
        let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
            .args(["-v", "list", "--allow-plaintext"])
            .args(["--email", "jörg@example.test", "--user", "jörg"])
            .args(["--incoming", &format!("imap://127.0.0.1:{}", server.port)])
            .env("MAILCAT_PASSWORD", password)
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .expect("mailcat runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let seen = server.finish().text();
        // The scenario happened: the password went out after the login literal.
        assert!(seen.contains(password), "{name}: {seen}");
        assert!(
            !stderr.contains(password),
            "{name}: the password is in the trace:\n{stderr}"
        );
        assert!(
            !stderr.contains(&format!("{{{}", password.len())),
            "{name}: the password's length is in the trace:\n{stderr}"
        );
        assert!(stderr.contains("C: <redacted>"), "{name}: {stderr}");
    }
}
