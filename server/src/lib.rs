//! # kith-server
//!
//! `kithd`, a Kith node: it stores signed events durably, serves them to clients over a
//! WebSocket, and (in later work) syncs groups with other nodes.
//!
//! Layout:
//! - [`server`]: start, address and shutdown of a node (what `main.rs` and tests use);
//! - [`config`]: settings from file, environment and flags;
//! - [`node`]: shared state, and the publish and login paths every connection uses;
//! - [`store`]: the `Store` trait, the sled engine and group commit (only module using sled);
//! - [`groups`]: each group's events and state, enforcing its rules on publish;
//! - [`hub`]: live announcements of newly stored events;
//! - [`ws`]: the client WebSocket API; [`http`]: health, metrics and JSON reads;
//! - [`federation`]: foundations for syncing with other nodes: which peer addresses may be
//!   contacted, and the peers an admin added or blocked;
//! - [`refusal`]: this node's refusals to host a group or a member's events, published as
//!   signed events in the group and enforced from them;
//! - [`invite`]: invite codes; [`ratelimit`]: token buckets; [`metrics`]: counters.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod config;
pub mod federation;
pub mod groups;
pub mod http;
pub mod hub;
pub mod invite;
pub mod metrics;
pub mod node;
pub mod ratelimit;
pub mod refusal;
pub mod server;
pub mod store;
pub mod ws;

pub use config::Config;
pub use server::{Server, StartError};
