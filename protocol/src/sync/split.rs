//! Cutting a mismatching range into the pieces sent next: the step both roles share.

use std::ops::Range;

use super::{Bound, Item, SyncStore, BRANCHING};

/// What a piece will carry when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PieceKind {
    /// This side's fingerprint of the piece.
    Fingerprint,
    /// This side's ids in the piece.
    IdList,
}

/// A range this side is going to send (or has sent and awaits an answer for). The payload
/// is computed from the store when it is written, so a waiting piece costs only its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Piece {
    pub(super) lower: Bound,
    pub(super) upper: Bound,
    pub(super) kind: PieceKind,
}

/// The positions of the items in `[lower, upper)`.
pub(super) fn positions<S: SyncStore + ?Sized>(
    store: &S,
    lower: &Bound,
    upper: &Bound,
) -> Range<usize> {
    let begin = store.position(lower);
    let end = store.position(upper);
    begin..end.max(begin)
}

/// Appends the pieces that answer a mismatch on `[lower, upper)`, whose items are at
/// `positions`: one id list if there are fewer than `threshold` items, else
/// `min(BRANCHING, count)` fingerprint pieces holding as equal a share of the items as
/// integer division gives, cut at the shortest separating bounds.
pub(super) fn split<S: SyncStore + ?Sized>(
    store: &S,
    threshold: usize,
    lower: Bound,
    upper: Bound,
    positions: Range<usize>,
    out: &mut Vec<Piece>,
) {
    let count = positions.len();
    if count < threshold {
        out.push(Piece {
            lower,
            upper,
            kind: PieceKind::IdList,
        });
        return;
    }
    let buckets = BRANCHING.min(count);
    let mut piece_lower = lower;
    let mut next_cut = 1;
    let mut previous: Option<Item> = None;
    for (offset, item) in store.items(positions).enumerate() {
        if next_cut < buckets && offset == next_cut * count / buckets {
            if let Some(below) = previous {
                let cut = Bound::between(&below, &item);
                out.push(Piece {
                    lower: piece_lower,
                    upper: cut,
                    kind: PieceKind::Fingerprint,
                });
                piece_lower = cut;
            }
            next_cut += 1;
        }
        previous = Some(item);
    }
    out.push(Piece {
        lower: piece_lower,
        upper,
        kind: PieceKind::Fingerprint,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SyncSet;
    use crate::{EventId, Timestamp};

    fn set(n: u64) -> SyncSet {
        (0..n)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&i.to_be_bytes());
                Item::new(Timestamp(1000 + i / 3), EventId::from_bytes(id))
            })
            .collect()
    }

    #[test]
    fn small_ranges_become_one_id_list() {
        let s = set(10);
        let mut out = Vec::new();
        split(&s, 32, Bound::MIN, Bound::END, 0..10, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, PieceKind::IdList);
    }

    #[test]
    fn large_ranges_split_evenly_and_contiguously() {
        for (n, threshold, expected) in [(1000, 32, 16), (40, 32, 16), (5, 2, 5), (100, 2, 16)] {
            let s = set(n);
            let mut out = Vec::new();
            split(
                &s,
                threshold,
                Bound::MIN,
                Bound::END,
                0..n as usize,
                &mut out,
            );
            assert_eq!(out.len(), expected, "n={n}");
            assert_eq!(out[0].lower, Bound::MIN);
            assert_eq!(out.last().unwrap().upper, Bound::END);
            let mut total = 0;
            for pair in out.windows(2) {
                assert_eq!(pair[0].upper, pair[1].lower);
                assert!(pair[0].lower < pair[0].upper);
            }
            for piece in &out {
                assert_eq!(piece.kind, PieceKind::Fingerprint);
                let len = positions(&s, &piece.lower, &piece.upper).len();
                assert!(len >= n as usize / expected && len <= (n as usize).div_ceil(expected));
                total += len;
            }
            assert_eq!(total, n as usize);
        }
    }
}
