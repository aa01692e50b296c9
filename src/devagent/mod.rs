//! The embedded Consul-compatible dev agent.
