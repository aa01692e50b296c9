//! Client configuration: defaults, then the `CONSUL_*` environment, then keys set by the caller. The keys, their
//! parsing and Consul's token precedence live here so that C, Python, Ruby and Rust callers get the same rules.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::config::AgentConfig;
use crate::error::{Error, Result};
use crate::net::limits::{ListenLimits, MAX_AUTHORIZATIONS, MAX_COUNT, MAX_PEER_CHECK_THREADS};
use crate::tls::ChainLimits;
use crate::watch::WatchTiming;

/// Every key [`ClientOptions::set`] accepts, in the order the documentation lists them.
pub const CONFIG_KEYS: &[&str] = &[
    "address",
    "token",
    "token_file",
    "datacenter",
    "namespace",
    "partition",
    "http_auth",
    "ca_file",
    "ca_path",
    "client_cert",
    "client_key",
    "tls_server_name",
    "tls_verify",
    "request_timeout_ms",
    "blocking_wait_ms",
    "retry_max_ms",
    "handshake_timeout_ms",
    "authorize_timeout_ms",
    "max_handshakes",
    "accept_queue",
    "refusal_queue",
    "max_authorizations",
    "peer_check_threads",
    "busy_handshake_timeout_ms",
    "max_chain_certs",
    "max_chain_bytes",
];

/// Everything a client can be configured with.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Agent address, token and TLS.
    pub agent: AgentConfig,
    /// Blocking-query timing of the certificate watches.
    pub watch: WatchTiming,
    /// Bound on each inbound connection's TLS handshake (a listener may override it).
    pub handshake_timeout: Duration,
    /// Bound on each authorize call (a listener may override it).
    pub authorize_timeout: Duration,
    /// Bounds of every listener of this client's services (a listener may override them).
    pub listen_limits: ListenLimits,
    /// Bounds on the certificate chains peers send, on both sides (listeners and dials).
    pub chain_limits: ChainLimits,
    /// Set when `token_file` was given explicitly: an explicit token then does not override it.
    explicit_token_file: bool,
}

impl Default for ClientOptions {
    /// Nothing from the environment: `127.0.0.1:8500` over http, no token, default timings.
    fn default() -> Self {
        ClientOptions {
            agent: AgentConfig::default(),
            watch: WatchTiming::default(),
            handshake_timeout: Duration::from_secs(10),
            authorize_timeout: Duration::from_secs(5),
            listen_limits: ListenLimits::default(),
            chain_limits: ChainLimits::default(),
            explicit_token_file: false,
        }
    }
}

impl ClientOptions {
    /// The defaults, with the agent configured from the process's `CONSUL_*` environment variables.
    pub fn from_env() -> ClientOptions {
        ClientOptions { agent: AgentConfig::from_env(), ..ClientOptions::default() }
    }

    /// Sets one configuration key (see [`CONFIG_KEYS`]); `None` or `""` clears an optional key. Keys:
    /// `address` (`host:port`, `http://`, `https://`, `unix://`), `token`, `token_file`, `datacenter`,
    /// `namespace`, `partition`, `http_auth` (`user:pass`), `ca_file`, `ca_path`, `client_cert`, `client_key`,
    /// `tls_server_name`, `tls_verify` (`true`/`false`), and durations in milliseconds: `request_timeout_ms`,
    /// `blocking_wait_ms`, `retry_max_ms`, `handshake_timeout_ms`, `authorize_timeout_ms`.
    ///
    /// Limits (positive integers; see [`ListenLimits`] and [`ChainLimits`]): `max_handshakes` (256),
    /// `accept_queue` (128), `refusal_queue` (256), `max_authorizations` (16, at most 128), `peer_check_threads`
    /// (2, at most 64), `busy_handshake_timeout_ms` (1000), `max_chain_certs` (8, at most 64), `max_chain_bytes`
    /// (32768, at most 1 MiB).
    ///
    /// Token precedence is Consul's: an explicit `token_file`, an explicit `token`, `CONSUL_HTTP_TOKEN_FILE`,
    /// `CONSUL_HTTP_TOKEN`. An unknown key or a bad value is [`crate::api::ErrorKind::InvalidArgument`]; the
    /// token's value never appears in a message.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        let value = value.filter(|v| !v.is_empty());
        match key {
            "token_file" => self.explicit_token_file = value.is_some(),
            "token" if !self.explicit_token_file => self.agent.token_file = None,
            _ => {}
        }
        let count = |max: usize| -> Result<usize> {
            let v = value.ok_or_else(|| Error::invalid(format!("`{key}` needs a value")))?;
            match v.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(Error::invalid(format!("`{key}` must be a whole number from 1 to {max}, got {v:?}"))),
            }
        };
        let limits = &mut self.listen_limits;
        match key {
            "max_handshakes" => limits.max_handshakes = count(MAX_COUNT)?,
            "accept_queue" => limits.accept_queue = count(MAX_COUNT)?,
            "refusal_queue" => limits.refusal_queue = count(MAX_COUNT)?,
            "max_authorizations" => limits.max_authorizations = count(MAX_AUTHORIZATIONS)?,
            "peer_check_threads" => limits.peer_check_threads = count(MAX_PEER_CHECK_THREADS)?,
            "busy_handshake_timeout_ms" => {
                limits.busy_handshake_timeout = Duration::from_millis(count(MAX_COUNT)? as u64)
            }
            "max_chain_certs" => self.chain_limits.max_certs = count(64)?,
            "max_chain_bytes" => self.chain_limits.max_bytes = count(1 << 20)?,
            _ => return self.set_agent_key(key, value),
        }
        Ok(())
    }

    /// The keys of the agent connection and of the timeouts.
    fn set_agent_key(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        let text = || value.map(str::to_string);
        let path = || value.map(PathBuf::from);
        let millis = || -> Result<Duration> {
            let v = value.ok_or_else(|| Error::invalid(format!("`{key}` needs a value")))?;
            v.trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| Error::invalid(format!("`{key}` must be a number of milliseconds, got {v:?}")))
        };
        let agent = &mut self.agent;
        match key {
            "address" => agent.address = text(),
            "token" => agent.token = text(),
            "token_file" => agent.token_file = path(),
            "datacenter" => agent.datacenter = text(),
            "namespace" => agent.namespace = text(),
            "partition" => agent.partition = text(),
            "http_auth" => agent.http_auth = text(),
            "ca_file" => agent.tls.ca_file = path(),
            "ca_path" => agent.tls.ca_path = path(),
            "client_cert" => agent.tls.client_cert = path(),
            "client_key" => agent.tls.client_key = path(),
            "tls_server_name" => agent.tls.server_name = text(),
            "tls_verify" => {
                agent.tls.verify = match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
                    Some("true") | Some("1") | None => true,
                    Some("false") | Some("0") => false,
                    Some(v) => return Err(Error::invalid(format!("`tls_verify` must be true or false, got {v:?}"))),
                }
            }
            "request_timeout_ms" => agent.request_timeout = millis()?,
            "blocking_wait_ms" => self.watch.wait = millis()?,
            "retry_max_ms" => self.watch.retry_max = millis()?,
            "handshake_timeout_ms" => self.handshake_timeout = millis()?,
            "authorize_timeout_ms" => self.authorize_timeout = millis()?,
            _ => return Err(Error::invalid(format!("unknown configuration key {key:?}"))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_key_is_accepted_and_unknown_keys_are_not() {
        for key in CONFIG_KEYS {
            let value = if key.ends_with("_ms") {
                "1500"
            } else if key.starts_with("max_") || key.ends_with("_queue") || key.ends_with("_threads") {
                "8"
            } else if *key == "tls_verify" {
                "false"
            } else {
                "x"
            };
            ClientOptions::default().set(key, Some(value)).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        let err = ClientOptions::default().set("adress", Some("x")).unwrap_err();
        assert!(err.message().contains("unknown configuration key"), "{err}");
    }

    #[test]
    fn token_precedence_is_consuls() {
        // An explicit token wins over CONSUL_HTTP_TOKEN_FILE from the environment...
        let mut o = ClientOptions::default();
        o.agent.token_file = Some(PathBuf::from("/from/env"));
        o.set("token", Some("t")).unwrap();
        assert_eq!(o.agent.token_file, None);
        // ...but not over an explicit token file, whichever is set first.
        let mut o = ClientOptions::default();
        o.set("token_file", Some("/explicit")).unwrap();
        o.set("token", Some("t")).unwrap();
        assert_eq!(o.agent.token_file, Some(PathBuf::from("/explicit")));
    }

    #[test]
    fn limits_are_positive_bounded_whole_numbers() {
        let mut o = ClientOptions::default();
        assert_eq!(o.listen_limits, ListenLimits::default());
        assert_eq!(o.chain_limits, ChainLimits::default());
        o.set("max_handshakes", Some("32")).unwrap();
        o.set("accept_queue", Some(" 4 ")).unwrap();
        o.set("refusal_queue", Some("1")).unwrap();
        o.set("max_authorizations", Some("128")).unwrap();
        o.set("peer_check_threads", Some("3")).unwrap();
        o.set("busy_handshake_timeout_ms", Some("250")).unwrap();
        o.set("max_chain_certs", Some("3")).unwrap();
        o.set("max_chain_bytes", Some("4096")).unwrap();
        let l = o.listen_limits;
        assert_eq!((l.max_handshakes, l.accept_queue, l.refusal_queue), (32, 4, 1));
        assert_eq!((l.max_authorizations, l.peer_check_threads), (128, 3));
        assert_eq!(l.busy_handshake_timeout, Duration::from_millis(250));
        assert_eq!(o.chain_limits, ChainLimits { max_certs: 3, max_bytes: 4096 });
        for (key, bad) in [
            ("max_handshakes", "0"),
            ("accept_queue", "-1"),
            ("refusal_queue", "lots"),
            ("max_authorizations", "129"),
            ("peer_check_threads", "65"),
            ("max_chain_certs", "65"),
            ("max_chain_bytes", "1048577"),
            ("busy_handshake_timeout_ms", "0"),
        ] {
            let err = o.set(key, Some(bad)).unwrap_err();
            assert!(err.message().contains(key) && err.message().contains("whole number"), "{err}");
        }
        assert!(o.set("max_handshakes", None).unwrap_err().message().contains("needs a value"));
        assert_eq!(o.listen_limits, l, "a refused value changes nothing");
    }

    #[test]
    fn durations_are_milliseconds_and_bad_values_name_the_key_not_the_token() {
        let mut o = ClientOptions::default();
        o.set("authorize_timeout_ms", Some("250")).unwrap();
        assert_eq!(o.authorize_timeout, Duration::from_millis(250));
        let err = o.set("retry_max_ms", Some("soon")).unwrap_err();
        assert!(err.message().contains("retry_max_ms"), "{err}");
        let err = o.set("tls_verify", Some("perhaps")).unwrap_err();
        assert!(err.message().contains("tls_verify"));
    }
}
