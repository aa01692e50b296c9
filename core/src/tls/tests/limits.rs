//! The verifiers' defences before and around path building: chain size limits (a chain bomb is refused before any
//! signature is checked), the leaf's key usage as Consul sets it, and a client's trust domain against the roots.

use super::support::{ca_roots, handshake, uri, Source, TestCa, TD};
use crate::agent::types::LeafCert;
use crate::error::Code;
use crate::tls::verify::ChainLimits;
use crate::tls::{client_config, client_config_with, server_config, server_config_with, Expected, Leaf, Roots};
use rcgen::{CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn roots(ca: &TestCa) -> Roots {
    Roots::from_agent(&ca_roots(ca, &[ca])).unwrap()
}

/// A leaf signed by `ca` for `uri` with exactly these key usages (rcgen writes the URI SAN non-critical, which
/// the verifiers do not mind).
fn leaf_with_usages(
    ca: &TestCa,
    uri: &str,
    key_usages: Vec<KeyUsagePurpose>,
    ekus: Vec<ExtendedKeyUsagePurpose>,
) -> Leaf {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    let now = SystemTime::now();
    p.not_before = (now - Duration::from_secs(60)).into();
    p.not_after = (now + Duration::from_secs(3600)).into();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = key_usages;
    p.extended_key_usages = ekus;
    p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    let cert = p.signed_by(&key, &ca.0.cert, &ca.0.key).unwrap();
    Leaf::from_agent(&LeafCert { cert_pem: cert.pem(), private_key_pem: key.serialize_pem(), ..Default::default() })
        .unwrap()
}

fn consul_key_usages() -> Vec<KeyUsagePurpose> {
    vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyAgreement]
}

/// A CA `depth` intermediates below `root`: its leaves carry all of them.
fn deep(root: &TestCa, depth: usize) -> TestCa {
    let mut ca = root.intermediate("Intermediate 1");
    for i in 2..=depth {
        ca = ca.intermediate(&format!("Intermediate {i}"));
    }
    ca
}

#[tokio::test]
async fn chain_bomb_is_refused_before_verification_on_both_sides() {
    let root = TestCa::new(TD, "Consul CA");
    let bomb = Leaf::from_agent(&deep(&root, 12).leaf("web")).unwrap();
    assert_eq!(bomb.chain.len(), 13);
    let server =
        server_config(Source::new(Some(roots(&root)), Some(Leaf::from_agent(&root.leaf("db")).unwrap())), vec![])
            .unwrap();
    let client =
        client_config(Source::new(Some(roots(&root)), Some(bomb.clone())), Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, _) = handshake(server, client).await;
    let err = s.unwrap_err();
    assert_eq!(err.code, Code::CertificateInvalid, "{err}");
    assert!(err.message.contains("chain of 13 certificates") && err.message.contains("max_chain_certs"), "{err}");

    // The dialer refuses a server presenting such a chain just the same.
    let server = server_config(Source::new(Some(roots(&root)), Some(bomb)), vec![]).unwrap();
    let web = Leaf::from_agent(&root.leaf("web")).unwrap();
    let client = client_config(Source::new(Some(roots(&root)), Some(web)), Expected::AnyService, vec![]).unwrap();
    let (_, c) = handshake(server, client).await;
    let err = c.unwrap_err();
    assert!(err.code == Code::CertificateInvalid && err.message.contains("server certificate chain"), "{err}");
}

#[tokio::test]
async fn chain_limits_are_the_configured_ones_and_a_chain_within_them_verifies() {
    let root = TestCa::new(TD, "Consul CA");
    let two_deep = Leaf::from_agent(&deep(&root, 2).leaf("web")).unwrap();
    let db = || Source::new(Some(roots(&root)), Some(Leaf::from_agent(&root.leaf("db")).unwrap()));
    let web = || Source::new(Some(roots(&root)), Some(two_deep.clone()));
    let dial = || client_config(web(), Expected::Uri(uri("db")), vec![]).unwrap();

    let fits = ChainLimits { max_certs: 3, max_bytes: 32 * 1024 };
    let (s, c) = handshake(server_config_with(db(), vec![], fits).unwrap(), dial()).await;
    assert_eq!(s.unwrap().peer.uri, uri("web"));
    c.unwrap();

    let (s, _) =
        handshake(server_config_with(db(), vec![], ChainLimits { max_certs: 2, ..fits }).unwrap(), dial()).await;
    assert!(s.unwrap_err().message.contains("chain of 3 certificates"));
    let bytes: usize = two_deep.chain.iter().map(|c| c.len()).sum();
    let tight = ChainLimits { max_bytes: bytes - 1, ..fits };
    let (s, _) = handshake(server_config_with(db(), vec![], tight).unwrap(), dial()).await;
    let err = s.unwrap_err();
    assert!(err.message.contains(&format!("({bytes} bytes)")) && err.message.contains("max_chain_bytes"), "{err}");

    // The dialer's limits too.
    let server = server_config(Source::new(Some(roots(&root)), Some(two_deep.clone())), vec![]).unwrap();
    let client = client_config_with(db(), Expected::AnyService, vec![], ChainLimits { max_certs: 2, ..fits }).unwrap();
    let (_, c) = handshake(server, client).await;
    assert!(c.unwrap_err().message.contains("server certificate chain of 3 certificates"));
}

#[test]
fn an_oversized_chain_costs_no_path_building() {
    // 60 intermediates that all claim to be the leaf's issuer: webpki would try every one of them.
    let root = TestCa::new(TD, "Consul CA");
    let source = Source::new(Some(roots(&root)), None);
    let leaf = Leaf::from_agent(&deep(&root, 1).leaf("web")).unwrap();
    let mut chain = vec![leaf.chain[1].clone(); 60];
    chain.insert(0, leaf.chain[0].clone());
    let verifier = crate::tls::verify::ClientVerifier::new(source);
    let started = Instant::now();
    for _ in 0..100 {
        let err = rustls::server::danger::ClientCertVerifier::verify_client_cert(
            &verifier,
            &chain[0],
            &chain[1..],
            rustls::pki_types::UnixTime::now(),
        )
        .unwrap_err();
        assert!(format!("{err:?}").contains("chain of 61 certificates"), "{err:?}");
    }
    // 100 refusals of a 61-certificate chain: a bounded size check each, far below one path build (generous bound
    // for a debug build on a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn leaf_without_the_extended_key_usage_of_its_role_is_refused() {
    let ca = TestCa::new(TD, "Consul CA");
    let db = Source::new(Some(roots(&ca)), Some(Leaf::from_agent(&ca.leaf("db")).unwrap()));
    // None at all (webpki alone would accept it), or only the other role's (webpki refuses it too).
    for (ekus, what) in
        [(vec![], "no extended key usage"), (vec![ExtendedKeyUsagePurpose::ServerAuth], "server auth only")]
    {
        let leaf = leaf_with_usages(&ca, &uri("web"), consul_key_usages(), ekus);
        let client = client_config(Source::new(Some(roots(&ca)), Some(leaf)), Expected::Uri(uri("db")), vec![]);
        let (s, _) = handshake(server_config(db.clone(), vec![]).unwrap(), client.unwrap()).await;
        let err = s.unwrap_err();
        assert_eq!(err.code, Code::CertificateInvalid, "{what}: {err}");
        assert!(err.message.contains("extended key usage"), "{what}: {err}");
    }
    // A server whose leaf only allows client authentication fails the dial.
    let leaf = leaf_with_usages(&ca, &uri("db"), consul_key_usages(), vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let server = server_config(Source::new(Some(roots(&ca)), Some(leaf)), vec![]).unwrap();
    let web = Source::new(Some(roots(&ca)), Some(Leaf::from_agent(&ca.leaf("web")).unwrap()));
    let (_, c) = handshake(server, client_config(web, Expected::Uri(uri("db")), vec![]).unwrap()).await;
    let err = c.unwrap_err();
    assert_eq!(err.code, Code::CertificateInvalid, "{err}");
    assert!(err.message.contains("extended key usage"), "{err}");
}

#[tokio::test]
async fn leaf_whose_key_usage_lacks_digital_signature_is_refused() {
    let ca = TestCa::new(TD, "Consul CA");
    let db = Source::new(Some(roots(&ca)), Some(Leaf::from_agent(&ca.leaf("db")).unwrap()));
    let both = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    for usages in [vec![KeyUsagePurpose::KeyEncipherment], vec![]] {
        let leaf = leaf_with_usages(&ca, &uri("web"), usages, both.clone());
        let client = client_config(Source::new(Some(roots(&ca)), Some(leaf)), Expected::Uri(uri("db")), vec![]);
        let (s, _) = handshake(server_config(db.clone(), vec![]).unwrap(), client.unwrap()).await;
        let err = s.unwrap_err();
        assert_eq!(err.code, Code::CertificateInvalid, "{err}");
        assert!(err.message.contains("digitalSignature"), "{err}");
    }
    // Consul's own set passes.
    let leaf = leaf_with_usages(&ca, &uri("web"), consul_key_usages(), both);
    let client = client_config(Source::new(Some(roots(&ca)), Some(leaf)), Expected::Uri(uri("db")), vec![]);
    let (s, c) = handshake(server_config(db, vec![]).unwrap(), client.unwrap()).await;
    assert_eq!(s.unwrap().peer.uri, uri("web"));
    c.unwrap();
}

#[tokio::test]
async fn client_of_a_trust_domain_the_roots_do_not_vouch_for_is_refused_before_authorize() {
    // Our own CA signed it (the chain verifies), but for another trust domain.
    let ca = TestCa::new(TD, "Consul CA");
    let other = "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web";
    let now = SystemTime::now();
    let leaf = Leaf::from_agent(&ca.leaf_for_uri(other, now - Duration::from_secs(60), now + Duration::from_secs(600)))
        .unwrap();
    let db = Source::new(Some(roots(&ca)), Some(Leaf::from_agent(&ca.leaf("db")).unwrap()));
    let client = client_config(Source::new(Some(roots(&ca)), Some(leaf)), Expected::Uri(uri("db")), vec![]);
    let (s, _) = handshake(server_config(db, vec![]).unwrap(), client.unwrap()).await;
    let err = s.unwrap_err();
    assert_eq!(err.code, Code::IdentityMismatch, "{err}");
    assert!(err.message.contains("11111111-2222-3333-4444-555555555555.consul"), "{err}");
    assert!(err.message.contains("do not vouch for") && err.message.contains(TD), "{err}");
}

#[tokio::test]
async fn a_root_kept_through_a_trust_domain_change_vouches_for_its_own() {
    // The agent's trust domain is TD; a second listed root still names the old trust domain in its URI SAN.
    let old_td = "0a0a0a0a-0000-0000-0000-000000000000.consul";
    let (current, old) = (TestCa::new(TD, "Current CA"), TestCa::new(old_td, "Old CA"));
    let mut answer = ca_roots(&current, &[&current, &old]);
    answer.trust_domain = TD.to_string();
    let both = Arc::new(Roots::from_agent(&answer).unwrap());
    let old_leaf = Leaf::from_agent(&old.leaf("web")).unwrap();
    assert!(old_leaf.uri.contains(old_td));
    let db = Source::new(Some((*both).clone()), Some(Leaf::from_agent(&current.leaf("db")).unwrap()));
    let web = Source::new(Some((*both).clone()), Some(old_leaf));
    let (s, c) =
        handshake(server_config(db, vec![]).unwrap(), client_config(web, Expected::AnyService, vec![]).unwrap()).await;
    assert_eq!(s.unwrap().peer.trust_domain, old_td);
    c.unwrap();
}
