//! The local catalog: service registration with TTL and TCP checks, check updates, health queries, and
//! `/v1/agent/self`.

use super::blocking::{block, blocking_params};
use super::respond::{decode_failed, empty_ok, json, text, Resp};
use super::route::{acl_check, check_dc};
use super::{Req, VERSION};
use crate::state::{CheckEntry, ServiceEntry, Shared};
use crate::util::parse_go_duration;
use consulnative_core::api::wire::{
    AgentSelf, AgentSelfConfig, AgentService, HealthCheck, ProxyConfig, ServiceConnect, ServiceRegistration,
};
use std::sync::Arc;
use std::time::Duration;

/// `PUT /v1/agent/service/register`: a service with its TTL and TCP checks.
pub(super) fn register(sh: &Arc<Shared>, r: &Req) -> Resp {
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
            let timeout = c
                .timeout
                .as_deref()
                .and_then(parse_go_duration)
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(10));
            tcp.push((check_id.clone(), addr.to_string(), interval, timeout));
        } else if ttl.is_none() {
            return text(400, "Invalid check: the dev agent supports only TTL and TCP checks");
        }
        let status = c
            .status
            .clone()
            .filter(|s| matches!(s.as_str(), "passing" | "warning" | "critical"))
            .unwrap_or_else(|| "critical".to_string());
        checks.push(CheckEntry {
            hc: HealthCheck {
                node: sh.cfg.node_name.clone(),
                check_id,
                name: c
                    .name
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| format!("Service '{}' check", reg.name)),
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

/// `PUT /v1/agent/service/deregister/<id>`.
pub(super) fn deregister(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    let name = sh.lock().services.get(id).map(|s| s.svc.service.clone());
    if let Some(resp) = acl_check(sh, r, "service:write", Some(name.as_deref().unwrap_or(id))) {
        return resp;
    }
    if name.is_none() {
        return text(
            404,
            format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."),
        );
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

/// `PUT /v1/agent/check/{pass,warn,fail}/<check-id>`: a TTL check update.
pub(super) fn check_update(sh: &Arc<Shared>, r: &Req, check_id: &str, status: &str) -> Resp {
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

/// `GET /v1/health/connect/<name>` (`connect`) and `/v1/health/service/<name>`, blocking on the catalog index.
pub(super) async fn health(sh: &Arc<Shared>, r: &Req, name: &str, connect: bool) -> Resp {
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

/// `GET /v1/agent/self`.
pub(super) fn agent_self(sh: &Shared) -> Resp {
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
