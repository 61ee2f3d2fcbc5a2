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
