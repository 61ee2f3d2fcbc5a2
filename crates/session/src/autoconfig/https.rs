//! A minimal HTTPS GET for autoconfig files: HTTP/1.1 over rustls, one request per
//! connection, at most [`MAX_REDIRECTS`] redirects and only to `https://`, the whole operation
//! bounded by one timeout and the body by a byte limit.
//!
//! Certificates are verified by the caller's [`rustls::ClientConfig`], unchanged.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How many redirects are followed before giving up.
pub const MAX_REDIRECTS: usize = 3;

/// The most the status line and headers of a response may take.
const MAX_HEAD: usize = 16 * 1024;

/// The longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// Why a GET failed. Display gives the URL and what happened.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    /// The URL does not start with `https://`.
    #[error("{url}: not an https:// URL (only HTTPS is used)")]
    NotHttps {
        /// The URL.
        url: String,
    },
    /// The URL could not be understood.
    #[error("{url}: bad URL: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name could not be looked up.
    #[error("{url}: could not look up {host}: {source}")]
    Resolve {
        /// The URL.
        url: String,
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No address of the host accepted a TCP connection.
    #[error("{url}: could not connect to {host} port {port}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The last address's error.
        source: io::Error,
    },
    /// The server's certificate was refused.
    #[error("{url}: the server's certificate was refused: {reason}")]
    Certificate {
        /// The URL.
        url: String,
        /// Why (rustls' words).
        reason: String,
    },
    /// The TLS handshake failed for another reason.
    #[error("{url}: TLS handshake failed: {reason}")]
    Tls {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Sending the request or reading the response failed.
    #[error("{url}: connection failed: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The error.
        source: io::Error,
    },
    /// The whole operation, redirects included, took longer than the timeout.
    #[error("{url}: no complete answer within {}", secs(*after))]
    Timeout {
        /// The URL first asked for.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The answer was not 200 (nor a redirect).
    #[error(
        "{url}: the server answered with status {status}{}",
        reason_suffix(reason)
    )]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The reason phrase, as sent.
        reason: String,
    },
    /// The body is larger than allowed.
    #[error("{url}: the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The answer is not valid HTTP/1.1.
    #[error("{url}: malformed HTTP response: {reason}")]
    Malformed {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("{url}: more than {limit} redirects")]
    TooManyRedirects {
        /// The URL first asked for.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A redirect pointed to something other than `https://`.
    #[error("{url}: redirect to {location}, which is not https://: refused")]
    RedirectNotHttps {
        /// The URL that redirected.
        url: String,
        /// Where it pointed.
        location: String,
    },
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

/// Fetches `url` (https:// only) and returns the body of a 200 response.
///
/// Redirects (301, 302, 303, 307, 308) are followed up to [`MAX_REDIRECTS`] times, only to
/// `https://`. Everything, redirects included, must finish within `timeout`; a body over
/// `max_bytes` is refused as soon as that is known.
pub async fn get(
    url: &str,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, HttpsError> {
    let deadline = Instant::now() + timeout;
    match tokio::time::timeout_at(deadline, follow(url, tls, deadline, max_bytes)).await {
        Ok(result) => result,
        Err(_) => Err(HttpsError::Timeout {
            url: url.to_owned(),
            after: timeout,
        }),
    }
}

/// GETs `first`, following redirects.
async fn follow(
    first: &str,
    tls: Arc<rustls::ClientConfig>,
    deadline: Instant,
    max_bytes: usize,
) -> Result<Vec<u8>, HttpsError> {
    let mut url = Url::parse(first)?;
    let mut redirects = 0;
    loop {
        match fetch_once(&url, &tls, deadline, max_bytes).await? {
            Fetched::Body(body) => return Ok(body),
            Fetched::Redirect(location) => {
                if redirects == MAX_REDIRECTS {
                    return Err(HttpsError::TooManyRedirects {
                        url: first.to_owned(),
                        limit: MAX_REDIRECTS,
                    });
                }
                redirects += 1;
                url = url.join(&location)?;
            }
        }
    }
}

enum Fetched {
    Body(Vec<u8>),
    Redirect(String),
}

/// One request on one connection.
async fn fetch_once(
    url: &Url,
    tls: &Arc<rustls::ClientConfig>,
    deadline: Instant,
    max_bytes: usize,
) -> Result<Fetched, HttpsError> {
    let shown = url.to_string();
    tracing::debug!(url = %shown, "autoconfig: GET");
    let tcp = connect(url, &shown, deadline).await?;
    let server_name = ServerName::try_from(url.host.clone()).map_err(|e| HttpsError::BadUrl {
        url: shown.clone(),
        reason: format!("{:?} is not a valid TLS server name: {e}", url.host),
    })?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(server_name, tcp)
        .await
        .map_err(|e| tls_error(&shown, e))?;
    let io_error = |source| HttpsError::Io {
        url: shown.clone(),
        source,
    };
    stream
        .write_all(url.request().as_bytes())
        .await
        .map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;

    let mut reader = Reader::new(stream);
    let head = read_head(&mut reader)
        .await
        .map_err(|e| e.for_url(&shown, max_bytes))?;
    tracing::debug!(url = %shown, status = head.status, "autoconfig: response");
    match head.status {
        200 => {
            let body = read_body(&mut reader, &head, max_bytes)
                .await
                .map_err(|e| e.for_url(&shown, max_bytes))?;
            Ok(Fetched::Body(body))
        }
        301 | 302 | 303 | 307 | 308 => match head.location {
            Some(location) => Ok(Fetched::Redirect(location)),
            None => Err(HttpsError::Malformed {
                url: shown,
                reason: format!("status {} without a Location header", head.status),
            }),
        },
        status => Err(HttpsError::Status {
            url: shown,
            status,
            reason: head.reason,
        }),
    }
}

/// Resolves the host and connects to each address in turn, each attempt given an equal share
/// of the time left.
async fn connect(url: &Url, shown: &str, deadline: Instant) -> Result<TcpStream, HttpsError> {
    let resolve_error = |source| HttpsError::Resolve {
        url: shown.to_owned(),
        host: url.host.clone(),
        source,
    };
    let addrs: Vec<_> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(resolve_error)?
        .collect();
    if addrs.is_empty() {
        return Err(resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "no address found",
        )));
    }
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address tried");
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let share = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let attempt = tokio::time::timeout(left / share, TcpStream::connect(addr)).await;
        match attempt {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => last = e,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, format!("{addr} timed out")),
        }
    }
    Err(HttpsError::Connect {
        url: shown.to_owned(),
        host: url.host.clone(),
        port: url.port,
        source: last,
    })
}

/// A handshake error, told apart: certificate refused, other TLS failure, or the connection.
fn tls_error(url: &str, error: io::Error) -> HttpsError {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(e)) => HttpsError::Certificate {
            url: url.to_owned(),
            reason: e.to_string(),
        },
        Some(other) => HttpsError::Tls {
            url: url.to_owned(),
            reason: other.to_string(),
        },
        None => HttpsError::Tls {
            url: url.to_owned(),
            reason: error.to_string(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// URLs

/// An `https://` URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    /// Lowercase DNS name or IPv4 address.
    host: String,
    port: u16,
    /// Path and query, starting with `/`, every byte visible ASCII.
    target: String,
}

impl Url {
    /// Parses `https://host[:port][/path][?query][#fragment]`; the fragment is dropped.
    fn parse(url: &str) -> Result<Url, HttpsError> {
        let bad = |reason: &str| HttpsError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = match url.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
            _ => {
                return Err(HttpsError::NotHttps {
                    url: url.to_owned(),
                })
            }
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("a user name or password in the URL is refused"));
        }
        if authority.starts_with('[') {
            return Err(bad("IPv6 address literals are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, written)) => match written.parse::<u16>() {
                Ok(port) if port != 0 && written.bytes().all(|b| b.is_ascii_digit()) => {
                    (host, port)
                }
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
            None => (authority, 443),
        };
        if host.is_empty() {
            return Err(bad("no host name"));
        }
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && host.len() <= 253
            && !host
                .strip_suffix('.')
                .unwrap_or(host)
                .split('.')
                .any(|label| label.is_empty() || label.len() > 63);
        if !valid {
            return Err(bad(
                "the host is not a DNS name or IPv4 address (ASCII letters, digits, '-', '.')",
            ));
        }
        Ok(Url {
            host: host.to_ascii_lowercase(),
            port,
            target: request_target(target),
        })
    }

    /// The URL that `location` (absolute, scheme-relative, absolute-path or relative) names
    /// when read on this URL's page.
    fn join(&self, location: &str) -> Result<Url, HttpsError> {
        let location = location.trim();
        let scheme_end = location.find(':');
        let path_start = location.find(['/', '?', '#']);
        let has_scheme = match (scheme_end, path_start) {
            (Some(colon), Some(slash)) => colon < slash,
            (Some(_), None) => true,
            _ => false,
        } && location.split(':').next().is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        });
        let absolute = if has_scheme {
            location.to_owned()
        } else if location.starts_with("//") {
            format!("https:{location}")
        } else {
            let target = if location.starts_with('/') {
                location.to_owned()
            } else if location.starts_with('?') || location.starts_with('#') {
                let path = self.target.split('?').next().unwrap_or("/");
                format!("{path}{location}")
            } else {
                let path = self.target.split('?').next().unwrap_or("/");
                let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
                format!("{dir}{location}")
            };
            format!("https://{}{}", self.authority(), target)
        };
        Url::parse(&absolute).map_err(|e| match e {
            HttpsError::NotHttps { .. } => HttpsError::RedirectNotHttps {
                url: self.to_string(),
                location: location.to_owned(),
            },
            other => other,
        })
    }

    fn authority(&self) -> String {
        if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The request, headers and all.
    fn request(&self) -> String {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailcat/{}\r\n\
             Accept: application/xml, text/xml\r\nConnection: close\r\n\r\n",
            self.target,
            self.authority(),
            env!("CARGO_PKG_VERSION")
        )
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.authority(), self.target)
    }
}

/// Path and query as sent: `/` when empty, every byte outside visible ASCII percent-encoded
/// (so nothing in a URL can end the request line or add a header).
fn request_target(target: &str) -> String {
    let mut out = String::with_capacity(target.len() + 1);
    if !target.starts_with('/') {
        out.push('/');
    }
    out.push_str(&percent_encode(target, |b| (0x21..=0x7e).contains(&b)));
    out
}

/// `text` with every byte `keep` refuses percent-encoded (`%2B`).
pub(crate) fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Responses

/// A problem reading a response, before the URL is known to the message.
#[derive(Debug)]
enum ReadError {
    Io(io::Error),
    Malformed(String),
    TooLarge,
}

impl ReadError {
    fn for_url(self, url: &str, limit: usize) -> HttpsError {
        let url = url.to_owned();
        match self {
            ReadError::Io(source) => HttpsError::Io { url, source },
            ReadError::Malformed(reason) => HttpsError::Malformed { url, reason },
            ReadError::TooLarge => HttpsError::TooLarge { url, limit },
        }
    }
}

fn malformed(reason: impl Into<String>) -> ReadError {
    ReadError::Malformed(reason.into())
}

/// A stream with a read buffer.
struct Reader<S> {
    stream: S,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    fn new(stream: S) -> Self {
        Reader {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn unread(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Reads more bytes into the buffer; `Ok(false)` at the end of the stream.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.map_err(ReadError::Io)?;
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n > 0)
    }

    /// Reads up to and including the next LF; the line without CRLF or LF. Fails if the line
    /// is longer than `max` or the stream ends first.
    async fn line(&mut self, max: usize, what: &str) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(i) = self.unread().iter().position(|&b| b == b'\n') {
                let line = self.unread().get(..i).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                self.pos += i + 1;
                return Ok(line);
            }
            if self.unread().len() > max {
                return Err(malformed(format!("{what} longer than {max} bytes")));
            }
            if !self.fill().await? {
                return Err(malformed(format!("the connection ended inside the {what}")));
            }
        }
    }

    /// Appends exactly `n` bytes to `out`.
    async fn exact(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), ReadError> {
        while n > 0 {
            if self.unread().is_empty() && !self.fill().await? {
                return Err(malformed("the connection ended before the end of the body"));
            }
            let take = n.min(self.unread().len());
            out.extend_from_slice(self.unread().get(..take).unwrap_or_default());
            self.pos += take;
            n -= take;
        }
        Ok(())
    }
}

/// A response's status line and the headers that matter.
#[derive(Debug, Default)]
struct Head {
    status: u16,
    reason: String,
    content_length: Option<usize>,
    chunked: bool,
    location: Option<String>,
}

/// Reads the status line and headers (at most [`MAX_HEAD`] bytes in all), skipping interim
/// 1xx responses.
async fn read_head<S: AsyncRead + Unpin>(reader: &mut Reader<S>) -> Result<Head, ReadError> {
    let mut budget = MAX_HEAD;
    loop {
        let head = read_one_head(reader, &mut budget).await?;
        if !(100..200).contains(&head.status) {
            return Ok(head);
        }
    }
}

async fn read_one_head<S: AsyncRead + Unpin>(
    reader: &mut Reader<S>,
    budget: &mut usize,
) -> Result<Head, ReadError> {
    let too_long = || malformed(format!("status line and headers over {MAX_HEAD} bytes"));
    let status_line = reader.line(*budget, "status line and headers").await?;
    *budget = budget
        .checked_sub(status_line.len() + 2)
        .ok_or_else(too_long)?;
    let mut head = parse_status_line(&status_line)?;
    loop {
        let line = reader.line(*budget, "status line and headers").await?;
        *budget = budget.checked_sub(line.len() + 2).ok_or_else(too_long)?;
        if line.is_empty() {
            return Ok(head);
        }
        parse_header(&line, &mut head)?;
    }
}

fn parse_status_line(line: &[u8]) -> Result<Head, ReadError> {
    let shown = || String::from_utf8_lossy(line).into_owned();
    let bad = || malformed(format!("not an HTTP/1.x status line: {:?}", shown()));
    let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
    let (version, rest) = rest.split_first().ok_or_else(bad)?;
    if !version.is_ascii_digit() || rest.first() != Some(&b' ') {
        return Err(bad());
    }
    let code = rest.get(1..4).ok_or_else(bad)?;
    if !code.iter().all(u8::is_ascii_digit) || !matches!(rest.get(4), None | Some(b' ')) {
        return Err(bad());
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let reason = rest.get(5..).unwrap_or_default();
    Ok(Head {
        status,
        reason: String::from_utf8_lossy(reason).trim().to_owned(),
        ..Head::default()
    })
}

fn parse_header(line: &[u8], head: &mut Head) -> Result<(), ReadError> {
    let shown = || String::from_utf8_lossy(line).into_owned();
    if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return Err(malformed(format!("folded header line {:?}", shown())));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| malformed(format!("header line without a colon: {:?}", shown())))?;
    let name = line.get(..colon).unwrap_or_default();
    let value = line.get(colon + 1..).unwrap_or_default().trim_ascii();
    if name.eq_ignore_ascii_case(b"content-length") {
        let text = std::str::from_utf8(value).unwrap_or_default();
        let length = text
            .parse::<usize>()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| malformed(format!("bad Content-Length {:?}", shown())))?;
        if head.content_length.is_some_and(|l| l != length) {
            return Err(malformed("two different Content-Length headers"));
        }
        head.content_length = Some(length);
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        let codings = String::from_utf8_lossy(value).to_ascii_lowercase();
        let codings: Vec<&str> = codings
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        match codings.as_slice() {
            [] => {}
            ["chunked"] => head.chunked = true,
            _ => {
                return Err(malformed(format!(
                    "unsupported Transfer-Encoding {:?}",
                    codings.join(", ")
                )))
            }
        }
    } else if name.eq_ignore_ascii_case(b"location") {
        let location = std::str::from_utf8(value)
            .map_err(|_| malformed("a Location header that is not UTF-8"))?;
        head.location = Some(location.to_owned());
    }
    Ok(())
}

/// Reads the body as the head says: chunked, Content-Length, or until the connection closes.
async fn read_body<S: AsyncRead + Unpin>(
    reader: &mut Reader<S>,
    head: &Head,
    max_bytes: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    if head.chunked {
        loop {
            let line = reader.line(MAX_CHUNK_LINE, "chunk size line").await?;
            let size = parse_chunk_size(&line)?;
            if size == 0 {
                break;
            }
            if size > max_bytes.saturating_sub(body.len()) {
                return Err(ReadError::TooLarge);
            }
            reader.exact(size, &mut body).await?;
            if !reader.line(2, "chunk end").await?.is_empty() {
                return Err(malformed("a chunk longer than its size"));
            }
        }
        // Trailers, up to the empty line.
        let mut budget = MAX_HEAD;
        loop {
            let line = reader.line(budget, "trailers").await?;
            if line.is_empty() {
                return Ok(body);
            }
            budget = budget.saturating_sub(line.len() + 2);
        }
    } else if let Some(length) = head.content_length {
        if length > max_bytes {
            return Err(ReadError::TooLarge);
        }
        reader.exact(length, &mut body).await?;
        Ok(body)
    } else {
        // Until the connection closes; rustls reports a close without close_notify as an error,
        // so a body cut short by an attacker is not taken as whole.
        loop {
            let unread = reader.unread();
            if unread.len() > max_bytes.saturating_sub(body.len()) {
                return Err(ReadError::TooLarge);
            }
            body.extend_from_slice(unread);
            reader.pos = reader.buf.len();
            if !reader.fill().await? {
                return Ok(body);
            }
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, ReadError> {
    let bad = || {
        malformed(format!(
            "bad chunk size line {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let text = std::str::from_utf8(digits).map_err(|_| bad())?;
    usize::from_str_radix(text, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect(s)
    }

    #[test]
    fn urls_are_taken_apart() {
        assert_eq!(
            url("https://Autoconfig.Example.COM/mail/config-v1.1.xml?emailaddress=a@b.example#x"),
            Url {
                host: "autoconfig.example.com".into(),
                port: 443,
                target: "/mail/config-v1.1.xml?emailaddress=a@b.example".into(),
            }
        );
        assert_eq!(url("HTTPS://127.0.0.1:8443").target, "/");
        assert_eq!(url("https://127.0.0.1:8443").port, 8443);
        assert_eq!(url("https://h.example?q=1").target, "/?q=1");
        assert_eq!(
            url("https://h.example/a b\r\nX: y").target,
            "/a%20b%0D%0AX:%20y"
        );
        assert_eq!(
            url("https://h.example:444/x").to_string(),
            "https://h.example:444/x"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "http://h.example/",
            "ftp://h.example",
            "h.example/x",
            "",
            "https:/x",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(HttpsError::NotHttps { .. })),
                "{bad}"
            );
        }
        for bad in [
            "https://user:pw@h.example/",
            "https://h.example@evil.example/",
            "https:///path",
            "https://h.example:0/",
            "https://h.example:65536/",
            "https://h.example:/",
            "https://h.example:+44/",
            "https://[::1]/",
            "https://h_x.example/",
            "https://h..example/",
            "https://h.example\r\nX: y/",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(HttpsError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn locations_resolve_against_the_page() {
        let page = url("https://h.example:8443/dir/page.xml?x=1");
        let join = |l: &str| page.join(l).map(|u| u.to_string());
        assert_eq!(join("/other").unwrap(), "https://h.example:8443/other");
        assert_eq!(
            join("next.xml").unwrap(),
            "https://h.example:8443/dir/next.xml"
        );
        assert_eq!(
            join("?y=2").unwrap(),
            "https://h.example:8443/dir/page.xml?y=2"
        );
        assert_eq!(join("//o.example/p").unwrap(), "https://o.example/p");
        assert_eq!(
            join("https://o.example:1/").unwrap(),
            "https://o.example:1/"
        );
        for refused in [
            "http://o.example/",
            "HTTP://o.example",
            "ftp://o.example",
            "javascript:x",
        ] {
            assert!(
                matches!(page.join(refused), Err(HttpsError::RedirectNotHttps { .. })),
                "{refused}"
            );
        }
    }

    #[test]
    fn request_is_exact() {
        assert_eq!(
            url("https://h.example/a?b=c").request(),
            format!(
                "GET /a?b=c HTTP/1.1\r\nHost: h.example\r\nUser-Agent: mailcat/{}\r\n\
                 Accept: application/xml, text/xml\r\nConnection: close\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(url("https://h.example:8443/")
            .request()
            .contains("Host: h.example:8443\r\n"));
    }

    async fn response(bytes: &[u8], max: usize) -> Result<(Head, Vec<u8>), ReadError> {
        let mut reader = Reader::new(bytes);
        let head = read_head(&mut reader).await?;
        let body = read_body(&mut reader, &head, max).await?;
        Ok((head, body))
    }

    #[tokio::test]
    async fn bodies_are_read_in_all_three_framings() {
        let (head, body) = response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloIGNORED",
            5,
        )
        .await
        .unwrap();
        assert_eq!(
            (head.status, head.reason.as_str(), body.as_slice()),
            (200, "OK", &b"hello"[..])
        );
        let chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\
            Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-T: 1\r\n\r\n";
        let (_, body) = response(chunked, 15).await.unwrap();
        assert_eq!(body, b"hello, world!!!");
        let (_, body) = response(b"HTTP/1.0 200 OK\nServer: x\n\nuntil close", 11)
            .await
            .unwrap();
        assert_eq!(body, b"until close");
    }

    #[tokio::test]
    async fn limits_are_enforced() {
        let over = [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello!"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n3\r\nlo!\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\nhello!",
        ];
        for bytes in over {
            assert!(matches!(response(bytes, 5).await, Err(ReadError::TooLarge)));
        }
        let mut huge_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..2000 {
            huge_head.extend_from_slice(b"X-Padding: 0123456789\r\n");
        }
        assert!(matches!(
            response(&huge_head, 5).await,
            Err(ReadError::Malformed(m)) if m.contains("over")
        ));
    }

    #[tokio::test]
    async fn malformed_responses_are_errors() {
        for bytes in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SMTP 220 hello\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n",
        ] {
            let result = response(bytes, 100).await;
            assert!(
                matches!(result, Err(ReadError::Malformed(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn errors_say_url_and_what_happened() {
        let e = HttpsError::Status {
            url: "https://h.example/x".into(),
            status: 404,
            reason: "Not Found".into(),
        };
        assert_eq!(
            e.to_string(),
            "https://h.example/x: the server answered with status 404 (Not Found)"
        );
        let e = HttpsError::Timeout {
            url: "https://h.example/x".into(),
            after: Duration::from_millis(500),
        };
        assert_eq!(
            e.to_string(),
            "https://h.example/x: no complete answer within 0.5 s"
        );
    }
}
