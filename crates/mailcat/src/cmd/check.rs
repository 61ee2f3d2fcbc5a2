//! `mailcat check`: test the account settings one step at a time, as a mail client's "Test
//! Account Settings" does (the library's [`mailcat_session::check`]): DNS, TCP, TLS or
//! STARTTLS, greeting, capabilities and login for the incoming and the outgoing server (the same
//! credential for both, unless the account says otherwise); with `--send-test`, a message to the
//! account itself that must arrive. Each failure says what is wrong and how to fix it. With only
//! an address, the servers come from autoconfig first.

use std::io::{self, IsTerminal};
use std::time::Duration;

use mailcat_session::check::{self, Progress, Role};
use mailcat_session::Error;
use mailcat_session::StepReport;
use mailcat_transport::{Endpoint, Protocol, Step};
use serde_json::{json, Value};

use crate::cli::{CheckArgs, Cli};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::config::AccountSettings;
use crate::exit;

/// `check` waits at most this long for each network step unless `--timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `--send-test` waits for the test message to arrive.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli, args: &CheckArgs) -> u8 {
    match check(cli, args) {
        Ok(code) | Err(Exit(code)) => code,
    }
}

fn check(cli: &Cli, args: &CheckArgs) -> Result<u8, Exit> {
    let mut settings = common::settings(cli, "check")?;
    if settings.incoming.is_none() && settings.outgoing.is_none() && !settings.email.is_empty() {
        autoconfigure(cli, &mut settings)?;
    }
    let servers =
        servers(&settings).map_err(|message| common::failed("check", &message, exit::USAGE))?;
    if let Some(bad) = cli.timeout.filter(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(common::failed(
            "check",
            &format!("--timeout {bad}: give a number of seconds above 0, e.g. --timeout 10"),
            exit::USAGE,
        ));
    }
    let log_in = has_credential(cli, &settings);
    if args.send_test && (!log_in || settings.incoming.is_none() || settings.outgoing.is_none()) {
        return Err(common::failed("check", "--send-test needs the incoming and the outgoing server and a password or token (MAILCAT_PASSWORD, --password-cmd or --oauth2-token-cmd)", exit::USAGE));
    }
    // Without a credential there is no login to name: the connection steps are checked alone.
    if !log_in && settings.login.is_empty() {
        settings.login = "(no login)".into();
    }
    let mut account = common::account(cli, &settings, "check", false, false)?;
    account.timeouts = common::timeouts(&settings, Some(DEFAULT_TIMEOUT));
    let runtime = common::runtime()?;

    let mut printer = Printer::new(cli.json, cli.quiet);
    if !settings.email.is_empty() {
        printer.account(
            &settings.name,
            &settings.email,
            Some(settings.login.as_str()).filter(|l| *l != settings.email),
        );
    }
    let options = check::Options {
        log_in,
        send_test: args.send_test,
        arrival_timeout: ARRIVAL_TIMEOUT,
    };
    let report = runtime
        .block_on(check::check(
            &account,
            &servers,
            &options,
            &mut |progress| printer.show(progress),
        ))
        .map_err(|e| common::failed("check", &e.to_string(), exit::CONFIG))?;
    // The most telling failure decides the exit code: unreachable (69) and refused login (77)
    // over temporary ones (75).
    let mut code = exit::OK;
    let failures = report
        .servers
        .iter()
        .filter_map(|s| s.outcome.as_ref().err())
        .chain(report.test_message.iter().filter_map(|t| t.as_ref().err()));
    for error in failures {
        let failure = common::exit_code(error);
        if code == exit::OK || failure == exit::UNAVAILABLE || failure == exit::NOPERM {
            code = failure;
        }
    }
    printer.finish(report.passed());
    Ok(code)
}

/// True when logging in can be tried without asking: a password or token is configured, or a
/// terminal is there to ask on.
fn has_credential(cli: &Cli, settings: &AccountSettings) -> bool {
    std::env::var_os("MAILCAT_PASSWORD").is_some()
        || cli.password_cmd.is_some()
        || cli.oauth2_token_cmd.is_some()
        || settings.password_cmd.is_some()
        || settings.oauth2_token_cmd.is_some()
        || settings.oauth2.is_some()
        || (io::stdin().is_terminal() && io::stderr().is_terminal())
}

/// Only an address was given: the servers come from autoconfig, as a mail client's setup does
/// before it tests the settings. The preferred incoming and outgoing servers are checked.
fn autoconfigure(cli: &Cli, settings: &mut AccountSettings) -> Result<(), Exit> {
    let how = crate::cmd::autoconfig::discovery(cli, common::tls(settings))
        .map_err(|message| common::failed("check", &message, exit::USAGE))?;
    let found = common::runtime()?
        .block_on(mailcat_session::autoconfig::discover(&settings.email, &how))
        .map_err(|e| common::failed("check", &e.to_string(), exit::USAGE))?;
    let (Some(incoming), Some(outgoing)) = (found.incoming.first(), found.outgoing.first()) else {
        return Err(common::failed(
            "check",
            &format!(
            "no servers given, and autoconfig found {} for {} (see `mailcat autoconfig {}`): give --incoming URL and --outgoing URL",
            if found.incoming.is_empty() && found.outgoing.is_empty() { "none" } else { "only some" },
            terminal_safe(&settings.email),
            terminal_safe(&settings.email)
        ),
            exit::UNAVAILABLE,
        ));
    };
    if !cli.json && !cli.quiet {
        outln!(
            "Servers found by autoconfig: {} and {} (from {}); `mailcat autoconfig {}` prints the config lines that keep them",
            incoming.endpoint.url(),
            outgoing.endpoint.url(),
            terminal_safe(&incoming.source.describe()),
            terminal_safe(&settings.email)
        );
        for note in &found.notes {
            outln!("  note: {}", terminal_safe(note));
        }
    }
    if cli.user.is_none() {
        if let Some(login) = incoming.login.as_ref().or(outgoing.login.as_ref()) {
            settings.login = login.clone();
        }
    }
    settings.incoming = Some(incoming.endpoint.clone());
    settings.outgoing = Some(outgoing.endpoint.clone());
    Ok(())
}
/// The servers to check: the account's incoming and outgoing servers.
fn servers(settings: &AccountSettings) -> Result<Vec<(Role, Endpoint)>, String> {
    let mut servers = Vec::new();
    if let Some(endpoint) = &settings.incoming {
        if endpoint.protocol == Protocol::Smtp {
            return Err(format!(
                "the incoming server {endpoint} is an SMTP server; incoming mail is read over imaps://, imap://, pop3s:// or pop3://"
            ));
        }
        servers.push((Role::Incoming, endpoint.clone()));
    }
    if let Some(endpoint) = &settings.outgoing {
        if endpoint.protocol != Protocol::Smtp {
            return Err(format!(
                "the outgoing server {endpoint} is not an SMTP server; mail is sent over smtp:// (STARTTLS, port 587) or smtps:// (port 465)"
            ));
        }
        servers.push((Role::Outgoing, endpoint.clone()));
    }
    if servers.is_empty() {
        return Err("nothing to check: give --incoming URL and/or --outgoing URL, e.g. \
                    --incoming imaps://outlook.office365.com --outgoing smtp://smtp-mail.outlook.com:587"
            .into());
    }
    Ok(servers)
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
        Self {
            json,
            quiet,
            servers: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Shows one piece of the check's progress.
    fn show(&mut self, progress: Progress<'_>) {
        match progress {
            Progress::Server { role, endpoint } => self.server(role.describe(), endpoint),
            Progress::Step { report, secured } => self.step(report, secured),
            Progress::Done {
                step,
                elapsed,
                detail,
            } => self.named(step, elapsed, &detail),
            Progress::Note(text) => self.note(&text),
            Progress::LoginSkipped => self.note(
                "login skipped: no password or token given \
                 (MAILCAT_PASSWORD, --password-cmd, --oauth2-token-cmd)",
            ),
            Progress::Passed => self.passed(),
            Progress::Failed {
                step,
                error,
                advice,
            } => {
                self.failed_named(step, error);
                if let Some(advice) = advice {
                    self.out(&format!("    {}", terminal_safe(&advice)));
                }
            }
            Progress::TestMessage => self.section("Test message"),
            _ => {}
        }
    }

    fn out(&self, line: &str) {
        if !self.json && !self.quiet {
            outln!("{line}");
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

    fn section(&mut self, title: &str) {
        self.steps.clear();
        self.servers.push(json!({ "role": title.to_lowercase() }));
        self.out(&format!("{title}:"));
    }

    /// A finished step; `secured` says whether TLS was up when the server sent `detail`.
    fn step(&mut self, report: &StepReport, secured: bool) {
        let unverified = !secured && matches!(report.step, Step::Greeting | Step::Capabilities);
        if unverified {
            let detail = format!("(before TLS, unverified) {}", report.detail);
            self.named(report.step.describe(), report.elapsed, &detail);
        } else {
            self.named(report.step.describe(), report.elapsed, &report.detail);
        }
    }

    fn named(&mut self, name: &str, elapsed: Duration, detail: &str) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        self.steps.push(
            json!({ "step": name, "ok": true, "ms": (ms * 10.0).round() / 10.0, "detail": detail }),
        );
        self.out(&format!(
            "  ✓ {name:<17} {ms:>7.1} ms  {}",
            shorten(&terminal_safe(detail), 90)
        ));
    }

    fn note(&mut self, text: &str) {
        self.steps
            .push(json!({ "step": "note", "ok": true, "detail": text }));
        self.out(&format!("  – {text}"));
    }

    fn passed(&mut self) {
        self.close_server(true, None);
        self.set("verdict", check::Verdict::Success.name().into());
    }

    fn failed_named(&mut self, step: &str, error: &Error) {
        self.steps
            .push(json!({ "step": step, "ok": false, "error": error.to_string() }));
        self.out(&format!("  ✗ {step}"));
        self.out(&format!("    {}", terminal_safe(&error.to_string())));
        if let Some(hint) = error
            .hint()
            .filter(|hint| !error.to_string().contains(hint.as_str()))
        {
            self.out(&format!("    hint: {hint}"));
        }
        if let Some(hint) = crate::cmd::trust::words(error) {
            self.out(&format!("    hint: {hint}"));
        }
        if let Some(hint) = common::oauth2_words(error) {
            self.out(&format!("    hint: {hint}"));
        }
        self.close_server(false, Some(error.to_string()));
        self.set("verdict", check::Verdict::of(error).name().into());
    }

    /// Sets a field of the JSON object of the server being checked.
    fn set(&mut self, key: &str, value: Value) {
        if let Some(Value::Object(server)) = self.servers.last_mut() {
            server.insert(key.into(), value);
        }
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
            outln!("{}", json!({ "ok": ok, "servers": self.servers }));
            // The report says what failed: no error object follows it.
            crate::failure::answered();
        } else if ok {
            self.out("All checks passed.");
        } else {
            self.out("Some checks failed: see the ✗ lines above.");
        }
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}
