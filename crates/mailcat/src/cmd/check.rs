//! `mailcat check`: test the account settings one step at a time, as a mail client's "Test
//! Account Settings" does: DNS, TCP, TLS or STARTTLS, greeting, capabilities and login for the
//! incoming and the outgoing server (the same credential for both, unless the account says
//! otherwise); with `--send-test`, a message to the account itself that must arrive. Each
//! failure says what is wrong and how to fix it.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use mailcat_session::autoconfig::providers::{self, SignIn};
use mailcat_session::smtp::{Envelope, MessageInfo};
use mailcat_session::{
    Account, Credential, CredentialKind, Error, ImapSession, Pop3Session, SmtpSession,
};
use mailcat_transport::dialogue::{self, StepReport};
use mailcat_transport::{Endpoint, Protocol, Security, Step};
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
pub fn run(cli: &Cli, args: &CheckArgs) -> u8 {
    match check(cli, args) {
        Ok(code) | Err(Exit(code)) => code,
    }
}

fn check(cli: &Cli, args: &CheckArgs) -> Result<u8, Exit> {
    let mut settings = common::settings(cli, "check")?;
    if settings.incoming.is_none() && settings.outgoing.is_none() && !settings.email.is_empty() {
        autoconfigure(cli, &mut settings)?;
    }
    let servers = servers(&settings).map_err(|message| {
        eprintln!("mailcat check: {message}");
        Exit(exit::USAGE)
    })?;
    if let Some(bad) = cli.timeout.filter(|s| !(s.is_finite() && *s > 0.0)) {
        eprintln!(
            "mailcat check: --timeout {bad}: give a number of seconds above 0, e.g. --timeout 10"
        );
        return Err(Exit(exit::USAGE));
    }
    let log_in = has_credential(cli, &settings);
    if args.send_test && (!log_in || settings.incoming.is_none() || settings.outgoing.is_none()) {
        eprintln!("mailcat check --send-test: needs the incoming and the outgoing server and a password or token (MAILCAT_PASSWORD, --password-cmd or --oauth2-token-cmd)");
        return Err(Exit(exit::USAGE));
    }
    // Without a credential there is no login to name: the connection steps are checked alone.
    if !log_in && settings.login.is_empty() {
        settings.login = "(no login)".into();
    }
    let mut account = common::account(cli, &settings, "check", false, false)?;
    account.timeouts = common::timeouts(&settings, Some(DEFAULT_TIMEOUT));
    let tls = account.tls.client_config().map_err(|e| {
        eprintln!("mailcat check: {e}");
        Exit(exit::CONFIG)
    })?;
    let runtime = common::runtime()?;

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
        if let Some(advice) = legacy_host_advice(endpoint) {
            printer.note(&advice);
        }
        let credential = if *role == "incoming" {
            account.credential.clone()
        } else {
            account.outgoing_credential().clone()
        };
        let result = runtime.block_on(async {
            // What a server says before TLS is up may come from anyone on the path (SECURITY.md
            // row 10): shown, but marked as such.
            let mut secured = endpoint.security == Security::ImplicitTls;
            let opened = dialogue::open(endpoint, tls.clone(), &account.timeouts, &mut |r| {
                secured |= r.step == Step::StartTls;
                printer.step(&r, secured)
            })
            .await?;
            let presented = opened.connection.connection().peer_certificate();
            if presented.is_some_and(|p| account.tls.pinned.contains(&p)) {
                printer.note(
                    "the certificate is trusted because you pinned it (--tls-fingerprint), not \
                     because an authority vouches for it: its names and dates are not checked",
                );
            }
            if !log_in {
                opened.connection.close().await;
                return Ok(());
            }
            let started = Instant::now();
            let plaintext = account.dangerous_allow_plaintext_auth;
            match endpoint.protocol {
                Protocol::Imap => {
                    let mut session = ImapSession::new(opened.connection, opened.capabilities);
                    session.login(&credential, plaintext).await?;
                    printer.named("login", started.elapsed(), &describe(&credential));
                    session.logout().await
                }
                Protocol::Pop3 => {
                    let mut session = Pop3Session::new(opened.connection, opened.capabilities);
                    session.set_greeting(&opened.greeting);
                    session.login(&credential, plaintext).await?;
                    printer.named("login", started.elapsed(), &describe(&credential));
                    session.quit().await
                }
                Protocol::Smtp => {
                    let mut session = SmtpSession::new(opened.connection, opened.capabilities);
                    session.login(&credential, plaintext).await?;
                    printer.named("login", started.elapsed(), &describe(&credential));
                    session.logout().await
                }
            }
        });
        match result {
            Ok(()) => {
                if !log_in {
                    printer.note("login skipped: no password or token given (MAILCAT_PASSWORD, --password-cmd, --oauth2-token-cmd)");
                }
                printer.passed();
            }
            Err(error) => {
                let failure = common::exit_code(&error);
                printer.failed(&error, endpoint, credential.kind());
                if code == exit::OK || failure == exit::UNAVAILABLE || failure == exit::NOPERM {
                    code = failure;
                }
            }
        }
    }
    if args.send_test && code == exit::OK {
        printer.section("Test message");
        if let Err(error) = runtime.block_on(send_test(&account, &mut printer)) {
            code = common::exit_code(&error);
            printer.failed_named("test message", &error);
        } else {
            printer.passed();
        }
    }
    printer.finish(code == exit::OK);
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
        || (io::stdin().is_terminal() && io::stderr().is_terminal())
}

fn describe(credential: &Credential) -> String {
    let kind = credential.kind().describe();
    // "an OAuth2 token", "a password"
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("as {} with {article} {kind}", credential.login())
}

/// Sends a message to the account itself and waits until the incoming server has it; then
/// removes it again.
async fn send_test(account: &Account, printer: &mut Printer) -> Result<(), Error> {
    let token = format!(
        "mailcat-check-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let address: mailcat_codec::smtp::address::Address = account.email.parse()?;
    let message = format!(
        "From: {address}\r\nTo: {address}\r\nSubject: mailcat account check {token}\r\nMessage-ID: <{token}@mailcat.invalid>\r\n\r\n\
         This message was sent by `mailcat check --send-test` to see that mail arrives. It is removed again.\r\n"
    );
    let started = Instant::now();
    let envelope = Envelope {
        from: Some(address.clone()),
        to: vec![address],
        ..Default::default()
    };
    account
        .send(
            &envelope,
            &mut message.as_bytes(),
            &MessageInfo::of_bytes(message.as_bytes()),
        )
        .await?;
    printer.named("send", started.elapsed(), "accepted by the outgoing server");
    let started = Instant::now();
    let mut incoming = account.receive().await?;
    loop {
        let listed = incoming.list(None, true).await?;
        if let Some(found) = listed.into_iter().find(|m| {
            m.headers
                .subject
                .as_deref()
                .is_some_and(|s| s.contains(&token))
        }) {
            printer.named(
                "arrival",
                started.elapsed(),
                "the message is in the incoming mailbox (removed again)",
            );
            incoming.delete(std::slice::from_ref(&found.id)).await?;
            return incoming.close().await;
        }
        if started.elapsed() > ARRIVAL_TIMEOUT {
            incoming.abort().await;
            return Err(Error::Rejected {
                host: account.incoming.host.clone(),
                command: "the test message".into(),
                reply: format!("did not arrive within {} s; check the provider's spam folder and forwarding rules", ARRIVAL_TIMEOUT.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Only an address was given: the servers come from autoconfig, as a mail client's setup does
/// before it tests the settings. The preferred incoming and outgoing servers are checked.
fn autoconfigure(cli: &Cli, settings: &mut AccountSettings) -> Result<(), Exit> {
    let how = crate::cmd::autoconfig::discovery(cli, common::tls(settings)).map_err(|message| {
        eprintln!("mailcat check: {message}");
        Exit(exit::USAGE)
    })?;
    let found = common::runtime()?
        .block_on(mailcat_session::autoconfig::discover(&settings.email, &how))
        .map_err(|e| {
            eprintln!("mailcat check: {e}");
            Exit(exit::USAGE)
        })?;
    let (Some(incoming), Some(outgoing)) = (found.incoming.first(), found.outgoing.first()) else {
        eprintln!(
            "mailcat check: no servers given, and autoconfig found {} for {} (see `mailcat autoconfig {}`): give --incoming URL and --outgoing URL",
            if found.incoming.is_empty() && found.outgoing.is_empty() { "none" } else { "only some" },
            terminal_safe(&settings.email),
            terminal_safe(&settings.email)
        );
        return Err(Exit(exit::UNAVAILABLE));
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
    }

    fn failed(&mut self, error: &Error, endpoint: &Endpoint, kind: CredentialKind) {
        let step = match error {
            Error::Transport(e) => e.step().map(|s| s.describe()).unwrap_or("setup"),
            _ => "login",
        };
        self.failed_named(step, error);
        if let Some(advice) = extra_advice(error, endpoint, kind) {
            self.out(&format!("    {advice}"));
        }
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
        self.close_server(false, Some(error.to_string()));
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
        } else if ok {
            self.out("All checks passed.");
        } else {
            self.out("Some checks failed: see the ✗ lines above.");
        }
    }
}

/// Advice that depends on what the user configured, not only on what happened.
/// Known provider's legacy host name: what to use today.
fn legacy_host_advice(endpoint: &Endpoint) -> Option<String> {
    let (provider, true) = providers::by_host(&endpoint.host)? else {
        return None;
    };
    let today = if endpoint.protocol == Protocol::Smtp {
        provider.outgoing()
    } else {
        provider.incoming()
    }
    .into_iter()
    .find(|e| e.protocol == endpoint.protocol)?;
    Some(format!(
        "{} is an old name of {}'s servers; today's {} server is {}",
        endpoint.host,
        provider.name,
        endpoint.protocol,
        today.url()
    ))
}

fn extra_advice(error: &Error, endpoint: &Endpoint, kind: CredentialKind) -> Option<String> {
    match error {
        // A refused password at a provider that wants OAuth2 or an app password: say so (a
        // refusal that already says "OAuth2", 535 5.7.139, needs no more).
        e if e.is_auth()
            && kind == CredentialKind::Password
            && !matches!(e, Error::BasicAuthDisabled { .. }) =>
        {
            let (provider, _) = providers::by_host(&endpoint.host)?;
            (provider.sign_in != SignIn::Password)
                .then(|| format!("{} takes {}", provider.name, provider.sign_in.advice()))
        }
        Error::Transport(mailcat_transport::Error::ConnectionRefused { .. }) => {
            match endpoint.protocol.security_of_port(endpoint.port) {
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

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(host: &str) -> Error {
        Error::AuthenticationFailed {
            host: host.into(),
            login: "me@gmail.com".into(),
            mechanism: "PLAIN",
            reply: "[AUTHENTICATIONFAILED] Invalid credentials".into(),
            hint: None,
        }
    }

    #[test]
    fn a_refused_password_at_a_known_provider_says_how_it_signs_in() {
        let gmail = Endpoint::parse_url("imaps://imap.gmail.com").expect("URL");
        let advice = extra_advice(&refused("imap.gmail.com"), &gmail, CredentialKind::Password)
            .expect("advice");
        assert!(advice.starts_with("Gmail takes OAuth2"), "{advice}");
        assert!(advice.contains("app password"), "{advice}");
        // Not for a token, and not for a server mailcat does not know.
        assert_eq!(
            extra_advice(
                &refused("imap.gmail.com"),
                &gmail,
                CredentialKind::OAuth2Token
            ),
            None
        );
        let other = Endpoint::parse_url("imaps://mail.example.com").expect("URL");
        assert_eq!(
            extra_advice(
                &refused("mail.example.com"),
                &other,
                CredentialKind::Password
            ),
            None
        );
    }

    #[test]
    fn a_legacy_host_name_gets_todays() {
        let old = Endpoint::parse_url("pop3s://pop3.live.com").expect("URL");
        assert_eq!(
            legacy_host_advice(&old).as_deref(),
            Some("pop3.live.com is an old name of Outlook.com's servers; today's POP3 server is pop3s://outlook.office365.com:995")
        );
        let old = Endpoint::parse_url("smtp://smtp.live.com:587").expect("URL");
        assert!(legacy_host_advice(&old)
            .expect("advice")
            .ends_with("smtp://smtp-mail.outlook.com:587"));
        let current = Endpoint::parse_url("imaps://outlook.office365.com").expect("URL");
        assert_eq!(legacy_host_advice(&current), None);
    }
}
