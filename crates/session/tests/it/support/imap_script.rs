//! A scripted IMAP server over `tokio::io::duplex`, on the harness of every test
//! (`mailcat_tests::script`): it sends a greeting, then for each expected client line sends
//! canned bytes (`{tag}` replaced by the tag of the line it answers), and records every line it
//! received.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use mailcat_codec::smtp::command::ClientId;
use mailcat_session::ImapSession;
use mailcat_session::MailConnection;
use mailcat_transport::{Connection, Endpoint, MailStream, Protocol, Security, Timeouts};
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

pub(crate) use mailcat_tests::script::{send, Step};

/// A tagged command line (the tag is any first word), answered by `reply`.
pub(crate) fn cmd(line: &str, reply: &str) -> Step {
    mailcat_tests::script::cmd(line, reply)
}

/// A tagged command line answered with raw bytes.
pub(crate) fn cmd_bytes(line: &str, reply: Vec<u8>) -> Step {
    mailcat_tests::script::cmd(line, reply)
}

/// An untagged client line (`DONE`, a SASL response), answered by `reply`.
pub(crate) fn line(line: &str, reply: &str) -> Step {
    mailcat_tests::script::reply_to(line, reply)
}

/// A tagged command line answered by what `reply` makes of it (the line after the tag).
pub(crate) fn cmd_fn(reply: fn(&str) -> String) -> Step {
    Step::Respond {
        tagged: true,
        reply,
    }
}

/// An untagged client line answered by what `reply` makes of it.
pub(crate) fn line_fn(reply: fn(&str) -> String) -> Step {
    Step::Respond {
        tagged: false,
        reply,
    }
}

/// What the server received, line by line (CRLF stripped), as it reads them.
pub(crate) type Received = mailcat_tests::script::Live;

/// Starts the server and a session over it: greeting with `caps`, the client's CAPABILITY
/// answered with `caps`, then `steps`.
pub(crate) async fn session(
    caps: &str,
    steps: Vec<Step>,
) -> (ImapSession<DuplexStream>, JoinHandle<()>, Received) {
    session_with(caps, steps, Timeouts::uniform(Duration::from_secs(5))).await
}

/// As [`session`], with these timeouts.
pub(crate) async fn session_with(
    caps: &str,
    steps: Vec<Step>,
    timeouts: Timeouts,
) -> (ImapSession<DuplexStream>, JoinHandle<()>, Received) {
    let mut all = vec![
        send("* OK IMAP4rev1 scripted server ready\r\n"),
        cmd(
            "CAPABILITY",
            &format!("* CAPABILITY {caps}\r\n{{tag}} OK CAPABILITY completed\r\n"),
        ),
    ];
    all.extend(steps);
    let (client, server) = mailcat_tests::script::serve_duplex(all);
    let received = server.live();
    // A failed expectation fails the test where it awaits this task, with the transcript.
    let server = tokio::spawn(async move {
        server.join().await;
    });
    let endpoint = Endpoint::new(
        Protocol::Imap,
        "imap.test.invalid",
        Security::DangerousPlaintext,
    );
    let mut connection = MailConnection::new(
        Connection::new(MailStream::Plain(client), endpoint, timeouts),
        ClientId::domain("client.test").unwrap(),
    );
    connection.greeting().await.unwrap();
    let capabilities = connection.capabilities().await.unwrap();
    (ImapSession::new(connection, capabilities), server, received)
}
