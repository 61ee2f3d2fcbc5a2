//! Shared by the CLI tests: running `mailcat decode` as a process, and `mailcat` against a
//! scripted server (`mailcat_tests::script`).
#![allow(dead_code)] // each test binary uses its own share of these helpers

use std::io::{Read, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::thread;
use std::time::Duration;

use mailcat_tests::script::Live;
use serde_json::Value;

/// What the command did with some input.
#[derive(Debug)]
pub(crate) struct Run {
    /// One JSON value per stdout line.
    pub values: Vec<Value>,
    /// Everything written to stderr.
    pub stderr: String,
    /// The exit code.
    pub code: Option<i32>,
    /// Peak resident set of the process in KiB, read just before its stdin was closed.
    pub peak_kib: u64,
}

/// Runs `mailcat decode <protocol>` on `input`, written in pieces of `piece` bytes with a pause
/// between them (so the decoder sees the stream cut at every point), or all at once.
pub(crate) fn decode_in_pieces(protocol: &str, input: &[u8], piece: Option<usize>) -> Run {
    let input = input.to_vec();
    decode_streamed(protocol, move |stdin| match piece {
        None => stdin.write_all(&input).expect("mailcat reads stdin"),
        Some(n) => {
            for chunk in input.chunks(n) {
                stdin.write_all(chunk).expect("mailcat reads stdin");
                stdin.flush().expect("flush");
                thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

/// Runs `mailcat decode <protocol>` on `input`, written all at once.
pub(crate) fn decode(protocol: &str, input: &[u8]) -> Run {
    decode_in_pieces(protocol, input, None)
}

/// Runs `mailcat decode <protocol>` with stdin fed by `write` from another thread.
///
/// Stdin stays open after `write` returns until the peak memory has been read: the child has
/// then processed (nearly) everything and is still alive, waiting for EOF.
pub(crate) fn decode_streamed(
    protocol: &str,
    write: impl FnOnce(&mut ChildStdin) + Send + 'static,
) -> Run {
    decode_streamed_with(&[protocol], write)
}

/// Runs `mailcat decode <args>` (the protocol, then options such as `--after STAT`) on `input`.
pub(crate) fn decode_with(args: &[&str], input: &[u8]) -> Run {
    let input = input.to_vec();
    decode_streamed_with(args, move |stdin| {
        stdin.write_all(&input).expect("mailcat reads stdin");
    })
}

/// [`decode_streamed`] with `args` after `decode`.
pub(crate) fn decode_streamed_with(
    args: &[&str],
    write: impl FnOnce(&mut ChildStdin) + Send + 'static,
) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailcat runs");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let writer = thread::spawn(move || {
        write(&mut stdin);
        stdin.flush().expect("flush");
        stdin
    });
    let reader = thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).expect("stdout is UTF-8");
        out
    });
    let error_reader = thread::spawn(move || {
        let mut out = String::new();
        stderr.read_to_string(&mut out).expect("stderr is UTF-8");
        out
    });
    let stdin = writer.join().expect("writer thread");
    let peak_kib = peak_rss_kib(pid);
    drop(stdin);
    let status = child.wait().expect("mailcat exits");
    let out = reader.join().expect("reader thread");
    Run {
        values: out
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect(),
        stderr: error_reader.join().expect("stderr reader thread"),
        code: status.code(),
        peak_kib,
    }
}

/// The peak resident set (`VmHWM`, in KiB) of a running process; 0 if it has already exited.
fn peak_rss_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `mailcat` as alice@example.test with `password`, over plain TCP (`--allow-plaintext`, a 5 s
/// timeout) to the incoming server `incoming` (a URL), without a configuration file; the
/// command and its arguments follow (the options are global).
pub(crate) fn plaintext_mailcat(incoming: &str, password: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailcat"));
    command
        .args([
            "--email",
            "alice@example.test",
            "--allow-plaintext",
            "--timeout",
            "5",
            "--incoming",
            incoming,
        ])
        .env("MAILCAT_PASSWORD", password)
        .env_remove("XDG_CONFIG_HOME");
    command
}

/// How many of the lines a scripted server received (over all connections) start with
/// `prefix`, case aside.
pub(crate) fn count_lines(live: &Live, prefix: &str) -> usize {
    let prefix = prefix.to_ascii_uppercase();
    live.lock()
        .expect("log")
        .iter()
        .filter(|line| line.to_ascii_uppercase().starts_with(&prefix))
        .count()
}
