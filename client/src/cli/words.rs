//! Plain words for group things: people by the names they chose, times as dates with
//! "in 5 minutes", what a proposal would do, and the protocol's messages with keys and
//! millisecond times turned into names and dates.

use std::collections::BTreeMap;

use kith_client::LocalGroup;
use kith_protocol::group::body::{Action, GroupCreate, Join, NodeRef, Profile, StanceKind};
use kith_protocol::group::state::StanceRecord;
use kith_protocol::group::{self, GroupState};
use kith_protocol::{EventId, PublicKey, Timestamp};

use super::output::{format_time, short_key, terminal_safe};

/// A length of time in words: "45 seconds", "10 minutes", "3 days".
pub(crate) fn span(millis: u64) -> String {
    let seconds = millis.saturating_add(500) / 1000;
    let (n, unit) = match seconds {
        0..=89 => (seconds, "second"),
        90..=5_399 => ((seconds + 30) / 60, "minute"),
        5_400..=129_599 => ((seconds + 1_800) / 3_600, "hour"),
        _ => ((seconds + 43_200) / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A time as a date, with how far it is from `now`: "2025-11-23 14:05 UTC (in 3 minutes)".
pub(crate) fn when(at: Timestamp, now: Timestamp) -> String {
    let relative = if at >= now {
        format!("in {}", span(at.0 - now.0))
    } else {
        format!("{} ago", span(now.0 - at.0))
    };
    format!("{} ({relative})", format_time(at))
}

/// The names people chose for themselves in a group, from every event of theirs that
/// says one (so people who have left keep their names in the log).
#[derive(Debug, Default)]
pub(crate) struct Names {
    chosen: BTreeMap<PublicKey, (Timestamp, String)>,
}

impl Names {
    /// Collects the names in a group's events.
    pub(crate) fn of(local: &LocalGroup) -> Names {
        let mut names = Names::default();
        let state = local.state();
        let in_effect =
            |id: &EventId| !state.hidden.contains(id) && !state.not_applied.contains_key(id);
        for event in local.events().filter(|e| in_effect(&e.id())) {
            if let Some(name) = chosen_name(event) {
                names.note(event.author(), event.created_at(), &name);
            }
        }
        // Members present themselves as they do now.
        for (key, member) in &state.members {
            match &member.me.name {
                Some(name) => names.note(*key, Timestamp(u64::MAX), name),
                None => {
                    names.chosen.remove(key);
                }
            }
        }
        names
    }

    fn note(&mut self, key: PublicKey, at: Timestamp, name: &str) {
        let newer = self.chosen.get(&key).is_none_or(|(seen, _)| at >= *seen);
        if newer {
            self.chosen.insert(key, (at, name.to_owned()));
        }
    }

    /// "Sam (kith1qz3xv…8f2k)", or the short key for someone who chose no name.
    pub(crate) fn who(&self, key: &PublicKey) -> String {
        match self.chosen.get(key) {
            Some((_, name)) => format!("{} ({})", terminal_safe(name), short_key(key)),
            None => short_key(key),
        }
    }

    /// Just the name, or the short key.
    pub(crate) fn name(&self, key: &PublicKey) -> String {
        match self.chosen.get(key) {
            Some((_, name)) => terminal_safe(name),
            None => short_key(key),
        }
    }

    /// `text` with every full public key in it replaced by the person's name, and every
    /// millisecond time ("1700000000000 ms") by a date.
    pub(crate) fn plain(&self, text: &str) -> String {
        let text = terminal_safe(text);
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while !rest.is_empty() {
            if rest.starts_with("kith1") {
                let end = rest
                    .find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(rest.len());
                if let Ok(key) = rest[..end].parse::<PublicKey>() {
                    out.push_str(&self.who(&key));
                    rest = &rest[end..];
                    continue;
                }
            }
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits >= 12 && rest[digits..].starts_with(" ms") {
                if let Ok(ms) = rest[..digits].parse::<u64>() {
                    out.push_str(&format_time(Timestamp(ms)));
                    rest = &rest[digits + 3..];
                    continue;
                }
            }
            let step = rest.chars().next().map_or(1, char::len_utf8).max(digits);
            out.push_str(&rest[..step]);
            rest = &rest[step..];
        }
        out
    }
}

/// The name an event of the group gives its author, if it gives one.
fn chosen_name(event: &kith_protocol::Event) -> Option<String> {
    let body = event.body()?;
    let me = match event.kind() {
        group::GROUP_CREATE => serde_json::from_slice::<GroupCreate>(body).ok()?.founder,
        group::JOIN => serde_json::from_slice::<Join>(body).ok()?.me,
        group::PROFILE => serde_json::from_slice::<Profile>(body).ok()?.me,
        _ => return None,
    };
    me.name
}

/// What a proposal would do, in words.
pub(crate) fn action(action: &Action, options: &[String], names: &Names, now: Timestamp) -> String {
    match action {
        Action::Admit { key } => format!("let {} join", names.who(key)),
        Action::Remove { key } => format!("remove {} from the group", names.who(key)),
        Action::GrantRole {
            role,
            holder,
            term_ends,
        } => format!(
            "give the role '{}' to {} until {}",
            terminal_safe(role),
            names.who(holder),
            when(*term_ends, now)
        ),
        Action::EndRole { role, holder } => {
            format!(
                "end the role '{}' of {} now",
                terminal_safe(role),
                names.who(holder)
            )
        }
        Action::ChangeRules { rules } => {
            let lines: Vec<String> = rules
                .describe()
                .iter()
                .map(|l| format!("      - {l}"))
                .collect();
            format!(
                "replace the group's rules with these:\n{}",
                lines.join("\n")
            )
        }
        Action::Decide if options.is_empty() => {
            "record a decision (nothing changes automatically)".into()
        }
        Action::Decide => {
            let choices: Vec<String> = options
                .iter()
                .enumerate()
                .map(|(i, o)| format!("{}. {}", i + 1, terminal_safe(o)))
                .collect();
            format!("choose one of: {}", choices.join("; "))
        }
    }
}

/// A stance in one word.
pub(crate) fn stance(kind: StanceKind) -> &'static str {
    match kind {
        StanceKind::Agree => "agree",
        StanceKind::Abstain => "abstain",
        StanceKind::Disagree => "disagree",
        StanceKind::Block => "block",
    }
}

/// "Sam: agree (option 2, 'Thursday'): \"works for me\"".
pub(crate) fn stance_line(
    names: &Names,
    key: &PublicKey,
    record: &StanceRecord,
    options: &[String],
) -> String {
    let option = record
        .option
        .map(|i| {
            let text = options
                .get(i as usize)
                .map(|o| terminal_safe(o))
                .unwrap_or_default();
            format!(" (option {}, '{text}')", i + 1)
        })
        .unwrap_or_default();
    let reason = record
        .reason
        .as_deref()
        .map(|r| format!(": \"{}\"", terminal_safe(r)))
        .unwrap_or_default();
    format!(
        "{}: {}{option}{reason}",
        names.name(key),
        stance(record.stance)
    )
}

/// A node named as someone's home: "kith1qz3xv…8f2k at https://node.example.org".
pub(crate) fn home(home: &NodeRef) -> String {
    node(&home.node, &home.url)
}

/// A node by its short key and address.
pub(crate) fn node(key: &PublicKey, url: &str) -> String {
    format!("{} at {}", short_key(key), terminal_safe(url))
}

/// "public: anyone can read it" or "private: only members can read it".
pub(crate) fn visibility(state: &GroupState) -> &'static str {
    match state.visibility {
        group::body::Visibility::Public => "public: anyone can read it",
        group::body::Visibility::Private => "private: only members can read it",
    }
}

#[cfg(test)]
mod tests {
    use kith_protocol::SecretKey;

    use super::*;

    #[test]
    fn spans_and_times_read_naturally() {
        assert_eq!(span(1_000), "1 second");
        assert_eq!(span(45_000), "45 seconds");
        assert_eq!(span(600_000), "10 minutes");
        assert_eq!(span(7_200_000), "2 hours");
        assert_eq!(span(90 * 86_400_000), "90 days");
        assert_eq!(
            when(Timestamp(60_000), Timestamp(0)),
            "1970-01-01 00:01 UTC (in 60 seconds)"
        );
        assert_eq!(
            when(Timestamp(0), Timestamp(600_000)),
            "1970-01-01 00:00 UTC (10 minutes ago)"
        );
    }

    #[test]
    fn keys_and_millisecond_times_become_names_and_dates() {
        let key = SecretKey::from_seed(&[4; 32]).public_key();
        let other = SecretKey::from_seed(&[5; 32]).public_key();
        let mut names = Names::default();
        names.note(key, Timestamp(1), "Sam");
        let text = format!(
            "passed: role 'cook' granted to {key} until 951827696000 ms; {other} saw it, 12 ms"
        );
        assert_eq!(
            names.plain(&text),
            format!(
                "passed: role 'cook' granted to Sam ({}) until 2000-02-29 12:34 UTC; {} saw it, 12 ms",
                short_key(&key),
                short_key(&other)
            )
        );
        assert_eq!(names.plain("kith1nope and 5 ms"), "kith1nope and 5 ms");
    }
}
