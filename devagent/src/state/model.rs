//! Services and checks as the agent keeps them: everything Consul's `NodeService` and `HealthCheck` carry that
//! the dev agent supports. The JSON shapes the endpoints answer are built from these in http/shapes.rs.

use std::collections::BTreeMap;
use std::time::Duration;

/// A tagged address (`TaggedAddresses` of a service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddress {
    /// `Address`.
    pub address: String,
    /// `Port`.
    pub port: i64,
}

/// A registered service instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    /// `Kind`: empty, or `connect-proxy`.
    pub kind: String,
    /// `ID`.
    pub id: String,
    /// `Service` (the name).
    pub name: String,
    /// `Tags`.
    pub tags: Vec<String>,
    /// `Address`; empty means the node's.
    pub address: String,
    /// `TaggedAddresses`.
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    /// `Meta`.
    pub meta: BTreeMap<String, String>,
    /// `Port`.
    pub port: i64,
    /// `SocketPath`.
    pub socket_path: String,
    /// `Weights` (passing, warning); Consul defaults them to (1, 1).
    pub weights: (i64, i64),
    /// `EnableTagOverride`.
    pub enable_tag_override: bool,
    /// `Connect.Native`.
    pub native: bool,
    /// `Proxy` of a `connect-proxy`, with Go field names as keys.
    pub proxy: Option<serde_json::Map<String, serde_json::Value>>,
    /// `Locality` (region, zone).
    pub locality: Option<(String, String)>,
    /// Raft-like indexes.
    pub create_index: u64,
    /// Raft-like indexes.
    pub modify_index: u64,
}

/// What runs a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Updated through the TTL endpoints; critical when the TTL runs out.
    Ttl(Duration),
    /// A TCP connect every interval.
    Tcp {
        /// `host:port`.
        addr: String,
        /// Time between probes.
        interval: Duration,
        /// Connect timeout.
        timeout: Duration,
    },
    /// Service maintenance mode (always critical while present).
    Maintenance,
}

impl CheckKind {
    /// The `Type` Consul reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Ttl(_) => "ttl",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Maintenance => "maintenance",
        }
    }
}

/// A check, bound to a service or to the node. Dropping it stops its task.
#[derive(Debug)]
pub struct Check {
    /// `CheckID`.
    pub id: String,
    /// `Name`.
    pub name: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    /// `Notes`.
    pub notes: String,
    /// `Output`.
    pub output: String,
    /// `ServiceID`, empty for a node check.
    pub service_id: String,
    /// `ServiceName`, empty for a node check.
    pub service_name: String,
    /// What runs it.
    pub kind: CheckKind,
    /// Raft-like indexes.
    pub create_index: u64,
    /// Raft-like indexes.
    pub modify_index: u64,
    /// Bumped on every TTL update, so a stale expiry timer does nothing.
    pub generation: u64,
    /// The TCP probe or TTL expiry timer.
    pub task: Option<tokio::task::AbortHandle>,
}

impl Drop for Check {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}
