//! The per-webhook work beside signatures: the receiver's dedup check-and-insert (memory
//! store), the sender's idempotency-key derivation, and redaction of a typical transaction
//! payload (about 1 KiB, e-mail addresses in three places, `internal*`/`metadata` fields).
//!
//! Each has a reference point in the same group: the dedup store next to a plain
//! `Mutex<HashMap>` insert (what any in-process dedup must do at least), key derivation
//! next to ring's SHA-256 of the same bytes, redaction next to walking the same JSON tree
//! without changing it. The receiver's JSON decoding of a verified event is measured
//! next to decoding its envelope only.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::Value;
use webhook_bench::payload;
use webhook_core::idempotency::{IdempotencyKey, next_window_start};
use webhook_core::redaction::Redactor;
use webhook_receiver::dedup::{Begin, DedupStore, MemoryStore};

const LEASE: Duration = Duration::from_secs(300);
const TTL: Duration = Duration::from_secs(3600);
/// Keys per fresh store: bounds memory however many iterations criterion asks for.
const CHUNK: u64 = 100_000;

/// Polls a future that the memory store has already completed (it never waits).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the memory store answers at once"),
    }
}

fn key(i: u64) -> String {
    format!("bench-{i:016x}")
}

/// An `iter_custom` body over `iters` distinct keys, in chunks of at most [`CHUNK`]: for
/// each chunk, `setup(n)` makes fresh state for its `n` keys and the keys are made, both
/// before the clock starts; only `run(&state, keys)` is timed. What `run` returns (the
/// keys, say) and the state are dropped after the clock stops.
fn chunked<S, R>(
    iters: u64,
    mut setup: impl FnMut(usize) -> S,
    mut run: impl FnMut(&S, Vec<String>) -> R,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let state = setup(usize::try_from(n).unwrap());
        let keys: Vec<String> = (0..n).map(key).collect();
        let started = Instant::now();
        let leftover = run(&state, keys);
        total += started.elapsed();
        drop((leftover, state));
        done += n;
    }
    total
}

fn dedup(c: &mut Criterion) {
    let mut group = c.benchmark_group("dedup_memory");
    // A new key: claimed (the receiver's check-and-insert before the handler runs).
    group.bench_function("begin_new_key", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                |n| MemoryStore::with_capacity(n + 1),
                |store, keys| {
                    for key in &keys {
                        black_box(ready(store.begin(key, LEASE)).unwrap());
                    }
                    keys
                },
            )
        });
    });
    // The full life of a delivery's key: claim, then mark done after a 2xx.
    group.bench_function("begin_then_complete", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                |n| MemoryStore::with_capacity(n + 1),
                |store, keys| {
                    for key in &keys {
                        let Begin::New(claim) = ready(store.begin(key, LEASE)).unwrap() else {
                            panic!("fresh key");
                        };
                        ready(store.complete(key, &claim, TTL)).unwrap();
                    }
                    keys
                },
            )
        });
    });
    // A duplicate: the key is done, the check answers at once.
    group.bench_function("begin_duplicate", |b| {
        let store = MemoryStore::with_capacity(1_024);
        let Begin::New(claim) = ready(store.begin("dup", LEASE)).unwrap() else {
            panic!("fresh key");
        };
        ready(store.complete("dup", &claim, TTL)).unwrap();
        b.iter(|| {
            assert_eq!(
                ready(store.begin(black_box("dup"), LEASE)).unwrap(),
                Begin::Done
            );
        });
    });
    // Reference: the least an in-process dedup does, one insert into a locked map.
    group.bench_function("reference_mutex_hashmap_insert", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                |n| Mutex::new(HashMap::with_capacity(n)),
                |map, keys| {
                    for key in keys {
                        black_box(map.lock().unwrap().insert(key, Instant::now()));
                    }
                },
            )
        });
    });
    group.finish();
}

fn idempotency(c: &mut Criterion) {
    let organization = payload::ORGANIZATION;
    let kind = payload::EVENT_TYPE.as_str();
    let entity = "0196153b-67bc-7cd3-b511-354373d28130";
    let mut group = c.benchmark_group("idempotency_key");
    group.bench_function("derive", |b| {
        b.iter(|| {
            IdempotencyKey::derive(
                black_box(organization),
                black_box(kind),
                black_box(entity),
                black_box(1_746_714_600),
            )
        });
    });
    group.bench_function("window_then_derive", |b| {
        b.iter(|| {
            let start = next_window_start(black_box(Some(1_746_714_600)), black_box(1_746_714_630));
            IdempotencyKey::derive(organization, kind, entity, start)
        });
    });
    // Reference: SHA-256 of the same bytes, hex-encoded, nothing else.
    let input = format!("{organization}\x1f{kind}\x1f{entity}\x1f1746714600");
    group.bench_function("reference_ring_sha256_hex", |b| {
        b.iter(|| {
            let digest = ring::digest::digest(&ring::digest::SHA256, black_box(input.as_bytes()));
            black_box(hex::encode(digest.as_ref()))
        });
    });
    group.finish();
}

fn walk(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items.iter().map(walk).sum(),
        Value::Object(fields) => fields.iter().map(|(k, v)| k.len() + walk(v)).sum(),
        _ => 1,
    }
}

fn redaction(c: &mut Criterion) {
    let redactor = Redactor::default();
    let transaction = payload::transaction(7);
    let size = serde_json::to_vec(&transaction).unwrap().len();
    let mut group = c.benchmark_group("redaction");
    group.throughput(criterion::Throughput::Bytes(size as u64));
    group.bench_function("transaction_default_rules", |b| {
        b.iter_batched_ref(
            || transaction.clone(),
            |value| redactor.redact(payload::EVENT_TYPE.as_str(), value),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("reference_walk_without_changes", |b| {
        b.iter(|| walk(black_box(&transaction)));
    });
    group.bench_function("reference_serialize", |b| {
        b.iter(|| serde_json::to_vec(black_box(&transaction)).unwrap());
    });
    group.finish();
}

/// The event envelope without its `data`: what dedup and routing need.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    idempotency_key: String,
    organization_id: String,
    created_at: String,
    data: serde::de::IgnoredAny,
}

/// What the receiver's verification spends on JSON after the signature matched: the typed
/// event with its `data` as a `serde_json::Value` tree (what core decodes today), next to
/// the envelope alone with `data` skipped but still syntax-checked, and a bare syntax check.
fn receiver_decode(c: &mut Criterion) {
    let body = payload::event_body(7, time::OffsetDateTime::now_utc());
    let mut group = c.benchmark_group("event_decode");
    group.throughput(criterion::Throughput::Bytes(body.len() as u64));
    group.bench_function("typed_event_with_value_data", |b| {
        b.iter(|| serde_json::from_slice::<webhook_core::event::Event>(black_box(&body)).unwrap());
    });
    group.bench_function("envelope_data_skipped", |b| {
        b.iter(|| serde_json::from_slice::<Envelope>(black_box(&body)).unwrap());
    });
    group.bench_function("syntax_check_only", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).unwrap());
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = dedup, idempotency, redaction, receiver_decode
}
criterion_main!(benches);
