//! Blocking queries (`index`, `wait`), shared by the roots, leaf and health endpoints.

use super::respond::{text, Resp};
use super::Req;
use crate::state::{Shared, State};
use crate::util::parse_go_duration;
use std::time::Duration;

const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

/// `index` and `wait` (with jitter already added). `Err` is Consul's 400.
#[allow(clippy::result_large_err)] // the Err is a ready answer; not worth boxing
pub(super) fn blocking_params(r: &Req) -> Result<(u64, Duration), Resp> {
    let index = match r.q("index") {
        None | Some("") => 0,
        Some(v) => v.parse::<u64>().map_err(|_| text(400, "Invalid index"))?,
    };
    let wait = match r.q("wait") {
        None | Some("") => DEFAULT_WAIT,
        Some(v) => parse_go_duration(v).ok_or_else(|| text(400, "Invalid wait time"))?,
    };
    let wait = wait.min(MAX_WAIT);
    let jitter = wait.div_f64(16.0).mul_f64(fastrand::f64());
    Ok((index, wait + jitter))
}

/// Wait until `current(state)` exceeds `min_index` or `wait` passes; no polling: woken by `Shared::notify`.
pub(super) async fn block(sh: &Shared, min_index: u64, wait: Duration, current: impl Fn(&State) -> u64) -> u64 {
    let mut rx = sh.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let cur = current(&sh.lock());
        if min_index == 0 || cur > min_index {
            return cur;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return cur; },
            _ = tokio::time::sleep_until(deadline) => return cur,
        }
    }
}
