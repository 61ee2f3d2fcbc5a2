//! One account: an address, one credential, an incoming server (IMAP or POP3) and an outgoing
//! server (SMTP). Send uses the receive credential unless the account says otherwise, like
//! the classic "my outgoing server requires authentication: use same settings as my incoming
//! mail server".
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailcat_session::Error> {
//! use mailcat_session::{Account, Credential, ListDetail};
//! use mailcat_transport::Endpoint;
//!
//! let account = Account::builder(
//!     "alice@example.com",
//!     Credential::password("alice@example.com", "app-password"),
//! )
//! .incoming(Endpoint::parse_url("imaps://imap.example.com").expect("URL"))
//! .outgoing(Endpoint::parse_url("smtp://smtp.example.com:587").expect("URL"))
//! .build()?;
//! let mut inbox = account.receive().await?;            // connect, TLS, log in
//! for message in inbox.list(None, ListDetail::Headers).await? {
//!     println!("{} {} {:?}", message.id, message.size.unwrap_or(0), message.headers.subject);
//! }
//! inbox.close().await?;
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use mailcat_codec::imap::command::{Mailbox, SearchKey, SequenceSet};
use mailcat_codec::imap::UidSet;
use mailcat_codec::DecodeError;
use mailcat_transport::{Endpoint, Protocol, Timeouts, TlsSettings};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::auth;
use crate::headers::{summarize, HeaderSummary};
use crate::imap::{ImapSession, SummaryRequest};
use crate::maildrop::{Maildrop, MaildropBuilder};
use crate::pop3::Pop3Session;
use crate::smtp::{Envelope, MessageInfo, SendReport, SmtpSession};
use crate::{AlertSink, Credential, Error, Plaintext};

/// An account. Made with [`Account::new`] or [`Account::builder`]; its fields may be read and
/// changed, and new ones may come in a later version (`#[non_exhaustive]`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Account {
    /// The address.
    pub email: String,
    /// The credential for the incoming server (and the outgoing one, unless set apart).
    pub credential: Credential,
    /// Where mail is read: an IMAP or POP3 endpoint; `None`: a send-only account, whose
    /// [`Account::receive`] fails with [`Error::Misuse`].
    pub incoming: Option<Endpoint>,
    /// Where mail is sent: an SMTP endpoint; `None`: a receive-only account, whose
    /// [`Account::send`] and [`Account::send_session`] fail with [`Error::Misuse`].
    pub outgoing: Option<Endpoint>,
    /// A separate credential for the outgoing server; `None`: the incoming one.
    pub outgoing_credential: Option<Credential>,
    /// Which certificate authorities to trust.
    pub tls: TlsSettings,
    /// How long each network step may take.
    pub timeouts: Timeouts,
    /// Whether passwords and tokens may go over connections without TLS
    /// ([`Plaintext::Refuse`] unless set; the other is only for test servers on loopback).
    pub plaintext: Plaintext,
    /// Where IMAP `[ALERT]` texts go (RFC 3501 §7.1: they must reach the user); `None`: they
    /// are only kept with the other unsolicited responses.
    pub alerts: Option<AlertSink>,
}

impl Account {
    /// An account with both servers, the default TLS roots and timeouts, one credential for
    /// both servers. For a receive-only or send-only account, see [`Account::builder`].
    pub fn new(
        email: impl Into<String>,
        credential: Credential,
        incoming: Endpoint,
        outgoing: Endpoint,
    ) -> Self {
        Self {
            email: email.into(),
            credential,
            incoming: Some(incoming),
            outgoing: Some(outgoing),
            outgoing_credential: None,
            tls: TlsSettings::default(),
            timeouts: Timeouts::default(),
            plaintext: Plaintext::Refuse,
            alerts: None,
        }
    }

    /// Starts an account for `email` with `credential`: give it an incoming server, an
    /// outgoing one or both, then [`AccountBuilder::build`]. The rest defaults as in
    /// [`Account::new`].
    ///
    /// ```
    /// # fn demo() -> Result<(), mailcat_session::Error> {
    /// use mailcat_session::{Account, Credential};
    /// use mailcat_transport::Endpoint;
    ///
    /// // Receive-only: send() fails with Error::Misuse, without touching the network.
    /// let account = Account::builder("alice@example.com", Credential::password("alice", "pw"))
    ///     .incoming(Endpoint::parse_url("imaps://imap.example.com").expect("URL"))
    ///     .build()?;
    /// assert!(account.outgoing.is_none());
    /// # Ok(()) }
    /// ```
    pub fn builder(email: impl Into<String>, credential: Credential) -> AccountBuilder {
        AccountBuilder {
            account: Self {
                email: email.into(),
                credential,
                incoming: None,
                outgoing: None,
                outgoing_credential: None,
                tls: TlsSettings::default(),
                timeouts: Timeouts::default(),
                plaintext: Plaintext::Refuse,
                alerts: None,
            },
        }
    }

    /// The incoming server, or [`Error::Misuse`] naming what to configure.
    fn incoming_endpoint(&self) -> Result<&Endpoint, Error> {
        self.incoming.as_ref().ok_or_else(|| Error::Misuse {
            host: self.email.clone(),
            protocol: Protocol::Imap,
            what: "the account has no incoming server, so it cannot receive: give it one with \
                   AccountBuilder::incoming (an imap://, imaps:// or pop3s:// endpoint)"
                .to_owned(),
        })
    }

    /// The outgoing server, or [`Error::Misuse`] naming what to configure.
    fn outgoing_endpoint(&self) -> Result<&Endpoint, Error> {
        self.outgoing.as_ref().ok_or_else(|| Error::Misuse {
            host: self.email.clone(),
            protocol: Protocol::Smtp,
            what: "the account has no outgoing server, so it cannot send: give it one with \
                   AccountBuilder::outgoing (an smtp:// or smtps:// endpoint)"
                .to_owned(),
        })
    }

    /// The credential used for sending.
    pub fn outgoing_credential(&self) -> &Credential {
        self.outgoing_credential
            .as_ref()
            .unwrap_or(&self.credential)
    }

    /// Connects to the incoming server and logs in. An OAuth2 token the server refuses is
    /// renewed, and the login tried once more on a new connection. An account without an
    /// incoming server fails with [`Error::Misuse`] before any connection.
    pub async fn receive(&self) -> Result<Incoming, Error> {
        self.incoming_endpoint()?;
        match self.receive_once().await {
            Err(e) if e.is_token_refusal() && self.credential.renew_refused_token().await? => {
                self.receive_once().await
            }
            result => result,
        }
    }

    async fn receive_once(&self) -> Result<Incoming, Error> {
        let incoming = self.incoming_endpoint()?;
        match incoming.protocol {
            Protocol::Imap => {
                let mut session = crate::imap::connect(incoming, &self.tls, &self.timeouts).await?;
                session.set_alert_sink(self.alerts.clone());
                if let Err(error) = session.login(&self.credential, self.plaintext).await {
                    auth::goodbye_after_failed_login(&error, session.logout()).await;
                    return Err(error);
                }
                Ok(Incoming::Imap {
                    session,
                    selected: None,
                })
            }
            Protocol::Pop3 => {
                let mut session = crate::pop3::connect(incoming, &self.tls, &self.timeouts).await?;
                if let Err(error) = session.login(&self.credential, self.plaintext).await {
                    auth::goodbye_after_failed_login(&error, session.quit()).await;
                    return Err(error);
                }
                Ok(Incoming::Pop3 {
                    session,
                    numbers: Maildrop::default(),
                })
            }
            Protocol::Smtp => Err(wrong_protocol(
                incoming,
                "the incoming server must be IMAP or POP3",
            )),
        }
    }

    /// Connects to the outgoing server and logs in with the outgoing credential; a refused
    /// OAuth2 token is renewed once, as for [`Account::receive`]. An account without an
    /// outgoing server fails with [`Error::Misuse`] before any connection.
    pub async fn send_session(&self) -> Result<SmtpSession<TcpStream>, Error> {
        self.outgoing_endpoint()?;
        match self.send_session_once().await {
            Err(e)
                if e.is_token_refusal()
                    && self.outgoing_credential().renew_refused_token().await? =>
            {
                self.send_session_once().await
            }
            result => result,
        }
    }

    async fn send_session_once(&self) -> Result<SmtpSession<TcpStream>, Error> {
        let outgoing = self.outgoing_endpoint()?;
        if outgoing.protocol != Protocol::Smtp {
            return Err(wrong_protocol(outgoing, "the outgoing server must be SMTP"));
        }
        let mut session = crate::smtp::connect(outgoing, &self.tls, &self.timeouts).await?;
        if let Err(error) = session
            .login(self.outgoing_credential(), self.plaintext)
            .await
        {
            auth::goodbye_after_failed_login(&error, session.logout()).await;
            return Err(error);
        }
        Ok(session)
    }

    /// Sends one message read from `message`: connect, log in, send, quit. An account without
    /// an outgoing server fails with [`Error::Misuse`] before any connection.
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &mut (impl AsyncRead + Unpin),
        info: &MessageInfo,
    ) -> Result<SendReport, Error> {
        self.send_session()
            .await?
            .send_and_quit(envelope, message, info)
            .await
    }
}

/// Builds an [`Account`] with an incoming server, an outgoing one or both: from
/// [`Account::builder`].
#[derive(Debug, Clone)]
#[must_use = "an AccountBuilder does nothing until build() is called"]
pub struct AccountBuilder {
    account: Account,
}

impl AccountBuilder {
    /// Where mail is read: an IMAP or POP3 endpoint.
    pub fn incoming(mut self, endpoint: Endpoint) -> Self {
        self.account.incoming = Some(endpoint);
        self
    }

    /// Where mail is sent: an SMTP endpoint.
    pub fn outgoing(mut self, endpoint: Endpoint) -> Self {
        self.account.outgoing = Some(endpoint);
        self
    }

    /// A separate credential for the outgoing server (without one: the account's credential).
    pub fn outgoing_credential(mut self, credential: Credential) -> Self {
        self.account.outgoing_credential = Some(credential);
        self
    }

    /// Which certificate authorities to trust (default: the platform's and Mozilla's roots).
    pub fn tls(mut self, tls: TlsSettings) -> Self {
        self.account.tls = tls;
        self
    }

    /// How long each network step may take.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.account.timeouts = timeouts;
        self
    }

    /// Whether passwords and tokens may go over connections without TLS (default:
    /// [`Plaintext::Refuse`]).
    pub fn plaintext(mut self, plaintext: Plaintext) -> Self {
        self.account.plaintext = plaintext;
        self
    }

    /// Where IMAP `[ALERT]` texts go.
    pub fn alerts(mut self, alerts: AlertSink) -> Self {
        self.account.alerts = Some(alerts);
        self
    }

    /// The account; [`Error::Misuse`] when it has neither an incoming nor an outgoing server.
    pub fn build(self) -> Result<Account, Error> {
        if self.account.incoming.is_none() && self.account.outgoing.is_none() {
            return Err(Error::Misuse {
                host: self.account.email,
                protocol: Protocol::Imap,
                what: "an account needs a server: give it AccountBuilder::incoming to receive, \
                       AccountBuilder::outgoing to send, or both"
                    .to_owned(),
            });
        }
        Ok(self.account)
    }
}

/// How much of each message a listing gives ([`Incoming::list`], [`Incoming::list_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListDetail {
    /// The id and the size only: one round trip per batch, on either protocol.
    Sizes,
    /// Also Date, From and Subject ([`MessageSummary::headers`]): IMAP in the same `UID FETCH`,
    /// POP3 by one `TOP n 0` per message.
    Headers,
}

fn wrong_protocol(endpoint: &Endpoint, detail: &str) -> Error {
    Error::Protocol {
        host: endpoint.host.clone(),
        protocol: endpoint.protocol,
        detail: detail.to_owned(),
    }
}

/// A message on the incoming server, named as its protocol names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageId {
    /// IMAP: the mailbox's UIDVALIDITY and the UID.
    Imap {
        /// The mailbox's UIDVALIDITY: the UID means nothing under another value. `None` when
        /// the server did not say (or said 0, which RFC 3501 does not allow): the UID is then
        /// good for this session only, may name another message in the next one, and
        /// [`Incoming::delete`] refuses it (threat model #43).
        uid_validity: Option<u32>,
        /// The UID.
        uid: u32,
    },
    /// POP3: the unique-id (UIDL), and the message number in this session.
    Pop3 {
        /// The UIDL, stable across sessions. `None` when the server has no UIDL (it is
        /// optional in RFC 1939): the message is then named by its number, good for this
        /// session only: the next one may give the number to another message.
        uidl: Option<String>,
        /// The number, valid in this session only.
        number: u32,
    },
}

impl MessageId {
    /// The id as people and state files write it: the UID, or the UIDL (the message number
    /// when the server has no UIDL).
    pub fn key(&self) -> String {
        match self {
            Self::Imap { uid, .. } => uid.to_string(),
            Self::Pop3 {
                uidl: Some(uidl), ..
            } => uidl.clone(),
            Self::Pop3 { number, .. } => number.to_string(),
        }
    }

    /// Whether the id names the same message in a later session: false for an IMAP UID
    /// without UIDVALIDITY and a POP3 message without UIDL.
    pub fn is_stable(&self) -> bool {
        match self {
            Self::Imap { uid_validity, .. } => uid_validity.is_some(),
            Self::Pop3 { uidl, .. } => uidl.is_some(),
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// One line of a message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// The id.
    pub id: MessageId,
    /// The size in octets, as the server counts it.
    pub size: Option<u64>,
    /// Date, From, Subject (when asked for).
    pub headers: HeaderSummary,
}

/// A logged-in incoming session, IMAP or POP3, behind one small API.
// One value per connection, held for its life: the IMAP variant being larger costs a few
// hundred bytes once, where a Box would cost an indirection on every call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Incoming<S = TcpStream> {
    /// IMAP.
    Imap {
        /// The session.
        session: ImapSession<S>,
        /// The mailbox listed last and its UIDVALIDITY (`None`: the server did not give a
        /// valid one, see [`MessageId::Imap`]).
        selected: Option<(String, Option<u32>)>,
    },
    /// POP3.
    Pop3 {
        /// The session.
        session: Pop3Session<S>,
        /// Message number → UIDL (`None`: the server has no UIDL) of what the last list kept:
        /// what may be fetched and deleted on this session. Shared with that [`Listing`], not
        /// a copy of it.
        numbers: Maildrop,
    },
}

/// A fetch begun with [`Incoming::fetch_start`]: the messages still to be read with
/// [`Incoming::fetch_next`].
#[derive(Debug)]
pub struct Fetching {
    ids: Vec<MessageId>,
    next: usize,
    retrieval: Option<crate::pop3::Retrieval>,
}

impl Fetching {
    /// How many messages are still to be read.
    pub fn remaining(&self) -> usize {
        self.ids.len() - self.next
    }
}

/// A sink that keeps its first error to itself: the session goes on reading the message (and
/// the next ones into their own sinks) as if it had been written, and the caller learns of the
/// failure from [`Guarded::error`].
struct Guarded<W> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W> Guarded<W> {
    fn new(inner: W) -> Self {
        Self { inner, error: None }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Guarded<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.error.is_some() {
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) => {
                this.error = Some(e);
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.error.is_some() {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) => {
                this.error = Some(e);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.error.is_some() {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Ready(Err(e)) => {
                this.error = Some(e);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// The Date/From/Subject of each of `numbers`, by `TOP n 0`, pipelined (a window of commands in
/// flight with PIPELINING). TOP is optional (RFC 1939 §7): a server that does not announce it
/// is asked once, and if it refuses, the list has no headers. A message it refuses alone (gone
/// meanwhile) has none either.
///
/// `top_refused` carries the refusal from one batch of a listing to the next: TOP is asked
/// once per listing, not once per batch.
async fn pop3_heads<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Pop3Session<S>,
    numbers: &[u32],
    top_refused: &mut bool,
) -> Result<Vec<HeaderSummary>, Error> {
    if *top_refused {
        return Ok(vec![HeaderSummary::default(); numbers.len()]);
    }
    let mut out = Vec::with_capacity(numbers.len());
    let mut rest = numbers;
    if !session.capabilities().has("TOP") {
        let Some((&first, after)) = numbers.split_first() else {
            return Ok(out);
        };
        let mut head = HeadSink::default();
        match session.top(first, 0, &mut head).await {
            Ok(_) => out.push(summarize(&head.0)),
            Err(Error::Rejected { reply, .. }) => {
                tracing::warn!("the server has no TOP ({reply}): the list shows no headers");
                *top_refused = true;
                return Ok(vec![HeaderSummary::default(); numbers.len()]);
            }
            Err(e) => return Err(e),
        }
        rest = after;
    }
    let mut tops = session.top_start(rest, 0).await?;
    loop {
        let mut head = HeadSink::default();
        match session.retrieve_next(&mut tops, &mut head).await? {
            None => break,
            Some(Ok(_)) => out.push(summarize(&head.0)),
            Some(Err(_)) => out.push(HeaderSummary::default()),
        }
    }
    Ok(out)
}

/// How much of a header section [`pop3_heads`] keeps: plenty for Date, From and Subject, and a
/// server that sends a gigabyte of header cannot make a list hold it.
const MAX_HEAD: usize = 256 * 1024;

/// A sink that keeps the first [`MAX_HEAD`] bytes written to it and drops the rest.
#[derive(Default)]
struct HeadSink(Vec<u8>);

impl AsyncWrite for HeadSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let room = MAX_HEAD.saturating_sub(this.0.len());
        this.0.extend_from_slice(&buf[..buf.len().min(room)]);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The fields a list shows.
const LIST_FIELDS: [&str; 3] = ["Date", "From", "Subject"];

/// How many messages the first batch of a listing holds: small, so the first lines of a huge
/// mailbox are out at once. Each later batch is twice as big, up to [`LIST_BATCH`].
const FIRST_LIST_BATCH: u64 = 500;

/// Most messages one IMAP `UID FETCH` of [`Incoming::list_next`] asks about: a mailbox of any
/// size is listed in batches, each well inside the session's per-command limits
/// ([`crate::imap::MAX_UNTAGGED_PER_COMMAND`]).
const LIST_BATCH: u64 = 20_000;

/// A listing begun with [`Incoming::list_start`]: which messages it covers (IMAP: their UIDs,
/// kept as ranges; POP3: numbers and UIDLs), to be read in batches of summaries with
/// [`Incoming::list_next`], oldest first.
#[derive(Debug, Clone)]
pub struct Listing {
    ids: ListedIds,
    /// How many messages the next batch takes.
    batch: u64,
}

#[derive(Debug, Clone)]
enum ListedIds {
    Imap {
        /// The UIDs not listed yet.
        uids: UidSet,
        uid_validity: Option<u32>,
    },
    Pop3 {
        /// The messages listed (number, UIDL, size), oldest first.
        messages: Maildrop,
        /// The first of `messages` not given by [`Incoming::list_next`] yet.
        next: usize,
        /// The server gave UIDLs (else messages are named by their numbers).
        by_uidl: bool,
        /// The server refused TOP (it has none): the other batches do not ask again.
        top_refused: bool,
    },
}

impl Listing {
    /// How many messages are still to be listed.
    pub fn len(&self) -> u64 {
        match &self.ids {
            ListedIds::Imap { uids, .. } => uids.len(),
            ListedIds::Pop3 { messages, next, .. } => (messages.len() - next) as u64,
        }
    }

    /// True when nothing is left to list.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// IMAP: the UIDs still to be listed, as ranges (`None` for POP3).
    pub fn uids(&self) -> Option<&UidSet> {
        match &self.ids {
            ListedIds::Imap { uids, .. } => Some(uids),
            ListedIds::Pop3 { .. } => None,
        }
    }

    /// IMAP: keeps only the UIDs also in `keep` (a fetch drops those fetched before without
    /// looking at each message). No effect on POP3.
    pub fn keep_uids(&mut self, keep: &UidSet) {
        if let ListedIds::Imap { uids, .. } = &mut self.ids {
            *uids = uids.intersection(keep);
        }
    }

    /// Keeps only the messages for which `keep` says yes.
    pub fn retain(&mut self, mut keep: impl FnMut(&MessageId) -> bool) {
        match &mut self.ids {
            ListedIds::Imap { uids, uid_validity } => {
                let uid_validity = *uid_validity;
                *uids = uids
                    .iter()
                    .filter(|&uid| keep(&MessageId::Imap { uid_validity, uid }))
                    .collect();
            }
            ListedIds::Pop3 { messages, next, .. } => {
                let kept: Vec<usize> = (*next..messages.len())
                    .filter(|&i| keep(&pop3_id(messages, i)))
                    .collect();
                if kept.len() < messages.len() - *next {
                    *messages = messages.subset(kept);
                    *next = 0;
                }
            }
        }
    }

    /// Every id still to be listed, oldest first, lazily.
    pub fn ids(&self) -> Box<dyn Iterator<Item = MessageId> + '_> {
        match &self.ids {
            ListedIds::Imap { uids, uid_validity } => {
                let uid_validity = *uid_validity;
                Box::new(
                    uids.iter()
                        .map(move |uid| MessageId::Imap { uid_validity, uid }),
                )
            }
            ListedIds::Pop3 { messages, next, .. } => {
                Box::new((*next..messages.len()).map(|i| pop3_id(messages, i)))
            }
        }
    }

    /// The key ([`MessageId::key`]) of every message still to be listed, oldest first, lazily:
    /// POP3 UIDLs borrowed from the listing, not a `String` apiece.
    pub fn keys(&self) -> Box<dyn Iterator<Item = Cow<'_, str>> + '_> {
        match &self.ids {
            ListedIds::Imap { uids, .. } => {
                Box::new(uids.iter().map(|uid| Cow::Owned(uid.to_string())))
            }
            ListedIds::Pop3 { messages, next, .. } => {
                Box::new((*next..messages.len()).map(|i| match messages.uidl(i) {
                    Some(uidl) => Cow::Borrowed(uidl),
                    None => Cow::Owned(messages.number(i).to_string()),
                }))
            }
        }
    }

    /// POP3: true when the server gave UIDLs (one without UIDL names messages by their
    /// numbers, good for this session only), whether or not any message was kept. True for
    /// IMAP.
    pub fn stable_ids(&self) -> bool {
        match &self.ids {
            ListedIds::Imap { .. } => true,
            ListedIds::Pop3 { by_uidl, .. } => *by_uidl,
        }
    }

    /// The message that `key` names as [`MessageId::key`] writes it (a UID in decimal, a UIDL),
    /// if it is in the listing.
    pub fn find(&self, key: &str) -> Option<MessageId> {
        match &self.ids {
            ListedIds::Imap { uids, uid_validity } => key
                .parse::<u32>()
                .ok()
                .filter(|uid| key == uid.to_string() && uids.contains(*uid))
                .map(|uid| MessageId::Imap {
                    uid_validity: *uid_validity,
                    uid,
                }),
            ListedIds::Pop3 { messages, next, .. } => (*next..messages.len())
                .find(|&i| match messages.uidl(i) {
                    Some(uidl) => uidl == key,
                    None => messages.number(i).to_string() == key,
                })
                .map(|i| pop3_id(messages, i)),
        }
    }

    /// The size of the next batch, and doubles the one after (up to [`LIST_BATCH`]).
    fn next_batch(&mut self) -> u64 {
        let n = self.batch;
        self.batch = (self.batch * 2).min(LIST_BATCH);
        n
    }
}

/// The id of entry `index` of a POP3 listing.
fn pop3_id(messages: &Maildrop, index: usize) -> MessageId {
    MessageId::Pop3 {
        uidl: messages.uidl(index).map(str::to_owned),
        number: messages.number(index),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Incoming<S> {
    /// The messages in `mailbox` (IMAP; `None` is INBOX; POP3 has only the one mailbox),
    /// oldest first. With [`ListDetail::Headers`], Date/From/Subject too (IMAP in the same
    /// FETCH; POP3 by `TOP n 0` per message). Collects [`Incoming::list_start`] and
    /// [`Incoming::list_next`]: for a large mailbox, use those to handle each batch as it
    /// arrives.
    ///
    /// IMAP: a mailbox without a valid UIDVALIDITY is listed, but its ids carry `None` and
    /// cannot be deleted (see [`MessageId::Imap`]).
    pub async fn list(
        &mut self,
        mailbox: Option<&str>,
        detail: ListDetail,
    ) -> Result<Vec<MessageSummary>, Error> {
        let mut listing = self.list_start(mailbox, None).await?;
        let mut out = Vec::new();
        while let Some(batch) = self.list_next(&mut listing, detail).await? {
            out.extend(batch);
        }
        Ok(out)
    }

    /// Starts listing `mailbox` (`None` is INBOX; POP3 has only the one), or only its `newest`
    /// messages: learns which messages there are, without a summary of any. IMAP: `EXAMINE`
    /// and one `UID SEARCH ALL` (ESEARCH when offered: a million consecutive UIDs arrive as
    /// one range, see [`ImapSession::uid_search_set`]). POP3: `UIDL` and `LIST`, read line by
    /// line into flat arrays ([`Maildrop`]), keeping only the newest `newest` while they stream
    /// (a ring: `list --limit 20` of a million messages holds a few dozen). Afterwards the
    /// messages can be fetched ([`Incoming::fetch`]) and deleted by their ids.
    pub async fn list_start(
        &mut self,
        mailbox: Option<&str>,
        newest: Option<u64>,
    ) -> Result<Listing, Error> {
        self.list_start_inner(mailbox, newest, None).await
    }

    /// [`Incoming::list_start`] of only the messages for which `keep` says yes, given each
    /// one's key as [`MessageId::key`] writes it (the UID in decimal, the UIDL, the number of a
    /// POP3 message without UIDL); then the `newest` of those. POP3 asks `keep` as each `UIDL`
    /// line arrives and holds nothing of what it refuses: a fetch that finds nothing new in a
    /// million messages holds none of them, and skips `LIST` altogether when nothing is kept.
    /// A message `keep` refused cannot be fetched or deleted on this session (POP3) or is only
    /// left out of the listing (IMAP, where [`Listing::keep_uids`] does the same on ranges,
    /// without a call per message).
    pub async fn list_start_filtered(
        &mut self,
        mailbox: Option<&str>,
        newest: Option<u64>,
        mut keep: impl FnMut(&str) -> bool + Send,
    ) -> Result<Listing, Error> {
        self.list_start_inner(mailbox, newest, Some(&mut keep))
            .await
    }

    async fn list_start_inner(
        &mut self,
        mailbox: Option<&str>,
        newest: Option<u64>,
        mut keep: Option<&mut (dyn FnMut(&str) -> bool + Send)>,
    ) -> Result<Listing, Error> {
        let ids = match self {
            Self::Imap { session, selected } => {
                let name = mailbox.unwrap_or("INBOX");
                let state = session.examine(&Mailbox::new(name)?).await?;
                // The session already reads UIDVALIDITY 0 as none.
                let uid_validity = state.uid_validity;
                *selected = Some((name.to_owned(), uid_validity));
                let mut uids = if state.exists == 0 {
                    UidSet::new()
                } else {
                    session
                        .uid_search_set(&SearchKey::All, state.exists)
                        .await?
                };
                if let Some(keep) = keep {
                    uids = uids.iter().filter(|uid| keep(&uid.to_string())).collect();
                }
                if let Some(n) = newest {
                    uids = uids.last(n);
                }
                ListedIds::Imap { uids, uid_validity }
            }
            Self::Pop3 { session, numbers } => {
                if mailbox.is_some_and(|m| !m.eq_ignore_ascii_case("INBOX")) {
                    return Err(Error::MissingExtension {
                        host: session.endpoint().host.clone(),
                        extension: "mailboxes",
                        needed_for: "reading a mailbox other than INBOX (POP3 has only one)",
                    });
                }
                // STAT first: the listings' limits scale with the count it gives.
                let count = session.stat().await?.count;
                let mut held = MaildropBuilder::new(newest);
                let uidl = session
                    .uidl_each(count, |line| {
                        // The parser accepts only printable ASCII.
                        let uidl = std::str::from_utf8(&line.unique_id).map_err(|_| {
                            DecodeError::Invalid {
                                offset: 0,
                                expected: "a unique-id of printable ASCII",
                            }
                        })?;
                        if keep.as_mut().is_none_or(|keep| keep(uidl)) {
                            held.push(line.msg, Some(uidl), None)?;
                        }
                        Ok(())
                    })
                    .await;
                let by_uidl = uidl.is_ok();
                match uidl {
                    // Sizes of what is held, looked up as LIST streams; with nothing held (a
                    // fetch with nothing new), no LIST at all.
                    Ok(()) if held.is_empty() => {}
                    Ok(()) => {
                        let mut hint = 0;
                        session
                            .list_each(count, |listing| {
                                held.set_size(listing.msg, listing.octets, &mut hint);
                                Ok(())
                            })
                            .await?;
                    }
                    // UIDL is optional (RFC 1939 §7): a server that neither lists it in CAPA
                    // nor accepts it is listed by message numbers (threat model #53).
                    Err(Error::Rejected { reply, .. }) if !session.capabilities().has("UIDL") => {
                        tracing::warn!(
                            "the server has no UIDL ({reply}): messages are named by their numbers, valid in this session only"
                        );
                        let mut key = String::new();
                        session
                            .list_each(count, |listing| {
                                key.clear();
                                let _ = write!(key, "{}", listing.msg);
                                if keep.as_mut().is_none_or(|keep| keep(&key)) {
                                    held.push(listing.msg, None, Some(listing.octets))?;
                                }
                                Ok(())
                            })
                            .await?;
                    }
                    Err(e) => return Err(e),
                }
                let messages = held.finish();
                // What may be fetched and deleted on this session is what was listed.
                *numbers = messages.clone();
                ListedIds::Pop3 {
                    messages,
                    next: 0,
                    by_uidl,
                    top_refused: false,
                }
            }
        };
        Ok(Listing {
            ids,
            batch: FIRST_LIST_BATCH,
        })
    }

    /// The next batch of `listing`'s summaries, oldest first (`None` once all were given):
    /// sizes, and with [`ListDetail::Headers`] Date/From/Subject too (IMAP in one `UID FETCH`
    /// per batch; POP3 by `TOP n 0` per message). The first batch is small so a caller can
    /// show it at once; later ones grow up to 20,000 messages. A message deleted meanwhile by
    /// another client is left out (IMAP).
    pub async fn list_next(
        &mut self,
        listing: &mut Listing,
        detail: ListDetail,
    ) -> Result<Option<Vec<MessageSummary>>, Error> {
        let headers = detail == ListDetail::Headers;
        if listing.is_empty() {
            return Ok(None);
        }
        let n = listing.next_batch();
        match (self, &mut listing.ids) {
            (Self::Imap { session, .. }, ListedIds::Imap { uids, uid_validity }) => {
                let batch = uids.first(n);
                *uids = uids.difference(&batch);
                let request = SummaryRequest {
                    envelope: false,
                    header_fields: if headers {
                        LIST_FIELDS.iter().map(|s| s.to_string()).collect()
                    } else {
                        Vec::new()
                    },
                };
                let mut summaries = Vec::new();
                if let Some(set) = batch.to_sequence_set() {
                    summaries = session.fetch_summaries(&set, &request).await?;
                }
                summaries.sort_by_key(|s| s.uid);
                summaries.dedup_by_key(|s| s.uid);
                let uid_validity = *uid_validity;
                Ok(Some(
                    summaries
                        .into_iter()
                        .map(|s| MessageSummary {
                            id: MessageId::Imap {
                                uid_validity,
                                uid: s.uid,
                            },
                            size: s.size,
                            headers: s.headers.as_deref().map(summarize).unwrap_or_default(),
                        })
                        .collect(),
                ))
            }
            (
                Self::Pop3 { session, .. },
                ListedIds::Pop3 {
                    messages,
                    next,
                    top_refused,
                    ..
                },
            ) => {
                let take = usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .min(messages.len() - *next);
                let batch = *next..*next + take;
                *next += take;
                let heads = if headers {
                    let in_order: Vec<u32> = batch.clone().map(|i| messages.number(i)).collect();
                    pop3_heads(session, &in_order, top_refused).await?
                } else {
                    vec![HeaderSummary::default(); take]
                };
                Ok(Some(
                    batch
                        .zip(heads)
                        .map(|(i, headers)| MessageSummary {
                            id: pop3_id(messages, i),
                            size: messages.size(i),
                            headers,
                        })
                        .collect(),
                ))
            }
            (incoming, _) => Err(misuse(
                incoming.endpoint(),
                "the listing belongs to the other protocol",
            )),
        }
    }

    /// Streams message `id` to `sink`, byte for byte. Returns its length. The id must come
    /// from [`Incoming::list`] on this session (an IMAP UIDVALIDITY that changed since is an
    /// error: the UID may name another message now).
    pub async fn fetch(
        &mut self,
        id: &MessageId,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        self.check_fetchable(id)?;
        match (self, id) {
            (Self::Imap { session, .. }, MessageId::Imap { uid, .. }) => {
                let host = session.endpoint().host.clone();
                session
                    .fetch_message(*uid, sink)
                    .await?
                    .ok_or_else(|| Error::MessageGone {
                        host,
                        id: uid.to_string(),
                    })
            }
            (Self::Pop3 { session, .. }, MessageId::Pop3 { number, .. }) => session
                .retrieve(*number, sink)
                .await
                .map_err(|e| pop3_gone(e, *number)),
            (incoming, _) => Err(misuse(
                incoming.endpoint(),
                "the id belongs to the other protocol",
            )),
        }
    }

    /// Streams several messages, each to its own sink, pipelined where the server allows: IMAP
    /// keeps a window of `UID FETCH` commands in flight ([`ImapSession::fetch_messages`]), POP3
    /// a window of `RETR` when the server announces PIPELINING (one at a time without). The ids
    /// are checked as [`Incoming::fetch`] checks them, all before anything is sent.
    ///
    /// The result has one entry per request, in order: the message's length, or why that one
    /// could not be had — [`Error::MessageGone`] for an IMAP UID no longer in the mailbox, the
    /// server's refusal for a POP3 `RETR`, [`Error::Io`] when its sink failed (the rest of
    /// that message is read and dropped, so the session stays in step and the other sinks get
    /// their messages whole: on a full disk, what arrived before it can still be kept). A
    /// failure of the connection ends the whole call with an error: then no entry can be
    /// trusted complete (a POP3 session is unusable then, and is dropped without QUIT).
    pub async fn fetch_many<W: AsyncWrite + Unpin>(
        &mut self,
        requests: &mut [(&MessageId, W)],
    ) -> Result<Vec<Result<u64, Error>>, Error> {
        for (id, _) in requests.iter() {
            self.check_fetchable(id)?;
        }
        match self {
            Self::Imap { session, .. } => {
                let host = session.endpoint().host.clone();
                let mut uids: Vec<(u32, Guarded<&mut W>)> = requests
                    .iter_mut()
                    .map(|(id, sink)| match id {
                        MessageId::Imap { uid, .. } => (*uid, Guarded::new(sink)),
                        MessageId::Pop3 { .. } => unreachable!("checked above"),
                    })
                    .collect();
                let lens = session.fetch_messages(&mut uids).await?;
                Ok(lens
                    .into_iter()
                    .zip(uids)
                    .map(|(len, (uid, sink))| match (sink.error, len) {
                        (Some(e), _) => Err(Error::Io(e)),
                        (None, Some(len)) => Ok(len),
                        (None, None) => Err(Error::MessageGone {
                            host: host.clone(),
                            id: uid.to_string(),
                        }),
                    })
                    .collect())
            }
            Self::Pop3 { .. } => {
                let ids: Vec<&MessageId> = requests.iter().map(|(id, _)| *id).collect();
                let mut pending = self.fetch_start(&ids).await?;
                let mut out = Vec::with_capacity(requests.len());
                for (_, sink) in requests.iter_mut() {
                    match self.fetch_next(&mut pending, sink).await? {
                        Some(result) => out.push(result),
                        None => break,
                    }
                }
                Ok(out)
            }
        }
    }

    /// Starts fetching `ids`, to be read one after the other, in order, with
    /// [`Incoming::fetch_next`], each into a sink the caller opens only then (so a caller can
    /// store each message before the next is even begun). POP3 sends a window of `RETR`
    /// commands ahead (with PIPELINING); IMAP fetches each one when it is asked for (use
    /// [`Incoming::fetch_many`] to pipeline IMAP). The ids are checked as [`Incoming::fetch`]
    /// checks them, all before anything is sent. Until every reply is read the session takes
    /// no other command.
    pub async fn fetch_start(&mut self, ids: &[&MessageId]) -> Result<Fetching, Error> {
        for id in ids {
            self.check_fetchable(id)?;
        }
        let ids: Vec<MessageId> = ids.iter().map(|id| (*id).clone()).collect();
        match self {
            Self::Imap { .. } => Ok(Fetching {
                ids,
                next: 0,
                retrieval: None,
            }),
            Self::Pop3 { session, .. } => {
                let numbers: Vec<u32> = ids
                    .iter()
                    .map(|id| match id {
                        MessageId::Pop3 { number, .. } => *number,
                        MessageId::Imap { .. } => unreachable!("checked above"),
                    })
                    .collect();
                let retrieval = session.retrieve_start(&numbers).await?;
                Ok(Fetching {
                    ids,
                    next: 0,
                    retrieval: Some(retrieval),
                })
            }
        }
    }

    /// The next message of `fetching` streamed into `sink`: `Some(Ok(length))`, `Some(Err(_))`
    /// for that message alone ([`Error::MessageGone`] when another client deleted it — for
    /// POP3, a refusal that says so —, another POP3 refusal, [`Error::Io`] when the sink
    /// failed: the rest of the message is read and dropped), `None` when all were read. An
    /// `Err` of the call itself (the connection) ends the fetch.
    pub async fn fetch_next(
        &mut self,
        fetching: &mut Fetching,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<Option<Result<u64, Error>>, Error> {
        let Some(id) = fetching.ids.get(fetching.next).cloned() else {
            return Ok(None);
        };
        fetching.next += 1;
        let mut sink = Guarded::new(sink);
        let result = match (self, fetching.retrieval.as_mut()) {
            (Self::Pop3 { session, .. }, Some(retrieval)) => {
                let number = match &id {
                    MessageId::Pop3 { number, .. } => *number,
                    MessageId::Imap { .. } => unreachable!("a POP3 retrieval holds POP3 ids"),
                };
                session
                    .retrieve_next(retrieval, &mut sink)
                    .await?
                    .map(|result| result.map_err(|e| pop3_gone(e, number)))
            }
            (incoming, _) => match incoming.fetch(&id, &mut sink).await {
                Err(e @ Error::MessageGone { .. }) => Some(Err(e)),
                Err(e) => return Err(e),
                Ok(n) => Some(Ok(n)),
            },
        };
        Ok(match sink.error {
            Some(e) => Some(Err(Error::Io(e))),
            None => result,
        })
    }

    /// Whether `id` can be fetched on this session: listed here, under the current UIDVALIDITY.
    fn check_fetchable(&self, id: &MessageId) -> Result<(), Error> {
        match (self, id) {
            (Self::Imap { session, selected }, MessageId::Imap { uid_validity, .. }) => {
                match selected {
                    Some((_, current)) if current == uid_validity => Ok(()),
                    _ => Err(stale(
                        session.endpoint(),
                        "the mailbox's UIDVALIDITY changed (or nothing was listed); list again",
                    )),
                }
            }
            (Self::Pop3 { session, numbers }, MessageId::Pop3 { uidl, number }) => {
                if !numbers.names(*number, uidl.as_deref()) {
                    return Err(misuse(
                        session.endpoint(),
                        "the message is not in this session's list; list again",
                    ));
                }
                Ok(())
            }
            (incoming, _) => Err(misuse(
                incoming.endpoint(),
                "the id belongs to the other protocol",
            )),
        }
    }

    /// Marks messages for deletion. IMAP: `\Deleted` and UID EXPUNGE now. POP3: DELE now,
    /// effective only when [`Incoming::close`] sends QUIT; dropping the session instead keeps
    /// them. Call only after the messages are durably stored.
    ///
    /// IMAP refuses, sending nothing, when the mailbox has no valid UIDVALIDITY: a UID then
    /// does not name one message for sure (a server may give a UID that once named a message
    /// already fetched to a new one), and deleting by it could delete mail never fetched
    /// (threat model #43).
    ///
    /// IMAP refuses too when SELECT opens the mailbox `[READ-ONLY]` (another session holds it):
    /// [`Error::MailboxReadOnly`], transient; the STORE would only be refused.
    pub async fn delete(&mut self, ids: &[MessageId]) -> Result<(), Error> {
        match self {
            Self::Imap { session, selected } => {
                if ids.is_empty() {
                    return Ok(());
                }
                let uid_validity = match selected {
                    Some((_, Some(v))) => *v,
                    Some((_, None)) => {
                        // threat model #43
                        return Err(stale(
                            session.endpoint(),
                            "the mailbox has no valid UIDVALIDITY, so a UID may name a \
                             message other than the one meant: nothing was deleted",
                        ));
                    }
                    None => {
                        return Err(misuse(
                            session.endpoint(),
                            "nothing was listed on this session: nothing was deleted",
                        ))
                    }
                };
                let uids: Vec<u32> = ids
                    .iter()
                    .filter_map(|id| match id {
                        MessageId::Imap {
                            uid_validity: Some(v),
                            uid,
                        } if *v == uid_validity => Some(*uid),
                        _ => None,
                    })
                    .collect();
                if uids.len() != ids.len() {
                    return Err(stale(
                        session.endpoint(),
                        "an id is from another mailbox or UIDVALIDITY: nothing was deleted",
                    ));
                }
                let Ok(set) = SequenceSet::from_numbers(uids) else {
                    return Ok(());
                };
                // Deleting needs the mailbox selected read-write (list used EXAMINE).
                if let Some((name, _)) = selected.clone() {
                    let state = session.select(&Mailbox::new(name.as_str())?).await?;
                    if state.read_only {
                        // STORE would be refused, some servers with a misleading "BAD".
                        return Err(Error::MailboxReadOnly {
                            host: session.endpoint().host.clone(),
                            mailbox: mailcat_codec::core::text::escape_bytes(name.as_bytes()),
                        });
                    }
                    if state.uid_validity != Some(uid_validity) {
                        return Err(stale(
                            session.endpoint(),
                            "UIDVALIDITY changed: nothing was deleted",
                        ));
                    }
                }
                session
                    .store_flags(
                        &set,
                        mailcat_codec::imap::command::StoreMode::Add,
                        &[mailcat_codec::imap::Flag::Deleted],
                    )
                    .await?;
                session.expunge(&set).await
            }
            Self::Pop3 { session, numbers } => {
                for id in ids {
                    let MessageId::Pop3 { uidl, number } = id else {
                        return Err(misuse(session.endpoint(), "an IMAP id given to POP3"));
                    };
                    if !numbers.names(*number, uidl.as_deref()) {
                        return Err(misuse(
                            session.endpoint(),
                            "the message is not in this session's list",
                        ));
                    }
                    session.dele(*number).await?;
                }
                Ok(())
            }
        }
    }

    /// Logs out (IMAP LOGOUT; POP3 QUIT, which commits deletions).
    pub async fn close(self) -> Result<(), Error> {
        match self {
            Self::Imap { session, .. } => session.logout().await,
            Self::Pop3 { session, .. } => session.quit().await,
        }
    }

    /// Ends the session without committing anything (POP3: no QUIT, so no DELE takes effect).
    pub async fn abort(self) {
        match self {
            Self::Imap { session, .. } => drop(session),
            Self::Pop3 { session, .. } => session.abort().await,
        }
    }

    /// The server.
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            Self::Imap { session, .. } => session.endpoint(),
            Self::Pop3 { session, .. } => session.endpoint(),
        }
    }
}

/// An id or listing the caller took from elsewhere (the other protocol, another session, no
/// listing at all): the caller's mistake; nothing is done.
fn misuse(endpoint: &Endpoint, what: &str) -> Error {
    Error::Misuse {
        host: endpoint.host.clone(),
        protocol: endpoint.protocol,
        what: what.to_owned(),
    }
}

/// A POP3 server's refusal of `RETR number` that says the message was deleted meanwhile, as
/// [`Error::MessageGone`]. POP3 has no expunge notice: a server without an exclusive maildrop
/// lock (Dovecot's default) answers `-ERR Message 2 expunged.` when another client deleted a
/// listed message, and that costs this one message, not the whole fetch. A refusal with a
/// response code (`[SYS/TEMP]`, `[IN-USE]` …) or other words stays what it is.
fn pop3_gone(error: Error, number: u32) -> Error {
    match error {
        Error::Rejected {
            host,
            reply: crate::Reply::Pop3(reply),
            ..
        } if reply.code.is_none() && says_gone(&reply.text) => Error::MessageGone {
            host,
            id: number.to_string(),
        },
        other => other,
    }
}

/// Whether a refusal's words say the message no longer exists.
fn says_gone(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "expunged",
        "no such message",
        "message deleted",
        "already deleted",
    ]
    .iter()
    .any(|words| text.contains(words))
}

/// An id that no longer names a message on this session: nothing is done.
fn stale(endpoint: &Endpoint, detail: &str) -> Error {
    Error::Protocol {
        host: endpoint.host.clone(),
        protocol: endpoint.protocol,
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential() -> Credential {
        Credential::password("alice", "pw")
    }

    // Endpoints no lookup can resolve: were any of these tried, the error would be a
    // connection error, not Misuse.
    fn imap() -> Endpoint {
        Endpoint::parse_url("imaps://imap.unresolvable.invalid").expect("URL")
    }

    fn smtp() -> Endpoint {
        Endpoint::parse_url("smtp://smtp.unresolvable.invalid:587").expect("URL")
    }

    fn misuse(result: Result<impl fmt::Debug, Error>, names: &str) {
        match result {
            Err(Error::Misuse { what, .. }) => assert!(what.contains(names), "{what}"),
            other => panic!("expected Error::Misuse naming {names}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_receive_only_account_builds_and_refuses_to_send_before_connecting() {
        let account = Account::builder("alice@example.com", credential())
            .incoming(imap())
            .build()
            .expect("an incoming server is enough");
        assert_eq!(account.incoming, Some(imap()));
        assert_eq!(account.outgoing, None);
        let envelope = Envelope {
            from: None,
            to: vec!["bob@example.com".parse().expect("address")],
            ..Envelope::default()
        };
        let info = MessageInfo::default();
        misuse(
            account
                .send(&envelope, &mut tokio::io::empty(), &info)
                .await,
            "AccountBuilder::outgoing",
        );
        misuse(account.send_session().await, "AccountBuilder::outgoing");
    }

    #[tokio::test]
    async fn a_send_only_account_builds_and_refuses_to_receive_before_connecting() {
        let account = Account::builder("alice@example.com", credential())
            .outgoing(smtp())
            .build()
            .expect("an outgoing server is enough");
        assert_eq!(account.incoming, None);
        misuse(
            account.receive().await.map(|_| ()),
            "AccountBuilder::incoming",
        );
    }

    #[test]
    fn an_account_without_any_server_is_refused() {
        misuse(
            Account::builder("alice@example.com", credential()).build(),
            "AccountBuilder::incoming",
        );
    }

    #[test]
    fn the_builder_sets_what_new_sets_and_more() {
        let built = Account::builder("alice@example.com", credential())
            .incoming(imap())
            .outgoing(smtp())
            .outgoing_credential(Credential::password("alice-smtp", "pw2"))
            .plaintext(Plaintext::DangerouslyAllow)
            .build()
            .expect("both servers");
        let new = Account::new("alice@example.com", credential(), imap(), smtp());
        assert_eq!(
            (built.incoming, built.outgoing),
            (new.incoming, new.outgoing)
        );
        assert_eq!(new.plaintext, Plaintext::Refuse);
        assert_eq!(built.plaintext, Plaintext::DangerouslyAllow);
        assert_eq!(
            built.outgoing_credential.expect("set").login(),
            "alice-smtp"
        );
    }
}
