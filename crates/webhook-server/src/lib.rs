//! The webhook dispatcher as an HTTP service.
//!
//! [`Api`] builds an axum [`Router`](axum::Router) over a [`Sender`](webhook_sender::Sender):
//! organizations and their API tokens, endpoints, publishing, messages and deliveries,
//! all under `/v1`, plus `/healthz`, `/readyz`, `/metrics` and `/openapi.json`. A Rust
//! platform mounts it inside its own axum app with its own [`Authorize`]; [`serve::run`]
//! is the ready service `webhook serve` starts.
//!
//! # The contract
//! - JSON in and out; every `/v1` route takes `Authorization: Bearer <token>`.
//!   [`Access::Admin`] reaches every organization; an organization token reaches its own
//!   only, and any path or id of another organization answers **404** (existence does
//!   not leak). Errors are `{"code", "message"}` ([`error`] lists them); no client input
//!   yields a 5xx.
//! - Lists take `?limit=` (1..=250, default 50) and `?cursor=` and answer
//!   `{"data": [...], "next_cursor": null | "..."}` ([`page`]). Times are RFC 3339 UTC.
//! - `POST …/messages` answers 202 once every delivery is durable; an `Idempotency-Key`
//!   header makes it safe to retry ([`idempotency`]).
//! - The OpenAPI document is generated from the handlers ([`Api::openapi`]).
//!
//! # Choices
//! - Organization API tokens (`whtok_…`, 256 random bits) are stored by the sender as
//!   SHA-256 hashes inside the organization's record, so they reach every node of the
//!   store and survive restarts; they are shown once when issued. The admin token comes
//!   from the environment and is compared in constant time.
//! - An organization token on an admin-only route of its own organization gets 403; on
//!   another organization's, 404.
//! - Each credential has a request budget (1,000/s by default, [`Api::rate_per_token`]);
//!   over it, 429 with `Retry-After`.
//! - Access logs (`target: webhook_server::access`) carry method, route template,
//!   status, latency and the credential's id, never a token, header value or body.
//!
//! # Example: mounting the API in a platform's own app
//! ```
//! use axum::Router;
//! use webhook_sender::Sender;
//! use webhook_sender::store::MemoryStore;
//! use webhook_server::{Api, TokenAuthorizer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sender = Sender::builder().store(MemoryStore::new()).build().await?;
//! let authorizer = TokenAuthorizer::new(sender.clone())
//!     .with_admin_token("an-admin-token-of-32-characters!")?;
//! let app: Router = Router::new()
//!     .route("/", axum::routing::get(|| async { "the platform's own page" }))
//!     .merge(Api::new(sender.clone(), authorizer).router());
//! # drop(app);
//! let paths = Api::openapi().paths.paths;
//! assert!(paths.contains_key("/v1/organizations/{org}/messages"));
//! sender.shutdown().await?;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

pub mod api;
pub mod auth;
mod console;
pub mod error;
mod extract;
pub mod idempotency;
mod keys;
mod openapi;
pub mod page;
mod routes;
pub mod serve;
mod wire;

pub use api::Api;
pub use auth::{Access, Authorize, Principal, TokenAuthorizer};
pub use error::{ApiError, ErrorBody};
