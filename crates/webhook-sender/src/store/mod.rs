//! Where deliveries wait: one trait, [`Store`], for the queue, delivery state, endpoint
//! configuration and idempotency windows, with an in-memory, an embedded (redb) and (with
//! the `redis` feature) a Redis backend shared by several sender nodes.
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
//! # The queue model
//!
//! Every open (pending or in-flight) delivery belongs to a *chain*: the deliveries of one
//! endpoint with one resource key, in publish order (`seq`). Only the head of a chain can be
//! claimed, which is how per-resource ordering is kept. A claim *leases* a delivery: it
//! becomes in flight and its due time moves to the end of the lease, so a delivery whose
//! worker died is claimed again once the lease runs out. [`Store::finish`] ends the lease:
//! delivered and failed deliveries leave their chain (the next one becomes the head), a
//! retry keeps its place with a new due time.
//!
//! Claims are fair between endpoints: each endpoint with due work gets up to its free
//! concurrency (its cap minus its unexpired leases, lowered by the engine's overrides for
//! open circuit breakers and rate limits), so one endpoint's backlog of retries never holds
//! back another endpoint's first attempts.
//!
//! The Redis backend (`RedisStore`, feature `redis`) keeps the same contract in Redis:
//! chains as lists, scheduled heads and leases in per-endpoint sorted sets, leases as
//! pending entries of a `ready` stream's consumer group (one consumer per node), and one
//! Lua script each for enqueue, claim and finish, so that several nodes share the queue.

#[cfg(test)]
mod fixture;
mod memory;
mod queue;
mod redb;
#[cfg(feature = "redis")]
mod redis;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use self::memory::MemoryStore;
pub use self::redb::RedbStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
use crate::delivery::{AttemptRecord, Delivery};
use crate::ids::{DeliveryId, EndpointId, OrganizationId};
/// How to reach Redis (URL, key prefix, timeouts) and the connection made from it,
/// re-exported from `webhook-redis` for [`RedisStore`].
#[cfg(feature = "redis")]
pub use webhook_redis::{RedisConfig, RedisConnection};

/// The future every [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The queue and delivery state behind a [`Sender`](crate::Sender).
///
/// The trait is open so that backends can live in their own crates. Every method that
/// changes state returns only once the change is as durable as the backend promises: for
/// [`RedbStore`], written and fsynced; for the Redis store, acknowledged by Redis.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Everything configured: endpoints and organizations. Called once when a sender starts.
    fn load(&self) -> StoreFuture<'_, Snapshot>;

    /// Creates or replaces an endpoint; its cap and enabled flag apply to claims at once.
    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()>;

    /// Creates or replaces an organization.
    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()>;

    /// The start of the idempotency window for `(organization, kind, entity)` at `now`
    /// (Unix seconds), opening a new window when the current one has ended
    /// ([`webhook_core::idempotency::next_window_start`]). Shared by every sender on the store.
    fn claim_idempotency_window<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64>;

    /// Adds deliveries (all of one publish) atomically and durably. The store assigns `seq`.
    fn enqueue(&self, deliveries: Vec<NewDelivery>) -> StoreFuture<'_, ()>;

    /// Leases up to `request.limit` due chain heads, fairly across endpoints (see the module
    /// docs).
    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim>;

    /// Ends the lease `lease` of delivery `id`.
    ///
    /// # Errors
    /// [`StoreError::is_lease_lost`] when the delivery is not in flight under that lease.
    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()>;

    /// One delivery, open or finished.
    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>>;

    /// Puts a failed delivery back in its chain (at the end), due at `now_ms`, with a fresh
    /// retry round. Returns false when the delivery is not failed.
    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool>;

    /// Failed deliveries of `endpoint` that failed at or after `since_ms`, oldest first.
    fn failed_since(&self, endpoint: EndpointId, since_ms: i64)
    -> StoreFuture<'_, Vec<DeliveryId>>;

    /// Forgets delivered deliveries finished before `before_ms` (failed ones are kept for
    /// redrive). May stop after a bounded number; returns how many were removed, so the
    /// caller calls again while it is not 0.
    fn prune_delivered(&self, before_ms: i64) -> StoreFuture<'_, u64>;

    /// Flushes and closes. Later calls fail.
    fn close(&self) -> StoreFuture<'_, ()>;

    /// A number that changes whenever endpoints or organizations change in this store,
    /// whichever process changed them. Senders read it before each publish and on their
    /// idle poll, and [`load`](Store::load) again when it moved, so that several sender
    /// nodes on one shared store see each other's configuration. A store that only one
    /// process uses may keep the default, which never changes.
    fn config_version(&self) -> StoreFuture<'_, u64> {
        Box::pin(async { Ok(0) })
    }
}

/// Endpoints and organizations as stored.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every endpoint.
    pub endpoints: Vec<StoredEndpoint>,
    /// Every organization.
    pub organizations: Vec<StoredOrganization>,
}

/// An endpoint as the store sees it: what claims need, plus the engine's opaque
/// configuration (which holds secrets, so `Debug` leaves it out).
#[derive(Clone)]
pub struct StoredEndpoint {
    /// The endpoint.
    pub id: EndpointId,
    /// At most this many of its deliveries are in flight at once.
    pub max_concurrency: u32,
    /// Disabled endpoints keep their queue but nothing is claimed for them.
    pub enabled: bool,
    /// The engine's serialized configuration.
    pub data: Vec<u8>,
}

impl fmt::Debug for StoredEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEndpoint")
            .field("id", &self.id)
            .field("max_concurrency", &self.max_concurrency)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// An organization as stored; `data` holds secrets, so `Debug` leaves it out.
#[derive(Clone)]
pub struct StoredOrganization {
    /// The organization.
    pub id: OrganizationId,
    /// The engine's serialized configuration.
    pub data: Vec<u8>,
}

impl fmt::Debug for StoredOrganization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredOrganization")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What is sent: the same bytes for every attempt, signed afresh each time.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    /// The event JSON (event and standard styles) or the resource JSON (domain style).
    pub content: Vec<u8>,
    /// The domain, for domain style.
    pub domain: Option<String>,
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("content_len", &self.content.len())
            .field("domain", &self.domain)
            .finish()
    }
}

/// A delivery to add: its initial record (status pending, no attempts) and payload.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The record; the store sets `seq`.
    pub record: Delivery,
    /// What to send.
    pub payload: Payload,
}

/// A request to lease due deliveries.
#[derive(Debug, Clone)]
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

/// What a claim got.
#[derive(Debug, Default)]
pub struct Claim {
    /// The leased deliveries.
    pub deliveries: Vec<Claimed>,
    /// When the next delivery of an endpoint that could take work falls due, if any
    /// (now, when the limit cut the claim short).
    pub next_due_ms: Option<i64>,
    /// Open deliveries (pending and in flight) in the store.
    pub open: u64,
}

/// A leased delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its record, in flight; `lease` is the token to finish it with.
    pub record: Delivery,
    /// What to send.
    pub payload: Payload,
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

/// A store failure. Opaque, like the engine's error; backends build it with
/// [`StoreError::backend`].
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreErrorKind {
    Backend,
    LeaseLost,
    Closed,
    Corrupt,
}

impl StoreError {
    /// The backend failed (I/O, database, network).
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Backend,
            source: Some(source.into()),
        }
    }

    /// The delivery is not in flight under the given lease.
    #[must_use]
    pub fn lease_lost() -> Self {
        Self {
            kind: StoreErrorKind::LeaseLost,
            source: None,
        }
    }

    /// The store was closed.
    #[must_use]
    pub fn closed() -> Self {
        Self {
            kind: StoreErrorKind::Closed,
            source: None,
        }
    }

    /// A stored record could not be decoded.
    pub fn corrupt(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Corrupt,
            source: Some(source.into()),
        }
    }

    /// Whether a finish was refused because the lease is gone.
    #[must_use]
    pub fn is_lease_lost(&self) -> bool {
        self.kind == StoreErrorKind::LeaseLost
    }

    /// Whether the store was closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.kind == StoreErrorKind::Closed
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StoreErrorKind::Backend => "store backend failed",
            StoreErrorKind::LeaseLost => "delivery is not in flight under this lease",
            StoreErrorKind::Closed => "store is closed",
            StoreErrorKind::Corrupt => "stored record is corrupt",
        };
        match &self.source {
            Some(source) => write!(f, "{what}: {source}"),
            None => f.write_str(what),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The [`Store`] contract, run against every backend.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod contract {
    use std::time::Duration;

    use super::*;
    use crate::delivery::DeliveryStatus;
    use crate::store::fixture;

    fn new(endpoint: EndpointId, key: &str, due_at_ms: i64) -> NewDelivery {
        fixture::new_delivery(endpoint, key, due_at_ms, key.as_bytes(), None)
    }

    fn attempt(status: u16, at_ms: i64) -> AttemptRecord {
        fixture::response(status, at_ms, 0)
    }

    async fn claim(store: &dyn Store, now_ms: i64) -> Vec<Claimed> {
        let request = ClaimRequest {
            now_ms,
            limit: 10,
            lease: Duration::from_millis(100),
            overrides: HashMap::new(),
        };
        store.claim(request).await.unwrap().deliveries
    }

    async fn contract(store: &dyn Store) {
        let e = EndpointId::generate();
        let stored = StoredEndpoint {
            id: e,
            max_concurrency: 2,
            enabled: true,
            data: b"{}".to_vec(),
        };
        store.put_endpoint(stored).await.unwrap();
        let (a1, a2, b, later) = (
            new(e, "a", 0),
            new(e, "a", 0),
            new(e, "b", 0),
            new(e, "c", 50),
        );
        let ids = [a1.record.id, a2.record.id, b.record.id, later.record.id];
        store.enqueue(vec![a1, a2, b, later]).await.unwrap();

        // Heads only, due only, payloads attached.
        let first = claim(store, 0).await;
        let mut got: Vec<_> = first.iter().map(|c| c.record.id).collect();
        got.sort();
        let mut want = vec![ids[0], ids[2]];
        want.sort();
        assert_eq!(got, want);
        let a = first.iter().find(|c| c.record.id == ids[0]).unwrap();
        assert_eq!(a.payload.content, b"a");
        assert_eq!(a.record.status, DeliveryStatus::InFlight);
        // The cap (2) is full until a lease ends.
        assert!(claim(store, 60).await.is_empty());
        let wrong = store.finish(ids[0], a.record.lease + 1000, Finish::Release { at_ms: 0 });
        assert!(wrong.await.unwrap_err().is_lease_lost());

        // A retry keeps the head; delivered hands over to the next of the chain.
        store
            .finish(
                ids[0],
                a.record.lease,
                Finish::Retry {
                    attempt: attempt(503, 1),
                    at_ms: 70,
                },
            )
            .await
            .unwrap();
        let b_lease = first
            .iter()
            .find(|c| c.record.id == ids[2])
            .unwrap()
            .record
            .lease;
        store
            .finish(ids[2], b_lease, Finish::Failed(attempt(400, 2)))
            .await
            .unwrap();
        let next: Vec<_> = claim(store, 60).await.iter().map(|c| c.record.id).collect();
        assert_eq!(next, vec![ids[3]], "a waits for its retry at 70");
        let retry = claim(store, 70).await;
        assert_eq!(retry[0].record.id, ids[0]);
        assert_eq!(retry[0].record.round_attempts, 1);
        store
            .finish(
                ids[0],
                retry[0].record.lease,
                Finish::Delivered(attempt(200, 71)),
            )
            .await
            .unwrap();
        // The leased `later` (lease ended at 160) comes back; a2 is now a head.
        let mut after: Vec<_> = claim(store, 160)
            .await
            .iter()
            .map(|c| c.record.id)
            .collect();
        after.sort();
        let mut want = vec![ids[1], ids[3]];
        want.sort();
        assert_eq!(after, want);

        let delivered = store.delivery(ids[0]).await.unwrap().unwrap();
        assert_eq!(delivered.status, DeliveryStatus::Delivered);
        assert_eq!(delivered.attempts.len(), 2);
        assert_eq!(store.failed_since(e, 0).await.unwrap(), vec![ids[2]]);
        assert!(store.redrive(ids[2], 200).await.unwrap());
        assert!(store.failed_since(e, 0).await.unwrap().is_empty());
        assert_eq!(store.prune_delivered(72).await.unwrap(), 1);
        assert!(store.delivery(ids[0]).await.unwrap().is_none());

        // Disabled endpoints keep their queue but nothing is claimed.
        let disabled = StoredEndpoint {
            id: e,
            max_concurrency: 2,
            enabled: false,
            data: b"{}".to_vec(),
        };
        store.put_endpoint(disabled).await.unwrap();
        assert!(claim(store, 10_000).await.is_empty());
        assert_eq!(store.load().await.unwrap().endpoints.len(), 1);

        // Idempotency windows.
        let w = store
            .claim_idempotency_window("o", "t", "e", 100)
            .await
            .unwrap();
        assert_eq!(w, 100);
        assert_eq!(
            store
                .claim_idempotency_window("o", "t", "e", 159)
                .await
                .unwrap(),
            100
        );
        assert_eq!(
            store
                .claim_idempotency_window("o", "t", "e", 160)
                .await
                .unwrap(),
            160
        );
        assert_eq!(
            store
                .claim_idempotency_window("o", "t", "f", 160)
                .await
                .unwrap(),
            160
        );
    }

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        contract(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn redb_store_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        contract(&RedbStore::open(dir.path().join("contract.redb")).unwrap()).await;
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_store_keeps_the_contract() {
        let server = tokio::task::spawn_blocking(webhook_testkit::RedisServer::start)
            .await
            .unwrap();
        let config = webhook_redis::RedisConfig::new(server.url());
        contract(&RedisStore::connect(&config).await.unwrap()).await;
    }
}
