//! Server responses (RFC 3501 §7, RFC 9051 §7): status responses, continuation requests and
//! untagged data, parsed from one whole frame (see [`super::framing`]).
//!
//! ```text
//! response     = continue-req / response-data / response-tagged
//! continue-req = "+" SP (resp-text / base64) CRLF
//! response-data = "*" SP (resp-cond-state / resp-cond-bye / mailbox-data / message-data /
//!                 capability-data / enable-data / ...) CRLF
//! response-tagged = tag SP resp-cond-state CRLF
//! ```
//!
//! Runs of spaces between tokens are one separator (Exchange, QQ Mail send `*  1 FETCH`,
//! `A1  OK`).
//!
//! Keywords are matched case-insensitively everywhere (`* ok`, `* 3 fetch`): RFC 3501 §9 says
//! so, and several servers (older Zimbra, mail.ru) use lower case.

use std::borrow::Cow;

use base64::Engine;

use crate::core::parse::{expected, failure, PResult, Problem};

use super::code::{resp_text, Code};
use super::fetch::{msg_att, Fetch};
use super::flag::{flag_list, own_flags, Flag};
use super::mailbox::{
    mailbox_list, mailbox_status, namespace, MailboxList, MailboxStatus, Namespace,
};
use super::primitive::{
    atom, byte, keyword, nil, nstring, number, number64, own, skip_value, sp, sp1, spaces, string,
    Ctx,
};
use super::sequence::{sequence_set, SequenceSet};
use super::tag::{tag, Tag};

/// The condition of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// `OK`.
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: protocol error.
    Bad,
    /// `BYE`: the server is closing the connection.
    Bye,
    /// `PREAUTH`: greeting of an already authenticated connection.
    PreAuth,
}

impl StatusKind {
    /// The keyword (`OK`, `NO` ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::No => "NO",
            Self::Bad => "BAD",
            Self::Bye => "BYE",
            Self::PreAuth => "PREAUTH",
        }
    }
}

/// A capability atom, exactly as the server sent it (`IMAP4rev1`, `AUTH=XOAUTH2`, or iCloud's
/// odd ones).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Capability<'a>(pub Cow<'a, [u8]>);

impl Capability<'_> {
    /// The atom as sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True if this is `name`, compared case-insensitively (`is("IDLE")`).
    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name.as_bytes())
    }

    /// For `AUTH=MECH`, the mechanism.
    pub fn auth_mechanism(&self) -> Option<&[u8]> {
        (self.0.len() > 5 && self.0[..5].eq_ignore_ascii_case(b"AUTH=")).then(|| &self.0[5..])
    }

    /// An owned copy.
    pub fn into_owned(self) -> Capability<'static> {
        Capability(own(self.0))
    }
}

pub(crate) fn own_capabilities(c: Vec<Capability<'_>>) -> Vec<Capability<'static>> {
    c.into_iter().map(Capability::into_owned).collect()
}

/// `capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev1" *(SP capability)`, lenient:
/// any run of visible bytes is a capability (iCloud sends atoms no grammar allows), extra
/// spaces are skipped, and IMAP4rev1 need not be there (an IMAP4rev2-only server).
pub(crate) fn capability_list(input: &[u8]) -> PResult<'_, Vec<Capability<'_>>> {
    let mut caps = Vec::new();
    let mut rest = spaces(input);
    loop {
        let n = rest
            .iter()
            .take_while(|&&b| b > b' ' && b != 0x7f && b != b']')
            .count();
        if n == 0 {
            break;
        }
        caps.push(Capability(Cow::Borrowed(&rest[..n])));
        rest = spaces(&rest[n..]);
    }
    if caps.is_empty() {
        return expected(input, "a capability");
    }
    Ok((rest, caps))
}

/// One item of an ESEARCH response (RFC 4731, RFC 9051 `search-return-data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ESearchItem<'a> {
    /// `MIN`.
    Min(u32),
    /// `MAX`.
    Max(u32),
    /// `COUNT`.
    Count(u32),
    /// `ALL`, as ranges.
    All(SequenceSet),
    /// `MODSEQ` (RFC 7162).
    ModSeq(u64),
    /// Anything else, raw.
    Other {
        /// The name.
        name: Cow<'a, [u8]>,
        /// The value as sent.
        value: Cow<'a, [u8]>,
    },
}

/// An ESEARCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ESearch<'a> {
    /// The correlator: the tag of the command this answers.
    pub tag: Option<Cow<'a, [u8]>>,
    /// True if the numbers are UIDs.
    pub uid: bool,
    /// The results.
    pub items: Vec<ESearchItem<'a>>,
}

impl ESearch<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> ESearch<'static> {
        ESearch {
            tag: self.tag.map(own),
            uid: self.uid,
            items: self
                .items
                .into_iter()
                .map(|i| match i {
                    ESearchItem::Min(n) => ESearchItem::Min(n),
                    ESearchItem::Max(n) => ESearchItem::Max(n),
                    ESearchItem::Count(n) => ESearchItem::Count(n),
                    ESearchItem::All(s) => ESearchItem::All(s),
                    ESearchItem::ModSeq(n) => ESearchItem::ModSeq(n),
                    ESearchItem::Other { name, value } => ESearchItem::Other {
                        name: own(name),
                        value: own(value),
                    },
                })
                .collect(),
        }
    }
}

/// The ID response's parameters: `None` for NIL.
pub type IdParams<'a> = Option<Vec<(Cow<'a, [u8]>, Option<Cow<'a, [u8]>>)>>;

/// Untagged data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Data<'a> {
    /// `CAPABILITY`.
    Capability(Vec<Capability<'a>>),
    /// `LIST` (and Gmail's legacy `XLIST`).
    List(MailboxList<'a>),
    /// `LSUB`.
    Lsub(MailboxList<'a>),
    /// `STATUS`.
    Status(MailboxStatus<'a>),
    /// `FLAGS`.
    Flags(Vec<Flag<'a>>),
    /// `n EXISTS`.
    Exists(u32),
    /// `n RECENT`.
    Recent(u32),
    /// `n EXPUNGE`.
    Expunge(u32),
    /// `SEARCH`, with the CONDSTORE `(MODSEQ n)` if sent.
    Search {
        /// The matching numbers.
        numbers: Vec<u32>,
        /// The highest mod-sequence of the matches (RFC 7162).
        modseq: Option<u64>,
    },
    /// `ESEARCH` (RFC 4731).
    ESearch(ESearch<'a>),
    /// `n FETCH (...)`.
    Fetch(Fetch<'a>),
    /// `VANISHED` (RFC 7162 QRESYNC).
    Vanished {
        /// True for `VANISHED (EARLIER)`.
        earlier: bool,
        /// The expunged UIDs, as ranges.
        uids: SequenceSet,
    },
    /// `ENABLED` (RFC 5161).
    Enabled(Vec<Capability<'a>>),
    /// `ID` (RFC 2971).
    Id(IdParams<'a>),
    /// `NAMESPACE` (RFC 2342).
    Namespace(Namespace<'a>),
    /// Any other untagged data (`QUOTA`, `METADATA` ...), raw.
    Other {
        /// The keyword (or, for `* n KEYWORD`, the keyword after the number).
        name: Cow<'a, [u8]>,
        /// The rest of the response after the keyword, CRLF excluded.
        raw: Cow<'a, [u8]>,
    },
}

impl Data<'_> {
    /// The response's type name (`FETCH`, `CAPABILITY`, `EXISTS` ...).
    pub fn type_name(&self) -> &str {
        match self {
            Data::Capability(_) => "CAPABILITY",
            Data::List(_) => "LIST",
            Data::Lsub(_) => "LSUB",
            Data::Status(_) => "STATUS",
            Data::Flags(_) => "FLAGS",
            Data::Exists(_) => "EXISTS",
            Data::Recent(_) => "RECENT",
            Data::Expunge(_) => "EXPUNGE",
            Data::Search { .. } => "SEARCH",
            Data::ESearch(_) => "ESEARCH",
            Data::Fetch(_) => "FETCH",
            Data::Vanished { .. } => "VANISHED",
            Data::Enabled(_) => "ENABLED",
            Data::Id(_) => "ID",
            Data::Namespace(_) => "NAMESPACE",
            // The name is an atom: ASCII, so this never falls back.
            Data::Other { name, .. } => std::str::from_utf8(name).unwrap_or("UNKNOWN"),
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> Data<'static> {
        match self {
            Data::Capability(c) => Data::Capability(own_capabilities(c)),
            Data::List(l) => Data::List(l.into_owned()),
            Data::Lsub(l) => Data::Lsub(l.into_owned()),
            Data::Status(s) => Data::Status(s.into_owned()),
            Data::Flags(f) => Data::Flags(own_flags(f)),
            Data::Exists(n) => Data::Exists(n),
            Data::Recent(n) => Data::Recent(n),
            Data::Expunge(n) => Data::Expunge(n),
            Data::Search { numbers, modseq } => Data::Search { numbers, modseq },
            Data::ESearch(e) => Data::ESearch(e.into_owned()),
            Data::Fetch(f) => Data::Fetch(f.into_owned()),
            Data::Vanished { earlier, uids } => Data::Vanished { earlier, uids },
            Data::Enabled(c) => Data::Enabled(own_capabilities(c)),
            Data::Id(p) => {
                Data::Id(p.map(|v| v.into_iter().map(|(k, v)| (own(k), v.map(own))).collect()))
            }
            Data::Namespace(n) => Data::Namespace(n.into_owned()),
            Data::Other { name, raw } => Data::Other {
                name: own(name),
                raw: own(raw),
            },
        }
    }
}

/// One server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// A status response: tagged (`A1 OK ...`) or untagged (`* OK ...`, `* BYE ...`).
    Status {
        /// The tag, or `None` for `*`.
        tag: Option<Tag<'a>>,
        /// OK, NO, BAD, BYE or PREAUTH.
        kind: StatusKind,
        /// The response code, if any.
        code: Option<Code<'a>>,
        /// The human-readable text (may be empty, may be 8-bit).
        text: Cow<'a, [u8]>,
    },
    /// A continuation request: `+ text`, `+ base64`, or a bare `+` (mail.ru and others).
    Continuation {
        /// A response code, if the text starts with one.
        code: Option<Code<'a>>,
        /// The text or base64 challenge (may be empty).
        text: Cow<'a, [u8]>,
    },
    /// Untagged data.
    Data(Data<'a>),
}

impl Response<'_> {
    /// The type name for printing: `OK`/`NO`/`BAD`/`BYE`/`PREAUTH`, `CONTINUATION`, or the
    /// data's name (`FETCH`, `CAPABILITY`, `EXISTS` ...).
    pub fn type_name(&self) -> &str {
        match self {
            Response::Status { kind, .. } => kind.as_str(),
            Response::Continuation { .. } => "CONTINUATION",
            Response::Data(d) => d.type_name(),
        }
    }

    /// The tag of a tagged status response.
    pub fn tag(&self) -> Option<&Tag<'_>> {
        match self {
            Response::Status { tag, .. } => tag.as_ref(),
            _ => None,
        }
    }

    /// For a continuation request, its text decoded as base64 (a SASL challenge), if it is.
    pub fn challenge(&self) -> Option<Vec<u8>> {
        match self {
            Response::Continuation { code: None, text } => {
                base64::engine::general_purpose::STANDARD
                    .decode(&**text)
                    .ok()
            }
            _ => None,
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> Response<'static> {
        match self {
            Response::Status {
                tag,
                kind,
                code,
                text,
            } => Response::Status {
                tag: tag.map(Tag::into_owned),
                kind,
                code: code.map(Code::into_owned),
                text: own(text),
            },
            Response::Continuation { code, text } => Response::Continuation {
                code: code.map(Code::into_owned),
                text: own(text),
            },
            Response::Data(d) => Response::Data(d.into_owned()),
        }
    }
}

/// The kind of a greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreetingKind {
    /// `* OK`: log in next.
    Ok,
    /// `* PREAUTH`: already authenticated.
    PreAuth,
    /// `* BYE`: the server refuses the connection.
    Bye,
}

/// `greeting = "*" SP (resp-cond-auth / resp-cond-bye) CRLF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting<'a> {
    /// OK, PREAUTH or BYE.
    pub kind: GreetingKind,
    /// The response code (often `CAPABILITY`).
    pub code: Option<Code<'a>>,
    /// The text (may be 8-bit).
    pub text: Cow<'a, [u8]>,
}

impl Greeting<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> Greeting<'static> {
        Greeting {
            kind: self.kind,
            code: self.code.map(Code::into_owned),
            text: own(self.text),
        }
    }
}

/// Recognises `OK`, `NO`, `BAD`, `BYE`, `PREAUTH` followed by SP or the end of the line.
pub(crate) fn status_keyword(input: &[u8]) -> Option<(StatusKind, &[u8])> {
    let n = input.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let word = &input[..n];
    let kind = [
        ("OK", StatusKind::Ok),
        ("NO", StatusKind::No),
        ("BAD", StatusKind::Bad),
        ("BYE", StatusKind::Bye),
        ("PREAUTH", StatusKind::PreAuth),
    ]
    .into_iter()
    .find(|(k, _)| word.eq_ignore_ascii_case(k.as_bytes()))?
    .1;
    let rest = &input[n..];
    match rest.first() {
        None | Some(b' ') | Some(b'\r') => Some((kind, rest)),
        _ => None,
    }
}

/// The text of a status line: everything after the keyword (and one SP) up to the line's end.
fn status_rest<'a>(line: &'a [u8], ctx: &Ctx) -> (Option<Code<'a>>, Cow<'a, [u8]>) {
    let (code, text) = resp_text(spaces(line), ctx);
    (code, Cow::Borrowed(text))
}

/// Splits the line's CRLF off a frame: the parsers below see the frame without its final CRLF.
fn without_crlf(frame: &[u8]) -> PResult<'_, &[u8]> {
    match frame.strip_suffix(b"\r\n") {
        Some(body) => Ok((&frame[frame.len()..], body)),
        None => failure(frame, Problem::Expected("CRLF at the end of the response")),
    }
}

/// Requires the end of the response after optional trailing spaces (Exchange: `* SEARCH 1 2 `).
fn end(rest: &[u8]) -> PResult<'_, ()> {
    let rest = spaces(rest);
    if rest.is_empty() {
        Ok((rest, ()))
    } else {
        expected(rest, "the end of the response")
    }
}

/// `response` over one whole frame (CRLF included). The frame's lines contain no NUL and no
/// bare CR/LF outside literals (the framer checked); `text` may be 8-bit.
pub(crate) fn response<'a>(frame: &'a [u8], ctx: &Ctx) -> PResult<'a, Response<'a>> {
    let (_, body) = without_crlf(frame)?;
    let (rest, r) = match body.first() {
        // continue-req = "+" SP (resp-text / base64) CRLF; a bare "+" is tolerated (mail.ru,
        // older Exchange, Zimbra send `+` or `+ ` before a SASL step).
        Some(b'+') => {
            let (code, text) = status_rest(&body[1..], ctx);
            (&body[body.len()..], Response::Continuation { code, text })
        }
        Some(b'*') => {
            let (rest, ()) = sp1(&body[1..])?;
            untagged(rest, ctx)?
        }
        _ => {
            let (rest, t) = tag(body)?;
            let (rest, ()) = sp1(rest)?;
            match status_keyword(rest) {
                Some((kind @ (StatusKind::Ok | StatusKind::No | StatusKind::Bad), rest)) => {
                    let (code, text) = status_rest(rest, ctx);
                    (
                        &body[body.len()..],
                        Response::Status {
                            tag: Some(t),
                            kind,
                            code,
                            text,
                        },
                    )
                }
                _ => return failure(rest, Problem::Expected("OK, NO or BAD after a tag")),
            }
        }
    };
    let (_, ()) = end(rest)?;
    Ok((&frame[frame.len()..], r))
}

/// Everything after `* `.
fn untagged<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Response<'a>> {
    if let Some((kind, rest)) = status_keyword(input) {
        let (code, text) = status_rest(rest, ctx);
        return Ok((
            &input[input.len()..],
            Response::Status {
                tag: None,
                kind,
                code,
                text,
            },
        ));
    }
    if input.first() == Some(&b'-') {
        return failure(input, Problem::Expected("a non-negative number"));
    }
    if input.first().is_some_and(u8::is_ascii_digit) {
        // message-data / mailbox-data with a leading number. An overflowing number
        // (`* 4294967296 EXISTS`) is refused here.
        let (rest, n) = number(input)?;
        let (rest, ()) = sp1(rest)?;
        let k = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let word = &rest[..k];
        let after = &rest[k..];
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        let data = if is("EXISTS") {
            Data::Exists(n)
        } else if is("RECENT") {
            Data::Recent(n)
        } else if is("EXPUNGE") {
            Data::Expunge(n)
        } else if is("FETCH") {
            let (r, ()) = sp1(after)?;
            let (r, f) = msg_att(r, n, ctx)?;
            return Ok((r, Response::Data(Data::Fetch(f))));
        } else if k > 0 {
            return Ok((
                &input[input.len()..],
                Response::Data(Data::Other {
                    name: Cow::Borrowed(word),
                    raw: Cow::Borrowed(input),
                }),
            ));
        } else {
            return expected(rest, "EXISTS, RECENT, EXPUNGE or FETCH");
        };
        return Ok((after, Response::Data(data)));
    }
    let (after, word) = atom(input)?;
    let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
    let (rest, data) = if is("CAPABILITY") {
        let (r, ()) = sp(after)?;
        let (r, c) = capability_list(r)?;
        (r, Data::Capability(c))
    } else if is("LIST") || is("XLIST") {
        let (r, ()) = sp(after)?;
        let (r, l) = mailbox_list(r, ctx)?;
        (r, Data::List(l))
    } else if is("LSUB") {
        let (r, ()) = sp(after)?;
        let (r, l) = mailbox_list(r, ctx)?;
        (r, Data::Lsub(l))
    } else if is("STATUS") {
        let (r, ()) = sp(after)?;
        let (r, s) = mailbox_status(r, ctx)?;
        (r, Data::Status(s))
    } else if is("FLAGS") {
        let (r, ()) = sp(after)?;
        let (r, f) = flag_list(r)?;
        (r, Data::Flags(f))
    } else if is("SEARCH") || is("SORT") {
        search(after)?
    } else if is("ESEARCH") {
        esearch(after, ctx)?
    } else if is("VANISHED") {
        let (r, ()) = sp(after)?;
        let (r, earlier) = match keyword(r, "(EARLIER)") {
            Ok((r, ())) => (sp(r)?.0, true),
            Err(_) => (r, false),
        };
        let (r, uids) = sequence_set(r)?;
        (r, Data::Vanished { earlier, uids })
    } else if is("ENABLED") {
        let rest = spaces(after);
        if rest.is_empty() {
            (rest, Data::Enabled(Vec::new()))
        } else {
            let (r, c) = capability_list(rest)?;
            (r, Data::Enabled(c))
        }
    } else if is("ID") {
        let (r, ()) = sp(after)?;
        id_params(r, ctx)?
    } else if is("NAMESPACE") {
        let (r, ()) = sp(after)?;
        let (r, n) = namespace(r, ctx)?;
        (r, Data::Namespace(n))
    } else {
        let raw = after.strip_prefix(b" ").unwrap_or(after);
        // `* x EXISTS`, `* 1x FETCH`: a count or sequence number that is not a number.
        let next = spaces(raw);
        let k = next.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let counted = ["EXISTS", "RECENT", "EXPUNGE", "FETCH"];
        if after.first() == Some(&b' ')
            && counted
                .iter()
                .any(|w| next[..k].eq_ignore_ascii_case(w.as_bytes()))
        {
            return failure(
                input,
                Problem::Expected("a number before EXISTS, RECENT, EXPUNGE or FETCH"),
            );
        }
        (
            &after[after.len()..],
            Data::Other {
                name: Cow::Borrowed(word),
                raw: Cow::Borrowed(raw),
            },
        )
    };
    Ok((rest, Response::Data(data)))
}

/// `"SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]`, tolerating a
/// trailing space (Exchange, GreenMail: `* SEARCH ` with no results).
pub(crate) fn search(input: &[u8]) -> PResult<'_, Data<'_>> {
    let mut numbers = Vec::new();
    let mut modseq = None;
    let mut rest = spaces(input);
    while let Some(&b) = rest.first() {
        if b == b'(' {
            let (r, ()) = keyword(&rest[1..], "MODSEQ")?;
            let (r, ()) = sp(r)?;
            let (r, m) = number64(r)?;
            let (r, ()) = byte(r, b')', "\")\"")?;
            modseq = Some(m);
            rest = spaces(r);
            break;
        }
        let (r, n) = number(rest)?;
        numbers.push(n);
        if !matches!(r.first(), None | Some(b' ')) {
            return expected(r, "a space");
        }
        rest = spaces(r);
    }
    Ok((rest, Data::Search { numbers, modseq }))
}

/// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`.
fn esearch<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Data<'a>> {
    let (mut rest, (tag, uid)) = esearch_correlator(input, ctx)?;
    let mut items = Vec::new();
    while !rest.is_empty() {
        let (r, item) = search_return_data(rest, ctx)?;
        items.push(item);
        if !matches!(r.first(), None | Some(b' ')) {
            return expected(r, "a space");
        }
        rest = spaces(r);
    }
    Ok((rest, Data::ESearch(ESearch { tag, uid, items })))
}

/// An ESEARCH response's correlator (the tag it answers) and whether it gives UIDs.
type ESearchHead<'a> = (Option<Cow<'a, [u8]>>, bool);

/// What follows `"ESEARCH"` up to the return data: `[search-correlator] [SP "UID"]`, with
/// `search-correlator = SP "(" "TAG" SP tag-string ")"`.
fn esearch_correlator<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, ESearchHead<'a>> {
    let mut rest = spaces(input);
    let mut tag = None;
    if rest.first() == Some(&b'(') {
        let (r, ()) = keyword(&rest[1..], "TAG")?;
        let (r, ()) = sp(r)?;
        let (r, t) = string(r, ctx)?;
        let (r, ()) = byte(r, b')', "\")\"")?;
        tag = Some(t);
        rest = spaces(r);
    }
    let mut uid = false;
    if rest.len() >= 3
        && rest[..3].eq_ignore_ascii_case(b"UID")
        && matches!(rest.get(3), None | Some(b' '))
    {
        uid = true;
        rest = spaces(&rest[3..]);
    }
    Ok((rest, (tag, uid)))
}

/// `search-return-data = search-modifier-name SP search-return-value`: one ESEARCH item.
fn search_return_data<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, ESearchItem<'a>> {
    let (r, name) = atom(input)?;
    let (r, ()) = sp(r)?;
    let is = |w: &str| name.eq_ignore_ascii_case(w.as_bytes());
    if is("MIN") {
        number(r).map(|(r, n)| (r, ESearchItem::Min(n)))
    } else if is("MAX") {
        number(r).map(|(r, n)| (r, ESearchItem::Max(n)))
    } else if is("COUNT") {
        number(r).map(|(r, n)| (r, ESearchItem::Count(n)))
    } else if is("ALL") {
        sequence_set(r).map(|(r, s)| (r, ESearchItem::All(s)))
    } else if is("MODSEQ") {
        number64(r).map(|(r, n)| (r, ESearchItem::ModSeq(n)))
    } else {
        let (r, v) = skip_value(r, ctx)?;
        Ok((
            r,
            ESearchItem::Other {
                name: Cow::Borrowed(name),
                value: Cow::Borrowed(v),
            },
        ))
    }
}

/// The start of an ESEARCH line too long to hold whole, whose `ALL` set is to be read in
/// pieces: `line` is its first bytes (no line end among them). Returns the offset of the set's
/// first byte, the correlator and the UID indicator, if `line` starts with `* ESEARCH`, and the
/// correlator and every item before `ALL` are whole within it; `None` otherwise (the line is
/// then simply too long).
pub(crate) fn esearch_all_start<'a>(line: &'a [u8], ctx: &Ctx) -> Option<(usize, ESearchHead<'a>)> {
    const HEAD: &[u8] = b"* ESEARCH ";
    if !line.get(..HEAD.len())?.eq_ignore_ascii_case(HEAD) {
        return None;
    }
    let (mut rest, head) = esearch_correlator(&line[HEAD.len() - 1..], ctx).ok()?;
    loop {
        let (r, name) = atom(rest).ok()?;
        if name.eq_ignore_ascii_case(b"ALL") {
            let (r, ()) = sp(r).ok()?;
            return Some((line.len() - r.len(), head));
        }
        let (r, _) = search_return_data(rest, ctx).ok()?;
        let (r, ()) = sp(r).ok()?;
        rest = spaces(r);
    }
}

/// `id-response = "ID" SP id-params-list`;
/// `id-params-list = "(" *(string SP nstring) ")" / nil`.
fn id_params<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Data<'a>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, Data::Id(None)));
    }
    let (mut rest, ()) = byte(input, b'(', "NIL or a list of ID parameters")?;
    let mut params = Vec::new();
    loop {
        rest = spaces(rest);
        if let Some(r) = rest.strip_prefix(b")") {
            return Ok((r, Data::Id(Some(params))));
        }
        let (r, k) = string(rest, ctx)?;
        let (r, ()) = sp(r)?;
        let (r, v) = nstring(r, ctx)?;
        params.push((k, v));
        rest = r;
    }
}

/// `greeting = "*" SP (resp-cond-auth / resp-cond-bye) CRLF`, over one frame.
pub(crate) fn greeting<'a>(frame: &'a [u8], ctx: &Ctx) -> PResult<'a, Greeting<'a>> {
    let (_, body) = without_crlf(frame)?;
    let Some(rest) = body.strip_prefix(b"* ") else {
        return failure(body, Problem::Expected("\"* \" starting the greeting"));
    };
    let (kind, rest) = match status_keyword(rest) {
        Some((StatusKind::Ok, r)) => (GreetingKind::Ok, r),
        Some((StatusKind::PreAuth, r)) => (GreetingKind::PreAuth, r),
        Some((StatusKind::Bye, r)) => (GreetingKind::Bye, r),
        _ => {
            return failure(
                rest,
                Problem::Expected("OK, PREAUTH or BYE in the greeting"),
            )
        }
    };
    let (code, text) = status_rest(rest, ctx);
    Ok((&frame[frame.len()..], Greeting { kind, code, text }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::primitive::TEST_CTX as CTX;

    fn parse(s: &[u8]) -> Response<'_> {
        match response(s, &CTX) {
            Ok((_, r)) => r,
            Err(e) => panic!("{:?}: {e:?}", String::from_utf8_lossy(s)),
        }
    }

    fn data(s: &[u8]) -> Data<'_> {
        match parse(s) {
            Response::Data(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tagged_and_untagged_status() {
        let r = parse(b"A1 OK [READ-WRITE] SELECT completed\r\n");
        assert_eq!(r.tag().unwrap().as_bytes(), b"A1");
        crate::assert_matches!(
            r,
            Response::Status {
                kind: StatusKind::Ok,
                code: Some(Code::ReadWrite),
                ..
            }
        );
        assert_eq!(parse(b"* BYE logging out\r\n").type_name(), "BYE");
        assert_eq!(parse(b"a2 no nope\r\n").type_name(), "NO");
    }

    #[test]
    fn lowercase_keywords() {
        // Zimbra and mail.ru have been seen sending lower-case keywords.
        assert_eq!(parse(b"* ok hi\r\n").type_name(), "OK");
        assert_eq!(data(b"* 3 exists\r\n"), Data::Exists(3));
        crate::assert_matches!(data(b"* 1 fetch (uid 5)\r\n"), Data::Fetch(f) if f.uid() == Some(5));
    }

    #[test]
    fn icloud_bye_without_text_and_ppops_ok_without_text() {
        // iCloud sends `* BYE` on logout (imap-proto #131); ppops.net `A6 OK` (node-imap #539).
        crate::assert_matches!(parse(b"* BYE\r\n"), Response::Status { kind: StatusKind::Bye, ref text, .. } if text.is_empty());
        crate::assert_matches!(
            parse(b"A6 OK\r\n"),
            Response::Status {
                kind: StatusKind::Ok,
                ..
            }
        );
    }

    #[test]
    fn gmail_code_without_text() {
        // Gmail: `* OK [HIGHESTMODSEQ 13637]` (modern-email/defects #28).
        let r = parse(b"* OK [HIGHESTMODSEQ 13637]\r\n");
        crate::assert_matches!(r, Response::Status { code: Some(Code::HighestModSeq(13637)), ref text, .. } if text.is_empty());
    }

    #[test]
    fn doubled_spaces_between_tokens() {
        // Seen from Exchange and QQ Mail: extra spaces after `*`, the tag, the number, the
        // status keyword.
        crate::assert_matches!(data(b"*  1 FETCH (UID 5)\r\n"), Data::Fetch(f) if f.uid() == Some(5));
        crate::assert_matches!(data(b"* 1  FETCH  (UID 5)\r\n"), Data::Fetch(f) if f.uid() == Some(5));
        assert_eq!(data(b"* 3  EXISTS\r\n"), Data::Exists(3));
        let r = parse(b"A1  OK  [READ-WRITE]  done\r\n");
        crate::assert_matches!(r, Response::Status { code: Some(Code::ReadWrite), ref text, .. } if text.as_ref() == b"done");
        crate::assert_matches!(data(b"*  CAPABILITY  IMAP4rev1\r\n"), Data::Capability(c) if c.len() == 1);
    }

    #[test]
    fn code_followed_by_text_without_a_space() {
        let r = parse(b"* OK [HIGHESTMODSEQ 42]Highest\r\n");
        crate::assert_matches!(r, Response::Status { code: Some(Code::HighestModSeq(42)), ref text, .. } if text.as_ref() == b"Highest");
    }

    #[test]
    fn continuation_forms() {
        // mail.ru: `+ ` before the XOAUTH2 response (MailKit #345); a bare `+` too.
        for line in [&b"+ \r\n"[..], b"+\r\n"] {
            crate::assert_matches!(parse(line), Response::Continuation { ref text, .. } if text.is_empty());
        }
        let r = parse(b"+ Ready for literal data\r\n");
        assert_eq!(r.type_name(), "CONTINUATION");
        let r = parse(b"+ eyJzdGF0dXMiOiI0MDAifQ==\r\n");
        assert_eq!(r.challenge().as_deref(), Some(&b"{\"status\":\"400\"}"[..]));
    }

    #[test]
    fn eight_bit_text_in_status() {
        let r = parse("* OK Добро пожаловать\r\n".as_bytes());
        crate::assert_matches!(r, Response::Status { ref text, .. } if text.as_ref() == "Добро пожаловать".as_bytes());
    }

    #[test]
    fn capability_with_icloud_junk() {
        // iCloud sends vendor atoms; all are kept as sent.
        let d = data(b"* CAPABILITY XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN AUTH=ATOKEN2 AUTH=XOAUTH2 ID UNSELECT X-APPLE-REMOTE-LINKS COMPRESS=DEFLATE \r\n");
        let Data::Capability(c) = d else { panic!() };
        assert_eq!(c.len(), 12);
        assert!(c.iter().any(|c| c.auth_mechanism() == Some(b"XOAUTH2")));
        assert!(c.iter().any(|c| c.is("imap4rev1")));
    }

    #[test]
    fn numbers_overflow_is_refused() {
        assert!(response(b"* 4294967296 EXISTS\r\n", &CTX).is_err());
        assert!(response(b"* -1 EXISTS\r\n", &CTX).is_err());
        for bad in [
            &b"* x EXISTS\r\n"[..],
            b"* two  recent\r\n",
            b"* n FETCH (UID 1)\r\n",
        ] {
            assert!(response(bad, &CTX).is_err(), "{bad:?}");
        }
        assert_eq!(data(b"* 4294967295 EXISTS\r\n"), Data::Exists(u32::MAX));
    }

    #[test]
    fn search_forms() {
        assert_eq!(
            data(b"* SEARCH\r\n"),
            Data::Search {
                numbers: vec![],
                modseq: None
            }
        );
        // Exchange / GreenMail: trailing space.
        assert_eq!(
            data(b"* SEARCH \r\n"),
            Data::Search {
                numbers: vec![],
                modseq: None
            }
        );
        assert_eq!(
            data(b"* SEARCH 2 84 882 \r\n"),
            Data::Search {
                numbers: vec![2, 84, 882],
                modseq: None
            }
        );
        assert_eq!(
            data(b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"),
            Data::Search {
                numbers: vec![2, 5, 6],
                modseq: Some(917162500)
            }
        );
        assert!(response(b"* SEARCH 1x\r\n", &CTX).is_err());
    }

    #[test]
    fn esearch_forms() {
        let Data::ESearch(e) =
            data(b"* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11 MODSEQ 917162500\r\n")
        else {
            panic!()
        };
        assert_eq!(e.tag.as_deref(), Some(&b"A282"[..]));
        assert!(e.uid);
        assert_eq!(e.items.len(), 4);
        crate::assert_matches!(&e.items[2], ESearchItem::All(s) if s.ranges().len() == 2);
        let Data::ESearch(e) = data(b"* ESEARCH (TAG \"A1\")\r\n") else {
            panic!()
        };
        assert!(e.items.is_empty());
    }

    #[test]
    fn vanished_enabled_id_namespace_flags() {
        crate::assert_matches!(data(b"* VANISHED (EARLIER) 300:310,405,411\r\n"), Data::Vanished { earlier: true, uids } if uids.ranges().len() == 3);
        crate::assert_matches!(
            data(b"* VANISHED 1:*\r\n"),
            Data::Vanished { earlier: false, .. }
        );
        crate::assert_matches!(data(b"* ENABLED CONDSTORE QRESYNC\r\n"), Data::Enabled(c) if c.len() == 2);
        crate::assert_matches!(data(b"* ENABLED\r\n"), Data::Enabled(c) if c.is_empty());
        assert_eq!(data(b"* ID NIL\r\n"), Data::Id(None));
        let Data::Id(Some(p)) = data(b"* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n") else {
            panic!()
        };
        assert_eq!(p.len(), 2);
        assert!(p[1].1.is_none());
        crate::assert_matches!(
            data(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
            Data::Namespace(_)
        );
        crate::assert_matches!(data(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"), Data::Flags(f) if f.len() == 5);
    }

    #[test]
    fn list_lsub_status_xlist() {
        crate::assert_matches!(
            data(b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n"),
            Data::List(_)
        );
        crate::assert_matches!(
            data(b"* LSUB () \".\" #news.comp.mail.misc\r\n"),
            Data::Lsub(_)
        );
        crate::assert_matches!(
            data(b"* XLIST (\\HasNoChildren \\Inbox) \"/\" \"Inbox\"\r\n"),
            Data::List(_)
        );
        // Exchange: trailing space after the STATUS list too.
        crate::assert_matches!(data(b"* STATUS INBOX (MESSAGES 0) \r\n"), Data::Status(_));
    }

    #[test]
    fn unknown_data_is_kept_raw() {
        let d = data(b"* QUOTA \"\" (STORAGE 10 512)\r\n");
        assert_eq!(d.type_name(), "QUOTA");
        crate::assert_matches!(d, Data::Other { raw, .. } if raw.as_ref() == b"\"\" (STORAGE 10 512)");
        assert_eq!(data(b"* 5 XTHING a b\r\n").type_name(), "XTHING");
    }

    #[test]
    fn refusals() {
        for bad in [
            &b"A1 FOO bar\r\n"[..],
            b"* \r\n",
            b"A1 OK x",
            b"* 1 FETCH (UID 1\r\n",
            b"* LIST (\\Noselect) \"/\" \"a\0b\"\r\n",
        ] {
            assert!(
                response(bad, &CTX).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn greetings() {
        let (_, g) = greeting(
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n",
            &CTX,
        )
        .unwrap();
        assert_eq!(g.kind, GreetingKind::Ok);
        crate::assert_matches!(g.code, Some(Code::Capability(_)));
        assert_eq!(
            greeting(b"* PREAUTH hi\r\n", &CTX).unwrap().1.kind,
            GreetingKind::PreAuth
        );
        assert_eq!(
            greeting(b"* bye busy\r\n", &CTX).unwrap().1.kind,
            GreetingKind::Bye
        );
        // SmarterMail sent an SMTP-style `421` (MailKit #1100): not a greeting.
        assert!(greeting(b"421 Server is busy, try again later.\r\n", &CTX).is_err());
        // 163.com greets in 8-bit.
        assert!(greeting(
            "* OK Coremail System IMap Server Ready(163com[欢迎])\r\n".as_bytes(),
            &CTX
        )
        .is_ok());
    }
}
