//! Federation: nodes syncing groups with each other, with no node in charge.
//!
//! - [`connect`]: the `/federation` endpoint and the dialers (configured peers, and the
//!   nodes members name as home), each running the node-to-node handshake;
//! - [`link`]: one established link: announce shared groups, reconcile them, fetch what is
//!   missing, drain the durable outbound queue;
//! - [`route`]: which peers get (and may read) a group's events: the nodes hosting its
//!   members, and followers of public groups. Private groups never reach other nodes;
//! - [`frame`]: the link frames; [`wire`]: a WebSocket as queues of text frames;
//! - [`registry`]: the links and dialers running now;
//! - [`address`]: which peer addresses the node may contact (never private ranges on a
//!   peer's say-so);
//! - [`fetch`]: the TLS roots trusted for `https://` peers (links run over `wss://`), and
//!   the HTTP client that reads a peer's node information (same address rules, redirects
//!   bounded and never into private ranges);
//! - [`peers`]: the peers an admin added or blocked, and the admin request log that
//!   `kithd admin peer …` writes while the node runs.
//!
//! Events from peers go through `Node::ingest_from_peer`, checked like any client's.

pub mod address;
pub mod connect;
pub mod fetch;
pub mod frame;
pub mod link;
pub mod peers;
pub mod registry;
pub mod route;
mod wire;

pub use address::{check_peer_url, AddressError, PeerUrl};
pub use peers::{Peer, PeerStatus};
pub use registry::Registry;
