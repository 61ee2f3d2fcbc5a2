//! The authorization-code flow with PKCE and a loopback redirect (RFC 6749 §4.1, RFC 7636,
//! RFC 8252 §7.3): the user signs in in a browser; the provider redirects the browser to
//! `http://127.0.0.1:<port>/`, where a listener of this process takes the code.
//!
//! The listener accepts one redirect that carries this sign-in's `state`, then closes. A
//! redirect with another state ends the sign-in (someone else tried to complete it);
//! requests that carry no sign-in at all (a favicon) are answered 404 and ignored.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::error::clean;
use super::pkce::{random_token, Pkce};
use super::{OAuth2, OAuth2Error, TokenSet};

/// How long one browser connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A sign-in waiting for the browser: open [`BrowserSignIn::url`], then pass this to
/// [`OAuth2::browser_finish`].
#[derive(Debug)]
pub struct BrowserSignIn {
    url: String,
    redirect_uri: String,
    state: String,
    pkce: Pkce,
    listener: TcpListener,
}

impl BrowserSignIn {
    /// The provider's sign-in page for this sign-in.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the provider sends the browser back: `http://127.0.0.1:<port>` (or `localhost`).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
}

impl OAuth2 {
    /// Opens the loopback listener on a random port and builds the sign-in URL (with PKCE
    /// S256 and a random `state`).
    pub async fn browser_start(&self) -> Result<BrowserSignIn, OAuth2Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(OAuth2Error::Listen)?;
        let port = listener.local_addr().map_err(OAuth2Error::Listen)?.port();
        // RFC 8252 §7.3; the provider says whether it wants the IP literal or "localhost"
        // (Microsoft's portal registers only the latter). The listener is on 127.0.0.1 either way.
        let redirect_uri = self.provider.redirect_uri(port);
        let state = random_token()?;
        let pkce = Pkce::new()?;
        let provider = &self.provider;
        let scope = provider.scope_param();
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", pkce.challenge())
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = &self.login_hint {
            query.append_pair("login_hint", hint);
        }
        for (name, value) in &provider.extra_authorize_params {
            query.append_pair(name, value);
        }
        let separator = if provider.authorize_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{separator}{}", provider.authorize_url, query.finish());
        Ok(BrowserSignIn {
            url,
            redirect_uri,
            state,
            pkce,
            listener,
        })
    }

    /// Waits up to `wait` for the browser's redirect, then exchanges the code (with the PKCE
    /// verifier) for tokens and stores them. The listener is closed when this returns.
    pub async fn browser_finish(
        &self,
        sign_in: BrowserSignIn,
        wait: Duration,
    ) -> Result<TokenSet, OAuth2Error> {
        let BrowserSignIn {
            redirect_uri,
            state,
            pkce,
            listener,
            ..
        } = sign_in;
        let code = receive_redirect(listener, state, Instant::now() + wait, wait).await?;
        let granted = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", pkce.verifier()),
            ])
            .await?;
        self.signed_in(granted)
    }
}

/// What one request to the listener said.
enum Redirect {
    /// Not a redirect of any sign-in (a favicon, a probe): ignored.
    Other,
    /// The end of this sign-in: a code, or why there is none.
    Done(Result<String, OAuth2Error>),
}

/// Serves the listener until one redirect ends the sign-in or `deadline` passes.
async fn receive_redirect(
    listener: TcpListener,
    state: String,
    deadline: Instant,
    wait: Duration,
) -> Result<String, OAuth2Error> {
    let state = Arc::new(state);
    let (done, mut outcome) = mpsc::channel::<Result<String, OAuth2Error>>(1);
    // Connections are served side by side: a browser's idle pre-connection must not hold up
    // the one that carries the redirect. Dropping the set ends them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            result = outcome.recv() => {
                // The sender lives in this function: recv() cannot see the channel closed.
                return result.unwrap_or(Err(OAuth2Error::TimedOut(wait)));
            }
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                if !peer.ip().is_loopback() {
                    continue;
                }
                let state = Arc::clone(&state);
                let done = done.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (status, page, result) = match examine(&request, &state) {
                            Redirect::Other => (StatusCode::NOT_FOUND, NOT_HERE, None),
                            Redirect::Done(Ok(code)) => (StatusCode::OK, SIGNED_IN, Some(Ok(code))),
                            Redirect::Done(Err(e)) => (StatusCode::BAD_REQUEST, FAILED, Some(Err(e))),
                        };
                        if let Some(result) = result {
                            let _ = done.try_send(result);
                        }
                        async move { Ok::<_, Infallible>(page_response(status, page)) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(tcp), service);
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
                });
            }
            () = tokio::time::sleep_until(deadline) => return Err(OAuth2Error::TimedOut(wait)),
        }
    }
}

/// Reads the redirect's query (RFC 6749 §4.1.2 and §4.1.2.1).
fn examine(request: &Request<hyper::body::Incoming>, state: &str) -> Redirect {
    if request.method() != hyper::Method::GET || request.uri().path() != "/" {
        return Redirect::Other;
    }
    let query = request.uri().query().unwrap_or("");
    let mut code = None;
    let mut got_state = None;
    let mut error = None;
    let mut description = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "code" => code = Some(value.into_owned()),
            "state" => got_state = Some(value.into_owned()),
            "error" => error = Some(clean(&value)),
            "error_description" => description = Some(clean(&value)),
            _ => {}
        }
    }
    if code.is_none() && got_state.is_none() && error.is_none() {
        return Redirect::Other;
    }
    // The state first: an answer to another sign-in must not be believed, error or code.
    if got_state.as_deref() != Some(state) {
        return Redirect::Done(Err(OAuth2Error::StateMismatch));
    }
    if let Some(code) = error {
        return Redirect::Done(Err(if code == "access_denied" {
            OAuth2Error::Declined { code, description }
        } else {
            OAuth2Error::Refused {
                what: "authorization endpoint",
                code,
                description,
            }
        }));
    }
    match code {
        Some(code) if !code.is_empty() => Redirect::Done(Ok(code)),
        _ => Redirect::Done(Err(OAuth2Error::BadRedirect(
            "the code is missing or empty".into(),
        ))),
    }
}

const SIGNED_IN: &str = "Signed in. mailcat has what it needs; you can close this window.";
const FAILED: &str = "The sign-in did not complete. See mailcat's message in the terminal.";
const NOT_HERE: &str = "Nothing here.";

fn page_response(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>mailcat</title></head><body><p>{text}</p></body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The URL held the code: keep it out of other sites' Referer headers.
    headers.insert(
        hyper::header::REFERRER_POLICY,
        hyper::header::HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(port: u16, target: &str) -> String {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        tcp.write_all(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer).await;
        answer
    }

    async fn listen() -> (TcpListener, u16) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    fn wait() -> (Instant, Duration) {
        (
            Instant::now() + Duration::from_secs(10),
            Duration::from_secs(10),
        )
    }

    #[tokio::test]
    async fn the_code_of_the_redirect_with_our_state_is_taken_and_the_listener_closes() {
        let (listener, port) = listen().await;
        let (deadline, wait) = wait();
        let server = tokio::spawn(receive_redirect(listener, "s1".into(), deadline, wait));
        // An idle pre-connection does not hold up the redirect.
        let _idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        assert!(get(port, "/favicon.ico").await.contains("404"));
        let answer = get(port, "/?code=abc%2B1&state=s1").await;
        assert!(answer.contains("200 OK"), "{answer}");
        assert!(answer.contains("Signed in"), "{answer}");
        assert_eq!(server.await.unwrap().unwrap(), "abc+1");
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_redirect_with_another_state_ends_the_sign_in() {
        let (listener, port) = listen().await;
        let (deadline, wait) = wait();
        let server = tokio::spawn(receive_redirect(listener, "mine".into(), deadline, wait));
        let answer = get(port, "/?code=abc&state=theirs").await;
        assert!(answer.contains("400"), "{answer}");
        mailcat_tests::assert_matches!(server.await.unwrap(), Err(OAuth2Error::StateMismatch));
    }

    #[tokio::test]
    async fn access_denied_is_a_declined_sign_in() {
        let (listener, port) = listen().await;
        let (deadline, wait) = wait();
        let server = tokio::spawn(receive_redirect(listener, "s".into(), deadline, wait));
        get(
            port,
            "/?error=access_denied&error_description=The+user+said+no%1B%5B2J&state=s",
        )
        .await;
        match server.await.unwrap() {
            Err(OAuth2Error::Declined { code, description }) => {
                assert_eq!(code, "access_denied");
                assert_eq!(description.as_deref(), Some("The user said no [2J"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn nobody_coming_is_a_timeout() {
        let (listener, _) = listen().await;
        let wait = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let result = receive_redirect(listener, "s".into(), Instant::now() + wait, wait).await;
        mailcat_tests::assert_matches!(result, Err(OAuth2Error::TimedOut(_)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
