//! The agent's own endpoints: its services and checks, TTL updates, maintenance mode, deregistration, and what
//! it says about itself (`self`, `members`, `version`) and the cluster (`/v1/status/*`).

use super::blocking::blocking_params;
use super::params::{list_query, unsupported};
use super::respond::{empty_ok, json, text, Resp};
use super::route::acl_check;
use super::shapes;
use super::{Req, VERSION};
use crate::acl;
use crate::decode::{decode, schemas};
use crate::state::Shared;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Whether the request's token may read `service` (with the one-token model: the token, or no ACLs).
fn may_read(sh: &Shared, r: &Req) -> bool {
    acl::check(sh.cfg.acl_token.as_deref(), r.token().as_deref(), "service:read", None).is_ok()
}

/// `GET /v1/agent/services`: a map by service ID, `filter` over `api.AgentService`; without read permission the
/// map is empty (Consul filters by ACL rather than refusing).
pub(super) fn services(sh: &Arc<Shared>, r: &Req) -> Resp {
    let st = sh.lock();
    let template = shapes::agent_service(sh, &Default::default());
    let q = match list_query(sh, r, &template) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let mut out = Map::new();
    if may_read(sh, r) {
        for s in st.services.values() {
            let v = shapes::agent_service(sh, s);
            if q.passes(&v) {
                out.insert(s.id.clone(), v);
            }
        }
    }
    json(&out, None)
}

/// `GET /v1/agent/service/<id>`: one `api.AgentService` with its `ContentHash`; `?hash=` blocks until the content
/// changes (Consul's hash-based blocking for this endpoint).
pub(super) async fn service(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    let (_, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let render = |sh: &Shared| -> Option<(String, Value)> {
        let st = sh.lock();
        let s = st.services.get(id)?;
        let mut v = shapes::agent_service(sh, s);
        let hash = format!("{:016x}", fnv(v.to_string().as_bytes()));
        v["ContentHash"] = json!(hash);
        Some((hash, v))
    };
    let Some((mut hash, mut body)) = render(sh) else {
        return text(404, format!("unknown service ID: {id}"));
    };
    let name = body["Service"].as_str().unwrap_or_default().to_string();
    if let Some(resp) = acl_check(sh, r, "service:read", Some(&name)) {
        return resp;
    }
    if let Some(want) = r.q("hash").filter(|h| !h.is_empty()) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut rx = sh.subscribe();
        while hash == want {
            tokio::select! {
                res = rx.changed() => if res.is_err() { break },
                _ = tokio::time::sleep_until(deadline) => break,
            }
            match render(sh) {
                Some((h, b)) => (hash, body) = (h, b),
                None => return text(404, format!("unknown service ID: {id}")),
            }
        }
    }
    let mut resp = json(&body, None);
    if let Ok(v) = hash.parse() {
        resp.headers_mut().insert("X-Consul-ContentHash", v);
    }
    resp
}

/// 64-bit FNV-1a, for `ContentHash` (Consul hashes the struct; any stable hash of the content serves).
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

/// `GET /v1/agent/checks`: a map by check ID of `structs.HealthCheck`, `filter` over it.
pub(super) fn checks(sh: &Arc<Shared>, r: &Req) -> Resp {
    let st = sh.lock();
    let q = match list_query(sh, r, &shapes::serf_check(sh)) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let mut out = Map::new();
    if may_read(sh, r) {
        for c in st.checks.values() {
            let v = shapes::check(sh, &st, c);
            if q.passes(&v) {
                out.insert(c.id.clone(), v);
            }
        }
    }
    json(&out, None)
}

/// `PUT /v1/agent/service/deregister/<id>`.
pub(super) fn deregister_service(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    let name = sh.lock().services.get(id).map(|s| s.name.clone());
    if let Some(resp) = acl_check(sh, r, "service:write", Some(name.as_deref().unwrap_or(id))) {
        return resp;
    }
    if !sh.deregister_service(id) {
        return text(
            404,
            format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."),
        );
    }
    empty_ok()
}

/// The ACL a check update needs: `service:write` on its service, else `node:write` on the node.
fn check_acl(sh: &Shared, r: &Req, check_id: &str) -> Option<Resp> {
    let service = sh.lock().checks.get(check_id).map(|c| c.service_name.clone()).filter(|s| !s.is_empty());
    match service {
        Some(name) => acl_check(sh, r, "service:write", Some(&name)),
        None => acl_check(sh, r, "node:write", Some(&sh.cfg.node_name)),
    }
}

/// `PUT /v1/agent/check/deregister/<id>`.
pub(super) fn deregister_check(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    if let Some(resp) = check_acl(sh, r, id) {
        return resp;
    }
    if !sh.deregister_check(id) {
        return text(404, format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."));
    }
    empty_ok()
}

/// `PUT /v1/agent/check/{pass,warn,fail}/<id>?note=`.
pub(super) fn check_ttl(sh: &Arc<Shared>, r: &Req, id: &str, status: &str) -> Resp {
    if let Some(resp) = check_acl(sh, r, id) {
        return resp;
    }
    ttl_update(sh, id, status, r.q("note").unwrap_or(""))
}

fn ttl_update(sh: &Arc<Shared>, id: &str, status: &str, output: &str) -> Resp {
    if !sh.lock().checks.contains_key(id) {
        return text(404, format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."));
    }
    match sh.update_ttl_check(id, status, output) {
        Ok(()) => empty_ok(),
        Err(msg) => text(500, msg),
    }
}

/// `PUT /v1/agent/check/update/<id>` with `{"Status", "Output"}`.
pub(super) fn check_update(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    let body = match decode(&r.body, &schemas::CHECK_UPDATE) {
        Ok(b) => b,
        Err(e) => return text(400, format!("Request decode failed: {e}")),
    };
    let status = body.str("Status");
    if !matches!(status.as_str(), "passing" | "warning" | "critical") {
        return text(400, format!("Invalid check status: '{status}'"));
    }
    if let Some(resp) = check_acl(sh, r, id) {
        return resp;
    }
    ttl_update(sh, id, &status, &body.str("Output"))
}

/// `PUT /v1/agent/service/maintenance/<id>?enable=true|false&reason=`.
pub(super) fn service_maintenance(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    if id.is_empty() {
        return text(400, "Missing service ID");
    }
    let Some(raw) = r.q("enable") else { return text(400, "Missing value for enable") };
    // Go's strconv.ParseBool.
    let enable = match raw {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
        "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
        _ => return text(400, format!("Invalid value for enable: {raw:?}")),
    };
    let name = sh.lock().services.get(id).map(|s| s.name.clone());
    if let Some(resp) = acl_check(sh, r, "service:write", Some(name.as_deref().unwrap_or(id))) {
        return resp;
    }
    match sh.set_service_maintenance(id, enable, r.q("reason").unwrap_or("")) {
        Ok(()) => empty_ok(),
        Err(msg) => text(404, msg),
    }
}

/// The node as a serf member (`/v1/agent/members`, `Member` of `/v1/agent/self`).
fn member(sh: &Shared) -> Value {
    json!({
        "Name": sh.cfg.node_name,
        "Addr": "127.0.0.1",
        "Port": 8301,
        "Tags": {
            "acls": if sh.cfg.acl_token.is_some() { "1" } else { "0" },
            "bootstrap": "1",
            "build": VERSION,
            "dc": sh.cfg.datacenter,
            "id": sh.node_id,
            "port": "8300",
            "role": "consul",
            "segment": "",
            "vsn": "2",
            "vsn_max": "3",
            "vsn_min": "2",
        },
        "Status": 1,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

/// `GET /v1/agent/self` [agent/agent_endpoint.go `AgentSelf`]: `Config` with the fields Consul fills, `Member`,
/// and empty `DebugConfig`, `Stats` and `Meta`. Consul requires `agent:read`; the dev agent answers without a
/// token, as it always has (the bindings' tests read it before they have one).
pub(super) fn agent_self(sh: &Arc<Shared>, _r: &Req) -> Resp {
    let build_date = crate::util::rfc3339_of(sh.started);
    json(
        &json!({
            "Config": {
                "Datacenter": sh.cfg.datacenter,
                "PrimaryDatacenter": sh.cfg.datacenter,
                "NodeName": sh.cfg.node_name,
                "NodeID": sh.node_id,
                "Revision": "consulnative",
                "Server": true,
                "Version": VERSION,
                "BuildDate": build_date,
            },
            "DebugConfig": {},
            "Coord": null,
            "Member": member(sh),
            "Stats": {},
            "Meta": {"consul-network-segment": ""},
        }),
        None,
    )
}

/// `GET /v1/agent/members` (`wan` gives the same single server, as a one-datacenter `consul agent -dev` does).
pub(super) fn members(sh: &Arc<Shared>, r: &Req) -> Resp {
    if let Some(resp) = unsupported(r) {
        return resp;
    }
    let mut m = member(sh);
    if r.has("wan") {
        m["Name"] = json!(format!("{}.{}", sh.cfg.node_name, sh.cfg.datacenter));
    }
    json(&json!([m]), None)
}

/// `GET /v1/agent/version`.
pub(super) fn version(_sh: &Arc<Shared>) -> Resp {
    json(&json!({"SHA": "", "BuildDate": "", "HumanVersion": VERSION, "FIPS": ""}), None)
}

/// `GET /v1/status/leader` and `/v1/status/peers`: this agent is the one server.
pub(super) fn status(sh: &Arc<Shared>, r: &Req, peers: bool) -> Resp {
    if let Some(resp) = super::route::check_dc(sh, r) {
        return resp;
    }
    let addr = "127.0.0.1:8300";
    if peers {
        json(&json!([addr]), None)
    } else {
        json(&json!(addr), None)
    }
}
