//! A 100,000-message mailbox in the lab (`bench1m@`, seeded through the Maildir in seconds),
//! over IMAP and POP3: `list` streams its lines (the first is out while the rest is still being
//! listed), `list --limit N` gives the newest N, `list --json` keeps the JSON contract, the
//! first `fetch` stores every message, and a second `fetch` that finds nothing new asks the
//! server for no summary at all (IMAP: one SEARCH, and the UIDs recorded as ranges; POP3: one
//! UIDL checked line by line against the record, no LIST) and leaves the state file alone.
//!
//! Before issue 9, the IMAP `UID SEARCH ALL` answer (one line) broke the 64 KiB line limit
//! at ~9,300 messages, and `list` printed nothing before it had every summary.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use mailcat_tests::lab::Lab;

/// The lab's benchmark user, which no other test touches.
const USER: &str = "bench1m@example.test";
const COUNT: u32 = 100_000;
const SIZE: u32 = 600;

/// The mailbox is seeded once per run.
static MAILBOX: Mutex<()> = Mutex::new(());
static SEEDED: Once = Once::new();

fn seeded(lab: &Lab) -> std::sync::MutexGuard<'static, ()> {
    let guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    SEEDED.call_once(|| lab.seed(USER, COUNT, SIZE, true, false, 1));
    guard
}

fn password() -> String {
    std::env::var("MAILCAT_LAB_BENCH_PASSWORD")
        .expect("MAILCAT_LAB_BENCH_PASSWORD is not set: is the lab env loaded?")
}

fn url(lab: &Lab, pop3: bool) -> String {
    if pop3 {
        format!("pop3s://{}:{}", lab.tls_name, lab.pop3s_port)
    } else {
        format!("imaps://{}:{}", lab.tls_name, lab.imaps_port)
    }
}

fn command(lab: &Lab, pop3: bool, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailcat"));
    command
        .args(args)
        .args([
            "--email",
            USER,
            "--incoming",
            &url(lab, pop3),
            "--ca-file",
            lab.ca_file.to_str().expect("UTF-8"),
        ])
        .env("MAILCAT_PASSWORD", password())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("MAILCAT_FAULT")
        .stdin(Stdio::null());
    command
}

fn run(lab: &Lab, pop3: bool, args: &[&str]) -> Output {
    let output = command(lab, pop3, args).output().expect("mailcat runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "mailcat {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A fresh directory for a store; in memory (`/dev/shm`) when there is one, so the test
/// measures mailcat and the server, not the disk's fsyncs.
fn scratch(name: &str) -> PathBuf {
    let base = [PathBuf::from("/dev/shm"), std::env::temp_dir()]
        .into_iter()
        .find(|d| d.is_dir())
        .expect("a temporary directory");
    let dir = base.join(format!("mailcat-big-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `list` streams: its first line is out while the listing goes on; then all lines come,
/// oldest first.
fn list_streams_every_message(lab: &Lab, pop3: bool) {
    let mut child = command(lab, pop3, &["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailcat runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("stdout");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the first line came only after the listing ended"
    );
    let first_id = first.split('\t').next().expect("id").to_owned();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("stdout");
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(status.success(), "{stderr}");
    let lines = 1 + rest.lines().count();
    assert_eq!(lines, COUNT as usize, "{stderr}");
    assert!(first.contains("seed message 1 ("), "oldest first: {first}");
    let last = rest.lines().last().expect("a last line");
    assert!(
        last.contains(&format!("seed message {COUNT} (")),
        "newest last: {last}"
    );
    assert!(!first_id.is_empty(), "{first}");
}

/// `--limit N`: the newest N, oldest first; `--json`: "id" a string, "uid" a number (IMAP).
fn limit_and_json(lab: &Lab, pop3: bool) {
    let started = Instant::now();
    let output = run(lab, pop3, &["list", "--limit", "3"]);
    let text = String::from_utf8_lossy(&output.stdout);
    let subjects: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit('\t').next().expect("subject"))
        .collect();
    assert_eq!(
        subjects,
        [
            format!("seed message {} ({SIZE} bytes)", COUNT - 2),
            format!("seed message {} ({SIZE} bytes)", COUNT - 1),
            format!("seed message {COUNT} ({SIZE} bytes)"),
        ]
    );
    // Only the newest are summarised (POP3 still lists every UIDL, as the protocol must).
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );

    let output = run(lab, pop3, &["--json", "list", "--limit", "2"]);
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON array");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let id = row["id"].as_str().expect("id is a string");
        if pop3 {
            assert!(row.get("uid").is_none(), "{row}");
        } else {
            assert_eq!(row["uid"].as_u64(), id.parse().ok(), "{row}");
        }
        assert_eq!(row["size"].as_u64(), Some(u64::from(SIZE)), "{row}");
    }
    // What `list` names, `cat` fetches (without listing the whole mailbox).
    let id = rows[1]["id"].as_str().expect("id");
    let output = run(lab, pop3, &["cat", id]);
    let message = String::from_utf8_lossy(&output.stdout);
    assert!(
        message.contains(&format!("seed message {COUNT} (")),
        "{message}"
    );
}

/// The first fetch stores every message; the next, with nothing new, is quick and (IMAP) asks
/// for no summary: one SEARCH, and the record of 100,000 UIDs is a range.
fn fetch_all_then_nothing_new(lab: &Lab, pop3: bool) {
    let dir = scratch(if pop3 { "pop3" } else { "imap" });
    let store = dir.join("Mail");
    let to = format!("maildir:{}", store.display());
    let output = run(lab, pop3, &["fetch", "--to", &to]);
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!("fetched {COUNT} new messages")),
        "{said}"
    );
    let stored = std::fs::read_dir(store.join("new")).expect("new/").count();
    assert_eq!(stored, COUNT as usize);

    let state_path = store.join(".mailcat-state.json");
    let state_before = state_identity(&state_path);
    let started = Instant::now();
    let output = run(lab, pop3, &["-v", "fetch", "--to", &to]);
    let elapsed = started.elapsed();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("fetched 0 new messages"), "{said}");
    assert_eq!(
        state_identity(&state_path),
        state_before,
        "nothing changed: the state file is not written again"
    );
    if pop3 {
        // The UIDLs are checked against the record as they stream in: nothing is held, so
        // no size is needed and no LIST sent.
        assert!(said.contains("C: UIDL"), "the trace shows the commands");
        for command in ["C: LIST", "C: TOP", "C: RETR"] {
            assert!(!said.contains(command), "{command} sent");
        }
        assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    } else {
        assert!(
            !said.contains("UID FETCH"),
            "nothing new needs no summary of any message"
        );
        // One range, of all the UIDs (they start where the mailbox's earlier ones ended).
        let state = std::fs::read_to_string(store.join(".mailcat-state.json")).expect("state");
        let ranges = state
            .split("\"fetched_uids\": \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no fetched_uids: {state}"));
        let (first, last) = ranges
            .split_once(':')
            .unwrap_or_else(|| panic!("one range: {ranges}"));
        let (first, last): (u32, u32) = (first.parse().expect("UID"), last.parse().expect("UID"));
        assert_eq!(last - first + 1, COUNT, "{ranges}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// The state file's inode and modification time: a rewrite (a new file renamed over it) changes
/// both.
fn state_identity(path: &std::path::Path) -> (u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("the state file");
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

fn everything(pop3: bool) {
    let lab = Lab::from_env();
    list_streams_every_message(&lab, pop3);
    limit_and_json(&lab, pop3);
    fetch_all_then_nothing_new(&lab, pop3);
}

/// IMAP and POP3 side by side (both only read the mailbox): the first fetches of 100,000
/// messages each take most of the time, and one core each halves it.
#[test]
fn imap_and_pop3_list_and_fetch_a_100k_mailbox() {
    let lab = Lab::from_env();
    let _guard = seeded(&lab);
    let pop3 = std::thread::spawn(|| everything(true));
    everything(false);
    if let Err(panic) = pop3.join() {
        std::panic::resume_unwind(panic);
    }
}
