//! IMAP (RFC 3501, RFC 9051).

pub mod command;
pub mod utf7;
