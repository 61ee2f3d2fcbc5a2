//! `mailcat autoconfig ADDR`: the servers for an address, where they were found, and the
//! config-file lines that use them.
//!
//! Two environment variables point the search at other servers, for tests and for networks
//! with their own: `MAILCAT_AUTOCONFIG_DNS` (`IP:PORT` of the DNS server for SRV and MX) and
//! `MAILCAT_AUTOCONFIG_URL` (an `https://` base that serves the autoconfig files).

use std::time::Duration;

use mailcat_session::autoconfig::providers::SignIn;
use mailcat_session::autoconfig::{self, Discovery, Found, Server};
use mailcat_session::oauth2::provider::{ProviderKind, README_SECTION};
use serde_json::{json, Value};

use crate::cli::{AutoconfigArgs, Cli};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli, args: &AutoconfigArgs) -> u8 {
    match autoconfig(cli, args) {
        Ok(code) | Err(Exit(code)) => code,
    }
}

fn autoconfig(cli: &Cli, args: &AutoconfigArgs) -> Result<u8, Exit> {
    let usage = |message: String| common::failed("autoconfig", &message, exit::USAGE);
    let Some(address) = args.address.clone().or_else(|| cli.email.clone()) else {
        return Err(usage(
            "give the address to look up, e.g. mailcat autoconfig me@example.com".into(),
        ));
    };
    let mut tls = mailcat_transport::TlsSettings::default();
    tls.extra_ca_files.extend(cli.ca_file.iter().cloned());
    tls.pinned.extend(cli.tls_fingerprint);
    let how = discovery(cli, tls).map_err(usage)?;
    let found = common::runtime()?
        .block_on(autoconfig::discover(&address, &how))
        .map_err(|e| match e {
            autoconfig::AutoconfigError::BadAddress(_)
            | autoconfig::AutoconfigError::NonAsciiDomain(_) => usage(e.to_string()),
            other => common::failed("autoconfig", &other.to_string(), exit::CONFIG),
        })?;
    if cli.json {
        outln!("{}", to_json(&found));
        // Empty server lists say "nothing found" themselves: no error object follows.
        crate::failure::answered();
    } else {
        print_text(&found, cli.quiet);
    }
    if found.incoming.is_empty() && found.outgoing.is_empty() {
        if !cli.json {
            eprintln!(
                "mailcat autoconfig: no server found for {}: ask the provider for its settings and give them with --incoming and --outgoing",
                terminal_safe(&address)
            );
        }
        return Ok(exit::UNAVAILABLE);
    }
    Ok(exit::OK)
}

/// The search settings: the given TLS trust, the stage limit from `--timeout`, and the
/// environment's DNS server and autoconfig base.
pub(crate) fn discovery(
    cli: &Cli,
    tls: mailcat_transport::TlsSettings,
) -> Result<Discovery, String> {
    let mut how = Discovery {
        tls,
        ..Discovery::default()
    };
    if let Some(seconds) = cli.timeout {
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(format!(
                "--timeout {seconds}: give a number of seconds above 0, e.g. --timeout 10"
            ));
        }
        how.stage_timeout = Duration::from_secs_f64(seconds);
    }
    if let Ok(server) = std::env::var("MAILCAT_AUTOCONFIG_DNS") {
        how.dns_server = Some(server.parse().map_err(|_| {
            format!("MAILCAT_AUTOCONFIG_DNS={server:?}: give IP:PORT, e.g. 127.0.0.1:53")
        })?);
    }
    if let Ok(base) = std::env::var("MAILCAT_AUTOCONFIG_URL") {
        if !base.starts_with("https://") {
            return Err(format!(
                "MAILCAT_AUTOCONFIG_URL={base:?}: autoconfig files are fetched over https:// only"
            ));
        }
        how.url_base = Some(base);
    }
    Ok(how)
}

fn print_text(found: &Found, quiet: bool) {
    let title = match &found.provider {
        Some(provider) => format!("{} ({})", found.email, provider),
        None => found.email.clone(),
    };
    outln!("{}", terminal_safe(&title));
    // One source for all (the table, one file): said once, not on every line.
    let servers = || found.incoming.iter().chain(&found.outgoing);
    let one_source = servers()
        .next()
        .map(|first| &first.source)
        .filter(|first| servers().all(|s| &s.source == *first));
    print_servers("incoming", &found.incoming, one_source.is_none());
    print_servers("outgoing", &found.outgoing, one_source.is_none());
    if let Some(source) = one_source {
        outln!("  found in  {}", terminal_safe(&source.describe()));
    }
    let logins: Vec<&str> = found
        .incoming
        .iter()
        .chain(&found.outgoing)
        .filter_map(|s| s.login.as_deref())
        .collect();
    if let Some(login) = logins.first() {
        outln!("  login     {}", terminal_safe(login));
    }
    if let Some(sign_in) = found.sign_in {
        outln!("  sign in   {}", sign_in_words(sign_in));
    }
    for note in &found.notes {
        outln!("  note      {}", terminal_safe(note));
    }
    if !quiet {
        outln!("");
        outln!("How they were found:");
        for attempt in &found.attempts {
            outln!(
                "  {} {:<16} {:>9}  {}",
                if attempt.found { '✓' } else { '✗' },
                attempt.stage.describe(),
                format!("{:.1} ms", attempt.elapsed.as_secs_f64() * 1000.0),
                terminal_safe(&attempt.detail)
            );
        }
    }
    if !found.incoming.is_empty() || !found.outgoing.is_empty() {
        outln!("");
        if uses_oauth2(found) {
            outln!(
                "To use them, register a client ID with the provider ({README_SECTION} says how),"
            );
            outln!(
                "add this to ~/.config/mailcat/config.toml with the client ID filled in, then run"
            );
            outln!("`mailcat oauth2 login` and `mailcat check`:");
        } else {
            outln!(
                "To use them, add this to ~/.config/mailcat/config.toml, then run `mailcat check`:"
            );
        }
        outln!("");
        outln!("{}", config_lines(found).trim_end());
    }
}

fn print_servers(role: &str, servers: &[Server], with_source: bool) {
    if servers.is_empty() {
        outln!("  {role:<9} none found");
    }
    for (i, server) in servers.iter().enumerate() {
        let label = if i == 0 { role } else { "" };
        let endpoint = &server.endpoint;
        let source = if with_source {
            format!("; from {}", server.source.describe())
        } else {
            String::new()
        };
        outln!(
            "  {label:<9} {:<40} {}, {}{}",
            endpoint.url(),
            endpoint.protocol.name(),
            endpoint.security.describe(),
            terminal_safe(&source)
        );
    }
}

/// An `[accounts.NAME]` table with the preferred servers.
fn config_lines(found: &Found) -> String {
    // TOML escapes control characters; terminal_safe the rest (bidirectional overrides).
    let quote = |text: &str| terminal_safe(&toml::Value::String(text.to_owned()).to_string());
    let domain = found.email.rsplit_once('@').map_or("", |(_, d)| d);
    let name = domain
        .split('.')
        .next()
        .filter(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .unwrap_or("mail");
    let mut lines = format!("[accounts.{name}]\nemail = {}\n", quote(&found.email));
    let login = found
        .incoming
        .first()
        .or(found.outgoing.first())
        .and_then(|s| s.login.as_deref());
    if let Some(login) = login {
        lines.push_str(&format!("login = {}\n", quote(login)));
    }
    if let Some(server) = found.incoming.first() {
        lines.push_str(&format!("incoming = {}\n", quote(&server.endpoint.url())));
    }
    if let Some(server) = found.outgoing.first() {
        lines.push_str(&format!("outgoing = {}\n", quote(&server.endpoint.url())));
    }
    if uses_oauth2(found) {
        if found.sign_in == Some(SignIn::OAuth2OrAppPassword) {
            lines.push_str(&format!(
                "# password_cmd = \"…\"  # or an app password, instead of [accounts.{name}.oauth2]\n"
            ));
        }
        lines.push('\n');
        lines.push_str(&oauth2_lines(found, name));
    } else {
        lines.push_str("password_cmd = \"…\"  # a command that prints the password\n");
    }
    lines
}

/// Whether the lines to paste sign in with mailcat's own OAuth2: for a provider that takes
/// only OAuth2, and for one that prefers it and has a preset (Gmail, where an app password is
/// the other way).
fn uses_oauth2(found: &Found) -> bool {
    match found.sign_in {
        Some(SignIn::OAuth2Only) => true,
        Some(SignIn::OAuth2OrAppPassword) => found.oauth2.is_some(),
        _ => false,
    }
}

/// The `[accounts.NAME.oauth2]` table: the preset with a client ID to fill in, or, for a
/// provider without a preset, a custom provider whose endpoints the provider must give.
fn oauth2_lines(found: &Found, name: &str) -> String {
    let client_id = format!("client_id = \"<your client id>\"  # register one: {README_SECTION}\n");
    let mut lines = format!("[accounts.{name}.oauth2]\n");
    match found.oauth2 {
        Some(preset) => {
            lines.push_str(&format!("provider = \"{}\"\n", preset.kind));
            lines.push_str(&client_id);
            if preset.kind == ProviderKind::Google {
                lines.push_str(
                    "client_secret = \"<your client secret>\"  # Google gives one with the client ID\n",
                );
            }
            if let Some(tenant) = preset.tenant {
                lines.push_str(&format!("tenant = \"{tenant}\"\n"));
            }
        }
        None => {
            lines.push_str("provider = \"custom\"\n");
            lines.push_str(&client_id);
            lines.push_str("authorize_url = \"https://…\"  # ask the provider for these\n");
            lines.push_str("token_url = \"https://…\"\n");
            lines.push_str("scopes = [\"…\"]\n");
        }
    }
    lines
}

fn to_json(found: &Found) -> Value {
    let servers = |list: &[Server]| -> Vec<Value> {
        list.iter()
            .map(|s| {
                json!({
                    "url": s.endpoint.url(),
                    "protocol": s.endpoint.protocol.name(),
                    "security": s.endpoint.security.describe(),
                    "host": s.endpoint.host,
                    "port": s.endpoint.port,
                    "login": s.login,
                    "source": s.source.describe(),
                })
            })
            .collect()
    };
    json!({
        "email": found.email,
        "provider": found.provider,
        "incoming": servers(&found.incoming),
        "outgoing": servers(&found.outgoing),
        "sign_in": found.sign_in.map(sign_in_words),
        "oauth2": uses_oauth2(found).then(|| json!({
            "provider": found.oauth2.map_or("custom", |preset| preset.kind.as_str()),
            "tenant": found.oauth2.and_then(|preset| preset.tenant),
            "how_to_register": README_SECTION,
        })),
        "notes": found.notes,
        "stages": found.attempts.iter().map(|a| json!({
            "stage": a.stage.describe(),
            "found": a.found,
            "detail": a.detail,
            "ms": (a.elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
        })).collect::<Vec<_>>(),
    })
}

/// How a provider signs in, in the CLI's words: the library's advice, with mailcat's own
/// commands where the library can only describe them.
fn sign_in_words(sign_in: SignIn) -> &'static str {
    match sign_in {
        SignIn::OAuth2Only => {
            "OAuth2 only (passwords are refused): register a client ID and run `mailcat oauth2 login` (README.md#oauth2-sign-in), or give a token command with --oauth2-token-cmd"
        }
        other => other.advice(),
    }
}
