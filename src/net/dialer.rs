//! Outbound connections: TCP connect, mutual-TLS handshake presenting the current leaf, server chain and SPIFFE
//! identity check, all within the caller's timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::conn::Conn;
use crate::error::{Code, Error, Result};
use crate::encoding::go_duration as fmt_duration;
use crate::runtime::block_on;
use crate::tls::{dial_server_name, handshake_error, peer_identity, PeerIdentity};

/// Connects to `address` (`host:port`) and completes the handshake with `config`, within `deadline`.
pub(crate) fn connect(address: &str, config: Arc<rustls::ClientConfig>, deadline: Option<Instant>) -> Result<Conn> {
    block_on(async {
        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let tcp = bounded(remaining(), format!("connect to {address}"), async {
            let tcp = TcpStream::connect(address).await.map_err(|e| Error::io(&format!("connect to {address}"), &e))?;
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        })
        .await?;
        let tls = bounded(remaining(), format!("TLS handshake with {address}"), async {
            TlsConnector::from(config)
                .connect(dial_server_name(), tcp)
                .await
                .map_err(|e| handshake_error(&e).context(format!("dial {address}")))
        })
        .await?;
        let certs = tls.get_ref().1.peer_certificates().unwrap_or(&[]);
        let peer = peer_identity(certs).map_err(|e| e.context(format!("dial {address}")))?;
        Conn::new(tokio_rustls::TlsStream::Client(tls), peer)
    })
}

/// Checks a peer verified with `Expected::AnyService` against an expected service name and namespace.
pub(crate) fn check_service_name(peer: &PeerIdentity, service: &str, namespace: &str, address: &str) -> Result<()> {
    if peer.service.eq_ignore_ascii_case(service) && peer.namespace.eq_ignore_ascii_case(namespace) {
        return Ok(());
    }
    Err(Error::new(
        Code::IdentityMismatch,
        format!(
            "dial {address}: peer certificate mismatch got {}, want service \"{service}\" in namespace \"{namespace}\"",
            peer.uri
        ),
    ))
}

async fn bounded<T>(limit: Option<Duration>, what: String, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match limit {
        None => f.await,
        Some(l) if l.is_zero() => Err(Error::timeout(format!("{what}: no time left"))),
        Some(l) => match tokio::time::timeout(l, f).await {
            Ok(r) => r,
            Err(_) => Err(Error::timeout(format!("{what} timed out after {}", fmt_duration(l)))),
        },
    }
}
