//! TCP and TLS for mail clients, driven by [`mailcat_codec`]: I/O only.
//!
//! - [`Endpoint`]: protocol, host, port and [`Security`] (implicit TLS, STARTTLS, or an
//!   explicitly dangerous plaintext).
//! - [`connect`]: resolve, try each address with its own timeout, TLS handshake; errors that say
//!   which step failed and what to do (a typo in the TLD, a TLS port spoken to in plaintext,
//!   a certificate for other names ...).
//! - [`Connection`]: one stream and one read buffer for its whole life; reads until the codec has
//!   a whole response, with a timeout on every read and write and a throughput floor for the
//!   responses to each command (a server that drips cannot hold the client).
//! - [`Connection::upgrade_to_tls`]: the mechanics of STARTTLS, refusing any byte buffered
//!   before the handshake. What is said on the wire (the greeting, the capabilities, the
//!   STARTTLS command and its answer) is the protocol cores' business, in `mailcat-session`:
//!   this crate is I/O only.
//! - [`sniff`]: a TLS record where a greeting was due, or a greeting where TLS was, recognised
//!   for diagnosis.
//! - [`trace`]: the `C:`/`S:` protocol trace, credentials always redacted.
//! - [`capture`]: the exact bytes each server sends, to files `mailcat decode` reads back.
#![warn(missing_docs)]

pub mod capture;
pub mod connect;
mod connection;
mod dns_hint;
mod endpoint;
mod error;
mod fingerprint;
mod reply;
mod same_domain;
pub mod sniff;
mod stream;
mod timeouts;
mod tls;
pub mod trace;

pub use connection::Connection;
pub use dns_hint::suggest as suggest_host;
pub use endpoint::{Endpoint, Protocol, Security, UrlError};
pub use error::{CertificateProblem, Error, Step, TooSlow, TrustHint};
pub use fingerprint::{Fingerprint, FingerprintError};
pub use reply::{ImapReply, Pop3Reply, Reply, SmtpReply};
pub use stream::MailStream;
pub use timeouts::Timeouts;
pub use tls::TlsSettings;
