//! Test controls under `/_devagent/` (not Consul API): faults, CA rotation, ad-hoc leaves.

use super::respond::{json, method_not_allowed, not_found, text, Resp};
use super::Req;
use crate::state::Shared;
use crate::util::{self, parse_go_duration, percent_decode};
use crate::{Fault, FaultEndpoint, FaultKind};
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;

/// Answers `/_devagent/<rest>`.
pub(super) async fn controls(sh: &Arc<Shared>, r: &Req, rest: &str) -> Resp {
    match rest {
        "fault" => match r.method {
            Method::DELETE => {
                sh.lock().faults.clear();
                sh.notify();
                json(&true, None)
            }
            Method::PUT | Method::POST => {
                let endpoint = match r.q("endpoint").unwrap_or("all") {
                    "all" | "" => FaultEndpoint::All,
                    "roots" => FaultEndpoint::Roots,
                    "leaf" => FaultEndpoint::Leaf,
                    "authorize" => FaultEndpoint::Authorize,
                    other => return text(400, format!("unknown fault endpoint {other:?} (all|roots|leaf|authorize)")),
                };
                let mut kinds = Vec::new();
                if let Some(s) = r.q("status") {
                    match s.parse::<u16>() {
                        Ok(code) if (100..=599).contains(&code) => {
                            kinds.push(FaultKind::Status(code, r.q("body").unwrap_or("injected fault").to_string()))
                        }
                        _ => return text(400, format!("invalid status {s:?}")),
                    }
                }
                if r.flag("malformed") {
                    kinds.push(FaultKind::MalformedJson);
                }
                if let Some(d) = r.q("delay") {
                    match parse_go_duration(d) {
                        Some(d) => kinds.push(FaultKind::Delay(d)),
                        None => return text(400, format!("invalid delay {d:?}")),
                    }
                }
                if r.flag("reset_index") {
                    kinds.push(FaultKind::BackwardsIndex);
                }
                if kinds.is_empty() {
                    return text(400, "no fault given: status=, malformed=1, delay= or reset_index=1");
                }
                let mut st = sh.lock();
                for kind in kinds {
                    st.faults.push(Fault { endpoint, kind });
                }
                drop(st);
                sh.notify();
                json(&true, None)
            }
            _ => method_not_allowed(&r.method, &["PUT", "DELETE"]),
        },
        "rotate-ca" => {
            if r.method != Method::PUT && r.method != Method::POST {
                return method_not_allowed(&r.method, &["PUT"]);
            }
            match sh.rotate_ca() {
                Ok(()) => json(&true, None),
                Err(e) => text(500, e.message().to_string()),
            }
        }
        _ => {
            if let Some(svc) = rest.strip_prefix("issue-leaf/") {
                // GET /_devagent/issue-leaf/<svc>?not_before=<unix>&not_after=<unix>
                let svc = percent_decode(svc, false);
                let now = std::time::SystemTime::now();
                let at = |key: &str, default: std::time::SystemTime| {
                    r.q(key).and_then(|v| v.parse::<i64>().ok()).map_or(Some(default), util::from_unix_secs)
                };
                let nb = at("not_before", now - Duration::from_secs(60));
                let na = at("not_after", now + Duration::from_secs(3600));
                let (Some(nb), Some(na)) = (nb, na) else { return text(400, "leaf time out of range") };
                return match sh.issue_adhoc_leaf(&svc, nb, na) {
                    Ok(cert) => json(&cert, None),
                    Err(e) => text(400, e.message().to_string()),
                };
            }
            not_found()
        }
    }
}
