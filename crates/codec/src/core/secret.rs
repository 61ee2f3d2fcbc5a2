//! Secrets, and the SASL wire forms (base64 responses, `=`, `*`) shared by the encoders of the three protocols.
//!
//! SASL (RFC 4422) payloads travel base64-encoded (RFC 4648 §4) on all three protocols; an empty
//! initial response is sent as a single `=` (RFC 4959 §3, RFC 5034 §4, RFC 4954 §4), and `*`
//! cancels an exchange.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::EncodeError;

/// A password, token or SASL payload: its [`Debug`] never shows the bytes, so a command can be
/// logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The secret bytes, for the encoder (and nothing that prints).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Checks a SASL mechanism name: RFC 4422 §3.1, `sasl-mech = 1*20mech-char`,
/// `mech-char = UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE`. Lower case is accepted too (servers
/// compare case-insensitively) and sent as given.
pub(crate) fn check_mechanism(mechanism: &str) -> Result<(), EncodeError> {
    const FIELD: &str = "SASL mechanism";
    crate::core::text::check_line_safe(FIELD, mechanism.as_bytes())?;
    if mechanism.is_empty() {
        return Err(EncodeError::Empty { field: FIELD });
    }
    if mechanism.len() > 20 {
        return Err(EncodeError::TooLong {
            field: FIELD,
            len: mechanism.len(),
            limit: 20,
        });
    }
    if !mechanism
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(EncodeError::Invalid {
            field: FIELD,
            reason: "only letters, digits, '-' and '_' are allowed (RFC 4422 §3.1)",
        });
    }
    Ok(())
}

/// Appends an initial response: base64, or `=` for an empty one.
pub(crate) fn push_initial_response(out: &mut Vec<u8>, response: &[u8]) {
    if response.is_empty() {
        out.push(b'=');
    } else {
        out.extend_from_slice(STANDARD.encode(response).as_bytes());
    }
}

/// A SASL continuation response line: the payload in base64 and CRLF (an empty payload is an
/// empty line). The same on IMAP (RFC 3501 §6.2.2), POP3 (RFC 5034 §4) and SMTP (RFC 4954 §4).
pub fn response_line(response: &[u8]) -> Vec<u8> {
    let mut out = STANDARD.encode(response).into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// The line that cancels a SASL exchange: `*` CRLF.
pub const CANCEL_LINE: &[u8] = b"*\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let s = Secret::new(&b"hunter2"[..]);
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), b"hunter2");
    }

    #[test]
    fn mechanism_names() {
        assert!(check_mechanism("SCRAM-SHA-256").is_ok());
        assert!(check_mechanism("XOAUTH2").is_ok());
        assert_eq!(
            check_mechanism("").unwrap_err(),
            EncodeError::Empty {
                field: "SASL mechanism"
            }
        );
        crate::assert_matches!(
            check_mechanism("PLAIN\r\nA2 DELETE INBOX").unwrap_err(),
            EncodeError::ForbiddenByte { .. }
        );
        crate::assert_matches!(
            check_mechanism("PLAIN AUTH").unwrap_err(),
            EncodeError::Invalid { .. }
        );
        crate::assert_matches!(
            check_mechanism("ABCDEFGHIJKLMNOPQRSTU").unwrap_err(),
            EncodeError::TooLong { limit: 20, .. }
        );
    }

    #[test]
    fn responses() {
        let mut out = Vec::new();
        push_initial_response(&mut out, b"");
        assert_eq!(out, b"=");
        assert_eq!(response_line(b"\0u\0p"), b"AHUAcA==\r\n");
        assert_eq!(response_line(b""), b"\r\n");
    }
}
