//! TLS with rustls: which roots are trusted, the client configuration, and turning a refused
//! handshake into an error a person can act on.
//!
//! Crypto provider: *ring*. It builds with a C compiler alone (aws-lc-rs also needs cmake and
//! more build time) and covers every cipher suite mail servers use with TLS 1.2 and 1.3.
//! TLS 1.2 is the minimum (RFC 8996 retired 1.0 and 1.1; rustls has never had them).
//! Certificates are always verified against the configured host name; there is no switch that
//! turns verification off. The one exception is a certificate the user names exactly (threat model
//! #19): by its SHA-256 fingerprint ([`TlsSettings::pinned`]), or by putting that very
//! certificate in a CA file, as a self-signed server's owner does. Such a certificate is trusted
//! as it is, whatever its issuer, names and dates (as msmtp's `tls_fingerprint` and mbsync's
//! `CertificateFile` do): nobody without its private key can present it.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

use crate::error::{CertificateProblem, Error};
use crate::fingerprint::Fingerprint;

/// Which certificate authorities to trust.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Trust the Mozilla roots compiled into mailcat (webpki-roots). Default: yes.
    pub webpki_roots: bool,
    /// Trust the operating system's roots too. Default: yes.
    pub native_roots: bool,
    /// PEM files of further CAs to trust (a company CA, a test CA). A server certificate in
    /// such a file (a self-signed one, typically) is trusted exactly, as if pinned.
    pub extra_ca_files: Vec<PathBuf>,
    /// Server certificates trusted exactly, by SHA-256 fingerprint, whatever their issuer,
    /// names and dates. For a self-signed server whose fingerprint the user has checked on
    /// the server itself. Default: none.
    pub pinned: Vec<Fingerprint>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            webpki_roots: true,
            native_roots: true,
            extra_ca_files: Vec::new(),
            pinned: Vec::new(),
        }
    }
}

impl TlsSettings {
    /// Trust only the CAs in `path` (no public roots): for test servers with their own CA.
    pub fn only_ca_file(path: impl Into<PathBuf>) -> Self {
        Self {
            webpki_roots: false,
            native_roots: false,
            extra_ca_files: vec![path.into()],
            pinned: Vec::new(),
        }
    }

    /// The rustls client configuration for these settings: built once per process and shared
    /// by every connection made with the same settings (the same roots, the same CA files with
    /// the same contents, the same pins), so its root store, its verifier and its TLS session
    /// cache (session resumption on reconnect) are not rebuilt for every connection.
    ///
    /// A CA file is read again at every call: when its contents change, the next connection
    /// gets a configuration that trusts the new contents.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let mut ca_files = Vec::with_capacity(self.extra_ca_files.len());
        for path in &self.extra_ca_files {
            match read_ca_file(path) {
                Ok(pem) => ca_files.push((path.clone(), pem)),
                Err(unreadable) => {
                    // A bad file before this one is the error, as it always was.
                    self.build(&ca_files)?;
                    return Err(unreadable);
                }
            }
        }
        let key = ConfigKey {
            webpki_roots: self.webpki_roots,
            native_roots: self.native_roots,
            ca_files,
            pinned: self.pinned.clone(),
        };
        let mut cache = CONFIGS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, config)) = cache.iter().find(|(cached, _)| *cached == key) {
            return Ok(config.clone());
        }
        let config = self.build(&key.ca_files)?;
        if cache.len() == MAX_CONFIGS {
            cache.remove(0);
        }
        cache.push((key, config.clone()));
        Ok(config)
    }

    /// Builds a rustls client configuration, with the CA files' contents as read.
    fn build(&self, ca_files: &[(PathBuf, Vec<u8>)]) -> Result<Arc<ClientConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        let mut pinned = self.pinned.clone();
        for (path, pem) in ca_files {
            add_ca_pem(&mut roots, &mut pinned, path, pem)?;
        }
        // The system's roots are read when a certificate first fails without them (see
        // `Verifier::with_native`); with nothing else to try first, now.
        let mut native_later = self.native_roots;
        if native_later && roots.is_empty() {
            roots.add_parsable_certificates(native_roots().iter().cloned());
            native_later = false;
        }
        let verifier = Verifier::new(
            Arc::new(roots),
            native_later,
            pinned,
            self.pinned.clone(),
            provider.clone(),
        )?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::Tls {
                host: String::new(),
                source: e,
            })?
            // `Verifier` runs rustls' own WebPKI verification and adds the diagnosis
            // "self-signed" to a refusal; the only certificates it accepts that WebPKI would
            // refuse are those the user pinned exactly.
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // The default resumption store (in memory, per configuration) stays: shared with the
        // configuration, it lets a reconnection to the same server resume its TLS session.
        Ok(Arc::new(config))
    }
}

/// What makes two [`TlsSettings`] give the same configuration: the CA files by contents.
#[derive(PartialEq, Eq)]
struct ConfigKey {
    webpki_roots: bool,
    native_roots: bool,
    ca_files: Vec<(PathBuf, Vec<u8>)>,
    pinned: Vec<Fingerprint>,
}

/// How many configurations the process keeps (a program uses one or two; past this, the
/// oldest is forgotten, and rebuilt if asked for again).
const MAX_CONFIGS: usize = 16;

/// The configurations built so far, oldest first.
static CONFIGS: Mutex<Vec<(ConfigKey, Arc<ClientConfig>)>> = Mutex::new(Vec::new());

/// The operating system's trusted roots, loaded once per process: reading and parsing the
/// system store is the most expensive part of building a configuration. Unreadable system
/// certificates are skipped: the other roots still apply.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static NATIVE: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    NATIVE.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The contents of the CA file at `path`.
fn read_ca_file(path: &Path) -> Result<Vec<u8>, Error> {
    let fail = |reason: String| Error::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let io = |e| rustls::pki_types::pem::Error::Io(e).to_string();
    let mut file = std::fs::File::open(path).map_err(|e| fail(io(e)))?;
    let mut pem = Vec::new();
    file.read_to_end(&mut pem)
        .map_err(|e| fail(format!("not a PEM certificate file: {}", io(e))))?;
    Ok(pem)
}

/// Adds the certificates in `pem`, the contents of the CA file at `path`, to `roots`, and pins
/// each exactly: a self-signed server certificate made with `openssl req -x509` is marked as a
/// CA, which WebPKI refuses to accept as a server's own certificate even when it is a trust
/// anchor.
fn add_ca_pem(
    roots: &mut RootCertStore,
    pinned: &mut Vec<Fingerprint>,
    path: &Path,
    pem: &[u8],
) -> Result<(), Error> {
    let fail = |reason: String| Error::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| fail(format!("not a PEM certificate file: {e}")))?;
        pinned.push(Fingerprint::of(&cert));
        roots
            .add(cert)
            .map_err(|e| fail(format!("a certificate in it is not usable as a CA: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(fail(
            "it holds no certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(())
}

/// Why a certificate was refused, when the refusal is about whom to trust: signed by its own key
/// or by an unknown authority. Carries the certificate's fingerprint, which the user can check
/// on the server and pin.
#[derive(Debug)]
struct Untrusted {
    self_signed: bool,
    fingerprint: Fingerprint,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.self_signed {
            "self-signed certificate"
        } else {
            "certificate from an unknown issuer"
        };
        write!(f, "{what} (SHA-256 {})", self.fingerprint)
    }
}

impl std::error::Error for Untrusted {}

/// Why a certificate was refused when the user pinned one by its fingerprint: it is not that
/// one (and no trusted authority vouches for it).
#[derive(Debug)]
struct PinChanged {
    presented: Fingerprint,
    pinned: Vec<Fingerprint>,
}

impl fmt::Display for PinChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not the pinned certificate (SHA-256 {})", self.presented)
    }
}

impl std::error::Error for PinChanged {}

/// The roots to add the system's to, and the verifier over both once built.
type NativeLater = (
    Arc<RootCertStore>,
    OnceLock<Option<Arc<WebPkiServerVerifier>>>,
);

/// rustls' WebPKI verifier, plus the certificates the user pinned exactly, plus one diagnosis:
/// when the issuer is unknown, is the certificate self-signed? (The answer only changes the
/// error message.)
#[derive(Debug)]
struct Verifier {
    /// None when no authority is trusted at all, only pinned certificates.
    inner: Option<Arc<WebPkiServerVerifier>>,
    /// The roots of `inner` and the operating system's, for a certificate `inner` refuses:
    /// built the first time one is refused (`None` inside: they cannot be built). Reading and
    /// parsing the system's store is most of the TLS cost of a short-lived process (a
    /// `mailcat send`), and a certificate the compiled-in roots or a CA file vouch for never
    /// needs it. What is trusted is the same: the union of both sets.
    with_native: Option<NativeLater>,
    /// Certificates trusted exactly: pinned by the user, or in a CA file.
    pinned: Vec<Fingerprint>,
    /// The ones the user pinned by fingerprint: a refusal then means "not that certificate".
    user_pinned: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn new(
        roots: Arc<RootCertStore>,
        native_later: bool,
        pinned: Vec<Fingerprint>,
        user_pinned: Vec<Fingerprint>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, Error> {
        let inner = if roots.is_empty() && !pinned.is_empty() {
            None
        } else {
            let verifier =
                WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| Error::CaFile {
                        path: "(trusted roots)".into(),
                        reason: e.to_string(),
                    })?;
            Some(verifier)
        };
        Ok(Self {
            inner,
            with_native: native_later.then(|| (roots, OnceLock::new())),
            pinned,
            user_pinned,
            provider,
        })
    }

    /// The verifier over every root, the system's included, built on first use.
    fn with_native(&self) -> Option<&Arc<WebPkiServerVerifier>> {
        let (roots, verifier) = self.with_native.as_ref()?;
        verifier
            .get_or_init(|| {
                let mut all = RootCertStore::clone(roots);
                all.add_parsable_certificates(native_roots().iter().cloned());
                WebPkiServerVerifier::builder_with_provider(Arc::new(all), self.provider.clone())
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// True if `end_entity` names itself as its issuer and verifies with itself as the only
    /// trust anchor (a certificate marked as a CA cannot be verified as a server's: for those,
    /// naming itself is enough).
    fn is_self_signed(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let self_issued = webpki::EndEntityCert::try_from(end_entity)
            .is_ok_and(|cert| cert.subject() == cert.issuer());
        if !self_issued {
            return false;
        }
        let mut roots = RootCertStore::empty();
        if roots.add(end_entity.clone().into_owned()).is_err() {
            return false;
        }
        let Ok(itself) =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
        else {
            return false;
        };
        match itself.verify_server_cert(end_entity, &[], server_name, &[], now) {
            Ok(_) => true,
            Err(rustls::Error::InvalidCertificate(e)) => !matches!(
                e,
                CertificateError::UnknownIssuer | CertificateError::BadSignature
            ),
            Err(_) => false,
        }
    }
}

/// True for the refusals that mean "no trusted authority vouches for this certificate".
fn is_untrusted_issuer(error: &CertificateError) -> bool {
    match error {
        CertificateError::UnknownIssuer => true,
        CertificateError::Other(other) => {
            other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Hashed only when something is pinned: most configurations pin nothing.
        let pinned = (!self.pinned.is_empty())
            .then(|| Fingerprint::of(end_entity))
            .filter(|fingerprint| self.pinned.contains(fingerprint));
        if let Some(fingerprint) = pinned {
            tracing::debug!(
                target: crate::trace::TARGET,
                "certificate SHA-256 {fingerprint} is pinned: trusted as it is, without \
                 checking its issuer, names or dates"
            );
            return Ok(ServerCertVerified::assertion());
        }
        let verify = |verifier: &WebPkiServerVerifier| {
            verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        let mut verified = match &self.inner {
            Some(inner) => verify(inner),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        // Refused without the system's roots: their verdict with them is the one that counts.
        if verified.is_err() {
            if let Some(all) = self.with_native() {
                verified = verify(all);
            }
        }
        match verified {
            // The user named the certificate to trust, and this is another one.
            Err(rustls::Error::InvalidCertificate(_)) if !self.user_pinned.is_empty() => {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(PinChanged {
                        presented: Fingerprint::of(end_entity),
                        pinned: self.user_pinned.clone(),
                    })),
                )))
            }
            Err(rustls::Error::InvalidCertificate(e)) if is_untrusted_issuer(&e) => {
                let self_signed =
                    intermediates.is_empty() && self.is_self_signed(end_entity, server_name, now);
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(Untrusted {
                        self_signed,
                        fingerprint: Fingerprint::of(end_entity),
                    })),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A name from rustls' list of the names a certificate presents, which comes in the `Debug`
/// form of webpki's `GeneralName`: `DnsName("mail.example.com")` → `mail.example.com`,
/// `IpAddress(192.0.2.1)` → `192.0.2.1`. Other kinds of names (directory names, URIs) cannot
/// match a host and are left out; a plain name (should rustls ever give those) is kept.
fn presented_name(presented: &str) -> Option<String> {
    if let Some(name) = presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
    {
        return Some(name.to_owned());
    }
    if let Some(ip) = presented
        .strip_prefix("IpAddress(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        return Some(ip.to_owned());
    }
    (!presented.contains('(')).then(|| presented.to_owned())
}

/// Turns a failed handshake into the most specific error. `first_bytes` is what the server sent
/// first, used to recognise a plaintext greeting where a TLS record was due.
pub(crate) fn classify_handshake_error(
    error: std::io::Error,
    host: &str,
    port: u16,
    protocol: crate::Protocol,
    first_bytes: &[u8],
) -> Error {
    if let Some(greeting) = crate::sniff::plaintext_greeting(first_bytes) {
        // Another protocol's server (imaps:// on the SMTP port): STARTTLS on this port would
        // not help; its protocol and the right port would.
        if let Some(found) = greeting.protocol.filter(|&found| found != protocol) {
            return Error::WrongProtocol {
                host: host.to_owned(),
                port,
                expected: protocol,
                found,
                greeting: greeting.text,
                tls: false,
            };
        }
        return Error::PlaintextServerOnTlsConnection {
            host: host.to_owned(),
            port,
            protocol,
            greeting: greeting.text,
            starttls_url: crate::Endpoint {
                protocol,
                host: host.to_owned(),
                port,
                security: crate::Security::StartTls,
            }
            .url(),
            tls_port: protocol.default_port(crate::Security::ImplicitTls),
        };
    }
    let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        // Closed in the middle of the handshake, with no plaintext greeting: the server's TLS
        // set-up failed on its side.
        if matches!(
            error.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ) {
            return Error::TlsAbortedByServer {
                host: host.to_owned(),
                alert: None,
            };
        }
        return Error::Io {
            host: host.to_owned(),
            step: crate::Step::TlsHandshake,
            source: error,
        };
    };
    let certificate = |problem| Error::Certificate {
        host: host.to_owned(),
        problem,
    };
    match tls {
        rustls::Error::InvalidCertificate(e) => certificate(match e {
            CertificateError::NotValidForNameContext { presented, .. } => {
                let valid_for: Vec<String> =
                    presented.iter().filter_map(|p| presented_name(p)).collect();
                CertificateProblem::NameMismatch {
                    respelling: crate::same_domain::respelling(host, &valid_for),
                    valid_for,
                }
            }
            CertificateError::NotValidForName => CertificateProblem::NameMismatch {
                valid_for: Vec::new(),
                respelling: None,
            },
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertificateProblem::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertificateProblem::NotYetValid
            }
            CertificateError::UnknownIssuer => {
                CertificateProblem::UnknownIssuer { fingerprint: None }
            }
            CertificateError::Other(other) => {
                if let Some(changed) = other.0.downcast_ref::<PinChanged>() {
                    CertificateProblem::PinMismatch {
                        presented: changed.presented,
                        pinned: changed.pinned.clone(),
                    }
                } else {
                    match other.0.downcast_ref::<Untrusted>() {
                        Some(untrusted) if untrusted.self_signed => {
                            CertificateProblem::SelfSigned {
                                fingerprint: untrusted.fingerprint,
                            }
                        }
                        Some(untrusted) => CertificateProblem::UnknownIssuer {
                            fingerprint: Some(untrusted.fingerprint),
                        },
                        None => CertificateProblem::Other(other.to_string()),
                    }
                }
            }
            other => CertificateProblem::Other(other.to_string()),
        }),
        rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13,
        )
        | rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) => {
            Error::TlsVersionTooOld {
                host: host.to_owned(),
            }
        }
        // The server gave up: its own failure, reported by an alert before any certificate
        // check here could refuse anything.
        rustls::Error::AlertReceived(alert) => Error::TlsAbortedByServer {
            host: host.to_owned(),
            alert: Some(alert_name(*alert)),
        },
        other => Error::Tls {
            host: host.to_owned(),
            source: other.clone(),
        },
    }
}

/// An alert as TLS names it: `InternalError` → `internal error`.
fn alert_name(alert: rustls::AlertDescription) -> String {
    let debug = format!("{alert:?}");
    let mut name = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push(' ');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fresh self-signed CA certificate, PEM.
    fn ca_pem(name: &str) -> String {
        ca(name).0.pem()
    }

    /// A fresh self-signed CA certificate, and the issuer to sign others with.
    fn ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert, rcgen::Issuer::new(params, key))
    }

    /// `pem` written to a file of this test's own.
    fn ca_file(test: &str, pem: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("mailcat-tls-{test}-{}.pem", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// A CA and a server certificate it signed for `name`, both DER.
    fn ca_and_leaf(
        ca_name: &str,
        name: &str,
    ) -> (CertificateDer<'static>, CertificateDer<'static>) {
        let (ca, issuer) = ca(ca_name);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (ca.der().clone(), leaf.der().clone())
    }

    #[test]
    fn the_system_roots_are_read_only_for_a_certificate_the_others_refuse() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (ca, leaf) = ca_and_leaf("our CA", "mail.example.test");
        let (_, stranger) = ca_and_leaf("a stranger's CA", "mail.example.test");
        let mut roots = RootCertStore::empty();
        roots.add(ca).unwrap();
        let verifier =
            Verifier::new(Arc::new(roots), true, Vec::new(), Vec::new(), provider).unwrap();
        let name = ServerName::try_from("mail.example.test").unwrap();
        let verify = |cert: &CertificateDer<'_>| {
            verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
        };
        let system_read = |v: &Verifier| v.with_native.as_ref().unwrap().1.get().is_some();

        verify(&leaf).unwrap();
        assert!(
            !system_read(&verifier),
            "a certificate the CA vouches for needs no system root"
        );
        // Refused by the CA: the system's roots are read and asked, and still refuse it.
        let refused = verify(&stranger).unwrap_err();
        assert!(system_read(&verifier), "the system's roots were asked");
        assert!(
            matches!(
                &refused,
                rustls::Error::InvalidCertificate(CertificateError::Other(_))
            ),
            "{refused:?}"
        );
        // Without them configured, nothing is read.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (ca, _) = ca_and_leaf("our CA", "mail.example.test");
        let mut roots = RootCertStore::empty();
        roots.add(ca).unwrap();
        let verifier =
            Verifier::new(Arc::new(roots), false, Vec::new(), Vec::new(), provider).unwrap();
        assert!(verifier.with_native.is_none());
    }

    #[test]
    fn the_same_settings_share_one_configuration_and_others_do_not() {
        let public = TlsSettings::default().client_config().unwrap();
        assert!(Arc::ptr_eq(
            &public,
            &TlsSettings::default().client_config().unwrap()
        ));

        let path = ca_file("share", &ca_pem("share"));
        let private = TlsSettings::only_ca_file(&path).client_config().unwrap();
        assert!(Arc::ptr_eq(
            &private,
            &TlsSettings::only_ca_file(&path).client_config().unwrap()
        ));
        assert!(!Arc::ptr_eq(&public, &private));

        let public_and_private = TlsSettings {
            extra_ca_files: vec![path.clone()],
            ..TlsSettings::default()
        }
        .client_config()
        .unwrap();
        assert!(!Arc::ptr_eq(&public, &public_and_private));
        assert!(!Arc::ptr_eq(&private, &public_and_private));

        let pinned = TlsSettings {
            pinned: vec![Fingerprint::of(b"a certificate")],
            ..TlsSettings::only_ca_file(&path)
        }
        .client_config()
        .unwrap();
        assert!(!Arc::ptr_eq(&private, &pinned));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_ca_file_with_new_contents_gets_a_new_configuration() {
        let path = ca_file("renewed", &ca_pem("old"));
        let old = TlsSettings::only_ca_file(&path).client_config().unwrap();
        std::fs::write(&path, ca_pem("new")).unwrap();
        let new = TlsSettings::only_ca_file(&path).client_config().unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        assert!(Arc::ptr_eq(
            &new,
            &TlsSettings::only_ca_file(&path).client_config().unwrap()
        ));
        std::fs::remove_file(path).unwrap();
    }
}
