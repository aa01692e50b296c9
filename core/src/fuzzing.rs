//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by default, never enabled by the C
//! ABI crate). Each one takes untrusted bytes to the parsers the library runs on them, exactly as the library
//! does, then checks what must hold whatever the input: no panic anywhere, no key material or token in a message,
//! and round trips where the format has one. A failed check panics, which the fuzzer reports as a crash.

use std::time::SystemTime;

use crate::agent::types::{AgentSelf, AuthorizeResponse, CaRoot, CaRoots, HealthEntry, LeafCert};
use crate::api::{AgentConfig, ClientOptions};
use crate::encoding::{go_duration, parse_go_duration, pem_encode, percent_decode};
use crate::identity::{certs_from_pem, inspect, is_non_service_identity, key_from_pem, serial_colon_hex};
use crate::identity::{uri_matches, ServiceId};
use crate::tls::{Leaf, Roots};
use crate::watch::validate::{self, ExpectedLeaf};

/// A `GET /v1/agent/connect/ca/roots` answer body: JSON, then the trust anchors and the checks the roots watch
/// runs before the roots replace the last good ones.
pub fn agent_roots(data: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<CaRoots>(data) else { return };
    for root in &answer.roots {
        if let Ok(certs) = certs_from_pem(&root.root_cert) {
            for der in certs {
                let _ = inspect(&der);
            }
        }
    }
    if let Ok(roots) = Roots::from_agent(&answer) {
        assert_eq!(roots.len(), roots.certs.len(), "one trust anchor per root certificate");
        assert!(roots.len() > 0, "no roots is never usable");
        let _ = validate::roots_trust_domain(&roots);
    }
}

/// A `GET /v1/agent/connect/ca/leaf/<service>` answer body: JSON, the leaf and its key, then every check the leaf
/// watch runs before the leaf goes in force, against roots made from the leaf's own last certificate.
pub fn agent_leaf(data: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<LeafCert>(data) else { return };
    let leaf = match Leaf::from_agent(&answer) {
        Ok(leaf) => leaf,
        Err(e) => {
            assert_no_key_material(&e.message, &answer.private_key_pem);
            return;
        }
    };
    let shown = format!("{leaf:?}");
    assert!(!shown.contains("PRIVATE KEY"), "Debug of a leaf shows its key: {shown}");
    assert_no_key_material(&shown, &leaf.key_pem);
    let own = ExpectedLeaf { service: &leaf.id.service, namespace: None, partition: None };
    assert!(validate::leaf_identity(&own, &leaf).is_ok(), "a leaf must carry its own identity");
    let _ =
        validate::leaf_identity(&ExpectedLeaf { service: "db", namespace: Some("default"), partition: None }, &leaf);
    let now = SystemTime::now();
    let _ = validate::leaf_times("db", &leaf, now);
    let Some(last) = leaf.chain.last() else { return };
    let roots = CaRoots {
        trust_domain: leaf.id.trust_domain.clone(),
        roots: vec![CaRoot { root_cert: pem_encode("CERTIFICATE", last), ..CaRoot::default() }],
        ..CaRoots::default()
    };
    if let Ok(roots) = Roots::from_agent(&roots) {
        if let Err(e) = validate::leaf_against_roots("db", &leaf, &roots, now) {
            assert_no_key_material(&e.message, &leaf.key_pem);
        }
    }
}

/// The other agent answers: authorize, health, agent self (JSON), an `X-Consul-Index` value and an error body.
/// The first byte picks which.
pub fn agent_answers(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 5 {
        0 => {
            let _ = serde_json::from_slice::<AuthorizeResponse>(rest);
        }
        1 => {
            if let Ok(entries) = serde_json::from_slice::<Vec<HealthEntry>>(rest) {
                // What dial discovery reads from each entry.
                for e in &entries {
                    let _ = (e.service.address.is_empty(), e.service.port, e.node.address.len(), e.checks.len());
                }
            }
        }
        2 => {
            let _ = serde_json::from_slice::<AgentSelf>(rest);
        }
        3 => match crate::agent::fuzz::consul_index(rest) {
            Ok(index) => assert!(index > 0, "index 0 accepted"),
            Err(why) => assert!(why.len() <= 120, "index message too long: {} bytes", why.len()),
        },
        _ => {
            let text = crate::agent::fuzz::error_body(rest);
            assert!(text.len() <= crate::agent::fuzz::MAX_ERROR_BODY + "…".len(), "error body not capped");
        }
    }
}

/// SPIFFE URIs as peers and the agent present them: parse, format and parse again to the same identity; and the
/// comparison the dialer uses (Go's, on the text) never matches two different identities. Two URIs are read when
/// the input holds a line break, else one is compared with itself.
pub fn spiffe(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = text.split_once('\n').unwrap_or((text, text));
    for uri in [a, b] {
        let _ = is_non_service_identity(uri);
        if let Ok(id) = ServiceId::parse(uri) {
            let formatted = id.uri();
            let again = ServiceId::parse(&formatted)
                .unwrap_or_else(|e| panic!("{formatted} (from {uri:?}) does not parse: {e}"));
            assert_eq!(again, id, "{uri:?} -> {formatted}");
            assert!(uri_matches(&formatted, &formatted), "{formatted} does not match itself");
            assert!(!is_non_service_identity(uri), "{uri:?} is both a service and not one");
        }
    }
    if uri_matches(a, b) {
        if let (Ok(x), Ok(y)) = (ServiceId::parse(a), ServiceId::parse(b)) {
            let key =
                |id: &ServiceId| [&id.partition, &id.namespace, &id.datacenter, &id.service].map(|s| s.to_lowercase());
            assert_eq!(key(&x), key(&y), "{a:?} matches {b:?} but names another identity");
        }
    }
}

/// PEM and DER as the agent and configuration files hand them over: certificates, private keys, inspection.
pub fn pem(data: &[u8]) {
    let _ = inspect(data);
    let _ = serial_colon_hex(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(certs) = certs_from_pem(text) {
        for der in certs {
            let _ = inspect(&der);
        }
    }
    if let Err(e) = key_from_pem(text) {
        assert_no_key_material(&e.message, text);
    }
}

const SECRET: &str = "fuzz-secret-token-3f9c1e7a";

/// Configuration strings: `key=value` lines through `ClientOptions::set`, the `CONSUL_*` environment, Go durations
/// and agent addresses. The token set first never shows in a message or a `Debug` output.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut options = ClientOptions::default();
    options.set("token", Some(SECRET)).expect("token is always accepted");
    let mut env = Vec::new();
    for line in text.lines().filter(|l| !l.contains(SECRET)) {
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if let Err(e) = options.set(key, value) {
            assert!(!e.message().contains(SECRET), "{key:?}: {}", e.message());
        }
        if let Some(d) = parse_go_duration(line) {
            let _ = go_duration(d);
        }
        let _ = crate::agent::fuzz::address(line);
        let _ = percent_decode(line, true);
        if key.starts_with("CONSUL_") {
            env.push((key.to_string(), value.unwrap_or_default().to_string()));
        }
    }
    let shown = format!("{options:?}");
    assert!(!shown.contains(SECRET), "Debug of the options shows the token: {shown}");
    env.push(("CONSUL_HTTP_TOKEN".to_string(), SECRET.to_string()));
    let from_env = AgentConfig::from_env_with(|name| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    assert!(!format!("{from_env:?}").contains(SECRET), "Debug of an environment configuration shows the token");
}

/// No base64 line (40 characters or more) inside a `PRIVATE KEY` block of `secret` appears in `shown`.
fn assert_no_key_material(shown: &str, secret: &str) {
    let mut in_key = false;
    for line in secret.lines().map(str::trim) {
        if line.starts_with("-----BEGIN") {
            in_key = line.contains("PRIVATE KEY");
            continue;
        }
        if line.starts_with("-----END") {
            in_key = false;
            continue;
        }
        let base64 = line.len() >= 40 && line.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        if in_key && base64 {
            assert!(!shown.contains(line), "key material in a message: {shown}");
        }
    }
}
