//! Benchmarks of range-based set reconciliation (`kith_protocol::sync`), both sides driven
//! in memory with no transport, so the time is the CPU cost of a whole session:
//!
//! - `sync/reconcile/100k_vs_100k_diff_100`: two sets of 100 000 items differing by 100
//!   (50 missing on each side), default settings, from `Initiator::new` to `is_done`;
//! - `sync/reconcile/100k_vs_100k_diff_0`: the same sets without differences (one round
//!   trip: 16 fingerprints each way);
//! - `sync/build_set/100k`: building a `SyncSet` of 100 000 items (sort + dedup), for
//!   scale.
//!
//! Before the timings it prints the rounds and bytes of each session.
//!
//! Run: `cargo bench -p kith-protocol --bench sync -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use kith_protocol::sync::{Config, Initiator, Item, Responder, SyncSet};
use kith_protocol::{EventId, Timestamp};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn items(rng: &mut ChaCha8Rng, n: usize) -> Vec<Item> {
    (0..n)
        .map(|_| {
            let mut id = [0u8; 32];
            rng.fill_bytes(&mut id);
            let time = 1_700_000_000_000 + rng.gen_range(0..30 * 24 * 3600 * 1000);
            Item::new(Timestamp(time), EventId::from_bytes(id))
        })
        .collect()
}

/// Two sets of `n` items each, with `diff / 2` items only on each side.
fn pair(n: usize, diff: usize) -> (SyncSet, SyncSet) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let common = items(&mut rng, n - diff / 2);
    let only_a = items(&mut rng, diff / 2);
    let only_b = items(&mut rng, diff / 2);
    (
        common.iter().chain(&only_a).copied().collect(),
        common.iter().chain(&only_b).copied().collect(),
    )
}

/// One whole session; returns (rounds, bytes sent by the initiator, bytes sent back,
/// differences found).
fn session(a: &SyncSet, b: &SyncSet) -> (u32, usize, usize, usize) {
    let config = Config::default();
    let mut initiator = Initiator::new(a, config);
    let mut responder = Responder::new(b, config);
    let (mut up, mut down) = (0, 0);
    while let Some(request) = initiator.poll_transmit() {
        up += request.len();
        responder.handle_message(&request).expect("honest request");
        let answer = responder.poll_transmit().expect("an answer");
        down += answer.len();
        initiator.handle_message(&answer).expect("honest answer");
    }
    assert!(initiator.is_done());
    let found = initiator.have_ids().len() + initiator.need_ids().len();
    (initiator.rounds(), up, down, found)
}

fn reconcile_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync/reconcile");
    for (name, diff) in [("100k_vs_100k_diff_100", 100), ("100k_vs_100k_diff_0", 0)] {
        let (a, b) = pair(100_000, diff);
        let (rounds, up, down, found) = session(&a, &b);
        assert_eq!(found, diff);
        println!(
            "{name}: {rounds} round trips, {up} bytes to the responder, {down} bytes back, \
             {} in all (sending every id: {} bytes)",
            up + down,
            32 * a.len()
        );
        group.bench_function(name, |bench| {
            bench.iter(|| black_box(session(black_box(&a), black_box(&b))))
        });
    }
    group.finish();

    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let raw = items(&mut rng, 100_000);
    c.bench_function("sync/build_set/100k", |bench| {
        bench.iter(|| black_box(raw.iter().copied().collect::<SyncSet>()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = reconcile_benches
}
criterion_main!(benches);
