//! `mailcat check` against the lab's real servers: every endpoint passes, and each kind of
//! wrong setting (port, TLS mode, CA) gives its own message and exit code.

use std::process::{Command, Output};

use mailcat_tests::lab::Lab;

fn mailcat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(args)
        .env_remove("MAILCAT_PASSWORD")
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

#[test]
fn check_passes_on_every_lab_endpoint() {
    let lab = Lab::from_env();
    let ca = lab.ca_file.to_str().expect("UTF-8 path");
    for (url, _, implicit) in lab.urls(&lab.tls_name) {
        let flag = if url.starts_with("smtp") {
            "--outgoing"
        } else {
            "--incoming"
        };
        let output = mailcat(&["check", "--ca-file", ca, flag, &url]);
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(0), "{url}:\n{shown}");
        assert!(shown.contains("All checks passed."), "{shown}");
        let tls_step = if implicit {
            "✓ TLS handshake"
        } else {
            "✓ STARTTLS"
        };
        assert!(shown.contains(tls_step), "{url}:\n{shown}");
        assert!(!shown.contains('✗'), "{shown}");
        // No password anywhere (and no terminal to ask on): the login is skipped, and said so.
        assert!(shown.contains("login skipped"), "{url}:\n{shown}");
        // What came before TLS is marked (threat model #10), and only that.
        let unverified = shown.matches("(before TLS, unverified)").count();
        assert_eq!(unverified, if implicit { 0 } else { 2 }, "{url}:\n{shown}");
    }
}

#[test]
fn check_incoming_and_outgoing_together_as_json() {
    let lab = Lab::from_env();
    let ca = lab.ca_file.to_str().expect("UTF-8 path");
    let incoming = format!("imaps://{}:{}", lab.tls_name, lab.imaps_port);
    let outgoing = format!("smtp://{}:{}", lab.tls_name, lab.submission_port);
    let output = mailcat(&[
        "check",
        "--json",
        "--ca-file",
        ca,
        "--incoming",
        &incoming,
        "--outgoing",
        &outgoing,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["servers"][0]["role"], "incoming");
    assert_eq!(doc["servers"][1]["security"], "STARTTLS");
    let steps: Vec<&str> = doc["servers"][1]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("name"))
        .collect();
    assert_eq!(
        steps,
        [
            "DNS lookup",
            "TCP connect",
            "server greeting",
            "capability query",
            "STARTTLS",
            "capability query",
            "note"
        ]
    );
    // The typed verdict, for apps that show results their own way.
    assert_eq!(doc["servers"][0]["verdict"], "success");
    let output = mailcat(&["check", "--json", "--incoming", &incoming]);
    assert_eq!(output.status.code(), Some(69), "{}", text(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(doc["servers"][0]["verdict"], "certificate", "{doc}");
}

#[test]
fn wrong_port_for_the_protocol() {
    let lab = Lab::from_env();
    let ca = lab.ca_file.to_str().expect("UTF-8 path");
    // The IMAP port in a POP3 URL.
    let output = mailcat(&[
        "check",
        "--ca-file",
        ca,
        "--incoming",
        &format!("pop3s://{}:{}", lab.tls_name, lab.imaps_port),
    ]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    assert!(
        text(&output).contains("is IMAP, not POP3"),
        "{}",
        text(&output)
    );
    // imaps:// on Postfix's submission port: SMTP is named, and no imap:// URL to that port.
    let output = mailcat(&[
        "check",
        "--ca-file",
        ca,
        "--incoming",
        &format!("imaps://{}:{}", lab.tls_name, lab.submission_port),
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(78), "{shown}");
    assert!(shown.contains("is SMTP, not IMAP"), "{shown}");
    assert!(shown.contains("an smtp:// URL"), "{shown}");
    assert!(!shown.contains("imap://"), "{shown}");
    // Nothing listens: refused.
    let output = mailcat(&[
        "check",
        "--ca-file",
        ca,
        "--incoming",
        &format!("imaps://{}:1", lab.host),
    ]);
    assert_eq!(output.status.code(), Some(69));
    assert!(
        text(&output).contains("refused the connection"),
        "{}",
        text(&output)
    );
}

#[test]
fn wrong_tls_mode() {
    let lab = Lab::from_env();
    let ca = lab.ca_file.to_str().expect("UTF-8 path");
    let output = mailcat(&[
        "check",
        "--ca-file",
        ca,
        "--incoming",
        &format!("imaps://{}:{}", lab.tls_name, lab.imap_port),
    ]);
    // A configuration mistake: EX_CONFIG, never "try again later".
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    let shown = text(&output);
    assert!(
        shown.contains("speaks plaintext IMAP") && shown.contains("use STARTTLS on this port"),
        "{shown}"
    );
}

#[test]
fn a_starttls_url_on_an_implicit_tls_port_is_found_out_at_once() {
    // Dovecot and Postfix on their implicit-TLS ports wait, silent, for a ClientHello. With the
    // default 10 s timeout `check` says within two seconds which URL to use, and exits 78
    // (a configuration mistake), not 75 (which makes cron retry forever).
    let lab = Lab::from_env();
    let ca = lab.ca_file.to_str().expect("UTF-8 path");
    for (flag, url, want) in [
        (
            "--incoming",
            format!("imap://{}:{}", lab.tls_name, lab.imaps_port),
            format!("imaps://{}:{}", lab.tls_name, lab.imaps_port),
        ),
        (
            "--incoming",
            format!("pop3://{}:{}", lab.tls_name, lab.pop3s_port),
            format!("pop3s://{}:{}", lab.tls_name, lab.pop3s_port),
        ),
        (
            "--outgoing",
            format!("smtp://{}:{}", lab.tls_name, lab.submissions_port),
            format!("smtps://{}:{}", lab.tls_name, lab.submissions_port),
        ),
    ] {
        let started = std::time::Instant::now();
        let output = mailcat(&["check", "--ca-file", ca, flag, &url]);
        let elapsed = started.elapsed();
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(78), "{url}:\n{shown}");
        assert!(
            elapsed < std::time::Duration::from_secs(3),
            "{url}: took {elapsed:?}:\n{shown}"
        );
        assert!(
            shown.contains("expects TLS from the first byte") && shown.contains(&want),
            "{url}:\n{shown}"
        );
        assert!(shown.contains("✗ server greeting"), "{url}:\n{shown}");
    }
    // Another protocol's implicit-TLS port: the greeting over TLS tells which.
    let url = format!("pop3://{}:{}", lab.tls_name, lab.imaps_port);
    let output = mailcat(&["check", "--ca-file", ca, "--incoming", &url]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(78), "{shown}");
    assert!(
        shown.contains("is IMAP, not POP3") && shown.contains("an imaps:// URL"),
        "{shown}"
    );
}

#[test]
fn wrong_ca() {
    let lab = Lab::from_env();
    let url = format!("imaps://{}:{}", lab.tls_name, lab.imaps_port);
    // Without the lab's CA: an authority this machine does not trust.
    let output = mailcat(&["check", "--incoming", &url]);
    assert_eq!(output.status.code(), Some(69), "{}", text(&output));
    assert!(
        text(&output).contains("does not trust") && text(&output).contains("--ca-file"),
        "{}",
        text(&output)
    );
    // A CA file that does not exist is a configuration error.
    let output = mailcat(&[
        "check",
        "--ca-file",
        "/nonexistent/ca.pem",
        "--incoming",
        &url,
    ]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    assert!(
        text(&output).contains("/nonexistent/ca.pem"),
        "{}",
        text(&output)
    );
}

/// What `openssl x509 -noout -fingerprint -sha256` prints for the PEM file at `path`, as a
/// person would copy it: `sha256 Fingerprint=AB:CD:…`.
fn openssl_fingerprint(path: &std::path::Path) -> String {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(path)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[test]
fn a_pinned_server_certificate_passes_without_its_ca() {
    // A self-hosted server's owner pins its certificate by the fingerprint openssl shows on the
    // server (threat model #19): check logs in over implicit TLS and STARTTLS alike, and says
    // that the certificate is trusted by the pin and not by an authority.
    let lab = Lab::from_env();
    let tls_dir = lab.ca_file.parent().expect("the lab's tls directory");
    let pin = openssl_fingerprint(&tls_dir.join("server.pem"));
    let incoming = format!("imaps://{}:{}", lab.tls_name, lab.imaps_port);
    let outgoing = format!("smtp://{}:{}", lab.tls_name, lab.submission_port);
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(["check", "--tls-fingerprint", &pin, "--email", &lab.user])
        .args(["--incoming", &incoming, "--outgoing", &outgoing])
        .env("MAILCAT_PASSWORD", &lab.password)
        .output()
        .expect("mailcat runs");
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert_eq!(shown.matches("✓ login").count(), 2, "{shown}");
    assert_eq!(
        shown.matches("trusted because you pinned it").count(),
        2,
        "{shown}"
    );

    // Another certificate's fingerprint trusts nothing: the refusal shows the server's
    // fingerprint, to compare with the server, and the two ways to trust it.
    let other = openssl_fingerprint(&lab.ca_file);
    let output = mailcat(&[
        "check",
        "--tls-fingerprint",
        &other,
        "--incoming",
        &incoming,
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(69), "{shown}");
    let server = pin.rsplit_once('=').expect("openssl's label").1;
    assert!(shown.contains(server), "{shown}");
    assert!(!shown.contains("trusted because you pinned it"), "{shown}");
    // Not "an authority this machine does not trust": the certificate is not the pinned one.
    // Both fingerprints, and no advice to pin the new one blindly.
    let pinned = other.rsplit_once('=').expect("openssl's label").1;
    assert!(shown.contains("certificate changed"), "{shown}");
    assert!(shown.contains(pinned), "{shown}");
    assert!(!shown.contains("does not trust"), "{shown}");
    assert!(!shown.contains("--tls-fingerprint"), "{shown}");

    // A fingerprint that is not one is a usage error naming the flag.
    let output = mailcat(&[
        "check",
        "--tls-fingerprint",
        "AB:CD",
        "--incoming",
        &incoming,
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(64), "{shown}");
    assert!(
        shown.contains("--tls-fingerprint") && shown.contains("4 hex digits"),
        "{shown}"
    );
}

#[test]
fn check_with_only_an_address_finds_the_servers_by_autoconfig_and_logs_in() {
    // The mail client's setup: an address and a password, nothing else. The domain's SRV
    // records (served by the test's DNS server) name the lab's IMAPS and submission ports.
    use mailcat_tests::dns_server::{Answer, DnsServer};
    let lab = Lab::from_env();
    let record = |service: &str, port: u16| {
        (
            format!("{service}.example.test"),
            Answer::Srv {
                priority: 0,
                weight: 0,
                port,
                target: lab.tls_name.clone(),
            },
        )
    };
    let dns = DnsServer::start(vec![
        record("_imaps._tcp", lab.imaps_port),
        record("_submission._tcp", lab.submission_port),
    ]);
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(["check", "--email", &lab.user, "--ca-file"])
        .arg(&lab.ca_file)
        .env("MAILCAT_PASSWORD", &lab.password)
        .env("MAILCAT_AUTOCONFIG_DNS", dns.addr().to_string())
        // No autoconfig file anywhere: the HTTPS fetches must fail fast, not reach the network.
        .env("MAILCAT_AUTOCONFIG_URL", "https://127.0.0.1:1")
        .output()
        .expect("mailcat runs");
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let imaps = format!("imaps://{}:{}", lab.tls_name, lab.imaps_port);
    let submission = format!("smtp://{}:{}", lab.tls_name, lab.submission_port);
    assert!(
        shown.contains(&format!(
            "Servers found by autoconfig: {imaps} and {submission}"
        )),
        "{shown}"
    );
    // DNS is not authenticated, and the records point outside example.test: the user is told.
    assert!(shown.contains("not authenticated"), "{shown}");
    assert_eq!(shown.matches("✓ login").count(), 2, "{shown}");

    // Nothing to find: exit 69, and what to do instead.
    let empty = DnsServer::start(Vec::new());
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args([
            "check",
            "--timeout",
            "2",
            "--email",
            "nobody@nothing-here.invalid",
        ])
        .env("MAILCAT_AUTOCONFIG_DNS", empty.addr().to_string())
        .env("MAILCAT_AUTOCONFIG_URL", "https://127.0.0.1:1")
        .output()
        .expect("mailcat runs");
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(69), "{shown}");
    assert!(
        shown.contains("autoconfig found none") && shown.contains("--incoming"),
        "{shown}"
    );
}

#[test]
fn trace_shows_the_dialogue_and_a_private_ehlo_name() {
    let lab = Lab::from_env();
    let ca = lab.ca_file.to_str().expect("UTF-8 path");
    let output = mailcat(&[
        "check",
        "-v",
        "--ca-file",
        ca,
        "--outgoing",
        &format!("smtp://{}:{}", lab.tls_name, lab.submission_port),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let trace = String::from_utf8_lossy(&output.stderr);
    assert!(
        trace.contains("C: EHLO [127.0.0.1]"),
        "the EHLO name is an address literal, never a user or path:\n{trace}"
    );
    assert!(
        trace.contains("C: STARTTLS") && trace.contains("S: 220"),
        "{trace}"
    );
}

#[test]
fn check_uses_the_account_from_the_config_file() {
    let lab = Lab::from_env();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("check-config");
    std::fs::create_dir_all(dir.join("mailcat")).expect("temp dir");
    let config = format!(
        "default_account = \"lab\"\n[accounts.lab]\nemail = \"{}\"\nincoming = \"pop3s://{}:{}\"\noutgoing = \"smtps://{}:{}\"\nca_file = \"{}\"\n",
        lab.user,
        lab.tls_name,
        lab.pop3s_port,
        lab.tls_name,
        lab.submissions_port,
        lab.ca_file.display()
    );
    std::fs::write(dir.join("mailcat/config.toml"), config).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .arg("check")
        .env("XDG_CONFIG_HOME", &dir)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains(&format!("Account {} (lab)", lab.user)),
        "{}",
        text(&output)
    );
}

/// A one-connection plaintext IMAP server (for `--allow-plaintext`): greets, then reads
/// without answering, so the capability query times out.
fn stalling_imap_server() -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("mailcat connects");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(b"* OK ready\r\n").expect("greeting");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    (port, handle)
}

#[test]
fn a_failing_step_is_named_not_called_server_response() {
    // The login step is covered by the session's check_scripted.rs.
    let (port, server) = stalling_imap_server();
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(["check", "--allow-plaintext", "--timeout", "1"])
        .args(["--email", "alice@example.test"])
        .args(["--incoming", &format!("imap://127.0.0.1:{port}")])
        .env("MAILCAT_PASSWORD", "pw")
        .output()
        .expect("mailcat runs");
    let shown = text(&output);
    assert!(shown.contains("✗ capability query"), "{shown}");
    assert!(!shown.contains("server response"), "{shown}");
    server.join().expect("server");
}
