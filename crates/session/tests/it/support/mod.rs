//! Scripted servers shared by the session's tests.

pub(crate) mod case;
pub(crate) mod imap_script;
pub(crate) mod pop3_script;
pub(crate) mod scram_server;
pub(crate) mod smtp_script;
