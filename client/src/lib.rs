//! # kith-client
//!
//! Talks to a Kith node for people and programs: log in, publish signed events and
//! subscribe to them over one WebSocket. The `kith` command-line tool is built on it, and
//! the integration tests use it to drive real nodes.
//!
//! Layout:
//! - [`address`]: turning what a person types (`http://host:port`) into the node's
//!   WebSocket address;
//! - [`connection`]: [`Connection`], one WebSocket to a node, shared by any number of
//!   concurrent requests and subscriptions;
//! - [`subscription`]: [`Subscription`] and the [`SubscriptionItem`]s it yields;
//! - [`group`]: a group's events fetched from a node and folded on this computer
//!   ([`group::fetch_group`]), never taking the node's word for the group's state;
//! - [`identity`]: key files on disk, one per profile;
//! - [`http`]: plain HTTP reads, such as a node's key and public address
//!   ([`http::node_info`], from `/.well-known/kith`);
//! - [`join_code`]: [`JoinCode`], the one line a newcomer pastes to join a group from any
//!   node;
//! - [`error`]: what can go wrong, as [`ClientError`].
//!
//! **Boundary:** the client never trusts the node. Every event it receives is checked
//! with `kith_protocol::validate` before it is handed on; events that fail are reported
//! as [`SubscriptionItem::Rejected`], never as [`SubscriptionItem::Event`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), kith_client::ClientError> {
//! use kith_client::{Connection, SubscriptionItem};
//! use kith_protocol::frame::Filter;
//!
//! let conn = Connection::connect("http://127.0.0.1:8080").await?;
//! let mut sub = conn.subscribe(Filter::default()).await?;
//! while let Some(item) = sub.next().await {
//!     match item {
//!         SubscriptionItem::Event(event) => println!("{}", event.id()),
//!         SubscriptionItem::StoredDone => println!("-- now live --"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod address;
pub mod connection;
pub mod error;
pub mod group;
pub mod http;
pub mod identity;
pub mod join_code;
pub mod subscription;

mod router;
mod socket;
mod verify;

pub use address::{ws_url, DEFAULT_NODE};
pub use connection::{ConnectOptions, Connection, PublishOutcome};
pub use error::ClientError;
pub use group::{fetch_group, LocalGroup};
pub use http::{node_info, NodeInfo};
pub use identity::{IdentityError, KeyStore, ProfileName};
pub use join_code::{JoinCode, JoinCodeError};
pub use subscription::{Subscription, SubscriptionItem};

use std::time::{SystemTime, UNIX_EPOCH};

use kith_protocol::Timestamp;

/// The current time from this computer's clock, as a protocol [`Timestamp`]. A clock set
/// before 1970 reads as 0.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp(millis)
}
