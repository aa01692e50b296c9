//! A root CA the user supplies (`PUT /v1/connect/ca/configuration` with `Config.PrivateKey` and `Config.RootCert`,
//! which Consul's built-in provider accepts): the published root is exactly the user's certificate and leaves are
//! signed by the user's key.
//!
//! rcgen signs only with an issuer it built itself, so the issuer is rebuilt from the user's certificate: the same
//! subject (byte for byte, checked), the same key and the same key identifier, so each leaf's issuer name and
//! AuthorityKeyIdentifier match the user's root exactly and any verifier (webpki, OpenSSL's AKI/SKI matching,
//! Python's cryptography) chains it. The rebuilt certificate itself is never published.

use super::authority::{Authority, ROOT_TTL};
use super::der::{p256_sec1_to_pkcs8, pem_blocks};
use crate::error::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyIdMethod, KeyPair,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::PrivatePkcs8KeyDer;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The user's private key: SEC1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`, EC P-256 (what the dev agent signs
/// with; Consul also accepts other curves and RSA, which answer 400 here).
pub fn private_key_from_pem(pem: &str) -> Result<KeyPair> {
    let blocks = pem_blocks(pem);
    let pkcs8 = match blocks.iter().find(|(label, _)| label.ends_with("PRIVATE KEY")) {
        Some((label, der)) if label == "EC PRIVATE KEY" => p256_sec1_to_pkcs8(der),
        Some((label, der)) if label == "PRIVATE KEY" => der.clone(),
        Some((label, _)) => {
            return Err(Error::invalid(format!(
                "PrivateKey: the dev agent signs with EC P-256 keys only, not a {label:?} PEM block"
            )))
        }
        None => return Err(Error::invalid("PrivateKey: no PEM private key block found")),
    };
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(pkcs8), &PKCS_ECDSA_P256_SHA256).map_err(|e| {
        Error::invalid(format!(
            "PrivateKey: not a usable EC P-256 private key (the dev agent signs with P-256 only): {e}"
        ))
    })
}

/// The subject of `cert` as rcgen writes it. `Err` when rcgen cannot reproduce it (multi-valued RDNs, repeated
/// attribute types, string types other than Printable/UTF8/IA5).
fn distinguished_name(cert: &X509Certificate<'_>) -> Result<DistinguishedName> {
    let unsupported =
        |why: &str| Error::invalid(format!("RootCert: the dev agent cannot sign under this subject: {why}"));
    let mut dn = DistinguishedName::new();
    for rdn in cert.subject().iter() {
        let attrs: Vec<_> = rdn.iter().collect();
        let [attr] = attrs.as_slice() else { return Err(unsupported("a multi-valued RDN")) };
        let arcs: Vec<u64> = attr.attr_type().iter().map(|i| i.collect()).ok_or_else(|| unsupported("an OID"))?;
        let ty = match arcs.as_slice() {
            [2, 5, 4, 3] => DnType::CommonName,
            [2, 5, 4, 6] => DnType::CountryName,
            [2, 5, 4, 7] => DnType::LocalityName,
            [2, 5, 4, 8] => DnType::StateOrProvinceName,
            [2, 5, 4, 10] => DnType::OrganizationName,
            [2, 5, 4, 11] => DnType::OrganizationalUnitName,
            _ => DnType::CustomDnType(arcs.clone()),
        };
        let value = attr.attr_value();
        let text = std::str::from_utf8(value.data).map_err(|_| unsupported("a non-UTF-8 value"))?.to_string();
        let value = match value.header.tag().0 {
            0x0c => DnValue::Utf8String(text),
            0x13 => DnValue::PrintableString(text.try_into().map_err(|_| unsupported("a PrintableString"))?),
            0x16 => DnValue::Ia5String(text.try_into().map_err(|_| unsupported("an IA5String"))?),
            tag => return Err(unsupported(&format!("string type tag {tag}"))),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

impl Authority {
    /// The user's root: `cert_pem` (its first certificate) with the key in `key_pem`. Checks that the key is the
    /// certificate's and that the certificate is a CA.
    pub fn from_pem(trust_domain: &str, name: &str, cert_pem: &str, key_pem: &str) -> Result<Authority> {
        let key = private_key_from_pem(key_pem)?;
        let der = pem_blocks(cert_pem)
            .into_iter()
            .find(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| der)
            .ok_or_else(|| Error::invalid("RootCert: no PEM CERTIFICATE block found"))?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| Error::invalid(format!("RootCert: not a valid X.509 certificate: {e}")))?;
        if cert.public_key().raw != key.public_key_der().as_slice() {
            return Err(Error::invalid("RootCert: the certificate's public key does not match PrivateKey"));
        }
        if !cert.is_ca() {
            return Err(Error::invalid("RootCert: the certificate is not a CA (BasicConstraints cA is not true)"));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&cert)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        if let Some(ski) = cert.extensions().iter().find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        }) {
            params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
        }
        let issuer =
            params.self_signed(&key).map_err(|e| Error::internal(format!("dev agent CA: rebuild the root: {e}")))?;
        let rebuilt_subject = X509Certificate::from_der(issuer.der()).map(|(_, c)| c.subject().as_raw().to_vec());
        if rebuilt_subject.ok().as_deref() != Some(cert.subject().as_raw()) {
            return Err(Error::invalid(
                "RootCert: the dev agent cannot reproduce this certificate's subject encoding to sign under it",
            ));
        }
        Ok(Authority {
            trust_domain: trust_domain.to_ascii_lowercase(),
            name: name.to_string(),
            cert: issuer,
            der,
            key,
            intermediates: Vec::new(),
        })
    }

    /// A new root like [`Authority::root`] but with the user's key (`Config.PrivateKey` without `RootCert`, for
    /// which Consul's provider generates the root certificate itself).
    pub fn root_with_key(trust_domain: &str, common_name: &str, key_pem: &str) -> Result<Authority> {
        let key = private_key_from_pem(key_pem)?;
        Authority::root_signed_with(trust_domain, common_name, key, ROOT_TTL)
    }
}
