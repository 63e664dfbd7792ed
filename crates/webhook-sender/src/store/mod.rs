//! Where messages and deliveries are kept: the [`Store`] trait, split by concern, with an
//! in-memory, an embedded (redb), and two backends shared by several sender nodes: Redis
//! (feature `redis`) and Postgres (feature `postgres`, which also lets a publish join the
//! caller's own database transaction: `Sender::publish_in`).
//!
//! ```
//! use webhook_sender::store::{MemoryStore, RedbStore};
//!
//! let in_memory = MemoryStore::new(); // tests
//! let dir = tempfile::tempdir()?;
//! let durable = RedbStore::open(dir.path().join("webhooks.redb"))?; // the default in production
//! # drop((in_memory, durable));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A store is four concerns, one trait each, and [`Store`] is every type that has all
//! four:
//!
//! | trait | holds |
//! |---|---|
//! | [`ConfigStore`] | endpoints, organizations, the configuration version |
//! | [`WindowStore`] | idempotency windows |
//! | [`QueueStore`] | messages and deliveries entering, claims, leases, finishes, redrives, cancels |
//! | [`HistoryStore`] | records by id, index scans for the history queries, retention |
//!
//! The queue model (chains per endpoint and resource, leases, fairness) and which index
//! serves which query on each backend are described once, in ARCHITECTURE.md ("Queue
//! model", "History indexes"). Records cross the trait as [`DeliveryRecord`] and
//! [`MessageRecord`], which backends keep in their versioned byte form; secondary indexes
//! are computed by [`index`] so that backends only store and scan them. A backend in
//! another crate checks itself with the public test suite (`webhook_sender::testing`,
//! feature `testing`).

mod error;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod fixture;
pub mod index;
mod members;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod queue;
pub mod record;
mod redb;
#[cfg(feature = "redis")]
mod redis;
mod tables;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use self::error::StoreError;
pub use self::index::{IndexEntry, Scan};
pub use self::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use self::postgres::{DEFAULT_SCHEMA, PostgresConfig, PostgresStore};
pub use self::record::{DeliveryRecord, MessageRecord, Payload};
pub use self::redb::RedbStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
use crate::delivery::AttemptRecord;
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};
/// How to reach Redis (URL, key prefix, timeouts) and the connection made from it,
/// re-exported from `webhook-redis` for [`RedisStore`].
#[cfg(feature = "redis")]
pub use webhook_redis::{RedisConfig, RedisConnection};

/// The future every store method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Everything a [`Sender`](crate::Sender) needs of a store. Implemented for every type
/// that implements the four concerns.
///
/// Every method that changes state returns only once the change is as durable as the
/// backend promises: for [`RedbStore`], written and fsynced; for the Redis store,
/// acknowledged by Redis; for the Postgres store, committed with `synchronous_commit` on.
pub trait Store: ConfigStore + WindowStore + QueueStore + HistoryStore {}

impl<T: ConfigStore + WindowStore + QueueStore + HistoryStore> Store for T {}

/// Endpoints and organizations.
pub trait ConfigStore: Send + Sync + fmt::Debug + 'static {
    /// Everything configured. Called when a sender starts and when the configuration
    /// version moved.
    fn load(&self) -> StoreFuture<'_, Snapshot>;

    /// Creates or replaces an endpoint; its cap and claimable flag apply to claims at once.
    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()>;

    /// Removes an endpoint's configuration: nothing of it is claimed from now on. Its open
    /// deliveries are cancelled with [`QueueStore::cancel_open`]; its history stays.
    fn remove_endpoint(&self, id: EndpointId) -> StoreFuture<'_, ()>;

    /// Creates or replaces an organization.
    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()>;

    /// A number that changes whenever endpoints or organizations change in this store,
    /// whichever process changed them. Senders read it before each publish and on their
    /// idle poll, and [`load`](ConfigStore::load) again when it moved, so several sender
    /// nodes on one store see each other's configuration. A store only one process can
    /// open may return a constant.
    fn config_version(&self) -> StoreFuture<'_, u64>;
}

/// Idempotency windows (SPEC §1), shared by every sender on the store.
pub trait WindowStore: Send + Sync + fmt::Debug + 'static {
    /// The start of the idempotency window for `(organization, kind, entity)` at `now`
    /// (Unix seconds), opening a new window when the current one has ended
    /// ([`webhook_core::idempotency::next_window_start`]).
    fn claim_idempotency_window<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64>;

    /// As [`claim_idempotency_window`](WindowStore::claim_idempotency_window), also
    /// returning the store's [`config_version`](ConfigStore::config_version) when the
    /// backend reads both in one round trip (a publish needs both). Default is the window
    /// alone and `None`: the caller reads the version itself.
    fn claim_idempotency_window_and_config_version<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, (i64, Option<u64>)> {
        let window = self.claim_idempotency_window(organization, kind, entity, now);
        Box::pin(async move { Ok((window.await?, None)) })
    }
}

/// The delivery queue (see ARCHITECTURE.md, "Queue model").
pub trait QueueStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a message and its deliveries atomically and durably; the store assigns each
    /// delivery's `seq`. When the organization already has a message with this event id,
    /// nothing is stored and that message is returned.
    fn enqueue(
        &self,
        message: MessageRecord,
        deliveries: Vec<DeliveryRecord>,
    ) -> StoreFuture<'_, Enqueued>;

    /// Leases up to `request.limit` due chain heads, fairly across endpoints.
    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim>;

    /// Ends the lease `lease` of delivery `id`.
    ///
    /// # Errors
    /// [`StoreError::is_lease_lost`] when the delivery is not in flight under that lease.
    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()>;

    /// Puts a failed delivery back in its chain (at the end), due at `now_ms`, with a fresh
    /// retry round. Returns false when the delivery is not failed.
    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool>;

    /// Cancels up to `limit` open deliveries of `endpoint` (pending or in flight: their
    /// leases end, a later finish is refused) with `reason`, finished at `now_ms`.
    /// Returns how many; the caller calls again while it is not 0.
    fn cancel_open(
        &self,
        endpoint: EndpointId,
        reason: String,
        now_ms: i64,
        limit: usize,
    ) -> StoreFuture<'_, u64>;

    /// Flushes and closes. Later calls fail.
    fn close(&self) -> StoreFuture<'_, ()>;

    /// Resolves when work may have been queued or become due by another process (the
    /// Postgres store's `LISTEN`), so the sender claims at once instead of at its next
    /// poll. The sender still polls: a backend may miss a wake-up. Default: never.
    fn notified(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

/// [`QueueStore::cancel_open`] for a shared store, whose open deliveries are read before
/// they are cancelled: `cancel_some` reads up to `limit` and cancels those still open,
/// `None` when there were none. Tried again (three times at most) while every one read
/// finished meanwhile, so that 0 means none is left.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) async fn cancel_in_rounds<F, Fut>(
    limit: usize,
    mut cancel_some: F,
) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<u64>, StoreError>>,
{
    if limit == 0 {
        return Ok(0);
    }
    for _ in 0..3 {
        match cancel_some().await? {
            None => return Ok(0),
            Some(0) => {} // every one read finished meanwhile: read again
            Some(cancelled) => return Ok(cancelled),
        }
    }
    Ok(0)
}

/// Records by id, index scans and retention (see ARCHITECTURE.md, "History indexes").
pub trait HistoryStore: Send + Sync + fmt::Debug + 'static {
    /// One delivery, open or finished.
    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryRecord>>;

    /// The deliveries of `ids` that exist, in the order given.
    fn deliveries(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, Vec<DeliveryRecord>>;

    /// The organization's message with this event id.
    fn message(
        &self,
        organization: OrganizationId,
        event: EventId,
    ) -> StoreFuture<'_, Option<MessageRecord>>;

    /// The organization's messages of `events` that exist, in the order given.
    fn messages(
        &self,
        organization: OrganizationId,
        events: Vec<EventId>,
    ) -> StoreFuture<'_, Vec<MessageRecord>>;

    /// Members of an index set ([`index`]), in byte order within the scan's bounds.
    fn scan(&self, scan: Scan) -> StoreFuture<'_, Vec<Vec<u8>>>;

    /// Retention: removes these deliveries if they are finished (open ones are skipped),
    /// with their index entries; a message goes with its last delivery. Returns how many
    /// were removed.
    fn remove_finished(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, u64>;

    /// Retention: removes these messages if they have no deliveries left.
    fn remove_unrouted(&self, messages: Vec<(OrganizationId, EventId)>) -> StoreFuture<'_, u64>;

    /// When retention last completed a run, Unix ms (shared by every sender on the store).
    fn last_pruned(&self) -> StoreFuture<'_, Option<i64>>;

    /// Records that retention completed a run at `at_ms`.
    fn set_last_pruned(&self, at_ms: i64) -> StoreFuture<'_, ()>;
}

/// What [`QueueStore::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The message and its deliveries were stored.
    Stored,
    /// The organization already had a message with this event id; it is returned and
    /// nothing was stored.
    Existing(MessageRecord),
}

/// Endpoints and organizations as stored.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every endpoint.
    pub endpoints: Vec<StoredEndpoint>,
    /// Every organization.
    pub organizations: Vec<StoredOrganization>,
}

impl Snapshot {
    /// A snapshot of these endpoints and organizations.
    #[must_use]
    pub fn new(endpoints: Vec<StoredEndpoint>, organizations: Vec<StoredOrganization>) -> Self {
        Self {
            endpoints,
            organizations,
        }
    }
}

/// An endpoint as the store sees it: what claims need, plus the engine's opaque,
/// versioned configuration (which holds secrets, so `Debug` leaves it out).
#[derive(Clone)]
#[non_exhaustive]
pub struct StoredEndpoint {
    /// The endpoint.
    pub id: EndpointId,
    /// At most this many of its deliveries are in flight at once.
    pub max_concurrency: u32,
    /// Whether its deliveries are claimed; a paused or disabled endpoint keeps its queue.
    pub claimable: bool,
    /// The engine's serialized configuration.
    pub data: Vec<u8>,
}

impl StoredEndpoint {
    /// An endpoint record.
    #[must_use]
    pub fn new(id: EndpointId, max_concurrency: u32, claimable: bool, data: Vec<u8>) -> Self {
        Self {
            id,
            max_concurrency,
            claimable,
            data,
        }
    }
}

impl fmt::Debug for StoredEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEndpoint")
            .field("id", &self.id)
            .field("max_concurrency", &self.max_concurrency)
            .field("claimable", &self.claimable)
            .finish_non_exhaustive()
    }
}

/// An organization as stored; `data` holds secrets, so `Debug` leaves it out.
#[derive(Clone)]
#[non_exhaustive]
pub struct StoredOrganization {
    /// The organization.
    pub id: OrganizationId,
    /// The engine's serialized configuration.
    pub data: Vec<u8>,
}

impl StoredOrganization {
    /// An organization record.
    #[must_use]
    pub fn new(id: OrganizationId, data: Vec<u8>) -> Self {
        Self { id, data }
    }
}

impl fmt::Debug for StoredOrganization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredOrganization")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A request to lease due deliveries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClaimRequest {
    /// Now, Unix ms: deliveries due at or before it are claimable.
    pub now_ms: i64,
    /// At most this many in total.
    pub limit: usize,
    /// How long a lease lasts.
    pub lease: Duration,
    /// Lower concurrency caps for some endpoints (0 pauses one): open circuit breakers,
    /// half-open probes and rate limits.
    pub overrides: HashMap<EndpointId, usize>,
}

impl ClaimRequest {
    /// A claim of at most `limit` deliveries due at `now_ms`, leased for `lease`.
    #[must_use]
    pub fn new(now_ms: i64, limit: usize, lease: Duration) -> Self {
        Self {
            now_ms,
            limit,
            lease,
            overrides: HashMap::new(),
        }
    }

    /// With lower caps for some endpoints.
    #[must_use]
    pub fn overrides(mut self, overrides: HashMap<EndpointId, usize>) -> Self {
        self.overrides = overrides;
        self
    }
}

/// What a claim got.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Claim {
    /// The leased deliveries.
    pub deliveries: Vec<Claimed>,
    /// When the next delivery of an endpoint that could take work falls due, if any
    /// (now, when the limit cut the claim short).
    pub next_due_ms: Option<i64>,
    /// Open deliveries (pending and in flight) in the store.
    pub open: u64,
}

impl Claim {
    /// A claim result.
    #[must_use]
    pub fn new(deliveries: Vec<Claimed>, next_due_ms: Option<i64>, open: u64) -> Self {
        Self {
            deliveries,
            next_due_ms,
            open,
        }
    }
}

/// A leased delivery.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Claimed {
    /// Its record, in flight; `lease` is the token to finish it with.
    pub record: DeliveryRecord,
    /// What to send (its message's payload).
    pub payload: Payload,
}

impl Claimed {
    /// A leased record and its payload.
    #[must_use]
    pub fn new(record: DeliveryRecord, payload: Payload) -> Self {
        Self { record, payload }
    }
}

/// How a lease ends.
#[derive(Debug, Clone)]
pub enum Finish {
    /// Delivered by this attempt.
    Delivered(AttemptRecord),
    /// Failed for good after this attempt.
    Failed(AttemptRecord),
    /// This attempt failed; try again at `at_ms`.
    Retry {
        /// The attempt.
        attempt: AttemptRecord,
        /// When the next attempt is due, Unix ms.
        at_ms: i64,
    },
    /// No attempt was made (shutdown, paused endpoint): due again at `at_ms`.
    Release {
        /// When it is due again, Unix ms.
        at_ms: i64,
    },
}

/// The public suite ([`crate::testing`]) on every backend of this crate.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod suite {
    #[tokio::test]
    async fn memory_store_passes_the_suite() {
        crate::testing::run(|_| async { super::MemoryStore::new() }).await;
    }

    #[tokio::test]
    async fn redb_store_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::run(|case| {
            let path = dir.path().join(format!("{case}.redb"));
            async move { super::RedbStore::open(path).unwrap() }
        })
        .await;
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_store_passes_the_suite() {
        let server = tokio::task::spawn_blocking(webhook_testkit::RedisServer::start)
            .await
            .unwrap();
        let url = server.url();
        crate::testing::run(|case| {
            let config = webhook_redis::RedisConfig::new(url.clone()).prefix(format!("{case}:"));
            async move { super::RedisStore::connect(&config).await.unwrap() }
        })
        .await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_store_passes_the_suite() {
        let server = tokio::task::spawn_blocking(webhook_testkit::PostgresServer::start)
            .await
            .unwrap();
        let url = server.url();
        let mut cases = 0;
        crate::testing::run(|_| {
            cases += 1;
            // One schema per case: another environment on the same database.
            let config = super::PostgresConfig::new(url.clone()).schema(format!("case_{cases}"));
            async move { super::PostgresStore::connect(&config).await.unwrap() }
        })
        .await;
    }
}
