//! Helpers for the send-then-receive tests: an account on the lab, messages generated on the
//! fly (so a 50 MB one needs no 50 MB buffer), and a sink that hashes what it is given.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// CR, LF and CRLF to CRLF, and a final CRLF: what SMTP delivers of a message.
pub fn normalise(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if message.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The message as Dovecot stores it in a Maildir: CRLF, bare CR and bare LF all as LF, and a
/// final line ending.
pub fn as_stored(message: &[u8]) -> Vec<u8> {
    if message.is_empty() {
        return Vec::new();
    }
    // `normalise` writes CR only as part of CRLF.
    normalise(message)
        .into_iter()
        .filter(|&b| b != b'\r')
        .collect()
}

/// A large message produced line by line: a header, then `lines` base64-like lines of 76
/// characters with CRLF. Reads in whatever chunks the reader asks for.
#[derive(Debug)]
pub struct GeneratedMessage {
    header: Vec<u8>,
    lines: u64,
    produced_header: usize,
    line: u64,
    partial: Vec<u8>,
}

impl GeneratedMessage {
    /// A message with `header` (ending with the blank line) and `lines` body lines.
    pub fn new(header: Vec<u8>, lines: u64) -> Self {
        Self {
            header,
            lines,
            produced_header: 0,
            line: 0,
            partial: Vec::new(),
        }
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        self.header.len() as u64 + self.lines * 78
    }

    /// True for a message of no bytes (never, with a header).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Body line `n`: 76 characters that vary with `n`, then CRLF.
    pub fn body_line(n: u64) -> [u8; 78] {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut line = [0u8; 78];
        let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555;
        for slot in line.iter_mut().take(76) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *slot = ALPHABET[(x & 63) as usize];
        }
        line[76] = b'\r';
        line[77] = b'\n';
        line
    }
}

impl AsyncRead for GeneratedMessage {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while buf.remaining() > 0 {
            if self.produced_header < self.header.len() {
                let start = self.produced_header;
                let n = buf.remaining().min(self.header.len() - start);
                buf.put_slice(&self.header[start..start + n]);
                self.produced_header += n;
                continue;
            }
            if self.partial.is_empty() {
                if self.line == self.lines {
                    break;
                }
                let line = Self::body_line(self.line);
                self.partial.extend_from_slice(&line);
                self.line += 1;
            }
            let n = buf.remaining().min(self.partial.len());
            buf.put_slice(&self.partial[..n]);
            self.partial.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

/// A sink that keeps only a SHA-256 of what it is given, its length, and the last bytes.
pub struct HashSink {
    digest: ring::digest::Context,
    /// Bytes written.
    pub len: u64,
    tail: Vec<u8>,
    keep_tail: usize,
}

impl HashSink {
    /// A sink that remembers the last `keep_tail` bytes.
    pub fn new(keep_tail: usize) -> Self {
        Self {
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
            tail: Vec::new(),
            keep_tail,
        }
    }

    /// The SHA-256 so far.
    pub fn sha256(&self) -> Vec<u8> {
        self.digest.clone().finish().as_ref().to_vec()
    }

    /// The last bytes written.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }
}

impl std::fmt::Debug for HashSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashSink")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl AsyncWrite for HashSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.digest.update(data);
        self.len += data.len() as u64;
        self.tail.extend_from_slice(data);
        let excess = self.tail.len().saturating_sub(self.keep_tail);
        self.tail.drain(..excess);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The peak resident set of this process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A sink that hashes what it is given from the first line that starts with `marker` on (the
/// bytes before it, at most 64 KiB, are a server's trace headers), keeping nothing else.
pub struct HashFrom {
    marker: Vec<u8>,
    head: Vec<u8>,
    found: bool,
    hash: HashSink,
}

impl HashFrom {
    /// Starts hashing at the line that begins with `marker`.
    pub fn new(marker: &[u8]) -> Self {
        Self {
            marker: marker.to_vec(),
            head: Vec::new(),
            found: false,
            hash: HashSink::new(0),
        }
    }

    /// SHA-256 and length of what came from the marker on; `None` if it never came.
    pub fn result(&self) -> Option<(Vec<u8>, u64)> {
        self.found.then(|| (self.hash.sha256(), self.hash.len))
    }
}

impl std::fmt::Debug for HashFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashFrom")
            .field("found", &self.found)
            .finish_non_exhaustive()
    }
}

impl AsyncWrite for HashFrom {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.found {
            return Pin::new(&mut self.hash).poll_write(cx, data);
        }
        self.head.extend_from_slice(data);
        let marker = self.marker.clone();
        let start = (0..self.head.len()).find(|&i| {
            (i == 0 || self.head[i - 1] == b'\n') && self.head[i..].starts_with(&marker)
        });
        if let Some(start) = start {
            self.found = true;
            let rest = self.head.split_off(start);
            self.head = Vec::new();
            let _ = Pin::new(&mut self.hash).poll_write(cx, &rest);
        } else if self.head.len() > 64 * 1024 {
            return Poll::Ready(Err(std::io::Error::other(
                "the marker is not in the first 64 KiB",
            )));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
