//! The store's share of one delivery, for instruction counts: `n` messages with one
//! delivery each go through enqueue, claim and a delivered finish, in groups of 64 (as a
//! busy sender batches them), with no HTTP.
//!
//! ```text
//! cargo build --release -p webhook-bench --bin store-ops
//! valgrind --tool=callgrind target/release/store-ops memory 20000
//! ```
//!
//! Divide the instruction count by `n` (and subtract a run with a small `n` for the
//! start-up) to get instructions per delivery; `memory` or `redb` picks the backend.

use std::time::{Duration, Instant};

use webhook_sender::store::{
    ClaimRequest, DeliveryRecord, Finish, MemoryStore, MessageRecord, Payload, RedbStore, Store,
    StoredEndpoint,
};
use webhook_sender::{AttemptRecord, AttemptResult, EndpointId, EventId, OrganizationId};

const GROUP: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "memory".to_owned());
    let n: usize = args.next().map_or(Ok(20_000), |n| n.parse())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    match backend.as_str() {
        "memory" => runtime.block_on(run(MemoryStore::new(), n))?,
        "redb" => runtime.block_on(run(RedbStore::open(dir.path().join("ops.redb"))?, n))?,
        other => return Err(format!("unknown backend {other:?} (memory, redb)").into()),
    }
    eprintln!(
        "{backend}: {n} deliveries in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run(store: impl Store, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = EndpointId::generate();
    store
        .put_endpoint(StoredEndpoint::new(
            endpoint,
            u32::try_from(GROUP)?,
            true,
            b"{}".to_vec(),
        ))
        .await?;
    let organization = OrganizationId::from("org-bench");
    let body = vec![b'x'; 600];
    let lease = Duration::from_secs(30);
    let mut done = 0;
    while done < n {
        let count = GROUP.min(n - done);
        let now_ms = 1_700_000_000_000 + i64::try_from(done)?;
        let enqueues = (0..count).map(|i| {
            let message = MessageRecord::new(
                EventId::generate(),
                organization.clone(),
                "transaction.confirmed",
                format!("tx-{}", done + i),
                "idem",
                Payload::new(body.clone(), None),
                now_ms,
            );
            let delivery = DeliveryRecord::new(&message, endpoint, now_ms);
            store.enqueue(message, vec![delivery])
        });
        for result in futures_join(enqueues).await {
            result?;
        }
        let claim = store.claim(ClaimRequest::new(now_ms, count, lease)).await?;
        let finishes = claim.deliveries.iter().map(|claimed| {
            let attempt = AttemptRecord {
                number: 1,
                at_ms: now_ms,
                latency_ms: 1,
                result: AttemptResult::Response {
                    status: 200,
                    body: String::new(),
                },
            };
            store.finish(
                claimed.record.id,
                claimed.record.lease,
                Finish::Delivered(attempt),
            )
        });
        for result in futures_join(finishes).await {
            result?;
        }
        done += claim.deliveries.len().max(1);
    }
    store.close().await?;
    Ok(())
}

/// Polls every future concurrently on this task and returns their outputs in order (store
/// futures borrow the store, so they are not spawned).
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, result) in pinned.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => *result = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
