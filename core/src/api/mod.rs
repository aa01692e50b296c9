//! The public surface of the library, and the only one: the C ABI crate and Rust callers use exactly this.
//!
//! - [`Client`]: one Consul agent and its CA roots watch, configured by [`ClientOptions`] (the `CONSUL_*`
//!   environment, then keys set by the caller).
//! - [`Service`]: one identity: its leaf certificate, readiness, [`Listener`]s and dials that give [`Conn`]s.
//! - [`wire`]: the agent API's JSON types and text encodings, shared with the dev agent so both sides of the wire
//!   agree by construction.
//! - Logging: [`set_log_sink`] and [`bridge_log_crate`].

mod client;
mod options;
mod service;
pub mod wire;

pub use crate::agent::config::{AgentConfig, AgentTls, ResponseLimits};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::log::{bridge_log_crate, set_log_sink, LogLevel, LogSink};
pub use crate::net::{Conn, ListenOptions, Listener, PeerCheck, Refusal, RefusalCallback};
pub use crate::tls::PeerIdentity;
pub use crate::watch::{ServiceEvent, ServiceStatus, WatchTiming};
pub use client::{Client, Registration, RegistrationCheck};
pub use options::{ClientOptions, CONFIG_KEYS};
pub use service::{DialOptions, DialTarget, EventCallback, Service};
