//! Allowed and denied connections, identity checks and the connection API, through the C ABI against the dev agent.

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;

fn setup() -> (Agent, Client) {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    (agent, client)
}

/// A dev agent, ready services `db` and `web`, and an echo server listening as `db`.
fn echo_world() -> (Agent, Client, Service, Service, Arc<Listener>) {
    let (agent, client) = setup();
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    echo_server(listener.clone());
    (agent, client, db, web, listener)
}

#[test]
fn allowed_connection_carries_data_both_ways_and_both_sides_see_the_peer_identity() {
    let (agent, client) = setup();
    agent.intention("web", "db", true);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = db.listen("127.0.0.1:0");
    let addr = listener.address();
    let server = std::thread::spawn(move || {
        let conn = listener.accept(10_000).expect("accept");
        let got = conn.read_exact(4).unwrap();
        conn.write(b"pong").unwrap();
        (got, conn.info())
    });
    let conn = web.dial_address(&addr, "db", 10_000).expect("dial");
    conn.write(b"ping").unwrap();
    assert_eq!(conn.read_exact(4).unwrap(), b"pong");
    let (got, server_info) = server.join().unwrap();
    assert_eq!(got, b"ping");
    assert_eq!(server_info["peer"]["service"], "web");
    assert_eq!(server_info["peer"]["datacenter"], "dc1");
    assert_eq!(server_info["peer"]["trust_domain"], agent.trust_domain());
    assert!(server_info["peer"]["uri"].as_str().unwrap().ends_with("/ns/default/dc/dc1/svc/web"));
    assert_eq!(conn.info()["peer"]["service"], "db");
    assert_eq!(conn.info()["peer"]["serial"].as_str().unwrap(), db.serial());
}

#[test]
fn denied_intention_closes_before_first_byte_and_listener_sees_the_reason() {
    let (agent, client) = setup();
    agent.intention("web", "db", false);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let refusals = listener.record_refusals();
    let addr = listener.address();
    let l2 = listener.clone();
    let server = std::thread::spawn(move || l2.accept(3000).map(|_| ()));

    // With TLS 1.3 the client's handshake completes before the server has checked it: the refusal surfaces as the
    // connection closing on the client's first read, and nothing the client sent reaches the application.
    if let Ok(conn) = web.dial_address(&addr, "db", 10_000) {
        let _ = conn.write(b"secret");
        let read = conn.read(16, 5000);
        assert!(matches!(&read, Ok(d) if d.is_empty()) || read.is_err(), "denied client must not get data: {read:?}");
    }
    let accepted = server.join().unwrap();
    assert_eq!(accepted.unwrap_err().code, ERR_TIMEOUT, "the denied connection never reaches accept");
    assert!(eventually(Duration::from_secs(5), || !refusals.lock().unwrap().is_empty()));
    let (code, uri, message) = refusals.lock().unwrap()[0].clone();
    assert_eq!(code, ERR_DENIED);
    assert!(uri.unwrap().ends_with("/svc/web"));
    assert!(message.contains("Matched L4 intention: default/web => default/db"), "{message}");
    assert!(message.contains("Action: DENY"), "{message}");
    assert_eq!(listener.counts(), (0, 1));
}

#[test]
fn default_deny_agent_refuses_without_intention_and_admits_after_allow() {
    let agent = Agent::start_with(None, None, false, 0);
    let client = Client::new(&agent.address(), &[]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let refusals = listener.record_refusals();
    let addr = listener.address();
    if let Ok(conn) = web.dial_address(&addr, "db", 5000) {
        let _ = conn.read(1, 3000);
    }
    assert!(eventually(Duration::from_secs(5), || !refusals.lock().unwrap().is_empty()));
    assert_eq!(refusals.lock().unwrap()[0].0, ERR_DENIED);

    agent.intention("web", "db", true);
    let l2 = listener.clone();
    let server = std::thread::spawn(move || l2.accept(10_000).map(|c| c.read_exact(2).unwrap()));
    let conn = web.dial_address(&addr, "db", 5000).unwrap();
    conn.write(b"hi").unwrap();
    assert_eq!(server.join().unwrap().unwrap(), b"hi");
}

#[test]
fn dialer_refuses_a_server_whose_identity_is_not_the_expected_service() {
    let (_agent, client) = setup();
    let web = client.service("web").ready(10_000);
    let impostor = client.service("cache").ready(10_000);
    let listener = impostor.listen("127.0.0.1:0");
    let err = web.dial_address(&listener.address(), "db", 5000).err().expect("must refuse");
    assert_eq!(err.code, ERR_IDENTITY, "{err:?}");
    assert!(err.message.contains("svc/cache") && err.message.contains("db"), "{}", err.message);

    // A full SPIFFE URI is compared the way Go's connect package does.
    let td = impostor.status()["trust_domain"].as_str().unwrap().to_string();
    let want = format!("spiffe://{td}/ns/default/dc/dc1/svc/db");
    let err = web.dial_address(&listener.address(), &want, 5000).err().expect("must refuse");
    assert_eq!(err.code, ERR_IDENTITY);
    assert!(err.message.contains("peer certificate mismatch got"), "{}", err.message);
}

#[test]
fn dial_by_service_name_uses_healthy_instances_from_the_catalog() {
    let (_agent, client) = setup();
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let err = web.dial("db", 5000).err().expect("nothing registered yet");
    assert_eq!(err.code, ERR_NO_INSTANCES, "{err:?}");

    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let port: u16 = listener.address().rsplit(':').next().unwrap().parse().unwrap();
    client.register("db", "db-1", port, "ttl:30000").unwrap();
    check(consulnative::consulnative_client_pass_ttl(client.0, c("service:db-1").as_ptr(), std::ptr::null())).unwrap();
    echo_server(listener.clone());
    let conn = web.dial("db", 5000).expect("dial by name");
    conn.write(b"echo").unwrap();
    assert_eq!(conn.read_exact(4).unwrap(), b"echo");
    check(consulnative::consulnative_client_deregister(client.0, c("db-1").as_ptr())).unwrap();
    assert_eq!(web.dial("db", 5000).err().unwrap().code, ERR_NO_INSTANCES);
}

#[test]
fn application_peer_check_can_refuse_a_client_the_agent_allowed() {
    use consulnative::consulnative_listener_set_peer_check;
    use std::ffi::{c_char, CStr};
    unsafe extern "C" fn only_api(_ud: *mut libc::c_void, _uri: *const c_char, service: *const c_char) -> i32 {
        (CStr::from_ptr(service).to_str().unwrap() != "api") as i32
    }
    let (_agent, client) = setup();
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = db.listen("127.0.0.1:0");
    let refusals = listener.record_refusals();
    check(consulnative_listener_set_peer_check(listener.0, Some(only_api), std::ptr::null_mut(), None)).unwrap();
    if let Ok(conn) = web.dial_address(&listener.address(), "db", 5000) {
        let _ = conn.read(1, 3000);
    }
    assert!(eventually(Duration::from_secs(5), || !refusals.lock().unwrap().is_empty()));
    assert_eq!(refusals.lock().unwrap()[0].0, ERR_REJECTED);
}

#[test]
fn silent_client_does_not_block_other_accepts_and_is_dropped_at_the_handshake_timeout() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("handshake_timeout_ms", "800")]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let refusals = listener.record_refusals();
    let addr = listener.address();
    let silent = std::net::TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let l2 = listener.clone();
    let server = std::thread::spawn(move || l2.accept(5000).map(|c| c.read_exact(1).unwrap()));
    let start = std::time::Instant::now();
    let conn = web.dial_address(&addr, "db", 5000).unwrap();
    conn.write(b"x").unwrap();
    assert_eq!(server.join().unwrap().unwrap(), b"x");
    assert!(start.elapsed() < Duration::from_millis(700), "a silent client delayed another: {:?}", start.elapsed());
    assert!(eventually(Duration::from_secs(5), || !refusals.lock().unwrap().is_empty()));
    let (code, _, message) = refusals.lock().unwrap()[0].clone();
    assert_eq!(code, ERR_TIMEOUT, "{message}");
    assert!(message.contains("handshake"), "{message}");
    let mut buf = [0u8; 1];
    use std::io::Read;
    silent.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(matches!((&silent).read(&mut buf), Ok(0) | Err(_)), "the silent client is disconnected");
}

#[test]
fn half_close_propagates_and_the_reader_sees_end_of_stream() {
    let (_agent, _client, _db, web, listener) = echo_world();
    let conn = web.dial_address(&listener.address(), "db", 5000).unwrap();
    conn.write(b"abc").unwrap();
    conn.shutdown().unwrap();
    assert_eq!(conn.read_exact(3).unwrap(), b"abc");
    assert_eq!(conn.read(10, 5000).unwrap(), b"", "EOF after the echo server closes");
}

#[test]
fn close_wakes_a_read_blocked_in_another_thread_sends_close_notify_and_is_idempotent() {
    let (_agent, _client, db, web, _listener) = echo_world();
    let server = db.listen("127.0.0.1:0");
    let addr = server.address();
    let accepted = std::thread::spawn(move || server.accept(10_000).expect("accept"));
    let conn = Arc::new(web.dial_address(&addr, "db", 5000).unwrap());
    let inbound = accepted.join().unwrap();
    let reader = {
        let conn = conn.clone();
        std::thread::spawn(move || conn.read(10, -1))
    };
    std::thread::sleep(Duration::from_millis(100)); // let the reader block in poll(2)
    conn.close(1000).unwrap();
    assert_eq!(reader.join().unwrap().unwrap_err().code, ERR_CLOSED, "the blocked read wakes with CLOSED");
    conn.close(1000).unwrap();
    assert_eq!(conn.write(b"x").unwrap_err().code, ERR_CLOSED);
    assert_eq!(inbound.read(10, 5000).unwrap(), b"", "the peer reads a clean end of stream (close_notify)");
}

#[test]
fn read_times_out_with_a_timeout_code_and_the_connection_stays_usable() {
    let (_agent, _client, _db, web, listener) = echo_world();
    let conn = web.dial_address(&listener.address(), "db", 5000).unwrap();
    let err = conn.read(10, 200).unwrap_err();
    assert_eq!(err.code, ERR_TIMEOUT);
    conn.write(b"still").unwrap();
    assert_eq!(conn.read_exact(5).unwrap(), b"still");
}

#[test]
fn descriptor_handoff_gives_a_plain_socket_with_eof_propagation() {
    use std::io::{Read, Write};
    let (_agent, _client, _db, web, listener) = echo_world();
    let conn = web.dial_address(&listener.address(), "db", 5000).unwrap();
    let mut fd = -1;
    check(consulnative::consulnative_conn_handoff(conn.0, &mut fd)).unwrap();
    assert!(fd >= 0);
    assert_eq!(conn.read(1, 100).unwrap_err().code, ERR_CLOSED, "the handle no longer reads");
    assert_eq!(conn.info()["peer"]["service"], "db", "info still works");
    // SAFETY: a descriptor the handoff just gave us; the stream owns and closes it.
    let mut sock = unsafe { fd_stream(fd) };
    let payload = vec![7u8; 300_000];
    let mut writer = sock.try_clone().unwrap();
    let p2 = payload.clone();
    let w = std::thread::spawn(move || {
        writer.write_all(&p2).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::new();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sock.read_to_end(&mut echoed).unwrap();
    w.join().unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload);
}

#[test]
fn listener_close_wakes_a_blocked_accept_with_closed() {
    let (_agent, client) = setup();
    let db = client.service("db").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let l2 = listener.clone();
    let t = std::thread::spawn(move || l2.accept(-1).err().map(|e| e.code));
    std::thread::sleep(Duration::from_millis(100));
    consulnative::consulnative_listener_close(listener.0);
    assert_eq!(t.join().unwrap(), Some(ERR_CLOSED));
    assert!(std::net::TcpStream::connect(listener.address()).is_err(), "the port is released");
}

#[test]
fn listens_on_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    let (_agent, client) = setup();
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("[::1]:0"));
    assert!(listener.address().starts_with("[::1]:"));
    echo_server(listener.clone());
    let conn = web.dial_address(&listener.address(), "db", 5000).unwrap();
    conn.write(b"v6").unwrap();
    assert_eq!(conn.read_exact(2).unwrap(), b"v6");
}

#[test]
fn alpn_is_configurable_per_listener_and_per_dial() {
    use consulnative::{consulnative_service_dial_address, consulnative_service_listen};
    let (_agent, client) = setup();
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let mut raw = std::ptr::null_mut();
    check(consulnative_service_listen(db.0, c("127.0.0.1:0").as_ptr(), c("h2, http/1.1").as_ptr(), &mut raw)).unwrap();
    let listener = Arc::new(Listener(raw));
    echo_server(listener.clone());
    let dial = |alpn: Option<&str>| {
        let alpn = alpn.map(c);
        let mut out = std::ptr::null_mut();
        check(consulnative_service_dial_address(
            web.0,
            c(&listener.address()).as_ptr(),
            c("db").as_ptr(),
            alpn.as_ref().map_or(std::ptr::null(), |a| a.as_ptr()),
            5000,
            &mut out,
        ))
        .map(|_| Conn(out))
    };
    assert_eq!(dial(Some("http/1.1")).unwrap().info()["alpn"], "http/1.1");
    assert_eq!(dial(Some("h2,http/1.1")).unwrap().info()["alpn"], "h2");
    assert_eq!(dial(None).unwrap().info()["alpn"], serde_json::Value::Null, "no ALPN offered, none negotiated");
}

#[test]
fn both_ends_handed_off_talk_like_plain_sockets() {
    use std::io::{Read, Write};
    let (_agent, client) = setup();
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let l2 = listener.clone();
    let server = std::thread::spawn(move || {
        let conn = l2.accept(5000).unwrap();
        let mut fd = -1;
        check(consulnative::consulnative_conn_handoff(conn.0, &mut fd)).unwrap();
        // SAFETY: a descriptor the handoff just gave us; the stream owns and closes it.
        let mut sock = unsafe { fd_stream(fd) };
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = [0u8; 5];
        sock.read_exact(&mut request).unwrap();
        sock.write_all(b"response").unwrap();
        drop(sock); // close: the client must read EOF after the response
        request
    });
    let conn = web.dial_address(&listener.address(), "db", 5000).unwrap();
    let mut fd = -1;
    check(consulnative::consulnative_conn_handoff(conn.0, &mut fd)).unwrap();
    // SAFETY: a descriptor the handoff just gave us; the stream owns and closes it.
    let mut sock = unsafe { fd_stream(fd) };
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(b"hello").unwrap();
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, b"response");
    assert_eq!(&server.join().unwrap(), b"hello");
}

#[test]
fn a_refused_client_that_handed_off_its_socket_reads_end_of_stream() {
    use std::io::{Read, Write};
    let (agent, client) = setup();
    agent.intention("web", "db", false);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = db.listen("127.0.0.1:0");
    let conn =
        web.dial_address(&listener.address(), "db", 5000).expect("TLS 1.3: the refusal comes after the handshake");
    let mut fd = -1;
    check(consulnative::consulnative_conn_handoff(conn.0, &mut fd)).unwrap();
    // SAFETY: a descriptor the handoff just gave us; the stream owns and closes it.
    let mut sock = unsafe { fd_stream(fd) };
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = sock.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut got = Vec::new();
    let outcome = sock.read_to_end(&mut got);
    assert!(got.is_empty(), "a refused client never gets application bytes");
    assert!(
        !matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "the handed-off socket must end, not hang: {outcome:?}"
    );
}

#[test]
fn dial_to_a_server_that_never_answers_the_handshake_times_out() {
    let (_agent, client) = setup();
    let web = client.service("web").ready(10_000);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let start = std::time::Instant::now();
    let err = web.dial_address(&silent.local_addr().unwrap().to_string(), "db", 300).err().expect("must time out");
    assert_eq!(err.code, ERR_TIMEOUT, "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "bounded by the dial timeout: {:?}", start.elapsed());
}

#[test]
fn dial_to_a_server_that_hangs_up_mid_handshake_is_a_handshake_error() {
    let (_agent, client) = setup();
    let web = client.service("web").ready(10_000);
    let rude = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = rude.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        if let Ok((mut sock, _)) = rude.accept() {
            use std::io::Read;
            let mut hello = [0u8; 64];
            let _ = sock.read(&mut hello); // take part of the ClientHello, then hang up
        }
    });
    let err = web.dial_address(&addr, "db", 5000).err().expect("must fail");
    assert_eq!(err.code, ERR_HANDSHAKE, "{err:?}");
    assert!(err.message.contains("closed the connection during the TLS handshake"), "{}", err.message);
}
