//! The command line of the group commands: `kith group …`, `kith propose`, `kith stance`
//! and `kith outcome`, with their flags and help texts.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Subcommand, ValueEnum};
use kith_protocol::group::body::{StanceKind, Verdict};
use kith_protocol::{EventId, GroupId, PublicKey};

use super::args::NodeArg;

/// How long `group join` and `group move` wait, by default, for a node to receive a group.
pub(crate) const DEFAULT_WAIT_SECS: u64 = 60;

/// A length of time typed as a number and a unit: `30s`, `10m`, `2h`, `7d`, `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// In milliseconds.
    pub(crate) millis: u64,
}

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Span, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let explain = || {
            format!("'{text}' is not a length of time; write a number and a unit, like 30s, 10m, 2h, 7d or 2w")
        };
        let n: u64 = number.parse().map_err(|_| explain())?;
        let unit_ms: u64 = match unit.trim() {
            "s" | "sec" | "second" | "seconds" => 1_000,
            "m" | "min" | "minute" | "minutes" => 60_000,
            "h" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 7 * 86_400_000,
            _ => return Err(explain()),
        };
        let millis = n.checked_mul(unit_ms).filter(|ms| *ms > 0).ok_or_else(|| {
            format!("'{text}' is not a usable length of time; it must be more than nothing and less than many centuries")
        })?;
        Ok(Span { millis })
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::words::span(self.millis))
    }
}

/// How you present yourself in a group: all optional, all your choice.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SelfArgs {
    /// The name others see for you in this group.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// A label you choose for yourself (e.g. cook, driver, she/her). Repeat for several.
    #[arg(long = "label", value_name = "LABEL")]
    pub(crate) labels: Vec<String>,
}

/// `kith group …`.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Start a new group, with you as its first member and your node (--node) as your
    /// home in it. It decides things by the mutual-aid rules unless you give others with
    /// --rules.
    #[command(after_help = "Examples:\n  \
        kith group create \"Eastside Food Share\" --purpose \"Weekly food boxes for neighbours\"\n  \
        kith group create \"Tenants' Union\" --purpose \"Organising our building\" --private --name Sam\n  \
        kith group default-rules > rules.json   (edit it, then:)\n  \
        kith group create \"Bike Repair\" --purpose \"Fix bikes together\" --rules rules.json")]
    Create {
        #[command(flatten)]
        node: NodeArg,
        /// The group's name.
        #[arg(value_name = "GROUP_NAME")]
        group_name: String,
        /// Why the group exists, in a sentence or two.
        #[arg(long, value_name = "TEXT")]
        purpose: String,
        /// Only members may read the group's messages and decisions.
        #[arg(long)]
        private: bool,
        /// The group's rules, from a JSON file (start from `kith group default-rules`).
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        #[command(flatten)]
        me: SelfArgs,
    },

    /// Print the mutual-aid default rules as JSON, to edit and use with `create --rules`.
    #[command(after_help = "Example:\n  kith group default-rules > rules.json")]
    DefaultRules,

    /// Write an invitation, and print a join code for it: one line that the people you
    /// invite paste into `kith group join`, whichever node they use.
    #[command(after_help = "Examples:\n  \
        kith group invite 3f9a…(group id)\n  \
        kith group invite 3f9a…(group id) --uses 5 --expires-in 3d --note \"Welcome!\"\n\n\
        The join code reads kith-join:GROUP_ID:INVITATION_ID@NODE_ADDRESS, where NODE_ADDRESS is \
        the public address of the node you wrote the invitation on.")]
    Invite {
        #[command(flatten)]
        node: NodeArg,
        /// The group (its id: 64 characters of 0-9 and a-f).
        #[arg(value_name = "GROUP_ID")]
        group: GroupId,
        /// How many people may join with it.
        #[arg(long, value_name = "N", default_value_t = 1)]
        uses: u32,
        /// How long it can be used.
        #[arg(long, value_name = "TIME", default_value = "7d")]
        expires_in: Span,
        /// A note for the people you invite.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },

    /// Join a group with the join code you were given, or with the group's id and an
    /// invitation (or the decision that admitted you). Your own node (--node) becomes your
    /// home in the group.
    #[command(after_help = "Examples:\n  \
        kith group join kith-join:3f9a…:81c2…@https://other.example.org --name Sam --label cook\n  \
        kith group join 3f9a…(group id) --via 81c2…(invitation id) --name Sam\n  \
        kith group join 3f9a…(group id) --via 5d0e…(id of the outcome that admitted you)\n\n\
        With a join code, if your own node does not hold the group yet, your join is sent to the \
        node named in the code (no account is needed there); kith then waits until your own node \
        has received the group.")]
    Join {
        #[command(flatten)]
        node: NodeArg,
        /// The join code (kith-join:…), or the group's id.
        #[arg(value_name = "CODE_OR_GROUP_ID")]
        target: String,
        /// With a group id: the invitation's id, or the id of the outcome that admitted
        /// you. Not needed with a join code.
        #[arg(long, value_name = "EVENT_ID")]
        via: Option<EventId>,
        /// When the join goes through another node: wait at most this many seconds for
        /// your own node to receive the group (0: do not wait).
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_WAIT_SECS)]
        wait: u64,
        #[command(flatten)]
        me: SelfArgs,
    },

    /// Move your home in a group to another node: the group will send its events to your
    /// new node, which then holds the group for you. You keep the same key, and everything
    /// you wrote stays valid.
    #[command(after_help = "Examples:\n  \
        kith group move --group 3f9a…(group id) --to https://new.example.org\n  \
        kith group move --group 3f9a…(group id) --to https://new.example.org --via https://friend.example.org\n\n\
        Register on the new node first: kith register --node https://new.example.org --invite CODE\n\
        The move is sent through your current node (--node), or through --via if your current \
        node is gone; kith then waits until the new node holds the group with your new home.")]
    Move {
        #[command(flatten)]
        node: NodeArg,
        /// The group (its id).
        #[arg(long, value_name = "GROUP_ID")]
        group: GroupId,
        /// Your new home node's address.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Send the move through this node (one that holds the group) instead of --node.
        #[arg(long, value_name = "URL")]
        via: Option<String>,
        /// Wait at most this many seconds for the new node to receive the group (0: do
        /// not wait).
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_WAIT_SECS)]
        wait: u64,
    },

    /// Leave a group. You can always leave; you can be invited back later.
    #[command(
        after_help = "Example:\n  kith group leave 3f9a…(group id) --reason \"Moving away, thank you all\""
    )]
    Leave {
        #[command(flatten)]
        node: NodeArg,
        /// The group (its id).
        #[arg(value_name = "GROUP_ID")]
        group: GroupId,
        /// Why, if you want to say.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },

    /// Change how you present yourself in a group, or ask not to be listed as "not heard
    /// from" (--quiet). What you do not mention stays as it is. The node you send it to
    /// (--node) is named as your home in the group.
    #[command(after_help = "Examples:\n  \
        kith group profile 3f9a…(group id) --name Sam --label driver --label they/them\n  \
        kith group profile 3f9a…(group id) --quiet")]
    Profile {
        #[command(flatten)]
        node: NodeArg,
        /// The group (its id).
        #[arg(value_name = "GROUP_ID")]
        group: GroupId,
        #[command(flatten)]
        me: SelfArgs,
        /// Leave you out of "not heard from" and "has not given a stance" lists.
        #[arg(long, conflicts_with = "not_quiet")]
        quiet: bool,
        /// List you again in those lists.
        #[arg(long)]
        not_quiet: bool,
    },

    /// Show a group: its purpose, members, roles and their terms, rules, and open
    /// proposals with who has not yet given a stance.
    #[command(
        after_help = "Examples:\n  kith group show 3f9a…(group id)\n  kith group show 3f9a…(group id) --json"
    )]
    Show {
        #[command(flatten)]
        node: NodeArg,
        /// The group (its id).
        #[arg(value_name = "GROUP_ID")]
        group: GroupId,
    },

    /// The group's accountability log: who used which power when, under which decision;
    /// and roles whose term has ended.
    #[command(after_help = "Example:\n  kith group log 3f9a…(group id)")]
    Log {
        #[command(flatten)]
        node: NodeArg,
        /// The group (its id).
        #[arg(value_name = "GROUP_ID")]
        group: GroupId,
    },

    /// Who is missing: members without a stance on each open proposal, and members not
    /// heard from lately (leaving out those who asked to be left out).
    #[command(
        after_help = "Examples:\n  kith group missing 3f9a…(group id)\n  kith group missing 3f9a…(group id) --since 30d"
    )]
    Missing {
        #[command(flatten)]
        node: NodeArg,
        /// The group (its id).
        #[arg(value_name = "GROUP_ID")]
        group: GroupId,
        /// "Not heard from" means: nothing from them in this long.
        #[arg(long, value_name = "TIME", default_value = "14d")]
        since: Span,
    },
}

/// `kith propose`.
#[derive(Debug, Args)]
pub(crate) struct ProposeArgs {
    #[command(flatten)]
    pub(crate) node: NodeArg,
    /// The group (its id).
    #[arg(value_name = "GROUP_ID")]
    pub(crate) group: GroupId,
    /// A short title.
    #[arg(long, value_name = "TEXT")]
    pub(crate) title: String,
    /// The proposal in your words: what and why.
    #[arg(long, value_name = "TEXT")]
    pub(crate) text: String,
    /// How long members have to give their stance.
    #[arg(long, value_name = "TIME")]
    pub(crate) closes_in: Span,
    /// A post or earlier decision that led to this proposal. Repeat for several.
    #[arg(long, value_name = "EVENT_ID")]
    pub(crate) informed_by: Vec<EventId>,
    /// What happens if it passes.
    #[command(subcommand)]
    pub(crate) action: ProposeAction,
}

/// What a proposal would do.
#[derive(Debug, Subcommand)]
pub(crate) enum ProposeAction {
    /// Let someone join (they then join with `kith group join … --via OUTCOME_ID`).
    Admit {
        /// Their public key (kith1…; they see it with `kith id show`).
        #[arg(value_name = "KEY")]
        key: PublicKey,
    },
    /// Remove a member. Their own stance is heard but cannot stop it.
    Remove {
        /// The member's public key.
        #[arg(value_name = "KEY")]
        key: PublicKey,
    },
    /// Give (or renew) a role to a member, for a limited term.
    GrantRole {
        /// The role's name, as in the group's rules (e.g. facilitator).
        #[arg(value_name = "ROLE")]
        role: String,
        /// The member's public key.
        #[arg(value_name = "KEY")]
        key: PublicKey,
        /// How long the role lasts from now; it ends on its own after that.
        #[arg(long, value_name = "TIME")]
        term: Span,
    },
    /// End someone's role before its term is over.
    EndRole {
        /// The role's name.
        #[arg(value_name = "ROLE")]
        role: String,
        /// The holder's public key.
        #[arg(value_name = "KEY")]
        key: PublicKey,
    },
    /// Replace the group's rules with those in a JSON file.
    ChangeRules {
        /// The new rules (start from `kith group default-rules`).
        #[arg(long, value_name = "FILE")]
        rules: PathBuf,
    },
    /// A decision with no automatic effect ("we meet on Tuesdays"), or a poll with
    /// --option given two or more times.
    Decide {
        /// A choice for a poll. Give two or more.
        #[arg(long = "option", value_name = "TEXT")]
        options: Vec<String>,
    },
}

/// A position on a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StanceChoice {
    /// In favour.
    Agree,
    /// Taking part without a position.
    Abstain,
    /// Against, without stopping it.
    Disagree,
    /// A serious objection: under consent, it stops the proposal.
    Block,
}

impl From<StanceChoice> for StanceKind {
    fn from(choice: StanceChoice) -> StanceKind {
        match choice {
            StanceChoice::Agree => StanceKind::Agree,
            StanceChoice::Abstain => StanceKind::Abstain,
            StanceChoice::Disagree => StanceKind::Disagree,
            StanceChoice::Block => StanceKind::Block,
        }
    }
}

/// `kith stance`.
#[derive(Debug, Args)]
pub(crate) struct StanceArgs {
    #[command(flatten)]
    pub(crate) node: NodeArg,
    /// The proposal (its id, as `kith group show` lists it).
    #[arg(value_name = "PROPOSAL_ID")]
    pub(crate) proposal: EventId,
    /// The group (its id).
    #[arg(long, value_name = "GROUP_ID")]
    pub(crate) group: GroupId,
    /// Your position.
    #[arg(value_enum, value_name = "STANCE")]
    pub(crate) stance: StanceChoice,
    /// Why, in your words.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: Option<String>,
    /// For a poll: the number of your choice (1 for the first option).
    #[arg(long, value_name = "N")]
    pub(crate) option: Option<u32>,
}

/// What a role holder decided, for proposals the rules leave to a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VerdictChoice {
    /// It passes.
    Passed,
    /// It does not pass.
    Failed,
}

impl From<VerdictChoice> for Verdict {
    fn from(choice: VerdictChoice) -> Verdict {
        match choice {
            VerdictChoice::Passed => Verdict::Passed,
            VerdictChoice::Failed => Verdict::Failed,
        }
    }
}

/// `kith outcome`.
#[derive(Debug, Args)]
pub(crate) struct OutcomeArgs {
    #[command(flatten)]
    pub(crate) node: NodeArg,
    /// The proposal (its id).
    #[arg(value_name = "PROPOSAL_ID")]
    pub(crate) proposal: EventId,
    /// The group (its id).
    #[arg(long, value_name = "GROUP_ID")]
    pub(crate) group: GroupId,
    /// A few words on the outcome, for the record.
    #[arg(long, value_name = "TEXT")]
    pub(crate) explain: String,
    /// Only for proposals the rules leave to a role: what you, holding it, decided.
    #[arg(long, value_enum, value_name = "RESULT")]
    pub(crate) result: Option<VerdictChoice>,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::args::{Cli, Command};
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kith").chain(args.iter().copied()))
    }

    #[test]
    fn a_proposal_names_its_group_then_its_action() {
        let group = "ab".repeat(32);
        let key = kith_protocol::SecretKey::from_seed(&[1; 32])
            .public_key()
            .to_string();
        let cli = parse(&[
            "propose",
            &group,
            "--title",
            "T",
            "--text",
            "X",
            "--closes-in",
            "10m",
            "grant-role",
            "facilitator",
            &key,
            "--term",
            "90d",
            "--node",
            "http://h:1",
        ])
        .unwrap();
        let Command::Propose(args) = cli.command else {
            panic!("not a proposal")
        };
        assert_eq!(args.node.address, "http://h:1", "--node may come last");
        assert_eq!(args.closes_in.millis, 600_000);
        let ProposeAction::GrantRole { role, term, .. } = args.action else {
            panic!("not a grant")
        };
        assert_eq!(
            (role.as_str(), term.millis),
            ("facilitator", 90 * 86_400_000)
        );
        let cli = parse(&[
            "propose",
            &group,
            "--title",
            "T",
            "--text",
            "X",
            "--closes-in",
            "2d",
            "decide",
            "--option",
            "Tuesday",
            "--option",
            "Thursday",
        ])
        .unwrap();
        let Command::Propose(args) = cli.command else {
            panic!("not a proposal")
        };
        assert!(matches!(args.action, ProposeAction::Decide { ref options } if options.len() == 2));
        assert!(
            parse(&["propose", &group, "--title", "T", "--text", "X", "decide"]).is_err(),
            "a closing time is needed"
        );
    }

    #[test]
    fn stances_and_outcomes_read_their_words() {
        let (p, g) = ("cd".repeat(32), "ab".repeat(32));
        let cli = parse(&["stance", &p, "--group", &g, "block", "--reason", "not yet"]).unwrap();
        let Command::Stance(args) = cli.command else {
            panic!("not a stance")
        };
        assert_eq!(args.stance, StanceChoice::Block);
        assert!(parse(&["stance", &p, "--group", &g, "maybe"]).is_err());
        let cli = parse(&[
            "outcome",
            &p,
            "--group",
            &g,
            "--explain",
            "ok",
            "--result",
            "passed",
        ])
        .unwrap();
        let Command::Outcome(args) = cli.command else {
            panic!("not an outcome")
        };
        assert_eq!(args.result, Some(VerdictChoice::Passed));
        assert!(parse(&["group", "profile", &g, "--quiet", "--not-quiet"]).is_err());
        assert!(parse(&["group", "invite", &g, "--expires-in", "soon"]).is_err());
    }

    #[test]
    fn join_takes_a_code_or_a_group_id_and_move_names_the_new_node() {
        let group = "ab".repeat(32);
        let code = format!("kith-join:{group}:{}@http://h:1", "cd".repeat(32));
        let cli = parse(&["group", "join", &code, "--name", "Sam"]).unwrap();
        let Command::Group(GroupCommand::Join {
            target, via, wait, ..
        }) = cli.command
        else {
            panic!("not a join")
        };
        assert_eq!((target.as_str(), via, wait), (code.as_str(), None, 60));
        let cli = parse(&[
            "group",
            "join",
            &group,
            "--via",
            &"cd".repeat(32),
            "--wait",
            "5",
        ])
        .unwrap();
        let Command::Group(GroupCommand::Join { via, wait, .. }) = cli.command else {
            panic!("not a join")
        };
        assert_eq!((via.map(|v| v.to_hex()), wait), (Some("cd".repeat(32)), 5));
        let cli = parse(&[
            "group",
            "move",
            "--group",
            &group,
            "--to",
            "https://new.example.org",
        ])
        .unwrap();
        let Command::Group(GroupCommand::Move { to, via, wait, .. }) = cli.command else {
            panic!("not a move")
        };
        assert_eq!(
            (to.as_str(), via, wait),
            ("https://new.example.org", None, 60)
        );
        assert!(
            parse(&["group", "move", "--group", &group]).is_err(),
            "a move needs --to"
        );
    }

    #[test]
    fn spans_read_units() {
        assert_eq!("30s".parse::<Span>().unwrap().millis, 30_000);
        assert_eq!("10m".parse::<Span>().unwrap().millis, 600_000);
        assert_eq!("2h".parse::<Span>().unwrap().millis, 7_200_000);
        assert_eq!("7d".parse::<Span>().unwrap().millis, 604_800_000);
        assert_eq!("2w".parse::<Span>().unwrap().millis, 1_209_600_000);
        assert_eq!("3 days".parse::<Span>().unwrap().millis, 259_200_000);
        for bad in ["", "7", "d", "0d", "-1d", "1y", "99999999999999999999d"] {
            let err = bad.parse::<Span>().unwrap_err();
            assert!(err.contains("length of time"), "{bad}: {err}");
        }
    }
}
