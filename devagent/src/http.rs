//! The HTTP side: accept loop, routing, Consul's status codes and error texts, blocking queries, faults.

use super::acl;
use super::state::{intention_string, CheckEntry, ServiceEntry, Shared, State};
use super::util::{self, parse_go_duration, parse_query, percent_decode};
use consulnative_core::api::wire::{is_non_service_identity, ServiceId};
use super::{Fault, FaultEndpoint, FaultKind};
use consulnative_core::api::wire::{
    AgentSelf, AgentSelfConfig, AgentService, AuthorizeRequest, AuthorizeResponse, HealthCheck, ProxyConfig,
    ServiceConnect, ServiceRegistration,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

type Resp = Response<Full<Bytes>>;

const MAX_BODY: usize = 4 << 20;
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);
pub const VERSION: &str = "1.22.0-dev+consulnative";

/// Accept connections until `stop` flips (or its sender goes away).
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
            acc = listener.accept() => match acc {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(sh.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
                // EMFILE and friends: back off a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

struct Req {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    fn q(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn has(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }
    /// Boolean query flag the way Consul reads `?passing`: present and not `false`/`0`.
    fn flag(&self, key: &str) -> bool {
        match self.q(key) {
            None => false,
            Some(v) => !(v.eq_ignore_ascii_case("false") || v == "0"),
        }
    }
    fn token(&self) -> Option<String> {
        acl::request_token(&self.headers, &self.query)
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(text(413, "Request body too large or unreadable")),
    };
    let r = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parse_query(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    let mut resp = route(&shared, &r).await;
    if r.path.starts_with("/v1/") {
        let h = resp.headers_mut();
        h.insert("X-Consul-Knownleader", "true".parse().expect("static header"));
        h.insert("X-Consul-Lastcontact", "0".parse().expect("static header"));
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn text(code: u16, msg: impl Into<String>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(msg.into())));
    *r.status_mut() = status(code);
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8".parse().expect("static header"));
    r
}

fn json<T: serde::Serialize>(value: &T, index: Option<u64>) -> Resp {
    let body = match serde_json::to_vec(value) {
        Ok(b) => b,
        Err(e) => return text(500, format!("failed to encode response: {e}")),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static header"));
    if let Some(i) = index {
        r.headers_mut().insert("X-Consul-Index", i.max(1).into());
    }
    r
}

fn with_cache(mut r: Resp, hit: bool, age: Duration) -> Resp {
    r.headers_mut().insert("X-Cache", if hit { "HIT" } else { "MISS" }.parse().expect("static header"));
    if hit {
        r.headers_mut().insert("Age", age.as_secs().into());
    }
    r
}

fn empty_ok() -> Resp {
    Response::new(Full::new(Bytes::new()))
}

fn not_found() -> Resp {
    text(404, "404 page not found\n")
}

fn method_not_allowed(method: &Method, allowed: &[&str]) -> Resp {
    let mut r = text(405, format!("method {method} not allowed"));
    if let Ok(v) = allowed.join(",").parse() {
        r.headers_mut().insert(hyper::header::ALLOW, v);
    }
    r
}

fn decode_failed(e: impl std::fmt::Display) -> Resp {
    text(400, format!("Request decode failed: {e}"))
}

// ---------------------------------------------------------------------------------------------------------------
// Routing

async fn route(sh: &Arc<Shared>, r: &Req) -> Resp {
    let p = r.path.as_str();
    if let Some(rest) = p.strip_prefix("/_devagent/") {
        return private(sh, r, rest).await;
    }
    if !p.starts_with("/v1/") {
        return not_found();
    }
    if let Some(resp) = enterprise_params(r) {
        return resp;
    }
    let allow = |methods: &[&str]| -> Option<Resp> {
        if methods.contains(&r.method.as_str()) {
            None
        } else {
            Some(method_not_allowed(&r.method, methods))
        }
    };
    macro_rules! only {
        ($($m:literal),+) => {
            if let Some(resp) = allow(&[$($m),+]) { return resp; }
        };
    }
    match p {
        "/v1/agent/connect/ca/roots" | "/v1/connect/ca/roots" => {
            only!("GET");
            return roots(sh, r).await;
        }
        "/v1/agent/connect/authorize" => {
            only!("POST");
            return authorize(sh, r).await;
        }
        "/v1/agent/service/register" => {
            only!("PUT");
            return register(sh, r);
        }
        "/v1/agent/self" => {
            only!("GET");
            return agent_self(sh);
        }
        "/v1/connect/intentions/exact" => {
            only!("GET", "PUT", "DELETE");
            return intention_exact(sh, r);
        }
        "/v1/connect/intentions/check" => {
            only!("GET");
            return intention_check(sh, r);
        }
        "/v1/connect/ca/configuration" => {
            only!("GET", "PUT");
            return ca_configuration(sh, r);
        }
        _ => {}
    }
    let seg = |prefix: &str| p.strip_prefix(prefix).map(|s| percent_decode(s, false));
    if let Some(svc) = seg("/v1/agent/connect/ca/leaf/") {
        only!("GET");
        return leaf(sh, r, &svc).await;
    }
    if let Some(id) = seg("/v1/agent/service/deregister/") {
        only!("PUT");
        return deregister(sh, r, &id);
    }
    for (prefix, st) in [("/v1/agent/check/pass/", "passing"), ("/v1/agent/check/warn/", "warning"), ("/v1/agent/check/fail/", "critical")] {
        if let Some(id) = seg(prefix) {
            only!("PUT");
            return check_update(sh, r, &id, st);
        }
    }
    if let Some(name) = seg("/v1/health/connect/") {
        only!("GET");
        return health(sh, r, &name, true).await;
    }
    if let Some(name) = seg("/v1/health/service/") {
        only!("GET");
        return health(sh, r, &name, false).await;
    }
    not_found()
}

/// Consul CE answers 400 to any namespace or partition, in the query or in a header [agent/http_ce.go].
fn enterprise_params(r: &Req) -> Option<Resp> {
    let header = |name: &str| r.headers.get(name).map(|v| !v.is_empty()).unwrap_or(false);
    if header("x-consul-namespace") {
        return Some(text(400, "Invalid header: \"X-Consul-Namespace\" - Namespaces are a Consul Enterprise feature"));
    }
    if r.q("ns").map(|v| !v.is_empty()).unwrap_or(false) {
        return Some(text(400, "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature"));
    }
    if header("x-consul-partition") {
        return Some(text(400, "Invalid header: \"X-Consul-Partition\" - Partitions are a Consul Enterprise feature"));
    }
    if r.q("partition").map(|v| !v.is_empty()).unwrap_or(false) {
        return Some(text(400, "Invalid query parameter: \"partition\" - Partitions are a Consul Enterprise feature"));
    }
    None
}

fn acl_check(sh: &Shared, r: &Req, permission: &str, resource: Option<&str>) -> Option<Resp> {
    let token = r.token();
    acl::check(sh.cfg.acl_token.as_deref(), token.as_deref(), permission, resource).err().map(|m| text(403, m))
}

fn check_dc(sh: &Shared, r: &Req) -> Option<Resp> {
    match r.q("dc") {
        Some(dc) if !dc.is_empty() && dc != sh.cfg.datacenter => Some(text(500, "No path to datacenter")),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Faults and blocking

/// Apply injected faults: delays first, then a replacement answer if any. Returns (answer, backwards index).
async fn apply_faults(sh: &Shared, ep: FaultEndpoint) -> (Option<Resp>, bool) {
    let kinds = sh.lock().faults_for(ep);
    for k in &kinds {
        if let FaultKind::Delay(d) = k {
            tokio::time::sleep(*d).await;
        }
    }
    for k in &kinds {
        match k {
            FaultKind::Status(code, body) => return (Some(text(*code, body.clone())), false),
            FaultKind::MalformedJson => {
                let mut r = Response::new(Full::new(Bytes::from_static(b"{\"Roots\":[{\"ID\":\"5e:2b")));
                r.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static header"));
                r.headers_mut().insert("X-Consul-Index", 1u64.into());
                return (Some(r), false);
            }
            _ => {}
        }
    }
    (None, kinds.contains(&FaultKind::BackwardsIndex))
}

/// `index` and `wait` (with jitter already added). `Err` is Consul's 400.
#[allow(clippy::result_large_err)] // the Err is a ready answer; not worth boxing
fn blocking_params(r: &Req) -> Result<(u64, Duration), Resp> {
    let index = match r.q("index") {
        None | Some("") => 0,
        Some(v) => v.parse::<u64>().map_err(|_| text(400, "Invalid index"))?,
    };
    let wait = match r.q("wait") {
        None | Some("") => DEFAULT_WAIT,
        Some(v) => parse_go_duration(v).ok_or_else(|| text(400, "Invalid wait time"))?,
    };
    let wait = wait.min(MAX_WAIT);
    let jitter = wait.div_f64(16.0).mul_f64(fastrand::f64());
    Ok((index, wait + jitter))
}

/// Wait until `current(state)` exceeds `min_index` or `wait` passes; no polling: woken by `Shared::notify`.
async fn block(sh: &Shared, min_index: u64, wait: Duration, current: impl Fn(&State) -> u64) -> u64 {
    let mut rx = sh.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let cur = current(&sh.lock());
        if min_index == 0 || cur > min_index {
            return cur;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return cur; },
            _ = tokio::time::sleep_until(deadline) => return cur,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Connect CA

async fn roots(sh: &Arc<Shared>, r: &Req) -> Resp {
    if let Some(resp) = check_dc(sh, r) {
        return resp;
    }
    let (fault, backwards) = apply_faults(sh, FaultEndpoint::Roots).await;
    if let Some(resp) = fault {
        return resp;
    }
    let (min, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let idx = if backwards && min > 0 { 1 } else { block(sh, min, wait, |st| st.ca.roots_index()).await };
    let mut st = sh.lock();
    let body = st.ca.roots_json();
    let real = st.ca.roots_index();
    let (hit, age) = match st.roots_cached {
        Some((i, t)) if i == real => (true, t.elapsed()),
        _ => {
            st.roots_cached = Some((real, std::time::Instant::now()));
            (false, Duration::ZERO)
        }
    };
    drop(st);
    let idx = if idx == 1 { 1 } else { real };
    with_cache(json(&body, Some(idx)), hit, age)
}

async fn leaf(sh: &Arc<Shared>, r: &Req, service: &str) -> Resp {
    if service.is_empty() {
        return text(400, "Missing service name");
    }
    if let Some(resp) = check_dc(sh, r) {
        return resp;
    }
    if let Some(resp) = acl_check(sh, r, "service:write", Some(service)) {
        return resp;
    }
    let (fault, backwards) = apply_faults(sh, FaultEndpoint::Leaf).await;
    if let Some(resp) = fault {
        return resp;
    }
    let (min, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let first = match sh.leaf(service) {
        Ok(v) => v,
        Err(e) => return text(e.http_status(), e.message()),
    };
    if backwards && min > 0 {
        return with_cache(json(&first.0, Some(1)), first.1, first.2);
    }
    if min == 0 || first.0.modify_index > min {
        let idx = first.0.modify_index;
        return with_cache(json(&first.0, Some(idx)), first.1, first.2);
    }
    let svc = service.to_string();
    block(sh, min, wait, |st| st.leaves.get(&svc).map(|l| l.cert.modify_index).unwrap_or(0)).await;
    match sh.leaf(service) {
        Ok((cert, hit, age)) => {
            let idx = cert.modify_index;
            with_cache(json(&cert, Some(idx)), hit, age)
        }
        Err(e) => text(500, e.message().to_string()),
    }
}

fn ca_configuration(sh: &Arc<Shared>, r: &Req) -> Resp {
    if r.method == Method::GET {
        if let Some(resp) = acl_check(sh, r, "operator:read", None) {
            return resp;
        }
        let st = sh.lock();
        let idx = st.ca.roots_index();
        let body = serde_json::json!({
            "Provider": "consul",
            "Config": {
                "LeafCertTTL": util::format_go_duration(sh.cfg.leaf_ttl),
                "RootCertTTL": "87600h",
                "PrivateKeyType": "ec",
                "PrivateKeyBits": 256,
            },
            "State": null,
            "ForceWithoutCrossSigning": false,
            "ClusterID": st.ca.cluster_id,
            "CreateIndex": st.ca.roots.first().map(|r| r.json.create_index).unwrap_or(1),
            "ModifyIndex": idx,
        });
        return json(&body, Some(idx));
    }
    if let Some(resp) = acl_check(sh, r, "operator:write", None) {
        return resp;
    }
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&r.body) {
        return decode_failed(e);
    }
    match sh.rotate_ca() {
        Ok(()) => empty_ok(),
        Err(e) => text(500, e.message().to_string()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Authorize and intentions

async fn authorize(sh: &Arc<Shared>, r: &Req) -> Resp {
    let (fault, _) = apply_faults(sh, FaultEndpoint::Authorize).await;
    if let Some(resp) = fault {
        return resp;
    }
    let req: AuthorizeRequest = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => return decode_failed(e),
    };
    if req.target.is_empty() {
        return text(400, "Target service must be specified");
    }
    let (partition, source_ns, source) = match ServiceId::parse(&req.client_cert_uri) {
        Ok(id) => (id.partition, id.namespace, id.service),
        Err(_) if is_non_service_identity(&req.client_cert_uri) => {
            return text(400, "ClientCertURI not a valid Service identifier")
        }
        Err(_) => return text(400, "ClientCertURI not a valid Connect identifier"),
    };
    if let Some(resp) = acl_check(sh, r, "service:write", Some(&req.target)) {
        return resp;
    }
    if partition != "default" {
        return text(400, format!("Mismatched partitions: {partition:?} != \"default\""));
    }
    let mut st = sh.lock();
    let (authorized, reason) = match st.match_intention(&source_ns, &source, &req.target) {
        Some(ixn) => (ixn.action == "allow", format!("Matched L4 intention: {}", intention_string(ixn))),
        None => (sh.cfg.default_allow, "Default behavior configured by ACLs".to_string()),
    };
    let idx = st.intentions_index;
    let (hit, age) = match st.authz_cached.get(&req.target) {
        Some((i, t)) if *i == idx => (true, t.elapsed()),
        _ => {
            st.authz_cached.insert(req.target.clone(), (idx, std::time::Instant::now()));
            (false, Duration::ZERO)
        }
    };
    drop(st);
    with_cache(json(&AuthorizeResponse { authorized, reason }, Some(idx)), hit, age)
}

#[allow(clippy::result_large_err)] // the Err is a ready answer; not worth boxing
fn source_destination(r: &Req) -> Result<(String, String), Resp> {
    let source = r.q("source").filter(|s| !s.is_empty()).ok_or_else(|| text(400, "required query parameter 'source' not set"))?;
    let dest = r
        .q("destination")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| text(400, "required query parameter 'destination' not set"))?;
    Ok((source.to_string(), dest.to_string()))
}

fn intention_exact(sh: &Arc<Shared>, r: &Req) -> Resp {
    let (source, dest) = match source_destination(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let perm = if r.method == Method::GET { "intentions:read" } else { "intentions:write" };
    if let Some(resp) = acl_check(sh, r, perm, Some(&dest)) {
        return resp;
    }
    match r.method {
        Method::GET => {
            let st = sh.lock();
            match st.intentions.get(&(source, dest)) {
                Some(ixn) => json(ixn, Some(st.intentions_index)),
                None => text(404, "Intention not found"),
            }
        }
        Method::DELETE => {
            sh.delete_intention(&source, &dest);
            json(&true, None)
        }
        _ => {
            let v: serde_json::Value = match serde_json::from_slice(&r.body) {
                Ok(v) => v,
                Err(e) => return decode_failed(e),
            };
            // Go's JSON decoding matches field names case-insensitively.
            let action = v
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("action")))
                .and_then(|(_, v)| v.as_str())
                .unwrap_or("");
            let allow = match action {
                "allow" => true,
                "deny" => false,
                _ => return text(400, "Invalid Intention: Action must be set to 'allow' or 'deny'"),
            };
            sh.set_intention(&source, &dest, allow);
            json(&true, None)
        }
    }
}

fn intention_check(sh: &Arc<Shared>, r: &Req) -> Resp {
    let (source, dest) = match source_destination(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if let Some(resp) = acl_check(sh, r, "intentions:read", Some(&dest)) {
        return resp;
    }
    let st = sh.lock();
    let allowed = st.match_intention("default", &source, &dest).map(|i| i.action == "allow").unwrap_or(sh.cfg.default_allow);
    json(&serde_json::json!({ "Allowed": allowed }), Some(st.intentions_index))
}

// ---------------------------------------------------------------------------------------------------------------
// Catalog

fn register(sh: &Arc<Shared>, r: &Req) -> Resp {
    let reg: ServiceRegistration = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => return decode_failed(e),
    };
    // Kind and Proxy are not in ServiceRegistration; read them from the raw JSON.
    let raw: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    if reg.name.is_empty() {
        return text(400, "Missing service name");
    }
    if let Some(resp) = acl_check(sh, r, "service:write", Some(&reg.name)) {
        return resp;
    }
    let kind = raw.get("Kind").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let proxy = raw.get("Proxy").filter(|v| v.is_object()).map(|p| ProxyConfig {
        destination_service_name: p.get("DestinationServiceName").and_then(|v| v.as_str()).unwrap_or("").to_string(),
        destination_service_id: p.get("DestinationServiceID").and_then(|v| v.as_str()).unwrap_or("").to_string(),
    });
    let native = reg.connect.as_ref().map(|c| c.native).unwrap_or(false);
    let has_port = reg.port.map(|p| p != 0).unwrap_or(false);
    let has_socket = reg.socket_path.as_ref().map(|s| !s.is_empty()).unwrap_or(false);
    if native && !has_port && !has_socket {
        return text(400, "Invalid Service: Port or SocketPath must be set for a Connect native service.");
    }
    if kind == "connect-proxy" {
        if proxy.as_ref().map(|p| p.destination_service_name.is_empty()).unwrap_or(true) {
            return text(400, "Invalid Service: Proxy.DestinationServiceName must be set for a Connect proxy");
        }
        if !has_port && !has_socket {
            return text(400, "Invalid Service: Port or SocketPath must be set for a connect-proxy");
        }
    }
    let id = reg.id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| reg.name.clone());
    let svc = AgentService {
        kind: kind.clone(),
        id: id.clone(),
        service: reg.name.clone(),
        tags: reg.tags.clone().unwrap_or_default(),
        address: reg.address.clone().unwrap_or_default(),
        port: reg.port.unwrap_or(0),
        socket_path: reg.socket_path.clone().filter(|s| !s.is_empty()),
        connect: if native {
            Some(ServiceConnect { native: true })
        } else if kind == "connect-proxy" {
            Some(ServiceConnect::default())
        } else {
            None
        },
        proxy: if kind == "connect-proxy" { proxy } else { None },
        meta: reg.meta.clone(),
    };
    let mut defs = Vec::new();
    defs.extend(reg.check.clone());
    defs.extend(reg.checks.clone().unwrap_or_default());
    let many = defs.len() > 1;
    let mut checks = Vec::new();
    let mut tcp = Vec::new();
    for (i, c) in defs.iter().enumerate() {
        let check_id = c.check_id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| {
            if many {
                format!("service:{id}:{}", i + 1)
            } else {
                format!("service:{id}")
            }
        });
        let ttl = match c.ttl.as_deref().filter(|s| !s.is_empty()) {
            Some(t) => match parse_go_duration(t) {
                Some(d) if !d.is_zero() => Some(d),
                _ => return text(400, format!("Invalid check: TTL {t:?} is not a valid duration")),
            },
            None => None,
        };
        if let Some(addr) = c.tcp.as_deref().filter(|s| !s.is_empty()) {
            let interval = match c.interval.as_deref().filter(|s| !s.is_empty()) {
                None => Duration::from_secs(10),
                Some(s) => match parse_go_duration(s) {
                    Some(d) if !d.is_zero() => d.max(Duration::from_millis(100)),
                    _ => return text(400, format!("Invalid check: Interval {s:?} is not a valid duration")),
                },
            };
            let timeout = c.timeout.as_deref().and_then(parse_go_duration).filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(10));
            tcp.push((check_id.clone(), addr.to_string(), interval, timeout));
        } else if ttl.is_none() {
            return text(400, "Invalid check: the dev agent supports only TTL and TCP checks");
        }
        let status = c.status.clone().filter(|s| matches!(s.as_str(), "passing" | "warning" | "critical")).unwrap_or_else(|| "critical".to_string());
        checks.push(CheckEntry {
            hc: HealthCheck {
                node: sh.cfg.node_name.clone(),
                check_id,
                name: c.name.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| format!("Service '{}' check", reg.name)),
                status,
                output: String::new(),
                service_id: id.clone(),
                service_name: reg.name.clone(),
            },
            ttl,
            generation: 0,
        });
    }
    sh.register(ServiceEntry { svc, checks, tasks: Vec::new() }, tcp);
    empty_ok()
}

fn deregister(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    let name = sh.lock().services.get(id).map(|s| s.svc.service.clone());
    if let Some(resp) = acl_check(sh, r, "service:write", Some(name.as_deref().unwrap_or(id))) {
        return resp;
    }
    if name.is_none() {
        return text(404, format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."));
    }
    let removed = {
        let mut st = sh.lock();
        let removed = st.services.remove(id);
        let idx = st.next_index();
        st.catalog_index = idx;
        removed
    };
    drop(removed); // aborts its check tasks
    sh.notify();
    empty_ok()
}

fn check_update(sh: &Arc<Shared>, r: &Req, check_id: &str, status: &str) -> Resp {
    let owner = sh.check_owner(check_id);
    let resp = match &owner {
        Some((_, name)) => acl_check(sh, r, "service:write", Some(name)),
        None => acl_check(sh, r, "node:write", Some(&sh.cfg.node_name)),
    };
    if let Some(resp) = resp {
        return resp;
    }
    let note = r.q("note").unwrap_or("");
    match sh.update_ttl_check(check_id, status, note) {
        Ok(()) => empty_ok(),
        Err(msg) => text(404, msg),
    }
}

async fn health(sh: &Arc<Shared>, r: &Req, name: &str, connect: bool) -> Resp {
    if let Some(resp) = check_dc(sh, r) {
        return resp;
    }
    let (min, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let idx = block(sh, min, wait, |st| st.catalog_index).await;
    let passing = r.flag("passing");
    let st = sh.lock();
    let entries = sh.health(&st, name, connect, passing);
    let _ = r.has("stale");
    json(&entries, Some(idx))
}

fn agent_self(sh: &Shared) -> Resp {
    let body = AgentSelf {
        config: AgentSelfConfig {
            datacenter: sh.cfg.datacenter.clone(),
            node_name: sh.cfg.node_name.clone(),
            node_id: sh.node_id.clone(),
            version: VERSION.to_string(),
        },
    };
    json(&body, None)
}

// ---------------------------------------------------------------------------------------------------------------
// Test hooks (not Consul API)

async fn private(sh: &Arc<Shared>, r: &Req, rest: &str) -> Resp {
    match rest {
        "fault" => match r.method {
            Method::DELETE => {
                sh.lock().faults.clear();
                sh.notify();
                json(&true, None)
            }
            Method::PUT | Method::POST => {
                let endpoint = match r.q("endpoint").unwrap_or("all") {
                    "all" | "" => FaultEndpoint::All,
                    "roots" => FaultEndpoint::Roots,
                    "leaf" => FaultEndpoint::Leaf,
                    "authorize" => FaultEndpoint::Authorize,
                    other => return text(400, format!("unknown fault endpoint {other:?} (all|roots|leaf|authorize)")),
                };
                let mut kinds = Vec::new();
                if let Some(s) = r.q("status") {
                    match s.parse::<u16>() {
                        Ok(code) if (100..=599).contains(&code) => {
                            kinds.push(FaultKind::Status(code, r.q("body").unwrap_or("injected fault").to_string()))
                        }
                        _ => return text(400, format!("invalid status {s:?}")),
                    }
                }
                if r.flag("malformed") {
                    kinds.push(FaultKind::MalformedJson);
                }
                if let Some(d) = r.q("delay") {
                    match parse_go_duration(d) {
                        Some(d) => kinds.push(FaultKind::Delay(d)),
                        None => return text(400, format!("invalid delay {d:?}")),
                    }
                }
                if r.flag("reset_index") {
                    kinds.push(FaultKind::BackwardsIndex);
                }
                if kinds.is_empty() {
                    return text(400, "no fault given: status=, malformed=1, delay= or reset_index=1");
                }
                let mut st = sh.lock();
                for kind in kinds {
                    st.faults.push(Fault { endpoint, kind });
                }
                drop(st);
                sh.notify();
                json(&true, None)
            }
            _ => method_not_allowed(&r.method, &["PUT", "DELETE"]),
        },
        "rotate-ca" => {
            if r.method != Method::PUT && r.method != Method::POST {
                return method_not_allowed(&r.method, &["PUT"]);
            }
            match sh.rotate_ca() {
                Ok(()) => json(&true, None),
                Err(e) => text(500, e.message().to_string()),
            }
        }
        _ => {
            if let Some(svc) = rest.strip_prefix("issue-leaf/") {
                // GET /_devagent/issue-leaf/<svc>?not_before=<unix>&not_after=<unix>
                let svc = percent_decode(svc, false);
                let now = std::time::SystemTime::now();
                let at = |key: &str, default: std::time::SystemTime| {
                    r.q(key).and_then(|v| v.parse::<i64>().ok()).map_or(Some(default), util::from_unix_secs)
                };
                let nb = at("not_before", now - Duration::from_secs(60));
                let na = at("not_after", now + Duration::from_secs(3600));
                let (Some(nb), Some(na)) = (nb, na) else { return text(400, "leaf time out of range") };
                return match sh.issue_adhoc_leaf(&svc, nb, na) {
                    Ok(cert) => json(&cert, None),
                    Err(e) => text(400, e.message().to_string()),
                };
            }
            not_found()
        }
    }
}
