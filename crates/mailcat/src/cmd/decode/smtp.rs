//! `mailcat decode smtp`: SMTP server bytes in, one JSON object per reply out.
//!
//! # Output
//!
//! ```text
//! {"code": 250, "enhanced": "2.1.0" | null, "lines": ["...", ...]}
//!   + "extensions": [...], "keywords": [...], "size": N | null, "auth": [...]   on an EHLO reply
//! ```
//!
//! - `code`: the reply code, a number.
//! - `enhanced`: the enhanced status code (RFC 3463) of the first line that has one of the
//!   reply's class, as `class.subject.detail`, or `null`.
//! - `lines`: each line as the server sent it after the code and its separator (`250-`/`250 `),
//!   CRLF excluded, enhanced code included: `535 5.7.139 Authentication unsuccessful` gives
//!   `"5.7.139 Authentication unsuccessful"`.
//!
//! With `--after CMD` (in order, e.g. `--after "EHLO me" --after "MAIL FROM:<a@b>"`) each reply
//! is checked against the command it answers: 250 for EHLO/HELO, 220 for STARTTLS, 334 then 235
//! for AUTH, 354 then the message's reply for DATA, 221 for QUIT, 2xx (not 220/221) for the
//! others, a 4xx or 5xx for any; one reply more or less than the commands is refused. The input
//! may start with the greeting (220, 421 or 554), which answers no command.
//!
//! A 250 reply of more than one line is taken as the answer to EHLO (nothing else a client sends
//! gets one) and also has:
//! - `extensions`: every line after the first (which is the server's domain and greeting), as
//!   sent: `["SIZE 35882577", "8BITMIME", "AUTH LOGIN PLAIN", ...]`;
//! - `keywords`: the same lines split, `[{"keyword": "SIZE", "params": ["35882577"]}, ...]`,
//!   vendor keywords (`X-EXPS`, `X_LINK2STATE`) included, `AUTH=LOGIN PLAIN` as `AUTH`;
//! - `size`: when SIZE is listed, its limit as a number, or `null` when it names none;
//! - `auth`: when AUTH is listed, the SASL mechanisms over all AUTH (and old-style `AUTH=`)
//!   lines, duplicates dropped.

use std::collections::VecDeque;

use mailcat_codec::smtp::{self, parse_reply, Extension, Extensions, Reply, ReplyCode};
use mailcat_codec::{DecodeError, Limits};
use serde_json::{Map, Value};

use super::{text, JsonDecoder};

/// Turns SMTP server bytes into JSON objects, one per reply.
#[derive(Debug)]
pub(super) struct Decoder {
    /// SMTP's limits: 512-byte lines, 1,000 lines a reply.
    limits: Limits,
    /// With `--after`: the greeting is still due.
    greeting: bool,
    /// With `--after`: the commands not yet (fully) answered, in order; `None` without.
    commands: Option<VecDeque<Command>>,
}

/// What a client command allows as its reply, by its verb (`--after "EHLO me"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    /// EHLO or HELO: 250 (or a refusal).
    Hello,
    /// STARTTLS: 220 (or a refusal).
    StartTls,
    /// AUTH: 334 challenges, then 235 (or a refusal).
    Auth,
    /// DATA: 354, then the reply to the message once it is sent (or a refusal at once).
    Data,
    /// The message after DATA's 354: 250 (or a refusal).
    EndOfData,
    /// QUIT: 221 (or a refusal).
    Quit,
    /// MAIL, RCPT, RSET, NOOP, VRFY, BDAT, HELP and others: any 2xx but 220 and 221, or a
    /// refusal.
    Other,
}

impl Command {
    /// The command named by an `--after` value (its first word, in any case).
    pub(super) fn parse(line: &str) -> Self {
        let verb = line.split_whitespace().next().unwrap_or_default();
        let is = |name: &str| verb.eq_ignore_ascii_case(name);
        if is("EHLO") || is("HELO") || is("LHLO") {
            Self::Hello
        } else if is("STARTTLS") {
            Self::StartTls
        } else if is("AUTH") {
            Self::Auth
        } else if is("DATA") {
            Self::Data
        } else if is("QUIT") {
            Self::Quit
        } else {
            Self::Other
        }
    }

    /// Checks `code` as this command's reply: `Ok(Some(next))` when more replies answer the
    /// same command (AUTH's 334, DATA's 354), `Ok(None)` when it is answered.
    fn answer(self, code: u16) -> Result<Option<Self>, &'static str> {
        let refusal = matches!(code / 100, 4 | 5);
        let fits = |ok: bool, what| if ok || refusal { Ok(None) } else { Err(what) };
        match self {
            Self::Hello => fits(code == 250, "250, 4xx or 5xx answering EHLO or HELO"),
            Self::StartTls => fits(code == 220, "220, 4xx or 5xx answering STARTTLS"),
            Self::Auth if code == 334 => Ok(Some(Self::Auth)),
            Self::Auth => fits(code == 235, "334, 235, 4xx or 5xx answering AUTH"),
            Self::Data if code == 354 => Ok(Some(Self::EndOfData)),
            Self::Data => fits(false, "354, 4xx or 5xx answering DATA"),
            Self::EndOfData => fits(code == 250, "250, 4xx or 5xx answering the message"),
            Self::Quit => fits(code == 221, "221, 4xx or 5xx answering QUIT"),
            Self::Other => fits(
                code / 100 == 2 && code != 220 && code != 221,
                "2xx (not 220 or 221), 4xx or 5xx answering the command",
            ),
        }
    }
}

impl Decoder {
    /// A decoder at the start of a session, with nothing known of the commands sent.
    pub(super) fn new() -> Self {
        Self {
            limits: Limits::smtp(),
            greeting: false,
            commands: None,
        }
    }

    /// A decoder of the replies to `commands`, after the greeting when `greeting` is set.
    pub(super) fn after(commands: &[Command], greeting: bool) -> Self {
        Self {
            limits: Limits::smtp(),
            greeting,
            commands: Some(commands.iter().copied().collect()),
        }
    }

    /// Checks a reply against what it answers, with `--after`.
    fn check(&mut self, code: u16) -> Result<(), DecodeError> {
        let Some(commands) = self.commands.as_mut() else {
            return Ok(());
        };
        let invalid = |expected| DecodeError::Invalid {
            offset: 0,
            expected,
        };
        if std::mem::take(&mut self.greeting) {
            return match code {
                220 | 421 | 554 => Ok(()),
                _ => Err(invalid("a greeting: 220, 421 or 554")),
            };
        }
        let command = commands.pop_front().ok_or(invalid(
            "no more replies: every command named by --after has its reply",
        ))?;
        if let Some(next) = command.answer(code).map_err(invalid)? {
            commands.push_front(next);
        }
        Ok(())
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonDecoder for Decoder {
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Value>) -> Result<usize, DecodeError> {
        let mut pos = 0;
        loop {
            match parse_reply(&buf[pos..], &self.limits) {
                Ok((used, reply)) => {
                    self.check(reply.code.get())
                        .map_err(|err| err.shifted(pos))?;
                    out.push(reply_json(&reply));
                    pos += used;
                }
                Err(DecodeError::Incomplete) if pos > 0 => return Ok(pos),
                Err(err) => return Err(err.shifted(pos)),
            }
        }
    }

    fn finish(&mut self, rest: &[u8], _out: &mut Vec<Value>) -> Result<(), DecodeError> {
        // `decode` has taken every complete reply: anything left is a reply cut off.
        smtp::end_of_input(rest)?;
        let unanswered = self.greeting || self.commands.as_ref().is_some_and(|c| !c.is_empty());
        if unanswered {
            return Err(DecodeError::Invalid {
                offset: rest.len(),
                expected: "a reply to every command named by --after",
            });
        }
        Ok(())
    }
}

/// One reply as JSON.
fn reply_json(reply: &Reply<'_>) -> Value {
    let mut object = Map::new();
    object.insert("code".into(), reply.code.get().into());
    object.insert(
        "enhanced".into(),
        reply
            .enhanced
            .map_or(Value::Null, |code| Value::String(code.to_string())),
    );
    object.insert(
        "lines".into(),
        reply.lines.iter().map(|line| text(line)).collect(),
    );
    if reply.code == ReplyCode::OK && reply.lines.len() > 1 {
        if let Ok(extensions) = Extensions::from_reply(reply) {
            add_extensions(&mut object, &extensions);
        }
    }
    Value::Object(object)
}

/// The keys of an EHLO reply: `extensions`, and `size` and `auth` when listed.
fn add_extensions(object: &mut Map<String, Value>, extensions: &Extensions) {
    object.insert(
        "extensions".into(),
        extensions.lines().skip(1).map(text).collect(),
    );
    let keywords = extensions.lines().skip(1).map(|line| {
        let (keyword, params) = Extension::split(line);
        let mut entry = Map::new();
        entry.insert("keyword".into(), text(keyword));
        entry.insert("params".into(), params.into_iter().map(text).collect());
        Value::Object(entry)
    });
    object.insert("keywords".into(), keywords.collect());
    if let Some(size) = extensions.size() {
        object.insert("size".into(), size.map_or(Value::Null, Value::from));
    }
    if extensions.has("AUTH") {
        object.insert(
            "auth".into(),
            extensions.auth_mechanisms().into_iter().map(text).collect(),
        );
    }
}
