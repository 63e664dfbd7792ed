//! Shared Redis connection handling for the webhook crates: one configuration (URL, key
//! prefix, timeouts), one reconnecting connection, key names under the prefix, and one
//! error type that tells "Redis is unreachable, try later" from everything else.
//!
//! The sender's Redis store (`webhook-sender`, feature `redis`) and the receiver's Redis
//! dedup store (`webhook-receiver`, feature `redis`) both connect through this crate, so
//! they reconnect, time out and name their keys the same way.
//!
//! # Example
//!
//! ```
//! # let server = webhook_testkit::RedisServer::start(); // a throwaway redis-server
//! # let url = server.url();
//! use std::time::Duration;
//! use webhook_redis::{RedisConfig, redis};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = RedisConfig::new(url) // "redis://127.0.0.1:6379/"
//!     .prefix("staging:")
//!     .response_timeout(Duration::from_secs(1));
//! let connection = config.connect().await?;
//!
//! let key = connection.keys().key("greeting");
//! assert_eq!(key, "staging:greeting");
//! let mut manager = connection.manager();
//! // Every call is bounded: it fails after the timeout instead of hanging.
//! connection.bounded(redis::cmd("SET").arg(&key).arg("hello").query_async::<()>(&mut manager)).await?;
//! let got: String = connection.bounded(redis::cmd("GET").arg(&key).query_async(&mut manager)).await?;
//! assert_eq!(got, "hello");
//! # Ok::<(), webhook_redis::Error>(()) }).unwrap();
//! ```
//!
//! # Features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | *(none)* | | everything: the crate is small and always needs `redis` with tokio |
//!
//! The [`redis`] crate is re-exported, so users build commands with the same version.
//!
//! # Design choices
//!
//! - **One [`ConnectionManager`](redis::aio::ConnectionManager) per configuration.** It
//!   multiplexes every caller's commands over one connection and reconnects in the
//!   background when the connection breaks; a clone is a handle on the same connection.
//!   While it is reconnecting, calls fail fast (or after the connect timeout) instead of
//!   queueing, so callers see the outage as an error and can back off.
//! - **Every call is bounded twice.** The manager's response timeout bounds one command
//!   on a live connection; [`RedisConnection::bounded`] bounds the whole call (waiting
//!   for a reconnection included) by the configured response timeout. Nothing waits
//!   forever on a Redis that does not answer.
//! - **Errors are classified, not wrapped blindly**: [`Error::is_unavailable`] covers
//!   what a retry later can fix (connection refused or dropped, timeouts, a server still
//!   loading its data after a restart, a read-only replica after a failover), so callers
//!   turn it into back-off or a 503; everything else is a configuration or command error.
//! - **Keys live under a prefix** ([`KeyPrefix`]), so that several environments or
//!   endpoints share one Redis database without seeing each other's keys.
//! - **Secrets stay out of `Debug`**: a URL's password is masked when a configuration is
//!   printed, and errors never include the URL.
//! - **Standalone Redis (or a Sentinel-managed primary behind one address)**: the stores
//!   run Lua scripts over keys they name at run time, which Redis Cluster does not allow.

mod config;
mod connection;
mod error;
mod keys;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_PREFIX, DEFAULT_RECONNECT_MAX_DELAY,
    DEFAULT_RECONNECT_RETRIES, DEFAULT_RESPONSE_TIMEOUT, RedisConfig,
};
pub use connection::RedisConnection;
pub use error::Error;
pub use keys::KeyPrefix;
/// The `redis` crate this one is built on.
pub use redis;
