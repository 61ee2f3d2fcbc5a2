//! OAuth2 sign-in for mail (Outlook.com, Microsoft 365, Gmail, or any provider whose
//! endpoints are given), with no other tool: the authorization-code flow with PKCE and a
//! loopback redirect (RFC 6749 §4.1, RFC 7636, RFC 8252), the device flow (RFC 8628),
//! refreshing (RFC 6749 §6) and revocation (RFC 7009).
//!
//! [`OAuth2`] ties a [`Provider`] to a [`TokenStore`]. An app shows the sign-in itself:
//!
//! ```no_run
//! # async fn demo(oauth: mailcat_session::oauth2::OAuth2) -> Result<(), mailcat_session::oauth2::OAuth2Error> {
//! let sign_in = oauth.browser_start().await?;
//! println!("open {}", sign_in.url());          // or open a browser on it
//! oauth.browser_finish(sign_in, std::time::Duration::from_secs(300)).await?;
//! // From now on, logins use the stored token, refreshed when it is about to expire:
//! let credential = mailcat_session::Credential::oauth2_signed_in("me@outlook.com", std::sync::Arc::new(oauth));
//! # Ok(()) }
//! ```
//!
//! Every endpoint is HTTPS, verified with the account's trust settings; answers are bounded
//! in size and time. Tokens, codes and verifiers never appear in logs or errors.

mod browser;
mod device;
mod error;
pub mod pkce;
pub mod provider;
mod store;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

/// Why an HTTPS request to the identity provider failed (in [`OAuth2Error`]).
pub use crate::http::HttpsError;
pub use browser::BrowserSignIn;
pub use device::DeviceSignIn;
pub use error::OAuth2Error;
pub use provider::{Provider, ProviderKind, ProviderSettings};
pub use store::{FileTokenStore, TokenStore};
pub use tokens::{unix_now, TokenSet, RENEW_BEFORE};
/// Fuzzing: the readers of the endpoints' answers.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing {
    pub(crate) use super::device::read_device_answer;
    pub(crate) use super::error::clean;
    pub(crate) use super::tokens::{granted, read_json, Answer};
}

use crate::http::{HttpClient, Response};
use crate::Secret;
use tokens::{granted, read_json, Answer};

/// How long one request to an endpoint may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The most an endpoint's answer may hold: token answers are a few KiB.
pub const MAX_ANSWER: usize = 256 * 1024;

/// One account's OAuth2 sign-in: its provider, its token store and an HTTPS client.
#[derive(Debug)]
pub struct OAuth2 {
    provider: Provider,
    http: HttpClient,
    store: Arc<dyn TokenStore>,
    login_hint: Option<String>,
    /// Held while tokens are renewed, so logins that find the token stale at the same time
    /// (`check` connects to two servers) renew it once.
    renewing: tokio::sync::Mutex<()>,
}

/// What [`OAuth2::logout`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    /// Whether stored tokens were deleted (`false`: there were none).
    pub deleted: bool,
    /// What became of the refresh token at the provider.
    pub revocation: Revocation,
}

/// Whether the provider was told to revoke the tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The provider confirmed it.
    Revoked,
    /// The provider has no revocation endpoint (Microsoft); the tokens expire on their own
    /// or are revoked in the account's security settings.
    NotOffered,
    /// There was nothing to revoke.
    NothingStored,
    /// Revocation failed; the local tokens are deleted all the same.
    Failed(String),
}

impl OAuth2 {
    /// The sign-in of `provider`, keeping tokens in `store`, reaching the endpoints with `tls`
    /// (the account's trust settings: a private CA works).
    pub fn new(
        provider: Provider,
        tls: Arc<rustls::ClientConfig>,
        store: Arc<dyn TokenStore>,
    ) -> Self {
        Self {
            provider,
            http: HttpClient::new(tls)
                .with_timeout(HTTP_TIMEOUT)
                .with_max_body(MAX_ANSWER),
            store,
            login_hint: None,
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// Suggests the account to sign in to (`login_hint`), so the provider's page starts there.
    #[must_use]
    pub fn with_login_hint(mut self, email: impl Into<String>) -> Self {
        self.login_hint = Some(email.into());
        self
    }

    /// Limits each request to an endpoint to `timeout` instead of [`HTTP_TIMEOUT`].
    #[must_use]
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.with_timeout(timeout);
        self
    }

    /// The provider.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The token store.
    pub fn store(&self) -> &dyn TokenStore {
        &*self.store
    }

    /// The stored tokens, checked against this provider and client ID.
    pub fn status(&self) -> Result<Option<TokenSet>, OAuth2Error> {
        self.store.load()
    }

    /// An access token to log in with: the stored one while fresh, else a renewed one.
    pub async fn access_token(&self) -> Result<Secret, OAuth2Error> {
        let tokens = self.stored()?;
        if tokens.is_fresh(unix_now()) {
            return Ok(tokens.access_token);
        }
        let _renewing = self.renewing.lock().await;
        // Another login may have renewed it while this one waited.
        let tokens = self.stored()?;
        if tokens.is_fresh(unix_now()) {
            return Ok(tokens.access_token);
        }
        Ok(self.refresh(tokens).await?.access_token)
    }

    /// Renews the access token now, whatever its expiry says: a server refused it.
    /// `refused` is the token that was refused; if another login renewed it meanwhile, the
    /// newer one is returned without asking the provider again.
    pub async fn renew(&self, refused: &Secret) -> Result<Secret, OAuth2Error> {
        let _renewing = self.renewing.lock().await;
        let tokens = self.stored()?;
        if tokens.access_token != *refused && tokens.is_fresh(unix_now()) {
            return Ok(tokens.access_token);
        }
        Ok(self.refresh(tokens).await?.access_token)
    }

    /// Deletes the stored tokens, after asking the provider to revoke the refresh token where
    /// it offers revocation (RFC 7009). The local tokens go even if revocation fails.
    pub async fn logout(&self) -> Result<Logout, OAuth2Error> {
        let stored = match self.store.load() {
            Ok(stored) => stored,
            // A file that cannot be used is still deleted.
            Err(OAuth2Error::Store { .. }) => None,
            Err(e) => return Err(e),
        };
        let revocation = match (&stored, &self.provider.revoke_url) {
            (None, _) => Revocation::NothingStored,
            (Some(_), None) => Revocation::NotOffered,
            (Some(tokens), Some(url)) => {
                let token = tokens
                    .refresh_token
                    .as_ref()
                    .unwrap_or(&tokens.access_token);
                let hint = if tokens.refresh_token.is_some() {
                    "refresh_token"
                } else {
                    "access_token"
                };
                match self.revoke(url, token, hint).await {
                    Ok(()) => Revocation::Revoked,
                    Err(e) => Revocation::Failed(e.to_string()),
                }
            }
        };
        let deleted = self.store.delete()?;
        Ok(Logout {
            deleted,
            revocation,
        })
    }

    async fn revoke(&self, url: &str, token: &Secret, hint: &str) -> Result<(), OAuth2Error> {
        const WHAT: &str = "revocation endpoint";
        let token = String::from_utf8_lossy(token.expose()).into_owned();
        let form = [("token", token.as_str()), ("token_type_hint", hint)];
        let response = self.post(WHAT, url, &form).await?;
        // RFC 7009 §2.2: 200 whether or not the token was valid; an error is JSON.
        if response.status == 200 {
            return Ok(());
        }
        match read_json(WHAT, &response)? {
            Answer::Error { code, description } => Err(OAuth2Error::Refused {
                what: WHAT,
                code,
                description,
            }),
            Answer::Ok(_) => Err(OAuth2Error::Malformed {
                what: WHAT,
                url: tokens::without_query(url),
                reason: format!("status {}", response.status),
            }),
        }
    }

    /// The stored tokens, or why a sign-in is needed.
    fn stored(&self) -> Result<TokenSet, OAuth2Error> {
        let tokens = self
            .store
            .load()?
            .ok_or_else(|| OAuth2Error::SignInRequired {
                reason: format!(
                    "not signed in: no OAuth2 tokens are stored ({})",
                    self.store.location()
                ),
            })?;
        if tokens.client_id != self.provider.client_id {
            return Err(OAuth2Error::SignInRequired {
                reason: "the stored sign-in was made with another client ID: sign in again".into(),
            });
        }
        Ok(tokens)
    }

    /// Uses the refresh token (RFC 6749 §6) and stores the answer.
    async fn refresh(&self, tokens: TokenSet) -> Result<TokenSet, OAuth2Error> {
        let Some(refresh_token) = &tokens.refresh_token else {
            return Err(OAuth2Error::SignInRequired {
                reason:
                    "the access token expired and the provider gave no refresh token: sign in again"
                        .into(),
            });
        };
        let refresh_token = String::from_utf8_lossy(refresh_token.expose()).into_owned();
        tracing::debug!(provider = %self.provider.kind, "OAuth2: renewing the access token");
        let granted = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ])
            .await
            .map_err(|e| match e {
                OAuth2Error::Refused { code, description, .. } if code == "invalid_grant" => {
                    OAuth2Error::SignInRequired {
                        reason: format!(
                            "the provider no longer accepts the stored sign-in (invalid_grant{}): it was revoked or expired, or the password changed; sign in again",
                            description.map(|d| format!(": {d}")).unwrap_or_default()
                        ),
                    }
                }
                other => other,
            })?;
        let renewed = self.token_set(granted, tokens.refresh_token);
        self.store.save(&renewed)?;
        Ok(renewed)
    }

    /// POSTs `grant` to the token endpoint and reads the
    /// answer (RFC 6749 §4.1.3, §6; RFC 8628 §3.4).
    async fn token_request(&self, grant: &[(&str, &str)]) -> Result<tokens::Granted, OAuth2Error> {
        const WHAT: &str = "token endpoint";
        let url = &self.provider.token_url;
        let response = self.post(WHAT, url, grant).await?;
        match read_json(WHAT, &response)? {
            Answer::Ok(map) => granted(WHAT, url, &map),
            Answer::Error { code, description } => Err(OAuth2Error::Refused {
                what: WHAT,
                code,
                description,
            }),
        }
    }

    /// POSTs `form` to one of the provider's endpoints with the client's credentials in the
    /// body (RFC 6749 §2.3.1), as every endpoint here takes them.
    async fn post(
        &self,
        what: &'static str,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Response, OAuth2Error> {
        let mut form = form.to_vec();
        form.push(("client_id", &self.provider.client_id));
        if let Some(secret) = &self.provider.client_secret {
            form.push(("client_secret", secret));
        }
        self.http
            .post_form(url, &form)
            .await
            .map_err(|source| OAuth2Error::Http { what, source })
    }

    /// The tokens of a grant: expiry from now, the scopes granted (or asked for), and the
    /// previous refresh token when the provider did not send a new one (§6 allows both).
    fn token_set(&self, granted: tokens::Granted, previous_refresh: Option<Secret>) -> TokenSet {
        let scopes = match &granted.scope {
            Some(scope) => scope.split_ascii_whitespace().map(str::to_owned).collect(),
            None => self.provider.scopes.clone(),
        };
        let now = unix_now();
        TokenSet {
            provider: self.provider.kind.to_string(),
            client_id: self.provider.client_id.clone(),
            scopes,
            access_token: Secret::new(granted.access_token),
            expires_at: granted.expires_in.map(|s| now + s),
            obtained_at: Some(now),
            refresh_token: granted.refresh_token.map(Secret::new).or(previous_refresh),
        }
    }

    /// Stores the tokens of a completed sign-in.
    fn signed_in(&self, granted: tokens::Granted) -> Result<TokenSet, OAuth2Error> {
        let tokens = self.token_set(granted, None);
        self.store.save(&tokens)?;
        Ok(tokens)
    }
}
