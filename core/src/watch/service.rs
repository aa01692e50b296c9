//! One service's certificates: its leaf (own watch) and its client's shared roots. Implements
//! `tls::CertSource`, which every handshake reads, and readiness.
//!
//! A leaf answer is put in force only once it passes the checks of `validate`: this service's identity, valid
//! now, the roots' trust domain, a chain to the current roots. A leaf that arrives before the roots (or that the
//! current roots do not vouch for) is held as a candidate and checked again when the roots change.

use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::blocking::{self, StopSignal, WatchTarget, WatchTiming};
use super::roots::RootsWatch;
use super::validate::{self, ExpectedLeaf};
use crate::agent::client::AgentClient;
use crate::agent::types::LeafCert;
use crate::encoding::go_duration as fmt_duration;
use crate::error::{Code, Error, Result};
use crate::log::{info, warning};
use crate::tls::{verify_leaf, CertSource, Leaf, Roots};

/// What a change callback is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceEvent {
    /// A new leaf certificate is in force for new handshakes.
    LeafRotated,
    /// The CA roots changed.
    RootsChanged,
    /// A watch failed to reach the agent or got an error; the last good certificates stay in force.
    WatchError,
}

/// A change callback. Runs on a library watch thread: keep it short.
pub type EventCallback = Arc<dyn Fn(ServiceEvent) + Send + Sync>;

/// A readable snapshot of a service's certificate state.
#[derive(Debug, Clone, Default)]
pub struct ServiceStatus {
    /// The service name.
    pub service: String,
    /// True when the leaf and roots are present and the leaf verifies against the roots.
    pub ready: bool,
    /// Why the service is not ready, if it is not.
    pub not_ready_reason: Option<String>,
    /// The leaf's SPIFFE URI.
    pub spiffe_id: Option<String>,
    /// The leaf's colon-hex serial.
    pub leaf_serial: Option<String>,
    /// When the leaf expires, in Unix seconds.
    pub leaf_valid_before_unix: Option<u64>,
    /// The roots' trust domain.
    pub trust_domain: Option<String>,
    /// The `ActiveRootID` of the roots answer.
    pub active_root_id: Option<String>,
    /// How many root certificates are trusted.
    pub roots: usize,
    /// The last watch error, kept until a watch succeeds again.
    pub last_error: Option<String>,
}

/// A (leaf, roots) pair that passed `verify_leaf`, and when.
type Verified = (Arc<Leaf>, Arc<Roots>, Instant);

/// The current certificates of one service, kept fresh by a leaf watch and the client's roots watch.
pub struct ServiceCerts {
    name: String,
    /// The configured namespace and partition a leaf must carry, when configured.
    namespace: Option<String>,
    partition: Option<String>,
    /// The agent's address, for readiness messages.
    agent_address: String,
    leaf: RwLock<Option<Arc<Leaf>>>,
    /// A leaf that passed the checks that need no roots, waiting for roots that vouch for it. Never in force.
    candidate: Mutex<Option<Arc<Leaf>>>,
    roots: Arc<RootsWatch>,
    last_leaf_error: Mutex<Option<Error>>,
    /// The (leaf, roots) pair that last passed `verify_leaf`, and when: readiness re-verifies when either changes
    /// or a minute has passed (an intermediate may expire before the leaf), so a dial does not pay two signature
    /// checks of our own chain.
    verified: Mutex<Option<Verified>>,
    /// Bumped on every change; `wait_ready` sleeps on it.
    generation: Mutex<u64>,
    changed: Condvar,
    callbacks: Mutex<Vec<(u64, EventCallback)>>,
    next_callback_id: Mutex<u64>,
    stop: Arc<StopSignal>,
}

impl ServiceCerts {
    /// Starts the leaf watch for `name` and subscribes to the client's roots watch.
    pub fn start(
        agent: AgentClient,
        name: &str,
        roots: Arc<RootsWatch>,
        timing: WatchTiming,
    ) -> Result<Arc<ServiceCerts>> {
        let (namespace, partition) = agent.namespace_and_partition();
        let certs = Arc::new(ServiceCerts {
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
            partition: partition.map(str::to_string),
            agent_address: agent.address(),
            leaf: RwLock::new(None),
            candidate: Mutex::new(None),
            roots,
            last_leaf_error: Mutex::new(None),
            verified: Mutex::new(None),
            generation: Mutex::new(0),
            changed: Condvar::new(),
            callbacks: Mutex::new(Vec::new()),
            next_callback_id: Mutex::new(1),
            stop: StopSignal::new(),
        });
        certs.roots.subscribe(&certs);
        let target = LeafTarget(Arc::downgrade(&certs));
        let stop = certs.stop.clone();
        let service = name.to_string();
        super::spawn_watch_thread(format!("consulnative-leaf-{name}"), move || {
            blocking::run(&timing, &stop, |q| agent.leaf(&service, q), &target);
        })?;
        Ok(certs)
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Ok` when a leaf and a non-empty root set are present, and the leaf verifies against the roots and has not
    /// expired. Otherwise a `NotReady` error that says why, with the last agent error if there is one.
    pub fn readiness(&self) -> Result<(Arc<Leaf>, Arc<Roots>)> {
        let why = match (self.leaf(), self.roots()) {
            (Some(leaf), Some(roots)) => {
                let now = SystemTime::now();
                let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                let cached = verified.as_ref().is_some_and(|(l, r, at)| {
                    Arc::ptr_eq(l, &leaf) && Arc::ptr_eq(r, &roots) && at.elapsed() < Duration::from_secs(60)
                });
                drop(verified);
                if cached && leaf.valid_after <= now && now < leaf.valid_before {
                    return Ok((leaf, roots));
                }
                match verify_leaf(&leaf, &roots, now) {
                    Ok(()) => {
                        *self.verified.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((leaf.clone(), roots.clone(), Instant::now()));
                        return Ok((leaf, roots));
                    }
                    Err(e) => e.message,
                }
            }
            (None, None) => "no leaf certificate and no CA roots yet".to_string(),
            (None, Some(_)) => "no leaf certificate yet".to_string(),
            (Some(_), None) => "no CA roots yet".to_string(),
        };
        let mut message = format!("service \"{}\" is not ready: {why}", self.name);
        if let Some(e) = self.last_error() {
            message.push_str(&format!("; last agent error: {}", e.message));
        } else if let Some(waiting) = self.waiting_for() {
            message.push_str(&format!("; {waiting}"));
        }
        Err(Error::new(Code::NotReady, message))
    }

    /// With no error to report: what the watches still wait for (a first answer, or roots for a held leaf).
    fn waiting_for(&self) -> Option<String> {
        let mut unanswered = Vec::new();
        if self.roots().is_none() && self.roots.last_error().is_none() {
            unanswered.push("GET /v1/agent/connect/ca/roots".to_string());
        }
        let held = self.candidate.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        if self.leaf().is_none() && !held {
            unanswered.push(format!("GET /v1/agent/connect/ca/leaf/{}", self.name));
        }
        let mut parts = Vec::new();
        if !unanswered.is_empty() {
            parts.push(format!("the agent at {} has not answered {} yet", self.agent_address, unanswered.join(" or ")));
        }
        if held {
            parts.push("a leaf certificate arrived and waits for CA roots that vouch for it".to_string());
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn expected(&self) -> ExpectedLeaf<'_> {
        ExpectedLeaf { service: &self.name, namespace: self.namespace.as_deref(), partition: self.partition.as_deref() }
    }

    /// Puts `leaf` in force (unless it already is) and clears the leaf error. Returns true when it changed.
    fn put_in_force(&self, leaf: Arc<Leaf>) -> bool {
        *self.last_leaf_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut slot = self.leaf.write().unwrap_or_else(|e| e.into_inner());
        let same = slot.as_ref().is_some_and(|l| l.cert_pem == leaf.cert_pem && l.key_pem == leaf.key_pem);
        if !same {
            info!("leaf for \"{}\" updated: serial {}, {}", self.name, leaf.serial, leaf.uri);
            *slot = Some(leaf);
        }
        !same
    }

    /// New roots arrived: a held leaf they vouch for goes in force; one they do not is reported.
    fn recheck_candidate(&self) {
        let mut candidate = self.candidate.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(leaf), Some(roots)) = (candidate.clone(), self.roots()) else { return };
        let now = SystemTime::now();
        let verdict = validate::leaf_times(&self.name, &leaf, now)
            .and_then(|()| validate::leaf_against_roots(&self.name, &leaf, &roots, now));
        let event = match verdict {
            Ok(()) => {
                *candidate = None;
                self.put_in_force(leaf).then_some(ServiceEvent::LeafRotated)
            }
            Err(e) => {
                warning!("leaf watch for \"{}\": {} (keeping the last good leaf)", self.name, e.message);
                *self.last_leaf_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                Some(ServiceEvent::WatchError)
            }
        };
        drop(candidate);
        if let Some(event) = event {
            self.changed_now(event);
        }
    }

    /// Waits until ready, or `timeout` passes (`None`: forever).
    pub fn wait_ready(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let seen = *generation;
            drop(generation);
            let outcome = self.readiness();
            let err = match outcome {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
            if *generation != seen {
                continue;
            }
            let remaining = match deadline {
                None => Duration::from_secs(3600),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        let waited = timeout.map(fmt_duration).unwrap_or_default();
                        return Err(Error::new(Code::NotReady, format!("{} (waited {waited})", err.message)));
                    }
                    d - now
                }
            };
            generation = self.changed.wait_timeout(generation, remaining).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The most recent error of the leaf or roots watch, cleared by the next good answer.
    pub fn last_error(&self) -> Option<Error> {
        let leaf_err = self.last_leaf_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        leaf_err.or_else(|| self.roots.last_error())
    }

    /// A snapshot for status displays.
    pub fn status(&self) -> ServiceStatus {
        let leaf = self.leaf();
        let roots = self.roots();
        let readiness = self.readiness();
        ServiceStatus {
            service: self.name.clone(),
            ready: readiness.is_ok(),
            not_ready_reason: readiness.err().map(|e| e.message),
            spiffe_id: leaf.as_ref().map(|l| l.uri.clone()),
            leaf_serial: leaf.as_ref().map(|l| l.serial.clone()),
            leaf_valid_before_unix: leaf
                .as_ref()
                .map(|l| l.valid_before.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)),
            trust_domain: roots.as_ref().map(|r| r.trust_domain.clone()),
            active_root_id: roots.as_ref().map(|r| r.active_root_id.clone()),
            roots: roots.as_ref().map(|r| r.len()).unwrap_or(0),
            last_error: self.last_error().map(|e| e.message),
        }
    }

    /// Adds a change callback; returns an id for [`ServiceCerts::remove_callback`].
    pub fn add_callback(&self, callback: EventCallback) -> u64 {
        let mut next = self.next_callback_id.lock().unwrap_or_else(|e| e.into_inner());
        let id = *next;
        *next += 1;
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).push((id, callback));
        id
    }

    /// Removes a change callback. After it returns, the callback is not called again (a call already running on a
    /// watch thread may still finish).
    pub fn remove_callback(&self, id: u64) {
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).retain(|(i, _)| *i != id);
    }

    pub(super) fn on_roots_event(&self, event: ServiceEvent) {
        self.changed_now(event);
        if event == ServiceEvent::RootsChanged {
            self.recheck_candidate();
        }
    }

    fn changed_now(&self, event: ServiceEvent) {
        // Snapshot the callbacks before waking `wait_ready`: a callback added after `wait_ready` returned must not
        // be told about the change that made the service ready.
        let callbacks: Vec<EventCallback> =
            self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, c)| c.clone()).collect();
        {
            let mut generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
            *generation += 1;
        }
        self.changed.notify_all();
        for callback in callbacks {
            callback(event);
        }
    }
}

impl CertSource for ServiceCerts {
    fn roots(&self) -> Option<Arc<Roots>> {
        self.roots.current()
    }
    fn leaf(&self) -> Option<Arc<Leaf>> {
        self.leaf.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for ServiceCerts {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

struct LeafTarget(Weak<ServiceCerts>);

impl WatchTarget<LeafCert> for LeafTarget {
    fn deliver(&self, value: &LeafCert) -> Option<Result<()>> {
        let certs = self.0.upgrade()?;
        let leaf = match Leaf::from_agent(value) {
            Ok(l) => Arc::new(l),
            Err(e) => return Some(Err(e.context(format!("leaf certificate for \"{}\" is unusable", certs.name)))),
        };
        let now = SystemTime::now();
        if let Err(e) = validate::leaf_identity(&certs.expected(), &leaf)
            .and_then(|()| validate::leaf_times(&certs.name, &leaf, now))
        {
            return Some(Err(e));
        }
        let mut candidate = certs.candidate.lock().unwrap_or_else(|e| e.into_inner());
        let Some(roots) = certs.roots() else {
            // Nothing to check the chain against yet: hold it; the roots watch's first answer decides.
            info!(
                "leaf for \"{}\" (serial {}) arrived before the CA roots: held until they do",
                certs.name, leaf.serial
            );
            *candidate = Some(leaf);
            return Some(Ok(()));
        };
        if let Err(e) = validate::leaf_against_roots(&certs.name, &leaf, &roots, now) {
            // Newer roots may still vouch for it (a rotation without cross-signing): checked again when they come.
            *candidate = Some(leaf);
            return Some(Err(e));
        }
        *candidate = None;
        let changed = certs.put_in_force(leaf);
        drop(candidate);
        if changed {
            certs.changed_now(ServiceEvent::LeafRotated);
        }
        Some(Ok(()))
    }

    fn fail(&self, error: Error) -> Option<()> {
        let certs = self.0.upgrade()?;
        warning!("leaf watch for \"{}\": {} (keeping the last good leaf)", certs.name, error.message);
        *certs.last_leaf_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        certs.changed_now(ServiceEvent::WatchError);
        Some(())
    }

    fn healthy(&self) {
        if let Some(certs) = self.0.upgrade() {
            // The agent answers the leaf in force again: a refused one it sent before is no longer a candidate.
            let mut candidate = certs.candidate.lock().unwrap_or_else(|e| e.into_inner());
            if certs.leaf().is_some() {
                *candidate = None;
            }
            drop(candidate);
            if certs.last_leaf_error.lock().unwrap_or_else(|e| e.into_inner()).take().is_some() {
                info!("leaf watch for \"{}\" recovered", certs.name);
            }
        }
    }
}
