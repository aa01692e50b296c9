//! The CA roots watch, shared by all services of one client.

use std::sync::{Arc, Mutex, RwLock, Weak};

use super::blocking::{self, StopSignal, WatchTarget, WatchTiming};
use super::service::{ServiceCerts, ServiceEvent};
use crate::agent::client::AgentClient;
use crate::agent::types::CaRoots;
use crate::error::{Error, Result};
use crate::log::{info, warning};
use crate::tls::Roots;

/// The current CA roots of one client, kept fresh by a background blocking query.
pub struct RootsWatch {
    current: RwLock<Option<Arc<Roots>>>,
    last_error: Mutex<Option<Error>>,
    subscribers: Mutex<Vec<Weak<ServiceCerts>>>,
    stop: Arc<StopSignal>,
}

impl RootsWatch {
    /// Starts watching `GET /v1/agent/connect/ca/roots`.
    pub fn start(agent: AgentClient, timing: WatchTiming) -> Result<Arc<RootsWatch>> {
        let watch = Arc::new(RootsWatch {
            current: RwLock::new(None),
            last_error: Mutex::new(None),
            subscribers: Mutex::new(Vec::new()),
            stop: StopSignal::new(),
        });
        let target = RootsTarget(Arc::downgrade(&watch));
        let stop = watch.stop.clone();
        super::spawn_watch_thread("consulnative-roots".into(), move || {
            blocking::run(&timing, &stop, |q| agent.roots(q), &target);
        })?;
        Ok(watch)
    }

    /// The current roots, if any arrived yet.
    pub fn current(&self) -> Option<Arc<Roots>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last error of the watch, cleared by the next good answer.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Registers a service to be told when the roots change or the watch fails.
    pub fn subscribe(&self, service: &Arc<ServiceCerts>) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| s.strong_count() > 0);
        subs.push(Arc::downgrade(service));
    }

    fn notify(&self, event: ServiceEvent) {
        // Collect first: callbacks must never run while a lock a binding call could need is held.
        let subs: Vec<Arc<ServiceCerts>> = {
            let subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            subs.iter().filter_map(Weak::upgrade).collect()
        };
        for s in subs {
            s.on_roots_event(event);
        }
    }
}

impl Drop for RootsWatch {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

struct RootsTarget(Weak<RootsWatch>);

impl WatchTarget<CaRoots> for RootsTarget {
    fn deliver(&self, value: &CaRoots) -> Option<Result<()>> {
        let watch = self.0.upgrade()?;
        let roots = match Roots::from_agent(value) {
            Ok(r) => r,
            Err(e) => return Some(Err(e.context("CA roots from the agent are unusable"))),
        };
        if let Err(e) = super::validate::roots_trust_domain(&roots) {
            return Some(Err(e));
        }
        info!(
            "CA roots updated: {} root(s), active {}, trust domain {}",
            roots.len(),
            roots.active_root_id,
            roots.trust_domain
        );
        *watch.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(roots));
        *watch.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        watch.notify(ServiceEvent::RootsChanged);
        Some(Ok(()))
    }

    fn fail(&self, error: Error) -> Option<()> {
        let watch = self.0.upgrade()?;
        warning!("CA roots watch: {} (keeping the last good roots)", error.message);
        *watch.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        watch.notify(ServiceEvent::WatchError);
        Some(())
    }

    fn healthy(&self) {
        if let Some(watch) = self.0.upgrade() {
            if watch.last_error.lock().unwrap_or_else(|e| e.into_inner()).take().is_some() {
                info!("CA roots watch recovered");
            }
        }
    }
}
