//! The `/_devagent/` test controls: injected faults, and the 400s for requests they cannot carry out.

mod common;

use common::default_agent;
use consulnative_devagent::{Fault, FaultEndpoint, FaultKind};
use std::time::{Duration, Instant};

#[test]
fn faults_inject_status_malformed_delay_and_backwards_index() {
    let (a, c) = default_agent();
    // Through DevAgentProcess: status on leaf only.
    a.set_fault(&Fault { endpoint: FaultEndpoint::Leaf, kind: FaultKind::Status(500, "boom".into()) }).unwrap();
    let r = c.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!((r.status, r.body.as_str()), (500, "boom"));
    assert_eq!(c.get("/v1/agent/connect/ca/roots").status, 200);
    a.clear_faults().unwrap();
    assert_eq!(c.get("/v1/agent/connect/ca/leaf/web").status, 200);
    // HTTP: malformed roots.
    assert_eq!(c.put("/_devagent/fault?endpoint=roots&malformed=1", "").status, 200);
    let r = c.get("/v1/agent/connect/ca/roots");
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&r.body).is_err());
    assert_eq!(c.call("DELETE", "/_devagent/fault", &[], None).status, 200);
    // Delay on authorize.
    c.put("/_devagent/fault?endpoint=authorize&delay=400ms", "");
    let t0 = Instant::now();
    let r = c.post(
        "/v1/agent/connect/authorize",
        r#"{"Target":"db","ClientCertURI":"spiffe://x.consul/ns/default/dc/dc1/svc/web"}"#,
    );
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(400));
    c.call("DELETE", "/_devagent/fault", &[], None);
    // Backwards index on blocking queries.
    let idx = c.get("/v1/agent/connect/ca/roots").index();
    c.put("/_devagent/fault?endpoint=all&reset_index=1", "");
    let t0 = Instant::now();
    let r = c.get(&format!("/v1/agent/connect/ca/roots?index={idx}&wait=5s"));
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(r.index() < idx, "index {} not below {idx}", r.index());
    assert!(r.index() >= 1);
    // Non-blocking requests are unaffected.
    assert_eq!(c.get("/v1/agent/connect/ca/roots").index(), idx);
    a.clear_faults().unwrap();
    assert_eq!(c.get("/v1/agent/connect/ca/roots?status=x").status, 200);
    assert_eq!(c.put("/_devagent/fault?endpoint=nope&status=500", "").status, 400);
}

#[test]
fn issue_leaf_with_absurd_times_answers_400_and_the_agent_lives_on() {
    let (a, c) = default_agent();
    let path = "/_devagent/issue-leaf/web?not_before=-9223372036854775808&not_after=9223372036854775807";
    let r = c.get(path);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not_before"), "{}", r.body);
    assert!(r.header("Content-Type").unwrap_or("").starts_with("text/plain"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for (query, says) in [
        (format!("not_before={now}&not_after=9223372036854775807"), "not_after"),
        (format!("not_before={now}&not_after=300000000000"), "not_after"),
        (format!("not_before={}&not_after={now}", now + 60), "after not_after"),
        ("not_before=yesterday".to_string(), "invalid not_before \"yesterday\""),
    ] {
        let r = c.get(&format!("/_devagent/issue-leaf/web?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body.contains(says), "{query}: {}", r.body);
    }
    assert_eq!(c.get("/_devagent/issue-leaf/a%20b").status, 400);
    // DevAgentProcess reports the refusal as an error with the agent's text.
    let err = a.issue_leaf("web", i64::MIN, i64::MAX).unwrap_err();
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    // Still serving, and a sane ad-hoc leaf still works.
    assert_eq!(c.get("/v1/agent/self").status, 200);
    assert_eq!(a.issue_leaf("web", now - 60, now + 60).unwrap().service, "web");
}

#[test]
fn unknown_fault_endpoint_or_kind_answers_400_with_a_clear_text() {
    let (_a, c) = default_agent();
    let r = c.put("/_devagent/fault?endpoint=leafs&malformed=1", "");
    assert_eq!((r.status, r.body.as_str()), (400, "unknown fault endpoint \"leafs\" (all|roots|leaf|authorize)"));
    let r = c.put("/_devagent/fault?endpoint=all&explode=1", "");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("unknown fault kind \"explode\" (give status="), "{}", r.body);
    let r = c.put("/_devagent/fault?endpoint=leaf", "");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("no fault given"), "{}", r.body);
    let r = c.put("/_devagent/fault?status=700", "");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("invalid status \"700\""), "{}", r.body);
    let r = c.put("/_devagent/fault?delay=soon", "");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("invalid delay \"soon\""), "{}", r.body);
    assert_eq!(c.get("/_devagent/fault").status, 405);
    assert_eq!(c.get("/_devagent/nope").status, 404);
    // None of the refused requests set a fault.
    assert_eq!(c.get("/v1/agent/connect/ca/leaf/web").status, 200);
}

#[test]
fn hostile_faults_serve_what_a_broken_or_compromised_agent_could() {
    let (a, c) = default_agent();
    let td = a.trust_domain().unwrap();
    let leaf = |a: &consulnative_devagent::process::DevAgentProcess, kind: FaultKind| {
        a.clear_faults().unwrap();
        a.set_fault(&Fault { endpoint: FaultEndpoint::Leaf, kind }).unwrap();
        let r = c.get("/v1/agent/connect/ca/leaf/web?index=999999&wait=30s");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.index() > 1);
        r.value()
    };
    let own = c.get("/v1/agent/connect/ca/leaf/web").value();

    // Another service's real leaf, at once even for a blocking query.
    let t0 = Instant::now();
    let v = leaf(&a, FaultKind::LeafFor("admin".into()));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(v["ServiceURI"], format!("spiffe://{td}/ns/default/dc/dc1/svc/admin"));
    // Any URI, signed by the active root.
    let uri = "spiffe://other.consul/ns/default/dc/dc1/svc/web";
    assert_eq!(leaf(&a, FaultKind::LeafUri(uri.into()))["ServiceURI"], uri);
    // The right identity from a CA the roots do not list.
    let v = leaf(&a, FaultKind::ForeignCa);
    assert_eq!(v["ServiceURI"], own["ServiceURI"]);
    let pem = v["CertPEM"].as_str().unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.issuer().to_string(), "CN=Foreign CA");
    // Any validity window.
    let v = leaf(&a, FaultKind::LeafWindow(4_102_444_800, 4_102_448_400));
    assert_eq!(
        (v["ValidAfter"].as_str(), v["ValidBefore"].as_str()),
        (Some("2100-01-01T00:00:00Z"), Some("2100-01-01T01:00:00Z"))
    );

    // A huge body, announced; and a bad index on an otherwise good answer.
    a.clear_faults().unwrap();
    a.set_fault(&Fault { endpoint: FaultEndpoint::Roots, kind: FaultKind::HugeBody(1_000_000) }).unwrap();
    let r = c.get("/v1/agent/connect/ca/roots");
    assert_eq!((r.status, r.body.len(), r.header("Content-Length")), (200, 1_000_000, Some("1000000")));
    assert_eq!(c.get("/v1/agent/connect/ca/leaf/web").status, 200, "the leaf endpoint is unaffected");
    a.clear_faults().unwrap();
    a.set_fault(&Fault { endpoint: FaultEndpoint::All, kind: FaultKind::Index("abc".into()) }).unwrap();
    assert_eq!(c.get("/v1/agent/connect/ca/roots").header("X-Consul-Index"), Some("abc"));
    let r = c.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!((r.header("X-Consul-Index"), r.value()["ServiceURI"].clone()), (Some("abc"), own["ServiceURI"].clone()));

    // Parameters they cannot take are refused with a text that says why.
    for (query, says) in [
        ("huge_body=lots", "invalid huge_body \"lots\""),
        ("huge_body=99999999999", "invalid huge_body"),
        ("leaf_window=5", "invalid leaf_window \"5\""),
        ("index=a%0Ab", "invalid index"),
        ("leaf_for=", "leaf_for needs a value"),
    ] {
        let r = c.put(&format!("/_devagent/fault?endpoint=leaf&{query}"), "");
        assert_eq!(r.status, 400, "{query}");
        assert!(r.body.starts_with(says), "{query}: {}", r.body);
    }
}
