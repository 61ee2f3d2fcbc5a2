//! CRLF line framing with a maximum length.

use crate::DecodeError;

/// Finds the end of the line that starts at `buf[start..]`.
///
/// Returns the offset just past its CRLF, or [`DecodeError::Incomplete`] if no CRLF has arrived
/// yet and the line is still within `max_line` bytes (CRLF included), or
/// [`DecodeError::LineTooLong`] once it cannot be. A bare LF (not preceded by CR) is refused:
/// servers must end lines with CRLF, and accepting a bare LF is how response smuggling starts.
pub fn find_line_end(buf: &[u8], start: usize, max_line: usize) -> Result<usize, DecodeError> {
    let rest = &buf[start..];
    let window = if rest.len() > max_line {
        &rest[..max_line]
    } else {
        rest
    };
    match memchr::memchr(b'\n', window) {
        Some(0) => Err(DecodeError::Invalid {
            offset: start,
            expected: "CR before LF (bare LF line ending)",
        }),
        Some(i) if window[i - 1] != b'\r' => Err(DecodeError::Invalid {
            offset: start + i,
            expected: "CR before LF (bare LF line ending)",
        }),
        Some(i) => Ok(start + i + 1),
        None if rest.len() >= max_line => Err(DecodeError::LineTooLong {
            offset: start,
            limit: max_line,
        }),
        None => Err(DecodeError::Incomplete),
    }
}

/// Splits one whole line (with its CRLF) off the front of `buf`: `(line_without_crlf, consumed)`.
pub fn split_line(buf: &[u8], max_line: usize) -> Result<(&[u8], usize), DecodeError> {
    let end = find_line_end(buf, 0, max_line)?;
    Ok((&buf[..end - 2], end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_crlf() {
        assert_eq!(split_line(b"+OK hi\r\nrest", 100), Ok((&b"+OK hi"[..], 8)));
    }

    #[test]
    fn incomplete_without_crlf_or_with_lone_cr() {
        assert_eq!(split_line(b"+OK hi", 100), Err(DecodeError::Incomplete));
        assert_eq!(split_line(b"+OK hi\r", 100), Err(DecodeError::Incomplete));
    }

    #[test]
    fn too_long_once_the_limit_is_reached_without_crlf() {
        assert_eq!(
            split_line(b"0123456789", 10),
            Err(DecodeError::LineTooLong {
                offset: 0,
                limit: 10
            })
        );
        // Exactly at the limit, CRLF included, is fine.
        assert_eq!(split_line(b"01234567\r\n", 10), Ok((&b"01234567"[..], 10)));
        assert_eq!(
            split_line(b"012345678\r\n", 10),
            Err(DecodeError::LineTooLong {
                offset: 0,
                limit: 10
            })
        );
    }

    #[test]
    fn bare_lf_is_refused() {
        crate::assert_matches!(
            split_line(b"+OK\nx", 100),
            Err(DecodeError::Invalid { offset: 3, .. })
        );
        crate::assert_matches!(
            split_line(b"\n", 100),
            Err(DecodeError::Invalid { offset: 0, .. })
        );
    }
}
