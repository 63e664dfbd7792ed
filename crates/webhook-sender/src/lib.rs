//! The platform side of the webhook toolkit: publish events, and the sender delivers them
//! durably — queued before `publish` returns, signed afresh for every attempt, retried by
//! policy, in order per resource, isolated per endpoint, never to a private address.
//!
//! # Example
//!
//! ```no_run
//! use serde_json::json;
//! use webhook_core::{event::EventType, keys::HmacSecret};
//! use webhook_sender::{AllowList, EndpointConfig, Publish, Sender, store::MemoryStore};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sender = Sender::builder()
//!     .store(MemoryStore::new()) // RedbStore::open(path)? in production
//!     .allow_private_networks(AllowList::loopback()) // the receiver runs on 127.0.0.1
//!     .build().await?;
//! sender.organizations().set_secret("org-1", HmacSecret::from_utf8("org-secret")?).await?;
//! sender.endpoints().create(EndpointConfig::event(
//!     "org-1", "http://127.0.0.1:8080/webhooks", [EventType::WalletCreated])).await?;
//! let receipt = sender.publish(Publish::event("org-1", EventType::WalletCreated, "w-1",
//!     json!({"id": "w-1", "owner": "jane@example.com"}))).await?; // durably queued here
//! println!("event {} → {} deliveries", receipt.event_id, receipt.deliveries.len());
//! sender.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! | module | holds |
//! |---|---|
//! | [`builder`] | [`Builder`]: every setting and its default |
//! | [`sender`] | [`Sender`]: publish, redrive, deliveries, outcomes, shutdown |
//! | [`endpoint`] / [`organization`] | endpoint configuration, organization secrets |
//! | [`publish`] | [`Publish`], [`PublishReceipt`] |
//! | [`retry`] | [`RetryPolicy`], response classification, `Retry-After` |
//! | [`circuit`] | per-endpoint circuit breakers |
//! | [`dispatch`] | the scheduler and the worker pool |
//! | [`http`] | the hyper client, SSRF guard ([`AllowList`]), resolvers, TLS |
//! | [`store`] | the [`Store`](store::Store) trait, [`MemoryStore`](store::MemoryStore), [`RedbStore`](store::RedbStore), `RedisStore` (feature `redis`) |
//! | [`delivery`] / [`outcome`] | delivery state with attempt history; delivered/failed outcomes |
//! | [`metrics`] | metric names |
//!
//! # Features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | *(none)* | | the in-memory and redb stores, HTTP/1.1, HTTP/2, HTTPS are always built |
//! | `redis` | no | `store::RedisStore`: one queue in Redis shared by several sender nodes, connected through `webhook-redis` |
//!
//! # Design choices
//!
//! - **Embedded store: redb.** Pure Rust (no C toolchain, unlike SQLite through
//!   `rusqlite`), one file, ACID transactions with an fsync per commit, and a typed
//!   key-value API that fits a queue's indexes directly (no SQL layer to keep in step).
//!   Durability is batched: one writer thread takes every operation queued at that moment
//!   (up to 512), applies them in one transaction and commits once; callers are answered
//!   only after the commit. `publish` therefore returns only when its deliveries are on
//!   disk, while many concurrent publishes and acknowledgements share one fsync.
//! - **One queue model for every backend.** Open deliveries form *chains* per (endpoint,
//!   resource key); only chain heads can be claimed, which keeps per-resource order. A
//!   claim *leases* a delivery by moving its due time to the lease's end, so a delivery
//!   whose process died is simply due again after the lease. Both the memory and the redb
//!   backend run the same in-memory index (`store::queue`); redb persists records and
//!   rebuilds the index when it opens. The Redis backend keeps the same chains in Redis
//!   (see below).
//! - **The trait is open** (not sealed), so that backends can live in their own crates;
//!   its contract is written on each method and checked by one test harness run against
//!   every backend (memory, redb, Redis).
//! - **Redis backend (feature `redis`): several nodes, one queue.** Every node runs the
//!   same engine on one Redis and key prefix (`{prefix}sender:`). State changes are Lua
//!   scripts (enqueue, claim, finish, redrive, window), each atomic, so nodes never race:
//!   chains are lists; pending chain heads wait in a per-endpoint *scheduled* sorted set;
//!   a claim walks endpoints by earliest due time (fairness and caps as above, caps
//!   counted over all nodes, each node's breaker and rate-limit overrides applied to its
//!   own claims), moves due heads into a `ready` stream and reads them at once into its
//!   own consumer of the group `senders`, so a pending stream entry is a lease and
//!   `XPENDING` shows who holds what; every lease gets a fresh token from a counter.
//!   Finish acknowledges and deletes the entry, records the attempt, and re-schedules or
//!   closes the delivery (the next of its chain becomes the head).
//! - **Dead nodes.** Leases end by the engine's clock, like every due time (the trait's
//!   `ClaimRequest::now_ms`), so the contract tests drive them with a manual clock; any
//!   node's claim takes an expired lease over with `XCLAIM` and a new token, and the old
//!   holder's finish fails with `is_lease_lost`. `XAUTOCLAIM` with a min-idle time of
//!   twice the lease (at least a minute, by Redis's clock) is the safety net for a dead
//!   node whose clock ran ahead. Node clocks should agree to well within a lease (NTP).
//! - **Idempotency windows across nodes**: one script with `next_window_start`'s rule
//!   (same start while `now - start < 60`, else now); keys expire after two windows.
//! - **Configuration across nodes**: stored in Redis with a version counter that every
//!   change bumps (`Store::config_version`). A node compares it before each publish and
//!   at every idle poll (default 1 s) and loads the configuration again when it moved, so
//!   an endpoint or a secret rotation made on one node reaches the others before their
//!   next publish. Until a node has loaded an endpoint it claims none of its deliveries
//!   (they are delivered by the nodes that know it, never held back). Caps and enabled
//!   flags are read from Redis at every claim.
//! - **"Acknowledged" with Redis** means applied in Redis's memory; it survives a Redis
//!   crash with `appendonly yes` and `appendfsync always` (tested by killing and
//!   restarting `redis-server`). While Redis is unreachable, calls fail within the
//!   connection's timeout: `publish` returns a store error, the scheduler backs off and
//!   resumes after the reconnection, and attempts whose results could not be recorded are
//!   made again after their lease (receivers deduplicate). Connection handling
//!   (timeouts, reconnection, key prefix, error classes) is shared with the receiver's
//!   Redis dedup store through the `webhook-redis` crate. Standalone Redis only: the
//!   scripts name keys at run time, which Redis Cluster forbids.
//! - **Ordering is best-effort, as seed 001 says.** Per endpoint, deliveries with the same
//!   resource key (entity id or resource `id`) go out in publish order and never two at
//!   once: the next one waits until the previous one is delivered or has failed for good.
//!   A failed delivery therefore unblocks the next; a redriven one goes to the end of its
//!   chain. Retries of one resource hold back only that resource.
//! - **Isolation.** Claims walk endpoints by their earliest due delivery and give each up
//!   to its free concurrency (cap minus unexpired leases; default cap 8), so a dead
//!   endpoint holds at most its cap of the worker slots (default 64) and never delays
//!   another endpoint's first attempts. Attempts are async tasks bounded by a semaphore,
//!   each under its endpoint's timeout (default 15 s).
//! - **Retries** follow SPEC §4: 2xx delivered; connection and DNS errors, timeouts, 408,
//!   429 and 5xx retried; other statuses (3xx included: redirects are not followed) fail at
//!   once; 410 fails and disables the endpoint. Domain style defaults to the seed 001
//!   schedule; event and Standard Webhooks styles to exponential backoff with full jitter
//!   (base 5 s, cap 1 h, 30 attempts: at most about 20 h). `Retry-After` on 429 and 503 is
//!   honoured (never sooner), capped by the policy's longest delay. Waits count from the
//!   end of the failed attempt. An address refused by the SSRF guard fails at once.
//! - **Circuit breaker** per endpoint (default 5 consecutive retryable failures, 30 s
//!   cool-down, then one probe): paused deliveries stay queued and no attempt is counted.
//!   Breakers are in memory, per process.
//! - **Idempotency windows** live in the store (claimed per publish), so a restarted
//!   sender derives the same keys; redb keeps them in memory and persists them lazily in
//!   the next batch.
//! - **Signing** uses `webhook_core::SigningKeys::sign` for every attempt with that
//!   attempt's time. During a rotation HMAC and Ed25519 sign with old and new secrets at
//!   once; the domain style, whose header holds one signature, keeps the old ECDSA key
//!   until the overlap ends.
//! - **SSRF guard at connect time.** The connector resolves the name itself, drops every
//!   forbidden address (IPv4, IPv6, and IPv4 embedded in IPv6), connects only to the rest
//!   and checks the connected peer again, so DNS rebinding cannot slip through. Endpoint
//!   creation also refuses hosts that only resolve to forbidden addresses.
//! - **Response bodies** are read up to 8 KiB and 1 KiB is kept in the attempt history;
//!   a longer body is dropped and its connection is not reused.
//! - **Time** comes from the `webhook_core` clock (timestamps, due times, windows);
//!   waiting uses tokio's timer. Tests scale schedules down rather than waiting.
//! - **Shutdown** stops claiming, waits (bounded) for attempts in flight, releases the
//!   leases of the rest, then closes the store. Dropping every handle instead behaves like
//!   a crash (leases run out), which is what the restart tests rely on.
//! - **Retention**: delivered deliveries are pruned after 7 days (configurable); failed
//!   ones are kept, with their payloads, until redriven.
//! - **Secrets at rest**: endpoint and organization secrets are stored in the store in
//!   plain form (base64); protect the file (or the Redis database: password or ACL,
//!   TLS). They never appear in `Debug` or logs.

pub mod builder;
pub mod circuit;
mod config;
pub mod delivery;
pub mod dispatch;
pub mod endpoint;
mod error;
pub mod history;
pub mod http;
mod ids;
pub mod message;
pub mod metrics;
pub mod organization;
pub mod outcome;
pub mod publish;
pub mod retention;
pub mod retry;
mod secret;
pub mod sender;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use builder::Builder;
pub use circuit::BreakerConfig;
pub use delivery::{AttemptErrorKind, AttemptRecord, AttemptResult, Delivery, DeliveryStatus};
pub use endpoint::{
    EndpointConfig, EndpointInfo, EndpointState, EndpointUpdate, Endpoints, RateLimit,
};
pub use error::Error;
pub use http::{
    AllowList, Cidr, ForbiddenAddress, InvalidCidr, Resolve, ResolveFuture, StaticResolver,
    SystemResolver,
};
pub use history::{Cursor, DeliveryFilter, MessageFilter, Page, PageRequest, StatusFilter, TimeRange};
pub use ids::{DeliveryId, EndpointId, EventId, OrganizationId};
pub use message::{Message, MessageWithDeliveries};
pub use organization::Organizations;
pub use outcome::{Outcome, OutcomeStatus};
pub use publish::{Publish, PublishReceipt};
pub use retention::Retention;
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use sender::Sender;
