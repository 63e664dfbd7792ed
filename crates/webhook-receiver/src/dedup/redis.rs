//! The Redis dedup store: `SET key <claim> NX PX <lease>`, shared by every receiver process.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Begin, Claim, DedupError, DedupFuture, DedupStore, millis};

/// Prefix of every key unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "webhook-receiver:dedup:";

/// How long one Redis round trip may take before the store counts as unavailable,
/// unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The value of a key whose delivery was handled.
const DONE: &str = "done";

/// Claims a key, or tells who holds it. Atomic: the `GET` after a refused `SET NX` sees
/// the value that refused it (Redis also freezes time during a script, so it cannot
/// expire in between).
const BEGIN: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 'new'
end
if redis.call('GET', KEYS[1]) == 'done' then
  return 'done'
end
return 'pending'
";

/// Deletes a key only if the caller's claim still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Dedup keys in Redis, so that several receiver processes (or a restarted one) agree.
///
/// A key `"{prefix}{dedup key}"` holds a random claim token while its delivery is handled
/// (with the lease as its `PX` expiry) and `done` once handled (with the TTL as its
/// expiry). Claims use `SET NX PX`; releasing deletes the key only if it still holds the
/// releasing request's token (a Lua script), so a request whose lease ran out cannot
/// delete a later claim. Redis evicts expired keys by itself; the store adds nothing
/// else. Configure `maxmemory-policy noeviction` (the default) so that Redis does not
/// forget unexpired keys under memory pressure.
///
/// Every call is bounded by a timeout ([`DEFAULT_TIMEOUT`]); a Redis that does not answer
/// makes the middleware answer 503 with `Retry-After`, so the sender retries later.
///
/// ```no_run
/// use webhook_receiver::dedup::RedisStore;
/// use webhook_receiver::{Verifier, WebhookLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?.prefix("payments-endpoint:");
/// let layer = WebhookLayer::new(Verifier::event_secrets(["my-org-secret"])?).dedup_store(store);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    begin: redis::Script,
    release: redis::Script,
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`) through a reconnecting
    /// [`ConnectionManager`]: connection attempts and responses time out after 2 s, and a
    /// lost connection is retried twice in the background before the next call tries
    /// again (meanwhile calls fail fast, and the middleware answers 503).
    ///
    /// # Errors
    /// [`DedupError::unavailable`] when the URL is invalid or the server does not answer.
    pub async fn connect(url: &str) -> Result<Self, DedupError> {
        let client = redis::Client::open(url).map_err(DedupError::unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(DedupError::unavailable)?;
        Ok(Self::new(connection))
    }

    /// A store using an existing connection manager.
    #[must_use]
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            begin: redis::Script::new(BEGIN),
            release: redis::Script::new(RELEASE),
        }
    }

    /// The prefix of every key. Default is `webhook-receiver:dedup:`; give each endpoint
    /// its own prefix when several endpoints share one Redis database.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one call may take. Default is 2 s ([`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, DedupError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(DedupError::unavailable(error)),
            Err(elapsed) => Err(DedupError::unavailable(elapsed)),
        }
    }
}

impl DedupStore for RedisStore {
    fn begin<'a>(&'a self, key: &'a str, lease: Duration) -> DedupFuture<'a, Begin> {
        Box::pin(async move {
            let token = format!("claim:{}", uuid::Uuid::new_v4().simple());
            let mut connection = self.connection.clone();
            let answer: String = self
                .bounded(
                    self.begin
                        .key(self.key(key))
                        .arg(&token)
                        .arg(millis(lease))
                        .invoke_async(&mut connection),
                )
                .await?;
            Ok(match answer.as_str() {
                "new" => Begin::New(Claim::new(token)),
                "done" => Begin::Done,
                _ => Begin::InProgress,
            })
        })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        _claim: &'a Claim,
        ttl: Duration,
    ) -> DedupFuture<'a, ()> {
        Box::pin(async move {
            // Whoever holds the key now, the delivery was handled: remember that.
            let mut connection = self.connection.clone();
            let mut command = redis::cmd("SET");
            command
                .arg(self.key(key))
                .arg(DONE)
                .arg("PX")
                .arg(millis(ttl));
            self.bounded(command.query_async::<()>(&mut connection))
                .await
        })
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a Claim) -> DedupFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _deleted: i64 = self
                .bounded(
                    self.release
                        .key(self.key(key))
                        .arg(claim.token())
                        .invoke_async(&mut connection),
                )
                .await?;
            Ok(())
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection may carry a password in its configuration: leave it out.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
