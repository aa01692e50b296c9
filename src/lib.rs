//! libconsulnative: Consul Connect-native services for programs not written in Go.
//!
//! Layers, top to bottom (see README.md, "Architecture"):
//! - `ffi`: the C ABI (handles, result codes, callbacks, panic boundary). No logic of its own.
//! - `api`: the Rust-facing library: Client, Service, Listener, Conn.
//! - `net`: tokio listeners and dialers, handshake pipeline, fd handoff, resolvers.
//! - `tls`: rustls configs, certificate verifiers, current-leaf resolver.
//! - `watch`: leaf and roots blocking-query watchers and the shared current-certificates state.
//! - `identity`: SPIFFE IDs and certificate inspection.
//! - `agent`: the Consul HTTP API client and JSON types.
//! - `runtime`: the one tokio runtime.
//! - `devagent`: the embedded Consul-compatible dev agent (feature `devagent`).

pub mod agent;
#[cfg(feature = "devagent")]
pub mod devagent;
pub mod encoding;
pub mod error;
pub mod identity;
pub mod tls;

pub use error::{Code, Error, Result};
pub(crate) mod log;
pub mod runtime;
pub mod watch;
pub mod api;
pub mod net;
pub mod ffi;
