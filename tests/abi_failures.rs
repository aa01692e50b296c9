//! Failure paths against a misbehaving or absent agent: clear result codes, last good certificates kept, recovery.

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn agent_down_at_startup_times_out_clearly_then_becomes_ready_when_the_agent_comes_up() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let client = Client::new(&addr, &[]);
    let web = client.service("web");
    let err = web.wait_ready(700).unwrap_err();
    assert_eq!(err.code, ERR_NOT_READY);
    assert!(err.message.contains("not ready"), "{}", err.message);
    assert!(err.message.contains("unreachable") && err.message.contains(&addr), "{}", err.message);

    let _agent = Agent::start_with(Some(&addr), None, true, 0);
    web.wait_ready(10_000).expect("ready once the agent is up");
    assert_eq!(web.status()["last_error"], serde_json::Value::Null);
}

#[test]
fn agent_errors_are_reported_and_the_last_good_certificates_stay_in_force() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    echo_server(listener.clone());

    for (kind, value, body, expect) in [
        ("status", 500, "internal failure", "500"),
        ("status", 403, "Permission denied: token lacks permission 'service:write' on \"web\"", "403"),
        ("malformed", 0, "", "JSON"),
    ] {
        agent.fault("leaf", kind, value, body);
        agent.fault("roots", kind, value, body);
        agent.rotate_ca(); // wakes the blocked queries so the next ones hit the fault
        let seen = eventually(Duration::from_secs(10), || {
            web.status()["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(expect) || e.to_lowercase().contains(&expect.to_lowercase()))
        });
        assert!(seen, "{kind}: last_error = {}", web.status()["last_error"]);
        // Certificates already in force keep working while the agent misbehaves.
        let conn = web.dial_address(&listener.address(), "db", 5000).expect("dial with the last good certs");
        conn.write(b"ok").unwrap();
        assert_eq!(conn.read_exact(2).unwrap(), b"ok");
        agent.clear_faults();
        assert!(
            eventually(Duration::from_secs(10), || web.status()["last_error"].is_null()
                && web.status()["ready"] == true),
            "{kind}: recovers: {}",
            web.status()
        );
    }
}

#[test]
fn backwards_index_resets_the_watch_and_it_keeps_working() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let web = client.service("web").ready(10_000);
    agent.fault("all", "backwards_index", 0, "");
    agent.rotate_ca();
    let before = web.serial();
    assert!(eventually(Duration::from_secs(10), || web.serial() != before), "the rotation still arrives");
    agent.clear_faults();
    agent.rotate_ca();
    let mid = web.serial();
    assert!(eventually(Duration::from_secs(10), || web.serial() != mid), "and the next one too");
    assert_eq!(web.status()["ready"], true);
}

#[test]
fn agent_stopped_then_restarted_on_the_same_port_recovers() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let agent = Agent::start_with(Some(&addr), None, true, 0);
    let client = Client::new(&addr, &[]);
    let web = client.service("web").ready(10_000);
    agent.stop();
    drop(agent);
    assert!(eventually(Duration::from_secs(10), || web.status()["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("unreachable"))));
    assert_eq!(web.status()["ready"], true, "last good certificates kept while the agent is away");
    let _agent2 = Agent::start_with(Some(&addr), None, true, 0);
    // A restarted dev agent has a new CA: the service follows it.
    assert!(
        eventually(Duration::from_secs(15), || web.status()["last_error"].is_null() && web.status()["ready"] == true),
        "{}",
        web.status()
    );
}

#[test]
fn missing_acl_token_is_a_permission_error_and_the_right_token_works() {
    let agent = Agent::start_with(None, Some("s3cret-token"), true, 0);
    let client = Client::new(&agent.address(), &[]);
    let web = client.service("web");
    let err = web.wait_ready(1500).unwrap_err();
    assert_eq!(err.code, ERR_NOT_READY);
    assert!(err.message.contains("403"), "{}", err.message);
    assert!(!err.message.contains("s3cret-token"));

    let good = Client::new(&agent.address(), &[("token", "s3cret-token")]);
    let web = good.service("web").ready(10_000);
    assert!(!web.status().to_string().contains("s3cret-token"));
}

#[test]
fn failed_authorize_call_refuses_the_connection_and_says_why() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("authorize_timeout_ms", "500")]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let refusals = listener.record_refusals();
    let addr = listener.address();

    agent.fault("authorize", "status", 500, "rpc error: no cluster leader");
    if let Ok(conn) = web.dial_address(&addr, "db", 5000) {
        let _ = conn.read(1, 3000);
    }
    assert!(eventually(Duration::from_secs(5), || refusals.lock().unwrap().len() == 1));
    let (code, _, message) = refusals.lock().unwrap()[0].clone();
    assert_eq!(code, ERR_AUTHZ_FAILED);
    assert!(message.contains("no cluster leader"), "{message}");

    agent.clear_faults();
    agent.fault("authorize", "delay", 3000, "");
    if let Ok(conn) = web.dial_address(&addr, "db", 5000) {
        let _ = conn.read(1, 3000);
    }
    assert!(eventually(Duration::from_secs(5), || refusals.lock().unwrap().len() == 2));
    let (code, _, message) = refusals.lock().unwrap()[1].clone();
    assert_eq!(code, ERR_AUTHZ_FAILED);
    assert!(message.contains("within 500ms") || message.contains("timed out"), "{message}");
    assert_eq!(listener.counts().0, 0, "nothing admitted while authorization fails");
}
