//! [`RedisConfig`]: where Redis is, the key prefix, and how long to wait for it.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;

use crate::{Error, KeyPrefix, RedisConnection};

/// The key prefix unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "webhook:";
/// How long one connection attempt may take unless configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one call may take unless configured otherwise.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a lost connection is retried in the background (with exponential
/// back-off) before the next call starts over, unless configured otherwise.
pub const DEFAULT_RECONNECT_RETRIES: usize = 2;
/// The longest pause between two reconnection attempts unless configured otherwise.
pub const DEFAULT_RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// How to reach Redis: URL, key prefix, timeouts and reconnection.
///
/// ```
/// use std::time::Duration;
/// use webhook_redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://:hunter2@127.0.0.1:6379/0")
///     .prefix("prod:")
///     .connect_timeout(Duration::from_millis(500));
/// assert_eq!(config.key_prefix().key("x"), "prod:x");
/// assert!(!format!("{config:?}").contains("hunter2"), "the password is masked");
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    reconnect_retries: usize,
    reconnect_max_delay: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &masked(&self.url))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .finish()
    }
}

impl RedisConfig {
    /// A configuration for `url` (`redis://[:password@]host:port/db`, or `rediss://`
    /// when the `redis` crate is built with TLS), every other setting at its default.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
            reconnect_max_delay: DEFAULT_RECONNECT_MAX_DELAY,
        }
    }

    /// The prefix of every key. Default is `webhook:` ([`DEFAULT_PREFIX`]); give each
    /// environment its own (`prod:`, `staging:`) when they share one Redis database.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one connection attempt may take. Default is 2 s
    /// ([`DEFAULT_CONNECT_TIMEOUT`]).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long one call may take, waiting for a reconnection included. Default is 2 s
    /// ([`DEFAULT_RESPONSE_TIMEOUT`]).
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many times a lost connection is retried in the background, with exponential
    /// back-off from 100 ms, before the next call starts over. Default is 2
    /// ([`DEFAULT_RECONNECT_RETRIES`]).
    #[must_use]
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// The longest pause between two reconnection attempts. Default is 1 s
    /// ([`DEFAULT_RECONNECT_MAX_DELAY`]).
    #[must_use]
    pub fn reconnect_max_delay(mut self, delay: Duration) -> Self {
        self.reconnect_max_delay = delay;
        self
    }

    /// The key prefix.
    #[must_use]
    pub fn key_prefix(&self) -> KeyPrefix {
        KeyPrefix::new(self.prefix.clone())
    }

    /// The response timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.response_timeout
    }

    /// The connection manager's settings: connect and response timeouts, reconnection
    /// attempts and their back-off.
    #[must_use]
    pub fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(self.reconnect_retries)
            .set_min_delay(Duration::from_millis(100).min(self.reconnect_max_delay))
            .set_max_delay(self.reconnect_max_delay)
    }

    /// Connects (the first connection is made now, with the configured retries) and
    /// returns a reconnecting connection.
    ///
    /// # Errors
    /// [`Error::is_config`] for a URL that does not parse; [`Error::is_unavailable`]
    /// when the server cannot be reached.
    pub async fn connect(&self) -> Result<RedisConnection, Error> {
        let client = redis::Client::open(self.url.as_str()).map_err(Error::config)?;
        let manager = tokio::time::timeout(
            self.connect_budget(),
            client.get_connection_manager_with_config(self.manager_config()),
        )
        .await
        .map_err(Error::timeout)??;
        Ok(RedisConnection::new(
            manager,
            self.key_prefix(),
            self.response_timeout,
        ))
    }

    /// The longest the first connection may take: every attempt and the pauses between.
    fn connect_budget(&self) -> Duration {
        let attempts = u32::try_from(self.reconnect_retries.saturating_add(1)).unwrap_or(u32::MAX);
        (self.connect_timeout + self.reconnect_max_delay).saturating_mul(attempts)
    }
}

/// The URL with its password (if any) replaced by `***`.
fn masked(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => {
            let user_info = &url[scheme_end..scheme_end + at];
            let user = user_info.split(':').next().unwrap_or_default();
            format!(
                "{}{user}:***{}",
                &url[..scheme_end],
                &url[scheme_end + at..]
            )
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            masked("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(masked("redis://user:pw@host/0"), "redis://user:***@host/0");
        assert_eq!(masked("redis://host:6379/"), "redis://host:6379/");
        assert_eq!(masked("not a url"), "not a url");
        let debug = format!("{:?}", RedisConfig::new("rediss://u:s3cret@h:1/"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn settings_reach_the_manager_config() {
        let config = RedisConfig::new("redis://h/")
            .connect_timeout(Duration::from_millis(300))
            .response_timeout(Duration::from_millis(400))
            .reconnect_retries(5)
            .reconnect_max_delay(Duration::from_millis(50));
        let manager = config.manager_config();
        assert_eq!(
            manager.connection_timeout(),
            Some(Duration::from_millis(300))
        );
        assert_eq!(manager.response_timeout(), Some(Duration::from_millis(400)));
        assert_eq!(manager.number_of_retries(), 5);
        assert_eq!(manager.max_delay(), Some(Duration::from_millis(50)));
        assert_eq!(manager.min_delay(), Duration::from_millis(50));
        assert_eq!(config.timeout(), Duration::from_millis(400));
        assert_eq!(config.connect_budget(), Duration::from_millis(350 * 6));
    }
}
