//! The account check as a library call, against the lab: progress arrives step by step, and
//! each server's outcome carries a typed verdict an app can show in its own way; a mechanism
//! chosen for the credential is the one used on IMAP, POP3 and SMTP alike, or none.
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.
#![allow(clippy::unwrap_used)]

use mailcat_session::check::{self, Options, Progress, Role, Verdict};
use mailcat_session::{Account, Credential, Error, Mechanism};
use mailcat_tests::lab::Lab;
use mailcat_transport::{Endpoint, Protocol, Security, TlsSettings};

fn lab_account(lab: &Lab, password: &str) -> (Account, Vec<(Role, Endpoint)>) {
    let incoming = Endpoint::new(Protocol::Imap, &lab.tls_name, Security::ImplicitTls)
        .with_port(lab.imaps_port);
    let outgoing = Endpoint::new(Protocol::Smtp, &lab.tls_name, Security::StartTls)
        .with_port(lab.submission_port);
    let mut account = Account::new(
        &lab.user,
        Credential::password(&lab.user, password),
        incoming.clone(),
        outgoing.clone(),
    );
    account.tls = TlsSettings::only_ca_file(&lab.ca_file);
    (
        account,
        vec![(Role::Incoming, incoming), (Role::Outgoing, outgoing)],
    )
}

#[tokio::test]
async fn progress_comes_step_by_step_and_outcomes_are_typed() {
    let lab = Lab::from_env();
    let (account, servers) = lab_account(&lab, &lab.password);
    let mut seen = Vec::new();
    let report = check::check(&account, &servers, &Options::default(), &mut |p| {
        seen.push(match p {
            Progress::Server { role, .. } => format!("server {}", role.describe()),
            Progress::Step { report, secured } => format!("{} {secured}", report.step.describe()),
            Progress::Done { step, .. } => step.to_owned(),
            Progress::Passed => "passed".into(),
            other => format!("{other:?}"),
        });
    })
    .await
    .unwrap();
    assert!(report.passed());
    assert_eq!(
        seen,
        [
            "server incoming",
            "DNS lookup true",
            "TCP connect true",
            "TLS handshake true",
            "server greeting true",
            "capability query true",
            "login",
            "passed",
            "server outgoing",
            "DNS lookup false",
            "TCP connect false",
            "server greeting false",
            "capability query false",
            "STARTTLS true",
            "capability query true",
            "login",
            "passed",
        ]
    );

    // One wrong password: both logins refused, once each, with the verdict apps switch on.
    let (account, servers) = lab_account(&lab, "not the password");
    let mut failed_steps = Vec::new();
    let report = check::check(&account, &servers, &Options::default(), &mut |p| {
        if let Progress::Failed { step, .. } = p {
            failed_steps.push(step);
        }
    })
    .await
    .unwrap();
    assert!(!report.passed());
    assert_eq!(failed_steps, ["login", "login"]);
    let verdicts: Vec<Verdict> = report.servers.iter().map(|s| s.verdict()).collect();
    assert_eq!(verdicts, [Verdict::Authentication, Verdict::Authentication]);
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the lab (tests/lab/lab.sh up; eval \"$(tests/lab/lab.sh env)\")")
    })
}

/// IMAPS, POP3S and submission (STARTTLS): the three protocols' SASL framings.
fn every_protocol(lab: &Lab) -> Vec<(Role, Endpoint)> {
    vec![
        (
            Role::Incoming,
            Endpoint::new(Protocol::Imap, &lab.tls_name, Security::ImplicitTls)
                .with_port(lab.imaps_port),
        ),
        (
            Role::Incoming,
            Endpoint::new(Protocol::Pop3, &lab.tls_name, Security::ImplicitTls)
                .with_port(lab.pop3s_port),
        ),
        (
            Role::Outgoing,
            Endpoint::new(Protocol::Smtp, &lab.tls_name, Security::StartTls)
                .with_port(lab.submission_port),
        ),
    ]
}

fn account_with(lab: &Lab, email: &str, credential: Credential) -> Account {
    let servers = every_protocol(lab);
    let mut account = Account::new(
        email,
        credential,
        servers[0].1.clone(),
        servers[2].1.clone(),
    );
    account.tls = TlsSettings::only_ca_file(&lab.ca_file);
    account
}

#[tokio::test]
async fn a_chosen_oauth2_mechanism_logs_in_to_imap_pop3_and_smtp() {
    let lab = Lab::from_env();
    let user = var("MAILCAT_LAB_OAUTH2_USER");
    let token = var("MAILCAT_LAB_OAUTH2_TOKEN");
    for mechanism in [Mechanism::OAuthBearer, Mechanism::XOAuth2] {
        let credential = Credential::oauth2(&user, token.as_str())
            .with_mechanism(mechanism)
            .unwrap();
        let account = account_with(&lab, &user, credential);
        let report = check::check(
            &account,
            &every_protocol(&lab),
            &Options::default(),
            &mut |_| {},
        )
        .await
        .unwrap();
        assert!(report.passed(), "{mechanism}: {report:?}");
    }
}

#[tokio::test]
async fn a_chosen_mechanism_the_lab_lacks_is_missing_not_a_wrong_password_and_none_other_is_tried()
{
    let lab = Lab::from_env();
    // The lab offers PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER; the automatic choice logs alice in
    // with PLAIN. Asked for SCRAM-SHA-256, mailcat logs in nowhere.
    let credential = Credential::password(&lab.user, lab.password.as_str())
        .with_mechanism(Mechanism::ScramSha256)
        .unwrap();
    let account = account_with(&lab, &lab.user, credential);
    let report = check::check(
        &account,
        &every_protocol(&lab),
        &Options::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    for server in &report.servers {
        assert_eq!(server.verdict(), Verdict::MissingCapability, "{server:?}");
        let Err(error @ Error::MechanismNotOffered { offered, .. }) = &server.outcome else {
            panic!("{server:?}");
        };
        let offered: Vec<String> = offered.iter().map(|m| m.to_ascii_uppercase()).collect();
        for lab_has in ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"] {
            assert!(offered.iter().any(|m| m == lab_has), "{lab_has}: {error}");
        }
        assert!(
            error.to_string().contains("does not offer SCRAM-SHA-256"),
            "{error}"
        );
    }
}
