//! POP3 status lines (RFC 1939 §3), extended response codes (RFC 2449 §8, RFC 3206), SASL
//! continuations (RFC 5034 §4) and the APOP timestamp of the greeting (RFC 1939 §7).
//!
//! ```text
//! status-line   = ( "+OK" / "-ERR" ) [ SP [ resp-code SP ] text ] CRLF
//! resp-code     = "[" resp-level *( "/" resp-level ) "]"
//! resp-level    = 1*<any CHAR except "[", "]", "/", SP, CTL>
//! continuation  = "+" [ SP base64 ] CRLF                  ; only during AUTH
//! ```
//!
//! Lenient, because real servers are: `+ok`/`-err` in any case, `+OK` with nothing after it,
//! several spaces after the status, 8-bit bytes in the text (kept as bytes), `+` with nothing
//! after it as a continuation, and bracketed text that is not a well-formed code (kept as text).

use std::borrow::Cow;

use crate::DecodeError;

/// `+OK` or `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `+OK`: the command succeeded.
    Ok,
    /// `-ERR`: it failed.
    Err,
}

/// The meaning of an extended response code, from its first levels (RFC 2449 §8, RFC 3206,
/// RFC 6856).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseCodeKind {
    /// `IN-USE`: the maildrop is locked by another session; try later.
    InUse,
    /// `LOGIN-DELAY`: logged in too soon after the last login; wait.
    LoginDelay,
    /// `SYS/TEMP`: a temporary system problem; try later.
    SysTemp,
    /// `SYS/PERM`: a permanent system problem; retrying will not help.
    SysPerm,
    /// `AUTH`: the credentials were refused (not a system problem).
    Auth,
    /// `UTF8`: UTF-8 mode problem (RFC 6856).
    Utf8,
    /// Any other code: see [`ResponseCode::as_bytes`].
    Unknown,
}

/// An extended response code such as `[SYS/TEMP]` (brackets not included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseCode<'a>(Cow<'a, [u8]>);

impl<'a> ResponseCode<'a> {
    /// The code as sent, without brackets: `SYS/TEMP`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The levels, separated by `/`.
    pub fn levels(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.0.split(|&b| b == b'/')
    }

    /// What the code means, matched case-insensitively on its first levels; levels a server
    /// adds below a known code (`SYS/TEMP/QUOTA`) do not change its meaning.
    pub fn kind(&self) -> ResponseCodeKind {
        let mut levels = self.levels();
        let first = levels.next().unwrap_or_default();
        let is = |level: &[u8], name: &str| level.eq_ignore_ascii_case(name.as_bytes());
        if is(first, "IN-USE") {
            ResponseCodeKind::InUse
        } else if is(first, "LOGIN-DELAY") {
            ResponseCodeKind::LoginDelay
        } else if is(first, "AUTH") {
            ResponseCodeKind::Auth
        } else if is(first, "UTF8") {
            ResponseCodeKind::Utf8
        } else if is(first, "SYS") {
            match levels.next() {
                Some(l) if is(l, "TEMP") => ResponseCodeKind::SysTemp,
                Some(l) if is(l, "PERM") => ResponseCodeKind::SysPerm,
                _ => ResponseCodeKind::Unknown,
            }
        } else {
            ResponseCodeKind::Unknown
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> ResponseCode<'static> {
        ResponseCode(Cow::Owned(self.0.into_owned()))
    }
}

/// A `+OK` or `-ERR` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// `+OK` or `-ERR`.
    pub status: Status,
    /// The extended response code, if the text started with a well-formed one.
    pub code: Option<ResponseCode<'a>>,
    /// The text after the status (and after the code), as bytes: it may be 8-bit.
    pub text: Cow<'a, [u8]>,
}

impl<'a> StatusLine<'a> {
    /// True for `+OK`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The APOP timestamp of a greeting, brackets included (`<1896.697170952@dbc.mtview.us>`),
    /// as RFC 1939 §7 requires it in the digest: the first `<...>` holding an `@` and only
    /// printable ASCII without spaces.
    pub fn apop_timestamp(&self) -> Option<&[u8]> {
        let text: &[u8] = &self.text;
        let mut from = 0;
        while let Some(open) = memchr::memchr(b'<', &text[from..]).map(|i| from + i) {
            let close = memchr::memchr(b'>', &text[open..]).map(|i| open + i)?;
            let inner = &text[open + 1..close];
            if inner.contains(&b'@')
                && inner
                    .iter()
                    .all(|&b| (0x21..=0x7e).contains(&b) && b != b'<')
            {
                return Some(&text[open..=close]);
            }
            from = open + 1;
        }
        None
    }

    /// An owned copy.
    pub fn into_owned(self) -> StatusLine<'static> {
        StatusLine {
            status: self.status,
            code: self.code.map(ResponseCode::into_owned),
            text: Cow::Owned(self.text.into_owned()),
        }
    }
}

/// One line from the server where a status is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    Status(StatusLine<'a>),
    /// The base64 text after `+ ` (possibly empty).
    Continuation(&'a [u8]),
}

/// `status-line` (or, when `sasl` is set, `continuation`) for one line without its CRLF.
pub(crate) fn status_line(line: &[u8], sasl: bool) -> Result<Reply<'_>, DecodeError> {
    let (status, rest) = if starts_with_ignore_case(line, b"+OK") {
        (Status::Ok, &line[3..])
    } else if starts_with_ignore_case(line, b"-ERR") {
        (Status::Err, &line[4..])
    } else if sasl && line.first() == Some(&b'+') {
        // RFC 5034 §4: `"+" SP [base64]`. Some servers drop the space of an empty challenge
        // and send "+" alone (as IMAP servers do, swift-nio-imap #222): an empty challenge too.
        return match line.get(1) {
            None => Ok(Reply::Continuation(&line[1..])),
            Some(b' ') => Ok(Reply::Continuation(&line[2..])),
            Some(_) => Err(DecodeError::Invalid {
                offset: 1,
                expected: "SP after the continuation's \"+\"",
            }),
        };
    } else {
        return Err(DecodeError::Invalid {
            offset: 0,
            expected: if sasl {
                "+OK, -ERR or a \"+ \" continuation"
            } else {
                "+OK or -ERR"
            },
        });
    };
    let at = line.len() - rest.len();
    let text = match rest.first() {
        None => rest,
        Some(b' ') => {
            let spaces = rest.iter().take_while(|&&b| b == b' ').count();
            &rest[spaces..]
        }
        Some(_) => {
            return Err(DecodeError::Invalid {
                offset: at,
                expected: "SP or CRLF after the status",
            })
        }
    };
    let (code, text) = match resp_code(text) {
        Some((code, after)) => (Some(ResponseCode(Cow::Borrowed(code))), after),
        None => (None, text),
    };
    Ok(Reply::Status(StatusLine {
        status,
        code,
        text: Cow::Borrowed(text),
    }))
}

/// Checks what has arrived of a status line that has no CRLF yet, so that garbage (an HTTP or
/// IMAP server on the POP3 port, a TLS handshake) is refused without waiting for a line end.
pub(crate) fn status_prefix(partial: &[u8], sasl: bool) -> Result<(), DecodeError> {
    let Some(&first) = partial.first() else {
        return Ok(());
    };
    let candidates: &[&[u8]] = match first {
        b'+' if sasl => return Ok(()),
        b'+' => &[b"+OK"],
        b'-' => &[b"-ERR"],
        _ => &[],
    };
    let n = partial.len();
    let fits = candidates.iter().any(|want| {
        let k = n.min(want.len());
        partial[..k].eq_ignore_ascii_case(&want[..k])
            && (n <= want.len() || partial[want.len()] == b' ' || partial[want.len()] == b'\r')
    });
    if fits {
        Ok(())
    } else {
        status_line(partial, sasl).map(|_| ())
    }
}

/// `"[" resp-level *("/" resp-level) "]" SP` at the start of `text`: `(code, text after it)`.
fn resp_code(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner_and_rest = text.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', inner_and_rest)?;
    let inner = &inner_and_rest[..close];
    let well_formed = !inner.is_empty()
        && inner.split(|&b| b == b'/').all(|level| {
            !level.is_empty()
                && level
                    .iter()
                    .all(|&b| (0x21..=0x7e).contains(&b) && b != b'[')
        });
    if !well_formed {
        return None;
    }
    let after = &inner_and_rest[close + 1..];
    let spaces = after.iter().take_while(|&&b| b == b' ').count();
    if spaces == 0 && !after.is_empty() {
        return None;
    }
    Some((inner, &after[spaces..]))
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(line: &[u8]) -> StatusLine<'_> {
        match status_line(line, false).unwrap() {
            Reply::Status(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc1939_examples() {
        let s = status(b"+OK POP3 server ready <1896.697170952@dbc.mtview.us>");
        assert!(s.is_ok());
        assert_eq!(
            s.apop_timestamp(),
            Some(&b"<1896.697170952@dbc.mtview.us>"[..])
        );
        let s = status(b"-ERR never heard of mailbox name");
        assert_eq!(s.status, Status::Err);
        assert_eq!(&s.text[..], b"never heard of mailbox name");
        assert_eq!(s.code, None);
    }

    #[test]
    fn ok_with_nothing_after_it_and_lower_case() {
        let s = status(b"+OK");
        assert_eq!((s.status, &s.text[..]), (Status::Ok, &b""[..]));
        let s = status(b"+ok  fine");
        assert_eq!(&s.text[..], b"fine");
        assert_eq!(status(b"-err").status, Status::Err);
    }

    #[test]
    fn response_codes() {
        for (line, kind) in [
            (
                &b"-ERR [IN-USE] Mailbox is locked"[..],
                ResponseCodeKind::InUse,
            ),
            (b"-ERR [LOGIN-DELAY] wait", ResponseCodeKind::LoginDelay),
            (b"-ERR [SYS/TEMP] try later", ResponseCodeKind::SysTemp),
            (b"-ERR [SYS/PERM] no", ResponseCodeKind::SysPerm),
            (
                b"-ERR [sys/temp/quota] lower case, extra level",
                ResponseCodeKind::SysTemp,
            ),
            (
                b"-ERR [AUTH] Authentication failed.",
                ResponseCodeKind::Auth,
            ),
            (b"-ERR [UTF8] no", ResponseCodeKind::Utf8),
            (b"-ERR [X-FOO/BAR] what", ResponseCodeKind::Unknown),
            (b"-ERR [SYS] odd", ResponseCodeKind::Unknown),
        ] {
            let s = status(line);
            assert_eq!(
                s.code.as_ref().map(ResponseCode::kind),
                Some(kind),
                "{line:?}"
            );
        }
        let s = status(b"-ERR [SYS/TEMP] try later");
        assert_eq!(s.code.unwrap().as_bytes(), b"SYS/TEMP");
        assert_eq!(&s.text[..], b"try later");
        assert_eq!(
            status(b"-ERR [AUTH]").code.map(|c| c.kind()),
            Some(ResponseCodeKind::Auth)
        );
    }

    #[test]
    fn malformed_codes_stay_text() {
        for line in [
            &b"-ERR [not a code] x"[..],
            b"-ERR [] x",
            b"-ERR [SYS//TEMP] x",
            b"-ERR [open x",
            b"-ERR [AUTH]x",
        ] {
            let s = status(line);
            assert_eq!(s.code, None, "{line:?}");
            assert_eq!(&s.text[..], &line[5..]);
        }
    }

    #[test]
    fn refuses_what_is_not_a_status() {
        for (line, offset) in [
            (&b"OK hi"[..], 0),
            (b"* OK IMAP4rev1 ready", 0),
            (b"220 smtp.example.com ESMTP", 0),
            (b"+OKAY", 3),
            (b"-ERROR", 4),
            (b"+ abc", 0),
            (b"", 0),
        ] {
            assert!(
                matches!(status_line(line, false), Err(DecodeError::Invalid { offset: o, .. }) if o == offset),
                "{line:?}"
            );
        }
    }

    #[test]
    fn continuations_only_when_authenticating() {
        assert_eq!(status_line(b"+ ", true), Ok(Reply::Continuation(b"")));
        assert_eq!(status_line(b"+", true), Ok(Reply::Continuation(b"")));
        assert_eq!(
            status_line(b"+ VXNlcm5hbWU6", true),
            Ok(Reply::Continuation(b"VXNlcm5hbWU6"))
        );
        crate::assert_matches!(status_line(b"+OK done", true), Ok(Reply::Status(_)));
        assert!(status_line(b"+x", true).is_err());
        assert!(status_line(b"+", false).is_err());
    }

    #[test]
    fn prefixes_of_garbage_are_refused_early() {
        assert!(status_prefix(b"+O", false).is_ok());
        assert!(status_prefix(b"-er", false).is_ok());
        assert!(status_prefix(b"+OK\r", false).is_ok());
        assert!(status_prefix(b"+OK hello", false).is_ok());
        assert!(status_prefix(b"", false).is_ok());
        assert!(status_prefix(b"* OK", false).is_err());
        assert!(status_prefix(b"HTTP/1.1", false).is_err());
        assert!(status_prefix(b"+X", false).is_err());
        assert!(status_prefix(b"+OKAY", false).is_err());
        assert!(status_prefix(b"+ ab", true).is_ok());
    }

    #[test]
    fn apop_timestamp_needs_an_at_sign() {
        assert_eq!(status(b"+OK hello <no-at> there").apop_timestamp(), None);
        assert_eq!(
            status(b"+OK <x> Hello there. <2153.1234@mail.example.com>").apop_timestamp(),
            Some(&b"<2153.1234@mail.example.com>"[..])
        );
        assert_eq!(status(b"+OK <a b@c>").apop_timestamp(), None);
        assert_eq!(status(b"+OK <a@b").apop_timestamp(), None);
    }

    #[test]
    fn gmail_greeting() {
        let s = status(
            b"+OK Gpop ready for requests from 198.51.100.7 a640c23a62f3a-ab7f3b2c1d0mb123456766b",
        );
        assert!(s.is_ok() && s.apop_timestamp().is_none());
    }

    #[test]
    fn gmail_pop_disabled() {
        let s = status(b"-ERR [SYS/PERM] Your account is not enabled for POP access. Please visit your Gmail settings page and enable your account for POP access.");
        assert_eq!(s.code.unwrap().kind(), ResponseCodeKind::SysPerm);
    }

    #[test]
    fn gmail_bad_credentials() {
        let s = status(b"-ERR [AUTH] Username and password not accepted.");
        assert_eq!(s.code.unwrap().kind(), ResponseCodeKind::Auth);
    }

    #[test]
    fn outlook_greeting_with_trailing_bracket_is_text() {
        let line = b"+OK The Microsoft Exchange POP3 service is ready. [UwBOADIAUABSADAANQBDAEEAMAAwADAANgAuAG4AYQBtAHAAcgBkADAANQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]";
        let s = status(line);
        assert_eq!(s.code, None);
        assert_eq!(&s.text[..], &line[4..]);
    }

    #[test]
    fn exchange_logon_failure() {
        let s = status(b"-ERR Logon failure: unknown user name or bad password.");
        assert_eq!((s.status, s.code), (Status::Err, None));
    }

    #[test]
    fn dovecot_greeting_and_lock() {
        assert!(status(b"+OK Dovecot ready.").is_ok());
        assert!(status(b"+OK Dovecot (Ubuntu) ready.").is_ok());
        let s = status(b"-ERR [IN-USE] Couldn't open INBOX: Mailbox is locked");
        assert_eq!(s.code.unwrap().kind(), ResponseCodeKind::InUse);
    }

    #[test]
    fn courier_greeting() {
        assert!(status(b"+OK Hello there.").is_ok());
        let s = status(b"+OK Hello there. <23617.1700000000@mail.example.com>");
        assert_eq!(
            s.apop_timestamp(),
            Some(&b"<23617.1700000000@mail.example.com>"[..])
        );
    }

    #[test]
    fn cyrus_session_id_is_not_an_apop_timestamp() {
        // Cyrus after login (knadh/go-pop3#1): the bracketed SESSIONID has no "@".
        let s = status(
            b"+OK Mailbox locked and ready SESSIONID=<cyrus-1234-1632912009-1-5678901234567890>",
        );
        assert_eq!(s.apop_timestamp(), None);
    }

    #[test]
    fn yahoo_greeting() {
        assert!(status(b"+OK hello from popgate-0.8.0.450444 pop005.mail.ir2.yahoo.com").is_ok());
    }

    #[test]
    fn qq_mail_greeting() {
        assert!(status(b"+OK XMail POP3 Server v1.0 Service Ready(XMail v1.0)").is_ok());
    }

    #[test]
    fn netease_163_coremail_greeting() {
        let s = status(b"+OK Welcome to coremail Mail Pop3 Server (163coms[10774b260cc7a37d26d71b52404dcf5cs])");
        assert_eq!(s.code, None);
        assert!(s.text.starts_with(b"Welcome to coremail"));
    }

    #[test]
    fn eight_bit_greeting_is_kept_as_bytes() {
        // Latin-1 and UTF-8 greetings from European and Chinese ISPs.
        let s = status(b"+OK Willkommen \xfc\xe4 \xe6\xac\xa2\xe8\xbf\x8e");
        assert_eq!(&s.text[..], b"Willkommen \xfc\xe4 \xe6\xac\xa2\xe8\xbf\x8e");
    }

    #[test]
    fn into_owned_outlives_the_buffer() {
        let owned = {
            let buf = b"-ERR [SYS/TEMP] later".to_vec();
            status(&buf).into_owned()
        };
        assert_eq!(owned.code.unwrap().kind(), ResponseCodeKind::SysTemp);
    }
}
