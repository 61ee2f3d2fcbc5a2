//! The authorization server's rules: what each endpoint answers to a request, given what it
//! has issued before. No I/O: the connection code feeds requests in and writes the replies.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use super::http::{percent_decode, percent_encode, Request, Response};
use super::{
    mint, AuthorizeBehaviour, Config, DeviceAnswer, DevicePoll, Endpoint, Fault, Issued,
    RefreshTokens, DEVICE_CODE_GRANT,
};

/// What the connection does with a request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Write this answer and close.
    Answer(Response),
    /// Play this fault.
    Fault(Fault),
}

/// A code `/authorize` gave out.
#[derive(Debug)]
struct CodeGrant {
    redirect_uri: String,
    challenge: String,
    scope: String,
    issued: Instant,
    /// Exchanged (or tried with a wrong verifier): any further use is refused.
    spent: bool,
    /// The refresh token the exchange issued, revoked if the code is replayed
    /// (RFC 6749 §4.1.2).
    refresh_token: Option<String>,
}

/// A refresh token the token endpoint gave out.
#[derive(Debug)]
pub(crate) struct RefreshGrant {
    scope: String,
    pub(crate) revoked: bool,
}

/// Where a device code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceEnd {
    Approved,
    Denied,
    Expired,
}

/// A device code `/devicecode` gave out.
#[derive(Debug)]
struct DeviceGrant {
    scope: String,
    expires: Instant,
    interval: Duration,
    script: std::collections::VecDeque<DeviceAnswer>,
    last_poll: Option<Instant>,
    end: Option<DeviceEnd>,
}

/// The server's whole state, behind the handle's mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: Config,
    base_url: String,
    random: SystemRandom,
    pub(crate) authorize: AuthorizeBehaviour,
    pub(crate) faults: HashMap<Endpoint, Fault>,
    pub(crate) device_script: Vec<DeviceAnswer>,
    pub(crate) born_expired: u32,
    codes: HashMap<String, CodeGrant>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    devices: HashMap<String, DeviceGrant>,
    pub(crate) requests: Vec<Request>,
    pub(crate) polls: Vec<DevicePoll>,
    pub(crate) issued: Vec<Issued>,
    pub(crate) revocations: usize,
}

/// An error answer to return early with.
type Refusal = Box<Response>;

fn refuse(status: u16, error: &str, description: &str) -> Refusal {
    Box::new(Response::error(status, error, description))
}

impl State {
    pub(crate) fn new(config: Config, base_url: String) -> Self {
        Self {
            config,
            base_url,
            random: SystemRandom::new(),
            authorize: AuthorizeBehaviour::Consent,
            faults: HashMap::new(),
            device_script: vec![DeviceAnswer::Pending, DeviceAnswer::Approve],
            born_expired: 0,
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            devices: HashMap::new(),
            requests: Vec::new(),
            polls: Vec::new(),
            issued: Vec::new(),
            revocations: 0,
        }
    }

    /// Logs `request` and decides the reply.
    pub(crate) fn handle(&mut self, request: Request) -> Reply {
        self.requests.push(request.clone());
        let endpoint = match request.path.as_str() {
            "/authorize" => Endpoint::Authorize,
            "/token" => Endpoint::Token,
            "/devicecode" => Endpoint::DeviceCode,
            "/revoke" => Endpoint::Revoke,
            "/device" => {
                return Reply::Answer(Response::html(
                    200,
                    "<!DOCTYPE html><title>Device sign-in</title><form>Enter the code: \
                     <input name=user_code></form>\n",
                ))
            }
            _ => return Reply::Answer(Response::error(404, "not_found", "no such endpoint")),
        };
        if let Some(fault) = self.faults.get(&endpoint) {
            return Reply::Fault(*fault);
        }
        let want = if endpoint == Endpoint::Authorize {
            "GET"
        } else {
            "POST"
        };
        if request.method != want {
            return Reply::Answer(Response::error(
                405,
                "invalid_request",
                &format!("{} takes {want}", request.path),
            ));
        }
        let answer = match endpoint {
            Endpoint::Authorize => Ok(self.authorize(&request)),
            Endpoint::Token => self.token(&request),
            Endpoint::DeviceCode => self.device_code(&request),
            Endpoint::Revoke => self.revoke(&request),
        };
        Reply::Answer(answer.unwrap_or_else(|refusal| *refusal))
    }

    /// `GET /authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3). A request whose client or redirect
    /// URI is wrong gets an error page, never a redirect (§4.1.2.1); other errors go back to
    /// the client on the redirect.
    fn authorize(&mut self, request: &Request) -> Response {
        if request.param("client_id") != Some(self.config.client_id.as_str()) {
            return Response::html(400, "<p>Unknown client_id.</p>\n");
        }
        let Some(redirect_uri) = request.param("redirect_uri").filter(|u| is_loopback(u)) else {
            return Response::html(
                400,
                "<p>redirect_uri must be http://127.0.0.1:PORT/… or http://[::1]:PORT/… \
                 (RFC 8252 §7.3).</p>\n",
            );
        };
        let state = request.param("state").unwrap_or_default();
        let back = |fields: &[(&str, &str)]| {
            let mut location = redirect_uri.to_owned();
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(&super::http::form(fields));
            Response::redirect(location)
        };
        let error = |error: &str, description: &str| {
            back(&[
                ("error", error),
                ("error_description", description),
                ("state", state),
            ])
        };
        if request.param("response_type") != Some("code") {
            return error("unsupported_response_type", "response_type must be code");
        }
        if state.is_empty() {
            return error("invalid_request", "state is missing");
        }
        if request.param("code_challenge_method") != Some("S256") {
            return error("invalid_request", "code_challenge_method must be S256");
        }
        let challenge = request.param("code_challenge").unwrap_or_default();
        if !is_pkce_value(challenge) {
            return error(
                "invalid_request",
                "code_challenge must be 43 to 128 unreserved characters",
            );
        }
        let scope = request.param("scope").unwrap_or_default();
        if scope.trim().is_empty() {
            return error("invalid_scope", "scope is missing");
        }
        let issue_code = |this: &mut Self| {
            let code = this.random_token("code");
            this.codes.insert(
                code.clone(),
                CodeGrant {
                    redirect_uri: redirect_uri.to_owned(),
                    challenge: challenge.to_owned(),
                    scope: scope.to_owned(),
                    issued: Instant::now(),
                    spent: false,
                    refresh_token: None,
                },
            );
            code
        };
        match self.authorize {
            AuthorizeBehaviour::Consent => {
                let code = issue_code(self);
                back(&[("code", &code), ("state", state)])
            }
            AuthorizeBehaviour::WrongState => {
                let code = issue_code(self);
                back(&[("code", &code), ("state", &format!("forged-{state}"))])
            }
            AuthorizeBehaviour::Deny => error("access_denied", "the user declined"),
            AuthorizeBehaviour::HtmlPage => Response::html(
                200,
                "<!DOCTYPE html><title>Sign in</title><h1>Sign in</h1>\
                 <form method=post><input name=login><input type=password name=password>\
                 </form>\n",
            ),
        }
    }

    /// `POST /token` (RFC 6749 §4.1.3, §6; RFC 8628 §3.4).
    fn token(&mut self, request: &Request) -> Result<Response, Refusal> {
        self.authenticate(request)?;
        match request.param("grant_type") {
            Some("authorization_code") => self.exchange_code(request),
            Some("refresh_token") => self.refresh(request),
            Some(DEVICE_CODE_GRANT) => self.poll(request),
            Some(other) => Err(refuse(
                400,
                "unsupported_grant_type",
                &format!("grant_type {other} is not supported"),
            )),
            None => Err(refuse(400, "invalid_request", "grant_type is missing")),
        }
    }

    fn exchange_code(&mut self, request: &Request) -> Result<Response, Refusal> {
        let code = required(request, "code")?;
        let Some(grant) = self.codes.get_mut(code) else {
            return Err(refuse(400, "invalid_grant", "unknown authorization code"));
        };
        if grant.spent {
            // RFC 6749 §4.1.2: a replayed code revokes what it obtained.
            if let Some(token) = grant.refresh_token.take() {
                if let Some(refresh) = self.refresh_tokens.get_mut(&token) {
                    refresh.revoked = true;
                }
            }
            return Err(refuse(
                400,
                "invalid_grant",
                "authorization code already used",
            ));
        }
        grant.spent = true;
        if grant.issued.elapsed() > self.config.code_ttl {
            return Err(refuse(400, "invalid_grant", "authorization code expired"));
        }
        if request.param("redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return Err(refuse(
                400,
                "invalid_grant",
                "redirect_uri differs from the authorization request's",
            ));
        }
        let verifier = required(request, "code_verifier")?;
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        if !is_pkce_value(verifier) || URL_SAFE_NO_PAD.encode(digest) != grant.challenge {
            return Err(refuse(
                400,
                "invalid_grant",
                "PKCE verification failed: code_verifier does not match code_challenge",
            ));
        }
        let scope = grant.scope.clone();
        let (response, refresh_token) =
            self.issue("authorization_code", &scope, RefreshTokens::Rotate);
        if let Some(grant) = self.codes.get_mut(code) {
            grant.refresh_token = refresh_token;
        }
        Ok(response)
    }

    fn refresh(&mut self, request: &Request) -> Result<Response, Refusal> {
        let token = required(request, "refresh_token")?;
        let Some(grant) = self.refresh_tokens.get(token) else {
            return Err(refuse(400, "invalid_grant", "unknown refresh token"));
        };
        if grant.revoked {
            return Err(refuse(
                400,
                "invalid_grant",
                "the refresh token was revoked",
            ));
        }
        let scope = grant.scope.clone();
        if let Some(asked) = request.param("scope") {
            let granted: Vec<&str> = scope.split_whitespace().collect();
            if !asked.split_whitespace().all(|s| granted.contains(&s)) {
                return Err(refuse(
                    400,
                    "invalid_scope",
                    "a refresh may not ask for more than was granted",
                ));
            }
        }
        let rotation = self.config.refresh_tokens;
        if rotation == RefreshTokens::Rotate {
            if let Some(grant) = self.refresh_tokens.get_mut(token) {
                grant.revoked = true;
            }
        }
        Ok(self.issue("refresh_token", &scope, rotation).0)
    }

    /// One poll with a device code (RFC 8628 §3.5).
    fn poll(&mut self, request: &Request) -> Result<Response, Refusal> {
        let code = required(request, "device_code")?;
        let step = self.config.slow_down_step;
        let Some(grant) = self.devices.get_mut(code) else {
            return Err(refuse(400, "invalid_grant", "unknown device code"));
        };
        let now = request.at;
        let interval = grant.interval;
        let early = grant
            .last_poll
            .is_some_and(|last| now.saturating_duration_since(last) < interval);
        grant.last_poll = Some(now);
        if grant.end.is_none() && now >= grant.expires {
            grant.end = Some(DeviceEnd::Expired);
        }
        let answer = match grant.end {
            Some(DeviceEnd::Approved) => Err("invalid_grant"),
            Some(DeviceEnd::Denied) => Err("access_denied"),
            Some(DeviceEnd::Expired) => Err("expired_token"),
            None if early => {
                grant.interval += step;
                Err("slow_down")
            }
            None => match grant.script.pop_front().unwrap_or(DeviceAnswer::Pending) {
                DeviceAnswer::Pending => Err("authorization_pending"),
                DeviceAnswer::SlowDown => {
                    grant.interval += step;
                    Err("slow_down")
                }
                DeviceAnswer::Approve => {
                    grant.end = Some(DeviceEnd::Approved);
                    Ok(())
                }
                DeviceAnswer::Deny => {
                    grant.end = Some(DeviceEnd::Denied);
                    Err("access_denied")
                }
                DeviceAnswer::Expire => {
                    grant.end = Some(DeviceEnd::Expired);
                    Err("expired_token")
                }
            },
        };
        let scope = grant.scope.clone();
        self.polls.push(DevicePoll {
            at: now,
            device_code: code.to_owned(),
            interval,
            early,
            answer: answer.err().unwrap_or("success").to_owned(),
        });
        match answer {
            Ok(()) => Ok(self
                .issue(DEVICE_CODE_GRANT, &scope, RefreshTokens::Rotate)
                .0),
            Err(error) => {
                let description = match error {
                    "invalid_grant" => "the device code was already used",
                    "access_denied" => "the user declined",
                    "expired_token" => "the device code expired",
                    "slow_down" => "polling too fast",
                    _ => "the user has not finished signing in",
                };
                Err(refuse(400, error, description))
            }
        }
    }

    /// `POST /devicecode` (RFC 8628 §3.1, §3.2).
    fn device_code(&mut self, request: &Request) -> Result<Response, Refusal> {
        self.authenticate(request)?;
        let scope = request.param("scope").unwrap_or_default().to_owned();
        if scope.trim().is_empty() {
            return Err(refuse(400, "invalid_scope", "scope is missing"));
        }
        let device_code = self.random_token("device");
        let mut letters = [0u8; 8];
        self.random.fill(&mut letters).expect("random user code");
        // RFC 8628 §6.1: consonants only, so no words and no look-alike letters.
        const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
        let user_code: String = letters
            .iter()
            .enumerate()
            .flat_map(|(i, &b)| {
                let letter = char::from(ALPHABET[usize::from(b) % ALPHABET.len()]);
                (i == 4).then_some('-').into_iter().chain([letter])
            })
            .collect();
        let ttl = self.config.device_code_ttl;
        let interval = self.config.device_interval;
        self.devices.insert(
            device_code.clone(),
            DeviceGrant {
                scope,
                expires: Instant::now() + ttl,
                interval,
                script: self.device_script.iter().copied().collect(),
                last_poll: None,
                end: None,
            },
        );
        let verification_uri = format!("{}/device", self.base_url);
        Ok(Response::json(
            200,
            &serde_json::json!({
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": verification_uri,
                "verification_uri_complete":
                    format!("{verification_uri}?user_code={}", percent_encode(&user_code)),
                "expires_in": ttl.as_secs(),
                "interval": interval.as_secs(),
            }),
        ))
    }

    /// `POST /revoke` (RFC 7009 §2.1): 200 whether or not the token was known (§2.2).
    fn revoke(&mut self, request: &Request) -> Result<Response, Refusal> {
        self.authenticate(request)?;
        let token = required(request, "token")?;
        self.revocations += 1;
        if let Some(grant) = self.refresh_tokens.get_mut(token) {
            grant.revoked = true;
        }
        Ok(Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// Client authentication (RFC 6749 §2.3.1): HTTP Basic or the form's `client_id` and
    /// `client_secret`, not both.
    fn authenticate(&self, request: &Request) -> Result<(), Refusal> {
        if !request.is_form() {
            return Err(refuse(
                400,
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let basic = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Basic "));
        let (client_id, secret) = match basic {
            Some(credentials) => {
                if request.param("client_secret").is_some() {
                    return Err(refuse(
                        400,
                        "invalid_request",
                        "client credentials both in the Authorization header and the body",
                    ));
                }
                let decoded = STANDARD
                    .decode(credentials.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| refuse(400, "invalid_request", "malformed Basic credentials"))?;
                let (id, secret) = decoded.split_once(':').unwrap_or((&decoded, ""));
                (
                    percent_decode(id.as_bytes()),
                    Some(percent_decode(secret.as_bytes())),
                )
            }
            None => (
                request.param("client_id").unwrap_or_default().to_owned(),
                request.param("client_secret").map(str::to_owned),
            ),
        };
        let problem = if client_id != self.config.client_id {
            "unknown client_id"
        } else if self
            .config
            .client_secret
            .as_ref()
            .is_some_and(|expected| secret.as_ref() != Some(expected))
        {
            "wrong or missing client_secret"
        } else {
            return Ok(());
        };
        let mut refusal = refuse(401, "invalid_client", problem);
        if basic.is_some() {
            // RFC 6749 §5.2: a failed Basic authentication is answered with a challenge.
            refusal
                .headers
                .push(("WWW-Authenticate", "Basic realm=\"mock\"".to_owned()));
        }
        Err(refusal)
    }

    /// Issues an access token and, unless `refresh` is [`RefreshTokens::Keep`], a new refresh
    /// token; returns the answer and that refresh token.
    fn issue(
        &mut self,
        grant_type: &str,
        scope: &str,
        refresh: RefreshTokens,
    ) -> (Response, Option<String>) {
        let ttl = self.config.access_token_ttl.as_secs();
        let born_expired = self.born_expired > 0;
        self.born_expired = self.born_expired.saturating_sub(1);
        let lifetime = if born_expired {
            -60
        } else {
            i64::try_from(ttl).expect("a sane lifetime")
        };
        let access_token = mint(&self.config.signing_key, &self.config.subject, lifetime);
        let mut body = serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
        });
        let refresh_token = (refresh == RefreshTokens::Rotate).then(|| {
            let token = self.random_token("refresh");
            self.refresh_tokens.insert(
                token.clone(),
                RefreshGrant {
                    scope: scope.to_owned(),
                    revoked: false,
                },
            );
            body["refresh_token"] = serde_json::Value::from(token.as_str());
            token
        });
        self.issued.push(Issued {
            at: Instant::now(),
            grant_type: grant_type.to_owned(),
            access_token,
            refresh_token: refresh_token.clone(),
            born_expired,
        });
        (Response::json(200, &body), refresh_token)
    }

    /// `PREFIX-` and 32 random bytes, base64url.
    fn random_token(&self, prefix: &str) -> String {
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes).expect("random token");
        format!("{prefix}-{}", URL_SAFE_NO_PAD.encode(bytes))
    }
}

fn required<'r>(request: &'r Request, name: &str) -> Result<&'r str, Refusal> {
    request
        .param(name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| refuse(400, "invalid_request", &format!("{name} is missing")))
}

/// A loopback redirect URI as RFC 8252 §7.3 describes it: `http`, a loopback IP literal, a
/// port, a path.
fn is_loopback(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| uri.strip_prefix("http://[::1]:"))
    else {
        return false;
    };
    let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // `http://127.0.0.1:PORT` without a path is what Microsoft and Google register.
    port.parse::<u16>().is_ok_and(|p| p != 0) && (path.is_empty() || path.starts_with('/'))
}

/// A PKCE code verifier or S256 challenge: 43 to 128 characters of `[A-Za-z0-9-._~]`
/// (RFC 7636 §4.1, §4.2).
fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}
