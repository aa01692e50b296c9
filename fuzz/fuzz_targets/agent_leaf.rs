//! A `GET /v1/agent/connect/ca/leaf/<service>` answer body, through JSON, the leaf, its key and the leaf watch's checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consulnative_core::fuzzing::agent_leaf(data));
