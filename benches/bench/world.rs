//! What every section shares: the dev agent and the library's services through the C ABI ([`World`]), the
//! bare-rustls baseline ([`Bare`]), and meters of this process and of the agent's.

use std::sync::Arc;
use std::time::Duration;

use consulnative_core::api;

use crate::common::{Agent, Client, Service, FAST};

/// Long blocking waits (like a real deployment), so idle watches cost nothing during the measurements.
pub const QUIET: &[(&str, &str)] = &[("blocking_wait_ms", "300000")];

/// A dev agent with the intention `web => db`, and the two services through the C ABI.
pub struct World {
    pub agent: Agent,
    /// The agent's process, whose CPU time the cost figures add ("both ends + agent").
    pub agent_pid: Option<i32>,
    /// Kept alive for the services (their roots watch).
    _client: Client,
    pub db: Service,
    pub web: Service,
    pub db_uri: String,
}

impl World {
    pub fn start() -> World {
        let agent = Agent::start();
        let agent_pid = agent.0.pid().map(|p| p as i32);
        agent.intention("web", "db", true);
        let client = Client::new(&agent.address(), QUIET);
        let db = client.service("db").ready(30_000);
        let web = client.service("web").ready(30_000);
        let db_uri = db.status()["spiffe_id"].as_str().unwrap().to_string();
        World { agent, agent_pid, _client: client, db, web, db_uri }
    }
}

/// The bare-rustls side: tokio-rustls with the TLS configs of `consulnative_core::api::Service`s `db` and `web`
/// (the library's own certificates and verifiers: chain and SPIFFE checks, no authorize), on its own runtime.
pub struct Bare {
    pub rt: tokio::runtime::Runtime,
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    /// Kept alive for the configs (they read the current certificates at each handshake).
    _services: (api::Service, api::Service),
    _client: api::Client,
}

impl Bare {
    pub fn new(agent_addr: &str) -> Bare {
        let mut options = api::ClientOptions::default();
        options.set("address", Some(agent_addr)).expect("address");
        for (k, v) in FAST.iter().chain(QUIET) {
            options.set(k, Some(v)).expect("client option");
        }
        let client = api::Client::new(options).expect("client");
        let ready = |name: &str| {
            let s = client.service(name).expect("service");
            s.wait_ready(Some(Duration::from_secs(30))).expect("service ready");
            s
        };
        let (db, web) = (ready("db"), ready("web"));
        let db_uri = db.status().spiffe_id.expect("db's SPIFFE ID");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8))
            .enable_all()
            .build()
            .unwrap();
        Bare {
            rt,
            server: db.tls_server_config(vec![]).unwrap(),
            client: web.tls_client_config(&db_uri, vec![]).unwrap(),
            _services: (db, web),
            _client: client,
        }
    }
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.client.clone())
    }
}

/// The server name to connect with (Connect certificates carry no DNS name).
pub fn server_name() -> rustls::pki_types::ServerName<'static> {
    api::Service::tls_server_name()
}

// ------------------------------------------------------------------------------------------------------------
// Meters

pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

pub fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// Raises the descriptor limit to the hard limit (5,000 connections need 10,000 descriptors in one process).
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid, initialised rlimit struct owned by this frame.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// CPU seconds and context switches (voluntary + involuntary) used so far by this process (getrusage: every
/// thread, both connection ends) and by the dev agent's process (`/proc/PID/task/*`: its threads).
#[derive(Clone, Copy, Default, Debug)]
pub struct Usage {
    pub app_cpu: f64,
    pub app_switches: f64,
    pub agent_cpu: f64,
    pub agent_switches: f64,
}

impl Usage {
    pub fn now(agent_pid: Option<i32>) -> Usage {
        // SAFETY: rusage is plain old data; all zeroes is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a rusage this frame owns.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let (agent_cpu, agent_switches) = agent_pid.map(process_usage).unwrap_or_default();
        Usage {
            app_cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            app_switches: (ru.ru_nvcsw + ru.ru_nivcsw) as f64,
            agent_cpu,
            agent_switches,
        }
    }
    /// What was used since `earlier`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            app_cpu: self.app_cpu - earlier.app_cpu,
            app_switches: self.app_switches - earlier.app_switches,
            agent_cpu: self.agent_cpu - earlier.agent_cpu,
            agent_switches: self.agent_switches - earlier.agent_switches,
        }
    }
    /// CPU seconds of both processes.
    pub fn cpu(&self) -> f64 {
        self.app_cpu + self.agent_cpu
    }
}

/// CPU seconds (scheduler run time) and context switches of every thread of process `pid`.
fn process_usage(pid: i32) -> (f64, f64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return (0.0, 0.0) };
    let (mut ns, mut switches) = (0u64, 0u64);
    for task in tasks.flatten() {
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += schedstat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        for line in std::fs::read_to_string(task.path().join("status")).unwrap_or_default().lines() {
            let count =
                line.strip_prefix("voluntary_ctxt_switches:").or(line.strip_prefix("nonvoluntary_ctxt_switches:"));
            switches += count.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        }
    }
    (ns as f64 / 1e9, switches as f64)
}

/// Cost per operation: CPU µs and context switches, of this process and of the agent's.
#[derive(Clone, Copy, Default, Debug)]
pub struct Cost {
    pub app_us: f64,
    pub app_switches: f64,
    pub agent_us: f64,
    pub agent_switches: f64,
}

impl Cost {
    /// Both processes' CPU µs per operation ("both ends + agent").
    pub fn us(&self) -> f64 {
        self.app_us + self.agent_us
    }
    pub fn switches(&self) -> f64 {
        self.app_switches + self.agent_switches
    }
}

/// Runs `f` (which returns a rate and a count of completed operations) and adds the CPU µs and context switches
/// per operation of this process and of the agent's.
pub fn with_cost<T>(agent_pid: Option<i32>, f: impl FnOnce() -> (f64, u64, T)) -> (f64, u64, T, Cost) {
    let before = Usage::now(agent_pid);
    let (rate, ops, extra) = f();
    let used = Usage::now(agent_pid).since(before);
    let ops_f = (ops as f64).max(1.0);
    let cost = Cost {
        app_us: used.app_cpu * 1e6 / ops_f,
        app_switches: used.app_switches / ops_f,
        agent_us: used.agent_cpu * 1e6 / ops_f,
        agent_switches: used.agent_switches / ops_f,
    };
    (rate, ops, extra, cost)
}
