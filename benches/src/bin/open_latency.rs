//! Opening bench: how long the library takes from nothing to a connection ready for login
//! (resolve, connect, TLS, greeting, capabilities) against the lab, and what opening many
//! connections one after the other costs in time and allocations.
//!
//! ```sh
//! eval "$(tests/lab/lab.sh env)"
//! cargo run --release -p mailcat-benches --bin open_latency -- [--runs 20] [--connections 100]
//! ```
//!
//! Part 1, per step, median (min, max) of `--runs` opens each: IMAP, POP3 and SMTP submission,
//! each with implicit TLS and with STARTTLS, trusting only the lab's CA. A step that waits for a delayed ACK
//! shows as a step of 40 ms on loopback, where every other step takes well under 5 ms.
//!
//! Part 2: `--connections` IMAPS connections opened one after the other with
//! `imap::connect` (which asks its `TlsSettings` for the TLS configuration each time, as every
//! session does), each closed before the next; the total time and the allocations made, once
//! trusting the lab's CA only, once the Mozilla and system roots as well (the CLI's default).
//! This is a benchmark, not a test: nothing here asserts a speed.

use std::alloc::System;
use std::time::{Duration, Instant};

use mailcat_session::{imap, open, StepReport};
use mailcat_transport::{Endpoint, Protocol, Security, Step, Timeouts, TlsSettings};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

/// The system allocator, counting.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A step slower than this on loopback waited for something: a delayed ACK takes 40 ms.
const SLOW: Duration = Duration::from_millis(10);

const USAGE: &str = "usage: open_latency [--runs N] [--connections N]";

type Result<T> = std::result::Result<T, String>;

fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: eval \"$(tests/lab/lab.sh env)\""))
}

fn port(name: &str) -> Result<u16> {
    var(name)?
        .parse()
        .map_err(|_| format!("{name} is not a port"))
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn options() -> Result<(usize, usize)> {
    let (mut runs, mut connections) = (20, 100);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = args.iter().map(String::as_str);
    while let Some(flag) = args.next() {
        let n = args.next().and_then(|n| n.parse().ok()).filter(|&n| n >= 1);
        match (flag, n) {
            ("--runs", Some(n)) => runs = n,
            ("--connections", Some(n)) => connections = n,
            _ => return Err(USAGE.into()),
        }
    }
    Ok((runs, connections))
}

fn timeouts() -> Timeouts {
    Timeouts::uniform(Duration::from_secs(30))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Opens `endpoint` `runs` times; prints the median, min and max of each step and the total.
async fn steps(name: &str, endpoint: &Endpoint, tls: &TlsSettings, runs: usize) -> Result<()> {
    let mut table: Vec<(String, Vec<Duration>)> = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut reports: Vec<StepReport> = Vec::new();
        let config = tls.client_config().map_err(fail)?;
        let opened = open(endpoint, config, &timeouts(), &mut |r| reports.push(r))
            .await
            .map_err(fail)?;
        let total = started.elapsed();
        opened.connection.close().await;
        // The same step twice (capabilities before and after STARTTLS) gets a suffix.
        let mut seen: Vec<Step> = Vec::new();
        let mut row = Vec::new();
        for report in reports {
            let again = seen.contains(&report.step);
            seen.push(report.step);
            let label = format!("{:?}{}", report.step, if again { " (TLS)" } else { "" });
            row.push((label, report.elapsed));
        }
        row.push(("total".into(), total));
        for (i, (label, elapsed)) in row.into_iter().enumerate() {
            if table.len() <= i {
                table.push((label, Vec::new()));
            }
            table[i].1.push(elapsed);
        }
    }
    println!("{name}: {runs} opens");
    println!(
        "  {:<20} {:>10} {:>10} {:>10} {:>12}",
        "step", "median ms", "min ms", "max ms", "runs > 10 ms"
    );
    for (label, mut sample) in table {
        sample.sort();
        let slow = sample.iter().filter(|&&d| d > SLOW).count();
        println!(
            "  {label:<20} {:>10.2} {:>10.2} {:>10.2} {slow:>12}",
            ms(sample[sample.len() / 2]),
            ms(sample[0]),
            ms(sample[sample.len() - 1])
        );
    }
    Ok(())
}

/// Opens `count` IMAPS connections one after the other, each closed before the next.
async fn many(name: &str, endpoint: &Endpoint, tls: &TlsSettings, count: usize) -> Result<()> {
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    for _ in 0..count {
        let session = imap::connect(endpoint, tls, &timeouts())
            .await
            .map_err(fail)?;
        drop(session);
    }
    let elapsed = started.elapsed();
    let stats = region.change();
    let allocations = (stats.allocations + stats.reallocations) as u64;
    let allocated = (stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize) as u64;
    println!(
        "{count} IMAPS connections, {name}: {:.0} ms ({:.2} ms each), {} allocations ({} each), \
         {:.1} MiB allocated ({:.1} KiB each)",
        ms(elapsed),
        ms(elapsed) / count as f64,
        allocations,
        allocations / count as u64,
        allocated as f64 / 1_048_576.0,
        allocated as f64 / 1024.0 / count as f64,
    );
    Ok(())
}

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("open_latency bench: {e}");
        std::process::exit(1);
    }
}

fn main_inner() -> Result<()> {
    let (runs, connections) = options()?;
    let host = var("MAILCAT_LAB_HOST")?;
    let ca_file = var("MAILCAT_LAB_CA_FILE")?;
    let private = TlsSettings::only_ca_file(&ca_file);
    let system = TlsSettings {
        extra_ca_files: vec![ca_file.into()],
        ..TlsSettings::default()
    };
    let endpoint = |protocol, security, port| -> Result<Endpoint> {
        Ok(Endpoint::new(protocol, &host, security).with_port(self::port(port)?))
    };
    let imaps = endpoint(
        Protocol::Imap,
        Security::ImplicitTls,
        "MAILCAT_LAB_IMAPS_PORT",
    )?;
    let opens = [
        ("IMAPS (implicit TLS)", imaps.clone()),
        (
            "IMAP STARTTLS",
            endpoint(Protocol::Imap, Security::StartTls, "MAILCAT_LAB_IMAP_PORT")?,
        ),
        (
            "POP3S (implicit TLS)",
            endpoint(
                Protocol::Pop3,
                Security::ImplicitTls,
                "MAILCAT_LAB_POP3S_PORT",
            )?,
        ),
        (
            "POP3 STLS",
            endpoint(Protocol::Pop3, Security::StartTls, "MAILCAT_LAB_POP3_PORT")?,
        ),
        (
            "SMTPS submission (implicit TLS)",
            endpoint(
                Protocol::Smtp,
                Security::ImplicitTls,
                "MAILCAT_LAB_SUBMISSIONS_PORT",
            )?,
        ),
        (
            "SMTP submission (STARTTLS)",
            endpoint(
                Protocol::Smtp,
                Security::StartTls,
                "MAILCAT_LAB_SUBMISSION_PORT",
            )?,
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    runtime.block_on(async {
        for (name, endpoint) in &opens {
            steps(name, endpoint, &private, runs).await?;
        }
        many("lab CA only", &imaps, &private, connections).await?;
        many(
            "Mozilla + system roots + lab CA",
            &imaps,
            &system,
            connections,
        )
        .await
    })
}
