//! The POP3 response decoder: status lines, then, when the command has one, a multi-line body
//! read either in unstuffed chunks (RETR, TOP) or line by line (LIST, UIDL, CAPA).
//!
//! POP3 replies do not say whether a body follows: the session knows from the command it sent
//! and tells the decoder with [`Decoder::expect`] before the reply is read (RFC 1939 §3).

use std::ops::Range;

use crate::core::dot::DotUnstuffer;
use crate::core::line::split_line;
use crate::pop3::response::{status_line, status_prefix, Reply, StatusLine};
use crate::{Decode, DecodeError, Decoded, Limits};

/// What the next reply is, as the command that asked for it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A status line alone: the greeting, USER, PASS, APOP, STAT, DELE, NOOP, RSET, QUIT, STLS,
    /// LIST n, UIDL n.
    SingleLine,
    /// A status line and, if it is `+OK`, a body up to the `.` line: RETR, TOP, LIST, UIDL, CAPA.
    MultiLine(Body),
    /// During AUTH: a `+ ` challenge, or the final `+OK`/`-ERR` (RFC 5034).
    SaslContinuation,
}

/// How a multi-line body is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// As [`Event::BodyChunk`]s of unstuffed bytes, line endings included (RETR, TOP): memory
    /// stays bounded whatever the size; lines are not limited in length.
    Chunks,
    /// As one [`Event::Line`] per line, unstuffed, CRLF removed (LIST, UIDL, CAPA): each line is
    /// bounded by `Limits::max_line` and the count by `Limits::max_lines`.
    Lines,
}

/// One step of decoding.
///
/// `B` is how an event points at the bytes it passes on (a challenge, a body chunk, a listing
/// line): through the [`Decode`] trait, a range of the input (`Event<'a, Range<usize>>`),
/// always within the `consumed` bytes; through the older [`Decoder::decode`], a slice of it
/// (`Event<'a>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a, B = &'a [u8]> {
    /// A `+OK`/`-ERR` line. After `+OK` to an [`Expect::MultiLine`] command a body follows.
    Status(StatusLine<'a>),
    /// A SASL challenge: the base64 text after `+ ` (may be empty).
    Continuation(B),
    /// Unstuffed body bytes (in [`Body::Chunks`] mode).
    BodyChunk(B),
    /// One unstuffed body line without its CRLF (in [`Body::Lines`] mode).
    Line(B),
    /// The body's terminating `.` line was read: the reply is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a status line.
    Status,
    /// Inside a body read in chunks; `octets` handed out so far.
    Chunks {
        unstuffer: DotUnstuffer,
        octets: u64,
    },
    /// Inside a body read by lines; `lines` handed out so far.
    Lines { lines: usize },
}

/// Turns the bytes of a POP3 connection into [`Event`]s.
///
/// The caller keeps one buffer for the connection, calls [`Decoder::decode`] with all unread
/// bytes, drops the `consumed` bytes it returns, and reads more on
/// [`DecodeError::Incomplete`]. A new decoder expects the greeting (a single line). After each
/// complete reply the expectation goes back to [`Expect::SingleLine`]; set it again with
/// [`Decoder::expect`] before each reply that is not one. With PIPELINING, call it between
/// replies, in the order the commands were sent.
///
/// ```
/// use mailcat_codec::pop3::{Body, Decoder, Event, Expect};
/// use mailcat_codec::Limits;
///
/// let mut decoder = Decoder::new(Limits::pop3());
/// let mut buf: &[u8] = b"+OK ready\r\n+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n";
/// let (n, greeting) = decoder.decode(buf).unwrap();
/// let Event::Status(status) = greeting else { panic!("the greeting is a status line") };
/// assert!(status.is_ok());
/// buf = &buf[n..];
/// decoder.expect(Expect::MultiLine(Body::Lines)); // LIST
/// let mut lines = Vec::new();
/// loop {
///     let (n, event) = decoder.decode(buf).unwrap();
///     buf = &buf[n..];
///     match event {
///         Event::Line(line) => lines.push(line.to_vec()),
///         Event::End => break,
///         _ => {}
///     }
/// }
/// assert_eq!(lines, [b"1 120".to_vec(), b"2 200".to_vec()]);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    next: Expect,
    state: State,
}

impl Decoder {
    /// A decoder waiting for the greeting.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            next: Expect::SingleLine,
            state: State::Status,
        }
    }

    /// Says what the next status line answers. Called inside a body, it applies to the status
    /// line after the body.
    pub fn expect(&mut self, next: Expect) {
        self.next = next;
    }

    /// True while a multi-line body is being read.
    pub fn is_in_body(&self) -> bool {
        self.state != State::Status
    }

    /// Decodes the next event from `buf` (all unread bytes): `(consumed, event)`.
    ///
    /// Errors other than [`DecodeError::Incomplete`] are final: a status line that is not
    /// `+OK`/`-ERR` (or `+` during AUTH), a line over `max_line`, a NUL byte or a bare LF in a
    /// status or listing line, more than `max_lines` listing lines ([`DecodeError::TooManyLines`]), or
    /// a body over `max_message` bytes ([`DecodeError::LiteralTooLarge`]).
    ///
    /// The older form of [`Decode::decode`], kept for callers not yet on the contract: a thin
    /// wrapper over the same step, compiled to give the bytes passed on as slices of `buf`
    /// instead of ranges; the bound of an incomplete reply is dropped. (With the trait in scope
    /// this method still wins: call the trait's as `Decode::decode(&mut decoder, buf)`.)
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<(usize, Event<'a>), DecodeError> {
        self.step(buf, |range| &buf[range])
    }

    /// Call when the stream ended with `unread` bytes still buffered. Ending between replies is
    /// fine; inside a status line or a body it is [`DecodeError::Truncated`].
    ///
    /// The same as [`Decode::end_of_input`].
    pub fn end_of_input(&self, unread: &[u8]) -> Result<(), DecodeError> {
        match self.state {
            State::Status if unread.is_empty() => Ok(()),
            State::Status => Err(DecodeError::Truncated {
                offset: 0,
                inside: "a status line",
            }),
            State::Chunks { unstuffer, .. } => Err(unstuffer.end_of_input()),
            State::Lines { .. } => Err(DecodeError::Truncated {
                offset: 0,
                inside: "a multi-line response",
            }),
        }
    }

    /// One step in whichever state the decoder is, with the bytes an event passes on given as
    /// `bytes` makes them from their range in `buf`: the range itself for [`Decode::decode`],
    /// the slice for [`Decoder::decode`] (each gets its own copy of the code, with no
    /// conversion between them on the way out).
    fn step<'a, B>(
        &mut self,
        buf: &'a [u8],
        bytes: impl FnOnce(Range<usize>) -> B,
    ) -> Result<(usize, Event<'a, B>), DecodeError> {
        match self.state {
            State::Status => self.decode_status(buf, bytes),
            State::Chunks { unstuffer, octets } => self.decode_chunk(buf, unstuffer, octets, bytes),
            State::Lines { lines } => self.decode_line(buf, lines, bytes),
        }
    }

    /// How many bytes the item in progress can take: a status or listing line ends within
    /// `max_line` bytes (or is too long); in a body, `.` CRLF is the longest thing the
    /// unstuffer waits for.
    fn bound(&self) -> usize {
        match self.state {
            State::Status | State::Lines { .. } => self.limits.max_line,
            State::Chunks { .. } => 3,
        }
    }

    fn decode_status<'a, B>(
        &mut self,
        buf: &'a [u8],
        bytes: impl FnOnce(Range<usize>) -> B,
    ) -> Result<(usize, Event<'a, B>), DecodeError> {
        let sasl = self.next == Expect::SaslContinuation;
        let (line, consumed) = match split_line(buf, self.limits.max_line) {
            Ok(found) => found,
            Err(DecodeError::Incomplete) => {
                no_nul(buf)?;
                status_prefix(buf, sasl)?;
                return Err(DecodeError::Incomplete);
            }
            Err(e) => return Err(e),
        };
        no_nul(line)?;
        let event = match status_line(line, sasl)? {
            // The challenge runs to the end of the line.
            Reply::Continuation(text) => {
                Event::Continuation(bytes(line.len() - text.len()..line.len()))
            }
            Reply::Status(status) => {
                if let (true, Expect::MultiLine(body)) = (status.is_ok(), self.next) {
                    self.state = match body {
                        Body::Chunks => State::Chunks {
                            unstuffer: DotUnstuffer::new(),
                            octets: 0,
                        },
                        Body::Lines => State::Lines { lines: 0 },
                    };
                }
                Event::Status(status)
            }
        };
        self.next = Expect::SingleLine;
        Ok((consumed, event))
    }

    fn decode_chunk<'a, B>(
        &mut self,
        buf: &[u8],
        mut unstuffer: DotUnstuffer,
        octets: u64,
        bytes: impl FnOnce(Range<usize>) -> B,
    ) -> Result<(usize, Event<'a, B>), DecodeError> {
        match unstuffer.decode_range(buf)? {
            (consumed, Some(data)) => {
                let octets = octets.saturating_add(data.len() as u64);
                if octets > self.limits.max_message {
                    return Err(DecodeError::LiteralTooLarge {
                        offset: 0,
                        len: octets,
                        limit: self.limits.max_message,
                    });
                }
                self.state = State::Chunks { unstuffer, octets };
                Ok((consumed, Event::BodyChunk(bytes(data))))
            }
            (consumed, None) => {
                self.state = State::Status;
                Ok((consumed, Event::End))
            }
        }
    }

    fn decode_line<'a, B>(
        &mut self,
        buf: &[u8],
        lines: usize,
        bytes: impl FnOnce(Range<usize>) -> B,
    ) -> Result<(usize, Event<'a, B>), DecodeError> {
        let (line, consumed) = split_line(buf, self.limits.max_line)?;
        no_nul(line)?;
        if line == b"." {
            self.state = State::Status;
            return Ok((consumed, Event::End));
        }
        if lines >= self.limits.max_lines {
            return Err(DecodeError::TooManyLines {
                offset: 0,
                limit: self.limits.max_lines,
            });
        }
        self.state = State::Lines { lines: lines + 1 };
        // Unstuffed: a leading dot is dropped.
        let start = usize::from(line.first() == Some(&b'.'));
        Ok((consumed, Event::Line(bytes(start..line.len()))))
    }
}

/// The decode contract. An incomplete reply's bound is `max_line` for a status or listing line,
/// and 3 (a `.` CRLF line) in a body.
impl Decode for Decoder {
    type Event<'a> = Event<'a, Range<usize>>;

    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<Self::Event<'a>> {
        match self.step(input, |range| range) {
            Ok((consumed, event)) => Decoded::Event { consumed, event },
            // An incomplete step leaves the state as it was: the bound is the state's.
            Err(DecodeError::Incomplete) => Decoded::Incomplete {
                bound: self.bound(),
            },
            Err(error) => Decoded::Invalid(error),
        }
    }

    fn end_of_input(&self, unread: &[u8]) -> Result<(), DecodeError> {
        Self::end_of_input(self, unread)
    }
}

/// Refuses a NUL byte in a status or listing line: it is no text a server means, and a C client
/// would cut the line there. Message bodies (RETR, TOP) may carry any octet and are not checked.
fn no_nul(line: &[u8]) -> Result<(), DecodeError> {
    match memchr::memchr(0, line) {
        Some(offset) => Err(DecodeError::Invalid {
            offset,
            expected: "no NUL byte in a status or listing line",
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pop3::response::{ResponseCodeKind, Status};
    use proptest::prelude::*;

    /// What the session sees, owned, so runs over different splits can be compared.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Status(Status, Vec<u8>),
        Continuation(Vec<u8>),
        Body(Vec<u8>),
        Line(Vec<u8>),
        End,
    }

    /// Runs a script of expectations over `wire`, delivered in chunks cut at `cuts`. Each
    /// expectation is set before the status line of one reply. Adjacent body chunks are merged.
    fn run(
        limits: Limits,
        script: &[Expect],
        wire: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<Seen>, DecodeError> {
        let mut decoder = Decoder::new(limits);
        let mut script = script.iter();
        let mut seen = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(wire.len())).collect();
        cuts.sort_unstable();
        cuts.push(wire.len());
        let mut fed = 0;
        let mut expecting_status = true;
        for cut in cuts {
            buf.extend_from_slice(&wire[fed..cut.max(fed)]);
            fed = cut.max(fed);
            loop {
                if expecting_status && !decoder.is_in_body() {
                    if let Some(&e) = script.next() {
                        decoder.expect(e);
                    }
                    expecting_status = false;
                }
                let (n, event) = match decoder.decode(&buf) {
                    Ok(ok) => ok,
                    Err(DecodeError::Incomplete) => break,
                    Err(e) => return Err(e),
                };
                match event {
                    Event::Status(s) => {
                        seen.push(Seen::Status(s.status, s.text.to_vec()));
                        expecting_status = !decoder.is_in_body();
                    }
                    Event::Continuation(c) => {
                        seen.push(Seen::Continuation(c.to_vec()));
                        expecting_status = true;
                    }
                    Event::BodyChunk(d) => match seen.last_mut() {
                        Some(Seen::Body(b)) => b.extend_from_slice(d),
                        _ => seen.push(Seen::Body(d.to_vec())),
                    },
                    Event::Line(l) => seen.push(Seen::Line(l.to_vec())),
                    Event::End => {
                        seen.push(Seen::End);
                        expecting_status = true;
                    }
                }
                buf.drain(..n);
            }
        }
        decoder.end_of_input(&buf)?;
        Ok(seen)
    }

    fn ok(text: &[u8]) -> Seen {
        Seen::Status(Status::Ok, text.to_vec())
    }

    fn line(text: &[u8]) -> Seen {
        Seen::Line(text.to_vec())
    }

    const RETR: Expect = Expect::MultiLine(Body::Chunks);
    const LIST: Expect = Expect::MultiLine(Body::Lines);

    /// The RFC 1939 §10 example session, from the greeting to QUIT.
    const RFC1939_SESSION: &[u8] = b"+OK POP3 server ready <1896.697170952@dbc.mtview.us>\r\n\
+OK mrose's maildrop has 2 messages (320 octets)\r\n\
+OK 2 320\r\n\
+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n\
+OK 120 octets\r\nSubject: hi\r\n\r\n..dotted\r\nend\r\n.\r\n\
+OK message 1 deleted\r\n\
+OK dewey POP3 server signing off (maildrop empty)\r\n";

    fn rfc1939_script() -> Vec<Expect> {
        use Expect::SingleLine as S;
        vec![S, S, S, LIST, RETR, S, S]
    }

    #[test]
    fn rfc1939_session() {
        let seen = run(Limits::pop3(), &rfc1939_script(), RFC1939_SESSION, &[]).unwrap();
        assert_eq!(
            seen,
            vec![
                ok(b"POP3 server ready <1896.697170952@dbc.mtview.us>"),
                ok(b"mrose's maildrop has 2 messages (320 octets)"),
                ok(b"2 320"),
                ok(b"2 messages (320 octets)"),
                line(b"1 120"),
                line(b"2 200"),
                Seen::End,
                ok(b"120 octets"),
                Seen::Body(b"Subject: hi\r\n\r\n.dotted\r\nend\r\n".to_vec()),
                Seen::End,
                ok(b"message 1 deleted"),
                ok(b"dewey POP3 server signing off (maildrop empty)"),
            ]
        );
    }

    #[test]
    fn err_to_a_multi_line_command_has_no_body() {
        let seen = run(
            Limits::pop3(),
            &[Expect::SingleLine, RETR, Expect::SingleLine],
            b"+OK hi\r\n-ERR no such message\r\n+OK\r\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ok(b"hi"),
                Seen::Status(Status::Err, b"no such message".to_vec()),
                ok(b""),
            ]
        );
    }

    #[test]
    fn listing_lines_are_unstuffed() {
        let seen = run(
            Limits::pop3(),
            &[LIST],
            b"+OK\r\n..weird\r\n.x\r\n.\r\n",
            &[],
        )
        .unwrap();
        assert_eq!(seen, vec![ok(b""), line(b".weird"), line(b"x"), Seen::End]);
    }

    #[test]
    fn sasl_exchange_gmail_xoauth2() {
        // Gmail answers `AUTH XOAUTH2` with "+ ", an empty challenge (CybercentreCanada/sawp#12).
        let seen = run(
            Limits::pop3(),
            &[
                Expect::SingleLine,
                Expect::SaslContinuation,
                Expect::SaslContinuation,
            ],
            b"+OK Gpop ready for requests from 198.51.100.7 x1mb\r\n+ \r\n+OK Welcome.\r\n",
            &[],
        )
        .unwrap();
        assert_eq!(seen[1], Seen::Continuation(Vec::new()));
        assert_eq!(seen[2], ok(b"Welcome."));
    }

    #[test]
    fn sasl_bare_plus_is_an_empty_challenge() {
        let seen = run(
            Limits::pop3(),
            &[
                Expect::SingleLine,
                Expect::SaslContinuation,
                Expect::SaslContinuation,
            ],
            b"+OK Dovecot ready.\r\n+\r\n+OK Logged in.\r\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ok(b"Dovecot ready."),
                Seen::Continuation(Vec::new()),
                ok(b"Logged in.")
            ]
        );
    }

    #[test]
    fn sasl_exchange_outlook_xoauth2_two_lines() {
        // Outlook: `AUTH XOAUTH2`, "+ " then the token on its own line.
        let seen = run(
            Limits::pop3(),
            &[Expect::SingleLine, Expect::SaslContinuation, Expect::SaslContinuation],
            b"+OK The Microsoft Exchange POP3 service is ready.\r\n+ \r\n-ERR Authentication failure: unknown user name or bad password.\r\n",
            &[],
        )
        .unwrap();
        assert_eq!(seen[1], Seen::Continuation(Vec::new()));
        crate::assert_matches!(seen[2], Seen::Status(Status::Err, _));
    }

    #[test]
    fn continuation_is_refused_when_not_authenticating() {
        crate::assert_matches!(
            run(Limits::pop3(), &[Expect::SingleLine], b"+ abc\r\n", &[]),
            Err(DecodeError::Invalid { offset: 0, .. })
        );
    }

    #[test]
    fn garbage_greeting_is_refused_before_its_line_ends() {
        let mut d = Decoder::new(Limits::pop3());
        crate::assert_matches!(
            d.decode(b"1Gdo00V4 wFaIW2WP"),
            Err(DecodeError::Invalid { offset: 0, .. })
        );
        let mut d = Decoder::new(Limits::pop3());
        assert_eq!(d.decode(b"+O"), Err(DecodeError::Incomplete));
    }

    #[test]
    fn nul_in_status_and_listing_lines_is_refused_but_not_in_bodies() {
        let nul = |offset| {
            Err(DecodeError::Invalid {
                offset,
                expected: "no NUL byte in a status or listing line",
            })
        };
        let mut d = Decoder::new(Limits::pop3());
        assert_eq!(d.decode(b"+OK hi\0\r\n"), nul(6));
        // Seen before the CRLF arrives.
        let mut d = Decoder::new(Limits::pop3());
        assert_eq!(d.decode(b"+OK\0"), nul(3));
        let mut d = Decoder::new(Limits::pop3());
        d.expect(LIST);
        assert!(d.decode(b"+OK\r\n").is_ok());
        assert_eq!(d.decode(b"1 2\0\r\n"), nul(3));
        // A message may carry any octet.
        let seen = run(Limits::pop3(), &[RETR], b"+OK\r\na\0b\r\n.\r\n", &[]).unwrap();
        assert_eq!(seen[1], Seen::Body(b"a\0b\r\n".to_vec()));
    }

    #[test]
    fn endless_status_line_is_refused() {
        let mut d = Decoder::new(Limits::pop3());
        let mut long = b"+OK ".to_vec();
        long.resize(9000, b'a');
        assert_eq!(
            d.decode(&long),
            Err(DecodeError::LineTooLong {
                offset: 0,
                limit: 8192
            })
        );
    }

    #[test]
    fn eof_inside_a_body_is_truncated() {
        // threat model #51: EOF before the terminator is an error, not a message.
        for (expect, wire) in [
            (RETR, &b"+OK\r\npartial message\r\n"[..]),
            (RETR, b"+OK\r\nbody\r\n.\r"),
            (LIST, b"+OK\r\n1 2\r\n"),
            (Expect::SingleLine, b"+OK no crlf"),
        ] {
            let err = run(Limits::pop3(), &[expect], wire, &[]).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated { .. }),
                "{wire:?}: {err:?}"
            );
        }
    }

    #[test]
    fn bare_lf_terminator_does_not_end_a_message() {
        let seen = run(
            Limits::pop3(),
            &[RETR],
            b"+OK\r\nline\n.\nmore\r\n.\r\n",
            &[],
        )
        .unwrap();
        assert_eq!(seen[1], Seen::Body(b"line\n.\nmore\r\n".to_vec()));
    }

    #[test]
    fn listing_limits() {
        let mut limits = Limits::pop3();
        limits.max_lines = 2;
        assert_eq!(
            run(limits, &[LIST], b"+OK\r\n1 1\r\n2 2\r\n.\r\n", &[]).map(|s| s.len()),
            Ok(4)
        );
        assert_eq!(
            run(limits, &[LIST], b"+OK\r\n1 1\r\n2 2\r\n3 3\r\n.\r\n", &[]),
            Err(DecodeError::TooManyLines {
                offset: 0,
                limit: 2
            })
        );
        limits.max_line = 8;
        crate::assert_matches!(
            run(limits, &[LIST], b"+OK\r\n1 123456789\r\n.\r\n", &[]),
            Err(DecodeError::LineTooLong { .. })
        );
    }

    #[test]
    fn message_limit() {
        let mut limits = Limits::pop3();
        limits.max_message = 10;
        assert_eq!(
            run(limits, &[RETR], b"+OK\r\n0123456789\r\n.\r\n", &[]),
            Err(DecodeError::LiteralTooLarge {
                offset: 0,
                len: 12,
                limit: 10
            })
        );
    }

    #[test]
    fn ten_million_line_listing_streams_in_bounded_memory() {
        // threat model #40: lines are handed out one by one; nothing accumulates.
        let mut limits = Limits::pop3();
        limits.max_lines = usize::MAX;
        let mut d = Decoder::new(limits);
        d.expect(LIST);
        crate::assert_matches!(d.decode(b"+OK\r\n"), Ok((5, Event::Status(_))));
        let line = b"1234567 0123456789abcdef\r\n";
        for _ in 0..200_000 {
            assert_eq!(
                d.decode(line),
                Ok((line.len(), Event::Line(&line[..line.len() - 2])))
            );
        }
        assert_eq!(d.decode(b".\r\n"), Ok((3, Event::End)));
    }

    #[test]
    fn gmail_capa_and_login_delay_code() {
        let seen = run(
            Limits::pop3(),
            &[Expect::SingleLine, LIST, Expect::SingleLine],
            b"+OK Gpop ready for requests from 198.51.100.7 x1mb\r\n\
+OK Capability list follows\r\nUSER\r\nRESP-CODES\r\nEXPIRE 0\r\nLOGIN-DELAY 300\r\nTOP\r\nUIDL\r\nX-GOOGLE-RICO\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n\
-ERR [LOGIN-DELAY] too soon\r\n",
            &[],
        )
        .unwrap();
        assert_eq!(seen.len(), 1 + 1 + 8 + 1 + 1);
        let mut d = Decoder::new(Limits::pop3());
        let (_, e) = d.decode(b"-ERR [LOGIN-DELAY] too soon\r\n").unwrap();
        match e {
            Event::Status(s) => assert_eq!(s.code.unwrap().kind(), ResponseCodeKind::LoginDelay),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expect_set_inside_a_body_applies_after_it() {
        let mut d = Decoder::new(Limits::pop3());
        d.expect(RETR);
        let wire = b"+OK\r\nx\r\n.\r\n+OK\r\n1 2\r\n.\r\n";
        let (n1, _) = d.decode(wire).unwrap();
        d.expect(LIST); // pipelined LIST, announced while the RETR body is still being read
        let (n2, e) = d.decode(&wire[n1..]).unwrap();
        assert_eq!(e, Event::BodyChunk(&b"x\r\n"[..]));
        let (n3, e) = d.decode(&wire[n1 + n2..]).unwrap();
        assert_eq!(e, Event::End);
        let at = n1 + n2 + n3;
        let (n4, _) = d.decode(&wire[at..]).unwrap();
        assert_eq!(
            d.decode(&wire[at + n4..]),
            Ok((5, Event::Line(&b"1 2"[..])))
        );
    }

    proptest! {
        #[test]
        fn any_split_of_a_session_gives_the_same_events(
            cuts in proptest::collection::vec(0usize..RFC1939_SESSION.len(), 0..6),
        ) {
            let whole = run(Limits::pop3(), &rfc1939_script(), RFC1939_SESSION, &[]).unwrap();
            let split = run(Limits::pop3(), &rfc1939_script(), RFC1939_SESSION, &cuts).unwrap();
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            wire in proptest::collection::vec(any::<u8>(), 0..80),
            mode in 0usize..4,
            cuts in proptest::collection::vec(0usize..80, 0..3),
        ) {
            let expect = [Expect::SingleLine, RETR, LIST, Expect::SaslContinuation][mode];
            let _ = run(Limits::pop3(), &[expect, expect, expect], &wire, &cuts);
        }
    }
}
