//! Message flags (RFC 3501 §2.3.2 / RFC 9051 §2.3.2, §9 `flag`, `flag-keyword`, `flag-fetch`,
//! `flag-perm`): one type for the flags a client sets and the flags a server reports.

use std::borrow::Cow;
use std::fmt;

use crate::core::parse::{expected, PResult};
use crate::EncodeError;

use super::primitive::{check_atom, is_atom_char, own, paren_list};

/// A message flag. System flags are named; others are kept as the server sent them.
///
/// A client builds keywords with [`Flag::keyword`]. `\Recent` and `\*` only come from a server:
/// the command encoder refuses them (RFC 3501 §2.3.2: `\Recent` cannot be altered by the client;
/// RFC 9051 removed it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag<'a> {
    /// `\Seen`.
    Seen,
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Draft`.
    Draft,
    /// `\Recent` (IMAP4rev1 only).
    Recent,
    /// `\*` in PERMANENTFLAGS: the client may create new keywords.
    MayCreate,
    /// A keyword without backslash (`$Forwarded`, `$MDNSent`, `NonJunk`).
    Keyword(Keyword<'a>),
    /// Any other backslash flag (`\Important` ...), as sent, with its backslash.
    Extension(Cow<'a, [u8]>),
}

impl Flag<'_> {
    /// A keyword flag; see [`Keyword::new`].
    pub fn keyword(name: &str) -> Result<Flag<'static>, EncodeError> {
        Keyword::new(name).map(Flag::Keyword)
    }

    /// The flag as it appears on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Flag::Seen => b"\\Seen",
            Flag::Answered => b"\\Answered",
            Flag::Flagged => b"\\Flagged",
            Flag::Deleted => b"\\Deleted",
            Flag::Draft => b"\\Draft",
            Flag::Recent => b"\\Recent",
            Flag::MayCreate => b"\\*",
            Flag::Keyword(k) => k.as_bytes(),
            Flag::Extension(k) => k,
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> Flag<'static> {
        match self {
            Flag::Seen => Flag::Seen,
            Flag::Answered => Flag::Answered,
            Flag::Flagged => Flag::Flagged,
            Flag::Deleted => Flag::Deleted,
            Flag::Draft => Flag::Draft,
            Flag::Recent => Flag::Recent,
            Flag::MayCreate => Flag::MayCreate,
            Flag::Keyword(k) => Flag::Keyword(k.into_owned()),
            Flag::Extension(k) => Flag::Extension(own(k)),
        }
    }
}

/// The flag as on the wire (8-bit bytes of a server's keyword shown lossily).
impl fmt::Display for Flag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A keyword (`flag-keyword = atom`).
///
/// [`Keyword::new`] takes only atoms: no spaces, parentheses, quotes, backslash, `%`, `*`, `]`,
/// `{`, control or 8-bit characters. A keyword parsed from a server may also hold 8-bit bytes
/// (see the parser); the command encoder checks it again before sending it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyword<'a>(Cow<'a, [u8]>);

impl Keyword<'_> {
    /// Checks a keyword.
    pub fn new(name: &str) -> Result<Keyword<'static>, EncodeError> {
        check_atom("flag keyword", name.as_bytes())?;
        Ok(Keyword(Cow::Owned(name.as_bytes().to_vec())))
    }

    /// The keyword's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// An owned copy.
    pub fn into_owned(self) -> Keyword<'static> {
        Keyword(own(self.0))
    }
}

/// `flag-perm = flag / "\*"`, `flag-fetch = flag / "\Recent"`,
/// `flag = "\Answered" / ... / flag-keyword / flag-extension`. Case-insensitive.
pub(crate) fn flag(input: &[u8]) -> PResult<'_, Flag<'_>> {
    let backslash = input.first() == Some(&b'\\');
    let start = usize::from(backslash);
    if backslash && input.get(1) == Some(&b'*') {
        return Ok((&input[2..], Flag::MayCreate));
    }
    // Lenient: keywords with 8-bit bytes exist in the wild (localised labels), and with `]`
    // (labels such as `$Label[1]`; a PERMANENTFLAGS code is cut at its balanced `]` before
    // this runs); CTLs and other specials still end the flag. The command encoder refuses
    // such a keyword, so it is never sent back.
    let n = input[start..]
        .iter()
        .take_while(|&&b| is_atom_char(b) || b >= 0x80 || b == b']')
        .count();
    if n == 0 {
        return expected(input, "a flag");
    }
    let raw = &input[..start + n];
    let rest = &input[start + n..];
    if !backslash {
        return Ok((rest, Flag::Keyword(Keyword(Cow::Borrowed(raw)))));
    }
    let name = &raw[1..];
    let f = if name.eq_ignore_ascii_case(b"Seen") {
        Flag::Seen
    } else if name.eq_ignore_ascii_case(b"Answered") {
        Flag::Answered
    } else if name.eq_ignore_ascii_case(b"Flagged") {
        Flag::Flagged
    } else if name.eq_ignore_ascii_case(b"Deleted") {
        Flag::Deleted
    } else if name.eq_ignore_ascii_case(b"Draft") {
        Flag::Draft
    } else if name.eq_ignore_ascii_case(b"Recent") {
        Flag::Recent
    } else {
        Flag::Extension(Cow::Borrowed(raw))
    };
    Ok((rest, f))
}

/// `flag-list = "(" [flag *(SP flag)] ")"`.
pub(crate) fn flag_list(input: &[u8]) -> PResult<'_, Vec<Flag<'_>>> {
    paren_list(input, flag)
}

/// Owned copies of a list of flags.
pub(crate) fn own_flags(flags: Vec<Flag<'_>>) -> Vec<Flag<'static>> {
    flags.into_iter().map(Flag::into_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_flags_keywords_and_extensions() {
        let (rest, flags) = flag_list(b"(\\Seen \\answered $Forwarded \\Important \\*)").unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            flags,
            vec![
                Flag::Seen,
                Flag::Answered,
                Flag::keyword("$Forwarded").unwrap(),
                Flag::Extension(Cow::Borrowed(&b"\\Important"[..])),
                Flag::MayCreate,
            ]
        );
    }

    #[test]
    fn brackets_inside_keywords() {
        // Labels mapped to keywords keep their brackets (`$Label[1]`, `[Gmail]/Sent`-derived
        // keywords, `foo]bar` from Kerio): kept as sent; the encoder refuses to send them back.
        let (rest, flags) = flag_list(b"(\\Seen $Label[1] foo]bar \\X[y])").unwrap();
        assert!(rest.is_empty());
        let names: Vec<&[u8]> = flags.iter().map(Flag::as_bytes).collect();
        assert_eq!(names, [&b"\\Seen"[..], b"$Label[1]", b"foo]bar", b"\\X[y]"]);
    }

    #[test]
    fn empty_and_bad_lists() {
        assert_eq!(flag_list(b"()").unwrap().1, vec![]);
        assert!(flag_list(b"(\\Seen").is_err());
        assert!(flag_list(b"(\"x\")").is_err());
    }
}
