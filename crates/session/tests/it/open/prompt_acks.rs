//! No 40 ms stall after a TLS handshake (issue 12). A TLS 1.3 server sends its session tickets
//! after the client's Finished, then its next reply (the greeting with implicit TLS, the answer
//! to the capability command after STARTTLS) in a write of its own. A server with Nagle's
//! algorithm on (Postfix; these scripted servers too) holds that reply until the tickets are
//! acknowledged, so the client must acknowledge them at once rather than after the kernel's
//! delayed-ACK timer (40 ms on Linux).
//!
//! Client and server run on one thread here: the client writes its Finished (and, after
//! STARTTLS, its command) before the server has sent the tickets, every time, so without the
//! prompt ACK every open stalls.

use std::time::Duration;

use super::support::*;
use mailcat_session::StepReport;
use mailcat_transport::{Endpoint, Protocol, Security, Step};

/// A delayed ACK on Linux takes at least 40 ms; a loopback exchange, far less.
const STALL: Duration = Duration::from_millis(40);

/// How long the last step of type `step` took, fastest of five opens against servers playing
/// `script`.
async fn fastest(step: Step, security: Security, script: impl Fn() -> Vec<Act>) -> Duration {
    let mut fastest = Duration::MAX;
    // Five: a loaded machine may delay one open past the limit, never all of them.
    for _ in 0..5 {
        let (client, server_config) = valid_pki();
        let mut acts = script();
        if security == Security::ImplicitTls {
            acts.insert(0, Act::StartTls(server_config));
        } else {
            let at = acts
                .iter()
                .position(|act| matches!(act, Act::Sleep(_)))
                .unwrap();
            acts[at] = Act::StartTls(server_config);
        }
        let server = Server::start(acts).await;
        let endpoint: Endpoint = server.endpoint(Protocol::Smtp, security, "127.0.0.1");
        let mut reports: Vec<StepReport> = Vec::new();
        let opened = mailcat_session::open(&endpoint, client, &quick(), &mut |report| {
            reports.push(report);
        })
        .await
        .unwrap();
        let took = reports
            .iter()
            .rev()
            .find(|report| report.step == step)
            .unwrap()
            .elapsed;
        fastest = fastest.min(took);
        drop(opened);
        server.received().await;
    }
    fastest
}

#[tokio::test]
async fn the_greeting_after_implicit_tls_is_not_held_behind_the_session_tickets() {
    let took = fastest(Step::Greeting, Security::ImplicitTls, || {
        vec![
            send("220 mx.example ESMTP\r\n"),
            expect("EHLO [127.0.0.1]"),
            send("250-mx.example\r\n250 AUTH PLAIN\r\n"),
        ]
    })
    .await;
    assert!(took < STALL, "the greeting took {took:?}");
}

#[tokio::test]
async fn the_reply_after_starttls_is_not_held_behind_the_session_tickets() {
    let took = fastest(Step::Capabilities, Security::StartTls, || {
        vec![
            send("220 mx.example ESMTP\r\n"),
            expect("EHLO [127.0.0.1]"),
            send("250-mx.example\r\n250 STARTTLS\r\n"),
            expect("STARTTLS"),
            send("220 2.0.0 go ahead\r\n"),
            // Where the handshake goes.
            Act::Sleep(Duration::ZERO),
            expect("EHLO [127.0.0.1]"),
            send("250-mx.example\r\n250 AUTH PLAIN\r\n"),
        ]
    })
    .await;
    assert!(
        took < STALL,
        "the capabilities after STARTTLS took {took:?}"
    );
}
