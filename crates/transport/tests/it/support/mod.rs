//! Test support: certificates made with rcgen, and a scripted TCP server on 127.0.0.1:0 that
//! accepts one connection and plays a script (send, drip, expect a line, sleep, close, start
//! TLS), recording everything it received.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mailcat_transport::{Endpoint, Error, Protocol, Security, Timeouts, TlsSettings};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long the server waits for any one client action before giving up.
const SERVER_WAIT: Duration = Duration::from_secs(4);

// ---------------------------------------------------------------------------------------------
// Certificates

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 1975 to 4096 (rcgen's default).
    Now,
    /// 2000 to 2001.
    Expired,
    /// 2100 to 2101.
    NotYetValid,
}

/// A test certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub pem: String,
}

impl Ca {
    /// A CA whose subject is `CN=<name>`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn leaf(&self, names: &[&str], validity: Validity) -> Leaf {
        let (params, key) = leaf_params(names, validity);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf::new(&cert, &key)
    }

    /// The CA certificate written to a fresh file under the target's temporary directory.
    pub fn write_pem(&self) -> PathBuf {
        write_pem(&self.pem)
    }

    /// A client configuration that trusts this CA only (through the crate's own verifier).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        TlsSettings::only_ca_file(self.write_pem())
            .client_config()
            .unwrap()
    }
}

/// `pem` written to a fresh file under the target's temporary directory.
pub fn write_pem(pem: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mailcat-test-cert-{}-{}.pem",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, pem).unwrap();
    path
}

fn leaf_params(names: &[&str], validity: Validity) -> (CertificateParams, KeyPair) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "no name".into()),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    match validity {
        Validity::Now => {}
        Validity::Expired => {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        Validity::NotYetValid => {
            params.not_before = rcgen::date_time_ymd(2100, 1, 1);
            params.not_after = rcgen::date_time_ymd(2101, 1, 1);
        }
    }
    (params, KeyPair::generate().unwrap())
}

/// A server certificate and its key.
#[derive(Debug)]
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    /// The certificate, PEM.
    pub pem: String,
    key: Vec<u8>,
}

impl Leaf {
    fn new(cert: &rcgen::Certificate, key: &KeyPair) -> Leaf {
        Leaf {
            cert: cert.der().clone(),
            pem: cert.pem(),
            key: key.serialize_der(),
        }
    }

    /// A leaf signed by its own key (not a CA).
    pub fn self_signed(names: &[&str]) -> Leaf {
        Leaf::self_signed_with(names, Validity::Now, false)
    }

    /// A leaf signed by its own key, valid `validity`; `marked_as_ca` as `openssl req -x509`
    /// marks the certificates it makes (basicConstraints CA:TRUE).
    pub fn self_signed_with(names: &[&str], validity: Validity, marked_as_ca: bool) -> Leaf {
        let (mut params, key) = leaf_params(names, validity);
        if marked_as_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        Leaf::new(&cert, &key)
    }

    /// A rustls server configuration presenting this certificate (TLS 1.2 and 1.3).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
            )
            .unwrap();
        Arc::new(config)
    }
}

/// A CA, and a server configuration with a valid certificate from it for `localhost` and
/// `127.0.0.1`: what most tests need.
pub fn valid_pki() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let ca = Ca::new("mailcat test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], Validity::Now);
    (ca.client_config(), leaf.server_config())
}

// ---------------------------------------------------------------------------------------------
// The scripted server

/// One action of a server script.
#[derive(Clone)]
pub enum Act {
    /// Write these bytes in one write.
    Send(Vec<u8>),
    /// Write these bytes one at a time, pausing between them.
    Drip(Vec<u8>, Duration),
    /// Read one line (up to LF) and require it to equal this text (CRLF not included).
    Expect(String),
    /// Read whatever arrives next (at least one byte), e.g. a ClientHello.
    ReadAny,
    /// Pause.
    Sleep(Duration),
    /// Shut down the write side (TLS close_notify, then FIN); keep recording what arrives.
    Close,
    /// Run the server side of a TLS handshake.
    StartTls(Arc<ServerConfig>),
}

/// Shorthand for [`Act::Send`].
pub fn send(bytes: impl AsRef<[u8]>) -> Act {
    Act::Send(bytes.as_ref().to_vec())
}

/// Shorthand for [`Act::Expect`].
pub fn expect(line: &str) -> Act {
    Act::Expect(line.to_owned())
}

/// What the server received, in order, and how its script ended.
#[derive(Debug, Default)]
pub struct Received {
    /// Every byte read, plaintext and (after a handshake) decrypted alike; the TLS handshake
    /// bytes themselves are not included, but bytes read by [`Act::ReadAny`] are.
    pub bytes: Vec<u8>,
    /// Bytes read before any TLS handshake started.
    pub before_tls: Vec<u8>,
    /// True if a TLS handshake completed.
    pub tls: bool,
    /// The server-side error of a failed handshake.
    pub tls_error: Option<String>,
}

impl Received {
    /// Everything received, lossily as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A running scripted server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: JoinHandle<Received>,
}

impl Server {
    /// Binds 127.0.0.1:0 and plays `script` to the first connection.
    pub async fn start(script: Vec<Act>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let Ok(Ok((tcp, _))) = timeout(SERVER_WAIT, listener.accept()).await else {
                return Received::default();
            };
            play(Box::new(tcp), script).await
        });
        Server { addr, handle }
    }

    /// The endpoint for this server: `host` (which must resolve to 127.0.0.1) and its port.
    pub fn endpoint(&self, protocol: Protocol, security: Security, host: &str) -> Endpoint {
        Endpoint::new(protocol, host, security).with_port(self.addr.port())
    }

    /// Waits for the script to finish (the client must have closed or dropped its side) and
    /// returns what was received. A panic in the script (a line that was not expected) fails
    /// the test here.
    pub async fn received(self) -> Received {
        match self.handle.await {
            Ok(received) => received,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("server task failed: {e}"),
        }
    }
}

async fn play(mut stream: Box<dyn Io>, script: Vec<Act>) -> Received {
    let mut got = Received::default();
    for act in script {
        match act {
            Act::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
                    return got;
                }
            }
            Act::Drip(bytes, pause) => {
                for b in bytes {
                    if stream.write_all(&[b]).await.is_err() || stream.flush().await.is_err() {
                        return got;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
            Act::Expect(want) => {
                let line = read_line(&mut stream, &mut got).await;
                let shown = String::from_utf8_lossy(&line);
                assert_eq!(
                    shown.trim_end_matches(['\r', '\n']),
                    want,
                    "the server expected another line (received so far: {:?})",
                    got.text()
                );
            }
            Act::ReadAny => {
                let mut buf = vec![0; 16 * 1024];
                match timeout(SERVER_WAIT, stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => record(&mut got, &buf[..n]),
                    _ => return got,
                }
            }
            Act::Sleep(pause) => tokio::time::sleep(pause).await,
            Act::Close => {
                let _ = stream.shutdown().await;
            }
            Act::StartTls(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                match timeout(SERVER_WAIT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        got.tls = true;
                        stream = Box::new(tls);
                    }
                    Ok(Err(e)) => {
                        got.tls_error = Some(e.to_string());
                        return got;
                    }
                    Err(_) => {
                        got.tls_error = Some("handshake timed out".into());
                        return got;
                    }
                }
            }
        }
    }
    // Record whatever else the client sends, until it closes.
    let mut buf = vec![0; 16 * 1024];
    while let Ok(Ok(n)) = timeout(SERVER_WAIT, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        record(&mut got, &buf[..n]);
    }
    got
}

fn record(got: &mut Received, bytes: &[u8]) {
    got.bytes.extend_from_slice(bytes);
    if !got.tls && got.tls_error.is_none() {
        got.before_tls.extend_from_slice(bytes);
    }
}

/// Reads one line byte by byte (so nothing after it is consumed before a TLS handshake).
async fn read_line(stream: &mut Box<dyn Io>, got: &mut Received) -> Vec<u8> {
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        match timeout(SERVER_WAIT, stream.read(&mut byte)).await {
            Ok(Ok(1)) => {
                record(got, &byte);
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return line;
                }
            }
            other => panic!(
                "the server waited for a line and got {other:?} (received so far: {:?})",
                got.text()
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client side

/// Small timeouts so that no test can hang: one second for each step, two for a response.
pub fn quick() -> Timeouts {
    let mut t = Timeouts::uniform(Duration::from_secs(1));
    t.response = Duration::from_secs(2);
    t
}

/// A client configuration for tests where TLS is never reached or where the CA does not matter.
pub fn any_client_config() -> Arc<ClientConfig> {
    Ca::new("unused test CA").client_config()
}

/// The error of `result`, or a panic naming what succeeded.
pub fn err<T>(result: Result<T, Error>) -> Error {
    match result {
        Ok(_) => panic!("expected an error, but the operation succeeded"),
        Err(e) => e,
    }
}
