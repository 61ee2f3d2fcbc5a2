//! Usage errors are exit 64 with a message that says what to give, before any connection.

use std::process::Command;

fn mailcat(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(args)
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env("MAILCAT_PASSWORD", "unused")
        .output()
        .expect("mailcat runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn usage_errors_are_64_and_say_what_to_give() {
    // Port 1 on loopback: nothing listens, so a run that got as far as connecting would say so.
    let account = ["--email", "a@example.test"];
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "fetch",
                "--to",
                "/tmp/inbox",
                "--incoming",
                "imaps://127.0.0.1:1",
            ],
            "maildir:DIR or mbox:FILE",
        ),
        (&["fetch", "--incoming", "imaps://127.0.0.1:1"], "--to"),
        (
            &["watch", "--incoming", "pop3s://127.0.0.1:1"],
            "needs IMAP",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
        (
            &[
                "send",
                "-V",
                "Grüße",
                "--outgoing",
                "smtp://127.0.0.1:1",
                "b@example.test",
            ],
            "the envelope id is 1 to 100 printable ASCII characters",
        ),
        (
            &[
                "send",
                "-N",
                "sometimes",
                "--outgoing",
                "smtp://127.0.0.1:1",
                "b@example.test",
            ],
            "any of success, failure and delay",
        ),
        (
            &[
                "send",
                "-R",
                "body",
                "--outgoing",
                "smtp://127.0.0.1:1",
                "b@example.test",
            ],
            "full (the whole message in a report) or hdrs",
        ),
    ];
    for (args, says) in cases {
        let mut all = args.to_vec();
        all.extend(account);
        let (code, text) = mailcat(&all);
        assert_eq!(code, Some(64), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?} should say {says:?}: {text}");
        assert!(
            !text.contains("connection refused"),
            "{args:?} connected: {text}"
        );
    }
}

#[test]
fn v_is_the_version_except_for_send_where_it_is_the_envelope_id() {
    for args in [
        &["-V"][..],
        &["--version"],
        &["list", "-V"],
        &["send", "--version"],
    ] {
        let (code, text) = mailcat(args);
        assert_eq!(code, Some(0), "{args:?}: {text}");
        assert!(
            text.starts_with("mailcat") && text.trim().ends_with(env!("CARGO_PKG_VERSION")),
            "{args:?}: {text}"
        );
    }
    // `send -V` takes a value, as sendmail's: alone it is a usage error, not the version.
    let (code, text) = mailcat(&["send", "-V"]);
    assert_eq!(code, Some(64), "{text}");
}

#[test]
fn help_and_version_are_exit_0() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["send", "--help"],
        &["fetch", "--help"],
    ] {
        let (code, text) = mailcat(args);
        assert_eq!(code, Some(0), "{args:?}: {text}");
        assert!(text.contains("mailcat"), "{text}");
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_know_the_commands_and_flags() {
    for (shell, marker) in [
        ("bash", "complete -F _mailcat"),
        ("zsh", "#compdef mailcat"),
        ("fish", "complete -c mailcat"),
    ] {
        let (code, text) = mailcat(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {text}");
        assert!(text.contains(marker), "{shell}: {text}");
        for word in ["fetch", "send", "smtputf8", "password-cmd"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    let (code, text) = mailcat(&["completions", "tcsh"]);
    assert_eq!(code, Some(64), "{text}");
}

#[test]
fn man_prints_the_page_and_writes_one_per_command() {
    let (code, text) = mailcat(&["man"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(".TH mailcat 1"), "{text}");
    assert!(text.contains("fetch"), "{text}");

    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("man-pages");
    let _ = std::fs::remove_dir_all(&dir);
    let (code, text) = mailcat(&["man", "--dir", dir.to_str().expect("UTF-8 path")]);
    assert_eq!(code, Some(0), "{text}");
    let page = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    assert!(page("mailcat.1").contains(".TH mailcat 1"));
    let send = page("mailcat-send.1");
    assert!(
        send.contains(".TH mailcat-send 1") && send.contains("ENVID"),
        "{send}"
    );
    assert!(page("mailcat-fetch.1").contains("maildir"));
}

/// Runs mailcat with `--json`; returns the exit code, every JSON value on stdout, and stderr.
fn mailcat_json(args: &[&str]) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(args)
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env("MAILCAT_PASSWORD", "unused")
        .output()
        .expect("mailcat runs");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let values = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<serde_json::Value>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), values, stderr)
}

#[test]
fn with_json_a_failure_is_one_error_object_on_stdout_and_text_on_stderr() {
    let nobody = [
        "--email",
        "a@example.test",
        "--incoming",
        "imaps://127.0.0.1:1",
    ];
    let cases: [(&[&str], i32, &str, &str); 4] = [
        // A usage error found by the command.
        (
            &["fetch", "--to", "/tmp/inbox"],
            64,
            "usage",
            "maildir:DIR or mbox:FILE",
        ),
        // One found by the parser.
        (&["list", "--frobnicate"], 64, "usage", "--frobnicate"),
        // A server that cannot be reached: the session's message and its hint.
        (&["list"], 69, "unavailable", "refused the connection"),
        (&["mailboxes"], 69, "unavailable", "refused the connection"),
    ];
    for (args, code, kind, says) in cases {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        all.extend(nobody);
        let (exit, values, stderr) = mailcat_json(&all);
        assert_eq!(exit, Some(code), "{args:?}: {stderr}");
        assert_eq!(values.len(), 1, "{args:?}: one object: {values:?}");
        let error = &values[0]["error"];
        assert_eq!(error["kind"], kind, "{args:?}: {error}");
        assert_eq!(error["exit_code"], code, "{args:?}: {error}");
        let message = error["message"].as_str().expect("a message");
        assert!(message.contains(says), "{args:?}: {error}");
        // The text stays on stderr for people and logs.
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // check's report carries its failures itself: one document, no error object after it.
    let (exit, values, stderr) = mailcat_json(&[
        "--json",
        "check",
        "--email",
        "a@example.test",
        "--incoming",
        "imaps://127.0.0.1:1",
    ]);
    assert_eq!(exit, Some(69), "{stderr}");
    assert_eq!(values.len(), 1, "{values:?}");
    assert_eq!(values[0]["ok"], false);
}

#[test]
fn with_json_a_configuration_error_is_an_error_object_too() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("json-config");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        "[accounts.a]\nemail = \"a@example.test\"\nincoming = \"imap.example.test\"\n",
    )
    .expect("write");
    let (exit, values, stderr) =
        mailcat_json(&["--json", "--config", file.to_str().expect("UTF-8"), "list"]);
    assert_eq!(exit, Some(78), "{stderr}");
    assert_eq!(values.len(), 1, "{values:?}");
    let error = &values[0]["error"];
    assert_eq!(error["kind"], "config");
    assert_eq!(error["command"], "list");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("config.toml:3")),
        "{error}"
    );
}
