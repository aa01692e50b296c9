//! The embedded Consul-compatible dev agent.

//! STUB
use crate::error::Result;
use std::time::{Duration, SystemTime};
#[derive(Clone)]
pub struct DevAgentConfig { pub http_addr: std::net::SocketAddr, pub acl_token: Option<String>, pub default_allow: bool, pub leaf_ttl: Duration, pub datacenter: String, pub node_name: String }
impl Default for DevAgentConfig { fn default() -> Self { todo!() } }
pub struct DevAgent;
#[derive(Clone, Copy, Debug)] pub enum FaultEndpoint { All, Roots, Leaf, Authorize }
#[derive(Clone, Debug)] pub enum FaultKind { Status(u16, String), MalformedJson, Delay(Duration), BackwardsIndex }
#[derive(Clone, Debug)] pub struct Fault { pub endpoint: FaultEndpoint, pub kind: FaultKind }
impl DevAgent {
  pub fn start(_c: DevAgentConfig) -> Result<DevAgent> { todo!() }
  pub fn addr(&self) -> std::net::SocketAddr { todo!() }
  pub fn trust_domain(&self) -> String { todo!() }
  pub fn set_intention(&self, _s: &str, _d: &str, _a: bool) { todo!() }
  pub fn delete_intention(&self, _s: &str, _d: &str) { todo!() }
  pub fn rotate_ca(&self) -> Result<()> { todo!() }
  pub fn issue_leaf(&self, _s: &str, _nb: SystemTime, _na: SystemTime) -> Result<crate::agent::types::LeafCert> { todo!() }
  pub fn set_fault(&self, _f: Fault) { todo!() }
  pub fn clear_faults(&self) { todo!() }
  pub fn stop(&self) { todo!() }
}
