//! A small HTTPS server on loopback for tests of mailcat's HTTPS client (autoconfig files,
//! OAuth2 endpoints): fixed routes, a certificate from a fresh test CA, the requests it
//! received (heads and bodies). It runs on std threads (rustls' blocking [`StreamOwned`]), so
//! async tests and CLI subprocess tests can both use it; its threads end with the test process.
//!
//! Routes can also misbehave on purpose: stall ([`End::Hang`]), send a body without end
//! ([`End::Endless`]), or write bytes that are not HTTP at all ([`Route::raw`]).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How long a connection may stay idle before the server drops it.
const IDLE: Duration = Duration::from_secs(10);

/// The most of a request the server reads.
const MAX_REQUEST: usize = 64 * 1024;

/// How long an [`End::Endless`] body goes on if the client does not leave first.
const ENDLESS: Duration = Duration::from_secs(30);

/// How the server ends an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum End {
    /// TLS close_notify and close, right after the answer.
    #[default]
    Close,
    /// Not another byte after the answer (for a chunked body, not even its last chunk), the
    /// connection kept open until the client leaves: a server that stalls mid-body, or after
    /// announcing a large one.
    Hang,
    /// After the body, more chunks (the route must be chunked), until the client leaves or 30 s
    /// pass: a body without end.
    Endless,
}

/// What the server answers to one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path and query as requested, matched exactly, or by prefix if it ends with `*`.
    pub path: String,
    /// The status code.
    pub status: u16,
    /// Extra headers. `Content-Length` is added unless given here or `chunked`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send the body with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// How the answer ends.
    pub end: End,
    /// Write `body` as the whole answer, as it is (status line and headers included; `status`,
    /// `headers` and `chunked` are not used): answers that are not HTTP.
    pub raw: bool,
}

impl Route {
    /// 200 with `body` as `application/xml`.
    pub fn ok(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.to_owned(),
            status: 200,
            headers: vec![("Content-Type".into(), "application/xml".into())],
            body: body.into(),
            chunked: false,
            end: End::Close,
            raw: false,
        }
    }

    /// `status` with `body` as `application/json`, as OAuth2 endpoints answer.
    pub fn json(path: &str, status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            ..Self::ok(path, body)
        }
    }

    /// `bytes` as the whole answer, written as they are.
    pub fn raw(path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            raw: true,
            headers: Vec::new(),
            ..Self::ok(path, bytes)
        }
    }

    /// A redirect (`status` 301, 302, 303, 307 or 308) to `location`.
    pub fn redirect(path: &str, status: u16, location: &str) -> Self {
        Self {
            path: path.to_owned(),
            status,
            headers: vec![("Location".into(), location.to_owned())],
            body: Vec::new(),
            chunked: false,
            end: End::Close,
            raw: false,
        }
    }

    /// The same route with its body sent chunked.
    #[must_use]
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// The same route with another header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same route ending as `end` says.
    #[must_use]
    pub fn ending(mut self, end: End) -> Self {
        self.end = end;
        self
    }

    fn matches(&self, target: &str) -> bool {
        match self.path.strip_suffix('*') {
            Some(prefix) => target.starts_with(prefix),
            None => target == self.path,
        }
    }
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `GET`, `POST` …
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The headers, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; none without it).
    pub body: Vec<u8>,
}

impl Received {
    /// The value of the first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running test HTTPS server.
#[derive(Debug)]
pub struct HttpsServer {
    port: u16,
    ca_file: PathBuf,
    requests: Arc<Mutex<Vec<Received>>>,
}

impl HttpsServer {
    /// HTTPS on 127.0.0.1:0 with a certificate for `localhost` and `127.0.0.1` from a fresh
    /// test CA (rcgen); unknown paths → 404.
    pub fn start(routes: Vec<Route>) -> Self {
        Self::spawn(Some(Arc::new(routes)))
    }

    /// Accepts TCP and TLS, then never answers (timeout tests).
    pub fn silent() -> Self {
        Self::spawn(None)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA's certificate as a PEM file (under [`std::env::temp_dir`], a unique name).
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// The request lines received so far, as `GET /path HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| format!("{} {} HTTP/1.1", r.method, r.target))
            .collect()
    }

    /// The requests received so far, heads and bodies.
    pub fn received(&self) -> Vec<Received> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn spawn(routes: Option<Arc<Vec<Route>>>) -> Self {
        let (ca_pem, config) = test_pki();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let ca_file = write_ca(&ca_pem, port);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let config = Arc::clone(&config);
                let routes = routes.clone();
                let seen = Arc::clone(&seen);
                thread::spawn(move || {
                    // A client that gives up (a refused certificate, a timeout) ends the
                    // connection: nothing to report.
                    let _ = serve(tcp, config, routes.as_ref().map(|r| r.as_slice()), &seen);
                });
            }
        });
        Self {
            port,
            ca_file,
            requests,
        }
    }
}

/// One connection: handshake, one request, one answer (or, without routes, silence until the
/// client leaves).
fn serve(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    routes: Option<&[Route]>,
    seen: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(IDLE))?;
    tcp.set_write_timeout(Some(IDLE))?;
    let conn = ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    let Some(routes) = routes else {
        // Complete the handshake, then read and never answer, until the client closes.
        let mut sink = [0u8; 4096];
        while tls.read(&mut sink)? > 0 {}
        return Ok(());
    };
    let request = read_request(&mut tls)?;
    let target = request.target.clone();
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
    let not_found = Route {
        status: 404,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        ..Route::ok(&target, "not found\n")
    };
    let route = routes
        .iter()
        .find(|r| r.matches(&target))
        .unwrap_or(&not_found);
    tls.write_all(&response(route))?;
    tls.flush()?;
    match route.end {
        End::Close => {
            tls.conn.send_close_notify();
            tls.flush()?;
            let _ = tls.sock.shutdown(Shutdown::Write);
        }
        End::Hang => {
            // Until the client leaves (or the idle timeout).
            let mut sink = [0u8; 4096];
            while tls.read(&mut sink)? > 0 {}
        }
        End::Endless => {
            let chunk = [b"0123456789abcdef\r\n".as_slice(); 1024].concat();
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            let started = Instant::now();
            // Until a write fails: the client left.
            while started.elapsed() < ENDLESS {
                tls.write_all(&framed)?;
            }
        }
    }
    Ok(())
}

/// Reads a request: its head, up to the blank line, and as much body as its `Content-Length`
/// says (at most [`MAX_REQUEST`] bytes in all).
fn read_request(tls: &mut impl Read) -> std::io::Result<Received> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 || bytes.len() > MAX_REQUEST {
            break bytes.len();
        }
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    let mut body = bytes[head_end..].to_vec();
    while body.len() < length {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Received {
        method,
        target,
        headers,
        body,
    })
}

/// The bytes of `route`'s answer.
fn response(route: &Route) -> Vec<u8> {
    if route.raw {
        return route.body.clone();
    }
    let mut out = format!("HTTP/1.1 {} {}\r\n", route.status, reason(route.status)).into_bytes();
    for (name, value) in &route.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let has_length = route
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
    if route.chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    } else if !has_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", route.body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if route.chunked {
        // Small chunks of varying sizes, so a client meets many chunk boundaries.
        let mut rest = route.body.as_slice();
        let mut size = 1;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
            rest = tail;
            size = size % 97 + 13;
        }
        if route.end == End::Close {
            out.extend_from_slice(b"0\r\n\r\n");
        }
    } else {
        out.extend_from_slice(&route.body);
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

/// A fresh CA's certificate (PEM) and a server configuration with a certificate from it for
/// `localhost` and `127.0.0.1`.
pub(crate) fn test_pki() -> (String, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mailcat HTTPS test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).expect("server certificate");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server configuration");
    (ca_cert.pem(), Arc::new(config))
}

/// Writes the CA certificate to a file of its own under the temporary directory.
pub(crate) fn write_ca(pem: &str, port: u16) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "mailcat-https-test-ca-{}-{}-{}.pem",
        std::process::id(),
        port,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, pem).expect("write the test CA certificate");
    path
}
