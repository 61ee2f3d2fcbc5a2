//! Idle-session bench: what one more idle IMAP session costs the process, in resident memory.
//! Opens N IMAPS sessions to the lab concurrently (50 at a time), logs each in, SELECTs INBOX,
//! then puts every one in IDLE on a task of its own (as an app watching N accounts does);
//! reports the RSS before, after the first session (which pays the once-per-process costs: the
//! trusted roots, the TLS configuration), after all N and with all N in IDLE, and the growth per
//! session after the first.
//!
//! ```sh
//! eval "$(tests/lab/lab.sh env)"
//! cargo run --release -p mailcat-benches --bin idle_sessions -- --count 200 [--roots system]
//! ```
//!
//! `--roots private` (the default) trusts only the lab's CA; `--roots system` trusts the
//! Mozilla and the operating system's roots as well, as the CLI does by default. The sessions
//! log in as `benchsmtp@` (the SMTP bench's recipient), whose INBOX nobody's test reads.
//! The lab's Dovecot runs at most 1,500 logged-in IMAP sessions at once (`process_limit`),
//! shared with whatever else uses the lab; the process needs `ulimit -n` above N. Linux only
//! (RSS from `/proc`).
//! This is a benchmark, not a test: nothing here asserts a size.

use mailcat_session::Plaintext;
use std::time::Duration;

use mailcat_codec::imap::command::Mailbox;
use mailcat_session::{imap, Credential, ImapSession};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use tokio::net::TcpStream;

const USER: &str = "benchsmtp@example.test";
/// Sessions opened at once.
const BATCH: usize = 50;
const USAGE: &str = "usage: idle_sessions [--count N] [--roots private|system]";

type Result<T> = std::result::Result<T, String>;

fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: eval \"$(tests/lab/lab.sh env)\""))
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The resident set size of this process, in KiB.
fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(fail)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_string())
}

struct Options {
    count: usize,
    system_roots: bool,
}

fn options() -> Result<Options> {
    let mut options = Options {
        count: 200,
        system_roots: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = args.iter().map(String::as_str);
    while let Some(flag) = args.next() {
        match (flag, args.next()) {
            ("--count", Some(n)) => {
                options.count = n.parse().ok().filter(|&n| n >= 2).ok_or(USAGE)?;
            }
            ("--roots", Some("private")) => options.system_roots = false,
            ("--roots", Some("system")) => options.system_roots = true,
            _ => return Err(USAGE.into()),
        }
    }
    Ok(options)
}

struct Lab {
    endpoint: Endpoint,
    tls: TlsSettings,
    password: String,
}

async fn idle_session(lab: &Lab) -> Result<ImapSession<TcpStream>> {
    let timeouts = Timeouts::uniform(Duration::from_secs(60));
    let mut session = imap::connect(&lab.endpoint, &lab.tls, &timeouts)
        .await
        .map_err(fail)?;
    let credential = Credential::password(USER, lab.password.as_bytes());
    session
        .login(&credential, Plaintext::Refuse)
        .await
        .map_err(fail)?;
    session.select(&Mailbox::inbox()).await.map_err(fail)?;
    Ok(session)
}

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("idle_sessions bench: {e}");
        std::process::exit(1);
    }
}

fn main_inner() -> Result<()> {
    let options = options()?;
    let ca_file = var("MAILCAT_LAB_CA_FILE")?;
    let tls = if options.system_roots {
        TlsSettings {
            extra_ca_files: vec![ca_file.into()],
            ..TlsSettings::default()
        }
    } else {
        TlsSettings::only_ca_file(ca_file)
    };
    let port = var("MAILCAT_LAB_IMAPS_PORT")?
        .parse()
        .map_err(|_| "MAILCAT_LAB_IMAPS_PORT is not a port")?;
    let lab = std::sync::Arc::new(Lab {
        endpoint: Endpoint::new(
            Protocol::Imap,
            &var("MAILCAT_LAB_HOST")?,
            Security::ImplicitTls,
        )
        .with_port(port),
        tls,
        password: var("MAILCAT_LAB_BENCH_PASSWORD")?,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let before = rss_kib()?;
    let mut sessions = vec![runtime.block_on(idle_session(&lab))?];
    let after_first = rss_kib()?;
    while sessions.len() < options.count {
        let batch = BATCH.min(options.count - sessions.len());
        let opened = runtime.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..batch {
                let lab = lab.clone();
                set.spawn(async move { idle_session(&lab).await });
            }
            let mut opened = Vec::with_capacity(batch);
            while let Some(result) = set.join_next().await {
                opened.push(result.map_err(fail)??);
            }
            Ok::<_, String>(opened)
        })?;
        sessions.extend(opened);
    }
    let after_all = rss_kib()?;
    // Every session in IDLE on a task of its own; a session still in its task after a pause
    // is idling (one that failed has ended its task).
    let idling: Vec<_> = sessions
        .into_iter()
        .map(|mut session| {
            runtime.spawn(async move {
                let _ = session.idle(Duration::from_secs(600)).await;
                session
            })
        })
        .collect();
    runtime.block_on(async { tokio::time::sleep(Duration::from_secs(3)).await });
    let in_idle = idling.iter().filter(|task| !task.is_finished()).count();
    let after_idle = rss_kib()?;
    let per_session = (after_idle.saturating_sub(after_first)) as f64 / (options.count - 1) as f64;
    println!(
        "{} idle IMAPS sessions (login + SELECT INBOX), roots: {}",
        options.count,
        if options.system_roots {
            "Mozilla + system + lab CA"
        } else {
            "lab CA only"
        }
    );
    println!("RSS before:              {before:>8} KiB");
    println!(
        "RSS after 1 session:     {after_first:>8} KiB (+{} KiB)",
        after_first.saturating_sub(before)
    );
    println!("RSS after {:<5} sessions:{after_all:>8} KiB", options.count);
    println!(
        "RSS with {in_idle:<5} in IDLE:{after_idle:>8} KiB ({} sessions failed)",
        options.count - in_idle
    );
    println!("growth per session after the first, in IDLE: {per_session:.1} KiB");
    for task in idling {
        task.abort();
    }
    Ok(())
}
