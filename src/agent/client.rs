//! STUB
use crate::agent::config::AgentConfig;
use crate::agent::types::*;
use crate::error::Result;
use std::time::Duration;
pub struct BlockingQuery { pub index: u64, pub wait: Duration }
pub struct Response<T> { pub value: T, pub index: u64 }
#[derive(Clone)]
pub struct AgentClient;
impl AgentClient {
    pub fn new(_c: AgentConfig) -> Result<AgentClient> { todo!() }
    pub fn address(&self) -> String { todo!() }
    pub fn roots(&self, _q: &BlockingQuery) -> Result<Response<CaRoots>> { todo!() }
    pub fn leaf(&self, _s: &str, _q: &BlockingQuery) -> Result<Response<LeafCert>> { todo!() }
    pub fn authorize(&self, _r: &AuthorizeRequest, _t: Duration) -> Result<AuthorizeResponse> { todo!() }
    pub fn health_connect(&self, _s: &str, _dc: Option<&str>, _p: bool) -> Result<Vec<HealthEntry>> { todo!() }
    pub fn register(&self, _r: &ServiceRegistration) -> Result<()> { todo!() }
    pub fn deregister(&self, _id: &str) -> Result<()> { todo!() }
    pub fn pass_ttl(&self, _id: &str, _n: Option<&str>) -> Result<()> { todo!() }
    pub fn agent_self(&self) -> Result<AgentSelf> { todo!() }
}
