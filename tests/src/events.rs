//! Signed events for tests.

use kith_protocol::event::{Event, EventBuilder, GroupId, Timestamp};
use kith_protocol::kind::{Kind, PostBody};
use kith_protocol::SecretKey;

/// A key from a small seed, so tests are repeatable.
pub fn seeded_key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

/// A post by `key` written now.
pub fn post(key: &SecretKey, text: &str, group: Option<GroupId>) -> Event {
    post_at(key, text, group, kith_client::now())
}

/// A post by `key` at a given time.
pub fn post_at(key: &SecretKey, text: &str, group: Option<GroupId>, at: Timestamp) -> Event {
    let body = PostBody { text: text.into() }.to_bytes();
    let mut builder = EventBuilder::new(Kind::POST, at, body);
    if let Some(g) = group {
        builder = builder.group(g);
    }
    builder.sign(key).expect("a small post always builds")
}
