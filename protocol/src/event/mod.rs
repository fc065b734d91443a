//! Signed events: the one thing every Kith node stores, checks and syncs.
//!
//! An event is three byte strings laid end to end (SPEC.md §3):
//!
//! ```text
//! header (variable, self-delimiting) || signature (64 bytes) || body (0 or body_len bytes)
//! ```
//!
//! The signature covers exactly the header bytes; the header holds the SHA-256 and length of
//! the body, so the body can be withdrawn later while the header still proves what existed.
//! The event id is SHA-256 of the header bytes. Nobody ever re-serialises a decoded header
//! to check it: the bytes that were signed are the bytes that are kept and hashed.
//!
//! - [`header`]: the header layout, its encoder (private to this crate) and strict decoder;
//! - [`id`]: [`EventId`], [`GroupId`] and [`Timestamp`];
//! - [`signed`]: [`Event`] (decoded, not yet trusted) and [`EventBuilder`] (the only signer).

pub mod header;
pub mod id;
pub mod signed;

pub use header::{DecodeError, Header, HEADER_MAGIC};
pub use id::{EventId, GroupId, Timestamp};
pub use signed::{Event, EventBuilder, SIGNATURE_LEN};
