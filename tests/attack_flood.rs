//! Attack: floods against a listener whose application code is slow (issue 12). Application callbacks run on the
//! listener's own threads behind bounded queues, authorize calls have their own bounded slots: legitimate clients
//! keep being admitted, library threads and memory stay flat, and every refusal is accounted for.

mod attack;
mod common;
use attack::*;
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tests of this file count the process's threads: they run one at a time so one test's threads never count
/// against another's bound.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn junk_flood_with_a_sleeping_refusal_callback_keeps_admitting_legitimate_clients() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("refusal_queue", "4")]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let seen = on_refused_sleeping(&listener, Duration::from_secs(1));
    echo_server(listener.clone());
    probe(&web, &addr).expect("warm-up dial");
    let (threads0, rss0) = library_threads_and_rss();

    let sampler = Sampler::start();
    let flood = junk_flood(&addr, Duration::from_secs(5), 2);
    let mut probes = Vec::new();
    let end = Instant::now() + Duration::from_secs(7);
    while Instant::now() < end {
        probes.push(probe(&web, &addr));
        std::thread::sleep(Duration::from_millis(200));
    }
    let junk = flood.join().unwrap();
    let (peak_threads, peak_rss) = sampler.peaks();
    drop(sampler);
    let s = stats(&listener);
    let summary = format!(
        "junk {junk}, probes {probes:?}, threads {threads0}->{peak_threads}, rss {rss0}->{peak_rss} KiB, \
         callback calls {}, stats {s}",
        seen.calls.load(Ordering::SeqCst)
    );

    assert!(junk >= 200, "the flood happened: {summary}");
    assert!(probes.iter().all(|p| p.as_ref().is_ok_and(|t| *t < Duration::from_secs(5))), "{summary}");
    assert_eq!(s["accepted"], probes.len() as u64 + 1, "{summary}");
    // One callback thread per listener, not one blocking thread per refusal; memory stays flat.
    assert!(peak_threads as usize <= threads0 + 8, "{summary}");
    assert!(peak_rss <= rss0 + 64 * 1024, "{summary}");
    // The callback saw a few refusals, in order; the rest were counted and reported as "N refusals dropped".
    assert!(seen.calls.load(Ordering::SeqCst) <= 12, "{summary}");
    let refused = s["refused"].as_u64().unwrap();
    assert!(refused >= junk * 9 / 10, "{summary}");
    assert!(s["refusals_dropped"].as_u64().unwrap() + 4 + seen.calls.load(Ordering::SeqCst) >= refused, "{summary}");
    assert!(eventually(Duration::from_secs(10), || seen.dropped_reports.load(Ordering::SeqCst) > 0), "{summary}");
    let messages = seen.messages.lock().unwrap().clone();
    let report = messages.iter().find(|(_, m)| m.contains(" refusals dropped: ")).unwrap();
    assert!(report.1.contains("the refusal callback did not keep up (its queue of 4 was full)"), "{report:?}");
    assert_eq!(report.0, ERR_HANDSHAKE, "{report:?}");
}

#[test]
fn authorize_calls_are_bounded_per_listener_and_fail_closed_when_the_agent_is_slow() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = Agent::start();
    let client = Client::new(
        &agent.address(),
        &[("max_authorizations", "2"), ("authorize_timeout_ms", "1500"), ("refusal_queue", "64")],
    );
    let db = client.service("db").ready(10_000);
    let web = Arc::new(client.service("web").ready(10_000));
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let seen = on_refused_sleeping(&listener, Duration::ZERO);
    echo_server(listener.clone());
    probe(&web, &addr).expect("warm-up dial");
    let (threads0, _) = library_threads_and_rss();

    // Every authorize call now takes 4 s: 12 valid clients at once, 2 slots, a 1.5 s timeout.
    agent.fault("authorize", "delay", 4000, "");
    let sampler = Sampler::start();
    let dials: Vec<_> = (0..12)
        .map(|_| {
            let (web, addr) = (web.clone(), addr.clone());
            std::thread::spawn(move || probe(&web, &addr))
        })
        .collect();
    let results: Vec<_> = dials.into_iter().map(|d| d.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.is_err()), "no client is admitted without a decision: {results:?}");
    assert!(eventually(Duration::from_secs(15), || seen.calls.load(Ordering::SeqCst) >= 12));
    let (peak_threads, _) = sampler.peaks();
    drop(sampler);
    let messages = seen.messages.lock().unwrap().clone();
    assert!(messages.iter().all(|(code, _)| *code == ERR_AUTHZ_FAILED), "{messages:?}");
    let not_started = messages.iter().filter(|(_, m)| m.contains("could not start within 1500ms")).count();
    let no_answer =
        messages.iter().filter(|(_, m)| m.contains("did not answer") || m.contains("timed out after")).count();
    assert_eq!(not_started + no_answer, 12, "{messages:?}");
    assert!(not_started >= 6, "most waited for one of the 2 slots: {messages:?}");
    // The blocking threads in use never exceed the slots (a call past its timeout still holds its slot).
    assert!(peak_threads as usize <= threads0 + 4, "threads {threads0} -> {peak_threads}");

    agent.clear_faults();
    assert!(
        eventually(Duration::from_secs(15), || probe(&web, &addr).is_ok()),
        "admitted again once the agent answers"
    );
}

static CHECKS: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn stuck_check(_: *mut libc::c_void, _: *const libc::c_char, _: *const libc::c_char) -> i32 {
    CHECKS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(8));
    0
}

#[test]
fn a_stuck_peer_check_refuses_after_the_timeout_and_holds_one_thread() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("peer_check_threads", "1"), ("authorize_timeout_ms", "1000")]);
    let db = client.service("db").ready(10_000);
    let web = Arc::new(client.service("web").ready(10_000));
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let seen = on_refused_sleeping(&listener, Duration::ZERO);
    echo_server(listener.clone());
    check(consulnative_listener_set_peer_check(listener.0, Some(stuck_check), std::ptr::null_mut(), None)).unwrap();

    let dials: Vec<_> = (0..8)
        .map(|_| {
            let (web, addr) = (web.clone(), addr.clone());
            std::thread::spawn(move || probe(&web, &addr))
        })
        .collect();
    for d in dials {
        assert!(d.join().unwrap().is_err(), "fail closed: no verdict, no admission");
    }
    assert!(eventually(Duration::from_secs(15), || seen.calls.load(Ordering::SeqCst) >= 8));
    let messages = seen.messages.lock().unwrap().clone();
    assert!(
        messages.iter().all(|(code, m)| *code == ERR_AUTHZ_FAILED
            && m.contains("the application's peer check did not answer within 1s")),
        "{messages:?}"
    );
    // The one check thread was stuck in the first call; the others waited their timeout and were never run.
    assert_eq!(CHECKS.load(Ordering::SeqCst), 1);
    assert_eq!(stats(&listener)["accepted"], 0);
    // A junk connection meanwhile is refused at once: the handshakes of others do not wait for the check.
    let flood = junk_flood(&addr, Duration::from_millis(300), 1);
    let junk = flood.join().unwrap();
    assert!(eventually(Duration::from_secs(10), || seen.calls.load(Ordering::SeqCst) >= 8 + junk.min(50)));
}
