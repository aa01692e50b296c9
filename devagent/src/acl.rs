//! The one-token ACL model: with a configured token, protected endpoints require it; without a token the request
//! runs as Consul's anonymous token (which has no permissions), and an unknown token is "ACL not found".

/// Accessor ID of Consul's built-in anonymous token.
pub const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";

/// The token a request carries: `X-Consul-Token`, then `Authorization: Bearer`, then `?token=`.
pub fn request_token(headers: &hyper::HeaderMap, query: &[(String, String)]) -> Option<String> {
    if let Some(v) = headers.get("x-consul-token").and_then(|v| v.to_str().ok()) {
        if !v.is_empty() {
            return Some(v.to_string());
        }
    }
    if let Some(v) = headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            let t = v[7..].trim();
            if !t.is_empty() {
                return Some(t.to_string());
            }
        }
    }
    query.iter().find(|(k, v)| k == "token" && !v.is_empty()).map(|(_, v)| v.clone())
}

/// Check that the request may use `permission` (e.g. `service:write`) on `resource` (None for operator-style
/// permissions). `Err` holds Consul's 403 text.
pub fn check(
    configured: Option<&str>,
    presented: Option<&str>,
    permission: &str,
    resource: Option<&str>,
) -> Result<(), String> {
    let Some(configured) = configured else { return Ok(()) };
    match presented {
        Some(t) if constant_time_eq(t.as_bytes(), configured.as_bytes()) => Ok(()),
        Some(_) => Err("ACL not found".to_string()),
        None => {
            let mut msg = format!(
                "Permission denied: token with AccessorID '{ANONYMOUS_ACCESSOR}' lacks permission '{permission}'"
            );
            if let Some(r) = resource {
                msg.push_str(&format!(" on {r:?}"));
            }
            Err(msg)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
