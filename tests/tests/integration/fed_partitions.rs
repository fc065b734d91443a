//! Network partitions between real `kithd` processes ([`Cluster`]): whatever each side
//! writes while cut off (posts, profile changes, whole decisions), once the links heal every
//! node holds the same events and computes the same state.
//!
//! Private groups are read by members only, so convergence is checked through each node's
//! answer to a logged-in member (digest, heads, event count and the ids it serves); public
//! groups through HTTP as well.
//!
//! `random_partitions_converge` is seeded (an even seed runs a public group, an odd one a
//! private group): a failure names its seed, and `KITH_FED_SEED=<seed>` replays that seed
//! alone (the same cuts, writers and pauses; the timing of the links themselves is not
//! replayed).
//!
//! **`KITH_HEAVY=1`** runs the heavier variant: 10 seeds × 15 rounds instead of two seeds
//! (one public, one private) × 4 rounds (see `kith_tests::fed::heavy`); by default each test
//! stays well under 30 s.

use std::collections::BTreeSet;
use std::time::Duration;

use kith_client::Connection;
use kith_protocol::group as groups;
use kith_protocol::group::body::{self, Action, StanceKind, Verdict, Visibility};
use kith_protocol::kind::{Kind, PostBody};
use kith_protocol::{EventId, GroupId, PublicKey, SecretKey, Timestamp};
use kith_tests::node::eventually;
use kith_tests::{seeded_key, Cluster, TestGroup};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use kith_tests::fed::{
    assert_converged, assert_members_converge, heavy, holds_as_member, home, member_view, publish,
    CONVERGE_SECS, CROSS_SECS,
};

/// How long a proposal stays open: short, so a decision closes within the partition.
const OPEN_MS: u64 = 3_000;

/// `ms` milliseconds from now.
fn in_ms(ms: u64) -> Timestamp {
    Timestamp(kith_client::now().0 + ms)
}

/// Sleeps until the clock has passed `at`.
async fn wait_past(at: Timestamp) {
    let now = kith_client::now().0;
    if now <= at.0 {
        tokio::time::sleep(Duration::from_millis(at.0 - now + 100)).await;
    }
}

/// A member's proposal record in a node's account of the group (JSON).
async fn proposal(conn: &Connection, group: GroupId, id: EventId) -> serde_json::Value {
    let state = conn
        .group_state(group)
        .await
        .unwrap_or_else(|e| panic!("{} gives the group's state: {e}", conn.url()));
    state["state"]["proposals"][id.to_string()].clone()
}

/// The display name a node shows for `member`.
async fn display_name(conn: &Connection, group: GroupId, member: &PublicKey) -> Option<String> {
    let state = conn.group_state(group).await.ok()?;
    state["state"]["members"][member.to_string()]["me"]["name"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_partition_both_sides_hold_the_same_events_and_state() {
    // Node 0 on one side; nodes 1 and 2 on the other, still linked with each other.
    let cluster = Cluster::start(3, "").await;
    let (ada, ari) = (seeded_key(231), seeded_key(232));
    let (bo, cy) = (seeded_key(233), seeded_key(234));
    let ada0 = cluster.logged_in(0, &ada).await;
    let ari0 = cluster.logged_in(0, &ari).await;
    let mut group = TestGroup::create_at_home(
        &ada,
        "co-op",
        Visibility::Private,
        kith_client::now(),
        Some(home(&cluster, 0).await),
    );
    publish(&ada0, &group.genesis, "the group's creation").await;
    let invite = group.invite(&ada, 3);
    publish(&ada0, &invite, "the invitation").await;
    let join = group.join(&ari, &invite, Some(home(&cluster, 0).await));
    publish(&ari0, &join, "ari's join on node 0").await;
    let anonymous = Connection::connect(&cluster.url(0)).await.unwrap();
    let join = group.join(&bo, &invite, Some(home(&cluster, 1).await));
    publish(&anonymous, &join, "bo's join naming node 1").await;
    let join = group.join(&cy, &invite, Some(home(&cluster, 2).await));
    publish(&anonymous, &join, "cy's join naming node 2").await;
    anonymous.close().await;
    let bo1 = cluster.logged_in(1, &bo).await;
    let cy2 = cluster.logged_in(2, &cy).await;
    // A proposal everyone sees before the cut; it will be decided on the far side.
    let p0 = group.propose(
        &ada,
        "Meet on Tuesdays",
        Action::Decide,
        in_ms(OPEN_MS + 2_000),
    );
    publish(&ada0, &p0, "the first proposal").await;
    let everyone = [&ada0, &bo1, &cy2];
    assert_members_converge(&everyone, group.id, CONVERGE_SECS, "before the partition").await;
    let before = member_view(&ada0, group.id).await.expect("node 0's view");

    cluster.isolate(0);
    let mut side_b = group.fork(); // written on node 1
    let mut side_c = group.fork(); // written on node 2
    let mut written: BTreeSet<EventId> = before.ids.clone();

    // Node 0's side: a post, a profile change, and a whole decision (proposal, stances,
    // outcome); ari also disagrees with the first proposal, unseen by the other side.
    let post = group.post(&ada, "we are cut off, carrying on");
    publish(&ada0, &post, "a post on node 0").await;
    written.insert(post.id());
    let profile = group.profile(&ada, "Ada (cut off)");
    publish(&ada0, &profile, "ada's profile on node 0").await;
    written.insert(profile.id());
    let p1 = group.propose(&ari, "Buy a chest freezer", Action::Decide, in_ms(OPEN_MS));
    publish(&ari0, &p1, "the second proposal, on node 0").await;
    written.insert(p1.id());
    let ada_p1 = group.stance(&ada, p1.id(), StanceKind::Agree);
    publish(&ada0, &ada_p1, "ada's stance on the second proposal").await;
    written.insert(ada_p1.id());
    let ari_p1 = group.stance(&ari, p1.id(), StanceKind::Agree);
    publish(&ari0, &ari_p1, "ari's stance on the second proposal").await;
    written.insert(ari_p1.id());
    let ari_p0 = group.stance(&ari, p0.id(), StanceKind::Disagree);
    publish(&ari0, &ari_p0, "ari's stance on the first proposal").await;
    written.insert(ari_p0.id());

    // The other side: posts and a profile change on node 1, a post on node 2, and stances
    // on the first proposal from both.
    let post = side_b.post(&bo, "over here, all fine");
    publish(&bo1, &post, "a post on node 1").await;
    written.insert(post.id());
    let profile = side_b.profile(&bo, "Bo (other side)");
    publish(&bo1, &profile, "bo's profile on node 1").await;
    written.insert(profile.id());
    let bo_p0 = side_b.stance(&bo, p0.id(), StanceKind::Agree);
    publish(&bo1, &bo_p0, "bo's stance on the first proposal").await;
    written.insert(bo_p0.id());
    let post = side_c.post(&cy, "node 2 here");
    publish(&cy2, &post, "a post on node 2").await;
    written.insert(post.id());
    let cy_p0 = side_c.stance(&cy, p0.id(), StanceKind::Agree);
    publish(&cy2, &cy_p0, "cy's stance on the first proposal").await;
    written.insert(cy_p0.id());
    assert!(
        eventually(CROSS_SECS, || holds_as_member(&bo1, cy_p0.id())).await,
        "nodes 1 and 2 are still linked"
    );
    assert!(
        !holds_as_member(&ada0, bo_p0.id()).await && !holds_as_member(&bo1, ari_p0.id()).await,
        "nothing crosses the partition"
    );

    // Both proposals close; each side writes the outcome of one, counting what it saw.
    wait_past(Timestamp(p0.created_at().0 + OPEN_MS + 2_000)).await;
    let outcome_a = group.outcome(
        &ada,
        p1.id(),
        BTreeSet::from([ada_p1.id(), ari_p1.id()]),
        4,
        Verdict::Passed,
    );
    publish(&ada0, &outcome_a, "the second proposal's outcome on node 0").await;
    written.insert(outcome_a.id());
    // Node 1 first merges node 2's events (a post citing both chains), so its outcome can
    // count cy's stance.
    let merge = side_b.event_citing(
        &bo,
        Kind::POST,
        PostBody {
            text: "counting both of us".into(),
        }
        .to_bytes(),
        &[side_b.head(), side_c.head()],
    );
    publish(&bo1, &merge, "a merging post on node 1").await;
    written.insert(merge.id());
    let outcome_b = side_b.outcome(
        &bo,
        p0.id(),
        BTreeSet::from([bo_p0.id(), cy_p0.id()]),
        4,
        Verdict::Passed,
    );
    publish(&bo1, &outcome_b, "the first proposal's outcome on node 1").await;
    written.insert(outcome_b.id());
    let post = group.post(&ari, "decided: a freezer");
    publish(&ari0, &post, "a post after the decision, node 0").await;
    written.insert(post.id());
    let post = side_c.post(&cy, "decided: Tuesdays");
    publish(&cy2, &post, "a post after the decision, node 2").await;
    written.insert(post.id());
    assert_members_converge(
        &[&bo1, &cy2],
        group.id,
        CONVERGE_SECS,
        "nodes 1 and 2 during the partition",
    )
    .await;
    let (cut_a, cut_b) = (
        member_view(&ada0, group.id).await.expect("node 0's view"),
        member_view(&bo1, group.id).await.expect("node 1's view"),
    );
    assert_ne!(cut_a.digest, cut_b.digest, "the sides differ while cut off");

    cluster.heal_all();
    assert_members_converge(&everyone, group.id, CONVERGE_SECS, "after the heal").await;
    for conn in everyone {
        let view = member_view(conn, group.id).await.expect("a view");
        let missing: Vec<&EventId> = written.difference(&view.ids).collect();
        assert!(missing.is_empty(), "{} lacks {missing:?}", conn.url());
        let decided = proposal(conn, group.id, p1.id()).await;
        assert_eq!(
            decided["outcome"]["event"],
            outcome_a.id().to_string(),
            "{}: the second proposal was decided on node 0: {decided}",
            conn.url()
        );
        let decided = proposal(conn, group.id, p0.id()).await;
        assert_eq!(
            decided["outcome"]["event"],
            outcome_b.id().to_string(),
            "{}: the first proposal was decided on node 1: {decided}",
            conn.url()
        );
        assert_eq!(
            display_name(conn, group.id, &ada.public_key())
                .await
                .as_deref(),
            Some("Ada (cut off)"),
            "{}",
            conn.url()
        );
        assert_eq!(
            display_name(conn, group.id, &bo.public_key())
                .await
                .as_deref(),
            Some("Bo (other side)"),
            "{}",
            conn.url()
        );
    }
}

/// The heads of `group` as the node behind `conn` shows them to a member (the events a new
/// one written there should cite).
async fn node_heads(conn: &Connection, group: GroupId, context: &str) -> Vec<EventId> {
    let state = conn
        .group_state(group)
        .await
        .unwrap_or_else(|e| panic!("{context}: {} shows the group: {e}", conn.url()));
    state["heads"]
        .as_array()
        .unwrap_or_else(|| panic!("{context}: the state names its heads: {state}"))
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{context}: a head is an event id: {h}"))
        })
        .collect()
}

/// The first seed: the default run takes it and the next (one public group, one private);
/// heavy runs take the first ten. An even seed runs a public group, an odd one a private
/// group.
const FIRST_SEED: u64 = 0x5EED_0000;
/// How many consecutive rounds a pair may stay cut (partitions stay short, so relinks after
/// a heal wait at most a few seconds of backoff).
const LONGEST_CUT: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_partitions_converge() {
    let rounds = if heavy() { 15 } else { 4 };
    let seeds: Vec<u64> = match std::env::var("KITH_FED_SEED") {
        Ok(text) => vec![text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("KITH_FED_SEED={text} is not a number: {e}"))],
        Err(_) if heavy() => (0..10).map(|n| FIRST_SEED + n).collect(),
        Err(_) => vec![FIRST_SEED, FIRST_SEED + 1],
    };
    for seed in seeds {
        random_run(seed, rounds).await;
    }
}

/// One seeded run: a fresh cluster of 3 and a group (public for an even seed, private for an
/// odd one) with members living on every node, then `rounds` rounds of random cuts and heals
/// with random writers on random nodes, then a full heal.
async fn random_run(seed: u64, rounds: u32) {
    let visibility = if seed % 2 == 0 {
        Visibility::Public
    } else {
        Visibility::Private
    };
    eprintln!(
        "random_partitions_converge: seed {seed}, {visibility:?} group, {rounds} rounds \
         (KITH_FED_SEED={seed} replays it)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let cluster = Cluster::start(3, "").await;
    let all = [0, 1, 2];
    let people: Vec<SecretKey> = (0..4).map(|n| seeded_key(240 + n)).collect();
    let homes = [0, 1, 2, 1];
    // Everyone has an account on every node: any of them may write (and read) anywhere.
    let mut conns: Vec<Vec<Connection>> = Vec::new();
    for person in &people {
        let mut row = Vec::new();
        for i in all {
            row.push(cluster.logged_in(i, person).await);
        }
        conns.push(row);
    }
    let mut group = TestGroup::create_at_home(
        &people[0],
        "street",
        visibility,
        kith_client::now(),
        Some(home(&cluster, 0).await),
    );
    publish(&conns[0][0], &group.genesis, "the group's creation").await;
    let invite = group.invite(&people[0], 3);
    publish(&conns[0][0], &invite, "the invitation").await;
    for p in 1..people.len() {
        let join = group.join(&people[p], &invite, Some(home(&cluster, homes[p]).await));
        publish(&conns[p][0], &join, "a join on node 0").await;
    }
    // The founder reads the group on every node.
    let readers: Vec<&Connection> = conns[0].iter().collect();
    let context = format!("seed {seed}: before the first round");
    assert_members_converge(&readers, group.id, CONVERGE_SECS, &context).await;

    let pairs = [(0, 1), (0, 2), (1, 2)];
    let mut cut_for = [0u32; 3];
    let mut written = BTreeSet::new();
    for round in 0..rounds {
        let mut cuts = Vec::new();
        for (k, &(a, b)) in pairs.iter().enumerate() {
            if cut_for[k] < LONGEST_CUT && rng.gen_bool(0.4) {
                cluster.partition(a, b);
                cut_for[k] += 1;
                cuts.push((a, b));
            } else {
                cluster.heal(a, b);
                cut_for[k] = 0;
            }
        }
        let writes = rng.gen_range(1..=4);
        eprintln!("  seed {seed}, round {round}: links cut {cuts:?}, {writes} writes");
        for w in 0..writes {
            let node = rng.gen_range(0..all.len());
            let who = rng.gen_range(0..people.len());
            let (kind, body) = if rng.gen_bool(0.2) {
                let profile = body::Profile {
                    me: body::SelfDescription {
                        name: Some(format!("person {who}, round {round}")),
                        labels: Vec::new(),
                    },
                    quiet: false,
                    home: None,
                };
                (groups::PROFILE, body::to_bytes(&profile))
            } else {
                let text = format!("round {round}, write {w}, on node {node}");
                (Kind::POST, PostBody { text }.to_bytes())
            };
            let what = format!(
                "seed {seed}, round {round} (cuts {cuts:?}): person {who}'s write on node {node}"
            );
            // Like a client: cite whatever the node holds as its latest events.
            let conn = &conns[who][node];
            let heads = node_heads(conn, group.id, &what).await;
            let event = group.event_citing(&people[who], kind, body, &heads);
            publish(conn, &event, &what).await;
            written.insert(event.id());
            tokio::time::sleep(Duration::from_millis(rng.gen_range(20..200))).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..800))).await;
    }

    cluster.heal_all();
    let context = format!(
        "seed {seed} ({visibility:?} group) after {rounds} rounds and a full heal \
         (KITH_FED_SEED={seed} replays it)"
    );
    assert_members_converge(&readers, group.id, CONVERGE_SECS, &context).await;
    if visibility == Visibility::Public {
        // What anyone reads over HTTP agrees too.
        assert_converged(&cluster, group.id, &all, CONVERGE_SECS, &context).await;
    }
    for (i, reader) in readers.iter().enumerate() {
        let held = member_view(reader, group.id)
            .await
            .map(|v| v.ids)
            .unwrap_or_default();
        let missing: Vec<&EventId> = written.difference(&held).collect();
        assert!(missing.is_empty(), "{context}: node {i} lacks {missing:?}");
    }
    for row in &conns {
        for conn in row {
            conn.close().await;
        }
    }
}
