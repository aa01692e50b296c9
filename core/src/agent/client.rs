//! The HTTP client for the Consul agent API.
//!
//! Blocking (ureq 3), keep-alive pooled, every request bounded by a timeout. Status codes are mapped to the crate's
//! error codes here (ureq's `http_status_as_error` is off); messages name the agent, the method and endpoint and what
//! the agent answered, and never contain the ACL token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ureq::config::Config;
use ureq::unversioned::transport::{Connector, TcpConnector};

use super::address::{escape, is_header_safe, parse_address, resolve_token, Target};
use super::config::{AgentConfig, ResponseLimits, DEFAULT_ADDRESS};
use super::request::{non_empty, BodyLimit, Call};
use super::transport::{tls_connector, AgentResolver, UnixConnector};
use super::types::{
    AgentSelf, AuthorizeRequest, AuthorizeResponse, CaRoots, HealthEntry, LeafCert, ServiceRegistration,
};
use crate::error::{Error, Result};

/// The longest wait Consul honours (it caps larger values at 10 minutes).
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// Added to a blocking query's `wait + wait/16` to get its read timeout.
pub const BLOCKING_MARGIN: Duration = Duration::from_secs(5);

/// Parameters of a blocking query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockingQuery {
    /// The last `X-Consul-Index` seen; 0 for "answer now" (then no `index` parameter is sent).
    pub index: u64,
    /// How long the agent may hold the request. Always sent, rounded to milliseconds, between 1 ms and 10 min.
    pub wait: Duration,
}

/// A decoded answer and its `X-Consul-Index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response<T> {
    pub value: T,
    /// `X-Consul-Index`: always positive for a blocking query (see `request::parse_consul_index`); 0 for another
    /// call whose answer has none.
    pub index: u64,
}

/// A client of one Consul agent. Cheap to clone (shares the connection pool), `Send + Sync`.
#[derive(Clone)]
pub struct AgentClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) agent: ureq::Agent,
    /// Scheme, authority and path prefix used to build URLs (`http://localhost` for a Unix socket).
    pub(super) base: String,
    /// The address as shown in messages: no credentials.
    pub(super) display: String,
    pub(super) token: Option<String>,
    /// The complete `Authorization` header value for basic auth.
    pub(super) basic_auth: Option<String>,
    pub(super) datacenter: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) partition: Option<String>,
    pub(super) request_timeout: Duration,
    pub(super) limits: ResponseLimits,
}

impl fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentClient")
            .field("address", &self.inner.display)
            .field("token", &self.inner.token.as_ref().map(|_| "<redacted>"))
            .field("basic_auth", &self.inner.basic_auth.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.inner.datacenter)
            .field("namespace", &self.inner.namespace)
            .field("partition", &self.inner.partition)
            .field("request_timeout", &self.inner.request_timeout)
            .finish()
    }
}

impl AgentClient {
    /// A client for the configured agent. Checks the address, reads the token file and loads the TLS files now;
    /// any problem is `InvalidArgument` with the detail (paths, never the token).
    pub fn new(config: AgentConfig) -> Result<AgentClient> {
        if config.request_timeout.is_zero() {
            return Err(Error::invalid("agent request timeout must be greater than zero"));
        }
        let target = parse_address(config.address.as_deref().unwrap_or(DEFAULT_ADDRESS))?;
        let token = resolve_token(&config)?;
        let basic_auth = match &config.http_auth {
            Some(auth) if !auth.is_empty() => {
                let auth = if auth.contains(':') { auth.clone() } else { format!("{auth}:") };
                let value = format!("Basic {}", crate::encoding::base64(auth.as_bytes()));
                if !is_header_safe(&value) {
                    return Err(Error::invalid("http_auth is not valid"));
                }
                Some(value)
            }
            _ => None,
        };
        for (what, value) in
            [("datacenter", &config.datacenter), ("namespace", &config.namespace), ("partition", &config.partition)]
        {
            if value.as_deref() == Some("") {
                return Err(Error::invalid(format!("agent {what} is empty (leave it unset instead)")));
            }
        }

        let ureq_config = Config::builder()
            .http_status_as_error(false)
            .no_delay(true)
            // Agent answers are small: ureq's 128 KiB default buffers, zero-filled per connection, cost every
            // service's leaf watch 256 KiB (300 MiB for 1,000 services).
            .input_buffer_size(16 * 1024)
            .output_buffer_size(16 * 1024)
            .proxy(None)
            .max_redirects(0)
            .user_agent(concat!("libconsulnative/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(config.request_timeout))
            .timeout_connect(Some(config.request_timeout))
            .max_idle_age(Duration::from_secs(60))
            .build();

        let (agent, base, display) = match &target {
            Target::Unix { path } => {
                let connector = UnixConnector { path: Some(path.clone()) }.chain(TcpConnector::default());
                let agent = ureq::Agent::with_parts(ureq_config, connector, AgentResolver::new(true));
                (agent, "http://localhost".to_string(), format!("unix://{}", path.display()))
            }
            Target::Tcp { https, authority, host, prefix } => {
                let scheme = if *https { "https" } else { "http" };
                let base = format!("{scheme}://{authority}{prefix}");
                let agent = if *https {
                    let tls = tls_connector(&config.tls, host)?;
                    let connector = UnixConnector { path: None }.chain(TcpConnector::default()).chain(tls);
                    ureq::Agent::with_parts(ureq_config, connector, AgentResolver::new(false))
                } else {
                    let connector = UnixConnector { path: None }.chain(TcpConnector::default());
                    ureq::Agent::with_parts(ureq_config, connector, AgentResolver::new(false))
                };
                (agent, base.clone(), base)
            }
        };

        Ok(AgentClient {
            inner: Arc::new(Inner {
                agent,
                base,
                display,
                token,
                basic_auth,
                datacenter: config.datacenter,
                namespace: config.namespace,
                partition: config.partition,
                request_timeout: config.request_timeout,
                limits: config.response_limits,
            }),
        })
    }

    /// The agent's address for messages, e.g. `http://127.0.0.1:8500` or `unix:///run/consul.sock`.
    pub fn address(&self) -> String {
        self.inner.display.clone()
    }

    /// The configured namespace and partition (`None` when not configured: the agent's or the token's apply).
    pub fn namespace_and_partition(&self) -> (Option<&str>, Option<&str>) {
        (self.inner.namespace.as_deref(), self.inner.partition.as_deref())
    }

    fn limit(&self, what: &'static str, pick: impl Fn(&ResponseLimits) -> u64) -> BodyLimit {
        BodyLimit { bytes: pick(&self.inner.limits), what }
    }

    /// `GET /v1/agent/connect/ca/roots`, blocking on `q`.
    pub fn roots(&self, q: &BlockingQuery) -> Result<Response<CaRoots>> {
        let limit = self.limit("a CA roots answer", |l| l.roots);
        self.blocking_get("/v1/agent/connect/ca/roots".to_string(), q, limit)
    }

    /// `GET /v1/agent/connect/ca/leaf/<service>`, blocking on `q`.
    pub fn leaf(&self, service: &str, q: &BlockingQuery) -> Result<Response<LeafCert>> {
        let service = non_empty("service name", service)?;
        let limit = self.limit("a leaf certificate answer", |l| l.leaf);
        self.blocking_get(format!("/v1/agent/connect/ca/leaf/{}", escape(service)), q, limit)
    }

    /// `POST /v1/agent/connect/authorize`, bounded by `timeout`.
    pub fn authorize(&self, req: &AuthorizeRequest, timeout: Duration) -> Result<AuthorizeResponse> {
        if timeout.is_zero() {
            return Err(Error::invalid("authorize timeout must be greater than zero"));
        }
        let body = serde_json::to_vec(req).map_err(|e| Error::internal(format!("encoding authorize request: {e}")))?;
        let limit = self.limit("an authorize answer", |l| l.authorize);
        let call = Call::new("POST", "/v1/agent/connect/authorize".to_string(), timeout, limit).body(body);
        Ok(self.json(call)?.value)
    }

    /// `GET /v1/health/connect/<service>?passing=1&stale`; `datacenter` overrides the configured one.
    pub fn health_connect(&self, service: &str, datacenter: Option<&str>, passing: bool) -> Result<Vec<HealthEntry>> {
        let service = non_empty("service name", service)?;
        let limit = self.limit("a health answer", |l| l.health);
        let path = format!("/v1/health/connect/{}", escape(service));
        let mut call = Call::new("GET", path, self.inner.request_timeout, limit);
        if passing {
            call.query.push(("passing", Some("1".to_string())));
        }
        call.query.push(("stale", None));
        if let Some(dc) = datacenter.filter(|d| !d.is_empty()) {
            call.dc_override = Some(dc.to_string());
        }
        Ok(self.json(call)?.value)
    }

    /// `PUT /v1/agent/service/register`.
    pub fn register(&self, reg: &ServiceRegistration) -> Result<()> {
        let body = serde_json::to_vec(reg).map_err(|e| Error::internal(format!("encoding registration: {e}")))?;
        let call = Call::new("PUT", "/v1/agent/service/register".to_string(), self.inner.request_timeout, self.other())
            .body(body);
        self.execute(call).map(|_| ())
    }

    /// `PUT /v1/agent/service/deregister/<service_id>`.
    pub fn deregister(&self, service_id: &str) -> Result<()> {
        let id = non_empty("service ID", service_id)?;
        let path = format!("/v1/agent/service/deregister/{}", escape(id));
        let call = Call::new("PUT", path, self.inner.request_timeout, self.other());
        self.execute(call).map(|_| ())
    }

    /// `PUT /v1/agent/check/pass/<check_id>?note=`.
    pub fn pass_ttl(&self, check_id: &str, note: Option<&str>) -> Result<()> {
        let id = non_empty("check ID", check_id)?;
        let path = format!("/v1/agent/check/pass/{}", escape(id));
        let mut call = Call::new("PUT", path, self.inner.request_timeout, self.other());
        if let Some(note) = note {
            call.query.push(("note", Some(note.to_string())));
        }
        self.execute(call).map(|_| ())
    }

    fn other(&self) -> BodyLimit {
        self.limit("an answer", |l| l.other)
    }

    /// `GET /v1/agent/self`: the agent's datacenter and node (also the tests' probe of a working connection).
    pub fn agent_self(&self) -> Result<AgentSelf> {
        let call = Call::new("GET", "/v1/agent/self".to_string(), self.inner.request_timeout, self.other());
        Ok(self.json(call)?.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<AgentClient>();
    }
}
