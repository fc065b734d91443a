//! Node configuration: defaults, then the config file in the data directory, then `KITH_…`
//! environment variables, then command-line flags (the last one set wins).
//!
//! The first run writes [`TEMPLATE`] (every setting, commented) to `<data-dir>/kithd.toml`.

use std::net::SocketAddr;
use std::path::Path;

use kith_protocol::Limits;
use serde::{Deserialize, Serialize};

/// Name of the config file inside the data directory.
pub const CONFIG_FILE: &str = "kithd.toml";

/// What an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Survives the kithd process being killed (sled's flush); not a power cut.
    ProcessCrash,
    /// Also forces the data file to the device before acknowledging (fsync).
    PowerLoss,
}

/// Everything a node can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// sled's page cache, in MiB.
    pub cache_mib: u64,
    /// Most group events held in memory (the groups used least recently are dropped
    /// beyond it and read back from the store when next needed).
    pub group_cache_events: usize,
    /// Most bytes of group events held in memory, in MiB (posts count without their
    /// bodies, which the groups' rules never need); beyond it, as beyond
    /// `group_cache_events`, the groups used least recently are dropped.
    pub group_cache_mib: u64,
    /// What an acknowledged write survives.
    pub durability: Durability,
    /// Let any key register without an invite.
    pub open_registration: bool,
    /// Limits on events (shared with the protocol).
    pub limits: Limits,
    /// Limits on connections.
    pub connections: ConnectionLimits,
    /// Talking to other nodes.
    pub federation: FederationConfig,
}

/// Settings for talking to other nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FederationConfig {
    /// Let this node contact peers at private, loopback, link-local and other non-public
    /// addresses. For testing only: otherwise whoever names a peer could make the node reach
    /// services inside its own network.
    pub allow_private_addresses: bool,
    /// Base URLs of nodes to link with (`https://host[:port]`, linked over TLS, or
    /// `http://host:port`), besides those added with `kithd admin peer add`. Each is checked
    /// with the address rules above before dialing.
    pub peers: Vec<String>,
    /// A PEM file of CA certificates trusted for `https://` peers besides the built-in
    /// (Mozilla) roots, for peers behind a private CA. Empty: the built-in roots only. Read
    /// once at start; a missing or unreadable file stops the node with a message.
    pub extra_root_certs: String,
    /// The base URL other nodes reach this node at, named as members' home in their joins and
    /// profiles. Empty: `http://` and the listen address (right only on one machine).
    pub public_url: String,
    /// Link with the nodes that members of the groups held here name as their home, so their
    /// events reach those nodes. Their addresses are checked like any peer's. False: link
    /// only with the peers listed above or added by an admin.
    pub dial_member_homes: bool,
    /// Most events queued for one peer that is away; beyond it the oldest are dropped and
    /// the peer catches up by reconciliation when it is back.
    pub outbox_max_per_peer: u64,
    /// Seconds without anything arriving on a link (not even the answer to a ping) before
    /// the link is taken for dead, closed and dialed again. Each side pings every third of
    /// this, which also keeps proxies and NATs from cutting a quiet link. At least 3.
    pub link_timeout_secs: u64,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            allow_private_addresses: false,
            peers: Vec::new(),
            extra_root_certs: String::new(),
            public_url: String::new(),
            dial_member_homes: true,
            outbox_max_per_peer: 100_000,
            link_timeout_secs: 90,
        }
    }
}

/// Per-connection limits: what keeps one client from hurting the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Most WebSocket connections at once.
    pub max_connections: usize,
    /// Largest frame accepted, in bytes; up to twice this is answered with `frame_too_large`,
    /// beyond that the connection is closed.
    pub max_frame_bytes: usize,
    /// Most open subscriptions per connection.
    pub max_subscriptions: usize,
    /// Most list entries (ids, groups, kinds, authors) in one filter.
    pub max_filter_entries: usize,
    /// Most stored events sent for one subscription.
    pub max_stored_results: u32,
    /// Most index entries examined for one subscription's stored results.
    pub max_scan: usize,
    /// Frames queued for a client before it counts as a slow reader and is disconnected.
    pub outbound_queue: usize,
    /// Live events buffered for all connections; a connection that falls this far behind is
    /// disconnected as a slow reader.
    pub live_buffer: usize,
    /// Publishes per second per connection (sustained).
    pub publish_per_second: f64,
    /// Publishes allowed in a burst per connection.
    pub publish_burst: f64,
    /// Publishes per second per key, across all its connections.
    pub key_publish_per_second: f64,
    /// Publishes allowed in a burst per key.
    pub key_publish_burst: f64,
    /// Frames of any type per second per connection.
    pub frames_per_second: f64,
    /// Frames of any type in a burst.
    pub frames_burst: f64,
    /// Seconds a login challenge stays valid.
    pub challenge_ttl_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cache_mib: 64,
            group_cache_events: 50_000,
            group_cache_mib: 32,
            durability: Durability::ProcessCrash,
            open_registration: false,
            limits: Limits::default(),
            connections: ConnectionLimits::default(),
            federation: FederationConfig::default(),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            max_frame_bytes: 128 * 1024,
            max_subscriptions: 16,
            max_filter_entries: 256,
            max_stored_results: 500,
            max_scan: 20_000,
            outbound_queue: 256,
            live_buffer: 4096,
            publish_per_second: 10.0,
            publish_burst: 50.0,
            key_publish_per_second: 10.0,
            key_publish_burst: 50.0,
            frames_per_second: 100.0,
            frames_burst: 200.0,
            challenge_ttl_secs: 120,
        }
    }
}

/// The config file written on first run. Every value shown is the default.
pub const TEMPLATE: &str = r#"# kithd configuration. Values here are the defaults; change what you need.
# Order of precedence: this file, then KITH_... environment variables, then flags.

# Address to listen on. Keep 127.0.0.1 behind a reverse proxy (see deploy/).
listen = "127.0.0.1:8080"

# sled page cache in MiB. 64 fits a 512 MiB VPS with room to spare.
cache_mib = 64

# Most group events kept in memory, to check new events against their group's rules. Each
# takes well under 1 KB (posts are kept without their text, which the rules never need),
# so 50000 is at most about 50 MiB. Beyond it the groups used least recently are dropped
# from memory and read back from disk the next time they are needed: lower saves memory,
# but a node that keeps reloading groups (kith_group_loads_total in /metrics rising fast)
# spends time and disk reads on it. One group larger than this is still loaded, alone.
group_cache_events = 50000

# Most MiB of those events' bytes kept in memory (proposals, decisions and other group
# events keep their text; posts do not). Groups are dropped beyond it as above.
group_cache_mib = 32

# What an acknowledged event survives:
#   "process-crash": kithd being killed (kill -9, OOM); fast.
#   "power-loss":    also a power cut: fsync before every acknowledgement (group-committed).
durability = "process-crash"

# Let anyone register a key without an invite code.
open_registration = false

[limits]
# Largest event (header + signature + body), in bytes.
max_event_bytes = 69632
# Largest body, in bytes.
max_body_bytes = 65536
# Most parents an event may cite.
max_parents = 16
# Longest text field, in characters.
max_text_chars = 10000
# How far ahead of this node's clock an event's time may be, in milliseconds.
max_future_skew_ms = 900000

[connections]
max_connections = 10000
# Largest frame in bytes; up to twice this gets a "frame_too_large" reply, beyond closes.
max_frame_bytes = 131072
max_subscriptions = 16
max_filter_entries = 256
max_stored_results = 500
max_scan = 20000
# Frames queued for a slow client before it is disconnected.
outbound_queue = 256
# Live events buffered; a client this far behind is disconnected.
live_buffer = 4096
publish_per_second = 10.0
publish_burst = 50.0
key_publish_per_second = 10.0
key_publish_burst = 50.0
frames_per_second = 100.0
frames_burst = 200.0
challenge_ttl_secs = 120

[federation]
# Let this node contact peers at private addresses (10/8, 192.168/16, 127.0.0.1, ::1,
# fc00::/7, link-local, ...). Only for testing on one machine or a private network: when
# true, whoever names a peer can make this node reach services inside your network.
allow_private_addresses = false
# Nodes to link with and follow the public groups of, e.g. ["https://kith.example.org"]
# (linked over TLS: wss://) or ["http://10.8.0.2:8080"] over a private network or tunnel.
peers = []
# A PEM file of extra CA certificates to trust for https:// peers, besides the built-in
# Mozilla roots, e.g. "/etc/kith/private-ca.pem" for peers behind a private CA. Empty
# means the built-in roots only.
extra_root_certs = ""
# The URL other nodes reach this node at, e.g. "https://kith.example.org". Members who live
# here name it as their home. Empty means http:// and the listen address.
public_url = ""
# Link with the nodes that members of groups held here name as their home (their addresses
# are checked like any peer's). False links only with the peers above.
dial_member_homes = true
# Most events queued for a peer that is away; older ones are dropped and the peer catches
# up by reconciliation when it is back.
outbox_max_per_peer = 100000
# Seconds without anything arriving from a linked node (it is pinged every third of this)
# before the link is taken for dead and dialed again: a node that vanished without closing
# the connection, or a network that drops packets, is noticed within this time.
link_timeout_secs = 90
"#;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading or writing the file failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What we tried.
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped settings.
    #[error(
        "{path} has a mistake: {message}. Fix it, or move it away to get a fresh default file"
    )]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (names the line and setting).
        message: String,
    },
}

impl Config {
    /// Loads `<dir>/kithd.toml`, writing the default template first if it does not exist.
    pub fn load_or_create(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let shown = path.display().to_string();
        if !path.exists() {
            std::fs::write(&path, TEMPLATE).map_err(|source| ConfigError::Io {
                action: "write",
                path: shown.clone(),
                source,
            })?;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            action: "read",
            path: shown.clone(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: shown,
            message,
        })
    }

    /// Parses config text, refusing unknown settings anywhere (a typo must not be ignored).
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        // `Limits` ignores unknown fields (so clients can read newer nodes' limits), so its
        // table is checked against the known names here.
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        if let Some(toml::Value::Table(limits)) = table.get("limits") {
            let known = toml::Table::try_from(Limits::default()).map_err(|e| e.to_string())?;
            if let Some(unknown) = limits.keys().find(|k| !known.contains_key(*k)) {
                let names: Vec<&String> = known.keys().collect();
                return Err(format!(
                    "unknown setting `{unknown}` in [limits]; the known ones are {names:?}"
                ));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_exactly_the_defaults() {
        let parsed: Config = toml::from_str(TEMPLATE).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn typo_in_config_is_named() {
        let err = Config::parse("lissen = \"1.2.3.4:5\"").unwrap_err();
        assert!(err.contains("lissen"), "{err}");
        let err = Config::parse("[limits]\nmax_parrents = 3").unwrap_err();
        assert!(err.contains("max_parrents"), "{err}");
        let err = Config::parse("[connections]\nmax_subscription = 3").unwrap_err();
        assert!(err.contains("max_subscription"), "{err}");
        let err = Config::parse("[federation]\nallow_private_address = true").unwrap_err();
        assert!(err.contains("allow_private_address"), "{err}");
    }

    #[test]
    fn extra_root_certs_default_to_none_and_can_be_named() {
        assert_eq!(Config::default().federation.extra_root_certs, "");
        let config = Config::parse(
            "[federation]\npeers = [\"https://kith.example.org\"]\n\
             extra_root_certs = \"/etc/kith/ca.pem\"",
        )
        .unwrap();
        assert_eq!(config.federation.extra_root_certs, "/etc/kith/ca.pem");
        assert_eq!(config.federation.peers, ["https://kith.example.org"]);
        let err = Config::parse("[federation]\nextra_root_cert = \"/x\"").unwrap_err();
        assert!(err.contains("extra_root_cert"), "{err}");
        assert!(!TEMPLATE.contains("not built yet"));
    }

    #[test]
    fn group_cache_is_bounded_by_default_and_can_be_set() {
        assert_eq!(Config::default().group_cache_events, 50_000);
        let config = Config::parse("group_cache_events = 1000").unwrap();
        assert_eq!(config.group_cache_events, 1000);
        assert_eq!(Config::default().group_cache_mib, 32);
        assert_eq!(
            Config::parse("group_cache_mib = 8")
                .unwrap()
                .group_cache_mib,
            8
        );
        let err = Config::parse("group_cache_event = 1000").unwrap_err();
        assert!(err.contains("group_cache_event"), "{err}");
    }

    #[test]
    fn private_peer_addresses_are_refused_unless_allowed() {
        assert!(!Config::default().federation.allow_private_addresses);
        let config = Config::parse("[federation]\nallow_private_addresses = true").unwrap();
        assert!(config.federation.allow_private_addresses);
    }
}
