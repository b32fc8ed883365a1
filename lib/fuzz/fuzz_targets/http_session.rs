#![no_main]

//! Drives a whole HTTP session through the events the fuzzer's bytes decode
//! into (see `sluice_lib::http::fuzzing`) and fails on any oracle violation.

use libfuzzer_sys::fuzz_target;
use sluice_lib::http::fuzzing;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = fuzzing::run_bytes(data) {
        panic!("{violation}");
    }
});
