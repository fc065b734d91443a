//! A group's state and the rules for each event: [`GroupState::decide`] says whether an
//! event is allowed against a state (and what it changes), [`GroupState::apply`] makes the
//! change. Deciding never mutates, so a refused event leaves no trace.
//!
//! Time inside a group is the events' own `created_at`: a role is usable while the acting
//! event's time is before the term's end, an invitation until its expiry, a stance until the
//! proposal closes. There is no node clock here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::body::{
    Action, GroupCreate, Invite, Join, Leave, Moderate, NodeRef, NodeRefusal,
    NodeRefusalWithdrawal, Outcome, Profile, Proposal, SelfDescription, Stance, StanceKind,
    Verdict, Visibility,
};
use super::rules::{Method, Power, Rules, Who};
use super::GroupError;
use crate::event::{Event, EventId, GroupId, Timestamp};
use crate::kind::{Kind, PostBody};
use crate::validate::Limits;
use crate::PublicKey;

/// A member, as they chose to present themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// When they joined.
    pub since: Timestamp,
    /// The event that let them in (invite or admission outcome; the group for the founder).
    pub via: EventId,
    /// Their self-description.
    pub me: SelfDescription,
    /// Left out of "not heard from lately" lists.
    pub quiet: bool,
    /// The time of their latest event in the group.
    pub last_heard: Timestamp,
    /// Their home node, if they named one (when they joined, or later by a profile).
    pub home: Option<NodeRef>,
}

/// One person holding one role until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// When the term ends on its own.
    pub term_ends: Timestamp,
    /// The outcome that granted (or last renewed) it.
    pub granted_by: EventId,
}

/// An open invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteState {
    /// Who wrote it.
    pub author: PublicKey,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Uses left.
    pub uses_left: u32,
}

/// A stance as counted: the member's latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StanceRecord {
    /// The stance event.
    pub event: EventId,
    /// When it was given.
    pub at: Timestamp,
    /// The position.
    pub stance: StanceKind,
    /// Their reason.
    pub reason: Option<String>,
    /// Poll option.
    pub option: Option<u32>,
}

/// A recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// The outcome event.
    pub event: EventId,
    /// Who wrote it.
    pub author: PublicKey,
    /// Passed or failed.
    pub verdict: Verdict,
    /// Winning poll option.
    pub option: Option<u32>,
    /// The explanation.
    pub explanation: String,
    /// Whether its effect was applied, and if not, why.
    pub effect: String,
    /// Stances given before the close that this outcome did not count (written alongside
    /// it, or dated back): they do not change the decision, and they are shown.
    pub uncounted: BTreeSet<EventId>,
}

/// A proposal and the stances on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalState {
    /// Who proposed it.
    pub author: PublicKey,
    /// When.
    pub at: Timestamp,
    /// The proposal as written.
    pub proposal: Proposal,
    /// The method, fixed when proposed.
    pub method: Method,
    /// Each member's latest stance.
    pub stances: BTreeMap<PublicKey, StanceRecord>,
    /// Every stance given, by event, with its author: what an outcome's `counted` names.
    pub given: BTreeMap<EventId, (PublicKey, StanceRecord)>,
    /// The outcome, once written.
    pub outcome: Option<OutcomeRecord>,
}

/// An event hidden pending review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderation {
    /// Who hid it.
    pub by: PublicKey,
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: String,
    /// The hiding event.
    pub event: EventId,
}

/// A node's refusal to host the group, or one member's events in it (kind 107).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The refusing node (the event's author).
    pub node: PublicKey,
    /// The member whose events it will not host; `None` for the whole group.
    pub member: Option<PublicKey>,
    /// Why, in the node's words.
    pub reason: String,
    /// The refusal event.
    pub event: EventId,
    /// When (the event's time).
    pub at: Timestamp,
}

/// One line of the accountability log: a use of power, who, when, under which decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The event that did it.
    pub event: EventId,
    /// When (the event's time).
    pub at: Timestamp,
    /// Who acted.
    pub actor: PublicKey,
    /// What happened, in plain words.
    pub what: String,
    /// The proposal whose outcome authorised it, if any.
    pub decision: Option<EventId>,
}

/// The state of a group: a pure function of its events (see [`super::fold`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// The group id.
    pub id: GroupId,
    /// Its name.
    pub name: String,
    /// Its purpose.
    pub purpose: String,
    /// Who may read.
    pub visibility: Visibility,
    /// Its rules now.
    pub rules: Rules,
    /// When it was created.
    pub created_at: Timestamp,
    /// Members, by key.
    pub members: BTreeMap<PublicKey, Member>,
    /// Role holdings: role label → holder → term.
    pub roles: BTreeMap<String, BTreeMap<PublicKey, Holding>>,
    /// Invitations with uses left.
    pub invites: BTreeMap<EventId, InviteState>,
    /// Keys admitted by decision who have not joined yet → the admitting outcome.
    pub admitted: BTreeMap<PublicKey, EventId>,
    /// Proposals, open and closed.
    pub proposals: BTreeMap<EventId, ProposalState>,
    /// The accountability log, in the group's event order.
    pub log: Vec<LogEntry>,
    /// Memberships that ended (removal or leaving): who, and the event that ended it.
    pub ended: Vec<(PublicKey, EventId)>,
    /// Events kept in the store but without effect, with the reason (in event order).
    pub not_applied: BTreeMap<EventId, String>,
    /// Events hidden by the removal horizon (SPEC.md §8.5).
    pub hidden: BTreeSet<EventId>,
    /// Events hidden by a holder of the hide power while they are reviewed, with who, when
    /// and why. They stay stored; clients do not show them.
    pub moderated: BTreeMap<EventId, Moderation>,
    /// Keys removed by decision: they can come back only through an `admit` decision, not
    /// with an invitation.
    pub removed: BTreeSet<PublicKey>,
    /// Node refusals in force (not withdrawn), in event order.
    #[serde(default)]
    pub refusals: Vec<Refusal>,
    /// The members who have a home, in the order their homes were last set in the fold
    /// (earliest first): where two members name the same node with different URLs,
    /// [`GroupState::hosts`] takes the later one. Serialised with the state (so a state
    /// read back gives the same hosts), but not for callers to change.
    #[serde(default)]
    home_order: Vec<PublicKey>,
}

/// What an allowed event changes.
#[derive(Debug, Clone)]
pub enum Change {
    /// A post or other content: only "last heard" changes.
    Content,
    /// A new invitation.
    Invite(Invite),
    /// A join, by invitation or admission.
    Join(Join),
    /// A member leaves.
    Leave(Leave),
    /// A member's new self-description.
    Profile(Profile),
    /// A new proposal, with the method in force.
    Proposal(Proposal, Method),
    /// A stance.
    Stance(Stance),
    /// An outcome (already checked against the tally).
    Outcome(Outcome),
    /// A stance given before the close that the proposal's outcome did not count.
    UncountedStance(Stance),
    /// Hide (true) or show again (false) an event.
    Moderate(Moderate, bool),
    /// A node refuses to host the group, or one member's events in it.
    Refusal(NodeRefusal),
    /// A node withdraws one of its refusals.
    RefusalWithdrawal(NodeRefusalWithdrawal),
}

const DAY_MS: u64 = 86_400_000;

impl GroupState {
    /// The state right after the creating event (which must be kind 100 without a group).
    pub fn genesis(event: &Event, limits: &Limits) -> Result<GroupState, GroupError> {
        // A group starts from nothing: a creating event that cited parents would have
        // ancestors outside the group, which no fold could order.
        if event.kind() != super::GROUP_CREATE
            || event.group().is_some()
            || !event.header().parents.is_empty()
        {
            return Err(GroupError::NotGenesis);
        }
        let body = event.body().ok_or(GroupError::BodyMissing)?;
        let create = GroupCreate::parse(body, limits).map_err(GroupError::Body)?;
        let founder = event.author();
        let at = event.created_at();
        let id = GroupId::from(event.id());
        let mut members = BTreeMap::new();
        members.insert(
            founder,
            Member {
                since: at,
                via: event.id(),
                me: create.founder.clone(),
                quiet: false,
                last_heard: at,
                home: create.home.clone(),
            },
        );
        let home_order = if create.home.is_some() {
            vec![founder]
        } else {
            Vec::new()
        };
        Ok(GroupState {
            id,
            name: create.name.clone(),
            purpose: create.purpose,
            visibility: create.visibility,
            rules: create.rules,
            created_at: at,
            members,
            roles: BTreeMap::new(),
            invites: BTreeMap::new(),
            admitted: BTreeMap::new(),
            proposals: BTreeMap::new(),
            log: vec![LogEntry {
                event: event.id(),
                at,
                actor: founder,
                what: format!("created the group '{}'", create.name),
                decision: None,
            }],
            ended: Vec::new(),
            not_applied: BTreeMap::new(),
            hidden: BTreeSet::new(),
            moderated: BTreeMap::new(),
            removed: BTreeSet::new(),
            refusals: Vec::new(),
            home_order,
        })
    }

    /// SHA-256 of the state's canonical JSON: equal for anyone holding the same events.
    pub fn digest(&self) -> [u8; 32] {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(bytes).into()
    }

    /// Whether `key` holds a role with `power` at time `at`.
    pub fn has_power(&self, key: &PublicKey, power: Power, at: Timestamp) -> bool {
        self.roles.iter().any(|(label, holders)| {
            self.rules
                .roles
                .get(label)
                .is_some_and(|r| r.powers.contains(&power))
                && holders.get(key).is_some_and(|h| at < h.term_ends)
        })
    }

    /// Whether any member holds a role with `power` at time `at`.
    pub fn anyone_has_power(&self, power: Power, at: Timestamp) -> bool {
        self.members.keys().any(|k| self.has_power(k, power, at))
    }

    /// Whether `key` holds the role `label` at time `at`.
    pub fn holds(&self, key: &PublicKey, label: &str, at: Timestamp) -> bool {
        self.roles
            .get(label)
            .and_then(|h| h.get(key))
            .is_some_and(|h| at < h.term_ends)
    }

    /// The nodes hosting current members: node key → URL, from members' homes. Where
    /// members name the same node with different URLs, the URL of the member whose home was
    /// set latest in the fold wins.
    pub fn hosts(&self) -> BTreeMap<PublicKey, String> {
        let mut hosts = BTreeMap::new();
        for key in &self.home_order {
            if let Some(home) = self.members.get(key).and_then(|m| m.home.as_ref()) {
                hosts.insert(home.node, home.url.clone());
            }
        }
        hosts
    }

    /// Records that `key`'s home was just set (or cleared): it moves to the end of the
    /// order [`GroupState::hosts`] reads.
    fn home_set(&mut self, key: PublicKey) {
        self.home_order.retain(|k| *k != key);
        if self.members.get(&key).is_some_and(|m| m.home.is_some()) {
            self.home_order.push(key);
        }
    }

    fn member(&self, key: &PublicKey) -> Result<&Member, GroupError> {
        self.members.get(key).ok_or(GroupError::NotMember(*key))
    }

    /// Whether `event` is allowed in this state, and what it would change. Never mutates.
    pub fn decide(&self, event: &Event, limits: &Limits) -> Result<Change, GroupError> {
        self.judge(event, limits, true)
    }

    /// Like [`GroupState::decide`], for an event being replayed in the fold rather than
    /// offered new: an outcome is then checked against the stances it names, not against
    /// every stance now known (a stance signed later and dated back must not reopen a
    /// decision the group has made).
    pub fn replay(&self, event: &Event, limits: &Limits) -> Result<Change, GroupError> {
        self.judge(event, limits, false)
    }

    fn judge(&self, event: &Event, limits: &Limits, strict: bool) -> Result<Change, GroupError> {
        let author = event.author();
        let at = event.created_at();
        let kind = event.kind();
        if kind == Kind::POST {
            // A post changes no state, so once accepted its body is not needed to replay it
            // (a `Group` keeps posts without their bodies); a post offered new needs one.
            match event.body() {
                Some(body) => {
                    PostBody::parse(body, limits).map_err(GroupError::Body)?;
                }
                None if !strict => {}
                None => return Err(GroupError::BodyMissing),
            }
            self.member(&author)?;
            return Ok(Change::Content);
        }
        let body = event.body().ok_or(GroupError::BodyMissing)?;
        let body_err = GroupError::Body;
        match kind {
            super::INVITE => {
                let invite = Invite::parse(body, limits).map_err(body_err)?;
                self.member(&author)?;
                if self.rules.invite == Who::RoleHolders
                    && !self.has_power(&author, Power::Invite, at)
                {
                    return Err(GroupError::NoPower {
                        key: author,
                        power: Power::Invite,
                    });
                }
                if invite.expires_at <= at {
                    return Err(GroupError::AlreadyExpired);
                }
                Ok(Change::Invite(invite))
            }
            super::JOIN => {
                let join = Join::parse(body, limits).map_err(body_err)?;
                if self.members.contains_key(&author) {
                    return Err(GroupError::AlreadyMember(author));
                }
                if let Some(invite) = self.invites.get(&join.via) {
                    if self.removed.contains(&author) {
                        return Err(GroupError::RemovedByDecision(author));
                    }
                    if invite.expires_at < at {
                        return Err(GroupError::InviteExpired);
                    }
                    if invite.uses_left == 0 {
                        return Err(GroupError::InviteUsedUp);
                    }
                } else if self.admitted.get(&author) != Some(&join.via) {
                    return Err(GroupError::NoInvitation);
                }
                Ok(Change::Join(join))
            }
            super::LEAVE => {
                let leave = Leave::parse(body, limits).map_err(body_err)?;
                self.member(&author)?;
                Ok(Change::Leave(leave))
            }
            super::PROFILE => {
                let profile = Profile::parse(body, limits).map_err(body_err)?;
                self.member(&author)?;
                Ok(Change::Profile(profile))
            }
            super::PROPOSAL => {
                let proposal = Proposal::parse(body, limits).map_err(body_err)?;
                self.member(&author)?;
                if proposal.closes_at <= at {
                    return Err(GroupError::ClosesInThePast);
                }
                self.check_action(&proposal.action, at)?;
                let method = self
                    .rules
                    .method(proposal.action.action_type())
                    .cloned()
                    .ok_or(GroupError::NoMethod)?;
                Ok(Change::Proposal(proposal, method))
            }
            super::STANCE => {
                let stance = Stance::parse(body, limits).map_err(body_err)?;
                self.member(&author)?;
                let p = self
                    .proposals
                    .get(&stance.proposal)
                    .ok_or(GroupError::UnknownProposal(stance.proposal))?;
                if at > p.proposal.closes_at {
                    return Err(GroupError::ProposalClosed(stance.proposal));
                }
                if p.outcome.is_some() {
                    // Replayed, a stance dated before the close that its proposal's outcome
                    // did not count (written concurrently with it, or dated back) does not
                    // reopen the decision, but it is not silent either: it is recorded on
                    // the outcome as uncounted. A new stance on a decided proposal is late.
                    if strict {
                        return Err(GroupError::ProposalClosed(stance.proposal));
                    }
                    return Ok(Change::UncountedStance(stance));
                }
                let options = p.proposal.options.len();
                match stance.option {
                    None if options > 0 && stance.stance == StanceKind::Agree => {
                        return Err(GroupError::OptionNeeded)
                    }
                    Some(_) if options == 0 => return Err(GroupError::NotAPoll),
                    Some(i) if i as usize >= options => return Err(GroupError::NoSuchOption(i)),
                    _ => {}
                }
                Ok(Change::Stance(stance))
            }
            super::OUTCOME => {
                let outcome = Outcome::parse(body, limits).map_err(body_err)?;
                self.member(&author)?;
                self.check_outcome(&outcome, author, at, strict)?;
                Ok(Change::Outcome(outcome))
            }
            super::HIDE | super::UNHIDE => {
                let moderate = Moderate::parse(body, limits).map_err(body_err)?;
                self.member(&author)?;
                if !self.has_power(&author, Power::Hide, at) {
                    return Err(GroupError::NoPower {
                        key: author,
                        power: Power::Hide,
                    });
                }
                if kind == super::UNHIDE && !self.moderated.contains_key(&moderate.event) {
                    return Err(GroupError::NotHidden(moderate.event));
                }
                Ok(Change::Moderate(moderate, kind == super::HIDE))
            }
            super::NODE_REFUSAL => {
                // The author is a node, not a member: it may speak here only as the home of
                // a member, and only about a current member.
                let refusal = NodeRefusal::parse(body, limits).map_err(body_err)?;
                if !self.hosts().contains_key(&author) {
                    return Err(GroupError::NotAHost(author));
                }
                if let Some(member) = &refusal.member {
                    self.member(member)?;
                }
                Ok(Change::Refusal(refusal))
            }
            super::NODE_REFUSAL_WITHDRAWAL => {
                // Only the node that signed a refusal takes it back, and only a refusal in
                // force. The node need not be a host any more: it may always say that it no
                // longer refuses.
                let withdrawal = NodeRefusalWithdrawal::parse(body, limits).map_err(body_err)?;
                let refusal = self
                    .refusals
                    .iter()
                    .find(|r| r.event == withdrawal.refusal)
                    .ok_or(GroupError::NoSuchRefusal(withdrawal.refusal))?;
                if refusal.node != author {
                    return Err(GroupError::NotYourRefusal {
                        refusal: refusal.event,
                        node: refusal.node,
                    });
                }
                Ok(Change::RefusalWithdrawal(withdrawal))
            }
            other => Err(GroupError::NotAGroupKind(other)),
        }
    }

    fn check_action(&self, action: &Action, at: Timestamp) -> Result<(), GroupError> {
        match action {
            Action::Admit { key } if self.members.contains_key(key) => {
                Err(GroupError::AlreadyMember(*key))
            }
            Action::Remove { key } => self.member(key).map(drop),
            Action::GrantRole {
                role,
                holder,
                term_ends,
            } => {
                let def = self
                    .rules
                    .roles
                    .get(role)
                    .ok_or_else(|| GroupError::UnknownRole(role.clone()))?;
                self.member(holder)?;
                let longest = at.plus_millis(u64::from(def.max_term_days) * DAY_MS);
                if *term_ends <= at || *term_ends > longest {
                    return Err(GroupError::TermOutOfRange {
                        role: role.clone(),
                        max_days: def.max_term_days,
                    });
                }
                Ok(())
            }
            Action::EndRole { role, holder } => {
                if self.roles.get(role).is_some_and(|h| h.contains_key(holder)) {
                    Ok(())
                } else {
                    Err(GroupError::NotHolding {
                        role: role.clone(),
                        key: *holder,
                    })
                }
            }
            _ => Ok(()),
        }
    }

    /// The stances an outcome must count: the latest stance of every eligible member.
    /// The member a removal proposal is about is not eligible: they can speak, but cannot
    /// block their own removal.
    pub fn countable<'p>(
        &self,
        proposal: &'p ProposalState,
    ) -> BTreeMap<PublicKey, &'p StanceRecord> {
        proposal
            .stances
            .iter()
            .filter(|(k, _)| self.is_eligible(k, proposal))
            .map(|(k, s)| (*k, s))
            .collect()
    }

    /// Members whose voice counts on this proposal (the denominator of the quorum): those
    /// who are members now and already were when it closed (someone who joined later could
    /// never have given a stance), except the member a removal is about.
    pub fn eligible(&self, proposal: &ProposalState) -> usize {
        self.members
            .iter()
            .filter(|(k, m)| m.since <= proposal.proposal.closes_at && !Self::excluded(k, proposal))
            .count()
    }

    fn is_eligible(&self, key: &PublicKey, proposal: &ProposalState) -> bool {
        !Self::excluded(key, proposal)
            && self
                .members
                .get(key)
                .is_some_and(|m| m.since <= proposal.proposal.closes_at)
    }

    fn excluded(key: &PublicKey, proposal: &ProposalState) -> bool {
        matches!(&proposal.proposal.action, Action::Remove { key: removed } if removed == key)
    }

    /// What the current stances give under the proposal's method: the verdict and, for a
    /// poll, the winning option. `None` for role-delegated decisions (the holder decides).
    /// This is what a new outcome must say.
    pub fn tally(&self, proposal: &ProposalState) -> Option<(Verdict, Option<u32>)> {
        let counted: Vec<&StanceRecord> = self.countable(proposal).into_values().collect();
        tally_stances(proposal, &counted, self.eligible(proposal) as u64)
    }

    fn check_outcome(
        &self,
        outcome: &Outcome,
        author: PublicKey,
        at: Timestamp,
        strict: bool,
    ) -> Result<(), GroupError> {
        let id = outcome.proposal;
        let p = self
            .proposals
            .get(&id)
            .ok_or(GroupError::UnknownProposal(id))?;
        if p.outcome.is_some() {
            return Err(GroupError::AlreadyDecided(id));
        }
        if at < p.proposal.closes_at {
            return Err(GroupError::StillOpen {
                proposal: id,
                closes_at: p.proposal.closes_at,
            });
        }
        match &p.method {
            Method::Role { role } if !self.holds(&author, role, at) => {
                return Err(GroupError::NotHolding {
                    role: role.clone(),
                    key: author,
                });
            }
            Method::Role { .. } => {}
            // With facilitation delegated, a non-holder may still write the outcome when
            // nobody holds the power at that time: otherwise a group whose facilitators'
            // terms all ended could never decide again, not even to choose new ones.
            _ if self.rules.facilitate == Who::RoleHolders
                && !self.has_power(&author, Power::Facilitate, at)
                && self.anyone_has_power(Power::Facilitate, at) =>
            {
                return Err(GroupError::NoPower {
                    key: author,
                    power: Power::Facilitate,
                });
            }
            _ => {}
        }
        if strict {
            // A new outcome must count exactly the stances its author has seen.
            let expected: BTreeSet<EventId> = self.countable(p).values().map(|s| s.event).collect();
            if expected != outcome.counted || outcome.eligible as usize != self.eligible(p) {
                return Err(GroupError::CountedMismatch {
                    missing: expected.difference(&outcome.counted).count(),
                    extra: outcome.counted.difference(&expected).count(),
                });
            }
        }
        // Replayed or new, the verdict must follow from the stances it names (one per
        // member, each a stance on this proposal) and the eligible count it states.
        let mut authors = BTreeSet::new();
        let mut counted = Vec::with_capacity(outcome.counted.len());
        for id in &outcome.counted {
            match p.given.get(id) {
                Some((author, record)) if authors.insert(*author) => counted.push(record),
                _ => {
                    return Err(GroupError::CountedMismatch {
                        missing: 0,
                        extra: 1,
                    })
                }
            }
        }
        if let Some((verdict, option)) = tally_stances(p, &counted, u64::from(outcome.eligible)) {
            if verdict != outcome.result || option != outcome.option {
                return Err(GroupError::TallyMismatch {
                    claimed: format!("{:?} {:?}", outcome.result, outcome.option),
                    tally: format!("{verdict:?} {option:?}"),
                });
            }
        }
        Ok(())
    }

    /// Applies an allowed change (from [`GroupState::decide`] on this same state).
    pub fn apply(&mut self, event: &Event, change: Change) {
        let author = event.author();
        let at = event.created_at();
        let id = event.id();
        // A refusal (or its withdrawal) is written by a node: it is not a member's voice,
        // even if the node's key happens to be a member's too.
        if !matches!(change, Change::Refusal(_) | Change::RefusalWithdrawal(_)) {
            if let Some(m) = self.members.get_mut(&author) {
                m.last_heard = m.last_heard.max(at);
            }
        }
        let log = |s: &mut GroupState, what: String, decision: Option<EventId>| {
            s.log.push(LogEntry {
                event: id,
                at,
                actor: author,
                what,
                decision,
            });
        };
        match change {
            Change::Content => {}
            Change::Invite(invite) => {
                let uses = invite.uses;
                self.invites.insert(
                    id,
                    InviteState {
                        author,
                        expires_at: invite.expires_at,
                        uses_left: uses,
                    },
                );
                log(
                    self,
                    format!("wrote an invitation for up to {uses} people"),
                    None,
                );
            }
            Change::Join(join) => {
                let how = if let Some(inv) = self.invites.get_mut(&join.via) {
                    inv.uses_left -= 1;
                    let inviter = inv.author;
                    format!("joined with an invitation from {inviter}")
                } else {
                    self.admitted.remove(&author);
                    "joined, admitted by decision".to_owned()
                };
                self.members.insert(
                    author,
                    Member {
                        since: at,
                        via: join.via,
                        me: join.me,
                        quiet: false,
                        last_heard: at,
                        home: join.home,
                    },
                );
                self.home_set(author);
                log(self, how, None);
            }
            Change::Leave(leave) => {
                self.end_membership(author, id);
                let why = leave.reason.map(|r| format!(": {r}")).unwrap_or_default();
                log(self, format!("left the group{why}"), None);
            }
            Change::Profile(profile) => {
                let mut moved = None;
                if let Some(m) = self.members.get_mut(&author) {
                    m.me = profile.me;
                    m.quiet = profile.quiet;
                    // Without a home the profile leaves it as it was; naming the same home
                    // again changes nothing.
                    if let Some(home) = profile.home {
                        if m.home.as_ref() != Some(&home) {
                            m.home = Some(home.clone());
                            moved = Some(home);
                        }
                    }
                }
                if let Some(home) = moved {
                    self.home_set(author);
                    log(
                        self,
                        format!("moved their home to node {} ({})", home.node, home.url),
                        None,
                    );
                }
            }
            Change::Proposal(proposal, method) => {
                let title = proposal.title.clone();
                self.proposals.insert(
                    id,
                    ProposalState {
                        author,
                        at,
                        proposal,
                        method,
                        stances: BTreeMap::new(),
                        given: BTreeMap::new(),
                        outcome: None,
                    },
                );
                log(self, format!("proposed '{title}'"), None);
            }
            Change::Stance(stance) => {
                if let Some(p) = self.proposals.get_mut(&stance.proposal) {
                    let record = StanceRecord {
                        event: id,
                        at,
                        stance: stance.stance,
                        reason: stance.reason,
                        option: stance.option,
                    };
                    p.given.insert(id, (author, record.clone()));
                    let newer = p
                        .stances
                        .get(&author)
                        .is_none_or(|old| (old.at, old.event) < (at, id));
                    if newer {
                        p.stances.insert(author, record);
                    }
                }
            }
            Change::Outcome(outcome) => self.apply_outcome(event, outcome),
            Change::UncountedStance(stance) => {
                let Some(p) = self.proposals.get_mut(&stance.proposal) else {
                    return;
                };
                let title = p.proposal.title.clone();
                let record = StanceRecord {
                    event: id,
                    at,
                    stance: stance.stance,
                    reason: stance.reason,
                    option: stance.option,
                };
                p.given.insert(id, (author, record));
                if let Some(o) = p.outcome.as_mut() {
                    o.uncounted.insert(id);
                }
                log(
                    self,
                    format!("gave a stance on '{title}' dated before its close that its outcome did not count"),
                    Some(stance.proposal),
                );
            }
            Change::Moderate(moderate, hide) => {
                let target = moderate.event;
                let what = if hide {
                    self.moderated.insert(
                        target,
                        Moderation {
                            by: author,
                            at,
                            reason: moderate.reason.clone(),
                            event: id,
                        },
                    );
                    format!("hid event {target} pending review: {}", moderate.reason)
                } else {
                    self.moderated.remove(&target);
                    format!("showed event {target} again: {}", moderate.reason)
                };
                log(self, what, None);
            }
            Change::Refusal(refusal) => {
                let what = match &refusal.member {
                    Some(member) => format!(
                        "node {author} refuses to host the events of member {member} in this group: {}",
                        refusal.reason
                    ),
                    None => format!("node {author} refuses to host this group: {}", refusal.reason),
                };
                self.refusals.push(Refusal {
                    node: author,
                    member: refusal.member,
                    reason: refusal.reason,
                    event: id,
                    at,
                });
                log(self, what, None);
            }
            Change::RefusalWithdrawal(withdrawal) => {
                let Some(at) = self
                    .refusals
                    .iter()
                    .position(|r| r.event == withdrawal.refusal)
                else {
                    return;
                };
                let refusal = self.refusals.remove(at);
                let refused = match &refusal.member {
                    Some(member) => {
                        format!("to host the events of member {member} in this group")
                    }
                    None => "to host this group".to_owned(),
                };
                let why = withdrawal
                    .reason
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                log(
                    self,
                    format!(
                        "node {author} withdraws its refusal {refused} (event {}){why}",
                        refusal.event
                    ),
                    None,
                );
            }
        }
    }

    fn end_membership(&mut self, key: PublicKey, by: EventId) {
        self.members.remove(&key);
        self.home_order.retain(|k| *k != key);
        for holders in self.roles.values_mut() {
            holders.remove(&key);
        }
        self.roles.retain(|_, h| !h.is_empty());
        self.ended.push((key, by));
    }

    fn apply_outcome(&mut self, event: &Event, outcome: Outcome) {
        let id = event.id();
        let Some(p) = self.proposals.get(&outcome.proposal).cloned() else {
            return;
        };
        let uncounted: BTreeSet<EventId> = self
            .proposals
            .get(&outcome.proposal)
            .map(|p| {
                self.countable(p)
                    .values()
                    .map(|s| s.event)
                    .filter(|e| !outcome.counted.contains(e))
                    .collect()
            })
            .unwrap_or_default();
        let title = p.proposal.title.clone();
        let effect = if outcome.result == Verdict::Passed {
            self.apply_action(&p.proposal.action, event, outcome.proposal)
        } else {
            "failed; nothing changes".to_owned()
        };
        let not_counted = if uncounted.is_empty() {
            String::new()
        } else {
            format!(
                " ({} stance(s) given before the close were not counted)",
                uncounted.len()
            )
        };
        self.log.push(LogEntry {
            event: id,
            at: event.created_at(),
            actor: event.author(),
            what: format!("wrote the outcome of '{title}': {effect}{not_counted}"),
            decision: Some(outcome.proposal),
        });
        if let Some(p) = self.proposals.get_mut(&outcome.proposal) {
            p.outcome = Some(OutcomeRecord {
                uncounted,
                event: id,
                author: event.author(),
                verdict: outcome.result,
                option: outcome.option,
                explanation: outcome.explanation,
                effect,
            });
        }
    }

    /// Carries out a passed proposal's action, re-checking it against the state now (a
    /// concurrent change may have made it moot); returns what happened in plain words.
    fn apply_action(&mut self, action: &Action, event: &Event, proposal: EventId) -> String {
        let id = event.id();
        let _ = proposal;
        match action {
            Action::Admit { key } => {
                if self.members.contains_key(key) {
                    return format!("passed, but {key} is already a member");
                }
                self.admitted.insert(*key, id);
                self.removed.remove(key);
                format!("passed: {key} may now join")
            }
            Action::Remove { key } => {
                // Whatever happened meanwhile, the decision stands: no way back in but
                // another decision, and the invitations they wrote are withdrawn.
                self.removed.insert(*key);
                self.admitted.remove(key);
                let mut withdrawn = 0;
                for invite in self.invites.values_mut() {
                    if invite.author == *key && invite.uses_left > 0 {
                        invite.uses_left = 0;
                        withdrawn += 1;
                    }
                }
                let also = if withdrawn > 0 {
                    format!("; {withdrawn} invitation(s) they wrote are withdrawn")
                } else {
                    String::new()
                };
                if !self.members.contains_key(key) {
                    return format!("passed, but {key} is no longer a member{also}");
                }
                self.end_membership(*key, id);
                format!("passed: {key} is removed from the group{also}")
            }
            Action::GrantRole {
                role,
                holder,
                term_ends,
            } => {
                if !self.members.contains_key(holder) || !self.rules.roles.contains_key(role) {
                    return format!("passed, but {holder} is no longer a member or the role '{role}' no longer exists");
                }
                let holders = self.roles.entry(role.clone()).or_default();
                let renewed = holders.contains_key(holder);
                holders.insert(
                    *holder,
                    Holding {
                        term_ends: *term_ends,
                        granted_by: id,
                    },
                );
                let verb = if renewed { "renewed" } else { "granted" };
                format!(
                    "passed: role '{role}' {verb} to {holder} until {} ms",
                    term_ends.0
                )
            }
            Action::EndRole { role, holder } => {
                let removed = self
                    .roles
                    .get_mut(role)
                    .and_then(|h| h.remove(holder))
                    .is_some();
                self.roles.retain(|_, h| !h.is_empty());
                if removed {
                    format!("passed: {holder} no longer holds the role '{role}'")
                } else {
                    format!("passed, but {holder} no longer held the role '{role}'")
                }
            }
            Action::ChangeRules { rules } => {
                self.rules = rules.clone();
                let rules = &self.rules;
                self.roles
                    .retain(|label, _| rules.roles.contains_key(label));
                "passed: the group's rules are changed".to_owned()
            }
            Action::Decide => "passed: the decision is recorded".to_owned(),
        }
    }

    /// Members who have not yet given a stance on an open proposal ("who isn't here?").
    pub fn missing_voices(&self, proposal: &EventId) -> Vec<PublicKey> {
        let Some(p) = self.proposals.get(proposal) else {
            return Vec::new();
        };
        self.members
            .keys()
            .filter(|k| !p.stances.contains_key(k))
            .copied()
            .collect()
    }

    /// Members not heard from since `since`, except those who opted out.
    pub fn not_heard_since(&self, since: Timestamp) -> Vec<PublicKey> {
        self.members
            .iter()
            .filter(|(_, m)| !m.quiet && m.last_heard < since)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Role holdings whose term has ended by `now` (they no longer give any power), as
    /// accountability-log lines.
    pub fn expired_roles(&self, now: Timestamp) -> Vec<LogEntry> {
        let mut out = Vec::new();
        for (label, holders) in &self.roles {
            for (key, h) in holders {
                if h.term_ends <= now {
                    out.push(LogEntry {
                        event: h.granted_by,
                        at: h.term_ends,
                        actor: *key,
                        what: format!(
                            "the role '{label}' held by {key} expired at the end of its term"
                        ),
                        decision: None,
                    });
                }
            }
        }
        out.sort_by_key(|e| e.at);
        out
    }
}

/// The verdict (and poll winner) that `counted` stances give under the proposal's method,
/// with `eligible` voices in the quorum's denominator. `None` for role-delegated decisions.
fn tally_stances(
    proposal: &ProposalState,
    counted: &[&StanceRecord],
    eligible: u64,
) -> Option<(Verdict, Option<u32>)> {
    let took_part = counted.len() as u64;
    let quorum = |pct: u8| took_part * 100 >= u64::from(pct) * eligible;
    let verdict = |passed: bool| {
        if passed {
            Verdict::Passed
        } else {
            Verdict::Failed
        }
    };
    let count = |k: StanceKind| counted.iter().filter(|s| s.stance == k).count() as u64;
    let (passed, quorum_pct) = match &proposal.method {
        Method::Role { .. } => return None,
        Method::Consent { quorum_pct } => (count(StanceKind::Block) == 0, *quorum_pct),
        Method::Majority {
            threshold_pct,
            quorum_pct,
        } => {
            let agree = count(StanceKind::Agree);
            let against = count(StanceKind::Disagree) + count(StanceKind::Block);
            (
                agree * 100 > u64::from(*threshold_pct) * (agree + against),
                *quorum_pct,
            )
        }
    };
    if !proposal.proposal.options.is_empty() {
        let mut votes = vec![0u64; proposal.proposal.options.len()];
        for s in counted.iter().filter(|s| s.stance == StanceKind::Agree) {
            if let Some(v) = s.option.and_then(|i| votes.get_mut(i as usize)) {
                *v += 1;
            }
        }
        let best = votes.iter().copied().max().unwrap_or(0);
        let winner = votes
            .iter()
            .position(|v| *v == best && best > 0)
            .map(|i| i as u32);
        let ok = quorum(quorum_pct) && winner.is_some() && count(StanceKind::Block) == 0;
        return Some((verdict(ok), if ok { winner } else { None }));
    }
    Some((verdict(passed && quorum(quorum_pct)), None))
}
