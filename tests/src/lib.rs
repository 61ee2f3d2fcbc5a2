//! Support code for the tests: one scripted server for every protocol test (`script`, in plain
//! text or TLS), the mail-server lab, a proxy that plays network loss, a DNS server and an
//! HTTPS server for autoconfiguration, a mock OAuth2 authorization server, the fault injection
//! of the fault run (`fault_run`), and a capture of what a test traces.

pub mod dns_server;
pub mod fault;
pub mod https_server;
pub mod lab;
pub mod oauth_server;
pub mod proxy;
pub mod roundtrip;
pub mod script;
pub mod trace_capture;

/// `assert!(matches!(value, pattern))` that shows the value it got when it fails (it lives in
/// the codec, whose own unit tests use it without depending on this crate).
pub use mailcat_codec::assert_matches;

/// The README's code blocks, compiled and run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
