//! Client configuration: defaults, then the `CONSUL_*` environment, then keys set by the caller. The keys, their
//! parsing and Consul's token precedence live here so that C, Python, Ruby and Rust callers get the same rules.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::config::AgentConfig;
use crate::error::{Error, Result};
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
