//! `PUT /v1/agent/service/register` and `PUT /v1/agent/check/register`: Consul's decoding (decode/), then its
//! validations in its order [agent/agent_endpoint.go `AgentRegisterService`, `AgentRegisterCheck`], then what
//! the dev agent runs: TTL and TCP checks.

use super::respond::{empty_ok, text, Resp};
use super::route::acl_check;
use super::Req;
use crate::decode::{decode, schemas, Obj, Val};
use crate::state::model::{CheckKind, ServiceAddress};
use crate::state::{Check, Service, Shared};
use std::sync::Arc;
use std::time::Duration;

fn decode_failed(e: String) -> Resp {
    text(400, format!("Request decode failed: {e}"))
}

/// A check definition's kind, or the 400 text [agent/structs/check_type.go `Validate`, `Type`].
fn check_kind(c: &Obj) -> Result<CheckKind, String> {
    let interval = c.dur("Interval");
    let ttl = c.dur("TTL");
    let runner = [
        ("script", !c.list("ScriptArgs").is_empty()),
        ("HTTP", !c.str("HTTP").is_empty()),
        ("TCP", !c.str("TCP").is_empty()),
        ("UDP", !c.str("UDP").is_empty()),
        ("gRPC", !c.str("GRPC").is_empty()),
        ("H2PING", !c.str("H2PING").is_empty()),
        ("OSService", !c.str("OSService").is_empty()),
    ];
    let interval_check = runner.iter().any(|(_, set)| *set);
    let alias = !c.str("AliasNode").is_empty() || !c.str("AliasService").is_empty();
    if !interval.is_zero() && !ttl.is_zero() {
        return Err("Interval and TTL cannot both be specified".into());
    }
    if interval_check && interval.is_zero() {
        return Err("Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks".into());
    }
    if interval_check && alias {
        return Err("Interval cannot be set for Alias checks".into());
    }
    if alias && !ttl.is_zero() {
        return Err("TTL must be not be set for Alias checks".into());
    }
    if !interval_check && !alias && ttl.is_zero() {
        return Err("TTL must be > 0 for TTL checks".into());
    }
    if c.int("FailuresBeforeWarning") > c.int("FailuresBeforeCritical") {
        return Err("FailuresBeforeWarning can't be higher than FailuresBeforeCritical".into());
    }
    if !ttl.is_zero() {
        return Ok(CheckKind::Ttl(ttl));
    }
    if let Some((what, _)) = runner.iter().find(|(w, set)| *set && *w != "TCP") {
        return Err(format!("the dev agent runs only TTL and TCP checks, not {what} checks"));
    }
    if alias {
        return Err("the dev agent runs only TTL and TCP checks, not alias checks".into());
    }
    let timeout = Some(c.dur("Timeout")).filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(10));
    Ok(CheckKind::Tcp { addr: c.str("TCP"), interval: interval.max(Duration::from_millis(100)), timeout })
}

fn new_check(id: String, name: String, c: &Obj, kind: CheckKind, service: Option<&Service>) -> Check {
    Check {
        id,
        name,
        status: Some(c.str("Status")).filter(|s| !s.is_empty()).unwrap_or_else(|| "critical".to_string()),
        notes: c.str("Notes"),
        output: String::new(),
        service_id: service.map(|s| s.id.clone()).unwrap_or_default(),
        service_name: service.map(|s| s.name.clone()).unwrap_or_default(),
        kind,
        create_index: 0,
        modify_index: 0,
        generation: 0,
        task: None,
    }
}

fn valid_status(s: &str) -> bool {
    matches!(s, "" | "passing" | "warning" | "critical")
}

/// `PUT /v1/agent/service/register`.
pub(super) fn register_service(sh: &Arc<Shared>, r: &Req) -> Resp {
    let def = match decode(&r.body, &schemas::SERVICE_DEFINITION) {
        Ok(d) => d,
        Err(e) => return decode_failed(e),
    };
    let name = def.str("Name");
    if name.is_empty() {
        return text(400, "Missing service name");
    }
    let address = def.str("Address");
    if matches!(address.as_str(), "0.0.0.0" | "::" | "[::]") {
        return text(400, "Invalid service address");
    }
    let weights = def.obj("Weights").map(|w| (w.int("Passing"), w.int("Warning")));
    if let Some((passing, warning)) = weights {
        if passing < 1 {
            return text(400, "Invalid Weights: Passing must be greater than 0");
        }
        if warning < 0 {
            return text(400, "Invalid Weights: Warning must be greater or equal than 0");
        }
    }
    let connect = def.obj("Connect").cloned().unwrap_or_default();
    let kind = def.str("Kind");
    let proxy = def.obj("Proxy");
    let port = def.int("Port");
    let socket_path = def.str("SocketPath");
    // NodeService.Validate [agent/structs/structs.go], answered through go-multierror's format.
    let mut problems = Vec::new();
    if kind == "connect-proxy" {
        if proxy.map(|p| p.str("DestinationServiceName").is_empty()).unwrap_or(true) {
            problems.push("Proxy.DestinationServiceName must be non-empty for Connect proxy services");
        }
        if port == 0 && socket_path.is_empty() {
            problems.push("Port or SocketPath must be set for a Connect proxy");
        }
        if connect.bool("Native") {
            problems.push("A Proxy cannot also be Connect Native, only typical services");
        }
    } else if !kind.is_empty() {
        return text(400, format!("Validation failed: the dev agent does not support services of kind {kind:?}"));
    }
    if connect.bool("Native") && port == 0 && socket_path.is_empty() {
        problems.push("Port or SocketPath must be set for a Connect native service.");
    }
    if !problems.is_empty() {
        let n = problems.len();
        let list: String = problems.iter().map(|p| format!("\t* {p}\n")).collect();
        let count = if n == 1 { "1 error occurred".to_string() } else { format!("{n} errors occurred") };
        return text(400, format!("Validation failed: {count}:\n{list}\n"));
    }
    let mut check_defs = Vec::new();
    if let Some(c) = def.obj("Check").filter(|c| !c.is_empty()) {
        check_defs.push(c.clone());
    }
    check_defs.extend(def.objs("Checks"));
    let mut kinds = Vec::new();
    for c in &check_defs {
        match check_kind(c) {
            Ok(k) => kinds.push(k),
            Err(e) => return text(400, format!("Invalid check: {e}")),
        }
        if !valid_status(&c.str("Status")) {
            return text(400, "Status for checks must 'passing', 'warning', 'critical'");
        }
    }
    if connect.has("SidecarService") {
        return text(400, "Invalid SidecarService: sidecar proxies are not supported by the dev agent; register the proxy service itself");
    }
    if def.any("Ports").is_some() {
        return text(400, "Invalid service: multi-port services (Ports) are not supported by the dev agent");
    }
    if let Some(resp) = acl_check(sh, r, "service:write", Some(&name)) {
        return resp;
    }
    let id = Some(def.str("ID")).filter(|s| !s.is_empty()).unwrap_or_else(|| name.clone());
    let proxy_json = proxy.filter(|_| kind == "connect-proxy").map(|p| {
        let mut m = serde_json::Map::new();
        for key in ["DestinationServiceName", "DestinationServiceID", "LocalServiceAddress", "LocalServiceSocketPath"] {
            if !p.str(key).is_empty() {
                m.insert(key.into(), p.str(key).into());
            }
        }
        if p.int("LocalServicePort") != 0 {
            m.insert("LocalServicePort".into(), p.int("LocalServicePort").into());
        }
        for key in ["Mode", "Config", "Upstreams", "MeshGateway", "Expose", "TransparentProxy", "AccessLogs"] {
            match p.get(key) {
                Some(Val::Any(v)) => {
                    m.insert(key.into(), v.clone());
                }
                Some(Val::Str(v)) => {
                    m.insert(key.into(), v.clone().into());
                }
                _ => {}
            }
        }
        m
    });
    let svc = Service {
        kind,
        id: id.clone(),
        name: name.clone(),
        tags: def.list("Tags"),
        address,
        tagged_addresses: def
            .obj_map("TaggedAddresses")
            .into_iter()
            .map(|(k, a)| (k, ServiceAddress { address: a.str("Address"), port: a.int("Port") }))
            .collect(),
        meta: def.map("Meta"),
        port,
        socket_path,
        weights: weights.unwrap_or((1, 1)),
        enable_tag_override: def.bool("EnableTagOverride"),
        native: connect.bool("Native"),
        proxy: proxy_json,
        locality: def.obj("Locality").map(|l| (l.str("Region"), l.str("Zone"))),
        create_index: 0,
        modify_index: 0,
    };
    // Check IDs: `service:<id>`, or `service:<id>:<n>` when there are several [agent/agent.go].
    let many = check_defs.len() > 1;
    let checks = check_defs
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(i, (c, k))| {
            let cid = Some(c.str("CheckID")).filter(|s| !s.is_empty()).unwrap_or_else(|| {
                if many {
                    format!("service:{id}:{}", i + 1)
                } else {
                    format!("service:{id}")
                }
            });
            let name =
                Some(c.str("Name")).filter(|s| !s.is_empty()).unwrap_or_else(|| format!("Service '{name}' check"));
            new_check(cid, name, c, k, Some(&svc))
        })
        .collect();
    let replace = r.has("replace-existing-checks") && matches!(r.q("replace-existing-checks"), Some("") | Some("true"));
    sh.register_service(svc, checks, replace);
    empty_ok()
}

/// `PUT /v1/agent/check/register`.
pub(super) fn register_check(sh: &Arc<Shared>, r: &Req) -> Resp {
    let def = match decode(&r.body, &schemas::CHECK_DEFINITION) {
        Ok(d) => d,
        Err(e) => return decode_failed(e),
    };
    let name = def.str("Name");
    if name.is_empty() {
        return text(400, "Missing check name");
    }
    if !valid_status(&def.str("Status")) {
        return text(400, "Bad check status");
    }
    let kind = match check_kind(&def) {
        Ok(k) => k,
        Err(e) => return text(400, format!("Invalid check: {e}")),
    };
    let service_id = def.str("ServiceID");
    let service = if service_id.is_empty() {
        None
    } else {
        match sh.lock().services.get(&service_id) {
            Some(s) => Some(s.clone()),
            None => return text(404, format!("ServiceID {service_id:?} does not exist")),
        }
    };
    let denied = match &service {
        Some(s) => acl_check(sh, r, "service:write", Some(&s.name)),
        None => acl_check(sh, r, "node:write", Some(&sh.cfg.node_name)),
    };
    if let Some(resp) = denied {
        return resp;
    }
    let id = Some(def.str("ID")).filter(|s| !s.is_empty()).unwrap_or_else(|| name.clone());
    sh.register_check(new_check(id, name, &def, kind, service.as_ref()));
    empty_ok()
}
