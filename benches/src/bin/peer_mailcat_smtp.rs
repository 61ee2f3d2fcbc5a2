//! The peer benches' mailcat row for SMTP: the library (`mailcat-session`), one session, the
//! same job as peer_lettre. Run by `benches/run-peers.sh`; prints `messages=N bytes=B` for it
//! to verify. One binary per protocol, as each peer is (see peer_mailcat_imap.rs).
//!
//! ```text
//! peer_mailcat_smtp USER RCPT COUNT FILE   # COUNT × send of FILE on one connection
//! ```

use mailcat_benches::peer::{run_mailcat, MailcatPeer};
use mailcat_session::smtp::{Address, Envelope, MessageInfo};
use mailcat_session::{smtp, Plaintext};
use mailcat_transport::Protocol;

async fn smtp_job(peer: MailcatPeer, args: Vec<String>) -> Result<(usize, u64), String> {
    let [user, rcpt, count, file] = &args[..] else {
        return Err("usage: peer_mailcat_smtp USER RCPT COUNT FILE".into());
    };
    let count: usize = count.parse().map_err(|e| format!("COUNT: {e}"))?;
    let message = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let fail = |e: mailcat_session::Error| e.to_string();
    let mut session = smtp::connect(&peer.endpoint, &peer.tls, &peer.timeouts)
        .await
        .map_err(fail)?;
    session
        .login(&peer.credential(user), Plaintext::Refuse)
        .await
        .map_err(fail)?;
    let envelope = Envelope {
        from: Some(Address::new(user).map_err(|e| e.to_string())?),
        to: vec![Address::new(rcpt).map_err(|e| e.to_string())?],
        ..Default::default()
    };
    let info = MessageInfo::of_bytes(&message);
    for _ in 0..count {
        session
            .send(&envelope, &mut &message[..], &info)
            .await
            .map_err(fail)?;
    }
    session.logout().await.map_err(fail)?;
    Ok((count, (count * message.len()) as u64))
}

fn main() {
    run_mailcat("peer_mailcat_smtp", Protocol::Smtp, smtp_job);
}
