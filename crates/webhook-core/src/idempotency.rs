//! Idempotency keys (SPEC §1): identical events (same organization, type and entity)
//! within 60 s of the first one share that first one's key; the 61st second starts a new one.
//!
//! The key is a hash of the triple and the window's start, so any sender node that knows
//! the window start derives the same key. Where the window start lives is the caller's
//! business: [`IdempotencyWindows`] keeps it in memory; the sender's stores keep it
//! durably (and, with Redis, shared by all nodes) and call [`next_window_start`] and
//! [`IdempotencyKey::derive`].
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

use std::collections::HashMap;
use std::fmt;

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

/// In-memory window starts per (organization, type, entity), with an injected clock.
///
/// Windows that have ended are pruned as new ones are opened, so memory stays bounded by
/// the number of distinct triples seen in the last minute.
#[derive(Debug)]
pub struct IdempotencyWindows<C> {
    clock: C,
    starts: HashMap<(String, String, String), i64>,
    last_prune: i64,
}

impl<C: Clock> IdempotencyWindows<C> {
    /// An empty tracker reading time from `clock`.
    pub fn new(clock: C) -> Self {
        Self {
            clock,
            starts: HashMap::new(),
            last_prune: i64::MIN,
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
        self.prune(now);
        let triple = (
            organization.to_owned(),
            event_type.to_owned(),
            entity.to_owned(),
        );
        let current = self.starts.get(&triple).copied();
        let start = next_window_start(current, now);
        self.starts.insert(triple, start);
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

    fn prune(&mut self, now: i64) {
        if now.saturating_sub(self.last_prune) < WINDOW_SECS {
            return;
        }
        self.last_prune = now;
        self.starts
            .retain(|_, start| now.saturating_sub(*start) < WINDOW_SECS);
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
}
