//! In-process nodes.

use std::path::{Path, PathBuf};

use kith_protocol::SecretKey;
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
        let server = start_in(dir.path(), config.clone()).await;
        TestNode {
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

    /// Stops the node cleanly and starts it again on a new port with the same data.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.server = Some(start_in(self.dir.path(), self.config.clone()).await);
    }

    /// Stops the node cleanly, keeping its data for [`TestNode::resume`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Starts a stopped node again (on a new port) with the same data and settings.
    pub async fn resume(&mut self) {
        assert!(self.server.is_none(), "the node is already running");
        self.server = Some(start_in(self.dir.path(), self.config.clone()).await);
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

async fn start_in(dir: &Path, config: Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
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

/// GET `base` + `path`, returning the status and the JSON body (`Null` if not JSON).
pub async fn get_json(base: &str, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .expect("the node answers HTTP");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
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
