//! [`Connection`]: one WebSocket to a node, shared by concurrent requests and
//! subscriptions.
//!
//! Two background tasks serve a connection (see `socket`): the reader decodes each frame
//! from the node, checks events and routes them (see `router`); the writer sends the
//! frames callers hand it, in order. Callers wait on their own reply or subscription channel, so a hundred
//! publishers and a thousand subscriptions can share one connection.
//!
//! A connection stays open while a [`Connection`] handle (they are cheap clones) or a
//! [`Subscription`] from it is alive, or until [`Connection::close`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith_protocol::auth::sign_login;
use kith_protocol::frame::{Bytes, ClientFrame, EventBytes, Filter};
use kith_protocol::{Event, EventId, GroupId, Limits, PublicKey, SecretKey};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::address::ws_url;
use crate::error::ClientError;
use crate::router::{lock, Reply, Router, SubscriptionSlot};
use crate::socket::{self, frame_message, Greeting};
use crate::subscription::Subscription;

/// Tunables for a connection. The defaults suit the `kith` tool and tests.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long to wait for the node to accept the connection and greet.
    pub hello_timeout: Duration,
    /// How long to wait for the answer to a request (login, publish).
    pub request_timeout: Duration,
    /// How many unread items one subscription may hold before it is stopped.
    pub subscription_buffer: usize,
    /// Largest frame accepted from the node, in bytes.
    pub max_message_bytes: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            hello_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            subscription_buffer: 1024,
            max_message_bytes: 1 << 20,
        }
    }
}

/// What the node said about a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The event's id.
    pub event_id: EventId,
    /// True if the node had it already (publishing the same event twice is harmless).
    pub duplicate: bool,
}

/// The state shared by a connection's handles, its subscriptions and its reader task.
#[derive(Debug)]
pub(crate) struct Shared {
    url: String,
    node: PublicKey,
    challenge: [u8; 32],
    versions: Vec<u8>,
    limits: Limits,
    options: ConnectOptions,
    router: Arc<Mutex<Router>>,
    outgoing: mpsc::Sender<Message>,
    next_id: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// Stops a subscription: forgets it and tells the node.
    pub(crate) async fn unsubscribe(&self, id: &str) {
        if lock(&self.router).remove_subscription(id) {
            let frame = ClientFrame::Unsubscribe { id: id.to_owned() };
            // If the connection is gone, so is the subscription.
            let _ = self.outgoing.send(frame_message(&frame)).await;
        }
    }

    /// Like [`Shared::unsubscribe`], but without waiting: for `Drop`.
    pub(crate) fn forget_subscription(&self, id: &str) {
        if lock(&self.router).remove_subscription(id) {
            let frame = ClientFrame::Unsubscribe { id: id.to_owned() };
            // If the queue is full the node keeps sending for a while; those frames are
            // dropped on arrival since nobody is subscribed any more.
            let _ = self.outgoing.try_send(frame_message(&frame));
        }
    }
}

/// A WebSocket connection to a node. Cloning it is cheap and shares the connection.
#[derive(Debug, Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl Connection {
    /// Connects to the node at `address` (e.g. `http://127.0.0.1:8080`; see
    /// [`ws_url`]) and waits for its greeting.
    pub async fn connect(address: &str) -> Result<Connection, ClientError> {
        Connection::connect_with(address, ConnectOptions::default()).await
    }

    /// [`Connection::connect`] with non-default [`ConnectOptions`].
    pub async fn connect_with(
        address: &str,
        options: ConnectOptions,
    ) -> Result<Connection, ClientError> {
        let url = ws_url(address)?;
        let router = Arc::new(Mutex::new(Router::default()));
        let opened = socket::open(&url, &options, router.clone()).await?;
        let Greeting {
            node,
            challenge,
            versions,
            limits,
        } = opened.greeting;
        Ok(Connection {
            shared: Arc::new(Shared {
                url,
                node,
                challenge,
                versions,
                limits,
                options,
                router,
                outgoing: opened.outgoing,
                next_id: AtomicU64::new(1),
                writer: Mutex::new(Some(opened.writer)),
            }),
        })
    }

    /// The node's WebSocket URL.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The node's public key, from its greeting.
    pub fn node_key(&self) -> PublicKey {
        self.shared.node
    }

    /// The event limits the node announced in its greeting.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The protocol versions the node announced.
    pub fn versions(&self) -> &[u8] {
        &self.shared.versions
    }

    /// Whether the connection has ended (closed by either side, or lost).
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.router).closed_reason().is_some()
    }

    /// Logs in as `key` by signing the node's challenge. With an `invite` code, an
    /// unregistered key is registered on the node at the same time. A connection logs in
    /// once; reading needs no login, publishing does.
    pub async fn login(&self, key: &SecretKey, invite: Option<&str>) -> Result<(), ClientError> {
        let id = self.next_id();
        let frame = ClientFrame::Login {
            id: id.clone(),
            key: key.public_key(),
            signature: Bytes(sign_login(key, &self.shared.node, &self.shared.challenge)),
            invite: invite.map(str::to_owned),
        };
        self.request(id, &frame, "the login").await.map(drop)
    }

    /// Publishes a signed event and waits until the node has stored it.
    pub async fn publish(&self, event: &Event) -> Result<PublishOutcome, ClientError> {
        let outcome = self.publish_bytes(event.encode()).await?;
        if outcome.event_id != event.id() {
            return Err(ClientError::Protocol(format!(
                "it stored event {} under the id {}",
                event.id(),
                outcome.event_id
            )));
        }
        Ok(outcome)
    }

    /// Publishes event bytes exactly as given, without decoding them first: for tests
    /// that check how a node treats malformed or tampered events. Use
    /// [`Connection::publish`] otherwise.
    pub async fn publish_bytes(&self, bytes: Vec<u8>) -> Result<PublishOutcome, ClientError> {
        let expected = Event::decode(&bytes).ok().map(|e| e.id());
        let id = self.next_id();
        let frame = ClientFrame::Publish {
            id: id.clone(),
            event: EventBytes(bytes),
        };
        let reply = self.request(id, &frame, "the publish request").await?;
        let event_id = reply.event_id.or(expected).ok_or_else(|| {
            ClientError::Protocol("it accepted an event without saying its id".into())
        })?;
        Ok(PublishOutcome {
            event_id,
            duplicate: reply.duplicate,
        })
    }

    /// Opens a subscription: stored events matching `filter`, then
    /// [`SubscriptionItem::StoredDone`](crate::SubscriptionItem::StoredDone), then live ones. Returns once the request is sent;
    /// a refusal arrives as [`SubscriptionItem::Closed`](crate::SubscriptionItem::Closed).
    pub async fn subscribe(&self, filter: Filter) -> Result<Subscription, ClientError> {
        let id = self.next_id();
        let (items, items_rx) = mpsc::channel(self.shared.options.subscription_buffer.max(1));
        let (end, end_rx) = oneshot::channel();
        let slot = SubscriptionSlot {
            items,
            end,
            filter: Arc::new(filter.clone()),
        };
        lock(&self.shared.router).add_subscription(id.clone(), slot)?;
        let frame = ClientFrame::Subscribe {
            id: id.clone(),
            filter,
        };
        if self
            .shared
            .outgoing
            .send(frame_message(&frame))
            .await
            .is_err()
        {
            lock(&self.shared.router).remove_subscription(&id);
            return Err(self.closed_error());
        }
        Ok(Subscription::new(id, items_rx, end_rx, self.shared.clone()))
    }

    /// Asks the node for its own account of a group's state (the `group_state` frame):
    /// members, roles, rules, proposals and the log as the node computes them, with views
    /// at the node's clock. A private group's state is given only to a connection logged
    /// in as a member (otherwise the node refuses with `members_only`).
    ///
    /// This is the node's word, not proof: [`crate::group::fetch_group`] fetches the
    /// group's signed events and computes the state on this computer; compare the two
    /// digests to find out whether they agree.
    pub async fn group_state(&self, group: GroupId) -> Result<serde_json::Value, ClientError> {
        let id = self.next_id();
        let frame = ClientFrame::GroupState {
            id: id.clone(),
            group,
        };
        let reply = self.request(id, &frame, "the group state request").await?;
        match reply.group_state {
            Some((named, state)) if named == group => Ok(state),
            Some((named, _)) => Err(ClientError::Protocol(format!(
                "it answered a question about group {group} with the state of group {named}"
            ))),
            None => Err(ClientError::Protocol(
                "it answered a group state request without a state".into(),
            )),
        }
    }

    /// How long a request waits for its answer.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.shared.options.request_timeout
    }

    /// Stops a subscription; the same as [`Subscription::unsubscribe`].
    pub async fn unsubscribe(&self, subscription: Subscription) {
        subscription.unsubscribe().await;
    }

    /// Closes the connection for every handle: pending requests fail, subscriptions end,
    /// and the node is told goodbye. Waits a few seconds at most.
    pub async fn close(&self) {
        lock(&self.shared.router).shut_down("this program closed it");
        let writer = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let _ = self.shared.outgoing.send(Message::Close(None)).await;
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }

    fn next_id(&self) -> String {
        self.shared
            .next_id
            .fetch_add(1, Ordering::Relaxed)
            .to_string()
    }

    fn closed_error(&self) -> ClientError {
        let reason = lock(&self.shared.router)
            .closed_reason()
            .unwrap_or("the connection ended")
            .to_owned();
        ClientError::Closed { reason }
    }

    async fn request(
        &self,
        id: String,
        frame: &ClientFrame,
        waiting_for: &'static str,
    ) -> Result<Reply, ClientError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.shared.router).add_request(id.clone(), reply_tx)?;
        if self
            .shared
            .outgoing
            .send(frame_message(frame))
            .await
            .is_err()
        {
            lock(&self.shared.router).cancel_request(&id);
            return Err(self.closed_error());
        }
        let wait = self.shared.options.request_timeout;
        match tokio::time::timeout(wait, reply_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                lock(&self.shared.router).cancel_request(&id);
                Err(ClientError::Timeout {
                    url: self.shared.url.clone(),
                    waiting_for,
                    seconds: wait.as_secs(),
                })
            }
        }
    }
}
