//! Configuration strings: `ClientOptions::set` keys, the `CONSUL_*` environment, Go durations, agent addresses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consulnative_core::fuzzing::config(data));
