//! Helpers for federation tests: what a node shows a member of a (private) group over a
//! logged-in WebSocket, convergence checks with readable failures, and the `KITH_HEAVY`
//! switch for heavier variants.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use kith_client::{Connection, SubscriptionItem};
use kith_protocol::frame::Filter;
use kith_protocol::group::body::NodeRef;
use kith_protocol::{Event, EventId, GroupId, PublicKey};

use crate::node::{eventually, get_json};
use crate::Cluster;

/// How long nodes get to converge: a relink after a heal or restart waits for the dialer's
/// backoff, and a restarted node reconciles every shared group.
pub const CONVERGE_SECS: u64 = 60;
/// How long one event may take to cross a live link.
pub const CROSS_SECS: u64 = 20;

/// Whether `KITH_HEAVY=1` asks for the heavier variants (read once).
pub fn heavy() -> bool {
    static HEAVY: OnceLock<bool> = OnceLock::new();
    *HEAVY.get_or_init(|| std::env::var("KITH_HEAVY").is_ok_and(|v| v.trim() == "1"))
}

/// Node `i` as a member's home: its key (from `/.well-known/kith`) and its own URL.
pub async fn home(cluster: &Cluster, i: usize) -> NodeRef {
    let (status, info) = get_json(&cluster.url(i), "/.well-known/kith").await;
    assert_eq!(status, 200, "node {i} describes itself: {info}");
    let node: PublicKey = serde_json::from_value(info["node"].clone())
        .unwrap_or_else(|e| panic!("node {i} names its key ({e}): {info}"));
    NodeRef {
        node,
        url: cluster.url(i),
    }
}

/// Publishes `event` and panics, saying `what`, if the node refuses it.
pub async fn publish(conn: &Connection, event: &Event, what: &str) {
    if let Err(e) = conn.publish(event).await {
        panic!("{what}: {} refused event {}: {e}", conn.url(), event.id());
    }
}

/// What a node shows a member of a private group: its digest, heads, number of events, and
/// the ids of the events it serves in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub digest: String,
    pub heads: BTreeSet<String>,
    pub events: u64,
    pub ids: BTreeSet<EventId>,
}

/// The node's account of `group` to the member logged in on `conn`; `None` if it holds no
/// such group, refuses, or the connection is gone.
pub async fn member_view(conn: &Connection, group: GroupId) -> Option<MemberView> {
    let state = conn.group_state(group).await.ok()?;
    let digest = state["digest"].as_str()?.to_owned();
    let heads = state["heads"]
        .as_array()?
        .iter()
        .filter_map(|h| h.as_str().map(str::to_owned))
        .collect();
    let events = state["events"].as_u64()?;
    let ids = member_event_ids(conn, group).await?;
    Some(MemberView {
        digest,
        heads,
        events,
        ids,
    })
}

/// The ids of the events of `group` the node serves on `conn` (a subscription's stored
/// events; the creating event is not among them).
pub async fn member_event_ids(conn: &Connection, group: GroupId) -> Option<BTreeSet<EventId>> {
    let filter = Filter {
        groups: Some(vec![group]),
        ..Filter::default()
    };
    let mut sub = conn.subscribe(filter).await.ok()?;
    let mut ids = BTreeSet::new();
    let complete = loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(SubscriptionItem::Event(e))) => {
                ids.insert(e.id());
            }
            Ok(Some(SubscriptionItem::StoredDone)) => break true,
            Ok(Some(SubscriptionItem::Rejected(_))) => continue,
            _ => break false,
        }
    };
    conn.unsubscribe(sub).await;
    complete.then_some(ids)
}

/// Whether the node serves the event `id` to the member logged in on `conn`.
pub async fn holds_as_member(conn: &Connection, id: EventId) -> bool {
    let filter = Filter {
        ids: Some(vec![id]),
        ..Filter::default()
    };
    let Ok(mut sub) = conn.subscribe(filter).await else {
        return false;
    };
    let found = matches!(
        tokio::time::timeout(Duration::from_secs(5), sub.next()).await,
        Ok(Some(SubscriptionItem::Event(_)))
    );
    conn.unsubscribe(sub).await;
    found
}

/// Every member connection's view of `group`, in order (for assertion messages).
pub async fn member_views(conns: &[&Connection], group: GroupId) -> Vec<Option<MemberView>> {
    let mut views = Vec::with_capacity(conns.len());
    for conn in conns {
        views.push(member_view(conn, group).await);
    }
    views
}

/// Whether every connection's node shows `group` with one digest, heads and event set now.
async fn members_agree(conns: &[&Connection], group: GroupId) -> bool {
    let views = member_views(conns, group).await;
    let Some(Some(first)) = views.first() else {
        return false;
    };
    views.iter().all(|v| v.as_ref() == Some(first))
}

/// Polls until the nodes behind `conns` (each logged in as a member) agree on `group`, for
/// at most `secs`; panics with every view and `context` if they do not.
pub async fn assert_members_converge(
    conns: &[&Connection],
    group: GroupId,
    secs: u64,
    context: &str,
) {
    if eventually(secs, || members_agree(conns, group)).await {
        return;
    }
    let views = member_views(conns, group).await;
    let shown: Vec<String> = conns
        .iter()
        .zip(&views)
        .map(|(conn, view)| match view {
            Some(v) => format!(
                "  {}: digest {}, {} events, heads {:?}, {} ids served",
                conn.url(),
                v.digest,
                v.events,
                v.heads,
                v.ids.len()
            ),
            None => format!("  {}: no view", conn.url()),
        })
        .collect();
    let mut differences = String::new();
    if let Some(Some(first)) = views.first() {
        for (conn, view) in conns.iter().zip(&views).skip(1) {
            if let Some(v) = view {
                let missing: Vec<&EventId> = first.ids.difference(&v.ids).collect();
                let extra: Vec<&EventId> = v.ids.difference(&first.ids).collect();
                differences.push_str(&format!(
                    "\n  {} lacks {missing:?} and has {extra:?} beyond the first",
                    conn.url()
                ));
            }
        }
    }
    panic!(
        "{context}: the nodes did not converge on group {group} within {secs} s\n{}{differences}",
        shown.join("\n")
    );
}

/// Polls until the nodes `nodes` agree on the public `group` (HTTP event ids and digests);
/// panics with what each holds and `context` if they do not.
pub async fn assert_converged(
    cluster: &Cluster,
    group: GroupId,
    nodes: &[usize],
    secs: u64,
    context: &str,
) {
    if cluster.converged(group, nodes, secs).await {
        return;
    }
    let mut shown = Vec::new();
    for &i in nodes {
        shown.push(format!(
            "  node {i}: digest {:?}, {} events",
            cluster.digest(i, group).await,
            cluster.event_ids(i, group).await.len()
        ));
    }
    panic!(
        "{context}: nodes {nodes:?} did not converge on group {group} within {secs} s\n{}",
        shown.join("\n")
    );
}

/// How many events node `i` stores (from `/health`).
pub async fn stored_events(cluster: &Cluster, i: usize) -> u64 {
    let (status, health) = get_json(&cluster.url(i), "/health").await;
    assert_eq!(status, 200, "node {i} is healthy: {health}");
    health["events"]
        .as_u64()
        .unwrap_or_else(|| panic!("node {i}'s /health reports its events: {health}"))
}

/// The value of metric `name` (with its labels, if any) on node `i` (0 when absent).
pub async fn metric(cluster: &Cluster, i: usize, name: &str) -> u64 {
    crate::node::metric(&cluster.url(i), name).await
}
