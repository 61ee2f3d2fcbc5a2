//! `mailcat oauth2` end to end, as a user meets it: sign in through the browser (a fake one,
//! `$BROWSER`) or with a device code against the mock authorization server, whose access
//! tokens the lab's Dovecot and Postfix accept; then `check` logs in to IMAP, POP3 and SMTP
//! with the stored token (XOAUTH2, and OAUTHBEARER with `--auth`), an expired token is renewed by `list`, a token the server refuses is
//! renewed once, and `logout` ends it all. Also the messages of what goes wrong: a declined
//! sign-in, a revoked refresh token, a token file others can read, an http:// token URL.
//!
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mailcat_tests::lab::Lab;
use mailcat_tests::oauth_server::{AuthorizeBehaviour, Config, DeviceAnswer, OAuthServer};

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One user's home: a config file with accounts `imap` (IMAPS + submission) and `pop3`
/// (POP3S), both signing in at the mock; `$XDG_STATE_HOME` for the tokens.
struct Home {
    dir: PathBuf,
    config: PathBuf,
}

impl Home {
    fn new(name: &str, lab: &Lab, server: &OAuthServer, token_url: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("oauth2-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let user = std::env::var("MAILCAT_LAB_OAUTH2_USER").expect("MAILCAT_LAB_OAUTH2_USER");
        let oauth2 = format!(
            "provider = \"custom\"\nclient_id = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{token_url}\"\ndevice_url = \"{}\"\nrevoke_url = \"{}\"\nscopes = [\"mail\", \"offline_access\"]\n",
            server.client_id(),
            server.authorize_url(),
            server.device_url(),
            server.revoke_url()
        );
        let ca = lab.ca_file.display();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[accounts.imap]\nemail = \"{user}\"\nincoming = \"imaps://{host}:{imaps}\"\noutgoing = \"smtp://{host}:{submission}\"\nca_file = \"{ca}\"\ntimeout = 10\n[accounts.imap.oauth2]\n{oauth2}\n\
                 [accounts.pop3]\nemail = \"{user}\"\nincoming = \"pop3s://{host}:{pop3s}\"\nca_file = \"{ca}\"\ntimeout = 10\n[accounts.pop3.oauth2]\n{oauth2}",
                host = lab.tls_name,
                imaps = lab.imaps_port,
                submission = lab.submission_port,
                pop3s = lab.pop3s_port,
            ),
        )
        .expect("config");
        Self { dir, config }
    }

    /// `mailcat --config FILE --account ACCOUNT ARGS…` with `$BROWSER` = `browser`.
    fn run(&self, account: &str, args: &[&str], browser: Option<&Path>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailcat"));
        command
            .arg("--config")
            .arg(&self.config)
            .args(["--account", account])
            .args(args)
            .env("HOME", &self.dir)
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env_remove("MAILCAT_PASSWORD")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        match browser {
            Some(path) => command.env("BROWSER", path),
            None => command.env_remove("BROWSER"),
        };
        command.output().expect("mailcat runs")
    }

    fn tokens(&self, account: &str) -> PathBuf {
        self.dir
            .join("state/mailcat/oauth2")
            .join(format!("{account}.json"))
    }
}

fn lab_server() -> OAuthServer {
    OAuthServer::start(Config::lab())
}

#[test]
fn sign_in_check_renew_and_sign_out() {
    let lab = Lab::from_env();
    let server = lab_server();
    let home = Home::new("flow", &lab, &server, &server.token_url());
    let browser = server.fake_browser();

    let login = home.run("imap", &["oauth2", "login"], Some(browser.path()));
    let shown = text(&login);
    assert_eq!(login.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&server.authorize_url()),
        "the URL is printed: {shown}"
    );
    assert!(shown.contains("Signed in"), "{shown}");
    let mode = std::fs::metadata(home.tokens("imap"))
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let file = std::fs::read_to_string(home.tokens("imap")).expect("token file");
    assert!(
        !shown.contains(file.split('"').nth(3).unwrap_or("-")),
        "a token was printed"
    );

    // check: IMAP and SMTP with the stored sign-in, and which sign-in it was.
    let check = home.run("imap", &["check"], None);
    let shown = text(&check);
    assert_eq!(check.status.code(), Some(0), "{shown}");
    assert_eq!(shown.matches("✓ login").count(), 2, "{shown}");
    assert!(shown.contains("OAuth2 sign-in (custom"), "{shown}");
    // The same stored token over OAUTHBEARER (RFC 7628) instead of XOAUTH2.
    let check = home.run("imap", &["-v", "check", "--auth", "oauthbearer"], None);
    let shown = text(&check);
    assert_eq!(check.status.code(), Some(0), "{shown}");
    assert!(shown.contains("AUTHENTICATE OAUTHBEARER"), "{shown}");
    assert!(shown.contains("AUTH OAUTHBEARER"), "{shown}");
    assert!(
        !shown.contains("AUTHENTICATE XOAUTH2") && !shown.contains("AUTH XOAUTH2"),
        "{shown}"
    );

    // POP3: another account, its own sign-in (providers rotate refresh tokens: two accounts
    // cannot share one).
    let login = home.run("pop3", &["oauth2", "login"], Some(browser.path()));
    assert_eq!(login.status.code(), Some(0), "{}", text(&login));
    let check = home.run("pop3", &["check"], None);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    // The 3 s access token expires; list renews it and succeeds.
    std::thread::sleep(Duration::from_secs(4));
    let before = server.refreshes();
    let list = home.run("imap", &["list"], None);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    assert!(server.refreshes() > before);

    // A token the server refuses (expired on arrival) is renewed once, and the login works.
    server.issue_expired_access_tokens(1);
    std::thread::sleep(Duration::from_secs(4));
    let before = server.refreshes();
    let list = home.run("imap", &["list"], None);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    assert_eq!(
        server.refreshes(),
        before + 2,
        "one renewal, one more after the refusal"
    );

    let status = home.run("imap", &["oauth2", "status"], None);
    let shown = text(&status);
    assert_eq!(status.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("signed in: yes") && shown.contains("mail offline_access"),
        "{shown}"
    );

    let logout = home.run("imap", &["oauth2", "logout"], None);
    let shown = text(&logout);
    assert_eq!(logout.status.code(), Some(0), "{shown}");
    assert!(shown.contains("revoked"), "{shown}");
    assert!(!home.tokens("imap").exists());
    assert_eq!(server.revocations(), 1);

    let list = home.run("imap", &["list"], None);
    let shown = text(&list);
    assert_eq!(list.status.code(), Some(77), "{shown}");
    assert!(
        shown.contains("mailcat --account imap oauth2 login"),
        "{shown}"
    );
}

#[test]
fn the_device_flow_signs_in_without_a_browser() {
    let lab = Lab::from_env();
    let server = lab_server();
    server.set_device_script(&[DeviceAnswer::Pending, DeviceAnswer::Approve]);
    let home = Home::new("device", &lab, &server, &server.token_url());
    // No $BROWSER and no desktop: the device flow is the default.
    let login = home.run("imap", &["oauth2", "login"], None);
    let shown = text(&login);
    assert_eq!(login.status.code(), Some(0), "{shown}");
    assert!(shown.contains("enter the code"), "{shown}");
    assert!(
        shown.contains(&format!("{}/device", server.base_url())),
        "{shown}"
    );
    let check = home.run("imap", &["check"], None);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

#[test]
fn a_declined_or_failed_sign_in_says_why_and_stores_nothing() {
    let lab = Lab::from_env();
    let server = lab_server();
    let home = Home::new("declined", &lab, &server, &server.token_url());
    let browser = server.fake_browser();
    // Before any sign-in, check says which command signs in.
    let check = home.run("imap", &["check"], None);
    let shown = text(&check);
    assert_eq!(check.status.code(), Some(77), "{shown}");
    assert!(shown.contains("not signed in"), "{shown}");
    assert!(
        shown.contains("hint: sign in: mailcat --account imap oauth2 login"),
        "{shown}"
    );

    server.set_authorize(AuthorizeBehaviour::Deny);
    let login = home.run(
        "imap",
        &["oauth2", "login", "--browser"],
        Some(browser.path()),
    );
    let shown = text(&login);
    assert_eq!(login.status.code(), Some(77), "{shown}");
    assert!(shown.contains("declined"), "{shown}");
    assert!(!home.tokens("imap").exists());

    server.set_authorize(AuthorizeBehaviour::Consent);
    server.set_device_script(&[DeviceAnswer::Expire]);
    let login = home.run("imap", &["oauth2", "login", "--device"], None);
    let shown = text(&login);
    assert_eq!(login.status.code(), Some(75), "{shown}");
    assert!(shown.contains("expired"), "{shown}");
    assert!(!home.tokens("imap").exists());
}

#[test]
fn a_revoked_sign_in_or_an_unsafe_token_file_is_explained() {
    let lab = Lab::from_env();
    let server = lab_server();
    let home = Home::new("revoked", &lab, &server, &server.token_url());
    let browser = server.fake_browser();
    let login = home.run("imap", &["oauth2", "login"], Some(browser.path()));
    assert_eq!(login.status.code(), Some(0), "{}", text(&login));

    std::fs::set_permissions(home.tokens("imap"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let list = home.run("imap", &["list"], None);
    let shown = text(&list);
    assert_eq!(list.status.code(), Some(78), "{shown}");
    assert!(
        shown.contains("mode 0644") && shown.contains("chmod 600"),
        "{shown}"
    );
    std::fs::set_permissions(home.tokens("imap"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");

    server.revoke_all_refresh_tokens();
    std::thread::sleep(Duration::from_secs(4));
    let list = home.run("imap", &["list"], None);
    let shown = text(&list);
    assert_eq!(list.status.code(), Some(77), "{shown}");
    assert!(shown.contains("invalid_grant"), "{shown}");
    assert!(
        shown.contains("sign in: mailcat --account imap oauth2 login"),
        "{shown}"
    );
}

#[test]
fn an_http_token_url_is_refused_before_anything_is_sent() {
    let lab = Lab::from_env();
    let server = lab_server();
    let plain = server.token_url().replacen("https://", "http://", 1);
    let home = Home::new("http", &lab, &server, &plain);
    let login = home.run("imap", &["oauth2", "login", "--device"], None);
    let shown = text(&login);
    assert_eq!(login.status.code(), Some(78), "{shown}");
    assert!(shown.contains("accounts.imap.oauth2.token_url"), "{shown}");
    assert!(shown.contains("https://"), "{shown}");
    assert!(
        server.requests().is_empty(),
        "something was sent: {:?}",
        server.requests()
    );
}
