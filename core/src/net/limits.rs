//! The bounds of one listener: how much work and memory strangers can make it hold. Every queue and pool of the
//! listener is sized from here; nothing it holds grows without limit.

use std::time::Duration;

/// Bounds of one listener. The defaults suit a service on a small machine; each has a client configuration key
/// (in parentheses), so C, Python and Ruby callers set them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenLimits {
    /// Connections between TCP accept and admission at once: TLS handshake, authorize call, peer check, and
    /// waiting for room in the accept queue (`max_handshakes`, default 256). At the limit the listener stops
    /// accepting: new connections wait in the kernel's listen backlog.
    pub max_handshakes: usize,
    /// Admitted connections waiting for `accept` (`accept_queue`, default 128). When it is full the listener
    /// stops accepting; at most `max_handshakes` more connections finish their handshake meanwhile and wait for
    /// room.
    pub accept_queue: usize,
    /// Refusals waiting for the application's refusal callback, which runs on the listener's own thread
    /// (`refusal_queue`, default 256). Beyond it refusals are counted, and reported to the callback as one
    /// "N refusals dropped" once there is room.
    pub refusal_queue: usize,
    /// Authorize calls to the agent in flight at once (`max_authorizations`, default 16). A connection that cannot
    /// get a slot within the authorize timeout is refused (fail closed).
    pub max_authorizations: usize,
    /// Threads that run the application's peer check, started when a check is set (`peer_check_threads`,
    /// default 2). A check that does not answer within the authorize timeout refuses the connection.
    pub peer_check_threads: usize,
    /// When every handshake slot is taken (or descriptors ran out), TLS handshakes that have been running this
    /// long are cut to make room (`busy_handshake_timeout_ms`, default 1 s): a client that is slow or silent on
    /// purpose cannot hold the listener for the whole handshake timeout.
    pub busy_handshake_timeout: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_handshakes: 256,
            accept_queue: 128,
            refusal_queue: 256,
            max_authorizations: 16,
            peer_check_threads: 2,
            busy_handshake_timeout: Duration::from_secs(1),
        }
    }
}

/// The largest value each count accepts (a typo such as an extra zero should not allocate gigabytes).
pub(crate) const MAX_COUNT: usize = 1 << 20;
/// The most peer check threads a listener may start.
pub(crate) const MAX_PEER_CHECK_THREADS: usize = 64;
/// The most authorize calls a listener may have in flight (they run on the runtime's blocking pool).
pub(crate) const MAX_AUTHORIZATIONS: usize = 128;
