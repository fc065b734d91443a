//! Counters for `GET /metrics`, in the Prometheus text format.
//!
//! Plain atomics: the hot paths only ever add, and rendering reads each once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

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
