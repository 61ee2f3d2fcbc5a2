//! The peer benches' mailcat row for POP3: the library (`mailcat-session`), one session, the
//! same job as peer_async_pop. Run by `benches/run-peers.sh`; prints `messages=N bytes=B` for
//! it to verify. One binary per protocol, as each peer is (see peer_mailcat_imap.rs).
//!
//! ```text
//! peer_mailcat_pop3 USER   # STAT, retrieve_many (pipelined) into sinks
//! ```

use mailcat_benches::peer::{run_mailcat, MailcatPeer};
use mailcat_session::{pop3, Plaintext};
use mailcat_transport::Protocol;

async fn pop3_job(peer: MailcatPeer, args: Vec<String>) -> Result<(usize, u64), String> {
    let [user] = &args[..] else {
        return Err("usage: peer_mailcat_pop3 USER".into());
    };
    let fail = |e: mailcat_session::Error| e.to_string();
    let mut session = pop3::connect(&peer.endpoint, &peer.tls, &peer.timeouts)
        .await
        .map_err(fail)?;
    session
        .login(&peer.credential(user), Plaintext::Refuse)
        .await
        .map_err(fail)?;
    let stat = session.stat().await.map_err(fail)?;
    let numbers: Vec<u32> = (1..=stat.count).collect();
    let results = session
        .retrieve_many(&numbers, |_| async { Ok(tokio::io::sink()) })
        .await
        .map_err(fail)?;
    session.quit().await.map_err(fail)?;
    let sizes = results.into_iter().collect::<Result<Vec<u64>, _>>();
    let sizes = sizes.map_err(fail)?;
    Ok((sizes.len(), sizes.iter().sum()))
}

fn main() {
    run_mailcat("peer_mailcat_pop3", Protocol::Pop3, pop3_job);
}
