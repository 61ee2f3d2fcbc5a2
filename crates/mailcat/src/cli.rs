//! The command line: flags and subcommands, as in DESIGN.md's CLI contract.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Fetch and send mail over POP3, IMAP and SMTP, safely.
#[derive(Debug, Parser)]
#[command(name = "mailcat", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read raw server bytes on stdin and print each response as one JSON line.
    ///
    /// Malformed input ends with a message on stderr naming the byte offset and what was
    /// expected, and exit code 65. Message bodies are not printed, only their lengths, so a
    /// 1 GiB FETCH literal decodes in bounded memory.
    Decode(DecodeArgs),
}

/// Arguments of `mailcat decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The protocol the server bytes speak.
    pub protocol: Protocol,
}

/// A mail protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// IMAP4rev1 / IMAP4rev2 (RFC 3501, RFC 9051).
    Imap,
    /// POP3 (RFC 1939).
    Pop3,
    /// SMTP (RFC 5321).
    Smtp,
}
