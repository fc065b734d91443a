//! Token buckets for publish and frame rates.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use kith_protocol::PublicKey;

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Bucket {
        Bucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled completely (so it can be forgotten).
    fn is_full(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.rate
            >= self.burst
    }
}

/// One bucket per key, shared by all of a key's connections. Full buckets are dropped now and
/// then, so memory follows the number of recently active keys.
pub struct KeyBuckets {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<PublicKey, Bucket>>,
}

impl KeyBuckets {
    /// Buckets of `rate` per second, `burst` deep.
    pub fn new(rate: f64, burst: f64) -> KeyBuckets {
        KeyBuckets {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket.
    pub fn take(&self, key: &PublicKey, now: Instant) -> bool {
        let Ok(mut map) = self.buckets.lock() else {
            return false;
        };
        if map.len() > 10_000 {
            map.retain(|_, b| !b.is_full(now));
        }
        map.entry(*key)
            .or_insert_with(|| Bucket::new(self.rate, self.burst, now))
            .take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3.0, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(500)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
    }
}
