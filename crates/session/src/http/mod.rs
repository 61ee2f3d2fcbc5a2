//! The HTTPS client of mailcat: autoconfig files (GET) and, for OAuth2, token and
//! device-authorization endpoints (POST of a form).
//!
//! HTTP/1.1 by hyper's connection API over the caller's [`rustls::ClientConfig`], so the
//! account's trust settings (a private CA file, pinned certificates) apply as they do to the
//! mail servers. One request per connection: these requests are few and far apart, so there is
//! no pool to keep, and nothing of one request can leak into the next.
//!
//! What every request gets:
//! - `https://` only: an `http://` URL is refused before anything is sent
//!   ([`HttpsError::NotHttps`]), and so is a redirect to one. A token endpoint must never see
//!   a secret in clear text.
//! - The server's certificate verified by the given configuration, unchanged (SNI: the host);
//!   ALPN offers `http/1.1` only.
//! - One deadline ([`HttpClient::with_timeout`]) for everything: DNS, connect, TLS, request,
//!   headers, body, and every redirect followed.
//! - Bounded memory: the status line and headers at most [`MAX_HEAD`] bytes and
//!   [`MAX_HEADERS`] lines, the body at most [`HttpClient::with_max_body`] bytes, refused as
//!   soon as it is known to be larger (a `Content-Length` over the limit before any of the
//!   body is read, a body without one as soon as it passes the limit).
//! - Traces (`tracing`, level debug) name the method, the URL without its query, and the
//!   status; never a header, a form value or a body, which may hold codes and tokens.

mod error;
mod url;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use self::error::HttpsError;
pub(crate) use self::url::percent_encode;
pub(crate) use self::url::Url;

/// How many redirects a GET follows before giving up.
pub(crate) const MAX_REDIRECTS: usize = 3;

/// The most the status line and headers of a response may take (hyper's `max_buf_size`, which
/// also bounds each read of the body).
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// The most header lines a response may have.
pub(crate) const MAX_HEADERS: usize = 100;

/// The deadline of a request unless [`HttpClient::with_timeout`] says otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest body accepted unless [`HttpClient::with_max_body`] says otherwise: far more
/// than an autoconfig file or a token response takes.
pub(crate) const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The `Content-Type` of [`HttpClient::post_form`].
const FORM: &str = "application/x-www-form-urlencoded";

/// An HTTPS client: a TLS configuration, a deadline per request and a body limit. Cheap to
/// clone; holds no connection between requests.
#[derive(Clone)]
pub(crate) struct HttpClient {
    /// The caller's configuration with ALPN set to `http/1.1`.
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max_body: usize,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client whose certificates are verified by `tls` (the same trust as the mail
    /// connections), with a deadline of [`DEFAULT_TIMEOUT`] and a body limit of
    /// [`DEFAULT_MAX_BODY`]. The configuration is copied to offer ALPN `http/1.1`; the
    /// caller's is left as it is.
    pub(crate) fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        let mut config = rustls::ClientConfig::clone(&tls);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: Arc::new(config),
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The deadline of each request, everything included (redirects too).
    pub(crate) fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest body accepted, in bytes.
    pub(crate) fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// GETs `url` (`Accept: */*`), following up to [`MAX_REDIRECTS`] redirects (301, 302,
    /// 303, 307, 308), to `https://` only. Returns the final response whatever its status;
    /// [`Response::require_ok`] turns anything but 200 into an error.
    #[cfg(test)]
    pub(crate) async fn get(&self, url: &str) -> Result<Response, HttpsError> {
        self.get_accepting(url, "*/*").await
    }

    /// [`get`](Self::get) with another `Accept` header, such as `application/xml`.
    ///
    /// # Panics
    /// If `accept` is not a valid header value (visible ASCII and spaces): it is meant to be a
    /// constant of the caller's.
    pub(crate) async fn get_accepting(
        &self,
        url: &str,
        accept: &'static str,
    ) -> Result<Response, HttpsError> {
        let accept = HeaderValue::from_static(accept);
        let deadline = Instant::now() + self.timeout;
        self.within(url, deadline, self.follow(url, accept, deadline))
            .await
    }

    /// POSTs `form` to `url` as `application/x-www-form-urlencoded`, with
    /// `Accept: application/json`, as OAuth2 token and device endpoints want (RFC 6749 §4.1.3,
    /// RFC 8628 §3.1). Redirects are not followed: a 3xx comes back as the response, and so
    /// does any other status (an OAuth2 error is a 400 with a JSON body).
    ///
    /// The form values are sent and nowhere else: not traced, not in any error.
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Response, HttpsError> {
        let deadline = Instant::now() + self.timeout;
        let exchange = async {
            let parsed = Url::parse(url)?;
            let body = encode_form(form);
            let request = build_request(
                Method::POST,
                &parsed,
                HeaderValue::from_static("application/json"),
                Some(body),
            )?;
            match self.exchange(&parsed, request, false, deadline).await? {
                Answer::Final(response) => Ok(response),
                // Not reached: redirects are only reported when following them.
                Answer::Redirect(_) => Err(HttpsError::Malformed {
                    url: parsed.to_string(),
                    reason: "a redirect where none was expected".into(),
                }),
            }
        };
        self.within(url, deadline, exchange).await
    }

    /// Runs `work` until `deadline` at most.
    async fn within<T>(
        &self,
        url: &str,
        deadline: Instant,
        work: impl Future<Output = Result<T, HttpsError>>,
    ) -> Result<T, HttpsError> {
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(HttpsError::Timeout {
                url: url.to_owned(),
                after: self.timeout,
            }),
        }
    }

    /// GETs `first`, following redirects.
    async fn follow(
        &self,
        first: &str,
        accept: HeaderValue,
        deadline: Instant,
    ) -> Result<Response, HttpsError> {
        let mut url = Url::parse(first)?;
        let mut redirects = 0;
        loop {
            let request = build_request(Method::GET, &url, accept.clone(), None)?;
            match self.exchange(&url, request, true, deadline).await? {
                Answer::Final(response) => return Ok(response),
                Answer::Redirect(location) => {
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

    /// One request on a new connection: resolve, connect, TLS, send, read the head and, unless
    /// it is a redirect to follow, the body.
    async fn exchange(
        &self,
        url: &Url,
        request: Request<Full<Bytes>>,
        follow_redirects: bool,
        deadline: Instant,
    ) -> Result<Answer, HttpsError> {
        let shown = url.to_string();
        let traced = url.without_query();
        tracing::debug!(method = %request.method(), url = %traced, "https: request");
        let tcp = connect(url, &shown, deadline).await?;
        let server_name =
            ServerName::try_from(url.host().to_owned()).map_err(|e| HttpsError::BadUrl {
                url: shown.clone(),
                reason: format!("{:?} is not a valid TLS server name: {e}", url.host()),
            })?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
            .connect(server_name, tcp)
            .await
            .map_err(|e| error::handshake_error(&shown, e))?;
        exchange_over(
            tls,
            &shown,
            &traced,
            request,
            follow_redirects,
            self.max_body,
        )
        .await
    }
}

/// One request over `io` (the TLS stream): send it, read the head and, unless it is a redirect
/// to follow, the body (at most `max_body` bytes). `shown` is the URL for messages, `traced`
/// the same without its query.
async fn exchange_over<IO>(
    io: IO,
    shown: &str,
    traced: &str,
    request: Request<Full<Bytes>>,
    follow_redirects: bool,
    max_body: usize,
) -> Result<Answer, HttpsError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let shown = shown.to_owned();
    let (mut sender, connection) = http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| error::exchange_error(&shown, e))?;
    let talk = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        tracing::debug!(url = %traced, status, "https: response");
        if follow_redirects && matches!(status, 301 | 302 | 303 | 307 | 308) {
            let location = response
                .headers()
                .get(header::LOCATION)
                .ok_or_else(|| format!("status {status} without a Location header"))?;
            let location = std::str::from_utf8(location.as_bytes())
                .map_err(|_| "a Location header that is not UTF-8".to_owned())?;
            return Ok(Answer::Redirect(location.to_owned()));
        }
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| response.status().canonical_reason().map(str::to_owned))
            .unwrap_or_default();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(response.into_body(), max_body).await?;
        Ok(Answer::Final(Response {
            status,
            reason,
            content_type,
            body,
            url: shown.clone(),
        }))
    };
    drive(connection, talk)
        .await
        .map_err(|failure| match failure {
            Failure::Hyper(e) => error::exchange_error(&shown, e),
            Failure::Malformed(reason) => HttpsError::Malformed {
                url: shown.clone(),
                reason,
            },
            Failure::TooLarge => HttpsError::TooLarge {
                url: shown.clone(),
                limit: max_body,
            },
        })
}

/// Fuzzing: one GET to `https://auth.example.com/token?code=1`, answered by `server` (its
/// bytes arrive `read_size` at a time, then the connection ends), read as [`HttpClient`] reads
/// an answer over TLS. The response, or a redirect's `Location` as `Err`; and what was written.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_exchange(
    server: &[u8],
    read_size: usize,
    follow_redirects: bool,
    max_body: usize,
) -> (Result<Result<Response, String>, HttpsError>, Vec<u8>) {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A server that answers once the request's head was written.
    struct Scripted<'a> {
        rest: &'a [u8],
        read_size: usize,
        written: Vec<u8>,
        reader: Option<std::task::Waker>,
    }
    impl tokio::io::AsyncRead for Scripted<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if !self.written.windows(4).any(|w| w == b"\r\n\r\n") {
                self.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = self.read_size.min(buf.remaining()).min(self.rest.len());
            let (now, later) = self.rest.split_at(n);
            buf.put_slice(now);
            self.rest = later;
            Poll::Ready(Ok(()))
        }
    }
    impl tokio::io::AsyncWrite for Scripted<'_> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(buf);
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
    }
    let url = Url::parse("https://auth.example.com/token?code=1").expect("a valid URL");
    let request = build_request(Method::GET, &url, HeaderValue::from_static("*/*"), None)
        .expect("a valid request");
    let mut io = Scripted {
        rest: server,
        read_size: read_size.max(1),
        written: Vec::new(),
        reader: None,
    };
    let answer = RUNTIME.with(|runtime| {
        runtime.block_on(exchange_over(
            &mut io,
            &url.to_string(),
            &url.without_query(),
            request,
            follow_redirects,
            max_body,
        ))
    });
    let answer = answer.map(|answer| match answer {
        Answer::Final(response) => Ok(response),
        Answer::Redirect(location) => Err(location),
    });
    (answer, io.written)
}

/// A response, whatever its status.
///
/// Its `Debug` shows the body's length only: a token endpoint's body is a secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase as sent, or the standard one for the status when the server sent
    /// that or none.
    pub reason: String,
    /// The `Content-Type` header, if there is one (and it is ASCII).
    pub content_type: Option<String>,
    /// The body, at most the client's body limit.
    pub body: Vec<u8>,
    /// The URL that answered: the one asked for, or the last redirect's.
    pub url: String,
}

impl Response {
    /// The response if its status is 200, else [`HttpsError::Status`]: for callers that have
    /// no use for any other answer (autoconfig files).
    pub(crate) fn require_ok(self) -> Result<Self, HttpsError> {
        if self.status == 200 {
            Ok(self)
        } else {
            Err(HttpsError::Status {
                url: self.url,
                status: self.status,
                reason: self.reason,
            })
        }
    }

    /// Whether the `Content-Type` is JSON (`application/json`, parameters aside), as an OAuth2
    /// endpoint's answers must be (RFC 6749 §5.1).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn is_json(&self) -> bool {
        self.content_type.as_deref().is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        })
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("content_type", &self.content_type)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("url", &self.url)
            .finish()
    }
}

/// `form` as an `application/x-www-form-urlencoded` body (the WHATWG URL standard's
/// serializer: spaces as `+`, everything but `*-._` and alphanumerics percent-encoded).
fn encode_form(form: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

/// The request, with the headers every request has. One request per connection, so
/// `Connection: close`.
pub(crate) fn build_request(
    method: Method,
    url: &Url,
    accept: HeaderValue,
    form: Option<String>,
) -> Result<Request<Full<Bytes>>, HttpsError> {
    let mut builder = Request::builder()
        .method(method)
        .uri(url.target())
        .header(header::HOST, url.authority())
        .header(
            header::USER_AGENT,
            concat!("mailcat/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, accept)
        .header(header::CONNECTION, "close");
    if form.is_some() {
        builder = builder.header(header::CONTENT_TYPE, FORM);
    }
    let body = Full::new(Bytes::from(form.unwrap_or_default()));
    // The Url's invariants make every part valid; an error here would be a bug of the parser,
    // reported as a bad URL rather than a panic.
    builder.body(body).map_err(|e| HttpsError::BadUrl {
        url: url.to_string(),
        reason: format!("cannot make a request of it: {e}"),
    })
}

/// What one exchange brought back.
enum Answer {
    /// The response to return.
    Final(Response),
    /// A redirect to follow, to this `Location`.
    Redirect(String),
}

/// Why one exchange failed, before the URL is added.
enum Failure {
    Hyper(hyper::Error),
    Malformed(String),
    TooLarge,
}

impl From<hyper::Error> for Failure {
    fn from(error: hyper::Error) -> Self {
        Self::Hyper(error)
    }
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Self::Malformed(reason)
    }
}

/// Runs `talk` (send the request, read the answer) while driving the connection that carries
/// it. `talk` decides when it is over: once it has its answer the connection is dropped,
/// whatever it was doing. Should the connection fail, `talk` learns it from hyper; when what
/// it learns says less than the connection's own error (hyper tells a body reader only
/// "connection error"), the connection's is reported.
async fn drive<T, C>(
    connection: C,
    talk: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure>
where
    C: Future<Output = hyper::Result<()>>,
{
    let mut connection = pin!(connection);
    let mut talk = pin!(talk);
    let mut connection_ended = false;
    let mut connection_error = None;
    loop {
        tokio::select! {
            result = &mut talk => {
                return result.map_err(|failure| match (failure, connection_error) {
                    (Failure::Hyper(e), Some(c)) if !error::is_informative(&e) => {
                        Failure::Hyper(c)
                    }
                    (failure, _) => failure,
                });
            }
            ended = &mut connection, if !connection_ended => {
                connection_ended = true;
                connection_error = ended.err();
            }
        }
    }
}

/// Reads the body, refusing it as soon as it is known to be larger than `limit`: before
/// reading when its `Content-Length` says so, else as soon as what came passes the limit.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Vec<u8>, Failure> {
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    let announced = body.size_hint().lower();
    if announced > limit_u64 {
        return Err(Failure::TooLarge);
    }
    let mut out = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if data.len() > limit.saturating_sub(out.len()) {
                return Err(Failure::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Resolves the host and connects to each address in turn, each attempt given an equal share
/// of the time left until `deadline`, so that one silent address does not take it all.
async fn connect(url: &Url, shown: &str, deadline: Instant) -> Result<TcpStream, HttpsError> {
    let resolve_error = |source| HttpsError::Resolve {
        url: shown.to_owned(),
        host: url.host().to_owned(),
        source,
    };
    let addrs: Vec<_> = tokio::net::lookup_host((url.host(), url.port()))
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
        let share = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(left / share, TcpStream::connect(addr)).await;
        match attempt {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => last = e,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, format!("{addr} timed out")),
        }
    }
    Err(HttpsError::Connect {
        url: shown.to_owned(),
        host: url.host().to_owned(),
        port: url.port(),
        source: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_headers_they_should() {
        let url = Url::parse("https://h.example:8443/a?b=c").expect("url");
        let get = build_request(
            Method::GET,
            &url,
            HeaderValue::from_static("application/xml"),
            None,
        )
        .expect("request");
        assert_eq!(get.uri(), "/a?b=c");
        let headers: Vec<(String, String)> = get
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().expect("ASCII").to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                ("host", "h.example:8443"),
                ("user-agent", concat!("mailcat/", env!("CARGO_PKG_VERSION"))),
                ("accept", "application/xml"),
                ("connection", "close"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        let post = build_request(
            Method::POST,
            &url,
            HeaderValue::from_static("application/json"),
            Some("a=b".into()),
        )
        .expect("request");
        assert_eq!(post.method(), Method::POST);
        assert_eq!(post.headers()[header::CONTENT_TYPE], FORM);
        assert_eq!(post.body().size_hint().exact(), Some(3));
    }

    #[test]
    fn forms_are_encoded_as_browsers_do() {
        assert_eq!(
            encode_form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "a b+c/d=e&f"),
                ("scope", "https://mail.google.com/ offline_access"),
                ("name", "Jürgen*~"),
            ]),
            "grant_type=refresh_token&refresh_token=a+b%2Bc%2Fd%3De%26f\
             &scope=https%3A%2F%2Fmail.google.com%2F+offline_access&name=J%C3%BCrgen*%7E"
        );
        assert_eq!(encode_form(&[]), "");
    }

    #[test]
    fn require_ok_and_is_json() {
        let response = |status, content_type: Option<&str>| Response {
            status,
            reason: "Bad Request".into(),
            content_type: content_type.map(str::to_owned),
            body: b"{\"access_token\":\"secret\"}".to_vec(),
            url: "https://h.example/token".into(),
        };
        assert!(response(200, None).require_ok().is_ok());
        let err = response(400, None).require_ok().expect_err("400");
        assert_eq!(
            err.to_string(),
            "https://h.example/token: the server answered with status 400 (Bad Request)"
        );
        assert!(response(200, Some("application/json; charset=utf-8")).is_json());
        assert!(response(200, Some("Application/JSON")).is_json());
        assert!(!response(200, Some("text/html")).is_json());
        assert!(!response(200, None).is_json());
        let shown = format!("{:?}", response(200, None));
        assert!(
            !shown.contains("secret") && shown.contains("<25 bytes>"),
            "{shown}"
        );
    }

    #[test]
    fn debug_shows_no_configuration_internals() {
        let roots = rustls::RootCertStore::empty();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tls = Arc::new(tls);
        let client = HttpClient::new(Arc::clone(&tls)).with_max_body(7);
        assert!(
            tls.alpn_protocols.is_empty(),
            "the caller's config is unchanged"
        );
        assert_eq!(client.tls.alpn_protocols, [b"http/1.1".to_vec()]);
        assert_eq!(
            format!("{client:?}"),
            "HttpClient { timeout: 30s, max_body: 7, .. }"
        );
    }
}

/// The client against a real TLS server on loopback.
#[cfg(test)]
mod server_tests;
