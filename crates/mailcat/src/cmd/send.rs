//! `mailcat send [-t] [-f ADDR] [-i] [RCPT...] < message`: send a message from stdin, as sendmail
//! does, so that git send-email, mutt and cron can use mailcat as their sendmail:
//!
//! - Under the name `sendmail` (a symlink `sendmail -> mailcat`, see `main.rs`) mailcat is
//!   `mailcat send` with the configuration file's default account: what cron, mail(1) and
//!   programs with a hard-coded `/usr/sbin/sendmail` need.
//! - git send-email: `--sendmail-cmd="mailcat send"` (git 2.33+; run by the shell as
//!   `mailcat send [-f FROM] -i RCPT...`, recipients as bare addresses), or
//!   `--smtp-server=/path/to/sendmail` (the symlink: git runs it with `-i RCPT...` and no
//!   subcommand).
//! - mutt: `set sendmail="mailcat send"` (mutt runs `mailcat send -oem -oi [-f FROM] -- RCPT...`,
//!   with `-B8BITMIME` or `-N`/`-R` for DSN when configured).
//! - cron, through the symlink: cronie runs `sendmail -FCronDaemon -i -odi -oem -oi -t -f USER`,
//!   Debian's cron `sendmail -i -FCronDaemon -B8BITMIME -oem MAILTO`. `-f` with a bare user name
//!   (`-f root`) is replaced by the account's address, with a warning; a recipient must be a
//!   whole address (`MAILTO=me@example.com`): no domain is guessed for `root`.
//!
//! ```text
//!  args ─▶ envelope sender (-f / account) and argument recipients   (65 if malformed)
//!  stdin ─▶ header section in memory (≤ 1 MiB, else 65) ─▶ -t: To/Cc/Bcc recipients
//!        ─▶ body: stdin itself when it is a file, else spooled to an unnamed 0600 temp file
//!  header without Bcc/Resent-Bcc, plus Date and Message-ID when missing
//!        ─▶ MessageInfo (size, 8-bit, UTF-8 headers) ─▶ SmtpSession::send, streamed
//! ```
//!
//! Decisions, with what other sendmails do:
//! - **SMTPUTF8** is declared when an envelope address is not ASCII (`--smtputf8 auto`, the
//!   default); UTF-8 in the header section alone goes as 8-bit content (`BODY=8BITMIME`), as msmtp
//!   and Postfix's sendmail send it, so it is delivered past hops without SMTPUTF8 (the lab's
//!   Dovecot LMTP bounces a message declared SMTPUTF8). `--smtputf8 strict` declares it for such
//!   headers too (RFC 6532).
//! - **Recipients**: the arguments, each an address list (`"Ann <a@x.org>, b@y.org"`); with
//!   `-t`, also the To, Cc and Bcc headers (or Resent-To/Cc/Bcc when the message has any, RFC
//!   5322 §3.6.6). `-t` *adds* the arguments, as Postfix and msmtp do (classic sendmail and Exim
//!   remove them instead). Duplicates go once (domains compared without case). An address
//!   without a domain (cron's `To: root`) is an error: no domain is guessed for it.
//! - **Bcc** and **Resent-Bcc** headers are always removed, with or without `-t` (msmtp's
//!   default too): keeping them would show the hidden recipients to everybody.
//! - **Date** and **Message-ID** are added when missing (msmtp and Postfix's sendmail do the
//!   same; cron's messages have neither). The date is in UTC (`+0000`); the Message-ID is
//!   `<mailcat.SECS.NANOS.PID.RANDOM@domain-of-the-account>`. From is never added.
//! - **stdin** is read to its end: a line of only `.` is data (`-i`/`-oi` are accepted and have
//!   nothing to change). A leading mbox `From ` line is dropped. Empty input is refused (65).
//! - **Memory**: only the header section is held (at most 1 MiB). The body is streamed from stdin
//!   itself when stdin is a regular file (it is scanned once for the size and 8-bit content, then
//!   rewound), else it is spooled to a temporary file first (in `$TMPDIR`, created with mode 0600
//!   and deleted at once, so it disappears with the process): the size can then be announced with
//!   `SIZE=` (a too-large message is refused before it is sent) and 8-bit content announced with
//!   `BODY=8BITMIME`. A line over 998 octets (RFC 5321 §4.5.3.1.6) is sent unchanged with a warning
//!   (git send-email refuses it instead; refusing would lose cron's mail, and mailcat cannot
//!   re-encode a body without breaking what signs it). Measured against the lab (release build,
//!   submission with STARTTLS): a 50 MB message in 0.67 s from a file and 0.74 s from a pipe, peak
//!   RSS 6.8 and 6.6 MiB, the same as for a 300-byte message (6.7 MiB, 0.05 s).
//! - **Ignored sendmail options**: `-i`, `-oX` (`-oi`, `-oem`, `-odi`, `-odb` ...), `-B TYPE`,
//!   `-F NAME`, `-bm`, `-m`, `-n`, `-U`, `-G`, `-L TAG`, `-O OPT=VALUE`. `-r ADDR` is `-f ADDR`; `-v`
//!   is mailcat's own (the protocol trace, as sendmail's verbose mode shows the SMTP dialogue).
//!   Another `-b` mode (`-bs`, `-bp` ...) and any other option is a usage error (64).
//! - **Delivery status notifications**: `-N never|success,failure,delay` and `-R full|hdrs` ask
//!   the server for them (RFC 3461 NOTIFY and RET; the reports go to the envelope sender), as
//!   mutt's `dsn_notify`/`dsn_return` pass them. A server without DSN refuses the message
//!   before anything is sent (69), as msmtp does: sent without them, the reports the user
//!   counts on would never come. `-V ENVID` (sendmail's envelope id, RFC 3461 `ENVID=`, quoted by
//!   the reports) asks for no report itself: without DSN it is left out, as sendmail does, and
//!   `-v` says so. For `send`, `-V` is this id, not the version (`--version` still is).
//! - **Results**: nothing on success, as sendmail and msmtp (cron mails its owner whatever a job
//!   prints); with `-v`, one line per accepted recipient and the server's final reply. Failures on
//!   stderr, one line per recipient (`-q` keeps only those). All or nothing by
//!   default: when the server refuses any recipient nothing is sent; exit 69 (75 when every refusal
//!   was temporary). `--allow-partial` sends to the accepted ones and exits 67 (EX_NOUSER) when any
//!   was refused, never 75: a retry of the whole message would duplicate it for the accepted ones.
//!   Other failures: 75 temporary (4xx, network), 77 login refused, 69 permanent, 65 malformed
//!   address or message, 64 usage, 74 local I/O, 78 configuration.
//! - **`--save-copy[=MAILBOX]`** (opt-in: Gmail and Outlook.com keep sent mail themselves)
//!   appends the message as the server received it (CRLF, Bcc removed, Date/Message-ID as
//!   added), `\Seen`, to the `\Sent` mailbox (SPECIAL-USE, else "Sent") or MAILBOX over the
//!   account's IMAP server, on a new connection after the send (not alongside it: two logins
//!   renewing one OAuth2 token at once could spend a rotating refresh token twice). A POP3
//!   account is refused (64) before anything is sent. A failed copy is a warning, even with
//!   `-q`, and the exit code stays the send's (0, or 67): the message went out, and a failure
//!   code would invite a resend that duplicates it for every recipient.

mod address;

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use mailcat_codec::imap::command::Mailbox;
use mailcat_codec::imap::Flag;
use mailcat_codec::smtp::command::MAX_ENVID;
use mailcat_session::message as header;
use mailcat_session::smtp::{
    Address, Dsn, Envelope, HeaderCompletion, MessageInfo, Notify, PartialDelivery, Ret,
};
use mailcat_session::{Account, Error, Incoming};
use mailcat_transport::Protocol;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::cli::{Cli, SendArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::exit;

/// How much of stdin is read at a time.
const CHUNK: usize = 64 * 1024;

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli, args: &SendArgs) -> u8 {
    match send(cli, args) {
        Ok(()) => exit::OK,
        Err(Exit(code)) => code,
    }
}

fn say(cli: &Cli, line: &str) {
    if !cli.quiet {
        eprintln!("mailcat send: {line}");
    }
}

/// One refused recipient, always shown (even with `-q`).
fn say_refused(address: &impl std::fmt::Display, reply: &impl std::fmt::Display) {
    eprintln!(
        "mailcat send: <{}>: refused: {}",
        terminal_safe(&address.to_string()),
        terminal_safe(&reply.to_string())
    );
}

/// What to do when recipients were refused and nothing was sent: only a permanent refusal with
/// someone accepted leaves `--allow-partial` as a way out.
fn refused_advice(transient: bool, refused: usize, accepted: usize) -> String {
    let them = if refused == 1 { "it" } else { "them" };
    match (transient, accepted) {
        (true, _) => "; try again later".to_owned(),
        (false, 0) => format!("; fix {them} and send again"),
        (false, 1) => {
            format!("; fix or remove {them}, or send with --allow-partial to reach the other one")
        }
        (false, n) => {
            format!("; fix or remove {them}, or send with --allow-partial to reach the other {n}")
        }
    }
}

fn fail_with(code: u8, message: &str) -> Exit {
    common::failed("send", message, code)
}

fn data_error(message: &str) -> Exit {
    fail_with(exit::DATAERR, message)
}

fn io_error(what: &str, error: &io::Error) -> Exit {
    fail_with(exit::IOERR, &format!("{what}: {error}"))
}

fn send(cli: &Cli, args: &SendArgs) -> Result<(), Exit> {
    if let Some(mode) = args.mode.as_deref().filter(|m| *m != "m") {
        return Err(fail_with(
            exit::USAGE,
            &format!("-b{mode} is not supported: mailcat only sends a message (-bm)"),
        ));
    }
    let dsn = dsn(args)?;
    let settings = common::settings(cli, "send")?;
    let flag = args.from.as_deref().map(str::trim);
    let flag = match flag {
        // cronie runs `sendmail ... -f root`: a user name, not an address. The submission
        // server would refuse it (or the account's provider would): use the account's address.
        Some(name) if !name.is_empty() && name != "<>" && !name.contains('@') => {
            say(
                cli,
                &format!(
                    "warning: -f {:?} has no @domain: the envelope sender is the account's address",
                    terminal_safe(name)
                ),
            );
            None
        }
        flag => flag,
    };
    let from = sender(flag, &settings.email)?;
    let mut recipients = Recipients::default();
    for arg in &args.recipients {
        recipients.add_list(arg, &format!("the recipient argument {arg:?}"))?;
    }
    if !args.read_recipients && recipients.list.is_empty() {
        return Err(fail_with(
            exit::USAGE,
            "no recipients: give them as arguments (mailcat send a@example.com < message) or use -t to read them from the To, Cc and Bcc headers",
        ));
    }
    let save = save_copy_target(args, &settings)?;
    let account = common::account(cli, &settings, "send", save.is_some(), true)?;

    let (header, body) = read_message()?;
    if header.is_empty_input() {
        return Err(data_error("the message on stdin is empty: nothing to send"));
    }
    if args.read_recipients {
        let names = recipient_fields(&header);
        for name in names {
            for value in header.values(name) {
                recipients.add_list(&value, &format!("the {name}: header"))?;
            }
        }
        if recipients.list.is_empty() {
            return Err(data_error(&format!(
                "no recipients: the message's {} headers name nobody, and no RCPT argument was given",
                names.join(", ")
            )));
        }
    }
    // Bcc removed, Date and Message-ID added when missing: what the library sends, kept here
    // as bytes for --save-copy.
    let head = header.completed(&settings.email);
    let envelope = Envelope {
        from,
        to: recipients.list,
        dsn,
    };

    let mut body = body;
    let body_start = body
        .stream_position()
        .map_err(|e| io_error("cannot read stdin", &e))?;
    common::runtime()?.block_on(async {
        let mut body = tokio::fs::File::from_std(body);
        // The scan (size and 8-bit content, for SIZE= and BODY=) reads the whole body once:
        // it runs while the connection, TLS and login wait on the network.
        let (body_info, session) =
            tokio::join!(MessageInfo::scan(&mut body), account.send_session());
        let body_info = match body_info {
            Ok(info) => info,
            Err(e) => {
                if let Ok(session) = session {
                    let _ = session.logout().await;
                }
                return Err(io_error("cannot read the message", &e));
            }
        };
        let head_info = MessageInfo::of_bytes(&head);
        let info = MessageInfo {
            size: head_info.size.zip(body_info.size).map(|(h, b)| h + b),
            eight_bit: head_info.eight_bit || body_info.eight_bit,
            utf8_headers: head_info.utf8_headers,
            longest_line: head_info.longest_line.max(body_info.longest_line),
        };
        if info.longest_line > mailcat_session::smtp::MAX_LINE {
            say(
                cli,
                &format!(
                    "warning: a line of the message is {} octets long, over the {} that SMTP allows (RFC 5321 §4.5.3.1.6): a server may cut it, corrupting it, or refuse the message; encode the body as quoted-printable or base64 to be safe",
                    info.longest_line,
                    mailcat_session::smtp::MAX_LINE
                ),
            );
        }
        let mut message = AsyncReadExt::chain(head.as_slice(), body);
        let sent = async {
            let mut session = session?;
            // `head` is already what the library would make of the header section.
            session.set_header_completion(HeaderCompletion::AsGiven);
            session.set_partial_delivery(if args.allow_partial {
                PartialDelivery::ToAccepted
            } else {
                PartialDelivery::AllOrNothing
            });
            session.set_smtputf8(args.smtputf8.into());
            if cli.verbose && envelope.dsn.envid.is_some() && !session.extensions().dsn() {
                say(
                    cli,
                    "the server does not offer DSN: the envelope id (-V) is left out, as sendmail does",
                );
            }
            session.send_and_quit(&envelope, &mut message, &info).await
        };
        let sent = sent.await;
        match sent {
            Ok(report) => {
                // Silent when all went well, as sendmail and msmtp are (cron mails its owner
                // whatever a job prints); the details with -v, or when some were refused.
                let partial = !report.refused.is_empty();
                if cli.verbose || partial {
                    for accepted in &report.accepted {
                        say(cli, &format!("<{accepted}>: accepted"));
                    }
                }
                // Only with --allow-partial: else a refusal is RecipientsRefused below.
                for (address, reply) in &report.refused {
                    say_refused(address, reply);
                }
                if cli.verbose || partial {
                    say(
                        cli,
                        &format!("sent: {}", terminal_safe(&report.reply.to_string())),
                    );
                }
                if let Some(save) = &save {
                    // Sent (to some at least, with --allow-partial): whatever happens to the
                    // copy, the exit code is the send's, so nobody sends it again.
                    let (_, body) = message.into_inner();
                    save_copy(cli, &account, save, &head, body, body_start).await;
                }
                if !partial {
                    return Ok(());
                }
                // Not 75 even when every refusal was temporary: sending the whole message
                // again would give the accepted recipients a second copy.
                Err(fail_with(
                    exit::NOUSER,
                    &format!(
                        "sent to {} of {} recipients only (--allow-partial); send it again to the refused ones alone",
                        report.accepted.len(),
                        report.accepted.len() + report.refused.len(),
                    ),
                ))
            }
            Err(Error::RecipientsRefused {
                host,
                refused,
                accepted,
                transient,
            }) => {
                for (address, reply) in &refused {
                    say_refused(address, reply);
                }
                for address in &accepted {
                    eprintln!(
                        "mailcat send: <{}>: accepted, but not sent to (all or nothing)",
                        terminal_safe(address)
                    );
                }
                Err(fail_with(
                    if transient {
                        exit::TEMPFAIL
                    } else {
                        exit::UNAVAILABLE
                    },
                    &format!(
                        "the message was not sent: {} refused {}{}",
                        terminal_safe(&host),
                        mailcat_session::refused_recipients(
                            refused.len(),
                            refused.len() + accepted.len()
                        ),
                        refused_advice(transient, refused.len(), accepted.len()),
                    ),
                ))
            }
            Err(error) => Err(common::fail("send", &error)),
        }
    })
}

/// Where `--save-copy` puts the copy: the mailbox given, else the Sent one the server names.
#[derive(Debug)]
struct SaveCopy {
    mailbox: Option<Mailbox>,
}

/// Checks `--save-copy` before anything is sent: the copy goes over IMAP, so the account's
/// incoming server must be IMAP (POP3 cannot store mail), and a mailbox given must be a name.
fn save_copy_target(
    args: &SendArgs,
    settings: &crate::config::AccountSettings,
) -> Result<Option<SaveCopy>, Exit> {
    let Some(given) = &args.save_copy else {
        return Ok(None);
    };
    let usage = |message: &str| fail_with(exit::USAGE, message);
    let mailbox = match given {
        None => None,
        Some(name) => Some(Mailbox::new(name.as_str()).map_err(|e| {
            usage(&format!(
                "--save-copy={}: {}; name a mailbox (--save-copy=Sent), or leave the name out for the server's Sent mailbox",
                terminal_safe(name),
                terminal_safe(&e.to_string())
            ))
        })?),
    };
    match &settings.incoming {
        None => Err(usage(
            "--save-copy stores the copy over IMAP, and the account has no incoming server: give --incoming imaps://imap.example.com (or set incoming in the config file), or send without --save-copy",
        )),
        Some(incoming) if incoming.protocol != Protocol::Imap => Err(usage(&format!(
            "--save-copy stores the copy over IMAP, and the account's incoming server {} is {}, which cannot store mail: set the incoming server to the provider's IMAP server (--incoming imaps://…, or incoming in the config file), or send without --save-copy; nothing was sent",
            terminal_safe(&incoming.url()),
            incoming.protocol
        ))),
        Some(_) => Ok(Some(SaveCopy { mailbox })),
    }
}

/// `--save-copy`, after a send: appends the message as it was sent, `\Seen`, and tells how it
/// went in one line on stderr. A failure is a warning: the message was sent.
async fn save_copy(
    cli: &Cli,
    account: &Account,
    save: &SaveCopy,
    head: &[u8],
    body: tokio::fs::File,
    body_start: u64,
) {
    match store_copy(account, save, head, body, body_start).await {
        Ok(mailbox) => say(cli, &format!("saved a copy to {}", terminal_safe(&mailbox))),
        // Even with -q: the user asked for the copy and must learn it is not there.
        Err((mailbox, why)) => eprintln!(
            "mailcat send: sent, but the copy could not be saved to {}: {why}",
            terminal_safe(&mailbox)
        ),
    }
}

/// Appends the copy; returns the mailbox's name, or it and why the copy is not there (text
/// already terminal-safe).
async fn store_copy(
    account: &Account,
    save: &SaveCopy,
    head: &[u8],
    mut body: tokio::fs::File,
    body_start: u64,
) -> Result<String, (String, String)> {
    let mut mailbox = save
        .mailbox
        .as_ref()
        .map_or_else(|| "Sent".to_owned(), Mailbox::to_string);
    let why = |e: &Error| {
        let mut text = terminal_safe(&e.to_string());
        if let Some(hint) = e.hint().filter(|hint| !text.contains(hint.as_str())) {
            text.push_str(&format!(" ({})", terminal_safe(&hint)));
        }
        text
    };
    let message = async {
        body.seek(SeekFrom::Start(body_start)).await?;
        as_sent(head, &mut body).await
    }
    .await
    .map_err(|e| {
        (
            mailbox.clone(),
            format!("cannot read the message again: {e}"),
        )
    })?;
    let incoming = account
        .receive()
        .await
        .map_err(|e| (mailbox.clone(), why(&e)))?;
    let mut session = match incoming {
        Incoming::Imap { session, .. } => session,
        // Checked before sending; a library change would land here, not in a panic.
        other => {
            other.abort().await;
            return Err((mailbox, "the incoming server is not IMAP".to_owned()));
        }
    };
    let result = async {
        let target = match &save.mailbox {
            Some(target) => target.clone(),
            None => match session.sent_mailbox().await.map_err(|e| why(&e))? {
                Some(info) => {
                    mailbox.clone_from(&info.name);
                    info.mailbox().map_err(|e| why(&e))?
                }
                None => {
                    return Err(
                        "the server has no mailbox marked \\Sent (SPECIAL-USE) and none named Sent: name one with --save-copy=MAILBOX"
                            .to_owned(),
                    )
                }
            },
        };
        session
            .append(&target, &message, &[Flag::Seen], None)
            .await
            .map_err(|e| why(&e))
    }
    .await;
    // The copy is stored or refused by now: a failed LOGOUT changes nothing.
    let _ = session.logout().await;
    match result {
        Ok(_) => Ok(mailbox),
        Err(why) => Err((mailbox, why)),
    }
}

/// The message as the server received it: `head` then the body, every bare CR and bare LF made
/// CRLF and a CRLF at the end when it has none, as the DATA phase's dot-stuffer sends it (and
/// the server unstuffs it). What APPEND stores, so the copy is the message as sent, byte for
/// byte.
async fn as_sent(
    head: &[u8],
    body: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<Vec<u8>> {
    let mut crlf = Crlf::default();
    let mut out = Vec::with_capacity(head.len() + CHUNK);
    crlf.push(head, &mut out);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = body.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        crlf.push(&buf[..n], &mut out);
    }
    crlf.finish(&mut out);
    Ok(out)
}

/// CRLF normalisation over chunks, with [`mailcat_codec::core::dot::DotStuffer`]'s rules and
/// without its dot-stuffing and terminator.
#[derive(Debug)]
struct Crlf {
    at_line_start: bool,
    /// The last byte was a CR, already written as CRLF: an LF now is part of it.
    skip_lf: bool,
}

impl Default for Crlf {
    fn default() -> Self {
        Self {
            at_line_start: true,
            skip_lf: false,
        }
    }
}

impl Crlf {
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        for &b in input {
            match b {
                b'\n' if self.skip_lf => {}
                b'\n' | b'\r' => out.extend_from_slice(b"\r\n"),
                _ => out.push(b),
            }
            self.skip_lf = b == b'\r';
            self.at_line_start = b == b'\r' || b == b'\n';
        }
    }

    fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The delivery status notifications of `-N` and `-R`, as sendmail spells them: `-N never` or a
/// comma list of `success`, `failure`, `delay`; `-R full` or `-R hdrs` (any case).
fn dsn(args: &SendArgs) -> Result<Dsn, Exit> {
    let usage = |message: &str| fail_with(exit::USAGE, message);
    let notify = match args.dsn_notify.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(value) if value.trim() == "never" => Some(Notify::Never),
        Some(value) => {
            let (mut success, mut failure, mut delay) = (false, false, false);
            for word in value.split(',').map(str::trim) {
                match word {
                    "success" => success = true,
                    "failure" => failure = true,
                    "delay" => delay = true,
                    _ => {
                        return Err(usage(&format!(
                            "-N {}: say never, or any of success, failure and delay separated by commas (-N failure,delay)",
                            terminal_safe(&value)
                        )))
                    }
                }
            }
            Some(Notify::On {
                success,
                failure,
                delay,
            })
        }
    };
    let ret = match args.dsn_return.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(value) if value == "full" => Some(Ret::Full),
        Some(value) if value == "hdrs" => Some(Ret::Headers),
        Some(value) => {
            return Err(usage(&format!(
                "-R {}: say full (the whole message in a report) or hdrs (its header only)",
                terminal_safe(&value)
            )))
        }
    };
    let envid = match &args.envid {
        None => None,
        Some(envid) => {
            let printable = envid.bytes().all(|b| (0x20..=0x7e).contains(&b));
            if envid.is_empty() || envid.len() > MAX_ENVID || !printable {
                return Err(usage(&format!(
                    "-V {:?}: the envelope id is 1 to {MAX_ENVID} printable ASCII characters (RFC 3461)",
                    terminal_safe(envid)
                )));
            }
            Some(envid.clone())
        }
    };
    Ok(Dsn { notify, ret, envid })
}

/// The fields -t reads recipients from: Resent-To/Cc/Bcc when the message has any of them (it
/// is being resent, RFC 5322 §3.6.6: the original recipients already had it), else To/Cc/Bcc.
fn recipient_fields(header: &header::HeaderSection) -> [&'static str; 3] {
    const RESENT: [&str; 3] = ["Resent-To", "Resent-Cc", "Resent-Bcc"];
    if RESENT.iter().any(|name| header.has(name)) {
        RESENT
    } else {
        ["To", "Cc", "Bcc"]
    }
}

/// The envelope sender: `-f ADDR` (`''` or `<>`: the null sender), else the account's address.
/// (`run` has already replaced a `-f` without `@` by the account's address.)
fn sender(flag: Option<&str>, email: &str) -> Result<Option<Address>, Exit> {
    let (text, what) = match flag.map(str::trim) {
        Some("" | "<>") => return Ok(None),
        Some(text) => (text, "the envelope sender (-f)"),
        None if email.trim().is_empty() => {
            return Err(fail_with(
                exit::USAGE,
                "no envelope sender: give -f ADDR or the account's --email ADDR",
            ))
        }
        None => (email, "the account's address"),
    };
    let list = address::parse_list(text)
        .map_err(|e| data_error(&format!("{what} is not an address: {e}")))?;
    match list.as_slice() {
        [one] => smtp_address(one, what).map(Some),
        _ => Err(data_error(&format!(
            "{what} {text:?} must be exactly one address"
        ))),
    }
}

fn smtp_address(text: &str, what: &str) -> Result<Address, Exit> {
    Address::new(text).map_err(|e| {
        data_error(&format!(
            "{what}: {:?} is not a valid address: {e}",
            terminal_safe(text)
        ))
    })
}

/// The envelope recipients, in order, each once.
#[derive(Debug, Default)]
struct Recipients {
    list: Vec<Address>,
}

impl Recipients {
    fn add_list(&mut self, text: &str, what: &str) -> Result<(), Exit> {
        let addresses = address::parse_list(text).map_err(|e| {
            data_error(&format!(
                "{what} is not a valid address list: {}",
                terminal_safe(&e.to_string())
            ))
        })?;
        for text in addresses {
            let address = smtp_address(&text, what)?;
            let same = |a: &Address| {
                a.local_part() == address.local_part()
                    && a.domain().eq_ignore_ascii_case(address.domain())
            };
            if !self.list.iter().any(same) {
                self.list.push(address);
            }
        }
        Ok(())
    }
}

/// Reads the header section from stdin; returns it with a file positioned at the body: stdin
/// itself when it is a regular file, else a spool file holding the rest of stdin.
fn read_message() -> Result<(header::HeaderSection, File), Exit> {
    let stdin = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| io_error("cannot read stdin", &e))?;
    let mut file = File::from(stdin);
    let seekable = file.metadata().is_ok_and(|m| m.is_file());
    let start = if seekable {
        file.stream_position()
            .map_err(|e| io_error("cannot read stdin", &e))?
    } else {
        0
    };
    let mut reader = BufReader::with_capacity(CHUNK, file);
    let header = header::read(&mut reader).map_err(|e| match e {
        header::HeaderError::Io(e) => io_error("cannot read the message from stdin", &e),
        too_large => data_error(&too_large.to_string()),
    })?;
    let body = if seekable {
        let mut file = reader.into_inner();
        file.seek(SeekFrom::Start(start + header.consumed()))
            .map_err(|e| io_error("cannot read stdin", &e))?;
        file
    } else {
        let mut spool = spool_file().map_err(|e| {
            io_error(
                &format!(
                    "cannot create a temporary file in {} (set TMPDIR)",
                    std::env::temp_dir().display()
                ),
                &e,
            )
        })?;
        io::copy(&mut reader, &mut spool)
            .map_err(|e| io_error("cannot spool the message from stdin", &e))?;
        spool
            .seek(SeekFrom::Start(0))
            .map_err(|e| io_error("cannot read the spooled message", &e))?;
        spool
    };
    Ok((header, body))
}

/// A new temporary file that only this user can read (0600) and that has no name any more:
/// it disappears when the process ends, however it ends.
fn spool_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    let (secs, nanos) = now();
    for attempt in 0..32 {
        let path = dir.join(format!(
            ".mailcat-send-{}-{secs}{nanos:09}-{attempt}",
            std::process::id()
        ));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name",
    ))
}

/// Seconds and nanoseconds since the Unix epoch.
fn now() -> (u64, u32) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_secs(), since.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailcat_session::message::REMOVED;

    fn recipients_of(message: &[u8]) -> Result<Vec<String>, String> {
        let header = header::read(&mut &message[..]).map_err(|e| format!("{e:?}"))?;
        let mut out = Vec::new();
        for name in ["To", "Cc", "Bcc"] {
            for value in header.values(name) {
                out.extend(address::parse_list(&value).map_err(|e| e.to_string())?);
            }
        }
        Ok(out)
    }

    #[test]
    fn t_reads_folded_to_cc_bcc_with_groups_and_names() {
        let message = b"From: Alice <alice@example.test>\r\n\
To: \"Doe, John\" <john@x.test>,\r\n\
\x20undisclosed-recipients:;,\r\n\
\tann@y.test (Ann)\r\n\
cc: Team: bob@z.test, Carol <carol@z.test>;\r\n\
Subject: To: not@this.test\r\n\
BCC: hidden@w.test\r\n\
\r\n\
To: body@not.test\r\n";
        assert_eq!(
            recipients_of(message).expect("parses"),
            [
                "john@x.test",
                "ann@y.test",
                "bob@z.test",
                "carol@z.test",
                "hidden@w.test"
            ]
        );
        let header = header::read(&mut &message[..]).expect("reads");
        let out = header.rewrite(&REMOVED, &[]);
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
        assert!(!text.contains("hidden@w.test"), "{text}");
        assert!(text.contains("cc: Team: bob@z.test"), "{text}");
        assert!(
            text.ends_with("Subject: To: not@this.test\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn resent_bcc_is_removed_too_and_other_fields_stay_as_written() {
        let message = b"Resent-Bcc: r@x.test\nX-Bcc-Like: stays\nTo: a@x.test\n\nbody\n";
        let header = header::read(&mut &message[..]).expect("reads");
        assert_eq!(
            header.rewrite(&REMOVED, &[]),
            b"X-Bcc-Like: stays\nTo: a@x.test\n\r\n"
        );
    }

    #[test]
    fn t_reads_resent_fields_when_there_are_any() {
        let plain = header::read(&mut &b"To: a@x.test\nCc: b@x.test\n\n"[..]).expect("reads");
        assert_eq!(recipient_fields(&plain), ["To", "Cc", "Bcc"]);
        let resent =
            header::read(&mut &b"To: a@x.test\nresent-cc: c@x.test\n\n"[..]).expect("reads");
        assert_eq!(
            recipient_fields(&resent),
            ["Resent-To", "Resent-Cc", "Resent-Bcc"]
        );
    }

    #[test]
    fn the_copy_is_the_message_as_data_delivers_it_in_any_chunks() {
        use mailcat_codec::core::dot::{stuff_all, unstuff_all};
        let samples: [&[u8]; 7] = [
            b"",
            b"a",
            b"a\nb\r\nc\rd\r\re\n\nf",
            b".dot\n..two\r\n.\r\nend\r\n",
            b"\r",
            b"x\r\n\r\n\n\r\r\n",
            "Gr\u{fc}\u{df}e\nno final newline".as_bytes(),
        ];
        for sample in samples {
            let delivered = unstuff_all(&stuff_all(sample)).expect("terminated").0;
            // Every split into head and body chunks, a CR and its LF apart included.
            for cut in 0..=sample.len() {
                for chunk in 1..=sample.len().max(1) {
                    let mut crlf = Crlf::default();
                    let mut out = Vec::new();
                    crlf.push(&sample[..cut], &mut out);
                    for piece in sample[cut..].chunks(chunk) {
                        crlf.push(piece, &mut out);
                    }
                    crlf.finish(&mut out);
                    assert_eq!(out, delivered, "{sample:?} cut at {cut}, chunks of {chunk}");
                }
            }
        }
    }

    #[test]
    fn the_envelope_sender_from_the_flag_or_the_account() {
        assert_eq!(sender(Some("<>"), "a@x.test"), Ok(None));
        assert_eq!(sender(Some(""), "a@x.test"), Ok(None));
        assert_eq!(
            sender(Some("Bounces <b@x.test>"), "a@x.test")
                .expect("valid")
                .map(|a| a.to_string()),
            Some("b@x.test".into())
        );
        assert_eq!(
            sender(None, "a@x.test")
                .expect("valid")
                .map(|a| a.to_string()),
            Some("a@x.test".into())
        );
        assert_eq!(sender(Some("root"), "a@x.test"), Err(Exit(exit::DATAERR)));
        assert_eq!(
            sender(Some("a@x.test, b@x.test"), "a@x.test"),
            Err(Exit(exit::DATAERR))
        );
        assert_eq!(sender(None, ""), Err(Exit(exit::USAGE)));
    }

    #[test]
    fn recipients_are_deduplicated_with_domains_compared_without_case() {
        let mut r = Recipients::default();
        r.add_list("a@X.test, A@x.test", "test").expect("valid");
        r.add_list("<a@x.TEST>", "test").expect("valid");
        let list: Vec<_> = r.list.iter().map(Address::to_string).collect();
        assert_eq!(list, ["a@X.test", "A@x.test"]);
        assert_eq!(r.add_list("-oi@x.test", "test"), Err(Exit(exit::DATAERR)));
    }
}
