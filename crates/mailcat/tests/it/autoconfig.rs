//! `mailcat autoconfig ADDR`: a provider from the table with no network at all, a domain found
//! through the test's DNS and HTTPS servers (pointed at by the two environment variables), a
//! domain with nothing to find, and a malformed address. For the providers that want OAuth2,
//! the lines to paste carry an `[accounts.NAME.oauth2]` table that resolves once the client ID
//! is filled in.

use std::process::{Command, Output};

use mailcat_session::oauth2::provider::{
    ProviderError, ProviderKind, ProviderSettings, README_SECTION,
};
use mailcat_tests::dns_server::{Answer, DnsServer};
use mailcat_tests::https_server::{HttpsServer, Route};

fn mailcat(args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("mailcat runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Points the search at a DNS server that knows nothing and an HTTPS server that has nothing,
/// so that no query leaves the machine.
fn nowhere() -> (DnsServer, HttpsServer, Vec<(&'static str, String)>) {
    let dns = DnsServer::start(Vec::new());
    let web = HttpsServer::start(Vec::new());
    let env = vec![
        ("MAILCAT_AUTOCONFIG_DNS", dns.addr().to_string()),
        (
            "MAILCAT_AUTOCONFIG_URL",
            format!("https://localhost:{}", web.port()),
        ),
    ];
    (dns, web, env)
}

#[test]
fn outlook_com_comes_from_the_table_with_todays_hosts_and_oauth2() {
    let (dns, _web, env) = nowhere();
    let output = mailcat(&["autoconfig", "someone@hotmail.com"], &env);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("imaps://outlook.office365.com:993"),
        "{shown}"
    );
    assert!(
        shown.contains("pop3s://outlook.office365.com:995"),
        "{shown}"
    );
    assert!(
        shown.contains("smtp://smtp-mail.outlook.com:587"),
        "{shown}"
    );
    assert!(shown.contains("OAuth2 only"), "{shown}");
    // The lines to paste into the config file: mailcat's own sign-in, not a password, and
    // where to learn to register the client ID.
    assert!(
        shown.contains("[accounts.hotmail]\nemail = \"someone@hotmail.com\"\n"),
        "{shown}"
    );
    assert!(shown.contains("`mailcat oauth2 login`"), "{shown}");
    assert!(shown.contains(README_SECTION), "{shown}");
    assert!(!shown.contains("password_cmd"), "{shown}");
    let oauth2 = pasted_oauth2(&shown, "hotmail");
    assert_eq!(oauth2.kind, ProviderKind::Microsoft);
    assert_eq!(oauth2.tenant.as_deref(), Some("consumers"));
    assert_eq!(dns.queries(), 0, "the table answers without the network");

    let output = mailcat(&["autoconfig", "--json", "someone@hotmail.com"], &env);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["provider"], "Outlook.com");
    assert_eq!(json["incoming"][0]["host"], "outlook.office365.com");
    assert_eq!(json["outgoing"][0]["port"], 587);
    assert_eq!(json["stages"][0]["found"], true);
    assert_eq!(json["oauth2"]["provider"], "microsoft");
    assert_eq!(json["oauth2"]["tenant"], "consumers");
    assert_eq!(json["oauth2"]["how_to_register"], README_SECTION);
}

/// The `[accounts.NAME.oauth2]` table in the printed lines, which must be TOML, read as the
/// library's settings. Until the placeholder client ID is replaced, it must not resolve; with
/// a client ID (and Google's secret) it must.
fn pasted_oauth2(shown: &str, name: &str) -> ProviderSettings {
    let start = shown
        .find(&format!("[accounts.{name}]"))
        .unwrap_or_else(|| panic!("no [accounts.{name}] in {shown}"));
    let config: toml::Table = shown[start..].parse().expect("the printed lines are TOML");
    let table = &config["accounts"][name]["oauth2"];
    let text = |key: &str| table.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let kind: ProviderKind = text("provider")
        .expect("provider")
        .parse()
        .expect("a preset");
    let mut settings = ProviderSettings {
        client_secret: text("client_secret"),
        tenant: text("tenant"),
        ..ProviderSettings::new(kind, text("client_id").expect("client_id"))
    };
    assert!(
        matches!(settings.resolve(), Err(ProviderError::Placeholder { .. })),
        "{settings:?}"
    );
    settings.client_id = "00001111-aaaa-2222-bbbb-3333cccc4444".into();
    if settings.client_secret.is_some() {
        settings.client_secret = Some("GOCSPX-secret".into());
    }
    settings.resolve().expect("resolves once filled in");
    settings
}

#[test]
fn gmail_gets_the_google_preset_with_its_secret_and_the_app_password_alternative() {
    let (_dns, _web, env) = nowhere();
    let output = mailcat(&["autoconfig", "me@gmail.com"], &env);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let oauth2 = pasted_oauth2(&shown, "gmail");
    assert_eq!(oauth2.kind, ProviderKind::Google);
    assert_eq!(oauth2.tenant, None);
    assert!(oauth2.client_secret.is_some(), "{shown}");
    // The app password stays possible, commented out in the account's own table.
    assert!(
        shown.contains(
            "# password_cmd = \"…\"  # or an app password, instead of [accounts.gmail.oauth2]"
        ),
        "{shown}"
    );
    let output = mailcat(&["autoconfig", "--json", "me@gmail.com"], &env);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["oauth2"]["provider"], "google");
    assert_eq!(json["oauth2"]["tenant"], serde_json::Value::Null);

    // A provider without a preset keeps the password line, and no OAuth2 table.
    let output = mailcat(&["autoconfig", "me@fastmail.com"], &env);
    let shown = text(&output);
    assert!(shown.contains("password_cmd = \"…\""), "{shown}");
    assert!(!shown.contains(".oauth2]"), "{shown}");
    let output = mailcat(&["autoconfig", "--json", "me@fastmail.com"], &env);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["oauth2"], serde_json::Value::Null);
}

#[test]
fn a_custom_domain_at_microsoft_365_gets_the_organizations_tenant() {
    let (_, web, mut env) = nowhere();
    let dns = DnsServer::start(vec![(
        "contoso.test".into(),
        Answer::Mx {
            preference: 0,
            exchange: "contoso-test.mail.protection.outlook.com".into(),
        },
    )]);
    env[0].1 = dns.addr().to_string();
    let ca = web.ca_file();
    let ca = ca.to_str().expect("UTF-8");
    let output = mailcat(&["autoconfig", "--ca-file", ca, "carol@contoso.test"], &env);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let oauth2 = pasted_oauth2(&shown, "contoso");
    assert_eq!(oauth2.kind, ProviderKind::Microsoft);
    assert_eq!(oauth2.tenant.as_deref(), Some("organizations"));
}

#[test]
fn an_oauth2_only_domain_without_a_preset_gets_a_custom_provider_to_fill_in() {
    let (_dns, _, env) = nowhere();
    let file = r#"<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="postwerk.test">
    <domain>postwerk.test</domain>
    <displayName>Postwerk</displayName>
    <incomingServer type="imap">
      <hostname>imap.postwerk.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.postwerk.test</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;
    let web = HttpsServer::start(vec![Route::ok(
        "/autoconfig.postwerk.test/mail/config-v1.1.xml*",
        file,
    )]);
    let env = vec![
        env[0].clone(),
        (
            "MAILCAT_AUTOCONFIG_URL",
            format!("https://localhost:{}", web.port()),
        ),
    ];
    let ca = web.ca_file();
    let ca = ca.to_str().expect("UTF-8");
    let output = mailcat(&["autoconfig", "--ca-file", ca, "dora@postwerk.test"], &env);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("OAuth2 only"), "{shown}");
    assert!(
        shown.contains(
            "[accounts.postwerk.oauth2]\nprovider = \"custom\"\n\
             client_id = \"<your client id>\"  # register one: README.md#oauth2-sign-in\n\
             authorize_url = \"https://…\"  # ask the provider for these\n\
             token_url = \"https://…\"\nscopes = [\"…\"]\n"
        ),
        "{shown}"
    );
    let config: toml::Table = shown[shown.find("[accounts.").expect("lines")..]
        .parse()
        .expect("TOML");
    assert_eq!(
        config["accounts"]["postwerk"]["oauth2"]["provider"].as_str(),
        Some("custom")
    );
}

#[test]
fn a_domain_with_srv_records_is_found_through_dns() {
    let (_, web, mut env) = nowhere();
    let dns = DnsServer::start(vec![
        (
            "_imaps._tcp.example.test".into(),
            Answer::Srv {
                priority: 0,
                weight: 0,
                port: 993,
                target: "mail.example.test".into(),
            },
        ),
        (
            "_submissions._tcp.example.test".into(),
            Answer::Srv {
                priority: 0,
                weight: 0,
                port: 465,
                target: "mail.example.test".into(),
            },
        ),
    ]);
    env[0].1 = dns.addr().to_string();
    let ca = web.ca_file();
    let output = mailcat(
        &[
            "autoconfig",
            "--ca-file",
            ca.to_str().expect("UTF-8"),
            "alice@example.test",
        ],
        &env,
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("imaps://mail.example.test:993"), "{shown}");
    assert!(shown.contains("smtps://mail.example.test:465"), "{shown}");
    assert!(
        shown.contains("the DNS SRV record _imaps._tcp.example.test"),
        "{shown}"
    );
    // Each stage is shown with what it saw: the files were not there.
    assert!(shown.contains("✗ autoconfig file"), "{shown}");
    assert!(shown.contains("404"), "{shown}");
    assert!(
        shown.contains("incoming = \"imaps://mail.example.test:993\""),
        "{shown}"
    );
}

#[test]
fn nothing_found_is_exit_69_with_what_to_do() {
    let (_dns, web, env) = nowhere();
    let ca = web.ca_file();
    let output = mailcat(
        &[
            "autoconfig",
            "--timeout",
            "2",
            "--ca-file",
            ca.to_str().expect("UTF-8"),
            "nobody@nothing-here.invalid",
        ],
        &env,
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(69), "{shown}");
    assert!(shown.contains("no server found"), "{shown}");
    assert!(shown.contains("--incoming"), "{shown}");
    assert!(shown.contains("✗ guessed names"), "{shown}");
}

#[test]
fn a_malformed_address_is_a_usage_error() {
    let (_dns, _web, env) = nowhere();
    for bad in ["nobody", "me@exa mple.com"] {
        let output = mailcat(&["autoconfig", bad], &env);
        assert_eq!(output.status.code(), Some(64), "{bad}: {}", text(&output));
        assert!(
            text(&output).contains("name@example.com"),
            "{}",
            text(&output)
        );
    }
    let output = mailcat(&["autoconfig"], &env);
    assert_eq!(output.status.code(), Some(64), "{}", text(&output));
}
