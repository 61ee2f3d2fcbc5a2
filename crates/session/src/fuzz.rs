//! Bodies of the fuzz targets for the hand-written parsers of this crate (autoconfig's DNS
//! replies and files, the HTTPS client's URLs), shared by `fuzz/` and the corpus replay test in
//! `tests/`.
//!
//! Each reads what others wrote (a DNS reply, an autoconfig file fetched from a domain that may
//! be hostile, a URL from a configuration file or a redirect), so besides never panicking it
//! must never hand back anything the rest of mailcat would trust wrongly: each body checks what
//! the result promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mailcat_transport::{Protocol, Security};

use crate::autoconfig::dns::{self, DnsError};
use crate::autoconfig::xml;
use crate::http::{self, HttpsError, Url};

/// The address every autoconfig file is read for: `%EMAILDOMAIN%` makes a good host name,
/// `%EMAILADDRESS%` and `%EMAILLOCALPART%` (with `+`) must not get through as one.
pub const FUZZ_EMAIL: &str = "alice+tag@example.com";

/// A DNS reply: the first byte chooses the query (bit 0: SRV for `_imaps._tcp.example.com`, or
/// MX for `example.com`), the rest is the reply, whose own first two bytes are taken as the
/// query's id so that well-formed replies are reachable.
pub fn dns_response(data: &[u8]) {
    let Some((&selector, reply)) = data.split_first() else {
        return;
    };
    let (qtype, name, other_qtype) = if selector & 1 == 0 {
        (dns::TYPE_SRV, "_imaps._tcp.example.com", dns::TYPE_MX)
    } else {
        (dns::TYPE_MX, "example.com", dns::TYPE_SRV)
    };
    let id = match reply {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let Ok(response) = dns::parse_response(reply, id, name, qtype) else {
        return;
    };

    // Accepted: then it is the reply to this query and to no other.
    let other_id = dns::parse_response(reply, id.wrapping_add(1), name, qtype);
    assert!(
        matches!(other_id, Err(DnsError::NotOurReply { .. })),
        "a reply was accepted for another id: {other_id:?}"
    );
    let other_type = dns::parse_response(reply, id, name, other_qtype);
    assert!(
        matches!(other_type, Err(DnsError::NotOurReply { .. })),
        "a reply was accepted for another type: {other_type:?}"
    );

    // Records only of the type asked for, and none from a truncated or failed reply.
    if response.truncated || response.rcode != 0 {
        assert!(response.srv.is_empty() && response.mx.is_empty());
    }
    if qtype == dns::TYPE_SRV {
        assert!(response.mx.is_empty(), "MX records in an SRV reply");
    } else {
        assert!(response.srv.is_empty(), "SRV records in an MX reply");
    }

    // Names as documented: lowercase, no trailing dot, no empty label, anything unusual escaped.
    for srv in &response.srv {
        assert_normalized_name(&srv.target);
    }
    for mx in &response.mx {
        assert_normalized_name(&mx.exchange);
    }

    // Sorted: SRV by priority ascending then weight descending, MX by preference.
    for pair in response.srv.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.priority < b.priority || (a.priority == b.priority && a.weight >= b.weight),
            "SRV records out of order: {a:?} before {b:?}"
        );
    }
    for pair in response.mx.windows(2) {
        assert!(
            pair[0].preference <= pair[1].preference,
            "MX records out of order: {pair:?}"
        );
    }
}

/// A name from a DNS reply: `""` (the root) or lowercase dot-separated labels of host-name
/// bytes, with any other byte written `\DDD`.
fn assert_normalized_name(name: &str) {
    assert!(!name.ends_with('.'), "trailing dot in {name:?}");
    assert!(
        name.bytes().all(|b| b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'-' | b'_' | b'.' | b'\\')),
        "a name that is not lowercase ASCII: {name:?}"
    );
    if !name.is_empty() {
        assert!(
            name.split('.').all(|label| !label.is_empty()),
            "an empty label in {name:?}"
        );
    }
}

/// An autoconfig file read for [`FUZZ_EMAIL`]: every server it yields has TLS, a host name that
/// is non-empty ASCII, a port that is not zero, and the protocol of its direction.
pub fn autoconfig_xml(data: &[u8]) {
    let config = match xml::parse(data, FUZZ_EMAIL) {
        Ok(config) => config,
        Err(error) => {
            // The message is shown to people; building it must not panic either.
            let _ = error.to_string();
            return;
        }
    };
    let incoming = config.incoming.iter().map(|s| (s, true));
    let outgoing = config.outgoing.iter().map(|s| (s, false));
    for (server, is_incoming) in incoming.chain(outgoing) {
        assert_ne!(
            server.security,
            Security::DangerousPlaintext,
            "a server without TLS: {server:?}"
        );
        assert!(
            !server.host.is_empty()
                && server
                    .host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
            "not a host name: {server:?}"
        );
        assert_ne!(server.port, 0, "port 0: {server:?}");
        let expected = if is_incoming {
            matches!(server.protocol, Protocol::Imap | Protocol::Pop3)
        } else {
            server.protocol == Protocol::Smtp
        };
        assert!(expected, "a server in the wrong list: {server:?}");
    }
}

/// An `https://` URL and a redirect's `Location` read on it: the input up to the first newline
/// is the URL, the rest the location (lossy UTF-8, as both arrive as text).
///
/// Only `https://` is ever accepted, and what is accepted makes a valid request: a host TLS can
/// verify, a port that is not zero, a request target hyper sends as it is (nothing that could end
/// the request line or add a header), a `Host` header; and it reads back as itself.
pub fn http_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (first, location) = text.split_once('\n').unwrap_or((&text, ""));
    let url = match Url::parse(first) {
        Ok(url) => url,
        Err(error) => {
            assert!(
                matches!(
                    error,
                    HttpsError::NotHttps { .. } | HttpsError::BadUrl { .. }
                ),
                "{error:?}"
            );
            let _ = error.to_string();
            return;
        }
    };
    assert!(
        first
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")),
        "accepted without https://: {first:?}"
    );
    assert_request_ready(&url);
    match url.join(location) {
        Ok(joined) => assert_request_ready(&joined),
        Err(error) => {
            assert!(
                matches!(
                    error,
                    HttpsError::RedirectNotHttps { .. } | HttpsError::BadUrl { .. }
                ),
                "{error:?}"
            );
            let _ = error.to_string();
        }
    }
}

/// Everything a request to `url` needs is valid, and `url` reads back as itself.
fn assert_request_ready(url: &Url) {
    let host = url.host();
    assert!(
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
        "host {host:?}"
    );
    assert!(
        rustls::pki_types::ServerName::try_from(host).is_ok(),
        "no TLS server name: {host:?}"
    );
    assert_ne!(url.port(), 0);
    let target = url.target();
    assert!(
        target.starts_with('/')
            && target
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'#'),
        "target {target:?}"
    );
    let request = http::build_request(
        hyper::Method::GET,
        url,
        hyper::header::HeaderValue::from_static("*/*"),
        None,
    )
    .expect("a request hyper takes");
    assert_eq!(
        request.uri().path_and_query().map(|p| p.as_str()),
        Some(target),
        "the request target changed"
    );
    let shown = url.to_string();
    assert_eq!(
        Url::parse(&shown).ok().as_ref(),
        Some(url),
        "{shown:?} reads back otherwise"
    );
    assert!(shown.starts_with(&url.without_query()));
}
