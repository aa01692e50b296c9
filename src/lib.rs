//! libconsulnative's C ABI (`include/consulnative.h`, generated from this crate by `cargo run -p xtask -- header`).
//!
//! It converts and checks arguments, catches panics, records error messages, owns the C enums, and calls the core
//! crate's public `api`: it holds no logic of its own. Every fallible export returns a `consulnative_result`; the
//! message of the last failure on the calling thread is available from `consulnative_last_error`.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]
// Exported functions take raw pointers from C by design; each one is checked for NULL before use.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod args;
mod client;
mod conn;
mod enums;
mod library;
mod listener;
mod log_queue;
mod result;
mod service;

pub use client::*;
pub use conn::*;
pub use enums::*;
pub use library::*;
pub use listener::*;
pub use result::consulnative_result;
pub use service::*;

/// Userdata handed back to an application callback; the application owns what it points to.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub *mut libc::c_void);
// SAFETY: the header documents that callbacks run on library threads; the application promises its userdata
// may be used from there.
unsafe impl Send for UserData {}
// SAFETY: as for Send: the library only hands the pointer back to the application's own callbacks.
unsafe impl Sync for UserData {}

/// Called when the library no longer needs a callback's userdata (lets a binding release its object).
pub type consulnative_drop_callback = Option<unsafe extern "C" fn(userdata: *mut libc::c_void)>;

thread_local! {
    /// How many application callbacks this thread is inside (to spot a retire from within a callback).
    static CALLBACK_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// An application callback's userdata and drop callback, shared by the core closures that call it.
///
/// Retiring it (when the handle is freed or the callback replaced) waits for calls already running, then runs the
/// drop callback once, on the retiring thread, before the `_free` or setter returns: a binding may release its
/// object right after. Retiring from inside a callback cannot wait for itself: the last running call then drops.
pub(crate) struct ForeignCallback {
    userdata: UserData,
    drop: consulnative_drop_callback,
    state: std::sync::Mutex<CallbackState>,
    idle: std::sync::Condvar,
}

#[derive(Default)]
struct CallbackState {
    retired: bool,
    running: usize,
    dropped: bool,
    /// A retiring thread waits for running calls and runs the drop itself, so that the drop has run when
    /// `retire` returns (the last running call must then not run it on its own thread, after `retire` returned).
    retirer_waiting: bool,
}

impl ForeignCallback {
    pub fn new(userdata: *mut libc::c_void, drop: consulnative_drop_callback) -> std::sync::Arc<ForeignCallback> {
        std::sync::Arc::new(ForeignCallback {
            userdata: UserData(userdata),
            drop,
            state: std::sync::Mutex::new(CallbackState::default()),
            idle: std::sync::Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallbackState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `f` with the userdata unless retired (then `None`).
    pub fn call<R>(&self, f: impl FnOnce(*mut libc::c_void) -> R) -> Option<R> {
        {
            let mut s = self.lock();
            if s.retired {
                return None;
            }
            s.running += 1;
        }
        CALLBACK_DEPTH.with(|d| d.set(d.get() + 1));
        let result = f(self.userdata.0);
        CALLBACK_DEPTH.with(|d| d.set(d.get() - 1));
        let drop_now = {
            let mut s = self.lock();
            s.running -= 1;
            if s.running == 0 {
                self.idle.notify_all();
            }
            let last = s.retired && s.running == 0 && !s.dropped && !s.retirer_waiting;
            s.dropped |= last;
            last
        };
        if drop_now {
            self.run_drop();
        }
        Some(result)
    }

    /// No more calls; runs the drop callback once running calls are done (see the type's doc).
    pub fn retire(&self) {
        let mut s = self.lock();
        if s.retired {
            return;
        }
        s.retired = true;
        if s.running > 0 && CALLBACK_DEPTH.with(|d| d.get()) > 0 {
            return;
        }
        s.retirer_waiting = true;
        while s.running > 0 {
            s = self.idle.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        let drop_now = !s.dropped;
        s.dropped = true;
        std::mem::drop(s);
        if drop_now {
            self.run_drop();
        }
    }

    fn run_drop(&self) {
        if let Some(f) = self.drop {
            // SAFETY: the application gave us this function and userdata to be called exactly once.
            unsafe { f(self.userdata.0) }
        }
    }
}

impl Drop for ForeignCallback {
    fn drop(&mut self) {
        // Normally retired by its handle already; this covers paths that never retire it.
        self.retire();
    }
}
