//! Draining the peer's outbound queue on a link: events in order, at most a window
//! unacknowledged, each checked again before it leaves; a deep backlog at link start is left
//! to reconciliation (SPEC §9.19).

use super::*;

impl Link<'_> {
    /// Sends queued events for this peer, up to [`OUTBOX_WINDOW`] unacknowledged, if this
    /// link drains the peer's queue. Each is checked again against [`may_serve`]: the group
    /// may have changed since it was queued.
    pub(super) async fn drain_outbox(&mut self) -> bool {
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
    pub(super) async fn leave_backlog_to_sync(&mut self) {
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
    pub(super) async fn forget_acked(&mut self, acked: Option<u64>) {
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
}
