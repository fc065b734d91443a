//! Property tests for groups: a group's state is a function of its set of events, whatever
//! order they arrive in, and an event's verdict never depends on arrival order.
//!
//! Each case generates a random history: a founder and three neighbours (a fixed start),
//! then a random mix of posts, invitations, joins, leaves, profiles, proposals (admit,
//! remove, grant and end roles, change rules, decide, polls), stances and outcomes, by
//! six people of whom two start outside. Joins and profiles may name a home among three
//! nodes (a node sometimes under two URLs, so homes conflict), and four nodes (one of them
//! home to nobody) announce refusals and withdraw them (mostly the refusing node, sometimes
//! another). Each event cites a random subset of the current heads (so branches are
//! concurrent), all the heads, or now and then one old event only (a backdated branch,
//! which exercises the removal horizon). Outcomes count the stances
//! of the state their parents establish, sometimes tampered with (a flipped verdict, a
//! stance left out). Every candidate is offered to a reference [`Group`]: the accepted
//! ones form the history, the refused ones (a non-member's post, a wrong outcome, a stance
//! after the close, a join without invitation...) are kept with their error.
//!
//! Then the same events go to fresh replicas in a random order with duplicates:
//! - [`Group::load`], one cold fold;
//! - repeated [`Group::insert`], putting an event back in the queue while its parents are
//!   missing, with the refused events mixed in (each must be refused with the same error as
//!   by the reference, whenever its parents are present);
//!
//! and every replica must reach the reference's digest, heads and verdicts.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use kith_protocol::group::body::{
    self, Action, GroupCreate, Invite, Join, Leave, NodeRef, NodeRefusal, NodeRefusalWithdrawal,
    Outcome, Profile, Proposal, SelfDescription, Stance, StanceKind, Verdict, Visibility,
};
use kith_protocol::group::rules::{ActionType, Method, Rules, Who};
use kith_protocol::group::{self, Group, GroupError, GroupState};
use kith_protocol::kind::PostBody;
use kith_protocol::{Event, EventBuilder, EventId, Kind, Limits, SecretKey, Timestamp};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: u64 = 1_700_000_000_000;
const SECOND: u64 = 1_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 86_400_000;
const PEOPLE: usize = 6;

// Chosen so the file runs in a few seconds in a debug build. PROPTEST_CASES overrides.
const HISTORY_CASES: u32 = 96;

fn config(cases: u32) -> ProptestConfig {
    common::proptest_config(cases, "proptest-regressions/group_properties.txt")
}

fn person(n: usize) -> SecretKey {
    let mut seed = [0x6b; 32];
    seed[0] = n as u8;
    SecretKey::from_seed(&seed)
}

/// Node `n`'s key (nodes 0 to 2 are homes; node 3 is home to nobody).
fn node(n: u8) -> SecretKey {
    let mut seed = [0x6e; 32];
    seed[0] = n;
    SecretKey::from_seed(&seed)
}

/// Home `i` (0 to 5): node `i % 3`, under one of two URLs, so that members living on the
/// same node can name it differently.
fn home(i: Option<u8>) -> Option<NodeRef> {
    i.map(|i| NodeRef {
        node: node(i % 3).public_key(),
        url: format!("https://node{}.example/v{}", i % 3, i / 3),
    })
}

/// Which events a new event cites.
#[derive(Debug, Clone)]
enum Parents {
    /// All current heads.
    All,
    /// The heads picked by a bit mask (all of them if it picks none).
    Some(u16),
    /// One old event, and the new event dated just after it: a backdated branch.
    Old(Index),
}

#[derive(Debug, Clone)]
enum Pick {
    Admit(usize),
    Remove(usize),
    Grant {
        role: bool,
        holder: usize,
        days: u64,
    },
    End {
        role: bool,
        holder: usize,
    },
    ChangeRules(u8),
    Decide,
    Poll,
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    Honest,
    FlipVerdict,
    DropStance,
}

#[derive(Debug, Clone)]
enum Op {
    Tick(u64),
    Post(usize, Parents),
    Invite(usize, u32, u64, Parents),
    Join(usize, Index, Option<u8>, Parents),
    Leave(usize, Parents),
    Profile(usize, bool, Option<u8>, Parents),
    /// A node refuses the group, or one person's events in it.
    Refuse(u8, Option<usize>, Parents),
    /// A node withdraws a refusal: by default the node that signed it, else the one named.
    Withdraw(Option<u8>, Index, Parents),
    Propose(usize, Pick, u64, Parents),
    Stance(usize, Index, StanceKind, u32, Parents),
    /// Every current member answers a proposal: agree, except those picked by the mask,
    /// who give the picked stance.
    Everyone(Index, u8, StanceKind),
    /// A whole round on an open proposal: everyone answers (as above), the clock passes
    /// the close, and someone writes an outcome (maybe tampered with).
    Round(Index, u8, StanceKind, usize, Tamper),
    Outcome(usize, Index, Tamper, Parents),
}

fn parents() -> impl Strategy<Value = Parents> {
    prop_oneof![
        4 => Just(Parents::All),
        4 => any::<u16>().prop_map(Parents::Some),
        1 => any::<Index>().prop_map(Parents::Old),
    ]
}

fn who() -> impl Strategy<Value = usize> {
    0..PEOPLE
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        2 => who().prop_map(Pick::Admit),
        2 => who().prop_map(Pick::Remove),
        1 => (any::<bool>(), who(), 1..10u64).prop_map(|(role, holder, days)| Pick::Grant { role, holder, days }),
        1 => (any::<bool>(), who()).prop_map(|(role, holder)| Pick::End { role, holder }),
        1 => (0..3u8).prop_map(Pick::ChangeRules),
        2 => Just(Pick::Decide),
        1 => Just(Pick::Poll),
    ]
}

fn stance_kind() -> impl Strategy<Value = StanceKind> {
    prop_oneof![
        6 => Just(StanceKind::Agree),
        2 => Just(StanceKind::Abstain),
        2 => Just(StanceKind::Disagree),
        1 => Just(StanceKind::Block),
    ]
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        6 => Just(Tamper::Honest),
        1 => Just(Tamper::FlipVerdict),
        1 => Just(Tamper::DropStance),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..40u64).prop_map(|h| Op::Tick(h * HOUR)),
        6 => (who(), parents()).prop_map(|(w, p)| Op::Post(w, p)),
        1 => (who(), 1..3u32, 1..48u64, parents()).prop_map(|(w, u, h, p)| Op::Invite(w, u, h * HOUR, p)),
        2 => (who(), any::<Index>(), option::of(0..6u8), parents()).prop_map(|(w, i, h, p)| Op::Join(w, i, h, p)),
        1 => (who(), parents()).prop_map(|(w, p)| Op::Leave(w, p)),
        1 => (who(), any::<bool>(), option::of(0..6u8), parents()).prop_map(|(w, q, h, p)| Op::Profile(w, q, h, p)),
        1 => (0..4u8, option::of(who()), parents()).prop_map(|(n, m, p)| Op::Refuse(n, m, p)),
        1 => (option::of(0..4u8), any::<Index>(), parents()).prop_map(|(n, i, p)| Op::Withdraw(n, i, p)),
        3 => (who(), pick(), 1..24u64, parents()).prop_map(|(w, a, h, p)| Op::Propose(w, a, h * HOUR, p)),
        6 => (who(), any::<Index>(), stance_kind(), 0..3u32, parents()).prop_map(|(w, i, k, o, p)| Op::Stance(w, i, k, o, p)),
        2 => (any::<Index>(), any::<u8>(), stance_kind()).prop_map(|(i, m, k)| Op::Everyone(i, m, k)),
        3 => (any::<Index>(), any::<u8>(), stance_kind(), who(), tamper()).prop_map(|(i, m, k, w, t)| Op::Round(i, m, k, w, t)),
        3 => (who(), any::<Index>(), tamper(), parents()).prop_map(|(w, i, t, p)| Op::Outcome(w, i, t, p)),
    ]
}

/// Rules for a history: any member may invite; ordinary matters by consent or majority.
fn base_rules(majority: bool) -> Rules {
    let mut rules = Rules {
        invite: Who::AnyMember,
        ..Rules::mutual_aid_default()
    };
    if majority {
        rules.decisions.insert(
            ActionType::Decide,
            Method::Majority {
                threshold_pct: 50,
                quorum_pct: 40,
            },
        );
    }
    rules
}

fn rules_variant(n: u8) -> Rules {
    match n {
        0 => base_rules(false),
        1 => base_rules(true),
        _ => Rules {
            facilitate: Who::RoleHolders,
            ..base_rules(false)
        },
    }
}

/// A history being generated against a reference group.
struct History {
    genesis: Event,
    reference: Group,
    accepted: Vec<Event>,
    refused: Vec<(Event, GroupError)>,
    by_id: HashMap<EventId, Event>,
    proposals: Vec<EventId>,
    vias: Vec<EventId>,
    /// Accepted refusals, with the node that signed each.
    refusals: Vec<(EventId, u8)>,
    clock: u64,
}

impl History {
    fn new(majority: bool) -> History {
        let create = GroupCreate {
            name: "Random circle".into(),
            purpose: "Property tests".into(),
            visibility: Visibility::Public,
            rules: base_rules(majority),
            founder: SelfDescription::default(),
            home: home(Some(0)),
        };
        let genesis =
            EventBuilder::new(group::GROUP_CREATE, Timestamp(T0), body::to_bytes(&create))
                .sign(&person(0))
                .unwrap();
        let reference = Group::create(genesis.clone(), Limits::default()).unwrap();
        let mut h = History {
            by_id: HashMap::from([(genesis.id(), genesis.clone())]),
            genesis,
            reference,
            accepted: Vec::new(),
            refused: Vec::new(),
            proposals: Vec::new(),
            vias: Vec::new(),
            refusals: Vec::new(),
            clock: T0 + SECOND,
        };
        // A fixed start: the founder invites, three neighbours join (each at home on a
        // node, two of them on the same node under different URLs).
        h.apply(&Op::Invite(0, 3, 30 * DAY, Parents::All));
        let invite = h.vias[0];
        for n in 1..=3 {
            let e = h.join(n, invite, home(Some(n as u8)), &Parents::All);
            h.offer(e);
        }
        assert_eq!(h.reference.state().members.len(), 4);
        h
    }

    /// The parents and time of a new event.
    fn place(&mut self, parents: &Parents) -> (Vec<EventId>, u64) {
        let heads: Vec<EventId> = self.reference.heads().iter().copied().collect();
        let chosen: Vec<EventId> = match parents {
            Parents::All => heads,
            Parents::Some(mask) => {
                let some: Vec<EventId> = heads
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << (i % 16)) != 0)
                    .map(|(_, h)| *h)
                    .take(16)
                    .collect();
                if some.is_empty() {
                    heads
                } else {
                    some
                }
            }
            Parents::Old(i) => {
                let n = self.accepted.len() + 1;
                let k = i.index(n);
                let old = if k == 0 {
                    &self.genesis
                } else {
                    &self.accepted[k - 1]
                };
                return (vec![old.id()], old.created_at().0 + 1);
            }
        };
        let latest = chosen
            .iter()
            .map(|p| self.by_id[p].created_at().0)
            .max()
            .unwrap_or(T0);
        let at = self.clock.max(latest);
        self.clock = at + SECOND;
        (chosen, at)
    }

    fn sign(&self, who: usize, kind: Kind, body: Vec<u8>, parents: &[EventId], at: u64) -> Event {
        EventBuilder::new(kind, Timestamp(at), body)
            .group(self.reference.id())
            .parents(parents.iter().copied())
            .sign(&person(who))
            .unwrap()
    }

    fn join(
        &mut self,
        who: usize,
        via: EventId,
        home: Option<NodeRef>,
        parents: &Parents,
    ) -> Event {
        let (parents, at) = self.place(parents);
        let body = body::to_bytes(&Join {
            via,
            me: SelfDescription::default(),
            home,
        });
        self.sign(who, group::JOIN, body, &parents, at)
    }

    fn stance(
        &mut self,
        who: usize,
        proposal: EventId,
        kind: StanceKind,
        option: u32,
        parents: &Parents,
    ) -> Event {
        let (parents, at) = self.place(parents);
        let poll = self
            .reference
            .state()
            .proposals
            .get(&proposal)
            .is_some_and(|s| !s.proposal.options.is_empty());
        let body = body::to_bytes(&Stance {
            proposal,
            stance: kind,
            reason: None,
            option: (poll && kind == StanceKind::Agree).then_some(option),
        });
        self.sign(who, group::STANCE, body, &parents, at)
    }

    fn everyone(&mut self, proposal: EventId, mask: u8, kind: StanceKind) {
        let members: Vec<usize> = (0..PEOPLE)
            .filter(|n| {
                self.reference
                    .state()
                    .members
                    .contains_key(&person(*n).public_key())
            })
            .collect();
        for n in members {
            let kind = if mask & (1 << n) != 0 {
                kind
            } else {
                StanceKind::Agree
            };
            let e = self.stance(n, proposal, kind, n as u32 % 3, &Parents::All);
            self.offer(e);
        }
    }

    /// An outcome counting the stances of the state its parents establish, with the
    /// verdict its tally gives, then tampered with as asked.
    fn outcome(
        &mut self,
        who: usize,
        proposal: EventId,
        tamper: Tamper,
        parents: &Parents,
    ) -> Event {
        let (parents, at) = self.place(parents);
        let causal = self.causal_state(&parents);
        let (mut counted, (mut result, option)) = match causal.proposals.get(&proposal) {
            Some(ps) => (
                causal
                    .countable(ps)
                    .values()
                    .map(|s| s.event)
                    .collect::<BTreeSet<_>>(),
                causal.tally(ps).unwrap_or((Verdict::Passed, None)),
            ),
            None => (BTreeSet::new(), (Verdict::Passed, None)),
        };
        match tamper {
            Tamper::Honest => {}
            Tamper::FlipVerdict => {
                result = match result {
                    Verdict::Passed => Verdict::Failed,
                    Verdict::Failed => Verdict::Passed,
                }
            }
            Tamper::DropStance => {
                if let Some(first) = counted.iter().next().copied() {
                    counted.remove(&first);
                }
            }
        }
        let eligible = causal
            .proposals
            .get(&proposal)
            .map_or(0, |p| causal.eligible(p) as u32);
        let body = body::to_bytes(&Outcome {
            proposal,
            counted,
            eligible,
            result,
            option,
            explanation: "tallied".into(),
        });
        self.sign(who, group::OUTCOME, body, &parents, at)
    }

    /// The state the given parents establish, computed by a cold fold of their ancestors.
    fn causal_state(&self, parents: &[EventId]) -> GroupState {
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut stack: Vec<EventId> = parents.to_vec();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(self.by_id[&id].header().parents.iter().copied());
            }
        }
        let events: Vec<Event> = seen
            .iter()
            .filter(|id| **id != self.genesis.id())
            .map(|id| self.by_id[id].clone())
            .collect();
        let (g, orphans) = Group::load(self.genesis.clone(), events, Limits::default()).unwrap();
        assert!(orphans.is_empty());
        g.state().clone()
    }

    fn apply(&mut self, op: &Op) {
        let event = match op {
            Op::Tick(ms) => {
                self.clock += ms;
                return;
            }
            Op::Post(w, p) => {
                let (parents, at) = self.place(p);
                let body = PostBody {
                    text: format!("post {} at {at}", self.accepted.len() + self.refused.len()),
                }
                .to_bytes();
                self.sign(*w, Kind::POST, body, &parents, at)
            }
            Op::Invite(w, uses, valid, p) => {
                let (parents, at) = self.place(p);
                let body = body::to_bytes(&Invite {
                    expires_at: Timestamp(at + valid),
                    uses: *uses,
                    note: None,
                });
                self.sign(*w, group::INVITE, body, &parents, at)
            }
            Op::Join(w, via, h, p) => {
                if self.vias.is_empty() {
                    return;
                }
                let via = self.vias[via.index(self.vias.len())];
                self.join(*w, via, home(*h), p)
            }
            Op::Leave(w, p) => {
                let (parents, at) = self.place(p);
                self.sign(
                    *w,
                    group::LEAVE,
                    body::to_bytes(&Leave::default()),
                    &parents,
                    at,
                )
            }
            Op::Profile(w, quiet, h, p) => {
                let (parents, at) = self.place(p);
                let body = body::to_bytes(&Profile {
                    me: SelfDescription {
                        name: Some(format!("person {w}")),
                        labels: Vec::new(),
                    },
                    quiet: *quiet,
                    home: home(*h),
                });
                self.sign(*w, group::PROFILE, body, &parents, at)
            }
            Op::Refuse(n, member, p) => {
                let (parents, at) = self.place(p);
                let body = body::to_bytes(&NodeRefusal {
                    reason: format!("node {n} is full"),
                    member: member.map(|m| person(m).public_key()),
                });
                EventBuilder::new(group::NODE_REFUSAL, Timestamp(at), body)
                    .group(self.reference.id())
                    .parents(parents.iter().copied())
                    .sign(&node(*n))
                    .unwrap()
            }
            Op::Withdraw(n, refusal, p) => {
                if self.refusals.is_empty() {
                    return;
                }
                let (refusal, signer) = self.refusals[refusal.index(self.refusals.len())];
                let (parents, at) = self.place(p);
                let body = body::to_bytes(&NodeRefusalWithdrawal {
                    refusal,
                    reason: Some(format!("node {signer} has room again")),
                });
                EventBuilder::new(group::NODE_REFUSAL_WITHDRAWAL, Timestamp(at), body)
                    .group(self.reference.id())
                    .parents(parents.iter().copied())
                    .sign(&node(n.unwrap_or(signer)))
                    .unwrap()
            }
            Op::Propose(w, pick, open, p) => {
                let (parents, at) = self.place(p);
                let role = |r: bool| if r { "welcomer" } else { "facilitator" }.to_owned();
                let action = match pick {
                    Pick::Admit(k) => Action::Admit {
                        key: person(*k).public_key(),
                    },
                    Pick::Remove(k) => Action::Remove {
                        key: person(*k).public_key(),
                    },
                    Pick::Grant {
                        role: r,
                        holder,
                        days,
                    } => Action::GrantRole {
                        role: role(*r),
                        holder: person(*holder).public_key(),
                        term_ends: Timestamp(at + days * DAY),
                    },
                    Pick::End { role: r, holder } => Action::EndRole {
                        role: role(*r),
                        holder: person(*holder).public_key(),
                    },
                    Pick::ChangeRules(n) => Action::ChangeRules {
                        rules: rules_variant(*n),
                    },
                    Pick::Decide | Pick::Poll => Action::Decide,
                };
                let options = if matches!(pick, Pick::Poll) {
                    vec!["one".into(), "two".into(), "three".into()]
                } else {
                    Vec::new()
                };
                let body = body::to_bytes(&Proposal {
                    title: format!("{pick:?}"),
                    text: "What do you all think?".into(),
                    action,
                    closes_at: Timestamp(at + open),
                    options,
                    informed_by: Vec::new(),
                });
                self.sign(*w, group::PROPOSAL, body, &parents, at)
            }
            Op::Stance(w, proposal, kind, option, p) => {
                if self.proposals.is_empty() {
                    return;
                }
                let proposal = self.proposals[proposal.index(self.proposals.len())];
                self.stance(*w, proposal, *kind, *option, p)
            }
            Op::Everyone(proposal, mask, kind) => {
                if self.proposals.is_empty() {
                    return;
                }
                let proposal = self.proposals[proposal.index(self.proposals.len())];
                self.everyone(proposal, *mask, *kind);
                return;
            }
            Op::Round(proposal, mask, kind, w, tamper) => {
                let open: Vec<EventId> = self
                    .proposals
                    .iter()
                    .filter(|p| {
                        self.reference
                            .state()
                            .proposals
                            .get(p)
                            .is_some_and(|s| s.outcome.is_none())
                    })
                    .copied()
                    .collect();
                if open.is_empty() {
                    return;
                }
                let chosen = open[proposal.index(open.len())];
                self.everyone(chosen, *mask, *kind);
                let closes = self.reference.state().proposals[&chosen]
                    .proposal
                    .closes_at
                    .0;
                self.clock = self.clock.max(closes + SECOND);
                let e = self.outcome(*w, chosen, *tamper, &Parents::All);
                self.offer(e);
                return;
            }
            Op::Outcome(w, proposal, tamper, p) => {
                if self.proposals.is_empty() {
                    return;
                }
                let proposal = self.proposals[proposal.index(self.proposals.len())];
                self.outcome(*w, proposal, *tamper, p)
            }
        };
        self.offer(event);
    }

    fn offer(&mut self, event: Event) {
        let checked = self.reference.check(&event);
        match self.reference.insert(event.clone()) {
            Ok(true) => {
                assert_eq!(checked, Ok(()), "insert accepted what check refused");
                let kind = event.kind();
                if kind == group::PROPOSAL {
                    self.proposals.push(event.id());
                }
                if kind == group::INVITE || kind == group::OUTCOME {
                    self.vias.push(event.id());
                }
                if kind == group::NODE_REFUSAL {
                    let signer = (0..4u8).find(|n| node(*n).public_key() == event.author());
                    self.refusals
                        .push((event.id(), signer.expect("one of the four nodes")));
                }
                self.by_id.insert(event.id(), event.clone());
                self.accepted.push(event);
            }
            // The same op twice on the same old parent can sign the same event twice.
            Ok(false) => assert!(self.by_id.contains_key(&event.id())),
            Err(e) => {
                assert_eq!(checked, Err(e.clone()), "check and insert disagree");
                assert!(!matches!(e, GroupError::MissingParents { .. }));
                self.refused.push((event, e));
            }
        }
    }
}

fn history() -> impl Strategy<Value = (bool, Vec<Op>, u64)> {
    (any::<bool>(), vec(op(), 10..60), any::<u64>())
}

fn build(majority: bool, ops: &[Op]) -> History {
    let mut h = History::new(majority);
    for op in ops {
        h.apply(op);
    }
    h
}

/// What a replica is given: an event that was accepted, or one that was refused and why.
#[derive(Clone)]
enum Delivery {
    Valid(Event),
    Invalid(Event, GroupError),
}

/// The accepted events, a random fifth of them again, and (if `with_refused`) the refused
/// ones, shuffled.
fn deliveries(h: &History, rng: &mut ChaCha8Rng, with_refused: bool) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = h.accepted.iter().cloned().map(Delivery::Valid).collect();
    for e in &h.accepted {
        if rng.gen_ratio(1, 5) {
            out.push(Delivery::Valid(e.clone()));
        }
    }
    if with_refused {
        out.extend(
            h.refused
                .iter()
                .cloned()
                .map(|(e, why)| Delivery::Invalid(e, why)),
        );
    }
    out.shuffle(rng);
    out
}

fn assert_same(replica: &Group, h: &History, how: &str) -> Result<(), TestCaseError> {
    let (a, b) = (replica.state(), h.reference.state());
    if a != b {
        let (ja, jb) = (
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap(),
        );
        let differ: Vec<&String> = ja
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| ja[*k] != jb[*k])
            .collect();
        return Err(TestCaseError::fail(format!(
            "{how}: the state differs from the reference in {differ:?}\n{:#?}\nvs\n{:#?}",
            differ.iter().map(|k| &ja[*k]).collect::<Vec<_>>(),
            differ.iter().map(|k| &jb[*k]).collect::<Vec<_>>(),
        )));
    }
    prop_assert_eq!(a.digest(), b.digest());
    prop_assert_eq!(
        replica.heads(),
        h.reference.heads(),
        "{}: heads differ",
        how
    );
    prop_assert_eq!(replica.len(), h.reference.len());
    Ok(())
}

/// Inserts in the given order, putting back events whose parents have not arrived yet.
/// Refused events must be refused with the reference's error as soon as they can be judged.
fn insert_with_retry(h: &History, order: Vec<Delivery>) -> Result<Group, TestCaseError> {
    let mut g = Group::create(h.genesis.clone(), Limits::default()).unwrap();
    let mut queue: VecDeque<Delivery> = order.into();
    let mut stalled = 0;
    while let Some(d) = queue.pop_front() {
        prop_assert!(
            stalled <= queue.len() + 1,
            "no progress: parents never arrive"
        );
        match &d {
            Delivery::Valid(e) => match g.insert(e.clone()) {
                Ok(_) => stalled = 0,
                Err(GroupError::MissingParents { .. }) => {
                    stalled += 1;
                    queue.push_back(d);
                }
                Err(other) => {
                    return Err(TestCaseError::fail(format!(
                        "a replica refused an event the reference accepted: {other}"
                    )))
                }
            },
            Delivery::Invalid(e, why) => match g.insert(e.clone()) {
                Err(GroupError::MissingParents { .. }) => {
                    stalled += 1;
                    queue.push_back(d);
                }
                got => {
                    stalled = 0;
                    prop_assert_eq!(
                        got,
                        Err(why.clone()),
                        "a refused event was judged differently"
                    );
                }
            },
        }
    }
    Ok(g)
}

proptest! {
    #![proptest_config(config(HISTORY_CASES))]

    #[test]
    fn every_replica_reaches_the_same_state_in_any_order((majority, ops, seed) in history()) {
        let h = build(majority, &ops);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);

        // The reference still accepts every event it holds (verdicts do not change).
        for e in &h.accepted {
            prop_assert_eq!(h.reference.check(e), Ok(()));
        }

        // One cold fold, events in a random order with duplicates.
        let delivered: Vec<Event> = deliveries(&h, &mut rng, false)
            .into_iter()
            .filter_map(|d| match d { Delivery::Valid(e) => Some(e), Delivery::Invalid(..) => None })
            .collect();
        let (loaded, orphans) = Group::load(h.genesis.clone(), delivered, Limits::default()).unwrap();
        prop_assert!(orphans.is_empty());
        assert_same(&loaded, &h, "Group::load")?;

        // One event at a time, in another random order, refused events mixed in.
        let replica = insert_with_retry(&h, deliveries(&h, &mut rng, true))?;
        assert_same(&replica, &h, "insert with retry")?;

        // Each refused event is refused the same way by every replica at the end.
        for (e, why) in &h.refused {
            prop_assert_eq!(&h.reference.check(e), &Err(why.clone()));
            prop_assert_eq!(&loaded.check(e), &Err(why.clone()));
            prop_assert_eq!(&replica.check(e), &Err(why.clone()));
        }
    }
}

/// The generator must produce the cases worth testing; if a change to it stops producing
/// them, the property above would pass without testing much.
#[test]
fn the_generator_reaches_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut concurrent, mut hidden, mut not_applied, mut removed, mut left) = (0, 0, 0, 0, 0);
    let (mut passed, mut failed, mut joined, mut refused_kinds) = (0, 0, 0, BTreeSet::new());
    let (mut moved, mut node_refusals, mut shared_node, mut withdrawn) = (0, 0, 0, 0);
    // 128 histories: removals with concurrent events are rare enough that 64 can miss them.
    for _ in 0..128 {
        let (majority, ops, _) = history().new_tree(&mut runner).unwrap().current();
        let h = build(majority, &ops);
        let s = h.reference.state();
        concurrent += usize::from(h.accepted.iter().any(|e| e.header().parents.len() > 1));
        hidden += s.hidden.len();
        not_applied += s.not_applied.len();
        removed += s
            .log
            .iter()
            .filter(|l| l.what.contains("is removed"))
            .count();
        left += s.log.iter().filter(|l| l.what.starts_with("left")).count();
        for p in s.proposals.values() {
            match p.outcome.as_ref().map(|o| o.verdict) {
                Some(Verdict::Passed) => passed += 1,
                Some(Verdict::Failed) => failed += 1,
                None => {}
            }
        }
        joined += s.members.len();
        moved += s
            .log
            .iter()
            .filter(|l| l.what.starts_with("moved their home"))
            .count();
        node_refusals += s.refusals.len();
        withdrawn += s
            .log
            .iter()
            .filter(|l| l.what.contains("withdraws its refusal"))
            .count();
        let homes = s.members.values().filter(|m| m.home.is_some()).count();
        shared_node += usize::from(s.hosts().len() < homes);
        for (_, why) in &h.refused {
            refused_kinds.insert(
                format!("{why:?}")
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    eprintln!(
        "concurrent {concurrent}, hidden {hidden}, not applied {not_applied}, removed {removed}, left {left}, \
         passed {passed}, failed {failed}, members {joined}, moved {moved}, node refusals {node_refusals}, \
         states with a shared node {shared_node}, withdrawn refusals {withdrawn}, refusals {refused_kinds:?}"
    );
    assert!(moved > 0 && node_refusals > 0 && shared_node > 0 && withdrawn > 0);
    assert!(concurrent > 10);
    assert!(hidden > 0, "no history hid anything");
    assert!(not_applied > 0);
    assert!(removed > 0 && left > 0);
    assert!(passed > 10 && failed > 5);
    for kind in [
        "NotMember",
        "TallyMismatch",
        "CountedMismatch",
        "ProposalClosed",
        "StillOpen",
        "NoInvitation",
        "AlreadyMember",
        "NotAHost",
        "NoSuchRefusal",
        "NotYourRefusal",
    ] {
        assert!(
            refused_kinds.contains(kind),
            "no {kind} refusal in {refused_kinds:?}"
        );
    }
}
