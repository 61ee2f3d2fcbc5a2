//! The header section of a message on stdin (RFC 5322 §2.2): read into memory (at most
//! [`MAX_HEADER`] bytes), looked at (To/Cc/Bcc, Date, Message-ID) and written out again without
//! Bcc. The body is never read here: it is streamed from where the header section ends.
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

/// The largest header section read into memory: 1 MiB. A larger one is refused (exit 65).
pub const MAX_HEADER: usize = 1024 * 1024;

/// Why a header section could not be read.
#[derive(Debug)]
pub enum HeaderError {
    /// More than [`MAX_HEADER`] bytes before the end of the header section.
    TooLarge,
    /// Reading stdin failed.
    Io(io::Error),
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

/// A header section read from stdin.
#[derive(Debug, Default)]
pub struct Header {
    /// The fields in order.
    pub fields: Vec<Field>,
    /// The first body line, when the section ended without an empty line before it.
    body_prefix: Vec<u8>,
    /// The bytes read from the input: the body continues right after them.
    pub consumed: u64,
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
pub fn read<R: BufRead>(input: &mut R) -> Result<Header, HeaderError> {
    let mut header = Header::default();
    let mut first = true;
    loop {
        let mut line = Vec::new();
        let room = (MAX_HEADER as u64 + 1).saturating_sub(header.consumed);
        let n = io::Read::take(&mut *input, room)
            .read_until(b'\n', &mut line)
            .map_err(HeaderError::Io)?;
        if n == 0 {
            return Ok(header);
        }
        header.consumed += n as u64;
        if header.consumed > MAX_HEADER as u64 {
            return Err(HeaderError::TooLarge);
        }
        if is_empty_line(&line) {
            return Ok(header);
        }
        if std::mem::take(&mut first) && line.starts_with(b"From ") {
            continue;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match (continuation, header.fields.last_mut(), field_name(&line)) {
            (true, Some(field), _) => field.raw.extend_from_slice(&line),
            (false, _, Some(name_len)) => {
                header.fields.push(Field {
                    raw: line,
                    name_len,
                });
            }
            _ => {
                header.body_prefix = line;
                return Ok(header);
            }
        }
    }
}

impl Header {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> (Header, Vec<u8>) {
        let mut input = text;
        let header = read(&mut input).expect("reads");
        assert_eq!(header.consumed as usize, text.len() - input.len());
        (header, input.to_vec())
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
        assert!(matches!(
            read(&mut big.as_slice()),
            Err(HeaderError::TooLarge)
        ));
        let mut exact = b"X-Big: ".to_vec();
        exact.resize(MAX_HEADER - 2, b'a');
        exact.extend_from_slice(b"\n\nbody");
        let (header, body) = parse(&exact);
        assert_eq!(header.consumed, MAX_HEADER as u64);
        assert_eq!(body, b"body");
    }
}
