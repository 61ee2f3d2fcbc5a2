//! The OAuth2 flows of `mailcat_session::oauth2` against the mock authorization server
//! (`mailcat_tests::oauth_server`, HTTPS with its own test CA; no lab needed): browser sign-in
//! with PKCE through a fake browser, the device flow with its pending/slow_down/expired/denied
//! answers, refreshing, revocation, and every way an endpoint can fail, each ending in a
//! clear error and no stored tokens.
// A table of cases is a tuple per case: its type is long, and named only once.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mailcat_session::oauth2::{
    FileTokenStore, OAuth2, OAuth2Error, ProviderKind, ProviderSettings, Revocation, TokenStore,
};
use mailcat_tests::oauth_server::{
    AuthorizeBehaviour, Config, DeviceAnswer, Endpoint, Fault, OAuthServer,
};
use mailcat_transport::TlsSettings;

/// A fresh directory for one test's token file.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mailcat-oauth2-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The sign-in of a custom provider that is the mock, tokens in `dir/tokens.json`.
fn sign_in(server: &OAuthServer, dir: &std::path::Path) -> OAuth2 {
    let mut settings = ProviderSettings::new(ProviderKind::Custom, server.client_id());
    settings.authorize_url = Some(server.authorize_url());
    settings.token_url = Some(server.token_url());
    settings.device_url = Some(server.device_url());
    settings.revoke_url = Some(server.revoke_url());
    settings.scopes = Some(vec!["mail".into(), "offline_access".into()]);
    let provider = settings.resolve().unwrap();
    let tls = TlsSettings::only_ca_file(server.ca_file())
        .client_config()
        .unwrap();
    OAuth2::new(
        provider,
        tls,
        Arc::new(FileTokenStore::new(dir.join("tokens.json"))),
    )
    .with_http_timeout(Duration::from_secs(3))
}

/// Runs the browser sign-in with the fake browser (curl) playing the user's browser.
async fn browser_sign_in(
    server: &OAuthServer,
    oauth: &OAuth2,
) -> Result<mailcat_session::oauth2::TokenSet, OAuth2Error> {
    let browser = server.fake_browser();
    let sign_in = oauth.browser_start().await?;
    let url = sign_in.url().to_owned();
    let path = browser.path().to_owned();
    let visit = tokio::task::spawn_blocking(move || {
        std::process::Command::new(path).arg(url).status().unwrap()
    });
    let result = oauth.browser_finish(sign_in, Duration::from_secs(20)).await;
    visit.await.unwrap();
    result
}

/// Makes the stored access token expire now, as it would once its lifetime (the mock's 3 s)
/// has passed: the client's freshness check reads the wall clock (`unix_now`, seconds since the
/// epoch, compared with the stored `expires_at`), which no paused tokio clock moves, so the
/// tests age the stored token rather than sleep through its lifetime for real. The lifetime
/// the client computed from the provider's `expires_in` is checked first.
fn expire_the_stored_access_token(oauth: &OAuth2) {
    let mut stored = oauth.status().unwrap().expect("stored tokens");
    let (Some(expires_at), Some(obtained_at)) = (stored.expires_at, stored.obtained_at) else {
        panic!("the stored tokens have no expiry: {stored:?}");
    };
    assert_eq!(
        Duration::from_secs(expires_at - obtained_at),
        Config::standalone().access_token_ttl,
        "the expiry is the provider's expires_in after the grant: {stored:?}"
    );
    let now = mailcat_session::oauth2::unix_now();
    stored.obtained_at = Some(now - (expires_at - obtained_at));
    stored.expires_at = Some(now);
    oauth.store().save(&stored).unwrap();
}

#[tokio::test]
async fn the_browser_sign_in_stores_tokens_that_refresh_and_revoke() {
    let server = OAuthServer::start(Config::standalone());
    let dir = temp_dir("browser");
    let oauth = sign_in(&server, &dir);
    let tokens = browser_sign_in(&server, &oauth).await.unwrap();
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.scopes, ["mail", "offline_access"]);
    // The code was exchanged with the verifier whose challenge the authorization carried.
    let exchange = server
        .requests_to("/token")
        .into_iter()
        .find(|r| r.param("grant_type") == Some("authorization_code"))
        .unwrap();
    assert_eq!(exchange.param("code_verifier").unwrap().len(), 43);
    let stored = FileTokenStore::new(dir.join("tokens.json"))
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(stored, tokens);

    // The fresh token is used as it is; once (nearly) expired, it is renewed.
    let before = server.refreshes();
    assert_eq!(oauth.access_token().await.unwrap(), tokens.access_token);
    assert_eq!(server.refreshes(), before);
    expire_the_stored_access_token(&oauth);
    let token = oauth.access_token().await.unwrap();
    assert_eq!(server.refreshes(), before + 1);
    assert_ne!(token, tokens.access_token);
    // A server that refused `token` gets a new one; a refusal of an older token does not
    // make a second refresh when another login already renewed it.
    let renewed = oauth.renew(&token).await.unwrap();
    assert_ne!(renewed, token);
    assert_eq!(server.refreshes(), before + 2);

    let logout = oauth.logout().await.unwrap();
    assert!(logout.deleted);
    assert_eq!(logout.revocation, Revocation::Revoked);
    assert_eq!(server.revocations(), 1);
    assert!(oauth.status().unwrap().is_none());
    let error = oauth.access_token().await.unwrap_err();
    assert!(error.needs_sign_in(), "{error}");
}

#[tokio::test]
async fn a_revoked_refresh_token_asks_for_a_new_sign_in() {
    let server = OAuthServer::start(Config::standalone());
    let dir = temp_dir("revoked");
    let oauth = sign_in(&server, &dir);
    browser_sign_in(&server, &oauth).await.unwrap();
    server.revoke_all_refresh_tokens();
    expire_the_stored_access_token(&oauth);
    let error = oauth.access_token().await.unwrap_err();
    assert!(error.needs_sign_in(), "{error}");
    assert!(error.to_string().contains("invalid_grant"), "{error}");
    // The stored sign-in is kept (a configuration fix may make it work again).
    assert!(oauth.status().unwrap().is_some());
}

#[tokio::test]
async fn declined_and_forged_redirects_store_nothing() {
    for (behaviour, expect) in [
        (AuthorizeBehaviour::Deny, "declined"),
        (AuthorizeBehaviour::WrongState, "state"),
    ] {
        let server = OAuthServer::start(Config::standalone());
        server.set_authorize(behaviour);
        let dir = temp_dir("declined");
        let oauth = sign_in(&server, &dir);
        let error = browser_sign_in(&server, &oauth).await.unwrap_err();
        assert!(error.to_string().contains(expect), "{error}");
        assert!(
            server.requests_to("/token").is_empty(),
            "a code was exchanged"
        );
        assert!(!dir.join("tokens.json").exists());
    }
}

#[tokio::test]
async fn a_code_from_another_challenge_is_refused_by_the_provider() {
    // What an attacker who swapped the challenge (or intercepted the code) would meet: the
    // verifier does not match, the provider says invalid_grant, nothing is stored.
    let server = OAuthServer::start(Config::standalone());
    let dir = temp_dir("pkce");
    let oauth = sign_in(&server, &dir);
    let sign_in = oauth.browser_start().await.unwrap();
    let forged = regex_free_replace(
        sign_in.url(),
        "code_challenge=",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
    let browser = server.fake_browser();
    let path = browser.path().to_owned();
    let visit = tokio::task::spawn_blocking(move || {
        std::process::Command::new(path)
            .arg(forged)
            .status()
            .unwrap()
    });
    let error = oauth
        .browser_finish(sign_in, Duration::from_secs(20))
        .await
        .unwrap_err();
    visit.await.unwrap();
    mailcat_tests::assert_matches!(&error, OAuth2Error::Refused { code, .. } if code == "invalid_grant", "{error}");
    assert!(!dir.join("tokens.json").exists());
}

/// `url` with the value of the parameter starting at `name` replaced by `value`.
fn regex_free_replace(url: &str, name: &str, value: &str) -> String {
    let start = url.find(name).unwrap() + name.len();
    let end = url[start..].find('&').map_or(url.len(), |i| start + i);
    format!("{}{value}{}", &url[..start], &url[end..])
}

// On the wall clock (about 7 s): the mock provider, on a thread of its own, judges each poll by
// its own real clock (a poll before the interval is `early`), so the client's waits must be
// real ones; a paused tokio clock would make every poll early.
#[tokio::test]
async fn the_device_flow_waits_while_pending_and_slows_down_when_told() {
    let mut config = Config::standalone();
    config.slow_down_step = Duration::from_secs(5);
    let server = OAuthServer::start(config);
    server.set_device_script(&[
        DeviceAnswer::Pending,
        DeviceAnswer::SlowDown,
        DeviceAnswer::Approve,
    ]);
    let dir = temp_dir("device");
    let oauth = sign_in(&server, &dir);
    let device = oauth.device_start().await.unwrap();
    assert!(!device.user_code().is_empty());
    assert!(device.verification_uri().starts_with("https://"));
    let tokens = oauth.device_finish(device).await.unwrap();
    assert!(tokens.refresh_token.is_some());
    let polls = server.device_polls();
    assert_eq!(polls.len(), 3, "{polls:?}");
    assert!(
        polls.iter().all(|p| !p.early),
        "a poll came too soon: {polls:?}"
    );
    // After slow_down the interval grew by 5 s (RFC 8628 §3.5).
    let gap = polls[2].at.duration_since(polls[1].at);
    assert!(gap >= Duration::from_secs(6), "{gap:?}");
    assert!(dir.join("tokens.json").exists());
}

#[tokio::test]
async fn an_expired_or_denied_device_code_ends_the_sign_in() {
    let cases: [(DeviceAnswer, fn(&OAuth2Error)); 2] = [
        (DeviceAnswer::Expire, |e| {
            mailcat_tests::assert_matches!(e, OAuth2Error::DeviceCodeExpired);
        }),
        (DeviceAnswer::Deny, |e| {
            mailcat_tests::assert_matches!(e, OAuth2Error::Declined { .. });
        }),
    ];
    for (answer, check) in cases {
        let server = OAuthServer::start(Config::standalone());
        server.set_device_script(&[answer]);
        let dir = temp_dir("device-end");
        let oauth = sign_in(&server, &dir);
        let device = oauth.device_start().await.unwrap();
        let error = oauth.device_finish(device).await.unwrap_err();
        check(&error);
        assert!(!dir.join("tokens.json").exists());
    }
}

#[tokio::test]
async fn a_token_endpoint_that_misbehaves_is_named_and_nothing_is_stored() {
    for (fault, expect) in [
        (Fault::Html, "an HTML page"),
        (Fault::InvalidJson, "not JSON"),
        (Fault::Garbage, "token endpoint"),
        (Fault::HugeBody, "limit"),
        (Fault::EndlessBody, "token endpoint"),
        (Fault::Silent, "within 3.0 s"),
        (Fault::Close, "token endpoint"),
        (Fault::ServerError, "status 500"),
    ] {
        let server = OAuthServer::start(Config::standalone());
        server.set_fault(Endpoint::Token, Some(fault));
        let dir = temp_dir("fault");
        let oauth = sign_in(&server, &dir);
        // The wall clock, not a paused one: the mock provider is a real HTTPS server on its own
        // thread and the fake browser a curl process, so while the client waits on a real
        // socket the runtime looks idle, and a paused clock would advance at once and fire the
        // 3 s HTTP timeout before any reply could come. Hence a generous bound.
        let started = std::time::Instant::now();
        let error = browser_sign_in(&server, &oauth).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains(expect), "{fault:?}: {text}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{fault:?} took {:?}",
            started.elapsed()
        );
        assert!(!dir.join("tokens.json").exists(), "{fault:?}");
    }
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_by_the_credential() {
    let server = OAuthServer::start(Config::standalone());
    let dir = temp_dir("credential");
    let oauth = Arc::new(sign_in(&server, &dir));
    browser_sign_in(&server, &oauth).await.unwrap();
    let credential = mailcat_session::Credential::oauth2_signed_in("u", Arc::clone(&oauth));
    let first = credential.secret().await.unwrap();
    assert!(credential.renew_refused_token().await.unwrap());
    let second = credential.secret().await.unwrap();
    assert_ne!(first, second);
    // A password credential has nothing to renew.
    let password = mailcat_session::Credential::password("u", "pw");
    password.secret().await.unwrap();
    assert!(!password.renew_refused_token().await.unwrap());
}
