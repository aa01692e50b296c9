//! Networking: listeners (the admission pipeline, its limits and callback threads), dialers, connections, the
//! descriptor handoff and resolvers.

mod admission;
pub mod authorize;
mod callbacks;
pub mod conn;
pub mod dialer;
pub mod handoff;
pub mod limits;
pub mod listener;
pub mod resolver;

pub use conn::Conn;
pub use limits::ListenLimits;
pub use listener::{ListenOptions, Listener, ListenerStats, PeerCheck, Refusal, RefusalCallback};
