//! Where to connect and how to secure it: protocol, host, port and TLS mode, and the URLs
//! people write for them (`imaps://host:993`, `pop3://host` for STLS, `smtp://host:587`).

use std::fmt;

/// The mail protocol spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// IMAP (RFC 3501, RFC 9051).
    Imap,
    /// POP3 (RFC 1939).
    Pop3,
    /// SMTP submission (RFC 6409, RFC 5321).
    Smtp,
}

impl Protocol {
    /// The protocol's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Imap => "IMAP",
            Self::Pop3 => "POP3",
            Self::Smtp => "SMTP",
        }
    }

    /// The standard port for a security mode (RFC 8314: 993, 995, 465; STARTTLS: 143, 110, 587).
    pub fn default_port(self, security: Security) -> u16 {
        match (self, security) {
            (Self::Imap, Security::ImplicitTls) => 993,
            (Self::Imap, _) => 143,
            (Self::Pop3, Security::ImplicitTls) => 995,
            (Self::Pop3, _) => 110,
            (Self::Smtp, Security::ImplicitTls) => 465,
            (Self::Smtp, _) => 587,
        }
    }

    /// The security mode a well-known port implies, if any.
    pub fn security_of_port(self, port: u16) -> Option<Security> {
        [Security::ImplicitTls, Security::StartTls]
            .into_iter()
            .find(|&security| self.default_port(security) == port)
            .or(match (self, port) {
                (Self::Smtp, 25) => Some(Security::StartTls),
                _ => None,
            })
    }

    /// The word that starts TLS on a plaintext connection: `STARTTLS` or, for POP3, `STLS`.
    pub fn starttls_command(self) -> &'static str {
        match self {
            Self::Pop3 => "STLS",
            _ => "STARTTLS",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// TLS from the first byte (RFC 8314): ports 993, 995, 465. Preferred.
    ImplicitTls,
    /// Plaintext, then the STARTTLS / STLS command upgrades to TLS before anything else is sent
    /// (RFC 2595, RFC 3207): ports 143, 110, 587. TLS is required: a server that does not offer
    /// it is refused.
    StartTls,
    /// No TLS at all. Everything, the password included, can be read and changed by anyone on
    /// the path. Only for test servers on loopback; passwords still need a second opt-in.
    DangerousPlaintext,
}

impl Security {
    /// How the mode is described to people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ImplicitTls => "implicit TLS",
            Self::StartTls => "STARTTLS",
            Self::DangerousPlaintext => "plaintext (no TLS)",
        }
    }
}

/// A server to connect to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The protocol.
    pub protocol: Protocol,
    /// Host name or IP address; also the name the certificate must be valid for (and the SNI).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS mode.
    pub security: Security,
}

impl Endpoint {
    /// An endpoint on the protocol's standard port for `security`.
    pub fn new(protocol: Protocol, host: impl Into<String>, security: Security) -> Self {
        Self {
            protocol,
            host: host.into(),
            port: protocol.default_port(security),
            security,
        }
    }

    /// The same endpoint on another port.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Parses a server URL: `imaps://host[:993]`, `imap://host[:143]` (STARTTLS),
    /// `pop3s://host[:995]`, `pop3://host[:110]` (STLS), `smtps://host[:465]`,
    /// `smtp://host[:587]` (STARTTLS). IPv6 addresses go in brackets: `imaps://[::1]:993`.
    /// A path, user or query is refused rather than silently ignored.
    pub fn parse_url(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::MissingScheme)?;
        let (protocol, security) = match scheme.to_ascii_lowercase().as_str() {
            "imaps" => (Protocol::Imap, Security::ImplicitTls),
            "imap" => (Protocol::Imap, Security::StartTls),
            "pop3s" | "pops" => (Protocol::Pop3, Security::ImplicitTls),
            "pop3" | "pop" => (Protocol::Pop3, Security::StartTls),
            "smtps" | "submissions" => (Protocol::Smtp, Security::ImplicitTls),
            "smtp" | "submission" => (Protocol::Smtp, Security::StartTls),
            _ => return Err(UrlError::UnknownScheme(scheme.to_owned())),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(UrlError::Unsupported);
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| UrlError::BadPort(p.to_owned()))?,
            None => protocol.default_port(security),
        };
        Ok(Self {
            protocol,
            host: host.to_owned(),
            port,
            security,
        })
    }

    /// The URL form of this endpoint (plaintext endpoints have none and print as `imap+plain://`).
    pub fn url(&self) -> String {
        let scheme = match (self.protocol, self.security) {
            (Protocol::Imap, Security::ImplicitTls) => "imaps",
            (Protocol::Imap, Security::StartTls) => "imap",
            (Protocol::Imap, Security::DangerousPlaintext) => "imap+plain",
            (Protocol::Pop3, Security::ImplicitTls) => "pop3s",
            (Protocol::Pop3, Security::StartTls) => "pop3",
            (Protocol::Pop3, Security::DangerousPlaintext) => "pop3+plain",
            (Protocol::Smtp, Security::ImplicitTls) => "smtps",
            (Protocol::Smtp, Security::StartTls) => "smtp",
            (Protocol::Smtp, Security::DangerousPlaintext) => "smtp+plain",
        };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::MissingHost)?;
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or(UrlError::Unsupported),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// Why a server URL was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://`.
    #[error("a server URL starts with a scheme, e.g. imaps://imap.example.com or smtp://smtp.example.com:587")]
    MissingScheme,
    /// A scheme other than the six mail schemes.
    #[error("unknown scheme {0:?}: use imaps://, imap:// (STARTTLS), pop3s://, pop3:// (STLS), smtps:// or smtp:// (STARTTLS)")]
    UnknownScheme(String),
    /// No host name.
    #[error("the URL has no host name")]
    MissingHost,
    /// A port that is not a number from 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// A user, path, query or fragment. (The application says where the user goes instead:
    /// the library names none of its options.)
    #[error("only scheme://host[:port] is supported; give the user separately, not in the URL")]
    Unsupported,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_ports_and_modes() {
        let cases = [
            (
                "imaps://outlook.office365.com",
                Protocol::Imap,
                993,
                Security::ImplicitTls,
            ),
            (
                "imap://mail.example.com",
                Protocol::Imap,
                143,
                Security::StartTls,
            ),
            (
                "pop3s://outlook.office365.com:995",
                Protocol::Pop3,
                995,
                Security::ImplicitTls,
            ),
            (
                "pop3://mail.example.com:10110/",
                Protocol::Pop3,
                10110,
                Security::StartTls,
            ),
            (
                "smtp://smtp-mail.outlook.com:587",
                Protocol::Smtp,
                587,
                Security::StartTls,
            ),
            (
                "SMTPS://smtp.example.com",
                Protocol::Smtp,
                465,
                Security::ImplicitTls,
            ),
        ];
        for (url, protocol, port, security) in cases {
            let e = Endpoint::parse_url(url).unwrap();
            assert_eq!(
                (e.protocol, e.port, e.security),
                (protocol, port, security),
                "{url}"
            );
        }
        let v6 = Endpoint::parse_url("imaps://[::1]:20993").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 20993));
        assert_eq!(v6.url(), "imaps://[::1]:20993");
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        assert_eq!(
            Endpoint::parse_url("outlook.office365.com"),
            Err(UrlError::MissingScheme)
        );
        mailcat_tests::assert_matches!(
            Endpoint::parse_url("https://x"),
            Err(UrlError::UnknownScheme(_))
        );
        assert_eq!(
            Endpoint::parse_url("imaps://:993"),
            Err(UrlError::MissingHost)
        );
        assert_eq!(
            Endpoint::parse_url("imaps://h:99999"),
            Err(UrlError::BadPort("99999".into()))
        );
        assert_eq!(
            Endpoint::parse_url("imaps://user@h"),
            Err(UrlError::Unsupported)
        );
        assert!(UrlError::MissingScheme.to_string().contains("imaps://"));
    }

    #[test]
    fn well_known_ports_imply_a_mode() {
        assert_eq!(
            Protocol::Imap.security_of_port(993),
            Some(Security::ImplicitTls)
        );
        assert_eq!(
            Protocol::Pop3.security_of_port(110),
            Some(Security::StartTls)
        );
        assert_eq!(
            Protocol::Smtp.security_of_port(25),
            Some(Security::StartTls)
        );
        assert_eq!(Protocol::Imap.security_of_port(995), None);
    }
}
