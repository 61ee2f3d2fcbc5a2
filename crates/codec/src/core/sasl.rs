//! SASL payloads: PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2 and OAUTHBEARER
//! (RFC 7628), and the base64
//! wire form the three protocols share (RFC 4954 for SMTP, RFC 5034 for POP3, RFC 3501 / 4959
//! for IMAP).
//!
//! A mechanism produces raw bytes ([`Payload`]); [`encode`] turns them into the base64 line that
//! goes after `AUTH`/`AUTHENTICATE` or alone on a continuation line, and [`decode`] turns a
//! server challenge back into bytes. Secrets are plain `&str`/`&[u8]` parameters here: wrapping
//! them is the session's job. A [`Payload`] holds secrets, so its `Debug` never shows them.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::{DecodeError, EncodeError};

/// The raw bytes of one client response in a SASL exchange. May contain a secret: `Debug` shows
/// only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// The raw bytes (before base64).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The base64 form for the wire (without CRLF). An empty payload is the empty string; RFC
    /// 4954 and RFC 5034 write an empty initial response as `=`, which is the caller's choice.
    pub fn to_base64(&self) -> String {
        encode(&self.0)
    }

    /// The raw bytes, taking ownership.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload(<{} bytes redacted>)", self.0.len())
    }
}

/// Base64 (RFC 4648 §4, with padding) of `bytes`, as SASL puts it on the wire.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Padding is optional on input: some servers drop it from challenges.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a base64 challenge from the server (the text after `+ ` or `334 `).
///
/// Surrounding spaces are ignored and padding is optional; anything else that is not base64 is
/// [`DecodeError::Invalid`] at the offending byte.
pub fn decode(wire: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let start = wire.iter().take_while(|&&b| b == b' ').count();
    let end = wire.len()
        - wire[start..]
            .iter()
            .rev()
            .take_while(|&&b| b == b' ')
            .count();
    LENIENT
        .decode(&wire[start..end])
        .map_err(|err| DecodeError::Invalid {
            offset: start
                + match err {
                    base64::DecodeError::InvalidByte(at, _)
                    | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                    _ => end - start,
                },
            expected: "base64",
        })
}

/// PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`, the single client response.
///
/// `authzid` is usually empty (act as `authcid`). RFC 4616 §2: the parts are `1*SAFE` (any
/// UTF-8 except NUL) and only `authzid` may be empty; a NUL inside a part would move the
/// boundaries and is refused.
pub fn plain(authzid: &str, authcid: &str, password: &[u8]) -> Result<Payload, EncodeError> {
    refuse_nul("authorization identity", authzid.as_bytes())?;
    non_empty("login", authcid.as_bytes())?;
    refuse_nul("login", authcid.as_bytes())?;
    non_empty("password", password)?;
    refuse_nul("password", password)?;
    let mut out = Vec::with_capacity(authzid.len() + authcid.len() + password.len() + 2);
    out.extend_from_slice(authzid.as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password);
    Ok(Payload(out))
}

/// LOGIN (draft-murchison-sasl-login), first response: the user name.
///
/// The server prompts `Username:` then `Password:` (base64); the client answers each with one
/// of these two payloads, in that order.
pub fn login_username(username: &str) -> Result<Payload, EncodeError> {
    non_empty("login", username.as_bytes())?;
    refuse_nul("login", username.as_bytes())?;
    Ok(Payload(username.as_bytes().to_vec()))
}

/// LOGIN, second response: the password.
pub fn login_password(password: &[u8]) -> Result<Payload, EncodeError> {
    non_empty("password", password)?;
    refuse_nul("password", password)?;
    Ok(Payload(password.to_vec()))
}

/// CRAM-MD5 (RFC 2195), the single client response to the server's challenge:
/// `user SP hex(HMAC-MD5(password, challenge))`, the digest in lower-case hex.
///
/// The password never crosses the wire, but the server must store it in clear and the
/// mechanism proves nothing about the server: the sessions use it only over TLS, and only when
/// the server offers nothing better. A space or a control character in the user name would
/// move the boundary and is refused.
pub fn cram_md5(user: &str, password: &[u8], challenge: &[u8]) -> Result<Payload, EncodeError> {
    use hmac::{KeyInit, Mac};
    non_empty("login", user.as_bytes())?;
    if let Some(position) = user.bytes().position(|b| b == b' ' || b.is_ascii_control()) {
        return Err(EncodeError::ForbiddenByte {
            field: "login",
            byte: user.as_bytes()[position],
            position,
        });
    }
    non_empty("password", password)?;
    let mut mac =
        hmac::Hmac::<md5::Md5>::new_from_slice(password).map_err(|_| EncodeError::Invalid {
            field: "password",
            reason: "HMAC-MD5 cannot take it as a key",
        })?;
    mac.update(challenge);
    let digest = mac.finalize().into_bytes();
    let mut out = Vec::with_capacity(user.len() + 1 + 2 * digest.len());
    out.extend_from_slice(user.as_bytes());
    out.push(b' ');
    for b in digest.iter() {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    Ok(Payload(out))
}

/// XOAUTH2 (Google, Microsoft): `user=U ^A auth=Bearer T ^A ^A`.
///
/// `^A` (0x01) separates the fields, so it is refused inside the user and the token, as are CR,
/// LF and NUL.
pub fn xoauth2(user: &str, access_token: &str) -> Result<Payload, EncodeError> {
    check_kvsafe("user", user.as_bytes())?;
    check_kvsafe("access token", access_token.as_bytes())?;
    non_empty("access token", access_token.as_bytes())?;
    let mut out = Vec::with_capacity(user.len() + access_token.len() + 22);
    out.extend_from_slice(b"user=");
    out.extend_from_slice(user.as_bytes());
    out.extend_from_slice(b"\x01auth=Bearer ");
    out.extend_from_slice(access_token.as_bytes());
    out.extend_from_slice(b"\x01\x01");
    Ok(Payload(out))
}

/// OAUTHBEARER (RFC 7628 §3.1):
/// `n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A`.
///
/// The user goes in the GS2 header as a `saslname`, where `,` and `=` are written `=2C` and
/// `=3D` (RFC 5801). An empty user leaves the authorization identity out (`n,,`).
pub fn oauthbearer(
    user: &str,
    host: &str,
    port: u16,
    access_token: &str,
) -> Result<Payload, EncodeError> {
    check_kvsafe("user", user.as_bytes())?;
    check_kvsafe("host", host.as_bytes())?;
    check_kvsafe("access token", access_token.as_bytes())?;
    non_empty("access token", access_token.as_bytes())?;
    let mut out = Vec::with_capacity(user.len() + host.len() + access_token.len() + 40);
    out.extend_from_slice(b"n,");
    if !user.is_empty() {
        out.extend_from_slice(b"a=");
        for &b in user.as_bytes() {
            match b {
                b',' => out.extend_from_slice(b"=2C"),
                b'=' => out.extend_from_slice(b"=3D"),
                b => out.push(b),
            }
        }
    }
    out.extend_from_slice(b",\x01host=");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\x01port=");
    out.extend_from_slice(port.to_string().as_bytes());
    out.extend_from_slice(b"\x01auth=Bearer ");
    out.extend_from_slice(access_token.as_bytes());
    out.extend_from_slice(b"\x01\x01");
    Ok(Payload(out))
}

/// The client's answer to an OAUTHBEARER error challenge (RFC 7628 §3.2.3): a single `^A`, after
/// which the server sends its final failure. XOAUTH2 servers expect an empty response instead.
pub const OAUTHBEARER_FAILURE_ACK: &[u8] = b"\x01";

/// A server's XOAUTH2/OAUTHBEARER error challenge, decoded (RFC 7628 §3.2.2), e.g. Gmail's
/// `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthFailure {
    /// `status`: the HTTP-like error (`"401"`, `"invalid_token"`, ...), numbers as text.
    pub status: Option<String>,
    /// `schemes`: the accepted authentication schemes (`"bearer"`).
    pub schemes: Option<String>,
    /// `scope`: the scope the token needs.
    pub scope: Option<String>,
    /// `openid-configuration`: where to discover the authorization server.
    pub openid_configuration: Option<String>,
    /// The challenge after base64 decoding (or as received if it was not base64). Kept whole,
    /// since a server may send fields not listed here, or no JSON at all.
    pub raw: Vec<u8>,
}

impl OAuthFailure {
    /// Decodes the base64 challenge text (after `+ `, `334 ` or `+ ` in IMAP).
    ///
    /// Never fails: if the text is not base64 or the bytes not a JSON object, every field is
    /// `None` and [`OAuthFailure::raw`] holds what there was. Unknown fields are ignored.
    pub fn from_challenge(wire: &[u8]) -> Self {
        let raw = decode(wire).unwrap_or_else(|_| wire.to_vec());
        let mut failure = Self {
            status: None,
            schemes: None,
            scope: None,
            openid_configuration: None,
            raw,
        };
        if let Ok(serde_json::Value::Object(map)) =
            serde_json::from_slice::<serde_json::Value>(&failure.raw)
        {
            let field = |name: &str| match map.get(name) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            failure.status = field("status");
            failure.schemes = field("schemes");
            failure.scope = field("scope");
            failure.openid_configuration = field("openid-configuration");
        }
        failure
    }
}

fn non_empty(field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
    if value.is_empty() {
        Err(EncodeError::Empty { field })
    } else {
        Ok(())
    }
}

fn refuse_nul(field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
    match value.iter().position(|&b| b == 0) {
        Some(position) => Err(EncodeError::ForbiddenByte {
            field,
            byte: 0,
            position,
        }),
        None => Ok(()),
    }
}

/// Refuses the bytes that would break a `key=value ^A` list: ^A itself, CR, LF and NUL.
fn check_kvsafe(field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
    match value
        .iter()
        .position(|&b| matches!(b, 0 | 1 | b'\r' | b'\n'))
    {
        Some(position) => Err(EncodeError::ForbiddenByte {
            field,
            byte: value[position],
            position,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_matches_rfc4616_examples() {
        // RFC 4616 §4: "\0tim\0tanstaaftanstaaf" and "Ursel\0Kurt\0xipj3plmq".
        let p = plain("", "tim", b"tanstaaftanstaaf").unwrap();
        assert_eq!(p.as_bytes(), b"\0tim\0tanstaaftanstaaf");
        assert_eq!(p.to_base64(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        let p = plain("Ursel", "Kurt", b"xipj3plmq").unwrap();
        assert_eq!(p.as_bytes(), b"Ursel\0Kurt\0xipj3plmq");
    }

    #[test]
    fn plain_refuses_nul_and_empty_parts() {
        crate::assert_matches!(
            plain("", "user", b"pw\0x"),
            Err(EncodeError::ForbiddenByte {
                field: "password",
                position: 2,
                ..
            })
        );
        crate::assert_matches!(
            plain("", "us\0er", b"pw"),
            Err(EncodeError::ForbiddenByte { field: "login", .. })
        );
        crate::assert_matches!(
            plain("a\0", "user", b"pw"),
            Err(EncodeError::ForbiddenByte { .. })
        );
        assert_eq!(
            plain("", "", b"pw"),
            Err(EncodeError::Empty { field: "login" })
        );
        assert_eq!(
            plain("", "u", b""),
            Err(EncodeError::Empty { field: "password" })
        );
        // CR/LF are fine: base64 carries them (threat model #27).
        assert!(plain("", "u", b"pw\r\nA2 DELETE INBOX").is_ok());
    }

    #[test]
    fn login_is_two_steps() {
        assert_eq!(login_username("tim").unwrap().to_base64(), "dGlt");
        assert_eq!(login_password(b"secret").unwrap().to_base64(), "c2VjcmV0");
        assert!(login_password(b"").is_err());
    }

    #[test]
    fn cram_md5_matches_rfc2195_example() {
        let p = cram_md5(
            "tim",
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
        )
        .unwrap();
        assert_eq!(p.as_bytes(), b"tim b913a602c7eda7a495b4e6e7334d3890");
        assert_eq!(
            p.to_base64(),
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
        );
    }

    #[test]
    fn cram_md5_refuses_a_user_that_would_move_the_boundary() {
        for user in ["ti m", "tim\r", ""] {
            assert!(cram_md5(user, b"pw", b"<1@x>").is_err(), "{user:?}");
        }
        assert!(cram_md5("tim", b"", b"<1@x>").is_err());
    }

    #[test]
    fn xoauth2_matches_google_documentation() {
        // developers.google.com/gmail/imap/xoauth2-protocol
        let p = xoauth2(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        )
        .unwrap();
        assert_eq!(
            p.to_base64(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        assert!(xoauth2("u\x01", "t").is_err());
        assert!(xoauth2("u", "t\x01auth=x").is_err());
    }

    #[test]
    fn oauthbearer_matches_rfc7628_and_escapes_the_user() {
        // RFC 7628 §4.1.
        let p = oauthbearer(
            "user@example.com",
            "server.example.com",
            143,
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        )
        .unwrap();
        assert_eq!(
            p.as_bytes(),
            &b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"[..]
        );
        let p = oauthbearer("a,b=c", "h", 1, "t").unwrap();
        assert!(p.as_bytes().starts_with(b"n,a=a=2Cb=3Dc,\x01"));
        let p = oauthbearer("", "h", 1, "t").unwrap();
        assert!(p.as_bytes().starts_with(b"n,,\x01host=h"));
    }

    #[test]
    fn payload_debug_is_redacted() {
        let p = plain("", "user", b"hunter2").unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&p.to_base64()), "{shown}");
        assert_eq!(shown, "Payload(<13 bytes redacted>)");
    }

    #[test]
    fn decode_is_lenient_on_padding_and_spaces_and_locates_errors() {
        assert_eq!(decode(b"VXNlcm5hbWU6"), Ok(b"Username:".to_vec()));
        assert_eq!(decode(b"dGlt "), Ok(b"tim".to_vec()));
        assert_eq!(decode(b"dGltMQ"), Ok(b"tim1".to_vec()));
        assert_eq!(decode(b""), Ok(Vec::new()));
        assert_eq!(
            decode(b"dG*t"),
            Err(DecodeError::Invalid {
                offset: 2,
                expected: "base64"
            })
        );
    }

    #[test]
    fn gmail_xoauth2_failure_challenge_is_decoded() {
        let wire = b"eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==";
        let f = OAuthFailure::from_challenge(wire);
        assert_eq!(f.status.as_deref(), Some("400"));
        assert_eq!(f.schemes.as_deref(), Some("Bearer"));
        assert_eq!(f.scope.as_deref(), Some("https://mail.google.com/"));
        assert_eq!(f.openid_configuration, None);
    }

    #[test]
    fn oauth_failure_tolerates_numbers_unknown_fields_and_non_json() {
        let json = br#"{"status":401,"schemes":"bearer","scope":"s","x-extra":[1,2]}"#;
        let f = OAuthFailure::from_challenge(encode(json).as_bytes());
        assert_eq!(f.status.as_deref(), Some("401"));
        assert_eq!(f.raw, json);
        let f = OAuthFailure::from_challenge(encode(b"not json").as_bytes());
        assert_eq!((f.status, f.raw), (None, b"not json".to_vec()));
        let f = OAuthFailure::from_challenge(b"<<not base64>>");
        assert_eq!(f.raw, b"<<not base64>>");
    }

    proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(encode(&bytes).as_bytes()).unwrap(), bytes);
        }

        #[test]
        fn plain_parts_come_back_out(
            authzid in "[^\u{0}]{0,8}", authcid in "[^\u{0}]{1,8}", password in "[^\u{0}]{1,8}",
        ) {
            let p = plain(&authzid, &authcid, password.as_bytes()).unwrap();
            let wire = p.to_base64();
            let raw = decode(wire.as_bytes()).unwrap();
            let parts: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
            prop_assert_eq!(parts, vec![authzid.as_bytes(), authcid.as_bytes(), password.as_bytes()]);
        }
    }
}
