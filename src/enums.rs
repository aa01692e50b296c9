//! The C enums other than the result codes, with their conversions from the core's types. Numbers are part of
//! the ABI: never renumber or reuse one.

use consulnative_core::api::{LogLevel, ServiceEvent};

/// What a service change callback is told.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum consulnative_event {
    /// A new leaf certificate is in force for new handshakes.
    LeafRotated = 1,
    /// The CA roots changed.
    RootsChanged = 2,
    /// A watch failed to reach the agent or got an error; the last good certificates stay in force.
    WatchError = 3,
}

impl From<ServiceEvent> for consulnative_event {
    fn from(event: ServiceEvent) -> Self {
        match event {
            ServiceEvent::LeafRotated => Self::LeafRotated,
            ServiceEvent::RootsChanged => Self::RootsChanged,
            // A watch error, or an event added to the core later: tell the application to look at the status.
            _ => Self::WatchError,
        }
    }
}

/// Log levels of `consulnative_set_logger`, most severe first.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum consulnative_log_level {
    /// Something failed and the library could not recover on its own.
    Error = 1,
    /// Something failed and the library keeps going (a refused connection, a watch error).
    Warn = 2,
    /// A change worth knowing (a new leaf, a recovered watch).
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
}

impl From<LogLevel> for consulnative_log_level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => Self::Error,
            LogLevel::Warn => Self::Warn,
            LogLevel::Info => Self::Info,
            LogLevel::Debug => Self::Debug,
        }
    }
}

impl consulnative_log_level {
    /// The core level for a `max_level` argument: 1..=4, anything above meaning debug (0 is handled by the caller).
    pub(crate) fn core_level(max_level: u32) -> LogLevel {
        match max_level {
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

/// Which PEM document `consulnative_service_pem` writes.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum consulnative_pem_kind {
    /// The current leaf certificate followed by its intermediates.
    LeafChain = 1,
    /// The current leaf's private key. Handle it as a secret.
    LeafKey = 2,
    /// Every current CA root.
    Roots = 3,
}
