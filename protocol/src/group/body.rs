//! The bodies of group events (kinds 100–112; SPEC.md §8.2). Each is a UTF-8 JSON object
//! with exactly the fields below; unknown fields are refused.
//!
//! Members may name their **home**: the node they live on ([`NodeRef`]), so that nodes can
//! route a group's events to the nodes that host its members. A node that will not host a
//! group, or one member's events in it, says so openly with a [`NodeRefusal`] (kind 107), and
//! takes it back just as openly with a [`NodeRefusalWithdrawal`] (kind 108).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::rules::{ActionType, Rules, MAX_ROLE_LABEL};
use crate::event::{EventId, Timestamp};
use crate::kind::{check_text as text, parse_json as parse, BodyError};
use crate::validate::Limits;
use crate::PublicKey;

/// Longest group name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest display name a member chooses.
pub const MAX_DISPLAY_NAME: usize = 64;
/// Most self-chosen labels per member, and the longest label.
pub const MAX_LABELS: usize = 8;
/// Longest self-chosen label.
pub const MAX_LABEL: usize = 32;
/// Most options in a poll.
pub const MAX_OPTIONS: usize = 20;
/// Most linked events ("informed by") on a proposal.
pub const MAX_LINKS: usize = 32;
/// Most stances one outcome may count.
pub const MAX_COUNTED: usize = 10_000;
/// Longest home URL, in bytes.
pub const MAX_URL: usize = 256;
/// Longest reason a node gives for a refusal or for withdrawing one, in characters.
pub const MAX_REFUSAL_REASON: usize = 1000;

/// Where a member lives: their home node's key and the URL it is reached at.
///
/// Only the URL's syntax is checked when a body is parsed (see [`NodeRef::check`]): nothing
/// here resolves or dials it. A node checks the address a URL leads to before it connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRef {
    /// The home node's key.
    pub node: PublicKey,
    /// Where the home node is reached: `http://` or `https://`, then a host.
    pub url: String,
}

impl NodeRef {
    /// Checks the URL's syntax (SPEC.md §8.2): 1 to [`MAX_URL`] bytes; it starts with
    /// `http://` or `https://` (in lower case); it holds no white space and no control
    /// character; its authority (the text after `//` up to the first `/`, `?` or `#`)
    /// carries no user name (`@`), names a non-empty host (an IPv6 address in brackets, or
    /// text without `:`), and may end with `:` and a port of 1 to 5 digits, at most 65535.
    /// Errors say what is wrong and how to write the URL instead.
    pub fn check(&self) -> Result<(), BodyError> {
        let url = self.url.as_str();
        let bad = |why: String| Err(BodyError::Shape(format!("the home URL {why}")));
        if url.is_empty() {
            return bad("is empty; give the address the home node is reached at, such as https://node.example".into());
        }
        if url.len() > MAX_URL {
            return bad(format!(
                "is {} bytes long; the limit is {MAX_URL}. Give the node's shortest address",
                url.len()
            ));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("contains white space or a control character; write it without them (use %20 for a space in a path)".into());
        }
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return bad("must start with https:// or http:// (in lower case); other schemes are not used to reach a node".into());
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return bad("must not carry a user name or password (nothing before an '@'); give the node's address alone".into());
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            // An IPv6 address in brackets, maybe followed by a port.
            let Some(end) = inner.find(']') else {
                return bad("opens an IPv6 address with '[' but never closes it with ']'".into());
            };
            let after = &inner[end + 1..];
            let port =
                match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None if after.is_empty() => None,
                    None => return bad(
                        "has text after the ']' of its IPv6 address that is not a ':' and a port"
                            .into(),
                    ),
                };
            (&inner[..end], port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return bad("names no host; write the node's name or address after the //".into());
        }
        if let Some(port) = port {
            let digits =
                !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
            if !digits || port.parse::<u32>().map_or(true, |n| n > 65_535) {
                return bad(format!(
                    "has the port '{port}'; a port is a number from 0 to 65535, or leave it out"
                ));
            }
        }
        Ok(())
    }
}

fn home(h: &Option<NodeRef>) -> Result<(), BodyError> {
    h.as_ref().map_or(Ok(()), NodeRef::check)
}

/// Public or members-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone may read the group's events.
    Public,
    /// Only members may read them; nodes hosting no member never receive them.
    Private,
}

/// How a member presents themselves: all optional, all self-chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfDescription {
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels they choose for themselves ("cook", "driver", "she/her").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// Kind 100: creates a group. The group id is this event's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupCreate {
    /// The group's name.
    pub name: String,
    /// Why the group exists, shown on its front page.
    pub purpose: String,
    /// Who may read.
    pub visibility: Visibility,
    /// How it decides.
    pub rules: Rules,
    /// How the founder presents themselves.
    #[serde(default)]
    pub founder: SelfDescription,
    /// The founder's home node, if they name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<NodeRef>,
}

/// Kind 101: an invitation, usable by anyone who is shown it, until it expires or is used up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// After this time joins with it are refused.
    pub expires_at: Timestamp,
    /// How many people may join with it.
    pub uses: u32,
    /// A note for whoever receives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Kind 102: a newcomer joins, presenting an invitation or an admission decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// The invite event, or the outcome of an `admit` proposal naming the newcomer.
    pub via: EventId,
    /// How the newcomer presents themselves.
    #[serde(default)]
    pub me: SelfDescription,
    /// The newcomer's home node, if they name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<NodeRef>,
}

/// Kind 103: a member leaves. Anyone may leave at any time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leave {
    /// Why, if they want to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Kind 104: a member changes how they present themselves, or opts out of "not heard from"
/// lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// How they present themselves now.
    #[serde(default)]
    pub me: SelfDescription,
    /// True to be left out of "not heard from lately" lists.
    #[serde(default)]
    pub quiet: bool,
    /// A new home node: the member moves there. Absent, the home stays as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<NodeRef>,
}

/// What a proposal would do if it passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Let this key join.
    Admit {
        /// The newcomer's key.
        key: PublicKey,
    },
    /// Remove this member.
    Remove {
        /// The member's key.
        key: PublicKey,
    },
    /// Give (or renew) a role until a time.
    GrantRole {
        /// The role's label.
        role: String,
        /// Who will hold it.
        holder: PublicKey,
        /// When the term ends on its own.
        term_ends: Timestamp,
    },
    /// End a role before its term.
    EndRole {
        /// The role's label.
        role: String,
        /// Who holds it.
        holder: PublicKey,
    },
    /// Replace the rules.
    ChangeRules {
        /// The new rules.
        rules: Rules,
    },
    /// A decision with no automatic effect, or a poll.
    Decide,
}

impl Action {
    /// Which rule applies.
    pub fn action_type(&self) -> ActionType {
        match self {
            Action::Admit { .. } => ActionType::Admit,
            Action::Remove { .. } => ActionType::Remove,
            Action::GrantRole { .. } => ActionType::GrantRole,
            Action::EndRole { .. } => ActionType::EndRole,
            Action::ChangeRules { .. } => ActionType::ChangeRules,
            Action::Decide => ActionType::Decide,
        }
    }
}

/// Kind 105: a holder of the hide power hides an event of the group while it is reviewed
/// (kept, not shown). Kind 106 (`Unhide`, same shape) shows it again. Both appear in the
/// accountability log with their reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moderate {
    /// The event hidden or shown again.
    pub event: EventId,
    /// Why, in plain words (required: every use of power is explained).
    pub reason: String,
}

impl Moderate {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        text("reason", &b.reason, limits.max_text_chars, true)?;
        Ok(b)
    }
}

/// Kind 107: a node says it will not host this group, or one member's events in it.
///
/// Written by a node (its author is a node key, not a member). It grants no power and
/// changes no membership: it makes a node's refusal visible to the group, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRefusal {
    /// Why, in plain words (required: a refusal must say why).
    pub reason: String,
    /// The member whose events the node will not host; absent, the whole group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<PublicKey>,
}

impl NodeRefusal {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], _limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        text("reason", &b.reason, MAX_REFUSAL_REASON, true)?;
        Ok(b)
    }
}

/// Kind 108: a node withdraws one of its own refusals (kind 107).
///
/// Written by the node that signed the refusal, and by no one else. Like the refusal, it
/// grants no power and changes no membership: the refusal leaves the group's list of
/// refusals, and the log says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRefusalWithdrawal {
    /// The refusal withdrawn: the id of a `node_refusal` event.
    pub refusal: EventId,
    /// Why, if the node says (not blank when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl NodeRefusalWithdrawal {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], _limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        if let Some(reason) = &b.reason {
            text("reason", reason, MAX_REFUSAL_REASON, true)?;
        }
        Ok(b)
    }
}

/// Kind 110: a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// A short title.
    pub title: String,
    /// The proposal in plain words.
    pub text: String,
    /// What happens if it passes.
    pub action: Action,
    /// When stances stop being taken.
    pub closes_at: Timestamp,
    /// Options, for a poll (action `decide` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Posts, notes or earlier decisions that informed it ("you said, we did").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub informed_by: Vec<EventId>,
}

/// A member's position on a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StanceKind {
    /// In favour.
    Agree,
    /// Taking part without a position.
    Abstain,
    /// Against, without stopping it.
    Disagree,
    /// A serious objection: under consent, it stops the proposal.
    Block,
}

/// Kind 111: a stance on a proposal. A member may change it until the proposal closes; the
/// latest (by time, then id) counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stance {
    /// The proposal.
    pub proposal: EventId,
    /// The position.
    pub stance: StanceKind,
    /// Why, in their words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a poll: the chosen option's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<u32>,
}

/// What a closed proposal came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It passed: its action takes effect.
    Passed,
    /// It did not pass.
    Failed,
}

/// Kind 112: the outcome of a closed proposal, with the stances it counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The proposal.
    pub proposal: EventId,
    /// Every stance counted: the latest stance of each member, given before the close.
    pub counted: BTreeSet<EventId>,
    /// How many members' voices counted toward the quorum (members at the close, less the
    /// member a removal is about). With `counted`, this makes the outcome's tally
    /// self-contained, so a stance signed later and dated back cannot reopen the decision.
    pub eligible: u32,
    /// Passed or failed.
    pub result: Verdict,
    /// For a poll: the winning option, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<u32>,
    /// The facilitator's explanation, in their words.
    pub explanation: String,
}

fn me(d: &SelfDescription) -> Result<(), BodyError> {
    if let Some(name) = &d.name {
        text("name", name, MAX_DISPLAY_NAME, true)?;
    }
    if d.labels.len() > MAX_LABELS {
        return Err(BodyError::Shape(format!("at most {MAX_LABELS} labels")));
    }
    for label in &d.labels {
        text("labels", label, MAX_LABEL, true)?;
    }
    Ok(())
}

fn rules(r: &Rules) -> Result<(), BodyError> {
    r.check().map_err(|e| BodyError::Shape(e.to_string()))
}

impl GroupCreate {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        text("name", &b.name, MAX_NAME, true)?;
        text("purpose", &b.purpose, limits.max_text_chars, false)?;
        rules(&b.rules)?;
        me(&b.founder)?;
        home(&b.home)?;
        Ok(b)
    }
}

impl Invite {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        if b.uses == 0 {
            return Err(BodyError::Shape(
                "an invitation must allow at least one use".into(),
            ));
        }
        if let Some(note) = &b.note {
            text("note", note, limits.max_text_chars, false)?;
        }
        Ok(b)
    }
}

impl Join {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], _limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        me(&b.me)?;
        home(&b.home)?;
        Ok(b)
    }
}

impl Leave {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        if let Some(reason) = &b.reason {
            text("reason", reason, limits.max_text_chars, false)?;
        }
        Ok(b)
    }
}

impl Profile {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], _limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        me(&b.me)?;
        home(&b.home)?;
        Ok(b)
    }
}

impl Proposal {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        text("title", &b.title, MAX_NAME, true)?;
        text("text", &b.text, limits.max_text_chars, true)?;
        if b.options.len() > MAX_OPTIONS || b.options.len() == 1 {
            return Err(BodyError::Shape(format!(
                "a poll has 2 to {MAX_OPTIONS} options"
            )));
        }
        if !b.options.is_empty() && b.action != Action::Decide {
            return Err(BodyError::Shape(
                "only a 'decide' proposal can be a poll".into(),
            ));
        }
        for option in &b.options {
            text("options", option, MAX_NAME, true)?;
        }
        if b.informed_by.len() > MAX_LINKS {
            return Err(BodyError::Shape(format!(
                "at most {MAX_LINKS} linked events"
            )));
        }
        match &b.action {
            Action::GrantRole { role, .. } | Action::EndRole { role, .. }
                if role.chars().count() > MAX_ROLE_LABEL =>
            {
                return Err(BodyError::TextTooLong {
                    field: "role",
                    max: MAX_ROLE_LABEL,
                    found: role.chars().count(),
                })
            }
            Action::ChangeRules { rules: r } => rules(r)?,
            _ => {}
        }
        Ok(b)
    }
}

impl Stance {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        if let Some(reason) = &b.reason {
            text("reason", reason, limits.max_text_chars, false)?;
        }
        Ok(b)
    }
}

impl Outcome {
    /// Parses and checks the body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let b: Self = parse(bytes)?;
        text("explanation", &b.explanation, limits.max_text_chars, false)?;
        if b.counted.len() > MAX_COUNTED {
            return Err(BodyError::Shape(format!(
                "an outcome counts at most {MAX_COUNTED} stances"
            )));
        }
        Ok(b)
    }
}

/// Serialises a body (our own encoder's output; verifiers never re-serialise).
pub fn to_bytes<T: Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}
