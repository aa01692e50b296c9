//! The agent client's private parsers, for the fuzz targets (`crate::fuzzing`, cargo feature `fuzzing`).

/// Parses an agent address (`host:port`, `http(s)://…`, `unix://…`); true when usable.
pub fn address(text: &str) -> bool {
    super::address::parse_address(text).is_ok()
}

/// Reads an `X-Consul-Index` header value as a blocking query does.
pub fn consul_index(raw: &[u8]) -> Result<u64, String> {
    super::request::parse_consul_index(Some(raw))
}

/// The text of an error body as it goes into a message.
pub fn error_body(raw: &[u8]) -> String {
    super::request::body_text(raw)
}

/// The most of an error body that goes into a message, in bytes (before the ellipsis).
pub const MAX_ERROR_BODY: usize = super::request::MAX_ERROR_BODY;
