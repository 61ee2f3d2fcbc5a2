//! The transport's integration tests, in one test binary (each binary is a link of its own on a
//! small machine): a module per subject, sharing the certificates and the scripted server of
//! `support`.

mod support;

mod shared_tls;
mod streaming;
mod timeouts;
mod trace;
