//! Library logging: events go to an application callback (set through the C ABI), else to stderr when
//! `CONSULNATIVE_LOG` names a level (`error`, `warn`, `info`, `debug`). Never pass a token or a private key here.

use once_cell::sync::Lazy;
use std::sync::RwLock;

/// Log levels, as numbers on the C ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
    fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }
}

/// A sink for log lines: the C ABI installs one that calls the application's callback.
pub type Sink = std::sync::Arc<dyn Fn(Level, &str) + Send + Sync>;

struct Logger {
    max_level: Option<Level>,
    sink: Option<Sink>,
}

static LOGGER: Lazy<RwLock<Logger>> = Lazy::new(|| {
    let max_level = std::env::var("CONSULNATIVE_LOG").ok().and_then(|v| Level::parse(&v));
    RwLock::new(Logger { max_level, sink: None })
});

/// Installs (or with `None` removes) the sink, and the most verbose level it wants.
pub fn set_sink(sink: Option<Sink>, max_level: Level) {
    let mut logger = LOGGER.write().unwrap_or_else(|e| e.into_inner());
    logger.max_level = sink.as_ref().map(|_| max_level);
    logger.sink = sink;
}

/// True when a message at `level` would go anywhere (skip formatting otherwise).
pub fn enabled(level: Level) -> bool {
    let logger = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    logger.max_level.is_some_and(|max| level <= max)
}

/// Emits one log line.
pub fn log(level: Level, message: &str) {
    let logger = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    if logger.max_level.is_none_or(|max| level > max) {
        return;
    }
    match &logger.sink {
        Some(sink) => sink(level, message),
        None => eprintln!("consulnative {}: {}", level.name(), message),
    }
}

macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::log($level, &format!($($arg)*));
        }
    };
}
pub(crate) use log_at;

macro_rules! warning { ($($arg:tt)*) => { $crate::log::log_at!($crate::log::Level::Warn, $($arg)*) }; }
macro_rules! info { ($($arg:tt)*) => { $crate::log::log_at!($crate::log::Level::Info, $($arg)*) }; }
#[allow(unused_macros)]
macro_rules! debug { ($($arg:tt)*) => { $crate::log::log_at!($crate::log::Level::Debug, $($arg)*) }; }
#[allow(unused_imports)]
pub(crate) use {debug, info, warning};
