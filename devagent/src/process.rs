//! Starts the `consulnative-dev-agent` binary as a child process and drives its test controls over HTTP, the way
//! Consul's own test helpers start `consul agent -dev`. For Rust test suites (ours, and our users' own).
//!
//! The child gets `--exit-on-stdin-eof` with a pipe as its stdin, so it ends with the process that started it
//! even when that process is killed; [`DevAgentProcess::stop`] (or drop) ends it at once.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use consulnative_core::api::wire::LeafCert;

use crate::error::{Error, Result};
use crate::{Fault, FaultEndpoint, FaultKind};

/// The binary's file name.
pub const BINARY: &str = "consulnative-dev-agent";

/// How to start a [`DevAgentProcess`].
#[derive(Clone, Default)]
pub struct DevAgentOptions {
    /// The binary; `None` looks it up with [`find_binary`].
    pub binary: Option<PathBuf>,
    /// `ip:port`; `None` is `127.0.0.1:0` (a free port).
    pub http_addr: Option<String>,
    /// When set, ACL-protected endpoints require this token (passed through the environment, never argv).
    pub acl_token: Option<String>,
    /// Deny connections no intention matches (`--default-policy deny`).
    pub default_deny: bool,
    /// Leaf certificate lifetime (`None`: the agent's 72 h; at least one second).
    pub leaf_ttl: Option<Duration>,
    /// Datacenter name (`None`: `dc1`).
    pub datacenter: Option<String>,
    /// Node name (`None`: the host name).
    pub node_name: Option<String>,
}

impl std::fmt::Debug for DevAgentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAgentOptions")
            .field("binary", &self.binary)
            .field("http_addr", &self.http_addr)
            .field("acl_token", &self.acl_token.as_ref().map(|_| "<redacted>"))
            .field("default_deny", &self.default_deny)
            .field("leaf_ttl", &self.leaf_ttl)
            .field("datacenter", &self.datacenter)
            .field("node_name", &self.node_name)
            .finish()
    }
}

/// Finds the binary: `$CONSULNATIVE_DEV_AGENT`, then next to the running executable and one directory up (a
/// cargo target directory holds test binaries in `deps/`), then `$PATH`. The error lists what was tried.
pub fn find_binary() -> Result<PathBuf> {
    let mut tried = Vec::new();
    if let Some(path) = std::env::var_os("CONSULNATIVE_DEV_AGENT").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        tried.push(format!("$CONSULNATIVE_DEV_AGENT={}", path.display()));
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join(BINARY);
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate.display().to_string());
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join(BINARY);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    tried.push("$PATH".to_string());
    Err(Error::Io(format!(
        "cannot find the {BINARY} binary (tried {}): build it with `cargo build -p consulnative-devagent` or set \
         CONSULNATIVE_DEV_AGENT to its path",
        tried.join(", ")
    )))
}

/// A running dev agent child process. Stopped on [`DevAgentProcess::stop`] or drop.
pub struct DevAgentProcess {
    addr: String,
    token: Option<String>,
    child: Mutex<Option<(Child, ChildStdin)>>,
    http: ureq::Agent,
}

impl DevAgentProcess {
    /// Starts the binary and waits (at most 10 s) for its ready line.
    pub fn start(options: DevAgentOptions) -> Result<DevAgentProcess> {
        let binary = match &options.binary {
            Some(b) => b.clone(),
            None => find_binary()?,
        };
        let mut cmd = Command::new(&binary);
        cmd.arg("--http-addr").arg(options.http_addr.as_deref().unwrap_or("127.0.0.1:0")).arg("--exit-on-stdin-eof");
        if options.default_deny {
            cmd.args(["--default-policy", "deny"]);
        }
        if let Some(ttl) = options.leaf_ttl {
            cmd.arg("--leaf-ttl").arg(format!("{}ms", ttl.as_millis().max(1000)));
        }
        if let Some(dc) = &options.datacenter {
            cmd.arg("--datacenter").arg(dc);
        }
        if let Some(node) = &options.node_name {
            cmd.arg("--node-name").arg(node);
        }
        cmd.env_remove("CONSUL_DEV_AGENT_TOKEN");
        if let Some(token) = &options.acl_token {
            cmd.env("CONSUL_DEV_AGENT_TOKEN", token);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Error::io(&format!("start {}", binary.display()), &e))?;
        let stdin = child.stdin.take().ok_or_else(|| Error::internal("dev agent: no stdin pipe"))?;
        let stdout = child.stdout.take().ok_or_else(|| Error::internal("dev agent: no stdout pipe"))?;
        let stderr = child.stderr.take();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let Some(addr) = line.trim().rsplit_once("http://").map(|(_, a)| a.to_string()) else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.wait();
            return Err(Error::Io(format!("{} did not start: {}", binary.display(), err.trim())));
        };
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Ok(DevAgentProcess { addr, token: options.acl_token, child: Mutex::new(Some((child, stdin))), http })
    }

    /// The agent's HTTP address as `ip:port` (for `CONSUL_HTTP_ADDR` or a client's `address`).
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// The child's process ID while it runs (for tests that measure its CPU time); `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(child, _)| child.id())
    }

    /// The CA's trust domain (`<uuid>.consul`), from the roots endpoint.
    pub fn trust_domain(&self) -> Result<String> {
        let body = self.call("GET", "/v1/agent/connect/ca/roots", None)?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| Error::internal(e.to_string()))?;
        v["TrustDomain"].as_str().map(str::to_string).ok_or_else(|| Error::internal("roots without TrustDomain"))
    }

    /// Creates or replaces the intention `source => destination` (`*` allowed) through Consul's API.
    pub fn set_intention(&self, source: &str, destination: &str, allow: bool) -> Result<()> {
        let action = if allow { "allow" } else { "deny" };
        let path = format!("/v1/connect/intentions/exact?source={}&destination={}", enc(source), enc(destination));
        self.call("PUT", &path, Some(format!("{{\"Action\":\"{action}\"}}"))).map(|_| ())
    }

    /// Deletes the intention `source => destination` (no-op if absent).
    pub fn delete_intention(&self, source: &str, destination: &str) -> Result<()> {
        let path = format!("/v1/connect/intentions/exact?source={}&destination={}", enc(source), enc(destination));
        self.call("DELETE", &path, None).map(|_| ())
    }

    /// Rotates the CA (test control `PUT /_devagent/rotate-ca`).
    pub fn rotate_ca(&self) -> Result<()> {
        self.call("PUT", "/_devagent/rotate-ca", None).map(|_| ())
    }

    /// Injects a fault until [`DevAgentProcess::clear_faults`] (test control `PUT /_devagent/fault`).
    pub fn set_fault(&self, fault: &Fault) -> Result<()> {
        let endpoint = match fault.endpoint {
            FaultEndpoint::All => "all",
            FaultEndpoint::Roots => "roots",
            FaultEndpoint::Leaf => "leaf",
            FaultEndpoint::Authorize => "authorize",
        };
        let query = match &fault.kind {
            FaultKind::Status(status, body) => format!("status={status}&body={}", enc(body)),
            FaultKind::MalformedJson => "malformed=1".to_string(),
            FaultKind::Delay(d) => format!("delay={}ms", d.as_millis()),
            FaultKind::BackwardsIndex => "reset_index=1".to_string(),
            FaultKind::LeafFor(service) => format!("leaf_for={}", enc(service)),
            FaultKind::LeafUri(uri) => format!("leaf_uri={}", enc(uri)),
            FaultKind::ForeignCa => "foreign_ca=1".to_string(),
            FaultKind::LeafWindow(not_before, not_after) => format!("leaf_window={not_before},{not_after}"),
            FaultKind::HugeBody(bytes) => format!("huge_body={bytes}"),
            FaultKind::Index(text) => format!("index={}", enc(text)),
        };
        self.call("PUT", &format!("/_devagent/fault?endpoint={endpoint}&{query}"), None).map(|_| ())
    }

    /// Clears every fault.
    pub fn clear_faults(&self) -> Result<()> {
        self.call("DELETE", "/_devagent/fault", None).map(|_| ())
    }

    /// Signs an ad-hoc leaf for `service` valid between two Unix times (may be in the past).
    pub fn issue_leaf(&self, service: &str, not_before: i64, not_after: i64) -> Result<LeafCert> {
        let path = format!("/_devagent/issue-leaf/{}?not_before={not_before}&not_after={not_after}", enc(service));
        let body = self.call("GET", &path, None)?;
        serde_json::from_str(&body).map_err(|e| Error::internal(format!("issue-leaf answer: {e}")))
    }

    /// Stops the agent and waits for it (its port closes). Idempotent.
    pub fn stop(&self) {
        let taken = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin); // --exit-on-stdin-eof: a clean exit
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One HTTP call to the agent; a non-2xx answer is an error with the agent's text.
    pub fn call(&self, method: &str, path: &str, body: Option<String>) -> Result<String> {
        let url = format!("http://{}{path}", self.addr);
        let request = http::Request::builder().method(method).uri(&url);
        let request = match &self.token {
            Some(t) => request.header("X-Consul-Token", t),
            None => request,
        };
        let request = request.body(body.unwrap_or_default()).map_err(|e| Error::invalid(e.to_string()))?;
        let mut response = self.http.run(request).map_err(|e| Error::Io(format!("{method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| Error::Io(format!("{method} {path}: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(Error::Io(format!("{method} {path}: HTTP {status}: {}", text.trim())));
        }
        Ok(text)
    }
}

impl std::fmt::Debug for DevAgentProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("DevAgentProcess").field("addr", &self.addr).field("pid", &self.pid()).finish()
    }
}

impl Drop for DevAgentProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Percent-encodes a query value or path segment.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
