//! The in-process dedup store: compact hashed keys in sharded maps under short-held
//! mutexes, bounded in size, making room by dropping keys that can no longer let a
//! replay through.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use webhook_core::clock::{Clock, SystemClock};

use super::{Begin, Claim, DedupError, DedupFuture, DedupStore, millis};

/// How many keys a [`MemoryStore`] holds unless configured otherwise: 1,000,000, about
/// 90 MB when full (see [`MemoryStore`] for the rates this sustains).
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// Number of shards; a power of two so a mask picks one.
const SHARDS: usize = 16;

/// A full store makes room at most this often (in clock milliseconds), so a store that
/// stays full does not scan all keys on every request.
const SWEEP_INTERVAL_MS: i64 = 1_000;

/// Making room frees about this share of the capacity (1/10), oldest evictable keys first,
/// so that the next sweep is far off.
const SWEEP_FREES_DIVISOR: usize = 10;

/// Dedup keys in this process's memory.
///
/// **Compact keys.** A key is stored as a 128-bit keyed hash (two SipHash-1-3 digests
/// under random per-process keys), not as its text: an entry takes 40 bytes whatever the
/// key's length, and an outsider cannot aim keys at one shard or at a collision. Two
/// keys share a hash with probability about n² / 2¹²⁹: never, in practice.
///
/// **Bounded.** At most `capacity` keys (done or in progress) are held. A key stays
/// until its TTL or lease ends; expired keys are removed when touched. When the store is
/// full it makes room (at most once a second): it removes expired keys and then, oldest
/// first, up to a tenth of the capacity of **done keys past their replay-safe age** (the
/// middleware passes it with [`DedupStore::complete_evictable`]: the age after which
/// the verifier's freshness checks refuse any copy of the request, plus a margin). It
/// never drops a key in progress or a done key younger than that, because that would let
/// a replay or a concurrent duplicate through; when nothing can go, `begin` fails with
/// [`DedupError::full`] and the middleware answers 503 with `Retry-After`.
///
/// Dropping a done key early gives up only the TTL's second purpose, answering a
/// *sender's* late retry (its acknowledgement was lost) as a duplicate: such a retry of
/// a delivery evicted under pressure is handled again. A replay of a captured request is
/// still refused, by the window or by dedup.
///
/// **Rates sustained** (distinct deliveries per second, indefinitely, without a 503):
/// capacity ÷ replay-safe age. With the default capacity of 1,000,000 and the default
/// tolerance of 300 s:
///
/// | style | replay-safe age | sustained with 1,000,000 keys | memory when full |
/// |---|---|---|---|
/// | event, Standard Webhooks | 2 × 300 s + 60 s = 660 s | 1,515 /s | about 90 MB |
/// | domain (max resource age 4 h) | 4 h + 300 s + 60 s = 14,760 s | 67 /s | about 90 MB |
///
/// A higher rate needs a proportionally larger capacity (about 90 bytes of memory per
/// key, hash-table slack included), or the Redis store. Without the timestamp check
/// ([`skip_timestamp_check`](crate::DangerousVerifier::skip_timestamp_check)) nothing is
/// evictable and the store holds capacity ÷ TTL per second.
///
/// Keys are spread over 16 shards, each a `HashMap` behind its own `Mutex` that is held
/// only for a map operation (never across an `.await`), so concurrent requests rarely
/// wait on each other. Keys do not survive a restart and are not shared between
/// processes; use the Redis store when several receiver processes serve one endpoint.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

type Shard = HashMap<KeyHash, Entry, BuildHasherDefault<PassThrough>>;

struct Inner {
    shards: Vec<Mutex<Shard>>,
    /// Two independently keyed SipHash instances: one 64-bit half of the key hash each.
    hashers: [std::collections::hash_map::RandomState; 2],
    capacity: usize,
    len: AtomicUsize,
    next_claim: AtomicU64,
    last_sweep_ms: AtomicI64,
    clock: Arc<dyn Clock>,
}

/// A key's 128-bit keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyHash(u64, u64);

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a keyed hash: the map uses its first half as is.
        state.write_u64(self.0);
    }
}

/// The map's hasher: passes a [`KeyHash`]'s first half through.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `KeyHash`); fold anything else in for safety.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Marks an entry done in [`Entry::claim`].
const DONE: u64 = 0;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The claim's number while in progress (never 0), [`DONE`] when done.
    claim: u64,
    /// Clock milliseconds after which the entry no longer counts.
    expires_at_ms: i64,
    /// Clock milliseconds after which a done entry may be dropped to make room
    /// (`i64::MAX`: never before it expires).
    evictable_at_ms: i64,
}

impl Entry {
    fn is_evictable(&self, now: i64) -> bool {
        self.claim == DONE && self.evictable_at_ms <= now
    }
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
                shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
                hashers: Default::default(),
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
        let hash = inner.hash(key);
        let now = inner.now_ms();
        let pending = Entry {
            claim: inner.next_claim.fetch_add(1, Ordering::Relaxed).max(1),
            expires_at_ms: deadline(now, lease),
            evictable_at_ms: i64::MAX,
        };
        if let Some(begin) = inner.try_begin(&mut inner.shard(hash), hash, pending, now) {
            return Ok(begin);
        }
        // Full: make room without holding any shard, then try once more.
        inner.make_room(now);
        inner
            .try_begin(&mut inner.shard(hash), hash, pending, now)
            .ok_or_else(DedupError::full)
    }

    fn complete_now(
        &self,
        key: &str,
        claim: &Claim,
        ttl: Duration,
        evictable_after: Option<Duration>,
    ) -> Result<(), DedupError> {
        let inner = &*self.inner;
        let hash = inner.hash(key);
        let now = inner.now_ms();
        let done = Entry {
            claim: DONE,
            expires_at_ms: deadline(now, ttl),
            evictable_at_ms: evictable_after.map_or(i64::MAX, |after| deadline(now, after)),
        };
        let mut shard = inner.shard(hash);
        match shard.get_mut(&hash) {
            // Whoever holds it now, the delivery was handled: remember that.
            Some(entry) => *entry = done,
            None if inner.reserve() => {
                shard.insert(hash, done);
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
        let hash = inner.hash(key);
        let Ok(number) = claim.token().parse::<u64>() else {
            return;
        };
        let mut shard = inner.shard(hash);
        let ours = shard
            .get(&hash)
            .is_some_and(|entry| entry.claim != DONE && entry.claim == number);
        if ours {
            shard.remove(&hash);
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

    fn hash(&self, key: &str) -> KeyHash {
        KeyHash(self.hashers[0].hash_one(key), self.hashers[1].hash_one(key))
    }

    /// Claims `hash` in its shard with `pending` (an in-progress entry): an unexpired
    /// entry answers in progress or done, an expired one is taken over, a missing one is
    /// inserted if there is room. `None` when the store is full.
    fn try_begin(
        &self,
        shard: &mut Shard,
        hash: KeyHash,
        pending: Entry,
        now: i64,
    ) -> Option<Begin> {
        let new = || Begin::New(Claim::new(pending.claim.to_string()));
        if let Some(entry) = shard.get_mut(&hash) {
            if entry.expires_at_ms > now {
                return Some(if entry.claim == DONE {
                    Begin::Done
                } else {
                    Begin::InProgress
                });
            }
            // Expired: take the slot over.
            *entry = pending;
            return Some(new());
        }
        if self.reserve() {
            shard.insert(hash, pending);
            return Some(new());
        }
        None
    }

    fn shard(&self, hash: KeyHash) -> MutexGuard<'_, Shard> {
        // Truncation is intended: only the low bits pick the shard (the map hashes the
        // other half, so the two choices are independent).
        #[allow(clippy::cast_possible_truncation)]
        let index = (hash.1 as usize) & (SHARDS - 1);
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

    /// At most once per [`SWEEP_INTERVAL_MS`]: removes every expired entry and, if that
    /// frees less than a tenth of the capacity, the oldest evictable done entries up to
    /// that tenth. In-progress entries and done entries younger than their replay-safe
    /// age are never removed.
    fn make_room(&self, now: i64) {
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
        let target = (self.capacity / SWEEP_FREES_DIVISOR).max(1);

        // Pass 1: drop expired entries; find the range of evictable ones.
        let mut expired = 0;
        let mut evictable = Evictable::default();
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = map.len();
            map.retain(|_, entry| {
                let keep = entry.expires_at_ms > now;
                if keep && entry.is_evictable(now) {
                    evictable.add(entry.evictable_at_ms);
                }
                keep
            });
            expired += before - map.len();
        }
        self.len.fetch_sub(expired, Ordering::AcqRel);

        // Pass 2: the oldest evictable done entries, up to the target.
        let wanted = target.saturating_sub(expired);
        let mut evicted = 0;
        if wanted > 0 && evictable.count > 0 {
            let cutoff = evictable.cutoff(wanted).min(now);
            for shard in &self.shards {
                let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
                let before = map.len();
                map.retain(|_, entry| {
                    !(entry.is_evictable(now) && entry.evictable_at_ms <= cutoff)
                });
                evicted += before - map.len();
            }
            self.len.fetch_sub(evicted, Ordering::AcqRel);
        }
        tracing::debug!(expired, evicted, "dedup memory store made room");
    }
}

/// The evictable done entries seen by a sweep: how many, and the range of their
/// evictable-from times.
#[derive(Debug, Default)]
struct Evictable {
    count: usize,
    oldest: Option<i64>,
    newest: Option<i64>,
}

impl Evictable {
    fn add(&mut self, evictable_at_ms: i64) {
        self.count += 1;
        self.oldest = Some(
            self.oldest
                .map_or(evictable_at_ms, |o| o.min(evictable_at_ms)),
        );
        self.newest = Some(
            self.newest
                .map_or(evictable_at_ms, |n| n.max(evictable_at_ms)),
        );
    }

    /// The evictable-from time up to which about `wanted` entries lie, assuming they are
    /// spread evenly between the oldest and the newest (deliveries arriving at a steady
    /// rate); everything when `wanted` covers them all.
    fn cutoff(&self, wanted: usize) -> i64 {
        let (Some(oldest), Some(newest)) = (self.oldest, self.newest) else {
            return i64::MIN;
        };
        if wanted >= self.count {
            return newest;
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let share = (newest - oldest) as f64 * (wanted as f64 / self.count as f64);
        #[allow(clippy::cast_possible_truncation)]
        let step = share.ceil() as i64;
        oldest.saturating_add(step)
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
        let result = self.complete_now(key, claim, ttl, None);
        Box::pin(std::future::ready(result))
    }

    fn complete_evictable<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim,
        ttl: Duration,
        replay_safe_after: Duration,
    ) -> DedupFuture<'a, ()> {
        let result = self.complete_now(key, claim, ttl, Some(replay_safe_after));
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
    fn making_room_drops_the_oldest_replay_safe_done_keys_first() {
        const SAFE: Duration = Duration::from_secs(660);
        const TTL: Duration = Duration::from_secs(3600);
        let clock = ManualClock::at_unix(1_000);
        let store = MemoryStore::with_capacity(4).clock(clock.clone());
        for key in ["a", "b", "c"] {
            let claim = claim(&store, key);
            block_on(store.complete_evictable(key, &claim, TTL, SAFE)).unwrap();
            clock.advance(Duration::from_secs(10));
        }
        // Done without the hint: kept for its whole TTL, whatever the pressure.
        let pinned = claim(&store, "pinned");
        block_on(store.complete("pinned", &pinned, TTL)).unwrap();
        assert!(block_on(store.begin("x", LEASE)).unwrap_err().is_full());

        // All three hinted keys are past their safe age; a tenth of the capacity (one
        // key) is freed, the oldest.
        clock.advance(SAFE);
        let _x = claim(&store, "x");
        assert_eq!(store.len(), 4);
        // "a" was forgotten: not done any more, only refused for room (the store is full
        // again, and the next sweep is a second away).
        assert!(block_on(store.begin("a", LEASE)).unwrap_err().is_full());
        assert_eq!(block_on(store.begin("b", LEASE)).unwrap(), Begin::Done);
        assert_eq!(block_on(store.begin("pinned", LEASE)).unwrap(), Begin::Done);
    }

    #[test]
    fn the_cutoff_spreads_the_wanted_share_over_the_range() {
        let mut evictable = Evictable::default();
        assert_eq!(evictable.cutoff(1), i64::MIN);
        for at in [1_000, 2_000, 3_000, 4_000, 5_000] {
            evictable.add(at);
        }
        assert_eq!(evictable.cutoff(5), 5_000);
        assert_eq!(evictable.cutoff(50), 5_000);
        assert_eq!(evictable.cutoff(1), 1_800);
    }

    #[test]
    fn keys_are_stored_as_fixed_size_hashes() {
        let store = MemoryStore::new();
        let long = "k".repeat(10_000);
        let _claim = claim(&store, &long);
        assert_eq!(
            std::mem::size_of::<KeyHash>() + std::mem::size_of::<Entry>(),
            40
        );
        assert_eq!(
            block_on(store.begin(&long, LEASE)).unwrap(),
            Begin::InProgress
        );
        // Different keys, different hashes (and different per-process keys per store).
        let other = MemoryStore::new();
        assert_ne!(store.inner.hash("k"), store.inner.hash("l"));
        assert_ne!(store.inner.hash("k"), other.inner.hash("k"));
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
