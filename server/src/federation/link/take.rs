//! What a link takes from the peer: sync sessions this node starts (as initiator), the
//! events fetched by id or by range and pushed from the peer's queue, each through
//! [`Node::ingest_from_peer`]; events whose parents are missing wait, bounded, while the
//! parents are fetched (SPEC §9.16).

use super::*;

/// What became of one event from the peer.
enum Ingested {
    Stored,
    Waiting(Box<Event>),
    Refused(Rejection),
}

impl Link<'_> {
    pub(super) async fn on_sync_reply(
        &mut self,
        group: GroupId,
        session: u32,
        bytes: &[u8],
    ) -> bool {
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

    /// Takes the next events of the range in flight: each must be of its group and lie in
    /// it. If the peer has more, asks again from just after the last one received (so a
    /// peer that claims more but sends nothing new ends the fetch).
    pub(super) async fn on_range_events(&mut self, events: Vec<Vec<u8>>, more: bool) -> bool {
        let Some(InFlight::Range(range)) = self.in_flight.take() else {
            return self
                .refuse(ErrorCode::BadFrame, "range_events without a fetch_range")
                .await;
        };
        let mut last: Option<Item> = None;
        let mut batch = Vec::with_capacity(events.len());
        for bytes in events {
            let event = match self.decode_fetched(&bytes).await {
                Ok(e) => e,
                Err(true) => continue,
                Err(false) => return false,
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

    /// Decodes one event of a fetch answer; a malformed one is refused, and `Err` says
    /// whether the link stays open.
    async fn decode_fetched(&mut self, bytes: &[u8]) -> Result<Event, bool> {
        match Event::decode(bytes) {
            Ok(event) => Ok(event),
            Err(e) => Err(self
                .refuse(ErrorCode::MalformedEvent, format!("bad event: {e}"))
                .await),
        }
    }

    pub(super) async fn on_events(&mut self, events: Vec<Vec<u8>>, missing: Vec<EventId>) -> bool {
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
            let id = match self.decode_fetched(&bytes).await {
                Ok(e) => e.id(),
                Err(true) => continue,
                Err(false) => return false,
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
    pub(super) async fn take(&mut self, bytes: Vec<u8>, expected: Option<EventId>) -> bool {
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
            // Dropped, and acknowledged if it was pushed: reconcile its group again once
            // the fetches under way are done, or it would be missing until the next link.
            if let Some(group) = in_group(event) {
                self.resync.insert(group);
            }
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
}
