//! Shared agent state: CA, cached leaves, intentions, the local catalog with checks, faults, the raft-like index
//! and the wake-up channel for blocking queries.

use super::ca::ConnectCa;
use super::util;
use super::{DevAgentConfig, Fault, FaultEndpoint, FaultKind};
use crate::error::Result;
use consulnative_core::api::wire::{AgentService, HealthCheck, HealthEntry, Intention, LeafCert, Node};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
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

/// A service's health check.
pub struct CheckEntry {
    /// The check as health queries return it.
    pub hc: HealthCheck,
    /// The TTL of a TTL check; `None` for a TCP check.
    pub ttl: Option<Duration>,
    /// Bumped on every TTL pass, so a stale expiry timer does nothing.
    pub generation: u64,
}

/// A registered service. Dropping it stops its check tasks.
pub struct ServiceEntry {
    /// The service as the catalog returns it.
    pub svc: AgentService,
    /// Its checks.
    pub checks: Vec<CheckEntry>,
    /// TCP probes and TTL expiry timers.
    pub tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for ServiceEntry {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Everything the agent knows, behind one mutex.
pub struct State {
    /// The raft-like index, bumped by every change.
    pub index: u64,
    /// The Connect CA.
    pub ca: ConnectCa,
    /// Cached leaves by service name.
    pub leaves: HashMap<String, CachedLeaf>,
    /// Intentions by (source, destination).
    pub intentions: BTreeMap<(String, String), Intention>,
    /// The index of the last intention change.
    pub intentions_index: u64,
    /// Registered services by ID.
    pub services: BTreeMap<String, ServiceEntry>,
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

    /// The faults that apply to `ep`, in the order they were set.
    pub fn faults_for(&self, ep: FaultEndpoint) -> Vec<FaultKind> {
        self.faults
            .iter()
            .filter(|f| f.endpoint == ep || f.endpoint == FaultEndpoint::All)
            .map(|f| f.kind.clone())
            .collect()
    }

    /// The intention that decides `default/<source> => default/<target>`, in Consul's precedence order.
    pub fn match_intention(&self, source_ns: &str, source: &str, target: &str) -> Option<&Intention> {
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

/// The state shared by the HTTP handlers and background tasks, with the wake-up channel of blocking queries.
pub struct Shared {
    /// The configuration the agent started with.
    pub cfg: DevAgentConfig,
    /// A random node ID.
    pub node_id: String,
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
            leaves: HashMap::new(),
            intentions: BTreeMap::new(),
            intentions_index: index,
            services: BTreeMap::new(),
            catalog_index: index,
            roots_cached: None,
            authz_cached: HashMap::new(),
            faults: Vec::new(),
        };
        let (changed, _) = watch::channel(0);
        Ok(Shared { cfg, node_id: util::uuid4(), state: Mutex::new(state), changed, runtime: Mutex::new(None) })
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

    // -----------------------------------------------------------------------------------------------------------
    // Intentions

    /// Create or replace the intention `source => destination`.
    pub fn set_intention(&self, source: &str, destination: &str, allow: bool) {
        let mut st = self.lock();
        let idx = st.next_index();
        let action = if allow { "allow" } else { "deny" }.to_string();
        let key = (source.to_string(), destination.to_string());
        let ixn = st.intentions.entry(key).or_insert_with(|| Intention {
            id: String::new(),
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
        });
        ixn.action = action;
        ixn.modify_index = idx;
        st.intentions_index = idx;
        drop(st);
        self.notify();
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

    // -----------------------------------------------------------------------------------------------------------
    // Leaves

    /// Validity window of a new cached leaf: valid from `now − min(60 s, TTL/10)` for the TTL.
    fn leaf_window(&self) -> (SystemTime, SystemTime) {
        let ttl = self.cfg.leaf_ttl.max(Duration::from_secs(1));
        let nb = SystemTime::now() - (ttl / 10).min(Duration::from_secs(60));
        (nb, nb + ttl)
    }

    /// Issue (or reissue) the cached leaf for `service` and schedule its renewal. Call `notify` afterwards.
    pub fn reissue_leaf_locked(self: &Arc<Self>, st: &mut State, service: &str) -> Result<LeafCert> {
        let (nb, na) = self.leaf_window();
        let idx = st.next_index();
        let dc = self.cfg.datacenter.clone();
        let cert = st.ca.sign_leaf(service, &dc, nb, na, idx)?;
        let root_id = st.ca.active().json.id.clone();
        st.leaves.insert(
            service.to_string(),
            CachedLeaf { cert: cert.clone(), root_id, not_after: na, issued_at: Instant::now() },
        );
        // Renew at a random point between 60 % and 90 % of the lifetime, like Consul's agent cache.
        let renew_at = nb + (na.duration_since(nb).unwrap_or_default()).mul_f64(0.6 + 0.3 * fastrand::f64());
        let delay = renew_at.duration_since(SystemTime::now()).unwrap_or_default().max(Duration::from_millis(200));
        self.schedule_renewal(service.to_string(), cert.serial_number.clone(), delay);
        Ok(cert)
    }

    fn schedule_renewal(self: &Arc<Self>, service: String, serial: String, delay: Duration) {
        let weak: Weak<Shared> = Arc::downgrade(self);
        self.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(sh) = weak.upgrade() else { return };
            let mut st = sh.lock();
            let current = st.leaves.get(&service).map(|l| l.cert.serial_number == serial).unwrap_or(false);
            if current {
                let _ = sh.reissue_leaf_locked(&mut st, &service);
                drop(st);
                sh.notify();
            }
        });
    }

    /// The cached leaf for `service`, issuing a new one when absent, expired or signed by an inactive root.
    /// Returns (leaf, cache hit, age).
    pub fn leaf(self: &Arc<Self>, service: &str) -> Result<(LeafCert, bool, Duration)> {
        let mut st = self.lock();
        let active = st.ca.active().json.id.clone();
        if let Some(l) = st.leaves.get(service) {
            if l.root_id == active && SystemTime::now() < l.not_after {
                return Ok((l.cert.clone(), true, l.issued_at.elapsed()));
            }
        }
        let cert = self.reissue_leaf_locked(&mut st, service)?;
        drop(st);
        self.notify();
        Ok((cert, false, Duration::ZERO))
    }

    /// Sign a leaf for `service` with the active root over any window; not cached, not renewed.
    pub fn issue_adhoc_leaf(&self, service: &str, not_before: SystemTime, not_after: SystemTime) -> Result<LeafCert> {
        let mut st = self.lock();
        let idx = st.next_index();
        let dc = self.cfg.datacenter.clone();
        st.ca.sign_leaf(service, &dc, not_before, not_after, idx)
    }

    /// Rotate the CA root and reissue every cached leaf with the new root.
    pub fn rotate_ca(self: &Arc<Self>) -> Result<()> {
        let mut st = self.lock();
        let idx = st.next_index();
        st.ca.rotate(idx)?;
        let services: Vec<String> = st.leaves.keys().cloned().collect();
        let mut result = Ok(());
        for s in services {
            if let Err(e) = self.reissue_leaf_locked(&mut st, &s) {
                result = Err(e);
            }
        }
        drop(st);
        self.notify();
        result
    }

    // -----------------------------------------------------------------------------------------------------------
    // Catalog and checks

    /// This agent's node.
    pub fn node(&self) -> Node {
        Node {
            id: self.node_id.clone(),
            node: self.cfg.node_name.clone(),
            address: "127.0.0.1".to_string(),
            datacenter: self.cfg.datacenter.clone(),
        }
    }

    /// Insert or replace a service (aborting the old one's check tasks), then start its check tasks.
    pub fn register(self: &Arc<Self>, entry: ServiceEntry, tcp_checks: Vec<(String, String, Duration, Duration)>) {
        let id = entry.svc.id.clone();
        let ttl_checks: Vec<(String, Duration)> =
            entry.checks.iter().filter_map(|c| c.ttl.map(|t| (c.hc.check_id.clone(), t))).collect();
        let mut st = self.lock();
        st.services.insert(id.clone(), entry);
        let idx = st.next_index();
        st.catalog_index = idx;
        let mut tasks = Vec::new();
        for (check_id, ttl) in ttl_checks {
            // A TTL check that is never passed goes (stays) critical when the TTL runs out.
            if let Some(t) = self.ttl_expiry(&id, &check_id, 0, ttl) {
                tasks.push(t);
            }
        }
        for (check_id, addr, interval, timeout) in tcp_checks {
            let weak = Arc::downgrade(self);
            let sid = id.clone();
            let t = self.spawn(async move {
                loop {
                    let res = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.as_str())).await;
                    let (status, output) = match res {
                        Ok(Ok(_)) => ("passing", format!("TCP connect {addr}: Success")),
                        Ok(Err(e)) => ("critical", format!("dial tcp {addr}: {e}")),
                        Err(_) => ("critical", format!("dial tcp {addr}: i/o timeout")),
                    };
                    {
                        let Some(sh) = weak.upgrade() else { return };
                        sh.set_check_status(&sid, &check_id, status, &output);
                    }
                    tokio::time::sleep(interval).await;
                }
            });
            tasks.extend(t);
        }
        if let Some(e) = st.services.get_mut(&id) {
            e.tasks.extend(tasks);
        }
        drop(st);
        self.notify();
    }

    fn ttl_expiry(
        self: &Arc<Self>,
        service_id: &str,
        check_id: &str,
        generation: u64,
        ttl: Duration,
    ) -> Option<tokio::task::AbortHandle> {
        let weak = Arc::downgrade(self);
        let (sid, cid) = (service_id.to_string(), check_id.to_string());
        self.spawn(async move {
            tokio::time::sleep(ttl).await;
            let Some(sh) = weak.upgrade() else { return };
            let same = {
                let st = sh.lock();
                st.services
                    .get(&sid)
                    .and_then(|s| s.checks.iter().find(|c| c.hc.check_id == cid))
                    .map(|c| c.generation == generation)
                    .unwrap_or(false)
            };
            if same {
                sh.set_check_status(&sid, &cid, "critical", "TTL expired");
            }
        })
    }

    /// Set a check's status; bumps the catalog index and wakes watchers only when something changed.
    pub fn set_check_status(&self, service_id: &str, check_id: &str, status: &str, output: &str) {
        let mut st = self.lock();
        let changed =
            match st.services.get_mut(service_id).and_then(|s| s.checks.iter_mut().find(|c| c.hc.check_id == check_id))
            {
                Some(c) if c.hc.status != status || c.hc.output != output => {
                    c.hc.status = status.to_string();
                    c.hc.output = output.to_string();
                    true
                }
                _ => false,
            };
        if changed {
            let idx = st.next_index();
            st.catalog_index = idx;
            drop(st);
            self.notify();
        }
    }

    /// Update a TTL check (`pass`/`warn`/`fail`). `Err` = unknown check or not a TTL check (Consul's 404 text).
    pub fn update_ttl_check(
        self: &Arc<Self>,
        check_id: &str,
        status: &str,
        note: &str,
    ) -> std::result::Result<(), String> {
        let mut st = self.lock();
        let found = st
            .services
            .iter_mut()
            .find_map(|(sid, s)| s.checks.iter_mut().find(|c| c.hc.check_id == check_id).map(|c| (sid.clone(), c)));
        let Some((sid, c)) = found else {
            return Err(format!(
                "Unknown check ID {check_id:?}. Ensure that the check ID is passed, not the check name."
            ));
        };
        let Some(ttl) = c.ttl else {
            return Err(format!("CheckID {check_id:?} does not have associated TTL"));
        };
        c.generation += 1;
        let gen = c.generation;
        let changed = c.hc.status != status || c.hc.output != note;
        c.hc.status = status.to_string();
        c.hc.output = note.to_string();
        if let Some(t) = self.ttl_expiry(&sid, check_id, gen, ttl) {
            if let Some(s) = st.services.get_mut(&sid) {
                s.tasks.retain(|t| !t.is_finished());
                s.tasks.push(t);
            }
        }
        if changed {
            let idx = st.next_index();
            st.catalog_index = idx;
        }
        drop(st);
        if changed {
            self.notify();
        }
        Ok(())
    }

    /// Service ID and name of the service owning a check, if any.
    pub fn check_owner(&self, check_id: &str) -> Option<(String, String)> {
        let st = self.lock();
        st.services
            .values()
            .find(|s| s.checks.iter().any(|c| c.hc.check_id == check_id))
            .map(|s| (s.svc.id.clone(), s.svc.service.clone()))
    }

    /// Entries for `/v1/health/connect/<name>` (`connect`) or `/v1/health/service/<name>`.
    pub fn health(&self, st: &State, name: &str, connect: bool, passing_only: bool) -> Vec<HealthEntry> {
        let node = self.node();
        let serf = HealthCheck {
            node: node.node.clone(),
            check_id: "serfHealth".to_string(),
            name: "Serf Health Status".to_string(),
            status: "passing".to_string(),
            output: "Agent alive and reachable".to_string(),
            service_id: String::new(),
            service_name: String::new(),
        };
        st.services
            .values()
            .filter(|e| {
                let s = &e.svc;
                if connect {
                    (s.service == name && s.connect.as_ref().map(|c| c.native).unwrap_or(false))
                        || (s.kind == "connect-proxy"
                            && s.proxy.as_ref().map(|p| p.destination_service_name == name).unwrap_or(false))
                } else {
                    s.service == name
                }
            })
            .map(|e| {
                let mut checks = vec![serf.clone()];
                checks.extend(e.checks.iter().map(|c| c.hc.clone()));
                HealthEntry { node: node.clone(), service: e.svc.clone(), checks }
            })
            .filter(|h| !passing_only || h.checks.iter().all(|c| c.status == "passing"))
            .collect()
    }
}
