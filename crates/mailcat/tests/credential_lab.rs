//! Where the password comes from, against the lab's servers: once per run (one password command
//! or prompt serves both servers), and what the command line says wins over the environment,
//! which wins over the configuration file.
//!
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailcat_tests::lab::Lab;

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("credential-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A password command that prints `password` and adds a line to `counter` each time it runs.
fn counting_command(counter: &Path, password: &str) -> String {
    format!(
        "echo run >> '{}'; printf '%s\\n' '{password}'",
        counter.display()
    )
}

fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

fn servers(lab: &Lab) -> [String; 2] {
    [
        format!("imaps://{}:{}", lab.tls_name, lab.imaps_port),
        format!("smtp://{}:{}", lab.tls_name, lab.submission_port),
    ]
}

#[test]
fn check_runs_the_password_command_once_for_both_servers() {
    let lab = Lab::from_env();
    let dir = temp_dir("once");
    let counter = dir.join("runs");
    let [incoming, outgoing] = servers(&lab);
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args([
            "check",
            "--email",
            &lab.user,
            "--incoming",
            &incoming,
            "--outgoing",
            &outgoing,
            "--ca-file",
            lab.ca_file.to_str().expect("UTF-8 path"),
            "--password-cmd",
            &counting_command(&counter, &lab.password),
        ])
        .env_remove("MAILCAT_PASSWORD")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("mailcat runs");
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert_eq!(shown.matches("✓ login").count(), 2, "{shown}");
    assert_eq!(
        runs(&counter),
        1,
        "the password command ran more than once:\n{shown}"
    );
}

#[test]
fn the_command_line_wins_over_the_environment_which_wins_over_the_file() {
    let lab = Lab::from_env();
    let dir = temp_dir("order");
    let [incoming, _] = servers(&lab);
    let file_counter = dir.join("file-runs");
    std::fs::create_dir_all(dir.join("mailcat")).expect("config dir");
    std::fs::write(
        dir.join("mailcat/config.toml"),
        format!(
            "[accounts.lab]\nemail = {:?}\nincoming = {incoming:?}\nca_file = {:?}\npassword_cmd = {:?}\n",
            lab.user,
            lab.ca_file.to_str().expect("UTF-8 path"),
            counting_command(&file_counter, &lab.password),
        ),
    )
    .expect("write config");
    let list = |password_cmd: Option<&str>, environment: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailcat"));
        command.env("XDG_CONFIG_HOME", &dir).arg("list");
        if let Some(cmd) = password_cmd {
            command.args(["--password-cmd", cmd]);
        }
        match environment {
            Some(password) => command.env("MAILCAT_PASSWORD", password),
            None => command.env_remove("MAILCAT_PASSWORD"),
        };
        command.output().expect("mailcat runs")
    };
    // A leftover wrong MAILCAT_PASSWORD does not override the --password-cmd just typed.
    let flag_counter = dir.join("flag-runs");
    let output = list(
        Some(&counting_command(&flag_counter, &lab.password)),
        Some("a stale wrong password"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(runs(&flag_counter), 1);
    // The environment wins over the file's password_cmd, which then does not run at all.
    let output = list(None, Some("a stale wrong password"));
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
    assert_eq!(runs(&file_counter), 0);
    // The file's password_cmd is used when nothing else is given.
    let output = list(None, None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(runs(&file_counter), 1);
}
