//! The one Consul-style certificate authority of this workspace: the dev agent's Connect CA, and the CA tests use
//! to build certificates and agent answers themselves (like Go's `connect.TestCA`).
//!
//! - [`Authority`] (authority.rs): one CA certificate and key, root or intermediate, for any trust domain. It
//!   signs intermediates, cross-signed copies of itself, and leaves for any URI with any validity.
//! - [`ConnectCa`] (connect.rs): the agent's CA built on it: cluster ID and trust domain, every root it had, root
//!   rotation with a cross-signed intermediate, and leaves for services.
//! - imported.rs: a root the user supplies (certificate and key), signed under as it is.
//! - der.rs: the DER pieces rcgen does not write Consul's way (SEC1 key, critical URI SAN, root fingerprint).
//!
//! Certificates are shaped like Consul's: EC P-256 keys and ECDSA-SHA256 signatures; roots and intermediates
//! carry `CN=<name>`, CA:TRUE and the URI SAN `spiffe://<trust-domain>`; leaves have an empty subject, exactly one
//! URI SAN marked critical, EKU server+client auth, and their key as SEC1 `EC PRIVATE KEY`; every certificate
//! carries its SubjectKeyIdentifier and AuthorityKeyIdentifier. Keys live in memory only.

mod authority;
mod connect;
mod der;
mod imported;

pub use authority::{ca_roots, Authority, ROOT_TTL};
pub use connect::{ConnectCa, Root};
pub use imported::private_key_from_pem;
