//! The Consul agent HTTP API: JSON types and the client that calls the agent.

mod address;
pub mod client;
pub mod config;
mod request;
mod transport;
pub mod types;

#[cfg(test)]
mod tests;
