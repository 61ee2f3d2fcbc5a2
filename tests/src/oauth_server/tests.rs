//! The mock authorization server against a small blocking HTTPS client (and curl, and the
//! lab's Dovecot): every flow, every refusal, every fault.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;

use super::http::{form, parse_form};
use super::*;

/// The most of an answer the test client reads.
const READ_LIMIT: usize = 1024 * 1024;

/// A verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The raw bytes of one exchange, read up to [`READ_LIMIT`] or the end, or the error that
/// ended the read (a timeout).
struct Exchange {
    raw: Vec<u8>,
    error: Option<std::io::Error>,
}

/// A parsed answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The OAuth2 error code of a 400/401 answer.
    fn error(&self) -> String {
        assert!(
            matches!(self.status, 400 | 401),
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self.json()["error"]
            .as_str()
            .expect("an error code")
            .to_owned()
    }

    /// The fields of the `Location` header's query.
    fn redirect(&self) -> (String, Vec<(String, String)>) {
        assert_eq!(
            self.status,
            302,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        let location = self.header("location").expect("Location");
        let (base, query) = location.split_once('?').expect("a query");
        (base.to_owned(), parse_form(query.as_bytes()))
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

struct Client {
    config: Arc<ClientConfig>,
    port: u16,
    timeout: Duration,
}

impl Client {
    fn new(server: &OAuthServer) -> Self {
        Self::trusting(&server.ca_file(), server.port())
    }

    fn trusting(ca_file: &Path, port: u16) -> Self {
        let mut roots = RootCertStore::empty();
        let pem = std::fs::read(ca_file).expect("read the CA");
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.expect("a CA certificate"))
                .expect("add the CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            config: Arc::new(config),
            port,
            timeout: Duration::from_secs(10),
        }
    }

    fn exchange(&self, request: &[u8]) -> Exchange {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        tcp.set_read_timeout(Some(self.timeout)).expect("timeout");
        let name = ServerName::try_from("localhost").expect("a name");
        let conn = ClientConnection::new(Arc::clone(&self.config), name).expect("client");
        let mut tls = StreamOwned::new(conn, tcp);
        tls.write_all(request).expect("send the request");
        tls.flush().expect("flush");
        let mut raw = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let error = loop {
            if raw.len() >= READ_LIMIT {
                break None;
            }
            match tls.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                Err(e) => break Some(e),
            }
        };
        Exchange { raw, error }
    }

    fn call(&self, request: &[u8]) -> Answer {
        let exchange = self.exchange(request);
        if let Some(e) = exchange.error {
            panic!("reading the answer: {e}");
        }
        parse(&exchange.raw)
    }

    fn get(&self, target: &str) -> Answer {
        self.call(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
    }

    fn post_raw(&self, path: &str, extra_headers: &str, body: &str) -> Vec<u8> {
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{extra_headers}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.call(&self.post_raw(path, "", &form(fields)))
    }
}

fn parse(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("a UTF-8 head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

const REDIRECT: &str = "http://127.0.0.1:54321/callback";

fn authorize_query(server: &OAuthServer, state: &str) -> String {
    format!(
        "/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", &server.client_id()),
            ("redirect_uri", REDIRECT),
            ("scope", "imap pop smtp offline_access"),
            ("state", state),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    )
}

/// A code from `/authorize`, with the user consenting.
fn code(server: &OAuthServer, client: &Client) -> String {
    let (base, fields) = client.get(&authorize_query(server, "st-1")).redirect();
    assert_eq!(base, REDIRECT);
    assert_eq!(field(&fields, "state"), Some("st-1"));
    field(&fields, "code").expect("a code").to_owned()
}

fn exchange_code(server: &OAuthServer, client: &Client, code: &str, verifier: &str) -> Answer {
    client.post(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &server.client_id()),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
}

fn refresh(server: &OAuthServer, client: &Client, token: &str) -> Answer {
    client.post(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &server.client_id()),
            ("refresh_token", token),
        ],
    )
}

/// Checks `token`'s signature with `key` and returns its claims.
fn claims(token: &str, key: &[u8]) -> Value {
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let tag = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        signed.as_bytes(),
        &tag,
    )
    .expect("a valid HS256 signature");
    let (head, body) = signed.split_once('.').expect("head and claims");
    let head: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).expect("base64url"))
        .expect("a JSON head");
    assert_eq!(head["alg"], "HS256");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64url")).expect("claims")
}

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("fits")
}

#[test]
fn the_challenge_in_these_tests_is_rfc_7636s_example() {
    // RFC 7636 Appendix B: the verifier and challenge above are the RFC's.
    let digest = ring::digest::digest(&ring::digest::SHA256, VERIFIER.as_bytes());
    assert_eq!(URL_SAFE_NO_PAD.encode(digest), CHALLENGE);
}

#[test]
fn authorization_code_with_pkce_gives_tokens_once() {
    let config = Config::standalone();
    let key = config.signing_key.clone();
    let server = OAuthServer::start(config);
    let client = Client::new(&server);
    let code = code(&server, &client);

    let answer = exchange_code(&server, &client, &code, VERIFIER);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3);
    assert_eq!(tokens["scope"], "imap pop smtp offline_access");
    let access = tokens["access_token"].as_str().expect("an access token");
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let claims = claims(access, &key);
    assert_eq!(claims["sub"], "user@example.test");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64(), Some(iat + 3));
    assert!((iat - now_secs()).abs() <= 1, "{claims}");

    // The code is single-use, and its replay revokes what it obtained (RFC 6749 §4.1.2).
    let again = exchange_code(&server, &client, &code, VERIFIER);
    assert_eq!(again.error(), "invalid_grant");
    assert!(server.is_revoked(refresh_token));
    assert_eq!(
        refresh(&server, &client, refresh_token).error(),
        "invalid_grant"
    );

    let issued = server.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].grant_type, "authorization_code");
    assert_eq!(issued[0].access_token, access);
    let log = server.requests_to("/token");
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].param("code_verifier"), Some(VERIFIER));
}

#[test]
fn a_wrong_verifier_or_redirect_uri_is_invalid_grant() {
    let server = OAuthServer::start(Config::standalone());
    let client = Client::new(&server);

    let wrong = VERIFIER.replace('d', "e");
    let answer = exchange_code(&server, &client, &code(&server, &client), &wrong);
    assert_eq!(answer.error(), "invalid_grant");
    assert!(
        answer.json()["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("PKCE")),
        "{}",
        answer.json()
    );

    // A verifier too short to be one.
    let answer = exchange_code(&server, &client, &code(&server, &client), "short");
    assert_eq!(answer.error(), "invalid_grant");

    let answer = client.post(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &server.client_id()),
            ("code", &code(&server, &client)),
            ("redirect_uri", "http://127.0.0.1:54321/other"),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(answer.error(), "invalid_grant");

    let answer = exchange_code(&server, &client, "no-such-code", VERIFIER);
    assert_eq!(answer.error(), "invalid_grant");
    assert!(server.issued().is_empty());
}

#[test]
fn authorize_refuses_what_a_client_must_not_send() {
    let server = OAuthServer::start(Config::standalone());
    let client = Client::new(&server);
    let good = authorize_query(&server, "st");

    // A wrong client or redirect URI: an error page, no redirect (RFC 6749 §4.1.2.1).
    for (from, to) in [
        ("client_id=mailcat-test-client", "client_id=someone-else"),
        ("127.0.0.1%3A54321", "localhost%3A54321"),
        ("http%3A%2F%2F127.0.0.1", "https%3A%2F%2F127.0.0.1"),
        ("127.0.0.1%3A54321%2Fcallback", "127.0.0.1%3A0%2Fcallback"),
        ("127.0.0.1%3A54321%2Fcallback", "127.0.0.1%3A54321callback"),
    ] {
        assert!(good.contains(from), "{good}");
        let answer = client.get(&good.replace(from, to));
        assert_eq!(answer.status, 400, "{to}");
        assert_eq!(answer.header("location"), None, "{to}");
    }

    // Anything else goes back to the client on the redirect.
    for (from, to, error) in [
        (
            "response_type=code",
            "response_type=token",
            "unsupported_response_type",
        ),
        (
            "code_challenge_method=S256",
            "code_challenge_method=plain",
            "invalid_request",
        ),
        (CHALLENGE, "tooshort", "invalid_request"),
        ("&state=st", "", "invalid_request"),
        ("scope=imap", "nope=imap", "invalid_scope"),
    ] {
        assert!(good.contains(from), "{from}");
        let (base, fields) = client.get(&good.replace(from, to)).redirect();
        assert_eq!(base, REDIRECT);
        assert_eq!(field(&fields, "error"), Some(error), "{to}: {fields:?}");
        assert_eq!(field(&fields, "code"), None);
    }

    // An IPv6 loopback and a redirect URI with a query of its own are fine.
    let v6 = good.replace("127.0.0.1", "%5B%3A%3A1%5D");
    assert_eq!(client.get(&v6).redirect().0, "http://[::1]:54321/callback");
    let with_query = good.replace("callback", "callback%3Fx%3D1");
    let answer = client.get(&with_query);
    let location = answer.header("location").expect("Location");
    assert!(location.starts_with("http://127.0.0.1:54321/callback?x=1&code="));

    let request = &server.requests_to("/authorize")[0];
    assert_eq!(request.param("redirect_uri"), Some(REDIRECT));
    assert_eq!(request.param("scope"), Some("imap pop smtp offline_access"));
}

#[test]
fn authorize_behaviours_deny_forge_the_state_or_never_redirect() {
    let server = OAuthServer::start(Config::standalone());
    let client = Client::new(&server);

    server.set_authorize(AuthorizeBehaviour::Deny);
    let (_, fields) = client.get(&authorize_query(&server, "st-2")).redirect();
    assert_eq!(field(&fields, "error"), Some("access_denied"));
    assert_eq!(field(&fields, "state"), Some("st-2"));
    assert_eq!(field(&fields, "code"), None);

    server.set_authorize(AuthorizeBehaviour::WrongState);
    let (_, fields) = client.get(&authorize_query(&server, "st-3")).redirect();
    assert_ne!(field(&fields, "state"), Some("st-3"));
    assert!(field(&fields, "code").is_some());

    server.set_authorize(AuthorizeBehaviour::HtmlPage);
    let answer = client.get(&authorize_query(&server, "st-4"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("location"), None);
    assert!(answer
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));

    server.set_authorize(AuthorizeBehaviour::Consent);
    code(&server, &client);
}

#[test]
fn refresh_rotates_or_keeps_and_revocation_ends_it() {
    let server = OAuthServer::start(Config::standalone());
    let client = Client::new(&server);
    let tokens = exchange_code(&server, &client, &code(&server, &client), VERIFIER).json();
    let first = tokens["refresh_token"].as_str().expect("refresh token");

    // Rotation: a new refresh token; the old one is spent.
    let answer = refresh(&server, &client, first);
    assert_eq!(answer.status, 200);
    let rotated = answer.json();
    let second = rotated["refresh_token"]
        .as_str()
        .expect("a new refresh token");
    assert_ne!(first, second);
    assert_ne!(rotated["access_token"], tokens["access_token"]);
    assert_eq!(rotated["scope"], "imap pop smtp offline_access");
    assert_eq!(refresh(&server, &client, first).error(), "invalid_grant");

    // A narrower scope is fine, a wider one is not.
    let narrower = client.post(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &server.client_id()),
            ("refresh_token", second),
            ("scope", "imap wider"),
        ],
    );
    assert_eq!(narrower.error(), "invalid_scope");
    assert_eq!(server.refreshes(), 1);

    // Revocation (RFC 7009): 200, and the token no longer refreshes.
    let answer = client.post(
        "/revoke",
        &[
            ("client_id", &server.client_id()),
            ("token", second),
            ("token_type_hint", "refresh_token"),
        ],
    );
    assert_eq!(answer.status, 200);
    assert_eq!(refresh(&server, &client, second).error(), "invalid_grant");
    // An unknown token is revoked just as well (RFC 7009 §2.2).
    let answer = client.post(
        "/revoke",
        &[("client_id", &server.client_id()), ("token", "whatever")],
    );
    assert_eq!(answer.status, 200);
    assert_eq!(server.revocations(), 2);
    // Without client credentials, nothing is revoked.
    let answer = client.post("/revoke", &[("token", "whatever")]);
    assert_eq!(answer.error(), "invalid_client");
    assert_eq!(server.revocations(), 2);

    // Keep: no refresh token in the answer, the old one stays good.
    let mut config = Config::standalone();
    config.refresh_tokens = RefreshTokens::Keep;
    let server = OAuthServer::start(config);
    let client = Client::new(&server);
    let tokens = exchange_code(&server, &client, &code(&server, &client), VERIFIER).json();
    let kept = tokens["refresh_token"].as_str().expect("refresh token");
    for _ in 0..2 {
        let answer = refresh(&server, &client, kept);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json().get("refresh_token"), None);
    }
    assert_eq!(server.refreshes(), 2);
    server.revoke_all_refresh_tokens();
    assert_eq!(refresh(&server, &client, kept).error(), "invalid_grant");
}

#[test]
fn access_tokens_can_be_born_expired_and_minted() {
    let config = Config::standalone();
    let key = config.signing_key.clone();
    let server = OAuthServer::start(config);
    let client = Client::new(&server);
    server.issue_expired_access_tokens(1);
    let tokens = exchange_code(&server, &client, &code(&server, &client), VERIFIER).json();
    assert_eq!(tokens["expires_in"], 3, "the answer claims a valid token");
    let expired = claims(tokens["access_token"].as_str().expect("token"), &key);
    assert!(
        expired["exp"].as_i64().expect("exp") < now_secs(),
        "{expired}"
    );
    assert!(expired["iat"].as_i64() < expired["exp"].as_i64());
    let refreshed = refresh(
        &server,
        &client,
        tokens["refresh_token"].as_str().expect("refresh token"),
    )
    .json();
    let fresh = claims(refreshed["access_token"].as_str().expect("token"), &key);
    assert!(fresh["exp"].as_i64().expect("exp") > now_secs(), "{fresh}");
    let issued = server.issued();
    assert_eq!(
        issued.iter().map(|i| i.born_expired).collect::<Vec<_>>(),
        [true, false]
    );

    let minted = claims(&server.mint(3600), &key);
    assert_eq!(
        minted["exp"].as_i64(),
        minted["iat"].as_i64().map(|i| i + 3600)
    );
    let old = claims(&server.mint(-10), &key);
    assert!(old["exp"].as_i64().expect("exp") < now_secs());
    assert_eq!(old["iat"].as_i64(), old["exp"].as_i64().map(|e| e - 60));
}

#[test]
fn client_authentication_by_secret_in_the_form_or_basic() {
    let mut config = Config::standalone();
    config.client_secret = Some("s3cret/+=".to_owned());
    let server = OAuthServer::start(config);
    let client = Client::new(&server);
    let id = server.client_id();
    let device = |extra: &[(&str, &str)]| {
        let mut fields = vec![("scope", "mail")];
        fields.extend_from_slice(extra);
        client.post("/devicecode", &fields)
    };
    assert_eq!(device(&[("client_id", &id)]).error(), "invalid_client");
    assert_eq!(
        device(&[("client_id", &id), ("client_secret", "wrong")]).error(),
        "invalid_client"
    );
    assert_eq!(
        device(&[("client_id", "other"), ("client_secret", "s3cret/+=")]).error(),
        "invalid_client"
    );
    assert_eq!(
        device(&[("client_id", &id), ("client_secret", "s3cret/+=")]).status,
        200
    );

    // Basic: the form-encoded ID and secret, base64 (RFC 6749 §2.3.1).
    let basic = STANDARD.encode(format!("{id}:{}", percent_encode("s3cret/+=")));
    let authorization = format!("Authorization: Basic {basic}\r\n");
    let answer = parse(
        &client
            .exchange(&client.post_raw("/devicecode", &authorization, "scope=mail"))
            .raw,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let wrong = STANDARD.encode(format!("{id}:wrong"));
    let answer = parse(
        &client
            .exchange(&client.post_raw(
                "/devicecode",
                &format!("Authorization: Basic {wrong}\r\n"),
                "scope=mail",
            ))
            .raw,
    );
    assert_eq!(answer.error(), "invalid_client");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Basic realm=\"mock\"")
    );
    // Both at once is refused.
    let answer = parse(
        &client
            .exchange(&client.post_raw(
                "/devicecode",
                &authorization,
                "scope=mail&client_secret=s3cret%2F%2B%3D",
            ))
            .raw,
    );
    assert_eq!(answer.error(), "invalid_request");

    // Not a form: refused.
    let answer = client.call(
        b"POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 2\r\n\r\n{}",
    );
    assert_eq!(answer.error(), "invalid_request");
    // Wrong methods and paths.
    assert_eq!(client.get("/token").status, 405);
    assert_eq!(client.get("/nowhere").status, 404);
}

/// A device code from `/devicecode`.
fn device_code(server: &OAuthServer, client: &Client) -> (String, Value) {
    let answer = client.post(
        "/devicecode",
        &[
            ("client_id", &server.client_id()),
            ("scope", "mail offline_access"),
        ],
    );
    assert_eq!(answer.status, 200);
    let body = answer.json();
    (
        body["device_code"]
            .as_str()
            .expect("device_code")
            .to_owned(),
        body,
    )
}

fn poll(server: &OAuthServer, client: &Client, device_code: &str) -> Answer {
    client.post(
        "/token",
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", &server.client_id()),
            ("device_code", device_code),
        ],
    )
}

#[test]
fn device_flow_follows_its_script_and_demands_the_interval() {
    let server = OAuthServer::start(Config::standalone());
    let client = Client::new(&server);
    server.set_device_script(&[
        DeviceAnswer::Pending,
        DeviceAnswer::SlowDown,
        DeviceAnswer::Approve,
    ]);
    let (code, body) = device_code(&server, &client);
    assert_eq!(body["interval"], 1);
    assert_eq!(body["expires_in"], 600);
    let user_code = body["user_code"].as_str().expect("user_code");
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(
        body["verification_uri"],
        format!("{}/device", server.base_url())
    );
    assert_eq!(
        body["verification_uri_complete"],
        format!("{}/device?user_code={user_code}", server.base_url())
    );
    assert_eq!(client.get("/device").status, 200);

    let second = Duration::from_secs(1);
    // The first poll may come at once.
    assert_eq!(
        poll(&server, &client, &code).error(),
        "authorization_pending"
    );
    // Too soon: slow_down, and the interval grows by the step (1 s here) to 2 s.
    assert_eq!(poll(&server, &client, &code).error(), "slow_down");
    thread::sleep(2 * second);
    // The script's own slow_down: 3 s now.
    assert_eq!(poll(&server, &client, &code).error(), "slow_down");
    thread::sleep(3 * second);
    let answer = poll(&server, &client, &code);
    assert_eq!(answer.status, 200);
    assert!(answer.json()["refresh_token"].is_string());
    assert_eq!(
        poll(&server, &client, &code).error(),
        "invalid_grant",
        "spent"
    );

    let polls = server.device_polls();
    let seen: Vec<_> = polls
        .iter()
        .map(|p| (p.answer.as_str(), p.early, p.interval.as_secs()))
        .collect();
    assert_eq!(
        seen,
        [
            ("authorization_pending", false, 1),
            ("slow_down", true, 1),
            ("slow_down", false, 2),
            ("success", false, 3),
            ("invalid_grant", true, 3),
        ]
    );
    for pair in polls.windows(2).filter(|pair| !pair[1].early) {
        assert!(pair[1].at - pair[0].at >= pair[1].interval);
    }
    assert!(polls.iter().all(|p| p.device_code == code));
    assert_eq!(server.issued()[0].grant_type, DEVICE_CODE_GRANT);
}

#[test]
fn device_codes_end_denied_or_expired() {
    let mut config = Config::standalone();
    config.device_code_ttl = Duration::from_secs(1);
    let server = OAuthServer::start(config);
    let client = Client::new(&server);
    let wait = || thread::sleep(Duration::from_millis(1100));

    server.set_device_script(&[DeviceAnswer::Deny]);
    let (denied, _) = device_code(&server, &client);
    server.set_device_script(&[DeviceAnswer::Expire]);
    let (expired, _) = device_code(&server, &client);
    server.set_device_script(&[]);
    let (never, body) = device_code(&server, &client);
    assert_eq!(body["expires_in"], 1);

    assert_eq!(poll(&server, &client, &denied).error(), "access_denied");
    assert_eq!(poll(&server, &client, &expired).error(), "expired_token");
    assert_eq!(
        poll(&server, &client, &never).error(),
        "authorization_pending"
    );
    wait();
    // Outcomes stay; the one nobody approved ran out of time.
    assert_eq!(poll(&server, &client, &denied).error(), "access_denied");
    assert_eq!(poll(&server, &client, &expired).error(), "expired_token");
    assert_eq!(poll(&server, &client, &never).error(), "expired_token");
    assert_eq!(poll(&server, &client, "unknown").error(), "invalid_grant");
    assert!(server.issued().is_empty());
}

#[test]
fn faults_replace_the_token_endpoints_answer() {
    let server = OAuthServer::start(Config::standalone());
    let mut client = Client::new(&server);
    let request = client.post_raw("/token", "", "grant_type=refresh_token&client_id=x");

    server.set_fault(Endpoint::Token, Some(Fault::Html));
    let answer = parse(&client.exchange(&request).raw);
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    assert!(answer.body.starts_with(b"<!DOCTYPE html>"));

    server.set_fault(Endpoint::Token, Some(Fault::InvalidJson));
    let answer = parse(&client.exchange(&request).raw);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&answer.body).is_err());

    server.set_fault(Endpoint::Token, Some(Fault::ServerError));
    assert_eq!(parse(&client.exchange(&request).raw).status, 500);

    server.set_fault(Endpoint::Token, Some(Fault::Garbage));
    let exchange = client.exchange(&request);
    assert!(exchange.error.is_none());
    assert!(exchange.raw.len() > 4000 && !exchange.raw.starts_with(b"HTTP/"));

    server.set_fault(Endpoint::Token, Some(Fault::HugeBody));
    let exchange = client.exchange(&request);
    assert!(exchange.raw.len() >= READ_LIMIT, "{}", exchange.raw.len());
    let answer = parse(&exchange.raw);
    assert_eq!(
        answer.header("content-length"),
        Some(HUGE_BODY.to_string().as_str())
    );

    server.set_fault(Endpoint::Token, Some(Fault::EndlessBody));
    let exchange = client.exchange(&request);
    assert!(exchange.raw.len() >= READ_LIMIT, "{}", exchange.raw.len());
    assert_eq!(
        parse(&exchange.raw).header("transfer-encoding"),
        Some("chunked")
    );

    server.set_fault(Endpoint::Token, Some(Fault::Close));
    let exchange = client.exchange(&request);
    assert!(exchange.raw.is_empty() && exchange.error.is_none());

    server.set_fault(Endpoint::Token, Some(Fault::Silent));
    client.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let exchange = client.exchange(&request);
    assert!(exchange.raw.is_empty());
    let error = exchange.error.expect("a timeout");
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Each fault was logged as a request, and the endpoint recovers.
    assert_eq!(server.requests_to("/token").len(), 8);
    server.set_fault(Endpoint::Token, None);
    client.timeout = Duration::from_secs(10);
    assert_eq!(
        parse(&client.exchange(&request).raw).error(),
        "invalid_client"
    );

    // Other endpoints take faults too.
    server.set_fault(Endpoint::DeviceCode, Some(Fault::Html));
    let answer = client.post(
        "/devicecode",
        &[("client_id", &server.client_id()), ("scope", "mail")],
    );
    assert!(answer.body.starts_with(b"<!DOCTYPE html>"));
}

#[test]
fn malformed_requests_get_a_status_not_a_hang() {
    let server = OAuthServer::start(Config::standalone());
    let client = Client::new(&server);
    for (request, status) in [
        (&b"NONSENSE\r\n\r\n"[..], 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (
            b"POST /token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
        ),
        (
            b"POST /token HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
        (b"POST /token HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
    ] {
        let answer = client.call(request);
        assert_eq!(
            answer.status,
            status,
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(client.call(&long).status, 431);
}

/// The client's loopback listener: answers one request with 200 and returns its target.
fn loopback_listener() -> (String, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr().expect("address").port()
    );
    let handle = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("the browser comes");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let request = http::read_request(&mut tcp).expect("a request");
        tcp.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\
              Connection: close\r\n\r\nsigned in\n",
        )
        .expect("answer");
        let query = form(
            &request
                .query
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        format!("{}?{query}", request.path)
    });
    (redirect, handle)
}

/// Plays the user's browser with [`FakeBrowser`]; returns the code the client's loopback
/// listener received.
fn sign_in_with_the_fake_browser(server: &OAuthServer, state: &str) -> (String, String) {
    let (redirect, listener) = loopback_listener();
    let url = format!(
        "{}?{}",
        server.authorize_url(),
        form(&[
            ("response_type", "code"),
            ("client_id", &server.client_id()),
            ("redirect_uri", &redirect),
            ("scope", "mail offline_access"),
            ("state", state),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    );
    let browser = server.fake_browser();
    let status = std::process::Command::new(browser.path())
        .arg(&url)
        .status()
        .expect("run the fake browser");
    let visits = browser.visits();
    assert!(status.success(), "{visits:?}");
    let target = listener.join().expect("the listener");
    let fields = parse_form(target.split_once('?').expect("a query").1.as_bytes());
    assert_eq!(field(&fields, "state"), Some(state));
    assert_eq!(visits.len(), 2, "{visits:?}");
    assert_eq!(visits[0], format!("open {url}"));
    assert!(
        visits[1].starts_with(&format!("done 200 {redirect}?code=")),
        "{visits:?}"
    );
    (field(&fields, "code").expect("a code").to_owned(), redirect)
}

#[test]
fn the_fake_browser_follows_the_redirect_to_the_loopback_listener() {
    let server = OAuthServer::start(Config::standalone());
    let (code, redirect) = sign_in_with_the_fake_browser(&server, "st-browser");
    let answer = Client::new(&server).post(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &server.client_id()),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(answer.status, 200);

    // It fails when the certificate is not from the CA it trusts.
    let stranger = OAuthServer::start(Config::standalone());
    let browser = FakeBrowser::new(&server.ca_file());
    let status = std::process::Command::new(browser.path())
        .arg(stranger.authorize_url())
        .status()
        .expect("run the fake browser");
    assert!(!status.success());
    let visits = browser.visits();
    assert!(
        visits.iter().any(|l| l.starts_with("done 000")),
        "{visits:?}"
    );
}

#[cfg(feature = "lab")]
/// Logs in to the lab's IMAP and POP3 with curl and `token`, by each OAuth2 mechanism;
/// returns curl's exit codes.
fn curl_login(lab: &crate::lab::Lab, token: &str) -> Vec<i32> {
    let user = crate::lab::var("MAILCAT_LAB_OAUTH2_USER");
    let mut codes = Vec::new();
    for url in [
        format!("imaps://{}:{}/", lab.tls_name, lab.imaps_port),
        format!("pop3s://{}:{}/", lab.tls_name, lab.pop3s_port),
    ] {
        for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
            let output = std::process::Command::new("curl")
                .args(["-sS", "--max-time", "10", "--noproxy", "*", "--cacert"])
                .arg(&lab.ca_file)
                .args(["--login-options", &format!("AUTH={mechanism}")])
                .args(["--oauth2-bearer", token, "-u", &user, &url])
                .output()
                .expect("run curl");
            codes.push(output.status.code().unwrap_or(-1));
        }
    }
    codes
}

#[cfg(feature = "lab")]
#[test]
fn the_labs_dovecot_accepts_the_tokens_until_they_expire() {
    let lab = crate::lab::Lab::from_env();
    let config = Config::lab();
    let key = config.signing_key.clone();
    let server = OAuthServer::start(config);
    assert_eq!(server.ca_file(), lab.ca_file);
    let (code, redirect) = sign_in_with_the_fake_browser(&server, "st-lab");
    let client = Client::new(&server);
    let tokens = client
        .post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &server.client_id()),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("code_verifier", VERIFIER),
            ],
        )
        .json();
    let access = tokens["access_token"].as_str().expect("an access token");
    let exp = claims(access, &key)["exp"].as_i64().expect("exp");
    assert_eq!(
        curl_login(&lab, access),
        [0, 0, 0, 0],
        "a fresh token logs in"
    );
    assert!(
        now_secs() < exp,
        "the logins took longer than the token lives"
    );

    // 67: curl's "login denied".
    assert_eq!(curl_login(&lab, &server.mint(-1)), [67, 67, 67, 67]);
    while now_secs() <= exp {
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        curl_login(&lab, access),
        [67, 67, 67, 67],
        "the 3 s token expired"
    );

    let refreshed = refresh(
        &server,
        &client,
        tokens["refresh_token"].as_str().expect("a refresh token"),
    )
    .json();
    let access = refreshed["access_token"].as_str().expect("an access token");
    assert_eq!(
        curl_login(&lab, access),
        [0, 0, 0, 0],
        "the refreshed token logs in"
    );
}
