//! The memory a POP3 listing of a big maildrop costs, measured as the process's peak resident
//! size (Linux's `VmHWM`): alone in its test binary, so nothing else moves it.
//!
//! Before issue 9's compact listing, `list --limit 20` collected every UIDL as a `String`,
//! every LIST line, a queue of all the (number, UIDL) pairs and a map of all the sizes before
//! keeping the newest 20: some 65 MB for the half million messages here. Now the newest are kept in a ring as the lines
//! stream in, and a listing that keeps nothing (a fetch with nothing new) holds nothing and
//! sends no LIST.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use crate::support::pop3_script;

use mailcat_session::Incoming;
use mailcat_session::ListDetail;
use pop3_script::*;

const N: usize = 500_000;

/// The peak resident set size so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

fn uidl_line(i: usize) -> String {
    // Dovecot's UIDLs: the UID and the UIDVALIDITY in hex, 16 characters.
    format!("{} {:08x}5f3a2b1c\r\n", i + 1, i + 1)
}

/// STAT and the UIDL of the N messages, as the server answers them at each listing.
fn stat_and_uidl() -> Vec<Step> {
    vec![
        expect("STAT"),
        send("+OK 500000 300000000\r\n"),
        expect("UIDL"),
        send("+OK\r\n"),
        Step::Lines {
            count: N,
            line: uidl_line,
        },
        send(".\r\n"),
    ]
}

#[tokio::test]
async fn half_a_million_messages_are_listed_in_memory_that_does_not_grow_with_them() {
    let mut script = stat_and_uidl();
    script.extend([
        expect("LIST"),
        send("+OK\r\n"),
        Step::Lines {
            count: N,
            line: |i| format!("{} 600\r\n", i + 1),
        },
        send(".\r\n"),
    ]);
    // A fetch's listing, with every UIDL fetched before.
    script.extend(stat_and_uidl());
    let (session, server) = logged_in(TX_CAPS, script).await;
    let mut incoming = Incoming::Pop3 {
        session,
        numbers: Default::default(),
    };
    let before = peak_rss_kib();

    let mut listing = incoming.list_start(None, Some(20)).await.unwrap();
    let newest = incoming
        .list_next(&mut listing, ListDetail::Sizes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.len(), 20);
    assert_eq!(newest[19].id.key(), "0007a1205f3a2b1c");
    assert_eq!(newest[19].size, Some(600));

    let mut seen = 0;
    let listing = incoming
        .list_start_filtered(None, None, |_| {
            seen += 1;
            false
        })
        .await
        .unwrap();
    assert_eq!(seen, N);
    assert!(listing.is_empty());

    let grown = peak_rss_kib().saturating_sub(before);
    eprintln!("peak RSS grew by {grown} KiB while listing {N} messages twice");
    // The read buffers and the decoder; nothing per message (which was ~65 MB).
    assert!(grown < 16 * 1024, "peak RSS grew by {grown} KiB");
    drop(incoming);
    let received = server.received_text().await;
    assert_eq!(received.matches("LIST").count(), 1, "{received}");
}
