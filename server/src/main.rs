//! `kithd`: run a Kith node, or do admin tasks on its data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kith_server::config::{Config, Durability};
use kith_server::invite::Invite;
use kith_server::server::load_or_create_node_key;
use kith_server::Server;
use rand::RngCore as _;

/// A Kith node: stores and relays the signed posts and decisions of the groups it hosts.
///
/// Run with no command to start the node. The first run creates DATA_DIR with the node's
/// key (node.key) and a commented config file (kithd.toml). Settings come from that file,
/// then KITH_... environment variables, then these flags.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Where the node keeps its key, config and events.
    #[arg(
        long,
        env = "KITH_DATA_DIR",
        default_value = "./kith-data",
        global = true
    )]
    data_dir: PathBuf,
    #[command(flatten)]
    run: RunFlags,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Settings that override the config file.
#[derive(Args)]
struct RunFlags {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, env = "KITH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Page cache for the store, in MiB.
    #[arg(long, env = "KITH_CACHE_MIB")]
    cache_mib: Option<u64>,
    /// What an acknowledged write survives: process-crash or power-loss.
    #[arg(long, env = "KITH_DURABILITY", value_parser = parse_durability)]
    durability: Option<Durability>,
    /// Let anyone register without an invite code.
    #[arg(long, env = "KITH_OPEN_REGISTRATION")]
    open_registration: Option<bool>,
}

#[derive(Subcommand)]
enum Command {
    /// Admin tasks. They work while the node is running.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Subcommand)]
enum Admin {
    /// Print a new invite code that lets people register their key on this node.
    ///
    /// Example: kithd admin invite --uses 5 --expires-in 7d
    Invite {
        /// How many people may register with this code.
        #[arg(long, default_value_t = 1)]
        uses: u16,
        /// How long the code stays valid: e.g. 30m, 12h, 7d, or "never".
        #[arg(long, default_value = "7d", value_parser = parse_expiry)]
        expires_in: Expiry,
    },
}

fn parse_durability(text: &str) -> Result<Durability, String> {
    match text {
        "process-crash" => Ok(Durability::ProcessCrash),
        "power-loss" => Ok(Durability::PowerLoss),
        _ => Err("use process-crash or power-loss".into()),
    }
}

/// Seconds from now, or `None` for "never".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expiry(Option<u64>);

fn parse_expiry(text: &str) -> Result<Expiry, String> {
    if text == "never" {
        return Ok(Expiry(None));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration; write e.g. 30m, 12h, 7d or never"))?;
    let secs = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "'{text}' needs a unit: m (minutes), h (hours) or d (days)"
            ))
        }
    };
    Ok(Expiry(Some(n * secs)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.data_dir, cli.run).await,
        Some(Command::Admin(Admin::Invite { uses, expires_in })) => {
            invite(&cli.data_dir, uses, expires_in.0)
        }
    }
}

async fn run(data_dir: &Path, flags: RunFlags) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KITH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("could not create the data directory {}", data_dir.display()))?;
    let first_run = !data_dir.join(kith_server::server::NODE_KEY_FILE).exists();
    let mut config = Config::load_or_create(data_dir)?;
    if let Some(listen) = flags.listen {
        config.listen = listen;
    }
    if let Some(mib) = flags.cache_mib {
        config.cache_mib = mib;
    }
    if let Some(durability) = flags.durability {
        config.durability = durability;
    }
    if let Some(open) = flags.open_registration {
        config.open_registration = open;
    }
    let server = Server::start(data_dir, config).await?;
    println!(
        "kithd is running at {} (node key {}). Stop it with Ctrl-C.",
        server.url(),
        server.node_key()
    );
    if first_run {
        // The first member needs a way in; later invites come from `kithd admin invite`.
        let code = mint(data_dir, 1, Some(7 * 86_400))?;
        println!(
            "First run: an invite code for this node's first member (one use, valid 7 days):\n  {code}\n\
             Use it with: kith post --invite {code} \"your first post\""
        );
    }
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

fn invite(data_dir: &Path, uses: u16, expires_in: Option<u64>) -> anyhow::Result<()> {
    anyhow::ensure!(uses > 0, "--uses must be at least 1");
    anyhow::ensure!(
        data_dir.join(kith_server::server::NODE_KEY_FILE).exists(),
        "there is no node key in {}: is this the node's data directory? Pass the same --data-dir the node runs with",
        data_dir.display()
    );
    let code = mint(data_dir, uses, expires_in)?;
    println!("{code}");
    let until = match expires_in {
        None => "never expires".to_owned(),
        Some(secs) => format!("expires in {} hours", secs / 3600),
    };
    eprintln!(
        "This code lets {uses} key(s) register on this node; it {until}. Share it privately."
    );
    Ok(())
}

/// An invite code signed with the node key in `data_dir`.
fn mint(data_dir: &Path, uses: u16, expires_in: Option<u64>) -> anyhow::Result<String> {
    let key = load_or_create_node_key(data_dir)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let expires_at = match expires_in {
        None => 0,
        Some(secs) => u32::try_from(now + secs).context("that expiry is too far in the future")?,
    };
    let mut nonce = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let code = Invite {
        expires_at,
        max_uses: uses,
        nonce,
    }
    .encode(&key);
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["kithd", "admin", "invite"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Admin(Admin::Invite {
                uses: 1,
                expires_in: Expiry(Some(604_800))
            }))
        ));
        let cli =
            Cli::try_parse_from(["kithd", "admin", "invite", "--expires-in", "never"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Admin(Admin::Invite {
                expires_in: Expiry(None),
                ..
            }))
        ));
        assert!(Cli::try_parse_from(["kithd", "admin", "invite", "--expires-in", "7w"]).is_err());
    }
}
