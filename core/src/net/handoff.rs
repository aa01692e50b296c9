//! The descriptor handoff: the caller gets one end of a `socketpair`, an ordinary stream socket carrying the
//! plaintext, and a runtime task pumps bytes between the other end and the TLS connection. Half-close and EOF
//! propagate both ways, so epoll loops, asyncio and Ruby's IO can use a Connect connection like any socket.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::log::debug;
use crate::net::conn::Conn;
use crate::runtime::handle;

/// Size of each read from the application's end: 64 KiB halves the context switches of bulk transfers against
/// 16 KiB.
const PUMP_BUFFER: usize = 64 * 1024;

/// Hands the connection's TLS state to the runtime and returns the caller's descriptor.
pub(crate) fn handoff(conn: &Conn) -> Result<OwnedFd> {
    let (sock, tls) = conn.take()?;
    let (ours, theirs) = StdUnixStream::pair().map_err(|e| Error::io("socketpair", &e))?;
    ours.set_nonblocking(true).map_err(|e| Error::io("socketpair", &e))?;
    let peer = conn.peer().uri.clone();
    let _runtime = handle().enter();
    let app = UnixStream::from_std(ours).map_err(|e| Error::io("socketpair", &e))?;
    let half_close = sock.try_clone().map_err(|e| Error::io("handoff", &e))?;
    let net = tokio::net::TcpStream::from_std(sock).map_err(|e| Error::io("handoff", &e))?;
    handle().spawn(async move {
        let pump = Pump { net, half_close, tls: Mutex::new(tls) };
        let (mut app_read, mut app_write) = app.into_split();
        let to_app = pump.to_app(&mut app_write);
        let to_peer = pump.to_peer(&mut app_read);
        tokio::pin!(to_app, to_peer);
        let (mut inbound, mut outbound) = (None, None);
        // A clean end of one direction waits for the other; an error in either (the peer reset the connection,
        // a bad record) ends both, so the application reads EOF instead of waiting forever.
        while inbound.is_none() || outbound.is_none() {
            tokio::select! {
                r = &mut to_app, if inbound.is_none() => { let failed = r.is_err(); inbound = Some(r); if failed { break } }
                r = &mut to_peer, if outbound.is_none() => { let failed = r.is_err(); outbound = Some(r); if failed { break } }
            }
        }
        debug!("handoff with {peer} ended: inbound {inbound:?}, outbound {outbound:?}");
    });
    Ok(theirs.into())
}

/// The two directions share the TLS state; each locks it only while processing bytes, never across an await.
struct Pump {
    net: tokio::net::TcpStream,
    /// The same socket, for the TCP half-close after our close_notify.
    half_close: TcpStream,
    tls: Mutex<rustls::Connection>,
}

/// Non-blocking reads and writes on the runtime's socket, for rustls's `read_tls`/`write_tls`.
struct Nonblocking<'a>(&'a tokio::net::TcpStream);

impl Read for Nonblocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Nonblocking<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Pump {
    fn lock(&self) -> std::sync::MutexGuard<'_, rustls::Connection> {
        self.tls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Peer → application, until the peer's end of stream (then the application reads EOF). Returns bytes moved.
    async fn to_app(&self, app: &mut tokio::net::unix::OwnedWriteHalf) -> std::io::Result<u64> {
        let mut moved = 0u64;
        let mut plain = vec![0u8; PUMP_BUFFER];
        loop {
            let (filled, ended) = self.gather(&mut plain)?;
            if filled > 0 {
                app.write_all(&plain[..filled]).await?;
                moved += filled as u64;
            }
            if ended {
                app.shutdown().await?;
                return Ok(moved);
            }
            self.flush().await?; // post-handshake messages (key updates) may need an answer
            if filled == 0 {
                self.net.readable().await?;
            }
        }
    }

    /// Moves decrypted bytes into `buf` without waiting: until it is full, the socket has nothing more for now, or
    /// the peer ended the stream (`true`). One large write to the application instead of one per 16 KiB record;
    /// draining before each socket read also keeps rustls's received-plaintext buffer from filling up.
    fn gather(&self, buf: &mut [u8]) -> std::io::Result<(usize, bool)> {
        let mut tls = self.lock();
        let mut filled = 0;
        loop {
            match tls.reader().read(&mut buf[filled..]) {
                Ok(0) => return Ok((filled, true)), // close_notify (buf[filled..] is never empty here)
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok((filled, true)), // TCP end, no close_notify
                Err(e) => return Err(e),
            }
            if filled == buf.len() {
                return Ok((filled, false));
            }
            match tls.read_tls(&mut Nonblocking(&self.net)) {
                Ok(_) => {
                    // Ok(0) is the TCP end of stream: rustls remembers it and the next read above reports it.
                    tls.process_new_packets().map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok((filled, false)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Application → peer, until the application's end of stream (then close_notify and a TCP half-close).
    async fn to_peer(&self, app: &mut tokio::net::unix::OwnedReadHalf) -> std::io::Result<u64> {
        let mut moved = 0u64;
        let mut plain = vec![0u8; PUMP_BUFFER];
        loop {
            let n = app.read(&mut plain).await?;
            if n == 0 {
                self.lock().send_close_notify();
                self.flush().await?;
                self.half_close.shutdown(std::net::Shutdown::Write)?;
                return Ok(moved);
            }
            let mut taken = 0;
            while taken < n {
                taken += self.lock().writer().write(&plain[taken..n])?;
                self.flush().await?;
            }
            moved += n as u64;
        }
    }

    /// Sends everything rustls holds for the peer, waiting for the socket as needed.
    async fn flush(&self) -> std::io::Result<()> {
        loop {
            if !self.lock().wants_write() {
                return Ok(());
            }
            self.net.writable().await?;
            match self.lock().write_tls(&mut Nonblocking(&self.net)) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}
