//! The benchmark runner: connection setup rate, bulk throughput, authorize latency, rotation latency, memory per
//! idle connection and 1,000 service handles, against the dev agent (the `consulnative-dev-agent` binary, run as
//! a child process), written as a markdown report.
//!
//! `bash scripts/bench.sh` runs it in full (release, `cargo bench`) and writes `docs/benchmarks.md`;
//! `bash scripts/bench.sh --smoke` runs seconds-long versions into `target/bench-smoke.md`. `cargo test` runs this
//! target too (`test = true`, no harness): then it is a smoke run that checks every figure is produced, never
//! that it beats a goal.
//!
//! Only public surfaces are used. The library figures drive the C ABI (`consulnative::*`, through
//! `tests/common`), exactly as C, Python and Ruby do. The bare-rustls baseline uses tokio-rustls directly with the
//! configs of `consulnative_core::api::Service` (`tls_server_config`/`tls_client_config`: the library's own
//! certificates and verifiers), so chain and SPIFFE checks are equal; it makes no authorize call. The agent's
//! authorize round trip is a plain HTTP call. Every ratio compares runs interleaved in one invocation. Memory and
//! scale run in child processes (this binary re-executed) so that resident memory is theirs alone. Everything is
//! on loopback, and every loop is bounded in count and time.
//!
//! Modules: `stats` (medians, ratios, report rows), `world` (the agent, the services, the bare-rustls baseline,
//! process meters), `rate` (1), `bulk` (2), `authorize` (3, 3b), `rotation` (4), `children` (5, 6 and the
//! profile children), `report` (the markdown).

#[path = "../../tests/common/mod.rs"]
mod common;

mod authorize;
mod bulk;
mod children;
mod rate;
mod report;
mod rotation;
mod stats;
mod world;

use std::time::{Duration, Instant};

use stats::Report;
use world::{raise_nofile, Bare, World};

/// Sizes of one invocation.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub smoke: bool,
    pub rounds: usize,
    /// Length of one connection-rate run per variant.
    pub rate_run: Duration,
    /// Concurrent dialers (and accepting threads) in the connection-rate runs.
    pub rate_clients: usize,
    pub bulk_bytes: usize,
    pub authorize_calls: usize,
    pub accept_lag_samples: usize,
    pub rotations: usize,
    pub memory_conns: usize,
    pub memory_runs: usize,
    pub services: usize,
    pub scale_runs: usize,
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

/// The value after `--flag` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__child") {
        children::child_main(&args[1..]);
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
    if let Some(n) = flag(&args, "--clients").and_then(|v| v.parse().ok()) {
        plan.rate_clients = n;
    }
    if let Some(n) = flag(&args, "--rounds").and_then(|v| v.parse().ok()) {
        plan.rounds = n;
    }
    let out = flag(&args, "--out").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        if smoke {
            root.join("target/bench-smoke.md")
        } else {
            root.join("docs/benchmarks.md")
        }
    });
    let only: Option<Vec<String>> = flag(&args, "--only").map(|s| s.split(',').map(String::from).collect());
    let wants = |id: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == id));

    raise_nofile();
    let started = Instant::now();
    let w = World::start();
    let bare = Bare::new(&w.agent.address());
    let mut report = Report::default();
    if wants("1") {
        rate::bench_rate(&w, &bare, &plan, &mut report);
    }
    if wants("2") {
        bulk::bench_bulk(&w, &bare, &plan, &mut report);
    }
    if wants("3") {
        authorize::bench_authorize(&w, &bare, &plan, &mut report);
    }
    if wants("4") {
        rotation::bench_rotation(&plan, &mut report);
    }
    if wants("5") {
        children::bench_memory(&w, &plan, &mut report);
    }
    if wants("6") {
        children::bench_scale(&w, &plan, &mut report);
    }
    report::write_report(&out, &plan, &report, started.elapsed());
    eprintln!("wrote {} in {:.1} s", out.display(), started.elapsed().as_secs_f64());
    // Smoke check: every figure was produced (finite and positive). Never a threshold.
    let missing: Vec<&String> =
        report.figures.iter().filter(|(_, v)| !(v.is_finite() && *v >= 0.0)).map(|(n, _)| n).collect();
    if !missing.is_empty() {
        eprintln!("figures not produced: {missing:?}");
        std::process::exit(1);
    }
}
