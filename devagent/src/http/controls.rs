//! Test controls under `/_devagent/` (not Consul API): faults, CA rotation, ad-hoc leaves. A request these cannot
//! carry out is answered 400 with a text that says why; nothing a client sends can crash the agent.
//!
//! - `PUT /_devagent/fault?endpoint=<all|roots|leaf|authorize>&<kind>`, kinds: `status=<code>[&body=<text>]`,
//!   `malformed=1`, `delay=<Go duration>`, `reset_index=1`, `huge_body=<bytes>`, `index=<text>`, and for the leaf
//!   endpoint `leaf_for=<service>`, `leaf_uri=<URI>`, `foreign_ca=1`, `leaf_window=<not_before>,<not_after>` (Unix
//!   seconds). Several may be combined. `DELETE` clears every fault.
//! - `PUT /_devagent/rotate-ca`.
//! - `GET /_devagent/issue-leaf/<service>?not_before=<unix seconds>&not_after=<unix seconds>`.

use super::respond::{json, method_not_allowed, not_found, text, Resp};
use super::Req;
use crate::state::Shared;
use crate::util::{from_unix_secs, parse_go_duration, percent_decode};
use crate::{Fault, FaultEndpoint, FaultKind};
use hyper::Method;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The query parameters a fault may have besides `endpoint`.
const FAULT_KINDS: &str = "status=<code>[&body=<text>], malformed=1, delay=<duration>, reset_index=1, \
                           huge_body=<bytes>, index=<text>, leaf_for=<service>, leaf_uri=<URI>, foreign_ca=1 or \
                           leaf_window=<not_before>,<not_after>";

/// The largest `huge_body` (1 GiB): enough for any test, small enough not to take the agent down.
const MAX_HUGE_BODY: u64 = 1 << 30;

/// Answers `/_devagent/<rest>`.
pub(super) async fn controls(sh: &Arc<Shared>, r: &Req, rest: &str) -> Resp {
    if let Some(service) = rest.strip_prefix("issue-leaf/") {
        if r.method != Method::GET {
            return method_not_allowed(&r.method, &["GET"]);
        }
        return issue_leaf(sh, r, &percent_decode(service, false));
    }
    match rest {
        "fault" => match r.method {
            Method::DELETE => {
                sh.lock().faults.clear();
                sh.notify();
                json(&true, None)
            }
            Method::PUT | Method::POST => match parse_faults(r) {
                Ok(faults) => {
                    sh.lock().faults.extend(faults);
                    sh.notify();
                    json(&true, None)
                }
                Err(msg) => text(400, msg),
            },
            _ => method_not_allowed(&r.method, &["PUT", "DELETE"]),
        },
        "rotate-ca" => {
            if r.method != Method::PUT && r.method != Method::POST {
                return method_not_allowed(&r.method, &["PUT"]);
            }
            match sh.rotate_ca() {
                Ok(()) => json(&true, None),
                Err(e) => text(e.http_status(), e.message()),
            }
        }
        _ => not_found(),
    }
}

/// The faults a `PUT /_devagent/fault` asks for. `Err` is the 400 text.
fn parse_faults(r: &Req) -> Result<Vec<Fault>, String> {
    let endpoint = match r.q("endpoint").unwrap_or("all") {
        "all" | "" => FaultEndpoint::All,
        "roots" => FaultEndpoint::Roots,
        "leaf" => FaultEndpoint::Leaf,
        "authorize" => FaultEndpoint::Authorize,
        other => return Err(format!("unknown fault endpoint {other:?} (all|roots|leaf|authorize)")),
    };
    let mut kinds = Vec::new();
    for (key, value) in &r.query {
        match key.as_str() {
            "endpoint" | "body" => {}
            "status" => match value.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => {
                    kinds.push(FaultKind::Status(code, r.q("body").unwrap_or("injected fault").to_string()))
                }
                _ => return Err(format!("invalid status {value:?} (an HTTP status, 100 to 599)")),
            },
            "malformed" if r.flag("malformed") => kinds.push(FaultKind::MalformedJson),
            "delay" => match parse_go_duration(value) {
                Some(d) => kinds.push(FaultKind::Delay(d)),
                None => return Err(format!("invalid delay {value:?} (a Go duration such as 250ms)")),
            },
            "reset_index" if r.flag("reset_index") => kinds.push(FaultKind::BackwardsIndex),
            "foreign_ca" if r.flag("foreign_ca") => kinds.push(FaultKind::ForeignCa),
            "malformed" | "reset_index" | "foreign_ca" => {}
            "huge_body" => match value.parse::<u64>() {
                Ok(n) if n <= MAX_HUGE_BODY => kinds.push(FaultKind::HugeBody(n)),
                _ => return Err(format!("invalid huge_body {value:?} (a byte count up to {MAX_HUGE_BODY})")),
            },
            "index" => {
                if hyper::header::HeaderValue::from_str(value).is_err() {
                    return Err(format!("invalid index {value:?} (it must fit in an HTTP header)"));
                }
                kinds.push(FaultKind::Index(value.clone()))
            }
            "leaf_for" if !value.is_empty() => kinds.push(FaultKind::LeafFor(value.clone())),
            "leaf_uri" if !value.is_empty() => kinds.push(FaultKind::LeafUri(value.clone())),
            "leaf_for" | "leaf_uri" => return Err(format!("{key} needs a value")),
            "leaf_window" => match value.split_once(',').map(|(a, b)| (a.trim().parse(), b.trim().parse())) {
                Some((Ok(nb), Ok(na))) => kinds.push(FaultKind::LeafWindow(nb, na)),
                _ => return Err(format!("invalid leaf_window {value:?} (<not_before>,<not_after> in Unix seconds)")),
            },
            other => return Err(format!("unknown fault kind {other:?} (give {FAULT_KINDS})")),
        }
    }
    if kinds.is_empty() {
        return Err(format!("no fault given: give {FAULT_KINDS}"));
    }
    Ok(kinds.into_iter().map(|kind| Fault { endpoint, kind }).collect())
}

/// `GET /_devagent/issue-leaf/<service>`: a leaf signed by the active root over any window a certificate can hold
/// (default: from a minute ago for an hour).
fn issue_leaf(sh: &Arc<Shared>, r: &Req, service: &str) -> Resp {
    let now = SystemTime::now();
    let time = |key: &str, default: SystemTime| -> Result<SystemTime, String> {
        let Some(v) = r.q(key) else { return Ok(default) };
        let secs = v.parse::<i64>().map_err(|_| format!("invalid {key} {v:?} (Unix seconds)"))?;
        from_unix_secs(secs).ok_or_else(|| format!("{key} {secs} is out of range"))
    };
    let window = time("not_before", now - Duration::from_secs(60))
        .and_then(|nb| time("not_after", now + Duration::from_secs(3600)).map(|na| (nb, na)));
    let (not_before, not_after) = match window {
        Ok(w) => w,
        Err(msg) => return text(400, msg),
    };
    match sh.issue_adhoc_leaf(service, not_before, not_after) {
        Ok(cert) => json(&cert, None),
        Err(e) => text(e.http_status(), e.message()),
    }
}
