//! Node refusals: this node's admin refusing to host a group, or one member's events in it,
//! and taking a refusal back.
//!
//! A refusal is never a private list on the node. `kithd admin refuse` appends a request to
//! the admin log; the running node picks it up ([`crate::federation::peers`]) and publishes
//! it with [`refuse`] as a kind-107 event (`NODE_REFUSAL`) signed with the node key, so it
//! lands in the group's accountability log, with the admin's reason, for every member to
//! read. `kithd admin refuse --withdraw <refusal id>` takes one back the same way: [`withdraw`]
//! publishes a kind-108 event (`NODE_REFUSAL_WITHDRAWAL`) citing it, and the refusal leaves
//! the group's list of refusals in force. The local policy follows from those signed events
//! alone ([`check`]): the node refuses
//!
//! - every event of a group it refused as a whole, except its own further refusals and
//!   withdrawals;
//! - every event a member it refused writes in that group;
//!
//! as long as the refusal is in force (not withdrawn).
//!
//! The protocol lets a node announce a refusal only in a group where it is home to a current
//! member (and only about a current member): a node hosting none of a group's members has
//! nothing to refuse there, and a request to do so is logged and dropped. Only the node that
//! signed a refusal may withdraw it.
//!
//! Limits: events stored before the refusal stay stored; events that cite a refused event
//! cannot be stored here either (their parents are missing). Events refused while a refusal
//! was in force are not fetched again the moment it is withdrawn: the next reconciliation of
//! the group with a peer (every link starts with one) brings them.

use std::sync::Arc;

use kith_protocol::event::{Event, EventBuilder, EventId, GroupId, Timestamp};
use kith_protocol::frame::ErrorCode;
use kith_protocol::group::body::{self, NodeRefusal, NodeRefusalWithdrawal};
use kith_protocol::group::{NODE_REFUSAL, NODE_REFUSAL_WITHDRAWAL};
use kith_protocol::validate::validate;
use kith_protocol::PublicKey;

use crate::groups::{in_group, Groups};
use crate::node::{now, Node, Published, Rejection, SharedNode};

/// Publishes an event this node wrote itself (signed with its key): validated and checked
/// against its group's rules and this node's refusals like any event, then committed through
/// the node's normal path (stored, added to the group's state, queued for peers). The node
/// key needs no registration.
pub async fn publish_own(node: &SharedNode, bytes: &[u8]) -> Result<Published, Rejection> {
    let event = validate(bytes, None, now(), &node.config.limits)
        .map_err(|e| Rejection::new(e.code(), e.to_string()))?;
    if in_group(&event).is_some() {
        let checker = Arc::clone(node);
        let copy = (*event).clone();
        tokio::task::spawn_blocking(move || {
            checker.groups.check(&copy)?;
            check(&checker, &copy)
        })
        .await
        .map_err(|e| {
            Rejection::new(
                ErrorCode::Internal,
                format!("the node failed while checking the group's rules ({e}); try again"),
            )
        })??;
    }
    node.commit_checked(event, None).await
}

/// Whether this node's own refusals in force (the kind-107 events it signed in the event's
/// group and has not withdrawn) let it host `event`. The refusal's reason is in the message. Blocking: it reads the
/// group's state (loading the group from the store if needed).
pub fn check(node: &Node, event: &Event) -> Result<(), Rejection> {
    check_with(&node.groups, &node.key.public_key(), event)
}

/// [`check`] off the async workers, for the publish and ingest paths. Events in no group
/// pass at once.
pub async fn check_blocking(node: &Node, event: &Event) -> Result<(), Rejection> {
    if event.group().is_none() {
        return Ok(());
    }
    let groups = Arc::clone(&node.groups);
    let me = node.key.public_key();
    let event = event.clone();
    tokio::task::spawn_blocking(move || check_with(&groups, &me, &event))
        .await
        .map_err(|e| {
            Rejection::new(
                ErrorCode::Internal,
                format!("the node failed while checking its refusals ({e}); try again"),
            )
        })?
}

/// [`check`] for the node with key `me`.
fn check_with(groups: &Groups, me: &PublicKey, event: &Event) -> Result<(), Rejection> {
    let Some(group) = event.group() else {
        return Ok(());
    };
    let author = event.author();
    if (event.kind() == NODE_REFUSAL || event.kind() == NODE_REFUSAL_WITHDRAWAL) && author == *me {
        // The node may always say more about why it refuses, or take a refusal back.
        return Ok(());
    }
    let refused = groups.with_state(&group, |state| {
        // The latest refusal by this node that applies, newest first.
        let mine = |applies: &dyn Fn(&Option<PublicKey>) -> bool| {
            state
                .refusals
                .iter()
                .rev()
                .find(|r| r.node == *me && applies(&r.member))
        };
        if let Some(r) = mine(&|member| member.is_none()) {
            return Some(format!(
                "this node refuses to host the group {group}, for this reason: {}. The refusal is in the group's log; publish to another node that hosts the group",
                r.reason
            ));
        }
        mine(&|member| *member == Some(author)).map(|r| {
            format!(
                "this node refuses to host the events of {author} in the group {group}, for this reason: {}. The refusal is in the group's log; publish through another node that hosts the group",
                r.reason
            )
        })
    })?;
    match refused.flatten() {
        Some(message) => Err(Rejection::new(ErrorCode::NotAllowed, message)),
        None => Ok(()),
    }
}

/// Publishes this node's refusal of `group` (or of `member`'s events in it), with `reason`,
/// as a kind-107 event signed with the node key that cites the group's latest events.
/// Returns its id, or `None` when nothing was published: the node holds no such group, hosts
/// none of its members, `member` is not a member, the same refusal was already published,
/// or the publish failed. Each case is logged in plain words with what to do.
pub async fn refuse(
    node: &SharedNode,
    group: GroupId,
    member: Option<PublicKey>,
    reason: &str,
) -> Option<EventId> {
    let what = match &member {
        Some(m) => format!("the events of {m} in the group {group}"),
        None => format!("the group {group}"),
    };
    let prepared = {
        let node = Arc::clone(node);
        let reason = reason.to_owned();
        tokio::task::spawn_blocking(move || prepare(&node, group, member, reason)).await
    };
    let event = match prepared {
        Ok(Ok(Some(event))) => event,
        Ok(Ok(None)) => {
            tracing::info!("this node already refuses to host {what} for the same reason; nothing new to publish");
            return None;
        }
        Ok(Err(why)) => {
            tracing::warn!("not refusing to host {what}: {why}. This admin request is done and changed nothing");
            return None;
        }
        Err(e) => {
            tracing::warn!("could not prepare the refusal to host {what} ({e}); run kithd admin refuse again to retry");
            return None;
        }
    };
    match publish_own(node, &event.encode()).await {
        Ok(published) => {
            tracing::info!(event = %published.id, "this node now refuses to host {what}; the refusal and its reason are in the group's log");
            Some(published.id)
        }
        Err(rejection) => {
            tracing::warn!(
                "could not publish the refusal to host {what}: {}. Run kithd admin refuse again to retry",
                rejection.message
            );
            None
        }
    }
}

/// Checks that the node may refuse, and builds and signs the refusal; `None` if this node
/// already refuses the same thing for the same reason. Blocking.
fn prepare(
    node: &Node,
    group: GroupId,
    member: Option<PublicKey>,
    reason: String,
) -> Result<Option<Event>, String> {
    let me = node.key.public_key();
    let found = node
        .groups
        .with_state(&group, |state| {
            if !state.hosts().contains_key(&me) {
                return Err("this node is home to none of the group's members, and only a node that is home to a member may announce a refusal in a group. To stop exchanging the group with a particular peer, block that peer (kithd admin peer block)".to_owned());
            }
            if let Some(m) = &member {
                if !state.members.contains_key(m) {
                    return Err(format!("{m} is not a member of the group now; check the key and run kithd admin refuse again"));
                }
            }
            Ok(state
                .refusals
                .iter()
                .any(|r| r.node == me && r.member == member && r.reason == reason))
        })
        .map_err(|e| e.to_string())?;
    let already = match found {
        None => return Err("this node holds no such group; check the group id (64 hexadecimal characters, the id members use with kith group show) and run kithd admin refuse again".to_owned()),
        Some(checked) => checked?,
    };
    if already {
        return Ok(None);
    }
    let body = body::to_bytes(&NodeRefusal { reason, member });
    sign_in_group(node, group, NODE_REFUSAL, body)
        .map(Some)
        .map_err(|e| format!("the refusal could not be built: {e}"))
}

/// Signs an event of `kind` with the node key in `group`, citing the group's newest heads
/// (as many as an event may cite) and dated no earlier than any of them. Blocking.
fn sign_in_group(
    node: &Node,
    group: GroupId,
    kind: kith_protocol::Kind,
    body: Vec<u8>,
) -> Result<Event, String> {
    let heads = node
        .groups
        .heads(&group)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let mut dated = Vec::with_capacity(heads.len());
    for id in heads {
        let at = node
            .store
            .get_event(&id)
            .map_err(|e| e.to_string())?
            .map_or(Timestamp(0), |e| e.created_at());
        dated.push((at, id));
    }
    dated.sort_by(|a, b| b.cmp(a));
    dated.truncate(node.config.limits.max_parents.max(1));
    let at = dated.iter().map(|(at, _)| *at).fold(now(), Timestamp::max);
    EventBuilder::new(kind, at, body)
        .group(group)
        .parents(dated.into_iter().map(|(_, id)| id))
        .sign(&node.key)
        .map_err(|e| e.to_string())
}

/// Publishes this node's withdrawal of its refusal `refusal` (the id of a kind-107 event it
/// signed), with an optional `reason`, as a kind-108 event signed with the node key that
/// cites the group's latest events. Returns its id, or `None` when nothing was published:
/// the node holds no such event, it is not a refusal, another node signed it, it is not in
/// force (already withdrawn, or it had no effect), or the publish failed. Each case is
/// logged in plain words with what to do.
pub async fn withdraw(
    node: &SharedNode,
    refusal: EventId,
    reason: Option<String>,
) -> Option<EventId> {
    let prepared = {
        let node = Arc::clone(node);
        tokio::task::spawn_blocking(move || prepare_withdrawal(&node, refusal, reason)).await
    };
    let event = match prepared {
        Ok(Ok(Some(event))) => event,
        Ok(Ok(None)) => {
            tracing::info!(%refusal, "this node's refusal is no longer in force (already withdrawn, or it had no effect); nothing new to publish");
            return None;
        }
        Ok(Err(why)) => {
            tracing::warn!(%refusal, "not withdrawing the refusal: {why}. This admin request is done and changed nothing");
            return None;
        }
        Err(e) => {
            tracing::warn!(%refusal, "could not prepare the withdrawal of the refusal ({e}); run kithd admin refuse --withdraw again to retry");
            return None;
        }
    };
    match publish_own(node, &event.encode()).await {
        Ok(published) => {
            tracing::info!(event = %published.id, %refusal, "this node withdrew its refusal; the withdrawal is in the group's log, and the node hosts what the refusal covered again");
            Some(published.id)
        }
        Err(rejection) => {
            tracing::warn!(
                %refusal,
                "could not publish the withdrawal of the refusal: {}. Run kithd admin refuse --withdraw again to retry",
                rejection.message
            );
            None
        }
    }
}

/// Checks that `refusal` is a refusal this node signed, and builds and signs its withdrawal;
/// `None` if the refusal is not in force (nothing to withdraw). Blocking.
fn prepare_withdrawal(
    node: &Node,
    refusal: EventId,
    reason: Option<String>,
) -> Result<Option<Event>, String> {
    let me = node.key.public_key();
    let Some(event) = node.store.get_event(&refusal).map_err(|e| e.to_string())? else {
        return Err("this node holds no event with that id; check the id (64 hexadecimal characters: the refusal's `event` in the group's state or log) and run kithd admin refuse --withdraw again".to_owned());
    };
    if event.kind() != NODE_REFUSAL {
        return Err(format!(
            "that event is a {}, not a node refusal (kind 107); give the id of the refusal to withdraw",
            event.kind()
        ));
    }
    if event.author() != me {
        return Err(format!(
            "that refusal was announced by node {}, not by this node; only the node that signed a refusal may withdraw it",
            event.author()
        ));
    }
    let Some(group) = event.group() else {
        return Err("that refusal names no group".to_owned());
    };
    let in_force = node
        .groups
        .with_state(&group, |state| {
            state.refusals.iter().any(|r| r.event == refusal)
        })
        .map_err(|e| e.to_string())?;
    if in_force != Some(true) {
        return Ok(None);
    }
    let body = body::to_bytes(&NodeRefusalWithdrawal { refusal, reason });
    sign_in_group(node, group, NODE_REFUSAL_WITHDRAWAL, body)
        .map(Some)
        .map_err(|e| format!("the withdrawal could not be built: {e}"))
}
