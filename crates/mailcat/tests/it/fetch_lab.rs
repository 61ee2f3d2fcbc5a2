//! `mailcat fetch` against the lab, as a user runs it: IMAP (carol) and POP3 (bob) into a
//! Maildir and into an mbox, byte for byte against what `mailcat cat` serves; only what is
//! new on the next run; `--delete`; killed at every fault point and run again (every message
//! once, none deleted before it was stored); SIGTERM mid-run; a second run on the same store;
//! a full disk (a real 256 KiB tmpfs) and an unwritable place; a UIDVALIDITY change (made
//! with `doveadm mailbox update --uid-validity`).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mailcat_tests::lab::Lab;

/// The tests share bob's and carol's mailboxes: one at a time.
static MAILBOXES: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    MAILBOXES.lock().unwrap_or_else(|e| e.into_inner())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: is the lab env loaded?"))
}

/// An account of the lab and how to reach it.
struct Account {
    user: String,
    password: String,
    url: String,
    pop3: bool,
}

fn carol(lab: &Lab) -> Account {
    Account {
        user: env("MAILCAT_LAB_USER3"),
        password: env("MAILCAT_LAB_PASSWORD3"),
        url: format!("imaps://{}:{}", lab.tls_name, lab.imaps_port),
        pop3: false,
    }
}

fn bob(lab: &Lab) -> Account {
    Account {
        user: env("MAILCAT_LAB_USER2"),
        password: env("MAILCAT_LAB_PASSWORD2"),
        url: format!("pop3s://{}:{}", lab.tls_name, lab.pop3s_port),
        pop3: true,
    }
}

fn command(lab: &Lab, account: &Account, args: &[&str], fault: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailcat"));
    command
        .args(args)
        .args([
            "--email",
            &account.user,
            "--incoming",
            &account.url,
            "--ca-file",
            lab.ca_file.to_str().expect("UTF-8"),
        ])
        .env("MAILCAT_PASSWORD", &account.password)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("MAILCAT_FAULT");
    if let Some(fault) = fault {
        command.env("MAILCAT_FAULT", needs_fault_injection(fault));
    }
    command
}

/// The fault points are compiled into the binary only with the `fault-injection` feature: a
/// test that needs one fails here, loudly, rather than pass or skip without it.
#[allow(clippy::assertions_on_constants)]
fn needs_fault_injection(fault: &str) -> &str {
    assert!(
        cfg!(feature = "fault-injection"),
        "MAILCAT_FAULT={fault} needs the fault points: run `cargo test -p mailcat --features lab`, which turns it on (scripts/test-all.sh does)"
    );
    fault
}

fn mailcat(lab: &Lab, account: &Account, args: &[&str], fault: Option<&str>) -> Output {
    command(lab, account, args, fault)
        .stdin(Stdio::null())
        .output()
        .expect("mailcat runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A running child's stderr, read as it comes (on a thread of its own), put back into its
/// `Output` at the end.
struct StderrTap {
    said: std::sync::Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl StderrTap {
    fn new(child: &mut std::process::Child) -> Self {
        let mut stderr = child.stderr.take().expect("stderr piped");
        let said = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = said.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stderr, &mut buf) {
                sink.lock().expect("stderr").extend_from_slice(&buf[..n]);
            }
        });
        Self { said, reader }
    }

    fn contains(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.said.lock().expect("stderr")).contains(text)
    }

    /// The child's output, its stderr as read.
    fn wait(self, child: std::process::Child) -> Output {
        let mut output = child.wait_with_output().expect("mailcat ends");
        self.reader.join().expect("stderr read");
        output.stderr = std::mem::take(&mut *self.said.lock().expect("stderr"));
        output
    }
}

/// The messages on the server, as `mailcat cat` serves them, sorted.
fn server(lab: &Lab, account: &Account) -> Vec<Vec<u8>> {
    let output = mailcat(lab, account, &["list", "--json"], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut messages: Vec<Vec<u8>> = rows
        .as_array()
        .expect("array")
        .iter()
        .map(|row| {
            let id = row["id"].as_str().expect("id");
            let output = mailcat(lab, account, &["cat", id], None);
            assert_eq!(output.status.code(), Some(0), "cat {id}: {}", text(&output));
            output.stdout
        })
        .collect();
    messages.sort();
    messages
}

/// Seeds `count` messages of `size` bytes (`reset` empties the mailbox first) and returns
/// what the server then has.
fn seed(
    lab: &Lab,
    account: &Account,
    count: u32,
    size: u32,
    reset: bool,
    start: u32,
) -> Vec<Vec<u8>> {
    lab.seed(&account.user, count, size, reset, false, start);
    server(lab, account)
}

/// Where a test fetches to.
#[derive(Clone)]
enum Store {
    Maildir(PathBuf),
    Mbox(PathBuf),
}

impl Store {
    fn fresh(kind: &str, name: &str) -> (Self, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "mailcat-fetch-{name}-{kind}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = if kind == "maildir" {
            Self::Maildir(dir.join("Mail"))
        } else {
            Self::Mbox(dir.join("inbox.mbox"))
        };
        (store, dir)
    }

    fn arg(&self) -> String {
        match self {
            Self::Maildir(p) => format!("maildir:{}", p.display()),
            Self::Mbox(p) => format!("mbox:{}", p.display()),
        }
    }

    /// The messages a mail reader sees, in the server's form (CRLF), sorted.
    fn messages(&self) -> Vec<Vec<u8>> {
        let mut out = match self {
            Self::Maildir(dir) => maildir_messages(dir),
            Self::Mbox(file) => mbox_messages(file),
        };
        out.sort();
        out
    }

    /// Files in a Maildir's `tmp/` (none for an mbox).
    fn tmp_files(&self) -> usize {
        match self {
            Self::Maildir(dir) => std::fs::read_dir(dir.join("tmp")).map_or(0, |d| d.count()),
            Self::Mbox(_) => 0,
        }
    }
}

/// The messages of a Maildir, LF back to CRLF (the lab's messages are all CRLF): the files
/// have LF line ends, as mail readers expect, and no CR at all.
fn maildir_messages(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            assert!(
                !bytes.contains(&b'\r'),
                "{}: CRLF in a Maildir (mutt shows ^M)",
                path.display()
            );
            let mut crlf = Vec::with_capacity(bytes.len() + bytes.len() / 32);
            for b in bytes {
                if b == b'\n' {
                    crlf.push(b'\r');
                }
                crlf.push(b);
            }
            out.push(crlf);
        }
    }
    out
}

/// Parses an mboxrd file: each message after its `From ` line and before the blank line that
/// ends it; `>From` unquoted, LF back to CRLF (the lab's messages are all CRLF).
fn mbox_messages(file: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read(file).unwrap_or_default();
    if text.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8(text).expect("the lab's messages are ASCII");
    assert!(text.starts_with("From "), "{text:?}");
    let text = text.strip_suffix("\n\n").unwrap_or_else(|| {
        panic!(
            "the mbox ends with a blank line: {:?}",
            &text[text.len().saturating_sub(80)..]
        )
    });
    text.split("\n\nFrom ")
        .map(|m| {
            let (_, body) = m.split_once('\n').expect("a From line");
            let mut out = String::new();
            for line in format!("{body}\n").split_inclusive('\n') {
                let unquoted = match line.strip_prefix('>') {
                    Some(rest) if rest.trim_start_matches('>').starts_with("From ") => rest,
                    _ => line,
                };
                out.push_str(&unquoted.replace('\n', "\r\n"));
            }
            out.into_bytes()
        })
        .collect()
}

fn fetch(
    lab: &Lab,
    account: &Account,
    store: &Store,
    extra: &[&str],
    fault: Option<&str>,
) -> Output {
    let to = store.arg();
    let mut args = vec!["fetch", "--to", &to];
    args.extend_from_slice(extra);
    mailcat(lab, account, &args, fault)
}

#[test]
fn imap_and_pop3_into_maildir_and_mbox_byte_exact_then_only_what_is_new() {
    let _guard = lock();
    let lab = Lab::from_env();
    for account in [carol(&lab), bob(&lab)] {
        for kind in ["maildir", "mbox"] {
            let what = format!("{} into {kind}", account.url);
            let (store, dir) = Store::fresh(kind, "new");
            let original = seed(&lab, &account, 3, 2500, true, 1);
            assert_eq!(original.len(), 3);

            let output = fetch(&lab, &account, &store, &[], None);
            assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
            assert!(output.stdout.is_empty(), "nothing on stdout without --json");
            assert!(
                stderr(&output).contains(&format!(
                    "fetched 3 new messages (7.32 KiB) into {}\n",
                    match &store {
                        Store::Maildir(p) | Store::Mbox(p) => p.display(),
                    }
                )),
                "{what}: {}",
                text(&output)
            );
            assert_eq!(store.messages(), original, "{what}: byte for byte");
            assert_eq!(server(&lab, &account), original, "{what}: nothing deleted");

            // Nothing new: nothing fetched, and --json says so on stdout.
            let output = fetch(&lab, &account, &store, &["--json"], None);
            assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
            let summary: serde_json::Value =
                serde_json::from_slice(&output.stdout).expect("JSON on stdout");
            assert_eq!(summary["fetched"], 0, "{what}: {summary}");
            assert_eq!(store.messages(), original, "{what}: no duplicates");

            // One new message (a 70 kB multipart one): only it is fetched.
            let now = seed(&lab, &account, 1, 70_000, false, 50);
            assert_eq!(now.len(), 4);
            let output = fetch(&lab, &account, &store, &["-q", "--json"], None);
            assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
            assert!(output.stderr.is_empty(), "-q: {}", text(&output));
            let summary: serde_json::Value =
                serde_json::from_slice(&output.stdout).expect("JSON on stdout");
            assert_eq!(summary["fetched"], 1, "{what}: {summary}");
            assert_eq!(summary["bytes"], 70_000, "{what}: {summary}");
            assert_eq!(store.messages(), now, "{what}: the new one, once");
            std::fs::remove_dir_all(dir).expect("clean up");
        }
    }
}

#[test]
fn delete_empties_the_server_of_what_was_stored() {
    let _guard = lock();
    let lab = Lab::from_env();
    for account in [carol(&lab), bob(&lab)] {
        let (store, dir) = Store::fresh("maildir", "delete");
        let original = seed(&lab, &account, 4, 1500, true, 1);
        let output = fetch(&lab, &account, &store, &["--delete"], None);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        assert!(
            stderr(&output).contains("fetched 4 new messages (5.86 KiB)")
                && stderr(&output).contains("deleted 4 on the server"),
            "{}",
            text(&output)
        );
        assert_eq!(store.messages(), original);
        assert!(server(&lab, &account).is_empty(), "{}", account.url);
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}

#[test]
fn two_accounts_share_one_mbox_and_each_remembers_its_own() {
    let _guard = lock();
    let lab = Lab::from_env();
    let (store, dir) = Store::fresh("mbox", "shared");
    let (carol, bob) = (carol(&lab), bob(&lab));
    let mut all = seed(&lab, &carol, 2, 1000, true, 1);
    all.extend(seed(&lab, &bob, 3, 1200, true, 1));
    all.sort();
    for account in [&carol, &bob, &carol, &bob] {
        let output = fetch(&lab, account, &store, &[], None);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
    assert_eq!(store.messages(), all, "each message once");
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// Killed (abort, as abrupt as SIGKILL) at `fault` with --delete, then run again.
/// Seeds `count` messages of `size` bytes, kills `fetch --delete` at `fault`, checks that
/// nothing is partial, twice or lost (and that at least `stored_at_least` are stored), then
/// reruns it and checks that every message is stored exactly once and deleted.
fn crash_then_rerun(
    lab: &Lab,
    account: &Account,
    (kind, fault): (&str, &str),
    (count, size): (u32, u32),
    stored_at_least: u32,
) {
    let what = format!(
        "{} into {kind}, {count} messages, killed at {fault}",
        account.url
    );
    let (store, dir) = Store::fresh(kind, "crash");
    let original = seed(lab, account, count, size, true, 1);

    let output = fetch(lab, account, &store, &["--delete"], Some(fault));
    assert_eq!(
        output.status.signal(),
        Some(6),
        "{what}: killed at the fault point: {}",
        text(&output)
    );
    // No partial message in view, none twice, none lost (each is stored or still on the server).
    let stored = store.messages();
    let on_server = server(lab, account);
    for message in &stored {
        assert!(
            original.contains(message),
            "{what}: a partial or foreign message in the store"
        );
    }
    let mut deduped = stored.clone();
    deduped.dedup();
    assert_eq!(deduped, stored, "{what}: a message stored twice");
    assert!(
        stored.len() >= stored_at_least as usize,
        "{what}: {} stored, the batches before the fault hold {stored_at_least}",
        stored.len()
    );
    for message in &original {
        assert!(
            stored.contains(message) || on_server.contains(message),
            "{what}: a message deleted on the server before it was stored"
        );
    }
    if account.pop3 {
        assert_eq!(
            on_server, original,
            "{what}: no QUIT, so POP3 deleted nothing"
        );
    }

    let output = fetch(lab, account, &store, &["--delete"], None);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{what}: rerun: {}",
        text(&output)
    );
    assert_eq!(
        store.messages(),
        original,
        "{what}: every message exactly once"
    );
    assert!(
        server(lab, account).is_empty(),
        "{what}: deleted once stored"
    );
    assert_eq!(store.tmp_files(), 0, "{what}: the debris in tmp/ is swept");
    if fault.starts_with("after_rename_before_state") && kind == "maildir" && count == 4 {
        // A Maildir commits a batch as a group (one fsync of new/), then records it: killed
        // before the record, all 4 are in new/, and their tags tell.
        assert!(
            stderr(&output).contains("4 found already stored by an interrupted run"),
            "{what}: the tag in the file name told: {}",
            text(&output)
        );
    }
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn killed_at_every_fault_point_then_rerun_every_message_is_there_once() {
    let _guard = lock();
    let lab = Lab::from_env();
    let (carol, bob) = (carol(&lab), bob(&lab));
    for (account, kind, fault) in [
        (&bob, "maildir", "after_retr@2"),
        (&bob, "maildir", "after_write_before_rename"),
        (&bob, "maildir", "after_rename_before_state@2"),
        (&bob, "maildir", "between_dele_and_quit"),
        (&bob, "mbox", "after_retr@2"),
        (&bob, "mbox", "after_rename_before_state@1"),
        (&bob, "mbox", "after_rename_before_state@3"),
        (&bob, "mbox", "between_dele_and_quit"),
        (&carol, "maildir", "after_retr@3"),
        (&carol, "maildir", "after_write_before_rename"),
        (&carol, "maildir", "after_rename_before_state@2"),
        (&carol, "mbox", "after_retr@2"),
        (&carol, "mbox", "after_rename_before_state@1"),
        (&carol, "mbox", "after_rename_before_state@4"),
    ] {
        crash_then_rerun(&lab, account, (kind, fault), (4, 2000), 0);
    }
}

fn wait_for(what: &str, child: &mut std::process::Child, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("mailcat ended ({status}) before {what}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {what} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_or_ctrl_c_mid_fetch_stops_cleanly_and_a_second_run_meanwhile_is_refused() {
    let _guard = lock();
    let lab = Lab::from_env();
    for signal in ["-TERM", "-INT"] {
        signalled_mid_fetch(&lab, signal);
    }
}

fn signalled_mid_fetch(lab: &Lab, signal: &str) {
    let bob = bob(lab);
    let (store, dir) = Store::fresh("maildir", &format!("signal{signal}"));
    // 17 messages: a Maildir commits a batch (16) as a group, so the first batch is stored and
    // the 17th waits in tmp/ when the signal comes.
    let original = seed(lab, &bob, 17, 2000, true, 1);
    let to = store.arg();
    let mut child = command(
        lab,
        &bob,
        &["fetch", "--delete", "--to", &to],
        Some("stall_after_retr@17"),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("mailcat starts");
    // The first batch stored, the 17th message downloaded, not committed (held in memory, so
    // no file in tmp/ yet; and no DELE sent: deletions wait for the end of the run).
    let tap = StderrTap::new(&mut child);
    wait_for("the 17th message downloaded", &mut child, || {
        tap.contains("stalled at after_retr") && store.messages().len() == 16
    });

    let second = fetch(lab, &bob, &store, &[], None);
    assert_eq!(second.status.code(), Some(75), "{}", text(&second));
    assert!(
        stderr(&second).contains("another mailcat is using this store"),
        "{}",
        text(&second)
    );

    send_signal(signal, &child);
    let output = tap.wait(child);
    // 128 + the signal's number, as a shell reports a program the signal ended.
    let expected = if signal == "-TERM" { 143 } else { 130 };
    assert_eq!(
        output.status.code(),
        Some(expected),
        "{signal}: {}",
        text(&output)
    );
    assert!(
        stderr(&output).contains("interrupted")
            && stderr(&output).contains("nothing was deleted on the server"),
        "{}",
        text(&output)
    );
    assert_eq!(store.tmp_files(), 0, "the message in progress is removed");
    let stored = store.messages();
    assert_eq!(stored.len(), 16);
    assert!(stored.iter().all(|m| original.contains(m)));
    assert_eq!(server(lab, &bob), original, "nothing deleted");

    let output = fetch(lab, &bob, &store, &["--delete"], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(store.messages(), original);
    assert!(server(lab, &bob).is_empty());
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// A tmpfs of 256 KiB (or `size`), unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str) -> Self {
        Self::mount_sized(name, "256k")
    }

    fn mount_sized(name: &str, size: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("mailcat-fetch-disk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this test needs root to mount a {size} tmpfs (the full disk) on {}",
            dir.display()
        );
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_stops_the_fetch_with_74_and_nothing_is_deleted() {
    let _guard = lock();
    let lab = Lab::from_env();
    // 6 x 60 kB do not fit in 256 KiB. An mbox commits a batch as a group, whose spool files
    // are on the disk with it (6 x 60 kB is one batch, and its spool files alone fill the
    // disk): 60 x 4,000 B, batches of 16, so a batch or two fit and a later one does not.
    for (account, kind, (count, size)) in [
        (carol(&lab), "maildir", (6, 60_000)),
        (bob(&lab), "maildir", (6, 60_000)),
        (bob(&lab), "mbox", (60, 4_000)),
    ] {
        let what = format!("{} into {kind}", account.url);
        let disk = SmallDisk::mount(kind);
        let store = if kind == "maildir" {
            Store::Maildir(disk.0.join("Mail"))
        } else {
            Store::Mbox(disk.0.join("inbox.mbox"))
        };
        let original = seed(&lab, &account, count, size, true, 1);
        let output = fetch(&lab, &account, &store, &["--delete"], None);
        assert_eq!(output.status.code(), Some(74), "{what}: {}", text(&output));
        assert!(
            stderr(&output).contains("No space left on device"),
            "{what}: {}",
            text(&output)
        );
        let stored = store.messages();
        assert!(
            !stored.is_empty() && stored.len() < count as usize,
            "{what}: {} stored",
            stored.len()
        );
        for message in &stored {
            assert!(
                original.contains(message),
                "{what}: a partial message in view"
            );
        }
        assert_eq!(store.tmp_files(), 0, "{what}: nothing left in tmp/");
        assert_eq!(server(&lab, &account), original, "{what}: nothing deleted");
    }
}

/// The ids on the server (`list --json`), without fetching the messages.
fn server_ids(lab: &Lab, account: &Account) -> Vec<String> {
    let output = mailcat(lab, account, &["list", "--json"], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut ids: Vec<String> = rows
        .as_array()
        .expect("array")
        .iter()
        .map(|row| row["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Exit 74 means nothing was deleted in that run (README, exit codes): not the messages an
/// earlier run stored, nor those this run stored before the disk filled up (more than a commit
/// group of them: how many depends on how much of the disk the next batch's big messages,
/// downloading meanwhile, had taken).
#[test]
fn a_write_failure_deletes_nothing_in_that_run_not_even_what_was_stored() {
    let _guard = lock();
    let lab = Lab::from_env();
    for account in [carol(&lab), bob(&lab)] {
        let what = account.url.clone();
        let disk = SmallDisk::mount_sized("no-delete", "1m");
        let store = Store::Maildir(disk.0.join("Mail"));
        seed(&lab, &account, 3, 800, true, 1);
        let output = fetch(&lab, &account, &store, &[], None);
        assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
        // 70 small messages fit, then the 300 kB ones fill the 1 MiB disk.
        lab.seed(&account.user, 70, 800, false, false, 10);
        lab.seed(&account.user, 4, 300_000, false, false, 100);
        let before = server_ids(&lab, &account);
        assert_eq!(before.len(), 77, "{what}");

        let output = fetch(&lab, &account, &store, &["--delete"], None);
        assert_eq!(output.status.code(), Some(74), "{what}: {}", text(&output));
        assert!(
            stderr(&output).contains("No space left on device")
                && stderr(&output).contains("nothing was deleted on the server"),
            "{what}: {}",
            text(&output)
        );
        assert!(
            store.messages().len() > 3 + 16,
            "{what}: more than a commit group was stored: {}",
            store.messages().len()
        );
        assert_eq!(
            server_ids(&lab, &account),
            before,
            "{what}: nothing deleted"
        );
        drop(disk);
    }
}

/// The state saved at the end of the run fails (as on a full disk): exit 74, and nothing was
/// deleted, since deletions come only after it; the next run deletes once all is stored.
#[test]
fn a_state_that_cannot_be_saved_is_exit_74_and_nothing_is_deleted() {
    let _guard = lock();
    let lab = Lab::from_env();
    for account in [carol(&lab), bob(&lab)] {
        let what = account.url.clone();
        let (store, dir) = Store::fresh("maildir", "save-fails");
        let original = seed(&lab, &account, 3, 700, true, 1);
        let output = fetch(
            &lab,
            &account,
            &store,
            &["--delete"],
            Some("fail_save_state"),
        );
        assert_eq!(output.status.code(), Some(74), "{what}: {}", text(&output));
        assert!(
            stderr(&output).contains("nothing was deleted on the server"),
            "{what}: {}",
            text(&output)
        );
        assert_eq!(store.messages(), original, "{what}: stored");
        assert_eq!(server(&lab, &account), original, "{what}: nothing deleted");
        let output = fetch(&lab, &account, &store, &["--delete"], None);
        assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
        assert_eq!(store.messages(), original, "{what}: once");
        assert!(server(&lab, &account).is_empty(), "{what}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}

#[test]
fn an_unwritable_place_is_exit_74_and_nothing_is_deleted() {
    let _guard = lock();
    let lab = Lab::from_env();
    let (_, dir) = Store::fresh("file", "unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    for account in [carol(&lab), bob(&lab)] {
        let original = seed(&lab, &account, 2, 1000, true, 1);
        for store in [
            Store::Maildir(file.join("Mail")),
            Store::Mbox(file.join("inbox")),
        ] {
            let output = fetch(&lab, &account, &store, &["--delete"], None);
            assert_eq!(output.status.code(), Some(74), "{}", text(&output));
            assert!(
                stderr(&output).contains("Not a directory"),
                "{}",
                text(&output)
            );
        }
        assert_eq!(server(&lab, &account), original, "nothing deleted");
    }
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// Sends `signal` (`-TERM`, `-INT`, `-USR1`) to `child` with the shell's `kill` builtin (a
/// fresh Debian has no procps, so no /bin/kill).
fn send_signal(signal: &str, child: &std::process::Child) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill {signal} {}", child.id())])
        .status()
        .expect("sh runs");
    assert!(status.success(), "kill {signal} {}", child.id());
}

fn doveadm(args: &[&str]) -> String {
    let output = Command::new("doveadm")
        .args(["-c", &env("MAILCAT_LAB_DOVECOT_CONF")])
        .args(args)
        .output()
        .expect("doveadm runs");
    assert!(
        output.status.success(),
        "doveadm {args:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Gives `user`'s INBOX a new UIDVALIDITY (the old one plus `step`), as a server does when it
/// recreates a mailbox.
fn bump_uidvalidity(user: &str, step: u32) {
    let status = doveadm(&["mailbox", "status", "-u", user, "uidvalidity", "INBOX"]);
    let old: u32 = status
        .trim()
        .rsplit('=')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("doveadm said {status:?}"));
    let new = (old % 1_000_000_000 + step).to_string();
    doveadm(&[
        "mailbox",
        "update",
        "-u",
        user,
        "--uid-validity",
        &new,
        "INBOX",
    ]);
}

#[test]
fn a_new_uidvalidity_fetches_everything_again_and_deletes_nothing_by_old_uids() {
    let _guard = lock();
    let lab = Lab::from_env();
    let carol = carol(&lab);
    let (store, dir) = Store::fresh("maildir", "uidvalidity");
    let original = seed(&lab, &carol, 3, 1000, true, 1);
    let output = fetch(&lab, &carol, &store, &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    bump_uidvalidity(&carol.user, 1);

    // Killed at the first message: the recorded UIDs must not have been used to delete.
    let output = fetch(&lab, &carol, &store, &["--delete"], Some("after_retr@1"));
    assert_eq!(output.status.signal(), Some(6), "{}", text(&output));
    assert!(
        stderr(&output).contains("UIDVALIDITY changed"),
        "{}",
        text(&output)
    );
    assert_eq!(
        server(&lab, &carol),
        original,
        "nothing deleted by a stale UID"
    );

    let output = fetch(&lab, &carol, &store, &["--delete"], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        stderr(&output).contains("fetched 3 new"),
        "{}",
        text(&output)
    );
    assert!(server(&lab, &carol).is_empty());
    // Each message twice: under the old UIDVALIDITY they cannot be told apart from new mail.
    let mut twice: Vec<Vec<u8>> = original
        .iter()
        .flat_map(|m| [m.clone(), m.clone()])
        .collect();
    twice.sort();
    assert_eq!(store.messages(), twice);
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// Another client deletes a listed message while the run holds the list: IMAP finds the UID
/// gone; POP3 (Dovecot takes no exclusive maildrop lock) has its RETR refused with
/// "-ERR Message 2 expunged.". Either way that message is skipped and counted, the rest is
/// stored and deleted, and the run succeeds.
#[test]
fn a_message_deleted_by_another_client_after_the_list_is_skipped_not_fatal() {
    let _guard = lock();
    let lab = Lab::from_env();
    for account in [carol(&lab), bob(&lab)] {
        let what = &account.url;
        let (store, dir) = Store::fresh("maildir", "gone");
        let original = seed(&lab, &account, 3, 1200, true, 1);
        let to = store.arg();
        let mut child = command(&lab, &account, &["fetch", "--delete", "--to", &to], None)
            .env("MAILCAT_FAULT", needs_fault_injection("pause_after_list"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("mailcat runs");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut said = String::new();
        while !said.contains("paused at after_list") {
            let before = said.len();
            std::io::BufRead::read_line(&mut stderr, &mut said).expect("stderr");
            assert!(
                said.len() > before,
                "{what}: fetch ended before the pause: {said}"
            );
        }
        // Another client deletes the second message while the run holds the list.
        let uids = doveadm(&["search", "-u", &account.user, "mailbox", "INBOX", "ALL"]);
        let second = uids
            .lines()
            .nth(1)
            .expect("three messages")
            .split_whitespace()
            .nth(1)
            .expect("uid")
            .to_owned();
        doveadm(&[
            "expunge",
            "-u",
            &account.user,
            "mailbox",
            "INBOX",
            "uid",
            &second,
        ]);
        send_signal("-USR1", &child);
        let status = child.wait().expect("fetch ends");
        std::io::Read::read_to_string(&mut stderr, &mut said).expect("stderr");

        assert_eq!(status.code(), Some(0), "{what}: {said}");
        assert!(
            said.contains("1 deleted on the server by another client before they could be fetched"),
            "{what}: {said}"
        );
        let stored = store.messages();
        assert_eq!(stored.len(), 2, "{what}: {said}");
        assert_eq!(store.tmp_files(), 0, "{what}");
        assert!(stored.iter().all(|m| original.contains(m)), "{what}");
        assert!(
            server(&lab, &account).is_empty(),
            "{what}: the two stored ones were deleted"
        );
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}

/// IMAP downloads a whole batch before committing any of it: a signal while the second
/// message of the second batch waits to be committed gives up on the third one too (nothing
/// of them is left in tmp/), keeps the first batch, and deletes nothing.
#[test]
fn imap_signalled_mid_batch_removes_every_downloaded_file_and_deletes_nothing() {
    let _guard = lock();
    let lab = Lab::from_env();
    let carol = carol(&lab);
    let (store, dir) = Store::fresh("maildir", "imap-signal");
    let original = seed(&lab, &carol, 19, 2000, true, 1);
    let to = store.arg();
    let mut child = command(
        &lab,
        &carol,
        &["fetch", "--delete", "--to", &to],
        Some("stall_after_retr@18"),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("mailcat starts");
    let tap = StderrTap::new(&mut child);
    wait_for(
        "the first batch stored, three more downloaded",
        &mut child,
        || tap.contains("stalled at after_retr") && store.messages().len() == 16,
    );
    send_signal("-INT", &child);
    let output = tap.wait(child);
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert_eq!(
        store.tmp_files(),
        0,
        "every uncommitted download is removed"
    );
    let stored = store.messages();
    assert_eq!(stored.len(), 16);
    assert!(stored.iter().all(|m| original.contains(m)));
    assert_eq!(server(&lab, &carol), original, "nothing deleted");

    let output = fetch(&lab, &carol, &store, &["--delete"], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(store.messages(), original);
    assert!(server(&lab, &carol).is_empty());
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// More messages than one batch holds, killed in the second or third batch: the batches
/// before are stored once, nothing is lost, the rerun completes.
#[test]
fn killed_in_a_later_batch_then_rerun_every_message_is_there_once() {
    let _guard = lock();
    let lab = Lab::from_env();
    let (carol, bob) = (carol(&lab), bob(&lab));
    for (account, kind, fault) in [
        (&carol, "maildir", "after_rename_before_state@20"),
        (&carol, "mbox", "after_retr@33"),
        (&bob, "maildir", "after_retr@20"),
        (&bob, "mbox", "after_rename_before_state@18"),
    ] {
        // 40 messages of 600 bytes: batches of 16, so the first batch is stored.
        crash_then_rerun(&lab, account, (kind, fault), (40, 600), 16);
    }
}

/// The names in `dir` that a mail reader's folder list shows (no dot first).
fn visible_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// mutt's dot-lock on the mbox (an empty `FILE.lock`, as mutt's dotlock leaves it): the fetch
/// waits for it before appending; and only the mbox itself is in view beside it.
#[test]
fn an_mbox_waits_for_a_mail_readers_dot_lock_and_its_own_files_are_hidden() {
    let _guard = lock();
    let lab = Lab::from_env();
    let bob = bob(&lab);
    let (store, dir) = Store::fresh("mbox", "mutt-lock");
    let Store::Mbox(file) = &store else {
        unreachable!("an mbox")
    };
    let original = seed(&lab, &bob, 2, 1000, true, 1);
    let dotlock = dir.join("inbox.mbox.lock");
    std::fs::write(&dotlock, b"").expect("dot-lock");
    let to = store.arg();
    let mut child = command(&lab, &bob, &["fetch", "--to", &to], None)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailcat starts");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the fetch waits for the lock"
    );
    assert_eq!(
        std::fs::metadata(file).map_or(0, |m| m.len()),
        0,
        "nothing appended under another's lock"
    );
    std::fs::remove_file(&dotlock).expect("let go");
    let output = child.wait_with_output().expect("mailcat ends");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(store.messages(), original);
    assert!(!dotlock.exists(), "its own dot-lock is gone");
    assert_eq!(visible_files(&dir), ["inbox.mbox"], "state and lock hidden");

    // Ctrl-C while waiting for the lock stops the run at once, with nothing appended.
    let now = seed(&lab, &bob, 1, 1000, false, 10);
    let before = std::fs::read(file).expect("mbox");
    std::fs::write(&dotlock, b"").expect("dot-lock");
    let child = command(&lab, &bob, &["fetch", "--to", &to], None)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailcat starts");
    std::thread::sleep(Duration::from_secs(2));
    send_signal("-INT", &child);
    let sent = Instant::now();
    let output = child.wait_with_output().expect("mailcat ends");
    assert!(sent.elapsed() < Duration::from_secs(5), "stopped at once");
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert_eq!(
        std::fs::read(file).expect("mbox"),
        before,
        "nothing appended"
    );
    std::fs::remove_file(&dotlock).expect("let go");
    let output = fetch(&lab, &bob, &store, &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(store.messages(), now);
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// An older mailcat kept an mbox's state beside it in view: the next run moves it to the
/// hidden name and goes on from it (nothing fetched twice), and the old files are gone.
#[test]
fn an_mbox_state_where_an_older_mailcat_kept_it_is_moved_and_used() {
    let _guard = lock();
    let lab = Lab::from_env();
    let bob = bob(&lab);
    let (store, dir) = Store::fresh("mbox", "migrate");
    seed(&lab, &bob, 2, 1000, true, 1);
    let output = fetch(&lab, &bob, &store, &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    std::fs::rename(
        dir.join(".inbox.mbox.mailcat-state.json"),
        dir.join("inbox.mbox.mailcat-state.json"),
    )
    .expect("the state where an older mailcat kept it");
    std::fs::write(dir.join("inbox.mbox.mailcat.lock"), b"").expect("old lock");
    std::fs::write(dir.join("inbox.mbox.mailcat-spool"), b"debris").expect("old spool");

    let now = seed(&lab, &bob, 1, 1000, false, 10);
    let output = fetch(&lab, &bob, &store, &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        stderr(&output).contains("moved") && stderr(&output).contains("fetched 1 new message"),
        "{}",
        text(&output)
    );
    assert_eq!(store.messages(), now, "nothing twice");
    assert_eq!(visible_files(&dir), ["inbox.mbox"]);
    assert!(dir.join(".inbox.mbox.mailcat-state.json").exists());
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// `account` reached under another host name.
fn respelled(account: &Account, host: &str) -> Account {
    let (scheme, rest) = account.url.split_once("://").expect("a URL");
    let (_, port) = rest.rsplit_once(':').expect("a port");
    Account {
        user: account.user.clone(),
        password: account.password.clone(),
        url: format!("{scheme}://{host}:{port}"),
        pop3: account.pop3,
    }
}

/// `localhost` → `127.0.0.1` is the same server: nothing is fetched again. A mailbox that
/// is another one under a new name (its UIDVALIDITY changed meanwhile) gets its own record.
#[test]
fn another_name_of_the_same_server_fetches_nothing_twice_and_another_mailbox_is_told() {
    let _guard = lock();
    let lab = Lab::from_env();
    for account in [carol(&lab), bob(&lab)] {
        let what = account.url.clone();
        let (store, dir) = Store::fresh("maildir", "respelled");
        seed(&lab, &account, 2, 900, true, 1);
        let output = fetch(&lab, &account, &store, &[], None);
        assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));

        let numeric = respelled(&account, "127.0.0.1");
        let now = seed(&lab, &account, 1, 900, false, 10);
        let output = fetch(&lab, &numeric, &store, &[], None);
        assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
        assert!(
            stderr(&output).contains("127.0.0.1 is another name of localhost")
                && stderr(&output).contains("fetched 1 new message "),
            "{what}: {}",
            text(&output)
        );
        assert_eq!(store.messages(), now, "{what}: nothing twice");
        // And the record remembers the name: no note the next time.
        let output = fetch(&lab, &numeric, &store, &[], None);
        assert!(
            !stderr(&output).contains("another name") && stderr(&output).contains("fetched 0"),
            "{what}: {}",
            text(&output)
        );
        std::fs::remove_dir_all(dir).expect("clean up");
    }

    // IMAP: the mailbox recreated (a new UIDVALIDITY) and reached under a third name.
    let carol = carol(&lab);
    let (store, dir) = Store::fresh("maildir", "respelled-other");
    let original = seed(&lab, &carol, 2, 900, true, 1);
    let output = fetch(&lab, &carol, &store, &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    bump_uidvalidity(&carol.user, 7);
    let output = fetch(&lab, &respelled(&carol, "127.0.0.2"), &store, &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        stderr(&output).contains("127.0.0.2 is not the mailbox fetched from before as localhost")
            && stderr(&output).contains("fetched 2 new messages"),
        "{}",
        text(&output)
    );
    let mut twice: Vec<Vec<u8>> = original
        .iter()
        .flat_map(|m| [m.clone(), m.clone()])
        .collect();
    twice.sort();
    assert_eq!(store.messages(), twice, "a record of its own");
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// `fetch --json` names what it wrote, for indexers (notmuch): each Maildir file's path, or
/// each message's offset and length in the mbox; with the message's `id` (and IMAP `uid`).
#[test]
fn fetch_json_lists_each_file_or_mbox_range_it_wrote() {
    let _guard = lock();
    let lab = Lab::from_env();
    for (account, kind) in [(carol(&lab), "maildir"), (bob(&lab), "mbox")] {
        let what = format!("{} into {kind}", account.url);
        let (store, dir) = Store::fresh(kind, "json-files");
        seed(&lab, &account, 3, 1100, true, 1);
        let output = fetch(&lab, &account, &store, &["--json"], None);
        assert_eq!(output.status.code(), Some(0), "{what}: {}", text(&output));
        let summary: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON document");
        assert_eq!(summary["store"], kind, "{summary}");
        let messages = summary["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 3, "{summary}");
        let mut covered = 0;
        for m in messages {
            let id = m["id"].as_str().expect("id is a string");
            assert_eq!(m["size"], 1100, "{m}");
            match &store {
                Store::Maildir(root) => {
                    assert_eq!(
                        m["uid"].as_u64().map(|u| u.to_string()).as_deref(),
                        Some(id)
                    );
                    let path = PathBuf::from(m["path"].as_str().expect("path"));
                    assert!(path.starts_with(root.join("new")), "{m}");
                    assert!(path.is_file(), "{m}");
                }
                Store::Mbox(file) => {
                    assert!(m.get("uid").is_none(), "POP3 has no UID: {m}");
                    let text = std::fs::read(file).expect("mbox");
                    let (offset, length) = (
                        m["offset"].as_u64().expect("offset") as usize,
                        m["length"].as_u64().expect("length") as usize,
                    );
                    assert!(text[offset..].starts_with(b"From "), "{m}");
                    assert!(text[offset..offset + length].ends_with(b"\n\n"), "{m}");
                    covered += length;
                }
            }
        }
        if let Store::Mbox(file) = &store {
            assert_eq!(covered as u64, std::fs::metadata(file).expect("mbox").len());
        }
        // Nothing new: an empty list.
        let output = fetch(&lab, &account, &store, &["--json"], None);
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(summary["messages"], serde_json::json!([]), "{summary}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
