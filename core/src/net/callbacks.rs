//! Where a listener runs application code: never on the runtime's workers or its blocking pool (which the
//! handshakes and authorize calls use), always on the listener's own threads, behind bounded queues.
//!
//! - [`RefusalDelivery`]: one thread per listener (started with the first refusal callback) tells the callback
//!   about refused connections in order. When its queue is full, refusals are counted instead and reported as
//!   one "N refusals dropped" refusal once there is room: a slow callback loses detail, never memory or threads.
//! - [`PeerCheckPool`]: a few threads per listener (started with the first peer check) run the application's
//!   check of an allowed peer; the admission waits for the verdict with a timeout and refuses without one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::listener::{PeerCheck, Refusal, RefusalCallback};
use crate::error::{Code, Error};
use crate::log::warning;
use crate::tls::PeerIdentity;

/// Stack of the callback threads: application code runs there (Python and Ruby need a little more than Rust).
const CALLBACK_STACK: usize = 1024 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct RefusalState {
    queue: VecDeque<Refusal>,
    /// Refusals not queued since the last report, and the last of them.
    dropped: u64,
    last_dropped: Option<Refusal>,
    closed: bool,
    thread_started: bool,
}

/// The refusal callback, its bounded queue and its thread.
pub(crate) struct RefusalDelivery {
    service: String,
    capacity: usize,
    callback: Mutex<Option<RefusalCallback>>,
    state: Mutex<RefusalState>,
    wake: Condvar,
    /// Every refusal the callback was not told about one by one.
    dropped_total: AtomicU64,
}

impl RefusalDelivery {
    pub fn new(service: &str, capacity: usize) -> Arc<RefusalDelivery> {
        Arc::new(RefusalDelivery {
            service: service.to_string(),
            capacity: capacity.max(1),
            callback: Mutex::new(None),
            state: Mutex::new(RefusalState::default()),
            wake: Condvar::new(),
            dropped_total: AtomicU64::new(0),
        })
    }

    /// Sets or clears the callback; the first one starts the delivery thread.
    pub fn set_callback(self: &Arc<Self>, callback: Option<RefusalCallback>) {
        let start = callback.is_some();
        *lock(&self.callback) = callback;
        if start {
            let mut state = lock(&self.state);
            if !state.thread_started && !state.closed {
                let me = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("consulnative-refusals".into())
                    .stack_size(CALLBACK_STACK)
                    .spawn(move || me.run());
                match spawned {
                    Ok(_) => state.thread_started = true,
                    Err(e) => warning!("service \"{}\": cannot start the refusal callback thread: {e}", self.service),
                }
            }
        }
    }

    /// Refusals the callback was not told about one by one (reported in "N refusals dropped" refusals).
    pub fn dropped(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Queues a refusal for the callback (nothing when none is set); counts it when the queue is full.
    pub fn push(&self, refusal: Refusal) {
        if lock(&self.callback).is_none() {
            return;
        }
        let mut state = lock(&self.state);
        if state.closed {
            return;
        }
        if state.dropped > 0 && state.queue.len() < self.capacity {
            let summary = self.summary(&mut state);
            state.queue.extend(summary);
        }
        if state.queue.len() < self.capacity {
            state.queue.push_back(refusal);
        } else {
            state.dropped += 1;
            state.last_dropped = Some(refusal);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Stops the thread after its current call; queued refusals are discarded.
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.queue.clear();
        state.last_dropped = None;
        drop(state);
        self.wake.notify_all();
    }

    /// The "N refusals dropped" refusal standing for the dropped ones, resetting the count.
    fn summary(&self, state: &mut RefusalState) -> Option<Refusal> {
        let n = std::mem::take(&mut state.dropped);
        let last = state.last_dropped.take()?;
        let message = format!(
            "{n} refusals dropped: the refusal callback did not keep up (its queue of {} was full); the last one: {}",
            self.capacity,
            last.error.message()
        );
        Some(Refusal { error: Error::new(last.error.kind(), message), dropped: n, ..last })
    }

    fn run(self: Arc<Self>) {
        loop {
            let refusal = {
                let mut state = lock(&self.state);
                loop {
                    if state.closed {
                        return;
                    }
                    if let Some(r) = state.queue.pop_front() {
                        break r;
                    }
                    if state.dropped > 0 {
                        if let Some(summary) = self.summary(&mut state) {
                            break summary;
                        }
                    }
                    state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            };
            let callback = lock(&self.callback).clone();
            if let Some(callback) = callback {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&refusal))).is_err() {
                    warning!("service \"{}\": the refusal callback panicked", self.service);
                }
            }
        }
    }
}

/// One peer check to run: the check, the peer, and where the verdict goes.
struct CheckJob {
    check: PeerCheck,
    peer: PeerIdentity,
    verdict: oneshot::Sender<std::result::Result<(), String>>,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<CheckJob>,
    threads: usize,
    closed: bool,
}

/// The application's peer check, its bounded queue and its threads.
pub(crate) struct PeerCheckPool {
    service: String,
    threads: usize,
    capacity: usize,
    check: Mutex<Option<PeerCheck>>,
    state: Mutex<PoolState>,
    wake: Condvar,
}

impl PeerCheckPool {
    pub fn new(service: &str, threads: usize, capacity: usize) -> Arc<PeerCheckPool> {
        Arc::new(PeerCheckPool {
            service: service.to_string(),
            threads: threads.max(1),
            capacity: capacity.max(1),
            check: Mutex::new(None),
            state: Mutex::new(PoolState::default()),
            wake: Condvar::new(),
        })
    }

    /// Sets or clears the check; the first one starts the threads.
    pub fn set_check(self: &Arc<Self>, check: Option<PeerCheck>) {
        let start = check.is_some();
        *lock(&self.check) = check;
        if !start {
            return;
        }
        let mut state = lock(&self.state);
        while state.threads < self.threads && !state.closed {
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("consulnative-peer-check".into())
                .stack_size(CALLBACK_STACK)
                .spawn(move || me.run());
            match spawned {
                Ok(_) => state.threads += 1,
                Err(e) => {
                    warning!("service \"{}\": cannot start a peer check thread: {e}", self.service);
                    break;
                }
            }
        }
    }

    /// Runs the current check on `peer` (`Ok` when none is set), waiting at most `timeout` for the verdict. No
    /// verdict in time, a full queue or a closed listener refuse the peer.
    pub async fn check(&self, peer: &PeerIdentity, timeout: Duration) -> std::result::Result<(), Error> {
        let Some(check) = lock(&self.check).clone() else { return Ok(()) };
        let failed =
            |why: String| Error::new(Code::AuthorizationFailed, format!("{}: {why}, connection refused", peer.uri));
        let (tx, rx) = oneshot::channel();
        {
            let mut state = lock(&self.state);
            if state.closed {
                return Err(failed("the listener is closed".into()));
            }
            if state.threads == 0 {
                return Err(failed("no thread could be started to run the application's peer check".into()));
            }
            if state.jobs.len() >= self.capacity {
                return Err(failed(format!("the application's peer check is {} connections behind", self.capacity)));
            }
            state.jobs.push_back(CheckJob { check, peer: peer.clone(), verdict: tx });
        }
        self.wake.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(why))) => {
                Err(Error::new(Code::RejectedByApplication, format!("{} rejected by the application: {why}", peer.uri)))
            }
            Ok(Err(_)) => Err(failed("the application's peer check was not run (the listener closed)".into())),
            Err(_) => Err(failed(format!(
                "the application's peer check did not answer within {}",
                crate::encoding::go_duration(timeout)
            ))),
        }
    }

    /// Stops the threads after their current check; queued checks are refused.
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.jobs.clear();
        drop(state);
        self.wake.notify_all();
    }

    fn run(self: Arc<Self>) {
        loop {
            let job = {
                let mut state = lock(&self.state);
                loop {
                    if state.closed {
                        return;
                    }
                    if let Some(job) = state.jobs.pop_front() {
                        break job;
                    }
                    state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            };
            if job.verdict.is_closed() {
                continue; // the connection gave up waiting (timed out or closed): do not run the check for nothing
            }
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.check)(&job.peer)))
                .unwrap_or_else(|_| Err("the peer check panicked".to_string()));
            let _ = job.verdict.send(verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::mpsc;

    fn refusal(i: u16) -> Refusal {
        Refusal {
            peer_addr: SocketAddr::from(([127, 0, 0, 1], i)),
            peer_uri: None,
            error: Error::new(Code::Handshake, format!("refusal {i}")),
            dropped: 0,
        }
    }

    fn peer() -> PeerIdentity {
        crate::tls::PeerIdentity {
            uri: "spiffe://td.consul/ns/default/dc/dc1/svc/web".into(),
            service: "web".into(),
            namespace: "default".into(),
            partition: "default".into(),
            datacenter: "dc1".into(),
            trust_domain: "td.consul".into(),
            serial: "01".into(),
        }
    }

    #[test]
    fn a_slow_refusal_callback_gets_the_queue_then_one_count_of_the_rest() {
        let delivery = RefusalDelivery::new("db", 2);
        delivery.push(refusal(0)); // no callback yet: nothing is queued
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, gate) = mpsc::channel::<()>();
        let (seen_tx, seen) = mpsc::channel::<(String, u64)>();
        let gate = Mutex::new(gate);
        let entered_tx = Mutex::new(entered_tx);
        delivery.set_callback(Some(Arc::new(move |r: &Refusal| {
            let _ = lock(&entered_tx).send(());
            let _ = lock(&gate).recv();
            let _ = seen_tx.send((r.error.message().to_string(), r.dropped));
        })));
        delivery.push(refusal(1));
        entered.recv_timeout(Duration::from_secs(10)).expect("the callback runs on its thread");
        for i in 2..=11 {
            delivery.push(refusal(i)); // 2 and 3 fit, 4..=11 are counted
        }
        assert_eq!(delivery.dropped(), 8);
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        let got: Vec<(String, u64)> = (0..4).map(|_| seen.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got[0], ("refusal 1".into(), 0));
        assert_eq!(got[1], ("refusal 2".into(), 0));
        assert_eq!(got[2], ("refusal 3".into(), 0));
        assert_eq!(got[3].1, 8);
        assert!(got[3].0.starts_with("8 refusals dropped: the refusal callback did not keep up"), "{}", got[3].0);
        assert!(got[3].0.ends_with("the last one: refusal 11"), "{}", got[3].0);
        delivery.close();
        delivery.push(refusal(12));
        release.send(()).ok();
        assert!(seen.recv_timeout(Duration::from_millis(300)).is_err(), "nothing is delivered after close");
    }

    #[tokio::test]
    async fn peer_check_verdicts_timeouts_and_panics_all_decide() {
        let pool = PeerCheckPool::new("db", 1, 4);
        assert!(pool.check(&peer(), Duration::from_secs(1)).await.is_ok(), "no check set: admitted");
        pool.set_check(Some(Arc::new(|p: &PeerIdentity| Err(format!("{} is not welcome", p.service)))));
        let err = pool.check(&peer(), Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(err.kind(), Code::RejectedByApplication);
        assert!(err.message().ends_with("rejected by the application: web is not welcome"), "{err}");
        pool.set_check(Some(Arc::new(|_: &PeerIdentity| panic!("boom"))));
        let err = pool.check(&peer(), Duration::from_secs(10)).await.unwrap_err();
        assert!(err.message().contains("the peer check panicked"), "{err}");
        pool.set_check(Some(Arc::new(|_: &PeerIdentity| {
            std::thread::sleep(Duration::from_millis(500));
            Ok(())
        })));
        let err = pool.check(&peer(), Duration::from_millis(50)).await.unwrap_err();
        assert_eq!(err.kind(), Code::AuthorizationFailed);
        assert!(err.message().contains("did not answer within 50ms"), "{err}");
        pool.close();
        let err = pool.check(&peer(), Duration::from_secs(1)).await.unwrap_err();
        assert!(err.message().contains("the listener is closed"), "{err}");
    }
}
