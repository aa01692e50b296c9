//! The intention store: create, replace, delete, and the order Consul evaluates intentions in.

use super::{Shared, State};
use crate::util;
use consulnative_core::api::wire::Intention;
use std::collections::BTreeMap;

/// An intention with what the core's [`Intention`] type does not carry.
#[derive(Clone)]
pub struct StoredIntention {
    /// The intention as `GET /v1/connect/intentions/exact` answers it.
    pub ixn: Intention,
    /// `Meta`.
    pub meta: BTreeMap<String, String>,
    /// L7 `Permissions` (raw JSON), when the intention has them instead of an action.
    pub permissions: Option<serde_json::Value>,
    /// RFC 3339 creation and update times.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
}

/// Consul CE precedence: exact→exact 9, `*`→exact 8, exact→`*` 6, `*`→`*` 5.
pub fn precedence(source: &str, destination: &str) -> u32 {
    match (source == "*", destination == "*") {
        (false, false) => 9,
        (true, false) => 8,
        (false, true) => 6,
        (true, true) => 5,
    }
}

/// `default/web => default/db (Precedence: 9, Action: ALLOW)`.
pub fn intention_string(ixn: &Intention) -> String {
    format!(
        "{}/{} => {}/{} (Precedence: {}, Action: {})",
        ixn.source_ns,
        ixn.source_name,
        ixn.destination_ns,
        ixn.destination_name,
        ixn.precedence,
        ixn.action.to_uppercase()
    )
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    consulnative_core::api::wire::rfc3339(secs as i64)
}

impl State {
    /// The intention that decides `default/<source> => default/<target>`, in Consul's precedence order.
    pub fn match_intention(&self, source_ns: &str, source: &str, target: &str) -> Option<&StoredIntention> {
        let src_exact = if source_ns == "default" { Some(source) } else { None };
        let mut candidates: Vec<(&str, &str)> = Vec::new();
        for dst in [target, "*"] {
            if let Some(s) = src_exact {
                candidates.push((s, dst));
            }
            candidates.push(("*", dst));
        }
        candidates.into_iter().find_map(|(s, d)| self.intentions.get(&(s.to_string(), d.to_string())))
    }

    /// Every intention matching `name` on the `by` side (`source` or `destination`), in evaluation order:
    /// precedence, highest first, then source and destination names (Consul's `IntentionMatch` sorting
    /// [agent/structs/intention.go `IntentionPrecedenceSorter`]).
    pub fn intentions_matching(&self, by_source: bool, name: &str) -> Vec<StoredIntention> {
        let mut out: Vec<StoredIntention> = self
            .intentions
            .values()
            .filter(|i| {
                let side = if by_source { &i.ixn.source_name } else { &i.ixn.destination_name };
                side == name || side == "*"
            })
            .cloned()
            .collect();
        sort_by_precedence(&mut out);
        out
    }
}

/// Consul's intention order: precedence descending, then names ascending.
pub fn sort_by_precedence(v: &mut [StoredIntention]) {
    v.sort_by(|a, b| {
        b.ixn
            .precedence
            .cmp(&a.ixn.precedence)
            .then_with(|| a.ixn.source_name.cmp(&b.ixn.source_name))
            .then_with(|| a.ixn.destination_name.cmp(&b.ixn.destination_name))
    });
}

/// What an intention write sets besides its two names.
#[derive(Default)]
pub struct IntentionWrite {
    /// `allow`/`deny`, empty with permissions.
    pub action: String,
    /// Description.
    pub description: String,
    /// Meta.
    pub meta: BTreeMap<String, String>,
    /// L7 permissions.
    pub permissions: Option<serde_json::Value>,
}

impl Shared {
    /// Create or replace the intention `source => destination`; returns its ID.
    pub fn write_intention(&self, source: &str, destination: &str, w: IntentionWrite) -> String {
        let mut st = self.lock();
        let idx = st.next_index();
        let key = (source.to_string(), destination.to_string());
        let now = now_rfc3339();
        let stored = st.intentions.entry(key).or_insert_with(|| StoredIntention {
            ixn: Intention {
                id: util::uuid4(),
                source_name: source.to_string(),
                destination_name: destination.to_string(),
                source_ns: "default".to_string(),
                destination_ns: "default".to_string(),
                source_type: "consul".to_string(),
                action: String::new(),
                precedence: precedence(source, destination),
                description: String::new(),
                create_index: idx,
                modify_index: idx,
            },
            meta: BTreeMap::new(),
            permissions: None,
            created_at: now.clone(),
            updated_at: now.clone(),
        });
        stored.ixn.action = w.action;
        stored.ixn.description = w.description;
        stored.ixn.modify_index = idx;
        stored.meta = w.meta;
        stored.permissions = w.permissions;
        stored.updated_at = now;
        let id = stored.ixn.id.clone();
        st.intentions_index = idx;
        drop(st);
        self.notify();
        id
    }

    /// Remove the intention `source => destination` if present.
    pub fn delete_intention(&self, source: &str, destination: &str) {
        let mut st = self.lock();
        if st.intentions.remove(&(source.to_string(), destination.to_string())).is_some() {
            let idx = st.next_index();
            st.intentions_index = idx;
        }
        drop(st);
        self.notify();
    }
}
