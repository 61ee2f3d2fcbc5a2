//! The SHA-256 fingerprint of a certificate: how a person names one exact certificate to trust
//! (msmtp's `tls_fingerprint`, fetchmail's `sslfingerprint`), and how mailcat shows the one a
//! server presented.

use std::fmt;
use std::str::FromStr;

/// The SHA-256 digest of a certificate's DER bytes, written as `openssl x509 -noout
/// -fingerprint -sha256` writes it: `AB:CD:…` (32 pairs of hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a text is not a SHA-256 fingerprint; the message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FingerprintError(String);

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    /// Reads 64 hex digits, with or without `:` between the pairs, in either case, optionally
    /// after `sha256:` or openssl's `sha256 Fingerprint=`.
    fn from_str(text: &str) -> Result<Self, FingerprintError> {
        let expected = "expected a SHA-256 fingerprint: 64 hex digits, with or without colons, \
                        as `openssl x509 -noout -fingerprint -sha256 -in CERT` prints it";
        let text = text.trim();
        // openssl's `sha256 Fingerprint=AB:…`, or `sha256:AB…`, or the digits alone.
        let digits = match text.rsplit_once('=') {
            Some((label, value)) if label.to_ascii_lowercase().starts_with("sha256") => value,
            Some(_) => {
                return Err(FingerprintError(format!(
                    "{text:?} is not SHA-256; {expected}"
                )))
            }
            None => match text.split_once(':') {
                Some((label, value)) if label.eq_ignore_ascii_case("sha256") => value,
                _ => text,
            },
        };
        let hex: Vec<u8> = digits.bytes().filter(|b| *b != b':').collect();
        if let Some(bad) = hex.iter().find(|b| !b.is_ascii_hexdigit()) {
            return Err(FingerprintError(format!(
                "{text:?} has {:?}, which is not a hex digit; {expected}",
                char::from(*bad)
            )));
        }
        if hex.len() != 64 {
            let which = match hex.len() {
                40 => " (that is the length of a SHA-1 fingerprint, which is not safe to pin)",
                32 => " (that is the length of an MD5 fingerprint, which is not safe to pin)",
                _ => "",
            };
            return Err(FingerprintError(format!(
                "{text:?} has {} hex digits{which}; {expected}",
                hex.len()
            )));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        Ok(Self(bytes))
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `printf abc | openssl dgst -sha256`.
    const ABC: &str = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
                       B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";

    #[test]
    fn digest_is_shown_as_openssl_shows_it() {
        assert_eq!(Fingerprint::of(b"abc").to_string(), ABC);
    }

    #[test]
    fn every_common_spelling_reads_back() {
        let want = Fingerprint::of(b"abc");
        let bare = ABC.replace(':', "");
        for text in [
            ABC.to_owned(),
            ABC.to_lowercase(),
            bare.clone(),
            format!("sha256:{bare}"),
            format!("SHA256:{ABC}"),
            format!("sha256 Fingerprint={ABC}"),
            format!("  SHA256 Fingerprint={ABC}\n"),
        ] {
            assert_eq!(text.parse::<Fingerprint>(), Ok(want), "{text}");
        }
    }

    #[test]
    fn other_digests_and_typos_are_refused_with_the_reason() {
        let sha1 = "SHA1 Fingerprint=A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D";
        let error = sha1.parse::<Fingerprint>().unwrap_err().to_string();
        assert!(error.contains("is not SHA-256"), "{error}");
        let error = "A9993E364706816ABA3E25717850C26C9CD0D89D"
            .parse::<Fingerprint>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("SHA-1"), "{error}");
        let error = ABC
            .replace("BA:78", "BA:7G")
            .parse::<Fingerprint>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("'G'"), "{error}");
        let error = ABC[3..].parse::<Fingerprint>().unwrap_err().to_string();
        assert!(error.contains("62 hex digits"), "{error}");
        assert!(error.contains("openssl x509"), "{error}");
    }
}
