//! `mailcat decode imap`: one JSON object per IMAP response.
//!
//! Every object has `kind` (`"tagged"`, `"untagged"` or `"continuation"`), `tag` (or null),
//! `type` (`"OK"`, `"FETCH"`, `"CAPABILITY"`, `"EXISTS"` …) and, for status responses, `status`,
//! `code` (the response code's name, or null) and `text`. Data responses add their fields: FETCH
//! `seq`, `uid`, `flags`, `rfc822_size`, `modseq`, `sections` (`name` and `len` of each body
//! section — never its content, so a 1 GiB literal streams through in bounded memory),
//! `bodystructure` (`type`, `size`, `lines`, `parts`, `message`); CAPABILITY and ENABLED
//! `capabilities` (the atoms as sent) and `appendlimit` when listed; LIST/LSUB `attributes`,
//! `delimiter`, `mailbox`; STATUS `mailbox`, `items`; EXISTS/RECENT `count`; EXPUNGE `seq`;
//! SEARCH `numbers`; VANISHED `earlier`, `uids`; FLAGS `flags`.
//!
//! After `* ENABLED UTF8=ACCEPT`, a mailbox name, envelope field or ID parameter that is not
//! UTF-8 is refused (see [`super::utf8`]).
//!
//! With `--after "A1 NOOP"` (repeatable), a tagged response must carry the tag of one of these
//! commands, once each, and every one of them must be completed by the end of the input.
//!
//! A response code adds
//! `code_value` (UIDVALIDITY, UIDNEXT, UNSEEN, HIGHESTMODSEQ) or, for a code this decoder does
//! not know, `code_text` (its arguments as sent).

use mailcat_codec::imap::{
    BodyStructure, Capability, Code, Data, Event, Fetch, Response, ResponseDecoder, StatusItem,
};
use mailcat_codec::{DecodeError, Limits};
use serde_json::{json, Map, Value};

use super::{text, utf8, JsonDecoder};

/// The IMAP side of `mailcat decode`.
pub(super) struct Decoder {
    inner: ResponseDecoder,
    /// With `--after`: the tags of the commands not yet completed; `None` without.
    pending: Option<Vec<Vec<u8>>>,
    /// The server said `ENABLED UTF8=ACCEPT`: its strings must be UTF-8 from then on.
    utf8: bool,
}

impl Decoder {
    /// A decoder with the library's default IMAP limits (large bodies streamed).
    pub(super) fn new() -> Self {
        Self {
            inner: ResponseDecoder::new(Limits::imap()),
            pending: None,
            utf8: false,
        }
    }

    /// A decoder of the responses to `commands` (`"A1 NOOP"`: each starts with its tag), which
    /// refuses a tagged response whose tag none of them had, or that was already completed.
    pub(super) fn after(commands: &[String]) -> Result<Self, String> {
        let mut tags = Vec::new();
        for command in commands {
            let mut words = command.split_whitespace();
            match (words.next(), words.next()) {
                (Some(tag), Some(_)) if tag.bytes().all(is_tag_char) => {
                    tags.push(tag.as_bytes().to_vec());
                }
                _ => {
                    return Err(format!(
                        "--after {command:?}: an IMAP command starts with its tag, \
                         as in --after \"A1 NOOP\""
                    ))
                }
            }
        }
        Ok(Self {
            inner: ResponseDecoder::new(Limits::imap()),
            pending: Some(tags),
            utf8: false,
        })
    }
}

/// With `--after`: takes a tagged response's tag off the `pending` ones, or refuses it.
fn complete(
    pending: &mut Option<Vec<Vec<u8>>>,
    response: &Response<'_>,
) -> Result<(), DecodeError> {
    let (Some(pending), Some(tag)) = (pending.as_mut(), response.tag()) else {
        return Ok(());
    };
    match pending.iter().position(|t| t.as_slice() == tag.as_bytes()) {
        Some(index) => {
            pending.remove(index);
            Ok(())
        }
        None => Err(DecodeError::Invalid {
            offset: 0,
            expected: "the tag of a command named by --after and not yet completed",
        }),
    }
}

/// `tag = 1*<any ASTRING-CHAR except "+">`, as a client sends it.
fn is_tag_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"(){%*\"\\+]".contains(&b)
}

impl JsonDecoder for Decoder {
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Value>) -> Result<usize, DecodeError> {
        let (used, event) = self.inner.decode(buf)?;
        if let Event::Response(response) = event {
            if self.utf8 {
                utf8::check(&response, buf)?;
            }
            if let Response::Data(Data::Enabled(capabilities)) = &response {
                self.utf8 |= utf8::enables(capabilities);
            }
            let json = response_json(&response);
            complete(&mut self.pending, &response)?;
            out.push(json);
        }
        // BodyStart / BodyChunk / BodyEnd: the body's bytes are not printed; its length is in
        // the FETCH response that follows.
        Ok(used)
    }

    fn finish(&mut self, rest: &[u8], _out: &mut Vec<Value>) -> Result<(), DecodeError> {
        if !rest.is_empty() || self.inner.is_streaming() {
            return Err(self.inner.end_of_input(rest));
        }
        if self.pending.as_ref().is_some_and(|tags| !tags.is_empty()) {
            return Err(DecodeError::Invalid {
                offset: 0,
                expected: "a tagged response to every command named by --after",
            });
        }
        Ok(())
    }
}

fn response_json(response: &Response<'_>) -> Value {
    let mut object = Map::new();
    let kind = match response {
        Response::Status { tag: Some(_), .. } => "tagged",
        Response::Continuation { .. } => "continuation",
        _ => "untagged",
    };
    object.insert("kind".into(), kind.into());
    object.insert(
        "tag".into(),
        response.tag().map_or(Value::Null, |t| text(t.as_bytes())),
    );
    object.insert("type".into(), response.type_name().into());
    match response {
        Response::Status {
            kind,
            code,
            text: words,
            ..
        } => {
            object.insert("status".into(), kind.as_str().into());
            insert_code(&mut object, code.as_ref());
            object.insert("text".into(), text(words));
        }
        Response::Continuation { code, text: words } => {
            insert_code(&mut object, code.as_ref());
            object.insert("text".into(), text(words));
        }
        Response::Data(data) => insert_data(&mut object, data),
    }
    Value::Object(object)
}

fn insert_code(object: &mut Map<String, Value>, code: Option<&Code<'_>>) {
    object.insert(
        "code".into(),
        code.map_or(Value::Null, |c| c.name().into_owned().into()),
    );
    match code {
        Some(Code::Capability(capabilities)) => insert_capabilities(object, capabilities),
        Some(Code::PermanentFlags(flags)) => {
            object.insert(
                "flags".into(),
                flags.iter().map(|f| text(f.as_bytes())).collect(),
            );
        }
        Some(Code::UidValidity(n) | Code::UidNext(n) | Code::Unseen(n)) => {
            object.insert("code_value".into(), (*n).into());
        }
        Some(Code::HighestModSeq(n)) => {
            object.insert("code_value".into(), (*n).into());
        }
        Some(Code::Other {
            text: Some(words), ..
        }) => {
            object.insert("code_text".into(), text(words));
        }
        _ => {}
    }
}

/// `capabilities` as sent, and `appendlimit` when APPENDLIMIT is listed (RFC 7889): its number,
/// or null when it names none (the limit then differs per mailbox: see STATUS).
fn insert_capabilities(object: &mut Map<String, Value>, capabilities: &[Capability<'_>]) {
    object.insert(
        "capabilities".into(),
        capabilities.iter().map(|c| text(c.as_bytes())).collect(),
    );
    for capability in capabilities {
        let atom = capability.as_bytes();
        let Some(name) = atom.get(..11) else { continue };
        if !name.eq_ignore_ascii_case(b"APPENDLIMIT") {
            continue;
        }
        let value = match &atom[11..] {
            [] => Some(Value::Null),
            [b'=', digits @ ..] => std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<u64>().ok())
                .map(Value::from),
            _ => None,
        };
        if let Some(value) = value {
            object.insert("appendlimit".into(), value);
        }
    }
}

fn insert_data(object: &mut Map<String, Value>, data: &Data<'_>) {
    match data {
        Data::Capability(capabilities) | Data::Enabled(capabilities) => {
            insert_capabilities(object, capabilities);
        }
        Data::List(list) | Data::Lsub(list) => {
            object.insert(
                "attributes".into(),
                list.attributes.iter().map(|a| text(a.as_bytes())).collect(),
            );
            object.insert(
                "delimiter".into(),
                list.delimiter.map_or(Value::Null, |d| text(&[d])),
            );
            object.insert("mailbox".into(), list.mailbox.display().into_owned().into());
        }
        Data::Status(status) => {
            object.insert(
                "mailbox".into(),
                status.mailbox.display().into_owned().into(),
            );
            let items: Map<String, Value> = status.items.iter().map(status_item).collect();
            object.insert("items".into(), Value::Object(items));
        }
        Data::Flags(flags) => {
            object.insert(
                "flags".into(),
                flags.iter().map(|f| text(f.as_bytes())).collect(),
            );
        }
        Data::Exists(n) | Data::Recent(n) => {
            object.insert("count".into(), (*n).into());
        }
        Data::Expunge(n) => {
            object.insert("seq".into(), (*n).into());
        }
        Data::Search { numbers, modseq } => {
            object.insert("numbers".into(), numbers.iter().copied().collect());
            if let Some(modseq) = modseq {
                object.insert("modseq".into(), (*modseq).into());
            }
        }
        Data::Vanished { earlier, uids } => {
            object.insert("earlier".into(), (*earlier).into());
            object.insert("uids".into(), uids.to_string().into());
        }
        Data::Fetch(fetch) => insert_fetch(object, fetch),
        _ => {}
    }
}

fn status_item(item: &StatusItem<'_>) -> (String, Value) {
    match item {
        StatusItem::Messages(n) => ("MESSAGES".into(), (*n).into()),
        StatusItem::Recent(n) => ("RECENT".into(), (*n).into()),
        StatusItem::UidNext(n) => ("UIDNEXT".into(), (*n).into()),
        StatusItem::UidValidity(n) => ("UIDVALIDITY".into(), (*n).into()),
        StatusItem::Unseen(n) => ("UNSEEN".into(), (*n).into()),
        StatusItem::Deleted(n) => ("DELETED".into(), (*n).into()),
        StatusItem::Size(n) => ("SIZE".into(), (*n).into()),
        StatusItem::HighestModSeq(n) => ("HIGHESTMODSEQ".into(), (*n).into()),
        StatusItem::AppendLimit(n) => ("APPENDLIMIT".into(), (*n).into()),
        StatusItem::Other { name, value } => {
            (String::from_utf8_lossy(name).into_owned(), (*value).into())
        }
    }
}

fn insert_fetch(object: &mut Map<String, Value>, fetch: &Fetch<'_>) {
    object.insert("seq".into(), fetch.seq.into());
    object.insert("uid".into(), fetch.uid().map_or(Value::Null, Value::from));
    object.insert(
        "flags".into(),
        fetch.flags().map_or(Value::Null, |flags| {
            flags.iter().map(|f| text(f.as_bytes())).collect()
        }),
    );
    object.insert(
        "rfc822_size".into(),
        fetch.rfc822_size().map_or(Value::Null, Value::from),
    );
    if let Some(modseq) = fetch.modseq() {
        object.insert("modseq".into(), modseq.into());
    }
    if let Some(structure) = fetch.body_structure() {
        object.insert("bodystructure".into(), body_json(structure));
    }
    let sections: Vec<Value> = fetch
        .sections()
        .map(|(section, origin, data)| {
            let mut entry = json!({ "name": section.name_str(), "len": data.len() });
            if let Some(origin) = origin {
                entry["origin"] = origin.into();
            }
            entry
        })
        .collect();
    object.insert("sections".into(), sections.into());
}

/// A body structure as `type` (`media/subtype`, lower case), `size`, `lines` when sent,
/// `parts` of a multipart and the `message` inside a message/rfc822 part.
fn body_json(structure: &BodyStructure<'_>) -> Value {
    let lower = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_ascii_lowercase();
    let mut object = Map::new();
    match structure {
        BodyStructure::Single(part) => {
            object.insert(
                "type".into(),
                format!("{}/{}", lower(&part.media_type), lower(&part.media_subtype)).into(),
            );
            object.insert("size".into(), part.size.into());
            if let Some(lines) = part.lines {
                object.insert("lines".into(), lines.into());
            }
            if let Some(message) = &part.message {
                object.insert("message".into(), body_json(&message.body));
            }
        }
        BodyStructure::Multi(multi) => {
            object.insert(
                "type".into(),
                format!("multipart/{}", lower(&multi.subtype)).into(),
            );
            object.insert("parts".into(), multi.parts.iter().map(body_json).collect());
        }
    }
    Value::Object(object)
}
