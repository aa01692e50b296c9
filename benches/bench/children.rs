//! Sections 5 (memory per idle connection) and 6 (scale), each measured in a child process (this binary
//! re-executed with `__child`) so that resident memory and threads are the child's alone; and the profile
//! children that `benches/profile.sh` runs under callgrind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bulk::{bulk_bare, bulk_library};
use crate::common::{Client, Conn, Service};
use crate::stats::{median, ratio_cell, yes_no, Report};
use crate::world::{raise_nofile, rss_bytes, server_name, threads, Bare, World, QUIET};
use crate::Plan;

/// `__child memory KIND AGENT N`, `__child scale AGENT N`, `__child profile KIND N`: prints `RESULT {json}`.
pub fn child_main(args: &[String]) {
    let r = match args.first().map(String::as_str) {
        Some("memory") => child_memory(&args[1], &args[2], args[3].parse().unwrap()),
        Some("scale") => child_scale(&args[1], args[2].parse().unwrap()),
        Some("profile") => child_profile(&args[1], args[2].parse().unwrap()),
        other => panic!("unknown child {other:?}"),
    };
    println!("RESULT {r}");
}

fn child_result(args: &[String]) -> serde_json::Value {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .arg("__child")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("child {args:?} gave no result: {text}"));
    serde_json::from_str(line).unwrap()
}

/// Child: opens `n` connection pairs of one kind inside this process, keeps them idle, and reports the growth of
/// resident memory per connection end (both ends are in this process).
fn child_memory(kind: &str, agent_addr: &str, n: usize) -> serde_json::Value {
    let limit = raise_nofile();
    let settle = || std::thread::sleep(Duration::from_millis(300));
    let (rss0, rss1, threads1);
    if kind == "library" {
        let client = Client::new(agent_addr, QUIET);
        let db = client.service("db").ready(30_000);
        let web = client.service("web").ready(30_000);
        let db_uri = db.status()["spiffe_id"].as_str().unwrap().to_string();
        let listener = Arc::new(db.listen("127.0.0.1:0"));
        let addr = listener.address();
        let open = |count: usize| -> (Vec<Conn>, Vec<Conn>) {
            let l = listener.clone();
            let acc = std::thread::spawn(move || (0..count).filter_map(|_| l.accept(10_000).ok()).collect::<Vec<_>>());
            let dialed: Vec<Conn> = (0..count).filter_map(|_| web.dial_address(&addr, &db_uri, 10_000).ok()).collect();
            (dialed, acc.join().unwrap())
        };
        drop(open(50.min(n)));
        settle();
        rss0 = rss_bytes();
        let (d, a) = open(n);
        assert_eq!((d.len(), a.len()), (n, n), "library: not every connection opened");
        settle();
        rss1 = rss_bytes();
        threads1 = threads();
        drop((d, a));
    } else {
        let bare = Bare::new(agent_addr);
        let tls = kind == "bare-rustls";
        let (acceptor, connector) = (bare.acceptor(), bare.connector());
        type Held = (Vec<Box<dyn Send>>, Vec<Box<dyn Send>>);
        let open = |count: usize| -> Held {
            let (acceptor, connector) = (acceptor.clone(), connector.clone());
            bare.rt.block_on(async move {
                let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = tcp.local_addr().unwrap();
                let server = tokio::spawn(async move {
                    let mut held: Vec<Box<dyn Send>> = Vec::new();
                    for _ in 0..count {
                        let (s, _) = tcp.accept().await.unwrap();
                        let _ = s.set_nodelay(true);
                        if tls {
                            held.push(Box::new(acceptor.accept(s).await.unwrap()));
                        } else {
                            held.push(Box::new(s));
                        }
                    }
                    held
                });
                let mut dialed: Vec<Box<dyn Send>> = Vec::new();
                for _ in 0..count {
                    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let _ = s.set_nodelay(true);
                    if tls {
                        dialed.push(Box::new(connector.connect(server_name(), s).await.unwrap()));
                    } else {
                        dialed.push(Box::new(s));
                    }
                }
                (dialed, server.await.unwrap())
            })
        };
        drop(open(50.min(n)));
        settle();
        rss0 = rss_bytes();
        let held = open(n);
        settle();
        rss1 = rss_bytes();
        threads1 = threads();
        drop(held);
    }
    let per_end = (rss1 as f64 - rss0 as f64) / (2 * n) as f64 / 1024.0;
    serde_json::json!({ "per_end_kib": per_end, "rss_before": rss0, "rss_after": rss1, "threads": threads1, "nofile": limit })
}

/// Child: `n` service handles on one client; time until every one is ready, threads and resident memory.
fn child_scale(agent_addr: &str, n: usize) -> serde_json::Value {
    raise_nofile();
    let (rss0, threads0) = (rss_bytes(), threads());
    let t0 = Instant::now();
    let client = Client::new(agent_addr, QUIET);
    let services: Vec<Service> = (0..n).map(|i| client.service(&format!("svc-{i}"))).collect();
    let mut not_ready = 0;
    for s in &services {
        if s.wait_ready((60_000 - t0.elapsed().as_millis() as i64).max(1)).is_err() {
            not_ready += 1;
        }
    }
    let ready_ms = t0.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, threads1) = (rss_bytes(), threads());
    drop(services);
    drop(client);
    serde_json::json!({
        "ready_ms": ready_ms, "not_ready": not_ready,
        "threads": threads1, "threads_before": threads0,
        "rss_mib": rss1 as f64 / 1048576.0, "rss_growth_mib": (rss1 as f64 - rss0 as f64) / 1048576.0,
    })
}

/// Child for profiling under `valgrind --tool=callgrind` (no timing): `n` sequential connection setups, or `n` MiB
/// of bulk transfer, of one kind. `benches/profile.sh` runs it; compare two kinds' instruction counts per unit.
/// The dev agent is a process of its own: callgrind counts it only with `--trace-children=yes`.
fn child_profile(kind: &str, n: usize) -> serde_json::Value {
    let w = World::start();
    let bare = Bare::new(&w.agent.address());
    match kind {
        "rate-library" => {
            let listener = Arc::new(w.db.listen("127.0.0.1:0"));
            let addr = listener.address();
            let l = listener.clone();
            let server = std::thread::spawn(move || {
                for _ in 0..n {
                    let Ok(c) = l.accept(30_000) else { break };
                    if let Ok(b) = c.read(1, 30_000) {
                        let _ = c.write(&b);
                    }
                }
            });
            for _ in 0..n {
                let c = w.web.dial_address(&addr, &w.db_uri, 30_000).expect("dial");
                c.write(b"x").unwrap();
                assert_eq!(c.read(1, 30_000).unwrap().len(), 1);
            }
            server.join().unwrap();
        }
        "rate-bare" => {
            let (acceptor, connector) = (bare.acceptor(), bare.connector());
            bare.rt.block_on(async move {
                let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = tcp.local_addr().unwrap();
                let server = tokio::spawn(async move {
                    for _ in 0..n {
                        let (s, _) = tcp.accept().await.unwrap();
                        let _ = s.set_nodelay(true);
                        let mut t = acceptor.accept(s).await.unwrap();
                        let mut b = [0u8; 1];
                        t.read_exact(&mut b).await.unwrap();
                        t.write_all(&b).await.unwrap();
                        t.flush().await.unwrap();
                    }
                });
                for _ in 0..n {
                    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let _ = s.set_nodelay(true);
                    let mut t = connector.connect(server_name(), s).await.unwrap();
                    let mut b = [0u8; 1];
                    t.write_all(b"x").await.unwrap();
                    t.flush().await.unwrap();
                    t.read_exact(&mut b).await.unwrap();
                }
                server.await.unwrap();
            });
        }
        "bulk-rw" => drop(bulk_library(&w, n << 20, false)),
        "bulk-handoff" => drop(bulk_library(&w, n << 20, true)),
        "bulk-bare" => drop(bulk_bare(&bare, n << 20, true)),
        other => panic!("unknown profile kind {other}"),
    }
    serde_json::json!({ "kind": kind, "n": n })
}

pub fn bench_memory(w: &World, plan: &Plan, report: &mut Report) {
    let n = plan.memory_conns;
    eprintln!("[5] memory: {n} idle connections per run, {} runs per kind (child processes)", plan.memory_runs);
    let addr = w.agent.address();
    let kinds = ["library", "bare-rustls", "tcp"];
    let mut per: Vec<Vec<f64>> = vec![vec![]; kinds.len()];
    let mut threads_seen = vec![0u64; kinds.len()];
    for _ in 0..plan.memory_runs {
        for (i, k) in kinds.iter().enumerate() {
            let r = child_result(&["memory".into(), k.to_string(), addr.clone(), n.to_string()]);
            per[i].push(r["per_end_kib"].as_f64().unwrap_or(f64::NAN));
            threads_seen[i] = r["threads"].as_u64().unwrap_or(0);
        }
    }
    let measure = format!("5. resident memory per idle connection end, {n} connections open");
    let labels = ["library (C ABI, both ends)", "bare tokio-rustls", "plain TCP (tokio)"];
    for i in 0..kinds.len() {
        let mut row = report.row("5", &measure, labels[i], "KiB", &per[i]);
        if i == 0 {
            row.goal = "≤ 64 KiB".into();
            row.met = yes_no(median(&per[0]) <= 64.0);
            row.ratio = ratio_cell(&per[0], &per[1], None).0;
        }
        report.push(row);
    }
    report.notes.push(format!(
        "Memory: each child process opens {n} connections to itself (so 2×{n} connection ends), after a warm-up of \
         50; the figure is the growth of VmRSS divided by 2×{n}. Threads in the process at the end: library {}, \
         bare {}, TCP {}.",
        threads_seen[0], threads_seen[1], threads_seen[2]
    ));
}

pub fn bench_scale(w: &World, plan: &Plan, report: &mut Report) {
    let n = plan.services;
    eprintln!("[6] scale: {n} service handles, {} runs (child processes)", plan.scale_runs);
    let addr = w.agent.address();
    let (mut ready, mut thr, mut rss, mut growth, mut bad) = (vec![], vec![], vec![], vec![], 0);
    for _ in 0..plan.scale_runs {
        let r = child_result(&["scale".into(), addr.clone(), n.to_string()]);
        ready.push(r["ready_ms"].as_f64().unwrap_or(f64::NAN));
        thr.push(r["threads"].as_f64().unwrap_or(f64::NAN));
        rss.push(r["rss_mib"].as_f64().unwrap_or(f64::NAN));
        growth.push(r["rss_growth_mib"].as_f64().unwrap_or(f64::NAN));
        bad += r["not_ready"].as_u64().unwrap_or(0);
    }
    let measure = format!("6. {n} service handles in one process");
    for (variant, unit, runs) in [
        ("time until all ready", "ms", &ready),
        ("threads in the process", "threads", &thr),
        ("resident memory (whole process)", "MiB", &rss),
        ("resident memory growth", "MiB", &growth),
    ] {
        let row = report.row("6", &measure, variant, unit, runs);
        report.push(row);
    }
    if bad > 0 {
        report.notes.push(format!("Scale: {bad} service handle(s) were not ready within 60 s."));
    }
}
