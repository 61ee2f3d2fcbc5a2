//! Reading the few header fields a message list shows (Date, From, Subject), with RFC 2047
//! encoded words decoded for display.

/// Date, From and Subject of a message, decoded for display.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderSummary {
    /// `Date:`, as written.
    pub date: Option<String>,
    /// `From:`, encoded words decoded.
    pub from: Option<String>,
    /// `Subject:`, encoded words decoded.
    pub subject: Option<String>,
}

/// Picks Date, From and Subject out of a header section (unfolding continuation lines).
pub fn summarize(header: &[u8]) -> HeaderSummary {
    let mut summary = HeaderSummary::default();
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // the end of the header section
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = fields.last_mut() {
                value.push(b' ');
                value.extend_from_slice(line.trim_ascii_start());
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            fields.push((
                line[..colon].to_ascii_lowercase(),
                line[colon + 1..].trim_ascii().to_vec(),
            ));
        }
    }
    for (name, value) in fields {
        let slot = match name.as_slice() {
            b"date" => &mut summary.date,
            b"from" => &mut summary.from,
            b"subject" => &mut summary.subject,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(decode_words(&value));
        }
    }
    summary
}

/// Decodes RFC 2047 encoded words (`=?UTF-8?B?...?=`, `=?ISO-8859-1?Q?...?=`); other text is
/// taken as UTF-8 (lossily). Charsets other than UTF-8, US-ASCII and ISO-8859-1 are left as
/// written. Whitespace between two encoded words is dropped, as the RFC says.
pub fn decode_words(value: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while !rest.is_empty() {
        if let Some((decoded, used)) = encoded_word(rest) {
            if after_word {
                // Drop the whitespace between two encoded words.
                let trimmed = out.trim_end_matches([' ', '\t']).len();
                out.truncate(trimmed);
            }
            out.push_str(&decoded);
            rest = &rest[used..];
            after_word = true;
            continue;
        }
        let next = rest[1..]
            .windows(2)
            .position(|w| w == b"=?")
            .map_or(rest.len(), |p| p + 1);
        let chunk = &rest[..next];
        if !chunk.iter().all(|b| b.is_ascii_whitespace()) {
            after_word = false;
        }
        out.push_str(&String::from_utf8_lossy(chunk));
        rest = &rest[next..];
    }
    out
}

/// `=?charset?encoding?text?=` at the start of `input`: the decoded text and the bytes used.
fn encoded_word(input: &[u8]) -> Option<(String, usize)> {
    let body = input.strip_prefix(b"=?")?;
    let end = body.windows(2).position(|w| w == b"?=")?;
    let word = std::str::from_utf8(&body[..end]).ok()?;
    let mut parts = word.splitn(3, '?');
    let (charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
    if text.contains(' ') {
        return None;
    }
    let charset = charset.split('*').next()?.to_ascii_lowercase(); // RFC 2231 language suffix
    let bytes = match encoding {
        "B" | "b" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?
        }
        "Q" | "q" => quoted_printable_word(text)?,
        _ => return None,
    };
    let decoded = match charset.as_str() {
        "utf-8" | "utf8" | "us-ascii" => String::from_utf8_lossy(&bytes).into_owned(),
        "iso-8859-1" | "latin1" => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => return None,
    };
    Some((decoded, end + 4))
}

fn quoted_printable_word(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rfc_2047_examples() {
        // RFC 2047 §8.
        assert_eq!(
            decode_words(b"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>"),
            "Keld Jørn Simonsen <keld@dkuug.dk>"
        );
        assert_eq!(
            decode_words(b"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"),
            "(ab)"
        );
        assert_eq!(decode_words(b"(=?ISO-8859-1?Q?a?= b)"), "(a b)");
        assert_eq!(decode_words(b"=?UTF-8?B?0J/RgNC40LLQtdGC?="), "Привет");
        assert_eq!(
            decode_words(b"=?koi8-r?B?8NLJ18XU?="),
            "=?koi8-r?B?8NLJ18XU?=",
            "unknown charsets stay as written"
        );
        assert_eq!(decode_words(b"plain = text ?="), "plain = text ?=");
    }

    #[test]
    fn summarizes_a_folded_header() {
        let header = b"Received: x\r\nSubject: =?UTF-8?Q?Caf=C3=A9?=\r\n and more\r\nFrom: Ann <ann@example.com>\r\nDate: Tue, 24 Nov 2026 10:01:02 +0100\r\n\r\nSubject: body, not header\r\n";
        let summary = summarize(header);
        assert_eq!(summary.subject.as_deref(), Some("Café and more"));
        assert_eq!(summary.from.as_deref(), Some("Ann <ann@example.com>"));
        assert_eq!(
            summary.date.as_deref(),
            Some("Tue, 24 Nov 2026 10:01:02 +0100")
        );
    }
}
