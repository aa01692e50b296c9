//! The Consul agent HTTP API: JSON types and the client that calls the agent.

pub mod client;
pub mod config;
mod address;
mod request;
mod transport;
pub mod types;

#[cfg(test)]
mod tests;
