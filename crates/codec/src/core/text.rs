//! Validated text: values that are safe to put on a command line.
//!
//! A [`Text`] never contains CR, LF or NUL, so it cannot end a command early and smuggle a second
//! one (threat model #27-#29). Protocol encoders take `Text` (or stricter types built on it), so
//! an invalid command cannot be built.

use std::borrow::Cow;
use std::fmt;

use crate::EncodeError;

/// Bytes without CR, LF or NUL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text<'a>(Cow<'a, [u8]>);

impl<'a> Text<'a> {
    /// Checks `value` for CR, LF and NUL; `field` names the value in the error.
    pub fn new(field: &'static str, value: impl Into<Cow<'a, [u8]>>) -> Result<Self, EncodeError> {
        let value = value.into();
        check_line_safe(field, &value)?;
        Ok(Text(value))
    }

    /// Like [`Text::new`] but also refuses an empty value.
    pub fn non_empty(
        field: &'static str,
        value: impl Into<Cow<'a, [u8]>>,
    ) -> Result<Self, EncodeError> {
        let text = Self::new(field, value)?;
        if text.0.is_empty() {
            return Err(EncodeError::Empty { field });
        }
        Ok(text)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// An owned copy that no longer borrows.
    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// Refuses CR, LF and NUL anywhere in `value`.
pub fn check_line_safe(field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
    match value.iter().position(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        Some(position) => Err(EncodeError::ForbiddenByte {
            field,
            byte: value[position],
            position,
        }),
        None => Ok(()),
    }
}

/// Escapes bytes for a terminal or a log: printable ASCII as is, `\r`, `\n`, `\t`, `\\`, and
/// `\xNN` for every other byte (control characters, ESC, 8-bit). Server text goes through this
/// before it is shown, so it cannot move the cursor or recolour the screen (threat model #48).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_each_line_breaking_byte() {
        for (bad, pos) in [
            (&b"pw\r\nA2 DELETE INBOX"[..], 2),
            (b"a\nb", 1),
            (b"nul\0", 3),
        ] {
            let err = Text::new("password", bad).unwrap_err();
            crate::assert_matches!(err, EncodeError::ForbiddenByte { field: "password", position, .. } if position == pos);
        }
        assert_eq!(
            Text::new("login", &b"plain user"[..]).unwrap().as_bytes(),
            b"plain user"
        );
    }

    #[test]
    fn error_names_the_byte() {
        let err = Text::new("login", &b"a\rb"[..]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "login contains a forbidden carriage return (CR) at position 1; remove it"
        );
    }

    #[test]
    fn empty_is_refused_when_asked() {
        assert_eq!(
            Text::non_empty("login", &b""[..]).unwrap_err(),
            EncodeError::Empty { field: "login" }
        );
    }

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(
            escape_bytes(b"OK \x1b[31mred\r\n\xff"),
            "OK \\x1b[31mred\\r\\n\\xff"
        );
    }
}
