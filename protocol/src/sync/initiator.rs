//! The side that starts a session and learns the differences.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;

use super::message::Writer;
use super::split::{positions, split, Piece, PieceKind};
use super::{decode_message, Bound, Config, HeldBits, Payload, SyncError, SyncStore};
use crate::EventId;

/// The smallest window (pieces per message) the initiator shrinks to after the responder
/// deferred part of a message.
const MIN_WINDOW: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A message is ready for `poll_transmit`.
    Ready,
    /// A message was sent; waiting for the answer.
    Waiting,
    /// Every range is settled.
    Done,
    /// The session ended with an error.
    Failed,
}

/// A range `[lower, upper)` in which the peer says it holds `count` items and this side
/// holds none: what an absent answer (mode 5) settles to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeedRange {
    /// The inclusive lower bound.
    pub lower: Bound,
    /// The exclusive upper bound.
    pub upper: Bound,
    /// How many items the peer says it holds there (a claim: fetch and check).
    pub count: u64,
}

/// The side that starts a reconciliation session, and at its end knows which ids it has
/// that the peer lacks ([`Initiator::have_ids`]) and which the peer has that it lacks
/// ([`Initiator::need_ids`]).
///
/// Drive it like this (the transport is the caller's):
///
/// ```
/// use kith_protocol::sync::{Config, Initiator, Item, Responder, SyncSet};
/// use kith_protocol::{EventId, Timestamp};
///
/// let item = |n: u8| Item::new(Timestamp(1_700_000_000_000 + u64::from(n)), EventId::from_bytes([n; 32]));
/// let ours: SyncSet = [item(1), item(2), item(3)].into_iter().collect();
/// let theirs: SyncSet = [item(2), item(3), item(4)].into_iter().collect();
///
/// let mut initiator = Initiator::new(&ours, Config::default());
/// let mut responder = Responder::new(&theirs, Config::default());
/// while let Some(request) = initiator.poll_transmit() {
///     // … send `request`, the peer's responder handles it and answers …
///     responder.handle_message(&request)?;
///     let answer = responder.poll_transmit().expect("a responder answers every message");
///     initiator.handle_message(&answer)?;
/// }
/// assert!(initiator.is_done());
/// assert_eq!(initiator.have_ids(), &[EventId::from_bytes([1; 32])]);
/// assert_eq!(initiator.need_ids(), &[EventId::from_bytes([4; 32])]);
/// # Ok::<(), kith_protocol::sync::SyncError>(())
/// ```
///
/// Fetching the events behind [`Initiator::need_ids`] is not part of the session: the
/// caller asks the peer for them in batches at its own pace, and validates each one.
#[derive(Debug)]
pub struct Initiator<S> {
    store: S,
    config: Config,
    state: State,
    /// Ranges to send, in increasing order, disjoint.
    pending: VecDeque<Piece>,
    /// The ranges of the last message sent, in increasing order.
    in_flight: Vec<Piece>,
    /// The most pieces to put in the next message.
    window: usize,
    /// Messages sent.
    rounds: u32,
    have: Vec<EventId>,
    need: Vec<EventId>,
    need_ranges: Vec<NeedRange>,
    have_seen: HashSet<EventId>,
    need_seen: HashSet<EventId>,
}

impl<S: SyncStore> Initiator<S> {
    /// A session over `store` (which must not change until the session ends). The first
    /// message is ready at once.
    pub fn new(store: S, config: Config) -> Initiator<S> {
        let mut first = Vec::new();
        let all = 0..store.len();
        split(
            &store,
            config.id_list_threshold(),
            Bound::MIN,
            Bound::END,
            all,
            &mut first,
        );
        Initiator {
            store,
            config,
            state: State::Ready,
            pending: first.into(),
            in_flight: Vec::new(),
            window: usize::MAX,
            rounds: 0,
            have: Vec::new(),
            need: Vec::new(),
            need_ranges: Vec::new(),
            have_seen: HashSet::new(),
            need_seen: HashSet::new(),
        }
    }

    /// The next message to send, if one is due: after [`Initiator::new`] and after each
    /// answer that leaves ranges unsettled. `None` while waiting for an answer and once
    /// the session is over.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.state != State::Ready {
            return None;
        }
        let budget = self.config.max_message_bytes();
        let mut w = Writer::new();
        self.in_flight.clear();
        while let Some(piece) = self.pending.front().copied() {
            if self.in_flight.len() >= self.window {
                break;
            }
            let mark = w.mark();
            self.write_piece(&mut w, &piece);
            // The first piece always fits (Config keeps the budget above any one piece);
            // keeping it regardless guarantees progress.
            if w.len() > budget && !self.in_flight.is_empty() {
                w.reset(mark);
                break;
            }
            self.in_flight.push(piece);
            self.pending.pop_front();
        }
        self.rounds += 1;
        self.state = State::Waiting;
        Some(w.finish())
    }

    /// Takes the peer's answer to the last message.
    ///
    /// Errors from a peer end the session ([`SyncError`]); ids found until then stay in
    /// [`Initiator::have_ids`] and [`Initiator::need_ids`]. A message that arrives when no
    /// answer is awaited is refused with [`SyncError::UnexpectedMessage`] (or
    /// [`SyncError::Finished`] after the end) and changes nothing.
    pub fn handle_message(&mut self, bytes: &[u8]) -> Result<(), SyncError> {
        match self.state {
            State::Waiting => {}
            State::Ready => return Err(SyncError::UnexpectedMessage),
            State::Done | State::Failed => return Err(SyncError::Finished),
        }
        match self.process(bytes) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// Whether the session ended with every range settled: [`Initiator::have_ids`] and
    /// [`Initiator::need_ids`] are then exactly the two differences.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Ids this side has and the peer lacks, in the order found, each once.
    pub fn have_ids(&self) -> &[EventId] {
        &self.have
    }

    /// Ids the peer has and this side lacks, in the order found, each once. They are the
    /// peer's claims: fetch them by id and validate what comes back.
    pub fn need_ids(&self) -> &[EventId] {
        &self.need
    }

    /// Ranges in which the peer holds items and this side holds none, in increasing order
    /// (the peer answered with an absent range, [`Config::with_absent_ranges`]). Their ids
    /// are in neither list: fetch each range whole, and check that what comes back lies in
    /// it.
    pub fn need_ranges(&self) -> &[NeedRange] {
        &self.need_ranges
    }

    /// Both lists, `(have, need)`, consuming the session.
    pub fn into_ids(self) -> (Vec<EventId>, Vec<EventId>) {
        (self.have, self.need)
    }

    /// Messages sent so far (each is one round trip).
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn write_piece(&self, w: &mut Writer, piece: &Piece) {
        let at = positions(&self.store, &piece.lower, &piece.upper);
        match piece.kind {
            PieceKind::Fingerprint => {
                w.fingerprint(&piece.lower, &piece.upper, &self.store.fingerprint(at))
            }
            PieceKind::IdList => {
                let ids: Vec<EventId> = self.store.items(at).map(|item| item.id).collect();
                w.id_list(&piece.lower, &piece.upper, ids.into_iter());
            }
        }
    }

    fn process(&mut self, bytes: &[u8]) -> Result<(), SyncError> {
        let message = decode_message(bytes)?;
        let threshold = self.config.id_list_threshold();
        let mut next: Vec<Piece> = Vec::new();
        let mut deferred_from: Option<Bound> = None;
        let mut lower = Bound::MIN;
        let max_pending = self.config.max_pending_ranges();
        for range in &message.ranges {
            let upper = range.upper;
            if next.len() >= max_pending {
                // No room to hold more work: drop the rest of this answer and ask again
                // about it later, exactly as if the responder had deferred it.
                deferred_from.get_or_insert(lower);
                self.requeue(&lower, &Bound::END, &mut next);
                break;
            }
            match &range.payload {
                Payload::Skip => {}
                Payload::Deferred => {
                    deferred_from.get_or_insert(lower);
                    self.requeue(&lower, &upper, &mut next);
                }
                Payload::Fingerprint(theirs) => {
                    self.asked_about(&lower, &upper)?;
                    let at = positions(&self.store, &lower, &upper);
                    if self.store.fingerprint(at.clone()) != *theirs {
                        split(&self.store, threshold, lower, upper, at, &mut next);
                    }
                }
                Payload::IdList(ids) => {
                    self.asked_about(&lower, &upper)?;
                    let at = positions(&self.store, &lower, &upper);
                    self.settle_with_list(at, ids);
                }
                Payload::Absent { count } => {
                    let asked = self.asked_about(&lower, &upper)?;
                    if asked.lower != lower
                        || asked.upper != upper
                        || asked.kind != PieceKind::IdList
                        || !positions(&self.store, &lower, &upper).is_empty()
                    {
                        return Err(SyncError::UnrequestedRange);
                    }
                    // Kept in increasing order (they are found out of order: a high range
                    // can settle while lower ones are still being split).
                    let at = self.need_ranges.partition_point(|r| r.lower < lower);
                    self.need_ranges.insert(
                        at,
                        NeedRange {
                            lower,
                            upper,
                            count: *count,
                        },
                    );
                }
                Payload::Difference { missing, held } => {
                    let asked = self.asked_about(&lower, &upper)?;
                    if asked.lower != lower
                        || asked.upper != upper
                        || asked.kind != PieceKind::IdList
                    {
                        return Err(SyncError::UnrequestedRange);
                    }
                    let at = positions(&self.store, &lower, &upper);
                    self.settle_with_difference(at, missing, held)?;
                }
            }
            lower = upper;
        }

        // Pace the next message to what the responder managed to answer this time.
        self.window = match deferred_from {
            Some(at) => {
                let answered = self.in_flight.iter().filter(|p| p.upper <= at).count();
                answered.saturating_mul(2).max(MIN_WINDOW)
            }
            None => self.window.saturating_mul(2),
        };

        // Everything in `next` lies within the last message's ranges, and everything still
        // pending lies above them, so the order holds.
        let rest = std::mem::take(&mut self.pending);
        self.pending = next.into();
        self.pending.extend(rest);
        self.in_flight.clear();
        self.coarsen();

        if self.pending.is_empty() {
            self.state = State::Done;
        } else if self.rounds >= self.config.max_rounds() {
            return Err(SyncError::TooManyRounds {
                max: self.config.max_rounds(),
            });
        } else {
            self.state = State::Ready;
        }
        Ok(())
    }

    /// The range of the last message that `[lower, upper)` lies within.
    fn asked_about(&self, lower: &Bound, upper: &Bound) -> Result<Piece, SyncError> {
        let after = self.in_flight.partition_point(|p| p.lower <= *lower);
        match after.checked_sub(1).and_then(|i| self.in_flight.get(i)) {
            Some(piece) if *upper <= piece.upper => Ok(*piece),
            _ => Err(SyncError::UnrequestedRange),
        }
    }

    /// Queues again the parts of the last message's ranges within `[lower, upper)`.
    fn requeue(&self, lower: &Bound, upper: &Bound, next: &mut Vec<Piece>) {
        for piece in &self.in_flight {
            if piece.upper > *lower && piece.lower < *upper {
                next.push(Piece {
                    lower: piece.lower.max(*lower),
                    upper: piece.upper.min(*upper),
                    kind: piece.kind,
                });
            }
        }
    }

    /// Keeps the pending queue within its limit by merging its highest ranges into one
    /// fingerprint range. Ranges settled in between are then examined again; the seen
    /// sets keep the results free of repeats.
    fn coarsen(&mut self) {
        let max = self.config.max_pending_ranges();
        if self.pending.len() <= max {
            return;
        }
        let tail = self.pending.split_off(max - 1);
        if let (Some(first), Some(last)) = (tail.front(), tail.back()) {
            self.pending.push_back(Piece {
                lower: first.lower,
                upper: last.upper,
                kind: PieceKind::Fingerprint,
            });
        }
    }

    fn settle_with_list(&mut self, at: Range<usize>, theirs: &[EventId]) {
        let theirs_set: HashSet<EventId> = theirs.iter().copied().collect();
        let mut ours = HashSet::with_capacity(at.len());
        for item in self.store.items(at) {
            ours.insert(item.id);
            if !theirs_set.contains(&item.id) && self.have_seen.insert(item.id) {
                self.have.push(item.id);
            }
        }
        for id in theirs {
            if !ours.contains(id) && self.need_seen.insert(*id) {
                self.need.push(*id);
            }
        }
    }

    fn settle_with_difference(
        &mut self,
        at: Range<usize>,
        missing: &[EventId],
        held: &HeldBits,
    ) -> Result<(), SyncError> {
        if held.len() != at.len() {
            return Err(SyncError::HeldCountMismatch {
                expected: at.len(),
                got: held.len(),
            });
        }
        let mut ours = HashSet::with_capacity(at.len());
        for (i, item) in self.store.items(at).enumerate() {
            ours.insert(item.id);
            if held.get(i) == Some(false) && self.have_seen.insert(item.id) {
                self.have.push(item.id);
            }
        }
        for id in missing {
            if !ours.contains(id) && self.need_seen.insert(*id) {
                self.need.push(*id);
            }
        }
        Ok(())
    }
}
