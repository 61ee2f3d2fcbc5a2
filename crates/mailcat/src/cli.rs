//! The command line: flags and subcommands, as in DESIGN.md's CLI contract.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Fetch and send mail over POP3, IMAP and SMTP, safely.
#[derive(Debug, Parser)]
#[command(name = "mailcat", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Use this account from the configuration file (default: its default_account).
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["email", "incoming", "outgoing"])]
    pub account: Option<String>,

    /// The configuration file (default: $XDG_CONFIG_HOME/mailcat/config.toml).
    #[arg(long, global = true, value_name = "FILE", value_parser = crate::tilde::path_arg)]
    pub config: Option<std::path::PathBuf>,

    /// The account's address (also the default login).
    #[arg(long, global = true, value_name = "ADDR")]
    pub email: Option<String>,

    /// The login name, when it is not the address.
    #[arg(long, global = true, value_name = "LOGIN")]
    pub user: Option<String>,

    /// The incoming server: imaps://HOST (implicit TLS, port 993), imap://HOST (STARTTLS, 143),
    /// pop3s://HOST (995) or pop3://HOST (STLS, 110); add :PORT for another port.
    #[arg(long, global = true, value_name = "URL")]
    pub incoming: Option<String>,

    /// The outgoing server: smtp://HOST (STARTTLS, port 587) or smtps://HOST (implicit TLS,
    /// 465); add :PORT for another port.
    #[arg(long, global = true, value_name = "URL")]
    pub outgoing: Option<String>,

    /// Also trust the certificate authorities in this PEM file (for servers with their own CA).
    /// A server certificate in it (a self-signed one) is trusted exactly, as with
    /// --tls-fingerprint.
    #[arg(long, global = true, value_name = "PEM", value_parser = crate::tilde::path_arg)]
    pub ca_file: Option<std::path::PathBuf>,

    /// Trust the server certificate with this SHA-256 fingerprint as it is, whatever its
    /// issuer, names and dates: for a self-signed server. Compare it with what `openssl x509
    /// -noout -fingerprint -sha256 -in CERT` prints on the server itself first.
    #[arg(long, global = true, value_name = "SHA256")]
    pub tls_fingerprint: Option<mailcat_transport::Fingerprint>,

    /// The limit in seconds for each network step (connect, handshake, greeting, each reply).
    /// `check` defaults to 10 s, other commands to the library's defaults.
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// A command that prints the password (like msmtp's passwordeval). Default: the
    /// MAILCAT_PASSWORD environment variable, else a prompt on the terminal. Never a flag value.
    #[arg(
        long,
        global = true,
        value_name = "CMD",
        conflicts_with = "oauth2_token_cmd"
    )]
    pub password_cmd: Option<String>,

    /// A command that prints an OAuth2 access token (Outlook.com, Gmail); used instead of a password.
    #[arg(long, global = true, value_name = "CMD")]
    pub oauth2_token_cmd: Option<String>,

    /// The SASL mechanism to log in with, instead of the best one the server offers (like
    /// msmtp's `auth`; `auth` in the config file), in any case. A server that does not offer it
    /// is an error (exit 78): no other mechanism is tried. Without TLS nothing is sent, as ever.
    #[arg(long, global = true, value_name = "MECH", ignore_case = true)]
    pub auth: Option<Auth>,

    /// DANGEROUS: imap://, pop3:// and smtp:// URLs connect without TLS and may send the
    /// password in clear text. Only for test servers on this machine.
    #[arg(long, global = true)]
    pub allow_plaintext: bool,

    /// Print the protocol trace (C:/S: lines) on stderr, with credentials redacted.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Print JSON instead of text (check, autoconfig, mailboxes, list, watch; fetch's summary);
    /// a failure is then also one {"error": {...}} object on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    /// Write the exact bytes each server sends to FILE.imap, FILE.pop3 or FILE.smtp (mode
    /// 0600), to replay them with `mailcat decode PROTO < FILE.PROTO`. A secret the client sent
    /// is replaced by a marker where a server echoes it.
    #[arg(long, global = true, value_name = "FILE", value_parser = crate::tilde::path_arg)]
    pub capture: Option<std::path::PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line as `Parser::try_parse_from` does, except that `decode --help`
    /// lists only decode's own options: the global account and connection options, which do
    /// not apply to it, are hidden there (still accepted, and ignored).
    pub(crate) fn parse_args(
        args: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<Self, clap::Error> {
        let mut command = Self::command();
        let globals: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|arg| arg.is_global_set())
            .map(|arg| arg.clone().hide(true))
            .collect();
        // clap does not propagate a global option to a subcommand that has one of that name.
        command = command.mut_subcommand("decode", |decode| decode.args(globals));
        let matches = command.try_get_matches_from_mut(args)?;
        Self::from_arg_matches(&matches).map_err(|err| err.format(&mut command))
    }
}

/// The subcommands.
// Parsed once per run: `send`'s many sendmail flags making the enum larger costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Test the account settings step by step, like a mail client's "Test Account Settings":
    /// DNS, TCP, TLS or STARTTLS, greeting and capabilities of the incoming and the outgoing
    /// server, each with its time and, on failure, the reason and the fix.
    ///
    /// Exit code 0 only if every step passes; 69 if a server cannot be reached or TLS fails,
    /// 75 if it may work later (timeouts, a server that is busy), 64 for bad arguments.
    Check(CheckArgs),
    /// Find the servers for an e-mail address, and print them with the config-file lines that
    /// use them: mailcat's provider table, the domain's autoconfig file (HTTPS), DNS SRV
    /// records, a provider recognised by the MX hosts, then guessed names that answer.
    ///
    /// Exit code 0 when a server was found, 69 when none, 64 for a malformed address.
    Autoconfig(AutoconfigArgs),
    /// List the mailboxes (IMAP), with their special use (Sent, Trash ...).
    Mailboxes,
    /// List the messages of a mailbox: id, size, date, from, subject, one line a message,
    /// oldest first (with --limit N: the newest N, still oldest first, as `tail -n N`).
    ///
    /// Lines are printed as they arrive, in batches, so the first ones of a huge mailbox show
    /// at once. With --json: one array, written element by element; each message has "id"
    /// (a string: what `mailcat cat` takes, the IMAP UID in decimal or the POP3 UIDL), for
    /// IMAP "uid" (the UID as a number), "size", "date", "from" and "subject".
    List(ListArgs),
    /// Print one message, byte for byte, to stdout.
    Cat(CatArgs),
    /// Download the messages that are new since the last run into a Maildir or an mbox,
    /// durably; with --delete, remove them from the server once they are stored.
    ///
    /// Exit code 0 when all went well; 74 if the store cannot be written (nothing more is
    /// deleted on the server), 75 if another fetch holds the store, 130 on Ctrl-C, 143 on SIGTERM.
    Fetch(FetchArgs),
    /// Send an RFC 5322 message read from stdin, as sendmail does (`mailcat send` can be the
    /// sendmail of git send-email, mutt and cron).
    ///
    /// Recipients are the RCPT arguments (each may be an address list: `"Ann <a@x.org>, b@y.org"`)
    /// and, with -t, the To, Cc and Bcc headers (Resent-To/Cc/Bcc when the message has any), to
    /// which -t adds the arguments (as Postfix and msmtp do). The envelope sender is -f ADDR,
    /// else (also for a bare user name, cron's `-f root`) the account's address. Bcc and
    /// Resent-Bcc headers are always removed before sending; Date and Message-ID are added when
    /// the message lacks them. stdin is read to its end: a line of only "." is data (as with
    /// -i). The body is streamed; a message that is not a file on stdin (a pipe) is spooled
    /// to an unnamed temporary file (mode 0600, deleted at once) so its size can be announced.
    ///
    /// Accepted and ignored for sendmail compatibility: -i, -oX (-oi, -oem, -odi ...), -B TYPE,
    /// -F NAME, -bm, -m, -n, -U, -G, -L TAG, -O OPT=VALUE; -r ADDR is -f ADDR. -N and -R ask for
    /// delivery status notifications (the server must offer DSN), which quote -V ENVID. Under
    /// the name `sendmail` (a symlink to mailcat) mailcat is `mailcat send`, for cron and git
    /// send-email's --smtp-server=/path/to/sendmail; git's --sendmail-cmd="mailcat send" works
    /// as well.
    ///
    /// Silent on success, as sendmail is (-v: each recipient and the server's reply); a refused
    /// recipient is one line on stderr; exit 0 when every recipient was accepted
    /// and the message sent; nothing is sent when any recipient is refused, unless
    /// --allow-partial. Exit codes: 65 for a malformed address or message (header section over
    /// 1 MiB), 67 when --allow-partial sent to only some recipients, 69 for a permanent refusal
    /// or an unreachable server, 75 for a temporary failure (4xx, network), 77 when the login
    /// is refused.
    ///
    /// --save-copy also stores the message in the Sent mailbox over IMAP (one line on stderr:
    /// "saved a copy to Sent"), for providers that do not: Gmail and Outlook.com do it
    /// themselves. A copy that cannot be saved is a warning on stderr, not a failure: the
    /// message was sent, so the exit code is the send's (0), and sending again would duplicate it.
    // -V is sendmail's envelope id here, not the version (`--version` still is).
    #[command(disable_version_flag = true)]
    Send(SendArgs),
    /// Wait for new mail (IMAP IDLE) and print a line for each new message; reconnects after
    /// network loss.
    Watch(WatchArgs),
    /// Sign in with OAuth2 (Outlook.com, Microsoft 365, Gmail, or a provider whose endpoints
    /// the account's [accounts.NAME.oauth2] table gives), see the stored sign-in, or sign out.
    ///
    /// Every command that logs in then uses the stored token, renewed as needed. Tokens are kept
    /// in $XDG_STATE_HOME/mailcat/oauth2/NAME.json (else ~/.local/state/...), mode 0600.
    #[command(subcommand, name = "oauth2")]
    OAuth2(OAuth2Command),
    /// Print the shell completions for bash, zsh, fish, elvish or powershell on stdout.
    ///
    /// bash: `mailcat completions bash > ~/.local/share/bash-completion/completions/mailcat`;
    /// zsh: `mailcat completions zsh > ~/.zfunc/_mailcat` (with ~/.zfunc in $fpath);
    /// fish: `mailcat completions fish > ~/.config/fish/completions/mailcat.fish`.
    Completions(CompletionsArgs),
    /// Print the manual page, mailcat(1), on stdout; with --dir, write it and one page per
    /// command (mailcat-send(1) ...) into a directory.
    ///
    /// `mailcat man --dir ~/.local/share/man/man1`, then `man mailcat` or `man mailcat-send`.
    Man(ManArgs),
    /// Read raw server bytes on stdin (e.g. a --capture file) and print each response as one
    /// JSON line.
    ///
    /// Malformed input ends with a message on stderr naming the byte offset and what was
    /// expected, and exit code 65. Message bodies are not printed, only their lengths, so a
    /// 1 GiB FETCH literal decodes in bounded memory. With --after, each reply is checked
    /// against the client command it answers.
    Decode(DecodeArgs),
}

impl Command {
    /// The command's name, as typed.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Check(_) => "check",
            Self::Autoconfig(_) => "autoconfig",
            Self::Mailboxes => "mailboxes",
            Self::List(_) => "list",
            Self::Cat(_) => "cat",
            Self::Fetch(_) => "fetch",
            Self::Send(_) => "send",
            Self::Watch(_) => "watch",
            Self::OAuth2(OAuth2Command::Login(_)) => "oauth2 login",
            Self::OAuth2(OAuth2Command::Status) => "oauth2 status",
            Self::OAuth2(OAuth2Command::Logout) => "oauth2 logout",
            Self::Completions(_) => "completions",
            Self::Man(_) => "man",
            Self::Decode(_) => "decode",
        }
    }
}

/// Arguments of `mailcat check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Also log in, send a message to the account itself, and wait until it arrives.
    #[arg(long)]
    pub send_test: bool,
}

/// Arguments of `mailcat autoconfig`.
#[derive(Debug, Args)]
pub(crate) struct AutoconfigArgs {
    /// The address (default: --email).
    #[arg(value_name = "ADDR")]
    pub address: Option<String>,
}

/// Arguments of `mailcat list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The mailbox (IMAP; default INBOX).
    #[arg(long, value_name = "M")]
    pub mailbox: Option<String>,
    /// Only the newest N messages (printed oldest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// Arguments of `mailcat cat`.
#[derive(Debug, Args)]
pub(crate) struct CatArgs {
    /// The message: its UID (IMAP) or UIDL (POP3), as `list` shows.
    pub id: String,
    /// The mailbox (IMAP; default INBOX).
    #[arg(long, value_name = "M")]
    pub mailbox: Option<String>,
}

/// Arguments of `mailcat fetch`.
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// Where the messages go: maildir:DIR (created if needed) or mbox:FILE; a leading ~ or
    /// ~USER is that home directory.
    #[arg(long, value_name = "maildir:DIR|mbox:FILE")]
    pub to: String,
    /// The mailbox (IMAP; default INBOX).
    #[arg(long, value_name = "M")]
    pub mailbox: Option<String>,
    /// Delete each message on the server once it is stored and recorded (POP3: committed by
    /// the QUIT at the end, so a failed run deletes nothing).
    #[arg(long)]
    pub delete: bool,
}

/// Arguments of `mailcat send`: its own flags plus the sendmail flags it accepts and ignores.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Also read recipients from the To, Cc and Bcc headers (sendmail -t).
    #[arg(short = 't', long = "read-recipients")]
    pub read_recipients: bool,
    /// The envelope sender (MAIL FROM), where bounces go; default: the account's address.
    /// `-f '<>'` is the null sender. `-r` is the same (sendmail's old name, used by mailx).
    #[arg(short = 'f', short_alias = 'r', long = "from", value_name = "ADDR")]
    pub from: Option<String>,
    /// Ignored: stdin is always read to its end, and a line of only "." is part of the message.
    #[arg(short = 'i')]
    pub ignore_dots: bool,
    /// Ignored sendmail option (-oi, -oem, -odi, -odb ...).
    #[arg(short = 'o', value_name = "OPTION", action = clap::ArgAction::Append, hide = true)]
    pub option: Vec<String>,
    /// Ignored: the body type (8BITMIME is announced when the message needs it).
    #[arg(short = 'B', value_name = "TYPE", hide = true)]
    pub body_type: Option<String>,
    /// Ignored: the sender's full name (cron passes -FCronDaemon).
    #[arg(short = 'F', value_name = "NAME", hide = true)]
    pub full_name: Option<String>,
    /// The sendmail mode: only -bm (deliver a message, the default) is supported.
    #[arg(short = 'b', value_name = "MODE", hide = true)]
    pub mode: Option<String>,
    /// Delivery status notifications: never, or any of success, failure, delay (comma
    /// separated), reported to the envelope sender; the server must offer DSN.
    #[arg(short = 'N', value_name = "WHEN")]
    pub dsn_notify: Option<String>,
    /// What a delivery status notification returns: full (the message) or hdrs (its header).
    #[arg(short = 'R', value_name = "full|hdrs")]
    pub dsn_return: Option<String>,
    /// The envelope id that delivery status notifications quote (sendmail -V; printable ASCII,
    /// at most 100 characters). Sent when the server offers DSN, else left out (-v says so).
    #[arg(short = 'V', value_name = "ENVID")]
    pub envid: Option<String>,
    /// Print the version.
    #[arg(long, action = clap::ArgAction::Version)]
    pub version: (),
    /// Ignored sendmail option with a value (-L TAG, -O OPTION=VALUE).
    #[arg(short = 'L', short_alias = 'O', value_name = "VALUE", action = clap::ArgAction::Append, hide = true)]
    pub ignored_value: Vec<String>,
    /// Ignored sendmail flags (-m, -n, -U, -G).
    #[arg(short = 'm', short_aliases = ['n', 'U', 'G'], action = clap::ArgAction::Count, hide = true)]
    pub ignored_flag: u8,
    /// When to declare SMTPUTF8 (RFC 6531). auto: only when an envelope address is not ASCII;
    /// UTF-8 in the header section (a raw Subject) then travels as 8-bit content, as msmtp and
    /// Postfix's sendmail send it, and is delivered past hops without SMTPUTF8. strict: also for
    /// UTF-8 in the header section (RFC 6532), which such a hop bounces.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub smtputf8: SmtpUtf8,
    /// When the server refuses some recipients, send to the ones it accepts (exit 67) instead
    /// of sending to nobody (the default, exit 69 or 75).
    #[arg(long)]
    pub allow_partial: bool,
    /// After sending, append the message as sent (with Date and Message-ID if mailcat added
    /// them), marked \Seen, to the account's Sent mailbox over IMAP: the one marked \Sent
    /// (SPECIAL-USE), else the one named "Sent", or MAILBOX when given (--save-copy=MAILBOX).
    /// For providers that do not keep a copy themselves: Gmail and Outlook.com save sent mail
    /// on their own (a second copy would be a duplicate). Needs an IMAP incoming server (a POP3
    /// one is refused before sending). A copy that cannot be saved is a warning: the message
    /// was sent, and the exit code stays that of the send.
    #[arg(
        long,
        value_name = "MAILBOX",
        num_args = 0..=1,
        require_equals = true
    )]
    pub save_copy: Option<Option<String>>,
    /// The recipients (each may be a list: "Ann <a@example.org>, b@example.org").
    #[arg(value_name = "RCPT")]
    pub recipients: Vec<String>,
}

/// How to log in (`--auth`, the config file's `auth`): a SASL mechanism, or mailcat's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Auth {
    /// The best the server offers for the password or token (the default).
    Auto,
    /// SCRAM-SHA-256, with a password that never crosses the wire.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// PLAIN, with a password.
    Plain,
    /// SASL LOGIN, with a password (not IMAP's LOGIN command or POP3's USER/PASS).
    Login,
    /// CRAM-MD5, with a password.
    CramMd5,
    /// XOAUTH2, with an OAuth2 token (Microsoft's and Google's form).
    Xoauth2,
    /// OAUTHBEARER, with an OAuth2 token (RFC 7628's form).
    Oauthbearer,
}

impl Auth {
    /// The mechanism asked for; `None` for the automatic choice.
    pub(crate) fn mechanism(self) -> Option<mailcat_session::Mechanism> {
        use mailcat_session::Mechanism as M;
        match self {
            Self::Auto => None,
            Self::ScramSha256 => Some(M::ScramSha256),
            Self::Plain => Some(M::Plain),
            Self::Login => Some(M::Login),
            Self::CramMd5 => Some(M::CramMd5),
            Self::Xoauth2 => Some(M::XOAuth2),
            Self::Oauthbearer => Some(M::OAuthBearer),
        }
    }
}

/// When `send` declares SMTPUTF8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SmtpUtf8 {
    /// Only for an envelope address that is not ASCII (what gets the mail delivered).
    Auto,
    /// Also for UTF-8 in the header section (RFC 6532; hops without SMTPUTF8 bounce it).
    Strict,
}

impl From<SmtpUtf8> for mailcat_session::smtp::SmtpUtf8 {
    fn from(when: SmtpUtf8) -> Self {
        match when {
            SmtpUtf8::Auto => Self::Auto,
            SmtpUtf8::Strict => Self::Strict,
        }
    }
}

/// Arguments of `mailcat watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// The mailbox (default INBOX).
    #[arg(long, value_name = "M")]
    pub mailbox: Option<String>,
}

/// The `mailcat oauth2` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum OAuth2Command {
    /// Sign in and store the tokens. By default in a browser: `$BROWSER URL` when BROWSER is
    /// set, else the desktop's opener; the URL is always printed too. Where no browser can be
    /// opened (no desktop, an SSH session), with a code to enter on any device (--device).
    ///
    /// Exit code 0 when signed in; 77 if the sign-in was declined, 75 if it timed out or the
    /// provider could not be reached, 78 for a configuration the provider refuses.
    Login(OAuth2LoginArgs),
    /// Show the account's sign-in: provider, client ID, scopes, when the access token expires,
    /// whether a refresh token is stored, and where. Never a token. Exit code 77 when there is
    /// no sign-in.
    Status,
    /// Delete the stored tokens, after asking the provider to revoke them where it offers that
    /// (Google does; Microsoft has no revocation endpoint: its tokens are revoked in the
    /// account's security settings).
    Logout,
}

/// Arguments of `mailcat oauth2 login`.
#[derive(Debug, Args)]
pub(crate) struct OAuth2LoginArgs {
    /// Sign in with a code entered on any device (RFC 8628), instead of a browser here.
    #[arg(long, conflicts_with = "browser")]
    pub device: bool,
    /// Sign in in a browser on this machine, even without a desktop (open the printed URL).
    #[arg(long)]
    pub browser: bool,
}

/// Arguments of `mailcat completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Arguments of `mailcat man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write mailcat.1 and a page per command (mailcat-send.1 ...) into this directory (created
    /// if needed) instead of printing mailcat.1.
    #[arg(long, value_name = "DIR", value_parser = crate::tilde::path_arg)]
    pub dir: Option<std::path::PathBuf>,
}

/// Arguments of `mailcat decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The protocol the server bytes speak.
    pub protocol: Protocol,
    /// A client command the bytes answer, e.g. STAT, "LIST", "EHLO me", "A1 NOOP" (IMAP: with
    /// its tag); repeat it for each command, in order. Each reply is then checked against its
    /// command, and one reply more or less is refused. The input may start with the greeting,
    /// which answers no command.
    #[arg(long, value_name = "CMD")]
    pub after: Vec<String>,
}

/// A mail protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Protocol {
    /// IMAP4rev1 / IMAP4rev2 (RFC 3501, RFC 9051).
    Imap,
    /// POP3 (RFC 1939).
    Pop3,
    /// SMTP (RFC 5321).
    Smtp,
}
