//! Authorization of inbound connections: after the TLS handshake verified the client's chain, ask the agent
//! (`POST /v1/agent/connect/authorize`) whether the intentions let this client in. Fail closed: a denial, an error
//! or a timeout all refuse the connection, with a reason that says which.

use std::sync::Arc;
use std::time::Duration;

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

/// Runs the authorizer on the blocking pool, bounded by `timeout`, so no async worker ever waits on the agent.
pub async fn authorize(
    authorizer: Arc<dyn Authorizer>,
    target: String,
    peer: PeerIdentity,
    timeout: Duration,
) -> Result<String> {
    let uri = peer.uri.clone();
    let t = target.clone();
    let call = tokio::task::spawn_blocking(move || authorizer.authorize(&target, &peer, timeout));
    match tokio::time::timeout(timeout + Duration::from_millis(100), call).await {
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
