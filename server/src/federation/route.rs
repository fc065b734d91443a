//! Routing: which peers get a group's events, and which peers may read them.
//!
//! A group's events go to every node that hosts one of its members (the homes members name
//! in their joins and profiles, `GroupState::hosts`), and for a public group also to the
//! peers that follow it. **Invariant:** an event of a private group is never queued for,
//! served to, or announced to a node that hosts none of its members; [`may_serve`] is checked
//! when an event is queued and again when it leaves.

use std::collections::BTreeMap;

use kith_protocol::event::{Event, GroupId};
use kith_protocol::PublicKey;

use crate::groups::in_group;
use crate::node::{now, Node};
use crate::store::StoreError;

/// Whether `peer` may receive the events of `group`: the group is public, or a current
/// member names `peer` as their home. Blocking.
pub fn may_serve(node: &Node, group: &GroupId, peer: &PublicKey) -> Result<bool, StoreError> {
    match node.groups.hosts(group)? {
        None => Ok(false),
        Some((true, _)) => Ok(true),
        Some((false, hosts)) => Ok(hosts.contains_key(peer)),
    }
}

/// The peers a newly stored `event` goes to, except this node, `from` (the peer it came
/// from) and blocked nodes, with the URL members gave for each host (to dial it). Blocking.
pub fn targets(
    node: &Node,
    event: &Event,
    from: Option<&PublicKey>,
) -> Result<BTreeMap<PublicKey, Option<String>>, StoreError> {
    let mut out = BTreeMap::new();
    let Some(group) = in_group(event) else {
        return Ok(out);
    };
    let Some((public, hosts)) = node.groups.hosts(&group)? else {
        return Ok(out);
    };
    for (key, url) in hosts {
        out.insert(key, Some(url));
    }
    if public {
        for key in node.store.followers(&group)? {
            out.entry(key).or_insert(None);
        }
    }
    let me = node.key.public_key();
    out.remove(&me);
    if let Some(from) = from {
        out.remove(from);
    }
    // A blocked node gets nothing from here: not queued, so not kept for it either.
    out.retain(|key, _| !node.federation.is_blocked(key));
    Ok(out)
}

/// Queues a newly stored event for every peer that should get it; returns the hosts'
/// URLs (to dial those not linked yet). Blocking; durable with the store's next flush.
pub fn enqueue(
    node: &Node,
    event: &Event,
    from: Option<&PublicKey>,
) -> Result<Vec<(PublicKey, String)>, StoreError> {
    let targets = targets(node, event, from)?;
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let peers: Vec<PublicKey> = targets.keys().copied().collect();
    let dropped = node.store.outbox_push(
        &peers,
        &[event.id()],
        now().0,
        node.config.federation.outbox_max_per_peer,
    )?;
    if dropped > 0 {
        node.metrics
            .federation_outbox_dropped
            .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(targets
        .into_iter()
        .filter_map(|(k, url)| url.map(|u| (k, u)))
        .collect())
}
