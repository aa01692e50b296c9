//! The request-decoding fuzz target's entry point (cargo feature `fuzzing`): everything the agent does with a
//! request once hyper has parsed it — query and path decoding, JSON bodies, blocking parameters, fault and control
//! parameters, routing — on a fresh agent state, with tokio's clock paused so blocking queries and injected delays
//! end at once. Background tasks (renewals, TCP checks) never start: the state has no runtime to spawn them on.

use crate::state::Shared;
use crate::DevAgentConfig;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::HeaderMap;
use std::sync::Arc;

/// Up to four requests separated by two NUL bytes, each `METHOD TARGET` on its first line, then `Name: value`
/// header lines, an empty line and the body. The first byte's low bits choose an ACL token and the default
/// intention policy. Every request must get an answer (a status from 100 to 599), never a panic.
pub fn requests(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let config = DevAgentConfig {
        acl_token: (flags & 1 == 1).then(|| "fuzz-acl-token".to_string()),
        default_allow: flags & 2 == 0,
        node_name: "fuzz".to_string(),
        ..DevAgentConfig::default()
    };
    let Ok(shared) = Shared::new(config) else { return };
    let shared = Arc::new(shared);
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build() else {
        return;
    };
    for chunk in split(rest, b"\0\0").into_iter().take(4) {
        let (head, body) = match find(chunk, b"\n\n") {
            Some(i) => (&chunk[..i], &chunk[i + 2..]),
            None => (chunk, &[][..]),
        };
        let mut lines = head.split(|&b| b == b'\n');
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.splitn(2, |&b| b == b' ');
        let method = parts.next().unwrap_or_default();
        let Some(target) = parts.next().and_then(|t| std::str::from_utf8(t).ok()) else { continue };
        let mut headers = HeaderMap::new();
        for line in lines {
            let Some(i) = line.iter().position(|&b| b == b':') else { continue };
            let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(&line[..i]), HeaderValue::from_bytes(line[i + 1..].trim_ascii()))
            else {
                continue;
            };
            headers.append(name, value);
        }
        let body = Bytes::copy_from_slice(body);
        let status = rt.block_on(crate::http::fuzz_route(&shared, method, target, headers, body));
        if let Some(status) = status {
            assert!((100..=599).contains(&status), "status {status}");
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(data, sep) {
        out.push(&data[..i]);
        data = &data[i + sep.len()..];
    }
    out.push(data);
    out
}
