//! The public surface of the library, and the only one: the C ABI crate and Rust callers use exactly this.
//!
//! - [`Client`]: one Consul agent and its CA roots watch, configured by [`ClientOptions`] (the `CONSUL_*`
//!   environment, then keys set by the caller).
//! - [`Service`]: one identity: its leaf certificate, readiness, [`Listener`]s and dials that give [`Conn`]s.
//! - [`wire`]: the agent API's JSON types and text encodings, shared with the dev agent so both sides of the wire
//!   agree by construction.
//! - PEM files for programs with their own TLS stack: [`Service::write_pem_files`]; [`Client::authorize`] asks
//!   the agent about a pair of services.
//! - Logging: [`set_log_sink`] and [`bridge_log_crate`].

mod authorize;
mod client;
mod options;
mod pem_files;
mod service;
pub mod wire;

pub use crate::agent::config::{AgentConfig, AgentTls, ResponseLimits};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::log::{bridge_log_crate, set_log_sink, LogLevel, LogSink};
pub use crate::net::{Conn, ListenLimits, ListenOptions, Listener, ListenerStats, PeerCheck, Refusal, RefusalCallback};
pub use crate::tls::{ChainLimits, PeerIdentity};
pub use crate::watch::{ServiceEvent, ServiceStatus, WatchTiming};
pub use authorize::Authorization;
pub use client::{Client, Registration, RegistrationCheck};
pub use options::{ClientOptions, CONFIG_KEYS};
pub use pem_files::{PemFilesCallback, PemFilesWrite, PEM_FILE_NAMES};
pub use service::{DialOptions, DialTarget, EventCallback, Service};
