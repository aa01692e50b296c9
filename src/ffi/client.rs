//! Client configuration, clients and service registration.

use std::ffi::c_char;
use std::path::PathBuf;
use std::time::Duration;

use super::args::{arg_ref, arg_str, call, call_void, free_handle, into_handle, opt_str, out_ptr, set_out};
use crate::api::{Client, ClientOptions, Registration, RegistrationCheck};
use crate::error::{Error, Result};

/// Client configuration: starts from the `CONSUL_*` environment variables; keys set on it win.
pub struct consulnative_config {
    pub(crate) options: ClientOptions,
    /// Set when `token_file` was given explicitly: an explicit token then does not override it.
    explicit_token_file: bool,
}

/// A client of one Consul agent: owns the CA roots watch shared by its services.
pub struct consulnative_client {
    pub(crate) client: Client,
}

/// Creates a configuration from the environment (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, `CONSUL_CACERT`, ...).
/// Free it with `consulnative_config_free`.
#[no_mangle]
pub extern "C" fn consulnative_config_new(out: *mut *mut consulnative_config) -> u32 {
    call(|| {
        out_ptr(out, "out")?;
        set_out(out, into_handle(consulnative_config { options: ClientOptions::from_env(), explicit_token_file: false }));
        Ok(())
    })
}

/// Sets one configuration key. Keys: `address` (`host:port`, `http://`, `https://`, `unix://`), `token`,
/// `token_file`, `datacenter`, `namespace`, `partition`, `http_auth` (`user:pass`), `ca_file`, `ca_path`,
/// `client_cert`, `client_key`, `tls_server_name`, `tls_verify` (`true`/`false`), and durations in
/// milliseconds: `request_timeout_ms`, `blocking_wait_ms`, `retry_max_ms`, `handshake_timeout_ms`,
/// `authorize_timeout_ms`. An unknown key or a bad value is `CONSULNATIVE_RESULT_INVALID_ARGUMENT`.
/// A NULL or empty value clears an optional key.
#[no_mangle]
pub extern "C" fn consulnative_config_set(config: *mut consulnative_config, key: *const c_char, value: *const c_char) -> u32 {
    call(|| {
        // SAFETY: a handle from consulnative_config_new, not used concurrently (documented).
        let config = unsafe { config.as_mut() }.ok_or_else(|| Error::new(crate::Code::NullArgument, "argument `config` is NULL"))?;
        let key = arg_str(key, "key")?;
        let value = opt_str(value, "value")?;
        match key {
            // Precedence as Consul's: explicit token file, explicit token, CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_TOKEN.
            "token_file" => config.explicit_token_file = value.is_some(),
            "token" if !config.explicit_token_file => config.options.agent.token_file = None,
            _ => {}
        }
        set_option(&mut config.options, key, value)
    })
}

fn set_option(o: &mut ClientOptions, key: &str, value: Option<&str>) -> Result<()> {
    let text = || value.map(str::to_string);
    let path = || value.map(PathBuf::from);
    let millis = || -> Result<Duration> {
        let v = value.ok_or_else(|| Error::invalid(format!("`{key}` needs a value")))?;
        v.trim().parse::<u64>().map(Duration::from_millis).map_err(|_| Error::invalid(format!("`{key}` must be a number of milliseconds, got {v:?}")))
    };
    match key {
        "address" => o.agent.address = text(),
        // The token itself never appears in messages.
        "token" => o.agent.token = text(),
        "token_file" => o.agent.token_file = path(),
        "datacenter" => o.agent.datacenter = text(),
        "namespace" => o.agent.namespace = text(),
        "partition" => o.agent.partition = text(),
        "http_auth" => o.agent.http_auth = text(),
        "ca_file" => o.agent.tls.ca_file = path(),
        "ca_path" => o.agent.tls.ca_path = path(),
        "client_cert" => o.agent.tls.client_cert = path(),
        "client_key" => o.agent.tls.client_key = path(),
        "tls_server_name" => o.agent.tls.server_name = text(),
        "tls_verify" => {
            o.agent.tls.verify = match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
                Some("true") | Some("1") | None => true,
                Some("false") | Some("0") => false,
                Some(v) => return Err(Error::invalid(format!("`tls_verify` must be true or false, got {v:?}"))),
            }
        }
        "request_timeout_ms" => o.agent.request_timeout = millis()?,
        "blocking_wait_ms" => o.watch.wait = millis()?,
        "retry_max_ms" => o.watch.retry_max = millis()?,
        "handshake_timeout_ms" => o.handshake_timeout = millis()?,
        "authorize_timeout_ms" => o.authorize_timeout = millis()?,
        _ => return Err(Error::invalid(format!("unknown configuration key {key:?}"))),
    }
    Ok(())
}

/// Frees a configuration. NULL is a no-op.
#[no_mangle]
pub extern "C" fn consulnative_config_free(config: *mut consulnative_config) {
    call_void(|| free_handle(config))
}

/// Creates a client from `config` (NULL: from the environment alone). Nothing is sent to the agent until a
/// service starts or a call is made. Free it with `consulnative_client_free`; services keep working after that.
#[no_mangle]
pub extern "C" fn consulnative_client_new(config: *const consulnative_config, out: *mut *mut consulnative_client) -> u32 {
    call(|| {
        out_ptr(out, "out")?;
        // SAFETY: NULL or a handle from consulnative_config_new.
        let options = match unsafe { config.as_ref() } {
            Some(c) => c.options.clone(),
            None => ClientOptions::from_env(),
        };
        let client = Client::new(options)?;
        set_out(out, into_handle(consulnative_client { client }));
        Ok(())
    })
}

/// Frees a client. NULL is a no-op. Services created from it keep it alive internally.
#[no_mangle]
pub extern "C" fn consulnative_client_free(client: *mut consulnative_client) {
    call_void(|| free_handle(client))
}

/// Registers a Connect-native service with the agent. `id` (NULL: the name), `address` (NULL: the agent's
/// address), `tags` (comma-separated, may be NULL) and `check` are optional. `check`: NULL or `""` for none,
/// `"tcp"` or `"tcp:<interval ms>"` for a TCP check (default 10000 ms), `"ttl:<ttl ms>"` for a TTL check (its ID is
/// `service:<id>`; keep it passing with `consulnative_client_pass_ttl`).
#[no_mangle]
pub extern "C" fn consulnative_client_register(
    client: *const consulnative_client,
    name: *const c_char,
    id: *const c_char,
    address: *const c_char,
    port: u16,
    tags: *const c_char,
    check: *const c_char,
) -> u32 {
    call(|| {
        let client = arg_ref(client, "client")?;
        let registration = Registration {
            name: arg_str(name, "name")?.to_string(),
            id: opt_str(id, "id")?.map(str::to_string),
            address: opt_str(address, "address")?.map(str::to_string),
            port,
            tags: opt_str(tags, "tags")?
                .map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
            check: parse_check(opt_str(check, "check")?)?,
        };
        client.client.register(&registration)
    })
}

fn parse_check(check: Option<&str>) -> Result<RegistrationCheck> {
    let Some(check) = check else { return Ok(RegistrationCheck::None) };
    let (kind, ms) = match check.split_once(':') {
        Some((k, v)) => {
            let ms = v.trim().parse::<u64>().map_err(|_| Error::invalid(format!("bad check {check:?}: the period is in milliseconds")))?;
            (k, Some(Duration::from_millis(ms)))
        }
        None => (check, None),
    };
    match kind.trim() {
        "tcp" => Ok(RegistrationCheck::Tcp { interval: ms.unwrap_or(Duration::from_secs(10)) }),
        "ttl" => Ok(RegistrationCheck::Ttl { ttl: ms.ok_or_else(|| Error::invalid("a ttl check needs a period: \"ttl:<ms>\""))? }),
        _ => Err(Error::invalid(format!("unknown check {check:?}: use \"tcp\", \"tcp:<ms>\" or \"ttl:<ms>\""))),
    }
}

/// Deregisters a service by its ID.
#[no_mangle]
pub extern "C" fn consulnative_client_deregister(client: *const consulnative_client, service_id: *const c_char) -> u32 {
    call(|| arg_ref(client, "client")?.client.deregister(arg_str(service_id, "service_id")?))
}

/// Marks a TTL check passing (`note` may be NULL).
#[no_mangle]
pub extern "C" fn consulnative_client_pass_ttl(client: *const consulnative_client, check_id: *const c_char, note: *const c_char) -> u32 {
    call(|| arg_ref(client, "client")?.client.pass_ttl(arg_str(check_id, "check_id")?, opt_str(note, "note")?))
}
