//! What the node knows about its links right now: which peers are linked, which link drains
//! each peer's outbound queue, which URLs have a dialer, and a signal for new queued events.
//! Memory only: after a restart the queues (in the store) and the peer list are the truth.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use kith_protocol::PublicKey;
use tokio::sync::watch;

/// Shared by every link and dialer of one node.
pub struct Registry {
    linked: Mutex<HashMap<PublicKey, usize>>,
    draining: Mutex<HashSet<PublicKey>>,
    dialing: Mutex<HashSet<String>>,
    queued: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            linked: Mutex::default(),
            draining: Mutex::default(),
            dialing: Mutex::default(),
            queued: watch::Sender::new(0),
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// Notes an established link with `peer`; the link is forgotten when the guard drops.
    pub fn linked(&self, peer: PublicKey) -> LinkedGuard<'_> {
        *locked(&self.linked).entry(peer).or_insert(0) += 1;
        LinkedGuard {
            registry: self,
            peer,
            draining: false,
        }
    }

    /// Whether some link with `peer` is up.
    pub fn is_linked(&self, peer: &PublicKey) -> bool {
        locked(&self.linked).contains_key(peer)
    }

    /// Marks `url` as dialed; false if a dialer for it already runs (or stopped for good:
    /// a URL refused by the address check is not tried again until the node restarts).
    pub fn start_dialing(&self, url: &str) -> bool {
        locked(&self.dialing).insert(url.to_owned())
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
}

impl LinkedGuard<'_> {
    /// Whether this link drains the peer's queue; claims the queue if nobody does.
    pub fn drains(&mut self) -> bool {
        if !self.draining {
            self.draining = locked(&self.registry.draining).insert(self.peer);
        }
        self.draining
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
        if let Some(n) = linked.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                linked.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
}
