//! A raw WebSocket client that sends whatever text it is given: for bad-input tests, where
//! the real client library would refuse to send such frames.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kith_protocol::auth::sign_login;
use kith_protocol::frame::{decode_node_frame, encode_frame, Bytes, ClientFrame, NodeFrame};
use kith_protocol::{PublicKey, SecretKey};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket to a node, one frame at a time.
pub struct RawClient {
    ws: Socket,
    /// The node's key from its hello.
    pub node: PublicKey,
    /// The login challenge from its hello.
    pub challenge: [u8; 32],
}

/// How long a test waits for a frame before failing.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

impl RawClient {
    /// Connects and reads the hello.
    pub async fn connect(node_url: &str) -> RawClient {
        let url = kith_client::ws_url(node_url).expect("a valid node URL");
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("the node accepts WebSockets");
        let hello = next_frame(&mut ws, FRAME_WAIT).await;
        match hello {
            Ok(Some(NodeFrame::Hello {
                node, challenge, ..
            })) => RawClient {
                ws,
                node,
                challenge: challenge.0,
            },
            other => panic!("expected hello, got {other:?}"),
        }
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .await
            .expect("the connection is open");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::binary(bytes))
            .await
            .expect("the connection is open");
    }

    /// Sends a well-formed frame.
    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(encode_frame(frame)).await;
    }

    /// The next node frame (panics after [`FRAME_WAIT`] or if the connection closes).
    pub async fn recv(&mut self) -> NodeFrame {
        self.try_recv(FRAME_WAIT)
            .await
            .expect("a frame before the timeout")
            .expect("the connection stays open")
    }

    /// The next node frame: `Err` if nothing came in `wait`, `Ok(None)` if the connection
    /// closed.
    pub async fn try_recv(&mut self, wait: Duration) -> Result<Option<NodeFrame>, ()> {
        next_frame(&mut self.ws, wait).await
    }

    /// Logs in with `key` (and an invite), returning the node's answer.
    pub async fn login(&mut self, key: &SecretKey, invite: Option<&str>) -> NodeFrame {
        let signature = sign_login(key, &self.node, &self.challenge);
        self.send(&ClientFrame::Login {
            id: "login".into(),
            key: key.public_key(),
            signature: Bytes(signature),
            invite: invite.map(str::to_owned),
        })
        .await;
        self.recv().await
    }

    /// Publishes event bytes, returning the node's answer.
    pub async fn publish_bytes(&mut self, id: &str, bytes: Vec<u8>) -> NodeFrame {
        self.send(&ClientFrame::Publish {
            id: id.into(),
            event: kith_protocol::frame::EventBytes(bytes),
        })
        .await;
        self.recv().await
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn next_frame(ws: &mut Socket, wait: Duration) -> Result<Option<NodeFrame>, ()> {
    loop {
        let next = tokio::time::timeout(wait, ws.next())
            .await
            .map_err(|_| ())?;
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame = decode_node_frame(text.as_str()).expect("the node sends valid frames");
                return Ok(Some(frame));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => panic!("the node sent a binary frame"),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(None),
        }
    }
}
