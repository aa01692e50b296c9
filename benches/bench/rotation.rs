//! Section 4, rotation latency: from the agent reissuing the leaves to the first handshake presenting the new one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::{median, min_max, spread, yes_no, Report};
use crate::world::World;
use crate::Plan;

/// A fresh agent; per rotation: note the serial the listener presents, rotate the CA (the agent reissues every
/// leaf before the call returns), then dial in a loop until a handshake presents a different serial. Latency:
/// rotation call returned → that handshake completed.
pub fn bench_rotation(plan: &Plan, report: &mut Report) {
    eprintln!("[4] rotation latency: {} rotations", plan.rotations);
    let w = World::start();
    let listener = Arc::new(w.db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let (l, stop) = (listener.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = l.accept(100);
            }
        })
    };
    let presented = |w: &World| -> Option<String> {
        let c = w.web.dial_address(&addr, &w.db_uri, 2000).ok()?;
        Some(c.info()["peer"]["serial"].as_str()?.to_string())
    };
    let mut samples = vec![];
    let mut failed_dials = 0u64;
    let mut timeouts = 0;
    for _ in 0..plan.rotations {
        let before = (0..50).find_map(|_| presented(&w)).expect("a handshake before rotating");
        w.agent.rotate_ca();
        let t0 = Instant::now();
        let mut got = None;
        while t0.elapsed() < Duration::from_secs(5) {
            match presented(&w) {
                Some(s) if s != before => {
                    got = Some(t0.elapsed());
                    break;
                }
                Some(_) => {}
                None => failed_dials += 1,
            }
        }
        match got {
            Some(d) => samples.push(d.as_secs_f64() * 1e3),
            None => timeouts += 1,
        }
        // Let the watches' rate limit (one request per 100 ms after a burst of 5) refill, as between real rotations.
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    let measure = format!("4. rotation: new leaf issued → first handshake presenting it ({} rotations)", samples.len());
    let p50 = median(&samples);
    let mut row = report.row("4", &measure, "p50", "ms", &[p50]);
    row.spread = spread(&samples);
    row.goal = "p50 < 100 ms".into();
    row.met = yes_no(p50 < 100.0);
    report.push(row);
    let row = report.single("4", &measure, "max", "ms", min_max(&samples).1);
    report.push(row);
    report.notes.push(format!(
        "Rotation: CA rotations on a fresh dev agent (new root, cross-signed intermediate, every leaf reissued inside \
         the call); dials that failed while roots and leaves changed: {failed_dials}; rotations not seen within 5 s: \
         {timeouts}."
    ));
}
