//! [`KeyPrefix`]: key names under a configurable prefix.

use std::fmt;

/// The prefix every key of one user starts with, so that several environments (or
/// endpoints, or programs) share one Redis database without seeing each other's keys.
///
/// ```
/// use webhook_redis::KeyPrefix;
///
/// let prod = KeyPrefix::new("prod:");
/// assert_eq!(prod.key("queue"), "prod:queue");
/// let sender = prod.child("sender:");
/// assert_eq!(sender.key("queue"), "prod:sender:queue");
/// assert_eq!(sender.as_str(), "prod:sender:");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// A prefix. It is used as given: end it with a separator such as `:`.
    #[must_use]
    pub fn new(prefix: impl Into<String>) -> Self {
        Self(prefix.into())
    }

    /// The prefix itself.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full name of the key `name`: the prefix followed by `name`.
    #[must_use]
    pub fn key(&self, name: &str) -> String {
        let mut key = String::with_capacity(self.0.len() + name.len());
        key.push_str(&self.0);
        key.push_str(name);
        key
    }

    /// A prefix under this one, for one part of a program (`sender:`, `dedup:`).
    #[must_use]
    pub fn child(&self, segment: &str) -> Self {
        Self(self.key(segment))
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPrefix({:?})", self.0)
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
