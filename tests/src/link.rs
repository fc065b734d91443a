//! A raw node-to-node link: a test dials a node's `/federation` endpoint as a peer node of
//! its own (any key), completes the `kith_protocol::link` handshake, and then sends whatever
//! link frames it likes (tampered events, garbage), as a hostile or broken peer would.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kith_protocol::link::Dialer;
use kith_protocol::SecretKey;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An established link to a node, one WebSocket message at a time.
pub type LinkSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for the node to answer on a link before failing.
pub const LINK_WAIT: Duration = Duration::from_secs(20);

/// Dials `node_url` (`http://host:port`) at `/federation` and completes the link handshake
/// as a peer node whose key is `own`; returns the established link.
pub async fn raw_link(node_url: &str, own: &SecretKey) -> LinkSocket {
    let url = format!("{}/federation", node_url.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the node accepts links at /federation");
    let mut dialer = Dialer::new(own.clone(), None, [7u8; 32], kith_client::now());
    loop {
        while let Some(frame) = dialer.poll_frame() {
            ws.send(Message::Text(frame.into()))
                .await
                .expect("the link is open during the handshake");
        }
        if dialer.is_established().is_some() {
            return ws;
        }
        let text = next_text(&mut ws).await;
        dialer
            .handle_frame(&text, kith_client::now())
            .expect("the node completes the handshake");
    }
}

/// The next text frame from the node (panics after [`LINK_WAIT`] or if the link closes).
pub async fn next_text(ws: &mut LinkSocket) -> String {
    try_next_text(ws, LINK_WAIT)
        .await
        .expect("the node answers on the link")
        .expect("the link is open")
}

/// The next text frame from the node: `Err` if nothing came within `wait`, `Ok(None)` if
/// the link closed (a close frame, an error, or the end of the stream).
pub async fn try_next_text(ws: &mut LinkSocket, wait: Duration) -> Result<Option<String>, ()> {
    loop {
        let next = tokio::time::timeout(wait, ws.next())
            .await
            .map_err(|_| ())?;
        match next {
            Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_owned())),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(None),
            Some(Ok(_)) => continue,
        }
    }
}
