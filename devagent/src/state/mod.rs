//! Shared agent state: CA, cached leaves, intentions, the local catalog (services and checks), faults, the
//! raft-like index and the wake-up channel for blocking queries. One concern per file:
//!
//! - mod.rs: the state, the shared handle, the index and wake-ups, background tasks.
//! - model.rs: services and checks as the agent stores them.
//! - catalog.rs: registering services and checks, TTL and TCP checks, maintenance mode.
//! - leaves.rs: leaf certificates, renewal and CA rotation.
//! - intentions.rs: the intention store and Consul's precedence order.

mod catalog;
pub mod intentions;
mod leaves;
pub mod model;

pub use intentions::{intention_string, StoredIntention};
pub use model::{Check, Service};

use super::ca::ConnectCa;
use super::util;
use super::{DevAgentConfig, Fault, FaultEndpoint, FaultKind};
use crate::error::Result;
use consulnative_core::api::wire::LeafCert;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// A leaf the agent has cached for the leaf endpoint.
pub struct CachedLeaf {
    /// The leaf as the endpoint answers it.
    pub cert: LeafCert,
    /// ID of the root that signed it.
    pub root_id: String,
    /// When it expires; an expired leaf is reissued on the next request.
    pub not_after: SystemTime,
    /// When it was issued, for the `Age` header.
    pub issued_at: Instant,
}

/// Everything the agent knows, behind one mutex.
pub struct State {
    /// The raft-like index, bumped by every change.
    pub index: u64,
    /// The Connect CA.
    pub ca: ConnectCa,
    /// Leaf TTL (the configuration's, until `PUT /v1/connect/ca/configuration` sets `LeafCertTTL`).
    pub leaf_ttl: Duration,
    /// Cached leaves by service name.
    pub leaves: HashMap<String, CachedLeaf>,
    /// Intentions by (source, destination).
    pub intentions: BTreeMap<(String, String), StoredIntention>,
    /// The index of the last intention change.
    pub intentions_index: u64,
    /// Registered services by ID.
    pub services: BTreeMap<String, Service>,
    /// Checks by check ID (service checks and node checks).
    pub checks: BTreeMap<String, Check>,
    /// The index of the last catalog or check change.
    pub catalog_index: u64,
    /// (roots index, when it was first served) for `X-Cache`/`Age`.
    pub roots_cached: Option<(u64, Instant)>,
    /// Per authorize target: (intentions index, when first served).
    pub authz_cached: HashMap<String, (u64, Instant)>,
    /// Injected faults, in the order they were set.
    pub faults: Vec<Fault>,
}

impl State {
    /// Bump and return the index.
    pub fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Bump the index for a catalog change and return it.
    pub fn catalog_changed(&mut self) -> u64 {
        let idx = self.next_index();
        self.catalog_index = idx;
        idx
    }

    /// The faults that apply to `ep`, in the order they were set.
    pub fn faults_for(&self, ep: FaultEndpoint) -> Vec<FaultKind> {
        self.faults
            .iter()
            .filter(|f| f.endpoint == ep || f.endpoint == FaultEndpoint::All)
            .map(|f| f.kind.clone())
            .collect()
    }
}

/// The state shared by the HTTP handlers and background tasks, with the wake-up channel of blocking queries.
pub struct Shared {
    /// The configuration the agent started with.
    pub cfg: DevAgentConfig,
    /// A random node ID.
    pub node_id: String,
    /// When the agent started (the `BuildDate` stand-in and the nodes' creation).
    pub started: SystemTime,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
}

impl Shared {
    /// A fresh agent state with a new CA.
    pub fn new(cfg: DevAgentConfig) -> Result<Shared> {
        // Start the index above 1 like a freshly bootstrapped server, so a backwards index is observable.
        let index = 10;
        let ca = ConnectCa::new(index)?;
        let state = State {
            index,
            ca,
            leaf_ttl: cfg.leaf_ttl,
            leaves: HashMap::new(),
            intentions: BTreeMap::new(),
            intentions_index: index,
            services: BTreeMap::new(),
            checks: BTreeMap::new(),
            catalog_index: index,
            roots_cached: None,
            authz_cached: HashMap::new(),
            faults: Vec::new(),
        };
        let (changed, _) = watch::channel(0);
        Ok(Shared {
            cfg,
            node_id: util::uuid4(),
            started: SystemTime::now(),
            state: Mutex::new(state),
            changed,
            runtime: Mutex::new(None),
        })
    }

    /// The state, even if a panicking thread poisoned the mutex.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wake every blocked query so it re-reads its index.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver woken by every [`Shared::notify`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Set (or clear, on stop) the runtime background tasks run on.
    pub fn set_runtime(&self, handle: Option<tokio::runtime::Handle>) {
        *self.runtime.lock().unwrap_or_else(|e| e.into_inner()) = handle;
    }

    /// Spawn on the agent's runtime; `None` once it has stopped.
    pub fn spawn<F>(&self, fut: F) -> Option<tokio::task::AbortHandle>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let rt = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        Some(rt.spawn(fut).abort_handle())
    }
}
