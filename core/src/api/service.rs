//! A Connect service identity: its certificates, listeners and dialers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::ClientInner;
use crate::error::{Code, Error, Result};
use crate::identity::ServiceId;
use crate::net::authorize::AgentAuthorizer;
use crate::net::dialer::{check_service_name, connect};
use crate::net::listener::ListenerContext;
use crate::net::resolver::{check_host_port, discover};
use crate::net::{Conn, ListenOptions, Listener};
use crate::tls::{client_config_with, server_config_with, CertSource, Expected};
use crate::watch::{ServiceCerts, ServiceEvent, ServiceStatus};

/// A change callback (leaf rotated, roots changed, watch error). Runs on a library watch thread: keep it short.
pub type EventCallback = Arc<dyn Fn(ServiceEvent) + Send + Sync>;

/// Whom to dial.
#[derive(Debug, Clone)]
pub enum DialTarget {
    /// Discover healthy instances through the agent (`/v1/health/connect/<name>?passing`).
    Service {
        /// The service name.
        name: String,
        /// The datacenter to look in (`None`: the client's, else the agent's).
        datacenter: Option<String>,
    },
    /// A fixed address; the server must present `expected`: a service name (any datacenter of our trust
    /// domain, in our namespace) or a full `spiffe://` URI compared as Go's `connect` package does.
    Address {
        /// `host:port`.
        address: String,
        /// The identity the server must present.
        expected: String,
    },
}

/// Options of one dial.
#[derive(Debug, Clone, Default)]
pub struct DialOptions {
    /// Bound on the whole dial: discovery aside, connect and handshake of every instance tried.
    pub timeout: Option<Duration>,
    /// ALPN protocols offered (empty: none).
    pub alpn: Vec<Vec<u8>>,
}

/// One service's identity in the mesh. Dropping it stops its leaf watch.
pub struct Service {
    client: Arc<ClientInner>,
    certs: Arc<ServiceCerts>,
}

impl Service {
    pub(crate) fn new(client: Arc<ClientInner>, certs: Arc<ServiceCerts>) -> Service {
        Service { client, certs }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.certs.name()
    }

    /// The certificate state, for the PEM file writer.
    pub(super) fn certs(&self) -> &Arc<ServiceCerts> {
        &self.certs
    }

    /// The client this service belongs to.
    pub(super) fn client(&self) -> &Arc<ClientInner> {
        &self.client
    }

    /// Adds a change callback; the returned id removes it with [`Service::remove_event_callback`].
    pub fn on_event(&self, callback: EventCallback) -> u64 {
        self.certs.add_callback(callback)
    }

    /// Removes a change callback. A call already running on a watch thread may still finish.
    pub fn remove_event_callback(&self, id: u64) {
        self.certs.remove_callback(id)
    }

    /// The current leaf certificate followed by its intermediates, as PEM (`NotReady` before it arrives).
    pub fn leaf_chain_pem(&self) -> Result<String> {
        Ok(self.certs.leaf().ok_or_else(|| self.not_ready("leaf certificate"))?.cert_pem.clone())
    }

    /// The current leaf's private key as PEM. Handle it as a secret.
    pub fn leaf_key_pem(&self) -> Result<String> {
        Ok(self.certs.leaf().ok_or_else(|| self.not_ready("leaf certificate"))?.key_pem.clone())
    }

    /// Every current CA root as PEM.
    pub fn roots_pem(&self) -> Result<String> {
        Ok(self.certs.roots().ok_or_else(|| self.not_ready("CA roots"))?.pem.clone())
    }

    fn not_ready(&self, what: &str) -> Error {
        Error::new(Code::NotReady, format!("service \"{}\" has no {what} yet", self.name()))
    }

    /// A rustls server configuration for this service's own TLS server: it presents the current leaf and
    /// verifies clients against the current roots (chain only: authorization is the caller's job, e.g. with
    /// [`Service::listen`] instead). Reads the certificates at every handshake, so rotations apply.
    pub fn tls_server_config(&self, alpn: Vec<Vec<u8>>) -> Result<Arc<rustls::ServerConfig>> {
        server_config_with(self.certs.clone(), alpn, self.client.options.chain_limits)
    }

    /// A rustls client configuration presenting this service's leaf and checking that the server's chain
    /// verifies against the current roots and that it presents the SPIFFE URI `expected_uri`. Connect with
    /// [`Service::tls_server_name`] as the server name (Connect certificates carry no DNS name).
    pub fn tls_client_config(&self, expected_uri: &str, alpn: Vec<Vec<u8>>) -> Result<Arc<rustls::ClientConfig>> {
        client_config_with(
            self.certs.clone(),
            Expected::Uri(expected_uri.to_string()),
            alpn,
            self.client.options.chain_limits,
        )
    }

    /// The server name to pass with a [`Service::tls_client_config`] configuration.
    pub fn tls_server_name() -> rustls::pki_types::ServerName<'static> {
        crate::tls::dial_server_name()
    }

    /// Waits until the leaf and roots are present and the leaf verifies (`None`: no timeout).
    pub fn wait_ready(&self, timeout: Option<Duration>) -> Result<()> {
        self.certs.wait_ready(timeout)
    }

    /// A snapshot of the certificate state.
    pub fn status(&self) -> ServiceStatus {
        self.certs.status()
    }

    /// Listens on `addr` for Connect clients: mutual TLS, then authorization by the agent. Timeouts and limits
    /// the options leave unset are the client's.
    pub fn listen(&self, addr: SocketAddr, mut options: ListenOptions) -> Result<Listener> {
        let source: Arc<dyn CertSource> = self.certs.clone();
        let client = &self.client.options;
        options.handshake_timeout = options.handshake_timeout.or(Some(client.handshake_timeout));
        options.authorize_timeout = options.authorize_timeout.or(Some(client.authorize_timeout));
        options.limits = options.limits.or(Some(client.listen_limits));
        let chain_limits = options.chain_limits.unwrap_or(client.chain_limits);
        let ctx = ListenerContext {
            service: self.name().to_string(),
            tls: server_config_with(source, options.alpn.clone(), chain_limits)?,
            authorizer: Arc::new(AgentAuthorizer { agent: self.client.agent.clone() }),
        };
        Listener::bind(addr, ctx, options)
    }

    /// Dials another service. Fails with `NotReady` before this service has certificates.
    pub fn dial(&self, target: &DialTarget, options: &DialOptions) -> Result<Conn> {
        let deadline = options.timeout.map(|t| Instant::now() + t);
        let (_, roots) = self.certs.readiness()?;
        let source: Arc<dyn CertSource> = self.certs.clone();
        let namespace = self.client.options.agent.namespace.clone().unwrap_or_else(|| "default".into());
        let limits = self.client.options.chain_limits;
        let client_config = |source: Arc<dyn CertSource>, expected: Expected, alpn: Vec<Vec<u8>>| {
            client_config_with(source, expected, alpn, limits)
        };
        match target {
            DialTarget::Address { address, expected } => {
                check_host_port(address)?;
                if expected.starts_with("spiffe://") {
                    let config = client_config(source, Expected::Uri(expected.clone()), options.alpn.clone())?;
                    return connect(address, config, deadline);
                }
                let config = client_config(source, Expected::AnyService, options.alpn.clone())?;
                let conn = connect(address, config, deadline)?;
                check_service_name(conn.peer(), expected, &namespace, address)?;
                Ok(conn)
            }
            DialTarget::Service { name, datacenter } => {
                let dc = datacenter.as_deref().or(self.client.options.agent.datacenter.as_deref());
                let instances = discover(&self.client.agent, name, dc)?;
                let partition = self.client.options.agent.partition.clone().unwrap_or_else(|| "default".into());
                let mut failures = Vec::new();
                let mut last_code = Code::NoInstances;
                for instance in &instances {
                    let expected = ServiceId {
                        trust_domain: roots.trust_domain.clone(),
                        partition: partition.clone(),
                        namespace: namespace.clone(),
                        datacenter: instance.datacenter.clone(),
                        service: name.clone(),
                    };
                    let config = client_config(source.clone(), Expected::Uri(expected.uri()), options.alpn.clone())?;
                    match connect(&instance.address, config, deadline) {
                        Ok(conn) => return Ok(conn),
                        Err(e) => {
                            last_code = e.code;
                            failures.push(e.message);
                            if e.code == Code::Timeout && deadline.is_some_and(|d| Instant::now() >= d) {
                                break;
                            }
                        }
                    }
                }
                Err(Error::new(
                    last_code,
                    format!(
                        "dial \"{name}\": {} instance(s) tried, all failed: {}",
                        failures.len(),
                        failures.join("; ")
                    ),
                ))
            }
        }
    }
}
