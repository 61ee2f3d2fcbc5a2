//! The CAPA listing (RFC 2449 §5 and §6), with SASL (RFC 5034), STLS (RFC 2595) and UTF8
//! (RFC 6856).
//!
//! ```text
//! capability = capa-tag *( SP param )
//! capa-tag   = 1*cchar
//! ```
//!
//! Typed: TOP, USER, UIDL, PIPELINING, STLS, SASL, EXPIRE, LOGIN-DELAY, RESP-CODES,
//! AUTH-RESP-CODE, IMPLEMENTATION, UTF8. Unknown tags, and known tags with arguments that do not
//! parse, are kept as [`Capability::Other`]; the raw lines are always available. Tags are
//! matched in any case, and runs of spaces are accepted.

use crate::core::parse::number_u32;

/// How long the server keeps messages after they were retrieved (RFC 2449 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirePolicy {
    /// Kept for this many days; 0 means deleted as soon as the session ends (Gmail's
    /// `EXPIRE 0`: POP3 clients must not count on leaving mail on the server).
    Days(u32),
    /// Never deleted by the server.
    Never,
}

/// One CAPA line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability<'a> {
    /// `TOP`.
    Top,
    /// `USER`: USER/PASS login.
    User,
    /// `UIDL`.
    Uidl,
    /// `PIPELINING` (RFC 2449 §6.6).
    Pipelining,
    /// `STLS` (RFC 2595).
    Stls,
    /// `SASL mech...`: the mechanisms for AUTH (RFC 5034).
    Sasl(Vec<&'a [u8]>),
    /// `EXPIRE days|NEVER [USER]`; `per_user` if the value may differ per user and is only
    /// final after login.
    Expire {
        /// The retention policy.
        policy: ExpirePolicy,
        /// `USER` was given.
        per_user: bool,
    },
    /// `LOGIN-DELAY seconds [USER]`: the minimum time between logins.
    LoginDelay {
        /// Seconds to wait between logins.
        seconds: u32,
        /// `USER` was given.
        per_user: bool,
    },
    /// `RESP-CODES`: `-ERR` lines carry `[...]` codes (RFC 2449 §8).
    RespCodes,
    /// `AUTH-RESP-CODE`: `[AUTH]` on credential failures (RFC 3206).
    AuthRespCode,
    /// `IMPLEMENTATION text`: the server software, for display only.
    Implementation(&'a [u8]),
    /// `UTF8 [USER]`: the UTF8 command (RFC 6856); `user` if USER/PASS take UTF-8 too.
    Utf8 {
        /// `USER` was given.
        user: bool,
    },
    /// Any other line, or a known tag with arguments it should not have.
    Other {
        /// The tag, as sent.
        tag: &'a [u8],
        /// The parameters, as sent.
        params: Vec<&'a [u8]>,
    },
}

impl<'a> Capability<'a> {
    /// Parses one CAPA line (without CRLF). Never fails: see [`Capability::Other`].
    pub fn parse(line: &'a [u8]) -> Self {
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let tag = words.next().unwrap_or_default();
        let params: Vec<&'a [u8]> = words.collect();
        let is = |name: &str| tag.eq_ignore_ascii_case(name.as_bytes());
        let user_flag = |p: &[&[u8]]| match p {
            [] => Some(false),
            [u] if u.eq_ignore_ascii_case(b"USER") => Some(true),
            _ => None,
        };
        let bare = params.is_empty();
        let known = match () {
            _ if is("TOP") && bare => Some(Capability::Top),
            _ if is("USER") && bare => Some(Capability::User),
            _ if is("UIDL") && bare => Some(Capability::Uidl),
            _ if is("PIPELINING") && bare => Some(Capability::Pipelining),
            _ if is("STLS") && bare => Some(Capability::Stls),
            _ if is("RESP-CODES") && bare => Some(Capability::RespCodes),
            _ if is("AUTH-RESP-CODE") && bare => Some(Capability::AuthRespCode),
            _ if is("SASL") => Some(Capability::Sasl(params.clone())),
            _ if is("IMPLEMENTATION") => {
                // The rest of the line after the tag and its spaces, spaces inside kept.
                let start = line.len() - trim_start(&line[tag_end(line)..]).len();
                Some(Capability::Implementation(&line[start..]))
            }
            _ if is("UTF8") => user_flag(&params).map(|user| Capability::Utf8 { user }),
            _ if is("EXPIRE") => params.split_first().and_then(|(value, rest)| {
                let policy = if value.eq_ignore_ascii_case(b"NEVER") {
                    ExpirePolicy::Never
                } else {
                    ExpirePolicy::Days(whole_u32(value)?)
                };
                let per_user = user_flag(rest)?;
                Some(Capability::Expire { policy, per_user })
            }),
            _ if is("LOGIN-DELAY") => params.split_first().and_then(|(value, rest)| {
                Some(Capability::LoginDelay {
                    seconds: whole_u32(value)?,
                    per_user: user_flag(rest)?,
                })
            }),
            _ => None,
        };
        known.unwrap_or(Capability::Other { tag, params })
    }
}

fn tag_end(line: &[u8]) -> usize {
    let start = line.len() - trim_start(line).len();
    start
        + line[start..]
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(line.len() - start)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let spaces = bytes.iter().take_while(|&&b| b == b' ').count();
    &bytes[spaces..]
}

/// A whole word that is a number below 2^32.
fn whole_u32(word: &[u8]) -> Option<u32> {
    match number_u32(word) {
        Ok((&[], n)) => Some(n),
        _ => None,
    }
}

/// The lines of a CAPA reply, owned: they are kept for the session, and must be forgotten after
/// STLS (RFC 2595 §4: capabilities learned before TLS cannot be trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    lines: Vec<Vec<u8>>,
}

impl Capabilities {
    /// No capabilities: the state before CAPA, or of a server without CAPA.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one line, as [`crate::pop3::Event::Line`] hands it out. The decoder bounds the
    /// number and length of lines.
    pub fn push_line(&mut self, line: &[u8]) {
        self.lines.push(line.to_vec());
    }

    /// The raw lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines.iter().map(Vec::as_slice)
    }

    /// The lines, parsed.
    pub fn iter(&self) -> impl Iterator<Item = Capability<'_>> + '_ {
        self.lines.iter().map(|line| Capability::parse(line))
    }

    /// True if a line has this tag (case-insensitive), whatever its parameters.
    pub fn has(&self, tag: &str) -> bool {
        self.lines.iter().any(|line| {
            line.split(|&b| b == b' ')
                .find(|w| !w.is_empty())
                .is_some_and(|w| w.eq_ignore_ascii_case(tag.as_bytes()))
        })
    }

    /// The SASL mechanisms, over all SASL lines, without duplicates (in any case).
    pub fn sasl_mechanisms(&self) -> Vec<&[u8]> {
        let mut mechanisms: Vec<&[u8]> = Vec::new();
        for capability in self.iter() {
            if let Capability::Sasl(list) = capability {
                for mech in list {
                    if !mechanisms.iter().any(|m| m.eq_ignore_ascii_case(mech)) {
                        mechanisms.push(mech);
                    }
                }
            }
        }
        mechanisms
    }

    /// True if the SASL mechanism (case-insensitive) is offered.
    pub fn supports_sasl(&self, mechanism: &str) -> bool {
        self.sasl_mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism.as_bytes()))
    }

    fn any(&self, wanted: Capability<'static>) -> bool {
        self.iter().any(|c| c == wanted)
    }

    /// `STLS` is offered.
    pub fn stls(&self) -> bool {
        self.any(Capability::Stls)
    }

    /// `TOP` is offered.
    pub fn top(&self) -> bool {
        self.any(Capability::Top)
    }

    /// `UIDL` is offered.
    pub fn uidl(&self) -> bool {
        self.any(Capability::Uidl)
    }

    /// `USER` is offered.
    pub fn user(&self) -> bool {
        self.any(Capability::User)
    }

    /// `PIPELINING` is offered.
    pub fn pipelining(&self) -> bool {
        self.any(Capability::Pipelining)
    }

    /// `RESP-CODES` is offered.
    pub fn resp_codes(&self) -> bool {
        self.any(Capability::RespCodes)
    }

    /// `AUTH-RESP-CODE` is offered.
    pub fn auth_resp_code(&self) -> bool {
        self.any(Capability::AuthRespCode)
    }

    /// `UTF8` is offered (with or without `USER`).
    pub fn utf8(&self) -> bool {
        self.iter().any(|c| matches!(c, Capability::Utf8 { .. }))
    }

    /// The `EXPIRE` policy, if announced.
    pub fn expire(&self) -> Option<ExpirePolicy> {
        self.iter().find_map(|c| match c {
            Capability::Expire { policy, .. } => Some(policy),
            _ => None,
        })
    }

    /// The `LOGIN-DELAY` in seconds, if announced.
    pub fn login_delay(&self) -> Option<u32> {
        self.iter().find_map(|c| match c {
            Capability::LoginDelay { seconds, .. } => Some(seconds),
            _ => None,
        })
    }

    /// The `IMPLEMENTATION` text, if announced (escape it before showing it).
    pub fn implementation(&self) -> Option<&[u8]> {
        self.iter().find_map(|c| match c {
            Capability::Implementation(text) => Some(text),
            _ => None,
        })
    }
}

impl<'l> FromIterator<&'l [u8]> for Capabilities {
    fn from_iter<I: IntoIterator<Item = &'l [u8]>>(lines: I) -> Self {
        Self {
            lines: lines.into_iter().map(<[u8]>::to_vec).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capa(lines: &[&[u8]]) -> Capabilities {
        lines.iter().copied().collect()
    }

    #[test]
    fn rfc2449_example() {
        let c = capa(&[
            b"TOP",
            b"USER",
            b"SASL CRAM-MD5 KERBEROS_V4",
            b"RESP-CODES",
            b"LOGIN-DELAY 900",
            b"PIPELINING",
            b"EXPIRE 60",
            b"UIDL",
            b"IMPLEMENTATION Shlemazle-Plotz-v302",
        ]);
        assert!(c.top() && c.user() && c.uidl() && c.pipelining() && c.resp_codes());
        assert_eq!(c.sasl_mechanisms(), [&b"CRAM-MD5"[..], b"KERBEROS_V4"]);
        assert_eq!(c.login_delay(), Some(900));
        assert_eq!(c.expire(), Some(ExpirePolicy::Days(60)));
        assert_eq!(c.implementation(), Some(&b"Shlemazle-Plotz-v302"[..]));
        assert!(!c.stls() && !c.auth_resp_code() && !c.utf8());
        assert_eq!(c.lines().count(), 9);
    }

    #[test]
    fn per_user_and_never() {
        assert_eq!(
            Capability::parse(b"EXPIRE NEVER"),
            Capability::Expire {
                policy: ExpirePolicy::Never,
                per_user: false
            }
        );
        assert_eq!(
            Capability::parse(b"expire 30 user"),
            Capability::Expire {
                policy: ExpirePolicy::Days(30),
                per_user: true
            }
        );
        assert_eq!(
            Capability::parse(b"LOGIN-DELAY  300  USER"),
            Capability::LoginDelay {
                seconds: 300,
                per_user: true
            }
        );
        assert_eq!(
            Capability::parse(b"UTF8 USER"),
            Capability::Utf8 { user: true }
        );
        assert_eq!(Capability::parse(b"UTF8"), Capability::Utf8 { user: false });
    }

    #[test]
    fn bad_arguments_are_kept_raw() {
        for line in [
            &b"EXPIRE"[..],
            b"EXPIRE soon",
            b"LOGIN-DELAY 99999999999",
            b"LOGIN-DELAY 5 OTHER",
            b"STLS now",
            b"X-GOOGLE-RICO",
        ] {
            assert!(
                matches!(Capability::parse(line), Capability::Other { .. }),
                "{line:?}"
            );
        }
    }

    #[test]
    fn implementation_keeps_inner_spaces() {
        assert_eq!(
            Capability::parse(b"IMPLEMENTATION  Courier Mail Server"),
            Capability::Implementation(b"Courier Mail Server")
        );
        assert_eq!(
            Capability::parse(b"IMPLEMENTATION"),
            Capability::Implementation(b"")
        );
    }

    #[test]
    fn gmail() {
        let c = capa(&[
            b"USER",
            b"RESP-CODES",
            b"EXPIRE 0",
            b"LOGIN-DELAY 300",
            b"TOP",
            b"UIDL",
            b"X-GOOGLE-RICO",
            b"SASL PLAIN XOAUTH2 OAUTHBEARER",
        ]);
        assert_eq!(c.expire(), Some(ExpirePolicy::Days(0)));
        assert!(c.supports_sasl("xoauth2") && c.has("x-google-rico"));
    }

    #[test]
    fn dovecot() {
        let c = capa(&[
            b"CAPA",
            b"TOP",
            b"UIDL",
            b"RESP-CODES",
            b"PIPELINING",
            b"AUTH-RESP-CODE",
            b"STLS",
            b"USER",
            b"SASL PLAIN LOGIN",
        ]);
        assert!(c.stls() && c.auth_resp_code() && c.supports_sasl("PLAIN"));
    }

    #[test]
    fn outlook_before_and_after_stls() {
        // Before TLS Outlook lists no SASL at all; after it, SASL PLAIN XOAUTH2.
        let before = capa(&[b"TOP", b"UIDL", b"STLS"]);
        assert!(before.stls() && before.sasl_mechanisms().is_empty());
        let after = capa(&[b"TOP", b"UIDL", b"SASL PLAIN XOAUTH2", b"USER"]);
        assert!(after.supports_sasl("XOAUTH2"));
    }

    #[test]
    fn courier() {
        let c = capa(&[
            b"TOP",
            b"USER",
            b"LOGIN-DELAY 10",
            b"PIPELINING",
            b"UIDL",
            b"IMPLEMENTATION Courier Mail Server",
            b"UTF8 USER",
            b"STLS",
        ]);
        assert!(c.utf8() && c.stls());
        assert_eq!(c.implementation(), Some(&b"Courier Mail Server"[..]));
    }

    #[test]
    fn lower_case_and_double_spaces() {
        let c = capa(&[b"sasl  plain   login ", b"stls"]);
        assert_eq!(c.sasl_mechanisms(), [&b"plain"[..], b"login"]);
        assert!(c.stls());
    }
}
