//! The client's own check of every event a node sends: the node is never trusted.
//!
//! Events are checked with `kith_protocol::validate` against the node's advertised limits,
//! widened to at least the protocol defaults (an event stored under older, looser limits is
//! still genuine) and with a generous allowance for clocks that run ahead: the point is
//! to catch forged or altered events, not to second-guess someone's clock.
//!
//! One connection often receives the same event once per subscription, so recently
//! verified events are remembered by their exact bytes, and a byte-for-byte repeat is
//! neither decoded nor verified again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use kith_protocol::validate::validate_decoded;
use kith_protocol::{Event, Limits, Timestamp, ValidationError};

/// The least allowance for an author's clock running ahead of ours: one day.
const MIN_FUTURE_SKEW_MS: u64 = 24 * 60 * 60 * 1000;

/// How many verified events are remembered.
const RECENT_CAPACITY: usize = 256;

/// Checks received events; owned by one connection's reader.
#[derive(Debug)]
pub(crate) struct EventVerifier {
    limits: Limits,
    /// Recently verified events by their exact bytes, and the order they came in.
    recent: HashMap<Arc<[u8]>, Event>,
    order: VecDeque<Arc<[u8]>>,
}

impl EventVerifier {
    /// A verifier for events from a node that advertised `node_limits`.
    pub(crate) fn new(node_limits: &Limits) -> Self {
        let d = Limits::default();
        let limits = Limits {
            max_event_bytes: node_limits.max_event_bytes.max(d.max_event_bytes),
            max_body_bytes: node_limits.max_body_bytes.max(d.max_body_bytes),
            max_parents: node_limits.max_parents.max(d.max_parents),
            max_text_chars: node_limits.max_text_chars.max(d.max_text_chars),
            max_future_skew_ms: node_limits.max_future_skew_ms.max(MIN_FUTURE_SKEW_MS),
        };
        EventVerifier {
            limits,
            recent: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Decodes and checks event bytes received at `now`.
    pub(crate) fn verify(
        &mut self,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Event, ValidationError> {
        if let Some(event) = self.recent.get(bytes) {
            return Ok(event.clone());
        }
        if bytes.len() > self.limits.max_event_bytes {
            return Err(ValidationError::EventTooLarge {
                size: bytes.len(),
                max: self.limits.max_event_bytes,
            });
        }
        let event = validate_decoded(Event::decode(bytes)?, now, &self.limits)?.into_inner();
        let key: Arc<[u8]> = bytes.into();
        self.order.push_back(key.clone());
        self.recent.insert(key, event.clone());
        while self.order.len() > RECENT_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use kith_protocol::kind::PostBody;
    use kith_protocol::{EventBuilder, Kind, SecretKey};

    use super::*;

    fn post(text: &str, at: u64) -> Event {
        let key = SecretKey::from_seed(&[5; 32]);
        let body = PostBody { text: text.into() }.to_bytes();
        EventBuilder::new(Kind::POST, Timestamp(at), body)
            .sign(&key)
            .unwrap()
    }

    #[test]
    fn genuine_events_pass_and_are_remembered() {
        let mut v = EventVerifier::new(&Limits::default());
        let e = post("hello", 1_000);
        let bytes = e.encode();
        assert_eq!(v.verify(&bytes, Timestamp(2_000)).unwrap(), e);
        assert!(v.recent.contains_key(bytes.as_slice()));
        assert_eq!(v.verify(&bytes, Timestamp(2_000)).unwrap(), e);
    }

    #[test]
    fn altered_events_fail_even_after_the_genuine_one_was_seen() {
        let mut v = EventVerifier::new(&Limits::default());
        let e = post("hello", 1_000);
        let mut bytes = e.encode();
        v.verify(&bytes, Timestamp(2_000)).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1; // a byte of the body
        assert_eq!(
            v.verify(&bytes, Timestamp(2_000)),
            Err(ValidationError::BodyMismatch)
        );
        let mut sig = e.encode();
        let in_signature = e.header_bytes().len() + 1;
        sig[in_signature] ^= 1;
        assert!(v.verify(&sig, Timestamp(2_000)).is_err());
    }

    #[test]
    fn clocks_a_few_hours_ahead_are_tolerated() {
        let mut v = EventVerifier::new(&Limits::default());
        let hours = 3 * 60 * 60 * 1000;
        assert!(v.verify(&post("x", hours).encode(), Timestamp(0)).is_ok());
        let days = 3 * 24 * 60 * 60 * 1000;
        assert!(matches!(
            v.verify(&post("x", days).encode(), Timestamp(0)),
            Err(ValidationError::FromTheFuture { .. })
        ));
    }

    #[test]
    fn events_without_a_body_are_refused() {
        let mut v = EventVerifier::new(&Limits::default());
        let bytes = post("gone", 1_000).without_body().encode();
        assert_eq!(
            v.verify(&bytes, Timestamp(2_000)),
            Err(ValidationError::BodyMissing)
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut v = EventVerifier::new(&Limits::default());
        for i in 0..(RECENT_CAPACITY as u64 + 10) {
            v.verify(&post("x", i).encode(), Timestamp(1_000_000))
                .unwrap();
        }
        assert_eq!(v.recent.len(), RECENT_CAPACITY);
        assert_eq!(v.order.len(), RECENT_CAPACITY);
    }
}
