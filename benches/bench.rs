//! The benchmark runner: connection setup rate, bulk throughput, authorize latency, rotation latency, memory per
//! idle connection and 1,000 service handles, against the embedded dev agent, written as a markdown report.
//!
//! `bash scripts/bench.sh` runs it in full (release, `cargo bench`) and writes `docs/benchmarks.md`;
//! `bash scripts/bench.sh --smoke` runs seconds-long versions into `target/bench-smoke.md`. `cargo test` runs this
//! target too (`test = true`, no harness): then it is a smoke run that checks every figure is produced, never
//! that it beats a goal.
//!
//! The library figures drive the C ABI (`consulnative::*`, through `tests/common`), exactly as C, Python and
//! Ruby do. The bare-rustls baseline uses tokio-rustls directly with the same dev-agent certificates and the
//! crate's own configs and verifiers (`consulnative::tls::{server_config, client_config}`), so chain and SPIFFE
//! checks are equal; it makes no authorize call. Every ratio compares runs interleaved in one invocation.
//! Memory and scale run in child processes (this binary re-executed) so that resident memory is theirs alone.
//! Everything is on loopback, and every loop is bounded in count and time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use consulnative::agent::client::{AgentClient, BlockingQuery};
use consulnative::agent::config::AgentConfig;
use consulnative::tls::{client_config, peer_identity, server_config, CertSource, Expected, Leaf, Roots};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ------------------------------------------------------------------------------------------------------------
// Sizes

#[derive(Clone, Copy, Debug)]
struct Plan {
    smoke: bool,
    rounds: usize,
    /// Length of one connection-rate run per variant.
    rate_run: Duration,
    /// Concurrent dialers (and accepting threads) in the connection-rate runs.
    rate_clients: usize,
    bulk_bytes: usize,
    authorize_calls: usize,
    accept_lag_samples: usize,
    rotations: usize,
    memory_conns: usize,
    memory_runs: usize,
    services: usize,
    scale_runs: usize,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            smoke: false,
            rounds: 7,
            rate_run: Duration::from_secs(2),
            rate_clients: 4,
            bulk_bytes: 256 << 20,
            authorize_calls: 10_000,
            accept_lag_samples: 2_000,
            rotations: 20,
            memory_conns: 5_000,
            memory_runs: 3,
            services: 1_000,
            scale_runs: 3,
        }
    }
    fn smoke() -> Plan {
        Plan {
            smoke: true,
            rounds: 1,
            rate_run: Duration::from_millis(300),
            rate_clients: 2,
            bulk_bytes: 4 << 20,
            authorize_calls: 200,
            accept_lag_samples: 30,
            rotations: 2,
            memory_conns: 100,
            memory_runs: 1,
            services: 20,
            scale_runs: 1,
        }
    }
}

const WRITE_CHUNK: usize = 16 * 1024;
const READ_BUF: usize = 64 * 1024;

// ------------------------------------------------------------------------------------------------------------
// Statistics and the report

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Nearest-rank percentile of unsorted samples.
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x.abs() >= 100.0 {
        format!("{:.0}", x)
    } else if x.abs() >= 10.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    }
}

fn spread(v: &[f64]) -> String {
    if v.len() < 2 {
        return "1 run".into();
    }
    let (lo, hi) = min_max(v);
    format!("{}–{} ({} runs)", fmt_num(lo), fmt_num(hi), v.len())
}

#[derive(Default, Clone)]
struct Row {
    id: String,
    measure: String,
    variant: String,
    median: String,
    spread: String,
    ratio: String,
    goal: String,
    met: String,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    /// (figure name, value) pairs the smoke check looks at.
    figures: Vec<(String, f64)>,
}

impl Report {
    fn row(&mut self, id: &str, measure: &str, variant: &str, unit: &str, runs: &[f64]) -> Row {
        let m = median(runs);
        self.figures.push((format!("{id} {variant}"), m));
        Row {
            id: id.into(),
            measure: measure.into(),
            variant: variant.into(),
            median: format!("{} {unit}", fmt_num(m)),
            spread: spread(runs),
            ..Default::default()
        }
    }
    fn push(&mut self, row: Row) {
        self.rows.push(row);
    }
}

/// The ratio cell and whether a goal `ratio >= goal` holds: median of the per-round ratios, and their spread.
fn ratio_cell(lib: &[f64], base: &[f64], goal: Option<f64>) -> (String, String, f64) {
    let per_round: Vec<f64> = lib.iter().zip(base).map(|(a, b)| a / b).collect();
    let m = median(&per_round);
    let cell = if per_round.len() > 1 {
        let (lo, hi) = min_max(&per_round);
        format!("{:.2}x ({:.2}–{:.2})", m, lo, hi)
    } else {
        format!("{:.2}x", m)
    };
    let met = match goal {
        Some(g) if m.is_finite() => if m >= g { "yes" } else { "**no**" }.to_string(),
        Some(_) => "n/a".into(),
        None => String::new(),
    };
    (cell, met, m)
}

// ------------------------------------------------------------------------------------------------------------
// Shared setup: the dev agent, the services, the bare-rustls certificate source

/// Certificates fetched once from the agent, for the bare-rustls baseline (same leaf, same roots as the library).
struct StaticCerts {
    roots: Arc<Roots>,
    leaf: Arc<Leaf>,
}

impl CertSource for StaticCerts {
    fn roots(&self) -> Option<Arc<Roots>> {
        Some(self.roots.clone())
    }
    fn leaf(&self) -> Option<Arc<Leaf>> {
        Some(self.leaf.clone())
    }
}

fn agent_client(addr: &str) -> AgentClient {
    let addr = addr.to_string();
    AgentClient::new(AgentConfig::from_env_with(|k| (k == "CONSUL_HTTP_ADDR").then(|| addr.clone()))).expect("agent client")
}

fn static_certs(agent: &AgentClient, service: &str) -> Arc<StaticCerts> {
    let q = BlockingQuery { index: 0, wait: Duration::from_secs(1) };
    let roots = Roots::from_agent(&agent.roots(&q).expect("roots").value).expect("parse roots");
    let leaf = Leaf::from_agent(&agent.leaf(service, &q).expect("leaf").value).expect("parse leaf");
    Arc::new(StaticCerts { roots: Arc::new(roots), leaf: Arc::new(leaf) })
}

/// The bare-rustls side: TLS configs built by the crate from the same certificates, and its own tokio runtime.
struct Bare {
    rt: tokio::runtime::Runtime,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl Bare {
    fn new(agent_addr: &str, db_uri: &str) -> Bare {
        let agent = agent_client(agent_addr);
        let db: Arc<dyn CertSource> = static_certs(&agent, "db");
        let web: Arc<dyn CertSource> = static_certs(&agent, "web");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8))
            .enable_all()
            .build()
            .unwrap();
        Bare {
            rt,
            server: server_config(db, vec![]).unwrap(),
            client: client_config(web, Expected::Uri(db_uri.to_string()), vec![]).unwrap(),
        }
    }
}

struct World {
    agent: Agent,
    /// Kept alive for the services (their roots watch).
    _client: Client,
    db: Service,
    web: Service,
    db_uri: String,
}

/// Long blocking waits (like a real deployment), so idle watches cost nothing during the measurements.
const QUIET: &[(&str, &str)] = &[("blocking_wait_ms", "300000")];

impl World {
    fn start() -> World {
        let agent = Agent::start();
        agent.intention("web", "db", true);
        let client = Client::new(&agent.address(), QUIET);
        let db = client.service("db").ready(30_000);
        let web = client.service("web").ready(30_000);
        let db_uri = db.status()["spiffe_id"].as_str().unwrap().to_string();
        World { agent, _client: client, db, web, db_uri }
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// CPU time (user + system, all threads) and context switches (voluntary + involuntary) of this process so far.
fn cpu_and_switches() -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime) + tv(ru.ru_stime), (ru.ru_nvcsw + ru.ru_nivcsw) as f64)
}

/// Runs `f` (which returns a rate and a count of completed operations) and adds the process's CPU µs and context
/// switches per operation.
fn with_cost<T>(f: impl FnOnce() -> (f64, u64, T)) -> (f64, u64, T, f64, f64) {
    let (c0, s0) = cpu_and_switches();
    let (rate, ops, extra) = f();
    let (c1, s1) = cpu_and_switches();
    let ops_f = (ops as f64).max(1.0);
    (rate, ops, extra, (c1 - c0) * 1e6 / ops_f, (s1 - s0) / ops_f)
}

/// CPU time (ns) the in-process dev agent's thread has used so far (`/proc/self/task/*/schedstat`). In a real
/// deployment the agent is its own process; subtracting this gives what the application process pays.
fn agent_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("consulnative-de")))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// Raises the descriptor limit to the hard limit (5,000 connections need 10,000 descriptors in one process).
fn raise_nofile() -> u64 {
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

// ------------------------------------------------------------------------------------------------------------
// 1. Connection setup rate

/// Library: `rate_clients` threads dial (C ABI, full SPIFFE URI expected), write one byte, read the echo, free;
/// as many threads accept (the listener has already authorized), read the byte, echo it, free.
fn rate_library(w: &World, plan: &Plan) -> (f64, u64, u64) {
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
fn rate_bare(bare: &Bare, plan: &Plan, tls: bool) -> (f64, u64, (u64, Option<String>)) {
    let acceptor = tokio_rustls::TlsAcceptor::from(bare.server.clone());
    let connector = tokio_rustls::TlsConnector::from(bare.client.clone());
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
                        let Ok(Ok(mut t)) = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(s)).await else { return };
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
                            let mut t = connector.connect(consulnative::tls::dial_server_name(), s).await?;
                            if group.is_none() {
                                group = t.get_ref().1.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name()));
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

fn bench_rate(w: &World, bare: &Bare, plan: &Plan, report: &mut Report) {
    eprintln!("[1] connection setup rate: {} rounds of {:?} per variant, {} concurrent dialers", plan.rounds, plan.rate_run, plan.rate_clients);
    let warm = Plan { rate_run: Duration::from_millis(300), ..*plan };
    let _ = rate_library(w, &warm);
    let _ = rate_bare(bare, &warm, true);
    let (mut lib, mut tls, mut tcp) = (vec![], vec![], vec![]);
    let (mut lib_err, mut tls_err, mut tcp_err) = (0, 0, 0);
    let mut cost: [Vec<(f64, f64)>; 3] = Default::default();
    let mut app_only = vec![];
    let mut group = None;
    for r in 0..plan.rounds {
        let agent_before = agent_cpu_ns();
        let (a, a_ops, ae, ac, asw) = with_cost(|| rate_library(w, plan));
        let agent_us = (agent_cpu_ns() - agent_before) as f64 / 1e3 / (a_ops as f64).max(1.0);
        app_only.push(1e6 / (ac - agent_us).max(1.0));
        let (b, _, (be, g), bc, bsw) = with_cost(|| rate_bare(bare, plan, true));
        let (c, _, (ce, _), cc, csw) = with_cost(|| rate_bare(bare, plan, false));
        eprintln!(
            "    round {r}: library {a:.0}/s ({ac:.0} µs CPU, {asw:.1} switches per conn), bare rustls {b:.0}/s ({bc:.0} µs, {bsw:.1}), plain TCP {c:.0}/s ({cc:.0} µs, {csw:.1})"
        );
        lib.push(a);
        tls.push(b);
        tcp.push(c);
        cost[0].push((ac, asw));
        cost[1].push((bc, bsw));
        cost[2].push((cc, csw));
        lib_err += ae;
        tls_err += be;
        tcp_err += ce;
        group = group.or(g);
    }
    let measure = "1. connection setup (connect + mTLS + authorize + 1-byte echo), wall clock";
    let mut row = report.row("1", measure, "library (C ABI dial/accept)", "conn/s", &lib);
    row.ratio = ratio_cell(&lib, &tls, None).0;
    row.goal = "(judged per CPU-second, below)".into();
    report.push(row);
    let mut row = report.row("1", measure, "bare tokio-rustls (no authorize)", "conn/s", &tls);
    row.ratio = "1.00x".into();
    report.push(row);
    let mut row = report.row("1", measure, "plain TCP", "conn/s", &tcp);
    row.ratio = ratio_cell(&tcp, &tls, None).0;
    report.push(row);
    // Connections per CPU-second of the whole process (both ends and the agent): what a dedicated 2-core machine
    // would sustain, and insensitive to how the scheduler shares the CPU with other work and between variants
    // that run different numbers of threads.
    let per_cpu = |i: usize| cost[i].iter().map(|c| 1e6 / c.0).collect::<Vec<f64>>();
    let (lib_c, tls_c, tcp_c) = (per_cpu(0), per_cpu(1), per_cpu(2));
    let measure = "1. connection setup, per CPU-second of the process (both ends + agent)";
    let mut row = report.row("1", measure, "library (C ABI dial/accept), agent included", "conn/CPU-s", &lib_c);
    row.ratio = ratio_cell(&lib_c, &tls_c, None).0;
    report.push(row);
    // The goal is judged on what the application pays: in a deployment the agent is its own process (and the
    // library's half of the authorize call, ureq and the JSON, stays counted here).
    let (ratio, met, _) = ratio_cell(&app_only, &tls_c, Some(0.8));
    let mut row = report.row("1", measure, "library, application only (agent thread's CPU excluded)", "conn/CPU-s", &app_only);
    row.ratio = ratio;
    row.goal = "≥ 0.8x bare rustls".into();
    row.met = met;
    report.push(row);
    let mut row = report.row("1", measure, "bare tokio-rustls (no authorize)", "conn/CPU-s", &tls_c);
    row.ratio = "1.00x".into();
    report.push(row);
    let mut row = report.row("1", measure, "plain TCP", "conn/CPU-s", &tcp_c);
    row.ratio = ratio_cell(&tcp_c, &tls_c, None).0;
    report.push(row);
    let med = |i: usize, k: usize| median(&cost[i].iter().map(|c| if k == 0 { c.0 } else { c.1 }).collect::<Vec<_>>());
    report.notes.push(format!(
        "Connection setup, cost per connection (both ends and the dev agent, whole process, getrusage): library {:.0} µs CPU \
         and {:.1} context switches; bare rustls {:.0} µs and {:.1}; plain TCP {:.0} µs and {:.1}.",
        med(0, 0), med(0, 1), med(1, 0), med(1, 1), med(2, 0), med(2, 1)
    ));
    report.notes.push(format!(
        "Connection setup: key exchange negotiated by the bare-rustls baseline (same provider and configs as the library): {}. \
         Failed attempts during the runs: library {lib_err}, bare rustls {tls_err}, plain TCP {tcp_err}.",
        group.unwrap_or_else(|| "unknown".into())
    ));
}

// ------------------------------------------------------------------------------------------------------------
// 2. Bulk throughput over one connection

fn accept_one(listener: &Arc<Listener>) -> std::thread::JoinHandle<Conn> {
    let l = listener.clone();
    std::thread::spawn(move || l.accept(10_000).expect("accept"))
}

/// Library, blocking API: the dialer writes `bytes` in 16 KiB `consulnative_conn_write` calls; a thread reads on the
/// accepted side with 64 KiB `consulnative_conn_read` calls. Handoff: both ends handed off, the same over the
/// two descriptors.
fn bulk_library(w: &World, bytes: usize, handoff: bool) -> f64 {
    let listener = Arc::new(w.db.listen("127.0.0.1:0"));
    let server = accept_one(&listener);
    let client = w.web.dial_address(&listener.address(), &w.db_uri, 10_000).expect("dial");
    let server = server.join().unwrap();
    let chunk = vec![7u8; WRITE_CHUNK];
    let secs = if handoff {
        let (mut cfd, mut sfd) = (0i32, 0i32);
        check(consulnative::consulnative_conn_handoff(client.0, &mut cfd)).unwrap();
        check(consulnative::consulnative_conn_handoff(server.0, &mut sfd)).unwrap();
        let mut cs = unsafe { fd_stream(cfd) };
        let mut ss = unsafe { fd_stream(sfd) };
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            let mut got = 0;
            while got < bytes {
                match ss.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            (Instant::now(), got)
        });
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            cs.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        let (t1, got) = reader.join().unwrap();
        assert_eq!(got, bytes, "handoff: short read");
        (t1 - t0).as_secs_f64()
    } else {
        let server = Arc::new(server);
        let s2 = server.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            let mut got = 0;
            while got < bytes {
                let mut n = 0;
                if consulnative::consulnative_conn_read(s2.0, buf.as_mut_ptr(), buf.len(), 10_000, &mut n) != 0 || n == 0 {
                    break;
                }
                got += n;
            }
            (Instant::now(), got)
        });
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            let mut n = 0;
            check(consulnative::consulnative_conn_write(client.0, chunk.as_ptr(), chunk.len(), 10_000, &mut n)).unwrap();
            sent += n;
        }
        let (t1, got) = reader.join().unwrap();
        assert_eq!(got, bytes, "read/write: short read");
        (t1 - t0).as_secs_f64()
    };
    bytes as f64 / secs / 1e6
}

/// Bare tokio-rustls (or plain TCP): the client task writes `bytes` in 16 KiB `write_all` calls, the server task
/// reads with a 64 KiB buffer; both on the baseline's runtime.
fn bulk_bare(bare: &Bare, bytes: usize, tls: bool) -> f64 {
    let acceptor = tokio_rustls::TlsAcceptor::from(bare.server.clone());
    let connector = tokio_rustls::TlsConnector::from(bare.client.clone());
    bare.rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = tcp.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let got = if tls { read_n(acceptor.accept(s).await.unwrap(), bytes).await } else { read_n(s, bytes).await };
            (Instant::now(), got)
        });
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut w: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if tls {
            Box::new(connector.connect(consulnative::tls::dial_server_name(), s).await.unwrap())
        } else {
            Box::new(s)
        };
        let chunk = vec![7u8; WRITE_CHUNK];
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            w.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        w.flush().await.unwrap();
        let (t1, got) = server.await.unwrap();
        assert_eq!(got, bytes, "bare: short read");
        bytes as f64 / (t1 - t0).as_secs_f64() / 1e6
    })
}

async fn read_n(mut r: impl tokio::io::AsyncRead + Unpin, bytes: usize) -> usize {
    let mut buf = vec![0u8; READ_BUF];
    let mut got = 0;
    while got < bytes {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

fn bench_bulk(w: &World, bare: &Bare, plan: &Plan, report: &mut Report) {
    let bytes = plan.bulk_bytes;
    eprintln!("[2] bulk throughput: {} MiB in 16 KiB writes, {} rounds", bytes >> 20, plan.rounds);
    let _ = bulk_library(w, bytes / 8, false);
    let _ = bulk_bare(bare, bytes / 8, true);
    let (mut rw, mut ho, mut tls, mut tcp) = (vec![], vec![], vec![], vec![]);
    // CPU-seconds per GiB moved, whole process, per variant.
    let mut cpu: [Vec<f64>; 4] = Default::default();
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let mut measured = |i: usize, f: &dyn Fn() -> f64| -> f64 {
        let (c0, _) = cpu_and_switches();
        let v = f();
        cpu[i].push((cpu_and_switches().0 - c0) / gib);
        v
    };
    for r in 0..plan.rounds {
        rw.push(measured(0, &|| bulk_library(w, bytes, false)));
        tls.push(measured(2, &|| bulk_bare(bare, bytes, true)));
        ho.push(measured(1, &|| bulk_library(w, bytes, true)));
        tcp.push(measured(3, &|| bulk_bare(bare, bytes, false)));
        eprintln!("    round {r}: read/write {:.0}, handoff {:.0}, bare rustls {:.0}, plain TCP {:.0} MB/s", rw[r], ho[r], tls[r], tcp[r]);
    }
    report.notes.push(format!(
        "Bulk throughput, CPU-seconds per GiB moved (whole process, includes connection setup): library read/write {:.2}, \
         handoff {:.2}, bare rustls {:.2}, plain TCP {:.2}.",
        median(&cpu[0]), median(&cpu[1]), median(&cpu[2]), median(&cpu[3])
    ));
    let measure = format!("2. bulk throughput, one connection ({} MiB in 16 KiB writes)", bytes >> 20);
    let (ratio, met, _) = ratio_cell(&rw, &tls, Some(0.8));
    let mut row = report.row("2", &measure, "library read/write (C ABI)", "MB/s", &rw);
    row.ratio = ratio;
    row.goal = "≥ 0.8x bare rustls".into();
    row.met = met;
    report.push(row);
    let (ratio, met, _) = ratio_cell(&ho, &tls, Some(0.5));
    let mut row = report.row("2", &measure, "library fd handoff (both ends)", "MB/s", &ho);
    row.ratio = ratio;
    row.goal = "≥ 0.5x bare rustls".into();
    row.met = met;
    report.push(row);
    let mut row = report.row("2", &measure, "bare tokio-rustls", "MB/s", &tls);
    row.ratio = "1.00x".into();
    report.push(row);
    let mut row = report.row("2", &measure, "plain TCP", "MB/s", &tcp);
    row.ratio = ratio_cell(&tcp, &tls, None).0;
    report.push(row);
}

// ------------------------------------------------------------------------------------------------------------
// 3. Authorize latency

/// The listener's own authorize step (`net::authorize::authorize` with the agent authorizer: the blocking pool,
/// the ureq call, the dev agent's intention match), called the way `admit` calls it, on the library runtime.
fn authorize_samples(w: &World, calls: usize, budget: Duration, direct: bool) -> Vec<f64> {
    use consulnative::net::authorize::{authorize, AgentAuthorizer, Authorizer};
    let agent = agent_client(&w.agent.address());
    let web = static_certs(&agent, "web");
    let peer = peer_identity(&web.leaf.chain).unwrap();
    let authorizer: Arc<dyn Authorizer> = Arc::new(AgentAuthorizer { agent });
    let deadline = Instant::now() + budget;
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        if Instant::now() > deadline {
            break;
        }
        let t = Instant::now();
        let r = if direct {
            // The same agent call on this thread: no blocking-pool hop, no runtime.
            authorizer.authorize("db", &peer, Duration::from_secs(5))
        } else {
            consulnative::runtime::block_on(authorize(authorizer.clone(), "db".into(), peer.clone(), Duration::from_secs(5)))
        };
        let us = t.elapsed().as_secs_f64() * 1e6;
        r.expect("authorize allowed");
        out.push(us);
    }
    out
}

/// Through the C ABI: the time from `dial` returning (the client's handshake is done) to `accept` returning the
/// same connection (the listener finished the handshake, verified the client, authorized it and queued it).
fn accept_lag_library(w: &World, samples: usize, budget: Duration) -> Vec<f64> {
    let listener = Arc::new(w.db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let deadline = Instant::now() + budget;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        if Instant::now() > deadline {
            break;
        }
        let l = listener.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let acceptor = std::thread::spawn(move || {
            let c = l.accept(5000);
            (Instant::now(), c.is_ok(), rx.recv().ok())
        });
        let conn = w.web.dial_address(&addr, &w.db_uri, 5000).expect("dial");
        let _ = tx.send(Instant::now());
        let (accepted, ok, dialed) = acceptor.join().unwrap();
        drop(conn);
        if ok {
            out.push((accepted.saturating_duration_since(dialed.unwrap())).as_secs_f64() * 1e6);
        }
    }
    out
}

/// The same lag for bare tokio-rustls (connect returned → accept returned), no authorize call.
fn accept_lag_bare(bare: &Bare, samples: usize, budget: Duration) -> Vec<f64> {
    let acceptor = tokio_rustls::TlsAcceptor::from(bare.server.clone());
    let connector = tokio_rustls::TlsConnector::from(bare.client.clone());
    bare.rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let deadline = Instant::now() + budget;
        let mut out = Vec::new();
        for _ in 0..samples {
            if Instant::now() > deadline {
                break;
            }
            let acc = acceptor.clone();
            let ((accepted, _a), (dialed, _d)) = tokio::join!(
                async {
                    let (s, _) = tcp.accept().await.unwrap();
                    let _ = s.set_nodelay(true);
                    let t = acc.accept(s).await.unwrap();
                    (Instant::now(), t)
                },
                async {
                    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let _ = s.set_nodelay(true);
                    let t = connector.connect(consulnative::tls::dial_server_name(), s).await.unwrap();
                    (Instant::now(), t)
                }
            );
            out.push(accepted.saturating_duration_since(dialed).as_secs_f64() * 1e6);
        }
        out
    })
}

fn bench_authorize(w: &World, bare: &Bare, plan: &Plan, report: &mut Report) {
    eprintln!("[3] authorize latency: {} calls", plan.authorize_calls);
    let _ = authorize_samples(w, 200, Duration::from_secs(5), false);
    // Interleaved blocks: the listener's step, and the bare agent call it makes (to split the cost).
    let (mut s, mut d) = (vec![], vec![]);
    let block = (plan.authorize_calls / 10).max(1);
    let (mut cpu, mut calls) = (0.0, 0usize);
    for _ in 0..10 {
        let (c0, _) = cpu_and_switches();
        let part = authorize_samples(w, block, Duration::from_secs(6), false);
        cpu += cpu_and_switches().0 - c0;
        calls += part.len();
        s.extend(part);
        d.extend(authorize_samples(w, block, Duration::from_secs(6), true));
    }
    report.notes.push(format!(
        "Authorize: {:.0} µs of CPU per call of the listener's authorize step, both sides (library and dev agent, \
         whole process, getrusage), calls made back to back.",
        cpu * 1e6 / calls.max(1) as f64
    ));
    let measure = format!("3. authorize latency seen by the listener ({} calls)", s.len());
    for (variant, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        let v = percentile(&s, p);
        let mut row = report.row("3", &measure, &format!("authorize step {variant}"), "µs", &[v]);
        row.spread = String::new();
        report.push(row);
    }
    for (variant, p) in [("p50", 50.0), ("p99", 99.0)] {
        let v = percentile(&d, p);
        let mut row = report.row("3", &measure, &format!("of which the agent HTTP call alone {variant}"), "µs", &[v]);
        row.spread = String::new();
        report.push(row);
    }
    let lib = accept_lag_library(w, plan.accept_lag_samples, Duration::from_secs(40));
    let base = accept_lag_bare(bare, plan.accept_lag_samples, Duration::from_secs(20));
    let measure = format!("3b. dial returned → accept returned ({} / {} samples)", lib.len(), base.len());
    for (variant, p) in [("p50", 50.0), ("p99", 99.0)] {
        let (l, b) = (percentile(&lib, p), percentile(&base, p));
        let mut row = report.row("3", &measure, &format!("library {variant}"), "µs", &[l]);
        row.spread = String::new();
        row.ratio = format!("+{} µs vs bare", fmt_num(l - b));
        report.push(row);
        let mut row = report.row("3", &measure, &format!("bare tokio-rustls {variant}"), "µs", &[b]);
        row.spread = String::new();
        report.push(row);
    }
}

// ------------------------------------------------------------------------------------------------------------
// 4. Rotation latency

/// A fresh agent; per rotation: note the serial the listener presents, rotate the CA (the agent reissues every
/// leaf before the call returns), then dial in a loop until a handshake presents a different serial. Latency:
/// rotation call returned → that handshake completed.
fn bench_rotation(plan: &Plan, report: &mut Report) {
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
    row.met = if p50 < 100.0 { "yes".into() } else { "**no**".into() };
    report.push(row);
    let mut row = report.row("4", &measure, "max", "ms", &[min_max(&samples).1]);
    row.spread = String::new();
    report.push(row);
    report.notes.push(format!(
        "Rotation: CA rotations on a fresh dev agent (new root, cross-signed intermediate, every leaf reissued inside \
         the call); dials that failed while roots and leaves changed: {failed_dials}; rotations not seen within 5 s: {timeouts}."
    ));
}

// ------------------------------------------------------------------------------------------------------------
// 5. Memory per idle connection, 6. scale (child processes)

fn child_result(args: &[String]) -> serde_json::Value {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .arg("__child")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| panic!("child {args:?} gave no result: {text}"));
    serde_json::from_str(line).unwrap()
}

/// Child: opens `n` connection pairs of one kind inside this process, keeps them idle, and reports the growth of
/// resident memory per connection end (both ends are in this process).
fn child_memory(kind: &str, agent_addr: &str, n: usize) -> serde_json::Value {
    let limit = raise_nofile();
    let client = Client::new(agent_addr, QUIET);
    let db = client.service("db").ready(30_000);
    let web = client.service("web").ready(30_000);
    let db_uri = db.status()["spiffe_id"].as_str().unwrap().to_string();
    let settle = || std::thread::sleep(Duration::from_millis(300));
    let (rss0, rss1, threads1);
    if kind == "library" {
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
        let bare = Bare::new(agent_addr, &db_uri);
        let tls = kind == "bare-rustls";
        let acceptor = tokio_rustls::TlsAcceptor::from(bare.server.clone());
        let connector = tokio_rustls::TlsConnector::from(bare.client.clone());
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
                        dialed.push(Box::new(connector.connect(consulnative::tls::dial_server_name(), s).await.unwrap()));
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

fn bench_memory(w: &World, plan: &Plan, report: &mut Report) {
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
            let m = median(&per[0]);
            row.goal = "≤ 64 KiB".into();
            row.met = if m <= 64.0 { "yes".into() } else { "**no**".into() };
            row.ratio = ratio_cell(&per[0], &per[1], None).0;
        }
        report.push(row);
    }
    report.notes.push(format!(
        "Memory: each child process opens {n} connections to itself (so 2×{n} connection ends), after a warm-up of 50; \
         the figure is the growth of VmRSS divided by 2×{n}. Threads in the process at the end: library {}, bare {}, TCP {}.",
        threads_seen[0], threads_seen[1], threads_seen[2]
    ));
}

fn bench_scale(w: &World, plan: &Plan, report: &mut Report) {
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
    let row = report.row("6", &measure, "time until all ready", "ms", &ready);
    report.push(row);
    let row = report.row("6", &measure, "threads in the process", "threads", &thr);
    report.push(row);
    let row = report.row("6", &measure, "resident memory (whole process)", "MiB", &rss);
    report.push(row);
    let row = report.row("6", &measure, "resident memory growth", "MiB", &growth);
    report.push(row);
    if bad > 0 {
        report.notes.push(format!("Scale: {bad} service handle(s) were not ready within 60 s."));
    }
}

/// Child for profiling under `valgrind --tool=callgrind` (no timing): `n` sequential connection setups, or `n` MiB
/// of bulk transfer, of one kind. `benches/profile.sh` runs it; compare two kinds' instruction counts per unit.
fn child_profile(kind: &str, n: usize) -> serde_json::Value {
    let w = World::start();
    let bare = Bare::new(&w.agent.address(), &w.db_uri);
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
            let acceptor = tokio_rustls::TlsAcceptor::from(bare.server.clone());
            let connector = tokio_rustls::TlsConnector::from(bare.client.clone());
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
                    let mut t = connector.connect(consulnative::tls::dial_server_name(), s).await.unwrap();
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

// ------------------------------------------------------------------------------------------------------------
// The report

fn utc_date() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
}

const BASELINES: &str = "\
- **library**: the C ABI (`consulnative_service_dial_address` expecting the listener's full SPIFFE URI, \
`consulnative_listener_accept`, `consulnative_conn_read`/`_write`/`_handoff`), called from plain threads as a C program \
would, against the in-process dev agent. Inbound connections are verified and authorized (`POST \
/v1/agent/connect/authorize`, an explicit allow intention `web => db`) before `accept` returns them.
- **bare tokio-rustls**: `tokio_rustls::{TlsAcceptor, TlsConnector}` on one multi-thread runtime with as many workers \
as the library's, using the same dev-agent leaf and roots (fetched once) and the crate's own \
`tls::server_config`/`tls::client_config`, so the client-chain check, the server-chain check and the SPIFFE identity \
check are the library's; no authorize call, no certificate watches, no C ABI, one task per connection.
- **plain TCP**: the same shape as bare tokio-rustls without TLS.
- Connection setup: `rate_clients` dialers loop connect → handshake → write 1 byte → read the echo → close, for a fixed \
time per run; the server side accepts, reads the byte and echoes it. Runs alternate library, bare, TCP.
- Throughput: one connection, the dialer writes in 16 KiB writes, the accepting side reads with a 64 KiB buffer; the \
time runs from the first write to the last byte read. Handoff: both connection ends are handed off and the bytes go \
through the two descriptors (socketpair ↔ runtime pump ↔ TLS).
- Authorize: the listener's own step (`net::authorize::authorize` with the agent authorizer, on the library runtime: \
blocking pool, ureq keep-alive call, dev agent), called back to back; the C ABI does not expose it alone. Row 3b shows \
the same cost from outside through the C ABI, next to bare rustls.
- Rotation: `consulnative_dev_agent_rotate_ca` (the agent signs a new root and reissues every leaf before it returns); \
then dials until the listener presents another serial. The watches use a 5-minute blocking wait, as in production.
- Memory: connections opened by this process to itself and kept idle; growth of VmRSS over the open connections.
- Scale: one client, N `consulnative_service_new` + `wait_ready` (default watch timing except a 5-minute blocking wait).";

fn write_report(path: &std::path::Path, plan: &Plan, report: &Report, wall: Duration) {
    let mut md = String::new();
    md.push_str("# Benchmarks\n\n");
    md.push_str("<!-- Generated by `bash scripts/bench.sh` (benches/bench.rs). Edit benches/benchmarks-notes.md, not this file. -->\n\n");
    md.push_str(&format!(
        "Run on {} with **{} CPUs** ({}), {} mode, {} build; wall time {:.0} s. Each figure is the median of the \
         runs, the spread is min–max over them; ratios are medians of per-run ratios of runs interleaved in the same \
         invocation (A, B, A, B…), with their min–max. Other work on the machine makes absolute numbers noisy; the \
         ratios are the figures to compare.\n\n",
        utc_date(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        cpu_model(),
        if plan.smoke { "**smoke**" } else { "full" },
        if cfg!(debug_assertions) { "**debug** (figures meaningless)" } else { "release" },
        wall.as_secs_f64()
    ));
    md.push_str("| # | measure | variant | median | spread | vs bare rustls | goal | met |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    let mut last = String::new();
    for r in &report.rows {
        let measure = if r.measure == last { String::new() } else { r.measure.clone() };
        last = r.measure.clone();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            if measure.is_empty() { "" } else { &r.id },
            measure,
            r.variant,
            r.median,
            r.spread,
            r.ratio,
            r.goal,
            r.met
        ));
    }
    md.push_str("\n## What each variant does\n\n");
    md.push_str(BASELINES);
    md.push_str("\n\n## Run notes\n\n");
    for n in &report.notes {
        md.push_str(&format!("- {n}\n"));
    }
    md.push_str(
        "\n## 7–8. Python and Ruby bindings\n\n\
         <!-- BEGIN bindings: scripts/bench.sh replaces this block with the output of benches/bench-python.sh and \
         benches/bench-ruby.sh when they exist. -->\n\
         Not measured yet: the Python (7) and Ruby (8) figures come from `benches/bench-python.sh` and \
         `benches/bench-ruby.sh`, which `scripts/bench.sh` runs when they exist; each prints markdown rows for this \
         section.\n\
         <!-- END bindings -->\n",
    );
    let notes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/benchmarks-notes.md");
    if let Ok(text) = std::fs::read_to_string(notes) {
        md.push('\n');
        md.push_str(&text);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, md).unwrap();
}

// ------------------------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__child") {
        let r = match args.get(1).map(String::as_str) {
            Some("memory") => child_memory(&args[2], &args[3], args[4].parse().unwrap()),
            Some("scale") => child_scale(&args[2], args[3].parse().unwrap()),
            Some("profile") => child_profile(&args[2], args[3].parse().unwrap()),
            other => panic!("unknown child {other:?}"),
        };
        println!("RESULT {r}");
        return;
    }
    // `cargo bench` passes --bench; `cargo test` runs this target with no --bench: then it is a smoke run, unless
    // a test-name filter that does not mention this target was given.
    let under_bench = args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !under_bench && !filters.is_empty() && !filters.iter().any(|f| "bench".contains(f.as_str())) {
        return;
    }
    let smoke = !under_bench || args.iter().any(|a| a == "--smoke");
    let mut plan = if smoke { Plan::smoke() } else { Plan::full() };
    if let Some(n) = args.iter().position(|a| a == "--clients").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()) {
        plan.rate_clients = n;
    }
    if let Some(n) = args.iter().position(|a| a == "--rounds").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()) {
        plan.rounds = n;
    }
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            if smoke { root.join("target/bench-smoke.md") } else { root.join("docs/benchmarks.md") }
        });
    let only: Option<Vec<String>> = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).map(|s| s.split(',').map(String::from).collect());
    let wants = |id: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == id));

    raise_nofile();
    let started = Instant::now();
    let w = World::start();
    let bare = Bare::new(&w.agent.address(), &w.db_uri);
    let mut report = Report::default();
    if wants("1") {
        bench_rate(&w, &bare, &plan, &mut report);
    }
    if wants("2") {
        bench_bulk(&w, &bare, &plan, &mut report);
    }
    if wants("3") {
        bench_authorize(&w, &bare, &plan, &mut report);
    }
    if wants("4") {
        bench_rotation(&plan, &mut report);
    }
    if wants("5") {
        bench_memory(&w, &plan, &mut report);
    }
    if wants("6") {
        bench_scale(&w, &plan, &mut report);
    }
    write_report(&out, &plan, &report, started.elapsed());
    eprintln!("wrote {} in {:.1} s", out.display(), started.elapsed().as_secs_f64());
    // Smoke check: every figure was produced (finite and positive). Never a threshold.
    let missing: Vec<&String> = report.figures.iter().filter(|(_, v)| !(v.is_finite() && *v >= 0.0)).map(|(n, _)| n).collect();
    if !missing.is_empty() {
        eprintln!("figures not produced: {missing:?}");
        std::process::exit(1);
    }
}
