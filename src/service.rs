//! Services: readiness, status, certificates as PEM, change callbacks, listening and dialing.

use std::ffi::{c_char, c_void, CString};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use super::args::{
    alpn_list, arg_ref, arg_str, call, call_void, free_handle, into_handle, opt_str, out_ptr, set_out, timeout_ms,
    write_text,
};
use super::client::consulnative_client;
use super::conn::consulnative_conn;
use super::listener::consulnative_listener;
use super::{consulnative_drop_callback, ForeignCallback};
use crate::enums::{consulnative_event, consulnative_pem_kind};
use crate::result::{consulnative_result, AbiError as Error, AbiResult as Result};
use consulnative_core::api::{DialOptions, DialTarget, ListenOptions, PemFilesWrite, Service, ServiceEvent};

/// One service identity: its leaf certificate and the client's CA roots, kept fresh in the background.
pub struct consulnative_service {
    pub(crate) service: Service,
    callbacks: Mutex<Vec<(u64, Arc<ForeignCallback>)>>,
}

impl consulnative_service {
    /// Unregisters callbacks (all, or the one with `id`) and retires them: their drops run before this returns.
    fn remove_callbacks(&self, id: Option<u64>) {
        let removed: Vec<Arc<ForeignCallback>> = {
            let mut list = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
            let (gone, kept) = list.drain(..).partition(|(i, _)| id.is_none_or(|id| id == *i));
            *list = kept;
            gone.into_iter()
                .map(|(i, cb)| {
                    self.service.remove_event_callback(i);
                    cb
                })
                .collect()
        };
        for cb in removed {
            cb.retire();
        }
    }
}

impl Drop for consulnative_service {
    fn drop(&mut self) {
        self.remove_callbacks(None);
    }
}

/// A change callback: `event` is a `consulnative_event`. Runs on a library watch thread; keep it short and do not
/// free the service from inside it.
pub type consulnative_event_callback = Option<unsafe extern "C" fn(userdata: *mut c_void, event: consulnative_event)>;

/// Starts watching the leaf certificate of service `name` (and the client's CA roots). The service is not ready
/// at once: call `consulnative_service_wait_ready`. Free it with `consulnative_service_free`.
#[no_mangle]
pub extern "C" fn consulnative_service_new(
    client: *const consulnative_client,
    name: *const c_char,
    out: *mut *mut consulnative_service,
) -> consulnative_result {
    call(|| {
        out_ptr(out, "out")?;
        let client = arg_ref(client, "client")?;
        let service = client.client.service(arg_str(name, "name")?)?;
        set_out(out, into_handle(consulnative_service { service, callbacks: Mutex::new(Vec::new()) }));
        Ok(())
    })
}

/// Frees a service and removes its callbacks (their drop callbacks run before this returns). Its leaf watch stops
/// once no listener or connection made from it is left: those keep working (and their certificates fresh) until
/// freed. NULL is a no-op.
#[no_mangle]
pub extern "C" fn consulnative_service_free(service: *mut consulnative_service) {
    call_void(|| free_handle(service))
}

/// Waits until the service has a leaf and CA roots and the leaf verifies against them. `timeout_ms < 0` waits
/// forever. On timeout: `CONSULNATIVE_RESULT_NOT_READY`, with the reason and the last agent error in the message.
#[no_mangle]
pub extern "C" fn consulnative_service_wait_ready(
    service: *const consulnative_service,
    timeout_ms_: i64,
) -> consulnative_result {
    call(|| Ok(arg_ref(service, "service")?.service.wait_ready(timeout_ms(timeout_ms_))?))
}

/// Writes the service's status as a JSON object: `service`, `ready`, `not_ready_reason`, `spiffe_id`,
/// `leaf_serial`, `leaf_valid_before` (Unix seconds), `trust_domain`, `active_root_id`, `roots` (count),
/// `last_error` (absent values are null).
#[no_mangle]
pub extern "C" fn consulnative_service_status(
    service: *const consulnative_service,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| {
        let s = arg_ref(service, "service")?.service.status();
        let json = serde_json::json!({
            "service": s.service, "ready": s.ready, "not_ready_reason": s.not_ready_reason,
            "spiffe_id": s.spiffe_id, "leaf_serial": s.leaf_serial, "leaf_valid_before": s.leaf_valid_before_unix,
            "trust_domain": s.trust_domain, "active_root_id": s.active_root_id, "roots": s.roots,
            "last_error": s.last_error,
        });
        write_text(&json.to_string(), buf, len, out_n)
    })
}

/// Writes the current leaf chain, leaf private key or CA roots as PEM, for applications that run their own TLS
/// stack. `kind` is a `consulnative_pem_kind`. `CONSULNATIVE_RESULT_NOT_READY` before they arrive.
#[no_mangle]
pub extern "C" fn consulnative_service_pem(
    service: *const consulnative_service,
    kind: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| {
        let service = &arg_ref(service, "service")?.service;
        let text = match kind {
            k if k == consulnative_pem_kind::LeafChain as u32 => service.leaf_chain_pem()?,
            k if k == consulnative_pem_kind::LeafKey as u32 => service.leaf_key_pem()?,
            k if k == consulnative_pem_kind::Roots as u32 => service.roots_pem()?,
            _ => return Err(Error::invalid(format!("unknown PEM kind {kind}"))),
        };
        write_text(&text, buf, len, out_n)
    })
}

/// Adds a change callback (leaf rotated, roots changed, watch error). `drop` (may be NULL) is called with
/// `userdata` once the callback is removed or the service freed. `*out_id` identifies it for removal.
#[no_mangle]
pub extern "C" fn consulnative_service_add_callback(
    service: *const consulnative_service,
    callback: consulnative_event_callback,
    userdata: *mut c_void,
    drop: consulnative_drop_callback,
    out_id: *mut u64,
) -> consulnative_result {
    call(|| {
        out_ptr(out_id, "out_id")?;
        let service = arg_ref(service, "service")?;
        let f = callback.ok_or_else(|| Error::new(consulnative_result::NullArgument, "argument `callback` is NULL"))?;
        let foreign = ForeignCallback::new(userdata, drop);
        let caller = foreign.clone();
        let id = service.service.on_event(Arc::new(move |event: ServiceEvent| {
            // SAFETY: the application's callback with its own userdata.
            caller.call(|ud| unsafe { f(ud, event.into()) });
        }));
        service.callbacks.lock().unwrap_or_else(|e| e.into_inner()).push((id, foreign));
        set_out(out_id, id);
        Ok(())
    })
}

/// Removes a change callback added with `consulnative_service_add_callback`. Once this returns the callback is
/// not running and will not run again, and its drop callback has run (unless called from inside that callback:
/// then the drop runs when the callback returns).
#[no_mangle]
pub extern "C" fn consulnative_service_remove_callback(
    service: *const consulnative_service,
    id: u64,
) -> consulnative_result {
    call(|| {
        arg_ref(service, "service")?.remove_callbacks(Some(id));
        Ok(())
    })
}

/// Told after each write of the PEM files of `consulnative_service_write_pem_files`: `result` is
/// `CONSULNATIVE_RESULT_OK` and `detail` the serial of the leaf now in `cert.pem`, or a failure code and `detail`
/// the message (the previous files stay in place). `detail` is valid during the call only. Runs on the thread that
/// wrote: the caller's for the first write, a library watch thread afterwards.
pub type consulnative_pem_files_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, result: consulnative_result, detail: *const c_char)>;

/// Keeps `<dir>/cert.pem` (leaf and intermediates), `<dir>/key.pem` (mode 0600) and `<dir>/roots.pem` fresh, for
/// programs with their own TLS stack. `dir` is created if missing. The files are written at once if the service is
/// ready (a write error is returned), else as soon as it is, then after every leaf rotation and roots change. Each
/// write fills a new generation directory and switches the three names (symlinks) to it with one rename, so
/// they never resolve to a mismatched certificate and key. `on_change` (may be NULL) is told about every write;
/// `drop` (may be NULL) is called with `userdata` once the writer is removed with
/// `consulnative_service_remove_callback(service, *out_id)` or the service is freed (the files stay).
#[no_mangle]
pub extern "C" fn consulnative_service_write_pem_files(
    service: *const consulnative_service,
    dir: *const c_char,
    on_change: consulnative_pem_files_callback,
    userdata: *mut c_void,
    drop: consulnative_drop_callback,
    out_id: *mut u64,
) -> consulnative_result {
    call(|| {
        out_ptr(out_id, "out_id")?;
        let service = arg_ref(service, "service")?;
        let dir = std::path::PathBuf::from(arg_str(dir, "dir")?);
        let foreign = ForeignCallback::new(userdata, drop);
        let caller = foreign.clone();
        let notify = on_change.map(|f| {
            Arc::new(move |outcome: std::result::Result<&PemFilesWrite, &consulnative_core::api::Error>| {
                let (code, text) = match outcome {
                    Ok(w) => (consulnative_result::Ok, w.leaf_serial.clone()),
                    Err(e) => (consulnative_result::from(e.kind()), e.message().to_string()),
                };
                let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
                // SAFETY: the application's callback with its own userdata; `text` outlives the call.
                caller.call(|ud| unsafe { f(ud, code, text.as_ptr()) });
            }) as consulnative_core::api::PemFilesCallback
        });
        let id = match service.service.write_pem_files(&dir, notify) {
            Ok(id) => id,
            Err(e) => {
                foreign.retire();
                return Err(e.into());
            }
        };
        service.callbacks.lock().unwrap_or_else(|e| e.into_inner()).push((id, foreign));
        set_out(out_id, id);
        Ok(())
    })
}

/// Asks the agent whether this service, with its current leaf, may connect to service `destination` (the
/// question the destination's listener asks for each connection). `CONSULNATIVE_RESULT_OK` when allowed, with the
/// agent's reason written to `buf`; `CONSULNATIVE_RESULT_AUTHORIZATION_DENIED` when denied, the reason in
/// `consulnative_last_error`; `CONSULNATIVE_RESULT_NOT_READY` before the leaf arrives.
#[no_mangle]
pub extern "C" fn consulnative_service_authorize(
    service: *const consulnative_service,
    destination: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| {
        let service = &arg_ref(service, "service")?.service;
        let answer = service.authorize(arg_str(destination, "destination")?)?.into_result()?;
        write_text(&answer.reason, buf, len, out_n)
    })
}

/// Listens on `address` (`"127.0.0.1:0"`, `"[::1]:8443"`, `"0.0.0.0:8443"`) for Connect clients. Every
/// connection is verified (client chain against the current roots) and authorized by the agent before
/// `consulnative_listener_accept` returns it. `alpn` is a comma-separated protocol list (NULL: no ALPN).
#[no_mangle]
pub extern "C" fn consulnative_service_listen(
    service: *const consulnative_service,
    address: *const c_char,
    alpn: *const c_char,
    out: *mut *mut consulnative_listener,
) -> consulnative_result {
    call(|| {
        out_ptr(out, "out")?;
        let service = arg_ref(service, "service")?;
        let addr = socket_addr(arg_str(address, "address")?)?;
        let options = ListenOptions { alpn: alpn_list(opt_str(alpn, "alpn")?), ..Default::default() };
        let listener = service.service.listen(addr, options)?;
        set_out(out, into_handle(consulnative_listener::new(listener)));
        Ok(())
    })
}

/// Dials service `target` through the agent's catalog (healthy connect-native instances and proxies, random
/// order, next on failure), checking the server presents `target`'s SPIFFE identity. `datacenter` and `alpn`
/// may be NULL. `timeout_ms < 0`: no timeout.
#[no_mangle]
pub extern "C" fn consulnative_service_dial(
    service: *const consulnative_service,
    target: *const c_char,
    datacenter: *const c_char,
    alpn: *const c_char,
    timeout_ms_: i64,
    out: *mut *mut consulnative_conn,
) -> consulnative_result {
    call(|| {
        out_ptr(out, "out")?;
        let service = arg_ref(service, "service")?;
        let target = DialTarget::Service {
            name: arg_str(target, "target")?.to_string(),
            datacenter: opt_str(datacenter, "datacenter")?.map(str::to_string),
        };
        dial(service, &target, alpn, timeout_ms_, out)
    })
}

/// Dials `address` (`host:port`) directly. The server must present `expected`: a service name (our trust
/// domain and namespace, any datacenter) or a full `spiffe://` URI. `alpn` may be NULL.
#[no_mangle]
pub extern "C" fn consulnative_service_dial_address(
    service: *const consulnative_service,
    address: *const c_char,
    expected: *const c_char,
    alpn: *const c_char,
    timeout_ms_: i64,
    out: *mut *mut consulnative_conn,
) -> consulnative_result {
    call(|| {
        out_ptr(out, "out")?;
        let service = arg_ref(service, "service")?;
        let target = DialTarget::Address {
            address: arg_str(address, "address")?.to_string(),
            expected: arg_str(expected, "expected")?.to_string(),
        };
        dial(service, &target, alpn, timeout_ms_, out)
    })
}

fn dial(
    service: &consulnative_service,
    target: &DialTarget,
    alpn: *const c_char,
    timeout: i64,
    out: *mut *mut consulnative_conn,
) -> Result<()> {
    let options = DialOptions { timeout: timeout_ms(timeout), alpn: alpn_list(opt_str(alpn, "alpn")?) };
    let conn = service.service.dial(target, &options)?;
    set_out(out, into_handle(consulnative_conn::new(conn)));
    Ok(())
}

fn socket_addr(text: &str) -> Result<SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::invalid(format!("not a listen address: {text:?} (use host:port, [v6]:port)")))
}
