//! Counters for `GET /metrics`, in the Prometheus text format.
//!
//! Plain atomics: the hot paths only ever add, and rendering reads each once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::store::OutboxStats;

/// The node's counters.
#[derive(Default)]
pub struct Metrics {
    /// WebSocket connections open now.
    pub connections_open: AtomicI64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Frames received from clients.
    pub frames_received: AtomicU64,
    /// Events newly stored.
    pub events_stored: AtomicU64,
    /// Publishes of events already stored.
    pub events_duplicate: AtomicU64,
    /// Events delivered to subscriptions.
    pub deliveries: AtomicU64,
    /// Connections closed because the client read too slowly.
    pub slow_reader_disconnects: AtomicU64,
    /// Store flushes.
    pub store_flushes: AtomicU64,
    /// Events written across all flushes.
    pub store_flushed_events: AtomicU64,
    /// Total time spent flushing, in microseconds.
    pub store_flush_micros: AtomicU64,
    /// Queued pushes to peer nodes dropped because a peer's queue was full.
    pub federation_outbox_dropped: AtomicU64,
    /// Queued pushes left to reconciliation when a link opened with a deep backlog.
    pub federation_backlog_reconciled: AtomicU64,
    /// Events sent to peer nodes over links.
    pub federation_events_sent: AtomicU64,
    /// Events received from peer nodes over links.
    pub federation_events_received: AtomicU64,
    /// Link frame payload bytes sent to peer nodes.
    pub federation_bytes_sent: AtomicU64,
    /// Link frame payload bytes received from peer nodes.
    pub federation_bytes_received: AtomicU64,
    /// Links to peer nodes open now (a gauge: added to on open, taken from on close).
    pub federation_links_open: AtomicU64,
    /// Groups held in memory now (a gauge, set by `Groups`).
    pub groups_loaded: AtomicU64,
    /// Events of the groups held in memory now (a gauge, set by `Groups`).
    pub group_events_loaded: AtomicU64,
    /// Bytes of the events of the groups held in memory now (gauge).
    pub group_bytes_loaded: AtomicU64,
    /// Groups read from the store into memory, reloads after eviction included.
    pub group_loads: AtomicU64,
    rejections: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Counts a refused request by its error code.
    pub fn reject(&self, code: &str) {
        if let Ok(mut map) = self.rejections.lock() {
            *map.entry(code.to_owned()).or_default() += 1;
        }
    }

    /// Records one group-commit flush.
    pub fn record_flush(&self, events: u64, took: Duration) {
        self.store_flushes.fetch_add(1, Relaxed);
        self.store_flushed_events.fetch_add(events, Relaxed);
        self.store_flush_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// The Prometheus text exposition, plus gauges the caller reads at render time.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP kith_{name} {help}\n# TYPE kith_{name} {kind}\nkith_{name} {value}"
            );
        };
        let c = |a: &AtomicU64| a.load(Relaxed).to_string();
        line(
            "connections_open",
            "gauge",
            "WebSocket connections open now.",
            self.connections_open.load(Relaxed).to_string(),
        );
        line(
            "connections_total",
            "counter",
            "WebSocket connections accepted.",
            c(&self.connections_total),
        );
        line(
            "frames_received_total",
            "counter",
            "Frames received from clients.",
            c(&self.frames_received),
        );
        line(
            "events_stored_total",
            "counter",
            "Events newly stored.",
            c(&self.events_stored),
        );
        line(
            "events_duplicate_total",
            "counter",
            "Publishes of already stored events.",
            c(&self.events_duplicate),
        );
        line(
            "deliveries_total",
            "counter",
            "Events delivered to subscriptions.",
            c(&self.deliveries),
        );
        line(
            "slow_reader_disconnects_total",
            "counter",
            "Connections closed for reading too slowly.",
            c(&self.slow_reader_disconnects),
        );
        line(
            "store_flushes_total",
            "counter",
            "Group-commit flushes.",
            c(&self.store_flushes),
        );
        line(
            "store_flushed_events_total",
            "counter",
            "Events written by flushes.",
            c(&self.store_flushed_events),
        );
        let micros = self.store_flush_micros.load(Relaxed);
        line(
            "store_flush_seconds_total",
            "counter",
            "Time spent flushing.",
            format!("{}", micros as f64 / 1e6),
        );
        line(
            "federation_outbox_dropped_total",
            "counter",
            "Queued pushes to peer nodes dropped because the queue was full.",
            c(&self.federation_outbox_dropped),
        );
        line(
            "federation_backlog_reconciled_total",
            "counter",
            "Queued pushes left to reconciliation because a link opened with a deep backlog.",
            c(&self.federation_backlog_reconciled),
        );
        line(
            "federation_events_sent_total",
            "counter",
            "Events sent to peer nodes.",
            c(&self.federation_events_sent),
        );
        line(
            "federation_events_received_total",
            "counter",
            "Events received from peer nodes.",
            c(&self.federation_events_received),
        );
        line(
            "federation_bytes_sent_total",
            "counter",
            "Link frame payload bytes sent to peer nodes.",
            c(&self.federation_bytes_sent),
        );
        line(
            "federation_bytes_received_total",
            "counter",
            "Link frame payload bytes received from peer nodes.",
            c(&self.federation_bytes_received),
        );
        line(
            "federation_links_open",
            "gauge",
            "Links to peer nodes open now.",
            c(&self.federation_links_open),
        );
        line(
            "groups_loaded",
            "gauge",
            "Groups held in memory now.",
            c(&self.groups_loaded),
        );
        line(
            "group_events_loaded",
            "gauge",
            "Events of the groups held in memory now (bounded by group_cache_events).",
            c(&self.group_events_loaded),
        );
        line(
            "group_bytes_loaded",
            "gauge",
            "Bytes of the events of the groups held in memory now, posts without their bodies (bounded by group_cache_mib).",
            c(&self.group_bytes_loaded),
        );
        line(
            "group_loads_total",
            "counter",
            "Groups read from the store into memory, reloads after eviction included.",
            c(&self.group_loads),
        );
        for (name, help, value) in gauges {
            line(name, "gauge", help, value.to_string());
        }
        let _ = writeln!(out, "# HELP kith_rejections_total Requests refused, by error code.\n# TYPE kith_rejections_total counter");
        if let Ok(map) = self.rejections.lock() {
            for (code, n) in map.iter() {
                let _ = writeln!(out, "kith_rejections_total{{code=\"{code}\"}} {n}");
            }
        }
        out
    }
}

/// Per-peer outbound queue gauges in the Prometheus text format, to append to
/// [`Metrics::render`]: each queue's depth and lag (`now_ms` minus when its oldest entry was
/// queued; 0 for an empty queue) in seconds.
pub fn render_outbox(stats: &[OutboxStats], now_ms: u64) -> String {
    let mut out = String::new();
    // Prometheus wants every sample of a metric together, under its HELP and TYPE lines.
    let _ = writeln!(
        out,
        "# HELP kith_federation_queue_depth Pushes queued for each peer node.\n# TYPE kith_federation_queue_depth gauge"
    );
    for s in stats {
        let _ = writeln!(
            out,
            "kith_federation_queue_depth{{peer=\"{}\"}} {}",
            s.peer, s.depth
        );
    }
    let _ = writeln!(
        out,
        "# HELP kith_federation_queue_lag_seconds Age of the oldest push queued for each peer node.\n# TYPE kith_federation_queue_lag_seconds gauge"
    );
    for s in stats {
        // A clock that stepped back reads as no lag rather than a huge one.
        let lag_ms = s
            .oldest_ms
            .map_or(0, |oldest| now_ms.saturating_sub(oldest));
        let _ = writeln!(
            out,
            "kith_federation_queue_lag_seconds{{peer=\"{}\"}} {}.{:03}",
            s.peer,
            lag_ms / 1000,
            lag_ms % 1000
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use kith_protocol::SecretKey;

    use super::*;

    #[test]
    fn render_outbox_gives_depth_and_lag_per_peer() {
        let (a, b) = (
            SecretKey::from_seed(&[1; 32]).public_key(),
            SecretKey::from_seed(&[2; 32]).public_key(),
        );
        let stats = [
            OutboxStats {
                peer: a,
                depth: 3,
                oldest_ms: Some(10_000),
            },
            OutboxStats {
                peer: b,
                depth: 0,
                oldest_ms: None,
            },
        ];
        let text = render_outbox(&stats, 12_345);
        let expected = format!(
            "# HELP kith_federation_queue_depth Pushes queued for each peer node.\n\
             # TYPE kith_federation_queue_depth gauge\n\
             kith_federation_queue_depth{{peer=\"{a}\"}} 3\n\
             kith_federation_queue_depth{{peer=\"{b}\"}} 0\n\
             # HELP kith_federation_queue_lag_seconds Age of the oldest push queued for each peer node.\n\
             # TYPE kith_federation_queue_lag_seconds gauge\n\
             kith_federation_queue_lag_seconds{{peer=\"{a}\"}} 2.345\n\
             kith_federation_queue_lag_seconds{{peer=\"{b}\"}} 0.000\n"
        );
        assert_eq!(text, expected);
        assert!(a.to_string().starts_with("kith1"));
        // An oldest entry "in the future" (clock stepped back) is no lag.
        let ahead = [OutboxStats {
            peer: a,
            depth: 1,
            oldest_ms: Some(20_000),
        }];
        assert!(render_outbox(&ahead, 12_345).contains("} 0.000\n"));
    }

    #[test]
    fn federation_counters_are_rendered() {
        let metrics = Metrics::default();
        metrics.federation_events_sent.fetch_add(4, Relaxed);
        metrics.federation_links_open.fetch_add(2, Relaxed);
        let text = metrics.render(&[]);
        assert!(
            text.contains("\nkith_federation_events_sent_total 4\n"),
            "{text}"
        );
        assert!(text
            .contains("# TYPE kith_federation_links_open gauge\nkith_federation_links_open 2\n"));
        assert!(text.contains("\nkith_federation_outbox_dropped_total 0\n"));
    }

    #[test]
    fn group_cache_metrics_are_rendered() {
        let metrics = Metrics::default();
        metrics.groups_loaded.store(3, Relaxed);
        metrics.group_events_loaded.store(60, Relaxed);
        metrics.group_loads.fetch_add(5, Relaxed);
        let text = metrics.render(&[]);
        assert!(
            text.contains("# TYPE kith_groups_loaded gauge\nkith_groups_loaded 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE kith_group_events_loaded gauge\nkith_group_events_loaded 60\n")
        );
        assert!(text.contains("# TYPE kith_group_loads_total counter\nkith_group_loads_total 5\n"));
    }
}
