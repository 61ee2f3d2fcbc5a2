//! The peer benches' mailcat row: the library (`mailcat-session`), one session, the same job as
//! each peer. Run by `benches/run-peers.sh`; prints `messages=N bytes=B` for it to verify.
//!
//! ```text
//! peer_mailcat imap USER                  # UID SEARCH ALL, fetch_messages into sinks
//! peer_mailcat pop3 USER                  # STAT, retrieve_many (pipelined) into sinks
//! peer_mailcat smtp USER RCPT COUNT FILE  # COUNT × send of FILE on one connection
//! ```

use mailcat_session::Plaintext;
use std::time::Duration;

use mailcat_benches::peer::{args, exit_on_error, report, Lab};
use mailcat_codec::imap::command::{Mailbox, SearchKey};
use mailcat_session::smtp::{Address, Envelope, MessageInfo};
use mailcat_session::{imap, pop3, smtp, Credential};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};

type Result<T> = std::result::Result<T, String>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn endpoint(lab: &Lab, protocol: Protocol, port: u16) -> Endpoint {
    Endpoint::new(protocol, &lab.host, Security::ImplicitTls).with_port(port)
}

async fn imap_job(lab: &Lab, tls: &TlsSettings, user: &str) -> Result<(usize, u64)> {
    let timeouts = Timeouts::uniform(Duration::from_secs(60));
    let mut session = imap::connect(&endpoint(lab, Protocol::Imap, lab.imaps), tls, &timeouts)
        .await
        .map_err(fail)?;
    let credential = Credential::password(user, lab.password.as_bytes());
    session
        .login(&credential, Plaintext::Refuse)
        .await
        .map_err(fail)?;
    session.examine(&Mailbox::inbox()).await.map_err(fail)?;
    let uids = session.uid_search(&SearchKey::All).await.map_err(fail)?;
    let mut requests: Vec<(u32, tokio::io::Sink)> =
        uids.iter().map(|&uid| (uid, tokio::io::sink())).collect();
    let sizes = session.fetch_messages(&mut requests).await.map_err(fail)?;
    session.logout().await.map_err(fail)?;
    let got: Vec<u64> = sizes.into_iter().flatten().collect();
    Ok((got.len(), got.iter().sum()))
}

async fn pop3_job(lab: &Lab, tls: &TlsSettings, user: &str) -> Result<(usize, u64)> {
    let timeouts = Timeouts::uniform(Duration::from_secs(60));
    let mut session = pop3::connect(&endpoint(lab, Protocol::Pop3, lab.pop3s), tls, &timeouts)
        .await
        .map_err(fail)?;
    let credential = Credential::password(user, lab.password.as_bytes());
    session
        .login(&credential, Plaintext::Refuse)
        .await
        .map_err(fail)?;
    let stat = session.stat().await.map_err(fail)?;
    let numbers: Vec<u32> = (1..=stat.count).collect();
    let results = session
        .retrieve_many(&numbers, |_| async { Ok(tokio::io::sink()) })
        .await
        .map_err(fail)?;
    session.quit().await.map_err(fail)?;
    let sizes = results
        .into_iter()
        .collect::<std::result::Result<Vec<u64>, _>>();
    let sizes = sizes.map_err(fail)?;
    Ok((sizes.len(), sizes.iter().sum()))
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
        ["imap", user] => runtime.block_on(imap_job(&lab, &tls, user))?,
        ["pop3", user] => runtime.block_on(pop3_job(&lab, &tls, user))?,
        ["smtp", user, rcpt, count, file] => {
            let count = count.parse().map_err(fail)?;
            let message = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            runtime.block_on(smtp_job(&lab, &tls, user, rcpt, count, &message))?
        }
        _ => return Err("usage: peer_mailcat imap|pop3 USER | smtp USER RCPT COUNT FILE".into()),
    };
    report(messages, bytes);
    Ok(())
}

fn main() {
    exit_on_error("peer_mailcat", main_inner());
}
