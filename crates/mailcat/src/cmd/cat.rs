//! `mailcat cat ID`: one message, byte for byte, to stdout (streamed, whatever its size).

use mailcat_session::Incoming;
use tokio::io::AsyncWriteExt;

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
        let mut stdout = tokio::io::stdout();
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
