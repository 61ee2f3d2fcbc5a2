//! A mock OAuth2 authorization server on loopback, for the tests of mailcat's built-in OAuth2
//! sign-in: the authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636), the refresh grant
//! (RFC 6749 §6), the device-authorization flow (RFC 8628) and token revocation (RFC 7009).
//!
//! Its access tokens are what the lab's Dovecot and Postfix accept: HS256 JWTs
//! `{"sub", "iat", "exp", "jti"}` signed with the lab's key (as `tests/lab/mint_token.py`
//! mints them), with a short lifetime so that a client's refresh is exercised. [`Config::lab`] serves HTTPS
//! with the lab's certificate (trusted through the lab's CA file) and signs for the lab's
//! OAuth2 user; [`Config::standalone`] needs no lab: a fresh test CA and signing key.
//!
//! ```text
//! GET  /authorize   ?response_type=code&client_id&redirect_uri=http://127.0.0.1:PORT/…&scope
//!                   &state&code_challenge&code_challenge_method=S256
//!                   → 302 redirect_uri?code=…&state=…      (see AuthorizeBehaviour)
//! POST /token       grant_type=authorization_code | refresh_token
//!                   | urn:ietf:params:oauth:grant-type:device_code
//!                   → {"access_token","token_type":"Bearer","expires_in","refresh_token","scope"}
//! POST /devicecode  → {"device_code","user_code","verification_uri",
//!                      "verification_uri_complete","expires_in","interval"}
//! POST /revoke      token[&token_type_hint] → 200
//! GET  /device      the page a user would type the user code into
//! ```
//!
//! Clients authenticate at `/token`, `/devicecode` and `/revoke` with `client_id` (and
//! `client_secret` when [`Config::client_secret`] is set) in the form, or with HTTP Basic
//! (RFC 6749 §2.3.1). Each connection carries one request; every answer closes it.
//!
//! Tests steer it through the handle: [`OAuthServer::set_authorize`] (consent, denial, a
//! wrong `state`, a page that never redirects), [`OAuthServer::set_fault`] (HTML, garbage, a
//! huge or endless body, silence, a close), [`OAuthServer::set_device_script`] (what the device
//! grant answers poll by poll), and read back what happened: [`OAuthServer::requests`],
//! [`OAuthServer::device_polls`], [`OAuthServer::issued`], [`OAuthServer::refreshes`],
//! [`OAuthServer::revocations`]. [`FakeBrowser`] plays the user's browser through `$BROWSER`.
//!
//! It runs on std threads, so async tests and tests of the `mailcat` binary can both use it;
//! dropping the handle stops accepting connections.

mod browser;
mod endpoints;
mod http;
#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::hmac;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

pub use browser::FakeBrowser;
pub use http::{form, percent_encode, Request};

use endpoints::{Reply, State};
use http::{ReadError, Response};

/// How long a connection may stay idle (a request that does not come, an answer the client
/// does not read) before the server drops it.
const IDLE: Duration = Duration::from_secs(10);

/// How long [`Fault::Silent`] keeps a connection open without answering, at most.
const SILENCE: Duration = Duration::from_secs(300);

/// The size [`Fault::HugeBody`] announces and sends: far more than any token answer.
pub const HUGE_BODY: u64 = 50 * 1024 * 1024;

/// How long [`Fault::EndlessBody`] streams, at most, if the client keeps reading.
const ENDLESS_FOR: Duration = Duration::from_secs(60);

/// The grant type of the device flow (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How the server is set up. Build one with [`Config::standalone`] or [`Config::lab`], then
/// change fields as a test needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The one client the server knows.
    pub client_id: String,
    /// The client's secret; when set, every client authentication must present it.
    pub client_secret: Option<String>,
    /// The user the access tokens are for (the JWT's `sub`).
    pub subject: String,
    /// The HS256 key the access tokens are signed with.
    pub signing_key: Vec<u8>,
    /// The access tokens' lifetime (`expires_in`, and `exp - iat` in the JWT); whole seconds.
    pub access_token_ttl: Duration,
    /// Whether a refresh returns a new refresh token.
    pub refresh_tokens: RefreshTokens,
    /// How long an authorization code may wait before it is exchanged.
    pub code_ttl: Duration,
    /// The polling interval the device endpoint announces; whole seconds (the field is an
    /// integer, RFC 8628 §3.2).
    pub device_interval: Duration,
    /// How much a `slow_down` adds to a device code's interval. RFC 8628 §3.5 says 5 s for the
    /// client; a test may demand less to stay fast. Whole seconds.
    pub slow_down_step: Duration,
    /// How long a device code lives (`expires_in`); whole seconds.
    pub device_code_ttl: Duration,
    /// The certificate the server presents.
    pub tls: Tls,
}

impl Config {
    /// No lab needed: a fresh test CA and leaf for `localhost` and `127.0.0.1`, a random
    /// signing key, `sub` = `user@example.test`, client `mailcat-test-client` without a
    /// secret, 3 s access tokens, a 1 s device interval with 1 s slow-down steps.
    pub fn standalone() -> Self {
        let mut key = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .expect("random signing key");
        Self {
            client_id: "mailcat-test-client".to_owned(),
            client_secret: None,
            subject: "user@example.test".to_owned(),
            signing_key: key,
            access_token_ttl: Duration::from_secs(3),
            refresh_tokens: RefreshTokens::Rotate,
            code_ttl: Duration::from_secs(60),
            device_interval: Duration::from_secs(1),
            slow_down_step: Duration::from_secs(1),
            device_code_ttl: Duration::from_secs(600),
            tls: Tls::Generated,
        }
    }

    /// For the lab (its `MAILCAT_LAB_*` variables must be set; panics with the fix when not):
    /// the lab's server certificate for `localhost` (`$MAILCAT_LAB_DIR/tls`), tokens for
    /// `$MAILCAT_LAB_OAUTH2_USER` signed with `$MAILCAT_LAB_OAUTH2_HS256_KEY`, so Dovecot and
    /// Postfix accept them. Otherwise as [`Config::standalone`].
    pub fn lab() -> Self {
        let dir = PathBuf::from(crate::lab::var("MAILCAT_LAB_DIR"));
        let key = crate::lab::var("MAILCAT_LAB_OAUTH2_HS256_KEY");
        Self {
            subject: crate::lab::var("MAILCAT_LAB_OAUTH2_USER"),
            signing_key: STANDARD
                .decode(key.trim())
                .expect("MAILCAT_LAB_OAUTH2_HS256_KEY is base64"),
            tls: Tls::Files {
                chain: dir.join("tls/server-chain.pem"),
                key: dir.join("tls/server.key"),
                ca_file: PathBuf::from(crate::lab::var("MAILCAT_LAB_CA_FILE")),
            },
            ..Self::standalone()
        }
    }
}

/// The certificate the server presents; its name is `localhost`.
#[derive(Debug, Clone)]
pub enum Tls {
    /// A fresh test CA and a leaf for `localhost` and `127.0.0.1` (rcgen), the CA written to a
    /// temporary file.
    Generated,
    /// PEM files: the chain (leaf first) and its key, and the CA that clients trust.
    Files {
        /// The certificate chain, leaf first.
        chain: PathBuf,
        /// The leaf's private key.
        key: PathBuf,
        /// The CA certificate a client trusts.
        ca_file: PathBuf,
    },
}

/// What a refresh returns besides the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokens {
    /// No `refresh_token` in the answer: the client keeps using the one it has (Google does
    /// this).
    Keep,
    /// A new refresh token; the old one is invalid from then on (rotation, as Microsoft
    /// issues a new one on every refresh).
    Rotate,
}

/// An endpoint, for [`OAuthServer::set_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /authorize`.
    Authorize,
    /// `POST /token`.
    Token,
    /// `POST /devicecode`.
    DeviceCode,
    /// `POST /revoke`.
    Revoke,
}

/// What `/authorize` does with a valid request: the user's decision, or a provider gone wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeBehaviour {
    /// The user consents: `302 redirect_uri?code=…&state=STATE`.
    Consent,
    /// The user declines: `302 redirect_uri?error=access_denied&error_description=…&state=STATE`.
    Deny,
    /// A code, but with a `state` that is not the client's (a forged redirect).
    WrongState,
    /// `200 text/html`: a sign-in page that never redirects.
    HtmlPage,
}

/// A broken answer, instead of the endpoint's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `200 text/html`: a web page where JSON belongs (a captive portal, a wrong URL).
    Html,
    /// `200 application/json` whose body is not JSON.
    InvalidJson,
    /// `500 Internal Server Error`, `text/plain`.
    ServerError,
    /// Bytes that are not HTTP at all, then a close.
    Garbage,
    /// `200 application/json` with `Content-Length` [`HUGE_BODY`], and that many bytes sent
    /// for as long as the client reads.
    HugeBody,
    /// `200 application/json`, chunked, with no end (for up to a minute, while the client
    /// reads).
    EndlessBody,
    /// The request is read, and then nothing: no answer, no close, until the client leaves.
    Silent,
    /// The request is read, and the connection closed (TLS close_notify) with no answer.
    Close,
}

/// What the token endpoint answers to one poll with a device code (RFC 8628 §3.5). A device
/// code answers its script in order, one entry per poll that respected the interval; when the
/// script is used up it answers `authorization_pending` until the code expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAnswer {
    /// `authorization_pending`: the user has not decided yet.
    Pending,
    /// `slow_down`: and the code's interval grows by [`Config::slow_down_step`].
    SlowDown,
    /// The user approved: the tokens. The code is then spent (`invalid_grant`).
    Approve,
    /// `access_denied`, from then on.
    Deny,
    /// `expired_token`, from then on.
    Expire,
}

/// One poll of the token endpoint with a device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePoll {
    /// When the request arrived.
    pub at: Instant,
    /// The device code polled.
    pub device_code: String,
    /// The interval in force when it arrived (before a `slow_down` it provoked).
    pub interval: Duration,
    /// It came sooner than `interval` after the previous poll of the same code; such a poll
    /// is answered `slow_down` and does not advance the script.
    pub early: bool,
    /// The error code answered, or `"success"`.
    pub answer: String,
}

/// Tokens the token endpoint issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// When.
    pub at: Instant,
    /// The grant type that obtained them (`authorization_code`, `refresh_token`, or
    /// [`DEVICE_CODE_GRANT`]).
    pub grant_type: String,
    /// The access token.
    pub access_token: String,
    /// The new refresh token, if one was issued.
    pub refresh_token: Option<String>,
    /// The token was issued already expired (see [`OAuthServer::issue_expired_access_tokens`]).
    pub born_expired: bool,
}

/// A running mock authorization server.
#[derive(Debug)]
pub struct OAuthServer {
    port: u16,
    ca_file: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl OAuthServer {
    /// Starts the server on `127.0.0.1` at a free port. Panics if `config` is unusable (a
    /// lifetime that is not whole seconds, certificate files that do not load).
    pub fn start(config: Config) -> Self {
        for (name, value) in [
            ("access_token_ttl", config.access_token_ttl),
            ("device_interval", config.device_interval),
            ("slow_down_step", config.slow_down_step),
            ("device_code_ttl", config.device_code_ttl),
        ] {
            assert_eq!(
                value.subsec_nanos(),
                0,
                "Config::{name} must be whole seconds: the protocol carries integers"
            );
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let (tls_config, ca_file) = match &config.tls {
            Tls::Generated => {
                let (ca_pem, tls_config) = crate::https_server::test_pki();
                (tls_config, crate::https_server::write_ca(&ca_pem, port))
            }
            Tls::Files {
                chain,
                key,
                ca_file,
            } => (load_tls(chain, key), ca_file.clone()),
        };
        let base_url = format!("https://localhost:{port}");
        let state = Arc::new(Mutex::new(State::new(config, base_url)));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (Arc::clone(&state), Arc::clone(&stop));
        thread::spawn(move || {
            for tcp in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                let tls_config = Arc::clone(&tls_config);
                let state = Arc::clone(&shared);
                thread::spawn(move || {
                    // A client that gives up (a refused certificate, a timeout, a limit)
                    // ends the connection: nothing to report.
                    let _ = serve(tcp, tls_config, &state);
                });
            }
        });
        Self {
            port,
            ca_file,
            state,
            stop,
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://localhost:PORT` (the certificate's name; the server listens on 127.0.0.1).
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The authorization endpoint: `BASE/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base_url())
    }

    /// The token endpoint: `BASE/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The device authorization endpoint: `BASE/devicecode`.
    pub fn device_url(&self) -> String {
        format!("{}/devicecode", self.base_url())
    }

    /// The revocation endpoint: `BASE/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.base_url())
    }

    /// The CA file a client must trust (the account's `ca_file`).
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// The client ID the server knows.
    pub fn client_id(&self) -> String {
        self.state().config.client_id.clone()
    }

    /// A browser for `$BROWSER` that trusts this server's CA (see [`FakeBrowser`]).
    pub fn fake_browser(&self) -> FakeBrowser {
        FakeBrowser::new(&self.ca_file)
    }

    /// What `/authorize` does from now on (default: [`AuthorizeBehaviour::Consent`]).
    pub fn set_authorize(&self, behaviour: AuthorizeBehaviour) {
        self.state().authorize = behaviour;
    }

    /// Makes `endpoint` answer with `fault` from now on, or normally again with `None`.
    pub fn set_fault(&self, endpoint: Endpoint, fault: Option<Fault>) {
        let mut state = self.state();
        match fault {
            Some(fault) => state.faults.insert(endpoint, fault),
            None => state.faults.remove(&endpoint),
        };
    }

    /// The answers of device codes issued from now on (default: `[Pending, Approve]`).
    pub fn set_device_script(&self, script: &[DeviceAnswer]) {
        self.state().device_script = script.to_vec();
    }

    /// The next `count` access tokens are issued already expired while `expires_in` still
    /// claims the full lifetime: the mail server refuses them, as it would a token revoked
    /// early, and the client must refresh once more.
    pub fn issue_expired_access_tokens(&self, count: u32) {
        self.state().born_expired = count;
    }

    /// Revokes every refresh token issued so far, as when the user changes their password or
    /// withdraws consent: the next refresh is `invalid_grant`.
    pub fn revoke_all_refresh_tokens(&self) {
        for grant in self.state().refresh_tokens.values_mut() {
            grant.revoked = true;
        }
    }

    /// An access token for the configured subject and key, valid for `ttl_secs` seconds from
    /// now; negative for one that expired that long ago (issued a minute earlier still, as
    /// Dovecot calls a token issued in the future invalid rather than expired).
    pub fn mint(&self, ttl_secs: i64) -> String {
        let state = self.state();
        mint(&state.config.signing_key, &state.config.subject, ttl_secs)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// The requests received so far for `path` (`/token`, …).
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        let state = self.state();
        state
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Every poll with a device code so far, in order.
    pub fn device_polls(&self) -> Vec<DevicePoll> {
        self.state().polls.clone()
    }

    /// Every issue of tokens so far, in order.
    pub fn issued(&self) -> Vec<Issued> {
        self.state().issued.clone()
    }

    /// How many refresh grants succeeded.
    pub fn refreshes(&self) -> usize {
        self.state()
            .issued
            .iter()
            .filter(|i| i.grant_type == "refresh_token")
            .count()
    }

    /// How many revocation requests the client made with valid client credentials.
    pub fn revocations(&self) -> usize {
        self.state().revocations
    }

    /// Whether `refresh_token` is known and revoked (by `/revoke`, rotation, a reused code,
    /// or [`OAuthServer::revoke_all_refresh_tokens`]).
    pub fn is_revoked(&self, refresh_token: &str) -> bool {
        self.state()
            .refresh_tokens
            .get(refresh_token)
            .is_some_and(|grant| grant.revoked)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let _ = TcpStream::connect_timeout(&address, Duration::from_secs(1));
    }
}

/// An HS256 JWT `{"sub": subject, "iat", "exp", "jti"}` as `tests/lab/mint_token.py` makes it
/// (plus a random `jti`, so that no two tokens are alike even within a second): valid for
/// `ttl_secs` from now, or expired `-ttl_secs` ago (and then issued a minute before that).
pub fn mint(key: &[u8], subject: &str, ttl_secs: i64) -> String {
    let mut id = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .expect("random token ID");
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    )
    .expect("seconds fit in i64");
    let iat = if ttl_secs > 0 {
        now
    } else {
        now + ttl_secs - 60
    };
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "sub": subject,
        "iat": iat,
        "exp": now + ttl_secs,
        "jti": URL_SAFE_NO_PAD.encode(id),
    });
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{head}.{body}");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn load_tls(chain: &std::path::Path, key: &std::path::Path) -> Arc<ServerConfig> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_slice_iter(&read(chain))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("certificates in {}: {e}", chain.display()));
    let key = PrivateKeyDer::from_pem_slice(&read(key))
        .unwrap_or_else(|e| panic!("private key in {}: {e}", key.display()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server configuration");
    Arc::new(config)
}

type TlsStream = StreamOwned<ServerConnection, TcpStream>;

/// One connection: handshake, one request, the endpoint's answer or a fault.
fn serve(
    tcp: TcpStream,
    tls_config: Arc<ServerConfig>,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(IDLE))?;
    tcp.set_write_timeout(Some(IDLE))?;
    let conn = ServerConnection::new(tls_config).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    let reply = match http::read_request(&mut tls) {
        Ok(request) => state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .handle(request),
        Err(ReadError::Io(e)) => return Err(e),
        Err(ReadError::Bad(status, why)) => Reply::Answer(Response {
            status,
            headers: vec![("Content-Type", "text/plain".to_owned())],
            body: format!("{why}\n").into_bytes(),
        }),
    };
    match reply {
        Reply::Answer(response) => {
            tls.write_all(&response.to_bytes())?;
            close(tls)
        }
        Reply::Fault(fault) => play(fault, tls),
    }
}

/// Ends the connection cleanly: close_notify, then FIN.
fn close(mut tls: TlsStream) -> std::io::Result<()> {
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.flush()?;
    tls.sock.shutdown(Shutdown::Write)
}

fn play(fault: Fault, mut tls: TlsStream) -> std::io::Result<()> {
    let simple = |status, content_type: &str, body: &[u8]| Response {
        status,
        headers: vec![("Content-Type", content_type.to_owned())],
        body: body.to_vec(),
    };
    match fault {
        Fault::Html => {
            let page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
                <body><h1>Sign in to continue</h1><form method=post><input name=login></form>\
                </body></html>\n";
            tls.write_all(&simple(200, "text/html;charset=UTF-8", page).to_bytes())?;
            close(tls)
        }
        Fault::InvalidJson => {
            let body = b"{\"access_token\": \"eyJhbGciOi";
            tls.write_all(&simple(200, "application/json", body).to_bytes())?;
            close(tls)
        }
        Fault::ServerError => {
            let body = b"internal server error\n";
            tls.write_all(&simple(500, "text/plain", body).to_bytes())?;
            close(tls)
        }
        Fault::Garbage => {
            let mut garbage = b"\x00\xff\xfeSSH-2.0 \x1b[31m\r\n\x80\x81".to_vec();
            garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
            tls.write_all(&garbage)?;
            close(tls)
        }
        Fault::HugeBody => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \
                 {HUGE_BODY}\r\nConnection: close\r\n\r\n"
            );
            tls.write_all(head.as_bytes())?;
            let start = b"{\"access_token\":\"";
            tls.write_all(start)?;
            let block = vec![b'a'; 64 * 1024];
            let mut left = HUGE_BODY - start.len() as u64;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                tls.write_all(&block[..n])?;
                left -= n as u64;
            }
            close(tls)
        }
        Fault::EndlessBody => {
            tls.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                  Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            )?;
            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
            chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
            chunk.extend_from_slice(b"\r\n");
            let start = Instant::now();
            while start.elapsed() < ENDLESS_FOR {
                tls.write_all(&chunk)?;
            }
            // A client that read a minute of it has no limit: cut it off mid-body.
            tls.sock.shutdown(Shutdown::Both)
        }
        Fault::Silent => {
            tls.sock.set_read_timeout(Some(SILENCE))?;
            let mut sink = [0u8; 4096];
            while tls.read(&mut sink)? > 0 {}
            Ok(())
        }
        Fault::Close => close(tls),
    }
}
