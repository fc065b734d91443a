//! The plain HTTP routes.

use kith_client::Connection;
use kith_protocol::event::{GroupId, Timestamp};
use kith_protocol::group::body::Visibility;
use kith_tests::{post, seeded_key, TestGroup, TestNode};

#[tokio::test]
async fn health_metrics_node_info_and_reads() {
    let node = TestNode::start().await;
    let key = seeded_key(1);
    let conn = Connection::connect(&node.url()).await.unwrap();
    conn.login(&key, Some(&node.invite(1))).await.unwrap();
    // Distinct times: events are listed by (created_at, id).
    let now = kith_client::now();
    let mut chain = TestGroup::create(&key, "street", Visibility::Public, Timestamp(now.0 - 2));
    conn.publish(&chain.genesis).await.unwrap();
    let group = chain.id;
    let first = chain.post_at(&key, "first", Timestamp(now.0 - 1));
    let second = chain.post_at(&key, "second", now);
    conn.publish(&first).await.unwrap();
    conn.publish(&second).await.unwrap();

    let (status, health) = node.get_json("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["events"], 3, "the group's creation and two posts");

    let (_, info) = node.get_json("/.well-known/kith").await;
    assert_eq!(info["node"], node.server_ref().node_key().to_string());
    assert_eq!(info["protocol_versions"], serde_json::json!([1]));

    let (status, listed) = node
        .get_json(&format!("/groups/{group}/events?limit=10"))
        .await;
    assert_eq!(status, 200);
    let texts: Vec<_> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"]["text"].clone())
        .collect();
    assert_eq!(texts, vec!["first", "second"]);

    let (status, missing) = node
        .get_json(&format!("/events/{}", GroupId::from_bytes([0; 32])))
        .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "not_found");
    let (status, bad) = node.get_json("/events/nothex").await;
    assert_eq!(status, 400);
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not an event id"));

    let metrics = kith_tests::node::get_text(&node.url(), "/metrics").await;
    for name in [
        "kith_events_stored_total 3",
        "kith_connections_open 1",
        "kith_store_flushes_total",
        "kith_events 3",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn events_survive_a_clean_restart() {
    let mut node = TestNode::start().await;
    let key = seeded_key(2);
    let event = post(&key, "kept", None);
    {
        let conn = Connection::connect(&node.url()).await.unwrap();
        conn.login(&key, Some(&node.invite(1))).await.unwrap();
        conn.publish(&event).await.unwrap();
        conn.close().await;
    }
    node.restart().await;
    let (status, body) = node.get_json(&format!("/events/{}", event.id())).await;
    assert_eq!(status, 200);
    assert_eq!(body["body"]["text"], "kept");
    // The key stays registered across restarts.
    let conn = Connection::connect(&node.url()).await.unwrap();
    conn.login(&key, None).await.unwrap();
}
