//! Answers: Consul's content types and status codes, `X-Consul-Index`, the agent cache headers, and the plain
//! text errors Consul writes.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response, StatusCode};
use std::time::Duration;

/// An answer.
pub(super) type Resp = Response<Full<Bytes>>;

/// A status code; an invalid one becomes 500.
pub(super) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A `text/plain` answer, the way Consul writes errors.
pub(super) fn text(code: u16, msg: impl Into<String>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(msg.into())));
    *r.status_mut() = status(code);
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8".parse().expect("static header"));
    r
}

/// A JSON answer, with `X-Consul-Index` when `index` is given (never below 1).
pub(super) fn json<T: serde::Serialize>(value: &T, index: Option<u64>) -> Resp {
    let body = match serde_json::to_vec(value) {
        Ok(b) => b,
        Err(e) => return text(500, format!("failed to encode response: {e}")),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static header"));
    if let Some(i) = index {
        r.headers_mut().insert("X-Consul-Index", i.max(1).into());
    }
    r
}

/// Adds the agent cache headers: `X-Cache: HIT|MISS`, and `Age` on a hit.
pub(super) fn with_cache(mut r: Resp, hit: bool, age: Duration) -> Resp {
    r.headers_mut().insert("X-Cache", if hit { "HIT" } else { "MISS" }.parse().expect("static header"));
    if hit {
        r.headers_mut().insert("Age", age.as_secs().into());
    }
    r
}

/// 200 with an empty body.
pub(super) fn empty_ok() -> Resp {
    Response::new(Full::new(Bytes::new()))
}

/// Go's 404 text.
pub(super) fn not_found() -> Resp {
    text(404, "404 page not found\n")
}

/// 405 with an `Allow` header.
pub(super) fn method_not_allowed(method: &Method, allowed: &[&str]) -> Resp {
    let mut r = text(405, format!("method {method} not allowed"));
    if let Ok(v) = allowed.join(",").parse() {
        r.headers_mut().insert(hyper::header::ALLOW, v);
    }
    r
}

/// Consul's 400 for a body it cannot decode.
pub(super) fn decode_failed(e: impl std::fmt::Display) -> Resp {
    text(400, format!("Request decode failed: {e}"))
}
