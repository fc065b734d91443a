//! # kith-protocol
//!
//! The pure core of Kith: everything a node, the CLI and the web client must agree on
//! byte-for-byte. It does no I/O, reads no clock and owns no randomness: callers pass
//! `now` and an RNG. That keeps every decision deterministic, so two nodes holding the
//! same events always reach the same verdicts.
//!
//! Layout:
//! - [`key`]: ed25519 identities and their `kith1…` text form;
//! - [`event`]: the signed header, the body, event ids, signing and strict verification;
//! - [`kind`]: the registry of event kinds and their body rules;
//! - [`validate`]: limits and validation of a received event;
//! - [`group`]: groups that govern themselves: rules, state, and the deterministic fold;
//! - [`frame`]: the JSON frames spoken over WebSockets;
//! - [`auth`]: the bytes a client signs to log in;
//! - [`link`]: the handshake by which two nodes authenticate each other before federating;
//! - [`sync`]: range-based set reconciliation, the sans-IO sessions nodes use to catch up;
//! - [`view`]: a readable JSON view of an event for people and scripts;
//! - [`encoding`]: the small byte encodings shared by the above (base64, hex).
//!
//! `protocol/SPEC.md` is the normative description; this crate is one implementation of it.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod auth;
pub mod encoding;
pub mod event;
pub mod frame;
pub mod group;
pub mod key;
pub mod kind;
pub mod link;
pub mod sync;
pub mod validate;
pub mod view;

pub use event::{Event, EventBuilder, EventId, GroupId, Header, Timestamp};
pub use key::{PublicKey, SecretKey};
pub use kind::Kind;
pub use validate::{Limits, ValidationError};

/// The version of the event format and of the wire frames this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// Every protocol version this crate can decode.
pub const SUPPORTED_VERSIONS: &[u8] = &[PROTOCOL_VERSION];
