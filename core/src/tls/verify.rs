//! The two certificate verifiers. Both deny when in doubt.
//!
//! - [`ClientVerifier`] (listener side): a client certificate is required; its chain must verify with webpki
//!   against every current root, using the intermediates the client sent, for client authentication, at the
//!   handshake time; its single URI SAN must be a Consul service identity of a trust domain the current roots
//!   vouch for. Authorization (intentions) happens after the handshake, elsewhere: this verifier never calls the
//!   agent.
//! - [`ServerVerifier`] (dialer side): the same chain check for server authentication, no hostname check, then
//!   the server's URI SAN against the expected identity, like Go's `connect/tls.go`.
//!
//! Both first bound the chain ([`ChainLimits`]: a Consul chain is a leaf plus a few intermediates), so a chain
//! bomb is refused before any path building, and both require the leaf's key usage as Consul sets it
//! (digitalSignature, and the extended key usage of its role). Per handshake: one read of the [`CertSource`],
//! webpki path building, and two x509-parser passes over the end-entity certificate. Failures carry our
//! [`Error`] through rustls.

use super::config::{CertSource, Expected};
use super::errors::to_rustls;
use super::material::Roots;
use crate::error::{Code, Error, Result};
use crate::identity::{inspect, uri_matches, ServiceId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::fmt;
use std::sync::Arc;

/// Bounds on the certificate chain a peer sends, checked before any signature: a Consul chain is a leaf plus at
/// most a few intermediates (a secondary datacenter's, a cross-signed root during a rotation, Vault's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLimits {
    /// Certificates in the chain, the peer's own included (default 8).
    pub max_certs: usize,
    /// Total DER bytes of those certificates (default 32 KiB).
    pub max_bytes: usize,
}

impl Default for ChainLimits {
    fn default() -> Self {
        ChainLimits { max_certs: 8, max_bytes: 32 * 1024 }
    }
}

impl ChainLimits {
    /// `CertificateInvalid` when the chain is longer or larger than the limits allow.
    fn check(&self, role: &str, end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Result<()> {
        let count = intermediates.len() + 1;
        let bytes = end_entity.len() + intermediates.iter().map(|c| c.len()).sum::<usize>();
        if count > self.max_certs || bytes > self.max_bytes {
            return Err(Error::new(
                Code::CertificateInvalid,
                format!(
                    "{role} certificate chain of {count} certificates ({bytes} bytes) is over the limit of {} \
                     certificates and {} bytes (max_chain_certs, max_chain_bytes): refused before verification",
                    self.max_certs, self.max_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// Which extended key usage the chain must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    Server,
    Client,
}

impl Usage {
    fn key_usage(self) -> webpki::KeyUsage {
        match self {
            Usage::Server => webpki::KeyUsage::server_auth(),
            Usage::Client => webpki::KeyUsage::client_auth(),
        }
    }
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    super::provider().signature_verification_algorithms
}

/// Verify `end_entity` + `intermediates` against every anchor of `roots` at `now` for `usage`.
pub(crate) fn verify_chain(
    roots: &Roots,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: Usage,
) -> std::result::Result<(), webpki::Error> {
    let cert = webpki::EndEntityCert::try_from(end_entity)?;
    cert.verify_for_usage(algorithms().all, roots.anchors(), intermediates, now, usage.key_usage(), None, None)
        .map(|_| ())
}

/// A sentence for a webpki failure, with the variant name kept for searchability.
pub(crate) fn describe_chain_error(err: &webpki::Error, roots: &Roots) -> String {
    let n = roots.len();
    let anchors = if n == 1 { "the 1 current CA root".to_string() } else { format!("the {n} current CA roots") };
    match err {
        webpki::Error::UnknownIssuer => format!("not issued by any of {anchors} (UnknownIssuer)"),
        webpki::Error::CertExpired { time, not_after } => format!(
            "a certificate in the chain expired at {} (unix time {}, now {}) (CertExpired)",
            crate::encoding::rfc3339(not_after.as_secs() as i64),
            not_after.as_secs(),
            time.as_secs()
        ),
        webpki::Error::CertNotValidYet { time, not_before } => format!(
            "a certificate in the chain is not valid before {} (unix time {}, now {}) (CertNotValidYet)",
            crate::encoding::rfc3339(not_before.as_secs() as i64),
            not_before.as_secs(),
            time.as_secs()
        ),
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            format!("the certificate does not allow this use (extended key usage): {err:?}")
        }
        other => format!("chain did not verify against {anchors}: {other:?}"),
    }
}

/// "client certificate spiffe://… (serial 1d)" or, for a certificate without one URI, its subject.
fn describe_cert(role: &str, der: &CertificateDer<'_>) -> String {
    match inspect(der) {
        Ok(info) => {
            let name = match info.uri_sans.as_slice() {
                [uri] => uri.clone(),
                [] if !info.subject.is_empty() => {
                    format!("with subject {:?} and no URI SAN", info.subject)
                }
                [] => "with no URI SAN".to_string(),
                uris => format!("with URI SANs {uris:?}"),
            };
            format!("{role} certificate {name} (serial {})", info.serial)
        }
        Err(e) => format!("{role} certificate (unparseable: {})", e.message),
    }
}

/// The single URI SAN of a peer's end-entity certificate, or an `IdentityMismatch` error.
fn single_uri(role: &str, der: &CertificateDer<'_>) -> Result<(String, String)> {
    let info =
        inspect(der).map_err(|e| Error::new(Code::CertificateInvalid, format!("{role} certificate: {}", e.message)))?;
    match info.uri_sans.as_slice() {
        [uri] => Ok((uri.clone(), info.serial)),
        uris => Err(Error::new(
            Code::IdentityMismatch,
            format!("{} must carry exactly one URI SAN, found {}", describe_cert(role, der), uris.len()),
        )),
    }
}

/// Chain check shared by both verifiers: size within the limits, roots present, chain valid, the leaf's key
/// usage as Consul sets it; errors already in our codes. Returns the roots it verified against.
fn check_peer_chain(
    source: &dyn CertSource,
    limits: &ChainLimits,
    role: &str,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: Usage,
) -> Result<Arc<Roots>> {
    limits.check(role, end_entity, intermediates)?;
    let Some(roots) = source.roots() else {
        return Err(Error::new(
            Code::NotReady,
            format!("no CA roots yet: cannot verify the {role} certificate, refusing the handshake"),
        ));
    };
    verify_chain(&roots, end_entity, intermediates, now, usage).map_err(|e| {
        Error::new(
            Code::CertificateInvalid,
            format!("{}: {}", describe_cert(role, end_entity), describe_chain_error(&e, &roots)),
        )
    })?;
    check_leaf_usage(role, end_entity, usage)?;
    Ok(roots)
}

/// The leaf's key usage as Consul sets it: a key usage extension with digitalSignature (what a TLS handshake
/// signature needs) and an extended key usage that names this role (webpki alone accepts a leaf without any).
fn check_leaf_usage(role: &str, der: &CertificateDer<'_>, usage: Usage) -> Result<()> {
    let bad = |why: String| Error::new(Code::CertificateInvalid, format!("{}: {why}", describe_cert(role, der)));
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(format!("malformed certificate: {e}")))?;
    let eku = cert.extended_key_usage().map_err(|e| bad(format!("malformed extended key usage: {e}")))?;
    let (allowed, purpose) = match usage {
        Usage::Server => (eku.is_some_and(|e| e.value.server_auth), "serverAuth"),
        Usage::Client => (eku.is_some_and(|e| e.value.client_auth), "clientAuth"),
    };
    if !allowed {
        return Err(bad(format!(
            "its extended key usage does not include {purpose} (Consul leaves carry serverAuth and clientAuth)"
        )));
    }
    let key_usage = cert.key_usage().map_err(|e| bad(format!("malformed key usage: {e}")))?;
    if !key_usage.is_some_and(|k| k.value.digital_signature()) {
        return Err(bad("its key usage does not include digitalSignature (Consul leaves carry it)".to_string()));
    }
    Ok(())
}

/// Whether the current roots vouch for `trust_domain`: the agent's trust domain, or the `spiffe://<td>` URI SAN
/// of one of the root certificates (roots kept through a trust-domain change name their own).
fn roots_vouch_for(roots: &Roots, trust_domain: &str) -> bool {
    if roots.trust_domain.eq_ignore_ascii_case(trust_domain) {
        return true;
    }
    roots.certs.iter().filter_map(|der| inspect(der).ok()).flat_map(|info| info.uri_sans).any(|uri| {
        uri.strip_prefix("spiffe://").is_some_and(|host| host.trim_end_matches('/').eq_ignore_ascii_case(trust_domain))
    })
}

/// Listener side: requires and verifies the client's certificate.
pub struct ClientVerifier {
    source: Arc<dyn CertSource>,
    limits: ChainLimits,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    /// A verifier with the default [`ChainLimits`] (tests).
    #[cfg(test)]
    pub fn new(source: Arc<dyn CertSource>) -> Self {
        ClientVerifier::with_limits(source, ChainLimits::default())
    }

    /// A verifier that refuses chains over `limits` before verifying them.
    pub fn with_limits(source: Arc<dyn CertSource>, limits: ChainLimits) -> Self {
        ClientVerifier { source, limits, algs: algorithms() }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<()> {
        let roots =
            check_peer_chain(&*self.source, &self.limits, "client", end_entity, intermediates, now, Usage::Client)?;
        let (uri, serial) = single_uri("client", end_entity)?;
        let id = ServiceId::parse(&uri).map_err(|e| {
            Error::new(Code::IdentityMismatch, format!("client certificate (serial {serial}): {}", e.message))
        })?;
        if !roots_vouch_for(&roots, &id.trust_domain) {
            return Err(Error::new(
                Code::IdentityMismatch,
                format!(
                    "client certificate {uri} (serial {serial}) is of trust domain {}, which the current CA roots \
                     do not vouch for (theirs is {}): refused before authorization",
                    id.trust_domain, roots.trust_domain
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientVerifier")
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No hints: the roots change at run time, and a Connect client always sends its one leaf anyway.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now).map(|()| ClientCertVerified::assertion()).map_err(to_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Dialer side: verifies the server's chain and its SPIFFE identity.
pub struct ServerVerifier {
    source: Arc<dyn CertSource>,
    expected: Expected,
    limits: ChainLimits,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerVerifier {
    /// A verifier with the default [`ChainLimits`] (tests).
    #[cfg(test)]
    pub fn new(source: Arc<dyn CertSource>, expected: Expected) -> Self {
        ServerVerifier::with_limits(source, expected, ChainLimits::default())
    }

    /// A verifier that refuses chains over `limits` before verifying them.
    pub fn with_limits(source: Arc<dyn CertSource>, expected: Expected, limits: ChainLimits) -> Self {
        ServerVerifier { source, expected, limits, algs: algorithms() }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<()> {
        // Without a leaf the server will refuse us anyway; say so clearly instead of a bare alert.
        if self.source.leaf().is_none() {
            return Err(Error::new(Code::NotReady, "no leaf certificate to present yet: refusing the TLS handshake"));
        }
        check_peer_chain(&*self.source, &self.limits, "server", end_entity, intermediates, now, Usage::Server)?;
        let (got, serial) = single_uri("server", end_entity)?;
        match &self.expected {
            Expected::Uri(want) if uri_matches(&got, want) => Ok(()),
            Expected::Uri(want) => {
                Err(Error::new(Code::IdentityMismatch, format!("peer certificate mismatch got {got}, want {want}")))
            }
            Expected::AnyService => ServiceId::parse(&got).map(|_| ()).map_err(|e| {
                Error::new(Code::IdentityMismatch, format!("server certificate (serial {serial}): {}", e.message))
            }),
        }
    }
}

impl fmt::Debug for ServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerVerifier").field("expected", &self.expected).finish_non_exhaustive()
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now).map(|()| ServerCertVerified::assertion()).map_err(to_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
