//! The floor of the peer benches: the fewest commands over TLS (rustls with ring, blocking
//! sockets, one thread), reading bytes until the final tagged `OK` or the last `.`, with no
//! parsing beyond framing (IMAP literals, POP3 lines for the terminator and dot-stuffing, so
//! that the bytes counted are the message bytes). Run by `benches/run-peers.sh`; prints
//! `messages=N bytes=B`.
//!
//! ```text
//! peer_raw imap USER   # LOGIN; then EXAMINE, UID FETCH 1:* BODY.PEEK[], LOGOUT in one write
//! peer_raw pop3 USER   # USER, PASS, STAT; then every RETR and QUIT in one write
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;

use mailcat_benches::peer::{args, exit_on_error, report, Lab};

type Result<T> = std::result::Result<T, String>;
type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A read buffer over the TLS stream: lines and counted skips.
struct Input {
    stream: Tls,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    fn new(stream: Tls) -> Self {
        Self {
            stream,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
        }
    }

    fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).map_err(fail)?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.end += n;
        Ok(())
    }

    /// The next line, CRLF included, as a range of `buf` valid until the next call.
    fn line(&mut self) -> Result<(usize, usize)> {
        let mut from = self.start;
        loop {
            if let Some(i) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let line = (self.start, from + i + 1);
                self.start = from + i + 1;
                return Ok(line);
            }
            let scanned = self.end - self.start;
            self.fill()?;
            from = self.start + scanned;
        }
    }

    /// Skips `n` bytes.
    fn skip(&mut self, mut n: usize) -> Result<()> {
        while n > 0 {
            if self.start == self.end {
                self.fill()?;
            }
            let take = n.min(self.end - self.start);
            self.start += take;
            n -= take;
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).map_err(fail)?;
        self.stream.flush().map_err(fail)
    }

    /// Reads lines until one starts with `tag` followed by a space; fails unless it says OK.
    fn until_tagged(&mut self, tag: &str) -> Result<()> {
        loop {
            let (a, b) = self.line()?;
            let line = &self.buf[a..b];
            if let Some(rest) = line.strip_prefix(format!("{tag} ").as_bytes()) {
                return match rest.starts_with(b"OK") {
                    true => Ok(()),
                    false => Err(String::from_utf8_lossy(line).into_owned()),
                };
            }
        }
    }

    fn ok_line(&mut self) -> Result<String> {
        let (a, b) = self.line()?;
        let line = String::from_utf8_lossy(&self.buf[a..b]).into_owned();
        match line.starts_with("+OK") {
            true => Ok(line),
            false => Err(line),
        }
    }
}

fn connect(lab: &Lab, port: u16) -> Result<Input> {
    let tcp = TcpStream::connect((lab.host.as_str(), port)).map_err(fail)?;
    tcp.set_nodelay(true).map_err(fail)?;
    let connection =
        rustls::ClientConnection::new(lab.rustls_config()?, lab.server_name()?).map_err(fail)?;
    Ok(Input::new(rustls::StreamOwned::new(connection, tcp)))
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn imap(lab: &Lab, user: &str) -> Result<(usize, u64)> {
    let mut io = connect(lab, lab.imaps)?;
    io.line()?;
    io.send(format!("a LOGIN {} {}\r\n", quoted(user), quoted(&lab.password)).as_bytes())?;
    io.until_tagged("a")?;
    io.send(b"b EXAMINE INBOX\r\nc UID FETCH 1:* BODY.PEEK[]\r\nd LOGOUT\r\n")?;
    io.until_tagged("b")?;
    let (mut messages, mut bytes) = (0, 0);
    loop {
        let (a, b) = io.line()?;
        let line = &io.buf[a..b];
        if line.starts_with(b"c ") {
            if !line[2..].starts_with(b"OK") {
                return Err(String::from_utf8_lossy(line).into_owned());
            }
            break;
        }
        // A literal: `{N}` ends the line; its N bytes follow, then the rest of the response.
        if let Some(open) = line.iter().rposition(|&b| b == b'{') {
            let digits = &line[open + 1..line.len().saturating_sub(3)];
            if line.ends_with(b"}\r\n") && !digits.is_empty() {
                let n: usize = std::str::from_utf8(digits)
                    .map_err(fail)?
                    .parse()
                    .map_err(fail)?;
                io.skip(n)?;
                messages += 1;
                bytes += n as u64;
            }
        }
    }
    io.until_tagged("d")?;
    Ok((messages, bytes))
}

fn pop3(lab: &Lab, user: &str) -> Result<(usize, u64)> {
    let mut io = connect(lab, lab.pop3s)?;
    io.ok_line()?;
    io.send(format!("USER {user}\r\n").as_bytes())?;
    io.ok_line()?;
    io.send(format!("PASS {}\r\n", lab.password).as_bytes())?;
    io.ok_line()?;
    io.send(b"STAT\r\n")?;
    let stat = io.ok_line()?;
    let count: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("STAT: {stat}"))?;
    let mut commands = String::with_capacity(count * 12 + 6);
    for n in 1..=count {
        commands.push_str(&format!("RETR {n}\r\n"));
    }
    commands.push_str("QUIT\r\n");
    io.send(commands.as_bytes())?;
    let (mut messages, mut bytes) = (0, 0);
    for _ in 0..count {
        io.ok_line()?;
        loop {
            let (a, b) = io.line()?;
            let line = &io.buf[a..b];
            if line == b".\r\n" {
                break;
            }
            // A line starting with a dot came with one more (dot-stuffing).
            bytes += (line.len() - usize::from(line.starts_with(b"."))) as u64;
        }
        messages += 1;
    }
    io.ok_line()?;
    Ok((messages, bytes))
}

fn main_inner() -> Result<()> {
    let lab = Lab::from_env()?;
    let args = args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (messages, bytes) = match args[..] {
        ["imap", user] => imap(&lab, user)?,
        ["pop3", user] => pop3(&lab, user)?,
        _ => return Err("usage: peer_raw imap|pop3 USER".into()),
    };
    report(messages, bytes);
    Ok(())
}

fn main() {
    exit_on_error("peer_raw", main_inner());
}
