//! Bodies of the fuzz targets for the hand-written parsers of this crate (autoconfig's DNS
//! replies and files, the HTTPS client's URLs), shared by `fuzz/` and the corpus replay test in
//! `tests/`.
//!
//! Each reads what others wrote (a DNS reply, an autoconfig file fetched from a domain that may
//! be hostile, a URL from a configuration file or a redirect), so besides never panicking it
//! must never hand back anything the rest of mailcat would trust wrongly: each body checks what
//! the result promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cores;

pub use cores::{imap_core, opening_core, pop3_core, smtp_core};

use mailcat_transport::{Protocol, Security};

use crate::autoconfig::dns::{self, DnsError};
use crate::autoconfig::{providers, xml};
use crate::http::{self, HttpsError, Response, Url};
use crate::oauth2::fuzzing::{clean, granted, read_device_answer, read_json, Answer};
use crate::oauth2::TokenSet;

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

/// An OAuth2 endpoint's answer (RFC 6749 §5.1, §5.2): the first byte chooses the status and
/// the `Content-Type`, the rest is the body. What is accepted is a usable token (printable
/// ASCII, nothing that breaks a SASL message, a bounded lifetime); a provider's error code and
/// description reach the terminal without control characters; no message quotes the URL's
/// query (it may hold a code). The body read as the token store's file reads back as itself.
pub fn oauth2_response(data: &[u8]) {
    const STATUS: [u16; 8] = [200, 201, 400, 401, 403, 302, 500, 503];
    const TYPES: [Option<&str>; 4] = [
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/html"),
        None,
    ];
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUS[usize::from(selector & 7)];
    let response = Response {
        status,
        reason: String::new(),
        content_type: TYPES[usize::from(selector >> 3 & 3)].map(str::to_owned),
        body: body.to_vec(),
        url: "https://login.example.com/token?code=QUERY-SECRET".into(),
    };
    let no_query = |shown: String| {
        assert!(
            !shown.contains("QUERY-SECRET"),
            "a message quotes the query: {shown}"
        );
    };
    match read_json("token endpoint", &response) {
        Err(error) => no_query(error.to_string()),
        Ok(Answer::Error { code, description }) => {
            for text in std::iter::once(&code).chain(description.as_ref()) {
                assert!(!text.chars().any(char::is_control), "{text:?}");
                assert!(text.chars().count() <= 301, "{text:?}");
                assert_eq!(&clean(text), text);
            }
        }
        Ok(Answer::Ok(map)) => {
            assert!(
                (200..300).contains(&status),
                "status {status} read as an answer"
            );
            // The same object as the device authorization endpoint's answer (RFC 8628 §3.2):
            // what the terminal shows is printable, the page is https://, the times bounded.
            match read_device_answer("device authorization endpoint", &response.url, &map) {
                Err(error) => no_query(error.to_string()),
                Ok(sign_in) => {
                    let code = sign_in.user_code();
                    assert!(!code.is_empty() && code.len() <= 64);
                    assert!(code.bytes().all(|b| (0x20..0x7f).contains(&b)), "{code:?}");
                    for page in std::iter::once(sign_in.verification_uri())
                        .chain(sign_in.verification_uri_complete())
                    {
                        assert!(page.starts_with("https://"), "{page:?}");
                        assert!(page.bytes().all(|b| (0x21..0x7f).contains(&b)), "{page:?}");
                    }
                    assert!(sign_in.expires_in().as_secs() <= 24 * 3600);
                    assert!((1..=60).contains(&sign_in.interval().as_secs()));
                }
            }
            match granted("token endpoint", &response.url, &map) {
                Err(error) => no_query(error.to_string()),
                Ok(granted) => {
                    let token = granted.access_token.as_bytes();
                    assert!(!token.is_empty());
                    assert!(
                        token.iter().all(|b| (0x21..0x7f).contains(b)),
                        "an access token a SASL message cannot carry: {token:?}"
                    );
                    assert!(granted.expires_in.is_none_or(|s| s <= 10 * 365 * 86_400));
                }
            }
        }
    }
    if let Ok(tokens) = TokenSet::from_json(body) {
        let again = TokenSet::from_json(tokens.to_json().as_bytes()).expect("our own file");
        assert_eq!(again, tokens, "the token store's file reads back otherwise");
        let _ = tokens.is_fresh(crate::oauth2::unix_now());
    }
}

/// Names from outside: an address's domain, a name from a DNS reply (an MX exchange, an SRV
/// target), looked up in the provider table, made into DNS queries, host-name guesses and
/// autoconfig URLs. The input is `email` LF `name`.
///
/// A name is checked before it is used, and every check agrees with the next user: a name
/// that validates makes a query; a query is made only of a valid name; an MX name matches a
/// provider only by a whole-label suffix; the autoconfig URLs of a valid domain are `https://`
/// URLs on that domain whose query carries the address percent-encoded, nothing more.
pub fn autoconfig_names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (email, name) = text.split_once('\n').unwrap_or((&text, ""));
    let valid = dns::validate_name(name);
    let query = dns::encode_query(0x1234, name, dns::TYPE_MX);
    assert_eq!(
        valid.is_ok(),
        query.is_ok(),
        "validation and the query disagree on {name:?}"
    );
    if let Ok(query) = &query {
        assert!(query.len() <= 512, "a query of {} bytes", query.len());
        // A well-formed answer to it is accepted with no record; it names the question asked.
        let mut reply = query.clone();
        reply[2] |= 0x80;
        let parsed = dns::parse_response(&reply, 0x1234, name, dns::TYPE_MX);
        assert!(
            parsed.is_ok(),
            "the answer to our own query of {name:?}: {parsed:?}"
        );
    }
    let normal = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(provider) = providers::by_mx(name) {
        assert!(
            provider
                .mx_suffixes
                .iter()
                .any(|s| normal == *s || normal.ends_with(&format!(".{s}"))),
            "{name:?} matched {}",
            provider.name
        );
        for endpoint in provider.incoming().iter().chain(&provider.outgoing()) {
            assert_ne!(endpoint.security, Security::DangerousPlaintext);
        }
    }
    if let Some(provider) = providers::by_domain(name) {
        assert!(provider.domains.contains(&normal.as_str()));
    }
    let _ = providers::by_host(name);
    if valid.is_err() || !name.contains('.') {
        return;
    }
    let domain = normal;
    let (incoming, outgoing) = crate::autoconfig::probe::guesses(&domain);
    for guess in incoming.iter().chain(&outgoing) {
        assert!(guess.host.ends_with(&format!(".{domain}")));
        assert_ne!(guess.security, Security::DangerousPlaintext);
    }
    let urls = crate::autoconfig::fuzz_autoconfig_urls(email, &domain, None);
    let hosts = [format!("autoconfig.{domain}"), domain.clone()];
    for (url, host) in urls.iter().zip(&hosts) {
        // DNS allows names a URL does not (`-x.example`, `_x.example`): the HTTPS client
        // then refuses the URL, and that stage finds nothing.
        let parsed = match Url::parse(url) {
            Ok(parsed) => parsed,
            Err(error) => {
                assert!(matches!(error, HttpsError::BadUrl { .. }), "{error:?}");
                continue;
            }
        };
        assert_eq!(parsed.host(), host, "{url:?}");
        if let Some((_, query)) = url.split_once('?') {
            let value = query.strip_prefix("emailaddress=").expect("one parameter");
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                "the address is not encoded in {url:?}"
            );
        }
    }
}

/// An HTTPS server's answer to a GET, as the HTTPS client reads it (hyper's HTTP/1.1 parser,
/// chunked and length-delimited bodies, the body limit, redirects): the first byte sets the
/// size of each read (bits 0-2), whether redirects are followed (bit 3) and a small body limit
/// (bit 4); the rest is what the server sends before it closes the connection.
///
/// A response is given only whole and within the body limit; a redirect only when redirects
/// are followed; the request went out as one well-formed GET first.
pub fn http_response(data: &[u8]) {
    const READS: [usize; 8] = [1, 2, 3, 7, 64, 1024, 16 * 1024, usize::MAX];
    let Some((&options, server)) = data.split_first() else {
        return;
    };
    let follow = options & 8 != 0;
    let max_body = if options & 16 != 0 {
        64
    } else {
        http::DEFAULT_MAX_BODY
    };
    let (answer, written) =
        http::fuzz_exchange(server, READS[usize::from(options & 7)], follow, max_body);
    assert!(
        written.is_empty()
            || written.starts_with(b"GET /token?code=1 HTTP/1.1\r\n")
                && written.ends_with(b"\r\n\r\n"),
        "the request as written: {:?}",
        String::from_utf8_lossy(&written)
    );
    match answer {
        Ok(Ok(response)) => {
            assert!(
                response.body.len() <= max_body,
                "{} bytes of body",
                response.body.len()
            );
            assert!((100..1000).contains(&response.status));
            if follow {
                assert!(
                    !matches!(response.status, 301 | 302 | 303 | 307 | 308),
                    "a redirect given as the answer"
                );
            }
            if let Some(content_type) = &response.content_type {
                // A field value may hold HTAB (RFC 9110 §5.5); no other control character.
                assert!(
                    !content_type.chars().any(|c| c.is_control() && c != '\t'),
                    "{content_type:?}"
                );
            }
            let _ = format!("{response:?}");
            let _ = response.is_json();
            let _ = response.require_ok().map_err(|e| e.to_string());
        }
        Ok(Err(location)) => {
            assert!(follow, "a redirect read when none is followed");
            let base = Url::parse("https://auth.example.com/token").expect("valid");
            if let Ok(next) = base.join(&location) {
                assert_request_ready(&next);
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}
