//! Ingest: concurrent publishers, each with its own connection and key, each waiting for
//! every `ok` (which means the event is flushed) before sending the next event.

use std::path::Path;
use std::time::{Duration, Instant};

use kith_client::Connection;
use kith_protocol::Event;
use kith_tests::{post, seeded_key};

use crate::node::BenchNode;
use crate::stats::{ms, Latency};

/// What one ingest run measured.
pub(crate) struct Ingest {
    pub(crate) publishers: usize,
    pub(crate) events: usize,
    pub(crate) elapsed: Duration,
    pub(crate) latency: Latency,
    pub(crate) failures: usize,
    pub(crate) first_failure: Option<String>,
    /// Events per group-commit flush, on average.
    pub(crate) per_flush: f64,
    /// CPU time used during the run by kithd and by this benchmark.
    pub(crate) node_cpu: Duration,
    pub(crate) bench_cpu: Duration,
}

impl Ingest {
    pub(crate) fn rate(&self) -> f64 {
        self.latency.count as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn line(&self) -> String {
        let mut line = format!(
            "ingest  {:>3} {}: {:>6} events in {:>6.2} s = {:>6.0} events/s; publish p50 {}, p99 {}, max {}; {:.1} events per flush; CPU kithd {:.1} s, bench {:.1} s",
            self.publishers,
            publishers_word(self.publishers),
            self.events,
            self.elapsed.as_secs_f64(),
            self.rate(),
            ms(self.latency.p50),
            ms(self.latency.p99),
            ms(self.latency.max),
            self.per_flush,
            self.node_cpu.as_secs_f64(),
            self.bench_cpu.as_secs_f64(),
        );
        if self.failures > 0 {
            line += &format!(
                "; {} FAILED (first: {})",
                self.failures,
                self.first_failure.as_deref().unwrap_or("?")
            );
        }
        line
    }
}

/// The ingest scenario: 1, 10 and 100 publishers, each level on a fresh node.
pub(crate) async fn scenario(kithd: &Path, quick: bool) -> anyhow::Result<Vec<String>> {
    let total = if quick { 2_000 } else { 20_000 };
    println!("== ingest: {total} events per run, each publish waits for its ok (flushed) ==");
    let mut summary = vec![format!(
        "ingest ({total} events per run; an ok means flushed; fresh node per run):"
    )];
    for publishers in [1, 10, 100] {
        let node = BenchNode::start(kithd).await?;
        let result = run(&node, publishers, total).await?;
        println!("{}", result.line());
        summary.push(format!(
            "  {:>3} {}: {:>6.0} events/s, publish p50 {}, p99 {}{}",
            publishers,
            publishers_word(publishers),
            result.rate(),
            ms(result.latency.p50),
            ms(result.latency.p99),
            if result.failures > 0 {
                format!(", {} failed", result.failures)
            } else {
                String::new()
            }
        ));
    }
    // Every connection hears every announcement, subscribed or not: the same ingest with
    // idle connections open shows what that costs.
    let (idle, events) = if quick {
        (1_000, 2_000)
    } else {
        (5_000, 5_000)
    };
    let node = BenchNode::start(kithd).await?;
    let mut sockets = Vec::new();
    crate::memory::open_idle(&node, &mut sockets, idle).await?;
    let result = run(&node, 10, events).await?;
    let slow = node.metric("slow_reader_disconnects_total").await;
    let open = node.metric("connections_open").await;
    drop(sockets);
    let line = format!(
        "{}; with {idle} idle connections open ({slow} slow-reader disconnects, {open} still open)",
        result.line()
    );
    println!("{line}");
    summary.push(format!(
        "   10 publishers, {events} events, {idle} idle connections open: {:>6.0} events/s, publish p50 {}, p99 {}; {slow} idle connections closed as slow readers",
        result.rate(),
        ms(result.latency.p50),
        ms(result.latency.p99),
    ));
    Ok(summary)
}

/// Publishes `total` events from `publishers` concurrent connections (keys 1..=publishers).
pub(crate) async fn run(
    node: &BenchNode,
    publishers: usize,
    total: usize,
) -> anyhow::Result<Ingest> {
    assert!((1..=250).contains(&publishers), "keys are seeded from a u8");
    // Texts differ between runs on the same node, so no event is a duplicate.
    let run_id: u32 = rand::random();
    let mut work = Vec::new();
    for p in 0..publishers {
        let key = seeded_key(p as u8 + 1);
        let conn = Connection::connect(node.url()).await?;
        conn.login(&key, None).await?;
        // Sign everything first: the node's work is what is measured.
        let count = total / publishers + usize::from(p < total % publishers);
        let events: Vec<Event> = (0..count)
            .map(|i| post(&key, &format!("bench event {run_id} {p}-{i}"), None))
            .collect();
        work.push((conn, events));
    }
    let flushes_before = node.metric("store_flushes_total").await;
    let flushed_before = node.metric("store_flushed_events_total").await;
    let cpu_before = (node.cpu_time(), crate::node::cpu_time("self"));

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (conn, events) in work {
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(events.len());
            let mut failures = Vec::new();
            for event in &events {
                let sent = Instant::now();
                match conn.publish(event).await {
                    Ok(outcome) if !outcome.duplicate => latencies.push(sent.elapsed()),
                    Ok(_) => failures.push("the node called a new event a duplicate".into()),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (conn, latencies, failures)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failures = Vec::new();
    let mut conns = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (conn, l, f) = done?;
        conns.push(conn);
        latencies.extend(l);
        failures.extend(f);
    }
    let elapsed = started.elapsed();
    let node_cpu = node.cpu_time() - cpu_before.0;
    let bench_cpu = crate::node::cpu_time("self") - cpu_before.1;
    for conn in conns {
        conn.close().await;
    }

    let flushes = node.metric("store_flushes_total").await - flushes_before;
    let flushed = node.metric("store_flushed_events_total").await - flushed_before;
    Ok(Ingest {
        publishers,
        events: total,
        elapsed,
        latency: Latency::of(&mut latencies),
        failures: failures.len(),
        first_failure: failures.into_iter().next(),
        per_flush: if flushes > 0.0 {
            flushed / flushes
        } else {
            0.0
        },
        node_cpu,
        bench_cpu,
    })
}

fn publishers_word(n: usize) -> &'static str {
    if n == 1 {
        "publisher "
    } else {
        "publishers"
    }
}
