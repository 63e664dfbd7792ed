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
//! | [`sender`] | [`Sender`]: publish, queries, redrive, outcomes, shutdown |
//! | [`endpoint`] / [`organization`] | endpoint configuration and lifecycle, organization secrets; managed through [`Endpoints`] and [`Organizations`] |
//! | [`history`] / [`message`] | listings, filters and pages; the [`Message`] view |
//! | [`retention`] | [`Retention`]: how long finished records are kept |
//! | [`publish`] | [`Publish`], [`PublishReceipt`] |
//! | [`retry`] | [`RetryPolicy`], response classification, `Retry-After` |
//! | [`circuit`] | per-endpoint circuit breakers |
//! | [`dispatch`] | the scheduler and the worker pool |
//! | [`http`] | the hyper client, SSRF guard ([`AllowList`]), resolvers, TLS |
//! | [`store`] | the [`Store`](store::Store) traits, records and indexes, [`MemoryStore`](store::MemoryStore), [`RedbStore`](store::RedbStore), `RedisStore` (feature `redis`), `PostgresStore` (feature `postgres`) |
//! | [`delivery`] / [`outcome`] | delivery state with attempt history; delivered/failed outcomes |
//! | [`metrics`] | metric names |
//!
//! # Features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | *(none)* | | the in-memory and redb stores, HTTP/1.1, HTTP/2, HTTPS are always built |
//! | `redis` | no | `store::RedisStore`: one queue in Redis shared by several sender nodes, connected through `webhook-redis` |
//! | `postgres` | no | `store::PostgresStore`: one queue in Postgres (sqlx) shared by several sender nodes, and `Sender::publish_in`: publishing inside the caller's own sqlx transaction |
//! | `testing` | no | `testing`: the public store test suite, for backends in other crates |
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
//! - **One queue model for every backend**, described once in ARCHITECTURE.md ("Queue
//!   model"): chains per (endpoint, resource key), only heads claimable, claims lease. The
//!   memory and redb backends share the in-memory index (`store::queue`) and the record
//!   keeping (`store::tables`); Redis keeps the same chains in Redis with Lua scripts
//!   ([`RedisStore`](store::RedisStore), feature `redis`), and Postgres in tables, with
//!   `FOR UPDATE SKIP LOCKED` claims and the same record keeping (`PostgresStore`,
//!   feature `postgres`).
//! - **The store is four traits** ([`store`]): configuration, idempotency windows, the
//!   queue, history. Records cross them as [`DeliveryRecord`](store::DeliveryRecord) and
//!   [`MessageRecord`](store::MessageRecord) in a versioned byte form; the public views
//!   ([`Delivery`], [`Message`]) are separate types. The traits are open, so a backend
//!   can live in another crate; it checks itself with the public suite
//!   (`webhook_sender::testing`, feature `testing`) that memory, redb, Redis and Postgres
//!   pass.
//! - **Messages are stored once** per publish, with their deliveries pointing at them; an
//!   event id is unique within an organization, and publishing it again returns the first
//!   receipt without queueing anything.
//! - **History** ([`history`]): every listing is scoped to one organization and served by
//!   one index range per page (ARCHITECTURE.md, "History indexes").
//! - **Endpoint lifecycle** ([`Endpoints`]): pause keeps queueing and sends nothing until
//!   resume; a `410 Gone` disables (new events are not queued); delete aborts attempts in
//!   flight, cancels open deliveries and keeps their history; updates are partial.
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
//! - **Retention** ([`retention`]): delivered deliveries go after 7 days, failed and
//!   cancelled ones after 30, with their attempts and their messages' payloads; in
//!   bounded batches, scheduled from a last-run time kept in the store.
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
mod manage;
pub mod message;
pub mod metrics;
pub mod organization;
pub mod outcome;
pub mod publish;
mod rate;
pub mod retention;
pub mod retry;
mod secret;
pub mod sender;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use builder::Builder;
pub use circuit::{BreakerConfig, BreakerState};
pub use delivery::{AttemptErrorKind, AttemptRecord, AttemptResult, Delivery, DeliveryStatus};
pub use endpoint::{EndpointConfig, EndpointInfo, EndpointState, EndpointUpdate, RateLimit};
pub use error::Error;
pub use history::{
    Cursor, DeliveryFilter, MessageFilter, Page, PageRequest, StatusFilter, TimeRange,
};
pub use http::{
    AllowList, Cidr, ForbiddenAddress, InvalidCidr, Resolve, ResolveFuture, StaticResolver,
    SystemResolver,
};
pub use ids::{DeliveryId, EndpointId, EventId, OrganizationId};
pub use manage::{Endpoints, Organizations};
pub use message::{Message, MessageWithDeliveries};
pub use organization::{IssuedToken, OrganizationInfo, TokenInfo};
pub use outcome::{Outcome, OutcomeStatus};
pub use publish::{Publish, PublishReceipt, QueuedDelivery};
pub use retention::Retention;
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use sender::Sender;
