//! Fuzz target `keylog`: see `keylog` in ../harness.rs for the input format and invariants.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::keylog(data));
