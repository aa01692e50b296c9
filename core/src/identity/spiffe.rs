//! Consul SPIFFE IDs (see consul-connect-api.md section 4).
//!
//! A service identity reads `spiffe://<trust-domain>[/ap/<partition>]/ns/<namespace>/dc/<dc>/svc/<service>`.
//! Agent, server, mesh-gateway and signing-CA URIs are valid SPIFFE IDs but not service identities: they are
//! refused here, because only a service may talk to a Connect-native service.

use crate::error::{Code, Error, Result};
use std::fmt;

/// A Consul service identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceId {
    /// Lower-cased host of the URI, `<cluster-id>.consul` for the built-in CA.
    pub trust_domain: String,
    /// Lower-cased; `default` when the URI has no `/ap/` segment.
    pub partition: String,
    /// The `/ns/` segment (`default` in Consul CE).
    pub namespace: String,
    /// The `/dc/` segment.
    pub datacenter: String,
    /// The `/svc/` segment: the service name.
    pub service: String,
}

impl ServiceId {
    /// Parse a service identity URI. Anything else (agent, server, gateway, CA URIs, garbage) is an
    /// `IdentityMismatch` error. Path segments are percent-decoded.
    pub fn parse(uri: &str) -> Result<ServiceId> {
        parse_service(uri).ok_or_else(|| not_a_service(uri))
    }

    /// The URI as Consul formats it: `/ap/<partition>` only for a non-default partition, segments escaped.
    pub fn uri(&self) -> String {
        let mut out = format!("spiffe://{}", self.trust_domain);
        let partition = self.partition.to_lowercase();
        if !partition.is_empty() && partition != "default" {
            out.push_str("/ap/");
            out.push_str(&escape(&partition));
        }
        let namespace = if self.namespace.is_empty() { "default" } else { &self.namespace };
        for (key, value) in [("ns", namespace), ("dc", &self.datacenter), ("svc", &self.service)] {
            out.push('/');
            out.push_str(key);
            out.push('/');
            out.push_str(&escape(value));
        }
        out
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// True for a Consul identity that is not a service: an agent, a server, a mesh gateway or the signing CA
/// (`spiffe://<td>`). The agent's authorize endpoint tells these ("not a valid Service identifier") from
/// garbage ("not a valid Connect identifier").
pub fn is_non_service_identity(uri: &str) -> bool {
    let Some((scheme, host, path)) = split_uri(uri) else { return false };
    if !scheme.eq_ignore_ascii_case("spiffe") || !valid_host(host) || path.contains(['?', '#']) {
        return false;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.as_slice() {
        ["ap", _, rest @ ..] => rest,
        rest => rest,
    };
    matches!(
        rest,
        [] | ["agent", "client", "dc", _, "id", _] | ["agent", "server", "dc", _] | ["gateway", "mesh", "dc", _]
    )
}

fn not_a_service(uri: &str) -> Error {
    Error::new(Code::IdentityMismatch, format!("not a Consul service identity: {uri}"))
}

/// Split `scheme://host/path` into (scheme, host, path). `None` for anything that is not of that shape.
fn split_uri(uri: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((scheme, host, path))
}

fn parse_service(uri: &str) -> Option<ServiceId> {
    let (scheme, host, path) = split_uri(uri)?;
    if !scheme.eq_ignore_ascii_case("spiffe") || !valid_host(host) {
        return None;
    }
    // A query or fragment has no place in a Consul identity: refuse rather than guess what Go would ignore.
    if path.contains(['?', '#']) {
        return None;
    }
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let (partition, rest) = match segments.as_slice() {
        ["ap", p, rest @ ..] => (Some(*p), rest),
        rest => (None, rest),
    };
    let ["ns", ns, "dc", dc, "svc", svc] = rest else {
        return None;
    };
    let decode = |s: &str| if s.is_empty() { None } else { unescape(s) };
    let partition = match partition {
        Some(p) => decode(p)?.to_lowercase(),
        None => "default".to_string(),
    };
    Some(ServiceId {
        trust_domain: host.to_ascii_lowercase(),
        partition,
        namespace: decode(ns)?,
        datacenter: decode(dc)?,
        service: decode(svc)?,
    })
}

/// A trust domain is a DNS-like name (`<uuid>.consul`); an optional port is tolerated like Go's url.Host.
fn valid_host(host: &str) -> bool {
    !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

/// Percent-decode one path segment. Malformed escapes or non-UTF-8 results are refused.
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encode one path segment the way Go's `url.URL.EscapedPath` does (plus `/`, which would split it).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+,:;=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go `connect/tls.go` semantics: replace `want`'s host with `got`'s host, then compare case-insensitively.
/// Trust-domain migrations rely on the chain verification, not on this string. Either side malformed: no match.
pub fn uri_matches(got: &str, want: &str) -> bool {
    let (Some((_, got_host, _)), Some((want_scheme, _, want_path))) = (split_uri(got), split_uri(want)) else {
        return false;
    };
    if got.is_empty() || want.is_empty() {
        return false;
    }
    let rewritten = format!("{want_scheme}://{got_host}{want_path}");
    rewritten.to_lowercase() == got.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD: &str = "7f42f496-fbc7-8692-05ed-334aa5340c1e.consul";

    #[test]
    fn service_uri_without_partition_round_trips() {
        let uri = format!("spiffe://{TD}/ns/default/dc/dc1/svc/web");
        let id = ServiceId::parse(&uri).unwrap();
        assert_eq!(id.trust_domain, TD);
        assert_eq!(id.partition, "default");
        assert_eq!(id.namespace, "default");
        assert_eq!(id.datacenter, "dc1");
        assert_eq!(id.service, "web");
        assert_eq!(id.uri(), uri);
    }

    #[test]
    fn service_uri_with_partition_round_trips() {
        let uri = format!("spiffe://{TD}/ap/team-a/ns/billing/dc/dc2/svc/db");
        let id = ServiceId::parse(&uri).unwrap();
        assert_eq!((id.partition.as_str(), id.namespace.as_str()), ("team-a", "billing"));
        assert_eq!(id.uri(), uri);
    }

    #[test]
    fn default_partition_is_not_formatted() {
        let id = ServiceId::parse(&format!("spiffe://{TD}/ap/default/ns/default/dc/dc1/svc/web")).unwrap();
        assert_eq!(id.partition, "default");
        assert_eq!(id.uri(), format!("spiffe://{TD}/ns/default/dc/dc1/svc/web"));
        let upper = ServiceId { partition: "Default".into(), ..id };
        assert_eq!(upper.uri(), format!("spiffe://{TD}/ns/default/dc/dc1/svc/web"));
    }

    #[test]
    fn percent_escaped_segments_are_decoded_and_re_escaped() {
        let uri = format!("spiffe://{TD}/ns/default/dc/dc1/svc/my%20svc%2Fv2");
        let id = ServiceId::parse(&uri).unwrap();
        assert_eq!(id.service, "my svc/v2");
        assert_eq!(id.uri(), uri);
        assert_eq!(ServiceId::parse(&id.uri()).unwrap(), id);
    }

    #[test]
    fn trust_domain_is_lower_cased_and_scheme_is_case_insensitive() {
        let id = ServiceId::parse("SPIFFE://ABC.Consul/ns/default/dc/dc1/svc/Web").unwrap();
        assert_eq!(id.trust_domain, "abc.consul");
        assert_eq!(id.service, "Web");
    }

    #[test]
    fn non_service_identities_and_garbage_are_refused() {
        for uri in [
            format!("spiffe://{TD}/agent/client/dc/dc1/id/node-1"),
            format!("spiffe://{TD}/ap/team-a/agent/client/dc/dc1/id/node-1"),
            format!("spiffe://{TD}/agent/server/dc/dc1"),
            format!("spiffe://{TD}/gateway/mesh/dc/dc1"),
            format!("spiffe://{TD}"),
            format!("spiffe://{TD}/"),
            format!("https://{TD}/ns/default/dc/dc1/svc/web"),
            "spiffe:///ns/default/dc/dc1/svc/web".to_string(),
            format!("spiffe://{TD}/ns/default/dc/dc1/svc/"),
            format!("spiffe://{TD}/ns//dc/dc1/svc/web"),
            format!("spiffe://{TD}/ns/default/dc/dc1/svc/web/extra"),
            format!("spiffe://{TD}/ns/default/dc/dc1/svc/web?x=1"),
            format!("spiffe://{TD}/ns/default/dc/dc1/svc/w%zzeb"),
            format!("spiffe://{TD}/ns/default/dc/dc1/svc/%ff"),
            format!("spiffe://user@{TD}/ns/default/dc/dc1/svc/web"),
            "web".to_string(),
            String::new(),
        ] {
            let err = ServiceId::parse(&uri).unwrap_err();
            assert_eq!(err.code, Code::IdentityMismatch, "{uri}");
            assert_eq!(err.message, format!("not a Consul service identity: {uri}"));
        }
    }

    #[test]
    fn agent_server_gateway_and_ca_uris_are_non_service_identities() {
        for uri in [
            "spiffe://x.consul",
            "spiffe://x.consul/agent/client/dc/dc1/id/node-a",
            "spiffe://x.consul/ap/team/agent/client/dc/dc1/id/node-a",
            "spiffe://x.consul/agent/server/dc/dc1",
            "spiffe://x.consul/gateway/mesh/dc/dc1",
        ] {
            assert!(is_non_service_identity(uri), "{uri}");
        }
        for uri in
            ["spiffe://x.consul/ns/default/dc/dc1/svc/web", "http://x/agent/server/dc/dc1", "spiffe://x.consul/foo"]
        {
            assert!(!is_non_service_identity(uri), "{uri}");
        }
    }

    #[test]
    fn uri_matches_ignores_the_trust_domain_and_case() {
        let want = "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/db";
        assert!(uri_matches(&format!("spiffe://{TD}/ns/default/dc/dc1/svc/db"), want));
        assert!(uri_matches(&format!("SPIFFE://{TD}/NS/default/DC/dc1/svc/DB"), want));
        assert!(uri_matches(want, want));
    }

    #[test]
    fn uri_matches_compares_the_presented_text_not_its_decoding() {
        // Found by fuzzing: both spellings parse to namespace "def[ult", but the comparison (like Go's, on the
        // URI text) does not match them: a peer that escapes differently is refused, never wrongly admitted.
        let raw = format!("spiffe://{TD}/ns/def[ult/dc/dc1/svc/web");
        let id = ServiceId::parse(&raw).unwrap();
        assert_eq!(id.namespace, "def[ult");
        assert_eq!(id.uri(), format!("spiffe://{TD}/ns/def%5Bult/dc/dc1/svc/web"));
        assert!(!uri_matches(&raw, &id.uri()));
        assert!(uri_matches(&id.uri(), &id.uri()));
    }

    #[test]
    fn uri_matches_refuses_another_service_or_datacenter() {
        let want = format!("spiffe://{TD}/ns/default/dc/dc1/svc/db");
        assert!(!uri_matches(&format!("spiffe://{TD}/ns/default/dc/dc1/svc/web"), &want));
        assert!(!uri_matches(&format!("spiffe://{TD}/ns/default/dc/dc2/svc/db"), &want));
        assert!(!uri_matches(&format!("spiffe://{TD}/ns/other/dc/dc1/svc/db"), &want));
        assert!(!uri_matches(&format!("spiffe://{TD}/ap/team/ns/default/dc/dc1/svc/db"), &want));
        assert!(!uri_matches(&format!("spiffe://{TD}/ns/default/dc/dc1/svc/db2"), &want));
        assert!(!uri_matches("", &want));
        assert!(!uri_matches("garbage", &want));
        assert!(!uri_matches(&want, ""));
    }
}
