//! Federation: nodes syncing groups with each other.
//!
//! - [`link`]: the `/federation` WebSocket and the dialers: the node-to-node handshake, then
//!   following peers' public groups (sync, fetch, live push). Private groups never cross.
//! - [`address`]: which peer addresses the node may contact (never private ranges on a
//!   peer's say-so);
//! - [`peers`]: the peers an admin added or blocked, and the admin request log that
//!   `kithd admin peer …` writes while the node runs.
//!
//! Events from peers go through `Node::ingest_from_peer`, checked like any client's.
//! Not yet here: routing private groups, durable per-peer queues.

pub mod address;
pub mod link;
pub mod peers;

pub use address::{check_peer_url, AddressError, PeerUrl};
pub use peers::{Peer, PeerStatus};
