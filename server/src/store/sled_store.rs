//! The sled engine: one tree per record type, keys laid out so every common query is a
//! range scan.
//!
//! | tree        | key                                   | value          |
//! |-------------|---------------------------------------|----------------|
//! | `events`    | id (32)                               | encoded event  |
//! | `by_time`   | created_at BE (8) · id (32)           | empty          |
//! | `by_group`  | group (32) · created_at BE (8) · id   | empty          |
//! | `by_author` | author (32) · created_at BE (8) · id  | empty          |
//! | `accounts`  | public key (32)                       | JSON record    |
//! | `invites`   | invite nonce                          | uses taken u32 |
//! | `meta`      | name                                  | value          |
//! | `peers`     | normalised URL, or `key:<kith1…>`     | JSON `Peer`    |
//! | `outbox`    | peer (32) · seq BE (8)                | id · at_ms BE  |
//! | `followers` | group (32) · peer (32)                | empty          |
//!
//! The outbox (per-peer outbound queues) lives in `super::outbox`, which also keeps one
//! `meta` entry per peer whose queue has been emptied.
//!
//! Index entries are written before the event itself, so after a crash an event that is
//! present always has its index entries (sled recovers a prefix of the write log).

use std::path::{Path, PathBuf};

use kith_protocol::event::{Event, EventId, GroupId, Timestamp};
use kith_protocol::frame::Filter;
use kith_protocol::validate::ValidEvent;
use kith_protocol::{Kind, PublicKey};

use super::outbox::{parse_peer, Outbox};
use super::{Inserted, InviteUse, OutboxEntry, OutboxStats, Store, StoreError};
use crate::federation::peers::Peer;

const EVENT_COUNT: &[u8] = b"event_count";
/// Set once the `groups` tree lists every stored group (stores from before it existed are
/// indexed once, at the first open that finds it unset).
const GROUPS_INDEXED: &[u8] = b"groups_indexed";
/// `meta` entry: bytes of the admin peer log applied (u64 BE).
const ADMIN_PEERS_APPLIED: &[u8] = b"admin_peers_applied";
/// Parts of the messages [`SledStore::open`] gives when another process holds the lock: ours,
/// and sled 0.34's own (it reports a failed `flock` as an `Other` I/O error, not `WouldBlock`).
pub(super) const LOCKED: [&str; 2] = ["is locked by another process", "could not acquire lock"];

/// A [`Store`] on sled 0.34.
pub struct SledStore {
    db: sled::Db,
    path: PathBuf,
    fsync: bool,
    events: sled::Tree,
    by_time: sled::Tree,
    by_group: sled::Tree,
    by_author: sled::Tree,
    /// Every group whose creating event is stored: group id → its `created_at` (8 bytes,
    /// big-endian). Listing groups reads this, not every event.
    groups: sled::Tree,
    accounts: sled::Tree,
    invites: sled::Tree,
    meta: sled::Tree,
    peers: sled::Tree,
    followers: sled::Tree,
    /// Records found damaged on disk (id → the bytes as found), set aside so the event
    /// counts as missing and is taken again from a peer; kept, not deleted.
    damaged: sled::Tree,
    pub(super) outbox: Outbox,
}

pub(super) fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

/// The event id an index key ends with.
fn indexed_id(key: &[u8]) -> Result<EventId, StoreError> {
    key.len()
        .checked_sub(32)
        .and_then(|at| <[u8; 32]>::try_from(&key[at..]).ok())
        .map(EventId::from_bytes)
        .ok_or_else(|| StoreError::Corrupt("short index key".into()))
}

/// Whether an event creates a group (and so goes into the groups index).
fn is_group_create(event: &Event) -> bool {
    event.kind() == kith_protocol::group::GROUP_CREATE && event.group().is_none()
}

fn index_key(prefix: Option<&[u8; 32]>, event: &Event) -> Vec<u8> {
    let mut key = Vec::with_capacity(72);
    if let Some(p) = prefix {
        key.extend_from_slice(p);
    }
    key.extend_from_slice(&event.created_at().0.to_be_bytes());
    key.extend_from_slice(event.id().as_bytes());
    key
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, with sled's page cache bounded to
    /// `cache_bytes`. With `fsync`, every flush also forces the data file to the device
    /// (survives power loss, not just a crash of the process).
    pub fn open(dir: &Path, cache_bytes: u64, fsync: bool) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains(LOCKED[1]) =>
                {
                    StoreError::Engine(format!(
                        "the store in {} is locked by another process; is another kithd running on this data directory?",
                        dir.display()
                    ))
                }
                other => engine(other),
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(engine);
        let store = SledStore {
            events: tree("events")?,
            by_time: tree("by_time")?,
            by_group: tree("by_group")?,
            by_author: tree("by_author")?,
            groups: tree("groups")?,
            accounts: tree("accounts")?,
            invites: tree("invites")?,
            meta: tree("meta")?,
            peers: tree("peers")?,
            followers: tree("followers")?,
            damaged: tree("damaged")?,
            outbox: Outbox::new(tree("outbox")?, tree("meta")?),
            path: dir.to_path_buf(),
            fsync,
            db,
        };
        store.index_groups()?;
        Ok(store)
    }

    /// Opens a store for a test (1 MiB cache, no fsync), waiting up to 5 s while it is
    /// still locked: sled lets go of its lock only once its background writes of a store
    /// just dropped in this process have finished.
    #[cfg(test)]
    pub(crate) fn open_in_test(dir: &Path) -> SledStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match SledStore::open(dir, 1 << 20, false) {
                Ok(store) => return store,
                Err(e)
                    if e.to_string().contains("locked") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("could not open the test store: {e}"),
            }
        }
    }

    /// A group's events from `(time, id)` on, in index order, at most `limit`, each passed
    /// through `map` as it is read; damaged records are left out (logged).
    fn group_events_mapped(
        &self,
        group: &GroupId,
        time: Timestamp,
        id: &[u8; 32],
        limit: usize,
        map: impl Fn(Event) -> Event,
    ) -> Result<Vec<Event>, StoreError> {
        let mut start = Vec::with_capacity(72);
        start.extend_from_slice(group.as_bytes());
        start.extend_from_slice(&time.0.to_be_bytes());
        start.extend_from_slice(id);
        let mut out = Vec::new();
        for entry in self.by_group.range(start..) {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry.map_err(engine)?;
            if !key.starts_with(group.as_bytes()) {
                break;
            }
            if let Some(event) = self.listed(&indexed_id(&key)?)? {
                out.push(map(event));
            }
        }
        Ok(out)
    }

    /// Moves a damaged record out of `events` into `damaged`: the event then counts as not
    /// held (a sync session lists only events whose record is there), so a peer that holds
    /// it sends it again, and the indexes, which stay, find the good copy once it is stored.
    /// A good copy stored meanwhile is left alone.
    fn set_aside(&self, id: &EventId, bytes: &sled::IVec) -> Result<(), StoreError> {
        self.damaged
            .insert(id.as_bytes(), bytes.clone())
            .map_err(engine)?;
        let swapped = self
            .events
            .compare_and_swap(id.as_bytes(), Some(bytes), None::<sled::IVec>)
            .map_err(engine)?;
        if swapped.is_ok() {
            self.meta
                .update_and_fetch(EVENT_COUNT, |old| {
                    let n = old
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map_or(0, u64::from_be_bytes);
                    Some(n.saturating_sub(1).to_be_bytes().to_vec())
                })
                .map_err(engine)?;
        }
        Ok(())
    }

    /// Fills the `groups` tree from the stored events, once: a store written before the
    /// tree existed has its groups only among its events. Reads every event (once per
    /// store, at the first start after an upgrade); later the writes keep it up to date. A
    /// new store needs nothing: its first write marks the index as complete.
    fn index_groups(&self) -> Result<(), StoreError> {
        if self.meta.contains_key(GROUPS_INDEXED).map_err(engine)? || self.events.is_empty() {
            return Ok(());
        }
        let mut found = 0u64;
        for entry in self.events.iter() {
            let (_, bytes) = entry.map_err(engine)?;
            // A damaged record is left for the reads that report it.
            let Ok(event) = Event::decode(&bytes) else {
                continue;
            };
            if is_group_create(&event) {
                self.groups
                    .insert(event.id().as_bytes(), &event.created_at().0.to_be_bytes())
                    .map_err(engine)?;
                found += 1;
            }
        }
        // Written after the entries: a crash before both are on disk only means indexing
        // again at the next start.
        self.meta.insert(GROUPS_INDEXED, &[1]).map_err(engine)?;
        if found > 0 {
            tracing::info!(
                groups = found,
                "indexed the groups of a store written by an earlier version (once)"
            );
        }
        Ok(())
    }

    /// An event for a listing (query, group load): a damaged record is logged and left out,
    /// so one altered record does not make the rest unreadable.
    fn listed(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        match self.get_event(id) {
            Err(StoreError::Corrupt(why)) => {
                tracing::error!("left a damaged event record out: {why}. If no peer holds the event, restore the data directory from a backup");
                Ok(None)
            }
            other => other,
        }
    }

    /// Reads a stored event back, refusing one whose body no longer matches its signed
    /// header (the record was altered on disk): a node never serves what it cannot vouch
    /// for. (The signature is not re-checked on every read; the id and body hash are cheap.)
    fn decode(bytes: &[u8]) -> Result<Event, StoreError> {
        let event = Event::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if let Some(body) = event.body() {
            if !event.header().matches_body(body) {
                return Err(StoreError::Corrupt(format!(
                    "event {} has a body that does not match its signed header",
                    event.id()
                )));
            }
        }
        Ok(event)
    }

    /// Walks one index range newest-first, collecting events that match.
    fn scan(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
        filter: &Filter,
        limit: usize,
        max_scan: usize,
        out: &mut Vec<Event>,
    ) -> Result<(), StoreError> {
        let since = filter.since.map_or(0, |t| t.0);
        let until = filter.until.map_or(u64::MAX, |t| t.0);
        let mut start = prefix.to_vec();
        start.extend_from_slice(&since.to_be_bytes());
        let mut end = prefix.to_vec();
        end.extend_from_slice(&until.to_be_bytes());
        end.extend_from_slice(&[0xff; 32]);
        let mut found = 0;
        for (scanned, entry) in tree.range(start..=end).rev().enumerate() {
            if found >= limit || scanned >= max_scan {
                break;
            }
            let (key, _) = entry.map_err(engine)?;
            if let Some(event) = self.listed(&indexed_id(&key)?)? {
                if filter.matches(&event) {
                    out.push(event);
                    found += 1;
                }
            }
        }
        Ok(())
    }
}

impl Store for SledStore {
    fn put_events(&self, events: &[ValidEvent]) -> Result<Vec<Inserted>, StoreError> {
        let mut results = Vec::with_capacity(events.len());
        let mut added = 0u64;
        for event in events {
            let id = event.id();
            if self.events.contains_key(id.as_bytes()).map_err(engine)? {
                results.push(Inserted::Duplicate);
                continue;
            }
            let h = event.header();
            self.by_time
                .insert(index_key(None, event), &[])
                .map_err(engine)?;
            if let Some(group) = h.group {
                self.by_group
                    .insert(index_key(Some(group.as_bytes()), event), &[])
                    .map_err(engine)?;
            }
            self.by_author
                .insert(index_key(Some(h.author.as_bytes()), event), &[])
                .map_err(engine)?;
            if is_group_create(event) {
                self.groups
                    .insert(id.as_bytes(), &event.created_at().0.to_be_bytes())
                    .map_err(engine)?;
            }
            self.events
                .insert(id.as_bytes(), event.encode())
                .map_err(engine)?;
            results.push(Inserted::New);
            added += 1;
        }
        if added > 0 {
            let count = self
                .meta
                .update_and_fetch(EVENT_COUNT, |old| {
                    let n = old
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map_or(0, u64::from_be_bytes);
                    Some((n + added).to_be_bytes().to_vec())
                })
                .map_err(engine)?;
            let count = count
                .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
                .map_or(0, u64::from_be_bytes);
            if count == added {
                // The store's first events: the groups index has been kept since the start.
                self.meta.insert(GROUPS_INDEXED, &[1]).map_err(engine)?;
            }
        }
        Ok(results)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(engine)?;
        if self.fsync {
            // sled's flush uses sync_file_range, which survives a process crash but not a
            // power cut; fsync on any descriptor of the file forces it to the device.
            let file = std::fs::File::open(self.path.join("db"))
                .map_err(|e| StoreError::Engine(format!("opening the data file to fsync: {e}")))?;
            file.sync_all()
                .map_err(|e| StoreError::Engine(format!("fsync of the data file: {e}")))?;
        }
        Ok(())
    }

    fn get_event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let Some(bytes) = self.events.get(id.as_bytes()).map_err(engine)? else {
            return Ok(None);
        };
        let read = Self::decode(&bytes).and_then(|event| {
            if event.id() == *id {
                Ok(event)
            } else {
                Err(StoreError::Corrupt(format!(
                    "the record stored under event {id} holds event {}",
                    event.id()
                )))
            }
        });
        match read {
            Ok(event) => Ok(Some(event)),
            Err(StoreError::Corrupt(why)) => {
                self.set_aside(id, &bytes)?;
                Err(StoreError::Corrupt(format!(
                    "{why}; the record is set aside (kept in the store's \"damaged\" tree), so the event now counts as missing and is taken again from a peer that holds it"
                )))
            }
            Err(e) => Err(e),
        }
    }

    fn query(
        &self,
        filter: &Filter,
        limit: usize,
        max_scan: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        if let Some(ids) = &filter.ids {
            for id in ids {
                if let Some(event) = self.listed(id)? {
                    if filter.matches(&event) {
                        out.push(event);
                    }
                }
            }
        } else if let Some(groups) = &filter.groups {
            for g in groups {
                self.scan(
                    &self.by_group,
                    g.as_bytes(),
                    filter,
                    limit,
                    max_scan,
                    &mut out,
                )?;
            }
        } else if let Some(authors) = &filter.authors {
            for a in authors {
                self.scan(
                    &self.by_author,
                    a.as_bytes(),
                    filter,
                    limit,
                    max_scan,
                    &mut out,
                )?;
            }
        } else {
            self.scan(&self.by_time, &[], filter, limit, max_scan, &mut out)?;
        }
        // Keep the newest `limit`, deliver oldest first.
        out.sort_by_key(|e| std::cmp::Reverse((e.created_at(), e.id())));
        out.dedup_by_key(|e| e.id());
        out.truncate(limit);
        out.reverse();
        Ok(out)
    }

    fn group_ids(&self, limit: usize) -> Result<Vec<GroupId>, StoreError> {
        let mut groups = Vec::new();
        for entry in self.groups.iter() {
            let (key, value) = entry.map_err(engine)?;
            let (Ok(id), Ok(at)) = (<[u8; 32]>::try_from(&*key), <[u8; 8]>::try_from(&*value))
            else {
                return Err(StoreError::Corrupt(
                    "a malformed entry in the groups index".into(),
                ));
            };
            groups.push((u64::from_be_bytes(at), GroupId::from_bytes(id)));
        }
        groups.sort_unstable_by(|a, b| b.cmp(a));
        groups.truncate(limit);
        Ok(groups.into_iter().map(|(_, id)| id).collect())
    }

    fn group_events_to_fold(&self, group: &GroupId) -> Result<Vec<Event>, StoreError> {
        // Each post's body goes as it is read, so the bodies are never all held at once.
        self.group_events_mapped(group, Timestamp(0), &[0; 32], usize::MAX, |event| {
            if event.kind() == Kind::POST {
                event.without_body()
            } else {
                event
            }
        })
    }

    fn group_events_from(
        &self,
        group: &GroupId,
        time: Timestamp,
        id: &[u8; 32],
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.group_events_mapped(group, time, id, limit, |event| event)
    }

    fn group_items(&self, group: &GroupId) -> Result<Vec<(Timestamp, EventId)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.by_group.scan_prefix(group.as_bytes()) {
            let (key, _) = entry.map_err(engine)?;
            let (time, id) = match (key.get(32..40), key.get(40..72)) {
                (Some(time), Some(id)) => (time, id),
                _ => return Err(StoreError::Corrupt("short group index key".into())),
            };
            let time = Timestamp(u64::from_be_bytes(time.try_into().unwrap_or([0; 8])));
            let id = EventId::from_bytes(id.try_into().unwrap_or([0; 32]));
            if self.events.contains_key(id.as_bytes()).map_err(engine)? {
                out.push((time, id));
            }
        }
        Ok(out)
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(EVENT_COUNT)
            .map_err(engine)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn is_registered(&self, key: &PublicKey) -> Result<bool, StoreError> {
        self.accounts.contains_key(key.as_bytes()).map_err(engine)
    }

    fn register(&self, key: &PublicKey, how: &str, at_ms: u64) -> Result<(), StoreError> {
        let record = serde_json::json!({ "registered_at": at_ms, "via": how });
        self.accounts
            .insert(key.as_bytes(), record.to_string().into_bytes())
            .map_err(engine)?;
        self.flush()
    }

    fn take_invite_use(&self, nonce: &[u8], max_uses: u32) -> Result<InviteUse, StoreError> {
        let mut outcome = InviteUse::UsedUp;
        self.invites
            .update_and_fetch(nonce, |old| {
                let taken = old
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_be_bytes);
                if taken >= max_uses {
                    outcome = InviteUse::UsedUp;
                    Some(taken.to_be_bytes().to_vec())
                } else {
                    outcome = InviteUse::Taken {
                        remaining: max_uses - taken - 1,
                    };
                    Some((taken + 1).to_be_bytes().to_vec())
                }
            })
            .map_err(engine)?;
        self.flush()?;
        Ok(outcome)
    }

    fn put_peer(&self, peer: &Peer) -> Result<(), StoreError> {
        let id = peer.id();
        if id.is_empty() {
            return Err(StoreError::Engine(
                "a peer record needs a URL or a key".into(),
            ));
        }
        let value = serde_json::to_vec(peer).map_err(|e| StoreError::Engine(e.to_string()))?;
        self.peers.insert(id.as_bytes(), value).map_err(engine)?;
        Ok(())
    }

    fn remove_peer(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.peers.remove(id.as_bytes()).map_err(engine)?.is_some())
    }

    fn peer(&self, id: &str) -> Result<Option<Peer>, StoreError> {
        self.peers
            .get(id.as_bytes())
            .map_err(engine)?
            .map(|bytes| decode_peer(&bytes))
            .transpose()
    }

    fn peers(&self) -> Result<Vec<Peer>, StoreError> {
        self.peers
            .iter()
            .map(|entry| decode_peer(&entry.map_err(engine)?.1))
            .collect()
    }

    fn admin_peers_applied(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(ADMIN_PEERS_APPLIED)
            .map_err(engine)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn set_admin_peers_applied(&self, offset: u64) -> Result<(), StoreError> {
        self.meta
            .insert(ADMIN_PEERS_APPLIED, &offset.to_be_bytes())
            .map_err(engine)?;
        Ok(())
    }

    fn outbox_push(
        &self,
        peers: &[PublicKey],
        ids: &[EventId],
        at_ms: u64,
        max_per_peer: u64,
    ) -> Result<u64, StoreError> {
        self.outbox.push(peers, ids, at_ms, max_per_peer)
    }

    fn outbox_peek(
        &self,
        peer: &PublicKey,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox.peek(peer, after, limit)
    }

    fn outbox_ack(&self, peer: &PublicKey, upto: u64) -> Result<(), StoreError> {
        self.outbox.ack(peer, upto)
    }

    fn outbox_stats(&self) -> Result<Vec<OutboxStats>, StoreError> {
        self.outbox.stats()
    }

    fn add_follower(&self, group: &GroupId, peer: &PublicKey) -> Result<(), StoreError> {
        let key = [group.as_bytes().as_slice(), peer.as_bytes()].concat();
        self.followers.insert(key, &[]).map_err(engine)?;
        Ok(())
    }

    fn followers(&self, group: &GroupId) -> Result<Vec<PublicKey>, StoreError> {
        self.followers
            .scan_prefix(group.as_bytes())
            .map(|entry| {
                let (key, _) = entry.map_err(engine)?;
                parse_peer(key.get(32..).unwrap_or_default())
            })
            .collect()
    }
}

fn decode_peer(bytes: &[u8]) -> Result<Peer, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("peer record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::peers::PeerStatus;

    #[test]
    fn a_record_altered_on_disk_is_refused_not_served() {
        use kith_protocol::event::{EventBuilder, Timestamp};
        use kith_protocol::kind::{Kind, PostBody};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_in_test(dir.path());
        let key = kith_protocol::SecretKey::from_seed(&[3; 32]);
        let post = |text: &str| {
            let body = PostBody { text: text.into() }.to_bytes();
            let event = EventBuilder::new(Kind::POST, Timestamp(1_000), body)
                .sign(&key)
                .unwrap();
            let limits = kith_protocol::validate::Limits::default();
            kith_protocol::validate::validate(&event.encode(), None, Timestamp(2_000), &limits)
                .unwrap()
        };
        let (ten, other) = (post("10 loaves"), post("something else"));
        store.put_events(&[ten.clone(), other.clone()]).unwrap();
        assert!(store.get_event(&ten.id()).unwrap().is_some());
        // Same length, different text: the body no longer matches the signed hash.
        let mut altered = ten.encode();
        let at = altered.windows(9).position(|w| w == b"10 loaves").unwrap();
        altered[at] = b'9';
        store.events.insert(ten.id().as_bytes(), altered).unwrap();
        let count = store.event_count().unwrap();
        let err = store.get_event(&ten.id()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        // Found once, the record is set aside: the event counts as missing (so a peer sends
        // it again), the damaged bytes are kept, and the good copy is taken when it comes.
        assert!(err.to_string().contains("set aside"), "{err}");
        assert_eq!(store.get_event(&ten.id()).unwrap(), None);
        assert_eq!(store.event_count().unwrap(), count - 1);
        assert!(store.damaged.contains_key(ten.id().as_bytes()).unwrap());
        assert_eq!(
            store.put_events(std::slice::from_ref(&ten)).unwrap(),
            [Inserted::New]
        );
        assert_eq!(store.get_event(&ten.id()).unwrap().as_ref(), Some(&*ten));
        assert_eq!(store.event_count().unwrap(), count);
        // A record moved under another event's id is refused too.
        store
            .events
            .insert(other.id().as_bytes(), ten.encode())
            .unwrap();
        let err = store.get_event(&other.id()).unwrap_err();
        assert!(err.to_string().contains("holds event"), "{err}");
    }

    #[test]
    fn a_groups_events_are_read_from_a_point_in_order_and_no_further() {
        use kith_protocol::event::EventBuilder;
        use kith_protocol::kind::{Kind, PostBody};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_in_test(dir.path());
        let key = kith_protocol::SecretKey::from_seed(&[4; 32]);
        let limits = kith_protocol::validate::Limits::default();
        let (g1, g2) = (GroupId::from_bytes([1; 32]), GroupId::from_bytes([2; 32]));
        let post = |group: GroupId, at: u64| {
            let body = PostBody {
                text: format!("at {at}"),
            }
            .to_bytes();
            let event = EventBuilder::new(Kind::POST, Timestamp(at), body)
                .group(group)
                .sign(&key)
                .unwrap();
            kith_protocol::validate::validate(&event.encode(), None, Timestamp(10_000), &limits)
                .unwrap()
        };
        // Stored out of order, with another group's events around them.
        let ours: Vec<_> = [50, 10, 40, 20, 30].map(|t| post(g1, t)).to_vec();
        let theirs: Vec<_> = [5, 25, 60].map(|t| post(g2, t)).to_vec();
        store.put_events(&ours).unwrap();
        store.put_events(&theirs).unwrap();
        let times =
            |events: Vec<Event>| -> Vec<u64> { events.iter().map(|e| e.created_at().0).collect() };
        let from = |t: u64, limit| {
            times(
                store
                    .group_events_from(&g1, Timestamp(t), &[0; 32], limit)
                    .unwrap(),
            )
        };
        assert_eq!(from(0, 100), [10, 20, 30, 40, 50]);
        assert_eq!(from(20, 100), [20, 30, 40, 50]);
        assert_eq!(from(21, 2), [30, 40]);
        assert_eq!(from(51, 100), Vec::<u64>::new());
        // From just after an event: that event is left out.
        let twenty = ours.iter().find(|e| e.created_at().0 == 20).unwrap();
        let mut after = *twenty.id().as_bytes();
        after[31] = after[31].wrapping_add(1);
        if after[31] != 0 {
            let got = store
                .group_events_from(&g1, Timestamp(20), &after, 100)
                .unwrap();
            assert_eq!(times(got), [30, 40, 50]);
        }
        // The same order from the index alone; an index entry without its record is left out.
        let items = store.group_items(&g1).unwrap();
        assert_eq!(
            items.iter().map(|(t, _)| t.0).collect::<Vec<_>>(),
            [10, 20, 30, 40, 50]
        );
        let thirty = items[2].1;
        store.events.remove(thirty.as_bytes()).unwrap();
        let items = store.group_items(&g1).unwrap();
        assert_eq!(
            items.iter().map(|(t, _)| t.0).collect::<Vec<_>>(),
            [10, 20, 40, 50]
        );

        // What a fold reads: the same events, posts without their bodies, group events
        // (here a leave) with theirs.
        let body = kith_protocol::group::body::to_bytes(&kith_protocol::group::body::Leave {
            reason: Some("moving away".into()),
        });
        let leave = EventBuilder::new(kith_protocol::group::LEAVE, Timestamp(55), body)
            .group(g1)
            .sign(&key)
            .unwrap();
        let leave =
            kith_protocol::validate::validate(&leave.encode(), None, Timestamp(10_000), &limits)
                .unwrap();
        store.put_events(&[leave]).unwrap();
        let folded = store.group_events_to_fold(&g1).unwrap();
        let bodies: Vec<(u64, bool)> = folded
            .iter()
            .map(|e| (e.created_at().0, e.body().is_some()))
            .collect();
        assert_eq!(
            bodies,
            [
                (10, false),
                (20, false),
                (40, false),
                (50, false),
                (55, true)
            ]
        );
    }

    #[test]
    fn groups_are_listed_from_their_index_newest_first_and_old_stores_are_indexed_once() {
        use kith_protocol::event::EventBuilder;
        use kith_protocol::group::body::{GroupCreate, Visibility};
        use kith_protocol::group::{Rules, GROUP_CREATE};
        use kith_protocol::kind::{Kind, PostBody};
        let dir = tempfile::tempdir().unwrap();
        let key = kith_protocol::SecretKey::from_seed(&[5; 32]);
        let limits = kith_protocol::validate::Limits::default();
        let valid = |event: Event| {
            kith_protocol::validate::validate(&event.encode(), None, Timestamp(10_000), &limits)
                .unwrap()
        };
        let create = |name: &str, at: u64| {
            let body = kith_protocol::group::body::to_bytes(&GroupCreate {
                name: name.into(),
                purpose: "testing the groups index".into(),
                visibility: Visibility::Public,
                rules: Rules::mutual_aid_default(),
                founder: Default::default(),
                home: None,
            });
            valid(
                EventBuilder::new(GROUP_CREATE, Timestamp(at), body)
                    .sign(&key)
                    .unwrap(),
            )
        };
        let (older, newer) = (create("older", 100), create("newer", 200));
        let group = |e: &ValidEvent| GroupId::from_bytes(*e.id().as_bytes());
        let post = valid(
            EventBuilder::new(
                Kind::POST,
                Timestamp(300),
                PostBody { text: "hi".into() }.to_bytes(),
            )
            .group(group(&older))
            .parents([older.id()])
            .sign(&key)
            .unwrap(),
        );
        {
            let store = SledStore::open_in_test(dir.path());
            assert!(store.group_ids(10).unwrap().is_empty());
            store
                .put_events(&[older.clone(), post, newer.clone()])
                .unwrap();
            assert_eq!(store.group_ids(10).unwrap(), [group(&newer), group(&older)]);
            assert_eq!(store.group_ids(1).unwrap(), [group(&newer)]);
            // As a store from before the index: its groups only among its events.
            store.groups.clear().unwrap();
            store.meta.remove(GROUPS_INDEXED).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open_in_test(dir.path());
        assert_eq!(store.group_ids(10).unwrap(), [group(&newer), group(&older)]);
    }

    #[test]
    fn peers_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let peer = Peer {
            url: Some("https://a.example.org".into()),
            key: None,
            status: PeerStatus::Added,
            reason: String::new(),
            since_ms: 5,
        };
        {
            let store = SledStore::open_in_test(dir.path());
            assert_eq!(store.peers().unwrap(), vec![]);
            assert_eq!(store.admin_peers_applied().unwrap(), 0);
            store.put_peer(&peer).unwrap();
            store.set_admin_peers_applied(42).unwrap();
            store.flush().unwrap();
            // A second opener is told the store is locked.
            let err = SledStore::open(dir.path(), 1 << 20, false).err().unwrap();
            assert!(err.is_locked(), "{err}");
        }
        let store = SledStore::open_in_test(dir.path());
        assert_eq!(
            store.peer("https://a.example.org").unwrap(),
            Some(peer.clone())
        );
        assert_eq!(store.peer("https://b.example.org").unwrap(), None);
        assert_eq!(store.peers().unwrap(), vec![peer]);
        assert_eq!(store.admin_peers_applied().unwrap(), 42);
        let nameless = Peer {
            url: None,
            key: None,
            status: PeerStatus::Blocked,
            reason: String::new(),
            since_ms: 0,
        };
        assert!(store.put_peer(&nameless).is_err());
    }

    #[test]
    fn a_removed_peer_stays_removed_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let peer = |url: &str| Peer {
            url: Some(url.into()),
            key: None,
            status: PeerStatus::Blocked,
            reason: "spam".into(),
            since_ms: 5,
        };
        {
            let store = SledStore::open_in_test(dir.path());
            store.put_peer(&peer("https://a.example.org")).unwrap();
            store.put_peer(&peer("https://b.example.org")).unwrap();
            store.flush().unwrap();
            assert!(store.remove_peer("https://a.example.org").unwrap());
            assert!(!store.remove_peer("https://a.example.org").unwrap());
            assert!(!store.remove_peer("https://c.example.org").unwrap());
            store.flush().unwrap();
        }
        let store = SledStore::open_in_test(dir.path());
        assert_eq!(store.peer("https://a.example.org").unwrap(), None);
        assert_eq!(store.peers().unwrap(), vec![peer("https://b.example.org")]);
    }

    #[test]
    fn followers_are_listed_per_group_once_each() {
        use kith_protocol::SecretKey;
        let key = |n: u8| SecretKey::from_seed(&[n; 32]).public_key();
        let (g1, g2) = (GroupId::from_bytes([1; 32]), GroupId::from_bytes([2; 32]));
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open_in_test(dir.path());
            assert_eq!(store.followers(&g1).unwrap(), vec![]);
            store.add_follower(&g1, &key(1)).unwrap();
            store.add_follower(&g1, &key(2)).unwrap();
            store.add_follower(&g1, &key(1)).unwrap();
            store.add_follower(&g2, &key(3)).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open_in_test(dir.path());
        let mut expected = vec![key(1), key(2)];
        expected.sort_by_key(|k| *k.as_bytes());
        assert_eq!(store.followers(&g1).unwrap(), expected);
        assert_eq!(store.followers(&g2).unwrap(), vec![key(3)]);
        assert_eq!(
            store.followers(&GroupId::from_bytes([3; 32])).unwrap(),
            vec![]
        );
        // A stored key that does not parse is reported, not skipped.
        let mut bad = g2.as_bytes().to_vec();
        bad.extend_from_slice(&[0xff; 32]);
        store.followers.insert(bad, &[]).unwrap();
        assert!(matches!(store.followers(&g2), Err(StoreError::Corrupt(_))));
    }
}
