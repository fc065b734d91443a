//! The `kith` commands: [`args`] and [`group_args`] define them; [`id`], [`post`],
//! [`read`], [`group`], [`group_view`] and [`propose`] carry them out, with [`session`]
//! for what every group command does and [`homes`] for members' home nodes (join codes,
//! joining through another node, moving home); [`output`] and [`words`] format what they
//! print and [`report`] explains failures.

pub(crate) mod args;
pub(crate) mod group;
pub(crate) mod group_args;
pub(crate) mod group_view;
pub(crate) mod homes;
pub(crate) mod id;
pub(crate) mod output;
pub(crate) mod post;
pub(crate) mod propose;
pub(crate) mod read;
pub(crate) mod report;
pub(crate) mod session;
pub(crate) mod words;

use args::{Cli, Command};

/// Carries out one command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        profile,
        json,
        command,
    } = cli;
    match command {
        Command::Id(command) => id::run(command, &profile, json),
        Command::Register { node, invite } => {
            post::register(&node.address, &profile, &invite, json).await
        }
        Command::Post {
            node,
            group,
            invite,
            text,
        } => {
            let request = post::PostRequest {
                group,
                invite,
                words: text,
                json,
            };
            post::post(&node.address, &profile, request).await
        }
        Command::Read {
            node,
            group,
            author,
            limit,
            follow,
        } => {
            let request = read::ReadRequest {
                group,
                author,
                limit,
                follow,
                json,
            };
            read::read(&node.address, &profile, request).await
        }
        Command::Group(command) => group::run(command, &profile, json).await,
        Command::Propose(args) => propose::propose(args, &profile, json).await,
        Command::Stance(args) => propose::stance(args, &profile, json).await,
        Command::Outcome(args) => propose::outcome(args, &profile, json).await,
    }
}
