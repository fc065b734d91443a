//! The node benchmark: a real `kithd` process on loopback, measured from outside.
//!
//! ```text
//! cargo run --release -p kith-tests --bin bench -- [--quick] [ingest] [fanout] [memory] [catchup]
//! ```
//!
//! - `ingest`: durable events per second with 1, 10 and 100 concurrent publishers, and the
//!   latency of each publish (an `ok` means the event is flushed).
//! - `fanout`: one publisher at a fixed rate, 100 and 1,000 live subscribers; the latency
//!   from just before publishing to receipt at each subscriber.
//! - `memory`: the node's resident memory idle, with 1,000 and 10,000 idle WebSockets, and
//!   after ingesting 100k events.
//! - `catchup`: a node that held 10k events of a public group comes back 100k behind (1k and
//!   5k with `--quick`) and catches up from a peer; time, and bytes on the wire versus the
//!   bytes of the missing events.
//!
//! Every scenario starts its own node with a fresh data directory. With no scenario named,
//! all run. `--quick` uses smaller counts (for a smoke test; its numbers are rough).

mod fanout;
mod ingest;
mod memory;
mod node;
mod stats;
mod wire;

use std::time::Instant;

const USAGE: &str = "usage: bench [--quick] [ingest] [fanout] [memory] [catchup]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut quick = false;
    let mut chosen = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "ingest" | "fanout" | "memory" | "catchup" => chosen.push(arg),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if chosen.is_empty() {
        chosen = vec!["ingest".into(), "fanout".into(), "memory".into()];
    }

    // Raise the open-file limit before any kithd starts: it inherits ours.
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let kithd = node::locate_kithd()?;
    let started = Instant::now();
    println!(
        "Kith node benchmark ({})",
        if quick { "quick" } else { "full" }
    );
    println!("kithd: {}", kithd.display());
    println!("open-file limit for this process and kithd: {fd_limit}");
    let load_before = load_average();
    println!("load average before: {load_before}");
    println!();

    let mut summary = Vec::new();
    for scenario in &chosen {
        let lines = match scenario.as_str() {
            "ingest" => ingest::scenario(&kithd, quick).await?,
            "fanout" => fanout::scenario(&kithd, quick).await?,
            "catchup" => {
                let (held, behind) = if quick {
                    (1_000, 5_000)
                } else {
                    (10_000, 100_000)
                };
                println!("== catch-up: a node {behind} events behind ({held} held) ==");
                let run = kith_tests::catchup::run(
                    Some(&kithd),
                    held,
                    behind,
                    std::time::Duration::from_secs(1800),
                )
                .await;
                println!("{}", run.line());
                vec![run.line()]
            }
            _ => memory::scenario(&kithd, quick, fd_limit).await?,
        };
        summary.extend(lines);
        println!();
    }

    println!("==== Summary (paste into a report) ====");
    for line in machine_description(&kithd, quick, fd_limit) {
        println!("{line}");
    }
    println!(
        "load average (1, 5, 15 min) before: {load_before}; after: {}",
        load_average()
    );
    for line in summary {
        println!("{line}");
    }
    println!("(whole run took {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// `/proc/loadavg`'s first three numbers: other work on the machine skews every result.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The facts that make the numbers comparable: cores, CPU, memory, build.
fn machine_description(kithd: &std::path::Path, quick: bool, fd_limit: u64) -> Vec<String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |rest| {
            rest.trim_start_matches([' ', '\t', ':'])
        });
    let memory_gib =
        node::proc_field("/proc/meminfo", "MemTotal:").unwrap_or(0) as f64 / (1024.0 * 1024.0);
    let profile = kithd
        .parent()
        .and_then(|d| d.file_name())
        .map_or("?".into(), |n| n.to_string_lossy().into_owned());
    vec![
        format!(
            "machine: {cores} cores ({cpu}), {memory_gib:.0} GiB RAM; bench and kithd share these cores"
        ),
        format!(
            "kithd: {profile} build, loopback, durability process-crash, cache 64 MiB, rate limits raised; open-file limit {fd_limit}; mode {}",
            if quick { "quick (rough numbers)" } else { "full" }
        ),
    ]
}
