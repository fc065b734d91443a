//! Fan-out: many live subscribers (one bare WebSocket each), one publisher at a fixed rate.
//! Latency is from just before a publish to the event's receipt at each subscriber.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use kith_client::Connection;
use kith_protocol::encoding::to_base64;
use kith_protocol::frame::{decode_node_frame, NodeFrame};
use kith_tests::{post, seeded_key};
use tokio_tungstenite::tungstenite::Message;

use crate::node::BenchNode;
use crate::stats::{ms, Latency};
use crate::wire::{self, Socket};

/// How long subscribers wait for stragglers after the last publish.
const GRACE: Duration = Duration::from_secs(30);

/// How a subscriber's run ended.
enum End {
    /// It received every event.
    Complete,
    /// Events were still missing after the grace period.
    Missing,
    /// The node closed the connection, or sent an error.
    Closed(String),
}

/// One subscriber's measurements.
struct Received {
    latencies: Vec<Duration>,
    last: Duration,
    end: End,
}

/// The fan-out scenario: 100 and 1,000 subscribers, each on a fresh node.
pub(crate) async fn scenario(kithd: &Path, quick: bool) -> anyhow::Result<Vec<String>> {
    let seconds = if quick { 2 } else { 5 };
    println!("== fanout: one publisher at a fixed rate for {seconds} s ==");
    let mut summary = vec![format!(
        "fanout (one publisher for {seconds} s, one WebSocket per subscriber; latency = publish to receipt; fresh node per run):"
    )];
    let mut target_p99 = None;
    // The last run has as many deliveries per second as the first, over ten times the
    // connections: a reading below saturation for 1,000 subscribers.
    for (subscribers, rate) in [(100, 200), (1_000, 200), (1_000, 20)] {
        let node = BenchNode::start(kithd).await?;
        let (line, latency) = run(&node, subscribers, rate, seconds).await?;
        println!("{line}");
        summary.push(format!("  {line}"));
        if (subscribers, rate) == (1_000, 200) {
            target_p99 = Some(latency.p99);
        }
    }
    if let Some(p99) = target_p99 {
        let met = p99 < Duration::from_millis(25);
        summary.push(format!(
            "  target p99 < 25 ms at 1,000 subscribers and 200 events/s: {} (p99 {})",
            if met { "met" } else { "NOT met" },
            ms(p99)
        ));
    }
    Ok(summary)
}

async fn run(
    node: &BenchNode,
    subscribers: usize,
    rate: u32,
    seconds: u32,
) -> anyhow::Result<(String, Latency)> {
    let key = seeded_key(200);
    let publisher = Connection::connect(node.url()).await?;
    publisher.login(&key, None).await?;
    let count = (rate * seconds) as usize;
    let events: Vec<_> = (0..count)
        .map(|i| post(&key, &format!("fan-out event {i}"), None))
        .collect();
    // Subscribers find an event's index by its bytes, exactly as the node sends them.
    let index: Arc<HashMap<String, usize>> = Arc::new(
        events
            .iter()
            .enumerate()
            .map(|(i, e)| (to_base64(&e.encode()), i))
            .collect(),
    );
    // Send times, in nanoseconds since `epoch`.
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());

    let mut sockets = Vec::with_capacity(subscribers);
    for _ in 0..subscribers.div_ceil(100) {
        let batch = (subscribers - sockets.len()).min(100);
        let connecting = (0..batch).map(|_| async {
            let mut ws = wire::connect(node.url()).await?;
            wire::subscribe_live(&mut ws, key.public_key()).await?;
            anyhow::Ok(ws)
        });
        sockets.extend(futures_util::future::try_join_all(connecting).await?);
    }

    let cpu_before = (node.cpu_time(), crate::node::cpu_time("self"));
    let epoch = Instant::now();
    let publish_time = Duration::from_secs(u64::from(seconds));
    let deadline = tokio::time::Instant::from_std(epoch + publish_time + GRACE);
    let mut readers = tokio::task::JoinSet::new();
    for ws in sockets {
        let (index, sent) = (Arc::clone(&index), Arc::clone(&sent));
        readers.spawn(receive(ws, count, index, sent, epoch, deadline));
    }

    // Publish on a fixed schedule, without waiting for each ok, so a slow flush does not
    // slow the schedule.
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut publishes = tokio::task::JoinSet::new();
    for (i, event) in events.into_iter().enumerate() {
        ticker.tick().await;
        sent[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
        let publisher = publisher.clone();
        publishes.spawn(async move {
            let started = Instant::now();
            publisher.publish(&event).await.map(|_| started.elapsed())
        });
    }
    let published_in = epoch.elapsed();
    let mut publish_failures = 0;
    let mut oks = Vec::with_capacity(count);
    while let Some(done) = publishes.join_next().await {
        match done {
            Ok(Ok(took)) => oks.push(took),
            _ => publish_failures += 1,
        }
    }
    let ok = Latency::of(&mut oks);

    let mut latencies = Vec::with_capacity(count * subscribers);
    let mut last = Duration::ZERO;
    let (mut complete, mut missing, mut closed) = (0, 0, Vec::new());
    while let Some(done) = readers.join_next().await {
        let received = done?;
        latencies.extend(received.latencies);
        last = last.max(received.last);
        match received.end {
            End::Complete => complete += 1,
            End::Missing => missing += 1,
            End::Closed(why) => closed.push(why),
        }
    }
    let wall = epoch.elapsed();
    let node_cpu = node.cpu_time() - cpu_before.0;
    let bench_cpu = crate::node::cpu_time("self") - cpu_before.1;
    publisher.close().await;

    let expected = count * subscribers;
    let delivered = latencies.len();
    let latency = Latency::of(&mut latencies);
    let per_second = delivered as f64 / last.as_secs_f64().max(f64::MIN_POSITIVE);
    let slow = node.metric("slow_reader_disconnects_total").await;
    let mut line = format!(
        "fanout {subscribers:>5} subscribers, {rate:>3} events/s: {delivered}/{expected} deliveries, {per_second:.0}/s; latency p50 {}, p99 {}, max {}; published {count} in {:.2} s (ok p50 {}, p99 {}); CPU over {:.1} s: kithd {:.1} s, bench {:.1} s",
        ms(latency.p50),
        ms(latency.p99),
        ms(latency.max),
        published_in.as_secs_f64(),
        ms(ok.p50),
        ms(ok.p99),
        wall.as_secs_f64(),
        node_cpu.as_secs_f64(),
        bench_cpu.as_secs_f64(),
    );
    if complete < subscribers {
        line += &format!(
            "; INCOMPLETE: {complete} subscribers got everything, {missing} were missing events after {} s, {} were closed{}",
            GRACE.as_secs(),
            closed.len(),
            closed.first().map(|why| format!(" (first: {why})")).unwrap_or_default(),
        );
    }
    if slow > 0.0 || publish_failures > 0 {
        line += &format!(
            "; node counted {slow} slow-reader disconnects; {publish_failures} publishes failed"
        );
    }
    Ok((line, latency))
}

/// Reads events until all `count` arrived, the connection ends, or `deadline`.
async fn receive(
    mut ws: Socket,
    count: usize,
    index: Arc<HashMap<String, usize>>,
    sent: Arc<Vec<AtomicU64>>,
    epoch: Instant,
    deadline: tokio::time::Instant,
) -> Received {
    let mut latencies = Vec::with_capacity(count);
    let mut last = Duration::ZERO;
    let end = loop {
        if latencies.len() == count {
            break End::Complete;
        }
        let message = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => break End::Missing,
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => break End::Closed(format!("read error: {e}")),
            Ok(None) => break End::Closed("the connection ended".into()),
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(close) => break End::Closed(format!("closed: {close:?}")),
            _ => continue,
        };
        let now = epoch.elapsed();
        match wire::event_base64(text.as_str()).and_then(|b64| index.get(b64)) {
            Some(&i) => {
                let at = Duration::from_nanos(sent[i].load(Ordering::Acquire));
                latencies.push(now.saturating_sub(at));
                last = now;
            }
            None => match decode_node_frame(text.as_str()) {
                Ok(NodeFrame::Error { code, message, .. }) => {
                    break End::Closed(format!("{code:?}: {message}"))
                }
                other => break End::Closed(format!("unexpected frame: {other:?}")),
            },
        }
    };
    Received {
        latencies,
        last,
        end,
    }
}
