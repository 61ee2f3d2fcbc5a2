//! The account check as a library call, against the lab: progress arrives step by step, and
//! each server's outcome carries a typed verdict an app can show in its own way.
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.
#![allow(clippy::unwrap_used)]

use mailcat_session::check::{self, Options, Progress, Role, Verdict};
use mailcat_session::{Account, Credential};
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
        })
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
