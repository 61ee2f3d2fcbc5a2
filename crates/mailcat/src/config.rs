//! The configuration file: accounts in `$XDG_CONFIG_HOME/mailcat/config.toml`.
//!
//! ```toml
//! default_account = "work"
//!
//! [accounts.work]
//! email = "alice@example.com"
//! login = "alice"                          # optional; the address by default
//! incoming = "imaps://outlook.office365.com"
//! outgoing = "smtp://smtp-mail.outlook.com:587"
//! password_cmd = "pass show mail/work"     # or oauth2_token_cmd = "...", or [accounts.work.oauth2]
//! ca_file = "~/certs/company-ca.pem"       # optional; ~ and ~USER are home directories
//! tls_fingerprint = "AB:CD:…"              # optional: a self-signed server's certificate
//! auth = "oauthbearer"                     # optional: this SASL mechanism only (default: auto)
//! timeout = 30                             # optional, seconds per network step
//!
//! [accounts.home.oauth2]                   # OAuth2 sign-in (`mailcat oauth2 login`)
//! provider = "microsoft"                   # microsoft | google | custom
//! client_id = "…"                          # registered by the user (README: OAuth2 sign-in)
//! # client_secret, tenant, authorize_url, token_url, device_url, revoke_url, scopes
//! ```
//!
//! A bad file gets a message naming the file, the line and the field (exit 78).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use mailcat_session::oauth2::provider::ProviderError;
use mailcat_session::oauth2::{Provider, ProviderKind, ProviderSettings};
use mailcat_transport::{Endpoint, Fingerprint};
use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The account used when `--account` is not given.
    pub default_account: Option<Spanned<String>>,
    /// The accounts by name.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
}

/// One `[accounts.NAME]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountConfig {
    /// The address.
    pub email: Spanned<String>,
    /// The login name, if not the address.
    pub login: Option<String>,
    /// The incoming server URL.
    pub incoming: Option<Spanned<String>>,
    /// The outgoing server URL.
    pub outgoing: Option<Spanned<String>>,
    /// A command that prints the password.
    pub password_cmd: Option<String>,
    /// A command that prints an OAuth2 access token.
    pub oauth2_token_cmd: Option<Spanned<String>>,
    /// The SASL mechanism to log in with (`oauthbearer` ...), or `auto`.
    pub auth: Option<Spanned<String>>,
    /// A PEM file of further CAs to trust (`~` is the home directory).
    pub ca_file: Option<Spanned<PathBuf>>,
    /// The SHA-256 fingerprint of a server certificate to trust exactly.
    pub tls_fingerprint: Option<Spanned<String>>,
    /// Seconds per network step.
    pub timeout: Option<Spanned<f64>>,
    /// OAuth2 sign-in settings.
    pub oauth2: Option<Spanned<OAuth2Config>>,
}

/// One `[accounts.NAME.oauth2]` table, as written: which provider, the client ID the user
/// registered, and overrides of the preset's endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OAuth2Config {
    /// `microsoft`, `google` or `custom`.
    pub provider: Spanned<String>,
    /// The client (application) ID.
    pub client_id: Spanned<String>,
    /// The client secret, for providers that issue one to desktop apps (Google).
    pub client_secret: Option<String>,
    /// Microsoft: `consumers`, `organizations`, `common` or a tenant ID.
    pub tenant: Option<Spanned<String>>,
    /// The authorization endpoint.
    pub authorize_url: Option<Spanned<String>>,
    /// The token endpoint.
    pub token_url: Option<Spanned<String>>,
    /// The device authorization endpoint.
    pub device_url: Option<Spanned<String>>,
    /// The revocation endpoint.
    pub revoke_url: Option<Spanned<String>>,
    /// The scopes to ask for.
    pub scopes: Option<Vec<String>>,
}

/// A validated account, ready to use.
#[derive(Debug, Clone)]
pub(crate) struct AccountSettings {
    /// The account's name in the file (or "command line").
    pub name: String,
    /// The address.
    pub email: String,
    /// The login name.
    pub login: String,
    /// The incoming server.
    pub incoming: Option<Endpoint>,
    /// The outgoing server.
    pub outgoing: Option<Endpoint>,
    /// A command that prints the password.
    pub password_cmd: Option<String>,
    /// A command that prints an OAuth2 token.
    pub oauth2_token_cmd: Option<String>,
    /// The SASL mechanism to log in with; `None`: the best the server offers.
    pub auth: Option<mailcat_session::Mechanism>,
    /// Extra CA file.
    pub ca_file: Option<PathBuf>,
    /// A server certificate trusted exactly.
    pub tls_fingerprint: Option<Fingerprint>,
    /// Seconds per network step.
    pub timeout: Option<f64>,
    /// The OAuth2 provider, endpoints checked, when the account signs in with OAuth2.
    pub oauth2: Option<Provider>,
}

/// A configuration problem: the file, the line and the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field (`accounts.work.incoming`), when known.
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where the file is: `$XDG_CONFIG_HOME/mailcat/config.toml`, else `~/.config/mailcat/config.toml`.
pub(crate) fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("mailcat").join("config.toml"))
}

/// Parses the text of a file.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError {
        path: path.to_owned(),
        line: e.span().map(|span| line_of(text, span.start)),
        field: None,
        message: e.message().trim().to_owned(),
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// The account called `name`, or the default one (`default_account`, or the only one).
    pub(crate) fn account(
        &self,
        name: Option<&str>,
        path: &Path,
        text: &str,
    ) -> Result<AccountSettings, ConfigError> {
        let error = |line: Option<usize>, field: Option<String>, message: String| ConfigError {
            path: path.to_owned(),
            line,
            field,
            message,
        };
        let name = match name {
            Some(name) => name.to_owned(),
            None => match (&self.default_account, self.accounts.len()) {
                (Some(default), _) => {
                    if !self.accounts.contains_key(default.get_ref()) {
                        return Err(error(
                            Some(line_of(text, default.span().start)),
                            Some("default_account".into()),
                            format!("names {:?}, but there is no [accounts.{}]", default.get_ref(), default.get_ref()),
                        ));
                    }
                    default.get_ref().clone()
                }
                (None, 1) => self.accounts.keys().next().cloned().unwrap_or_default(),
                (None, 0) => return Err(error(None, None, "defines no account: add an [accounts.NAME] table".into())),
                (None, _) => {
                    return Err(error(
                        None,
                        Some("default_account".into()),
                        format!(
                            "several accounts ({}) and no default_account: set one, or choose with --account",
                            self.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            },
        };
        let account = self.accounts.get(&name).ok_or_else(|| {
            error(
                None,
                None,
                format!(
                    "has no account {name:?} (it has: {})",
                    self.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let endpoint = |value: &Option<Spanned<String>>,
                        field: &str|
         -> Result<Option<Endpoint>, ConfigError> {
            match value {
                None => Ok(None),
                Some(url) => Endpoint::parse_url(url.get_ref()).map(Some).map_err(|e| {
                    error(
                        Some(line_of(text, url.span().start)),
                        Some(format!("accounts.{name}.{field}")),
                        url_error(&e),
                    )
                }),
            }
        };
        let incoming = endpoint(&account.incoming, "incoming")?;
        let outgoing = endpoint(&account.outgoing, "outgoing")?;
        if let (Some(cmd), Some(_)) = (&account.oauth2_token_cmd, &account.password_cmd) {
            return Err(error(
                Some(line_of(text, cmd.span().start)),
                Some(format!("accounts.{name}.oauth2_token_cmd")),
                "an account has either password_cmd or oauth2_token_cmd, not both".into(),
            ));
        }
        if let (Some(table), true) = (
            &account.oauth2,
            account.password_cmd.is_some() || account.oauth2_token_cmd.is_some(),
        ) {
            return Err(error(
                Some(line_of(text, table.span().start)),
                Some(format!("accounts.{name}.oauth2")),
                "an account signs in with [oauth2], password_cmd or oauth2_token_cmd: keep one"
                    .into(),
            ));
        }
        let oauth2 = account
            .oauth2
            .as_ref()
            .map(|table| oauth2_provider(table.get_ref(), account.email.get_ref()))
            .transpose()
            .map_err(|(span, field, message)| {
                error(
                    Some(line_of(text, span.start)),
                    Some(format!("accounts.{name}.oauth2.{field}")),
                    message,
                )
            })?;
        if let Some(timeout) = &account.timeout {
            if !(timeout.get_ref().is_finite() && *timeout.get_ref() > 0.0) {
                return Err(error(
                    Some(line_of(text, timeout.span().start)),
                    Some(format!("accounts.{name}.timeout")),
                    "must be a number of seconds above 0".into(),
                ));
            }
        }
        let tls_fingerprint = account
            .tls_fingerprint
            .as_ref()
            .map(|value| {
                value.get_ref().parse::<Fingerprint>().map_err(|e| {
                    error(
                        Some(line_of(text, value.span().start)),
                        Some(format!("accounts.{name}.tls_fingerprint")),
                        e.to_string(),
                    )
                })
            })
            .transpose()?;
        let ca_file = account
            .ca_file
            .as_ref()
            .map(|path| {
                crate::tilde::expand(path.get_ref()).map_err(|e| {
                    error(
                        Some(line_of(text, path.span().start)),
                        Some(format!("accounts.{name}.ca_file")),
                        e.to_string(),
                    )
                })
            })
            .transpose()?;
        let auth = match &account.auth {
            None => None,
            Some(value) => parse_auth(value.get_ref()).map_err(|problem| {
                error(
                    Some(line_of(text, value.span().start)),
                    Some(format!("accounts.{name}.auth")),
                    problem,
                )
            })?,
        };
        let email = account.email.get_ref().clone();
        check_email(&email).map_err(|problem| {
            error(
                Some(line_of(text, account.email.span().start)),
                Some(format!("accounts.{name}.email")),
                problem,
            )
        })?;
        Ok(AccountSettings {
            login: account.login.clone().unwrap_or_else(|| email.clone()),
            email,
            name,
            incoming,
            outgoing,
            password_cmd: account.password_cmd.clone(),
            oauth2_token_cmd: account
                .oauth2_token_cmd
                .as_ref()
                .map(|s| s.get_ref().clone()),
            auth,
            ca_file,
            tls_fingerprint,
            timeout: account.timeout.as_ref().map(|t| *t.get_ref()),
            oauth2,
        })
    }
}

/// The provider an `[oauth2]` table describes, or the span and field of what is wrong.
fn oauth2_provider(
    table: &OAuth2Config,
    email: &str,
) -> Result<Provider, (std::ops::Range<usize>, &'static str, String)> {
    let kind: ProviderKind = table
        .provider
        .get_ref()
        .parse()
        .map_err(|e: ProviderError| (table.provider.span(), "provider", e.to_string()))?;
    let url = |value: &Option<Spanned<String>>| value.as_ref().map(|v| v.get_ref().clone());
    let tenant = url(&table.tenant).or_else(|| {
        (kind == ProviderKind::Microsoft)
            .then(|| ProviderSettings::default_tenant_for(email).to_owned())
    });
    let settings = ProviderSettings {
        kind,
        client_id: table.client_id.get_ref().trim().to_owned(),
        client_secret: table.client_secret.clone(),
        tenant,
        authorize_url: url(&table.authorize_url),
        token_url: url(&table.token_url),
        device_url: url(&table.device_url),
        revoke_url: url(&table.revoke_url),
        scopes: table.scopes.clone(),
    };
    settings.resolve().map_err(|e| {
        // Point at the field the problem is in, when it is one of the URLs.
        let (span, field) = match &e {
            ProviderError::InsecureEndpoint { field, .. } | ProviderError::BadUrl { field, .. } => {
                let value = match *field {
                    "authorize_url" => &table.authorize_url,
                    "token_url" => &table.token_url,
                    "device_url" => &table.device_url,
                    _ => &table.revoke_url,
                };
                (
                    value.as_ref().map_or(table.provider.span(), |v| v.span()),
                    *field,
                )
            }
            _ => (table.provider.span(), "provider"),
        };
        (span, field, e.to_string())
    })
}

/// A URL's error in the CLI's words: where the user goes instead names the option.
fn url_error(error: &mailcat_transport::UrlError) -> String {
    match error {
        mailcat_transport::UrlError::Unsupported => {
            "only scheme://host[:port] is supported; give the user with --user, not in the URL"
                .to_owned()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
default_account = "work"

[accounts.work]
email = "alice@example.com"
incoming = "imaps://outlook.office365.com"
outgoing = "smtp://smtp-mail.outlook.com:587"
oauth2_token_cmd = "oauth2-token alice"

[accounts.home]
email = "bob@example.org"
login = "bob"
incoming = "pop3s://pop.example.org"
password_cmd = "pass show mail/home"
timeout = 20
"#;

    fn path() -> PathBuf {
        PathBuf::from("/home/u/.config/mailcat/config.toml")
    }

    #[test]
    fn reads_accounts_and_the_default() {
        let config = parse(&path(), GOOD).unwrap();
        let work = config.account(None, &path(), GOOD).unwrap();
        assert_eq!(work.name, "work");
        assert_eq!(work.login, "alice@example.com");
        assert_eq!(work.outgoing.unwrap().port, 587);
        let home = config.account(Some("home"), &path(), GOOD).unwrap();
        assert_eq!((home.login.as_str(), home.timeout), ("bob", Some(20.0)));
    }

    #[test]
    fn a_bad_url_names_file_line_and_field() {
        let text = GOOD.replace("imaps://outlook.office365.com", "imap.outlook.com");
        let config = parse(&path(), &text).unwrap();
        let error = config.account(None, &path(), &text).unwrap_err();
        assert_eq!(error.line, Some(6));
        assert_eq!(error.field.as_deref(), Some("accounts.work.incoming"));
        assert!(error.to_string().starts_with("/home/u/.config/mailcat/config.toml:6: accounts.work.incoming: a server URL starts with a scheme"), "{error}");
    }

    #[test]
    fn a_misspelt_field_is_caught_with_its_line() {
        let text = GOOD.replace("password_cmd", "pasword_cmd");
        let error = parse(&path(), &text).unwrap_err();
        assert_eq!(error.line, Some(14));
        assert!(error.message.contains("pasword_cmd"), "{error}");
    }

    #[test]
    fn broken_toml_is_located() {
        let error = parse(&path(), "[accounts.work\nemail = 1\n").unwrap_err();
        assert_eq!(error.line, Some(1));
    }

    #[test]
    fn default_and_choice_problems_say_what_to_do() {
        let text = GOOD.replace("default_account = \"work\"", "default_account = \"play\"");
        let config = parse(&path(), &text).unwrap();
        assert!(config
            .account(None, &path(), &text)
            .unwrap_err()
            .message
            .contains("no [accounts.play]"));
        let text = GOOD.replace("default_account = \"work\"", "");
        let config = parse(&path(), &text).unwrap();
        assert!(config
            .account(None, &path(), &text)
            .unwrap_err()
            .message
            .contains("--account"));
        assert!(config
            .account(Some("nope"), &path(), &text)
            .unwrap_err()
            .message
            .contains("home, work"));
    }

    #[test]
    fn a_pinned_fingerprint_is_read_and_a_bad_one_located() {
        let pin = "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        let text = GOOD.replace(
            "timeout = 20",
            &format!("timeout = 20\ntls_fingerprint = \"{pin}\""),
        );
        let config = parse(&path(), &text).unwrap();
        let home = config.account(Some("home"), &path(), &text).unwrap();
        assert_eq!(home.tls_fingerprint, Some(pin.parse().unwrap()));
        let text = text.replace(
            pin,
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D",
        );
        let config = parse(&path(), &text).unwrap();
        let error = config.account(Some("home"), &path(), &text).unwrap_err();
        assert_eq!(error.line, Some(16));
        assert_eq!(
            error.field.as_deref(),
            Some("accounts.home.tls_fingerprint")
        );
        assert!(error.message.contains("SHA-1"), "{error}");
    }

    #[test]
    fn auth_names_a_mechanism_in_any_case_or_auto_and_a_bad_one_is_located() {
        use mailcat_session::Mechanism;
        let config = parse(&path(), GOOD).unwrap();
        assert_eq!(
            config.account(Some("work"), &path(), GOOD).unwrap().auth,
            None
        );
        for (value, mechanism) in [
            ("oauthbearer", Some(Mechanism::OAuthBearer)),
            ("XOAUTH2", Some(Mechanism::XOAuth2)),
            ("Scram-SHA-256", Some(Mechanism::ScramSha256)),
            ("cram-md5", Some(Mechanism::CramMd5)),
            ("plain", Some(Mechanism::Plain)),
            ("login", Some(Mechanism::Login)),
            ("auto", None),
            ("AUTO", None),
        ] {
            let text = GOOD.replace(
                "oauth2_token_cmd = \"oauth2-token alice\"",
                &format!("oauth2_token_cmd = \"oauth2-token alice\"\nauth = {value:?}"),
            );
            let config = parse(&path(), &text).unwrap();
            let work = config.account(Some("work"), &path(), &text).unwrap();
            assert_eq!(work.auth, mechanism, "{value}");
        }
        let text = GOOD.replace("timeout = 20", "timeout = 20\nauth = \"digest-md5\"");
        let config = parse(&path(), &text).unwrap();
        let error = config.account(Some("home"), &path(), &text).unwrap_err();
        assert_eq!(error.line, Some(16));
        assert_eq!(error.field.as_deref(), Some("accounts.home.auth"));
        assert_eq!(
            error.message,
            "unknown login mechanism \"digest-md5\": use one of auto, scram-sha-256, plain, \
             login, cram-md5, xoauth2, oauthbearer"
        );
    }

    #[test]
    fn password_and_token_together_are_refused() {
        let text = GOOD.replace(
            "oauth2_token_cmd = \"oauth2-token alice\"",
            "oauth2_token_cmd = \"x\"\npassword_cmd = \"y\"",
        );
        let config = parse(&path(), &text).unwrap();
        let error = config.account(Some("work"), &path(), &text).unwrap_err();
        assert!(error.message.contains("not both"), "{error}");
    }
}

/// An account's address must be one: it becomes the envelope sender and the Message-ID's
/// domain, so a value with a line break could otherwise add a header to every message sent.
fn check_email(email: &str) -> Result<(), String> {
    email
        .parse::<mailcat_session::smtp::Address>()
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{:?} is not an e-mail address ({e}); write it as name@example.com",
                email
            )
        })
}

/// The `auth` field: a mechanism name as `--auth` takes it, in any case; `auto` is `None`.
fn parse_auth(value: &str) -> Result<Option<mailcat_session::Mechanism>, String> {
    use clap::ValueEnum;
    crate::cli::Auth::from_str(value.trim(), true)
        .map(crate::cli::Auth::mechanism)
        .map_err(|_| {
            let names: Vec<String> = crate::cli::Auth::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
                .collect();
            format!(
                "unknown login mechanism {value:?}: use one of {}",
                names.join(", ")
            )
        })
}

/// The account a command works with: from the command line when any of `--email`,
/// `--incoming`, `--outgoing` is given, else from the configuration file.
pub(crate) fn resolve(cli: &crate::cli::Cli) -> Result<AccountSettings, Resolved> {
    let tls_fingerprint = cli.tls_fingerprint;
    let ad_hoc = cli.email.is_some() || cli.incoming.is_some() || cli.outgoing.is_some();
    if ad_hoc && cli.account.is_none() {
        let url = |flag: &str, value: &Option<String>| -> Result<Option<Endpoint>, Resolved> {
            value
                .as_deref()
                .map(|url| {
                    Endpoint::parse_url(url)
                        .map_err(|e| Resolved::Usage(format!("{flag} {url}: {}", url_error(&e))))
                })
                .transpose()
        };
        let email = cli.email.clone().unwrap_or_default();
        if !email.is_empty() {
            check_email(&email)
                .map_err(|problem| Resolved::Usage(format!("--email: {problem}")))?;
        }
        return Ok(AccountSettings {
            name: "command line".into(),
            login: cli.user.clone().unwrap_or_else(|| email.clone()),
            email,
            incoming: url("--incoming", &cli.incoming)?,
            outgoing: url("--outgoing", &cli.outgoing)?,
            password_cmd: None,
            oauth2_token_cmd: None,
            auth: cli.auth.and_then(crate::cli::Auth::mechanism),
            ca_file: cli.ca_file.clone(),
            tls_fingerprint,
            timeout: cli.timeout,
            oauth2: None,
        });
    }
    let Some(path) = cli.config.clone().or_else(default_path) else {
        return Err(Resolved::Usage("no account: give --email and --incoming/--outgoing, or write a config file (set HOME or XDG_CONFIG_HOME)".into()));
    };
    if cli.config.is_none() && !path.exists() {
        return Err(Resolved::Usage(format!(
            "no account given and no configuration file at {}: give --incoming URL / --outgoing URL, or create it with an [accounts.NAME] table",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Resolved::Config(ConfigError {
            path: path.clone(),
            line: None,
            field: None,
            message: format!("cannot read it: {e}"),
        })
    })?;
    let config = parse(&path, &text).map_err(Resolved::Config)?;
    let mut settings = config
        .account(cli.account.as_deref(), &path, &text)
        .map_err(Resolved::Config)?;
    // Flags given next to --account override the file.
    if cli.ca_file.is_some() {
        settings.ca_file = cli.ca_file.clone();
    }
    if tls_fingerprint.is_some() {
        settings.tls_fingerprint = tls_fingerprint;
    }
    if cli.timeout.is_some() {
        settings.timeout = cli.timeout;
    }
    if let Some(user) = &cli.user {
        settings.login = user.clone();
    }
    if let Some(auth) = cli.auth {
        settings.auth = auth.mechanism();
    }
    Ok(settings)
}

/// Why no account could be settled on.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// The command line is wrong (exit 64).
    Usage(String),
    /// The configuration file is wrong (exit 78).
    Config(ConfigError),
}
