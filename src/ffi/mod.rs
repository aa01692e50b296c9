//! The C ABI. It converts and checks arguments, catches panics, records error messages, and calls `api`: it holds
//! no logic of its own. Every exported function returns a `consulnative_result` code (as `uint32_t`) unless it
//! cannot fail; the message of the last failure on the calling thread is available from `consulnative_last_error`.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]
// Exported functions take raw pointers from C by design; each one is checked for NULL before use.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod args;
mod client;
mod conn;
#[cfg(feature = "devagent")]
mod devagent;
mod library;
mod listener;
mod service;

pub use client::*;
pub use conn::*;
#[cfg(feature = "devagent")]
pub use devagent::*;
pub use library::*;
pub use listener::*;
pub use service::*;

/// Userdata handed back to an application callback; the application owns what it points to.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub *mut libc::c_void);
// SAFETY: the header documents that callbacks run on library threads; the application promises its userdata
// may be used from there.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

/// Called when the library no longer needs a callback's userdata (lets a binding release its object).
pub type consulnative_drop_callback = Option<unsafe extern "C" fn(userdata: *mut libc::c_void)>;

/// Runs a drop callback once, when the owning Rust value is dropped.
pub(crate) struct DropGuard {
    pub userdata: UserData,
    pub drop: consulnative_drop_callback,
}

impl DropGuard {
    /// The userdata pointer (a method, so closures capture the whole guard and its drop runs with them).
    pub fn ptr(&self) -> *mut libc::c_void {
        self.userdata.0
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(f) = self.drop {
            // SAFETY: the application gave us this function and userdata to be called exactly once.
            unsafe { f(self.userdata.0) }
        }
    }
}
