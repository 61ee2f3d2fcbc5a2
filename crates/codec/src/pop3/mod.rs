//! POP3 (RFC 1939).

pub mod command;
