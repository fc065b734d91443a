//! The deterministic order of a group's events, and [`Group`]: a group's events with its
//! current state (SPEC.md §8.4–8.6).
//!
//! **Order.** Events are folded parents-first; among events whose parents are all done, the
//! one with the smallest `(created_at, id)` goes next (Kahn's algorithm with that tie-break).
//! Any two holders of the same set get the same order, so the same state.
//!
//! **Effects are re-checked in order.** Each event was allowed by the state its own parents
//! establish when it was accepted; folding the whole set, an event whose effect is no longer
//! allowed at its place in the order (a concurrent removal came first, say) is kept but has
//! no effect, and the state records why ([`GroupState::not_applied`]).
//!
//! **Removal horizon.** When a membership ends (removal or leaving) by event M, the member's
//! events that are neither ancestors nor descendants of M (written concurrently, whatever
//! time they claim) are hidden: what the group knew of them when it decided is what stays.
//! This stops a removed member from writing on by citing old parents. The hidden set is
//! computed from the endings of a first fold (and from every removal decision that passed
//! in it, even one that found the member already gone after a concurrent leave), then the
//! fold is run again without them. The log says how many events were hidden right after
//! the event that ended the membership. Node refusals (kind 107) and their withdrawals
//! (kind 108) are a node's, not a member's, and no horizon hides them.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

use super::body::{Action, Verdict};
use super::state::GroupState;
use super::GroupError;
use crate::event::{Event, EventId, GroupId, Timestamp};
use crate::kind::Kind;
use crate::validate::Limits;
use crate::PublicKey;

/// A group's events (genesis included) and its current state.
#[derive(Debug, Clone)]
pub struct Group {
    genesis: Event,
    events: HashMap<EventId, Event>,
    children: HashMap<EventId, Vec<EventId>>,
    heads: BTreeSet<EventId>,
    state: GroupState,
    limits: Limits,
    /// The sum of [`held_bytes`] over `events`.
    bytes: usize,
}

/// What one held event counts for in [`Group::bytes`].
fn held_bytes(event: &Event) -> usize {
    event.header_bytes().len() + event.signature().len() + event.body().map_or(0, <[u8]>::len)
}

impl Group {
    /// A group from its creating event.
    pub fn create(genesis: Event, limits: Limits) -> Result<Group, GroupError> {
        let state = GroupState::genesis(&genesis, &limits)?;
        let id = genesis.id();
        Ok(Group {
            events: HashMap::from([(id, genesis.clone())]),
            children: HashMap::new(),
            heads: BTreeSet::from([id]),
            bytes: held_bytes(&genesis),
            genesis,
            state,
            limits,
        })
    }

    /// A group from stored events that were each accepted before (in any order). Events
    /// whose parents are absent are left out and returned. One fold, no per-event checks:
    /// this is the cold start.
    pub fn load(
        genesis: Event,
        events: Vec<Event>,
        limits: Limits,
    ) -> Result<(Group, Vec<Event>), GroupError> {
        let mut group = Group::create(genesis, limits)?;
        let mut pending: Vec<Event> = events;
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for e in pending {
                if group.events.contains_key(&e.id()) {
                    continue;
                }
                if !e.header().parents.is_empty()
                    && e.header()
                        .parents
                        .iter()
                        .all(|p| group.events.contains_key(p))
                {
                    group.add(e);
                } else {
                    rest.push(e);
                }
            }
            pending = rest;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        group.state = group.fold_set(None);
        Ok((group, pending))
    }

    /// The group id.
    pub fn id(&self) -> GroupId {
        self.state.id
    }

    /// The current state (all events folded).
    pub fn state(&self) -> &GroupState {
        &self.state
    }

    /// The latest events: the parents a new event should cite.
    pub fn heads(&self) -> &BTreeSet<EventId> {
        &self.heads
    }

    /// Number of events, genesis included.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// The bytes of the events held (headers, signatures, and the bodies kept: every body
    /// but posts'), a measure of the group's memory for a cache to bound.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether only the genesis is held (never true: a group always has its genesis).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether an event is held.
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }

    /// Whether `event` may join this group: judged against the state its parents establish.
    pub fn check(&self, event: &Event) -> Result<(), GroupError> {
        if self.events.contains_key(&event.id()) {
            // Held already, so accepted before: inserting it again changes nothing. (Judging
            // it again would fold its whole history when it is no longer at the head.)
            return Ok(());
        }
        self.structural(event)?;
        let parents: BTreeSet<EventId> = event.header().parents.iter().copied().collect();
        if parents == self.heads {
            self.target_known(event, |id| self.events.contains_key(id))?;
            self.state.decide(event, &self.limits).map(drop)
        } else {
            let history = self.ancestors(&parents);
            self.target_known(event, |id| history.contains(id))?;
            let causal = self.fold_set(Some(&history));
            causal.decide(event, &self.limits).map(drop)
        }
    }

    /// Adds an allowed event. Returns `false` if it was already held.
    pub fn insert(&mut self, event: Event) -> Result<bool, GroupError> {
        self.insert_inner(event, true)
    }

    /// Adds an event that [`Group::check`] accepted on this group, skipping the second
    /// fold of its ancestors: the state its parents establish cannot change as other events
    /// arrive, so the earlier verdict stands. (The structure is checked again.)
    pub fn insert_checked(&mut self, event: Event) -> Result<bool, GroupError> {
        self.insert_inner(event, false)
    }

    fn insert_inner(&mut self, event: Event, judge: bool) -> Result<bool, GroupError> {
        if self.events.contains_key(&event.id()) {
            return Ok(false);
        }
        self.structural(&event)?;
        let parents: BTreeSet<EventId> = event.header().parents.iter().copied().collect();
        if parents == self.heads {
            // The event comes after everything held: it is last in the order, so the new
            // state is the old one plus this event.
            self.target_known(&event, |id| self.events.contains_key(id))?;
            let change = self.state.decide(&event, &self.limits)?;
            self.state.apply(&event, change);
            self.add(event);
        } else {
            if judge {
                let history = self.ancestors(&parents);
                self.target_known(&event, |id| history.contains(id))?;
                let causal = self.fold_set(Some(&history));
                causal.decide(&event, &self.limits)?;
            }
            self.add(event);
            self.state = self.fold_set(None);
        }
        Ok(true)
    }

    fn structural(&self, event: &Event) -> Result<(), GroupError> {
        if event.group() != Some(self.id()) {
            return Err(GroupError::WrongGroup);
        }
        let parents = &event.header().parents;
        if parents.is_empty() {
            return Err(GroupError::NoParents);
        }
        let missing: Vec<&EventId> = parents
            .iter()
            .filter(|p| !self.events.contains_key(p))
            .collect();
        if let Some(first) = missing.first() {
            return Err(GroupError::MissingParents {
                count: missing.len(),
                first: **first,
            });
        }
        let latest = parents
            .iter()
            .filter_map(|p| self.events.get(p))
            .map(Event::created_at)
            .max()
            .unwrap_or(Timestamp(0));
        if event.created_at() < latest {
            return Err(GroupError::BeforeParent);
        }
        Ok(())
    }

    /// A hide or unhide must name an event in its own history: one cannot hide what one
    /// has not seen (or what does not exist).
    fn target_known(
        &self,
        event: &Event,
        in_history: impl Fn(&EventId) -> bool,
    ) -> Result<(), GroupError> {
        if event.kind() != super::HIDE && event.kind() != super::UNHIDE {
            return Ok(());
        }
        let target = event
            .body()
            .and_then(|b| super::body::Moderate::parse(b, &self.limits).ok())
            .map(|m| m.event);
        match target {
            Some(id) if !in_history(&id) => Err(GroupError::UnknownTarget(id)),
            _ => Ok(()),
        }
    }

    fn add(&mut self, event: Event) {
        let id = event.id();
        for p in &event.header().parents {
            self.children.entry(*p).or_default().push(id);
            self.heads.remove(p);
        }
        self.heads.insert(id);
        // A post's body plays no part in the state (only its author and place do), so it
        // is not kept: a group's memory follows its headers and its group events, not
        // the length of what members write. The store keeps the whole event.
        let event = if event.kind() == Kind::POST {
            event.without_body()
        } else {
            event
        };
        self.bytes += held_bytes(&event);
        self.events.insert(id, event);
    }

    /// `ids` and all their ancestors.
    fn ancestors(&self, ids: &BTreeSet<EventId>) -> HashSet<EventId> {
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut stack: Vec<EventId> = ids.iter().copied().collect();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                if let Some(e) = self.events.get(&id) {
                    stack.extend(e.header().parents.iter().copied());
                }
            }
        }
        seen
    }

    fn descendants(&self, id: &EventId, within: &HashSet<EventId>) -> HashSet<EventId> {
        let mut seen = HashSet::new();
        let mut stack = vec![*id];
        while let Some(id) = stack.pop() {
            for c in self.children.get(&id).into_iter().flatten() {
                if within.contains(c) && seen.insert(*c) {
                    stack.push(*c);
                }
            }
        }
        seen
    }

    /// The deterministic order of a set of held events (all held events if `None`).
    fn order(&self, set: &HashSet<EventId>) -> Vec<EventId> {
        let mut waiting: HashMap<EventId, usize> = HashMap::with_capacity(set.len());
        let mut ready = BinaryHeap::new();
        for id in set {
            let e = &self.events[id];
            let n = e
                .header()
                .parents
                .iter()
                .filter(|p| set.contains(p))
                .count();
            if n == 0 {
                ready.push(Reverse((e.created_at(), *id)));
            } else {
                waiting.insert(*id, n);
            }
        }
        let mut out = Vec::with_capacity(set.len());
        while let Some(Reverse((_, id))) = ready.pop() {
            out.push(id);
            for c in self.children.get(&id).into_iter().flatten() {
                if let Some(n) = waiting.get_mut(c) {
                    *n -= 1;
                    if *n == 0 {
                        waiting.remove(c);
                        ready.push(Reverse((self.events[c].created_at(), *c)));
                    }
                }
            }
        }
        out
    }

    /// Folds a set of held events (all if `None`), applying the removal horizon.
    fn fold_set(&self, set: Option<&HashSet<EventId>>) -> GroupState {
        let all: HashSet<EventId>;
        let set = match set {
            Some(s) => s,
            None => {
                all = self.events.keys().copied().collect();
                &all
            }
        };
        let order = self.order(set);
        let first = self.fold_order(&order, &Horizon::default());
        let horizon = self.horizon(&first, set, &order);
        if horizon.hidden.is_empty() {
            return first;
        }
        self.fold_order(&order, &horizon)
    }

    fn fold_order(&self, order: &[EventId], horizon: &Horizon) -> GroupState {
        // The genesis always comes first: it is the only event without parents.
        let mut state = match GroupState::genesis(&self.genesis, &self.limits) {
            Ok(s) => s,
            Err(_) => return self.state.clone(),
        };
        for id in order {
            if *id == self.genesis.id() {
                continue;
            }
            let event = &self.events[id];
            if !horizon.hidden.contains(id) {
                match state.replay(event, &self.limits) {
                    Ok(change) => state.apply(event, change),
                    Err(e) => {
                        state.not_applied.insert(*id, e.to_string());
                    }
                }
            }
            // Said where the membership ends, not at the end of the log: an event added
            // later on the fast path must log after this line, as it does in a cold fold.
            if let Some((key, n)) = horizon.lines.get(id) {
                state.log.push(super::state::LogEntry {
                    event: *id,
                    at: event.created_at(),
                    actor: *key,
                    what: format!("{n} event(s) by {key} written alongside the end of their membership are hidden (kept, not shown)"),
                    decision: None,
                });
            }
        }
        state.hidden = horizon.hidden.clone();
        state
    }

    /// Events hidden by the removal horizon, given the endings found by a fold of `set` in
    /// `order`. Removal decisions come first: every one that passed draws a horizon, even
    /// if a concurrent leave had already ended the membership in the order (otherwise a
    /// removed member could move their horizon to a leave of their own choosing), and is
    /// never hidden by the horizon of the member it removes (who may have written it).
    /// Then each leave that ended a membership in the fold and is not hidden by a removal
    /// draws one too.
    fn horizon(&self, state: &GroupState, set: &HashSet<EventId>, order: &[EventId]) -> Horizon {
        let mut removals: Vec<(PublicKey, EventId)> = Vec::new();
        for p in state.proposals.values() {
            if let (Action::Remove { key }, Some(o)) = (&p.proposal.action, &p.outcome) {
                if o.verdict == Verdict::Passed {
                    removals.push((*key, o.event));
                }
            }
        }
        if removals.is_empty() && state.ended.is_empty() {
            return Horizon::default();
        }
        let position: HashMap<EventId, usize> =
            order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        removals.sort_by_key(|(_, end)| position.get(end).copied().unwrap_or(usize::MAX));
        // Each removal decision, and whom it removes.
        let never: HashMap<EventId, PublicKey> = removals.iter().map(|(k, e)| (*e, *k)).collect();
        // Removals, then the leaves (`ended` is in fold order; removals are already in).
        let mut endings: Vec<(PublicKey, EventId, bool)> =
            removals.iter().map(|(k, e)| (*k, *e, true)).collect();
        endings.extend(
            state
                .ended
                .iter()
                .filter(|(_, e)| !never.contains_key(e))
                .map(|(k, e)| (*k, *e, false)),
        );
        let horizon = self.draw_all(&endings, &never, order, &position);
        debug_assert!(
            set.len() > 2_000
                || horizon.hidden == self.horizon_by_walks(&endings, &never, set).hidden,
            "the removal horizon differs from its definition"
        );
        horizon
    }

    /// Draws the horizons of `endings` in turn. Whether an event is an ancestor or a
    /// descendant of an ending is read from bit sets propagated along the order, for 64
    /// endings at a time: O((events + parent links) × endings / 64), where walking the
    /// ancestors and descendants of each ending was O(events × endings).
    fn draw_all(
        &self,
        endings: &[(PublicKey, EventId, bool)],
        never: &HashMap<EventId, PublicKey>,
        order: &[EventId],
        position: &HashMap<EventId, usize>,
    ) -> Horizon {
        let mut horizon = Horizon::default();
        let keys: HashSet<PublicKey> = endings.iter().map(|(k, _, _)| *k).collect();
        let mut by_author: HashMap<PublicKey, Vec<usize>> = HashMap::new();
        let mut parents: Vec<Vec<usize>> = Vec::with_capacity(order.len());
        for (i, id) in order.iter().enumerate() {
            let e = &self.events[id];
            if keys.contains(&e.author()) && speaks_as_member(e) {
                by_author.entry(e.author()).or_default().push(i);
            }
            parents.push(
                e.header()
                    .parents
                    .iter()
                    .filter_map(|p| position.get(p).copied())
                    .collect(),
            );
        }
        for chunk in endings.chunks(64) {
            // before[i] bit j: event i is the chunk's ending j or one of its ancestors;
            // after[i] bit j: event i is ending j or one of its descendants.
            let mut before = vec![0u64; order.len()];
            let mut after = vec![0u64; order.len()];
            for (j, (_, end, _)) in chunk.iter().enumerate() {
                if let Some(&i) = position.get(end) {
                    before[i] |= 1u64 << j;
                    after[i] |= 1u64 << j;
                }
            }
            for i in 0..order.len() {
                let inherited = parents[i].iter().fold(0, |bits, p| bits | after[*p]);
                after[i] |= inherited;
            }
            for i in (0..order.len()).rev() {
                let bits = before[i];
                for p in &parents[i] {
                    before[*p] |= bits;
                }
            }
            for (j, (key, end, removal)) in chunk.iter().enumerate() {
                if !removal && horizon.hidden.contains(end) {
                    continue;
                }
                let mut n = 0;
                for &i in by_author.get(key).into_iter().flatten() {
                    let id = order[i];
                    if (before[i] | after[i]) & (1u64 << j) == 0
                        && never.get(&id) != Some(key)
                        && horizon.hidden.insert(id)
                    {
                        n += 1;
                    }
                }
                if n > 0 {
                    horizon.lines.insert(*end, (*key, n));
                }
            }
        }
        horizon
    }

    /// The horizon by its definition, walking each ending's ancestors and descendants; the
    /// debug build checks [`Group::draw_all`] against it on small groups.
    fn horizon_by_walks(
        &self,
        endings: &[(PublicKey, EventId, bool)],
        never: &HashMap<EventId, PublicKey>,
        set: &HashSet<EventId>,
    ) -> Horizon {
        let mut horizon = Horizon::default();
        for (key, end, removal) in endings {
            if !removal && horizon.hidden.contains(end) {
                continue;
            }
            let before = self.ancestors(&BTreeSet::from([*end]));
            let after = self.descendants(end, set);
            for id in set {
                if self.events[id].author() == *key
                    && speaks_as_member(&self.events[id])
                    && never.get(id) != Some(key)
                    && !before.contains(id)
                    && !after.contains(id)
                {
                    horizon.hidden.insert(*id);
                }
            }
        }
        horizon
    }
}

/// Whether an event is written by its author as a member. A node refusal (kind 107) and
/// its withdrawal (kind 108) are written by a node, which is never a member: no ending of a
/// membership hides them, even if the node's key is also the key of a member whose
/// membership ended.
fn speaks_as_member(event: &Event) -> bool {
    event.kind() != super::NODE_REFUSAL && event.kind() != super::NODE_REFUSAL_WITHDRAWAL
}

/// What the removal horizon hides, and where the log says so.
#[derive(Debug, Default)]
struct Horizon {
    /// The hidden events.
    hidden: BTreeSet<EventId>,
    /// Per ending event: whose events it hides, and how many (each counted once, at the
    /// first ending that hides it: removals in order, then leaves in order).
    lines: HashMap<EventId, (PublicKey, usize)>,
}
