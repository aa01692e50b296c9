//! Outbound connections: TCP connect, mutual-TLS handshake presenting the current leaf, server chain and SPIFFE
//! identity check, all within the caller's timeout.
//!
//! The whole dial runs on the caller's thread with a non-blocking socket and `poll(2)`: each handshake round trip
//! costs one kernel wakeup, with no hop through the runtime's IO driver.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use super::conn::{flush, wait, Conn};
use crate::error::{Code, Error, Result};
use crate::tls::{dial_server_name, from_rustls, handshake_error, peer_identity, PeerIdentity};

/// Connects to `address` (`host:port`) and completes the handshake with `config`, within `deadline`.
pub(crate) fn connect(address: &str, config: Arc<rustls::ClientConfig>, deadline: Option<Instant>) -> Result<Conn> {
    let sock = tcp_connect(address, deadline)?;
    let mut tls: rustls::Connection = rustls::ClientConnection::new(config, dial_server_name())
        .map_err(|e| Error::new(Code::Handshake, format!("dial {address}: {e}")))?
        .into();
    handshake(&sock, &mut tls, deadline).map_err(|e| e.context(format!("dial {address}")))?;
    let peer =
        peer_identity(tls.peer_certificates().unwrap_or(&[])).map_err(|e| e.context(format!("dial {address}")))?;
    Conn::from_parts(sock, tls, peer)
}

/// A connected, non-blocking, no-delay socket to the first address of `address` that answers.
fn tcp_connect(address: &str, deadline: Option<Instant>) -> Result<TcpStream> {
    let addrs: Vec<_> =
        address.to_socket_addrs().map_err(|e| Error::io(&format!("connect to {address}"), &e))?.collect();
    let mut last = Error::new(Code::Io, format!("connect to {address}: the name has no address"));
    for addr in addrs {
        let left = match deadline {
            None => std::time::Duration::from_secs(75),
            Some(d) => d.saturating_duration_since(Instant::now()),
        };
        if left.is_zero() {
            return Err(Error::timeout(format!("connect to {address}: no time left")));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(sock) => {
                sock.set_nonblocking(true).map_err(|e| Error::io("connect", &e))?;
                let _ = sock.set_nodelay(true);
                return Ok(sock);
            }
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
                last = Error::timeout(format!("connect to {address} timed out"));
            }
            Err(e) => last = Error::io(&format!("connect to {address}"), &e),
        }
    }
    Err(last)
}

/// Drives the client handshake to completion (our Finished included) on the caller's thread.
fn handshake(sock: &TcpStream, tls: &mut rustls::Connection, deadline: Option<Instant>) -> Result<()> {
    let io_failed = |e: std::io::Error| handshake_error(&e);
    loop {
        flush(sock, tls).map_err(io_failed)?;
        if !tls.is_handshaking() {
            if !tls.wants_write() {
                return Ok(());
            }
            wait(sock, libc::POLLOUT, deadline, "TLS handshake")?;
            continue;
        }
        if tls.wants_write() {
            wait(sock, libc::POLLOUT, deadline, "TLS handshake")?;
            continue;
        }
        match tls.read_tls(&mut &*sock) {
            Ok(0) => return Err(Error::new(Code::Handshake, "peer closed the connection during the TLS handshake")),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    let _ = flush(sock, tls); // the alert that tells the server why
                    return Err(from_rustls(&e));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait(sock, libc::POLLIN, deadline, "TLS handshake")?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failed(e)),
        }
    }
}

/// Checks a peer verified with `Expected::AnyService` against an expected service name and namespace.
pub(crate) fn check_service_name(peer: &PeerIdentity, service: &str, namespace: &str, address: &str) -> Result<()> {
    if peer.service.eq_ignore_ascii_case(service) && peer.namespace.eq_ignore_ascii_case(namespace) {
        return Ok(());
    }
    Err(Error::new(
        Code::IdentityMismatch,
        format!(
            "dial {address}: peer certificate mismatch got {}, want service \"{service}\" in namespace \"{namespace}\"",
            peer.uri
        ),
    ))
}
