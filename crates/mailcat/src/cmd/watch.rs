//! `mailcat watch`: IMAP IDLE, one line for each new message (as `list` prints it); reconnects with backoff after a
//! network loss, stops for good on an authentication failure.

use std::time::{Duration, Instant};

use mailcat_codec::imap::command::Mailbox;
use mailcat_codec::imap::{SeqNumber, SeqRange, SequenceSet};
use mailcat_session::imap::{SummaryRequest, Unsolicited};
use mailcat_session::{Account, Error, Incoming};
use serde_json::json;

use crate::cli::{Cli, WatchArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// The first pause before reconnecting.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// How long a connection must have held for the backoff to start again from the minimum.
const STABLE: Duration = Duration::from_secs(60);
/// The longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// One IDLE round; the session re-issues IDLE within it as RFC 2177 asks.
const IDLE_ROUND: Duration = Duration::from_secs(29 * 60);
/// IDLE is also re-issued after this long without a byte from the server: GNU Mailutils
/// reports new mail only when IDLE ends, so it is seen within this time. Servers that push news
/// or send keep-alives (Dovecot: every 2 minutes) mostly never reach it; for the others it
/// costs one DONE/IDLE round trip per interval.
const IDLE_QUIET_REFRESH: Duration = Duration::from_secs(2 * 60);

/// Runs the command until interrupted; returns the exit code.
pub(crate) fn run(cli: &Cli, args: &WatchArgs) -> u8 {
    match watch(cli, args) {
        Ok(()) => exit::OK,
        Err(Exit(code)) => code,
    }
}

fn watch(cli: &Cli, args: &WatchArgs) -> Result<(), Exit> {
    let settings = common::settings(cli, "watch")?;
    let account = common::account(cli, &settings, "watch", true, false)?;
    if common::incoming(&account).protocol != mailcat_transport::Protocol::Imap {
        eprintln!(
            "mailcat watch: waiting for new mail needs IMAP (IDLE); {} is POP3",
            common::incoming(&account)
        );
        return Err(Exit(exit::USAGE));
    }
    let mailbox = args.mailbox.clone().unwrap_or_else(|| "INBOX".into());
    common::runtime()?.block_on(async {
        let mut seen: Option<(u32, u32)> = None; // (UIDVALIDITY, highest UID reported)
        let mut backoff = MIN_BACKOFF;
        loop {
            let mut watching_since = None;
            let error = watch_once(cli, &account, &mailbox, &mut seen, &mut watching_since).await;
            // A connection that held for a while starts the backoff afresh; one the server
            // drops right after SELECT (a BYE loop) does not, or we would log in every second.
            if watching_since.is_some_and(|t: Instant| t.elapsed() >= STABLE) {
                backoff = MIN_BACKOFF;
            }
            if error.is_auth() || !(error.is_transient() || matches!(error, Error::Transport(_))) {
                return Err(common::fail("watch", &error));
            }
            if !cli.quiet {
                eprintln!(
                    "mailcat watch: {error}; reconnecting in {} s",
                    backoff.as_secs()
                );
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// One connection: select, then IDLE and report until something fails.
async fn watch_once(
    cli: &Cli,
    account: &Account,
    mailbox: &str,
    seen: &mut Option<(u32, u32)>,
    watching_since: &mut Option<Instant>,
) -> Error {
    let incoming = match account.receive().await {
        Ok(incoming) => incoming,
        Err(e) => return e,
    };
    let Incoming::Imap { mut session, .. } = incoming else {
        unreachable!("checked: IMAP")
    };
    let name = match Mailbox::new(mailbox) {
        Ok(name) => name,
        Err(e) => return e.into(),
    };
    let state = match session.select(&name).await {
        Ok(state) => state,
        Err(e) => return e,
    };
    let uid_validity = state.uid_validity.unwrap_or(0);
    // From now on (or from where the last connection stopped, if the UIDs still hold).
    let mut highest = match *seen {
        Some((validity, highest)) if validity == uid_validity => highest,
        _ => match state.uid_next {
            Some(next) => next.saturating_sub(1),
            // Courier sends no UIDNEXT (RFC 3501 allows it): start after the highest UID in
            // use, or every message there would be reported as new.
            None if state.exists == 0 => 0,
            None => match highest_uid(&mut session).await {
                Ok(highest) => highest,
                Err(e) => return e,
            },
        },
    };
    *seen = Some((uid_validity, highest));
    *watching_since = Some(Instant::now());
    session.set_idle_quiet_refresh(Some(IDLE_QUIET_REFRESH));
    if !cli.quiet {
        eprintln!(
            "mailcat watch: watching {} on {} (Ctrl-C to stop)",
            terminal_safe(mailbox),
            common::incoming(account).host
        );
    }
    loop {
        // First what arrived while we were away (after a reconnect), then after each EXISTS.
        match report_new(cli, &mut session, mailbox, highest).await {
            Ok(reported) => highest = reported,
            Err(e) => return e,
        }
        *seen = Some((uid_validity, highest));
        loop {
            let events = match session.idle(IDLE_ROUND).await {
                Ok(events) => events,
                Err(e) => return e,
            };
            if let Some(Unsolicited::Bye(text)) =
                events.iter().find(|e| matches!(e, Unsolicited::Bye(_)))
            {
                return Error::Closed {
                    host: common::incoming(account).host.clone(),
                    reply: text.clone().into(),
                };
            }
            if events.iter().any(|e| matches!(e, Unsolicited::Exists(_))) {
                break;
            }
        }
    }
}

/// The highest UID in the mailbox (`UID FETCH * (UID)`), 0 if it is empty.
async fn highest_uid<S>(session: &mut mailcat_session::imap::ImapSession<S>) -> Result<u32, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let last = SequenceSet::from_ranges(vec![SeqRange::single(SeqNumber::Largest)])?;
    Ok(session
        .uid_fetch_uids(&last)
        .await?
        .into_iter()
        .max()
        .unwrap_or(0))
}

/// Prints a line for each message with a UID above `highest`; returns the new highest UID.
async fn report_new<S>(
    cli: &Cli,
    session: &mut mailcat_session::imap::ImapSession<S>,
    mailbox: &str,
    highest: u32,
) -> Result<u32, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let Ok(newer) = SequenceSet::from(highest.saturating_add(1)) else {
        return Ok(highest);
    };
    // `UID FETCH N:* (UID)`, not `UID SEARCH UID N:*`, which GNU Mailutils answers empty.
    // `N:*` also matches the highest message when N is above it: keep only the new ones.
    let uids: Vec<u32> = session
        .uid_fetch_uids(&newer)
        .await?
        .into_iter()
        .filter(|&u| u > highest)
        .collect();
    let Ok(set) = SequenceSet::from_numbers(uids.iter().copied()) else {
        return Ok(highest);
    };
    let request = SummaryRequest {
        envelope: false,
        header_fields: vec!["Date".into(), "From".into(), "Subject".into()],
    };
    let mut summaries = session.fetch_summaries(&set, &request).await?;
    summaries.sort_by_key(|s| s.uid);
    let mut highest = highest;
    for summary in summaries {
        let headers = summary
            .headers
            .as_deref()
            .map(mailcat_session::message::summarize)
            .unwrap_or_default();
        if cli.json {
            outln!(
                "{}",
                json!({ "mailbox": mailbox, "id": summary.uid.to_string(), "uid": summary.uid,
                        "size": summary.size, "date": headers.date,
                        "from": headers.from, "subject": headers.subject })
            );
        } else {
            outln!(
                "{}\t{}\t{}\t{}\t{}",
                summary.uid,
                summary
                    .size
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                terminal_safe(headers.date.as_deref().unwrap_or("-")),
                terminal_safe(headers.from.as_deref().unwrap_or("-")),
                terminal_safe(headers.subject.as_deref().unwrap_or(""))
            );
        }
        highest = highest.max(summary.uid);
    }
    Ok(highest)
}
