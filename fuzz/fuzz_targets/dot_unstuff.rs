#![no_main]
//! Fuzz target: see `mailcat_codec::fuzz::dot_unstuff`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailcat_codec::fuzz::dot_unstuff(data));
