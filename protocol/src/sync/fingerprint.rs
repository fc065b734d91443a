//! Fingerprints: a 16-byte summary of the ids in a range.
//!
//! `fingerprint = SHA-256( sum ‖ varint(count) )[0..16]`, where `sum` is the sum of the ids
//! read as 256-bit little-endian integers, modulo 2^256, written back as 32 little-endian
//! bytes, and `count` is the number of ids. The sum is what makes fingerprints cheap to
//! maintain: adding or removing an id is one 256-bit addition or subtraction, so a store can
//! keep partial sums in a tree and fingerprint any range in O(log n). The hash over the sum
//! is what makes them hard to forge: the sum alone is linear, so a peer could pick ids that
//! sum to anything it likes.

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::varint;
use crate::EventId;

/// Bytes in a [`Fingerprint`].
pub const FINGERPRINT_LEN: usize = 16;

/// The summary of the ids in one range; equal sets have equal fingerprints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; FINGERPRINT_LEN]);

impl Fingerprint {
    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; FINGERPRINT_LEN]) -> Fingerprint {
        Fingerprint(bytes)
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; FINGERPRINT_LEN] {
        &self.0
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex::encode(self.0))
    }
}

/// The running sum and count behind a [`Fingerprint`]: add and remove ids in any order,
/// merge two disjoint ranges, then [`Accumulator::fingerprint`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Accumulator {
    /// Little-endian 64-bit limbs of the 256-bit sum.
    sum: [u64; 4],
    count: u64,
}

fn limbs(id: &EventId) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (limb, chunk) in out.iter_mut().zip(id.as_bytes().chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    out
}

impl Accumulator {
    /// The accumulator of the empty range.
    pub const fn new() -> Accumulator {
        Accumulator {
            sum: [0; 4],
            count: 0,
        }
    }

    /// Adds one id.
    pub fn add(&mut self, id: &EventId) {
        self.add_limbs(&limbs(id), 1);
    }

    /// Removes one id that was added before.
    pub fn remove(&mut self, id: &EventId) {
        let other = limbs(id);
        let mut borrow = false;
        for (limb, x) in self.sum.iter_mut().zip(other) {
            let (d1, b1) = limb.overflowing_sub(x);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *limb = d2;
            borrow = b1 || b2;
        }
        self.count = self.count.wrapping_sub(1);
    }

    /// Adds everything `other` holds (the ranges must be disjoint for the result to mean
    /// their union).
    pub fn merge(&mut self, other: &Accumulator) {
        self.add_limbs(&other.sum, other.count);
    }

    fn add_limbs(&mut self, other: &[u64; 4], count: u64) {
        let mut carry = false;
        for (limb, x) in self.sum.iter_mut().zip(other) {
            let (s1, c1) = limb.overflowing_add(*x);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *limb = s2;
            carry = c1 || c2;
        }
        self.count = self.count.wrapping_add(count);
    }

    /// How many ids were added (minus those removed).
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// The sum modulo 2^256, as 32 little-endian bytes.
    pub fn sum_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.sum) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// The fingerprint of what was added.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut input = Vec::with_capacity(32 + varint::MAX_VARINT_LEN);
        input.extend_from_slice(&self.sum_bytes());
        varint::write(&mut input, self.count);
        let digest = Sha256::digest(&input);
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        Fingerprint(out)
    }
}

/// The fingerprint of a collection of ids.
pub fn fingerprint_of<'a>(ids: impl IntoIterator<Item = &'a EventId>) -> Fingerprint {
    let mut acc = Accumulator::new();
    for id in ids {
        acc.add(id);
    }
    acc.fingerprint()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(fill: u8) -> EventId {
        EventId::from_bytes([fill; 32])
    }

    #[test]
    fn sum_carries_across_limbs_and_wraps() {
        let mut acc = Accumulator::new();
        acc.add(&EventId::from_bytes([0xff; 32]));
        let mut one = [0u8; 32];
        one[0] = 1;
        acc.add(&EventId::from_bytes(one));
        // (2^256 - 1) + 1 wraps to zero.
        assert_eq!(acc.sum_bytes(), [0; 32]);
        assert_eq!(acc.count(), 2);

        let mut acc = Accumulator::new();
        let mut low = [0u8; 32];
        low[..8].copy_from_slice(&[0xff; 8]);
        acc.add(&EventId::from_bytes(low));
        acc.add(&EventId::from_bytes(one));
        let mut expected = [0u8; 32];
        expected[8] = 1;
        assert_eq!(acc.sum_bytes(), expected);
    }

    #[test]
    fn order_free_and_invertible() {
        let ids = [id(1), id(0x80), id(0xff), id(7)];
        let forward = fingerprint_of(&ids);
        let backward = fingerprint_of(ids.iter().rev());
        assert_eq!(forward, backward);

        let mut acc = Accumulator::new();
        for i in &ids {
            acc.add(i);
        }
        acc.remove(&id(0x80));
        assert_eq!(acc.fingerprint(), fingerprint_of(&[id(1), id(0xff), id(7)]));

        let mut left = Accumulator::new();
        left.add(&id(1));
        left.add(&id(0x80));
        let mut right = Accumulator::new();
        right.add(&id(0xff));
        right.add(&id(7));
        left.merge(&right);
        assert_eq!(left.fingerprint(), forward);
    }

    #[test]
    fn count_is_part_of_it() {
        // Two zero ids sum to the same as none; only the count tells them apart.
        let zero = EventId::from_bytes([0; 32]);
        assert_ne!(fingerprint_of(&[zero, zero]), fingerprint_of(&[]));
    }

    /// Test vectors, repeated in the draft spec; checked against an independent Python
    /// implementation (`hashlib`, `int.from_bytes(id, 'little')`).
    #[test]
    fn vectors() {
        assert_eq!(
            hex::encode(fingerprint_of(&[]).as_bytes()),
            "7f9c9e31ac8256ca2f258583df262dbc"
        );
        assert_eq!(
            hex::encode(fingerprint_of(&[id(1), id(2)]).as_bytes()),
            "12a7b248579deb04f68dac6d3db20efd"
        );
        // The sum wraps to zero; the count (2) still tells it from the empty set.
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(
            hex::encode(fingerprint_of(&[id(0xff), EventId::from_bytes(one)]).as_bytes()),
            "58cc2f44d3a27866874701fbad573da9"
        );
        // 200 ids: the count takes two varint bytes (0xc8 0x01).
        let many: Vec<EventId> = (1..=200).map(id).collect();
        assert_eq!(
            hex::encode(fingerprint_of(&many).as_bytes()),
            "cb28299d49f601f9b61ae51232094e58"
        );
    }
}
