//! The agent's Connect CA, like Consul's built-in provider: one cluster, its trust domain, every root it ever had
//! (the last one active), rotation with a cross-signed copy of the new root, and leaves for services.

use super::authority::Authority;
use crate::error::{Error, Result};
use consulnative_core::api::wire::{CaRoot, CaRoots, LeafCert};
use std::time::SystemTime;

/// One CA generation: the authority and its entry in the roots answer (which rotation marks inactive).
pub struct Root {
    /// The root certificate and key, with the cross-signed copy of itself when it came from a rotation.
    pub authority: Authority,
    /// Its entry in the roots answer.
    pub json: CaRoot,
}

/// The Connect CA of one dev agent.
pub struct ConnectCa {
    /// A random UUID; the trust domain is `<cluster_id>.consul`.
    pub cluster_id: String,
    /// `<cluster_id>.consul`.
    pub trust_domain: String,
    /// Every root ever created, oldest first; the last one is the active root. Never empty.
    pub roots: Vec<Root>,
}

fn random_name_suffix() -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6).map(|_| ALPHA[fastrand::usize(..ALPHA.len())] as char).collect()
}

impl ConnectCa {
    /// A new CA with one active root. `index` is the raft-like index the root is created at.
    pub fn new(index: u64) -> Result<ConnectCa> {
        let cluster_id = crate::util::uuid4();
        let trust_domain = format!("{cluster_id}.consul");
        let mut ca = ConnectCa { cluster_id, trust_domain, roots: Vec::new() };
        let root = ca.make_root(index, None)?;
        ca.roots.push(root);
        Ok(ca)
    }

    /// A root named like Consul's (`CN=pri-<random>.consul.ca.<cluster-id prefix>.consul`, listed as
    /// `Consul CA Primary Cert`), cross-signed by `previous` when given.
    fn make_root(&self, index: u64, previous: Option<&Authority>) -> Result<Root> {
        let mut authority = Authority::root(&self.trust_domain, &self.new_root_common_name())?;
        authority.name = "Consul CA Primary Cert".to_string();
        if let Some(old) = previous {
            authority.intermediates = vec![authority.cross_signed_by(old)?];
        }
        let json = CaRoot { create_index: index, modify_index: index, ..authority.ca_root(true) };
        Ok(Root { authority, json })
    }

    /// A fresh root common name like Consul's: `pri-<random>.consul.ca.<cluster-id prefix>.consul`.
    pub fn new_root_common_name(&self) -> String {
        let short = self.cluster_id.get(..8).unwrap_or(&self.cluster_id);
        format!("pri-{}.consul.ca.{short}.consul", random_name_suffix())
    }

    /// The active root.
    pub fn active(&self) -> &Root {
        // `roots` is never empty: `new` pushes one and nothing removes any.
        &self.roots[self.roots.len() - 1]
    }

    /// The `/v1/agent/connect/ca/roots` answer.
    pub fn roots_json(&self) -> CaRoots {
        CaRoots {
            active_root_id: self.active().json.id.clone(),
            trust_domain: self.trust_domain.clone(),
            roots: self.roots.iter().map(|r| r.json.clone()).collect(),
        }
    }

    /// The index of the roots answer: the highest ModifyIndex of any root.
    pub fn roots_index(&self) -> u64 {
        self.roots.iter().map(|r| r.json.modify_index).max().unwrap_or(1).max(1)
    }

    /// Rotate: a new active root (`root`, else a generated one), the old one kept inactive, and a copy of the new
    /// root cross-signed by the old key first in the new root's `IntermediateCerts` (and so after every new
    /// leaf), unless `cross_sign` is false.
    pub fn rotate_to(&mut self, root: Option<Authority>, cross_sign: bool, index: u64) -> Result<()> {
        let previous = if cross_sign { Some(&self.active().authority) } else { None };
        let new_root = match root {
            None => self.make_root(index, previous)?,
            Some(mut authority) => {
                if let Some(old) = previous {
                    authority.intermediates = vec![authority.cross_signed_by(old)?];
                }
                let json = CaRoot { create_index: index, modify_index: index, ..authority.ca_root(true) };
                Root { authority, json }
            }
        };
        if let Some(old) = self.roots.last_mut() {
            old.json.active = false;
            old.json.modify_index = index;
        }
        self.roots.push(new_root);
        Ok(())
    }

    /// [`ConnectCa::rotate_to`] a generated root, cross-signed.
    pub fn rotate(&mut self, index: u64) -> Result<()> {
        self.rotate_to(None, true, index)
    }

    /// `spiffe://<trust-domain>/ns/default/dc/<datacenter>/svc/<service>`.
    pub fn service_uri(&self, datacenter: &str, service: &str) -> String {
        format!("spiffe://{}/ns/default/dc/{}/svc/{}", self.trust_domain, datacenter, service)
    }

    /// Sign a leaf for `service` with the active root, valid over [not_before, not_after], at raft index `index`.
    pub fn sign_leaf(
        &self,
        service: &str,
        datacenter: &str,
        not_before: SystemTime,
        not_after: SystemTime,
        index: u64,
    ) -> Result<LeafCert> {
        if service.is_empty() || !service.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'%') {
            return Err(Error::invalid(format!("invalid service name {service:?}")));
        }
        let uri = self.service_uri(datacenter, service);
        let leaf = self.active().authority.sign_leaf(&uri, not_before, not_after)?;
        Ok(LeafCert { service: service.to_string(), create_index: index, modify_index: index, ..leaf })
    }
}
