//! Unit tests of tls/ that need certificates: real handshakes between its configs, and rotation. Certificates
//! come from the dev agent's CA (the `consulnative-devagent` dev-dependency) through [`support`].

mod handshake;
mod limits;
mod rotation;
pub(super) mod support;
