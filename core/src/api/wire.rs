//! The Consul agent HTTP API's wire format, as this library reads and the dev agent writes it: JSON types,
//! SPIFFE service identities and the text encodings (Go durations, colon-hex serials, RFC 3339 times, PEM).

pub use crate::agent::types::{
    AgentSelf, AgentSelfConfig, AgentService, AuthorizeRequest, AuthorizeResponse, CaRoot, CaRoots, HealthCheck,
    HealthEntry, Intention, LeafCert, Node, ProxyConfig, ServiceCheck, ServiceConnect, ServiceRegistration,
};
pub use crate::encoding::{colon_hex, go_duration, parse_go_duration, pem_encode, percent_decode, rfc3339};
pub use crate::identity::{is_non_service_identity, serial_colon_hex, ServiceId};
