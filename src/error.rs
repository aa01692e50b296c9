//! Errors and the result codes the C ABI returns.
//!
//! Every fallible operation in the crate returns [`Error`]: a stable [`Code`] plus a message that carries the
//! detail (which service, which certificate, what the agent answered). The numbers of [`Code`] are part of the
//! C ABI: never renumber or reuse one, only add new ones at the end.

use std::fmt;

/// Result codes returned by every fallible `consulnative_*` function. Stable numbers, never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsulnativeResult {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument was invalid: not UTF-8, malformed address, out-of-range value, bad PEM.
    InvalidArgument = 2,
    /// The Consul agent could not be reached (connection refused, DNS, TLS to the agent failed).
    AgentUnreachable = 3,
    /// The agent answered with an error status (400, 429, 500, 503...). The message holds status and body.
    AgentError = 4,
    /// The agent answered 403: the ACL token lacks a permission. The message holds the agent's text.
    AgentPermissionDenied = 5,
    /// The agent's answer could not be understood (malformed JSON, bad PEM, missing fields).
    AgentBadResponse = 6,
    /// The service has no usable certificates yet (no leaf, no roots, or the leaf does not verify).
    NotReady = 7,
    /// The operation did not complete before its timeout.
    Timeout = 8,
    /// The TLS handshake failed (protocol error, peer hung up, peer sent no certificate).
    Handshake = 9,
    /// A peer certificate chain did not verify against the current CA roots (foreign CA, expired, wrong usage).
    CertificateInvalid = 10,
    /// The peer's SPIFFE identity is not the expected one, or is not a Consul service identity.
    IdentityMismatch = 11,
    /// The agent's intentions denied the connection. The message holds the agent's reason.
    AuthorizationDenied = 12,
    /// Authorization could not be decided (the authorize call failed or timed out): the connection is refused.
    AuthorizationFailed = 13,
    /// An I/O error on a socket.
    Io = 14,
    /// The connection or handle was closed.
    Closed = 15,
    /// Service discovery found no healthy instance, or every instance failed.
    NoInstances = 16,
    /// An output buffer was too small; the needed length is reported.
    BufferTooSmall = 17,
    /// A bug: a Rust panic was caught at the ABI boundary. Please report it.
    Panic = 18,
    /// An application callback rejected the peer.
    RejectedByApplication = 19,
    /// An internal error that is none of the above.
    Internal = 20,
}

/// Short alias used inside the crate.
pub type Code = ConsulnativeResult;

impl Code {
    /// A short, stable, human-readable name for the code.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::NullArgument => "null argument",
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
            Code::BufferTooSmall => "buffer too small",
            Code::Panic => "internal panic",
            Code::RejectedByApplication => "rejected by application",
            Code::Internal => "internal error",
        }
    }
}

/// An error: a stable code and a message with the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Error::new(Code::Timeout, message)
    }
    pub fn io(context: &str, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::TimedOut || err.kind() == std::io::ErrorKind::WouldBlock {
            return Error::new(Code::Timeout, format!("{context}: {err}"));
        }
        Error::new(Code::Io, format!("{context}: {err}"))
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Code::Internal, message)
    }
    /// Prefix the message with more context, keeping the code.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code.name(), self.code as u32, self.message)
    }
}

impl std::error::Error for Error {}
