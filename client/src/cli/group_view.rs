//! `kith group show | log | missing`: a group as this computer works it out from the
//! group's signed events, in plain words (or JSON with --json).

use std::collections::BTreeMap;

use kith_client::{LocalGroup, ProfileName};
use kith_protocol::group::state::ProposalState;
use kith_protocol::group::GroupState;
use kith_protocol::{EventId, GroupId, PublicKey, Timestamp};
use serde_json::{json, Value};

use super::output::{format_time, print_line, terminal_safe};
use super::session::Session;
use super::words::{self, when, Names};

/// Which reading of a group.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Look {
    /// `group show`.
    Show,
    /// `group log`.
    Log,
    /// `group missing`, with how long "not heard from" means (ms).
    Missing(u64),
}

/// Carries out `group show`, `group log` or `group missing`.
pub(crate) async fn run(
    address: &str,
    group: GroupId,
    look: Look,
    profile: &ProfileName,
    json: bool,
) -> anyhow::Result<()> {
    let session = Session::reader(address, profile).await?;
    let result = async {
        let local = session.group(group).await?;
        let agrees = session.compare_with_node(&local).await;
        let now = kith_client::now();
        let view = View {
            local: &local,
            names: Names::of(&local),
            now,
            me: session.me(),
        };
        match look {
            Look::Show if json => print_line(&view.json(agrees)),
            Look::Show => print_line(&view.show()),
            Look::Log if json => print_line(&view.log_json()),
            Look::Log => print_line(&view.log()),
            Look::Missing(span) => {
                let since = Timestamp(now.0.saturating_sub(span));
                if json {
                    print_line(&view.missing_json(since))
                } else {
                    print_line(&view.missing(since))
                }
            }
        }
    }
    .await;
    session.close().await;
    result
}

struct View<'a> {
    local: &'a LocalGroup,
    names: Names,
    now: Timestamp,
    me: Option<PublicKey>,
}

impl View<'_> {
    fn state(&self) -> &GroupState {
        self.local.state()
    }

    /// Open proposals, the soonest to close first.
    fn open(&self) -> impl Iterator<Item = (&EventId, &ProposalState)> {
        let now = self.now;
        let mut open: Vec<_> = self
            .state()
            .proposals
            .iter()
            .filter(move |(_, p)| p.outcome.is_none() && now <= p.proposal.closes_at)
            .collect();
        open.sort_by_key(|(id, p)| (p.proposal.closes_at, **id));
        open.into_iter()
    }

    fn awaiting_outcome(&self) -> impl Iterator<Item = (&EventId, &ProposalState)> {
        let now = self.now;
        self.state()
            .proposals
            .iter()
            .filter(move |(_, p)| p.outcome.is_none() && now > p.proposal.closes_at)
    }

    /// Members without a stance on `proposal`, except those who asked to be left out;
    /// and how many were left out.
    fn missing_voices(&self, proposal: &EventId) -> (Vec<PublicKey>, usize) {
        let state = self.state();
        let (quiet, listed): (Vec<PublicKey>, Vec<PublicKey>) = state
            .missing_voices(proposal)
            .into_iter()
            .partition(|k| state.members.get(k).is_some_and(|m| m.quiet));
        (listed, quiet.len())
    }

    fn list(&self, keys: &[PublicKey]) -> String {
        if keys.is_empty() {
            return "nobody".into();
        }
        keys.iter()
            .map(|k| self.names.who(k))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn show(&self) -> String {
        let s = self.state();
        let mut out = format!(
            "{} ({})\nPurpose: {}\nGroup id: {}\n\nMembers ({}):\n",
            terminal_safe(&s.name),
            words::visibility(s),
            terminal_safe(&s.purpose),
            s.id,
            s.members.len()
        );
        for (key, member) in &s.members {
            let you = if Some(*key) == self.me {
                " — you"
            } else {
                ""
            };
            let labels = if member.me.labels.is_empty() {
                String::new()
            } else {
                format!(" [{}]", terminal_safe(&member.me.labels.join(", ")))
            };
            out.push_str(&format!(
                "  {}{labels}{you}\n      {key}\n      home: {}\n",
                self.names.name(key),
                member
                    .home
                    .as_ref()
                    .map_or_else(|| "not named".to_owned(), words::home)
            ));
        }
        out.push_str(&self.hosts());
        out.push_str("\nRoles:\n");
        if s.roles.is_empty() {
            out.push_str("  Nobody holds a role.\n");
        }
        for (role, holders) in &s.roles {
            for (key, holding) in holders {
                let term = if holding.term_ends <= self.now {
                    format!(
                        "term ended {}; it no longer gives any power",
                        when(holding.term_ends, self.now)
                    )
                } else {
                    format!("until {}", when(holding.term_ends, self.now))
                };
                out.push_str(&format!(
                    "  {}: {}, {term}\n",
                    terminal_safe(role),
                    self.names.who(key)
                ));
            }
        }
        out.push_str("\nRules:\n");
        for line in s.rules.describe() {
            out.push_str(&format!("  - {line}\n"));
        }
        out.push_str("\nOpen proposals:\n");
        if self.open().next().is_none() {
            out.push_str("  None.\n");
        }
        for (id, p) in self.open() {
            out.push_str(&self.proposal(id, p));
        }
        for (id, p) in self.awaiting_outcome() {
            out.push_str(&format!(
                "\nClosed {}, waiting for its outcome: '{}' ({id})\n  Write it with: kith outcome {id} --group {} --explain \"…\"\n",
                when(p.proposal.closes_at, self.now),
                terminal_safe(&p.proposal.title),
                s.id
            ));
        }
        for (key, outcome) in &s.admitted {
            out.push_str(&format!(
                "\n{} was admitted and may join with: kith group join {} --via {outcome}\n",
                self.names.who(key),
                s.id
            ));
        }
        out.trim_end().to_owned()
    }

    /// The nodes members live on, with how many members each: they hold the group.
    fn hosts(&self) -> String {
        let s = self.state();
        let mut out =
            String::from("\nHosts (the nodes members live on; the group's events go to each):\n");
        let hosts = s.hosts();
        if hosts.is_empty() {
            out.push_str("  None named yet.\n");
        }
        for (node, url) in &hosts {
            let living = s
                .members
                .values()
                .filter(|m| m.home.as_ref().is_some_and(|h| h.node == *node))
                .count();
            out.push_str(&format!(
                "  {} ({living} {})\n",
                words::node(node, url),
                if living == 1 { "member" } else { "members" }
            ));
        }
        let homeless = s.members.values().filter(|m| m.home.is_none()).count();
        if homeless > 0 && !hosts.is_empty() {
            out.push_str(&format!("  ({homeless} member(s) have not named a home)\n"));
        }
        out
    }

    /// Each member's home, for the log.
    fn homes(&self) -> String {
        let s = self.state();
        let mut out = String::from("\nMembers' homes:\n");
        for (key, member) in &s.members {
            out.push_str(&format!(
                "  {}: {}\n",
                self.names.who(key),
                member
                    .home
                    .as_ref()
                    .map_or_else(|| "not named".to_owned(), words::home)
            ));
        }
        out
    }

    fn proposal(&self, id: &EventId, p: &ProposalState) -> String {
        let s = self.state();
        let mut out = format!(
            "  '{}' ({id})\n    Proposed by {}: {}\n    {}\n    Would: {}\n    Decided {}\n    Closes {}\n",
            terminal_safe(&p.proposal.title),
            self.names.who(&p.author),
            format_time(p.at),
            terminal_safe(&p.proposal.text).replace('\n', "\n    "),
            words::action(&p.proposal.action, &p.proposal.options, &self.names, self.now),
            p.method.describe(),
            when(p.proposal.closes_at, self.now),
        );
        let answered = self.me.is_some_and(|k| p.stances.contains_key(&k));
        let visible = s.rules.stances_visible_before_answering || answered;
        out.push_str(&format!(
            "    Stances so far: {} of {} members",
            p.stances.len(),
            s.members.len()
        ));
        if visible {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for stance in p.stances.values() {
                *counts.entry(words::stance(stance.stance)).or_default() += 1;
            }
            let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            if !counts.is_empty() {
                out.push_str(&format!(" ({})", counts.join(", ")));
            }
            out.push('\n');
            for (key, stance) in &p.stances {
                out.push_str(&format!(
                    "      {}\n",
                    words::stance_line(&self.names, key, stance, &p.proposal.options)
                ));
            }
        } else {
            out.push_str(" (the group's rules show others' stances once you give yours)\n");
        }
        let (missing, quiet) = self.missing_voices(id);
        out.push_str(&format!(
            "    Not yet given a stance: {}",
            self.list(&missing)
        ));
        if quiet > 0 {
            out.push_str(&format!(" (and {quiet} who asked not to be listed)"));
        }
        let choose = if p.proposal.options.is_empty() {
            ""
        } else {
            " --option N"
        };
        out.push_str(&format!(
            "\n    Give yours with: kith stance {id} --group {} agree{choose}   (or abstain, disagree, block)\n",
            s.id
        ));
        out
    }

    fn json(&self, agrees: Option<bool>) -> Value {
        let s = self.state();
        let open: serde_json::Map<String, Value> = self
            .open()
            .map(|(id, _)| {
                let (missing, quiet) = self.missing_voices(id);
                (
                    id.to_hex(),
                    json!({ "missing": missing, "quiet_left_out": quiet }),
                )
            })
            .collect();
        json!({
            "group": s.id.to_hex(),
            "state": s,
            "digest": self.local.digest_hex(),
            "agrees_with_node": agrees,
            "heads": self.local.group().heads(),
            "rules_in_words": s.rules.describe(),
            "hosts": s.hosts(),
            "missing_voices": open,
            "expired_roles": s.expired_roles(self.now),
        })
    }

    fn log(&self) -> String {
        let s = self.state();
        let mut out = format!(
            "Accountability log of '{}', oldest first:\n",
            terminal_safe(&s.name)
        );
        for entry in &s.log {
            let decision = entry
                .decision
                .map(|d| {
                    let title = s
                        .proposals
                        .get(&d)
                        .map(|p| terminal_safe(&p.proposal.title))
                        .unwrap_or_default();
                    format!("\n      under the decision '{title}' (proposal {d})")
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "  {} · {}: {}{decision}\n",
                format_time(entry.at),
                self.names.who(&entry.actor),
                self.names.plain(&entry.what)
            ));
        }
        let expired = s.expired_roles(self.now);
        out.push_str("\nRoles whose term has ended (they give no power any more):\n");
        if expired.is_empty() {
            out.push_str("  None.\n");
        }
        for entry in &expired {
            out.push_str(&format!(
                "  {} · {} (granted by outcome {})\n",
                format_time(entry.at),
                self.names.plain(&entry.what),
                entry.event
            ));
        }
        out.push_str(&self.homes());
        out.push_str(&self.hosts());
        if !s.not_applied.is_empty() {
            out.push_str(
                "\nEvents kept without effect (they came too late or crossed another change):\n",
            );
            for (id, why) in &s.not_applied {
                out.push_str(&format!("  {id}: {}\n", self.names.plain(why)));
            }
        }
        out.trim_end().to_owned()
    }

    fn log_json(&self) -> Value {
        let s = self.state();
        json!({
            "group": s.id.to_hex(),
            "log": s.log,
            "homes": s
                .members
                .iter()
                .map(|(key, m)| (key.to_string(), json!(m.home)))
                .collect::<serde_json::Map<String, Value>>(),
            "hosts": s.hosts(),
            "expired_roles": s.expired_roles(self.now),
            "not_applied": s.not_applied,
            "hidden": s.hidden,
        })
    }

    fn not_heard(&self, since: Timestamp) -> (Vec<PublicKey>, usize) {
        let s = self.state();
        let listed = s.not_heard_since(since);
        let quiet = s
            .members
            .values()
            .filter(|m| m.quiet && m.last_heard < since)
            .count();
        (listed, quiet)
    }

    fn missing(&self, since: Timestamp) -> String {
        let mut out = String::from("Open proposals, and who has not given a stance yet:\n");
        if self.open().next().is_none() {
            out.push_str("  No open proposals.\n");
        }
        for (id, p) in self.open() {
            let (missing, quiet) = self.missing_voices(id);
            out.push_str(&format!(
                "  '{}' ({id}), closes {}:\n    {}\n",
                terminal_safe(&p.proposal.title),
                when(p.proposal.closes_at, self.now),
                self.list(&missing)
            ));
            if quiet > 0 {
                out.push_str(&format!(
                    "    ({quiet} member(s) who asked not to be listed are left out)\n"
                ));
            }
        }
        let (not_heard, quiet) = self.not_heard(since);
        out.push_str(&format!(
            "\nMembers not heard from since {}:\n  {}\n",
            format_time(since),
            self.list(&not_heard)
        ));
        if quiet > 0 {
            out.push_str(&format!(
                "  ({quiet} member(s) who asked not to be listed are left out)\n"
            ));
        }
        out.trim_end().to_owned()
    }

    fn missing_json(&self, since: Timestamp) -> Value {
        let open: serde_json::Map<String, Value> = self
            .open()
            .map(|(id, p)| {
                let (missing, quiet) = self.missing_voices(id);
                let entry = json!({
                    "title": p.proposal.title,
                    "closes_at": p.proposal.closes_at,
                    "missing": missing,
                    "quiet_left_out": quiet,
                });
                (id.to_hex(), entry)
            })
            .collect();
        let (not_heard, quiet) = self.not_heard(since);
        json!({
            "group": self.state().id.to_hex(),
            "proposals": open,
            "since": since,
            "not_heard": not_heard,
            "not_heard_quiet_left_out": quiet,
        })
    }
}
