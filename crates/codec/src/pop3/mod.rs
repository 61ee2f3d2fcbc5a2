//! POP3 (RFC 1939) responses, with extended response codes and CAPA (RFC 2449), STLS (RFC 2595)
//! and SASL (RFC 5034).
//!
//! Every reply starts with a status line, `+OK` or `-ERR`; some commands' `+OK` is followed by
//! a body ending with a `.` line, and the reply itself does not say so: the session tells the
//! [`Decoder`] what it expects before each reply ([`Expect`]). A connection reads through the
//! decoder with the [`crate::Decode`] contract.
//!
//! ```text
//!  connect ─▶ +OK greeting [<apop timestamp>]                        AUTHORIZATION
//!          ─▶ CAPA ─▶ +OK + lines + "."  ─▶ [STLS ─▶ +OK ─▶ TLS ─▶ CAPA again]
//!          ─▶ USER/PASS, APOP or AUTH (+ challenges) ─▶ +OK          TRANSACTION
//!          ─▶ STAT, LIST, UIDL, TOP, RETR (bodies), DELE, RSET, NOOP
//!          ─▶ QUIT ─▶ +OK                                             UPDATE (deletions happen)
//! ```

pub mod capability;
pub mod command;
pub mod decoder;
pub mod listing;
pub mod response;

pub use capability::{Capabilities, Capability, ExpirePolicy};
pub use decoder::{Body, Decoder, Event, Expect};
pub use listing::{ScanListing, Stat, UniqueIdListing};
pub use response::{ResponseCode, ResponseCodeKind, Status, StatusLine};
