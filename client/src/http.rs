//! Plain HTTP reads from a node: its information document ([`node_info`], at
//! `/.well-known/kith`) and other small JSON answers ([`get_json`]).
//!
//! Requests go through `reqwest`: one `GET` each, answers of at most [`MAX_RESPONSE`]
//! bytes, no redirects. `https://` uses rustls with the Mozilla root certificates compiled
//! in, as the WebSocket does, so a node reachable over one is reachable over the other.

use std::time::Duration;

use kith_protocol::frame::{ErrorCode, WS_PATH};
use kith_protocol::group::body::NodeRef;
use kith_protocol::PublicKey;

use crate::error::ClientError;

/// Path of a node's information document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/kith";

/// Largest answer body read.
pub const MAX_RESPONSE: usize = 1 << 20;

/// How long one request may take, from connecting to the last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Who a node is, from its information document: its key and the public address other
/// nodes and people reach it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's key.
    pub node: PublicKey,
    /// Its public base URL (`http://…` or `https://…`).
    pub url: String,
}

impl NodeInfo {
    /// The node as a member's home, for a join or profile.
    pub fn home(&self) -> NodeRef {
        NodeRef {
            node: self.node,
            url: self.url.clone(),
        }
    }
}

/// Fetches `GET <address>/.well-known/kith` and reads the node's key (`node`) and public
/// URL (`url`). The URL is checked as a home URL is ([`NodeRef::check`]), so it can be
/// named in a join or profile.
pub async fn node_info(address: &str) -> Result<NodeInfo, ClientError> {
    let (status, body) = get_json(address, WELL_KNOWN_PATH).await?;
    let target = Target::parse(address)?;
    let shown = target.shown(WELL_KNOWN_PATH);
    if status != 200 {
        return Err(ClientError::Protocol(format!(
            "{shown} answered with HTTP status {status} instead of the node's information; is \
             this the address of a Kith node?"
        )));
    }
    let node = body
        .get("node")
        .and_then(serde_json::Value::as_str)
        .and_then(|text| text.parse::<PublicKey>().ok())
        .ok_or_else(|| ClientError::Protocol(format!("{shown} names no valid node key")))?;
    let url = body
        .get("url")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if url.is_empty() {
        return Err(ClientError::Protocol(format!(
            "{shown} does not say the node's public address (\"url\"); the node may be running \
             an older version"
        )));
    }
    let info = NodeInfo { node, url };
    info.home().check().map_err(|e| {
        ClientError::Protocol(format!(
            "{shown} gives a public address that cannot be used: {e}"
        ))
    })?;
    Ok(info)
}

/// `GET <address><path>`: the status code and the answer parsed as JSON. A node's error
/// answers (`{"error":{"code":…,"message":…}}`) come back as [`ClientError::Refused`].
pub async fn get_json(address: &str, path: &str) -> Result<(u16, serde_json::Value), ClientError> {
    let target = Target::parse(address)?;
    let shown = target.shown(path);
    let timeout = || ClientError::Timeout {
        url: shown.clone(),
        waiting_for: "an HTTP request",
        seconds: REQUEST_TIMEOUT.as_secs(),
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, fetch(&shown))
        .await
        .map_err(|_| timeout())?
        .map_err(|e| {
            if e.is_timeout() {
                timeout()
            } else {
                ClientError::Unreachable {
                    url: shown.clone(),
                    detail: describe(&e),
                }
            }
        })?;
    let Some(response) = response else {
        return Err(ClientError::Protocol(format!(
            "{shown} answered with more than {MAX_RESPONSE} bytes"
        )));
    };
    let body: serde_json::Value = serde_json::from_slice(&response.body).map_err(|e| {
        ClientError::Protocol(format!(
            "{shown} answered (HTTP status {}) with something that is not JSON: {e}",
            response.status
        ))
    })?;
    if let Some(error) = body.get("error") {
        let code = error
            .get("code")
            .cloned()
            .and_then(|c| serde_json::from_value::<ErrorCode>(c).ok());
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no reason given");
        if let Some(code) = code {
            return Err(ClientError::Refused {
                code,
                message: message.to_owned(),
            });
        }
    }
    Ok((response.status, body))
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    body: Vec<u8>,
}

/// Fetches `url`, reading at most [`MAX_RESPONSE`] bytes of body (`None`: the answer is
/// larger than that).
async fn fetch(url: &str) -> Result<Option<Response>, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("kith/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await?;
    let status = response.status().as_u16();
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Response { status, body }))
}

/// What went wrong, from a `reqwest` error's causes (its own message only says that
/// sending the request failed, and names the URL, which the caller already shows).
fn describe(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// `host` or `host:port`, as typed.
    authority: String,
    /// A path the node lives under (behind a proxy), without a trailing `/`.
    prefix: String,
}

impl Target {
    /// Reads an address as [`crate::ws_url`] does: `http://`, `https://`, `ws://`, `wss://`
    /// or a bare `host:port`; a trailing `/ws` is dropped.
    fn parse(address: &str) -> Result<Target, ClientError> {
        let bad = |reason: &str| ClientError::BadAddress {
            address: address.to_owned(),
            reason: reason.to_owned(),
        };
        // The same rules as the WebSocket address, so both accept the same addresses.
        crate::ws_url(address)?;
        let trimmed = address.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), trimmed),
        };
        let tls = matches!(scheme.as_str(), "https" | "wss");
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let path = path.trim_end_matches('/');
        let prefix = path.strip_suffix(WS_PATH).unwrap_or(path).to_owned();
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address opened with '[' is never closed with ']'"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if let Some(port) = port {
            port.parse::<u16>()
                .map_err(|_| bad("the port must be a number from 1 to 65535"))?;
        }
        if host.is_empty() {
            return Err(bad("the computer's name or IP address is missing"));
        }
        Ok(Target {
            tls,
            authority: authority.to_owned(),
            prefix,
        })
    }

    /// The URL of `path`: what is fetched, and named in messages.
    fn shown(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}{path}", self.authority, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn addresses_are_read_like_websocket_addresses() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert!(!t.tls);
        assert_eq!(
            t.shown(WELL_KNOWN_PATH),
            "http://127.0.0.1:8080/.well-known/kith"
        );
        let t = Target::parse("https://node.example.org/kith/").unwrap();
        assert_eq!((t.tls, t.prefix.as_str()), (true, "/kith"));
        assert_eq!(t.shown("/x"), "https://node.example.org/kith/x");
        let t = Target::parse("wss://node.example.org/ws").unwrap();
        assert_eq!((t.tls, t.prefix.as_str()), (true, ""));
        let t = Target::parse("[::1]:9000").unwrap();
        assert_eq!(t.shown("/x"), "http://[::1]:9000/x");
        let t = Target::parse("node.local").unwrap();
        assert_eq!(
            (t.tls, t.shown("/x").as_str()),
            (false, "http://node.local/x")
        );
        for bad in ["ftp://x", "http://", "http://h:port", "http://h:70000"] {
            assert!(
                matches!(Target::parse(bad), Err(ClientError::BadAddress { .. })),
                "{bad}"
            );
        }
    }

    /// Serves each of `answers` once, in order, on a local port; returns its address.
    async fn serve(answers: Vec<Vec<u8>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for answer in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                stream.write_all(&answer).await.unwrap();
                stream.shutdown().await.ok();
            }
        });
        address
    }

    #[tokio::test]
    async fn answers_are_read_by_length_or_by_chunks_and_bounded() {
        let big = vec![b' '; MAX_RESPONSE + 1];
        let mut too_big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            big.len()
        )
        .into_bytes();
        too_big.extend_from_slice(&big);
        let address = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"a\":1}".to_vec(),
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\nConnection: close\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":2}\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_vec(),
            too_big,
        ])
        .await;
        let (status, body) = get_json(&address, "/x").await.unwrap();
        assert_eq!((status, body), (200, serde_json::json!({"a": 1})));
        let (status, body) = get_json(&address, "/x").await.unwrap();
        assert_eq!((status, body), (404, serde_json::json!({"a": 2})));
        // Redirects are not followed.
        let (status, body) = get_json(&address, "/x").await.unwrap();
        assert_eq!((status, body), (302, serde_json::json!({})));
        let err = get_json(&address, "/x").await.unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
        let err = get_json(&address, "/x").await.unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_nodes_are_reported_as_such() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = get_json(&address, "/x").await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    }
}
