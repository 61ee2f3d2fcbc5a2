//! `mailcat`: fetch and send mail over POP3, IMAP and SMTP.
//!
//! Exit codes follow sysexits.h, as msmtp's do (see [`exit`]).

/// `println!` that survives a closed pipe (`mailcat list | head`): it ends the program quietly
/// (exit 0) instead of panicking, and reports other write errors with exit 74.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cmd::common::write_line(format_args!($($arg)*))
    };
}

mod cli;
mod cmd;
mod config;
mod exit;
mod failure;
mod password_prompt;
mod tilde;
mod trace;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// The arguments, with `send` put first when mailcat runs under the name `sendmail` (a symlink
/// `/usr/sbin/sendmail -> mailcat`), so cron, mail(1) and friends can use it unchanged.
fn arguments(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let invoked_as_sendmail = args.first().is_some_and(|argv0| {
        Path::new(argv0)
            .file_name()
            .is_some_and(|name| name == "sendmail")
    });
    if invoked_as_sendmail {
        args.insert(1, OsString::from("send"));
    }
    args
}

fn main() -> ExitCode {
    let args = arguments(std::env::args_os());
    let cli = match cli::Cli::parse_args(args.iter().cloned()) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = err.print();
            // A mistyped flag next to --json is still answered in JSON.
            if code != exit::OK && wants_json(&args) {
                failure::use_json(true);
                failure::tell_json("", &usage_message(&err), None, code);
            }
            return ExitCode::from(code);
        }
    };
    if cli.verbose {
        trace::enable();
    }
    failure::use_json(cli.json);
    if let Some(path) = &cli.capture {
        mailcat_transport::capture::start(path);
    }
    let code = match &cli.command {
        cli::Command::Check(args) => cmd::check::run(&cli, args),
        cli::Command::Autoconfig(args) => cmd::autoconfig::run(&cli, args),
        cli::Command::Mailboxes => cmd::mailboxes::run(&cli),
        cli::Command::List(args) => cmd::list::run(&cli, args),
        cli::Command::Cat(args) => cmd::cat::run(&cli, args),
        cli::Command::Fetch(args) => cmd::fetch::run(&cli, args),
        cli::Command::Send(args) => cmd::send::run(&cli, args),
        cli::Command::Watch(args) => cmd::watch::run(&cli, args),
        cli::Command::Decode(args) => cmd::decode::run(args),
        cli::Command::OAuth2(command) => cmd::oauth2::run(&cli, command),
        cli::Command::Completions(args) => cmd::completions::run(args),
        cli::Command::Man(args) => cmd::man::run(args),
    };
    if let Err((path, err)) = mailcat_transport::capture::finish() {
        eprintln!(
            "mailcat: the capture {} is incomplete: {err}",
            path.display()
        );
    }
    failure::at_exit(cli.command.name(), code);
    ExitCode::from(code)
}

/// True when `--json` is among the options (before a `--`).
fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--json")
}

/// clap's message without its `error: ` prefix and the usage lines that follow it.
fn usage_message(err: &clap::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

#[cfg(test)]
mod tests {
    use super::arguments;
    use std::ffi::OsString;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn under_the_name_sendmail_it_sends() {
        assert_eq!(
            arguments(args(&["/usr/sbin/sendmail", "-i", "-oem", "root"])),
            args(&["/usr/sbin/sendmail", "send", "-i", "-oem", "root"])
        );
    }

    #[test]
    fn under_its_own_name_nothing_changes() {
        let given = args(&["/usr/bin/mailcat", "list"]);
        assert_eq!(arguments(given.clone()), given);
        let lookalike = args(&["/usr/bin/sendmail-wrapper", "list"]);
        assert_eq!(arguments(lookalike.clone()), lookalike);
    }
}
