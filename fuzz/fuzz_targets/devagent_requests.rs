//! The dev agent's request decoding: query strings, paths, JSON bodies, blocking and fault parameters, routing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consulnative_devagent::fuzzing::requests(data));
