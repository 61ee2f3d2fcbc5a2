//! Test support: certificates made with rcgen, and the scripted server of every test
//! (`mailcat_tests::script`) on 127.0.0.1:0, accepting one connection and playing a script
//! (send, drip, expect a line, sleep, close, start TLS), recording everything it received.
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

// ---------------------------------------------------------------------------------------------
// Certificates

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validity {
    /// From 1975 to 4096 (rcgen's default).
    Now,
    /// 2000 to 2001.
    Expired,
    /// 2100 to 2101.
    NotYetValid,
}

/// A test certificate authority.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub pem: String,
}

impl Ca {
    /// A CA whose subject is `CN=<name>`.
    pub(crate) fn new(name: &str) -> Self {
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
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub(crate) fn leaf(&self, names: &[&str], validity: Validity) -> Leaf {
        let (params, key) = leaf_params(names, validity);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf::new(&cert, &key)
    }

    /// The CA certificate written to a fresh file under the target's temporary directory.
    pub(crate) fn write_pem(&self) -> PathBuf {
        write_pem(&self.pem)
    }

    /// A client configuration that trusts this CA only (through the crate's own verifier).
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        TlsSettings::only_ca_file(self.write_pem())
            .client_config()
            .unwrap()
    }
}

/// `pem` written to a fresh file under the target's temporary directory.
pub(crate) fn write_pem(pem: &str) -> PathBuf {
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
pub(crate) struct Leaf {
    pub cert: CertificateDer<'static>,
    /// The certificate, PEM.
    pub pem: String,
    key: Vec<u8>,
}

impl Leaf {
    fn new(cert: &rcgen::Certificate, key: &KeyPair) -> Self {
        Self {
            cert: cert.der().clone(),
            pem: cert.pem(),
            key: key.serialize_der(),
        }
    }

    /// A leaf signed by its own key (not a CA).
    pub(crate) fn self_signed(names: &[&str]) -> Self {
        Self::self_signed_with(names, Validity::Now, false)
    }

    /// A leaf signed by its own key, valid `validity`; `marked_as_ca` as `openssl req -x509`
    /// marks the certificates it makes (basicConstraints CA:TRUE).
    pub(crate) fn self_signed_with(names: &[&str], validity: Validity, marked_as_ca: bool) -> Self {
        let (mut params, key) = leaf_params(names, validity);
        if marked_as_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        Self::new(&cert, &key)
    }

    /// A rustls server configuration presenting this certificate (TLS 1.2 and 1.3).
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
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
pub(crate) fn valid_pki() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let ca = Ca::new("mailcat test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], Validity::Now);
    (ca.client_config(), leaf.server_config())
}

// ---------------------------------------------------------------------------------------------
// The scripted server: the one harness of every test (mailcat_tests::script), on 127.0.0.1:0

pub(crate) use mailcat_tests::script::{expect, send, Received, Step as Act};

/// A running scripted server.
pub(crate) struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: mailcat_tests::script::Server,
}

impl Server {
    /// Binds 127.0.0.1:0 and plays `script` to the first connection.
    pub(crate) async fn start(script: Vec<Act>) -> Self {
        let inner = mailcat_tests::script::serve_tcp(script).await;
        Self {
            addr: inner.addr.expect("a TCP server"),
            inner,
        }
    }

    /// The endpoint for this server: `host` (which must resolve to 127.0.0.1) and its port.
    pub(crate) fn endpoint(&self, protocol: Protocol, security: Security, host: &str) -> Endpoint {
        Endpoint::new(protocol, host, security).with_port(self.addr.port())
    }

    /// Waits for the script to finish (the client must have closed or dropped its side) and
    /// returns what was received. A line that was not expected fails the test here, with the
    /// transcript so far.
    pub(crate) async fn received(self) -> Received {
        self.inner.finish().await
    }
}

// ---------------------------------------------------------------------------------------------
// The client side

/// Small timeouts so that no test can hang: one second for each step, two for a response.
pub(crate) fn quick() -> Timeouts {
    let mut t = Timeouts::uniform(Duration::from_secs(1));
    t.response = Duration::from_secs(2);
    t
}

/// A client configuration for tests where TLS is never reached or where the CA does not matter.
pub(crate) fn any_client_config() -> Arc<ClientConfig> {
    Ca::new("unused test CA").client_config()
}

/// The error of `result`, or a panic naming what succeeded.
pub(crate) fn err<T>(result: Result<T, Error>) -> Error {
    match result {
        Ok(_) => panic!("expected an error, but the operation succeeded"),
        Err(e) => e,
    }
}
