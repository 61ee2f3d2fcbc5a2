//! Modified UTF-7 for mailbox names (RFC 3501 §5.1.3).
//!
//! Printable US-ASCII stands for itself, except `&`, written `&-`. Every other run of characters
//! is UTF-16BE, base64-encoded with `,` in place of `/` and no padding, between `&` and `-`.
//! Servers that have `UTF8=ACCEPT` enabled (RFC 6855) take and send UTF-8 names instead.

use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

fn engine() -> GeneralPurpose {
    // The alphabet is a valid, constant 64-character set; `new` cannot fail on it.
    #[allow(clippy::unwrap_used)]
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").unwrap();
    let config = GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false);
    GeneralPurpose::new(&alphabet, config)
}

/// Encodes a mailbox name to modified UTF-7.
pub fn encode(name: &str) -> String {
    let engine = engine();
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Why a name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utf7Error {
    /// Offset of the offending byte or `&` shift.
    pub offset: usize,
}

/// Decodes a modified UTF-7 mailbox name.
///
/// Strict about the encoding itself (a shift must decode to valid UTF-16, must not encode
/// printable ASCII, and must not follow another at once: RFC 3501 forbids that null shift,
/// `-&`), so a name decodes to exactly one string and back.
pub fn decode(name: &[u8]) -> Result<String, Utf7Error> {
    let engine = engine();
    let mut out = String::with_capacity(name.len());
    // Where the last base64 run ended (just after its `-`).
    let mut run_ended = None;
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(Utf7Error { offset: i });
            }
            out.push(b as char);
            i += 1;
            continue;
        }
        let end = match name[i + 1..].iter().position(|&c| c == b'-') {
            Some(p) => i + 1 + p,
            None => return Err(Utf7Error { offset: i }),
        };
        let encoded = &name[i + 1..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            if run_ended == Some(i) {
                return Err(Utf7Error { offset: i });
            }
            run_ended = Some(end + 1);
            let bytes = engine
                .decode(encoded)
                .map_err(|_| Utf7Error { offset: i })?;
            if bytes.len() % 2 != 0 {
                return Err(Utf7Error { offset: i });
            }
            let units = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]));
            for c in char::decode_utf16(units) {
                let c = c.map_err(|_| Utf7Error { offset: i })?;
                if (' '..='~').contains(&c) {
                    return Err(Utf7Error { offset: i });
                }
                out.push(c);
            }
        }
        i = end + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3501_example() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語".
        let name = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(encode(name), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        assert_eq!(decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(), name);
    }

    #[test]
    fn ampersand_and_common_names() {
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode(b"Tom &- Jerry").unwrap(), "Tom & Jerry");
        // Gmail's German and Russian folder names.
        assert_eq!(decode(b"[Gmail]/Entw&APw-rfe").unwrap(), "[Gmail]/Entwürfe");
        assert_eq!(encode("Отправленные"), "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-");
    }

    #[test]
    fn invalid_encodings_are_refused() {
        assert_eq!(decode(b"&U,BTFw"), Err(Utf7Error { offset: 0 })); // unterminated
        assert_eq!(decode(b"a&AGE-"), Err(Utf7Error { offset: 1 })); // encodes ASCII "a"
        assert_eq!(decode(b"\xc3\xa9"), Err(Utf7Error { offset: 0 })); // raw 8-bit
        assert_eq!(decode(b"&2D0-"), Err(Utf7Error { offset: 0 })); // lone high surrogate
        assert_eq!(decode(b"&2D3eAA-").unwrap(), "\u{1f600}"); // a surrogate pair is fine

        // A null shift: "ДД" is one run, `&BBQEFA-`; two runs back to back are a second
        // spelling of it (found by the reply_fields fuzz target).
        assert_eq!(decode(b"&BBQ-&BBQ-"), Err(Utf7Error { offset: 5 }));
        assert_eq!(decode(b"&BBQEFA-").unwrap(), "ДД");
        assert_eq!(decode(b"&BBQ-&-&BBQ-").unwrap(), "Д&Д"); // `&-` is a character, not a run
        assert_eq!(decode(b"&BBQ-a&BBQ-").unwrap(), "ДaД");
    }

    proptest! {
        #[test]
        fn round_trips(name in "\\PC*") {
            prop_assert_eq!(decode(encode(&name).as_bytes()).unwrap(), name);
        }
    }
}
