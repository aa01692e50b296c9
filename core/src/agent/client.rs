//! The HTTP client for the Consul agent API.
//!
//! Blocking (ureq 3), keep-alive pooled, every request bounded by a timeout. Status codes are mapped to the crate's
//! error codes here (ureq's `http_status_as_error` is off); messages name the agent, the method and endpoint and what
//! the agent answered, and never contain the ACL token.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use ureq::config::Config;
use ureq::unversioned::transport::{Connector, TcpConnector};
use ureq::RequestBuilder;

use super::config::{AgentConfig, DEFAULT_ADDRESS};
use super::transport::{tls_connector, AgentResolver, UnixConnector};
#[cfg(test)]
use super::types::AgentSelf;
use super::types::{
    AuthorizeRequest, AuthorizeResponse, CaRoots, HealthEntry, LeafCert, ServiceRegistration,
};
use crate::error::{Code, Error, Result};

/// The longest wait Consul honours (it caps larger values at 10 minutes).
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// Added to a blocking query's `wait + wait/16` to get its read timeout.
pub const BLOCKING_MARGIN: Duration = Duration::from_secs(5);
/// Most of an error body that goes into an error message.
const MAX_ERROR_BODY: usize = 1024;
/// Largest successful body accepted (a health answer for a big service is a few MiB at most).
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Parameters of a blocking query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockingQuery {
    /// The last `X-Consul-Index` seen; 0 for "answer now" (then no `index` parameter is sent).
    pub index: u64,
    /// How long the agent may hold the request. Always sent, rounded to milliseconds, between 1 ms and 10 min.
    pub wait: Duration,
}

/// A decoded answer and its `X-Consul-Index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response<T> {
    pub value: T,
    /// `X-Consul-Index`, 0 if absent or unparsable.
    pub index: u64,
}

/// A client of one Consul agent. Cheap to clone (shares the connection pool), `Send + Sync`.
#[derive(Clone)]
pub struct AgentClient {
    inner: Arc<Inner>,
}

struct Inner {
    agent: ureq::Agent,
    /// Scheme, authority and path prefix used to build URLs (`http://localhost` for a Unix socket).
    base: String,
    /// The address as shown in messages: no credentials.
    display: String,
    token: Option<String>,
    /// The complete `Authorization` header value for basic auth.
    basic_auth: Option<String>,
    datacenter: Option<String>,
    namespace: Option<String>,
    partition: Option<String>,
    request_timeout: Duration,
}

impl fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentClient")
            .field("address", &self.inner.display)
            .field("token", &self.inner.token.as_ref().map(|_| "<redacted>"))
            .field("basic_auth", &self.inner.basic_auth.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.inner.datacenter)
            .field("namespace", &self.inner.namespace)
            .field("partition", &self.inner.partition)
            .field("request_timeout", &self.inner.request_timeout)
            .finish()
    }
}

/// Where the agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Tcp { https: bool, authority: String, host: String, prefix: String },
    Unix { path: PathBuf },
}

fn parse_address(address: &str) -> Result<Target> {
    let address = address.trim();
    if address.is_empty() {
        return Err(Error::invalid("agent address is empty"));
    }
    if let Some(path) = address.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(Error::invalid("agent address unix:// has no socket path"));
        }
        return Ok(Target::Unix { path: PathBuf::from(path) });
    }
    let (https, rest) = if let Some(rest) = address.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = address.strip_prefix("https://") {
        (true, rest)
    } else if let Some((scheme, _)) = address.split_once("://") {
        return Err(Error::invalid(format!(
            "agent address scheme {scheme:?} is not supported (use http://, https:// or unix://)"
        )));
    } else {
        (false, address)
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(Error::invalid(format!("agent address {address:?} has no host")));
    }
    if authority.contains('@') {
        return Err(Error::invalid(
            "agent address must not carry credentials (use http_auth / CONSUL_HTTP_AUTH)".to_string(),
        ));
    }
    if prefix.contains(['?', '#']) || authority.contains(['?', '#']) {
        return Err(Error::invalid(format!("agent address {address:?} must not have a query or fragment")));
    }
    let scheme = if https { "https" } else { "http" };
    let uri: ureq::http::Uri = format!("{scheme}://{authority}{prefix}/v1/agent/self")
        .parse()
        .map_err(|e| Error::invalid(format!("agent address {address:?} is not a valid URL: {e}")))?;
    let host = uri.host().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(Error::invalid(format!("agent address {address:?} has no host")));
    }
    Ok(Target::Tcp { https, authority: authority.to_string(), host, prefix: prefix.to_string() })
}

/// Percent-escapes everything but RFC 3986 unreserved characters (for a path segment or a query value).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_header_safe(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The token to send: the token file (read and trimmed now) wins over the token.
fn resolve_token(config: &AgentConfig) -> Result<Option<String>> {
    let token = if let Some(path) = &config.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("cannot read the ACL token file {}: {}", path.display(), e.kind())))?;
        Some(text.trim().to_string())
    } else {
        config.token.as_ref().map(|t| t.trim().to_string())
    };
    let token = token.filter(|t| !t.is_empty());
    if let Some(t) = &token {
        if !t.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            let source = match &config.token_file {
                Some(path) => format!("from {}", path.display()),
                None => "given".to_string(),
            };
            return Err(Error::invalid(format!(
                "the ACL token {source} holds characters not allowed in an HTTP header"
            )));
        }
    }
    Ok(token)
}

fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset by the agent".to_string(),
        K::ConnectionAborted => "connection aborted".to_string(),
        K::UnexpectedEof => "the agent closed the connection".to_string(),
        K::NotFound => "no such socket file".to_string(),
        K::PermissionDenied => format!("permission denied ({e})"),
        _ => e.to_string(),
    }
}

/// Text of an error body: lossy UTF-8, trimmed, capped at [`MAX_ERROR_BODY`] bytes on a character boundary.
fn body_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.len() <= MAX_ERROR_BODY {
        return text.to_string();
    }
    let mut end = MAX_ERROR_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl AgentClient {
    /// A client for the configured agent. Checks the address, reads the token file and loads the TLS files now;
    /// any problem is `InvalidArgument` with the detail (paths, never the token).
    pub fn new(config: AgentConfig) -> Result<AgentClient> {
        if config.request_timeout.is_zero() {
            return Err(Error::invalid("agent request timeout must be greater than zero"));
        }
        let target = parse_address(config.address.as_deref().unwrap_or(DEFAULT_ADDRESS))?;
        let token = resolve_token(&config)?;
        let basic_auth = match &config.http_auth {
            Some(auth) if !auth.is_empty() => {
                let auth = if auth.contains(':') { auth.clone() } else { format!("{auth}:") };
                let value = format!("Basic {}", crate::encoding::base64(auth.as_bytes()));
                if !is_header_safe(&value) {
                    return Err(Error::invalid("http_auth is not valid"));
                }
                Some(value)
            }
            _ => None,
        };
        for (what, value) in
            [("datacenter", &config.datacenter), ("namespace", &config.namespace), ("partition", &config.partition)]
        {
            if value.as_deref() == Some("") {
                return Err(Error::invalid(format!("agent {what} is empty (leave it unset instead)")));
            }
        }

        let ureq_config = Config::builder()
            .http_status_as_error(false)
            .no_delay(true)
            // Agent answers are small: ureq's 128 KiB default buffers, zero-filled per connection, cost every
            // service's leaf watch 256 KiB (300 MiB for 1,000 services).
            .input_buffer_size(16 * 1024)
            .output_buffer_size(16 * 1024)
            .proxy(None)
            .max_redirects(0)
            .user_agent(concat!("libconsulnative/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(config.request_timeout))
            .timeout_connect(Some(config.request_timeout))
            .max_idle_age(Duration::from_secs(60))
            .build();

        let (agent, base, display) = match &target {
            Target::Unix { path } => {
                let connector = UnixConnector { path: Some(path.clone()) }.chain(TcpConnector::default());
                let agent = ureq::Agent::with_parts(ureq_config, connector, AgentResolver::new(true));
                (agent, "http://localhost".to_string(), format!("unix://{}", path.display()))
            }
            Target::Tcp { https, authority, host, prefix } => {
                let scheme = if *https { "https" } else { "http" };
                let base = format!("{scheme}://{authority}{prefix}");
                let agent = if *https {
                    let tls = tls_connector(&config.tls, host)?;
                    let connector = UnixConnector { path: None }.chain(TcpConnector::default()).chain(tls);
                    ureq::Agent::with_parts(ureq_config, connector, AgentResolver::new(false))
                } else {
                    let connector = UnixConnector { path: None }.chain(TcpConnector::default());
                    ureq::Agent::with_parts(ureq_config, connector, AgentResolver::new(false))
                };
                (agent, base.clone(), base)
            }
        };

        Ok(AgentClient {
            inner: Arc::new(Inner {
                agent,
                base,
                display,
                token,
                basic_auth,
                datacenter: config.datacenter,
                namespace: config.namespace,
                partition: config.partition,
                request_timeout: config.request_timeout,
            }),
        })
    }

    /// The agent's address for messages, e.g. `http://127.0.0.1:8500` or `unix:///run/consul.sock`.
    pub fn address(&self) -> String {
        self.inner.display.clone()
    }

    /// `GET /v1/agent/connect/ca/roots`, blocking on `q`.
    pub fn roots(&self, q: &BlockingQuery) -> Result<Response<CaRoots>> {
        self.blocking_get("/v1/agent/connect/ca/roots".to_string(), q)
    }

    /// `GET /v1/agent/connect/ca/leaf/<service>`, blocking on `q`.
    pub fn leaf(&self, service: &str, q: &BlockingQuery) -> Result<Response<LeafCert>> {
        let service = non_empty("service name", service)?;
        self.blocking_get(format!("/v1/agent/connect/ca/leaf/{}", escape(service)), q)
    }

    /// `POST /v1/agent/connect/authorize`, bounded by `timeout`.
    pub fn authorize(&self, req: &AuthorizeRequest, timeout: Duration) -> Result<AuthorizeResponse> {
        if timeout.is_zero() {
            return Err(Error::invalid("authorize timeout must be greater than zero"));
        }
        let body = serde_json::to_vec(req).map_err(|e| Error::internal(format!("encoding authorize request: {e}")))?;
        let call = Call::new("POST", "/v1/agent/connect/authorize".to_string(), timeout).body(body);
        Ok(self.json(call)?.value)
    }

    /// `GET /v1/health/connect/<service>?passing=1&stale`; `datacenter` overrides the configured one.
    pub fn health_connect(&self, service: &str, datacenter: Option<&str>, passing: bool) -> Result<Vec<HealthEntry>> {
        let service = non_empty("service name", service)?;
        let mut call = Call::new("GET", format!("/v1/health/connect/{}", escape(service)), self.inner.request_timeout);
        if passing {
            call.query.push(("passing", Some("1".to_string())));
        }
        call.query.push(("stale", None));
        if let Some(dc) = datacenter.filter(|d| !d.is_empty()) {
            call.dc_override = Some(dc.to_string());
        }
        Ok(self.json(call)?.value)
    }

    /// `PUT /v1/agent/service/register`.
    pub fn register(&self, reg: &ServiceRegistration) -> Result<()> {
        let body = serde_json::to_vec(reg).map_err(|e| Error::internal(format!("encoding registration: {e}")))?;
        let call = Call::new("PUT", "/v1/agent/service/register".to_string(), self.inner.request_timeout).body(body);
        self.execute(call).map(|_| ())
    }

    /// `PUT /v1/agent/service/deregister/<service_id>`.
    pub fn deregister(&self, service_id: &str) -> Result<()> {
        let id = non_empty("service ID", service_id)?;
        let call = Call::new("PUT", format!("/v1/agent/service/deregister/{}", escape(id)), self.inner.request_timeout);
        self.execute(call).map(|_| ())
    }

    /// `PUT /v1/agent/check/pass/<check_id>?note=`.
    pub fn pass_ttl(&self, check_id: &str, note: Option<&str>) -> Result<()> {
        let id = non_empty("check ID", check_id)?;
        let mut call = Call::new("PUT", format!("/v1/agent/check/pass/{}", escape(id)), self.inner.request_timeout);
        if let Some(note) = note {
            call.query.push(("note", Some(note.to_string())));
        }
        self.execute(call).map(|_| ())
    }

    /// `GET /v1/agent/self` (the tests' probe of a working agent connection).
    #[cfg(test)]
    pub fn agent_self(&self) -> Result<AgentSelf> {
        let call = Call::new("GET", "/v1/agent/self".to_string(), self.inner.request_timeout);
        Ok(self.json(call)?.value)
    }

    fn blocking_get<T: DeserializeOwned>(&self, path: String, q: &BlockingQuery) -> Result<Response<T>> {
        let wait = q.wait.clamp(Duration::from_millis(1), MAX_WAIT);
        let wait = Duration::from_millis(wait.as_millis() as u64);
        let timeout = wait + wait / 16 + BLOCKING_MARGIN;
        let mut call = Call::new("GET", path, timeout);
        call.connect_timeout = self.inner.request_timeout.min(timeout);
        if q.index > 0 {
            call.query.push(("index", Some(q.index.to_string())));
        }
        call.query.push(("wait", Some(crate::encoding::go_duration(wait))));
        self.json(call)
    }

    fn json<T: DeserializeOwned>(&self, call: Call) -> Result<Response<T>> {
        let what = format!("{} {}", call.method, call.path);
        let (index, body) = self.execute(call)?;
        let value = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                Code::AgentBadResponse,
                format!("agent at {} answered {what} with malformed JSON: {e}", self.inner.display),
            )
        })?;
        Ok(Response { value, index })
    }

    fn url(&self, call: &Call) -> String {
        let mut url = format!("{}{}", self.inner.base, call.path);
        let mut params: Vec<(&str, Option<&str>)> = call.query.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let dc = call.dc_override.as_deref().or(self.inner.datacenter.as_deref());
        for (key, value) in
            [("dc", dc), ("ns", self.inner.namespace.as_deref()), ("partition", self.inner.partition.as_deref())]
        {
            if let Some(v) = value {
                params.push((key, Some(v)));
            }
        }
        for (i, (key, value)) in params.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            if let Some(v) = value {
                url.push('=');
                url.push_str(&escape(v));
            }
        }
        url
    }

    fn prepare<B>(&self, mut rb: RequestBuilder<B>, call: &Call) -> RequestBuilder<B> {
        if let Some(token) = &self.inner.token {
            rb = rb.header("X-Consul-Token", token.as_str());
        }
        if let Some(auth) = &self.inner.basic_auth {
            rb = rb.header("Authorization", auth.as_str());
        }
        rb.config().timeout_global(Some(call.timeout)).timeout_connect(Some(call.connect_timeout)).build()
    }

    /// Sends the call; on 2xx returns `X-Consul-Index` (0 if absent) and the body.
    fn execute(&self, call: Call) -> Result<(u64, Vec<u8>)> {
        let url = self.url(&call);
        let agent = &self.inner.agent;
        let result = match call.method {
            "GET" => self.prepare(agent.get(&url), &call).call(),
            method => {
                let rb = if method == "POST" { agent.post(&url) } else { agent.put(&url) };
                let rb = self.prepare(rb, &call);
                match &call.body {
                    Some(body) => rb.header("Content-Type", "application/json").send(&body[..]),
                    None => rb.send_empty(),
                }
            }
        };
        let mut response = result.map_err(|e| self.map_error(&call, e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let mut bytes = Vec::new();
            // Whatever arrived before an error or the cap is still worth showing.
            let _ = response.body_mut().as_reader().take(4 * MAX_ERROR_BODY as u64).read_to_end(&mut bytes);
            let text = body_text(&bytes);
            let text = if text.is_empty() { "(empty body)".to_string() } else { text };
            let code = if status == 403 { Code::AgentPermissionDenied } else { Code::AgentError };
            return Err(Error::new(code, format!("agent answered {status} to {} {}: {text}", call.method, call.path)));
        }
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let body =
            response.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(|e| self.map_error(&call, e))?;
        Ok((index, body))
    }

    fn map_error(&self, call: &Call, err: ureq::Error) -> Error {
        let endpoint = format!("{} {}", call.method, call.path);
        let agent = &self.inner.display;
        let unreachable = |detail: String| {
            Error::new(Code::AgentUnreachable, format!("agent at {agent} unreachable ({endpoint}): {detail}"))
        };
        let timed_out = |phase: &str| {
            Error::new(
                Code::Timeout,
                format!("agent at {agent} did not answer {endpoint} within {}{phase}", crate::encoding::go_duration(call.timeout)),
            )
        };
        match err {
            ureq::Error::Timeout(ureq::Timeout::Connect) => Error::new(
                Code::Timeout,
                format!(
                    "agent at {agent} unreachable ({endpoint}): no connection within {}",
                    crate::encoding::go_duration(call.connect_timeout)
                ),
            ),
            ureq::Error::Timeout(_) => timed_out(""),
            ureq::Error::Io(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                timed_out("")
            }
            ureq::Error::Io(e) => unreachable(describe_io(&e)),
            ureq::Error::HostNotFound => unreachable("host not found".to_string()),
            ureq::Error::ConnectionFailed => unreachable("connection failed".to_string()),
            ureq::Error::Rustls(e) => unreachable(format!("TLS: {e}")),
            ureq::Error::Tls(e) => unreachable(format!("TLS: {e}")),
            ureq::Error::Pem(e) => unreachable(format!("TLS: {e:?}")),
            e @ (ureq::Error::Protocol(_)
            | ureq::Error::BodyExceedsLimit(_)
            | ureq::Error::LargeResponseHeader(..)
            | ureq::Error::BodyStalled) => Error::new(
                Code::AgentBadResponse,
                format!("agent at {agent} answered {endpoint} with a broken HTTP response: {e}"),
            ),
            e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_)) => {
                Error::invalid(format!("cannot build the request {endpoint} for agent at {agent}: {e}"))
            }
            e => unreachable(e.to_string()),
        }
    }
}

fn non_empty<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() {
        Err(Error::invalid(format!("{what} is empty")))
    } else {
        Ok(value)
    }
}

/// One request to make.
struct Call {
    method: &'static str,
    /// The API path (no prefix, no query), also used in messages.
    path: String,
    query: Vec<(&'static str, Option<String>)>,
    dc_override: Option<String>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Call {
    fn new(method: &'static str, path: String, timeout: Duration) -> Call {
        Call { method, path, query: Vec::new(), dc_override: None, body: None, timeout, connect_timeout: timeout }
    }

    fn body(mut self, body: Vec<u8>) -> Call {
        self.body = Some(body);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_into_scheme_authority_and_prefix() {
        assert_eq!(
            parse_address("127.0.0.1:8500").unwrap(),
            Target::Tcp {
                https: false,
                authority: "127.0.0.1:8500".into(),
                host: "127.0.0.1".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            parse_address("https://consul.example:8501/proxy/consul/").unwrap(),
            Target::Tcp {
                https: true,
                authority: "consul.example:8501".into(),
                host: "consul.example".into(),
                prefix: "/proxy/consul".into()
            }
        );
        assert_eq!(parse_address("unix:///run/consul.sock").unwrap(), Target::Unix { path: "/run/consul.sock".into() });
        match parse_address("http://[::1]:8500").unwrap() {
            Target::Tcp { authority, .. } => assert_eq!(authority, "[::1]:8500"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_addresses_are_invalid_arguments() {
        for bad in
            ["", "  ", "unix://", "ftp://h:1", "http://", "http:///x", "http://u:p@h:1", "h:1/x?y=1", "ht tp://x"]
        {
            let err = parse_address(bad).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{bad:?}: {err}");
        }
        let err = parse_address("http://u:secret@h:1").unwrap_err();
        assert!(!err.message.contains("secret"));
    }

    #[test]
    fn escape_keeps_only_unreserved() {
        assert_eq!(escape("web"), "web");
        assert_eq!(escape("a b/c?d%é"), "a%20b%2Fc%3Fd%25%C3%A9");
        assert_eq!(escape("x-y_z.~"), "x-y_z.~");
    }

    #[test]
    fn error_bodies_are_trimmed_and_capped() {
        assert_eq!(body_text(b"  Permission denied\n"), "Permission denied");
        let long = "é".repeat(2000);
        let text = body_text(long.as_bytes());
        assert!(text.len() <= MAX_ERROR_BODY + "…".len());
        assert!(text.ends_with('…'));
        assert_eq!(body_text(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn client_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<AgentClient>();
    }
}
