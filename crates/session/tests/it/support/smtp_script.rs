//! A scripted SMTP server over an in-memory duplex stream: it greets, answers EHLO with the
//! given extensions, then plays a script (expect a line, send bytes, expect a pipelined group in
//! one read, expect a dot-stuffed body, expect the end of the stream), and records every byte it
//! received. Any mismatch panics the server task, which closes the stream, so the client fails
//! instead of hanging.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::Duration;

use mailcat_codec::smtp::command::ClientId;
use mailcat_session::smtp::SmtpSession;
use mailcat_session::MailConnection;
use mailcat_transport::{Connection, Endpoint, MailStream, Protocol, Security, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

/// The host the scripted server plays.
pub const HOST: &str = "smtp.test";

/// One step of a script.
#[derive(Debug)]
pub enum Act {
    /// Send these bytes.
    Send(Vec<u8>),
    /// The next line (without CRLF) must be this.
    Expect(String),
    /// Read the next line and send what this makes of it (without CRLF): for answers that
    /// depend on what the client sent (SCRAM).
    Respond(fn(&str) -> String),
    /// The next single read must hold exactly these lines, each with CRLF (a pipelined group).
    Group(Vec<String>),
    /// The bytes up to and including the `.` CRLF terminator must be these.
    Data(Vec<u8>),
    /// The client sends nothing more and closes.
    Eof,
    /// Whatever the client sends until it closes is only recorded.
    Drain,
    /// Read at least this many bytes more, then close the connection (the script ends).
    CloseAfter(usize),
    /// Wait this long before the next step.
    Pause(Duration),
}

/// Send `bytes`.
pub fn send(bytes: impl AsRef<[u8]>) -> Act {
    Act::Send(bytes.as_ref().to_vec())
}

/// Expect the line `line`.
pub fn expect(line: &str) -> Act {
    Act::Expect(line.to_owned())
}

/// Expect `lines` in one read.
pub fn group(lines: &[&str]) -> Act {
    Act::Group(lines.iter().map(|l| (*l).to_owned()).collect())
}

/// Expect the wire form of a message body, terminator included.
pub fn data(wire: impl AsRef<[u8]>) -> Act {
    Act::Data(wire.as_ref().to_vec())
}

/// What the server received, after the EHLO.
#[derive(Debug)]
pub struct Received(pub Vec<u8>);

impl Received {
    /// As text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// How many lines start with `word` (e.g. AUTH attempts).
    pub fn count(&self, word: &str) -> usize {
        self.text()
            .split("\r\n")
            .filter(|l| l.split(' ').next() == Some(word))
            .count()
    }
}

/// The client's timeouts: short, so a broken script fails fast.
pub fn timeouts() -> Timeouts {
    Timeouts::uniform(Duration::from_secs(5))
}

/// Starts a server that offers `extensions` (EHLO lines after the first) and plays `script`;
/// returns the session (greeting and EHLO done) and the server task.
pub async fn start(
    extensions: &[&str],
    script: Vec<Act>,
) -> (SmtpSession<DuplexStream>, JoinHandle<Received>) {
    let (client, server) = tokio::io::duplex(4 << 20);
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
    ];
    full.extend(script);
    let handle = tokio::spawn(play(server, full));
    let endpoint = Endpoint::new(Protocol::Smtp, HOST, Security::DangerousPlaintext);
    let connection = Connection::new(MailStream::Plain(client), endpoint, timeouts());
    let mut connection = MailConnection::new(connection, ClientId::Ipv4(Ipv4Addr::LOCALHOST));
    connection.greeting().await.expect("greeting");
    let capabilities = connection.capabilities().await.expect("EHLO");
    (SmtpSession::new(connection, capabilities), handle)
}

async fn play(mut stream: DuplexStream, script: Vec<Act>) -> Received {
    let mut pending: Vec<u8> = Vec::new();
    let mut received = Vec::new();
    let mut after_ehlo = false;
    for act in script {
        match act {
            Act::Send(bytes) => {
                // The stream may be gone already (the client gave up): that is for the test to
                // judge from what was received.
                let _ = stream.write_all(&bytes).await;
                if bytes.starts_with(b"250") && !after_ehlo {
                    after_ehlo = true;
                    received.clear();
                }
            }
            Act::Expect(line) => {
                let got = read_until(&mut stream, &mut pending, &mut received, |p| {
                    find(p, b"\r\n").map(|i| i + 2)
                })
                .await;
                assert_eq!(
                    String::from_utf8_lossy(&got[..got.len() - 2]),
                    line,
                    "the line the server expected"
                );
            }
            Act::Respond(reply) => {
                let got = read_until(&mut stream, &mut pending, &mut received, |p| {
                    find(p, b"\r\n").map(|i| i + 2)
                })
                .await;
                let answer = reply(&String::from_utf8_lossy(&got[..got.len() - 2]));
                let _ = stream.write_all(answer.as_bytes()).await;
            }
            Act::Group(lines) => {
                assert!(pending.is_empty(), "bytes before the group: {pending:?}");
                let mut buf = vec![0u8; 1 << 20];
                let n = stream.read(&mut buf).await.expect("read");
                received.extend_from_slice(&buf[..n]);
                let want: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
                assert_eq!(
                    String::from_utf8_lossy(&buf[..n]),
                    want,
                    "the pipelined group, in one read"
                );
            }
            Act::Data(wire) => {
                let got = read_until(&mut stream, &mut pending, &mut received, |p| {
                    if p.starts_with(b".\r\n") {
                        Some(3)
                    } else {
                        find(p, b"\r\n.\r\n").map(|i| i + 5)
                    }
                })
                .await;
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&wire),
                    "the message as it crossed the wire"
                );
            }
            Act::CloseAfter(n) => {
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = pending.len();
                while got < n {
                    let k = stream.read(&mut buf).await.expect("read");
                    assert!(k > 0, "the client closed first");
                    received.extend_from_slice(&buf[..k]);
                    got += k;
                }
                return Received(received);
            }
            Act::Pause(pause) => tokio::time::sleep(pause).await,
            Act::Drain => {
                received.append(&mut pending);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    received.extend_from_slice(&buf[..n]);
                }
            }
            Act::Eof => {
                assert!(pending.is_empty(), "unexpected bytes: {pending:?}");
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                assert!(
                    n == 0,
                    "the client sent more: {:?}",
                    String::from_utf8_lossy(&buf[..n])
                );
            }
        }
    }
    Received(received)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn read_until(
    stream: &mut DuplexStream,
    pending: &mut Vec<u8>,
    received: &mut Vec<u8>,
    end: impl Fn(&[u8]) -> Option<usize>,
) -> Vec<u8> {
    loop {
        if let Some(n) = end(pending) {
            return pending.drain(..n).collect();
        }
        let mut buf = vec![0u8; 64 * 1024];
        let n = stream.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "the client closed; it had sent {:?}",
            String::from_utf8_lossy(pending)
        );
        received.extend_from_slice(&buf[..n]);
        pending.extend_from_slice(&buf[..n]);
    }
}
