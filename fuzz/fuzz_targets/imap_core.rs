#![no_main]
//! Fuzz target: see `mailcat_session::fuzz::imap_core`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailcat_session::fuzz::imap_core(data));
