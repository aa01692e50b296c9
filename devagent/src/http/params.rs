//! The query parameters Consul's list endpoints share (`tag`, `passing`, `dc`, `near`, `node-meta`, `filter`,
//! consistency modes). Parameters Consul knows that the dev agent cannot honour answer 400 naming them, never a
//! silent ignore; parameters Consul itself ignores are ignored here too.

use super::respond::{text, Resp};
use super::route::check_dc;
use super::Req;
use crate::filter::Filter;
use crate::state::Shared;
use serde_json::Value;

/// Consul parameters the dev agent does not implement, with why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("peer", "cluster peering is not supported by the dev agent"),
    ("merge-central-config", "central service configuration (config entries) is not supported by the dev agent"),
    ("sameness-group", "sameness groups are a Consul Enterprise feature"),
    ("segment", "network segments are a Consul Enterprise feature"),
];

/// A list query's parameters, validated.
pub(super) struct ListQuery {
    /// `tag` (repeatable): every one must be on the service.
    pub tags: Vec<String>,
    /// `passing`: only entries whose every check passes.
    pub passing: bool,
    /// `node-meta` (repeatable) `key:value` pairs the node must have.
    pub node_meta: Vec<(String, String)>,
    /// `filter`.
    pub filter: Option<Filter>,
}

/// Validate a list query whose elements look like `template` (for `filter` selectors). `Err` is the answer.
#[allow(clippy::result_large_err)] // the Err is a ready answer; not worth boxing
pub(super) fn list_query(sh: &Shared, r: &Req, template: &Value) -> Result<ListQuery, Resp> {
    if let Some(resp) = unsupported(r) {
        return Err(resp);
    }
    if let Some(resp) = check_dc(sh, r) {
        return Err(resp);
    }
    let filter = match r.q("filter").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(expr) => Some(Filter::new(expr, template).map_err(|e| text(400, e))?),
    };
    let node_meta = r
        .all("node-meta")
        .map(|v| match v.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (v.to_string(), String::new()),
        })
        .collect();
    Ok(ListQuery { tags: r.all("tag").map(str::to_string).collect(), passing: r.flag("passing"), node_meta, filter })
}

/// `Some(400)` for a parameter the dev agent cannot honour.
pub(super) fn unsupported(r: &Req) -> Option<Resp> {
    UNSUPPORTED
        .iter()
        .find(|(p, _)| r.q(p).is_some_and(|v| !v.is_empty()))
        .map(|(p, why)| text(400, format!("Invalid query parameter: {p:?} - {why}")))
}

impl ListQuery {
    /// Whether the node's meta (`node_meta`, a JSON object) has every requested pair.
    pub fn node_matches(&self, node_meta: &Value) -> bool {
        self.node_meta.iter().all(|(k, v)| node_meta.get(k).and_then(Value::as_str) == Some(v.as_str()))
    }

    /// Whether a service's tags include every requested tag (Consul matches tags case-sensitively).
    pub fn tags_match(&self, tags: &[String]) -> bool {
        self.tags.iter().all(|t| tags.contains(t))
    }

    /// Whether an element passes the filter.
    pub fn passes(&self, v: &Value) -> bool {
        self.filter.as_ref().map(|f| f.matches(v)).unwrap_or(true)
    }
}
