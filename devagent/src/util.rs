//! Dev-agent helpers: Unix times, random UUIDs and query strings. Text encodings come from the core's `wire`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use consulnative_core::api::wire::{go_duration as format_go_duration, parse_go_duration, percent_decode};

/// The instant `secs` seconds after (before, when negative) the Unix epoch; `None` when the platform cannot
/// represent it.
pub fn from_unix_secs(secs: i64) -> Option<SystemTime> {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

/// `t` in RFC 3339 (UTC, seconds).
pub fn rfc3339_of(t: SystemTime) -> String {
    consulnative_core::api::wire::rfc3339(t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0))
}

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
    fn unix_seconds_on_both_sides_of_the_epoch() {
        assert_eq!(from_unix_secs(90), Some(UNIX_EPOCH + Duration::from_secs(90)));
        assert_eq!(from_unix_secs(-90), Some(UNIX_EPOCH - Duration::from_secs(90)));
        // Extreme values are representable or None, never a panic.
        let _ = (from_unix_secs(i64::MAX), from_unix_secs(i64::MIN));
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
