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
//! A 250 reply of more than one line is taken as the answer to EHLO (nothing else a client sends
//! gets one) and also has:
//! - `extensions`: every line after the first (which is the server's domain and greeting), as
//!   sent: `["SIZE 35882577", "8BITMIME", "AUTH LOGIN PLAIN", ...]`;
//! - `keywords`: the same lines split, `[{"keyword": "SIZE", "params": ["35882577"]}, ...]`,
//!   vendor keywords (`X-EXPS`, `X_LINK2STATE`) included, `AUTH=LOGIN PLAIN` as `AUTH`;
//! - `size`: when SIZE is listed, its limit as a number, or `null` when it names none;
//! - `auth`: when AUTH is listed, the SASL mechanisms over all AUTH (and old-style `AUTH=`)
//!   lines, duplicates dropped.

use mailcat_codec::smtp::{self, parse_reply, Extension, Extensions, Reply, ReplyCode};
use mailcat_codec::{DecodeError, Limits};
use serde_json::{Map, Value};

use super::{text, JsonDecoder};

/// Turns SMTP server bytes into JSON objects, one per reply.
#[derive(Debug)]
pub struct Decoder {
    /// SMTP's limits: 512-byte lines, 1,000 lines a reply.
    limits: Limits,
}

impl Decoder {
    /// A decoder at the start of a session.
    pub fn new() -> Self {
        Decoder {
            limits: Limits::smtp(),
        }
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
        smtp::end_of_input(rest)
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
