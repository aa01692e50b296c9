//! Attack: descriptor exhaustion (EMFILE). With no descriptor left, `accept` fails: the listener backs off
//! (no spinning), admitted connections keep working (they need no new descriptor), the listener cuts its oldest
//! handshakes to get descriptors back, and a waiting legitimate client is admitted once there are some.
//!
//! Its own test binary with a single test: it lowers this process's descriptor limit for a few seconds.

mod attack;
mod common;
use attack::*;
use common::*;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Lowers the soft descriptor limit to a little above what is open and fills it with `/dev/null`; restores both
/// on drop (also when an assertion fails).
struct Exhaustion {
    old: libc::rlimit,
    filler: Vec<File>,
}

impl Exhaustion {
    fn new() -> Exhaustion {
        let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
        let low = libc::rlimit { rlim_cur: (open_descriptors() + 24) as libc::rlim_t, rlim_max: old.rlim_max };
        // SAFETY: setrlimit reads the struct we own; lowering the soft limit is always allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        let mut e = Exhaustion { old, filler: Vec::new() };
        e.fill();
        e
    }

    /// Opens `/dev/null` until the limit is reached.
    fn fill(&mut self) {
        loop {
            match File::open("/dev/null") {
                Ok(f) => self.filler.push(f),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return,
                Err(e) => panic!("unexpected error while filling the descriptor table: {e}"),
            }
            assert!(self.filler.len() < 10_000, "bounded");
        }
    }

    /// Gives `n` descriptors back.
    fn release(&mut self, n: usize) {
        let keep = self.filler.len().saturating_sub(n);
        self.filler.truncate(keep);
    }
}

impl Drop for Exhaustion {
    fn drop(&mut self) {
        self.filler.clear();
        // SAFETY: setrlimit reads the struct we own; the hard limit is unchanged, so restoring is allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.old) };
    }
}

/// A TCP socket made now (it takes a descriptor) and connected later, when no descriptor may be left.
struct Unconnected(i32);

impl Unconnected {
    fn new() -> Unconnected {
        // SAFETY: plain socket(2); the descriptor is owned by the returned value.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        Unconnected(fd)
    }

    fn connect(self, addr: &str) -> TcpStream {
        let SocketAddr::V4(v4) = addr.parse::<SocketAddr>().unwrap() else { panic!("IPv4 listener expected") };
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `sin` is a valid sockaddr_in of `len` bytes; the descriptor is ours.
        let rc = unsafe { libc::connect(self.0, &sin as *const libc::sockaddr_in as *const libc::sockaddr, len) };
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        let fd = self.0;
        std::mem::forget(self);
        // SAFETY: a connected stream socket we own, handed over exactly once.
        unsafe { TcpStream::from_raw_fd(fd) }
    }
}

impl Drop for Unconnected {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and not used after this.
        unsafe { libc::close(self.0) };
    }
}

#[test]
fn descriptor_exhaustion_neither_spins_nor_stalls_and_old_handshakes_make_room() {
    let agent = Agent::start();
    let client =
        Client::new(&agent.address(), &[("busy_handshake_timeout_ms", "300"), ("handshake_timeout_ms", "60000")]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let (a, b) = (Arc::new(db.listen("127.0.0.1:0")), Arc::new(db.listen("127.0.0.1:0")));
    let (addr_a, addr_b) = (a.address(), b.address());
    echo_server(a.clone());
    echo_server(b.clone());
    // Everything the test needs later is made now: the legitimate clients' sockets and TLS configuration, an
    // admitted connection, and six silent clients holding handshake slots (and descriptors) on listener B.
    let config = raw_client(certs(&web.pem(PEM_LEAF_CHAIN)), &web.pem(PEM_LEAF_KEY));
    let admitted = web.dial_address(&addr_a, "db", 5000).expect("admitted before the exhaustion");
    let (legit_a, legit_b) = (Unconnected::new(), Unconnected::new());
    let silent: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(&addr_b).unwrap()).collect();
    assert!(eventually(Duration::from_secs(5), || stats(&b)["in_progress"] == 6));

    // Phase 1: no descriptor left and nothing to cut on A. A legitimate client waits in A's backlog.
    let mut exhaustion = Exhaustion::new();
    let stream_a = legit_a.connect(&addr_a);
    std::thread::sleep(Duration::from_secs(2));
    admitted.write(b"x").expect("an admitted connection keeps working");
    assert_eq!(admitted.read_exact(1).expect("and reading"), b"x");
    let errors = stats(&a)["accept_errors"].as_u64().unwrap();
    // Backing off 10 ms, doubling to 1 s: about 8 attempts in 2 s. A spinning loop would make thousands.
    assert!((1..=40).contains(&errors), "accept failed with EMFILE, and backed off: {errors} attempts");
    exhaustion.release(8);
    let started = Instant::now();
    tls_echo(stream_a, config.clone(), Duration::from_secs(20)).expect("admitted once descriptors are back");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());

    // Phase 2: no descriptor left again; B's silent handshakes are older than the busy timeout. B cuts them to
    // get descriptors back and admits the legitimate client without any being released.
    exhaustion.fill();
    std::thread::sleep(Duration::from_millis(400));
    let stream_b = legit_b.connect(&addr_b);
    let started = Instant::now();
    let result = tls_echo(stream_b, config, Duration::from_secs(20));
    let elapsed = started.elapsed();
    drop(exhaustion);
    let s = stats(&b);
    assert!(result.is_ok(), "{result:?} {s}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?} {s}");
    assert!(s["accept_errors"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["handshakes_cut"].as_u64().unwrap() >= 6, "{s}");
    assert_eq!(s["accepted"], 1, "{s}");
    drop(silent);
    admitted.write(b"y").unwrap();
    assert_eq!(admitted.read_exact(1).unwrap(), b"y");
}
