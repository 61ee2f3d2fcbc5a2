//! The everyday commands against the lab, as a user runs them: check with login (and
//! --send-test), mailboxes, list, cat (byte for byte), watch, and their exit codes.
//! The user is the lab's `tricky`, whose password has quotes, a backslash and spaces.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use mailcat_tests::lab::Lab;

/// The tests share one mailbox: one at a time.
static MAILBOX: Mutex<()> = Mutex::new(());

fn mailcat(lab: &Lab, password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(args)
        .args([
            "--email",
            &lab.tricky_user,
            "--ca-file",
            lab.ca_file.to_str().expect("UTF-8"),
        ])
        .env("MAILCAT_PASSWORD", password)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("mailcat runs")
}

fn imaps(lab: &Lab) -> String {
    format!("imaps://{}:{}", lab.tls_name, lab.imaps_port)
}

fn pop3s(lab: &Lab) -> String {
    format!("pop3s://{}:{}", lab.tls_name, lab.pop3s_port)
}

fn submission(lab: &Lab) -> String {
    format!("smtp://{}:{}", lab.tls_name, lab.submission_port)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_logs_in_with_one_credential_and_send_test_sees_the_message_arrive() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::from_env();
    let output = mailcat(
        &lab,
        &lab.tricky_password,
        &[
            "check",
            "--send-test",
            "--incoming",
            &imaps(&lab),
            "--outgoing",
            &submission(&lab),
        ],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert_eq!(
        shown.matches("✓ login").count(),
        2,
        "both servers, one credential:\n{shown}"
    );
    assert!(shown.contains("✓ arrival"), "{shown}");
}

#[test]
fn a_wrong_password_is_exit_77_with_the_reason() {
    let lab = Lab::from_env();
    for url in [imaps(&lab), pop3s(&lab)] {
        let output = mailcat(&lab, "wrong password", &["check", "--incoming", &url]);
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(77), "{url}: {shown}");
        assert!(
            shown.contains("✗ login") && shown.contains("refused the login"),
            "{shown}"
        );
    }
    let output = mailcat(
        &lab,
        "wrong password",
        &["list", "--incoming", &imaps(&lab)],
    );
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
}

#[test]
fn mailboxes_lists_the_special_use_folders() {
    let lab = Lab::from_env();
    let output = mailcat(
        &lab,
        &lab.tricky_password,
        &["mailboxes", "--incoming", &imaps(&lab)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().any(|l| l == "INBOX"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "Sent\tSent"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "Deleted\tTrash"), "{stdout}");
    let json = mailcat(
        &lab,
        &lab.tricky_password,
        &["mailboxes", "--json", "--incoming", &imaps(&lab)],
    );
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert!(parsed
        .as_array()
        .expect("array")
        .iter()
        .any(|m| m["special_use"] == "Junk"));
}

#[test]
fn list_and_cat_agree_over_imap_and_pop3_and_cat_is_byte_exact() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::from_env();
    lab.seed(&lab.tricky_user, 3, 3000, true, false, 1);
    lab.seed(&lab.tricky_user, 1, 300_000, false, false, 100);
    for url in [imaps(&lab), pop3s(&lab)] {
        let output = mailcat(
            &lab,
            &lab.tricky_password,
            &["list", "--json", "--incoming", &url],
        );
        assert_eq!(output.status.code(), Some(0), "{url}: {}", text(&output));
        let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        let rows = rows.as_array().expect("array");
        assert_eq!(rows.len(), 4, "{url}: {rows:?}");
        assert_eq!(rows[0]["subject"], "seed message 1 (3000 bytes)");
        for row in rows {
            let id = row["id"].as_str().expect("id");
            let cat = mailcat(&lab, &lab.tricky_password, &["cat", id, "--incoming", &url]);
            assert_eq!(cat.status.code(), Some(0), "{url} {id}: {}", text(&cat));
            assert_eq!(
                cat.stdout.len() as u64,
                row["size"].as_u64().expect("size"),
                "{url} {id}: cat prints the whole message"
            );
        }
        let text_list = mailcat(&lab, &lab.tricky_password, &["list", "--incoming", &url]);
        let first = String::from_utf8_lossy(&text_list.stdout)
            .lines()
            .next()
            .map(str::to_owned)
            .expect("a line");
        assert!(first.ends_with("\tseed message 1 (3000 bytes)"), "{first}");
    }
    // The same message over both protocols is the same bytes.
    let imap_id = first_id(&lab, &imaps(&lab));
    let pop_id = first_id(&lab, &pop3s(&lab));
    let a = mailcat(
        &lab,
        &lab.tricky_password,
        &["cat", &imap_id, "--incoming", &imaps(&lab)],
    );
    let b = mailcat(
        &lab,
        &lab.tricky_password,
        &["cat", &pop_id, "--incoming", &pop3s(&lab)],
    );
    assert_eq!(a.stdout, b.stdout);
    let missing = mailcat(
        &lab,
        &lab.tricky_password,
        &["cat", "999999", "--incoming", &imaps(&lab)],
    );
    assert_eq!(missing.status.code(), Some(65), "{}", text(&missing));
}

fn first_id(lab: &Lab, url: &str) -> String {
    let output = mailcat(
        lab,
        &lab.tricky_password,
        &["list", "--json", "--incoming", url],
    );
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    rows[0]["id"].as_str().expect("id").to_owned()
}

/// `mailcat watch --json` as the tricky user, through `url`, its stdout and stderr piped.
fn spawn_watch(lab: &Lab, url: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args([
            "watch",
            "--json",
            "--incoming",
            url,
            "--email",
            &lab.tricky_user,
        ])
        .args(["--ca-file", lab.ca_file.to_str().expect("UTF-8")])
        .env("MAILCAT_PASSWORD", &lab.tricky_password)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch runs")
}

#[test]
fn watch_prints_a_line_when_a_message_arrives() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::from_env();
    let mut child = spawn_watch(&lab, &imaps(&lab));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr
        .read_line(&mut line)
        .expect("watch says it is watching");
    assert!(line.contains("watching INBOX"), "{line}");
    lab.seed(&lab.tricky_user, 1, 1500, false, true, 777);
    // Read on a thread, so a watch that never prints fails the test instead of hanging it.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        let _ = stdout.read_line(&mut event);
        let _ = sender.send(event);
    });
    let event = receiver.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let event = event.expect("watch printed nothing within 30 s of the delivery");
    let parsed: serde_json::Value = serde_json::from_str(&event).expect("JSON line");
    assert_eq!(
        parsed["subject"], "seed message 777 (1500 bytes)",
        "{event}"
    );
    // The JSON contract: "id" is what `cat` takes (a string, as `list` prints it), and IMAP
    // messages also carry their "uid" as a number.
    let uid = parsed["uid"].as_u64().expect("uid is a number");
    assert_eq!(parsed["id"], uid.to_string(), "{event}");
}

/// Reads stdout lines on a thread, so a watch that never prints fails the test instead of
/// hanging it.
fn lines_of(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Appends stderr lines to `said` up to the first that contains `needle`; fails at the end.
fn read_until_line_with(stderr: &mut impl BufRead, needle: &str, said: &mut String) {
    loop {
        let start = said.len();
        match stderr.read_line(said) {
            Ok(0) | Err(_) => panic!("watch ended before saying {needle:?}:\n{said}"),
            Ok(_) if said[start..].contains(needle) => return,
            Ok(_) => {}
        }
    }
}

#[test]
fn watch_reconnects_after_a_network_loss_and_reports_what_arrived_meanwhile() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::from_env();
    let target = format!("{}:{}", lab.host, lab.imaps_port)
        .parse()
        .expect("lab address");
    let proxy = mailcat_tests::proxy::Proxy::start(target);
    let url = format!("imaps://{}:{}", lab.tls_name, proxy.port());
    let mut child = spawn_watch(&lab, &url);
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut said = String::new();
    read_until_line_with(&mut stderr, "watching INBOX", &mut said);
    let events = lines_of(child.stdout.take().expect("stdout"));

    // The network goes away; mail arrives while it is away; the network comes back.
    proxy.set_accepting(false);
    proxy.cut();
    lab.seed(&lab.tricky_user, 1, 900, false, true, 778);
    read_until_line_with(&mut stderr, "reconnecting in", &mut said);
    proxy.set_accepting(true);

    let event = events.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
    let event = event.unwrap_or_else(|_| {
        panic!("watch reported nothing within 30 s of the network's return; it said:\n{said}")
    });
    let parsed: serde_json::Value = serde_json::from_str(&event).expect("JSON line");
    assert_eq!(parsed["subject"], "seed message 778 (900 bytes)", "{event}");
    assert!(
        proxy.accepted() >= 2,
        "watch connected again through the proxy"
    );
}

#[test]
fn the_trace_redacts_the_password() {
    let lab = Lab::from_env();
    let output = mailcat(
        &lab,
        &lab.tricky_password,
        &["-v", "list", "--incoming", &imaps(&lab)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let trace = String::from_utf8_lossy(&output.stderr);
    assert!(trace.contains("AUTHENTICATE PLAIN <redacted>"), "{trace}");
    assert!(
        !trace.contains(&lab.tricky_password),
        "the password is in the trace"
    );
    let plain = format!("\0{}\0{}", lab.tricky_user, lab.tricky_password);
    use std::io::Write;
    let mut encoded = Vec::new();
    write!(encoded, "{}", mailcat_codec_base64(plain.as_bytes())).expect("write");
    assert!(
        !trace.contains(&String::from_utf8_lossy(&encoded).into_owned()),
        "base64 of the credentials is in the trace"
    );
}

/// Standard base64, as SASL PLAIN sends it.
fn mailcat_codec_base64(bytes: &[u8]) -> String {
    mailcat_codec::core::sasl::encode(bytes)
}

#[test]
fn without_a_password_source_it_asks_on_the_terminal_without_echo() {
    // script(1) gives mailcat a terminal. Something is typed ahead at once, long before the
    // prompt (a delaying proxy makes the login, where the password is asked for, come a second
    // or more later): it must be discarded, not taken as the password, as getpass(3) and sudo
    // do. The password itself is typed once the prompt shows; echo must already be off then.
    // timeout(1) ends a mailcat that never prompts, so the reads below see the end instead of
    // waiting for ever. It must keep mailcat in the terminal's foreground process group
    // (`--foreground`): by default it makes a group of its own, and when script(1)'s shell does
    // not exec it (dash, which script uses when SHELL is unset, as in CI) that group is in the
    // background, so the terminal stops mailcat with SIGTTOU as soon as it turns echo off, as
    // job control would stop any background job that asks for a password. SHELL is set to
    // dash here so that the test runs the same way everywhere.
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::from_env();
    let target = format!("{}:{}", lab.host, lab.imaps_port)
        .parse()
        .expect("lab address");
    let proxy = mailcat_tests::proxy::Proxy::start_with_delay(target, Duration::from_millis(150));
    let command_line = format!(
        "timeout --foreground 30 {} mailboxes --email '{}' --incoming imaps://{}:{} --ca-file {}",
        env!("CARGO_BIN_EXE_mailcat"),
        lab.tricky_user,
        lab.tls_name,
        proxy.port(),
        lab.ca_file.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .env_remove("MAILCAT_PASSWORD")
        .env_remove("XDG_CONFIG_HOME")
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) runs (bsdutils)");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, b"typed-ahead\r").expect("type ahead");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut prompt = Vec::new();
    // The prompt ends with ": " and no newline: read byte by byte until all of it is there.
    let whole_prompt = format!("Password for {}: ", lab.tricky_user);
    while !String::from_utf8_lossy(&prompt).contains(&whole_prompt) {
        let mut byte = [0u8; 1];
        let n = std::io::Read::read(&mut stdout, &mut byte).expect("read the terminal");
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&prompt));
        prompt.push(byte[0]);
    }
    std::io::Write::write_all(&mut stdin, format!("{}\r", lab.tricky_password).as_bytes())
        .expect("type the password");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read the terminal");
    drop(stdin);
    let status = child.wait().expect("script ends");
    assert!(status.success(), "{rest}");
    assert!(rest.contains("INBOX"), "logged in and listed: {rest}");
    assert!(
        !rest.contains(&lab.tricky_password),
        "the password is not echoed: {rest}"
    );
}
