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
//!
//! This module runs the link (its state, the loop, dispatching frames); `serve` answers
//! the peer (groups, sync, fetches), `take` takes from it (sessions started here, fetched
//! and pushed events), and `outbox` drains the peer's outbound queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use kith_protocol::event::{Event, EventId, GroupId};
use kith_protocol::frame::ErrorCode;
use kith_protocol::group::{GROUP_CREATE, NODE_REFUSAL_WITHDRAWAL};
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

mod outbox;
mod serve;
mod take;

use serve::{group_set, shared_groups};

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
    /// Groups to reconcile again once nothing is in flight: an event of theirs was dropped
    /// because too many were waiting.
    resync: HashSet<GroupId>,
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
        resync: HashSet::new(),
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
        let idle = self.current.is_none()
            && self.sync_queue.is_empty()
            && self.in_flight.is_none()
            && self.fetch_queue.is_empty()
            && self.range_queue.is_empty();
        if idle && !self.resync.is_empty() {
            let groups: Vec<GroupId> = self.resync.drain().collect();
            tracing::info!(peer = %self.peer, groups = groups.len(), "reconciling again groups whose events were dropped while too many waited");
            self.sync_queue.extend(groups);
        }
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

    /// Tells the peer about a group newly created here that it may have (a public one); the
    /// peer follows it by syncing it. Events themselves travel through the outbound queue.
    /// When this node withdraws one of its refusals, reconciles the group again: the events
    /// it refused from the peer meanwhile were acknowledged and are not sent again.
    async fn on_announced(&mut self, announced: &crate::hub::Announced) -> bool {
        let event = &announced.event;
        if event.kind() == NODE_REFUSAL_WITHDRAWAL && event.author() == self.node.key.public_key() {
            if let Some(group) = in_group(event).filter(|g| self.peer_groups.contains(g)) {
                self.queue_sync(group);
            }
            return true;
        }
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
