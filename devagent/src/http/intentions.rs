//! Authorize (the decision a Connect-native listener asks for) and the intentions API it decides from.

use super::faults::apply_faults;
use super::respond::{decode_failed, json, text, with_cache, Resp};
use super::route::acl_check;
use super::Req;
use crate::state::{intention_string, Shared};
use crate::FaultEndpoint;
use consulnative_core::api::wire::{is_non_service_identity, AuthorizeRequest, AuthorizeResponse, ServiceId};
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;

/// `POST /v1/agent/connect/authorize`: the intention that decides, else the default policy.
pub(super) async fn authorize(sh: &Arc<Shared>, r: &Req) -> Resp {
    if let Some(resp) = apply_faults(sh, FaultEndpoint::Authorize).await.answer {
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

/// The `source` and `destination` query parameters, both required. `Err` is the 400 answer.
#[allow(clippy::result_large_err)] // the Err is a ready answer; not worth boxing
pub(super) fn source_destination(r: &Req) -> Result<(String, String), Resp> {
    let source = r
        .q("source")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| text(400, "required query parameter 'source' not set"))?;
    let dest = r
        .q("destination")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| text(400, "required query parameter 'destination' not set"))?;
    Ok((source.to_string(), dest.to_string()))
}

/// `GET`/`PUT`/`DELETE /v1/connect/intentions/exact`.
pub(super) fn intention_exact(sh: &Arc<Shared>, r: &Req) -> Resp {
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

/// `GET /v1/connect/intentions/check`.
pub(super) fn intention_check(sh: &Arc<Shared>, r: &Req) -> Resp {
    let (source, dest) = match source_destination(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if let Some(resp) = acl_check(sh, r, "intentions:read", Some(&dest)) {
        return resp;
    }
    let st = sh.lock();
    let allowed =
        st.match_intention("default", &source, &dest).map(|i| i.action == "allow").unwrap_or(sh.cfg.default_allow);
    json(&serde_json::json!({ "Allowed": allowed }), Some(st.intentions_index))
}
