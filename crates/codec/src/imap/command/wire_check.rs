//! A test oracle: reads encoded commands the way an IMAP server would, so tests and the fuzzer
//! can check that a user value never turns into a second command. Its input is the encoders'
//! own output, so a panic here is a bug found in the encoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Reads the bytes as a server would: lines up to CRLF, and `{N}` / `{N+}` at the end of a line
/// announcing N bytes of literal data that continue the same command. Returns the number of
/// complete commands and the literals' data.
pub(crate) fn server_read(wire: &[u8]) -> (usize, Vec<Vec<u8>>) {
    let mut commands = 0;
    let mut literals = Vec::new();
    let mut pos = 0;
    while pos < wire.len() {
        let rest = &wire[pos..];
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("every line ends with CRLF");
        let line = &rest[..end];
        pos += end + 2;
        let announced = line.strip_suffix(b"}").and_then(|l| {
            let open = l.iter().rposition(|&b| b == b'{')?;
            let digits = &l[open + 1..];
            let digits = digits.strip_suffix(b"+").unwrap_or(digits);
            std::str::from_utf8(digits).ok()?.parse::<usize>().ok()
        });
        match announced {
            Some(n) => {
                literals.push(wire[pos..pos + n].to_vec());
                pos += n;
            }
            None => commands += 1,
        }
    }
    (commands, literals)
}

/// Reads one `astring` at `pos` of a flattened command (atom, quoted or literal).
pub(crate) fn read_astring(wire: &[u8], pos: usize) -> (Vec<u8>, usize) {
    match wire[pos] {
        b'"' => {
            let mut out = Vec::new();
            let mut i = pos + 1;
            loop {
                match wire[i] {
                    b'\\' => {
                        out.push(wire[i + 1]);
                        i += 2;
                    }
                    b'"' => return (out, i + 1),
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
        }
        b'{' => {
            let close = pos + wire[pos..].iter().position(|&b| b == b'}').unwrap();
            let digits = std::str::from_utf8(&wire[pos + 1..close]).unwrap();
            let n: usize = digits.trim_end_matches('+').parse().unwrap();
            let start = close + 3;
            (wire[start..start + n].to_vec(), start + n)
        }
        _ => {
            let end = pos
                + wire[pos..]
                    .iter()
                    .position(|&b| b == b' ' || b == b'\r')
                    .unwrap();
            (wire[pos..end].to_vec(), end)
        }
    }
}
