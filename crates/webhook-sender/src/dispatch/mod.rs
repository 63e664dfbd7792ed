//! Dispatch: the scheduler that claims due deliveries and the bounded pool of attempts.
//!
//! One scheduler task loops: it asks the store for up to as many due deliveries as there
//! are free worker slots (claims are fair across endpoints and respect each endpoint's
//! concurrency cap, open circuit breakers and rate limits), spawns one attempt per claimed
//! delivery, and sleeps until the next delivery falls due or something wakes it (a publish,
//! a finished attempt, a breaker or rate limit reopening, shutdown). Attempts are async
//! tasks, so a slow endpoint occupies at most its own cap of slots and never blocks a
//! worker beyond its timeout.
//!
//! ```
//! # async fn demo() -> Result<(), webhook_sender::Error> {
//! let sender = webhook_sender::Sender::builder().workers(32).build().await?;
//! sender.shutdown().await?;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod attempt;
pub(crate) mod rate;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::sender::{Shared, lock};
use crate::store::{ClaimRequest, Finish};

/// How long to back off after the store fails a claim.
const STORE_ERROR_BACKOFF: Duration = Duration::from_millis(500);
/// How often delivered deliveries older than the retention are pruned.
const PRUNE_EVERY_MS: i64 = 3_600_000;
/// At most this many prune calls per round (each removes a bounded number).
const PRUNE_ROUNDS: usize = 100;

/// Runs the scheduler until shutdown; then drains, releases and closes the store.
pub(crate) async fn run(shared: Arc<Shared>) -> Result<(), Error> {
    let permits = Arc::new(Semaphore::new(shared.settings.workers));
    let mut attempts = JoinSet::new();
    let mut last_prune = shared.now_ms();
    loop {
        if shared.stopping.is_cancelled() {
            break;
        }
        while attempts.try_join_next().is_some() {}
        let now = shared.now_ms();
        let idle_ms = i64::try_from(shared.settings.idle_poll.as_millis()).unwrap_or(i64::MAX);
        if now.saturating_sub(shared.last_config_sync_ms.load(Ordering::SeqCst)) >= idle_ms {
            shared.last_config_sync_ms.store(now, Ordering::SeqCst);
            if let Err(error) = shared.sync_config().await {
                tracing::warn!(%error, "reloading configuration failed");
            }
        }
        if now.saturating_sub(last_prune) >= PRUNE_EVERY_MS {
            last_prune = now;
            prune(&shared, now).await;
        }
        let free = permits.available_permits();
        let mut wake_at: Option<i64> = None;
        let mut busy = false;
        if free > 0 {
            let (overrides, reopen) = overrides(&shared, now);
            let request = ClaimRequest {
                now_ms: now,
                limit: free,
                lease: shared.settings.lease,
                overrides,
            };
            match shared.store.claim(request).await {
                Ok(claim) => {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!(crate::metrics::QUEUE_DEPTH).set(claim.open as f64);
                    busy = !claim.deliveries.is_empty() && claim.next_due_ms == Some(now);
                    for claimed in claim.deliveries {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            // Cannot happen (only this loop takes permits); give it back.
                            let _ = shared
                                .store
                                .finish(
                                    claimed.record.id,
                                    claimed.record.lease,
                                    Finish::Release { at_ms: now },
                                )
                                .await;
                            continue;
                        };
                        lock(&shared.rates).take(claimed.record.endpoint);
                        attempts.spawn(attempt::run(shared.clone(), claimed, permit));
                    }
                    wake_at = min_opt(claim.next_due_ms, reopen);
                }
                Err(error) => {
                    tracing::warn!(%error, "claiming due deliveries failed");
                    wake_at = Some(
                        now.saturating_add(crate::delivery::duration_millis(STORE_ERROR_BACKOFF)),
                    );
                }
            }
        }
        if busy && permits.available_permits() > 0 {
            // More is due right now and there is room: claim again at once.
            tokio::task::yield_now().await;
            continue;
        }
        let idle = shared.settings.idle_poll;
        let sleep = wake_at.map_or(idle, |at| {
            let ms = u64::try_from(at.saturating_sub(shared.now_ms()).max(0)).unwrap_or(0);
            Duration::from_millis(ms).min(idle)
        });
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
            () = shared.stopping.cancelled() => {}
        }
    }
    drain(&shared, attempts).await;
    shared.store.close().await?;
    Ok(())
}

/// Forgets delivered deliveries older than the retention, a bounded number of store calls
/// at a time.
async fn prune(shared: &Shared, now: i64) {
    let retention = crate::delivery::duration_millis(shared.settings.retention);
    for _ in 0..PRUNE_ROUNDS {
        match shared
            .store
            .prune_delivered(now.saturating_sub(retention))
            .await
        {
            Ok(0) => break,
            Ok(_) => tokio::task::yield_now().await,
            Err(error) => {
                tracing::warn!(%error, "pruning delivered deliveries failed");
                break;
            }
        }
    }
}

/// Waits for attempts in flight, up to the shutdown timeout; abandons the rest and
/// releases their deliveries.
async fn drain(shared: &Shared, mut attempts: JoinSet<()>) {
    let deadline = tokio::time::sleep(shared.settings.shutdown_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = attempts.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                attempts.abort_all();
                while attempts.join_next().await.is_some() {}
                break;
            }
        }
    }
    let abandoned: HashMap<_, _> = std::mem::take(&mut *lock(&shared.in_flight));
    let now = shared.now_ms();
    for (id, lease) in abandoned {
        if let Err(error) = shared
            .store
            .finish(id, lease, Finish::Release { at_ms: now })
            .await
        {
            tracing::warn!(delivery.id = %id, %error, "releasing an abandoned delivery failed");
        }
    }
}

fn overrides(shared: &Shared, now: i64) -> (HashMap<crate::ids::EndpointId, usize>, Option<i64>) {
    let (breakers, breaker_wake) = lock(&shared.breakers).overrides(now);
    let (rates, rate_wake) = lock(&shared.rates).overrides(now);
    let mut map: HashMap<_, usize> = HashMap::new();
    for (endpoint, cap) in breakers.into_iter().chain(rates) {
        map.entry(endpoint)
            .and_modify(|current| *current = (*current).min(cap))
            .or_insert(cap);
    }
    (map, min_opt(breaker_wake, rate_wake))
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
