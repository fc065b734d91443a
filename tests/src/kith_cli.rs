//! The `kith` command-line client as a real process, for tests that use it the way a person
//! would: its own Kith folder (`KITH_HOME`), optionally a default node (`KITH_NODE`).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

/// How long one `kith` command may take before the test fails.
pub const COMMAND_WAIT: Duration = Duration::from_secs(90);

/// A `kith` command with its Kith folder in `home` and `node` as its default node (none:
/// `KITH_NODE` is removed, so every command must name `--node`). Pipes for all three streams.
pub fn kith_command(home: &Path, node: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(crate::workspace_binary("kith"));
    command
        .args(args)
        .env("KITH_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match node {
        Some(node) => command.env("KITH_NODE", node),
        None => command.env_remove("KITH_NODE"),
    };
    command
}

/// Runs `kith args` to the end, with `input` on its standard input; panics if it takes
/// longer than [`COMMAND_WAIT`].
pub async fn run_kith(
    home: &Path,
    node: Option<&str>,
    args: &[&str],
    input: Option<&str>,
) -> Output {
    let mut child = kith_command(home, node, args).spawn().expect("kith starts");
    let mut stdin = child.stdin.take().expect("kith's standard input is piped");
    if let Some(input) = input {
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("write to kith's standard input");
    }
    drop(stdin);
    tokio::time::timeout(COMMAND_WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kith {args:?} did not finish"))
        .expect("kith's output")
}
