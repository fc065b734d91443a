//! What a reconciliation session reads: a sorted set of items, by position.
//!
//! [`SyncStore`] is the seam between the session logic and however a node keeps its items.
//! [`SyncSet`] is the simple implementation (a sorted `Vec`, fingerprints computed in
//! O(range length)); a store that keeps [`Accumulator`] partial sums in a tree can answer
//! [`SyncStore::fingerprint`] in O(log n) without changing anything else.

use std::ops::Range;

use super::{Accumulator, Bound, Fingerprint, Item};

/// A sorted set of [`Item`]s, addressed by position (0 is the smallest item).
///
/// A session holds its store for its whole life and assumes it does not change meanwhile:
/// positions and fingerprints computed in one round are compared with the peer's answer in
/// the next. Sync a snapshot, and add what was fetched afterwards.
pub trait SyncStore {
    /// How many items.
    fn len(&self) -> usize;

    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many items are below `bound`: the position of the first item in a range that
    /// starts at `bound`. [`Bound::END`] gives `len()`.
    fn position(&self, bound: &Bound) -> usize;

    /// The items at positions `range`, in order. Positions past the end yield nothing.
    fn items(&self, range: Range<usize>) -> impl Iterator<Item = Item> + '_;

    /// The fingerprint of the items at positions `range`.
    ///
    /// The default adds them up one by one; a store with partial sums overrides it.
    fn fingerprint(&self, range: Range<usize>) -> Fingerprint {
        let mut acc = Accumulator::new();
        for item in self.items(range) {
            acc.add(&item.id);
        }
        acc.fingerprint()
    }
}

impl<S: SyncStore + ?Sized> SyncStore for &S {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn position(&self, bound: &Bound) -> usize {
        (**self).position(bound)
    }
    fn items(&self, range: Range<usize>) -> impl Iterator<Item = Item> + '_ {
        (**self).items(range)
    }
    fn fingerprint(&self, range: Range<usize>) -> Fingerprint {
        (**self).fingerprint(range)
    }
}

/// A set of items in a sorted `Vec`: binary search for positions, a linear pass for
/// fingerprints. Inserting one item is O(n); build it from an iterator when you can.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncSet {
    items: Vec<Item>,
}

impl SyncSet {
    /// An empty set.
    pub const fn new() -> SyncSet {
        SyncSet { items: Vec::new() }
    }

    /// Adds `item`; `false` if it was already there.
    pub fn insert(&mut self, item: Item) -> bool {
        match self.items.binary_search(&item) {
            Ok(_) => false,
            Err(at) => {
                self.items.insert(at, item);
                true
            }
        }
    }

    /// Whether `item` is in the set.
    pub fn contains(&self, item: &Item) -> bool {
        self.items.binary_search(item).is_ok()
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items in order.
    pub fn as_slice(&self) -> &[Item] {
        &self.items
    }

    /// The items in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Item> {
        self.items.iter()
    }
}

impl FromIterator<Item> for SyncSet {
    fn from_iter<I: IntoIterator<Item = Item>>(iter: I) -> SyncSet {
        let mut items: Vec<Item> = iter.into_iter().collect();
        items.sort_unstable();
        items.dedup();
        SyncSet { items }
    }
}

impl Extend<Item> for SyncSet {
    fn extend<I: IntoIterator<Item = Item>>(&mut self, iter: I) {
        self.items.extend(iter);
        self.items.sort_unstable();
        self.items.dedup();
    }
}

impl<'a> IntoIterator for &'a SyncSet {
    type Item = &'a Item;
    type IntoIter = std::slice::Iter<'a, Item>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl SyncStore for SyncSet {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn position(&self, bound: &Bound) -> usize {
        self.items.partition_point(|item| bound.is_above(item))
    }

    fn items(&self, range: Range<usize>) -> impl Iterator<Item = Item> + '_ {
        self.items.get(range).unwrap_or(&[]).iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventId, Timestamp};

    fn item(time: u64, fill: u8) -> Item {
        Item::new(Timestamp(time), EventId::from_bytes([fill; 32]))
    }

    #[test]
    fn sorted_deduplicated_and_positioned() {
        let set: SyncSet = [item(5, 1), item(1, 9), item(5, 0), item(1, 9)]
            .into_iter()
            .collect();
        assert_eq!(set.as_slice(), &[item(1, 9), item(5, 0), item(5, 1)]);
        assert_eq!(set.position(&Bound::MIN), 0);
        assert_eq!(set.position(&Bound::END), 3);
        assert_eq!(set.position(&Bound::at(&item(5, 1))), 2);
        assert_eq!(set.position(&Bound::new(Timestamp(5), &[]).unwrap()), 1);
        assert_eq!(set.items(2..9).count(), 0);
        assert_eq!(set.items(1..3).count(), 2);

        let mut other = SyncSet::new();
        assert!(other.insert(item(5, 1)));
        assert!(other.insert(item(1, 9)));
        assert!(other.insert(item(5, 0)));
        assert!(!other.insert(item(5, 0)));
        assert_eq!(other, set);
        assert!(other.contains(&item(1, 9)) && !other.contains(&item(1, 8)));
    }
}
