//! Certificate watching: one roots watch per client, one leaf watch per service, each a blocking-query loop on
//! its own small thread (agent calls are blocking ureq calls and stay off the async workers).
//!
//! Each watch parses what the agent sends once, builds the TLS material once (tls::Roots, tls::Leaf), and swaps it
//! into shared state that every new handshake reads. The last good certificates stay in force while the agent is
//! away; the error is recorded for status and readiness messages. An answer is checked (`validate`) before it
//! replaces the last good one.

pub mod blocking;
mod roots;
mod service;
pub(crate) mod validate;

pub use blocking::WatchTiming;
pub use roots::RootsWatch;
pub use service::{ServiceCerts, ServiceEvent, ServiceStatus};

/// Spawns a named watch thread with a small stack.
fn spawn_watch_thread(name: String, body: impl FnOnce() + Send + 'static) -> crate::Result<()> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(256 * 1024)
        .spawn(body)
        .map(|_| ())
        .map_err(|e| crate::Error::internal(format!("cannot start a watch thread: {e}")))
}
