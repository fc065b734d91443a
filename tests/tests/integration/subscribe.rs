//! Publishing and subscribing with the client library: stored, then the marker, then live.

use std::time::Duration;

use kith_client::{Connection, SubscriptionItem};
use kith_protocol::event::Timestamp;
use kith_protocol::frame::Filter;
use kith_protocol::group::body::Visibility;
use kith_protocol::Event;
use kith_tests::{post, seeded_key, TestGroup, TestNode};

async fn logged_in(node: &TestNode, n: u8) -> (Connection, kith_protocol::SecretKey) {
    let key = seeded_key(n);
    let conn = Connection::connect(&node.url()).await.unwrap();
    conn.login(&key, Some(&node.invite(1))).await.unwrap();
    (conn, key)
}

async fn next_event(sub: &mut kith_client::Subscription) -> Event {
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(SubscriptionItem::Event(e))) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn expect_stored_done(sub: &mut kith_client::Subscription) {
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(SubscriptionItem::StoredDone)) => {}
        other => panic!("expected the end-of-stored marker, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_is_idempotent_and_readable_by_id() {
    let node = TestNode::start().await;
    let (conn, key) = logged_in(&node, 1).await;
    let event = post(&key, "soup on thursday", None);
    let first = conn.publish(&event).await.unwrap();
    assert_eq!(first.event_id, event.id());
    assert!(!first.duplicate);
    let second = conn.publish(&event).await.unwrap();
    assert!(second.duplicate);
    let (status, body) = node.get_json(&format!("/events/{}", event.id())).await;
    assert_eq!(status, 200);
    assert_eq!(body["body"]["text"], "soup on thursday");
    assert_eq!(body["author"], key.public_key().to_string());
    let (_, health) = node.get_json("/health").await;
    assert_eq!(health["events"], 1);
}

#[tokio::test]
async fn stored_then_marker_then_live() {
    let node = TestNode::start().await;
    let (writer, key) = logged_in(&node, 2).await;
    let old = post(&key, "stored one", None);
    writer.publish(&old).await.unwrap();

    let reader = Connection::connect(&node.url()).await.unwrap();
    let mut sub = reader.subscribe(Filter::default()).await.unwrap();
    assert_eq!(next_event(&mut sub).await.id(), old.id());
    expect_stored_done(&mut sub).await;

    let live = post(&key, "live one", None);
    writer.publish(&live).await.unwrap();
    assert_eq!(next_event(&mut sub).await.id(), live.id());
}

#[tokio::test]
async fn filters_select_by_group_author_kind_time_and_limit() {
    let node = TestNode::start().await;
    let (conn, alice) = logged_in(&node, 3).await;
    let (conn_b, bob) = logged_in(&node, 4).await;
    let base = kith_client::now().0 - 60_000;
    let mut garden_group =
        TestGroup::create(&alice, "garden", Visibility::Public, Timestamp(base - 1000));
    let mut kitchen_group =
        TestGroup::create(&bob, "kitchen", Visibility::Public, Timestamp(base - 1000));
    conn.publish(&garden_group.genesis).await.unwrap();
    conn_b.publish(&kitchen_group.genesis).await.unwrap();
    let (garden, kitchen) = (garden_group.id, kitchen_group.id);
    let mut in_garden = Vec::new();
    for i in 0..5u64 {
        let e = garden_group.post_at(&alice, &format!("garden {i}"), Timestamp(base + i * 1000));
        conn.publish(&e).await.unwrap();
        in_garden.push(e);
    }
    let kitchen_post = kitchen_group.post_at(&bob, "kitchen", Timestamp(base + 500));
    conn_b.publish(&kitchen_post).await.unwrap();

    let reader = Connection::connect(&node.url()).await.unwrap();
    let stored = |filter: Filter| {
        let reader = reader.clone();
        async move {
            let mut sub = reader.subscribe(filter).await.unwrap();
            let mut ids = Vec::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                    Ok(Some(SubscriptionItem::Event(e))) => ids.push(e.id()),
                    Ok(Some(SubscriptionItem::StoredDone)) => return ids,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    };
    let garden_ids: Vec<_> = in_garden.iter().map(Event::id).collect();
    let by_group = stored(Filter {
        groups: Some(vec![garden]),
        ..Filter::default()
    })
    .await;
    assert_eq!(by_group, garden_ids, "oldest first, all five");
    let by_author = stored(Filter {
        authors: Some(vec![bob.public_key()]),
        kinds: Some(vec![kith_protocol::Kind::POST]),
        ..Filter::default()
    })
    .await;
    assert_eq!(by_author, vec![kitchen_post.id()]);
    let limited = stored(Filter {
        groups: Some(vec![garden]),
        limit: Some(2),
        ..Filter::default()
    })
    .await;
    assert_eq!(
        limited,
        garden_ids[3..].to_vec(),
        "the newest two, oldest first"
    );
    let window = stored(Filter {
        groups: Some(vec![garden]),
        since: Some(Timestamp(base + 1000)),
        until: Some(Timestamp(base + 3000)),
        ..Filter::default()
    })
    .await;
    assert_eq!(window, garden_ids[1..4].to_vec());
    let none = stored(Filter {
        kinds: Some(vec![kith_protocol::Kind(999)]),
        ..Filter::default()
    })
    .await;
    assert!(none.is_empty());
    let both = stored(Filter {
        groups: Some(vec![garden, kitchen]),
        ..Filter::default()
    })
    .await;
    assert_eq!(both.len(), 6);
}

#[tokio::test]
async fn several_subscriptions_and_unsubscribe() {
    let node = TestNode::start().await;
    let (writer, key) = logged_in(&node, 5).await;
    let mut group_a = TestGroup::create(&key, "a", Visibility::Public, kith_client::now());
    let mut group_b = TestGroup::create(&key, "b", Visibility::Public, kith_client::now());
    writer.publish(&group_a.genesis).await.unwrap();
    writer.publish(&group_b.genesis).await.unwrap();
    let (a, b) = (group_a.id, group_b.id);
    let reader = Connection::connect(&node.url()).await.unwrap();
    let mut sub_a = reader
        .subscribe(Filter {
            groups: Some(vec![a]),
            ..Filter::default()
        })
        .await
        .unwrap();
    let mut sub_b = reader
        .subscribe(Filter {
            groups: Some(vec![b]),
            ..Filter::default()
        })
        .await
        .unwrap();
    expect_stored_done(&mut sub_a).await;
    expect_stored_done(&mut sub_b).await;

    let to_a = group_a.post(&key, "to a");
    let to_b = group_b.post(&key, "to b");
    writer.publish(&to_a).await.unwrap();
    writer.publish(&to_b).await.unwrap();
    assert_eq!(next_event(&mut sub_a).await.id(), to_a.id());
    assert_eq!(next_event(&mut sub_b).await.id(), to_b.id());

    sub_a.unsubscribe().await;
    writer
        .publish(&group_a.post(&key, "to a again"))
        .await
        .unwrap();
    let to_b2 = group_b.post(&key, "to b again");
    writer.publish(&to_b2).await.unwrap();
    assert_eq!(next_event(&mut sub_b).await.id(), to_b2.id());
}

#[tokio::test]
async fn live_events_are_neither_missed_nor_doubled_around_the_marker() {
    // Publish continuously while subscribing: every event appears exactly once.
    let node = TestNode::start_with(kith_tests::node::without_rate_limits).await;
    let (writer, key) = logged_in(&node, 6).await;
    let mut chain = TestGroup::create(&key, "busy", Visibility::Public, kith_client::now());
    writer.publish(&chain.genesis).await.unwrap();
    let group = chain.id;
    let events: Vec<Event> = (0..200)
        .map(|i| chain.post(&key, &format!("n{i}")))
        .collect();
    let publishing = {
        let events = events.clone();
        tokio::spawn(async move {
            for e in &events {
                writer.publish(e).await.unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reader = Connection::connect(&node.url()).await.unwrap();
    let mut sub = reader
        .subscribe(Filter {
            groups: Some(vec![group]),
            ..Filter::default()
        })
        .await
        .unwrap();
    publishing.await.unwrap();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < events.len() {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(SubscriptionItem::Event(e))) => {
                assert!(seen.insert(e.id()), "event delivered twice")
            }
            Ok(Some(SubscriptionItem::StoredDone)) => {}
            other => panic!(
                "missing events: have {} of {}; got {other:?}",
                seen.len(),
                events.len()
            ),
        }
    }
}
