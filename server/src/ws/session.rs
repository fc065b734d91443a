//! One connection's state: its login, its subscriptions, its rate limits, and the handling
//! of each frame it sends.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::ws::Message;
use kith_protocol::auth::verify_login;
use kith_protocol::frame::{
    decode_client_frame, encode_frame, ClientFrame, ErrorCode, Filter, NodeFrame,
    MAX_REQUEST_ID_LEN,
};
use kith_protocol::PublicKey;
use rand::RngCore as _;
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument as _;

use crate::hub::Announced;
use crate::node::{Rejection, SharedNode};
use crate::ratelimit::Bucket;

/// What the connection loop should do after a frame.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// Keep going.
    Continue,
    /// The client is gone.
    Closed,
    /// Close the connection, telling the client why.
    Abort(ErrorCode, String),
}

struct Subscription {
    filter: Filter,
    /// Live events with a sequence number up to this were covered by the stored query.
    after_seq: u64,
}

pub(super) struct Session {
    /// The live stream, held only while the connection has a subscription.
    pub(super) live: Option<broadcast::Receiver<std::sync::Arc<Announced>>>,
    node: SharedNode,
    out: mpsc::Sender<Message>,
    challenge: Option<([u8; 32], Instant)>,
    key: Option<PublicKey>,
    subscriptions: HashMap<String, Subscription>,
    frames: Bucket,
    publishes: Bucket,
}

impl Session {
    pub(super) fn new(node: SharedNode, out: mpsc::Sender<Message>) -> Session {
        let limits = &node.config.connections;
        let now = Instant::now();
        Session {
            frames: Bucket::new(limits.frames_per_second, limits.frames_burst, now),
            publishes: Bucket::new(limits.publish_per_second, limits.publish_burst, now),
            live: None,
            node,
            out,
            challenge: None,
            key: None,
            subscriptions: HashMap::new(),
        }
    }

    /// Sends the `hello` with a fresh login challenge.
    pub(super) fn hello(&mut self) -> Flow {
        let mut challenge = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut challenge);
        self.challenge = Some((challenge, Instant::now()));
        self.send(&NodeFrame::Hello {
            node: self.node.key.public_key(),
            challenge: kith_protocol::frame::Bytes(challenge),
            versions: kith_protocol::SUPPORTED_VERSIONS.to_vec(),
            limits: self.node.config.limits.clone(),
        })
    }

    /// Queues a frame; a full queue means the client is not reading.
    fn send(&self, frame: &NodeFrame) -> Flow {
        self.send_text(encode_frame(frame))
    }

    fn send_text(&self, text: String) -> Flow {
        match self.out.try_send(Message::Text(text.into())) {
            Ok(()) => Flow::Continue,
            Err(mpsc::error::TrySendError::Closed(_)) => Flow::Closed,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.node
                    .metrics
                    .slow_reader_disconnects
                    .fetch_add(1, Relaxed);
                Flow::Abort(
                    ErrorCode::SlowReader,
                    format!(
                        "this connection is not reading fast enough ({} frames are waiting); it is closed so the node's memory stays bounded. Reconnect and subscribe with `since` to catch up",
                        self.node.config.connections.outbound_queue
                    ),
                )
            }
        }
    }

    fn error(&self, id: Option<String>, rejection: Rejection) -> Flow {
        self.node.metrics.reject(&code_name(rejection.code));
        self.send(&NodeFrame::Error {
            id,
            code: rejection.code,
            message: rejection.message,
            supported: None,
        })
    }

    fn ok(&self, id: String) -> Flow {
        self.send(&NodeFrame::Ok {
            id,
            event_id: None,
            duplicate: false,
        })
    }

    /// Handles one WebSocket message from the client.
    pub(super) async fn on_message(&mut self, message: Message) -> Flow {
        self.node.metrics.frames_received.fetch_add(1, Relaxed);
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return self.error(
                    None,
                    Rejection::new(
                        ErrorCode::BadFrame,
                        "binary frames are not used; send each frame as a JSON text message",
                    ),
                )
            }
            Message::Close(_) => return Flow::Closed,
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
        };
        if !self.frames.take(Instant::now()) {
            return self.error(
                None,
                Rejection::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many frames: this node takes {} per second per connection; slow down",
                        self.node.config.connections.frames_per_second
                    ),
                ),
            );
        }
        let max = self.node.config.connections.max_frame_bytes;
        if text.len() > max {
            return self.error(
                None,
                Rejection::new(
                    ErrorCode::FrameTooLarge,
                    format!(
                        "the frame is {} bytes; this node accepts frames of at most {max} bytes",
                        text.len()
                    ),
                ),
            );
        }
        let frame = match decode_client_frame(text.as_str()) {
            Ok(frame) => frame,
            Err(e) => {
                self.node.metrics.reject(&code_name(e.code()));
                return self.send(&e.to_frame());
            }
        };
        let id = match &frame {
            ClientFrame::Login { id, .. }
            | ClientFrame::Publish { id, .. }
            | ClientFrame::Subscribe { id, .. }
            | ClientFrame::Unsubscribe { id }
            | ClientFrame::GroupState { id, .. } => id.clone(),
            _ => String::new(),
        };
        if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN {
            return self.error(
                None,
                Rejection::new(
                    ErrorCode::BadRequestId,
                    format!("every request needs an \"id\" of 1 to {MAX_REQUEST_ID_LEN} bytes"),
                ),
            );
        }
        let kind = match &frame {
            ClientFrame::Login { .. } => "login",
            ClientFrame::Publish { .. } => "publish",
            ClientFrame::Subscribe { .. } => "subscribe",
            ClientFrame::Unsubscribe { .. } => "unsubscribe",
            ClientFrame::GroupState { .. } => "group_state",
            _ => "other",
        };
        let span = tracing::debug_span!("request", id = %id, kind);
        self.handle(id, frame).instrument(span).await
    }

    async fn handle(&mut self, id: String, frame: ClientFrame) -> Flow {
        match frame {
            ClientFrame::Login {
                key,
                signature,
                invite,
                ..
            } => self.login(id, key, signature.0, invite).await,
            ClientFrame::Publish { event, .. } => self.publish(id, &event.0).await,
            ClientFrame::GroupState { group, .. } => self.group_state(id, group).await,
            ClientFrame::Subscribe { filter, .. } => self.subscribe(id, filter).await,
            ClientFrame::Unsubscribe { .. } => {
                if self.subscriptions.remove(&id).is_some() {
                    if self.subscriptions.is_empty() {
                        self.live = None;
                    }
                    self.ok(id)
                } else {
                    self.error(
                        Some(id),
                        Rejection::new(
                            ErrorCode::NotFound,
                            "there is no open subscription with that id on this connection",
                        ),
                    )
                }
            }
            _ => self.error(
                Some(id),
                Rejection::new(
                    ErrorCode::UnknownType,
                    "this frame type is not handled by this node",
                ),
            ),
        }
    }

    async fn login(
        &mut self,
        id: String,
        key: PublicKey,
        signature: [u8; 64],
        invite: Option<String>,
    ) -> Flow {
        // A challenge is good for one attempt: taking it here means a replayed or retried
        // login always fails, and the client reconnects for a fresh one.
        let Some((challenge, issued)) = self.challenge.take() else {
            return self.error(Some(id), Rejection::new(ErrorCode::AuthFailed,
                "this connection's login challenge was already used; reconnect to get a new one"));
        };
        let ttl = Duration::from_secs(self.node.config.connections.challenge_ttl_secs);
        if issued.elapsed() > ttl {
            return self.error(
                Some(id),
                Rejection::new(
                    ErrorCode::AuthFailed,
                    format!(
                        "the login challenge is older than {} seconds; reconnect to get a new one",
                        ttl.as_secs()
                    ),
                ),
            );
        }
        let node_key = self.node.key.public_key();
        if !verify_login(&key, &node_key, &challenge, &signature) {
            return self.error(Some(id), Rejection::new(ErrorCode::AuthFailed, format!(
                "the login signature does not match key {key} and this connection's challenge; sign the challenge from this connection's hello with the secret key of {key}")));
        }
        match self.node.ensure_registered(key, invite.as_deref()).await {
            Ok(()) => {
                tracing::debug!(%key, "logged in");
                self.key = Some(key);
                self.ok(id)
            }
            Err(rejection) => self.error(Some(id), rejection),
        }
    }

    async fn publish(&mut self, id: String, bytes: &[u8]) -> Flow {
        let now = Instant::now();
        let limits = &self.node.config.connections;
        let Some(key) = self.key else {
            // Not logged in: only a join or profile naming another home (see
            // `Node::publish_home_announcement`), rate-limited like any publish.
            if !self.publishes.take(now) {
                return self.error(Some(id), Rejection::new(ErrorCode::RateLimited, format!(
                    "too many events: this node takes {} per second per connection; wait a moment and send again",
                    limits.publish_per_second)));
            }
            let published = self.node.publish_home_announcement(bytes).await;
            return self.published(id, published);
        };
        if !self.publishes.take(now) || !self.node.key_buckets.take(&key, now) {
            return self.error(Some(id), Rejection::new(ErrorCode::RateLimited, format!(
                "too many events: this node takes {} per second per connection and {} per second per key; wait a moment and send again",
                limits.publish_per_second, limits.key_publish_per_second)));
        }
        let published = self.node.publish(bytes).await;
        self.published(id, published)
    }

    fn published(
        &mut self,
        id: String,
        published: Result<crate::node::Published, Rejection>,
    ) -> Flow {
        match published {
            Ok(published) => {
                tracing::debug!(event = %published.id, duplicate = published.duplicate, "published");
                self.send(&NodeFrame::Ok {
                    id,
                    event_id: Some(published.id),
                    duplicate: published.duplicate,
                })
            }
            Err(rejection) => self.error(Some(id), rejection),
        }
    }

    async fn subscribe(&mut self, id: String, filter: Filter) -> Flow {
        let limits = &self.node.config.connections;
        if self.subscriptions.contains_key(&id) {
            return self.error(Some(id), Rejection::new(ErrorCode::BadRequestId,
                "a subscription with this id is already open on this connection; unsubscribe first or pick another id"));
        }
        if self.subscriptions.len() >= limits.max_subscriptions {
            return self.error(Some(id), Rejection::new(ErrorCode::TooManySubscriptions, format!(
                "this connection already has {} subscriptions, the most this node allows; close one first", limits.max_subscriptions)));
        }
        if filter.size() > limits.max_filter_entries {
            return self.error(Some(id), Rejection::new(ErrorCode::BadFrame, format!(
                "the filter lists {} entries; at most {} are allowed. Split it into several subscriptions", filter.size(), limits.max_filter_entries)));
        }
        let limit = filter
            .limit
            .unwrap_or(limits.max_stored_results)
            .min(limits.max_stored_results) as usize;
        let max_scan = limits.max_scan;
        // Listen before querying: every event announced after this point reaches the
        // receiver, and the query's sequence number says which of them it already covered.
        if self.live.is_none() {
            self.live = Some(self.node.hub.subscribe());
        }
        let hub = std::sync::Arc::clone(&self.node.hub);
        let groups = std::sync::Arc::clone(&self.node.groups);
        let reader = self.key;
        let query = filter.clone();
        let stored = self
            .node
            .blocking(move |store| {
                let (result, seq) = hub.read_consistent(|| store.query(&query, limit, max_scan));
                let mut readable = Vec::new();
                for event in result? {
                    if groups.may_read(&event, reader.as_ref())? {
                        readable.push(event);
                    }
                }
                Ok((readable, seq))
            })
            .await;
        let (events, after_seq) = match stored {
            Ok(found) => found,
            Err(rejection) => return self.error(Some(id), rejection),
        };
        self.subscriptions
            .insert(id.clone(), Subscription { filter, after_seq });
        let sub = serde_json::to_string(&id).unwrap_or_default();
        for event in &events {
            let b64 = kith_protocol::encoding::to_base64(&event.encode());
            // Stored results may exceed the queue: wait for room, but not forever.
            let text = event_frame(&sub, &b64);
            let sent = self
                .out
                .send_timeout(Message::Text(text.into()), Duration::from_secs(10))
                .await;
            if sent.is_err() {
                return Flow::Abort(ErrorCode::SlowReader,
                    "the stored events for this subscription could not be delivered within 10 seconds; the connection is closed. Reconnect and ask for fewer (limit)".into());
            }
        }
        self.node
            .metrics
            .deliveries
            .fetch_add(events.len() as u64, Relaxed);
        self.send(&NodeFrame::Stored { sub: id })
    }

    /// Delivers a live event to every subscription it matches.
    pub(super) fn on_live(&mut self, announced: &Announced) -> Flow {
        if self.subscriptions.is_empty() {
            return Flow::Continue;
        }
        if let Some(group) = crate::groups::in_group(&announced.event) {
            // Live events were checked against their group just before being stored, so
            // the group is almost always in memory and this check does not touch the store
            // (if `group_cache_events` evicted it meanwhile, `is_member` reloads it).
            if self.node.groups.is_private(&group) {
                let member = self
                    .key
                    .is_some_and(|k| self.node.groups.is_member(&group, &k).unwrap_or(false));
                if !member {
                    return Flow::Continue;
                }
            }
        }
        for (id, sub) in &self.subscriptions {
            if announced.seq > sub.after_seq && sub.filter.matches(&announced.event) {
                let sub_json = serde_json::to_string(id).unwrap_or_default();
                let flow = self.send_text(event_frame(&sub_json, &announced.base64));
                if flow != Flow::Continue {
                    return flow;
                }
                self.node.metrics.deliveries.fetch_add(1, Relaxed);
            }
        }
        Flow::Continue
    }
}

impl Session {
    async fn group_state(&mut self, id: String, group: kith_protocol::event::GroupId) -> Flow {
        let groups = std::sync::Arc::clone(&self.node.groups);
        let reader = self.key;
        let now = crate::node::now();
        let answer = self
            .node
            .blocking(move |_| {
                let Some(view) = groups.view(&group, now)? else {
                    return Ok(Err(Rejection::new(
                        ErrorCode::UnknownGroup,
                        format!("this node holds no group {group}"),
                    )));
                };
                let private = groups.is_private(&group);
                let member = match reader {
                    Some(k) => groups.is_member(&group, &k)?,
                    None => false,
                };
                if private && !member {
                    return Ok(Err(Rejection::new(
                        ErrorCode::MembersOnly,
                        "this group is private: log in as one of its members to see its state",
                    )));
                }
                Ok(Ok(view))
            })
            .await;
        match stored_or(answer) {
            Ok(state) => self.send(&NodeFrame::GroupState { id, group, state }),
            Err(rejection) => self.error(Some(id), rejection),
        }
    }
}

fn stored_or<T>(r: Result<Result<T, Rejection>, Rejection>) -> Result<T, Rejection> {
    r.and_then(|inner| inner)
}

/// An `event` frame built from pre-encoded parts, so fan-out encodes each event only once.
/// Equivalent to `encode_frame(&NodeFrame::Event { .. })`.
fn event_frame(sub_json: &str, event_base64: &str) -> String {
    format!(
        r#"{{"v":{},"type":"event","sub":{sub_json},"event":"{event_base64}"}}"#,
        kith_protocol::PROTOCOL_VERSION
    )
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}
