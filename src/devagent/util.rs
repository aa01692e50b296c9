//! Small self-contained helpers: SHA-1, DER walking (PKCS#8 -> SEC1), RFC 3339, Go durations, colon-hex,
//! SPIFFE URI parsing, percent-decoding and random UUIDs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// SHA-1 (FIPS 180-4). Only used for the CA root `ID` fingerprint, as Consul does; not for security.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | ((!b) & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Lowercase colon-separated hex: `[0x0c, 0x0a]` -> `0c:0a`.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Minimal big-endian bytes of an unsigned serial (at least one byte).
pub fn minimal_be(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    bytes[first..].to_vec()
}

// ---------------------------------------------------------------------------------------------------------------
// DER

/// (tag byte, content, whole encoding, rest).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// One DER TLV. Single-byte tags only (enough for keys).
fn read_tlv(buf: &[u8]) -> Option<Tlv<'_>> {
    let tag = *buf.first()?;
    let first_len = *buf.get(1)? as usize;
    let (len, hdr) = if first_len < 0x80 {
        (first_len, 2)
    } else {
        let n = first_len & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    if end > buf.len() {
        return None;
    }
    Some((tag, &buf[hdr..end], &buf[..end], &buf[end..]))
}

fn write_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = minimal_be(len as u64);
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// DER of OID 1.2.840.10045.3.1.7 (prime256v1).
const P256_OID_TLV: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Convert a PKCS#8 P-256 private key (what rcgen serializes) to the SEC1 `ECPrivateKey` Consul hands out,
/// adding the `[0] parameters` curve OID when the inner structure lacks it (ring omits it).
pub fn pkcs8_p256_to_sec1(pkcs8: &[u8]) -> Option<Vec<u8>> {
    // PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm AlgorithmIdentifier, privateKey OCTET STRING, .. }
    let (tag, body, _, _) = read_tlv(pkcs8)?;
    if tag != 0x30 {
        return None;
    }
    let (t_ver, _, _, rest) = read_tlv(body)?;
    let (t_alg, _, _, rest) = read_tlv(rest)?;
    let (t_key, inner, _, _) = read_tlv(rest)?;
    if t_ver != 0x02 || t_alg != 0x30 || t_key != 0x04 {
        return None;
    }
    // ECPrivateKey ::= SEQUENCE { version INTEGER 1, privateKey OCTET STRING, [0] params OPTIONAL, [1] pub OPTIONAL }
    let (t_seq, ec_body, _, _) = read_tlv(inner)?;
    if t_seq != 0x30 {
        return None;
    }
    let (t_v, _, v_all, rest) = read_tlv(ec_body)?;
    let (t_pk, _, pk_all, mut rest) = read_tlv(rest)?;
    if t_v != 0x02 || t_pk != 0x04 {
        return None;
    }
    let mut params: Option<Vec<u8>> = None;
    let mut public: Option<Vec<u8>> = None;
    while !rest.is_empty() {
        let (t, _, all, r) = read_tlv(rest)?;
        match t {
            0xa0 => params = Some(all.to_vec()),
            0xa1 => public = Some(all.to_vec()),
            _ => return None,
        }
        rest = r;
    }
    let mut out = Vec::new();
    out.extend_from_slice(v_all);
    out.extend_from_slice(pk_all);
    out.extend(params.unwrap_or_else(|| write_tlv(0xa0, &P256_OID_TLV)));
    if let Some(p) = public {
        out.extend(p);
    }
    Some(write_tlv(0x30, &out))
}

/// The DER of a SubjectAltName extension value holding exactly one URI.
pub fn san_uri_der(uri: &str) -> Vec<u8> {
    write_tlv(0x30, &write_tlv(0x86, uri.as_bytes()))
}

/// PEM-encode DER with the given label, 64-column lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for c in der.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        b64.push(T[(n >> 18) as usize & 63] as char);
        b64.push(T[(n >> 12) as usize & 63] as char);
        b64.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        b64.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Time

/// Seconds since the Unix epoch (0 for times before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// RFC 3339 in UTC with a `Z` suffix, whole seconds: `2025-05-20T09:59:00Z`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// Parse a Go duration (`300ms`, `1.5s`, `1h30m`, `72h`, `0`). Negative durations are rejected.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
    }
    if !total.is_finite() || total > 1e12 {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

/// Format a duration the way Go prints simple ones (`72h0m0s` style is not needed; `72h`, `30s`, `150ms`).
pub fn format_go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Misc

/// A random version-4 UUID string.
pub fn uuid4() -> String {
    let mut b = [0u8; 16];
    for x in b.iter_mut() {
        *x = fastrand::u8(..);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Percent-decode (`%2F` -> `/`); `+` stays `+` unless `plus_as_space`. Invalid escapes stay as they are.
pub fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a URL query string into (key, value) pairs, decoded.
pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// SPIFFE

/// A parsed Consul SPIFFE ID (only the kinds the dev agent needs to tell apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpiffeId {
    Service { host: String, partition: String, namespace: String, datacenter: String, service: String },
    /// Agents, servers, mesh gateways and the signing CA: valid Connect identifiers, not services.
    Other,
}

/// Parse a Consul SPIFFE URI like Consul's `connect.ParseCertURIFromString`. `None` = not a Connect identifier.
pub fn parse_spiffe(uri: &str) -> Option<SpiffeId> {
    let rest = uri.strip_prefix("spiffe://").or_else(|| {
        // The scheme is case-insensitive in URL parsing.
        if uri.len() > 9 && uri[..9].eq_ignore_ascii_case("spiffe://") {
            Some(&uri[9..])
        } else {
            None
        }
    })?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(['?', '#', '@']) {
        return None;
    }
    if path.is_empty() {
        return Some(SpiffeId::Other); // signing CA ID
    }
    let segs: Vec<String> = path[1..].split('/').map(|s| percent_decode(s, false)).collect();
    let s: Vec<&str> = segs.iter().map(|x| x.as_str()).collect();
    let (partition, s) = match s.as_slice() {
        ["ap", p, rest @ ..] => (p.to_lowercase(), rest.to_vec()),
        _ => ("default".to_string(), s),
    };
    match s.as_slice() {
        ["ns", ns, "dc", dc, "svc", svc] if !ns.is_empty() && !dc.is_empty() && !svc.is_empty() => Some(SpiffeId::Service {
            host: host.to_string(),
            partition,
            namespace: ns.to_string(),
            datacenter: dc.to_string(),
            service: svc.to_string(),
        }),
        ["agent", "client", "dc", _, "id", _] | ["agent", "server", "dc", _] | ["gateway", "mesh", "dc", _] => {
            Some(SpiffeId::Other)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(colon_hex(&sha1(b"abc")), "a9:99:3e:36:47:06:81:6a:ba:3e:25:71:78:50:c2:6c:9c:d0:d8:9d");
        assert_eq!(colon_hex(&sha1(b"")), "da:39:a3:ee:5e:6b:4b:0d:32:55:bf:ef:95:60:18:90:af:d8:07:09");
    }

    #[test]
    fn rfc3339_and_durations() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1747735140), "2025-05-20T09:59:00Z");
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("-1s"), None);
        assert_eq!(minimal_be(0x0c0a), vec![0x0c, 0x0a]);
        assert_eq!(colon_hex(&minimal_be(0x1d)), "1d");
    }

    #[test]
    fn spiffe_kinds() {
        assert!(matches!(parse_spiffe("spiffe://x.consul/ns/default/dc/dc1/svc/web"), Some(SpiffeId::Service { .. })));
        assert_eq!(parse_spiffe("spiffe://x.consul/agent/client/dc/dc1/id/n1"), Some(SpiffeId::Other));
        assert_eq!(parse_spiffe("http://x/ns/default/dc/dc1/svc/web"), None);
        assert_eq!(parse_spiffe("spiffe://x.consul/foo"), None);
    }
}
