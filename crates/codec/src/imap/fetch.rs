//! FETCH responses (RFC 3501 §7.4.2, RFC 9051 §7.5.2; RFC 3516 BINARY, RFC 7162 MODSEQ,
//! Gmail's X-GM-MSGID / X-GM-THRID / X-GM-LABELS).
//!
//! `* 12 FETCH (UID 7 FLAGS (\Seen) BODY[] {4096} ...)`. Item names are case-insensitive
//! (some servers send `uid`); extra spaces before `)` are tolerated (QQ: `(UID 19436 )`).
//! Items this parser does not know are skipped by shape (balanced lists, strings, literals)
//! and kept raw.

use std::borrow::Cow;

use crate::core::parse::{expected, failure, PResult, Problem};

use super::body::{body, BodyStructure};
use super::envelope::{envelope, ImapEnvelope};
use super::flag::{flag_list, own_flags, Flag};
use super::primitive::{
    astring, byte, literal, nstring, number, number64, own, paren_list, quoted, skip_value, sp,
    Ctx, STREAMED_MARKER,
};

/// What a body section item fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// `BODY[...]`.
    Body,
    /// `BINARY[...]` (RFC 3516).
    Binary,
    /// `RFC822`: the whole message.
    Rfc822,
    /// `RFC822.HEADER`.
    Rfc822Header,
    /// `RFC822.TEXT`.
    Rfc822Text,
}

/// `section-text` / `section-msgtext` (RFC 3501 §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText<'a> {
    /// `HEADER`.
    Header,
    /// `HEADER.FIELDS (...)`.
    HeaderFields(Vec<Cow<'a, [u8]>>),
    /// `HEADER.FIELDS.NOT (...)`.
    HeaderFieldsNot(Vec<Cow<'a, [u8]>>),
    /// `TEXT`.
    Text,
    /// `MIME`.
    Mime,
}

/// A body section: which item, which part, which text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// The item kind.
    pub kind: SectionKind,
    /// The item name as sent, origin excluded: `BODY[]`, `body[1.MIME]`, `RFC822.HEADER`.
    pub name: Cow<'a, [u8]>,
    /// The part path (`1.2` → `[1, 2]`); empty for the whole message.
    pub part: Vec<u32>,
    /// The text specifier, if any.
    pub text: Option<SectionText<'a>>,
}

impl Section<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> Section<'static> {
        let own_list = |l: Vec<Cow<'_, [u8]>>| l.into_iter().map(own).collect();
        Section {
            kind: self.kind,
            name: own(self.name),
            part: self.part,
            text: self.text.map(|t| match t {
                SectionText::Header => SectionText::Header,
                SectionText::HeaderFields(l) => SectionText::HeaderFields(own_list(l)),
                SectionText::HeaderFieldsNot(l) => SectionText::HeaderFieldsNot(own_list(l)),
                SectionText::Text => SectionText::Text,
                SectionText::Mime => SectionText::Mime,
            }),
        }
    }

    /// The item name as text (lossy for 8-bit header names).
    pub fn name_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

/// The value of a body section item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionData<'a> {
    /// NIL: the section does not exist.
    Nil,
    /// The bytes, from a quoted string or a literal.
    Inline(Cow<'a, [u8]>),
    /// The bytes were passed on as [`super::Event::BodyChunk`]s; this many of them.
    Streamed {
        /// The literal's length.
        len: u64,
    },
}

impl SectionData<'_> {
    /// The length in bytes (0 for NIL).
    pub fn len(&self) -> u64 {
        match self {
            SectionData::Nil => 0,
            SectionData::Inline(b) => b.len() as u64,
            SectionData::Streamed { len } => *len,
        }
    }

    /// True if the section is NIL or empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, if they are here (not NIL, not streamed).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            SectionData::Inline(b) => Some(b),
            _ => None,
        }
    }
}

/// One FETCH item (`msg-att-dynamic` / `msg-att-static`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchItem<'a> {
    /// `UID`.
    Uid(u32),
    /// `FLAGS`.
    Flags(Vec<Flag<'a>>),
    /// `INTERNALDATE`, as sent (`"17-Jul-1996 02:44:25 -0700"`).
    InternalDate(Cow<'a, [u8]>),
    /// `RFC822.SIZE` (64-bit as RFC 9051 allows).
    Rfc822Size(u64),
    /// `ENVELOPE`.
    Envelope(Box<ImapEnvelope<'a>>),
    /// `BODYSTRUCTURE`.
    BodyStructure(BodyStructure<'a>),
    /// `BODY` (the non-extensible form; Yahoo sends extension data anyway).
    Body(BodyStructure<'a>),
    /// `BODY[section]<origin>`, `BINARY[section]<origin>`, `RFC822`, `RFC822.HEADER`,
    /// `RFC822.TEXT`.
    Section {
        /// Which section.
        section: Section<'a>,
        /// `<origin>`: the offset of a partial fetch.
        origin: Option<u32>,
        /// The bytes.
        data: SectionData<'a>,
    },
    /// `BINARY.SIZE[section]` (RFC 3516).
    BinarySize {
        /// Which section.
        section: Section<'a>,
        /// Its decoded size.
        size: u64,
    },
    /// `MODSEQ (n)` (RFC 7162).
    ModSeq(u64),
    /// `X-GM-MSGID` (Gmail).
    GmailMessageId(u64),
    /// `X-GM-THRID` (Gmail).
    GmailThreadId(u64),
    /// `X-GM-LABELS` (Gmail): labels as sent (`\Inbox`, `"My label"` unquoted).
    GmailLabels(Vec<Cow<'a, [u8]>>),
    /// An item this parser does not know, kept raw.
    Other {
        /// The item name, as sent.
        name: Cow<'a, [u8]>,
        /// Its value, as sent.
        value: Cow<'a, [u8]>,
    },
}

impl FetchItem<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> FetchItem<'static> {
        match self {
            FetchItem::Uid(n) => FetchItem::Uid(n),
            FetchItem::Flags(f) => FetchItem::Flags(own_flags(f)),
            FetchItem::InternalDate(d) => FetchItem::InternalDate(own(d)),
            FetchItem::Rfc822Size(n) => FetchItem::Rfc822Size(n),
            FetchItem::Envelope(e) => FetchItem::Envelope(Box::new(e.into_owned())),
            FetchItem::BodyStructure(b) => FetchItem::BodyStructure(b.into_owned()),
            FetchItem::Body(b) => FetchItem::Body(b.into_owned()),
            FetchItem::Section {
                section,
                origin,
                data,
            } => FetchItem::Section {
                section: section.into_owned(),
                origin,
                data: match data {
                    SectionData::Nil => SectionData::Nil,
                    SectionData::Inline(b) => SectionData::Inline(own(b)),
                    SectionData::Streamed { len } => SectionData::Streamed { len },
                },
            },
            FetchItem::BinarySize { section, size } => FetchItem::BinarySize {
                section: section.into_owned(),
                size,
            },
            FetchItem::ModSeq(n) => FetchItem::ModSeq(n),
            FetchItem::GmailMessageId(n) => FetchItem::GmailMessageId(n),
            FetchItem::GmailThreadId(n) => FetchItem::GmailThreadId(n),
            FetchItem::GmailLabels(l) => FetchItem::GmailLabels(l.into_iter().map(own).collect()),
            FetchItem::Other { name, value } => FetchItem::Other {
                name: own(name),
                value: own(value),
            },
        }
    }
}

/// A FETCH response: `nz-number SP "FETCH" SP msg-att`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch<'a> {
    /// The message sequence number.
    pub seq: u32,
    /// The items, in the order sent.
    pub items: Vec<FetchItem<'a>>,
}

impl<'a> Fetch<'a> {
    /// The UID, if sent.
    pub fn uid(&self) -> Option<u32> {
        self.items.iter().find_map(|i| match i {
            FetchItem::Uid(n) => Some(*n),
            _ => None,
        })
    }

    /// The flags, if sent.
    pub fn flags(&self) -> Option<&[Flag<'a>]> {
        self.items.iter().find_map(|i| match i {
            FetchItem::Flags(f) => Some(f.as_slice()),
            _ => None,
        })
    }

    /// `RFC822.SIZE`, if sent.
    pub fn rfc822_size(&self) -> Option<u64> {
        self.items.iter().find_map(|i| match i {
            FetchItem::Rfc822Size(n) => Some(*n),
            _ => None,
        })
    }

    /// `INTERNALDATE`, if sent.
    pub fn internal_date(&self) -> Option<&[u8]> {
        self.items.iter().find_map(|i| match i {
            FetchItem::InternalDate(d) => Some(&**d),
            _ => None,
        })
    }

    /// The envelope, if sent.
    pub fn envelope(&self) -> Option<&ImapEnvelope<'a>> {
        self.items.iter().find_map(|i| match i {
            FetchItem::Envelope(e) => Some(&**e),
            _ => None,
        })
    }

    /// `BODYSTRUCTURE` (or, failing that, `BODY`), if sent.
    pub fn body_structure(&self) -> Option<&BodyStructure<'a>> {
        let find = |want_extensible: bool| {
            self.items.iter().find_map(|i| match i {
                FetchItem::BodyStructure(b) if want_extensible => Some(b),
                FetchItem::Body(b) if !want_extensible => Some(b),
                _ => None,
            })
        };
        find(true).or_else(|| find(false))
    }

    /// `MODSEQ`, if sent.
    pub fn modseq(&self) -> Option<u64> {
        self.items.iter().find_map(|i| match i {
            FetchItem::ModSeq(n) => Some(*n),
            _ => None,
        })
    }

    /// The body sections, with their origin and data, in the order sent.
    pub fn sections(&self) -> impl Iterator<Item = (&Section<'a>, Option<u32>, &SectionData<'a>)> {
        self.items.iter().filter_map(|i| match i {
            FetchItem::Section {
                section,
                origin,
                data,
            } => Some((section, *origin, data)),
            _ => None,
        })
    }

    /// An owned copy.
    pub fn into_owned(self) -> Fetch<'static> {
        Fetch {
            seq: self.seq,
            items: self.items.into_iter().map(FetchItem::into_owned).collect(),
        }
    }
}

/// Length of a fetch item name's keyword: letters, digits, `.`, `-`, `_`.
fn keyword_len(input: &[u8]) -> usize {
    input
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        .count()
}

/// `section = "[" [section-spec] "]"` after the item keyword; also `section-binary`.
fn section_spec<'a>(
    input: &'a [u8],
    ctx: &Ctx,
    binary: bool,
) -> PResult<'a, (Vec<u32>, Option<SectionText<'a>>)> {
    let (mut rest, ()) = byte(input, b'[', "\"[\"")?;
    let mut part = Vec::new();
    // section-part = nz-number *("." nz-number)
    while rest.first().is_some_and(u8::is_ascii_digit) {
        let (r, n) = number(rest)?;
        part.push(n);
        match r.strip_prefix(b".") {
            Some(r2) if r2.first().is_some_and(u8::is_ascii_digit) => rest = r2,
            Some(r2) if !binary && !part.is_empty() => {
                rest = r2;
                break;
            }
            _ => {
                rest = r;
                break;
            }
        }
    }
    let after_dot =
        !part.is_empty() && input.len() > rest.len() && input[input.len() - rest.len() - 1] == b'.';
    if let Some(r) = rest.strip_prefix(b"]") {
        if after_dot {
            return expected(rest, "a section text after \".\"");
        }
        return Ok((r, (part, None)));
    }
    if binary {
        return expected(rest, "\"]\"");
    }
    let n = keyword_len(rest);
    let word = &rest[..n];
    let after = &rest[n..];
    let is = |k: &str| word.eq_ignore_ascii_case(k.as_bytes());
    let (rest, text) = if is("HEADER") {
        (after, SectionText::Header)
    } else if is("TEXT") {
        (after, SectionText::Text)
    } else if is("MIME") {
        (after, SectionText::Mime)
    } else if is("HEADER.FIELDS") || is("HEADER.FIELDS.NOT") {
        let (r, ()) = sp(after)?;
        let (r, fields) = paren_list(r, |i| astring(i, ctx))?;
        let t = if is("HEADER.FIELDS") {
            SectionText::HeaderFields(fields)
        } else {
            SectionText::HeaderFieldsNot(fields)
        };
        (r, t)
    } else {
        return expected(rest, "a section (HEADER, TEXT, MIME, HEADER.FIELDS ...)");
    };
    let (rest, ()) = byte(rest, b']', "\"]\"")?;
    Ok((rest, (part, Some(text))))
}

/// A body section item's name: `BODY[...]`, `BINARY[...]`, `BINARY.SIZE[...]`, `RFC822`,
/// `RFC822.HEADER`, `RFC822.TEXT`, then `<origin>` if any. Returns `None` if `input` does not
/// start with one. The returned flag is true for `BINARY.SIZE`.
pub(crate) fn section_name<'a>(
    input: &'a [u8],
    ctx: &Ctx,
) -> PResult<'a, Option<(Section<'a>, Option<u32>, bool)>> {
    let n = keyword_len(input);
    let word = &input[..n];
    let after = &input[n..];
    let is = |k: &str| word.eq_ignore_ascii_case(k.as_bytes());
    let (kind, is_size, rest, part, text) = if after.first() == Some(&b'[') {
        let (kind, is_size) = if is("BODY") {
            (SectionKind::Body, false)
        } else if is("BINARY") {
            (SectionKind::Binary, false)
        } else if is("BINARY.SIZE") {
            (SectionKind::Binary, true)
        } else {
            return Ok((input, None));
        };
        let (r, (part, text)) = section_spec(after, ctx, kind == SectionKind::Binary)?;
        (kind, is_size, r, part, text)
    } else if is("RFC822") {
        (SectionKind::Rfc822, false, after, Vec::new(), None)
    } else if is("RFC822.HEADER") {
        (
            SectionKind::Rfc822Header,
            false,
            after,
            Vec::new(),
            Some(SectionText::Header),
        )
    } else if is("RFC822.TEXT") {
        (
            SectionKind::Rfc822Text,
            false,
            after,
            Vec::new(),
            Some(SectionText::Text),
        )
    } else {
        return Ok((input, None));
    };
    let name = &input[..input.len() - rest.len()];
    // ["<" number ">"]
    let (rest, origin) = match rest.strip_prefix(b"<") {
        Some(r) => {
            let (r, o) = number(r)?;
            let (r, ()) = byte(r, b'>', "\">\"")?;
            (r, Some(o))
        }
        None => (rest, None),
    };
    let section = Section {
        kind,
        name: Cow::Borrowed(name),
        part,
        text,
    };
    Ok((rest, Some((section, origin, is_size))))
}

/// The value of a body section: `nstring`, a `literal8` for BINARY, or the streamed marker.
fn section_data<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, SectionData<'a>> {
    match input.first() {
        Some(&STREAMED_MARKER) => {
            let (r, ()) = byte(&input[1..], b'{', "a streamed literal marker")?;
            let (r, len) = number64(r)?;
            let (r, ()) = byte(r, b'}', "a streamed literal marker")?;
            Ok((r, SectionData::Streamed { len }))
        }
        Some(b'~') => literal(input, ctx).map(|(r, b)| (r, SectionData::Inline(Cow::Borrowed(b)))),
        _ => nstring(input, ctx).map(|(r, v)| {
            (
                r,
                match v {
                    Some(b) => SectionData::Inline(b),
                    None => SectionData::Nil,
                },
            )
        }),
    }
}

/// A Gmail label: `\Inbox`-style atom or astring.
fn gmail_label<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Cow<'a, [u8]>> {
    if input.first() == Some(&b'\\') {
        let n = 1 + input[1..]
            .iter()
            .take_while(|&&b| super::primitive::is_atom_char(b))
            .count();
        return Ok((&input[n..], Cow::Borrowed(&input[..n])));
    }
    astring(input, ctx)
}

/// `msg-att-dynamic / msg-att-static`: one item.
fn fetch_item<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, FetchItem<'a>> {
    if let (rest, Some((section, origin, is_size))) = section_name(input, ctx)? {
        let (rest, ()) = sp(rest)?;
        if is_size {
            let (rest, size) = number64(rest)?;
            return Ok((rest, FetchItem::BinarySize { section, size }));
        }
        let (rest, data) = section_data(rest, ctx)?;
        return Ok((
            rest,
            FetchItem::Section {
                section,
                origin,
                data,
            },
        ));
    }
    let n = keyword_len(input);
    if n == 0 {
        return expected(input, "a FETCH item");
    }
    let name = &input[..n];
    let is = |k: &str| name.eq_ignore_ascii_case(k.as_bytes());
    let (rest, ()) = sp(&input[n..])?;
    if is("UID") {
        let (r, v) = number(rest)?;
        Ok((r, FetchItem::Uid(v)))
    } else if is("FLAGS") {
        flag_list(rest).map(|(r, v)| (r, FetchItem::Flags(v)))
    } else if is("INTERNALDATE") {
        quoted(rest).map(|(r, v)| (r, FetchItem::InternalDate(v)))
    } else if is("RFC822.SIZE") {
        number64(rest).map(|(r, v)| (r, FetchItem::Rfc822Size(v)))
    } else if is("ENVELOPE") {
        envelope(rest, ctx).map(|(r, v)| (r, FetchItem::Envelope(Box::new(v))))
    } else if is("BODYSTRUCTURE") {
        body(rest, ctx, 0).map(|(r, v)| (r, FetchItem::BodyStructure(v)))
    } else if is("BODY") {
        body(rest, ctx, 0).map(|(r, v)| (r, FetchItem::Body(v)))
    } else if is("MODSEQ") {
        let (r, ()) = byte(rest, b'(', "\"(\"")?;
        let (r, v) = number64(r)?;
        let (r, ()) = byte(r, b')', "\")\"")?;
        Ok((r, FetchItem::ModSeq(v)))
    } else if is("X-GM-MSGID") {
        number64(rest).map(|(r, v)| (r, FetchItem::GmailMessageId(v)))
    } else if is("X-GM-THRID") {
        number64(rest).map(|(r, v)| (r, FetchItem::GmailThreadId(v)))
    } else if is("X-GM-LABELS") {
        paren_list(rest, |i| gmail_label(i, ctx)).map(|(r, v)| (r, FetchItem::GmailLabels(v)))
    } else {
        let (r, value) = skip_value(rest, ctx)?;
        Ok((
            r,
            FetchItem::Other {
                name: Cow::Borrowed(name),
                value: Cow::Borrowed(value),
            },
        ))
    }
}

/// `msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP (msg-att-dynamic / msg-att-static)) ")"`,
/// after `n FETCH SP`.
pub(crate) fn msg_att<'a>(input: &'a [u8], seq: u32, ctx: &Ctx) -> PResult<'a, Fetch<'a>> {
    if input.first() != Some(&b'(') {
        return failure(input, Problem::Expected("\"(\" starting the FETCH items"));
    }
    let (rest, items) = paren_list(input, |i| fetch_item(i, ctx))?;
    Ok((rest, Fetch { seq, items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::primitive::TEST_CTX as CTX;

    fn fetch(s: &[u8]) -> Fetch<'_> {
        let (rest, f) = msg_att(s, 1, &CTX).unwrap();
        assert!(rest.is_empty(), "left {:?}", String::from_utf8_lossy(rest));
        f
    }

    #[test]
    fn the_usual_items() {
        let f = fetch(b"(UID 7 RFC822.SIZE 4096 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {5}\r\nhello)");
        assert_eq!(f.uid(), Some(7));
        assert_eq!(f.rfc822_size(), Some(4096));
        assert_eq!(f.flags(), Some(&[Flag::Seen][..]));
        let (s, origin, data) = f.sections().next().unwrap();
        assert_eq!(&*s.name, b"BODY[]");
        assert_eq!(origin, None);
        assert_eq!(data.bytes(), Some(&b"hello"[..]));
    }

    #[test]
    fn lowercase_item_names() {
        let f = fetch(b"(uid 7 flags () body[header] NIL)");
        assert_eq!(f.uid(), Some(7));
        let (s, _, data) = f.sections().next().unwrap();
        assert_eq!(s.text, Some(SectionText::Header));
        assert_eq!(data, &SectionData::Nil);
    }

    #[test]
    fn qq_space_before_closing_paren() {
        // imap.qq.com (jakartaee/mail-api #209): `(UID 19436 )`.
        assert_eq!(fetch(b"(UID 19436 )").uid(), Some(19436));
    }

    #[test]
    fn sections_with_parts_fields_and_origin() {
        let f = fetch(b"(BODY[1.2.HEADER.FIELDS (FROM \"TO\")]<10> \"ab\" BODY[3.MIME] NIL BINARY[1] ~{2}\r\n\0\x01 BINARY.SIZE[1] 2 RFC822.HEADER {0}\r\n)");
        let secs: Vec<_> = f.sections().collect();
        assert_eq!(secs.len(), 4);
        assert_eq!(secs[0].0.part, vec![1, 2]);
        assert_eq!(secs[0].1, Some(10));
        crate::assert_matches!(&secs[0].0.text, Some(SectionText::HeaderFields(l)) if l.len() == 2);
        assert_eq!(secs[1].0.text, Some(SectionText::Mime));
        assert_eq!(secs[2].0.kind, SectionKind::Binary);
        assert_eq!(secs[2].2.bytes(), Some(&b"\0\x01"[..]));
        assert_eq!(secs[3].0.kind, SectionKind::Rfc822Header);
        assert!(f
            .items
            .iter()
            .any(|i| matches!(i, FetchItem::BinarySize { size: 2, .. })));
    }

    #[test]
    fn gmail_extensions_and_modseq() {
        let f = fetch(b"(X-GM-MSGID 1278455344230334865 X-GM-THRID 1266894439832287888 X-GM-LABELS (\\Inbox \\Sent Important \"Muy Importante\") MODSEQ (624140003))");
        assert!(f
            .items
            .contains(&FetchItem::GmailMessageId(1278455344230334865)));
        assert_eq!(f.modseq(), Some(624140003));
        let labels = f
            .items
            .iter()
            .find_map(|i| match i {
                FetchItem::GmailLabels(l) => Some(l),
                _ => None,
            })
            .unwrap();
        assert_eq!(labels.len(), 4);
        assert_eq!(&*labels[3], b"Muy Importante");
    }

    #[test]
    fn unknown_items_are_kept_raw() {
        let f = fetch(b"(X-FOO (a \"b)\" {1}\r\n) (c)) PREVIEW \"hi\" UID 3)");
        assert_eq!(f.uid(), Some(3));
        crate::assert_matches!(&f.items[0], FetchItem::Other { name, value } if &**name == b"X-FOO" && &**value == b"(a \"b)\" {1}\r\n) (c))");
    }

    #[test]
    fn streamed_marker() {
        let f = fetch(b"(UID 1 BODY[] \0{100000})");
        assert_eq!(
            f.sections().next().unwrap().2,
            &SectionData::Streamed { len: 100000 }
        );
    }

    #[test]
    fn bodystructure_and_envelope_accessors() {
        let f = fetch(br#"(ENVELOPE (NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL) BODY ("text" "plain" NIL NIL NIL "7bit" 1 1))"#);
        assert_eq!(f.envelope().unwrap().subject.as_deref(), Some(&b"s"[..]));
        assert!(!f.body_structure().unwrap().is_multipart());
    }

    #[test]
    fn malformed_items_fail() {
        for bad in [
            &b"(UID)"[..],
            b"(UID x)",
            b"(FLAGS \\Seen)",
            b"UID 1",
            b"(BODY[1.] \"x\")",
            b"(BODY[FOO] NIL)",
        ] {
            assert!(
                msg_att(bad, 1, &CTX).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
