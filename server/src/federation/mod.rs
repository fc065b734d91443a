//! Federation: nodes syncing groups with each other.
//!
//! Today only the foundations exist:
//! - [`address`]: which peer addresses the node may contact (never private ranges on a
//!   peer's say-so);
//! - [`peers`]: the peers an admin added or blocked, and the admin request log that
//!   `kithd admin peer …` writes while the node runs.
//!
//! Not yet here: connecting to peers, the node-to-node handshake, pushing new events and
//! reconciling with `kith_protocol::sync`. Events from peers will go through
//! `Node::publish` like any client's.

pub mod address;
pub mod peers;

pub use address::{check_peer_url, AddressError, PeerUrl};
pub use peers::{Peer, PeerStatus};
