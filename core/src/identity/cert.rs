//! Certificate inspection with x509-parser: what the crate reports about a certificate.

use crate::error::{Error, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

/// What the crate needs to know about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Every URI subject alternative name, in order. A Consul leaf has exactly one.
    pub uri_sans: Vec<String>,
    /// Lowercase colon-hex of the minimal big-endian serial bytes, as Consul formats it.
    pub serial: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Basic constraints `CA:TRUE`.
    pub is_ca: bool,
    /// RFC 4514-style subject; empty for a Consul leaf.
    pub subject: String,
}

/// Parse one DER certificate. Malformed DER (or trailing bytes) is an `InvalidArgument` error.
pub fn inspect(der: &[u8]) -> Result<CertInfo> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| Error::invalid(format!("malformed certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::invalid(format!("malformed certificate: {} trailing bytes after the DER", rest.len())));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::invalid(format!("malformed subject alternative name extension: {e}")))?;
    let uri_sans = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(uri.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| Error::invalid(format!("malformed basic constraints extension: {e}")))?
        .is_some_and(|bc| bc.value.ca);
    Ok(CertInfo {
        uri_sans,
        serial: serial_colon_hex(cert.raw_serial()),
        not_before: system_time(cert.validity().not_before),
        not_after: system_time(cert.validity().not_after),
        is_ca,
        subject: cert.subject().to_string(),
    })
}

fn system_time(t: ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Minimal big-endian bytes (leading zero bytes stripped, one kept if all are zero) as lowercase colon-hex:
/// `0x0c0a` → `0c:0a`, `0x1d` → `1d`. This is the `SerialNumber` / `ClientCertSerial` format of the agent API.
pub fn serial_colon_hex(big_endian: &[u8]) -> String {
    let start = big_endian.iter().position(|&b| b != 0).unwrap_or(big_endian.len().saturating_sub(1));
    let bytes = if big_endian.is_empty() { &[0u8][..] } else { &big_endian[start..] };
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::identity::certs_from_pem;

    #[test]
    fn serials_are_minimal_lowercase_colon_hex() {
        assert_eq!(serial_colon_hex(&[0x0c, 0x0a]), "0c:0a");
        assert_eq!(serial_colon_hex(&[0x1d]), "1d");
        assert_eq!(serial_colon_hex(&[0x00, 0x00, 0x1d]), "1d");
        assert_eq!(serial_colon_hex(&[0x00, 0xab, 0xcd]), "ab:cd");
        assert_eq!(serial_colon_hex(&[0x00, 0x00]), "00");
        assert_eq!(serial_colon_hex(&[]), "00");
        let vault = [0x5fu8; 20];
        assert_eq!(serial_colon_hex(&vault).split(':').count(), 20);
    }

    #[test]
    fn consul_shaped_leaf_is_inspected() {
        let der = certs_from_pem(include_str!("testdata/leaf.pem")).unwrap().remove(0);
        let info = inspect(&der).unwrap();
        assert_eq!(
            info.uri_sans,
            vec!["spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web".to_string()]
        );
        assert_eq!(info.serial, "0c:0a");
        assert!(!info.is_ca);
        assert_eq!(info.subject, "");
        assert!(info.not_before < info.not_after);
    }

    #[test]
    fn certificate_without_san_has_no_uri() {
        let der = certs_from_pem(include_str!("testdata/second.pem")).unwrap().remove(0);
        let info = inspect(&der).unwrap();
        assert!(info.uri_sans.is_empty());
        assert_eq!(info.serial, "1d");
        assert_eq!(info.subject, "CN=Second Cert");
    }

    #[test]
    fn garbage_der_is_refused() {
        assert_eq!(inspect(b"\x30\x03\x02\x01").unwrap_err().code, Code::InvalidArgument);
        let mut der = certs_from_pem(include_str!("testdata/leaf.pem")).unwrap().remove(0).to_vec();
        der.push(0);
        assert_eq!(inspect(&der).unwrap_err().code, Code::InvalidArgument);
    }
}
