//! The side that answers: it keeps nothing between messages but a round count.

use std::collections::HashSet;

use super::message::{difference_len, id_list_len, Writer, MAX_BOUND_LEN};
use super::split::{positions, split, Piece, PieceKind};
use super::varint::MAX_VARINT_LEN;
use super::{decode_message, Bound, Config, HeldBits, Message, Payload, SyncError, SyncStore};
use crate::EventId;

/// Room kept free in every answer for the closing deferred range: a skip range over any
/// gap, then the deferred range, each a bound and a mode byte.
const DEFERRED_RESERVE: usize = 2 * (MAX_BOUND_LEN + 1);

/// The side that answers an [`Initiator`](super::Initiator)'s messages. It learns nothing
/// itself (the initiator does); to find what *it* lacks, a node runs its own initiator.
///
/// Each call to [`Responder::handle_message`] is followed by exactly one answer from
/// [`Responder::poll_transmit`], to be sent back. Between messages it keeps only a count of
/// rounds, so the session needs no other state on this side. The responder never knows
/// when the session is over: the initiator simply stops sending.
#[derive(Debug)]
pub struct Responder<S> {
    store: S,
    config: Config,
    answer: Option<Vec<u8>>,
    rounds: u32,
    failed: bool,
}

impl<S: SyncStore> Responder<S> {
    /// A responder over `store` (which must not change until the session ends).
    pub fn new(store: S, config: Config) -> Responder<S> {
        Responder {
            store,
            config,
            answer: None,
            rounds: 0,
            failed: false,
        }
    }

    /// Takes one message from the initiator and prepares the answer.
    ///
    /// A message of another version is answered with the one-byte message naming the
    /// version this node speaks ([`Message::version_answer`]), and the session stays open
    /// so the peer can start again in that version. Any other malformed or hostile message
    /// ends the session with an error, as does going past [`Config::max_rounds`].
    pub fn handle_message(&mut self, bytes: &[u8]) -> Result<(), SyncError> {
        if self.failed {
            return Err(SyncError::Finished);
        }
        if self.answer.is_some() {
            return Err(SyncError::UnexpectedMessage);
        }
        self.rounds += 1;
        let result = if self.rounds > self.config.max_rounds() {
            Err(SyncError::TooManyRounds {
                max: self.config.max_rounds(),
            })
        } else {
            match decode_message(bytes) {
                Ok(message) => self.answer_message(&message),
                Err(SyncError::UnsupportedVersion { .. }) => Ok(Message::version_answer()),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(answer) => {
                self.answer = Some(answer);
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// The answer to the last message handled, once.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.answer.take()
    }

    /// Messages handled so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn answer_message(&self, message: &Message) -> Result<Vec<u8>, SyncError> {
        let budget = self.config.max_message_bytes();
        let threshold = self.config.id_list_threshold();
        let mut w = Writer::new();
        let last_upper = match message.ranges.last() {
            Some(range) => range.upper,
            None => return Ok(w.finish()),
        };
        let mut pieces: Vec<Piece> = Vec::new();
        let mut lower = Bound::MIN;
        for range in &message.ranges {
            let upper = range.upper;
            let room = if upper == last_upper {
                budget
            } else {
                budget.saturating_sub(DEFERRED_RESERVE)
            };
            let mark = w.mark();
            match &range.payload {
                Payload::Skip => {}
                Payload::Fingerprint(theirs) => {
                    let at = positions(&self.store, &lower, &upper);
                    if self.store.fingerprint(at.clone()) != *theirs {
                        pieces.clear();
                        split(&self.store, threshold, lower, upper, at, &mut pieces);
                        for piece in &pieces {
                            self.write_piece(&mut w, piece);
                        }
                    }
                    if w.len() > room {
                        w.reset(mark);
                        w.deferred(&lower, &last_upper);
                        break;
                    }
                }
                Payload::IdList(theirs) if theirs.is_empty() && self.config.absent_ranges() => {
                    // They hold nothing here: say how much we hold, not which, and let them
                    // fetch the range.
                    let count = positions(&self.store, &lower, &upper).len();
                    if count > 0 {
                        let mark = w.mark();
                        w.absent(&lower, &upper, count as u64);
                        if w.len() > room {
                            w.reset(mark);
                            w.deferred(&lower, &last_upper);
                            break;
                        }
                    }
                }
                Payload::IdList(theirs) => {
                    if let Some(from) = self.answer_id_list(&mut w, &lower, &upper, theirs, room) {
                        w.deferred(&from, &last_upper);
                        break;
                    }
                }
                Payload::Difference { .. } | Payload::Deferred | Payload::Absent { .. } => {
                    return Err(SyncError::UnexpectedMode {
                        mode: range.payload.mode(),
                    })
                }
            }
            lower = upper;
        }
        Ok(w.finish())
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

    /// Answers the initiator's id list for `[lower, upper)`: nothing if the two lists are
    /// equal, else a difference or this side's whole id list, whichever is shorter, and
    /// returns `None`. If neither fits in `room`, writes as much of this side's id list as
    /// fits (as the complete list of a shorter range starting at `lower`) and returns where
    /// the unanswered rest starts.
    fn answer_id_list(
        &self,
        w: &mut Writer,
        lower: &Bound,
        upper: &Bound,
        theirs: &[EventId],
        room: usize,
    ) -> Option<Bound> {
        let at = positions(&self.store, lower, upper);
        let ours: Vec<_> = self.store.items(at).collect();
        let ours_set: HashSet<EventId> = ours.iter().map(|item| item.id).collect();
        let theirs_set: HashSet<EventId> = theirs.iter().copied().collect();
        let missing: Vec<EventId> = ours
            .iter()
            .map(|item| item.id)
            .filter(|id| !theirs_set.contains(id))
            .collect();
        let held: HeldBits = theirs.iter().map(|id| ours_set.contains(id)).collect();
        if missing.is_empty() && held.all() {
            return None;
        }

        let mark = w.mark();
        if difference_len(missing.len(), held.len()) <= id_list_len(ours.len()) {
            w.difference(lower, upper, &missing, &held);
        } else {
            w.id_list(lower, upper, ours.iter().map(|item| item.id));
        }
        if w.len() <= room {
            return None;
        }
        w.reset(mark);

        // Too big: send the first `fit` of our ids as the complete list of a shorter
        // range, cut just above the last of them. Room is kept for a skip over any gap,
        // the list's own bound, its count, and the deferred range that follows.
        let overhead = 3 * (MAX_BOUND_LEN + 1) + MAX_VARINT_LEN;
        let fit = room.saturating_sub(w.len() + overhead) / 32;
        if fit > 0 && fit < ours.len() {
            let cut = Bound::between(&ours[fit - 1], &ours[fit]);
            w.id_list(lower, &cut, ours[..fit].iter().map(|item| item.id));
            return Some(cut);
        }
        Some(*lower)
    }
}
