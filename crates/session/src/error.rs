//! The session's errors: typed, with `is_transient()`, `is_auth()` and a hint for people.

use mailcat_transport::{Protocol, Reply};

use crate::autoconfig::providers;

/// A session failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting, TLS, reading or writing failed (see the transport error for the step).
    /// Converted with what the provider table knows (see [`From`]).
    #[error(transparent)]
    Transport(mailcat_transport::Error),

    /// The server refused the credentials.
    #[error(
        "{host} refused the login of {login} ({mechanism}): {reply}{}",
        hint_suffix(hint)
    )]
    AuthenticationFailed {
        /// The server.
        host: String,
        /// The login name.
        login: String,
        /// The mechanism or command used (`PLAIN`, `LOGIN command`, `USER/PASS` ...).
        mechanism: &'static str,
        /// The server's reply (see [`Error::reply`]).
        reply: Reply,
        /// What probably helps.
        hint: Option<String>,
    },

    /// The server refused a password because it accepts only OAuth2 for this account
    /// (Outlook.com since September 2024: `535 5.7.139`).
    #[error("{host} does not accept passwords for {login} (basic authentication is disabled: {reply}); sign in with OAuth2 instead")]
    BasicAuthDisabled {
        /// The server.
        host: String,
        /// The login name.
        login: String,
        /// The server's reply (see [`Error::reply`]).
        reply: Reply,
    },

    /// The OAuth2 sign-in could not give a token: none is stored, the provider refused to
    /// renew it, or its endpoints failed. [`crate::oauth2::OAuth2Error::needs_sign_in`] tells
    /// whether signing in again is the fix.
    #[error("OAuth2 sign-in of {login}: {source}")]
    OAuth2SignIn {
        /// The login name.
        login: String,
        /// What failed.
        #[source]
        source: crate::oauth2::OAuth2Error,
    },

    /// The server refused an OAuth2 token; its JSON reason, decoded.
    #[error("{host} refused the OAuth2 token for {login}: status {status}{}{}", scope.as_ref().map(|s| format!(", scope needed: {s}")).unwrap_or_default(), if status.starts_with("401") || status == "invalid_token" { "; the token is invalid or expired: get a fresh one" } else { "" })]
    OAuth2Rejected {
        /// The server.
        host: String,
        /// The login name.
        login: String,
        /// The `status` the server reported (`401`, `400`, `invalid_token` ...).
        status: String,
        /// The `scope` the server asks for, if it said.
        scope: Option<String>,
    },

    /// Logging in may work later: the server is busy, the mailbox is in use, a login delay.
    #[error("{host} cannot log {login} in right now: {reply}; try again later")]
    AuthenticationUnavailable {
        /// The server.
        host: String,
        /// The login name.
        login: String,
        /// The server's reply (see [`Error::reply`]).
        reply: Reply,
    },

    /// `login` was called a second time on one session. One attempt per connection with a
    /// given secret (account lockouts): open a new session to try again.
    #[error("a login of {login} to {host} was already attempted on this session; open a new session to try again")]
    AuthenticationAlreadyAttempted {
        /// The server.
        host: String,
        /// The login name.
        login: String,
    },

    /// No way to log in with this kind of credential is offered.
    #[error("{host} offers no way to log in with {credential} (it offers: {}){}", if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") }, hint_suffix(hint))]
    NoUsableMechanism {
        /// The server.
        host: String,
        /// "a password" or "an OAuth2 token".
        credential: &'static str,
        /// What the server offered.
        offered: Vec<String>,
        /// What probably helps.
        hint: Option<String>,
    },

    /// The mechanism chosen for the credential is not among those the server offers. No other
    /// is tried: the choice was the user's (as msmtp's `auth`), perhaps to keep a weaker one
    /// from being used.
    #[error("{host} does not offer {mechanism}, the login mechanism asked for (it offers: {}); no other is tried: ask for one it offers, or let mailcat choose{}", if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") }, hint_suffix(hint))]
    MechanismNotOffered {
        /// The server.
        host: String,
        /// The mechanism asked for.
        mechanism: crate::auth::Mechanism,
        /// What the server offered (its SASL mechanisms, and its plain command).
        offered: Vec<String>,
        /// What probably helps (when the server offers nothing at all).
        hint: Option<String>,
    },

    /// The mechanism chosen cannot present this kind of credential (PLAIN with an OAuth2 token,
    /// XOAUTH2 with a password). Found before connecting, by [`Credential::with_mechanism`].
    ///
    /// [`Credential::with_mechanism`]: crate::Credential::with_mechanism
    #[error("{mechanism} cannot log in with {} {}: it takes {} {}", article(kind.describe()), kind.describe(), article(mechanism.credential_kind().describe()), mechanism.credential_kind().describe())]
    MechanismUnfit {
        /// The mechanism asked for.
        mechanism: crate::auth::Mechanism,
        /// The kind of credential at hand.
        kind: crate::CredentialKind,
    },

    /// A password would travel in clear text and that was not explicitly allowed.
    #[error("refusing to send the password for {login} to {host} without TLS; use imaps://, pop3s://, smtps:// or STARTTLS")]
    PlaintextAuthRefused {
        /// The server.
        host: String,
        /// The login name.
        login: String,
    },

    /// The password or token could not be obtained (the command failed, the callback erred).
    #[error("cannot get the {what} for {login}: {reason}")]
    Credential {
        /// "password" or "OAuth2 token".
        what: &'static str,
        /// The login name.
        login: String,
        /// What went wrong.
        reason: String,
    },

    /// The server refused a command, for now (IMAP NO with a temporary code, POP3 `[SYS/TEMP]`,
    /// SMTP 4xx).
    #[error("{host} temporarily refused {command}: {}", refusal_words(reply))]
    Temporary {
        /// The server.
        host: String,
        /// The command.
        command: String,
        /// The server's reply (see [`Error::reply`]).
        reply: Reply,
    },

    /// The server refused a command for good (IMAP NO/BAD, POP3 `-ERR`, SMTP 5xx).
    #[error("{host} refused {command}: {}", refusal_words(reply))]
    Rejected {
        /// The server.
        host: String,
        /// The command.
        command: String,
        /// The server's reply (see [`Error::reply`]).
        reply: Reply,
    },

    /// The message is no longer on the server: another client deleted it after it was listed.
    #[error("{host} no longer has message {id}: another client deleted it after it was listed")]
    MessageGone {
        /// The server.
        host: String,
        /// The message, as `list` shows it.
        id: String,
    },

    /// The mailbox opened read-only where messages were to be deleted (IMAP `[READ-ONLY]` on
    /// SELECT: another session may hold it, or the user may not delete there). Nothing was
    /// deleted; what was stored stays recorded, so a later run deletes it.
    #[error("{host} opened {mailbox} read-only (another session may be holding it): nothing was deleted; run again later to delete what was fetched")]
    MailboxReadOnly {
        /// The server.
        host: String,
        /// The mailbox, escaped.
        mailbox: String,
    },

    /// The server ended the session (IMAP BYE, SMTP 421).
    #[error("{host} closed the session: {reply}")]
    Closed {
        /// The server.
        host: String,
        /// The server's goodbye (see [`Error::reply`]).
        reply: Reply,
    },

    /// The server broke the protocol in a way the codec could not see (a reply to the wrong
    /// command, an unexpected continuation, a SCRAM signature that does not match ...).
    #[error("{host} ({protocol}) did not follow the protocol: {detail}")]
    Protocol {
        /// The server.
        host: String,
        /// The protocol.
        protocol: Protocol,
        /// What was wrong.
        detail: String,
    },

    /// The application called the session in a way its rules forbid now: a command while
    /// replies are still unread, a retrieval still pending, a session left busy by a call that
    /// was dropped halfway. The caller's mistake, neither the server's nor the network's: the
    /// session says what to do instead, and may be poisoned as before.
    #[error("the {protocol} session with {host} was used out of turn: {what}")]
    Misuse {
        /// The server.
        host: String,
        /// The protocol.
        protocol: Protocol,
        /// What was wrong, and what to do instead.
        what: String,
    },

    /// A message is larger than the server accepts (its SMTP SIZE).
    #[error("the message is {size} bytes; {host} accepts at most {limit}")]
    MessageTooLarge {
        /// The server.
        host: String,
        /// The message size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },

    /// The server lacks an extension the operation needs (SMTPUTF8 for a UTF-8 address ...).
    #[error("{host} does not support {extension}, which {needed_for} needs")]
    MissingExtension {
        /// The server.
        host: String,
        /// The extension.
        extension: &'static str,
        /// What needs it.
        needed_for: &'static str,
    },

    /// SMTP: the server refused some or all recipients, and the message was not sent (RSET);
    /// with partial sending allowed, only when it refused them all.
    #[error("{host} refused {}, so the message was not sent: {}", refused_recipients(refused.len(), refused.len() + accepted.len()), refused.iter().map(|(a, r)| format!("<{a}>: {r}")).collect::<Vec<_>>().join("; "))]
    RecipientsRefused {
        /// The server.
        host: String,
        /// Each refused recipient with the server's reply (code, enhanced code, text).
        refused: Vec<(String, mailcat_transport::SmtpReply)>,
        /// The recipients the server accepted.
        accepted: Vec<String>,
        /// Every refusal was temporary (4xx): the same send may work later.
        transient: bool,
    },

    /// SMTP: the connection broke after the whole message was sent but before the server's
    /// final reply. The server may or may not have accepted it: sending it again may deliver
    /// it twice (RFC 5321 §4.1.1.4).
    #[error("the outcome of sending to {host} is unknown: {reason}; the message may have been accepted, so sending it again may deliver it twice")]
    DeliveryUnknown {
        /// The server.
        host: String,
        /// What broke.
        reason: String,
    },

    /// A value could not be put into a command (a CR/LF in a mailbox name ...).
    #[error(transparent)]
    Encode(#[from] mailcat_codec::EncodeError),

    /// The message to send has a header section the library cannot take (over 1 MiB):
    /// nothing was sent.
    #[error("{0}")]
    MessageHeader(crate::message::HeaderError),

    /// Reading the message or writing where it goes failed (local I/O).
    #[error("local I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the same operation may work later (network trouble, timeouts, 4xx, busy).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_transient(),
            Self::AuthenticationUnavailable { .. }
            | Self::Temporary { .. }
            | Self::MailboxReadOnly { .. }
            | Self::Closed { .. } => true,
            Self::RecipientsRefused { transient, .. } => *transient,
            Self::OAuth2SignIn { source, .. } => source.is_temporary(),
            _ => false,
        }
    }

    /// True when the settings are wrong (the URL's scheme or port does not match the server, a
    /// CA file cannot be used, a login mechanism was chosen that the server does not offer or
    /// the credential cannot use): trying again later will not help; the configuration must
    /// change.
    pub fn is_config(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_config(),
            Self::OAuth2SignIn { source, .. } => source.is_config(),
            Self::MechanismNotOffered { .. } | Self::MechanismUnfit { .. } => true,
            _ => false,
        }
    }

    /// True when the credentials were refused or cannot be used (exit code 77 in the CLI).
    /// A server that offers no login method mailcat can use ([`Error::NoUsableMechanism`]) is
    /// not: the credentials were never tried.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Self::AuthenticationFailed { .. }
                | Self::BasicAuthDisabled { .. }
                | Self::OAuth2Rejected { .. }
                | Self::PlaintextAuthRefused { .. }
                | Self::Credential { .. }
        ) || matches!(self, Self::OAuth2SignIn { source, .. } if source.needs_sign_in())
    }

    /// True when a server refused a login in a way an expired or revoked OAuth2 token
    /// explains: a fresh token is worth one more attempt.
    pub fn is_token_refusal(&self) -> bool {
        matches!(
            self,
            Self::OAuth2Rejected { .. } | Self::AuthenticationFailed { .. }
        )
    }

    /// The server's reply the error carries, typed: match on its codes rather than on the
    /// message (`err.reply().and_then(Reply::smtp_code) == Some(550)`, POP3
    /// [`Reply::pop3_code_kind`], IMAP [`Reply::imap_code`]). For a refusal of the opening
    /// ([`mailcat_transport::Error::Refused`]) too. Not for [`Error::RecipientsRefused`],
    /// which holds one reply per recipient.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::AuthenticationFailed { reply, .. }
            | Self::BasicAuthDisabled { reply, .. }
            | Self::AuthenticationUnavailable { reply, .. }
            | Self::Temporary { reply, .. }
            | Self::Rejected { reply, .. }
            | Self::Closed { reply, .. } => Some(reply),
            Self::Transport(error) => error.reply(),
            _ => None,
        }
    }

    /// True when the application misused the session ([`Error::Misuse`]).
    pub fn is_misuse(&self) -> bool {
        matches!(self, Self::Misuse { .. })
    }

    /// A short suggestion of what to do, when there is one beyond the message itself.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::AuthenticationFailed { hint, .. } | Self::NoUsableMechanism { hint, .. } => {
                hint.clone()
            }
            Self::BasicAuthDisabled { .. } => {
                Some("the account needs an OAuth2 sign-in instead of a password".into())
            }
            Self::DeliveryUnknown { .. } => Some(
                "check whether the message arrived (the Sent folder, a recipient) before sending it again".into(),
            ),
            // The other TLS errors say what to do in their own words (the CA, the port); a
            // server that aborted the handshake is the server's problem.
            Self::Transport(mailcat_transport::Error::Tls { .. }) => {
                Some("check the URL's scheme and port".into())
            }
            Self::Transport(mailcat_transport::Error::HostNotFound {
                host,
                hint: Some(today),
            }) => {
                let typo_fixed = mailcat_transport::suggest_host(host)?;
                let (provider, true) = providers::by_host(&typo_fixed)? else {
                    return None;
                };
                Some(format!(
                    "{typo_fixed} is an old name of {}'s servers; today's is {today}",
                    provider.name
                ))
            }
            Self::MechanismNotOffered { hint, .. } => hint.clone(),
            _ => None,
        }
    }

    /// How the user could trust a refused certificate, if that is the user's call (their own
    /// server's self-signed certificate or private CA), for the application to word.
    pub fn trust_hint(&self) -> Option<mailcat_transport::TrustHint> {
        match self {
            Self::Transport(e) => e.trust_hint(),
            _ => None,
        }
    }
}

/// A transport error, with what the provider table knows added: a typo's correction that is
/// itself a retired name becomes today's name; a provider's own server that DNS cannot find
/// means no network rather than a misspelling; a certificate for another name of the same
/// provider is that provider's server.
impl From<mailcat_transport::Error> for Error {
    fn from(error: mailcat_transport::Error) -> Self {
        use mailcat_transport::{CertificateProblem, Error as T};
        Self::Transport(match error {
            T::HostNotFound {
                host,
                hint: Some(fixed),
            } => T::HostNotFound {
                hint: Some(todays_host(&fixed).unwrap_or(fixed)),
                host,
            },
            T::HostNotFound { host, hint: None } => match providers::by_host(&host) {
                Some((provider, _)) => T::Resolve {
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "DNS found no such name, yet it is one of {}'s servers, so the \
                             name is right and this machine is probably offline or its DNS \
                             is not working",
                            provider.name
                        ),
                    ),
                    host,
                },
                None => T::HostNotFound { host, hint: None },
            },
            T::Certificate {
                host,
                problem:
                    CertificateProblem::NameMismatch {
                        valid_for,
                        respelling: None,
                    },
            } => T::Certificate {
                problem: CertificateProblem::NameMismatch {
                    respelling: same_provider(&host, &valid_for),
                    valid_for,
                },
                host,
            },
            other => other,
        })
    }
}

/// Today's name for a provider's retired host name: the provider's first outgoing server for
/// a retired SMTP name, else its first incoming server.
fn todays_host(host: &str) -> Option<String> {
    let (provider, true) = providers::by_host(host)? else {
        return None;
    };
    let servers = if host.to_ascii_lowercase().contains("smtp") {
        provider.outgoing()
    } else {
        provider.incoming()
    };
    servers.into_iter().next().map(|e| e.host)
}

/// The first of a certificate's names that belongs to the same provider as `host`, when both
/// are in the provider table.
fn same_provider(host: &str, names: &[String]) -> Option<String> {
    let (provider, _) = providers::by_host(host)?;
    names
        .iter()
        .find(|name| providers::by_host(name).is_some_and(|(other, _)| other.name == provider.name))
        .cloned()
}

/// How many of the recipients were refused, in words: "the only recipient", "both recipients",
/// "all 3 recipients", "1 of 2 recipients".
pub fn refused_recipients(refused: usize, total: usize) -> String {
    match (refused, total) {
        (1, 1) => "the only recipient".to_owned(),
        (2, 2) => "both recipients".to_owned(),
        (r, t) if r == t => format!("all {t} recipients"),
        (r, t) => format!("{r} of {t} recipients"),
    }
}

/// "a" or "an" before a word, for messages.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// A refusal's reply as the messages show it: IMAP's with its status (`NO text`), the others
/// as they render.
fn refusal_words(reply: &Reply) -> String {
    match reply {
        Reply::Imap(_) => reply.with_status(),
        other => other.to_string(),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailcat_transport::CertificateProblem;

    #[test]
    fn a_tls_error_gets_the_generic_hint_only_without_advice_of_its_own() {
        let certificate = Error::Transport(mailcat_transport::Error::Certificate {
            host: "mail.example".into(),
            problem: CertificateProblem::UnknownIssuer { fingerprint: None },
        });
        assert!(
            certificate.to_string().contains("trust its CA"),
            "{certificate}"
        );
        assert_eq!(certificate.hint(), None);
        assert_eq!(
            certificate.trust_hint(),
            Some(mailcat_transport::TrustHint::TrustCa)
        );
        let handshake = Error::Transport(mailcat_transport::Error::Tls {
            host: "mail.example".into(),
            source: rustls::Error::HandshakeNotComplete,
        });
        // A library names no CLI option.
        let hint = handshake.hint().expect("a hint");
        assert!(
            hint.contains("scheme and port") && !hint.contains("--"),
            "{hint}"
        );
    }

    #[test]
    fn a_typo_of_a_retired_name_suggests_todays_name_at_once() {
        let error = Error::from(mailcat_transport::Error::HostNotFound {
            host: "pop3.live.vom".into(),
            hint: mailcat_transport::suggest_host("pop3.live.vom"),
        });
        let text = error.to_string();
        assert!(
            text.contains("did you mean outlook.office365.com?"),
            "{text}"
        );
        assert!(!text.contains("pop3.live.com"), "{text}");
        let hint = error.hint().expect("why not pop3.live.com");
        assert!(hint.contains("pop3.live.com is an old name"), "{hint}");
        let smtp = Error::from(mailcat_transport::Error::HostNotFound {
            host: "smtp.live.vom".into(),
            hint: mailcat_transport::suggest_host("smtp.live.vom"),
        });
        assert!(smtp.to_string().contains("smtp-mail.outlook.com"), "{smtp}");
        // A typo of a name nobody retired is corrected as it is.
        let other = Error::from(mailcat_transport::Error::HostNotFound {
            host: "mail.example.vom".into(),
            hint: mailcat_transport::suggest_host("mail.example.vom"),
        });
        assert!(other.to_string().contains("did you mean mail.example.com?"));
        assert_eq!(other.hint(), None);
    }

    #[test]
    fn a_known_providers_server_not_in_dns_means_offline_not_a_typo() {
        let error = Error::from(mailcat_transport::Error::HostNotFound {
            host: "outlook.office365.com".into(),
            hint: None,
        });
        let text = error.to_string();
        assert!(!text.contains("spelling"), "{text}");
        assert!(text.contains("offline"), "{text}");
        assert!(text.contains("check the network connection"), "{text}");
        assert!(error.is_transient(), "offline: trying later may work");
        // Not for a host mailcat knows nothing about.
        let unknown = Error::from(mailcat_transport::Error::HostNotFound {
            host: "mail.example.com".into(),
            hint: None,
        });
        assert!(
            unknown.to_string().contains("check the spelling"),
            "{unknown}"
        );
    }

    #[test]
    fn a_certificate_for_another_name_of_the_same_provider_is_that_provider() {
        let mismatch = |host: &str, name: &str| {
            Error::from(mailcat_transport::Error::Certificate {
                host: host.into(),
                problem: CertificateProblem::NameMismatch {
                    valid_for: vec![name.into()],
                    respelling: None,
                },
            })
            .to_string()
        };
        let known = mismatch("imap-mail.outlook.com", "outlook.office365.com");
        assert!(known.contains("use that name instead"), "{known}");
        // A provider's host typed, another's name presented: a possible attack.
        let foreign = mismatch("imap.gmail.com", "outlook.office365.com");
        assert!(foreign.contains("may be an attack"), "{foreign}");
        let attacker = mismatch("imap.gmail.com", "mail.attacker.example");
        assert!(attacker.contains("may be an attack"), "{attacker}");
    }
}
