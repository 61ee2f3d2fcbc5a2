//! The peer benches' mailcat row for POP3: the library (`mailcat-session`), one session, the
//! same job as peer_async_pop. Run by `benches/run-peers.sh`; prints `messages=N bytes=B` for
//! it to verify. One binary per protocol, as each peer is (see peer_mailcat_imap.rs).
//!
//! ```text
//! peer_mailcat_pop3 USER   # STAT, retrieve_many (pipelined) into sinks
//! ```

use mailcat_benches::peer::{args, exit_on_error, report, Lab};
use mailcat_session::{pop3, Credential, Plaintext};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use std::time::Duration;

type Result<T> = std::result::Result<T, String>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn endpoint(lab: &Lab, protocol: Protocol, port: u16) -> Endpoint {
    Endpoint::new(protocol, &lab.host, Security::ImplicitTls).with_port(port)
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
        [user] => runtime.block_on(pop3_job(&lab, &tls, user))?,
        _ => return Err("usage: peer_mailcat_pop3 USER".into()),
    };
    report(messages, bytes);
    Ok(())
}

fn main() {
    exit_on_error("peer_mailcat_pop3", main_inner());
}
