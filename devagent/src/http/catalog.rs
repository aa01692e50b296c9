//! The catalog and health endpoints over the one node: `/v1/catalog/{services,service,connect,datacenters,nodes}`
//! and `/v1/health/{service,connect,checks,state}`. All but datacenters are blocking queries on the catalog
//! index; `tag`, `passing`, `node-meta`, `near`, `dc` and `filter` are honoured where Consul has them (params.rs).

use super::blocking::{block, blocking_params};
use super::params::{list_query, ListQuery};
use super::respond::{json, text, Resp};
use super::route::{acl_check, check_dc};
use super::shapes;
use super::Req;
use crate::state::{Service, Shared, State};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Wait per `index`/`wait`, then answer `body(state)` with the catalog index. `Err` answers come first.
async fn blocking(sh: &Arc<Shared>, r: &Req, body: impl Fn(&State) -> Value) -> Resp {
    let (min, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let idx = block(sh, min, wait, |st| st.catalog_index).await;
    let st = sh.lock();
    json(&body(&st), Some(idx))
}

/// Whether the token may read the catalog (the one-token model: reads need the token when ACLs are on; Consul
/// filters what a token cannot read, so the answer is empty rather than 403).
fn may_read(sh: &Shared, r: &Req) -> bool {
    acl_check(sh, r, "service:read", None).is_none()
}

/// Whether `s` is `name` as health/catalog `connect` sees it: a Connect-native instance of it, or a proxy for it.
fn is_connect_endpoint(s: &Service, name: &str) -> bool {
    (s.name == name && s.native)
        || (s.kind == "connect-proxy"
            && s.proxy.as_ref().and_then(|p| p.get("DestinationServiceName")).and_then(Value::as_str) == Some(name))
}

/// A template health entry for `filter` selectors: every field, one check.
fn health_template(sh: &Shared, st: &State) -> Value {
    let mut t = shapes::health_entry(sh, st, &Service::default());
    t["Checks"] = json!([shapes::serf_check(sh)]);
    t
}

fn entries(sh: &Shared, st: &State, q: &ListQuery, pick: impl Fn(&Service) -> bool) -> Vec<Value> {
    if !q.node_matches(&shapes::node_meta()) {
        return Vec::new();
    }
    st.services
        .values()
        .filter(|s| pick(s) && q.tags_match(&s.tags))
        .map(|s| shapes::health_entry(sh, st, s))
        .filter(|e| !q.passing || e["Checks"].as_array().is_some_and(|c| c.iter().all(|c| c["Status"] == "passing")))
        .filter(|e| q.passes(e))
        .collect()
}

/// `GET /v1/health/service/<name>` and `/v1/health/connect/<name>` (`connect`).
pub(super) async fn health_service(sh: &Arc<Shared>, r: &Req, name: &str, connect: bool) -> Resp {
    let template = health_template(sh, &sh.lock());
    let q = match list_query(sh, r, &template) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let read = may_read(sh, r);
    blocking(sh, r, |st| {
        if !read {
            return json!([]);
        }
        let pick = |s: &Service| if connect { is_connect_endpoint(s, name) } else { s.name == name };
        Value::Array(entries(sh, st, &q, pick))
    })
    .await
}

/// `GET /v1/health/checks/<service>`: the service's checks.
pub(super) async fn health_checks(sh: &Arc<Shared>, r: &Req, name: &str) -> Resp {
    let q = match list_query(sh, r, &shapes::serf_check(sh)) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let read = may_read(sh, r);
    blocking(sh, r, |st| {
        let checks = st
            .checks
            .values()
            .filter(|c| read && c.service_name == name && q.node_matches(&shapes::node_meta()))
            .map(|c| shapes::check(sh, st, c))
            .filter(|v| q.passes(v));
        Value::Array(checks.collect())
    })
    .await
}

/// `GET /v1/health/state/<state>`: checks in `passing`, `warning`, `critical` or `any` state (serfHealth
/// included, as Consul lists node checks too).
pub(super) async fn health_state(sh: &Arc<Shared>, r: &Req, state: &str) -> Resp {
    if !matches!(state, "any" | "passing" | "warning" | "critical") {
        return text(400, "Invalid check state");
    }
    let q = match list_query(sh, r, &shapes::serf_check(sh)) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let read = may_read(sh, r);
    let state = state.to_string();
    blocking(sh, r, move |st| {
        if !read || !q.node_matches(&shapes::node_meta()) {
            return json!([]);
        }
        let mut all = vec![shapes::serf_check(sh)];
        all.extend(st.checks.values().map(|c| shapes::check(sh, st, c)));
        let out = all.into_iter().filter(|c| state == "any" || c["Status"] == state.as_str()).filter(|v| q.passes(v));
        Value::Array(out.collect())
    })
    .await
}

/// `GET /v1/catalog/services`: service name → tags (the union over instances).
pub(super) async fn catalog_services(sh: &Arc<Shared>, r: &Req) -> Resp {
    let template = shapes::catalog_service(sh, &Service::default());
    let q = match list_query(sh, r, &template) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let read = may_read(sh, r);
    blocking(sh, r, |st| {
        let mut out: Map<String, Value> = Map::new();
        if !read || !q.node_matches(&shapes::node_meta()) {
            return Value::Object(out);
        }
        for s in st.services.values() {
            if !q.passes(&shapes::catalog_service(sh, s)) {
                continue;
            }
            let tags = out.entry(s.name.clone()).or_insert_with(|| json!([]));
            if let Some(list) = tags.as_array_mut() {
                for t in &s.tags {
                    if !list.iter().any(|x| x == t) {
                        list.push(json!(t));
                    }
                }
            }
        }
        Value::Object(out)
    })
    .await
}

/// `GET /v1/catalog/service/<name>` and `/v1/catalog/connect/<name>` (`connect`).
pub(super) async fn catalog_service(sh: &Arc<Shared>, r: &Req, name: &str, connect: bool) -> Resp {
    let template = shapes::catalog_service(sh, &Service::default());
    let q = match list_query(sh, r, &template) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let read = may_read(sh, r);
    blocking(sh, r, |st| {
        if !read || !q.node_matches(&shapes::node_meta()) {
            return json!([]);
        }
        let out = st
            .services
            .values()
            .filter(|s| if connect { is_connect_endpoint(s, name) } else { s.name == name })
            .filter(|s| q.tags_match(&s.tags))
            .map(|s| shapes::catalog_service(sh, s))
            .filter(|v| q.passes(v));
        Value::Array(out.collect())
    })
    .await
}

/// `GET /v1/catalog/nodes`: the one node.
pub(super) async fn catalog_nodes(sh: &Arc<Shared>, r: &Req) -> Resp {
    let q = match list_query(sh, r, &shapes::node(sh)) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    blocking(sh, r, |_| {
        let n = shapes::node(sh);
        if q.node_matches(&n["Meta"]) && q.passes(&n) {
            json!([n])
        } else {
            json!([])
        }
    })
    .await
}

/// `GET /v1/catalog/datacenters`.
pub(super) fn catalog_datacenters(sh: &Arc<Shared>, r: &Req) -> Resp {
    if let Some(resp) = check_dc(sh, r) {
        return resp;
    }
    json(&json!([sh.cfg.datacenter]), None)
}
