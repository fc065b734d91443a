//! Benchmarks of the protocol's hot paths, reported in events (or signatures) per second:
//!
//! - `event/sign`: build and sign a typical post event (body JSON, header encoding, body
//!   hash, one ed25519 signature);
//! - `event/verify_strict`: [`PublicKey::verify`] on one header, the strict check every
//!   received event goes through;
//! - `event/decode`: the format decode alone, without any signature check (most of it is
//!   checking the author key: see `key/from_bytes`);
//! - `event/decode_validate`: [`validate`] of a ~300-byte post (decode, limits, body hash,
//!   strict signature, kind and body rules), what a node does per received event;
//! - `ed25519_verify_batch/64` and `/256`: ed25519-dalek's batch verification, per
//!   signature, **for reference only** (see [`batch_verify`]).
//!
//! Run: `cargo bench -p kith-protocol --bench protocol -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kith_protocol::event::Event;
use kith_protocol::kind::PostBody;
use kith_protocol::validate::validate;
use kith_protocol::{
    EventBuilder, EventId, GroupId, Kind, Limits, PublicKey, SecretKey, Timestamp,
};

const CREATED_AT: Timestamp = Timestamp(1_700_000_000_000);

fn key(n: u16) -> SecretKey {
    let mut seed = [0x5a; 32];
    seed[..2].copy_from_slice(&n.to_be_bytes());
    SecretKey::from_seed(&seed)
}

fn body() -> Vec<u8> {
    PostBody {
        text: "Meeting moved to Thursday at 18:00, same room.".to_owned(),
    }
    .to_bytes()
}

/// A typical post: in a group, citing two parents, a short sentence of text. About 300
/// bytes on the wire.
fn builder() -> EventBuilder {
    EventBuilder::new(Kind::POST, CREATED_AT, body())
        .group(GroupId::from_bytes([0x11; 32]))
        .parents([
            EventId::from_bytes([0x22; 32]),
            EventId::from_bytes([0x33; 32]),
        ])
}

fn typical_event(author: &SecretKey) -> Event {
    builder().sign(author).expect("a typical post builds")
}

fn event_benches(c: &mut Criterion) {
    let author = key(0);
    let event = typical_event(&author);
    let bytes = event.encode();
    assert!(
        (280..=320).contains(&bytes.len()),
        "the typical event should be about 300 bytes, it is {}",
        bytes.len()
    );
    let limits = Limits::default();
    assert!(validate(&bytes, None, CREATED_AT, &limits).is_ok());
    let public = author.public_key();
    assert!(public.verify(event.header_bytes(), event.signature()));

    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Elements(1));

    group.bench_function("sign", |b| b.iter(|| builder().sign(black_box(&author))));

    group.bench_function("verify_strict", |b| {
        b.iter(|| black_box(public).verify(black_box(event.header_bytes()), event.signature()))
    });

    group.bench_function("decode", |b| b.iter(|| Event::decode(black_box(&bytes))));

    group.bench_function("decode_validate", |b| {
        b.iter(|| validate(black_box(&bytes), None, CREATED_AT, &limits))
    });

    group.finish();

    // Checking an author key (decompression, canonical re-compression, small-order test),
    // which `event/decode` does once per event.
    let mut group = c.benchmark_group("key");
    group.throughput(Throughput::Elements(1));
    group.bench_function("from_bytes", |b| {
        b.iter(|| PublicKey::from_bytes(black_box(public.as_bytes())))
    });
    group.finish();
}

/// ed25519-dalek's `verify_batch`, measured per signature for comparison with
/// `event/verify_strict`.
///
/// Kith does NOT use batch verification to accept events, and must not: the batch equation
/// is the cofactored one (multiplied by 8), so it can accept signatures whose R or key has a
/// small-order component that `verify_strict` (cofactorless, rejecting small-order R and
/// keys) refuses. Acceptance would then depend on how a node happened to group events, and
/// two nodes could disagree about the same event. This number only tells what a batch
/// pre-filter would cost.
fn batch_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("ed25519_verify_batch");
    // A batch of 256 takes milliseconds: fewer samples keep the run short.
    group.sample_size(20);
    for n in [64u16, 256] {
        let keys: Vec<SecretKey> = (0..n).map(key).collect();
        let events: Vec<Event> = keys.iter().map(typical_event).collect();
        let messages: Vec<&[u8]> = events.iter().map(Event::header_bytes).collect();
        let signatures: Vec<ed25519_dalek::Signature> = events
            .iter()
            .map(|e| ed25519_dalek::Signature::from_bytes(e.signature()))
            .collect();
        let verifying_keys: Vec<ed25519_dalek::VerifyingKey> = keys
            .iter()
            .map(|k| {
                ed25519_dalek::VerifyingKey::from_bytes(k.public_key().as_bytes())
                    .expect("a derived key is valid")
            })
            .collect();
        assert!(ed25519_dalek::verify_batch(&messages, &signatures, &verifying_keys).is_ok());

        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                ed25519_dalek::verify_batch(
                    black_box(&messages),
                    black_box(&signatures),
                    black_box(&verifying_keys),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, event_benches, batch_verify);
criterion_main!(benches);
