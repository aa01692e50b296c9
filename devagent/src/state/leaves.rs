//! Leaf certificates (issue, cache, renew at 60–90 % of the lifetime) and CA rotation, to a generated root or to
//! one the user supplies.

use super::{CachedLeaf, Shared, State};
use crate::ca::Authority;
use crate::error::Result;
use consulnative_core::api::wire::LeafCert;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

impl Shared {
    /// Validity window of a new cached leaf: valid from `now − min(60 s, TTL/10)` for the TTL.
    fn leaf_window(ttl: Duration) -> (SystemTime, SystemTime) {
        let ttl = ttl.max(Duration::from_secs(1));
        let nb = SystemTime::now() - (ttl / 10).min(Duration::from_secs(60));
        (nb, nb + ttl)
    }

    /// Issue (or reissue) the cached leaf for `service` and schedule its renewal. Call `notify` afterwards.
    pub fn reissue_leaf_locked(self: &Arc<Self>, st: &mut State, service: &str) -> Result<LeafCert> {
        let (nb, na) = Self::leaf_window(st.leaf_ttl);
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
        self.rotate_to(None, true)
    }

    /// Rotate to `root` (a generated one when `None`), cross-signed by the old root unless `cross_sign` is false
    /// (Consul's `ForceWithoutCrossSigning`), and reissue every cached leaf.
    pub fn rotate_to(self: &Arc<Self>, root: Option<Authority>, cross_sign: bool) -> Result<()> {
        let mut st = self.lock();
        let idx = st.next_index();
        st.ca.rotate_to(root, cross_sign, idx)?;
        let result = self.reissue_all_locked(&mut st);
        drop(st);
        self.notify();
        result
    }

    /// Reissue every cached leaf (after a rotation or a TTL change).
    pub fn reissue_all_locked(self: &Arc<Self>, st: &mut State) -> Result<()> {
        let services: Vec<String> = st.leaves.keys().cloned().collect();
        let mut result = Ok(());
        for s in services {
            if let Err(e) = self.reissue_leaf_locked(st, &s) {
                result = Err(e);
            }
        }
        result
    }
}
