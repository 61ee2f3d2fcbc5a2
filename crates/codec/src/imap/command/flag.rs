//! Message flags (RFC 3501 §2.3.2 / RFC 9051 §2.3.2: `flag`, `flag-keyword`).

use std::fmt;

use crate::EncodeError;

/// A flag a client may set or clear: a system flag, or a keyword (`flag-keyword = atom`).
///
/// `\Recent` is not here: RFC 3501 §2.3.2 says it cannot be altered by the client, and RFC 9051
/// removed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// A keyword such as `$Forwarded` or `$Junk`; build it with [`Flag::keyword`].
    Keyword(Keyword),
}

impl Flag {
    /// A keyword flag; see [`Keyword::new`].
    pub fn keyword(name: &str) -> Result<Self, EncodeError> {
        Keyword::new(name).map(Flag::Keyword)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Keyword(k) => f.write_str(&k.0),
        }
    }
}

/// A keyword: a non-empty atom (no spaces, parentheses, quotes, backslash, `%`, `*`, `]`, `{`,
/// control or 8-bit characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyword(String);

impl Keyword {
    /// Checks a keyword.
    pub fn new(name: &str) -> Result<Self, EncodeError> {
        crate::imap::primitive::check_atom("flag keyword", name.as_bytes())?;
        Ok(Keyword(name.to_owned()))
    }

    /// The keyword.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `flag-list = "(" [flag *(SP flag)] ")"`.
pub(crate) fn flag_list(flags: &[Flag]) -> String {
    let names: Vec<String> = flags.iter().map(Flag::to_string).collect();
    format!("({})", names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_flags_and_keywords() {
        let flags = [
            Flag::Seen,
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Draft,
            Flag::keyword("$Forwarded").unwrap(),
        ];
        assert_eq!(
            flag_list(&flags),
            "(\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded)"
        );
        assert_eq!(flag_list(&[]), "()");
    }

    #[test]
    fn refuses_non_atoms() {
        for bad in [
            "",
            "two words",
            "\\Seen",
            "a)",
            "a]",
            "x\r\nA2 DELETE INBOX",
            "é",
            "50%",
        ] {
            assert!(Flag::keyword(bad).is_err(), "{bad:?}");
        }
    }
}
