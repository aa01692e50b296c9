//! The JSON shapes of the Consul agent HTTP API that a Connect-native app uses.
//!
//! Field names follow Consul's casing exactly (see docs/consul-connect-api.md). The client (agent/client.rs)
//! and the dev agent crate both use these types, so both sides of the wire agree by construction. Every struct
//! defaults missing fields, because real agents omit some of them depending on version and edition.
//!
//! Each field is the JSON key of the same name with Consul's meaning, so only fields with a rule of our own carry
//! a doc comment (hence the `missing_docs` allowance below); every type says which endpoint it belongs to.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /v1/agent/connect/ca/roots`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default)]
pub struct CaRoots {
    #[serde(rename = "ActiveRootID")]
    pub active_root_id: String,
    #[serde(rename = "TrustDomain")]
    pub trust_domain: String,
    /// Never null on the wire; a null from a broken agent reads as empty.
    #[serde(rename = "Roots", deserialize_with = "null_as_empty")]
    pub roots: Vec<CaRoot>,
}

/// One CA root in [`CaRoots`].
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct CaRoot {
    /// Colon-hex SHA-1 fingerprint of the root's DER.
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// uint64: may exceed 2^63.
    pub serial_number: u64,
    #[serde(rename = "SigningKeyID")]
    pub signing_key_id: String,
    pub external_trust_domain: String,
    pub not_before: String,
    pub not_after: String,
    /// PEM; may hold several certificates.
    pub root_cert: String,
    /// PEM each, or null. Cross-signed and signing intermediates, local signer last.
    pub intermediate_certs: Option<Vec<String>>,
    pub active: bool,
    pub private_key_type: String,
    pub private_key_bits: u32,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `GET /v1/agent/connect/ca/leaf/<service>`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct LeafCert {
    /// Lowercase colon-hex of the minimal big-endian serial bytes.
    pub serial_number: String,
    /// The leaf followed by the active root's intermediates.
    #[serde(rename = "CertPEM")]
    pub cert_pem: String,
    /// `EC PRIVATE KEY` (SEC1) in practice; PKCS#1 RSA or PKCS#8 possible.
    #[serde(rename = "PrivateKeyPEM")]
    pub private_key_pem: String,
    pub service: String,
    #[serde(rename = "ServiceURI")]
    pub service_uri: String,
    pub valid_after: String,
    pub valid_before: String,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

/// Body of `POST /v1/agent/connect/authorize`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct AuthorizeRequest {
    pub target: String,
    #[serde(rename = "ClientCertURI")]
    pub client_cert_uri: String,
    pub client_cert_serial: String,
}

/// Answer of `POST /v1/agent/connect/authorize`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct AuthorizeResponse {
    pub authorized: bool,
    pub reason: String,
}

/// Body of `PUT /v1/agent/service/register`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceRegistration {
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<ServiceCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<ServiceCheck>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ServiceConnect>,
}

/// A check definition inside a [`ServiceRegistration`]: TCP or TTL (an HTTPS check cannot present a client cert).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceCheck {
    #[serde(rename = "CheckID", skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "TCP", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    #[serde(rename = "TTL", skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deregister_critical_service_after: Option<String>,
}

/// `Connect` block of a service: `{"Native": true}` for a Connect-native service.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceConnect {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub native: bool,
}

/// One entry of `GET /v1/health/connect/<name>` (same shape as `/v1/health/service/<name>`).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthEntry {
    pub node: Node,
    pub service: AgentService,
    #[serde(deserialize_with = "null_as_empty")]
    pub checks: Vec<HealthCheck>,
}

/// A catalog node.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
}

/// A service instance as the catalog and health endpoints show it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct AgentService {
    /// Empty for a typical service, `connect-proxy` for a sidecar.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    pub address: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    pub connect: Option<ServiceConnect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
}

/// The `Proxy` block of a `connect-proxy` service.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ProxyConfig {
    pub destination_service_name: String,
    #[serde(rename = "DestinationServiceID")]
    pub destination_service_id: String,
}

/// A health check's state.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthCheck {
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    pub name: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
}

/// An intention as `GET /v1/connect/intentions/exact` returns it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Intention {
    #[serde(rename = "ID")]
    pub id: String,
    pub source_name: String,
    pub destination_name: String,
    #[serde(rename = "SourceNS")]
    pub source_ns: String,
    #[serde(rename = "DestinationNS")]
    pub destination_ns: String,
    pub source_type: String,
    /// `allow` or `deny`.
    pub action: String,
    pub precedence: u32,
    pub description: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `GET /v1/agent/self` (the parts a Connect-native app reads).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct AgentSelf {
    pub config: AgentSelfConfig,
}

/// The `Config` block of `GET /v1/agent/self`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct AgentSelfConfig {
    pub datacenter: String,
    pub node_name: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub version: String,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_parse_the_documented_sample() {
        let json = r#"{"ActiveRootID":"5e:2b","TrustDomain":"7f42.consul",
          "Roots":[{"ID":"5e:2b","Name":"Consul CA Primary Cert","SerialNumber":18446744073709551615,
          "SigningKeyID":"2d:09","ExternalTrustDomain":"7f42","NotBefore":"2025-05-01T10:00:00Z",
          "NotAfter":"2035-04-29T10:00:00Z","RootCert":"PEM","IntermediateCerts":null,"Active":true,
          "PrivateKeyType":"ec","PrivateKeyBits":256,"CreateIndex":8,"ModifyIndex":8}]}"#;
        let roots: CaRoots = serde_json::from_str(json).unwrap();
        assert_eq!(roots.roots[0].serial_number, u64::MAX);
        assert_eq!(roots.roots[0].intermediate_certs, None);
        assert_eq!(roots.trust_domain, "7f42.consul");
    }

    #[test]
    fn null_roots_read_as_empty() {
        let roots: CaRoots = serde_json::from_str(r#"{"Roots":null}"#).unwrap();
        assert!(roots.roots.is_empty());
    }

    #[test]
    fn registration_serializes_with_consul_casing() {
        let reg = ServiceRegistration {
            id: Some("web-1".into()),
            name: "web".into(),
            port: Some(8443),
            connect: Some(ServiceConnect { native: true }),
            check: Some(ServiceCheck {
                tcp: Some("127.0.0.1:8443".into()),
                interval: Some("10s".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_string(&reg).unwrap();
        assert_eq!(
            json,
            r#"{"ID":"web-1","Name":"web","Port":8443,"Check":{"TCP":"127.0.0.1:8443","Interval":"10s"},"Connect":{"Native":true}}"#
        );
    }
}
