//! One established link: both nodes follow the groups they share, reconcile them, fetch
//! what they lack, and push newly stored events from their outbound queues.
//!
//! At the start each side announces the groups the other may have (`fed_groups`: public
//! groups, and private groups in which the peer hosts a member, see [`super::route`]). For
//! each announced group the receiver runs a sync session as the initiator, then fetches what
//! it lacks in batches, one batch at a time (the receiver sets the pace). New events arrive
//! from the sender's durable queue (`fed_event` with a sequence number, answered by
//! `fed_ack`; the sender deletes an entry only once acknowledged). Every event received goes
//! through [`Node::ingest_from_peer`], which checks it exactly like a client's publish.
//! Events whose parents (or group) are missing wait, bounded, while their parents are
//! fetched. A peer that sends too many frames or too many bad ones is disconnected.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use kith_protocol::event::{Event, EventId, GroupId};
use kith_protocol::frame::{ErrorCode, Filter};
use kith_protocol::group::GROUP_CREATE;
use kith_protocol::sync::{self, Bound, Initiator, Item, Responder, SyncSet};
use kith_protocol::PublicKey;
use tokio::sync::broadcast;

use super::frame::*;
use super::registry::LinkedGuard;
use super::route::may_serve;
use super::wire::{Data, Wire};
use crate::groups::in_group;
use crate::node::{Node, Rejection, SharedNode};
use crate::ratelimit::Bucket;

/// The groups this node holds that `peer` may have: public ones, and private ones in which
/// it hosts a member. Blocking.
fn shared_groups(node: &Node, peer: &PublicKey) -> Result<Vec<GroupId>, crate::store::StoreError> {
    let filter = Filter {
        kinds: Some(vec![GROUP_CREATE]),
        ..Filter::default()
    };
    let creates = node.store.query(&filter, MAX_GROUPS_LISTED, usize::MAX)?;
    let mut out = Vec::new();
    for genesis in creates {
        let group = GroupId::from(genesis.id());
        if may_serve(node, &group, peer)? {
            out.push(group);
        }
    }
    Ok(out)
}

/// The sync items of a group held here that `peer` may read; empty (and `false`) for groups
/// not held or not for this peer. Blocking.
fn group_set(
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
    let events = node.store.group_events(group)?;
    let set = std::iter::once(&genesis)
        .chain(events.iter())
        .map(|e| Item::new(e.created_at(), e.id()))
        .collect();
    Ok((set, true))
}

/// An event to send to a peer; `None` if it is not stored or its record is damaged (logged:
/// a damaged record is never sent, and does not hold up the events after it).
fn readable(store: &dyn crate::store::Store, id: &EventId) -> Option<Event> {
    store.get_event(id).unwrap_or_else(|e| {
        tracing::error!(event = %id, "not sending a stored event: {e}");
        None
    })
}

/// The events of one group in `[lower, upper)`, which a sync found this node lacks
/// entirely: fetched whole, in order, without naming their ids.
#[derive(Debug, Clone, Copy)]
struct RangeFetch {
    group: GroupId,
    lower: Bound,
    upper: Bound,
}

/// The one fetch a link has in flight.
enum InFlight {
    Ids(Vec<EventId>),
    Range(RangeFetch),
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

/// What became of one event from the peer.
enum Ingested {
    Stored,
    Waiting(Box<Event>),
    Refused(Rejection),
}

/// The state of one established link.
struct Link<'a> {
    node: &'a SharedNode,
    wire: Wire,
    peer: PublicKey,
    guard: LinkedGuard<'a>,
    /// Highest queue entry sent on this link.
    sent_upto: u64,
    /// Queue entries sent or skipped and not yet acknowledged, oldest first (`true` = sent).
    unacked: VecDeque<(u64, bool)>,
    frames: Bucket,
    /// Groups the peer holds (it announced them or synced them from us).
    peer_groups: HashSet<GroupId>,
    sync_queue: VecDeque<GroupId>,
    sessions: u32,
    current: Option<(GroupId, u32, Initiator<SyncSet>)>,
    responders: HashMap<GroupId, (u32, Responder<SyncSet>)>,
    fetch_queue: VecDeque<EventId>,
    /// Ranges to fetch whole, lowest first per group.
    range_queue: VecDeque<RangeFetch>,
    requested: HashSet<EventId>,
    in_flight: Option<InFlight>,
    pending: HashMap<EventId, Vec<u8>>,
    /// For each id cited by a waiting event: the waiting events citing it.
    waiting_on: HashMap<EventId, Vec<EventId>>,
    /// While a batch of fetched events is taken: the ids waiting events cited, fetched
    /// after the batch only if it did not bring them (in a batch in `(time, id)` order, a
    /// parent written in the same millisecond often comes just after its child).
    cited_in_batch: Option<Vec<EventId>>,
    bad_frames: u32,
}

/// Runs an established link with `peer` until either side ends it or the node stops.
pub(super) async fn run_link(node: &SharedNode, wire: Wire, peer: PublicKey) {
    let mut live = node.hub.subscribe();
    let mut queued = node.federation.watch_queued();
    node.metrics.federation_links_open.fetch_add(1, Relaxed);
    let mut link = Link {
        node,
        wire,
        peer,
        guard: node.federation.linked(peer),
        sent_upto: 0,
        unacked: VecDeque::new(),
        frames: Bucket::new(FRAMES_PER_SECOND, FRAMES_BURST, Instant::now()),
        peer_groups: HashSet::new(),
        sync_queue: VecDeque::new(),
        sessions: 0,
        current: None,
        responders: HashMap::new(),
        fetch_queue: VecDeque::new(),
        range_queue: VecDeque::new(),
        requested: HashSet::new(),
        in_flight: None,
        pending: HashMap::new(),
        waiting_on: HashMap::new(),
        cited_in_batch: None,
        bad_frames: 0,
    };
    run_announced(&mut link, &mut live, &mut queued).await;
    node.metrics.federation_links_open.fetch_sub(1, Relaxed);
    tracing::info!(peer = %link.peer, "link ended");
}

async fn run_announced(
    link: &mut Link<'_>,
    live: &mut broadcast::Receiver<Arc<crate::hub::Announced>>,
    queued: &mut tokio::sync::watch::Receiver<u64>,
) {
    let node = link.node;
    let node2 = Arc::clone(node);
    let peer = link.peer;
    let ours = match node.blocking(move |_| shared_groups(&node2, &peer)).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!("could not list the groups held: {}", e.message);
            return;
        }
    };
    link.leave_backlog_to_sync().await;
    for chunk in ours.chunks(MAX_GROUPS_PER_FRAME) {
        if !link
            .wire
            .send(&FedFrame::FedGroups {
                groups: chunk.to_vec(),
            })
            .await
        {
            return;
        }
    }
    if !link.drain_outbox().await {
        return;
    }
    loop {
        if !link.drive().await {
            break;
        }
        let keep = tokio::select! {
            changed = queued.changed() => changed.is_ok() && link.drain_outbox().await,
            _ = node.shutdown.cancelled() => false,
            _ = link.guard.blocked() => false,
            data = link.wire.rx.recv() => match data {
                Some(data) => link.on_data(data).await,
                None => false,
            },
            announced = live.recv() => match announced {
                Ok(a) => link.on_announced(&a).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: reconcile every followed group again.
                    let groups: Vec<GroupId> = link.peer_groups.iter().copied().collect();
                    for g in groups {
                        link.queue_sync(g);
                    }
                    true
                }
                Err(broadcast::error::RecvError::Closed) => false,
            },
        };
        if !keep {
            break;
        }
    }
}

impl Link<'_> {
    fn queue_sync(&mut self, group: GroupId) {
        let running = self.current.as_ref().is_some_and(|(g, _, _)| *g == group);
        if !running && !self.sync_queue.contains(&group) {
            self.sync_queue.push_back(group);
        }
    }

    async fn send(&self, frame: FedFrame) -> bool {
        self.send_data(Data::Text(frame.encode())).await
    }

    async fn send_bin(&self, frame: BinFrame) -> bool {
        self.send_data(Data::Binary(frame.encode())).await
    }

    async fn send_data(&self, data: Data) -> bool {
        self.node
            .metrics
            .federation_bytes_sent
            .fetch_add(data.len() as u64, Relaxed);
        self.wire.tx.send(data).await.is_ok()
    }

    /// Sends queued events for this peer, up to [`OUTBOX_WINDOW`] unacknowledged, if this
    /// link drains the peer's queue. Each is checked again against [`may_serve`]: the group
    /// may have changed since it was queued.
    async fn drain_outbox(&mut self) -> bool {
        if !self.guard.drains() {
            return true;
        }
        loop {
            let room = OUTBOX_WINDOW.saturating_sub(self.unacked.len());
            if room == 0 {
                return true;
            }
            let node = Arc::clone(self.node);
            let (peer, after) = (self.peer, self.sent_upto);
            let entries = self
                .node
                .blocking(move |s| {
                    let mut out = Vec::new();
                    for entry in s.outbox_peek(&peer, after, room)? {
                        let event = readable(s, &entry.id);
                        let allowed = match &event {
                            Some(e) => match in_group(e) {
                                Some(g) => may_serve(&node, &g, &peer)?,
                                None => false,
                            },
                            None => false,
                        };
                        out.push((entry.seq, event.filter(|_| allowed)));
                    }
                    Ok(out)
                })
                .await;
            let entries = match entries {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(peer = %self.peer, "could not read the outbound queue: {}", e.message);
                    return true;
                }
            };
            if entries.is_empty() {
                return true;
            }
            for (seq, event) in entries {
                self.sent_upto = seq;
                match event {
                    Some(event) => {
                        self.unacked.push_back((seq, true));
                        self.node
                            .metrics
                            .federation_events_sent
                            .fetch_add(1, Relaxed);
                        let frame = BinFrame::Event {
                            event: event.encode(),
                            seq: Some(seq),
                        };
                        if !self.send_bin(frame).await {
                            return false;
                        }
                    }
                    None => self.unacked.push_back((seq, false)),
                }
            }
            self.forget_acked(None).await;
        }
    }

    /// At the start of a link, before the groups are announced: a backlog deeper than
    /// [`OUTBOX_WINDOW`] is dropped, because the peer is about to reconcile every group it
    /// is announced, which brings it all of them for the cost of the difference. Pushing
    /// them as well would send most events twice. A short queue is still pushed: it is
    /// quick, and costs at most a window of repeats.
    async fn leave_backlog_to_sync(&mut self) {
        if !self.guard.drains() {
            return;
        }
        let peer = self.peer;
        let depth = self
            .node
            .blocking(move |s| {
                Ok(s.outbox_stats()?
                    .into_iter()
                    .find(|q| q.peer == peer)
                    .map_or(0, |q| q.depth))
            })
            .await
            .unwrap_or(0);
        if depth <= OUTBOX_WINDOW as u64 {
            return;
        }
        match self
            .node
            .blocking(move |s| s.outbox_ack(&peer, u64::MAX))
            .await
        {
            Ok(()) => {
                tracing::info!(peer = %self.peer, depth, "left a backlog of queued events to reconciliation");
                self.node
                    .metrics
                    .federation_backlog_reconciled
                    .fetch_add(depth, Relaxed);
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, "could not update the outbound queue: {}", e.message)
            }
        }
    }

    /// Drops acknowledged (and leading skipped) queue entries, and deletes them from the
    /// store.
    async fn forget_acked(&mut self, acked: Option<u64>) {
        let mut upto = None;
        while let Some(&(seq, sent)) = self.unacked.front() {
            if acked.is_some_and(|a| seq <= a) || !sent {
                upto = Some(seq);
                self.unacked.pop_front();
            } else {
                break;
            }
        }
        if let Some(upto) = upto {
            let peer = self.peer;
            if let Err(e) = self.node.blocking(move |s| s.outbox_ack(&peer, upto)).await {
                tracing::warn!(peer = %self.peer, "could not update the outbound queue: {}", e.message);
            }
        }
    }

    async fn refuse(&mut self, code: ErrorCode, message: impl Into<String>) -> bool {
        self.bad_frames += 1;
        self.node.metrics.reject("federation_bad_frame");
        let ok = self
            .send(FedFrame::FedError {
                code,
                message: message.into(),
            })
            .await;
        ok && self.bad_frames <= MAX_BAD_FRAMES
    }

    /// Starts the next sync session and the next fetch when nothing is in flight.
    async fn drive(&mut self) -> bool {
        while self.current.is_none() {
            let Some(group) = self.sync_queue.pop_front() else {
                break;
            };
            let node = Arc::clone(self.node);
            let peer = self.peer;
            let Ok((set, _)) = self
                .node
                .blocking(move |_| group_set(&node, &group, &peer))
                .await
            else {
                continue;
            };
            let mut initiator = Initiator::new(set, sync::Config::default());
            self.sessions = self.sessions.wrapping_add(1);
            if let Some(msg) = initiator.poll_transmit() {
                let frame = BinFrame::Sync {
                    group,
                    session: self.sessions,
                    msg,
                };
                if !self.send_bin(frame).await {
                    return false;
                }
                self.current = Some((group, self.sessions, initiator));
            }
        }
        if self.in_flight.is_some() {
            return true;
        }
        // Ids first: they are parents (or groups) that waiting events need.
        if !self.fetch_queue.is_empty() {
            let n = self.fetch_queue.len().min(FETCH_BATCH);
            let ids: Vec<EventId> = self.fetch_queue.drain(..n).collect();
            self.in_flight = Some(InFlight::Ids(ids.clone()));
            return self.send_bin(BinFrame::Fetch { ids }).await;
        }
        if let Some(range) = self.range_queue.pop_front() {
            self.in_flight = Some(InFlight::Range(range));
            let frame = BinFrame::FetchRange {
                group: range.group,
                lower: range.lower,
                upper: range.upper,
            };
            return self.send_bin(frame).await;
        }
        true
    }

    async fn on_data(&mut self, data: Data) -> bool {
        self.node
            .metrics
            .federation_bytes_received
            .fetch_add(data.len() as u64, Relaxed);
        if !self.frames.take(Instant::now()) {
            tracing::warn!(peer = %self.peer, "a peer sent frames faster than {FRAMES_PER_SECOND}/s; closing the link");
            self.node.metrics.reject("federation_rate_limited");
            let _ = self
                .send(FedFrame::FedError {
                    code: ErrorCode::RateLimited,
                    message: "too many frames on this link; reconnect later".into(),
                })
                .await;
            return false;
        }
        if data.len() > MAX_FED_FRAME_BYTES {
            return self
                .refuse(ErrorCode::FrameTooLarge, "link frames are at most 4 MiB")
                .await;
        }
        match data {
            Data::Text(text) => self.on_text(&text).await,
            Data::Binary(bytes) => self.on_binary(&bytes).await,
        }
    }

    async fn on_binary(&mut self, bytes: &[u8]) -> bool {
        let frame = match BinFrame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.refuse(ErrorCode::BadFrame, e.to_string()).await,
        };
        match frame {
            BinFrame::Sync {
                group,
                session,
                msg,
            } => self.on_sync(group, session, &msg).await,
            BinFrame::SyncReply {
                group,
                session,
                msg,
            } => self.on_sync_reply(group, session, &msg).await,
            BinFrame::Fetch { ids } => self.on_fetch(ids).await,
            BinFrame::Events { missing, events } => self.on_events(events, missing).await,
            BinFrame::FetchRange {
                group,
                lower,
                upper,
            } => {
                self.on_fetch_range(RangeFetch {
                    group,
                    lower,
                    upper,
                })
                .await
            }
            BinFrame::RangeEvents { more, events } => self.on_range_events(events, more).await,
            BinFrame::Event { event, seq } => {
                self.node
                    .metrics
                    .federation_events_received
                    .fetch_add(1, Relaxed);
                let kept = self.take(event, None).await;
                // Handled, whatever became of it: the sender may forget it. What could not
                // be stored yet (missing parents) is fetched, or reconciled on the next link.
                match seq {
                    Some(seq) if kept => self.send(FedFrame::FedAck { seq }).await,
                    _ => kept,
                }
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> bool {
        let frame: FedFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                return self
                    .refuse(ErrorCode::BadFrame, format!("not a link frame: {e}"))
                    .await
            }
        };
        match frame {
            FedFrame::FedGroups { groups } => {
                if groups.len() > MAX_GROUPS_PER_FRAME {
                    return self
                        .refuse(ErrorCode::BadFrame, "too many groups in one frame")
                        .await;
                }
                for g in groups {
                    self.peer_groups.insert(g);
                    self.queue_sync(g);
                }
                true
            }
            FedFrame::FedAck { seq } => {
                if seq > self.sent_upto {
                    return self
                        .refuse(ErrorCode::BadFrame, "fed_ack for an event not sent")
                        .await;
                }
                self.forget_acked(Some(seq)).await;
                self.drain_outbox().await
            }
            FedFrame::FedError { code, message } => {
                tracing::info!(peer = %self.peer, ?code, "the peer refused something: {message}");
                true
            }
        }
    }

    async fn on_sync(&mut self, group: GroupId, session: u32, bytes: &[u8]) -> bool {
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

    async fn on_sync_reply(&mut self, group: GroupId, session: u32, bytes: &[u8]) -> bool {
        let matches = self
            .current
            .as_ref()
            .is_some_and(|(g, s, _)| *g == group && *s == session);
        if !matches {
            return self
                .refuse(ErrorCode::BadFrame, "no such sync session")
                .await;
        }
        let Some((_, _, mut initiator)) = self.current.take() else {
            return true;
        };
        if let Err(e) = initiator.handle_message(bytes) {
            tracing::info!(peer = %self.peer, %group, "sync failed: {e}");
            return true;
        }
        if initiator.is_done() {
            // The peer holds this group: queue our new events of it for the peer.
            let peer = self.peer;
            let _ = self
                .node
                .blocking(move |s| s.add_follower(&group, &peer))
                .await;
            let genesis = EventId::from_bytes(*group.as_bytes());
            self.range_queue
                .extend(initiator.need_ranges().iter().map(|r| RangeFetch {
                    group,
                    lower: r.lower,
                    upper: r.upper,
                }));
            let (_, need) = initiator.into_ids();
            if need.contains(&genesis) {
                self.fetch_queue.push_back(genesis);
            }
            self.fetch_queue
                .extend(need.into_iter().filter(|id| *id != genesis));
            return true;
        }
        match initiator.poll_transmit() {
            Some(next) => {
                let frame = BinFrame::Sync {
                    group,
                    session,
                    msg: next,
                };
                self.current = Some((group, session, initiator));
                self.send_bin(frame).await
            }
            None => true,
        }
    }

    async fn on_fetch(&mut self, ids: Vec<EventId>) -> bool {
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

    async fn on_fetch_range(&mut self, fetch: RangeFetch) -> bool {
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

    /// Takes the next events of the range in flight: each must be of its group and lie in
    /// it. If the peer has more, asks again from just after the last one received (so a
    /// peer that claims more but sends nothing new ends the fetch).
    async fn on_range_events(&mut self, events: Vec<Vec<u8>>, more: bool) -> bool {
        let Some(InFlight::Range(range)) = self.in_flight.take() else {
            return self
                .refuse(ErrorCode::BadFrame, "range_events without a fetch_range")
                .await;
        };
        let mut last: Option<Item> = None;
        let mut batch = Vec::with_capacity(events.len());
        for bytes in events {
            let event = match Event::decode(&bytes) {
                Ok(e) => e,
                Err(e) => {
                    if !self
                        .refuse(ErrorCode::MalformedEvent, format!("bad event: {e}"))
                        .await
                    {
                        return false;
                    }
                    continue;
                }
            };
            let item = Item::new(event.created_at(), event.id());
            if in_group(&event) != Some(range.group) || !range.lower.holds(&range.upper, &item) {
                if !self
                    .refuse(
                        ErrorCode::BadFrame,
                        "an event outside the range that was asked for",
                    )
                    .await
                {
                    return false;
                }
                continue;
            }
            last = Some(last.map_or(item, |l| l.max(item)));
            batch.push((bytes, item.id));
        }
        if !self.take_batch(batch).await {
            return false;
        }
        if let (true, Some(last)) = (more, last) {
            let lower = Bound::after(&last);
            if lower < range.upper {
                self.range_queue.push_front(RangeFetch { lower, ..range });
            }
        }
        true
    }

    async fn on_events(&mut self, events: Vec<Vec<u8>>, missing: Vec<EventId>) -> bool {
        let Some(InFlight::Ids(asked)) = self.in_flight.take() else {
            return self
                .refuse(ErrorCode::BadFrame, "fed_events without a fed_fetch")
                .await;
        };
        if events.len() > FETCH_BATCH {
            return self
                .refuse(ErrorCode::BadFrame, "more events than were asked for")
                .await;
        }
        let mut got = HashSet::new();
        let mut batch = Vec::with_capacity(events.len());
        for bytes in events {
            let id = match Event::decode(&bytes) {
                Ok(e) => e.id(),
                Err(e) => {
                    if !self
                        .refuse(ErrorCode::MalformedEvent, format!("bad event: {e}"))
                        .await
                    {
                        return false;
                    }
                    continue;
                }
            };
            if !asked.contains(&id) {
                if !self
                    .refuse(ErrorCode::BadFrame, "an event that was not asked for")
                    .await
                {
                    return false;
                }
                continue;
            }
            got.insert(id);
            batch.push((bytes, id));
        }
        if !self.take_batch(batch).await {
            return false;
        }
        if !got.is_empty() {
            // What did not fit in the answer is asked for again.
            for id in asked.into_iter().rev() {
                if !got.contains(&id) && !missing.contains(&id) {
                    self.fetch_queue.push_front(id);
                }
            }
        }
        true
    }

    /// Ingests one event from the peer, fetching its missing parents (or group) first.
    async fn take(&mut self, bytes: Vec<u8>, expected: Option<EventId>) -> bool {
        match self.ingest(&bytes, expected).await {
            Ingested::Stored => {
                if let Ok(event) = Event::decode(&bytes) {
                    self.follow_group_of(&event);
                    self.retry_waiting_on(event.id()).await;
                }
                true
            }
            Ingested::Waiting(event) => {
                self.hold(&event, bytes);
                let mut wanted: Vec<EventId> = event.header().parents.clone();
                if let Some(g) = event.group() {
                    wanted.push(EventId::from_bytes(*g.as_bytes()));
                }
                match &mut self.cited_in_batch {
                    Some(cited) => cited.extend(wanted),
                    None => self.fetch_cited(wanted),
                }
                true
            }
            // A group rule or a node refusal saying no is not the peer's fault (its view of
            // the group may differ, or this node refuses the group): answered, not counted.
            Ingested::Refused(r) if r.code == ErrorCode::NotAllowed => {
                self.send(FedFrame::FedError {
                    code: r.code,
                    message: r.message,
                })
                .await
            }
            Ingested::Refused(r) => self.refuse(r.code, r.message).await,
        }
    }

    /// Fetches ids that waiting events cite, first thing (bounded, each once per link).
    fn fetch_cited(&mut self, ids: Vec<EventId>) {
        for id in ids {
            if self.requested.len() < MAX_PARENT_FETCHES && self.requested.insert(id) {
                self.fetch_queue.push_front(id);
            }
        }
    }

    /// Takes a batch of fetched events; what they cite and the batch did not bring is
    /// fetched afterwards. `false` if the link is to close.
    async fn take_batch(&mut self, batch: Vec<(Vec<u8>, EventId)>) -> bool {
        self.cited_in_batch = Some(Vec::new());
        let mut keep = true;
        for (bytes, id) in batch {
            if !self.take(bytes, Some(id)).await {
                keep = false;
                break;
            }
        }
        let cited = self.cited_in_batch.take().unwrap_or_default();
        let still: Vec<EventId> = cited
            .into_iter()
            .filter(|id| self.waiting_on.contains_key(id))
            .collect();
        self.fetch_cited(still);
        keep
    }

    /// After storing an event of a group this link did not follow yet (a group the peer
    /// just started to share with us), reconciles the whole group, not only the event's
    /// ancestors.
    fn follow_group_of(&mut self, event: &Event) {
        if let Some(group) = in_group(event) {
            if self.peer_groups.insert(group) {
                self.queue_sync(group);
            }
        }
    }

    async fn ingest(&mut self, bytes: &[u8], expected: Option<EventId>) -> Ingested {
        match self
            .node
            .ingest_from_peer(bytes, expected, &self.peer)
            .await
        {
            Ok(_) => Ingested::Stored,
            Err(r) if matches!(r.code, ErrorCode::MissingParents | ErrorCode::UnknownGroup) => {
                match Event::decode(bytes) {
                    Ok(e) => Ingested::Waiting(Box::new(e)),
                    Err(_) => Ingested::Refused(r),
                }
            }
            Err(r) => Ingested::Refused(r),
        }
    }

    /// Keeps an event whose parents (or group) are missing until they arrive (bounded).
    fn hold(&mut self, event: &Event, bytes: Vec<u8>) {
        if self.pending.len() >= MAX_PENDING {
            return;
        }
        let id = event.id();
        self.pending.insert(id, bytes);
        let group = event.group().map(|g| EventId::from_bytes(*g.as_bytes()));
        for cited in event.header().parents.iter().copied().chain(group) {
            self.waiting_on.entry(cited).or_default().push(id);
        }
    }

    /// Stores the waiting events that cited `stored`, and in turn those citing them. Only
    /// the events waiting on something that just arrived are tried again, so a long
    /// out-of-order catch-up costs one retry per event, not one per waiting event.
    async fn retry_waiting_on(&mut self, stored: EventId) {
        let mut arrived = vec![stored];
        while let Some(id) = arrived.pop() {
            for child in self.waiting_on.remove(&id).unwrap_or_default() {
                let Some(bytes) = self.pending.remove(&child) else {
                    continue;
                };
                match self.ingest(&bytes, Some(child)).await {
                    Ingested::Stored => arrived.push(child),
                    // Still missing another parent: wait on it again.
                    Ingested::Waiting(event) => self.hold(&event, bytes),
                    Ingested::Refused(r) => {
                        tracing::info!(peer = %self.peer, event = %child, "refused an event from a peer: {}", r.message);
                    }
                }
            }
        }
    }

    /// Tells the peer about a group newly created here that it may have (a public one); the
    /// peer follows it by syncing it. Events themselves travel through the outbound queue.
    async fn on_announced(&mut self, announced: &crate::hub::Announced) -> bool {
        let event = &announced.event;
        if event.kind() != GROUP_CREATE {
            return true;
        }
        let group = GroupId::from(event.id());
        let node = Arc::clone(self.node);
        let peer = self.peer;
        let shared = self
            .node
            .blocking(move |_| may_serve(&node, &group, &peer))
            .await
            .unwrap_or(false);
        if !shared {
            return true;
        }
        self.send(FedFrame::FedGroups {
            groups: vec![group],
        })
        .await
    }
}
