//! The HTTP client for the Consul agent API.
