//! The autoconfig HTTPS fetch against a real TLS server on loopback (tests/src/https_server.rs):
//! bodies, statuses, redirects, limits, timeouts and certificates; then fetch and parse a
//! clientConfig file end to end.

use std::sync::Arc;
use std::time::Duration;

use mailcat_session::autoconfig::https::{self, HttpsError};
use mailcat_session::autoconfig::xml;
use mailcat_tests::https_server::{HttpsServer, Route};
use mailcat_transport::{Protocol, Security, TlsSettings};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX: usize = 64 * 1024;

fn trusting(server: &HttpsServer) -> Arc<rustls::ClientConfig> {
    TlsSettings::only_ca_file(server.ca_file())
        .client_config()
        .expect("client configuration")
}

fn url(server: &HttpsServer, path: &str) -> String {
    format!("https://localhost:{}{path}", server.port())
}

async fn get(server: &HttpsServer, path: &str) -> Result<Vec<u8>, HttpsError> {
    https::get(&url(server, path), trusting(server), TIMEOUT, MAX).await
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
    assert_eq!(get(&server, "/config.xml").await.expect("fetched"), body());
    assert_eq!(server.requests(), ["GET /config.xml HTTP/1.1"]);
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
async fn not_found_is_a_status_error() {
    let server = HttpsServer::start(vec![]);
    let err = get(&server, "/missing").await.expect_err("404");
    assert!(
        matches!(err, HttpsError::Status { status: 404, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("/missing") && text.contains("404"), "{text}");
}

#[tokio::test]
async fn a_relative_redirect_is_followed() {
    let server = HttpsServer::start(vec![
        Route::redirect("/old", 301, "/new/config.xml"),
        Route::redirect("/new/config.xml", 307, "final.xml"),
        Route::ok("/new/final.xml", "here"),
    ]);
    assert_eq!(get(&server, "/old").await.expect("fetched"), b"here");
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
    let fetched = https::get(&url(&first, "/a"), tls, TIMEOUT, MAX).await;
    assert_eq!(fetched.expect("followed"), b"b");
    assert_eq!(first.requests(), ["GET /a HTTP/1.1"]);
    assert_eq!(target.requests(), ["GET /b HTTP/1.1"]);
    // Trusting only the first server's CA, the second hop's certificate is refused.
    let fetched = https::get(&url(&first, "/a"), trusting(&first), TIMEOUT, MAX).await;
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
    ]);
    for path in ["/big", "/big-chunked"] {
        let result = https::get(&url(&server, path), trusting(&server), TIMEOUT, 4999).await;
        assert!(
            matches!(result, Err(HttpsError::TooLarge { limit: 4999, .. })),
            "{path}: {result:?}"
        );
    }
    let exact = https::get(&url(&server, "/fits"), trusting(&server), TIMEOUT, 5000).await;
    assert_eq!(exact.expect("exactly the limit"), body());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let server = HttpsServer::silent();
    let timeout = Duration::from_millis(500);
    let result = https::get(&url(&server, "/x"), trusting(&server), timeout, MAX).await;
    let err = result.expect_err("timeout");
    assert!(matches!(err, HttpsError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("0.5 s"), "{err}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = HttpsServer::start(vec![Route::ok("/config.xml", "x")]);
    let other = HttpsServer::start(vec![]);
    let result = https::get(&url(&server, "/config.xml"), trusting(&other), TIMEOUT, MAX).await;
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
    let tls = trusting(&server);
    let plain = format!("http://localhost:{}/x", server.port());
    let err = https::get(&plain, tls.clone(), TIMEOUT, MAX).await;
    assert!(matches!(err, Err(HttpsError::NotHttps { .. })), "{err:?}");
    let userinfo = format!("https://u:p@localhost:{}/x", server.port());
    let err = https::get(&userinfo, tls, TIMEOUT, MAX).await;
    assert!(matches!(err, Err(HttpsError::BadUrl { .. })), "{err:?}");
    assert!(server.requests().is_empty());
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
