//! Support code for the end-to-end tests: the mail-server lab, a proxy that plays network loss,
//! and a DNS server and an HTTPS server for autoconfiguration.

pub mod dns_server;
pub mod https_server;
pub mod lab;
pub mod proxy;
pub mod roundtrip;

/// The README's code blocks, compiled and run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
