//! The sled side of the per-peer outbound queues ("outbox") that federation links drain.
//!
//! | tree     | key                                  | value                         |
//! |----------|--------------------------------------|-------------------------------|
//! | `outbox` | peer key (32) · seq BE (8)           | event id (32) · at_ms BE (8)  |
//! | `meta`   | `outbox_last_seq` · peer key (32)    | highest seq issued, u64 BE    |
//!
//! Sequence numbers start at 1 and are never reused. While a peer's queue is non-empty its
//! last key says which was issued last; the `meta` mark is written only when a removal is
//! about to empty the queue, because after that nothing in the tree would remember it and a
//! restart would hand out numbers the peer's link has already acknowledged. The mark is
//! written before the removals, so a crash (sled recovers a prefix of its log) leaves either
//! the mark or the entries that imply it.
//!
//! Entries only ever leave a queue from the front (acknowledgement, or dropping the oldest),
//! and new ones are appended after the last, so each queue is a run of increasing numbers.
//!
//! In memory, under one mutex, each peer's next sequence number and depth: loaded by one scan
//! of the tree at first use (not at open, so tools that open the store for other reasons pay
//! nothing), then kept up to date, so pushes need no lookups and stats scan nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use kith_protocol::event::EventId;
use kith_protocol::PublicKey;

use super::sled_store::engine;
use super::{OutboxEntry, OutboxStats, StoreError};

/// `meta` key prefix of the per-peer "highest sequence number issued" marks.
const LAST_SEQ: &[u8] = b"outbox_last_seq";

/// One peer's queue, as kept in memory.
#[derive(Debug, Clone, Copy)]
struct Queue {
    /// The sequence number the next push gets.
    next: u64,
    /// How many entries the tree holds for the peer.
    depth: u64,
}

impl Queue {
    const NEW: Queue = Queue { next: 1, depth: 0 };
}

type Queues = BTreeMap<PublicKey, Queue>;

/// The outbox of a [`super::SledStore`].
pub(super) struct Outbox {
    tree: sled::Tree,
    meta: sled::Tree,
    /// `None` until first use. The mutex also serialises pushes and acks, so two pushes never
    /// take the same sequence number and the depths match the tree.
    queues: Mutex<Option<Queues>>,
}

fn entry_key(peer: &PublicKey, seq: u64) -> [u8; 40] {
    let mut key = [0; 40];
    key[..32].copy_from_slice(peer.as_bytes());
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn mark_key(peer: &PublicKey) -> Vec<u8> {
    [LAST_SEQ, peer.as_bytes()].concat()
}

/// Splits an `outbox` key into its peer bytes and sequence number.
fn split_key(key: &[u8]) -> Result<([u8; 32], u64), StoreError> {
    let bad = || StoreError::Corrupt(format!("outbox key of {} bytes, not 40", key.len()));
    let peer: [u8; 32] = key
        .get(..32)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    let seq: [u8; 8] = key
        .get(32..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    Ok((peer, u64::from_be_bytes(seq)))
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<OutboxEntry, StoreError> {
    let (_, seq) = split_key(key)?;
    let bad = || StoreError::Corrupt(format!("outbox entry of {} bytes, not 40", value.len()));
    if value.len() != 40 {
        return Err(bad());
    }
    let id: [u8; 32] = value[..32].try_into().map_err(|_| bad())?;
    let at_ms: [u8; 8] = value[32..].try_into().map_err(|_| bad())?;
    Ok(OutboxEntry {
        seq,
        id: EventId::from_bytes(id),
        at_ms: u64::from_be_bytes(at_ms),
    })
}

/// A stored peer key, through the checked constructor.
pub(super) fn parse_peer(bytes: &[u8]) -> Result<PublicKey, StoreError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("peer key of {} bytes, not 32", bytes.len())))?;
    PublicKey::from_bytes(&array).map_err(|e| StoreError::Corrupt(format!("stored peer key: {e}")))
}

impl Outbox {
    /// The outbox on `tree` (`outbox`), keeping its marks in `meta`. Reads nothing yet.
    pub(super) fn new(tree: sled::Tree, meta: sled::Tree) -> Outbox {
        Outbox {
            tree,
            meta,
            queues: Mutex::new(None),
        }
    }

    /// Runs `f` on the in-memory queues, loading them first if needed.
    fn with_queues<T>(
        &self,
        f: impl FnOnce(&mut Queues) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard: MutexGuard<'_, Option<Queues>> = match self.queues.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // A panic part-way through an update may have left the counts out of step
                // with the tree; forget them and count again.
                self.queues.clear_poison();
                let mut guard = poisoned.into_inner();
                *guard = None;
                guard
            }
        };
        let queues = match &mut *guard {
            Some(queues) => queues,
            empty => empty.insert(self.load()?),
        };
        let result = f(queues);
        if result.is_err() {
            // Some writes of the failed call may have landed and some not: recount from the
            // tree next time rather than trust counters that may be off.
            *guard = None;
        }
        result
    }

    /// Counts every queue: one pass over the tree and the marks.
    fn load(&self) -> Result<Queues, StoreError> {
        let mut queues = Queues::new();
        // Checking a key is a curve point decompression; do it once per peer, not per entry.
        let mut current: Option<([u8; 32], PublicKey)> = None;
        for entry in self.tree.iter() {
            let (key, _) = entry.map_err(engine)?;
            let (bytes, seq) = split_key(&key)?;
            let peer = match current {
                Some((seen, peer)) if seen == bytes => peer,
                _ => {
                    let peer = parse_peer(&bytes)?;
                    current = Some((bytes, peer));
                    peer
                }
            };
            let queue = queues.entry(peer).or_insert(Queue::NEW);
            queue.depth += 1;
            queue.next = queue.next.max(seq.saturating_add(1));
        }
        for entry in self.meta.scan_prefix(LAST_SEQ) {
            let (key, value) = entry.map_err(engine)?;
            let peer = parse_peer(&key[LAST_SEQ.len()..])?;
            let last: [u8; 8] = value.as_ref().try_into().map_err(|_| {
                StoreError::Corrupt(format!("outbox mark of {} bytes, not 8", value.len()))
            })?;
            let queue = queues.entry(peer).or_insert(Queue::NEW);
            queue.next = queue.next.max(u64::from_be_bytes(last).saturating_add(1));
        }
        Ok(queues)
    }

    /// Removes `peer`'s oldest entries with sequence numbers <= `upto`, at most `limit` of
    /// them. Returns how many were removed.
    fn remove_front(
        &self,
        peer: &PublicKey,
        queue: &mut Queue,
        upto: u64,
        limit: u64,
    ) -> Result<u64, StoreError> {
        if queue.depth == 0 || limit == 0 {
            return Ok(0);
        }
        let last_issued = queue.next - 1;
        // Every entry's number is <= `last_issued`, so this takes them all only if it may take
        // `depth` of them and reaches `last_issued`. Only then is the mark needed.
        let empties = limit >= queue.depth && upto >= last_issued;
        if empties {
            self.meta
                .insert(mark_key(peer), &last_issued.to_be_bytes())
                .map_err(engine)?;
        }
        let mut removed = 0;
        let range = entry_key(peer, 0)..=entry_key(peer, upto);
        for entry in self.tree.range(range) {
            if removed >= limit {
                break;
            }
            let (key, _) = entry.map_err(engine)?;
            if self.tree.remove(&key).map_err(engine)?.is_some() {
                removed += 1;
                queue.depth = queue.depth.saturating_sub(1);
            }
        }
        Ok(removed)
    }

    /// [`super::Store::outbox_push`].
    pub(super) fn push(
        &self,
        peers: &[PublicKey],
        ids: &[EventId],
        at_ms: u64,
        max_per_peer: u64,
    ) -> Result<u64, StoreError> {
        // The oldest new ids that would be dropped at once are never written (and take no
        // sequence numbers: nobody could have seen them).
        let skip = usize::try_from(max_per_peer).map_or(0, |max| ids.len().saturating_sub(max));
        let kept = &ids[skip..];
        let mut value = [0u8; 40];
        value[32..].copy_from_slice(&at_ms.to_be_bytes());
        // A peer listed twice would otherwise be sent everything twice.
        let peers: BTreeSet<&PublicKey> = peers.iter().collect();
        self.with_queues(|queues| {
            let mut dropped = 0;
            for peer in peers {
                let queue = queues.entry(*peer).or_insert(Queue::NEW);
                for id in kept {
                    let seq = queue.next;
                    let next = seq.checked_add(1).ok_or_else(|| {
                        StoreError::Engine(format!("outbox sequence numbers for {peer} ran out"))
                    })?;
                    value[..32].copy_from_slice(id.as_bytes());
                    self.tree
                        .insert(entry_key(peer, seq), value.as_slice())
                        .map_err(engine)?;
                    queue.next = next;
                    queue.depth += 1;
                }
                dropped += skip as u64;
                let excess = queue.depth.saturating_sub(max_per_peer);
                dropped += self.remove_front(peer, queue, u64::MAX, excess)?;
            }
            Ok(dropped)
        })
    }

    /// [`super::Store::outbox_peek`].
    pub(super) fn peek(
        &self,
        peer: &PublicKey,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        // Reads need no lock: entries are written whole, and a concurrent ack or drop only
        // means the caller sees an entry that is about to go, which it must tolerate anyway.
        self.tree
            .range(entry_key(peer, first)..=entry_key(peer, u64::MAX))
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(engine)?;
                decode_entry(&key, &value)
            })
            .collect()
    }

    /// [`super::Store::outbox_ack`].
    pub(super) fn ack(&self, peer: &PublicKey, upto: u64) -> Result<(), StoreError> {
        self.with_queues(|queues| {
            if let Some(queue) = queues.get_mut(peer) {
                self.remove_front(peer, queue, upto, u64::MAX)?;
            }
            Ok(())
        })
    }

    /// [`super::Store::outbox_stats`], ordered by peer key.
    pub(super) fn stats(&self) -> Result<Vec<OutboxStats>, StoreError> {
        self.with_queues(|queues| {
            let mut out = Vec::new();
            for (peer, queue) in queues.iter().filter(|(_, q)| q.depth > 0) {
                // The oldest entry is the first under the peer's prefix: one seek per peer.
                let oldest = match self.tree.scan_prefix(peer.as_bytes()).next() {
                    Some(entry) => {
                        let (key, value) = entry.map_err(engine)?;
                        Some(decode_entry(&key, &value)?.at_ms)
                    }
                    None => None,
                };
                out.push(OutboxStats {
                    peer: *peer,
                    depth: queue.depth,
                    oldest_ms: oldest,
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kith_protocol::SecretKey;

    use super::super::{SledStore, Store};
    use super::*;

    fn key(n: u8) -> PublicKey {
        SecretKey::from_seed(&[n; 32]).public_key()
    }

    fn id(n: u64) -> EventId {
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        EventId::from_bytes(bytes)
    }

    fn open(dir: &tempfile::TempDir) -> SledStore {
        SledStore::open_in_test(dir.path())
    }

    /// The "highest issued" mark stored for `peer`, if any.
    fn mark(store: &SledStore, peer: &PublicKey) -> Option<u64> {
        let value = store.outbox.meta.get(mark_key(peer)).unwrap()?;
        Some(u64::from_be_bytes(value.as_ref().try_into().unwrap()))
    }

    fn seqs(entries: &[OutboxEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.seq).collect()
    }

    fn ids(entries: &[OutboxEntry]) -> Vec<EventId> {
        entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn push_peek_ack_keep_order_and_increasing_seqs() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let peer = key(1);
        assert_eq!(store.outbox_peek(&peer, 0, 10).unwrap(), vec![]);
        assert_eq!(
            store
                .outbox_push(&[peer], &[id(1), id(2)], 100, 10)
                .unwrap(),
            0
        );
        assert_eq!(store.outbox_push(&[peer], &[id(3)], 200, 10).unwrap(), 0);
        let all = store.outbox_peek(&peer, 0, 10).unwrap();
        assert_eq!(
            all,
            vec![
                OutboxEntry {
                    seq: 1,
                    id: id(1),
                    at_ms: 100
                },
                OutboxEntry {
                    seq: 2,
                    id: id(2),
                    at_ms: 100
                },
                OutboxEntry {
                    seq: 3,
                    id: id(3),
                    at_ms: 200
                },
            ]
        );
        // Paging by `after` and `limit`.
        assert_eq!(seqs(&store.outbox_peek(&peer, 0, 2).unwrap()), vec![1, 2]);
        assert_eq!(seqs(&store.outbox_peek(&peer, 2, 2).unwrap()), vec![3]);
        assert_eq!(store.outbox_peek(&peer, 3, 2).unwrap(), vec![]);
        assert_eq!(store.outbox_peek(&peer, u64::MAX, 2).unwrap(), vec![]);
        assert_eq!(store.outbox_peek(&peer, 0, 0).unwrap(), vec![]);

        store.outbox_ack(&peer, 3).unwrap();
        assert_eq!(store.outbox_peek(&peer, 0, 10).unwrap(), vec![]);
        // Numbers keep rising after the queue emptied.
        store.outbox_push(&[peer], &[id(4)], 300, 10).unwrap();
        assert_eq!(seqs(&store.outbox_peek(&peer, 0, 10).unwrap()), vec![4]);
        // Acknowledging something unknown, or a peer with no queue, is harmless.
        store.outbox_ack(&peer, 1).unwrap();
        store.outbox_ack(&key(9), 100).unwrap();
        assert_eq!(seqs(&store.outbox_peek(&peer, 0, 10).unwrap()), vec![4]);
    }

    #[test]
    fn seqs_are_not_reused_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (key(1), key(2));
        {
            let store = open(&dir);
            store
                .outbox_push(&[a, b], &[id(1), id(2), id(3)], 100, 10)
                .unwrap();
            // `a` drains completely: only the mark remembers its numbers.
            store.outbox_ack(&a, 3).unwrap();
            // `b` keeps entry 3.
            store.outbox_ack(&b, 2).unwrap();
            store.flush().unwrap();
        }
        {
            let store = open(&dir);
            assert_eq!(store.outbox_peek(&a, 0, 10).unwrap(), vec![]);
            assert_eq!(seqs(&store.outbox_peek(&b, 0, 10).unwrap()), vec![3]);
            store.outbox_push(&[a, b], &[id(4)], 200, 10).unwrap();
            assert_eq!(seqs(&store.outbox_peek(&a, 0, 10).unwrap()), vec![4]);
            assert_eq!(seqs(&store.outbox_peek(&b, 0, 10).unwrap()), vec![3, 4]);
            // Emptied again, at a higher number than the last mark.
            store.outbox_ack(&a, 4).unwrap();
            assert_eq!(mark(&store, &a), Some(4));
            assert_eq!(mark(&store, &b), None);
            store.flush().unwrap();
        }
        let store = open(&dir);
        store.outbox_push(&[a, b], &[id(5)], 300, 10).unwrap();
        assert_eq!(seqs(&store.outbox_peek(&a, 0, 10).unwrap()), vec![5]);
        assert_eq!(seqs(&store.outbox_peek(&b, 0, 10).unwrap()), vec![3, 4, 5]);
        let stats = store.outbox_stats().unwrap();
        assert_eq!(
            stats.iter().map(|s| (s.peer, s.depth)).collect::<Vec<_>>(),
            {
                let mut expected = vec![(a, 1), (b, 3)];
                expected.sort();
                expected
            }
        );
    }

    #[test]
    fn the_bound_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let peer = key(1);
        assert_eq!(
            store
                .outbox_push(&[peer], &[id(1), id(2), id(3)], 100, 3)
                .unwrap(),
            0
        );
        assert_eq!(
            store.outbox_push(&[peer], &[id(4), id(5)], 200, 3).unwrap(),
            2
        );
        let left = store.outbox_peek(&peer, 0, 10).unwrap();
        assert_eq!(ids(&left), vec![id(3), id(4), id(5)]);
        assert_eq!(seqs(&left), vec![3, 4, 5]);
        assert_eq!(mark(&store, &peer), None);
        // More new ids than the bound: only the newest are kept.
        assert_eq!(
            store
                .outbox_push(&[peer], &[id(6), id(7), id(8), id(9)], 300, 3)
                .unwrap(),
            4
        );
        let left = store.outbox_peek(&peer, 0, 10).unwrap();
        assert_eq!(ids(&left), vec![id(7), id(8), id(9)]);
        assert!(seqs(&left).windows(2).all(|w| w[0] < w[1]) && left[0].seq > 5);
        assert_eq!(store.outbox_stats().unwrap()[0].depth, 3);
        // A bound of zero keeps nothing, and later numbers still rise.
        let before = left[2].seq;
        assert_eq!(store.outbox_push(&[peer], &[id(10)], 400, 0).unwrap(), 4);
        assert_eq!(store.outbox_peek(&peer, 0, 10).unwrap(), vec![]);
        assert_eq!(store.outbox_stats().unwrap(), vec![]);
        assert_eq!(mark(&store, &peer), Some(before));
        store.outbox_push(&[peer], &[id(11)], 500, 3).unwrap();
        assert!(store.outbox_peek(&peer, 0, 10).unwrap()[0].seq > before);
    }

    #[test]
    fn ack_of_a_prefix_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let peer = key(1);
        let batch: Vec<EventId> = (1..=5).map(id).collect();
        store.outbox_push(&[peer], &batch, 100, 10).unwrap();
        store.outbox_ack(&peer, 2).unwrap();
        assert_eq!(
            seqs(&store.outbox_peek(&peer, 0, 10).unwrap()),
            vec![3, 4, 5]
        );
        // The queue's last key still remembers the numbers: no mark is written.
        assert_eq!(mark(&store, &peer), None);
        assert_eq!(store.outbox_stats().unwrap()[0].depth, 3);
        store.outbox_ack(&peer, 0).unwrap();
        assert_eq!(
            seqs(&store.outbox_peek(&peer, 0, 10).unwrap()),
            vec![3, 4, 5]
        );
        store.outbox_ack(&peer, 4).unwrap();
        assert_eq!(ids(&store.outbox_peek(&peer, 0, 10).unwrap()), vec![id(5)]);
        assert_eq!(store.outbox_stats().unwrap()[0].depth, 1);
    }

    #[test]
    fn peers_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let (a, b) = (key(1), key(2));
        store.outbox_push(&[a], &[id(1), id(2)], 100, 10).unwrap();
        // A peer listed twice is queued once.
        store.outbox_push(&[a, b, b], &[id(3)], 200, 10).unwrap();
        assert_eq!(seqs(&store.outbox_peek(&a, 0, 10).unwrap()), vec![1, 2, 3]);
        let b_entries = store.outbox_peek(&b, 0, 10).unwrap();
        assert_eq!(
            b_entries,
            vec![OutboxEntry {
                seq: 1,
                id: id(3),
                at_ms: 200
            }]
        );
        store.outbox_ack(&b, 1).unwrap();
        assert_eq!(store.outbox_peek(&b, 0, 10).unwrap(), vec![]);
        assert_eq!(seqs(&store.outbox_peek(&a, 0, 10).unwrap()), vec![1, 2, 3]);
        // Bounding one peer's queue leaves the other's alone.
        assert_eq!(store.outbox_push(&[b], &[id(4), id(5)], 300, 1).unwrap(), 1);
        assert_eq!(seqs(&store.outbox_peek(&a, 0, 10).unwrap()), vec![1, 2, 3]);
    }

    #[test]
    fn stats_give_depth_and_oldest_time() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (key(1), key(2));
        {
            let store = open(&dir);
            assert_eq!(store.outbox_stats().unwrap(), vec![]);
            store.outbox_push(&[a, b], &[id(1)], 100, 10).unwrap();
            store.outbox_push(&[a], &[id(2), id(3)], 250, 10).unwrap();
            let mut expected = vec![
                OutboxStats {
                    peer: a,
                    depth: 3,
                    oldest_ms: Some(100),
                },
                OutboxStats {
                    peer: b,
                    depth: 1,
                    oldest_ms: Some(100),
                },
            ];
            expected.sort_by_key(|s| s.peer);
            assert_eq!(store.outbox_stats().unwrap(), expected);
            store.outbox_ack(&a, 1).unwrap();
            store.outbox_ack(&b, 1).unwrap();
            assert_eq!(
                store.outbox_stats().unwrap(),
                vec![OutboxStats {
                    peer: a,
                    depth: 2,
                    oldest_ms: Some(250)
                }]
            );
            store.flush().unwrap();
        }
        // Counted again from the tree after a restart.
        let store = open(&dir);
        assert_eq!(
            store.outbox_stats().unwrap(),
            vec![OutboxStats {
                peer: a,
                depth: 2,
                oldest_ms: Some(250)
            }]
        );
    }

    #[test]
    fn concurrent_pushes_get_unique_seqs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(&dir));
        let (a, b) = (key(1), key(2));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        store
                            .outbox_push(&[a, b], &[id(t * 1000 + i)], i, 10_000)
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        for peer in [a, b] {
            let entries = store.outbox_peek(&peer, 0, 1000).unwrap();
            assert_eq!(entries.len(), 400);
            assert_eq!(seqs(&entries), (1..=400).collect::<Vec<_>>());
            let mut seen = ids(&entries);
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 400);
        }
        let stats = store.outbox_stats().unwrap();
        assert!(stats.iter().all(|s| s.depth == 400));
    }

    #[test]
    fn an_unparseable_peer_key_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        // Not a canonical point encoding, so `PublicKey::from_bytes` refuses it.
        let bad = [0xff; 32];
        assert!(PublicKey::from_bytes(&bad).is_err());
        let mut key = bad.to_vec();
        key.extend_from_slice(&1u64.to_be_bytes());
        store.outbox.tree.insert(key, [0u8; 40].as_slice()).unwrap();
        assert!(matches!(store.outbox_stats(), Err(StoreError::Corrupt(_))));
    }
}
