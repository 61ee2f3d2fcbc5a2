//! The configuration file as the CLI reads it: accounts by name, and a bad file named with its
//! line and field (exit 78).

use std::path::PathBuf;
use std::process::{Command, Output};

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("config-{name}"));
    std::fs::create_dir_all(dir.join("mailcat")).expect("temp dir");
    std::fs::write(dir.join("mailcat/config.toml"), text).expect("write config");
    dir
}

fn check_with(xdg: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .arg("check")
        .args(args)
        .env("XDG_CONFIG_HOME", xdg)
        .output()
        .expect("mailcat runs")
}

#[test]
fn a_bad_url_in_the_file_is_exit_78_with_file_line_and_field() {
    let xdg = write_config(
        "bad-url",
        "[accounts.work]\nemail = \"a@example.com\"\nincoming = \"imap.example.com\"\n",
    );
    let output = check_with(&xdg, &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:3: accounts.work.incoming: a server URL starts with a scheme",
        xdg.join("mailcat/config.toml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn an_unknown_field_is_exit_78_with_its_line() {
    let xdg = write_config(
        "unknown-field",
        "[accounts.work]\nemail = \"a@example.com\"\npasword_cmd = \"x\"\n",
    );
    let output = check_with(&xdg, &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("config.toml:3") && stderr.contains("pasword_cmd"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_account_lists_the_known_ones() {
    let xdg = write_config(
        "accounts",
        "[accounts.work]\nemail = \"a@example.com\"\n[accounts.home]\nemail = \"b@example.com\"\n",
    );
    let output = check_with(&xdg, &["--account", "play"]);
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("home, work"));
}

#[test]
fn no_file_and_no_flags_is_a_usage_error_that_says_what_to_give() {
    let xdg = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("config-none");
    let output = check_with(&xdg, &[]);
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--incoming URL"));
}

#[test]
fn an_email_that_is_no_address_is_refused_in_the_file_and_on_the_command_line() {
    // A line break in the address would become a header line in every message sent.
    let xdg = write_config(
        "bad-email",
        "[accounts.work]\nemail = \"a@example.com\\r\\nBcc: spy@example.net\"\n",
    );
    let output = check_with(&xdg, &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("config.toml:2: accounts.work.email")
            && stderr.contains("not an e-mail address"),
        "{stderr}"
    );

    let output = check_with(
        &xdg,
        &[
            "--email",
            "a@example.com\r\nBcc: spy@example.net",
            "--incoming",
            "imaps://127.0.0.1:1",
        ],
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--email") && stderr.contains("carriage return"),
        "{stderr}"
    );
}

/// A fresh directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn tilde_is_the_home_directory_in_every_path_mailcat_takes() {
    let home = fresh_dir("tilde-home");
    let cwd = fresh_dir("tilde-cwd");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mailcat"))
            .args(args)
            .current_dir(&cwd)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env("MAILCAT_PASSWORD", "unused")
            .output()
            .expect("mailcat runs")
    };
    // The README's own example: the shell leaves `~` after `maildir:` alone. The Maildir is
    // made before connecting (port 1: nothing listens), so it shows where it went.
    let output = run(&[
        "fetch",
        "--to",
        "maildir:~/Mail/inbox",
        "--email",
        "a@example.com",
        "--incoming",
        "imaps://127.0.0.1:1",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(home.join("Mail/inbox").is_dir(), "{stderr}");
    assert!(!cwd.join("~").exists(), "{stderr}");

    // --config=~/… (no shell expands it after `=`), and ca_file = "~/…" in the file.
    std::fs::write(
        home.join("mailcat.toml"),
        "[accounts.a]\nemail = \"a@example.com\"\nincoming = \"imaps://127.0.0.1:1\"\nca_file = \"~/no-such-ca.pem\"\n",
    )
    .expect("write config");
    let output = run(&["check", "--config=~/mailcat.toml"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(78), "{text}");
    let ca = home.join("no-such-ca.pem");
    assert!(text.contains(&ca.display().to_string()), "{text}");

    // --ca-file=~/… on the command line.
    let output = run(&[
        "check",
        "--ca-file=~/no-such-ca.pem",
        "--email",
        "a@example.com",
        "--incoming",
        "imaps://127.0.0.1:1",
    ]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{text}");
    assert!(text.contains(&ca.display().to_string()), "{text}");
}

#[test]
fn tilde_user_of_a_user_that_does_not_exist_is_an_error_that_says_so() {
    let missing = "~no-such-user-mailcat/ca.pem";
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args([
            "check",
            "--ca-file",
            missing,
            "--incoming",
            "imaps://127.0.0.1:1",
        ])
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("mailcat runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("~no-such-user-mailcat") && stderr.contains("there is no user"),
        "{stderr}"
    );

    let xdg = write_config(
        "tilde-user",
        "[accounts.work]\nemail = \"a@example.com\"\nincoming = \"imaps://127.0.0.1:1\"\nca_file = \"~no-such-user-mailcat/ca.pem\"\n",
    );
    let output = check_with(&xdg, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("config.toml:4: accounts.work.ca_file")
            && stderr.contains("there is no user"),
        "{stderr}"
    );
}
