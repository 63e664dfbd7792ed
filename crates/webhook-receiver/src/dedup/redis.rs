//! The Redis dedup store: `SET key <claim> NX PX <lease>`, shared by every receiver process.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;
use webhook_redis::{KeyPrefix, RedisConfig, RedisConnection};

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
/// **Namespaced per endpoint.** Every constructor takes the endpoint's name, and keys are
/// `"{prefix}{endpoint}:{dedup key}"`, so two endpoints sharing one Redis (several
/// receivers of one company, or one platform process receiving for many endpoints) never
/// answer each other's deliveries as duplicates. Two different endpoints can meet the
/// same dedup key: Standard Webhooks ids and domain-style `id@updatedAt` keys are only
/// unique per sender, and two organizations' event-style idempotency keys may collide.
/// Give every endpoint its own name and keep it stable (renaming it forgets its keys);
/// the processes serving one endpoint use the same name. In the name, `%` and `:` are
/// written `%25` and `%3A`, so that no name and key can spell another's.
///
/// A key holds a random claim token while its delivery is handled
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
/// let store = RedisStore::connect("redis://127.0.0.1:6379/", "payments").await?;
/// // keys "webhook-receiver:dedup:payments:…"
/// let layer = WebhookLayer::new(Verifier::event_secrets(["my-org-secret"])?).dedup_store(store);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    redis: RedisConnection,
    begin: redis::Script,
    release: redis::Script,
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`) through the shared reconnecting
    /// connection of `webhook-redis`: connection attempts and responses time out after
    /// 2 s, and a lost connection is retried twice in the background before the next
    /// call tries again (meanwhile calls fail fast, and the middleware answers 503).
    /// Keys start with [`DEFAULT_PREFIX`] and the `endpoint`'s name.
    ///
    /// # Errors
    /// [`DedupError::unavailable`] when the URL is invalid or the server does not answer.
    pub async fn connect(url: &str, endpoint: &str) -> Result<Self, DedupError> {
        let config = RedisConfig::new(url)
            .connect_timeout(DEFAULT_TIMEOUT)
            .response_timeout(DEFAULT_TIMEOUT);
        let redis = config.connect().await.map_err(DedupError::unavailable)?;
        let keys = KeyPrefix::new(DEFAULT_PREFIX).child(&endpoint_segment(endpoint));
        Ok(Self::with_redis(redis.with_keys(keys)))
    }

    /// A store for `endpoint` on a connection shared with the rest of the program (for
    /// instance the sender's, when one process runs both): keys are
    /// `{prefix}dedup:{endpoint}:{key}` under the connection's prefix, and every call is
    /// bounded by the connection's timeout.
    ///
    /// ```no_run
    /// use webhook_receiver::dedup::RedisStore;
    /// use webhook_redis::RedisConfig;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = RedisConfig::new("redis://127.0.0.1:6379/").prefix("prod:").connect().await?;
    /// let store = RedisStore::for_endpoint(&redis, "payments"); // keys "prod:dedup:payments:…"
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn for_endpoint(redis: &RedisConnection, endpoint: &str) -> Self {
        let keys = redis
            .keys()
            .child("dedup:")
            .child(&endpoint_segment(endpoint));
        Self::with_redis(redis.clone().with_keys(keys))
    }

    /// A store on a connection that belongs to **one endpoint only**: keys are
    /// `{prefix}dedup:{key}`, so the connection's prefix is the endpoint's namespace.
    /// Prefer [`RedisStore::for_endpoint`]; with a connection shared by several endpoints
    /// this store would deduplicate them against each other.
    #[must_use]
    pub fn from_connection(redis: &RedisConnection) -> Self {
        let keys = redis.keys().child("dedup:");
        Self::with_redis(redis.clone().with_keys(keys))
    }

    /// A store for `endpoint` using an existing connection manager; keys start with
    /// [`DEFAULT_PREFIX`] and the endpoint's name, calls are bounded by
    /// [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn new(connection: ConnectionManager, endpoint: &str) -> Self {
        Self::with_redis(RedisConnection::new(
            connection,
            KeyPrefix::new(DEFAULT_PREFIX).child(&endpoint_segment(endpoint)),
            DEFAULT_TIMEOUT,
        ))
    }

    fn with_redis(redis: RedisConnection) -> Self {
        Self {
            redis,
            begin: redis::Script::new(BEGIN),
            release: redis::Script::new(RELEASE),
        }
    }

    /// Replaces the whole prefix of every key, endpoint name included. Default is
    /// `webhook-receiver:dedup:{endpoint}:` (or the connection's prefix followed by
    /// `dedup:{endpoint}:`, see [`RedisStore::for_endpoint`]); keep one prefix per
    /// endpoint.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis = self.redis.with_keys(KeyPrefix::new(prefix));
        self
    }

    /// How long one call may take. Default is 2 s ([`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.redis = self.redis.with_timeout(timeout);
        self
    }

    fn key(&self, key: &str) -> String {
        self.redis.keys().key(key)
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, DedupError> {
        self.redis
            .bounded(call)
            .await
            .map_err(DedupError::unavailable)
    }
}

/// The endpoint's name as one key segment, ending in `:`; `%` and `:` are escaped so that
/// no (name, key) pair spells another's.
fn endpoint_segment(endpoint: &str) -> String {
    let mut segment = endpoint.replace('%', "%25").replace(':', "%3A");
    segment.push(':');
    segment
}

impl DedupStore for RedisStore {
    fn begin<'a>(&'a self, key: &'a str, lease: Duration) -> DedupFuture<'a, Begin> {
        Box::pin(async move {
            let token = format!("claim:{}", uuid::Uuid::new_v4().simple());
            let mut connection = self.redis.manager();
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
            let mut connection = self.redis.manager();
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
            let mut connection = self.redis.manager();
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
            .field("prefix", &self.redis.keys().as_str())
            .field("timeout", &self.redis.timeout())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A store on a shared connection keeps its keys under that connection's prefix.
    #[test]
    fn endpoint_names_cannot_spell_each_other() {
        assert_eq!(endpoint_segment("payments"), "payments:");
        assert_eq!(endpoint_segment("a:b"), "a%3Ab:");
        assert_eq!(endpoint_segment("a%3Ab"), "a%253Ab:");
    }

    #[tokio::test]
    async fn a_shared_connection_puts_keys_under_its_prefix() {
        let server = tokio::task::spawn_blocking(webhook_testkit::RedisServer::start)
            .await
            .unwrap();
        let redis = RedisConfig::new(server.url())
            .prefix("env-a:")
            .connect()
            .await
            .unwrap();
        let store = RedisStore::from_connection(&redis);
        let Begin::New(claim) = store.begin("k1", Duration::from_secs(30)).await.unwrap() else {
            panic!("a fresh key is new");
        };
        store
            .complete("k1", &claim, Duration::from_secs(60))
            .await
            .unwrap();
        let mut manager = redis.manager();
        let raw: Option<String> = redis::cmd("GET")
            .arg("env-a:dedup:k1")
            .query_async(&mut manager)
            .await
            .unwrap();
        assert_eq!(raw.as_deref(), Some(DONE));
        let other = RedisStore::from_connection(&redis.clone().with_keys(KeyPrefix::new("env-b:")));
        assert!(matches!(
            other.begin("k1", Duration::from_secs(30)).await.unwrap(),
            Begin::New(_)
        ));
        assert!(format!("{other:?}").contains("env-b:dedup:"));
    }
}
