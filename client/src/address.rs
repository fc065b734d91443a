//! Node addresses: from what a person types to the node's WebSocket URL.
//!
//! People are given addresses like `http://127.0.0.1:8080` or `https://node.example.org`,
//! the same ones they would open in a browser. The WebSocket lives at [`WS_PATH`] under
//! that address, reached with `ws://` for `http://` and `wss://` for `https://`.

use kith_protocol::frame::WS_PATH;

use crate::error::ClientError;

/// The node address used when none is given (a node running on this computer).
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8080";

/// The WebSocket URL for a node address.
///
/// Accepts `http://`, `https://`, `ws://` and `wss://` addresses, and a bare `host:port`
/// (taken as `http://`). A path is kept (for nodes behind a proxy at `/kith`, say) and
/// [`WS_PATH`] is added unless it is already there.
///
/// ```
/// use kith_client::ws_url;
/// assert_eq!(ws_url("http://127.0.0.1:8080").unwrap(), "ws://127.0.0.1:8080/ws");
/// assert_eq!(ws_url("https://node.example.org/").unwrap(), "wss://node.example.org/ws");
/// ```
pub fn ws_url(address: &str) -> Result<String, ClientError> {
    let trimmed = address.trim();
    let bad = |reason: &str| ClientError::BadAddress {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_owned(), trimmed),
    };
    let ws_scheme = match scheme.as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return Err(bad("it must start with http://, https://, ws:// or wss://")),
    };
    if rest.contains(['?', '#']) {
        return Err(bad("it must not contain '?' or '#'"));
    }
    let (host, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(bad("the computer's name or IP address is missing"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(bad("the computer's name contains a space or '@'"));
    }
    let path = path.trim_end_matches('/');
    let path = if path.ends_with(WS_PATH) {
        path.to_owned()
    } else {
        format!("{path}{WS_PATH}")
    };
    Ok(format!("{ws_scheme}://{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_maps_to_ws_and_https_to_wss() {
        assert_eq!(
            ws_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(
            ws_url("https://example.org").unwrap(),
            "wss://example.org/ws"
        );
        assert_eq!(
            ws_url("HTTPS://example.org").unwrap(),
            "wss://example.org/ws"
        );
    }

    #[test]
    fn ws_addresses_are_kept() {
        assert_eq!(
            ws_url("ws://localhost:9000/ws").unwrap(),
            "ws://localhost:9000/ws"
        );
        assert_eq!(
            ws_url("wss://example.org/ws/").unwrap(),
            "wss://example.org/ws"
        );
    }

    #[test]
    fn bare_host_is_http() {
        assert_eq!(ws_url("127.0.0.1:8080").unwrap(), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws_url("  node.local  ").unwrap(), "ws://node.local/ws");
    }

    #[test]
    fn paths_are_kept() {
        assert_eq!(
            ws_url("https://example.org/kith/").unwrap(),
            "wss://example.org/kith/ws"
        );
        assert_eq!(ws_url("http://h:1/").unwrap(), "ws://h:1/ws");
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        for bad in [
            "ftp://example.org",
            "http://",
            "http:///ws",
            "http://a b",
            "http://h/?x=1",
        ] {
            let err = ws_url(bad).unwrap_err();
            assert!(
                matches!(err, ClientError::BadAddress { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("http://127.0.0.1:8080"), "{err}");
        }
    }
}
