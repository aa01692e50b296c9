//! consulnative-devagent: a Consul-compatible dev agent, `consul agent -dev` reduced to what Connect-native apps
//! use, for tests and demos. Never linked into the production library: the bindings, the C demo and the tests run
//! the `consulnative-dev-agent` binary as a child process ([`process::DevAgentProcess`]).
//!
//! It serves, over plain HTTP on its own thread and tokio runtime: the agent CA roots and leaf endpoints
//! (blocking queries, renewal at a random 60–90 % of the leaf lifetime, root rotation with a cross-signed
//! intermediate), authorize against intentions, the intentions `exact` API, service registration with TTL and
//! TCP checks, `/v1/health/connect/<name>`, `/v1/agent/self`, an optional ACL token, and test-only controls
//! under `/_devagent/…` (faults, rotation, ad-hoc leaves). See `docs/consul-connect-api.md` in the repository for
//! the wire format.
//!
//! Modules: [`ca`] is the workspace's one Consul-style CA (the agent's, and the one tests build certificates
//! with); [`process`] starts and controls the binary; [`DevAgent`] is the server the binary runs. Internally,
//! `http/` answers requests (one file per group of endpoints), `state` holds the CA, leaves, intentions, catalog
//! and faults, `acl` checks the token.
//!
//! Decisions where Consul has several behaviours:
//! - Authorize with no matching intention answers `Default behavior configured by ACLs`, which is what
//!   `consul agent -dev` 1.19+ says when `default_intention_policy` is unset; `default_allow` plays the role of
//!   the ACL default policy.
//! - Intention precedence (CE, namespaces always `default`): exact→exact 9, `*`→exact 8, exact→`*` 6, `*`→`*` 5.
//! - Leaves are valid from `now − min(60 s, TTL/10)` to that instant plus the TTL (Consul: now − 1 min, plus the
//!   TTL), so sub-minute test TTLs still yield a usable certificate.
//! - A blocking query returns when the current index is greater than the requested one (like Consul's agent
//!   cache), or when `wait` (+ up to wait/16 jitter) passes.

#![warn(missing_docs)]

mod acl;
pub mod ca;
mod decode;
mod error;
mod filter;
/// The entry point of the fuzz target for request decoding (`fuzz/`): only with the `fuzzing` cargo feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
pub mod process;
mod state;
mod util;

use state::Shared;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use error::{Error, Result};
pub use util::parse_go_duration;

/// Configuration of a [`DevAgent`].
#[derive(Clone)]
pub struct DevAgentConfig {
    /// Listen address; port 0 picks a free port. Default `127.0.0.1:0`.
    pub http_addr: SocketAddr,
    /// When set, the ACL-protected endpoints require this token.
    pub acl_token: Option<String>,
    /// What authorize answers when no intention matches. Default true, like `consul agent -dev` without ACLs.
    pub default_allow: bool,
    /// Leaf certificate TTL. Default 72h; may be a few seconds for tests.
    pub leaf_ttl: Duration,
    /// The datacenter name. Default `dc1`.
    pub datacenter: String,
    /// The node name. Default: the host name, else `consulnative-dev`.
    pub node_name: String,
}

impl Default for DevAgentConfig {
    fn default() -> Self {
        DevAgentConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            acl_token: None,
            default_allow: true,
            leaf_ttl: Duration::from_secs(72 * 3600),
            datacenter: "dc1".to_string(),
            node_name: default_node_name(),
        }
    }
}

impl std::fmt::Debug for DevAgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token itself.
        f.debug_struct("DevAgentConfig")
            .field("http_addr", &self.http_addr)
            .field("acl_token", &self.acl_token.as_ref().map(|_| "<redacted>"))
            .field("default_allow", &self.default_allow)
            .field("leaf_ttl", &self.leaf_ttl)
            .field("datacenter", &self.datacenter)
            .field("node_name", &self.node_name)
            .finish()
    }
}

fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "consulnative-dev".to_string())
}

/// Which endpoint a [`Fault`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultEndpoint {
    /// Roots, leaf and authorize.
    All,
    /// `/v1/agent/connect/ca/roots`.
    Roots,
    /// `/v1/agent/connect/ca/leaf/<service>`.
    Leaf,
    /// `/v1/agent/connect/authorize`.
    Authorize,
}

/// What a [`Fault`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer this status with this `text/plain` body.
    Status(u16, String),
    /// Answer 200 with a truncated JSON body.
    MalformedJson,
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Blocking queries (with `index` > 0) answer at once with `X-Consul-Index: 1`, below any real index.
    BackwardsIndex,
    /// The leaf endpoint answers at once with this other service's (real, cached) leaf, as an agent that mixes
    /// up services would.
    LeafFor(String),
    /// The leaf endpoint answers at once with a leaf for this URI SAN, signed by the active root.
    LeafUri(String),
    /// The leaf endpoint answers at once with a leaf for the right service signed by a CA the roots do not list
    /// (same trust domain).
    ForeignCa,
    /// The leaf endpoint answers at once with a leaf for the right service, signed by the active root, valid from
    /// the first to the second Unix time (either may be in the past or the future).
    LeafWindow(i64, i64),
    /// Answer 200 with a JSON body of this many bytes (a string of spaces), announced in `Content-Length`.
    HugeBody(u64),
    /// Answers that carry `X-Consul-Index` carry this text instead (`abc`, `0`, `-1`...).
    Index(String),
}

/// A test-only fault injected into the agent's answers until cleared (`PUT`/`DELETE /_devagent/fault`, or
/// [`process::DevAgentProcess::set_fault`] and [`process::DevAgentProcess::clear_faults`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Where it applies.
    pub endpoint: FaultEndpoint,
    /// What it does.
    pub kind: FaultKind,
}

/// The dev agent server, running on its own thread: what the `consulnative-dev-agent` binary runs. Tests and
/// other programs start the binary ([`process::DevAgentProcess`]) and control it over HTTP. Stops on
/// [`DevAgent::stop`] or drop.
pub struct DevAgent {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop_tx: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl DevAgent {
    /// Bind, create the CA and start serving. Returns once the listener is bound and serving.
    pub fn start(config: DevAgentConfig) -> Result<DevAgent> {
        let listener = std::net::TcpListener::bind(config.http_addr)
            .map_err(|e| Error::io(&format!("dev agent: bind {}", config.http_addr), &e))?;
        listener.set_nonblocking(true).map_err(|e| Error::io("dev agent: listener", &e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("dev agent: listener address", &e))?;
        let shared = Arc::new(Shared::new(config)?);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("consulnative-devagent".to_string())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::io("dev agent: tokio runtime", &e)));
                        return;
                    }
                };
                thread_shared.set_runtime(Some(rt.handle().clone()));
                rt.block_on(async {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(Error::io("dev agent: listener", &e)));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    http::serve(listener, thread_shared.clone(), stop_rx).await;
                });
                thread_shared.set_runtime(None);
                drop(rt); // cancels connections, check and renewal tasks
            })
            .map_err(|e| Error::io("dev agent: spawn thread", &e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::internal("dev agent: server thread ended during start-up")),
        }
        Ok(DevAgent { shared, addr, stop_tx, thread: Mutex::new(Some(thread)) })
    }

    /// The bound HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `<cluster-uuid>.consul`.
    pub fn trust_domain(&self) -> String {
        self.shared.lock().ca.trust_domain.clone()
    }

    /// Close the listener and end the runtime thread. Idempotent.
    pub fn stop(&self) {
        let _ = self.stop_tx.send(true);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for DevAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for DevAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAgent").field("addr", &self.addr).finish()
    }
}
