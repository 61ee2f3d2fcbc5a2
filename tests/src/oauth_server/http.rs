//! Just enough HTTP/1.1 for the mock authorization server: one request per connection (the
//! answer says `Connection: close`), a bounded head and body, `application/x-www-form-urlencoded`
//! decoding, and the answers the endpoints give.

use std::io::{self, Read};
use std::time::Instant;

/// The most of a request head the server reads.
const MAX_HEAD: usize = 16 * 1024;

/// The most of a request body the server reads.
const MAX_BODY: usize = 64 * 1024;

/// One request the server received, as the request log keeps it. A test server: client
/// secrets, codes and tokens are recorded as they came.
#[derive(Debug, Clone)]
pub struct Request {
    /// When the head had arrived.
    pub at: Instant,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query (`/token`).
    pub path: String,
    /// The query's fields, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers as received (names as sent).
    pub headers: Vec<(String, String)>,
    /// The body's fields when it is `application/x-www-form-urlencoded`, decoded, in order.
    pub form: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Request {
    /// A field of the form body, or else of the query: the value of the first field named
    /// `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .chain(&self.query)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body was declared `application/x-www-form-urlencoded`.
    pub(crate) fn is_form(&self) -> bool {
        self.header("content-type").is_some_and(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    }
}

/// Why a request could not be read: the status to answer with, and why.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection failed or the client left; nothing to answer.
    Io(io::Error),
    /// A request the server will not take.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads one request: the head up to the blank line, then `Content-Length` bytes of body.
pub(crate) fn read_request(stream: &mut impl Read) -> Result<Request, ReadError> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > MAX_HEAD {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let at = Instant::now();
    let head = std::str::from_utf8(&buffer[..head_end])
        .map_err(|_| ReadError::Bad(400, "request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(505, "only HTTP/1.x"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header line"));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, parse_form(query.as_bytes())),
        None => (target, Vec::new()),
    };
    let mut request = Request {
        at,
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        headers,
        form: Vec::new(),
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(411, "send the body with Content-Length"));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(value) => value
            .parse::<usize>()
            .map_err(|_| ReadError::Bad(400, "malformed Content-Length"))?,
    };
    if length > MAX_BODY {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    let mut body = buffer.split_off(head_end + 4);
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    if request.is_form() {
        request.form = parse_form(&body);
    }
    request.body = body;
    Ok(request)
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte); a malformed
/// escape is kept as it is.
pub(crate) fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|&b| b == b'&')
        .filter(|field| !field.is_empty())
        .map(|field| {
            let (name, value) = match field.iter().position(|&b| b == b'=') {
                Some(at) => (&field[..at], &field[at + 1..]),
                None => (field, &b""[..]),
            };
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Decodes one form-encoded component.
pub(crate) fn percent_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len()
                && input[i + 1].is_ascii_hexdigit()
                && input[i + 2].is_ascii_hexdigit() =>
            {
                out.push(hex_value(input[i + 1]) << 4 | hex_value(input[i + 2]));
                i += 3;
                continue;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Encodes `input` for a query or form value: everything but the RFC 3986 unreserved
/// characters is `%XX`.
pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for &byte in input.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `name=value&…`, each part encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A complete answer, ready to write.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// `status` with a JSON body, not to be cached (RFC 6749 §5.1).
    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![
                ("Content-Type", "application/json;charset=UTF-8".to_owned()),
                ("Cache-Control", "no-store".to_owned()),
                ("Pragma", "no-cache".to_owned()),
            ],
            body: value.to_string().into_bytes(),
        }
    }

    /// An OAuth2 error answer (RFC 6749 §5.2): `{"error", "error_description"}`.
    pub(crate) fn error(status: u16, error: &str, description: &str) -> Self {
        Self::json(
            status,
            &serde_json::json!({"error": error, "error_description": description}),
        )
    }

    /// `status` with an HTML page.
    pub(crate) fn html(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", "text/html;charset=UTF-8".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// `302 Found` to `location`.
    pub(crate) fn redirect(location: String) -> Self {
        Self {
            status: 302,
            headers: vec![("Location", location)],
            body: Vec::new(),
        }
    }

    /// The bytes on the wire.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                self.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&self.body);
        out
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Whatever",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_takes_plus_and_escapes() {
        assert_eq!(
            parse_form(b"a=1+2&b=%2Fx%3d&c&d=%zz&e=%4"),
            vec![
                ("a".to_owned(), "1 2".to_owned()),
                ("b".to_owned(), "/x=".to_owned()),
                ("c".to_owned(), String::new()),
                ("d".to_owned(), "%zz".to_owned()),
                ("e".to_owned(), "%4".to_owned()),
            ]
        );
        let value = "http://127.0.0.1:1234/cb?x=y z&ä";
        assert_eq!(
            parse_form(form(&[("v", value)]).as_bytes()),
            vec![("v".to_owned(), value.to_owned())]
        );
    }
}
