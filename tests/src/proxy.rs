//! A TCP proxy on loopback that a test can cut, to play a network loss between a client and
//! a real server: [`Proxy::cut`] drops every open connection, [`Proxy::set_accepting`] makes
//! new ones fail at once (as an unreachable network does) until it is turned back on.
//! [`Proxy::start_with_delay`] plays a distant server: each direction delays what it forwards.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A running proxy; its threads end with the test process.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    refusing: AtomicBool,
    accepted: AtomicUsize,
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards each connection to `target`.
    pub fn start(target: SocketAddr) -> Self {
        Self::start_with_delay(target, Duration::ZERO)
    }

    /// The same, with every byte held back `delay` in each direction before it is forwarded
    /// (so a round trip takes some `2 × delay` more). The delay is latency, not a rate limit:
    /// bytes that follow each other closely are forwarded as closely, each `delay` late.
    pub fn start_with_delay(target: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared::default());
        let accept_shared = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if accept_shared.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                // A link, not an endpoint: forward each chunk when it is due, without Nagle
                // holding small replies back for an ACK (which made every pipelined reply
                // cost a delayed ACK, 40 ms, and hid what pipelining gains).
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                accept_shared.accepted.fetch_add(1, Ordering::SeqCst);
                let mut open = accept_shared.open.lock().unwrap_or_else(|e| e.into_inner());
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    open.push(c);
                    open.push(s);
                }
                pump(&client, &server, delay);
                pump(&server, &client, delay);
            }
        });
        Self { port, shared }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections have been forwarded so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Drops every open connection, both ways.
    pub fn cut(&self) {
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// While `false`, a new connection is closed as soon as it is accepted.
    pub fn set_accepting(&self, accepting: bool) {
        self.shared.refusing.store(!accepting, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread until either side ends; with a `delay`, a second thread
/// writes each chunk `delay` after it was read.
fn pump(from: &TcpStream, to: &TcpStream, delay: Duration) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    if delay.is_zero() {
        thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
            let _ = from.shutdown(Shutdown::Read);
        });
        return;
    }
    let (line, held) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader = from.try_clone();
    thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if line
                        .send((Instant::now() + delay, buffer[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Dropping `line` tells the writer: the end, once what is held has gone out.
    });
    thread::spawn(move || {
        for (due, bytes) in held {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        if let Ok(from) = reader {
            let _ = from.shutdown(Shutdown::Read);
        }
    });
}
