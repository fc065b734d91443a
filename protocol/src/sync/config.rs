//! The settings of a reconciliation session.

use super::MAX_MESSAGE_BYTES;

/// The smallest `max_message_bytes` allowed: room for a full split (16 fingerprints) or the
/// largest id list an initiator sends, so every round makes progress.
pub const MIN_MESSAGE_BYTES: usize = 4096;

/// The largest `id_list_threshold` allowed (a 2 KiB id list, well inside the smallest
/// message).
pub const MAX_ID_LIST_THRESHOLD: usize = 64;

/// The settings of a session. Every value is kept within its allowed range: the setters
/// clamp, so once you hold a `Config` it is valid.
///
/// None of these must match between the two peers; each bounds what its own side sends,
/// holds and tolerates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    max_message_bytes: usize,
    max_rounds: u32,
    id_list_threshold: usize,
    max_pending_ranges: usize,
    absent_ranges: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_rounds: 256,
            id_list_threshold: 16,
            max_pending_ranges: 16_384,
            absent_ranges: true,
        }
    }
}

impl Config {
    /// The largest message this side sends, in bytes: between [`MIN_MESSAGE_BYTES`] and
    /// [`MAX_MESSAGE_BYTES`] (the default). When a round has more to say, the rest waits
    /// for a later round.
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Config {
        self.max_message_bytes = bytes.clamp(MIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES);
        self
    }

    /// The most messages this side sends (initiator) or answers (responder) in one
    /// session, at least 1; default 256. It bounds what a peer that never lets the session
    /// end can cost: at most this many messages of at most [`MAX_MESSAGE_BYTES`] each.
    pub fn with_max_rounds(mut self, rounds: u32) -> Config {
        self.max_rounds = rounds.max(1);
        self
    }

    /// A mismatching range where this side holds fewer items than this is answered with
    /// the ids themselves rather than split further: between 2 and
    /// [`MAX_ID_LIST_THRESHOLD`]; default 16. Higher can save the last round trip when
    /// differences are sparse; lower costs fewer bytes (and, with bounded messages, fewer
    /// rounds) when they are dense. SPEC.md §9.14 has the measurements.
    pub fn with_id_list_threshold(mut self, threshold: usize) -> Config {
        self.id_list_threshold = threshold.clamp(2, MAX_ID_LIST_THRESHOLD);
        self
    }

    /// How many ranges an initiator keeps waiting for room in a later message, at least
    /// 16; default 16 384 (about 1.7 MB). Past it, the highest ones are merged into one
    /// coarser range: memory stays bounded whatever the peer answers, at the price of
    /// re-examining part of the set.
    pub fn with_max_pending_ranges(mut self, ranges: usize) -> Config {
        self.max_pending_ranges = ranges.max(16);
        self
    }

    /// Whether a responder answers an initiator's *empty* id list with an absent range (the
    /// count of its items there, mode 5) rather than the ids; default true. The initiator
    /// then fetches the whole range ([`Initiator::need_ranges`](super::Initiator::need_ranges))
    /// and neither side sends those ids at all, which is what makes catching up from far
    /// behind cost about the events' own bytes. False gives every id, for callers that
    /// want the exact difference as ids.
    pub fn with_absent_ranges(mut self, absent: bool) -> Config {
        self.absent_ranges = absent;
        self
    }

    /// See [`Config::with_absent_ranges`].
    pub const fn absent_ranges(&self) -> bool {
        self.absent_ranges
    }

    /// See [`Config::with_max_message_bytes`].
    pub const fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// See [`Config::with_max_rounds`].
    pub const fn max_rounds(&self) -> u32 {
        self.max_rounds
    }

    /// See [`Config::with_id_list_threshold`].
    pub const fn id_list_threshold(&self) -> usize {
        self.id_list_threshold
    }

    /// See [`Config::with_max_pending_ranges`].
    pub const fn max_pending_ranges(&self) -> usize {
        self.max_pending_ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_clamp() {
        let c = Config::default()
            .with_max_message_bytes(10)
            .with_max_rounds(0)
            .with_id_list_threshold(1)
            .with_max_pending_ranges(0);
        assert_eq!(c.max_message_bytes(), MIN_MESSAGE_BYTES);
        assert_eq!(c.max_rounds(), 1);
        assert_eq!(c.id_list_threshold(), 2);
        assert_eq!(c.max_pending_ranges(), 16);
        let c = c
            .with_max_message_bytes(usize::MAX)
            .with_id_list_threshold(1000);
        assert_eq!(c.max_message_bytes(), MAX_MESSAGE_BYTES);
        assert_eq!(c.id_list_threshold(), MAX_ID_LIST_THRESHOLD);
    }
}
