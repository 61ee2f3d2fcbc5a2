//! mailcat's HTTPS client against a real TLS server on loopback (tests/src/https_server.rs):
//! bodies, statuses, redirects, limits, timeouts and certificates, GET and POST; then an
//! autoconfig file fetched and parsed end to end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::autoconfig::xml;
use crate::http::{HttpClient, HttpsError, Response};
use mailcat_tests::https_server::{End, HttpsServer, Route};
use mailcat_tests::trace_capture::TraceCapture;
use mailcat_transport::{Protocol, Security, TlsSettings};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX: usize = 64 * 1024;

/// How late a timeout may come on a busy 2-core machine: far less than the 10 s a server in
/// these tests waits before it gives up on an idle client.
const SLACK: Duration = Duration::from_secs(2);

fn trusting(server: &HttpsServer) -> Arc<rustls::ClientConfig> {
    TlsSettings::only_ca_file(server.ca_file())
        .client_config()
        .expect("client configuration")
}

/// A client that trusts `server`'s test CA.
fn client(server: &HttpsServer) -> HttpClient {
    HttpClient::new(trusting(server))
        .with_timeout(TIMEOUT)
        .with_max_body(MAX)
}

fn url(server: &HttpsServer, path: &str) -> String {
    format!("https://localhost:{}{path}", server.port())
}

/// A 200's body, as autoconfig asks for it.
async fn get(server: &HttpsServer, path: &str) -> Result<Vec<u8>, HttpsError> {
    let response = client(server).get(&url(server, path)).await?;
    Ok(response.require_ok()?.body)
}

/// A body long enough for many chunks.
fn body() -> Vec<u8> {
    (0..5000u32)
        .map(|i| b"0123456789abcdef"[(i % 16) as usize])
        .collect()
}

#[tokio::test]
async fn a_200_body_is_returned() {
    let server = HttpsServer::start(vec![Route::ok("/config.xml", body())]);
    let response = client(&server)
        .get(&url(&server, "/config.xml"))
        .await
        .expect("fetched");
    assert_eq!(
        (
            response.status,
            response.reason.as_str(),
            response.content_type.as_deref()
        ),
        (200, "OK", Some("application/xml"))
    );
    assert_eq!(response.body, body());
    assert_eq!(response.url, url(&server, "/config.xml"));
    assert_eq!(server.requests(), ["GET /config.xml HTTP/1.1"]);
    let request = &server.received()[0];
    let host = format!("localhost:{}", server.port());
    assert_eq!(request.header("host"), Some(host.as_str()));
    assert_eq!(request.header("accept"), Some("*/*"));
    assert_eq!(request.header("connection"), Some("close"));
}

#[tokio::test]
async fn a_chunked_body_is_returned() {
    let server = HttpsServer::start(vec![Route::ok("/config.xml", body()).chunked()]);
    assert_eq!(get(&server, "/config.xml").await.expect("fetched"), body());
}

#[tokio::test]
async fn query_is_sent_and_fragment_dropped() {
    let server = HttpsServer::start(vec![Route::ok("/mail/config-v1.1.xml?*", "x")]);
    let fetched = get(
        &server,
        "/mail/config-v1.1.xml?emailaddress=alice@example.com#ignored",
    )
    .await
    .expect("fetched");
    assert_eq!(fetched, b"x");
    assert_eq!(
        server.requests(),
        ["GET /mail/config-v1.1.xml?emailaddress=alice@example.com HTTP/1.1"]
    );
}

#[tokio::test]
async fn any_status_is_returned_and_require_ok_refuses_it() {
    let server = HttpsServer::start(vec![]);
    let response = client(&server)
        .get(&url(&server, "/missing"))
        .await
        .expect("an answer");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (404, &b"not found\n"[..])
    );
    let err = response.require_ok().expect_err("404");
    assert!(
        matches!(err, HttpsError::Status { status: 404, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("/missing") && text.contains("404 (Not Found)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_relative_redirect_is_followed() {
    let server = HttpsServer::start(vec![
        Route::redirect("/old", 301, "/new/config.xml"),
        Route::redirect("/new/config.xml", 307, "final.xml"),
        Route::ok("/new/final.xml", "here"),
    ]);
    let response = client(&server)
        .get(&url(&server, "/old"))
        .await
        .expect("fetched");
    assert_eq!(response.body, b"here");
    assert_eq!(response.url, url(&server, "/new/final.xml"));
    assert_eq!(
        server.requests(),
        [
            "GET /old HTTP/1.1",
            "GET /new/config.xml HTTP/1.1",
            "GET /new/final.xml HTTP/1.1"
        ]
    );
}

#[tokio::test]
async fn an_absolute_redirect_to_another_https_server_is_followed() {
    let target = HttpsServer::start(vec![Route::ok("/b", "b")]);
    // By IP address: the certificate names 127.0.0.1 too.
    let to = format!("https://127.0.0.1:{}/b", target.port());
    let first = HttpsServer::start(vec![Route::redirect("/a", 302, &to)]);
    // Each server has its own test CA: a client that trusts both.
    let both = std::env::temp_dir().join(format!(
        "mailcat-https-test-both-{}-{}.pem",
        std::process::id(),
        first.port()
    ));
    let pems = [first.ca_file(), target.ca_file()].map(|f| std::fs::read_to_string(f).expect("CA"));
    std::fs::write(&both, pems.concat()).expect("write both CAs");
    let tls = TlsSettings::only_ca_file(&both)
        .client_config()
        .expect("client configuration");
    let fetched = HttpClient::new(tls).get(&url(&first, "/a")).await;
    assert_eq!(fetched.expect("followed").body, b"b");
    assert_eq!(first.requests(), ["GET /a HTTP/1.1"]);
    assert_eq!(target.requests(), ["GET /b HTTP/1.1"]);
    // Trusting only the first server's CA, the second hop's certificate is refused.
    let fetched = client(&first).get(&url(&first, "/a")).await;
    assert!(
        matches!(fetched, Err(HttpsError::Certificate { .. })),
        "{fetched:?}"
    );
}

#[tokio::test]
async fn a_redirect_to_http_is_refused() {
    let server = HttpsServer::start(vec![Route::redirect(
        "/config.xml",
        302,
        "http://localhost/config.xml",
    )]);
    let err = get(&server, "/config.xml").await.expect_err("refused");
    assert!(
        matches!(err, HttpsError::RedirectNotHttps { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("http://localhost/config.xml"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "the http URL was not fetched");
}

#[tokio::test]
async fn a_redirect_without_location_is_malformed() {
    let server = HttpsServer::start(vec![Route {
        headers: Vec::new(),
        ..Route::redirect("/x", 302, "")
    }]);
    let err = get(&server, "/x").await.expect_err("malformed");
    assert!(
        matches!(&err, HttpsError::Malformed { reason, .. } if reason.contains("Location")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_redirect_loop_stops_after_three() {
    let server = HttpsServer::start(vec![Route::redirect("/loop", 302, "/loop")]);
    let err = get(&server, "/loop").await.expect_err("loop");
    assert!(
        matches!(err, HttpsError::TooManyRedirects { limit: 3, .. }),
        "{err:?}"
    );
    // The first request and three redirects followed.
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let server = HttpsServer::start(vec![
        Route::ok("/big", body()),
        Route::ok("/big-chunked", body()).chunked(),
        Route::ok("/fits", body()),
        Route::ok("/fits-chunked", body()).chunked(),
    ]);
    let at = |limit| client(&server).with_max_body(limit);
    for path in ["/big", "/big-chunked"] {
        let result = at(4999).get(&url(&server, path)).await;
        assert!(
            matches!(result, Err(HttpsError::TooLarge { limit: 4999, .. })),
            "{path}: {result:?}"
        );
    }
    for path in ["/fits", "/fits-chunked"] {
        let exact = at(5000).get(&url(&server, path)).await;
        assert_eq!(exact.expect("exactly the limit").body, body(), "{path}");
    }
}

#[tokio::test]
async fn a_large_content_length_is_refused_before_the_body_is_read() {
    // The head announces a gigabyte, then nothing comes: a client that waited for the body
    // would run into its timeout.
    let server = HttpsServer::start(vec![Route::ok("/huge", "")
        .header("Content-Length", "1000000000")
        .ending(End::Hang)]);
    let started = Instant::now();
    let result = client(&server).get(&url(&server, "/huge")).await;
    assert!(
        matches!(result, Err(HttpsError::TooLarge { limit: MAX, .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for the body"
    );
}

#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_limit() {
    // Chunks for as long as the client reads: only stopping at the limit ends it in time.
    let server = HttpsServer::start(vec![Route::ok("/endless", "start")
        .chunked()
        .ending(End::Endless)]);
    let started = Instant::now();
    let result = client(&server).get(&url(&server, "/endless")).await;
    assert!(
        matches!(result, Err(HttpsError::TooLarge { limit: MAX, .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "read past the limit"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_deadline() {
    let server = HttpsServer::silent();
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let result = client(&server)
        .with_timeout(timeout)
        .get(&url(&server, "/x"))
        .await;
    let elapsed = started.elapsed();
    let err = result.expect_err("timeout");
    assert!(matches!(err, HttpsError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("0.5 s"), "{err}");
    assert!(
        elapsed >= timeout && elapsed < timeout + SLACK,
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn the_deadline_covers_the_tls_handshake_and_the_body() {
    // TCP accepted (by the kernel's backlog), the ClientHello never answered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = HttpsServer::start(vec![
        // Half of the announced body, then a stall.
        Route::ok("/stalls", "12345")
            .header("Content-Length", "10")
            .ending(End::Hang),
        Route::ok("/stalls-chunked", "12345")
            .chunked()
            .ending(End::Hang),
    ]);
    let timeout = Duration::from_millis(500);
    let urls = [
        format!("https://127.0.0.1:{port}/"),
        url(&server, "/stalls"),
        url(&server, "/stalls-chunked"),
    ];
    for url in urls {
        let started = Instant::now();
        let result = client(&server).with_timeout(timeout).get(&url).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(result, Err(HttpsError::Timeout { .. })),
            "{url}: {result:?}"
        );
        assert!(elapsed < timeout + SLACK, "{url}: {elapsed:?}");
    }
    drop(listener);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = HttpsServer::start(vec![Route::ok("/config.xml", "x")]);
    let other = HttpsServer::start(vec![]);
    let result = client(&other).get(&url(&server, "/config.xml")).await;
    let err = result.expect_err("refused");
    assert!(matches!(err, HttpsError::Certificate { .. }), "{err:?}");
    let result = client(&other)
        .post_form(&url(&server, "/config.xml"), &[("code", "secret")])
        .await;
    let err = result.expect_err("refused");
    assert!(matches!(err, HttpsError::Certificate { .. }), "{err:?}");
    assert!(
        server.requests().is_empty(),
        "no request over an untrusted connection"
    );
}

#[tokio::test]
async fn not_https_and_bad_urls_are_refused_before_connecting() {
    let server = HttpsServer::start(vec![]);
    let client = client(&server);
    let plain = format!("http://localhost:{}/x", server.port());
    let err = client.get(&plain).await;
    assert!(matches!(err, Err(HttpsError::NotHttps { .. })), "{err:?}");
    let err = client.post_form(&plain, &[("a", "b")]).await;
    assert!(matches!(err, Err(HttpsError::NotHttps { .. })), "{err:?}");
    let userinfo = format!("https://u:p@localhost:{}/x", server.port());
    let err = client.get(&userinfo).await;
    assert!(matches!(err, Err(HttpsError::BadUrl { .. })), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn malformed_answers_are_malformed() {
    let server = HttpsServer::start(vec![
        Route::raw("/smtp", "220 smtp.example.com ESMTP\r\n"),
        Route::raw("/status", "HTTP/1.1 2000 OK\r\n\r\n"),
        Route::raw("/header", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
        Route::raw("/length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        Route::raw("/cut-head", "HTTP/1.1 200 OK\r\nContent-"),
        Route::raw("/nothing", ""),
        Route::raw(
            "/cut-body",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        ),
        Route::raw(
            "/cut-chunk",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n",
        ),
        Route::raw(
            "/bad-chunk",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ),
        Route::raw(
            "/huge-head",
            format!(
                "HTTP/1.1 200 OK\r\n{}\r\n",
                "X-Padding: 0123456789abcdef0123456789abcdef\r\n".repeat(400)
            ),
        ),
    ]);
    for path in [
        "/smtp",
        "/status",
        "/header",
        "/length",
        "/cut-head",
        "/nothing",
        "/cut-body",
        "/cut-chunk",
        "/bad-chunk",
        "/huge-head",
    ] {
        let result = client(&server).get(&url(&server, path)).await;
        assert!(
            matches!(result, Err(HttpsError::Malformed { .. })),
            "{path}: {result:?}"
        );
    }
    let huge = client(&server).get(&url(&server, "/huge-head")).await;
    let text = huge.expect_err("malformed").to_string();
    assert!(text.contains("over 16384 bytes"), "{text}");
}

#[tokio::test]
async fn a_form_is_posted_encoded() {
    let server = HttpsServer::start(vec![Route::json(
        "/token",
        200,
        r#"{"access_token":"at","token_type":"Bearer","expires_in":3600}"#,
    )]);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "M.C5 07/a+b=c&d"),
        ("redirect_uri", "http://127.0.0.1:41234/callback"),
        ("client_id", "00000000-1111-2222-3333-444444444444"),
        (
            "code_verifier",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ),
    ];
    let response = client(&server)
        .post_form(&url(&server, "/token"), &form)
        .await
        .expect("posted");
    assert_eq!(response.status, 200);
    assert!(response.is_json(), "{response:?}");
    assert_eq!(
        response.body,
        br#"{"access_token":"at","token_type":"Bearer","expires_in":3600}"#
    );
    let received = server.received();
    let [request] = received.as_slice() else {
        panic!("one request expected: {received:?}")
    };
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/token")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    let body = std::str::from_utf8(&request.body).expect("ASCII");
    assert_eq!(
        body,
        "grant_type=authorization_code&code=M.C5+07%2Fa%2Bb%3Dc%26d\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A41234%2Fcallback\
         &client_id=00000000-1111-2222-3333-444444444444\
         &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert_eq!(
        request.header("content-length"),
        Some(body.len().to_string().as_str())
    );
}

#[tokio::test]
async fn a_post_gets_any_status_back_and_follows_no_redirect() {
    let error = r#"{"error":"invalid_grant","error_description":"AADSTS70000: expired"}"#;
    let server = HttpsServer::start(vec![
        Route::json("/token", 400, error),
        Route::redirect("/moved", 307, "/token"),
    ]);
    let client = client(&server);
    let response = client
        .post_form(&url(&server, "/token"), &[("grant_type", "refresh_token")])
        .await
        .expect("an answer");
    assert_eq!(
        (
            response.status,
            response.reason.as_str(),
            response.is_json()
        ),
        (400, "Bad Request", true)
    );
    assert_eq!(response.body, error.as_bytes());
    let response = client
        .post_form(&url(&server, "/moved"), &[("grant_type", "refresh_token")])
        .await
        .expect("an answer");
    assert_eq!(response.status, 307);
    assert_eq!(server.requests().len(), 2, "the redirect was not followed");
}

#[test]
fn traces_show_method_url_and_status_but_no_form_query_or_body() {
    let server = HttpsServer::start(vec![Route::json(
        "/token?*",
        200,
        r#"{"access_token":"body-secret"}"#,
    )]);
    let capture = TraceCapture::start("trace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let response: Response = runtime
        .block_on(client(&server).post_form(
            &url(&server, "/token?query-secret=1"),
            &[("refresh_token", "form-secret"), ("client_id", "id")],
        ))
        .expect("posted");
    drop(runtime);
    assert_eq!(response.status, 200);
    let trace = capture.text();
    let token_url = url(&server, "/token");
    assert!(
        trace.contains("POST") && trace.contains(&token_url),
        "{trace}"
    );
    assert!(trace.contains("status=200"), "{trace}");
    for secret in ["form-secret", "query-secret", "body-secret"] {
        assert!(!trace.contains(secret), "{secret} in the trace: {trace}");
    }
}

#[tokio::test]
async fn a_client_config_is_fetched_and_parsed() {
    let file = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.com">
    <domain>example.com</domain>
    <displayName>Example Mail</displayName>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.example.com</hostname>
      <port>110</port>
      <socketType>plain</socketType>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.com</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#;
    let server = HttpsServer::start(vec![
        Route::redirect(
            "/.well-known/autoconfig/mail/config-v1.1.xml*",
            301,
            "/v1.1.xml",
        ),
        Route::ok("/v1.1.xml", file).chunked(),
    ]);
    let body = get(
        &server,
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob@example.com",
    )
    .await
    .expect("fetched");
    let config = xml::parse(&body, "bob@example.com").expect("parsed");
    assert_eq!(config.id.as_deref(), Some("example.com"));
    assert_eq!(config.incoming.len(), 1);
    let imap = &config.incoming[0];
    assert_eq!(
        (imap.protocol, imap.host.as_str(), imap.port, imap.security),
        (
            Protocol::Imap,
            "imap.example.com",
            993,
            Security::ImplicitTls
        )
    );
    assert_eq!(imap.username.as_deref(), Some("bob@example.com"));
    let smtp = &config.outgoing[0];
    assert_eq!(
        (smtp.protocol, smtp.port, smtp.security),
        (Protocol::Smtp, 587, Security::StartTls)
    );
    assert_eq!(
        config.skipped,
        ["pop3 pop.example.com:110 without TLS (socketType plain): left out"]
    );
}
