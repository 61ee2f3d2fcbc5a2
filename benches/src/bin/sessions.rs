//! Session bench: the library's sessions against the lab's Dovecot and Postfix, each job on
//! one connection, timed after login. It shows what a round trip per command costs, which the
//! CLI bench (`e2e`) hides behind process start-up and files.
//!
//! ```sh
//! eval "$(tests/lab/lab.sh env)"
//! cargo run --release -p mailcat-benches --bin sessions -- [--runs N]
//! ```
//!
//! Jobs: SMTP, 500 small messages from the lab user to `benchsmtp@` (one MAIL/RCPT/DATA group
//! each, PIPELINING); POP3S, the 500 × 4 KiB of `bench4k@` (seeded by `e2e` or
//! `tests/lab/lab.sh seed`) retrieved pipelined, then 500 single `LIST n` commands; IMAPS, the
//! same 500 fetched whole. Nothing is deleted. The table gives the median and the fastest run.
//! This is a benchmark, not a test: nothing here asserts a speed.

use mailcat_session::Plaintext;
use std::time::{Duration, Instant};

use mailcat_benches::numeric_flag;
use mailcat_codec::imap::command::{Mailbox, SearchKey};
use mailcat_session::smtp::{Address, Envelope, MessageInfo};
use mailcat_session::{imap, pop3, smtp, Credential};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};

const MESSAGES: usize = 500;
const FETCH_USER: &str = "bench4k@example.test";
const SMTP_RECIPIENT: &str = "benchsmtp@example.test";

type Result<T> = std::result::Result<T, String>;

struct Lab {
    host: String,
    tls: TlsSettings,
    user: String,
    password: String,
    bench_password: String,
    imaps: u16,
    pop3s: u16,
    submissions: u16,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: eval \"$(tests/lab/lab.sh env)\""))
}

fn port(name: &str) -> Result<u16> {
    var(name)?
        .parse()
        .map_err(|_| format!("{name} is not a port"))
}

impl Lab {
    fn from_env() -> Result<Self> {
        Ok(Self {
            host: var("MAILCAT_LAB_HOST")?,
            tls: TlsSettings::only_ca_file(var("MAILCAT_LAB_CA_FILE")?),
            user: var("MAILCAT_LAB_USER")?,
            password: var("MAILCAT_LAB_PASSWORD")?,
            bench_password: var("MAILCAT_LAB_BENCH_PASSWORD")?,
            imaps: port("MAILCAT_LAB_IMAPS_PORT")?,
            pop3s: port("MAILCAT_LAB_POP3S_PORT")?,
            submissions: port("MAILCAT_LAB_SUBMISSIONS_PORT")?,
        })
    }

    fn endpoint(&self, protocol: Protocol, port: u16) -> Endpoint {
        Endpoint::new(protocol, &self.host, Security::ImplicitTls).with_port(port)
    }
}

fn timeouts() -> Timeouts {
    Timeouts::uniform(Duration::from_secs(30))
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn smtp_job(lab: &Lab) -> Result<Duration> {
    let endpoint = lab.endpoint(Protocol::Smtp, lab.submissions);
    let mut session = smtp::connect(&endpoint, &lab.tls, &timeouts())
        .await
        .map_err(fail)?;
    let credential = Credential::password(&lab.user, lab.password.as_bytes());
    session
        .login(&credential, Plaintext::Refuse)
        .await
        .map_err(fail)?;
    let envelope = Envelope {
        from: Some(Address::new(&lab.user).map_err(fail)?),
        to: vec![Address::new(SMTP_RECIPIENT).map_err(fail)?],
        ..Default::default()
    };
    let message = format!(
        "From: {}\r\nTo: {SMTP_RECIPIENT}\r\nSubject: session bench\r\n\r\nhello\r\n",
        lab.user
    );
    let info = MessageInfo::of_bytes(message.as_bytes());
    let started = Instant::now();
    for _ in 0..MESSAGES {
        session
            .send(&envelope, &mut message.as_bytes(), &info)
            .await
            .map_err(fail)?;
    }
    let elapsed = started.elapsed();
    session.logout().await.map_err(fail)?;
    Ok(elapsed)
}

async fn pop3_session(lab: &Lab) -> Result<pop3::Pop3Session<tokio::net::TcpStream>> {
    let endpoint = lab.endpoint(Protocol::Pop3, lab.pop3s);
    let mut session = pop3::connect(&endpoint, &lab.tls, &timeouts())
        .await
        .map_err(fail)?;
    let credential = Credential::password(FETCH_USER, lab.bench_password.as_bytes());
    session
        .login(&credential, Plaintext::Refuse)
        .await
        .map_err(fail)?;
    Ok(session)
}

async fn pop3_retrieve_job(lab: &Lab) -> Result<Duration> {
    let mut session = pop3_session(lab).await?;
    let stat = session.stat().await.map_err(fail)?;
    if (stat.count as usize) < MESSAGES {
        return Err(format!("{FETCH_USER} has {} messages: seed it", stat.count));
    }
    let numbers: Vec<u32> = (1..=MESSAGES as u32).collect();
    let started = Instant::now();
    let results = session
        .retrieve_many(&numbers, |_| async { Ok(tokio::io::sink()) })
        .await
        .map_err(fail)?;
    let elapsed = started.elapsed();
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        return Err(e.to_string());
    }
    session.quit().await.map_err(fail)?;
    Ok(elapsed)
}

async fn pop3_commands_job(lab: &Lab) -> Result<Duration> {
    let mut session = pop3_session(lab).await?;
    let started = Instant::now();
    for msg in 1..=MESSAGES as u32 {
        session.list_one(msg).await.map_err(fail)?;
    }
    let elapsed = started.elapsed();
    session.quit().await.map_err(fail)?;
    Ok(elapsed)
}

async fn imap_job(lab: &Lab) -> Result<Duration> {
    let endpoint = lab.endpoint(Protocol::Imap, lab.imaps);
    let mut session = imap::connect(&endpoint, &lab.tls, &timeouts())
        .await
        .map_err(fail)?;
    let credential = Credential::password(FETCH_USER, lab.bench_password.as_bytes());
    session
        .login(&credential, Plaintext::Refuse)
        .await
        .map_err(fail)?;
    session.examine(&Mailbox::inbox()).await.map_err(fail)?;
    let uids = session.uid_search(&SearchKey::All).await.map_err(fail)?;
    if uids.len() < MESSAGES {
        return Err(format!("{FETCH_USER} has {} messages: seed it", uids.len()));
    }
    let mut requests: Vec<(u32, tokio::io::Sink)> = uids[..MESSAGES]
        .iter()
        .map(|&uid| (uid, tokio::io::sink()))
        .collect();
    let started = Instant::now();
    session.fetch_messages(&mut requests).await.map_err(fail)?;
    let elapsed = started.elapsed();
    session.logout().await.map_err(fail)?;
    Ok(elapsed)
}

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("sessions bench: {e}");
        std::process::exit(1);
    }
}

fn main_inner() -> Result<()> {
    let runs = numeric_flag("--runs", 5, 1, "usage: sessions [--runs N]")? as usize;
    let lab = Lab::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let jobs = [
        "SMTP: 500 messages, one connection",
        "POP3S: 500 × 4 KiB RETR, pipelined",
        "POP3S: 500 × LIST n, one at a time",
        "IMAPS: 500 × 4 KiB, fetch_messages",
    ];
    // MAILCAT_BENCH_JOBS=0,3 runs only those jobs (by their place in the table).
    let only: Option<Vec<usize>> = std::env::var("MAILCAT_BENCH_JOBS").ok().map(|list| {
        list.split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    });
    let mut samples = vec![Vec::new(); jobs.len()];
    for _ in 0..runs {
        for (i, sample) in samples.iter_mut().enumerate() {
            if only.as_ref().is_some_and(|only| !only.contains(&i)) {
                continue;
            }
            let took = runtime.block_on(async {
                match i {
                    0 => smtp_job(&lab).await,
                    1 => pop3_retrieve_job(&lab).await,
                    2 => pop3_commands_job(&lab).await,
                    _ => imap_job(&lab).await,
                }
            })?;
            sample.push(took);
        }
    }
    println!("{runs} runs each; times after login");
    println!("{:<40} {:>10} {:>10}", "job", "median ms", "min ms");
    for (job, mut sample) in jobs.iter().zip(samples) {
        if sample.is_empty() {
            continue;
        }
        sample.sort();
        let median = sample[sample.len() / 2];
        println!(
            "{job:<40} {:>10} {:>10}",
            median.as_millis(),
            sample[0].as_millis()
        );
    }
    Ok(())
}
