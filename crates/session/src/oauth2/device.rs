//! The device authorization flow (RFC 8628): the user enters a short code on a page of the
//! provider, on any device, while this process polls the token endpoint.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::error::clean;
use super::provider::DeviceFlowSupport;
use super::tokens::{read_json, without_query, Answer};
use super::{OAuth2, OAuth2Error, TokenSet};

/// The grant type of RFC 8628 §3.4.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.5: the interval when the provider names none, and the step added on `slow_down`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// How many polls in a row may fail on the network before the sign-in is given up.
const NETWORK_FAILURES: u32 = 3;

/// A device sign-in in progress: show [`DeviceSignIn::user_code`] and
/// [`DeviceSignIn::verification_uri`] to the user, then pass this to [`OAuth2::device_finish`].
#[derive(Debug)]
pub struct DeviceSignIn {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: Duration,
    interval: Duration,
    started: Instant,
}

impl DeviceSignIn {
    /// The code the user types on the provider's page.
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// The page where the user types it.
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The page with the code already filled in, when the provider offers one.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// How long the code is valid.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// How often the token endpoint is polled at first.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl OAuth2 {
    /// Asks the device authorization endpoint for a user code (RFC 8628 §3.1).
    pub async fn device_start(&self) -> Result<DeviceSignIn, OAuth2Error> {
        const WHAT: &str = "device authorization endpoint";
        let provider = &self.provider;
        if let DeviceFlowSupport::Unsupported { why } = &provider.device_flow {
            return Err(OAuth2Error::DeviceFlowUnsupported(why.to_string()));
        }
        let Some(url) = &provider.device_url else {
            return Err(OAuth2Error::DeviceFlowUnsupported(
                "this provider has no device authorization endpoint (device_url): sign in with the browser instead".into(),
            ));
        };
        let scope = provider.scope_param();
        let response = self.post(WHAT, url, &[("scope", &scope)]).await?;
        let map = match read_json(WHAT, &response)? {
            Answer::Ok(map) => map,
            Answer::Error { code, description } => {
                return Err(OAuth2Error::Refused {
                    what: WHAT,
                    code,
                    description,
                })
            }
        };
        read_device_answer(WHAT, url, &map)
    }

    /// Polls the token endpoint until the user completes the sign-in, declines it or the code
    /// expires (RFC 8628 §3.4, §3.5): every `interval`, 5 s slower after each `slow_down`,
    /// backing off after a network failure. Stores the tokens.
    pub async fn device_finish(&self, sign_in: DeviceSignIn) -> Result<TokenSet, OAuth2Error> {
        let deadline = sign_in.started + sign_in.expires_in;
        let mut interval = sign_in.interval;
        let mut failures = 0;
        loop {
            if Instant::now() + interval > deadline {
                return Err(OAuth2Error::DeviceCodeExpired);
            }
            tokio::time::sleep(interval).await;
            let poll = self
                .token_request(&[
                    ("grant_type", DEVICE_GRANT),
                    ("device_code", &sign_in.device_code),
                ])
                .await;
            match poll {
                Ok(granted) => return self.signed_in(granted),
                Err(OAuth2Error::Refused {
                    code, description, ..
                }) => {
                    failures = 0;
                    match code.as_str() {
                        "authorization_pending" => {}
                        "slow_down" => interval += SLOW_DOWN_STEP,
                        "expired_token" => return Err(OAuth2Error::DeviceCodeExpired),
                        // Microsoft says authorization_declined where RFC 8628 says
                        // access_denied.
                        "access_denied" | "authorization_declined" => {
                            return Err(OAuth2Error::Declined { code, description })
                        }
                        _ => {
                            return Err(OAuth2Error::Refused {
                                what: "token endpoint",
                                code,
                                description,
                            })
                        }
                    }
                }
                Err(e) if e.is_temporary() && failures + 1 < NETWORK_FAILURES => {
                    failures += 1;
                    tracing::warn!("polling for the sign-in failed, trying again: {e}");
                    interval *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The device authorization endpoint's answer (RFC 8628 §3.2), read from its JSON object `map`
/// (from `url`, the endpoint named `what`): the codes and pages shown to the user are checked.
pub(crate) fn read_device_answer(
    what: &'static str,
    url: &str,
    map: &serde_json::Map<String, Value>,
) -> Result<DeviceSignIn, OAuth2Error> {
    let malformed = |reason: &str| OAuth2Error::Malformed {
        what,
        url: without_query(url),
        reason: reason.to_owned(),
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    let seconds = |key: &str| {
        map.get(key).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
    };
    let device_code = text("device_code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| malformed("no \"device_code\""))?;
    let user_code = text("user_code")
        .filter(|c| is_printable(c))
        .ok_or_else(|| malformed("no printable \"user_code\""))?;
    // Google says "verification_url", RFC 8628 "verification_uri".
    let verification_uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .filter(|u| is_https_page(u))
        .ok_or_else(|| malformed("no https:// \"verification_uri\""))?;
    let verification_uri_complete = text("verification_uri_complete").filter(|u| is_https_page(u));
    let expires_in = seconds("expires_in").ok_or_else(|| malformed("no \"expires_in\""))?;
    let interval = seconds("interval")
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_INTERVAL)
        .clamp(Duration::from_secs(1), Duration::from_secs(60));
    Ok(DeviceSignIn {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: Duration::from_secs(expires_in.min(24 * 3600)),
        interval,
        started: Instant::now(),
    })
}

/// A code a terminal can show as is: printable ASCII, short.
fn is_printable(code: &str) -> bool {
    !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// An https:// address without control characters or spaces, of sane length.
fn is_https_page(url: &str) -> bool {
    url.len() <= 2048
        && url.starts_with("https://")
        && url.bytes().all(|b| (0x21..0x7f).contains(&b))
        && clean(url) == url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_pages_shown_to_the_user_are_checked() {
        assert!(is_printable("ABCD-EFGH"));
        assert!(!is_printable("AB\u{1b}[2J"));
        assert!(!is_printable(""));
        assert!(is_https_page("https://microsoft.com/devicelogin"));
        assert!(!is_https_page("http://evil.example/"));
        assert!(!is_https_page("https://a.example/\u{1b}[31m"));
        assert!(!is_https_page("https://a.example/ x"));
    }
}
