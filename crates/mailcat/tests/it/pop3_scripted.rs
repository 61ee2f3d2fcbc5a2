//! `mailcat list` and `fetch` against scripted POP3 servers on the loopback (plain TCP, with
//! `--allow-plaintext`) that bend RFC 1939 the ways Dovecot never does (threat model #53): no
//! UIDL and no TOP (both optional), and a LIST size that is not the size RETR sends (Exchange).

use crate::support;
use support::{count_lines, plaintext_mailcat};

use std::process::Output;

use mailcat_tests::script::{send, serve, serve_tcp_each_blocking, Answer, Live};

/// What the scripted server lacks or bends.
#[derive(Clone, Copy)]
enum Script {
    /// CAPA without UIDL or TOP, and both commands refused.
    NoUidlNoTop,
    /// UIDL and TOP work, but LIST says 500 octets for a message of 38.
    ListSizeDiffers,
}

const MESSAGE: &[u8] = b"Subject: scripted\r\n\r\nthe body\r\n";

/// A server that plays `script` on every connection; its port and every line it received.
fn server(script: Script) -> (u16, Live) {
    let full = matches!(script, Script::ListSizeDiffers);
    serve_tcp_each_blocking(vec![
        send("+OK scripted POP3\r\n"),
        serve(move |line| {
            let command = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &[u8] = match command.as_str() {
                "CAPA" if full => b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n",
                "CAPA" => b"+OK\r\nUSER\r\n.\r\n",
                "USER" | "PASS" | "DELE" | "NOOP" | "RSET" => b"+OK\r\n",
                "STAT" if full => b"+OK 1 500\r\n",
                "STAT" => b"+OK 2 76\r\n",
                "UIDL" if full => b"+OK\r\n1 first\r\n.\r\n",
                "LIST" if full => b"+OK\r\n1 500\r\n.\r\n",
                "LIST" => b"+OK\r\n1 38\r\n2 38\r\n.\r\n",
                "TOP" if full => b"+OK\r\nSubject: scripted\r\n\r\n.\r\n",
                "RETR" => return Answer::reply([b"+OK\r\n", MESSAGE, b".\r\n"].concat()),
                "QUIT" => return Answer::last("+OK bye\r\n"),
                _ => b"-ERR command not implemented\r\n",
            };
            Answer::reply(reply)
        }),
    ])
}

fn mailcat(port: u16, args: &[&str]) -> Output {
    plaintext_mailcat(&format!("pop3://127.0.0.1:{port}"), "secret")
        .args(args)
        .output()
        .expect("mailcat runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory under the system's temporary one.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mailcat-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn without_uidl_and_top_list_and_cat_use_message_numbers() {
    let (port, seen) = server(Script::NoUidlNoTop);
    let output = mailcat(port, &["list"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let listed = text(&output.stdout);
    let ids: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(ids, ["1", "2"], "{listed}");
    // One TOP was tried and refused; the list went on without headers.
    assert_eq!(count_lines(&seen, "TOP"), 1);

    let output = mailcat(port, &["cat", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(output.stdout, MESSAGE);
}

#[test]
fn without_uidl_fetch_refuses_and_neither_fetches_nor_deletes() {
    let (port, seen) = server(Script::NoUidlNoTop);
    let dir = fresh_dir("no-uidl");
    let to = format!("maildir:{}", dir.display());
    let output = mailcat(port, &["fetch", "--delete", "--to", &to]);
    let shown = text(&output.stderr);
    assert_eq!(output.status.code(), Some(69), "{shown}");
    assert!(shown.contains("has no UIDL"), "{shown}");
    assert!(shown.contains("nothing was fetched or deleted"), "{shown}");
    assert_eq!(count_lines(&seen, "RETR"), 0);
    assert_eq!(count_lines(&seen, "DELE"), 0);
    let stored = std::fs::read_dir(dir.join("new")).map_or(0, |d| d.count());
    assert_eq!(stored, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_message_of_another_size_than_listed_is_stored_as_received_and_reported() {
    let (port, seen) = server(Script::ListSizeDiffers);
    let dir = fresh_dir("list-size");
    let to = format!("maildir:{}", dir.display());
    let output = mailcat(port, &["fetch", "--delete", "--to", &to]);
    let shown = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("1 differed in size from the server's list and were stored as received"),
        "{shown}"
    );
    let stored: Vec<_> = std::fs::read_dir(dir.join("new"))
        .expect("new/")
        .map(|entry| std::fs::read(entry.expect("entry").path()).expect("read"))
        .collect();
    // A Maildir keeps LF line ends.
    assert_eq!(stored, [b"Subject: scripted\n\nthe body\n"]);
    assert_eq!(count_lines(&seen, "DELE 1"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fetch_with_nothing_new_sends_no_list_and_leaves_the_state_file_alone() {
    use std::os::unix::fs::MetadataExt;
    let (port, seen) = server(Script::ListSizeDiffers);
    let dir = fresh_dir("nothing-new");
    let to = format!("maildir:{}", dir.display());
    let output = mailcat(port, &["fetch", "--to", &to]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let state = dir.join(".mailcat-state.json");
    let written = std::fs::metadata(&state).expect("state written");
    assert_eq!(
        (count_lines(&seen, "LIST"), count_lines(&seen, "RETR")),
        (1, 1)
    );

    let output = mailcat(port, &["fetch", "--to", &to]);
    let shown = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("fetched 0 new messages"), "{shown}");
    // UIDL said all is known: no LIST (no size of anything is needed), no RETR...
    assert_eq!(count_lines(&seen, "UIDL"), 2);
    assert_eq!(
        (count_lines(&seen, "LIST"), count_lines(&seen, "RETR")),
        (1, 1)
    );
    // ...and nothing changed, so the state file was not written again.
    let after = std::fs::metadata(&state).expect("state");
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec()),
        (written.ino(), written.mtime(), written.mtime_nsec())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_uidl_a_record_of_numbers_does_not_pass_for_nothing_new() {
    // A record whose UIDLs look like message numbers, from a server that has lost its UIDL:
    // every number "is known", but a number names nothing from one session to the next.
    let (port, seen) = server(Script::NoUidlNoTop);
    let dir = fresh_dir("no-uidl-record");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join(".mailcat-state.json"),
        br#"{"version":1,"mailboxes":{"pop3://alice@example.test@127.0.0.1":{"uidvalidity":null,"fetched":["1","2"],"mbox_len":null}},"mbox_len":null}"#,
    )
    .expect("state");
    let to = format!("maildir:{}", dir.display());
    let output = mailcat(port, &["fetch", "--to", &to]);
    let shown = text(&output.stderr);
    assert_eq!(output.status.code(), Some(69), "{shown}");
    assert!(shown.contains("has no UIDL"), "{shown}");
    assert_eq!(count_lines(&seen, "RETR"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
