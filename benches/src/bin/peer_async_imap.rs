//! Peer bench: async-imap (tokio, rustls with ring), one `UID FETCH 1:* BODY.PEEK[]`, bodies
//! counted and dropped. Run by `benches/run-peers.sh`; prints `messages=N bytes=B`.
//!
//! ```text
//! peer_async_imap USER
//! ```

use futures_util::StreamExt;
use mailcat_benches::peer::{args, exit_on_error, report, Lab};

type Result<T> = std::result::Result<T, String>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn job(lab: &Lab, user: &str) -> Result<(usize, u64)> {
    let tcp = tokio::net::TcpStream::connect((lab.host.as_str(), lab.imaps))
        .await
        .map_err(fail)?;
    tcp.set_nodelay(true).map_err(fail)?;
    let connector = tokio_rustls::TlsConnector::from(lab.rustls_config()?);
    let tls = connector
        .connect(lab.server_name()?, tcp)
        .await
        .map_err(fail)?;
    let mut client = async_imap::Client::new(tls);
    client
        .read_response()
        .await
        .map_err(fail)?
        .ok_or("no greeting")?;
    let mut session = client
        .login(user, &lab.password)
        .await
        .map_err(|(e, _)| fail(e))?;
    session.examine("INBOX").await.map_err(fail)?;
    let (mut messages, mut bytes) = (0, 0);
    {
        let mut fetches = session
            .uid_fetch("1:*", "BODY.PEEK[]")
            .await
            .map_err(fail)?;
        while let Some(fetch) = fetches.next().await {
            let fetch = fetch.map_err(fail)?;
            if let Some(body) = fetch.body() {
                messages += 1;
                bytes += body.len() as u64;
            }
        }
    }
    session.logout().await.map_err(fail)?;
    Ok((messages, bytes))
}

fn main_inner() -> Result<()> {
    let lab = Lab::from_env()?;
    let [user] = &args()[..] else {
        return Err("usage: peer_async_imap USER".into());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let (messages, bytes) = runtime.block_on(job(&lab, user))?;
    report(messages, bytes);
    Ok(())
}

fn main() {
    exit_on_error("peer_async_imap", main_inner());
}
