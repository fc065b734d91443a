//! Node-to-node links: the `/federation` WebSocket, the dialer tasks that connect to peers,
//! and the few JSON frames two linked nodes exchange to follow each other's public groups.
//!
//! After the `kith_protocol::link` handshake (the dialer proves its key, the listener its
//! own), both sides speak the same frames:
//!
//! ```text
//! {"type":"fed_groups","groups":[<group id>…]}                  the public groups the sender holds (or just created)
//! {"type":"fed_sync","group":…,"session":n,"msg":<base64>}       a sync::Initiator message for one group
//! {"type":"fed_sync_reply","group":…,"session":n,"msg":<base64>} the sync::Responder's answer
//! {"type":"fed_fetch","ids":[<event id>…]}                       ask for events (at most FETCH_BATCH)
//! {"type":"fed_events","events":[<base64>…],"missing":[…]}       the answer (at most EVENTS_REPLY_BYTES)
//! {"type":"fed_event","event":<base64>}                           a newly stored event, pushed live
//! {"type":"fed_error","code":…,"message":…}                       a refusal
//! ```
//!
//! Each side follows every public group the other announces: it runs a sync session as the
//! initiator for the group, then fetches what it lacks in batches, one batch at a time (the
//! receiver sets the pace). Every event received goes through [`Node::ingest_from_peer`],
//! which checks it exactly like a client's publish. Events whose parents (or group) are
//! missing wait, bounded, while their parents are fetched. Private groups are never
//! announced, answered, served nor pushed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use kith_protocol::encoding::{from_base64, to_base64};
use kith_protocol::event::{Event, EventId, GroupId};
use kith_protocol::frame::{ErrorCode, Filter};
use kith_protocol::group::GROUP_CREATE;
use kith_protocol::link::{Dialer, Listener, HANDSHAKE_TIMEOUT_MS};
use kith_protocol::sync::{self, Initiator, Item, Responder, SyncSet};
use kith_protocol::PublicKey;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::federation::address::check_peer_url;
use crate::federation::peers::{key_id, PeerStatus};
use crate::groups::in_group;
use crate::node::{now, Node, Rejection, SharedNode};

/// Path of the node-to-node WebSocket.
pub const FEDERATION_PATH: &str = "/federation";
/// Largest frame a link takes or sends.
pub const MAX_FED_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Most ids one `fed_fetch` may ask for.
pub const FETCH_BATCH: usize = 64;
/// Most bytes of base64 events one `fed_events` answer carries (at least one event).
pub const EVENTS_REPLY_BYTES: usize = 1024 * 1024;
/// Most group ids one `fed_groups` may carry.
pub const MAX_GROUPS_PER_FRAME: usize = 10_000;
/// Most events waiting for their parents, per link.
const MAX_PENDING: usize = 1024;
/// Most ids a link fetches because something cited them (parents, genesis).
const MAX_PARENT_FETCHES: usize = 16_384;
/// Most groups answered at the same time, per link.
const MAX_RESPONDERS: usize = 256;
/// Bad frames a peer may send before the link is closed.
const MAX_BAD_FRAMES: u32 = 64;
/// Frames queued each way per link.
const QUEUE: usize = 1024;
/// Most group-creating events looked at when listing the groups held.
const MAX_GROUPS_LISTED: usize = 100_000;

/// One frame of a link, after the handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FedFrame {
    /// Public groups the sender holds.
    FedGroups {
        /// Their ids.
        groups: Vec<GroupId>,
    },
    /// An initiator's sync message.
    FedSync {
        /// The group reconciled.
        group: GroupId,
        /// Which session of this link (a new number starts a new responder).
        session: u32,
        /// The message, base64.
        msg: String,
    },
    /// A responder's answer.
    FedSyncReply {
        /// The group reconciled.
        group: GroupId,
        /// The session answered.
        session: u32,
        /// The message, base64.
        msg: String,
    },
    /// A request for events.
    FedFetch {
        /// Their ids.
        ids: Vec<EventId>,
    },
    /// Events asked for.
    FedEvents {
        /// The events, base64.
        events: Vec<String>,
        /// Ids the sender does not serve.
        missing: Vec<EventId>,
    },
    /// A newly stored event.
    FedEvent {
        /// The event, base64.
        event: String,
    },
    /// A refusal.
    FedError {
        /// The stable code.
        code: ErrorCode,
        /// What went wrong.
        message: String,
    },
}

impl FedFrame {
    /// The frame as JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Text frames in and out of one link, whatever the WebSocket library.
struct Wire {
    rx: mpsc::Receiver<String>,
    tx: mpsc::Sender<String>,
}

impl Wire {
    async fn send(&self, frame: &FedFrame) -> bool {
        self.tx.send(frame.encode()).await.is_ok()
    }
}

/// `GET /federation`: a peer node linking with this one.
/// Links count towards the node's connection limit like client connections.
pub async fn upgrade(State(node): State<SharedNode>, ws: WebSocketUpgrade) -> Response {
    use axum::response::IntoResponse as _;
    use std::sync::atomic::Ordering::Relaxed;
    let limit = node.config.connections.max_connections as i64;
    if node.metrics.connections_open.load(Relaxed) >= limit {
        node.metrics.reject("too_many_connections");
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "this node has as many connections as it is configured to take; try again later",
        )
            .into_response();
    }
    ws.max_message_size(MAX_FED_FRAME_BYTES)
        .max_frame_size(MAX_FED_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let tracker = node.tracker.clone();
            tracker.track_future(accept(socket, node))
        })
}

async fn accept(socket: WebSocket, node: SharedNode) {
    use std::sync::atomic::Ordering::Relaxed;
    node.metrics.connections_open.fetch_add(1, Relaxed);
    accept_counted(socket, &node).await;
    node.metrics.connections_open.fetch_sub(1, Relaxed);
}

async fn accept_counted(socket: WebSocket, node: &SharedNode) {
    let (mut wire, reader, writer) = pump(
        socket,
        |m| match m {
            AxMessage::Text(text) => Pumped::Text(text.as_str().to_owned()),
            AxMessage::Close(_) => Pumped::Close,
            _ => Pumped::Skip,
        },
        |text| AxMessage::Text(text.into()),
    );
    let mut challenge = [0u8; 32];
    rand::thread_rng().fill(&mut challenge);
    let listener = Listener::new(node.key.clone(), None, challenge, now());
    if let Some(peer) = handshake(Handshake::Listener(listener), &mut wire, node).await {
        if is_blocked(node, &peer).await {
            tracing::info!(%peer, "refused a link from a blocked node");
        } else {
            tracing::info!(%peer, "a peer linked with this node");
            run_link(node, wire, peer).await;
        }
    } else {
        drop(wire);
    }
    reader.abort();
    let _ = writer.await;
}

/// What the reader does with one incoming WebSocket message.
enum Pumped {
    Text(String),
    Close,
    Skip,
}

/// Spawns the reader and writer tasks that turn a WebSocket (axum's on the listening side,
/// tokio-tungstenite's on the dialing side) into a [`Wire`] of text frames.
fn pump<S, M, E>(
    socket: S,
    read: fn(M) -> Pumped,
    write: fn(String) -> M,
) -> (
    Wire,
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<()>,
)
where
    S: futures_util::Stream<Item = Result<M, E>> + futures_util::Sink<M> + Send + 'static,
    M: Send + 'static,
    E: Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = mpsc::channel::<String>(QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<String>(QUEUE);
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let text = match read(message) {
                Pumped::Text(text) => text,
                Pumped::Close => break,
                Pumped::Skip => continue,
            };
            if in_tx.send(text).await.is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(text) = out_rx.recv().await {
            if sink.send(write(text)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let wire = Wire {
        rx: in_rx,
        tx: out_tx,
    };
    (wire, reader, writer)
}

async fn is_blocked(node: &Node, peer: &PublicKey) -> bool {
    let id = key_id(peer);
    matches!(
        node.blocking(move |s| s.peer(&id)).await,
        Ok(Some(p)) if p.status == PeerStatus::Blocked
    )
}

enum Handshake {
    Dialer(Dialer),
    Listener(Listener),
}

impl Handshake {
    fn poll_frame(&mut self) -> Option<String> {
        match self {
            Handshake::Dialer(d) => d.poll_frame(),
            Handshake::Listener(l) => l.poll_frame(),
        }
    }
    fn established(&self) -> Option<PublicKey> {
        match self {
            Handshake::Dialer(d) => d.is_established(),
            Handshake::Listener(l) => l.is_established(),
        }
    }
    fn handle(&mut self, text: &str) -> Result<(), kith_protocol::link::LinkError> {
        match self {
            Handshake::Dialer(d) => d.handle_frame(text, now()),
            Handshake::Listener(l) => l.handle_frame(text, now()),
        }
    }
}

/// Runs the link handshake over `wire`; the peer's key once both sides are proven.
async fn handshake(mut hs: Handshake, wire: &mut Wire, node: &Node) -> Option<PublicKey> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
    loop {
        while let Some(frame) = hs.poll_frame() {
            if wire.tx.send(frame).await.is_err() {
                return None;
            }
        }
        if let Some(peer) = hs.established() {
            return Some(peer);
        }
        let text = tokio::select! {
            _ = node.shutdown.cancelled() => return None,
            _ = tokio::time::sleep_until(deadline) => return None,
            text = wire.rx.recv() => text?,
        };
        if let Err(e) = hs.handle(&text) {
            tracing::info!("link handshake failed: {e}");
            node.metrics.reject("link_handshake");
            return None;
        }
    }
}

/// Dials every configured and admin-added peer, each in its own task, for as long as the
/// node runs.
pub async fn start_dialers(node: SharedNode) {
    let mut urls: Vec<String> = node.config.federation.peers.clone();
    match node.blocking(|s| s.peers()).await {
        Ok(peers) => urls.extend(
            peers
                .into_iter()
                .filter(|p| p.status == PeerStatus::Added)
                .filter_map(|p| p.url),
        ),
        Err(e) => tracing::warn!("could not read the peer list: {}", e.message),
    }
    let mut seen = HashSet::new();
    for url in urls {
        let text = url.trim_end_matches('/').to_owned();
        if seen.insert(text.clone()) {
            let tracker = node.tracker.clone();
            tracker.spawn(dial_forever(Arc::clone(&node), text));
        }
    }
}

/// Backoff before reconnection attempt `attempt` (0-based): 0.5 s doubling up to 60 s,
/// with jitter taking between half and all of it.
pub fn backoff(attempt: u32) -> Duration {
    let full = (500u64 << attempt.min(7)).min(60_000);
    let jittered = rand::thread_rng().gen_range(full / 2..=full);
    Duration::from_millis(jittered)
}

async fn dial_forever(node: SharedNode, url: String) {
    let allow_private = node.config.federation.allow_private_addresses;
    let mut attempt = 0u32;
    loop {
        if node.shutdown.is_cancelled() {
            return;
        }
        let checked = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || check_peer_url(&url, allow_private)).await
        };
        let peer_url = match checked {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::warn!(%url, "not linking with this peer: {e}");
                return;
            }
            Err(_) => return,
        };
        let base = peer_url.as_str().trim_end_matches('/');
        let ws_url = if base.starts_with("https://") {
            tracing::warn!(%url, "not linking with this peer: linking over TLS (https) is not built yet");
            return;
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}{FEDERATION_PATH}")
        } else {
            tracing::warn!(%url, "not linking with this peer: unsupported scheme");
            return;
        };
        match dial_once(&node, &ws_url, peer_url.addresses()).await {
            Ok(true) => attempt = 0,
            Ok(false) => attempt = attempt.saturating_add(1),
            Err(e) => {
                tracing::info!(%url, "could not link with a peer: {e}");
                attempt = attempt.saturating_add(1);
            }
        }
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff(attempt)) => {}
        }
    }
}

/// One connection to a peer; `Ok(true)` if the link was established (and has now ended).
///
/// It connects only to `addresses`, the ones [`check_peer_url`] resolved and found public,
/// and never looks the name up again (a second lookup could answer with a private address).
async fn dial_once(
    node: &SharedNode,
    ws_url: &str,
    addresses: &[std::net::SocketAddr],
) -> anyhow::Result<bool> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_tungstenite::tungstenite::Message as TMessage;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FED_FRAME_BYTES))
        .max_frame_size(Some(MAX_FED_FRAME_BYTES));
    let connect = async {
        let stream = tokio::net::TcpStream::connect(addresses).await?;
        let (socket, response) =
            tokio_tungstenite::client_async_with_config(ws_url, stream, Some(config)).await?;
        anyhow::Ok((socket, response))
    };
    let (socket, _) = tokio::select! {
        _ = node.shutdown.cancelled() => return Ok(false),
        r = tokio::time::timeout(Duration::from_secs(10), connect) => r??,
    };
    let (mut wire, reader, writer) = pump(
        socket,
        |m| match m {
            TMessage::Text(text) => Pumped::Text(text.as_str().to_owned()),
            TMessage::Close(_) => Pumped::Close,
            _ => Pumped::Skip,
        },
        |text| TMessage::Text(text.into()),
    );
    let mut challenge = [0u8; 32];
    rand::thread_rng().fill(&mut challenge);
    let dialer = Dialer::new(node.key.clone(), None, challenge, now());
    let linked = match handshake(Handshake::Dialer(dialer), &mut wire, node).await {
        Some(peer) => {
            tracing::info!(%peer, url = ws_url, "linked with a peer");
            run_link(node, wire, peer).await;
            true
        }
        None => {
            drop(wire);
            false
        }
    };
    reader.abort();
    let _ = writer.await;
    Ok(linked)
}

/// The public groups this node holds. Blocking.
fn public_groups(node: &Node) -> Result<Vec<GroupId>, crate::store::StoreError> {
    let filter = Filter {
        kinds: Some(vec![GROUP_CREATE]),
        ..Filter::default()
    };
    let creates = node.store.query(&filter, MAX_GROUPS_LISTED, usize::MAX)?;
    let mut out = Vec::new();
    for genesis in creates {
        if node.groups.may_read(&genesis, None)? {
            out.push(GroupId::from(genesis.id()));
        }
    }
    Ok(out)
}

/// The sync items of a public group held here; empty for groups not held or private.
/// Blocking.
fn group_set(node: &Node, group: &GroupId) -> Result<(SyncSet, bool), crate::store::StoreError> {
    let Some(genesis) = node
        .store
        .get_event(&EventId::from_bytes(*group.as_bytes()))?
    else {
        return Ok((SyncSet::new(), false));
    };
    if genesis.kind() != GROUP_CREATE || !node.groups.may_read(&genesis, None)? {
        return Ok((SyncSet::new(), false));
    }
    let events = node.store.group_events(group)?;
    let set = std::iter::once(&genesis)
        .chain(events.iter())
        .map(|e| Item::new(e.created_at(), e.id()))
        .collect();
    Ok((set, true))
}

/// What became of one event from the peer.
enum Ingested {
    Stored,
    Waiting(Box<Event>),
    Refused(Rejection),
}

/// The state of one established link.
struct Link<'a> {
    node: &'a SharedNode,
    wire: Wire,
    peer: PublicKey,
    /// Groups the peer holds (it announced them or synced them from us).
    peer_groups: HashSet<GroupId>,
    sync_queue: VecDeque<GroupId>,
    sessions: u32,
    current: Option<(GroupId, u32, Initiator<SyncSet>)>,
    responders: HashMap<GroupId, (u32, Responder<SyncSet>)>,
    fetch_queue: VecDeque<EventId>,
    requested: HashSet<EventId>,
    in_flight: Option<Vec<EventId>>,
    pending: HashMap<EventId, Vec<u8>>,
    from_peer: HashSet<EventId>,
    bad_frames: u32,
}

async fn run_link(node: &SharedNode, wire: Wire, peer: PublicKey) {
    let mut live = node.hub.subscribe();
    let mut link = Link {
        node,
        wire,
        peer,
        peer_groups: HashSet::new(),
        sync_queue: VecDeque::new(),
        sessions: 0,
        current: None,
        responders: HashMap::new(),
        fetch_queue: VecDeque::new(),
        requested: HashSet::new(),
        in_flight: None,
        pending: HashMap::new(),
        from_peer: HashSet::new(),
        bad_frames: 0,
    };
    let node2 = Arc::clone(node);
    let ours = match node.blocking(move |_| public_groups(&node2)).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!("could not list the groups held: {}", e.message);
            return;
        }
    };
    for chunk in ours.chunks(MAX_GROUPS_PER_FRAME) {
        if !link
            .wire
            .send(&FedFrame::FedGroups {
                groups: chunk.to_vec(),
            })
            .await
        {
            return;
        }
    }
    loop {
        if !link.drive().await {
            break;
        }
        let keep = tokio::select! {
            _ = node.shutdown.cancelled() => false,
            text = link.wire.rx.recv() => match text {
                Some(text) => link.on_frame(&text).await,
                None => false,
            },
            announced = live.recv() => match announced {
                Ok(a) => link.on_announced(&a).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: reconcile every followed group again.
                    let groups: Vec<GroupId> = link.peer_groups.iter().copied().collect();
                    for g in groups {
                        link.queue_sync(g);
                    }
                    true
                }
                Err(broadcast::error::RecvError::Closed) => false,
            },
        };
        if !keep {
            break;
        }
    }
    tracing::info!(peer = %link.peer, "link ended");
}

impl Link<'_> {
    fn queue_sync(&mut self, group: GroupId) {
        let running = self.current.as_ref().is_some_and(|(g, _, _)| *g == group);
        if !running && !self.sync_queue.contains(&group) {
            self.sync_queue.push_back(group);
        }
    }

    async fn send(&self, frame: FedFrame) -> bool {
        self.wire.send(&frame).await
    }

    async fn refuse(&mut self, code: ErrorCode, message: impl Into<String>) -> bool {
        self.bad_frames += 1;
        self.node.metrics.reject("federation_bad_frame");
        let ok = self
            .send(FedFrame::FedError {
                code,
                message: message.into(),
            })
            .await;
        ok && self.bad_frames <= MAX_BAD_FRAMES
    }

    /// Starts the next sync session and the next fetch when nothing is in flight.
    async fn drive(&mut self) -> bool {
        while self.current.is_none() {
            let Some(group) = self.sync_queue.pop_front() else {
                break;
            };
            let node = Arc::clone(self.node);
            let Ok((set, _)) = self.node.blocking(move |_| group_set(&node, &group)).await else {
                continue;
            };
            let mut initiator = Initiator::new(set, sync::Config::default());
            self.sessions = self.sessions.wrapping_add(1);
            if let Some(msg) = initiator.poll_transmit() {
                let frame = FedFrame::FedSync {
                    group,
                    session: self.sessions,
                    msg: to_base64(&msg),
                };
                if !self.send(frame).await {
                    return false;
                }
                self.current = Some((group, self.sessions, initiator));
            }
        }
        if self.in_flight.is_none() && !self.fetch_queue.is_empty() {
            let n = self.fetch_queue.len().min(FETCH_BATCH);
            let ids: Vec<EventId> = self.fetch_queue.drain(..n).collect();
            self.in_flight = Some(ids.clone());
            return self.send(FedFrame::FedFetch { ids }).await;
        }
        true
    }

    async fn on_frame(&mut self, text: &str) -> bool {
        if text.len() > MAX_FED_FRAME_BYTES {
            return self
                .refuse(ErrorCode::FrameTooLarge, "link frames are at most 4 MiB")
                .await;
        }
        let frame: FedFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                return self
                    .refuse(ErrorCode::BadFrame, format!("not a link frame: {e}"))
                    .await
            }
        };
        match frame {
            FedFrame::FedGroups { groups } => {
                if groups.len() > MAX_GROUPS_PER_FRAME {
                    return self
                        .refuse(ErrorCode::BadFrame, "too many groups in one frame")
                        .await;
                }
                for g in groups {
                    self.peer_groups.insert(g);
                    self.queue_sync(g);
                }
                true
            }
            FedFrame::FedSync {
                group,
                session,
                msg,
            } => self.on_sync(group, session, &msg).await,
            FedFrame::FedSyncReply {
                group,
                session,
                msg,
            } => self.on_sync_reply(group, session, &msg).await,
            FedFrame::FedFetch { ids } => self.on_fetch(ids).await,
            FedFrame::FedEvents { events, missing } => self.on_events(events, missing).await,
            FedFrame::FedEvent { event } => {
                let Ok(bytes) = from_base64(&event) else {
                    return self
                        .refuse(ErrorCode::MalformedEvent, "the event is not base64")
                        .await;
                };
                self.take(bytes, None).await
            }
            FedFrame::FedError { code, message } => {
                tracing::info!(peer = %self.peer, ?code, "the peer refused something: {message}");
                true
            }
        }
    }

    async fn on_sync(&mut self, group: GroupId, session: u32, msg: &str) -> bool {
        let Ok(bytes) = from_base64(msg) else {
            return self
                .refuse(ErrorCode::BadFrame, "the sync message is not base64")
                .await;
        };
        if self
            .responders
            .get(&group)
            .is_none_or(|(s, _)| *s != session)
        {
            if self.responders.len() >= MAX_RESPONDERS {
                self.responders.clear();
            }
            let node = Arc::clone(self.node);
            let Ok((set, held)) = self.node.blocking(move |_| group_set(&node, &group)).await
            else {
                return self
                    .refuse(ErrorCode::Internal, "could not read the group")
                    .await;
            };
            if held {
                // The peer follows this group now: push its new events.
                self.peer_groups.insert(group);
            }
            self.responders.insert(
                group,
                (session, Responder::new(set, sync::Config::default())),
            );
        }
        let Some((_, responder)) = self.responders.get_mut(&group) else {
            return true;
        };
        if let Err(e) = responder.handle_message(&bytes) {
            self.responders.remove(&group);
            return self
                .refuse(ErrorCode::BadFrame, format!("sync failed: {e}"))
                .await;
        }
        match responder.poll_transmit() {
            Some(answer) => {
                self.send(FedFrame::FedSyncReply {
                    group,
                    session,
                    msg: to_base64(&answer),
                })
                .await
            }
            None => true,
        }
    }

    async fn on_sync_reply(&mut self, group: GroupId, session: u32, msg: &str) -> bool {
        let matches = self
            .current
            .as_ref()
            .is_some_and(|(g, s, _)| *g == group && *s == session);
        if !matches {
            return self
                .refuse(ErrorCode::BadFrame, "no such sync session")
                .await;
        }
        let Ok(bytes) = from_base64(msg) else {
            self.current = None;
            return self
                .refuse(ErrorCode::BadFrame, "the sync message is not base64")
                .await;
        };
        let Some((_, _, mut initiator)) = self.current.take() else {
            return true;
        };
        if let Err(e) = initiator.handle_message(&bytes) {
            tracing::info!(peer = %self.peer, %group, "sync failed: {e}");
            return true;
        }
        if initiator.is_done() {
            let genesis = EventId::from_bytes(*group.as_bytes());
            let (_, need) = initiator.into_ids();
            if need.contains(&genesis) {
                self.fetch_queue.push_back(genesis);
            }
            self.fetch_queue
                .extend(need.into_iter().filter(|id| *id != genesis));
            return true;
        }
        match initiator.poll_transmit() {
            Some(next) => {
                let frame = FedFrame::FedSync {
                    group,
                    session,
                    msg: to_base64(&next),
                };
                self.current = Some((group, session, initiator));
                self.send(frame).await
            }
            None => true,
        }
    }

    async fn on_fetch(&mut self, ids: Vec<EventId>) -> bool {
        if ids.len() > FETCH_BATCH {
            return self
                .refuse(ErrorCode::BadFrame, "too many ids in one fed_fetch")
                .await;
        }
        let node = Arc::clone(self.node);
        let found = self
            .node
            .blocking(move |s| {
                let mut events = Vec::new();
                let mut missing = Vec::new();
                let mut bytes = 0;
                for id in ids {
                    let served = match s.get_event(&id)? {
                        Some(e) if in_group(&e).is_some() && node.groups.may_read(&e, None)? => {
                            Some(e)
                        }
                        _ => None,
                    };
                    match served {
                        Some(e) => {
                            let text = to_base64(&e.encode());
                            if !events.is_empty() && bytes + text.len() > EVENTS_REPLY_BYTES {
                                // Not sent, not missing: the peer asks again.
                                continue;
                            }
                            bytes += text.len();
                            events.push(text);
                        }
                        None => missing.push(id),
                    }
                }
                Ok((events, missing))
            })
            .await;
        match found {
            Ok((events, missing)) => self.send(FedFrame::FedEvents { events, missing }).await,
            Err(e) => self.refuse(e.code, e.message).await,
        }
    }

    async fn on_events(&mut self, events: Vec<String>, missing: Vec<EventId>) -> bool {
        let Some(asked) = self.in_flight.take() else {
            return self
                .refuse(ErrorCode::BadFrame, "fed_events without a fed_fetch")
                .await;
        };
        if events.len() > FETCH_BATCH {
            return self
                .refuse(ErrorCode::BadFrame, "more events than were asked for")
                .await;
        }
        let mut got = HashSet::new();
        for text in events {
            let Ok(bytes) = from_base64(&text) else {
                if !self
                    .refuse(ErrorCode::MalformedEvent, "an event is not base64")
                    .await
                {
                    return false;
                }
                continue;
            };
            let id = match Event::decode(&bytes) {
                Ok(e) => e.id(),
                Err(e) => {
                    if !self
                        .refuse(ErrorCode::MalformedEvent, format!("bad event: {e}"))
                        .await
                    {
                        return false;
                    }
                    continue;
                }
            };
            if !asked.contains(&id) {
                if !self
                    .refuse(ErrorCode::BadFrame, "an event that was not asked for")
                    .await
                {
                    return false;
                }
                continue;
            }
            got.insert(id);
            if !self.take(bytes, Some(id)).await {
                return false;
            }
        }
        if !got.is_empty() {
            // What did not fit in the answer is asked for again.
            for id in asked.into_iter().rev() {
                if !got.contains(&id) && !missing.contains(&id) {
                    self.fetch_queue.push_front(id);
                }
            }
        }
        true
    }

    /// Ingests one event from the peer, fetching its missing parents (or group) first.
    async fn take(&mut self, bytes: Vec<u8>, expected: Option<EventId>) -> bool {
        match self.ingest(&bytes, expected).await {
            Ingested::Stored => {
                self.retry_pending().await;
                true
            }
            Ingested::Waiting(event) => {
                if self.pending.len() < MAX_PENDING {
                    self.pending.insert(event.id(), bytes);
                }
                let mut wanted: Vec<EventId> = event.header().parents.clone();
                if let Some(g) = event.group() {
                    wanted.push(EventId::from_bytes(*g.as_bytes()));
                }
                for id in wanted {
                    if self.requested.len() < MAX_PARENT_FETCHES && self.requested.insert(id) {
                        self.fetch_queue.push_front(id);
                    }
                }
                true
            }
            Ingested::Refused(r) => self.refuse(r.code, r.message).await,
        }
    }

    async fn ingest(&mut self, bytes: &[u8], expected: Option<EventId>) -> Ingested {
        match self.node.ingest_from_peer(bytes, expected).await {
            Ok(published) => {
                if self.from_peer.len() >= 4096 {
                    self.from_peer.clear();
                }
                self.from_peer.insert(published.id);
                Ingested::Stored
            }
            Err(r) if matches!(r.code, ErrorCode::MissingParents | ErrorCode::UnknownGroup) => {
                match Event::decode(bytes) {
                    Ok(e) => Ingested::Waiting(Box::new(e)),
                    Err(_) => Ingested::Refused(r),
                }
            }
            Err(r) => Ingested::Refused(r),
        }
    }

    /// Stores the waiting events whose parents have arrived.
    async fn retry_pending(&mut self) {
        loop {
            let mut progressed = false;
            let waiting: Vec<(EventId, Vec<u8>)> = self.pending.drain().collect();
            for (id, bytes) in waiting {
                match self.ingest(&bytes, Some(id)).await {
                    Ingested::Stored => progressed = true,
                    Ingested::Waiting(_) => {
                        self.pending.insert(id, bytes);
                    }
                    Ingested::Refused(r) => {
                        tracing::info!(peer = %self.peer, event = %id, "refused an event from a peer: {}", r.message);
                    }
                }
            }
            if !progressed || self.pending.is_empty() {
                return;
            }
        }
    }

    /// Pushes a newly stored event to the peer if it follows the event's public group.
    async fn on_announced(&mut self, announced: &crate::hub::Announced) -> bool {
        let event = &announced.event;
        let Some(group) = in_group(event) else {
            return true;
        };
        if self.from_peer.contains(&event.id()) {
            return true;
        }
        let node = Arc::clone(self.node);
        let copy = event.clone();
        let public = self
            .node
            .blocking(move |_| node.groups.may_read(&copy, None))
            .await
            .unwrap_or(false);
        if !public {
            return true;
        }
        if event.kind() == GROUP_CREATE {
            // A new public group: tell the peer, which follows it by syncing it.
            return self
                .send(FedFrame::FedGroups {
                    groups: vec![group],
                })
                .await;
        }
        if !self.peer_groups.contains(&group) {
            return true;
        }
        self.send(FedFrame::FedEvent {
            event: announced.base64.clone(),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..40 {
            let full = (500u64 << attempt.min(7)).min(60_000);
            let d = backoff(attempt).as_millis() as u64;
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
        }
        assert!(backoff(100) <= Duration::from_secs(60));
    }

    #[test]
    fn frames_are_tagged_json_and_unknown_ones_are_refused() {
        let frame = FedFrame::FedFetch { ids: vec![] };
        assert_eq!(frame.encode(), r#"{"type":"fed_fetch","ids":[]}"#);
        assert!(serde_json::from_str::<FedFrame>(r#"{"type":"fed_nonsense"}"#).is_err());
        assert!(
            serde_json::from_str::<FedFrame>(r#"{"type":"fed_fetch","ids":[],"x":1}"#).is_err()
        );
    }
}
