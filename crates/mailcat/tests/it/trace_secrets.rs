//! `-v` never shows a secret, nor its length: not after a literal either (a non-ASCII login
//! goes out as a literal, and the password follows it on the continuation line).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::Duration;

const PASSWORD: &str = "s3cret-Pw.42";

/// One IMAP connection: greeting, CAPABILITY, then a LOGIN whose login is a literal; the
/// login is refused, so mailcat ends at once.
fn server() -> (u16, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("mailcat connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(b"* OK ready\r\n").expect("greeting");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut seen = String::new();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            seen.push_str(&line);
            let tag = line.split(' ').next().unwrap_or_default().to_owned();
            if line.contains("CAPABILITY") {
                let reply = format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n");
                stream.write_all(reply.as_bytes()).expect("reply");
            } else if line.contains("LOGIN") {
                // Each literal (the login, maybe the password), then the rest of the command.
                let mut rest = line.clone();
                while let Some(size) = literal_size(&rest) {
                    stream.write_all(b"+ go on\r\n").expect("continuation");
                    let mut literal = vec![0; size];
                    reader.read_exact(&mut literal).expect("literal");
                    seen.push_str(&String::from_utf8_lossy(&literal));
                    rest.clear();
                    reader.read_line(&mut rest).expect("rest");
                    seen.push_str(&rest);
                }
                let reply = format!("{tag} NO [AUTHENTICATIONFAILED] no\r\n");
                stream.write_all(reply.as_bytes()).expect("reply");
            } else if line.contains("LOGOUT") {
                let reply = format!("* BYE bye\r\n{tag} OK bye\r\n");
                stream.write_all(reply.as_bytes()).expect("reply");
                break;
            }
            line.clear();
        }
        seen
    });
    (port, handle)
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
    // An ASCII password follows the login literal in clear; a non-ASCII one is a literal of its
    // own, announced by its length.
    for password in [PASSWORD, "pässwörd-42"] {
        trace_hides(password);
    }
}

fn trace_hides(password: &str) {
    let (port, server) = server();
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(["-v", "list", "--allow-plaintext"])
        .args(["--email", "jörg@example.test", "--user", "jörg"])
        .args(["--incoming", &format!("imap://127.0.0.1:{port}")])
        .env("MAILCAT_PASSWORD", password)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("mailcat runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seen = server.join().expect("server");
    // The scenario happened: the password went out after the login literal.
    assert!(seen.contains(password), "{seen}");
    assert!(
        !stderr.contains(password),
        "the password is in the trace:\n{stderr}"
    );
    assert!(
        !stderr.contains(&format!("{{{}", password.len())),
        "the password's length is in the trace:\n{stderr}"
    );
    assert!(stderr.contains("C: <redacted>"), "{stderr}");
}
