//! A scripted POP3 server over `tokio::io::duplex`: it expects lines, sends bytes, and records
//! everything the client wrote, so tests can assert what was (and was not) sent.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use mailcat_codec::smtp::command::ClientId;
use mailcat_session::MailConnection;
use mailcat_session::Pop3Session;
use mailcat_transport::{Connection, Endpoint, MailStream, Protocol, Security, Timeouts};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

/// One step of the server's part.
#[derive(Debug, Clone)]
pub enum Step {
    /// Read one line and check it is this (without CRLF).
    Expect(String),
    /// Read one line and send what this makes of it (without CRLF): for answers that depend on
    /// what the client sent (SCRAM).
    Respond(fn(&str) -> String),
    /// Send these bytes.
    Send(Vec<u8>),
    /// Send these bytes one at a time, flushing each.
    SendByteByByte(Vec<u8>),
    /// Send `count` lines made by `line(i)` (CRLF included), generated as the client reads
    /// them; stops quietly when the client goes away.
    Lines {
        /// How many.
        count: usize,
        /// The `i`-th line.
        line: fn(usize) -> String,
    },
    /// Check the client sends nothing for this long.
    Silence(Duration),
    /// Close the connection (the client sees EOF).
    Close,
}

/// `Expect(line)`.
pub fn expect(line: &str) -> Step {
    Step::Expect(line.to_owned())
}

/// `Send(text)`.
pub fn send(text: impl AsRef<[u8]>) -> Step {
    Step::Send(text.as_ref().to_vec())
}

/// What the server saw: every byte the client sent, in order.
pub struct Server {
    handle: JoinHandle<Vec<u8>>,
}

impl Server {
    /// Waits for the client to close and returns everything it sent. Panics (failing the test)
    /// if a step of the script was not met.
    pub async fn received(self) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("the scripted server did not finish: the client did not close")
            .expect("the scripted server's script failed")
    }

    /// Everything the client sent, as text, when it closes.
    pub async fn received_text(self) -> String {
        String::from_utf8_lossy(&self.received().await).into_owned()
    }
}

/// Runs `script` as the server on one end of a duplex of `buffer` bytes; returns the client's
/// end and the server.
pub fn serve(script: Vec<Step>, buffer: usize) -> (DuplexStream, Server) {
    let (client, server) = tokio::io::duplex(buffer);
    let handle = tokio::spawn(async move {
        let (read, mut write) = tokio::io::split(server);
        let mut read = BufReader::new(read);
        let mut seen = Vec::new();
        for step in script {
            match step {
                Step::Expect(want) => {
                    let mut line = Vec::new();
                    read.read_until(b'\n', &mut line).await.unwrap();
                    seen.extend_from_slice(&line);
                    assert_eq!(
                        String::from_utf8_lossy(&line),
                        format!("{want}\r\n"),
                        "the server expected {want:?}; everything received: {:?}",
                        String::from_utf8_lossy(&seen)
                    );
                }
                Step::Respond(reply) => {
                    let mut line = Vec::new();
                    read.read_until(b'\n', &mut line).await.unwrap();
                    seen.extend_from_slice(&line);
                    let text = String::from_utf8_lossy(&line);
                    let text = text.strip_suffix("\r\n").unwrap_or_else(|| {
                        panic!(
                            "the client closed or sent no CRLF: {:?}",
                            String::from_utf8_lossy(&seen)
                        )
                    });
                    let _ = write.write_all(reply(text).as_bytes()).await;
                    let _ = write.flush().await;
                }
                Step::Send(bytes) => {
                    // The client may have gone away already (a test of an abort): fine.
                    let _ = write.write_all(&bytes).await;
                    let _ = write.flush().await;
                }
                Step::Lines { count, line } => {
                    let mut chunk = String::new();
                    for i in 0..count {
                        chunk.push_str(&line(i));
                        if chunk.len() >= 64 * 1024 || i + 1 == count {
                            if write.write_all(chunk.as_bytes()).await.is_err() {
                                break;
                            }
                            chunk.clear();
                        }
                    }
                }
                Step::SendByteByByte(bytes) => {
                    for b in bytes {
                        write.write_all(&[b]).await.unwrap();
                        write.flush().await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
                Step::Silence(period) => {
                    let mut byte = [0u8; 1];
                    match tokio::time::timeout(period, read.read(&mut byte)).await {
                        Err(_) => {}
                        Ok(Ok(0)) => panic!("the client closed during a silence"),
                        Ok(_) => panic!(
                            "the client sent {:?} when it should have waited; before: {:?}",
                            byte[0] as char,
                            String::from_utf8_lossy(&seen)
                        ),
                    }
                }
                Step::Close => {
                    let _ = write.shutdown().await;
                    drop(write);
                    let mut rest = Vec::new();
                    let _ = read.read_to_end(&mut rest).await;
                    seen.extend_from_slice(&rest);
                    return seen;
                }
            }
        }
        // Then record whatever comes until the client closes.
        let mut rest = Vec::new();
        let _ = read.read_to_end(&mut rest).await;
        seen.extend_from_slice(&rest);
        seen
    });
    (client, Server { handle })
}

/// The endpoint the tests use.
pub fn endpoint() -> Endpoint {
    Endpoint::new(
        Protocol::Pop3,
        "pop.test.invalid",
        Security::DangerousPlaintext,
    )
}

/// The greeting and the CAPA exchange, with these capability lines (`None`: the server has
/// no CAPA and answers `-ERR`).
pub fn opening(caps: Option<&[&str]>) -> Vec<Step> {
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
pub async fn session(
    caps: Option<&[&str]>,
    script: Vec<Step>,
) -> (Pop3Session<DuplexStream>, Server) {
    session_with_buffer(caps, script, 64 * 1024).await
}

/// As [`session`], with a duplex buffer of `buffer` bytes.
pub async fn session_with_buffer(
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
pub const CAPS: &[&str] = &[
    "TOP",
    "UIDL",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "USER",
    "SASL PLAIN LOGIN",
];

/// The same with PIPELINING.
pub const CAPS_PIPELINING: &[&str] = &[
    "TOP",
    "UIDL",
    "RESP-CODES",
    "PIPELINING",
    "USER",
    "SASL PLAIN",
];

/// Capabilities for transaction tests: USER/PASS only.
pub const TX_CAPS: &[&str] = &["USER", "TOP", "UIDL", "RESP-CODES"];

/// The same with PIPELINING.
pub const TX_CAPS_PIPELINING: &[&str] = &["USER", "TOP", "UIDL", "RESP-CODES", "PIPELINING"];

/// The password the tests use.
pub const PASSWORD: &str = "s3cret pw";

/// `USER bob` / `PASS …` / the CAPA refresh after login, all accepted.
pub fn login_steps(caps: &[&str]) -> Vec<Step> {
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
pub async fn logged_in(caps: &[&str], script: Vec<Step>) -> (Pop3Session<DuplexStream>, Server) {
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
