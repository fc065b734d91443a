//! Plain HTTP reads from a node: its information document ([`node_info`], at
//! `/.well-known/kith`) and other small JSON answers ([`get_json`]).
//!
//! A deliberately small HTTP/1.1 client: one `GET` per connection (`Connection: close`),
//! answers of at most [`MAX_RESPONSE`] bytes, `Content-Length` or chunked bodies, no
//! redirects. `https://` uses the same TLS stack and compiled-in root certificates as the
//! WebSocket, so a node reachable over one is reachable over the other.

use std::sync::Arc;
use std::time::Duration;

use kith_protocol::frame::{ErrorCode, WS_PATH};
use kith_protocol::group::body::NodeRef;
use kith_protocol::PublicKey;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::ClientError;

/// Path of a node's information document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/kith";

/// Largest answer read, headers included.
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
    let response = tokio::time::timeout(REQUEST_TIMEOUT, target.get(path))
        .await
        .map_err(|_| ClientError::Timeout {
            url: shown.clone(),
            waiting_for: "an HTTP request",
            seconds: REQUEST_TIMEOUT.as_secs(),
        })??;
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

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// `host` or `host:port`, as typed (for the `Host` header).
    authority: String,
    /// The host name or address alone, without brackets (for TLS and connecting).
    host: String,
    port: u16,
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
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| bad("the port must be a number from 1 to 65535"))?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(bad("the computer's name or IP address is missing"));
        }
        Ok(Target {
            tls,
            authority: authority.to_owned(),
            host: host.to_owned(),
            port,
            prefix,
        })
    }

    /// The URL of `path`, for messages.
    fn shown(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}{path}", self.authority, self.prefix)
    }

    async fn get(&self, path: &str) -> Result<Response, ClientError> {
        let shown = self.shown(path);
        let unreachable = |detail: String| ClientError::Unreachable {
            url: shown.clone(),
            detail,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let request = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: kith/{}\r\nConnection: close\r\n\r\n",
            self.prefix,
            self.authority,
            env!("CARGO_PKG_VERSION"),
        );
        if !self.tls {
            return exchange(tcp, &request, &shown).await;
        }
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|_| unreachable(format!("'{}' is not a valid name for TLS", self.host)))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(format!("TLS failed: {e}")))?;
        exchange(tls, &request, &shown).await
    }
}

/// TLS settings: the ring provider and the Mozilla roots compiled in.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Protocol(format!("TLS could not be set up: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    body: Vec<u8>,
}

/// Sends `request` and reads the whole answer.
async fn exchange<S>(mut stream: S, request: &str, shown: &str) -> Result<Response, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let lost = |e: std::io::Error| ClientError::Unreachable {
        url: shown.to_owned(),
        detail: e.to_string(),
    };
    stream.write_all(request.as_bytes()).await.map_err(lost)?;
    stream.flush().await.map_err(lost)?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(response) = parse_response(&received, false, shown)? {
            return Ok(response);
        }
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // Servers often close TLS without a close_notify once the answer is sent.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(lost(e)),
        };
        if n == 0 {
            return parse_response(&received, true, shown)?
                .ok_or_else(|| ClientError::Protocol(format!("{shown} ended its answer early")));
        }
        received.extend_from_slice(&chunk[..n]);
        if received.len() > MAX_RESPONSE {
            return Err(ClientError::Protocol(format!(
                "{shown} answered with more than {MAX_RESPONSE} bytes"
            )));
        }
    }
}

/// The answer in `bytes`, once it is complete (`None`: more is needed). `ended`: the
/// other side has closed, so a body without a length ends here.
fn parse_response(bytes: &[u8], ended: bool, shown: &str) -> Result<Option<Response>, ClientError> {
    let broken =
        |why: &str| ClientError::Protocol(format!("{shown} sent a broken HTTP answer: {why}"));
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head =
        std::str::from_utf8(&bytes[..head_end]).map_err(|_| broken("its headers are not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(broken("it does not start with HTTP/1"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broken("its status line has no status code"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(broken("a header line has no ':'"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| broken("its Content-Length is not a number"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let body = &bytes[head_end + 4..];
    let body = if chunked {
        match dechunk(body).map_err(broken)? {
            Some(body) => body,
            None if ended => return Err(broken("its chunked body ends early")),
            None => return Ok(None),
        }
    } else if let Some(length) = length {
        if body.len() < length {
            if ended {
                return Err(broken("its body is shorter than its Content-Length"));
            }
            return Ok(None);
        }
        body[..length].to_vec()
    } else if ended {
        body.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response { status, body }))
}

/// A chunked body decoded, once its last chunk has arrived (`None`: more is needed).
fn dechunk(mut bytes: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = bytes.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text =
            std::str::from_utf8(&bytes[..line_end]).map_err(|_| "a chunk size is not text")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| "a chunk size is not a number")?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if bytes.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[..size]);
        if &bytes[size..size + 2] != b"\r\n" {
            return Err("a chunk does not end where its size says");
        }
        bytes = &bytes[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_like_websocket_addresses() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 8080));
        assert_eq!(
            t.shown(WELL_KNOWN_PATH),
            "http://127.0.0.1:8080/.well-known/kith"
        );
        let t = Target::parse("https://node.example.org/kith/").unwrap();
        assert_eq!((t.tls, t.port, t.prefix.as_str()), (true, 443, "/kith"));
        let t = Target::parse("wss://node.example.org/ws").unwrap();
        assert_eq!((t.tls, t.prefix.as_str()), (true, ""));
        let t = Target::parse("[::1]:9000").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("::1", 9000, "[::1]:9000")
        );
        let t = Target::parse("node.local").unwrap();
        assert_eq!((t.tls, t.port), (false, 80));
        for bad in ["ftp://x", "http://", "http://h:port", "http://h:70000"] {
            assert!(
                matches!(Target::parse(bad), Err(ClientError::BadAddress { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers_are_read_by_length_by_chunks_or_to_the_end() {
        let shown = "http://h/x";
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            parse_response(sized, false, shown).unwrap(),
            Some(Response {
                status: 200,
                body: b"{}".to_vec()
            })
        );
        assert_eq!(
            parse_response(&sized[..sized.len() - 1], false, shown).unwrap(),
            None
        );
        assert!(parse_response(&sized[..sized.len() - 1], true, shown).is_err());
        let chunked = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, false, shown).unwrap(),
            Some(Response {
                status: 404,
                body: b"{\"a\":1}".to_vec()
            })
        );
        assert_eq!(parse_response(&chunked[..60], false, shown).unwrap(), None);
        let open = b"HTTP/1.0 200 OK\r\n\r\n[1]";
        assert_eq!(parse_response(open, false, shown).unwrap(), None);
        assert_eq!(
            parse_response(open, true, shown).unwrap().unwrap().body,
            b"[1]"
        );
        for broken in [
            &b"SMTP 200\r\n\r\n"[..],
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_response(broken, true, shown).is_err(), "{broken:?}");
        }
    }
}
