//! Several real `kithd` processes linked pairwise through [`Proxy`]s, so a test can cut any
//! link (a real network partition on loopback), kill or restart any node, and check that
//! the nodes converge again.
//!
//! Node `i` knows node `j` only as the proxy `i → j` (its `[federation] peers`), and clients
//! reach each node directly at [`Cluster::url`]. Cutting both proxies of a pair partitions
//! the pair; clients are never cut off.
//!
//! After a heal, a node links again on its own schedule: it redials a peer after a backoff
//! of 0.5 s doubling up to 60 s per failed attempt, so the longer a partition lasted, the
//! longer the first link after it may take.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use kith_client::Connection;
use kith_protocol::{EventId, GroupId, SecretKey};
use kith_server::config::CONFIG_FILE;

use crate::node::{
    eventually, group_digest, group_event_ids, holds_event, mint_invite, WITHOUT_RATE_LIMITS_TOML,
};
use crate::{KithdProcess, Proxy};

/// Federation settings every cluster node gets, so that nodes link only through the
/// proxies (and a cut really separates them): members' home nodes are not dialled directly.
/// Merged after the cluster's own settings and before the caller's (see [`node_config`]).
pub const CLUSTER_FEDERATION_EXTRA: &str = "[federation]\ndial_member_homes = false\n";

/// One node of a [`Cluster`].
pub struct ClusterNode {
    /// The data directory (`kithd.toml`, `node.key`, the store); `None` once the node was
    /// [deleted](Cluster::delete).
    pub dir: Option<tempfile::TempDir>,
    /// The running process; `None` while the node is killed or stopped.
    pub process: Option<KithdProcess>,
    /// `http://127.0.0.1:<port>`: the node itself, not a proxy (for clients).
    pub url: String,
    /// The port the node listens on, the same across restarts.
    pub port: u16,
}

impl ClusterNode {
    /// The data directory (panics if the node was deleted).
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the node's data directory was deleted")
            .path()
    }

    /// Whether the node's process is running.
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }
}

/// N `kithd` processes on loopback, each linked with every other through its own proxies.
pub struct Cluster {
    /// The nodes, by index.
    pub nodes: Vec<ClusterNode>,
    /// `(i, j)`: what node `i` dials to reach node `j`.
    proxies: HashMap<(usize, usize), Proxy>,
}

impl Cluster {
    /// Starts `n` nodes, each with the settings of [`node_config`] plus `extra_toml`, and
    /// waits until every one answers `/health` (not until they are linked).
    ///
    /// `extra_toml` is a TOML fragment merged table by table into each node's settings, the
    /// caller winning: it may add keys to any table, `[federation]` included, without
    /// declaring a table twice. Only existing `kithd.toml` keys are allowed.
    pub async fn start(n: usize, extra_toml: &str) -> Cluster {
        Cluster::start_with(n, |_| extra_toml.to_owned()).await
    }

    /// Like [`Cluster::start`], with extra settings per node: `extra_toml(i)` for node `i`.
    pub async fn start_with(n: usize, extra_toml: impl Fn(usize) -> String) -> Cluster {
        // Hold every node's port while the proxies bind theirs (so no proxy takes a node's
        // port), and let go only just before the nodes start.
        let held: Vec<std::net::TcpListener> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().expect("a bound port").port())
            .collect();
        let mut proxies = HashMap::new();
        for i in 0..n {
            for (j, &port) in ports.iter().enumerate() {
                if i != j {
                    let target = SocketAddr::from(([127, 0, 0, 1], port));
                    proxies.insert((i, j), Proxy::start(target).await);
                }
            }
        }
        let mut nodes = Vec::with_capacity(n);
        for (i, &port) in ports.iter().enumerate() {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let peers: Vec<String> = (0..n)
                .filter(|&j| j != i)
                .map(|j| proxies[&(i, j)].url())
                .collect();
            let config = node_config(&peers, &extra_toml(i));
            std::fs::write(dir.path().join(CONFIG_FILE), config).expect("write kithd.toml");
            nodes.push(ClusterNode {
                dir: Some(dir),
                process: None,
                url: format!("http://127.0.0.1:{port}"),
                port,
            });
        }
        drop(held);
        let started = futures_util::future::join_all(
            nodes
                .iter()
                .map(|node| KithdProcess::start_on(None, node.path(), node.port, &[])),
        )
        .await;
        for (node, process) in nodes.iter_mut().zip(started) {
            node.process = Some(process);
        }
        Cluster { nodes, proxies }
    }

    /// `http://127.0.0.1:<port>` of node `i` itself (for clients; nodes use the proxies).
    pub fn url(&self, i: usize) -> String {
        self.nodes[i].url.clone()
    }

    /// The proxy node `from` dials to reach node `to` (e.g. for its byte counters).
    pub fn proxy(&self, from: usize, to: usize) -> &Proxy {
        self.proxies
            .get(&(from, to))
            .unwrap_or_else(|| panic!("no proxy from node {from} to node {to}"))
    }

    /// Cuts the link between `a` and `b`, both directions: open links die at once and new
    /// ones are refused until [`Cluster::heal`].
    pub fn partition(&self, a: usize, b: usize) {
        self.proxy(a, b).cut();
        self.proxy(b, a).cut();
    }

    /// Lets `a` and `b` link again (each redials after its own backoff).
    pub fn heal(&self, a: usize, b: usize) {
        self.proxy(a, b).heal();
        self.proxy(b, a).heal();
    }

    /// Heals every cut link.
    pub fn heal_all(&self) {
        for proxy in self.proxies.values() {
            proxy.heal();
        }
    }

    /// Cuts node `a` off from every other node (clients still reach it).
    pub fn isolate(&self, a: usize) {
        for b in 0..self.nodes.len() {
            if b != a {
                self.partition(a, b);
            }
        }
    }

    /// Kills node `i` with SIGKILL (no clean shutdown) and waits for it to exit. Its data
    /// stays for [`Cluster::restart`].
    pub async fn kill(&mut self, i: usize) {
        let process = self.nodes[i].process.take().expect("the node is running");
        // Waiting for the exit blocks; the proxies run on this runtime and must keep going.
        tokio::task::spawn_blocking(move || process.kill_9())
            .await
            .expect("kill -9 kithd");
    }

    /// Stops node `i` cleanly with SIGTERM and returns its exit status. Its data stays for
    /// [`Cluster::restart`].
    pub async fn stop(&mut self, i: usize) -> std::process::ExitStatus {
        let process = self.nodes[i].process.take().expect("the node is running");
        // A clean shutdown may close links that run through this runtime's proxies.
        tokio::task::spawn_blocking(move || process.terminate())
            .await
            .expect("kithd stops")
    }

    /// Starts node `i` again with the same data directory, settings and port (stopping it
    /// with SIGTERM first if it still runs), and waits until it answers `/health`.
    pub async fn restart(&mut self, i: usize) {
        if self.nodes[i].is_running() {
            self.stop(i).await;
        }
        let node = &self.nodes[i];
        let process = KithdProcess::start_on(None, node.path(), node.port, &[]).await;
        self.nodes[i].process = Some(process);
    }

    /// Kills node `i` with SIGKILL and removes its data directory for good: it cannot be
    /// restarted. Other nodes keep dialing its port and failing.
    pub fn delete(&mut self, i: usize) {
        if let Some(process) = self.nodes[i].process.take() {
            process.kill_9();
        }
        if let Some(dir) = self.nodes[i].dir.take() {
            let path = dir.path().to_path_buf();
            dir.close()
                .unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
        }
    }

    /// A fresh invite code for `uses` keys on node `i`, valid for an hour (minted with its
    /// node key, which works whether or not the node is running).
    pub fn invite(&self, i: usize, uses: u16) -> String {
        mint_invite(self.nodes[i].path(), uses, 3600)
    }

    /// A client connection to node `i`, logged in as `key` (registered with a fresh
    /// invite if it is not yet).
    pub async fn logged_in(&self, i: usize, key: &SecretKey) -> Connection {
        let conn = Connection::connect(&self.url(i))
            .await
            .expect("the node accepts WebSockets");
        conn.login(key, Some(&self.invite(i, 1)))
            .await
            .expect("the node lets the key in");
        conn
    }

    /// The state digest of `group` on node `i`; `None` if the node does not hold the group
    /// (or is down).
    pub async fn digest(&self, i: usize, group: GroupId) -> Option<String> {
        group_digest(&self.nodes[i].url, group).await
    }

    /// The ids of the events of `group` on node `i` (its creating event excluded, see
    /// [`group_event_ids`] for how pages are walked); empty if the node holds none of them,
    /// does not know the group, or is down.
    pub async fn event_ids(&self, i: usize, group: GroupId) -> BTreeSet<EventId> {
        group_event_ids(&self.nodes[i].url, group)
            .await
            .unwrap_or_default()
    }

    /// Whether node `i` serves the event `id`.
    pub async fn holds(&self, i: usize, id: EventId) -> bool {
        holds_event(&self.nodes[i].url, id).await
    }

    /// Polls for up to `secs` seconds until every node in `nodes` holds `group` with the same
    /// event ids and the same state digest; whether they did.
    pub async fn converged(&self, group: GroupId, nodes: &[usize], secs: u64) -> bool {
        eventually(secs, || self.agree(group, nodes)).await
    }

    /// Whether every node in `nodes` holds `group` with equal event ids and digests now.
    async fn agree(&self, group: GroupId, nodes: &[usize]) -> bool {
        let mut first: Option<(String, BTreeSet<EventId>)> = None;
        for &i in nodes {
            let Some(digest) = self.digest(i, group).await else {
                return false;
            };
            let Some(ids) = group_event_ids(&self.nodes[i].url, group).await else {
                return false;
            };
            match &first {
                None => first = Some((digest, ids)),
                Some(seen) if *seen == (digest, ids) => {}
                Some(_) => return false,
            }
        }
        true
    }
}

/// The `kithd.toml` of a cluster node that dials `peers`: [`WITHOUT_RATE_LIMITS_TOML`], then
/// `[federation]` with `allow_private_addresses = true` and the peers, then
/// [`CLUSTER_FEDERATION_EXTRA`], then `extra_toml`, each merged into the one before table by
/// table (a later value replaces an earlier one; arrays are replaced, not appended to).
///
/// Panics with the server's own message if the result is not a valid `kithd.toml`.
pub fn node_config(peers: &[String], extra_toml: &str) -> String {
    let mut federation = toml::Table::new();
    federation.insert("allow_private_addresses".into(), true.into());
    federation.insert(
        "peers".into(),
        toml::Value::Array(peers.iter().map(|p| p.as_str().into()).collect()),
    );
    let mut cluster = toml::Table::new();
    cluster.insert("federation".into(), federation.into());

    let mut config = parse_fragment(WITHOUT_RATE_LIMITS_TOML, "WITHOUT_RATE_LIMITS_TOML");
    merge(&mut config, cluster);
    merge(
        &mut config,
        parse_fragment(CLUSTER_FEDERATION_EXTRA, "CLUSTER_FEDERATION_EXTRA"),
    );
    merge(
        &mut config,
        parse_fragment(extra_toml, "the extra settings"),
    );
    let text = toml::to_string(&config).expect("a TOML table serializes");
    if let Err(e) = kith_server::Config::parse(&text) {
        panic!("a cluster node's kithd.toml is not valid: {e}\n{text}");
    }
    text
}

fn parse_fragment(text: &str, what: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("{what} is not valid TOML: {e}\n{text}"))
}

/// Merges `from` into `into`: tables key by key (recursively), anything else replaced.
fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(mine)), toml::Value::Table(theirs)) => merge(mine, theirs),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_settings_merge_into_the_cluster_tables() {
        let peers = vec![
            "http://127.0.0.1:1".to_owned(),
            "http://127.0.0.1:2".to_owned(),
        ];
        let text = node_config(
            &peers,
            "open_registration = true\n\
             [federation]\nallow_private_addresses = false\n\
             [connections]\npublish_burst = 3.0\n",
        );
        let config = kith_server::Config::parse(&text).unwrap();
        assert!(config.open_registration);
        // One [federation] table: the caller's key and the cluster's side by side.
        assert!(!config.federation.allow_private_addresses);
        assert_eq!(config.federation.peers, peers);
        assert!(!config.federation.dial_member_homes);
        // The caller's value wins; the other rate limits stay raised.
        assert_eq!(config.connections.publish_burst, 3.0);
        assert_eq!(config.connections.frames_per_second, 1e6);
    }

    #[test]
    fn the_caller_may_replace_the_cluster_settings() {
        let text = node_config(
            &["http://127.0.0.1:1".to_owned()],
            "[federation]\npeers = []",
        );
        let config = kith_server::Config::parse(&text).unwrap();
        assert!(config.federation.peers.is_empty());
        assert!(config.federation.allow_private_addresses);
    }

    #[test]
    #[should_panic(expected = "not valid")]
    fn an_unknown_setting_is_caught_before_kithd_starts() {
        node_config(&[], "[federation]\nno_such_setting = 1");
    }
}
