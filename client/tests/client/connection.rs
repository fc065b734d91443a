//! The library against the fake node: greeting, login, publish, subscriptions, closing.

use std::time::Duration;

use kith_client::{ClientError, Connection, SubscriptionItem};
use kith_protocol::frame::{ErrorCode, Filter};
use kith_protocol::kind::PostBody;
use kith_protocol::{Event, EventBuilder, Kind, SecretKey, Timestamp};

use crate::fake_node::FakeNode;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

fn post(author: &SecretKey, text: &str) -> Event {
    let body = PostBody { text: text.into() }.to_bytes();
    EventBuilder::new(Kind::POST, kith_client::now(), body)
        .sign(author)
        .unwrap()
}

/// A connection logged in as `author`, registered with a fresh invite.
async fn member(node: &FakeNode, author: &SecretKey) -> Connection {
    let conn = Connection::connect(&node.address).await.unwrap();
    let invite = format!("invite-{}", author.public_key());
    node.add_invite(&invite);
    conn.login(author, Some(&invite)).await.unwrap();
    conn
}

async fn next(sub: &mut kith_client::Subscription) -> SubscriptionItem {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("the subscription went quiet")
        .expect("the subscription ended")
}

#[tokio::test]
async fn the_greeting_names_the_node() {
    let node = FakeNode::start().await;
    let conn = Connection::connect(&node.address).await.unwrap();
    assert_eq!(conn.node_key(), node.key);
    assert_eq!(conn.versions(), [1]);
    assert_eq!(conn.limits(), &kith_protocol::Limits::default());
    assert!(conn.url().starts_with("ws://127.0.0.1:") && conn.url().ends_with("/ws"));
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn an_absent_node_is_explained() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = Connection::connect(&address).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert!(err
        .to_string()
        .ends_with("is it running? check the address"));
}

#[tokio::test]
async fn logging_in_needs_registration_or_an_invite() {
    let node = FakeNode::start().await;
    let alice = key(1);
    let conn = Connection::connect(&node.address).await.unwrap();
    let err = conn.login(&alice, None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotRegistered));

    let conn = Connection::connect(&node.address).await.unwrap();
    let err = conn.login(&alice, Some("made-up")).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadInvite));

    node.add_invite("welcome");
    let conn = Connection::connect(&node.address).await.unwrap();
    conn.login(&alice, Some("welcome")).await.unwrap();
    // Registered now: later logins need no invite.
    let conn = Connection::connect(&node.address).await.unwrap();
    conn.login(&alice, None).await.unwrap();
}

#[tokio::test]
async fn publishing_needs_a_login_and_is_idempotent() {
    let node = FakeNode::start().await;
    let alice = key(1);
    let event = post(&alice, "hello");

    let anonymous = Connection::connect(&node.address).await.unwrap();
    let err = anonymous.publish(&event).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::AuthRequired));

    let conn = member(&node, &alice).await;
    let first = conn.publish(&event).await.unwrap();
    assert_eq!(first.event_id, event.id());
    assert!(!first.duplicate);
    assert!(conn.publish(&event).await.unwrap().duplicate);
    assert_eq!(node.stored(), 1);

    // The node's refusals come back with its code.
    let mut tampered = post(&alice, "original").encode();
    let last = tampered.len() - 3;
    tampered[last] ^= 1;
    let err = conn.publish_bytes(tampered).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BodyMismatch));
}

#[tokio::test]
async fn subscriptions_give_stored_then_live_events() {
    let node = FakeNode::start().await;
    let alice = key(1);
    let writer = member(&node, &alice).await;
    let old = post(&alice, "before");
    writer.publish(&old).await.unwrap();

    let reader = Connection::connect(&node.address).await.unwrap();
    let mut sub = reader.subscribe(Filter::default()).await.unwrap();
    assert_eq!(next(&mut sub).await, SubscriptionItem::Event(old));
    assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);

    let new = post(&alice, "after");
    writer.publish(&new).await.unwrap();
    assert_eq!(next(&mut sub).await, SubscriptionItem::Event(new));
}

#[tokio::test]
async fn forged_events_from_the_node_are_rejected() {
    let node = FakeNode::start().await;
    let genuine = post(&key(1), "genuine");
    let mut forged = post(&key(2), "I never wrote this").encode();
    let last = forged.len() - 2;
    forged[last] ^= 1;
    node.plant(forged);
    node.plant(genuine.encode());
    node.plant(post(&key(3), "cut short").encode()[..40].to_vec());

    let conn = Connection::connect(&node.address).await.unwrap();
    let mut sub = conn.subscribe(Filter::default()).await.unwrap();
    assert!(matches!(
        next(&mut sub).await,
        SubscriptionItem::Rejected(ClientError::InvalidEvent(_))
    ));
    assert_eq!(next(&mut sub).await, SubscriptionItem::Event(genuine));
    // A cut-short event does not even decode; the fake node drops it from matching.
    assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);
}

#[tokio::test]
async fn events_far_in_the_future_are_rejected() {
    let node = FakeNode::start().await;
    let week = 7 * 24 * 60 * 60 * 1000;
    let at = Timestamp(kith_client::now().as_millis() + week);
    let body = PostBody { text: "x".into() }.to_bytes();
    let event = EventBuilder::new(Kind::POST, at, body)
        .sign(&key(1))
        .unwrap();
    node.plant(event.encode());
    let conn = Connection::connect(&node.address).await.unwrap();
    let mut sub = conn.subscribe(Filter::default()).await.unwrap();
    match next(&mut sub).await {
        SubscriptionItem::Rejected(err) => assert_eq!(err.code(), Some(ErrorCode::FromTheFuture)),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn unsubscribing_tells_the_node() {
    let node = FakeNode::start().await;
    let conn = Connection::connect(&node.address).await.unwrap();
    let mut kept = conn.subscribe(Filter::default()).await.unwrap();
    let mut dropped = conn.subscribe(Filter::default()).await.unwrap();
    let mut stopped = conn.subscribe(Filter::default()).await.unwrap();
    for sub in [&mut kept, &mut dropped, &mut stopped] {
        assert_eq!(next(sub).await, SubscriptionItem::StoredDone);
    }
    assert_eq!(node.open_subscriptions(), 3);
    drop(dropped);
    conn.unsubscribe(stopped).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while node.open_subscriptions() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node was not told"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn closing_ends_requests_and_subscriptions() {
    let node = FakeNode::start().await;
    let conn = Connection::connect(&node.address).await.unwrap();
    let mut sub = conn.subscribe(Filter::default()).await.unwrap();
    assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);
    let other_handle = conn.clone();
    conn.close().await;
    assert!(other_handle.is_closed());
    assert!(matches!(
        next(&mut sub).await,
        SubscriptionItem::Disconnected { .. }
    ));
    assert_eq!(sub.next().await, None);
    let err = other_handle
        .publish(&post(&key(1), "late"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Closed { .. }), "{err:?}");
    assert!(matches!(
        other_handle.subscribe(Filter::default()).await,
        Err(ClientError::Closed { .. })
    ));
}

/// One connection carries 100 concurrent publishers; another carries 1000 subscriptions,
/// and every subscription sees every post exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_publishers_and_subscribers_share_connections() {
    const PUBLISHERS: usize = 100;
    const SUBSCRIBERS: usize = 1000;
    let node = FakeNode::start().await;
    let author = key(1);
    let writer = member(&node, &author).await;
    let reader = Connection::connect(&node.address).await.unwrap();

    let mut subs = Vec::new();
    for _ in 0..SUBSCRIBERS {
        subs.push(reader.subscribe(Filter::default()).await.unwrap());
    }
    for sub in &mut subs {
        assert_eq!(next(sub).await, SubscriptionItem::StoredDone);
    }

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|i| {
            let writer = writer.clone();
            let event = post(&author, &format!("message {i}"));
            tokio::spawn(async move {
                let outcome = writer.publish(&event).await.unwrap();
                assert_eq!(outcome.event_id, event.id());
                event.id()
            })
        })
        .collect();
    let mut published = Vec::new();
    for p in publishers {
        published.push(p.await.unwrap());
    }
    published.sort();

    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut sub| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while seen.len() < PUBLISHERS {
                    match next(&mut sub).await {
                        SubscriptionItem::Event(e) => seen.push(e.id()),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                seen.sort();
                seen
            })
        })
        .collect();
    for r in readers {
        assert_eq!(r.await.unwrap(), published);
    }
}
