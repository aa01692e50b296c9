//! The Connect CA endpoints: roots, leaf certificates, and the CA configuration (whose PUT rotates the root).

use super::blocking::{block, blocking_params};
use super::faults::{apply_faults, hostile_leaf};
use super::respond::{decode_failed, empty_ok, json, text, with_cache, Resp};
use super::route::{acl_check, check_dc};
use super::Req;
use crate::ca::Authority;
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
                "LeafCertTTL": util::format_go_duration(st.leaf_ttl),
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
    ca_configuration_put(sh, r)
}

/// `PUT /v1/connect/ca/configuration` [agent/connect_ca_endpoint.go, agent/connect/ca/provider_consul.go]:
/// provider `consul` only. `Config.PrivateKey` and `Config.RootCert` make the user's CA the active root (a key
/// alone gets a root generated for it, as Consul's provider does); without them the dev agent rotates to a fresh
/// root (Consul rotates only when the key settings change: the dev agent treats every PUT as a rotation, which
/// tests use). The old root cross-signs the new one unless `ForceWithoutCrossSigning`. `LeafCertTTL` applies to
/// the leaves issued from then on. A setting the dev agent cannot honour answers 400 naming it.
fn ca_configuration_put(sh: &Arc<Shared>, r: &Req) -> Resp {
    let body: serde_json::Value = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => return decode_failed(e),
    };
    let field = |v: &serde_json::Value, name: &str| -> Option<serde_json::Value> {
        v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    let provider = field(&body, "Provider").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    if !provider.is_empty() && provider != "consul" {
        return text(400, format!("the dev agent supports only the built-in \"consul\" CA provider, not {provider:?}"));
    }
    let config = field(&body, "Config").unwrap_or(serde_json::Value::Null);
    let force = field(&body, "ForceWithoutCrossSigning").and_then(|v| v.as_bool()).unwrap_or(false);
    let mut private_key = String::new();
    let mut root_cert = String::new();
    let mut leaf_ttl = None;
    if let Some(cfg) = config.as_object() {
        for (key, v) in cfg {
            let s = v.as_str().unwrap_or_default();
            match key.to_ascii_lowercase().replace('_', "").as_str() {
                "privatekey" => private_key = s.to_string(),
                "rootcert" => root_cert = s.to_string(),
                "leafcertttl" => match util::parse_go_duration(s) {
                    Some(d) if d >= Duration::from_secs(1) => leaf_ttl = Some(d),
                    _ => return text(400, format!("Invalid LeafCertTTL {s:?}: a Go duration of at least 1s")),
                },
                "privatekeytype" if s.is_empty() || s == "ec" => {}
                "privatekeybits" if v.as_u64().map(|b| b == 0 || b == 256).unwrap_or(v.is_null()) => {}
                "rootcertttl" | "intermediatecertttl" | "csrmaxperssecond" | "csrmaxconcurrent" => {}
                other => {
                    return text(
                        400,
                        format!(
                            "Config.{key}: not supported by the dev agent (it signs with EC P-256 keys; {other:?})"
                        ),
                    )
                }
            }
        }
    }
    if !root_cert.is_empty() && private_key.is_empty() {
        return text(400, "Config.RootCert needs Config.PrivateKey: the dev agent signs leaves with the root's key");
    }
    let (trust_domain, common_name) = {
        let st = sh.lock();
        (st.ca.trust_domain.clone(), st.ca.new_root_common_name())
    };
    let root = if private_key.is_empty() {
        None
    } else if root_cert.is_empty() {
        match Authority::root_with_key(&trust_domain, &common_name, &private_key) {
            Ok(a) => Some(a),
            Err(e) => return text(e.http_status(), e.message()),
        }
    } else {
        match Authority::from_pem(&trust_domain, "Consul CA Primary Cert", &root_cert, &private_key) {
            Ok(a) => Some(a),
            Err(e) => return text(e.http_status(), e.message()),
        }
    };
    let mut root = root;
    if let Some(a) = root.as_mut() {
        a.name = "Consul CA Primary Cert".to_string();
    }
    if let Some(ttl) = leaf_ttl {
        sh.lock().leaf_ttl = ttl;
    }
    match sh.rotate_to(root, !force) {
        Ok(()) => empty_ok(),
        Err(e) => text(e.http_status(), e.message().to_string()),
    }
}
