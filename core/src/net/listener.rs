//! The Connect listener: accepts TCP, runs the mutual-TLS handshake and the authorization of every connection
//! concurrently on the runtime (each bounded by a timeout, so a silent client never delays others), and queues the
//! admitted connections for `accept`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Mutex};
use tokio_rustls::TlsAcceptor;

use super::authorize::{authorize, Authorizer};
use super::conn::Conn;
use crate::error::{Code, Error, Result};
use crate::log::{debug, info, warning};
use crate::runtime::{block_on, handle, with_timeout};
use crate::tls::{handshake_error, peer_identity, PeerIdentity};

/// Used when neither the listener's options nor the client set a handshake timeout.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when neither the listener's options nor the client set an authorize timeout.
const DEFAULT_AUTHORIZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of one listener.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// ALPN protocols offered, in preference order (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
    /// Bound on the TLS handshake of each connection (`None`: the client's `handshake_timeout`).
    pub handshake_timeout: Option<Duration>,
    /// Bound on the authorize call of each connection (`None`: the client's `authorize_timeout`).
    pub authorize_timeout: Option<Duration>,
    /// Admitted connections waiting for `accept`; beyond this, new connections wait in the kernel backlog.
    pub queue: usize,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions { alpn: Vec::new(), handshake_timeout: None, authorize_timeout: None, queue: 128 }
    }
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
}

/// Called for every refused connection (on a runtime blocking thread).
pub type RefusalCallback = Arc<dyn Fn(&Refusal) + Send + Sync>;
/// An application's extra check of a peer the agent allowed; an `Err` refuses the connection.
pub type PeerCheck = Arc<dyn Fn(&PeerIdentity) -> std::result::Result<(), String> + Send + Sync>;

#[derive(Default)]
struct Hooks {
    on_refused: RwLock<Option<RefusalCallback>>,
    peer_check: RwLock<Option<PeerCheck>>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// A listening Connect service endpoint.
pub struct Listener {
    local_addr: SocketAddr,
    queue: Mutex<mpsc::Receiver<Conn>>,
    closed: watch::Sender<bool>,
    accept_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    hooks: Arc<Hooks>,
}

/// What the listener needs from its service.
pub(crate) struct ListenerContext {
    pub service: String,
    pub tls: Arc<rustls::ServerConfig>,
    pub authorizer: Arc<dyn Authorizer>,
}

impl Listener {
    /// Binds `addr` (IPv4 or IPv6; port 0 picks one) and starts accepting.
    pub(crate) fn bind(addr: SocketAddr, ctx: ListenerContext, options: ListenOptions) -> Result<Listener> {
        let tcp = block_on(async { TcpListener::bind(addr).await })
            .map_err(|e| Error::io(&format!("cannot listen on {addr}"), &e))?;
        let local_addr = tcp.local_addr().map_err(|e| Error::io("listener address", &e))?;
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let (closed_tx, closed_rx) = watch::channel(false);
        let hooks = Arc::new(Hooks::default());
        info!("service \"{}\" listening on {local_addr}", ctx.service);
        let task = handle().spawn(accept_loop(tcp, Arc::new(ctx), options, tx, closed_rx, hooks.clone()));
        Ok(Listener {
            local_addr,
            queue: Mutex::new(rx),
            closed: closed_tx,
            accept_task: std::sync::Mutex::new(Some(task)),
            hooks,
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
    /// Idempotent.
    pub fn close(&self) {
        self.closed.send_replace(true);
        let task = self.accept_task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
            });
        }
    }

    /// Sets the callback told about every refused connection.
    pub fn set_refusal_callback(&self, callback: Option<RefusalCallback>) {
        *self.hooks.on_refused.write().unwrap_or_else(|e| e.into_inner()) = callback;
    }

    /// Sets the application's extra peer check, run after the agent allowed a peer.
    pub fn set_peer_check(&self, check: Option<PeerCheck>) {
        *self.hooks.peer_check.write().unwrap_or_else(|e| e.into_inner()) = check;
    }

    /// Connections admitted and refused so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.hooks.accepted.load(Ordering::Relaxed), self.hooks.refused.load(Ordering::Relaxed))
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

async fn accept_loop(
    tcp: TcpListener,
    ctx: Arc<ListenerContext>,
    options: ListenOptions,
    queue: mpsc::Sender<Conn>,
    mut closed: watch::Receiver<bool>,
    hooks: Arc<Hooks>,
) {
    let acceptor = TlsAcceptor::from(ctx.tls.clone());
    loop {
        let (stream, peer_addr) = tokio::select! {
            _ = closed.changed() => break,
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warning!("service \"{}\": accept failed: {e}", ctx.service);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (acceptor, ctx, options, queue, hooks) =
            (acceptor.clone(), ctx.clone(), options.clone(), queue.clone(), hooks.clone());
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let admitted = tokio::select! {
                _ = closed.changed() => return,
                admitted = admit(stream, peer_addr, &acceptor, &ctx, &options, &hooks) => admitted,
            };
            match admitted {
                Ok(conn) => {
                    hooks.accepted.fetch_add(1, Ordering::Relaxed);
                    // The queue is closed only when the listener is gone: the connection is then just dropped.
                    let _ = queue.send(conn).await;
                }
                Err((peer_uri, error)) => {
                    hooks.refused.fetch_add(1, Ordering::Relaxed);
                    warning!(
                        "service \"{}\" refused a connection from {peer_addr} ({}): {}",
                        ctx.service,
                        peer_uri.as_deref().unwrap_or("no verified identity"),
                        error.message
                    );
                    let callback = hooks.on_refused.read().unwrap_or_else(|e| e.into_inner()).clone();
                    if let Some(callback) = callback {
                        let refusal = Refusal { peer_addr, peer_uri, error };
                        let _ = tokio::task::spawn_blocking(move || callback(&refusal)).await;
                    }
                }
            }
        });
    }
    debug!("service \"{}\": listener closed", ctx.service);
}

/// Handshake, identity, authorization and the application's check, for one inbound connection.
async fn admit(
    stream: TcpStream,
    peer_addr: SocketAddr,
    acceptor: &TlsAcceptor,
    ctx: &ListenerContext,
    options: &ListenOptions,
    hooks: &Hooks,
) -> std::result::Result<Conn, (Option<String>, Error)> {
    let _ = stream.set_nodelay(true);
    let tls = with_timeout(
        Some(options.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)),
        || format!("TLS handshake with {peer_addr}"),
        async { acceptor.accept(stream).await.map_err(|e| handshake_error(&e)) },
    )
    .await
    .map_err(|e| (None, e))?;
    let peer_certs = tls.get_ref().1.peer_certificates().unwrap_or(&[]);
    let peer = peer_identity(peer_certs).map_err(|e| (None, e))?;
    let uri = Some(peer.uri.clone());
    authorize(
        ctx.authorizer.clone(),
        ctx.service.clone(),
        peer.clone(),
        options.authorize_timeout.unwrap_or(DEFAULT_AUTHORIZE_TIMEOUT),
    )
    .await
    .map_err(|e| (uri.clone(), e))?;
    let check = hooks.peer_check.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(check) = check {
        let p = peer.clone();
        let verdict = tokio::task::spawn_blocking(move || check(&p))
            .await
            .unwrap_or_else(|e| Err(format!("the peer check panicked: {e}")));
        if let Err(why) = verdict {
            return Err((
                uri,
                Error::new(Code::RejectedByApplication, format!("{} rejected by the application: {why}", peer.uri)),
            ));
        }
    }
    Conn::new(tokio_rustls::TlsStream::Server(tls), peer).map_err(|e| (uri, e))
}
