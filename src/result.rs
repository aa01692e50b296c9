//! The C result codes and the ABI's error type. The numbers are part of the ABI: never renumber or reuse one,
//! only add new ones at the end.

use consulnative_core::api::{Error, ErrorKind};

/// Result codes returned by every fallible `consulnative_*` function. Stable numbers, never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum consulnative_result {
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
    /// Service discovery found no healthy instance. (When instances exist and every dial fails, the error is
    /// the last instance's: e.g. a timeout or a handshake failure, with every attempt in the message.)
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

impl consulnative_result {
    /// Every code, in number order.
    pub(crate) const ALL: [consulnative_result; 21] = [
        Self::Ok,
        Self::NullArgument,
        Self::InvalidArgument,
        Self::AgentUnreachable,
        Self::AgentError,
        Self::AgentPermissionDenied,
        Self::AgentBadResponse,
        Self::NotReady,
        Self::Timeout,
        Self::Handshake,
        Self::CertificateInvalid,
        Self::IdentityMismatch,
        Self::AuthorizationDenied,
        Self::AuthorizationFailed,
        Self::Io,
        Self::Closed,
        Self::NoInstances,
        Self::BufferTooSmall,
        Self::Panic,
        Self::RejectedByApplication,
        Self::Internal,
    ];

    /// A short, stable, human-readable name (`"authorization denied"`) as a NUL-terminated static string.
    pub(crate) fn name(self) -> &'static std::ffi::CStr {
        match self {
            Self::Ok => c"ok",
            Self::NullArgument => c"null argument",
            Self::InvalidArgument => c"invalid argument",
            Self::AgentUnreachable => c"agent unreachable",
            Self::AgentError => c"agent error",
            Self::AgentPermissionDenied => c"agent permission denied",
            Self::AgentBadResponse => c"agent bad response",
            Self::NotReady => c"not ready",
            Self::Timeout => c"timeout",
            Self::Handshake => c"TLS handshake failed",
            Self::CertificateInvalid => c"certificate invalid",
            Self::IdentityMismatch => c"identity mismatch",
            Self::AuthorizationDenied => c"authorization denied",
            Self::AuthorizationFailed => c"authorization failed",
            Self::Io => c"I/O error",
            Self::Closed => c"closed",
            Self::NoInstances => c"no instances",
            Self::BufferTooSmall => c"buffer too small",
            Self::Panic => c"internal panic",
            Self::RejectedByApplication => c"rejected by application",
            Self::Internal => c"internal error",
        }
    }

    /// The code with this number, if any.
    pub(crate) fn from_u32(n: u32) -> Option<consulnative_result> {
        Self::ALL.get(n as usize).copied()
    }
}

impl From<ErrorKind> for consulnative_result {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => Self::InvalidArgument,
            ErrorKind::AgentUnreachable => Self::AgentUnreachable,
            ErrorKind::AgentError => Self::AgentError,
            ErrorKind::AgentPermissionDenied => Self::AgentPermissionDenied,
            ErrorKind::AgentBadResponse => Self::AgentBadResponse,
            ErrorKind::NotReady => Self::NotReady,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Handshake => Self::Handshake,
            ErrorKind::CertificateInvalid => Self::CertificateInvalid,
            ErrorKind::IdentityMismatch => Self::IdentityMismatch,
            ErrorKind::AuthorizationDenied => Self::AuthorizationDenied,
            ErrorKind::AuthorizationFailed => Self::AuthorizationFailed,
            ErrorKind::Io => Self::Io,
            ErrorKind::Closed => Self::Closed,
            ErrorKind::NoInstances => Self::NoInstances,
            ErrorKind::RejectedByApplication => Self::RejectedByApplication,
            ErrorKind::Internal => Self::Internal,
            // A kind added to the core without a code of its own yet.
            _ => Self::Internal,
        }
    }
}

/// A failed call at the ABI: its result code and the message `consulnative_last_error` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AbiError {
    pub result: consulnative_result,
    pub message: String,
}

/// The result of the Rust side of an exported function.
pub(crate) type AbiResult<T> = Result<T, AbiError>;

impl AbiError {
    pub fn new(result: consulnative_result, message: impl Into<String>) -> Self {
        AbiError { result, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        AbiError::new(consulnative_result::InvalidArgument, message)
    }
}

impl From<Error> for AbiError {
    fn from(e: Error) -> Self {
        AbiError { result: e.kind().into(), message: e.message().to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_and_stable() {
        for (n, code) in consulnative_result::ALL.iter().enumerate() {
            assert_eq!(*code as u32, n as u32);
            assert_eq!(consulnative_result::from_u32(n as u32), Some(*code));
        }
        assert_eq!(consulnative_result::from_u32(21), None);
        assert_eq!(consulnative_result::AuthorizationDenied as u32, 12);
    }
}
