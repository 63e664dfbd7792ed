//! [`Builder`]: every setting of a [`Sender`], with its default.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use webhook_sender::{AllowList, BreakerConfig, Sender};
//! use webhook_sender::store::RedbStore;
//!
//! let dir = tempfile::tempdir()?;
//! let sender = Sender::builder()
//!     .store(RedbStore::open(dir.path().join("webhooks.redb"))?)
//!     .workers(128)
//!     .lease(Duration::from_secs(120))
//!     .breaker(BreakerConfig { threshold: 10, cooldown: Duration::from_secs(60) })
//!     .allow_private_networks(AllowList::loopback()) // development only
//!     .build()
//!     .await?;
//! sender.shutdown().await?;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use webhook_core::clock::{Clock, SystemClock};
use webhook_core::redaction::Redactor;

use crate::circuit::BreakerConfig;
use crate::config::LiveConfig;
use crate::dispatch::{Engine, Settings};
use crate::error::Error;
use crate::http::{AllowList, ClientSettings, HttpClient, Resolve, SystemResolver, tls};
use crate::retention::Retention;
use crate::sender::Sender;
use crate::store::Store;

/// How long a claimed delivery is leased unless [`Builder::lease`] says otherwise: 120 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Builds a [`Sender`]. Obtained from [`Sender::builder`].
pub struct Builder {
    store: Option<Arc<dyn Store>>,
    /// The store, when it is the Postgres store: what `Sender::publish_in` enqueues with.
    #[cfg(feature = "postgres")]
    postgres: Option<crate::store::PostgresStore>,
    clock: Arc<dyn Clock>,
    redactor: Redactor,
    workers: usize,
    lease: Duration,
    breaker: BreakerConfig,
    shutdown_timeout: Duration,
    idle_poll: Duration,
    retention: Retention,
    outcome_capacity: usize,
    allow: AllowList,
    resolver: Arc<dyn Resolve>,
    extra_roots: Vec<CertificateDer<'static>>,
    root_error: Option<Error>,
    connect_timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("store", &self.store)
            .field("workers", &self.workers)
            .field("lease", &self.lease)
            .field("breaker", &self.breaker)
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Every setting at its default.
    #[must_use]
    pub fn new() -> Self {
        Self {
            store: None,
            #[cfg(feature = "postgres")]
            postgres: None,
            clock: Arc::new(SystemClock),
            redactor: Redactor::default(),
            workers: 64,
            lease: DEFAULT_LEASE,
            breaker: BreakerConfig::default(),
            shutdown_timeout: Duration::from_secs(30),
            idle_poll: Duration::from_secs(1),
            retention: Retention::default(),
            outcome_capacity: 1024,
            allow: AllowList::none(),
            resolver: Arc::new(SystemResolver),
            extra_roots: Vec::new(),
            root_error: None,
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
        }
    }

    /// Where messages and deliveries are kept. Required: there is no default, so that no
    /// sender runs on memory by accident. [`RedbStore`](crate::store::RedbStore) is the
    /// embedded, durable choice; [`MemoryStore`](crate::store::MemoryStore) loses
    /// everything on exit (tests, examples); `RedisStore` (feature `redis`) is shared by
    /// several nodes.
    #[must_use]
    pub fn store(mut self, store: impl Store) -> Self {
        #[cfg(feature = "postgres")]
        {
            let any: &dyn std::any::Any = &store;
            self.postgres = any.downcast_ref::<crate::store::PostgresStore>().cloned();
        }
        self.store = Some(Arc::new(store));
        self
    }

    /// The clock for timestamps, due times and windows. Default is the system clock.
    /// Waiting still uses tokio's timer, so a manual clock that jumps ahead is noticed at
    /// the next wake-up (at most [`Builder::idle_poll`] later).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Redaction rules by event type or domain. Default is [`Redactor::default`]: e-mail
    /// addresses masked, `internal*` and `metadata` fields dropped.
    #[must_use]
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// At most this many attempts run at once, over all endpoints. Default is 64.
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// How long a claimed delivery is leased: if its sender dies, it is attempted again
    /// after this long. Endpoint timeouts may be at most half of it. Default is 120 s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(10));
        self
    }

    /// Circuit breaker settings. Default is 5 consecutive failures, 30 s cool-down.
    #[must_use]
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// How long [`Sender::shutdown`] waits for attempts in flight before abandoning (and
    /// releasing) them. Default is 30 s.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The longest the scheduler sleeps without checking the store. Default is 1 s.
    #[must_use]
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.idle_poll = every.max(Duration::from_millis(1));
        self
    }

    /// How long finished deliveries and their messages are kept. Default is
    /// [`Retention::default`]: delivered 7 days, failed and cancelled 30 days.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How many outcomes a slow [`Sender::outcomes`] receiver may fall behind before it
    /// loses the oldest. Default is 1024.
    #[must_use]
    pub fn outcome_capacity(mut self, capacity: usize) -> Self {
        self.outcome_capacity = capacity.max(1);
        self
    }

    /// Address ranges the SSRF guard lets through although they are loopback, private,
    /// link-local and so on. Default is none: only public addresses. Development and tests
    /// on 127.0.0.1 need [`AllowList::loopback`].
    #[must_use]
    pub fn allow_private_networks(mut self, allow: AllowList) -> Self {
        self.allow = allow;
        self
    }

    /// How host names are resolved. Default is the system resolver.
    #[must_use]
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Trusts the certificates of a PEM bundle as roots, beside the webpki roots.
    /// Default is the webpki roots only.
    #[must_use]
    pub fn tls_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        match tls::parse_pem(pem) {
            Ok(certs) => self.extra_roots.extend(certs),
            Err(error) => self.root_error = Some(error),
        }
        self
    }

    /// Trusts a DER certificate as a root, beside the webpki roots.
    #[must_use]
    pub fn tls_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(CertificateDer::from(der.into()));
        self
    }

    /// How long a TCP connect may take (per address). Default is 10 s; the endpoint's
    /// timeout bounds the whole attempt anyway.
    #[must_use]
    pub fn http_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept. Default is 90 s.
    #[must_use]
    pub fn http_pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// At most this many idle connections per host. Default is 32.
    #[must_use]
    pub fn http_pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// Loads endpoints and organizations from the store and starts the engine on the
    /// current tokio runtime.
    ///
    /// # Errors
    /// [`Error::is_invalid`] without a store, for a bad TLS root or a stored endpoint that
    /// no longer parses,
    /// [`Error::is_store`] when the store cannot be read.
    pub async fn build(self) -> Result<Sender, Error> {
        if let Some(error) = self.root_error {
            return Err(error);
        }
        let client = HttpClient::new(ClientSettings {
            allow: self.allow,
            resolver: self.resolver,
            extra_roots: self.extra_roots,
            connect_timeout: self.connect_timeout,
            pool_idle_timeout: self.pool_idle_timeout,
            pool_max_idle_per_host: self.pool_max_idle_per_host,
        })?;
        let store = self.store.ok_or_else(|| {
            Error::config(
                "no store: call Builder::store with RedbStore::open(path) (durable), \
                 MemoryStore::new() (tests) or a RedisStore",
            )
        })?;
        // Read the version first: a change made while loading moves it past this one,
        // and the next sync loads again.
        let config_version = store.config_version().await?;
        let snapshot = store.load().await?;
        let config = Arc::new(LiveConfig::from_snapshot(&snapshot, config_version)?);
        #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
        let mut engine = Engine::new(
            store,
            self.clock,
            config,
            client,
            Settings {
                workers: self.workers,
                lease: self.lease,
                shutdown_timeout: self.shutdown_timeout,
                idle_poll: self.idle_poll,
                retention: self.retention,
            },
            self.breaker,
            self.outcome_capacity,
        );
        #[cfg(feature = "postgres")]
        {
            engine.postgres = self.postgres;
        }
        Ok(Sender::start(Arc::new(engine), self.redactor))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sender_without_a_store_is_refused() {
        let error = Builder::new().build().await.unwrap_err();
        assert!(error.is_invalid(), "{error}");
        assert!(error.to_string().contains("no store"), "{error}");
    }
}
