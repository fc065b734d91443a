//! The command line: every command, flag and help text of `kith`.

use clap::{Args, Parser, Subcommand};
use kith_client::identity::DEFAULT_PROFILE;
use kith_client::{ProfileName, DEFAULT_NODE};
use kith_protocol::{GroupId, PublicKey};

use super::group_args::{GroupCommand, OutcomeArgs, ProposeArgs, StanceArgs};

const EXAMPLES: &str = "\
Getting started (the node's admin gives you its address and an invite code):
  kith post --node https://node.example.org --invite CODE \"Hello, I just joined\"
      Your first post makes you an identity (a key) and joins the node with the invite.
  kith post --node https://node.example.org \"Soup kitchen at 6, all welcome\"
  kith read --node https://node.example.org --follow

Groups (each command's --help has more):
  kith group create \"Eastside Food Share\" --purpose \"Weekly food boxes\"
  kith group show GROUP_ID
  kith propose GROUP_ID --title \"Meet on Tuesdays\" --text \"…\" --closes-in 3d decide
  kith stance PROPOSAL_ID --group GROUP_ID agree
  kith outcome PROPOSAL_ID --group GROUP_ID --explain \"Agreed by all who answered\"

Set KITH_NODE once instead of typing --node every time:
  export KITH_NODE=https://node.example.org";

/// Post, read and decide together on a Kith node.
#[derive(Debug, Parser)]
#[command(name = "kith", version, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// Which of your identities to use. Each profile is a separate key, e.g. one for
    /// each group you help with.
    #[arg(long, global = true, value_name = "NAME", default_value = DEFAULT_PROFILE)]
    pub(crate) profile: ProfileName,

    /// Print JSON (one object per line) instead of text, for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, show, back up or restore your identity (your key).
    #[command(subcommand)]
    Id(IdCommand),

    /// Join a node, using an invite code from its admin. Makes you an identity first if
    /// you have none. (`kith post --invite CODE` does the same as part of your first post.)
    #[command(
        after_help = "Example:\n  kith register --node https://node.example.org --invite 7fK2-p9Qx"
    )]
    Register {
        #[command(flatten)]
        node: NodeArg,
        /// The invite code the node's admin gave you.
        #[arg(long, value_name = "CODE")]
        invite: String,
    },

    /// Post a message. Makes you an identity first if you have none.
    #[command(after_help = "Examples:\n  \
        kith post --invite 7fK2-p9Qx \"Hello, I just joined\"   (your first post on a node)\n  \
        kith post \"Food bank open until 6pm today\"\n  \
        kith post --group 3f9a…(64 characters) \"Meeting moved to Thursday\"\n  \
        echo \"a longer message\" | kith post -")]
    Post {
        #[command(flatten)]
        node: NodeArg,
        /// Post in this group (its id: 64 characters of 0-9 and a-f).
        #[arg(long, value_name = "GROUP_ID")]
        group: Option<GroupId>,
        /// An invite code from the node's admin, to join the node with this post. Needed
        /// once, for your first post on a node; later posts need no invite.
        #[arg(long, value_name = "CODE")]
        invite: Option<String>,
        /// The message. Several words are joined with spaces; "-" reads it from the input.
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
    },

    /// Read messages: the ones already posted, then (with --follow) new ones as they come.
    #[command(after_help = "Examples:\n  \
        kith read --limit 20\n  \
        kith read --group 3f9a…(64 characters) --follow\n  \
        kith read --author kith1… --json")]
    Read {
        #[command(flatten)]
        node: NodeArg,
        /// Only messages in this group (its id: 64 characters of 0-9 and a-f).
        #[arg(long, value_name = "GROUP_ID")]
        group: Option<GroupId>,
        /// Only messages by this person (their public key, kith1…).
        #[arg(long, value_name = "KEY")]
        author: Option<PublicKey>,
        /// Show at most this many earlier messages (the newest ones).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Keep going: show new messages as they are posted, until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
    },

    /// Groups: create, invite, join, leave, show, and see the log and who is missing.
    #[command(subcommand)]
    Group(GroupCommand),

    /// Propose something to a group: admitting or removing someone, giving or ending a
    /// role, changing the rules, or any other decision or poll.
    #[command(after_help = "Examples:\n  \
        kith propose 3f9a…(group id) --title \"Welcome Dana\" --text \"Dana cooks with us on Fridays\" --closes-in 3d admit kith1…\n  \
        kith propose 3f9a…(group id) --title \"Sam facilitates\" --text \"For the spring\" --closes-in 3d grant-role facilitator kith1… --term 90d\n  \
        kith propose 3f9a…(group id) --title \"Meeting day\" --text \"Which day suits?\" --closes-in 2d decide --option Tuesday --option Thursday")]
    Propose(ProposeArgs),

    /// Give your stance on an open proposal. You can change it until it closes.
    #[command(after_help = "Examples:\n  \
        kith stance 81c2…(proposal id) --group 3f9a…(group id) agree\n  \
        kith stance 81c2…(proposal id) --group 3f9a…(group id) block --reason \"We promised that money to the clinic\"\n  \
        kith stance 81c2…(proposal id) --group 3f9a…(group id) agree --option 2")]
    Stance(StanceArgs),

    /// Write the outcome of a closed proposal. The stances are counted on this computer
    /// with the group's rules and shown before the outcome is sent.
    #[command(after_help = "Example:\n  \
        kith outcome 81c2…(proposal id) --group 3f9a…(group id) --explain \"No blocks; 7 of 9 took part\"")]
    Outcome(OutcomeArgs),
}

/// Identity commands.
#[derive(Debug, Subcommand)]
pub(crate) enum IdCommand {
    /// Create a new identity (a key pair) on this computer.
    #[command(after_help = "Examples:\n  kith id new\n  kith id new --profile food-bank")]
    New {
        /// Replace an existing identity of the same profile. Its old key is lost unless
        /// you exported it.
        #[arg(long)]
        force: bool,
    },

    /// Show your public key: the one to give others so they know it is you.
    #[command(after_help = "Example:\n  kith id show")]
    Show,

    /// Print your secret key, to back it up or move it to another computer. Anyone
    /// who has it can post as you.
    #[command(after_help = "Example:\n  kith id export > my-kith-key.txt")]
    Export,

    /// Use a secret key you exported earlier (kithsecret1…).
    #[command(after_help = "Examples:\n  \
        kith id import < my-kith-key.txt\n  \
        kith id import --profile food-bank kithsecret1…")]
    Import {
        /// The secret key. Leave it out to read it from the input, which keeps it out of
        /// your shell history.
        #[arg(value_name = "SECRET")]
        text: Option<String>,
        /// Replace an existing identity of the same profile.
        #[arg(long)]
        force: bool,
    },
}

/// Which node to talk to.
#[derive(Debug, Args)]
pub(crate) struct NodeArg {
    /// The node's address, as its admin gave it to you.
    #[arg(long = "node", env = "KITH_NODE", value_name = "URL", default_value = DEFAULT_NODE, global = true)]
    pub(crate) address: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kith").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn post_joins_words_and_reads_flags() {
        let group = "ab".repeat(32);
        let cli = parse(&[
            "post",
            "--node",
            "http://h:1",
            "--group",
            &group,
            "hi",
            "all",
        ])
        .unwrap();
        let Command::Post {
            node,
            group,
            invite,
            text,
        } = cli.command
        else {
            panic!("not a post")
        };
        assert_eq!(node.address, "http://h:1");
        assert_eq!(invite, None);
        assert_eq!(group.unwrap().to_hex(), "ab".repeat(32));
        assert_eq!(text, ["hi", "all"]);
        assert!(parse(&["post"]).is_err(), "a post needs text");
        assert!(parse(&["post", "--group", "xyz", "hi"]).is_err());
    }

    #[test]
    fn post_takes_an_invite() {
        let cli = parse(&["post", "--invite", "abc", "first", "post"]).unwrap();
        let Command::Post { invite, text, .. } = cli.command else {
            panic!("not a post")
        };
        assert_eq!(invite.as_deref(), Some("abc"));
        assert_eq!(text, ["first", "post"]);
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&[
            "read",
            "--json",
            "--profile",
            "food-bank",
            "-f",
            "--limit",
            "5",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.profile.as_str(), "food-bank");
        assert!(matches!(
            cli.command,
            Command::Read {
                follow: true,
                limit: Some(5),
                ..
            }
        ));
        let cli = parse(&["--profile", "x", "id", "show"]).unwrap();
        assert_eq!(cli.profile.as_str(), "x");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--profile", "../etc", "id", "show"]).is_err());
        assert!(parse(&["read", "--author", "kith1nope"]).is_err());
        assert!(parse(&["read", "--limit", "-3"]).is_err());
        assert!(parse(&["register"]).is_err(), "an invite is needed");
    }

    #[test]
    fn the_default_profile_is_default() {
        let cli = parse(&["id", "new"]).unwrap();
        assert_eq!(cli.profile, ProfileName::default());
        assert!(matches!(
            cli.command,
            Command::Id(IdCommand::New { force: false })
        ));
    }
}
