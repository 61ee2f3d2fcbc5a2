//! Bodies of the fuzz targets, shared by `fuzz/` and the corpus replay test in `tests/`.
//!
//! Each body checks properties, not only the absence of panics: a decoder fed the same bytes in
//! two pieces says the same thing as when fed them at once, a stuffed body unstuffs back to the
//! original, an encoded command is read by a server as exactly one command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::core::dot::{self, DotStuffer, DotUnstuffer, Unstuffed};
use crate::{imap, pop3, smtp, DecodeError, Limits};

/// Small limits so the fuzzer reaches the limit checks quickly.
fn small_limits(base: Limits) -> Limits {
    let mut limits = base;
    limits.max_line = limits.max_line.min(300);
    limits.max_literal = limits.max_literal.min(2000);
    limits.stream_threshold = limits.stream_threshold.min(64);
    limits.max_message = limits.max_message.min(100_000);
    limits.max_response = limits.max_response.min(10_000);
    limits.max_lines = limits.max_lines.min(200);
    limits
}

/// The first byte chooses a split point (and options); the rest is the input.
fn split_input(data: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&first, input) = data.split_first()?;
    let cut = if input.is_empty() {
        0
    } else {
        usize::from(first) * 7 % (input.len() + 1)
    };
    Some((first, input, cut))
}

/// Drives a stateful decoder over `input` delivered in pieces (the first `cut` bytes, then the
/// rest), the way a transport does; returns the transcript of events and whether it ended well.
///
/// Only success is compared between two runs, not which error: a decoder may notice one of two
/// problems first depending on how much it has seen (a bad first byte before a bare LF), and
/// either report is right.
fn drive<D>(
    input: &[u8],
    cut: usize,
    mut step: D,
    mut finish: impl FnMut(&[u8]) -> Result<(), DecodeError>,
) -> (Vec<String>, bool)
where
    D: FnMut(&[u8], &mut Vec<String>) -> Result<usize, DecodeError>,
{
    let mut events = Vec::new();
    let mut available = cut.min(input.len());
    let mut start = 0;
    loop {
        match step(&input[start..available], &mut events) {
            Ok(used) => {
                assert!(
                    used <= available - start,
                    "decoder claims more bytes than it was given"
                );
                start += used;
            }
            Err(DecodeError::Incomplete) if available < input.len() => available = input.len(),
            Err(DecodeError::Incomplete) => return (events, finish(&input[start..]).is_ok()),
            Err(_) => return (events, false),
        }
    }
}

/// Adjacent body chunks may be cut differently depending on how bytes arrived: merge them.
fn push_chunk(events: &mut Vec<String>, chunk: &[u8]) {
    let text = format!("chunk:{}", crate::core::text::escape_bytes(chunk));
    match events.last_mut() {
        Some(last) if last.starts_with("chunk:") => last.push_str(&text["chunk:".len()..]),
        _ => events.push(text),
    }
}

/// POP3: a whole session's replies, with the expectation for each reply chosen from the input.
pub fn pop3_response(data: &[u8]) {
    let Some((first, input, cut)) = split_input(data) else {
        return;
    };
    let run = |cut: usize| {
        let mut decoder = pop3::Decoder::new(small_limits(Limits::pop3()));
        let mut replies = 0u32;
        let decoder = std::cell::RefCell::new(&mut decoder);
        drive(
            input,
            cut,
            |buf, events| {
                let mut decoder = decoder.borrow_mut();
                let (used, event) = decoder.decode(buf)?;
                match event {
                    pop3::Event::BodyChunk(chunk) => push_chunk(events, chunk),
                    other => events.push(format!("{other:?}")),
                }
                if !decoder.is_in_body() {
                    // Choose what the next command expects, as a session would.
                    replies += 1;
                    let expect = match (u32::from(first) >> (replies % 8)) & 3 {
                        0 => pop3::Expect::SingleLine,
                        1 => pop3::Expect::MultiLine(pop3::Body::Chunks),
                        2 => pop3::Expect::MultiLine(pop3::Body::Lines),
                        _ => pop3::Expect::SaslContinuation,
                    };
                    decoder.expect(expect);
                }
                Ok(used)
            },
            |rest| decoder.borrow().end_of_input(rest),
        )
    };
    assert_eq!(
        run(input.len()),
        run(cut),
        "POP3 decoding depends on how the bytes arrived"
    );
}

/// SMTP: replies one after the other; a prefix of a reply is never anything but Incomplete.
pub fn smtp_reply(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let limits = small_limits(Limits::smtp());
    let run = |cut: usize| {
        drive(
            input,
            cut,
            |buf, events| {
                let (used, reply) = smtp::parse_reply(buf, &limits)?;
                assert!(used > 0);
                if let Ok(extensions) = smtp::Extensions::from_reply(&reply) {
                    let _ = (extensions.size(), extensions.auth_mechanisms().len());
                }
                events.push(format!("{:?}", reply.into_owned()));
                Ok(used)
            },
            smtp::end_of_input,
        )
    };
    assert_eq!(
        run(input.len()),
        run(cut),
        "SMTP decoding depends on how the bytes arrived"
    );
}

/// IMAP: responses one after the other through the streaming decoder.
pub fn imap_response(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let run = |cut: usize| {
        let mut decoder = imap::ResponseDecoder::new(small_limits(Limits::imap()));
        let decoder = std::cell::RefCell::new(&mut decoder);
        // The pieces of a long SEARCH or ESEARCH line: what counts is all its numbers (or
        // ranges), merged into the response that closes the line; each ESEARCH piece must
        // carry the line's correlator and UID flag.
        let search = std::cell::RefCell::new(Vec::new());
        let ranges = std::cell::RefCell::new(Vec::new());
        let heads = std::cell::RefCell::new(Vec::new());
        drive(
            input,
            cut,
            |buf, events| {
                let mut decoder = decoder.borrow_mut();
                let (used, event) = decoder.decode(buf)?;
                match event {
                    imap::Event::BodyChunk(chunk) => push_chunk(events, chunk),
                    imap::Event::SearchNumbers(numbers) => search.borrow_mut().extend(numbers),
                    imap::Event::ESearchRanges { tag, uid, set } => {
                        heads.borrow_mut().push((tag.map(<[u8]>::to_vec), uid));
                        ranges.borrow_mut().extend_from_slice(set.ranges());
                    }
                    imap::Event::Response(response) => {
                        let mut response = response.into_owned();
                        let mut pieces = search.borrow_mut();
                        if let imap::Response::Data(imap::Data::Search { numbers, .. }) =
                            &mut response
                        {
                            numbers.splice(0..0, pieces.drain(..));
                        }
                        let mut pieces = ranges.borrow_mut();
                        if let imap::Response::Data(imap::Data::ESearch(e)) = &mut response {
                            for (tag, uid) in heads.borrow_mut().drain(..) {
                                assert_eq!(tag.as_deref(), e.tag.as_deref(), "piece correlator");
                                assert_eq!(uid, e.uid, "piece UID flag");
                            }
                            if let Some(imap::ESearchItem::All(set)) = e
                                .items
                                .iter_mut()
                                .find(|i| matches!(i, imap::ESearchItem::All(_)))
                            {
                                pieces.extend_from_slice(set.ranges());
                                *set = imap::SequenceSet::from_ranges(std::mem::take(&mut *pieces))
                                    .expect("an ALL set has ranges");
                            }
                        }
                        assert!(pieces.is_empty(), "ESEARCH pieces without their line's end");
                        events.push(format!("{response:?}"))
                    }
                    other => events.push(format!("{other:?}")),
                }
                Ok(used)
            },
            |rest| {
                let decoder = decoder.borrow();
                if rest.is_empty() && !decoder.is_streaming() {
                    Ok(())
                } else {
                    Err(decoder.end_of_input(rest))
                }
            },
        )
    };
    assert_eq!(
        run(input.len()),
        run(cut),
        "IMAP decoding depends on how the bytes arrived"
    );
}

/// Dot-unstuffing: streaming in two pieces gives what one buffer gives.
pub fn dot_unstuff(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let run = |cut: usize| {
        let mut unstuffer = DotUnstuffer::new();
        let unstuffer = std::cell::RefCell::new(&mut unstuffer);
        drive(
            input,
            cut,
            |buf, events| {
                let (used, piece) = unstuffer.borrow_mut().decode(buf)?;
                match piece {
                    Unstuffed::Data(chunk) => push_chunk(events, chunk),
                    Unstuffed::End => events.push("end".to_owned()),
                }
                Ok(used)
            },
            |_| Err(unstuffer.borrow().end_of_input()),
        )
    };
    let whole = run(input.len());
    assert_eq!(
        whole,
        run(cut),
        "unstuffing depends on how the bytes arrived"
    );
    // The convenience function agrees with the streaming decoder.
    if let Ok((body, _)) = dot::unstuff_all(input) {
        let streamed: Vec<u8> = whole
            .0
            .iter()
            .take_while(|e| *e != "end")
            .filter_map(|e| e.strip_prefix("chunk:"))
            .collect::<String>()
            .into_bytes();
        assert_eq!(
            crate::core::text::escape_bytes(&body).into_bytes(),
            streamed
        );
    }
}

/// Dot-stuffing then unstuffing gives the body back with CRLF line endings, whatever the chunking.
pub fn dot_stuff_roundtrip(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let whole = dot::stuff_all(input);
    let mut pieces = Vec::new();
    let mut stuffer = DotStuffer::new();
    stuffer.push(&input[..cut], &mut pieces);
    stuffer.push(&input[cut..], &mut pieces);
    stuffer.finish(&mut pieces);
    assert_eq!(
        whole, pieces,
        "stuffing depends on how the body was chunked"
    );
    for (i, &b) in whole.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(whole.get(i + 1), Some(&b'\n'), "bare CR in stuffed output"),
            b'\n' => assert!(i > 0 && whole[i - 1] == b'\r', "bare LF in stuffed output"),
            _ => {}
        }
    }
    let (body, used) = dot::unstuff_all(&whole).expect("our own stuffing unstuffs");
    assert_eq!(used, whole.len(), "the terminator comes only at the end");
    assert_eq!(body, normalise_line_endings(input));
}

/// CR, LF and CRLF become CRLF; a body that does not end with a line ending gets one.
fn normalise_line_endings(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 2);
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if input.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Command encoding: any user value yields an error or exactly one command on the wire, and the
/// value comes back from it unchanged.
pub fn command_encode(data: &[u8]) {
    use imap::command::wire_check::{read_astring, server_read};
    use imap::command::{Command, EncodeOptions, Mailbox, SelectParams, Tag};

    let Some((first, input, cut)) = split_input(data) else {
        return;
    };
    let (user, secret) = input.split_at(cut);
    let options = EncodeOptions {
        literal_plus: first & 1 != 0,
        literal_minus: first & 2 != 0,
        utf8_accept: first & 4 != 0,
    };
    let tag = Tag::new("A1").expect("valid tag");

    // IMAP LOGIN: the password may hold any byte but NUL; it is read back exactly.
    let username = String::from_utf8_lossy(user).into_owned();
    let login = Command::Login {
        username,
        password: imap::command::Secret::new(secret),
    };
    if let Ok(encoded) = login.encode(&tag, &options) {
        let wire = encoded.to_bytes();
        assert_eq!(
            server_read(&wire).0,
            1,
            "LOGIN became more than one command"
        );
        let (_, after_user) = read_astring(&wire, b"A1 LOGIN ".len());
        let (password, end) = read_astring(&wire, after_user + 1);
        assert_eq!(password, secret);
        assert_eq!(&wire[end..], b"\r\n");
    }

    // IMAP SELECT: a mailbox name is refused or names exactly that mailbox.
    if let Ok(mailbox) = Mailbox::new(String::from_utf8_lossy(input).into_owned()) {
        let wire = Command::Select {
            mailbox,
            params: SelectParams::None,
        }
        .encode(&tag, &options)
        .unwrap()
        .to_bytes();
        assert_eq!(
            server_read(&wire).0,
            1,
            "SELECT became more than one command"
        );
    }

    // POP3 PASS and SMTP RCPT: one line or an error.
    let pass = pop3::command::Command::Pass(pop3::command::Secret::new(secret));
    if let Ok(wire) = pass.encode() {
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(wire.ends_with(b"\r\n") && !wire[..wire.len() - 2].contains(&b'\r'));
    }
    if let Ok(address) = smtp::address::Address::new(&String::from_utf8_lossy(input)) {
        let rcpt = smtp::command::Command::RcptTo {
            forward_path: address,
            parameters: Default::default(),
        };
        if let Ok(wire) = rcpt.encode() {
            assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
            assert!(!wire[..wire.len() - 2].iter().any(|&b| b == b'\r' || b == 0));
        }
    }
}
