//! SMTP (RFC 5321) replies and EHLO extensions, with enhanced status codes (RFC 3463), AUTH
//! (RFC 4954), PIPELINING (RFC 2920), STARTTLS (RFC 3207), SIZE (RFC 1870), 8BITMIME (RFC 6152),
//! SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030) and DSN (RFC 3461).
//!
//! Every server message is a [`Reply`]: the greeting, the answer to each command, the 334 SASL
//! challenges and the final reply after DATA. A connection reads them with a [`ReplyDecoder`]
//! (the [`crate::Decode`] contract), one per command (PIPELINING: one per command sent, in
//! order); [`parse_reply`] is the same for a single buffer.
//!
//! ```text
//!  connect ─▶ 220 greeting ─▶ EHLO ─▶ 250 extensions ─▶ [STARTTLS ─▶ 220 ─▶ TLS ─▶ EHLO ─▶ 250]
//!          ─▶ [AUTH ─▶ 334 ... ─▶ 235] ─▶ MAIL ─▶ 250 ─▶ RCPT ─▶ 250 ... ─▶ DATA ─▶ 354
//!          ─▶ dot-stuffed body (core::dot::DotStuffer) ─▶ 250 ─▶ QUIT ─▶ 221
//! ```
//! A 421 may come at any point (also as the greeting) and ends the session; a 554 greeting
//! means the server will not talk SMTP with this client.

pub mod address;
pub mod command;
pub mod extension;
pub mod reply;

pub use extension::{Extension, Extensions};
pub use reply::{end_of_input, parse_reply, EnhancedCode, Reply, ReplyCode, ReplyDecoder};
