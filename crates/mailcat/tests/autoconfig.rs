//! `mailcat autoconfig ADDR`: a provider from the table with no network at all, a domain found
//! through the test's DNS and HTTPS servers (pointed at by the two environment variables), a
//! domain with nothing to find, and a malformed address.

use std::process::{Command, Output};

use mailcat_tests::dns_server::{Answer, DnsServer};
use mailcat_tests::https_server::HttpsServer;

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
    // The lines to paste into the config file, with a token command, not a password.
    assert!(
        shown.contains("[accounts.hotmail]\nemail = \"someone@hotmail.com\"\n"),
        "{shown}"
    );
    assert!(shown.contains("oauth2_token_cmd"), "{shown}");
    assert_eq!(dns.queries(), 0, "the table answers without the network");

    let output = mailcat(&["autoconfig", "--json", "someone@hotmail.com"], &env);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["provider"], "Outlook.com");
    assert_eq!(json["incoming"][0]["host"], "outlook.office365.com");
    assert_eq!(json["outgoing"][0]["port"], 587);
    assert_eq!(json["stages"][0]["found"], true);
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
