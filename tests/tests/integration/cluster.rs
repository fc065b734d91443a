//! Real `kithd` processes linked through cuttable proxies: a public group crosses a link,
//! a post made during a partition stays on its side and crosses once the link heals, and a
//! killed node restarted on its port catches up what it missed.

use kith_protocol::group::body::Visibility;
use kith_protocol::Timestamp;
use kith_tests::node::eventually;
use kith_tests::{seeded_key, Cluster, TestGroup};

/// How long convergence may take: a relink waits for the dialer's backoff.
const WAIT_SECS: u64 = 10;

#[tokio::test]
async fn a_post_made_during_a_partition_crosses_when_it_heals() {
    let cluster = Cluster::start(2, "").await;
    let key = seeded_key(70);
    let conn = cluster.logged_in(0, &key).await;
    let at = Timestamp(kith_client::now().0 - 60_000);
    let mut group = TestGroup::create(&key, "meadow", Visibility::Public, at);
    conn.publish(&group.genesis).await.unwrap();
    let before = group.post(&key, "before the cut");
    conn.publish(&before).await.unwrap();
    assert!(
        cluster.converged(group.id, &[0, 1], WAIT_SECS).await,
        "node 1 caught up the group"
    );
    assert!(cluster.holds(1, before.id()).await);
    let (out, back) = cluster.proxy(1, 0).bytes_forwarded();
    let (out2, back2) = cluster.proxy(0, 1).bytes_forwarded();
    assert!(
        out + back + out2 + back2 > 0,
        "the nodes linked through the proxies"
    );

    cluster.partition(0, 1);
    let during = group.post(&key, "during the cut");
    conn.publish(&during).await.unwrap();
    assert!(cluster.holds(0, during.id()).await);
    assert!(
        !eventually(2, || cluster.holds(1, during.id())).await,
        "nothing crosses a partition"
    );
    assert_ne!(
        cluster.digest(0, group.id).await,
        cluster.digest(1, group.id).await
    );

    cluster.heal(0, 1);
    assert!(
        cluster.converged(group.id, &[0, 1], WAIT_SECS).await,
        "node 1 caught up after the heal"
    );
    assert!(cluster.holds(1, during.id()).await);
    assert_eq!(cluster.event_ids(1, group.id).await.len(), 2);
    conn.close().await;
}

#[tokio::test]
async fn a_killed_node_comes_back_on_its_port_and_catches_up() {
    let mut cluster = Cluster::start(3, "").await;
    let key = seeded_key(71);
    let at = Timestamp(kith_client::now().0 - 60_000);
    let mut group = TestGroup::create(&key, "orchard", Visibility::Public, at);
    let conn = cluster.logged_in(0, &key).await;
    conn.publish(&group.genesis).await.unwrap();
    assert!(cluster.converged(group.id, &[0, 1, 2], WAIT_SECS).await);

    cluster.kill(1).await;
    assert!(
        cluster.digest(1, group.id).await.is_none(),
        "node 1 is down"
    );
    let missed = group.post(&key, "while node 1 was down");
    conn.publish(&missed).await.unwrap();
    assert!(cluster.converged(group.id, &[0, 2], WAIT_SECS).await);
    let url = cluster.url(1);
    cluster.restart(1).await;
    assert_eq!(cluster.url(1), url, "same port");
    assert!(cluster.converged(group.id, &[0, 1, 2], WAIT_SECS).await);

    // Node 2, cut off from both others, misses a post until it is let back in.
    cluster.isolate(2);
    let alone = group.post(&key, "while node 2 was cut off");
    conn.publish(&alone).await.unwrap();
    assert!(cluster.converged(group.id, &[0, 1], WAIT_SECS).await);
    assert!(!cluster.holds(2, alone.id()).await);
    cluster.heal_all();
    assert!(cluster.converged(group.id, &[0, 1, 2], WAIT_SECS).await);
    conn.close().await;

    assert!(cluster.stop(2).await.success(), "a clean stop");
    cluster.delete(2);
    assert!(cluster.nodes[2].dir.is_none());
}
