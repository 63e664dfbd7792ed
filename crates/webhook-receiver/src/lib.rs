//! The receiver SDK: tower middleware that verifies, deduplicates and hands webhooks to
//! your hyper or axum handler.
//!
//! Put a [`WebhookLayer`] in front of the handler. It answers everything that is not a
//! fresh, authentic delivery itself (wrong method, too large, malformed, bad signature,
//! stale timestamp, duplicate) and calls the handler only with a [`VerifiedWebhook`] in
//! the request extensions (axum: as an extractor). The three wire styles of the toolkit
//! are supported: event style (HMAC, seed 000), domain style (ECDSA P-256, seed 001) and
//! Standard Webhooks.
//!
//! | item | does |
//! |---|---|
//! | [`Verifier`] | one endpoint's scheme and keys (several during a rotation), tolerance, body limit, clock |
//! | [`WebhookLayer`] / [`Webhook`] | the tower middleware ([`middleware`]) |
//! | [`dedup`] | the [`DedupStore`](dedup::DedupStore) trait, [`MemoryStore`](dedup::MemoryStore), `RedisStore` |
//! | [`VerifiedWebhook`] | what the handler gets: typed message, dedup key, raw verified body |
//! | [`Rejection`] | why a request was turned away: status, code, short JSON body |
//! | [`QuickAck`] | answer 200 at once and work from a bounded queue ([`quick_ack`]) |
//! | [`typed`] | `WebhookEvent<D>` / `WebhookResource<R>`: the payload in your own types, decoded on demand |
//! | [`deadline`] | `BodyDeadlineLayer`: one deadline for a whole request body (408 after) |
//! | `server` | `serve`: hyper HTTP/1.1 with head/body/idle timeouts, a connection cap, accept back-off |
//! | [`telemetry`] | metric names: accepted, rejected by reason, duplicates, verify latency |
//!
//! # Cargo features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `axum` | no | `VerifiedWebhook` as an axum extractor, `IntoResponse` for [`Rejection`] |
//! | `redis` | no | `dedup::RedisStore`: `SET NX PX` through a reconnecting `ConnectionManager`, keys namespaced per endpoint |
//! | `server` | no | `server::serve` and `ServerConfig` (hyper, hyper-util) |
//!
//! Without features the crate depends on hyper's `http`/`http-body` types, tower and
//! tokio (for the quick-ack queue), and works with plain hyper 1 through
//! `hyper_util::service::TowerToHyperService`.
//!
//! # Example (axum)
//!
//! A complete receiver (feature `axum`):
//!
#![cfg_attr(feature = "axum", doc = "```no_run")]
#![cfg_attr(not(feature = "axum"), doc = "```text")]
//! use axum::{Router, routing::post};
//! use webhook_receiver::{Verifier, VerifiedWebhook, WebhookLayer};
//!
//! async fn handle(webhook: VerifiedWebhook) -> &'static str {
//!     // Signature checked, timestamp inside the window, not a duplicate.
//!     println!("{} {}", webhook.kind(), webhook.dedup_key());
//!     "ok"
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let secret = std::env::var("WEBHOOK_SECRET")?;
//!     let app = Router::new()
//!         .route("/webhook", post(handle))
//!         .layer(WebhookLayer::new(Verifier::event_secrets([secret])?));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! # Example (tower)
//!
//! A signed delivery goes through once; the same delivery again is acknowledged as a
//! duplicate without reaching the handler:
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::{Layer, ServiceExt};
//! use webhook_core::keys::HmacSecret;
//! use webhook_core::{Outgoing, SigningKeys};
//! use webhook_receiver::{Verifier, VerifiedWebhook, WebhookLayer};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // What the platform sends.
//! let signer = SigningKeys::Event(vec![HmacSecret::from_utf8("org-secret")?]);
//! let body = br#"{"id":"e1","type":"wallet.created","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{}}"#;
//! let signed = signer.sign(&Outgoing::new("e1", body), time::OffsetDateTime::now_utc())?;
//! let request = || {
//!     let mut builder = Request::post("/webhook");
//!     for (name, value) in &signed.headers {
//!         builder = builder.header(name, value);
//!     }
//!     builder.body(Full::new(Bytes::from(signed.body.clone()))).unwrap()
//! };
//!
//! // The receiver.
//! let calls = Arc::new(AtomicUsize::new(0));
//! let seen = Arc::clone(&calls);
//! let handler = tower::service_fn(move |request: Request<Full<Bytes>>| {
//!     let seen = Arc::clone(&seen);
//!     async move {
//!         let webhook = request.extensions().get::<VerifiedWebhook>().unwrap();
//!         assert_eq!(webhook.event().unwrap().idempotency_key, "k1");
//!         seen.fetch_add(1, Ordering::SeqCst);
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//!     }
//! });
//! let service = WebhookLayer::new(Verifier::event_secrets(["org-secret"])?).layer(handler);
//!
//! assert_eq!(service.clone().oneshot(request()).await?.status(), 200);
//! assert_eq!(service.clone().oneshot(request()).await?.status(), 200); // duplicate
//! assert_eq!(calls.load(Ordering::SeqCst), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Answers
//!
//! | situation | status | body `error` |
//! |---|---|---|
//! | not `POST` | 405 + `Allow: POST` | `method_not_allowed` |
//! | body or `Content-Length` over the limit (default 1 MiB) | 413 | `payload_too_large` |
//! | unreadable body, bad `Content-Length` | 400 | `body_unreadable`, `invalid_content_length` |
//! | body not complete within its deadline ([`deadline`], default 20 s) | 408 | `body_timeout` |
//! | missing, duplicated or malformed header; malformed timestamp or body | 400 | core's [`VerifyError::code`](webhook_core::VerifyError::code) |
//! | missing signature, no matching signature (also: unknown key) | 401 | `missing_signature`, `no_matching_signature` |
//! | timestamp outside the tolerance (default 300 s, both ways) | 401 | `timestamp_out_of_window` |
//! | domain style: resource `updatedAt` older than the maximum age (default 4 h) or beyond the tolerance ahead | 401 | `stale_resource` |
//! | domain style: resource `updatedAt` missing / not RFC 3339 | 400 | core's `malformed_body` / `malformed_updated_at` |
//! | handled before (within the dedup TTL) | 200 `{"status":"duplicate"}` | |
//! | same delivery being handled right now | 503 + `Retry-After` | `in_progress` |
//! | dedup store unavailable / full | 503 + `Retry-After` | `dedup_unavailable` / `dedup_full` |
//! | quick-ack queue full / closed | 503 + `Retry-After` | `queue_full` / `queue_closed` |
//! | typed extractor: payload does not fit the handler's type / wrong style | 422 / 500 | `unexpected_payload` / `wrong_style` |
//!
//! Error bodies are `{"error":"<code>","message":"<short text>"}` with fixed texts: never
//! a secret, a signature, a parser message or any part of the request body.
//! Oversized headers are refused by the HTTP server before the middleware runs (hyper
//! answers 431).
//!
//! # Serving: recommended settings
//!
//! The middleware cannot defend against clients that never finish a request: that is the
//! HTTP server's job. Serve with `server::serve` (feature `server`), whose
//! `ServerConfig::default()` is the recommended setting:
//!
//! | setting | default | bounds |
//! |---|---|---|
//! | head read timeout | 10 s | a half-sent (slowloris) head, a silent connection |
//! | body read timeout | 20 s, for the whole body | a body trickled byte by byte (answered 408) |
//! | idle keep-alive timeout | 5 s | connections kept open without requests |
//! | connection cap | 1024 | one client holding thousands of sockets; at the cap, idle connections close to make room and requests in progress are never cut |
//! | accept errors | back-off 10 ms → 1 s, one report a second | a spinning loop and a flood of log lines when file descriptors run out |
//!
//! Keep the cap below the process's `ulimit -n`. With your own hyper or axum server, set
//! at least hyper's `http1::Builder::header_read_timeout` (with a timer) and add
//! [`deadline::BodyDeadlineLayer`] outside the webhook layer; `axum::serve` alone has
//! neither.
//!
//! # Design choices
//!
//! - **Verification is core's.** [`Verifier`] wraps core's
//!   [`TrustedKeys`](webhook_core::TrustedKeys) with a tolerance, a body limit and a
//!   [`Clock`](webhook_core::clock::Clock); header parsing, the window check (first, before
//!   any other work) and constant-time signature comparison all live in `webhook-core`.
//!   Switching the window off is possible only through
//!   [`Verifier::dangerous`]`().skip_timestamp_check()`.
//! - **The body is read once**, through `http_body_util::Limited`, after an early 413 on
//!   a declared `Content-Length` (or body size hint) over the limit. The handler gets the
//!   same bytes as `Full<Bytes>` plus the [`VerifiedWebhook`] extension, so it never sees
//!   unverified bytes.
//! - **Rejections are responses** (tower-http's `validate_request` style): the service's
//!   error type is the handler's, and nothing in the request path panics on bad input.
//! - **The middleware checks an event's shape but does not decode it.** For the event
//!   style it checks the body with the same fields and types as core's `Event` (and
//!   `data` against everything a JSON `Value` would refuse), keeping only the
//!   idempotency key and the type; [`VerifiedWebhook::event`] decodes the event on first
//!   use and [`VerifiedWebhook::event_data`] decodes `data` straight from the body into
//!   the handler's type, so a handler pays for the decoding it asks for and no more.
//!   A body the check accepts always decodes, so the 400 for a malformed body stays in
//!   the middleware.
//! - **Dedup keys** are core's [`Verified::dedup_key`](webhook_core::Verified): the
//!   `idempotencyKey` (event style), `id@updatedAt` of the resource (domain style, seed
//!   001's advice), the `webhook-id` (Standard Webhooks).
//! - **Dedup is claim → done or released.** A new key is claimed (in progress, with a
//!   lease, default 300 s) before the handler runs. A 2xx answer marks it done for the
//!   TTL (default 1 h, never less than the verifier's replay horizon, which is how long a
//!   captured request can pass the freshness checks: twice the tolerance, or for the
//!   domain style the maximum resource age plus the tolerance). A non-2xx answer, a handler error, a panic or a dropped
//!   connection releases the key, so the sender's retry is processed: an event is handled
//!   exactly once when the handler succeeds and retried when it fails. Only the claim's
//!   holder can release it (claims carry a token), so a request whose lease ran out cannot
//!   delete a later claim.
//! - **A duplicate arriving while the first copy is still being handled gets 503 with
//!   `Retry-After: 5`**, not 409: the platform's senders retry 5xx but fail a delivery
//!   on any other 4xx (SPEC §4), and until the first copy finishes nobody knows whether
//!   it will succeed. Its retry then gets 200 (duplicate) or is handled anew. Only
//!   duplicates of done deliveries are counted in `webhook_receiver_duplicates_total`;
//!   in-progress ones are counted as rejected with reason `in_progress`.
//! - **The memory store makes room only with keys that cannot let a replay through.**
//!   Keys are 128-bit keyed hashes (40 bytes an entry, whatever the key). When it holds
//!   its capacity (default 1,000,000, about 90 MB) it removes expired keys and, oldest
//!   first, done keys past their *replay-safe age* (the verifier's replay horizon plus
//!   60 s: 660 s for the event style and Standard Webhooks, 4 h 6 min for the domain
//!   style), at most once a second; keys in progress and younger done keys are never
//!   dropped, and when nothing can go it answers 503 `dedup_full`. The default sustains
//!   1,515 distinct deliveries/s indefinitely for the event style and Standard Webhooks
//!   and 67/s for the domain style (see [`MemoryStore`](dedup::MemoryStore)); the
//!   `receiver-dedup` benchmark ran 3,000,000 deliveries at 1,000/s with no 503 and
//!   83 MiB of RSS. A dropped done key gives up only answering a *sender's* late retry
//!   as a duplicate.
//! - **Domain style: the resource's age closes the replay gap.** Seed 001 signs only the
//!   payload, so an envelope can be re-wrapped with a fresh timestamp. The verifier
//!   refuses a resource whose signed `updatedAt` is older than the maximum resource age
//!   (default 4 h, longer than seed 001's 11,720 s retry schedule) with 401
//!   `stale_resource`, and domain dedup keys are kept for at least that age plus the
//!   tolerance, so a replay is caught by dedup or by age. A hand-redriven delivery
//!   older than the maximum age is refused too: raise
//!   [`Verifier::max_resource_age`] for it, or republish with a fresh `updatedAt`.
//! - **The Redis store** keys are `{prefix}{endpoint}:{dedup key}` (prefix default
//!   `webhook-receiver:dedup:`; the endpoint's name is required by every constructor, so
//!   endpoints sharing a Redis never deduplicate each other): `SET key <claim token> NX
//!   PX <lease>` in a Lua script that also reports `done`/in progress, `SET key done PX
//!   <ttl>` on success, and a compare-and-delete script on release. Each call is bounded
//!   by a 2 s timeout; a failing Redis yields 503 `dedup_unavailable` (the sender
//!   retries), never a 2xx.
//! - **`DedupStore` is an open trait** (against STYLE's seal-by-default) because receivers
//!   may want their dedup keys in their own database, in the same transaction as their
//!   side effects. It is object safe (boxed futures) so the layer stays non-generic.
//! - **A request whose connection goes away while its handler runs is dropped** by the
//!   server (hyper also does this when a client half-closes its side, unless
//!   `half_close(true)` is set); the middleware's guard then releases the key in a spawned
//!   task, so the sender's retry is handled.
//! - **Success answers are 200**, also for duplicates and quick-ack, because seed 001 asks
//!   for "HTTP-200 (OK)" specifically.
//! - **Quick-ack is a handler service** ([`QuickAck`]) rather than a layer mode: its 200
//!   marks the key done at acknowledgement time through the ordinary path, and a full
//!   queue's 503 releases the key through the ordinary path too. An acknowledged event is
//!   lost if the process dies before the worker ran it (see [`quick_ack`]).
//! - **Metrics** go through the `metrics` facade ([`telemetry`] lists the names); tracing
//!   events are at debug/trace level and carry reason codes and dedup keys, never secrets,
//!   signatures or bodies. `Debug` of every type here omits secrets and payloads.

pub mod deadline;
pub mod dedup;
#[cfg(feature = "axum")]
mod extract;
pub mod middleware;
pub mod observer;
pub mod quick_ack;
#[cfg(feature = "server")]
pub mod server;
pub mod telemetry;
pub mod typed;

mod body;
mod rejection;
mod shape;
mod verified;
mod verifier;

pub use body::{BoxError, ResponseBody};
pub use middleware::{Webhook, WebhookLayer};
pub use observer::Observation;
pub use quick_ack::{AckQueue, QuickAck};
pub use rejection::Rejection;
pub use verified::VerifiedWebhook;
pub use verifier::{DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_RESOURCE_AGE, DangerousVerifier, Verifier};

/// The shared core (keys, styles, typed events and resources), re-exported.
pub use webhook_core;
