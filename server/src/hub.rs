//! Live delivery: every newly stored event is announced once to all connections, which
//! match it against their own subscriptions.
//!
//! Each announcement carries a sequence number. The writer announces a batch while holding
//! the write side of [`Hub::gate`]; a subscription's stored query holds the read side and
//! notes the sequence number at that moment. So a stored query sees exactly the events
//! announced up to its sequence number, and the subscription takes live events only after
//! it: nothing is missed between "stored" and "live", and nothing is sent twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use kith_protocol::encoding::to_base64;
use kith_protocol::event::Event;
use tokio::sync::broadcast;

/// One announced event, with its bytes already base64-encoded once for every subscriber.
#[derive(Debug)]
pub struct Announced {
    /// Position in the announcement order.
    pub seq: u64,
    /// The event.
    pub event: Event,
    /// `event.encode()` in base64.
    pub base64: String,
}

/// The announcement channel.
pub struct Hub {
    tx: broadcast::Sender<Arc<Announced>>,
    seq: AtomicU64,
    gate: RwLock<()>,
}

impl Hub {
    /// A hub that buffers `capacity` announcements for slow connections.
    pub fn new(capacity: usize) -> Hub {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Hub {
            tx,
            seq: AtomicU64::new(0),
            gate: RwLock::new(()),
        }
    }

    /// A receiver of announcements made from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Announced>> {
        self.tx.subscribe()
    }

    /// Runs `write` (which stores events) and announces what it returns, all under the
    /// write side of the gate. Blocking: called from the store's writer thread.
    pub fn write_and_announce<T>(&self, write: impl FnOnce() -> (T, Vec<Event>)) -> T {
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let (result, new_events) = write();
        for event in new_events {
            let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
            let base64 = to_base64(&event.encode());
            // No receivers is fine: nobody is listening.
            let _ = self.tx.send(Arc::new(Announced { seq, event, base64 }));
        }
        result
    }

    /// Runs a stored-events read that must line up with the live stream; returns its result
    /// and the sequence number it corresponds to. Blocking.
    pub fn read_consistent<T>(&self, read: impl FnOnce() -> T) -> (T, u64) {
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let seq = self.seq.load(Ordering::SeqCst);
        (read(), seq)
    }

    /// Connections currently listening.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}
