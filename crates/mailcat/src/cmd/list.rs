//! `mailcat list`: one line a message: id, size, date, from, subject (oldest first).

use serde_json::json;

use crate::cli::{Cli, ListArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Runs the command; returns the exit code.
pub fn run(cli: &Cli, args: &ListArgs) -> u8 {
    match list(cli, args) {
        Ok(()) => exit::OK,
        Err(Exit(code)) => code,
    }
}

fn list(cli: &Cli, args: &ListArgs) -> Result<(), Exit> {
    let settings = common::settings(cli, "list")?;
    let account = common::account(cli, &settings, "list", true, false)?;
    common::runtime()?.block_on(async {
        let mut incoming = common::receive("list", &account).await?;
        let messages = incoming
            .list(args.mailbox.as_deref(), true)
            .await
            .map_err(|e| common::fail("list", &e))?;
        if cli.json {
            let rows: Vec<_> = messages
                .iter()
                .map(|m| {
                    json!({ "id": m.id.key(), "size": m.size, "date": m.headers.date,
                            "from": m.headers.from, "subject": m.headers.subject })
                })
                .collect();
            outln!("{}", serde_json::Value::Array(rows));
        } else {
            for m in &messages {
                outln!(
                    "{}\t{}\t{}\t{}\t{}",
                    terminal_safe(&m.id.key()),
                    m.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    terminal_safe(m.headers.date.as_deref().unwrap_or("-")),
                    terminal_safe(m.headers.from.as_deref().unwrap_or("-")),
                    terminal_safe(m.headers.subject.as_deref().unwrap_or("")),
                );
            }
        }
        incoming.close().await.map_err(|e| common::fail("list", &e))
    })
}
