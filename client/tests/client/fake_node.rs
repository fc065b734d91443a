//! A small stand-in for a Kith node, enough to test the client without the real server:
//! greeting, login (with invites), publish with full validation, subscriptions with stored
//! and live events. Events can also be planted unchecked, to see that the client does its
//! own checking.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use kith_client::now;
use kith_protocol::auth::verify_login;
use kith_protocol::frame::{
    decode_client_frame, encode_frame, Bytes, ClientFrame, ErrorCode, EventBytes, Filter, NodeFrame,
};
use kith_protocol::validate::validate;
use kith_protocol::{Event, Limits, PublicKey, SecretKey};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// A running fake node on 127.0.0.1.
pub(crate) struct FakeNode {
    /// Its address, as a person would type it.
    pub(crate) address: String,
    /// Its key.
    pub(crate) key: PublicKey,
    state: Arc<State>,
}

struct State {
    secret: SecretKey,
    events: Mutex<Vec<Vec<u8>>>,
    registered: Mutex<HashSet<PublicKey>>,
    invites: Mutex<HashSet<String>>,
    live: broadcast::Sender<Vec<u8>>,
    open_subscriptions: AtomicUsize,
}

impl FakeNode {
    /// Starts a node on a free port.
    pub(crate) async fn start() -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let secret = SecretKey::from_seed(&[200; 32]);
        let key = secret.public_key();
        let state = Arc::new(State {
            secret,
            events: Mutex::new(Vec::new()),
            registered: Mutex::new(HashSet::new()),
            invites: Mutex::new(HashSet::new()),
            live: broadcast::channel(1 << 16).0,
            open_subscriptions: AtomicUsize::new(0),
        });
        let accepting = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, accepting.clone()));
            }
        });
        FakeNode {
            address,
            key,
            state,
        }
    }

    /// Makes `code` a valid invite, usable once.
    pub(crate) fn add_invite(&self, code: &str) {
        self.state.invites.lock().unwrap().insert(code.to_owned());
    }

    /// Stores bytes without checking them, as a faulty or hostile node would.
    pub(crate) fn plant(&self, bytes: Vec<u8>) {
        self.state.events.lock().unwrap().push(bytes);
    }

    /// How many subscriptions are open across all connections.
    pub(crate) fn open_subscriptions(&self) -> usize {
        self.state.open_subscriptions.load(Ordering::SeqCst)
    }

    /// How many events are stored.
    pub(crate) fn stored(&self) -> usize {
        self.state.events.lock().unwrap().len()
    }
}

async fn serve(tcp: TcpStream, state: Arc<State>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let challenge: [u8; 32] = rand::random();
    let hello = NodeFrame::Hello {
        node: state.secret.public_key(),
        challenge: Bytes(challenge),
        versions: vec![1],
        limits: Limits::default(),
    };
    if ws.send(Message::text(encode_frame(&hello))).await.is_err() {
        return;
    }
    let mut live = state.live.subscribe();
    let mut conn = Conn {
        state: state.clone(),
        challenge,
        user: None,
        subs: HashMap::new(),
    };
    loop {
        let replies = tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => conn.handle(&text),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            event = live.recv() => match event {
                Ok(bytes) => conn.live(&bytes),
                Err(_) => break,
            },
        };
        for frame in replies {
            if ws.send(Message::text(encode_frame(&frame))).await.is_err() {
                break;
            }
        }
    }
    state
        .open_subscriptions
        .fetch_sub(conn.subs.len(), Ordering::SeqCst);
}

struct Conn {
    state: Arc<State>,
    challenge: [u8; 32],
    user: Option<PublicKey>,
    subs: HashMap<String, Filter>,
}

fn error(id: &str, code: ErrorCode, message: &str) -> NodeFrame {
    NodeFrame::Error {
        id: Some(id.to_owned()),
        code,
        message: message.to_owned(),
        supported: None,
    }
}

fn ok(id: String) -> NodeFrame {
    NodeFrame::Ok {
        id,
        event_id: None,
        duplicate: false,
    }
}

impl Conn {
    fn handle(&mut self, text: &str) -> Vec<NodeFrame> {
        let frame = match decode_client_frame(text) {
            Ok(frame) => frame,
            Err(e) => return vec![e.to_frame()],
        };
        match frame {
            ClientFrame::Login {
                id,
                key,
                signature,
                invite,
            } => vec![self.login(id, key, &signature.0, invite)],
            ClientFrame::Publish { id, event } => vec![self.publish(id, event.0)],
            ClientFrame::Subscribe { id, filter } => self.subscribe(id, filter),
            ClientFrame::Unsubscribe { id } => {
                if self.subs.remove(&id).is_some() {
                    self.state.open_subscriptions.fetch_sub(1, Ordering::SeqCst);
                }
                vec![]
            }
            _ => vec![],
        }
    }

    fn login(
        &mut self,
        id: String,
        key: PublicKey,
        signature: &[u8; 64],
        invite: Option<String>,
    ) -> NodeFrame {
        let node = self.state.secret.public_key();
        if !verify_login(&key, &node, &self.challenge, signature) {
            return error(&id, ErrorCode::AuthFailed, "bad login signature");
        }
        let mut registered = self.state.registered.lock().unwrap();
        if !registered.contains(&key) {
            match invite {
                None => return error(&id, ErrorCode::NotRegistered, "not registered here"),
                Some(code) if !self.state.invites.lock().unwrap().remove(&code) => {
                    return error(&id, ErrorCode::BadInvite, "unknown invite code")
                }
                Some(_) => {
                    registered.insert(key);
                }
            }
        }
        self.user = Some(key);
        ok(id)
    }

    fn publish(&mut self, id: String, bytes: Vec<u8>) -> NodeFrame {
        if self.user.is_none() {
            return error(&id, ErrorCode::AuthRequired, "log in first");
        }
        let event = match validate(&bytes, None, now(), &Limits::default()) {
            Ok(event) => event,
            Err(e) => return error(&id, e.code(), &e.to_string()),
        };
        let mut events = self.state.events.lock().unwrap();
        let duplicate = events.contains(&bytes);
        if !duplicate {
            events.push(bytes.clone());
            let _ = self.state.live.send(bytes);
        }
        NodeFrame::Ok {
            id,
            event_id: Some(event.id()),
            duplicate,
        }
    }

    fn subscribe(&mut self, id: String, filter: Filter) -> Vec<NodeFrame> {
        let stored = self.state.events.lock().unwrap().clone();
        let mut frames: Vec<NodeFrame> = stored
            .into_iter()
            .filter(|bytes| Event::decode(bytes).is_ok_and(|e| filter.matches(&e)))
            .map(|bytes| NodeFrame::Event {
                sub: id.clone(),
                event: EventBytes(bytes),
            })
            .collect();
        if let Some(limit) = filter.limit {
            let skip = frames.len().saturating_sub(limit as usize);
            frames.drain(..skip);
        }
        frames.push(NodeFrame::Stored { sub: id.clone() });
        if self.subs.insert(id, filter).is_none() {
            self.state.open_subscriptions.fetch_add(1, Ordering::SeqCst);
        }
        frames
    }

    fn live(&self, bytes: &[u8]) -> Vec<NodeFrame> {
        let Ok(event) = Event::decode(bytes) else {
            return vec![];
        };
        self.subs
            .iter()
            .filter(|(_, filter)| filter.matches(&event))
            .map(|(sub, _)| NodeFrame::Event {
                sub: sub.clone(),
                event: EventBytes(bytes.to_vec()),
            })
            .collect()
    }
}
