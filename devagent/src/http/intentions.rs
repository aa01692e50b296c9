//! Authorize (the decision a Connect-native listener asks for) and the intentions API it decides from.

use super::faults::apply_faults;
use super::respond::{json, text, with_cache, Resp};
use super::route::acl_check;
use super::Req;
use crate::decode::{decode, schemas};
use crate::state::intentions::IntentionWrite;
use crate::state::{intention_string, Shared, StoredIntention};
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
        Err(e) => return text(400, format!("Request decode failed: {e}")),
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
        // L7 intentions (Permissions) deny at L4 [agent/connect_auth.go].
        Some(s) if s.permissions.is_some() => (false, format!("Matched L7 intention: {}", intention_string(&s.ixn))),
        Some(s) => (s.ixn.action == "allow", format!("Matched L4 intention: {}", intention_string(&s.ixn))),
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
                Some(ixn) => json(&intention_json(ixn), Some(st.intentions_index)),
                None => text(404, "Intention not found"),
            }
        }
        Method::DELETE => {
            sh.delete_intention(&source, &dest);
            json(&true, None)
        }
        _ => match intention_write(&r.body) {
            Ok(w) => {
                sh.write_intention(&source, &dest, w);
                json(&true, None)
            }
            Err(resp) => resp,
        },
    }
}

/// An intention as Consul's `structs.Intention` encodes it.
pub(super) fn intention_json(s: &StoredIntention) -> serde_json::Value {
    let i = &s.ixn;
    let mut v = serde_json::json!({
        "ID": i.id,
        "Description": i.description,
        "SourceNS": i.source_ns,
        "SourceName": i.source_name,
        "DestinationNS": i.destination_ns,
        "DestinationName": i.destination_name,
        "SourceType": i.source_type,
        "Action": i.action,
        "Precedence": i.precedence,
        "CreatedAt": s.created_at,
        "UpdatedAt": s.updated_at,
        "CreateIndex": i.create_index,
        "ModifyIndex": i.modify_index,
    });
    if !s.meta.is_empty() {
        v["Meta"] = serde_json::json!(s.meta);
    }
    if let Some(p) = &s.permissions {
        v["Permissions"] = p.clone();
    }
    v
}

/// Decode and validate an intention body [agent/structs/intention.go `Validate`]. `Err` is the 400 answer.
#[allow(clippy::result_large_err)] // the Err is a ready answer; not worth boxing
pub(super) fn intention_write(body: &[u8]) -> Result<IntentionWrite, Resp> {
    let o = decode(body, &schemas::INTENTION).map_err(decode_failed)?;
    let permissions = o.any("Permissions").filter(|p| p.as_array().is_some_and(|a| !a.is_empty())).cloned();
    let action = o.str("Action");
    if permissions.is_some() && !action.is_empty() {
        return Err(text(400, "Invalid Intention: Action must be empty when Permissions are present"));
    }
    if permissions.is_none() && !matches!(action.as_str(), "allow" | "deny") {
        return Err(text(400, "Invalid Intention: Action must be set to 'allow' or 'deny'"));
    }
    let source_type = o.str("SourceType");
    if !matches!(source_type.as_str(), "" | "consul") {
        return Err(text(400, "Invalid Intention: SourceType must be set to 'consul'"));
    }
    Ok(IntentionWrite { action, description: o.str("Description"), meta: o.map("Meta"), permissions })
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
    let allowed = st
        .match_intention("default", &source, &dest)
        .map(|i| i.permissions.is_none() && i.ixn.action == "allow")
        .unwrap_or(sh.cfg.default_allow);
    json(&serde_json::json!({ "Allowed": allowed }), Some(st.intentions_index))
}

fn decode_failed(e: String) -> Resp {
    text(400, format!("Request decode failed: {e}"))
}
