//! A mail server over implicit TLS on loopback, played by a closure: for the behaviour of
//! foreign servers that needs TLS on the client's side (a mechanism used only over TLS, a
//! refused login followed by LOGOUT/QUIT and close_notify). The certificate is for `localhost`
//! and `127.0.0.1`, from a fresh test CA ([`TlsLineServer::ca_file`]). One connection is
//! served; the closure sees it as lines and returns what it wants to report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};

/// How long the server waits for the client before it gives up (the test then fails).
const IDLE: Duration = Duration::from_secs(10);

/// One TLS connection, line by line.
#[derive(Debug)]
pub struct LineConn {
    stream: BufReader<StreamOwned<ServerConnection, TcpStream>>,
    /// Every line received, without CRLF.
    pub received: Vec<String>,
}

impl LineConn {
    /// Sends `text` as it is (CRLF included by the caller).
    pub fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    /// Sends raw bytes (a bare LF, say).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let tls = self.stream.get_mut();
        // The client may be gone already: that is for the test to judge.
        let _ = tls.write_all(bytes).and_then(|()| tls.flush());
    }

    /// The next line without its CRLF, or `None` at the end of the stream.
    pub fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        match self.stream.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.received.push(text.clone());
                Some(text)
            }
        }
    }

    /// Reads the next line and panics unless it starts with `prefix`; returns it.
    pub fn expect(&mut self, prefix: &str) -> String {
        match self.line() {
            Some(line) if line.starts_with(prefix) => line,
            other => panic!("expected a line starting with {prefix:?}, got {other:?}"),
        }
    }

    /// Waits for the client to close: true if it sent TLS close_notify first (a clean close),
    /// false if the connection just ended. Lines that come first are recorded.
    pub fn closed_cleanly(&mut self) -> bool {
        while self.line().is_some() {}
        let mut rest = [0u8; 64];
        // After close_notify, rustls reports a clean end of stream (0); an abrupt end is an
        // UnexpectedEof error.
        matches!(self.stream.get_mut().read(&mut rest), Ok(0))
    }
}

/// The server: a port and the closure's result once the connection is over.
#[derive(Debug)]
pub struct TlsLineServer<T> {
    port: u16,
    ca_file: PathBuf,
    handle: JoinHandle<T>,
}

impl<T: Send + 'static> TlsLineServer<T> {
    /// Listens on 127.0.0.1:0 and plays `script` on the first connection, after the handshake.
    pub fn start(script: impl FnOnce(&mut LineConn) -> T + Send + 'static) -> Self {
        let (ca_pem, config) = crate::https_server::test_pki();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let ca_file = crate::https_server::write_ca(&ca_pem, port);
        let handle = thread::spawn(move || {
            let (tcp, _) = listener.accept().expect("a client connects");
            tcp.set_read_timeout(Some(IDLE)).expect("read timeout");
            tcp.set_write_timeout(Some(IDLE)).expect("write timeout");
            let conn = ServerConnection::new(Arc::clone(&config)).expect("TLS server");
            let mut tls = StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                tls.conn
                    .complete_io(&mut tls.sock)
                    .expect("TLS handshake with the client");
            }
            let mut conn = LineConn {
                stream: BufReader::new(tls),
                received: Vec::new(),
            };
            let result = script(&mut conn);
            let tls = conn.stream.get_mut();
            tls.conn.send_close_notify();
            let _ = tls.flush();
            let _ = tls.sock.shutdown(Shutdown::Both);
            result
        });
        Self {
            port,
            ca_file,
            handle,
        }
    }
}

impl<T> TlsLineServer<T> {
    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA's certificate as a PEM file.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// What the script returned (panics if it panicked: a mismatch fails the test).
    pub fn finish(self) -> T {
        match self.handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
