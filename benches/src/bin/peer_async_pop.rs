//! Peer bench: async-pop (tokio, rustls with ring), STAT then one `RETR` after another (the
//! crate does not pipeline), bodies counted and dropped. Run by `benches/run-peers.sh`;
//! prints `messages=N bytes=B`.
//!
//! ```text
//! peer_async_pop USER
//! ```

use mailcat_benches::peer::{args, exit_on_error, report, Lab};

type Result<T> = std::result::Result<T, String>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn job(lab: &Lab, user: &str) -> Result<(usize, u64)> {
    let tcp = tokio::net::TcpStream::connect((lab.host.as_str(), lab.pop3s))
        .await
        .map_err(fail)?;
    tcp.set_nodelay(true).map_err(fail)?;
    let connector = tokio_rustls::TlsConnector::from(lab.rustls_config()?);
    let tls = connector
        .connect(lab.server_name()?, tcp)
        .await
        .map_err(fail)?;
    let mut client = async_pop::new(tls).await.map_err(fail)?;
    client.login(user, &lab.password).await.map_err(fail)?;
    let stat = client.stat().await.map_err(fail)?;
    let count: usize = stat.counter().clone().try_into().map_err(fail)?;
    let (mut messages, mut bytes) = (0, 0);
    for n in 1..=count {
        let body = client.retr(n).await.map_err(fail)?;
        messages += 1;
        bytes += message_size(&body);
    }
    client.quit().await.map_err(fail)?;
    Ok((messages, bytes))
}

/// The size of the message as sent: async-pop's RETR returns the text before the final
/// `CRLF.CRLF` (so the last CRLF is not in it) and leaves the dot-stuffing in.
fn message_size(body: &[u8]) -> u64 {
    let stuffed =
        usize::from(body.starts_with(b"..")) + body.windows(4).filter(|w| w == b"\r\n..").count();
    (body.len() + 2 - stuffed) as u64
}

fn main_inner() -> Result<()> {
    let lab = Lab::from_env()?;
    let [user] = &args()[..] else {
        return Err("usage: peer_async_pop USER".into());
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
    exit_on_error("peer_async_pop", main_inner());
}
