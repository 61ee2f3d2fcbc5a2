//! The protocol trace: `C:`/`S:` lines through `tracing`, credentials never shown, server text
//! escaped (threat model #25, #48).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mailcat_codec::DecodeError;
use mailcat_tests::trace_capture::TraceCapture;
use mailcat_transport::trace::{Redaction, TARGET};
use mailcat_transport::{Connection, MailStream, Protocol, Security, Step};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";

/// Reads one line, whatever it says.
async fn read_line<S>(connection: &mut Connection<S>) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (line, _) = connection
        .read_frame(
            Step::Response,
            &mut (),
            |_, buf| match buf.iter().position(|&b| b == b'\n') {
                Some(end) => Ok((end + 1, buf[..=end].to_vec())),
                None => Err(DecodeError::Incomplete),
            },
            |_, _| DecodeError::Truncated {
                offset: 0,
                inside: "a line",
            },
        )
        .await
        .unwrap();
    line
}

#[tokio::test]
async fn trace_shows_the_dialogue_but_never_the_password() {
    let capture = TraceCapture::start(&format!("{TARGET}=debug"));

    let plain = STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    let secret_b64 = STANDARD.encode(PASSWORD);
    let login = format!("A0001 LOGIN {USER} {PASSWORD}");
    let auth = format!("AUTH PLAIN {plain}");
    let server = Server::start(vec![
        send("* OK \x1b[31mred\x07 ready\r\n"),
        expect(&login),
        expect(&auth),
        expect(&secret_b64),
        expect(&format!("PASS {PASSWORD}")),
        send("+OK fine\r\n"),
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::DangerousPlaintext, "127.0.0.1");
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut connection = Connection::new(MailStream::Plain(tcp), endpoint, quick());

    let exchange = async {
        read_line(&mut connection).await;
        connection
            .send(format!("{login}\r\n").as_bytes(), Redaction::Normal)
            .await?;
        connection
            .send(format!("{auth}\r\n").as_bytes(), Redaction::Normal)
            .await?;
        connection
            .send(format!("{secret_b64}\r\n").as_bytes(), Redaction::Secret)
            .await?;
        connection
            .send(format!("PASS {PASSWORD}\r\n").as_bytes(), Redaction::Normal)
            .await?;
        read_line(&mut connection).await;
        Ok::<_, mailcat_transport::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("the exchange hung")
        .unwrap();
    drop(connection);
    // The bytes on the wire are unchanged: redaction is for the trace only.
    let received = server.received().await;
    assert!(received.text().contains(&login));

    let trace = capture.text();
    for line in [
        "C: A0001 LOGIN <redacted>",
        "C: AUTH PLAIN <redacted>",
        "C: PASS <redacted>",
        "S: +OK fine",
        "S: * OK \\x1b[31mred\\x07 ready",
    ] {
        assert!(
            trace.contains(line),
            "{line:?} missing from the trace:\n{trace}"
        );
    }
    // A secret's line shows nothing of it, not even its length (a password's length narrows
    // the search for it).
    assert!(
        trace.lines().any(|line| line.ends_with("C: <redacted>")),
        "the secret's line is missing from the trace:\n{trace}"
    );
    assert!(!trace.contains("redacted,"), "{trace}");
    assert!(trace.contains(TARGET), "{trace}");
    for secret in [PASSWORD, &plain, &secret_b64] {
        assert!(
            !trace.contains(secret),
            "{secret:?} leaked into the trace:\n{trace}"
        );
    }
    assert!(!trace.contains('\x1b'), "a raw ESC reached the trace");
    assert!(!trace.contains('\x07'), "a raw BEL reached the trace");
}
