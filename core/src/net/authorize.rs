//! Authorization of inbound connections: after the TLS handshake verified the client's chain, ask the agent
//! (`POST /v1/agent/connect/authorize`) whether the intentions let this client in. Fail closed: a denial, an error
//! or a timeout all refuse the connection, with a reason that says which.
//!
//! Each listener bounds its calls in flight (a semaphore): a flood of clients with valid certificates cannot
//! fill the runtime's blocking pool, and a call that cannot start within the authorize timeout is refused too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, TryAcquireError};

use crate::agent::client::AgentClient;
use crate::agent::types::AuthorizeRequest;
use crate::encoding::go_duration as fmt_duration;
use crate::error::{Code, Error, Result};
use crate::tls::PeerIdentity;

/// Decides whether a verified peer may connect to `target`. A trait so that another source (local intention
/// evaluation, a future agent API) can replace the agent call.
pub trait Authorizer: Send + Sync + 'static {
    /// Blocking: called on the runtime's blocking pool. `Ok(reason)` when allowed; `AuthorizationDenied` with the
    /// agent's reason when denied; any other error when the decision could not be made.
    fn authorize(&self, target: &str, peer: &PeerIdentity, timeout: Duration) -> Result<String>;
}

/// The agent's authorize endpoint.
pub struct AgentAuthorizer {
    pub agent: AgentClient,
}

impl Authorizer for AgentAuthorizer {
    fn authorize(&self, target: &str, peer: &PeerIdentity, timeout: Duration) -> Result<String> {
        let request = AuthorizeRequest {
            target: target.to_string(),
            client_cert_uri: peer.uri.clone(),
            client_cert_serial: peer.serial.clone(),
        };
        let answer = self.agent.authorize(&request, timeout).map_err(|e| {
            Error::new(
                Code::AuthorizationFailed,
                format!("could not authorize {} => {target}, connection refused: {}", peer.uri, e.message),
            )
        })?;
        if answer.authorized {
            Ok(answer.reason)
        } else {
            Err(Error::new(
                Code::AuthorizationDenied,
                format!("{} => {target} denied by the agent: {}", peer.uri, answer.reason),
            ))
        }
    }
}

/// Runs the authorizer on the blocking pool once one of `slots` is free, the wait and the call together bounded
/// by `timeout`, so no async worker ever waits on the agent. The slot is held until the call really returns (a
/// call past its timeout still holds it), so the blocking threads in use never exceed the slots.
pub async fn authorize(
    authorizer: Arc<dyn Authorizer>,
    slots: Arc<Semaphore>,
    target: String,
    peer: PeerIdentity,
    timeout: Duration,
) -> Result<String> {
    let uri = peer.uri.clone();
    let t = target.clone();
    let started = Instant::now();
    let not_started = || {
        Error::new(
            Code::AuthorizationFailed,
            format!(
                "authorize call for {uri} => {t} could not start within {}: every authorize slot of the listener \
                 was taken (max_authorizations), connection refused",
                fmt_duration(timeout)
            ),
        )
    };
    // A slot that frees up with almost no time left is not worth an agent call that cannot finish.
    let least = (timeout / 10).min(Duration::from_millis(100));
    let closed = || {
        Error::new(
            Code::AuthorizationFailed,
            format!("authorize call for {uri} => {t} not made: the listener is closed, connection refused"),
        )
    };
    let (slot, waited) = match slots.clone().try_acquire_owned() {
        Ok(slot) => (slot, false),
        Err(TryAcquireError::Closed) => return Err(closed()),
        Err(TryAcquireError::NoPermits) => {
            match tokio::time::timeout(timeout.saturating_sub(least), slots.acquire_owned()).await {
                Ok(Ok(slot)) => (slot, true),
                Ok(Err(_)) => return Err(closed()),
                Err(_) => return Err(not_started()),
            }
        }
    };
    // A call that had to wait for its slot gets what is left of the timeout.
    let remaining = if waited { timeout.saturating_sub(started.elapsed()) } else { timeout };
    if remaining < least {
        return Err(not_started());
    }
    let call = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        authorizer.authorize(&target, &peer, remaining)
    });
    match tokio::time::timeout(remaining + Duration::from_millis(100), call).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => {
            Err(Error::new(Code::AuthorizationFailed, format!("authorize call for {uri} => {t} failed: {join}")))
        }
        Err(_) => Err(Error::new(
            Code::AuthorizationFailed,
            format!("authorize call for {uri} => {t} timed out after {}, connection refused", fmt_duration(timeout)),
        )),
    }
}
