//! Library logging: lines go to an application sink (the C ABI installs one that calls the application's
//! callback), else to stderr when `CONSULNATIVE_LOG` names a level (`error`, `warn`, `info`, `debug`). The `log`
//! crate's records (rustls' own diagnostics) can be bridged to the same sink. Never pass a token or a private key
//! here.

use once_cell::sync::Lazy;
use std::sync::RwLock;

/// Log levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Something failed and the library could not recover on its own.
    Error,
    /// Something failed and the library keeps going (a refused connection, a watch error).
    Warn,
    /// A change worth knowing (a new leaf, a recovered watch).
    Info,
    /// Detail for debugging.
    Debug,
}

impl LogLevel {
    fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        }
    }
    fn parse(s: &str) -> Option<LogLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error" => Some(LogLevel::Error),
            "warn" | "warning" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" | "trace" => Some(LogLevel::Debug),
            _ => None,
        }
    }
    fn from_log_crate(level: ::log::Level) -> LogLevel {
        match level {
            ::log::Level::Error => LogLevel::Error,
            ::log::Level::Warn => LogLevel::Warn,
            ::log::Level::Info => LogLevel::Info,
            ::log::Level::Debug | ::log::Level::Trace => LogLevel::Debug,
        }
    }
}

/// Where log lines go: called from any library thread with the level and the line.
pub type LogSink = std::sync::Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

struct Logger {
    max_level: Option<LogLevel>,
    sink: Option<LogSink>,
}

static LOGGER: Lazy<RwLock<Logger>> = Lazy::new(|| {
    let max_level = std::env::var("CONSULNATIVE_LOG").ok().and_then(|v| LogLevel::parse(&v));
    RwLock::new(Logger { max_level, sink: None })
});

/// Installs (or with `None` removes, back to `CONSULNATIVE_LOG` on stderr) the sink, and the most verbose level
/// it wants.
pub fn set_log_sink(sink: Option<LogSink>, max_level: LogLevel) {
    let mut logger = LOGGER.write().unwrap_or_else(|e| e.into_inner());
    logger.max_level = match sink {
        Some(_) => Some(max_level),
        None => std::env::var("CONSULNATIVE_LOG").ok().and_then(|v| LogLevel::parse(&v)),
    };
    logger.sink = sink;
    ::log::set_max_level(logger.max_level.map_or(::log::LevelFilter::Off, level_filter));
}

fn level_filter(level: LogLevel) -> ::log::LevelFilter {
    match level {
        LogLevel::Error => ::log::LevelFilter::Error,
        LogLevel::Warn => ::log::LevelFilter::Warn,
        LogLevel::Info => ::log::LevelFilter::Info,
        LogLevel::Debug => ::log::LevelFilter::Debug,
    }
}

/// True when a message at `level` would go anywhere (skip formatting otherwise).
pub(crate) fn enabled(level: LogLevel) -> bool {
    let logger = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    logger.max_level.is_some_and(|max| level <= max)
}

/// Emits one log line.
pub(crate) fn log(level: LogLevel, message: &str) {
    let logger = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    if logger.max_level.is_none_or(|max| level > max) {
        return;
    }
    match &logger.sink {
        Some(sink) => sink(level, message),
        None => eprintln!("consulnative {}: {}", level.name(), message),
    }
}

/// Forwards `log` crate records (from rustls and other dependencies) to the library's sink, as
/// `<target>: <message>`.
struct LogCrateBridge;

impl ::log::Log for LogCrateBridge {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        enabled(LogLevel::from_log_crate(metadata.level()))
    }
    fn log(&self, record: &::log::Record<'_>) {
        let level = LogLevel::from_log_crate(record.level());
        if enabled(level) {
            log(level, &format!("{}: {}", record.target(), record.args()));
        }
    }
    fn flush(&self) {}
}

/// Makes the library's sink the process's `log` logger, so rustls' own diagnostics reach it. Returns false
/// (and changes nothing) when the process already has a `log` logger: a Rust application keeps its own.
pub fn bridge_log_crate() -> bool {
    static BRIDGE: LogCrateBridge = LogCrateBridge;
    let installed = ::log::set_logger(&BRIDGE).is_ok();
    if installed {
        let max = LOGGER.read().unwrap_or_else(|e| e.into_inner()).max_level;
        ::log::set_max_level(max.map_or(::log::LevelFilter::Off, level_filter));
    }
    installed
}

macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::log($level, &format!($($arg)*));
        }
    };
}
pub(crate) use log_at;

macro_rules! warning { ($($arg:tt)*) => { $crate::log::log_at!($crate::log::LogLevel::Warn, $($arg)*) }; }
macro_rules! info { ($($arg:tt)*) => { $crate::log::log_at!($crate::log::LogLevel::Info, $($arg)*) }; }
#[allow(unused_macros)]
macro_rules! debug { ($($arg:tt)*) => { $crate::log::log_at!($crate::log::LogLevel::Debug, $($arg)*) }; }
#[allow(unused_imports)]
pub(crate) use {debug, info, warning};
