//! A server's reply, typed: what an error carries so that applications match on codes (an
//! SMTP `550`, an enhanced `5.7.139`, a POP3 `[IN-USE]`, an IMAP `[UNAVAILABLE]`) rather than
//! on words. Each renders, with `Display`, the words the error messages show (escaped: server
//! text is never printed raw).

use std::fmt;

use mailcat_codec::core::text::escape_bytes;
use mailcat_codec::imap::{Code, StatusKind};
use mailcat_codec::pop3::{ResponseCode, ResponseCodeKind, Status, StatusLine};
use mailcat_codec::smtp::{self, EnhancedCode};

/// A server's reply, in the form of its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// An SMTP reply: code, enhanced status code, text.
    Smtp(Box<SmtpReply>),
    /// A POP3 status line: `+OK`/`-ERR`, RFC 2449/3206 response code, text.
    Pop3(Box<Pop3Reply>),
    /// An IMAP status response: OK/NO/BAD/BYE, response code, text.
    Imap(Box<ImapReply>),
    /// Words with no typed form: a reply whose session does not type it yet, or a reason the
    /// client put in a reply's place. Escaped.
    Text(String),
}

impl Reply {
    /// The SMTP reply code (`550`), for an SMTP reply.
    pub fn smtp_code(&self) -> Option<u16> {
        self.as_smtp().map(|r| r.code)
    }

    /// The enhanced status code (RFC 3463: `5.7.139`), for an SMTP reply that has one.
    pub fn enhanced_code(&self) -> Option<EnhancedCode> {
        self.as_smtp().and_then(|r| r.enhanced)
    }

    /// The POP3 response code (`IN-USE`, `SYS/TEMP`), for a POP3 reply that has one.
    pub fn pop3_code(&self) -> Option<&ResponseCode<'static>> {
        self.as_pop3().and_then(|r| r.code.as_ref())
    }

    /// What the POP3 response code means ([`ResponseCodeKind::InUse`] ...), when there is one.
    pub fn pop3_code_kind(&self) -> Option<ResponseCodeKind> {
        self.pop3_code().map(ResponseCode::kind)
    }

    /// The IMAP status (`NO`, `BAD`, `BYE`), for an IMAP reply.
    pub fn imap_status(&self) -> Option<StatusKind> {
        self.as_imap().map(|r| r.status)
    }

    /// The IMAP response code (`[UNAVAILABLE]`, `[AUTHENTICATIONFAILED]`), when there is one.
    pub fn imap_code(&self) -> Option<&Code<'static>> {
        self.as_imap().and_then(|r| r.code.as_ref())
    }

    /// The SMTP reply, if this is one.
    pub fn as_smtp(&self) -> Option<&SmtpReply> {
        match self {
            Self::Smtp(reply) => Some(reply),
            _ => None,
        }
    }

    /// The POP3 reply, if this is one.
    pub fn as_pop3(&self) -> Option<&Pop3Reply> {
        match self {
            Self::Pop3(reply) => Some(reply),
            _ => None,
        }
    }

    /// The IMAP reply, if this is one.
    pub fn as_imap(&self) -> Option<&ImapReply> {
        match self {
            Self::Imap(reply) => Some(reply),
            _ => None,
        }
    }

    /// The reply as the server put it, its status first: `454 TLS not available / try later`
    /// (SMTP lines joined with ` / `), `-ERR text`, `NO text`. What a refusal of the opening
    /// (greeting, capabilities, STARTTLS) shows.
    pub fn with_status(&self) -> String {
        match self {
            Self::Smtp(reply) => {
                let lines = reply.lines.join(" / ");
                format!("{} {lines}", reply.code)
            }
            Self::Pop3(reply) => format!("{} {}", reply.status_word(), reply.text),
            Self::Imap(reply) => format!("{} {}", reply.status.as_str(), reply.text),
            Self::Text(text) => text.clone(),
        }
    }
}

/// The words the error messages show: SMTP `550 5.1.1 text` (lines joined with a space),
/// POP3 `[CODE] text`, IMAP `text`, or the text as is.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smtp(reply) => reply.fmt(f),
            Self::Pop3(reply) => reply.fmt(f),
            Self::Imap(reply) => reply.fmt(f),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// Words with no typed form (see [`Reply::Text`]).
impl From<String> for Reply {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for Reply {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<SmtpReply> for Reply {
    fn from(reply: SmtpReply) -> Self {
        Self::Smtp(Box::new(reply))
    }
}

impl From<Pop3Reply> for Reply {
    fn from(reply: Pop3Reply) -> Self {
        Self::Pop3(Box::new(reply))
    }
}

impl From<ImapReply> for Reply {
    fn from(reply: ImapReply) -> Self {
        Self::Imap(Box::new(reply))
    }
}

/// An SMTP reply, owned and escaped for display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpReply {
    /// The reply code (`250`, `550` ...).
    pub code: u16,
    /// The enhanced status code, if the server sent one (RFC 3463).
    pub enhanced: Option<EnhancedCode>,
    /// The text of every line (enhanced code included), escaped, joined with a space.
    pub text: String,
    /// The text of each line (enhanced code included), escaped.
    pub lines: Vec<String>,
}

impl SmtpReply {
    /// The owned, escaped form of a decoded reply.
    pub fn from_reply(reply: &smtp::Reply<'_>) -> Self {
        let lines: Vec<String> = reply.lines.iter().map(|line| escape_bytes(line)).collect();
        Self {
            code: reply.code.get(),
            enhanced: reply.enhanced,
            text: lines.join(" "),
            lines,
        }
    }

    /// 4xx: the same command may work later.
    pub fn is_transient(&self) -> bool {
        self.code / 100 == 4
    }
}

/// `550 5.1.1 text`, or the code alone when the reply has no text.
impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {}", self.code, self.text)
        }
    }
}

/// A POP3 status line, owned, its text escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pop3Reply {
    /// `+OK` or `-ERR`.
    pub status: Status,
    /// The extended response code (RFC 2449 §8, RFC 3206), brackets excluded.
    pub code: Option<ResponseCode<'static>>,
    /// The text after the status and the code, escaped.
    pub text: String,
}

impl Pop3Reply {
    /// The owned, escaped form of a decoded status line.
    pub fn from_status(status: &StatusLine<'_>) -> Self {
        Self {
            status: status.status,
            code: status.code.clone().map(ResponseCode::into_owned),
            text: escape_bytes(&status.text),
        }
    }

    /// `-ERR [IN-USE]`, `[LOGIN-DELAY]` and `[SYS/TEMP]` mean "later" (RFC 2449 §8, RFC 3206).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self.code.as_ref().map(ResponseCode::kind),
            Some(
                ResponseCodeKind::InUse | ResponseCodeKind::LoginDelay | ResponseCodeKind::SysTemp
            )
        )
    }

    fn status_word(&self) -> &'static str {
        match self.status {
            Status::Ok => "+OK",
            Status::Err => "-ERR",
        }
    }
}

/// `[CODE] text`, or the text alone.
impl fmt::Display for Pop3Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "[{}] {}", escape_bytes(code.as_bytes()), self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// An IMAP status response, owned, its text escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImapReply {
    /// OK, NO, BAD, BYE or PREAUTH.
    pub status: StatusKind,
    /// The response code, if any.
    pub code: Option<Code<'static>>,
    /// The text after the code, escaped.
    pub text: String,
}

impl ImapReply {
    /// A status response of `status`, with `code`, and `text` (raw: escaped here).
    pub fn new(status: StatusKind, code: Option<Code<'static>>, text: &[u8]) -> Self {
        Self {
            status,
            code,
            text: escape_bytes(text),
        }
    }
}

/// The text alone (the status and the code are not shown: see [`Reply::with_status`]).
impl fmt::Display for ImapReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailcat_codec::Limits;

    #[test]
    fn each_reply_renders_the_words_the_messages_showed() {
        let (_, parsed) = smtp::parse_reply(
            b"550-5.1.1 no such user\r\n550 5.1.1 try another\r\n",
            &Limits::smtp(),
        )
        .unwrap();
        let smtp = Reply::from(SmtpReply::from_reply(&parsed));
        assert_eq!(smtp.to_string(), "550 5.1.1 no such user 5.1.1 try another");
        assert_eq!(
            smtp.with_status(),
            "550 5.1.1 no such user / 5.1.1 try another"
        );
        assert_eq!(smtp.smtp_code(), Some(550));
        assert_eq!(
            smtp.enhanced_code().map(|c| c.to_string()).as_deref(),
            Some("5.1.1")
        );

        let mut decoder = mailcat_codec::pop3::Decoder::new(Limits::pop3());
        let (_, event) = decoder.decode(b"-ERR [IN-USE] locked\x1b\r\n").unwrap();
        let mailcat_codec::pop3::Event::Status(status) = event else {
            panic!("{event:?}");
        };
        let pop3 = Reply::from(Pop3Reply::from_status(&status));
        assert_eq!(pop3.to_string(), "[IN-USE] locked\\x1b");
        assert_eq!(pop3.with_status(), "-ERR locked\\x1b");
        assert_eq!(pop3.pop3_code_kind(), Some(ResponseCodeKind::InUse));
        assert_eq!(pop3.smtp_code(), None);

        let imap = Reply::from(ImapReply::new(StatusKind::No, None, b"over quota"));
        assert_eq!(imap.to_string(), "over quota");
        assert_eq!(imap.with_status(), "NO over quota");
        assert_eq!(imap.imap_status(), Some(StatusKind::No));
    }
}
