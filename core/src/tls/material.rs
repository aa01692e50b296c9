//! Certificate material parsed once per change: the CA roots and our leaf.
//!
//! The watcher builds a [`Roots`] / [`Leaf`] from each new agent answer and swaps it into its shared state; the
//! verifiers and resolvers only read these prebuilt values, so no handshake parses PEM or rebuilds anchors.

use super::verify::{describe_chain_error, verify_chain, Usage};
use crate::agent::types::{CaRoots, LeafCert};
use crate::error::{Code, Error, Result};
use crate::identity::{certs_from_pem, inspect, key_from_pem, ServiceId};
use rustls::pki_types::TrustAnchor;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::sign::CertifiedKey;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// The current CA roots: every certificate of every `RootCert`, as webpki trust anchors built once.
#[derive(Clone)]
pub struct Roots {
    /// Lower-cased `TrustDomain` of the agent's answer.
    pub trust_domain: String,
    pub active_root_id: String,
    /// Every certificate of every root's `RootCert` PEM (a `RootCert` may hold several).
    pub certs: Vec<CertificateDer<'static>>,
    /// All roots as one PEM document, for callers that hand roots to another TLS stack.
    pub pem: String,
    anchors: Arc<[TrustAnchor<'static>]>,
}

impl Roots {
    /// Parse the agent's roots. No roots is `NotReady` (never fall back to system roots); unparseable PEM or a
    /// certificate webpki cannot use as an anchor is `AgentBadResponse` for the whole set (deny when in doubt).
    pub fn from_agent(roots: &CaRoots) -> Result<Roots> {
        if roots.roots.is_empty() {
            return Err(Error::new(Code::NotReady, "the agent returned no CA roots"));
        }
        let bad = |msg: String| Error::new(Code::AgentBadResponse, msg);
        let mut certs = Vec::new();
        let mut pem = String::new();
        for root in &roots.roots {
            let name = if root.name.is_empty() { &root.id } else { &root.name };
            let parsed = certs_from_pem(&root.root_cert)
                .map_err(|e| bad(format!("CA root {name:?} (ID {}): RootCert: {}", root.id, e.message)))?;
            certs.extend(parsed);
            pem.push_str(root.root_cert.trim_end());
            pem.push('\n');
        }
        let anchors = certs
            .iter()
            .enumerate()
            .map(|(i, der)| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|a| a.to_owned())
                    .map_err(|e| bad(format!("CA root certificate #{} is not a usable trust anchor: {e:?}", i + 1)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Roots {
            trust_domain: roots.trust_domain.to_ascii_lowercase(),
            active_root_id: roots.active_root_id.clone(),
            certs,
            pem,
            anchors: anchors.into(),
        })
    }

    /// Number of root certificates (trust anchors).
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// The prebuilt webpki trust anchors.
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Roots")
            .field("trust_domain", &self.trust_domain)
            .field("active_root_id", &self.active_root_id)
            .field("certs", &self.certs.len())
            .finish_non_exhaustive()
    }
}

/// Our current leaf certificate, ready to present: key loaded once, identity parsed once.
#[derive(Clone)]
pub struct Leaf {
    pub certified_key: Arc<CertifiedKey>,
    /// The leaf followed by the intermediates of `CertPEM`.
    pub chain: Vec<CertificateDer<'static>>,
    /// The parsed SPIFFE identity (read by tests; the URI is what handshakes use).
    #[cfg_attr(not(test), allow(dead_code))]
    pub id: ServiceId,
    /// The leaf's URI SAN as it appears in the certificate.
    pub uri: String,
    /// Colon-hex serial read from the certificate.
    pub serial: String,
    pub valid_after: SystemTime,
    pub valid_before: SystemTime,
    pub cert_pem: String,
    /// Secret: never printed by `Debug`.
    pub key_pem: String,
}

impl Leaf {
    /// Parse the agent's leaf: certificate chain, private key (checked against the certificate), identity.
    /// Anything unusable is `AgentBadResponse`. Times and serial are read from the certificate itself.
    pub fn from_agent(leaf: &LeafCert) -> Result<Leaf> {
        let bad = |msg: String| Error::new(Code::AgentBadResponse, format!("leaf certificate from the agent: {msg}"));
        let chain = certs_from_pem(&leaf.cert_pem).map_err(|e| bad(format!("CertPEM: {}", e.message)))?;
        let key = key_from_pem(&leaf.private_key_pem).map_err(|e| bad(format!("PrivateKeyPEM: {}", e.message)))?;
        let info = inspect(&chain[0]).map_err(|e| bad(e.message))?;
        let uri = match info.uri_sans.as_slice() {
            [uri] => uri.clone(),
            uris => {
                return Err(bad(format!("expected exactly one URI SAN, found {} (serial {})", uris.len(), info.serial)))
            }
        };
        let id = ServiceId::parse(&uri).map_err(|e| bad(format!("{} (serial {})", e.message, info.serial)))?;
        let certified_key = CertifiedKey::from_der(chain.clone(), key, &super::provider())
            .map_err(|e| bad(format!("private key unusable with certificate {uri} (serial {}): {e}", info.serial)))?;
        Ok(Leaf {
            certified_key: Arc::new(certified_key),
            chain,
            id,
            uri,
            serial: info.serial,
            valid_after: info.not_before,
            valid_before: info.not_after,
            cert_pem: leaf.cert_pem.clone(),
            key_pem: leaf.private_key_pem.clone(),
        })
    }
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field("uri", &self.uri)
            .field("serial", &self.serial)
            .field("valid_after", &self.valid_after)
            .field("valid_before", &self.valid_before)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Readiness check: the leaf's chain (with its own intermediates) verifies against the roots for both client
/// and server use, and is valid at `now`. `NotReady` otherwise, naming the serial, the URI and the reason.
pub fn verify_leaf(leaf: &Leaf, roots: &Roots, now: SystemTime) -> Result<()> {
    let unix = UnixTime::since_unix_epoch(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
    for usage in [Usage::Server, Usage::Client] {
        verify_chain(roots, &leaf.chain[0], &leaf.chain[1..], unix, usage).map_err(|e| {
            Error::new(
                Code::NotReady,
                format!(
                    "our leaf certificate {} (serial {}) is not usable: {}",
                    leaf.uri,
                    leaf.serial,
                    describe_chain_error(&e, roots)
                ),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::types::CaRoot;
    use crate::tls::tests::support::{ca_roots, TestCa};
    use std::time::Duration;

    const TD: &str = "11111111-2222-3333-4444-555555555555.consul";

    #[test]
    fn no_roots_is_not_ready_never_system_roots() {
        let err = Roots::from_agent(&CaRoots::default()).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (Code::NotReady, "the agent returned no CA roots"));
    }

    #[test]
    fn unparseable_root_pem_is_a_bad_agent_response() {
        let roots = CaRoots {
            roots: vec![CaRoot {
                id: "aa:bb".into(),
                name: "Broken".into(),
                root_cert: "nope".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = Roots::from_agent(&roots).unwrap_err();
        assert_eq!(err.code, Code::AgentBadResponse);
        assert!(err.message.contains("Broken"), "{}", err.message);
    }

    #[test]
    fn every_certificate_of_every_root_becomes_an_anchor() {
        let (r1, r2, r3) = (TestCa::new(TD, "R1"), TestCa::new(TD, "R2"), TestCa::new(TD, "R3"));
        let mut roots = ca_roots(&r1, &[&r1, &r2]);
        roots.roots[1].root_cert.push_str(&r3.pem()); // a RootCert holding two certificates
        roots.trust_domain = TD.to_uppercase();
        let parsed = Roots::from_agent(&roots).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed.certs.len(), 3);
        assert_eq!(parsed.trust_domain, TD);
        assert_eq!(parsed.anchors().len(), 3);
        assert_eq!(crate::identity::certs_from_pem(&parsed.pem).unwrap(), parsed.certs);
        let leaf = Leaf::from_agent(&r3.leaf("web")).unwrap();
        verify_leaf(&leaf, &parsed, SystemTime::now()).unwrap();
    }

    #[test]
    fn leaf_from_agent_reads_chain_identity_serial_and_times() {
        let ca = TestCa::new(TD, "R1");
        let agent_leaf = ca.leaf("web");
        assert!(agent_leaf.private_key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let leaf = Leaf::from_agent(&agent_leaf).unwrap();
        assert_eq!(leaf.uri, format!("spiffe://{TD}/ns/default/dc/dc1/svc/web"));
        assert_eq!(leaf.id.service, "web");
        assert_eq!(leaf.serial, agent_leaf.serial_number);
        assert_eq!(leaf.chain.len(), 1);
        assert!(leaf.valid_after < SystemTime::now() && SystemTime::now() < leaf.valid_before);
    }

    #[test]
    fn openssl_made_sec1_key_with_curve_parameters_loads() {
        let leaf = LeafCert {
            cert_pem: include_str!("../identity/testdata/leaf.pem").into(),
            private_key_pem: include_str!("../identity/testdata/ec_sec1.pem").into(),
            ..Default::default()
        };
        let parsed = Leaf::from_agent(&leaf).unwrap();
        assert_eq!(parsed.serial, "0c:0a");
        let pkcs8 = LeafCert { private_key_pem: include_str!("../identity/testdata/ec_pkcs8.pem").into(), ..leaf };
        Leaf::from_agent(&pkcs8).unwrap();
    }

    #[test]
    fn leaf_debug_never_prints_the_private_key() {
        let ca = TestCa::new(TD, "R1");
        let agent_leaf = ca.leaf("web");
        let leaf = Leaf::from_agent(&agent_leaf).unwrap();
        let shown = format!("{leaf:?}");
        let body = agent_leaf.private_key_pem.lines().nth(1).unwrap();
        assert!(!shown.contains(body) && !shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains(&leaf.serial));
    }

    #[test]
    fn leaf_with_someone_elses_key_is_refused() {
        let ca = TestCa::new(TD, "R1");
        let mut agent_leaf = ca.leaf("web");
        agent_leaf.private_key_pem = ca.leaf("db").private_key_pem;
        let err = Leaf::from_agent(&agent_leaf).unwrap_err();
        assert_eq!(err.code, Code::AgentBadResponse);
        assert!(!err.message.contains("PRIVATE KEY"));
    }

    #[test]
    fn leaf_with_a_non_service_identity_is_refused() {
        let ca = TestCa::new(TD, "R1");
        let now = SystemTime::now();
        let agent_leaf =
            ca.leaf_for_uri(&format!("spiffe://{TD}/agent/server/dc/dc1"), now, now + Duration::from_secs(60));
        let err = Leaf::from_agent(&agent_leaf).unwrap_err();
        assert_eq!(err.code, Code::AgentBadResponse);
        assert!(err.message.contains("not a Consul service identity"), "{}", err.message);
    }

    #[test]
    fn leaf_from_a_foreign_ca_is_not_ready_naming_serial_and_uri() {
        let (ours, foreign) = (TestCa::new(TD, "R1"), TestCa::new(TD, "Foreign"));
        let roots = Roots::from_agent(&ca_roots(&ours, &[&ours])).unwrap();
        let leaf = Leaf::from_agent(&foreign.leaf("web")).unwrap();
        let err = verify_leaf(&leaf, &roots, SystemTime::now()).unwrap_err();
        assert_eq!(err.code, Code::NotReady);
        assert!(err.message.contains(&leaf.serial) && err.message.contains(&leaf.uri), "{}", err.message);
        assert!(err.message.contains("UnknownIssuer"), "{}", err.message);
    }

    #[test]
    fn expired_leaf_is_not_ready() {
        let ca = TestCa::new(TD, "R1");
        let roots = Roots::from_agent(&ca_roots(&ca, &[&ca])).unwrap();
        let leaf = Leaf::from_agent(&ca.leaf("web")).unwrap();
        let later = leaf.valid_before + Duration::from_secs(1);
        let err = verify_leaf(&leaf, &roots, later).unwrap_err();
        assert_eq!(err.code, Code::NotReady);
        assert!(err.message.contains("CertExpired"), "{}", err.message);
    }

    #[test]
    fn cross_signed_leaf_verifies_against_the_old_root_alone_and_both() {
        let r1 = TestCa::new(TD, "Consul CA 1");
        let mut r2 = TestCa::new(TD, "Consul CA 2");
        r2.0.intermediates = vec![r2.cross_signed_by(&r1)];
        let leaf = Leaf::from_agent(&r2.leaf("web")).unwrap();
        assert_eq!(leaf.chain.len(), 2);
        let now = SystemTime::now();
        verify_leaf(&leaf, &Roots::from_agent(&ca_roots(&r1, &[&r1])).unwrap(), now).unwrap();
        verify_leaf(&leaf, &Roots::from_agent(&ca_roots(&r2, &[&r1, &r2])).unwrap(), now).unwrap();
        verify_leaf(&leaf, &Roots::from_agent(&ca_roots(&r2, &[&r2])).unwrap(), now).unwrap();
        // Without the cross-signed copy, the old root alone does not trust the new leaf.
        let mut bare = r2;
        bare.0.intermediates.clear();
        let bare_leaf = Leaf::from_agent(&bare.leaf("web")).unwrap();
        let err = verify_leaf(&bare_leaf, &Roots::from_agent(&ca_roots(&r1, &[&r1])).unwrap(), now).unwrap_err();
        assert_eq!(err.code, Code::NotReady);
    }

    #[test]
    fn leaf_signed_by_an_intermediate_verifies_with_the_chain_it_carries() {
        let root = TestCa::new(TD, "Root");
        let inter = root.intermediate("Secondary DC");
        let leaf = Leaf::from_agent(&inter.leaf("web")).unwrap();
        assert_eq!(leaf.chain.len(), 2);
        verify_leaf(&leaf, &Roots::from_agent(&ca_roots(&root, &[&root])).unwrap(), SystemTime::now()).unwrap();
    }
}
