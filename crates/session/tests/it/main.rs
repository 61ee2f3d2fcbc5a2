//! The session's integration tests, in one test binary (each binary is a link of its own on a
//! small machine): a module per subject. The modules named `*_lab` run against the mail-server
//! lab (tests/lab/lab.sh) and are compiled only with the `lab` feature, which CI and
//! scripts/test-all.sh always turn on; without it, `cargo test` needs neither root nor the lab.

mod support;

mod autoconfig;
mod check_scripted;
mod imap_foreign;
mod imap_preauth;
mod imap_scripted;
mod oauth2_flows;
mod open;
mod pop3_big_maildrop;
mod pop3_scripted;
mod smtp_scripted;

#[cfg(feature = "lab")]
mod autoconfig_lab;
#[cfg(feature = "lab")]
mod check_lab;
#[cfg(feature = "lab")]
mod imap_lab;
#[cfg(feature = "lab")]
mod pop3_lab;
#[cfg(feature = "lab")]
mod smtp_lab;
#[cfg(feature = "lab")]
mod sync_lab;
