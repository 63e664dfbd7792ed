//! Idempotency keys (SPEC §1): identical events (same organization, type and entity)
//! within 60 s of the first one share that first one's key; the 61st second starts a new one.
//!
//! The key is a hash of the triple and the window's start, so any sender node that knows
//! the window start derives the same key. Where the window start lives is the caller's
//! business: [`IdempotencyWindows`] keeps it in memory with a clock, [`WindowStarts`] is
//! the same table with the time passed in (the sender's in-process stores use it, the
//! durable one writing each start to disk too), and the Redis store keeps it in Redis,
//! shared by all nodes, calling [`next_window_start`] and [`IdempotencyKey::derive`].
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::clock::ManualClock;
//! use webhook_core::idempotency::IdempotencyWindows;
//!
//! let clock = ManualClock::at_unix(1_700_000_000);
//! let mut windows = IdempotencyWindows::new(clock.clone());
//! let first = windows.key_for("org", "wallet.created", "w1");
//! clock.advance(Duration::from_secs(59));
//! assert_eq!(windows.key_for("org", "wallet.created", "w1"), first);
//! clock.advance(Duration::from_secs(1));
//! assert_ne!(windows.key_for("org", "wallet.created", "w1"), first);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use ring::digest;

use crate::clock::Clock;

/// Length of the dedup window in seconds.
pub const WINDOW_SECS: i64 = 60;

/// Separates the hashed fields (ASCII unit separator), so `("a.b","c")` and `("a","b.c")` differ.
const SEPARATOR: &[u8] = b"\x1f";

/// An idempotency key: lowercase hex of SHA-256 over
/// `organization \x1f type \x1f entity \x1f window_start`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Derives the key of the window that starts at `window_start` (Unix seconds).
    #[must_use]
    pub fn derive(organization: &str, event_type: &str, entity: &str, window_start: i64) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        for part in [
            organization.as_bytes(),
            event_type.as_bytes(),
            entity.as_bytes(),
        ] {
            context.update(part);
            context.update(SEPARATOR);
        }
        context.update(window_start.to_string().as_bytes());
        Self(hex::encode(context.finish()))
    }

    /// The key text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key text, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start of the window an event at `now` falls in, given the start of the triple's
/// current window (if any): the same start while `now - start < 60`, else `now`.
/// A clock that went backwards stays in the current window.
#[must_use]
pub fn next_window_start(current_start: Option<i64>, now: i64) -> i64 {
    match current_start {
        Some(start) if now.saturating_sub(start) < WINDOW_SECS => start,
        _ => now,
    }
}

/// The text a window table keys a triple by: `organization \x1f type \x1f entity`.
#[must_use]
pub fn triple_key(organization: &str, event_type: &str, entity: &str) -> String {
    let separator = char::from(SEPARATOR[0]);
    let mut key = String::with_capacity(organization.len() + event_type.len() + entity.len() + 2);
    key.push_str(organization);
    key.push(separator);
    key.push_str(event_type);
    key.push(separator);
    key.push_str(entity);
    key
}

/// Window starts per triple ([`triple_key`]) in memory, with the time passed in.
///
/// A triple is held as a 64-bit hash (keyed per table, so nobody can aim for collisions)
/// and its window start: about 30 bytes per open window in a B-tree, whatever the length
/// of the names, and no table doubling as it grows. Two triples whose hashes collide share
/// a window start, which only makes the later one's window end early; their keys still
/// differ, because [`IdempotencyKey::derive`] hashes the triple itself. Windows that have
/// ended are pruned at most once a window, so memory stays bounded by the number of
/// distinct triples seen in the last minute.
///
/// ```
/// use webhook_core::idempotency::{WindowStarts, triple_key};
///
/// let mut windows = WindowStarts::new();
/// let key = triple_key("org", "wallet.created", "w1");
/// assert_eq!(windows.claim(&key, 1_000), 1_000);
/// assert_eq!(windows.claim(&key, 1_059), 1_000, "same window");
/// assert_eq!(windows.claim(&key, 1_060), 1_060, "the 61st second starts anew");
/// ```
#[derive(Debug, Default)]
pub struct WindowStarts {
    hasher: RandomState,
    starts: BTreeMap<u64, i64>,
    last_prune: Option<i64>,
}

impl WindowStarts {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The start of the window an event about `triple` at `now` (Unix seconds) falls in,
    /// opening a new window when the current one has ended ([`next_window_start`]).
    /// Prunes first when a window has passed since the last prune.
    pub fn claim(&mut self, triple: &str, now: i64) -> i64 {
        self.prune(now);
        let hash = self.hasher.hash_one(triple);
        let start = next_window_start(self.starts.get(&hash).copied(), now);
        self.starts.insert(hash, start);
        start
    }

    /// Puts back a window start read from storage.
    pub fn restore(&mut self, triple: &str, start: i64) {
        let hash = self.hasher.hash_one(triple);
        self.starts.insert(hash, start);
    }

    /// Drops the windows that ended before `now`, unless that was done less than a window
    /// ago. Returns the cut-off when it pruned: windows starting before it are gone, so a
    /// caller that also stores them can drop the same.
    pub fn prune(&mut self, now: i64) -> Option<i64> {
        if self
            .last_prune
            .is_some_and(|last| now.saturating_sub(last) < WINDOW_SECS)
        {
            return None;
        }
        self.last_prune = Some(now);
        let before = now.saturating_sub(WINDOW_SECS);
        self.starts.retain(|_, start| *start > before);
        Some(before.saturating_add(1))
    }

    /// How many triples have an open (or not yet pruned) window.
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether no window is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

/// In-memory window starts per (organization, type, entity), with an injected clock: a
/// [`WindowStarts`] that reads the time itself and returns keys.
#[derive(Debug)]
pub struct IdempotencyWindows<C> {
    clock: C,
    starts: WindowStarts,
}

impl<C: Clock> IdempotencyWindows<C> {
    /// An empty tracker reading time from `clock`.
    pub fn new(clock: C) -> Self {
        Self {
            clock,
            starts: WindowStarts::new(),
        }
    }

    /// The key for an event about `entity` happening now.
    pub fn key_for(
        &mut self,
        organization: &str,
        event_type: &str,
        entity: &str,
    ) -> IdempotencyKey {
        let now = self.clock.unix_seconds();
        let triple = triple_key(organization, event_type, entity);
        let start = self.starts.claim(&triple, now);
        IdempotencyKey::derive(organization, event_type, entity, start)
    }

    /// How many triples have an open window.
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether no window is open.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn window_boundaries() {
        assert_eq!(next_window_start(None, 100), 100);
        assert_eq!(next_window_start(Some(100), 100), 100);
        assert_eq!(next_window_start(Some(100), 159), 100);
        assert_eq!(
            next_window_start(Some(100), 160),
            160,
            "the 61st second starts anew"
        );
        assert_eq!(
            next_window_start(Some(100), 90),
            100,
            "clock went backwards"
        );
    }

    #[test]
    fn different_triples_never_share_keys() {
        let clock = ManualClock::at_unix(1_000);
        let mut windows = IdempotencyWindows::new(clock);
        let a = windows.key_for("org", "wallet.created", "w1");
        assert_ne!(a, windows.key_for("org2", "wallet.created", "w1"));
        assert_ne!(a, windows.key_for("org", "customer.created", "w1"));
        assert_ne!(a, windows.key_for("org", "wallet.created", "w2"));
        assert_eq!(a, windows.key_for("org", "wallet.created", "w1"));
    }

    #[test]
    fn separator_prevents_ambiguity() {
        assert_ne!(
            IdempotencyKey::derive("a", "b.c", "d", 0),
            IdempotencyKey::derive("a.b", "c", "d", 0)
        );
    }

    #[test]
    fn expired_windows_are_pruned_and_restart() {
        let clock = ManualClock::at_unix(1_000);
        let mut windows = IdempotencyWindows::new(clock.clone());
        let first = windows.key_for("org", "t", "e1");
        windows.key_for("org", "t", "e2");
        assert_eq!(windows.len(), 2);
        clock.advance(Duration::from_secs(120));
        let second = windows.key_for("org", "t", "e1");
        assert_ne!(first, second);
        assert_eq!(windows.len(), 1, "e2's window ended and was pruned");
        assert_eq!(second, IdempotencyKey::derive("org", "t", "e1", 1_120));
    }

    #[test]
    fn window_starts_prune_and_report_the_cut_off() {
        let mut windows = WindowStarts::new();
        let a = triple_key("org", "t", "a");
        let b = triple_key("org", "t", "b");
        assert_eq!(windows.claim(&a, 1_000), 1_000);
        assert_eq!(windows.claim(&b, 1_030), 1_030);
        assert_eq!(windows.prune(1_059), None, "pruned at 1,000 already");
        assert_eq!(
            windows.prune(1_089),
            Some(1_030),
            "windows before 1,030 are gone"
        );
        assert_eq!(windows.len(), 1, "a ended, b is open until 1,090");
        assert_eq!(windows.claim(&b, 1_089), 1_030);
        windows.restore(&a, 1_080);
        assert_eq!(windows.claim(&a, 1_100), 1_080, "a restored start counts");
    }
}
