//! Finding instances of a service to dial: Consul's `/v1/health/connect/<name>?passing` (connect-native instances
//! and sidecar proxies), shuffled so load spreads, or a static address.

use std::net::{IpAddr, SocketAddr};

use crate::agent::client::AgentClient;
use crate::error::{Code, Error, Result};

/// One dialable instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `host:port`, with IPv6 hosts in brackets.
    pub address: String,
    /// The instance's datacenter (part of the SPIFFE ID it must present).
    pub datacenter: String,
}

/// Healthy instances of `service` in random order. `NoInstances` when there are none.
pub fn discover(agent: &AgentClient, service: &str, datacenter: Option<&str>) -> Result<Vec<Instance>> {
    let entries = agent.health_connect(service, datacenter, true)?;
    let mut instances: Vec<Instance> = entries
        .iter()
        .filter(|e| e.service.port != 0)
        .map(|e| {
            let host = if e.service.address.is_empty() { &e.node.address } else { &e.service.address };
            Instance { address: host_port(host, e.service.port), datacenter: e.node.datacenter.clone() }
        })
        .collect();
    if instances.is_empty() {
        let dc = datacenter.map(|d| format!(" in datacenter {d}")).unwrap_or_default();
        return Err(Error::new(
            Code::NoInstances,
            format!("no healthy instance of \"{service}\"{dc} at {}", agent.address()),
        ));
    }
    fastrand::shuffle(&mut instances);
    Ok(instances)
}

/// Checks that `address` reads `host:port` (IPv6 hosts in brackets) before anything is dialed.
pub fn check_host_port(address: &str) -> Result<()> {
    let bad = || Error::invalid(format!("not a dial address: {address:?} (use host:port, [v6]:port)"));
    if address.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains([':', ' ', '/']) || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

/// Formats `host:port`, bracketing IPv6 literals.
pub fn host_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => SocketAddr::from((v6, port)).to_string(),
        _ => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_port("::1", 8443), "[::1]:8443");
        assert_eq!(host_port("10.0.1.12", 5432), "10.0.1.12:5432");
        assert_eq!(host_port("db.example", 1), "db.example:1");
    }
}
