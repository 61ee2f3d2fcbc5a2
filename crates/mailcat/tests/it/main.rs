//! The CLI's integration tests, in one test binary (each binary is a link of its own on a small
//! machine): a module per subject, most of them running the `mailcat` program as a process. The
//! modules named `*_lab` run against the mail-server lab (tests/lab/lab.sh) and are compiled
//! only with the `lab` feature, which CI and scripts/test-all.sh always turn on; without it,
//! `cargo test` needs neither root nor the lab.

mod support;

mod autoconfig;
mod config_file;
mod decode_capture;
mod decode_imap;
mod decode_pop3;
mod decode_smtp;
mod decode_usage;
mod foreign_imap;
mod foreign_tls;
mod imap_scripted;
mod pop3_scripted;
mod send_scripted;
mod trace_secrets;
mod usage;

#[cfg(feature = "lab")]
mod big_mailbox_lab;
#[cfg(feature = "lab")]
mod check_lab;
#[cfg(feature = "lab")]
mod commands_lab;
#[cfg(feature = "lab")]
mod credential_lab;
#[cfg(feature = "lab")]
mod decode_capture_lab;
#[cfg(feature = "lab")]
mod fetch_lab;
#[cfg(feature = "lab")]
mod oauth2_lab;
#[cfg(feature = "lab")]
mod send_lab;
