//! Connections: blocking read and write with timeouts, half-close, peer identity, descriptor handoff.

use std::ffi::c_char;

use super::args::{
    arg_bytes, arg_bytes_mut, arg_ref, call, call_void, free_handle, out_ptr, set_out, timeout_ms, write_text,
};
use std::os::fd::IntoRawFd;

use crate::result::consulnative_result;
use consulnative_core::api::Conn;

/// An established mutual-TLS connection with a verified (and, inbound, authorized) peer. One thread may read
/// while another writes.
pub struct consulnative_conn {
    conn: Conn,
}

impl consulnative_conn {
    pub(crate) fn new(conn: Conn) -> Self {
        consulnative_conn { conn }
    }
}

/// Reads up to `len` bytes into `buf`; `*out_n` receives the count, 0 meaning the peer closed its side.
/// `timeout_ms < 0`: no timeout; on timeout `CONSULNATIVE_RESULT_TIMEOUT` and nothing was read.
#[no_mangle]
pub extern "C" fn consulnative_conn_read(
    conn: *const consulnative_conn,
    buf: *mut u8,
    len: usize,
    timeout_ms_: i64,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| {
        out_ptr(out_n, "out_n")?;
        set_out(out_n, 0);
        let conn = arg_ref(conn, "conn")?;
        let buf = arg_bytes_mut(buf, len, "buf")?;
        let n = conn.conn.read(buf, timeout_ms(timeout_ms_))?;
        set_out(out_n, n);
        Ok(())
    })
}

/// Writes all `len` bytes of `buf` and flushes them. `*out_n` receives how many bytes were taken, also when the
/// call fails (timeout, peer gone). `timeout_ms < 0`: no timeout.
#[no_mangle]
pub extern "C" fn consulnative_conn_write(
    conn: *const consulnative_conn,
    buf: *const u8,
    len: usize,
    timeout_ms_: i64,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| {
        out_ptr(out_n, "out_n")?;
        set_out(out_n, 0);
        let conn = arg_ref(conn, "conn")?;
        let data = arg_bytes(buf, len, "buf")?;
        let mut written = 0;
        let result = conn.conn.write_all(data, timeout_ms(timeout_ms_), &mut written);
        set_out(out_n, written);
        Ok(result?)
    })
}

/// Ends our sending side (TLS close_notify, TCP half-close); the peer reads end of stream. Reading stays possible.
#[no_mangle]
pub extern "C" fn consulnative_conn_shutdown(conn: *const consulnative_conn, timeout_ms_: i64) -> consulnative_result {
    call(|| Ok(arg_ref(conn, "conn")?.conn.shutdown_write(timeout_ms(timeout_ms_))?))
}

/// Closes the connection: sends TLS close_notify (waiting at most `timeout_ms` for the socket to take it; 0 sends
/// what it takes at once, `< 0` waits without limit), then shuts the socket down both ways, so a read blocked in
/// another thread returns `CONSULNATIVE_RESULT_CLOSED`. Idempotent; a no-op after `consulnative_conn_handoff`.
/// The handle stays valid until `consulnative_conn_free`; later reads and writes return
/// `CONSULNATIVE_RESULT_CLOSED`. A failed close_notify (peer gone, timeout) is reported, but the connection is
/// closed either way.
#[no_mangle]
pub extern "C" fn consulnative_conn_close(conn: *const consulnative_conn, timeout_ms_: i64) -> consulnative_result {
    call(|| Ok(arg_ref(conn, "conn")?.conn.close(timeout_ms(timeout_ms_))?))
}

/// Writes the connection's details as a JSON object: `peer` {`uri`, `service`, `namespace`, `partition`,
/// `datacenter`, `trust_domain`, `serial`}, `local_address`, `peer_address`, `alpn` (null if none).
#[no_mangle]
pub extern "C" fn consulnative_conn_info(
    conn: *const consulnative_conn,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> consulnative_result {
    call(|| {
        let c = &arg_ref(conn, "conn")?.conn;
        let p = c.peer();
        let json = serde_json::json!({
            "peer": {
                "uri": p.uri, "service": p.service, "namespace": p.namespace, "partition": p.partition,
                "datacenter": p.datacenter, "trust_domain": p.trust_domain, "serial": p.serial,
            },
            "local_address": c.local_addr().map(|a| a.to_string()),
            "peer_address": c.peer_addr().map(|a| a.to_string()),
            "alpn": c.alpn().map(|a| String::from_utf8_lossy(a).into_owned()),
        });
        write_text(&json.to_string(), buf, len, out_n)
    })
}

/// Hands the connection over as a plain stream socket: `*out_fd` is a new descriptor (yours to close) carrying
/// the plaintext, while the library carries the TLS stream on its runtime. EOF and half-close pass through both
/// ways. Afterwards the handle only answers `consulnative_conn_info`; read and write return
/// `CONSULNATIVE_RESULT_CLOSED`. Free the handle as usual; that does not close the descriptor.
#[no_mangle]
pub extern "C" fn consulnative_conn_handoff(conn: *const consulnative_conn, out_fd: *mut i32) -> consulnative_result {
    call(|| {
        out_ptr(out_fd, "out_fd")?;
        let fd = arg_ref(conn, "conn")?.conn.handoff()?;
        set_out(out_fd, fd.into_raw_fd());
        Ok(())
    })
}

/// Closes (without close_notify if `consulnative_conn_shutdown` was not called) and frees a connection. NULL is
/// a no-op. Must not race with other calls on the same connection.
#[no_mangle]
pub extern "C" fn consulnative_conn_free(conn: *mut consulnative_conn) {
    call_void(|| free_handle(conn))
}
