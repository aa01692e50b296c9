//! A test CA that issues Consul-shaped certificates (feature `devagent`), like Go's `connect.TestCA`.
//!
//! Roots: self-signed EC P-256, URI SAN `spiffe://<trust-domain>`, CA:TRUE. Leaves: EC P-256, empty subject,
//! one critical URI SAN, EKU client+server auth, valid from one minute ago, private key as SEC1
//! `EC PRIVATE KEY` like the agent sends. Rotation: [`TestCa::cross_signed_by`] signs this root's subject and
//! key with an older root; [`TestCa::intermediates`] lists what new leaves carry after themselves.
//! For tests and demos only: keys live in memory and nothing is persisted.

use consulnative_core::api::wire::{CaRoot, CaRoots, LeafCert};
use crate::util::{pkcs8_p256_to_sec1, san_uri_der};
use consulnative_core::api::wire::pem_encode;
use consulnative_core::api::wire::serial_colon_hex;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static SERIAL: AtomicU64 = AtomicU64::new(0x1d);

fn next_serial() -> SerialNumber {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let start = n.iter().position(|&b| b != 0).unwrap_or(7);
    // A leading byte >= 0x80 would read as negative; rcgen adds no padding, so keep it positive.
    let mut bytes = n[start..].to_vec();
    if bytes[0] >= 0x80 {
        bytes.insert(0, 0);
    }
    SerialNumber::from_slice(&bytes)
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH)
        .expect("test times are after 1970")
}

/// A Consul-like CA root (or intermediate) and its key.
pub struct TestCa {
    pub trust_domain: String,
    /// The subject's common name.
    pub name: String,
    pub cert: Certificate,
    pub key: KeyPair,
    /// PEM certificates appended after each leaf's certificate in `CertPEM` (cross-signed root, intermediates).
    pub intermediates: Vec<String>,
}

impl TestCa {
    /// A self-signed root for `trust_domain` (e.g. `11111111-2222-3333-4444-555555555555.consul`), subject
    /// `CN=<common_name>`.
    pub fn new(trust_domain: &str, common_name: &str) -> TestCa {
        let key = KeyPair::generate().expect("P-256 key generation");
        let cert = root_params(trust_domain, common_name)
            .self_signed(&key)
            .expect("self-signed root");
        TestCa {
            trust_domain: trust_domain.to_ascii_lowercase(),
            name: common_name.to_string(),
            cert,
            key,
            intermediates: Vec::new(),
        }
    }

    /// An intermediate CA signed by this CA (as in secondary datacenters or Vault). Leaves it signs carry it,
    /// followed by this CA's own intermediates.
    pub fn intermediate(&self, common_name: &str) -> TestCa {
        let key = KeyPair::generate().expect("P-256 key generation");
        let cert = root_params(&self.trust_domain, common_name)
            .signed_by(&key, &self.cert, &self.key)
            .expect("intermediate");
        let mut intermediates = vec![cert.pem()];
        intermediates.extend(self.intermediates.iter().cloned());
        TestCa {
            trust_domain: self.trust_domain.clone(),
            name: common_name.to_string(),
            cert,
            key,
            intermediates,
        }
    }

    /// This root's certificate in PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A copy of this root (same subject, same key) signed by `old`: what Consul puts first in the new root's
    /// `IntermediateCerts` during a rotation, so new leaves verify against the old root too.
    pub fn cross_signed_by(&self, old: &TestCa) -> String {
        let mut params = self.cert.params().clone();
        params.serial_number = Some(next_serial());
        params
            .signed_by(&self.key, &old.cert, &old.key)
            .expect("cross-signed root")
            .pem()
    }

    /// A leaf for service `service` in namespace `default`, datacenter `dc1`, valid from one minute ago for 72 h.
    pub fn leaf(&self, service: &str) -> LeafCert {
        let uri = format!(
            "spiffe://{}/ns/default/dc/dc1/svc/{service}",
            self.trust_domain
        );
        let now = SystemTime::now();
        self.leaf_for_uri(
            &uri,
            now - Duration::from_secs(60),
            now + Duration::from_secs(72 * 3600),
        )
    }

    /// A leaf with exactly this URI SAN and validity window.
    pub fn leaf_for_uri(
        &self,
        uri: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> LeafCert {
        let key = KeyPair::generate().expect("P-256 key generation");
        let serial = next_serial();
        let serial_hex = serial_colon_hex(&serial.to_bytes());
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.serial_number = Some(serial);
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(not_before);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        // rcgen marks SANs non-critical; Consul's leaves (empty subject) carry a critical SAN, so write it by hand.
        let mut san = CustomExtension::from_oid_content(&[2, 5, 29, 17], san_uri_der(uri));
        san.set_criticality(true);
        params.custom_extensions = vec![san];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("leaf");
        let mut cert_pem = cert.pem();
        for intermediate in &self.intermediates {
            cert_pem.push_str(intermediate);
        }
        let service = uri.rsplit('/').next().unwrap_or_default().to_string();
        LeafCert {
            serial_number: serial_hex,
            cert_pem,
            private_key_pem: sec1_pem(&key),
            service,
            service_uri: uri.to_string(),
            valid_after: format!("{}", since_epoch(not_before).as_secs()),
            valid_before: format!("{}", since_epoch(not_after).as_secs()),
            create_index: 1,
            modify_index: 1,
            namespace: None,
            partition: None,
        }
    }

    /// This root as the agent lists it. `ID` is the colon-hex key identifier (not a SHA-1: tests only).
    pub fn ca_root(&self, active: bool) -> CaRoot {
        let id = serial_colon_hex(&self.cert.key_identifier());
        CaRoot {
            id: id.clone(),
            name: self.name.clone(),
            signing_key_id: id,
            external_trust_domain: self.trust_domain.trim_end_matches(".consul").to_string(),
            root_cert: self.pem(),
            intermediate_certs: if self.intermediates.is_empty() {
                None
            } else {
                Some(self.intermediates.clone())
            },
            active,
            private_key_type: "ec".into(),
            private_key_bits: 256,
            ..Default::default()
        }
    }
}

/// The agent's roots answer: `roots` in order, `active` marked active.
pub fn ca_roots(active: &TestCa, roots: &[&TestCa]) -> CaRoots {
    let active_id = active.ca_root(true).id;
    CaRoots {
        active_root_id: active_id.clone(),
        trust_domain: active.trust_domain.clone(),
        roots: roots
            .iter()
            .map(|ca| {
                let root = ca.ca_root(false);
                let is_active = root.id == active_id;
                CaRoot {
                    active: is_active,
                    ..root
                }
            })
            .collect(),
    }
}

fn root_params(trust_domain: &str, common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.serial_number = Some(next_serial());
    let now = SystemTime::now();
    params.not_before =
        rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now - Duration::from_secs(3600));
    params.not_after =
        rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now + Duration::from_secs(10 * 365 * 86400));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.subject_alt_names = vec![SanType::URI(
        format!("spiffe://{trust_domain}")
            .try_into()
            .expect("ASCII trust domain"),
    )];
    params.use_authority_key_identifier_extension = true;
    params
}

/// The key as SEC1 `EC PRIVATE KEY` PEM, like the agent sends.
fn sec1_pem(key: &KeyPair) -> String {
    let sec1 = pkcs8_p256_to_sec1(&key.serialize_der()).expect("rcgen makes P-256 PKCS#8 keys");
    pem_encode("EC PRIVATE KEY", &sec1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_shaped_like_consuls() {
        let ca = TestCa::new("abc.consul", "Consul CA 7");
        let leaf = ca.leaf("web");
        let der = crate::identity::certs_from_pem(&leaf.cert_pem)
            .unwrap()
            .remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.subject().as_raw().len() <= 2, "empty subject");
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(san.critical);
        assert_eq!(san.value.general_names.len(), 1);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && eku.server_auth);
        assert_eq!(
            leaf.serial_number,
            crate::identity::inspect(&der).unwrap().serial
        );
        let root = crate::identity::certs_from_pem(&ca.pem())
            .unwrap()
            .remove(0);
        let info = crate::identity::inspect(&root).unwrap();
        assert!(info.is_ca);
        assert_eq!(info.uri_sans, vec!["spiffe://abc.consul".to_string()]);
    }
}
