//! A group's rules: which decision method applies to which kind of change, who may invite
//! and facilitate, and which roles exist with which powers (SPEC.md §8.3).
//!
//! Rules are data in the group's own events: set in its creating event and changed only by
//! a `change_rules` decision. Nothing here is special to any member or node.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The kinds of change a group decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Let a new person in.
    Admit,
    /// Remove a member.
    Remove,
    /// Give (or renew) a role to a member, with a term end.
    GrantRole,
    /// End someone's role before its term.
    EndRole,
    /// Replace the group's rules.
    ChangeRules,
    /// A decision with no automatic effect ("we meet on Tuesdays"), or a poll.
    Decide,
}

impl ActionType {
    /// Every action type, in a fixed order.
    pub const ALL: [ActionType; 6] = [
        ActionType::Admit,
        ActionType::Remove,
        ActionType::GrantRole,
        ActionType::EndRole,
        ActionType::ChangeRules,
        ActionType::Decide,
    ];

    /// Plain words for the action.
    pub fn describe(self) -> &'static str {
        match self {
            ActionType::Admit => "letting someone new in",
            ActionType::Remove => "removing a member",
            ActionType::GrantRole => "giving or renewing a role",
            ActionType::EndRole => "ending a role early",
            ActionType::ChangeRules => "changing these rules",
            ActionType::Decide => "other decisions and polls",
        }
    }
}

/// How a proposal is decided. Percentages are whole numbers from 0 to 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Method {
    /// Passes unless someone blocks, once at least `quorum_pct` % of members gave a stance.
    Consent {
        /// Share of members who must take part.
        quorum_pct: u8,
    },
    /// Passes when more than `threshold_pct` % of the agree/disagree/block stances agree,
    /// once at least `quorum_pct` % of members took part. Abstentions count for the quorum only.
    Majority {
        /// Share of agreeing stances needed (strictly more than).
        threshold_pct: u8,
        /// Share of members who must take part.
        quorum_pct: u8,
    },
    /// Any current holder of the named role decides, writing the outcome themselves;
    /// stances are advice. For low-stakes things the group chooses to delegate.
    Role {
        /// The role's label.
        role: String,
    },
}

impl Method {
    /// Plain words for the method.
    pub fn describe(&self) -> String {
        match self {
            Method::Consent { quorum_pct } => format!(
                "by consent: it passes unless someone blocks, once at least {quorum_pct}% of members have given a stance"
            ),
            Method::Majority { threshold_pct, quorum_pct } => format!(
                "by majority: it passes when more than {threshold_pct}% of those who agree, disagree or block agree, once at least {quorum_pct}% of members have given a stance"
            ),
            Method::Role { role } => format!("by any current {role}, who writes the outcome; stances are advice"),
        }
    }
}

/// Who may do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// Every member.
    AnyMember,
    /// Only members holding a role with the matching power, within its term.
    RoleHolders,
}

/// The powers a role can carry (a fixed list; groups choose which roles carry which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Power {
    /// Write invitations.
    Invite,
    /// Write outcomes of closed proposals.
    Facilitate,
    /// Hide events pending review (and show them again), each with a reason in the log.
    Hide,
}

impl Power {
    /// Plain words for the power.
    pub fn describe(self) -> &'static str {
        match self {
            Power::Invite => "invite people",
            Power::Facilitate => "write the outcome of closed proposals",
            Power::Hide => "hide posts while they are reviewed",
        }
    }
}

/// A role: an agreed label with powers. Who holds it, until when, is decided separately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// What the role may do.
    pub powers: BTreeSet<Power>,
    /// The longest term one grant may give, in days.
    pub max_term_days: u32,
}

/// The rules of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The method for each kind of change. Every action type must have one.
    pub decisions: BTreeMap<ActionType, Method>,
    /// Who may write invitations.
    pub invite: Who,
    /// Who may write outcomes.
    pub facilitate: Who,
    /// The roles the group has agreed on, by label.
    pub roles: BTreeMap<String, RoleDef>,
    /// Whether a member sees others' stances before giving their own (false: hidden until
    /// they answer, which limits dominant voices). Clients honour this; the events are
    /// signed and public to members either way.
    pub stances_visible_before_answering: bool,
}

/// Why a set of rules is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// An action type has no method.
    #[error("the rules must say how {0} is decided")]
    MissingDecision(&'static str),
    /// A percentage over 100.
    #[error("a percentage in the rules is {0}; percentages go from 0 to 100")]
    Percentage(u8),
    /// A method names a role that the rules do not define.
    #[error("the rules delegate a decision to the role '{0}', but no such role is defined")]
    UnknownRole(String),
    /// A role label that is empty or too long.
    #[error("role labels must be 1 to 40 characters, not '{0}'")]
    RoleLabel(String),
    /// A role whose terms may be longer than the protocol allows.
    #[error("the role '{0}' allows terms of more than 3650 days; terms must end")]
    EndlessTerm(String),
    /// Too many roles.
    #[error("a group may define at most 32 roles")]
    TooManyRoles,
}

/// Longest role label, in characters.
pub const MAX_ROLE_LABEL: usize = 40;

impl Rules {
    /// Sensible rules for a mutual-aid circle: most things by consent, ending a role early
    /// by simple majority, changing the rules needs two thirds taking part, invitations by
    /// welcomers, and any member may write an outcome (every node checks it anyway).
    pub fn mutual_aid_default() -> Rules {
        let consent = |quorum_pct| Method::Consent { quorum_pct };
        let decisions = BTreeMap::from([
            (ActionType::Admit, consent(50)),
            (ActionType::Remove, consent(50)),
            (ActionType::GrantRole, consent(50)),
            (
                ActionType::EndRole,
                Method::Majority {
                    threshold_pct: 50,
                    quorum_pct: 30,
                },
            ),
            (ActionType::ChangeRules, consent(66)),
            (ActionType::Decide, consent(50)),
        ]);
        let roles = BTreeMap::from([
            (
                "welcomer".to_owned(),
                RoleDef {
                    powers: BTreeSet::from([Power::Invite]),
                    max_term_days: 180,
                },
            ),
            (
                "facilitator".to_owned(),
                RoleDef {
                    powers: BTreeSet::from([Power::Facilitate]),
                    max_term_days: 180,
                },
            ),
        ]);
        Rules {
            decisions,
            invite: Who::RoleHolders,
            facilitate: Who::AnyMember,
            roles,
            stances_visible_before_answering: false,
        }
    }

    /// Checks the rules are complete and within bounds.
    pub fn check(&self) -> Result<(), RulesError> {
        if self.roles.len() > 32 {
            return Err(RulesError::TooManyRoles);
        }
        for (label, role) in &self.roles {
            let len = label.chars().count();
            if len == 0 || len > MAX_ROLE_LABEL || label.trim() != label {
                return Err(RulesError::RoleLabel(label.clone()));
            }
            if role.max_term_days > 3650 {
                return Err(RulesError::EndlessTerm(label.clone()));
            }
        }
        for action in ActionType::ALL {
            let method = self
                .decisions
                .get(&action)
                .ok_or(RulesError::MissingDecision(action.describe()))?;
            match method {
                Method::Consent { quorum_pct } => pct(*quorum_pct)?,
                Method::Majority {
                    threshold_pct,
                    quorum_pct,
                } => {
                    pct(*threshold_pct)?;
                    pct(*quorum_pct)?;
                }
                Method::Role { role } => {
                    if !self.roles.contains_key(role) {
                        return Err(RulesError::UnknownRole(role.clone()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The method for an action (rules are checked on entry, so one always exists).
    pub fn method(&self, action: ActionType) -> Option<&Method> {
        self.decisions.get(&action)
    }

    /// The rules in plain words, one line each.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = ActionType::ALL
            .iter()
            .filter_map(|a| {
                self.decisions
                    .get(a)
                    .map(|m| format!("{}: {}", capitalise(a.describe()), m.describe()))
            })
            .collect();
        lines.push(match self.invite {
            Who::AnyMember => "Any member may invite people.".into(),
            Who::RoleHolders => {
                "Members holding a role with the invite power may invite people.".into()
            }
        });
        lines.push(match self.facilitate {
            Who::AnyMember => "Any member may write the outcome of a closed proposal; every node checks it against the stances.".into(),
            Who::RoleHolders => "Members holding a role with the facilitate power write outcomes; every node checks them against the stances.".into(),
        });
        for (label, role) in &self.roles {
            let powers: Vec<&str> = role.powers.iter().map(|p| p.describe()).collect();
            lines.push(format!(
                "Role '{label}': may {}; terms last at most {} days and end on their own.",
                if powers.is_empty() {
                    "do nothing special".to_owned()
                } else {
                    powers.join(", ")
                },
                role.max_term_days
            ));
        }
        lines.push(if self.stances_visible_before_answering {
            "Members can see others' stances before giving their own.".into()
        } else {
            "Others' stances are shown to a member only after they give their own.".into()
        });
        lines
    }
}

fn pct(value: u8) -> Result<(), RulesError> {
    if value > 100 {
        Err(RulesError::Percentage(value))
    } else {
        Ok(())
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_complete_and_readable() {
        let rules = Rules::mutual_aid_default();
        rules.check().unwrap();
        let text = rules.describe().join("\n");
        assert!(
            text.contains("Letting someone new in: by consent"),
            "{text}"
        );
        assert!(
            text.contains("Role 'welcomer': may invite people"),
            "{text}"
        );
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(serde_json::from_str::<Rules>(&json).unwrap(), rules);
    }

    #[test]
    fn incomplete_rules_are_refused() {
        let mut rules = Rules::mutual_aid_default();
        rules.decisions.remove(&ActionType::Remove);
        assert_eq!(
            rules.check(),
            Err(RulesError::MissingDecision("removing a member"))
        );
        let mut rules = Rules::mutual_aid_default();
        rules.decisions.insert(
            ActionType::Decide,
            Method::Role {
                role: "queen".into(),
            },
        );
        assert!(matches!(rules.check(), Err(RulesError::UnknownRole(_))));
    }
}
