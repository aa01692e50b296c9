//! The listener's admission pipeline: TCP accept → TLS handshake (the verifier checks the chain) → authorize →
//! the application's peer check → the accept queue. Every stage is bounded (see [`ListenLimits`]):
//!
//! - The accept loop takes a connection from the kernel only with room in the accept queue and a free handshake
//!   slot; otherwise connections wait in the kernel's listen backlog, holding nothing of ours.
//! - A slot is held from accept until the connection is queued or refused. When every slot is taken (or accept
//!   ran out of descriptors) the listener is *busy*, and TLS handshakes older than `busy_handshake_timeout` are
//!   cut, so silent or slow clients cannot hold it for the whole handshake timeout.
//! - Authorize calls have their own slots ([`super::authorize`]); application code runs on the listener's own
//!   threads ([`super::callbacks`]), never on the runtime.
//! - Accept errors back off exponentially (descriptor exhaustion never spins), and refusal log lines are rate
//!   limited, so a flood costs a bounded amount of logging too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::authorize::{authorize, Authorizer};
use super::callbacks::{PeerCheckPool, RefusalDelivery};
use super::conn::Conn;
use super::limits::ListenLimits;
use super::listener::Refusal;
use crate::encoding::go_duration;
use crate::error::Error;
use crate::log::{debug, warning};
use crate::runtime::with_timeout;
use crate::tls::{handshake_error, peer_identity};

/// Refusal log lines per listener and second; the rest are counted and summed up in the next line.
const REFUSAL_LINES_PER_SECOND: u64 = 10;
/// First and longest pause after a failed `accept` (doubling in between, reset by a success).
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// At most one log line about failing `accept` calls per this period.
const ACCEPT_ERROR_LOG_PERIOD: Duration = Duration::from_secs(10);

/// What the admission of one connection needs from its service.
pub(crate) struct ListenerContext {
    pub service: String,
    pub tls: Arc<rustls::ServerConfig>,
    pub authorizer: Arc<dyn Authorizer>,
}

/// Counters of one listener (see [`super::listener::ListenerStats`]).
#[derive(Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub handshakes_cut: AtomicU64,
    pub accept_errors: AtomicU64,
    pub saturated: AtomicU64,
    /// Admissions running (the accept loop's slot for its next connection is not one).
    pub in_progress: AtomicU64,
}

/// Rate limit of refusal and accept-error log lines.
struct LogWindow {
    start: Instant,
    lines: u64,
    suppressed: u64,
    last_accept_error: Option<Instant>,
    accept_errors_unlogged: u64,
}

/// Everything the accept loop and the admission tasks of one listener share.
pub(crate) struct Shared {
    pub ctx: ListenerContext,
    pub limits: ListenLimits,
    pub handshake_timeout: Duration,
    pub authorize_timeout: Duration,
    pub refusals: Arc<RefusalDelivery>,
    pub peer_checks: Arc<PeerCheckPool>,
    pub handshake_slots: Arc<Semaphore>,
    pub authorize_slots: Arc<Semaphore>,
    /// True while the listener is busy: handshakes older than the busy timeout are cut.
    pub busy: watch::Sender<bool>,
    pub counters: Counters,
    log: Mutex<LogWindow>,
}

impl Shared {
    pub fn new(
        ctx: ListenerContext,
        limits: ListenLimits,
        handshake_timeout: Duration,
        authorize_timeout: Duration,
    ) -> Shared {
        let refusals = RefusalDelivery::new(&ctx.service, limits.refusal_queue);
        let peer_checks = PeerCheckPool::new(&ctx.service, limits.peer_check_threads, limits.max_handshakes);
        Shared {
            refusals,
            peer_checks,
            handshake_slots: Arc::new(Semaphore::new(limits.max_handshakes.max(1))),
            authorize_slots: Arc::new(Semaphore::new(limits.max_authorizations.max(1))),
            busy: watch::channel(false).0,
            counters: Counters::default(),
            log: Mutex::new(LogWindow {
                start: Instant::now(),
                lines: 0,
                suppressed: 0,
                last_accept_error: None,
                accept_errors_unlogged: 0,
            }),
            ctx,
            limits,
            handshake_timeout,
            authorize_timeout,
        }
    }

    /// Connections between accept and admission right now.
    pub fn in_progress(&self) -> u64 {
        self.counters.in_progress.load(Ordering::Relaxed)
    }

    /// Stops everything that could still run: slot waits, callback threads.
    pub fn close(&self) {
        self.handshake_slots.close();
        self.authorize_slots.close();
        self.refusals.close();
        self.peer_checks.close();
    }

    fn set_busy(&self, busy: bool) {
        self.busy.send_if_modified(|b| std::mem::replace(b, busy) != busy);
    }

    fn log_lock(&self) -> std::sync::MutexGuard<'_, LogWindow> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One warning per refusal, at most [`REFUSAL_LINES_PER_SECOND`]; the count of the others goes in the next.
    fn log_refusal(&self, peer_addr: SocketAddr, peer_uri: Option<&str>, error: &Error) {
        if !crate::log::enabled(crate::log::LogLevel::Warn) {
            return;
        }
        let suppressed = {
            let mut w = self.log_lock();
            if w.start.elapsed() >= Duration::from_secs(1) {
                w.start = Instant::now();
                w.lines = 0;
            }
            if w.lines >= REFUSAL_LINES_PER_SECOND {
                w.suppressed += 1;
                return;
            }
            w.lines += 1;
            std::mem::take(&mut w.suppressed)
        };
        let more = if suppressed > 0 { format!(" ({suppressed} earlier refusals not logged)") } else { String::new() };
        warning!(
            "service \"{}\" refused a connection from {peer_addr} ({}): {}{more}",
            self.ctx.service,
            peer_uri.unwrap_or("no verified identity"),
            error.message()
        );
    }

    /// The first failed accept, then at most one line per [`ACCEPT_ERROR_LOG_PERIOD`] with the count.
    fn log_accept_error(&self, error: &std::io::Error, pause: Duration) {
        let unlogged = {
            let mut w = self.log_lock();
            if w.last_accept_error.is_some_and(|t| t.elapsed() < ACCEPT_ERROR_LOG_PERIOD) {
                w.accept_errors_unlogged += 1;
                return;
            }
            w.last_accept_error = Some(Instant::now());
            std::mem::take(&mut w.accept_errors_unlogged)
        };
        let more = if unlogged > 0 { format!(" ({unlogged} more since the last report)") } else { String::new() };
        warning!(
            "service \"{}\": accept failed: {error}{more}; retrying in {} (connections wait in the kernel backlog)",
            self.ctx.service,
            go_duration(pause)
        );
    }
}

/// Accepts connections while the listener is open, each admitted by its own task.
pub(crate) async fn accept_loop(
    tcp: TcpListener,
    shared: Arc<Shared>,
    queue: mpsc::Sender<Conn>,
    mut closed: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(shared.ctx.tls.clone());
    let mut pause = ACCEPT_BACKOFF.0;
    loop {
        // Room in the accept queue first: an application that does not accept leaves connections in the backlog.
        tokio::select! {
            _ = closed.changed() => break,
            room = queue.reserve() => if room.is_err() { break },
        }
        let (slot, waited) = match shared.handshake_slots.clone().try_acquire_owned() {
            Ok(slot) => (slot, false),
            Err(_) => {
                shared.counters.saturated.fetch_add(1, Ordering::Relaxed);
                shared.set_busy(true);
                tokio::select! {
                    _ = closed.changed() => break,
                    slot = shared.handshake_slots.clone().acquire_owned() => match slot {
                        Ok(slot) => (slot, true),
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            _ = closed.changed() => break,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer_addr) = match accepted {
            Ok(accepted) => {
                pause = ACCEPT_BACKOFF.0;
                if !waited {
                    shared.set_busy(false);
                }
                accepted
            }
            Err(e) => {
                drop(slot);
                shared.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                if out_of_resources(&e) {
                    // Descriptors (or memory) ran out: cut old handshakes, they hold descriptors too.
                    shared.set_busy(true);
                }
                shared.log_accept_error(&e, pause);
                tokio::select! {
                    _ = closed.changed() => break,
                    _ = tokio::time::sleep(pause) => {},
                }
                pause = (pause * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        shared.counters.in_progress.fetch_add(1, Ordering::Relaxed);
        let task = Admission { shared: shared.clone(), acceptor: acceptor.clone(), peer_addr, _slot: slot };
        tokio::spawn(task.run(stream, queue.clone(), closed.clone()));
    }
    debug!("service \"{}\": listener closed", shared.ctx.service);
}

/// `accept` failed for lack of descriptors or memory (as opposed to a connection that went away meanwhile).
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// One inbound connection on its way to `accept`, holding a handshake slot until it is queued or refused.
struct Admission {
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    peer_addr: SocketAddr,
    /// Held for its drop: the slot goes back when the admission ends.
    _slot: OwnedSemaphorePermit,
}

impl Admission {
    async fn run(self, stream: TcpStream, queue: mpsc::Sender<Conn>, mut closed: watch::Receiver<bool>) {
        let shared = &self.shared;
        let admitted = tokio::select! {
            _ = closed.changed() => return,
            admitted = self.admit(stream) => admitted,
        };
        match admitted {
            Ok(conn) => {
                shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                // Waits for room holding the slot: with the queue full, the accept loop stops at max_handshakes.
                tokio::select! {
                    _ = closed.changed() => {},
                    _ = queue.send(conn) => {},
                }
            }
            Err((peer_uri, error)) => {
                shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                shared.log_refusal(self.peer_addr, peer_uri.as_deref(), &error);
                shared.refusals.push(Refusal { peer_addr: self.peer_addr, peer_uri, error, dropped: 0 });
            }
        }
    }

    /// Handshake, identity, authorization and the application's check.
    async fn admit(&self, stream: TcpStream) -> std::result::Result<Conn, (Option<String>, Error)> {
        let shared = &self.shared;
        let peer_addr = self.peer_addr;
        let _ = stream.set_nodelay(true);
        let started = Instant::now();
        let busy_timeout = shared.limits.busy_handshake_timeout;
        let handshake =
            with_timeout(Some(shared.handshake_timeout), || format!("TLS handshake with {peer_addr}"), async {
                self.acceptor.accept(stream).await.map_err(|e| handshake_error(&e))
            });
        let tls = tokio::select! {
            tls = handshake => tls,
            _ = cut_when_busy(shared.busy.subscribe(), started, busy_timeout) => {
                shared.counters.handshakes_cut.fetch_add(1, Ordering::Relaxed);
                Err(Error::timeout(format!(
                    "TLS handshake with {peer_addr} cut after {}: the listener is busy (every one of its {} \
                     handshake slots taken, or no descriptors left)",
                    go_duration(busy_timeout),
                    shared.limits.max_handshakes
                )))
            }
        }
        .map_err(|e| (None, e))?;
        let peer_certs = tls.get_ref().1.peer_certificates().unwrap_or(&[]);
        let peer = peer_identity(peer_certs).map_err(|e| (None, e))?;
        let uri = Some(peer.uri.clone());
        authorize(
            shared.ctx.authorizer.clone(),
            shared.authorize_slots.clone(),
            shared.ctx.service.clone(),
            peer.clone(),
            shared.authorize_timeout,
        )
        .await
        .map_err(|e| (uri.clone(), e))?;
        shared.peer_checks.check(&peer, shared.authorize_timeout).await.map_err(|e| (uri.clone(), e))?;
        Conn::new(tokio_rustls::TlsStream::Server(tls), peer).map_err(|e| (uri, e))
    }
}

impl Drop for Admission {
    /// Done (queued, refused, or dropped with the listener): the slot goes back with `_slot`.
    fn drop(&mut self) {
        self.shared.counters.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves once the listener has been busy with this handshake running for at least `grace`.
async fn cut_when_busy(mut busy: watch::Receiver<bool>, started: Instant, grace: Duration) {
    loop {
        if *busy.borrow_and_update() {
            tokio::time::sleep_until((started + grace).into()).await;
            if *busy.borrow() {
                return;
            }
        }
        if busy.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
