//! One certificate authority (a root or an intermediate) and its key, and everything it signs: intermediates,
//! cross-signed copies of itself, and Consul-shaped leaves.

use super::der::{minimal_be, pkcs8_p256_to_sec1, san_uri_der, sha1};
use crate::error::{Error, Result};
use consulnative_core::api::wire::{colon_hex, pem_encode, rfc3339, CaRoot, CaRoots, LeafCert};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

/// CA certificates live ten years, like Consul's default `RootCertTTL` (87600h).
pub const ROOT_TTL: Duration = Duration::from_secs(87600 * 3600);

/// CA certificates are valid from this long before their creation.
const CA_BACKDATE: Duration = Duration::from_secs(60);

/// Leaf serials: one counter for the whole process, so no two leaves it issues share a serial, across rotations
/// and across authorities (Consul's built-in CA also numbers its leaves in sequence).
static NEXT_LEAF_SERIAL: AtomicU64 = AtomicU64::new(2);

/// A CA certificate and its key: a self-signed root ([`Authority::root`]) or an intermediate signed by another
/// authority ([`Authority::intermediate`]).
pub struct Authority {
    /// Lower-case trust domain, `<cluster-id>.consul`.
    pub trust_domain: String,
    /// The `Name` of this root in the roots answer; the subject's common name unless the owner renames it.
    pub name: String,
    /// The CA certificate as rcgen signs with it (for a user-supplied root, an equivalent certificate rebuilt
    /// from its subject, key and key identifier: see [`Authority::from_pem`]).
    pub cert: Certificate,
    /// The DER of the CA certificate as published in the roots answer and after leaves.
    pub der: Vec<u8>,
    /// The CA's private key.
    pub key: KeyPair,
    /// PEM certificates appended after each leaf's own certificate in `CertPEM`, nearest first: the cross-signed
    /// copy of a new root during a rotation, or the chain of an intermediate.
    pub intermediates: Vec<String>,
}

fn rcgen_err(what: &str, e: rcgen::Error) -> Error {
    Error::internal(format!("dev agent CA: {what}: {e}"))
}

fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| rcgen_err("P-256 key generation", e))
}

/// CA serials are random, like Consul's; never zero.
fn random_ca_serial() -> SerialNumber {
    SerialNumber::from_slice(&minimal_be(fastrand::u64(1..)))
}

/// An X.509 validity time. Certificates hold the years 0000 to 9999 only; anything else is the caller's error.
fn x509_time(t: SystemTime, what: &str) -> Result<OffsetDateTime> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(e) => i64::try_from(e.duration().as_secs()).ok().map(|s| -s),
    };
    secs.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| Error::invalid(format!("{what} is outside the years 0000 to 9999 a certificate can hold")))
}

/// The SubjectKeyIdentifier of a certificate, read back from its DER.
fn subject_key_id(der: &[u8]) -> Vec<u8> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return Vec::new() };
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(kid) => Some(kid.0.to_vec()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A CA certificate's parameters: subject `CN=<common_name>`, URI SAN `spiffe://<trust_domain>`, CA:TRUE,
/// valid from a minute ago for [`ROOT_TTL`].
fn ca_params(trust_domain: &str, common_name: &str) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    p.serial_number = Some(random_ca_serial());
    let now = SystemTime::now();
    p.not_before = x509_time(now - CA_BACKDATE, "CA not_before")?;
    p.not_after = x509_time(now - CA_BACKDATE + ROOT_TTL, "CA not_after")?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let uri = format!("spiffe://{trust_domain}");
    p.subject_alt_names =
        vec![SanType::URI(uri.try_into().map_err(|e: rcgen::Error| rcgen_err("trust domain URI SAN", e))?)];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

impl Authority {
    /// A self-signed EC P-256 root for `trust_domain` (e.g. `11111111-2222-3333-4444-555555555555.consul`) with
    /// subject `CN=<common_name>`.
    pub fn root(trust_domain: &str, common_name: &str) -> Result<Authority> {
        Authority::root_signed_with(trust_domain, common_name, new_key()?, ROOT_TTL)
    }

    /// A self-signed root with the given key, valid from a minute ago for `ttl`.
    pub(crate) fn root_signed_with(
        trust_domain: &str,
        common_name: &str,
        key: KeyPair,
        ttl: Duration,
    ) -> Result<Authority> {
        let trust_domain = trust_domain.to_ascii_lowercase();
        let mut params = ca_params(&trust_domain, common_name)?;
        let now = SystemTime::now();
        params.not_after = x509_time(now - CA_BACKDATE + ttl, "CA not_after")?;
        let cert = params.self_signed(&key).map_err(|e| rcgen_err("self-sign root", e))?;
        let der = cert.der().to_vec();
        Ok(Authority { trust_domain, name: common_name.to_string(), cert, der, key, intermediates: Vec::new() })
    }

    /// An intermediate CA signed by this one (as in secondary datacenters or Vault). Leaves it signs carry it,
    /// followed by this authority's own intermediates.
    pub fn intermediate(&self, common_name: &str) -> Result<Authority> {
        let key = new_key()?;
        let cert = ca_params(&self.trust_domain, common_name)?
            .signed_by(&key, &self.cert, &self.key)
            .map_err(|e| rcgen_err("sign intermediate", e))?;
        let mut intermediates = vec![pem_encode("CERTIFICATE", cert.der())];
        intermediates.extend(self.intermediates.iter().cloned());
        Ok(Authority {
            trust_domain: self.trust_domain.clone(),
            name: common_name.to_string(),
            der: cert.der().to_vec(),
            cert,
            key,
            intermediates,
        })
    }

    /// This authority's certificate in PEM.
    pub fn pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// A copy of this certificate (same subject, same key) signed by `old`, in PEM: what Consul puts first in a
    /// new root's `IntermediateCerts` during a rotation, so new leaves verify against the old root too.
    pub fn cross_signed_by(&self, old: &Authority) -> Result<String> {
        let mut params = self.cert.params().clone();
        params.serial_number = Some(random_ca_serial());
        let cross = params.signed_by(&self.key, &old.cert, &old.key).map_err(|e| rcgen_err("cross-sign", e))?;
        Ok(pem_encode("CERTIFICATE", cross.der()))
    }

    /// A leaf for `service` in namespace `default`, datacenter `dc1`, valid from one minute ago for 72 hours.
    pub fn leaf(&self, service: &str) -> Result<LeafCert> {
        let uri = format!("spiffe://{}/ns/default/dc/dc1/svc/{service}", self.trust_domain);
        let now = SystemTime::now();
        self.sign_leaf(&uri, now - Duration::from_secs(60), now + Duration::from_secs(72 * 3600))
    }

    /// A leaf shaped like Consul's, with exactly this URI SAN and validity: EC P-256, empty subject, the URI SAN
    /// critical, EKU server+client auth, AKI/SKI, the key as SEC1 `EC PRIVATE KEY`. `CertPEM` is the leaf followed
    /// by [`Authority::intermediates`]. Indexes are 1 and `Service` is the URI's last segment; the agent sets both.
    pub fn sign_leaf(&self, uri: &str, not_before: SystemTime, not_after: SystemTime) -> Result<LeafCert> {
        if uri.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(format!("invalid URI SAN {uri:?}: it must be printable ASCII")));
        }
        let nb = x509_time(not_before, "not_before")?;
        let na = x509_time(not_after, "not_after")?;
        if nb > na {
            return Err(Error::invalid(format!("not_before {nb} is after not_after {na}")));
        }
        let serial = minimal_be(NEXT_LEAF_SERIAL.fetch_add(1, Ordering::Relaxed));
        let key = new_key()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        p.not_before = nb;
        p.not_after = na;
        // Consul's leaves carry BasicConstraints with cA absent (Go's `BasicConstraintsValid: true, IsCA: false`
        // marshals an empty SEQUENCE, critical). rcgen's ExplicitNoCa writes `cA FALSE`, a DEFAULT value that DER
        // forbids and strict parsers (Python's cryptography) reject, so the extension is written here.
        p.is_ca = IsCa::NoCa;
        let mut basic_constraints = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
        basic_constraints.set_criticality(true);
        // Consul's leaf key usages [agent/connect/ca/provider_consul.go]: digital signature, key and data
        // encipherment, key agreement.
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::DataEncipherment,
            KeyUsagePurpose::KeyAgreement,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        // The SAN goes in as a custom extension because rcgen writes its own SAN non-critical; with an empty
        // subject RFC 5280 requires it critical, and Consul marks it so.
        let mut san = CustomExtension::from_oid_content(&[2, 5, 29, 17], san_uri_der(uri));
        san.set_criticality(true);
        p.custom_extensions = vec![basic_constraints, san];
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.cert, &self.key).map_err(|e| rcgen_err("sign leaf", e))?;
        let sec1 = pkcs8_p256_to_sec1(key.serialized_der())
            .ok_or_else(|| Error::internal("dev agent CA: could not convert the leaf key to SEC1"))?;
        let mut cert_pem = pem_encode("CERTIFICATE", cert.der());
        for intermediate in &self.intermediates {
            cert_pem.push_str(intermediate);
        }
        Ok(LeafCert {
            serial_number: colon_hex(&serial),
            cert_pem,
            private_key_pem: pem_encode("EC PRIVATE KEY", &sec1),
            service: uri.rsplit('/').next().unwrap_or_default().to_string(),
            service_uri: uri.to_string(),
            valid_after: rfc3339(nb.unix_timestamp()),
            valid_before: rfc3339(na.unix_timestamp()),
            create_index: 1,
            modify_index: 1,
            namespace: None,
            partition: None,
        })
    }

    /// This certificate as the roots endpoint lists it: `ID` is the SHA-1 fingerprint, `SigningKeyID` the
    /// SubjectKeyIdentifier, both colon-hex. Indexes are 0; the agent sets them.
    pub fn ca_root(&self, active: bool) -> CaRoot {
        let der = &self.der;
        let (serial, not_before, not_after) = match x509_parser::parse_x509_certificate(der) {
            Ok((_, c)) => {
                (c.raw_serial().to_vec(), c.validity().not_before.timestamp(), c.validity().not_after.timestamp())
            }
            Err(_) => (Vec::new(), 0, 0),
        };
        let serial_number = serial.iter().rev().take(8).rev().fold(0u64, |acc, b| (acc << 8) | *b as u64);
        CaRoot {
            id: colon_hex(&sha1(der)),
            name: self.name.clone(),
            serial_number,
            signing_key_id: colon_hex(&subject_key_id(der)),
            external_trust_domain: self.trust_domain.trim_end_matches(".consul").to_string(),
            not_before: rfc3339(not_before),
            not_after: rfc3339(not_after),
            root_cert: self.pem(),
            intermediate_certs: if self.intermediates.is_empty() { None } else { Some(self.intermediates.clone()) },
            active,
            private_key_type: "ec".to_string(),
            private_key_bits: 256,
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// A roots answer listing `roots` in order, with `active` (one of them) marked active, for tests that build the
/// agent's answers themselves.
pub fn ca_roots(active: &Authority, roots: &[&Authority]) -> CaRoots {
    let active_root_id = active.ca_root(true).id;
    CaRoots {
        trust_domain: active.trust_domain.clone(),
        roots: roots
            .iter()
            .map(|ca| {
                let root = ca.ca_root(false);
                CaRoot { active: root.id == active_root_id, ..root }
            })
            .collect(),
        active_root_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_of(pem: &str) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM").1.contents
    }

    #[test]
    fn leaves_are_shaped_like_consuls() {
        let ca = Authority::root("ABC.consul", "Consul CA 7").unwrap();
        let leaf = ca.leaf("web").unwrap();
        let der = der_of(&leaf.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.subject().as_raw().len() <= 2, "empty subject");
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(san.critical);
        assert_eq!(san.value.general_names.len(), 1);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && eku.server_auth);
        let serial: Vec<u8> = cert.raw_serial().iter().copied().skip_while(|b| *b == 0).collect();
        assert_eq!(leaf.serial_number, colon_hex(&serial));
        assert_eq!(leaf.service, "web");
        assert_eq!(leaf.service_uri, "spiffe://abc.consul/ns/default/dc/dc1/svc/web");
        assert!(leaf.private_key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        let root_der = der_of(&ca.pem());
        let (_, root) = x509_parser::parse_x509_certificate(&root_der).unwrap();
        assert!(root.is_ca());
        let san = root.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(format!("{:?}", san.general_names), "[URI(\"spiffe://abc.consul\")]");
        let json = ca.ca_root(true);
        assert_eq!(json.id.split(':').count(), 20, "SHA-1 fingerprint");
        assert_eq!(json.external_trust_domain, "abc");
    }

    #[test]
    fn times_a_certificate_cannot_hold_are_invalid_not_panics() {
        let ca = Authority::root("abc.consul", "R").unwrap();
        let uri = "spiffe://abc.consul/ns/default/dc/dc1/svc/web";
        let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        let err = ca.sign_leaf(uri, SystemTime::now(), far).unwrap_err();
        assert_eq!(err.http_status(), 400, "{err}");
        assert!(err.message().contains("not_after"), "{err}");
        let now = SystemTime::now();
        let err = ca.sign_leaf(uri, now, now - Duration::from_secs(1)).unwrap_err();
        assert!(err.message().contains("after not_after"), "{err}");
        assert!(ca.sign_leaf("spiffe://abc.consul/ns/default/dc/dc1/svc/a b", now, now).is_err());
        // Before 1970 and after 2049 are fine (GeneralizedTime).
        let old = UNIX_EPOCH - Duration::from_secs(86400 * 365 * 30);
        let late = UNIX_EPOCH + Duration::from_secs(86400 * 365 * 200);
        let leaf = ca.sign_leaf(uri, old, late).unwrap();
        assert!(leaf.valid_after.starts_with("1940-") && leaf.valid_before.starts_with("2169-"), "{leaf:?}");
    }

    #[test]
    fn leaf_serials_are_unique_across_authorities() {
        let (a, b) = (Authority::root("abc.consul", "A").unwrap(), Authority::root("abc.consul", "B").unwrap());
        let serials: std::collections::HashSet<String> =
            (0..4).flat_map(|_| [a.leaf("x").unwrap().serial_number, b.leaf("x").unwrap().serial_number]).collect();
        assert_eq!(serials.len(), 8);
    }
}
