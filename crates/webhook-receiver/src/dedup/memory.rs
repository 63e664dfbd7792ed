//! The in-process dedup store: sharded maps under short-held mutexes, bounded in size.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use webhook_core::clock::{Clock, SystemClock};

use super::{Begin, Claim, DedupError, DedupFuture, DedupStore, millis};

/// How many keys a [`MemoryStore`] holds unless configured otherwise.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Number of shards; a power of two so a mask picks one.
const SHARDS: usize = 16;

/// A full store sweeps out expired keys at most this often (in clock milliseconds), so a
/// store that stays full does not scan all keys on every request.
const SWEEP_INTERVAL_MS: i64 = 1_000;

/// Dedup keys in this process's memory.
///
/// Keys are spread over 16 shards, each a `HashMap` behind its own `Mutex` that is held
/// only for a map operation (never across an `.await`), so concurrent requests rarely
/// wait on each other.
///
/// **Bounded.** At most `capacity` keys (done or in progress) are held. A key stays until
/// its TTL or lease ends; expired keys are removed when touched, and swept out all at once
/// when the store is full (at most once a second). When the store is full of unexpired
/// keys, [`begin`](DedupStore::begin) fails with [`DedupError::full`] and the middleware
/// answers 503 with `Retry-After`, so the sender retries later. It never silently forgets
/// an unexpired key, because a forgotten key is a replay or a duplicate let through.
/// Size the capacity for your peak deliveries per TTL (100 000 keys of ~64 bytes take
/// roughly 20 MB), or use the Redis store.
///
/// Keys do not survive a restart and are not shared between processes; use the Redis
/// store when several receiver processes serve one endpoint.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Mutex<HashMap<Box<str>, Entry>>>,
    hasher: std::collections::hash_map::RandomState,
    capacity: usize,
    len: AtomicUsize,
    next_claim: AtomicU64,
    last_sweep_ms: AtomicI64,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// `Some` while in progress (the claim's number), `None` when done.
    claim: Option<u64>,
    /// Clock milliseconds after which the entry no longer counts.
    expires_at_ms: i64,
}

impl MemoryStore {
    /// A store holding up to [`DEFAULT_CAPACITY`] keys, reading the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A store holding up to `capacity` keys (at least 1).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self::build(capacity, Arc::new(SystemClock))
    }

    /// Reads time from `clock` instead of the system clock (tests use a
    /// [`ManualClock`](webhook_core::clock::ManualClock)). Keys already held are dropped.
    #[must_use]
    pub fn clock(self, clock: impl Clock + 'static) -> Self {
        Self::build(self.inner.capacity, Arc::new(clock))
    }

    /// A store reading time from a shared clock (the middleware's default store shares
    /// the verifier's clock).
    pub(crate) fn build(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                hasher: std::collections::hash_map::RandomState::new(),
                capacity: capacity.max(1),
                len: AtomicUsize::new(0),
                next_claim: AtomicU64::new(1),
                last_sweep_ms: AtomicI64::new(i64::MIN),
                clock,
            }),
        }
    }

    /// The most keys held at once.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Keys held now, including expired ones not yet swept out.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn begin_now(&self, key: &str, lease: Duration) -> Result<Begin, DedupError> {
        let inner = &*self.inner;
        let now = inner.now_ms();
        let pending = Entry {
            claim: Some(inner.next_claim.fetch_add(1, Ordering::Relaxed)),
            expires_at_ms: deadline(now, lease),
        };
        if let Some(begin) = inner.try_begin(&mut inner.shard(key), key, pending, now) {
            return Ok(begin);
        }
        // Full: sweep without holding any shard, then try once more.
        inner.sweep(now);
        inner
            .try_begin(&mut inner.shard(key), key, pending, now)
            .ok_or_else(DedupError::full)
    }

    fn complete_now(&self, key: &str, claim: &Claim, ttl: Duration) -> Result<(), DedupError> {
        let inner = &*self.inner;
        let now = inner.now_ms();
        let done = Entry {
            claim: None,
            expires_at_ms: deadline(now, ttl),
        };
        let mut shard = inner.shard(key);
        match shard.get_mut(key) {
            // Whoever holds it now, the delivery was handled: remember that.
            Some(entry) => *entry = done,
            None if inner.reserve() => {
                shard.insert(key.into(), done);
            }
            None => {
                tracing::debug!(claim = claim.token(), "dedup store full at completion");
                return Err(DedupError::full());
            }
        }
        Ok(())
    }

    fn release_now(&self, key: &str, claim: &Claim) {
        let inner = &*self.inner;
        let mut shard = inner.shard(key);
        let ours = shard.get(key).is_some_and(|entry| {
            entry.claim.is_some() && entry.claim == claim.token().parse::<u64>().ok()
        });
        if ours {
            shard.remove(key);
            inner.len.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn now_ms(&self) -> i64 {
        let millis = self.clock.now().unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
    }

    /// Claims `key` in its shard with `pending` (an in-progress entry): an unexpired entry
    /// answers in progress or done, an expired one is taken over, a missing one is inserted
    /// if there is room. `None` when the store is full.
    fn try_begin(
        &self,
        shard: &mut HashMap<Box<str>, Entry>,
        key: &str,
        pending: Entry,
        now: i64,
    ) -> Option<Begin> {
        let new = || Begin::New(Claim::new(pending.claim.unwrap_or_default().to_string()));
        if let Some(entry) = shard.get_mut(key) {
            if entry.expires_at_ms > now {
                return Some(match entry.claim {
                    Some(_) => Begin::InProgress,
                    None => Begin::Done,
                });
            }
            // Expired: take the slot over.
            *entry = pending;
            return Some(new());
        }
        if self.reserve() {
            shard.insert(key.into(), pending);
            return Some(new());
        }
        None
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // Truncation is intended: only the low bits pick the shard.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.hasher.hash_one(key) as usize) & (SHARDS - 1);
        // A panic while holding the lock cannot leave a map half-updated in a way that
        // matters here (each operation is a single insert/remove), so poisoning is ignored.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one slot of the capacity, if any is left.
    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len < self.capacity).then_some(len + 1)
            })
            .is_ok()
    }

    /// Removes every expired entry, at most once per [`SWEEP_INTERVAL_MS`].
    fn sweep(&self, now: i64) {
        let last = self.last_sweep_ms.load(Ordering::Acquire);
        if last != i64::MIN && now.saturating_sub(last) < SWEEP_INTERVAL_MS {
            return;
        }
        if self
            .last_sweep_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // another request is sweeping
        }
        let mut removed = 0;
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = map.len();
            map.retain(|_, entry| entry.expires_at_ms > now);
            removed += before - map.len();
        }
        self.len.fetch_sub(removed, Ordering::AcqRel);
        tracing::debug!(removed, "dedup memory store swept expired keys");
    }
}

fn deadline(now_ms: i64, after: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(millis(after)).unwrap_or(i64::MAX))
}

impl DedupStore for MemoryStore {
    fn begin<'a>(&'a self, key: &'a str, lease: Duration) -> DedupFuture<'a, Begin> {
        let result = self.begin_now(key, lease);
        Box::pin(std::future::ready(result))
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim,
        ttl: Duration,
    ) -> DedupFuture<'a, ()> {
        let result = self.complete_now(key, claim, ttl);
        Box::pin(std::future::ready(result))
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a Claim) -> DedupFuture<'a, ()> {
        self.release_now(key, claim);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.inner.capacity)
            .field("len", &self.len())
            .field("clock", &self.inner.clock)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use webhook_core::clock::ManualClock;

    const LEASE: Duration = Duration::from_secs(30);
    const TTL: Duration = Duration::from_secs(600);

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn claim(store: &MemoryStore, key: &str) -> Claim {
        match block_on(store.begin(key, LEASE)).unwrap() {
            Begin::New(claim) => claim,
            other => panic!("expected New, got {other:?}"),
        }
    }

    #[test]
    fn claim_complete_release_and_expiry() {
        let clock = ManualClock::at_unix(1_000);
        let store = MemoryStore::new().clock(clock.clone());
        let first = claim(&store, "k");
        assert_eq!(
            block_on(store.begin("k", LEASE)).unwrap(),
            Begin::InProgress
        );

        // Release makes the key new again.
        block_on(store.release("k", &first)).unwrap();
        assert!(store.is_empty());
        let second = claim(&store, "k");
        // A stale claim does not release the current holder.
        block_on(store.release("k", &first)).unwrap();
        assert_eq!(
            block_on(store.begin("k", LEASE)).unwrap(),
            Begin::InProgress
        );

        block_on(store.complete("k", &second, TTL)).unwrap();
        assert_eq!(block_on(store.begin("k", LEASE)).unwrap(), Begin::Done);
        // Releasing a done key does nothing.
        block_on(store.release("k", &second)).unwrap();
        assert_eq!(block_on(store.begin("k", LEASE)).unwrap(), Begin::Done);

        clock.advance(TTL);
        let _third = claim(&store, "k");
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn an_abandoned_claim_frees_itself_after_the_lease() {
        let clock = ManualClock::at_unix(1_000);
        let store = MemoryStore::new().clock(clock.clone());
        let _lost = claim(&store, "k");
        clock.advance(LEASE - Duration::from_millis(1));
        assert_eq!(
            block_on(store.begin("k", LEASE)).unwrap(),
            Begin::InProgress
        );
        clock.advance(Duration::from_millis(1));
        let _taken_over = claim(&store, "k");
    }

    #[test]
    fn full_store_refuses_until_a_slot_frees() {
        let clock = ManualClock::at_unix(1_000);
        let store = MemoryStore::with_capacity(2).clock(clock.clone());
        let a = claim(&store, "a");
        let b = claim(&store, "b");
        let err = block_on(store.begin("c", LEASE)).unwrap_err();
        assert!(err.is_full() && !err.is_unavailable());
        // Known keys still answer while full.
        assert_eq!(
            block_on(store.begin("a", LEASE)).unwrap(),
            Begin::InProgress
        );

        // Releasing frees a slot at once.
        block_on(store.release("a", &a)).unwrap();
        let c = claim(&store, "c");
        block_on(store.complete("b", &b, TTL)).unwrap();
        block_on(store.complete("c", &c, TTL)).unwrap();
        assert!(block_on(store.begin("d", LEASE)).unwrap_err().is_full());

        // Expired keys are swept out when the store is full.
        clock.advance(TTL);
        let _d = claim(&store, "d");
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn exactly_one_of_many_concurrent_claims_wins() {
        let store = MemoryStore::new();
        let wins = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for i in 0..200 {
                        let key = format!("key-{i}");
                        if let Begin::New(_) = block_on(store.begin(&key, LEASE)).unwrap() {
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(wins.load(Ordering::Relaxed), 200);
        assert_eq!(store.len(), 200);
    }
}
