//! Dispatch: the delivery engine, its scheduler that claims due deliveries, and the
//! bounded pool of attempts.
//!
//! One scheduler task loops: it asks the store for up to as many due deliveries as there
//! are free worker slots (claims are fair across endpoints and respect each endpoint's
//! concurrency cap, open circuit breakers and rate limits), spawns one attempt per claimed
//! delivery, and sleeps until the next delivery falls due or something wakes it (a publish,
//! a finished attempt, a breaker or rate limit reopening, shutdown). Attempts are async
//! tasks, so a slow endpoint occupies at most its own cap of slots and never blocks a
//! worker beyond its timeout. The queue model is described in ARCHITECTURE.md.
//!
//! ```
//! # async fn demo() -> Result<(), webhook_sender::Error> {
//! use webhook_sender::store::MemoryStore;
//!
//! let sender = webhook_sender::Sender::builder().store(MemoryStore::new()).workers(32).build().await?;
//! sender.shutdown().await?;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod attempt;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use webhook_core::clock::Clock;

use crate::circuit::{BreakerConfig, Breakers};
use crate::config::{LiveConfig, lock};
use crate::delivery::{duration_millis, to_millis};
use crate::error::Error;
use crate::http::HttpClient;
use crate::ids::{DeliveryId, EndpointId};
use crate::outcome::Outcome;
use crate::retention::Retention;
use crate::store::{ClaimRequest, Finish, Store};

/// How long to back off after the store fails a claim.
const STORE_ERROR_BACKOFF: Duration = Duration::from_millis(500);
/// How long a delete waits for attempts in flight to its endpoint to stop.
const ABORT_WAIT: Duration = Duration::from_secs(5);

/// Engine settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) lease: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) idle_poll: Duration,
    pub(crate) retention: Retention,
}

/// An attempt being made.
#[derive(Debug)]
struct InFlight {
    endpoint: EndpointId,
    lease: u64,
    abort: Option<AbortHandle>,
    /// The attempt's task was aborted before it recorded a result.
    stopped: bool,
}

/// The delivery engine: what the scheduler and attempts share. The management handles
/// reach it only through `manage::Control`.
pub(crate) struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Arc<LiveConfig>,
    pub(crate) client: HttpClient,
    pub(crate) settings: Settings,
    breakers: std::sync::Mutex<Breakers>,
    in_flight: std::sync::Mutex<HashMap<DeliveryId, InFlight>>,
    /// Per deleted endpoint: cancelled when it was deleted; attempts race against it.
    deleted: std::sync::Mutex<HashMap<EndpointId, CancellationToken>>,
    /// Wakes the scheduler: new work, a finished attempt, shutdown.
    wake: Notify,
    outcomes: broadcast::Sender<Outcome>,
    /// Set when shutdown starts: nothing new is accepted or claimed.
    stopping: CancellationToken,
    closed: AtomicBool,
    /// The store, when it is the Postgres store (for `Sender::publish_in`).
    #[cfg(feature = "postgres")]
    pub(crate) postgres: Option<crate::store::PostgresStore>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl crate::manage::Control for Engine {
    fn check_open(&self) -> Result<(), Error> {
        Engine::check_open(self)
    }

    fn now_ms(&self) -> i64 {
        Engine::now_ms(self)
    }

    fn max_timeout(&self) -> Duration {
        self.settings.lease / 2
    }

    fn reset_breaker(&self, endpoint: EndpointId) {
        lock(&self.breakers).reset(endpoint);
    }

    fn breaker(&self, endpoint: EndpointId) -> crate::circuit::BreakerState {
        lock(&self.breakers).state(endpoint)
    }

    fn abort_endpoint(
        &self,
        endpoint: EndpointId,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(Engine::abort_endpoint(self, endpoint))
    }

    fn wake(&self) {
        Engine::wake(self);
    }
}

impl Engine {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: Arc<LiveConfig>,
        client: HttpClient,
        settings: Settings,
        breaker: BreakerConfig,
        outcome_capacity: usize,
    ) -> Self {
        let (outcomes, _) = broadcast::channel(outcome_capacity);
        Self {
            store,
            clock,
            config,
            client,
            settings,
            breakers: std::sync::Mutex::new(Breakers::new(breaker)),
            in_flight: std::sync::Mutex::new(HashMap::new()),
            deleted: std::sync::Mutex::new(HashMap::new()),
            wake: Notify::new(),
            outcomes,
            stopping: CancellationToken::new(),
            closed: AtomicBool::new(false),
            #[cfg(feature = "postgres")]
            postgres: None,
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        to_millis(self.clock.now())
    }

    /// Fails once shutdown has begun.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.stopping.is_cancelled() || self.closed.load(Ordering::SeqCst) {
            Err(Error::shutdown())
        } else {
            Ok(())
        }
    }

    /// Wakes the scheduler.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Counts an attempt's result against its endpoint's breaker; true when it opened.
    fn record_breaker(&self, endpoint: EndpointId, failed: bool, now_ms: i64) -> bool {
        lock(&self.breakers).record(endpoint, failed, now_ms)
    }

    /// Tells outcome subscribers (there may be none).
    fn announce(&self, outcome: Outcome) {
        let _ = self.outcomes.send(outcome);
    }

    /// A stream of final outcomes, from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Outcome> {
        self.outcomes.subscribe()
    }

    /// The token an attempt to `endpoint` races against; cancelled once it is deleted.
    fn deletion(&self, endpoint: EndpointId) -> Option<CancellationToken> {
        lock(&self.deleted).get(&endpoint).cloned()
    }

    /// Stops every attempt to `endpoint` and keeps new ones from sending, then waits
    /// (bounded) until the attempts in flight have stopped.
    async fn abort_endpoint(&self, endpoint: EndpointId) {
        lock(&self.deleted).entry(endpoint).or_default().cancel();
        for attempt in lock(&self.in_flight).values() {
            if attempt.endpoint == endpoint {
                if let Some(abort) = &attempt.abort {
                    abort.abort();
                }
            }
        }
        let deadline = tokio::time::Instant::now() + ABORT_WAIT;
        while lock(&self.in_flight)
            .values()
            .any(|attempt| attempt.endpoint == endpoint)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Records how an attempt's task ended: recorded (its entry goes) or stopped before it
    /// could record (its entry stays, for shutdown to release the lease).
    fn attempt_ended(&self, id: DeliveryId, recorded: bool) {
        let mut in_flight = lock(&self.in_flight);
        let Some(attempt) = in_flight.get_mut(&id) else {
            return;
        };
        // An attempt stopped by its endpoint's deletion has nothing left to release: its
        // delivery is cancelled.
        if recorded || self.deletion(attempt.endpoint).is_some() {
            in_flight.remove(&id);
        } else {
            attempt.stopped = true;
        }
    }

    /// Cancelled when shutdown begins.
    pub(crate) fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Starts shutting down: nothing new is accepted or claimed.
    pub(crate) fn begin_shutdown(&self) {
        self.stopping.cancel();
        self.wake.notify_one();
    }

    /// Marks the engine closed (after the scheduler ended).
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// Runs the scheduler until shutdown; then drains, releases and closes the store.
pub(crate) async fn run(engine: Arc<Engine>) -> Result<(), Error> {
    let permits = Arc::new(Semaphore::new(engine.settings.workers));
    let mut attempts = JoinSet::new();
    loop {
        if engine.stopping.is_cancelled() {
            break;
        }
        while attempts.try_join_next().is_some() {}
        let now = engine.now_ms();
        let idle_ms = duration_millis(engine.settings.idle_poll);
        match engine
            .config
            .sync_every(engine.store.as_ref(), now, idle_ms)
            .await
        {
            Ok(true) => engine.wake(),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "reloading configuration failed"),
        }
        let free = permits.available_permits();
        let mut wake_at: Option<i64> = None;
        let mut busy = false;
        if free > 0 {
            let (overrides, reopen) = overrides(&engine, now);
            let request = ClaimRequest::new(now, free, engine.settings.lease).overrides(overrides);
            match engine.store.claim(request).await {
                Ok(claim) => {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!(crate::metrics::QUEUE_DEPTH).set(claim.open as f64);
                    busy = !claim.deliveries.is_empty() && claim.next_due_ms == Some(now);
                    for claimed in claim.deliveries {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            // Cannot happen (only this loop takes permits); give it back.
                            let _ = engine
                                .store
                                .finish(
                                    claimed.record.id,
                                    claimed.record.lease,
                                    Finish::Release { at_ms: now },
                                )
                                .await;
                            continue;
                        };
                        let (id, endpoint, lease) = (
                            claimed.record.id,
                            claimed.record.endpoint,
                            claimed.record.lease,
                        );
                        engine.config.rates().take(endpoint);
                        lock(&engine.in_flight).insert(
                            id,
                            InFlight {
                                endpoint,
                                lease,
                                abort: None,
                                stopped: false,
                            },
                        );
                        let abort = attempts.spawn(attempt::run(engine.clone(), claimed, permit));
                        if let Some(entry) = lock(&engine.in_flight).get_mut(&id) {
                            entry.abort = Some(abort);
                        }
                    }
                    wake_at = min_opt(claim.next_due_ms, reopen);
                }
                Err(error) => {
                    tracing::warn!(%error, "claiming due deliveries failed");
                    wake_at = Some(now.saturating_add(duration_millis(STORE_ERROR_BACKOFF)));
                }
            }
        }
        if busy && permits.available_permits() > 0 {
            // More is due right now and there is room: claim again at once.
            tokio::task::yield_now().await;
            continue;
        }
        let idle = engine.settings.idle_poll;
        let sleep = wake_at.map_or(idle, |at| {
            let ms = u64::try_from(at.saturating_sub(engine.now_ms()).max(0)).unwrap_or(0);
            Duration::from_millis(ms).min(idle)
        });
        tokio::select! {
            () = engine.wake.notified() => {}
            _ = engine.store.notified() => {}
            () = tokio::time::sleep(sleep) => {}
            () = engine.stopping.cancelled() => {}
        }
    }
    drain(&engine, attempts).await;
    engine.store.close().await?;
    Ok(())
}

/// Waits for attempts in flight, up to the shutdown timeout; abandons the rest and
/// releases their deliveries.
async fn drain(engine: &Engine, mut attempts: JoinSet<()>) {
    let deadline = tokio::time::sleep(engine.settings.shutdown_timeout);
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
    let abandoned: HashMap<_, _> = std::mem::take(&mut *lock(&engine.in_flight));
    let now = engine.now_ms();
    for (id, attempt) in abandoned {
        if engine.deletion(attempt.endpoint).is_some() {
            continue; // cancelled with its endpoint
        }
        if let Err(error) = engine
            .store
            .finish(id, attempt.lease, Finish::Release { at_ms: now })
            .await
        {
            tracing::warn!(delivery.id = %id, %error, "releasing an abandoned delivery failed");
        }
    }
}

fn overrides(engine: &Engine, now: i64) -> (HashMap<EndpointId, usize>, Option<i64>) {
    let (breakers, breaker_wake) = lock(&engine.breakers).overrides(now);
    let (rates, rate_wake) = engine.config.rates().overrides(now);
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
