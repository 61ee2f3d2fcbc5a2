//! One credential: a login and a password or an OAuth2 access token, given directly, by a
//! command (like msmtp's `passwordeval`) or by a callback, fetched only when needed.
//!
//! A credential and its clones fetch a password once: one `password_cmd` run or one prompt
//! serves the incoming and the outgoing server and every reconnection of the run. An OAuth2
//! token is reused for a minute only (`TOKEN_REUSE`), and fetched again after that: tokens
//! expire, and the token command (oama, mailctl) is what refreshes them.
//!
//! Secrets are wrapped: `Debug`, logs and errors never show them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use mailcat_codec::core::secret::Secret;
use tokio::io::AsyncReadExt;

use crate::oauth2::OAuth2;
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
            Self::Password => "password",
            Self::OAuth2Token => "OAuth2 token",
        }
    }
}

/// What a [`SecretCallback`] returns: the secret, or why there is none (shown to the user).
pub type SecretFuture = Pin<Box<dyn Future<Output = Result<Secret, String>> + Send>>;

/// A callback that yields a secret when one is needed: a keyring, a prompt, a token refresher.
/// It is async because a refresher needs the network; make one with [`Credential::callback`].
/// A callback that blocks (a terminal prompt) should hand its work to
/// `tokio::task::spawn_blocking`.
pub type SecretCallback = Arc<dyn Fn() -> SecretFuture + Send + Sync>;

/// Where the secret comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum SecretSource {
    /// The secret itself.
    Value(Secret),
    /// A shell command whose first line of output is the secret (`pass show mail/work`).
    Command(String),
    /// A function that yields it.
    Callback(SecretCallback),
    /// An OAuth2 sign-in: its stored access token, renewed when it is about to expire or a
    /// server refused it.
    OAuth2(Arc<OAuth2>),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value(<redacted>)"),
            Self::Command(command) => f.debug_tuple("Command").field(command).finish(),
            Self::Callback(_) => f.write_str("Callback(..)"),
            Self::OAuth2(oauth) => f
                .debug_tuple("OAuth2")
                .field(&oauth.provider().kind)
                .finish(),
        }
    }
}

/// A login name and its secret.
#[derive(Debug, Clone)]
pub struct Credential {
    login: String,
    kind: CredentialKind,
    source: SecretSource,
    /// The SASL mechanism to log in with instead of the automatic choice; one that fits `kind`.
    mechanism: Option<crate::auth::Mechanism>,
    /// The secret once fetched from a command or a callback, shared by the clones.
    fetched: Arc<Mutex<Option<Fetched>>>,
    /// Held while a command or callback runs, so that clones asking at the same time (`check`
    /// logs in to both servers at once) run it once: one prompt, one refresh.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// A secret fetched from a command or a callback, and when.
struct Fetched {
    secret: Secret,
    at: Instant,
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fetched(<redacted>)")
    }
}

/// How long a password or token command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an OAuth2 token from a command or a callback is reused before it is fetched again:
/// long enough for one command's servers (`check` logs in to both), short enough that a
/// reconnection later in a long run (`watch`) gets a fresh token.
const TOKEN_REUSE: Duration = Duration::from_secs(60);

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

    /// A login with the tokens of an OAuth2 sign-in ([`OAuth2::browser_finish`],
    /// [`OAuth2::device_finish`]), renewed as needed.
    pub fn oauth2_signed_in(login: impl Into<String>, oauth: Arc<OAuth2>) -> Self {
        Self::new(
            login,
            CredentialKind::OAuth2Token,
            SecretSource::OAuth2(oauth),
        )
    }

    /// The OAuth2 sign-in behind this credential, if it is one.
    pub fn oauth2_sign_in(&self) -> Option<&Arc<OAuth2>> {
        match &self.source {
            SecretSource::OAuth2(oauth) => Some(oauth),
            _ => None,
        }
    }

    /// A login whose secret comes from `source` when needed.
    pub fn new(login: impl Into<String>, kind: CredentialKind, source: SecretSource) -> Self {
        Self {
            login: login.into(),
            kind,
            source,
            mechanism: None,
            fetched: Arc::default(),
            fetching: Arc::default(),
        }
    }

    /// A login whose secret an async function yields when needed: a keyring lookup, a prompt,
    /// or a token refresher that asks an identity provider. Its answer is kept as
    /// [`Credential::secret`] says; an `Err` is the reason shown to the user.
    ///
    /// ```
    /// use mailcat_session::{Credential, CredentialKind, Secret};
    /// let credential = Credential::callback("me@example.com", CredentialKind::OAuth2Token, || async {
    ///     // e.g. POST a refresh token to the provider, then:
    ///     Ok(Secret::new(&b"access-token"[..]))
    /// });
    /// assert_eq!(credential.login(), "me@example.com");
    /// ```
    pub fn callback<F, Fut>(login: impl Into<String>, kind: CredentialKind, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Secret, String>> + Send + 'static,
    {
        let callback: SecretCallback = Arc::new(move || Box::pin(callback()));
        Self::new(login, kind, SecretSource::Callback(callback))
    }

    /// Logs in with `mechanism` only, instead of the best one the server offers (msmtp's
    /// `auth`, mutt's `imap_authenticators`): a server that does not offer it is an
    /// [`Error::MechanismNotOffered`], and no other mechanism is tried. The choice is the
    /// credential's because it is about how this secret is presented, and so it also holds
    /// for an account whose outgoing server has a credential of its own.
    ///
    /// A mechanism that cannot present this kind of secret (PLAIN with an OAuth2 token, XOAUTH2
    /// with a password) is an [`Error::MechanismUnfit`] here, before anything connects.
    pub fn with_mechanism(mut self, mechanism: crate::auth::Mechanism) -> Result<Self, Error> {
        if mechanism.credential_kind() != self.kind {
            return Err(Error::MechanismUnfit {
                mechanism,
                kind: self.kind,
            });
        }
        self.mechanism = Some(mechanism);
        Ok(self)
    }

    /// The mechanism chosen with [`Credential::with_mechanism`]; `None`: the best one offered.
    pub fn mechanism(&self) -> Option<crate::auth::Mechanism> {
        self.mechanism
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
    /// A password is fetched once for this credential and its clones; a token is reused for
    /// a minute (`TOKEN_REUSE`). A failure is not kept: the next call tries again.
    pub async fn secret(&self) -> Result<Secret, Error> {
        let fail = |reason: String| Error::Credential {
            what: self.kind.describe(),
            login: self.login.clone(),
            reason,
        };
        let secret = match &self.source {
            SecretSource::Value(secret) => return Ok(secret.clone()),
            SecretSource::OAuth2(oauth) => {
                // The sign-in knows when its token expires: no reuse window here.
                oauth
                    .access_token()
                    .await
                    .map_err(|source| Error::OAuth2SignIn {
                        login: self.login.clone(),
                        source,
                    })?
            }
            SecretSource::Callback(callback) => {
                return self.fetch_once(|| callback()).await.map_err(fail)
            }
            SecretSource::Command(command) => {
                return self.fetch_once(|| run_command(command)).await.map_err(fail)
            }
        };
        self.remember(&secret);
        Ok(secret)
    }

    /// The secret kept from before if it may still be used, else the answer of `fetch`, run
    /// by one caller at a time (clones asking at once wait for it) and kept.
    async fn fetch_once<F>(&self, fetch: impl FnOnce() -> F) -> Result<Secret, String>
    where
        F: Future<Output = Result<Secret, String>>,
    {
        if let Some(secret) = self.reusable(Instant::now()) {
            return Ok(secret);
        }
        let _one_at_a_time = self.fetching.lock().await;
        // A clone may have fetched it while this call waited.
        if let Some(secret) = self.reusable(Instant::now()) {
            return Ok(secret);
        }
        let secret = fetch().await?;
        self.remember(&secret);
        Ok(secret)
    }

    fn remember(&self, secret: &Secret) {
        if let Ok(mut fetched) = self.fetched.lock() {
            *fetched = Some(Fetched {
                secret: secret.clone(),
                at: Instant::now(),
            });
        }
    }

    /// After a server refused the OAuth2 token this credential gave: gets a fresh one (the
    /// sign-in renews it; a token command runs again). `Ok(true)`: one more login is worth
    /// trying; `Ok(false)`: nothing would change (a password, a fixed token).
    pub async fn renew_refused_token(&self) -> Result<bool, Error> {
        if self.kind != CredentialKind::OAuth2Token {
            return Ok(false);
        }
        let refused = self
            .fetched
            .lock()
            .ok()
            .and_then(|mut fetched| fetched.take())
            .map(|f| f.secret);
        match &self.source {
            SecretSource::OAuth2(oauth) => {
                let Some(refused) = refused else {
                    return Ok(false);
                };
                tracing::info!("the server refused the OAuth2 token; renewing it once");
                let token = oauth
                    .renew(&refused)
                    .await
                    .map_err(|source| Error::OAuth2SignIn {
                        login: self.login.clone(),
                        source,
                    })?;
                self.remember(&token);
                Ok(true)
            }
            SecretSource::Command(_) | SecretSource::Callback(_) => Ok(refused.is_some()),
            SecretSource::Value(_) => Ok(false),
        }
    }

    /// The secret fetched before, if it may still be used at `now`.
    fn reusable(&self, now: Instant) -> Option<Secret> {
        let fetched = self.fetched.lock().ok()?;
        let fetched = fetched.as_ref()?;
        let fresh = match self.kind {
            CredentialKind::Password => true,
            CredentialKind::OAuth2Token => now.saturating_duration_since(fetched.at) < TOKEN_REUSE,
        };
        fresh.then(|| fetched.secret.clone())
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

    /// A credential whose callback counts how often it is asked.
    fn counted(kind: CredentialKind) -> (Credential, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let callback = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                // A refresher waits on the network: let a concurrent caller run meanwhile.
                tokio::task::yield_now().await;
                Ok(Secret::new(format!("secret{n}").into_bytes()))
            }
        };
        let credential = Credential::callback("a", kind, callback);
        (credential, asked)
    }

    #[tokio::test]
    async fn a_password_is_fetched_once_for_the_credential_and_its_clones() {
        let (credential, asked) = counted(CredentialKind::Password);
        let clone = credential.clone();
        assert_eq!(credential.secret().await.unwrap().expose(), b"secret1");
        assert_eq!(clone.secret().await.unwrap().expose(), b"secret1");
        assert_eq!(credential.secret().await.unwrap().expose(), b"secret1");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn clones_asking_at_once_run_the_callback_once() {
        let (credential, asked) = counted(CredentialKind::Password);
        let clone = credential.clone();
        let (a, b) = tokio::join!(credential.secret(), clone.secret());
        assert_eq!(a.unwrap().expose(), b"secret1");
        assert_eq!(b.unwrap().expose(), b"secret1");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_password_command_runs_once() {
        let dir = std::env::temp_dir().join(format!("mailcat-credential-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let counter = dir.join("runs");
        let _ = std::fs::remove_file(&counter);
        let credential = Credential::new(
            "a",
            CredentialKind::Password,
            SecretSource::Command(format!("echo run >> '{}'; echo pw", counter.display())),
        );
        for _ in 0..3 {
            assert_eq!(credential.clone().secret().await.unwrap().expose(), b"pw");
        }
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_token_is_reused_for_a_while_then_fetched_again() {
        let (credential, asked) = counted(CredentialKind::OAuth2Token);
        assert_eq!(credential.secret().await.unwrap().expose(), b"secret1");
        assert_eq!(credential.secret().await.unwrap().expose(), b"secret1");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Tokens expire: a later connection (a reconnecting `watch`) asks again.
        let later = Instant::now() + TOKEN_REUSE + Duration::from_secs(1);
        assert!(credential.reusable(later).is_none());
        let (password, _) = counted(CredentialKind::Password);
        password.secret().await.unwrap();
        assert!(password.reusable(later).is_some());
    }

    #[tokio::test]
    async fn a_failure_is_not_kept() {
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let once = Arc::clone(&failed);
        let callback = move || {
            let answer = if once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Ok(Secret::new(&b"pw"[..]))
            } else {
                Err("the keyring is locked".to_owned())
            };
            std::future::ready(answer)
        };
        let credential = Credential::callback("a", CredentialKind::Password, callback);
        assert!(credential.secret().await.is_err());
        assert_eq!(credential.secret().await.unwrap().expose(), b"pw");
    }
}
