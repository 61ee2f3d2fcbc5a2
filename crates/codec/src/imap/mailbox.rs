//! Mailbox data: LIST/LSUB (RFC 3501 §7.2.2, RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE),
//! STATUS (§7.2.4, RFC 7162, RFC 9051 SIZE and DELETED), NAMESPACE (RFC 2342), and mailbox
//! names in modified UTF-7 (§5.1.3) or UTF-8 (RFC 6855).

use std::borrow::Cow;

use crate::core::parse::{expected, PResult};

use super::primitive::{
    astring_8bit, byte, is_atom_char, nil, number, number64, own, quoted, skip_value, sp, spaces,
    string, Ctx,
};
use super::utf7;

/// How a mailbox name was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameEncoding {
    /// Modified UTF-7 (RFC 3501 §5.1.3); plain ASCII names are this too.
    ModifiedUtf7,
    /// 8-bit UTF-8 (RFC 6855 `UTF8=ACCEPT`, or servers that send it unasked, such as 163.com).
    Utf8,
    /// Neither: `name` is `None`, only the raw bytes are known.
    Undecodable,
}

/// A mailbox name: the bytes as sent and, where possible, the decoded name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxName<'a> {
    /// The name exactly as the server sent it (after unquoting): use it in commands.
    pub raw: Cow<'a, [u8]>,
    /// The decoded name for display, or `None` if it is neither modified UTF-7 nor UTF-8.
    pub name: Option<String>,
    /// How the name was encoded.
    pub encoding: NameEncoding,
}

impl<'a> MailboxName<'a> {
    /// Decodes `raw`: 8-bit bytes mean UTF-8; otherwise modified UTF-7. `INBOX` is
    /// case-insensitive (RFC 3501 §5.1) and is returned as `INBOX`.
    pub fn new(raw: Cow<'a, [u8]>) -> Self {
        if raw.eq_ignore_ascii_case(b"INBOX") {
            return MailboxName {
                raw,
                name: Some("INBOX".to_owned()),
                encoding: NameEncoding::ModifiedUtf7,
            };
        }
        let (name, encoding) = if raw.iter().any(|&b| b >= 0x80) {
            match std::str::from_utf8(&raw) {
                Ok(s) => (Some(s.to_owned()), NameEncoding::Utf8),
                Err(_) => (None, NameEncoding::Undecodable),
            }
        } else {
            match utf7::decode(&raw) {
                Ok(s) => (Some(s), NameEncoding::ModifiedUtf7),
                Err(_) => (None, NameEncoding::Undecodable),
            }
        };
        MailboxName {
            raw,
            name,
            encoding,
        }
    }

    /// The decoded name, or the raw bytes decoded lossily if it could not be decoded.
    pub fn display(&self) -> Cow<'_, str> {
        match &self.name {
            Some(n) => Cow::Borrowed(n),
            None => String::from_utf8_lossy(&self.raw),
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> MailboxName<'static> {
        MailboxName {
            raw: own(self.raw),
            name: self.name,
            encoding: self.encoding,
        }
    }
}

/// `mailbox = "INBOX" / astring`.
pub(crate) fn mailbox<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, MailboxName<'a>> {
    let (rest, raw) = astring_8bit(input, ctx)?;
    Ok((rest, MailboxName::new(raw)))
}

/// A mailbox name attribute (`mbx-list-flags`, RFC 3501, RFC 5258, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NameAttribute<'a> {
    /// `\Noinferiors`.
    NoInferiors,
    /// `\Noselect`.
    NoSelect,
    /// `\Marked`.
    Marked,
    /// `\Unmarked`.
    Unmarked,
    /// `\NonExistent` (RFC 5258).
    NonExistent,
    /// `\Subscribed` (RFC 5258).
    Subscribed,
    /// `\Remote` (RFC 5258).
    Remote,
    /// `\HasChildren` (RFC 5258).
    HasChildren,
    /// `\HasNoChildren` (RFC 5258).
    HasNoChildren,
    /// `\All` (RFC 6154).
    All,
    /// `\Archive` (RFC 6154).
    Archive,
    /// `\Drafts` (RFC 6154).
    Drafts,
    /// `\Flagged` (RFC 6154).
    Flagged,
    /// `\Junk` (RFC 6154; Gmail's old XLIST says `\Spam`).
    Junk,
    /// `\Sent` (RFC 6154).
    Sent,
    /// `\Trash` (RFC 6154).
    Trash,
    /// `\Important` (RFC 8457).
    Important,
    /// Anything else, as sent (with its backslash if it had one).
    Extension(Cow<'a, [u8]>),
}

impl NameAttribute<'_> {
    /// The attribute as the RFCs spell it (`\\Sent`), or as sent for an extension.
    pub fn as_bytes(&self) -> &[u8] {
        use NameAttribute::*;
        match self {
            NoInferiors => b"\\Noinferiors",
            NoSelect => b"\\Noselect",
            Marked => b"\\Marked",
            Unmarked => b"\\Unmarked",
            NonExistent => b"\\NonExistent",
            Subscribed => b"\\Subscribed",
            Remote => b"\\Remote",
            HasChildren => b"\\HasChildren",
            HasNoChildren => b"\\HasNoChildren",
            All => b"\\All",
            Archive => b"\\Archive",
            Drafts => b"\\Drafts",
            Flagged => b"\\Flagged",
            Junk => b"\\Junk",
            Sent => b"\\Sent",
            Trash => b"\\Trash",
            Important => b"\\Important",
            Extension(raw) => raw,
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> NameAttribute<'static> {
        use NameAttribute::*;
        match self {
            NoInferiors => NoInferiors,
            NoSelect => NoSelect,
            Marked => Marked,
            Unmarked => Unmarked,
            NonExistent => NonExistent,
            Subscribed => Subscribed,
            Remote => Remote,
            HasChildren => HasChildren,
            HasNoChildren => HasNoChildren,
            All => All,
            Archive => Archive,
            Drafts => Drafts,
            Flagged => Flagged,
            Junk => Junk,
            Sent => Sent,
            Trash => Trash,
            Important => Important,
            Extension(e) => Extension(own(e)),
        }
    }
}

/// `mbx-list-flag`: a backslash atom (or, leniently, a bare atom).
fn name_attribute(input: &[u8]) -> PResult<'_, NameAttribute<'_>> {
    let start = usize::from(input.first() == Some(&b'\\'));
    let n = input[start..]
        .iter()
        .take_while(|&&b| is_atom_char(b))
        .count();
    if n == 0 {
        return expected(input, "a mailbox attribute");
    }
    let raw = &input[..start + n];
    let name = &raw[start..];
    let known: &[(&str, NameAttribute<'static>)] = &[
        ("Noinferiors", NameAttribute::NoInferiors),
        ("Noselect", NameAttribute::NoSelect),
        ("Marked", NameAttribute::Marked),
        ("Unmarked", NameAttribute::Unmarked),
        ("NonExistent", NameAttribute::NonExistent),
        ("Subscribed", NameAttribute::Subscribed),
        ("Remote", NameAttribute::Remote),
        ("HasChildren", NameAttribute::HasChildren),
        ("HasNoChildren", NameAttribute::HasNoChildren),
        ("All", NameAttribute::All),
        ("AllMail", NameAttribute::All),
        ("Archive", NameAttribute::Archive),
        ("Drafts", NameAttribute::Drafts),
        ("Flagged", NameAttribute::Flagged),
        ("Starred", NameAttribute::Flagged),
        ("Junk", NameAttribute::Junk),
        ("Spam", NameAttribute::Junk),
        ("Sent", NameAttribute::Sent),
        ("Trash", NameAttribute::Trash),
        ("Important", NameAttribute::Important),
    ];
    let attr = match known
        .iter()
        .find(|(k, _)| start == 1 && name.eq_ignore_ascii_case(k.as_bytes()))
    {
        Some((_, a)) => a.clone(),
        None => NameAttribute::Extension(Cow::Borrowed(raw)),
    };
    Ok((&input[start + n..], attr))
}

/// One LIST or LSUB (or Gmail's old XLIST) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxList<'a> {
    /// The name attributes.
    pub attributes: Vec<NameAttribute<'a>>,
    /// The hierarchy delimiter, or `None` for a flat namespace (NIL).
    pub delimiter: Option<u8>,
    /// The name.
    pub mailbox: MailboxName<'a>,
    /// LIST-EXTENDED extended data (`CHILDINFO`, `OLDNAME` ...), raw, if any.
    pub extended: Option<Cow<'a, [u8]>>,
}

impl MailboxList<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> MailboxList<'static> {
        MailboxList {
            attributes: self
                .attributes
                .into_iter()
                .map(NameAttribute::into_owned)
                .collect(),
            delimiter: self.delimiter,
            mailbox: self.mailbox.into_owned(),
            extended: self.extended.map(own),
        }
    }
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]`.
pub(crate) fn mailbox_list<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, MailboxList<'a>> {
    let (rest, attributes) = super::primitive::paren_list(input, name_attribute)?;
    let (rest, ()) = sp(rest)?;
    let (rest, delimiter) = match rest.first() {
        Some(b'"') => {
            let (r, d) = quoted(rest)?;
            match &*d {
                [c] => (r, Some(*c)),
                _ => return expected(rest, "a one-character delimiter"),
            }
        }
        _ => nil(rest)
            .map(|(r, ())| (r, None))
            .or_else(|_| expected(rest, "a delimiter or NIL"))?,
    };
    let (rest, ()) = sp(rest)?;
    let (rest, mailbox) = mailbox(rest, ctx)?;
    let after = spaces(rest);
    let (rest, extended) = if after.first() == Some(&b'(') {
        let (r, raw) = skip_value(after, ctx)?;
        (r, Some(Cow::Borrowed(raw)))
    } else {
        (rest, None)
    };
    Ok((
        rest,
        MailboxList {
            attributes,
            delimiter,
            mailbox,
            extended,
        },
    ))
}

/// One item of a STATUS response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusItem<'a> {
    /// `MESSAGES`.
    Messages(u32),
    /// `RECENT`.
    Recent(u32),
    /// `UIDNEXT`.
    UidNext(u32),
    /// `UIDVALIDITY`.
    UidValidity(u32),
    /// `UNSEEN`.
    Unseen(u32),
    /// `DELETED` (RFC 9051).
    Deleted(u32),
    /// `SIZE` (RFC 9051, 64-bit).
    Size(u64),
    /// `HIGHESTMODSEQ` (RFC 7162).
    HighestModSeq(u64),
    /// `APPENDLIMIT` (RFC 7889): the largest message APPEND takes, or `None` for NIL (no limit).
    AppendLimit(Option<u64>),
    /// Any other item with a number value, as sent.
    Other {
        /// The item name.
        name: Cow<'a, [u8]>,
        /// Its value.
        value: u64,
    },
}

/// A STATUS response: `"STATUS" SP mailbox SP "(" [status-att-list] ")"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxStatus<'a> {
    /// The mailbox.
    pub mailbox: MailboxName<'a>,
    /// The items, in the order sent.
    pub items: Vec<StatusItem<'a>>,
}

impl MailboxStatus<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> MailboxStatus<'static> {
        MailboxStatus {
            mailbox: self.mailbox.into_owned(),
            items: self
                .items
                .into_iter()
                .map(|i| match i {
                    StatusItem::Other { name, value } => StatusItem::Other {
                        name: own(name),
                        value,
                    },
                    StatusItem::Messages(n) => StatusItem::Messages(n),
                    StatusItem::Recent(n) => StatusItem::Recent(n),
                    StatusItem::UidNext(n) => StatusItem::UidNext(n),
                    StatusItem::UidValidity(n) => StatusItem::UidValidity(n),
                    StatusItem::Unseen(n) => StatusItem::Unseen(n),
                    StatusItem::Deleted(n) => StatusItem::Deleted(n),
                    StatusItem::Size(n) => StatusItem::Size(n),
                    StatusItem::HighestModSeq(n) => StatusItem::HighestModSeq(n),
                    StatusItem::AppendLimit(n) => StatusItem::AppendLimit(n),
                })
                .collect(),
        }
    }
}

/// `status-att-val = ("MESSAGES" SP number) / ...`.
fn status_item(input: &[u8]) -> PResult<'_, StatusItem<'_>> {
    let n = input.iter().take_while(|&&b| is_atom_char(b)).count();
    if n == 0 {
        return expected(input, "a STATUS item");
    }
    let name = &input[..n];
    let (rest, ()) = sp(&input[n..])?;
    let is = |k: &str| name.eq_ignore_ascii_case(k.as_bytes());
    let small = |f: fn(u32) -> StatusItem<'static>| number(rest).map(|(r, v)| (r, f(v)));
    if is("MESSAGES") {
        small(StatusItem::Messages)
    } else if is("RECENT") {
        small(StatusItem::Recent)
    } else if is("UIDNEXT") {
        small(StatusItem::UidNext)
    } else if is("UIDVALIDITY") {
        small(StatusItem::UidValidity)
    } else if is("UNSEEN") {
        small(StatusItem::Unseen)
    } else if is("DELETED") {
        small(StatusItem::Deleted)
    } else if is("SIZE") {
        number64(rest).map(|(r, v)| (r, StatusItem::Size(v)))
    } else if is("HIGHESTMODSEQ") {
        number64(rest).map(|(r, v)| (r, StatusItem::HighestModSeq(v)))
    } else if is("APPENDLIMIT") {
        match nil(rest) {
            Ok((r, ())) => Ok((r, StatusItem::AppendLimit(None))),
            Err(_) => number64(rest).map(|(r, v)| (r, StatusItem::AppendLimit(Some(v)))),
        }
    } else {
        number64(rest).map(|(r, value)| {
            (
                r,
                StatusItem::Other {
                    name: Cow::Borrowed(name),
                    value,
                },
            )
        })
    }
}

/// The part of a STATUS response after `STATUS SP`. Exchange sends a space before `)`
/// (`* STATUS INBOX (MESSAGES 0 )`) and after it: both tolerated.
pub(crate) fn mailbox_status<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, MailboxStatus<'a>> {
    let (rest, mailbox) = mailbox(input, ctx)?;
    let (rest, ()) = sp(rest)?;
    let rest = spaces(rest);
    let (rest, items) = super::primitive::paren_list(rest, status_item)?;
    Ok((rest, MailboxStatus { mailbox, items }))
}

/// One namespace: `"(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) *(Namespace-Response-Extension) ")"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDescription<'a> {
    /// The prefix (`""`, `"INBOX."`, `"#shared/"` ...).
    pub prefix: Cow<'a, [u8]>,
    /// The hierarchy delimiter, if any.
    pub delimiter: Option<u8>,
    /// Extension data, raw, if any.
    pub extensions: Option<Cow<'a, [u8]>>,
}

/// A NAMESPACE response (RFC 2342): personal, other users', shared; each NIL or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace<'a> {
    /// The personal namespaces.
    pub personal: Option<Vec<NamespaceDescription<'a>>>,
    /// Other users' namespaces.
    pub other_users: Option<Vec<NamespaceDescription<'a>>>,
    /// Shared namespaces.
    pub shared: Option<Vec<NamespaceDescription<'a>>>,
}

impl Namespace<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> Namespace<'static> {
        let own_list = |l: Option<Vec<NamespaceDescription<'_>>>| {
            l.map(|v| {
                v.into_iter()
                    .map(|d| NamespaceDescription {
                        prefix: own(d.prefix),
                        delimiter: d.delimiter,
                        extensions: d.extensions.map(own),
                    })
                    .collect()
            })
        };
        Namespace {
            personal: own_list(self.personal),
            other_users: own_list(self.other_users),
            shared: own_list(self.shared),
        }
    }
}

/// `Namespace = nil / "(" 1*Namespace-Descr ")"`.
fn namespace_list<'a>(
    input: &'a [u8],
    ctx: &Ctx,
) -> PResult<'a, Option<Vec<NamespaceDescription<'a>>>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, None));
    }
    let (mut rest, ()) = byte(input, b'(', "NIL or a list of namespaces")?;
    let mut list = Vec::new();
    loop {
        rest = spaces(rest);
        if let Some(r) = rest.strip_prefix(b")") {
            return Ok((r, Some(list)));
        }
        let (r, ()) = byte(rest, b'(', "a namespace description")?;
        let (r, prefix) = string(r, ctx)?;
        let (r, ()) = sp(r)?;
        let (r, delimiter) = match r.first() {
            Some(b'"') => {
                let (r2, d) = quoted(r)?;
                (r2, d.first().copied())
            }
            _ => nil(r).map(|(r2, ())| (r2, None))?,
        };
        // Extensions: everything up to the closing paren, skipped value by value.
        let mut e = r;
        loop {
            e = spaces(e);
            if e.first() == Some(&b')') || e.is_empty() {
                break;
            }
            e = skip_value(e, ctx)?.0;
        }
        let ext = &r[..r.len() - e.len()];
        let ext = ext.strip_prefix(b" ").unwrap_or(ext);
        let (r, ()) = byte(e, b')', "\")\"")?;
        list.push(NamespaceDescription {
            prefix,
            delimiter,
            extensions: (!ext.is_empty()).then_some(Cow::Borrowed(ext)),
        });
        rest = r;
    }
}

/// `namespace-response = "NAMESPACE" SP Namespace SP Namespace SP Namespace` (after `NAMESPACE SP`).
pub(crate) fn namespace<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Namespace<'a>> {
    let (rest, personal) = namespace_list(input, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, other_users) = namespace_list(rest, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, shared) = namespace_list(rest, ctx)?;
    Ok((
        rest,
        Namespace {
            personal,
            other_users,
            shared,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::primitive::TEST_CTX as CTX;

    #[test]
    fn list_with_special_use_and_utf7_name() {
        let (rest, l) = mailbox_list(
            b"(\\HasNoChildren \\Sent) \"/\" \"Gesendete Objekte\"",
            &CTX,
        )
        .unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            l.attributes,
            vec![NameAttribute::HasNoChildren, NameAttribute::Sent]
        );
        assert_eq!(l.delimiter, Some(b'/'));
        assert_eq!(l.mailbox.name.as_deref(), Some("Gesendete Objekte"));
        let (_, l) = mailbox_list(b"() \".\" Entw&APw-rfe", &CTX).unwrap();
        assert_eq!(l.mailbox.name.as_deref(), Some("Entwürfe"));
        assert_eq!(l.mailbox.encoding, NameEncoding::ModifiedUtf7);
    }

    #[test]
    fn list_nil_delimiter_and_inbox_case() {
        let (_, l) = mailbox_list(b"(\\Noselect) NIL inbox", &CTX).unwrap();
        assert_eq!(l.delimiter, None);
        assert_eq!(l.mailbox.name.as_deref(), Some("INBOX"));
        assert_eq!(&*l.mailbox.raw, b"inbox");
    }

    #[test]
    fn qq_utf8_name_and_undecodable_name() {
        // 163.com / QQ send UTF-8 names without UTF8=ACCEPT.
        let (_, l) = mailbox_list("(\\HasNoChildren) \"/\" \"已发送\"".as_bytes(), &CTX).unwrap();
        assert_eq!(l.mailbox.name.as_deref(), Some("已发送"));
        assert_eq!(l.mailbox.encoding, NameEncoding::Utf8);
        let (_, l) = mailbox_list(b"() \"/\" \"a&-b&Zm9v\"", &CTX).unwrap();
        assert_eq!(l.mailbox.name, None);
        assert_eq!(l.mailbox.encoding, NameEncoding::Undecodable);
        assert_eq!(&*l.mailbox.raw, b"a&-b&Zm9v");
    }

    #[test]
    fn list_extended_data_is_kept_raw() {
        let (rest, l) = mailbox_list(
            b"(\\Subscribed) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            &CTX,
        )
        .unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            l.extended.as_deref(),
            Some(&b"(\"CHILDINFO\" (\"SUBSCRIBED\"))"[..])
        );
    }

    #[test]
    fn exchange_status_with_trailing_spaces() {
        // Exchange/Outlook (imap-codec #468, imap-proto #152): `(MESSAGES 0 )`.
        let (rest, s) = mailbox_status(b"INBOX (MESSAGES 0 UIDNEXT 5 )", &CTX).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            s.items,
            vec![StatusItem::Messages(0), StatusItem::UidNext(5)]
        );
    }

    #[test]
    fn status_all_items() {
        let (_, s) = mailbox_status(
            b"\"Sent\" (MESSAGES 1 RECENT 2 UIDNEXT 3 UIDVALIDITY 4 UNSEEN 5 SIZE 6000000000 HIGHESTMODSEQ 7 DELETED 8 X-FOO 9)",
            &CTX,
        )
        .unwrap();
        assert_eq!(s.items.len(), 9);
        assert_eq!(s.items[5], StatusItem::Size(6_000_000_000));
    }

    #[test]
    fn namespace_forms() {
        let (rest, n) = namespace(
            b"((\"\" \"/\")) NIL ((\"#shared/\" \"/\" \"X-PARAM\" (\"a\")))",
            &CTX,
        )
        .unwrap();
        assert!(rest.is_empty());
        assert_eq!(n.personal.as_ref().unwrap()[0].delimiter, Some(b'/'));
        assert!(n.other_users.is_none());
        let shared = &n.shared.unwrap()[0];
        assert_eq!(&*shared.prefix, b"#shared/");
        assert_eq!(
            shared.extensions.as_deref(),
            Some(&b"\"X-PARAM\" (\"a\")"[..])
        );
    }
}
