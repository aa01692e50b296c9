//! The dev agent's Consul API over real HTTP, against the binary run as a child process: shapes, casing, status
//! codes, error texts, blocking queries, intentions, ACL, catalog and health.

mod common;

use common::{default_agent, start};
use consulnative_core::api::wire::{AuthorizeResponse, CaRoots, HealthEntry, Intention, LeafCert};
use consulnative_devagent::process::DevAgentOptions;
use std::time::{Duration, Instant};

fn is_colon_hex(s: &str) -> bool {
    !s.is_empty()
        && s.split(':').all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
}

fn is_rfc3339(s: &str) -> bool {
    s.len() == 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

#[test]
fn roots_endpoint_has_consul_shape_casing_and_headers() {
    let (a, c) = default_agent();
    let r = c.get("/v1/agent/connect/ca/roots");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    assert_eq!(r.header("X-Consul-LastContact"), Some("0"));
    assert_eq!(r.header("X-Cache"), Some("MISS"));
    assert!(r.index() >= 1);
    let v = r.value();
    for key in ["ActiveRootID", "TrustDomain", "Roots"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let root = &v["Roots"][0];
    for key in [
        "ID",
        "Name",
        "SerialNumber",
        "SigningKeyID",
        "ExternalTrustDomain",
        "NotBefore",
        "NotAfter",
        "RootCert",
        "IntermediateCerts",
        "Active",
        "PrivateKeyType",
        "PrivateKeyBits",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(root.get(key).is_some(), "root missing {key}: {root}");
    }
    assert!(root["IntermediateCerts"].is_null());
    let roots: CaRoots = r.json();
    assert_eq!(roots.trust_domain, a.trust_domain().unwrap());
    assert!(roots.trust_domain.ends_with(".consul"));
    let root = &roots.roots[0];
    assert_eq!(root.id, roots.active_root_id);
    assert!(is_colon_hex(&root.id) && root.id.split(':').count() == 20, "ID {}", root.id);
    assert!(is_colon_hex(&root.signing_key_id));
    assert_eq!(format!("{}.consul", root.external_trust_domain), roots.trust_domain);
    assert!(root.active);
    assert_eq!(root.name, "Consul CA Primary Cert");
    assert_eq!((root.private_key_type.as_str(), root.private_key_bits), ("ec", 256));
    assert!(is_rfc3339(&root.not_before) && is_rfc3339(&root.not_after));
    assert!(root.root_cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
    // Cached: the second read is a hit; the alias answers the same.
    let r2 = c.get("/v1/agent/connect/ca/roots");
    assert_eq!(r2.header("X-Cache"), Some("HIT"));
    assert_eq!(r2.index(), r.index());
    let alias: CaRoots = c.get("/v1/connect/ca/roots").json();
    assert_eq!(alias, roots);
}

#[test]
fn leaf_endpoint_has_consul_shape_and_is_cached() {
    let (a, c) = default_agent();
    let r = c.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Cache"), Some("MISS"));
    let v = r.value();
    for key in [
        "SerialNumber",
        "CertPEM",
        "PrivateKeyPEM",
        "Service",
        "ServiceURI",
        "ValidAfter",
        "ValidBefore",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(v.get(key).is_some(), "leaf missing {key}: {v}");
    }
    assert!(v.get("Namespace").is_none() && v.get("Partition").is_none(), "CE has no Namespace/Partition");
    let leaf: LeafCert = r.json();
    assert_eq!(r.index(), leaf.modify_index);
    assert!(is_colon_hex(&leaf.serial_number), "serial {}", leaf.serial_number);
    assert_eq!(leaf.service, "web");
    assert_eq!(leaf.service_uri, format!("spiffe://{}/ns/default/dc/dc1/svc/web", a.trust_domain().unwrap()));
    assert!(is_rfc3339(&leaf.valid_after) && is_rfc3339(&leaf.valid_before));
    assert!(leaf.private_key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    assert_eq!(leaf.cert_pem.matches("BEGIN CERTIFICATE").count(), 1, "no intermediates before a rotation");
    let r2 = c.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!(r2.header("X-Cache"), Some("HIT"));
    assert_eq!(r2.json::<LeafCert>(), leaf);
    // Another service gets its own, higher serial.
    let db: LeafCert = c.get("/v1/agent/connect/ca/leaf/db").json();
    assert_ne!(db.serial_number, leaf.serial_number);
    assert!(db.modify_index > leaf.modify_index);
}

#[test]
fn blocking_roots_query_waits_for_wait_and_returns_same_index() {
    let (_a, c) = default_agent();
    let idx = c.get("/v1/agent/connect/ca/roots").index();
    let t0 = Instant::now();
    let r = c.get(&format!("/v1/agent/connect/ca/roots?index={idx}&wait=300ms"));
    let el = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.index(), idx);
    assert!(el >= Duration::from_millis(300), "returned after {el:?}");
    assert!(el < Duration::from_millis(300 + 300 / 16 + 700), "returned after {el:?}");
    // index 0 never blocks.
    let t0 = Instant::now();
    c.get("/v1/agent/connect/ca/roots?index=0&wait=5s");
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[test]
fn blocking_leaf_query_waits_for_wait_and_returns_same_index() {
    let (_a, c) = default_agent();
    let leaf: LeafCert = c.get("/v1/agent/connect/ca/leaf/web").json();
    let t0 = Instant::now();
    let r = c.get(&format!("/v1/agent/connect/ca/leaf/web?index={}&wait=300ms", leaf.modify_index));
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.index(), leaf.modify_index);
    assert_eq!(r.json::<LeafCert>().serial_number, leaf.serial_number);
}

#[test]
fn blocking_roots_query_returns_early_when_ca_rotates() {
    let (a, c) = default_agent();
    let idx = c.get("/v1/agent/connect/ca/roots").index();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        a.rotate_ca().expect("rotate");
        a
    });
    let t0 = Instant::now();
    let r = c.get(&format!("/v1/agent/connect/ca/roots?index={idx}&wait=20s"));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(r.index() > idx);
    let roots: CaRoots = r.json();
    assert_eq!(roots.roots.len(), 2);
    let _a = t.join().unwrap();
}

#[test]
fn blocking_query_parameters_are_validated() {
    let (_a, c) = default_agent();
    let r = c.get("/v1/agent/connect/ca/roots?index=abc");
    assert_eq!((r.status, r.body.as_str()), (400, "Invalid index"));
    let r = c.get("/v1/agent/connect/ca/roots?index=5&wait=10parsecs");
    assert_eq!((r.status, r.body.as_str()), (400, "Invalid wait time"));
}

#[test]
fn authorize_allow_deny_and_default_with_consul_reasons() {
    let (a, c) = default_agent();
    let td = a.trust_domain().unwrap();
    let uri = |svc: &str| format!("spiffe://{td}/ns/default/dc/dc1/svc/{svc}");
    let ask = |target: &str, src: &str| -> AuthorizeResponse {
        let r = c.post(
            "/v1/agent/connect/authorize",
            &format!(r#"{{"Target":"{target}","ClientCertURI":"{}","ClientCertSerial":"1d"}}"#, uri(src)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.header("X-Cache").is_some());
        r.json()
    };
    // Default (no ACLs configured: allow).
    let d = ask("db", "web");
    assert!(d.authorized);
    assert_eq!(d.reason, "Default behavior configured by ACLs");
    // Exact allow.
    a.set_intention("web", "db", true).unwrap();
    let r = ask("db", "web");
    assert!(r.authorized);
    assert_eq!(r.reason, "Matched L4 intention: default/web => default/db (Precedence: 9, Action: ALLOW)");
    // Wildcard source deny does not override the exact allow, but applies to others.
    a.set_intention("*", "db", false).unwrap();
    assert!(ask("db", "web").authorized);
    let r = ask("db", "billing");
    assert!(!r.authorized);
    assert_eq!(r.reason, "Matched L4 intention: default/* => default/db (Precedence: 8, Action: DENY)");
    // Exact deny.
    a.set_intention("web", "db", false).unwrap();
    let r = ask("db", "web");
    assert!(!r.authorized);
    assert_eq!(r.reason, "Matched L4 intention: default/web => default/db (Precedence: 9, Action: DENY)");
    // *->* precedence 5, exact->* precedence 6.
    a.set_intention("*", "*", true).unwrap();
    assert_eq!(ask("cache", "x").reason, "Matched L4 intention: default/* => default/* (Precedence: 5, Action: ALLOW)");
    a.set_intention("x", "*", false).unwrap();
    assert_eq!(ask("cache", "x").reason, "Matched L4 intention: default/x => default/* (Precedence: 6, Action: DENY)");
    a.delete_intention("*", "*").unwrap();
    a.delete_intention("x", "*").unwrap();
    assert_eq!(ask("cache", "x").reason, "Default behavior configured by ACLs");

    // A deny-by-default agent.
    let (_b, c2) = start(DevAgentOptions { default_deny: true, ..Default::default() });
    let r = c2.post(
        "/v1/agent/connect/authorize",
        &format!(r#"{{"Target":"db","ClientCertURI":"{}","ClientCertSerial":"1d"}}"#, uri("web")),
    );
    let r: AuthorizeResponse = r.json();
    assert!(!r.authorized);
    assert_eq!(r.reason, "Default behavior configured by ACLs");
}

#[test]
fn authorize_rejects_bad_bodies_with_consul_texts() {
    let (a, c) = default_agent();
    let r = c.post("/v1/agent/connect/authorize", "{not json");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("Request decode failed: "), "{}", r.body);
    assert!(r.header("Content-Type").unwrap_or("").starts_with("text/plain"));
    let r = c.post(
        "/v1/agent/connect/authorize",
        r#"{"Target":"","ClientCertURI":"spiffe://x.consul/ns/default/dc/dc1/svc/web"}"#,
    );
    assert_eq!((r.status, r.body.as_str()), (400, "Target service must be specified"));
    let r = c.post("/v1/agent/connect/authorize", r#"{"Target":"db","ClientCertURI":"https://example.com/web"}"#);
    assert_eq!((r.status, r.body.as_str()), (400, "ClientCertURI not a valid Connect identifier"));
    let agent_uri = format!("spiffe://{}/agent/client/dc/dc1/id/node-1", a.trust_domain().unwrap());
    let r = c.post("/v1/agent/connect/authorize", &format!(r#"{{"Target":"db","ClientCertURI":"{agent_uri}"}}"#));
    assert_eq!((r.status, r.body.as_str()), (400, "ClientCertURI not a valid Service identifier"));
    let r = c.call("GET", "/v1/agent/connect/authorize", &[], None);
    assert_eq!(r.status, 405);
}

#[test]
fn intentions_exact_api_roundtrip() {
    let (_a, c) = default_agent();
    let r = c.put("/v1/connect/intentions/exact?source=web&destination=db", r#"{"Action":"allow"}"#);
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let r = c.get("/v1/connect/intentions/exact?source=web&destination=db");
    assert_eq!(r.status, 200);
    let v = r.value();
    for key in [
        "SourceName",
        "DestinationName",
        "SourceNS",
        "DestinationNS",
        "SourceType",
        "Action",
        "Precedence",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(v.get(key).is_some(), "intention missing {key}: {v}");
    }
    let ixn: Intention = r.json();
    assert_eq!(
        (ixn.source_name.as_str(), ixn.destination_name.as_str(), ixn.action.as_str(), ixn.precedence),
        ("web", "db", "allow", 9)
    );
    let r = c.put("/v1/connect/intentions/exact?source=web&destination=db", r#"{"Action":"deny"}"#);
    assert_eq!(r.status, 200);
    let ixn2: Intention = c.get("/v1/connect/intentions/exact?source=web&destination=db").json();
    assert_eq!(ixn2.action, "deny");
    assert_eq!(ixn2.create_index, ixn.create_index);
    assert!(ixn2.modify_index > ixn.modify_index);
    let r = c.call("DELETE", "/v1/connect/intentions/exact?source=web&destination=db", &[], None);
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let r = c.get("/v1/connect/intentions/exact?source=web&destination=db");
    assert_eq!((r.status, r.body.as_str()), (404, "Intention not found"));
    assert_eq!(c.get("/v1/connect/intentions/exact?destination=db").status, 400);
    assert_eq!(c.get("/v1/connect/intentions/exact?source=web").status, 400);
    let r = c.put("/v1/connect/intentions/exact?source=web&destination=db", "{oops");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("Request decode failed: "));
    assert_eq!(c.put("/v1/connect/intentions/exact?source=web&destination=db", r#"{"Action":"maybe"}"#).status, 400);
}

#[test]
fn acl_token_is_required_with_consul_403_texts() {
    let (_a, c) = start(DevAgentOptions { acl_token: Some("s3cret".into()), ..Default::default() });
    let r = c.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'service:write' on \"web\""
    );
    assert_eq!(c.call("GET", "/v1/agent/connect/ca/leaf/web", &[("X-Consul-Token", "s3cret")], None).status, 200);
    assert_eq!(c.call("GET", "/v1/agent/connect/ca/leaf/web", &[("Authorization", "Bearer s3cret")], None).status, 200);
    assert_eq!(c.get("/v1/agent/connect/ca/leaf/web?token=s3cret").status, 200);
    let r = c.call("GET", "/v1/agent/connect/ca/leaf/web", &[("X-Consul-Token", "wrong")], None);
    assert_eq!((r.status, r.body.as_str()), (403, "ACL not found"));
    // Roots and agent/self need no token.
    assert_eq!(c.get("/v1/agent/connect/ca/roots").status, 200);
    assert_eq!(c.get("/v1/agent/self").status, 200);
    // Authorize: service:write on the target.
    let body = r#"{"Target":"db","ClientCertURI":"spiffe://x.consul/ns/default/dc/dc1/svc/web"}"#;
    let r = c.post("/v1/agent/connect/authorize", body);
    assert_eq!(r.status, 403);
    assert!(r.body.ends_with("lacks permission 'service:write' on \"db\""), "{}", r.body);
    assert_eq!(c.call("POST", "/v1/agent/connect/authorize", &[("X-Consul-Token", "s3cret")], Some(body)).status, 200);
    // Intentions: intentions:write on the destination.
    let r = c.put("/v1/connect/intentions/exact?source=web&destination=db", r#"{"Action":"allow"}"#);
    assert_eq!(r.status, 403);
    assert!(r.body.ends_with("lacks permission 'intentions:write' on \"db\""), "{}", r.body);
    // Register, deregister, check pass, CA configuration.
    let reg = r#"{"Name":"web","Port":8443,"Connect":{"Native":true},"Check":{"TTL":"30s"}}"#;
    let r = c.put("/v1/agent/service/register", reg);
    assert_eq!(r.status, 403);
    assert!(r.body.ends_with("lacks permission 'service:write' on \"web\""), "{}", r.body);
    assert_eq!(c.call("PUT", "/v1/agent/service/register", &[("X-Consul-Token", "s3cret")], Some(reg)).status, 200);
    assert_eq!(c.put("/v1/agent/check/pass/service:web", "").status, 403);
    assert_eq!(
        c.call("PUT", "/v1/agent/check/pass/service:web", &[("X-Consul-Token", "s3cret")], Some("")).status,
        200
    );
    assert_eq!(c.put("/v1/agent/service/deregister/web", "").status, 403);
    assert_eq!(c.put("/v1/connect/ca/configuration", r#"{"Provider":"consul","Config":{}}"#).status, 403);
    assert_eq!(
        c.call("PUT", "/v1/agent/service/deregister/web", &[("X-Consul-Token", "s3cret")], Some("")).status,
        200
    );
}

#[test]
fn namespace_and_partition_parameters_get_ce_400() {
    let (_a, c) = default_agent();
    let r = c.get("/v1/agent/connect/ca/roots?ns=default");
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature")
    );
    let r = c.get("/v1/agent/connect/ca/leaf/web?partition=default");
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Invalid query parameter: \"partition\" - Partitions are a Consul Enterprise feature")
    );
    let r = c.call("GET", "/v1/health/connect/web", &[("X-Consul-Namespace", "team")], None);
    assert_eq!(r.status, 400);
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    let (_a, c) = default_agent();
    assert_eq!(c.get("/v1/nope").status, 404);
    assert_eq!(c.get("/").status, 404);
    let r = c.put("/v1/agent/connect/ca/roots", "");
    assert_eq!(r.status, 405);
    assert_eq!(c.get("/v1/agent/service/register").status, 405);
    let r = c.put("/v1/agent/service/register", "{\"Name\":");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("Request decode failed: "));
}

#[test]
fn register_health_connect_ttl_and_tcp_checks() {
    let (_a, c) = default_agent();
    assert_eq!(c.get("/v1/health/connect/db").body, "[]");
    // Native service with a TTL check starts critical.
    let r = c.put(
        "/v1/agent/service/register",
        r#"{"ID":"db-1","Name":"db","Port":5432,"Connect":{"Native":true},"Check":{"TTL":"30s"}}"#,
    );
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = c.get("/v1/health/connect/db");
    assert!(r.index() >= 1);
    let v = r.value();
    for key in ["Node", "Service", "Checks"] {
        assert!(v[0].get(key).is_some(), "entry missing {key}: {v}");
    }
    assert_eq!(v[0]["Service"]["Connect"]["Native"], true);
    let e: Vec<HealthEntry> = r.json();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].service.id.as_str(), e[0].service.port), ("db-1", 5432));
    assert_eq!(e[0].node.datacenter, "dc1");
    assert!(e[0].checks.iter().any(|c| c.check_id == "serfHealth" && c.status == "passing"));
    let ttl = e[0].checks.iter().find(|c| c.check_id == "service:db-1").expect("TTL check");
    assert_eq!(ttl.status, "critical");
    assert_eq!(c.get("/v1/health/connect/db?passing=1&stale").body, "[]");
    // Blocking health query returns when the check passes.
    let idx = r.index();
    let c2 = c.clone();
    let passer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c2.put("/v1/agent/check/pass/service:db-1?note=ok", "").status
    });
    let t0 = Instant::now();
    let r = c.get(&format!("/v1/health/connect/db?passing=1&index={idx}&wait=10s"));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(passer.join().unwrap(), 200);
    let e: Vec<HealthEntry> = r.json();
    assert_eq!(e.len(), 1);
    // A sidecar proxy for db shows up too.
    let r = c.put(
        "/v1/agent/service/register",
        r#"{"Kind":"connect-proxy","ID":"db-2-sidecar-proxy","Name":"db-sidecar-proxy","Port":21000,
            "Proxy":{"DestinationServiceName":"db","DestinationServiceID":"db-2"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let e: Vec<HealthEntry> = c.get("/v1/health/connect/db").json();
    assert_eq!(e.len(), 2);
    let proxy = e.iter().find(|x| x.service.kind == "connect-proxy").expect("proxy entry");
    assert_eq!(proxy.service.proxy.as_ref().unwrap().destination_service_name, "db");
    // A non-native plain service with the same name is not a Connect endpoint.
    c.put("/v1/agent/service/register", r#"{"ID":"db-plain","Name":"db","Port":1}"#);
    assert_eq!(c.get("/v1/health/connect/db").json::<Vec<HealthEntry>>().len(), 2);
    // Validation and errors.
    let r = c.put("/v1/agent/service/register", r#"{"Name":"x","Connect":{"Native":true}}"#);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Port or SocketPath"), "{}", r.body);
    assert_eq!(c.put("/v1/agent/check/pass/nope", "").status, 404);
    assert_eq!(c.put("/v1/agent/service/deregister/nope", "").status, 404);
    // TCP check against a real listener goes passing.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let r = c.put(
        "/v1/agent/service/register",
        &format!(r#"{{"ID":"api-1","Name":"api","Port":{port},"Connect":{{"Native":true}},"Check":{{"TCP":"127.0.0.1:{port}","Interval":"200ms"}}}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let e: Vec<HealthEntry> = c.get("/v1/health/connect/api?passing").json();
        if e.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "TCP check never passed");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(l);
    // Deregister.
    assert_eq!(c.put("/v1/agent/service/deregister/db-1", "").status, 200);
    let e: Vec<HealthEntry> = c.get("/v1/health/connect/db").json();
    assert_eq!(e.len(), 1);
}

#[test]
fn agent_self_reports_datacenter_node_and_version() {
    let (_a, c) = start(DevAgentOptions { node_name: Some("node-x".into()), ..Default::default() });
    let v = c.get("/v1/agent/self").value();
    assert_eq!(v["Config"]["Datacenter"], "dc1");
    assert_eq!(v["Config"]["NodeName"], "node-x");
    assert_eq!(v["Config"]["Version"], "1.22.0-dev+consulnative");
}

#[test]
fn ca_configuration_put_rotates_and_rejects_malformed_json() {
    let (_a, c) = default_agent();
    let before: CaRoots = c.get("/v1/agent/connect/ca/roots").json();
    let r = c.put("/v1/connect/ca/configuration", "{bad");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("Request decode failed: "));
    let r = c.put("/v1/connect/ca/configuration", r#"{"Provider":"consul","Config":{"LeafCertTTL":"72h"}}"#);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let after: CaRoots = c.get("/v1/agent/connect/ca/roots").json();
    assert_eq!(after.roots.len(), 2);
    assert_ne!(after.active_root_id, before.active_root_id);
    let old = after.roots.iter().find(|r| r.id == before.active_root_id).unwrap();
    assert!(!old.active);
    let new = after.roots.iter().find(|r| r.id == after.active_root_id).unwrap();
    assert!(new.active);
    assert_eq!(new.intermediate_certs.as_ref().map(|v| v.len()), Some(1));
    let cfg = c.get("/v1/connect/ca/configuration").value();
    assert_eq!(cfg["Provider"], "consul");
}
