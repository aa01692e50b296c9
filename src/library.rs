//! Library-wide functions: version, result names, the last error message, logging.

use std::ffi::{c_char, c_void};

use super::args::{call, last_error, write_text};
use super::{log_queue, ForeignCallback};
use crate::enums::consulnative_log_level;
use crate::result::consulnative_result;
use consulnative_core::api::{bridge_log_crate, set_log_sink, LogLevel, LogSink};

/// The library version, e.g. `"0.1.0"`. A static string: do not free it.
#[no_mangle]
pub extern "C" fn consulnative_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// A short static name for a result code (`"authorization denied"`). Unknown codes give `"unknown result"`.
#[no_mangle]
pub extern "C" fn consulnative_result_name(result: u32) -> *const c_char {
    consulnative_result::from_u32(result).map_or(c"unknown result", consulnative_result::name).as_ptr()
}

/// Copies the message of the last failed call on this thread into `buf` (NUL-terminated) and its length into
/// `*out_n`. The message says which service, which certificate, what the agent answered. With no failure yet,
/// the text is empty. Returns `CONSULNATIVE_RESULT_BUFFER_TOO_SMALL` (with `*out_n` set) if `buf` is too small;
/// that does not replace the recorded message.
#[no_mangle]
pub extern "C" fn consulnative_last_error(buf: *mut c_char, len: usize, out_n: *mut usize) -> consulnative_result {
    let message = last_error().map(|e| e.message).unwrap_or_default();
    // Keep the recorded error: a too-small buffer must not overwrite the message being fetched.
    match write_text(&message, buf, len, out_n) {
        Ok(()) => consulnative_result::Ok,
        Err(e) => e.result,
    }
}

static LOGGER_CALLBACK: std::sync::Mutex<Option<std::sync::Arc<ForeignCallback>>> = std::sync::Mutex::new(None);

/// A log callback: `level` is a `consulnative_log_level`, `message` is valid only during the call. Called on the
/// library's own log thread, one line at a time and in order, never on a thread that handshakes or authorizes: a
/// slow callback delays only later lines. When more than 1024 lines wait, the others are counted and one warning
/// says how many were dropped. It must not call `consulnative_set_logger`. Messages never contain tokens or keys.
pub type consulnative_log_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: consulnative_log_level, message: *const c_char)>;

/// Sends library log lines up to `max_level` (a `consulnative_log_level`; values above
/// `CONSULNATIVE_LOG_LEVEL_DEBUG` mean debug) to `callback`. A NULL callback or `max_level` 0 restores the default:
/// stderr, only when the `CONSULNATIVE_LOG` environment variable names a level. Once this returns, the previous callback is
/// not running and will not be called again. rustls' own diagnostics (the `log` crate) go to the same place.
#[no_mangle]
pub extern "C" fn consulnative_set_logger(
    callback: consulnative_log_callback,
    userdata: *mut c_void,
    max_level: u32,
) -> consulnative_result {
    call(|| {
        let callback = if max_level == 0 { None } else { callback };
        let level = consulnative_log_level::core_level(max_level);
        let foreign = callback.map(|_| ForeignCallback::new(userdata, None));
        let sink: Option<LogSink> = callback.zip(foreign.clone()).map(|(f, foreign)| {
            let target = log_queue::Target { foreign, function: Some(f) };
            std::sync::Arc::new(move |level: LogLevel, message: &str| log_queue::push(&target, level, message))
                as LogSink
        });
        set_log_sink(sink, level);
        bridge_log_crate();
        // The previous callback is not called again once this returns (calls in flight are waited for).
        let previous = std::mem::replace(&mut *LOGGER_CALLBACK.lock().unwrap_or_else(|e| e.into_inner()), foreign);
        if let Some(previous) = previous {
            previous.retire();
        }
        Ok(())
    })
}
