//! Client configuration, clients and service registration.

use std::ffi::c_char;
use std::time::Duration;

use super::args::{arg_ref, arg_str, call, call_void, free_handle, into_handle, opt_str, out_ptr, set_out};
use crate::result::{consulnative_result, AbiError as Error, AbiResult as Result};
use consulnative_core::api::{Client, ClientOptions, Registration, RegistrationCheck};

/// Client configuration: starts from the `CONSUL_*` environment variables; keys set on it win.
pub struct consulnative_config {
    pub(crate) options: ClientOptions,
}

/// A client of one Consul agent: owns the CA roots watch shared by its services.
pub struct consulnative_client {
    pub(crate) client: Client,
}

/// Creates a configuration from the environment (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, `CONSUL_CACERT`, ...).
/// Free it with `consulnative_config_free`.
#[no_mangle]
pub extern "C" fn consulnative_config_new(out: *mut *mut consulnative_config) -> consulnative_result {
    call(|| {
        out_ptr(out, "out")?;
        set_out(out, into_handle(consulnative_config { options: ClientOptions::from_env() }));
        Ok(())
    })
}

/// Sets one configuration key. Keys: `address` (`host:port`, `http://`, `https://`, `unix://`), `token`,
/// `token_file`, `datacenter`, `namespace`, `partition`, `http_auth` (`user:pass`), `ca_file`, `ca_path`,
/// `client_cert`, `client_key`, `tls_server_name`, `tls_verify` (`true`/`false`), and durations in
/// milliseconds: `request_timeout_ms`, `blocking_wait_ms`, `retry_max_ms`, `handshake_timeout_ms`,
/// `authorize_timeout_ms`. Limits of every listener (positive whole numbers): `max_handshakes` (default 256:
/// connections between accept and admission; beyond it new ones wait in the kernel backlog), `accept_queue`
/// (128: admitted connections waiting for accept), `refusal_queue` (256: refusals waiting for the refusal
/// callback), `max_authorizations` (16: authorize calls in flight), `peer_check_threads` (2),
/// `busy_handshake_timeout_ms` (1000: handshakes cut when every slot is taken); of peer certificate chains, on
/// both sides: `max_chain_certs` (8) and `max_chain_bytes` (32768). An unknown key or a bad value is
/// `CONSULNATIVE_RESULT_INVALID_ARGUMENT`.
/// A NULL or empty value clears an optional key.
#[no_mangle]
pub extern "C" fn consulnative_config_set(
    config: *mut consulnative_config,
    key: *const c_char,
    value: *const c_char,
) -> consulnative_result {
    call(|| {
        // SAFETY: a handle from consulnative_config_new, not used concurrently (documented).
        let config = unsafe { config.as_mut() }
            .ok_or_else(|| Error::new(consulnative_result::NullArgument, "argument `config` is NULL"))?;
        let key = arg_str(key, "key")?;
        let value = opt_str(value, "value")?;
        Ok(config.options.set(key, value)?)
    })
}

/// Frees a configuration. NULL is a no-op.
#[no_mangle]
pub extern "C" fn consulnative_config_free(config: *mut consulnative_config) {
    call_void(|| free_handle(config))
}

/// Creates a client from `config` (NULL: from the environment alone). Nothing is sent to the agent until a
/// service starts or a call is made. Free it with `consulnative_client_free`; services keep working after that.
#[no_mangle]
pub extern "C" fn consulnative_client_new(
    config: *const consulnative_config,
    out: *mut *mut consulnative_client,
) -> consulnative_result {
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
) -> consulnative_result {
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
        Ok(client.client.register(&registration)?)
    })
}

fn parse_check(check: Option<&str>) -> Result<RegistrationCheck> {
    let Some(check) = check else { return Ok(RegistrationCheck::None) };
    let (kind, ms) = match check.split_once(':') {
        Some((k, v)) => {
            let ms = v
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::invalid(format!("bad check {check:?}: the period is in milliseconds")))?;
            (k, Some(Duration::from_millis(ms)))
        }
        None => (check, None),
    };
    match kind.trim() {
        "tcp" => Ok(RegistrationCheck::Tcp { interval: ms.unwrap_or(Duration::from_secs(10)) }),
        "ttl" => Ok(RegistrationCheck::Ttl {
            ttl: ms.ok_or_else(|| Error::invalid("a ttl check needs a period: \"ttl:<ms>\""))?,
        }),
        _ => Err(Error::invalid(format!("unknown check {check:?}: use \"tcp\", \"tcp:<ms>\" or \"ttl:<ms>\""))),
    }
}

/// Deregisters a service by its ID.
#[no_mangle]
pub extern "C" fn consulnative_client_deregister(
    client: *const consulnative_client,
    service_id: *const c_char,
) -> consulnative_result {
    call(|| Ok(arg_ref(client, "client")?.client.deregister(arg_str(service_id, "service_id")?)?))
}

/// Marks a TTL check passing (`note` may be NULL).
#[no_mangle]
pub extern "C" fn consulnative_client_pass_ttl(
    client: *const consulnative_client,
    check_id: *const c_char,
    note: *const c_char,
) -> consulnative_result {
    call(|| Ok(arg_ref(client, "client")?.client.pass_ttl(arg_str(check_id, "check_id")?, opt_str(note, "note")?)?))
}
