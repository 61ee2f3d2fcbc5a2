//! Response codes: the bracketed `[...]` at the start of a status response's text
//! (RFC 3501 §7.1, RFC 9051 §7.1 `resp-text-code`; RFC 4315 UIDPLUS, RFC 7162 CONDSTORE and
//! QRESYNC, RFC 5530 codes, RFC 5182 NOTSAVED is kept raw).
//!
//! A code is advice, not a command: one the parser does not know, or one a server gets wrong
//! (Outlook sends `[COPYUID 14  ]`), is kept raw rather than failing the whole response. As
//! Mark Crispin ruled on the imap-protocol list, a `[` with no matching `]` is not a code at all:
//! the whole thing is text.

use std::borrow::Cow;

use crate::core::parse::{expected, PResult};

use super::flag::{flag_list, own_flags, Flag};
use super::primitive::{
    astring, is_atom_char, number, number64, nz_number, own, paren_list, spaces, Ctx,
};
use super::response::{capability_list, own_capabilities, Capability};
use super::sequence::{sequence_set, SequenceSet};

/// A response code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code<'a> {
    /// `ALERT`: the text must be shown to the user.
    Alert,
    /// `CAPABILITY`: the capabilities, sent with the greeting or after authentication.
    Capability(Vec<Capability<'a>>),
    /// `PERMANENTFLAGS`: the flags the client can change permanently.
    PermanentFlags(Vec<Flag<'a>>),
    /// `UIDVALIDITY`.
    UidValidity(u32),
    /// `UIDNEXT`: the predicted next UID.
    UidNext(u32),
    /// `UNSEEN`: the sequence number of the first unseen message.
    Unseen(u32),
    /// `READ-ONLY`.
    ReadOnly,
    /// `READ-WRITE`.
    ReadWrite,
    /// `TRYCREATE`: the target mailbox does not exist, creating it may help.
    TryCreate,
    /// `PARSE`: the server could not parse a message's headers.
    Parse,
    /// `BADCHARSET`, with the charsets the server supports.
    BadCharset(Vec<Cow<'a, [u8]>>),
    /// `APPENDUID` (RFC 4315).
    AppendUid {
        /// The target mailbox's UIDVALIDITY.
        uid_validity: u32,
        /// The UIDs given to the appended messages.
        uids: SequenceSet,
    },
    /// `COPYUID` (RFC 4315).
    CopyUid {
        /// The target mailbox's UIDVALIDITY.
        uid_validity: u32,
        /// The source UIDs.
        source: SequenceSet,
        /// The UIDs in the target mailbox, in the same order.
        target: SequenceSet,
    },
    /// `UIDNOTSTICKY` (RFC 4315).
    UidNotSticky,
    /// `HIGHESTMODSEQ` (RFC 7162).
    HighestModSeq(u64),
    /// `NOMODSEQ` (RFC 7162).
    NoModSeq,
    /// `MODIFIED` (RFC 7162): messages that failed the UNCHANGEDSINCE test.
    Modified(SequenceSet),
    /// `CLOSED` (RFC 7162): the previous mailbox is closed.
    Closed,
    /// `UNAVAILABLE` (RFC 5530).
    Unavailable,
    /// `AUTHENTICATIONFAILED` (RFC 5530).
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED` (RFC 5530).
    AuthorizationFailed,
    /// `EXPIRED` (RFC 5530).
    Expired,
    /// `PRIVACYREQUIRED` (RFC 5530).
    PrivacyRequired,
    /// `CONTACTADMIN` (RFC 5530).
    ContactAdmin,
    /// `NOPERM` (RFC 5530).
    NoPerm,
    /// `INUSE` (RFC 5530).
    InUse,
    /// `EXPUNGEISSUED` (RFC 5530).
    ExpungeIssued,
    /// `CORRUPTION` (RFC 5530).
    Corruption,
    /// `SERVERBUG` (RFC 5530).
    ServerBug,
    /// `CLIENTBUG` (RFC 5530).
    ClientBug,
    /// `CANNOT` (RFC 5530).
    Cannot,
    /// `LIMIT` (RFC 5530).
    Limit,
    /// `OVERQUOTA` (RFC 5530).
    OverQuota,
    /// `ALREADYEXISTS` (RFC 5530).
    AlreadyExists,
    /// `NONEXISTENT` (RFC 5530).
    NonExistent,
    /// Any other code, or a known one with arguments that do not parse, kept raw.
    Other {
        /// The leading atom characters, as sent (`X-SOMETHING`, `Error=` ...).
        name: Cow<'a, [u8]>,
        /// Everything after the name inside the brackets, without the separating space.
        text: Option<Cow<'a, [u8]>>,
    },
}

/// Codes without arguments, by name.
const SIMPLE: &[(&str, Code<'static>)] = &[
    ("ALERT", Code::Alert),
    ("READ-ONLY", Code::ReadOnly),
    ("READ-WRITE", Code::ReadWrite),
    ("TRYCREATE", Code::TryCreate),
    ("PARSE", Code::Parse),
    ("UIDNOTSTICKY", Code::UidNotSticky),
    ("NOMODSEQ", Code::NoModSeq),
    ("CLOSED", Code::Closed),
    ("UNAVAILABLE", Code::Unavailable),
    ("AUTHENTICATIONFAILED", Code::AuthenticationFailed),
    ("AUTHORIZATIONFAILED", Code::AuthorizationFailed),
    ("EXPIRED", Code::Expired),
    ("PRIVACYREQUIRED", Code::PrivacyRequired),
    ("CONTACTADMIN", Code::ContactAdmin),
    ("NOPERM", Code::NoPerm),
    ("INUSE", Code::InUse),
    ("EXPUNGEISSUED", Code::ExpungeIssued),
    ("CORRUPTION", Code::Corruption),
    ("SERVERBUG", Code::ServerBug),
    ("CLIENTBUG", Code::ClientBug),
    ("CANNOT", Code::Cannot),
    ("LIMIT", Code::Limit),
    ("OVERQUOTA", Code::OverQuota),
    ("ALREADYEXISTS", Code::AlreadyExists),
    ("NONEXISTENT", Code::NonExistent),
];

impl<'a> Code<'a> {
    /// The code's name as sent for [`Code::Other`], else its registered name.
    pub fn name(&self) -> Cow<'_, str> {
        let fixed = match self {
            Code::Capability(_) => "CAPABILITY",
            Code::PermanentFlags(_) => "PERMANENTFLAGS",
            Code::UidValidity(_) => "UIDVALIDITY",
            Code::UidNext(_) => "UIDNEXT",
            Code::Unseen(_) => "UNSEEN",
            Code::BadCharset(_) => "BADCHARSET",
            Code::AppendUid { .. } => "APPENDUID",
            Code::CopyUid { .. } => "COPYUID",
            Code::HighestModSeq(_) => "HIGHESTMODSEQ",
            Code::Modified(_) => "MODIFIED",
            Code::Other { name, .. } => return String::from_utf8_lossy(name),
            simple => SIMPLE
                .iter()
                .find(|(_, c)| c == simple)
                .map_or("UNKNOWN", |(n, _)| n),
        };
        Cow::Borrowed(fixed)
    }

    /// An owned copy.
    pub fn into_owned(self) -> Code<'static> {
        match self {
            Code::Capability(c) => Code::Capability(own_capabilities(c)),
            Code::PermanentFlags(f) => Code::PermanentFlags(own_flags(f)),
            Code::UidValidity(n) => Code::UidValidity(n),
            Code::UidNext(n) => Code::UidNext(n),
            Code::Unseen(n) => Code::Unseen(n),
            Code::BadCharset(c) => Code::BadCharset(c.into_iter().map(own).collect()),
            Code::AppendUid { uid_validity, uids } => Code::AppendUid { uid_validity, uids },
            Code::CopyUid {
                uid_validity,
                source,
                target,
            } => Code::CopyUid {
                uid_validity,
                source,
                target,
            },
            Code::HighestModSeq(n) => Code::HighestModSeq(n),
            Code::Modified(s) => Code::Modified(s),
            Code::Other { name, text } => Code::Other {
                name: own(name),
                text: text.map(own),
            },
            Code::Alert => Code::Alert,
            Code::ReadOnly => Code::ReadOnly,
            Code::ReadWrite => Code::ReadWrite,
            Code::TryCreate => Code::TryCreate,
            Code::Parse => Code::Parse,
            Code::UidNotSticky => Code::UidNotSticky,
            Code::NoModSeq => Code::NoModSeq,
            Code::Closed => Code::Closed,
            Code::Unavailable => Code::Unavailable,
            Code::AuthenticationFailed => Code::AuthenticationFailed,
            Code::AuthorizationFailed => Code::AuthorizationFailed,
            Code::Expired => Code::Expired,
            Code::PrivacyRequired => Code::PrivacyRequired,
            Code::ContactAdmin => Code::ContactAdmin,
            Code::NoPerm => Code::NoPerm,
            Code::InUse => Code::InUse,
            Code::ExpungeIssued => Code::ExpungeIssued,
            Code::Corruption => Code::Corruption,
            Code::ServerBug => Code::ServerBug,
            Code::ClientBug => Code::ClientBug,
            Code::Cannot => Code::Cannot,
            Code::Limit => Code::Limit,
            Code::OverQuota => Code::OverQuota,
            Code::AlreadyExists => Code::AlreadyExists,
            Code::NonExistent => Code::NonExistent,
        }
    }
}

/// Finds the `]` that closes the code opened by `input[0] == b'['`, skipping quoted strings
/// and balancing nested brackets (Office 365 puts both in its codes). `None` if there is none.
fn closing_bracket(input: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'"' => {
                i += 1;
                loop {
                    match input.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `resp-text = ["[" resp-text-code "]" SP] text`, on the rest of a line after the status
/// keyword's space (or at the end of the line).
///
/// Lenient where servers are: several spaces, or none, between the code and the text; no SP
/// and no text after the code (Gmail: `* OK [HIGHESTMODSEQ
/// 13637]`), no text at all (iCloud: `* BYE`; ppops.net: `A6 OK`), 8-bit text.
pub(crate) fn resp_text<'a>(input: &'a [u8], ctx: &Ctx) -> (Option<Code<'a>>, &'a [u8]) {
    if input.first() == Some(&b'[') {
        if let Some(end) = closing_bracket(input) {
            let code = resp_text_code(&input[1..end], ctx);
            let text = spaces(&input[end + 1..]);
            return (Some(code), text);
        }
    }
    (None, input)
}

/// `resp-text-code`, given the bytes between the brackets. Never fails: what does not parse is
/// kept as [`Code::Other`].
fn resp_text_code<'a>(inner: &'a [u8], ctx: &Ctx) -> Code<'a> {
    let n = inner.iter().take_while(|&&b| is_atom_char(b)).count();
    let (name, args) = inner.split_at(n);
    let args_trimmed = args.strip_prefix(b" ").unwrap_or(args);
    if let Some(code) = known_code(name, args, ctx) {
        return code;
    }
    Code::Other {
        name: Cow::Borrowed(name),
        text: (!args_trimmed.is_empty()).then_some(Cow::Borrowed(args_trimmed)),
    }
}

/// Parses a registered code whose arguments are exactly what the RFC says (trailing spaces
/// allowed). `None` sends the code to [`Code::Other`].
fn known_code<'a>(name: &[u8], args: &'a [u8], ctx: &Ctx) -> Option<Code<'a>> {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if args.iter().all(|&b| b == b' ') {
        if let Some((_, code)) = SIMPLE.iter().find(|(n, _)| is(n)) {
            return Some(code.clone());
        }
    }
    // Every code below has arguments after one space.
    let args = args.strip_prefix(b" ")?;
    let parsed: PResult<'a, Code<'a>> = if is("CAPABILITY") {
        capability_list(args).map(|(r, c)| (r, Code::Capability(c)))
    } else if is("PERMANENTFLAGS") {
        flag_list(args).map(|(r, f)| (r, Code::PermanentFlags(f)))
    } else if is("UIDVALIDITY") {
        nz_number(args).map(|(r, n)| (r, Code::UidValidity(n.get())))
    } else if is("UIDNEXT") {
        nz_number(args).map(|(r, n)| (r, Code::UidNext(n.get())))
    } else if is("UNSEEN") {
        number(args).map(|(r, n)| (r, Code::Unseen(n)))
    } else if is("HIGHESTMODSEQ") {
        number64(args).map(|(r, n)| (r, Code::HighestModSeq(n)))
    } else if is("MODIFIED") {
        sequence_set(args).map(|(r, s)| (r, Code::Modified(s)))
    } else if is("BADCHARSET") {
        paren_list(args, |i| astring(i, ctx)).map(|(r, c)| (r, Code::BadCharset(c)))
    } else if is("APPENDUID") {
        append_uid(args)
    } else if is("COPYUID") {
        copy_uid(args)
    } else {
        return None;
    };
    match parsed {
        Ok((rest, code)) if spaces(rest).is_empty() => Some(code),
        _ => None,
    }
}

/// `"APPENDUID" SP nz-number SP append-uid` (RFC 4315).
fn append_uid(input: &[u8]) -> PResult<'_, Code<'_>> {
    let (rest, uid_validity) = nz_number(input)?;
    let uid_validity = uid_validity.get();
    let Some(rest) = rest.strip_prefix(b" ") else {
        return expected(rest, "a space");
    };
    let (rest, uids) = sequence_set(rest)?;
    Ok((rest, Code::AppendUid { uid_validity, uids }))
}

/// `"COPYUID" SP nz-number SP uid-set SP uid-set` (RFC 4315).
fn copy_uid(input: &[u8]) -> PResult<'_, Code<'_>> {
    let (rest, uid_validity) = nz_number(input)?;
    let uid_validity = uid_validity.get();
    let Some(rest) = rest.strip_prefix(b" ") else {
        return expected(rest, "a space");
    };
    let (rest, source) = sequence_set(rest)?;
    let Some(rest) = rest.strip_prefix(b" ") else {
        return expected(rest, "a space");
    };
    let (rest, target) = sequence_set(rest)?;
    Ok((
        rest,
        Code::CopyUid {
            uid_validity,
            source,
            target,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::primitive::TEST_CTX as CTX;

    fn code(line: &str) -> (Option<Code<'_>>, &[u8]) {
        resp_text(line.as_bytes(), &CTX)
    }

    #[test]
    fn simple_codes_and_rfc5530() {
        assert_eq!(code("[ALERT] hi"), (Some(Code::Alert), &b"hi"[..]));
        assert_eq!(code("[read-write] ok").0, Some(Code::ReadWrite));
        assert_eq!(code("[OVERQUOTA] full").0, Some(Code::OverQuota));
        assert_eq!(
            code("[AUTHENTICATIONFAILED] no").0,
            Some(Code::AuthenticationFailed)
        );
    }

    #[test]
    fn gmail_code_without_text() {
        // Gmail: `* OK [HIGHESTMODSEQ 13637]` with neither SP nor text.
        assert_eq!(
            code("[HIGHESTMODSEQ 13637]"),
            (Some(Code::HighestModSeq(13637)), &b""[..])
        );
        assert_eq!(
            code("[UIDVALIDITY 1]"),
            (Some(Code::UidValidity(1)), &b""[..])
        );
    }

    #[test]
    fn copyuid_keeps_ranges() {
        let (c, _) = code("[COPYUID 1 1:4294967295 1:4294967295] done");
        let Some(Code::CopyUid {
            uid_validity,
            source,
            target,
        }) = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(uid_validity, 1);
        assert_eq!(source.ranges().len(), 1);
        assert_eq!(target.count(0), 4_294_967_295);
    }

    #[test]
    fn outlook_malformed_copyuid_is_kept_raw() {
        // Outlook.com (MailKit #555): `* OK [COPYUID 14  ]`.
        let (c, text) = code("[COPYUID 14  ]");
        assert_eq!(
            c,
            Some(Code::Other {
                name: Cow::Borrowed(&b"COPYUID"[..]),
                text: Some(Cow::Borrowed(&b"14  "[..]))
            })
        );
        assert!(text.is_empty());
    }

    #[test]
    fn office365_error_code_with_quotes_and_spaces() {
        // Office 365 (ruby/net-imap #597).
        let line = "[Error=\"Microsoft.Exchange.Data.Storage.WrongServerException:Cross Server access is not allowed for mailbox 0000\" AuthResultFromPopImapEnd=0 Proxy=AM0PR01MB0001.EURPRD01.PROD.OUTLOOK.COM:1993:SSL MailboxBE=AM0PR01MB0002.EURPRD01.PROD.OUTLOOK.COM Service=Imap4] AUTHENTICATE completed.";
        let (c, text) = code(line);
        let Some(Code::Other {
            name,
            text: Some(raw),
        }) = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(&*name, b"Error=");
        assert!(raw.ends_with(b"Service=Imap4"));
        assert_eq!(text, b"AUTHENTICATE completed.");
    }

    #[test]
    fn nested_brackets_are_balanced() {
        let (c, text) = code("[X-FOO [a] \"]\"] t");
        assert_eq!(
            c,
            Some(Code::Other {
                name: Cow::Borrowed(&b"X-FOO"[..]),
                text: Some(Cow::Borrowed(&b"[a] \"]\""[..]))
            })
        );
        assert_eq!(text, b"t");
    }

    #[test]
    fn unclosed_bracket_is_text() {
        assert_eq!(code("[TRYCREATE"), (None, &b"[TRYCREATE"[..]));
    }

    #[test]
    fn capability_permanentflags_badcharset_appenduid() {
        let (c, _) = code("[CAPABILITY IMAP4rev1 AUTH=XOAUTH2] x");
        crate::assert_matches!(c, Some(Code::Capability(ref v)) if v.len() == 2);
        let (c, _) = code("[PERMANENTFLAGS (\\Seen \\*)] x");
        assert_eq!(
            c,
            Some(Code::PermanentFlags(vec![Flag::Seen, Flag::MayCreate]))
        );
        let (c, _) = code("[BADCHARSET (UTF-8 \"US-ASCII\")] x");
        crate::assert_matches!(c, Some(Code::BadCharset(ref v)) if v.len() == 2);
        let (c, _) = code("[APPENDUID 38505 3955] APPEND completed");
        crate::assert_matches!(
            c,
            Some(Code::AppendUid {
                uid_validity: 38505,
                ..
            })
        );
    }

    #[test]
    fn names_for_printing() {
        assert_eq!(Code::Alert.name(), "ALERT");
        assert_eq!(Code::UidNext(3).name(), "UIDNEXT");
        assert_eq!(code("[X-Y] z").0.unwrap().name(), "X-Y");
    }
}
