//! Durable storage of events and accounts.
//!
//! [`Store`] is the seam for storage engines: today [`SledStore`]; a larger engine can be added
//! for nodes that outgrow one machine without touching connections or federation. Store
//! methods are blocking; async code reaches them through [`Committer`] (writes, group-committed)
//! or `spawn_blocking` (reads).
//!
//! **Invariant:** only this module imports `sled`.
//! **Invariant:** the store only ever holds events that passed `kith_protocol::validate`.

mod commit;
mod outbox;
mod sled_store;

pub use commit::{CommitError, Committer};
pub use sled_store::SledStore;

use kith_protocol::event::{Event, EventId, GroupId, Timestamp};
use kith_protocol::frame::Filter;
use kith_protocol::validate::ValidEvent;
use kith_protocol::PublicKey;

use crate::federation::peers::Peer;

/// A storage engine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine reported an I/O or corruption error.
    #[error(
        "the event store failed: {0}. Check free disk space and the data directory's permissions"
    )]
    Engine(String),
    /// A stored record could not be read back.
    #[error("a stored record is damaged ({0}); if no peer holds the event, restore the data directory from a backup")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the store could not be opened because another process (a running node) holds
    /// its lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Engine(message)
            if sled_store::LOCKED.iter().any(|part| message.contains(part)))
    }
}

/// How one event of a write batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Newly stored.
    New,
    /// Already stored before; nothing changed.
    Duplicate,
}

/// Why an invite could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteUse {
    /// One use was taken; this many remain.
    Taken {
        /// Uses left after this one.
        remaining: u32,
    },
    /// Every allowed use has been taken.
    UsedUp,
}

/// One queued push: event `id`, queued for a peer at `at_ms`, under the peer's sequence
/// number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Position in the peer's queue: strictly increasing per peer, never reused.
    pub seq: u64,
    /// The event to send.
    pub id: EventId,
    /// When the push was queued (milliseconds since the epoch).
    pub at_ms: u64,
}

/// One peer's outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStats {
    /// The peer node's key.
    pub peer: PublicKey,
    /// Entries queued.
    pub depth: u64,
    /// When the oldest queued entry was queued; `None` if the queue is empty.
    pub oldest_ms: Option<u64>,
}

/// A storage engine for a node.
pub trait Store: Send + Sync + 'static {
    /// Stores validated events (indexes included). Not durable until [`Store::flush`].
    /// Re-storing an event is a no-op reported as [`Inserted::Duplicate`].
    fn put_events(&self, events: &[ValidEvent]) -> Result<Vec<Inserted>, StoreError>;

    /// Makes every earlier write durable (see `Durability` in the config for how durable).
    fn flush(&self) -> Result<(), StoreError>;

    /// One event by id.
    fn get_event(&self, id: &EventId) -> Result<Option<Event>, StoreError>;

    /// The newest `limit` events matching `filter`, returned oldest first (ascending by
    /// `(created_at, id)`). Uses an index for ids, groups and authors; other filters walk the
    /// time index, examining at most `max_scan` entries.
    fn query(
        &self,
        filter: &Filter,
        limit: usize,
        max_scan: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The groups whose creating event is stored, newest first (by the creating event's
    /// `created_at`), at most `limit`, from the groups index: no event is read.
    fn group_ids(&self, limit: usize) -> Result<Vec<GroupId>, StoreError>;

    /// Every stored event of a group (not its creating event), in index order, posts
    /// without their bodies: what folding the group's state needs (a `Group` keeps no post
    /// bodies). Each body is dropped as its event is read, so loading a group of long posts
    /// never holds them all. Used when the node needs a group not in memory.
    fn group_events_to_fold(&self, group: &GroupId) -> Result<Vec<Event>, StoreError>;

    /// A group's events (not its creating event) from `(time, id)` on, inclusive, in
    /// `(created_at, id)` order, at most `limit`: the index order, so a node serves a range
    /// of a group without reading the rest of it. Damaged records are left out (logged).
    fn group_events_from(
        &self,
        group: &GroupId,
        time: Timestamp,
        id: &[u8; 32],
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The `(created_at, id)` of every stored event of a group (not its creating event), in
    /// that order, read from the group index without reading the events themselves: what a
    /// sync session needs. An index entry whose event record is absent (a crash between the
    /// two writes) is left out, so the node fetches that event again.
    fn group_items(&self, group: &GroupId) -> Result<Vec<(Timestamp, EventId)>, StoreError>;

    /// How many events are stored (kept as a counter, not counted).
    fn event_count(&self) -> Result<u64, StoreError>;

    /// Whether `key` may publish on this node.
    fn is_registered(&self, key: &PublicKey) -> Result<bool, StoreError>;

    /// Registers `key`, noting how (e.g. `"invite:<nonce>"` or `"open"`) and when. Durable on return.
    fn register(&self, key: &PublicKey, how: &str, at_ms: u64) -> Result<(), StoreError>;

    /// Atomically takes one use of the invite with this nonce, allowing `max_uses` in all.
    fn take_invite_use(&self, nonce: &[u8], max_uses: u32) -> Result<InviteUse, StoreError>;

    /// Stores or replaces a peer record under [`Peer::id`] (the `peers` tree). Not durable
    /// until [`Store::flush`].
    fn put_peer(&self, peer: &Peer) -> Result<(), StoreError>;

    /// The peer record stored under `id`: a normalised base URL, or `key:<kith1…>`.
    fn peer(&self, id: &str) -> Result<Option<Peer>, StoreError>;

    /// Every peer record, ordered by id.
    fn peers(&self) -> Result<Vec<Peer>, StoreError>;

    /// Deletes the peer record stored under `id` (a normalised base URL, or `key:<kith1…>`);
    /// returns whether there was one. Not durable until [`Store::flush`], like
    /// [`Store::put_peer`].
    fn remove_peer(&self, id: &str) -> Result<bool, StoreError>;

    /// How many bytes of the admin peer log (`<data-dir>/admin/peers.jsonl`) have been applied.
    fn admin_peers_applied(&self) -> Result<u64, StoreError>;

    /// Records that the admin peer log has been applied up to byte `offset`. Not durable until
    /// [`Store::flush`].
    fn set_admin_peers_applied(&self, offset: u64) -> Result<(), StoreError>;

    /// Appends `ids` to the outbound queue of each peer in `peers`, noting `at_ms`. Keeps at
    /// most `max_per_peer` entries per peer, dropping the oldest (the dropped count is
    /// returned; a peer that lost entries is caught up by set reconciliation on its next
    /// link). Not durable until [`Store::flush`].
    fn outbox_push(
        &self,
        peers: &[PublicKey],
        ids: &[EventId],
        at_ms: u64,
        max_per_peer: u64,
    ) -> Result<u64, StoreError>;

    /// Up to `limit` queued entries for `peer` with sequence number > `after`, oldest first.
    fn outbox_peek(
        &self,
        peer: &PublicKey,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Deletes `peer`'s entries with sequence numbers <= `upto` (the peer acknowledged them).
    /// Not durable until [`Store::flush`].
    fn outbox_ack(&self, peer: &PublicKey, upto: u64) -> Result<(), StoreError>;

    /// Depth and age of every non-empty queue.
    fn outbox_stats(&self) -> Result<Vec<OutboxStats>, StoreError>;

    /// Records that `peer` follows public group `group` (it synced it from us). Not durable
    /// until [`Store::flush`].
    fn add_follower(&self, group: &GroupId, peer: &PublicKey) -> Result<(), StoreError>;

    /// The peers following `group`.
    fn followers(&self, group: &GroupId) -> Result<Vec<PublicKey>, StoreError>;
}
