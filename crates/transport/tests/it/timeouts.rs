//! Servers that drip: the throughput floor of a connection (threat model #37). The timeouts of
//! opening a connection (connect, DNS, greeting, handshake) are tested with the opening itself,
//! in `mailcat-session` (tests/it/open).
//!
//! The server plays its script over an in-memory stream on a paused clock: the seconds of
//! dripping and waiting pass at once, in the same order as on a wall clock.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::*;
use mailcat_codec::{imap, pop3, DecodeError, Limits};
use mailcat_tests::script::{serve_duplex, Server};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{
    Connection, Endpoint, Error, MailStream, Protocol, Security, Step, TooSlow,
};
use tokio::io::DuplexStream;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// The throughput floor (threat model #37): a response that is many frames (a streamed body, a
// listing) is judged as a whole, from the command on, window by window.

/// A plaintext connection with [`quick`] timeouts (1 s of silence, 2 s windows, the default
/// floor of 1024 bytes/s) to a server that greets, then plays `script`. The greeting is read
/// as one line: this crate is I/O only, the protocol is not its business.
async fn opened(protocol: Protocol, script: Vec<Act>) -> (Connection<DuplexStream>, Server) {
    let greeting = match protocol {
        Protocol::Imap => "* OK ready\r\n",
        Protocol::Pop3 => "+OK ready\r\n",
        Protocol::Smtp => unimplemented!(),
    };
    let mut full = vec![send(greeting)];
    full.extend(script);
    let (client, server) = serve_duplex(full);
    let endpoint = Endpoint::new(protocol, "127.0.0.1", Security::DangerousPlaintext);
    let mut connection = Connection::new(MailStream::Plain(client), endpoint, quick());
    assert_eq!(connection.timeouts().min_rate, 1024);
    connection
        .read_frame(
            Step::Greeting,
            &mut (),
            |_, buf| match buf.iter().position(|&b| b == b'\n') {
                Some(end) => Ok((end + 1, ())),
                None => Err(DecodeError::Incomplete),
            },
            |_, _| DecodeError::Truncated {
                offset: 0,
                inside: "a greeting",
            },
        )
        .await
        .unwrap();
    (connection, server)
}

/// Sends `command`, then reads an IMAP response, streamed body chunks and all, until the
/// tagged completion (returning the body's length) or an error, within a hard 8 s limit.
async fn imap_fetch(conn: &mut Connection<DuplexStream>, command: &str) -> Result<u64, Error> {
    conn.send(command.as_bytes(), Redaction::Normal).await?;
    let mut decoder = imap::ResponseDecoder::new(Limits::imap());
    let read = async {
        let mut body = 0;
        loop {
            let (event, _) = conn
                .read_frame(
                    Step::Response,
                    &mut decoder,
                    |d, buf| {
                        let (used, event) = d.decode(buf)?;
                        Ok((
                            used,
                            match event {
                                imap::Event::BodyChunk(chunk) => Some(chunk.len() as u64),
                                imap::Event::Response(imap::Response::Status {
                                    tag: Some(_),
                                    ..
                                }) => None,
                                _ => Some(0),
                            },
                        ))
                    },
                    |d, rest| d.end_of_input(rest),
                )
                .await?;
            match event {
                Some(n) => body += n,
                None => return Ok(body),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(8), read)
        .await
        .expect("the read did not end within the hard 8 s limit")
}

/// Sends `command`, then reads a POP3 multi-line response until its end or an error, within a
/// hard 8 s limit; returns the number of lines.
async fn pop3_listing(conn: &mut Connection<DuplexStream>, command: &str) -> Result<usize, Error> {
    conn.send(command.as_bytes(), Redaction::Normal).await?;
    let mut decoder = pop3::Decoder::new(Limits::pop3());
    decoder.expect(pop3::Expect::MultiLine(pop3::Body::Lines));
    let read = async {
        let mut lines = 0;
        loop {
            let (end, _) = conn
                .read_frame(
                    Step::Response,
                    &mut decoder,
                    |d, buf| {
                        let (used, event) = d.decode(buf)?;
                        Ok((
                            used,
                            match event {
                                pop3::Event::Line(_) => Some(false),
                                pop3::Event::End => Some(true),
                                _ => None,
                            },
                        ))
                    },
                    |d, rest| {
                        d.end_of_input(rest)
                            .err()
                            .unwrap_or(DecodeError::Truncated {
                                offset: 0,
                                inside: "a listing",
                            })
                    },
                )
                .await?;
            match end {
                Some(true) => return Ok(lines),
                Some(false) => lines += 1,
                None => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(8), read)
        .await
        .expect("the read did not end within the hard 8 s limit")
}

/// The error must be the throughput floor's timeout; returns what it says came.
fn too_slow(result: Result<impl std::fmt::Debug, Error>) -> TooSlow {
    let error = match result {
        Ok(value) => panic!("expected a timeout, but the read finished: {value:?}"),
        Err(e) => e,
    };
    match &error {
        Error::Timeout {
            step: Step::Response,
            too_slow: Some(slow),
            after,
            ..
        } => {
            assert_eq!(*after, Duration::from_secs(2), "the window's length");
            assert_eq!(slow.min_rate, 1024);
            assert!(slow.during >= Duration::from_secs(2), "{error}");
            assert!(slow.received < 2048, "{error}");
            let text = error.to_string();
            assert!(
                text.contains("timed out during the server response"),
                "{text}"
            );
            assert!(
                text.contains(&format!("sent only {} bytes in", slow.received)),
                "{text}"
            );
            assert!(text.contains("minimum of 1024 bytes/s"), "{text}");
            assert!(error.is_transient());
            *slow
        }
        other => panic!("expected a too-slow timeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn server_dripping_a_large_literal_body_is_stopped_by_the_throughput_floor() {
    // Every byte of the 200,000 is a body chunk, a frame of its own, well inside the 1 s
    // silence limit: a deadline per frame would wait 5.5 hours.
    let (mut conn, server) = opened(
        Protocol::Imap,
        vec![
            expect("A0002 FETCH 1 BODY[]"),
            send("* 1 FETCH (BODY[] {200000}\r\n"),
            Act::Drip(vec![b'x'; 200_000], Duration::from_millis(100)),
        ],
    )
    .await;
    let started = Instant::now();
    let slow = too_slow(imap_fetch(&mut conn, "A0002 FETCH 1 BODY[]\r\n").await);
    assert!(started.elapsed() < Duration::from_secs(5), "{slow:?}");
    assert!(slow.received > 0, "the server was not silent: {slow:?}");
    drop(conn);
    server.finish().await;
}

#[tokio::test(start_paused = true)]
async fn server_dripping_a_listing_line_by_line_is_stopped_by_the_throughput_floor() {
    // Short complete lines every 100 ms: every frame ends quickly, the listing never does.
    let mut script = vec![expect("UIDL"), send("+OK\r\n")];
    for n in 1..=600 {
        script.push(send(format!("{n} uid-{n}\r\n")));
        script.push(Act::Sleep(Duration::from_millis(100)));
    }
    script.push(send(".\r\n"));
    let (mut conn, server) = opened(Protocol::Pop3, script).await;
    let started = Instant::now();
    let slow = too_slow(pop3_listing(&mut conn, "UIDL\r\n").await);
    assert!(started.elapsed() < Duration::from_secs(5), "{slow:?}");
    assert!(slow.received > 100, "lines did arrive: {slow:?}");
    drop(conn);
    server.finish().await;
}

#[tokio::test(start_paused = true)]
async fn large_body_at_a_normal_pace_outlasts_many_windows() {
    // 200,000 bytes in 4 KiB writes every 60 ms (about 68 KB/s): some 3 s, more than one 2 s
    // window, in about 50 frames. A slow link, not a drip: it must finish.
    let mut script = vec![
        expect("A0002 FETCH 1 BODY[]"),
        send("* 1 FETCH (BODY[] {200000}\r\n"),
    ];
    let mut left = 200_000;
    while left > 0 {
        let piece = left.min(4096);
        script.push(send(vec![b'y'; piece]));
        script.push(Act::Sleep(Duration::from_millis(60)));
        left -= piece;
    }
    script.push(send(")\r\nA0002 OK done\r\n"));
    let (mut conn, server) = opened(Protocol::Imap, script).await;
    let started = Instant::now();
    let body = imap_fetch(&mut conn, "A0002 FETCH 1 BODY[]\r\n")
        .await
        .unwrap();
    assert_eq!(body, 200_000);
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the body must outlast one window to test anything: {:?}",
        started.elapsed()
    );
    drop(conn);
    server.finish().await;
}

#[tokio::test(start_paused = true)]
async fn slow_mobile_link_passes_the_floor() {
    // 2 KiB/s, twice the floor, for about 3.5 s: 7 KiB of listing in 64-byte lines.
    let mut script = vec![expect("LIST"), send("+OK\r\n")];
    for n in 0..112 {
        script.push(send(format!("{n:>5} {:>56}\r\n", n * 1000)));
        if n % 4 == 3 {
            script.push(Act::Sleep(Duration::from_millis(125)));
        }
    }
    script.push(send(".\r\n"));
    let (mut conn, server) = opened(Protocol::Pop3, script).await;
    let started = Instant::now();
    assert_eq!(pop3_listing(&mut conn, "LIST\r\n").await.unwrap(), 112);
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(conn);
    server.finish().await;
}

#[tokio::test(start_paused = true)]
async fn waiting_on_after_a_timeout_starts_a_fresh_window() {
    // IMAP IDLE: the client waits for news as long as it likes and ignores timeouts while
    // nothing is buffered; keepalives (`* OK still here`) are legitimate, if far below the
    // floor. Each timeout must start a new window, not fail every later read at once.
    let mut script = vec![expect("A0002 IDLE"), send("+ idling\r\n")];
    for _ in 0..9 {
        script.push(Act::Sleep(Duration::from_millis(500)));
        script.push(send("* OK still here\r\n"));
    }
    script.push(send("* 5 EXISTS\r\n"));
    let (mut conn, server) = opened(Protocol::Imap, script).await;
    conn.send(b"A0002 IDLE\r\n", Redaction::Normal)
        .await
        .unwrap();
    let mut decoder = imap::ResponseDecoder::new(Limits::imap());
    let (mut timeouts, mut keepalives) = (0, 0);
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(8), "no EXISTS came");
        let read = conn
            .read_frame(
                Step::Response,
                &mut decoder,
                |d, buf| {
                    let (used, event) = d.decode(buf)?;
                    Ok((
                        used,
                        match event {
                            imap::Event::Response(imap::Response::Data(imap::Data::Exists(5))) => {
                                "news"
                            }
                            imap::Event::Response(imap::Response::Status {
                                tag: None,
                                kind: imap::StatusKind::Ok,
                                ..
                            }) => "keepalive",
                            _ => "other",
                        },
                    ))
                },
                |d, rest| d.end_of_input(rest),
            )
            .await;
        match read {
            Ok(("news", _)) => break,
            Ok(("keepalive", _)) => keepalives += 1,
            Ok(_) => {}
            Err(Error::Timeout { .. }) if conn.buffered() == 0 => timeouts += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(keepalives, 9);
    assert!(timeouts >= 1, "4.5 s of keepalives span two windows");
    assert!(
        timeouts <= 3,
        "one timeout per window, not per read: {timeouts}"
    );
    drop(conn);
    server.finish().await;
}
