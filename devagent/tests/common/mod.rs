//! What both test suites share: the dev agent binary started as a child process, and a plain HTTP client that
//! returns every answer (status, headers, body) instead of turning errors into `Err`.
#![allow(dead_code)]

use consulnative_devagent::process::{DevAgentOptions, DevAgentProcess};
use std::time::Duration;

/// Options that start this crate's own build of the binary.
pub fn options() -> DevAgentOptions {
    DevAgentOptions { binary: Some(env!("CARGO_BIN_EXE_consulnative-dev-agent").into()), ..Default::default() }
}

/// Starts the binary with `options` (its `binary` is set here) and a client for it.
pub fn start(options: DevAgentOptions) -> (DevAgentProcess, Client) {
    let agent = DevAgentProcess::start(DevAgentOptions { binary: self::options().binary, ..options })
        .expect("start the dev agent binary");
    let client = Client::new(agent.address());
    (agent, client)
}

/// Starts the binary with its defaults.
pub fn default_agent() -> (DevAgentProcess, Client) {
    start(DevAgentOptions::default())
}

/// One HTTP answer.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn index(&self) -> u64 {
        self.header("X-Consul-Index").expect("X-Consul-Index").parse().expect("numeric index")
    }
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("bad JSON {e}: {}", self.body))
    }
    pub fn value(&self) -> serde_json::Value {
        self.json()
    }
}

/// A plain HTTP client for one agent.
#[derive(Clone)]
pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
}

impl Client {
    pub fn new(addr: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Client { agent, base: format!("http://{addr}") }
    }
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
        let url = format!("{}{}", self.base, path);
        let mut request = http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(body.unwrap_or_default().to_string()).expect("request");
        let mut res = self.agent.run(request).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status().as_u16();
        let headers =
            res.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
        let body = res.body_mut().read_to_string().unwrap_or_default();
        Resp { status, headers, body }
    }
    pub fn get(&self, path: &str) -> Resp {
        self.call("GET", path, &[], None)
    }
    pub fn put(&self, path: &str, body: &str) -> Resp {
        self.call("PUT", path, &[], Some(body))
    }
    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.call("POST", path, &[], Some(body))
    }
}
