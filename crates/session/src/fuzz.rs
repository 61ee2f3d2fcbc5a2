//! Bodies of the fuzz targets for the autoconfig parsers, shared by `fuzz/` and the corpus
//! replay test in `tests/`.
//!
//! Both parsers read bytes from the network (a DNS reply, an autoconfig file fetched from a
//! domain that may be hostile), so besides never panicking they must never hand back anything
//! the rest of autoconfiguration would trust wrongly: each body checks what the result promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mailcat_transport::{Protocol, Security};

use crate::autoconfig::dns::{self, DnsError};
use crate::autoconfig::xml;

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
