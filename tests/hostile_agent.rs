//! A hostile or broken agent, through the C ABI: every bad answer is refused with a clear `last_error` and a
//! WATCH_ERROR event, the watch backs off, and the last good certificates stay in force (the service stays ready
//! as itself, new handshakes present the same leaf). The dev agent's hostile fault kinds serve the answers; a
//! small scripted proxy in front of it serves raw HTTP garbage; a listener that never answers plays a hung agent.

mod common;
use common::*;
use consulnative_devagent::{Fault, FaultEndpoint, FaultKind};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events seen by a service's change callback, indexed by `consulnative_event` value.
type Counts = [AtomicUsize; 4];

fn count_events(service: &Service) -> Arc<Counts> {
    unsafe extern "C" fn on_event(ud: *mut libc::c_void, event: consulnative_event) {
        let counts = &*(ud as *const Counts);
        counts[(event as usize).min(3)].fetch_add(1, Ordering::SeqCst);
    }
    unsafe extern "C" fn drop_counts(ud: *mut libc::c_void) {
        drop(Arc::from_raw(ud as *const Counts));
    }
    let counts: Arc<Counts> = Arc::new(Default::default());
    let ud = Arc::into_raw(counts.clone()) as *mut libc::c_void;
    let mut id = 0;
    check(consulnative_service_add_callback(service.0, Some(on_event), ud, Some(drop_counts), &mut id)).unwrap();
    counts
}

const WATCH_ERROR: usize = 3;

/// A ready `db` listening with an echo server and a ready `web` that dials it: what every hostile answer is
/// tried against.
struct Mesh {
    agent: Agent,
    _client: Client,
    db: Service,
    web: Service,
    listener: Arc<Listener>,
    db_serial: String,
    db_id: String,
    events: Arc<Counts>,
}

impl Mesh {
    fn start(extra: &[(&str, &str)]) -> Mesh {
        Mesh::on(Agent::start(), None, extra)
    }

    /// `address` overrides the agent's (a proxy in front of it).
    fn on(agent: Agent, address: Option<String>, extra: &[(&str, &str)]) -> Mesh {
        let client = Client::new(&address.unwrap_or_else(|| agent.address()), extra);
        let db = client.service("db").ready(10_000);
        let web = client.service("web").ready(10_000);
        let listener = Arc::new(db.listen("127.0.0.1:0"));
        echo_server(listener.clone());
        let status = db.status();
        let db_serial = status["leaf_serial"].as_str().unwrap().to_string();
        let db_id = status["spiffe_id"].as_str().unwrap().to_string();
        let events = count_events(&db);
        let mesh = Mesh { agent, _client: client, db, web, listener, db_serial, db_id, events };
        mesh.assert_last_good_in_force();
        mesh
    }

    fn fault(&self, endpoint: FaultEndpoint, kind: FaultKind) {
        self.agent.0.set_fault(&Fault { endpoint, kind }).unwrap();
    }

    /// Waits (a blocked query returns within the 2 s test wait) until db's last_error holds every `expect`.
    fn expect_error(&self, expect: &[&str]) -> String {
        let mut last = String::new();
        let seen = eventually(Duration::from_secs(15), || {
            last = self.db.status()["last_error"].as_str().unwrap_or_default().to_string();
            expect.iter().all(|e| last.contains(e))
        });
        assert!(seen, "last_error {last:?} lacks {expect:?}; status {}", self.db.status());
        assert!(self.events[WATCH_ERROR].load(Ordering::SeqCst) > 0, "no WATCH_ERROR event");
        last
    }

    /// db is ready as itself with its last good leaf, and a new handshake presents that leaf.
    fn assert_last_good_in_force(&self) {
        let status = self.db.status();
        assert_eq!(status["ready"], true, "{status}");
        assert_eq!(status["spiffe_id"].as_str(), Some(self.db_id.as_str()), "{status}");
        assert_eq!(status["leaf_serial"].as_str(), Some(self.db_serial.as_str()), "{status}");
        let conn = self.web.dial_address(&self.listener.address(), "db", 5000).expect("dial with the last good certs");
        assert_eq!(conn.info()["peer"]["serial"].as_str(), Some(self.db_serial.as_str()));
        conn.write(b"ok").unwrap();
        assert_eq!(conn.read_exact(2).unwrap(), b"ok");
    }

    /// After the faults are cleared the watches recover: no error, still ready.
    fn assert_recovers(&self) {
        self.agent.clear_faults();
        assert!(
            eventually(Duration::from_secs(15), || self.db.status()["last_error"].is_null()
                && self.db.status()["ready"] == true),
            "{}",
            self.db.status()
        );
    }
}

/// One hostile leaf answer: refused with `expect` in last_error, last good kept, then recovery.
fn hostile_leaf(kind: FaultKind, expect: &[&str]) {
    let mesh = Mesh::start(&[]);
    mesh.fault(FaultEndpoint::Leaf, kind);
    let error = mesh.expect_error(expect);
    assert!(error.contains("the agent returned a leaf for \"db\""), "{error}");
    mesh.assert_last_good_in_force();
    mesh.assert_recovers();
    mesh.assert_last_good_in_force();
}

#[test]
fn a_leaf_for_another_service_is_refused_and_db_stays_db() {
    hostile_leaf(FaultKind::LeafFor("admin".into()), &["that belongs to service \"admin\"", "/svc/admin"]);
}

#[test]
fn a_leaf_in_another_trust_domain_is_refused() {
    hostile_leaf(
        FaultKind::LeafUri("spiffe://0000aaaa-0000-0000-0000-000000000000.consul/ns/default/dc/dc1/svc/db".into()),
        &["in trust domain \"0000aaaa-0000-0000-0000-000000000000.consul\", but the CA roots are for"],
    );
}

#[test]
fn a_leaf_from_a_foreign_ca_is_refused() {
    hostile_leaf(FaultKind::ForeignCa, &["does not verify against the current CA roots", "UnknownIssuer"]);
}

#[test]
fn a_leaf_not_valid_yet_is_refused() {
    let now = unix_now();
    hostile_leaf(FaultKind::LeafWindow(now + 3600, now + 7200), &["that is not valid yet (valid from "]);
}

#[test]
fn an_expired_leaf_is_refused() {
    let now = unix_now();
    hostile_leaf(FaultKind::LeafWindow(now - 7200, now - 3600), &["that has expired (valid until "]);
}

#[test]
fn a_non_numeric_or_zero_consul_index_is_refused_and_the_watch_backs_off() {
    let mesh = Mesh::start(&[("retry_max_ms", "1000")]);
    mesh.fault(FaultEndpoint::Leaf, FaultKind::Index("abc".into()));
    mesh.expect_error(&["non-numeric X-Consul-Index \"abc\"", "GET /v1/agent/connect/ca/leaf/db"]);
    // Backoff, not ~10 requests a second: every refused answer is one WATCH_ERROR event.
    let before = mesh.events[WATCH_ERROR].load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(4));
    let errors = mesh.events[WATCH_ERROR].load(Ordering::SeqCst) - before;
    assert!((1..=12).contains(&errors), "{errors} refused answers in 4 s");
    mesh.assert_last_good_in_force();
    mesh.agent.clear_faults();
    mesh.fault(FaultEndpoint::All, FaultKind::Index("0".into()));
    mesh.expect_error(&["X-Consul-Index 0"]);
    mesh.assert_last_good_in_force();
    mesh.assert_recovers();
}

#[test]
fn huge_answers_are_refused_and_ten_services_stay_small() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("retry_max_ms", "500")]);
    let services: Vec<Service> = (0..10).map(|i| client.service(&format!("svc{i}")).ready(10_000)).collect();
    let serials: Vec<String> = services.iter().map(|s| s.serial()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib();
    agent.0.set_fault(&Fault { endpoint: FaultEndpoint::Leaf, kind: FaultKind::HugeBody(100 << 20) }).unwrap();
    for s in &services {
        let seen = eventually(Duration::from_secs(15), || {
            s.status()["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("a leaf certificate answer may be at most 64 KiB"))
        });
        assert!(seen, "{}", s.status());
    }
    std::thread::sleep(Duration::from_secs(3)); // several refused 100 MiB answers per service
    let rss_after = rss_kib();
    eprintln!("10 services answered 100 MiB leaves: RSS {rss_before} KiB -> {rss_after} KiB");
    assert!(rss_after < rss_before + 40 * 1024, "RSS grew from {rss_before} KiB to {rss_after} KiB");
    for (s, serial) in services.iter().zip(&serials) {
        assert_eq!(s.status()["ready"], true);
        assert_eq!(&s.serial(), serial);
    }
    // The roots answer has its own, larger limit.
    agent.clear_faults();
    agent.0.set_fault(&Fault { endpoint: FaultEndpoint::Roots, kind: FaultKind::HugeBody(1 << 20) }).unwrap();
    let s = &services[0];
    let seen = eventually(Duration::from_secs(15), || {
        s.status()["last_error"].as_str().is_some_and(|e| e.contains("a CA roots answer may be at most 512 KiB"))
    });
    assert!(seen, "{}", s.status());
    assert_eq!(s.status()["ready"], true);
    assert_eq!(s.status()["roots"], 1);
}

#[test]
fn a_leaf_that_arrives_before_the_roots_waits_for_them_without_an_error() {
    let agent = Agent::start();
    agent.fault("roots", "delay", 1500, "");
    let client = Client::new(&agent.address(), &[]);
    let web = client.service("web");
    let events = count_events(&web);
    let err = web.wait_ready(800).unwrap_err();
    assert_eq!(err.code, ERR_NOT_READY);
    assert!(err.message.contains("no CA roots yet"), "{}", err.message);
    assert!(
        err.message.contains("a leaf certificate arrived and waits for CA roots that vouch for it"),
        "{}",
        err.message
    );
    web.wait_ready(10_000).expect("ready once the roots arrive");
    assert_eq!(events[WATCH_ERROR].load(Ordering::SeqCst), 0, "holding the leaf is not an error");
    // Callbacks run after readiness is signalled: wait for the event rather than race it.
    assert!(eventually(Duration::from_secs(5), || events[consulnative_event::LeafRotated as usize]
        .load(Ordering::SeqCst)
        == 1));
    assert_eq!(events[WATCH_ERROR].load(Ordering::SeqCst), 0, "holding the leaf is not an error");
    assert!(web.status()["last_error"].is_null());
}

#[test]
fn an_agent_that_never_answers_is_named_by_wait_ready() {
    let (addr, _held) = silent_agent();
    let client = Client::new(&addr, &[("request_timeout_ms", "500")]);
    let web = client.service("web");
    let started = Instant::now();
    let err = web.wait_ready(200).unwrap_err();
    assert_eq!(err.code, ERR_NOT_READY);
    assert!(
        err.message.contains(&format!(
            "the agent at http://{addr} has not answered GET /v1/agent/connect/ca/roots or GET \
             /v1/agent/connect/ca/leaf/web yet"
        )),
        "{}",
        err.message
    );
    // The first requests are bounded by the request timeout, not the ~324 s of a blocking query.
    let err = web.wait_ready(3000).unwrap_err();
    assert!(err.message.contains("did not answer GET /v1/agent/connect/ca/"), "{}", err.message);
    assert!(err.message.contains("within 500ms"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(web.status()["last_error"].as_str().is_some_and(|e| e.contains("within 500ms")));
}

#[test]
fn raw_http_garbage_from_the_agent_is_refused_and_the_last_good_certificates_stay() {
    let agent = Agent::start();
    let proxy = Proxy::start(agent.address());
    let mesh = Mesh::on(agent, Some(proxy.address.clone()), &[]);
    let chunked = {
        let mut raw = b"HTTP/1.1 200 OK\r\nX-Consul-Index: 99\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..64 {
            raw.extend(format!("{:x}\r\n", 16 * 1024).as_bytes());
            raw.extend(vec![b' '; 16 * 1024]);
            raw.extend(b"\r\n");
        }
        raw
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (chunked, "with more than 64 KiB: a leaf certificate answer may be at most 64 KiB"),
        (b"HTTP/1.1 banana\r\n\r\n".to_vec(), "broken HTTP response"),
        (
            b"HTTP/1.1 200 OK\r\nX-Consul-Index: 99\r\nContent-Length: 15\r\n\r\n<html>hi</html>".to_vec(),
            "malformed JSON",
        ),
        (b"HTTP/1.1 200 OK\r\nX-Consul-Index: 99\r\nContent-Length: 2\r\n\r\n{}".to_vec(), "unusable"),
    ];
    for (raw, expect) in cases {
        proxy.serve_on_leaf(Some(raw));
        mesh.expect_error(&[expect]);
        mesh.assert_last_good_in_force();
        proxy.serve_on_leaf(None);
        assert!(
            eventually(Duration::from_secs(15), || mesh.db.status()["last_error"].is_null()),
            "{expect}: {}",
            mesh.db.status()
        );
    }
}

/// The test process's resident set size, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An "agent" that accepts connections, reads what is sent and never answers. Connections stay open while the
/// returned holder lives.
fn silent_agent() -> (String, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    (addr, held)
}

/// An HTTP proxy in front of the dev agent, one request per connection: forwards everything, except that leaf
/// requests get a scripted raw answer while one is set.
struct Proxy {
    address: String,
    leaf_answer: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let leaf_answer: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let scripted = leaf_answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (upstream, scripted) = (upstream.clone(), scripted.clone());
                std::thread::spawn(move || {
                    let _ = Proxy::serve(stream, &upstream, &scripted);
                });
            }
        });
        Proxy { address, leaf_answer }
    }

    fn serve_on_leaf(&self, raw: Option<Vec<u8>>) {
        *self.leaf_answer.lock().unwrap() = raw;
    }

    fn serve(mut client: TcpStream, upstream: &str, scripted: &Mutex<Option<Vec<u8>>>) -> std::io::Result<()> {
        let head = read_head(&mut client)?;
        let text = String::from_utf8_lossy(&head).to_string();
        let is_leaf = text.split_whitespace().nth(1).is_some_and(|t| t.starts_with("/v1/agent/connect/ca/leaf/"));
        let raw = if is_leaf { scripted.lock().unwrap().clone() } else { None };
        if let Some(raw) = raw {
            return client.write_all(&raw);
        }
        // Requests from the library carry no body (GETs), except authorize: forward what follows the head too.
        let length = header(&text, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        client.read_exact(&mut body)?;
        let mut agent = TcpStream::connect(upstream)?;
        agent.write_all(&with_close(&head))?;
        agent.write_all(&body)?;
        let mut answer = Vec::new();
        agent.read_to_end(&mut answer)?;
        let split = find(&answer, b"\r\n\r\n").map(|i| i + 4).unwrap_or(answer.len());
        client.write_all(&with_close(&answer[..split]))?;
        client.write_all(&answer[split..])
    }
}

/// The request or response head (through the empty line).
fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// `head` with `Connection: close` (and no other Connection header), so each side closes after one exchange.
fn with_close(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<&str> =
        text.trim_end().split("\r\n").filter(|l| !l.to_lowercase().starts_with("connection:")).collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
