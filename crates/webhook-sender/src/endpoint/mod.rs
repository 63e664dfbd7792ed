//! Endpoints: where an organization's webhooks go, how they are signed, and how hard the
//! sender tries. [`Endpoints`](crate::Endpoints) manages them.
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::domain::Domain;
//! use webhook_core::event::EventType;
//! use webhook_core::keys::EcdsaSigningKey;
//! use webhook_sender::{EndpointConfig, RateLimit, RetryPolicy};
//!
//! // Event style, signed with the organization's secret.
//! let events = EndpointConfig::event("org-1", "https://hooks.example.com/planbok",
//!         [EventType::TransactionConfirmed, EventType::WalletCreated])
//!     .timeout(Duration::from_secs(5))
//!     .max_concurrency(4)
//!     .rate_limit(RateLimit::per_second(50))
//!     .header("X-Tenant", "acme");
//!
//! // Domain style, with its own ECDSA key pair and the seed 001 schedule (the default).
//! let (key, _pkcs8) = EcdsaSigningKey::generate()?;
//! let domains = EndpointConfig::domain("org-1", "https://hooks.example.com/palisade", key,
//!         [Domain::Transaction, Domain::Wallet])
//!     .retry(RetryPolicy::domain_default());
//! # drop((events, domains));
//! # Ok::<(), webhook_core::KeyError>(())
//! ```
//!
//! | module | holds |
//! |---|---|
//! | `config` | [`EndpointConfig`] (create), [`EndpointUpdate`] (partial change), [`RateLimit`] |
//! | `info` | [`EndpointInfo`], [`EndpointState`] |
//! | `spec` | the stored, versioned form and the live, parsed endpoint; validation |

mod config;
mod info;
mod spec;

pub(crate) use self::config::host_of;
pub use self::config::{
    DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT, EndpointConfig, EndpointUpdate, RateLimit,
};
pub use self::info::{EndpointInfo, EndpointState};
pub(crate) use self::spec::Endpoint;
