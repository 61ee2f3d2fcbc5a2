//! Big-mailbox bench: `mailcat list` and a `mailcat fetch` that finds nothing new, over IMAPS
//! and POP3S, on a mailbox of a million messages in the lab (`bench1m@`), with wall time and
//! peak RSS.
//!
//! ```sh
//! eval "$(tests/lab/lab.sh env)"
//! cargo run --release -p mailcat-benches --bin big_mailbox -- [--count N]
//! ```
//!
//! It builds mailcat (`cargo build --release -p mailcat`) and runs the release binary. The
//! mailbox is seeded through the Maildir (`tests/lab/lab.sh seed --via maildir`, root as
//! `seed` needs): first one message, which a real `mailcat fetch` stores, then the other
//! N - 1 under the same UIDVALIDITY. The fetch record then says the first UID was fetched; the
//! bench widens it to all N, which is exactly what a first fetch of all N messages leaves (a first
//! fetch of a million messages would take the better part of an hour of fsyncs), so the next
//! `fetch` has nothing new to do. POP3 the same, in a store of its own: the first message is
//! fetched over POP3S, and its record widened to the UIDLs of all N (the lab's Dovecot makes
//! them from UID and UIDVALIDITY, `pop3_uidl_format = %08Xu%08Xv`; the one fetched for real
//! checks the format). Each job runs once (the mailbox is too big to repeat
//! cheaply); every run is checked (exit status, what it printed). Peak RSS needs
//! `/usr/bin/time` (Debian package `time`). This is a benchmark, not a test: nothing here
//! asserts a speed.
//!
//! `MAILCAT_BENCH_BASELINE=PATH` also runs the quick jobs (all but the full `list`) with the
//! mailcat binary at PATH (an older build, copied aside), each right after this build's run,
//! on the same seeded mailbox: a before/after comparison without seeding a million messages
//! twice.

use mailcat_benches::{build_mailcat, numeric_flag, workspace};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "bench1m@example.test";
const SIZE: u64 = 600;
const TIME: &str = "/usr/bin/time";

type Result<T> = std::result::Result<T, String>;

fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        format!(
            "{name} is not set: bring the lab up (`tests/lab/lab.sh up`, as root) and run \
             `eval \"$(tests/lab/lab.sh env)\"` in this shell"
        )
    })
}

/// `tests/lab/lab.sh seed --user bench1m@ --count N --size 600 --via maildir ...`.
fn seed(count: u64, extra: &[&str]) -> Result<Duration> {
    let script = workspace().join("tests/lab/lab.sh");
    let count = count.to_string();
    let size = SIZE.to_string();
    let mut args = vec![
        "seed", "--user", USER, "--count", &count, "--size", &size, "--via", "maildir",
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = Command::new(&script)
        .args(&args)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "lab.sh {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(started.elapsed())
}

/// One measured run.
struct Run {
    time: Duration,
    rss_kib: Option<u64>,
    stdout: Vec<u8>,
    stderr: String,
}

struct Bench {
    mailcat: PathBuf,
    ca: String,
    imaps: String,
    pop3s: String,
    host: String,
    password: String,
    scratch: PathBuf,
}

impl Bench {
    /// Runs mailcat with `args` (then the account options), under `/usr/bin/time` when it is
    /// there; fails unless it exits 0.
    fn run(&self, pop3: bool, args: &[&str]) -> Result<Run> {
        self.run_binary(&self.mailcat, pop3, args)
    }

    /// [`Bench::run`] with the mailcat binary at `mailcat`.
    fn run_binary(&self, mailcat: &Path, pop3: bool, args: &[&str]) -> Result<Run> {
        let url = if pop3 {
            format!("pop3s://{}:{}", self.host, self.pop3s)
        } else {
            format!("imaps://{}:{}", self.host, self.imaps)
        };
        let rss_file = self.scratch.join("rss");
        let time = Path::new(TIME).exists();
        let mut command = if time {
            let mut c = Command::new(TIME);
            c.args(["-f", "%M", "-o"]).arg(&rss_file).arg(mailcat);
            c
        } else {
            Command::new(mailcat)
        };
        command
            .args(args)
            .args(["--email", USER, "--incoming", &url, "--ca-file", &self.ca])
            .env("MAILCAT_PASSWORD", &self.password)
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        let started = Instant::now();
        let out = command
            .output()
            .map_err(|e| format!("{}: {e}", mailcat.display()))?;
        let time_taken = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(format!(
                "mailcat {}: {}\n{stderr}",
                args.join(" "),
                out.status
            ));
        }
        let rss_kib = fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
        Ok(Run {
            time: time_taken,
            rss_kib,
            stdout: out.stdout,
            stderr,
        })
    }
}

fn row(job: &str, run: &Run) -> String {
    let rss = run
        .rss_kib
        .map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    format!("| {job} | {:.2} s | {rss} |", run.time.as_secs_f64())
}

fn parse_count() -> Result<u64> {
    let n = numeric_flag(
        "--count",
        1_000_000,
        2,
        "usage: big_mailbox [--count N]   (N >= 2, default 1000000)",
    )?;
    Ok(n)
}

fn main_inner() -> Result<()> {
    let count = parse_count()?;
    let mailcat = build_mailcat()?;
    let scratch = std::env::temp_dir().join(format!("mailcat-big-bench-{}", std::process::id()));
    fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let bench = Bench {
        mailcat,
        ca: var("MAILCAT_LAB_CA_FILE")?,
        imaps: var("MAILCAT_LAB_IMAPS_PORT")?,
        pop3s: var("MAILCAT_LAB_POP3S_PORT")?,
        host: var("MAILCAT_LAB_TLS_NAME")?,
        password: var("MAILCAT_LAB_BENCH_PASSWORD")?,
        scratch: scratch.clone(),
    };
    let store = scratch.join("Mail");
    let to = format!("maildir:{}", store.display());
    let pop3_store = scratch.join("Mail-pop3");
    let pop3_to = format!("maildir:{}", pop3_store.display());

    // One message, fetched for real: the record has the mailbox's key and UIDVALIDITY.
    seed(1, &["--reset"])?;
    for (pop3, to) in [(false, &to), (true, &pop3_to)] {
        let first = bench.run(pop3, &["fetch", "--to", to])?;
        if !first.stderr.contains("fetched 1 new message")
            && !String::from_utf8_lossy(&first.stdout).contains("fetched 1 new message")
        {
            return Err(format!(
                "the first fetch did not store one message: {}",
                first.stderr
            ));
        }
    }
    let seeding = seed(count - 1, &["--start-index", "2"])?;
    eprintln!(
        "big_mailbox: seeded {count} messages in {:.1} s",
        seeding.as_secs_f64()
    );
    let state_path = store.join(".mailcat-state.json");
    let state =
        fs::read_to_string(&state_path).map_err(|e| format!("{}: {e}", state_path.display()))?;
    // The first UID is where the mailbox's earlier UIDs ended (`--reset` keeps UIDNEXT).
    let key = "\"fetched_uids\": \"";
    let first: u64 = state
        .split(key)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| format!("no single fetched UID in {}: {state}", state_path.display()))?;
    let widened = state.replace(
        &format!("{key}{first}\""),
        &format!("{key}{first}:{}\"", first + count - 1),
    );
    fs::write(&state_path, widened).map_err(|e| format!("{}: {e}", state_path.display()))?;
    let uidvalidity: u32 = state
        .split("\"uidvalidity\": ")
        .nth(1)
        .and_then(|rest| rest.split([',', '\n']).next())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no UIDVALIDITY in {}: {state}", state_path.display()))?;
    widen_pop3_record(&pop3_store, first, count, uidvalidity)?;

    let mut rows = Vec::new();
    // The first list after seeding also makes Dovecot index the mailbox: not mailcat's time.
    let warm = bench.run(false, &["list", "--limit", "1"])?;
    eprintln!(
        "big_mailbox: Dovecot indexed the mailbox in {:.1} s",
        warm.time.as_secs_f64()
    );

    let list = bench.run(false, &["list"])?;
    let lines = list.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    if lines != count {
        return Err(format!(
            "list printed {lines} lines, not {count}: {}",
            list.stderr
        ));
    }
    rows.push(row(
        &format!("IMAPS `list` ({count} lines, with Date/From/Subject)"),
        &list,
    ));

    let baseline = std::env::var_os("MAILCAT_BENCH_BASELINE").map(PathBuf::from);
    let nothing_new = |run: &Run| {
        let said = format!("{}{}", String::from_utf8_lossy(&run.stdout), run.stderr);
        if said.contains("fetched 0 new messages") {
            Ok(())
        } else {
            Err(format!("the fetch found something new: {said}"))
        }
    };
    let twenty_lines = |run: &Run| {
        let lines = run.stdout.iter().filter(|&&b| b == b'\n').count();
        if lines == 20 {
            Ok(())
        } else {
            Err(format!(
                "list --limit 20 printed {lines} lines: {}",
                run.stderr
            ))
        }
    };
    type Check<'a> = &'a dyn Fn(&Run) -> Result<()>;
    let jobs: [(&str, bool, Vec<&str>, Check<'_>); 4] = [
        (
            "IMAPS `list --limit 20`",
            false,
            vec!["list", "--limit", "20"],
            &twenty_lines,
        ),
        (
            "IMAPS `fetch`, nothing new",
            false,
            vec!["fetch", "--to", &to],
            &nothing_new,
        ),
        (
            "POP3S `list --limit 20`",
            true,
            vec!["list", "--limit", "20"],
            &twenty_lines,
        ),
        (
            "POP3S `fetch`, nothing new",
            true,
            vec!["fetch", "--to", &pop3_to],
            &nothing_new,
        ),
    ];
    for (job, pop3, args, check) in jobs {
        let run = bench.run(pop3, &args)?;
        check(&run)?;
        rows.push(row(job, &run));
        if let Some(binary) = &baseline {
            let run = bench.run_binary(binary, pop3, &args)?;
            check(&run)?;
            rows.push(row(&format!("{job} — baseline build"), &run));
        }
    }

    println!("| job ({count} messages of {SIZE} B) | time | peak RSS |");
    println!("|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nOne run each, release build, lab Dovecot on loopback, {cpus} CPUs. Reproduce: \
         `eval \"$(tests/lab/lab.sh env)\" && cargo run --release -p mailcat-benches --bin big_mailbox -- --count {count}`"
    );
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}

/// Widens the POP3 record of the store at `store` from the one UIDL fetched for real (UID
/// `first`) to the UIDLs of all `count` messages, as the lab's Dovecot makes them
/// (`%08Xu%08Xv`): what a first fetch of every message leaves.
fn widen_pop3_record(store: &Path, first: u64, count: u64, uidvalidity: u32) -> Result<()> {
    let path = store.join(".mailcat-state.json");
    let state = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = "\"fetched\": [";
    let start = state
        .find(key)
        .map(|at| at + key.len())
        .ok_or_else(|| format!("no POP3 record in {}: {state}", path.display()))?;
    let end = start
        + state[start..]
            .find(']')
            .ok_or_else(|| format!("{} is cut short", path.display()))?;
    let recorded = state[start..end].trim();
    // Dovecot writes `%X` in lower case; either case is taken, as long as it is this UIDL.
    let lower = recorded == format!("\"{first:08x}{uidvalidity:08x}\"");
    if !lower && recorded != format!("\"{first:08X}{uidvalidity:08X}\"") {
        return Err(format!(
            "the POP3 record holds {recorded}, not the one UIDL {first:08x}{uidvalidity:08x} \
             expected from pop3_uidl_format = %08Xu%08Xv"
        ));
    }
    let uidl = |uid: u64| {
        if lower {
            format!("{uid:08x}{uidvalidity:08x}")
        } else {
            format!("{uid:08X}{uidvalidity:08X}")
        }
    };
    let mut all = String::with_capacity(count as usize * 20);
    for uid in first..first + count {
        if uid > first {
            all.push(',');
        }
        all.push('"');
        all.push_str(&uidl(uid));
        all.push('"');
    }
    let widened = format!("{}{all}{}", &state[..start], &state[end..]);
    fs::write(&path, widened).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("big_mailbox: {e}");
        std::process::exit(1);
    }
}
