//! Bare WebSockets for many cheap clients (subscribers, idle connections): small buffers and
//! no event checks, so the benchmark's own cost per connection stays low. Publishers use
//! the real client library instead.

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use kith_protocol::frame::{decode_node_frame, encode_frame, ClientFrame, Filter, NodeFrame};
use kith_protocol::PublicKey;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects and reads the node's hello.
pub(crate) async fn connect(node_url: &str) -> anyhow::Result<Socket> {
    let url = kith_client::ws_url(node_url)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
            .await
            .context("opening a WebSocket")?;
    match next_frame(&mut ws).await? {
        NodeFrame::Hello { .. } => Ok(ws),
        other => anyhow::bail!("expected hello, got {other:?}"),
    }
}

/// Subscribes to live events by `author` (no stored ones) and waits until the node says
/// the subscription is live.
pub(crate) async fn subscribe_live(ws: &mut Socket, author: PublicKey) -> anyhow::Result<()> {
    let frame = ClientFrame::Subscribe {
        id: "s".into(),
        filter: Filter {
            authors: Some(vec![author]),
            limit: Some(0),
            ..Filter::default()
        },
    };
    ws.send(Message::text(encode_frame(&frame))).await?;
    match next_frame(ws).await? {
        NodeFrame::Stored { .. } => Ok(()),
        other => anyhow::bail!("expected stored, got {other:?}"),
    }
}

/// The next frame from the node, decoded.
pub(crate) async fn next_frame(ws: &mut Socket) -> anyhow::Result<NodeFrame> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(decode_node_frame(text.as_str())?),
            Some(Ok(Message::Close(close))) => anyhow::bail!("the node closed: {close:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the connection ended"),
        }
    }
}

/// The base64 event in an `event` frame, found by position rather than by decoding the
/// whole frame (the node writes these frames from a fixed template).
pub(crate) fn event_base64(frame: &str) -> Option<&str> {
    let start = frame.find(r#""event":""#)? + r#""event":""#.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}
