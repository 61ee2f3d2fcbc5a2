//! Servers that are silent, slow or gone: every wait ends with an error naming the step
//! (SECURITY.md #18, #37, #38, #45), and connect/DNS failures say what to check.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use mailcat_codec::{imap, pop3, DecodeError, Limits};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Connection, Endpoint, Error, Protocol, Security, Step, TooSlow};
use support::*;
use tokio::net::TcpStream;

#[tokio::test]
async fn silent_server_times_out_in_the_greeting() {
    let server = Server::start(vec![]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    match &error {
        Error::Timeout {
            step: Step::Greeting,
            after,
            port,
            hint,
            ..
        } => {
            assert_eq!(*after, Duration::from_secs(1));
            assert_eq!(*port, endpoint.port);
            // Not a well-known port: the generic hint about implicit TLS.
            let hint = hint.as_deref().unwrap_or_default();
            assert!(hint.contains("implicit TLS"), "{hint}");
        }
        other => panic!("expected a greeting timeout, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("timed out after 1.0 s during the server greeting"),
        "{text}"
    );
    assert!(server.received().await.bytes.is_empty());
}

#[tokio::test]
async fn silent_server_after_the_tls_handshake_times_out_in_the_greeting() {
    let (client, server_config) = valid_pki();
    let server = Server::start(vec![Act::StartTls(server_config)]).await;
    let endpoint = server.endpoint(Protocol::Pop3, Security::ImplicitTls, "127.0.0.1");
    let error = err(open(&endpoint, client).await);
    assert!(
        matches!(
            error,
            Error::Timeout {
                step: Step::Greeting,
                hint: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(server.received().await.tls);
}

#[tokio::test]
async fn tls_handshake_that_never_completes_times_out() {
    // TCP accepted, ClientHello read, nothing answered (SECURITY.md #18).
    let server = Server::start(vec![]).await;
    let endpoint = server.endpoint(Protocol::Smtp, Security::ImplicitTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(
            error,
            Error::Timeout {
                step: Step::TlsHandshake,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert!(error.to_string().contains("during the TLS handshake"));
    let received = server.received().await;
    assert_eq!(
        received.bytes.first(),
        Some(&0x16),
        "a ClientHello was sent"
    );
}

#[tokio::test]
async fn drip_feeding_server_hits_the_response_deadline() {
    // One byte every 300 ms, well under the 1 s silence limit: only the 2 s deadline for the
    // whole response stops it (SECURITY.md #37).
    let mut greeting = b"* OK ".to_vec();
    greeting.extend_from_slice(&[b'x'; 200]);
    greeting.extend_from_slice(b"\r\n");
    let server = Server::start(vec![Act::Drip(greeting, Duration::from_millis(300))]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900),
        "returned before the deadline: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    match &error {
        Error::Timeout {
            step: Step::Greeting,
            after,
            hint,
            ..
        } => {
            assert_eq!(*after, Duration::from_secs(2));
            // Bytes did arrive: "the server sent no greeting" would be wrong.
            assert_eq!(*hint, None, "{error}");
        }
        other => panic!("expected a greeting timeout, got {other:?}"),
    }
    server.received().await;
}

#[tokio::test]
async fn drip_feeding_server_during_a_response() {
    let mut capability = b"* CAPABILITY IMAP4rev1".to_vec();
    capability.extend_from_slice(&[b' '; 1]);
    capability.extend_from_slice(&[b'X'; 200]);
    let server = Server::start(vec![
        send("* OK ready\r\n"),
        expect("A0001 CAPABILITY"),
        Act::Drip(capability, Duration::from_millis(250)),
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let started = Instant::now();
    let error = err(open(&endpoint, any_client_config()).await);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        matches!(
            error,
            Error::Timeout {
                step: Step::Capabilities,
                ..
            }
        ),
        "{error:?}"
    );
    server.received().await;
}

#[tokio::test]
async fn server_that_closes_mid_response() {
    let cases = [
        (Protocol::Imap, "* OK partial"),
        (Protocol::Pop3, "+OK partial"),
        (Protocol::Smtp, "220-first line\r\n220 sec"),
    ];
    for (protocol, partial) in cases {
        let server = Server::start(vec![send(partial), Act::Close]).await;
        let endpoint = server.endpoint(protocol, Security::StartTls, "127.0.0.1");
        let error = err(open(&endpoint, any_client_config()).await);
        match &error {
            Error::Closed {
                step: Step::Greeting,
                detail,
                ..
            } => assert!(detail.is_some(), "{protocol}: {error}"),
            other => panic!("{protocol}: expected Closed, got {other:?}"),
        }
        let text = error.to_string();
        assert!(
            text.contains("closed the connection during the server greeting"),
            "{text}"
        );
        server.received().await;
    }
}

#[tokio::test]
async fn server_that_closes_after_the_greeting() {
    let server = Server::start(vec![
        send("* OK ready\r\n"),
        expect("A0001 CAPABILITY"),
        Act::Close,
    ])
    .await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    assert!(
        matches!(
            error,
            Error::Closed {
                step: Step::Capabilities,
                detail: None,
                ..
            }
        ),
        "{error:?}"
    );
    server.received().await;
}

#[tokio::test]
async fn bye_greeting_is_refused_with_the_servers_words() {
    let server = Server::start(vec![send("* BYE too many connections\r\n")]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    match &error {
        Error::Refused {
            step: Step::Greeting,
            reply,
            ..
        } => assert!(reply.contains("too many connections"), "{reply}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(server.received().await.bytes.is_empty(), "nothing sent");
}

#[tokio::test]
async fn every_refusing_greeting_is_refused_before_anything_is_sent() {
    // SECURITY.md #46 (NO / BAD greetings) and the POP3 and SMTP equivalents: an error with the
    // server's words, no capability query, no authentication.
    let cases = [
        (
            Protocol::Imap,
            "* NO not accepting connections\r\n",
            "NO not accepting",
        ),
        (
            Protocol::Imap,
            "* BAD not accepting connections\r\n",
            "BAD not accepting",
        ),
        (
            Protocol::Pop3,
            "-ERR not accepting connections\r\n",
            "-ERR not accepting",
        ),
        (
            Protocol::Smtp,
            "554 5.3.2 not accepting connections\r\n",
            "554 5.3.2 not",
        ),
        (
            Protocol::Smtp,
            "421 4.3.2 not accepting connections\r\n",
            "421 4.3.2 not",
        ),
    ];
    for (protocol, greeting, words) in cases {
        let server = Server::start(vec![send(greeting)]).await;
        let endpoint = server.endpoint(protocol, Security::StartTls, "127.0.0.1");
        let error = err(open(&endpoint, any_client_config()).await);
        match &error {
            Error::Refused {
                step: Step::Greeting,
                reply,
                ..
            } => assert!(reply.contains(words), "{greeting:?}: {reply}"),
            other => panic!("{greeting:?}: expected Refused, got {other:?}"),
        }
        assert!(server.received().await.bytes.is_empty(), "{greeting:?}");
    }
}

#[tokio::test]
async fn garbage_greeting_is_a_protocol_error() {
    // SECURITY.md #46.
    let server = Server::start(vec![send("1Gdo00V4 wFaIW2WP\r\n")]).await;
    let endpoint = server.endpoint(Protocol::Imap, Security::StartTls, "127.0.0.1");
    let error = err(open(&endpoint, any_client_config()).await);
    assert!(
        matches!(
            error,
            Error::Protocol {
                step: Step::Greeting,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(server.received().await.bytes.is_empty(), "nothing sent");
}

#[tokio::test]
async fn connection_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint =
        Endpoint::new(Protocol::Imap, "127.0.0.1", Security::ImplicitTls).with_port(port);
    let error = err(open(&endpoint, any_client_config()).await);
    match &error {
        Error::ConnectionRefused { port: p, addr, .. } => {
            assert_eq!(*p, port);
            assert_eq!(addr.port(), port);
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    assert_eq!(error.step(), Some(Step::Connect));
    let text = error.to_string();
    assert!(text.contains("refused the connection"), "{text}");
    assert!(text.contains("nothing listens there"), "{text}");
}

#[tokio::test]
async fn host_in_a_top_level_domain_that_does_not_exist() {
    // `.vom` is not a TLD: whatever the resolver answers (NXDOMAIN, or no network), the error
    // is "not found" with the likely correction.
    let endpoint = Endpoint::new(Protocol::Pop3, "pop3.live.vom", Security::ImplicitTls);
    let error = err(open(&endpoint, any_client_config()).await);
    match &error {
        Error::HostNotFound { host, hint } => {
            assert_eq!(host, "pop3.live.vom");
            assert_eq!(hint.as_deref(), Some("pop3.live.com"));
        }
        other => panic!("expected HostNotFound, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("pop3.live.vom was not found"), "{text}");
    assert!(text.contains("pop3.live.com"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The throughput floor (SECURITY.md #37): a response that is many frames (a streamed body, a
// listing) is judged as a whole, from the command on, window by window.

/// A plaintext connection, opened with [`quick`] timeouts (1 s of silence, 2 s windows, the
/// default floor of 1024 bytes/s) to a server playing `script` after the capability query.
async fn opened(protocol: Protocol, script: Vec<Act>) -> (Connection<TcpStream>, Server) {
    let mut full = match protocol {
        Protocol::Imap => vec![
            send("* OK ready\r\n"),
            expect("A0001 CAPABILITY"),
            send("* CAPABILITY IMAP4rev1\r\nA0001 OK done\r\n"),
        ],
        Protocol::Pop3 => vec![
            send("+OK ready\r\n"),
            expect("CAPA"),
            send("+OK\r\nUIDL\r\n.\r\n"),
        ],
        Protocol::Smtp => unimplemented!(),
    };
    full.extend(script);
    let server = Server::start(full).await;
    let endpoint = server.endpoint(protocol, Security::DangerousPlaintext, "127.0.0.1");
    let opened = open(&endpoint, any_client_config()).await.unwrap();
    assert_eq!(opened.connection.connection().timeouts().min_rate, 1024);
    (opened.connection.into_parts().0, server)
}

/// Sends `command`, then reads an IMAP response, streamed body chunks and all, until the
/// tagged completion (returning the body's length) or an error, within a hard 8 s limit.
async fn imap_fetch(conn: &mut Connection<TcpStream>, command: &str) -> Result<u64, Error> {
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
async fn pop3_listing(conn: &mut Connection<TcpStream>, command: &str) -> Result<usize, Error> {
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

#[tokio::test]
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
    server.received().await;
}

#[tokio::test]
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
    server.received().await;
}

#[tokio::test]
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
    server.received().await;
}

#[tokio::test]
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
    server.received().await;
}

#[tokio::test]
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
    server.received().await;
}
