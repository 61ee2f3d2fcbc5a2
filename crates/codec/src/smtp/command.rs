//! SMTP command encoders (RFC 5321 §4.1, RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 1870 SIZE,
//! RFC 6152 8BITMIME, RFC 3030 CHUNKING/BINARYMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN).
//!
//! Every command is one line, built only from checked values: an [`Address`] for the paths, a
//! [`ClientId`] for EHLO/HELO, typed parameters. A line longer than RFC 5321 allows is refused
//! with [`EncodeError::TooLong`] before anything is sent (threat model #31):
//!
//! > RFC 5321 §4.5.3.1.4: "The maximum total length of a command line including the command word
//! > and the `<CRLF>` is 512 octets. SMTP extensions may be used to increase this limit."
//!
//! The extensions used here raise it by what their parameters may add: SIZE by 26 (RFC 1870 §3),
//! SMTPUTF8 by 10 (RFC 6531 §3.1); the DSN parameters (RFC 3461) are counted against their own
//! caps instead (ENVID 100 characters, ORCPT 500), not against the 512.
//!
//! Message content is not encoded here: after `DATA` it goes through the dot-stuffer in
//! [`crate::core::dot`]; after `BDAT n` it is sent as is.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub use super::address::Address;
use super::address::{check_address_literal, check_domain_name};
pub use crate::core::secret::Secret;
use crate::core::secret::{check_mechanism, push_initial_response, response_line, CANCEL_LINE};
use crate::EncodeError;

/// RFC 5321 §4.5.3.1.4: 512 octets, CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 3461 §4.4: "the ENVID ... MUST NOT be longer than 100 characters".
pub const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: the ORCPT parameter's value is at most 500 characters.
pub const MAX_ORCPT: usize = 500;

/// What the client calls itself in EHLO / HELO: its domain name or an address literal. Never a
/// user name or a file name (threat model #32): the session passes the configured host name or
/// the local IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// A fully qualified domain name, ASCII (A-labels).
    Domain(String),
    /// `[192.0.2.1]`
    Ipv4(Ipv4Addr),
    /// `[IPv6:2001:db8::1]`
    Ipv6(Ipv6Addr),
}

impl ClientId {
    /// A domain name: letters, digits and `-` in dot-separated labels, ASCII only.
    pub fn domain(name: &str) -> Result<Self, EncodeError> {
        const FIELD: &str = "EHLO domain";
        crate::core::text::check_line_safe(FIELD, name.as_bytes())?;
        if name.is_empty() {
            return Err(EncodeError::Empty { field: FIELD });
        }
        if name.len() > 255 {
            return Err(EncodeError::TooLong {
                field: FIELD,
                len: name.len(),
                limit: 255,
            });
        }
        if !name.is_ascii() {
            return Err(EncodeError::Invalid {
                field: FIELD,
                reason: "use the ASCII (xn--) form of an internationalised domain name",
            });
        }
        check_domain_name(name, FIELD)?;
        Ok(Self::Domain(name.to_owned()))
    }

    /// A domain, or an address literal written `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
    pub fn parse(value: &str) -> Result<Self, EncodeError> {
        if !value.starts_with('[') {
            return Self::domain(value);
        }
        check_address_literal(value)?;
        let inner = &value[1..value.len() - 1];
        match inner.get(5..) {
            Some(v6) if inner[..5].eq_ignore_ascii_case("IPv6:") => v6.parse().map(ClientId::Ipv6),
            _ => inner.parse().map(ClientId::Ipv4),
        }
        .map_err(|_| EncodeError::Invalid {
            field: "EHLO domain",
            reason: "an address literal is written [192.0.2.1] or [IPv6:2001:db8::1]",
        })
    }
}

impl From<std::net::IpAddr> for ClientId {
    fn from(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(v4) => Self::Ipv4(v4),
            std::net::IpAddr::V6(v6) => Self::Ipv6(v6),
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => f.write_str(d),
            Self::Ipv4(ip) => write!(f, "[{ip}]"),
            Self::Ipv6(ip) => write!(f, "[IPv6:{ip}]"),
        }
    }
}

/// `BODY=` (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `BODY=7BIT`
    SevenBit,
    /// `BODY=8BITMIME` (needs 8BITMIME)
    EightBitMime,
    /// `BODY=BINARYMIME` (needs BINARYMIME and CHUNKING; the content must go with BDAT)
    BinaryMime,
}

/// `RET=` (RFC 3461 §4.3): what a failure notice returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// `RET=FULL`
    Full,
    /// `RET=HDRS`
    Headers,
}

/// MAIL FROM parameters. Each needs the matching EHLO keyword; the session checks that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParameters {
    /// `SIZE=n` (RFC 1870): the message size in octets.
    pub size: Option<u64>,
    /// `BODY=`
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531): required when an address is not ASCII.
    pub smtputf8: bool,
    /// `RET=` (DSN)
    pub ret: Option<Ret>,
    /// `ENVID=` (DSN): printable ASCII, at most 100 characters; sent as xtext.
    pub envid: Option<String>,
}

/// `NOTIFY=` (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// `NOTIFY=NEVER`
    Never,
    /// `NOTIFY=SUCCESS,FAILURE,DELAY` (the ones set; at least one).
    On {
        /// On delivery.
        success: bool,
        /// On failure.
        failure: bool,
        /// On delay.
        delay: bool,
    },
}

/// RCPT TO parameters (DSN).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParameters {
    /// `NOTIFY=`
    pub notify: Option<Notify>,
    /// `ORCPT=rfc822;addr` (or `utf-8;addr`, RFC 6533): the original recipient.
    pub orcpt: Option<Address>,
}

/// A client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO client-id`
    Ehlo(ClientId),
    /// `HELO domain` (no address literal: RFC 5321 §4.1.1.1 `helo = "HELO" SP Domain`)
    Helo(ClientId),
    /// `STARTTLS`
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954): the response is base64-encoded here, an
    /// empty one sent as `=`.
    Auth {
        /// The SASL mechanism.
        mechanism: String,
        /// The initial response, raw (not base64).
        initial_response: Option<Secret>,
    },
    /// `MAIL FROM:<reverse-path> [parameters]`; `None` is the null path `<>` (bounces).
    MailFrom {
        /// The sender, or `None` for `<>`.
        reverse_path: Option<Address>,
        /// SIZE, BODY, SMTPUTF8, RET, ENVID.
        parameters: MailParameters,
    },
    /// `RCPT TO:<forward-path> [parameters]`
    RcptTo {
        /// The recipient.
        forward_path: Address,
        /// NOTIFY, ORCPT.
        parameters: RcptParameters,
    },
    /// `DATA`
    Data,
    /// `BDAT size [LAST]` (RFC 3030); the `size` octets follow the line as they are.
    Bdat {
        /// Octets in this chunk.
        size: u64,
        /// The last chunk.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
}

impl Command {
    /// The command word, for traces and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ehlo(_) => "EHLO",
            Self::Helo(_) => "HELO",
            Self::StartTls => "STARTTLS",
            Self::Auth { .. } => "AUTH",
            Self::MailFrom { .. } => "MAIL",
            Self::RcptTo { .. } => "RCPT",
            Self::Data => "DATA",
            Self::Bdat { .. } => "BDAT",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
        }
    }

    /// True when the line carries a credential: a trace must redact it.
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Self::Auth { .. })
    }

    /// True when an address in the command is not ASCII: the transaction needs SMTPUTF8, and
    /// must not be attempted with a server that lacks it (RFC 6531 §3.4).
    pub fn needs_smtputf8(&self) -> bool {
        match self {
            Self::MailFrom { reverse_path, .. } => {
                reverse_path.as_ref().is_some_and(Address::needs_smtputf8)
            }
            Self::RcptTo {
                forward_path,
                parameters,
            } => {
                forward_path.needs_smtputf8()
                    || parameters
                        .orcpt
                        .as_ref()
                        .is_some_and(Address::needs_smtputf8)
            }
            _ => false,
        }
    }

    /// Encodes the command line, CRLF included. On error nothing is produced.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut line = String::with_capacity(64);
        let mut limit = MAX_COMMAND_LINE;
        let mut exempt = 0;
        match self {
            Self::Ehlo(id) => line.push_str(&format!("EHLO {id}")),
            Self::Helo(id) => {
                if !matches!(id, ClientId::Domain(_)) {
                    return Err(EncodeError::Invalid {
                        field: "HELO domain",
                        reason:
                            "HELO takes a domain name, not an address literal (RFC 5321 §4.1.1.1)",
                    });
                }
                line.push_str(&format!("HELO {id}"));
            }
            Self::StartTls => line.push_str("STARTTLS"),
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                check_mechanism(mechanism)?;
                let mut out = format!("AUTH {mechanism}").into_bytes();
                if let Some(response) = initial_response {
                    out.push(b' ');
                    push_initial_response(&mut out, response.expose());
                }
                // RFC 4954 §4: "If use of the initial response argument would cause the AUTH
                // command to exceed this length, the client MUST NOT use the initial response
                // parameter" — TooLong tells the session to send AUTH without it.
                return finish(out, MAX_COMMAND_LINE, 0);
            }
            Self::MailFrom {
                reverse_path,
                parameters,
            } => {
                match reverse_path {
                    Some(address) => {
                        if address.needs_smtputf8() && !parameters.smtputf8 {
                            return Err(EncodeError::Invalid {
                                field: "address",
                                reason: "a non-ASCII address needs the SMTPUTF8 parameter, and a server that offers it",
                            });
                        }
                        line.push_str(&format!("MAIL FROM:<{address}>"));
                    }
                    None => line.push_str("MAIL FROM:<>"),
                }
                if let Some(size) = parameters.size {
                    // RFC 1870 §3 (5): "increased by 26 characters".
                    limit += 26;
                    line.push_str(&format!(" SIZE={size}"));
                }
                if let Some(body) = parameters.body {
                    line.push_str(match body {
                        Body::SevenBit => " BODY=7BIT",
                        Body::EightBitMime => " BODY=8BITMIME",
                        Body::BinaryMime => " BODY=BINARYMIME",
                    });
                }
                if parameters.smtputf8 {
                    // RFC 6531 §3.1 (5): "increased by 10 characters".
                    limit += 10;
                    line.push_str(" SMTPUTF8");
                }
                if let Some(ret) = parameters.ret {
                    let ret = match ret {
                        Ret::Full => " RET=FULL",
                        Ret::Headers => " RET=HDRS",
                    };
                    exempt += ret.len();
                    line.push_str(ret);
                }
                if let Some(envid) = &parameters.envid {
                    let envid = envid_parameter(envid)?;
                    exempt += envid.len();
                    line.push_str(&envid);
                }
            }
            Self::RcptTo {
                forward_path,
                parameters,
            } => {
                line.push_str(&format!("RCPT TO:<{forward_path}>"));
                if let Some(notify) = parameters.notify {
                    let notify = notify_parameter(notify)?;
                    exempt += notify.len();
                    line.push_str(&notify);
                }
                if let Some(orcpt) = &parameters.orcpt {
                    let orcpt = orcpt_parameter(orcpt)?;
                    exempt += orcpt.len();
                    line.push_str(&orcpt);
                }
                if self.needs_smtputf8() {
                    // The SMTPUTF8 of the MAIL command covers the RCPT lines too.
                    limit += 10;
                }
            }
            Self::Data => line.push_str("DATA"),
            Self::Bdat { size, last } => {
                line.push_str(&format!("BDAT {size}"));
                if *last {
                    line.push_str(" LAST");
                }
            }
            Self::Rset => line.push_str("RSET"),
            Self::Noop => line.push_str("NOOP"),
            Self::Quit => line.push_str("QUIT"),
        }
        finish(line.into_bytes(), limit, exempt)
    }
}

/// Adds CRLF after checking, once more, that no value slipped a line break in, and the length.
fn finish(mut line: Vec<u8>, limit: usize, exempt: usize) -> Result<Vec<u8>, EncodeError> {
    crate::core::text::check_line_safe("command line", &line)?;
    line.extend_from_slice(b"\r\n");
    if line.len().saturating_sub(exempt) > limit {
        return Err(EncodeError::TooLong {
            field: "command line",
            len: line.len(),
            limit: limit + exempt,
        });
    }
    Ok(line)
}

/// `xtext` (RFC 3461 §4): `!`..`~` except `+` and `=` as is, every other octet `+XX`.
fn xtext(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if (0x21..=0x7e).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

fn envid_parameter(envid: &str) -> Result<String, EncodeError> {
    const FIELD: &str = "ENVID";
    crate::core::text::check_line_safe(FIELD, envid.as_bytes())?;
    if envid.is_empty() {
        return Err(EncodeError::Empty { field: FIELD });
    }
    if envid.len() > MAX_ENVID {
        return Err(EncodeError::TooLong {
            field: FIELD,
            len: envid.len(),
            limit: MAX_ENVID,
        });
    }
    if !envid.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(EncodeError::Invalid {
            field: FIELD,
            reason: "printable US-ASCII only (RFC 3461 §4.4)",
        });
    }
    Ok(format!(" ENVID={}", xtext(envid.as_bytes())))
}

fn notify_parameter(notify: Notify) -> Result<String, EncodeError> {
    match notify {
        Notify::Never => Ok(" NOTIFY=NEVER".to_owned()),
        Notify::On {
            success,
            failure,
            delay,
        } => {
            let mut on = Vec::new();
            for (set, name) in [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")] {
                if set {
                    on.push(name);
                }
            }
            if on.is_empty() {
                return Err(EncodeError::Empty { field: "NOTIFY" });
            }
            Ok(format!(" NOTIFY={}", on.join(",")))
        }
    }
}

/// `ORCPT=rfc822;xtext` for an ASCII address; `ORCPT=utf-8;utf-8-addr-xtext` (RFC 6533 §3) for
/// one that is not: `\x{HEX}` for `+`, `=`, `\` and controls, UTF-8 kept.
fn orcpt_parameter(address: &Address) -> Result<String, EncodeError> {
    let value = if address.needs_smtputf8() {
        let mut out = String::from("utf-8;");
        for c in address.as_str().chars() {
            if c.is_ascii()
                && ((c as u32) < 0x21 || c == '+' || c == '=' || c == '\\' || c == '\x7f')
            {
                out.push_str(&format!("\\x{{{:X}}}", c as u32));
            } else {
                out.push(c);
            }
        }
        out
    } else {
        format!("rfc822;{}", xtext(address.as_str().as_bytes()))
    };
    if value.len() > MAX_ORCPT {
        return Err(EncodeError::TooLong {
            field: "ORCPT",
            len: value.len(),
            limit: MAX_ORCPT,
        });
    }
    Ok(format!(" ORCPT={value}"))
}

/// A SASL continuation response (RFC 4954 §4): base64 and CRLF; an empty payload is an empty
/// line.
pub fn sasl_response(payload: &[u8]) -> Vec<u8> {
    response_line(payload)
}

/// `*` CRLF: cancels an AUTH exchange (the server answers 501).
pub fn sasl_cancel() -> &'static [u8] {
    CANCEL_LINE
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn address(a: &str) -> Address {
        Address::new(a).unwrap()
    }

    fn text(command: Command) -> String {
        String::from_utf8(command.encode().unwrap()).unwrap()
    }

    fn mail(from: Option<&str>, parameters: MailParameters) -> Command {
        Command::MailFrom {
            reverse_path: from.map(address),
            parameters,
        }
    }

    fn rcpt(to: &str, parameters: RcptParameters) -> Command {
        Command::RcptTo {
            forward_path: address(to),
            parameters,
        }
    }

    #[test]
    fn simple_commands() {
        assert_eq!(text(Command::StartTls), "STARTTLS\r\n");
        assert_eq!(text(Command::Data), "DATA\r\n");
        assert_eq!(text(Command::Rset), "RSET\r\n");
        assert_eq!(text(Command::Noop), "NOOP\r\n");
        assert_eq!(text(Command::Quit), "QUIT\r\n");
        assert_eq!(
            text(Command::Bdat {
                size: 86,
                last: false
            }),
            "BDAT 86\r\n"
        );
        assert_eq!(
            text(Command::Bdat {
                size: 0,
                last: true
            }),
            "BDAT 0 LAST\r\n"
        );
    }

    #[test]
    fn ehlo_and_helo() {
        let ehlo = |id: &str| text(Command::Ehlo(ClientId::parse(id).unwrap()));
        assert_eq!(ehlo("client.example.org"), "EHLO client.example.org\r\n");
        assert_eq!(ehlo("[192.0.2.1]"), "EHLO [192.0.2.1]\r\n");
        assert_eq!(ehlo("[IPv6:2001:db8::1]"), "EHLO [IPv6:2001:db8::1]\r\n");
        assert_eq!(
            text(Command::Ehlo(
                "::1".parse::<std::net::IpAddr>().unwrap().into()
            )),
            "EHLO [IPv6:::1]\r\n"
        );
        assert_eq!(
            text(Command::Helo(ClientId::domain("localhost").unwrap())),
            "HELO localhost\r\n"
        );
        assert!(Command::Helo(ClientId::Ipv4(Ipv4Addr::LOCALHOST))
            .encode()
            .is_err());
        // threat model #32: never a path or a user name.
        for bad in [
            "mail.txt/../x",
            "/home/alice/mail.txt",
            "alice@example.org",
            "a b",
            "host\r\nMAIL FROM:<x@evil>",
            "",
            "bücher.example",
            "-host",
            "[1.2.3]",
            "[IPv6:zz]",
        ] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn auth() {
        let auth = |mechanism: &str, ir: Option<&[u8]>| Command::Auth {
            mechanism: mechanism.to_owned(),
            initial_response: ir.map(Secret::new),
        };
        assert_eq!(text(auth("LOGIN", None)), "AUTH LOGIN\r\n");
        assert_eq!(
            text(auth("PLAIN", Some(b"\0tim\0tanstaaftanstaaf"))),
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
        // RFC 4954 §4: an empty initial response is "=".
        assert_eq!(text(auth("EXTERNAL", Some(b""))), "AUTH EXTERNAL =\r\n");
        // A long XOAUTH2 token does not fit in 512 octets: the session must go without it.
        crate::assert_matches!(
            auth("XOAUTH2", Some(&[b'x'; 400])).encode(),
            Err(EncodeError::TooLong { limit: 512, .. })
        );
        assert!(auth("PLAIN\r\nMAIL FROM:<x@evil>", None).encode().is_err());
        assert_eq!(sasl_response(b"tim"), b"dGlt\r\n");
        assert_eq!(sasl_cancel(), b"*\r\n");
        assert!(auth("PLAIN", None).is_sensitive());
    }

    #[test]
    fn mail_from() {
        assert_eq!(
            text(mail(Some("alice@example.org"), MailParameters::default())),
            "MAIL FROM:<alice@example.org>\r\n"
        );
        assert_eq!(
            text(mail(None, MailParameters::default())),
            "MAIL FROM:<>\r\n"
        );
        assert_eq!(
            text(mail(
                Some("alice@example.org"),
                MailParameters {
                    size: Some(1_000_000),
                    body: Some(Body::EightBitMime),
                    smtputf8: true,
                    ret: Some(Ret::Headers),
                    envid: Some("QQ314159 a+b=c".into()),
                }
            )),
            "MAIL FROM:<alice@example.org> SIZE=1000000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159+20a+2Bb+3Dc\r\n"
        );
        assert_eq!(
            text(mail(
                None,
                MailParameters {
                    body: Some(Body::BinaryMime),
                    ret: Some(Ret::Full),
                    ..Default::default()
                }
            )),
            "MAIL FROM:<> BODY=BINARYMIME RET=FULL\r\n"
        );
        assert_eq!(
            text(mail(
                None,
                MailParameters {
                    body: Some(Body::SevenBit),
                    ..Default::default()
                }
            )),
            "MAIL FROM:<> BODY=7BIT\r\n"
        );
        for bad in ["x\r\nRCPT TO:<y@evil>", "", &"e".repeat(101), "é"] {
            assert!(mail(
                None,
                MailParameters {
                    envid: Some(bad.into()),
                    ..Default::default()
                }
            )
            .encode()
            .is_err());
        }
    }

    #[test]
    fn utf8_addresses_need_smtputf8() {
        let from = mail(Some("jürgen@example.de"), MailParameters::default());
        assert!(from.needs_smtputf8());
        crate::assert_matches!(
            from.encode(),
            Err(EncodeError::Invalid {
                field: "address",
                ..
            })
        );
        assert_eq!(
            text(mail(
                Some("jürgen@example.de"),
                MailParameters {
                    smtputf8: true,
                    ..Default::default()
                }
            )),
            "MAIL FROM:<jürgen@example.de> SMTPUTF8\r\n"
        );
        let to = rcpt("用户@例子.广告", RcptParameters::default());
        assert!(to.needs_smtputf8());
        assert_eq!(text(to), "RCPT TO:<用户@例子.广告>\r\n");
    }

    #[test]
    fn rcpt_to() {
        assert_eq!(
            text(rcpt("bob@example.org", RcptParameters::default())),
            "RCPT TO:<bob@example.org>\r\n"
        );
        assert_eq!(
            text(rcpt(
                "bob@example.org",
                RcptParameters {
                    notify: Some(Notify::On {
                        success: true,
                        failure: true,
                        delay: false
                    }),
                    orcpt: Some(address("Bob+list=x@example.org")),
                }
            )),
            "RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Blist+3Dx@example.org\r\n"
        );
        assert_eq!(
            text(rcpt(
                "bob@example.org",
                RcptParameters {
                    notify: Some(Notify::Never),
                    orcpt: Some(address("jürgen+x@example.de")),
                }
            )),
            "RCPT TO:<bob@example.org> NOTIFY=NEVER ORCPT=utf-8;jürgen\\x{2B}x@example.de\r\n"
        );
        assert!(rcpt(
            "bob@example.org",
            RcptParameters {
                notify: Some(Notify::On {
                    success: false,
                    failure: false,
                    delay: false
                }),
                orcpt: None
            }
        )
        .encode()
        .is_err());
    }

    #[test]
    fn injection_is_refused_by_the_address() {
        // threat model #29: these never become a command.
        for bad in [
            "a@b>\r\nRCPT TO:<x@evil>",
            "a@b> NOTIFY=NEVER",
            "-f@example.org",
            "a b@example.org",
        ] {
            assert!(Address::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_longest_valid_mail_from_is_accepted() {
        // RFC 5321 §4.5.3.1: a maximal path fits; SIZE, SMTPUTF8 and DSN have their own room.
        let local = "l".repeat(64);
        let domain = format!(
            "{}.{}.{}.{}",
            "d".repeat(63),
            "d".repeat(63),
            "d".repeat(63),
            "d".repeat(60)
        );
        let long = format!("{local}@{domain}");
        assert!(Address::new(&long).is_err()); // path > 256
        let domain = format!("{}.{}.{}", "d".repeat(63), "d".repeat(63), "d".repeat(60));
        let long = format!("{local}@{domain}");
        let command = mail(
            Some(&long),
            MailParameters {
                size: Some(u64::MAX),
                body: Some(Body::EightBitMime),
                smtputf8: true,
                ret: Some(Ret::Full),
                envid: Some("+".repeat(100)),
            },
        );
        let line = command.encode().unwrap();
        assert!(line.len() > MAX_COMMAND_LINE);
        assert!(line.ends_with(format!(" ENVID={}\r\n", "+2B".repeat(100)).as_bytes()));
    }

    proptest! {
        /// Any user text that makes an address gives exactly one line with one CRLF.
        #[test]
        fn any_accepted_address_is_one_line(input in "\\PC*|[\\x00-\\x7f]*") {
            if let Ok(address) = Address::new(&input) {
                let line = Command::RcptTo {
                    forward_path: address,
                    parameters: RcptParameters::default(),
                }
                .encode()
                .unwrap();
                let crlf = line.windows(2).filter(|w| *w == b"\r\n").count();
                prop_assert_eq!(crlf, 1);
                prop_assert!(line.ends_with(b">\r\n"));
                prop_assert!(!line[..line.len() - 2].contains(&b'\r'));
                prop_assert!(!line[..line.len() - 2].contains(&b'\n'));
            }
        }
    }
}
