//! Catch-up measurement: node A holds a public group of N events; node B, linked with A
//! through a byte-counting [`Proxy`], starts empty and reconciles the group. Used by the
//! integration test (small N) and by the benchmark (`bench catchup`, N = 100k).

use std::path::Path;
use std::time::{Duration, Instant};

use kith_client::Connection;
use kith_protocol::group::body::Visibility;
use kith_server::config::CONFIG_FILE;

use crate::cluster::node_config;
use crate::node::{eventually, get_json};
use crate::process::free_port;
use crate::{seeded_key, KithdProcess, Proxy, TestGroup};

/// What one catch-up run measured.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// Events B lacked (the whole group, creating event included).
    pub events: usize,
    /// Their encoded size (header, signature, body): what B had to receive at least.
    pub event_bytes: u64,
    /// Bytes on the wire between B and A, B → A and A → B (WebSocket frames, handshake
    /// and HTTP upgrade included).
    pub wire_bytes: (u64, u64),
    /// From B's start until it held every event.
    pub elapsed: Duration,
    /// Whether A and B ended with the same group state digest.
    pub same_digest: bool,
}

impl CatchUp {
    /// Wire bytes (both ways) per byte of missing events.
    pub fn ratio(&self) -> f64 {
        (self.wire_bytes.0 + self.wire_bytes.1) as f64 / self.event_bytes as f64
    }

    /// One line for a report.
    pub fn line(&self) -> String {
        format!(
            "catch-up of {} events ({:.1} MiB of events): {:.2} s; wire {:.1} MiB ({} B → A, {} A → B) = {:.3}× the events' bytes; digests equal: {}",
            self.events,
            self.event_bytes as f64 / 1048576.0,
            self.elapsed.as_secs_f64(),
            (self.wire_bytes.0 + self.wire_bytes.1) as f64 / 1048576.0,
            self.wire_bytes.0,
            self.wire_bytes.1,
            self.ratio(),
            self.same_digest,
        )
    }
}

fn write_config(dir: &Path, peers: &[String]) {
    let extra = "open_registration = true\n";
    std::fs::write(dir.join(CONFIG_FILE), node_config(peers, extra)).expect("write kithd.toml");
}

async fn events_on(url: &str) -> u64 {
    let (_, health) = get_json(url, "/health").await;
    health["events"].as_u64().unwrap_or(0)
}

/// Runs the measurement with `posts` posts (plus the group's creating event), with the
/// given `kithd` binary (`None`: the workspace's debug build). Panics if B does not catch up
/// within `timeout`.
pub async fn run(kithd: Option<&Path>, posts: usize, timeout: Duration) -> CatchUp {
    let a_dir = tempfile::tempdir().expect("a temporary directory");
    let b_dir = tempfile::tempdir().expect("a temporary directory");
    write_config(a_dir.path(), &[]);
    let a = KithdProcess::start_on(kithd, a_dir.path(), free_port(), &[]).await;

    // The group, one chain of posts each citing the last (the common, fast case).
    let key = seeded_key(201);
    let conn = Connection::connect(&a.url).await.expect("connect to A");
    conn.login(&key, None).await.expect("log in on A");
    let mut group = TestGroup::create(&key, "catch-up", Visibility::Public, kith_client::now());
    let mut event_bytes = group.genesis.encode().len() as u64;
    conn.publish(&group.genesis)
        .await
        .expect("publish the group");
    let text = "a post of ordinary length, about the size of a short message in a group chat";
    for i in 0..posts {
        let post = group.post(&key, &format!("{text} ({i})"));
        event_bytes += post.encode().len() as u64;
        conn.publish(&post).await.expect("publish a post");
    }
    conn.close().await;
    let total = posts as u64 + 1;

    let a_addr = a
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("A's address");
    let proxy = Proxy::start(a_addr).await;
    write_config(b_dir.path(), &[proxy.url()]);
    let started = Instant::now();
    let b = KithdProcess::start_on(kithd, b_dir.path(), free_port(), &[]).await;
    let caught_up = eventually(timeout.as_secs(), || async {
        events_on(&b.url).await >= total
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        caught_up,
        "B held {} of {total} events after {timeout:?}",
        events_on(&b.url).await
    );
    let digest = |url: String| async move {
        get_json(&url, &format!("/groups/{}/state", group.id))
            .await
            .1["digest"]
            .clone()
    };
    let same_digest = digest(a.url.clone()).await == digest(b.url.clone()).await;
    let wire_bytes = proxy.bytes_forwarded();
    b.terminate();
    a.terminate();
    CatchUp {
        events: total as usize,
        event_bytes,
        wire_bytes,
        elapsed,
        same_digest,
    }
}
