//! The peer benches' mailcat row for IMAP: the library (`mailcat-session`), one session, the
//! same job as peer_async_imap. Run by `benches/run-peers.sh`; prints `messages=N bytes=B` for
//! it to verify. One binary per protocol, as each peer is: the one binary for all three had
//! 3.2 MB of text against 2.6–2.7 MB for one protocol, and nearly all of a binary's text ends
//! up resident (the kernel maps it 64 KiB around every page touched, used or not), so it cost
//! 0.3–0.5 MiB of peak RSS that the peers, one protocol each, did not carry.
//!
//! ```text
//! peer_mailcat_imap USER   # UID SEARCH ALL, fetch_messages into sinks
//! ```

use mailcat_benches::peer::{args, exit_on_error, report, Lab};
use mailcat_codec::imap::command::{Mailbox, SearchKey};
use mailcat_session::{imap, Credential, Plaintext};
use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use std::time::Duration;

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
        [user] => runtime.block_on(imap_job(&lab, &tls, user))?,
        _ => return Err("usage: peer_mailcat_imap USER".into()),
    };
    report(messages, bytes);
    Ok(())
}

fn main() {
    exit_on_error("peer_mailcat_imap", main_inner());
}
