//! Catch-up measurement: node A holds a public group; node B, linked with A through a
//! byte-counting [`Proxy`], first catches up the group's first `held` events, is stopped
//! while A takes `posts` more, and comes back `posts` events behind. What B then receives
//! is measured: time, and bytes on the wire against the bytes of the events it lacked.
//! Used by the integration test (small counts) and by the benchmark (`bench catchup`,
//! 100k behind).

use std::path::Path;
use std::time::{Duration, Instant};

use kith_client::Connection;
use kith_protocol::group::body::Visibility;
use kith_server::config::CONFIG_FILE;

use crate::cluster::node_config;
use crate::node::{eventually, get_json, metric};
use crate::process::free_port;
use crate::{seeded_key, KithdProcess, Proxy, TestGroup};
use kith_protocol::SecretKey;

/// What one catch-up run measured (the second catch-up: B coming back after being away).
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// Events B held before it was stopped (the group's creating event included).
    pub held: usize,
    /// Events B lacked when it came back.
    pub events: usize,
    /// Their encoded size (header, signature, body): what B had to receive at least.
    pub event_bytes: u64,
    /// Bytes on the wire between B and A after B came back, B → A and A → B (WebSocket
    /// frames, handshake and HTTP upgrade included).
    pub wire_bytes: (u64, u64),
    /// From B's restart until it held every event.
    pub elapsed: Duration,
    /// Whether A and B ended with the same group state digest.
    pub same_digest: bool,
    /// Queued pushes A dropped when B came back, leaving them to reconciliation
    /// (`kith_federation_backlog_reconciled_total`).
    pub backlog_reconciled: u64,
}

impl CatchUp {
    /// Wire bytes (both ways) per byte of missing events.
    pub fn ratio(&self) -> f64 {
        (self.wire_bytes.0 + self.wire_bytes.1) as f64 / self.event_bytes as f64
    }

    /// One line for a report.
    pub fn line(&self) -> String {
        format!(
            "catch-up of {} events behind, {} held ({:.1} MiB missing): {:.2} s ({:.0} events/s); wire {:.1} MiB ({} B → A, {} A → B) = {:.3}× the missing events' bytes; digests equal: {}",
            self.events,
            self.held,
            self.event_bytes as f64 / 1048576.0,
            self.elapsed.as_secs_f64(),
            self.events as f64 / self.elapsed.as_secs_f64(),
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

/// Publishes `n` posts to the group on A, each citing the last (the common, fast case);
/// returns their encoded bytes.
async fn publish(url: &str, key: &SecretKey, group: &mut TestGroup, n: usize, from: usize) -> u64 {
    let conn = Connection::connect(url).await.expect("connect to A");
    conn.login(key, None).await.expect("log in on A");
    let text = "a post of ordinary length, about the size of a short message in a group chat";
    let mut bytes = 0;
    for i in from..from + n {
        let post = group.post(key, &format!("{text} ({i})"));
        bytes += post.encode().len() as u64;
        conn.publish(&post).await.expect("publish a post");
    }
    conn.close().await;
    bytes
}

/// Starts B and waits until it holds `total` events.
async fn start_b(kithd: Option<&Path>, dir: &Path, total: u64, timeout: Duration) -> KithdProcess {
    let b = KithdProcess::start_on(kithd, dir, free_port(), &[]).await;
    let caught_up = eventually(timeout.as_secs(), || async {
        events_on(&b.url).await >= total
    })
    .await;
    assert!(
        caught_up,
        "B held {} of {total} events after {timeout:?}",
        events_on(&b.url).await
    );
    b
}

/// Runs the measurement: B holds the group's first `held` posts (plus its creating event),
/// is stopped, and comes back `behind` posts behind. With the given `kithd` binary
/// (`None`: the workspace's debug build). Panics if B does not catch up within `timeout`.
pub async fn run(kithd: Option<&Path>, held: usize, behind: usize, timeout: Duration) -> CatchUp {
    let a_dir = tempfile::tempdir().expect("a temporary directory");
    let b_dir = tempfile::tempdir().expect("a temporary directory");
    write_config(a_dir.path(), &[]);
    let a = KithdProcess::start_on(kithd, a_dir.path(), free_port(), &[]).await;

    let key = seeded_key(201);
    let mut group = TestGroup::create(&key, "catch-up", Visibility::Public, kith_client::now());
    {
        let conn = Connection::connect(&a.url).await.expect("connect to A");
        conn.login(&key, None).await.expect("log in on A");
        conn.publish(&group.genesis)
            .await
            .expect("publish the group");
        conn.close().await;
    }
    publish(&a.url, &key, &mut group, held, 0).await;
    let held_total = held as u64 + 1;

    let a_addr = a
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("A's address");
    let proxy = Proxy::start(a_addr).await;
    write_config(b_dir.path(), &[proxy.url()]);
    // First catch-up: B follows the group from then on (A queues new events for it).
    let b = start_b(kithd, b_dir.path(), held_total, timeout).await;
    b.terminate();

    let event_bytes = publish(&a.url, &key, &mut group, behind, held).await;
    let total = held_total + behind as u64;
    let before = proxy.bytes_forwarded();
    let started = Instant::now();
    let b = start_b(kithd, b_dir.path(), total, timeout).await;
    let elapsed = started.elapsed();
    let digest = |url: String| async move {
        get_json(&url, &format!("/groups/{}/state", group.id))
            .await
            .1["digest"]
            .clone()
    };
    let same_digest = digest(a.url.clone()).await == digest(b.url.clone()).await;
    let after = proxy.bytes_forwarded();
    let backlog_reconciled = metric(&a.url, "kith_federation_backlog_reconciled_total").await;
    b.terminate();
    a.terminate();
    CatchUp {
        held: held_total as usize,
        events: behind,
        event_bytes,
        wire_bytes: (after.0 - before.0, after.1 - before.1),
        elapsed,
        same_digest,
        backlog_reconciled,
    }
}
