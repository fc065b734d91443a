//! A node far behind catches up a group by reconciliation, with traffic close to the size of
//! what it lacked. Real `kithd` processes; the bytes are counted on the wire by a proxy.
//!
//! CI runs 2,000 posts; `KITH_HEAVY=1` runs 100,000 (the figure in the notes comes from
//! `cargo run --release -p kith-tests --bin bench -- catchup`).

use std::time::Duration;

#[tokio::test]
async fn a_node_far_behind_catches_up_with_traffic_close_to_the_missing_bytes() {
    let heavy = std::env::var("KITH_HEAVY").is_ok_and(|v| v == "1");
    let posts = if heavy { 100_000 } else { 2_000 };
    let result = kith_tests::catchup::run(None, posts, Duration::from_secs(600)).await;
    println!("{}", result.line());
    assert!(
        result.same_digest,
        "both nodes end with the same group state"
    );
    // Not a timing assertion: bytes are deterministic up to frame boundaries. Each missing
    // event costs its own bytes plus its id once each way (the sync names it, the fetch asks
    // for it: 2 × 32 bytes) and a few bytes of framing. This bound catches a regression to
    // text-encoded events; the 1.2× target is met only for events over ~500 bytes
    // (see the notes).
    let wire = result.wire_bytes.0 + result.wire_bytes.1;
    let bound = result.event_bytes + 120 * result.events as u64 + 64 * 1024;
    assert!(wire <= bound, "{} (bound {bound} bytes)", result.line());
}
