//! The embedded dev agent, for tests and demos in any language: start, address, intentions, CA rotation, faults.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::args::{arg_ref, arg_str, call, call_void, free_handle, into_handle, opt_str, out_ptr, set_out, write_text};
use crate::devagent::{DevAgent, DevAgentConfig, Fault, FaultEndpoint, FaultKind};
use crate::error::{Error, Result};

/// An in-process Consul-compatible dev agent (Connect CA, intentions, catalog) on its own thread.
pub struct consulnative_dev_agent {
    agent: DevAgent,
}

/// Starts a dev agent. `http_address` NULL means `127.0.0.1:0` (a free port; read it back with
/// `consulnative_dev_agent_address`). `acl_token` (may be NULL) makes leaf, authorize, register and intention
/// calls require it. `default_allow` decides connections no intention matches. `leaf_ttl_ms` 0 means 72 hours.
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_start(
    http_address: *const c_char,
    acl_token: *const c_char,
    default_allow: bool,
    leaf_ttl_ms: u64,
    out: *mut *mut consulnative_dev_agent,
) -> u32 {
    call(|| {
        out_ptr(out, "out")?;
        let mut config = DevAgentConfig::default();
        if let Some(addr) = opt_str(http_address, "http_address")? {
            config.http_addr = addr.parse::<SocketAddr>().map_err(|e| Error::invalid(format!("bad http_address {addr:?}: {e}")))?;
        }
        config.acl_token = opt_str(acl_token, "acl_token")?.map(str::to_string);
        config.default_allow = default_allow;
        if leaf_ttl_ms > 0 {
            config.leaf_ttl = Duration::from_millis(leaf_ttl_ms);
        }
        let agent = DevAgent::start(config)?;
        set_out(out, into_handle(consulnative_dev_agent { agent }));
        Ok(())
    })
}

/// Writes the agent's HTTP address as `ip:port` (usable as the client `address` key or `CONSUL_HTTP_ADDR`).
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_address(agent: *const consulnative_dev_agent, buf: *mut c_char, len: usize, out_n: *mut usize) -> u32 {
    call(|| write_text(&arg_ref(agent, "agent")?.agent.addr().to_string(), buf, len, out_n))
}

/// Writes the CA's trust domain (`<uuid>.consul`).
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_trust_domain(agent: *const consulnative_dev_agent, buf: *mut c_char, len: usize, out_n: *mut usize) -> u32 {
    call(|| write_text(&arg_ref(agent, "agent")?.agent.trust_domain(), buf, len, out_n))
}

/// Creates or replaces the intention `source => destination` (`"*"` allowed for either) as allow or deny.
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_set_intention(agent: *const consulnative_dev_agent, source: *const c_char, destination: *const c_char, allow: bool) -> u32 {
    call(|| {
        let agent = arg_ref(agent, "agent")?;
        agent.agent.set_intention(arg_str(source, "source")?, arg_str(destination, "destination")?, allow);
        Ok(())
    })
}

/// Deletes the intention `source => destination` (no-op if absent).
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_delete_intention(agent: *const consulnative_dev_agent, source: *const c_char, destination: *const c_char) -> u32 {
    call(|| {
        let agent = arg_ref(agent, "agent")?;
        agent.agent.delete_intention(arg_str(source, "source")?, arg_str(destination, "destination")?);
        Ok(())
    })
}

/// Rotates the CA: a new active root, the old one kept, a cross-signed intermediate, every leaf reissued.
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_rotate_ca(agent: *const consulnative_dev_agent) -> u32 {
    call(|| arg_ref(agent, "agent")?.agent.rotate_ca())
}

/// Makes the agent misbehave, for failure tests. `endpoint`: `"all"`, `"roots"`, `"leaf"` or `"authorize"`.
/// `kind`: `"status"` (answer HTTP `value` with text `body`), `"malformed"` (invalid JSON), `"delay"` (answer
/// `value` ms late), `"backwards_index"` (an index smaller than the last one). Faults stay until cleared.
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_set_fault(
    agent: *const consulnative_dev_agent,
    endpoint: *const c_char,
    kind: *const c_char,
    value: u32,
    body: *const c_char,
) -> u32 {
    call(|| {
        let agent = arg_ref(agent, "agent")?;
        let endpoint = match arg_str(endpoint, "endpoint")? {
            "all" => FaultEndpoint::All,
            "roots" => FaultEndpoint::Roots,
            "leaf" => FaultEndpoint::Leaf,
            "authorize" => FaultEndpoint::Authorize,
            other => return Err(Error::invalid(format!("unknown fault endpoint {other:?}"))),
        };
        let kind = match arg_str(kind, "kind")? {
            "status" => FaultKind::Status(
                u16::try_from(value).map_err(|_| Error::invalid(format!("bad HTTP status {value}")))?,
                opt_str(body, "body")?.unwrap_or("").to_string(),
            ),
            "malformed" => FaultKind::MalformedJson,
            "delay" => FaultKind::Delay(Duration::from_millis(value as u64)),
            "backwards_index" => FaultKind::BackwardsIndex,
            other => return Err(Error::invalid(format!("unknown fault kind {other:?}"))),
        };
        agent.agent.set_fault(Fault { endpoint, kind });
        Ok(())
    })
}

/// Clears every fault.
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_clear_faults(agent: *const consulnative_dev_agent) -> u32 {
    call(|| {
        arg_ref(agent, "agent")?.agent.clear_faults();
        Ok(())
    })
}

/// Signs an ad-hoc leaf for `service` with the active CA, valid between two Unix times (seconds; may be in the
/// past, for expired-certificate tests), and writes it as the agent's leaf JSON (`CertPEM`, `PrivateKeyPEM`, ...).
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_issue_leaf(
    agent: *const consulnative_dev_agent,
    service: *const c_char,
    not_before_unix: i64,
    not_after_unix: i64,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> u32 {
    call(|| {
        let agent = arg_ref(agent, "agent")?;
        let leaf = agent.agent.issue_leaf(arg_str(service, "service")?, unix_time(not_before_unix)?, unix_time(not_after_unix)?)?;
        let json = serde_json::to_string(&leaf).map_err(|e| Error::internal(e.to_string()))?;
        write_text(&json, buf, len, out_n)
    })
}

/// A Unix time a certificate can carry: 1950-01-01 (UTCTime's start) to 9999-12-31 (GeneralizedTime's end).
fn unix_time(secs: i64) -> Result<SystemTime> {
    const FIRST: i64 = -631_152_000;
    const LAST: i64 = 253_402_300_799;
    if !(FIRST..=LAST).contains(&secs) {
        return Err(Error::invalid(format!("time {secs} is outside what a certificate can hold ({FIRST}..={LAST})")));
    }
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    t.ok_or_else(|| Error::invalid(format!("time {secs} out of range")))
}

/// Stops the agent (its port closes; clients see it as down). Idempotent; NULL is a no-op.
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_stop(agent: *const consulnative_dev_agent) {
    call_void(|| {
        if let Ok(a) = arg_ref(agent, "agent") {
            a.agent.stop()
        }
    })
}

/// Stops and frees the agent. NULL is a no-op.
#[no_mangle]
pub extern "C" fn consulnative_dev_agent_free(agent: *mut consulnative_dev_agent) {
    call_void(|| free_handle(agent))
}
