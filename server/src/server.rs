//! Starting and stopping a node.
//!
//! `Server::start(data_dir, config)` opens (or creates) the node key and store, binds the
//! listener and serves; `shutdown()` stops taking connections, tells every client, waits
//! for their tasks, then finishes queued writes and flushes the store. Start-up reads no
//! events, so it takes the same time whatever the store holds.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kith_protocol::{PublicKey, SecretKey};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Durability};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::ratelimit::KeyBuckets;
use crate::store::{Committer, SledStore, Store, StoreError};

/// File holding the node's secret key in the data directory.
pub const NODE_KEY_FILE: &str = "node.key";
/// Directory of the sled store in the data directory.
pub const STORE_DIR: &str = "store";

/// Events one flush may take at most.
const MAX_BATCH: usize = 1024;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory or key file could not be used.
    #[error("could not use the data directory {path}: {message}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS roots for peers (`[federation] extra_root_certs`) could not be used.
    #[error(transparent)]
    PeerTls(#[from] crate::federation::fetch::SetupError),
    /// The listen address could not be bound.
    #[error("could not listen on {addr}: {source}. Is another program using that port? Pick another with --listen")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running node.
pub struct Server {
    local_addr: SocketAddr,
    node: Arc<Node>,
    tracker: TaskTracker,
    serve: JoinHandle<()>,
}

/// Reads the node key from `dir`, creating it (mode 0600) on first run.
pub fn load_or_create_node_key(dir: &Path) -> Result<SecretKey, StartError> {
    let path = dir.join(NODE_KEY_FILE);
    let fail = |message: String| StartError::DataDir {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| fail(format!("the node key file is damaged: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate(&mut rand::rngs::OsRng);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| fail(format!("could not create the node key file: {e}")))?;
            writeln!(file, "{}", key.to_text())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(format!("could not write the node key file: {e}")))?;
            tracing::info!(node = %key.public_key(), "created a new node key");
            Ok(key)
        }
        Err(e) => Err(fail(format!("could not read the node key file: {e}"))),
    }
}

impl Server {
    /// Starts a node on `config.listen` with its data in `data_dir` (created if missing).
    pub async fn start(data_dir: &Path, config: Config) -> Result<Server, StartError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Server::start_on(data_dir, config, listener).await
    }

    /// Starts a node on an already bound listener (tests bind `127.0.0.1:0`).
    pub async fn start_on(
        data_dir: &Path,
        config: Config,
        listener: TcpListener,
    ) -> Result<Server, StartError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StartError::DataDir {
            path: data_dir.to_path_buf(),
            message: e.to_string(),
        })?;
        // Read once, before anything else starts: a bad file stops the node with a message.
        let peer_client = crate::federation::fetch::PeerClient::new(&config.federation)?;
        let key = load_or_create_node_key(data_dir)?;
        let store: Arc<dyn Store> = Arc::new(SledStore::open(
            &data_dir.join(STORE_DIR),
            config.cache_mib * 1024 * 1024,
            config.durability == Durability::PowerLoss,
        )?);
        crate::federation::peers::apply_pending_admin(data_dir, &*store).map_err(|e| {
            StartError::DataDir {
                path: data_dir.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(config.connections.live_buffer));
        let committer = Committer::start(
            Arc::clone(&store),
            Arc::clone(&hub),
            Arc::clone(&metrics),
            MAX_BATCH,
        );
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let key_buckets = KeyBuckets::new(
            config.connections.key_publish_per_second,
            config.connections.key_publish_burst,
        );
        let tracker = TaskTracker::new();
        let public_url = match config.federation.public_url.trim_end_matches('/') {
            "" => format!("http://{local_addr}"),
            url => url.to_owned(),
        };
        let groups = Arc::new(crate::groups::Groups::new(
            Arc::clone(&store),
            config.limits.clone(),
            config.group_cache_events,
            usize::try_from(config.group_cache_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            Arc::clone(&metrics),
        ));
        let node = Arc::new(Node {
            config,
            key,
            store,
            committer,
            hub,
            metrics,
            key_buckets,
            groups,
            registered: Default::default(),
            shutdown: CancellationToken::new(),
            tracker: tracker.clone(),
            public_url,
            federation: Default::default(),
            peer_client,
        });
        let app = crate::http::router(Arc::clone(&node))
            .into_make_service_with_connect_info::<SocketAddr>();
        let stop = node.shutdown.clone();
        let serve = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!("the HTTP server stopped with an error: {e}");
            }
        });
        tracker.spawn(crate::federation::connect::start_dialers(Arc::clone(&node)));
        tracker.spawn(crate::federation::peers::apply_admin_while_running(
            Arc::clone(&node),
            data_dir.to_path_buf(),
        ));
        tracing::info!(addr = %local_addr, node = %node.key.public_key(), "kithd is listening");
        Ok(Server {
            local_addr,
            node,
            tracker,
            serve,
        })
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<address>`: what the CLI's `--node` takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The node's public key.
    pub fn node_key(&self) -> PublicKey {
        self.node.key.public_key()
    }

    /// The node's shared state (for tests and admin tools).
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Stops the node: no new connections, every client told and closed, queued writes
    /// finished and the store flushed.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.node.shutdown.cancel();
        let _ = self.serve.await;
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(15), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 15 s");
        }
        self.node.committer.stop().await;
        tracing::info!("store flushed; stopped");
    }
}
