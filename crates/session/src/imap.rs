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
//!   protocol error (SECURITY.md #41); untagged responses a command did not ask for (EXISTS,
//!   EXPUNGE, FETCH FLAGS, `[ALERT]` ...) are kept in a queue, [`ImapSession::take_unsolicited`],
//!   never taken for answers.
//! - **One login attempt** per session (SECURITY.md #22): after a [`ImapSession::login`] that
//!   sent anything, a second one is an error, whatever the first one gave (the login preamble
//!   the three sessions share, in [`crate::auth`]). No password or token leaves without TLS unless the
//!   caller opted in (SECURITY.md #20); `LOGIN` is used only when no SASL mechanism fits and the
//!   server does not say `LOGINDISABLED`.
//! - **Bodies stream.** A whole message goes to a sink as its bytes arrive: literals larger than
//!   the codec's streaming threshold (64 KiB) come as chunks sliced out of the read buffer
//!   without a copy, smaller ones inside their FETCH response; memory stays bounded.
//! - **BYE ends the session** ([`Error::Closed`]); later calls fail at once without sending.
//! - **IDLE** is refreshed (DONE, IDLE again) every [`DEFAULT_IDLE_REFRESH`] (configurable); the
//!   server's answer to DONE must come within the read timeout, which notices a dead connection.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use mailcat_codec::core::text::escape_bytes;
use mailcat_codec::imap::command::{
    self as cmd, Command, EncodeOptions, Fragment, ListPattern, Mailbox, SearchKey, StoreMode,
};
use mailcat_codec::imap::{
    Code, Data, ESearch, ESearchItem, Envelope, Event, Fetch, FetchItem, Flag, NameAttribute,
    Response, ResponseDecoder, SectionData, SequenceSet, StatusKind, Tag, TagGenerator, UidSet,
};
use mailcat_codec::{Decode, Limits};
use mailcat_transport::trace::Redaction;
use mailcat_transport::{Connection, Endpoint, Protocol, Step, Timeouts, TlsSettings};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::{self, LoginMethod, Offer, SaslChannel, SaslReply};
use crate::core::Poison;
use crate::open::{self as dialogue, Capabilities, MailConnection};
use crate::{AlertSink, Credential, Error};

/// How often IDLE is ended and started again when nothing happens: 25 minutes.
///
/// RFC 2177 §3 asks clients to re-issue IDLE at least every 29 minutes, because servers may log
/// out a client silent for 30 (RFC 3501 §5.4). 25 leaves four minutes of margin for clock drift
/// and a slow DONE round trip, the margin mainstream clients keep too. Networks with NAT
/// mappings that expire sooner need a shorter interval: [`ImapSession::set_idle_refresh`].
pub const DEFAULT_IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);

/// How many whole-message fetches [`ImapSession::fetch_messages`] keeps in flight by default.
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
pub struct MailboxState {
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
    pub envelope: Option<Envelope<'static>>,
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

/// A tagged completion.
struct Tagged {
    kind: StatusKind,
    code: Option<Code<'static>>,
    text: String,
}

/// One decoded thing off the wire.
enum Item {
    Response(Response<'static>),
    BodyStart {
        whole: bool,
        seq: u32,
        uid: Option<u32>,
    },
    Chunk(Bytes),
    BodyEnd,
    /// A piece of a search answer too long to hold as one line.
    SearchPiece(SearchPiece),
}

/// A piece of a `* SEARCH` or `* ESEARCH` line too long to hold whole, as the decoder passes it
/// on ([`Event::SearchNumbers`], [`Event::ESearchRanges`]).
enum SearchPiece {
    Numbers(Vec<u32>),
    Ranges {
        tag: Option<Vec<u8>>,
        uid: bool,
        set: SequenceSet,
    },
}

/// Where the UIDs of a `UID SEARCH` answer go while it is read ([`ImapSession::uid_search_set`]),
/// and how many it may name.
#[derive(Debug)]
struct SearchSink {
    uids: UidSet,
    /// How many UIDs the answer named so far (a number sent twice counts twice, so a line that
    /// repeats itself forever is stopped too).
    named: u64,
    /// The mailbox's EXISTS when the search was sent.
    expected: u32,
}

impl SearchSink {
    fn new(expected: u32) -> Self {
        SearchSink {
            uids: UidSet::new(),
            named: 0,
            expected,
        }
    }

    /// Adds `uids`, which the answer wrote as `named` numbers; refuses more than
    /// [`search_count_limit`] in all.
    fn add(&mut self, uids: &UidSet, named: u64) -> Result<(), String> {
        self.named = self.named.saturating_add(named);
        let most = search_count_limit(self.expected);
        if self.named > most {
            return Err(format!(
                "the answer to UID SEARCH names more than {most} messages, far more than the \
                 {} the mailbox holds: it is longer than the limit for this search",
                self.expected
            ));
        }
        self.uids.insert_set(uids);
        Ok(())
    }

    fn add_numbers(&mut self, numbers: Vec<u32>) -> Result<(), String> {
        let named = numbers.len() as u64;
        self.add(&numbers.into_iter().collect(), named)
    }

    /// `*`, which a UID search never answers (RFC 4731 §3.1), is taken as 0.
    fn add_set(&mut self, set: &SequenceSet) -> Result<(), String> {
        self.add(&UidSet::from_sequence_set(set, 0), set.count(0))
    }
}

/// An authenticated (or about to be) IMAP connection.
#[derive(Debug)]
pub struct ImapSession<S> {
    conn: Connection<S>,
    decoder: ResponseDecoder,
    tags: TagGenerator,
    capabilities: Vec<String>,
    options: EncodeOptions,
    login_attempted: bool,
    /// The server greeted with PREAUTH: the connection is authenticated already.
    preauthenticated: bool,
    /// Capabilities learned after login (from a code or an untagged CAPABILITY).
    capabilities_fresh: bool,
    /// Set once the server said BYE, or broke the protocol (a wrong tag, a completion before
    /// the command was fully sent ...): no more commands.
    poison: Poison,
    unsolicited: VecDeque<Unsolicited>,
    /// Untagged responses (count, bytes) read since the last command was sent.
    untagged_read: (usize, usize),
    idle_refresh: Duration,
    /// Refresh IDLE after this long without a byte from the server, if set.
    idle_quiet_refresh: Option<Duration>,
    /// Where `[ALERT]` texts are shown as they arrive.
    alerts: Option<AlertSink>,
    /// The greeting's `[ALERT]`, until an alert sink is set to show it.
    greeting_alert: Option<String>,
    fetch_window: usize,
    /// The server puts the UID first in its FETCH responses, so a streamed body can be routed
    /// by it (learned from the bodies seen; until then, and if ever it does not, sequence
    /// numbers are mapped to UIDs first).
    uid_leads: bool,
    /// During [`ImapSession::uid_search_set`]: where the pieces of a long `* SEARCH` or
    /// `* ESEARCH` line go.
    search_sink: Option<SearchSink>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ImapSession<S> {
    /// Takes over a connection after greeting and capabilities (and STARTTLS), as
    /// [`dialogue::open`] or a test leaves it.
    pub fn new(connection: MailConnection<S>, capabilities: Capabilities) -> Self {
        let (conn, tags) = connection.into_parts();
        let mut session = ImapSession {
            conn,
            decoder: ResponseDecoder::new(Limits::imap()),
            tags: tags.unwrap_or_default(),
            capabilities: Vec::new(),
            options: EncodeOptions::default(),
            login_attempted: false,
            preauthenticated: false,
            capabilities_fresh: false,
            poison: Poison::default(),
            unsolicited: VecDeque::new(),
            untagged_read: (0, 0),
            idle_refresh: DEFAULT_IDLE_REFRESH,
            idle_quiet_refresh: None,
            alerts: None,
            greeting_alert: None,
            fetch_window: DEFAULT_FETCH_WINDOW,
            uid_leads: false,
            search_sink: None,
        };
        session.set_capabilities(capabilities.items);
        session
    }

    /// The server's current capabilities (refreshed after login).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// True if the server announced `name` (case-insensitive; `AUTH=PLAIN` works too).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
    }

    /// The server.
    pub fn endpoint(&self) -> &Endpoint {
        self.conn.endpoint()
    }

    /// True once the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// The untagged responses no command asked for, since the last call, oldest first.
    pub fn take_unsolicited(&mut self) -> Vec<Unsolicited> {
        self.unsolicited.drain(..).collect()
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
        self.alerts = sink;
    }

    /// Keeps the `[ALERT]` of the greeting (`Greeting::alert`: only one received over TLS) for
    /// the alert sink, which is set after the connection is open.
    pub fn set_greeting_alert(&mut self, text: Option<String>) {
        match (&self.alerts, text) {
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

    /// Sets how many whole-message fetches [`ImapSession::fetch_messages`] keeps in flight
    /// (default [`DEFAULT_FETCH_WINDOW`]; 1 means one at a time).
    pub fn set_fetch_window(&mut self, window: usize) {
        self.fetch_window = window.max(1);
    }

    fn set_capabilities(&mut self, items: Vec<String>) {
        self.capabilities = items;
        self.options.literal_plus = self.has_capability("LITERAL+");
        self.options.literal_minus = self.has_capability("LITERAL-");
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
    pub async fn login(
        &mut self,
        credential: &Credential,
        dangerous_allow_plaintext_auth: bool,
    ) -> Result<(), Error> {
        self.usable()?;
        if self.preauthenticated {
            // RFC 3501 §7.1.4: no LOGIN or AUTHENTICATE in the authenticated state; the
            // credential is not sent. (`dialogue::open` refuses PREAUTH before STARTTLS.)
            return Ok(());
        }
        auth::login(self, credential, dangerous_allow_plaintext_auth).await?;
        self.after_login().await
    }

    /// Capabilities, ID and ENABLE after a successful login.
    async fn after_login(&mut self) -> Result<(), Error> {
        if !self.capabilities_fresh {
            let (untagged, tagged) = self
                .exchange(&Command::Capability, |r| {
                    matches!(r, Response::Data(Data::Capability(_)))
                })
                .await?;
            self.expect_ok("CAPABILITY", tagged)?;
            let mut items = Vec::new();
            for r in untagged {
                if let Response::Data(Data::Capability(caps)) = r {
                    items.extend(
                        caps.iter()
                            .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned()),
                    );
                }
            }
            self.set_capabilities(items);
        }
        if self.has_capability("ID") {
            let id = Command::Id(Some(vec![
                ("name".to_owned(), Some("mailcat".to_owned())),
                (
                    "version".to_owned(),
                    Some(env!("CARGO_PKG_VERSION").to_owned()),
                ),
            ]));
            // Harmless either way: the answer is informational and a NO changes nothing.
            let _ = self
                .exchange(&id, |r| matches!(r, Response::Data(Data::Id(_))))
                .await?;
        }
        if self.has_capability("ENABLE") && self.has_capability("UTF8=ACCEPT") {
            let (untagged, tagged) = self
                .exchange(&Command::Enable(vec!["UTF8=ACCEPT".into()]), |r| {
                    matches!(r, Response::Data(Data::Enabled(_)))
                })
                .await?;
            let enabled = untagged.iter().any(|r| {
                matches!(r, Response::Data(Data::Enabled(caps)) if caps.iter().any(|c| c.is("UTF8=ACCEPT")))
            });
            self.options.utf8_accept = tagged.kind == StatusKind::Ok && enabled;
        }
        Ok(())
    }

    /// Takes the capabilities from a `[CAPABILITY ...]` code, if there is one.
    fn note_capability_code(&mut self, tagged: &Tagged) {
        if let Some(Code::Capability(caps)) = &tagged.code {
            let items = caps
                .iter()
                .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
                .collect();
            self.set_capabilities(items);
            self.capabilities_fresh = true;
        }
    }
}

/// IMAP's part of the login preamble (`auth::login`).
impl<S: AsyncRead + AsyncWrite + Unpin> auth::LoginSession for ImapSession<S> {
    fn login_endpoint(&self) -> &Endpoint {
        self.conn.endpoint()
    }

    fn login_usable(&self) -> Result<(), Error> {
        self.usable()
    }

    fn login_offer(&self) -> Offer {
        Offer {
            sasl: self
                .capabilities
                .iter()
                .filter_map(|c| {
                    let (prefix, mechanism) = (c.get(..5)?, c.get(5..)?);
                    (prefix.eq_ignore_ascii_case("AUTH=") && !mechanism.is_empty())
                        .then_some(mechanism.to_owned())
                })
                .collect(),
            plain_command: !self.has_capability("LOGINDISABLED"),
            tls: self.conn.is_tls(),
        }
    }

    fn attempted(&self) -> bool {
        self.login_attempted
    }

    fn spend_attempt(&mut self) {
        self.login_attempted = true;
    }

    fn written(&self) -> u64 {
        self.conn.written()
    }

    async fn before_login(&mut self) -> Result<(), Error> {
        // A BYE that came while the secret was fetched is read now, and said, rather than found
        // as a broken pipe when the credentials are sent.
        self.take_in_untagged().await
    }

    async fn log_in(
        &mut self,
        method: LoginMethod,
        credential: &Credential,
        secret: crate::Secret,
    ) -> Result<(), Error> {
        let endpoint = self.endpoint().clone();
        // Only capabilities sent with or after the login's answer count as post-login ones.
        self.capabilities_fresh = false;
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
                let (_, tagged) = self.exchange(&command, |_| false).await?;
                self.note_capability_code(&tagged);
                match tagged.kind {
                    StatusKind::Ok => Ok(()),
                    _ if temporary(tagged.code.as_ref()) => Err(Error::AuthenticationUnavailable {
                        host: endpoint.host,
                        login: credential.login().to_owned(),
                        reply: tagged.text.into(),
                    }),
                    _ => Err(auth::refusal(
                        &endpoint,
                        credential.login(),
                        "LOGIN command",
                        credential.kind(),
                        tagged.text,
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
        let (_, tagged) = self.exchange(&Command::Noop, |_| false).await?;
        self.expect_ok("NOOP", tagged).map(drop)
    }

    /// Every mailbox (`LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has
    /// SPECIAL-USE and LIST-EXTENDED), names decoded from modified UTF-7 or UTF-8.
    pub async fn list(&mut self) -> Result<Vec<MailboxInfo>, Error> {
        let command = Command::List {
            reference: ListPattern::new("")?,
            pattern: ListPattern::new("*")?,
            special_use: self.has_capability("SPECIAL-USE") && self.has_capability("LIST-EXTENDED"),
        };
        let (kept, tagged) = self
            .exchange(&command, |r| matches!(r, Response::Data(Data::List(_))))
            .await?;
        self.expect_ok("LIST", tagged)?;
        Ok(kept
            .into_iter()
            .filter_map(|r| match r {
                Response::Data(Data::List(l)) => Some(MailboxInfo {
                    name: l.mailbox.display().into_owned(),
                    raw: l.mailbox.raw.to_vec(),
                    delimiter: l.delimiter.map(char::from),
                    attributes: l.attributes,
                }),
                _ => None,
            })
            .collect())
    }

    /// `SELECT`: opens `mailbox` read-write (the server may still say `[READ-ONLY]`).
    pub async fn select(&mut self, mailbox: &Mailbox) -> Result<MailboxState, Error> {
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
    pub async fn examine(&mut self, mailbox: &Mailbox) -> Result<MailboxState, Error> {
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

    async fn open_mailbox(&mut self, command: Command, name: &str) -> Result<MailboxState, Error> {
        // FLAGS and PERMANENTFLAGS list every keyword ever used in the mailbox, on one line.
        self.decoder.set_max_line(MAX_FLAGS_LINE);
        let answer = self
            .exchange(&command, |r| match r {
                Response::Data(Data::Flags(_) | Data::Exists(_) | Data::Recent(_)) => true,
                Response::Status {
                    tag: None,
                    kind: StatusKind::Ok,
                    code: Some(code),
                    ..
                } => matches!(
                    code,
                    Code::UidValidity(_)
                        | Code::UidNext(_)
                        | Code::PermanentFlags(_)
                        | Code::Unseen(_)
                        | Code::HighestModSeq(_)
                ),
                _ => false,
            })
            .await;
        self.decoder.set_max_line(Limits::imap().max_line);
        let (kept, tagged) = answer?;
        let tagged = self.expect_ok(name, tagged)?;
        let mut state = MailboxState {
            read_only: matches!(tagged.code, Some(Code::ReadOnly)),
            ..MailboxState::default()
        };
        for r in kept {
            match r {
                Response::Data(Data::Flags(f)) => state.flags = f,
                Response::Data(Data::Exists(n)) => state.exists = n,
                Response::Data(Data::Recent(n)) => state.recent = Some(n),
                Response::Status { code: Some(c), .. } => match c {
                    // RFC 3501 §2.3.1.1: a non-zero number. 0 is no UIDVALIDITY at all, never a
                    // value to key UIDs by (SECURITY.md #43).
                    Code::UidValidity(n) => state.uid_validity = (n != 0).then_some(n),
                    Code::UidNext(n) => state.uid_next = Some(n),
                    Code::PermanentFlags(f) => state.permanent_flags = f,
                    Code::Unseen(n) => state.first_unseen = Some(n),
                    Code::HighestModSeq(n) => state.highest_modseq = Some(n),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(state)
    }

    /// `UID SEARCH key`: the matching UIDs, in the order the server sent them.
    pub async fn uid_search(&mut self, key: &SearchKey) -> Result<Vec<u32>, Error> {
        let (kept, tagged) = self
            .exchange(&Command::UidSearch(key.clone()), |r| {
                matches!(r, Response::Data(Data::Search { .. }))
            })
            .await?;
        self.expect_ok("UID SEARCH", tagged)?;
        Ok(kept
            .into_iter()
            .flat_map(|r| match r {
                Response::Data(Data::Search { numbers, .. }) => numbers,
                _ => Vec::new(),
            })
            .collect())
    }

    /// `UID FETCH set (UID)`: the UIDs of the messages in `set`, in the order sent.
    ///
    /// `n:*` always names the highest message, even when its UID is below n (RFC 3501 §6.4.8):
    /// the caller filters. `*` alone gives the highest UID in use. Used where `UID SEARCH UID
    /// n:*` is not trusted: GNU Mailutils answers that empty although the message exists.
    pub async fn uid_fetch_uids(&mut self, set: &SequenceSet) -> Result<Vec<u32>, Error> {
        let command = Command::UidFetch {
            set: set.clone(),
            items: vec![cmd::FetchItem::Uid],
            changed_since: None,
        };
        let (kept, tagged) = self
            .exchange(&command, |r| {
                // The answer carries the UID only; a FETCH with flags is another client's
                // change, reported as unsolicited.
                matches!(r, Response::Data(Data::Fetch(f)) if f.uid().is_some() && f.flags().is_none())
            })
            .await?;
        self.expect_ok("UID FETCH", tagged)?;
        Ok(kept
            .into_iter()
            .filter_map(|r| match r {
                Response::Data(Data::Fetch(f)) => f.uid(),
                _ => None,
            })
            .collect())
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
        self.search_sink = Some(SearchSink::new(expected));
        let answer = self
            .exchange(&command, |r| {
                matches!(
                    r,
                    Response::Data(Data::Search { .. } | Data::ESearch(ESearch { uid: true, .. }))
                )
            })
            .await;
        let sink = self.search_sink.take();
        let (kept, tagged) = answer?;
        self.expect_ok("UID SEARCH", tagged)?;
        let mut sink = sink.unwrap_or_else(|| SearchSink::new(expected));
        for r in kept {
            let added = match r {
                Response::Data(Data::Search { numbers, .. }) => sink.add_numbers(numbers),
                Response::Data(Data::ESearch(e)) => {
                    e.items.iter().try_for_each(|item| match item {
                        ESearchItem::All(set) => sink.add_set(set),
                        _ => Ok(()),
                    })
                }
                _ => Ok(()),
            };
            added.map_err(|detail| self.protocol(detail))?;
        }
        Ok(sink.uids)
    }

    /// Summaries of many messages in one `UID FETCH`: UID, flags, `RFC822.SIZE`,
    /// `INTERNALDATE`, and what `request` adds (ENVELOPE, header fields). Messages that no
    /// longer exist are simply missing from the result.
    pub async fn fetch_summaries(
        &mut self,
        uids: &SequenceSet,
        request: &SummaryRequest,
    ) -> Result<Vec<Summary>, Error> {
        use cmd::FetchItem as I;
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
        // Each response is matched by a binary search over the ranges asked for, not a scan
        // of them: a batch of 50,000 scattered UIDs stays linear.
        let wanted = UidSet::from_sequence_set(uids, u32::MAX);
        let (kept, tagged) = self
            .exchange(&command, |r| match r {
                // An answer carries the UID asked for and the size; a FETCH with flags only is
                // another client's change, reported as unsolicited.
                Response::Data(Data::Fetch(f)) => {
                    f.uid().is_some_and(|u| wanted.contains(u)) && f.rfc822_size().is_some()
                }
                _ => false,
            })
            .await?;
        self.expect_ok("UID FETCH", tagged)?;
        Ok(kept
            .into_iter()
            .filter_map(|r| match r {
                Response::Data(Data::Fetch(f)) => Some(summary(f)),
                _ => None,
            })
            .collect())
    }

    /// Streams the whole message with `uid` (`BODY.PEEK[]`: `\Seen` is not set) to `sink`, byte
    /// for byte. Returns its length, or `None` if the mailbox has no such UID.
    pub async fn fetch_message<W: AsyncWrite + Unpin>(
        &mut self,
        uid: u32,
        sink: &mut W,
    ) -> Result<Option<u64>, Error> {
        let mut one = [(uid, sink)];
        let mut lens = self.fetch_messages(&mut one).await?;
        Ok(lens.pop().flatten())
    }

    /// Streams several whole messages, each to its own sink, with up to the fetch window
    /// ([`ImapSession::set_fetch_window`]) of `UID FETCH` commands in flight. Returns each
    /// message's length (`None`: no such UID). The UIDs must be distinct.
    ///
    /// Servers may run pipelined FETCH commands in parallel and answer them in any order
    /// (Dovecot does), so each body is routed by its message, never by its position: inline
    /// bodies by the UID in their response, streamed ones (which start before the UID may be
    /// known) by the UID when the response gives it before the body (`* 5 FETCH (UID 12 BODY[]
    /// {…}`, as Dovecot, Gmail and Cyrus answer), else by their sequence number, learned first
    /// with one `UID FETCH set (UID)` (RFC 3501 §7.4.1: no EXPUNGE can renumber messages while
    /// FETCH commands are in progress). That costs a round trip, so it is done only until the
    /// server has shown that its UIDs come first. When a
    /// sink fails, the remaining answers are still read (the session stays usable) and the
    /// first error is returned.
    pub async fn fetch_messages<W: AsyncWrite + Unpin>(
        &mut self,
        requests: &mut [(u32, W)],
    ) -> Result<Vec<Option<u64>>, Error> {
        self.usable()?;
        let mut index_of: HashMap<u32, usize> = HashMap::new();
        for (i, (uid, _)) in requests.iter().enumerate() {
            if index_of.insert(*uid, i).is_some() {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("UID {uid} is asked for twice"),
                )));
            }
        }
        // Sequence number → UID, for routing streamed bodies when several are in flight.
        let mut uid_of_seq: HashMap<u32, u32> = HashMap::new();
        if self.fetch_window > 1 && requests.len() > 1 && !self.uid_leads {
            let set = SequenceSet::from_numbers(requests.iter().map(|(u, _)| *u))?;
            let command = Command::UidFetch {
                set,
                items: vec![cmd::FetchItem::Uid],
                changed_since: None,
            };
            let (kept, tagged) = self
                .exchange(&command, |r| {
                    matches!(r, Response::Data(Data::Fetch(f)) if f.uid().is_some_and(|u| index_of.contains_key(&u)))
                })
                .await?;
            self.expect_ok("UID FETCH", tagged)?;
            for r in kept {
                if let Response::Data(Data::Fetch(f)) = r {
                    uid_of_seq.insert(f.seq, f.uid().unwrap_or_default());
                }
            }
        }
        let mut lens: Vec<Option<u64>> = vec![None; requests.len()];
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut next = 0;
        let mut sink_error: Option<std::io::Error> = None;
        // The message whose body is streaming now, and the bytes written so far.
        let mut streaming: Option<(usize, u64)> = None;
        // A streamed literal that is not a whole message: read and dropped.
        let mut discarding = false;
        loop {
            while next < requests.len() && pending.len() < self.fetch_window {
                let command = Command::UidFetch {
                    set: SequenceSet::single(requests[next].0)?,
                    items: vec![
                        cmd::FetchItem::Uid,
                        cmd::FetchItem::BodyPeek {
                            section: cmd::Section::full(),
                            partial: None,
                        },
                    ],
                    changed_since: None,
                };
                let tag = self.send_simple(&command).await?;
                pending.insert(tag.as_str().to_owned(), next);
                next += 1;
            }
            if pending.is_empty() {
                break;
            }
            match self.read_item().await? {
                Item::BodyStart {
                    whole: true,
                    seq,
                    uid,
                } if streaming.is_none() => {
                    let index = if pending.len() == 1 {
                        pending.values().next().copied()
                    } else {
                        uid.or_else(|| uid_of_seq.get(&seq).copied())
                            .and_then(|uid| index_of.get(&uid))
                            .copied()
                    };
                    let Some(index) = index else {
                        return Err(self.protocol(format!(
                            "a message body for sequence number {seq}, which was not asked for"
                        )));
                    };
                    if lens[index].is_some() {
                        let uid = requests[index].0;
                        return Err(self.protocol(format!("a second body for UID {uid}")));
                    }
                    streaming = Some((index, 0));
                }
                Item::BodyStart { .. } => discarding = true,
                Item::Chunk(bytes) => {
                    if let (Some((index, written)), false) = (streaming.as_mut(), discarding) {
                        *written += bytes.len() as u64;
                        if sink_error.is_none() {
                            if let Err(e) = requests[*index].1.write_all(&bytes).await {
                                sink_error = Some(e);
                            }
                        }
                    }
                }
                Item::BodyEnd => discarding = false,
                Item::SearchPiece(piece) => return Err(self.search_line_too_long(&piece)),
                Item::Response(Response::Data(Data::Fetch(f))) => {
                    let body = f
                        .sections()
                        .find(|(s, origin, _)| {
                            s.part.is_empty() && s.text.is_none() && origin.is_none()
                        })
                        .map(|(_, _, d)| d.clone());
                    let Some(body) = body else {
                        self.record(Response::Data(Data::Fetch(f)));
                        continue;
                    };
                    // Every body's response (a streamed one's follows its body) tells whether
                    // the server puts the UID first, for the next call; one that stops doing so
                    // gets the sequence-number map again from then on.
                    self.uid_leads = matches!(f.items.first(), Some(FetchItem::Uid(_)));
                    let uid = f.uid().or_else(|| uid_of_seq.get(&f.seq).copied());
                    let index = match (&body, uid.and_then(|u| index_of.get(&u).copied())) {
                        (SectionData::Streamed { .. }, _) if pending.len() == 1 => {
                            streaming.map(|(i, _)| i)
                        }
                        (_, Some(index)) => Some(index),
                        (_, None) if pending.len() == 1 => pending.values().next().copied(),
                        _ => None,
                    };
                    let Some(index) = index else {
                        return Err(self.protocol(format!(
                            "a message body for UID {}, which was not asked for",
                            uid.unwrap_or_default()
                        )));
                    };
                    match body {
                        SectionData::Streamed { len } => {
                            if streaming != Some((index, len)) {
                                return Err(self.protocol(format!(
                                    "the streamed body of UID {} does not match its response",
                                    requests[index].0
                                )));
                            }
                            lens[index] = Some(len);
                        }
                        SectionData::Inline(bytes) => {
                            if lens[index].is_some() || streaming.is_some() {
                                let uid = requests[index].0;
                                return Err(self.protocol(format!("a second body for UID {uid}")));
                            }
                            if sink_error.is_none() {
                                if let Err(e) = requests[index].1.write_all(&bytes).await {
                                    sink_error = Some(e);
                                }
                            }
                            lens[index] = Some(bytes.len() as u64);
                        }
                        SectionData::Nil => {}
                    }
                    streaming = None;
                }
                Item::Response(Response::Status {
                    tag: Some(got),
                    kind,
                    code,
                    text,
                }) => {
                    let Some(index) = pending.remove(got.as_str()) else {
                        let expected = pending.keys().cloned().collect::<Vec<_>>().join(" or ");
                        return Err(self.wrong_tag(got.as_str(), &expected));
                    };
                    if streaming.is_some_and(|(i, _)| i == index) {
                        return Err(self.protocol("a FETCH completed inside its message body"));
                    }
                    self.expect_ok(
                        "UID FETCH",
                        Tagged {
                            kind,
                            code,
                            text: escape_bytes(&text),
                        },
                    )?;
                    if sink_error.is_none() {
                        if let Err(e) = requests[index].1.flush().await {
                            sink_error = Some(e);
                        }
                    }
                }
                Item::Response(Response::Continuation { .. }) => {
                    return Err(self.protocol("a continuation request during UID FETCH"));
                }
                Item::Response(other) => self.observe_and_record(other),
            }
        }
        match sink_error {
            Some(e) => Err(Error::Io(e)),
            None => Ok(lens),
        }
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
        let (_, tagged) = self.exchange(&command, |_| false).await?;
        self.expect_ok("UID STORE", tagged).map(drop)
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
        let (_, tagged) = self.exchange(&command, |_| false).await?;
        self.expect_ok(name, tagged).map(drop)
    }

    /// Moves messages to `target`: `UID MOVE` with MOVE; without it `UID COPY`, `UID STORE
    /// +FLAGS.SILENT (\Deleted)` and [`ImapSession::expunge`]. Returns the `COPYUID` if the
    /// server sent one (UIDPLUS).
    pub async fn move_messages(
        &mut self,
        uids: &SequenceSet,
        target: &Mailbox,
    ) -> Result<Option<CopyUid>, Error> {
        let is_copyuid = |r: &Response<'static>| {
            matches!(
                r,
                Response::Status {
                    tag: None,
                    kind: StatusKind::Ok,
                    code: Some(Code::CopyUid { .. }),
                    ..
                }
            )
        };
        if self.has_capability("MOVE") {
            let command = Command::UidMove {
                set: uids.clone(),
                mailbox: target.clone(),
            };
            let (kept, tagged) = self.exchange(&command, is_copyuid).await?;
            let tagged = self.expect_ok("UID MOVE", tagged)?;
            let code = kept
                .into_iter()
                .find_map(|r| match r {
                    Response::Status { code, .. } => code,
                    _ => None,
                })
                .or(tagged.code);
            return Ok(copy_uid(code));
        }
        let command = Command::UidCopy {
            set: uids.clone(),
            mailbox: target.clone(),
        };
        let (_, tagged) = self.exchange(&command, |_| false).await?;
        let tagged = self.expect_ok("UID COPY", tagged)?;
        self.store_flags(uids, StoreMode::Add, &[Flag::Deleted])
            .await?;
        self.expunge(uids).await?;
        Ok(copy_uid(tagged.code))
    }

    /// Waits for news with IDLE, for at most `wait`: returns as soon as the server reports
    /// something (EXISTS, EXPUNGE, FETCH ...), or with nothing when `wait` is over. IDLE is
    /// ended (DONE) before returning and re-issued every [`ImapSession::set_idle_refresh`]
    /// interval; the server must answer DONE within the read timeout, so a dead connection is
    /// noticed at the latest at the next refresh.
    pub async fn idle(&mut self, wait: Duration) -> Result<Vec<Unsolicited>, Error> {
        self.usable()?;
        if !self.has_capability("IDLE") {
            return Err(Error::MissingExtension {
                host: self.endpoint().host.clone(),
                extension: "IDLE",
                needed_for: "waiting for new mail",
            });
        }
        let deadline = tokio::time::Instant::now() + wait;
        // Anything already queued is news: no need to wait.
        let mut events: Vec<Unsolicited> = self.unsolicited.drain(..).collect();
        if !events.is_empty() {
            return Ok(events);
        }
        loop {
            let tag = self.send_simple(&Command::Idle).await?;
            // The server's `+` (or a refusal).
            loop {
                match self.read_item().await? {
                    Item::Response(Response::Continuation { .. }) => break,
                    Item::Response(status @ Response::Status { tag: Some(_), .. }) => {
                        let tagged = self.completion(tag.as_str(), status)?;
                        self.expect_ok("IDLE", tagged)?;
                        return Err(self.protocol("IDLE completed without a continuation"));
                    }
                    Item::Response(r) => self.idle_event(r, &mut events)?,
                    _ => {}
                }
            }
            let refresh_at = deadline.min(tokio::time::Instant::now() + self.idle_refresh);
            let mut until = self.quiet_until(refresh_at);
            while events.is_empty() {
                tokio::select! {
                    item = self.read_item() => {
                        if item.is_ok() {
                            until = self.quiet_until(refresh_at);
                        }
                        match item {
                            Ok(Item::Response(r @ Response::Status { tag: Some(_), .. })) => {
                                let got = r.tag().map(|t| t.as_str().to_owned()).unwrap_or_default();
                                return Err(self.wrong_tag(&got, tag.as_str()));
                            }
                            Ok(Item::Response(Response::Continuation { .. })) => {}
                            Ok(Item::Response(r)) => self.idle_event(r, &mut events)?,
                            Ok(_) => {}
                            // Silence longer than the read timeout is what IDLE is for.
                            Err(Error::Transport(mailcat_transport::Error::Timeout { .. }))
                                if self.conn.buffered() == 0 => {}
                            Err(e) => return Err(e),
                        }
                    }
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
            self.send(cmd::idle_done(), Redaction::Normal).await?;
            loop {
                match self.read_item().await? {
                    Item::Response(status @ Response::Status { tag: Some(_), .. }) => {
                        let tagged = self.completion(tag.as_str(), status)?;
                        self.expect_ok("IDLE", tagged)?;
                        break;
                    }
                    Item::Response(Response::Continuation { .. }) => {
                        return Err(self.protocol("a continuation request after DONE"));
                    }
                    Item::Response(r) => self.idle_event(r, &mut events)?,
                    _ => {}
                }
            }
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(events);
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

    /// An untagged response during IDLE: news for the caller; BYE ends the session (the news
    /// so far stays in the unsolicited queue).
    fn idle_event(
        &mut self,
        response: Response<'static>,
        events: &mut Vec<Unsolicited>,
    ) -> Result<(), Error> {
        self.observe(&response);
        if let Some(event) = unsolicited(response) {
            events.push(event);
        }
        if self.poison.closed_by_server().is_some() {
            self.unsolicited.extend(events.drain(..));
            return self.usable();
        }
        Ok(())
    }

    /// `LOGOUT`, then closes the connection. A BYE is the expected answer.
    pub async fn logout(mut self) -> Result<(), Error> {
        if self.poison.closed_by_server().is_none() {
            let result = self.logout_exchange().await;
            self.conn.shutdown().await;
            return result;
        }
        self.conn.shutdown().await;
        Ok(())
    }

    async fn logout_exchange(&mut self) -> Result<(), Error> {
        let tag = self.send_simple(&Command::Logout).await?;
        loop {
            match self.read_item().await {
                Ok(Item::Response(Response::Status { tag: Some(got), .. }))
                    if got.as_str() == tag.as_str() =>
                {
                    return Ok(())
                }
                Ok(Item::Response(Response::Status { tag: Some(got), .. })) => {
                    return Err(self.wrong_tag(got.as_str(), tag.as_str()))
                }
                Ok(Item::Response(r)) => self.observe_and_record(r),
                Ok(_) => {}
                // Closing right after BYE, before the tagged OK, is common and harmless.
                Err(_) if self.poison.closed_by_server().is_some() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

// ----- the wire -----

impl<S: AsyncRead + AsyncWrite + Unpin> ImapSession<S> {
    /// Fails with [`Error::Closed`] once the server said BYE, and with [`Error::Protocol`] once
    /// it broke the protocol.
    fn usable(&self) -> Result<(), Error> {
        self.poison.check(self.endpoint())
    }

    /// A protocol violation: the client and the server no longer agree on where the
    /// conversation is, so the session refuses every further command (SECURITY.md #41).
    fn protocol(&mut self, detail: impl Into<String>) -> Error {
        self.poison.desync(self.conn.endpoint(), detail)
    }

    /// The tagged completion `status` of the command tagged `expected`; another tag is a
    /// protocol error (SECURITY.md #41).
    fn completion(&mut self, expected: &str, status: Response<'static>) -> Result<Tagged, Error> {
        match status {
            Response::Status {
                tag: Some(got),
                kind,
                code,
                text,
            } if got.as_str() == expected => Ok(Tagged {
                kind,
                code,
                text: escape_bytes(&text),
            }),
            other => {
                let got = other
                    .tag()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default();
                Err(self.wrong_tag(&got, expected))
            }
        }
    }

    fn wrong_tag(&mut self, got: &str, expected: &str) -> Error {
        self.protocol(format!(
            "a response tagged {:?} where {expected:?} was due (SECURITY.md #41)",
            escape_bytes(got.as_bytes())
        ))
    }

    /// A transport error; after a BYE, the connection closing is the session's end.
    fn transport(&self, error: mailcat_transport::Error) -> Error {
        match (self.poison.closed_by_server(), &error) {
            (Some(text), mailcat_transport::Error::Closed { .. }) => Error::Closed {
                host: self.endpoint().host.clone(),
                reply: text.to_owned(),
            },
            _ => Error::Transport(error),
        }
    }

    /// Counts an untagged response of `len` bytes against the current command's limits.
    fn count_untagged(&mut self, len: usize) -> Result<(), Error> {
        let (count, bytes) = &mut self.untagged_read;
        *count += 1;
        *bytes = bytes.saturating_add(len);
        let (count, bytes) = (*count, *bytes);
        if count > MAX_UNTAGGED_PER_COMMAND {
            return Err(self.protocol(format!(
                "more than {MAX_UNTAGGED_PER_COMMAND} untagged responses to one command \
                 (the limit, MAX_UNTAGGED_PER_COMMAND; SECURITY.md #40)"
            )));
        }
        if bytes > MAX_UNTAGGED_BYTES_PER_COMMAND {
            return Err(self.protocol(format!(
                "more than {} MiB of untagged responses to one command (the limit, \
                 MAX_UNTAGGED_BYTES_PER_COMMAND; SECURITY.md #40)",
                MAX_UNTAGGED_BYTES_PER_COMMAND >> 20
            )));
        }
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8], redaction: Redaction) -> Result<(), Error> {
        let result = self.conn.send(bytes, redaction).await;
        result.map_err(|e| self.transport(e))
    }

    /// Reads one decoded item: a response, or a piece of a streamed body (zero-copy).
    async fn read_item(&mut self) -> Result<Item, Error> {
        enum Raw {
            Response(Response<'static>),
            BodyStart {
                whole: bool,
                seq: u32,
                uid: Option<u32>,
            },
            Chunk(std::ops::Range<usize>),
            BodyEnd,
            SearchPiece(SearchPiece),
        }
        let bare_lf_lines = self.decoder.bare_lf_lines();
        let result = self
            .conn
            .read_frame(
                Step::Response,
                &mut self.decoder,
                |decoder, buf| {
                    let (used, event) = Decode::decode(decoder, buf).into_result()?;
                    let raw = match event {
                        Event::Response(r) => Raw::Response(r.into_owned()),
                        Event::BodyStart {
                            seq,
                            uid,
                            section,
                            origin,
                            ..
                        } => Raw::BodyStart {
                            seq,
                            uid,
                            whole: section.part.is_empty()
                                && section.text.is_none()
                                && origin.is_none(),
                        },
                        Event::BodyChunk(range) => Raw::Chunk(range),
                        Event::BodyEnd => Raw::BodyEnd,
                        Event::SearchNumbers(numbers) => {
                            Raw::SearchPiece(SearchPiece::Numbers(numbers))
                        }
                        Event::ESearchRanges { tag, uid, set } => {
                            Raw::SearchPiece(SearchPiece::Ranges {
                                tag: tag.map(<[u8]>::to_vec),
                                uid,
                                set,
                            })
                        }
                    };
                    Ok((used, raw))
                },
                |decoder, rest| decoder.end_of_input(rest),
            )
            .await;
        let (raw, bytes) = result.map_err(|e| self.transport(e))?;
        if let (
            Raw::Response(Response::Status {
                code: Some(Code::Alert),
                text,
                ..
            }),
            Some(sink),
        ) = (&raw, &self.alerts)
        {
            sink.alert(&self.endpoint().host, &escape_bytes(text));
        }
        if self.decoder.bare_lf_lines() != bare_lf_lines {
            tracing::debug!(
                target: mailcat_transport::trace::TARGET,
                "S: (that line ended with a bare LF, not CRLF: accepted, as it is one line \
                 without a literal or an open quoted string)"
            );
        }
        match &raw {
            Raw::Response(response)
                if !matches!(response, Response::Status { tag: Some(_), .. }) =>
            {
                self.count_untagged(bytes.len())?
            }
            Raw::SearchPiece(_) => self.count_untagged(bytes.len())?,
            _ => {}
        }
        Ok(match raw {
            Raw::Response(r) => Item::Response(r),
            Raw::BodyStart { whole, seq, uid } => Item::BodyStart { whole, seq, uid },
            Raw::Chunk(range) => Item::Chunk(bytes.slice(range)),
            Raw::BodyEnd => Item::BodyEnd,
            Raw::SearchPiece(piece) => Item::SearchPiece(piece),
        })
    }

    /// Sends a command; a synchronising literal waits for the server's `+`. Returns the tag,
    /// and the tagged response if the server refused the command (NO or BAD) before its
    /// literal.
    ///
    /// A tagged OK instead of `+` completes a command the client has not finished sending: the
    /// server either answered something else or wants the literal's bytes (a password, a
    /// message) to be read as a command of their own. It is a protocol error and the session is
    /// done (SECURITY.md #41); the literal is never sent.
    async fn send_command(
        &mut self,
        command: &Command,
    ) -> Result<(Tag<'static>, Option<Tagged>), Error> {
        self.usable()?;
        let tag = self.tags.next_tag();
        let encoded = command.encode(&tag, &self.options)?;
        self.untagged_read = (0, 0);
        let literal_redaction = if command.is_sensitive() {
            Redaction::Secret
        } else {
            Redaction::Data
        };
        // What follows a literal of a LOGIN (the password, or its literal's length) is as secret
        // as the literal: the trace redacts only the line that names the command.
        let mut text_redaction = Redaction::Normal;
        // Consecutive pieces that need no wait go out in one write.
        let mut out = Vec::new();
        for fragment in encoded.into_fragments() {
            match fragment {
                Fragment::Line(line) => out.extend_from_slice(&line),
                Fragment::Literal { data, sync } => {
                    self.send(&out, text_redaction).await?;
                    out.clear();
                    if sync {
                        if let Some(answer) = self.await_continuation(&tag).await? {
                            if !matches!(answer.kind, StatusKind::No | StatusKind::Bad) {
                                return Err(self.protocol(format!(
                                    "{} {} before its literal was sent: the command was not \
                                     complete (SECURITY.md #41)",
                                    command.name(),
                                    answer.kind.as_str()
                                )));
                            }
                            return Ok((tag, Some(answer)));
                        }
                    }
                    self.send(&data, literal_redaction).await?;
                    if command.is_sensitive() {
                        text_redaction = Redaction::Secret;
                    }
                }
            }
        }
        self.send(&out, text_redaction).await?;
        Ok((tag, None))
    }

    /// Sends a command that has no synchronising literal (FETCH, IDLE, LOGOUT ...).
    async fn send_simple(&mut self, command: &Command) -> Result<Tag<'static>, Error> {
        match self.send_command(command).await? {
            (tag, None) => Ok(tag),
            (_, Some(_)) => Err(self.protocol("a refusal before a literal that was not sent")),
        }
    }

    /// Waits for `+`; a tagged answer instead is the command's refusal.
    async fn await_continuation(&mut self, tag: &Tag<'_>) -> Result<Option<Tagged>, Error> {
        loop {
            match self.read_item().await? {
                Item::Response(Response::Continuation { .. }) => return Ok(None),
                Item::Response(Response::Status {
                    tag: Some(got),
                    kind,
                    code,
                    text,
                }) => {
                    if got.as_str() != tag.as_str() {
                        return Err(self.wrong_tag(got.as_str(), tag.as_str()));
                    }
                    return Ok(Some(Tagged {
                        kind,
                        code,
                        text: escape_bytes(&text),
                    }));
                }
                Item::Response(r) => self.observe_and_record(r),
                _ => {}
            }
        }
    }

    /// Sends `command` and reads until its tagged completion. Untagged responses for which
    /// `keep` says yes are returned; the others are recorded as unsolicited.
    async fn exchange(
        &mut self,
        command: &Command,
        keep: impl Fn(&Response<'static>) -> bool,
    ) -> Result<(Vec<Response<'static>>, Tagged), Error> {
        let (tag, early) = self.send_command(command).await?;
        if let Some(tagged) = early {
            return Ok((Vec::new(), tagged));
        }
        let mut kept = Vec::new();
        loop {
            match self.read_item().await? {
                Item::Response(status @ Response::Status { tag: Some(_), .. }) => {
                    let tagged = self.completion(tag.as_str(), status)?;
                    self.note_capability_code(&tagged);
                    return Ok((kept, tagged));
                }
                Item::Response(Response::Continuation { .. }) => {
                    return Err(
                        self.protocol(format!("a continuation request during {}", command.name()))
                    );
                }
                Item::Response(r) => {
                    self.observe(&r);
                    if keep(&r) && !answers_another_command(&r, &tag) {
                        kept.push(r);
                    } else {
                        self.record(r);
                    }
                }
                Item::SearchPiece(piece) => self.take_search_piece(piece, &tag)?,
                // A body nobody asked for (an unsolicited FETCH with a large literal): dropped.
                _ => {}
            }
        }
    }

    /// Adds a piece of a long `* SEARCH` or `* ESEARCH` line to the search under way (the
    /// command tagged `tag`), within its bound. Without a search under way (a command that
    /// expects a short answer), the line is too long; an ESEARCH piece must also answer this
    /// command and give UIDs.
    fn take_search_piece(&mut self, piece: SearchPiece, tag: &Tag<'_>) -> Result<(), Error> {
        let Some(sink) = self.search_sink.as_mut() else {
            return Err(self.search_line_too_long(&piece));
        };
        let added = match piece {
            SearchPiece::Numbers(numbers) => sink.add_numbers(numbers),
            SearchPiece::Ranges {
                tag: Some(other), ..
            } if other != tag.as_bytes() => Err(format!(
                "an ESEARCH response for another command (TAG \"{}\") during UID SEARCH {tag}",
                escape_bytes(&other)
            )),
            SearchPiece::Ranges { uid: false, .. } => Err(
                "an ESEARCH response with message numbers (no UID indicator) to UID SEARCH"
                    .to_owned(),
            ),
            SearchPiece::Ranges { set, .. } => sink.add_set(&set),
        };
        added.map_err(|detail| self.protocol(detail))
    }

    /// The error for a piece of a long search answer where no search is under way.
    fn search_line_too_long(&mut self, piece: &SearchPiece) -> Error {
        let name = match piece {
            SearchPiece::Numbers(_) => "SEARCH",
            SearchPiece::Ranges { .. } => "ESEARCH",
        };
        self.protocol(format!(
            "a {name} response line longer than the limit of {} bytes",
            self.decoder.limits().max_line
        ))
    }

    /// What every untagged response tells the session itself: BYE, new capabilities.
    fn observe(&mut self, response: &Response<'static>) {
        match response {
            Response::Status {
                tag: None,
                kind: StatusKind::Bye,
                text,
                ..
            } => self.poison.closed(escape_bytes(text)),
            Response::Data(Data::Capability(caps)) => {
                let items = caps
                    .iter()
                    .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
                    .collect();
                self.set_capabilities(items);
                self.capabilities_fresh = true;
            }
            _ => {}
        }
    }

    /// Between commands (nothing in flight): reads the untagged responses that have already
    /// arrived (a BYE, an EXISTS ...) and records them; then fails if the server said BYE.
    async fn take_in_untagged(&mut self) -> Result<(), Error> {
        while self
            .conn
            .unsolicited()
            .await
            .map_err(|e| self.transport(e))?
            .is_some()
        {
            match self.read_item().await {
                Ok(Item::Response(response)) if response.tag().is_none() => {
                    self.observe_and_record(response)
                }
                Ok(_) => {
                    return Err(self.protocol("a response nothing asked for, between commands"))
                }
                // The server closed after its BYE: the BYE is the news.
                Err(_) if self.poison.closed_by_server().is_some() => break,
                Err(e) => return Err(e),
            }
        }
        self.usable()
    }

    fn observe_and_record(&mut self, response: Response<'static>) {
        self.observe(&response);
        self.record(response);
    }

    /// Keeps an untagged response for [`ImapSession::take_unsolicited`]. The queue holds at
    /// most [`MAX_UNSOLICITED`] entries: beyond, the oldest are dropped.
    fn record(&mut self, response: Response<'static>) {
        if let Some(event) = unsolicited(response) {
            if self.unsolicited.len() >= MAX_UNSOLICITED {
                self.unsolicited.pop_front();
            }
            self.unsolicited.push_back(event);
        }
    }

    /// OK passes; NO with `[UNAVAILABLE]`/`[INUSE]` is temporary; other NO and BAD are
    /// refusals.
    fn expect_ok(&self, command: &str, tagged: Tagged) -> Result<Tagged, Error> {
        let host = self.endpoint().host.clone();
        match tagged.kind {
            StatusKind::Ok => Ok(tagged),
            StatusKind::No if temporary(tagged.code.as_ref()) => Err(Error::Temporary {
                host,
                command: command.to_owned(),
                reply: format!("NO {}", tagged.text).into(),
            }),
            kind => Err(Error::Rejected {
                host,
                command: command.to_owned(),
                reply: format!("{} {}", kind.as_str(), tagged.text).into(),
            }),
        }
    }
}

/// True for an ESEARCH response whose correlator (`(TAG "…")`, RFC 4466's search-correlator)
/// names another command than the one tagged `tag`: whatever it says, it is not that command's
/// answer.
fn answers_another_command(response: &Response<'_>, tag: &Tag<'_>) -> bool {
    matches!(
        response,
        Response::Data(Data::ESearch(ESearch { tag: Some(t), .. })) if t.as_ref() != tag.as_bytes()
    )
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
/// completes: 200,000; more is a protocol error naming this limit (SECURITY.md #40).
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
/// [`MAX_UNTAGGED_PER_COMMAND`] it bounds the memory an answer takes. Message bodies streamed
/// to a sink ([`ImapSession::fetch_messages`]) do not count; small bodies inside a FETCH
/// response do. A summary with Date, From and Subject is a few hundred bytes: 50,000 of them
/// are ~15 MiB.
pub const MAX_UNTAGGED_BYTES_PER_COMMAND: usize = 128 * 1024 * 1024;

/// `[UNAVAILABLE]` and `[INUSE]` (RFC 5530) say "try again later".
fn temporary(code: Option<&Code<'_>>) -> bool {
    matches!(code, Some(Code::Unavailable | Code::InUse))
}

fn copy_uid(code: Option<Code<'static>>) -> Option<CopyUid> {
    match code {
        Some(Code::CopyUid {
            uid_validity,
            source,
            target,
        }) => Some(CopyUid {
            uid_validity,
            source,
            target,
        }),
        _ => None,
    }
}

/// The caller's view of an untagged response; `None` for what the session consumed itself
/// (capabilities) and plain `* OK` chatter.
fn unsolicited(response: Response<'static>) -> Option<Unsolicited> {
    Some(match response {
        Response::Data(Data::Exists(n)) => Unsolicited::Exists(n),
        Response::Data(Data::Recent(n)) => Unsolicited::Recent(n),
        Response::Data(Data::Expunge(n)) => Unsolicited::Expunge(n),
        Response::Data(Data::Vanished { earlier, uids }) => Unsolicited::Vanished { earlier, uids },
        Response::Data(Data::Fetch(f)) => Unsolicited::Fetch {
            seq: f.seq,
            uid: f.uid(),
            flags: f.flags().map(<[_]>::to_vec),
        },
        Response::Data(Data::Flags(flags)) => Unsolicited::Flags(flags),
        Response::Data(Data::Capability(_)) => return None,
        Response::Status {
            tag: None,
            kind: StatusKind::Bye,
            text,
            ..
        } => Unsolicited::Bye(escape_bytes(&text)),
        Response::Status {
            code: Some(Code::Alert),
            text,
            ..
        } => Unsolicited::Alert(escape_bytes(&text)),
        Response::Status {
            tag: None,
            kind: StatusKind::Ok,
            code: None,
            ..
        } => return None,
        other => Unsolicited::Other(other),
    })
}

fn summary(f: Fetch<'static>) -> Summary {
    let headers = f
        .sections()
        .find(|(s, _, _)| {
            matches!(
                s.text,
                Some(mailcat_codec::imap::SectionText::HeaderFields(_))
            )
        })
        .and_then(|(_, _, d)| d.bytes().map(<[u8]>::to_vec));
    Summary {
        uid: f.uid().unwrap_or_default(),
        seq: f.seq,
        flags: f.flags().map(<[_]>::to_vec).unwrap_or_default(),
        size: f.rfc822_size(),
        internal_date: f
            .internal_date()
            .map(|d| String::from_utf8_lossy(d).into_owned()),
        envelope: f.envelope().cloned(),
        headers,
    }
}

// ----- SASL over AUTHENTICATE -----

/// `AUTHENTICATE` and `+` continuations (RFC 3501 §6.2.2, SASL-IR RFC 4959).
struct ImapSasl<'a, S> {
    session: &'a mut ImapSession<S>,
    tag: Option<Tag<'static>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ImapSasl<'_, S> {
    async fn reply(&mut self) -> Result<SaslReply, Error> {
        let Some(tag) = self.tag.clone() else {
            return Err(self.session.protocol("a SASL step before AUTHENTICATE"));
        };
        loop {
            match self.session.read_item().await? {
                Item::Response(Response::Continuation { text, .. }) => {
                    // A challenge is base64 (RFC 3501 §7.5); a few servers put text there for
                    // an empty challenge.
                    use base64::Engine;
                    let challenge = base64::engine::general_purpose::STANDARD
                        .decode(text.trim_ascii())
                        .unwrap_or_default();
                    return Ok(SaslReply::Challenge(challenge));
                }
                Item::Response(status @ Response::Status { tag: Some(_), .. }) => {
                    let tagged = self.session.completion(tag.as_str(), status)?;
                    self.session.note_capability_code(&tagged);
                    return Ok(match tagged.kind {
                        StatusKind::Ok => SaslReply::Success,
                        _ if temporary(tagged.code.as_ref()) => {
                            SaslReply::Unavailable(tagged.text.into())
                        }
                        _ => SaslReply::Failure(tagged.text.into()),
                    });
                }
                Item::Response(r) => self.session.observe_and_record(r),
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
        let tag = self.session.send_simple(&command).await?;
        self.tag = Some(tag);
        self.reply().await
    }

    async fn respond(&mut self, payload: &[u8], secret: bool) -> Result<SaslReply, Error> {
        let line = cmd::sasl_response(payload);
        let redaction = if secret {
            Redaction::Secret
        } else {
            Redaction::Normal
        };
        self.session.send(&line, redaction).await?;
        self.reply().await
    }

    async fn cancel(&mut self) -> Result<SaslReply, Error> {
        self.session
            .send(cmd::sasl_cancel(), Redaction::Normal)
            .await?;
        self.reply().await
    }

    fn abandon(&mut self, reason: &str) {
        self.session.poison.out_of_step(reason);
    }
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
