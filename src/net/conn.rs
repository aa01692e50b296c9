//! An established, verified and authorized Connect connection, with blocking read/write for C callers.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsStream;

use crate::error::{Code, Error, Result};
use crate::runtime::{block_on, with_timeout};
use crate::tls::PeerIdentity;

type Stream = TlsStream<TcpStream>;

/// A mutual-TLS connection to or from another Connect service.
///
/// Reads and writes may run concurrently from two threads (one reader, one writer). After
/// [`Conn::handoff`] the TLS stream belongs to the runtime and reads/writes answer `Closed`.
pub struct Conn {
    reader: Mutex<Option<ReadHalf<Stream>>>,
    writer: Mutex<Option<WriteHalf<Stream>>>,
    peer: PeerIdentity,
    local_addr: Option<SocketAddr>,
    peer_addr: Option<SocketAddr>,
    alpn: Option<Vec<u8>>,
}

impl Conn {
    pub(crate) fn new(stream: Stream, peer: PeerIdentity) -> Conn {
        let tcp = stream.get_ref().0;
        let local_addr = tcp.local_addr().ok();
        let peer_addr = tcp.peer_addr().ok();
        let alpn = stream.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        let (r, w) = tokio::io::split(stream);
        Conn { reader: Mutex::new(Some(r)), writer: Mutex::new(Some(w)), peer, local_addr, peer_addr, alpn }
    }

    /// The verified identity of the other side.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }
    /// The negotiated ALPN protocol, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// Reads up to `buf.len()` bytes; `Ok(0)` is end of stream (the peer closed its side cleanly).
    pub fn read(&self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        block_on(async {
            let mut guard = self.reader.lock().await;
            let reader = guard.as_mut().ok_or_else(closed)?;
            with_timeout(timeout, || "read".into(), async {
                match reader.read(buf).await {
                    Ok(n) => Ok(n),
                    // A peer that closes TCP without close_notify: report it as end of stream, like most TLS stacks.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                    Err(e) => Err(Error::io("read", &e)),
                }
            })
            .await
        })
    }

    /// Writes all of `buf` and flushes it to the socket. On a timeout or error, `written` says how much of
    /// `buf` the TLS layer took.
    pub fn write_all(&self, buf: &[u8], timeout: Option<Duration>, written: &mut usize) -> Result<()> {
        *written = 0;
        block_on(async {
            let mut guard = self.writer.lock().await;
            let writer = guard.as_mut().ok_or_else(closed)?;
            with_timeout(timeout, || "write".into(), async {
                while *written < buf.len() {
                    match writer.write(&buf[*written..]).await {
                        Ok(0) => return Err(Error::new(Code::Closed, "write: connection closed by peer")),
                        Ok(n) => *written += n,
                        Err(e) => return Err(Error::io("write", &e)),
                    }
                }
                writer.flush().await.map_err(|e| Error::io("write", &e))
            })
            .await
        })
    }

    /// Ends our sending side: sends TLS close_notify and half-closes TCP. Reading stays possible.
    pub fn shutdown_write(&self, timeout: Option<Duration>) -> Result<()> {
        block_on(async {
            let mut guard = self.writer.lock().await;
            let writer = guard.as_mut().ok_or_else(closed)?;
            with_timeout(timeout, || "shutdown".into(), async {
                writer.shutdown().await.map_err(|e| Error::io("shutdown", &e))
            })
            .await
        })
    }

    /// Takes the TLS stream out, for the descriptor handoff. Fails if another call holds it or it was taken.
    pub(crate) fn take_stream(&self) -> Result<Stream> {
        let r = self.reader.try_lock().map_err(|_| busy())?.take();
        let w = self.writer.try_lock().map_err(|_| busy())?.take();
        match (r, w) {
            (Some(r), Some(w)) => Ok(r.unsplit(w)),
            _ => Err(closed()),
        }
    }
}

fn closed() -> Error {
    Error::new(Code::Closed, "the connection was handed off or closed")
}

fn busy() -> Error {
    Error::invalid("the connection is in use by a read or write on another thread")
}
