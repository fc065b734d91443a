//! Range-based set reconciliation: how two nodes find out which events each lacks, in a few
//! round trips and with traffic that grows with the difference, not with the set.
//!
//! Each side holds a set of [`Item`]s (an event's `created_at` and id) sorted by time, then
//! id. The [`Initiator`] sends fingerprints of ranges of its set; the [`Responder`]
//! compares each with its own: equal ranges are settled; unequal ones are cut into
//! [`BRANCHING`] smaller ranges, or, once small, answered with the ids themselves. Ranges
//! go back and forth, shrinking around the differences, until none is left. At the end
//! the initiator knows both differences ([`Initiator::have_ids`],
//! [`Initiator::need_ids`]); the responder learns nothing and keeps no state between
//! messages but a round count.
//!
//! Both are sans-IO state machines: `handle_message` takes the peer's bytes,
//! `poll_transmit` yields the bytes to send, and the caller moves them. Nothing here reads
//! a clock or touches the network, so tests run both sides in memory.
//!
//! Every message is bounded ([`Config::with_max_message_bytes`], never more than
//! [`MAX_MESSAGE_BYTES`]): what does not fit waits for a later round. Every session is
//! bounded ([`Config::with_max_rounds`]). The decoder ([`decode_message`]) is strict and
//! public, for fuzzing.
//!
//! Ranges where the initiator holds nothing at all are answered with a count instead of
//! ids (an *absent* range, mode 5, [`Config::with_absent_ranges`]); the initiator lists them
//! in [`Initiator::need_ranges`]. A node far behind thus learns what it lacks without the
//! ids of it crossing the wire.
//!
//! Fetching the events themselves is *not* part of a session: the caller fetches
//! [`Initiator::need_ids`] and [`Initiator::need_ranges`] from the peer in batches, at the
//! pace it can validate and store them, and tells the peer about [`Initiator::have_ids`]
//! (or lets the peer run its own session).
//!
//! SPEC.md §9 describes the format and the rules; this is one implementation of it.
//!
//! Layout:
//! - [`Item`], [`Bound`]: the ordered space and the points that cut it into ranges;
//! - [`Fingerprint`], [`Accumulator`]: the 16-byte summary of a range, and the running sum
//!   behind it (which a tree-shaped store can keep to fingerprint in O(log n));
//! - [`SyncStore`], [`SyncSet`]: what a session reads, and a simple sorted-`Vec` store;
//! - [`Message`], [`decode_message`]: the wire format;
//! - [`Initiator`], [`Responder`], [`Config`]: the two state machines and their settings;
//! - [`SyncError`]: why a message or session was refused.

mod config;
mod error;
mod fingerprint;
mod initiator;
mod item;
mod message;
mod responder;
mod split;
mod store;
mod varint;

pub use config::{Config, MAX_ID_LIST_THRESHOLD, MIN_MESSAGE_BYTES};
pub use error::SyncError;
pub use fingerprint::{fingerprint_of, Accumulator, Fingerprint, FINGERPRINT_LEN};
pub use initiator::{Initiator, NeedRange};
pub use item::{Bound, Item, MAX_PREFIX_LEN};
pub use message::{decode_message, HeldBits, Message, MessageRange, Mode, Payload};
pub use responder::Responder;
pub use store::{SyncSet, SyncStore};

/// The version of the sync message format: the first byte of every message.
pub const SYNC_VERSION: u8 = 2;

/// The largest sync message any node may send, and so the largest every node must accept.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How many ranges a mismatching range is cut into (fewer if it holds fewer items).
pub const BRANCHING: usize = 16;
