//! Retention: finished deliveries, their attempts and their messages' payloads are removed
//! once they are older than their class's age.
//!
//! ```
//! use std::time::Duration;
//! use webhook_sender::Retention;
//!
//! let retention = Retention::default() // delivered 7 days, failed 30 days, checked hourly
//!     .delivered(Duration::from_secs(3 * 86_400))
//!     .failed(Duration::from_secs(90 * 86_400));
//! # drop(retention);
//! ```
//!
//! - **What goes when.** A delivered delivery goes `delivered` after it was delivered; a
//!   failed or cancelled one goes `failed` after it failed (a redrive makes it open again,
//!   and open deliveries are never removed, however old). A message goes with its last
//!   delivery; a message that fanned out to no endpoint goes `delivered` after it was
//!   published.
//! - **Bounded work.** A run removes at most 1,000 records per store call and yields
//!   between calls, so the store is never held for long (redb: one write batch; Redis:
//!   one script); a run stops after 100 calls per class and the next run goes on.
//! - **Scheduling.** The time of the last completed run is kept in the store, shared by
//!   every sender on it, and a run starts once `interval` has passed since then, so a
//!   process restarted more often than the interval still prunes. Retention runs in its own
//!   task, beside the scheduler.

use std::time::Duration;

use crate::delivery::{duration_millis, to_millis};
use crate::error::Error;
use crate::store::Store;
use crate::store::index::{self, RetentionClass, Scan};

/// Records removed per store call.
const BATCH: usize = 1_000;
/// Store calls per class and run.
const MAX_CALLS: usize = 100;

/// How long finished records are kept. Default: delivered 7 days, failed 30 days, checked
/// every hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    delivered: Duration,
    failed: Duration,
    interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            delivered: Duration::from_secs(7 * 86_400),
            failed: Duration::from_secs(30 * 86_400),
            interval: Duration::from_secs(3_600),
        }
    }
}

impl Retention {
    /// How long delivered deliveries (and unrouted messages) are kept. Default is 7 days.
    #[must_use]
    pub fn delivered(mut self, age: Duration) -> Self {
        self.delivered = age;
        self
    }

    /// How long failed and cancelled deliveries are kept. Default is 30 days.
    #[must_use]
    pub fn failed(mut self, age: Duration) -> Self {
        self.failed = age;
        self
    }

    /// How often retention runs. Default is every hour; at least 1 ms.
    #[must_use]
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every.max(Duration::from_millis(1));
        self
    }
}

/// Runs retention on `store` until `stopping` is cancelled, checking at least every
/// `poll` whether a run is due (by `clock`).
pub(crate) async fn run(
    store: std::sync::Arc<dyn Store>,
    clock: std::sync::Arc<dyn webhook_core::clock::Clock>,
    retention: Retention,
    poll: Duration,
    stopping: tokio_util::sync::CancellationToken,
) {
    let interval_ms = duration_millis(retention.interval);
    loop {
        let now = to_millis(clock.now());
        let wait_ms = match store.last_pruned().await {
            Ok(Some(last)) if now.saturating_sub(last) < interval_ms => {
                last.saturating_add(interval_ms).saturating_sub(now)
            }
            Ok(_) => match prune(store.as_ref(), &retention, now).await {
                Ok(true) => {
                    if let Err(error) = store.set_last_pruned(now).await {
                        tracing::warn!(%error, "recording the retention run failed");
                    }
                    interval_ms
                }
                Ok(false) => 0, // more to do: go on at once
                Err(error) => {
                    tracing::warn!(%error, "retention failed");
                    interval_ms.min(60_000)
                }
            },
            Err(error) => {
                tracing::warn!(%error, "reading the last retention run failed");
                interval_ms.min(60_000)
            }
        };
        // Waiting uses tokio's timer; a manual clock that jumps ahead is seen within a
        // second.
        let wait = Duration::from_millis(u64::try_from(wait_ms.max(1)).unwrap_or(u64::MAX))
            .min(poll.max(Duration::from_millis(1)));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopping.cancelled() => return,
        }
    }
}

/// One run; returns whether it completed (false: stopped at the call bound).
async fn prune(store: &dyn Store, retention: &Retention, now: i64) -> Result<bool, Error> {
    let classes = [
        (
            RetentionClass::Delivered,
            now.saturating_sub(duration_millis(retention.delivered)),
        ),
        (
            RetentionClass::Failed,
            now.saturating_sub(duration_millis(retention.failed)),
        ),
        (
            RetentionClass::Unrouted,
            now.saturating_sub(duration_millis(retention.delivered)),
        ),
    ];
    let mut complete = true;
    for (class, before) in classes {
        complete &= prune_class(store, class, before).await?;
    }
    Ok(complete)
}

/// Removes records of `class` finished before `before_ms`, a batch per store call.
async fn prune_class(
    store: &dyn Store,
    class: RetentionClass,
    before_ms: i64,
) -> Result<bool, Error> {
    for _ in 0..MAX_CALLS {
        let scan = Scan {
            set: index::retention(class),
            start: None,
            end: Some(index::oldest_first_from(before_ms)),
            limit: BATCH,
        };
        let members = store.scan(scan).await?;
        if members.is_empty() {
            return Ok(true);
        }
        let removed = match class {
            RetentionClass::Unrouted => {
                let keys = members
                    .iter()
                    .filter_map(|m| index::unrouted_message(m))
                    .collect();
                store.remove_unrouted(keys).await?
            }
            RetentionClass::Delivered | RetentionClass::Failed => {
                let ids = members
                    .iter()
                    .filter_map(|m| index::member_delivery(m))
                    .collect();
                store.remove_finished(ids).await?
            }
        };
        metrics::counter!(crate::metrics::PRUNED).increment(removed);
        if members.len() < BATCH || removed == 0 {
            return Ok(true);
        }
        tokio::task::yield_now().await;
    }
    Ok(false)
}
