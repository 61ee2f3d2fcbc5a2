//! End-to-end bench: mailcat against the reference clients (Python's imaplib, poplib and
//! smtplib, curl) on the lab's real Dovecot and Postfix, in the same run, with ratios.
//!
//! ```sh
//! export MAILCAT_LAB_DIR=...   # when the lab is not in the checkout's default directory
//! eval "$(tests/lab/lab.sh env)"
//! cargo run --release -p mailcat-benches --bin e2e -- [--runs N]
//! ```
//!
//! It builds mailcat first (`cargo build --release -p mailcat`, a no-op when up to date) and
//! runs `$CARGO_TARGET_DIR/release/mailcat` (else `target/release/mailcat` in the workspace),
//! so the bench never measures a stale binary. It seeds `bench4k@` (500 × 4 KiB) and resets
//! `benchsmtp@` through `tests/lab/lab.sh seed`, so it needs root as `seed` does.
//!
//! The clients write their files under `$TMPDIR` (else `/tmp`); `TMPDIR=/dev/shm` takes the
//! disk out of the measurement (mailcat's fsyncs then cost nothing).
//!
//! Each client runs N times per job, the clients taking turns run by run; the table gives
//! the median wall time, the median peak RSS (when `/usr/bin/time` is there, Debian package
//! `time`) and the reference's time over mailcat's. Every run is checked (exit status, the
//! messages written or delivered); a failed run aborts the bench with the client's stderr.
//! This is a benchmark, not a test: nothing here asserts a speed.

use mailcat_benches::{build_mailcat, numeric_flag, workspace};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The mailbox the fetch jobs read, and what is seeded into it.
const FETCH_USER: &str = "bench4k@example.test";
const FETCH_COUNT: usize = 500;
const FETCH_SIZE: u64 = 4096;
/// The account that sends the big message, to itself; its mailbox is emptied after each run.
const SMTP_USER: &str = "benchsmtp@example.test";
const SMTP_SIZE: u64 = 50_000_000;
/// GNU time, for the peak RSS of a child (std has no getrusage and the workspace has no unsafe).
const TIME: &str = "/usr/bin/time";

type Result<T> = std::result::Result<T, String>;

const PY_IMAP: &str = r#"
import imaplib, os, ssl, sys
host, port, ca, user, out = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, os.environ["MAILCAT_PASSWORD"])
m.select("INBOX", readonly=True)
typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
assert typ == "OK", data
n = 0
for item in data:
    if isinstance(item, tuple):
        n += 1
        with open(os.path.join(out, f"{n}.eml"), "wb") as f:
            f.write(item[1])
m.logout()
"#;

const PY_POP3: &str = r#"
import os, poplib, ssl, sys
host, port, ca, user, out = sys.argv[1:]
p = poplib.POP3_SSL(host, int(port), context=ssl.create_default_context(cafile=ca))
p.user(user)
p.pass_(os.environ["MAILCAT_PASSWORD"])
for i in range(1, p.stat()[0] + 1):
    lines = p.retr(i)[1]
    with open(os.path.join(out, f"{i}.eml"), "wb") as f:
        f.write(b"\r\n".join(lines) + b"\r\n")
p.quit()
"#;

const PY_SMTP: &str = r#"
import os, smtplib, ssl, sys
host, port, ca, user, rcpt, path = sys.argv[1:]
with open(path, "rb") as f:
    data = f.read()
s = smtplib.SMTP(host, int(port))
s.starttls(context=ssl.create_default_context(cafile=ca))
s.login(user, os.environ["MAILCAT_PASSWORD"])
s.sendmail(user, [rcpt], data)
s.quit()
"#;

/// What the bench needs from `tests/lab/lab.sh env`.
#[derive(Debug)]
struct Lab {
    host: String,
    ca: String,
    imaps: String,
    pop3s: String,
    submission: String,
    password: String,
    dir: PathBuf,
}

impl Lab {
    fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                format!(
                    "{name} is not set: bring the lab up (`tests/lab/lab.sh up`, as root) and run \
                     `eval \"$(tests/lab/lab.sh env)\"` in this shell (with MAILCAT_LAB_DIR=DIR \
                     for a lab outside the checkout's default directory)"
                )
            })
        };
        Ok(Self {
            host: var("MAILCAT_LAB_TLS_NAME")?,
            ca: var("MAILCAT_LAB_CA_FILE")?,
            imaps: var("MAILCAT_LAB_IMAPS_PORT")?,
            pop3s: var("MAILCAT_LAB_POP3S_PORT")?,
            submission: var("MAILCAT_LAB_SUBMISSION_PORT")?,
            password: var("MAILCAT_LAB_BENCH_PASSWORD")?,
            dir: var("MAILCAT_LAB_DIR")?.into(),
        })
    }

    /// `tests/lab/lab.sh seed --user USER --count N --size SIZE --reset`.
    fn seed(&self, user: &str, count: usize, size: u64) -> Result<()> {
        let script = workspace().join("tests/lab/lab.sh");
        let (count, size) = (count.to_string(), size.to_string());
        let args = [
            "seed", "--user", user, "--count", &count, "--size", &size, "--reset",
        ];
        let out = Command::new(&script)
            .args(args)
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
        Ok(())
    }

    fn maildir(&self, user: &str) -> PathBuf {
        let (local, domain) = user.split_once('@').unwrap_or((user, ""));
        self.dir
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir")
    }
}

/// A client's command line for one run, given the fresh directory it may write into.
type Argv<'a> = Box<dyn Fn(&Path) -> Vec<OsString> + 'a>;
/// Checks one run's result, given that directory, and cleans up after the run.
type Check<'a> = Box<dyn Fn(&Path) -> Result<()> + 'a>;

/// One client in one job: how to run it, given the fresh directory it may write into.
struct Client<'a> {
    name: &'static str,
    note: &'static str,
    argv: Argv<'a>,
}

/// A job: its clients, the file each reads on stdin, and the check run after every run.
struct Job<'a> {
    title: &'static str,
    clients: Vec<Client<'a>>,
    stdin: Option<&'a Path>,
    check: Check<'a>,
}

/// One line of the table.
#[derive(Debug)]
struct Row {
    job: &'static str,
    client: &'static str,
    note: &'static str,
    time: Duration,
    rss_kib: Option<u64>,
}

/// The benchmark settings shared by every job.
#[derive(Debug)]
struct Bench {
    lab: Lab,
    mailcat: PathBuf,
    python: PathBuf,
    runs: usize,
    scratch: Scratch,
    time: bool,
}

/// The directory of the clients' files and the big message, deleted at the end, even on error.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Bench {
    /// Runs every client of `job` `runs` times, taking turns, and returns one row per client.
    fn run(&self, job: &Job<'_>) -> Result<Vec<Row>> {
        let mut samples: Vec<Vec<(Duration, Option<u64>)>> = vec![Vec::new(); job.clients.len()];
        for run in 1..=self.runs {
            for (client, samples) in job.clients.iter().zip(&mut samples) {
                eprintln!("{}: {} run {run}/{}", job.title, client.name, self.runs);
                samples.push(self.run_once(job, client, run)?);
            }
        }
        Ok(job
            .clients
            .iter()
            .zip(samples)
            .map(|(client, samples)| Row {
                job: job.title,
                client: client.name,
                note: client.note,
                time: median(samples.iter().map(|s| s.0).collect()),
                rss_kib: samples
                    .iter()
                    .map(|s| s.1)
                    .collect::<Option<_>>()
                    .map(median),
            })
            .collect())
    }

    fn run_once(
        &self,
        job: &Job<'_>,
        client: &Client<'_>,
        run: usize,
    ) -> Result<(Duration, Option<u64>)> {
        let out = self.scratch.0.join(format!("{}-{run}", client.name));
        fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let rss_file = self.scratch.0.join("rss");
        let argv = (client.argv)(&out);
        let mut cmd = if self.time {
            let mut cmd = Command::new(TIME);
            cmd.args(["-f", "%M", "-o"]).arg(&rss_file).args(&argv);
            cmd
        } else {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        };
        cmd.env("MAILCAT_PASSWORD", &self.lab.password)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match job.stdin {
            Some(path) => {
                cmd.stdin(fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
            None => cmd.stdin(Stdio::null()),
        };
        // Each run starts with nothing left for the disk to write: no client pays for the files
        // (or the deletions) of the one before.
        Command::new("sync")
            .status()
            .map_err(|e| format!("sync: {e}"))?;
        let start = Instant::now();
        let output = cmd
            .output()
            .map_err(|e| format!("{}: {e}", argv[0].to_string_lossy()))?;
        let time = start.elapsed();
        let failed = |why: String| {
            format!(
                "{}: {} failed in run {run}: {why}\ncommand: {}\nstderr:\n{}",
                job.title,
                client.name,
                argv.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                String::from_utf8_lossy(&output.stderr)
            )
        };
        if !output.status.success() {
            return Err(failed(output.status.to_string()));
        }
        (job.check)(&out).map_err(failed)?;
        fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let rss_kib = match self.time {
            true => Some(read_rss(&rss_file)?),
            false => None,
        };
        Ok((time, rss_kib))
    }

    fn mailcat(&self, user: &str, args: &[&str]) -> Vec<OsString> {
        let mut argv = vec![self.mailcat.clone().into_os_string()];
        argv.extend(["-q", "--ca-file", &self.lab.ca, "--email", user].map(OsString::from));
        argv.extend(args.iter().map(OsString::from));
        argv
    }

    fn python(&self, script: &str, args: &[&str]) -> Vec<OsString> {
        let mut argv = vec![
            self.python.clone().into_os_string(),
            "-c".into(),
            script.into(),
        ];
        argv.extend(args.iter().map(OsString::from));
        argv
    }

    fn curl(&self, user: &str, args: &[&str]) -> Vec<OsString> {
        let login = format!("{user}:{}", self.lab.password);
        let argv = ["curl", "-sS", "--cacert", &self.lab.ca, "-u", &login];
        argv.iter().chain(args).map(OsString::from).collect()
    }

    /// Download the seeded mailbox over IMAPS (`imap`) or POP3S: every client writes each
    /// message into a file of its own in a fresh directory.
    fn fetch(&self, title: &'static str, imap: bool) -> Result<Vec<Row>> {
        let host = &self.lab.host;
        let (port, scheme, python, curl_path) = match imap {
            true => (&self.lab.imaps, "imaps", PY_IMAP, "INBOX;MAILINDEX="),
            false => (&self.lab.pop3s, "pop3s", PY_POP3, ""),
        };
        let server = format!("{scheme}://{host}:{port}");
        let curl_url = format!("{server}/{curl_path}[1-{FETCH_COUNT}]");
        let bench = self;
        let clients = vec![
            Client {
                name: "mailcat",
                note: "`fetch` into a Maildir, fsync per message",
                argv: Box::new(move |out| {
                    let to = format!("maildir:{}", out.display());
                    bench.mailcat(FETCH_USER, &["--incoming", &server, "fetch", "--to", &to])
                }),
            },
            Client {
                name: "python",
                note: if imap {
                    "imaplib, one `UID FETCH 1:*`, no fsync"
                } else {
                    "poplib, RETR each, no fsync"
                },
                argv: Box::new(move |out| {
                    bench.python(
                        python,
                        &[
                            host,
                            port,
                            &bench.lab.ca,
                            FETCH_USER,
                            &out.to_string_lossy(),
                        ],
                    )
                }),
            },
            Client {
                name: "curl",
                note: "one invocation, URLs `…[1-500]` on one connection, no fsync",
                argv: Box::new(move |out| {
                    bench.curl(
                        FETCH_USER,
                        &[
                            &curl_url,
                            "--output-dir",
                            &out.to_string_lossy(),
                            "-o",
                            "#1.eml",
                        ],
                    )
                }),
            },
        ];
        let check = |out: &Path| {
            let found = messages(out)?;
            // mailcat's Maildir files have LF line ends: count them as the server sent them.
            let short = |p: &&PathBuf| crlf_size(p).map_or(true, |n| n < FETCH_SIZE);
            match (found.len(), found.iter().filter(short).count()) {
                (FETCH_COUNT, 0) => Ok(()),
                (n, short) => Err(format!(
                    "{n} messages written ({short} under {FETCH_SIZE} bytes), expected {FETCH_COUNT}"
                )),
            }
        };
        let job = Job {
            title,
            clients,
            stdin: None,
            check: Box::new(check),
        };
        self.run(&job)
    }

    /// Send one big message through the submission port (STARTTLS); each run waits for its
    /// delivery into the recipient's Maildir, then empties the mailbox.
    fn send(&self, title: &'static str) -> Result<Vec<Row>> {
        let message = self.scratch.0.join("message.eml");
        write_message(&message, SMTP_SIZE)?;
        self.lab.seed(SMTP_USER, 0, 1)?;
        let (host, port) = (&self.lab.host, &self.lab.submission);
        let server = format!("smtp://{host}:{port}");
        let path = message.to_string_lossy().into_owned();
        let bench = self;
        let clients = vec![
            Client {
                name: "mailcat",
                note: "`send`, the file on stdin",
                argv: Box::new(|_| {
                    bench.mailcat(SMTP_USER, &["--outgoing", &server, "send", SMTP_USER])
                }),
            },
            Client {
                name: "python",
                note: "smtplib, reads the file, `sendmail`",
                argv: Box::new(|_| {
                    bench.python(
                        PY_SMTP,
                        &[host, port, &bench.lab.ca, SMTP_USER, SMTP_USER, &path],
                    )
                }),
            },
            Client {
                name: "curl",
                note: "`--upload-file`",
                argv: Box::new(|_| {
                    let args = [
                        "--ssl-reqd",
                        "--mail-from",
                        SMTP_USER,
                        "--mail-rcpt",
                        SMTP_USER,
                    ];
                    bench.curl(
                        SMTP_USER,
                        &[&args[..], &["--upload-file", &path, &server]].concat(),
                    )
                }),
            },
        ];
        let maildir = self.lab.maildir(SMTP_USER);
        let check = |_: &Path| {
            let delivered = crlf_size(&wait_for_delivery(&maildir, Duration::from_secs(120))?)?;
            self.lab.seed(SMTP_USER, 0, 1)?;
            match delivered >= SMTP_SIZE {
                true => Ok(()),
                false => Err(format!(
                    "delivered {delivered} bytes, expected at least {SMTP_SIZE}"
                )),
            }
        };
        let job = Job {
            title,
            clients,
            stdin: Some(&message),
            check: Box::new(check),
        };
        self.run(&job)
    }
}

fn median<T: Ord + Copy>(mut samples: Vec<T>) -> T {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The messages in `dir`: a Maildir's `new/` and `cur/`, else the directory's files (none
/// starting with a dot).
fn messages(dir: &Path) -> Result<Vec<PathBuf>> {
    let dirs = match dir.join("new").is_dir() {
        true => vec![dir.join("new"), dir.join("cur")],
        false => vec![dir.to_path_buf()],
    };
    let mut found = Vec::new();
    for dir in &dirs {
        let error = |e: std::io::Error| format!("{}: {e}", dir.display());
        for entry in fs::read_dir(dir).map_err(error)? {
            let entry = entry.map_err(error)?;
            if entry.file_type().map_err(error)?.is_file()
                && !entry.file_name().to_string_lossy().starts_with('.')
            {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

/// The size of a message with CRLF line ends (Dovecot stores LF).
fn crlf_size(path: &Path) -> Result<u64> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bare_lf = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
    Ok((bytes.len() + bare_lf.count()) as u64)
}

/// Waits until one message is in `maildir` and returns it.
fn wait_for_delivery(maildir: &Path, limit: Duration) -> Result<PathBuf> {
    let start = Instant::now();
    loop {
        let mut found = messages(maildir)?;
        match found.len() {
            0 if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            0 => {
                return Err(format!(
                    "nothing delivered into {} in {limit:?}",
                    maildir.display()
                ))
            }
            1 => return Ok(found.swap_remove(0)),
            n => return Err(format!("{n} messages in {}, expected 1", maildir.display())),
        }
    }
}

/// A message of exactly `size` bytes: headers, then base64-like lines of 76 characters (CRLF).
fn write_message(path: &Path, size: u64) -> Result<()> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let head = format!(
        "From: <{SMTP_USER}>\r\nTo: <{SMTP_USER}>\r\nSubject: mailcat e2e bench, {size} bytes\r\n\
         Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <e2e-bench@example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    );
    let write = || -> std::io::Result<()> {
        let mut file = BufWriter::new(fs::File::create(path)?);
        file.write_all(head.as_bytes())?;
        let (mut left, mut state) = (size - head.len() as u64, 0x2545_f491_4f6c_dd1d_u64);
        let mut line = [0u8; 78];
        while left > 0 {
            for byte in &mut line[..76] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = ALPHABET[(state % 64) as usize];
            }
            let len = left.min(78) as usize;
            line[len.saturating_sub(2)..len].copy_from_slice(&b"\r\n"[..len.min(2)]);
            file.write_all(&line[..len])?;
            left -= len as u64;
        }
        file.into_inner()?.sync_all()
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
}

fn read_rss(path: &Path) -> Result<u64> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let last = text.lines().last().unwrap_or_default().trim();
    last.parse()
        .map_err(|_| format!("{TIME} wrote {text:?}, not a size in KiB"))
}

/// `PROGRAM --version`, its first two words ("curl 7.88.1"), for the table's footer.
fn version(program: &std::ffi::OsStr) -> String {
    let out = Command::new(program).arg("--version").output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let words: Vec<_> = text
        .as_deref()
        .unwrap_or("?")
        .split_whitespace()
        .take(2)
        .map(String::from)
        .collect();
    words.join(" ")
}

fn table(bench: &Bench, rows: &[Row]) -> String {
    let mut out = String::from(
        "| job | client | how | median time | ratio to mailcat | peak RSS (median) |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let mailcat = rows
            .iter()
            .find(|r| r.job == row.job && r.client == "mailcat");
        let ratio = mailcat.map_or(f64::NAN, |m| row.time.as_secs_f64() / m.time.as_secs_f64());
        let rss = row
            .rss_kib
            .map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        let time = row.time.as_secs_f64();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {time:.2} s | {ratio:.2}× | {rss} |",
            row.job, row.client, row.note
        );
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .unwrap_or(": unknown");
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = write!(
        out,
        "\nRatio: the client's median time over mailcat's (above 1: mailcat is faster); {} runs \
         per client, taking turns, `sync` before each; peak RSS by `{TIME} -f %M`. Machine: {cpus} CPUs ({}), Linux \
         {}; files written under {}. Clients: {}, {}, {}.\n\
         Reproduce: `eval \"$(tests/lab/lab.sh env)\" && {}cargo run --release -p mailcat-benches --bin e2e -- --runs {}`\n",
        bench.runs,
        model.trim_start_matches([' ', '\t', ':']),
        kernel.trim(),
        std::env::temp_dir().display(),
        version(bench.mailcat.as_os_str()),
        version(bench.python.as_os_str()),
        version("curl".as_ref()),
        std::env::var("TMPDIR").map_or(String::new(), |dir| format!("TMPDIR={dir} ")),
        bench.runs,
    );
    out
}

fn parse_runs() -> Result<usize> {
    let n = numeric_flag(
        "--runs",
        5,
        1,
        "usage: e2e [--runs N]   (N >= 1, default 5)",
    )?;
    usize::try_from(n).map_err(|e| e.to_string())
}

fn main_inner() -> Result<()> {
    let runs = parse_runs()?;
    let lab = Lab::from_env()?;
    let mailcat = build_mailcat()?;
    let scratch = Scratch(std::env::temp_dir().join(format!("mailcat-e2e-{}", std::process::id())));
    fs::create_dir_all(&scratch.0).map_err(|e| format!("{}: {e}", scratch.0.display()))?;
    // Debian's interpreter, as the lab uses: a pyenv or venv shim on PATH adds its own start-up.
    let python = Path::new("/usr/bin/python3");
    let python = if python.exists() {
        python.into()
    } else {
        PathBuf::from("python3")
    };
    let time = Path::new(TIME).exists();
    if !time {
        eprintln!("{TIME} not found (Debian package `time`): no memory column");
    }
    let bench = Bench {
        lab,
        mailcat,
        python,
        runs,
        scratch,
        time,
    };
    bench.lab.seed(FETCH_USER, FETCH_COUNT, FETCH_SIZE)?;
    let mut rows = bench.fetch("IMAPS: 500 × 4 KiB into files", true)?;
    rows.extend(bench.fetch("POP3S: 500 × 4 KiB into files", false)?);
    rows.extend(bench.send("SMTP STARTTLS: send one 50 MB message")?);
    print!("{}", table(&bench, &rows));
    Ok(())
}

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("e2e: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_has_the_size_asked_for_and_ends_in_crlf() {
        let dir = std::env::temp_dir().join(format!("mailcat-e2e-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for size in [400, 401, 1000, 100_000] {
            let path = dir.join("m.eml");
            write_message(&path, size).unwrap();
            let bytes = fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, size);
            assert!(bytes.ends_with(b"\r\n"), "{size}");
            assert_eq!(crlf_size(&path).unwrap(), size);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crlf_size_counts_bare_line_feeds_twice() {
        let path = std::env::temp_dir().join(format!("mailcat-e2e-lf-{}", std::process::id()));
        fs::write(&path, b"a\nb\r\n\n").unwrap();
        assert_eq!(crlf_size(&path).unwrap(), 8);
        fs::remove_file(&path).unwrap();
    }
}
