//! STUB
use std::path::PathBuf;
use std::time::Duration;
#[derive(Clone, Default)]
pub struct AgentTls { pub ca_file: Option<PathBuf>, pub ca_path: Option<PathBuf>, pub client_cert: Option<PathBuf>, pub client_key: Option<PathBuf>, pub server_name: Option<String>, pub verify: bool }
#[derive(Clone, Default)]
pub struct AgentConfig { pub address: Option<String>, pub token: Option<String>, pub token_file: Option<PathBuf>, pub datacenter: Option<String>, pub namespace: Option<String>, pub partition: Option<String>, pub http_auth: Option<String>, pub tls: AgentTls, pub request_timeout: Duration }
impl AgentConfig { pub fn from_env() -> AgentConfig { todo!() } }
