//! `mailcat check`: test the account settings one step at a time, as a mail client's "Test
//! Account Settings" does, and say for each failure what is wrong and how to fix it.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use mailcat_transport::dialogue::{self, StepReport};
use mailcat_transport::{Endpoint, Error, Protocol, Step, Timeouts, TlsSettings};
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::config::AccountSettings;
use crate::exit;

/// `check` waits at most this long for each network step unless `--timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the command; returns the exit code.
pub fn run(cli: &Cli) -> u8 {
    let settings = match crate::config::resolve(cli) {
        Ok(settings) => settings,
        Err(crate::config::Resolved::Usage(message)) => {
            eprintln!("mailcat check: {message}");
            return exit::USAGE;
        }
        Err(crate::config::Resolved::Config(error)) => {
            eprintln!("mailcat: {error}");
            return exit::CONFIG;
        }
    };
    let servers = match servers(&settings) {
        Ok(servers) => servers,
        Err(message) => {
            eprintln!("mailcat check: {message}");
            return exit::USAGE;
        }
    };
    let timeouts = match settings.timeout {
        Some(secs) if secs.is_finite() && secs > 0.0 => {
            Timeouts::uniform(Duration::from_secs_f64(secs))
        }
        Some(_) => {
            eprintln!(
                "mailcat check: --timeout takes a number of seconds above 0, e.g. --timeout 10"
            );
            return exit::USAGE;
        }
        None => Timeouts::uniform(DEFAULT_TIMEOUT),
    };
    let mut settings_tls = TlsSettings::default();
    settings_tls
        .extra_ca_files
        .extend(settings.ca_file.iter().cloned());
    let tls = match settings_tls.client_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("mailcat check: {err}");
            return exit::CONFIG;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mailcat check: cannot start: {err}");
            return exit::UNAVAILABLE;
        }
    };
    let mut printer = Printer::new(cli.json, cli.quiet);
    if !settings.email.is_empty() {
        printer.account(
            &settings.name,
            &settings.email,
            Some(settings.login.as_str()).filter(|l| *l != settings.email),
        );
    }
    let mut code = exit::OK;
    for (role, endpoint) in &servers {
        printer.server(role, endpoint);
        let result = runtime.block_on(async {
            let opened = dialogue::open(endpoint, Arc::clone(&tls), &timeouts, &mut |report| {
                printer.step(&report)
            })
            .await?;
            opened.connection.close().await;
            Ok::<(), Error>(())
        });
        match result {
            Ok(()) => printer.passed(),
            Err(err) => {
                let failure = exit_code(&err);
                printer.failed(&err, endpoint);
                // The worse failure decides: unavailable beats temporary.
                if code == exit::OK || failure == exit::UNAVAILABLE {
                    code = failure;
                }
            }
        }
    }
    printer.finish(code == exit::OK);
    code
}

/// The servers to check: the account's incoming and outgoing servers.
fn servers(settings: &AccountSettings) -> Result<Vec<(&'static str, Endpoint)>, String> {
    let mut servers = Vec::new();
    if let Some(endpoint) = &settings.incoming {
        if endpoint.protocol == Protocol::Smtp {
            return Err(format!(
                "the incoming server {endpoint} is an SMTP server; incoming mail is read over imaps://, imap://, pop3s:// or pop3://"
            ));
        }
        servers.push(("incoming", endpoint.clone()));
    }
    if let Some(endpoint) = &settings.outgoing {
        if endpoint.protocol != Protocol::Smtp {
            return Err(format!(
                "the outgoing server {endpoint} is not an SMTP server; mail is sent over smtp:// (STARTTLS, port 587) or smtps:// (port 465)"
            ));
        }
        servers.push(("outgoing", endpoint.clone()));
    }
    if servers.is_empty() {
        return Err("nothing to check: give --incoming URL and/or --outgoing URL, e.g. \
                    --incoming imaps://outlook.office365.com --outgoing smtp://smtp-mail.outlook.com:587"
            .into());
    }
    Ok(servers)
}

/// The sysexits code for a failed check.
fn exit_code(err: &Error) -> u8 {
    match err {
        Error::CaFile { .. } => exit::CONFIG,
        Error::Timeout { .. } | Error::Resolve { .. } | Error::Io { .. } | Error::Closed { .. } => {
            exit::TEMPFAIL
        }
        Error::Refused { reply, .. } if reply.starts_with('4') => exit::TEMPFAIL,
        _ => exit::UNAVAILABLE,
    }
}

/// Prints the steps as they finish: text for people, or one JSON document at the end.
struct Printer {
    json: bool,
    quiet: bool,
    servers: Vec<Value>,
    steps: Vec<Value>,
}

impl Printer {
    fn new(json: bool, quiet: bool) -> Self {
        Printer {
            json,
            quiet,
            servers: Vec::new(),
            steps: Vec::new(),
        }
    }

    fn out(&self, line: &str) {
        if !self.json && !self.quiet {
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    }

    fn account(&mut self, name: &str, email: &str, user: Option<&str>) {
        let login = user
            .map(|user| format!(", login {user}"))
            .unwrap_or_default();
        self.out(&format!("Account {email} ({name}{login})"));
    }

    fn server(&mut self, role: &str, endpoint: &Endpoint) {
        self.steps.clear();
        self.servers.push(
            json!({ "role": role, "url": endpoint.url(), "protocol": endpoint.protocol.name(),
                                  "security": endpoint.security.describe() }),
        );
        self.out(&format!(
            "{} server: {} ({}, {})",
            capitalize(role),
            endpoint.url(),
            endpoint.protocol,
            endpoint.security.describe()
        ));
    }

    fn step(&mut self, report: &StepReport) {
        let ms = report.elapsed.as_secs_f64() * 1000.0;
        self.steps.push(json!({ "step": report.step.describe(), "ok": true, "ms": round(ms), "detail": report.detail }));
        self.out(&format!(
            "  ✓ {:<17} {:>7.1} ms  {}",
            report.step.describe(),
            ms,
            shorten(&report.detail, 90)
        ));
    }

    fn passed(&mut self) {
        self.close_server(true, None);
    }

    fn failed(&mut self, err: &Error, endpoint: &Endpoint) {
        let step = err.step().map(Step::describe).unwrap_or("setup");
        self.steps
            .push(json!({ "step": step, "ok": false, "error": err.to_string() }));
        self.out(&format!("  ✗ {step:<17}"));
        self.out(&format!("    {err}"));
        if let Some(fix) = extra_advice(err, endpoint) {
            self.out(&format!("    {fix}"));
        }
        self.close_server(false, Some(err.to_string()));
    }

    fn close_server(&mut self, ok: bool, error: Option<String>) {
        if let Some(Value::Object(server)) = self.servers.last_mut() {
            server.insert("ok".into(), ok.into());
            server.insert(
                "steps".into(),
                Value::Array(std::mem::take(&mut self.steps)),
            );
            if let Some(error) = error {
                server.insert("error".into(), error.into());
            }
        }
    }

    fn finish(&mut self, ok: bool) {
        if self.json {
            let doc = json!({ "ok": ok, "servers": self.servers });
            println!("{doc}");
        } else if ok {
            self.out("All checks passed.");
        } else if !self.quiet {
            self.out("Some checks failed: see the ✗ lines above.");
        }
    }
}

/// Advice that depends on what the user configured, not only on what happened.
fn extra_advice(err: &Error, endpoint: &Endpoint) -> Option<String> {
    match err {
        Error::ConnectionRefused { .. } => {
            let expected = endpoint.protocol.security_of_port(endpoint.port);
            match expected {
                Some(s) if s != endpoint.security => Some(format!(
                    "port {} is normally {} with {}; check the URL's scheme",
                    endpoint.port,
                    endpoint.protocol,
                    s.describe()
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}
