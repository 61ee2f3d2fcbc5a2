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

use mailcat_benches::peer::{run_mailcat, MailcatPeer};
use mailcat_codec::imap::command::{Mailbox, SearchKey};
use mailcat_session::{imap, Plaintext};
use mailcat_transport::Protocol;

async fn imap_job(peer: MailcatPeer, args: Vec<String>) -> Result<(usize, u64), String> {
    let [user] = &args[..] else {
        return Err("usage: peer_mailcat_imap USER".into());
    };
    let fail = |e: mailcat_session::Error| e.to_string();
    let mut session = imap::connect(&peer.endpoint, &peer.tls, &peer.timeouts)
        .await
        .map_err(fail)?;
    session
        .login(&peer.credential(user), Plaintext::Refuse)
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

fn main() {
    run_mailcat("peer_mailcat_imap", Protocol::Imap, imap_job);
}
