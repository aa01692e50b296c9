//! The Connect CA endpoints: roots, leaf certificates, and the CA configuration (whose PUT rotates the root).

use super::blocking::{block, blocking_params};
use super::faults::{apply_faults, hostile_leaf};
use super::respond::{decode_failed, empty_ok, json, text, with_cache, Resp};
use super::route::{acl_check, check_dc};
use super::Req;
use crate::state::Shared;
use crate::util;
use crate::FaultEndpoint;
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;

/// `GET /v1/agent/connect/ca/roots`: cached like the agent cache, blocking on the roots index.
pub(super) async fn roots(sh: &Arc<Shared>, r: &Req) -> Resp {
    if let Some(resp) = check_dc(sh, r) {
        return resp;
    }
    let mut faults = apply_faults(sh, FaultEndpoint::Roots).await;
    if let Some(resp) = faults.answer.take() {
        return resp;
    }
    let backwards = faults.backwards;
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
    faults.finish(with_cache(json(&body, Some(idx)), hit, age))
}

/// `GET /v1/agent/connect/ca/leaf/<service>`: the cached leaf, blocking until it is renewed or reissued.
pub(super) async fn leaf(sh: &Arc<Shared>, r: &Req, service: &str) -> Resp {
    if service.is_empty() {
        return text(400, "Missing service name");
    }
    if let Some(resp) = check_dc(sh, r) {
        return resp;
    }
    if let Some(resp) = acl_check(sh, r, "service:write", Some(service)) {
        return resp;
    }
    let mut faults = apply_faults(sh, FaultEndpoint::Leaf).await;
    if let Some(resp) = faults.answer.take() {
        return resp;
    }
    if let Some(fault) = &faults.leaf {
        return faults.finish(hostile_leaf(sh, service, fault));
    }
    let backwards = faults.backwards;
    let (min, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let first = match sh.leaf(service) {
        Ok(v) => v,
        Err(e) => return text(e.http_status(), e.message()),
    };
    if backwards && min > 0 {
        return faults.finish(with_cache(json(&first.0, Some(1)), first.1, first.2));
    }
    if min == 0 || first.0.modify_index > min {
        let idx = first.0.modify_index;
        return faults.finish(with_cache(json(&first.0, Some(idx)), first.1, first.2));
    }
    let svc = service.to_string();
    block(sh, min, wait, |st| st.leaves.get(&svc).map(|l| l.cert.modify_index).unwrap_or(0)).await;
    match sh.leaf(service) {
        Ok((cert, hit, age)) => {
            let idx = cert.modify_index;
            faults.finish(with_cache(json(&cert, Some(idx)), hit, age))
        }
        Err(e) => text(500, e.message().to_string()),
    }
}

/// `GET`/`PUT /v1/connect/ca/configuration`; a PUT rotates the root.
pub(super) fn ca_configuration(sh: &Arc<Shared>, r: &Req) -> Resp {
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
