//! `mailcat cat ID`: one message, byte for byte, to stdout (streamed, whatever its size).

use tokio::io::AsyncWriteExt;

use crate::cli::{CatArgs, Cli};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Runs the command; returns the exit code.
pub fn run(cli: &Cli, args: &CatArgs) -> u8 {
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
        // Only which messages there are (IMAP: one SEARCH), not a summary of each.
        let listing = incoming
            .list_start(args.mailbox.as_deref(), None)
            .await
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
