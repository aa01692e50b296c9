//! SPIFFE URIs: parse, format, parse again, compare.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consulnative_core::fuzzing::spiffe(data));
