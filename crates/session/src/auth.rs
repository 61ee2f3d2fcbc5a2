//! Choosing how to log in, and the SASL exchange itself, for the three protocols alike.
//!
//! - Passwords: SCRAM-SHA-256 (RFC 7677) > PLAIN (RFC 4616) > LOGIN; then the protocol's own
//!   plaintext command (IMAP `LOGIN` unless `LOGINDISABLED`, POP3 `USER`/`PASS`); CRAM-MD5
//!   (RFC 2195) only as the last resort and only over TLS: it proves nothing about the server
//!   and makes it store the password in clear, but some servers offer nothing else.
//! - OAuth2 tokens: XOAUTH2 (what Microsoft and Google document) > OAUTHBEARER (RFC 7628).
//! - A mechanism chosen for the credential ([`Credential::with_mechanism`], msmtp's `auth`,
//!   mutt's `imap_authenticators`) replaces that order: exactly that one, or an error naming it
//!   and what the server offers; never another (the user asked for this one, maybe to keep a
//!   weaker one from being used). Plaintext stays refused without TLS whatever is chosen.
//! - SASL-IR (RFC 4959) when offered; Microsoft's POP3 wants `AUTH XOAUTH2`, a `+ ` from the
//!   server, then the token on its own line: sessions pass `initial_response: false` there.
//! - Exactly one attempt with a given secret: no retry, no second mechanism after a refusal
//!   (account lockouts). A protocol session calls [`authenticate`] once.
//! - Each mechanism has a fixed number of steps; a server that challenges once more is
//!   cancelled (`*`) and refused, so endless challenge loops cannot happen (threat model #24).
//! - A success counts only once the mechanism's exchange is complete: PLAIN, XOAUTH2 and
//!   OAUTHBEARER after their one message was sent (as initial response or after the `+`), LOGIN
//!   after the user name *and* the password, SCRAM-SHA-256 after the server-final message was
//!   received and its signature verified. A success before that is a protocol error (a broken or
//!   hostile server), never a login: the same class as an IMAP `OK` where `+` was due
//!   (threat model #41). The sessions then refuse every further command.
//! - None of the three protocols carries SASL "additional data with success" (RFC 4422 §5): IMAP
//!   (RFC 9051 §6.2.2), POP3 (RFC 5034) and SMTP (RFC 4954 §4) servers send SCRAM's server-final
//!   message as one more challenge, which the client answers with an empty response.
//!
//! Each protocol session provides a [`SaslChannel`] that frames the exchange (`AUTHENTICATE` and
//! `+` for IMAP, `AUTH` and `+` for POP3, `AUTH` and `334` for SMTP).

use base64::Engine;
use mailcat_codec::core::sasl::{self, OAuthFailure};
use mailcat_codec::core::secret::Secret;
use mailcat_transport::{Endpoint, Protocol};

use crate::credential::CredentialKind;
use crate::{Credential, Error, Reply};

/// A SASL mechanism mailcat can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// SCRAM-SHA-256: the password never crosses the wire, and the server proves it knows it.
    ScramSha256,
    /// PLAIN: login and password in one message (over TLS).
    Plain,
    /// LOGIN: login, then password, each in answer to a prompt.
    Login,
    /// XOAUTH2: an OAuth2 bearer token (Google, Microsoft).
    XOAuth2,
    /// OAUTHBEARER: the standard form of the same (RFC 7628).
    OAuthBearer,
    /// CRAM-MD5 (RFC 2195): an HMAC-MD5 of the server's challenge keyed by the password. Only
    /// over TLS, and only when the server offers nothing better.
    CramMd5,
}

impl Mechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::XOAuth2 => "XOAUTH2",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::CramMd5 => "CRAM-MD5",
        }
    }

    /// Every mechanism mailcat has, for lists in messages.
    pub const ALL: [Self; 6] = [
        Self::ScramSha256,
        Self::Plain,
        Self::Login,
        Self::CramMd5,
        Self::XOAuth2,
        Self::OAuthBearer,
    ];

    /// The kind of secret the mechanism presents: a chosen mechanism must fit the credential.
    pub fn credential_kind(self) -> CredentialKind {
        match self {
            Self::ScramSha256 | Self::Plain | Self::Login | Self::CramMd5 => {
                CredentialKind::Password
            }
            Self::XOAuth2 | Self::OAuthBearer => CredentialKind::OAuth2Token,
        }
    }

    fn for_kind(kind: CredentialKind) -> &'static [Self] {
        match kind {
            CredentialKind::Password => &[Self::ScramSha256, Self::Plain, Self::Login],
            CredentialKind::OAuth2Token => &[Self::XOAuth2, Self::OAuthBearer],
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The SASL name in any case (`oauthbearer`, `SCRAM-SHA-256`), as configuration files give it.
impl std::str::FromStr for Mechanism {
    type Err = UnknownMechanism;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownMechanism {
                name: name.to_owned(),
            })
    }
}

/// A mechanism name mailcat does not have (DIGEST-MD5, GSSAPI, a typo).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown SASL mechanism {name:?}: mailcat has {} (in any case)",
    Mechanism::ALL.map(Mechanism::name).join(", ")
)]
pub struct UnknownMechanism {
    /// The name as given.
    pub name: String,
}

/// How a session will log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginMethod {
    /// A SASL mechanism (IMAP AUTHENTICATE, POP3 AUTH, SMTP AUTH).
    Sasl(Mechanism),
    /// The protocol's own password command: IMAP `LOGIN`, POP3 `USER`/`PASS`.
    PlainCommand,
}

impl LoginMethod {
    /// A name for messages.
    pub(crate) fn name(self, protocol: Protocol) -> &'static str {
        match (self, protocol) {
            (Self::Sasl(m), _) => m.name(),
            (Self::PlainCommand, Protocol::Imap) => "LOGIN command",
            (Self::PlainCommand, Protocol::Pop3) => "USER/PASS",
            (Self::PlainCommand, Protocol::Smtp) => "none",
        }
    }
}

/// What a server offers for logging in, as read from its capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    /// SASL mechanism names (any case).
    pub sasl: Vec<String>,
    /// The protocol's own password command is allowed (IMAP without `LOGINDISABLED`; POP3
    /// with `USER` in CAPA, or a server without CAPA).
    pub plain_command: bool,
    /// The connection is TLS-protected (CRAM-MD5 is used only then; the hints depend on it).
    pub tls: bool,
}

/// Picks the way in for a credential of `kind`: `chosen` when the credential names a
/// mechanism ([`Credential::mechanism`]), else the best one offered.
///
/// A chosen mechanism is used only when offered ([`Error::MechanismNotOffered`] otherwise, and
/// no other is tried) and only with a credential it fits ([`Error::MechanismUnfit`]). Chosen,
/// CRAM-MD5 is used without TLS too: the automatic choice avoids it there, but whether anything
/// is sent without TLS is the sessions' plaintext rule, which applies to every mechanism.
pub(crate) fn choose(
    offer: &Offer,
    kind: CredentialKind,
    chosen: Option<Mechanism>,
    endpoint: &Endpoint,
) -> Result<LoginMethod, Error> {
    let offered = |m: Mechanism| offer.sasl.iter().any(|s| s.eq_ignore_ascii_case(m.name()));
    if let Some(mechanism) = chosen {
        if mechanism.credential_kind() != kind {
            return Err(Error::MechanismUnfit { mechanism, kind });
        }
        if offered(mechanism) {
            return Ok(LoginMethod::Sasl(mechanism));
        }
        return Err(Error::MechanismNotOffered {
            host: endpoint.host.clone(),
            mechanism,
            offered: offered_names(offer, endpoint.protocol),
            hint: (offer.sasl.is_empty() && !offer.plain_command)
                .then(|| nothing_offered(endpoint.protocol, offer.tls).to_owned()),
        });
    }
    if let Some(&m) = Mechanism::for_kind(kind).iter().find(|&&m| offered(m)) {
        return Ok(LoginMethod::Sasl(m));
    }
    if kind == CredentialKind::Password
        && offer.plain_command
        && endpoint.protocol != Protocol::Smtp
    {
        return Ok(LoginMethod::PlainCommand);
    }
    if kind == CredentialKind::Password && offer.tls && offered(Mechanism::CramMd5) {
        return Ok(LoginMethod::Sasl(Mechanism::CramMd5));
    }
    let hint = match kind {
        CredentialKind::Password
            if offer.sasl.iter().any(|s| {
                s.eq_ignore_ascii_case("XOAUTH2") || s.eq_ignore_ascii_case("OAUTHBEARER")
            }) =>
        {
            Some(
                "this server takes OAuth2 tokens: sign in with OAuth2 instead of a password"
                    .to_owned(),
            )
        }
        CredentialKind::OAuth2Token if !offer.sasl.is_empty() || offer.plain_command => {
            Some("this server takes passwords, not OAuth2 tokens".to_owned())
        }
        CredentialKind::Password if offered(Mechanism::CramMd5) => Some(
            "mailcat uses CRAM-MD5 only over TLS: use the server's TLS port or STARTTLS".to_owned(),
        ),
        _ if offer.sasl.is_empty() && !offer.plain_command => {
            Some(nothing_offered(endpoint.protocol, offer.tls).to_owned())
        }
        _ => None,
    };
    Err(Error::NoUsableMechanism {
        host: endpoint.host.clone(),
        credential: match kind {
            CredentialKind::Password => "a password",
            CredentialKind::OAuth2Token => "an OAuth2 token",
        },
        offered: offered_names(offer, endpoint.protocol),
        hint,
    })
}

/// What a server offers, for messages: its SASL mechanisms, then its plain command.
fn offered_names(offer: &Offer, protocol: Protocol) -> Vec<String> {
    let mut offered = offer.sasl.clone();
    if offer.plain_command {
        offered.push(LoginMethod::PlainCommand.name(protocol).to_owned());
    }
    offered
}

/// Why a server may offer no login method at all, by protocol and by whether TLS is on.
fn nothing_offered(protocol: Protocol, tls: bool) -> &'static str {
    match (protocol, tls) {
        (Protocol::Imap, false) => {
            "the server allows no login without TLS (LOGINDISABLED): use imaps:// or STARTTLS"
        }
        (Protocol::Pop3, false) => "the server offers no login without TLS: use pop3s:// or STLS",
        (Protocol::Smtp, false) => "the server offers AUTH only over TLS: use smtps:// or STARTTLS",
        (Protocol::Imap, true) => {
            "the server refuses every login even over TLS (LOGINDISABLED): ask its administrator"
        }
        (Protocol::Pop3, true) => {
            "the server offers no login method even over TLS (neither SASL nor USER in CAPA): \
             ask its administrator"
        }
        (Protocol::Smtp, true) => {
            "the server announces no AUTH at all, even over TLS: it does not take logins on \
             this port (it may be a relay that needs none, or a port for incoming mail); ask \
             its administrator for the submission port"
        }
    }
}

/// A protocol session as the login preamble ([`login`]) sees it: what differs between IMAP,
/// POP3 and SMTP. Everything else about logging in is the preamble's.
#[allow(async_fn_in_trait)] // used through generics only
pub(crate) trait LoginSession {
    /// The server.
    fn login_endpoint(&self) -> &Endpoint;
    /// Fails when the session takes no more commands (poisoned, or the server ended it).
    fn login_usable(&self) -> Result<(), Error>;
    /// What the server offers for logging in, from its capabilities, and whether TLS is on.
    fn login_offer(&self) -> Offer;
    /// True once the session's one login attempt was spent.
    fn attempted(&self) -> bool;
    /// Spends the one attempt.
    fn spend_attempt(&mut self);
    /// Bytes sent on the connection so far ([`mailcat_transport::Connection::written`]).
    fn written(&self) -> u64;
    /// "Nothing unsolicited before a command", as the protocol applies it; fails when the
    /// session cannot go on.
    async fn before_login(&mut self) -> Result<(), Error>;
    /// The protocol's exchange: `method` with `credential`'s login and `secret`.
    async fn log_in(
        &mut self,
        method: LoginMethod,
        credential: &Credential,
        secret: Secret,
    ) -> Result<(), Error>;
}

/// The plaintext policy of a login: may a password or token go over a connection without TLS?
/// Two states on purpose, with the dangerous one spelled out at every call site (threat model
/// #20): a login over TLS is unaffected by either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plaintext {
    /// Without TLS nothing is sent: the login fails with [`Error::PlaintextAuthRefused`]
    /// before the secret is even fetched. The default.
    #[default]
    Refuse,
    /// Send the secret even without TLS, readable by anyone on the path. Only for test
    /// servers on loopback (the CLI's `--allow-plaintext`).
    DangerouslyAllow,
}

/// The login preamble, once for the three protocols: the rules every `login` follows before
/// its protocol's exchange ([`LoginSession::log_in`]).
///
/// 1. A session that takes no more commands sends nothing.
/// 2. One attempt per session (threat model #22): a second call after one that sent anything
///    fails with [`Error::AuthenticationAlreadyAttempted`], whatever the first one's outcome.
///    A refusal that sent nothing (plaintext refused, no usable mechanism, a secret that could
///    not be had or encoded) does not use the attempt up.
/// 3. The mechanism: [`choose`], with the one the credential names if it names one.
/// 4. The plaintext policy: without TLS nothing is sent unless
///    [`Plaintext::DangerouslyAllow`] (threat model #20), whatever the mechanism.
/// 5. The secret is fetched only then (a prompt, a command), and after it what the server sent
///    meanwhile is looked at (a prompt may outlast the server's patience: its goodbye must not
///    pass for the answer to the login).
pub(crate) async fn login<S: LoginSession>(
    session: &mut S,
    credential: &Credential,
    plaintext: Plaintext,
) -> Result<(), Error> {
    session.login_usable()?;
    let endpoint = session.login_endpoint().clone();
    if session.attempted() {
        return Err(Error::AuthenticationAlreadyAttempted {
            host: endpoint.host,
            login: credential.login().to_owned(),
        });
    }
    let offer = session.login_offer();
    let method = choose(&offer, credential.kind(), credential.mechanism(), &endpoint)?;
    if !offer.tls && plaintext == Plaintext::Refuse {
        return Err(Error::PlaintextAuthRefused {
            host: endpoint.host,
            login: credential.login().to_owned(),
        });
    }
    let secret = credential.secret().await?;
    session.before_login().await?;
    let written = session.written();
    let result = session.log_in(method, credential, secret).await;
    if result.is_ok() || session.written() != written {
        session.spend_attempt();
    }
    result
}

/// The server's answer to one step of a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaslReply {
    /// A challenge (already base64-decoded), to be answered.
    Challenge(Vec<u8>),
    /// Logged in.
    Success,
    /// Refused for good (wrong credentials ...); the server's reply.
    Failure(Reply),
    /// Refused for now (server busy, mailbox in use, login delay); the server's reply.
    Unavailable(Reply),
}

/// One protocol's framing of a SASL exchange.
#[allow(async_fn_in_trait)] // used through generics only; the futures need not be Send here
pub(crate) trait SaslChannel {
    /// Whether `mechanism` with this initial response fits on the command line. When it does
    /// not, the initial response goes as the answer to the server's first challenge instead
    /// (RFC 4954 §4, RFC 5034 §4). IMAP has no such limit.
    fn initial_response_fits(&self, mechanism: &str, initial: &[u8]) -> bool {
        let _ = (mechanism, initial);
        true
    }
    /// Starts the exchange: `AUTHENTICATE`/`AUTH` `mechanism` with an optional initial response.
    async fn start(&mut self, mechanism: &str, initial: Option<&[u8]>) -> Result<SaslReply, Error>;
    /// Answers a challenge. `secret` says the payload must not appear in the trace.
    async fn respond(&mut self, payload: &[u8], secret: bool) -> Result<SaslReply, Error>;
    /// Ends an exchange the client cannot complete (`*`); the server answers with a failure.
    async fn cancel(&mut self) -> Result<SaslReply, Error>;
    /// The exchange broke the protocol (a success before it was complete, a challenge too
    /// many, a forged SCRAM signature): the server may think the client is logged in and the
    /// command may still be open, so the session must take no further command (threat model
    /// #41). Called by [`authenticate`] with what went wrong.
    fn abandon(&mut self, reason: &str);
}

/// The line-based `AUTH` command of POP3 (RFC 5034) and SMTP (RFC 4954): `AUTH mechanism
/// [initial-response]`, one base64 line per answer, `*` to cancel. A protocol session provides
/// these three pieces and gets a [`SaslChannel`].
#[allow(async_fn_in_trait)] // used through generics only
pub(crate) trait AuthLines {
    /// The encoded `AUTH` line; `EncodeError::TooLong` when the initial response does not fit.
    fn auth_line(
        &self,
        mechanism: &str,
        initial: Option<&[u8]>,
    ) -> Result<Vec<u8>, mailcat_codec::EncodeError>;
    /// Writes one line.
    async fn write_line(
        &mut self,
        line: &[u8],
        redaction: mailcat_transport::trace::Redaction,
    ) -> Result<(), Error>;
    /// Reads the server's answer to a step.
    async fn sasl_reply(&mut self) -> Result<SaslReply, Error>;
    /// See [`SaslChannel::abandon`].
    fn abandon(&mut self, reason: &str);
}

impl<T: AuthLines> SaslChannel for T {
    fn initial_response_fits(&self, mechanism: &str, initial: &[u8]) -> bool {
        !matches!(
            self.auth_line(mechanism, Some(initial)),
            Err(mailcat_codec::EncodeError::TooLong { .. })
        )
    }

    async fn start(&mut self, mechanism: &str, initial: Option<&[u8]>) -> Result<SaslReply, Error> {
        // The trace redacts the AUTH line's arguments by itself. An initial response too long
        // for the line never gets here: the driver asks `initial_response_fits` first.
        let line = self.auth_line(mechanism, initial)?;
        self.write_line(&line, mailcat_transport::trace::Redaction::Normal)
            .await?;
        self.sasl_reply().await
    }

    async fn respond(&mut self, payload: &[u8], secret: bool) -> Result<SaslReply, Error> {
        use mailcat_transport::trace::Redaction;
        let mut line = base64(payload).into_bytes();
        line.extend_from_slice(b"\r\n");
        self.write_line(
            &line,
            if secret {
                Redaction::Secret
            } else {
                Redaction::Normal
            },
        )
        .await?;
        self.sasl_reply().await
    }

    async fn cancel(&mut self) -> Result<SaslReply, Error> {
        self.write_line(b"*\r\n", mailcat_transport::trace::Redaction::Normal)
            .await?;
        self.sasl_reply().await
    }

    fn abandon(&mut self, reason: &str) {
        AuthLines::abandon(self, reason);
    }
}

/// Runs one SASL exchange. `initial_response` says whether SASL-IR may be used.
///
/// `Ok` only when the mechanism's exchange is complete and the server said success; a success
/// any earlier is an [`Error::Protocol`] that says so.
pub(crate) async fn authenticate<C: SaslChannel>(
    channel: &mut C,
    mechanism: Mechanism,
    login: &str,
    secret: &Secret,
    initial_response: bool,
    endpoint: &Endpoint,
) -> Result<(), Error> {
    let result = exchange(
        channel,
        mechanism,
        login,
        secret,
        initial_response,
        endpoint,
    )
    .await;
    if let Err(Error::Protocol { detail, .. }) = &result {
        channel.abandon(detail);
    }
    result
}

/// The exchange itself, for [`authenticate`].
async fn exchange<C: SaslChannel>(
    channel: &mut C,
    mechanism: Mechanism,
    login: &str,
    secret: &Secret,
    initial_response: bool,
    endpoint: &Endpoint,
) -> Result<(), Error> {
    let context = Context {
        endpoint,
        login,
        mechanism,
    };
    match mechanism {
        Mechanism::Plain => {
            let payload = sasl::plain("", login, secret.expose())?;
            one_message(channel, &context, payload.as_bytes(), initial_response).await
        }
        Mechanism::Login => {
            let answers = [
                sasl::login_username(login)?,
                sasl::login_password(secret.expose())?,
            ];
            let mut reply = channel.start("LOGIN", None).await?;
            for (i, answer) in answers.iter().enumerate() {
                match reply {
                    SaslReply::Challenge(_) => {
                        reply = channel.respond(answer.as_bytes(), i == 1).await?;
                    }
                    SaslReply::Success => {
                        return Err(context.early_success(if i == 0 {
                            "before the user name was sent"
                        } else {
                            "after the user name, before the password was sent"
                        }))
                    }
                    other => return context.finish(other),
                }
            }
            context.finish(reply)
        }
        Mechanism::XOAuth2 | Mechanism::OAuthBearer => {
            let token = std::str::from_utf8(secret.expose()).map_err(|_| Error::Credential {
                what: "OAuth2 token",
                login: login.to_owned(),
                reason: "the token is not text".into(),
            })?;
            let payload = if mechanism == Mechanism::XOAuth2 {
                sasl::xoauth2(login, token)?
            } else {
                sasl::oauthbearer(login, &endpoint.host, endpoint.port, token)?
            };
            // Without an initial response (Microsoft's POP3, or a token too long for the SMTP
            // line): `AUTH XOAUTH2`, `+ `, then the token on its own line.
            let mut reply = first_message(
                channel,
                &context,
                payload.as_bytes(),
                initial_response,
                true,
            )
            .await?;
            if let SaslReply::Challenge(json) = reply {
                // The failure challenge: base64 JSON with the reason; acknowledge it to get the
                // final refusal, and report the decoded reason.
                let failure = OAuthFailure::from_challenge(&json);
                let ack: &[u8] = if mechanism == Mechanism::XOAuth2 {
                    b""
                } else {
                    sasl::OAUTHBEARER_FAILURE_ACK
                };
                reply = channel.respond(ack, false).await?;
                if !matches!(reply, SaslReply::Success) {
                    return Err(context.oauth_rejected(&failure));
                }
            }
            context.finish(reply)
        }
        Mechanism::ScramSha256 => {
            scram::exchange(channel, &context, secret, initial_response).await
        }
        Mechanism::CramMd5 => cram_md5(channel, &context, secret).await,
    }
}

/// CRAM-MD5 (RFC 2195): server-first, so no initial response; one challenge, one answer.
async fn cram_md5<C: SaslChannel>(
    channel: &mut C,
    context: &Context<'_>,
    secret: &Secret,
) -> Result<(), Error> {
    let challenge = match channel.start(Mechanism::CramMd5.name(), None).await? {
        SaslReply::Challenge(challenge) => challenge,
        SaslReply::Success => return Err(context.early_success("before the credentials were sent")),
        refusal => return context.finish(refusal),
    };
    let answer = sasl::cram_md5(context.login, secret.expose(), &challenge)?;
    let reply = channel.respond(answer.as_bytes(), true).await?;
    after_last_message(channel, context, reply).await
}

/// The end of a mechanism whose client has nothing more to say: a success or a refusal; a
/// further challenge is cancelled and is a protocol error.
async fn after_last_message<C: SaslChannel>(
    channel: &mut C,
    context: &Context<'_>,
    reply: SaslReply,
) -> Result<(), Error> {
    match reply {
        SaslReply::Challenge(_) => {
            let reply = channel.cancel().await?;
            context
                .finish(reply)
                .and(Err(context.protocol("a challenge after the last message")))
        }
        other => context.finish(other),
    }
}

/// Sends the client's first message: as the initial response when `initial_response` allows it
/// and it fits on the command line, else as the answer to the server's first challenge. Returns
/// the server's answer to that message, or its refusal before it; a success before the message
/// was sent is a protocol error. `secret` keeps the message out of the trace.
async fn first_message<C: SaslChannel>(
    channel: &mut C,
    context: &Context<'_>,
    message: &[u8],
    initial_response: bool,
    secret: bool,
) -> Result<SaslReply, Error> {
    let name = context.mechanism.name();
    if initial_response && channel.initial_response_fits(name, message) {
        return channel.start(name, Some(message)).await;
    }
    match channel.start(name, None).await? {
        // The challenge should be empty (these mechanisms are client-first); a few servers put
        // text there. Either way the server asks for the client's message.
        SaslReply::Challenge(_) => channel.respond(message, secret).await,
        SaslReply::Success => Err(context.early_success(
            if context.mechanism == Mechanism::ScramSha256 {
                "before the client's first message was sent"
            } else {
                "before the credentials were sent"
            },
        )),
        refusal => Ok(refusal),
    }
}

/// A single-message mechanism (PLAIN): as initial response, or after an empty challenge.
async fn one_message<C: SaslChannel>(
    channel: &mut C,
    context: &Context<'_>,
    payload: &[u8],
    initial_response: bool,
) -> Result<(), Error> {
    let reply = first_message(channel, context, payload, initial_response, true).await?;
    after_last_message(channel, context, reply).await
}

/// Who is logging in where, for error messages.
struct Context<'a> {
    endpoint: &'a Endpoint,
    login: &'a str,
    mechanism: Mechanism,
}

impl Context<'_> {
    fn finish(&self, reply: SaslReply) -> Result<(), Error> {
        match reply {
            SaslReply::Success => Ok(()),
            SaslReply::Failure(text) => Err(refusal(
                self.endpoint,
                self.login,
                self.mechanism.name(),
                CredentialKind::Password,
                text,
            )),
            SaslReply::Unavailable(text) => Err(Error::AuthenticationUnavailable {
                host: self.endpoint.host.clone(),
                login: self.login.to_owned(),
                reply: text,
            }),
            SaslReply::Challenge(_) => Err(self.protocol("more challenges than the mechanism has")),
        }
    }

    fn oauth_rejected(&self, failure: &OAuthFailure) -> Error {
        Error::OAuth2Rejected {
            host: self.endpoint.host.clone(),
            login: self.login.to_owned(),
            status: failure.status.clone().unwrap_or_else(|| "unknown".into()),
            scope: failure.scope.clone(),
        }
    }

    /// A success reply before the exchange was complete: the server claims the client is
    /// logged in when the mechanism says it cannot be (threat model #41's class).
    fn early_success(&self, when: &str) -> Error {
        self.protocol(&format!(
            "the server claimed success {when}: authentication had not finished, so this is a \
             broken or hostile server and the session is not logged in"
        ))
    }

    fn protocol(&self, detail: &str) -> Error {
        Error::Protocol {
            host: self.endpoint.host.clone(),
            protocol: self.endpoint.protocol,
            detail: format!("{} authentication: {detail}", self.mechanism.name()),
        }
    }
}

/// The error for a refused login, recognising "basic authentication is disabled" (Outlook.com:
/// `535 5.7.139 Authentication unsuccessful, basic authentication is disabled`, IMAP/POP3
/// `AUTHENTICATE failed.` after a password).
pub(crate) fn refusal(
    endpoint: &Endpoint,
    login: &str,
    mechanism: &'static str,
    kind: CredentialKind,
    reply: impl Into<Reply>,
) -> Error {
    let reply = reply.into();
    let lower = reply.to_string().to_ascii_lowercase();
    let basic_disabled = reply
        .enhanced_code()
        .is_some_and(|c| c.to_string() == "5.7.139")
        || lower.contains("5.7.139")
        || lower.contains("basic authentication is disabled");
    if kind == CredentialKind::Password
        && basic_disabled
        && mechanism != "XOAUTH2"
        && mechanism != "OAUTHBEARER"
    {
        return Error::BasicAuthDisabled {
            host: endpoint.host.clone(),
            login: login.to_owned(),
            reply,
        };
    }
    let microsoft = lower.contains("authenticate failed") || lower.contains("logondenied");
    let hint = if microsoft && kind == CredentialKind::Password {
        Some("check the password; Outlook.com and Microsoft 365 accept only OAuth2 since September 2024: sign in with OAuth2".to_owned())
    } else if kind == CredentialKind::Password {
        Some("check the login and password; some providers need an app password when two-step verification is on".to_owned())
    } else {
        None
    };
    Error::AuthenticationFailed {
        host: endpoint.host.clone(),
        login: login.to_owned(),
        mechanism,
        reply,
        hint,
    }
}

/// How long a goodbye after a failed login may take (LOGOUT or QUIT, its answer, TLS close).
pub(crate) const GOODBYE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// After a login that failed on a connection that still works (credentials refused, no usable
/// mechanism, the server busy, no secret at hand): `logout` (the session's LOGOUT or QUIT, then
/// TLS close_notify) within [`GOODBYE_TIMEOUT`], so the server logs an orderly end instead of a
/// dropped connection. Its outcome is not reported: the login's failure is. After a protocol
/// error nothing more is sent (the exchange may still be open, threat model #41), and a broken
/// connection is not waited on.
pub(crate) async fn goodbye_after_failed_login<F>(error: &Error, logout: F)
where
    F: std::future::Future<Output = Result<(), Error>>,
{
    let orderly = matches!(
        error,
        Error::AuthenticationFailed { .. }
            | Error::BasicAuthDisabled { .. }
            | Error::OAuth2Rejected { .. }
            | Error::NoUsableMechanism { .. }
            | Error::MechanismNotOffered { .. }
            | Error::MechanismUnfit { .. }
            | Error::PlaintextAuthRefused { .. }
            | Error::AuthenticationUnavailable { .. }
            | Error::Credential { .. }
    );
    if orderly {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, logout).await;
    }
}

/// Base64 for the wire, shared by the protocol sessions.
pub(crate) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

mod scram {
    //! SCRAM-SHA-256 (RFC 5802, RFC 7677), client side, without channel binding.

    use ring::rand::SecureRandom;
    use ring::{digest, hmac, pbkdf2};

    use super::{Context, SaslChannel, SaslReply};
    use crate::{Error, Secret};

    /// Iteration counts beyond this are refused: a hostile server could make the client burn
    /// minutes of CPU (RFC 7677 recommends 4096; real servers use 4096 to 100,000).
    const MAX_ITERATIONS: u32 = 1_000_000;

    pub(super) async fn exchange<C: SaslChannel>(
        channel: &mut C,
        context: &Context<'_>,
        password: &Secret,
        initial_response: bool,
    ) -> Result<(), Error> {
        let nonce =
            client_nonce().map_err(|_| context.protocol("no random numbers for the nonce"))?;
        run(channel, context, password, initial_response, &nonce).await
    }

    /// The exchange with a given client nonce (tests use RFC 7677's).
    pub(super) async fn run<C: SaslChannel>(
        channel: &mut C,
        context: &Context<'_>,
        password: &Secret,
        initial_response: bool,
        nonce: &str,
    ) -> Result<(), Error> {
        let first_bare = format!("n={},r={nonce}", saslname(context.login));
        let first = format!("n,,{first_bare}");
        let reply =
            super::first_message(channel, context, first.as_bytes(), initial_response, false)
                .await?;
        let server_first = match reply {
            SaslReply::Challenge(server_first) => server_first,
            SaslReply::Success => {
                return Err(context.early_success("before its server-first message"))
            }
            refusal => return context.finish(refusal),
        };
        let server_first = String::from_utf8(server_first)
            .map_err(|_| context.protocol("server-first-message is not text"))?;
        let (server_nonce, salt, iterations) =
            parse_server_first(&server_first, nonce).map_err(|d| context.protocol(d))?;
        let salt =
            base64_decode(&salt).ok_or_else(|| context.protocol("the salt is not base64"))?;
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.expose(),
            &mut salted,
        );
        let client_key = hmac_sign(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={server_nonce}");
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let signature = hmac_sign(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let client_final = format!("{without_proof},p={}", super::base64(&proof));
        let server_key = hmac_sign(&salted, b"Server Key");
        let expected = super::base64(&hmac_sign(&server_key, auth_message.as_bytes()));
        match channel.respond(client_final.as_bytes(), true).await? {
            SaslReply::Challenge(server_final) => {
                let server_final = String::from_utf8_lossy(&server_final).into_owned();
                if let Some(error) = server_final.strip_prefix("e=") {
                    let reply = channel.cancel().await?;
                    return context
                        .finish(reply)
                        .and(Err(context.protocol(&format!("server error {error}"))));
                }
                if server_final.strip_prefix("v=") != Some(expected.as_str()) {
                    // The server does not know the password: it is not who it claims to be.
                    let _ = channel.cancel().await;
                    return Err(context.protocol(
                        "the server's signature is wrong (it does not know the password)",
                    ));
                }
                // Verified: the empty response completes the exchange (the server-final came as
                // a challenge, as in IMAP, POP3 and SMTP it must).
                let reply = channel.respond(b"", false).await?;
                context.finish(reply)
            }
            // RFC 5802 §5: the client authenticates the server by the ServerSignature in the
            // server-final message. A success without one leaves the server unverified.
            SaslReply::Success => Err(context.early_success(
                "without a server-final message, so it never proved it knows the password \
                 (RFC 5802 §5)",
            )),
            refusal => context.finish(refusal),
        }
    }

    fn hmac_sign(key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
            .as_ref()
            .to_vec()
    }

    fn client_nonce() -> Result<String, ring::error::Unspecified> {
        let mut bytes = [0u8; 24];
        ring::rand::SystemRandom::new().fill(&mut bytes)?;
        Ok(super::base64(&bytes))
    }

    fn base64_decode(text: &str) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    }

    /// `saslname`: `,` and `=` escaped as `=2C` and `=3D`.
    pub(super) fn saslname(login: &str) -> String {
        login.replace('=', "=3D").replace(',', "=2C")
    }

    /// `r=<nonce>,s=<salt>,i=<iterations>`; the nonce must extend ours.
    pub(super) fn parse_server_first(
        message: &str,
        client_nonce: &str,
    ) -> Result<(String, String, std::num::NonZeroU32), &'static str> {
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for field in message.split(',') {
            match field.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("m", _)) => return Err("a mandatory extension it cannot know"),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("no nonce in server-first-message")?;
        if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
            return Err("the server's nonce does not extend the client's");
        }
        let iterations = iterations
            .filter(|&i| i <= MAX_ITERATIONS)
            .and_then(std::num::NonZeroU32::new)
            .ok_or("an iteration count that is missing, zero or above 1,000,000")?;
        Ok((
            nonce.to_owned(),
            salt.ok_or("no salt in server-first-message")?.to_owned(),
            iterations,
        ))
    }
}

#[cfg(test)]
mod tests;
