//! The error type: a stable [`ErrorKind`] plus a message that carries the detail (which service, which
//! certificate, what the agent answered), and the underlying error as its `source()` where there is one.
//!
//! The C ABI crate maps each kind to a `consulnative_result` number; the numbers live there, not here.

use std::fmt;
use std::sync::Arc;

/// What went wrong, in terms a caller can act on. Every kind has a stable C result code in the ABI crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument was invalid: malformed address, out-of-range value, bad PEM, unknown configuration key.
    InvalidArgument,
    /// The Consul agent could not be reached (connection refused, DNS, TLS to the agent failed).
    AgentUnreachable,
    /// The agent answered with an error status (400, 429, 500, 503...). The message holds status and body.
    AgentError,
    /// The agent answered 403: the ACL token lacks a permission. The message holds the agent's text.
    AgentPermissionDenied,
    /// The agent's answer could not be understood (malformed JSON, bad PEM, missing fields).
    AgentBadResponse,
    /// The service has no usable certificates yet (no leaf, no roots, or the leaf does not verify).
    NotReady,
    /// The operation did not complete before its timeout.
    Timeout,
    /// The TLS handshake failed (protocol error, peer hung up, peer sent no certificate).
    Handshake,
    /// A peer certificate chain did not verify against the current CA roots (foreign CA, expired, wrong usage).
    CertificateInvalid,
    /// The peer's SPIFFE identity is not the expected one, or is not a Consul service identity.
    IdentityMismatch,
    /// The agent's intentions denied the connection. The message holds the agent's reason.
    AuthorizationDenied,
    /// Authorization could not be decided (the authorize call failed or timed out): the connection is refused.
    AuthorizationFailed,
    /// An I/O error on a socket.
    Io,
    /// The connection or handle was closed.
    Closed,
    /// Service discovery found no healthy instance. (When instances exist and every dial fails, the error is
    /// the last instance's: e.g. a timeout or a handshake failure, with every attempt in the message.)
    NoInstances,
    /// An application callback rejected the peer.
    RejectedByApplication,
    /// An internal error that is none of the above.
    Internal,
}

/// Short alias used inside the crate.
pub(crate) type Code = ErrorKind;

impl ErrorKind {
    /// A short, stable, human-readable name for the kind.
    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid argument",
            Code::AgentUnreachable => "agent unreachable",
            Code::AgentError => "agent error",
            Code::AgentPermissionDenied => "agent permission denied",
            Code::AgentBadResponse => "agent bad response",
            Code::NotReady => "not ready",
            Code::Timeout => "timeout",
            Code::Handshake => "TLS handshake failed",
            Code::CertificateInvalid => "certificate invalid",
            Code::IdentityMismatch => "identity mismatch",
            Code::AuthorizationDenied => "authorization denied",
            Code::AuthorizationFailed => "authorization failed",
            Code::Io => "I/O error",
            Code::Closed => "closed",
            Code::NoInstances => "no instances",
            Code::RejectedByApplication => "rejected by application",
            Code::Internal => "internal error",
        }
    }
}

/// The underlying error of an [`Error`], shared so that errors stay cheap to clone.
type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An error: a stable kind, a message with the detail, and the underlying error if any.
#[derive(Clone)]
pub struct Error {
    pub(crate) code: ErrorKind,
    pub(crate) message: String,
    source: Option<Source>,
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with a message that says what failed and why.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { code: kind, message: message.into(), source: None }
    }
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }
    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Error::new(Code::Timeout, message)
    }
    /// An I/O failure while doing `context`; timeouts become [`ErrorKind::Timeout`]. Keeps `err` as the source.
    pub(crate) fn io(context: &str, err: &std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Code::Timeout,
            _ => Code::Io,
        };
        Error::new(kind, format!("{context}: {err}")).with_source(std::io::Error::new(err.kind(), err.to_string()))
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::new(Code::Internal, message)
    }
    /// Prefix the message with more context, keeping the kind and source.
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
    /// Records the underlying error, returned by `source()`.
    pub(crate) fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.code
    }
    /// The detail: which service, which certificate, what the agent answered. Never holds a token or a key.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl PartialEq for Error {
    /// Two errors are equal when kind and message are (the source is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message
    }
}
impl Eq for Error {}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("kind", &self.code).field("message", &self.message).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}
