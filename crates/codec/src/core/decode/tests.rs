//! The contract, checked on the three protocols' decoders with realistic transcripts: any way
//! the bytes arrive gives the same events as the whole.

use std::ops::Range;

use proptest::prelude::*;

use super::check::{
    assert_same_at_every_split, feed, ImapSession, Pop3Session, Script, Seen, Session, SmtpSession,
    Transcript,
};
use super::{Decode, Decoded};
use crate::pop3::{Body, Expect};
use crate::{DecodeError, Limits};

/// IMAP with bodies over 40 bytes streamed, so a transcript holds both kinds of literal.
fn imap_limits() -> Limits {
    Limits {
        stream_threshold: 40,
        ..Limits::imap()
    }
}

/// A message whose lines look like IMAP responses and POP3/SMTP terminators: inside a literal
/// they are body bytes, nothing else.
const MESSAGE: &[u8] =
    b"From: a@example.org\r\nSubject: literal\r\n\r\nA3 OK fake\r\n* BYE\r\n.\r\n)\r\n";

/// A session from the greeting to LOGOUT, with a FETCH of two messages: a small header
/// literal kept in the response, a body literal streamed, a literal in ENVELOPE.
fn imap_transcript() -> Vec<u8> {
    let mut wire = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE AUTH=PLAIN] Dovecot ready.\r\n\
A1 OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE ESEARCH] Logged in\r\n\
* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
* 2 EXISTS\r\n\
* OK [UIDVALIDITY 1700000000] UIDs valid\r\n\
* OK [UIDNEXT 12] Predicted next UID\r\n\
A2 OK [READ-WRITE] Select completed.\r\n"
        .to_vec();
    wire.extend_from_slice(
        format!(
            "* 1 FETCH (UID 10 RFC822.SIZE {} FLAGS (\\Seen) BODY[HEADER.FIELDS (SUBJECT)] {{20}}\r\nSubject: literal\r\n\r\n BODY[] {{{}}}\r\n",
            MESSAGE.len(),
            MESSAGE.len()
        )
        .as_bytes(),
    );
    wire.extend_from_slice(MESSAGE);
    wire.extend_from_slice(b")\r\n");
    wire.extend_from_slice(
        format!(
            "* 2 FETCH (UID 11 ENVELOPE (NIL {{5}}\r\nhello NIL NIL NIL NIL NIL NIL NIL NIL) BODY[] {{{}}}\r\n",
            MESSAGE.len()
        )
        .as_bytes(),
    );
    wire.extend_from_slice(MESSAGE);
    wire.extend_from_slice(b" FLAGS ())\r\n* SEARCH 1 2\r\nA3 OK Fetch completed (0.001 + 0.000 secs).\r\n* BYE Logging out\r\nA4 OK Logout completed.\r\n");
    wire
}

#[test]
fn imap_fetch_with_literals_is_the_same_however_it_arrives() {
    let run = assert_same_at_every_split(&ImapSession::new(imap_limits()), &imap_transcript());
    assert_eq!(run.end, Ok(()));
    let seen = &run.transcript.seen;
    // Both bodies were streamed, byte for byte, and nothing else was taken as body bytes.
    let bodies: Vec<&Vec<u8>> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Bytes(b) => Some(b),
            Seen::Item(_) => None,
        })
        .collect();
    assert_eq!(bodies, [MESSAGE, MESSAGE]);
    let items = |needle: &str| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Item(i) if i.contains(needle)))
            .count()
    };
    assert_eq!(items("BodyStart"), 2);
    let streamed = format!("Streamed {{ len: {} }}", MESSAGE.len());
    assert_eq!(items(&streamed), 2, "{seen:#?}");
    // The small literals stayed in their responses (whose bytes print as numbers).
    let bytes = |b: &[u8]| format!("{b:?}").trim_matches(['[', ']']).to_owned();
    assert_eq!(items(&bytes(b"Subject: literal\r\n\r\n")), 1);
    assert_eq!(items(&bytes(b"hello")), 1);
    // 8 before the FETCHes; per FETCH a start, its bytes, the end, the response; then 4.
    assert_eq!(seen.len(), 8 + 2 * 4 + 4, "{seen:#?}");
}

const RETR: Expect = Expect::MultiLine(Body::Chunks);
const LIST: Expect = Expect::MultiLine(Body::Lines);

/// The message as the server sends it in RETR: a line of one dot, lines starting with dots,
/// a line that is a dot and a space, each stuffed.
const STUFFED: &[u8] = b"Subject: dots\r\n\r\n..\r\n...leading\r\n.. \r\nend.\r\n.\r\n";
const UNSTUFFED: &[u8] = b"Subject: dots\r\n\r\n.\r\n..leading\r\n. \r\nend.\r\n";

/// A POP3 session: greeting, CAPA, SASL PLAIN, STAT, LIST, UIDL, RETR of a missing and a
/// present message, TOP, QUIT. `script` is what each reply answers.
fn pop3_transcript() -> (Vec<u8>, Vec<Expect>) {
    let mut wire = b"+OK Dovecot ready. <1896.697170952@dbc.mtview.us>\r\n\
+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nSASL PLAIN\r\n.\r\n\
+ \r\n+OK [AUTH] Logged in.\r\n\
+OK 2 320\r\n\
+OK 2 messages:\r\n1 120\r\n2 200\r\n.\r\n\
+OK\r\n1 000001b45a7c2e5d\r\n2 .dotted-uid\r\n.\r\n\
-ERR [SYS/PERM] There's no message 9.\r\n\
+OK 120 octets\r\n"
        .to_vec();
    wire.extend_from_slice(STUFFED);
    wire.extend_from_slice(b"+OK\r\nSubject: dots\r\n\r\n..\r\n.\r\n+OK Logging out.\r\n");
    let script = vec![
        Expect::SingleLine,
        LIST,
        Expect::SaslContinuation,
        Expect::SaslContinuation,
        Expect::SingleLine,
        LIST,
        LIST,
        RETR,
        RETR,
        RETR,
        Expect::SingleLine,
    ];
    (wire, script)
}

#[test]
fn pop3_retr_with_dot_stuffing_is_the_same_however_it_arrives() {
    let (wire, script) = pop3_transcript();
    let run = assert_same_at_every_split(
        &Pop3Session::new(Limits::pop3(), Script::List(script)),
        &wire,
    );
    assert_eq!(run.end, Ok(()));
    let seen = &run.transcript.seen;
    let bodies: Vec<&Vec<u8>> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Bytes(b) => Some(b),
            Seen::Item(_) => None,
        })
        .collect();
    assert_eq!(bodies, [UNSTUFFED, b"Subject: dots\r\n\r\n.\r\n"]);
    let item = |text: &str| Seen::Item(text.to_owned());
    assert!(seen.contains(&item("continuation ")));
    assert!(seen.contains(&item("line 1 000001b45a7c2e5d")));
    assert!(seen.contains(&item("line 2 .dotted-uid")));
    assert_eq!(seen.iter().filter(|s| **s == item("end")).count(), 5);
    assert_eq!(seen.len(), 28, "{seen:#?}");
}

/// An SMTP submission: a multi-line greeting and EHLO, AUTH PLAIN, one message, QUIT.
const SMTP_TRANSCRIPT: &[u8] = b"220-mail.example.org ESMTP Postfix\r\n220 No UCE\r\n\
250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n\
250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n\
334 \r\n235 2.7.0 Authentication successful\r\n\
250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
250 2.0.0 Ok: queued as 4XYZ1234\r\n221 2.0.0 Bye\r\n";

#[test]
fn smtp_multi_line_ehlo_is_the_same_however_it_arrives() {
    let run = assert_same_at_every_split(&SmtpSession::new(Limits::smtp()), SMTP_TRANSCRIPT);
    assert_eq!(run.end, Ok(()));
    let seen = &run.transcript.seen;
    assert_eq!(seen.len(), 9, "{seen:#?}");
    let Seen::Item(ehlo) = &seen[1] else {
        panic!("{seen:?}")
    };
    assert!(ehlo.starts_with("Reply { code: ReplyCode(250)"), "{ehlo}");
    assert_eq!(ehlo.matches("[").count(), 11, "eleven lines: {ehlo}");
}

#[test]
fn a_stream_cut_inside_an_item_ends_the_same_way_however_it_arrives() {
    let imap = imap_transcript();
    // Inside the streamed body of the first FETCH.
    let cut = imap.windows(5).position(|w| w == b"A3 OK").unwrap_or(0);
    let run = assert_same_at_every_split(&ImapSession::new(imap_limits()), &imap[..cut]);
    assert!(
        matches!(run.end, Err(DecodeError::Truncated { inside, .. }) if inside.starts_with("a literal")),
        "{:?}",
        run.end
    );
    let (pop3, script) = pop3_transcript();
    let cut = pop3.windows(8).position(|w| w == b"leading\r").unwrap_or(0);
    let run = assert_same_at_every_split(
        &Pop3Session::new(Limits::pop3(), Script::List(script)),
        &pop3[..cut],
    );
    assert!(
        matches!(run.end, Err(DecodeError::Truncated { .. })),
        "{:?}",
        run.end
    );
    let run = assert_same_at_every_split(&SmtpSession::new(Limits::smtp()), &SMTP_TRANSCRIPT[..60]);
    assert_eq!(
        run.end,
        Err(DecodeError::Truncated {
            offset: 0,
            inside: "an SMTP reply"
        })
    );
}

#[test]
fn body_bytes_are_ranges_of_the_input_within_what_was_consumed() {
    let mut decoder = crate::pop3::Decoder::new(Limits::pop3());
    decoder.expect(RETR);
    let input = b"+OK\r\n..x\r\n.\r\n";
    let Decoded::Event { consumed, .. } = Decode::decode(&mut decoder, input) else {
        panic!()
    };
    let rest = &input[consumed..];
    match Decode::decode(&mut decoder, rest) {
        Decoded::Event {
            consumed: 5,
            event: crate::pop3::Event::BodyChunk(range),
        } => {
            // The stuffed dot is left out: the range starts after it.
            assert_eq!(range, 1..5);
            assert_eq!(&rest[range], b".x\r\n");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn incomplete_says_how_far_the_item_may_go() {
    let mut imap = crate::imap::ResponseDecoder::new(Limits::imap());
    assert_eq!(
        Decode::decode(&mut imap, b"* 1 FETCH (BODY[HEADER] {10}\r\nabc"),
        Decoded::Incomplete {
            // The line after the literal ends within a line's length of the literal's end.
            bound: 30 + 10 + Limits::imap().max_line
        }
    );
    let mut pop3 = crate::pop3::Decoder::new(Limits::pop3());
    assert_eq!(
        Decode::decode(&mut pop3, b"+OK hel"),
        Decoded::Incomplete {
            bound: Limits::pop3().max_line
        }
    );
    let mut smtp = crate::smtp::ReplyDecoder::new(Limits::smtp());
    assert_eq!(
        Decode::decode(&mut smtp, b"250-first\r\n250 sec"),
        Decoded::Incomplete { bound: 11 + 512 }
    );
}

#[test]
fn end_of_input_is_clean_only_between_items() {
    let mut imap = crate::imap::ResponseDecoder::new(imap_limits());
    assert_eq!(Decode::end_of_input(&imap, b""), Ok(()));
    assert!(Decode::end_of_input(&imap, b"* 1 EXI").is_err());
    let head = b"* 1 FETCH (BODY[] {100}\r\n";
    crate::assert_matches!(
        Decode::decode(&mut imap, head),
        Decoded::Event { consumed, .. } if consumed == head.len()
    );
    // Nothing unread, but the body is not over.
    assert!(Decode::end_of_input(&imap, b"").is_err());
    let smtp = crate::smtp::ReplyDecoder::new(Limits::smtp());
    assert_eq!(Decode::end_of_input(&smtp, b""), Ok(()));
    assert!(Decode::end_of_input(&smtp, b"250-a\r\n").is_err());
}

/// A decoder that gets the contract wrong: it hands out whatever it has as one event, so what
/// it says depends on how the bytes arrived.
#[derive(Debug, Clone, Default)]
struct Careless;

impl Decode for Careless {
    type Event<'a> = Range<usize>;

    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<Range<usize>> {
        if input.is_empty() {
            Decoded::Incomplete { bound: 1 }
        } else {
            Decoded::Event {
                consumed: input.len(),
                event: 0..input.len(),
            }
        }
    }

    fn end_of_input(&self, _: &[u8]) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl Session for Careless {
    type Decoder = Self;

    fn decoder(&self) -> Self {
        Self
    }

    fn record(&mut self, event: Range<usize>, consumed: &[u8], out: &mut Transcript) {
        out.item(crate::core::text::escape_bytes(&consumed[event]));
    }
}

#[test]
#[should_panic(expected = "input cut at byte")]
fn the_split_check_catches_a_decoder_that_depends_on_how_bytes_arrive() {
    assert_same_at_every_split(&Careless, b"two\r\nlines\r\n");
}

/// A decoder whose bound is no bound.
#[derive(Debug, Clone, Default)]
struct Unbounded;

impl Decode for Unbounded {
    type Event<'a> = ();

    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<()> {
        Decoded::Incomplete { bound: input.len() }
    }

    fn end_of_input(&self, _: &[u8]) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl Session for Unbounded {
    type Decoder = Self;

    fn decoder(&self) -> Self {
        Self
    }

    fn record(&mut self, (): (), _: &[u8], _: &mut Transcript) {}
}

#[test]
#[should_panic(expected = "but the bound is")]
fn the_check_catches_a_bound_the_input_already_reaches() {
    feed(&mut Unbounded, b"abc", &[]);
}

proptest! {
    #[test]
    fn any_cuts_give_the_same_events(cuts in proptest::collection::vec(0usize..4000, 0..16)) {
        let imap = imap_transcript();
        let session = ImapSession::new(imap_limits());
        prop_assert_eq!(feed(&mut session.clone(), &imap, &cuts), feed(&mut session.clone(), &imap, &[]));
        let (pop3, script) = pop3_transcript();
        let session = Pop3Session::new(Limits::pop3(), Script::List(script));
        prop_assert_eq!(feed(&mut session.clone(), &pop3, &cuts), feed(&mut session.clone(), &pop3, &[]));
        let session = SmtpSession::new(Limits::smtp());
        prop_assert_eq!(
            feed(&mut session.clone(), SMTP_TRANSCRIPT, &cuts),
            feed(&mut session.clone(), SMTP_TRANSCRIPT, &[])
        );
    }

    /// Garbage, cut anywhere, through each decoder: the contract's checks in `feed` hold.
    #[test]
    fn garbage_keeps_the_contract(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(0usize..300, 0..6),
        seed in any::<u8>(),
    ) {
        let small = Limits { max_line: 40, stream_threshold: 8, max_lines: 4, ..Limits::imap() };
        feed(&mut ImapSession::new(small), &bytes, &cuts);
        let small = Limits { max_line: 40, max_lines: 4, ..Limits::pop3() };
        feed(&mut Pop3Session::new(small, Script::Seeded(seed)), &bytes, &cuts);
        let small = Limits { max_line: 40, max_lines: 4, max_response: 100, ..Limits::smtp() };
        feed(&mut SmtpSession::new(small), &bytes, &cuts);
    }
}
