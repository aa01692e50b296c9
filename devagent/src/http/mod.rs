//! The HTTP side of the agent, one concern per file:
//!
//! - mod.rs: the accept loop and the request as handlers see it.
//! - route.rs: routing, and the checks every Consul endpoint shares (Enterprise parameters, ACL, datacenter).
//! - respond.rs: answers, status codes, Consul's headers and error texts.
//! - blocking.rs: blocking queries.
//! - faults.rs: injected faults, hostile answers included.
//! - connect_ca.rs: CA roots, leaf certificates, CA configuration.
//! - intentions.rs: authorize and the exact intentions API; intentions_list.rs: list, match, legacy IDs.
//! - register.rs: service and check registration (decoding in ../decode).
//! - agent.rs: the agent's services and checks, TTL updates, maintenance, self, members, version, status.
//! - catalog.rs: the catalog and health endpoints; params.rs: the query parameters they share.
//! - shapes.rs: Consul's JSON shapes for services, nodes and checks.
//! - controls.rs: the `/_devagent/` test controls.

mod agent;
mod blocking;
mod catalog;
mod connect_ca;
mod controls;
mod faults;
mod intentions;
mod intentions_list;
mod params;
mod register;
mod respond;
mod route;
mod shapes;

use crate::acl;
use crate::state::Shared;
use crate::util::parse_query;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Method, Request};
use respond::{text, Resp};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body read; a larger one is answered 413.
const MAX_BODY: usize = 4 << 20;
/// The Consul version `/v1/agent/self` reports.
pub const VERSION: &str = "1.22.0-dev+consulnative";

/// Accept connections until `stop` flips (or its sender goes away).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
            acc = listener.accept() => match acc {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(sh.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
                // EMFILE and friends: back off a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

/// A request as the handlers see it: the body already read, the query decoded.
struct Req {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    /// The first value of query parameter `key`.
    fn q(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    /// Every value of a repeatable query parameter.
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    /// Whether query parameter `key` is present, with or without a value.
    fn has(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }
    /// Boolean query flag the way Consul reads `?passing`: present and not `false`/`0`.
    fn flag(&self, key: &str) -> bool {
        match self.q(key) {
            None => false,
            Some(v) => !(v.eq_ignore_ascii_case("false") || v == "0"),
        }
    }
    /// The ACL token the request carries.
    fn token(&self) -> Option<String> {
        acl::request_token(&self.headers, &self.query)
    }
}

/// One request as `handle` would see it once hyper parsed it: the fuzz target's way in (feature `fuzzing`).
/// `None` when hyper would not have accepted the method or the target.
#[cfg(feature = "fuzzing")]
pub(crate) async fn fuzz_route(
    shared: &Arc<Shared>,
    method: &[u8],
    target: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Option<u16> {
    let method = Method::from_bytes(method).ok()?;
    let uri: hyper::Uri = target.parse().ok()?;
    if body.len() > MAX_BODY {
        return Some(413);
    }
    let r = Req { method, path: uri.path().to_string(), query: parse_query(uri.query()), headers, body };
    Some(route::route(shared, &r).await.status().as_u16())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(text(413, "Request body too large or unreadable")),
    };
    let r = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parse_query(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    let mut resp = route::route(&shared, &r).await;
    if r.path.starts_with("/v1/") {
        let h = resp.headers_mut();
        h.insert("X-Consul-Knownleader", "true".parse().expect("static header"));
        h.insert("X-Consul-Lastcontact", "0".parse().expect("static header"));
    }
    Ok(resp)
}
