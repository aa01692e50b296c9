//! The few DER pieces rcgen does not write the way Consul does: the SEC1 private key, the one-URI
//! SubjectAltName value, minimal serial bytes, and the SHA-1 fingerprint that names a root.

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

/// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey).
const EC_PUBLIC_KEY_OID_TLV: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Wrap a SEC1 `ECPrivateKey` (what `openssl ecparam -genkey` writes) for P-256 in a PKCS#8 `PrivateKeyInfo`, the
/// form rcgen and ring load.
pub fn p256_sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    let mut alg = EC_PUBLIC_KEY_OID_TLV.to_vec();
    alg.extend_from_slice(&P256_OID_TLV);
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(write_tlv(0x30, &alg));
    body.extend(write_tlv(0x04, sec1));
    write_tlv(0x30, &body)
}

/// Every PEM block in `text` as (label, DER), in order; blocks that do not decode are skipped.
pub fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .filter_map(|p| p.ok())
        .map(|p| (p.label, p.contents))
        .collect()
}

/// The DER of a SubjectAltName extension value holding exactly one URI.
pub fn san_uri_der(uri: &str) -> Vec<u8> {
    write_tlv(0x30, &write_tlv(0x86, uri.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use consulnative_core::api::wire::colon_hex;

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
