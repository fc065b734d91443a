//! The library refuses what a dishonest node sends: every event is checked by the client
//! itself, and a wrong answer is an error, never taken on trust.

use std::time::Duration;

use kith_client::{ClientError, Connection, Subscription, SubscriptionItem};
use kith_protocol::frame::{ErrorCode, Filter};
use kith_protocol::kind::PostBody;
use kith_protocol::{Event, EventBuilder, GroupId, Kind, SecretKey, Timestamp};

use crate::hostile_node::HostileNode;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

fn post_at(author: &SecretKey, text: &str, at: Timestamp) -> Event {
    let body = PostBody { text: text.into() }.to_bytes();
    EventBuilder::new(Kind::POST, at, body)
        .sign(author)
        .unwrap()
}

fn post(author: &SecretKey, text: &str) -> Event {
    post_at(author, text, kith_client::now())
}

const HOUR_MS: u64 = 60 * 60 * 1000;

async fn next(sub: &mut Subscription) -> SubscriptionItem {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("the subscription went quiet")
        .expect("the subscription ended")
}

/// The code of a rejected item, or a panic naming what came instead.
fn rejection_code(item: SubscriptionItem) -> Option<ErrorCode> {
    match item {
        SubscriptionItem::Rejected(error) => error.code(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_altered_and_cut_short_events_are_rejected() {
    let node = HostileNode::start().await;
    let genuine = post(&key(1), "genuine");
    let mut altered = post(&key(2), "I never wrote this").encode();
    let in_body = altered.len() - 2;
    altered[in_body] ^= 1;
    let forged = post(&key(3), "signed by someone else");
    let mut bad_signature = forged.encode();
    bad_signature[forged.header_bytes().len() + 1] ^= 1;
    node.plant(altered);
    node.plant(bad_signature);
    node.plant(genuine.encode());
    node.plant(post(&key(4), "cut short").encode()[..40].to_vec());

    let conn = Connection::connect(&node.address).await.unwrap();
    let mut sub = conn.subscribe(Filter::default()).await.unwrap();
    assert_eq!(
        rejection_code(next(&mut sub).await),
        Some(ErrorCode::BodyMismatch)
    );
    assert_eq!(
        rejection_code(next(&mut sub).await),
        Some(ErrorCode::BadSignature)
    );
    assert_eq!(next(&mut sub).await, SubscriptionItem::Event(genuine));
    assert_eq!(
        rejection_code(next(&mut sub).await),
        Some(ErrorCode::MalformedEvent)
    );
    // The subscription goes on after rejections.
    assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);
}

#[tokio::test]
async fn events_dated_far_ahead_are_rejected_but_a_clock_a_little_ahead_is_not() {
    let node = HostileNode::start().await;
    let now = kith_client::now().as_millis();
    let next_week = post_at(&key(1), "from next week", Timestamp(now + 7 * 24 * HOUR_MS));
    let in_three_hours = post_at(
        &key(1),
        "a clock running ahead",
        Timestamp(now + 3 * HOUR_MS),
    );
    node.plant(next_week.encode());
    node.plant(in_three_hours.encode());
    let conn = Connection::connect(&node.address).await.unwrap();
    let mut sub = conn.subscribe(Filter::default()).await.unwrap();
    assert_eq!(
        rejection_code(next(&mut sub).await),
        Some(ErrorCode::FromTheFuture)
    );
    assert_eq!(
        next(&mut sub).await,
        SubscriptionItem::Event(in_three_hours)
    );
}

#[tokio::test]
async fn events_the_subscription_did_not_ask_for_are_rejected() {
    let node = HostileNode::start().await;
    let alice = key(1);
    let garden = GroupId::from_bytes([7; 32]);
    let asked_for = EventBuilder::new(
        Kind::POST,
        kith_client::now(),
        PostBody {
            text: "in the garden".into(),
        }
        .to_bytes(),
    )
    .group(garden)
    .sign(&alice)
    .unwrap();
    node.plant(post(&key(2), "by someone else").encode());
    node.plant(post(&alice, "not in the group").encode());
    node.plant(asked_for.encode());

    let conn = Connection::connect(&node.address).await.unwrap();
    let filter = Filter {
        authors: Some(vec![alice.public_key()]),
        groups: Some(vec![garden]),
        ..Filter::default()
    };
    let mut sub = conn.subscribe(filter).await.unwrap();
    for _ in 0..2 {
        match next(&mut sub).await {
            SubscriptionItem::Rejected(ClientError::Protocol(why)) => {
                assert!(why.contains("did not ask for it"), "{why}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    assert_eq!(next(&mut sub).await, SubscriptionItem::Event(asked_for));
    assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);
}

#[tokio::test]
async fn forged_live_events_are_rejected_and_the_subscription_goes_on() {
    let node = HostileNode::start().await;
    let conn = Connection::connect(&node.address).await.unwrap();
    let mut sub = conn.subscribe(Filter::default()).await.unwrap();
    assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);

    let mut forged = post(&key(1), "live and forged").encode();
    let in_body = forged.len() - 3;
    forged[in_body] ^= 1;
    node.push_live(forged);
    let genuine = post(&key(1), "live and genuine");
    node.push_live(genuine.encode());
    assert_eq!(
        rejection_code(next(&mut sub).await),
        Some(ErrorCode::BodyMismatch)
    );
    assert_eq!(next(&mut sub).await, SubscriptionItem::Event(genuine));
}

#[tokio::test]
async fn a_wrong_id_for_a_published_event_is_an_error() {
    let node = HostileNode::start().await;
    let alice = key(1);
    let conn = Connection::connect(&node.address).await.unwrap();
    conn.login(&alice, None).await.unwrap();
    let event = post(&alice, "hello");
    match conn.publish(&event).await {
        Err(ClientError::Protocol(why)) => {
            assert!(why.contains(&event.id().to_string()), "{why}");
            assert!(why.contains("under the id"), "{why}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_node_speaking_only_other_versions_is_explained() {
    let node = HostileNode::claiming_versions(vec![9]).await;
    let err = Connection::connect(&node.address).await.unwrap_err();
    assert!(
        matches!(err, ClientError::IncompatibleVersion { ref node, .. } if node == &[9]),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("update whichever of the two is older"),
        "{err}"
    );
}
