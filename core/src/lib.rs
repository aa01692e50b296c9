//! consulnative-core: Consul Connect-native services for programs not written in Go.
//!
//! [`api`] is the whole public surface: [`api::Client`] (one agent, one CA roots watch), [`api::Service`] (one
//! identity: its certificates, listeners and dialers), [`api::Conn`], and the agent API's wire types. Everything
//! below it is private to the crate, so the C ABI crate and Rust callers get the same rules.
//!
//! Layers, top to bottom (arrows point down only):
//! - `api`: the Rust-facing library.
//! - `net`: listeners (handshake pipeline, **the authorize call**), dialers, connections, descriptor handoff.
//! - `tls`: rustls configs, certificate verifiers, the current-leaf resolver.
//! - `watch`: **where rotation happens**: leaf and roots blocking-query watches, the shared current certificates.
//! - `identity`: SPIFFE IDs and certificate inspection.
//! - `agent`: the Consul HTTP API client, its configuration and JSON types.
//! - `runtime`, `log`, `error` (**the result codes**), `encoding`.

#![warn(missing_docs)]

pub mod api;

mod agent;
mod encoding;
mod error;
/// Entry points for the fuzz targets in `fuzz/`: only with the `fuzzing` cargo feature, never in the production
/// library.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod identity;
mod log;
mod net;
mod runtime;
mod tls;
mod watch;

pub(crate) use error::{Error, Result};
