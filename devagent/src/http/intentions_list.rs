//! Listing and matching intentions: `GET /v1/connect/intentions` (list, and the legacy create by `POST`),
//! `/v1/connect/intentions/match` (blocking, evaluation order), and the legacy ID-based API
//! (`/v1/connect/intentions/<id>`) that python-consul2 uses.

use super::blocking::{block, blocking_params};
use super::intentions::{intention_json, intention_write};
use super::params::list_query;
use super::respond::{json, text, Resp};
use super::route::acl_check;
use super::Req;
use crate::decode::{decode, schemas};
use crate::state::intentions::sort_by_precedence;
use crate::state::Shared;
use hyper::Method;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /v1/connect/intentions` (blocking, `filter`) and `POST` (legacy create: `{"ID": "<uuid>"}`).
pub(super) async fn intentions(sh: &Arc<Shared>, r: &Req) -> Resp {
    if r.method == Method::POST {
        return create(sh, r);
    }
    let template = {
        let mut t = json!({"ID": "", "Description": "", "SourceNS": "", "SourceName": "", "DestinationNS": "",
            "DestinationName": "", "SourceType": "", "Action": "", "Precedence": 0, "CreatedAt": "", "UpdatedAt": "",
            "CreateIndex": 0, "ModifyIndex": 0, "Meta": {}});
        t["Permissions"] = json!([]);
        t
    };
    let q = match list_query(sh, r, &template) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    if let Some(resp) = acl_check(sh, r, "intentions:read", None) {
        return resp;
    }
    let (min, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let idx = block(sh, min, wait, |st| st.intentions_index).await;
    let st = sh.lock();
    let mut all: Vec<_> = st.intentions.values().cloned().collect();
    sort_by_precedence(&mut all);
    let out: Vec<Value> = all.iter().map(intention_json).filter(|v| q.passes(v)).collect();
    json(&out, Some(idx))
}

/// `GET /v1/connect/intentions/match?by=source|destination&name=<svc>` (repeatable `name`): a map from each name
/// to the intentions that apply to it, in evaluation order [agent/intentions_endpoint.go `IntentionMatch`].
pub(super) async fn intention_match(sh: &Arc<Shared>, r: &Req) -> Resp {
    let by_source = match r.q("by") {
        None | Some("") => return text(400, "required query parameter 'by' not set"),
        Some("source") => true,
        Some("destination") => false,
        Some(_) => return text(400, "'by' parameter must be one of 'source' or 'destination'"),
    };
    let names: Vec<String> = r.all("name").map(str::to_string).collect();
    if names.is_empty() {
        return text(400, "required query parameter 'name' not set");
    }
    if let Some(resp) = super::route::check_dc(sh, r) {
        return resp;
    }
    for n in &names {
        if let Some(resp) = acl_check(sh, r, "intentions:read", Some(n)) {
            return resp;
        }
    }
    let (min, wait) = match blocking_params(r) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let idx = block(sh, min, wait, |st| st.intentions_index).await;
    let st = sh.lock();
    let mut out = serde_json::Map::new();
    for n in names {
        let list: Vec<Value> = st.intentions_matching(by_source, &n).iter().map(intention_json).collect();
        out.insert(n, Value::Array(list));
    }
    json(&out, Some(idx))
}

/// Legacy `POST /v1/connect/intentions` with `SourceName`/`DestinationName` in the body.
fn create(sh: &Arc<Shared>, r: &Req) -> Resp {
    let names = match decode(&r.body, &schemas::INTENTION) {
        Ok(o) => (o.str("SourceName"), o.str("DestinationName")),
        Err(e) => return text(400, format!("Request decode failed: {e}")),
    };
    let w = match intention_write(&r.body) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    if names.0.is_empty() || names.1.is_empty() {
        return text(400, "Invalid Intention: SourceName and DestinationName must be set");
    }
    if let Some(resp) = acl_check(sh, r, "intentions:write", Some(&names.1)) {
        return resp;
    }
    if sh.lock().intentions.contains_key(&names) {
        return text(500, format!("duplicate intention found: {} => {}", names.0, names.1));
    }
    let id = sh.write_intention(&names.0, &names.1, w);
    json(&json!({"ID": id}), None)
}

/// Legacy `GET`/`PUT`/`DELETE /v1/connect/intentions/<id>`.
pub(super) fn intention_by_id(sh: &Arc<Shared>, r: &Req, id: &str) -> Resp {
    let found = sh.lock().intentions.values().find(|s| s.ixn.id == id).cloned();
    let Some(found) = found else {
        return text(404, "Intention not found");
    };
    let dest = found.ixn.destination_name.clone();
    let perm = if r.method == Method::GET { "intentions:read" } else { "intentions:write" };
    if let Some(resp) = acl_check(sh, r, perm, Some(&dest)) {
        return resp;
    }
    match r.method {
        Method::GET => json(&intention_json(&found), Some(sh.lock().intentions_index)),
        Method::DELETE => {
            sh.delete_intention(&found.ixn.source_name, &dest);
            json(&true, None)
        }
        _ => match intention_write(&r.body) {
            Ok(w) => {
                sh.write_intention(&found.ixn.source_name, &dest, w);
                json(&true, None)
            }
            Err(resp) => resp,
        },
    }
}
