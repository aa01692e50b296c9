//! Injected faults (`PUT /_devagent/fault`), shared by the roots, leaf and authorize endpoints: delays, error
//! statuses, malformed or huge bodies, bad indexes, and the hostile leaves a broken or compromised agent could
//! serve (another service's, a foreign CA's, one outside its validity).

use super::respond::{json, text, Resp};
use crate::ca::Authority;
use crate::error::{Error, Result};
use crate::state::Shared;
use crate::util::from_unix_secs;
use crate::{FaultEndpoint, FaultKind};
use consulnative_core::api::wire::LeafCert;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What the faults set for one endpoint do to one answer.
#[derive(Default)]
pub(super) struct Applied {
    /// A ready replacement answer (a status, malformed JSON, a huge body).
    pub answer: Option<Resp>,
    /// Blocking queries answer at once with index 1.
    pub backwards: bool,
    /// Serve this hostile leaf instead of the right one.
    pub leaf: Option<FaultKind>,
    /// Send this text as `X-Consul-Index`.
    pub index: Option<String>,
}

impl Applied {
    /// `r` with the injected `X-Consul-Index`, if any (only on answers that carry one).
    pub fn finish(&self, mut r: Resp) -> Resp {
        if let Some(index) = &self.index {
            if r.headers().contains_key("X-Consul-Index") {
                // Checked when the fault was set: a header value.
                if let Ok(v) = HeaderValue::from_str(index) {
                    r.headers_mut().insert("X-Consul-Index", v);
                }
            }
        }
        r
    }
}

/// Apply injected faults: delays first, then a replacement answer if any, else what to change in the answer.
pub(super) async fn apply_faults(sh: &Shared, ep: FaultEndpoint) -> Applied {
    let kinds = sh.lock().faults_for(ep);
    for k in &kinds {
        if let FaultKind::Delay(d) = k {
            tokio::time::sleep(*d).await;
        }
    }
    let mut applied = Applied::default();
    for k in kinds {
        match k {
            FaultKind::Status(code, body) => {
                applied.answer = Some(text(code, body));
                break;
            }
            FaultKind::MalformedJson => {
                let mut r = Response::new(Full::new(Bytes::from_static(b"{\"Roots\":[{\"ID\":\"5e:2b")));
                r.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static header"));
                r.headers_mut().insert("X-Consul-Index", 1u64.into());
                applied.answer = Some(r);
                break;
            }
            FaultKind::HugeBody(size) => {
                let mut r = Response::new(Full::new(huge_body(size)));
                r.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static header"));
                r.headers_mut().insert("X-Consul-Index", 1u64.into());
                applied.answer = Some(r);
                break;
            }
            FaultKind::BackwardsIndex => applied.backwards = true,
            FaultKind::Index(text) => applied.index = Some(text),
            FaultKind::Delay(_) => {}
            leaf @ (FaultKind::LeafFor(_)
            | FaultKind::LeafUri(_)
            | FaultKind::ForeignCa
            | FaultKind::LeafWindow(..)) => {
                if ep != FaultEndpoint::Authorize && ep != FaultEndpoint::Roots {
                    applied.leaf = Some(leaf);
                }
            }
        }
    }
    applied
}

/// `"  …  "`: a JSON string of `size` bytes (at least 2), built once per size and shared by every answer.
fn huge_body(size: u64) -> Bytes {
    static LAST: Mutex<Option<(u64, Bytes)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((s, bytes)) = last.as_ref() {
        if *s == size {
            return bytes.clone();
        }
    }
    let len = usize::try_from(size.max(2)).unwrap_or(usize::MAX);
    let mut body = vec![b' '; len];
    body[0] = b'"';
    body[len - 1] = b'"';
    let bytes = Bytes::from(body);
    *last = Some((size, bytes.clone()));
    bytes
}

/// The leaf answer a leaf fault serves in place of `service`'s, at the agent's current index.
pub(super) fn hostile_leaf(sh: &Arc<Shared>, service: &str, fault: &FaultKind) -> Resp {
    let index = sh.lock().index;
    match fault_leaf(sh, service, fault) {
        Ok(cert) => json(&cert, Some(index)),
        Err(e) => text(e.http_status(), e.message()),
    }
}

fn fault_leaf(sh: &Arc<Shared>, service: &str, fault: &FaultKind) -> Result<LeafCert> {
    let now = SystemTime::now();
    let (nb, na) = (now - Duration::from_secs(60), now + Duration::from_secs(3600));
    match fault {
        FaultKind::LeafFor(other) => sh.leaf(other).map(|(cert, _, _)| cert),
        FaultKind::LeafUri(uri) => sh.lock().ca.active().authority.sign_leaf(uri, nb, na),
        FaultKind::ForeignCa => {
            let st = sh.lock();
            let uri = st.ca.service_uri(&sh.cfg.datacenter, service);
            let td = st.ca.trust_domain.clone();
            drop(st);
            with_foreign_ca(&td, |ca| ca.sign_leaf(&uri, nb, na))
        }
        FaultKind::LeafWindow(not_before, not_after) => {
            let time =
                |secs: i64| from_unix_secs(secs).ok_or_else(|| Error::invalid(format!("{secs} is out of range")));
            sh.issue_adhoc_leaf(service, time(*not_before)?, time(*not_after)?)
        }
        other => Err(Error::internal(format!("{other:?} is not a leaf fault"))),
    }
}

/// Runs `f` with a CA for `trust_domain` that no roots answer lists, made once per trust domain.
fn with_foreign_ca<T>(trust_domain: &str, f: impl FnOnce(&Authority) -> Result<T>) -> Result<T> {
    static FOREIGN: Mutex<Option<Authority>> = Mutex::new(None);
    let mut foreign = FOREIGN.lock().unwrap_or_else(|e| e.into_inner());
    if foreign.as_ref().map(|ca| ca.trust_domain != trust_domain).unwrap_or(true) {
        *foreign = Some(Authority::root(trust_domain, "Foreign CA")?);
    }
    match foreign.as_ref() {
        Some(ca) => f(ca),
        None => Err(Error::internal("foreign CA missing")),
    }
}
