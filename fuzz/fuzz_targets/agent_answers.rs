//! Authorize, health and agent-self answers, `X-Consul-Index` values and error bodies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consulnative_core::fuzzing::agent_answers(data));
