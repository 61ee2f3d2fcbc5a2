//! The service extensions a server lists in its 250 reply to EHLO (RFC 5321 §4.1.1.1).
//!
//! ```text
//! ehlo-ok-rsp = "250" SP Domain [ SP ehlo-greet ] CRLF
//!             / ( "250-" Domain [ SP ehlo-greet ] CRLF
//!                 *( "250-" ehlo-line CRLF )
//!                 "250" SP ehlo-line CRLF )
//! ehlo-line   = ehlo-keyword *( SP ehlo-param )
//! ```
//!
//! Typed: SIZE (RFC 1870), AUTH (RFC 4954), PIPELINING (RFC 2920), STARTTLS (RFC 3207),
//! 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), CHUNKING and BINARYMIME (RFC 3030), DSN (RFC 3461),
//! ENHANCEDSTATUSCODES (RFC 2034), REQUIRETLS (RFC 8689). Anything else is kept as
//! [`Extension::Other`], and the raw lines are always there, in order.
//!
//! Lenient where servers are: keywords in any case, runs of spaces between parameters, trailing
//! spaces, `SIZE` without a number, the pre-RFC `AUTH=LOGIN PLAIN` form and Yahoo's `8 BITMIME`.

use crate::smtp::reply::{Reply, ReplyCode};
use crate::DecodeError;

/// One `ehlo-line`, borrowed from [`Extensions`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Extension<'a> {
    /// `SIZE [n]`: the largest message accepted, in octets; `None` (no number, or 0) means the
    /// server announced no fixed limit (RFC 1870 §4).
    Size(Option<u64>),
    /// `AUTH mech...` (or the old `AUTH=mech...`): the SASL mechanisms offered, as sent.
    Auth(Vec<&'a [u8]>),
    /// `PIPELINING`: commands may be sent in groups (RFC 2920).
    Pipelining,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `8BITMIME` (RFC 6152).
    EightBitMime,
    /// `SMTPUTF8`: UTF-8 addresses and headers (RFC 6531).
    SmtpUtf8,
    /// `CHUNKING`: the BDAT command (RFC 3030).
    Chunking,
    /// `BINARYMIME` (RFC 3030).
    BinaryMime,
    /// `DSN`: delivery status notifications (RFC 3461).
    Dsn,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    EnhancedStatusCodes,
    /// `REQUIRETLS` (RFC 8689).
    RequireTls,
    /// Any other keyword, or a known one with parameters it should not have.
    Other {
        /// The keyword, as sent.
        keyword: &'a [u8],
        /// The parameters, as sent.
        params: Vec<&'a [u8]>,
    },
}

impl<'a> Extension<'a> {
    /// Parses one `ehlo-line` (the text after `250-`/`250 `). Never fails: what is not
    /// recognised is [`Extension::Other`].
    pub fn parse(line: &'a [u8]) -> Self {
        let (keyword, params) = Extension::split(line);
        let is = |name: &str| keyword.eq_ignore_ascii_case(name.as_bytes());
        let bare = params.is_empty();
        match () {
            _ if is("SIZE") => match params.as_slice() {
                [] => Extension::Size(None),
                [n] => match parse_u64(n) {
                    Some(0) => Extension::Size(None),
                    Some(n) => Extension::Size(Some(n)),
                    None => Extension::Other { keyword, params },
                },
                _ => Extension::Other { keyword, params },
            },
            _ if is("AUTH") => Extension::Auth(params),
            _ if is("PIPELINING") && bare => Extension::Pipelining,
            _ if is("STARTTLS") && bare => Extension::StartTls,
            _ if is("8BITMIME") && bare => Extension::EightBitMime,
            // Yahoo: `250-8 BITMIME`.
            _ if is("8") && params.len() == 1 && params[0].eq_ignore_ascii_case(b"BITMIME") => {
                Extension::EightBitMime
            }
            _ if is("SMTPUTF8") && bare => Extension::SmtpUtf8,
            _ if is("CHUNKING") && bare => Extension::Chunking,
            _ if is("BINARYMIME") && bare => Extension::BinaryMime,
            _ if is("DSN") && bare => Extension::Dsn,
            _ if is("ENHANCEDSTATUSCODES") && bare => Extension::EnhancedStatusCodes,
            _ if is("REQUIRETLS") && bare => Extension::RequireTls,
            _ => Extension::Other { keyword, params },
        }
    }
}

impl<'a> Extension<'a> {
    /// Splits one `ehlo-line` into its keyword and parameters, as sent. Lenient: any keyword
    /// (vendor ones such as `X-EXPS`, `X_LINK2STATE`, `XEXCH50`), runs of spaces or tabs, and
    /// the pre-RFC `AUTH=LOGIN PLAIN`, split as `AUTH` with `LOGIN`, `PLAIN`.
    pub fn split(line: &'a [u8]) -> (&'a [u8], Vec<&'a [u8]>) {
        let mut words = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|w| !w.is_empty());
        let first = words.next().unwrap_or_default();
        let mut params: Vec<&'a [u8]> = words.collect();
        // Exchange, older Outlook and Postfix (`broken_sasl_auth_clients`) send
        // `AUTH=LOGIN PLAIN` for clients written before RFC 2554 was final.
        let keyword = match first.iter().position(|&b| b == b'=') {
            Some(eq) if first[..eq].eq_ignore_ascii_case(b"AUTH") => {
                if eq + 1 < first.len() {
                    params.insert(0, &first[eq + 1..]);
                }
                &first[..eq]
            }
            _ => first,
        };
        (keyword, params)
    }
}

/// Decimal digits only, overflow-checked.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The server's answer to EHLO: the greeting line and the extensions, owned (they are kept for
/// the whole session, and must be forgotten after STARTTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    /// Every line's text, in order; the first is `Domain [SP ehlo-greet]`.
    lines: Vec<Vec<u8>>,
}

impl Extensions {
    /// Takes the extensions from a reply to EHLO. Only a 250 reply lists extensions; any other
    /// code is [`DecodeError::Invalid`] (the caller decides whether to fall back to HELO).
    pub fn from_reply(reply: &Reply<'_>) -> Result<Self, DecodeError> {
        if reply.code != ReplyCode::OK {
            return Err(DecodeError::Invalid {
                offset: 0,
                expected: "a 250 reply to EHLO",
            });
        }
        Ok(Self {
            lines: reply.lines.iter().map(|line| line.to_vec()).collect(),
        })
    }

    /// The raw text of every line, in order, the greeting line first.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines.iter().map(Vec::as_slice)
    }

    /// The server's name: the first word of the first line.
    pub fn domain(&self) -> &[u8] {
        self.lines
            .first()
            .and_then(|line| line.split(|&b| b == b' ').find(|w| !w.is_empty()))
            .unwrap_or_default()
    }

    /// The extensions (every line after the first), parsed.
    pub fn iter(&self) -> impl Iterator<Item = Extension<'_>> + '_ {
        self.lines.iter().skip(1).map(|line| Extension::parse(line))
    }

    /// True if the keyword is listed (case-insensitive), whatever its parameters.
    pub fn has(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|line| {
            let word = line
                .split(|&b| b == b' ' || b == b'=')
                .find(|w| !w.is_empty())
                .unwrap_or_default();
            word.eq_ignore_ascii_case(keyword.as_bytes())
        })
    }

    /// `SIZE` was announced: `Some(limit)`, where `None` inside means no fixed limit.
    pub fn size(&self) -> Option<Option<u64>> {
        self.iter().find_map(|ext| match ext {
            Extension::Size(limit) => Some(limit),
            _ => None,
        })
    }

    /// Every SASL mechanism offered, over all `AUTH` and `AUTH=` lines, first occurrence kept,
    /// duplicates (in any case) dropped.
    pub fn auth_mechanisms(&self) -> Vec<&[u8]> {
        let mut mechanisms: Vec<&[u8]> = Vec::new();
        for ext in self.iter() {
            if let Extension::Auth(list) = ext {
                for mech in list {
                    if !mechanisms.iter().any(|m| m.eq_ignore_ascii_case(mech)) {
                        mechanisms.push(mech);
                    }
                }
            }
        }
        mechanisms
    }

    /// True if the mechanism (case-insensitive) is among [`Extensions::auth_mechanisms`].
    pub fn supports_auth(&self, mechanism: &str) -> bool {
        self.auth_mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism.as_bytes()))
    }

    fn any(&self, wanted: Extension<'static>) -> bool {
        self.iter().any(|ext| ext == wanted)
    }

    /// `STARTTLS` is offered.
    pub fn starttls(&self) -> bool {
        self.any(Extension::StartTls)
    }

    /// `PIPELINING` is offered.
    pub fn pipelining(&self) -> bool {
        self.any(Extension::Pipelining)
    }

    /// `8BITMIME` is offered.
    pub fn eight_bit_mime(&self) -> bool {
        self.any(Extension::EightBitMime)
    }

    /// `SMTPUTF8` is offered.
    pub fn smtp_utf8(&self) -> bool {
        self.any(Extension::SmtpUtf8)
    }

    /// `CHUNKING` is offered.
    pub fn chunking(&self) -> bool {
        self.any(Extension::Chunking)
    }

    /// `BINARYMIME` is offered.
    pub fn binary_mime(&self) -> bool {
        self.any(Extension::BinaryMime)
    }

    /// `DSN` is offered.
    pub fn dsn(&self) -> bool {
        self.any(Extension::Dsn)
    }

    /// `ENHANCEDSTATUSCODES` is offered.
    pub fn enhanced_status_codes(&self) -> bool {
        self.any(Extension::EnhancedStatusCodes)
    }

    /// `REQUIRETLS` is offered.
    pub fn require_tls(&self) -> bool {
        self.any(Extension::RequireTls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::parse_reply;
    use crate::Limits;

    fn ehlo(wire: &[u8]) -> Extensions {
        let (n, reply) = parse_reply(wire, &Limits::smtp()).unwrap();
        assert_eq!(n, wire.len());
        Extensions::from_reply(&reply).unwrap()
    }

    #[test]
    fn gmail() {
        let e = ehlo(
            b"250-smtp.gmail.com at your service, [1.2.3.4]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n\
250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
        );
        assert_eq!(e.domain(), b"smtp.gmail.com");
        assert_eq!(e.size(), Some(Some(35_882_577)));
        assert!(e.eight_bit_mime() && e.starttls() && e.enhanced_status_codes());
        assert!(e.pipelining() && e.chunking() && e.smtp_utf8());
        assert!(!e.dsn() && !e.binary_mime() && !e.require_tls());
        assert!(e.auth_mechanisms().is_empty());
        assert_eq!(e.lines().count(), 8);
    }

    #[test]
    fn gmail_after_starttls() {
        let e = ehlo(b"250-smtp.gmail.com at your service, [1.2.3.4]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n\
250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n");
        assert!(e.supports_auth("xoauth2") && e.supports_auth("OAUTHBEARER"));
        assert!(!e.starttls());
    }

    #[test]
    fn outlook() {
        let e = ehlo(
            b"250-BN9PR03CA0123.outlook.office365.com Hello [1.2.3.4]\r\n250-SIZE 157286400\r\n\
250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n\
250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
        );
        assert_eq!(e.domain(), b"BN9PR03CA0123.outlook.office365.com");
        assert_eq!(e.auth_mechanisms(), [&b"LOGIN"[..], b"XOAUTH2"]);
        assert!(e.dsn() && e.binary_mime());
    }

    #[test]
    fn exchange_old_auth_equals_form() {
        // Exchange 2003-era and older Outlook-compatible servers.
        let e = ehlo(
            b"250-mail.example.local Hello [10.0.0.5]\r\n250-AUTH GSSAPI NTLM LOGIN\r\n\
250-AUTH=LOGIN\r\n250-X-EXPS GSSAPI NTLM\r\n250-8BITMIME\r\n250-XEXCH50\r\n250 XSHADOW\r\n",
        );
        assert_eq!(e.auth_mechanisms(), [&b"GSSAPI"[..], b"NTLM", b"LOGIN"]);
        assert!(e.has("xexch50"));
        assert!(e.iter().any(|x| x
            == Extension::Other {
                keyword: b"X-EXPS",
                params: vec![b"GSSAPI", b"NTLM"]
            }));
    }

    #[test]
    fn postfix_with_broken_sasl_auth_clients() {
        let e = ehlo(b"250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n\
250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n\
250-SMTPUTF8\r\n250 CHUNKING\r\n");
        assert_eq!(e.auth_mechanisms(), [&b"PLAIN"[..], b"LOGIN"]);
        assert_eq!(e.size(), Some(Some(10_240_000)));
        assert_eq!(e.domain(), b"mail.example.com");
    }

    #[test]
    fn yahoo_eight_space_bitmime() {
        // smtp.mail.yahoo.com, as logged in zetacomponents/Mail#37.
        let e = ehlo(
            b"250-smtp.mail.yahoo.com\r\n250-PIPELINING\r\n250-SIZE 41697280\r\n250-8 BITMIME\r\n\
250 AUTH PLAIN LOGIN XOAUTH2 XYMCOOKIE\r\n",
        );
        assert!(e.eight_bit_mime());
        assert!(e.supports_auth("XYMCOOKIE"));
    }

    #[test]
    fn icloud() {
        let e = ehlo(
            b"250-smtp.mail.me.com\r\n250-PIPELINING\r\n250-SIZE 28311552\r\n250-ETRN\r\n\
250-AUTH LOGIN PLAIN ATOKEN ATOKEN2 WSTOKEN WETOKEN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
250-DSN\r\n250 STARTTLS\r\n",
        );
        assert!(e.supports_auth("PLAIN") && e.starttls() && e.dsn());
        assert_eq!(e.size(), Some(Some(28_311_552)));
    }

    #[test]
    fn exim() {
        let e = ehlo(
            b"250-mail.example.org Hello client.example.net [192.0.2.1]\r\n250-SIZE 52428800\r\n\
250-8BITMIME\r\n250-PIPELINING\r\n250-PIPE_CONNECT\r\n250-AUTH PLAIN LOGIN\r\n250-CHUNKING\r\n\
250-STARTTLS\r\n250-PRDR\r\n250 HELP\r\n",
        );
        assert!(e.pipelining() && e.has("PIPE_CONNECT") && e.has("help"));
    }

    #[test]
    fn qq_mail() {
        let e = ehlo(b"250-newxmesmtplogicsvrsza29-0.qq.com\r\n250-PIPELINING\r\n250-SIZE 73400320\r\n\
250-STARTTLS\r\n250-AUTH LOGIN PLAIN XOAUTH XOAUTH2\r\n250-AUTH=LOGIN\r\n250-MAILCOMPRESS\r\n250 8BITMIME\r\n");
        assert_eq!(
            e.auth_mechanisms(),
            [&b"LOGIN"[..], b"PLAIN", b"XOAUTH", b"XOAUTH2"]
        );
    }

    #[test]
    fn netease_163_coremail() {
        let e = ehlo(b"250-mail\r\n250-PIPELINING\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250-AUTH=LOGIN PLAIN XOAUTH2\r\n\
250-coremail 1Uxr2xKj7kG0xkI17xGrU7I0s8FY2U3Uj8Cz28x1UUUUU7Ic2I0Y2UFp6nZ9UCa0xDrUUUUj\r\n\
250-STARTTLS\r\n250-ID\r\n250 8BITMIME\r\n");
        assert_eq!(e.domain(), b"mail");
        assert_eq!(e.auth_mechanisms().len(), 3);
        assert!(e.has("coremail") && e.starttls());
    }

    #[test]
    fn lenient_spacing_case_and_bare_size() {
        // Double spaces and trailing spaces seen from several servers.
        let e = ehlo(b"250-host\r\n250-auth  LOGIN   PLAIN \r\n250-size\r\n250 starttls \r\n");
        assert_eq!(e.auth_mechanisms(), [&b"LOGIN"[..], b"PLAIN"]);
        assert_eq!(e.size(), Some(None));
        assert!(e.starttls());
        assert_eq!(Extension::parse(b"SIZE 0"), Extension::Size(None));
    }

    #[test]
    fn odd_parameters_are_kept_raw() {
        assert_eq!(
            Extension::parse(b"SIZE 99999999999999999999999"),
            Extension::Other {
                keyword: b"SIZE",
                params: vec![b"99999999999999999999999"]
            }
        );
        assert_eq!(
            Extension::parse(b"STARTTLS now"),
            Extension::Other {
                keyword: b"STARTTLS",
                params: vec![b"now"]
            }
        );
        assert_eq!(
            Extension::parse(b"X-FOO=bar"),
            Extension::Other {
                keyword: b"X-FOO=bar",
                params: vec![]
            }
        );
    }

    #[test]
    fn single_line_reply_has_no_extensions() {
        let e = ehlo(b"250 tiny.example.com\r\n");
        assert_eq!(e.domain(), b"tiny.example.com");
        assert_eq!(e.iter().count(), 0);
    }

    #[test]
    fn only_250_lists_extensions() {
        let (_, reply) =
            parse_reply(b"502 5.5.1 EHLO not implemented\r\n", &Limits::smtp()).unwrap();
        assert!(Extensions::from_reply(&reply).is_err());
    }
}
