//! `mailcat cat ID`: one message, byte for byte, to stdout (streamed, whatever its size).

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use mailcat_session::Incoming;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::cli::{CatArgs, Cli};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli, args: &CatArgs) -> u8 {
    match cat(cli, args) {
        Ok(()) => exit::OK,
        Err(Exit(code)) => code,
    }
}

fn cat(cli: &Cli, args: &CatArgs) -> Result<(), Exit> {
    let settings = common::settings(cli, "cat")?;
    let account = common::account(cli, &settings, "cat", true, false)?;
    common::runtime()?.block_on(async {
        let mut incoming = common::receive("cat", &account).await?;
        // Only which messages there are (IMAP: one SEARCH), not a summary of each. POP3
        // keeps only the one asked for as UIDL streams in: a maildrop of a million messages
        // costs no memory for the others (and no LIST when it is not there).
        let mailbox = args.mailbox.as_deref();
        let listing = match incoming {
            Incoming::Pop3 { .. } => {
                incoming
                    .list_start_filtered(mailbox, None, |key| key == args.id)
                    .await
            }
            Incoming::Imap { .. } => incoming.list_start(mailbox, None).await,
        }
        .map_err(|e| common::fail("cat", &e))?;
        let Some(id) = listing.find(&args.id) else {
            eprintln!(
                "mailcat cat: no message {} in {}; `mailcat list` shows the ids",
                terminal_safe(&args.id),
                args.mailbox.as_deref().unwrap_or("INBOX")
            );
            incoming.abort().await;
            return Err(Exit(exit::DATAERR));
        };
        let mut stdout = Stdout::new();
        let result = incoming.fetch(&id, &mut stdout).await;
        let flushed = stdout.flush().await;
        match (result, flushed) {
            (Ok(_), Ok(())) => incoming.close().await.map_err(|e| common::fail("cat", &e)),
            (Err(e), _) => Err(common::fail("cat", &e)),
            (_, Err(e)) => {
                eprintln!("mailcat cat: cannot write to stdout: {e}");
                Err(Exit(exit::IOERR))
            }
        }
    })
}

/// Bytes gathered before one `write(2)` to stdout.
const CHUNK: usize = 256 * 1024;

/// Stdout as the message's sink: the download gathered in a buffer of [`CHUNK`] bytes, each
/// written out with one `write(2)` on this thread. `tokio::io::stdout` would copy every chunk
/// to tokio's blocking pool and back (2.5 times the library's CPU for a big message); this
/// process has nothing else to do while stdout is full, so it may as well wait there, and a
/// reader that stops reading stops the download (the server waits, as it would).
struct Stdout {
    out: std::io::Stdout,
    buf: Vec<u8>,
}

impl Stdout {
    fn new() -> Self {
        Self {
            out: std::io::stdout(),
            buf: Vec::with_capacity(CHUNK),
        }
    }

    /// Writes out what is gathered, past `std::io::Stdout`'s own line buffer.
    fn drain(&mut self) -> std::io::Result<()> {
        let mut out = self.out.lock();
        out.flush()?;
        out.write_all(&self.buf)?;
        out.flush()?;
        self.buf.clear();
        Ok(())
    }
}

impl AsyncWrite for Stdout {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() + data.len() > CHUNK && !this.buf.is_empty() {
            this.drain()?;
        }
        if data.len() >= CHUNK {
            // Big enough on its own: no copy.
            this.out.lock().write_all(data)?;
        } else {
            this.buf.extend_from_slice(data);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().drain())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}
