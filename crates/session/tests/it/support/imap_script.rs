//! A scripted IMAP server over `tokio::io::duplex`: it sends a greeting, then for each
//! expected client line sends canned bytes (`{tag}` replaced by the tag of the line it
//! answers), and records every line it received.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailcat_codec::smtp::command::ClientId;
use mailcat_session::ImapSession;
use mailcat_session::MailConnection;
use mailcat_transport::{Connection, Endpoint, MailStream, Protocol, Security, Timeouts};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

/// One step of the server's script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Read a line; it must be `line` (after the tag, if `tagged`), then send `reply`.
    Expect {
        line: String,
        tagged: bool,
        reply: Vec<u8>,
    },
    /// Read a line (tagged or not, as `Expect`), then send what `reply` makes of it (after the
    /// tag), `{tag}` replaced: for answers that depend on what the client sent (SCRAM).
    Respond {
        tagged: bool,
        reply: fn(&str) -> String,
    },
    /// Send bytes unasked.
    Send(Vec<u8>),
    /// Send `count` lines made by `line(i)` as the client reads them (generated lazily, never
    /// all in memory); stops quietly when the client goes away.
    Lines {
        /// How many.
        count: usize,
        /// The `i`-th line, CRLF included.
        line: fn(usize) -> String,
    },
    /// Let (paused or real) time pass.
    Sleep(Duration),
    /// Close the connection.
    Close,
    /// Keep the connection open without answering until the client goes away.
    Hang,
}

/// A tagged command line (the tag is any first word), answered by `reply`.
pub fn cmd(line: &str, reply: &str) -> Step {
    Step::Expect {
        line: line.to_owned(),
        tagged: true,
        reply: reply.as_bytes().to_vec(),
    }
}

/// A tagged command line answered with raw bytes.
pub fn cmd_bytes(line: &str, reply: Vec<u8>) -> Step {
    Step::Expect {
        line: line.to_owned(),
        tagged: true,
        reply,
    }
}

/// An untagged client line (`DONE`, a SASL response), answered by `reply`.
pub fn line(line: &str, reply: &str) -> Step {
    Step::Expect {
        line: line.to_owned(),
        tagged: false,
        reply: reply.as_bytes().to_vec(),
    }
}

/// A tagged command line answered by what `reply` makes of it (the line after the tag).
pub fn cmd_fn(reply: fn(&str) -> String) -> Step {
    Step::Respond {
        tagged: true,
        reply,
    }
}

/// An untagged client line answered by what `reply` makes of it.
pub fn line_fn(reply: fn(&str) -> String) -> Step {
    Step::Respond {
        tagged: false,
        reply,
    }
}

/// Bytes sent unasked.
pub fn send(bytes: &str) -> Step {
    Step::Send(bytes.as_bytes().to_vec())
}

/// What the server received, line by line (CRLF stripped).
pub type Received = Arc<Mutex<Vec<String>>>;

/// Starts the server and a session over it: greeting with `caps`, the client's CAPABILITY
/// answered with `caps`, then `steps`.
pub async fn session(
    caps: &str,
    steps: Vec<Step>,
) -> (ImapSession<DuplexStream>, JoinHandle<()>, Received) {
    session_with(caps, steps, Timeouts::uniform(Duration::from_secs(5))).await
}

/// As [`session`], with these timeouts.
pub async fn session_with(
    caps: &str,
    steps: Vec<Step>,
    timeouts: Timeouts,
) -> (ImapSession<DuplexStream>, JoinHandle<()>, Received) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let received: Received = Arc::default();
    let mut all = vec![
        send("* OK IMAP4rev1 scripted server ready\r\n"),
        cmd(
            "CAPABILITY",
            &format!("* CAPABILITY {caps}\r\n{{tag}} OK CAPABILITY completed\r\n"),
        ),
    ];
    all.extend(steps);
    let server = tokio::spawn(run(server, all, received.clone()));
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

async fn run(stream: DuplexStream, steps: Vec<Step>, received: Received) {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    // Untagged client lines (DONE, SASL responses) are answered with the last tag seen.
    let mut last_tag = String::new();
    for step in steps {
        match step {
            Step::Expect {
                line: want,
                tagged,
                reply,
            } => {
                let mut got = String::new();
                let n = read.read_line(&mut got).await.unwrap();
                assert!(n > 0, "the client closed; expected {want:?}");
                let got = got.trim_end_matches("\r\n").to_owned();
                received.lock().unwrap().push(got.clone());
                let rest = if tagged {
                    let (tag, rest) = got.split_once(' ').unwrap_or((&got, ""));
                    last_tag = tag.to_owned();
                    rest
                } else {
                    got.as_str()
                };
                assert_eq!(rest, want, "the client sent {got:?}");
                write
                    .write_all(&replace_tag(&reply, &last_tag))
                    .await
                    .unwrap();
            }
            Step::Respond { tagged, reply } => {
                let mut got = String::new();
                let n = read.read_line(&mut got).await.unwrap();
                assert!(n > 0, "the client closed; expected a line");
                let got = got.trim_end_matches("\r\n").to_owned();
                received.lock().unwrap().push(got.clone());
                let rest = if tagged {
                    let (tag, rest) = got.split_once(' ').unwrap_or((&got, ""));
                    last_tag = tag.to_owned();
                    rest
                } else {
                    got.as_str()
                };
                let reply = reply(rest);
                write
                    .write_all(&replace_tag(reply.as_bytes(), &last_tag))
                    .await
                    .unwrap();
            }
            Step::Send(bytes) => write.write_all(&bytes).await.unwrap(),
            Step::Lines { count, line } => {
                let mut chunk = String::new();
                for i in 0..count {
                    chunk.push_str(&line(i));
                    if chunk.len() >= 64 * 1024 || i + 1 == count {
                        if write.write_all(chunk.as_bytes()).await.is_err() {
                            return;
                        }
                        chunk.clear();
                    }
                }
            }
            Step::Sleep(d) => tokio::time::sleep(d).await,
            Step::Close => {
                write.shutdown().await.unwrap();
                return;
            }
            Step::Hang => {
                let mut sink = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut read, &mut sink).await;
                return;
            }
        }
    }
    // Whatever the client still sends is recorded until it closes.
    loop {
        let mut got = String::new();
        match read.read_line(&mut got).await {
            Ok(0) | Err(_) => return,
            Ok(_) => received
                .lock()
                .unwrap()
                .push(got.trim_end_matches("\r\n").to_owned()),
        }
    }
}

/// `{tag}` replaced by `tag`, byte for byte (bodies may be binary).
fn replace_tag(reply: &[u8], tag: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.len());
    let mut i = 0;
    while i < reply.len() {
        if reply[i..].starts_with(b"{tag}") {
            out.extend_from_slice(tag.as_bytes());
            i += 5;
        } else {
            out.push(reply[i]);
            i += 1;
        }
    }
    out
}
