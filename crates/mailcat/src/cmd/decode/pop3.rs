//! `mailcat decode pop3`: POP3 server bytes in, one JSON object per response out.
//!
//! # Output
//!
//! A status response (`+OK`/`-ERR`), one line or with a multi-line block:
//!
//! ```text
//! {"ok": true|false, "text": "...", "lines": [...]}
//!   + "code": "IN-USE"          the extended response code as sent, without brackets (RFC 2449)
//!   + "apop": "<1.2@host>"      the APOP timestamp, on the greeting (first response) only
//!   + "octets": N, "line_count": N          on a multi-line response only
//!   + "truncated": true         when "lines" does not hold the whole block
//!   + "message": true           when the block is a message: its lines are never printed
//!   + "count", "octets"         with --after STAT; "msg", "octets" with --after "LIST n";
//!                               "msg", "unique_id" with --after "UIDL n"
//! ```
//!
//! `text` is the text after the status and after the response code. A single-line response
//! has `"lines": []` and no `octets`/`line_count`; a multi-line one always has both, so an empty
//! block (`+OK` then `.`) is told apart from a single line. `lines` holds the block's lines
//! dot-unstuffed and without their CRLF; only the first [`MAX_KEPT_LINES`] lines are kept, each
//! cut to at most [`MAX_KEPT_LINE_BYTES`] bytes (at a UTF-8 boundary when the line is UTF-8),
//! so a 1 GiB RETR body decodes in bounded memory. `octets` counts the unstuffed block bytes,
//! CRLFs included (the size LIST reports); `line_count` counts its CRLF-ended lines (a bare CR or
//! LF is line content, as it is for the dot-unstuffer).
//!
//! A SASL continuation (RFC 5034): `{"continuation": true, "text": "<base64 as sent>"}`.
//!
//! A message (RETR, TOP) is never printed, only its lengths, as for IMAP: with `--after` the
//! command says which blocks are messages; without, a block whose first line is a header field
//! (`Name: value`) is taken for one.
//!
//! # With `--after`
//!
//! `--after CMD` (repeatable, in order) names the commands the replies answer; each reply is
//! then read and checked as its command says: STAT's `+OK` holds two numbers, each line of
//! LIST (or LIST n's `+OK`) a message number and a size, each line of UIDL a message number and
//! a unique-id; `+ ` challenges answer AUTH only; one reply more or less than the commands is
//! refused. The input may start with the greeting, which answers no command.
//!
//! # Which `+OK` starts a block, without `--after`
//!
//! The reply does not say; the command the client sent does, and stdin carries no commands. So a
//! `+OK` starts a block exactly when the line after it is not itself a status line (`+OK`,
//! `-ERR`, `+ `/`+`): a `+OK` is printed once the next line has arrived, or when the input ends
//! (then it is single-line). A block whose first line looks like a status line is therefore read
//! as a single-line `+OK` followed by more responses; real listings, CAPA and message headers
//! do not start that way.

use std::collections::VecDeque;

use mailcat_codec::pop3::{
    Body, Decoder as Pop3Decoder, Event, Expect, ScanListing, Stat, StatusLine, UniqueIdListing,
};
use mailcat_codec::{Decode, DecodeError, Limits};
use serde_json::{Map, Value};

use super::{text, JsonDecoder};

/// Most lines of a multi-line block kept in `"lines"`; the rest are only counted.
const MAX_KEPT_LINES: usize = 1000;

/// Longest line kept in `"lines"`, in bytes (CRLF excluded); longer lines are cut.
const MAX_KEPT_LINE_BYTES: usize = 1000;

/// Turns POP3 server bytes into JSON objects, guessing the multi-line replies from the line that
/// follows each `+OK` (see the module documentation).
#[derive(Debug)]
pub(super) struct Decoder {
    /// The codec's decoder; it expects a status line (or a SASL continuation) unless a block is
    /// being read.
    codec: Pop3Decoder,
    /// The multi-line block being read, if any.
    block: Option<Block>,
    /// Nothing has been printed yet: the next status line is the greeting.
    greeting: bool,
    /// With `--after`: the commands not yet answered, in order; `None` without.
    commands: Option<VecDeque<Command>>,
}

/// What a client command makes of its reply, by its verb (`--after STAT`, `--after "LIST 1"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    /// STAT: `+OK count octets`.
    Stat,
    /// LIST: a scan listing per line; LIST n (`one`): one in the `+OK` line.
    List {
        /// A message number was given.
        one: bool,
    },
    /// UIDL: a unique-id listing per line; UIDL n (`one`): one in the `+OK` line.
    Uidl {
        /// A message number was given.
        one: bool,
    },
    /// RETR or TOP: a message (its lines are never printed).
    Message,
    /// CAPA (and AUTH without a mechanism): lines of capabilities or mechanisms.
    Capa,
    /// AUTH: `+ ` challenges, then `+OK` or `-ERR`.
    Auth,
    /// Any other command: one status line.
    Other,
}

impl Command {
    /// The command named by an `--after` value.
    pub(super) fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else {
            return Err(
                "--after \"\" names no command: give the command line sent, e.g. --after STAT"
                    .into(),
            );
        };
        let one = words.next().is_some();
        let is = |name: &str| verb.eq_ignore_ascii_case(name);
        Ok(if is("STAT") {
            Self::Stat
        } else if is("LIST") {
            Self::List { one }
        } else if is("UIDL") {
            Self::Uidl { one }
        } else if is("RETR") || is("TOP") {
            Self::Message
        } else if is("CAPA") || (is("AUTH") && !one) {
            // AUTH alone lists the mechanisms, one a line (RFC 1734 servers).
            Self::Capa
        } else if is("AUTH") && one {
            Self::Auth
        } else {
            Self::Other
        })
    }

    /// What the codec should expect of the reply.
    fn expect(self) -> Expect {
        match self {
            Self::List { one: false } | Self::Uidl { one: false } | Self::Capa => {
                Expect::MultiLine(Body::Lines)
            }
            Self::Message => Expect::MultiLine(Body::Chunks),
            Self::Auth => Expect::SaslContinuation,
            _ => Expect::SingleLine,
        }
    }

    /// Checks the text of a `+OK` line answering this command (`at`: where the text starts in
    /// the buffer) and adds what it says to `head`.
    fn check_ok(
        self,
        status_text: &[u8],
        at: usize,
        head: &mut Map<String, Value>,
    ) -> Result<(), DecodeError> {
        let shift = |err: DecodeError| err.shifted(at);
        match self {
            Self::Stat => {
                let stat = Stat::parse(status_text).map_err(shift)?;
                head.insert("count".into(), stat.count.into());
                head.insert("octets".into(), stat.octets.into());
            }
            Self::List { one: true } | Self::Uidl { one: true } => {
                self.check_line(status_text, at, Some(head))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks one line of a listing (or the `+OK` text of LIST n / UIDL n); with `into`, adds
    /// its fields there.
    fn check_line(
        self,
        line: &[u8],
        at: usize,
        into: Option<&mut Map<String, Value>>,
    ) -> Result<(), DecodeError> {
        let shift = |err: DecodeError| err.shifted(at);
        let fields = match self {
            Self::List { .. } => {
                let scan = ScanListing::parse(line).map_err(shift)?;
                [
                    ("msg", Value::from(scan.msg)),
                    ("octets", scan.octets.into()),
                ]
            }
            Self::Uidl { .. } => {
                let listing = UniqueIdListing::parse(line).map_err(shift)?;
                [
                    ("msg", Value::from(listing.msg)),
                    ("unique_id", text(&listing.unique_id)),
                ]
            }
            _ => return Ok(()),
        };
        if let Some(object) = into {
            for (key, value) in fields {
                object.insert(key.into(), value);
            }
        }
        Ok(())
    }
}

impl Decoder {
    /// A decoder waiting for the greeting.
    pub(super) fn new() -> Self {
        Self {
            codec: Pop3Decoder::new(Limits::pop3()),
            block: None,
            greeting: true,
            commands: None,
        }
    }

    /// A decoder of the replies to `commands`, after the greeting when `greeting` is set.
    pub(super) fn after(commands: &[Command], greeting: bool) -> Self {
        Self {
            codec: Pop3Decoder::new(Limits::pop3()),
            block: None,
            greeting,
            commands: Some(commands.iter().copied().collect()),
        }
    }

    /// Decodes as many responses as `buf` holds: the bytes used, or
    /// [`DecodeError::Incomplete`] if none could be. At `eof`, a `+OK` with nothing after it is
    /// single-line.
    fn run(&mut self, buf: &[u8], out: &mut Vec<Value>, eof: bool) -> Result<usize, DecodeError> {
        let mut pos = 0;
        loop {
            match self.step(&buf[pos..], out, eof) {
                Ok(used) => pos += used,
                Err(DecodeError::Incomplete) if pos > 0 => return Ok(pos),
                Err(err) => return Err(err.shifted(pos)),
            }
        }
    }

    /// Decodes one event from the front of `buf`; always uses at least one byte when it succeeds.
    fn step(&mut self, buf: &[u8], out: &mut Vec<Value>, eof: bool) -> Result<usize, DecodeError> {
        if let Some(block) = self.block.as_mut() {
            let (used, event) = Decode::decode(&mut self.codec, buf).into_result()?;
            match event {
                Event::BodyChunk(data) => block.feed(&buf[data]),
                Event::Line(range) => {
                    let line = &buf[range.clone()];
                    if let Some(command) = block.listing {
                        command.check_line(line, range.start, None)?;
                    }
                    block.feed(line);
                    block.feed(b"\r\n");
                }
                Event::End => {
                    if let Some(block) = self.block.take() {
                        out.push(block.into_json());
                    }
                }
                // Inside a block the codec hands out lines or chunks, and the end.
                Event::Status(_) | Event::Continuation(_) => {}
            }
            return Ok(used);
        }
        if self.commands.is_some() {
            return self.step_after(buf, out);
        }
        // Every status position may hold a SASL continuation: stdin does not say when AUTH ran.
        self.codec.expect(Expect::SaslContinuation);
        let mut probe = self.codec.clone();
        let (used, event) = probe.decode(buf)?;
        let value = match event {
            Event::Status(status) => {
                let head = status_json(&status, self.greeting);
                if status.is_ok() && block_follows(&buf[used..], eof)? {
                    self.greeting = false;
                    self.codec.expect(Expect::MultiLine(Body::Chunks));
                    // The same line again, now telling the codec that a block follows.
                    let (again, _) = self.codec.decode(buf)?;
                    debug_assert_eq!(again, used);
                    self.block = Some(Block::new(head, None));
                    return Ok(again);
                }
                Value::Object(head)
            }
            Event::Continuation(challenge) => {
                let mut object = Map::new();
                object.insert("continuation".into(), Value::Bool(true));
                object.insert("text".into(), text(challenge));
                Value::Object(object)
            }
            // Not in a block: the codec hands out status lines and continuations only.
            Event::BodyChunk(_) | Event::Line(_) | Event::End => Value::Null,
        };
        self.codec = probe;
        self.greeting = false;
        if !value.is_null() {
            out.push(value);
        }
        Ok(used)
    }
}

impl Decoder {
    /// [`Decoder::step`] with `--after`: the reply is read and checked as its command says.
    fn step_after(&mut self, buf: &[u8], out: &mut Vec<Value>) -> Result<usize, DecodeError> {
        let command = match self.commands.as_ref().and_then(|c| c.front()) {
            _ if self.greeting => None,
            Some(&command) => Some(command),
            None if buf.is_empty() => return Err(DecodeError::Incomplete),
            None => {
                return Err(DecodeError::Invalid {
                    offset: 0,
                    expected: "no more replies: every command named by --after has its reply",
                })
            }
        };
        self.codec
            .expect(command.map_or(Expect::SingleLine, Command::expect));
        let (used, event) = self.codec.decode(buf)?;
        let status = match event {
            Event::Status(status) => status,
            Event::Continuation(challenge) => {
                // AUTH goes on: the command stays first in line.
                let mut object = Map::new();
                object.insert("continuation".into(), Value::Bool(true));
                object.insert("text".into(), text(challenge));
                out.push(Value::Object(object));
                return Ok(used);
            }
            // Not in a block: the codec hands out status lines and continuations only.
            Event::BodyChunk(_) | Event::Line(_) | Event::End => return Ok(used),
        };
        let mut head = status_json(&status, self.greeting);
        self.greeting = false;
        if let Some(command) = command {
            if let Some(commands) = self.commands.as_mut() {
                commands.pop_front();
            }
            if status.is_ok() {
                // The text runs to the end of the line, before its CRLF.
                let at = used - 2 - status.text.len();
                command.check_ok(&status.text, at, &mut head)?;
            }
            if self.codec.is_in_body() {
                let listing = match command {
                    Command::List { .. } | Command::Uidl { .. } => Some(command),
                    _ => None,
                };
                let mut block = Block::new(head, listing);
                block.message = Some(command == Command::Message);
                self.block = Some(block);
                return Ok(used);
            }
        }
        out.push(Value::Object(head));
        Ok(used)
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The keys of a status response, `lines` still empty; `greeting` adds the APOP timestamp.
fn status_json(status: &StatusLine<'_>, greeting: bool) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("ok".into(), Value::Bool(status.is_ok()));
    object.insert("text".into(), text(&status.text));
    object.insert("lines".into(), Value::Array(Vec::new()));
    if let Some(code) = &status.code {
        object.insert("code".into(), text(code.as_bytes()));
    }
    if greeting {
        if let Some(timestamp) = status.apop_timestamp() {
            object.insert("apop".into(), text(timestamp));
        }
    }
    object
}

/// Whether the bytes after a `+OK` line start a block: true unless they start a status line.
/// [`DecodeError::Incomplete`] until that line has arrived (or enough of it to tell), except at
/// the end of the input, where a `+OK` with no line after it is single-line.
fn block_follows(next: &[u8], eof: bool) -> Result<bool, DecodeError> {
    let mut probe = Pop3Decoder::new(Limits::pop3());
    probe.expect(Expect::SaslContinuation);
    // A status line with a NUL in it is still a status line (refused as such, at its offset):
    // judge it by what comes before the NUL (at least `+OK` or `-ER`).
    let line_end = next.iter().position(|&b| b == b'\n').unwrap_or(next.len());
    if let Some(nul) = next[..line_end].iter().position(|&b| b == 0) {
        let status = nul >= 3 && matches!(probe.decode(&next[..nul]), Err(DecodeError::Incomplete));
        return Ok(!status);
    }
    match probe.decode(next) {
        Ok(_) => Ok(false),
        Err(DecodeError::Incomplete) if eof => Ok(false),
        Err(DecodeError::Incomplete) => Err(DecodeError::Incomplete),
        // Not a status line (a listing line, a header, "."), or too long to be one.
        Err(_) => Ok(true),
    }
}

impl JsonDecoder for Decoder {
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Value>) -> Result<usize, DecodeError> {
        self.run(buf, out, false)
    }

    fn finish(&mut self, rest: &[u8], out: &mut Vec<Value>) -> Result<(), DecodeError> {
        let used = match self.run(rest, out, true) {
            Ok(used) => used,
            Err(DecodeError::Incomplete) => 0,
            Err(err) => return Err(err),
        };
        self.codec
            .end_of_input(&rest[used..])
            .map_err(|err| err.shifted(used))?;
        let unanswered = self.commands.as_ref().is_some_and(|c| !c.is_empty());
        if unanswered || (self.commands.is_some() && self.greeting) {
            return Err(DecodeError::Invalid {
                offset: rest.len(),
                expected: "a reply to every command named by --after",
            });
        }
        Ok(())
    }
}

/// A multi-line block being read: counts of everything, the first lines kept unless it is a
/// message.
#[derive(Debug)]
struct Block {
    /// The status line's keys.
    head: Map<String, Value>,
    /// With `--after`, LIST or UIDL: each line is checked as a listing.
    listing: Option<Command>,
    /// Whether the block is a message, whose lines are never kept: known from `--after`,
    /// else guessed from the first line (a header field starts a message).
    message: Option<bool>,
    /// Unstuffed bytes so far, CRLFs included.
    octets: u64,
    /// CRLF-ended lines so far.
    line_count: u64,
    /// The lines kept, at most [`MAX_KEPT_LINES`].
    kept: Vec<Value>,
    /// The start of the current line (at most [`MAX_KEPT_LINE_BYTES`] + 1 bytes, for its CR),
    /// while lines are still kept.
    current: Vec<u8>,
    /// The current line's whole length so far.
    current_len: usize,
    /// The last byte fed was a CR: an LF at the start of the next chunk ends a line.
    after_cr: bool,
    /// A kept line was cut.
    cut: bool,
}

impl Block {
    fn new(head: Map<String, Value>, listing: Option<Command>) -> Self {
        Self {
            head,
            listing,
            message: None,
            octets: 0,
            line_count: 0,
            kept: Vec::new(),
            current: Vec::new(),
            current_len: 0,
            after_cr: false,
            cut: false,
        }
    }

    /// Takes the next run of unstuffed bytes.
    fn feed(&mut self, data: &[u8]) {
        self.octets = self.octets.saturating_add(data.len() as u64);
        let mut rest = data;
        while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
            let segment = &rest[..lf];
            let crlf = match segment.last() {
                Some(&last) => last == b'\r',
                None => self.after_cr,
            };
            self.keep(segment);
            if crlf {
                self.end_line();
            } else {
                self.keep(b"\n");
            }
            self.after_cr = false;
            rest = &rest[lf + 1..];
        }
        self.keep(rest);
        if let Some(&last) = rest.last() {
            self.after_cr = last == b'\r';
        }
    }

    /// Adds bytes to the current line, keeping only its start.
    fn keep(&mut self, bytes: &[u8]) {
        self.current_len = self.current_len.saturating_add(bytes.len());
        if self.message != Some(true) && self.kept.len() < MAX_KEPT_LINES {
            let room = (MAX_KEPT_LINE_BYTES + 1).saturating_sub(self.current.len());
            self.current
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    /// The current line ended (its CR is in it, its LF is not).
    fn end_line(&mut self) {
        self.line_count += 1;
        if self.message.is_none() {
            let header_field = self
                .current
                .iter()
                .position(|&b| b == b':')
                .is_some_and(|colon| {
                    colon > 0
                        && self.current[..colon]
                            .iter()
                            .all(|b| (0x21..=0x7e).contains(b))
                });
            self.message = Some(header_field);
        }
        if self.message != Some(true) && self.kept.len() < MAX_KEPT_LINES {
            let len = self.current_len.saturating_sub(1);
            if len <= MAX_KEPT_LINE_BYTES {
                self.current.truncate(len);
            } else {
                self.current
                    .truncate(utf8_cut(&self.current, MAX_KEPT_LINE_BYTES));
                self.cut = true;
            }
            self.kept.push(text(&self.current));
        }
        self.current.clear();
        self.current_len = 0;
    }

    /// The response, complete.
    fn into_json(self) -> Value {
        let mut object = self.head;
        let truncated = self.cut || self.line_count > self.kept.len() as u64;
        object.insert("lines".into(), Value::Array(self.kept));
        object.insert("octets".into(), self.octets.into());
        object.insert("line_count".into(), self.line_count.into());
        if self.message == Some(true) {
            object.insert("message".into(), Value::Bool(true));
        } else if truncated {
            object.insert("truncated".into(), Value::Bool(true));
        }
        Value::Object(object)
    }
}

/// Where to cut `bytes` to at most `max` bytes: at `max`, or before a UTF-8 sequence that `max`
/// would split when the bytes before it are valid UTF-8 (so the cut line stays readable text).
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let head = &bytes[..bytes.len().min(max)];
    match std::str::from_utf8(head) {
        Err(err) if err.error_len().is_none() => err.valid_up_to(),
        _ => head.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(chunks: &[&[u8]]) -> Value {
        let mut block = Block::new(Map::new(), None);
        block.message = Some(false);
        for chunk in chunks {
            block.feed(chunk);
        }
        block.into_json()
    }

    #[test]
    fn crlf_split_across_chunks_ends_one_line() {
        let v = block(&[b"a\r", b"\nb\r\n"]);
        assert_eq!(v["lines"], serde_json::json!(["a", "b"]));
        assert_eq!(v["line_count"], 2);
        assert_eq!(v["octets"], 6);
    }

    #[test]
    fn bare_lf_and_cr_are_line_content() {
        let v = block(&[b"a\nb\rc\r\n"]);
        assert_eq!(v["lines"], serde_json::json!(["a\nb\rc"]));
        assert_eq!(v["line_count"], 1);
    }

    #[test]
    fn long_lines_are_cut_at_a_utf8_boundary() {
        let mut line = vec![b'a'; MAX_KEPT_LINE_BYTES - 1];
        line.extend_from_slice("é".as_bytes());
        line.extend_from_slice(b"tail\r\n");
        let v = block(&[&line]);
        assert_eq!(
            v["lines"][0].as_str().map(str::len),
            Some(MAX_KEPT_LINE_BYTES - 1)
        );
        assert_eq!(v["truncated"], true);
        // Exactly the limit is kept whole.
        let mut line = vec![b'b'; MAX_KEPT_LINE_BYTES];
        line.extend_from_slice(b"\r\n");
        let v = block(&[&line[..7], &line[7..]]);
        assert_eq!(
            v["lines"][0].as_str().map(str::len),
            Some(MAX_KEPT_LINE_BYTES)
        );
        assert!(v.get("truncated").is_none());
    }

    #[test]
    fn lines_past_the_limit_are_counted_only() {
        let v = block(&[&b"x\r\n".repeat(MAX_KEPT_LINES + 5)]);
        assert_eq!(v["lines"].as_array().map(Vec::len), Some(MAX_KEPT_LINES));
        assert_eq!(v["line_count"], MAX_KEPT_LINES as u64 + 5);
        assert_eq!(v["truncated"], true);
    }
}
