//! Where the agent is and what every request carries: the address parsed into a target, path and query escaping,
//! and the ACL token (read from its file once, checked to be header-safe, never shown).

use std::path::PathBuf;

use super::config::AgentConfig;
use crate::error::{Error, Result};

/// Where the agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Tcp { https: bool, authority: String, host: String, prefix: String },
    Unix { path: PathBuf },
}

pub(super) fn parse_address(address: &str) -> Result<Target> {
    let address = address.trim();
    if address.is_empty() {
        return Err(Error::invalid("agent address is empty"));
    }
    if let Some(path) = address.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(Error::invalid("agent address unix:// has no socket path"));
        }
        return Ok(Target::Unix { path: PathBuf::from(path) });
    }
    let (https, rest) = if let Some(rest) = address.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = address.strip_prefix("https://") {
        (true, rest)
    } else if let Some((scheme, _)) = address.split_once("://") {
        return Err(Error::invalid(format!(
            "agent address scheme {scheme:?} is not supported (use http://, https:// or unix://)"
        )));
    } else {
        (false, address)
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(Error::invalid(format!("agent address {address:?} has no host")));
    }
    if authority.contains('@') {
        return Err(Error::invalid(
            "agent address must not carry credentials (use http_auth / CONSUL_HTTP_AUTH)".to_string(),
        ));
    }
    if prefix.contains(['?', '#']) || authority.contains(['?', '#']) {
        return Err(Error::invalid(format!("agent address {address:?} must not have a query or fragment")));
    }
    let scheme = if https { "https" } else { "http" };
    let uri: ureq::http::Uri = format!("{scheme}://{authority}{prefix}/v1/agent/self")
        .parse()
        .map_err(|e| Error::invalid(format!("agent address {address:?} is not a valid URL: {e}")))?;
    let host = uri.host().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(Error::invalid(format!("agent address {address:?} has no host")));
    }
    Ok(Target::Tcp { https, authority: authority.to_string(), host, prefix: prefix.to_string() })
}

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-escapes everything but RFC 3986 unreserved characters (for a path segment or a query value).
pub(super) fn escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

pub(super) fn is_header_safe(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The token to send: the token file (read and trimmed now) wins over the token.
pub(super) fn resolve_token(config: &AgentConfig) -> Result<Option<String>> {
    let token = if let Some(path) = &config.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("cannot read the ACL token file {}: {}", path.display(), e.kind())))?;
        Some(text.trim().to_string())
    } else {
        config.token.as_ref().map(|t| t.trim().to_string())
    };
    let token = token.filter(|t| !t.is_empty());
    if let Some(t) = &token {
        if !t.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            let source = match &config.token_file {
                Some(path) => format!("from {}", path.display()),
                None => "given".to_string(),
            };
            return Err(Error::invalid(format!(
                "the ACL token {source} holds characters not allowed in an HTTP header"
            )));
        }
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[test]
    fn addresses_parse_into_scheme_authority_and_prefix() {
        assert_eq!(
            parse_address("127.0.0.1:8500").unwrap(),
            Target::Tcp {
                https: false,
                authority: "127.0.0.1:8500".into(),
                host: "127.0.0.1".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            parse_address("https://consul.example:8501/proxy/consul/").unwrap(),
            Target::Tcp {
                https: true,
                authority: "consul.example:8501".into(),
                host: "consul.example".into(),
                prefix: "/proxy/consul".into()
            }
        );
        assert_eq!(parse_address("unix:///run/consul.sock").unwrap(), Target::Unix { path: "/run/consul.sock".into() });
        match parse_address("http://[::1]:8500").unwrap() {
            Target::Tcp { authority, .. } => assert_eq!(authority, "[::1]:8500"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_addresses_are_invalid_arguments() {
        for bad in
            ["", "  ", "unix://", "ftp://h:1", "http://", "http:///x", "http://u:p@h:1", "h:1/x?y=1", "ht tp://x"]
        {
            let err = parse_address(bad).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{bad:?}: {err}");
        }
        let err = parse_address("http://u:secret@h:1").unwrap_err();
        assert!(!err.message.contains("secret"));
    }

    #[test]
    fn escape_keeps_only_unreserved() {
        assert_eq!(escape("web"), "web");
        assert_eq!(escape("a b/c?d%é"), "a%20b%2Fc%3Fd%25%C3%A9");
        assert_eq!(escape("x-y_z.~"), "x-y_z.~");
    }
}
