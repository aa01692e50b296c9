//! PEM decoding of certificates and private keys.
//!
//! Errors are `InvalidArgument`; callers that decode agent-supplied PEM (tls::material) re-code them as
//! `AgentBadResponse`. Error messages never quote key material.

use crate::error::{Error, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Every `CERTIFICATE` block of `pem`, in order. Other block types are skipped; no certificate is an error.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid(format!("malformed certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::invalid("no CERTIFICATE block found in PEM"));
    }
    Ok(certs)
}

/// The first private key of `pem`: SEC1 `EC PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`.
pub fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            Error::invalid("no private key (EC PRIVATE KEY, RSA PRIVATE KEY or PRIVATE KEY block) found in PEM")
        }
        // The error's Display never includes the base64 body, only structural problems.
        other => Error::invalid(format!("malformed private key PEM: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    const LEAF: &str = include_str!("testdata/leaf.pem");
    const SECOND: &str = include_str!("testdata/second.pem");

    #[test]
    fn every_certificate_block_is_returned_in_order() {
        let pem = format!("{LEAF}\n{}{SECOND}", include_str!("testdata/ec_sec1.pem"));
        let certs = certs_from_pem(&pem).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0], certs_from_pem(LEAF).unwrap()[0]);
        assert_eq!(certs[1], certs_from_pem(SECOND).unwrap()[0]);
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        for pem in ["", "hello", include_str!("testdata/ec_sec1.pem")] {
            assert_eq!(certs_from_pem(pem).unwrap_err().code, Code::InvalidArgument);
        }
        let truncated = &LEAF[..LEAF.len() - 30];
        assert_eq!(certs_from_pem(truncated).unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn sec1_pkcs1_and_pkcs8_keys_are_read() {
        assert!(matches!(key_from_pem(include_str!("testdata/ec_sec1.pem")).unwrap(), PrivateKeyDer::Sec1(_)));
        assert!(matches!(key_from_pem(include_str!("testdata/ec_pkcs8.pem")).unwrap(), PrivateKeyDer::Pkcs8(_)));
        assert!(matches!(key_from_pem(include_str!("testdata/rsa_pkcs1.pem")).unwrap(), PrivateKeyDer::Pkcs1(_)));
    }

    #[test]
    fn pem_without_a_key_is_refused() {
        let err = key_from_pem(LEAF).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(err.message.contains("no private key"), "{}", err.message);
    }
}
