//! Routing of a PRIVATE group between in-process nodes: its events go to the nodes that host
//! its members and nowhere else. A, B and C are all linked; the founder lives on A, a
//! newcomer on B; C hosts nobody in the group and must receive nothing of it.

use std::time::Duration;

use kith_client::Connection;
use kith_protocol::group::body::{NodeRef, Visibility};
use kith_protocol::{Event, EventId, GroupId, SecretKey};
use kith_server::federation::peers::{append_admin_request, AdminRequest};
use kith_tests::fed::{holds_as_member, member_view};
use kith_tests::node::{eventually, federated_with};
use kith_tests::{seeded_key, TestGroup, TestNode};

const WAIT_SECS: u64 = 20;

fn home_of(node: &TestNode) -> Option<NodeRef> {
    Some(NodeRef {
        node: node.server_ref().node_key(),
        url: node.url(),
    })
}

async fn logged_in(node: &TestNode, key: &SecretKey) -> Connection {
    let conn = Connection::connect(&node.url()).await.unwrap();
    conn.login(key, Some(&node.invite(1))).await.unwrap();
    conn
}

async fn holds(conn: &Connection, event: &Event) -> bool {
    holds_as_member(conn, event.id()).await
}

async fn digest(conn: &Connection, group: GroupId) -> Option<String> {
    member_view(conn, group).await.map(|v| v.digest)
}

async fn metric(node: &TestNode, name: &str) -> u64 {
    kith_tests::node::metric(&node.url(), name).await
}

/// A private group founded on A whose second member, the newcomer, lives on B and joined
/// through A: a join naming another home needs no account on A.
struct Across {
    on_a: Connection,
    on_b: Connection,
    group: TestGroup,
    founder: SecretKey,
    newcomer: SecretKey,
}

/// Founds the group on A (keys from `seed` and `seed + 1`), and returns once B holds the
/// newcomer's join: A dialed B, the newcomer's home, when the join was queued for it.
async fn across(a: &TestNode, b: &TestNode, name: &str, seed: u8) -> Across {
    let founder = seeded_key(seed);
    let newcomer = seeded_key(seed + 1);
    let on_a = logged_in(a, &founder).await;
    let mut group = TestGroup::create_at_home(
        &founder,
        name,
        Visibility::Private,
        kith_client::now(),
        home_of(a),
    );
    on_a.publish(&group.genesis).await.unwrap();
    let invite = group.invite(&founder, 1);
    on_a.publish(&invite).await.unwrap();
    let join = group.join(&newcomer, &invite, home_of(b));
    on_a.publish(&join).await.unwrap();
    let on_b = logged_in(b, &newcomer).await;
    assert!(
        eventually(WAIT_SECS, || holds(&on_b, &join)).await,
        "the newcomer's join reached B, their home"
    );
    Across {
        on_a,
        on_b,
        group,
        founder,
        newcomer,
    }
}

/// Three nodes, all linked with each other (each dials the ones started before it).
async fn three_linked() -> (TestNode, TestNode, TestNode) {
    let a = TestNode::start_with(|c| federated_with(c, &[])).await;
    let a_url = a.url();
    let b = TestNode::start_with(|c| federated_with(c, &[a_url])).await;
    let peers = [a.url(), b.url()];
    let c = TestNode::start_with(|c| federated_with(c, &peers)).await;
    (a, b, c)
}

#[tokio::test]
async fn a_private_group_reaches_its_members_homes_and_no_other_node() {
    let (a, b, c) = three_linked().await;
    let founder = seeded_key(71);
    let newcomer = seeded_key(72);
    let on_a = logged_in(&a, &founder).await;
    let mut group = TestGroup::create_at_home(
        &founder,
        "tenants",
        Visibility::Private,
        kith_client::now(),
        home_of(&a),
    );
    on_a.publish(&group.genesis).await.unwrap();
    let invite = group.invite(&founder, 1);
    on_a.publish(&invite).await.unwrap();

    // The newcomer lives on B and joins through A without an account there: the join names
    // B as home, so A starts routing the group to B.
    let join = group.join(&newcomer, &invite, home_of(&b));
    let anonymous = Connection::connect(&a.url()).await.unwrap();
    anonymous.publish(&join).await.unwrap();
    let on_b = logged_in(&b, &newcomer).await;
    assert!(
        eventually(WAIT_SECS, || holds(&on_b, &join)).await,
        "B, home of a member, received the group"
    );
    assert!(
        eventually(WAIT_SECS, || async {
            let (da, db) = (digest(&on_a, group.id).await, digest(&on_b, group.id).await);
            da.is_some() && da == db
        })
        .await,
        "A and B agree on the group's state"
    );

    // Both ways, live.
    let from_b = group.post(&newcomer, "hello from B");
    on_b.publish(&from_b).await.unwrap();
    assert!(eventually(WAIT_SECS, || holds(&on_a, &from_b)).await);
    let from_a = group.post(&founder, "hello from A");
    on_a.publish(&from_a).await.unwrap();
    assert!(eventually(WAIT_SECS, || holds(&on_b, &from_a)).await);

    // C is linked with both and hosts nobody: it got nothing at all of the group.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        c.event_count().await,
        0,
        "C stores none of the group's events"
    );
    assert_eq!(
        metric(&c, "kith_federation_events_received_total").await,
        0,
        "no event of the group was even sent to C"
    );
    let (status, _) = c.get_json(&format!("/groups/{}/state", group.id)).await;
    assert_eq!(status, 404, "C does not know the group at all");
    assert!(metric(&b, "kith_federation_events_received_total").await > 0);
}

#[tokio::test]
async fn queued_events_survive_the_peer_being_away_and_are_counted_in_metrics() {
    let (a, b, _c) = three_linked().await;
    let Across {
        on_a,
        on_b,
        mut group,
        founder,
        newcomer,
    } = across(&a, &b, "pantry", 73).await;

    // B goes away; A queues for it, durably, and says so in /metrics.
    let b_key = b.server_ref().node_key();
    drop(on_b);
    let mut b = b;
    b.stop().await;
    let mut posts = Vec::new();
    for i in 0..5 {
        let post = group.post(&founder, &format!("while B was away {i}"));
        on_a.publish(&post).await.unwrap();
        posts.push(post);
    }
    let depth_line = format!("kith_federation_queue_depth{{peer=\"{b_key}\"}}");
    assert!(
        eventually(WAIT_SECS, || async { metric(&a, &depth_line).await >= 5 }).await,
        "A's queue for B holds the posts"
    );
    // A restarts too: the queue is in its store, not in memory.
    let mut a = a;
    drop(on_a);
    a.restart().await;
    assert!(
        metric(&a, &depth_line).await >= 5,
        "the queue survived A's restart"
    );
    b.resume().await;
    let on_b = logged_in(&b, &newcomer).await;
    for post in &posts {
        assert!(eventually(WAIT_SECS, || holds(&on_b, post)).await);
    }
    assert!(
        eventually(WAIT_SECS, || async { metric(&a, &depth_line).await == 0 }).await,
        "acknowledged entries leave the queue"
    );
}

#[tokio::test]
async fn a_restarted_node_links_again_with_its_members_homes_unprompted() {
    // No configured peers on either side: A links with B only because a member names B as
    // home (dial_member_homes is on by default).
    let a = TestNode::start_with(|c| federated_with(c, &[])).await;
    let b = TestNode::start_with(|c| federated_with(c, &[])).await;
    let Across { on_a, on_b, .. } = across(&a, &b, "allotment", 75).await;
    let links = "kith_federation_links_open";
    assert_eq!(metric(&a, links).await, 1);

    // A restarts. B never dialed A (nothing was queued on B for A), so only A can bring the
    // link back, and no event is published to prompt it.
    drop(on_a);
    let mut a = a;
    a.restart().await;
    assert!(
        eventually(WAIT_SECS, || async {
            metric(&a, links).await == 1 && metric(&b, links).await == 1
        })
        .await,
        "A linked with B again at start, from the group's members' homes"
    );
    drop(on_b);
}

/// The refusals in force in `group` on the node of the member logged in on `conn`.
async fn refusals(conn: &Connection, group: GroupId) -> Vec<serde_json::Value> {
    let Ok(body) = conn.group_state(group).await else {
        return Vec::new();
    };
    body["state"]["refusals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Hands `request` to `node` through its admin log, as `kithd admin refuse` does.
fn admin(node: &TestNode, request: AdminRequest) {
    append_admin_request(node.dir(), &request).expect("the admin log takes the request");
}

/// A refusal's withdrawal reconciles the group with the peers at once: what the node refused
/// meanwhile was acknowledged to the peer, so nothing would send it again before the link
/// starts again.
#[tokio::test]
async fn what_a_withdrawn_refusal_kept_out_arrives_at_once() {
    let a = TestNode::start_with(|c| federated_with(c, &[])).await;
    let b = TestNode::start_with(|c| federated_with(c, &[])).await;
    let Across {
        on_a,
        on_b,
        mut group,
        founder,
        ..
    } = across(&a, &b, "orchard", 77).await;

    // B, home of the newcomer, refuses the founder's events.
    admin(
        &b,
        AdminRequest::Refuse {
            group: group.id,
            member: Some(founder.public_key()),
            reason: "testing a refusal".into(),
            at_ms: kith_client::now().0,
        },
    );
    assert!(
        eventually(WAIT_SECS, || async {
            !refusals(&on_b, group.id).await.is_empty()
        })
        .await,
        "B published its refusal"
    );
    let refusal: EventId = refusals(&on_b, group.id).await[0]["event"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the refusal's event id");

    let kept_out = group.post(&founder, "written while B refuses me");
    on_a.publish(&kept_out).await.unwrap();
    let depth = format!(
        "kith_federation_queue_depth{{peer=\"{}\"}}",
        b.server_ref().node_key()
    );
    assert!(
        eventually(WAIT_SECS, || async { metric(&a, &depth).await == 0 }).await,
        "B answered the push"
    );
    assert!(!holds(&on_b, &kept_out).await, "B refused the post");

    admin(
        &b,
        AdminRequest::WithdrawRefusal {
            refusal,
            reason: None,
            at_ms: kith_client::now().0,
        },
    );
    assert!(
        eventually(WAIT_SECS, || holds(&on_b, &kept_out)).await,
        "after the withdrawal B reconciled the group and took the post"
    );
    assert!(
        eventually(WAIT_SECS, || async {
            digest(&on_a, group.id).await == digest(&on_b, group.id).await
        })
        .await,
        "both nodes end with the same group state"
    );
}
