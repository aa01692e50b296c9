//! Attack: a flood while the application's log callback is slow. Log lines go through a bounded queue to the
//! library's own log thread, so a callback that takes 50 ms a line slows nothing but the log; what it cannot keep
//! up with is counted in one "N log lines dropped" warning. (Own test binary: the logger is process-wide.)

mod attack;
mod common;
use attack::*;
use common::*;
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static LINES: AtomicU64 = AtomicU64::new(0);
static SLOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
static DROPPED_REPORTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn slow_log(_ud: *mut libc::c_void, _level: consulnative_log_level, message: *const c_char) {
    LINES.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the library passes a valid NUL-terminated string for the duration of the call.
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    if message.contains(" log lines dropped: ") {
        DROPPED_REPORTS.lock().unwrap().push(message.into_owned());
    }
    if SLOW.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_slow_log_callback_slows_neither_handshakes_nor_admission() {
    // Debug level: every handshake logs, rustls included.
    check(consulnative_set_logger(Some(slow_log), std::ptr::null_mut(), 4)).unwrap();
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    echo_server(listener.clone());
    probe(&web, &addr).expect("warm-up dial");
    let (threads0, _) = library_threads_and_rss();

    let sampler = Sampler::start();
    let flood = junk_flood(&addr, Duration::from_secs(3), 2);
    let mut probes = Vec::new();
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        probes.push(probe(&web, &addr));
        std::thread::sleep(Duration::from_millis(100));
    }
    let junk = flood.join().unwrap();
    let (peak_threads, _) = sampler.peaks();
    drop(sampler);
    let lines = LINES.load(Ordering::SeqCst);

    assert!(junk >= 100, "the flood happened: {junk}");
    assert!(probes.iter().all(|p| p.as_ref().is_ok_and(|t| *t < Duration::from_secs(5))), "{probes:?}");
    // At 50 ms a line the callback handled about 20 lines a second; the rest waited in the bounded queue.
    assert!(lines <= 200, "{lines} lines delivered in ~5 s");
    assert!(peak_threads as usize <= threads0 + 8, "threads {threads0} -> {peak_threads}");
    // A fast callback again: the queue drains, and if lines were dropped one warning says how many.
    SLOW.store(false, Ordering::SeqCst);
    let delivered = || LINES.load(Ordering::SeqCst);
    let settled = eventually(Duration::from_secs(20), || {
        let before = delivered();
        std::thread::sleep(Duration::from_millis(200));
        delivered() == before
    });
    assert!(settled, "the queue drains");
    let total = delivered();
    let reports = DROPPED_REPORTS.lock().unwrap().clone();
    assert!(total <= 1024 + 200 + reports.len() as u64 + 50, "bounded: {total} lines, {reports:?}");
    for r in &reports {
        assert!(r.ends_with("log lines dropped: the log callback did not keep up (1024 lines were waiting)"), "{r}");
    }
    // set_logger returns once the running call is done; the old callback is never called again.
    SLOW.store(true, Ordering::SeqCst);
    let started = Instant::now();
    check(consulnative_set_logger(None, std::ptr::null_mut(), 0)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let after = delivered();
    probe(&web, &addr).expect("still admitting");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(delivered(), after, "a replaced log callback is not called again");
}
