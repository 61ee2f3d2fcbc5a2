//! Scripted servers shared by the session's tests.

pub mod imap_script;
pub mod pop3_script;
pub mod scram_server;
pub mod smtp_script;
