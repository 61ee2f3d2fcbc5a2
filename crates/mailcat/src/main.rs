//! `mailcat`: fetch and send mail over POP3, IMAP and SMTP.
//!
//! Exit codes follow sysexits.h, as msmtp's do (see [`exit`]).

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
        cli::Command::Check => cmd::check::run(&cli),
        cli::Command::Decode(args) => cmd::decode::run(args),
    };
    ExitCode::from(code)
}
