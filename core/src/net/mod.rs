//! Networking: listeners, dialers, connections, the descriptor handoff and resolvers.

pub mod authorize;
pub mod conn;
pub mod dialer;
pub mod handoff;
pub mod listener;
pub mod resolver;

pub use conn::Conn;
pub use listener::{ListenOptions, Listener, PeerCheck, Refusal, RefusalCallback};
