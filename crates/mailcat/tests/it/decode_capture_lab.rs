//! `--capture FILE` against the lab's Dovecot and Postfix: `check` logs in to IMAP (STARTTLS)
//! and SMTP submission (STARTTLS) and `list` to POP3 (STLS); every capture replays through
//! `mailcat decode`, and the password appears in none of them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mailcat_tests::lab::Lab;

fn mailcat(lab: &Lab, capture: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(["--email", &lab.tricky_user, "--ca-file"])
        .arg(&lab.ca_file)
        .arg("--capture")
        .arg(capture)
        .args(args)
        .env("MAILCAT_PASSWORD", &lab.tricky_password)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("mailcat runs")
}

/// Runs `mailcat decode protocol` on `input`: (exit code, JSON lines, stderr).
fn decode(protocol: &str, input: &[u8]) -> (Option<i32>, usize, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(["decode", protocol])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailcat decode runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("decode ends");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).lines().count(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn lab_sessions_are_captured_and_replay_through_decode() {
    let lab = Lab::from_env();
    let dir = std::env::temp_dir().join(format!("mailcat-capture-lab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let base = dir.join("run");
    let check = mailcat(
        &lab,
        &base,
        &[
            "check",
            "--incoming",
            &format!("imap://{}:{}", lab.tls_name, lab.imap_port),
            "--outgoing",
            &format!("smtp://{}:{}", lab.tls_name, lab.submission_port),
        ],
    );
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let list = mailcat(
        &lab,
        &base,
        &[
            "list",
            "--incoming",
            &format!("pop3://{}:{}", lab.tls_name, lab.pop3_port),
        ],
    );
    assert_eq!(
        list.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    for (protocol, at_least) in [("imap", 4), ("smtp", 4), ("pop3", 6)] {
        let path = dir.join(format!("run.{protocol}"));
        let captured = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let (code, replies, stderr) = decode(protocol, &captured);
        assert_eq!(code, Some(0), "{protocol}: {stderr}");
        assert!(replies >= at_least, "{protocol}: {replies} replies");
        let password = lab.tricky_password.as_bytes();
        assert!(
            !captured.windows(password.len()).any(|w| w == password),
            "{protocol}: the password is in the capture"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{protocol}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
