//! The node under test: a release `kithd` process with a fresh data directory and raised
//! limits, and readings of its memory and metrics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kith_tests::KithdProcess;

/// Written to the data directory before the node starts. Rate limits are raised so the
/// benchmark measures the node's work, not its protection against abuse.
const CONFIG: &str = r#"# Written by the benchmark.
open_registration = true

[connections]
max_connections = 100000
publish_per_second = 1000000.0
publish_burst = 1000000.0
key_publish_per_second = 1000000.0
key_publish_burst = 1000000.0
frames_per_second = 1000000.0
frames_burst = 1000000.0
"#;

/// A running node and its data directory (removed when dropped).
pub(crate) struct BenchNode {
    process: KithdProcess,
    _dir: tempfile::TempDir,
}

impl BenchNode {
    /// Starts `kithd` with a fresh data directory and the benchmark's config.
    pub(crate) async fn start(kithd: &Path) -> anyhow::Result<BenchNode> {
        BenchNode::start_with(kithd, "").await
    }

    /// Like [`BenchNode::start`], with `extra` appended to the config (TOML).
    pub(crate) async fn start_with(kithd: &Path, extra: &str) -> anyhow::Result<BenchNode> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("kithd.toml"), format!("{CONFIG}{extra}"))?;
        let process = KithdProcess::start_binary(kithd, dir.path(), &[]).await;
        Ok(BenchNode { process, _dir: dir })
    }

    /// Stops the node (SIGTERM) and starts it again on the same data directory: nothing
    /// in memory but what a start reads.
    pub(crate) async fn restart(self, kithd: &Path) -> anyhow::Result<BenchNode> {
        let BenchNode { process, _dir: dir } = self;
        let status = process.terminate();
        anyhow::ensure!(status.success(), "kithd stopped with {status}");
        let process = KithdProcess::start_binary(kithd, dir.path(), &[]).await;
        Ok(BenchNode { process, _dir: dir })
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> &str {
        &self.process.url
    }

    /// The node's resident memory now (VmRSS), in KiB.
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_field("VmRSS:")
    }

    /// The most resident memory the node has had (VmHWM), in KiB.
    pub(crate) fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.status_field("VmHWM:")
    }

    fn status_field(&self, field: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.process.pid());
        proc_field(&path, field)
            .ok_or_else(|| anyhow::anyhow!("no {field} line in {path} (is kithd still running?)"))
    }

    /// CPU time the node has used so far (user + system).
    pub(crate) fn cpu_time(&self) -> Duration {
        cpu_time(&self.process.pid().to_string())
    }

    /// Bytes of all files in the data directory.
    pub(crate) fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.process.dir)
    }

    /// A counter or gauge from `/metrics` (name without the `kith_` prefix); 0 if absent.
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        let text = kith_tests::node::get_text(self.url(), "/metrics").await;
        let wanted = format!("kith_{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&wanted))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// CPU time (user + system) used by process `pid` ("self" for this one), from
/// `/proc/<pid>/stat` in clock ticks of 1/100 s (the value on every common Linux build).
pub(crate) fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3, the state;
    // utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The number in a `Name:   123 kB` line of a /proc file.
pub(crate) fn proc_field(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The `kithd` built with the same profile as this benchmark, next to it in
/// `target/<profile>/`. (The test harness's `workspace_binary` looks one directory higher,
/// which is right for test executables in `target/<profile>/deps` but not for a binary.)
/// Cargo does not build another package's binaries for `cargo run`, so this builds it;
/// when it is up to date that takes a moment.
pub(crate) fn locate_kithd() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("the benchmark executable has no directory"))?;
    let path = dir.join("kithd");
    let release = dir.file_name().is_some_and(|n| n == "release");
    if !release {
        eprintln!("warning: this is not a release build; run with `cargo run --release` for meaningful numbers");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "kith-server", "--bin", "kithd"]);
    if release {
        build.arg("--release");
    }
    let built = build.status().map(|s| s.success()).unwrap_or(false);
    match (built, path.exists()) {
        (true, true) => Ok(path),
        (false, true) => {
            eprintln!(
                "warning: building kithd failed; using the existing {}",
                path.display()
            );
            Ok(path)
        }
        (_, false) => anyhow::bail!(
            "no kithd at {}; build it with `cargo build --release -p kith-server --bin kithd`",
            path.display()
        ),
    }
}
