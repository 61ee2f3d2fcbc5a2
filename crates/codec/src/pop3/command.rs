//! POP3 command encoders (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
//!
//! POP3 has no literals and no quoting: an argument runs to the next space or the end of the
//! line. So a CR, LF or NUL in a user value cannot be carried at all and is refused
//! (threat model #27), and so is anything that would change how the server splits the line:
//!
//! - `USER name`: no spaces at all (the name is one argument).
//! - `PASS string`: inner spaces are allowed — RFC 1939 §7: "a POP3 server may treat spaces in
//!   the argument as part of the password" — but not leading or trailing ones, which servers
//!   trim, so the password checked would silently differ from the one given.
//!
//! > RFC 2449 §4: "Keywords and arguments are each separated by a single SPACE character ...
//! > The maximum length of a command line, including the terminating CRLF, is 255 octets."
//!
//! A longer line is refused with [`EncodeError::TooLong`]. Message numbers start at 1.

pub use crate::core::secret::Secret;
use crate::core::secret::{check_mechanism, push_initial_response, response_line, CANCEL_LINE};
use crate::EncodeError;

/// RFC 2449 §4: 255 octets, CRLF included.
pub const MAX_COMMAND_LINE: usize = 255;

/// A client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`
    User(String),
    /// `PASS string`
    Pass(Secret),
    /// `APOP name digest`: the digest is the caller's MD5 of the greeting's timestamp and the
    /// secret, 32 hex digits (RFC 1939 §7).
    Apop {
        /// The mailbox name.
        name: String,
        /// The lower-case hex MD5 digest.
        digest: Secret,
    },
    /// `AUTH mechanism [initial-response]` (RFC 5034): the response is base64-encoded here, an
    /// empty one sent as `=`.
    Auth {
        /// The SASL mechanism.
        mechanism: String,
        /// The initial response, raw (not base64).
        initial_response: Option<Secret>,
    },
    /// `CAPA` (RFC 2449)
    Capa,
    /// `STLS` (RFC 2595)
    Stls,
    /// `STAT`
    Stat,
    /// `LIST [msg]`
    List(Option<u32>),
    /// `UIDL [msg]`
    Uidl(Option<u32>),
    /// `RETR msg`
    Retr(u32),
    /// `TOP msg n`: the header and the first `lines` body lines (0 for the header only).
    Top {
        /// The message number.
        message: u32,
        /// How many body lines.
        lines: u32,
    },
    /// `DELE msg`
    Dele(u32),
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
}

fn message_number(n: u32) -> Result<u32, EncodeError> {
    if n == 0 {
        return Err(EncodeError::Invalid {
            field: "message number",
            reason: "POP3 message numbers start at 1",
        });
    }
    Ok(n)
}

/// One argument: not empty, no CR/LF/NUL, no space (or, for a password, none at either end).
fn argument(field: &'static str, value: &[u8], inner_spaces: bool) -> Result<(), EncodeError> {
    crate::core::text::check_line_safe(field, value)?;
    if value.is_empty() {
        return Err(EncodeError::Empty { field });
    }
    if inner_spaces {
        if value.starts_with(b" ") || value.ends_with(b" ") {
            return Err(EncodeError::Invalid {
                field,
                reason: "starts or ends with a space, which POP3 servers may strip",
            });
        }
    } else if value.contains(&b' ') {
        return Err(EncodeError::Invalid {
            field,
            reason: "contains a space; a POP3 argument is a single word",
        });
    }
    Ok(())
}

impl Command {
    /// The command keyword, for traces and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::User(_) => "USER",
            Self::Pass(_) => "PASS",
            Self::Apop { .. } => "APOP",
            Self::Auth { .. } => "AUTH",
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
            Self::Stat => "STAT",
            Self::List(_) => "LIST",
            Self::Uidl(_) => "UIDL",
            Self::Retr(_) => "RETR",
            Self::Top { .. } => "TOP",
            Self::Dele(_) => "DELE",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
        }
    }

    /// True when the line carries a credential: a trace must redact it.
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Self::Pass(_) | Self::Apop { .. } | Self::Auth { .. })
    }

    /// True when the server answers with a multi-line response (RFC 1939, RFC 2449): the
    /// decoder must read up to the `.` line after a `+OK`.
    pub fn expects_multiline(&self) -> bool {
        matches!(
            self,
            Self::Capa | Self::List(None) | Self::Uidl(None) | Self::Retr(_) | Self::Top { .. }
        )
    }

    /// Encodes the command line, CRLF included. On error nothing is produced.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut line = self.name().as_bytes().to_vec();
        match self {
            Self::User(name) => {
                argument("user name", name.as_bytes(), false)?;
                line.push(b' ');
                line.extend_from_slice(name.as_bytes());
            }
            Self::Pass(password) => {
                argument("password", password.expose(), true)?;
                line.push(b' ');
                line.extend_from_slice(password.expose());
            }
            Self::Apop { name, digest } => {
                argument("user name", name.as_bytes(), false)?;
                let digest = digest.expose();
                if digest.len() != 32
                    || !digest
                        .iter()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return Err(EncodeError::Invalid {
                        field: "APOP digest",
                        reason: "32 lower-case hex digits (an MD5 digest, RFC 1939 §7)",
                    });
                }
                line.push(b' ');
                line.extend_from_slice(name.as_bytes());
                line.push(b' ');
                line.extend_from_slice(digest);
            }
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                check_mechanism(mechanism)?;
                line.push(b' ');
                line.extend_from_slice(mechanism.as_bytes());
                if let Some(response) = initial_response {
                    line.push(b' ');
                    // RFC 5034 §4: "If the initial response argument would cause the AUTH
                    // command to exceed [255 octets], the client MUST NOT use the initial
                    // response parameter" — TooLong below tells the session so.
                    push_initial_response(&mut line, response.expose());
                }
            }
            Self::List(Some(n)) | Self::Uidl(Some(n)) => {
                line.extend_from_slice(format!(" {}", message_number(*n)?).as_bytes());
            }
            Self::Retr(n) | Self::Dele(n) => {
                line.extend_from_slice(format!(" {}", message_number(*n)?).as_bytes());
            }
            Self::Top { message, lines } => {
                line.extend_from_slice(
                    format!(" {} {lines}", message_number(*message)?).as_bytes(),
                );
            }
            Self::Capa
            | Self::Stls
            | Self::Stat
            | Self::List(None)
            | Self::Uidl(None)
            | Self::Rset
            | Self::Noop
            | Self::Quit => {}
        }
        line.extend_from_slice(b"\r\n");
        if line.len() > MAX_COMMAND_LINE {
            return Err(EncodeError::TooLong {
                field: "command line",
                len: line.len(),
                limit: MAX_COMMAND_LINE,
            });
        }
        Ok(line)
    }
}

/// A SASL continuation response (RFC 5034 §4): base64 and CRLF; an empty payload is an empty
/// line. RFC 5034 does not hold these lines to the 255-octet command limit.
pub fn sasl_response(payload: &[u8]) -> Vec<u8> {
    response_line(payload)
}

/// `*` CRLF: cancels an AUTH exchange (the server answers `-ERR`).
pub fn sasl_cancel() -> &'static [u8] {
    CANCEL_LINE
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(command: Command) -> String {
        String::from_utf8(command.encode().unwrap()).unwrap()
    }

    #[test]
    fn commands() {
        assert_eq!(text(Command::User("mrose".into())), "USER mrose\r\n");
        assert_eq!(
            text(Command::Pass(Secret::new(&b"secret"[..]))),
            "PASS secret\r\n"
        );
        // RFC 1939 §7 example.
        assert_eq!(
            text(Command::Apop {
                name: "mrose".into(),
                digest: Secret::new(&b"c4c9334bac560ecc979e58001b3e22fb"[..]),
            }),
            "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
        );
        assert_eq!(text(Command::Capa), "CAPA\r\n");
        assert_eq!(text(Command::Stls), "STLS\r\n");
        assert_eq!(text(Command::Stat), "STAT\r\n");
        assert_eq!(text(Command::List(None)), "LIST\r\n");
        assert_eq!(text(Command::List(Some(2))), "LIST 2\r\n");
        assert_eq!(text(Command::Uidl(None)), "UIDL\r\n");
        assert_eq!(text(Command::Uidl(Some(2))), "UIDL 2\r\n");
        assert_eq!(text(Command::Retr(1)), "RETR 1\r\n");
        assert_eq!(
            text(Command::Top {
                message: 10,
                lines: 0
            }),
            "TOP 10 0\r\n"
        );
        assert_eq!(text(Command::Dele(4294967295)), "DELE 4294967295\r\n");
        assert_eq!(text(Command::Rset), "RSET\r\n");
        assert_eq!(text(Command::Noop), "NOOP\r\n");
        assert_eq!(text(Command::Quit), "QUIT\r\n");
        assert!(Command::Retr(1).expects_multiline());
        assert!(!Command::List(Some(1)).expects_multiline());
        assert!(Command::Pass(Secret::new(&b"x"[..])).is_sensitive());
    }

    #[test]
    fn message_numbers_start_at_one() {
        for command in [
            Command::List(Some(0)),
            Command::Uidl(Some(0)),
            Command::Retr(0),
            Command::Dele(0),
            Command::Top {
                message: 0,
                lines: 5,
            },
        ] {
            crate::assert_matches!(
                command.encode(),
                Err(EncodeError::Invalid {
                    field: "message number",
                    ..
                })
            );
        }
    }

    #[test]
    fn auth() {
        let auth = |mechanism: &str, ir: Option<&[u8]>| Command::Auth {
            mechanism: mechanism.to_owned(),
            initial_response: ir.map(Secret::new),
        };
        // Microsoft wants XOAUTH2 without an initial response (DESIGN.md).
        assert_eq!(text(auth("XOAUTH2", None)), "AUTH XOAUTH2\r\n");
        assert_eq!(
            text(auth("PLAIN", Some(b"\0tim\0tanstaaftanstaaf"))),
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
        assert_eq!(text(auth("EXTERNAL", Some(b""))), "AUTH EXTERNAL =\r\n");
        crate::assert_matches!(
            auth("XOAUTH2", Some(&[b'x'; 200])).encode(),
            Err(EncodeError::TooLong { limit: 255, .. })
        );
        assert_eq!(sasl_response(&[b'x'; 300]).len(), 402);
        assert_eq!(sasl_cancel(), b"*\r\n");
    }

    #[test]
    fn injection_is_refused() {
        // threat model #27: CRLF cannot be carried in POP3 at all.
        assert_eq!(
            Command::Pass(Secret::new(&b"pw\r\nDELE 1"[..])).encode(),
            Err(EncodeError::ForbiddenByte {
                field: "password",
                byte: b'\r',
                position: 2
            })
        );
        crate::assert_matches!(
            Command::User("alice\nDELE 1".into()).encode(),
            Err(EncodeError::ForbiddenByte {
                field: "user name",
                byte: b'\n',
                ..
            })
        );
        assert!(Command::Pass(Secret::new(&b"pw\0"[..])).encode().is_err());
        assert!(Command::Auth {
            mechanism: "PLAIN\r\nQUIT".into(),
            initial_response: None
        }
        .encode()
        .is_err());
    }

    #[test]
    fn spaces() {
        assert_eq!(
            text(Command::Pass(Secret::new(&b"correct horse battery"[..]))),
            "PASS correct horse battery\r\n"
        );
        for bad in [&b" pw"[..], b"pw ", b""] {
            assert!(Command::Pass(Secret::new(bad)).encode().is_err());
        }
        assert!(Command::User("alice smith".into()).encode().is_err());
        assert!(Command::User("".into()).encode().is_err());
        assert!(Command::Apop {
            name: "a b".into(),
            digest: Secret::new(&b"c4c9334bac560ecc979e58001b3e22fb"[..])
        }
        .encode()
        .is_err());
        for digest in [
            &b"C4C9334BAC560ECC979E58001B3E22FB"[..],
            b"c4c9",
            b"c4c9334bac560ecc979e58001b3e22fz",
        ] {
            assert!(Command::Apop {
                name: "mrose".into(),
                digest: Secret::new(digest)
            }
            .encode()
            .is_err());
        }
    }

    #[test]
    fn line_limit() {
        // "USER " + name + CRLF: 248 octets of name fit in 255.
        assert!(Command::User("u".repeat(248)).encode().is_ok());
        assert_eq!(
            Command::User("u".repeat(249)).encode(),
            Err(EncodeError::TooLong {
                field: "command line",
                len: 256,
                limit: 255
            })
        );
    }

    proptest! {
        /// Any password is refused or makes exactly one line that carries it unchanged.
        #[test]
        fn any_password_is_refused_or_one_line(password in proptest::collection::vec(any::<u8>(), 0..300)) {
            match Command::Pass(Secret::new(password.clone())).encode() {
                Ok(line) => {
                    prop_assert_eq!(line.windows(2).filter(|w| *w == b"\r\n").count(), 1);
                    prop_assert!(!line[..line.len() - 2].iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
                    prop_assert_eq!(&line[5..line.len() - 2], &password[..]);
                }
                Err(_) => prop_assert!(
                    password.is_empty()
                        || password.len() + 7 > MAX_COMMAND_LINE
                        || password.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
                        || password.starts_with(b" ")
                        || password.ends_with(b" ")
                ),
            }
        }
    }
}
