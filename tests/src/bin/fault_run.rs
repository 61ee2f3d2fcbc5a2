//! The fault run: randomly chosen faults, injected by a proxy between mailcat and the lab's
//! Dovecot and Postfix, across `mailcat fetch` (IMAP and POP3, implicit TLS and STARTTLS,
//! Maildir and mbox, with and without `--delete`), `mailcat send` and the library's sync
//! (`mailcat_session::sync`), each followed by a clean re-run; invariants checked after every
//! fault. Seeded: `--seed N --faults N` plans the same faults again.
//!
//! ```text
//! eval "$(tests/lab/lab.sh env)"
//! cargo build -p mailcat && cargo run -p mailcat-tests --bin fault_run -- --seed 1 --faults 100
//! ```
//!
//! See tests/README.md ("The fault run") for what is checked and how to read a violation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mailcat_session::store::{FetchState, Mbox, Source, StoreLock};
use mailcat_session::sync::{MaildirStore, MboxStore, StopReason, Sync};
use mailcat_session::{Account, Credential};
use mailcat_tests::fault::proxy::{Direction, Fault, FaultProxy, Report};
use mailcat_tests::fault::rng::Rng;
use mailcat_tests::lab::Lab;
use mailcat_transport::{Endpoint, Timeouts, TlsSettings};

/// Exit codes a network fault may end `fetch` and `send` with (crates/mailcat/src/exit.rs):
/// success (the fault came too late to matter), 69 (connection, TLS or protocol failure) and
/// 75 (a timeout; a temporary failure).
const FAULT_EXITS: [i32; 3] = [0, 69, 75];
/// How long past the configured timeout a run may go on after its fault before it counts as
/// a hang (the machine is shared and slow; a hang is much longer).
const MARGIN: Duration = Duration::from_secs(3);
/// A run still going after this long is killed and counted as a hang.
const KILL_AFTER: Duration = Duration::from_secs(60);
/// The timeout of the clean re-runs, which only have to succeed.
const CLEAN_TIMEOUT: f64 = 30.0;

// ------------------------------------------------------------------------------ arguments

#[derive(Debug)]
struct Args {
    seed: u64,
    faults: u64,
    start: u64,
    mailcat: PathBuf,
    timeout: f64,
    work: Option<PathBuf>,
    verbose: bool,
    /// Run the faulted mailcat with `-v` and print its stderr (the protocol trace).
    trace: bool,
}

const USAGE: &str = "usage: fault_run [--seed N] [--faults N] [--start I] [--timeout SECS] \
[--mailcat PATH] [--work DIR] [-v]
  --seed N       the seed (default: from the clock; printed, so the run can be repeated)
  --faults N     how many faults to plan (default 100)
  --start I      skip the first I planned faults (replay one: --start I --faults 1)
  --timeout S    mailcat's --timeout for the faulted runs (default 2)
  --mailcat P    the mailcat binary (default: beside this one; build it first)
  --work DIR     scratch directory (default: a new one under $TMPDIR)
  -v             one line per fault
  --trace        mailcat -v in the faulted runs, its trace printed (to replay one fault)";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(1),
        faults: 100,
        start: 0,
        mailcat: std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("mailcat"),
        timeout: 2.0,
        work: None,
        verbose: false,
        trace: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?;
            }
            "--faults" => {
                args.faults = value("--faults")?
                    .parse()
                    .map_err(|e| format!("--faults: {e}"))?;
            }
            "--start" => {
                args.start = value("--start")?
                    .parse()
                    .map_err(|e| format!("--start: {e}"))?;
            }
            "--timeout" => {
                args.timeout = value("--timeout")?
                    .parse()
                    .map_err(|e| format!("--timeout: {e}"))?;
            }
            "--mailcat" => args.mailcat = PathBuf::from(value("--mailcat")?),
            "--work" => args.work = Some(PathBuf::from(value("--work")?)),
            "-v" | "--verbose" => args.verbose = true,
            "--trace" => args.trace = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

// ------------------------------------------------------------------------------ the plan

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Imap,
    Pop3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StoreKind {
    Maildir,
    Mbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tls {
    Implicit,
    StartTls,
}

/// What runs through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    /// `mailcat fetch`.
    Fetch {
        proto: Proto,
        tls: Tls,
        store: StoreKind,
        delete: bool,
    },
    /// `mailcat_session::sync::Sync` in this process (implicit TLS).
    Sync {
        proto: Proto,
        store: StoreKind,
        delete: bool,
    },
    /// `mailcat send`.
    Send { tls: Tls },
}

impl Scenario {
    fn name(&self) -> String {
        let tls = |t: &Tls| match t {
            Tls::Implicit => "tls",
            Tls::StartTls => "starttls",
        };
        let store = |s: &StoreKind| match s {
            StoreKind::Maildir => "maildir",
            StoreKind::Mbox => "mbox",
        };
        let proto = |p: &Proto| match p {
            Proto::Imap => "imap",
            Proto::Pop3 => "pop3",
        };
        match self {
            Self::Fetch {
                proto: p,
                tls: t,
                store: s,
                delete,
            } => format!(
                "fetch {} {} {}{}",
                proto(p),
                tls(t),
                store(s),
                if *delete { " --delete" } else { "" }
            ),
            Self::Sync {
                proto: p,
                store: s,
                delete,
            } => format!(
                "sync {} {}{}",
                proto(p),
                store(s),
                if *delete { " delete" } else { "" }
            ),
            Self::Send { tls: t } => format!("send {}", tls(t)),
        }
    }

    /// The short name the summary groups by.
    fn group(&self) -> &'static str {
        match self {
            Self::Fetch {
                proto: Proto::Imap, ..
            } => "fetch imap",
            Self::Fetch {
                proto: Proto::Pop3, ..
            } => "fetch pop3",
            Self::Sync {
                proto: Proto::Imap, ..
            } => "sync imap (library)",
            Self::Sync {
                proto: Proto::Pop3, ..
            } => "sync pop3 (library)",
            Self::Send { .. } => "send",
        }
    }
}

/// One message of the plan: its Message-ID, its text (LF line ends) and its body's digest.
#[derive(Debug, Clone)]
struct Message {
    id: String,
    text: Vec<u8>,
    digest: String,
}

/// One planned fault and what it runs on.
#[derive(Debug)]
struct Plan {
    index: u64,
    scenario: Scenario,
    fault: Fault,
    /// Where the offset falls, roughly: "handshake/commands", "mid-body", "after".
    place: &'static str,
    messages: Vec<Message>,
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ =-";

/// A message of about `size` bytes. Its body has lines of every length up to 76, lines that
/// start with a dot (and a line of only a dot: dot-stuffing in POP3 and SMTP), and no line
/// that starts with "From " (an mbox would quote it).
fn message(rng: &mut Rng, id: &str, size: usize) -> Message {
    let mut text = format!(
        "From: Fault Run <faults@example.test>\nTo: faults@example.test\n\
         Subject: fault run {id}\nDate: Thu, 01 Jan 2026 00:00:00 +0000\nMessage-ID: <{id}>\n\n"
    )
    .into_bytes();
    let start = text.len();
    while text.len() < size.max(start + 1) {
        match rng.range(0, 50) {
            0 => text.extend_from_slice(b".\n"),
            1 => text.extend_from_slice(b"..dot-stuffed\n"),
            _ => {
                let len = rng.range(1, 77);
                for _ in 0..len {
                    text.push(ALPHABET[rng.range(0, ALPHABET.len() as u64) as usize]);
                }
                // No trailing space (some servers trim it) and no "From " at a line start.
                if text.last() == Some(&b' ') {
                    text.pop();
                    text.push(b'x');
                }
                text.push(b'\n');
            }
        }
    }
    let digest = body_digest(&text).unwrap_or_default();
    Message {
        id: id.to_owned(),
        text,
        digest,
    }
}

/// SHA-256 of a message's body, its CRs removed and trailing line ends trimmed (so the same
/// body reads the same from a Maildir, an mbox, or off the wire); `None` without a body.
fn body_digest(message: &[u8]) -> Option<String> {
    let lf: Vec<u8> = message.iter().copied().filter(|&b| b != b'\r').collect();
    let start = find(&lf, b"\n\n")? + 2;
    let mut body = &lf[start..];
    while let Some(rest) = body.strip_suffix(b"\n") {
        body = rest;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    Some(digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The Message-ID of a message (without the angle brackets).
fn message_id(message: &[u8]) -> Option<String> {
    let head_end = find(message, b"\n\n")
        .or_else(|| find(message, b"\r\n\r\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(&message[..head_end]);
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("message-id").then(|| {
            value
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

fn plan(rng: &mut Rng, index: u64, nonce: &str) -> Plan {
    let proto = |rng: &mut Rng| rng.weighted(&[(1, Proto::Imap), (1, Proto::Pop3)]);
    let store = |rng: &mut Rng| rng.weighted(&[(1, StoreKind::Maildir), (1, StoreKind::Mbox)]);
    let tls = |rng: &mut Rng| rng.weighted(&[(3, Tls::Implicit), (1, Tls::StartTls)]);
    let scenario = match rng.range(0, 10) {
        0..=5 => Scenario::Fetch {
            proto: proto(rng),
            tls: tls(rng),
            store: store(rng),
            delete: rng.percent(50),
        },
        6..=7 => Scenario::Sync {
            proto: proto(rng),
            store: store(rng),
            delete: rng.percent(50),
        },
        _ => Scenario::Send { tls: tls(rng) },
    };
    // The messages: one to five for a fetch, one of them large; one to send.
    let count = match scenario {
        Scenario::Send { .. } => 1,
        _ => rng.range(1, 6),
    };
    let large = rng.range(0, count);
    let messages: Vec<Message> = (0..count)
        .map(|k| {
            let size = if k == large {
                rng.range(100_000, 600_000)
            } else {
                rng.range(300, 20_000)
            };
            message(
                rng,
                &format!("f{index:05}.{k}.{nonce}@faults.test"),
                size as usize,
            )
        })
        .collect();
    let total: u64 = messages.iter().map(|m| m.text.len() as u64).sum();
    // Client-to-server bytes before the bodies (TLS hello, commands): about 2 KB; server to
    // client before the bodies (certificate chain, greeting, capabilities, listing): 4-6 KB.
    let send = matches!(scenario, Scenario::Send { .. });
    let dir = match (send, rng.percent(80)) {
        (false, true) | (true, false) => Direction::ToClient,
        _ => Direction::ToServer,
    };
    let range = match (send, dir) {
        (false, Direction::ToClient) => total + total / 30 + 6_000,
        (false, Direction::ToServer) => 1_200,
        (true, Direction::ToServer) => total + total / 30 + 3_000,
        (true, Direction::ToClient) => 6_000,
    };
    let offset = rng.range(0, range);
    let mut kinds = vec![
        (20, "reset"),
        (25, "truncate"),
        (8, "stall"),
        (12, "drip"),
        (15, "duplicate"),
        (15, "reorder"),
    ];
    if send {
        kinds.push((25, "close-after-dot"));
    }
    let fault = match rng.weighted(&kinds) {
        "reset" => Fault::Reset { dir, offset },
        "truncate" => Fault::Truncate { dir, offset },
        "stall" => Fault::Stall { dir, offset },
        "drip" => Fault::Drip {
            dir,
            offset,
            len: rng.range(256, 4097),
        },
        "duplicate" => Fault::Duplicate { dir, offset },
        "reorder" => Fault::Reorder { dir, offset },
        _ => Fault::CloseAfterDot { body: total },
    };
    let (dir, offset) = fault.trigger();
    let bulk = match (send, dir) {
        (false, Direction::ToClient) | (true, Direction::ToServer) => Some(total),
        _ => None,
    };
    let place = match bulk {
        None => "handshake/commands/replies",
        Some(_) if matches!(fault, Fault::CloseAfterDot { .. }) => "after the final dot",
        Some(_) if offset < 4_000 => "handshake/commands",
        Some(total) if offset > total => "after the bodies",
        Some(_) => "mid-body",
    };
    Plan {
        index,
        scenario,
        fault,
        place,
        messages,
    }
}

// ------------------------------------------------------------------------------ the lab

/// The lab as the run uses it.
struct Env {
    lab: Lab,
    user: String,
    sink: String,
    password: String,
    /// The server-side Maildirs of `user` and `sink`.
    maildir: PathBuf,
    sink_maildir: PathBuf,
    /// The owner of the lab's mail (Dovecot's `mail` user).
    owner: (u32, u32),
    /// Dovecot's configuration, for `doveadm`.
    dovecot_conf: String,
}

fn env_or(name: &str, default: String) -> String {
    std::env::var(name).unwrap_or(default)
}

impl Env {
    fn new() -> Result<Self, String> {
        let lab = Lab::from_env();
        let var = |name: &str| {
            std::env::var(name)
                .map_err(|_| format!("{name} is not set: eval \"$(tests/lab/lab.sh env)\" first"))
        };
        let dir = PathBuf::from(var("MAILCAT_LAB_DIR")?);
        let domain = var("MAILCAT_LAB_DOMAIN")?;
        let user = env_or("MAILCAT_LAB_FAULTS_USER", format!("faults@{domain}"));
        let sink = env_or("MAILCAT_LAB_FAULTS_SINK", format!("faultsink@{domain}"));
        let password = env_or("MAILCAT_LAB_FAULTS_PASSWORD", "faults-pw".to_owned());
        // A lab started before these users were added to tests/lab/lab.sh lacks them;
        // `lab.sh up` on the running lab adds them (it reloads the servers).
        let users = std::fs::read_to_string(dir.join("dovecot/users")).unwrap_or_default();
        for address in [&user, &sink] {
            if !users.lines().any(|l| l.starts_with(&format!("{address}:"))) {
                return Err(format!(
                    "the lab in {} has no user {address}: run tests/lab/lab.sh up (on a running \
                     lab it adds the users and reloads the servers)",
                    dir.display()
                ));
            }
        }
        let mail = dir.join("mail");
        let meta = std::fs::metadata(&mail).map_err(|e| format!("{}: {e}", mail.display()))?;
        use std::os::unix::fs::MetadataExt;
        let owner = (meta.uid(), meta.gid());
        let maildir_of = |address: &str| {
            let (local, domain) = address.split_once('@').unwrap_or((address, ""));
            mail.join(domain).join(local).join("Maildir")
        };
        Ok(Self {
            maildir: maildir_of(&user),
            sink_maildir: maildir_of(&sink),
            lab,
            user,
            sink,
            password,
            owner,
            dovecot_conf: var("MAILCAT_LAB_DOVECOT_CONF")?,
        })
    }

    /// Creates `dir` and its parents below the lab's mail root, owned by the mail user.
    fn make_owned(&self, dir: &Path) -> std::io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.make_owned(parent)?;
        }
        std::fs::create_dir(dir)?;
        std::os::unix::fs::chown(dir, Some(self.owner.0), Some(self.owner.1))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }

    /// Empties the INBOX of `user`, whose server Maildir is `maildir`: through Dovecot
    /// (`doveadm expunge`), so that its index never lists a file removed behind its back (a
    /// POP3 session would then answer `-ERR Message 1 expunged`), then whatever is left.
    fn clear(&self, user: &str, maildir: &Path) -> std::io::Result<()> {
        let status = std::process::Command::new("doveadm")
            .args([
                "-c",
                &self.dovecot_conf,
                "expunge",
                "-u",
                user,
                "mailbox",
                "INBOX",
                "all",
            ])
            .stderr(Stdio::null())
            .status()?;
        if !status.success() && maildir.join("cur").is_dir() {
            return Err(std::io::Error::other(format!(
                "doveadm expunge -u {user} failed ({status})"
            )));
        }
        for sub in ["new", "cur", "tmp"] {
            let dir = maildir.join(sub);
            self.make_owned(&dir)?;
            for entry in std::fs::read_dir(&dir)? {
                std::fs::remove_file(entry?.path())?;
            }
        }
        Ok(())
    }

    /// Puts `messages` into the user's server Maildir, as a delivery would.
    fn seed(&self, messages: &[Message], tag: &str) -> std::io::Result<()> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for (k, m) in messages.iter().enumerate() {
            let name = format!("{secs}.F{tag}_{k}.faultrun");
            let tmp = self.maildir.join("tmp").join(&name);
            std::fs::write(&tmp, &m.text)?;
            std::os::unix::fs::chown(&tmp, Some(self.owner.0), Some(self.owner.1))?;
            std::fs::rename(&tmp, self.maildir.join("new").join(&name))?;
        }
        Ok(())
    }
}

/// Message-ID -> the digests of the copies of it in a Maildir (new/ and cur/).
fn maildir_contents(maildir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read(entry.path()) else {
                continue;
            };
            if let Some(id) = message_id(&text) {
                found
                    .entry(id)
                    .or_default()
                    .push(body_digest(&text).unwrap_or_default());
            }
        }
    }
    found
}

/// The same for an mbox file (messages start at a line "From "; no body line does).
fn mbox_contents(file: &Path) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(text) = std::fs::read(file) else {
        return found;
    };
    let mut starts: Vec<usize> = Vec::new();
    if text.starts_with(b"From ") {
        starts.push(0);
    }
    let mut at = 0;
    while let Some(p) = find(&text[at..], b"\nFrom ") {
        starts.push(at + p + 1);
        at += p + 1;
    }
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let one = &text[start..end];
        let one = match find(one, b"\n") {
            Some(p) => &one[p + 1..],
            None => continue,
        };
        if let Some(id) = message_id(one) {
            found
                .entry(id)
                .or_default()
                .push(body_digest(one).unwrap_or_default());
        }
    }
    found
}

// ------------------------------------------------------------------------------ running

/// How a faulted or clean run ended.
#[derive(Debug)]
struct Outcome {
    /// The exit code; `None` when it was killed (a hang) or died by a signal.
    exit: Option<i32>,
    /// Killed after [`KILL_AFTER`].
    hung: bool,
    ended: Instant,
    stderr: String,
}

/// The proxies, one per lab endpoint used.
struct Proxies {
    imaps: FaultProxy,
    imap: FaultProxy,
    pop3s: FaultProxy,
    pop3: FaultProxy,
    smtps: FaultProxy,
    smtp: FaultProxy,
}

impl Proxies {
    async fn start(lab: &Lab) -> std::io::Result<Self> {
        let at = |host: &str, port: u16| -> SocketAddr {
            format!("{host}:{port}").parse().expect("an IP address")
        };
        // STARTTLS through the strict host: no login before TLS there, as on a real server.
        Ok(Self {
            imaps: FaultProxy::start(at(&lab.host, lab.imaps_port)).await?,
            imap: FaultProxy::start(at(&lab.strict_host, lab.imap_port)).await?,
            pop3s: FaultProxy::start(at(&lab.host, lab.pop3s_port)).await?,
            pop3: FaultProxy::start(at(&lab.strict_host, lab.pop3_port)).await?,
            smtps: FaultProxy::start(at(&lab.host, lab.submissions_port)).await?,
            smtp: FaultProxy::start(at(&lab.strict_host, lab.submission_port)).await?,
        })
    }

    /// The proxy and the URL mailcat connects to for a scenario.
    fn for_scenario(&self, scenario: &Scenario) -> (&FaultProxy, String) {
        let (proxy, scheme) = match scenario {
            Scenario::Fetch {
                proto: Proto::Imap,
                tls: Tls::Implicit,
                ..
            }
            | Scenario::Sync {
                proto: Proto::Imap, ..
            } => (&self.imaps, "imaps"),
            Scenario::Fetch {
                proto: Proto::Imap,
                tls: Tls::StartTls,
                ..
            } => (&self.imap, "imap"),
            Scenario::Fetch {
                proto: Proto::Pop3,
                tls: Tls::Implicit,
                ..
            }
            | Scenario::Sync {
                proto: Proto::Pop3, ..
            } => (&self.pop3s, "pop3s"),
            Scenario::Fetch {
                proto: Proto::Pop3,
                tls: Tls::StartTls,
                ..
            } => (&self.pop3, "pop3"),
            Scenario::Send { tls: Tls::Implicit } => (&self.smtps, "smtps"),
            Scenario::Send { tls: Tls::StartTls } => (&self.smtp, "smtp"),
        };
        (proxy, format!("{scheme}://127.0.0.1:{}", proxy.port()))
    }
}

struct Runner {
    args: Args,
    env: Env,
    proxies: Proxies,
    work: PathBuf,
    xdg: PathBuf,
}

impl Runner {
    /// Runs mailcat with `args`, stdin from `stdin` (or nothing), killed after [`KILL_AFTER`].
    async fn mailcat(&self, args: &[String], stdin: Option<&Path>) -> Outcome {
        let mut command = tokio::process::Command::new(&self.args.mailcat);
        command
            .args(args)
            .env("MAILCAT_PASSWORD", &self.env.password)
            .env("XDG_CONFIG_HOME", &self.xdg)
            .env_remove("MAILCAT_FAULT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match stdin.map(std::fs::File::open) {
            Some(Ok(file)) => command.stdin(file),
            Some(Err(e)) => return outcome_error(format!("cannot open the message: {e}")),
            None => command.stdin(Stdio::null()),
        };
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return outcome_error(format!(
                    "cannot run {}: {e} (build it: cargo build -p mailcat)",
                    self.args.mailcat.display()
                ))
            }
        };
        match tokio::time::timeout(KILL_AFTER, child.wait_with_output()).await {
            Ok(Ok(output)) => Outcome {
                exit: output.status.code(),
                hung: false,
                ended: Instant::now(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            },
            Ok(Err(e)) => outcome_error(format!("waiting for mailcat: {e}")),
            Err(_) => Outcome {
                exit: None,
                hung: true,
                ended: Instant::now(),
                stderr: String::new(),
            },
        }
    }

    fn common_args(&self, timeout: f64) -> Vec<String> {
        let trace = self.args.trace && timeout != CLEAN_TIMEOUT;
        let mut args: Vec<String> = if trace { vec!["-v".into()] } else { vec![] };
        args.extend([
            "--email".into(),
            self.env.user.clone(),
            "--ca-file".into(),
            self.env.lab.ca_file.display().to_string(),
            "--timeout".into(),
            timeout.to_string(),
        ]);
        args
    }

    /// One run of the scenario (faulted or clean) into the store at `store`.
    async fn run(&self, plan: &Plan, store: &Path, timeout: f64) -> Outcome {
        let (_, url) = self.proxies.for_scenario(&plan.scenario);
        match plan.scenario {
            Scenario::Fetch {
                store: kind,
                delete,
                ..
            } => {
                let mut args = vec!["fetch".to_owned()];
                args.extend(self.common_args(timeout));
                args.extend(["--incoming".to_owned(), url]);
                args.extend(["--to".to_owned(), target(kind, store)]);
                if delete {
                    args.push("--delete".into());
                }
                self.mailcat(&args, None).await
            }
            Scenario::Send { .. } => {
                let mut args = vec!["send".to_owned()];
                args.extend(self.common_args(timeout));
                args.extend(["--outgoing".to_owned(), url, self.env.sink.clone()]);
                let file = store.join("message.eml");
                self.mailcat(&args, Some(&file)).await
            }
            Scenario::Sync {
                store: kind,
                delete,
                ..
            } => {
                let run = self.sync(&url, kind, store, delete, timeout);
                match tokio::time::timeout(KILL_AFTER, run).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome {
                        exit: None,
                        hung: true,
                        ended: Instant::now(),
                        stderr: String::new(),
                    },
                }
            }
        }
    }

    /// The library's sync, as an application would call it; the outcome in `fetch`'s exit
    /// codes: 0, 69 or 75 for a session error (as the CLI maps it), 74 for a store error.
    async fn sync(
        &self,
        url: &str,
        kind: StoreKind,
        store: &Path,
        delete: bool,
        timeout: f64,
    ) -> Outcome {
        let done = |exit: i32, stderr: String| Outcome {
            exit: Some(exit),
            hung: false,
            ended: Instant::now(),
            stderr,
        };
        let endpoint = match Endpoint::parse_url(url) {
            Ok(endpoint) => endpoint,
            Err(e) => return done(64, format!("{url}: {e}")),
        };
        let pop3 = url.starts_with("pop3");
        let account = Account::builder(
            self.env.user.clone(),
            Credential::password(self.env.user.clone(), self.env.password.clone()),
        )
        .incoming(endpoint)
        .tls(TlsSettings::only_ca_file(&self.env.lab.ca_file))
        .timeouts(Timeouts::uniform(Duration::from_secs_f64(timeout)))
        .build();
        let account = match account {
            Ok(account) => account,
            Err(e) => return done(64, e.to_string()),
        };
        let (dir, state_path, lock_path) = match kind {
            StoreKind::Maildir => {
                let dir = store.join("Maildir");
                (
                    dir.clone(),
                    dir.join(".mailcat-state.json"),
                    dir.join(".mailcat.lock"),
                )
            }
            StoreKind::Mbox => (
                store.join("mbox"),
                store.join(".mbox.mailcat-state.json"),
                store.join(".mbox.mailcat.lock"),
            ),
        };
        if kind == StoreKind::Maildir {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return done(74, e.to_string());
            }
        }
        let Ok(_lock) = StoreLock::try_acquire(&lock_path) else {
            return done(74, "cannot lock the store".into());
        };
        let mut state = match FetchState::load(&state_path) {
            Ok(state) => state,
            Err(e) => return done(74, e.to_string()),
        };
        let source = Source {
            login: &self.env.user,
            host: "127.0.0.1",
            mailbox: (!pop3).then_some("INBOX"),
        };
        let exit_of = |e: &mailcat_session::Error| {
            if e.is_transient() {
                75
            } else {
                69
            }
        };
        let result = match kind {
            StoreKind::Maildir => {
                let mut store = match MaildirStore::open(&dir) {
                    Ok(store) => store,
                    Err(e) => return done(74, e.to_string()),
                };
                let incoming = match account.receive().await {
                    Ok(incoming) => incoming,
                    Err(e) => return done(exit_of(&e), e.to_string()),
                };
                let sync = Sync::new(&mut store, &mut state, source);
                let sync = if delete { sync.delete_stored() } else { sync };
                sync.run(incoming, std::future::pending()).await
            }
            StoreKind::Mbox => {
                let mbox = match Mbox::open(&dir, state.mbox_len()).await {
                    Ok(mbox) => mbox,
                    Err(e) => return done(74, e.to_string()),
                };
                let len = std::fs::metadata(&dir).map(|m| m.len()).unwrap_or(0);
                if state.mbox_len() != Some(len) {
                    if let Err(e) = state.record_mbox_len(len) {
                        return done(74, e.to_string());
                    }
                }
                let mut store = MboxStore::new(mbox, store.join(".mbox.mailcat-spool"));
                let incoming = match account.receive().await {
                    Ok(incoming) => incoming,
                    Err(e) => return done(exit_of(&e), e.to_string()),
                };
                let sync = Sync::new(&mut store, &mut state, source);
                let sync = if delete { sync.delete_stored() } else { sync };
                sync.run(incoming, std::future::pending()).await
            }
        };
        match result {
            Ok(_) => done(0, String::new()),
            Err(stopped) => match &stopped.reason {
                StopReason::Session(e) => done(exit_of(e), stopped.to_string()),
                StopReason::Store(_) => done(74, stopped.to_string()),
                _ => done(70, stopped.to_string()),
            },
        }
    }

    /// What the local store holds.
    fn stored(&self, plan: &Plan, store: &Path) -> BTreeMap<String, Vec<String>> {
        match plan.scenario {
            Scenario::Fetch {
                store: StoreKind::Maildir,
                ..
            }
            | Scenario::Sync {
                store: StoreKind::Maildir,
                ..
            } => maildir_contents(&store.join("Maildir")),
            Scenario::Fetch {
                store: StoreKind::Mbox,
                ..
            }
            | Scenario::Sync {
                store: StoreKind::Mbox,
                ..
            } => mbox_contents(&store.join("mbox")),
            Scenario::Send { .. } => BTreeMap::new(),
        }
    }
}

fn target(kind: StoreKind, store: &Path) -> String {
    match kind {
        StoreKind::Maildir => format!("maildir:{}", store.join("Maildir").display()),
        StoreKind::Mbox => format!("mbox:{}", store.join("mbox").display()),
    }
}

fn outcome_error(why: String) -> Outcome {
    Outcome {
        exit: Some(-1),
        hung: false,
        ended: Instant::now(),
        stderr: why,
    }
}

// ------------------------------------------------------------------------------ the checks

/// What one fault came to.
#[derive(Debug, Default)]
struct Result1 {
    injected: bool,
    /// From the fault to the end of the run.
    latency: Option<Duration>,
    exit: Option<i32>,
    /// The first line of the faulted run's stderr.
    said: String,
    /// The bytes of the clean re-run, client to server and server to client.
    clean_bytes: [u64; 2],
    violations: Vec<String>,
}

/// A send to check at the end, once Postfix has delivered: the message, and how many copies
/// of it may arrive (the clean re-run's, the faulted run's if it reported success or the
/// proxy withheld the server's acceptance, perhaps one more).
#[derive(Debug)]
struct SendCheck {
    index: u64,
    id: String,
    digest: String,
    min: usize,
    max: usize,
}

impl Runner {
    async fn one(&self, plan: &Plan, sends: &mut Vec<SendCheck>) -> Result1 {
        let mut result = Result1::default();
        let v = &mut result.violations;
        let dir = self.work.join(format!("f{:05}", plan.index));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            v.push(format!("cannot create {}: {e}", dir.display()));
            return result;
        }
        let send = matches!(plan.scenario, Scenario::Send { .. });
        let delete = matches!(
            plan.scenario,
            Scenario::Fetch { delete: true, .. } | Scenario::Sync { delete: true, .. }
        );
        if send {
            if let Err(e) = std::fs::write(dir.join("message.eml"), &plan.messages[0].text) {
                v.push(format!("cannot write the message: {e}"));
                return result;
            }
        } else if let Err(e) = self
            .env
            .clear(&self.env.user, &self.env.maildir)
            .and_then(|()| {
                self.env.seed(
                    &plan.messages,
                    &format!("{}_{}", self.args.seed, plan.index),
                )
            })
        {
            v.push(format!("cannot seed the server's Maildir: {e}"));
            return result;
        }
        let (proxy, _) = self.proxies.for_scenario(&plan.scenario);

        // The faulted run.
        proxy.arm(Some(plan.fault));
        let faulted = self.run(plan, &dir, self.args.timeout).await;
        if !proxy.wait_idle(Duration::from_secs(10)).await {
            v.push("the proxy still forwards 10 s after the faulted run ended".into());
        }
        let report: Report = proxy.report();
        result.injected = report.injected_at.is_some();
        result.exit = faulted.exit;
        result.said = faulted.stderr.lines().next().unwrap_or("").to_owned();
        if self.args.trace {
            println!("--- the faulted run's stderr:\n{}---", faulted.stderr);
        }
        result.latency = report
            .injected_at
            .map(|at| faulted.ended.saturating_duration_since(at));
        let tail = |stderr: &str| {
            let t = stderr.trim();
            t.chars()
                .skip(t.chars().count().saturating_sub(400))
                .collect::<String>()
        };
        let limit = Duration::from_secs_f64(self.args.timeout) + MARGIN;
        if faulted.hung {
            v.push(format!(
                "hang: the faulted run was still going after {} s and was killed",
                KILL_AFTER.as_secs()
            ));
        } else if let Some(latency) = result.latency.filter(|l| *l > limit) {
            v.push(format!(
                "hang: the faulted run ended {:.1} s after the fault, over the timeout {} s + {} s",
                latency.as_secs_f64(),
                self.args.timeout,
                MARGIN.as_secs()
            ));
        }
        match faulted.exit {
            _ if faulted.hung => {}
            None => v.push(format!(
                "the faulted run died by a signal: {}",
                tail(&faulted.stderr)
            )),
            Some(code) if !FAULT_EXITS.contains(&code) => v.push(format!(
                "exit code {code}, not one a network fault may give ({FAULT_EXITS:?}): {}",
                tail(&faulted.stderr)
            )),
            Some(code) => {
                let must_succeed = !result.injected || matches!(plan.fault, Fault::Drip { .. });
                if must_succeed && code != 0 {
                    v.push(format!(
                        "exit code {code} where the run had to succeed ({}): {}",
                        if result.injected {
                            "a drip is slow, not broken"
                        } else {
                            "the fault never struck"
                        },
                        tail(&faulted.stderr)
                    ));
                }
                // SMTP: a send whose outcome is unknown is never reported as sent, says so,
                // and exits 69, not 75 (a retry may deliver twice; threat model #65).
                let unknown = faulted.stderr.contains("outcome of sending");
                if matches!(plan.fault, Fault::CloseAfterDot { .. }) && result.injected {
                    if code == 0 {
                        v.push(
                            "reported as sent, though the server's reply to the final dot never came"
                                .into(),
                        );
                    } else if !unknown {
                        v.push(format!(
                            "the outcome of the send is unknown, and the error does not say so: {}",
                            tail(&faulted.stderr)
                        ));
                    }
                }
                if unknown && code != 69 {
                    v.push(format!(
                        "an unknown outcome exits {code}, where 69 is documented: {}",
                        tail(&faulted.stderr)
                    ));
                }
            }
        }

        // After the fault: nothing gone from the server that is not stored.
        if !send {
            let server = maildir_contents(&self.env.maildir);
            let stored = self.stored(plan, &dir);
            for m in &plan.messages {
                let on_server = server.contains_key(&m.id);
                let here = stored.get(&m.id).is_some_and(|c| c.contains(&m.digest));
                if !on_server && !here {
                    v.push(format!(
                        "{} was deleted on the server and is not stored",
                        m.id
                    ));
                }
                if faulted.exit == Some(0) && !here {
                    v.push(format!(
                        "exit 0, but {} is not in the store after the faulted run",
                        m.id
                    ));
                }
                if faulted.exit == Some(0) && delete && on_server {
                    v.push(format!(
                        "exit 0 with --delete, but {} is still on the server",
                        m.id
                    ));
                }
            }
        }

        // The clean re-run.
        proxy.arm(None);
        let clean = self.run(plan, &dir, CLEAN_TIMEOUT).await;
        proxy.wait_idle(Duration::from_secs(10)).await;
        result.clean_bytes = proxy.report().bytes;
        if clean.exit != Some(0) {
            v.push(format!(
                "the clean re-run failed (exit {:?}{}): {}",
                clean.exit,
                if clean.hung { ", hung" } else { "" },
                tail(&clean.stderr)
            ));
        }
        if send {
            let injected_dot = matches!(plan.fault, Fault::CloseAfterDot { .. }) && result.injected;
            let m = &plan.messages[0];
            sends.push(SendCheck {
                index: plan.index,
                id: m.id.clone(),
                digest: m.digest.clone(),
                min: usize::from(clean.exit == Some(0))
                    + usize::from(faulted.exit == Some(0))
                    + usize::from(injected_dot),
                // A failure that does not say the outcome is unknown says the message was not
                // accepted: then only the clean re-run's copy may arrive.
                max: if faulted.exit != Some(0) && !faulted.stderr.contains("outcome of sending") {
                    1
                } else {
                    2
                },
            });
        } else {
            // Every message exactly once, as it was; on the server: all or (--delete) none.
            let server = maildir_contents(&self.env.maildir);
            let stored = self.stored(plan, &dir);
            for m in &plan.messages {
                match stored.get(&m.id).map(Vec::as_slice) {
                    None | Some([]) => v.push(format!("{} is missing from the store", m.id)),
                    Some([digest]) if *digest == m.digest => {}
                    Some([_]) => v.push(format!("{} is stored with another body", m.id)),
                    Some(copies) => v.push(format!("{} is stored {} times", m.id, copies.len())),
                }
                let left = server.get(&m.id).map_or(0, Vec::len);
                if delete && clean.exit == Some(0) && left != 0 {
                    v.push(format!(
                        "{} is still on the server after a clean run with --delete",
                        m.id
                    ));
                }
                if !delete && left != 1 {
                    v.push(format!(
                        "{} is on the server {left} times, without --delete",
                        m.id
                    ));
                }
            }
        }
        if result.violations.is_empty() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }
}

/// Waits (up to a minute) for every send to reach the sink, and checks the copies: once
/// every message has its least number of copies, after a few seconds more for the deliveries
/// still under way (a copy too many arrives after the least number).
async fn check_sends(env: &Env, sends: &[SendCheck]) -> Vec<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settled = false;
    loop {
        let sink = maildir_contents(&env.sink_maildir);
        let mut violations = Vec::new();
        for s in sends {
            let copies = sink.get(&s.id).map_or(&[][..], Vec::as_slice);
            if copies.len() < s.min {
                violations.push((
                    s.index,
                    format!(
                        "{} arrived {} times, at least {} expected (a run that reported it sent, or a server that accepted it)",
                        s.id,
                        copies.len(),
                        s.min
                    ),
                ));
            }
            if copies.len() > s.max {
                violations.push((
                    s.index,
                    format!(
                        "{} arrived {} times, at most {} expected (a failed send that did not say its outcome was unknown must not have been accepted)",
                        s.id,
                        copies.len(),
                        s.max
                    ),
                ));
            }
            if copies.iter().any(|d| *d != s.digest) {
                violations.push((
                    s.index,
                    format!(
                        "{} arrived with another body (a cut message delivered?)",
                        s.id
                    ),
                ));
            }
        }
        if settled || Instant::now() >= deadline {
            return violations;
        }
        if violations.is_empty() {
            settled = true;
            tokio::time::sleep(Duration::from_secs(5)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

// ------------------------------------------------------------------------------ main

#[derive(Debug, Default)]
struct Tally {
    planned: u64,
    injected: u64,
    latency_max: Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fault_run: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    match run(args).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fault_run: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<usize, String> {
    let env = Env::new()?;
    if !args.mailcat.is_file() {
        return Err(format!(
            "{} does not exist: build mailcat first (cargo build -p mailcat) or give --mailcat",
            args.mailcat.display()
        ));
    }
    // One fault run at a time on a lab: they share its fault users.
    let lock_path = std::env::temp_dir().join(format!(
        "mailcat-fault-run-{}.lock",
        env.maildir.display().to_string().replace('/', "_")
    ));
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!("fault_run: another fault run uses this lab; waiting for it");
        lock.lock().map_err(|e| e.to_string())?;
    }
    let work = match &args.work {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("mailcat-fault-run-{}", std::process::id())),
    };
    let xdg = work.join("xdg");
    std::fs::create_dir_all(&xdg).map_err(|e| format!("{}: {e}", xdg.display()))?;
    env.clear(&env.sink, &env.sink_maildir)
        .map_err(|e| format!("cannot empty {}: {e}", env.sink_maildir.display()))?;
    let proxies = Proxies::start(&env.lab)
        .await
        .map_err(|e| format!("cannot start the proxies: {e}"))?;
    let runner = Runner {
        args,
        env,
        proxies,
        work,
        xdg,
    };
    let args = &runner.args;
    // A nonce in the Message-IDs keeps one run's late deliveries out of the next run's count;
    // it has a fixed length, so the messages' sizes (and the faults' offsets) do not change.
    let nonce = format!(
        "{:08x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u32)
            .unwrap_or(0)
    );
    println!(
        "fault run: seed {}, {} faults (from #{}), mailcat --timeout {} s, mailcat {}",
        args.seed,
        args.faults,
        args.start,
        args.timeout,
        args.mailcat.display()
    );
    let started = Instant::now();
    let mut master = Rng::new(args.seed);
    let mut kinds: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut groups: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut places: BTreeMap<String, u64> = BTreeMap::new();
    let mut exits: BTreeMap<String, u64> = BTreeMap::new();
    let mut violations: Vec<(u64, String)> = Vec::new();
    let mut sends = Vec::new();
    let mut runs = 0u64;
    for index in 0..args.start + args.faults {
        let mut rng = master.fork();
        if index < args.start {
            continue;
        }
        let plan = plan(&mut rng, index, &nonce);
        let result = runner.one(&plan, &mut sends).await;
        runs += 2;
        for tally in [
            kinds.entry(plan.fault.kind()).or_default(),
            groups.entry(plan.scenario.group()).or_default(),
        ] {
            tally.planned += 1;
            if result.injected {
                tally.injected += 1;
                tally.latency_max = tally.latency_max.max(result.latency.unwrap_or_default());
            }
        }
        if result.injected {
            let (dir, _) = plan.fault.trigger();
            *places
                .entry(format!("{} {}", dir.short(), plan.place))
                .or_default() += 1;
        }
        *exits
            .entry(format!(
                "{}: exit {}",
                plan.fault.kind(),
                result.exit.map_or("none".into(), |c| c.to_string())
            ))
            .or_default() += 1;
        let line = format!(
            "#{} {} | {:?} ({}) | {} | exit {:?}{}",
            plan.index,
            plan.scenario.name(),
            plan.fault,
            plan.place,
            if result.injected {
                "injected"
            } else {
                "not reached"
            },
            result.exit,
            result
                .latency
                .map(|l| format!(" {:.2} s after", l.as_secs_f64()))
                .unwrap_or_default()
        );
        if args.verbose || !result.violations.is_empty() {
            println!("{line}");
            if !result.said.is_empty() {
                println!("    {}", result.said);
            }
            println!(
                "    clean re-run: {} bytes c2s, {} s2c",
                result.clean_bytes[0], result.clean_bytes[1]
            );
        }
        for violation in result.violations {
            println!("  VIOLATION: {violation}");
            violations.push((plan.index, violation));
        }
        if !args.verbose && (index + 1 - args.start).is_multiple_of(50) {
            println!(
                "  ... {} faults, {} violations, {:.0} s",
                index + 1 - args.start,
                violations.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if !sends.is_empty() {
        println!("waiting for Postfix to deliver {} sends ...", sends.len());
        for (index, violation) in check_sends(&runner.env, &sends).await {
            println!("#{index}: VIOLATION: {violation}");
            violations.push((index, violation));
        }
    }

    let injected: u64 = kinds.values().map(|t| t.injected).sum();
    println!();
    println!("=== fault run summary ===");
    println!(
        "seed {}, {:.0} s",
        args.seed,
        started.elapsed().as_secs_f64()
    );
    println!(
        "faults planned {}, injected {} (the rest fell past the end of their stream: the run must then succeed)",
        args.faults, injected
    );
    println!("runs: {runs} (each fault's run and its clean re-run)");
    println!("per kind (injected / planned, slowest end after the fault):");
    for (kind, t) in &kinds {
        println!(
            "  {kind:<16} {:>5} / {:<5} {:>6.2} s",
            t.injected,
            t.planned,
            t.latency_max.as_secs_f64()
        );
    }
    println!("per operation (injected / planned):");
    for (group, t) in &groups {
        println!("  {group:<20} {:>5} / {}", t.injected, t.planned);
    }
    println!("where the injected faults struck:");
    for (place, n) in &places {
        println!("  {place:<32} {n:>5}");
    }
    println!("exit codes of the faulted runs (every planned fault, reached or not):");
    for (exit, n) in &exits {
        println!("  {exit:<28} {n:>5}");
    }
    println!("violations: {}", violations.len());
    for (index, violation) in &violations {
        println!("  #{index}: {violation}");
    }
    if violations.is_empty() {
        let _ = std::fs::remove_dir_all(&runner.work);
    } else {
        println!(
            "the stores of the failed faults are kept in {}",
            runner.work.display()
        );
        println!(
            "replay one: fault_run --seed {} --start I --faults 1 -v",
            args.seed
        );
    }
    println!(
        "reproduce: fault_run --seed {} --faults {}{}",
        args.seed,
        args.faults,
        if args.start > 0 {
            format!(" --start {}", args.start)
        } else {
            String::new()
        }
    );
    drop(lock);
    Ok(violations.len())
}
