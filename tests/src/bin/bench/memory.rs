//! Memory: the node's resident set (VmRSS) idle, with many idle WebSockets, after
//! ingesting many events (the store's cache should bound it), and what holding one large
//! group in memory costs (posts are held without their text).

use std::path::Path;
use std::time::Duration;

use crate::node::BenchNode;
use crate::stats::mib;
use crate::wire::{self, Socket};

/// Time for the node to settle before a reading.
const SETTLE: Duration = Duration::from_secs(2);

/// File descriptors kept free for everything else (node files, HTTP, publishers).
const SPARE_FDS: u64 = 200;

/// The memory scenario.
pub(crate) async fn scenario(
    kithd: &Path,
    quick: bool,
    fd_limit: u64,
) -> anyhow::Result<Vec<String>> {
    println!("== memory: kithd VmRSS from /proc/<pid>/status ==");
    let mut summary = vec!["memory (kithd VmRSS):".to_owned()];
    summary.extend(idle_connections(kithd, quick, fd_limit).await?);
    summary.extend(after_ingest(kithd, quick).await?);
    for text_len in [100, 2_000] {
        summary.push(group_held(kithd, quick, text_len).await?);
    }
    Ok(summary)
}

async fn idle_connections(kithd: &Path, quick: bool, fd_limit: u64) -> anyhow::Result<Vec<String>> {
    let node = BenchNode::start(kithd).await?;
    tokio::time::sleep(SETTLE).await;
    let idle = node.rss_kib()?;
    println!("memory  idle node: {}", mib(idle));
    let mut summary = vec![format!(
        "  idle node: {} (target < 20 MiB: {})",
        mib(idle),
        if idle < 20 * 1024 { "met" } else { "NOT met" }
    )];

    let wanted: &[usize] = if quick {
        &[500, 1_000]
    } else {
        &[1_000, 10_000]
    };
    let possible = fd_limit.saturating_sub(SPARE_FDS) as usize;
    let mut sockets: Vec<Socket> = Vec::new();
    for &target in wanted {
        let target = if target > possible {
            let note = format!(
                "  the open-file limit ({fd_limit}) allows only about {possible} connections, not {target}"
            );
            println!("{}", note.trim());
            summary.push(note);
            possible
        } else {
            target
        };
        if let Err(e) = open_idle(&node, &mut sockets, target).await {
            let note = format!(
                "  could open only {} connections of {target}: {e:#}",
                sockets.len()
            );
            println!("{}", note.trim());
            summary.push(note);
        }
        if sockets.is_empty() {
            break;
        }
        tokio::time::sleep(SETTLE).await;
        let open = node.metric("connections_open").await;
        let rss = node.rss_kib()?;
        let per = rss.saturating_sub(idle) as f64 / sockets.len() as f64;
        let line = format!(
            "{:>6} idle WebSockets: {} = idle + {per:.1} KiB per connection (node reports {open} open)",
            sockets.len(),
            mib(rss),
        );
        println!("memory  {line}");
        let verdict = if per < 10.0 { "met" } else { "NOT met" };
        summary.push(format!("  {line} (target < 10 KiB: {verdict})"));
    }
    drop(sockets);
    Ok(summary)
}

/// Opens connections (reading each hello, then leaving it idle) until there are `target`.
pub(crate) async fn open_idle(
    node: &BenchNode,
    sockets: &mut Vec<Socket>,
    target: usize,
) -> anyhow::Result<()> {
    while sockets.len() < target {
        let batch = (target - sockets.len()).min(200);
        let connecting = (0..batch).map(|_| wire::connect(node.url()));
        sockets.extend(futures_util::future::try_join_all(connecting).await?);
    }
    Ok(())
}

async fn after_ingest(kithd: &Path, quick: bool) -> anyhow::Result<Vec<String>> {
    // Enough events to outgrow the 64 MiB cache several times over on disk.
    let (steps, per_step) = if quick { (4, 2_500) } else { (8, 25_000) };
    let events = steps * per_step;
    let node = BenchNode::start(kithd).await?;
    tokio::time::sleep(SETTLE).await;
    let mut readings = vec![format!("0: {}", mib(node.rss_kib()?))];
    let mut failures = Vec::new();
    for step in 1..=steps {
        let ingest = crate::ingest::run(&node, 50, per_step).await?;
        if ingest.failures > 0 {
            failures.push(ingest.line());
        }
        readings.push(format!("{}: {}", step * per_step, mib(node.rss_kib()?)));
    }
    tokio::time::sleep(SETTLE).await;
    let line = format!(
        "ingesting {events} events (50 publishers), RSS after each step: {}; peak {}; data directory {} (sled cache_mib 64)",
        readings.join(", "),
        mib(node.peak_rss_kib()?),
        mib(node.disk_bytes() / 1024),
    );
    println!("memory  {line}");
    let mut summary = vec![format!("  {line}")];
    summary.extend(failures.into_iter().map(|f| format!("  FAILURES: {f}")));
    Ok(summary)
}

/// One public group of posts with `text_len` characters each is published, the node
/// restarted (so nothing is in memory), and the group's state asked for, which folds the
/// group into memory: the RSS before and after, and the node's own count of what it holds.
async fn group_held(kithd: &Path, quick: bool, text_len: usize) -> anyhow::Result<String> {
    use kith_protocol::group::body::Visibility;
    let posts = if quick { 3_000 } else { 20_000 };
    // Not dialing members' homes, the node reads no group at start (it would fold every
    // group to find their homes), so the group is folded only when asked for.
    let node = BenchNode::start_with(kithd, "\n[federation]\ndial_member_homes = false\n").await?;
    let key = kith_tests::seeded_key(90);
    let mut group =
        kith_tests::TestGroup::create(&key, "held", Visibility::Public, kith_client::now());
    let conn = kith_client::Connection::connect(node.url()).await?;
    conn.login(&key, None).await?;
    conn.publish(&group.genesis).await?;
    let mut bytes = group.genesis.encode().len();
    let text = "x".repeat(text_len);
    for _ in 0..posts {
        let post = group.post(&key, &text);
        bytes += post.encode().len();
        conn.publish(&post).await?;
    }
    conn.close().await;
    let node = node.restart(kithd).await?;
    tokio::time::sleep(SETTLE).await;
    let before = node.rss_kib()?;
    let (status, _) =
        kith_tests::node::get_json(node.url(), &format!("/groups/{}/state", group.id)).await;
    anyhow::ensure!(status == 200, "the group's state answered {status}");
    tokio::time::sleep(SETTLE).await;
    let after = node.rss_kib()?;
    let held = node.metric("group_bytes_loaded").await;
    let grown = after.saturating_sub(before);
    let line = format!(
        "a group of {posts} posts of {text_len} characters ({} of events) folded into memory: RSS {} -> {} (+{:.0} B per event); the node counts {} held",
        mib(bytes as u64 / 1024),
        mib(before),
        mib(after),
        grown as f64 * 1024.0 / (posts + 1) as f64,
        mib(held as u64 / 1024),
    );
    println!("memory  {line}");
    Ok(format!("  {line}"))
}
