//! The header section of a message to send (RFC 5322 §2.2): read into memory (at most
//! [`MAX_HEADER`] bytes), looked at (To/Cc/Bcc, Date, Message-ID) and written out again
//! completed: without Bcc, with `Date` and `Message-ID` when the message has none. The body is
//! never read here: it is streamed from where the header section ends.
//!
//! [`SmtpSession::send`](crate::SmtpSession::send) completes every message this way, so a
//! message an app sends through the library goes out as one sent by `mailcat send`, msmtp or
//! Postfix's sendmail; [`HeaderSection::completed`] gives the same bytes to an app that keeps
//! a copy (`mailcat send --save-copy`).
//!
//! - A field is `name ":" value` with continuation lines starting with a space or a tab
//!   (folding); a value is unfolded by removing the line breaks before those (§2.2.3).
//! - The section ends at the first empty line. As sendmail and Postfix do, it also ends at the
//!   first line that is not a field or a continuation (a message with no header at all): that
//!   line is the start of the body, and the empty line that should have come before it is
//!   added.
//! - A leading mbox `From ` line (the "envelope" line of a Unix mailbox) is dropped, as
//!   sendmail does.
//! - Line endings are kept as written (LF or CRLF); the SMTP layer turns them all into CRLF.

use std::io::{self, BufRead};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

pub use crate::headers::{decode_words, summarize, HeaderSummary};
use crate::utc::UtcTime;

/// The largest header section read into memory: 1 MiB. A larger one is refused.
pub const MAX_HEADER: usize = 1024 * 1024;

/// The fields removed from every message sent: they name the hidden recipients.
pub const REMOVED: [&str; 2] = ["Bcc", "Resent-Bcc"];

/// Why a header section could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum HeaderError {
    /// More than [`MAX_HEADER`] bytes before the end of the header section.
    TooLarge,
    /// Reading the message failed.
    Io(io::Error),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => write!(
                f,
                "the message's header section is larger than {} KiB (no empty line ends it): is it a message?",
                MAX_HEADER / 1024
            ),
            Self::Io(e) => write!(f, "cannot read the message: {e}"),
        }
    }
}

impl std::error::Error for HeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::TooLarge => None,
            Self::Io(e) => Some(e),
        }
    }
}

/// One field, as written: its lines with their line endings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    raw: Vec<u8>,
    name_len: usize,
}

impl Field {
    /// The field name as written (`To`, `cc` ...).
    pub fn name(&self) -> &[u8] {
        &self.raw[..self.name_len]
    }

    /// True when the name is `name`, ignoring case.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value, unfolded (line breaks before continuation lines removed), without the
    /// leading whitespace and the final line break; invalid UTF-8 replaced.
    pub fn value(&self) -> String {
        let value = &self.raw[self.name_len..];
        let colon = value.iter().position(|&b| b == b':').map_or(0, |i| i + 1);
        let value = &value[colon..];
        let unfolded: Vec<u8> = value
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        String::from_utf8_lossy(&unfolded).trim().to_owned()
    }
}

/// A header section, read with [`read`] or [`read_async`].
#[derive(Debug, Default)]
pub struct HeaderSection {
    /// The fields in order.
    fields: Vec<Field>,
    /// The first body line, when the section ended without an empty line before it.
    body_prefix: Vec<u8>,
    /// The bytes read from the input: the body continues right after them.
    consumed: u64,
    /// Those bytes' size as sent (line endings as CRLF), for SMTP's `SIZE=`.
    consumed_as_sent: u64,
    /// No more lines belong to the section.
    done: bool,
    /// The next line is the first one (an mbox `From ` line is dropped there only).
    started: bool,
}

/// A field name: printable ASCII except `:` (RFC 5322 §3.6.8), optionally followed by
/// whitespace before the colon (obsolete syntax, §4.5). Returns the name's length.
fn field_name(line: &[u8]) -> Option<usize> {
    let len = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')?;
    if len == 0 {
        return None;
    }
    let rest = &line[len..];
    let spaces = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    (rest.get(spaces) == Some(&b':')).then_some(len)
}

fn is_empty_line(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// Reads the header section from `input`, leaving it at the first byte of the body.
pub fn read<R: BufRead>(input: &mut R) -> Result<HeaderSection, HeaderError> {
    let mut header = HeaderSection::default();
    let mut line = Vec::new();
    while !header.done {
        line.clear();
        let n = io::Read::take(&mut *input, header.room())
            .read_until(b'\n', &mut line)
            .map_err(HeaderError::Io)?;
        header.push_line(&line, n)?;
    }
    Ok(header)
}

/// [`read`] for an async reader.
pub async fn read_async<R: AsyncBufRead + Unpin>(
    input: &mut R,
) -> Result<HeaderSection, HeaderError> {
    let mut header = HeaderSection::default();
    let mut line = Vec::new();
    while !header.done {
        line.clear();
        let n = (&mut *input)
            .take(header.room())
            .read_until(b'\n', &mut line)
            .await
            .map_err(HeaderError::Io)?;
        header.push_line(&line, n)?;
    }
    Ok(header)
}

impl HeaderSection {
    /// How many more bytes one line may take: one over the limit, to see it crossed.
    fn room(&self) -> u64 {
        (MAX_HEADER as u64 + 1).saturating_sub(self.consumed)
    }

    /// Takes the next line of the input (`n` bytes; 0 at its end).
    fn push_line(&mut self, line: &[u8], n: usize) -> Result<(), HeaderError> {
        if n == 0 {
            self.done = true;
            return Ok(());
        }
        self.consumed += n as u64;
        self.consumed_as_sent += crate::smtp::size_as_sent(line);
        if self.consumed > MAX_HEADER as u64 {
            return Err(HeaderError::TooLarge);
        }
        if is_empty_line(line) {
            self.done = true;
            return Ok(());
        }
        let first = !std::mem::replace(&mut self.started, true);
        if first && line.starts_with(b"From ") {
            return Ok(());
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match (continuation, self.fields.last_mut(), field_name(line)) {
            (true, Some(field), _) => field.raw.extend_from_slice(line),
            (false, _, Some(name_len)) => self.fields.push(Field {
                raw: line.to_vec(),
                name_len,
            }),
            _ => {
                self.body_prefix = line.to_vec();
                self.done = true;
            }
        }
        Ok(())
    }

    /// The fields in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// How many bytes of the input the section took: the body starts right after them.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The size the consumed bytes had as sent (CRLF line endings).
    pub(crate) fn consumed_as_sent(&self) -> u64 {
        self.consumed_as_sent
    }

    /// True when a field `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.is(name))
    }

    /// The unfolded values of every field `name`.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.fields.iter().filter(|f| f.is(name)).map(Field::value)
    }

    /// True when nothing was read at all.
    pub fn is_empty_input(&self) -> bool {
        self.consumed == 0
    }

    /// The header section as it is sent: every field but those named in `remove`, then
    /// `add` (`Name: value`, CRLF), then the empty line, then the first body line if the
    /// section ended without an empty line.
    pub fn rewrite(&self, remove: &[&str], add: &[String]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.consumed as usize + 256);
        for field in &self.fields {
            if remove.iter().any(|name| field.is(name)) {
                continue;
            }
            out.extend_from_slice(&field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
        for line in add {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body_prefix);
        out
    }

    /// The header section as the library sends it: without [`REMOVED`] (Bcc, Resent-Bcc), with
    /// `Date` (now, UTC) and `Message-ID` (in the domain of `sender`, the account's address)
    /// added when missing, as msmtp and Postfix's sendmail add them; cron's messages have
    /// neither.
    pub fn completed(&self, sender: &str) -> Vec<u8> {
        let mut added = Vec::new();
        if !self.has("Date") {
            added.push(format!("Date: {}", UtcTime::now().rfc5322()));
        }
        if !self.has("Message-ID") {
            added.push(format!("Message-ID: {}", new_message_id(sender)));
        }
        self.rewrite(&REMOVED, &added)
    }
}

/// A new, unique Message-ID in the domain of `address` (`<mailcat.SECS.NANOS.PID.RANDOM@domain>`);
/// `mailcat.invalid` when the address has no usable domain.
pub fn new_message_id(address: &str) -> String {
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d.trim())
        // Letters, digits, dots and hyphens only: nothing else may reach a header line.
        .filter(|d| {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .unwrap_or("mailcat.invalid");
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "<mailcat.{}.{:09}.{}.{:016x}@{domain}>",
        since.as_secs(),
        since.subsec_nanos(),
        std::process::id(),
        random_u64(since.subsec_nanos())
    )
}

/// 64 random bits from the kernel, else from the standard library's hash seed.
fn random_u64(nanos: u32) -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes))
        .is_ok()
    {
        return u64::from_le_bytes(bytes);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(nanos);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> (HeaderSection, Vec<u8>) {
        let mut input = text;
        let header = read(&mut input).expect("reads");
        assert_eq!(header.consumed as usize, text.len() - input.len());
        (header, input.to_vec())
    }

    #[test]
    fn message_ids_are_unique_and_in_the_accounts_domain() {
        let a = new_message_id("alice@example.test");
        let b = new_message_id("alice@example.test");
        assert_ne!(a, b);
        assert!(
            a.starts_with("<mailcat.") && a.ends_with("@example.test>"),
            "{a}"
        );
        assert!(new_message_id("").ends_with("@mailcat.invalid>"));
        let injected = new_message_id("a@b.org\r\nX-Evil: 1");
        assert!(
            injected.ends_with("@mailcat.invalid>") && !injected.contains(['\r', '\n']),
            "{injected}"
        );
    }

    #[test]
    fn completed_removes_bcc_and_adds_date_and_message_id_only_when_missing() {
        let (bare, _) = parse(b"To: a@x.test\nBcc: hidden@x.test\n\nbody\n");
        let out = String::from_utf8(bare.completed("me@x.test")).unwrap();
        assert!(out.starts_with("To: a@x.test\nDate: "), "{out}");
        assert!(out.contains("\r\nMessage-ID: <mailcat."), "{out}");
        assert!(
            out.ends_with("@x.test>\r\n\r\n") && !out.contains("hidden"),
            "{out}"
        );
        let (full, _) = parse(b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\n");
        assert_eq!(
            full.completed("me@x.test"),
            b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn the_async_reader_reads_the_same_section_and_leaves_the_body() {
        let text = b"From x Thu\nTo: a@x.test,\r\n b@y.test\r\nSubject: s\r\n\r\nbody\r\n";
        let mut input = tokio::io::BufReader::with_capacity(7, &text[..]);
        let header = read_async(&mut input).await.expect("reads");
        let (sync, body) = parse(text);
        assert_eq!(header.fields(), sync.fields());
        assert_eq!(header.consumed(), sync.consumed());
        let mut rest = Vec::new();
        AsyncReadExt::read_to_end(&mut input, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest, body);
    }

    #[test]
    fn fields_continuations_and_the_body_left_in_the_input() {
        let (header, body) = parse(
            b"To: a@x.test,\r\n  b@y.test\r\nSubject: hi\r\nCc:\tc@z.test\r\n\r\nbody\r\n.\r\n",
        );
        assert_eq!(header.fields.len(), 3);
        assert_eq!(
            header.values("to").collect::<Vec<_>>(),
            ["a@x.test,  b@y.test"]
        );
        assert_eq!(header.values("CC").collect::<Vec<_>>(), ["c@z.test"]);
        assert_eq!(body, b"body\r\n.\r\n");
    }

    #[test]
    fn bcc_is_removed_with_its_continuation_lines_and_lf_endings_are_kept() {
        let (header, _) = parse(
            b"From: me@x.test\nBcc: secret@x.test,\n\tother@y.test\nTo: a@x.test\nbcc : third@z.test\n\nbody\n",
        );
        assert_eq!(
            header.values("bcc").collect::<Vec<_>>(),
            ["secret@x.test,\tother@y.test", "third@z.test"]
        );
        let out = header.rewrite(&["Bcc", "Resent-Bcc"], &["Date: now".into()]);
        assert_eq!(out, b"From: me@x.test\nTo: a@x.test\nDate: now\r\n\r\n");
    }

    #[test]
    fn a_line_that_is_no_field_starts_the_body_after_an_added_empty_line() {
        let (header, body) = parse(b"Subject: no blank line\nthis is the body\nmore\n");
        assert_eq!(header.fields.len(), 1);
        assert_eq!(body, b"more\n");
        assert_eq!(
            header.rewrite(&[], &[]),
            b"Subject: no blank line\n\r\nthis is the body\n"
        );
        // No header at all.
        let (header, body) = parse(b"just text\n");
        assert!(header.fields.is_empty());
        assert_eq!(header.rewrite(&[], &[]), b"\r\njust text\n");
        assert!(body.is_empty());
        // A continuation line with nothing to continue is body too.
        let (header, _) = parse(b" indented\n");
        assert!(header.fields.is_empty());
    }

    #[test]
    fn mbox_from_line_dropped_eof_in_header_and_empty_input() {
        let (header, _) = parse(b"From alice@x.test Thu Jan  1 00:00:00 2026\nSubject: s\n\nb\n");
        assert_eq!(header.rewrite(&[], &[]), b"Subject: s\n\r\n");
        let (header, body) = parse(b"Subject: no end");
        assert_eq!(header.rewrite(&[], &[]), b"Subject: no end\r\n\r\n");
        assert!(body.is_empty());
        let (header, _) = parse(b"");
        assert!(header.is_empty_input());
    }

    #[test]
    fn a_header_section_over_1_mib_is_refused_but_exactly_1_mib_is_not() {
        let mut big = b"X-Big: ".to_vec();
        big.resize(MAX_HEADER + 10, b'a');
        big.extend_from_slice(b"\n\nbody");
        mailcat_tests::assert_matches!(read(&mut big.as_slice()), Err(HeaderError::TooLarge));
        let mut exact = b"X-Big: ".to_vec();
        exact.resize(MAX_HEADER - 2, b'a');
        exact.extend_from_slice(b"\n\nbody");
        let (header, body) = parse(&exact);
        assert_eq!(header.consumed, MAX_HEADER as u64);
        assert_eq!(body, b"body");
    }
}
