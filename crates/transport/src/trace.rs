//! The protocol trace: `C:` and `S:` lines through `tracing` (target `mailcat::trace`, level
//! DEBUG), CR/LF and control characters escaped, secrets redacted.
//!
//! Redaction does not rely on the caller alone: every client line is also checked for the
//! commands that carry credentials (IMAP `LOGIN` and `AUTHENTICATE`, POP3 `PASS`, `APOP` and
//! `AUTH`, SMTP `AUTH`), whose arguments are replaced by `<redacted>`.

use mailcat_codec::core::text::escape_bytes;

/// The trace's `tracing` target.
pub const TARGET: &str = "mailcat::trace";

/// Longest part of one frame shown in the trace; the rest is summarised by its length.
const SHOWN: usize = 512;

/// How much of a client write the trace may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redaction {
    /// A command without secrets (commands that carry credentials are still caught).
    Normal,
    /// A secret in full (a SASL response, a password literal): nothing of it is shown, not even
    /// its length (which narrows the search for a password).
    Secret,
    /// Message data: only its length is shown (not secret, but not useful in a trace).
    Data,
}

/// Logs bytes the client sends.
pub(crate) fn client(bytes: &[u8], redaction: Redaction) {
    if !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        return;
    }
    match redaction {
        Redaction::Secret => tracing::debug!(target: TARGET, "C: <redacted>"),
        Redaction::Data => {
            tracing::debug!(target: TARGET, "C: <{} bytes of message data>", bytes.len());
        }
        Redaction::Normal => {
            for line in lines(bytes) {
                tracing::debug!(target: TARGET, "C: {}", show(&redact_credentials(line)));
            }
        }
    }
}

/// Logs bytes the server sent (one decoded frame).
pub(crate) fn server(bytes: &[u8]) {
    if !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        return;
    }
    let mut shown = 0;
    for line in lines(bytes) {
        if shown >= SHOWN {
            tracing::debug!(target: TARGET, "S: <{} more bytes>", bytes.len() - shown);
            return;
        }
        shown += line.len();
        tracing::debug!(target: TARGET, "S: {}", show(line));
    }
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|&b| b == b'\n')
}

fn show(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    if line.len() > SHOWN {
        format!(
            "{} <{} more bytes>",
            escape_bytes(&line[..SHOWN]),
            line.len() - SHOWN
        )
    } else {
        escape_bytes(line)
    }
}

/// Replaces the credentials in a command line by `<redacted>`, keeping the command (and the
/// SASL mechanism) visible. Lines without credentials come back unchanged.
pub fn redact_credentials(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    let words: Vec<&[u8]> = line.splitn(4, |&b| b == b' ').collect();
    let is = |i: usize, word: &str| {
        words
            .get(i)
            .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    // How many leading words stay visible.
    let keep = if is(0, "PASS") || is(0, "APOP") {
        1
    } else if is(0, "AUTH") || is(1, "LOGIN") {
        2 // AUTH MECHANISM [initial-response], or: tag LOGIN user password
    } else if is(1, "AUTHENTICATE") {
        3 // tag AUTHENTICATE MECHANISM [initial-response]
    } else {
        return Cow::Borrowed(line);
    };
    if words.len() <= keep {
        return Cow::Borrowed(line);
    }
    let mut out = words[..keep].join(&b' ');
    out.extend_from_slice(b" <redacted>");
    if line.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(line: &str) -> String {
        String::from_utf8(redact_credentials(line.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn credentials_are_redacted_in_every_protocol() {
        assert_eq!(
            redacted("A1 LOGIN alice s3cret\r\n"),
            "A1 LOGIN <redacted>\r\n"
        );
        assert_eq!(
            redacted("a2 login \"alice\" {6}\r\n"),
            "a2 login <redacted>\r\n"
        );
        assert_eq!(
            redacted("A1 AUTHENTICATE PLAIN AGFsaWNlAHMzY3JldA==\r\n"),
            "A1 AUTHENTICATE PLAIN <redacted>\r\n"
        );
        assert_eq!(redacted("PASS s3cret\r\n"), "PASS <redacted>\r\n");
        assert_eq!(
            redacted("APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
            "APOP <redacted>\r\n"
        );
        assert_eq!(
            redacted("AUTH XOAUTH2 dXNlcj1h\r\n"),
            "AUTH XOAUTH2 <redacted>\r\n"
        );
        assert_eq!(
            redacted("auth plain AGFsaWNl\r\n"),
            "auth plain <redacted>\r\n"
        );
    }

    #[test]
    fn other_lines_are_unchanged() {
        for line in [
            "A1 CAPABILITY\r\n",
            "A1 AUTHENTICATE PLAIN\r\n",
            "AUTH LOGIN\r\n",
            "EHLO client.example\r\n",
            "USER alice\r\n",
            "RETR 1\r\n",
        ] {
            assert_eq!(redacted(line), line);
        }
    }

    #[test]
    fn long_lines_are_cut_and_controls_escaped() {
        let shown = show(&[b'x'; 600]);
        assert!(shown.ends_with("<88 more bytes>"), "{shown}");
        assert_eq!(show(b"* OK \x1b[2J\r\n"), "* OK \\x1b[2J");
    }
}
