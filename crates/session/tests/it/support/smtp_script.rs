//! A scripted SMTP server over an in-memory duplex stream, on the harness of every test
//! (`mailcat_tests::script`): it greets, answers EHLO with the given extensions, then plays a
//! script (expect a line, send bytes, expect a pipelined group in one read, expect a
//! dot-stuffed body, expect the end of the stream), and records every byte it received. Any
//! mismatch panics the server task with the transcript so far, which closes the stream, so the
//! client fails instead of hanging.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::Duration;

use mailcat_codec::smtp::command::ClientId;
use mailcat_session::smtp::{HeaderCompletion, SmtpSession};
use mailcat_session::MailConnection;
use mailcat_tests::script::Live;
use mailcat_transport::{Connection, Endpoint, MailStream, Protocol, Security, Timeouts};
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

/// The host the scripted server plays.
pub(crate) const HOST: &str = "smtp.test";

pub(crate) use crate::support::case::Case;
pub(crate) use mailcat_tests::script::{data, expect, group, send, Step as Act};

/// `Act::Respond` for an untagged line: for answers that depend on what the client sent
/// (SCRAM).
pub(crate) fn respond(reply: fn(&str) -> String) -> Act {
    Act::Respond {
        tagged: false,
        reply,
    }
}

/// What the server received, after the EHLO.
#[derive(Debug)]
pub(crate) struct Received(pub Vec<u8>);

impl Received {
    /// As text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// How many lines start with `word` (e.g. AUTH attempts).
    pub(crate) fn count(&self, word: &str) -> usize {
        self.text()
            .split("\r\n")
            .filter(|l| l.split(' ').next() == Some(word))
            .count()
    }
}

/// The client's timeouts: short, so a broken script fails fast.
pub(crate) fn timeouts() -> Timeouts {
    Timeouts::uniform(Duration::from_secs(5))
}

/// Starts a server that offers `extensions` (EHLO lines after the first) and plays `script`;
/// returns the session (greeting and EHLO done) and the server task.
pub(crate) async fn start(
    extensions: &[&str],
    script: Vec<Act>,
) -> (SmtpSession<DuplexStream>, JoinHandle<Received>) {
    let (session, handle, _) = start_live(extensions, script).await;
    (session, handle)
}

/// [`start`] for a case of a table-driven test: a failure while the [`Case`] lives names the
/// case and shows what the client sent.
pub(crate) async fn start_case(
    case: &str,
    extensions: &[&str],
    script: Vec<Act>,
) -> (SmtpSession<DuplexStream>, JoinHandle<Received>, Case) {
    let (session, handle, live) = start_live(extensions, script).await;
    (session, handle, Case::with_live(case, live))
}

async fn start_live(
    extensions: &[&str],
    script: Vec<Act>,
) -> (SmtpSession<DuplexStream>, JoinHandle<Received>, Live) {
    let mut ehlo = String::from("250");
    ehlo.push(if extensions.is_empty() { ' ' } else { '-' });
    ehlo.push_str("smtp.test greets [127.0.0.1]\r\n");
    for (i, ext) in extensions.iter().enumerate() {
        let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
        ehlo.push_str(&format!("250{sep}{ext}\r\n"));
    }
    let mut full = vec![
        send("220 smtp.test ESMTP scripted\r\n"),
        expect("EHLO [127.0.0.1]"),
        send(ehlo),
        Act::Mark,
    ];
    full.extend(script);
    // The end of the script closes the connection (a script that ends with Drain or Eof has
    // already ended before).
    full.push(Act::Close);
    let (client, server) = mailcat_tests::script::serve_duplex_with(full, 4 << 20);
    let live = server.live();
    // A failed expectation fails the test where it awaits this task, with the transcript.
    let handle = tokio::spawn(async move { Received(server.join().await.since_mark().to_vec()) });
    let endpoint = Endpoint::new(Protocol::Smtp, HOST, Security::DangerousPlaintext);
    let connection = Connection::new(MailStream::Plain(client), endpoint, timeouts());
    let mut connection = MailConnection::new(connection, ClientId::Ipv4(Ipv4Addr::LOCALHOST));
    connection.greeting().await.expect("greeting");
    let capabilities = connection.capabilities().await.expect("EHLO");
    let mut session = SmtpSession::new(connection, capabilities);
    // The scripts check the data path byte for byte: no Date or Message-ID added.
    session.set_header_completion(HeaderCompletion::AsGiven);
    (session, handle, live)
}
