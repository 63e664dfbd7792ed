//! The [`Sender`] handle: publish events, manage endpoints, watch outcomes, redrive
//! failures, shut down.
//!
//! ```no_run
//! # async fn demo(sender: webhook_sender::Sender) -> Result<(), webhook_sender::Error> {
//! use webhook_sender::OutcomeStatus;
//!
//! let mut outcomes = sender.outcomes();
//! while let Ok(outcome) = outcomes.recv().await {
//!     if outcome.status == OutcomeStatus::Failed {
//!         let delivery = sender.delivery(outcome.delivery).await?.expect("stored");
//!         eprintln!("{} failed after {} attempts", delivery.id, delivery.attempts.len());
//!         sender.redrive(outcome.delivery).await?; // try again from scratch
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_core::clock::Clock;
use webhook_core::redaction::Redactor;

use crate::builder::Builder;
use crate::circuit::Breakers;
use crate::delivery::{Delivery, to_millis};
use crate::dispatch::rate::RateLimits;
use crate::endpoint::{Endpoint, Endpoints, Registry};
use crate::error::Error;
use crate::http::HttpClient;
use crate::ids::{DeliveryId, EndpointId, OrganizationId};
use crate::organization::{Organization, Organizations};
use crate::outcome::Outcome;
use crate::store::{Snapshot, Store};

/// Engine settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) lease: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) idle_poll: Duration,
    pub(crate) retention: Duration,
}

/// Endpoints, organizations and rate limits built from a store snapshot.
pub(crate) struct Config {
    pub(crate) registry: Registry,
    pub(crate) organizations: HashMap<OrganizationId, Arc<Organization>>,
    pub(crate) rates: RateLimits,
}

impl Config {
    pub(crate) fn from_snapshot(snapshot: &Snapshot) -> Result<Self, Error> {
        let mut registry = Registry::default();
        let mut rates = RateLimits::default();
        for stored in &snapshot.endpoints {
            let endpoint = Endpoint::from_stored(stored)?;
            rates.configure(endpoint.spec.id, endpoint.spec.rate_limit);
            registry.insert(endpoint);
        }
        let mut organizations = HashMap::new();
        for stored in &snapshot.organizations {
            let organization = Organization::from_stored(stored)?;
            organizations.insert(organization.id.clone(), Arc::new(organization));
        }
        Ok(Self {
            registry,
            organizations,
            rates,
        })
    }
}

/// State shared by the handle, the scheduler and the attempts.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) client: HttpClient,
    pub(crate) redactor: Redactor,
    pub(crate) settings: Settings,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) organizations: RwLock<HashMap<OrganizationId, Arc<Organization>>>,
    /// The store's [`config_version`](Store::config_version) this configuration matches.
    pub(crate) config_version: AtomicU64,
    /// When the scheduler last compared config versions, Unix ms.
    pub(crate) last_config_sync_ms: AtomicI64,
    /// Serializes configuration changes (read-modify-write of endpoints and secrets).
    pub(crate) config_write: tokio::sync::Mutex<()>,
    pub(crate) breakers: Mutex<Breakers>,
    pub(crate) rates: Mutex<RateLimits>,
    /// Deliveries being attempted right now, with their lease tokens.
    pub(crate) in_flight: Mutex<HashMap<DeliveryId, u64>>,
    /// Wakes the scheduler: new work, a finished attempt, shutdown.
    pub(crate) wake: Notify,
    pub(crate) outcomes: broadcast::Sender<Outcome>,
    /// Set when shutdown starts: nothing new is accepted or claimed.
    pub(crate) stopping: CancellationToken,
    pub(crate) closed: AtomicBool,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Takes a lock even if another thread panicked while holding it; every critical section
/// here leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        to_millis(self.clock.now())
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.stopping.is_cancelled() || self.closed.load(Ordering::SeqCst) {
            Err(Error::shutdown())
        } else {
            Ok(())
        }
    }

    pub(crate) fn endpoint(&self, id: EndpointId) -> Option<Arc<Endpoint>> {
        self.registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
    }

    pub(crate) fn organization(&self, id: &OrganizationId) -> Option<Arc<Organization>> {
        self.organizations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Makes an endpoint live (after the store has it).
    pub(crate) fn put_endpoint(&self, endpoint: Endpoint) {
        lock(&self.rates).configure(endpoint.spec.id, endpoint.spec.rate_limit);
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(endpoint);
        self.wake.notify_one();
    }

    /// Loads endpoints and organizations again when the store's configuration version
    /// moved, that is when another sender node on the same store changed them.
    pub(crate) async fn sync_config(&self) -> Result<(), Error> {
        let current = self.config_version.load(Ordering::SeqCst);
        if self.store.config_version().await? == current {
            return Ok(());
        }
        let _guard = self.config_write.lock().await;
        // Read the version before loading: a change made while loading moves it past
        // this one, and the next sync loads again.
        let version = self.store.config_version().await?;
        if version == self.config_version.load(Ordering::SeqCst) {
            return Ok(());
        }
        let snapshot = self.store.load().await?;
        let Config {
            registry,
            organizations,
            rates,
        } = Config::from_snapshot(&snapshot)?;
        *self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = registry;
        *self
            .organizations
            .write()
            .unwrap_or_else(PoisonError::into_inner) = organizations;
        *lock(&self.rates) = rates;
        self.config_version.store(version, Ordering::SeqCst);
        tracing::debug!(version, "configuration reloaded from the store");
        self.wake.notify_one();
        Ok(())
    }

    pub(crate) fn put_organization(&self, organization: Organization) {
        self.organizations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(organization.id.clone(), Arc::new(organization));
    }
}

/// The webhook sender: a cheap-to-clone handle on a running engine.
///
/// Build one with [`Sender::builder`]. The engine runs on the tokio runtime it was built
/// on until [`Sender::shutdown`] is called. Dropping every handle without shutting down
/// stops the engine abruptly, as a crash would: attempts in flight are abandoned and their
/// deliveries are claimed again once their leases run out.
#[derive(Clone)]
pub struct Sender {
    pub(crate) shared: Arc<Shared>,
    handle: Arc<EngineHandle>,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("store", &self.shared.store)
            .finish_non_exhaustive()
    }
}

/// Owns the scheduler task; aborts it when the last handle goes.
struct EngineHandle {
    scheduler: Mutex<Option<JoinHandle<Result<(), Error>>>>,
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.scheduler).take() {
            task.abort();
        }
    }
}

impl Sender {
    /// A builder with every setting at its default.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let scheduler = tokio::spawn(crate::dispatch::run(shared.clone()));
        Self {
            shared,
            handle: Arc::new(EngineHandle {
                scheduler: Mutex::new(Some(scheduler)),
            }),
        }
    }

    /// Creates, updates and disables endpoints.
    #[must_use]
    pub fn endpoints(&self) -> Endpoints<'_> {
        Endpoints {
            shared: &self.shared,
        }
    }

    /// Sets and rotates organizations' webhook secrets.
    #[must_use]
    pub fn organizations(&self) -> Organizations<'_> {
        Organizations {
            shared: &self.shared,
        }
    }

    /// A stream of delivered and failed outcomes, from now on. A receiver that falls more
    /// than the channel's capacity behind loses the oldest outcomes (and is told so by
    /// `RecvError::Lagged`); the store keeps the truth either way.
    #[must_use]
    pub fn outcomes(&self) -> broadcast::Receiver<Outcome> {
        self.shared.outcomes.subscribe()
    }

    /// One delivery with its attempt history.
    ///
    /// # Errors
    /// [`Error::is_store`] when the store fails.
    pub async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, Error> {
        Ok(self.shared.store.delivery(id).await?)
    }

    /// Puts a failed delivery back in the queue with a fresh retry round (its history is
    /// kept). It goes after any deliveries about the same resource that are still queued.
    ///
    /// # Errors
    /// [`Error::is_not_found`] when the delivery does not exist or has not failed;
    /// [`Error::is_shutdown`], [`Error::is_store`].
    pub async fn redrive(&self, id: DeliveryId) -> Result<(), Error> {
        self.shared.check_open()?;
        if !self.shared.store.redrive(id, self.shared.now_ms()).await? {
            return Err(Error::not_found("failed delivery"));
        }
        metrics::counter!(crate::metrics::REDRIVEN).increment(1);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Redrives every delivery to `endpoint` that failed at or after `since`; returns them.
    ///
    /// # Errors
    /// [`Error::is_shutdown`], [`Error::is_store`].
    pub async fn redrive_endpoint_since(
        &self,
        endpoint: EndpointId,
        since: OffsetDateTime,
    ) -> Result<Vec<DeliveryId>, Error> {
        self.shared.check_open()?;
        let failed = self
            .shared
            .store
            .failed_since(endpoint, to_millis(since))
            .await?;
        let mut redriven = Vec::with_capacity(failed.len());
        for id in failed {
            if self.shared.store.redrive(id, self.shared.now_ms()).await? {
                redriven.push(id);
            }
        }
        metrics::counter!(crate::metrics::REDRIVEN)
            .increment(u64::try_from(redriven.len()).unwrap_or(u64::MAX));
        self.shared.wake.notify_one();
        Ok(redriven)
    }

    /// Stops gracefully: no new publishes or claims; attempts in flight get up to the
    /// shutdown timeout to finish, the rest are abandoned and their deliveries released
    /// (due again at once, no attempt counted); then the store is flushed and closed.
    /// Later calls on any clone fail with [`Error::is_shutdown`].
    ///
    /// # Errors
    /// [`Error::is_store`] when the store fails to close.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.shared.stopping.cancel();
        self.shared.wake.notify_one();
        let task = lock(&self.handle.scheduler).take();
        let result = match task {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(join) if join.is_cancelled() => Ok(()),
                Err(_) => Err(Error::internal("the scheduler task panicked")),
            },
            None => Ok(()),
        };
        self.shared.closed.store(true, Ordering::SeqCst);
        result
    }
}
