//! Agent address, TLS and token configuration, from explicit values and CONSUL_* environment variables.
//!
//! The usual way to build a configuration is [`AgentConfig::from_env`] followed by overriding the fields the
//! caller sets explicitly: explicit values win over the environment because they are written last.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The default agent address when nothing is configured.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";

/// The default timeout of non-blocking calls.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest successful answer accepted from the agent, per endpoint, in bytes. A larger answer is refused with
/// `AgentBadResponse` (naming the endpoint and the limit) before it is read any further, so a broken or hostile
/// agent cannot make every watch hold megabytes. Error answers are always capped at 4 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// `GET /v1/agent/connect/ca/leaf/<service>`: a leaf, its key and a few intermediates (about 3 KiB in
    /// practice). Default 64 KiB.
    pub leaf: u64,
    /// `GET /v1/agent/connect/ca/roots`: every root the cluster still lists, each with its intermediates (about
    /// 2 KiB per root). Default 512 KiB.
    pub roots: u64,
    /// `POST /v1/agent/connect/authorize`: a boolean and a reason. Default 16 KiB.
    pub authorize: u64,
    /// `GET /v1/health/connect/<service>`: every instance with its checks (about 1 KiB each, more with long check
    /// outputs). Default 16 MiB.
    pub health: u64,
    /// Any other endpoint (registration, checks, agent self). Default 1 MiB.
    pub other: u64,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            leaf: 64 * 1024,
            roots: 512 * 1024,
            authorize: 16 * 1024,
            health: 16 * 1024 * 1024,
            other: 1024 * 1024,
        }
    }
}

/// TLS settings for reaching the agent over `https://`.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentTls {
    /// A PEM file with the CA certificate(s) that sign the agent's HTTPS certificate (`CONSUL_CACERT`).
    pub ca_file: Option<PathBuf>,
    /// A directory whose PEM files are all trusted as CA certificates (`CONSUL_CAPATH`).
    pub ca_path: Option<PathBuf>,
    /// A PEM client certificate presented to the agent (`CONSUL_CLIENT_CERT`); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of `client_cert` (`CONSUL_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// The name sent as SNI and checked against the agent's certificate instead of the address host
    /// (`CONSUL_TLS_SERVER_NAME`).
    pub server_name: Option<String>,
    /// Verify the agent's certificate (default true). `false` (`CONSUL_HTTP_SSL_VERIFY=false`) accepts **any**
    /// certificate: anyone on the path can then impersonate the agent and read the ACL token. Tests only.
    pub verify: bool,
}

impl Default for AgentTls {
    fn default() -> Self {
        AgentTls { ca_file: None, ca_path: None, client_cert: None, client_key: None, server_name: None, verify: true }
    }
}

impl fmt::Debug for AgentTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentTls")
            .field("ca_file", &self.ca_file)
            .field("ca_path", &self.ca_path)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish()
    }
}

/// How to reach the agent and what to send with every request.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// `127.0.0.1:8500` (http), `http://host:port[/prefix]`, `https://host:port[/prefix]` or
    /// `unix:///path/to.sock`. `None` means `127.0.0.1:8500` over http.
    pub address: Option<String>,
    /// The ACL token, sent as `X-Consul-Token`. Never logged or shown.
    pub token: Option<String>,
    /// A file holding the ACL token; read when the client is created. **Wins over `token`**: a caller setting
    /// `token` on top of [`AgentConfig::from_env`] should clear `token_file` if the environment may set one.
    pub token_file: Option<PathBuf>,
    /// Adds `?dc=` to every request (Consul ignores it where an endpoint has no datacenter).
    pub datacenter: Option<String>,
    /// Adds `?ns=` (Enterprise only: a Community Edition agent answers 400 to it).
    pub namespace: Option<String>,
    /// Adds `?partition=` (Enterprise only: a Community Edition agent answers 400 to it).
    pub partition: Option<String>,
    /// HTTP basic auth, `user:pass` (or `user`).
    pub http_auth: Option<String>,
    /// TLS to the agent (only used for `https://`).
    pub tls: AgentTls,
    /// Timeout of non-blocking calls (default 10 s), and of a watch's first request (sent without an index, so
    /// the agent answers at once). Later blocking queries use their own wait.
    pub request_timeout: Duration,
    /// The largest answer accepted from each endpoint.
    pub response_limits: ResponseLimits,
}

impl Default for AgentConfig {
    /// Nothing from the environment: `127.0.0.1:8500` over http, no token.
    fn default() -> Self {
        AgentConfig {
            address: None,
            token: None,
            token_file: None,
            datacenter: None,
            namespace: None,
            partition: None,
            http_auth: None,
            tls: AgentTls::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            response_limits: ResponseLimits::default(),
        }
    }
}

/// Go's `strconv.ParseBool`, which the Consul CLI uses for its boolean variables.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl AgentConfig {
    /// The defaults overridden by the `CONSUL_*` environment variables of the process.
    pub fn from_env() -> AgentConfig {
        AgentConfig::from_env_with(|name| std::env::var(name).ok())
    }

    /// The defaults overridden by `CONSUL_*` variables looked up with `get` (empty values count as unset).
    ///
    /// `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_SSL` (true: https unless the address says `unix://`), `CONSUL_CACERT`,
    /// `CONSUL_CAPATH`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`, `CONSUL_TLS_SERVER_NAME`,
    /// `CONSUL_HTTP_SSL_VERIFY`, `CONSUL_HTTP_TOKEN_FILE`, `CONSUL_HTTP_TOKEN`, `CONSUL_HTTP_AUTH`,
    /// `CONSUL_NAMESPACE`, `CONSUL_PARTITION`. Unparsable booleans are ignored, as the Go client does.
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> AgentConfig {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut cfg =
            AgentConfig { address: var("CONSUL_HTTP_ADDR").map(|a| a.trim().to_string()), ..AgentConfig::default() };
        if var("CONSUL_HTTP_SSL").and_then(|v| parse_bool(&v)) == Some(true) {
            let addr = cfg.address.take().unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
            cfg.address = Some(if let Some(rest) = addr.strip_prefix("http://") {
                // Never fall back to http when TLS was asked for (as the Go client).
                format!("https://{rest}")
            } else if addr.starts_with("https://") || addr.starts_with("unix://") {
                addr
            } else {
                format!("https://{addr}")
            });
        }

        cfg.tls.ca_file = var("CONSUL_CACERT").map(PathBuf::from);
        cfg.tls.ca_path = var("CONSUL_CAPATH").map(PathBuf::from);
        cfg.tls.client_cert = var("CONSUL_CLIENT_CERT").map(PathBuf::from);
        cfg.tls.client_key = var("CONSUL_CLIENT_KEY").map(PathBuf::from);
        cfg.tls.server_name = var("CONSUL_TLS_SERVER_NAME");
        if let Some(verify) = var("CONSUL_HTTP_SSL_VERIFY").and_then(|v| parse_bool(&v)) {
            cfg.tls.verify = verify;
        }

        cfg.token_file = var("CONSUL_HTTP_TOKEN_FILE").map(PathBuf::from);
        cfg.token = var("CONSUL_HTTP_TOKEN");
        cfg.http_auth = var("CONSUL_HTTP_AUTH");
        cfg.namespace = var("CONSUL_NAMESPACE");
        cfg.partition = var("CONSUL_PARTITION");
        cfg
    }
}

/// `user:<redacted>` for `user:pass`, `user` alone as is.
fn redact_auth(auth: &str) -> String {
    match auth.split_once(':') {
        Some((user, _)) => format!("{user}:<redacted>"),
        None => auth.to_string(),
    }
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("datacenter", &self.datacenter)
            .field("namespace", &self.namespace)
            .field("partition", &self.partition)
            .field("http_auth", &self.http_auth.as_deref().map(redact_auth))
            .field("tls", &self.tls)
            .field("request_timeout", &self.request_timeout)
            .field("response_limits", &self.response_limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> AgentConfig {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AgentConfig::from_env_with(move |k| map.get(k).cloned())
    }

    #[test]
    fn empty_environment_gives_the_defaults() {
        assert_eq!(env(&[]), AgentConfig::default());
        assert_eq!(AgentConfig::default().request_timeout, Duration::from_secs(10));
        assert!(AgentConfig::default().tls.verify);
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert_eq!(env(&[("CONSUL_HTTP_ADDR", ""), ("CONSUL_HTTP_TOKEN", " ")]), AgentConfig::default());
    }

    #[test]
    fn ssl_switches_a_bare_or_http_address_to_https() {
        assert_eq!(env(&[("CONSUL_HTTP_SSL", "true")]).address.as_deref(), Some("https://127.0.0.1:8500"));
        let c = env(&[("CONSUL_HTTP_SSL", "1"), ("CONSUL_HTTP_ADDR", "consul:8501")]);
        assert_eq!(c.address.as_deref(), Some("https://consul:8501"));
        let c = env(&[("CONSUL_HTTP_SSL", "TRUE"), ("CONSUL_HTTP_ADDR", "http://consul:8501/p")]);
        assert_eq!(c.address.as_deref(), Some("https://consul:8501/p"));
        let c = env(&[("CONSUL_HTTP_SSL", "true"), ("CONSUL_HTTP_ADDR", "unix:///tmp/c.sock")]);
        assert_eq!(c.address.as_deref(), Some("unix:///tmp/c.sock"));
        let c = env(&[("CONSUL_HTTP_SSL", "false"), ("CONSUL_HTTP_ADDR", "consul:8500")]);
        assert_eq!(c.address.as_deref(), Some("consul:8500"));
        let c = env(&[("CONSUL_HTTP_SSL", "maybe"), ("CONSUL_HTTP_ADDR", "consul:8500")]);
        assert_eq!(c.address.as_deref(), Some("consul:8500"));
    }

    #[test]
    fn every_variable_is_read() {
        let c = env(&[
            ("CONSUL_HTTP_ADDR", "https://consul.example:8501/proxy"),
            ("CONSUL_CACERT", "/etc/ca.pem"),
            ("CONSUL_CAPATH", "/etc/cas"),
            ("CONSUL_CLIENT_CERT", "/etc/c.pem"),
            ("CONSUL_CLIENT_KEY", "/etc/k.pem"),
            ("CONSUL_TLS_SERVER_NAME", "server.dc1.consul"),
            ("CONSUL_HTTP_SSL_VERIFY", "false"),
            ("CONSUL_HTTP_TOKEN_FILE", "/etc/token"),
            ("CONSUL_HTTP_TOKEN", "secret-token"),
            ("CONSUL_HTTP_AUTH", "alice:pw"),
            ("CONSUL_NAMESPACE", "team-a"),
            ("CONSUL_PARTITION", "part-1"),
        ]);
        assert_eq!(c.address.as_deref(), Some("https://consul.example:8501/proxy"));
        assert_eq!(c.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.tls.ca_path, Some(PathBuf::from("/etc/cas")));
        assert_eq!(c.tls.client_cert, Some(PathBuf::from("/etc/c.pem")));
        assert_eq!(c.tls.client_key, Some(PathBuf::from("/etc/k.pem")));
        assert_eq!(c.tls.server_name.as_deref(), Some("server.dc1.consul"));
        assert!(!c.tls.verify);
        assert_eq!(c.token_file, Some(PathBuf::from("/etc/token")));
        assert_eq!(c.token.as_deref(), Some("secret-token"));
        assert_eq!(c.http_auth.as_deref(), Some("alice:pw"));
        assert_eq!(c.namespace.as_deref(), Some("team-a"));
        assert_eq!(c.partition.as_deref(), Some("part-1"));
        assert_eq!(c.datacenter, None);
        assert_eq!(c.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn ssl_verify_accepts_go_booleans_and_ignores_garbage() {
        assert!(!env(&[("CONSUL_HTTP_SSL_VERIFY", "0")]).tls.verify);
        assert!(!env(&[("CONSUL_HTTP_SSL_VERIFY", "F")]).tls.verify);
        assert!(env(&[("CONSUL_HTTP_SSL_VERIFY", "true")]).tls.verify);
        assert!(env(&[("CONSUL_HTTP_SSL_VERIFY", "nope")]).tls.verify);
    }

    #[test]
    fn debug_redacts_token_and_auth_password() {
        let c = env(&[("CONSUL_HTTP_TOKEN", "s3cr3t-tok"), ("CONSUL_HTTP_AUTH", "alice:pa55w0rd")]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-tok"), "{shown}");
        assert!(!shown.contains("pa55w0rd"), "{shown}");
        assert!(shown.contains("alice:<redacted>"), "{shown}");
        assert!(shown.contains("token: Some(\"<redacted>\")"), "{shown}");
        let shown = format!("{:#?}", c);
        assert!(!shown.contains("s3cr3t-tok") && !shown.contains("pa55w0rd"));
    }
}
