#![no_main]
//! Fuzz target: see `mailcat_session::fuzz::pop3_core`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailcat_session::fuzz::pop3_core(data));
