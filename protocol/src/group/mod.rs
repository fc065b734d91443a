//! Groups that govern themselves (SPEC.md §8).
//!
//! A group's state (members, roles and their terms, rules, proposals, outcomes, the
//! accountability log) is a pure function of the group's signed events. Every node and
//! client holding the same events computes byte-identical state, whatever order the events
//! arrived in; an event is accepted only if it is allowed by the state its own parents
//! establish, so its validity never depends on arrival order either.
//!
//! - [`rules`]: decision methods, powers, roles, defaults, and the rules in plain words;
//! - [`body`]: the bodies of the group kinds;
//! - [`state`]: [`GroupState`], what each event may do and what it changes;
//! - [`fold`]: the deterministic order of a group's events, the removal horizon, and
//!   [`Group`], which keeps a group's events and current state.

pub mod body;
pub mod fold;
pub mod rules;
pub mod state;

pub use fold::Group;
pub use rules::{Method, Power, Rules};
pub use state::GroupState;

use crate::event::EventId;
use crate::kind::{BodyError, Kind};
use crate::PublicKey;

/// Kind 100: create a group.
pub const GROUP_CREATE: Kind = Kind(100);
/// Kind 101: an invitation.
pub const INVITE: Kind = Kind(101);
/// Kind 102: join.
pub const JOIN: Kind = Kind(102);
/// Kind 103: leave.
pub const LEAVE: Kind = Kind(103);
/// Kind 104: a member's self-description.
pub const PROFILE: Kind = Kind(104);
/// Kind 105: hide an event pending review.
pub const HIDE: Kind = Kind(105);
/// Kind 106: show a hidden event again.
pub const UNHIDE: Kind = Kind(106);
/// Kind 107: a node refuses to host the group, or one member's events in it. Its author is
/// a node key, not a member.
pub const NODE_REFUSAL: Kind = Kind(107);
/// Kind 108: a node withdraws one of its own earlier refusals (kind 107). Its author is the
/// node key that signed the refusal.
pub const NODE_REFUSAL_WITHDRAWAL: Kind = Kind(108);
/// Kind 110: a proposal.
pub const PROPOSAL: Kind = Kind(110);
/// Kind 111: a stance.
pub const STANCE: Kind = Kind(111);
/// Kind 112: an outcome.
pub const OUTCOME: Kind = Kind(112);

/// Why an event is not allowed in a group. Every node reaches the same verdict for the
/// same event, because it is judged against the state its parents establish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The event does not create a group.
    #[error("a group starts with a group_create event (kind 100) that names no group and cites no parents")]
    NotGenesis,
    /// The event names another group.
    #[error("this event belongs to another group")]
    WrongGroup,
    /// Its body is absent.
    #[error("the event's body is missing; group events are judged by their body")]
    BodyMissing,
    /// Its body breaks the kind's rules.
    #[error("{0}")]
    Body(BodyError),
    /// Not a kind that belongs in a group.
    #[error("events of {0} do not belong in a group")]
    NotAGroupKind(Kind),
    /// A group event must cite earlier group events.
    #[error("a group event must list at least one earlier event of the group as a parent")]
    NoParents,
    /// Some parents are not known here.
    #[error("{} parent event(s) are not known here yet (first: {first}); send or fetch the parents first", count)]
    MissingParents {
        /// How many.
        count: usize,
        /// The first missing one.
        first: EventId,
    },
    /// Its time is before one of its parents'.
    #[error("the event is dated before an event it cites; check the device clock")]
    BeforeParent,
    /// The author is not a member (in the state its parents establish).
    #[error("{0} is not a member of this group (as of the events this one cites)")]
    NotMember(PublicKey),
    /// The author is already a member.
    #[error("{0} is already a member")]
    AlreadyMember(PublicKey),
    /// A node refusal by a key that is home to no member.
    #[error("{0} is not the home node of any member of this group (as of the events this one cites); only a node that is home to a member of this group can announce a refusal in it")]
    NotAHost(PublicKey),
    /// A refusal withdrawal names an event that is not a refusal in force.
    #[error("there is no refusal {0} in force in this group (as of the events this one cites): the id is not that of a node_refusal, the refusal is not among the events this one cites, it had no effect, or it was already withdrawn")]
    NoSuchRefusal(EventId),
    /// A refusal withdrawal by another key than the refusal's.
    #[error("the refusal {refusal} was announced by node {node}; only the node that signed a refusal may withdraw it")]
    NotYourRefusal {
        /// The refusal.
        refusal: EventId,
        /// The node that signed it.
        node: PublicKey,
    },
    /// The author lacks a power.
    #[error("{key} holds no role with the power to {} at this time", power.describe())]
    NoPower {
        /// Who.
        key: PublicKey,
        /// Which power.
        power: Power,
    },
    /// A hide or unhide names an event that is not in its history.
    #[error("the event {0} is not among the events this one cites (directly or through them); cite it to hide or show it")]
    UnknownTarget(EventId),
    /// An unhide of an event that is not hidden.
    #[error("the event {0} is not hidden, so there is nothing to show again")]
    NotHidden(EventId),
    /// Someone removed by decision tries to rejoin with an invitation.
    #[error("{0} was removed by a decision of the group; only another decision (an admit proposal) can let them back in")]
    RemovedByDecision(PublicKey),
    /// A join without a valid invitation or admission.
    #[error("the join names neither an open invitation nor a decision admitting this key")]
    NoInvitation,
    /// The invitation expired.
    #[error("the invitation has expired; ask for a new one")]
    InviteExpired,
    /// The invitation is used up.
    #[error("the invitation has been used up; ask for a new one")]
    InviteUsedUp,
    /// An invitation that expires before it is written.
    #[error("the invitation would expire before it was written")]
    AlreadyExpired,
    /// A proposal closing before it is made.
    #[error("the proposal's closing time must be after the time it is made")]
    ClosesInThePast,
    /// No decision method for the action.
    #[error("the group's rules give no method for this kind of proposal")]
    NoMethod,
    /// The role is not defined.
    #[error("the group has no role called '{0}'")]
    UnknownRole(String),
    /// A term outside what the role allows.
    #[error("a term for '{role}' must end after it starts and at most {max_days} days later")]
    TermOutOfRange {
        /// The role.
        role: String,
        /// Its longest term.
        max_days: u32,
    },
    /// The key does not hold the role.
    #[error("{key} does not hold the role '{role}' at this time")]
    NotHolding {
        /// The role.
        role: String,
        /// Who.
        key: PublicKey,
    },
    /// The proposal is not known.
    #[error("there is no proposal {0} among the events this one cites")]
    UnknownProposal(EventId),
    /// The proposal is closed.
    #[error("the proposal {0} is closed; stances can no longer change")]
    ProposalClosed(EventId),
    /// An outcome before closing time.
    #[error("the proposal {proposal} is open until {} ms; its outcome can be written after that", closes_at.0)]
    StillOpen {
        /// The proposal.
        proposal: EventId,
        /// When it closes.
        closes_at: crate::event::Timestamp,
    },
    /// A second outcome.
    #[error("the proposal {0} already has an outcome")]
    AlreadyDecided(EventId),
    /// The outcome's counted stances differ from the stances given.
    #[error("the outcome must count every member's latest stance and nothing else: {missing} missing, {extra} extra")]
    CountedMismatch {
        /// Stances given but not counted.
        missing: usize,
        /// Counted events that are not current stances.
        extra: usize,
    },
    /// The outcome's verdict differs from the tally.
    #[error(
        "the outcome says {claimed}, but the counted stances give {tally} under the group's rules"
    )]
    TallyMismatch {
        /// What the outcome says.
        claimed: String,
        /// What the tally gives.
        tally: String,
    },
    /// A poll stance without an option.
    #[error("this proposal is a poll: an agreeing stance must choose an option")]
    OptionNeeded,
    /// An option on a non-poll.
    #[error("this proposal is not a poll; leave out the option")]
    NotAPoll,
    /// An option out of range.
    #[error("the poll has no option {0}")]
    NoSuchOption(u32),
}
