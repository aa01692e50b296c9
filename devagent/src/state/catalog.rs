//! The local catalog: services and their checks, node checks, TTL and TCP checks, and service maintenance mode.
//! Every change bumps the catalog index and wakes blocked queries.

use super::model::{Check, CheckKind, Service};
use super::{Shared, State};
use std::sync::Arc;
use std::time::Duration;

/// Consul's default maintenance note [agent/agent.go `defaultServiceMaintReason`].
const DEFAULT_MAINT_REASON: &str =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

/// The check ID of a service's maintenance check [agent/agent.go `serviceMaintCheckID`].
pub fn maintenance_check_id(service_id: &str) -> String {
    format!("_service_maintenance:{service_id}")
}

impl Shared {
    /// Insert or replace a service with its checks. A re-registered check keeps its status (Consul restores the
    /// state of a check it already had); with `replace_existing_checks`, the service's other checks go.
    pub fn register_service(self: &Arc<Self>, mut svc: Service, checks: Vec<Check>, replace_existing_checks: bool) {
        let mut st = self.lock();
        let idx = st.catalog_changed();
        svc.create_index = st.services.get(&svc.id).map(|s| s.create_index).unwrap_or(idx);
        svc.modify_index = idx;
        if replace_existing_checks {
            let keep: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
            let maint = maintenance_check_id(&svc.id);
            let stale: Vec<String> = st
                .checks
                .values()
                .filter(|c| c.service_id == svc.id && !keep.contains(&c.id.as_str()) && c.id != maint)
                .map(|c| c.id.clone())
                .collect();
            for id in stale {
                st.checks.remove(&id);
            }
        }
        st.services.insert(svc.id.clone(), svc);
        for c in checks {
            self.insert_check_locked(&mut st, c, idx);
        }
        drop(st);
        self.notify();
    }

    /// Remove a service and its checks. False when it was not registered.
    pub fn deregister_service(&self, id: &str) -> bool {
        let mut st = self.lock();
        if st.services.remove(id).is_none() {
            return false;
        }
        st.checks.retain(|_, c| c.service_id != id);
        st.catalog_changed();
        drop(st);
        self.notify();
        true
    }

    /// Add or replace one check (`PUT /v1/agent/check/register`).
    pub fn register_check(self: &Arc<Self>, check: Check) {
        let mut st = self.lock();
        let idx = st.catalog_changed();
        self.insert_check_locked(&mut st, check, idx);
        drop(st);
        self.notify();
    }

    /// Remove a check. False when there was none.
    pub fn deregister_check(&self, id: &str) -> bool {
        let mut st = self.lock();
        if st.checks.remove(id).is_none() {
            return false;
        }
        st.catalog_changed();
        drop(st);
        self.notify();
        true
    }

    fn insert_check_locked(self: &Arc<Self>, st: &mut State, mut c: Check, idx: u64) {
        if let Some(old) = st.checks.get(&c.id) {
            c.status = old.status.clone();
            c.output = old.output.clone();
            c.create_index = old.create_index;
        } else {
            c.create_index = idx;
        }
        c.modify_index = idx;
        c.task = match &c.kind {
            // A TTL check that is never updated goes (stays) critical when the TTL runs out.
            CheckKind::Ttl(ttl) => self.ttl_expiry(&c.id, c.generation, *ttl),
            CheckKind::Tcp { addr, interval, timeout } => self.tcp_probe(&c.id, addr.clone(), *interval, *timeout),
            CheckKind::Maintenance => None,
        };
        st.checks.insert(c.id.clone(), c);
    }

    fn tcp_probe(
        self: &Arc<Self>,
        check_id: &str,
        addr: String,
        interval: Duration,
        timeout: Duration,
    ) -> Option<tokio::task::AbortHandle> {
        let weak = Arc::downgrade(self);
        let cid = check_id.to_string();
        self.spawn(async move {
            loop {
                let res = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.as_str())).await;
                // Consul's TCP check outputs [agent/checks/check.go CheckTCP].
                let (status, output) = match res {
                    Ok(Ok(_)) => ("passing", format!("TCP connect {addr}: Success")),
                    Ok(Err(e)) => ("critical", format!("dial tcp {addr}: {e}")),
                    Err(_) => ("critical", format!("dial tcp {addr}: i/o timeout")),
                };
                {
                    let Some(sh) = weak.upgrade() else { return };
                    sh.set_check_status(&cid, status, &output);
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    fn ttl_expiry(
        self: &Arc<Self>,
        check_id: &str,
        generation: u64,
        ttl: Duration,
    ) -> Option<tokio::task::AbortHandle> {
        let weak = Arc::downgrade(self);
        let cid = check_id.to_string();
        self.spawn(async move {
            tokio::time::sleep(ttl).await;
            let Some(sh) = weak.upgrade() else { return };
            let same = sh.lock().checks.get(&cid).map(|c| c.generation == generation).unwrap_or(false);
            if same {
                sh.set_check_status(&cid, "critical", "TTL expired");
            }
        })
    }

    /// Set a check's status; bumps the catalog index and wakes watchers only when something changed.
    pub fn set_check_status(&self, check_id: &str, status: &str, output: &str) {
        let mut st = self.lock();
        let changed = match st.checks.get_mut(check_id) {
            Some(c) if c.status != status || c.output != output => {
                c.status = status.to_string();
                c.output = output.to_string();
                true
            }
            _ => false,
        };
        if changed {
            let idx = st.catalog_changed();
            if let Some(c) = st.checks.get_mut(check_id) {
                c.modify_index = idx;
            }
            drop(st);
            self.notify();
        }
    }

    /// Update a TTL check (`pass`/`warn`/`fail`/`update`) and restart its TTL. `Err` is Consul's text
    /// [agent/agent.go `updateTTLCheck`].
    pub fn update_ttl_check(self: &Arc<Self>, check_id: &str, status: &str, output: &str) -> Result<(), String> {
        let mut st = self.lock();
        let Some(c) = st.checks.get_mut(check_id) else {
            return Err(format!("CheckID {check_id:?} does not have associated TTL"));
        };
        let CheckKind::Ttl(ttl) = c.kind else {
            return Err(format!("CheckID {check_id:?} does not have associated TTL"));
        };
        c.generation += 1;
        let changed = c.status != status || c.output != output;
        c.status = status.to_string();
        c.output = output.to_string();
        let gen = c.generation;
        let task = self.ttl_expiry(check_id, gen, ttl);
        if let Some(c) = st.checks.get_mut(check_id) {
            if let Some(old) = std::mem::replace(&mut c.task, task) {
                old.abort();
            }
        }
        if changed {
            let idx = st.catalog_changed();
            if let Some(c) = st.checks.get_mut(check_id) {
                c.modify_index = idx;
            }
        }
        drop(st);
        if changed {
            self.notify();
        }
        Ok(())
    }

    /// Service maintenance mode on or off [agent/agent.go `EnableServiceMaintenance`]: a critical check of type
    /// `maintenance`. `Err` is Consul's 404 text.
    pub fn set_service_maintenance(
        self: &Arc<Self>,
        service_id: &str,
        enable: bool,
        reason: &str,
    ) -> Result<(), String> {
        let name = match self.lock().services.get(service_id) {
            Some(s) => s.name.clone(),
            None => return Err(format!("No service registered with ID {service_id:?}")),
        };
        let id = maintenance_check_id(service_id);
        if !enable {
            self.deregister_check(&id);
            return Ok(());
        }
        if self.lock().checks.contains_key(&id) {
            return Ok(());
        }
        let notes = if reason.is_empty() { DEFAULT_MAINT_REASON } else { reason };
        self.register_check(Check {
            id,
            name: "Service Maintenance Mode".to_string(),
            status: "critical".to_string(),
            notes: notes.to_string(),
            output: String::new(),
            service_id: service_id.to_string(),
            service_name: name,
            kind: CheckKind::Maintenance,
            create_index: 0,
            modify_index: 0,
            generation: 0,
            task: None,
        });
        Ok(())
    }
}
