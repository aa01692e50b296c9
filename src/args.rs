//! Argument checking, output writing and the panic boundary shared by every exported function.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::result::{consulnative_result as Code, AbiError as Error, AbiResult as Result};

thread_local! {
    static LAST_ERROR: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Runs `f` behind the panic boundary and turns its outcome into a result code, recording the message.
pub(crate) fn call(f: impl FnOnce() -> Result<()>) -> Code {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::new(Code::Panic, format!("internal panic (please report it): {what}")))
    });
    match outcome {
        Ok(()) => Code::Ok,
        Err(e) => {
            let code = e.result;
            LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(e));
            code
        }
    }
}

/// Runs `f` behind the panic boundary where the C function cannot report an error (`_free`, `_close`).
pub(crate) fn call_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// The last error recorded on this thread.
pub(crate) fn last_error() -> Option<Error> {
    LAST_ERROR.with(|slot| slot.borrow().clone())
}

/// A required handle or pointer argument.
pub(crate) fn arg_ref<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the caller passes a valid pointer from this library or NULL; NULL is rejected.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(name))
}

/// A required C string argument: not NULL, not empty, valid UTF-8.
pub(crate) fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(null(name));
    }
    opt_str(ptr, name)?.ok_or_else(|| Error::invalid(format!("argument `{name}` is empty")))
}

/// An optional C string argument: NULL (or empty) means absent; present must be valid UTF-8.
pub(crate) fn opt_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|e| Error::invalid(format!("argument `{name}` is not valid UTF-8: {e}")))?;
    Ok(if s.is_empty() { None } else { Some(s) })
}

/// A required input byte buffer (`len` may be 0 with any pointer).
pub(crate) fn arg_bytes<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A required output byte buffer.
pub(crate) fn arg_bytes_mut<'a>(ptr: *mut u8, len: usize, name: &str) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: the caller promises `len` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Checks an out-parameter up front so nothing is done when it is NULL.
pub(crate) fn out_ptr<T>(ptr: *mut T, name: &str) -> Result<()> {
    if ptr.is_null() {
        Err(null(name))
    } else {
        Ok(())
    }
}

/// Writes an out-parameter already checked by [`out_ptr`].
pub(crate) fn set_out<T>(ptr: *mut T, value: T) {
    // SAFETY: checked non-NULL by out_ptr; the caller promises it is writable.
    unsafe { ptr.write(value) }
}

/// Moves a value into a new handle.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL is a no-op.
pub(crate) fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the pointer came from into_handle and is freed once, as the header requires.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Writes `text` NUL-terminated into `buf`. `out_n` (required) receives the text's length without the NUL;
/// when `buf` is NULL or too small, nothing is written and the result is `BufferTooSmall`.
pub(crate) fn write_text(text: &str, buf: *mut c_char, len: usize, out_n: *mut usize) -> Result<()> {
    out_ptr(out_n, "out_n")?;
    set_out(out_n, text.len());
    if buf.is_null() || len < text.len() + 1 {
        return Err(Error::new(
            Code::BufferTooSmall,
            format!("the output needs {} bytes plus the terminating NUL, the buffer has {len}", text.len()),
        ));
    }
    // SAFETY: checked the buffer holds text.len() + 1 bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// A timeout in milliseconds: negative means none.
pub(crate) fn timeout_ms(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// A comma-separated ALPN list (`"h2,http/1.1"`); NULL or empty: none.
pub(crate) fn alpn_list(csv: Option<&str>) -> Vec<Vec<u8>> {
    csv.map(|s| s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.as_bytes().to_vec()).collect())
        .unwrap_or_default()
}

fn null(name: &str) -> Error {
    Error::new(Code::NullArgument, format!("argument `{name}` is NULL"))
}
