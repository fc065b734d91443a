//! Why a sync message or session was refused.

use super::{Mode, SYNC_VERSION};

/// Why a sync message could not be decoded, or a session cannot go on.
///
/// Every variant but [`SyncError::UnexpectedMessage`] ends the session: the peer is broken,
/// hostile or speaks another version. Ids found before the error stay available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The message ends in the middle of something.
    #[error("the sync message ends in the middle of {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// The message is of a version this node does not speak. A responder answers it with
    /// the version it speaks; an initiator that gets this back cannot go on.
    #[error("the peer speaks sync version {version}, and this node only version {SYNC_VERSION}; one of the two nodes needs updating")]
    UnsupportedVersion {
        /// The version byte received.
        version: u8,
    },
    /// The message is larger than any node may send.
    #[error("the sync message is {size} bytes; at most {max} are allowed")]
    MessageTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The message spells something in a form other than the one canonical form.
    #[error("the sync message is not in canonical form: {what}")]
    NonCanonical {
        /// What is wrong.
        what: &'static str,
    },
    /// A number does not fit in 64 bits.
    #[error("{what} in the sync message does not fit in 64 bits")]
    Overflow {
        /// Which number.
        what: &'static str,
    },
    /// A bound's id prefix is longer than an id.
    #[error("a bound's id prefix is {len} bytes; at most 32 are allowed")]
    PrefixTooLong {
        /// Its length.
        len: usize,
    },
    /// A range's upper bound is not above the previous one.
    #[error("the ranges of the sync message are out of order: each upper bound must be above the one before")]
    BoundsNotIncreasing,
    /// A range follows the END bound.
    #[error("a range follows the END bound, above which nothing can be")]
    RangeAfterEnd,
    /// A mode byte this version does not define.
    #[error("unknown range mode {mode}; version {SYNC_VERSION} defines modes 0 to 5")]
    UnknownMode {
        /// The byte.
        mode: u8,
    },
    /// A declared count is larger than the rest of the message could hold.
    #[error("{what} says {declared}, but the rest of the message can hold at most {available}")]
    CountTooLarge {
        /// Which count.
        what: &'static str,
        /// What the message says.
        declared: u64,
        /// What the bytes left could hold.
        available: usize,
    },
    /// A range mode that only the other role sends.
    #[error("a responder received a {mode} range, which only a responder sends")]
    UnexpectedMode {
        /// The mode.
        mode: Mode,
    },
    /// The peer answered about a range this node did not ask about.
    #[error(
        "the peer answered about a range this node did not ask about; it is broken or hostile"
    )]
    UnrequestedRange,
    /// A difference carries a different number of held bits than ids were listed.
    #[error(
        "the peer's difference has {got} held bits, but {expected} ids were listed in that range"
    )]
    HeldCountMismatch {
        /// How many ids this node listed.
        expected: usize,
        /// How many bits came back.
        got: usize,
    },
    /// The session went on for more rounds than allowed.
    #[error("the sync session reached its limit of {max} rounds; the ids found so far are kept, start a new session for the rest")]
    TooManyRounds {
        /// The limit.
        max: u32,
    },
    /// A message arrived out of turn: an initiator got one while it had nothing
    /// outstanding, or a responder got one before its last answer was taken.
    #[error("a sync message arrived out of turn; call poll_transmit and send its result before handling the next message")]
    UnexpectedMessage,
    /// The session is over (done or failed).
    #[error("this sync session is over; start a new one")]
    Finished,
}
