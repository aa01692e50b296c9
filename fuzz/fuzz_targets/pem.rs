//! PEM certificates and keys, and DER certificates.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consulnative_core::fuzzing::pem(data));
