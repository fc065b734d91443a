//! Federation scenarios on real `kithd` processes ([`Cluster`]: nodes linked pairwise through
//! cuttable proxies): a group's events reach the nodes hosting its members live, after a
//! clean stop and after a kill -9; a private group never reaches a node hosting none of its
//! members; a group outlives the node it was founded on.
//!
//! Members name their home node in their joins; a join naming another node as home is
//! published on a node holding the group without an account there. Private groups are read
//! only by members over a logged-in WebSocket, so their convergence is checked through each
//! node's answer to a member ([`member_view`]); public groups through the HTTP helpers of
//! [`Cluster`].
//!
//! **`KITH_HEAVY=1`** runs heavier variants (more events per scenario here, more seeds and
//! rounds in `fed_partitions`); by default each test stays well under 30 s.

use std::time::Duration;

use kith_client::Connection;
use kith_protocol::group::body::Visibility;
use kith_protocol::{GroupId, PublicKey};
use kith_tests::fed::*;
use kith_tests::node::{eventually, get_json};
use kith_tests::{seeded_key, Cluster, TestGroup};

/// Whether the member key `member` is a member of `group` in the node's account to `conn`.
async fn is_member(conn: &Connection, group: GroupId, member: &PublicKey) -> bool {
    let Ok(state) = conn.group_state(group).await else {
        return false;
    };
    state["state"]["members"]
        .as_object()
        .is_some_and(|m| m.contains_key(&member.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_on_one_node_reaches_the_others_live_and_after_restart() {
    let mut cluster = Cluster::start(3, "").await;
    let all = [0, 1, 2];
    let founder = seeded_key(201);
    let (m1, m2) = (seeded_key(202), seeded_key(203));
    let on0 = cluster.logged_in(0, &founder).await;
    let mut group = TestGroup::create_at_home(
        &founder,
        "bakery",
        Visibility::Public,
        kith_client::now(),
        Some(home(&cluster, 0).await),
    );
    publish(&on0, &group.genesis, "the group's creation").await;
    let invite = group.invite(&founder, 2);
    publish(&on0, &invite, "the invitation").await;

    // Nodes 1 and 2 follow the public group; each member joins on their own node, naming it
    // as home, once it holds what the join cites.
    for i in [1, 2] {
        assert!(
            eventually(CROSS_SECS, || cluster.holds(i, invite.id())).await,
            "node {i} received the invitation"
        );
    }
    let on1 = cluster.logged_in(1, &m1).await;
    let join1 = group.join(&m1, &invite, Some(home(&cluster, 1).await));
    publish(&on1, &join1, "m1's join on node 1").await;
    assert!(
        eventually(CROSS_SECS, || cluster.holds(2, join1.id())).await,
        "node 2 received m1's join from node 1"
    );
    let on2 = cluster.logged_in(2, &m2).await;
    let join2 = group.join(&m2, &invite, Some(home(&cluster, 2).await));
    publish(&on2, &join2, "m2's join on node 2").await;
    assert_converged(&cluster, group.id, &all, CONVERGE_SECS, "after the joins").await;

    // Live: a post on node 0 is served by nodes 1 and 2.
    let live = group.post(&founder, "fresh bread at six");
    publish(&on0, &live, "a live post").await;
    for i in [1, 2] {
        assert!(
            eventually(CROSS_SECS, || cluster.holds(i, live.id())).await,
            "node {i} serves the live post"
        );
    }
    assert_converged(&cluster, group.id, &all, CONVERGE_SECS, "after a live post").await;

    // Node 2 stops cleanly; posts on nodes 0 and 1 (concurrent: each cites what its node
    // holds) reach it once it is back.
    drop(on2);
    assert!(cluster.stop(2).await.success(), "node 2 stops cleanly");
    let mut chain1 = group.fork();
    let away = if heavy() { 20 } else { 3 };
    let mut missed = Vec::new();
    for n in 0..away {
        let from0 = group.post(&founder, &format!("while node 2 is down, from 0 ({n})"));
        publish(&on0, &from0, "a post on node 0 while node 2 is down").await;
        let from1 = chain1.post(&m1, &format!("while node 2 is down, from 1 ({n})"));
        publish(&on1, &from1, "a post on node 1 while node 2 is down").await;
        missed.extend([from0.id(), from1.id()]);
    }
    assert_converged(
        &cluster,
        group.id,
        &[0, 1],
        CONVERGE_SECS,
        "while node 2 is down",
    )
    .await;
    cluster.restart(2).await;
    assert_converged(
        &cluster,
        group.id,
        &all,
        CONVERGE_SECS,
        "after node 2 restarted",
    )
    .await;
    for id in &missed {
        assert!(cluster.holds(2, *id).await, "node 2 caught up {id}");
    }

    // Node 1 is killed (kill -9) in the middle of a stream of posts on node 0, right after
    // a post of its own was acknowledged.
    let stream_len = if heavy() { 200 } else { 20 };
    let streamer = {
        let conn = on0.clone();
        let mut chain = group.fork();
        let founder = founder.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..stream_len {
                let post = chain.post(&founder, &format!("stream {n}"));
                publish(&conn, &post, "a streamed post on node 0").await;
                ids.push(post.id());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ids
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last_words = chain1.post(&m1, "just before the crash");
    publish(&on1, &last_words, "m1's post on node 1 before the kill").await;
    cluster.kill(1).await;
    drop(on1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.restart(1).await;
    let streamed = streamer.await.expect("the stream ran");
    assert_converged(
        &cluster,
        group.id,
        &all,
        CONVERGE_SECS,
        "after node 1 was killed and restarted",
    )
    .await;
    for id in streamed.iter().chain([&last_words.id()]) {
        for i in all {
            assert!(cluster.holds(i, *id).await, "node {i} holds {id}");
        }
    }
    on0.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_group_never_reaches_a_node_hosting_none_of_its_members() {
    let cluster = Cluster::start(3, "").await;
    let founder = seeded_key(211);
    let member = seeded_key(212);
    // Node 2 is linked with both others before anything is written (and stays so).
    let node2_linked = || async { metric(&cluster, 2, "kith_federation_links_open").await >= 2 };
    assert!(
        eventually(CROSS_SECS, node2_linked).await,
        "node 2 links with nodes 0 and 1"
    );
    let on0 = cluster.logged_in(0, &founder).await;
    let mut group = TestGroup::create_at_home(
        &founder,
        "tenants",
        Visibility::Private,
        kith_client::now(),
        Some(home(&cluster, 0).await),
    );
    publish(&on0, &group.genesis, "the group's creation").await;
    let invite = group.invite(&founder, 1);
    publish(&on0, &invite, "the invitation").await;
    // The member lives on node 1 and joins through node 0 without an account there.
    let join = group.join(&member, &invite, Some(home(&cluster, 1).await));
    let anonymous = Connection::connect(&cluster.url(0)).await.unwrap();
    publish(&anonymous, &join, "a join naming node 1, on node 0").await;
    anonymous.close().await;
    let on1 = cluster.logged_in(1, &member).await;
    assert!(
        eventually(CROSS_SECS, || holds_as_member(&on1, join.id())).await,
        "node 1, the member's home, received the group"
    );

    // Many events from both sides, written concurrently: posts, profile changes, and an
    // invitation nobody uses yet.
    let rounds = if heavy() { 100 } else { 10 };
    let mut chain1 = group.fork();
    for n in 0..rounds {
        let a = group.post(&founder, &format!("from node 0 ({n})"));
        publish(&on0, &a, "a post on node 0").await;
        let b = chain1.post(&member, &format!("from node 1 ({n})"));
        publish(&on1, &b, "a post on node 1").await;
    }
    let renamed = group.profile(&founder, "Ada, organiser");
    publish(&on0, &renamed, "the founder's profile").await;
    let renamed = chain1.profile(&member, "Bo");
    publish(&on1, &renamed, "the member's profile").await;
    let spare = group.invite(&founder, 3);
    publish(&on0, &spare, "a second invitation").await;
    assert_members_converge(
        &[&on0, &on1],
        group.id,
        CONVERGE_SECS,
        "nodes 0 and 1, both hosting members",
    )
    .await;
    let view = member_view(&on0, group.id).await.expect("node 0's view");
    assert_eq!(
        view.ids.len(),
        2 * rounds + 5,
        "every event is served: the invitations, the join, the posts, the profiles"
    );

    // Node 2 is linked with both and hosts nobody in the group: it got nothing of it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(node2_linked().await, "node 2 is still linked with both");
    assert_eq!(
        stored_events(&cluster, 2).await,
        0,
        "node 2 stores none of the group's events"
    );
    assert_eq!(
        metric(&cluster, 2, "kith_federation_events_received_total").await,
        0,
        "no event of the group was even sent to node 2"
    );
    let (status, _) = get_json(&cluster.url(2), &format!("/groups/{}/state", group.id)).await;
    assert_eq!(status, 404, "node 2 does not know the group at all");

    // Node 2 is linked, though: a public group from node 0 reaches it, and still nothing of
    // the private one (which was queued, if at all, before the public one).
    let mut control = TestGroup::create(
        &founder,
        "notice board",
        Visibility::Public,
        kith_client::now(),
    );
    publish(&on0, &control.genesis, "a public group's creation").await;
    let notice = control.post(&founder, "for everyone");
    publish(&on0, &notice, "a public post").await;
    assert!(
        eventually(CROSS_SECS, || cluster.holds(2, notice.id())).await,
        "node 2 is linked: it follows the public group"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stored_events(&cluster, 2).await,
        2,
        "node 2 stores the public group's two events and nothing else"
    );
    let (status, _) = get_json(&cluster.url(2), &format!("/groups/{}/state", group.id)).await;
    assert_eq!(status, 404, "node 2 still does not know the private group");
    on0.close().await;
    on1.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_group_outlives_its_founders_node() {
    let mut cluster = Cluster::start(3, "").await;
    let founder = seeded_key(221);
    let (m1, m2, newcomer) = (seeded_key(222), seeded_key(223), seeded_key(224));
    let on0 = cluster.logged_in(0, &founder).await;
    let mut group = TestGroup::create_at_home(
        &founder,
        "allotment",
        Visibility::Private,
        kith_client::now(),
        Some(home(&cluster, 0).await),
    );
    publish(&on0, &group.genesis, "the group's creation").await;
    let invite = group.invite(&founder, 2);
    publish(&on0, &invite, "the invitation").await;
    // Both members live elsewhere and join through node 0, where they have no account.
    let anonymous = Connection::connect(&cluster.url(0)).await.unwrap();
    let join1 = group.join(&m1, &invite, Some(home(&cluster, 1).await));
    publish(&anonymous, &join1, "m1's join naming node 1, on node 0").await;
    let join2 = group.join(&m2, &invite, Some(home(&cluster, 2).await));
    publish(&anonymous, &join2, "m2's join naming node 2, on node 0").await;
    anonymous.close().await;
    let hello = group.post(&founder, "welcome, both of you");
    publish(&on0, &hello, "the founder's welcome").await;
    let on1 = cluster.logged_in(1, &m1).await;
    let on2 = cluster.logged_in(2, &m2).await;
    assert_members_converge(
        &[&on0, &on1, &on2],
        group.id,
        CONVERGE_SECS,
        "before node 0 is deleted",
    )
    .await;

    // Node 0 is gone for good.
    on0.close().await;
    cluster.delete(0);

    // A post of m1's on node 1 reaches node 2 over their own link.
    let from1 = group.post(&m1, "still here on node 1");
    publish(&on1, &from1, "m1's post on node 1").await;
    assert!(
        eventually(CROSS_SECS, || holds_as_member(&on2, from1.id())).await,
        "node 2 received m1's post without node 0"
    );

    // m2 invites a newcomer who has an account only on node 2; node 1 learns of them.
    let second = group.invite(&m2, 1);
    publish(&on2, &second, "m2's invitation on node 2").await;
    let on2_newcomer = cluster.logged_in(2, &newcomer).await;
    let join = group.join(&newcomer, &second, Some(home(&cluster, 2).await));
    publish(&on2_newcomer, &join, "the newcomer's join on node 2").await;
    let newcomer_key = newcomer.public_key();
    assert!(
        eventually(CROSS_SECS, || is_member(&on1, group.id, &newcomer_key)).await,
        "node 1 sees the newcomer as a member"
    );
    let greeting = group.post(&newcomer, "hello from the newcomer");
    publish(&on2_newcomer, &greeting, "the newcomer's post").await;
    assert!(
        eventually(CROSS_SECS, || holds_as_member(&on1, greeting.id())).await,
        "node 1 received the newcomer's post"
    );
    assert_members_converge(
        &[&on1, &on2, &on2_newcomer],
        group.id,
        CONVERGE_SECS,
        "nodes 1 and 2 after node 0 was deleted",
    )
    .await;
}
