//! Safe wrappers over the C ABI for the integration tests: every test drives the exported `consulnative_*`
//! functions (the same symbols C, Python and Ruby call) against a real dev agent over real sockets.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use consulnative::*;
use consulnative_core::api::wire::LeafCert;
use consulnative_devagent::process::{DevAgentOptions, DevAgentProcess};
use consulnative_devagent::{Fault, FaultEndpoint, FaultKind};

/// A failed call: the result code and the thread's last error message.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: u32,
    pub message: String,
}

pub fn check(rc: consulnative_result) -> Result<(), Failure> {
    if rc == consulnative_result::Ok {
        Ok(())
    } else {
        Err(Failure { code: rc as u32, message: last_error() })
    }
}

pub fn last_error() -> String {
    read_text(|buf, len, n| consulnative_last_error(buf, len, n)).unwrap_or_default()
}

/// Calls a (buf, len, out_n) function: once to size, then to fill (again if the text grew in between).
pub fn read_text(f: impl Fn(*mut c_char, usize, *mut usize) -> consulnative_result) -> Result<String, u32> {
    let mut n = 0usize;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let rc = f(if buf.is_empty() { ptr::null_mut() } else { buf.as_mut_ptr() as *mut c_char }, buf.len(), &mut n);
        match rc {
            consulnative_result::Ok => {
                buf.truncate(n);
                return Ok(String::from_utf8(buf).expect("utf-8"));
            }
            consulnative_result::BufferTooSmall => buf = vec![0u8; n + 1],
            other => return Err(other as u32),
        }
    }
}

pub fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A dev agent: the `consulnative-dev-agent` binary as a child process, controlled over HTTP.
pub struct Agent(pub DevAgentProcess);

impl Agent {
    pub fn start() -> Agent {
        Agent::start_with(None, None, true, 0)
    }
    pub fn start_with(addr: Option<&str>, token: Option<&str>, default_allow: bool, leaf_ttl_ms: u64) -> Agent {
        Agent::try_start(addr, token, default_allow, leaf_ttl_ms).expect("dev agent starts")
    }
    pub fn try_start(
        addr: Option<&str>,
        token: Option<&str>,
        default_allow: bool,
        leaf_ttl_ms: u64,
    ) -> Result<Agent, String> {
        let options = DevAgentOptions {
            http_addr: addr.map(str::to_string),
            acl_token: token.map(str::to_string),
            default_deny: !default_allow,
            leaf_ttl: (leaf_ttl_ms > 0).then(|| Duration::from_millis(leaf_ttl_ms)),
            ..Default::default()
        };
        DevAgentProcess::start(options).map(Agent).map_err(|e| e.to_string())
    }
    pub fn address(&self) -> String {
        self.0.address().to_string()
    }
    pub fn trust_domain(&self) -> String {
        self.0.trust_domain().unwrap()
    }
    pub fn intention(&self, src: &str, dst: &str, allow: bool) {
        self.0.set_intention(src, dst, allow).unwrap();
    }
    pub fn delete_intention(&self, src: &str, dst: &str) {
        self.0.delete_intention(src, dst).unwrap();
    }
    pub fn rotate_ca(&self) {
        self.0.rotate_ca().unwrap();
    }
    /// A fault as the C ABI used to take it: `kind` is `status` (`value` = HTTP status, `body`), `malformed`,
    /// `delay` (`value` ms) or `backwards_index`.
    pub fn fault(&self, endpoint: &str, kind: &str, value: u32, body: &str) {
        let endpoint = match endpoint {
            "all" => FaultEndpoint::All,
            "roots" => FaultEndpoint::Roots,
            "leaf" => FaultEndpoint::Leaf,
            "authorize" => FaultEndpoint::Authorize,
            other => panic!("unknown fault endpoint {other}"),
        };
        let kind = match kind {
            "status" => FaultKind::Status(value as u16, body.to_string()),
            "malformed" => FaultKind::MalformedJson,
            "delay" => FaultKind::Delay(Duration::from_millis(value as u64)),
            "backwards_index" => FaultKind::BackwardsIndex,
            other => panic!("unknown fault kind {other}"),
        };
        self.0.set_fault(&Fault { endpoint, kind }).unwrap();
    }
    pub fn clear_faults(&self) {
        self.0.clear_faults().unwrap();
    }
    pub fn issue_leaf(&self, service: &str, not_before: i64, not_after: i64) -> LeafCert {
        self.0.issue_leaf(service, not_before, not_after).unwrap()
    }
    pub fn stop(&self) {
        self.0.stop();
    }
}

pub struct Client(pub *mut consulnative_client);
// SAFETY: the header allows any library call on a handle from any thread; `_free` runs once, on drop.
unsafe impl Send for Client {}
// SAFETY: functions taking a const handle may run concurrently on it (the header's thread-safety rules).
unsafe impl Sync for Client {}

/// Fast watch timing for tests: short blocking waits and retries.
pub const FAST: &[(&str, &str)] = &[("blocking_wait_ms", "2000"), ("retry_max_ms", "300")];

impl Client {
    pub fn new(address: &str, extra: &[(&str, &str)]) -> Client {
        Client::try_new(address, extra).expect("client")
    }
    pub fn try_new(address: &str, extra: &[(&str, &str)]) -> Result<Client, Failure> {
        let mut cfg = ptr::null_mut();
        check(consulnative_config_new(&mut cfg))?;
        let set = |k: &str, v: &str| check(consulnative_config_set(cfg, c(k).as_ptr(), c(v).as_ptr()));
        let result = (|| {
            set("address", address)?;
            for (k, v) in FAST.iter().chain(extra.iter()) {
                set(k, v)?;
            }
            let mut out = ptr::null_mut();
            check(consulnative_client_new(cfg, &mut out))?;
            Ok(Client(out))
        })();
        consulnative_config_free(cfg);
        result
    }
    pub fn service(&self, name: &str) -> Service {
        let mut out = ptr::null_mut();
        check(consulnative_service_new(self.0, c(name).as_ptr(), &mut out)).unwrap();
        Service(out)
    }
    pub fn register(&self, name: &str, id: &str, port: u16, check_spec: &str) -> Result<(), Failure> {
        check(consulnative_client_register(
            self.0,
            c(name).as_ptr(),
            c(id).as_ptr(),
            c("127.0.0.1").as_ptr(),
            port,
            ptr::null(),
            c(check_spec).as_ptr(),
        ))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        consulnative_client_free(self.0);
    }
}

pub struct Service(pub *mut consulnative_service);
// SAFETY: the header allows any library call on a handle from any thread; `_free` runs once, on drop.
unsafe impl Send for Service {}
// SAFETY: functions taking a const handle may run concurrently on it (the header's thread-safety rules).
unsafe impl Sync for Service {}

impl Service {
    pub fn wait_ready(&self, timeout_ms: i64) -> Result<(), Failure> {
        check(consulnative_service_wait_ready(self.0, timeout_ms))
    }
    pub fn ready(self, timeout_ms: i64) -> Service {
        self.wait_ready(timeout_ms).expect("service ready");
        self
    }
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&read_text(|b, l, n| consulnative_service_status(self.0, b, l, n)).unwrap()).unwrap()
    }
    pub fn pem(&self, kind: u32) -> String {
        read_text(|b, l, n| consulnative_service_pem(self.0, kind, b, l, n)).unwrap()
    }
    pub fn listen(&self, addr: &str) -> Listener {
        let mut out = ptr::null_mut();
        check(consulnative_service_listen(self.0, c(addr).as_ptr(), ptr::null(), &mut out)).unwrap();
        Listener(out)
    }
    pub fn dial_address(&self, addr: &str, expected: &str, timeout_ms: i64) -> Result<Conn, Failure> {
        let mut out = ptr::null_mut();
        check(consulnative_service_dial_address(
            self.0,
            c(addr).as_ptr(),
            c(expected).as_ptr(),
            ptr::null(),
            timeout_ms,
            &mut out,
        ))?;
        Ok(Conn(out))
    }
    pub fn dial(&self, target: &str, timeout_ms: i64) -> Result<Conn, Failure> {
        let mut out = ptr::null_mut();
        check(consulnative_service_dial(self.0, c(target).as_ptr(), ptr::null(), ptr::null(), timeout_ms, &mut out))?;
        Ok(Conn(out))
    }
    pub fn serial(&self) -> String {
        self.status()["leaf_serial"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        consulnative_service_free(self.0);
    }
}

/// Refusals seen by a listener: (result code, peer URI, message).
pub type RefusalLog = std::sync::Mutex<Vec<(u32, Option<String>, String)>>;

pub struct Listener(pub *mut consulnative_listener);
// SAFETY: the header allows any library call on a handle from any thread; `_free` runs once, on drop.
unsafe impl Send for Listener {}
// SAFETY: functions taking a const handle may run concurrently on it (the header's thread-safety rules).
unsafe impl Sync for Listener {}

impl Listener {
    pub fn address(&self) -> String {
        read_text(|b, l, n| consulnative_listener_address(self.0, b, l, n)).unwrap()
    }
    pub fn accept(&self, timeout_ms: i64) -> Result<Conn, Failure> {
        let mut out = ptr::null_mut();
        check(consulnative_listener_accept(self.0, timeout_ms, &mut out))?;
        Ok(Conn(out))
    }
    pub fn counts(&self) -> (u64, u64) {
        let (mut a, mut r) = (0, 0);
        check(consulnative_listener_counts(self.0, &mut a, &mut r)).unwrap();
        (a, r)
    }
    /// Records refusals as (code, peer uri, message).
    pub fn record_refusals(&self) -> std::sync::Arc<RefusalLog> {
        use std::sync::{Arc, Mutex};
        type Log = RefusalLog;
        unsafe extern "C" fn on_refused(
            ud: *mut libc::c_void,
            code: consulnative_result,
            _addr: *const c_char,
            uri: *const c_char,
            msg: *const c_char,
        ) {
            let log = &*(ud as *const Log);
            let uri = if uri.is_null() { None } else { Some(CStr::from_ptr(uri).to_string_lossy().into_owned()) };
            log.lock().unwrap().push((code as u32, uri, CStr::from_ptr(msg).to_string_lossy().into_owned()));
        }
        unsafe extern "C" fn drop_log(ud: *mut libc::c_void) {
            drop(Arc::from_raw(ud as *const Log));
        }
        let log: Arc<Log> = Arc::new(Mutex::new(Vec::new()));
        let ud = Arc::into_raw(log.clone()) as *mut libc::c_void;
        check(consulnative_listener_on_refused(self.0, Some(on_refused), ud, Some(drop_log))).unwrap();
        log
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        consulnative_listener_free(self.0);
    }
}

pub struct Conn(pub *mut consulnative_conn);
// SAFETY: the header allows any library call on a handle from any thread; `_free` runs once, on drop.
unsafe impl Send for Conn {}
// SAFETY: functions taking a const handle may run concurrently on it (the header's thread-safety rules).
unsafe impl Sync for Conn {}

impl Conn {
    pub fn write(&self, data: &[u8]) -> Result<(), Failure> {
        let mut n = 0;
        check(consulnative_conn_write(self.0, data.as_ptr(), data.len(), 5000, &mut n))
    }
    pub fn read(&self, len: usize, timeout_ms: i64) -> Result<Vec<u8>, Failure> {
        let mut buf = vec![0u8; len];
        let mut n = 0;
        check(consulnative_conn_read(self.0, buf.as_mut_ptr(), buf.len(), timeout_ms, &mut n))?;
        buf.truncate(n);
        Ok(buf)
    }
    /// Reads exactly `len` bytes (or fails).
    pub fn read_exact(&self, len: usize) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        while out.len() < len {
            let chunk = self.read(len - out.len(), 5000)?;
            if chunk.is_empty() {
                return Err(Failure { code: 15, message: format!("EOF after {} bytes", out.len()) });
            }
            out.extend(chunk);
        }
        Ok(out)
    }
    pub fn info(&self) -> serde_json::Value {
        serde_json::from_str(&read_text(|b, l, n| consulnative_conn_info(self.0, b, l, n)).unwrap()).unwrap()
    }
    pub fn shutdown(&self) -> Result<(), Failure> {
        check(consulnative_conn_shutdown(self.0, 5000))
    }
    pub fn close(&self, timeout_ms: i64) -> Result<(), Failure> {
        check(consulnative_conn_close(self.0, timeout_ms))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        consulnative_conn_free(self.0);
    }
}

/// An echo server on a listener, in a thread: echoes every accepted connection until EOF.
pub fn echo_server(listener: std::sync::Arc<Listener>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while let Ok(conn) = listener.accept(-1) {
            std::thread::spawn(move || loop {
                match conn.read(16 * 1024, -1) {
                    Ok(d) if !d.is_empty() => {
                        if conn.write(&d).is_err() {
                            return;
                        }
                    }
                    _ => {
                        let _ = conn.shutdown();
                        return;
                    }
                }
            });
        }
    })
}

/// Waits until `f` is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("consulnative-{tag}-{}-{}", std::process::id(), next_temp_id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn next_temp_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub const PEM_LEAF_CHAIN: u32 = 1;
pub const PEM_LEAF_KEY: u32 = 2;
pub const PEM_ROOTS: u32 = 3;

pub const ERR_NULL: u32 = 1;
pub const ERR_INVALID: u32 = 2;
pub const ERR_UNREACHABLE: u32 = 3;
pub const ERR_AGENT: u32 = 4;
pub const ERR_PERMISSION: u32 = 5;
pub const ERR_BAD_RESPONSE: u32 = 6;
pub const ERR_NOT_READY: u32 = 7;
pub const ERR_TIMEOUT: u32 = 8;
pub const ERR_HANDSHAKE: u32 = 9;
pub const ERR_CERT_INVALID: u32 = 10;
pub const ERR_IDENTITY: u32 = 11;
pub const ERR_DENIED: u32 = 12;
pub const ERR_AUTHZ_FAILED: u32 = 13;
pub const ERR_CLOSED: u32 = 15;
pub const ERR_NO_INSTANCES: u32 = 16;
pub const ERR_REJECTED: u32 = 19;

/// Wraps a descriptor from `consulnative_conn_handoff` as a std socket.
///
/// # Safety
/// `fd` must be an open descriptor the caller owns.
pub unsafe fn fd_stream(fd: i32) -> std::os::unix::net::UnixStream {
    use std::os::fd::FromRawFd;
    std::os::unix::net::UnixStream::from_raw_fd(fd)
}
