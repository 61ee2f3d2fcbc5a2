#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

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

#[cfg(test)]
mod front_page {
    /// The top README's library section and this crate's front page are one text: an app
    /// developer reads the same thing on either, and both are doctested.
    #[test]
    fn is_the_readmes_library_section() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("## The engine as a library\n")
            .expect("README.md has its library section");
        let end = readme[start..]
            .find("\n## ")
            .map_or(readme.len(), |i| start + i + 1);
        let section = &readme[start + "## The engine as a library".len()..end];
        let page = include_str!("../README.md");
        let page = page
            .strip_prefix("# mailcat-session")
            .expect("the front page starts with its title");
        assert_eq!(
            page.trim_end(),
            section.trim_end(),
            "crates/session/README.md differs from README.md's \"The engine as a library\": copy one onto the other"
        );
    }
}
