//! The IMAP commands of the CLI against a scripted server on the loopback (plain TCP, with
//! `--allow-plaintext`), for what a well-behaved Dovecot never does: a server that drops every
//! connection right after SELECT (`watch` must back off, not log in every second), a body cut
//! off mid-literal (`fetch --delete` stores nothing and deletes nothing), message headers
//! with terminal control sequences (`list` must not pass them to the terminal), and an ESEARCH
//! answer far longer than a line limit (`list` must read it in pieces).

use crate::support::plaintext_mailcat;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mailcat_codec::imap::SequenceSet;
use mailcat_tests::script::{send, serve_each, serve_tcp_each_blocking, Answer, Live};

/// How the scripted server answers the mailbox commands.
#[derive(Clone, Copy)]
enum Script {
    /// SELECT/EXAMINE succeed, then the next command gets `* BYE` and the connection closes.
    ByeAfterSelect,
    /// Two messages; fetching the first body sends 10 KiB of a 1 MiB literal and closes.
    CutMidLiteral,
    /// One message whose Subject and From carry terminal escape sequences.
    HostileHeaders,
    /// Like `CutMidLiteral`, but SELECT/EXAMINE report no UIDVALIDITY.
    NoUidValidity,
    /// ESEARCH offered; SELECT says 2 messages, then 30,000 have arrived by the search: every
    /// other UID from 1 to 59,999, on one `* ESEARCH` line of ~170 KB.
    ScatteredESearch,
}

/// The UIDs of [`Script::ScatteredESearch`]'s mailbox.
fn scattered_uids() -> impl Iterator<Item = u32> {
    (1..60_000).step_by(2)
}

/// A server that plays `script` on every connection; its port and every line it received.
fn server(script: Script) -> (u16, Live) {
    serve_tcp_each_blocking(vec![
        send(format!("* OK [CAPABILITY {}] scripted\r\n", caps(script))),
        serve_each(move || {
            let mut selected = false;
            move |line: &str| answer(script, &mut selected, line)
        }),
    ])
}

/// The capabilities the server announces.
fn caps(script: Script) -> &'static str {
    match script {
        Script::ScatteredESearch => "IMAP4rev1 SASL-IR AUTH=PLAIN UIDPLUS ESEARCH",
        _ => "IMAP4rev1 SASL-IR AUTH=PLAIN UIDPLUS",
    }
}

const HOSTILE_HEADER: &str = "Subject: =?utf-8?q?=1B]0;owned=07=1B[2J?= plain \x1b[31mred\r\nFrom: \x1b[1mboss\x1b[0m <boss@example.test>\r\n\r\n";

/// The server's answer to a command `line` of one connection (`selected`: whether it has
/// selected a mailbox yet).
fn answer(script: Script, selected: &mut bool, line: &str) -> Answer {
    let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
    let upper = command.to_ascii_uppercase();
    let ok = |what: &str| format!("{tag} OK {what} done\r\n");
    let mut say = String::new();
    if upper.starts_with("CAPABILITY") {
        say.push_str(&format!("* CAPABILITY {}\r\n", caps(script)));
        say.push_str(&ok("CAPABILITY"));
    } else if upper.starts_with("AUTHENTICATE") || upper.starts_with("ID") {
        say.push_str(&ok("it"));
    } else if upper.starts_with("LOGOUT") {
        say.push_str("* BYE bye\r\n");
        say.push_str(&ok("LOGOUT"));
        return Answer::last(say);
    } else if matches!(script, Script::ByeAfterSelect) && *selected {
        return Answer::last("* BYE going away\r\n");
    } else if upper.starts_with("SELECT") || upper.starts_with("EXAMINE") {
        *selected = true;
        let exists = match script {
            Script::ByeAfterSelect => 0,
            Script::CutMidLiteral | Script::NoUidValidity | Script::ScatteredESearch => 2,
            Script::HostileHeaders => 1,
        };
        say.push_str(&format!("* {exists} EXISTS\r\n"));
        if !matches!(script, Script::NoUidValidity) {
            say.push_str("* OK [UIDVALIDITY 7] ok\r\n");
        }
        say.push_str(&format!("* OK [UIDNEXT {}] ok\r\n", exists + 1));
        say.push_str(&ok("SELECT"));
    } else if matches!(script, Script::ScatteredESearch) && upper.starts_with("UID SEARCH") {
        assert_eq!(upper, "UID SEARCH RETURN (ALL) ALL");
        let all: Vec<String> = scattered_uids().map(|uid| uid.to_string()).collect();
        say.push_str("* 30000 EXISTS\r\n");
        say.push_str(&format!(
            "* ESEARCH (TAG \"{tag}\") UID ALL {}\r\n",
            all.join(",")
        ));
        say.push_str(&ok("SEARCH"));
    } else if matches!(script, Script::ScatteredESearch) && upper.starts_with("UID FETCH") {
        // A summary of each UID asked for, with the header fields asked for.
        let set: SequenceSet = command
            .split(' ')
            .nth(2)
            .expect("a set")
            .parse()
            .expect("set");
        for uid in set.iter(u32::MAX) {
            let header = format!("Subject: message {uid}\r\n\r\n");
            say.push_str(&summary(uid.div_ceil(2), uid, 100, command, &header));
        }
        say.push_str(&ok("FETCH"));
    } else if upper.starts_with("UID SEARCH") {
        let uids = match script {
            Script::CutMidLiteral | Script::NoUidValidity => " 1 2",
            Script::HostileHeaders => " 1",
            Script::ByeAfterSelect | Script::ScatteredESearch => "",
        };
        say.push_str(&format!("* SEARCH{uids}\r\n"));
        say.push_str(&ok("SEARCH"));
    } else if upper.starts_with("UID FETCH") && upper.contains("BODY.PEEK[]") {
        // The connection drops mid-literal.
        let mut cut = b"* 1 FETCH (UID 1 BODY[] {1048576}\r\n".to_vec();
        cut.extend_from_slice(&[b'x'; 10 * 1024]);
        return Answer::Last(cut);
    } else if upper.starts_with("UID FETCH") {
        let uids: &[u32] = match script {
            Script::CutMidLiteral | Script::NoUidValidity => &[1, 2],
            _ => &[1],
        };
        for (n, &uid) in (1..).zip(uids) {
            say.push_str(&summary(n, uid, 1_048_576, command, HOSTILE_HEADER));
        }
        say.push_str(&ok("FETCH"));
    } else {
        say.push_str(&format!("{tag} BAD unexpected\r\n"));
    }
    Answer::reply(say)
}

/// The FETCH answer for message `n` (UID `uid`, `size` octets) to `command`: with `header` as
/// the section a header request asked for (named as it asked).
fn summary(n: u32, uid: u32, size: u32, command: &str, header: &str) -> String {
    let mut item = format!(
        "* {n} FETCH (UID {uid} FLAGS () RFC822.SIZE {size} INTERNALDATE \"26-Nov-2026 06:00:00 +0000\""
    );
    if let Some(start) = command.find("BODY.PEEK[HEADER.FIELDS") {
        let section = &command[start + "BODY.PEEK".len()..];
        let section = &section[..section.find(']').expect("section end") + 1];
        item.push_str(&format!(" BODY{section} {{{}}}\r\n{header}", header.len()));
    }
    item.push_str(")\r\n");
    item
}

fn mailcat(port: u16, args: &[&str]) -> Command {
    let mut command = plaintext_mailcat(&format!("imap://127.0.0.1:{port}"), "secret");
    command.args(args);
    command
}

/// `mailcat fetch --delete` into a fresh Maildir named after `name`; the output and the dir.
fn fetch_and_delete(port: u16, name: &str) -> (std::process::Output, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("mailcat-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let to = format!("maildir:{}", dir.display());
    let output = mailcat(port, &["fetch", "--delete", "--to", &to])
        .output()
        .expect("fetch runs");
    (output, dir)
}

#[test]
fn watch_backs_off_further_when_the_server_drops_it_right_after_select() {
    let (port, seen) = server(Script::ByeAfterSelect);
    let mut child = mailcat(port, &["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut notices = Vec::new();
    let mut said = String::new();
    while notices.len() < 2 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        said.push_str(&line);
        if let Some((_, wait)) = line.split_once("reconnecting in ") {
            notices.push(wait.trim().to_owned());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // Each connection got as far as SELECT; the pause still doubles.
    assert_eq!(notices, ["1 s", "2 s"], "{said}");
    let selects = seen
        .lock()
        .expect("log")
        .iter()
        .filter(|l| l.contains("SELECT"))
        .count();
    assert!(selects >= 2, "both connections selected: {said}");
}

#[test]
fn a_body_cut_off_mid_literal_stores_nothing_and_deletes_nothing() {
    let (port, seen) = server(Script::CutMidLiteral);
    let (output, dir) = fetch_and_delete(port, "cut-literal");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    // An EOF, or a reset when the server went with pipelined commands still unread.
    assert!(
        stderr.contains("closed the connection") || stderr.contains("reset by peer"),
        "{stderr}"
    );
    for sub in ["new", "cur", "tmp"] {
        let files = std::fs::read_dir(dir.join(sub)).map_or(0, |d| d.count());
        assert_eq!(files, 0, "{sub}/ must be empty: {stderr}");
    }
    let commands = seen.lock().expect("log").clone();
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("STORE") || c.contains("EXPUNGE")),
        "nothing may be deleted: {commands:?}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn list_does_not_pass_terminal_escapes_from_headers_to_the_terminal() {
    let (port, _) = server(Script::HostileHeaders);
    for json in [false, true] {
        let mut args = vec!["list"];
        if json {
            args.push("--json");
        }
        let output = mailcat(port, &args).output().expect("list runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.stdout.contains(&0x1b) && !output.stdout.contains(&0x07),
            "{stdout:?}"
        );
        assert!(
            stdout.contains("red") && stdout.contains("boss"),
            "the text is kept: {stdout}"
        );
    }
}

#[test]
fn fetch_refuses_a_mailbox_without_uidvalidity_and_deletes_nothing() {
    let (port, seen) = server(Script::NoUidValidity);
    let (output, dir) = fetch_and_delete(port, "no-uidvalidity");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("has no UIDVALIDITY"), "{stderr}");
    let commands = seen.lock().expect("log").clone();
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("BODY.PEEK[]") || c.contains("STORE") || c.contains("EXPUNGE")),
        "nothing fetched or deleted: {commands:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_reads_an_esearch_answer_far_longer_than_a_line_in_pieces() {
    // The answer names 30,000 scattered UIDs where SELECT announced 2: a line of ~170 KB, read
    // whole with a limit scaled by the 2 messages announced, it was refused as too long.
    let (port, seen) = server(Script::ScatteredESearch);
    let output = mailcat(port, &["list"]).output().expect("list runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let listed: Vec<u32> = stdout
        .lines()
        .map(|line| {
            line.split('\t')
                .next()
                .unwrap_or("")
                .parse()
                .expect("a UID")
        })
        .collect();
    assert_eq!(listed, scattered_uids().collect::<Vec<_>>(), "{stderr}");
    assert!(stdout.contains("message 59999"), "{stdout}");
    // The newest three, asked for as one set.
    let output = mailcat(port, &["list", "--limit", "3"])
        .output()
        .expect("list runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let listed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(listed, ["59995", "59997", "59999"], "{stdout}");
    let commands = seen.lock().expect("log").clone();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("UID FETCH 59995,59997,59999 ")),
        "{commands:?}"
    );
}
