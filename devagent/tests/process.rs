//! The binary as a process: how fast it is ready, its options, stopping and rebinding, and the handle's traits.

mod common;

use common::{default_agent, start};
use consulnative_core::api::wire::LeafCert;
use consulnative_devagent::process::{DevAgentOptions, DevAgentProcess};
use consulnative_devagent::DevAgentConfig;
use std::time::{Duration, Instant};

#[test]
fn startup_to_first_answer_is_fast() {
    let t0 = Instant::now();
    let (_a, c) = default_agent();
    let r = c.get("/v1/agent/connect/ca/roots");
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    eprintln!("dev agent startup to first roots answer: {ms:.1} ms");
    assert_eq!(r.status, 200);
    assert!(ms < 5000.0);
}

#[test]
fn stop_closes_the_listener_and_is_idempotent() {
    let (a, c) = default_agent();
    assert_eq!(c.get("/v1/agent/self").status, 200);
    let addr: std::net::SocketAddr = a.address().parse().unwrap();
    assert!(a.pid().is_some());
    a.stop();
    a.stop();
    assert_eq!(a.pid(), None);
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    // The port is free again and a taken port is an error that says so.
    let at = |addr: std::net::SocketAddr| DevAgentOptions { http_addr: Some(addr.to_string()), ..common::options() };
    let b = DevAgentProcess::start(at(addr)).expect("rebind");
    let err = DevAgentProcess::start(at(addr)).unwrap_err();
    assert!(err.to_string().contains("did not start") && err.to_string().contains("bind"), "{err}");
    drop(b);
}

#[test]
fn dev_agent_handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DevAgentProcess>();
    assert_send_sync::<DevAgentOptions>();
    assert_send_sync::<DevAgentConfig>();
    // The token never shows in Debug output.
    let cfg = DevAgentConfig { acl_token: Some("very-secret".into()), ..Default::default() };
    assert!(!format!("{cfg:?}").contains("very-secret"));
    let options = DevAgentOptions { acl_token: Some("very-secret".into()), ..Default::default() };
    assert!(!format!("{options:?}").contains("very-secret"));
}

#[test]
fn datacenter_and_node_name_options_reach_the_agent() {
    let options =
        DevAgentOptions { datacenter: Some("east".into()), node_name: Some("n1".into()), ..Default::default() };
    let (a, c) = start(options);
    let v = c.get("/v1/agent/self").value();
    assert_eq!((v["Config"]["Datacenter"].as_str(), v["Config"]["NodeName"].as_str()), (Some("east"), Some("n1")));
    let leaf: LeafCert = c.get("/v1/agent/connect/ca/leaf/web").json();
    assert_eq!(leaf.service_uri, format!("spiffe://{}/ns/default/dc/east/svc/web", a.trust_domain().unwrap()));
    assert_eq!(c.get("/v1/agent/connect/ca/roots?dc=west").status, 500);
}
