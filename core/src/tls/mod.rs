//! rustls configurations and the verifiers that check Connect certificates.
//!
//! - [`material`]: certificates parsed once per change ([`Roots`], [`Leaf`]) and the readiness check
//!   [`verify_leaf`]. Nothing on the handshake path parses PEM.
//! - [`verify`]: the client-certificate verifier (listener side) and the server-certificate verifier (dialer
//!   side): chain against every current root with the peer's intermediates, EKU, expiry, then SPIFFE identity.
//! - [`config`]: [`server_config`] and [`client_config`], which read a [`CertSource`] at every handshake so a
//!   rotation applies to the next handshake while established connections keep going.
//! - [`peer`]: the identity of a verified peer.
//! - [`errors`]: our [`crate::Error`] carried through rustls and recovered by [`handshake_error`].

#![forbid(unsafe_code)]

pub mod config;
pub mod errors;
pub mod material;
pub mod peer;
#[cfg(test)]
mod tests;
pub mod verify;

#[cfg(test)]
pub use config::{client_config, server_config};
pub use config::{client_config_with, dial_server_name, server_config_with, CertSource, Expected};
pub use errors::{from_rustls, handshake_error};
pub use material::{verify_leaf, Leaf, Roots};
pub use peer::{peer_identity, PeerIdentity};
pub use verify::ChainLimits;

use once_cell::sync::Lazy;
use std::sync::Arc;

/// The one crypto provider every config and verifier uses: ring, never the process default.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: Lazy<Arc<rustls::crypto::CryptoProvider>> =
        Lazy::new(|| Arc::new(rustls::crypto::ring::default_provider()));
    PROVIDER.clone()
}
