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
mod trace;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    if cli.verbose {
        trace::enable();
    }
    let code = match &cli.command {
        cli::Command::Check(args) => cmd::check::run(&cli, args),
        cli::Command::Mailboxes => cmd::mailboxes::run(&cli),
        cli::Command::List(args) => cmd::list::run(&cli, args),
        cli::Command::Cat(args) => cmd::cat::run(&cli, args),
        cli::Command::Fetch(args) => cmd::fetch::run(&cli, args),
        cli::Command::Watch(args) => cmd::watch::run(&cli, args),
        cli::Command::Decode(args) => cmd::decode::run(args),
    };
    ExitCode::from(code)
}
