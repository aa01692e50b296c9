//! A `GET /v1/agent/connect/ca/roots` answer body, through JSON, trust anchors and the roots watch's checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consulnative_core::fuzzing::agent_roots(data));
