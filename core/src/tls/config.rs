//! rustls client and server configurations for Connect.
//!
//! Both read a [`CertSource`] at every handshake: a rotated leaf or root set applies to the next handshake,
//! while established connections keep their keys. TLS 1.2 and 1.3 only, ring provider only (never the process
//! default), no session resumption (a resumed session would skip verification against the current roots and
//! the expected identity), no SNI.

use super::verify::{ChainLimits, ClientVerifier, ServerVerifier};
use crate::error::{Error, Result};
use crate::identity::ServiceId;
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use std::fmt;
use std::sync::Arc;

use super::material::{Leaf, Roots};

/// Where the verifiers and resolvers find the current certificates. Implemented by the watcher's shared state;
/// called at every handshake, so keep it to a lock read and an `Arc` clone.
pub trait CertSource: Send + Sync + 'static {
    fn roots(&self) -> Option<Arc<Roots>>;
    fn leaf(&self) -> Option<Arc<Leaf>>;
}

/// Whom the dialer expects to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A full SPIFFE service URI, compared with [`crate::identity::uri_matches`] (host replaced, any case).
    Uri(String),
    /// Any Consul service identity that chains to the roots.
    AnyService,
}

static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The server name handed to `connect()`. SNI is disabled and no hostname is checked: it is never used.
pub fn dial_server_name() -> ServerName<'static> {
    ServerName::try_from("consul-connect.invalid").expect("static DNS name is valid")
}

/// A listener's config with the default [`ChainLimits`] (tests).
#[cfg(test)]
pub fn server_config(source: Arc<dyn CertSource>, alpn: Vec<Vec<u8>>) -> Result<Arc<ServerConfig>> {
    server_config_with(source, alpn, ChainLimits::default())
}

/// A listener's config: requires and verifies client certificates (refusing chains over `limits` before
/// verifying them), presents the current leaf.
pub fn server_config_with(
    source: Arc<dyn CertSource>,
    alpn: Vec<Vec<u8>>,
    limits: ChainLimits,
) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(super::provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::internal(format!("building the TLS server config: {e}")))?
        .with_client_cert_verifier(Arc::new(ClientVerifier::with_limits(source.clone(), limits)))
        .with_cert_resolver(Arc::new(LeafResolver { source }));
    config.alpn_protocols = alpn;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A dialer's config with the default [`ChainLimits`] (tests).
#[cfg(test)]
pub fn client_config(source: Arc<dyn CertSource>, expected: Expected, alpn: Vec<Vec<u8>>) -> Result<Arc<ClientConfig>> {
    client_config_with(source, expected, alpn, ChainLimits::default())
}

/// A dialer's config: presents the current leaf, verifies the server's chain (refusing chains over `limits`
/// before verifying them) and identity.
pub fn client_config_with(
    source: Arc<dyn CertSource>,
    expected: Expected,
    alpn: Vec<Vec<u8>>,
    limits: ChainLimits,
) -> Result<Arc<ClientConfig>> {
    if let Expected::Uri(uri) = &expected {
        ServiceId::parse(uri).map_err(|e| Error::invalid(format!("expected peer identity: {}", e.message)))?;
    }
    let mut config = ClientConfig::builder_with_provider(super::provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::internal(format!("building the TLS client config: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::with_limits(source.clone(), expected, limits)))
        .with_client_cert_resolver(Arc::new(LeafResolver { source }));
    config.alpn_protocols = alpn;
    config.enable_sni = false;
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Hands out the current leaf on both sides. No leaf: the server fails the handshake (reported as
/// `NotReady`), the client sends no certificate (but its server verifier already refused with `NotReady`).
struct LeafResolver {
    source: Arc<dyn CertSource>,
}

impl LeafResolver {
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.source.leaf().map(|leaf| leaf.certified_key.clone())
    }
}

impl fmt::Debug for LeafResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeafResolver")
    }
}

impl ResolvesServerCert for LeafResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl ResolvesClientCert for LeafResolver {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
