//! One credential: a login and a password or an OAuth2 access token, given directly, by a
//! command (like msmtp's `passwordeval`) or by a callback, fetched only when needed.
//!
//! Secrets are wrapped: `Debug`, logs and errors never show them.

use std::fmt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

pub use mailcat_codec::core::secret::Secret;
use tokio::io::AsyncReadExt;

use crate::Error;

/// What kind of secret a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A password (SASL SCRAM-SHA-256, PLAIN, LOGIN; IMAP LOGIN; POP3 USER/PASS).
    Password,
    /// An OAuth2 access token (SASL XOAUTH2, OAUTHBEARER).
    OAuth2Token,
}

impl CredentialKind {
    /// How the kind is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            CredentialKind::Password => "password",
            CredentialKind::OAuth2Token => "OAuth2 token",
        }
    }
}

/// A callback that yields a secret when one is needed (a keyring, a token refresher).
pub type SecretCallback = Arc<dyn Fn() -> Result<Secret, String> + Send + Sync>;

/// Where the secret comes from.
#[derive(Clone)]
pub enum SecretSource {
    /// The secret itself.
    Value(Secret),
    /// A shell command whose first line of output is the secret (`pass show mail/work`).
    Command(String),
    /// A function that yields it.
    Callback(SecretCallback),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Value(_) => f.write_str("Value(<redacted>)"),
            SecretSource::Command(command) => f.debug_tuple("Command").field(command).finish(),
            SecretSource::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

/// A login name and its secret.
#[derive(Debug, Clone)]
pub struct Credential {
    login: String,
    kind: CredentialKind,
    source: SecretSource,
}

/// How long a password or token command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

impl Credential {
    /// A login with a password.
    pub fn password(login: impl Into<String>, password: impl Into<Vec<u8>>) -> Self {
        Self::new(
            login,
            CredentialKind::Password,
            SecretSource::Value(Secret::new(password)),
        )
    }

    /// A login with an OAuth2 access token.
    pub fn oauth2(login: impl Into<String>, token: impl Into<Vec<u8>>) -> Self {
        Self::new(
            login,
            CredentialKind::OAuth2Token,
            SecretSource::Value(Secret::new(token)),
        )
    }

    /// A login whose secret comes from `source` when needed.
    pub fn new(login: impl Into<String>, kind: CredentialKind, source: SecretSource) -> Self {
        Credential {
            login: login.into(),
            kind,
            source,
        }
    }

    /// The login name.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Password or OAuth2 token.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// Fetches the secret: the value, the command's first output line, or the callback's answer.
    pub async fn secret(&self) -> Result<Secret, Error> {
        let fail = |reason: String| Error::Credential {
            what: self.kind.describe(),
            login: self.login.clone(),
            reason,
        };
        match &self.source {
            SecretSource::Value(secret) => Ok(secret.clone()),
            SecretSource::Callback(callback) => callback().map_err(fail),
            SecretSource::Command(command) => run_command(command).await.map_err(fail),
        }
    }
}

/// Runs `sh -c command`; the first line of its output (without the line ending) is the secret.
async fn run_command(command: &str) -> Result<Secret, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no output pipe")?;
    let run = async {
        let mut output = Vec::new();
        stdout
            .read_to_end(&mut output)
            .await
            .map_err(|e| e.to_string())?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, output))
    };
    let (status, output) = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .map_err(|_| {
            format!(
                "`{command}` did not finish within {} s",
                COMMAND_TIMEOUT.as_secs()
            )
        })??;
    if !status.success() {
        return Err(format!("`{command}` failed ({status})"));
    }
    let line = output.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(format!("`{command}` printed nothing"));
    }
    Ok(Secret::new(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let credential = Credential::password("alice@example.com", &b"hunter2"[..]);
        let shown = format!("{credential:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice@example.com"));
    }

    #[tokio::test]
    async fn a_command_yields_its_first_line() {
        let credential = Credential::new(
            "a",
            CredentialKind::Password,
            SecretSource::Command("printf 's3cret\\nignored\\n'".into()),
        );
        assert_eq!(credential.secret().await.unwrap().expose(), b"s3cret");
    }

    #[tokio::test]
    async fn a_failing_command_is_an_error_that_names_it() {
        let credential = Credential::new(
            "a",
            CredentialKind::OAuth2Token,
            SecretSource::Command("exit 3".into()),
        );
        let error = credential.secret().await.unwrap_err();
        assert!(error.is_auth());
        assert!(error.to_string().contains("`exit 3` failed"), "{error}");
        let empty = Credential::new(
            "a",
            CredentialKind::Password,
            SecretSource::Command("true".into()),
        );
        assert!(empty
            .secret()
            .await
            .unwrap_err()
            .to_string()
            .contains("printed nothing"));
    }

    #[tokio::test]
    async fn a_callback_is_asked_each_time() {
        let credential = Credential::new(
            "a",
            CredentialKind::OAuth2Token,
            SecretSource::Callback(Arc::new(|| Ok(Secret::new(&b"tok"[..])))),
        );
        assert_eq!(credential.secret().await.unwrap().expose(), b"tok");
    }
}
