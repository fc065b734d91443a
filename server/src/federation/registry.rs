//! What the node knows about its links right now: which peers are linked, which link drains
//! each peer's outbound queue, which URLs have a dialer, which node key answered at each URL
//! this node dialed (so that a block by address can cut that node off), which node keys are
//! blocked (so that a block closes the links open with that node, and an unblock lets them
//! link again), and a signal for new queued events.
//! Memory only: after a restart the queues (in the store) and the peer list are the truth;
//! the blocked keys are read back from the store when the node starts
//! ([`super::peers::apply_admin_while_running`]), and the key at each URL is learned again
//! at the next handshake.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use kith_protocol::PublicKey;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Shared by every link and dialer of one node.
pub struct Registry {
    linked: Mutex<HashMap<PublicKey, Linked>>,
    draining: Mutex<HashSet<PublicKey>>,
    dialing: Mutex<HashSet<String>>,
    /// Normalised base URL → the node key that proved itself there in a handshake.
    addresses: Mutex<HashMap<String, PublicKey>>,
    blocked: Mutex<HashSet<PublicKey>>,
    queued: watch::Sender<u64>,
}

/// The links open with one peer.
struct Linked {
    /// How many.
    links: usize,
    /// Cancelled when the peer is blocked: every link with it closes.
    cut: CancellationToken,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            linked: Mutex::default(),
            draining: Mutex::default(),
            dialing: Mutex::default(),
            addresses: Mutex::default(),
            blocked: Mutex::default(),
            queued: watch::Sender::new(0),
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// Notes an established link with `peer`; the link is forgotten when the guard drops.
    /// If `peer` is blocked, the guard is already cut ([`LinkedGuard::blocked`] resolves at
    /// once): a link whose handshake passed just before the block still closes.
    pub fn linked(&self, peer: PublicKey) -> LinkedGuard<'_> {
        // Lock order: `linked`, then `blocked` (as in `block`), so a block cannot slip
        // between the check and the note.
        let mut linked = locked(&self.linked);
        let blocked = self.is_blocked(&peer);
        let entry = linked.entry(peer).or_insert_with(|| Linked {
            links: 0,
            cut: CancellationToken::new(),
        });
        entry.links += 1;
        if blocked {
            entry.cut.cancel();
        }
        LinkedGuard {
            registry: self,
            peer,
            draining: false,
            cut: entry.cut.clone(),
        }
    }

    /// Whether some link with `peer` is up.
    pub fn is_linked(&self, peer: &PublicKey) -> bool {
        locked(&self.linked).contains_key(peer)
    }

    /// Blocks `peer` (an admin blocked its node key, or an address where it answered): every
    /// link open with it is told to close ([`LinkedGuard::blocked`]), and links noted later
    /// close at once. Returns how many links were open with it.
    pub fn block(&self, peer: PublicKey) -> usize {
        let linked = locked(&self.linked);
        locked(&self.blocked).insert(peer);
        match linked.get(&peer) {
            Some(linked) => {
                linked.cut.cancel();
                linked.links
            }
            None => 0,
        }
    }

    /// Lifts the block of `peer` (an admin unblocked it): links with it are accepted and
    /// opened again, without a restart. Links cut by the block still close; a link noted
    /// from now on is not cut. Returns whether it was blocked.
    pub fn unblock(&self, peer: &PublicKey) -> bool {
        // Lock order as in `linked` and `block`.
        let mut linked = locked(&self.linked);
        let was_blocked = locked(&self.blocked).remove(peer);
        if let Some(entry) = linked.get_mut(peer) {
            if entry.cut.is_cancelled() {
                // The links still closing keep the cancelled token; new ones get this one.
                entry.cut = CancellationToken::new();
            }
        }
        was_blocked
    }

    /// Whether `peer`'s node key is blocked: dialers do not link with it.
    pub fn is_blocked(&self, peer: &PublicKey) -> bool {
        locked(&self.blocked).contains(peer)
    }

    /// Notes that `peer` proved its key in a handshake with this node's dialer at `url` (the
    /// normalised base URL): a block of that address then cuts that node off.
    pub fn note_address(&self, url: &str, peer: PublicKey) {
        locked(&self.addresses).insert(url.to_owned(), peer);
    }

    /// The node key that last proved itself at `url` (normalised base URL) since the node
    /// started, if this node has dialed it and the handshake passed.
    pub fn key_at(&self, url: &str) -> Option<PublicKey> {
        locked(&self.addresses).get(url).copied()
    }

    /// Marks `url` as dialed; false if a dialer for it already runs (or stopped for good:
    /// a URL refused by the address check is not tried again until the node restarts).
    pub fn start_dialing(&self, url: &str) -> bool {
        locked(&self.dialing).insert(url.to_owned())
    }

    /// Forgets the dialer of `url`, which stopped (an admin blocked the address): adding the
    /// address again starts a new one.
    pub fn stop_dialing(&self, url: &str) {
        locked(&self.dialing).remove(url);
    }

    /// Tells every link that events were queued.
    pub fn notify_queued(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever events are queued.
    pub fn watch_queued(&self) -> watch::Receiver<u64> {
        self.queued.subscribe()
    }
}

/// Held by a running link. Only one link per peer drains the peer's queue at a time (two
/// links with the same peer exist when both nodes dial each other).
pub struct LinkedGuard<'a> {
    registry: &'a Registry,
    peer: PublicKey,
    draining: bool,
    cut: CancellationToken,
}

impl LinkedGuard<'_> {
    /// Whether this link drains the peer's queue; claims the queue if nobody does.
    pub fn drains(&mut self) -> bool {
        if !self.draining {
            self.draining = locked(&self.registry.draining).insert(self.peer);
        }
        self.draining
    }

    /// Resolves once the peer is blocked (at once if it already is): the link must then
    /// close. The future owns what it waits on, so the link loop can select on it while it
    /// borrows the link mutably in its other branches.
    pub fn blocked(&self) -> WaitForCancellationFutureOwned {
        self.cut.clone().cancelled_owned()
    }
}

impl Drop for LinkedGuard<'_> {
    fn drop(&mut self) {
        if self.draining {
            locked(&self.registry.draining).remove(&self.peer);
            // Another link with the same peer may take over the queue.
            self.registry.notify_queued();
        }
        let mut linked = locked(&self.registry.linked);
        if let Some(entry) = linked.get_mut(&self.peer) {
            entry.links -= 1;
            if entry.links == 0 {
                linked.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    fn key(n: u8) -> PublicKey {
        kith_protocol::SecretKey::from_seed(&[n; 32]).public_key()
    }

    #[test]
    fn one_link_per_peer_drains_and_hands_over_when_it_ends() {
        let registry = Registry::default();
        let mut first = registry.linked(key(1));
        let mut second = registry.linked(key(1));
        assert!(first.drains());
        assert!(!second.drains());
        let mut watch = registry.watch_queued();
        drop(first);
        assert!(watch.has_changed().unwrap());
        watch.mark_unchanged();
        assert!(registry.is_linked(&key(1)));
        assert!(second.drains());
        drop(second);
        assert!(!registry.is_linked(&key(1)));
    }

    #[test]
    fn a_url_is_dialed_once() {
        let registry = Registry::default();
        assert!(registry.start_dialing("http://a"));
        assert!(!registry.start_dialing("http://a"));
    }

    #[tokio::test]
    async fn blocking_a_peer_cuts_its_links_and_only_its_links() {
        let registry = Registry::default();
        let first = registry.linked(key(1));
        let second = registry.linked(key(1));
        let other = registry.linked(key(2));
        let waiting = tokio::spawn(first.blocked());
        assert!(first.blocked().now_or_never().is_none());
        assert_eq!(registry.block(key(1)), 2);
        waiting.await.expect("the waiting link is told");
        assert!(second.blocked().now_or_never().is_some());
        assert!(other.blocked().now_or_never().is_none());
        assert!(registry.is_blocked(&key(1)));
        assert!(!registry.is_blocked(&key(2)));
        // Blocking a node with no link open cuts nothing, and is remembered.
        assert_eq!(registry.block(key(3)), 0);
        assert!(registry.is_blocked(&key(3)));
        drop((first, second, other));
        assert!(!registry.is_linked(&key(1)));
    }

    #[test]
    fn a_link_noted_after_the_block_is_cut_at_once() {
        let registry = Registry::default();
        registry.block(key(1));
        // A link whose handshake check passed just before the block.
        let late = registry.linked(key(1));
        assert!(late.blocked().now_or_never().is_some());
        assert!(registry.linked(key(2)).blocked().now_or_never().is_none());
    }

    #[test]
    fn unblocking_a_peer_lets_new_links_stay_open() {
        let registry = Registry::default();
        assert!(!registry.unblock(&key(1)), "nothing to unblock");
        let cut = registry.linked(key(1));
        registry.block(key(1));
        assert!(cut.blocked().now_or_never().is_some());
        assert!(registry.unblock(&key(1)));
        assert!(!registry.is_blocked(&key(1)));
        assert!(!registry.unblock(&key(1)), "already unblocked");
        // The link cut by the block still closes; a link noted now, while that one is still
        // closing, is not cut.
        assert!(cut.blocked().now_or_never().is_some());
        let fresh = registry.linked(key(1));
        assert!(fresh.blocked().now_or_never().is_none());
        drop(cut);
        assert!(registry.is_linked(&key(1)));
        // Blocking again cuts the new link too.
        assert_eq!(registry.block(key(1)), 1);
        assert!(fresh.blocked().now_or_never().is_some());
    }

    #[test]
    fn unblocking_one_peer_leaves_the_others_blocked() {
        let registry = Registry::default();
        registry.block(key(1));
        registry.block(key(2));
        assert!(registry.unblock(&key(1)));
        assert!(registry.linked(key(1)).blocked().now_or_never().is_none());
        assert!(registry.is_blocked(&key(2)));
        assert!(registry.linked(key(2)).blocked().now_or_never().is_some());
    }

    #[test]
    fn the_key_at_a_dialed_address_is_remembered() {
        let registry = Registry::default();
        assert_eq!(registry.key_at("http://a"), None);
        registry.note_address("http://a", key(1));
        assert_eq!(registry.key_at("http://a"), Some(key(1)));
        // Another node now answers there: the latest handshake wins.
        registry.note_address("http://a", key(2));
        assert_eq!(registry.key_at("http://a"), Some(key(2)));
        assert_eq!(registry.key_at("http://b"), None);
    }

    #[test]
    fn a_stopped_dialer_can_be_started_again() {
        let registry = Registry::default();
        assert!(registry.start_dialing("http://a"));
        registry.stop_dialing("http://a");
        assert!(registry.start_dialing("http://a"));
    }
}
