//! The built-in Connect CA: EC P-256 roots, leaf signing like Consul's built-in provider, root rotation with a
//! cross-signed intermediate.

use super::util::{colon_hex, minimal_be, pem_encode, pkcs8_p256_to_sec1, rfc3339, san_uri_der, sha1};
use consulnative_core::api::wire::{CaRoot, CaRoots, LeafCert};
use crate::error::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use std::time::Duration;

/// Root certificates live ten years, like Consul's default `RootCertTTL` (87600h).
const ROOT_TTL_SECS: i64 = 87600 * 3600;

/// One CA generation: the self-signed root, its key and its JSON form.
pub struct Root {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    pub json: CaRoot,
}

/// The Connect CA state.
pub struct Ca {
    pub cluster_id: String,
    pub trust_domain: String,
    /// Every root ever created, oldest first; the last one is the active root.
    pub roots: Vec<Root>,
    next_leaf_serial: u64,
}

fn rcgen_err(what: &str, e: rcgen::Error) -> Error {
    Error::internal(format!("dev agent CA: {what}: {e}"))
}

/// Set the validity from Unix seconds (clamped at the epoch), without naming the `time` crate.
fn set_validity(p: &mut CertificateParams, not_before: i64, not_after: i64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    p.not_before = epoch + Duration::from_secs(not_before.max(0) as u64);
    p.not_after = epoch + Duration::from_secs(not_after.max(0) as u64);
}

fn now_secs() -> i64 {
    super::util::unix_secs(std::time::SystemTime::now())
}

fn random_serial_u64() -> u64 {
    // Root serials are random like Consul's; keep them non-zero.
    fastrand::u64(1..)
}

/// The SubjectKeyIdentifier of a certificate, read back from its DER.
fn subject_key_id(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    for ext in cert.extensions() {
        if let x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(kid) = ext.parsed_extension() {
            return Some(kid.0.to_vec());
        }
    }
    None
}

fn random_name_suffix() -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6).map(|_| ALPHA[fastrand::usize(..ALPHA.len())] as char).collect()
}

impl Ca {
    /// A new CA with one active root. `index` is the raft-like index the root is created at.
    pub fn new(index: u64) -> Result<Ca> {
        let cluster_id = super::util::uuid4();
        let trust_domain = format!("{cluster_id}.consul");
        let mut ca = Ca { cluster_id, trust_domain, roots: Vec::new(), next_leaf_serial: 2 };
        let root = ca.make_root(index)?;
        ca.roots.push(root);
        Ok(ca)
    }

    fn make_root(&self, index: u64) -> Result<Root> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| rcgen_err("root key", e))?;
        let params = self.root_params(random_serial_u64())?;
        let nb = now_secs() - 60;
        let mut params = params;
        set_validity(&mut params, nb, nb + ROOT_TTL_SECS);
        let cert = params.self_signed(&key).map_err(|e| rcgen_err("self-sign root", e))?;
        let der = cert.der().to_vec();
        let skid = subject_key_id(&der).unwrap_or_default();
        let serial = cert.params().serial_number.as_ref().map(|s| s.to_bytes()).unwrap_or_default();
        let mut serial_u64 = 0u64;
        for b in serial.iter().rev().take(8).rev() {
            serial_u64 = (serial_u64 << 8) | *b as u64;
        }
        let json = CaRoot {
            id: colon_hex(&sha1(&der)),
            name: "Consul CA Primary Cert".to_string(),
            serial_number: serial_u64,
            signing_key_id: colon_hex(&skid),
            external_trust_domain: self.cluster_id.clone(),
            not_before: rfc3339(nb),
            not_after: rfc3339(nb + ROOT_TTL_SECS),
            root_cert: pem_encode("CERTIFICATE", &der),
            intermediate_certs: None,
            active: true,
            private_key_type: "ec".to_string(),
            private_key_bits: 256,
            create_index: index,
            modify_index: index,
        };
        Ok(Root { cert, key, json })
    }

    fn root_params(&self, serial: u64) -> Result<CertificateParams> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        let short = self.cluster_id.get(..8).unwrap_or(&self.cluster_id);
        dn.push(DnType::CommonName, format!("pri-{}.consul.ca.{}.consul", random_name_suffix(), short));
        p.distinguished_name = dn;
        p.serial_number = Some(SerialNumber::from_slice(&minimal_be(serial)));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let uri = format!("spiffe://{}", self.trust_domain);
        p.subject_alt_names =
            vec![SanType::URI(uri.try_into().map_err(|e: rcgen::Error| rcgen_err("root SAN", e))?)];
        p.use_authority_key_identifier_extension = true;
        Ok(p)
    }

    pub fn active(&self) -> &Root {
        // `roots` is never empty: `new` pushes one and nothing removes any.
        &self.roots[self.roots.len() - 1]
    }

    /// The `/v1/agent/connect/ca/roots` answer.
    pub fn roots_json(&self) -> CaRoots {
        CaRoots {
            active_root_id: self.active().json.id.clone(),
            trust_domain: self.trust_domain.clone(),
            roots: self.roots.iter().map(|r| r.json.clone()).collect(),
        }
    }

    /// The index of the roots answer: the highest ModifyIndex of any root.
    pub fn roots_index(&self) -> u64 {
        self.roots.iter().map(|r| r.json.modify_index).max().unwrap_or(1).max(1)
    }

    /// Rotate: a new active root, the old one kept inactive, and a copy of the new root cross-signed by the old
    /// key first in the new root's `IntermediateCerts`.
    pub fn rotate(&mut self, index: u64) -> Result<()> {
        let mut new_root = self.make_root(index)?;
        let old = self.active();
        let mut cross_params = new_root.cert.params().clone();
        cross_params.serial_number = Some(SerialNumber::from_slice(&minimal_be(random_serial_u64())));
        let cross = cross_params
            .signed_by(&new_root.key, &old.cert, &old.key)
            .map_err(|e| rcgen_err("cross-sign new root", e))?;
        new_root.json.intermediate_certs = Some(vec![pem_encode("CERTIFICATE", cross.der())]);
        if let Some(old) = self.roots.last_mut() {
            old.json.active = false;
            old.json.modify_index = index;
        }
        self.roots.push(new_root);
        Ok(())
    }

    pub fn service_uri(&self, datacenter: &str, service: &str) -> String {
        format!("spiffe://{}/ns/default/dc/{}/svc/{}", self.trust_domain, datacenter, service)
    }

    /// Sign a leaf for `service` with the active root, valid over [not_before, not_after] (Unix seconds).
    pub fn sign_leaf(&mut self, service: &str, datacenter: &str, not_before: i64, not_after: i64, index: u64) -> Result<LeafCert> {
        if service.is_empty() || !service.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'%') {
            return Err(Error::invalid(format!("invalid service name {service:?}")));
        }
        let serial = self.next_leaf_serial;
        self.next_leaf_serial += 1;
        let uri = self.service_uri(datacenter, service);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| rcgen_err("leaf key", e))?;
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.serial_number = Some(SerialNumber::from_slice(&minimal_be(serial)));
        set_validity(&mut p, not_before, not_after);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyAgreement];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        // The SAN goes in as a custom extension because rcgen writes its own SAN non-critical; with an empty
        // subject RFC 5280 requires it critical, and Consul marks it so.
        let mut san = CustomExtension::from_oid_content(&[2, 5, 29, 17], san_uri_der(&uri));
        san.set_criticality(true);
        p.custom_extensions = vec![san];
        p.use_authority_key_identifier_extension = true;
        let root = self.active();
        let cert = p.signed_by(&key, &root.cert, &root.key).map_err(|e| rcgen_err("sign leaf", e))?;
        let sec1 = pkcs8_p256_to_sec1(key.serialized_der())
            .ok_or_else(|| Error::internal("dev agent CA: could not convert the leaf key to SEC1"))?;
        let mut cert_pem = pem_encode("CERTIFICATE", cert.der());
        for inter in root.json.intermediate_certs.iter().flatten() {
            cert_pem.push_str(inter);
        }
        Ok(LeafCert {
            serial_number: colon_hex(&minimal_be(serial)),
            cert_pem,
            private_key_pem: pem_encode("EC PRIVATE KEY", &sec1),
            service: service.to_string(),
            service_uri: uri,
            valid_after: rfc3339(not_before),
            valid_before: rfc3339(not_after),
            create_index: index,
            modify_index: index,
            namespace: None,
            partition: None,
        })
    }
}
