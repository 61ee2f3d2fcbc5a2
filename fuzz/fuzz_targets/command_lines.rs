#![no_main]
//! Fuzz target: see `mailcat_codec::fuzz::command_lines`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailcat_codec::fuzz::command_lines(data));
