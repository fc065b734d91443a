//! Items and bounds: the ordered space that reconciliation cuts into ranges.

use std::fmt;

use super::SyncError;
use crate::{EventId, Timestamp};

/// The longest id prefix a [`Bound`] carries: a whole id.
pub const MAX_PREFIX_LEN: usize = 32;

/// One element of a synced set: an event's `created_at` and its id.
///
/// Items are ordered by time, then by id (bytewise), which is the derived order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Item {
    /// When the event says it was written.
    pub time: Timestamp,
    /// The event's id.
    pub id: EventId,
}

impl Item {
    /// The item of the event with this `created_at` and id.
    pub const fn new(time: Timestamp, id: EventId) -> Item {
        Item { time, id }
    }
}

/// A cut point in the (time, id) order: every item is either below it or not.
///
/// A bound is a time and an id prefix of 0 to 32 bytes; it sits exactly where an item of
/// that time whose id is the prefix followed by zero bytes would sit, so an item is below
/// it when `(item.time, item.id) < (time, prefix ‖ 0…0)`. The special bound [`Bound::END`]
/// is above every item. Ranges are half-open: `[lower, upper)`.
///
/// Two prefixes that differ only in trailing zero bytes name the same point; a bound is
/// kept, compared and encoded in its shortest form (trailing zero bytes removed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bound {
    // Field order matters: the derived `Ord` compares `end` first, so END is above all.
    end: bool,
    time: u64,
    id: [u8; 32],
}

impl Bound {
    /// The lowest bound: no item is below it. Every message's first range starts here.
    pub const MIN: Bound = Bound {
        end: false,
        time: 0,
        id: [0; 32],
    };

    /// The bound above every item.
    pub const END: Bound = Bound {
        end: true,
        time: 0,
        id: [0; 32],
    };

    /// The bound at `time` and id `prefix` (at most [`MAX_PREFIX_LEN`] bytes).
    pub fn new(time: Timestamp, prefix: &[u8]) -> Result<Bound, SyncError> {
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(SyncError::PrefixTooLong { len: prefix.len() });
        }
        let mut id = [0u8; 32];
        id[..prefix.len()].copy_from_slice(prefix);
        Ok(Bound {
            end: false,
            time: time.0,
            id,
        })
    }

    /// The bound exactly at `item`: the item itself is not below it, anything smaller is.
    pub const fn at(item: &Item) -> Bound {
        Bound {
            end: false,
            time: item.time.0,
            id: *item.id.as_bytes(),
        }
    }

    /// The shortest bound that separates `below` from `above`: `below` is below it and
    /// `above` is not. When the times differ it carries no id prefix at all; when they are
    /// equal, the shortest prefix of `above.id` that is larger than `below.id`.
    ///
    /// If `below` is not smaller than `above` there is no such bound, and this returns
    /// [`Bound::at`]`(above)`.
    pub fn between(below: &Item, above: &Item) -> Bound {
        if below.time < above.time {
            return Bound {
                end: false,
                time: above.time.0,
                id: [0; 32],
            };
        }
        let (low, high) = (below.id.as_bytes(), above.id.as_bytes());
        if below.time > above.time || low >= high {
            return Bound::at(above);
        }
        // The first differing byte; `high` is larger there, so its prefix up to and
        // including that byte (then zeros) is above `low` and not above `high`.
        let shared = low.iter().zip(high).take_while(|(a, b)| a == b).count();
        let mut id = [0u8; 32];
        id[..=shared].copy_from_slice(&high[..=shared]);
        Bound {
            end: false,
            time: above.time.0,
            id,
        }
    }

    /// The lowest bound above `item`: `item` is below it, and every larger item is not.
    /// Where a fetch of a range continues after the last item received.
    pub fn after(item: &Item) -> Bound {
        let mut id = *item.id.as_bytes();
        // Add one to the id as a 256-bit big-endian number.
        for byte in id.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                return Bound {
                    end: false,
                    time: item.time.0,
                    id,
                };
            }
        }
        // The id was all 0xff: the next point is the next millisecond.
        match item.time.0.checked_add(1) {
            Some(time) => Bound {
                end: false,
                time,
                id: [0; 32],
            },
            None => Bound::END,
        }
    }

    /// Whether `item` lies in the range `[self, upper)`.
    pub fn holds(&self, upper: &Bound, item: &Item) -> bool {
        !self.is_above(item) && upper.is_above(item)
    }

    /// Whether this is [`Bound::END`].
    pub const fn is_end(&self) -> bool {
        self.end
    }

    /// The time, or `None` for [`Bound::END`].
    pub const fn time(&self) -> Option<Timestamp> {
        if self.end {
            None
        } else {
            Some(Timestamp(self.time))
        }
    }

    /// The id prefix in its shortest form (trailing zero bytes removed). Empty for
    /// [`Bound::END`].
    pub fn prefix(&self) -> &[u8] {
        let len = self
            .id
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        &self.id[..len]
    }

    /// Whether `item` is below this bound (so in a range whose `upper` this is).
    pub fn is_above(&self, item: &Item) -> bool {
        self.end || (item.time.0, item.id.as_bytes()) < (self.time, &self.id)
    }
}

impl fmt::Debug for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.end {
            f.write_str("Bound(END)")
        } else {
            write!(f, "Bound({}, {})", self.time, hex::encode(self.prefix()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(time: u64, id: &[u8]) -> Item {
        let mut bytes = [0u8; 32];
        bytes[..id.len()].copy_from_slice(id);
        Item::new(Timestamp(time), EventId::from_bytes(bytes))
    }

    #[test]
    fn order_is_end_time_then_id() {
        let a = Bound::new(Timestamp(5), &[0xff]).unwrap();
        let b = Bound::new(Timestamp(6), &[]).unwrap();
        assert!(Bound::MIN < a && a < b && b < Bound::END);
        assert!(Bound::END.is_above(&item(u64::MAX, &[0xff; 32])));
        assert!(!Bound::MIN.is_above(&item(0, &[])));
        assert!(Bound::at(&item(3, &[1])).is_above(&item(3, &[0, 0xff])));
        assert!(!Bound::at(&item(3, &[1])).is_above(&item(3, &[1])));
    }

    #[test]
    fn after_is_the_next_point() {
        let x = item(7, &[1, 2]);
        let next = Bound::after(&x);
        assert!(next.is_above(&x));
        assert!(!next.is_above(&item(
            7,
            &[
                1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 1
            ]
        )));
        assert!(Bound::at(&x).holds(&next, &x));
        let last = item(7, &[0xff; 32]);
        assert_eq!(Bound::after(&last), Bound::new(Timestamp(8), &[]).unwrap());
        let very_last = item(u64::MAX, &[0xff; 32]);
        assert_eq!(Bound::after(&very_last), Bound::END);
        assert!(!Bound::MIN.holds(&Bound::MIN, &x));
    }

    #[test]
    fn trailing_zeros_name_the_same_point() {
        let a = Bound::new(Timestamp(5), &[1, 2]).unwrap();
        let b = Bound::new(Timestamp(5), &[1, 2, 0, 0]).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.prefix(), &[1, 2]);
        assert_eq!(Bound::END.prefix(), &[] as &[u8]);
        assert!(matches!(
            Bound::new(Timestamp(0), &[1; 33]),
            Err(SyncError::PrefixTooLong { len: 33 })
        ));
    }

    #[test]
    fn between_is_shortest_and_separates() {
        let cases = [
            (item(1, &[9, 9]), item(2, &[0, 1]), 0),
            (item(2, &[1, 2, 3]), item(2, &[1, 2, 4]), 3),
            (item(2, &[1, 2, 3]), item(2, &[1, 3]), 2),
            (item(2, &[0, 0, 0]), item(2, &[0, 0, 1]), 3),
            (item(2, &[0xff; 31]), item(2, &[0xff; 32]), 32),
        ];
        for (below, above, prefix_len) in cases {
            let bound = Bound::between(&below, &above);
            assert!(bound.is_above(&below), "{below:?} {above:?}");
            assert!(!bound.is_above(&above), "{below:?} {above:?}");
            assert_eq!(bound.prefix().len(), prefix_len, "{bound:?}");
            assert_ne!(bound.prefix().last(), Some(&0));
        }
        // Not in order: falls back to the bound at `above`.
        let (a, b) = (item(3, &[1]), item(3, &[2]));
        assert_eq!(Bound::between(&b, &a), Bound::at(&a));
        assert_eq!(Bound::between(&a, &a), Bound::at(&a));
    }
}
