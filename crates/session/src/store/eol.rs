//! Line ends in local stores: mail travels with CRLF, Unix mail stores (Maildir as Dovecot,
//! getmail, fetchmail and mbsync write it; mbox) keep LF. Each CRLF becomes LF; every other
//! byte stays as it is, a CR that is not followed by LF included.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;

/// CRLF → LF over a message fed in chunks split anywhere (a CR at the end of one chunk and its
/// LF at the start of the next are one line end).
#[derive(Debug, Default)]
pub(crate) struct CrlfToLf {
    /// The chunk before ended with a CR: whether it is a line end depends on the next byte.
    pending_cr: bool,
}

impl CrlfToLf {
    /// Appends `chunk`, converted, to `out`.
    pub(crate) fn convert(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        if std::mem::take(&mut self.pending_cr) && chunk[0] != b'\n' {
            out.push(b'\r');
        }
        out.reserve(chunk.len());
        while let Some(i) = memchr::memchr(b'\r', chunk) {
            out.extend_from_slice(&chunk[..i]);
            match chunk.get(i + 1) {
                Some(b'\n') => {
                    out.push(b'\n');
                    chunk = &chunk[i + 2..];
                }
                Some(_) => {
                    out.push(b'\r');
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.pending_cr = true;
                    return;
                }
            }
        }
        out.extend_from_slice(chunk);
    }

    /// The end of the message: a CR held back is written as it is.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

/// A writer that stores what it is given with LF line ends: each CRLF becomes LF, across
/// writes, and every other byte stays. Each write reports the bytes it was given as written,
/// so a caller counts the message as the server sent it. A CR at the very end is held back
/// (its LF may come next) until the store finishes the message
/// ([`LfWriter::finish`]).
#[derive(Debug)]
pub struct LfWriter<W> {
    inner: W,
    eol: CrlfToLf,
    /// Converted bytes not yet taken by `inner`, from `written` on.
    buf: Vec<u8>,
    written: usize,
}

impl<W: AsyncWrite + Unpin> LfWriter<W> {
    /// A writer storing into `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            eol: CrlfToLf::default(),
            buf: Vec::new(),
            written: 0,
        }
    }

    /// Writes out what is held back: the message is complete.
    pub async fn finish(&mut self) -> io::Result<()> {
        let mut tail = Vec::new();
        self.eol.finish(&mut tail);
        if !tail.is_empty() {
            std::future::poll_fn(|cx| self.poll_drain(cx)).await?;
            self.buf = tail;
            self.written = 0;
        }
        std::future::poll_fn(|cx| self.poll_drain(cx)).await
    }

    /// The writer underneath.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for LfWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.buf.clear();
        this.written = 0;
        this.eol.convert(data, &mut this.buf);
        // Start on it now; what the file does not take yet goes with the next call.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn converted(chunks: &[&[u8]]) -> Vec<u8> {
        let mut eol = CrlfToLf::default();
        let mut out = Vec::new();
        for chunk in chunks {
            eol.convert(chunk, &mut out);
        }
        eol.finish(&mut out);
        out
    }

    const MESSAGE: &[u8] = b"Subject: a\r\n\r\nbare\rCR, CRCRLF\r\r\nLF only\nend\r";
    const EXPECTED: &[u8] = b"Subject: a\n\nbare\rCR, CRCRLF\r\nLF only\nend\r";

    #[test]
    fn crlf_becomes_lf_and_every_other_byte_stays_wherever_the_chunks_split() {
        assert_eq!(converted(&[MESSAGE]), EXPECTED);
        for split in 0..=MESSAGE.len() {
            let (a, b) = MESSAGE.split_at(split);
            assert_eq!(converted(&[a, b]), EXPECTED, "split at {split}");
            assert_eq!(
                converted(&[a, b"", b]),
                EXPECTED,
                "an empty chunk at {split}"
            );
        }
        let bytes: Vec<&[u8]> = MESSAGE.chunks(1).collect();
        assert_eq!(converted(&bytes), EXPECTED, "a byte at a time");
    }

    #[tokio::test]
    async fn the_writer_counts_what_it_was_given_and_writes_it_converted() {
        let mut writer = LfWriter::new(Vec::new());
        let mut given = 0;
        for chunk in MESSAGE.chunks(5) {
            given += writer.write(chunk).await.unwrap();
        }
        writer.finish().await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(given, MESSAGE.len());
        assert_eq!(writer.get_mut().as_slice(), EXPECTED);
    }
}
