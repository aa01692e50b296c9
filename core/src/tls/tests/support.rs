//! What the TLS tests share: the dev agent's CA with its answers in this crate's types, a swappable
//! [`CertSource`], and a handshake driver.
#![allow(dead_code)]

use crate::agent::types::{CaRoots, LeafCert};
use crate::error::{Error, Result};
use crate::tls::{handshake_error, peer_identity, CertSource, Leaf, PeerIdentity, Roots};
use consulnative_devagent::ca::{self, Authority};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The workspace's one Consul-style CA, `consulnative_devagent::ca::Authority`. The dev agent crate (a
/// dev-dependency) links its own copy of this crate, so the wire types it returns are not ours: [`ours`]
/// converts them through JSON, the format both copies share.
pub struct TestCa(pub Authority);

/// One of the dev agent's wire values as this crate's type of the same JSON shape.
fn ours<T: serde::Serialize, U: serde::de::DeserializeOwned>(theirs: &T) -> U {
    serde_json::from_value(serde_json::to_value(theirs).expect("encode")).expect("decode")
}

impl TestCa {
    /// A root for `trust_domain` with subject `CN=<common_name>`.
    pub fn new(trust_domain: &str, common_name: &str) -> TestCa {
        TestCa(Authority::root(trust_domain, common_name).expect("test root"))
    }
    /// An intermediate signed by this CA; its leaves carry it.
    pub fn intermediate(&self, common_name: &str) -> TestCa {
        TestCa(self.0.intermediate(common_name).expect("test intermediate"))
    }
    /// This CA's certificate, same subject and key, signed by `old` (PEM).
    pub fn cross_signed_by(&self, old: &TestCa) -> String {
        self.0.cross_signed_by(&old.0).expect("cross-signed root")
    }
    /// This CA's certificate (PEM).
    pub fn pem(&self) -> String {
        self.0.pem()
    }
    /// A leaf for `service` in `dc1`, valid from a minute ago for 72 h.
    pub fn leaf(&self, service: &str) -> LeafCert {
        ours(&self.0.leaf(service).expect("test leaf"))
    }
    /// A leaf with exactly this URI SAN and validity.
    pub fn leaf_for_uri(&self, uri: &str, not_before: SystemTime, not_after: SystemTime) -> LeafCert {
        ours(&self.0.sign_leaf(uri, not_before, not_after).expect("test leaf"))
    }
}

/// The agent's roots answer listing `roots`, with `active` marked active.
pub fn ca_roots(active: &TestCa, roots: &[&TestCa]) -> CaRoots {
    let roots: Vec<&Authority> = roots.iter().map(|r| &r.0).collect();
    ours(&ca::ca_roots(&active.0, &roots))
}

pub const TD: &str = "7f42f496-fbc7-8692-05ed-334aa5340c1e.consul";

pub fn uri(service: &str) -> String {
    format!("spiffe://{TD}/ns/default/dc/dc1/svc/{service}")
}

/// What the watcher's shared state looks like to tls/: two RwLocks that tests can swap.
#[derive(Default)]
pub struct Source {
    roots: RwLock<Option<Arc<Roots>>>,
    leaf: RwLock<Option<Arc<Leaf>>>,
}

impl Source {
    pub fn new(roots: Option<Roots>, leaf: Option<Leaf>) -> Arc<Source> {
        Arc::new(Source { roots: RwLock::new(roots.map(Arc::new)), leaf: RwLock::new(leaf.map(Arc::new)) })
    }
    pub fn set_leaf(&self, leaf: Option<Leaf>) {
        *self.leaf.write().unwrap() = leaf.map(Arc::new);
    }
    pub fn set_roots(&self, roots: Option<Roots>) {
        *self.roots.write().unwrap() = roots.map(Arc::new);
    }
}

impl CertSource for Source {
    fn roots(&self) -> Option<Arc<Roots>> {
        self.roots.read().unwrap().clone()
    }
    fn leaf(&self) -> Option<Arc<Leaf>> {
        self.leaf.read().unwrap().clone()
    }
}

/// What one side of a connection learned.
#[derive(Debug)]
pub struct Side {
    pub peer: PeerIdentity,
    pub version: rustls::ProtocolVersion,
    pub alpn: Option<Vec<u8>>,
}

/// Run a server handshake and a client handshake against each other over an in-memory pipe, then exchange one
/// message each way (a TLS 1.3 client learns that its certificate was refused only on its first read).
pub async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> (Result<Side>, Result<Side>) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    handshake_over(server, client, a, b).await
}

pub async fn handshake_over<S, C>(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    server_io: S,
    client_io: C,
) -> (Result<Side>, Result<Side>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let server_task = tokio::spawn(async move {
        let mut tls = TlsAcceptor::from(server).accept(server_io).await.map_err(|e| handshake_error(&e))?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| handshake_error(&e))?;
        assert_eq!(&buf, b"ping");
        tls.write_all(b"pong").await.map_err(|e| handshake_error(&e))?;
        tls.flush().await.map_err(|e| handshake_error(&e))?;
        let conn = tls.get_ref().1;
        let side = Side {
            peer: peer_identity(conn.peer_certificates().unwrap_or_default())?,
            version: conn.protocol_version().unwrap(),
            alpn: conn.alpn_protocol().map(|p| p.to_vec()),
        };
        let _ = tls.shutdown().await;
        Ok::<_, Error>(side)
    });
    let client_task = tokio::spawn(async move {
        let name = crate::tls::dial_server_name();
        let mut tls = TlsConnector::from(client).connect(name, client_io).await.map_err(|e| handshake_error(&e))?;
        tls.write_all(b"ping").await.map_err(|e| handshake_error(&e))?;
        tls.flush().await.map_err(|e| handshake_error(&e))?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| handshake_error(&e))?;
        assert_eq!(&buf, b"pong");
        let conn = tls.get_ref().1;
        Ok::<_, Error>(Side {
            peer: peer_identity(conn.peer_certificates().unwrap_or_default())?,
            version: conn.protocol_version().unwrap(),
            alpn: conn.alpn_protocol().map(|p| p.to_vec()),
        })
    });
    let both = async { (server_task.await.unwrap(), client_task.await.unwrap()) };
    tokio::time::timeout(Duration::from_secs(20), both).await.expect("handshake test timed out")
}
