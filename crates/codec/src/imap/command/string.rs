//! Strings on the command line: atom, quoted string or literal, as the bytes demand.
//!
//! RFC 3501 §4.3 / RFC 9051 §4.3 (`astring`, `string`, `quoted`, `literal`), RFC 7888
//! (`LITERAL+` / `LITERAL-` non-synchronising literals), RFC 6855 (`UTF8=ACCEPT`: UTF-8 in quoted
//! strings and mailbox names).
//!
//! The choice, per value:
//! - **atom** when the value is non-empty, made only of the characters the rule allows bare, and
//!   not `NIL` in any case (an atom `NIL` reads as "no value" in too many parsers);
//! - **quoted** when every byte is 7-bit and not CR, LF or NUL (`"` and `\` are escaped), or,
//!   with `UTF8=ACCEPT` on, when the value is valid UTF-8 without those bytes;
//! - **literal** otherwise (8-bit without `UTF8=ACCEPT`, CR or LF where the field allows them).
//!
//! NUL is never sent: a `literal` is `*CHAR8`, which excludes it (only `literal8` may carry NUL,
//! and we do not send one). Whether CR and LF are refused or sent in a literal is decided per
//! field; see [`LineBreaks`].

use std::fmt;

use super::{EncodeOptions, Encoded, Fragment};
use crate::imap::primitive::is_astring_char;
use crate::imap::utf7;
use crate::EncodeError;

/// What a field does with CR and LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineBreaks {
    /// Refuse them: names, logins, search keys. A CR/LF there is an injection attempt or a typo.
    Refuse,
    /// Send the value as a literal: the server reads exactly N bytes, so a CR/LF inside cannot
    /// end the command (passwords, the APPEND message).
    AsLiteral,
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// The longest literal sent without waiting under `LITERAL-` (RFC 7888 §4).
pub const LITERAL_MINUS_MAX: usize = 4096;

/// Builds the fragments of one command. Nothing leaves it before [`Writer::finish`], so an error
/// half-way leaves no partial command anywhere.
pub(crate) struct Writer<'o> {
    options: &'o EncodeOptions,
    fragments: Vec<Fragment>,
    line: Vec<u8>,
}

impl<'o> Writer<'o> {
    pub(crate) fn new(options: &'o EncodeOptions) -> Self {
        Writer {
            options,
            fragments: Vec::new(),
            line: Vec::with_capacity(64),
        }
    }

    pub(crate) fn options(&self) -> &EncodeOptions {
        self.options
    }

    /// Protocol syntax written as is (keywords, numbers, punctuation): never user input.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.line.extend_from_slice(bytes);
    }

    pub(crate) fn sp(&mut self) {
        self.line.push(b' ');
    }

    pub(crate) fn display(&mut self, value: impl fmt::Display) {
        self.line.extend_from_slice(value.to_string().as_bytes());
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8`; the `+` form (RFC 7888) when the server
    /// allows it for this size.
    pub(crate) fn literal(&mut self, data: &[u8]) {
        let sync = !(self.options.literal_plus
            || (self.options.literal_minus && data.len() <= LITERAL_MINUS_MAX));
        let header = if sync {
            format!("{{{}}}\r\n", data.len())
        } else {
            format!("{{{}+}}\r\n", data.len())
        };
        self.line.extend_from_slice(header.as_bytes());
        self.fragments
            .push(Fragment::Line(std::mem::take(&mut self.line)));
        self.fragments.push(Fragment::Literal {
            data: data.to_vec(),
            sync,
        });
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, escaping `"` and `\`. The caller has checked that
    /// the bytes may be quoted.
    fn quoted(&mut self, bytes: &[u8]) {
        self.line.push(b'"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                self.line.push(b'\\');
            }
            self.line.push(b);
        }
        self.line.push(b'"');
    }

    /// Ends the command with CRLF.
    pub(crate) fn finish(mut self) -> Encoded {
        self.line.extend_from_slice(b"\r\n");
        self.fragments.push(Fragment::Line(self.line));
        Encoded {
            fragments: self.fragments,
        }
    }

    /// Writes `value` as an atom (when `atom_char` allows every byte), a quoted string or a
    /// literal. `field` names the value in errors.
    pub(crate) fn argument(
        &mut self,
        field: &'static str,
        value: &[u8],
        atom_char: Option<fn(u8) -> bool>,
        line_breaks: LineBreaks,
    ) -> Result<(), EncodeError> {
        for (position, &byte) in value.iter().enumerate() {
            let forbidden =
                byte == 0 || (line_breaks == LineBreaks::Refuse && matches!(byte, b'\r' | b'\n'));
            if forbidden {
                return Err(EncodeError::ForbiddenByte {
                    field,
                    byte,
                    position,
                });
            }
        }
        match choose_form(value, atom_char, self.options.utf8_accept) {
            Form::Atom => self.raw(value),
            Form::Quoted => self.quoted(value),
            Form::Literal => self.literal(value),
        }
        Ok(())
    }

    /// `astring`: atom, quoted or literal.
    pub(crate) fn astring(
        &mut self,
        field: &'static str,
        value: &[u8],
        line_breaks: LineBreaks,
    ) -> Result<(), EncodeError> {
        self.argument(field, value, Some(is_astring_char), line_breaks)
    }

    /// `string`: quoted or literal, never an atom.
    pub(crate) fn string(&mut self, field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
        self.argument(field, value, None, LineBreaks::Refuse)
    }

    /// `mailbox = "INBOX" / astring`, in modified UTF-7 unless `UTF8=ACCEPT` is on.
    pub(crate) fn mailbox(&mut self, mailbox: &Mailbox) -> Result<(), EncodeError> {
        let wire = mailbox.wire(self.options.utf8_accept);
        self.astring("mailbox name", wire.as_bytes(), LineBreaks::Refuse)
    }

    /// `list-mailbox = 1*list-char / string`: a LIST pattern, `%` and `*` kept bare.
    pub(crate) fn list_mailbox(&mut self, pattern: &ListPattern) -> Result<(), EncodeError> {
        let wire = pattern.wire(self.options.utf8_accept);
        self.argument(
            "mailbox pattern",
            wire.as_bytes(),
            Some(is_list_char),
            LineBreaks::Refuse,
        )
    }

    /// A LIST reference name: a `mailbox` that may be empty.
    pub(crate) fn reference(&mut self, reference: &ListPattern) -> Result<(), EncodeError> {
        let wire = reference.wire(self.options.utf8_accept);
        self.astring("reference name", wire.as_bytes(), LineBreaks::Refuse)
    }
}

/// How a value goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Atom,
    Quoted,
    Literal,
}

pub(crate) fn choose_form(
    value: &[u8],
    atom_char: Option<fn(u8) -> bool>,
    utf8_accept: bool,
) -> Form {
    if let Some(atom_char) = atom_char {
        if !value.is_empty()
            && value.iter().all(|&b| atom_char(b))
            && !value.eq_ignore_ascii_case(b"NIL")
        {
            return Form::Atom;
        }
    }
    let no_breaks = !value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    if no_breaks && value.is_ascii() {
        return Form::Quoted;
    }
    // RFC 6855 §3: with UTF8=ACCEPT, "the server MUST accept UTF-8 in quoted strings".
    if no_breaks && utf8_accept && std::str::from_utf8(value).is_ok() {
        return Form::Quoted;
    }
    Form::Literal
}

/// Refuses CR, LF, NUL and every other control character in a name.
fn check_name(field: &'static str, name: &str) -> Result<(), EncodeError> {
    match name
        .bytes()
        .enumerate()
        .find(|&(_, b)| b < 0x20 || b == 0x7f)
    {
        Some((position, byte)) => Err(EncodeError::ForbiddenByte {
            field,
            byte,
            position,
        }),
        None => Ok(()),
    }
}

/// A mailbox name, as the user sees it (Unicode). CR, LF, NUL and other control characters are
/// refused when it is built: no server takes them in a name, and they are how a second command
/// would be smuggled in (threat model #28).
///
/// On the wire it is modified UTF-7 (RFC 3501 §5.1.3) or, with `UTF8=ACCEPT` on, UTF-8
/// (RFC 6855 §3). `INBOX` is case-insensitive (RFC 3501 §5.1) and always sent as `INBOX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox(String);

impl Mailbox {
    /// Checks a mailbox name: not empty, no control characters.
    pub fn new(name: impl Into<String>) -> Result<Self, EncodeError> {
        let name = name.into();
        if name.is_empty() {
            return Err(EncodeError::Empty {
                field: "mailbox name",
            });
        }
        check_name("mailbox name", &name)?;
        Ok(Self(name))
    }

    /// The mailbox `INBOX`.
    pub fn inbox() -> Self {
        Self("INBOX".to_owned())
    }

    /// Decodes a name as a server sends it in modified UTF-7 (LIST responses without
    /// `UTF8=ACCEPT`) and checks it.
    pub fn from_utf7(wire: &[u8]) -> Result<Self, EncodeError> {
        let name = utf7::decode(wire).map_err(|_| EncodeError::Invalid {
            field: "mailbox name",
            reason: "not valid modified UTF-7 (RFC 3501 §5.1.3)",
        })?;
        Self::new(name)
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `INBOX` in any case.
    pub fn is_inbox(&self) -> bool {
        self.0.eq_ignore_ascii_case("INBOX")
    }

    /// The name as it goes on the wire, before atom/quoted/literal encoding.
    pub fn wire(&self, utf8_accept: bool) -> String {
        if self.is_inbox() {
            "INBOX".to_owned()
        } else if utf8_accept {
            self.0.clone()
        } else {
            utf7::encode(&self.0)
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A LIST/LSUB reference or pattern (RFC 3501 §6.3.8): may be empty and may hold the wildcards
/// `*` and `%`. Control characters are refused, as in [`Mailbox`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListPattern(String);

impl ListPattern {
    /// Checks a pattern or reference name.
    pub fn new(pattern: impl Into<String>) -> Result<Self, EncodeError> {
        let pattern = pattern.into();
        check_name("mailbox pattern", &pattern)?;
        Ok(Self(pattern))
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn wire(&self, utf8_accept: bool) -> String {
        if utf8_accept {
            self.0.clone()
        } else {
            utf7::encode(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let atom = Some(is_astring_char as fn(u8) -> bool);
        assert_eq!(choose_form(b"alice", atom, false), Form::Atom);
        assert_eq!(choose_form(b"a]b", atom, false), Form::Atom);
        assert_eq!(choose_form(b"", atom, false), Form::Quoted);
        assert_eq!(choose_form(b"nil", atom, false), Form::Quoted);
        assert_eq!(choose_form(b"two words", atom, false), Form::Quoted);
        assert_eq!(choose_form(b"a\"b\\c", atom, false), Form::Quoted);
        assert_eq!(choose_form(b"{5}", atom, false), Form::Quoted);
        assert_eq!(choose_form("é".as_bytes(), atom, false), Form::Literal);
        assert_eq!(choose_form("é".as_bytes(), atom, true), Form::Quoted);
        assert_eq!(choose_form(b"\xff", atom, true), Form::Literal);
        assert_eq!(choose_form(b"a\r\nb", atom, true), Form::Literal);
        assert_eq!(choose_form(b"alice", None, false), Form::Quoted);
    }

    #[test]
    fn mailbox_names() {
        assert!(Mailbox::new("inbox").unwrap().is_inbox());
        assert_eq!(Mailbox::new("iNbOx").unwrap().wire(false), "INBOX");
        assert_eq!(Mailbox::new("R&D").unwrap().wire(false), "R&-D");
        assert_eq!(
            Mailbox::new("Entwürfe").unwrap().wire(false),
            "Entw&APw-rfe"
        );
        assert_eq!(Mailbox::new("Entwürfe").unwrap().wire(true), "Entwürfe");
        assert_eq!(
            Mailbox::new("").unwrap_err(),
            EncodeError::Empty {
                field: "mailbox name"
            }
        );
        assert_eq!(
            Mailbox::new("INBOX\r\nA3 DELETE Sent").unwrap_err(),
            EncodeError::ForbiddenByte {
                field: "mailbox name",
                byte: b'\r',
                position: 5
            }
        );
        crate::assert_matches!(
            Mailbox::new("a\x1b[31m").unwrap_err(),
            EncodeError::ForbiddenByte { byte: 0x1b, .. }
        );
        crate::assert_matches!(
            Mailbox::new("a\0").unwrap_err(),
            EncodeError::ForbiddenByte { byte: 0, .. }
        );
        assert_eq!(
            Mailbox::from_utf7(b"Entw&APw-rfe").unwrap().as_str(),
            "Entwürfe"
        );
        assert!(Mailbox::from_utf7(b"&Jjo").is_err());
    }

    #[test]
    fn patterns_may_be_empty_but_not_controls() {
        assert_eq!(ListPattern::new("").unwrap().as_str(), "");
        assert!(ListPattern::new("*\n").is_err());
    }
}
