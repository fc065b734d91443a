//! A dishonest node, to test that the client refuses bad data from a node that has been
//! compromised or is broken.
//!
//! The client never trusts its node: it checks every event itself. A real `kithd` only
//! sends events it has checked, so it cannot show whether those checks work. This stand-in
//! sends what a compromised node might: forged or altered events, events dated far ahead,
//! events a subscription did not ask for, wrong event ids, and protocol versions this
//! client does not speak.
//!
//! Everything an honest node does (greeting, login and invites, publishing, stored then
//! live events, unsubscribing, many publishers and subscriptions, the `kith` tool end to
//! end) is tested against the real node in `tests/tests/integration/cli.rs`, not here.
//!
//! What it does:
//! - greets with the protocol versions it is told to claim;
//! - accepts any login;
//! - answers every subscription with every planted event, whatever the filter asked for,
//!   then the end-of-stored marker;
//! - sends events pushed with [`HostileNode::push_live`] to every open subscription;
//! - answers every publish with "stored", under an id that is not the event's;
//! - answers every group state request with the state of another group.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use kith_protocol::frame::{
    decode_client_frame, encode_frame, Bytes, ClientFrame, EventBytes, NodeFrame,
};
use kith_protocol::{EventId, GroupId, Limits, SecretKey};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// A running dishonest node on 127.0.0.1.
pub(crate) struct HostileNode {
    /// Its address, as a person would type it.
    pub(crate) address: String,
    state: Arc<State>,
}

struct State {
    key: SecretKey,
    versions: Vec<u8>,
    planted: Mutex<Vec<Vec<u8>>>,
    live: broadcast::Sender<Vec<u8>>,
}

impl HostileNode {
    /// Starts a node that claims protocol version 1, on a free port.
    pub(crate) async fn start() -> HostileNode {
        HostileNode::claiming_versions(vec![1]).await
    }

    /// Starts a node that claims to speak only `versions`.
    pub(crate) async fn claiming_versions(versions: Vec<u8>) -> HostileNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            key: SecretKey::from_seed(&[200; 32]),
            versions,
            planted: Mutex::new(Vec::new()),
            live: broadcast::channel(1024).0,
        });
        let accepting = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, accepting.clone()));
            }
        });
        HostileNode { address, state }
    }

    /// Bytes to send as a stored event to every subscription, unchecked.
    pub(crate) fn plant(&self, bytes: Vec<u8>) {
        self.state.planted.lock().unwrap().push(bytes);
    }

    /// Sends bytes as a live event to every open subscription, unchecked.
    pub(crate) fn push_live(&self, bytes: Vec<u8>) {
        self.state.live.send(bytes).unwrap();
    }
}

async fn serve(tcp: TcpStream, state: Arc<State>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let hello = NodeFrame::Hello {
        node: state.key.public_key(),
        challenge: Bytes(rand::random()),
        versions: state.versions.clone(),
        limits: Limits::default(),
    };
    if ws.send(Message::text(encode_frame(&hello))).await.is_err() {
        return;
    }
    let mut live = state.live.subscribe();
    let mut subs = HashSet::new();
    loop {
        let replies = tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => answer(&state, &mut subs, &text),
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
            pushed = live.recv() => match pushed {
                Ok(bytes) => subs
                    .iter()
                    .map(|sub| NodeFrame::Event {
                        sub: sub.clone(),
                        event: EventBytes(bytes.clone()),
                    })
                    .collect(),
                Err(_) => break,
            },
        };
        for frame in replies {
            if ws.send(Message::text(encode_frame(&frame))).await.is_err() {
                return;
            }
        }
    }
}

fn answer(state: &State, subs: &mut HashSet<String>, text: &str) -> Vec<NodeFrame> {
    let Ok(frame) = decode_client_frame(text) else {
        return vec![];
    };
    match frame {
        ClientFrame::Login { id, .. } => vec![NodeFrame::Ok {
            id,
            event_id: None,
            duplicate: false,
        }],
        ClientFrame::Publish { id, .. } => vec![NodeFrame::Ok {
            id,
            event_id: Some(EventId::of_header(b"not the event that was sent")),
            duplicate: false,
        }],
        ClientFrame::Subscribe { id, .. } => {
            let mut frames: Vec<NodeFrame> = state
                .planted
                .lock()
                .unwrap()
                .iter()
                .map(|bytes| NodeFrame::Event {
                    sub: id.clone(),
                    event: EventBytes(bytes.clone()),
                })
                .collect();
            frames.push(NodeFrame::Stored { sub: id.clone() });
            subs.insert(id);
            frames
        }
        ClientFrame::Unsubscribe { id } => {
            subs.remove(&id);
            vec![]
        }
        ClientFrame::GroupState { id, group } => {
            let mut other = *group.as_bytes();
            other[0] ^= 1;
            vec![NodeFrame::GroupState {
                id,
                group: GroupId::from_bytes(other),
                state: serde_json::json!({ "digest": "00" }),
            }]
        }
        _ => vec![],
    }
}
