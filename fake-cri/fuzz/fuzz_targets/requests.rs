//! Arbitrary bytes into `bodies::requests`: it must return, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../bodies.rs"]
mod bodies;

fuzz_target!(|data: &[u8]| bodies::requests(data));
