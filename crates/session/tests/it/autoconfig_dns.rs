//! The DNS client against a DNS server on loopback: SRV and MX lookups, NXDOMAIN, no records,
//! a server that never answers, and the TCP fallback for a truncated reply.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mailcat_session::autoconfig::dns::{DnsError, Mx, Resolver, Srv};
use mailcat_tests::dns_server::{Answer, DnsServer};

const TIMEOUT: Duration = Duration::from_secs(5);

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> (String, Answer) {
    (
        "_imaps._tcp.example.com".to_string(),
        Answer::Srv {
            priority,
            weight,
            port,
            target: target.to_string(),
        },
    )
}

fn mx(domain: &str, preference: u16, exchange: &str) -> (String, Answer) {
    (
        domain.to_string(),
        Answer::Mx {
            preference,
            exchange: exchange.to_string(),
        },
    )
}

fn srv_records() -> Vec<(String, Answer)> {
    vec![
        srv(20, 0, 993, "backup.example.com"),
        srv(10, 5, 993, "IMAP.Example.com."),
        srv(10, 60, 9993, "imap2.example.net"),
        // Another service and type of the same domain, which must not be mixed in.
        (
            "_submissions._tcp.example.com".to_string(),
            Answer::Srv {
                priority: 0,
                weight: 0,
                port: 465,
                target: "smtp.example.com".to_string(),
            },
        ),
        mx("example.com", 10, "mx.example.com"),
    ]
}

fn expected_srv() -> Vec<Srv> {
    let srv = |priority, weight, port, target: &str| Srv {
        priority,
        weight,
        port,
        target: target.to_string(),
    };
    vec![
        srv(10, 60, 9993, "imap2.example.net"),
        srv(10, 5, 993, "imap.example.com"),
        srv(20, 0, 993, "backup.example.com"),
    ]
}

#[tokio::test]
async fn srv_lookup_is_sorted() {
    let server = DnsServer::start(srv_records());
    let resolver = Resolver::with_server(server.addr(), TIMEOUT);
    assert_eq!(
        resolver.srv("_imaps._tcp.example.com").await.unwrap(),
        expected_srv()
    );
    // Case and a trailing dot do not matter.
    assert_eq!(
        resolver.srv("_IMAPS._tcp.EXAMPLE.com.").await.unwrap(),
        expected_srv()
    );
    assert_eq!(server.queries(), 2);
}

#[tokio::test]
async fn srv_root_target_is_empty() {
    let server = DnsServer::start(vec![srv(0, 0, 0, ".")]);
    let resolver = Resolver::with_server(server.addr(), TIMEOUT);
    let records = resolver.srv("_imaps._tcp.example.com").await.unwrap();
    assert_eq!(
        records,
        [Srv {
            priority: 0,
            weight: 0,
            port: 0,
            target: String::new()
        }]
    );
}

#[tokio::test]
async fn mx_lookup_is_sorted() {
    let server = DnsServer::start(vec![
        mx("example.com", 20, "MX2.example.com"),
        mx("example.com", 5, "mx1.example.com"),
        mx("example.com", 30, "mx.provider.example"),
        mx("example.org", 1, "mx.example.org"),
    ]);
    let resolver = Resolver::with_server(server.addr(), TIMEOUT);
    let records = resolver.mx("Example.com").await.unwrap();
    let mx = |preference, exchange: &str| Mx {
        preference,
        exchange: exchange.to_string(),
    };
    assert_eq!(
        records,
        [
            mx(5, "mx1.example.com"),
            mx(20, "mx2.example.com"),
            mx(30, "mx.provider.example")
        ]
    );
}

#[tokio::test]
async fn nxdomain_is_empty() {
    let server = DnsServer::start(vec![("nowhere.example".to_string(), Answer::NxDomain)]);
    let resolver = Resolver::with_server(server.addr(), TIMEOUT);
    assert!(resolver.mx("nowhere.example").await.unwrap().is_empty());
    assert!(resolver
        .srv("_imaps._tcp.nowhere.example")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(server.queries(), 2);
}

#[tokio::test]
async fn no_records_is_empty() {
    let server = DnsServer::start(srv_records());
    let resolver = Resolver::with_server(server.addr(), TIMEOUT);
    // A name with records of another type only, and a name with no entry at all.
    assert!(resolver.srv("example.com").await.unwrap().is_empty());
    assert!(resolver.mx("example.net").await.unwrap().is_empty());
    assert!(resolver
        .srv("_pop3s._tcp.example.com")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn silent_server_times_out() {
    let server = DnsServer::silent();
    let resolver = Resolver::with_server(server.addr(), Duration::from_millis(300));
    let error = resolver.srv("_imaps._tcp.example.com").await.unwrap_err();
    match &error {
        DnsError::Timeout { server: addr, .. } => assert_eq!(*addr, server.addr()),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains(&server.addr().to_string()), "{text}");
    assert!(text.contains("did not answer"), "{text}");
    assert_eq!(server.queries(), 1);
}

#[tokio::test]
async fn truncated_reply_falls_back_to_tcp() {
    let server = DnsServer::truncating(srv_records());
    let resolver = Resolver::with_server(server.addr(), TIMEOUT);
    assert_eq!(
        resolver.srv("_imaps._tcp.example.com").await.unwrap(),
        expected_srv()
    );
    // Once over UDP (truncated), once over TCP.
    assert_eq!(server.queries(), 2);
    let records = resolver.mx("example.com").await.unwrap();
    assert_eq!(records.len(), 1);
}
