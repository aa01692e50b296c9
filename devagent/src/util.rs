//! Dev-agent helpers: the root fingerprint, DER walking (PKCS#8 -> SEC1, the URI SAN), time, query strings,
//! and random UUIDs. Text encodings come from `crate::encoding`.

use std::time::{SystemTime, UNIX_EPOCH};

pub use consulnative_core::api::wire::{colon_hex, go_duration as format_go_duration, parse_go_duration, pem_encode, percent_decode, rfc3339};

/// SHA-1 of `data`: only for the CA root `ID` fingerprint, as Consul computes it; not for security.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(digest.as_ref());
    out
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

// ---------------------------------------------------------------------------------------------------------------
// Time

/// Seconds since the Unix epoch (0 for times before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(colon_hex(&sha1(b"abc")), "a9:99:3e:36:47:06:81:6a:ba:3e:25:71:78:50:c2:6c:9c:d0:d8:9d");
    }

    #[test]
    fn minimal_big_endian_serials() {
        assert_eq!(minimal_be(0x0c0a), vec![0x0c, 0x0a]);
        assert_eq!(colon_hex(&minimal_be(0x1d)), "1d");
    }
}
