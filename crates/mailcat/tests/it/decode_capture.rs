//! `--capture FILE`: a scripted POP3 session is captured to FILE.pop3 (mode 0600), byte for byte
//! but for the password the server echoes, and replays through `mailcat decode pop3`.

use crate::support::plaintext_mailcat;

use std::io::Write;
use std::process::{Command, Stdio};

use mailcat_tests::script::{send, serve, serve_tcp_each_blocking, Answer};

const PASSWORD: &str = "s3cret-pass";

/// What the server sends in answer to each command, the greeting first.
fn reply(command: &str) -> &'static [u8] {
    match command {
        "" => b"+OK scripted POP3 <1.2@example.test>\r\n",
        "CAPA" => b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n",
        "USER" => b"+OK\r\n",
        // Some servers put the command in their text: the capture must not keep the password.
        "PASS" => b"+OK welcome, PASS s3cret-pass accepted\r\n",
        "STAT" => b"+OK 1 38\r\n",
        "UIDL" => b"+OK\r\n1 first\r\n.\r\n",
        "LIST" => b"+OK\r\n1 38\r\n.\r\n",
        "TOP" => b"+OK\r\nSubject: scripted\r\n\r\n.\r\n",
        "QUIT" => b"+OK bye\r\n",
        _ => b"-ERR not here\r\n",
    }
}

/// The command's verb in `line`, in capitals.
fn verb(line: &str) -> String {
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

#[test]
fn a_captured_session_replays_through_decode() {
    let (port, seen) = serve_tcp_each_blocking(vec![
        send(reply("")),
        serve(|line| match verb(line).as_str() {
            "QUIT" => Answer::last(reply("QUIT")),
            verb => Answer::reply(reply(verb)),
        }),
    ]);
    let dir = std::env::temp_dir().join(format!("mailcat-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let base = dir.join("session");
    let run = plaintext_mailcat(&format!("pop3://127.0.0.1:{port}"), PASSWORD)
        .arg("--capture")
        .arg(&base)
        .arg("list")
        .output()
        .expect("mailcat runs");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let path = dir.join("session.pop3");
    let captured = std::fs::read(&path).expect("the capture is written to FILE.pop3");
    assert!(!dir.join("session").exists() && !dir.join("session.smtp").exists());

    // Exactly what the server sent, in order, the echoed password replaced.
    let mut sent = reply("").to_vec();
    for line in seen.lock().expect("log").iter() {
        sent.extend_from_slice(reply(&verb(line)));
    }
    let sent = String::from_utf8(sent).expect("ASCII");
    // The whole PASS command is the secret write: it is what the server echoed here.
    let expected = sent.replace(&format!("PASS {PASSWORD}"), "<mailcat: secret redacted>");
    assert_ne!(sent, expected, "the script echoes the password");
    assert_eq!(String::from_utf8_lossy(&captured), expected);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The replay decodes, one JSON object per reply.
    let mut decode = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(["decode", "pop3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailcat decode runs");
    decode
        .stdin
        .take()
        .expect("stdin")
        .write_all(&captured)
        .expect("write");
    let output = decode.wait_with_output().expect("decode ends");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replies = 1 + seen.lock().expect("log").len();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        replies
    );
    let _ = std::fs::remove_dir_all(&dir);
}
