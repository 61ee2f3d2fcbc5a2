//! `mailcat mailboxes`: the mailboxes of an IMAP account, with their special use.

use serde_json::json;

use crate::cli::Cli;
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli) -> u8 {
    match mailboxes(cli) {
        Ok(()) => exit::OK,
        Err(Exit(code)) => code,
    }
}

fn mailboxes(cli: &Cli) -> Result<(), Exit> {
    let settings = common::settings(cli, "mailboxes")?;
    let account = common::account(cli, &settings, "mailboxes", true, false)?;
    common::runtime()?.block_on(async {
        let incoming = common::receive("mailboxes", &account).await?;
        let mailcat_session::Incoming::Imap { mut session, .. } = incoming else {
            // POP3 has exactly one mailbox.
            print_rows(cli, &[("INBOX".to_owned(), None)]);
            incoming
                .close()
                .await
                .map_err(|e| common::fail("mailboxes", &e))?;
            return Ok(());
        };
        let list = session
            .list()
            .await
            .map_err(|e| common::fail("mailboxes", &e))?;
        let rows: Vec<(String, Option<String>)> = list
            .iter()
            .filter(|m| m.is_selectable())
            .map(|m| {
                (
                    m.name.clone(),
                    m.special_use().map(|a| {
                        String::from_utf8_lossy(a.as_bytes())
                            .trim_start_matches('\\')
                            .to_owned()
                    }),
                )
            })
            .collect();
        print_rows(cli, &rows);
        session
            .logout()
            .await
            .map_err(|e| common::fail("mailboxes", &e))
    })
}

fn print_rows(cli: &Cli, rows: &[(String, Option<String>)]) {
    if cli.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, special)| json!({ "name": name, "special_use": special }))
            .collect();
        outln!("{}", serde_json::Value::Array(list));
        return;
    }
    for (name, special) in rows {
        match special {
            Some(special) => outln!("{}\t{special}", terminal_safe(name)),
            None => outln!("{}", terminal_safe(name)),
        }
    }
}
