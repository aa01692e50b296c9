//! The Consul agent HTTP API: JSON types and the client that calls the agent.

mod address;
pub mod client;
pub mod config;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
mod request;
mod transport;
pub mod types;

#[cfg(test)]
mod tests;
