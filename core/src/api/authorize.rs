//! Asking the agent whether one service may connect to another (`POST /v1/agent/connect/authorize`), the same
//! question a listener asks for every inbound connection: for `consulnative authorize web db`, and for clients that
//! want to say why a server hung up on them.

use std::time::Duration;

use super::client::Client;
use super::service::Service;
use crate::agent::client::BlockingQuery;
use crate::agent::types::AuthorizeRequest;
use crate::error::{Code, Error, Result};
use crate::identity::ServiceId;

/// The agent's answer to "may `source_uri` connect to `destination`?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The SPIFFE URI that was asked about.
    pub source_uri: String,
    /// The destination service.
    pub destination: String,
    /// True when the intentions allow the connection.
    pub authorized: bool,
    /// The agent's reason, e.g. `Matched L4 intention: default/web => default/db (ID: ..., Precedence: 9)`.
    pub reason: String,
}

impl Authorization {
    /// `Ok` when allowed, else an `AuthorizationDenied` error with the agent's reason.
    pub fn into_result(self) -> Result<Authorization> {
        if self.authorized {
            Ok(self)
        } else {
            Err(Error::new(
                Code::AuthorizationDenied,
                format!("{} => {} denied by the agent: {}", self.source_uri, self.destination, self.reason),
            ))
        }
    }
}

impl Client {
    /// Asks the agent whether `source` may connect to service `destination`. `source` is a full `spiffe://` URI
    /// or a service name, which is turned into the URI a leaf of that service carries in this client's datacenter
    /// (else the agent's), namespace and partition, and the agent's trust domain. A denial is an `Ok` answer
    /// with `authorized: false`.
    pub fn authorize(&self, source: &str, destination: &str) -> Result<Authorization> {
        let source_uri = if source.starts_with("spiffe://") { source.to_string() } else { self.service_uri(source)? };
        self.ask(source_uri, String::new(), destination)
    }

    fn service_uri(&self, service: &str) -> Result<String> {
        if service.is_empty() || service.contains('/') {
            return Err(Error::invalid(format!("invalid service name {service:?}")));
        }
        let agent = &self.inner.agent;
        let roots = agent.roots(&BlockingQuery { index: 0, wait: Duration::from_millis(1) })?.value;
        if roots.trust_domain.is_empty() {
            return Err(Error::new(Code::NotReady, "the agent's CA has no trust domain yet (Connect not enabled?)"));
        }
        let options = &self.inner.options.agent;
        let datacenter = match &options.datacenter {
            Some(dc) => dc.clone(),
            None => agent.agent_self()?.config.datacenter,
        };
        Ok(ServiceId {
            trust_domain: roots.trust_domain.to_ascii_lowercase(),
            partition: options.partition.clone().unwrap_or_default(),
            namespace: options.namespace.clone().unwrap_or_default(),
            datacenter,
            service: service.to_string(),
        }
        .uri())
    }

    fn ask(&self, source_uri: String, serial: String, destination: &str) -> Result<Authorization> {
        if destination.is_empty() || destination.contains('/') {
            return Err(Error::invalid(format!("invalid destination service name {destination:?}")));
        }
        let request = AuthorizeRequest {
            target: destination.to_string(),
            client_cert_uri: source_uri.clone(),
            client_cert_serial: serial,
        };
        let answer = self.inner.agent.authorize(&request, self.inner.options.authorize_timeout)?;
        Ok(Authorization {
            source_uri,
            destination: destination.to_string(),
            authorized: answer.authorized,
            reason: answer.reason,
        })
    }
}

impl Service {
    /// Asks the agent whether this service, with its current leaf, may connect to `destination`: what the
    /// destination's listener will ask when this service dials it. `NotReady` before the leaf arrives.
    pub fn authorize(&self, destination: &str) -> Result<Authorization> {
        let status = self.status();
        let (Some(uri), Some(serial)) = (status.spiffe_id, status.leaf_serial) else {
            return Err(Error::new(Code::NotReady, format!("service \"{}\" has no leaf certificate yet", self.name())));
        };
        Client { inner: self.client().clone() }.ask(uri, serial, destination)
    }
}
