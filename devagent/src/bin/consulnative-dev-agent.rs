//! `consulnative-dev-agent`: the embedded Consul-compatible dev agent as a standalone process, for demos and for
//! tests in other languages. Prints one line `consulnative-dev-agent listening on http://ADDR` and runs until
//! killed (SIGTERM/SIGINT) or until stdin reaches EOF when `--exit-on-stdin-eof` is given.

use consulnative_devagent::{parse_go_duration, DevAgent, DevAgentConfig};
use std::io::Write;
use std::net::SocketAddr;

const USAGE: &str = "Usage: consulnative-dev-agent [options]

Options:
  --http-addr ADDR          listen address (default 127.0.0.1:8500; port 0 picks a free port)
  --addr-file PATH          also write the bound ADDR to PATH
  --acl-token TOKEN         require this ACL token (or env CONSUL_DEV_AGENT_TOKEN)
  --default-policy P        allow|deny: authorize answer when no intention matches (default allow)
  --leaf-ttl DURATION       leaf certificate TTL, Go syntax (default 72h; e.g. 30s for tests)
  --datacenter DC           datacenter name (default dc1)
  --node-name NAME          node name (default: host name)
  --exit-on-stdin-eof       exit when stdin is closed (lets a parent process own our lifetime)
  --help                    show this help
";

fn fail(msg: &str) -> ! {
    eprintln!("consulnative-dev-agent: {msg}");
    eprintln!("{USAGE}");
    std::process::exit(2);
}

fn main() {
    let mut cfg = DevAgentConfig { http_addr: SocketAddr::from(([127, 0, 0, 1], 8500)), ..Default::default() };
    if let Ok(t) = std::env::var("CONSUL_DEV_AGENT_TOKEN") {
        if !t.is_empty() {
            cfg.acl_token = Some(t);
        }
    }
    let mut addr_file: Option<String> = None;
    let mut exit_on_eof = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> String {
            inline.clone().or_else(|| args.next()).unwrap_or_else(|| fail(&format!("{name} needs a value")))
        };
        match flag.as_str() {
            "--help" | "-h" | "-help" => {
                print!("{USAGE}");
                return;
            }
            "--http-addr" | "-http-addr" => {
                let v = value("--http-addr");
                cfg.http_addr = v.parse().unwrap_or_else(|_| fail(&format!("invalid --http-addr {v:?}")));
            }
            "--addr-file" => addr_file = Some(value("--addr-file")),
            "--acl-token" => cfg.acl_token = Some(value("--acl-token")).filter(|t| !t.is_empty()),
            "--default-policy" => {
                cfg.default_allow = match value("--default-policy").as_str() {
                    "allow" => true,
                    "deny" => false,
                    other => fail(&format!("invalid --default-policy {other:?} (allow|deny)")),
                }
            }
            "--leaf-ttl" => {
                let v = value("--leaf-ttl");
                cfg.leaf_ttl = parse_go_duration(&v)
                    .filter(|d| d.as_secs() >= 1)
                    .unwrap_or_else(|| fail(&format!("invalid --leaf-ttl {v:?} (Go duration, at least 1s)")));
            }
            "--datacenter" => cfg.datacenter = value("--datacenter"),
            "--node-name" => cfg.node_name = value("--node-name"),
            "--exit-on-stdin-eof" => exit_on_eof = true,
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    let agent = match DevAgent::start(cfg) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("consulnative-dev-agent: {e}");
            std::process::exit(1);
        }
    };
    let addr = agent.addr();
    if let Some(path) = addr_file {
        if let Err(e) = std::fs::write(&path, addr.to_string()) {
            eprintln!("consulnative-dev-agent: cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "consulnative-dev-agent listening on http://{addr}");
    let _ = out.flush();
    if exit_on_eof {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        agent.stop();
        return;
    }
    // Runs until killed: SIGTERM/SIGINT end the process with their default action.
    loop {
        std::thread::park();
    }
}
