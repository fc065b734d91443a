//! In-process nodes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kith_protocol::{EventId, GroupId, SecretKey};
use kith_server::invite::Invite;
use kith_server::{Config, Server};
use tokio::net::TcpListener;

/// Raises every rate limit out of the way, for tests about something else.
pub fn without_rate_limits(config: &mut Config) {
    let c = &mut config.connections;
    c.frames_per_second = 1e6;
    c.frames_burst = 1e6;
    c.publish_per_second = 1e6;
    c.publish_burst = 1e6;
    c.key_publish_per_second = 1e6;
    c.key_publish_burst = 1e6;
}

/// The same, as a `kithd.toml` for nodes run as processes.
pub const WITHOUT_RATE_LIMITS_TOML: &str = "[connections]\n\
    frames_per_second = 1e6\nframes_burst = 1e6\n\
    publish_per_second = 1e6\npublish_burst = 1e6\n\
    key_publish_per_second = 1e6\nkey_publish_burst = 1e6\n";

/// A node running inside the test process, with its own temporary data directory.
pub struct TestNode {
    server: Option<Server>,
    dir: tempfile::TempDir,
    config: Config,
    port: u16,
}

impl TestNode {
    /// A node with default settings.
    pub async fn start() -> TestNode {
        TestNode::start_with(|_| {}).await
    }

    /// A node whose default settings are first changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestNode {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config::default();
        adjust(&mut config);
        let server = start_in(dir.path(), config.clone(), 0).await;
        TestNode {
            port: server.local_addr().port(),
            server: Some(server),
            dir,
            config,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("the node is running")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server().url()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The running server (for its node state and metrics).
    pub fn server_ref(&self) -> &Server {
        self.server()
    }

    /// A fresh invite code for `uses` keys, valid for an hour.
    pub fn invite(&self, uses: u16) -> String {
        mint_invite(self.dir(), uses, 3600)
    }

    /// Stops the node cleanly and starts it again on the same port with the same data.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.server = Some(start_in(self.dir.path(), self.config.clone(), self.port).await);
    }

    /// Stops the node cleanly, keeping its data for [`TestNode::resume`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Starts a stopped node again (on the same port) with the same data and settings.
    pub async fn resume(&mut self) {
        assert!(self.server.is_none(), "the node is already running");
        self.server = Some(start_in(self.dir.path(), self.config.clone(), self.port).await);
    }

    /// Stops the node and starts it again with its settings changed by `adjust`.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        self.stop().await;
        adjust(&mut self.config);
        self.resume().await;
    }

    /// How many events the node stores (from `/health`).
    pub async fn event_count(&self) -> u64 {
        let (_, health) = self.get_json("/health").await;
        health["events"].as_u64().expect("health reports events")
    }

    /// Stops the node cleanly.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// GET a path on the node and parse the JSON answer (any status).
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        get_json(&self.url(), path).await
    }
}

/// Lets a node contact peers on loopback, and makes it link with `peers` (base URLs).
pub fn federated_with(config: &mut Config, peers: &[String]) {
    config.federation.allow_private_addresses = true;
    config.federation.peers = peers.to_vec();
}

/// Checks `check` every 50 ms until it holds, for at most `secs` seconds; whether it held.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Starts a node on `port` (0: any free port). A restarted node takes its old port again, as
/// a real node would, so peers that know its address find it; the port was just freed, so
/// binding is retried for a moment.
async fn start_in(dir: &Path, config: Config, port: u16) -> Server {
    let mut tries = 0;
    let listener = loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => break l,
            Err(_) if tries < 100 && port != 0 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind loopback port {port}: {e}"),
        }
    };
    Server::start_on(dir, config, listener)
        .await
        .expect("the node starts")
}

/// Mints an invite with the node key in `data_dir`, as `kithd admin invite` does.
pub fn mint_invite(data_dir: &Path, uses: u16, valid_secs: u64) -> String {
    let key: SecretKey = std::fs::read_to_string(data_dir.join("node.key"))
        .expect("the node key file exists")
        .trim()
        .parse()
        .expect("the node key file is valid");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut nonce = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
    Invite {
        expires_at: u32::try_from(now + valid_secs).expect("fits"),
        max_uses: uses,
        nonce,
    }
    .encode(&key)
}

/// The value of a metric on the node at `base`: `name` is the metric name with its labels,
/// if any (e.g. `kith_rejections_total{code="bad_frame"}`); 0 when absent.
pub async fn metric(base: &str, name: &str) -> u64 {
    let text = get_text(base, "/metrics").await;
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// GET `base` + `path`, returning the status and the JSON body (`Null` if not JSON).
pub async fn get_json(base: &str, path: &str) -> (u16, serde_json::Value) {
    try_get_json(base, path)
        .await
        .expect("the node answers HTTP")
}

/// Like [`get_json`], but `None` when nothing answers (e.g. the node is stopped).
pub async fn try_get_json(base: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    let response = reqwest::get(format!("{base}{path}")).await.ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Some((status, body))
}

/// The state digest of `group` on the node at `base` (from `GET /groups/{id}/state`), or
/// `None` if the node does not hold the group, refuses to show it, or does not answer.
pub async fn group_digest(base: &str, group: GroupId) -> Option<String> {
    match try_get_json(base, &format!("/groups/{group}/state")).await? {
        (200, body) => Some(
            body["digest"]
                .as_str()
                .expect("a group's state has a digest")
                .to_owned(),
        ),
        _ => None,
    }
}

/// Whether the node at `base` serves the event `id` (`GET /events/{id}` answers 200).
pub async fn holds_event(base: &str, id: EventId) -> bool {
    matches!(
        try_get_json(base, &format!("/events/{id}")).await,
        Some((200, _))
    )
}

/// Most events asked for per page by [`group_event_ids`] (the node may send fewer: it caps
/// pages at its `connections.max_stored_results`).
const EVENT_PAGE: u32 = 500;

/// The ids of every event of `group` the node at `base` lists on `GET /groups/{id}/events`
/// (the group's creating event is not among them: its id is the group id), or `None` if the
/// node does not answer or refuses (e.g. an unknown or malformed group).
///
/// The route sends at most one page (the newest events, at most the node's
/// `max_stored_results`), so this walks back in time with `until` (inclusive) until a page
/// brings nothing new. Limit: if more events than fit in one page share the same
/// millisecond, the ones at that millisecond that did not fit are missed.
pub async fn group_event_ids(base: &str, group: GroupId) -> Option<BTreeSet<EventId>> {
    let mut ids = BTreeSet::new();
    let mut until: Option<u64> = None;
    loop {
        let mut path = format!("/groups/{group}/events?limit={EVENT_PAGE}");
        if let Some(until) = until {
            path.push_str(&format!("&until={until}"));
        }
        let (status, body) = try_get_json(base, &path).await?;
        if status != 200 {
            return None;
        }
        let page = body["events"].as_array().expect("a list of events");
        let mut oldest = u64::MAX;
        let mut new = 0;
        for view in page {
            let id: EventId = view["id"]
                .as_str()
                .and_then(|text| text.parse().ok())
                .expect("each listed event has an id");
            let at = view["created_at"]
                .as_u64()
                .expect("each listed event has a time");
            oldest = oldest.min(at);
            if ids.insert(id) {
                new += 1;
            }
        }
        // An empty page, or nothing older than what we hold: done.
        if page.is_empty() || (new == 0 && oldest == 0) {
            return Some(ids);
        }
        // Stay on the oldest millisecond while it still brings new events (a page may have
        // ended inside it), then step before it.
        until = Some(if new > 0 { oldest } else { oldest - 1 });
    }
}

/// GET `base` + `path` as text.
pub async fn get_text(base: &str, path: &str) -> String {
    reqwest::get(format!("{base}{path}"))
        .await
        .expect("the node answers HTTP")
        .text()
        .await
        .expect("a text body")
}

/// A data directory path that outlives a process (for kill -9 tests).
pub fn keep_dir(dir: tempfile::TempDir) -> PathBuf {
    dir.keep()
}
