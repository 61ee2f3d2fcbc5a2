//! The CLI against scripted IMAP servers (plain TCP, `--allow-plaintext`) that behave as
//! foreign servers do: Courier (no UIDNEXT on SELECT), GNU Mailutils (`UID SEARCH UID n:*`
//! answered empty), `[ALERT]` texts, and a mailbox another session holds (READ-ONLY).

use crate::support::plaintext_mailcat;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mailcat_tests::script::{send, serve_each, serve_tcp_each_blocking, Answer, Live};

/// Which foreign server the script plays.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// Courier: SELECT without UIDNEXT. Both scripts hold three messages (UIDs 1 to 3) and a
    /// fourth arrives during IDLE.
    Courier,
    /// GNU Mailutils: the reply to AUTHENTICATE ends with a bare LF, UIDNEXT given, `UID
    /// SEARCH` answered empty.
    Mailutils,
    /// An `[ALERT]` (with a terminal escape) with the login's answer, and one on LIST's.
    Alerting,
    /// SELECT answered `[READ-ONLY]`: another session holds the mailbox.
    ReadOnly,
}

const HEADER: &str =
    "Date: Thu, 26 Nov 2026 07:12:01 +0000\r\nFrom: bob@example.org\r\nSubject: Lunch?\r\n\r\n";

/// A server that plays `server` on every connection; its port and every line it received.
fn scripted_server(server: Server) -> (u16, Live) {
    serve_tcp_each_blocking(vec![
        send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR IDLE] scripted\r\n"),
        serve_each(move || {
            let mut mailbox = Mailbox {
                exists: 3,
                idling: None,
            };
            move |line: &str| answer(server, &mut mailbox, line)
        }),
    ])
}

/// One connection's state.
struct Mailbox {
    /// How many messages it holds: three, and a fourth that arrives during IDLE.
    exists: u32,
    /// The tag of the IDLE command in progress.
    idling: Option<String>,
}

/// The server's answer to a line of one connection.
fn answer(server: Server, mailbox: &mut Mailbox, line: &str) -> Answer {
    if let Some(tag) = mailbox.idling.take() {
        assert_eq!(line, "DONE", "the end of IDLE");
        return Answer::reply(format!("{tag} OK IDLE completed\r\n"));
    }
    let exists = mailbox.exists;
    let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
    let upper = command.to_ascii_uppercase();
    let ok = |what: &str| format!("{tag} OK {what} completed\r\n");
    let mut say = String::new();
    if upper.starts_with("CAPABILITY") {
        say.push_str("* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR IDLE\r\n");
        say.push_str(&ok("CAPABILITY"));
    } else if upper.starts_with("AUTHENTICATE") {
        if server == Server::Alerting {
            say.push_str("* OK [ALERT] Quota: 95% of 1 GiB used\x1b[2J\r\n");
        }
        // GNU Mailutils ends this line with a bare LF.
        let end = if server == Server::Mailutils {
            "\n"
        } else {
            "\r\n"
        };
        say.push_str(&format!(
            "{tag} OK [CAPABILITY IMAP4rev1 IDLE] logged in{end}"
        ));
    } else if upper.starts_with("LIST") && server == Server::Alerting {
        say.push_str("* LIST () \"/\" INBOX\r\n");
        say.push_str(&format!(
            "{tag} OK [ALERT] IDLE is off: the mail store is on NFS\r\n"
        ));
    } else if upper.starts_with("SELECT") || upper.starts_with("EXAMINE") {
        say.push_str(&format!(
            "* {exists} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 42] ok\r\n"
        ));
        if server != Server::Courier {
            say.push_str(&format!("* OK [UIDNEXT {}] ok\r\n", exists + 1));
        }
        let read_only = upper.starts_with("EXAMINE") || server == Server::ReadOnly;
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        say.push_str(&format!("{tag} OK [{mode}] completed\r\n"));
    } else if upper.starts_with("UID STORE") || upper.starts_with("UID EXPUNGE") {
        // What Dovecot says to STORE on a mailbox opened read-only.
        say.push_str(&format!(
            "{tag} BAD Error in IMAP command UID STORE: Failed to parse message set\r\n"
        ));
    } else if upper.starts_with("UID SEARCH") {
        if server == Server::Mailutils {
            say.push_str("* SEARCH\r\n");
        } else {
            let uids: String = (1..=exists).map(|u| format!(" {u}")).collect();
            say.push_str(&format!("* SEARCH{uids}\r\n"));
        }
        say.push_str(&ok("SEARCH"));
    } else if upper.starts_with("UID FETCH") && upper.ends_with("(UID)") {
        let set = command.split(' ').nth(2).unwrap_or_default();
        let from = match set.split_once(':') {
            Some((from, "*")) => from.parse::<u32>().unwrap_or(1),
            _ => exists, // "*": the last message
        };
        // `n:*` always includes the last message, even when n is above its UID.
        for uid in from.min(exists)..=exists {
            say.push_str(&format!("* {uid} FETCH (UID {uid})\r\n"));
        }
        say.push_str(&ok("FETCH"));
    } else if upper.starts_with("UID FETCH") {
        let set = command.split(' ').nth(2).unwrap_or_default();
        let section_at = command.find("BODY.PEEK[").map(|i| i + "BODY.PEEK".len());
        let section = section_at
            .map(|i| &command[i..=i + command[i..].find(']').expect("section end")])
            .unwrap_or("[]");
        for uid in uids_in(set, exists) {
            say.push_str(&format!(
                "* {uid} FETCH (UID {uid} FLAGS () RFC822.SIZE 1284 INTERNALDATE \"26-Nov-2026 07:12:01 +0000\" BODY{section} {{{}}}\r\n{HEADER})\r\n",
                HEADER.len()
            ));
        }
        say.push_str(&ok("FETCH"));
    } else if upper == "IDLE" {
        // The fourth message arrives while mailcat idles.
        mailbox.exists = 4;
        mailbox.idling = Some(tag.to_owned());
        say.push_str("+ idling\r\n* 4 EXISTS\r\n");
    } else if upper.starts_with("LOGOUT") {
        say.push_str("* BYE bye\r\n");
        say.push_str(&ok("LOGOUT"));
        return Answer::last(say);
    } else {
        say.push_str(&ok("it"));
    }
    Answer::reply(say)
}

/// The UIDs of a set like `4`, `1:3` or `1,3:4` (`*` is the last), within 1..=exists.
fn uids_in(set: &str, exists: u32) -> Vec<u32> {
    let number = |n: &str| {
        if n == "*" {
            exists
        } else {
            n.parse().unwrap_or(0)
        }
    };
    set.split(',')
        .flat_map(|range| {
            let (a, b) = range.split_once(':').unwrap_or((range, range));
            let (a, b) = (number(a), number(b));
            a.min(b)..=a.max(b).min(exists)
        })
        .collect()
}

fn mailcat(port: u16, args: &[&str]) -> Command {
    let mut command = plaintext_mailcat(&format!("imap://127.0.0.1:{port}"), "secret");
    command.args(args);
    command
}

/// Starts `mailcat watch` and returns it with the first line it prints (None if nothing within
/// 20 s).
fn first_watch_line(port: u16) -> (Child, Option<String>) {
    let mut child = mailcat(port, &["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mailcat runs");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).ok();
    (child, line)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn watch_reports_only_what_arrives_on_foreign_servers() {
    let cases = [
        ("Courier: SELECT without UIDNEXT", Server::Courier, true),
        // Where `UID SEARCH` answers empty, watch finds the new message without it.
        (
            "GNU Mailutils: UID SEARCH answered empty",
            Server::Mailutils,
            false,
        ),
    ];
    for (name, server, may_search) in cases {
        let (port, seen) = scripted_server(server);
        let (child, line) = first_watch_line(port);
        stop(child);
        let seen = seen.lock().unwrap().clone();
        let line = line.unwrap_or_else(|| panic!("{name}: watch printed nothing; {seen:?}"));
        assert!(
            line.starts_with("4\t"),
            "{name}: {line:?}; the server saw {seen:?}"
        );
        if !may_search {
            assert!(
                !seen.iter().any(|l| l.contains("SEARCH")),
                "{name}: {seen:?}"
            );
        }
    }
}

#[test]
fn alerts_are_shown_on_stderr_escaped_in_every_command() {
    let (port, _) = scripted_server(Server::Alerting);
    let output = mailcat(port, &["mailboxes"])
        .output()
        .expect("mailcat runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("mailcat: server alert: Quota: 95% of 1 GiB used\\x1b[2J"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mailcat: server alert: IDLE is off: the mail store is on NFS"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

#[test]
fn fetch_delete_on_a_mailbox_opened_read_only_says_so_and_deletes_nothing() {
    let (port, seen) = scripted_server(Server::ReadOnly);
    let dir = std::env::temp_dir().join(format!(
        "mailcat-foreign-read-only-{}-{port}",
        std::process::id()
    ));
    let to = format!("maildir:{}", dir.display());
    let output = mailcat(port, &["fetch", "--delete", "--to", &to])
        .output()
        .expect("mailcat runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(output.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("opened INBOX read-only"), "{stderr}");
    assert!(stderr.contains("nothing was deleted"), "{stderr}");
    assert!(!stderr.contains("Failed to parse"), "{stderr}");
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("STORE") || l.contains("EXPUNGE")),
        "{seen:?}"
    );
}

#[test]
fn mailutils_bare_lf_after_authenticate_logs_in_and_the_trace_says_so() {
    let (port, _) = scripted_server(Server::Mailutils);
    let output = mailcat(port, &["mailboxes", "-v"])
        .output()
        .expect("mailcat runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("that line ended with a bare LF, not CRLF: accepted"),
        "{stderr}"
    );
}
