//! The Connect listener: accepts TCP, runs the mutual-TLS handshake and the authorization of every connection
//! concurrently on the runtime (see `admission.rs`: every stage bounded, so neither silent clients nor a flood
//! of junk delays the others for long), and queues the admitted connections for `accept`. Application callbacks
//! run on the listener's own threads (`callbacks.rs`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Mutex};

pub(crate) use super::admission::ListenerContext;
use super::admission::{accept_loop, Shared};
use super::conn::Conn;
use super::limits::ListenLimits;
use crate::error::{Code, Error, Result};
use crate::log::info;
use crate::runtime::{block_on, handle, with_timeout};
use crate::tls::{ChainLimits, PeerIdentity};

/// Used when neither the listener's options nor the client set a handshake timeout.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when neither the listener's options nor the client set an authorize timeout.
const DEFAULT_AUTHORIZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of one listener.
#[derive(Debug, Clone, Default)]
pub struct ListenOptions {
    /// ALPN protocols offered, in preference order (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
    /// Bound on the TLS handshake of each connection (`None`: the client's `handshake_timeout`).
    pub handshake_timeout: Option<Duration>,
    /// Bound on the authorize call of each connection, and separately on the application's peer check (`None`:
    /// the client's `authorize_timeout`).
    pub authorize_timeout: Option<Duration>,
    /// The listener's bounds: handshakes, queues, callback threads (`None`: the client's).
    pub limits: Option<ListenLimits>,
    /// Bounds on the certificate chains clients send (`None`: the client's).
    pub chain_limits: Option<ChainLimits>,
}

/// A refused inbound connection, as reported to the refusal callback.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Where the connection came from.
    pub peer_addr: SocketAddr,
    /// The client's SPIFFE URI if the handshake got that far.
    pub peer_uri: Option<String>,
    /// Why it was refused: the kind says what failed, the message the detail (e.g. the agent's reason).
    pub error: Error,
    /// 0 for one refused connection. N when this stands for N refusals the callback could not be told about one
    /// by one (its queue was full): the message then starts "N refusals dropped", and the address, URI and kind
    /// are the last one's.
    pub dropped: u64,
}

/// Called for every refused connection, in order, on the listener's own refusal thread (never on a thread that
/// handshakes or authorizes). A slow callback makes refusals pile up to `refusal_queue`; beyond that they are
/// counted and reported in one refusal with [`Refusal::dropped`] set.
pub type RefusalCallback = Arc<dyn Fn(&Refusal) + Send + Sync>;
/// An application's extra check of a peer the agent allowed; an `Err` refuses the connection. Runs on the
/// listener's peer check threads; no verdict within the authorize timeout refuses the connection.
pub type PeerCheck = Arc<dyn Fn(&PeerIdentity) -> std::result::Result<(), String> + Send + Sync>;

/// What a listener has done so far, and what it holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerStats {
    /// Connections admitted (handshake, authorization and peer check passed).
    pub accepted: u64,
    /// Connections refused.
    pub refused: u64,
    /// Refusals the refusal callback was not told about one by one (its queue was full): reported in
    /// "N refusals dropped" refusals.
    pub refusals_dropped: u64,
    /// TLS handshakes cut because the listener was busy (`busy_handshake_timeout`).
    pub handshakes_cut: u64,
    /// Failed `accept` calls (descriptor exhaustion and the like).
    pub accept_errors: u64,
    /// Times every handshake slot was taken, so the listener stopped accepting for a while.
    pub saturated: u64,
    /// Connections between accept and admission right now (at most `max_handshakes`).
    pub in_progress: u64,
    /// Admitted connections waiting for `accept` right now (at most `accept_queue`).
    pub waiting: u64,
}

/// A listening Connect service endpoint.
pub struct Listener {
    local_addr: SocketAddr,
    queue: Mutex<mpsc::Receiver<Conn>>,
    queue_tx: mpsc::Sender<Conn>,
    closed: watch::Sender<bool>,
    accept_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    shared: Arc<Shared>,
}

impl Listener {
    /// Binds `addr` (IPv4 or IPv6; port 0 picks one) and starts accepting.
    pub(crate) fn bind(addr: SocketAddr, ctx: ListenerContext, options: ListenOptions) -> Result<Listener> {
        let tcp = block_on(async { TcpListener::bind(addr).await })
            .map_err(|e| Error::io(&format!("cannot listen on {addr}"), &e))?;
        let local_addr = tcp.local_addr().map_err(|e| Error::io("listener address", &e))?;
        let limits = options.limits.unwrap_or_default();
        let (tx, rx) = mpsc::channel(limits.accept_queue.max(1));
        let (closed_tx, closed_rx) = watch::channel(false);
        info!("service \"{}\" listening on {local_addr}", ctx.service);
        let shared = Arc::new(Shared::new(
            ctx,
            limits,
            options.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
            options.authorize_timeout.unwrap_or(DEFAULT_AUTHORIZE_TIMEOUT),
        ));
        let task = handle().spawn(accept_loop(tcp, shared.clone(), tx.clone(), closed_rx));
        Ok(Listener {
            local_addr,
            queue: Mutex::new(rx),
            queue_tx: tx,
            closed: closed_tx,
            accept_task: std::sync::Mutex::new(Some(task)),
            shared,
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits for the next admitted connection (`None`: no timeout). `Closed` after [`Listener::close`].
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Conn> {
        let mut closed = self.closed.subscribe();
        block_on(async {
            let mut queue = self.queue.lock().await;
            with_timeout(timeout, || "accept".into(), async {
                if *closed.borrow() {
                    return Err(listener_closed());
                }
                tokio::select! {
                    conn = queue.recv() => conn.ok_or_else(listener_closed),
                    _ = closed.changed() => Err(listener_closed()),
                }
            })
            .await
        })
    }

    /// Stops accepting: blocked `accept` calls return `Closed`, and the port is released before this returns.
    /// Connections not yet admitted are dropped, and the callback threads stop after their current call (queued
    /// refusals are discarded). Idempotent.
    pub fn close(&self) {
        self.closed.send_replace(true);
        self.shared.close();
        let task = self.accept_task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
            });
        }
    }

    /// Sets the callback told about every refused connection (the first one starts the listener's refusal
    /// thread).
    pub fn set_refusal_callback(&self, callback: Option<RefusalCallback>) {
        self.shared.refusals.set_callback(callback);
    }

    /// Sets the application's extra peer check, run after the agent allowed a peer (the first one starts the
    /// listener's peer check threads).
    pub fn set_peer_check(&self, check: Option<PeerCheck>) {
        self.shared.peer_checks.set_check(check);
    }

    /// Connections admitted and refused so far.
    pub fn counts(&self) -> (u64, u64) {
        let c = &self.shared.counters;
        (c.accepted.load(Ordering::Relaxed), c.refused.load(Ordering::Relaxed))
    }

    /// Counters and current occupancy (see [`ListenerStats`]).
    pub fn stats(&self) -> ListenerStats {
        let c = &self.shared.counters;
        ListenerStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            refusals_dropped: self.shared.refusals.dropped(),
            handshakes_cut: c.handshakes_cut.load(Ordering::Relaxed),
            accept_errors: c.accept_errors.load(Ordering::Relaxed),
            saturated: c.saturated.load(Ordering::Relaxed),
            in_progress: self.shared.in_progress(),
            waiting: (self.queue_tx.max_capacity() - self.queue_tx.capacity()) as u64,
        }
    }

    /// The bounds this listener runs with.
    pub fn limits(&self) -> ListenLimits {
        self.shared.limits
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

fn listener_closed() -> Error {
    Error::new(Code::Closed, "the listener is closed")
}
