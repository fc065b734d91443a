//! The `kith` commands: [`args`] defines them, [`id`], [`post`] and [`read`] carry them
//! out, [`output`] formats what they print and [`report`] explains failures.

pub(crate) mod args;
pub(crate) mod id;
pub(crate) mod output;
pub(crate) mod post;
pub(crate) mod read;
pub(crate) mod report;

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
    }
}
