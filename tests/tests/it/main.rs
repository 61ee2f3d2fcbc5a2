//! The end-to-end tests, in one test binary (each binary is a link of its own on a small
//! machine): a module per subject. The modules that run against the mail-server lab
//! (tests/lab/lab.sh) are compiled only with the `lab` feature, which CI and
//! scripts/test-all.sh always turn on; without it, `cargo test` needs neither root nor the lab.

mod fuzz_corpus;
mod threat_model_refs;

#[cfg(feature = "lab")]
mod e2e_large;
#[cfg(feature = "lab")]
mod e2e_roundtrip;
#[cfg(feature = "lab")]
mod lab_transport;
