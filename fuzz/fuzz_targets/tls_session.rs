//! Fuzz target `tls_session`: see `tls_session` in ../harness.rs for the input format and invariants.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::tls_session(data));
