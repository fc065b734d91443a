//! What a link serves the peer: the groups it may have, sync answers (this node as
//! responder), and the events it fetches by id or by range, each checked against
//! [`may_serve`] (SPEC §9.16, §9.17).

use super::*;

/// The groups this node holds that `peer` may have: public ones, and private ones in which
/// it hosts a member. Blocking.
pub(super) fn shared_groups(
    node: &Node,
    peer: &PublicKey,
) -> Result<Vec<GroupId>, crate::store::StoreError> {
    let mut out = Vec::new();
    for group in node.store.group_ids(MAX_GROUPS_LISTED)? {
        match may_serve(node, &group, peer) {
            Ok(true) => out.push(group),
            Ok(false) => {}
            // One damaged group must not keep the others from being shared.
            Err(e) => tracing::warn!(%group, "not sharing this group with a peer: {e}"),
        }
    }
    Ok(out)
}

/// The sync items of a group held here that `peer` may read; empty (and `false`) for groups
/// not held or not for this peer. Blocking.
pub(super) fn group_set(
    node: &Node,
    group: &GroupId,
    peer: &PublicKey,
) -> Result<(SyncSet, bool), crate::store::StoreError> {
    let Some(genesis) = node
        .store
        .get_event(&EventId::from_bytes(*group.as_bytes()))?
    else {
        return Ok((SyncSet::new(), false));
    };
    if genesis.kind() != GROUP_CREATE || !may_serve(node, group, peer)? {
        return Ok((SyncSet::new(), false));
    }
    // From the index only: a session needs each event's time and id, not the event.
    let items = node.store.group_items(group)?;
    let set = std::iter::once(Item::new(genesis.created_at(), genesis.id()))
        .chain(items.into_iter().map(|(time, id)| Item::new(time, id)))
        .collect();
    Ok((set, true))
}

/// A range of a group served to a peer: up to [`RANGE_BATCH`] events (and
/// [`EVENTS_REPLY_BYTES`]) from `lower` on, below `upper`, in `(time, id)` order, the creating
/// event included; and whether more remain. Blocking.
fn serve_range(
    node: &Node,
    fetch: &RangeFetch,
    peer: &PublicKey,
) -> Result<(Vec<Vec<u8>>, bool), crate::store::StoreError> {
    let genesis_id = EventId::from_bytes(*fetch.group.as_bytes());
    let Some(genesis) = readable(&*node.store, &genesis_id) else {
        return Ok((Vec::new(), false));
    };
    if genesis.kind() != GROUP_CREATE || !may_serve(node, &fetch.group, peer)? {
        return Ok((Vec::new(), false));
    }
    let (time, prefix) = match fetch.lower.time() {
        Some(time) => (time, fetch.lower.prefix()),
        None => return Ok((Vec::new(), false)),
    };
    let mut id = [0u8; 32];
    id[..prefix.len()].copy_from_slice(prefix);
    // One more than a batch, to learn whether more remain.
    let mut events = node
        .store
        .group_events_from(&fetch.group, time, &id, RANGE_BATCH + 1)?;
    let item = |e: &Event| Item::new(e.created_at(), e.id());
    if fetch.lower.holds(&fetch.upper, &item(&genesis)) {
        let at = events.partition_point(|e| item(e) < item(&genesis));
        events.insert(at, genesis);
    }
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut more = false;
    for event in events {
        if !fetch.upper.is_above(&item(&event)) {
            break;
        }
        let encoded = event.encode();
        if out.len() >= RANGE_BATCH
            || (!out.is_empty() && bytes + encoded.len() > EVENTS_REPLY_BYTES)
        {
            more = true;
            break;
        }
        bytes += encoded.len();
        out.push(encoded);
    }
    Ok((out, more))
}

impl Link<'_> {
    pub(super) async fn on_sync(&mut self, group: GroupId, session: u32, bytes: &[u8]) -> bool {
        if self
            .responders
            .get(&group)
            .is_none_or(|(s, _)| *s != session)
        {
            if self.responders.len() >= MAX_RESPONDERS {
                self.responders.clear();
            }
            let node = Arc::clone(self.node);
            let peer = self.peer;
            let Ok((set, held)) = self
                .node
                .blocking(move |s| {
                    let found = group_set(&node, &group, &peer)?;
                    if found.1 {
                        // The peer follows this group now: queue its new events for it.
                        s.add_follower(&group, &peer)?;
                    }
                    Ok(found)
                })
                .await
            else {
                return self
                    .refuse(ErrorCode::Internal, "could not read the group")
                    .await;
            };
            if held {
                self.peer_groups.insert(group);
            }
            self.responders.insert(
                group,
                (session, Responder::new(set, sync::Config::default())),
            );
        }
        let Some((_, responder)) = self.responders.get_mut(&group) else {
            return true;
        };
        if let Err(e) = responder.handle_message(bytes) {
            self.responders.remove(&group);
            return self
                .refuse(ErrorCode::BadFrame, format!("sync failed: {e}"))
                .await;
        }
        match responder.poll_transmit() {
            Some(answer) => {
                self.send_bin(BinFrame::SyncReply {
                    group,
                    session,
                    msg: answer,
                })
                .await
            }
            None => true,
        }
    }

    pub(super) async fn on_fetch(&mut self, ids: Vec<EventId>) -> bool {
        if ids.len() > FETCH_BATCH {
            return self
                .refuse(ErrorCode::BadFrame, "too many ids in one fed_fetch")
                .await;
        }
        let node = Arc::clone(self.node);
        let peer = self.peer;
        let found = self
            .node
            .blocking(move |s| {
                let mut events = Vec::new();
                let mut missing = Vec::new();
                let mut bytes = 0;
                for id in ids {
                    let served = match readable(s, &id) {
                        Some(e) => match in_group(&e) {
                            Some(g) if may_serve(&node, &g, &peer)? => Some(e),
                            _ => None,
                        },
                        None => None,
                    };
                    match served {
                        Some(e) => {
                            let encoded = e.encode();
                            if !events.is_empty() && bytes + encoded.len() > EVENTS_REPLY_BYTES {
                                // Not sent, not missing: the peer asks again.
                                continue;
                            }
                            bytes += encoded.len();
                            events.push(encoded);
                        }
                        None => missing.push(id),
                    }
                }
                Ok((events, missing))
            })
            .await;
        match found {
            Ok((events, missing)) => self.send_bin(BinFrame::Events { missing, events }).await,
            Err(e) => self.refuse(e.code, e.message).await,
        }
    }

    pub(super) async fn on_fetch_range(&mut self, fetch: RangeFetch) -> bool {
        let node = Arc::clone(self.node);
        let peer = self.peer;
        let found = self
            .node
            .blocking(move |_| serve_range(&node, &fetch, &peer))
            .await;
        match found {
            Ok((events, more)) => self.send_bin(BinFrame::RangeEvents { more, events }).await,
            Err(e) => self.refuse(e.code, e.message).await,
        }
    }
}
