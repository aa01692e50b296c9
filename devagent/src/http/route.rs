//! Routing: which handler answers a path and method, and the checks every Consul endpoint shares (Enterprise-only
//! parameters, ACL permissions, the datacenter).

use super::agent;
use super::catalog;
use super::connect_ca::{ca_configuration, leaf, roots};
use super::controls::controls;
use super::intentions::{authorize, intention_check, intention_exact};
use super::intentions_list::{intention_by_id, intention_match, intentions};
use super::register::{register_check, register_service};
use super::respond::{method_not_allowed, not_found, text, Resp};
use super::Req;
use crate::acl;
use crate::state::Shared;
use crate::util::percent_decode;
use std::sync::Arc;

/// Dispatches a request to its handler: 404 for unknown paths, 405 for wrong methods.
pub(super) async fn route(sh: &Arc<Shared>, r: &Req) -> Resp {
    let p = r.path.as_str();
    if let Some(rest) = p.strip_prefix("/_devagent/") {
        return controls(sh, r, rest).await;
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
            return register_service(sh, r);
        }
        "/v1/agent/check/register" => {
            only!("PUT");
            return register_check(sh, r);
        }
        "/v1/agent/services" => {
            only!("GET");
            return agent::services(sh, r);
        }
        "/v1/agent/checks" => {
            only!("GET");
            return agent::checks(sh, r);
        }
        "/v1/agent/self" => {
            only!("GET");
            return agent::agent_self(sh, r);
        }
        "/v1/agent/members" => {
            only!("GET");
            return agent::members(sh, r);
        }
        "/v1/agent/version" => {
            only!("GET");
            return agent::version(sh);
        }
        "/v1/status/leader" | "/v1/status/peers" => {
            only!("GET");
            return agent::status(sh, r, p.ends_with("peers"));
        }
        "/v1/catalog/services" => {
            only!("GET");
            return catalog::catalog_services(sh, r).await;
        }
        "/v1/catalog/nodes" => {
            only!("GET");
            return catalog::catalog_nodes(sh, r).await;
        }
        "/v1/catalog/datacenters" => {
            only!("GET");
            return catalog::catalog_datacenters(sh, r);
        }
        "/v1/connect/intentions" => {
            only!("GET", "POST");
            return intentions(sh, r).await;
        }
        "/v1/connect/intentions/exact" => {
            only!("GET", "PUT", "DELETE");
            return intention_exact(sh, r);
        }
        "/v1/connect/intentions/check" => {
            only!("GET");
            return intention_check(sh, r);
        }
        "/v1/connect/intentions/match" => {
            only!("GET");
            return intention_match(sh, r).await;
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
        return agent::deregister_service(sh, r, &id);
    }
    if let Some(id) = seg("/v1/agent/service/maintenance/") {
        only!("PUT");
        return agent::service_maintenance(sh, r, &id);
    }
    if let Some(id) = seg("/v1/agent/service/") {
        only!("GET");
        return agent::service(sh, r, &id).await;
    }
    if let Some(id) = seg("/v1/agent/check/deregister/") {
        only!("PUT");
        return agent::deregister_check(sh, r, &id);
    }
    if let Some(id) = seg("/v1/agent/check/update/") {
        only!("PUT");
        return agent::check_update(sh, r, &id);
    }
    for (prefix, st) in [
        ("/v1/agent/check/pass/", "passing"),
        ("/v1/agent/check/warn/", "warning"),
        ("/v1/agent/check/fail/", "critical"),
    ] {
        if let Some(id) = seg(prefix) {
            only!("PUT");
            return agent::check_ttl(sh, r, &id, st);
        }
    }
    if let Some(name) = seg("/v1/health/connect/") {
        only!("GET");
        return catalog::health_service(sh, r, &name, true).await;
    }
    if let Some(name) = seg("/v1/health/service/") {
        only!("GET");
        return catalog::health_service(sh, r, &name, false).await;
    }
    if let Some(name) = seg("/v1/health/checks/") {
        only!("GET");
        return catalog::health_checks(sh, r, &name).await;
    }
    if let Some(state) = seg("/v1/health/state/") {
        only!("GET");
        return catalog::health_state(sh, r, &state).await;
    }
    if let Some(name) = seg("/v1/catalog/service/") {
        only!("GET");
        return catalog::catalog_service(sh, r, &name, false).await;
    }
    if let Some(name) = seg("/v1/catalog/connect/") {
        only!("GET");
        return catalog::catalog_service(sh, r, &name, true).await;
    }
    if let Some(id) = seg("/v1/connect/intentions/") {
        only!("GET", "PUT", "DELETE");
        return intention_by_id(sh, r, &id);
    }
    not_found()
}

/// Consul CE answers 400 to any namespace or partition, in the query or in a header [agent/http_ce.go].
pub(super) fn enterprise_params(r: &Req) -> Option<Resp> {
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

/// `Some(403 answer)` when the request's token lacks `permission` on `resource`.
pub(super) fn acl_check(sh: &Shared, r: &Req, permission: &str, resource: Option<&str>) -> Option<Resp> {
    let token = r.token();
    acl::check(sh.cfg.acl_token.as_deref(), token.as_deref(), permission, resource).err().map(|m| text(403, m))
}

/// `Some(500 answer)` when `?dc=` names another datacenter, as Consul answers without a path to it.
pub(super) fn check_dc(sh: &Shared, r: &Req) -> Option<Resp> {
    match r.q("dc") {
        Some(dc) if !dc.is_empty() && dc != sh.cfg.datacenter => Some(text(500, "No path to datacenter")),
        _ => None,
    }
}
