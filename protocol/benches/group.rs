//! Benchmarks of a large group's state machine (`kith_protocol::group`):
//!
//! - `group/cold_load_100k`: [`Group::load`] of a group with 10,000 members and 100,000
//!   events (one fold, no per-event checks): what a node does the first time it needs a
//!   group after a restart. Reported per event;
//! - `group/insert_fast_path`: [`Group::insert`] of a post citing the current heads, on top
//!   of that group (decide and apply against the current state);
//! - `group/insert_slow_path`: [`Group::insert`] of a post citing an older event, so its
//!   parents are not the heads (concurrent with the latest event): the state its parents
//!   establish is folded from its ancestors, then the whole group is folded again;
//! - `group/check_slow_path`: [`Group::check`] of such a post (one fold of its ancestors).
//!
//! The group: a founder, ten invitations of 1,002 uses, 10,019 joins, 20 leaves (10,000
//! members remain; set `KITH_BENCH_LEAVES` for more or fewer, the joins follow), 20
//! proposals each answered by 600 members (every fourth blocked) and decided, and 77,910
//! posts. Events cite all current heads, except one post in twenty
//! that cites the parents of the latest event instead (a short concurrent branch, merged
//! by the next event). Building and signing the events takes a few seconds and happens
//! once, outside the measurements; a load checks the built group is the one intended.
//!
//! Run: `cargo bench -p kith-protocol --bench group -- --warm-up-time 1 --measurement-time 5`.

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use kith_protocol::group::body::{
    self, Action, GroupCreate, Invite, Join, Leave, Outcome, Proposal, SelfDescription, Stance,
    StanceKind, Verdict, Visibility,
};
use kith_protocol::group::rules::{ActionType, Method, Rules, Who};
use kith_protocol::group::{self, Group};
use kith_protocol::kind::PostBody;
use kith_protocol::{Event, EventBuilder, EventId, GroupId, Kind, Limits, SecretKey, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const TOTAL: usize = 100_000;
const MEMBERS: usize = 10_000;
const INVITES: usize = 10;
const PROPOSALS: usize = 20;
const STANCES: usize = 600;

fn key(n: usize) -> SecretKey {
    let mut seed = [0x42; 32];
    seed[..8].copy_from_slice(&(n as u64).to_be_bytes());
    SecretKey::from_seed(&seed)
}

fn post(n: usize) -> Vec<u8> {
    PostBody {
        text: format!("Message {n}: can anyone help with a lift to the clinic on Thursday?"),
    }
    .to_bytes()
}

/// Builds the events of a big group, in an order that is also their fold order.
struct Builder {
    keys: Vec<SecretKey>,
    group: GroupId,
    events: Vec<Event>,
    parents_of: HashMap<EventId, Vec<EventId>>,
    heads: BTreeSet<EventId>,
    clock: u64,
    rng: ChaCha8Rng,
    posts: usize,
}

impl Builder {
    /// Signs an event citing all heads (or, if `fork`, the parents of one head).
    fn add(&mut self, who: usize, kind: Kind, body: Vec<u8>, fork: bool) -> EventId {
        self.clock += 10;
        let parents: Vec<EventId> = if fork {
            let head = *self.heads.iter().next().expect("a head");
            self.parents_of[&head].clone()
        } else {
            self.heads.iter().copied().collect()
        };
        let event = EventBuilder::new(kind, Timestamp(self.clock), body)
            .group(self.group)
            .parents(parents.iter().copied())
            .sign(&self.keys[who])
            .expect("signs");
        let id = event.id();
        for p in &parents {
            self.heads.remove(p);
        }
        self.heads.insert(id);
        self.parents_of.insert(id, parents);
        self.events.push(event);
        id
    }

    /// A post by a member who joined a while ago; now and then on a concurrent branch.
    fn post(&mut self, members: usize) {
        let who = self.rng.gen_range(0..members.saturating_sub(50).max(1));
        let fork = self.rng.gen_ratio(1, 20) && self.events.len() > 2;
        self.posts += 1;
        let body = post(self.posts);
        self.add(who, Kind::POST, body, fork);
    }
}

/// The genesis and the other events of a group of 10,000 members and 100,000 events.
/// How many members join and leave again (each leave is a membership end, and the fold's
/// removal horizon does work for each): 20, or `KITH_BENCH_LEAVES`.
fn leaves() -> usize {
    std::env::var("KITH_BENCH_LEAVES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

fn big_group() -> (Event, Vec<Event>) {
    let leaves = leaves();
    let joins = MEMBERS - 1 + leaves;
    let mut rules = Rules {
        invite: Who::AnyMember,
        ..Rules::mutual_aid_default()
    };
    rules
        .decisions
        .insert(ActionType::Decide, Method::Consent { quorum_pct: 5 });
    let create = GroupCreate {
        name: "Big city mutual aid".into(),
        purpose: "Benchmarks".into(),
        visibility: Visibility::Public,
        rules,
        founder: SelfDescription::default(),
        home: None,
    };
    let keys: Vec<SecretKey> = (0..=joins).map(key).collect();
    let genesis = EventBuilder::new(group::GROUP_CREATE, Timestamp(T0), body::to_bytes(&create))
        .sign(&keys[0])
        .expect("signs");
    let mut b = Builder {
        keys,
        group: GroupId::from(genesis.id()),
        events: Vec::with_capacity(TOTAL),
        parents_of: HashMap::from([(genesis.id(), Vec::new())]),
        heads: BTreeSet::from([genesis.id()]),
        clock: T0,
        rng: ChaCha8Rng::seed_from_u64(7),
        posts: 0,
    };
    let governance = INVITES + joins + leaves + PROPOSALS * (STANCES + 2);
    let posts = TOTAL - 1 - governance;
    // Joins, two posts after each (the rest of the posts come with the decisions).
    let mut members = 1;
    let mut invite = None;
    let uses = (joins / INVITES + 1) as u32;
    for n in 1..=joins {
        if (n - 1) % uses as usize == 0 {
            let body = body::to_bytes(&Invite {
                expires_at: Timestamp(T0 + 1000 * HOUR),
                uses,
                note: None,
            });
            invite = Some(b.add(0, group::INVITE, body, false));
        }
        let via = invite.expect("an invitation");
        b.add(
            n,
            group::JOIN,
            body::to_bytes(&Join {
                via,
                me: SelfDescription::default(),
                home: None,
            }),
            false,
        );
        members += 1;
        b.post(members);
        b.post(members);
    }
    // The last few to join leave again; they write nothing else.
    for n in joins + 1 - leaves..=joins {
        b.add(n, group::LEAVE, body::to_bytes(&Leave::default()), false);
    }
    let active = MEMBERS;
    let per_proposal = (posts - 2 * joins) / PROPOSALS;
    for i in 0..PROPOSALS {
        let closes_at = Timestamp(b.clock + HOUR);
        let body = body::to_bytes(&Proposal {
            title: format!("Decision {i}"),
            text: "Shall we?".into(),
            action: Action::Decide,
            closes_at,
            options: Vec::new(),
            informed_by: Vec::new(),
        });
        let proposal = b.add(i, group::PROPOSAL, body, false);
        let mut counted = BTreeSet::new();
        let blocked = i % 4 == 0;
        let stride = per_proposal / STANCES;
        for j in 0..STANCES {
            let who = (i * 397 + j * 13) % active;
            let stance = if blocked && j == STANCES / 2 {
                StanceKind::Block
            } else {
                StanceKind::Agree
            };
            let body = body::to_bytes(&Stance {
                proposal,
                stance,
                reason: None,
                option: None,
            });
            counted.insert(b.add(who, group::STANCE, body, false));
            for _ in 0..stride {
                b.post(active);
            }
        }
        b.clock = b.clock.max(closes_at.0);
        let result = if blocked {
            Verdict::Failed
        } else {
            Verdict::Passed
        };
        let body = body::to_bytes(&Outcome {
            proposal,
            counted,
            // Built without checks: the bench only needs the fold's work, not a quorum.
            eligible: STANCES as u32,
            result,
            option: None,
            explanation: "Counted.".into(),
        });
        b.add(i + 1, group::OUTCOME, body, false);
    }
    while b.events.len() + 1 < TOTAL {
        b.post(active);
    }
    (genesis, b.events)
}

fn group_benches(c: &mut Criterion) {
    let started = Instant::now();
    let (genesis, events) = big_group();
    let built = started.elapsed();
    let limits = Limits::default();
    let (loaded, orphans) =
        Group::load(genesis.clone(), events.clone(), limits.clone()).expect("loads");
    let state = loaded.state();
    assert!(orphans.is_empty());
    assert_eq!(loaded.len(), TOTAL);
    assert_eq!(state.members.len(), MEMBERS);
    assert!(
        state.not_applied.is_empty(),
        "{:?}",
        state.not_applied.iter().next()
    );
    assert!(state.hidden.is_empty());
    let decided = state
        .proposals
        .values()
        .filter(|p| p.outcome.is_some())
        .count();
    assert_eq!(decided, PROPOSALS);
    eprintln!(
        "built and signed {} events in {built:.1?}; {} members, {} heads",
        loaded.len(),
        state.members.len(),
        loaded.heads().len()
    );

    let mut g = c.benchmark_group("group");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(TOTAL as u64));
    g.bench_function("cold_load_100k", |bench| {
        bench.iter_batched(
            || events.clone(),
            |events| {
                black_box(Group::load(genesis.clone(), events, limits.clone()).expect("loads"))
            },
            BatchSize::LargeInput,
        )
    });

    g.throughput(Throughput::Elements(1));
    let writer = key(1);
    let sign = |at: u64, parents: Vec<EventId>, n: u64| {
        EventBuilder::new(Kind::POST, Timestamp(at), post(n as usize))
            .group(loaded.id())
            .parents(parents)
            .sign(&writer)
            .expect("signs")
    };
    let last = events.last().expect("events").created_at().0;
    // An event well before the end, which no head is.
    let old = events[events.len() - 100].id();

    let mut slow = loaded.clone();
    let mut n = 0u64;
    g.bench_function("insert_slow_path", |bench| {
        bench.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let event = sign(last + n, vec![old], n);
                let start = Instant::now();
                assert_eq!(slow.insert(event), Ok(true));
                spent += start.elapsed();
            }
            spent
        })
    });
    g.bench_function("check_slow_path", |bench| {
        bench.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let event = sign(last + n, vec![old], n);
                let start = Instant::now();
                assert_eq!(loaded.check(&event), Ok(()));
                spent += start.elapsed();
            }
            spent
        })
    });

    g.sample_size(50).sampling_mode(SamplingMode::Auto);
    let mut fast = loaded.clone();
    g.bench_function("insert_fast_path", |bench| {
        bench.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let event = sign(
                    last + 1_000_000 + n,
                    fast.heads().iter().copied().collect(),
                    n,
                );
                let start = Instant::now();
                assert_eq!(fast.insert(event), Ok(true));
                spent += start.elapsed();
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, group_benches);
criterion_main!(benches);
