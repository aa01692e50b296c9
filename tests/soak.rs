//! Soak test (ignored by default; `bash scripts/soak.sh` runs it): several clients connect continuously through the
//! C ABI while the dev agent's CA rotates 100 times and an intention flips between allow and deny. Always-allowed
//! clients must never fail a handshake, a denied client must never be admitted, the flipping client must follow
//! the intention, and the test process's threads and RSS must stay flat. It stops by itself.
//!
//! `SOAK_ROTATIONS` (default 100) over `SOAK_SECONDS` (default 120), then `SOAK_STEADY_SECONDS` (default 15) of
//! connections without rotations, set the length.

mod common;
use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALLOWED: &[&str] = &["web0", "web1", "web2"];
const DENIED: &str = "evil";
const FLIPPER: &str = "flipper";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// The thread count without the short-lived ones (an echo thread per open connection): the least of ten samples
/// over a second.
fn steady_threads() -> usize {
    (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            threads()
        })
        .min()
        .unwrap_or(0)
}

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The flipper's intention changes: (asked at, done at, allow), the first one at the start.
type Flips = Mutex<Vec<(Instant, Instant, bool)>>;

/// Whether the flipper was allowed throughout `[from, to]`, denied throughout, or the intention may have changed
/// in between (a change counts from just before it was asked until `margin` after the agent confirmed it).
fn state_during(flips: &Flips, from: Instant, to: Instant, margin: Duration) -> Option<bool> {
    let flips = flips.lock().unwrap();
    let unsure = flips.iter().skip(1).any(|(asked, done, _)| *asked <= to && *done + margin >= from);
    if unsure {
        return None;
    }
    flips.iter().rev().find(|(_, done, _)| *done < from).map(|(_, _, allow)| *allow)
}

#[derive(Default)]
struct Tally {
    attempts: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    failures: Mutex<Vec<String>>,
}

#[test]
#[ignore]
fn soak_rotations_and_intention_flips_with_continuous_connections() {
    let rotations = env_u64("SOAK_ROTATIONS", 100);
    let seconds = env_u64("SOAK_SECONDS", 120);
    let interval = Duration::from_millis(seconds * 1000 / rotations.max(1));
    let steady = env_u64("SOAK_STEADY_SECONDS", 15);

    let agent = Agent::start_with(None, None, false, 0); // default deny
    for name in ALLOWED {
        agent.intention(name, "db", true);
    }
    agent.intention(DENIED, "db", false);
    agent.intention(FLIPPER, "db", true);
    let flips: Arc<Flips> = Arc::new(Mutex::new(vec![(Instant::now(), Instant::now(), true)]));

    let server = Client::new(&agent.address(), &[]);
    let db = server.service("db").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    // The server side: echo, and record who was admitted when.
    let admitted: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    {
        let (listener, admitted) = (listener.clone(), admitted.clone());
        std::thread::spawn(move || {
            while let Ok(conn) = listener.accept(-1) {
                let who = conn.info()["peer"]["service"].as_str().unwrap_or_default().to_string();
                admitted.lock().unwrap().push((who, Instant::now()));
                std::thread::spawn(move || {
                    while let Ok(data) = conn.read(1024, 5000) {
                        if data.is_empty() || conn.write(&data).is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }

    // One client handle per caller (each with its own roots watch), all dialing continuously.
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Arc<HashMap<&'static str, Tally>> =
        Arc::new(ALLOWED.iter().chain([&DENIED, &FLIPPER]).map(|n| (*n, Tally::default())).collect());
    type Attempt = (Instant, Instant, Result<(), Failure>);
    let flipper_attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let mut callers = Vec::new();
    for name in ALLOWED.iter().copied().chain([DENIED, FLIPPER]) {
        let client = Client::new(&agent.address(), &[]);
        let service = client.service(name).ready(10_000);
        let (stop, tallies, addr, flipper_attempts) =
            (stop.clone(), tallies.clone(), addr.clone(), flipper_attempts.clone());
        callers.push(std::thread::spawn(move || {
            let tally = &tallies[name];
            let payload = format!("{name} says hello");
            while !stop.load(Ordering::SeqCst) {
                tally.attempts.fetch_add(1, Ordering::SeqCst);
                let started = Instant::now();
                let outcome = service.dial_address(&addr, "db", 5000).and_then(|conn| {
                    conn.write(payload.as_bytes())?;
                    let echoed = conn.read_exact(payload.len())?;
                    let _ = conn.close(1000);
                    if echoed == payload.as_bytes() {
                        Ok(())
                    } else {
                        Err(Failure { code: 0, message: "echo mismatch".into() })
                    }
                });
                match &outcome {
                    Ok(()) => tally.ok.fetch_add(1, Ordering::SeqCst),
                    Err(_) => tally.refused.fetch_add(1, Ordering::SeqCst),
                };
                if name == FLIPPER {
                    flipper_attempts.lock().unwrap().push((started, Instant::now(), outcome.clone()));
                } else if let (true, Err(e)) = (ALLOWED.contains(&name), &outcome) {
                    tally.failures.lock().unwrap().push(format!("{:?}: {} ({})", started.elapsed(), e.message, e.code));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(service);
            drop(client);
        }));
    }

    // Warm up, then take the baseline.
    std::thread::sleep(Duration::from_secs(3));
    let (threads_start, rss_start, agent_pid) = (steady_threads(), rss_kib("self"), agent.0.pid().unwrap().to_string());
    let agent_rss_start = rss_kib(&agent_pid);
    let mut threads_max = threads_start;
    let mut rss_max = rss_start;
    let mut rss_path = vec![format!("{rss_start}")];
    let started = Instant::now();
    for i in 1..=rotations {
        // On a fixed schedule: the length does not depend on how long each rotation takes.
        let due = started + interval * i as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        agent.rotate_ca();
        if i % 3 == 0 {
            let allow = !flips.lock().unwrap().last().unwrap().2;
            let asked = Instant::now();
            agent.intention(FLIPPER, "db", allow);
            flips.lock().unwrap().push((asked, Instant::now(), allow));
        }
        threads_max = threads_max.max(threads());
        rss_max = rss_max.max(rss_kib("self"));
        if i % (rotations / 4).max(1) == 0 {
            rss_path.push(format!("{} at {i}", rss_kib("self")));
        }
        assert!(started.elapsed() < Duration::from_secs(seconds + 60), "the soak must stop by itself");
    }
    std::thread::sleep(Duration::from_secs(2)); // the last rotation reaches every watch
                                                // A steady phase, connections without rotations: what a connection costs shows here, without the roots list
                                                // growing (the dev agent, unlike Consul, never prunes old roots, so memory grows with the rotations).
    let rss_steady = rss_kib("self");
    std::thread::sleep(Duration::from_secs(steady));
    let (threads_end, rss_end) = (steady_threads(), rss_kib("self"));
    stop.store(true, Ordering::SeqCst);
    for c in callers {
        c.join().unwrap();
    }

    let status = db.status();
    let line = |name: &str| {
        let t = &tallies[name];
        format!(
            "{name}: {} attempts, {} echoed, {} refused",
            t.attempts.load(Ordering::SeqCst),
            t.ok.load(Ordering::SeqCst),
            t.refused.load(Ordering::SeqCst)
        )
    };
    let admitted = admitted.lock().unwrap();
    let admitted_of = |name: &str| admitted.iter().filter(|(who, _)| who == name).count();
    eprintln!(
        "soak: {rotations} CA rotations in {:?}, {} intention flips",
        started.elapsed(),
        flips.lock().unwrap().len() - 1
    );
    for name in ALLOWED.iter().copied().chain([DENIED, FLIPPER]) {
        eprintln!("soak: {} ; admitted by the listener: {}", line(name), admitted_of(name));
    }
    eprintln!("soak: test process threads {threads_start} -> {threads_end} (max {threads_max})");
    eprintln!("soak: test process RSS {rss_start} KiB -> {rss_end} KiB (max {rss_max} KiB)");
    eprintln!("soak: RSS KiB by rotation (the dev agent lists every root ever made): {}", rss_path.join(", "));
    eprintln!("soak: RSS over the last {steady} s of connections without rotations: {rss_steady} KiB -> {rss_end} KiB");
    eprintln!("soak: dev agent RSS {agent_rss_start} KiB -> {} KiB", rss_kib(&agent_pid));
    eprintln!("soak: db trusts {} roots, ready {}", status["roots"], status["ready"]);

    for name in ALLOWED {
        let failures = tallies[name].failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "{name} failed {} time(s): {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(tallies[name].ok.load(Ordering::SeqCst) > rotations, "{}", line(name));
    }
    assert_eq!(admitted_of(DENIED), 0, "a denied client was admitted");
    assert!(tallies[DENIED].attempts.load(Ordering::SeqCst) > rotations, "{}", line(DENIED));

    // The flipper follows the intention: attempts made entirely inside one state get that state's answer.
    let margin = Duration::from_millis(300);
    let (mut checked_allow, mut checked_deny) = (0, 0);
    for (from, to, outcome) in flipper_attempts.lock().unwrap().iter() {
        let at = from.saturating_duration_since(started);
        match state_during(&flips, *from, *to, margin) {
            Some(true) => {
                assert!(outcome.is_ok(), "flipper refused while allowed ({at:?} after start): {outcome:?}");
                checked_allow += 1;
            }
            Some(false) => {
                assert!(outcome.is_err(), "flipper admitted while denied ({at:?} after start)");
                checked_deny += 1;
            }
            None => {}
        }
    }
    eprintln!("soak: flipper attempts checked: {checked_allow} while allowed, {checked_deny} while denied");
    assert!(checked_allow > 0 && checked_deny > 0);

    assert_eq!(status["ready"], true, "{status}");
    assert_eq!(status["roots"], rotations + 1, "{status}");
    assert!(threads_end <= threads_start + 2, "threads {threads_start} -> {threads_end}");
    assert!(rss_end < rss_start + 32 * 1024, "RSS {rss_start} KiB -> {rss_end} KiB");
    assert!(rss_end < rss_steady + 4 * 1024, "RSS grew from {rss_steady} KiB to {rss_end} KiB without rotations");
}
