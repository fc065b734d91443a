//! Stories about groups: [`Circle`] keeps a group, a clock and the events accepted so far,
//! so a scenario test reads as a story (people found a circle, invite, propose, take
//! stances, decide, leave), and the people in those stories. Shared by `groups.rs` and
//! `group_homes.rs`.

use std::collections::BTreeSet;

use kith_protocol::group::body::{
    self, Action, GroupCreate, Invite, Join, Leave, NodeRef, Outcome, Proposal, SelfDescription,
    Stance, StanceKind, Verdict, Visibility,
};
use kith_protocol::group::rules::{Rules, Who};
use kith_protocol::group::{self, Group, GroupError, GroupState};
use kith_protocol::kind::PostBody;
use kith_protocol::{Event, EventBuilder, EventId, Kind, Limits, PublicKey, SecretKey, Timestamp};
use sha2::{Digest as _, Sha256};

/// 2023-11-14T22:13:20Z: when every story starts.
pub(crate) const T0: u64 = 1_700_000_000_000;
pub(crate) const SECOND: u64 = 1_000;
pub(crate) const HOUR: u64 = 3_600_000;
pub(crate) const DAY: u64 = 86_400_000;

/// A person: a key derived from their name.
pub(crate) fn person(name: &str) -> SecretKey {
    SecretKey::from_seed(&Sha256::digest(name.as_bytes()).into())
}

pub(crate) fn pk(key: &SecretKey) -> PublicKey {
    key.public_key()
}

pub(crate) fn post_body(text: &str) -> Vec<u8> {
    PostBody {
        text: text.to_owned(),
    }
    .to_bytes()
}

/// A group, a clock and the events accepted so far.
pub(crate) struct Circle {
    pub(crate) group: Group,
    pub(crate) genesis: Event,
    /// Every accepted event after the genesis, in the order it was accepted.
    pub(crate) events: Vec<Event>,
    /// The clock, in ms: each event written through the helper is dated `now`, and the
    /// clock then moves on a second.
    pub(crate) now: u64,
}

impl Circle {
    /// `founder` creates a group with these rules at `T0`.
    pub(crate) fn found(founder: &SecretKey, rules: Rules) -> Circle {
        Circle::found_at(founder, rules, None)
    }

    /// `founder` creates a group with these rules at `T0`, naming `home` as their home node.
    pub(crate) fn found_at(founder: &SecretKey, rules: Rules, home: Option<NodeRef>) -> Circle {
        let create = GroupCreate {
            name: "Elm Street mutual aid".into(),
            purpose: "Groceries, lifts and childcare between neighbours.".into(),
            visibility: Visibility::Private,
            rules,
            founder: SelfDescription {
                name: Some("Ada".into()),
                labels: vec!["cook".into()],
            },
            home,
        };
        let genesis =
            EventBuilder::new(group::GROUP_CREATE, Timestamp(T0), body::to_bytes(&create))
                .sign(founder)
                .unwrap();
        let group = Group::create(genesis.clone(), Limits::default()).unwrap();
        Circle {
            group,
            genesis,
            events: Vec::new(),
            now: T0 + SECOND,
        }
    }

    pub(crate) fn state(&self) -> &GroupState {
        self.group.state()
    }

    pub(crate) fn at(&self) -> Timestamp {
        Timestamp(self.now)
    }

    pub(crate) fn wait(&mut self, ms: u64) {
        self.now += ms;
    }

    pub(crate) fn heads(&self) -> Vec<EventId> {
        self.group.heads().iter().copied().collect()
    }

    pub(crate) fn is_member(&self, key: &SecretKey) -> bool {
        self.state().members.contains_key(&pk(key))
    }

    /// Signs an event citing the current heads, dated now (the clock then moves on).
    pub(crate) fn sign(&mut self, who: &SecretKey, kind: Kind, body: Vec<u8>) -> Event {
        let parents = self.heads();
        let event = self.sign_with(who, kind, body, &parents, self.now);
        self.now += SECOND;
        event
    }

    /// Signs an event with chosen parents and time (for concurrency and backdating).
    pub(crate) fn sign_with(
        &self,
        who: &SecretKey,
        kind: Kind,
        body: Vec<u8>,
        parents: &[EventId],
        at: u64,
    ) -> Event {
        EventBuilder::new(kind, Timestamp(at), body)
            .group(self.group.id())
            .parents(parents.iter().copied())
            .sign(who)
            .unwrap()
    }

    /// Offers an event: `check` and `insert` must agree, and a refusal changes nothing.
    pub(crate) fn offer(&mut self, event: Event) -> Result<Event, GroupError> {
        let checked = self.group.check(&event);
        let before = self.state().clone();
        let inserted = self.group.insert(event.clone());
        match (&checked, &inserted) {
            (Ok(()), Ok(true)) => {
                self.events.push(event.clone());
                Ok(event)
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "check and insert disagree");
                assert_eq!(self.state(), &before, "a refused event changed the state");
                Err(a.clone())
            }
            _ => panic!("check said {checked:?} but insert said {inserted:?}"),
        }
    }

    /// Writes an event that must be accepted.
    pub(crate) fn add(&mut self, who: &SecretKey, kind: Kind, body: Vec<u8>) -> Event {
        let event = self.sign(who, kind, body);
        self.offer(event).unwrap_or_else(|e| panic!("refused: {e}"))
    }

    /// Writes an event that must be refused; returns why.
    pub(crate) fn refuse(&mut self, who: &SecretKey, kind: Kind, body: Vec<u8>) -> GroupError {
        let event = self.sign(who, kind, body);
        match self.offer(event) {
            Ok(_) => panic!("accepted an event that should have been refused"),
            Err(e) => e,
        }
    }

    pub(crate) fn post(&mut self, who: &SecretKey, text: &str) -> Event {
        self.add(who, Kind::POST, post_body(text))
    }

    pub(crate) fn invite_body(&self, uses: u32, valid_for: u64) -> Vec<u8> {
        body::to_bytes(&Invite {
            expires_at: Timestamp(self.now + valid_for),
            uses,
            note: Some("Welcome, neighbour".into()),
        })
    }

    pub(crate) fn invite(&mut self, who: &SecretKey, uses: u32, valid_for: u64) -> EventId {
        let body = self.invite_body(uses, valid_for);
        self.add(who, group::INVITE, body).id()
    }

    pub(crate) fn join_body(via: EventId) -> Vec<u8> {
        body::to_bytes(&Join {
            via,
            me: SelfDescription::default(),
            home: None,
        })
    }

    pub(crate) fn join(&mut self, who: &SecretKey, via: EventId) -> Event {
        self.add(who, group::JOIN, Self::join_body(via))
    }

    pub(crate) fn leave(&mut self, who: &SecretKey, reason: Option<&str>) -> Event {
        let body = body::to_bytes(&Leave {
            reason: reason.map(str::to_owned),
        });
        self.add(who, group::LEAVE, body)
    }

    pub(crate) fn proposal_body(&self, title: &str, action: Action, open_for: u64) -> Vec<u8> {
        body::to_bytes(&Proposal {
            title: title.into(),
            text: format!("{title}: please give your stance."),
            action,
            closes_at: Timestamp(self.now + open_for),
            options: Vec::new(),
            informed_by: Vec::new(),
        })
    }

    /// Proposes `action`, open for a day.
    pub(crate) fn propose(&mut self, who: &SecretKey, title: &str, action: Action) -> EventId {
        let body = self.proposal_body(title, action, DAY);
        self.add(who, group::PROPOSAL, body).id()
    }

    pub(crate) fn stance_body(proposal: EventId, stance: StanceKind) -> Vec<u8> {
        body::to_bytes(&Stance {
            proposal,
            stance,
            reason: Some(format!("{stance:?} because I thought about it")),
            option: None,
        })
    }

    pub(crate) fn stance(
        &mut self,
        who: &SecretKey,
        proposal: EventId,
        stance: StanceKind,
    ) -> Event {
        self.add(who, group::STANCE, Self::stance_body(proposal, stance))
    }

    /// Moves the clock past the proposal's closing time.
    pub(crate) fn close(&mut self, proposal: EventId) {
        let closes = self.state().proposals[&proposal].proposal.closes_at.0;
        self.now = self.now.max(closes + SECOND);
    }

    /// The stances an outcome must count now.
    pub(crate) fn countable(&self, proposal: EventId) -> BTreeSet<EventId> {
        let state = self.state();
        let p = &state.proposals[&proposal];
        state.countable(p).values().map(|s| s.event).collect()
    }

    pub(crate) fn tally(&self, proposal: EventId) -> Option<(Verdict, Option<u32>)> {
        let state = self.state();
        state.tally(&state.proposals[&proposal])
    }

    /// An outcome body stating the eligible count the current state gives (0 for an
    /// unknown proposal).
    pub(crate) fn outcome_body(
        &self,
        proposal: EventId,
        counted: BTreeSet<EventId>,
        result: Verdict,
    ) -> Vec<u8> {
        let state = self.state();
        let eligible = state
            .proposals
            .get(&proposal)
            .map_or(0, |p| state.eligible(p) as u32);
        body::to_bytes(&Outcome {
            proposal,
            counted,
            eligible,
            result,
            option: None,
            explanation: "Counted every stance given before the close.".into(),
        })
    }

    /// Writes the honest outcome: every countable stance, the verdict the tally gives.
    pub(crate) fn decide(&mut self, who: &SecretKey, proposal: EventId) -> Event {
        let (verdict, _) = self.tally(proposal).expect("not a role-delegated decision");
        let body = self.outcome_body(proposal, self.countable(proposal), verdict);
        self.add(who, group::OUTCOME, body)
    }

    /// The whole admission story: `proposer` proposes letting `newcomer` in, every
    /// member agrees, the proposal closes, `proposer` writes the outcome, the newcomer joins.
    pub(crate) fn admit(&mut self, proposer: &SecretKey, newcomer: &SecretKey) -> Event {
        let p = self.propose(proposer, "Let them in", Action::Admit { key: pk(newcomer) });
        let voters: Vec<PublicKey> = self.state().members.keys().copied().collect();
        for voter in voters {
            let key = self.secret_of(&voter);
            self.stance(&key, p, StanceKind::Agree);
        }
        self.close(p);
        let outcome = self.decide(proposer, p);
        assert_eq!(
            self.state().admitted.get(&pk(newcomer)),
            Some(&outcome.id())
        );
        self.join(newcomer, outcome.id())
    }

    /// The secret key of a member, among the people these stories use.
    pub(crate) fn secret_of(&self, key: &PublicKey) -> SecretKey {
        PEOPLE
            .iter()
            .map(|name| person(name))
            .find(|s| s.public_key() == *key)
            .expect("one of the people in these stories")
    }

    /// A fresh node holding the same events computes the same state.
    pub(crate) fn assert_replays(&self) {
        let (loaded, orphans) =
            Group::load(self.genesis.clone(), self.events.clone(), Limits::default()).unwrap();
        assert!(orphans.is_empty());
        assert_eq!(loaded.heads(), self.group.heads());
        assert_same_state(loaded.state(), self.state());
        // In reverse order too: arrival order never matters.
        let mut reversed = self.events.clone();
        reversed.reverse();
        let (loaded, _) = Group::load(self.genesis.clone(), reversed, Limits::default()).unwrap();
        assert_eq!(loaded.state().digest(), self.state().digest());
    }
}

/// Two states are equal; if not, says which parts differ (states are long to print whole).
pub(crate) fn assert_same_state(cold: &GroupState, warm: &GroupState) {
    if cold == warm {
        assert_eq!(cold.digest(), warm.digest());
        return;
    }
    let a = serde_json::to_value(cold).unwrap();
    let b = serde_json::to_value(warm).unwrap();
    let mut report = String::new();
    for (field, value) in a.as_object().unwrap() {
        if b.get(field) != Some(value) {
            report.push_str(&format!(
                "\n--- {field}, cold fold:\n{}\n--- {field}, incremental:\n{}",
                serde_json::to_string_pretty(value).unwrap(),
                serde_json::to_string_pretty(&b[field]).unwrap()
            ));
        }
    }
    panic!("the incrementally built state differs from a cold fold of the same events:{report}");
}

pub(crate) const PEOPLE: [&str; 8] = ["ada", "bea", "cyd", "dee", "eli", "fay", "gus", "hal"];

pub(crate) fn ada() -> SecretKey {
    person("ada")
}
pub(crate) fn bea() -> SecretKey {
    person("bea")
}
pub(crate) fn cyd() -> SecretKey {
    person("cyd")
}
pub(crate) fn dee() -> SecretKey {
    person("dee")
}
pub(crate) fn eli() -> SecretKey {
    person("eli")
}
pub(crate) fn fay() -> SecretKey {
    person("fay")
}
pub(crate) fn gus() -> SecretKey {
    person("gus")
}

/// Rules like the defaults, but any member may invite (so stories can grow a circle fast).
pub(crate) fn open_rules() -> Rules {
    Rules {
        invite: Who::AnyMember,
        ..Rules::mutual_aid_default()
    }
}

/// Ada founds a circle under `rules` and four neighbours join: with her invitation if any
/// member may invite, else each admitted by a decision of those already in.
pub(crate) fn circle_of_five(rules: Rules) -> Circle {
    let mut c = Circle::found(&ada(), rules.clone());
    if rules.invite == Who::AnyMember {
        let inv = c.invite(&ada(), 4, 7 * DAY);
        for who in [bea(), cyd(), dee(), eli()] {
            c.join(&who, inv);
        }
    } else {
        for who in [bea(), cyd(), dee(), eli()] {
            c.admit(&ada(), &who);
        }
    }
    assert_eq!(c.state().members.len(), 5);
    c
}

/// Everyone agrees to new rules.
pub(crate) fn change_rules(c: &mut Circle, rules: Rules) {
    let p = c.propose(
        &ada(),
        "New rules",
        Action::ChangeRules {
            rules: rules.clone(),
        },
    );
    for who in members(c) {
        c.stance(&who, p, StanceKind::Agree);
    }
    c.close(p);
    c.decide(&ada(), p);
    assert_eq!(c.state().rules, rules);
}

pub(crate) fn members(c: &Circle) -> Vec<SecretKey> {
    c.state().members.keys().map(|k| c.secret_of(k)).collect()
}

/// Everyone but `who` agrees to remove them; `who` blocks. Returns (proposal, outcome).
pub(crate) fn remove(c: &mut Circle, who: &SecretKey) -> (EventId, Event) {
    let p = c.propose(
        &ada(),
        "Remove after repeated harassment",
        Action::Remove { key: pk(who) },
    );
    for m in members(c) {
        let stance = if pk(&m) == pk(who) {
            StanceKind::Block
        } else {
            StanceKind::Agree
        };
        c.stance(&m, p, stance);
    }
    c.close(p);
    let state = c.state();
    let proposal = &state.proposals[&p];
    assert_eq!(state.eligible(proposal), state.members.len() - 1);
    assert!(
        !state.countable(proposal).contains_key(&pk(who)),
        "cannot block their own removal"
    );
    assert_eq!(c.tally(p), Some((Verdict::Passed, None)));
    let outcome = c.decide(&bea(), p);
    (p, outcome)
}
