//! Authenticated mail sessions: receive over IMAP or POP3, send over SMTP, with one account and
//! one credential.
#![warn(missing_docs)]

mod account;
mod alert;
pub mod auth;
pub mod autoconfig;
pub mod check;
mod core;
mod credential;
mod driver;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
pub mod headers;
pub mod http;
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
pub mod utc;

pub use account::{
    Account, AccountBuilder, Fetching, Incoming, ListDetail, Listing, MessageId, MessageSummary,
};
pub use alert::AlertSink;
pub use auth::{Mechanism, Plaintext};
pub use credential::{
    Credential, CredentialKind, Secret, SecretCallback, SecretFuture, SecretSource,
};
pub use error::{refused_recipients, Error};
pub use imap::ImapSession;
pub use mailcat_transport::{ImapReply, Pop3Reply, Reply, SmtpReply};
pub use maildrop::Maildrop;
pub use open::{open, Capabilities, Greeting, MailConnection, Opened, StepReport};
pub use pop3::Pop3Session;
pub use smtp::SmtpSession;
