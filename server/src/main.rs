//! `kithd`: run a Kith node, or do admin tasks on its data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kith_protocol::group::body::{to_bytes, NodeRefusal, NodeRefusalWithdrawal};
use kith_protocol::validate::Limits;
use kith_protocol::{EventId, GroupId, PublicKey};
use kith_server::config::{Config, Durability};
use kith_server::federation::address::{check_peer_url, normalize_peer_url, normalized_text};
use kith_server::federation::peers::{self, AdminRequest, PeerStatus};
use kith_server::invite::Invite;
use kith_server::server::load_or_create_node_key;
use kith_server::store::{SledStore, Store as _};
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
    /// Add, block, unblock or list peer nodes (the nodes this one will sync groups with).
    ///
    /// `add`, `block` and `unblock` never touch the store, so they work while the node runs:
    /// they append the request to DATA_DIR/admin/peers.jsonl, and a running node applies it
    /// within a few seconds (a stopped one when it next starts).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Refuse to host a group, or one member's events in it, saying why; or withdraw a
    /// refusal.
    ///
    /// The refusal is not kept private: the node publishes it in the group, signed with the
    /// node key, and it appears in the group's accountability log with your reason. From then
    /// on the node refuses the group's events (or that member's). The node may refuse only in
    /// a group where it is home to a member. Works while the node runs: it publishes the
    /// refusal within a few seconds (a stopped node does when it next starts); its log says
    /// whether it was published, with the refusal's event id.
    ///
    /// With --withdraw and a refusal's event id (from the node's log, or `refusals` in the
    /// group's state), the node takes that refusal back the same way: it publishes a signed
    /// withdrawal in the group, shown in its log with your reason if you give one, and hosts
    /// what the refusal covered again. Only refusals this node announced can be withdrawn.
    ///
    /// Example: kithd admin refuse --group 3f…a1 --member kith1… --reason "posts threats"
    ///
    /// Example: kithd admin refuse --withdraw 9c…07 --reason "we talked it over"
    Refuse {
        /// The group's id: 64 hexadecimal characters, the id members use with `kith group show`.
        #[arg(long, required_unless_present = "withdraw")]
        group: Option<String>,
        /// The member whose events to refuse (their key, kith1…); without it, the whole group.
        #[arg(long, conflicts_with = "withdraw")]
        member: Option<String>,
        /// Why, in plain words: it is shown to the group's members. Required to refuse;
        /// optional to withdraw.
        #[arg(long, required_unless_present = "withdraw")]
        reason: Option<String>,
        /// Withdraw the refusal with this event id (64 hexadecimal characters) instead.
        #[arg(long, value_name = "REFUSAL_EVENT_ID", conflicts_with = "group")]
        withdraw: Option<String>,
    },
}

#[derive(Subcommand)]
enum PeerCommand {
    /// Add a peer by its base address, e.g. https://kith.example.org.
    ///
    /// The address must be public: addresses that are or resolve to private, loopback,
    /// link-local or other non-public ranges are refused unless kithd.toml has
    /// `[federation] allow_private_addresses = true` (for testing). A running node starts
    /// linking with it within a few seconds.
    Add {
        /// The peer's base address (http:// or https://, no path).
        url: String,
    },
    /// Block a peer by its address or its node key (kith1…).
    ///
    /// Blocked by node key, a running node closes any link open with it within a few seconds,
    /// and neither accepts nor opens new links with it. Blocked by address, the node stops
    /// dialing that address; if it has linked with that address since it started, it also
    /// cuts off the node that answered there, exactly as a block of its node key would. If it
    /// has not, its log says so: then block the node key as well to cut that node off.
    /// Undo a block with `kithd admin peer unblock`.
    ///
    /// Example: kithd admin peer block https://spam.example --reason "floods us"
    Block {
        /// The peer's base address, or its node key.
        #[arg(value_name = "URL_OR_KEY")]
        target: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
    },
    /// Lift a block, naming the address or the node key (kith1…) that was blocked.
    ///
    /// Unblocking a node key lifts every block of that node (also of addresses blocked with
    /// its key): a running node accepts and opens links with it again within a few seconds,
    /// without a restart. Unblocking an address lifts its block, and that of the node that
    /// answered there unless that node is still blocked another way (by its key); the address
    /// is then not an added peer: add it again to link with it. Unblocking something not
    /// blocked changes nothing (the node's log says so).
    ///
    /// Example: kithd admin peer unblock https://spam.example
    Unblock {
        /// The blocked base address, or the blocked node key.
        #[arg(value_name = "URL_OR_KEY")]
        target: String,
    },
    /// List the peers in the store and the requests not yet applied.
    ///
    /// While the node runs its store is locked, so only the requests it has not applied
    /// yet are shown (it applies them within a few seconds).
    List,
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
        Some(Command::Admin(Admin::Peer(command))) => peer(&cli.data_dir, command),
        Some(Command::Admin(Admin::Refuse {
            group,
            member,
            reason,
            withdraw,
        })) => refuse(
            &cli.data_dir,
            group.as_deref(),
            member.as_deref(),
            reason,
            withdraw.as_deref(),
        ),
    }
}

fn now_ms() -> anyhow::Result<u64> {
    Ok(u64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis(),
    )?)
}

fn peer(data_dir: &Path, command: PeerCommand) -> anyhow::Result<()> {
    ensure_node_dir(data_dir)?;
    let request = match command {
        PeerCommand::List => return list_peers(data_dir),
        PeerCommand::Add { url } => {
            let config = Config::load_or_create(data_dir)?;
            let checked = check_peer_url(&url, config.federation.allow_private_addresses)?;
            AdminRequest::Add {
                url: checked.as_str().to_owned(),
                at_ms: now_ms()?,
            }
        }
        PeerCommand::Block { target, reason } => {
            let at_ms = now_ms()?;
            match peer_target(&target)? {
                Target::Key(key) => AdminRequest::BlockKey { key, reason, at_ms },
                Target::Url(url) => AdminRequest::BlockUrl { url, reason, at_ms },
            }
        }
        PeerCommand::Unblock { target } => {
            let at_ms = now_ms()?;
            match peer_target(&target)? {
                Target::Key(key) => AdminRequest::UnblockKey { key, at_ms },
                Target::Url(url) => AdminRequest::UnblockUrl { url, at_ms },
            }
        }
    };
    peers::append_admin_request(data_dir, &request)?;
    println!("recorded: {request}");
    eprintln!(
        "A running node applies this within a few seconds; a stopped one when it next starts."
    );
    Ok(())
}

/// A peer named on the command line by `block` or `unblock`.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// Its node key.
    Key(PublicKey),
    /// Its normalised base address.
    Url(String),
}

/// Reads a node key (kith1…) or a base address. The address is only parsed, never
/// resolved: any well-formed address may be blocked.
fn peer_target(target: &str) -> anyhow::Result<Target> {
    if let Ok(key) = target.parse() {
        Ok(Target::Key(key))
    } else if target.starts_with("kith1") {
        anyhow::bail!("'{target}' is not a valid node key; copy it again from the peer's node info")
    } else {
        let url = normalize_peer_url(target)
            .context("give the peer's base address (https://…) or its node key (kith1…)")?;
        Ok(Target::Url(normalized_text(&url)))
    }
}

/// The request `kithd admin refuse` records, with its arguments checked.
fn refuse_request(
    group: &str,
    member: Option<&str>,
    reason: String,
) -> anyhow::Result<AdminRequest> {
    let group: GroupId = group.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "'{group}' is not a group id: a group id is 64 hexadecimal characters, the id members use with kith group show"
        )
    })?;
    let member = member
        .map(|m| {
            m.trim().parse::<PublicKey>().map_err(|_| {
                anyhow::anyhow!(
                    "'{m}' is not a member key: give the member's key as it appears in the group (kith1…)"
                )
            })
        })
        .transpose()?;
    let reason = reason.trim().to_owned();
    anyhow::ensure!(
        !reason.is_empty(),
        "give a reason with --reason \"…\": a refusal is shown to the group's members with its reason"
    );
    let body = NodeRefusal {
        reason: reason.clone(),
        member,
    };
    NodeRefusal::parse(&to_bytes(&body), &Limits::default())
        .map_err(|e| anyhow::anyhow!("the refusal cannot be recorded: {e}"))?;
    Ok(AdminRequest::Refuse {
        group,
        member,
        reason,
        at_ms: now_ms()?,
    })
}

/// The request `kithd admin refuse --withdraw` records, with its arguments checked.
fn withdraw_request(refusal: &str, reason: Option<String>) -> anyhow::Result<AdminRequest> {
    let refusal: EventId = refusal.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "'{refusal}' is not an event id: give the refusal's event id, 64 hexadecimal characters (the node logged it when it published the refusal; the group's state lists it under refusals)"
        )
    })?;
    let reason = reason.map(|r| r.trim().to_owned());
    anyhow::ensure!(
        reason.as_ref().is_none_or(|r| !r.is_empty()),
        "the reason is blank: say why in --reason \"…\", or leave --reason out"
    );
    let body = NodeRefusalWithdrawal {
        refusal,
        reason: reason.clone(),
    };
    NodeRefusalWithdrawal::parse(&to_bytes(&body), &Limits::default())
        .map_err(|e| anyhow::anyhow!("the withdrawal cannot be recorded: {e}"))?;
    Ok(AdminRequest::WithdrawRefusal {
        refusal,
        reason,
        at_ms: now_ms()?,
    })
}

fn refuse(
    data_dir: &Path,
    group: Option<&str>,
    member: Option<&str>,
    reason: Option<String>,
    withdraw: Option<&str>,
) -> anyhow::Result<()> {
    ensure_node_dir(data_dir)?;
    let request = match withdraw {
        Some(refusal) => withdraw_request(refusal, reason)?,
        None => refuse_request(
            group.unwrap_or_default(),
            member,
            reason.unwrap_or_default(),
        )?,
    };
    peers::append_admin_request(data_dir, &request)?;
    println!("recorded: {request}");
    if withdraw.is_some() {
        eprintln!(
            "A running node publishes this withdrawal in the refusal's group within a few \
             seconds (a stopped one when it next starts), if the refusal is this node's and still \
             in force. Its log says whether it did; the group's log (kith group log) shows the \
             withdrawal."
        );
    } else {
        eprintln!(
            "A running node publishes this refusal in the group within a few seconds (a stopped one \
             when it next starts), if it is home to a member of the group. Its log says whether it \
             did; the group's log (kith group log) shows the refusal and your reason."
        );
    }
    Ok(())
}

fn list_peers(data_dir: &Path) -> anyhow::Result<()> {
    let store_dir = data_dir.join(kith_server::server::STORE_DIR);
    let applied = if !store_dir.exists() {
        println!("No peers stored yet (the node has not run on this data directory).");
        0
    } else {
        match SledStore::open(&store_dir, 4 << 20, false) {
            Ok(store) => {
                let stored = store.peers()?;
                if stored.is_empty() {
                    println!("No peers stored.");
                } else {
                    println!("Peers:");
                }
                for p in stored {
                    let name = match (&p.url, &p.key) {
                        (Some(url), Some(key)) => format!("{url} ({key})"),
                        (Some(url), None) => url.clone(),
                        (None, Some(key)) => key.to_string(),
                        (None, None) => "?".to_owned(),
                    };
                    let since = utc(p.since_ms);
                    match p.status {
                        PeerStatus::Added => println!("  added    {name}  since {since}"),
                        PeerStatus::Blocked => {
                            println!("  blocked  {name}  since {since}: {}", p.reason)
                        }
                    }
                }
                store.admin_peers_applied()?
            }
            Err(e) if e.is_locked() => {
                println!("The node is running; showing requests not yet applied.");
                peers::applied_hint(data_dir)
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (pending, _) = peers::read_admin_log(data_dir, applied)?;
    if !pending.is_empty() {
        println!(
            "Not yet applied (a running node applies these within a few seconds, a stopped one when it next starts):"
        );
        for request in pending {
            match request {
                Ok(r) => println!("  {r}"),
                Err(line) => println!("  unreadable, will be skipped: {line}"),
            }
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM UTC` for milliseconds since the epoch.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn ensure_node_dir(data_dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        data_dir.join(kith_server::server::NODE_KEY_FILE).exists(),
        "there is no node key in {}: is this the node's data directory? Pass the same --data-dir the node runs with",
        data_dir.display()
    );
    Ok(())
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
        let cli =
            Cli::try_parse_from(["kithd", "admin", "peer", "block", "x", "--reason", "r"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Admin(Admin::Peer(PeerCommand::Block { .. })))
        ));
        assert!(Cli::try_parse_from(["kithd", "admin", "peer", "block", "x"]).is_err());
    }

    #[test]
    fn unblock_takes_an_address_or_a_node_key() {
        let cli = Cli::try_parse_from(["kithd", "admin", "peer", "unblock", "https://x.example"])
            .unwrap();
        let Some(Command::Admin(Admin::Peer(PeerCommand::Unblock { target }))) = cli.command else {
            panic!("not parsed as unblock")
        };
        assert_eq!(target, "https://x.example");
        // No reason is asked for, and a target is required.
        assert!(
            Cli::try_parse_from(["kithd", "admin", "peer", "unblock", "x", "--reason", "r"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["kithd", "admin", "peer", "unblock"]).is_err());

        let key = kith_protocol::SecretKey::from_seed(&[4; 32]).public_key();
        assert_eq!(peer_target(&key.to_string()).unwrap(), Target::Key(key));
        assert_eq!(
            peer_target("HTTPS://X.example:443/").unwrap(),
            Target::Url("https://x.example".into())
        );
        let err = peer_target("kith1nope").unwrap_err().to_string();
        assert!(err.contains("not a valid node key"), "{err}");
        let err = format!("{:#}", peer_target("ftp://x.example").unwrap_err());
        assert!(err.contains("base address (https://…)"), "{err}");
    }

    #[test]
    fn refuse_arguments_are_checked_with_plain_errors() {
        let group = "ab".repeat(32);
        let member = kith_protocol::SecretKey::from_seed(&[3; 32])
            .public_key()
            .to_string();
        let cli = Cli::try_parse_from([
            "kithd", "admin", "refuse", "--group", &group, "--member", &member, "--reason", "r",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Admin(Admin::Refuse {
                member: Some(_),
                ..
            }))
        ));
        let missing = Cli::try_parse_from(["kithd", "admin", "refuse", "--group", &group])
            .err()
            .expect("a reason is required")
            .to_string();
        assert!(missing.contains("--reason"), "{missing}");

        let request = refuse_request(&group, Some(&member), "  spam  ".into()).unwrap();
        let AdminRequest::Refuse {
            group: g,
            member: m,
            reason,
            ..
        } = &request
        else {
            panic!("{request:?}")
        };
        assert_eq!((g.to_string(), reason.as_str()), (group.clone(), "spam"));
        assert_eq!(m.map(|k| k.to_string()), Some(member.clone()));
        assert!(refuse_request(&group, None, "r".into()).is_ok());

        let err = refuse_request("nope", None, "r".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'nope' is not a group id"), "{err}");
        let err = refuse_request(&group, Some("kith1nope"), "r".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'kith1nope' is not a member key"), "{err}");
        let err = refuse_request(&group, None, "   ".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("give a reason"), "{err}");
        let err = refuse_request(&group, None, "x".repeat(1001))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be recorded"), "{err}");
    }

    #[test]
    fn withdraw_arguments_are_checked_with_plain_errors() {
        let refusal = "9c".repeat(32);
        let cli = Cli::try_parse_from([
            "kithd",
            "admin",
            "refuse",
            "--withdraw",
            &refusal,
            "--reason",
            "we talked it over",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Admin(Admin::Refuse {
                withdraw: Some(_),
                group: None,
                reason: Some(_),
                ..
            }))
        ));
        // A reason is optional for a withdrawal; a group or a member makes no sense with it.
        assert!(Cli::try_parse_from(["kithd", "admin", "refuse", "--withdraw", &refusal]).is_ok());
        for extra in [["--group", "ab"], ["--member", "kith1x"]] {
            let err = Cli::try_parse_from([
                "kithd",
                "admin",
                "refuse",
                "--withdraw",
                &refusal,
                extra[0],
                extra[1],
            ])
            .err()
            .expect("cannot be used together")
            .to_string();
            assert!(err.contains("cannot be used with"), "{err}");
        }
        // Without --withdraw, a group and a reason are required as before.
        let err = Cli::try_parse_from(["kithd", "admin", "refuse", "--reason", "r"])
            .err()
            .expect("a group is required")
            .to_string();
        assert!(err.contains("--group"), "{err}");

        let request = withdraw_request(&format!(" {refusal} "), Some(" calm now ".into())).unwrap();
        let AdminRequest::WithdrawRefusal {
            refusal: r, reason, ..
        } = &request
        else {
            panic!("{request:?}")
        };
        assert_eq!(
            (r.to_string(), reason.as_deref()),
            (refusal.clone(), Some("calm now"))
        );
        assert_eq!(
            request.to_string(),
            format!("withdraw refusal {refusal} (calm now)")
        );
        let request = withdraw_request(&refusal, None).unwrap();
        assert_eq!(request.to_string(), format!("withdraw refusal {refusal}"));

        let err = withdraw_request("nope", None).unwrap_err().to_string();
        assert!(err.contains("'nope' is not an event id"), "{err}");
        let err = withdraw_request(&refusal, Some("  ".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the reason is blank"), "{err}");
        let err = withdraw_request(&refusal, Some("x".repeat(1001)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be recorded"), "{err}");
    }

    #[test]
    fn dates_read_plainly() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_776_687_300_000), "2026-04-20 12:15 UTC");
    }
}
