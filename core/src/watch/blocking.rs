//! The blocking-query loop that keeps one agent resource fresh, as the Consul docs prescribe: first request without
//! an index, always an explicit `wait`, reset on a backwards index, never spin on index 0, a token-bucket rate
//! limit, exponential backoff with jitter on errors, and delivery only when the content really changed.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::agent::client::{BlockingQuery, Response};
use crate::error::{Error, Result};

/// Tuning of a watch loop. Defaults follow Consul's guidance; tests shorten them.
#[derive(Debug, Clone)]
pub struct WatchTiming {
    /// The `wait` sent with every blocking query.
    pub wait: Duration,
    /// Token bucket: at most `burst` requests back to back, then one per `min_interval`.
    pub min_interval: Duration,
    /// Requests allowed back to back before `min_interval` applies.
    pub burst: u32,
    /// Backoff after consecutive errors: `retry_base * 2^(n-1)`, capped at `retry_max`, with jitter.
    pub retry_base: Duration,
    /// The longest backoff between two attempts.
    pub retry_max: Duration,
}

impl Default for WatchTiming {
    fn default() -> Self {
        WatchTiming {
            wait: Duration::from_secs(300),
            min_interval: Duration::from_millis(100),
            burst: 5,
            retry_base: Duration::from_millis(250),
            retry_max: Duration::from_secs(10),
        }
    }
}

/// A stop flag whose sleeps wake up at once when it is raised. Shared by a watch thread and its owner.
#[derive(Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    pub fn new() -> Arc<StopSignal> {
        Arc::new(StopSignal::default())
    }
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Sleeps for `d` unless stopped first. Returns true when stopped.
    pub fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self.wake.wait_timeout_while(guard, d, |stopped| !*stopped).unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// What the loop asks of its owner. The owner may have gone away (handles freed): then `deliver` and `fail`
/// return `false` and the loop ends.
pub trait WatchTarget<T> {
    /// A new value arrived (content differs from the last one). `Err` means it was unusable: reported like an
    /// agent error, and the previous value stays in force.
    fn deliver(&self, value: &T) -> Option<Result<()>>;
    /// An error happened; the previous value stays in force. `None` when the owner is gone.
    fn fail(&self, error: Error) -> Option<()>;
    /// A query succeeded (changed or not): a recorded error is over.
    fn healthy(&self);
}

/// Runs the loop until `stop` is raised or the target goes away.
pub fn run<T: PartialEq>(
    timing: &WatchTiming,
    stop: &StopSignal,
    mut fetch: impl FnMut(&BlockingQuery) -> Result<Response<T>>,
    target: &impl WatchTarget<T>,
) {
    let mut index = 0u64;
    let mut last: Option<T> = None;
    let mut failures = 0u32;
    let mut bucket = TokenBucket::new(timing.burst, timing.min_interval);
    while !stop.is_stopped() {
        if stop.sleep(bucket.take()) {
            return;
        }
        let query = BlockingQuery { index, wait: timing.wait };
        let outcome = fetch(&query).and_then(|response| {
            index = next_index(index, response.index);
            if last.as_ref() == Some(&response.value) {
                return Ok(());
            }
            match target.deliver(&response.value) {
                None => Err(Error::internal("owner gone")),
                Some(Err(e)) => Err(e),
                Some(Ok(())) => {
                    last = Some(response.value);
                    Ok(())
                }
            }
        });
        if stop.is_stopped() {
            return;
        }
        match outcome {
            Ok(()) => {
                if failures > 0 {
                    target.healthy();
                }
                failures = 0;
            }
            Err(e) => {
                if target.fail(e).is_none() {
                    return;
                }
                failures = failures.saturating_add(1);
                // A bad answer must not be retried with an index that makes the agent wait: start over.
                index = 0;
                if stop.sleep(backoff(timing, failures)) {
                    return;
                }
            }
        }
    }
}

/// The index for the next request: the agent's, unless it went backwards (reset to 0 and start over) or is 0.
fn next_index(previous: u64, received: u64) -> u64 {
    if received < previous {
        0
    } else {
        received
    }
}

/// Exponential backoff with jitter: a random duration in `[d/2, d]` where `d = base * 2^(failures-1)`, capped.
pub fn backoff(timing: &WatchTiming, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let d = timing.retry_base.saturating_mul(1u32 << exp).min(timing.retry_max);
    let half = d / 2;
    half + Duration::from_nanos(fastrand::u64(0..=half.as_nanos().min(u64::MAX as u128) as u64))
}

/// A token bucket: `take` says how long to wait before the next request.
struct TokenBucket {
    capacity: f64,
    tokens: f64,
    refill_every: Duration,
    last: Instant,
}

impl TokenBucket {
    fn new(burst: u32, refill_every: Duration) -> Self {
        let capacity = burst.max(1) as f64;
        TokenBucket { capacity, tokens: capacity, refill_every, last: Instant::now() }
    }
    fn take(&mut self) -> Duration {
        let now = Instant::now();
        if !self.refill_every.is_zero() {
            let refilled = now.duration_since(self.last).as_secs_f64() / self.refill_every.as_secs_f64();
            self.tokens = (self.tokens + refilled).min(self.capacity);
        } else {
            self.tokens = self.capacity;
        }
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Duration::ZERO
        } else {
            let wait = self.refill_every.mul_f64(1.0 - self.tokens);
            self.tokens = 0.0;
            self.last = now + wait;
            wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backwards_index_resets_to_zero() {
        assert_eq!(next_index(10, 5), 0);
        assert_eq!(next_index(10, 12), 12);
        assert_eq!(next_index(0, 0), 0);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let t = WatchTiming {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            ..Default::default()
        };
        let first = backoff(&t, 1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let tenth = backoff(&t, 10);
        assert!(tenth >= Duration::from_millis(500) && tenth <= Duration::from_millis(1000));
    }

    #[test]
    fn token_bucket_allows_a_burst_then_paces() {
        let mut b = TokenBucket::new(3, Duration::from_millis(100));
        assert_eq!(b.take(), Duration::ZERO);
        assert_eq!(b.take(), Duration::ZERO);
        assert_eq!(b.take(), Duration::ZERO);
        let wait = b.take();
        assert!(wait > Duration::from_millis(80) && wait <= Duration::from_millis(100), "{wait:?}");
    }

    struct Recorder(Mutex<Vec<String>>);
    impl WatchTarget<u32> for Recorder {
        fn deliver(&self, v: &u32) -> Option<Result<()>> {
            self.0.lock().unwrap().push(format!("v{v}"));
            Some(Ok(()))
        }
        fn fail(&self, e: Error) -> Option<()> {
            self.0.lock().unwrap().push(format!("e:{}", e.message));
            Some(())
        }
        fn healthy(&self) {
            self.0.lock().unwrap().push("ok".into());
        }
    }

    #[test]
    fn loop_delivers_changes_only_and_resets_index_after_errors() {
        let timing =
            WatchTiming { min_interval: Duration::ZERO, retry_base: Duration::from_millis(1), ..Default::default() };
        let stop = StopSignal::new();
        let rec = Recorder(Mutex::new(vec![]));
        let answers: Vec<Result<Response<u32>>> = vec![
            Ok(Response { value: 1, index: 5 }),
            Ok(Response { value: 1, index: 6 }),
            Err(Error::internal("boom")),
            Ok(Response { value: 2, index: 7 }),
        ];
        let mut answers = answers.into_iter();
        let mut seen_index = vec![];
        run(
            &timing,
            &stop,
            |q| {
                seen_index.push(q.index);
                match answers.next() {
                    Some(a) => a,
                    None => {
                        stop.stop();
                        Err(Error::internal("done"))
                    }
                }
            },
            &rec,
        );
        assert_eq!(*rec.0.lock().unwrap(), vec!["v1", "e:boom", "v2", "ok"]);
        assert_eq!(seen_index, vec![0, 5, 6, 0, 7]);
    }
}
