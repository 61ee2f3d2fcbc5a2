//! `mailcat send` against the lab's Postfix, as git send-email, mutt and cron run it: alice
//! sends through submission to `outbound@example.test` (and `outbound+tag@example.test`, which
//! Postfix delivers to the same Maildir as one copy per recipient), and the test reads the
//! delivered files in the outbound Maildir, found by a token unique to the test. (Postfix's
//! cleanup removes Bcc headers too, so the lab shows each Bcc recipient gets a copy and no copy
//! shows them; that mailcat itself removes them is shown by `send_scripted.rs`.)
//!
//! Needs the lab: `tests/lab/lab.sh up && eval "$(tests/lab/lab.sh env)"`.

use mailcat_session::Plaintext;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mailcat_tests::lab::Lab;
use mailcat_tests::roundtrip::as_stored;

/// One send at a time: the tests count copies in one shared Maildir.
static OUTBOUND: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    OUTBOUND.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the message reaches mailcat's stdin.
#[derive(Clone, Copy, Debug)]
enum Stdin {
    /// A regular file (`< message`): mailcat streams the body from it.
    File,
    /// A pipe (`cat message |`): mailcat spools it to a temporary file first.
    Pipe,
}

fn submission(lab: &Lab) -> String {
    format!("smtp://{}:{}", lab.strict_host, lab.submission_port)
}

/// A name unique to this run, for tokens and temporary files.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("mailcat-send-{what}-{}-{nanos}", std::process::id())
}

fn temp_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Runs `mailcat <args>` as alice (password from MAILCAT_PASSWORD unless `password` is None)
/// with `message` on stdin.
fn run(args: &[&str], message: &[u8], stdin: Stdin, password: Option<&str>) -> Output {
    run_with(args, message, stdin, |command| {
        match password {
            Some(password) => command.env("MAILCAT_PASSWORD", password),
            None => command.env_remove("MAILCAT_PASSWORD"),
        };
    })
}

fn run_with(
    args: &[&str],
    message: &[u8],
    stdin: Stdin,
    setup: impl FnOnce(&mut Command),
) -> Output {
    run_program(env!("CARGO_BIN_EXE_mailcat"), args, message, stdin, setup)
}

fn run_program(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    message: &[u8],
    stdin: Stdin,
    setup: impl FnOnce(&mut Command),
) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("XDG_CONFIG_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    setup(&mut command);
    match stdin {
        Stdin::File => {
            let path = temp_path(&unique("message"));
            std::fs::write(&path, message).expect("write the message file");
            command.stdin(File::open(&path).expect("open the message file"));
            let output = command.output().expect("mailcat runs");
            let _ = std::fs::remove_file(&path);
            output
        }
        Stdin::Pipe => {
            command.stdin(Stdio::piped());
            let mut child = command.spawn().expect("mailcat runs");
            let mut pipe = child.stdin.take().expect("stdin is piped");
            let message = message.to_vec();
            // Written from another thread: mailcat reads stdin while the pipe fills.
            let writer = std::thread::spawn(move || {
                let _ = pipe.write_all(&message);
            });
            let output = child.wait_with_output().expect("mailcat ends");
            writer.join().expect("the writer ends");
            output
        }
    }
}

/// `mailcat send` as alice over submission with `args` after it.
fn send(lab: &Lab, args: &[&str], message: &[u8], stdin: Stdin) -> Output {
    let server = submission(lab);
    let mut all = vec![
        "send",
        "--email",
        &lab.user,
        "--outgoing",
        &server,
        "--ca-file",
        lab.ca_file.to_str().expect("UTF-8 path"),
    ];
    all.extend_from_slice(args);
    run(&all, message, stdin, Some(&lab.password))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn outbound_dir() -> PathBuf {
    let dir = std::env::var("MAILCAT_LAB_DIR")
        .expect("MAILCAT_LAB_DIR is not set: eval \"$(tests/lab/lab.sh env)\"");
    PathBuf::from(dir).join("mail/example.test/outbound/Maildir")
}

/// The delivered files in the outbound Maildir that hold `token`.
fn copies_with(token: &str) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(outbound_dir().join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            if bytes.windows(token.len()).any(|w| w == token.as_bytes()) {
                found.push(bytes);
            }
        }
    }
    found
}

/// Waits (up to 15 s) until `count` copies holding `token` were delivered; returns them.
fn delivered(token: &str, count: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = copies_with(token);
        if found.len() >= count || Instant::now() > deadline {
            assert_eq!(
                found.len(),
                count,
                "copies with {token} in {}",
                outbound_dir().display()
            );
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn header_lines(copy: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(copy);
    let head = text.split("\n\n").next().unwrap_or_default().to_owned();
    head.lines().map(str::to_owned).collect()
}

fn header<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
        .collect()
}

/// A complete message (Date and Message-ID present) with `token` in the Message-ID.
fn message(token: &str, to: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.test>\r\nTo: {to}\r\nSubject: {token}\r\n\
         Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <{token}@example.test>\r\n\r\n{body}"
    )
    .into_bytes()
}

#[test]
fn recipients_as_arguments_get_the_message_as_written() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("args");
    let sent = message(
        &token,
        "Out <outbound@example.test>",
        "Hello,\r\n\r\nplain text.\r\n",
    );
    let output = send(&lab, &["outbound@example.test"], &sent, Stdin::File);
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    // Silent on success, as sendmail: cron would mail anything printed to the job's owner.
    assert_eq!(shown, "");
    assert!(output.stdout.is_empty());
    let copies = delivered(&token, 1);
    assert!(
        as_stored(&copies[0]).ends_with(&as_stored(&sent)),
        "the delivered copy ends with the message as sent:\n{}",
        String::from_utf8_lossy(&copies[0])
    );
    let lines = header_lines(&copies[0]);
    assert_eq!(header(&lines, "Return-Path"), ["<alice@example.test>"]);
    assert_eq!(header(&lines, "Message-ID").len(), 1, "{lines:#?}");
    assert_eq!(header(&lines, "Date").len(), 1, "{lines:#?}");
}

#[test]
fn a_message_without_date_and_message_id_gets_mailcats() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("nodate");
    let sent = format!(
        "From: alice@example.test\nTo: outbound@example.test\nSubject: {token}\n\ncron output\n"
    );
    let output = send(
        &lab,
        &["outbound@example.test"],
        sent.as_bytes(),
        Stdin::Pipe,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let copies = delivered(&token, 1);
    let lines = header_lines(&copies[0]);
    // Postfix would add its own (<...@localhost>); these are mailcat's.
    let ids = header(&lines, "Message-ID");
    assert_eq!(ids.len(), 1, "{lines:#?}");
    assert!(
        ids[0].starts_with("<mailcat.") && ids[0].ends_with("@example.test>"),
        "{ids:?}"
    );
    let dates = header(&lines, "Date");
    assert_eq!(dates.len(), 1, "{lines:#?}");
    assert!(dates[0].ends_with("+0000"), "{dates:?}");
}

#[test]
fn t_sends_to_to_cc_bcc_and_the_arguments_and_no_copy_shows_bcc() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("t");
    // Folded fields, a display name with a comma, a group, a comment, lower-case names,
    // Bcc folded over two lines with two addresses.
    let sent = format!(
        "From: Alice <alice@example.test>\r\n\
         To: \"Out, To\" <outbound+to@example.test>,\r\n\
         \tundisclosed-recipients:;\r\n\
         cc: team: outbound+cc@example.test (the team);\r\n\
         Subject: {token}\r\n\
         Bcc: outbound+bcc1@example.test,\r\n  Hidden <outbound+bcc2@example.test>\r\n\
         Message-ID: <{token}@example.test>\r\n\
         \r\n\
         To: outbound+body@example.test (a body line, not a header)\r\n"
    );
    let output = send(
        &lab,
        &["-v", "-t", "-i", "outbound+arg@example.test"],
        sent.as_bytes(),
        Stdin::File,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    for tag in ["to", "cc", "bcc1", "bcc2", "arg"] {
        assert!(
            shown.contains(&format!("<outbound+{tag}@example.test>: accepted")),
            "{tag}: {shown}"
        );
    }
    assert!(!shown.contains("outbound+body"), "{shown}");
    // One copy per recipient: To, Cc, two Bcc and the argument.
    let copies = delivered(&token, 5);
    for copy in &copies {
        let lines = header_lines(copy);
        assert!(header(&lines, "Bcc").is_empty(), "{lines:#?}");
        let text = String::from_utf8_lossy(copy);
        assert!(
            !text.contains("bcc1") && !text.contains("bcc2"),
            "a copy shows a Bcc recipient:\n{text}"
        );
        assert!(text.contains("cc: team: outbound+cc@example.test (the team);"));
    }
    // Nothing more arrives (the body's To: line is not a recipient).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(copies_with(&token).len(), 5);
}

#[test]
fn a_refused_recipient_sends_nothing_and_says_who() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("refused");
    let sent = message(&token, "outbound@example.test", "never delivered\r\n");
    let output = send(
        &lab,
        &["outbound@example.test", "nobody@example.test"],
        &sent,
        Stdin::File,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{shown}");
    assert!(
        shown.contains("<nobody@example.test>: refused: 550"),
        "{shown}"
    );
    assert!(
        shown.contains("<outbound@example.test>: accepted, but not sent to"),
        "{shown}"
    );
    assert!(shown.contains("the message was not sent"), "{shown}");
    // A message sent after it arrives; the refused one, which would have been queued first,
    // never does.
    let after = unique("after-refused");
    let output = send(
        &lab,
        &["outbound@example.test"],
        &message(&after, "outbound@example.test", "sent\r\n"),
        Stdin::File,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    delivered(&after, 1);
    assert!(
        copies_with(&token).is_empty(),
        "the refused send was delivered"
    );
}

#[test]
fn allow_partial_sends_to_the_accepted_recipients_and_exits_67() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("partial");
    let output = send(
        &lab,
        &[
            "--allow-partial",
            "nobody@example.test",
            "outbound@example.test",
        ],
        &message(&token, "outbound@example.test", "to whoever exists\r\n"),
        Stdin::File,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(67), "{shown}");
    assert!(
        shown.contains("<nobody@example.test>: refused: 550"),
        "{shown}"
    );
    assert!(
        shown.contains("<outbound@example.test>: accepted\n"),
        "{shown}"
    );
    assert!(shown.contains("sent to 1 of 2 recipients only"), "{shown}");
    delivered(&token, 1);
}

#[test]
fn a_line_over_998_octets_is_sent_with_a_warning() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("long-line");
    let long = "z".repeat(1500);
    let output = send(
        &lab,
        &["outbound@example.test"],
        &message(
            &token,
            "outbound@example.test",
            &format!("{long}\r\nshort\r\n"),
        ),
        Stdin::Pipe,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("warning: a line of the message is 1500 octets long"),
        "{shown}"
    );
    delivered(&token, 1);
}

#[test]
fn delivery_status_notifications_as_mutt_asks_for_them_come_back_to_the_sender() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("dsn");
    // sendmail -V: the envelope id the report quotes (Original-Envelope-Id, RFC 3464).
    let envid = format!("ENV-{}", token.len() + std::process::id() as usize);
    // mutt with dsn_notify="success,failure" and dsn_return="hdrs"; the envelope sender is
    // an outbound address, so the report lands where the test looks.
    let output = send(
        &lab,
        &[
            "-oem",
            "-oi",
            "-N",
            "success,failure",
            "-R",
            "hdrs",
            "-V",
            &envid,
            "-f",
            "outbound+dsn@example.test",
            "--",
            "outbound@example.test",
        ],
        &message(&token, "outbound@example.test", "report back, please\r\n"),
        Stdin::File,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let copies = delivered(&token, 2);
    let reports: Vec<String> = copies
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .filter(|c| c.contains("Content-Type: message/delivery-status"))
        .collect();
    assert_eq!(reports.len(), 1, "one report and the message itself");
    assert!(reports[0].contains("Successful Mail Delivery Report"));
    assert!(
        reports[0].contains(&format!("Original-Envelope-Id: {envid}")),
        "{}",
        reports[0]
    );
    // RET=HDRS: the report quotes the header, not the body.
    assert!(
        !reports[0].contains("report back, please"),
        "{}",
        reports[0]
    );
}

#[test]
fn a_raw_utf8_subject_is_delivered_past_a_hop_without_smtputf8() {
    let _serial = serial();
    let lab = Lab::from_env();
    // The lab's Postfix offers SMTPUTF8, its Dovecot LMTP does not: a message declared
    // SMTPUTF8 is accepted on submission, then bounced at delivery. Declared 8BITMIME only (as
    // msmtp and Postfix's sendmail send it) it arrives, byte for byte.
    let message = |token: &str| {
        format!(
            "From: alice@example.test\nTo: outbound@example.test\nSubject: Grüße aus Köln {token}\n\
             Message-ID: <{token}@example.test>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\nplain ASCII body\n"
        )
    };
    let token = unique("utf8-subject");
    let sent = message(&token);
    let output = send(
        &lab,
        &["-v", "outbound@example.test"],
        sent.as_bytes(),
        Stdin::File,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let mail_from = |shown: &str| {
        shown
            .lines()
            .find(|line| line.starts_with("C: MAIL FROM:"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no MAIL FROM in the trace:\n{shown}"))
    };
    let mail = mail_from(&shown);
    assert!(
        mail.contains("BODY=8BITMIME") && !mail.contains("SMTPUTF8"),
        "{mail}"
    );
    let copies = delivered(&token, 1);
    assert!(
        as_stored(&copies[0]).ends_with(&as_stored(sent.as_bytes())),
        "{}",
        String::from_utf8_lossy(&copies[0])
    );

    // --smtputf8 strict declares it for the header too: what RFC 6532 asks, and what a hop
    // without SMTPUTF8 then refuses (here: a bounce to the sender, no copy delivered).
    let sent = message(&unique("utf8-strict"));
    let output = send(
        &lab,
        &["-v", "--smtputf8", "strict", "outbound@example.test"],
        sent.as_bytes(),
        Stdin::File,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        mail_from(&shown).ends_with("BODY=8BITMIME SMTPUTF8"),
        "{shown}"
    );
}

#[test]
fn dots_bare_line_feeds_and_8bit_arrive_intact_through_a_pipe() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("dots");
    let body = ".leading dot\n.\n..\nbare LF above, CRLF below\r\n.\r\n\r\n.\r\n\
                \r.\r\nmixed\n\r\nUTF-8: Grüße, 日本語\n. \nlast line without an ending";
    let sent = format!(
        "From: alice@example.test\nTo: outbound@example.test\nSubject: {token}\n\
         Message-ID: <{token}@example.test>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\n{body}"
    );
    let output = send(
        &lab,
        &["outbound@example.test"],
        sent.as_bytes(),
        Stdin::Pipe,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let copies = delivered(&token, 1);
    let stored = as_stored(&copies[0]);
    let expected = as_stored(sent.as_bytes());
    assert!(
        stored.ends_with(&expected),
        "delivered:\n{}\nsent:\n{}",
        String::from_utf8_lossy(&stored),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn sendmail_invocations_of_git_send_email_mutt_and_cron() {
    let _serial = serial();
    let lab = Lab::from_env();
    // git send-email --sendmail-cmd="mailcat send" --envelope-sender=...
    // mutt: -oem -oi [-f] -- RCPT; cronie: -FCronDaemon -i -odi -oem -oi -t -f root;
    // Debian cron: -i -FCronDaemon -B8BITMIME -oem RCPT.
    // mailx/s-nail: -r ADDR.
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "mailx",
            &["-r", "outbound+mailx@example.test", "outbound@example.test"],
            "<outbound+mailx@example.test>",
        ),
        (
            "git",
            &[
                "-i",
                "-oi",
                "-f",
                "alice@example.test",
                "outbound@example.test",
            ],
            "<alice@example.test>",
        ),
        (
            "git-bounces",
            &[
                "-f",
                "Bounces <outbound+bounces@example.test>",
                "-i",
                "outbound@example.test",
            ],
            "<outbound+bounces@example.test>",
        ),
        (
            "mutt",
            &["-oem", "-oi", "--", "outbound@example.test"],
            "<alice@example.test>",
        ),
        (
            "cronie",
            &[
                "-FCronDaemon",
                "-i",
                "-odi",
                "-oem",
                "-oi",
                "-t",
                "-f",
                "root",
            ],
            "<alice@example.test>",
        ),
        (
            "debian-cron",
            &[
                "-i",
                "-FCronDaemon",
                "-B8BITMIME",
                "-oem",
                "outbound@example.test",
            ],
            "<alice@example.test>",
        ),
    ];
    for (name, args, return_path) in cases {
        let token = unique(name);
        let sent = message(&token, "outbound@example.test", "from a sendmail caller\n");
        let output = send(&lab, args, &sent, Stdin::File);
        let shown = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {shown}");
        if name == "cronie" {
            assert!(shown.contains("\"root\" has no @domain"), "{shown}");
        }
        let copies = delivered(&token, 1);
        let lines = header_lines(&copies[0]);
        assert_eq!(header(&lines, "Return-Path"), [return_path], "{name}");
    }
}

/// The config-file account (`--account lab`), then the default account through a symlink named
/// `sendmail`, as cron runs it: no mailcat flags at all.
#[test]
fn an_account_from_the_config_file_with_a_password_command() {
    let _serial = serial();
    let lab = Lab::from_env();
    let xdg = temp_path(&unique("xdg"));
    std::fs::create_dir_all(xdg.join("mailcat")).expect("config dir");
    // The password command's output, through sh: the tricky characters are quoted.
    std::fs::write(
        xdg.join("mailcat/config.toml"),
        format!(
            "default_account = \"lab\"\n\
             [accounts.other]\nemail = \"nobody@example.invalid\"\n\
             [accounts.lab]\nemail = \"{}\"\noutgoing = \"smtps://{}:{}\"\n\
             password_cmd = \"echo '{}'\"\nca_file = \"{}\"\n",
            lab.user,
            lab.host,
            lab.submissions_port,
            lab.password,
            lab.ca_file.display()
        ),
    )
    .expect("write config");
    let token = unique("config");
    let sent = message(&token, "outbound@example.test", "via the config file\r\n");
    let output = run_with(
        &["send", "--account", "lab", "outbound@example.test"],
        &sent,
        Stdin::File,
        |command| {
            command
                .env("XDG_CONFIG_HOME", &xdg)
                .env_remove("MAILCAT_PASSWORD");
        },
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let copies = delivered(&token, 1);
    let lines = header_lines(&copies[0]);
    assert_eq!(header(&lines, "Return-Path"), ["<alice@example.test>"]);

    let sendmail = xdg.join("sendmail");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailcat"), &sendmail).expect("symlink");
    let token = unique("as-sendmail");
    let sent = message(&token, "outbound@example.test", "cron output\n");
    let output = run_program(
        &sendmail,
        &[
            "-i",
            "-FCronDaemon",
            "-B8BITMIME",
            "-oem",
            "outbound@example.test",
        ],
        &sent,
        Stdin::Pipe,
        |command| {
            command
                .env("XDG_CONFIG_HOME", &xdg)
                .env_remove("MAILCAT_PASSWORD");
        },
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    delivered(&token, 1);
    let _ = std::fs::remove_dir_all(&xdg);
}

#[test]
fn a_wrong_password_is_exit_77_and_nothing_is_sent() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("wrongpw");
    let server = submission(&lab);
    let output = run(
        &[
            "send",
            "--email",
            &lab.user,
            "--outgoing",
            &server,
            "--ca-file",
            lab.ca_file.to_str().expect("UTF-8 path"),
            "outbound@example.test",
        ],
        &message(&token, "outbound@example.test", "x\r\n"),
        Stdin::File,
        Some("not alice's password"),
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(77), "{shown}");
    assert!(!shown.contains("not alice's password"), "{shown}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(copies_with(&token).is_empty());
}

#[test]
fn malformed_addresses_and_messages_are_exit_65_naming_what() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("malformed");
    let sent = message(&token, "outbound@example.test", "x\r\n");
    let cases: [(&[&str], Vec<u8>, &str); 5] = [
        (
            &["John Doe john@example.test"],
            sent.clone(),
            "the recipient argument \"John Doe john@example.test\"",
        ),
        (&["outbound@example.test", "root"], sent.clone(), "\"root\""),
        (
            &[
                "-f",
                "a@example.test, b@example.test",
                "outbound@example.test",
            ],
            sent.clone(),
            "the envelope sender (-f)",
        ),
        (
            &["-t"],
            b"From: alice@example.test\nTo: Alice <alice@example.test\n\nx\n".to_vec(),
            "the To: header",
        ),
        (
            &["outbound@example.test"],
            {
                let mut big = b"Subject: ".to_vec();
                big.resize(1024 * 1024 + 100, b'a');
                big
            },
            "larger than 1024 KiB",
        ),
    ];
    for (args, input, named) in cases {
        let output = send(&lab, args, &input, Stdin::Pipe);
        let shown = stderr(&output);
        assert_eq!(output.status.code(), Some(65), "{args:?}: {shown}");
        assert!(
            shown.contains(named),
            "{args:?} should name {named}: {shown}"
        );
    }
    let output = send(&lab, &["outbound@example.test"], b"", Stdin::File);
    assert_eq!(output.status.code(), Some(65), "{}", stderr(&output));
    assert!(stderr(&output).contains("empty"));
    assert!(copies_with(&token).is_empty());
}

#[test]
fn an_unreachable_server_is_69_or_75_and_no_recipients_is_a_usage_error() {
    let _serial = serial();
    let lab = Lab::from_env();
    let sent = message(&unique("unreachable"), "outbound@example.test", "x\r\n");
    // Port 1 on the loopback: nothing listens there (connection refused).
    let output = run(
        &[
            "send",
            "--email",
            &lab.user,
            "--outgoing",
            "smtp://127.0.0.1:1",
            "outbound@example.test",
        ],
        &sent,
        Stdin::File,
        Some(&lab.password),
    );
    let shown = stderr(&output);
    assert!(
        matches!(output.status.code(), Some(69 | 75)),
        "{:?}: {shown}",
        output.status
    );
    assert!(shown.contains("127.0.0.1"), "{shown}");
    let output = send(&lab, &[], &sent, Stdin::File);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(stderr(&output).contains("no recipients"));
    let output = send(&lab, &["-bs"], &sent, Stdin::File);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
}

// ----- --save-copy: the message as sent, appended to alice's Sent mailbox over IMAP -----

fn imaps(lab: &Lab) -> String {
    format!("imaps://{}:{}", lab.strict_host, lab.imaps_port)
}

/// Runs `f` on a session logged in as alice on the lab's IMAP server.
fn with_alice<T>(
    lab: &Lab,
    f: impl AsyncFnOnce(&mut mailcat_session::ImapSession<tokio::net::TcpStream>) -> T,
) -> T {
    use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let endpoint = Endpoint::new(Protocol::Imap, lab.host.clone(), Security::ImplicitTls)
            .with_port(lab.imaps_port);
        let tls = TlsSettings::only_ca_file(&lab.ca_file);
        let mut session = mailcat_session::imap::connect(
            &endpoint,
            &tls,
            &Timeouts::uniform(Duration::from_secs(10)),
        )
        .await
        .expect("IMAP connects");
        let credential =
            mailcat_session::Credential::password(lab.user.as_str(), lab.password.as_str());
        session
            .login(&credential, Plaintext::Refuse)
            .await
            .expect("alice logs in");
        let out = f(&mut session).await;
        let _ = session.logout().await;
        out
    })
}

/// The messages in alice's Sent whose Subject holds `token`, byte for byte as IMAP serves
/// them, with their flags (\Recent left out); they are deleted from Sent once read.
fn take_from_sent(
    lab: &Lab,
    token: &str,
) -> Vec<(Vec<u8>, Vec<mailcat_codec::imap::Flag<'static>>)> {
    use mailcat_codec::imap::command::{Mailbox, SearchKey, StoreMode};
    use mailcat_codec::imap::{Flag, SequenceSet};
    with_alice(lab, async |s| {
        s.select(&Mailbox::new("Sent").expect("a name"))
            .await
            .expect("alice has Sent");
        let uids = s
            .uid_search(&SearchKey::Header {
                field: "Subject".into(),
                value: token.into(),
            })
            .await
            .expect("SEARCH");
        if uids.is_empty() {
            return Vec::new();
        }
        let set = SequenceSet::from_numbers(uids.iter().copied()).expect("UIDs");
        let summaries = s
            .fetch_summaries(&set, &mailcat_session::imap::SummaryRequest::default())
            .await
            .expect("FETCH FLAGS");
        let mut sinks: Vec<(u32, Vec<u8>)> = uids.iter().map(|&u| (u, Vec::new())).collect();
        s.fetch_messages(&mut sinks).await.expect("FETCH BODY[]");
        s.store_flags(&set, StoreMode::Add, &[Flag::Deleted])
            .await
            .expect("STORE");
        s.expunge(&set).await.expect("UID EXPUNGE");
        sinks
            .into_iter()
            .map(|(uid, bytes)| {
                let flags = summaries
                    .iter()
                    .find(|x| x.uid == uid)
                    .map(|x| {
                        x.flags
                            .iter()
                            .filter(|f| **f != Flag::Recent)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                (bytes, flags)
            })
            .collect()
    })
}

#[test]
fn save_copy_appends_the_message_as_sent_to_sent_marked_seen() {
    use mailcat_codec::imap::Flag;
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("savecopy");
    // Bare LFs, a leading dot, 8-bit text, no Date or Message-ID (mailcat adds them) and a
    // Bcc (removed): the copy must be what the recipients got, not what was on stdin.
    let written = format!(
        "From: alice@example.test\nTo: outbound@example.test\nBcc: hidden@example.test\n\
         Subject: {token}\n\nDear Bob,\n.a line with a dot\nGr\u{fc}\u{df}e\nno final newline"
    );
    let incoming = imaps(&lab);
    let output = send(
        &lab,
        &[
            "--incoming",
            &incoming,
            "--save-copy",
            "outbound@example.test",
        ],
        written.as_bytes(),
        Stdin::Pipe,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert_eq!(shown, "mailcat send: saved a copy to Sent\n");
    let delivered = delivered(&token, 1).remove(0);
    let copies = take_from_sent(&lab, &token);
    assert_eq!(copies.len(), 1, "one copy in Sent");
    let (copy, flags) = &copies[0];
    assert_eq!(flags, &vec![Flag::Seen]);
    let text = String::from_utf8_lossy(copy);
    // CRLF throughout (no bare CR or LF), ending with one: as it went through DATA.
    assert!(
        !copy.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "{text}"
    );
    assert!(copy.ends_with(b"no final newline\r\n"), "{text}");
    // What the recipient got, byte for byte (Postfix adds Return-Path and Received in front
    // and Dovecot stores LF).
    assert!(
        delivered.ends_with(&as_stored(copy)),
        "the copy in Sent is the delivered message:\n{text}\n---\n{}",
        String::from_utf8_lossy(&delivered)
    );
    // Which is the message written, without Bcc, with mailcat's Date and Message-ID.
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mailcat_added =
        |l: &&str| l.starts_with("Date: ") || l.starts_with("Message-ID: <mailcat.");
    assert_eq!(
        lines.iter().filter(|l| mailcat_added(l)).count(),
        2,
        "{text}"
    );
    let rest: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !mailcat_added(l))
        .collect();
    let expected: Vec<&str> = written
        .split('\n')
        .filter(|l| !l.starts_with("Bcc:"))
        .chain([""])
        .collect();
    assert_eq!(rest, expected);
}

#[test]
fn save_copy_with_a_pop3_account_is_refused_before_sending() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("savecopy-pop3");
    let incoming = format!("pop3s://{}:{}", lab.strict_host, lab.pop3s_port);
    let output = send(
        &lab,
        &[
            "--incoming",
            &incoming,
            "--save-copy",
            "outbound@example.test",
        ],
        &message(&token, "outbound@example.test", "x\r\n"),
        Stdin::File,
    );
    let shown = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{shown}");
    assert!(
        shown.contains("is POP3, which cannot store mail"),
        "{shown}"
    );
    assert!(shown.contains("--incoming imaps://"), "{shown}");
    assert!(shown.contains("nothing was sent"), "{shown}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(copies_with(&token).is_empty());
}

#[test]
fn a_copy_that_cannot_be_saved_is_a_warning_and_the_send_still_succeeds() {
    let _serial = serial();
    let lab = Lab::from_env();
    let token = unique("savecopy-missing");
    // A name of this run: no other test creates it, and Dovecot refuses APPEND to a mailbox
    // that does not exist (NO [TRYCREATE]).
    let missing = format!("--save-copy=NoSuchMailbox-{token}");
    let incoming = imaps(&lab);
    let output = send(
        &lab,
        &["--incoming", &incoming, &missing, "outbound@example.test"],
        &message(&token, "outbound@example.test", "x\r\n"),
        Stdin::File,
    );
    let shown = stderr(&output);
    // Exit 0: the message went out, and an exit code that invites a retry would duplicate it.
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.starts_with(&format!(
            "mailcat send: sent, but the copy could not be saved to NoSuchMailbox-{token}: "
        )),
        "{shown}"
    );
    assert!(
        shown.contains("refused APPEND: NO ") && shown.contains("doesn't exist"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 1, "{shown}");
    delivered(&token, 1);
}
