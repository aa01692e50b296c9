//! The library's one tokio runtime: created on first use, shared by every handle, never one thread per connection.
//!
//! Blocking C calls (accept, dial) wait on the runtime from the caller's own thread with [`block_on`], so Python's
//! GIL and Ruby's GVL can be released around them; an established connection's reads and writes do not use the
//! runtime at all (see `net/conn.rs`). Agent HTTP calls (ureq, blocking) run on
//! the runtime's blocking pool or on the watchers' own threads, never on the async workers.

use once_cell::sync::Lazy;
use std::future::Future;
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};

static RUNTIME: Lazy<Runtime> = Lazy::new(|| {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(256)
        .thread_stack_size(512 * 1024)
        .thread_name("consulnative-rt")
        .enable_all()
        .build()
        .expect("consulnative: cannot start the tokio runtime")
});

/// The runtime's handle, starting the runtime on first use.
pub fn handle() -> &'static Handle {
    RUNTIME.handle()
}

/// Runs a future to completion from a thread outside the runtime (a caller's thread).
///
/// If called from inside the runtime (an application callback that calls back into the library from a runtime
/// thread), the future is run on a fresh helper thread instead, so the call does not panic.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if Handle::try_current().is_ok() {
        return std::thread::scope(|s| s.spawn(|| handle().block_on(future)).join().expect("block_on helper"));
    }
    handle().block_on(future)
}

/// Runs a future with an optional timeout (`None` waits forever), mapping expiry to a [`Code::Timeout`] error
/// whose message says what timed out.
///
/// [`Code::Timeout`]: crate::error::Code::Timeout
pub async fn with_timeout<T>(
    timeout: Option<Duration>,
    what: impl FnOnce() -> String,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    match timeout {
        None => future.await,
        Some(limit) => match tokio::time::timeout(limit, future).await {
            Ok(result) => result,
            Err(_) => {
                Err(Error::timeout(format!("{} timed out after {}", what(), crate::encoding::go_duration(limit))))
            }
        },
    }
}
