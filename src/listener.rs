//! Listeners: accept, refusal reports, the application's extra peer check.

use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, Mutex};

use super::args::{arg_ref, call, call_void, free_handle, into_handle, out_ptr, set_out, timeout_ms, write_text};
use super::conn::consulnative_conn;
use super::{consulnative_drop_callback, ForeignCallback};

use crate::result::consulnative_result;
use consulnative_core::api::{Listener, PeerCheck, PeerIdentity, Refusal, RefusalCallback};

/// A listening Connect endpoint of one service.
pub struct consulnative_listener {
    listener: Listener,
    on_refused: Mutex<Option<Arc<ForeignCallback>>>,
    peer_check: Mutex<Option<Arc<ForeignCallback>>>,
}

impl consulnative_listener {
    pub(crate) fn new(listener: Listener) -> Self {
        consulnative_listener { listener, on_refused: Mutex::new(None), peer_check: Mutex::new(None) }
    }
}

/// Puts `new` in `slot` and retires the callback it replaces (its drop runs before this returns).
fn replace_callback(slot: &Mutex<Option<Arc<ForeignCallback>>>, new: Option<Arc<ForeignCallback>>) {
    let old = std::mem::replace(&mut *slot.lock().unwrap_or_else(|e| e.into_inner()), new);
    if let Some(old) = old {
        old.retire();
    }
}

impl Drop for consulnative_listener {
    fn drop(&mut self) {
        self.listener.close();
        replace_callback(&self.on_refused, None);
        replace_callback(&self.peer_check, None);
    }
}

/// Told about each refused inbound connection: `result` is why (a `consulnative_result`: e.g.
/// `CONSULNATIVE_RESULT_AUTHORIZATION_DENIED`), `peer_address` is `ip:port`, `peer_uri` the client's SPIFFE URI
/// or NULL if the handshake failed before it was known, `message` the detail (the agent's reason). Strings are
/// valid only during the call. Runs on the listener's own refusal thread, one call at a time, never on a thread
/// that handshakes or authorizes: a slow callback delays only later refusal reports. When more than
/// `refusal_queue` (a config key, default 256) refusals wait, the others are counted and reported in one call
/// whose message starts "N refusals dropped" (address, URI and result are then the last one's).
pub type consulnative_refusal_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        result: consulnative_result,
        peer_address: *const c_char,
        peer_uri: *const c_char,
        message: *const c_char,
    ),
>;

/// An application's own check of a client the agent allowed: return 0 to admit it, anything else to refuse it
/// (`CONSULNATIVE_RESULT_REJECTED_BY_APPLICATION`). Strings are valid only during the call. Runs on one of the
/// listener's own peer check threads (`peer_check_threads`, default 2), once per connection, before `accept`
/// returns the connection. No answer within the authorize timeout refuses the connection
/// (`CONSULNATIVE_RESULT_AUTHORIZATION_FAILED`).
pub type consulnative_peer_check_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, peer_uri: *const c_char, peer_service: *const c_char) -> i32>;

/// Writes the bound address (`127.0.0.1:41234`, `[::1]:8443`), with the real port when bound to port 0.
#[no_mangle]
pub extern "C" fn consulnative_listener_address(
    listener: *const consulnative_listener,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| write_text(&arg_ref(listener, "listener")?.listener.local_addr().to_string(), buf, len, out_n))
}

/// Waits for the next verified and authorized connection. `timeout_ms < 0` waits forever; on timeout
/// `CONSULNATIVE_RESULT_TIMEOUT`; after `consulnative_listener_close`, `CONSULNATIVE_RESULT_CLOSED`. Refused
/// connections never come out of here: see `consulnative_listener_on_refused`.
#[no_mangle]
pub extern "C" fn consulnative_listener_accept(
    listener: *const consulnative_listener,
    timeout_ms_: i64,
    out: *mut *mut consulnative_conn,
) -> consulnative_result {
    call(|| {
        out_ptr(out, "out")?;
        let conn = arg_ref(listener, "listener")?.listener.accept(timeout_ms(timeout_ms_))?;
        set_out(out, into_handle(consulnative_conn::new(conn)));
        Ok(())
    })
}

/// Sets (or with a NULL callback clears) the callback told about refused connections. The previous callback's
/// `drop` runs before this returns, once its running calls are done; `consulnative_listener_free` does the same.
#[no_mangle]
pub extern "C" fn consulnative_listener_on_refused(
    listener: *const consulnative_listener,
    callback: consulnative_refusal_callback,
    userdata: *mut c_void,
    drop: consulnative_drop_callback,
) -> consulnative_result {
    call(|| {
        let listener = arg_ref(listener, "listener")?;
        let foreign = callback.map(|_| ForeignCallback::new(userdata, drop));
        let hook = callback.zip(foreign.clone()).map(|(f, foreign)| {
            Arc::new(move |r: &Refusal| {
                let addr = cstring(&r.peer_addr.to_string());
                let uri = r.peer_uri.as_deref().map(cstring);
                let message = cstring(r.error.message());
                let uri_ptr = uri.as_ref().map_or(std::ptr::null(), |u| u.as_ptr());
                // SAFETY: the application's callback with its own userdata and strings valid for the call.
                foreign.call(|ud| unsafe { f(ud, r.error.kind().into(), addr.as_ptr(), uri_ptr, message.as_ptr()) });
            }) as RefusalCallback
        });
        listener.listener.set_refusal_callback(hook);
        replace_callback(&listener.on_refused, foreign);
        Ok(())
    })
}

/// Sets (or with a NULL callback clears) the application's own peer check, run after the agent allowed a client.
#[no_mangle]
pub extern "C" fn consulnative_listener_set_peer_check(
    listener: *const consulnative_listener,
    callback: consulnative_peer_check_callback,
    userdata: *mut c_void,
    drop: consulnative_drop_callback,
) -> consulnative_result {
    call(|| {
        let listener = arg_ref(listener, "listener")?;
        let foreign = callback.map(|_| ForeignCallback::new(userdata, drop));
        let check = callback.zip(foreign.clone()).map(|(f, foreign)| {
            Arc::new(move |peer: &PeerIdentity| {
                let uri = cstring(&peer.uri);
                let service = cstring(&peer.service);
                // SAFETY: the application's callback with its own userdata and strings valid for the call.
                match foreign.call(|ud| unsafe { f(ud, uri.as_ptr(), service.as_ptr()) }) {
                    Some(0) => Ok(()),
                    Some(n) => Err(format!("the application's peer check returned {n}")),
                    None => Err("the listener is being freed".to_string()),
                }
            }) as PeerCheck
        });
        listener.listener.set_peer_check(check);
        replace_callback(&listener.peer_check, foreign);
        Ok(())
    })
}

/// Counts of connections admitted and refused so far.
#[no_mangle]
pub extern "C" fn consulnative_listener_counts(
    listener: *const consulnative_listener,
    out_accepted: *mut u64,
    out_refused: *mut u64,
) -> consulnative_result {
    call(|| {
        out_ptr(out_accepted, "out_accepted")?;
        out_ptr(out_refused, "out_refused")?;
        let (a, r) = arg_ref(listener, "listener")?.listener.counts();
        set_out(out_accepted, a);
        set_out(out_refused, r);
        Ok(())
    })
}

/// Writes the listener's counters and limits as a JSON object: `accepted`, `refused`, `refusals_dropped`
/// (refusals the refusal callback could not be told about one by one: its queue was full, and it got one
/// "N refusals dropped" refusal instead), `handshakes_cut` (TLS handshakes cut because every handshake slot was
/// taken), `accept_errors` (e.g. no descriptors left), `saturated` (times the listener stopped accepting because
/// every handshake slot was taken), `in_progress` (connections between accept and admission now), `waiting`
/// (admitted connections waiting for `consulnative_listener_accept`), and `limits` {`max_handshakes`,
/// `accept_queue`, `refusal_queue`, `max_authorizations`, `peer_check_threads`, `busy_handshake_timeout_ms`}.
#[no_mangle]
pub extern "C" fn consulnative_listener_stats(
    listener: *const consulnative_listener,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| {
        let listener = &arg_ref(listener, "listener")?.listener;
        let s = listener.stats();
        let l = listener.limits();
        let json = serde_json::json!({
            "accepted": s.accepted,
            "refused": s.refused,
            "refusals_dropped": s.refusals_dropped,
            "handshakes_cut": s.handshakes_cut,
            "accept_errors": s.accept_errors,
            "saturated": s.saturated,
            "in_progress": s.in_progress,
            "waiting": s.waiting,
            "limits": {
                "max_handshakes": l.max_handshakes,
                "accept_queue": l.accept_queue,
                "refusal_queue": l.refusal_queue,
                "max_authorizations": l.max_authorizations,
                "peer_check_threads": l.peer_check_threads,
                "busy_handshake_timeout_ms": l.busy_handshake_timeout.as_millis() as u64,
            },
        });
        write_text(&json.to_string(), buf, len, out_n)
    })
}

/// Stops accepting and releases the port; a blocked `accept` returns `CONSULNATIVE_RESULT_CLOSED`. Safe to call
/// from another thread while `accept` waits. Idempotent; NULL is a no-op.
#[no_mangle]
pub extern "C" fn consulnative_listener_close(listener: *const consulnative_listener) {
    call_void(|| {
        if let Ok(l) = arg_ref(listener, "listener") {
            l.listener.close()
        }
    })
}

/// Closes and frees a listener. Connections already accepted keep working. NULL is a no-op.
#[no_mangle]
pub extern "C" fn consulnative_listener_free(listener: *mut consulnative_listener) {
    call_void(|| free_handle(listener))
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}
