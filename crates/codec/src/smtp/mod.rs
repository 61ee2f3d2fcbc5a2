//! SMTP (RFC 5321).

pub mod address;
pub mod command;
