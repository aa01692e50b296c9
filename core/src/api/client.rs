//! A client of one Consul agent.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::options::ClientOptions;
use super::service::Service;
use crate::agent::client::AgentClient;
use crate::agent::types::{ServiceCheck, ServiceConnect, ServiceRegistration};
use crate::encoding::go_duration as fmt_duration;
use crate::error::{Error, Result};
use crate::watch::{RootsWatch, ServiceCerts};

pub(crate) struct ClientInner {
    pub agent: AgentClient,
    pub options: ClientOptions,
    roots: Mutex<Weak<RootsWatch>>,
}

impl ClientInner {
    /// The client's roots watch, started with the first service and shared by all of them.
    fn roots_watch(&self) -> Result<Arc<RootsWatch>> {
        let mut slot = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watch) = slot.upgrade() {
            return Ok(watch);
        }
        let watch = RootsWatch::start(self.agent.clone(), self.options.watch.clone())?;
        *slot = Arc::downgrade(&watch);
        Ok(watch)
    }
}

/// A client of one Consul agent. Cheap to clone; services keep it alive.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

/// A check for [`Client::register`]: an HTTPS check could not present a client certificate, so TCP or TTL.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationCheck {
    /// No health check: the agent lists the instance as passing.
    None,
    /// The agent connects to the service's address and port at this interval.
    Tcp {
        /// Time between two connection attempts.
        interval: Duration,
    },
    /// The application must call [`Client::pass_ttl`] within this period.
    Ttl {
        /// How long a pass stays valid.
        ttl: Duration,
    },
}

/// A Connect-native service registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The service name.
    pub name: String,
    /// Defaults to the name.
    pub id: Option<String>,
    /// Defaults to the agent's address.
    pub address: Option<String>,
    /// The port the service listens on (required).
    pub port: u16,
    /// Catalog tags.
    pub tags: Vec<String>,
    /// The health check the agent runs.
    pub check: RegistrationCheck,
}

impl Registration {
    /// The ID of the check this registration creates (`service:<id>`, as Consul names a service's single check).
    pub fn check_id(&self) -> String {
        format!("service:{}", self.id.as_deref().unwrap_or(&self.name))
    }
}

impl Client {
    /// Connects to the agent described by `options` (nothing is sent until a service starts or a call is made).
    pub fn new(options: ClientOptions) -> Result<Client> {
        let agent = AgentClient::new(options.agent.clone())?;
        Ok(Client { inner: Arc::new(ClientInner { agent, options, roots: Mutex::new(Weak::new()) }) })
    }

    /// The agent address, for messages.
    pub fn agent_address(&self) -> String {
        self.inner.agent.address()
    }

    /// Starts the certificate watches for service `name` and returns its handle (not ready yet: see
    /// [`Service::wait_ready`]).
    pub fn service(&self, name: &str) -> Result<Service> {
        if name.is_empty() || name.contains('/') {
            return Err(Error::invalid(format!("invalid service name {name:?}")));
        }
        let roots = self.inner.roots_watch()?;
        let certs = ServiceCerts::start(self.inner.agent.clone(), name, roots, self.inner.options.watch.clone())?;
        Ok(Service::new(self.inner.clone(), certs))
    }

    /// Registers a Connect-native service with the local agent.
    pub fn register(&self, reg: &Registration) -> Result<()> {
        if reg.name.is_empty() {
            return Err(Error::invalid("a registration needs a service name"));
        }
        if reg.port == 0 {
            return Err(Error::invalid(format!("registration of \"{}\" needs a port", reg.name)));
        }
        let check = match &reg.check {
            RegistrationCheck::None => None,
            RegistrationCheck::Tcp { interval } => Some(ServiceCheck {
                check_id: Some(reg.check_id()),
                name: Some(format!("{} TCP", reg.name)),
                tcp: Some(crate::net::resolver::host_port(reg.address.as_deref().unwrap_or("127.0.0.1"), reg.port)),
                interval: Some(fmt_duration(*interval)),
                ..Default::default()
            }),
            RegistrationCheck::Ttl { ttl } => Some(ServiceCheck {
                check_id: Some(reg.check_id()),
                name: Some(format!("{} TTL", reg.name)),
                ttl: Some(fmt_duration(*ttl)),
                ..Default::default()
            }),
        };
        let body = ServiceRegistration {
            id: reg.id.clone(),
            name: reg.name.clone(),
            tags: if reg.tags.is_empty() { None } else { Some(reg.tags.clone()) },
            port: Some(reg.port),
            address: reg.address.clone(),
            check,
            connect: Some(ServiceConnect { native: true }),
            ..Default::default()
        };
        self.inner.agent.register(&body)
    }

    /// Removes a registration by service ID.
    pub fn deregister(&self, service_id: &str) -> Result<()> {
        self.inner.agent.deregister(service_id)
    }

    /// Marks a TTL check passing.
    pub fn pass_ttl(&self, check_id: &str, note: Option<&str>) -> Result<()> {
        self.inner.agent.pass_ttl(check_id, note)
    }
}
