//! The IMAP session: RFC 3501 (IMAP4rev1) and RFC 9051 (IMAP4rev2), with RFC 2177 IDLE,
//! RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 6154 SPECIAL-USE, RFC 5161 ENABLE, RFC 6855
//! UTF8=ACCEPT, RFC 2971 ID, RFC 4959 SASL-IR and RFC 7888 LITERAL+.
//!
//! ```text
//! connect / dialogue::open ─► ImapSession::new ─► login ─► list, select, uid_search,
//!   fetch_summaries, fetch_message(s) (streamed), store_flags, expunge, move_messages, idle
//!   ─► logout
//! ```
//!
//! - **Every answer is checked against its tag.** A tagged response with another tag is a
//!   protocol error (threat model #41); untagged responses a command did not ask for (EXISTS,
//!   EXPUNGE, FETCH FLAGS, `[ALERT]` ...) are kept in a queue, [`ImapSession::take_unsolicited`],
//!   never taken for answers.
//! - **One login attempt** per session (threat model #22): after a [`ImapSession::login`] that
//!   sent anything, a second one is an error, whatever the first one gave (the login preamble
//!   the three sessions share, in the crate-private `auth` module). No password or token leaves without TLS unless the
//!   caller opted in (threat model #20); `LOGIN` is used only when no SASL mechanism fits and the
//!   server does not say `LOGINDISABLED`.
//! - **Bodies stream.** A whole message goes to a sink as its bytes arrive: literals larger than
//!   the codec's streaming threshold (64 KiB) come as chunks sliced out of the read buffer
//!   without a copy, smaller ones inside their FETCH response; memory stays bounded.
//! - **BYE ends the session** ([`Error::Closed`]); later calls fail at once without sending.
//! - **IDLE** is refreshed (DONE, IDLE again) every [`DEFAULT_IDLE_REFRESH`] (configurable); the
//!   server's answer to DONE must come within the read timeout, which notices a dead connection.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use mailcat_codec::imap::command::{self as cmd, Command, ListPattern};
use mailcat_codec::imap::{Response, StatusKind, Tag};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Protocol, Timeouts, TlsSettings};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

// The codec's IMAP types this module's signatures use, so that an app needs no other crate.
pub use mailcat_codec::imap::command::{Date, DateTime, Mailbox, SearchKey, StoreMode};
pub use mailcat_codec::imap::{
    Address as EnvelopeAddress, Capability, Flag, ImapEnvelope, Keyword, NameAttribute,
    SequenceSet, UidSet,
};
use tokio::net::TcpStream;

use crate::auth::{self, LoginMethod, Offer, SaslChannel, SaslReply};
use crate::core::imap::{
    copy_uid, expect_ok, temporary, Done, ImapCore, ImapEvent, Kind, SearchSink,
};
use crate::driver::Driver;
use crate::open::{self as dialogue, MailConnection, ServerCapabilities};
use crate::{AlertSink, Credential, Error};

/// How often IDLE is ended and started again when nothing happens: 25 minutes.
///
/// RFC 2177 §3 asks clients to re-issue IDLE at least every 29 minutes, because servers may log
/// out a client silent for 30 (RFC 3501 §5.4). 25 leaves four minutes of margin for clock drift
/// and a slow DONE round trip, the margin mainstream clients keep too. Networks with NAT
/// mappings that expire sooner need a shorter interval: [`ImapSession::set_idle_refresh`].
pub const DEFAULT_IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);

/// How many whole-message `UID FETCH` commands [`ImapSession::fetch_messages`] keeps in flight
/// by default (each asks for up to 1,000 messages by UID ranges).
pub const DEFAULT_FETCH_WINDOW: usize = 8;

/// An untagged response that no command asked for, kept for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsolicited {
    /// `* n EXISTS`: the mailbox now holds `n` messages.
    Exists(u32),
    /// `* n RECENT`.
    Recent(u32),
    /// `* n EXPUNGE`: message `n` is gone; later sequence numbers moved down by one.
    Expunge(u32),
    /// `* VANISHED` (RFC 7162): these UIDs are gone.
    Vanished {
        /// `VANISHED (EARLIER)`.
        earlier: bool,
        /// The UIDs, as ranges.
        uids: SequenceSet,
    },
    /// `* n FETCH (...)` sent unasked: mostly a flag change.
    Fetch {
        /// The sequence number.
        seq: u32,
        /// The UID, if the server sent it.
        uid: Option<u32>,
        /// The flags, if sent.
        flags: Option<Vec<Flag<'static>>>,
    },
    /// `* FLAGS (...)`: the flags the mailbox knows changed.
    Flags(Vec<Flag<'static>>),
    /// `[ALERT]`: text the user must see (escaped).
    Alert(String),
    /// `* BYE`: the server is closing the connection (escaped text).
    Bye(String),
    /// Any other untagged response.
    Other(Response<'static>),
}

/// A mailbox as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The decoded name (modified UTF-7 or UTF-8), for display and for [`Mailbox::new`].
    pub name: String,
    /// The name as the server sent it.
    pub raw: Vec<u8>,
    /// The hierarchy delimiter, if any.
    pub delimiter: Option<char>,
    /// The attributes (`\HasNoChildren`, `\Noselect`, special-use ...).
    pub attributes: Vec<NameAttribute<'static>>,
}

impl MailboxInfo {
    /// The special-use attribute (RFC 6154: `\Sent`, `\Trash`, `\Archive` ...), if any.
    pub fn special_use(&self) -> Option<&NameAttribute<'static>> {
        self.attributes.iter().find(|a| {
            matches!(
                a,
                NameAttribute::All
                    | NameAttribute::Archive
                    | NameAttribute::Drafts
                    | NameAttribute::Flagged
                    | NameAttribute::Junk
                    | NameAttribute::Sent
                    | NameAttribute::Trash
                    | NameAttribute::Important
            )
        })
    }

    /// False for `\Noselect` and `\NonExistent` mailboxes.
    pub fn is_selectable(&self) -> bool {
        !self
            .attributes
            .iter()
            .any(|a| matches!(a, NameAttribute::NoSelect | NameAttribute::NonExistent))
    }

    /// The name for commands ([`ImapSession::select`] and friends).
    pub fn mailbox(&self) -> Result<Mailbox, Error> {
        Ok(Mailbox::new(self.name.clone())?)
    }
}

/// What SELECT or EXAMINE reported about the mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectedMailbox {
    /// The number of messages.
    pub exists: u32,
    /// `RECENT` (IMAP4rev1 only).
    pub recent: Option<u32>,
    /// `UIDVALIDITY`: UIDs remembered under another value are void. `None` when the server
    /// sent none, or 0 (not a valid value): UIDs are then good for this session only.
    pub uid_validity: Option<u32>,
    /// `UIDNEXT`: the UID the next message will get (at least).
    pub uid_next: Option<u32>,
    /// `UNSEEN`: the sequence number of the first unseen message (IMAP4rev1).
    pub first_unseen: Option<u32>,
    /// The flags the mailbox knows.
    pub flags: Vec<Flag<'static>>,
    /// The flags the client may change for good (`\*`: new keywords allowed).
    pub permanent_flags: Vec<Flag<'static>>,
    /// `HIGHESTMODSEQ` (RFC 7162), if the server has CONDSTORE.
    pub highest_modseq: Option<u64>,
    /// True for `[READ-ONLY]` (and EXAMINE).
    pub read_only: bool,
}

/// What [`ImapSession::fetch_summaries`] asks for besides UID, flags, size and date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryRequest {
    /// Fetch the ENVELOPE (date, subject, from, to ... parsed by the server).
    pub envelope: bool,
    /// Fetch these header fields raw (`BODY.PEEK[HEADER.FIELDS (...)]`); none when empty.
    pub header_fields: Vec<String>,
}

/// One message's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The UID.
    pub uid: u32,
    /// The sequence number when it was fetched.
    pub seq: u32,
    /// The flags.
    pub flags: Vec<Flag<'static>>,
    /// `RFC822.SIZE`.
    pub size: Option<u64>,
    /// `INTERNALDATE`, as sent (`17-Jul-1996 02:44:25 -0700`).
    pub internal_date: Option<String>,
    /// The envelope, if asked for.
    pub envelope: Option<ImapEnvelope<'static>>,
    /// The requested header fields, raw (CRLF line endings, ending in an empty line).
    pub headers: Option<Vec<u8>>,
}

/// `COPYUID` (RFC 4315): where moved or copied messages went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyUid {
    /// The target mailbox's UIDVALIDITY.
    pub uid_validity: u32,
    /// The source UIDs.
    pub source: SequenceSet,
    /// Their UIDs in the target, in the same order.
    pub target: SequenceSet,
}

/// `APPENDUID` (RFC 4315): where an appended message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendUid {
    /// The target mailbox's UIDVALIDITY.
    pub uid_validity: u32,
    /// The message's UID there.
    pub uid: u32,
}

/// What [`ImapSession::status`] tells of a mailbox without opening it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailboxCounts {
    /// `MESSAGES`: how many messages it holds.
    pub messages: u32,
    /// `UNSEEN`: how many of them are not `\Seen`.
    pub unseen: u32,
    /// `UIDNEXT`: the UID the next message will get (at least), if the server said.
    pub uid_next: Option<u32>,
    /// `UIDVALIDITY`, if the server said (0, not a valid value, is none).
    pub uid_validity: Option<u32>,
}

/// An authenticated (or about to be) IMAP connection.
#[derive(Debug)]
pub struct ImapSession<S> {
    /// Every protocol decision: tags, routing, limits, poisoning.
    core: ImapCore,
    /// The connection, and the loop that feeds the core.
    driver: Driver<S>,
    login_attempted: bool,
    /// The server greeted with PREAUTH: the connection is authenticated already.
    preauthenticated: bool,
    idle_refresh: Duration,
    /// Refresh IDLE after this long without a byte from the server, if set.
    idle_quiet_refresh: Option<Duration>,
    /// The greeting's `[ALERT]`, until an alert sink is set to show it.
    greeting_alert: Option<String>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ImapSession<S> {
    /// Takes over a connection after greeting and capabilities (and STARTTLS), as
    /// [`dialogue::open`] or a test leaves it.
    pub fn new(connection: MailConnection<S>, capabilities: ServerCapabilities) -> Self {
        let (conn, tags) = connection.into_parts();
        let core = ImapCore::new(
            conn.endpoint().clone(),
            tags.unwrap_or_default(),
            capabilities.imap().map(<[_]>::to_vec).unwrap_or_default(),
        );
        Self {
            core,
            driver: Driver::new(conn),
            login_attempted: false,
            preauthenticated: false,
            idle_refresh: DEFAULT_IDLE_REFRESH,
            idle_quiet_refresh: None,
            greeting_alert: None,
        }
    }

    /// The server's current capabilities (refreshed after login), as the codec holds them
    /// (`is("IDLE")`, `auth_mechanism()`).
    pub fn capabilities(&self) -> &[Capability<'static>] {
        self.core.capabilities()
    }

    /// True if the server announced `name` (case-insensitive; `AUTH=PLAIN` works too).
    pub fn has_capability(&self, name: &str) -> bool {
        self.core.has_capability(name)
    }

    /// The server.
    pub fn endpoint(&self) -> &Endpoint {
        self.driver.connection().endpoint()
    }

    /// True once the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.driver.connection().is_tls()
    }

    /// The untagged responses no command asked for, since the last call, oldest first.
    pub fn take_unsolicited(&mut self) -> Vec<Unsolicited> {
        self.core.take_unsolicited()
    }

    /// Sets how often [`ImapSession::idle`] re-issues IDLE (default [`DEFAULT_IDLE_REFRESH`]).
    pub fn set_idle_refresh(&mut self, every: Duration) {
        self.idle_refresh = every.max(Duration::from_secs(1));
    }

    /// Shows every `[ALERT]` (tagged or untagged, during any command) through `sink` as it
    /// arrives; it is also kept with the unsolicited responses as before.
    /// An alert the greeting carried (see [`set_greeting_alert`](Self::set_greeting_alert)) is
    /// shown at once.
    pub fn set_alert_sink(&mut self, sink: Option<AlertSink>) {
        if let (Some(sink), Some(text)) = (&sink, self.greeting_alert.take()) {
            sink.alert(&self.endpoint().host, &text);
        }
        self.core.set_alert_sink(sink);
    }

    /// Keeps the `[ALERT]` of the greeting (`Greeting::alert`: only one received over TLS) for
    /// the alert sink, which is set after the connection is open.
    pub fn set_greeting_alert(&mut self, text: Option<String>) {
        match (self.core.alert_sink(), text) {
            (Some(sink), Some(text)) => sink.alert(&self.endpoint().host, &text),
            (_, text) => self.greeting_alert = text,
        }
    }

    /// Makes [`ImapSession::idle`] also re-issue IDLE when the server has sent nothing at all
    /// for `quiet` (off by default). Some servers (GNU Mailutils imap4d) report new mail only
    /// when IDLE ends; servers that push news, or send keep-alives (Dovecot's `* OK Still
    /// here` every 2 minutes), are not affected as long as they send something within `quiet`.
    pub fn set_idle_quiet_refresh(&mut self, quiet: Option<Duration>) {
        self.idle_quiet_refresh = quiet.map(|q| q.max(Duration::from_secs(1)));
    }

    /// Sets how many whole-message `UID FETCH` commands [`ImapSession::fetch_messages`] keeps
    /// in flight (default [`DEFAULT_FETCH_WINDOW`]; 1 means one at a time). Each command asks
    /// for up to 1,000 messages, so this matters only for calls with more.
    pub fn set_fetch_window(&mut self, window: usize) {
        self.core.set_fetch_window(window);
    }

    // ----- login -----

    /// Logs in with `credential`: the best SASL mechanism offered (SASL-IR when the server has
    /// it), or the `LOGIN` command when none fits a password and `LOGINDISABLED` is absent;
    /// only the mechanism the credential names, if it names one
    /// ([`crate::Credential::with_mechanism`]).
    /// Exactly one attempt: once a call has sent anything, a second one errs without sending
    /// anything; a refusal that sent nothing (plaintext refused, no usable mechanism) leaves
    /// the attempt for a later call.
    ///
    /// Afterwards: the capabilities are asked again (or taken from the `[CAPABILITY]` code of
    /// the OK), `ID` is sent when the server has it, and `UTF8=ACCEPT` is enabled when offered.
    /// On a connection [`connect`] found greeted with `PREAUTH`, nothing is sent: the server
    /// has authenticated it already.
    ///
    /// An `OK` before the SASL exchange is complete (before the credentials were sent, or
    /// without SCRAM's verified server-final message) is an [`Error::Protocol`], not a login;
    /// after any protocol error here the session refuses every further command.
    ///
    /// Dropping the call in the middle of an AUTHENTICATE exchange (or while a literal waits
    /// for the server's `+`) leaves the session poisoned: the next command fails with
    /// [`Error::Protocol`] saying so.
    pub async fn login(
        &mut self,
        credential: &Credential,
        plaintext: crate::Plaintext,
    ) -> Result<(), Error> {
        self.core.usable()?;
        if self.preauthenticated {
            // RFC 3501 §7.1.4: no LOGIN or AUTHENTICATE in the authenticated state; the
            // credential is not sent. (`dialogue::open` refuses PREAUTH before STARTTLS.)
            return Ok(());
        }
        auth::login(self, credential, plaintext).await?;
        self.after_login().await
    }

    /// ServerCapabilities, ID and ENABLE after a successful login.
    async fn after_login(&mut self) -> Result<(), Error> {
        if !self.core.capabilities_fresh() {
            let done = self
                .exchange(&Command::Capability, Kind::Capability)
                .await?;
            let done = self.ok("CAPABILITY", done)?;
            self.core
                .set_capabilities(crate::core::imap::capabilities(done.kept));
        }
        if self.has_capability("ID") {
            let id = Command::Id(Some(vec![
                ("name".to_owned(), Some("mailcat".to_owned())),
                (
                    "version".to_owned(),
                    Some(env!("CARGO_PKG_VERSION").to_owned()),
                ),
            ]));
            // Harmless either way: the answer is informational and a NO changes nothing, so it
            // is not waited for; the next command goes out behind it.
            self.start_unawaited(&id).await?;
        }
        if self.has_capability("ENABLE") && self.has_capability("UTF8=ACCEPT") {
            let done = self
                .exchange(&Command::Enable(vec!["UTF8=ACCEPT".into()]), Kind::Enable)
                .await?;
            self.core
                .set_utf8_accept(crate::core::imap::utf8_enabled(&done));
        }
        Ok(())
    }
}

/// IMAP's part of the login preamble (`auth::login`).
impl<S: AsyncRead + AsyncWrite + Unpin> auth::LoginSession for ImapSession<S> {
    fn login_endpoint(&self) -> &Endpoint {
        self.endpoint()
    }

    fn login_usable(&self) -> Result<(), Error> {
        self.core.usable()
    }

    fn login_offer(&self) -> Offer {
        Offer {
            sasl: self
                .capabilities()
                .iter()
                .filter_map(|c| c.auth_mechanism())
                .map(|mechanism| String::from_utf8_lossy(mechanism).into_owned())
                .collect(),
            plain_command: !self.has_capability("LOGINDISABLED"),
            tls: self.is_tls(),
        }
    }

    fn attempted(&self) -> bool {
        self.login_attempted
    }

    fn spend_attempt(&mut self) {
        self.login_attempted = true;
    }

    fn written(&self) -> u64 {
        self.driver.connection().written()
    }

    async fn before_login(&mut self) -> Result<(), Error> {
        // A BYE that came while the secret was fetched is read now, and said, rather than found
        // as a broken pipe when the credentials are sent.
        self.settle().await
    }

    async fn log_in(
        &mut self,
        method: LoginMethod,
        credential: &Credential,
        secret: crate::Secret,
    ) -> Result<(), Error> {
        let endpoint = self.endpoint().clone();
        // Only capabilities sent with or after the login's answer count as post-login ones.
        self.core.forget_fresh_capabilities();
        match method {
            LoginMethod::Sasl(mechanism) => {
                let initial_response = self.has_capability("SASL-IR");
                let mut channel = ImapSasl {
                    session: self,
                    tag: None,
                };
                auth::authenticate(
                    &mut channel,
                    mechanism,
                    credential.login(),
                    &secret,
                    initial_response,
                    &endpoint,
                )
                .await
            }
            LoginMethod::PlainCommand => {
                let command = Command::Login {
                    username: credential.login().to_owned(),
                    password: secret,
                };
                let tagged = self.exchange(&command, Kind::Plain).await?.tagged;
                match tagged.status {
                    StatusKind::Ok => Ok(()),
                    _ if temporary(tagged.code.as_ref()) => Err(Error::AuthenticationUnavailable {
                        host: endpoint.host,
                        login: credential.login().to_owned(),
                        reply: tagged.into(),
                    }),
                    _ => Err(auth::refusal(
                        &endpoint,
                        credential.login(),
                        "LOGIN command",
                        credential.kind(),
                        tagged,
                    )),
                }
            }
        }
    }
}

// ----- mailbox operations -----

impl<S: AsyncRead + AsyncWrite + Unpin> ImapSession<S> {
    /// `NOOP`: lets the server report news (kept in [`ImapSession::take_unsolicited`]) and
    /// shows the connection is alive.
    pub async fn noop(&mut self) -> Result<(), Error> {
        let done = self.exchange(&Command::Noop, Kind::Plain).await?;
        self.ok("NOOP", done).map(drop)
    }

    /// Every mailbox (`LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has
    /// SPECIAL-USE and LIST-EXTENDED), names decoded from modified UTF-7 or UTF-8.
    pub async fn list(&mut self) -> Result<Vec<MailboxInfo>, Error> {
        let command = Command::List {
            reference: ListPattern::new("")?,
            pattern: ListPattern::new("*")?,
            special_use: self.has_capability("SPECIAL-USE") && self.has_capability("LIST-EXTENDED"),
        };
        let done = self.exchange(&command, Kind::List).await?;
        let done = self.ok("LIST", done)?;
        Ok(crate::core::imap::mailboxes(done.kept))
    }

    /// `SELECT`: opens `mailbox` read-write (the server may still say `[READ-ONLY]`).
    pub async fn select(&mut self, mailbox: &Mailbox) -> Result<SelectedMailbox, Error> {
        self.open_mailbox(
            Command::Select {
                mailbox: mailbox.clone(),
                params: Default::default(),
            },
            "SELECT",
        )
        .await
    }

    /// `EXAMINE`: opens `mailbox` read-only.
    pub async fn examine(&mut self, mailbox: &Mailbox) -> Result<SelectedMailbox, Error> {
        let mut state = self
            .open_mailbox(
                Command::Examine {
                    mailbox: mailbox.clone(),
                    params: Default::default(),
                },
                "EXAMINE",
            )
            .await?;
        state.read_only = true;
        Ok(state)
    }

    async fn open_mailbox(
        &mut self,
        command: Command,
        name: &str,
    ) -> Result<SelectedMailbox, Error> {
        let done = self.exchange(&command, Kind::Open).await?;
        let done = self.ok(name, done)?;
        Ok(crate::core::imap::mailbox_state(done.kept, &done.tagged))
    }

    /// `UID SEARCH key`: the matching UIDs, in the order the server sent them.
    pub async fn uid_search(&mut self, key: &SearchKey) -> Result<Vec<u32>, Error> {
        let done = self
            .exchange(&Command::UidSearch(key.clone()), Kind::Search)
            .await?;
        let done = self.ok("UID SEARCH", done)?;
        Ok(crate::core::imap::search_numbers(done.kept))
    }

    /// `UID FETCH set (UID)`: the UIDs of the messages in `set`, in the order sent.
    ///
    /// `n:*` always names the highest message, even when its UID is below n (RFC 3501 §6.4.8):
    /// the caller filters. `*` alone gives the highest UID in use. Used where `UID SEARCH UID
    /// n:*` is not trusted: GNU Mailutils answers that empty although the message exists.
    pub async fn uid_fetch_uids(&mut self, set: &SequenceSet) -> Result<Vec<u32>, Error> {
        let command = Command::UidFetch {
            set: set.clone(),
            items: vec![cmd::FetchAttribute::Uid],
            changed_since: None,
        };
        let done = self.exchange(&command, Kind::Uids).await?;
        let done = self.ok("UID FETCH", done)?;
        Ok(crate::core::imap::fetched_uids(done.kept))
    }

    /// `UID SEARCH key` as a [`UidSet`], for mailboxes of any size: with ESEARCH (RFC 4731, or
    /// IMAP4rev2) `UID SEARCH RETURN (ALL) key`, whose answer gives the UIDs as ranges; else
    /// plain `UID SEARCH`, whose answer is one line with every UID.
    ///
    /// `expected` is how many messages the answer may name (the mailbox's EXISTS). Either
    /// answer is one line, as long as the mailbox is big and its UIDs scattered (~7 MB for a
    /// million messages with every other UID deleted): a line longer than the codec's line
    /// limit is read in pieces, merged into the set as they come, never held whole. The answer
    /// may name up to [`search_count_limit`] messages; past that it is refused, so a server
    /// cannot make the client hold or read much more than the mailbox it announced.
    pub async fn uid_search_set(
        &mut self,
        key: &SearchKey,
        expected: u32,
    ) -> Result<UidSet, Error> {
        let esearch = self.has_capability("ESEARCH") || self.has_capability("IMAP4rev2");
        let command = if esearch {
            Command::UidSearchReturnAll(key.clone())
        } else {
            Command::UidSearch(key.clone())
        };
        let done = self
            .exchange(&command, Kind::SearchSet(SearchSink::new(expected)))
            .await?;
        let done = self.ok("UID SEARCH", done)?;
        let Kind::SearchSet(sink) = done.kind else {
            return Err(self.core.protocol("a search answer without its set"));
        };
        sink.finish(done.kept)
            .map_err(|detail| self.core.protocol(detail))
    }

    /// Summaries of many messages in one `UID FETCH`: UID, flags, `RFC822.SIZE`,
    /// `INTERNALDATE`, and what `request` adds (ENVELOPE, header fields). Messages that no
    /// longer exist are simply missing from the result.
    pub async fn fetch_summaries(
        &mut self,
        uids: &SequenceSet,
        request: &SummaryRequest,
    ) -> Result<Vec<Summary>, Error> {
        use cmd::FetchAttribute as I;
        let mut items = vec![I::Uid, I::Flags, I::Rfc822Size, I::InternalDate];
        if request.envelope {
            items.push(I::Envelope);
        }
        if !request.header_fields.is_empty() {
            items.push(I::BodyPeek {
                section: cmd::Section::header_fields(request.header_fields.iter().cloned()),
                partial: None,
            });
        }
        let command = Command::UidFetch {
            set: uids.clone(),
            items,
            changed_since: None,
        };
        let wanted = UidSet::from_sequence_set(uids, u32::MAX);
        let done = self.exchange(&command, Kind::Summaries(wanted)).await?;
        let done = self.ok("UID FETCH", done)?;
        Ok(crate::core::imap::summaries(done.kept))
    }

    /// Streams the whole message with `uid` (`BODY.PEEK[]`: `\Seen` is not set) to `sink`, byte
    /// for byte. Returns its length, or `None` if the mailbox has no such UID.
    ///
    /// Dropping the call: as [`ImapSession::fetch_messages`].
    pub async fn fetch_message<W: AsyncWrite + Unpin>(
        &mut self,
        uid: u32,
        sink: &mut W,
    ) -> Result<Option<u64>, Error> {
        let mut one = [(uid, sink)];
        let mut lens = self.fetch_messages(&mut one).await?;
        Ok(lens.pop().flatten())
    }

    /// Streams several whole messages, each to its own sink. The UIDs asked for go out as
    /// ranges, `UID FETCH 11:13,20 (UID BODY.PEEK[])`, one command for up to 1,000 messages
    /// (and 500 ranges), with up to the fetch window ([`ImapSession::set_fetch_window`]) of such
    /// commands in flight. Returns each message's length (`None`: no such UID: the server
    /// sends nothing for it). The UIDs must be distinct.
    ///
    /// A server answers a range in any order it likes, and may run pipelined FETCH commands
    /// in parallel (Dovecot does), so each body is routed by its message, never by its
    /// position: inline
    /// bodies by the UID in their response, streamed ones (which start before the UID may be
    /// known) by the UID when the response gives it before the body (`* 5 FETCH (UID 12 BODY[]
    /// {…}`, as Dovecot, Gmail and Cyrus answer), else by their sequence number, from one
    /// `UID FETCH set (UID)` pipelined ahead of the body fetches (RFC 3501 §7.4.1: no EXPUNGE
    /// can renumber messages while FETCH commands are in progress). It is asked only until the
    /// server has shown that its UIDs come first. A server that runs the commands side by side
    /// may send a body before its sequence number, with its UID behind it: that body is
    /// dropped and its message fetched again once the map is complete. When a
    /// sink fails, the remaining answers are still read (the session stays usable) and the
    /// first error is returned.
    ///
    /// Dropping the call (or an error return) leaves the fetches still in flight to the next
    /// command, which reads their answers and discards them (news is kept); the sinks may
    /// then hold part of a message.
    pub async fn fetch_messages<W: AsyncWrite + Unpin>(
        &mut self,
        requests: &mut [(u32, W)],
    ) -> Result<Vec<Option<u64>>, Error> {
        self.settle().await?;
        let mut index_of: HashMap<u32, usize> = HashMap::new();
        for (i, (uid, _)) in requests.iter().enumerate() {
            if index_of.insert(*uid, i).is_some() {
                // The caller's mistake, found before anything is sent.
                return Err(Error::Misuse {
                    host: self.endpoint().host.clone(),
                    protocol: Protocol::Imap,
                    what: format!("UID {uid} is asked for twice: ask for each message once"),
                });
            }
        }
        let mut lens = vec![None; requests.len()];
        let mut sink_error = None;
        let all: Vec<usize> = (0..requests.len()).collect();
        let again = self
            .fetch_round(requests, &all, Map::Pipelined, &mut lens, &mut sink_error)
            .await?;
        if !again.is_empty() {
            // The server sent bodies before their sequence numbers, UIDs behind: those messages
            // again, with the map learned first this time (nothing is dropped then).
            self.fetch_round(requests, &again, Map::First, &mut lens, &mut sink_error)
                .await?;
        }
        match sink_error {
            Some(e) => Err(Error::Io(e)),
            None => Ok(lens),
        }
    }

    /// One round of [`ImapSession::fetch_messages`] for the requests `which`: their lengths go
    /// into `lens`, the first sink error into `sink_error`. Returns the requests whose bodies
    /// could not be routed (only with [`Map::Pipelined`]), to be fetched again.
    async fn fetch_round<W: AsyncWrite + Unpin>(
        &mut self,
        requests: &mut [(u32, W)],
        which: &[usize],
        map: Map,
        lens: &mut [Option<u64>],
        sink_error: &mut Option<std::io::Error>,
    ) -> Result<Vec<usize>, Error> {
        let uids: Vec<u32> = which.iter().map(|&i| requests[i].0).collect();
        // Sequence number → UID, for routing streamed bodies when several are in flight.
        let needs_map = which.len() > 1 && !self.core.uid_leads();
        let mut uid_of_seq = HashMap::new();
        if needs_map && map == Map::First {
            let (command, kind) = crate::core::imap::seq_map(&uids)?;
            let done = self.exchange(&command, kind).await?;
            let done = self.ok("UID FETCH", done)?;
            if let Kind::SeqMap(_, map) = done.kind {
                uid_of_seq = map;
            }
        }
        if needs_map && map == Map::Pipelined {
            // Queued first, so it goes out ahead of the body fetches.
            self.core.start_seq_map(&uids)?;
        }
        self.core.begin_bodies(uids, uid_of_seq);
        while self.core.send_bodies()? {
            let (event, bytes) = self.driver.next(&mut self.core).await?;
            let (index, data) = match event {
                ImapEvent::BodyChunk { index, range } => (index, bytes.slice(range)),
                ImapEvent::InlineBody { index, bytes } => (index, Bytes::from(bytes)),
                ImapEvent::Done(done) => {
                    match &done.kind {
                        Kind::Bodies(covered) => {
                            let covered = covered.clone();
                            self.ok("UID FETCH", done)?;
                            for index in covered {
                                if sink_error.is_none() {
                                    if let Err(e) = requests[which[index]].1.flush().await {
                                        *sink_error = Some(e);
                                    }
                                }
                            }
                        }
                        Kind::SeqMap(..) => {
                            self.ok("UID FETCH", done)?;
                        }
                        _ => {}
                    }
                    continue;
                }
                _ => continue,
            };
            if sink_error.is_none() {
                if let Err(e) = requests[which[index]].1.write_all(&data).await {
                    *sink_error = Some(e);
                }
            }
        }
        let (round, again) = self.core.end_bodies();
        for (position, len) in round.into_iter().enumerate() {
            lens[which[position]] = len;
        }
        Ok(again.into_iter().map(|position| which[position]).collect())
    }

    /// `UID STORE uids ±FLAGS.SILENT (flags)`: adds, removes or replaces flags.
    pub async fn store_flags(
        &mut self,
        uids: &SequenceSet,
        mode: StoreMode,
        flags: &[Flag<'static>],
    ) -> Result<(), Error> {
        let command = Command::UidStore {
            set: uids.clone(),
            mode,
            silent: true,
            flags: flags.to_vec(),
        };
        let done = self.exchange(&command, Kind::Plain).await?;
        self.ok("UID STORE", done).map(drop)
    }

    /// Removes the messages with these UIDs that are marked `\Deleted`: `UID EXPUNGE` with
    /// UIDPLUS; without it `EXPUNGE`, which removes **every** `\Deleted` message of the mailbox
    /// (RFC 3501 has no narrower command). The `* n EXPUNGE` responses are kept as unsolicited:
    /// they renumber the messages.
    pub async fn expunge(&mut self, uids: &SequenceSet) -> Result<(), Error> {
        let (command, name) = if self.has_capability("UIDPLUS") {
            (Command::UidExpunge(uids.clone()), "UID EXPUNGE")
        } else {
            (Command::Expunge, "EXPUNGE")
        };
        let done = self.exchange(&command, Kind::Plain).await?;
        self.ok(name, done).map(drop)
    }

    /// Moves messages to `target`: `UID MOVE` with MOVE; without it `UID COPY`, `UID STORE
    /// +FLAGS.SILENT (\Deleted)` and [`ImapSession::expunge`]. Returns the `COPYUID` if the
    /// server sent one (UIDPLUS).
    pub async fn move_messages(
        &mut self,
        uids: &SequenceSet,
        target: &Mailbox,
    ) -> Result<Option<CopyUid>, Error> {
        if self.has_capability("MOVE") {
            let command = Command::UidMove {
                set: uids.clone(),
                mailbox: target.clone(),
            };
            let done = self.exchange(&command, Kind::Move).await?;
            let done = self.ok("UID MOVE", done)?;
            return Ok(crate::core::imap::moved(done));
        }
        let command = Command::UidCopy {
            set: uids.clone(),
            mailbox: target.clone(),
        };
        let done = self.exchange(&command, Kind::Plain).await?;
        let done = self.ok("UID COPY", done)?;
        self.store_flags(uids, StoreMode::Add, &[Flag::Deleted])
            .await?;
        self.expunge(uids).await?;
        Ok(copy_uid(done.tagged.code))
    }

    /// `UID COPY`: copies messages to `target`. Returns the `COPYUID` if the server sent one
    /// (UIDPLUS). A target that does not exist is refused (the server may say `[TRYCREATE]`:
    /// [`ImapSession::create`] it first).
    pub async fn copy_messages(
        &mut self,
        uids: &SequenceSet,
        target: &Mailbox,
    ) -> Result<Option<CopyUid>, Error> {
        let command = Command::UidCopy {
            set: uids.clone(),
            mailbox: target.clone(),
        };
        let done = self.exchange(&command, Kind::Plain).await?;
        let done = self.ok("UID COPY", done)?;
        Ok(copy_uid(done.tagged.code))
    }

    /// `APPEND`: stores `message` (RFC 5322, CRLF line endings, no NUL) in `mailbox`, with
    /// `flags` set (none when empty) and `internal_date` as its INTERNALDATE (the server's
    /// clock when `None`). The message goes as a literal the server has to accept first (`+`),
    /// or at once when it announced LITERAL+ (LITERAL- for up to 4 KiB). Returns where the
    /// message went when the server says (UIDPLUS's `APPENDUID`).
    ///
    /// Dropping the call while the server has not yet accepted the literal leaves the session
    /// poisoned (the server waits for bytes that will not come); after that, the next command
    /// reads the late answer and discards it.
    pub async fn append(
        &mut self,
        mailbox: &Mailbox,
        message: &[u8],
        flags: &[Flag<'static>],
        internal_date: Option<&DateTime>,
    ) -> Result<Option<AppendUid>, Error> {
        let command = crate::core::imap::append(mailbox, message, flags, internal_date);
        let done = self.exchange(&command, Kind::Plain).await?;
        let done = self.ok("APPEND", done)?;
        Ok(crate::core::imap::appended(&done.tagged))
    }

    /// `CREATE`: makes a new mailbox.
    pub async fn create(&mut self, mailbox: &Mailbox) -> Result<(), Error> {
        let done = self
            .exchange(&Command::Create(mailbox.clone()), Kind::Plain)
            .await?;
        self.ok("CREATE", done).map(drop)
    }

    /// `DELETE`: removes a mailbox and its messages.
    pub async fn delete(&mut self, mailbox: &Mailbox) -> Result<(), Error> {
        let done = self
            .exchange(&Command::Delete(mailbox.clone()), Kind::Plain)
            .await?;
        self.ok("DELETE", done).map(drop)
    }

    /// `RENAME`: gives mailbox `from` the name `to` (renaming INBOX moves its messages to a
    /// new mailbox and leaves INBOX empty, RFC 3501 §6.3.5).
    pub async fn rename(&mut self, from: &Mailbox, to: &Mailbox) -> Result<(), Error> {
        let command = Command::Rename {
            from: from.clone(),
            to: to.clone(),
        };
        let done = self.exchange(&command, Kind::Plain).await?;
        self.ok("RENAME", done).map(drop)
    }

    /// `STATUS mailbox (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)`: counts of a mailbox, without
    /// opening it (RFC 3501 advises against asking it of the mailbox selected: SELECT tells).
    pub async fn status(&mut self, mailbox: &Mailbox) -> Result<MailboxCounts, Error> {
        let command = Command::Status {
            mailbox: mailbox.clone(),
            items: crate::core::imap::COUNTS.to_vec(),
        };
        let done = self.exchange(&command, Kind::Status).await?;
        let done = self.ok("STATUS", done)?;
        crate::core::imap::mailbox_counts(done.kept, mailbox)
            .map_err(|detail| self.core.protocol(detail))
    }

    /// The mailbox with the special use `role` (RFC 6154: [`NameAttribute::Sent`],
    /// [`NameAttribute::Trash`] ...) as [`ImapSession::list`] shows it; without one, the
    /// selectable mailbox named `fallback` (case-insensitively), if given and there.
    pub async fn special_use_mailbox(
        &mut self,
        role: &NameAttribute<'static>,
        fallback: Option<&str>,
    ) -> Result<Option<MailboxInfo>, Error> {
        let mailboxes = self.list().await?;
        Ok(crate::core::imap::special_use(mailboxes, role, fallback))
    }

    /// The mailbox for sent mail: the one marked `\Sent` (SPECIAL-USE), else one named
    /// `Sent`; `None` if there is neither.
    pub async fn sent_mailbox(&mut self) -> Result<Option<MailboxInfo>, Error> {
        self.special_use_mailbox(&NameAttribute::Sent, Some("Sent"))
            .await
    }

    /// Waits for news with IDLE, for at most `wait`: returns as soon as the server reports
    /// something (EXISTS, EXPUNGE, FETCH ...), or with nothing when `wait` is over. IDLE is
    /// ended (DONE) before returning and re-issued every [`ImapSession::set_idle_refresh`]
    /// interval; the server must answer DONE within the read timeout, so a dead connection is
    /// noticed at the latest at the next refresh.
    ///
    /// The caller may end the wait early by dropping the call (in a `tokio::select!` with its
    /// own events): IDLE then stays on until the next call of the session, which sends DONE,
    /// reads the server's completion and goes on; the news that came meanwhile is kept, in
    /// [`ImapSession::take_unsolicited`] (and a next `idle` returns it at once).
    pub async fn idle(&mut self, wait: Duration) -> Result<Vec<Unsolicited>, Error> {
        self.settle().await?;
        if !self.has_capability("IDLE") {
            return Err(Error::MissingExtension {
                host: self.endpoint().host.clone(),
                extension: "IDLE",
                needed_for: "waiting for new mail",
            });
        }
        let deadline = tokio::time::Instant::now() + wait;
        // Anything already queued is news: no need to wait.
        if self.core.has_unsolicited() {
            return Ok(self.core.take_unsolicited());
        }
        loop {
            let tag = self.core.start(&Command::Idle, Kind::Idle)?;
            // The server's `+` (or a refusal).
            loop {
                match self.next_event().await? {
                    ImapEvent::IdleStarted => break,
                    ImapEvent::Done(done) => {
                        self.ok("IDLE", done)?;
                        return Err(self.core.protocol("IDLE completed without a continuation"));
                    }
                    _ => self.core.usable()?,
                }
            }
            let refresh_at = deadline.min(tokio::time::Instant::now() + self.idle_refresh);
            let mut until = self.quiet_until(refresh_at);
            while !self.core.has_unsolicited() {
                tokio::select! {
                    event = self.driver.next(&mut self.core) => match event {
                        Ok(_) => {
                            until = self.quiet_until(refresh_at);
                            self.core.usable()?;
                        }
                        // Silence longer than the read timeout is what IDLE is for (the core
                        // says so by not poisoning itself).
                        Err(Error::Transport(mailcat_transport::Error::Timeout { .. }))
                            if !self.core.is_poisoned() => {}
                        Err(e) => return Err(e),
                    },
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
            self.core.idle_done();
            loop {
                match self.next_event().await? {
                    ImapEvent::Done(done) if done.tag == tag => {
                        self.ok("IDLE", done)?;
                        break;
                    }
                    _ => self.core.usable()?,
                }
            }
            if self.core.has_unsolicited() || tokio::time::Instant::now() >= deadline {
                return Ok(self.core.take_unsolicited());
            }
        }
    }

    /// When IDLE must end at the latest: at `refresh_at`, or sooner after the quiet interval
    /// from now ([`ImapSession::set_idle_quiet_refresh`]).
    fn quiet_until(&self, refresh_at: tokio::time::Instant) -> tokio::time::Instant {
        match self.idle_quiet_refresh {
            Some(quiet) => refresh_at.min(tokio::time::Instant::now() + quiet),
            None => refresh_at,
        }
    }

    /// `LOGOUT`, then closes the connection. A BYE is the expected answer.
    pub async fn logout(mut self) -> Result<(), Error> {
        if self.core.closed_by_server().is_none() {
            let result = self.logout_exchange().await;
            self.driver.shutdown().await;
            return result;
        }
        self.driver.shutdown().await;
        Ok(())
    }

    async fn logout_exchange(&mut self) -> Result<(), Error> {
        let answer = async {
            let tag = self.start(&Command::Logout, Kind::Logout).await?;
            loop {
                if let ImapEvent::Done(done) = self.next_event().await? {
                    if done.tag == tag {
                        return Ok(());
                    }
                }
            }
        };
        match answer.await {
            // Closing right after BYE, before the tagged OK, is common and harmless.
            Err(_) if self.core.closed_by_server().is_some() => Ok(()),
            other => other,
        }
    }
}

// ----- driving the core -----

impl<S: AsyncRead + AsyncWrite + Unpin> ImapSession<S> {
    /// Before a command: finishes what a dropped call left in flight (IDLE ended with DONE,
    /// late answers read and discarded, or the session poisoned when that cannot be done),
    /// then takes in the untagged responses that have already arrived (news, a BYE) without
    /// waiting. Fails if the session is poisoned or the server said BYE.
    async fn settle(&mut self) -> Result<(), Error> {
        self.core.usable()?;
        if self.core.has_awaited_in_flight() {
            self.core.abandon()?;
            while self.core.has_awaited_in_flight() {
                self.next_event().await?;
            }
        }
        loop {
            match self.driver.arrived(&mut self.core).await {
                Ok([]) => break,
                Ok(_) => {}
                Err(_) if self.core.closed_by_server().is_some() => break,
                Err(e) => return Err(e),
            }
            match self.driver.next(&mut self.core).await {
                Ok(_) => {}
                // The server closed after its BYE: the BYE is the news.
                Err(_) if self.core.closed_by_server().is_some() => break,
                Err(e) => return Err(e),
            }
        }
        self.core.usable()
    }

    /// Settles the session and starts `command`: its bytes are queued, the tag returned.
    async fn start(&mut self, command: &Command, kind: Kind) -> Result<Tag<'static>, Error> {
        self.settle().await?;
        self.core.start(command, kind)
    }

    /// Settles the session and queues `command` (an ID) without ever awaiting its answer: it
    /// goes out with the next command.
    async fn start_unawaited(&mut self, command: &Command) -> Result<(), Error> {
        self.settle().await?;
        self.core.start_unawaited(command)
    }

    /// Writes what the core queued, then reads until its next event.
    async fn next_event(&mut self) -> Result<ImapEvent, Error> {
        Ok(self.driver.next(&mut self.core).await?.0)
    }

    /// Sends `command` and reads until its tagged completion: its answer.
    ///
    /// Dropping it leaves the command in flight; the next command reads its answer and
    /// discards it ([`ImapSession::settle`]).
    async fn exchange(&mut self, command: &Command, kind: Kind) -> Result<Done, Error> {
        let tag = self.start(command, kind).await?;
        loop {
            if let ImapEvent::Done(done) = self.next_event().await? {
                if done.tag == tag {
                    return Ok(done);
                }
            }
        }
    }

    /// The answer if its completion is OK; the refusal otherwise.
    fn ok(&self, command: &str, done: Done) -> Result<Done, Error> {
        let Done {
            tag,
            kind,
            kept,
            tagged,
        } = done;
        let tagged = expect_ok(self.endpoint(), command, tagged)?;
        Ok(Done {
            tag,
            kind,
            kept,
            tagged,
        })
    }
}

/// The longest line of an answer to SELECT or EXAMINE: 4 MiB. Its FLAGS and PERMANENTFLAGS
/// name every keyword used in the mailbox on one line; mail filters that tag by keyword leave
/// thousands (Thunderbird and Gmail labels), past `Limits::imap()`'s 64 KiB.
pub const MAX_FLAGS_LINE: usize = 4 * 1024 * 1024;

/// Most UIDs a `UID SEARCH` of a mailbox of `expected` messages may name: all of them, and
/// 100,000 more for mail arriving meanwhile. A `* SEARCH` number or an ESEARCH range names at
/// least one, so this also bounds how much of the answer's line is read (22 bytes a UID at
/// most, `4294967295:4294967295,`).
pub fn search_count_limit(expected: u32) -> u64 {
    u64::from(expected) + 100_000
}

/// Most unsolicited responses kept between two [`ImapSession::take_unsolicited`] calls; beyond,
/// the oldest are dropped.
///
/// Dropping rather than failing: the queue is news for the caller (flag changes, EXISTS), and a
/// caller that never drains it must not see its session fail after hours of normal traffic.
/// What is lost is only news older than the last 10,000 items, which the caller can learn
/// again by asking (SELECT, FETCH FLAGS). Memory stays bounded either way; the count of
/// everything read for one command is bounded separately ([`MAX_UNTAGGED_PER_COMMAND`]).
pub const MAX_UNSOLICITED: usize = 10_000;

/// Most untagged responses (and continuation requests) read for one command before it
/// completes: 200,000; more is a protocol error naming this limit (threat model #40).
///
/// A response is counted whether it is kept as the answer (LIST, SEARCH, FETCH ...) or as
/// unsolicited news, so a server can neither grow the answer without bound nor keep a command
/// from ever completing. The limit is per command, not per mailbox: a `UID FETCH` of summaries
/// has one response per message asked for, and [`crate::Incoming::list_next`] asks in batches
/// of at most 20,000, so mailboxes of any size (Gmail's All Mail holds ~100,000 messages for
/// many users) list fine; callers of [`ImapSession::fetch_summaries`] should batch alike. A
/// long `* SEARCH` or `* ESEARCH` line passed on in pieces counts once per piece. LIST has one
/// response per mailbox (thousands at most on real servers); SEARCH sends one; `UID EXPUNGE`
/// one per message expunged. A kept response costs a few hundred bytes of memory, so the
/// answer stays under ~100 MB.
pub const MAX_UNTAGGED_PER_COMMAND: usize = 200_000;

/// Most bytes of untagged responses read for one command: 128 MiB, twice the largest single
/// response the codec accepts (`Limits::imap().max_response`, 64 MiB). With
/// [`MAX_UNTAGGED_PER_COMMAND`] it bounds the memory an answer takes. Message bodies passed on
/// to a sink ([`ImapSession::fetch_messages`]), streamed or inside their FETCH response, do
/// not count (the rest of their response does); bodies kept in an answer do. A summary with Date, From and Subject is a few hundred bytes: 50,000 of them
/// are ~15 MiB.
pub const MAX_UNTAGGED_BYTES_PER_COMMAND: usize = 128 * 1024 * 1024;

// ----- SASL over AUTHENTICATE -----

/// `AUTHENTICATE` and `+` continuations (RFC 3501 §6.2.2, SASL-IR RFC 4959).
struct ImapSasl<'a, S> {
    session: &'a mut ImapSession<S>,
    tag: Option<Tag<'static>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ImapSasl<'_, S> {
    async fn reply(&mut self) -> Result<SaslReply, Error> {
        let Some(tag) = self.tag.clone() else {
            return Err(self
                .session
                .core
                .protocol("a SASL step before AUTHENTICATE"));
        };
        loop {
            match self.session.next_event().await? {
                ImapEvent::Challenge(challenge) => return Ok(SaslReply::Challenge(challenge)),
                ImapEvent::Done(done) if done.tag == tag => {
                    let tagged = done.tagged;
                    return Ok(match tagged.status {
                        StatusKind::Ok => SaslReply::Success,
                        _ if temporary(tagged.code.as_ref()) => {
                            SaslReply::Unavailable(tagged.into())
                        }
                        _ => SaslReply::Failure(tagged.into()),
                    });
                }
                _ => {}
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SaslChannel for ImapSasl<'_, S> {
    async fn start(&mut self, mechanism: &str, initial: Option<&[u8]>) -> Result<SaslReply, Error> {
        let command = Command::Authenticate {
            mechanism: mechanism.to_owned(),
            initial_response: initial.map(cmd::Secret::new),
        };
        let tag = self.session.start(&command, Kind::Authenticate).await?;
        self.tag = Some(tag);
        self.reply().await
    }

    async fn respond(&mut self, payload: &[u8], secret: bool) -> Result<SaslReply, Error> {
        let redaction = if secret {
            Redaction::Secret
        } else {
            Redaction::Normal
        };
        self.session
            .core
            .sasl_send(cmd::sasl_response(payload), redaction)?;
        self.reply().await
    }

    async fn cancel(&mut self) -> Result<SaslReply, Error> {
        self.session
            .core
            .sasl_send(cmd::sasl_cancel().to_vec(), Redaction::Normal)?;
        self.reply().await
    }

    fn abandon(&mut self, reason: &str) {
        self.session.core.out_of_step(reason);
    }
}

/// When [`ImapSession::fetch_messages`] learns the sequence numbers that route streamed bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Map {
    /// Pipelined ahead of the body fetches: no round trip of its own.
    Pipelined,
    /// Asked and answered before the first body fetch is sent.
    First,
}

/// Connects to an IMAP `endpoint` (implicit TLS or STARTTLS as it says), reads the greeting
/// and the capabilities, and returns a session ready for [`ImapSession::login`].
pub async fn connect(
    endpoint: &Endpoint,
    tls: &TlsSettings,
    timeouts: &Timeouts,
) -> Result<ImapSession<TcpStream>, Error> {
    if endpoint.protocol != Protocol::Imap {
        return Err(Error::Protocol {
            host: endpoint.host.clone(),
            protocol: endpoint.protocol,
            detail: "an IMAP session needs an imap:// or imaps:// endpoint".into(),
        });
    }
    let config = tls.client_config()?;
    let opened = dialogue::open(endpoint, config, timeouts, &mut |_| {}).await?;
    let mut session = ImapSession::new(opened.connection, opened.capabilities);
    session.preauthenticated = opened.greeting.preauth;
    session.set_greeting_alert(opened.greeting.alert);
    Ok(session)
}
