//! What the attack suites share: a raw rustls client that presents whatever chain it is given, junk floods,
//! slow and silent clients, a legitimate prober, and this process's library threads and RSS.
//!
//! Every loop here is bounded (by a count or a deadline), everything stays on loopback, and nothing asserts a
//! tight timing: the suites assert counts and generous bounds.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::common::*;

/// RSS in KiB of this process, and the number of its threads the library started (named `consulnative-*`:
/// runtime workers, blocking-pool threads, callback threads). The tests' own threads are not counted.
pub fn library_threads_and_rss() -> (usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with("consulnative"))
                .count()
        })
        .unwrap_or(0);
    (threads, rss)
}

/// Peak library threads and RSS, sampled by a background thread until dropped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak_threads: Arc<AtomicU64>,
    peak_rss: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start() -> Sampler {
        let (stop, peak_threads, peak_rss) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, t, r) = (stop.clone(), peak_threads.clone(), peak_rss.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let (threads, rss) = library_threads_and_rss();
                t.fetch_max(threads as u64, Ordering::Relaxed);
                r.fetch_max(rss, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler { stop, peak_threads, peak_rss, thread: Some(thread) }
    }

    /// (peak library threads, peak RSS in KiB) so far.
    pub fn peaks(&self) -> (u64, u64) {
        (self.peak_threads.load(Ordering::Relaxed), self.peak_rss.load(Ordering::Relaxed))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `threads` threads opening junk connections (a few bytes that are not TLS, then close) to `addr` until
/// `duration` is over; the handle returns how many connections were made.
pub fn junk_flood(addr: &str, duration: Duration, threads: usize) -> std::thread::JoinHandle<u64> {
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let deadline = Instant::now() + duration;
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        match TcpStream::connect(&addr) {
                            Ok(mut s) => {
                                let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
                                n += 1;
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(1)),
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    })
}

/// One legitimate dial and echo; `Ok(how long it took)` or why it failed.
pub fn probe(web: &Service, addr: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let conn = web.dial_address(addr, "db", 5000).map_err(|f| format!("dial: {}", f.message))?;
    conn.write(b"ping").map_err(|f| format!("write: {}", f.message))?;
    let echoed = conn.read_exact(4).map_err(|f| format!("read: {}", f.message))?;
    if echoed != b"ping" {
        return Err(format!("echo returned {echoed:?}"));
    }
    Ok(started.elapsed())
}

/// The listener's `consulnative_listener_stats` as JSON.
pub fn stats(listener: &Listener) -> serde_json::Value {
    let text = read_text(|b, l, n| consulnative_listener_stats(listener.0, b, l, n)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Certificates from PEM.
pub fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().expect("PEM certificates")
}

/// A rustls client presenting `chain` (leaf first) with `key_pem`, and accepting any server: what a hostile
/// client controls completely.
pub fn raw_client(chain: Vec<CertificateDer<'static>>, key_pem: &str) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("PEM key");
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_auth_cert(chain, key)
        .expect("client auth certificate");
    config.enable_sni = false;
    Arc::new(config)
}

/// TLS over `stream` with `config`, then one echo of `ping`; `Err` with what went wrong.
pub fn tls_echo(stream: TcpStream, config: Arc<rustls::ClientConfig>, timeout: Duration) -> Result<(), String> {
    let mut stream = stream;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("consul-connect.invalid").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = rustls::Stream::new(&mut conn, &mut stream);
    tls.write_all(b"ping").map_err(|e| format!("write: {e}"))?;
    tls.flush().map_err(|e| format!("flush: {e}"))?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
    if &buf != b"ping" {
        return Err(format!("echo returned {buf:?}"));
    }
    Ok(())
}

#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a refusal callback saw: calls, the refusals that stood for dropped ones, and every message.
#[derive(Default)]
pub struct Seen {
    pub calls: AtomicU64,
    pub dropped_reports: AtomicU64,
    pub messages: std::sync::Mutex<Vec<(u32, String)>>,
    /// How long each call sleeps, in milliseconds.
    pub sleep_ms: AtomicU64,
}

unsafe extern "C" fn record_and_sleep(
    ud: *mut libc::c_void,
    code: consulnative_result,
    _addr: *const libc::c_char,
    _uri: *const libc::c_char,
    msg: *const libc::c_char,
) {
    // SAFETY: `ud` is the Arc<Seen> given to consulnative_listener_on_refused, alive until the drop callback.
    let seen = unsafe { &*(ud as *const Seen) };
    // SAFETY: the library passes a valid NUL-terminated string for the duration of the call.
    let msg = unsafe { std::ffi::CStr::from_ptr(msg) }.to_string_lossy().into_owned();
    seen.calls.fetch_add(1, Ordering::SeqCst);
    if msg.split_once(" refusals dropped").is_some_and(|(n, _)| n.parse::<u64>().is_ok()) {
        seen.dropped_reports.fetch_add(1, Ordering::SeqCst);
    }
    seen.messages.lock().unwrap().push((code as u32, msg));
    std::thread::sleep(Duration::from_millis(seen.sleep_ms.load(Ordering::SeqCst)));
}

unsafe extern "C" fn drop_seen(ud: *mut libc::c_void) {
    // SAFETY: the pointer came from Arc::into_raw in `on_refused_sleeping`; the library drops it once.
    drop(unsafe { Arc::from_raw(ud as *const Seen) });
}

/// Sets a refusal callback that records each refusal and then sleeps `sleep` (a slow application).
pub fn on_refused_sleeping(listener: &Listener, sleep: Duration) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    seen.sleep_ms.store(sleep.as_millis() as u64, Ordering::SeqCst);
    let ud = Arc::into_raw(seen.clone()) as *mut libc::c_void;
    check(consulnative_listener_on_refused(listener.0, Some(record_and_sleep), ud, Some(drop_seen))).unwrap();
    seen
}
