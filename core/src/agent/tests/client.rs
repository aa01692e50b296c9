//! The agent HTTP client against a tiny canned HTTP server (TCP, Unix socket and TLS variants): request paths,
//! query strings, headers, error mapping, timeouts, keep-alive and agent TLS.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::agent::client::{AgentClient, BlockingQuery};
use crate::agent::config::AgentConfig;
use crate::agent::types::{AuthorizeRequest, ServiceCheck, ServiceConnect, ServiceRegistration};
use crate::error::Code;

// ------------------------------------------------------------------------------------------------------------
// The canned agent

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    target: String,
    /// Lower-cased names.
    headers: HashMap<String, String>,
    body: String,
}

#[derive(Clone)]
enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Answer after a delay.
    Late(Duration, Box<Reply>),
    /// Read the request, then say nothing and keep the connection open.
    Silent,
    /// Write these bytes as the whole answer, then close the connection.
    Raw(Vec<u8>),
}

fn ok_json(body: &str, index: Option<u64>) -> Reply {
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if let Some(i) = index {
        headers.push(("X-Consul-Index", i.to_string()));
    }
    Reply::Answer { status: 200, headers, body: body.to_string() }
}

fn text(status: u16, body: &str) -> Reply {
    Reply::Answer { status, headers: vec![("Content-Type", "text/plain; charset=utf-8".into())], body: body.into() }
}

struct Canned {
    requests: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<Mutex<Vec<Reply>>>,
    connections: Arc<AtomicUsize>,
}

impl Canned {
    fn new(replies: Vec<Reply>) -> Canned {
        Canned {
            requests: Arc::default(),
            replies: Arc::new(Mutex::new(replies.into_iter().rev().collect())),
            connections: Arc::default(),
        }
    }

    fn shared(&self) -> Canned {
        Canned { requests: self.requests.clone(), replies: self.replies.clone(), connections: self.connections.clone() }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn targets(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.target).collect()
    }

    /// Serves one connection: requests in a loop (keep-alive) until EOF.
    fn serve<S: Read + Write>(&self, stream: S) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let target = parts.next().unwrap_or_default().to_string();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            self.requests.lock().unwrap().push(Recorded {
                method,
                target,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let reply = self.replies.lock().unwrap().pop().unwrap_or_else(|| text(500, "no scripted reply"));
            let mut reply = reply;
            loop {
                match reply {
                    Reply::Late(delay, inner) => {
                        thread::sleep(delay);
                        reply = *inner;
                    }
                    Reply::Silent => {
                        thread::sleep(Duration::from_secs(30));
                        return;
                    }
                    Reply::Raw(bytes) => {
                        let _ = reader.get_mut().write_all(&bytes);
                        return;
                    }
                    Reply::Answer { status, headers, body } => {
                        let mut out = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\n", body.len());
                        for (k, v) in headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        out.push_str(&body);
                        let stream = reader.get_mut();
                        if stream.write_all(out.as_bytes()).is_err() || stream.flush().is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// A canned agent on 127.0.0.1:<random>; returns it and its `host:port`.
fn tcp_agent(replies: Vec<Reply>) -> (Canned, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let canned = Canned::new(replies);
    let shared = canned.shared();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let c = shared.shared();
            thread::spawn(move || c.serve(stream));
        }
    });
    (canned, addr)
}

fn unix_agent(replies: Vec<Reply>) -> (Canned, PathBuf) {
    let dir = temp_dir("unix");
    let path = dir.join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let canned = Canned::new(replies);
    let shared = canned.shared();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let c = shared.shared();
            thread::spawn(move || c.serve(stream));
        }
    });
    (canned, path)
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "consulnative-agent-client-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn client(address: &str) -> AgentClient {
    client_with(address, |_| {})
}

fn client_with(address: &str, f: impl FnOnce(&mut AgentConfig)) -> AgentClient {
    let mut cfg = AgentConfig { address: Some(address.to_string()), ..AgentConfig::default() };
    f(&mut cfg);
    AgentClient::new(cfg).unwrap()
}

const ROOTS: &str =
    r#"{"ActiveRootID":"5e:2b","TrustDomain":"7f42.consul","Roots":[{"ID":"5e:2b","Active":true,"RootCert":"PEM"}]}"#;
const LEAF: &str = r#"{"SerialNumber":"1d","CertPEM":"C","PrivateKeyPEM":"K","Service":"web","ModifyIndex":57}"#;
const SELF: &str = r#"{"Config":{"Datacenter":"dc1","NodeName":"node-a","Version":"1.22.0"}}"#;

fn wait(index: u64, wait: Duration) -> BlockingQuery {
    BlockingQuery { index, wait }
}

// ------------------------------------------------------------------------------------------------------------
// Configuration

#[test]
fn from_env_with_reads_every_variable_and_explicit_fields_override() {
    let env: HashMap<&str, &str> = [
        ("CONSUL_HTTP_ADDR", "consul.local:8501"),
        ("CONSUL_HTTP_SSL", "true"),
        ("CONSUL_CACERT", "/ca.pem"),
        ("CONSUL_CAPATH", "/cas"),
        ("CONSUL_CLIENT_CERT", "/c.pem"),
        ("CONSUL_CLIENT_KEY", "/k.pem"),
        ("CONSUL_TLS_SERVER_NAME", "server.dc1.consul"),
        ("CONSUL_HTTP_SSL_VERIFY", "false"),
        ("CONSUL_HTTP_TOKEN_FILE", "/token"),
        ("CONSUL_HTTP_TOKEN", "env-token"),
        ("CONSUL_HTTP_AUTH", "bob:pw"),
        ("CONSUL_NAMESPACE", "ns1"),
        ("CONSUL_PARTITION", "ap1"),
    ]
    .into_iter()
    .collect();
    let mut cfg = AgentConfig::from_env_with(|k| env.get(k).map(|v| v.to_string()));
    assert_eq!(cfg.address.as_deref(), Some("https://consul.local:8501"));
    assert_eq!(cfg.tls.ca_file, Some("/ca.pem".into()));
    assert_eq!(cfg.tls.ca_path, Some("/cas".into()));
    assert_eq!(cfg.tls.client_cert, Some("/c.pem".into()));
    assert_eq!(cfg.tls.client_key, Some("/k.pem".into()));
    assert_eq!(cfg.tls.server_name.as_deref(), Some("server.dc1.consul"));
    assert!(!cfg.tls.verify);
    assert_eq!(cfg.token_file, Some("/token".into()));
    assert_eq!(cfg.token.as_deref(), Some("env-token"));
    assert_eq!(cfg.http_auth.as_deref(), Some("bob:pw"));
    assert_eq!(cfg.namespace.as_deref(), Some("ns1"));
    assert_eq!(cfg.partition.as_deref(), Some("ap1"));

    cfg.address = Some("unix:///x.sock".into());
    cfg.namespace = None;
    assert_eq!(cfg.address.as_deref(), Some("unix:///x.sock"));
}

#[test]
fn debug_output_never_shows_token_or_password() {
    let cfg = AgentConfig {
        token: Some("tok-0123456789".into()),
        http_auth: Some("alice:hunter22".into()),
        ..AgentConfig::default()
    };
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("tok-0123456789") && !shown.contains("hunter22"), "{shown}");
    let client = AgentClient::new(cfg).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("tok-0123456789") && !shown.contains("hunter22"), "{shown}");
}

#[test]
fn invalid_addresses_and_timeouts_are_rejected_at_creation() {
    for address in ["ftp://x:1", "unix://", "http://user:pw@h:1", "http://"] {
        let err =
            AgentClient::new(AgentConfig { address: Some(address.into()), ..AgentConfig::default() }).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument, "{address}");
        assert!(!err.message.contains("pw@"), "{}", err.message);
    }
    let err = AgentClient::new(AgentConfig { request_timeout: Duration::ZERO, ..AgentConfig::default() }).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
}

#[test]
fn address_reports_scheme_host_and_prefix_without_credentials() {
    assert_eq!(client("127.0.0.1:8500").address(), "http://127.0.0.1:8500");
    assert_eq!(AgentClient::new(AgentConfig::default()).unwrap().address(), "http://127.0.0.1:8500");
    assert_eq!(client("http://h:1/consul/").address(), "http://h:1/consul");
    assert_eq!(client("unix:///run/consul.sock").address(), "unix:///run/consul.sock");
}

// ------------------------------------------------------------------------------------------------------------
// Tokens and headers

#[test]
fn token_and_basic_auth_are_sent_as_headers() {
    let (agent, addr) = tcp_agent(vec![ok_json(SELF, Some(3))]);
    let c = client_with(&addr, |c| {
        c.token = Some("tok-abc".into());
        c.http_auth = Some("alice:pw".into());
    });
    let me = c.agent_self().unwrap();
    assert_eq!(me.config.node_name, "node-a");
    let r = &agent.requests()[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/v1/agent/self");
    assert_eq!(r.headers.get("x-consul-token").map(String::as_str), Some("tok-abc"));
    // base64("alice:pw")
    assert_eq!(r.headers.get("authorization").map(String::as_str), Some("Basic YWxpY2U6cHc="));
}

#[test]
fn no_token_means_no_token_header() {
    let (agent, addr) = tcp_agent(vec![ok_json(SELF, None)]);
    client(&addr).agent_self().unwrap();
    let r = &agent.requests()[0];
    assert!(!r.headers.contains_key("x-consul-token"));
    assert!(!r.headers.contains_key("authorization"));
}

#[test]
fn token_file_wins_over_token_and_is_trimmed() {
    let dir = temp_dir("token");
    let file = dir.join("token");
    std::fs::write(&file, "  file-token\n").unwrap();
    let (agent, addr) = tcp_agent(vec![ok_json(SELF, None)]);
    let c = client_with(&addr, |c| {
        c.token = Some("explicit-token".into());
        c.token_file = Some(file.clone());
    });
    c.agent_self().unwrap();
    assert_eq!(agent.requests()[0].headers.get("x-consul-token").map(String::as_str), Some("file-token"));
}

#[test]
fn unreadable_token_file_is_an_invalid_argument_naming_the_path() {
    let missing = temp_dir("token-missing").join("nope");
    let err = AgentClient::new(AgentConfig {
        token: Some("secret-token".into()),
        token_file: Some(missing.clone()),
        ..AgentConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert!(err.message.contains(&missing.display().to_string()), "{}", err.message);
    assert!(!err.message.contains("secret-token"));
}

#[test]
fn token_with_a_newline_inside_is_rejected_without_showing_it() {
    let err =
        AgentClient::new(AgentConfig { token: Some("abc\ndef-secret".into()), ..AgentConfig::default() }).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert!(!err.message.contains("def-secret"));
}

// ------------------------------------------------------------------------------------------------------------
// Paths and query strings

#[test]
fn blocking_queries_send_wait_always_and_index_only_when_positive() {
    let (agent, addr) = tcp_agent(vec![ok_json(ROOTS, Some(8)), ok_json(ROOTS, Some(9)), ok_json(LEAF, Some(57))]);
    let c = client(&addr);
    let r = c.roots(&wait(0, Duration::from_secs(30))).unwrap();
    assert_eq!(r.index, 8);
    assert_eq!(r.value.trust_domain, "7f42.consul");
    assert_eq!(r.value.roots.len(), 1);
    let r = c.roots(&wait(8, Duration::from_millis(500))).unwrap();
    assert_eq!(r.index, 9);
    let l = c.leaf("web", &wait(56, Duration::from_secs(300))).unwrap();
    assert_eq!((l.index, l.value.serial_number.as_str()), (57, "1d"));
    assert_eq!(
        agent.targets(),
        [
            "/v1/agent/connect/ca/roots?wait=30s",
            "/v1/agent/connect/ca/roots?index=8&wait=500ms",
            "/v1/agent/connect/ca/leaf/web?index=56&wait=5m",
        ]
    );
}

#[test]
fn service_names_and_ids_are_percent_escaped() {
    let (agent, addr) = tcp_agent(vec![ok_json(LEAF, Some(1)), text(200, ""), ok_json("[]", Some(2)), text(200, "")]);
    let c = client(&addr);
    c.leaf("web api/v2?", &wait(0, Duration::from_secs(1))).unwrap();
    c.deregister("web/1 a").unwrap();
    c.health_connect("db#1", None, false).unwrap();
    c.pass_ttl("service:web 1", Some("all good & fine")).unwrap();
    assert_eq!(
        agent.targets(),
        [
            "/v1/agent/connect/ca/leaf/web%20api%2Fv2%3F?wait=1s",
            "/v1/agent/service/deregister/web%2F1%20a",
            "/v1/health/connect/db%231?stale",
            "/v1/agent/check/pass/service%3Aweb%201?note=all%20good%20%26%20fine",
        ]
    );
}

#[test]
fn empty_names_are_invalid_arguments() {
    let c = client("127.0.0.1:1");
    assert_eq!(c.leaf("", &wait(0, Duration::from_secs(1))).unwrap_err().code, Code::InvalidArgument);
    assert_eq!(c.deregister("").unwrap_err().code, Code::InvalidArgument);
    assert_eq!(c.pass_ttl("", None).unwrap_err().code, Code::InvalidArgument);
    assert_eq!(c.health_connect("", None, true).unwrap_err().code, Code::InvalidArgument);
}

#[test]
fn dc_ns_and_partition_are_sent_only_when_configured() {
    let (agent, addr) =
        tcp_agent(vec![ok_json(SELF, None), ok_json(SELF, None), ok_json("[]", None), ok_json("[]", None)]);
    client(&addr).agent_self().unwrap();
    let c = client_with(&addr, |c| {
        c.datacenter = Some("dc2".into());
        c.namespace = Some("team a".into());
        c.partition = Some("ap1".into());
    });
    c.agent_self().unwrap();
    c.health_connect("db", None, true).unwrap();
    c.health_connect("db", Some("dc3"), true).unwrap();
    assert_eq!(
        agent.targets(),
        [
            "/v1/agent/self",
            "/v1/agent/self?dc=dc2&ns=team%20a&partition=ap1",
            "/v1/health/connect/db?passing=1&stale&dc=dc2&ns=team%20a&partition=ap1",
            "/v1/health/connect/db?passing=1&stale&dc=dc3&ns=team%20a&partition=ap1",
        ]
    );
}

#[test]
fn path_prefix_from_the_address_is_kept() {
    let (agent, addr) = tcp_agent(vec![ok_json(ROOTS, Some(1))]);
    let c = client(&format!("http://{addr}/proxy/consul/"));
    c.roots(&wait(0, Duration::from_secs(2))).unwrap();
    assert_eq!(agent.targets(), ["/proxy/consul/v1/agent/connect/ca/roots?wait=2s"]);
}

#[test]
fn health_connect_parses_entries() {
    let body = r#"[{"Node":{"Node":"node-a","Address":"10.0.1.12","Datacenter":"dc1"},
      "Service":{"ID":"db-1","Service":"db","Address":"","Port":5432,"Connect":{"Native":true}},
      "Checks":[{"CheckID":"serfHealth","Status":"passing"}]}]"#;
    let (_agent, addr) = tcp_agent(vec![ok_json(body, Some(4))]);
    let entries = client(&addr).health_connect("db", None, true).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].service.port, 5432);
    assert_eq!(entries[0].node.address, "10.0.1.12");
}

#[test]
fn register_puts_the_registration_as_json() {
    let (agent, addr) = tcp_agent(vec![text(200, "")]);
    let reg = ServiceRegistration {
        id: Some("web-1".into()),
        name: "web".into(),
        port: Some(8443),
        connect: Some(ServiceConnect { native: true }),
        check: Some(ServiceCheck { ttl: Some("10s".into()), ..Default::default() }),
        ..Default::default()
    };
    client(&addr).register(&reg).unwrap();
    let r = &agent.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("PUT", "/v1/agent/service/register"));
    assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/json"));
    let sent: ServiceRegistration = serde_json::from_str(&r.body).unwrap();
    assert_eq!(sent, reg);
}

#[test]
fn deregister_and_pass_ttl_use_put_with_empty_bodies() {
    let (agent, addr) = tcp_agent(vec![text(200, ""), text(200, "")]);
    let c = client(&addr);
    c.deregister("web-1").unwrap();
    c.pass_ttl("service:web-1", None).unwrap();
    let reqs = agent.requests();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(reqs[1].method, "PUT");
    assert_eq!(reqs[1].target, "/v1/agent/check/pass/service%3Aweb-1");
    assert!(reqs[0].body.is_empty() && reqs[1].body.is_empty());
}

#[test]
fn authorize_posts_the_request_and_parses_the_decision() {
    let (agent, addr) = tcp_agent(vec![ok_json(
        r#"{"Authorized":true,"Reason":"Matched L4 intention: default/web => default/db (Precedence: 9, Action: ALLOW)"}"#,
        None,
    )]);
    let req = AuthorizeRequest {
        target: "db".into(),
        client_cert_uri: "spiffe://7f42.consul/ns/default/dc/dc1/svc/web".into(),
        client_cert_serial: "1d".into(),
    };
    let res = client(&addr).authorize(&req, Duration::from_secs(2)).unwrap();
    assert!(res.authorized);
    assert!(res.reason.starts_with("Matched L4 intention"));
    let r = &agent.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/v1/agent/connect/authorize"));
    assert_eq!(serde_json::from_str::<AuthorizeRequest>(&r.body).unwrap(), req);
}

// ------------------------------------------------------------------------------------------------------------
// Response headers and connections

#[test]
fn blocking_queries_refuse_a_missing_zero_or_garbage_consul_index() {
    let with_index =
        |v: &str| Reply::Answer { status: 200, headers: vec![("X-Consul-Index", v.to_string())], body: ROOTS.into() };
    let (_agent, addr) = tcp_agent(vec![
        ok_json(ROOTS, None),
        with_index("abc"),
        with_index("0"),
        with_index("-3"),
        ok_json(ROOTS, Some(u64::MAX)),
    ]);
    let c = client(&addr);
    for expect in ["no X-Consul-Index header", "non-numeric X-Consul-Index \"abc\"", "X-Consul-Index 0", "\"-3\""] {
        let err = c.roots(&wait(0, Duration::from_secs(1))).unwrap_err();
        assert_eq!(err.code, Code::AgentBadResponse, "{err}");
        assert!(err.message.contains(expect), "{expect}: {}", err.message);
        assert!(err.message.contains("GET /v1/agent/connect/ca/roots"), "{}", err.message);
    }
    assert_eq!(c.roots(&wait(0, Duration::from_secs(1))).unwrap().index, u64::MAX);
}

#[test]
fn other_calls_do_not_need_a_consul_index() {
    let (_agent, addr) = tcp_agent(vec![ok_json("[]", None), ok_json(r#"{"Authorized":true}"#, Some(0))]);
    let c = client(&addr);
    assert!(c.health_connect("web", None, true).unwrap().is_empty());
    assert!(c.authorize(&AuthorizeRequest::default(), Duration::from_secs(2)).unwrap().authorized);
}

#[test]
fn an_announced_oversized_answer_is_refused_before_it_is_read() {
    // Announces 100 MiB and sends almost none of it: the refusal must not wait for the rest.
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 9\r\nContent-Length: 104857600\r\n\r\n{";
    let (_agent, addr) = tcp_agent(vec![Reply::Raw(head.to_vec()), Reply::Raw(head.to_vec())]);
    let c = client(&addr);
    let started = Instant::now();
    let err = c.leaf("db", &wait(0, Duration::from_secs(30))).unwrap_err();
    assert_eq!(err.code, Code::AgentBadResponse, "{err}");
    assert_eq!(
        err.message,
        format!(
            "agent at http://{addr} answered GET /v1/agent/connect/ca/leaf/db with a 100 MiB body: a leaf \
             certificate answer may be at most 64 KiB; answer ignored"
        )
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let err = c.roots(&wait(0, Duration::from_secs(30))).unwrap_err();
    assert!(err.message.contains("a CA roots answer may be at most 512 KiB"), "{}", err.message);
}

#[test]
fn a_chunked_answer_stops_at_the_limit() {
    let mut raw =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..8 {
        raw.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend(&chunk);
        raw.extend(b"\r\n");
    }
    raw.extend(b"0\r\n\r\n");
    let (_agent, addr) = tcp_agent(vec![Reply::Raw(raw)]);
    let c = client_with(&addr, |c| c.response_limits.leaf = 32 * 1024);
    let err = c.leaf("db", &wait(0, Duration::from_secs(30))).unwrap_err();
    assert_eq!(err.code, Code::AgentBadResponse, "{err}");
    assert!(err.message.contains("with more than 32 KiB: a leaf certificate answer may be at most 32 KiB"), "{err}");
}

#[test]
fn an_answer_within_the_limit_is_read() {
    let padded = format!("{LEAF}{}", " ".repeat(60 * 1024));
    let (_agent, addr) = tcp_agent(vec![ok_json(&padded, Some(3))]);
    let c = client(&addr);
    assert_eq!(c.leaf("web", &wait(0, Duration::from_secs(5))).unwrap().value.serial_number, "1d");
}

#[test]
fn clones_share_one_keep_alive_connection() {
    let (agent, addr) = tcp_agent(vec![ok_json(SELF, None), ok_json(SELF, None), ok_json(SELF, None)]);
    let c = client(&addr);
    c.agent_self().unwrap();
    let c2 = c.clone();
    c2.agent_self().unwrap();
    thread::spawn(move || c2.agent_self().unwrap()).join().unwrap();
    assert_eq!(agent.requests().len(), 3);
    assert_eq!(agent.connections.load(Ordering::SeqCst), 1);
}

// ------------------------------------------------------------------------------------------------------------
// Error mapping

#[test]
fn forbidden_maps_to_permission_denied_with_the_agent_text() {
    let denial = "Permission denied: token with AccessorID 'a1b2' lacks permission 'service:write' on \"web\"";
    let (_agent, addr) = tcp_agent(vec![text(403, &format!("{denial}\n"))]);
    let c = client_with(&addr, |c| c.token = Some("very-secret-token".into()));
    let err = c.leaf("web", &wait(0, Duration::from_secs(1))).unwrap_err();
    assert_eq!(err.code, Code::AgentPermissionDenied);
    assert_eq!(err.message, format!("agent answered 403 to GET /v1/agent/connect/ca/leaf/web: {denial}"));
    assert!(!err.to_string().contains("very-secret-token"));
}

#[test]
fn server_errors_and_rate_limits_map_to_agent_error_with_status_and_body() {
    let (_agent, addr) = tcp_agent(vec![
        text(500, "rpc error: No cluster leader"),
        text(429, "Rate limit reached, try again later"),
        text(400, ""),
    ]);
    let c = client(&addr);
    let err = c.agent_self().unwrap_err();
    assert_eq!(err.code, Code::AgentError);
    assert_eq!(err.message, "agent answered 500 to GET /v1/agent/self: rpc error: No cluster leader");
    let err = c.leaf("web", &wait(0, Duration::from_secs(1))).unwrap_err();
    assert_eq!(err.code, Code::AgentError);
    assert!(err.message.contains("429") && err.message.contains("Rate limit reached"), "{}", err.message);
    let err = c.register(&ServiceRegistration::default()).unwrap_err();
    assert_eq!(err.message, "agent answered 400 to PUT /v1/agent/service/register: (empty body)");
}

#[test]
fn long_error_bodies_are_capped() {
    let (_agent, addr) = tcp_agent(vec![text(500, &"x".repeat(100_000))]);
    let err = client(&addr).agent_self().unwrap_err();
    assert_eq!(err.code, Code::AgentError);
    assert!(err.message.len() < 1200, "{}", err.message.len());
}

#[test]
fn malformed_json_maps_to_bad_response_naming_the_endpoint() {
    let (_agent, addr) = tcp_agent(vec![ok_json("{\"Roots\": [", Some(3)), ok_json("\"a string\"", None)]);
    let c = client(&addr);
    let err = c.roots(&wait(0, Duration::from_secs(1))).unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.code, Code::AgentBadResponse);
    assert!(err.message.contains("GET /v1/agent/connect/ca/roots"), "{}", err.message);
    assert!(err.message.contains("malformed JSON"), "{}", err.message);
    let err = c.health_connect("db", None, true).unwrap_err();
    assert_eq!(err.code, Code::AgentBadResponse);
}

#[test]
fn connection_refused_maps_to_agent_unreachable() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let err = client(&addr).leaf("web", &wait(0, Duration::from_secs(1))).unwrap_err();
    assert_eq!(err.code, Code::AgentUnreachable);
    assert_eq!(
        err.message,
        format!("agent at http://{addr} unreachable (GET /v1/agent/connect/ca/leaf/web): connection refused")
    );
}

#[test]
fn missing_unix_socket_maps_to_agent_unreachable() {
    let path = temp_dir("nosock").join("none.sock");
    let err = client(&format!("unix://{}", path.display())).agent_self().unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.code, Code::AgentUnreachable, "{err}");
    assert!(err.message.contains("GET /v1/agent/self"), "{}", err.message);
}

#[test]
fn silent_agent_times_out_within_the_request_timeout() {
    let (_agent, addr) = tcp_agent(vec![Reply::Silent]);
    let c = client_with(&addr, |c| c.request_timeout = Duration::from_millis(300));
    let started = Instant::now();
    let err = c.agent_self().unwrap_err();
    let took = started.elapsed();
    eprintln!("{err}");
    assert_eq!(err.code, Code::Timeout, "{err}");
    assert!(err.message.contains("GET /v1/agent/self") && err.message.contains("300ms"), "{}", err.message);
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn authorize_uses_its_own_timeout() {
    let (_agent, addr) = tcp_agent(vec![Reply::Silent]);
    let c = client(&addr); // request_timeout 10 s
    let started = Instant::now();
    let err = c.authorize(&AuthorizeRequest::default(), Duration::from_millis(200)).unwrap_err();
    assert_eq!(err.code, Code::Timeout, "{err}");
    assert!(err.message.contains("POST /v1/agent/connect/authorize"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn the_first_blocking_query_is_bounded_by_the_request_timeout() {
    // Index 0 is answered at once by a real agent: one that accepts and never answers must not hold the watch for
    // the blocking timeout (wait + wait/16 + 5 s).
    let (_agent, addr) = tcp_agent(vec![Reply::Silent]);
    let c = client_with(&addr, |c| c.request_timeout = Duration::from_millis(300));
    let started = Instant::now();
    let err = c.roots(&wait(0, Duration::from_secs(300))).unwrap_err();
    assert_eq!(err.code, Code::Timeout, "{err}");
    assert!(err.message.contains("within 300ms"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[test]
fn blocking_queries_may_outlast_the_request_timeout() {
    let late = Reply::Late(Duration::from_millis(900), Box::new(ok_json(ROOTS, Some(12))));
    let (_agent, addr) = tcp_agent(vec![late]);
    let c = client_with(&addr, |c| c.request_timeout = Duration::from_millis(200));
    let r = c.roots(&wait(11, Duration::from_millis(800))).unwrap();
    assert_eq!(r.index, 12);
}

// ------------------------------------------------------------------------------------------------------------
// Unix socket

#[test]
fn unix_socket_agent_answers() {
    let (agent, path) = unix_agent(vec![ok_json(SELF, Some(5)), ok_json(LEAF, Some(57))]);
    let c = client_with(&format!("unix://{}", path.display()), |c| c.token = Some("tok".into()));
    assert_eq!(c.agent_self().unwrap().config.datacenter, "dc1");
    let leaf = c.leaf("web", &wait(0, Duration::from_secs(5))).unwrap();
    assert_eq!(leaf.index, 57);
    let reqs = agent.requests();
    assert_eq!(reqs[1].target, "/v1/agent/connect/ca/leaf/web?wait=5s");
    assert_eq!(reqs[0].headers.get("x-consul-token").map(String::as_str), Some("tok"));
    assert_eq!(agent.connections.load(Ordering::SeqCst), 1, "keep-alive over the Unix socket");
}

#[test]
fn unix_socket_silent_agent_times_out() {
    let (_agent, path) = unix_agent(vec![Reply::Silent]);
    let c = client_with(&format!("unix://{}", path.display()), |c| c.request_timeout = Duration::from_millis(200));
    let err = c.agent_self().unwrap_err();
    assert_eq!(err.code, Code::Timeout, "{err}");
}

// ------------------------------------------------------------------------------------------------------------
// HTTPS

mod https {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

    struct Pki {
        dir: PathBuf,
        ca_pem: PathBuf,
        server: (CertificateDer<'static>, PrivateKeyDer<'static>),
        ca_der: CertificateDer<'static>,
        client_cert: PathBuf,
        client_key: PathBuf,
    }

    fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap(), key)
    }

    /// A CA, a server certificate for `names` (DNS names; `127.0.0.1` as an IP SAN) and a client certificate.
    fn pki(names: &[&str]) -> Pki {
        let dir = temp_dir("pki");
        let (ca_cert, ca_key) = ca("Test Agent CA");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "agent");
        for n in names {
            params.subject_alt_names.push(match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().unwrap()),
            });
        }
        let key = KeyPair::generate().unwrap();
        let server = params.signed_by(&key, &ca_cert, &ca_key).unwrap();

        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "client");
        let ckey = KeyPair::generate().unwrap();
        let client = params.signed_by(&ckey, &ca_cert, &ca_key).unwrap();

        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
        let client_cert = dir.join("client.pem");
        std::fs::write(&client_cert, client.pem()).unwrap();
        let client_key = dir.join("client-key.pem");
        std::fs::write(&client_key, ckey.serialize_pem()).unwrap();
        Pki {
            dir,
            ca_pem,
            server: (server.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))),
            ca_der: ca_cert.der().clone(),
            client_cert,
            client_key,
        }
    }

    /// A TLS canned agent; returns it, its `host:port`, and the SNI names and client-cert presence it saw.
    fn tls_agent(
        pki: &Pki,
        require_client_cert: bool,
        replies: Vec<Reply>,
    ) -> (Canned, String, Arc<Mutex<Vec<String>>>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            roots.add(pki.ca_der.clone()).unwrap();
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap(),
            )
        } else {
            builder.with_no_client_auth()
        };
        let config = Arc::new(builder.with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key()).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let canned = Canned::new(replies);
        let shared = canned.shared();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let c = shared.shared();
                let config = config.clone();
                let seen = seen2.clone();
                thread::spawn(move || {
                    let mut conn = ServerConnection::new(config).unwrap();
                    let mut stream = stream;
                    while conn.is_handshaking() {
                        if conn.complete_io(&mut stream).is_err() {
                            return;
                        }
                    }
                    let sni = conn.server_name().unwrap_or("<none>").to_string();
                    let client = if conn.peer_certificates().is_some() { "client-cert" } else { "no-client-cert" };
                    seen.lock().unwrap().push(format!("{sni} {client}"));
                    c.serve(StreamOwned::new(conn, stream));
                });
            }
        });
        (canned, addr, seen)
    }

    #[test]
    fn https_with_a_ca_file_works() {
        let pki = pki(&["127.0.0.1", "localhost"]);
        let (agent, addr, _) = tls_agent(&pki, false, vec![ok_json(ROOTS, Some(7)), ok_json(SELF, None)]);
        let c = client_with(&format!("https://{addr}"), |c| c.tls.ca_file = Some(pki.ca_pem.clone()));
        assert_eq!(c.address(), format!("https://{addr}"));
        assert_eq!(c.roots(&wait(0, Duration::from_secs(1))).unwrap().index, 7);
        c.agent_self().unwrap();
        assert_eq!(agent.connections.load(Ordering::SeqCst), 1, "keep-alive over TLS");
    }

    #[test]
    fn https_with_a_ca_directory_works() {
        let pki = pki(&["127.0.0.1"]);
        let cas = pki.dir.join("cas");
        std::fs::create_dir(&cas).unwrap();
        std::fs::copy(&pki.ca_pem, cas.join("agent-ca.pem")).unwrap();
        std::fs::write(cas.join("README"), "not a certificate").unwrap();
        let (_agent, addr, _) = tls_agent(&pki, false, vec![ok_json(SELF, None)]);
        let c = client_with(&format!("https://{addr}"), |c| c.tls.ca_path = Some(cas.clone()));
        c.agent_self().unwrap();
    }

    #[test]
    fn https_with_the_wrong_ca_is_unreachable_with_a_tls_message() {
        let pki_agent = pki(&["127.0.0.1"]);
        let other = pki(&["127.0.0.1"]);
        let (_agent, addr, _) = tls_agent(&pki_agent, false, vec![ok_json(SELF, None)]);
        let c = client_with(&format!("https://{addr}"), |c| c.tls.ca_file = Some(other.ca_pem.clone()));
        let err = c.agent_self().unwrap_err();
        eprintln!("{err}");
        assert_eq!(err.code, Code::AgentUnreachable, "{err}");
        assert!(err.message.contains("TLS"), "{}", err.message);
        assert!(
            err.message.contains(&format!("agent at https://{addr} unreachable (GET /v1/agent/self)")),
            "{}",
            err.message
        );
    }

    #[test]
    fn https_without_verification_accepts_an_unknown_ca() {
        let pki_agent = pki(&["127.0.0.1"]);
        let other = pki(&["127.0.0.1"]);
        let (_agent, addr, _) = tls_agent(&pki_agent, false, vec![ok_json(SELF, None)]);
        let c = client_with(&format!("https://{addr}"), |c| {
            c.tls.ca_file = Some(other.ca_pem.clone());
            c.tls.verify = false;
        });
        c.agent_self().unwrap();
    }

    #[test]
    fn https_server_name_override_is_sent_and_verified() {
        let pki = pki(&["server.dc1.consul"]);
        let (_agent, addr, seen) = tls_agent(&pki, false, vec![ok_json(SELF, None), ok_json(SELF, None)]);
        // Without the override the certificate does not name 127.0.0.1.
        let c = client_with(&format!("https://{addr}"), |c| c.tls.ca_file = Some(pki.ca_pem.clone()));
        assert_eq!(c.agent_self().unwrap_err().code, Code::AgentUnreachable);
        let c = client_with(&format!("https://{addr}"), |c| {
            c.tls.ca_file = Some(pki.ca_pem.clone());
            c.tls.server_name = Some("server.dc1.consul".into());
        });
        c.agent_self().unwrap();
        assert!(seen.lock().unwrap().contains(&"server.dc1.consul no-client-cert".to_string()));
    }

    #[test]
    fn https_client_certificate_is_presented() {
        let pki = pki(&["127.0.0.1"]);
        let (_agent, addr, seen) = tls_agent(&pki, true, vec![ok_json(SELF, None)]);
        let c = client_with(&format!("https://{addr}"), |c| {
            c.tls.ca_file = Some(pki.ca_pem.clone());
            c.tls.client_cert = Some(pki.client_cert.clone());
            c.tls.client_key = Some(pki.client_key.clone());
        });
        c.agent_self().unwrap();
        assert_eq!(seen.lock().unwrap().as_slice(), ["<none> client-cert"]);
    }

    #[test]
    fn bad_tls_files_are_invalid_arguments_naming_the_path() {
        let pki = pki(&["127.0.0.1"]);
        let missing = pki.dir.join("missing.pem");
        let try_new = |f: &dyn Fn(&mut AgentConfig)| {
            let mut cfg = AgentConfig { address: Some("https://127.0.0.1:8501".into()), ..AgentConfig::default() };
            f(&mut cfg);
            AgentClient::new(cfg).unwrap_err()
        };
        let err = try_new(&|c| c.tls.ca_file = Some(missing.clone()));
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(err.message.contains(&missing.display().to_string()), "{}", err.message);
        let err = try_new(&|c| c.tls.ca_file = Some(pki.client_key.clone()));
        assert_eq!(err.code, Code::InvalidArgument, "a key is not a CA: {err}");
        let err = try_new(&|c| c.tls.ca_path = Some(missing.clone()));
        assert_eq!(err.code, Code::InvalidArgument);
        let err = try_new(&|c| {
            c.tls.ca_file = Some(pki.ca_pem.clone());
            c.tls.client_cert = Some(pki.client_cert.clone());
        });
        assert_eq!(err.code, Code::InvalidArgument);
        let err = try_new(&|c| {
            c.tls.ca_file = Some(pki.ca_pem.clone());
            c.tls.client_cert = Some(pki.client_cert.clone());
            c.tls.client_key = Some(pki.ca_pem.clone());
        });
        assert_eq!(err.code, Code::InvalidArgument);
        // A plain http address ignores TLS files entirely.
        let ok = AgentClient::new(AgentConfig {
            address: Some("127.0.0.1:8500".into()),
            tls: crate::agent::config::AgentTls { ca_file: Some(missing), ..Default::default() },
            ..AgentConfig::default()
        });
        assert!(ok.is_ok());
    }
}

#[test]
fn keep_alive_requests_with_bodies_do_not_stall_on_delayed_acks() {
    // With Nagle on, a request whose headers and body leave in two writes waits for the delayed ACK (~40 ms on
    // Linux) of the first: 30 registrations would take over a second. TCP_NODELAY keeps each one well under that.
    let (agent, addr) = tcp_agent(vec![text(200, ""); 31]);
    let c = client(&addr);
    let reg = ServiceRegistration { name: "web".into(), port: Some(1), ..Default::default() };
    c.register(&reg).unwrap();
    let started = Instant::now();
    for _ in 0..30 {
        c.register(&reg).unwrap();
    }
    let took = started.elapsed();
    assert_eq!(agent.connections.load(Ordering::SeqCst), 1);
    assert!(took < Duration::from_millis(600), "30 keep-alive requests took {took:?}");
    eprintln!("30 keep-alive requests took {took:?}");
}
