//! Authenticated mail sessions: receive over IMAP or POP3, send over SMTP, with one account and
//! one credential.
#![warn(missing_docs, unreachable_pub, unnameable_types)]

mod account;
mod alert;
mod auth;
pub mod autoconfig;
pub mod check;
mod core;
mod credential;
mod driver;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
mod headers;
mod http;
pub mod imap;
mod maildrop;
pub mod message;
pub mod oauth2;
mod open;
pub mod pop3;
#[cfg(test)]
mod send_futures;
pub mod smtp;
pub mod store;
pub mod sync;
mod utc;

pub use account::{
    Account, AccountBuilder, Fetching, Incoming, ListDetail, Listing, MessageId, MessageSummary,
};
pub use alert::AlertSink;
pub use auth::{Mechanism, Offer, Plaintext, UnknownMechanism};
pub use credential::{
    Credential, CredentialKind, Secret, SecretCallback, SecretFuture, SecretSource,
};
pub use error::{refused_recipients, Error};
pub use imap::ImapSession;
pub use mailcat_transport::{ImapReply, Pop3Reply, Reply, SmtpReply};
// The transport types this crate's signatures use, so that an app depends on this crate only.
pub use mailcat_transport::{
    CertificateProblem, Endpoint, Error as TransportError, Fingerprint, FingerprintError, Protocol,
    Security, Step, Timeouts, TlsSettings, TooSlow, TrustHint, UrlError,
};
pub use maildrop::Maildrop;
pub use open::{open, Greeting, MailConnection, Opened, ServerCapabilities, StepReport};
pub use pop3::Pop3Session;
pub use smtp::SmtpSession;
