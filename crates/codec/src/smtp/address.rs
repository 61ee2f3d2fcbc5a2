//! SMTP addresses (RFC 5321 §4.1.2 `Mailbox`, RFC 6531 §3.3 internationalised addresses).
//!
//! ```text
//! Mailbox        = Local-part "@" ( Domain / address-literal )
//! Local-part     = Dot-string / Quoted-string
//! Dot-string     = Atom *("."  Atom)
//! Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
//! Domain         = sub-domain *("." sub-domain)
//! sub-domain     = Let-dig [Ldh-str]
//! ```
//!
//! An [`Address`] is checked once, when it is built, so that a `MAIL FROM` or `RCPT TO` can never
//! carry a second command or an extra parameter (threat model #29, #31): CR, LF and NUL, `<` and
//! `>`, spaces outside quotes, a leading `-` (which tools that pass addresses to a sendmail-like
//! program would take for an option) and over-long parts are refused with a message saying what
//! is wrong. UTF-8 is accepted (RFC 6531), and [`Address::needs_smtputf8`] says when the session
//! must use the `SMTPUTF8` parameter — and refuse to send if the server does not offer it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::EncodeError;

const FIELD: &str = "address";

/// RFC 5321 §4.5.3.1.1: "The maximum total length of a user name or other local-part is 64
/// octets."
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: "The maximum total length of a domain name or number is 255 octets."
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: "The maximum total length of a reverse-path or forward-path is 256
/// octets (including the punctuation and element separators)": the address and its `<` `>`.
pub const MAX_PATH: usize = 256;

/// A mailbox address, `local-part@domain`, valid for `MAIL FROM` and `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    address: String,
    at: usize,
}

fn invalid(reason: &'static str) -> EncodeError {
    EncodeError::Invalid {
        field: FIELD,
        reason,
    }
}

/// `atext` (RFC 5322 §3.2.3) plus UTF-8 (RFC 6531 §3.3).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

impl Address {
    /// Parses and checks an address such as `alice@example.org` (no angle brackets).
    pub fn new(address: &str) -> Result<Self, EncodeError> {
        crate::core::text::check_line_safe(FIELD, address.as_bytes())?;
        if address.is_empty() {
            return Err(EncodeError::Empty { field: FIELD });
        }
        if address.starts_with('-') {
            return Err(invalid(
                "starts with '-', which a program could take for an option",
            ));
        }
        if address.contains(['<', '>']) {
            return Err(invalid("contains '<' or '>'; give the bare address"));
        }
        if let Some(c) = address.chars().find(|c| c.is_control()) {
            let position = address.find(c).unwrap_or(0);
            return Err(EncodeError::ForbiddenByte {
                field: FIELD,
                byte: address.as_bytes().get(position).copied().unwrap_or(0),
                position,
            });
        }
        let at = if address.starts_with('"') {
            let end = quoted_string_end(address)?;
            if address.as_bytes().get(end) != Some(&b'@') {
                return Err(match address.get(end..) {
                    Some("") => invalid("domain part is missing (no '@')"),
                    _ => invalid("text after the closing quote of the local part"),
                });
            }
            end
        } else {
            let at = address
                .find('@')
                .ok_or(invalid("domain part is missing (no '@')"))?;
            check_dot_string(&address[..at])?;
            at
        };
        let local = &address[..at];
        let domain = &address[at + 1..];
        if local.len() > MAX_LOCAL_PART {
            return Err(EncodeError::TooLong {
                field: "local part",
                len: local.len(),
                limit: MAX_LOCAL_PART,
            });
        }
        check_domain(domain)?;
        if address.len() + 2 > MAX_PATH {
            return Err(EncodeError::TooLong {
                field: "path (address with its angle brackets)",
                len: address.len() + 2,
                limit: MAX_PATH,
            });
        }
        Ok(Self {
            address: address.to_owned(),
            at,
        })
    }

    /// The whole address.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The part before the `@` (a quoted local part keeps its quotes).
    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    /// The part after the `@`: a domain or an address literal.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }

    /// True when the address has non-ASCII characters: it may only be sent with the `SMTPUTF8`
    /// parameter, to a server that offers it (RFC 6531 §3.4).
    pub fn needs_smtputf8(&self) -> bool {
        !self.address.is_ascii()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl std::str::FromStr for Address {
    type Err = EncodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE`; `qtextSMTP = %d32-33 / %d35-91 / %d93-126`
/// (and UTF-8, RFC 6531); `quoted-pairSMTP = %d92 %d32-126`. Returns the offset after the
/// closing quote.
fn quoted_string_end(address: &str) -> Result<usize, EncodeError> {
    let bytes = address.as_bytes();
    let mut i = 1;
    loop {
        match bytes.get(i) {
            None => return Err(invalid("the quoted local part has no closing quote")),
            Some(b'"') => break,
            Some(b'\\') => match bytes.get(i + 1) {
                Some(0x20..=0x7e) => i += 2,
                _ => {
                    return Err(invalid(
                        "a backslash in quotes must escape a printable character",
                    ))
                }
            },
            Some(_) => i += 1,
        }
    }
    if i == 1 {
        return Err(invalid("local part is empty"));
    }
    Ok(i + 1)
}

/// `Dot-string = Atom *("." Atom)`.
fn check_dot_string(local: &str) -> Result<(), EncodeError> {
    if local.is_empty() {
        return Err(invalid("local part is empty"));
    }
    if local.contains(' ') {
        return Err(invalid("contains a space outside quotes"));
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(invalid(
                "local part has an empty atom (a leading, trailing or double '.')",
            ));
        }
        if !atom.chars().all(is_atext) {
            return Err(invalid(
                "local part has a character that needs quotes, such as '\"', '(', ',', ':', ';', '@', '[' or '\\'",
            ));
        }
    }
    Ok(())
}

/// `Domain / address-literal`.
fn check_domain(domain: &str) -> Result<(), EncodeError> {
    if domain.is_empty() {
        return Err(invalid("domain part is empty"));
    }
    if domain.len() > MAX_DOMAIN {
        return Err(EncodeError::TooLong {
            field: "domain",
            len: domain.len(),
            limit: MAX_DOMAIN,
        });
    }
    if domain.starts_with('[') {
        return check_address_literal(domain);
    }
    check_domain_name(domain, "domain")
}

/// `Domain = sub-domain *("." sub-domain)`, `sub-domain = Let-dig [Ldh-str]` (or a U-label,
/// RFC 6531 §3.3); labels of at most 63 octets (RFC 1035 §2.3.4).
pub(crate) fn check_domain_name(domain: &str, field: &'static str) -> Result<(), EncodeError> {
    let bad = |reason| EncodeError::Invalid { field, reason };
    if domain.contains(' ') {
        return Err(bad("contains a space"));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(bad(
                "domain has an empty label (a leading, trailing or double '.')",
            ));
        }
        if label.len() > 63 {
            return Err(bad("a domain label is longer than 63 octets"));
        }
        let let_dig = |c: char| c.is_ascii_alphanumeric() || !c.is_ascii();
        if !label.chars().all(|c| let_dig(c) || c == '-') {
            return Err(bad("domain labels hold only letters, digits and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a domain label starts or ends with '-'"));
        }
    }
    Ok(())
}

/// `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal ) "]"`
/// (`General-address-literal` is not accepted: no standardised tag other than IPv6 exists).
pub(crate) fn check_address_literal(literal: &str) -> Result<(), EncodeError> {
    let inner = literal
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .ok_or(invalid(
            "an address literal is written [192.0.2.1] or [IPv6:2001:db8::1]",
        ))?;
    let ok = match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..].parse::<Ipv6Addr>().is_ok(),
        _ => inner.parse::<Ipv4Addr>().is_ok() && inner.split('.').all(|o| o.len() <= 3),
    };
    if !ok {
        return Err(invalid(
            "an address literal is written [192.0.2.1] or [IPv6:2001:db8::1]",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(address: &str) -> String {
        Address::new(address).unwrap_err().to_string()
    }

    #[test]
    fn accepts_valid_addresses() {
        for ok in [
            "alice@example.org",
            "first.last+tag@mail.example.co.uk",
            "!#$%&'*+-/=?^_`{|}~@example.org",
            "\"john doe\"@example.org",
            "\"a\\\"b\"@example.org",
            "\"a,b:c\"@example.org",
            "postmaster@[192.0.2.1]",
            "postmaster@[IPv6:2001:db8::1]",
            "x@localhost",
            "user@xn--bcher-kva.example",
            "a1@1example.org",
        ] {
            assert!(Address::new(ok).is_ok(), "{ok:?}: {:?}", Address::new(ok));
        }
        let a = Address::new("alice@example.org").unwrap();
        assert_eq!(a.local_part(), "alice");
        assert_eq!(a.domain(), "example.org");
        assert!(!a.needs_smtputf8());
        let q = Address::new("\"a@b\"@example.org").unwrap();
        assert_eq!(q.local_part(), "\"a@b\"");
        assert_eq!(q.domain(), "example.org");
    }

    #[test]
    fn utf8_needs_smtputf8() {
        for address in [
            "用户@例子.广告",
            "jürgen@example.de",
            "alice@bücher.example",
        ] {
            assert!(Address::new(address).unwrap().needs_smtputf8(), "{address}");
        }
    }

    #[test]
    fn refuses_injection() {
        // threat model #29.
        crate::assert_matches!(
            Address::new("a@b>\r\nRCPT TO:<x@evil>").unwrap_err(),
            EncodeError::ForbiddenByte {
                byte: b'\r',
                position: 4,
                ..
            }
        );
        assert_eq!(
            reason("a@b> SIZE=1"),
            "address is not valid: contains '<' or '>'; give the bare address"
        );
        assert_eq!(
            reason("<a@b>"),
            "address is not valid: contains '<' or '>'; give the bare address"
        );
        crate::assert_matches!(
            Address::new("a\0@b").unwrap_err(),
            EncodeError::ForbiddenByte { byte: 0, .. }
        );
        crate::assert_matches!(
            Address::new("a\t@b").unwrap_err(),
            EncodeError::ForbiddenByte { byte: b'\t', .. }
        );
        assert_eq!(
            reason("-oQ/tmp/x@example.org"),
            "address is not valid: starts with '-', which a program could take for an option"
        );
        assert_eq!(
            reason("a b@example.org"),
            "address is not valid: contains a space outside quotes"
        );
        assert_eq!(
            reason("a@example.org SIZE=1"),
            "domain is not valid: contains a space"
        );
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(reason(""), "address is empty");
        assert_eq!(
            reason("alice"),
            "address is not valid: domain part is missing (no '@')"
        );
        assert_eq!(
            reason("alice@"),
            "address is not valid: domain part is empty"
        );
        assert_eq!(
            reason("@example.org"),
            "address is not valid: local part is empty"
        );
        assert_eq!(
            reason("\"\"@example.org"),
            "address is not valid: local part is empty"
        );
        assert_eq!(
            reason("a..b@example.org"),
            "address is not valid: local part has an empty atom (a leading, trailing or double '.')"
        );
        assert!(reason("a@b@example.org").contains("domain labels hold only"));
        assert!(reason("a(b)@example.org").contains("needs quotes"));
        assert!(reason("\"abc@example.org").contains("no closing quote"));
        assert!(reason("\"a\"b@example.org").contains("after the closing quote"));
        assert!(reason("a@-example.org").contains("starts or ends with '-'"));
        assert!(reason("a@example..org").contains("empty label"));
        assert!(reason("a@example.org.").contains("empty label"));
        assert!(reason("a@[300.1.1.1]").contains("address literal"));
        assert!(reason("a@[IPv6:xyz]").contains("address literal"));
        assert!(reason("a@[192.0.2.1").contains("address literal"));
        assert!(reason("a@exa_mple.org").contains("domain labels hold only"));
    }

    #[test]
    fn enforces_lengths() {
        // RFC 5321 §4.5.3.1.
        let local64 = "a".repeat(64);
        assert!(Address::new(&format!("{local64}@example.org")).is_ok());
        assert_eq!(
            reason(&format!("a{local64}@example.org")),
            "local part is 65 bytes long; the limit is 64"
        );
        let label = "b".repeat(63);
        let domain = format!("{label}.{label}.{label}.{label}"); // 255
        assert_eq!(domain.len(), 255);
        assert_eq!(
            reason(&format!("a@{domain}x")),
            "domain is 256 bytes long; the limit is 255"
        );
        assert!(reason(&format!("a@{}.org", "c".repeat(64))).contains("longer than 63"));
        // A 255-octet domain is fine alone, but the path would exceed 256.
        assert!(reason(&format!("a@{domain}")).contains("the limit is 256"));
        let domain252 = format!("{label}.{label}.{label}.{}", "b".repeat(60));
        assert!(Address::new(&format!("a@{domain252}")).is_ok());
    }

    proptest! {
        /// Whatever the input, an accepted address holds no byte that could end or split the
        /// command line or the path.
        #[test]
        fn accepted_addresses_are_safe(input in "\\PC*|[\\x00-\\x7f]*") {
            if let Ok(address) = Address::new(&input) {
                prop_assert!(!address.as_str().contains(['\r', '\n', '\0', '<', '>']));
                prop_assert!(!address.as_str().starts_with('-'));
                prop_assert!(address.as_str().len() <= MAX_PATH - 2);
            }
        }
    }
}
