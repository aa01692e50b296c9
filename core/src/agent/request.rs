//! One request to the agent: building its URL and headers, running it within its timeout and its endpoint's size
//! limit, and mapping the answer (status, `X-Consul-Index`, body) to a value or an error that names the agent, the
//! endpoint and what the agent said.

use std::io::Read;
use std::time::Duration;

use serde::de::DeserializeOwned;
use ureq::RequestBuilder;

use super::address::escape;
use super::client::{AgentClient, BlockingQuery, Response, BLOCKING_MARGIN, MAX_WAIT};
use crate::error::{Code, Error, Result};

/// Most of an error body that goes into an error message.
pub(super) const MAX_ERROR_BODY: usize = 1024;

/// The most a successful answer to one call may hold, and what the answer is (for the error message).
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimit {
    pub(super) bytes: u64,
    /// `a leaf certificate answer`, `a CA roots answer`, ...
    pub(super) what: &'static str,
}

/// `64 KiB`, `1.5 MiB`, `100 bytes`.
pub(super) fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    let scaled = |unit: u64, name: &str| {
        if bytes.is_multiple_of(unit) {
            format!("{} {name}", bytes / unit)
        } else {
            format!("{:.1} {name}", bytes as f64 / unit as f64)
        }
    };
    if bytes >= MIB {
        scaled(MIB, "MiB")
    } else if bytes >= KIB {
        scaled(KIB, "KiB")
    } else {
        format!("{bytes} bytes")
    }
}

/// Most of a bad `X-Consul-Index` quoted in a message, in bytes of escaped text.
const MAX_INDEX_SHOWN: usize = 64;

/// Reads `X-Consul-Index` for a blocking query: it must be a positive integer. `Err` says what is wrong with it
/// (quoting at most 64 bytes of it, escaped), in at most 120 bytes.
pub fn parse_consul_index(value: Option<&[u8]>) -> std::result::Result<u64, String> {
    let Some(raw) = value else { return Err("no X-Consul-Index header".to_string()) };
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(0) => Err("X-Consul-Index 0".to_string()),
        Ok(index) => Ok(index),
        Err(_) => {
            // Escaped like Debug, and cut at 64 bytes of escaped text: a control character escapes to up to 10.
            let mut shown = String::new();
            for c in text.chars() {
                let escaped: String = c.escape_debug().collect();
                if shown.len() + escaped.len() > MAX_INDEX_SHOWN {
                    shown.push('…');
                    break;
                }
                shown.push_str(&escaped);
            }
            Err(format!("a non-numeric X-Consul-Index \"{shown}\""))
        }
    }
}

pub(super) fn describe_io(e: &std::io::Error) -> String {
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
pub(super) fn body_text(bytes: &[u8]) -> String {
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
    /// A blocking query. The first one (index 0) is answered at once, so it is bounded by the request timeout;
    /// later ones by `wait + wait/16` plus a margin. The answer must carry a positive `X-Consul-Index`: without
    /// one the next query could not block, and the watch would poll.
    pub(super) fn blocking_get<T: DeserializeOwned>(
        &self,
        path: String,
        q: &BlockingQuery,
        limit: BodyLimit,
    ) -> Result<Response<T>> {
        let wait = q.wait.clamp(Duration::from_millis(1), MAX_WAIT);
        let wait = Duration::from_millis(wait.as_millis() as u64);
        let timeout = if q.index == 0 { self.inner.request_timeout } else { wait + wait / 16 + BLOCKING_MARGIN };
        let mut call = Call::new("GET", path, timeout, limit);
        call.connect_timeout = self.inner.request_timeout.min(timeout);
        if q.index > 0 {
            call.query.push(("index", Some(q.index.to_string())));
        }
        call.query.push(("wait", Some(crate::encoding::go_duration(wait))));
        let what = format!("{} {}", call.method, call.path);
        let (index, body) = self.execute(call)?;
        let index = index.map_err(|why| {
            Error::new(
                Code::AgentBadResponse,
                format!(
                    "agent at {} answered {what} with {why} (a blocking query needs a positive index); answer \
                     ignored",
                    self.inner.display
                ),
            )
        })?;
        Ok(Response { value: self.decode(&what, &body)?, index })
    }

    /// A call whose answer is JSON; its `X-Consul-Index` is read when valid, else 0.
    pub(super) fn json<T: DeserializeOwned>(&self, call: Call) -> Result<Response<T>> {
        let what = format!("{} {}", call.method, call.path);
        let (index, body) = self.execute(call)?;
        Ok(Response { value: self.decode(&what, &body)?, index: index.unwrap_or(0) })
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, body: &[u8]) -> Result<T> {
        serde_json::from_slice(body).map_err(|e| {
            Error::new(
                Code::AgentBadResponse,
                format!("agent at {} answered {what} with malformed JSON: {e}", self.inner.display),
            )
        })
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

    /// Sends the call; on 2xx returns `X-Consul-Index` (see [`parse_consul_index`]) and the body, read up to the
    /// call's limit.
    pub(super) fn execute(&self, call: Call) -> Result<(std::result::Result<u64, String>, Vec<u8>)> {
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
        let index = parse_consul_index(response.headers().get("X-Consul-Index").map(|v| v.as_bytes()));
        let limit = call.limit;
        let too_large = |announced: Option<u64>| {
            let size = match announced {
                Some(n) => format!("a {} body", human_size(n)),
                None => format!("more than {}", human_size(limit.bytes)),
            };
            Error::new(
                Code::AgentBadResponse,
                format!(
                    "agent at {} answered {} {} with {size}: {} may be at most {}; answer ignored",
                    self.inner.display,
                    call.method,
                    call.path,
                    limit.what,
                    human_size(limit.bytes)
                ),
            )
        };
        // Refuse an announced oversized body before reading any of it; a chunked one stops at the limit.
        if let Some(announced) = response.body().content_length().filter(|n| *n > limit.bytes) {
            return Err(too_large(Some(announced)));
        }
        let body = response.body_mut().with_config().limit(limit.bytes).read_to_vec().map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => too_large(None),
            e => self.map_error(&call, e),
        })?;
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
                format!(
                    "agent at {agent} did not answer {endpoint} within {}{phase}",
                    crate::encoding::go_duration(call.timeout)
                ),
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

pub(super) fn non_empty<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() {
        Err(Error::invalid(format!("{what} is empty")))
    } else {
        Ok(value)
    }
}

/// One request to make.
pub(super) struct Call {
    pub(super) method: &'static str,
    /// The API path (no prefix, no query), also used in messages.
    pub(super) path: String,
    pub(super) query: Vec<(&'static str, Option<String>)>,
    pub(super) dc_override: Option<String>,
    pub(super) body: Option<Vec<u8>>,
    pub(super) timeout: Duration,
    pub(super) connect_timeout: Duration,
    /// The largest successful answer read.
    pub(super) limit: BodyLimit,
}

impl Call {
    pub(super) fn new(method: &'static str, path: String, timeout: Duration, limit: BodyLimit) -> Call {
        Call {
            method,
            path,
            query: Vec::new(),
            dc_override: None,
            body: None,
            timeout,
            connect_timeout: timeout,
            limit,
        }
    }

    pub(super) fn body(mut self, body: Vec<u8>) -> Call {
        self.body = Some(body);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn consul_index_must_be_a_positive_integer() {
        assert_eq!(parse_consul_index(Some(b"42")), Ok(42));
        assert_eq!(parse_consul_index(Some(b" 7 ")), Ok(7));
        assert_eq!(parse_consul_index(Some(b"18446744073709551615")), Ok(u64::MAX));
        assert_eq!(parse_consul_index(None), Err("no X-Consul-Index header".to_string()));
        assert_eq!(parse_consul_index(Some(b"0")), Err("X-Consul-Index 0".to_string()));
        assert_eq!(parse_consul_index(Some(b"abc")), Err("a non-numeric X-Consul-Index \"abc\"".to_string()));
        for bad in [&b"-1"[..], b"", b"1e3", b"18446744073709551616", b"\xff\xfe"] {
            assert!(parse_consul_index(Some(bad)).is_err(), "{bad:?}");
        }
        // Long, invalid UTF-8 and control characters (the first found by fuzzing: 62 bytes of 0xa8, each one
        // U+FFFD once decoded) are all quoted within the bound.
        for raw in ["x".repeat(500).into_bytes(), vec![0xa8; 62], vec![1u8; 100], "é".repeat(80).into_bytes()] {
            let why = parse_consul_index(Some(&raw)).unwrap_err();
            assert!(why.len() <= 120, "{} bytes: {why}", why.len());
            assert!(why.ends_with("…\""), "{why}");
        }
    }

    #[test]
    fn sizes_read_like_a_person_would_write_them() {
        assert_eq!(human_size(100), "100 bytes");
        assert_eq!(human_size(64 * 1024), "64 KiB");
        assert_eq!(human_size(100 * 1024 * 1024), "100 MiB");
        assert_eq!(human_size(1536 * 1024), "1.5 MiB");
    }
}
