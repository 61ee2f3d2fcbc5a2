//! The peer benches' mailcat row for SMTP: the library (`mailcat-session`), one session, the
//! same job as peer_lettre. Run by `benches/run-peers.sh`; prints `messages=N bytes=B` for it
//! to verify. One binary per protocol, as each peer is (see peer_mailcat_imap.rs).
//!
//! ```text
//! peer_mailcat_smtp USER RCPT COUNT FILE   # COUNT × send of FILE on one connection
//! ```

use mailcat_benches::peer::{args, exit_on_error, report, Lab};
use mailcat_session::smtp::{Address, Envelope, MessageInfo};
use mailcat_session::{smtp, Credential, Plaintext};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use std::time::Duration;

type Result<T> = std::result::Result<T, String>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn endpoint(lab: &Lab, protocol: Protocol, port: u16) -> Endpoint {
    Endpoint::new(protocol, &lab.host, Security::ImplicitTls).with_port(port)
}

async fn smtp_job(
    lab: &Lab,
    tls: &TlsSettings,
    user: &str,
    rcpt: &str,
    count: usize,
    message: &[u8],
) -> Result<(usize, u64)> {
    let timeouts = Timeouts::uniform(Duration::from_secs(60));
    let endpoint = endpoint(lab, Protocol::Smtp, lab.submissions);
    let mut session = smtp::connect(&endpoint, tls, &timeouts)
        .await
        .map_err(fail)?;
    let credential = Credential::password(user, lab.password.as_bytes());
    session
        .login(&credential, Plaintext::Refuse)
        .await
        .map_err(fail)?;
    let envelope = Envelope {
        from: Some(Address::new(user).map_err(fail)?),
        to: vec![Address::new(rcpt).map_err(fail)?],
        ..Default::default()
    };
    let info = MessageInfo::of_bytes(message);
    for _ in 0..count {
        session
            .send(&envelope, &mut &message[..], &info)
            .await
            .map_err(fail)?;
    }
    session.logout().await.map_err(fail)?;
    Ok((count, (count * message.len()) as u64))
}

fn main_inner() -> Result<()> {
    let lab = Lab::from_env()?;
    let tls = TlsSettings::only_ca_file(&lab.ca_file);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let args = args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (messages, bytes) = match args[..] {
        [user, rcpt, count, file] => {
            let count = count.parse().map_err(fail)?;
            let message = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            runtime.block_on(smtp_job(&lab, &tls, user, rcpt, count, &message))?
        }
        _ => return Err("usage: peer_mailcat_smtp USER RCPT COUNT FILE".into()),
    };
    report(messages, bytes);
    Ok(())
}

fn main() {
    exit_on_error("peer_mailcat_smtp", main_inner());
}
