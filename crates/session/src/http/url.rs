//! `https://` URLs, taken apart by hand: all the client needs is a host name, a port and a
//! request target.
//!
//! Hand-written rather than the `url` crate, which brings about twenty crates of IDNA and
//! Unicode tables for host names this client refuses anyway (only ASCII DNS names and IPv4
//! addresses are accepted, as for the mail servers). What is accepted is deliberately narrow;
//! `fuzz/fuzz_targets/http_url.rs` checks that whatever is accepted makes a valid request.

use std::fmt;

use rustls::pki_types::ServerName;

use super::HttpsError;

/// The longest URL accepted, percent-encoded as it is sent: far more than any autoconfig or
/// OAuth2 endpoint needs, and well within what an HTTP request line may hold.
pub(crate) const MAX_URL_LEN: usize = 8 * 1024;

/// An `https://` URL, taken apart: lowercase host, port, and the request target as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// Lowercase DNS name or IPv4 address.
    host: String,
    port: u16,
    /// Path and query, starting with `/`, every byte visible ASCII that may stand in a request
    /// target as it is.
    target: String,
}

impl Url {
    /// Parses `https://host[:port][/path][?query][#fragment]`; the fragment is dropped.
    ///
    /// Anything but `https://` is [`HttpsError::NotHttps`]; a user name or password, an IPv6
    /// literal, a host that is not an ASCII DNS name or IPv4 address, or a port outside 1 to
    /// 65535 is [`HttpsError::BadUrl`]. Bytes that may not stand in a request target (spaces,
    /// control characters, non-ASCII …) are percent-encoded, so nothing in a URL can end the
    /// request line or add a header.
    pub(crate) fn parse(url: &str) -> Result<Self, HttpsError> {
        let bad = |reason: &str| HttpsError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = match url.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
            _ => {
                return Err(HttpsError::NotHttps {
                    url: url.to_owned(),
                })
            }
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("a user name or password in the URL is refused"));
        }
        if authority.starts_with('[') {
            return Err(bad("IPv6 address literals are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, written)) => match written.parse::<u16>() {
                Ok(port) if port != 0 && written.bytes().all(|b| b.is_ascii_digit()) => {
                    (host, port)
                }
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
            None => (authority, 443),
        };
        if host.is_empty() {
            return Err(bad("no host name"));
        }
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && host.len() <= 253
            && !host
                .strip_suffix('.')
                .unwrap_or(host)
                .split('.')
                .any(|label| label.is_empty() || label.len() > 63);
        if !valid {
            return Err(bad(
                "the host is not a DNS name or IPv4 address (ASCII letters, digits, '-', '.')",
            ));
        }
        // What TLS will be asked to verify: no label may start or end with '-', nor may the
        // name be all digits without being an IPv4 address.
        if ServerName::try_from(host).is_err() {
            return Err(bad("the host is not a valid DNS name or IPv4 address"));
        }
        let parsed = Self {
            host: host.to_ascii_lowercase(),
            port,
            target: request_target(target),
        };
        // Measured as sent, percent-encoding included, so that a URL accepted once is accepted
        // again when read back.
        if parsed.to_string().len() > MAX_URL_LEN {
            return Err(bad(&format!(
                "longer than {MAX_URL_LEN} bytes (percent-encoded)"
            )));
        }
        Ok(parsed)
    }

    /// The host: a lowercase DNS name or an IPv4 address.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The port (443 unless the URL says otherwise).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Path and query as sent in the request line: starts with `/`, visible ASCII only.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// `host` or `host:port`, as the `Host` header carries it.
    pub(crate) fn authority(&self) -> String {
        if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL without its query: what traces show, since a query may carry what is nobody
    /// else's business.
    pub(crate) fn without_query(&self) -> String {
        let path = self.target.split('?').next().unwrap_or("/");
        format!("https://{}{}", self.authority(), path)
    }

    /// The URL that `location` (absolute, scheme-relative, absolute-path or relative) names
    /// when read on this URL's page, as a redirect's `Location` is read. Anything that is not
    /// `https://` is [`HttpsError::RedirectNotHttps`].
    pub(crate) fn join(&self, location: &str) -> Result<Self, HttpsError> {
        let location = location.trim();
        let scheme_end = location.find(':');
        let path_start = location.find(['/', '?', '#']);
        let has_scheme = match (scheme_end, path_start) {
            (Some(colon), Some(slash)) => colon < slash,
            (Some(_), None) => true,
            _ => false,
        } && location.split(':').next().is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        });
        let absolute = if has_scheme {
            location.to_owned()
        } else if location.starts_with("//") {
            format!("https:{location}")
        } else {
            let target = if location.starts_with('/') {
                location.to_owned()
            } else if location.starts_with('?') || location.starts_with('#') {
                let path = self.target.split('?').next().unwrap_or("/");
                format!("{path}{location}")
            } else {
                let path = self.target.split('?').next().unwrap_or("/");
                let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
                format!("{dir}{location}")
            };
            format!("https://{}{}", self.authority(), target)
        };
        Self::parse(&absolute).map_err(|e| match e {
            HttpsError::NotHttps { .. } => HttpsError::RedirectNotHttps {
                url: self.to_string(),
                location: location.to_owned(),
            },
            other => other,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.authority(), self.target)
    }
}

/// Path and query as sent: `/` when empty, and percent-encoded: every byte outside visible
/// ASCII, and the visible ones that the WHATWG URL standard encodes in a path or query and
/// that the `http` crate refuses in a request target (`"`, `<`, `>`, `` ` ``, `{`, `}`).
fn request_target(target: &str) -> String {
    let mut out = String::with_capacity(target.len() + 1);
    if !target.starts_with('/') {
        out.push('/');
    }
    out.push_str(&percent_encode(target, |b| {
        (0x21..=0x7e).contains(&b) && !b"\"<>`{}".contains(&b)
    }));
    out
}

/// `text` with every byte `keep` refuses percent-encoded (`%2B`).
pub(crate) fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect(s)
    }

    #[test]
    fn urls_are_taken_apart() {
        assert_eq!(
            url("https://Autoconfig.Example.COM/mail/config-v1.1.xml?emailaddress=a@b.example#x"),
            Url {
                host: "autoconfig.example.com".into(),
                port: 443,
                target: "/mail/config-v1.1.xml?emailaddress=a@b.example".into(),
            }
        );
        assert_eq!(url("HTTPS://127.0.0.1:8443").target(), "/");
        assert_eq!(url("https://127.0.0.1:8443").port(), 8443);
        assert_eq!(url("https://h.example?q=1").target(), "/?q=1");
        assert_eq!(
            url("https://h.example/a b\r\nX: y").target(),
            "/a%20b%0D%0AX:%20y"
        );
        assert_eq!(
            url("https://h.example/{\"a\"}?<b>`").target(),
            "/%7B%22a%22%7D?%3Cb%3E%60"
        );
        assert_eq!(url("https://h.example/é").target(), "/%C3%A9");
        assert_eq!(
            url("https://h.example:444/x").to_string(),
            "https://h.example:444/x"
        );
        assert_eq!(url("https://h.example:444/x").authority(), "h.example:444");
        assert_eq!(url("https://h.example:443/x").authority(), "h.example");
        assert_eq!(
            url("https://h.example/token?code=secret").without_query(),
            "https://h.example/token"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "http://h.example/",
            "ftp://h.example",
            "h.example/x",
            "",
            "https:/x",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(HttpsError::NotHttps { .. })),
                "{bad}"
            );
        }
        let long = format!("https://h.example/{}", "a".repeat(MAX_URL_LEN));
        // Short enough as written, too long once encoded.
        let encoded_long = format!("https://h.example/{}", "<".repeat(MAX_URL_LEN / 2));
        for bad in [
            "https://user:pw@h.example/",
            "https://h.example@evil.example/",
            "https:///path",
            "https://h.example:0/",
            "https://h.example:65536/",
            "https://h.example:/",
            "https://h.example:+44/",
            "https://[::1]/",
            "https://h_x.example/",
            "https://h..example/",
            "https://h.example\r\nX: y/",
            "https://-h.example/",
            "https://h-.example/",
            &long,
            &encoded_long,
        ] {
            assert!(
                matches!(Url::parse(bad), Err(HttpsError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn locations_resolve_against_the_page() {
        let page = url("https://h.example:8443/dir/page.xml?x=1");
        let join = |l: &str| page.join(l).map(|u| u.to_string());
        assert_eq!(join("/other").unwrap(), "https://h.example:8443/other");
        assert_eq!(
            join("next.xml").unwrap(),
            "https://h.example:8443/dir/next.xml"
        );
        assert_eq!(
            join("?y=2").unwrap(),
            "https://h.example:8443/dir/page.xml?y=2"
        );
        assert_eq!(join("//o.example/p").unwrap(), "https://o.example/p");
        assert_eq!(
            join("https://o.example:1/").unwrap(),
            "https://o.example:1/"
        );
        for refused in [
            "http://o.example/",
            "HTTP://o.example",
            "ftp://o.example",
            "javascript:x",
        ] {
            assert!(
                matches!(page.join(refused), Err(HttpsError::RedirectNotHttps { .. })),
                "{refused}"
            );
        }
    }
}
