//! Large bodies stream through a [`Connection`] in chunks: the read buffer stays small whatever
//! the message size, chunks are handed out without copying, and the codec's limits hold. And
//! the one buffer never carries a byte across the TLS upgrade.
#![allow(clippy::unwrap_used)]

use std::ops::Range;
use std::time::Duration;

use mailcat_codec::imap::{Event, Response, ResponseDecoder};
use mailcat_codec::{Decode, DecodeError, Limits};
use mailcat_transport::{
    Connection, Endpoint, Error, MailStream, Protocol, Security, Step, Timeouts, TlsSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// What one frame was, with a body chunk given as its place in the frame's bytes.
enum Item {
    Chunk(Range<usize>),
    Response(Response<'static>),
    Other,
}

fn connection(client: DuplexStream) -> Connection<DuplexStream> {
    let endpoint = Endpoint::new(Protocol::Imap, "test.invalid", Security::DangerousPlaintext);
    Connection::new(
        MailStream::Plain(client),
        endpoint,
        Timeouts::uniform(Duration::from_secs(5)),
    )
}

fn decode(decoder: &mut ResponseDecoder, buf: &[u8]) -> Result<(usize, Item), DecodeError> {
    let (used, event) = Decode::decode(decoder, buf).into_result()?;
    let item = match event {
        Event::BodyChunk(range) => Item::Chunk(range),
        Event::Response(response) => Item::Response(response.into_owned()),
        _ => Item::Other,
    };
    Ok((used, item))
}

fn pattern(offset: usize) -> u8 {
    (offset % 251) as u8
}

#[tokio::test]
async fn a_64_mib_fetch_body_streams_in_bounded_memory() {
    const LEN: usize = 64 << 20;
    let (client, mut server) = tokio::io::duplex(256 * 1024);
    let writer = tokio::spawn(async move {
        server
            .write_all(format!("* 1 FETCH (UID 9 BODY[] {{{LEN}}}\r\n").as_bytes())
            .await
            .unwrap();
        let mut offset = 0;
        while offset < LEN {
            let piece: Vec<u8> = (offset..(offset + (1 << 20)).min(LEN))
                .map(pattern)
                .collect();
            server.write_all(&piece).await.unwrap();
            offset += piece.len();
        }
        server
            .write_all(b" FLAGS (\\Seen))\r\nA1 OK done\r\n")
            .await
            .unwrap();
        server
    });
    let mut conn = connection(client);
    let mut decoder = ResponseDecoder::new(Limits::imap());
    let (mut received, mut largest_buffer) = (0usize, 0usize);
    let fetch = loop {
        let (item, raw) = conn
            .read_frame(Step::Response, &mut decoder, decode, |d, rest| {
                d.end_of_input(rest)
            })
            .await
            .unwrap();
        largest_buffer = largest_buffer.max(conn.buffered());
        match item {
            Item::Chunk(range) => {
                let chunk = raw.slice(range); // zero-copy: a view of the bytes read
                assert!(
                    chunk
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| b == pattern(received + i)),
                    "corrupt at {received}"
                );
                received += chunk.len();
            }
            Item::Response(response) => break response,
            Item::Other => {}
        }
    };
    assert_eq!(received, LEN);
    assert!(
        largest_buffer < 1 << 20,
        "{largest_buffer} bytes were buffered at once"
    );
    match fetch {
        Response::Data(mailcat_codec::imap::Data::Fetch(fetch)) => {
            assert_eq!(fetch.uid(), Some(9));
            let (_, _, data) = fetch.sections().next().unwrap();
            assert_eq!(data.len(), LEN as u64);
        }
        other => panic!("{other:?}"),
    }
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn a_literal_over_the_limit_is_refused_before_it_arrives() {
    let (client, mut server) = tokio::io::duplex(4096);
    server
        .write_all(b"* 1 FETCH (BODY[] {99999999999}\r\n")
        .await
        .unwrap();
    let mut conn = connection(client);
    let mut decoder = ResponseDecoder::new(Limits::imap());
    let result = conn
        .read_frame(Step::Response, &mut decoder, decode, |d, rest| {
            d.end_of_input(rest)
        })
        .await;
    match result {
        Err(Error::Protocol {
            source:
                DecodeError::LiteralTooLarge {
                    len: 99_999_999_999,
                    ..
                },
            ..
        }) => {}
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
}

#[tokio::test]
async fn a_connection_closed_mid_literal_says_so() {
    let (client, mut server) = tokio::io::duplex(4096);
    server
        .write_all(b"* 1 FETCH (BODY[] {100}\r\nonly part")
        .await
        .unwrap();
    drop(server);
    let mut conn = connection(client);
    let mut decoder = ResponseDecoder::new(Limits::imap());
    let result = conn
        .read_frame(Step::Response, &mut decoder, decode, |d, rest| {
            d.end_of_input(rest)
        })
        .await;
    match result {
        Err(Error::Closed {
            detail: Some(DecodeError::Truncated { inside, .. }),
            ..
        }) => {
            assert!(inside.contains("literal"), "{inside}");
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
}

#[tokio::test]
async fn the_tls_upgrade_refuses_bytes_buffered_before_it() {
    // After the STARTTLS go-ahead the server says nothing until the handshake: bytes already
    // buffered were injected on the path, to be read as the first answer over TLS
    // (CVE-2021-22947). The upgrade refuses them before a ClientHello goes out.
    let (client, mut server) = tokio::io::duplex(1024);
    let mut connection = connection(client);
    server
        .write_all(b"A0002 OK go ahead\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
        .await
        .unwrap();
    while !connection.input().ends_with(b"PLAIN\r\n") {
        connection.fill(Step::StartTls).await.unwrap();
    }
    let go_ahead = connection.input().iter().position(|&b| b == b'\n').unwrap() + 1;
    connection.consume(go_ahead);
    let planted = connection.buffered();
    let config = TlsSettings::default().client_config().unwrap();
    let error = connection.upgrade_to_tls(config).await.unwrap_err();
    mailcat_tests::assert_matches!(error, Error::StartTlsInjection { command: "STARTTLS", buffered, .. } if buffered == planted);
    let mut sent = Vec::new();
    server.read_to_end(&mut sent).await.unwrap();
    assert!(sent.is_empty(), "no ClientHello: {sent:?}");
}
