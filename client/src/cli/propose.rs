//! `kith propose`, `kith stance` and `kith outcome`: how a group decides.
//!
//! The outcome is worked out here with the protocol's own counting
//! (`GroupState::countable` and `GroupState::tally`), shown, and only then published; the
//! node checks it again with the same code, and so does everyone who reads it.

use std::collections::BTreeSet;

use kith_client::{LocalGroup, ProfileName};
use kith_protocol::group::body::{self, Action, Outcome, Proposal, Stance, StanceKind, Verdict};
use kith_protocol::group::rules::Method;
use kith_protocol::group::state::{ProposalState, StanceRecord};
use kith_protocol::group::{self, GroupState};
use kith_protocol::{EventId, GroupId, PublicKey, Timestamp};
use serde_json::json;

use super::group::read_rules;
use super::group_args::{OutcomeArgs, ProposeAction, ProposeArgs, StanceArgs};
use super::output::{print_line, terminal_safe};
use super::report::Hinted;
use super::session::Session;
use super::words::{self, when, Names};

/// `kith propose`.
pub(crate) async fn propose(
    args: ProposeArgs,
    profile: &ProfileName,
    json: bool,
) -> anyhow::Result<()> {
    // Read a rules file before connecting, so a mistake in it costs nothing.
    let new_rules = match &args.action {
        ProposeAction::ChangeRules { rules } => Some(read_rules(rules)?),
        _ => None,
    };
    let session = Session::writer(&args.node.address, profile).await?;
    let result = async {
        let mut local = session.group(args.group).await?;
        let closes_in = args.closes_in.millis;
        let make = |at: Timestamp| {
            let action = match &args.action {
                ProposeAction::Admit { key } => Action::Admit { key: *key },
                ProposeAction::Remove { key } => Action::Remove { key: *key },
                ProposeAction::GrantRole { role, key, term } => Action::GrantRole {
                    role: role.clone(),
                    holder: *key,
                    term_ends: at.plus_millis(term.millis),
                },
                ProposeAction::EndRole { role, key } => Action::EndRole { role: role.clone(), holder: *key },
                ProposeAction::ChangeRules { .. } => Action::ChangeRules {
                    rules: new_rules.clone().unwrap_or_else(group::Rules::mutual_aid_default),
                },
                ProposeAction::Decide { .. } => Action::Decide,
            };
            let options = match &args.action {
                ProposeAction::Decide { options } => options.clone(),
                _ => Vec::new(),
            };
            Proposal {
                title: args.title.clone(),
                text: args.text.clone(),
                action,
                closes_at: at.plus_millis(closes_in),
                options,
                informed_by: args.informed_by.clone(),
            }
        };
        // Check the body against the node's limits first, to explain a mistake in our words.
        let draft = body::to_bytes(&make(kith_client::now()));
        if let Err(e) = Proposal::parse(&draft, session.conn.limits()) {
            return Err(Hinted::new(format!("this proposal cannot be made: {e}"), "change it and try again").into());
        }
        let event = session
            .publish_in(&mut local, group::PROPOSAL, |at| body::to_bytes(&make(at)))
            .await?;
        let id = event.id();
        let Some(p) = local.state().proposals.get(&id) else {
            return Err(anyhow::anyhow!("the proposal was published but has no effect here"));
        };
        let group = args.group;
        if json {
            return print_line(&json!({
                "id": id.to_hex(),
                "group": group.to_hex(),
                "closes_at": p.proposal.closes_at,
                "method_in_words": p.method.describe(),
            }));
        }
        let names = Names::of(&local);
        let now = kith_client::now();
        print_line(&format!(
            "Proposed '{}'.\nProposal id: {id}\nIf it passes it will {}.\nIt is decided {}.\n\
             Stances are open until {}. Members give theirs with:\n  kith stance {id} --group {group} agree   (or abstain, disagree, block)",
            terminal_safe(&p.proposal.title),
            words::action(&p.proposal.action, &p.proposal.options, &names, now),
            p.method.describe(),
            when(p.proposal.closes_at, now),
        ))
    }
    .await;
    session.close().await;
    result
}

/// `kith stance`.
pub(crate) async fn stance(
    args: StanceArgs,
    profile: &ProfileName,
    json: bool,
) -> anyhow::Result<()> {
    let session = Session::writer(&args.node.address, profile).await?;
    let result = async {
        let mut local = session.group(args.group).await?;
        let p = known_proposal(local.state(), &args.proposal, args.group)?;
        let title = p.proposal.title.clone();
        let now = kith_client::now();
        if p.outcome.is_some() || now > p.proposal.closes_at {
            return Err(Hinted::new(
                format!(
                    "'{}' closed {}; stances can no longer be given or changed",
                    terminal_safe(&title),
                    when(p.proposal.closes_at, now)
                ),
                format!("see how it was decided with `kith group show {}` or `kith group log {}`", args.group, args.group),
            )
            .into());
        }
        let option = match args.option {
            Some(0) => {
                return Err(Hinted::new("options are numbered from 1", "give --option 1 for the first option").into())
            }
            other => other.map(|n| n - 1),
        };
        let stance = Stance {
            proposal: args.proposal,
            stance: args.stance.into(),
            reason: args.reason.clone(),
            option,
        };
        let event = session
            .publish_in(&mut local, group::STANCE, |_| body::to_bytes(&stance))
            .await?;
        let state = local.state();
        let p = known_proposal(state, &args.proposal, args.group)?;
        if json {
            return print_line(&json!({
                "id": event.id().to_hex(),
                "proposal": args.proposal.to_hex(),
                "stance": words::stance(stance.stance),
                "closes_at": p.proposal.closes_at,
            }));
        }
        let names = Names::of(&local);
        let mut text = format!(
            "Your stance on '{}': {}. You can change it until {}.\nStances so far ({} of {} members):",
            terminal_safe(&title),
            words::stance(stance.stance),
            when(p.proposal.closes_at, now),
            p.stances.len(),
            state.members.len(),
        );
        for (key, record) in &p.stances {
            text.push_str(&format!("\n  {}", words::stance_line(&names, key, record, &p.proposal.options)));
        }
        print_line(&text)
    }
    .await;
    session.close().await;
    result
}

/// `kith outcome`.
pub(crate) async fn outcome(
    args: OutcomeArgs,
    profile: &ProfileName,
    json: bool,
) -> anyhow::Result<()> {
    let session = Session::writer(&args.node.address, profile).await?;
    let result = async {
        let mut local = session.group(args.group).await?;
        let now = kith_client::now();
        let names = Names::of(&local);
        let count = Count::of(&local, &args, now)?;
        let summary = count.summary(&names);
        if !json {
            print_line(&summary)?;
        }
        let outcome = Outcome {
            proposal: args.proposal,
            counted: count.counted.clone(),
            eligible: u32::try_from(count.eligible).unwrap_or(u32::MAX),
            result: count.verdict,
            option: count.option,
            explanation: args.explain.clone(),
        };
        let event = session
            .publish_in(&mut local, group::OUTCOME, |_| body::to_bytes(&outcome))
            .await?;
        let effect = local
            .state()
            .proposals
            .get(&args.proposal)
            .and_then(|p| p.outcome.as_ref())
            .map(|o| o.effect.clone())
            .unwrap_or_default();
        let names = Names::of(&local);
        if json {
            return print_line(&json!({
                "id": event.id().to_hex(),
                "proposal": args.proposal.to_hex(),
                "result": outcome.result,
                "option": outcome.option,
                "counted": outcome.counted,
                "effect": effect,
            }));
        }
        let mut text = format!(
            "Outcome written: {}\nWhat it does: {}",
            event.id(),
            names.plain(&effect)
        );
        if let (Verdict::Passed, Action::Admit { .. }) = (count.verdict, &count.action) {
            text.push_str(&format!(
                "\nThe newcomer joins with:\n  kith group join {} --via {}",
                args.group,
                event.id()
            ));
        }
        print_line(&text)
    }
    .await;
    session.close().await;
    result
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
    }
}

fn known_proposal<'s>(
    state: &'s GroupState,
    id: &EventId,
    group: GroupId,
) -> anyhow::Result<&'s ProposalState> {
    state.proposals.get(id).ok_or_else(|| {
        Hinted::new(
            format!("the group has no proposal {id}"),
            format!("check the id; `kith group show {group}` lists the open proposals"),
        )
        .into()
    })
}

/// The count behind an outcome, worked out here.
struct Count {
    title: String,
    action: Action,
    method: Method,
    closed: Timestamp,
    counted: BTreeSet<EventId>,
    stances: Vec<(PublicKey, StanceRecord)>,
    /// Stances given but not counted: the member a removal is about, people who are no
    /// longer members, or who (re)joined after the close.
    not_counted: Vec<(PublicKey, StanceRecord)>,
    options: Vec<String>,
    eligible: usize,
    verdict: Verdict,
    option: Option<u32>,
}

impl Count {
    fn of(local: &LocalGroup, args: &OutcomeArgs, now: Timestamp) -> anyhow::Result<Count> {
        let state = local.state();
        let p = known_proposal(state, &args.proposal, args.group)?;
        let title = terminal_safe(&p.proposal.title);
        if let Some(done) = &p.outcome {
            return Err(Hinted::new(
                format!(
                    "'{title}' already has an outcome: it {} ({})",
                    verdict_word(done.verdict),
                    done.event
                ),
                format!("see it with `kith group log {}`", args.group),
            )
            .into());
        }
        if now < p.proposal.closes_at {
            return Err(Hinted::new(
                format!(
                    "'{title}' is still open until {}",
                    when(p.proposal.closes_at, now)
                ),
                "its outcome can be written once it closes; run this again then",
            )
            .into());
        }
        let countable = state.countable(p);
        let (verdict, option) = match (state.tally(p), args.result) {
            (Some(tally), _) => tally,
            (None, Some(choice)) => (choice.into(), None),
            (None, None) => {
                let role = match &p.method {
                    Method::Role { role } => role.clone(),
                    _ => String::new(),
                };
                return Err(Hinted::new(
                    format!("the rules leave '{title}' to any current {role}, who decides it"),
                    "if you hold that role, say what you decided with --result passed or --result failed",
                )
                .into());
            }
        };
        Ok(Count {
            title,
            action: p.proposal.action.clone(),
            method: p.method.clone(),
            closed: p.proposal.closes_at,
            counted: countable.values().map(|s| s.event).collect(),
            stances: countable.iter().map(|(k, s)| (*k, (*s).clone())).collect(),
            not_counted: p
                .stances
                .iter()
                .filter(|(k, _)| !countable.contains_key(k))
                .map(|(k, s)| (*k, s.clone()))
                .collect(),
            options: p.proposal.options.clone(),
            eligible: state.eligible(p),
            verdict,
            option,
        })
    }

    fn summary(&self, names: &Names) -> String {
        let now = kith_client::now();
        let mut out = format!(
            "'{}' closed {}.\nIt is decided {}.\nCounted stances ({} of {} members whose voice counts):\n",
            self.title,
            when(self.closed, now),
            self.method.describe(),
            self.stances.len(),
            self.eligible,
        );
        if self.stances.is_empty() {
            out.push_str("  none\n");
        }
        for (key, record) in &self.stances {
            out.push_str(&format!(
                "  {}\n",
                words::stance_line(names, key, record, &self.options)
            ));
        }
        if !self.not_counted.is_empty() {
            out.push_str(
                "Heard, but not counted (the member a removal is about, or someone who was not a member when it closed, or is no longer one):\n",
            );
        }
        for (key, record) in &self.not_counted {
            out.push_str(&format!(
                "  {}\n",
                words::stance_line(names, key, record, &self.options)
            ));
        }
        let would = words::action(&self.action, &self.options, names, now);
        let verdict = match (self.verdict, self.option) {
            (Verdict::Passed, Some(i)) => format!(
                "PASSED: option {} ('{}') was chosen",
                i + 1,
                self.options
                    .get(i as usize)
                    .map(|o| terminal_safe(o))
                    .unwrap_or_default()
            ),
            (Verdict::Passed, None) => format!("PASSED: it will {would}"),
            (Verdict::Failed, _) => format!("FAILED: {}; nothing changes", self.why_failed()),
        };
        out.push_str(&format!("Result: {verdict}."));
        out
    }

    /// Why it failed, in words (the verdict itself comes from the protocol's tally).
    fn why_failed(&self) -> String {
        let n = |k: StanceKind| self.stances.iter().filter(|(_, s)| s.stance == k).count();
        let took_part = self.stances.len() as u64;
        let quorum = |pct: u8| took_part * 100 >= u64::from(pct) * self.eligible as u64;
        let blocks = n(StanceKind::Block);
        match &self.method {
            Method::Consent { quorum_pct } | Method::Majority { quorum_pct, .. } if !quorum(*quorum_pct) => format!(
                "too few took part ({took_part} of {}; at least {quorum_pct}% must give a stance)",
                self.eligible
            ),
            Method::Consent { .. } if blocks > 0 => {
                format!("{blocks} {} blocked it", if blocks == 1 { "member" } else { "members" })
            }
            Method::Majority { threshold_pct, .. } => format!(
                "not enough agreed ({} agreed, {} disagreed or blocked; more than {threshold_pct}% must agree)",
                n(StanceKind::Agree),
                n(StanceKind::Disagree) + blocks
            ),
            Method::Role { .. } => "the role holder decided against it".into(),
            _ if !self.options.is_empty() => "no option was chosen".into(),
            _ => "it did not pass".into(),
        }
    }
}
