//! The JSON shapes Consul answers, built from the agent's services and checks:
//! - `api.AgentService` for `/v1/agent/services` and `/v1/agent/service/<id>` [agent/agent_endpoint.go
//!   `buildAgentService`],
//! - `structs.NodeService` and `structs.Node` inside health entries [agent/structs/structs.go],
//! - `structs.ServiceNode` for `/v1/catalog/service/<name>`,
//! - `structs.HealthCheck` for checks.
//!
//! Field order and omissions follow Consul's struct tags (`omitempty` on Kind, SocketPath, TaggedAddresses, …).

use super::VERSION;
use crate::state::model::{CheckKind, Service};
use crate::state::{Check, Shared, State};
use crate::util::format_go_duration;
use serde_json::{json, Map, Value};

fn tagged(s: &Service) -> Option<Value> {
    if s.tagged_addresses.is_empty() {
        return None;
    }
    Some(Value::Object(
        s.tagged_addresses.iter().map(|(k, a)| (k.clone(), json!({"Address": a.address, "Port": a.port}))).collect(),
    ))
}

/// `Proxy` as Consul prints a `ConnectProxyConfig`: the given fields plus the always-present empty blocks.
fn proxy(s: &Service) -> Value {
    let mut p = Map::new();
    if let Some(given) = &s.proxy {
        p.extend(given.clone());
    }
    for (k, v) in [("Mode", json!("")), ("MeshGateway", json!({})), ("Expose", json!({}))] {
        p.entry(k).or_insert(v);
    }
    Value::Object(p)
}

fn insert_opt(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.to_string(), v);
    }
}

/// `api.AgentService`.
pub fn agent_service(sh: &Shared, s: &Service) -> Value {
    let mut m = Map::new();
    if !s.kind.is_empty() {
        m.insert("Kind".into(), json!(s.kind));
    }
    m.insert("ID".into(), json!(s.id));
    m.insert("Service".into(), json!(s.name));
    m.insert("Tags".into(), json!(s.tags));
    m.insert("Meta".into(), json!(s.meta));
    m.insert("Port".into(), json!(s.port));
    m.insert("Address".into(), json!(s.address));
    if !s.socket_path.is_empty() {
        m.insert("SocketPath".into(), json!(s.socket_path));
    }
    insert_opt(&mut m, "TaggedAddresses", tagged(s));
    m.insert("Weights".into(), json!({"Passing": s.weights.0, "Warning": s.weights.1}));
    m.insert("EnableTagOverride".into(), json!(s.enable_tag_override));
    if let Some((region, zone)) = &s.locality {
        m.insert("Locality".into(), json!({"Region": region, "Zone": zone}));
    }
    if s.kind == "connect-proxy" {
        m.insert("Proxy".into(), proxy(s));
    }
    if s.native {
        m.insert("Connect".into(), json!({"Native": true}));
    }
    m.insert("CreateIndex".into(), json!(s.create_index));
    m.insert("ModifyIndex".into(), json!(s.modify_index));
    m.insert("Datacenter".into(), json!(sh.cfg.datacenter));
    Value::Object(m)
}

/// `structs.NodeService` (the `Service` of a health entry).
pub fn node_service(s: &Service) -> Value {
    let mut m = Map::new();
    if !s.kind.is_empty() {
        m.insert("Kind".into(), json!(s.kind));
    }
    m.insert("ID".into(), json!(s.id));
    m.insert("Service".into(), json!(s.name));
    m.insert("Tags".into(), json!(s.tags));
    m.insert("Address".into(), json!(s.address));
    insert_opt(&mut m, "TaggedAddresses", tagged(s));
    m.insert("Meta".into(), json!(s.meta));
    m.insert("Port".into(), json!(s.port));
    if !s.socket_path.is_empty() {
        m.insert("SocketPath".into(), json!(s.socket_path));
    }
    m.insert("Weights".into(), json!({"Passing": s.weights.0, "Warning": s.weights.1}));
    m.insert("EnableTagOverride".into(), json!(s.enable_tag_override));
    m.insert("Proxy".into(), proxy(s));
    m.insert("Connect".into(), if s.native { json!({"Native": true}) } else { json!({}) });
    if let Some((region, zone)) = &s.locality {
        m.insert("Locality".into(), json!({"Region": region, "Zone": zone}));
    }
    m.insert("CreateIndex".into(), json!(s.create_index));
    m.insert("ModifyIndex".into(), json!(s.modify_index));
    Value::Object(m)
}

/// The node's `TaggedAddresses` (a dev agent's are all its address).
fn node_tagged(addr: &str) -> Value {
    json!({"lan": addr, "lan_ipv4": addr, "wan": addr, "wan_ipv4": addr})
}

/// The node's `Meta`, as `consul agent -dev` sets it.
pub fn node_meta() -> Value {
    json!({"consul-network-segment": "", "consul-version": VERSION.split('+').next().unwrap_or(VERSION)})
}

/// `structs.Node` (health entries, `/v1/catalog/nodes`).
pub fn node(sh: &Shared) -> Value {
    json!({
        "ID": sh.node_id,
        "Node": sh.cfg.node_name,
        "Address": "127.0.0.1",
        "Datacenter": sh.cfg.datacenter,
        "TaggedAddresses": node_tagged("127.0.0.1"),
        "Meta": node_meta(),
        "CreateIndex": 10,
        "ModifyIndex": 10,
    })
}

/// `structs.ServiceNode` (`/v1/catalog/service/<name>`).
pub fn catalog_service(sh: &Shared, s: &Service) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), json!(sh.node_id));
    m.insert("Node".into(), json!(sh.cfg.node_name));
    m.insert("Address".into(), json!("127.0.0.1"));
    m.insert("Datacenter".into(), json!(sh.cfg.datacenter));
    m.insert("TaggedAddresses".into(), node_tagged("127.0.0.1"));
    m.insert("NodeMeta".into(), node_meta());
    m.insert("ServiceKind".into(), json!(s.kind));
    m.insert("ServiceID".into(), json!(s.id));
    m.insert("ServiceName".into(), json!(s.name));
    m.insert("ServiceTags".into(), json!(s.tags));
    m.insert("ServiceAddress".into(), json!(s.address));
    insert_opt(&mut m, "ServiceTaggedAddresses", tagged(s));
    m.insert("ServiceWeights".into(), json!({"Passing": s.weights.0, "Warning": s.weights.1}));
    m.insert("ServiceMeta".into(), json!(s.meta));
    m.insert("ServicePort".into(), json!(s.port));
    if !s.socket_path.is_empty() {
        m.insert("ServiceSocketPath".into(), json!(s.socket_path));
    }
    m.insert("ServiceEnableTagOverride".into(), json!(s.enable_tag_override));
    m.insert("ServiceProxy".into(), proxy(s));
    m.insert("ServiceConnect".into(), if s.native { json!({"Native": true}) } else { json!({}) });
    if let Some((region, zone)) = &s.locality {
        m.insert("ServiceLocality".into(), json!({"Region": region, "Zone": zone}));
    }
    m.insert("CreateIndex".into(), json!(s.create_index));
    m.insert("ModifyIndex".into(), json!(s.modify_index));
    Value::Object(m)
}

/// `structs.HealthCheck`.
pub fn check(sh: &Shared, st: &State, c: &Check) -> Value {
    let tags = st.services.get(&c.service_id).map(|s| s.tags.clone()).unwrap_or_default();
    let (interval, timeout, definition) = match &c.kind {
        CheckKind::Tcp { addr, interval, timeout } => (
            format_go_duration(*interval),
            format_go_duration(*timeout),
            json!({"TCP": addr, "Interval": format_go_duration(*interval), "Timeout": format_go_duration(*timeout)}),
        ),
        CheckKind::Ttl(ttl) => (String::new(), String::new(), json!({"TTL": format_go_duration(*ttl)})),
        CheckKind::Maintenance => (String::new(), String::new(), json!({})),
    };
    json!({
        "Node": sh.cfg.node_name,
        "CheckID": c.id,
        "Name": c.name,
        "Status": c.status,
        "Notes": c.notes,
        "Output": c.output,
        "ServiceID": c.service_id,
        "ServiceName": c.service_name,
        "ServiceTags": tags,
        "Type": c.kind.type_name(),
        "Interval": interval,
        "Timeout": timeout,
        "ExposedPort": 0,
        "Definition": definition,
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

/// The node's `serfHealth` check, always passing on a dev agent.
pub fn serf_check(sh: &Shared) -> Value {
    json!({
        "Node": sh.cfg.node_name,
        "CheckID": "serfHealth",
        "Name": "Serf Health Status",
        "Status": "passing",
        "Notes": "",
        "Output": "Agent alive and reachable",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": 10,
        "ModifyIndex": 10,
    })
}

/// A health entry `{Node, Service, Checks}`: node checks (serfHealth first), then the service's checks.
pub fn health_entry(sh: &Shared, st: &State, s: &Service) -> Value {
    let mut checks = vec![serf_check(sh)];
    checks.extend(st.checks.values().filter(|c| c.service_id.is_empty()).map(|c| check(sh, st, c)));
    checks.extend(st.checks.values().filter(|c| c.service_id == s.id).map(|c| check(sh, st, c)));
    json!({"Node": node(sh), "Service": node_service(s), "Checks": checks})
}
