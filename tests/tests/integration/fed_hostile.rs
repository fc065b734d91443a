//! Hostile and broken peers, with real nodes: a node whose store was altered behind its back
//! cannot pass the altered events on (every receiver checks hashes and signatures itself);
//! a member naming a home at a private address does not make the node dial inside its own
//! network; and a peer that floods a link with bad frames is cut off, while the node keeps
//! serving everyone else.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use kith_client::Connection;
use kith_protocol::group::body::{NodeRef, Visibility};
use kith_protocol::kind::PostBody;
use kith_protocol::validate::validate;
use kith_protocol::{Event, EventBuilder, EventId, GroupId, Kind, Limits, SecretKey, Timestamp};
use kith_tests::link::{raw_link, try_next_text, LinkSocket};
use kith_tests::node::{eventually, metric, try_get_json};
use kith_tests::{post, seeded_key, Cluster, TestGroup, TestNode};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// How long a relink and a catch-up may take (a relink waits for the dialer's backoff).
const WAIT_SECS: u64 = 30;

/// Bad frames a node lets one link send before it closes the link: the server's
/// `federation::frame::MAX_BAD_FRAMES`. The frame after the budget closes the link.
const BAD_FRAME_BUDGET: usize = 64;

/// Where `created_at` starts in the header of an event that is in a group: magic (4),
/// version (1), author (32), group flag (1), group id (32), kind (2).
const CREATED_AT_OFFSET: usize = 4 + 1 + 32 + 1 + 32 + 2;

/// The value of `kith_rejections_total{code="<code>"}` on the node at `url` (0 if absent).
async fn rejections(url: &str, code: &str) -> u64 {
    metric(url, &format!("kith_rejections_total{{code=\"{code}\"}}")).await
}

async fn logged_in(node: &TestNode, key: &SecretKey) -> Connection {
    let conn = Connection::connect(&node.url()).await.unwrap();
    conn.login(key, Some(&node.invite(1))).await.unwrap();
    conn
}

// ---------------------------------------------------------------------------------------
// A tampered store

/// A post in `group` citing only `parent`: a leaf nothing else cites, so the group's other
/// events do not depend on it.
fn leaf(key: &SecretKey, group: GroupId, parent: EventId, text: &str) -> Event {
    let body = PostBody { text: text.into() }.to_bytes();
    EventBuilder::new(Kind::POST, kith_client::now(), body)
        .group(group)
        .parents([parent])
        .sign(key)
        .expect("a small post always builds")
}

/// Replaces the stored record of `id` in the stopped node's store at `store` with
/// `change(record)`, and returns the altered record.
fn alter_record(store: &Path, id: EventId, change: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let db = sled::open(store).expect("the stopped node's store opens");
    let events = db
        .open_tree("events")
        .expect("the store has an events tree");
    let mut record = events
        .get(id.as_bytes())
        .expect("the store reads")
        .unwrap_or_else(|| panic!("the node stores {id}"))
        .to_vec();
    change(&mut record);
    events
        .insert(id.as_bytes(), record.clone())
        .expect("the store takes the altered record");
    db.flush().expect("the store flushes");
    record
}

/// Turns "10 loaves" into "90 loaves" in an event's body: same length, still valid JSON,
/// but no longer the body its signed header commits to.
fn alter_body(record: &mut [u8]) {
    let at = record
        .windows(9)
        .rposition(|w| w == b"10 loaves")
        .expect("the body says 10 loaves");
    record[at] = b'9';
}

/// Moves an event's `created_at` an hour back, in the signed header itself: the header no
/// longer hashes to the event's id, nor matches its signature.
fn alter_created_at(record: &mut [u8], was: Timestamp) {
    let field = &mut record[CREATED_AT_OFFSET..CREATED_AT_OFFSET + 8];
    assert_eq!(
        u64::from_be_bytes(field.try_into().unwrap()),
        was.0,
        "created_at is where the header layout puts it"
    );
    field.copy_from_slice(&(was.0 - 3_600_000).to_be_bytes());
}

#[tokio::test]
async fn a_node_whose_store_was_tampered_with_cannot_spread_the_change() {
    let mut cluster = Cluster::start(2, "").await;
    let key = seeded_key(160);
    let conn = cluster.logged_in(0, &key).await;
    let at = Timestamp(kith_client::now().0 - 60_000);
    let mut group = TestGroup::create(&key, "ledger", Visibility::Public, at);
    conn.publish(&group.genesis).await.unwrap();
    // Every event of the group node 1 must end up with (the genesis is not listed).
    let mut untampered = BTreeSet::new();
    for i in 0..2 {
        let before = group.post(&key, &format!("before the cut {i}"));
        conn.publish(&before).await.unwrap();
        untampered.insert(before.id());
    }
    assert!(
        cluster.converged(group.id, &[0, 1], WAIT_SECS).await,
        "node 1 caught up the group (and follows it) before the cut"
    );

    // While node 1 is cut off: two leaves that will be altered, around posts that will not.
    cluster.partition(0, 1);
    let kept = group.post(&key, "during the cut: kept as written");
    conn.publish(&kept).await.unwrap();
    let body_victim = leaf(&key, group.id, kept.id(), "the pantry owes 10 loaves");
    let header_victim = leaf(&key, group.id, kept.id(), "the pantry opens at noon");
    conn.publish(&body_victim).await.unwrap();
    conn.publish(&header_victim).await.unwrap();
    let after = group.post(&key, "during the cut: also kept");
    assert_eq!(after.header().parents, vec![kept.id()]);
    conn.publish(&after).await.unwrap();
    conn.close().await;
    untampered.extend([kept.id(), after.id()]);
    for event in [&kept, &body_victim, &header_victim, &after] {
        assert!(cluster.holds(0, event.id()).await);
    }
    assert!(
        !eventually(1, || cluster.holds(1, kept.id())).await,
        "nothing crosses the cut"
    );

    // Node 0 stops cleanly; its store is altered on disk, structurally intact.
    assert!(cluster.stop(0).await.success(), "node 0 stops cleanly");
    let store = cluster.nodes[0].path().join(kith_server::server::STORE_DIR);
    let (body_id, header_id, was) = (
        body_victim.id(),
        header_victim.id(),
        header_victim.created_at(),
    );
    let (altered_body, altered_header) = tokio::task::spawn_blocking(move || {
        let body = alter_record(&store, body_id, alter_body);
        let header = alter_record(&store, header_id, |r| alter_created_at(r, was));
        (body, header)
    })
    .await
    .unwrap();
    // Both still decode (a node reading them sees well-formed events) and neither validates.
    let decoded_body = Event::decode(&altered_body).expect("the altered body still decodes");
    let decoded_header = Event::decode(&altered_header).expect("the altered header decodes");
    assert_eq!(
        decoded_body.id(),
        body_victim.id(),
        "the header is untouched"
    );
    let forged_id = decoded_header.id();
    assert_ne!(forged_id, header_victim.id(), "the id is the header's hash");
    let limits = Limits::default();
    let now = kith_client::now();
    assert!(validate(&altered_body, Some(&body_victim.id()), now, &limits).is_err());
    assert!(validate(&altered_header, None, now, &limits).is_err());
    assert!(validate(&altered_header, Some(&header_victim.id()), now, &limits).is_err());

    // Node 0 comes back (still cut off from node 1) and serves what its store holds.
    cluster.restart(0).await;
    for (what, id) in [
        ("altered body", body_victim.id()),
        ("altered header, original id", header_victim.id()),
        ("altered header, its new id", forged_id),
    ] {
        let seen = try_get_json(&cluster.url(0), &format!("/events/{id}")).await;
        let (status, view) = seen.unwrap_or_default();
        eprintln!(
            "node 0 after the tampering, {what}: {status} id={} created_at={} body={}",
            view["id"], view["created_at"], view["body"]
        );
    }

    cluster.heal(0, 1);
    let caught_up = eventually(WAIT_SECS, || async {
        cluster
            .event_ids(1, group.id)
            .await
            .is_superset(&untampered)
    })
    .await;
    assert!(
        caught_up,
        "node 1 catches up every untampered event: has {:?}, wants {:?}",
        cluster.event_ids(1, group.id).await,
        untampered
    );
    let node1 = cluster.url(1);
    // Two lines of defence: node 0 checks each record it reads against its signed header and
    // will not serve a damaged one; and were it to send one anyway, node 1 would refuse it
    // (tested directly over a raw link in federation.rs). Either way it must be visible.
    let node0 = cluster.url(0);
    assert!(
        eventually(WAIT_SECS, || async {
            let refused_by_1 = rejections(&node1, "federation_bad_frame").await > 0;
            let mut withheld_by_0 = true;
            for id in [body_victim.id(), header_victim.id()] {
                let seen = try_get_json(&node0, &format!("/events/{id}")).await;
                withheld_by_0 &= !matches!(seen, Some((200, _)));
            }
            refused_by_1 || withheld_by_0
        })
        .await,
        "the altered events are withheld by node 0 or refused (and counted) by node 1"
    );
    // Whatever else node 0 could still send has had time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;

    for id in [body_victim.id(), header_victim.id(), forged_id] {
        assert!(!cluster.holds(1, id).await, "node 1 does not store {id}");
    }
    assert_eq!(
        cluster.event_ids(1, group.id).await,
        untampered,
        "node 1 holds exactly the untampered events"
    );
    let (status, page) = try_get_json(&node1, &format!("/groups/{}/events?limit=500", group.id))
        .await
        .expect("node 1 answers");
    assert_eq!(status, 200);
    for view in page["events"].as_array().expect("a list of events") {
        let text = view["body"]["text"].as_str().unwrap_or_default();
        assert!(
            !text.contains("90 loaves"),
            "an altered body on node 1: {view}"
        );
        assert_ne!(
            view["created_at"].as_u64(),
            Some(decoded_header.created_at().0),
            "an altered header on node 1: {view}"
        );
    }
    let (status, _) = try_get_json(&node1, "/health")
        .await
        .expect("node 1 answers");
    assert_eq!(status, 200);
    eprintln!(
        "node 1 refused {} frames from node 0 (federation_bad_frame)",
        rejections(&node1, "federation_bad_frame").await
    );
}

/// A record damaged on the disk of a node whose peer holds the event heals: the node finds
/// the damage when it reads the group at start, sets the record aside (the event then counts
/// as missing) and takes the event again from the peer, checked like any event.
#[tokio::test]
async fn a_record_damaged_on_disk_is_taken_again_from_a_peer_that_holds_it() {
    let mut cluster = Cluster::start(2, "").await;
    let key = seeded_key(161);
    let conn = cluster.logged_in(0, &key).await;
    let at = Timestamp(kith_client::now().0 - 60_000);
    let mut group = TestGroup::create(&key, "pantry", Visibility::Public, at);
    conn.publish(&group.genesis).await.unwrap();
    let victim = group.post(&key, "the pantry owes 10 loaves");
    conn.publish(&victim).await.unwrap();
    let after = group.post(&key, "and cites the post before");
    conn.publish(&after).await.unwrap();
    conn.close().await;
    assert!(
        cluster.converged(group.id, &[0, 1], WAIT_SECS).await,
        "node 1 holds the group before the damage"
    );

    assert!(cluster.stop(1).await.success(), "node 1 stops cleanly");
    let store = cluster.nodes[1].path().join(kith_server::server::STORE_DIR);
    let id = victim.id();
    tokio::task::spawn_blocking(move || alter_record(&store, id, alter_body))
        .await
        .unwrap();
    cluster.restart(1).await;

    let node1 = cluster.url(1);
    let healed = eventually(WAIT_SECS, || async {
        match try_get_json(&node1, &format!("/events/{id}")).await {
            Some((200, view)) => view["body"]["text"] == "the pantry owes 10 loaves",
            _ => false,
        }
    })
    .await;
    assert!(
        healed,
        "node 1 serves the event as its author wrote it again: {:?}",
        try_get_json(&node1, &format!("/events/{id}")).await
    );
    assert!(
        cluster.converged(group.id, &[0, 1], WAIT_SECS).await,
        "both nodes hold the same events and state"
    );
}

// ---------------------------------------------------------------------------------------
// Homes at private addresses

/// A listener on `127.0.0.1:<free port>` (and on `[::1]` at the same port, when this host
/// has IPv6 loopback) that counts the connections it accepts and closes them.
struct CountingListener {
    port: u16,
    accepted: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CountingListener {
    async fn start() -> CountingListener {
        let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut listeners = vec![v4];
        if let Ok(v6) = TcpListener::bind(("::1", port)).await {
            listeners.push(v6);
        }
        let tasks = listeners
            .into_iter()
            .map(|listener| {
                let accepted = Arc::clone(&accepted);
                tokio::spawn(async move {
                    while let Ok((socket, _)) = listener.accept().await {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        drop(socket);
                    }
                })
            })
            .collect();
        CountingListener {
            port,
            accepted,
            tasks,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CountingListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Home URLs that all lead to this machine or its private network: the listener's port on
/// 127.0.0.1, on [::1], and on 127.0.0.1 spelt as one decimal number, and a private address.
fn private_homes(port: u16) -> Vec<String> {
    vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://2130706433:{port}"),
        "http://10.0.0.1:8080".to_owned(),
    ]
}

/// On `node`: a founder creates a private group homed on the node itself and invites; then
/// one newcomer per URL in `homes` joins anonymously, naming a home node (its own key) at
/// that URL; then the founder posts. Returns the URLs that were named (those the home URL's
/// syntax check accepts).
async fn members_name_homes(node: &TestNode, homes: &[String]) -> Vec<String> {
    let founder = seeded_key(170);
    let conn = logged_in(node, &founder).await;
    let here = NodeRef {
        node: node.server_ref().node_key(),
        url: node.url(),
    };
    let mut group = TestGroup::create_at_home(
        &founder,
        "commons",
        Visibility::Private,
        kith_client::now(),
        Some(here),
    );
    conn.publish(&group.genesis).await.unwrap();
    let invite = group.invite(&founder, homes.len() as u32);
    conn.publish(&invite).await.unwrap();
    let anonymous = Connection::connect(&node.url()).await.unwrap();
    let mut named = Vec::new();
    for (i, url) in homes.iter().enumerate() {
        let home = NodeRef {
            node: seeded_key(180 + i as u8).public_key(),
            url: url.clone(),
        };
        if let Err(e) = home.check() {
            eprintln!("the home URL {url} is refused by its syntax check: {e}");
            continue;
        }
        let join = group.join(&seeded_key(171 + i as u8), &invite, Some(home));
        anonymous
            .publish(&join)
            .await
            .unwrap_or_else(|e| panic!("a join naming {url} as home is taken: {e}"));
        named.push(url.clone());
    }
    for i in 0..3 {
        conn.publish(&group.post(&founder, &format!("news {i}")))
            .await
            .unwrap();
    }
    anonymous.close().await;
    conn.close().await;
    named
}

#[tokio::test]
async fn a_home_at_a_private_address_is_never_dialed() {
    assert!(
        kith_server::Config::default().federation.dial_member_homes,
        "nodes dial members' homes by default"
    );
    let listener = CountingListener::start().await;
    let node = TestNode::start_with(|c| c.federation.allow_private_addresses = false).await;
    let homes = private_homes(listener.port);
    let named = members_name_homes(&node, &homes).await;
    assert!(
        named.contains(&homes[0]),
        "a loopback home URL is well-formed"
    );
    assert!(
        eventually(10, || async {
            rejections(&node.url(), "federation_refused_address").await >= named.len() as u64
        })
        .await,
        "the node refused each home address ({named:?}): {} refusals",
        rejections(&node.url(), "federation_refused_address").await
    );
    eprintln!(
        "home URLs named: {named:?}; refused: {}",
        rejections(&node.url(), "federation_refused_address").await
    );
    // A dialer that got past the guard would have connected by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        listener.accepted(),
        0,
        "the node connected to a home at a private address"
    );
    assert_eq!(metric(&node.url(), "kith_federation_links_open").await, 0);
    node.shutdown().await;
}

/// The control for the test above: with private addresses allowed, the same homes are
/// dialed, so that test would notice a node without the guard.
#[tokio::test]
async fn a_home_at_a_private_address_is_dialed_when_the_admin_allows_it() {
    let listener = CountingListener::start().await;
    let node = TestNode::start_with(|c| c.federation.allow_private_addresses = true).await;
    let named = members_name_homes(&node, &private_homes(listener.port)).await;
    assert!(!named.is_empty());
    assert!(
        eventually(10, || async { listener.accepted() >= 1 }).await,
        "the node dialed the members' home"
    );
    assert_eq!(
        rejections(&node.url(), "federation_refused_address").await,
        0
    );
    node.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// A peer flooding bad frames

/// Frames a broken or hostile peer might send, text and binary: not JSON, unknown types,
/// truncated or ill-sized binary frames, and well-formed frames that make no sense on this
/// link (an ack for nothing sent, a sync reply or events nobody asked for, an event that is
/// not an event).
fn garbage(n: usize, group: GroupId) -> Message {
    let binary = |bytes: Vec<u8>| Message::Binary(bytes.into());
    match n % 9 {
        0 => Message::Text(format!("this is not a link frame {n}").into()),
        1 => Message::Text(r#"{"type":"fed_nonsense"}"#.into()),
        2 => Message::Text(format!(r#"{{"type":"fed_ack","seq":{}}}"#, 1_000_000 + n).into()),
        3 => binary(vec![0xee, 1, 2, 3]),
        4 => binary(Vec::new()),
        5 => binary(vec![3, 1, 2, 3]),
        6 => {
            let mut reply = vec![2];
            reply.extend_from_slice(group.as_bytes());
            reply.extend_from_slice(&(n as u32).to_be_bytes());
            reply.extend_from_slice(b"no such session");
            binary(reply)
        }
        7 => binary(vec![4, 0, 0, 0, 0]),
        _ => {
            let mut event = vec![5];
            event.extend_from_slice(&0u64.to_be_bytes());
            event.extend_from_slice(b"not an event at all");
            binary(event)
        }
    }
}

/// Reads until the node's next `fed_error`: `Some(code)`, or `None` if the link closed.
async fn next_refusal(ws: &mut LinkSocket) -> Option<String> {
    loop {
        let text = try_next_text(ws, Duration::from_secs(10))
            .await
            .expect("the node answers a bad frame, or closes the link")?;
        let frame: serde_json::Value = serde_json::from_str(&text).expect("the node sends JSON");
        if frame["type"] == "fed_error" {
            return Some(frame["code"].as_str().unwrap_or_default().to_owned());
        }
    }
}

#[tokio::test]
async fn a_peer_flooding_bad_frames_is_disconnected() {
    let node = TestNode::start().await;
    let member = seeded_key(190);
    // A client that is connected the whole time.
    let client = logged_in(&node, &member).await;
    let group = TestGroup::create(&member, "noise", Visibility::Public, kith_client::now()).id;

    let mut link = raw_link(&node.url(), &SecretKey::generate(&mut rand::rngs::OsRng)).await;
    // The node counts the link once its side of the handshake is done, which on a busy
    // machine can be just after ours.
    assert!(
        eventually(10, || async {
            metric(&node.url(), "kith_federation_links_open").await == 1
        })
        .await,
        "the node counts the raw link as open"
    );
    let mut refused = 0;
    let mut closed = false;
    for n in 0..BAD_FRAME_BUDGET * 4 {
        if link.send(garbage(n, group)).await.is_err() {
            closed = true;
            break;
        }
        match next_refusal(&mut link).await {
            Some(code) => {
                // Refused as bad, not merely throttled: the budget is what closes the link.
                assert_ne!(code, "rate_limited", "after {refused} bad frames");
                refused += 1;
            }
            None => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "the node kept a link open through {refused} bad frames"
    );
    assert!(
        refused <= BAD_FRAME_BUDGET + 1,
        "the node closed the link only after {refused} bad frames (budget {BAD_FRAME_BUDGET})"
    );
    assert!(
        refused > 1,
        "one bad frame is answered, not punished by closing the link"
    );
    eprintln!("the node closed the link after answering {refused} bad frames");
    // The stream has ended for good.
    assert!(matches!(
        try_next_text(&mut link, Duration::from_secs(5)).await,
        Ok(None)
    ));
    assert!(
        rejections(&node.url(), "federation_bad_frame").await >= refused as u64,
        "every bad frame is counted"
    );
    assert!(
        eventually(10, || async {
            metric(&node.url(), "kith_federation_links_open").await == 0
        })
        .await,
        "the link is gone"
    );

    // Everyone else is still served.
    let (status, _) = node.get_json("/health").await;
    assert_eq!(status, 200);
    let note = post(&member, "still here after the flood", None);
    assert!(!client.publish(&note).await.unwrap().duplicate);
    let newcomer = logged_in(&node, &seeded_key(191)).await;
    let reply = post(&seeded_key(191), "and so am I", None);
    assert!(!newcomer.publish(&reply).await.unwrap().duplicate);
    assert!(eventually(5, || async { node.event_count().await == 2 }).await);
    client.close().await;
    newcomer.close().await;
    node.shutdown().await;
}
