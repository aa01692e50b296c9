//! The identity of a verified peer, read after the handshake for authorization and for the application.

use crate::error::{Code, Error, Result};
use crate::identity::{inspect, ServiceId};
use rustls::pki_types::CertificateDer;

/// Who is on the other end of a verified connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The certificate's URI SAN as presented (what authorize's `ClientCertURI` wants).
    pub uri: String,
    /// The peer's service name.
    pub service: String,
    /// Its namespace (`default` in Consul CE).
    pub namespace: String,
    /// Its admin partition (`default` in Consul CE).
    pub partition: String,
    /// The datacenter its certificate was issued in.
    pub datacenter: String,
    /// The trust domain of its certificate (`<cluster-id>.consul`).
    pub trust_domain: String,
    /// Colon-hex serial (what authorize's `ClientCertSerial` wants).
    pub serial: String,
}

/// The identity in the first certificate of a peer chain that the verifiers already accepted
/// (`conn.peer_certificates()`). No certificate is `Handshake`; anything but one service URI is `IdentityMismatch`.
pub fn peer_identity(peer_certs: &[CertificateDer<'_>]) -> Result<PeerIdentity> {
    let Some(first) = peer_certs.first() else {
        return Err(Error::new(Code::Handshake, "peer presented no certificate"));
    };
    let info =
        inspect(first).map_err(|e| Error::new(Code::CertificateInvalid, format!("peer certificate: {}", e.message)))?;
    let [uri] = info.uri_sans.as_slice() else {
        return Err(Error::new(
            Code::IdentityMismatch,
            format!(
                "peer certificate (serial {}) must carry exactly one URI SAN, found {}",
                info.serial,
                info.uri_sans.len()
            ),
        ));
    };
    let id = ServiceId::parse(uri)?;
    Ok(PeerIdentity {
        uri: uri.clone(),
        service: id.service,
        namespace: id.namespace,
        partition: id.partition,
        datacenter: id.datacenter,
        trust_domain: id.trust_domain,
        serial: info.serial,
    })
}
