//! `mailcat decode imap`: one JSON object per IMAP response.
//!
//! Every object has `kind` (`"tagged"`, `"untagged"` or `"continuation"`), `tag` (or null),
//! `type` (`"OK"`, `"FETCH"`, `"CAPABILITY"`, `"EXISTS"` …) and, for status responses, `status`,
//! `code` (the response code's name, or null) and `text`. Data responses add their fields: FETCH
//! `seq`, `uid`, `flags`, `rfc822_size`, `modseq`, `sections` (`name` and `len` of each body
//! section — never its content, so a 1 GiB literal streams through in bounded memory);
//! CAPABILITY and ENABLED `capabilities` (the atoms as sent); LIST/LSUB `attributes`,
//! `delimiter`, `mailbox`; STATUS `mailbox`, `items`; EXISTS/RECENT `count`; EXPUNGE `seq`;
//! SEARCH `numbers`; VANISHED `earlier`, `uids`; FLAGS `flags`.

use mailcat_codec::imap::{Code, Data, Event, Fetch, Response, ResponseDecoder, StatusItem};
use mailcat_codec::{DecodeError, Limits};
use serde_json::{json, Map, Value};

use super::{text, JsonDecoder};

/// The IMAP side of `mailcat decode`.
pub struct Decoder {
    inner: ResponseDecoder,
}

impl Decoder {
    /// A decoder with the library's default IMAP limits (large bodies streamed).
    pub fn new() -> Self {
        Decoder {
            inner: ResponseDecoder::new(Limits::imap()),
        }
    }
}

impl JsonDecoder for Decoder {
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Value>) -> Result<usize, DecodeError> {
        let (used, event) = self.inner.decode(buf)?;
        if let Event::Response(response) = event {
            out.push(response_json(&response));
        }
        // BodyStart / BodyChunk / BodyEnd: the body's bytes are not printed; its length is in
        // the FETCH response that follows.
        Ok(used)
    }

    fn finish(&mut self, rest: &[u8], _out: &mut Vec<Value>) -> Result<(), DecodeError> {
        if rest.is_empty() && !self.inner.is_streaming() {
            Ok(())
        } else {
            Err(self.inner.end_of_input(rest))
        }
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
        Some(Code::Capability(capabilities)) => {
            object.insert(
                "capabilities".into(),
                capabilities.iter().map(|c| text(c.as_bytes())).collect(),
            );
        }
        Some(Code::PermanentFlags(flags)) => {
            object.insert(
                "flags".into(),
                flags.iter().map(|f| text(f.as_bytes())).collect(),
            );
        }
        Some(Code::UidValidity(n) | Code::UidNext(n) | Code::Unseen(n)) => {
            object.insert("code_value".into(), (*n).into());
        }
        _ => {}
    }
}

fn insert_data(object: &mut Map<String, Value>, data: &Data<'_>) {
    match data {
        Data::Capability(capabilities) | Data::Enabled(capabilities) => {
            object.insert(
                "capabilities".into(),
                capabilities.iter().map(|c| text(c.as_bytes())).collect(),
            );
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
