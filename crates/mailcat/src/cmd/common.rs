//! What the commands share: the account (servers, credential, TLS, timeouts) from flags or
//! the configuration file, a runtime, and the mapping of failures to messages and exit codes.

use std::sync::Arc;
use std::time::Duration;

use mailcat_session::oauth2::{FileTokenStore, OAuth2};
use mailcat_session::{Account, Credential, CredentialKind, Plaintext, Secret, SecretSource};
use mailcat_transport::{Endpoint, Security, Timeouts, TlsSettings};

use crate::cli::Cli;
use crate::config::{self, AccountSettings, Resolved};
use crate::{exit, failure};

/// A command's failure: the exit code, after the message was printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit(pub u8);

/// The account settings from flags or the configuration file, or the exit code after saying why.
pub(crate) fn settings(cli: &Cli, command: &str) -> Result<AccountSettings, Exit> {
    match config::resolve(cli) {
        Ok(settings) => {
            if settings.oauth2.is_some() {
                let _ = ACCOUNT.set(settings.name.clone());
            }
            Ok(settings)
        }
        Err(Resolved::Usage(message)) => Err(failed(command, &message, exit::USAGE)),
        Err(Resolved::Config(error)) => {
            // Without the command's name: the file is wrong whatever the command.
            eprintln!("mailcat: {error}");
            failure::tell_json(command, &error.to_string(), None, exit::CONFIG);
            Err(Exit(exit::CONFIG))
        }
    }
}

/// The timeouts: `--timeout`/the account's for each step, else `default`, else the library's.
pub(crate) fn timeouts(settings: &AccountSettings, default: Option<Duration>) -> Timeouts {
    match settings.timeout.map(Duration::from_secs_f64).or(default) {
        Some(limit) => Timeouts::uniform(limit),
        None => Timeouts::default(),
    }
}

/// The TLS roots: the public ones plus the account's CA file, and its pinned certificate.
pub(crate) fn tls(settings: &AccountSettings) -> TlsSettings {
    let mut tls = TlsSettings::default();
    tls.extra_ca_files.extend(settings.ca_file.iter().cloned());
    tls.pinned.extend(settings.tls_fingerprint);
    tls
}

/// The account for the session library. `need_incoming`/`need_outgoing` say which servers the
/// command uses; a missing one is a usage error naming the flag.
pub(crate) fn account(
    cli: &Cli,
    settings: &AccountSettings,
    command: &str,
    need_incoming: bool,
    need_outgoing: bool,
) -> Result<Account, Exit> {
    let missing = |what: &str, flag: &str, example: &str| {
        failed(
            command,
            &format!("no {what} server: give {flag} URL (e.g. {flag} {example}) or set it in the config file"),
            exit::USAGE,
        )
    };
    if need_incoming && settings.incoming.is_none() {
        return Err(missing(
            "incoming",
            "--incoming",
            "imaps://imap.example.com",
        ));
    }
    if need_outgoing && settings.outgoing.is_none() {
        return Err(missing(
            "outgoing",
            "--outgoing",
            "smtp://smtp.example.com:587",
        ));
    }
    if settings.login.is_empty() {
        return Err(failed(
            command,
            "no login: give --email ADDR (and --user LOGIN if it differs)",
            exit::USAGE,
        ));
    }
    let policy = if cli.allow_plaintext {
        eprintln!("mailcat: WARNING: --allow-plaintext: the connection is not encrypted and the password may be sent in clear text");
        Plaintext::DangerouslyAllow
    } else {
        Plaintext::Refuse
    };
    let endpoint = |endpoint: &Endpoint| match policy {
        Plaintext::DangerouslyAllow => plaintext(endpoint.clone()),
        Plaintext::Refuse => endpoint.clone(),
    };
    let mut builder = Account::builder(
        settings.email.clone(),
        with_mechanism(cli, settings, command, credential(cli, settings, command)?)?,
    )
    .tls(tls(settings))
    .timeouts(timeouts(settings, None))
    .plaintext(policy)
    .alerts(mailcat_session::AlertSink::new(show_alert));
    if let Some(incoming) = &settings.incoming {
        builder = builder.incoming(endpoint(incoming));
    }
    if let Some(outgoing) = &settings.outgoing {
        builder = builder.outgoing(endpoint(outgoing));
    }
    // Every command either needs a server or has checked that it has one (`check`).
    let account = builder
        .build()
        .map_err(|error| failed(command, &error.to_string(), exit::USAGE))?;
    Ok(account)
}

/// The incoming server of an account made by [`account`] for a command that needs one.
pub(crate) fn incoming(account: &Account) -> &Endpoint {
    account
        .incoming
        .as_ref()
        .expect("account() refuses a command that needs an incoming server without one")
}

/// Shows an IMAP `[ALERT]` on stderr, in every command and even with `-q`: RFC 3501 §7.1 says
/// it must reach the user. The text is the server's, escaped for the terminal.
fn show_alert(_host: &str, text: &str) {
    eprintln!("mailcat: server alert: {}", terminal_safe(text));
}

/// With --allow-plaintext, STARTTLS URLs go without TLS at all (implicit TLS stays TLS).
fn plaintext(endpoint: Endpoint) -> Endpoint {
    match endpoint.security {
        Security::StartTls => Endpoint {
            security: Security::DangerousPlaintext,
            ..endpoint
        },
        _ => endpoint,
    }
}

/// The credential, from what the user said most directly: the command line (`--oauth2-token-cmd`,
/// `--password-cmd`), else the account's OAuth2 sign-in (`[accounts.NAME.oauth2]`), else the
/// environment (`MAILCAT_PASSWORD`), else the configuration file (`oauth2_token_cmd`,
/// `password_cmd`), else a prompt on the terminal when the password is needed. A leftover
/// `MAILCAT_PASSWORD` never overrides a flag just typed, nor an account that signs in with
/// OAuth2 (its servers would refuse the password).
///
/// The credential is made once per run and shared by both servers: its password command runs
/// (or the prompt asks) once, however many connections the command makes.
pub(crate) fn credential(
    cli: &Cli,
    settings: &AccountSettings,
    command: &str,
) -> Result<Credential, Exit> {
    let login = settings.login.clone();
    let run = |kind: CredentialKind, command: &String| {
        Credential::new(login.clone(), kind, SecretSource::Command(command.clone()))
    };
    if let Some(cmd) = &cli.oauth2_token_cmd {
        return Ok(run(CredentialKind::OAuth2Token, cmd));
    }
    if let Some(cmd) = &cli.password_cmd {
        return Ok(run(CredentialKind::Password, cmd));
    }
    if settings.oauth2.is_some() {
        let oauth = oauth2_sign_in(settings, command)?;
        return Ok(Credential::oauth2_signed_in(login, Arc::new(oauth)));
    }
    if let Some(password) = std::env::var_os("MAILCAT_PASSWORD") {
        return Ok(Credential::password(login, password.into_encoded_bytes()));
    }
    if let Some(cmd) = &settings.oauth2_token_cmd {
        return Ok(run(CredentialKind::OAuth2Token, cmd));
    }
    if let Some(cmd) = &settings.password_cmd {
        return Ok(run(CredentialKind::Password, cmd));
    }
    let prompt_login = login.clone();
    let prompt = move || {
        let question = format!("Password for {prompt_login}: ");
        async move {
            // The prompt blocks on the terminal: off the runtime's thread.
            tokio::task::spawn_blocking(move || crate::password_prompt::ask(&question))
                .await
                .map_err(|e| format!("the password prompt failed: {e}"))?
                .map(Secret::new)
                .map_err(|e| format!("no password: set MAILCAT_PASSWORD, use --password-cmd, or run on a terminal ({e})"))
        }
    };
    Ok(Credential::callback(
        login,
        CredentialKind::Password,
        prompt,
    ))
}

/// The account's OAuth2 sign-in: its provider, its token file
/// (`$XDG_STATE_HOME/mailcat/oauth2/NAME.json`) and the account's trust settings for the
/// provider's endpoints. For accounts with an `[oauth2]` table only.
pub(crate) fn oauth2_sign_in(settings: &AccountSettings, command: &str) -> Result<OAuth2, Exit> {
    let Some(provider) = &settings.oauth2 else {
        return Err(failed(
            command,
            &format!(
                "the account {:?} has no [accounts.{}.oauth2] table: add one with the provider and your client ID (README: \"OAuth2 sign-in\")",
                settings.name, settings.name
            ),
            exit::CONFIG,
        ));
    };
    let tls = tls(settings)
        .client_config()
        .map_err(|e| failed(command, &terminal_safe(&e.to_string()), exit::CONFIG))?;
    let path = FileTokenStore::default_path(&settings.name).ok_or_else(|| {
        failed(
            command,
            "no place to keep the OAuth2 tokens: set HOME or XDG_STATE_HOME",
            exit::CONFIG,
        )
    })?;
    let mut oauth = OAuth2::new(provider.clone(), tls, Arc::new(FileTokenStore::new(path)))
        .with_login_hint(settings.email.clone());
    if let Some(seconds) = settings.timeout {
        oauth = oauth.with_http_timeout(Duration::from_secs_f64(seconds));
    }
    Ok(oauth)
}

/// The command that signs the current account in again, for hints.
pub(crate) fn sign_in_command() -> String {
    match ACCOUNT.get() {
        Some(name) => format!("mailcat --account {} oauth2 login", shell_word(name)),
        None => "mailcat oauth2 login".into(),
    }
}

/// The account this run works with, once known: hints name it in the commands they suggest.
static ACCOUNT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `word` as one shell word: as is when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The credential with the mechanism `--auth` or the file's `auth` asks for, or a usage (flag)
/// or configuration (file) error when that mechanism cannot present this kind of secret: said
/// before anything connects.
fn with_mechanism(
    cli: &Cli,
    settings: &AccountSettings,
    command: &str,
    credential: Credential,
) -> Result<Credential, Exit> {
    let Some(mechanism) = settings.auth else {
        return Ok(credential);
    };
    credential.with_mechanism(mechanism).map_err(|error| {
        let hint = match mechanism.credential_kind() {
            CredentialKind::OAuth2Token => "give the token with --oauth2-token-cmd CMD (or oauth2_token_cmd in the config file), or ask for a password mechanism: --auth scram-sha-256, plain, login or cram-md5 (or auto)",
            CredentialKind::Password => "give a password (MAILCAT_PASSWORD, --password-cmd CMD or password_cmd in the config file), or ask for a token mechanism: --auth xoauth2 or oauthbearer (or auto)",
        };
        let code = if cli.auth.is_some() {
            exit::USAGE
        } else {
            exit::CONFIG
        };
        failure::tell(command, &error.to_string(), Some(hint), code);
        Exit(code)
    })
}

/// A current-thread runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed("", &format!("cannot start: {e}"), exit::UNAVAILABLE))
}

/// The sysexits code for a session failure.
pub(crate) fn exit_code(error: &mailcat_session::Error) -> u8 {
    use mailcat_session::Error as E;
    match error {
        e if e.is_config() => exit::CONFIG,
        E::Credential { .. } => exit::CONFIG,
        e if e.is_auth() => exit::NOPERM,
        e if e.is_transient() => exit::TEMPFAIL,
        E::Io(_) => exit::IOERR,
        E::Encode(_) => exit::USAGE,
        _ => exit::UNAVAILABLE,
    }
}

/// Prints a session failure (and its hint) and returns its exit code.
pub(crate) fn fail(command: &str, error: &mailcat_session::Error) -> Exit {
    let message = error.to_string();
    // The library's advice, then the CLI's wording of a certificate the user could trust.
    let hints: Vec<String> = error
        .hint()
        .filter(|hint| !message.contains(hint.as_str()))
        .into_iter()
        .chain(crate::cmd::trust::words(error))
        .chain(oauth2_words(error))
        .collect();
    let hint = (!hints.is_empty()).then(|| hints.join("\n  hint: "));
    let code = exit_code(error);
    failure::tell(command, &terminal_safe(&message), hint.as_deref(), code);
    Exit(code)
}

/// What the CLI adds to an OAuth2 failure: the command that signs in again, or how to set
/// up the sign-in for an account whose server refuses passwords.
pub(crate) fn oauth2_words(error: &mailcat_session::Error) -> Option<String> {
    use mailcat_session::Error as E;
    match error {
        E::OAuth2SignIn { source, .. } if source.needs_sign_in() => {
            Some(format!("sign in: {}", sign_in_command()))
        }
        E::BasicAuthDisabled { .. } if ACCOUNT.get().is_none() => Some(
            "add an [accounts.NAME.oauth2] table to the configuration (README: \"OAuth2 sign-in\"), then run: mailcat --account NAME oauth2 login".into(),
        ),
        _ => None,
    }
}

/// Tells a failure (`mailcat COMMAND: MESSAGE`, and with --json the error object) and
/// returns its exit code.
pub(crate) fn failed(command: &str, message: &str, code: u8) -> Exit {
    failure::tell(command, message, None, code);
    Exit(code)
}

/// Server text made safe for a terminal: control characters (ESC, BEL, C1 ...) escaped as
/// `\xNN`, everything printable kept, UTF-8 included (threat model #48).
pub(crate) fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // C0, DEL and C1 controls (ESC, CSI ...), and the bidirectional overrides that can
        // make a line read differently from what it holds.
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Connects to the incoming server and logs in, or says why not.
pub(crate) async fn receive(
    command: &str,
    account: &Account,
) -> Result<mailcat_session::Incoming, Exit> {
    account.receive().await.map_err(|e| fail(command, &e))
}

/// Writes one line to stdout; see `outln!`.
pub(crate) fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(exit::OK));
        }
        eprintln!("mailcat: cannot write to stdout: {error}");
        std::process::exit(i32::from(exit::IOERR));
    }
}

/// Writes bytes to stdout and flushes them; returns the exit code (0, or 74 when stdout cannot
/// be written; a closed pipe is not an error).
pub(crate) fn write_bytes(bytes: &[u8]) -> u8 {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("mailcat: cannot write to stdout: {e}");
            exit::IOERR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn terminal_controls_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(terminal_safe("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(terminal_safe("\u{9b}31m"), "\\x9b31m");
        assert_eq!(terminal_safe("bell\x07\r\n"), "bell\\x07\\x0d\\x0a");
        assert_eq!(
            terminal_safe("invoice\u{202e}fdp.exe"),
            "invoice\\x202efdp.exe"
        );
        assert_eq!(terminal_safe("Grüße, 東京 ✓"), "Grüße, 東京 ✓");
    }
}
