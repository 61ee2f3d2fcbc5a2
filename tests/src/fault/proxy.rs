//! A TCP proxy that injects one planned fault into the next connection it forwards, at a byte
//! offset of one direction: a reset (RST, by `SO_LINGER` 0), a truncation (a plain close), a
//! stall, a drip of one-byte writes, a duplicated or a reordered chunk, or (SMTP) the server's
//! reply to the end of the message withheld and the connection closed.
//!
//! It forwards bytes as they come, TLS or not, without looking into them: an offset counts the
//! bytes of the direction from the first, the TLS handshake included. What a fault hits is
//! chosen by the offset: a large message makes most of a fetch's server-to-client bytes, so an
//! offset drawn inside that range cuts a transfer in the middle of an IMAP literal or a POP3
//! `RETR` body; the same for the client-to-server bytes of an SMTP `DATA` body.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A direction of the forwarded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the client (mailcat) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Self::ToServer => 0,
            Self::ToClient => 1,
        }
    }

    /// `c2s` or `s2c`.
    pub fn short(self) -> &'static str {
        match self {
            Self::ToServer => "c2s",
            Self::ToClient => "s2c",
        }
    }
}

/// One fault, injected once the direction has carried `offset` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward `offset` bytes, then reset both connections (RST: `SO_LINGER` 0 and close).
    Reset { dir: Direction, offset: u64 },
    /// Forward `offset` bytes, then close both connections (FIN): the stream ends there.
    Truncate { dir: Direction, offset: u64 },
    /// Forward `offset` bytes, then nothing more either way; the connections stay open until
    /// the client gives up (or a cap of two minutes).
    Stall { dir: Direction, offset: u64 },
    /// From `offset` on, forward `len` bytes one byte per write, then as usual. Not a failure:
    /// the client must succeed.
    Drip {
        dir: Direction,
        offset: u64,
        len: u64,
    },
    /// The bytes of the chunk read at `offset`, from there to its end, are forwarded twice.
    Duplicate { dir: Direction, offset: u64 },
    /// The chunk read at `offset` (from there on) is held and forwarded after the next one;
    /// without a next one soon, its two halves are swapped.
    Reorder { dir: Direction, offset: u64 },
    /// SMTP: once the client has sent `body` bytes (past the end of the `DATA` body's bulk),
    /// nothing more reaches the client: the server's reply to the final `.` is withheld and
    /// both connections are closed as it arrives. The server has the message; the client
    /// cannot know.
    CloseAfterDot { body: u64 },
}

impl Fault {
    /// The kind's name, as the summary counts it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reset { .. } => "reset",
            Self::Truncate { .. } => "truncate",
            Self::Stall { .. } => "stall",
            Self::Drip { .. } => "drip",
            Self::Duplicate { .. } => "duplicate",
            Self::Reorder { .. } => "reorder",
            Self::CloseAfterDot { .. } => "close-after-dot",
        }
    }

    /// The direction and offset the fault waits for.
    pub fn trigger(&self) -> (Direction, u64) {
        match *self {
            Self::Reset { dir, offset }
            | Self::Truncate { dir, offset }
            | Self::Stall { dir, offset }
            | Self::Drip { dir, offset, .. }
            | Self::Duplicate { dir, offset }
            | Self::Reorder { dir, offset } => (dir, offset),
            Self::CloseAfterDot { body } => (Direction::ToServer, body),
        }
    }
}

/// What happened to the connections since the fault was armed.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Connections forwarded.
    pub connections: u32,
    /// When the fault struck; `None` when the stream ended before its offset.
    pub injected_at: Option<Instant>,
    /// Bytes forwarded (or dropped at the fault) per direction: client to server, server to
    /// client, over all connections.
    pub bytes: [u64; 2],
    /// A word on the fault as it happened (e.g. a reorder that found no second chunk).
    pub note: Option<&'static str>,
}

#[derive(Debug, Default)]
struct Shared {
    armed: Mutex<Option<Fault>>,
    report: Mutex<Report>,
    active: AtomicUsize,
}

impl Shared {
    fn report(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The proxy: listens on 127.0.0.1 and forwards every connection to its target.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts the proxy on the current tokio runtime.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let accept = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&accept);
                shared.active.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let fault = shared
                            .armed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take();
                        shared.report().connections += 1;
                        forward(client, server, fault, &shared).await;
                    }
                    shared.active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Self { port, shared })
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Plans `fault` (or none) for the next connection, and starts a new report.
    pub fn arm(&self, fault: Option<Fault>) {
        *self.shared.armed.lock().unwrap_or_else(|e| e.into_inner()) = fault;
        *self.shared.report() = Report::default();
    }

    /// What happened since [`FaultProxy::arm`].
    pub fn report(&self) -> Report {
        self.shared.report().clone()
    }

    /// Waits until no connection is open any more (the server ended its side as well), for
    /// at most `limit`; true if so.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.shared.active.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// Both halves of one side.
struct Side {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    /// Its read half has ended.
    done: bool,
}

impl Side {
    fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Self {
            read,
            write,
            done: false,
        }
    }

    /// Closes the socket with a RST: `SO_LINGER` 0, and no shutdown first (dropping a write
    /// half would send a FIN ahead of the RST, which reads as a plain end of stream).
    fn reset(self) {
        if let Ok(stream) = self.read.reunite(self.write) {
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    }
}

/// What to do after a chunk.
enum Next {
    Go,
    Close,
    Reset,
}

async fn forward(client: TcpStream, server: TcpStream, fault: Option<Fault>, shared: &Shared) {
    let mut sides = [Side::new(client), Side::new(server)];
    let mut fault = fault;
    // The bytes already read in each direction, and the bytes still to drip (and which way).
    let mut counts = [0u64; 2];
    let mut drip: Option<(Direction, u64)> = None;
    // CloseAfterDot: the body has gone out, nothing more reaches the client.
    let mut withholding = false;
    let mut to_server = vec![0u8; 16 * 1024];
    let mut to_client = vec![0u8; 16 * 1024];
    loop {
        if sides[0].done && sides[1].done {
            break;
        }
        let (dir, n) = {
            let [client, server] = &mut sides;
            tokio::select! {
                r = client.read.read(&mut to_server), if !client.done => (Direction::ToServer, r.unwrap_or(0)),
                r = server.read.read(&mut to_client), if !server.done => (Direction::ToClient, r.unwrap_or(0)),
            }
        };
        let (from, to) = match dir {
            Direction::ToServer => (0, 1),
            Direction::ToClient => (1, 0),
        };
        if n == 0 {
            // One side ended: end the other's writing, keep forwarding the other way.
            sides[from].done = true;
            let _ = sides[to].write.shutdown().await;
            if withholding && dir == Direction::ToClient {
                break;
            }
            continue;
        }
        let chunk = match dir {
            Direction::ToServer => &to_server[..n],
            Direction::ToClient => &to_client[..n],
        };
        let before = counts[dir.index()];
        counts[dir.index()] += n as u64;
        shared.report().bytes[dir.index()] += n as u64;

        if withholding && dir == Direction::ToClient {
            // The reply to the end of the message: the server has it; close both.
            shared.report().injected_at = Some(Instant::now());
            tokio::time::sleep(Duration::from_millis(50)).await;
            break;
        }
        if let Some((drip_dir, left)) = drip.filter(|(d, left)| *d == dir && *left > 0) {
            let take = (n as u64).min(left) as usize;
            drip = Some((drip_dir, left - take as u64));
            if drip_bytes(&mut sides[to].write, &chunk[..take])
                .await
                .is_err()
                || sides[to].write.write_all(&chunk[take..]).await.is_err()
            {
                break;
            }
            continue;
        }
        let strikes = fault.is_some_and(|f| {
            let (d, offset) = f.trigger();
            d == dir && before + n as u64 > offset
        });
        if !strikes {
            if sides[to].write.write_all(chunk).await.is_err() {
                break;
            }
            continue;
        }
        let Some(f) = fault.take() else { continue };
        let (_, offset) = f.trigger();
        let k = (offset.saturating_sub(before) as usize).min(n);
        let (head, rest) = chunk.split_at(k);
        if sides[to].write.write_all(head).await.is_err() {
            break;
        }
        let now = Instant::now();
        let next = match f {
            Fault::Reset { .. } => {
                shared.report().injected_at = Some(now);
                Next::Reset
            }
            Fault::Truncate { .. } => {
                shared.report().injected_at = Some(now);
                let _ = sides[0].write.shutdown().await;
                let _ = sides[1].write.shutdown().await;
                Next::Close
            }
            Fault::Stall { .. } => {
                shared.report().injected_at = Some(now);
                stall(&mut sides[0]).await;
                Next::Close
            }
            Fault::Drip { len, .. } => {
                shared.report().injected_at = Some(now);
                let take = (rest.len() as u64).min(len) as usize;
                // Later chunks of this direction drip too, until `len` bytes have.
                drip = Some((dir, len - take as u64));
                match drip_bytes(&mut sides[to].write, &rest[..take]).await {
                    Ok(()) if sides[to].write.write_all(&rest[take..]).await.is_ok() => Next::Go,
                    _ => Next::Close,
                }
            }
            Fault::Duplicate { .. } => {
                shared.report().injected_at = Some(now);
                let w = &mut sides[to].write;
                match w.write_all(rest).await {
                    Ok(()) if w.write_all(rest).await.is_ok() => Next::Go,
                    _ => Next::Close,
                }
            }
            Fault::Reorder { .. } => {
                let held = rest.to_vec();
                let mut next = vec![0u8; 16 * 1024];
                let read = tokio::time::timeout(
                    Duration::from_millis(50),
                    sides[from].read.read(&mut next),
                )
                .await;
                let (first, second) = match read {
                    Ok(Ok(m)) if m > 0 => {
                        counts[dir.index()] += m as u64;
                        shared.report().bytes[dir.index()] += m as u64;
                        (next[..m].to_vec(), held)
                    }
                    _ => {
                        // No second chunk: swap the halves of this one.
                        shared.report().note = Some("halves of one chunk swapped");
                        let mid = held.len() / 2;
                        (held[mid..].to_vec(), held[..mid].to_vec())
                    }
                };
                shared.report().injected_at = Some(Instant::now());
                let w = &mut sides[to].write;
                match w.write_all(&first).await {
                    Ok(()) if w.write_all(&second).await.is_ok() => Next::Go,
                    _ => Next::Close,
                }
            }
            Fault::CloseAfterDot { .. } => {
                withholding = true;
                if sides[to].write.write_all(rest).await.is_err() {
                    Next::Close
                } else {
                    Next::Go
                }
            }
        };
        match next {
            Next::Go => {}
            Next::Close => break,
            Next::Reset => {
                let [client, server] = sides;
                client.reset();
                server.reset();
                return;
            }
        }
    }
    if withholding && shared.report().injected_at.is_none() {
        // The server closed without a reply.
        shared.report().note = Some("no reply to withhold");
    }
}

/// Writes `bytes` one byte per write, with a pause now and then so the reader sees them one
/// by one.
async fn drip_bytes(w: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    for (i, byte) in bytes.iter().enumerate() {
        w.write_all(std::slice::from_ref(byte)).await?;
        if i % 64 == 63 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(())
}

/// Forwards nothing more; waits for the client to give up (its side ends), reading and
/// dropping what it sends, for at most two minutes.
async fn stall(client: &mut Side) {
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match client.read.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A server that sends `bytes` and then reads until the client goes; and a proxy to it
    /// with `fault` armed. Returns what the client read, and how its read ended.
    async fn through(fault: Option<Fault>, bytes: Vec<u8>) -> (Vec<u8>, std::io::Result<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            // Two writes with a pause between: two chunks for the proxy to read.
            let mid = bytes.len() / 2;
            let _ = stream.write_all(&bytes[..mid]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = stream.write_all(&bytes[mid..]).await;
            let _ = stream.shutdown().await;
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        });
        let proxy = FaultProxy::start(target).await.expect("proxy");
        proxy.arm(fault);
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        let mut got = Vec::new();
        let mut buffer = [0u8; 4096];
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match client.read(&mut buffer).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => got.extend_from_slice(&buffer[..n]),
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        (got, ended)
    }

    fn data() -> Vec<u8> {
        (0..200u8).collect()
    }

    fn s2c(offset: u64) -> (Direction, u64) {
        (Direction::ToClient, offset)
    }

    #[tokio::test]
    async fn without_a_fault_every_byte_arrives_once_in_order() {
        let (got, ended) = through(None, data()).await;
        assert_eq!(got, data());
        assert!(ended.is_ok(), "{ended:?}");
    }

    #[tokio::test]
    async fn a_truncation_ends_the_stream_at_the_offset() {
        let (dir, offset) = s2c(150);
        let (got, ended) = through(Some(Fault::Truncate { dir, offset }), data()).await;
        assert_eq!(got, data()[..150]);
        assert!(ended.is_ok(), "a plain end of stream, not {ended:?}");
    }

    #[tokio::test]
    async fn a_reset_is_a_connection_reset() {
        let (dir, offset) = s2c(50);
        let (got, ended) = through(Some(Fault::Reset { dir, offset }), data()).await;
        assert!(got.len() <= 50, "{} bytes", got.len());
        let kind = ended.as_ref().map_err(std::io::Error::kind);
        assert_eq!(kind, Err(std::io::ErrorKind::ConnectionReset), "{ended:?}");
    }

    #[tokio::test]
    async fn a_stall_forwards_nothing_more() {
        let (dir, offset) = s2c(30);
        let (got, ended) = through(Some(Fault::Stall { dir, offset }), data()).await;
        assert_eq!(got, data()[..30]);
        let kind = ended.as_ref().map_err(std::io::Error::kind);
        assert_eq!(kind, Err(std::io::ErrorKind::TimedOut), "{ended:?}");
    }

    #[tokio::test]
    async fn a_drip_delivers_everything() {
        let (dir, offset) = s2c(10);
        let fault = Fault::Drip {
            dir,
            offset,
            len: 150,
        };
        let (got, ended) = through(Some(fault), data()).await;
        assert_eq!(got, data());
        assert!(ended.is_ok(), "{ended:?}");
    }

    #[tokio::test]
    async fn a_duplicate_repeats_the_rest_of_the_chunk() {
        let (dir, offset) = s2c(60);
        let (got, _) = through(Some(Fault::Duplicate { dir, offset }), data()).await;
        let mut want = data()[..100].to_vec();
        want.extend_from_slice(&data()[60..100]);
        want.extend_from_slice(&data()[100..]);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_reorder_swaps_two_chunks() {
        let (dir, offset) = s2c(60);
        let (got, _) = through(Some(Fault::Reorder { dir, offset }), data()).await;
        let mut want = data()[..60].to_vec();
        want.extend_from_slice(&data()[100..]);
        want.extend_from_slice(&data()[60..100]);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn the_report_says_when_the_fault_struck_and_counts_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let _ = stream.write_all(b"hello").await;
        });
        let proxy = FaultProxy::start(target).await.expect("proxy");
        proxy.arm(Some(Fault::Truncate {
            dir: Direction::ToClient,
            offset: 1000,
        }));
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.expect("read");
        drop(client);
        assert!(proxy.wait_idle(Duration::from_secs(5)).await);
        let report = proxy.report();
        assert_eq!(got, b"hello");
        assert_eq!(report.injected_at, None, "past the end: never struck");
        assert_eq!(report.bytes, [0, 5]);
        assert_eq!(report.connections, 1);
    }
}
