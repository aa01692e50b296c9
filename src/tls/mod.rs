//! rustls configurations and the verifiers that check Connect certificates.

//! STUB
use crate::error::{Error, Result};
use crate::agent::types::*;
use crate::identity::ServiceId;
use std::sync::Arc;
use std::time::SystemTime;
use rustls::pki_types::{CertificateDer, ServerName};
pub struct Roots { pub trust_domain: String, pub active_root_id: String, pub certs: Vec<CertificateDer<'static>>, pub pem: String }
impl Roots { pub fn from_agent(_r: &CaRoots) -> Result<Roots> { todo!() } pub fn len(&self) -> usize { todo!() } }
pub struct Leaf { pub certified_key: Arc<rustls::sign::CertifiedKey>, pub chain: Vec<CertificateDer<'static>>, pub id: ServiceId, pub uri: String, pub serial: String, pub valid_after: SystemTime, pub valid_before: SystemTime, pub cert_pem: String, pub key_pem: String }
impl Leaf { pub fn from_agent(_l: &LeafCert) -> Result<Leaf> { todo!() } }
pub fn verify_leaf(_l: &Leaf, _r: &Roots, _n: SystemTime) -> Result<()> { todo!() }
pub trait CertSource: Send + Sync + 'static { fn roots(&self) -> Option<Arc<Roots>>; fn leaf(&self) -> Option<Arc<Leaf>>; }
pub fn server_config(_s: Arc<dyn CertSource>, _a: Vec<Vec<u8>>) -> Result<Arc<rustls::ServerConfig>> { todo!() }
pub enum Expected { Uri(String), AnyService }
pub fn client_config(_s: Arc<dyn CertSource>, _e: Expected, _a: Vec<Vec<u8>>) -> Result<Arc<rustls::ClientConfig>> { todo!() }
pub fn dial_server_name() -> ServerName<'static> { todo!() }
#[derive(Clone, Debug, Default)]
pub struct PeerIdentity { pub uri: String, pub service: String, pub namespace: String, pub partition: String, pub datacenter: String, pub trust_domain: String, pub serial: String }
pub fn peer_identity(_c: &[CertificateDer<'_>]) -> Result<PeerIdentity> { todo!() }
pub fn handshake_error(_e: &std::io::Error) -> Error { todo!() }
