//! The descriptor handoff: the caller gets one end of a `socketpair`, an ordinary stream socket carrying the
//! plaintext, and the runtime pumps bytes between the other end and the TLS stream. Half-close and EOF propagate
//! both ways, so epoll loops, asyncio and Ruby's IO can use a Connect connection like any socket.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;

use crate::error::{Error, Result};
use crate::log::debug;
use crate::net::conn::Conn;
use crate::runtime::handle;

/// Size of each direction's copy buffer: 64 KiB halves the context switches of bulk transfers against 16 KiB.
const PUMP_BUFFER: usize = 64 * 1024;

/// Hands the connection's stream to the runtime and returns the caller's descriptor (the caller owns and closes it).
pub fn handoff(conn: &Conn) -> Result<RawFd> {
    let stream = conn.take_stream()?;
    let (ours, theirs) = StdUnixStream::pair().map_err(|e| Error::io("socketpair", &e))?;
    ours.set_nonblocking(true).map_err(|e| Error::io("socketpair", &e))?;
    let peer = conn.peer().uri.clone();
    let _guard = handle().enter();
    let mut ours = tokio::net::UnixStream::from_std(ours).map_err(|e| Error::io("socketpair", &e))?;
    handle().spawn(async move {
        let mut tls = stream;
        let result = tokio::io::copy_bidirectional_with_sizes(&mut tls, &mut ours, PUMP_BUFFER, PUMP_BUFFER).await;
        match result {
            Ok((to_app, from_app)) => debug!("handoff with {peer} ended: {to_app} bytes in, {from_app} bytes out"),
            Err(e) => debug!("handoff with {peer} ended: {e}"),
        }
    });
    let fd: OwnedFd = theirs.into();
    Ok(fd.into_raw_fd())
}

/// Wraps a raw descriptor from [`handoff`] (for Rust callers and tests).
///
/// # Safety
/// `fd` must be an open descriptor the caller owns.
pub unsafe fn into_std(fd: RawFd) -> StdUnixStream {
    StdUnixStream::from_raw_fd(fd)
}
