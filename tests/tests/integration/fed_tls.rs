//! Links over TLS: two `kithd` processes, B behind a TLS-terminating proxy ([`TlsProxy`], as
//! a node behind Caddy or nginx), and A configured with B's `https://localhost:<port>`
//! address. A trusts the proxy's certificate only when its test CA is named in
//! `[federation] extra_root_certs`; then the link runs over `wss://` and a group's events
//! cross it both ways. Without it, nothing links and A counts the refused certificate.

use std::path::Path;

use kith_client::Connection;
use kith_protocol::group::body::{NodeRef, Visibility};
use kith_protocol::GroupId;
use kith_protocol::{EventId, PublicKey, SecretKey};
use kith_server::config::CONFIG_FILE;
use kith_tests::cluster::node_config;
use kith_tests::fed::{publish, CROSS_SECS};
use kith_tests::node::{eventually, get_json, group_digest, holds_event, metric, mint_invite};
use kith_tests::process::free_port;
use kith_tests::{seeded_key, KithdProcess, TestGroup, TlsProxy};

const LINKS_OPEN: &str = "kith_federation_links_open";
const TLS_FAILED: &str = "kith_rejections_total{code=\"federation_tls_failed\"}";

/// Starts a kithd in `dir` with [`node_config`]'s settings (private addresses allowed,
/// members' homes not dialed) plus `extra_toml`, dialing `peers`.
async fn start(dir: &Path, peers: &[String], extra_toml: &str) -> KithdProcess {
    std::fs::write(dir.join(CONFIG_FILE), node_config(peers, extra_toml)).unwrap();
    KithdProcess::start_on(None, dir, free_port(), &[]).await
}

/// `[federation] extra_root_certs = "<path>"`, quoted for TOML.
fn trusting(ca: &Path) -> String {
    let path = toml::Value::String(ca.to_str().unwrap().to_owned());
    format!("[federation]\nextra_root_certs = {path}\n")
}

/// B alone, and a TLS proxy in front of it.
async fn b_behind_tls(dir: &Path) -> (KithdProcess, TlsProxy) {
    let b = start(dir, &[], "").await;
    let port = b.url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let proxy = TlsProxy::start(([127, 0, 0, 1], port).into()).await;
    (b, proxy)
}

async fn home(node: &KithdProcess) -> NodeRef {
    let (status, info) = get_json(&node.url, "/.well-known/kith").await;
    assert_eq!(status, 200, "{info}");
    let key: PublicKey = serde_json::from_value(info["node"].clone()).unwrap();
    NodeRef {
        node: key,
        url: node.url.clone(),
    }
}

/// Whether both nodes hold `id` and agree on the group's state (the event is then part of
/// the state each node judges new events against, not only in its store).
async fn both_hold(a: &KithdProcess, b: &KithdProcess, group: GroupId, id: EventId) -> bool {
    holds_event(&a.url, id).await
        && holds_event(&b.url, id).await
        && group_digest(&a.url, group).await.is_some()
        && group_digest(&a.url, group).await == group_digest(&b.url, group).await
}

async fn logged_in(node: &KithdProcess, key: &SecretKey) -> Connection {
    let conn = Connection::connect(&node.url).await.unwrap();
    conn.login(key, Some(&mint_invite(&node.dir, 1, 3600)))
        .await
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_link_over_tls_and_events_cross_both_ways() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (b, proxy) = b_behind_tls(b_dir.path()).await;
    let ca = proxy.write_ca(a_dir.path());
    let a = start(a_dir.path(), &[proxy.url()], &trusting(&ca)).await;

    let linked = eventually(CROSS_SECS, || async {
        metric(&a.url, LINKS_OPEN).await == 1 && metric(&b.url, LINKS_OPEN).await == 1
    })
    .await;
    assert!(
        linked,
        "A linked with B through the TLS proxy (proxy: {} connections, {} handshakes, {} failed)",
        proxy.connections(),
        proxy.handshakes(),
        proxy.failed_handshakes()
    );
    // The node information fetch and the link itself both ran over TLS.
    assert!(proxy.handshakes() >= 2, "{} handshakes", proxy.handshakes());
    assert_eq!(proxy.failed_handshakes(), 0);
    assert_eq!(metric(&a.url, TLS_FAILED).await, 0);

    // A public group founded on A; a member living on B joins there.
    let founder = seeded_key(121);
    let member = seeded_key(122);
    let on_a = logged_in(&a, &founder).await;
    let mut group = TestGroup::create_at_home(
        &founder,
        "lighthouse",
        Visibility::Public,
        kith_client::now(),
        Some(home(&a).await),
    );
    publish(&on_a, &group.genesis, "the group's creation").await;
    let invite = group.invite(&founder, 1);
    publish(&on_a, &invite, "the invitation").await;
    assert!(
        eventually(CROSS_SECS, || both_hold(&a, &b, group.id, invite.id())).await,
        "B received the group from A over the TLS link"
    );
    let on_b = logged_in(&b, &member).await;
    let join = group.join(&member, &invite, Some(home(&b).await));
    publish(&on_b, &join, "the member's join on B").await;

    // B → A, then A → B.
    let from_b = group.post(&member, "hello from B, over TLS");
    publish(&on_b, &from_b, "a post on B").await;
    assert!(
        eventually(CROSS_SECS, || both_hold(&a, &b, group.id, from_b.id())).await,
        "a post on B reached A"
    );
    let from_a = group.post(&founder, "hello from A, over TLS");
    publish(&on_a, &from_a, "a post on A").await;
    assert!(
        eventually(CROSS_SECS, || both_hold(&a, &b, group.id, from_a.id())).await,
        "a post on A reached B"
    );
    assert!(metric(&a.url, "kith_federation_events_received_total").await > 0);
    assert!(metric(&b.url, "kith_federation_events_received_total").await > 0);
    // Every event crossed through the proxy: the only way between the two nodes.
    let (to_b, to_a) = proxy.bytes_forwarded();
    assert!(to_b > 0 && to_a > 0, "{to_b} bytes to B, {to_a} to A");
    assert_eq!(proxy.failed_handshakes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_untrusted_certificate_means_no_link() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (b, proxy) = b_behind_tls(b_dir.path()).await;
    // No extra_root_certs: the test CA is not among the built-in roots.
    let a = start(a_dir.path(), &[proxy.url()], "").await;
    assert!(
        eventually(CROSS_SECS, || async {
            metric(&a.url, TLS_FAILED).await >= 1
        })
        .await,
        "A counts the refused certificate (proxy: {} connections, {} handshakes, {} failed)",
        proxy.connections(),
        proxy.handshakes(),
        proxy.failed_handshakes()
    );
    assert!(proxy.failed_handshakes() >= 1);
    assert_eq!(proxy.handshakes(), 0, "no TLS session was set up");
    assert_eq!(proxy.bytes_forwarded(), (0, 0), "nothing reached B");
    assert_eq!(metric(&a.url, LINKS_OPEN).await, 0);
    assert_eq!(metric(&b.url, LINKS_OPEN).await, 0);
}

#[tokio::test]
async fn a_missing_root_certificate_file_stops_the_node_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    std::fs::write(
        dir.path().join(CONFIG_FILE),
        node_config(&[], &trusting(&missing)),
    )
    .unwrap();
    let run = tokio::process::Command::new(kith_tests::workspace_binary("kithd"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("KITH_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("kithd stops at once with a bad extra_root_certs")
        .unwrap();
    assert!(!out.status.success(), "kithd must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("extra_root_certs") && stderr.contains("no-such-ca.pem"),
        "{stderr}"
    );
}
