//! `mailcat list`: one line a message: id, size, date, from, subject (oldest first), printed
//! batch by batch as the summaries arrive, so a huge mailbox shows its first lines at once.

use mailcat_session::ListDetail;
use mailcat_session::{MessageId, MessageSummary};
use serde_json::json;

use crate::cli::{Cli, ListArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli, args: &ListArgs) -> u8 {
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
        let mut listing = incoming
            .list_start(args.mailbox.as_deref(), args.limit)
            .await
            .map_err(|e| common::fail("list", &e))?;
        let mut out = Output::new(cli.json);
        loop {
            let batch = incoming
                .list_next(&mut listing, ListDetail::Headers)
                .await
                .map_err(|e| common::fail("list", &e))?;
            let Some(batch) = batch else { break };
            out.batch(&batch);
        }
        out.finish();
        incoming.close().await.map_err(|e| common::fail("list", &e))
    })
}

/// Writes the listing as it comes: tab-separated lines, or one JSON array element by element
/// (one element a line; the last one of a batch is held back until it is known whether a
/// comma follows it).
struct Output {
    json: bool,
    /// JSON: the array is open.
    opened: bool,
    /// JSON: the element written last, not yet followed by `,` or `]`.
    pending: Option<String>,
}

impl Output {
    fn new(json: bool) -> Self {
        Self {
            json,
            opened: false,
            pending: None,
        }
    }

    /// Writes one batch in a single write (stdout is line-buffered: a write per line would
    /// be a system call per message).
    fn batch(&mut self, messages: &[MessageSummary]) {
        let mut text = String::new();
        for m in messages {
            if !self.json {
                text.push_str(&text_row(m));
                text.push('\n');
                continue;
            }
            if !self.opened {
                text.push_str("[\n");
                self.opened = true;
            }
            if let Some(previous) = self.pending.replace(json_row(m).to_string()) {
                text.push_str(&previous);
                text.push_str(",\n");
            }
        }
        if let Some(text) = text.strip_suffix('\n') {
            outln!("{text}");
        }
    }

    fn finish(self) {
        match (self.json, self.pending) {
            (false, _) => {}
            (true, None) => outln!("[]"),
            (true, Some(last)) => outln!("{last}\n]"),
        }
    }
}

/// `id  size  date  from  subject`, each made safe for a terminal.
fn text_row(m: &MessageSummary) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        terminal_safe(&m.id.key()),
        m.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        terminal_safe(m.headers.date.as_deref().unwrap_or("-")),
        terminal_safe(m.headers.from.as_deref().unwrap_or("-")),
        terminal_safe(m.headers.subject.as_deref().unwrap_or("")),
    )
}

/// The JSON contract: `"id"` is what `mailcat cat` takes (a string); IMAP adds `"uid"`.
fn json_row(m: &MessageSummary) -> serde_json::Value {
    let mut row = json!({ "id": m.id.key() });
    if let MessageId::Imap { uid, .. } = m.id {
        row["uid"] = json!(uid);
    }
    row["size"] = json!(m.size);
    row["date"] = json!(m.headers.date);
    row["from"] = json!(m.headers.from);
    row["subject"] = json!(m.headers.subject);
    row
}
