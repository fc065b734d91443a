//! The node's shared state and the two actions every connection uses: logging in and
//! publishing. Events from peers go through [`Node::ingest_from_peer`], which checks them
//! exactly like a client's publish (less local registration).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kith_protocol::event::{EventId, Timestamp};
use kith_protocol::frame::ErrorCode;
use kith_protocol::validate::{validate, ValidEvent};
use kith_protocol::{PublicKey, SecretKey};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::groups::{in_group, Groups};
use crate::hub::Hub;
use crate::invite::{Invite, InviteError};
use crate::metrics::Metrics;
use crate::ratelimit::KeyBuckets;
use crate::store::{CommitError, Committer, Inserted, InviteUse, Store, StoreError};

/// A refused request: the code and plain-language message for the error frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
}

impl Rejection {
    /// A rejection with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        tracing::error!("store error: {e}");
        Rejection::new(
            ErrorCode::Internal,
            "the node could not reach its store; nothing was saved. Try again later",
        )
    }
}

impl From<CommitError> for Rejection {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Stopped => Rejection::new(ErrorCode::ShuttingDown, e.to_string()),
            CommitError::Store(s) => s.into(),
        }
    }
}

/// What a successful publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The event's id.
    pub id: EventId,
    /// Whether it was stored before.
    pub duplicate: bool,
}

/// Everything a connection handler needs, shared by all of them.
pub struct Node {
    /// The configuration in force.
    pub config: Config,
    /// The node's own key (identifies it in logins and, later, to peers).
    pub key: SecretKey,
    /// The store, for reads.
    pub store: Arc<dyn Store>,
    /// The store's writer, for durable writes.
    pub committer: Committer,
    /// Live announcements.
    pub hub: Arc<Hub>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Per-key publish rate.
    pub key_buckets: KeyBuckets,
    /// The groups held here, with their state.
    pub groups: Arc<Groups>,
    /// Keys known to be registered (registration is never undone, so this only grows, and
    /// at most by the number of registered keys).
    pub registered: std::sync::RwLock<std::collections::HashSet<PublicKey>>,
    /// Cancelled when the node starts shutting down.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tracker: tokio_util::task::TaskTracker,
    /// The URL other nodes reach this node at (named as members' home).
    pub public_url: String,
    /// The links and dialers running now.
    pub federation: crate::federation::Registry,
    /// TLS roots and the HTTP client for peers (built once at start).
    pub peer_client: crate::federation::fetch::PeerClient,
}

/// The wall clock as a protocol timestamp.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp(millis)
}

impl Node {
    /// Validates, authorizes and durably stores an event. Returns once it is flushed.
    pub async fn publish(self: &Arc<Self>, bytes: &[u8]) -> Result<Published, Rejection> {
        let event = validate(bytes, None, now(), &self.config.limits)
            .map_err(|e| Rejection::new(e.code(), e.to_string()))?;
        self.authorize(&event).await?;
        self.commit_checked(event, None).await
    }

    /// Publishes, for a connection that has not logged in, an event that only says where a
    /// member lives: a join or a profile naming a home node other than this one. This is how
    /// someone registered on another node joins a group held here, or moves home when their
    /// old node is gone: the group's own rules decide, registration here is not needed.
    pub async fn publish_home_announcement(
        self: &Arc<Self>,
        bytes: &[u8],
    ) -> Result<Published, Rejection> {
        let event = validate(bytes, None, now(), &self.config.limits)
            .map_err(|e| Rejection::new(e.code(), e.to_string()))?;
        if !self.names_other_home(&event) {
            return Err(Rejection::new(
                ErrorCode::AuthRequired,
                "publishing needs a logged-in connection; send a login frame first (without logging in, a node only takes a join or profile naming another node as your home)",
            ));
        }
        self.check_group(&event).await?;
        self.commit_checked(event, None).await
    }

    /// Stores an event a linked peer sent: validated exactly like a client's publish (with
    /// the id the peer announced, when there is one) and checked against its group's rules,
    /// but without requiring the author to be registered here (authors register on their
    /// home nodes). Only group events are taken. `from` is the peer that sent it: the event
    /// is queued for every other peer that should get it.
    pub async fn ingest_from_peer(
        self: &Arc<Self>,
        bytes: &[u8],
        expected_id: Option<EventId>,
        from: &PublicKey,
    ) -> Result<Published, Rejection> {
        let event = validate(bytes, expected_id.as_ref(), now(), &self.config.limits)
            .map_err(|e| Rejection::new(e.code(), e.to_string()))?;
        if in_group(&event).is_none() {
            return Err(Rejection::new(
                ErrorCode::NotAllowed,
                "nodes only exchange events of groups; this event is in no group",
            ));
        }
        self.check_group(&event).await?;
        self.commit_checked(event, Some(*from)).await
    }

    /// Commits an event that passed its checks, adds it to its group's state, and queues it
    /// for the peers that should get it (all but `from`, the peer it came from).
    pub(crate) async fn commit_checked(
        self: &Arc<Self>,
        event: ValidEvent,
        from: Option<PublicKey>,
    ) -> Result<Published, Rejection> {
        let id = event.id();
        let grouped = in_group(&event).is_some();
        let recorded = grouped.then(|| (*event).clone());
        let inserted = self.committer.commit(vec![event]).await?;
        let duplicate = inserted.first() == Some(&Inserted::Duplicate);
        if let (Some(event), false) = (recorded, duplicate) {
            // Before answering: an event published after this `ok` may cite this one.
            let node = Arc::clone(self);
            let homes = self
                .blocking(move |_| {
                    node.groups.record(&event)?;
                    crate::federation::route::enqueue(&node, &event, from.as_ref())
                })
                .await?;
            self.federation.notify_queued();
            for (key, url) in homes {
                crate::federation::connect::dial_home(self, key, &url);
            }
        }
        Ok(Published { id, duplicate })
    }

    /// Whether this node may store `event`: its author must be registered here, or the event
    /// is a home announcement (a join or profile naming another node as home, see
    /// [`Node::publish_home_announcement`]); and the group's rules must allow it.
    async fn authorize(&self, event: &ValidEvent) -> Result<(), Rejection> {
        let author = event.author();
        if !self.is_registered(author).await? && !self.names_other_home(event) {
            return Err(Rejection::new(
                ErrorCode::NotRegistered,
                format!("the author {author} is not registered on this node, so it does not store their events; register with an invite code first (kith register)"),
            ));
        }
        self.check_group(event).await
    }

    /// Whether `event` is a join or profile naming a node other than this one as home.
    fn names_other_home(&self, event: &kith_protocol::Event) -> bool {
        home_named(event, &self.config.limits).is_some_and(|home| home != self.key.public_key())
    }

    /// The group's rules, for a group event (nothing to check otherwise).
    async fn check_group(&self, event: &ValidEvent) -> Result<(), Rejection> {
        if in_group(event).is_some() {
            let groups = Arc::clone(&self.groups);
            let event = (**event).clone();
            tokio::task::spawn_blocking(move || groups.check(&event))
                .await
                .map_err(|e| {
                    Rejection::new(
                        ErrorCode::Internal,
                        format!(
                            "the node failed while checking the group's rules ({e}); try again"
                        ),
                    )
                })??;
        }
        crate::refusal::check_blocking(self, event).await?;
        Ok(())
    }

    /// Whether `key` is registered, from memory when it was seen before.
    async fn is_registered(&self, key: PublicKey) -> Result<bool, Rejection> {
        let known = self
            .registered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key);
        if known {
            return Ok(true);
        }
        let found = self.blocking(move |s| s.is_registered(&key)).await?;
        if found {
            self.registered
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key);
        }
        Ok(found)
    }

    /// Registers `key` if it is not yet registered and the node allows it (open registration
    /// or a valid invite). Called on login.
    pub async fn ensure_registered(
        &self,
        key: PublicKey,
        invite: Option<&str>,
    ) -> Result<(), Rejection> {
        if self.is_registered(key).await? {
            return Ok(());
        }
        let at = now().0;
        if self.config.open_registration {
            return self.blocking(move |s| s.register(&key, "open", at)).await;
        }
        let Some(code) = invite else {
            return Err(Rejection::new(
                ErrorCode::NotRegistered,
                format!("the key {key} is not registered on this node; ask the node's admin for an invite code and log in with it (kith register --invite CODE)"),
            ));
        };
        let invite = Invite::decode(code, &self.key, at / 1000)
            .map_err(|e| Rejection::new(ErrorCode::BadInvite, e.to_string()))?;
        let how = format!("invite:{}", hex::encode(invite.nonce));
        let outcome = self
            .blocking(move |s| {
                let taken = s.take_invite_use(&invite.nonce, u32::from(invite.max_uses))?;
                if let InviteUse::Taken { .. } = taken {
                    s.register(&key, &how, at)?;
                }
                Ok(taken)
            })
            .await?;
        match outcome {
            InviteUse::Taken { remaining } => {
                tracing::info!(%key, remaining, "registered a key with an invite");
                Ok(())
            }
            InviteUse::UsedUp => Err(Rejection::new(
                ErrorCode::BadInvite,
                InviteError::UsedUp.to_string(),
            )),
        }
    }

    /// Runs a blocking store call off the async workers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Rejection> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| {
                Rejection::new(
                    ErrorCode::Internal,
                    format!("the node failed while reading its store ({e}); try again"),
                )
            })?
            .map_err(Rejection::from)
    }
}

/// The home node a join or profile names, if any.
fn home_named(
    event: &kith_protocol::Event,
    limits: &kith_protocol::validate::Limits,
) -> Option<PublicKey> {
    use kith_protocol::group::{body, JOIN, PROFILE};
    let bytes = event.body()?;
    match event.kind() {
        JOIN => body::Join::parse(bytes, limits)
            .ok()
            .and_then(|j| j.home)
            .map(|h| h.node),
        PROFILE => body::Profile::parse(bytes, limits)
            .ok()
            .and_then(|p| p.home)
            .map(|h| h.node),
        _ => None,
    }
}

/// Keeps `Arc<Node>` readable at call sites.
pub type SharedNode = Arc<Node>;
