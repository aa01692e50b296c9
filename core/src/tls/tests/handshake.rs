//! Real TLS handshakes between the configs of tls/, with Consul-shaped certificates from the test CA.

use super::support::{ca_roots, handshake, uri, Source, TestCa, TD};
use crate::error::Code;
use crate::tls::verify::ServerVerifier;
use crate::tls::{client_config, server_config, Expected, Leaf, Roots};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    ca: TestCa,
}

impl World {
    fn new() -> World {
        World { ca: TestCa::new(TD, "Consul CA 1") }
    }
    fn roots(&self) -> Roots {
        Roots::from_agent(&ca_roots(&self.ca, &[&self.ca])).unwrap()
    }
    fn leaf(&self, service: &str) -> Leaf {
        Leaf::from_agent(&self.ca.leaf(service)).unwrap()
    }
    fn source(&self, service: &str) -> Arc<Source> {
        Source::new(Some(self.roots()), Some(self.leaf(service)))
    }
}

fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

#[tokio::test]
async fn services_of_one_ca_complete_mutual_tls_and_see_each_others_identity() {
    let w = World::new();
    let server = server_config(w.source("db"), alpn()).unwrap();
    let client = client_config(w.source("web"), Expected::Uri(uri("db")), vec![b"http/1.1".to_vec()]).unwrap();
    let (s, c) = handshake(server, client).await;
    let (s, c) = (s.unwrap(), c.unwrap());
    assert_eq!(s.peer.uri, uri("web"));
    assert_eq!((s.peer.service.as_str(), s.peer.namespace.as_str()), ("web", "default"));
    assert_eq!((s.peer.partition.as_str(), s.peer.datacenter.as_str()), ("default", "dc1"));
    assert_eq!(s.peer.trust_domain, TD);
    assert_eq!(c.peer.uri, uri("db"));
    assert_eq!(c.version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(s.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(c.alpn, s.alpn);
}

#[tokio::test]
async fn tls_1_2_client_completes_mutual_tls_with_our_verifiers() {
    let w = World::new();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let agent_leaf = w.ca.leaf("web");
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::new(w.source("web"), Expected::AnyService)))
        .with_client_auth_cert(
            crate::identity::certs_from_pem(&agent_leaf.cert_pem).unwrap(),
            crate::identity::key_from_pem(&agent_leaf.private_key_pem).unwrap(),
        )
        .unwrap();
    client.enable_sni = false;
    let (s, c) = handshake(server, Arc::new(client)).await;
    let (s, c) = (s.unwrap(), c.unwrap());
    assert_eq!(s.version, rustls::ProtocolVersion::TLSv1_2);
    assert_eq!(s.peer.service, "web");
    assert_eq!(c.peer.service, "db");
}

#[tokio::test]
async fn client_with_foreign_ca_is_refused_with_certificate_invalid() {
    let w = World::new();
    let foreign = TestCa::new(TD, "Someone else's CA");
    let client_leaf = Leaf::from_agent(&foreign.leaf("web")).unwrap();
    let serial = client_leaf.serial.clone();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let client =
        client_config(Source::new(Some(w.roots()), Some(client_leaf)), Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, c) = handshake(server, client).await;
    let err = s.unwrap_err();
    assert_eq!(err.code, Code::CertificateInvalid, "{err}");
    assert!(err.message.contains(&uri("web")) && err.message.contains(&serial), "{err}");
    assert!(err.message.contains("UnknownIssuer"), "{err}");
    let err = c.unwrap_err();
    assert_eq!(err.code, Code::Handshake, "{err}");
    assert!(err.message.starts_with("peer rejected our certificate: alert"), "{err}");
}

#[tokio::test]
async fn client_without_certificate_is_refused_with_a_clear_message() {
    let w = World::new();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::new(w.source("web"), Expected::AnyService)))
        .with_no_client_auth();
    client.enable_sni = false;
    let (s, c) = handshake(server, Arc::new(client)).await;
    let err = s.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (Code::Handshake, "peer sent no client certificate"));
    let err = c.unwrap_err();
    assert_eq!(err.code, Code::Handshake, "{err}");
    assert!(err.message.contains("CertificateRequired"), "{err}");
}

#[tokio::test]
async fn expired_client_leaf_is_refused_with_certificate_invalid() {
    let w = World::new();
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let expired = Leaf::from_agent(&w.ca.leaf_for_uri(&uri("web"), now - 3 * hour, now - hour)).unwrap();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let client = client_config(Source::new(Some(w.roots()), Some(expired)), Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, c) = handshake(server, client).await;
    let err = s.unwrap_err();
    assert_eq!(err.code, Code::CertificateInvalid, "{err}");
    assert!(err.message.contains("CertExpired") && err.message.contains(&uri("web")), "{err}");
    assert_eq!(c.unwrap_err().code, Code::Handshake);
}

#[tokio::test]
async fn server_with_another_identity_fails_the_dial_with_identity_mismatch() {
    let w = World::new();
    let server = server_config(w.source("web"), vec![]).unwrap();
    let client = client_config(w.source("api"), Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, c) = handshake(server, client).await;
    let err = c.unwrap_err();
    assert_eq!(err.code, Code::IdentityMismatch);
    assert_eq!(err.message, format!("peer certificate mismatch got {}, want {}", uri("web"), uri("db")));
    assert_eq!(s.unwrap_err().code, Code::Handshake);
}

#[tokio::test]
async fn expected_uri_from_another_trust_domain_matches_by_chain_not_host() {
    let w = World::new();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let want = "spiffe://00000000-0000-0000-0000-000000000000.consul/ns/default/dc/dc1/svc/DB".to_string();
    let client = client_config(w.source("web"), Expected::Uri(want), vec![]).unwrap();
    let (s, c) = handshake(server, client).await;
    s.unwrap();
    assert_eq!(c.unwrap().peer.service, "db");
}

#[tokio::test]
async fn any_service_dial_accepts_every_service_of_the_roots() {
    let w = World::new();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let client = client_config(w.source("web"), Expected::AnyService, vec![]).unwrap();
    let (s, c) = handshake(server, client).await;
    s.unwrap();
    assert_eq!(c.unwrap().peer.uri, uri("db"));
}

#[tokio::test]
async fn any_service_dial_refuses_a_server_with_a_non_service_identity() {
    let w = World::new();
    let now = SystemTime::now();
    let agent_cert =
        w.ca.leaf_for_uri(&format!("spiffe://{TD}/agent/client/dc/dc1/id/node-1"), now, now + Duration::from_secs(600));
    // Leaf::from_agent refuses non-service identities, so present it through a plain rustls server.
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            crate::identity::certs_from_pem(&agent_cert.cert_pem).unwrap(),
            crate::identity::key_from_pem(&agent_cert.private_key_pem).unwrap(),
        )
        .unwrap();
    let client = client_config(w.source("web"), Expected::AnyService, vec![]).unwrap();
    let (_, c) = handshake(Arc::new(server), client).await;
    let err = c.unwrap_err();
    assert_eq!(err.code, Code::IdentityMismatch, "{err}");
    assert!(err.message.contains("not a Consul service identity"), "{err}");
}

#[tokio::test]
async fn server_with_foreign_ca_fails_the_dial_with_certificate_invalid() {
    let w = World::new();
    let foreign = TestCa::new(TD, "Foreign");
    let server_source = Source::new(Some(w.roots()), Some(Leaf::from_agent(&foreign.leaf("db")).unwrap()));
    let server = server_config(server_source, vec![]).unwrap();
    let client = client_config(w.source("web"), Expected::Uri(uri("db")), vec![]).unwrap();
    let (_, c) = handshake(server, client).await;
    let err = c.unwrap_err();
    assert_eq!(err.code, Code::CertificateInvalid, "{err}");
    assert!(err.message.starts_with(&format!("server certificate {}", uri("db"))), "{err}");
}

#[tokio::test]
async fn listener_without_roots_fails_handshakes_with_not_ready() {
    let w = World::new();
    let server = server_config(Source::new(None, Some(w.leaf("db"))), vec![]).unwrap();
    let client = client_config(w.source("web"), Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, _) = handshake(server, client).await;
    let err = s.unwrap_err();
    assert_eq!(err.code, Code::NotReady, "{err}");
    assert!(err.message.contains("no CA roots"), "{err}");
}

#[tokio::test]
async fn dialer_without_roots_fails_handshakes_with_not_ready() {
    let w = World::new();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let client = client_config(Source::new(None, Some(w.leaf("web"))), Expected::Uri(uri("db")), vec![]).unwrap();
    let (_, c) = handshake(server, client).await;
    assert_eq!(c.unwrap_err().code, Code::NotReady);
}

#[tokio::test]
async fn listener_without_leaf_fails_handshakes_with_not_ready() {
    let w = World::new();
    let server = server_config(Source::new(Some(w.roots()), None), vec![]).unwrap();
    let client = client_config(w.source("web"), Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, c) = handshake(server, client).await;
    let err = s.unwrap_err();
    assert_eq!(err.code, Code::NotReady, "{err}");
    assert_eq!(c.unwrap_err().code, Code::Handshake);
}

#[tokio::test]
async fn dialer_without_leaf_fails_handshakes_with_not_ready() {
    let w = World::new();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let client = client_config(Source::new(Some(w.roots()), None), Expected::Uri(uri("db")), vec![]).unwrap();
    let (_, c) = handshake(server, client).await;
    let err = c.unwrap_err();
    assert_eq!(err.code, Code::NotReady, "{err}");
}

#[tokio::test]
async fn dial_expecting_a_non_service_uri_is_an_invalid_argument() {
    let w = World::new();
    let err = client_config(w.source("web"), Expected::Uri(format!("spiffe://{TD}/agent/server/dc/dc1")), vec![])
        .unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
}

/// A ClientHello that offers only TLS 1.1 (legacy_version 0x0302, no supported_versions extension).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend([0x11; 32]); // random
    body.push(0); // session id
    body.extend([0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x09, 0xc0, 0x13]); // ECDHE_ECDSA_AES128_GCM, ..._CBC_SHA, ECDHE_RSA
    body.extend([0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04, // signature_algorithms
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // supported_groups: x25519, secp256r1
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
    ];
    body.extend([0x00, extensions.len() as u8]);
    body.extend(extensions);
    let mut handshake = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01, (handshake.len() >> 8) as u8, handshake.len() as u8];
    record.extend(handshake);
    record
}

#[tokio::test]
async fn tls_1_1_client_is_refused_with_a_protocol_version_alert() {
    let w = World::new();
    let server = server_config(w.source("db"), vec![]).unwrap();
    let (server_io, mut raw) = tokio::io::duplex(64 * 1024);
    let accept = tokio::spawn(async move { tokio_rustls::TlsAcceptor::from(server).accept(server_io).await });
    raw.write_all(&tls11_client_hello()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut reply)).await.unwrap();
    // An alert record: fatal (2), protocol_version (70).
    assert_eq!(reply.first(), Some(&0x15), "{reply:02x?}");
    assert_eq!(&reply[5..7], &[2, 70], "{reply:02x?}");
    let io_err = accept.await.unwrap().unwrap_err();
    let err = crate::tls::handshake_error(&io_err);
    assert_eq!(err.code, Code::Handshake, "{err}");
    assert!(err.message.contains("TLS 1.2 is the minimum"), "{err}");
}
