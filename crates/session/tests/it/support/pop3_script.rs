//! A scripted POP3 server over `tokio::io::duplex`, on the harness of every test
//! (`mailcat_tests::script`): it expects lines, sends bytes, and records everything the client
//! wrote, so tests can assert what was (and was not) sent.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use mailcat_codec::smtp::command::ClientId;
use mailcat_session::MailConnection;
use mailcat_session::Pop3Session;
use mailcat_transport::{Connection, Endpoint, MailStream, Protocol, Security, Timeouts};
use tokio::io::DuplexStream;

pub(crate) use crate::support::case::Case;
pub(crate) use mailcat_tests::script::{expect, send, Step};

/// `Step::Respond` for an untagged line: for answers that depend on what the client sent
/// (SCRAM).
pub(crate) fn respond(reply: fn(&str) -> String) -> Step {
    Step::Respond {
        tagged: false,
        reply,
    }
}

/// What the server saw: every byte the client sent, in order.
pub(crate) struct Server(mailcat_tests::script::Server);

impl Server {
    /// Waits for the client to close and returns everything it sent. Panics (failing the test,
    /// with the transcript so far) if a step of the script was not met.
    pub(crate) async fn received(self) -> Vec<u8> {
        self.0.finish().await.bytes
    }

    /// Everything the client sent, as text, when it closes.
    pub(crate) async fn received_text(self) -> String {
        self.0.finish_text().await
    }

    /// Names a case of a table-driven test, which shows what the client sent if it fails.
    pub(crate) fn case(&self, name: &str) -> Case {
        Case::with_live(name, self.0.live())
    }
}

/// Runs `script` as the server on one end of a duplex of `buffer` bytes; returns the client's
/// end and the server.
pub(crate) fn serve(script: Vec<Step>, buffer: usize) -> (DuplexStream, Server) {
    let (client, server) = mailcat_tests::script::serve_duplex_with(script, buffer);
    (client, Server(server))
}

/// The endpoint the tests use.
pub(crate) fn endpoint() -> Endpoint {
    Endpoint::new(
        Protocol::Pop3,
        "pop.test.invalid",
        Security::DangerousPlaintext,
    )
}

/// The greeting and the CAPA exchange, with these capability lines (`None`: the server has
/// no CAPA and answers `-ERR`).
pub(crate) fn opening(caps: Option<&[&str]>) -> Vec<Step> {
    let mut steps = vec![
        send("+OK POP3 ready <1896.697170952@dbc.mtview.us>\r\n"),
        expect("CAPA"),
    ];
    match caps {
        Some(caps) => {
            let mut reply = String::from("+OK Capability list follows\r\n");
            for cap in caps {
                reply.push_str(cap);
                reply.push_str("\r\n");
            }
            reply.push_str(".\r\n");
            steps.push(send(reply));
        }
        None => steps.push(send("-ERR unknown command\r\n")),
    }
    steps
}

/// A session after the greeting and CAPA of `caps`, with the server running `script` after
/// them.
pub(crate) async fn session(
    caps: Option<&[&str]>,
    script: Vec<Step>,
) -> (Pop3Session<DuplexStream>, Server) {
    session_with_buffer(caps, script, 64 * 1024).await
}

/// As [`session`], with a duplex buffer of `buffer` bytes.
pub(crate) async fn session_with_buffer(
    caps: Option<&[&str]>,
    script: Vec<Step>,
    buffer: usize,
) -> (Pop3Session<DuplexStream>, Server) {
    let mut steps = opening(caps);
    steps.extend(script);
    let (client, server) = serve(steps, buffer);
    let connection = Connection::new(
        MailStream::Plain(client),
        endpoint(),
        Timeouts::uniform(Duration::from_secs(5)),
    );
    let mut mail = MailConnection::new(
        connection,
        ClientId::from(std::net::IpAddr::from([127, 0, 0, 1])),
    );
    let greeting = mail.greeting().await.unwrap();
    let capabilities = mail.capabilities().await.unwrap();
    let mut session = Pop3Session::new(mail, capabilities);
    session.set_greeting(&greeting);
    (session, server)
}

/// Capabilities of a modern server after TLS.
pub(crate) const CAPS: &[&str] = &[
    "TOP",
    "UIDL",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "USER",
    "SASL PLAIN LOGIN",
];

/// The same with PIPELINING.
pub(crate) const CAPS_PIPELINING: &[&str] = &[
    "TOP",
    "UIDL",
    "RESP-CODES",
    "PIPELINING",
    "USER",
    "SASL PLAIN",
];

/// Capabilities for transaction tests: USER/PASS only.
pub(crate) const TX_CAPS: &[&str] = &["USER", "TOP", "UIDL", "RESP-CODES"];

/// The same with PIPELINING.
pub(crate) const TX_CAPS_PIPELINING: &[&str] = &["USER", "TOP", "UIDL", "RESP-CODES", "PIPELINING"];

/// The password the tests use.
pub(crate) const PASSWORD: &str = "s3cret pw";

/// `USER bob` / `PASS …` / the CAPA refresh after login, all accepted.
pub(crate) fn login_steps(caps: &[&str]) -> Vec<Step> {
    let mut capa = String::from("+OK\r\n");
    for cap in caps {
        capa.push_str(cap);
        capa.push_str("\r\n");
    }
    capa.push_str(".\r\n");
    vec![
        expect("USER bob"),
        send("+OK\r\n"),
        expect(&format!("PASS {PASSWORD}")),
        send("+OK logged in\r\n"),
        expect("CAPA"),
        send(capa),
    ]
}

/// A logged-in session (USER/PASS) on a server with `caps`, then `script`.
pub(crate) async fn logged_in(
    caps: &[&str],
    script: Vec<Step>,
) -> (Pop3Session<DuplexStream>, Server) {
    let mut steps = login_steps(caps);
    steps.extend(script);
    let (mut session, server) = session(Some(caps), steps).await;
    session
        .login(
            &mailcat_session::Credential::password("bob", PASSWORD),
            mailcat_session::Plaintext::DangerouslyAllow,
        )
        .await
        .unwrap();
    (session, server)
}
