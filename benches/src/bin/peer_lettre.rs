//! Peer bench: lettre's SMTP connection (`SmtpConnection`, implicit TLS with rustls and ring,
//! AUTH PLAIN), COUNT × the same message on one connection. Run by `benches/run-peers.sh`;
//! prints `messages=N bytes=B`.
//!
//! ```text
//! peer_lettre USER RCPT COUNT FILE
//! ```

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use mailcat_benches::peer::{args, exit_on_error, report, Lab};
use std::time::Duration;

type Result<T> = std::result::Result<T, String>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn main_inner() -> Result<()> {
    let lab = Lab::from_env()?;
    let [user, rcpt, count, file] = &args()[..] else {
        return Err("usage: peer_lettre USER RCPT COUNT FILE".into());
    };
    let count: usize = count.parse().map_err(fail)?;
    let message = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let ca = std::fs::read(&lab.ca_file).map_err(|e| format!("{}: {e}", lab.ca_file))?;
    let tls = TlsParameters::builder(lab.tls_name.clone())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(Certificate::from_pem(&ca).map_err(fail)?)
        .build_rustls()
        .map_err(fail)?;
    let mut connection = SmtpConnection::connect(
        (lab.host.as_str(), lab.submissions),
        Some(Duration::from_secs(60)),
        &ClientId::Domain("bench.example.test".into()),
        Some(&tls),
        None,
    )
    .map_err(fail)?;
    let credentials = Credentials::new(user.clone(), lab.password.clone());
    connection
        .auth(&[Mechanism::Plain], &credentials)
        .map_err(fail)?;
    let envelope = Envelope::new(
        Some(user.parse::<Address>().map_err(fail)?),
        vec![rcpt.parse::<Address>().map_err(fail)?],
    )
    .map_err(fail)?;
    for _ in 0..count {
        connection.send(&envelope, &message).map_err(fail)?;
    }
    connection.quit().map_err(fail)?;
    report(count, (count * message.len()) as u64);
    Ok(())
}

fn main() {
    exit_on_error("peer_lettre", main_inner());
}
