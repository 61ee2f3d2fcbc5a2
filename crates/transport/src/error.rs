//! The transport's errors: each one says what happened, where, and what to do about it.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mailcat_codec::DecodeError;

use crate::endpoint::Protocol;
use crate::fingerprint::Fingerprint;
use crate::reply::Reply;

/// The step of a connection an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Looking up the host name.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake.
    TlsHandshake,
    /// Waiting for the server's greeting.
    Greeting,
    /// Asking for the server's capabilities.
    Capabilities,
    /// The STARTTLS / STLS command.
    StartTls,
    /// Waiting for a response to a command.
    Response,
    /// Sending a command or data.
    Write,
}

impl Step {
    /// The step as people say it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Resolve => "DNS lookup",
            Self::Connect => "TCP connect",
            Self::TlsHandshake => "TLS handshake",
            Self::Greeting => "server greeting",
            Self::Capabilities => "capability query",
            Self::StartTls => "STARTTLS",
            Self::Response => "server response",
            Self::Write => "sending",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// How little a server sent during the progress window that ended in a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow {
    /// The bytes received during the window.
    pub received: u64,
    /// The time spent waiting for the server during the window.
    pub during: Duration,
    /// The floor in force, in bytes per second.
    pub min_rate: u32,
}

/// What went wrong with a certificate, in the words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The certificate is for other names. Anyone can have a valid certificate for a host of
    /// their own, so these names are never the fix unless one is obviously another spelling of
    /// the host asked for ([`CertificateProblem::NameMismatch::respelling`]).
    NameMismatch {
        /// The names (and IP addresses) it is valid for.
        valid_for: Vec<String>,
        /// One of them that is obviously the same server under another name: in the same
        /// registrable domain as the host asked for, or (set by the session) another name of
        /// the same provider. `None`: possibly an attack.
        respelling: Option<String>,
    },
    /// The certificate is not the one pinned by its fingerprint (and no trusted authority
    /// vouches for it): it changed since it was pinned.
    PinMismatch {
        /// The fingerprint of the certificate the server presented.
        presented: Fingerprint,
        /// The fingerprints pinned.
        pinned: Vec<Fingerprint>,
    },
    /// It expired.
    Expired,
    /// It is not valid yet (or this machine's clock is wrong).
    NotYetValid,
    /// Signed by itself, not by a certificate authority.
    SelfSigned {
        /// Its SHA-256 fingerprint, to compare with the server's and pin.
        fingerprint: Fingerprint,
    },
    /// Signed by an authority this machine does not trust.
    UnknownIssuer {
        /// Its SHA-256 fingerprint, when known.
        fingerprint: Option<Fingerprint>,
    },
    /// Anything else the verifier refused.
    Other(String),
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameMismatch { valid_for, .. } if valid_for.is_empty() => f.write_str(
                "the certificate is not valid for this name (it names no host), so nothing \
                     shows that this is the server asked for",
            ),
            Self::NameMismatch {
                valid_for,
                respelling: Some(name),
            } => write!(
                f,
                "the certificate is not valid for this name; it is valid for: {}. {name} is \
                 the same server under another name, so use that name instead",
                valid_for.join(", ")
            ),
            Self::NameMismatch {
                valid_for,
                respelling: None,
            } => write!(
                f,
                "the certificate is not valid for this name (it was issued for: {}), and \
                 nothing shows that those names belong to the server asked for",
                valid_for.join(", ")
            ),
            Self::PinMismatch { presented, pinned } => write!(
                f,
                "the certificate changed: the server presented SHA-256 {presented}, but the \
                 pinned certificate is SHA-256 {}",
                pinned
                    .iter()
                    .map(Fingerprint::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Self::Expired => f.write_str("the certificate has expired"),
            Self::NotYetValid => {
                f.write_str("the certificate is not valid yet (or this machine's clock is wrong)")
            }
            Self::SelfSigned { fingerprint } => {
                write!(f, "the certificate is self-signed (SHA-256 {fingerprint})")
            }
            Self::UnknownIssuer { fingerprint } => {
                f.write_str(
                    "the certificate is signed by an authority this machine does not trust",
                )?;
                match fingerprint {
                    Some(fingerprint) => write!(f, " (SHA-256 {fingerprint})"),
                    None => Ok(()),
                }
            }
            Self::Other(why) => write!(f, "the certificate was refused: {why}"),
        }
    }
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host name does not exist.
    #[error("the host name {host} was not found in DNS{}", typo_suffix(host, hint))]
    HostNotFound {
        /// The name looked up.
        host: String,
        /// A likely correction (`pop3.live.vom` → `pop3.live.com`), if one is obvious.
        hint: Option<String>,
    },
    /// DNS could not answer (no network, resolver down).
    #[error("could not look up {host}: {source}; check the network connection and DNS settings")]
    Resolve {
        /// The name looked up.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Every address refused the connection: nothing listens on that port.
    #[error("{host} refused the connection on port {port} ({addr}): nothing listens there; check the port (IMAP 993, POP3 995, SMTP 587 or 465)")]
    ConnectionRefused {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The last address tried.
        addr: SocketAddr,
    },
    /// The connection failed otherwise (network unreachable, reset).
    #[error("could not connect to {host} port {port}: {source}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The operating system's error.
        source: io::Error,
    },
    /// A step took longer than its limit, or the server sent too little for too long.
    #[error(
        "{host} port {port}: timed out{} during the {step}{}{}",
        after_suffix(after, too_slow),
        too_slow_suffix(too_slow),
        hint_suffix(hint)
    )]
    Timeout {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The step that took too long.
        step: Step,
        /// The limit that was hit: the silence limit, or the length of the progress window.
        after: Duration,
        /// What probably causes it, when the step says (a TLS port spoken to in plaintext...).
        hint: Option<String>,
        /// Set when the server was not silent but sent less than the throughput floor
        /// ([`crate::Timeouts::min_rate`]) during a whole progress window (threat model #37).
        too_slow: Option<TooSlow>,
    },
    /// Implicit TLS was configured, but the server greeted in plaintext.
    #[error("{host} port {port} speaks plaintext {protocol} (it sent {greeting:?}) where TLS was expected: use STARTTLS on this port ({starttls_url}) or the TLS port {tls_port}")]
    PlaintextServerOnTlsConnection {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The protocol whose greeting was recognised.
        protocol: Protocol,
        /// The start of what the server sent, escaped.
        greeting: String,
        /// The URL for STARTTLS on this port.
        starttls_url: String,
        /// The protocol's implicit-TLS port.
        tls_port: u16,
    },
    /// The server at this port speaks another mail protocol (the IMAP port in a POP3 URL ...).
    #[error("{host} port {port} is {found}, not {expected} (it sent {greeting:?}): use the {expected} server's port ({}), or {} URL for this one", expected.default_port(crate::Security::ImplicitTls), with_article(scheme_of(*found, *tls)))]
    WrongProtocol {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The protocol the URL asked for.
        expected: Protocol,
        /// The protocol whose greeting arrived.
        found: Protocol,
        /// The greeting's first line, escaped.
        greeting: String,
        /// Whether the greeting came over TLS (the port is then `found`'s implicit-TLS one,
        /// else its STARTTLS one).
        tls: bool,
    },
    /// Plaintext (or STARTTLS) was configured, but the server speaks TLS from the first byte.
    #[error("{host} port {port} expects TLS from the first byte: use implicit TLS ({tls_url})")]
    TlsServerOnPlaintextConnection {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The URL for implicit TLS on this port.
        tls_url: String,
    },
    /// The server's certificate was refused.
    #[error("{host}: {problem}{}", certificate_fix(problem))]
    Certificate {
        /// The host name it was checked against.
        host: String,
        /// What is wrong with it.
        problem: CertificateProblem,
    },
    /// The server offers only TLS versions older than 1.2.
    #[error("{host} offers only TLS 1.1 or older, which is no longer safe; mailcat requires TLS 1.2 or newer. Ask the provider to upgrade the server")]
    TlsVersionTooOld {
        /// The host.
        host: String,
    },
    /// The server gave up the TLS handshake: it sent an alert (`internal_error`,
    /// `handshake_failure` ...) or closed the connection. The fault is on the server's side (its
    /// TLS set-up: OpenSMTPD under OpenSSL 3 does this), not in the client's settings or the
    /// certificate check, which never ran.
    #[error("{host} aborted the TLS handshake ({}): the failure is on the server's side (its TLS set-up), not in the certificate check or mailcat's settings; tell the server's administrator", alert.as_deref().map(|a| format!("alert: {a}")).unwrap_or_else(|| "it closed the connection".to_owned()))]
    TlsAbortedByServer {
        /// The host.
        host: String,
        /// The alert it sent, if any.
        alert: Option<String>,
    },
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// The host.
        host: String,
        /// The TLS library's error.
        source: rustls::Error,
    },
    /// A CA file given to trust could not be used.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("{host}: connection failed during the {step}: {source}")]
    Io {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// The operating system's error.
        source: io::Error,
    },
    /// The server closed the connection.
    #[error(
        "{host} closed the connection during the {step}{}",
        closed_detail(detail)
    )]
    Closed {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// What was unfinished, if anything.
        detail: Option<DecodeError>,
    },
    /// The server sent bytes that do not follow the protocol.
    #[error("{host} sent an invalid {protocol} response during the {step}: {source}")]
    Protocol {
        /// The host.
        host: String,
        /// The protocol.
        protocol: Protocol,
        /// The step.
        step: Step,
        /// What the decoder found.
        source: DecodeError,
    },
    /// The server refused to talk (a BYE / -ERR / 554 greeting) or refused a command.
    #[error("{host} refused the {step}: {}", reply.with_status())]
    Refused {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// The server's reply: match on [`Reply::smtp_code`], [`Reply::pop3_code`] ...
        reply: Reply,
    },
    /// STARTTLS is required but the server does not offer it (possibly stripped by an attacker).
    #[error("{host} does not offer {command}, so the connection cannot be encrypted; use implicit TLS ({tls_url}) instead")]
    StartTlsNotOffered {
        /// The host.
        host: String,
        /// `STARTTLS` or `STLS`.
        command: &'static str,
        /// The URL for implicit TLS.
        tls_url: String,
    },
    /// A POP3 or SMTP server sent more than the one reply the client asked for (a second
    /// greeting line, a reply before the command was sent ...). These protocols answer one
    /// command at a time, so every later reply would be taken for the answer to the wrong
    /// command (threat model #52): a confused server, or replies injected by someone on the path.
    #[error("{host} sent {buffered} unrequested bytes after the {step}: {protocol} answers one command at a time, so they would be taken for the reply to the next command (a broken server, or replies injected on the way); connection closed")]
    OutOfStep {
        /// The host.
        host: String,
        /// The protocol.
        protocol: Protocol,
        /// The step whose reply was followed by extra bytes.
        step: Step,
        /// How many bytes were waiting.
        buffered: usize,
    },
    /// TLS is required, but the IMAP server greeted with `PREAUTH` in clear text: it declared
    /// the connection logged in without authentication, where no STARTTLS is possible any more
    /// (RFC 3501 §6.2.1; CVE-2020-12398 class). A misconfigured server, or someone on the path
    /// who wants the client to go on unencrypted.
    #[error("{host} greeted with PREAUTH in clear text: it logged this connection in without authentication and before any encryption, so TLS can no longer be started; refused, nothing was sent (a misconfigured server, or an attack by someone on the path). Use implicit TLS ({tls_url}), or ask the server's administrator")]
    PreauthBeforeTls {
        /// The host.
        host: String,
        /// The URL for implicit TLS.
        tls_url: String,
    },
    /// Bytes arrived after the server's STARTTLS go-ahead and before the TLS handshake: someone
    /// on the path is injecting responses (CVE-2021-22947 and friends).
    #[error("{host} sent {buffered} unexpected bytes after the {command} response: possible response injection by an attacker; connection closed")]
    StartTlsInjection {
        /// The host.
        host: String,
        /// `STARTTLS` or `STLS`.
        command: &'static str,
        /// How many bytes were waiting.
        buffered: usize,
    },
}

impl Error {
    /// True when trying again later may work (timeouts, resets, DNS trouble, 421-style closes).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. } | Self::Resolve { .. } | Self::Io { .. } | Self::Closed { .. }
        )
    }

    /// True when the settings are wrong, not the network or the server: the URL's scheme or
    /// port does not match what the server speaks (a STARTTLS URL on an implicit-TLS port, the
    /// IMAP port in a POP3 URL ...), or a CA file cannot be used. Trying again will not help.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::PlaintextServerOnTlsConnection { .. }
                | Self::TlsServerOnPlaintextConnection { .. }
                | Self::WrongProtocol { .. }
                | Self::CaFile { .. }
        )
    }

    /// How the user could trust the certificate refused, if this is a refusal where that is
    /// the user's call (a self-signed certificate or a private CA on their own server).
    pub fn trust_hint(&self) -> Option<TrustHint> {
        match self {
            Self::Certificate { problem, .. } => match problem {
                CertificateProblem::SelfSigned { fingerprint } => {
                    Some(TrustHint::PinCertificate(*fingerprint))
                }
                CertificateProblem::UnknownIssuer { .. } => Some(TrustHint::TrustCa),
                _ => None,
            },
            _ => None,
        }
    }

    /// True for certificate and TLS failures.
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            Self::Certificate { .. }
                | Self::TlsVersionTooOld { .. }
                | Self::Tls { .. }
                | Self::TlsAbortedByServer { .. }
                | Self::PlaintextServerOnTlsConnection { .. }
                | Self::TlsServerOnPlaintextConnection { .. }
                | Self::StartTlsNotOffered { .. }
                | Self::PreauthBeforeTls { .. }
                | Self::StartTlsInjection { .. }
        )
    }

    /// The server's reply, when the error is its refusal ([`Error::Refused`]).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Refused { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// The step the error happened in, where there is one.
    pub fn step(&self) -> Option<Step> {
        match self {
            Self::HostNotFound { .. } | Self::Resolve { .. } => Some(Step::Resolve),
            Self::ConnectionRefused { .. } | Self::Connect { .. } => Some(Step::Connect),
            Self::Timeout { step, .. }
            | Self::Io { step, .. }
            | Self::Closed { step, .. }
            | Self::Protocol { step, .. }
            | Self::OutOfStep { step, .. }
            | Self::Refused { step, .. } => Some(*step),
            Self::Certificate { .. }
            | Self::TlsVersionTooOld { .. }
            | Self::Tls { .. }
            | Self::TlsAbortedByServer { .. } => Some(Step::TlsHandshake),
            Self::PlaintextServerOnTlsConnection { .. } => Some(Step::TlsHandshake),
            Self::TlsServerOnPlaintextConnection { .. }
            | Self::WrongProtocol { .. }
            | Self::PreauthBeforeTls { .. } => Some(Step::Greeting),
            Self::StartTlsNotOffered { .. } | Self::StartTlsInjection { .. } => {
                Some(Step::StartTls)
            }
            Self::CaFile { .. } => None,
        }
    }
}

/// " after 1.0 s" for a silence; nothing when the throughput floor says more.
fn after_suffix(after: &Duration, too_slow: &Option<TooSlow>) -> String {
    match too_slow {
        Some(_) => String::new(),
        None => format!(" after {:.1} s", after.as_secs_f64()),
    }
}

fn too_slow_suffix(too_slow: &Option<TooSlow>) -> String {
    match too_slow {
        Some(slow) => format!(
            ": the server sent only {} bytes in {:.1} s, less than the minimum of {} bytes/s (a stalled link, or a server dripping data to hold the client)",
            slow.received,
            slow.during.as_secs_f64(),
            slow.min_rate
        ),
        None => String::new(),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

/// The scheme of a URL for `protocol`, with implicit TLS or with STARTTLS.
fn scheme_of(protocol: Protocol, tls: bool) -> &'static str {
    match (protocol, tls) {
        (Protocol::Imap, true) => "imaps://",
        (Protocol::Imap, false) => "imap://",
        (Protocol::Pop3, true) => "pop3s://",
        (Protocol::Pop3, false) => "pop3://",
        (Protocol::Smtp, true) => "smtps://",
        (Protocol::Smtp, false) => "smtp://",
    }
}

/// "an imaps://", "a pop3s://", "an smtp://": the article as the scheme is read aloud.
fn with_article(scheme: &str) -> String {
    let article = if scheme.starts_with(['i', 's']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {scheme}")
}

fn typo_suffix(host: &str, hint: &Option<String>) -> String {
    match hint {
        Some(fixed) => {
            let tld = host
                .trim_end_matches('.')
                .rsplit('.')
                .next()
                .unwrap_or_default();
            format!(": .{tld} is not a top-level domain; did you mean {fixed}?")
        }
        None => ": check the spelling of the server name".to_owned(),
    }
}

fn closed_detail(detail: &Option<DecodeError>) -> String {
    match detail {
        Some(DecodeError::Truncated { inside, .. }) => format!(", in the middle of {inside}"),
        Some(other) => format!(" ({other})"),
        None => String::new(),
    }
}

fn certificate_fix(problem: &CertificateProblem) -> &'static str {
    match problem {
        CertificateProblem::NameMismatch {
            respelling: Some(_),
            ..
        } => "",
        CertificateProblem::NameMismatch {
            respelling: None, ..
        } => {
            "; this may be an attack (someone intercepting the connection with a certificate for \
             a host of their own) or a misconfigured server. Do not connect, and do not switch \
             to the certificate's names: ask the provider or the server's administrator for the \
             right host name"
        }
        CertificateProblem::PinMismatch { .. } => {
            "; that happens after a renewal on the server, or when someone is intercepting the \
             connection (an attack). Do not connect until you have checked on the server itself which \
             certificate it now uses (openssl x509 -noout -fingerprint -sha256 -in CERT)"
        }
        CertificateProblem::Expired | CertificateProblem::NotYetValid => {
            "; check this machine's date, or tell the server's administrator"
        }
        CertificateProblem::SelfSigned { .. } => {
            "; if this is your own server, check on it that its certificate has this fingerprint \
             (openssl x509 -noout -fingerprint -sha256 -in CERT), then trust exactly that \
             certificate; otherwise do not connect (this may be an attack)"
        }
        CertificateProblem::UnknownIssuer { .. } => {
            "; if you run this server, trust its CA; otherwise do not connect (this may be an attack)"
        }
        CertificateProblem::Other(_) => "",
    }
}

/// A way to trust a refused certificate, for the application to word in its own terms (the
/// CLI names its options): offered only where the user can check the certificate on a server
/// of their own, never for a certificate that changed or is for other names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustHint {
    /// Trust the private CA that signed the server's certificate.
    TrustCa,
    /// Trust exactly this certificate, after checking its fingerprint on the server.
    PinCertificate(Fingerprint),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheme_gets_the_article_it_is_read_with() {
        let wrong = |found, tls| Error::WrongProtocol {
            host: "mail.example".into(),
            port: 995,
            expected: Protocol::Pop3,
            found,
            greeting: "x".into(),
            tls,
        };
        let imap = wrong(Protocol::Imap, true).to_string();
        assert!(imap.contains("or an imaps:// URL"), "{imap}");
        let smtp = wrong(Protocol::Smtp, false).to_string();
        assert!(smtp.contains("or an smtp:// URL"), "{smtp}");
        // Found in plaintext: its STARTTLS URL, not its implicit-TLS one.
        let plain = wrong(Protocol::Imap, false).to_string();
        assert!(plain.contains("or an imap:// URL"), "{plain}");
        assert_eq!(with_article("pop3s://"), "a pop3s://");
    }
}
