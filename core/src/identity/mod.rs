//! SPIFFE identities and certificate inspection.
//!
//! - [`spiffe`]: Consul's SPIFFE URIs: parse and format service identities, compare them like Go's `connect`.
//! - [`cert`]: what the rest of the crate needs to know about one certificate (URI SANs, serial, validity).
//! - [`pem`]: PEM decoding of certificates and private keys.
//!
//! Nothing here touches TLS; `tls/` builds on it.

#![forbid(unsafe_code)]

pub mod cert;
pub mod pem;
pub mod spiffe;

pub use cert::{inspect, serial_colon_hex};
pub use pem::{certs_from_pem, key_from_pem};
pub use spiffe::{is_non_service_identity, uri_matches, ServiceId};
