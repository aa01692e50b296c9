//! Section 1, connection setup rate: the library through the C ABI, bare tokio-rustls and plain TCP, judged per
//! CPU-second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stats::{median, Report};
use crate::world::{server_name, with_cost, Bare, Cost, World};
use crate::Plan;

/// Library: `rate_clients` threads dial (C ABI, full SPIFFE URI expected), write one byte, read the echo, free;
/// as many threads accept (the listener has already authorized), read the byte, echo it, free.
pub fn rate_library(w: &World, plan: &Plan) -> (f64, u64, u64) {
    let listener = Arc::new(w.db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let stop = Arc::new(AtomicBool::new(false));
    let servers: Vec<_> = (0..plan.rate_clients)
        .map(|_| {
            let (l, stop) = (listener.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(conn) = l.accept(100) {
                        if let Ok(b) = conn.read(1, 2000) {
                            let _ = conn.write(&b);
                        }
                    }
                }
            })
        })
        .collect();
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + plan.rate_run;
    std::thread::scope(|s| {
        for _ in 0..plan.rate_clients {
            let (done, errors, addr) = (done.clone(), errors.clone(), addr.clone());
            s.spawn(move || {
                while Instant::now() < deadline {
                    let ok = w
                        .web
                        .dial_address(&addr, &w.db_uri, 5000)
                        .and_then(|c| c.write(b"x").and_then(|_| c.read(1, 5000)))
                        .map(|b| b.len() == 1)
                        .unwrap_or(false);
                    if ok { &done } else { &errors }.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in servers {
        let _ = t.join();
    }
    let done = done.load(Ordering::Relaxed);
    (done as f64 / elapsed, done, errors.load(Ordering::Relaxed))
}

/// Bare tokio-rustls (tls = true) or plain TCP (tls = false): one runtime, an accept loop spawning one task per
/// connection (handshake, read one byte, echo it), and `rate_clients` client tasks looping connect, handshake,
/// write one byte, read the echo. No authorize call.
pub fn rate_bare(bare: &Bare, plan: &Plan, tls: bool) -> (f64, u64, (u64, Option<String>)) {
    let (acceptor, connector) = (bare.acceptor(), bare.connector());
    let plan = *plan;
    bare.rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = tcp.accept().await else { continue };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = s.set_nodelay(true);
                    let mut b = [0u8; 1];
                    if tls {
                        let Ok(Ok(mut t)) = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(s)).await
                        else {
                            return;
                        };
                        if t.read_exact(&mut b).await.is_ok() {
                            let _ = t.write_all(&b).await;
                            let _ = t.flush().await;
                        }
                    } else {
                        let mut s = s;
                        if s.read_exact(&mut b).await.is_ok() {
                            let _ = s.write_all(&b).await;
                        }
                    }
                });
            }
        });
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(start + plan.rate_run);
        let mut clients = Vec::new();
        for _ in 0..plan.rate_clients {
            let connector = connector.clone();
            clients.push(tokio::spawn(async move {
                let (mut done, mut errors, mut group) = (0u64, 0u64, None);
                while tokio::time::Instant::now() < deadline {
                    let one = tokio::time::timeout(Duration::from_secs(5), async {
                        let s = tokio::net::TcpStream::connect(addr).await?;
                        s.set_nodelay(true)?;
                        let mut b = [0u8; 1];
                        if tls {
                            let mut t = connector.connect(server_name(), s).await?;
                            if group.is_none() {
                                group =
                                    t.get_ref().1.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name()));
                            }
                            t.write_all(b"x").await?;
                            t.flush().await?;
                            t.read_exact(&mut b).await?;
                        } else {
                            let mut s = s;
                            s.write_all(b"x").await?;
                            s.read_exact(&mut b).await?;
                        }
                        std::io::Result::Ok(())
                    })
                    .await;
                    match one {
                        Ok(Ok(())) => done += 1,
                        _ => errors += 1,
                    }
                }
                (done, errors, group)
            }));
        }
        let (mut done, mut errors, mut group) = (0, 0, None);
        for c in clients {
            let (d, e, g) = c.await.unwrap();
            done += d;
            errors += e;
            group = group.or(g);
        }
        let elapsed = start.elapsed().as_secs_f64();
        server.abort();
        (done as f64 / elapsed, done, (errors, group))
    })
}

pub fn bench_rate(w: &World, bare: &Bare, plan: &Plan, report: &mut Report) {
    eprintln!(
        "[1] connection setup rate: {} rounds of {:?} per variant, {} concurrent dialers",
        plan.rounds, plan.rate_run, plan.rate_clients
    );
    let warm = Plan { rate_run: Duration::from_millis(300), ..*plan };
    let _ = rate_library(w, &warm);
    let _ = rate_bare(bare, &warm, true);
    let (mut lib, mut tls, mut tcp) = (vec![], vec![], vec![]);
    let (mut lib_err, mut tls_err, mut tcp_err) = (0, 0, 0);
    // Per variant (library, bare rustls, plain TCP), per round: the cost of one connection.
    let mut cost: [Vec<Cost>; 3] = Default::default();
    let mut group = None;
    let pid = w.agent_pid;
    for r in 0..plan.rounds {
        let (a, _, ae, ac) = with_cost(pid, || rate_library(w, plan));
        let (b, _, (be, g), bc) = with_cost(pid, || rate_bare(bare, plan, true));
        let (c, _, (ce, _), cc) = with_cost(pid, || rate_bare(bare, plan, false));
        eprintln!(
            "    round {r}: library {a:.0}/s ({:.0} µs CPU of which agent {:.0}, {:.1} switches per conn), \
             bare rustls {b:.0}/s ({:.0} µs, {:.1}), plain TCP {c:.0}/s ({:.0} µs, {:.1})",
            ac.us(),
            ac.agent_us,
            ac.switches(),
            bc.us(),
            bc.switches(),
            cc.us(),
            cc.switches()
        );
        lib.push(a);
        tls.push(b);
        tcp.push(c);
        for (i, x) in [ac, bc, cc].into_iter().enumerate() {
            cost[i].push(x);
        }
        lib_err += ae;
        tls_err += be;
        tcp_err += ce;
        group = group.or(g);
    }
    let measure = "1. connection setup (connect + mTLS + authorize + 1-byte echo), wall clock";
    let mut row = report.row("1", measure, "library (C ABI dial/accept)", "conn/s", &lib);
    row.goal = "(judged per CPU-second, below)".into();
    report.push_ratio(row, &lib, &tls);
    let row = report.row("1", measure, "bare tokio-rustls (no authorize)", "conn/s", &tls);
    report.push_baseline(row);
    let row = report.row("1", measure, "plain TCP", "conn/s", &tcp);
    report.push_ratio(row, &tcp, &tls);
    // Connections per CPU-second of both ends and the agent: what a dedicated 2-core machine would sustain, and
    // insensitive to how the scheduler shares the CPU with other work and between variants that run different
    // numbers of threads.
    let per_cpu = |i: usize, f: fn(&Cost) -> f64| cost[i].iter().map(|c| 1e6 / f(c)).collect::<Vec<f64>>();
    let (lib_c, tls_c, tcp_c) = (per_cpu(0, Cost::us), per_cpu(1, Cost::us), per_cpu(2, Cost::us));
    let measure = "1. connection setup, per CPU-second of the process (both ends + agent)";
    let row = report.row("1", measure, "library (C ABI dial/accept), agent included", "conn/CPU-s", &lib_c);
    report.push_ratio(row, &lib_c, &tls_c);
    // The goal is judged on what the application pays: the agent is its own process (and the library's half of
    // the authorize call, ureq and the JSON, stays counted here).
    let app_only = per_cpu(0, |c| c.app_us.max(1.0));
    let variant = "library, application only (agent process's CPU excluded)";
    let row = report.row("1", measure, variant, "conn/CPU-s", &app_only);
    report.push_goal(row, &app_only, &tls_c, 0.8, "≥ 0.8x bare rustls");
    let row = report.row("1", measure, "bare tokio-rustls (no authorize)", "conn/CPU-s", &tls_c);
    report.push_baseline(row);
    let row = report.row("1", measure, "plain TCP", "conn/CPU-s", &tcp_c);
    report.push_ratio(row, &tcp_c, &tls_c);
    let med = |i: usize, f: fn(&Cost) -> f64| median(&cost[i].iter().map(f).collect::<Vec<_>>());
    report.notes.push(format!(
        "Connection setup, cost per connection (both ends and the dev agent: getrusage of this process plus the \
         agent process's threads): library {:.0} µs CPU (of which the agent {:.0}) and {:.1} context switches \
         (agent {:.1}); bare rustls {:.0} µs and {:.1}; plain TCP {:.0} µs and {:.1}.",
        med(0, Cost::us),
        med(0, |c| c.agent_us),
        med(0, Cost::switches),
        med(0, |c| c.agent_switches),
        med(1, Cost::us),
        med(1, Cost::switches),
        med(2, Cost::us),
        med(2, Cost::switches)
    ));
    report.notes.push(format!(
        "Connection setup: key exchange negotiated by the bare-rustls baseline (same provider and configs as the \
         library): {}. Failed attempts during the runs: library {lib_err}, bare rustls {tls_err}, plain TCP {tcp_err}.",
        group.unwrap_or_else(|| "unknown".into())
    ));
}
