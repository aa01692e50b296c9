//! The dev agent's own error type: what went wrong, and whether it was the caller's fault (an HTTP 400) or the
//! agent's (a 500, or a failed start).

use std::fmt;

/// A dev agent failure with a message that says what and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request or configuration was invalid (answered with HTTP 400).
    Invalid(String),
    /// A socket or thread could not be set up.
    Io(String),
    /// The CA or the agent's state failed.
    Internal(String),
}

/// The dev agent's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
    pub(crate) fn io(context: &str, err: &std::io::Error) -> Self {
        Error::Io(format!("{context}: {err}"))
    }
    /// The detail.
    pub fn message(&self) -> &str {
        match self {
            Error::Invalid(m) | Error::Io(m) | Error::Internal(m) => m,
        }
    }
    /// The HTTP status the agent answers for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            _ => 500,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
