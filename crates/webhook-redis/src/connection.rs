//! [`RedisConnection`]: a reconnecting connection with its key prefix and call timeout.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::{Error, KeyPrefix};

/// A reconnecting Redis connection, its key prefix and how long one call may take.
/// Cheap to clone: clones share the connection.
///
/// Made by [`RedisConfig::connect`](crate::RedisConfig::connect), or from a connection
/// manager you built yourself with [`RedisConnection::new`].
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    keys: KeyPrefix,
    timeout: Duration,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The manager's client holds the URL (and its password): leave it out.
        f.debug_struct("RedisConnection")
            .field("keys", &self.keys)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Wraps a connection manager: keys under `keys`, every call bounded by `timeout`.
    #[must_use]
    pub fn new(manager: ConnectionManager, keys: KeyPrefix, timeout: Duration) -> Self {
        Self {
            manager,
            keys,
            timeout,
        }
    }

    /// A handle on the connection, to run commands with (`&mut` is what the `redis`
    /// crate asks for; clones are cheap and share the connection).
    #[must_use]
    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// The key prefix.
    #[must_use]
    pub fn keys(&self) -> &KeyPrefix {
        &self.keys
    }

    /// The same connection with keys under another prefix.
    #[must_use]
    pub fn with_keys(mut self, keys: KeyPrefix) -> Self {
        self.keys = keys;
        self
    }

    /// How long one call may take.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same connection with another call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `call` for at most the call timeout, waiting for a reconnection included, and
    /// classifies its failure.
    ///
    /// A call that timed out may still have been carried out by Redis: only its answer is
    /// unknown.
    ///
    /// # Errors
    /// The call's error, or [`Error::is_timeout`] when it took too long.
    pub async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        Ok(tokio::time::timeout(self.timeout, call).await??)
    }

    /// Asks Redis whether it is there (`PING`).
    ///
    /// # Errors
    /// As [`RedisConnection::bounded`].
    pub async fn ping(&self) -> Result<(), Error> {
        let mut manager = self.manager();
        self.bounded(redis::cmd("PING").query_async::<()>(&mut manager))
            .await
    }
}
