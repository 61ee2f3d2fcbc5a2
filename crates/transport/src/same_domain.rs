//! Whether two host names obviously belong to the same owner: the same registrable domain
//! (`imap.example.com` and `mail.example.com` are both in `example.com`; `a.co.uk` and
//! `b.co.uk` are not, `co.uk` being a public suffix anyone can register under).
//!
//! Used for one decision only: whether a certificate issued for other names may be named as the
//! fix. Anyone can get a valid certificate for a host of their own, so only a name in the very
//! domain the user typed is offered; everything else is reported as a possible attack.
//!
//! `public_suffixes.txt` is the Public Suffix List (publicsuffix.org, Debian package
//! `publicsuffix`, 2023-02-09), one rule a line, IDN labels in their `xn--` form, as `tlds.txt`
//! is. Both sections: the ICANN one, and the private one, where anyone can get a name (and a
//! valid certificate) under `github.io` or `blogspot.com`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::OnceLock;

const RULES: &str = include_str!("public_suffixes.txt");

fn rules() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| RULES.lines().collect())
}

/// The registrable domain of `host` (the public suffix and one label more), lower case;
/// `None` for IP addresses, single labels and public suffixes themselves.
pub(crate) fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() || host.is_empty() {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let rules = rules();
    // The number of labels in the public suffix: the prevailing rule (RFC-like algorithm of
    // publicsuffix.org: an exception wins, else the longest match, else the TLD alone).
    let mut suffix_len = 1;
    for start in (0..labels.len()).rev() {
        let candidate = labels[start..].join(".");
        let len = labels.len() - start;
        if rules.contains(format!("!{candidate}").as_str()) {
            suffix_len = len - 1;
            break;
        }
        if rules.contains(candidate.as_str()) {
            suffix_len = len;
        }
        if start + 1 < labels.len() {
            let wildcard = format!("*.{}", labels[start + 1..].join("."));
            if rules.contains(wildcard.as_str()) {
                suffix_len = len;
            }
        }
    }
    (labels.len() > suffix_len).then(|| labels[labels.len() - suffix_len - 1..].join("."))
}

/// The first of `names` (a certificate's names) that is obviously another spelling of `host`:
/// in the same registrable domain. Never for an IP address typed or named, and never a
/// wildcard (`*.example.com` is no name to connect to).
pub(crate) fn respelling(host: &str, names: &[String]) -> Option<String> {
    let domain = registrable_domain(host)?;
    names
        .iter()
        .filter(|name| !name.contains('*'))
        .find(|name| registrable_domain(name).as_ref() == Some(&domain))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        let cases = [
            ("imap.example.com", Some("example.com")),
            ("Mail.Example.COM.", Some("example.com")),
            ("example.com", Some("example.com")),
            ("mail.example.co.uk", Some("example.co.uk")),
            ("co.uk", None),
            ("com", None),
            ("localhost", None),
            ("127.0.0.1", None),
            ("::1", None),
            // Wildcard and exception rules: *.ck, !www.ck.
            ("a.b.ck", Some("a.b.ck")),
            ("mail.www.ck", Some("www.ck")),
            // A TLD the list does not know: the TLD alone is the suffix.
            ("mail.example.internal", Some("example.internal")),
        ];
        for (host, want) in cases {
            assert_eq!(registrable_domain(host).as_deref(), want, "{host}");
        }
    }

    #[test]
    fn only_a_name_in_the_same_domain_is_a_respelling() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            respelling(
                "imap.example.com",
                &names(&["attacker.example.net", "mail.example.com"])
            )
            .as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(respelling("example.com", &names(&["*.example.com"])), None);
        // Another domain, a sibling under a public suffix, an IP address: never.
        for (host, cert) in [
            ("imap.example.com", "other.example.org"),
            ("mail.alice.co.uk", "mail.mallory.co.uk"),
            ("127.0.0.1", "localhost"),
            ("localhost", "127.0.0.1"),
            ("mail.example.com", "example.com.evil.net"),
            // Private suffixes: anyone can have a name under them.
            ("alice.github.io", "mallory.github.io"),
        ] {
            assert_eq!(respelling(host, &names(&[cert])), None, "{host} vs {cert}");
        }
    }
}
