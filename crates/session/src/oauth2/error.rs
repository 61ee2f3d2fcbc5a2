//! Why a sign-in, a refresh or a sign-out failed: each case says what happened and, where the
//! user can act, what to do. None carries a token, a code or a verifier.

use std::path::PathBuf;

use crate::http::HttpsError;

use super::provider::ProviderError;

/// An OAuth2 failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuth2Error {
    /// The provider settings are incomplete or unsafe.
    #[error(transparent)]
    Provider(#[from] ProviderError),

    /// An endpoint could not be reached, or its answer was not HTTP within the limits.
    #[error("{what}: {source}")]
    Http {
        /// Which endpoint ("token endpoint", "device authorization endpoint" ...).
        what: &'static str,
        /// What went wrong.
        #[source]
        source: HttpsError,
    },

    /// An endpoint answered something other than JSON (an HTML page, typically: a wrong URL,
    /// a captive portal, a proxy's login page).
    #[error("the {what} at {url} answered {found} (status {status}), not the JSON OAuth2 requires; check the URL")]
    NotJson {
        /// Which endpoint.
        what: &'static str,
        /// Its URL, without query.
        url: String,
        /// The HTTP status.
        status: u16,
        /// "an HTML page", "bytes that are not JSON" ...
        found: String,
    },

    /// The JSON lacks what OAuth2 requires, or has it in the wrong form.
    #[error("the {what} at {url} answered malformed JSON: {reason}")]
    Malformed {
        /// Which endpoint.
        what: &'static str,
        /// Its URL.
        url: String,
        /// What is wrong.
        reason: String,
    },

    /// The provider refused the request with an OAuth2 error code (RFC 6749 §5.2).
    #[error("the {what} refused the request: {code}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// Which endpoint.
        what: &'static str,
        /// The `error` code (`invalid_client`, `invalid_scope` ...).
        code: String,
        /// The provider's `error_description`, control characters removed.
        description: Option<String>,
    },

    /// The stored sign-in can no longer be used: there is none, it was revoked or it expired
    /// (`invalid_grant`), or it was made for another client ID. Signing in again fixes it.
    #[error("{reason}")]
    SignInRequired {
        /// Why.
        reason: String,
    },

    /// The user (or the provider's policy) declined the sign-in.
    #[error("the sign-in was declined ({code}{})", description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Declined {
        /// `access_denied`, or the error the redirect carried.
        code: String,
        /// The provider's description.
        description: Option<String>,
    },

    /// The device code expired before the user finished signing in.
    #[error("the code expired before the sign-in was completed; start again")]
    DeviceCodeExpired,

    /// The redirect's `state` is not the one this sign-in sent: another page or program
    /// tried to complete it (RFC 6749 §10.12). Nothing was exchanged.
    #[error("the browser's redirect carries a state that is not this sign-in's: refused (another page may have tried to complete it); start again")]
    StateMismatch,

    /// The redirect lacks the code.
    #[error("the browser's redirect carries neither a code nor an error: {0}")]
    BadRedirect(String),

    /// Nobody completed the sign-in in time.
    #[error("no sign-in completed within {} s", .0.as_secs())]
    TimedOut(std::time::Duration),

    /// The loopback listener for the redirect could not be opened.
    #[error("cannot listen on 127.0.0.1 for the browser's redirect: {0}")]
    Listen(std::io::Error),

    /// The provider does not allow the device flow for mail (Google).
    #[error("{0}")]
    DeviceFlowUnsupported(String),

    /// The token store failed or is unsafe.
    #[error("token store {path}: {reason}", path = .path.display())]
    Store {
        /// The file (or the app store's description).
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The system's random source failed.
    #[error("the system's random number source failed")]
    Random,
}

impl OAuth2Error {
    /// Whether signing in again (`oauth2 login`) is the fix.
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, Self::SignInRequired { .. })
    }

    /// Whether the cause is the configuration (provider settings, token file permissions),
    /// not the network or the provider.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::Provider(_)
                | Self::Store { .. }
                | Self::DeviceFlowUnsupported(_)
                | Self::NotJson { .. }
        ) || matches!(self, Self::Refused { code, .. } if code == "invalid_client" || code == "unauthorized_client" || code == "invalid_scope")
    }

    /// Whether trying again later may work (network, timeouts, the provider's 5xx).
    pub fn is_temporary(&self) -> bool {
        match self {
            // The network, not what the endpoint answered: a malformed or oversized answer
            // will be the same next time.
            Self::Http { source, .. } => matches!(
                source,
                HttpsError::Resolve { .. }
                    | HttpsError::Connect { .. }
                    | HttpsError::Io { .. }
                    | HttpsError::Timeout { .. }
            ),
            Self::Refused { code, .. } => code == "temporarily_unavailable",
            _ => false,
        }
    }
}

/// Text from a provider, cut to a sane length, control characters (terminal escapes) removed.
pub(crate) fn clean(text: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out.trim().to_owned()
}
