//! Federation of public groups between in-process nodes on loopback: B lists A as a peer,
//! links with it over `/federation`, catches up A's public groups, then gets new events live.
//! Private groups never cross; a tampered event from a peer is refused.

use std::time::Duration;

use futures_util::SinkExt;
use kith_client::{Connection, SubscriptionItem};
use kith_protocol::event::Timestamp;
use kith_protocol::frame::Filter;
use kith_protocol::group::body::Visibility;
use kith_protocol::{Event, GroupId, SecretKey};
use kith_tests::link::{next_text, raw_link};
use kith_tests::node::{eventually, federated_with, group_digest, holds_event};
use kith_tests::{seeded_key, TestGroup, TestNode};
use tokio_tungstenite::tungstenite::Message;

/// How long a catch-up or a live push may take on loopback.
const WAIT_SECS: u64 = 20;

async fn logged_in(node: &TestNode, key: &SecretKey) -> Connection {
    let conn = Connection::connect(&node.url()).await.unwrap();
    conn.login(key, Some(&node.invite(1))).await.unwrap();
    conn
}

/// A node linked with `peer` (it dials `peer`).
async fn follower_of(peer: &TestNode) -> TestNode {
    let url = peer.url();
    TestNode::start_with(|c| federated_with(c, &[url])).await
}

fn ms_ago(ms: u64) -> Timestamp {
    Timestamp(kith_client::now().0 - ms)
}

async fn digest(node: &TestNode, group: GroupId) -> Option<String> {
    group_digest(&node.url(), group).await
}

async fn holds(node: &TestNode, event: &Event) -> bool {
    holds_event(&node.url(), event.id()).await
}

async fn next_event(sub: &mut kith_client::Subscription) -> Event {
    loop {
        match tokio::time::timeout(Duration::from_secs(WAIT_SECS), sub.next()).await {
            Ok(Some(SubscriptionItem::Event(e))) => return e,
            Ok(Some(SubscriptionItem::StoredDone)) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// A public group on A with a few posts: genesis first, then the posts.
async fn public_group_on(
    node: &TestNode,
    key: &SecretKey,
    posts: usize,
) -> (TestGroup, Vec<Event>) {
    let conn = logged_in(node, key).await;
    let mut group = TestGroup::create(key, "garden", Visibility::Public, ms_ago(60_000));
    let mut events = vec![group.genesis.clone()];
    conn.publish(&group.genesis).await.unwrap();
    for i in 0..posts {
        let post = group.post(key, &format!("post {i}"));
        conn.publish(&post).await.unwrap();
        events.push(post);
    }
    conn.close().await;
    (group, events)
}

#[tokio::test]
async fn a_follower_catches_up_a_public_group_with_equal_state() {
    let a = TestNode::start().await;
    let key = seeded_key(61);
    let (group, events) = public_group_on(&a, &key, 5).await;
    let b = follower_of(&a).await;
    assert!(
        eventually(WAIT_SECS, || async { b.event_count().await == 6 }).await,
        "B caught up the group's six events"
    );
    for event in &events {
        assert!(holds(&b, event).await, "B holds {}", event.id());
    }
    let on_a = digest(&a, group.id).await.expect("A holds the group");
    assert!(
        eventually(WAIT_SECS, || async {
            digest(&b, group.id).await.as_deref() == Some(on_a.as_str())
        })
        .await,
        "the group's state digest is the same on both nodes"
    );
}

#[tokio::test]
async fn a_new_post_reaches_the_follower_live() {
    let a = TestNode::start().await;
    let key = seeded_key(62);
    let (mut group, _) = public_group_on(&a, &key, 1).await;
    let b = follower_of(&a).await;
    assert!(eventually(WAIT_SECS, || async { b.event_count().await == 2 }).await);
    let reader = Connection::connect(&b.url()).await.unwrap();
    let mut sub = reader
        .subscribe(Filter {
            groups: Some(vec![group.id]),
            ..Filter::default()
        })
        .await
        .unwrap();
    // The stored post (the group's creating event is not "in" the group), then the marker.
    next_event(&mut sub).await;
    match tokio::time::timeout(Duration::from_secs(WAIT_SECS), sub.next()).await {
        Ok(Some(SubscriptionItem::StoredDone)) => {}
        other => panic!("expected the end-of-stored marker, got {other:?}"),
    }
    // Give A's side of the link time to note that B follows the group.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let conn = logged_in(&a, &key).await;
    let live = group.post(&key, "live from A");
    conn.publish(&live).await.unwrap();
    assert_eq!(next_event(&mut sub).await.id(), live.id());
    // A group created on A after the link is up is followed too.
    let (_, more) = public_group_on(&a, &key, 2).await;
    assert!(eventually(WAIT_SECS, || async { b.event_count().await == 6 }).await);
    for event in &more {
        assert!(holds(&b, event).await);
    }
}

#[tokio::test]
async fn events_the_follower_already_holds_are_not_stored_twice() {
    let a = TestNode::start().await;
    let mut b = TestNode::start().await;
    let key = seeded_key(63);
    let (mut group, events) = public_group_on(&a, &key, 3).await;
    // B already holds the genesis and the first post (the author is registered there too).
    let conn = logged_in(&b, &key).await;
    for event in &events[..2] {
        assert!(!conn.publish(event).await.unwrap().duplicate);
    }
    conn.close().await;
    assert_eq!(b.event_count().await, 2);
    let url = a.url();
    b.restart_with(|c| federated_with(c, &[url])).await;
    assert!(eventually(WAIT_SECS, || async { b.event_count().await == 4 }).await);
    // A post of B's own, pushed to A live, is not echoed back into a second copy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let conn = logged_in(&b, &key).await;
    let from_b = group.post(&key, "written on B");
    assert!(!conn.publish(&from_b).await.unwrap().duplicate);
    assert!(eventually(WAIT_SECS, || async { holds(&a, &from_b).await }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.event_count().await, 5);
    assert_eq!(a.event_count().await, 5);
    assert_eq!(digest(&a, group.id).await, digest(&b, group.id).await);
}

#[tokio::test]
async fn a_private_group_never_reaches_the_follower() {
    let a = TestNode::start().await;
    let key = seeded_key(64);
    let conn = logged_in(&a, &key).await;
    let mut private = TestGroup::create(&key, "quiet", Visibility::Private, ms_ago(60_000));
    conn.publish(&private.genesis).await.unwrap();
    let hidden = private.post(&key, "members only");
    conn.publish(&hidden).await.unwrap();
    let (mut public, _) = public_group_on(&a, &key, 1).await;

    let b = follower_of(&a).await;
    assert!(eventually(WAIT_SECS, || async { b.event_count().await == 2 }).await);
    let reader = Connection::connect(&b.url()).await.unwrap();
    let mut sub = reader.subscribe(Filter::default()).await.unwrap();
    next_event(&mut sub).await;
    next_event(&mut sub).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // New events in both groups: only the public one arrives.
    let hidden_live = private.post(&key, "still members only");
    conn.publish(&hidden_live).await.unwrap();
    let shown = public.post(&key, "for everyone");
    conn.publish(&shown).await.unwrap();
    assert_eq!(next_event(&mut sub).await.id(), shown.id());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.event_count().await, 3);
    for event in [&private.genesis, &hidden, &hidden_live] {
        assert!(!holds(&b, event).await);
    }
    assert!(digest(&b, private.id).await.is_none());
}

/// A binary link `event` frame (type 5) carrying `bytes`, with no queue sequence number.
fn event_frame(bytes: &[u8]) -> Vec<u8> {
    let mut frame = vec![5u8];
    frame.extend_from_slice(&0u64.to_be_bytes());
    frame.extend_from_slice(bytes);
    frame
}

#[tokio::test]
async fn a_tampered_event_from_a_peer_is_refused_and_not_stored() {
    let b = TestNode::start().await;
    let key = seeded_key(65);
    let (mut group, _) = public_group_on(&b, &key, 1).await;
    let good = group.post(&key, "an honest post");
    let mut bytes = good.encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // the body no longer matches its hash
    let mut ws = raw_link(&b.url(), &SecretKey::generate(&mut rand::rngs::OsRng)).await;
    ws.send(Message::Binary(event_frame(&bytes).into()))
        .await
        .unwrap();
    let refusal = loop {
        let text = next_text(&mut ws).await;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if value["type"] == "fed_error" {
            break value;
        }
    };
    assert_ne!(refusal["code"], "bad_frame", "{refusal}");
    // Unknown frames are refused too, and the link stays up.
    ws.send(Message::Text(r#"{"type":"fed_nonsense"}"#.into()))
        .await
        .unwrap();
    let refusal = loop {
        let text = next_text(&mut ws).await;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if value["type"] == "fed_error" {
            break value;
        }
    };
    assert_eq!(refusal["code"], "bad_frame");
    assert!(!holds(&b, &good).await);
    assert_eq!(b.event_count().await, 2);
    let metrics = kith_tests::node::get_text(&b.url(), "/metrics").await;
    assert!(
        metrics.contains("kith_rejections_total{code=\"federation_bad_frame\"} 2"),
        "{metrics}"
    );
    // The untampered event over the same link is taken: the author need not be registered.
    let stranger = seeded_key(66);
    let mut other = TestGroup::create(&stranger, "elsewhere", Visibility::Public, ms_ago(1000));
    let post = other.post(&stranger, "from another node");
    for event in [&other.genesis, &post] {
        ws.send(Message::Binary(event_frame(&event.encode()).into()))
            .await
            .unwrap();
    }
    assert!(eventually(WAIT_SECS, || async { holds(&b, &post).await }).await);
}

#[tokio::test]
async fn a_restarted_follower_catches_up_what_it_missed() {
    let a = TestNode::start().await;
    let key = seeded_key(67);
    let (mut group, _) = public_group_on(&a, &key, 2).await;
    let mut b = follower_of(&a).await;
    assert!(eventually(WAIT_SECS, || async { b.event_count().await == 3 }).await);
    b.stop().await;
    let conn = logged_in(&a, &key).await;
    let mut missed = Vec::new();
    for i in 0..4 {
        let post = group.post(&key, &format!("while B was down {i}"));
        conn.publish(&post).await.unwrap();
        missed.push(post);
    }
    b.resume().await;
    assert!(eventually(WAIT_SECS, || async { b.event_count().await == 7 }).await);
    for event in &missed {
        assert!(holds(&b, event).await);
    }
    assert_eq!(digest(&a, group.id).await, digest(&b, group.id).await);
}
