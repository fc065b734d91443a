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
mod sled_store;

pub use commit::{CommitError, Committer};
pub use sled_store::SledStore;

use kith_protocol::event::{Event, EventId, GroupId};
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
    #[error("a stored record is damaged ({0}); restore the data directory from a backup")]
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

    /// Every stored event of a group (not its creating event), in index order. Used once per
    /// group, when the node first needs the group's state.
    fn group_events(&self, group: &GroupId) -> Result<Vec<Event>, StoreError>;

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

    /// How many bytes of the admin peer log (`<data-dir>/admin/peers.jsonl`) have been applied.
    fn admin_peers_applied(&self) -> Result<u64, StoreError>;

    /// Records that the admin peer log has been applied up to byte `offset`. Not durable until
    /// [`Store::flush`].
    fn set_admin_peers_applied(&self, offset: u64) -> Result<(), StoreError>;
}
