//! Deduplication: a store that remembers which deliveries were handled, behind one trait.
//!
//! A delivery's key (see [`VerifiedWebhook::dedup_key`](crate::VerifiedWebhook::dedup_key))
//! goes through three states:
//!
//! 1. [`DedupStore::begin`] claims it: [`Begin::New`] with a [`Claim`] if no one holds it,
//!    [`Begin::InProgress`] if another request is handling it right now, [`Begin::Done`]
//!    if it was handled. The claim is a lease: if the process dies while handling,
//!    the key frees itself after the lease.
//! 2. After the handler answered 2xx, [`DedupStore::complete`] marks it done for the TTL.
//! 3. After the handler failed (non-2xx, error, panic, or the request was dropped),
//!    [`DedupStore::release`] deletes the claim, so the sender's retry is handled anew.
//!
//! | store | feature | where keys live |
//! |---|---|---|
//! | [`MemoryStore`] | none | this process: 128-bit keyed hashes in sharded mutex-guarded maps, bounded, making room with replay-safe done keys |
//! | `RedisStore` | `redis` | a Redis server: `SET NX PX` under a per-endpoint namespace, shared by all receiver processes of that endpoint |
//!
//! ```
//! use std::time::Duration;
//! use webhook_receiver::dedup::{Begin, DedupStore, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let Begin::New(claim) = store.begin("key-1", Duration::from_secs(60)).await? else {
//!     unreachable!("a fresh store has not seen the key");
//! };
//! assert_eq!(store.begin("key-1", Duration::from_secs(60)).await?, Begin::InProgress);
//! store.complete("key-1", &claim, Duration::from_secs(600)).await?;
//! assert_eq!(store.begin("key-1", Duration::from_secs(60)).await?, Begin::Done);
//! # Ok::<(), webhook_receiver::dedup::DedupError>(())
//! # }).unwrap();
//! ```

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use memory::{DEFAULT_CAPACITY, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisStore};

/// The boxed future a [`DedupStore`] returns (the trait is object safe, so the middleware
/// keeps an `Arc<dyn DedupStore>`).
pub type DedupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DedupError>> + Send + 'a>>;

/// What [`DedupStore::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First sight (or the previous attempt released it): this request now holds the claim.
    New(Claim),
    /// Another request holds an unexpired claim and is being handled.
    InProgress,
    /// A request with this key was handled successfully within the TTL.
    Done,
}

/// Proof of holding a key, so that only its holder completes or releases it (a claim
/// whose lease ran out and was taken over is not released by its first holder).
#[derive(Clone, PartialEq, Eq)]
pub struct Claim(String);

impl Claim {
    /// A claim with a token unique among live claims of the store.
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claim").field(&self.0).finish()
    }
}

/// A dedup store: an atomic claim per key, completed or released after the handler ran.
///
/// The trait is open so that a receiver can keep keys in its own database. An
/// implementation must make [`begin`](DedupStore::begin) atomic: of many concurrent calls
/// with one key, exactly one gets [`Begin::New`].
pub trait DedupStore: Send + Sync + fmt::Debug + 'static {
    /// Claims `key` for `lease` if it is neither held nor done.
    ///
    /// # Errors
    /// [`DedupError`] when the store cannot answer or is full.
    fn begin<'a>(&'a self, key: &'a str, lease: Duration) -> DedupFuture<'a, Begin>;

    /// Marks `key` as done for `ttl`: [`begin`](DedupStore::begin) answers
    /// [`Begin::Done`] until then.
    ///
    /// # Errors
    /// [`DedupError`] when the store cannot answer.
    fn complete<'a>(&'a self, key: &'a str, claim: &'a Claim, ttl: Duration)
    -> DedupFuture<'a, ()>;

    /// Like [`complete`](DedupStore::complete), and tells the store that after
    /// `replay_safe_after` the key can no longer let a replay through: by then the
    /// verifier's freshness checks refuse every copy of the request (the middleware
    /// passes the verifier's [`replay_horizon`](crate::Verifier::replay_horizon) plus a
    /// margin). A bounded store may drop the key from then on to make room instead of
    /// refusing new deliveries; [`MemoryStore`] does. The default ignores the hint.
    ///
    /// # Errors
    /// [`DedupError`] when the store cannot answer.
    fn complete_evictable<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim,
        ttl: Duration,
        replay_safe_after: Duration,
    ) -> DedupFuture<'a, ()> {
        let _ = replay_safe_after;
        self.complete(key, claim, ttl)
    }

    /// Deletes `key` if `claim` still holds it, so the next delivery is handled anew.
    ///
    /// # Errors
    /// [`DedupError`] when the store cannot answer.
    fn release<'a>(&'a self, key: &'a str, claim: &'a Claim) -> DedupFuture<'a, ()>;
}

impl<T: DedupStore + ?Sized> DedupStore for Arc<T> {
    fn begin<'a>(&'a self, key: &'a str, lease: Duration) -> DedupFuture<'a, Begin> {
        (**self).begin(key, lease)
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim,
        ttl: Duration,
    ) -> DedupFuture<'a, ()> {
        (**self).complete(key, claim, ttl)
    }

    fn complete_evictable<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim,
        ttl: Duration,
        replay_safe_after: Duration,
    ) -> DedupFuture<'a, ()> {
        (**self).complete_evictable(key, claim, ttl, replay_safe_after)
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a Claim) -> DedupFuture<'a, ()> {
        (**self).release(key, claim)
    }
}

/// A dedup store failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", match .kind { Kind::Full => "dedup store is full", Kind::Unavailable => "dedup store unavailable" })]
pub struct DedupError {
    kind: Kind,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Full,
    Unavailable,
}

impl DedupError {
    /// The store holds its maximum of unexpired keys, none of which can be dropped.
    #[must_use]
    pub fn full() -> Self {
        Self {
            kind: Kind::Full,
            source: None,
        }
    }

    /// The store could not be reached or did not answer in time.
    #[must_use]
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: Kind::Unavailable,
            source: Some(source.into()),
        }
    }

    /// Whether the store is full.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.kind == Kind::Full
    }

    /// Whether the store could not be reached or did not answer in time.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        self.kind == Kind::Unavailable
    }
}

/// Milliseconds of a duration for TTL arithmetic, saturating, at least 1.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
