//! [`WebhookLayer`]: the middleware's configuration.

use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::Webhook;
use crate::Verifier;
use crate::dedup::{DEFAULT_CAPACITY, DedupStore, MemoryStore};
use crate::observer::{Observation, Observer};

/// How long a handled delivery's key is remembered unless configured otherwise: 1 hour.
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(3600);

/// How long a request may hold a key while its handler runs, unless configured
/// otherwise: 300 s.
pub const DEFAULT_PROCESSING_LEASE: Duration = Duration::from_secs(300);

/// Configuration of the webhook middleware; [`Layer::layer`] wraps a handler in a
/// [`Webhook`] service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookLayer {
    pub(super) config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) verifier: Verifier,
    pub(super) store: Arc<dyn DedupStore>,
    pub(super) dedup_ttl: Duration,
    pub(super) lease: Duration,
    pub(super) observer: Option<Observer>,
}

/// How much longer than the verifier's replay horizon a done key is kept before a full
/// memory store may drop it: covers whole-second timestamps and a little clock drift.
pub(super) const REPLAY_SAFE_MARGIN: Duration = Duration::from_secs(60);

impl Config {
    /// After how long a done key can no longer let a replay through (the replay
    /// horizon plus [`REPLAY_SAFE_MARGIN`]); `None` when the freshness checks are off.
    pub(super) fn replay_safe_age(&self) -> Option<Duration> {
        self.verifier
            .replay_horizon()
            .map(|horizon| horizon.saturating_add(REPLAY_SAFE_MARGIN))
    }

    /// How long a done key is kept: the configured TTL, but never less than the
    /// verifier's replay horizon, or a captured request could be replayed after its key
    /// was forgotten and while its timestamp is still inside the window.
    pub(super) fn effective_ttl(&self) -> Duration {
        match self.verifier.replay_horizon() {
            Some(horizon) => self.dedup_ttl.max(horizon),
            None => self.dedup_ttl,
        }
    }
}

impl WebhookLayer {
    /// A layer for `verifier`, deduplicating in a [`MemoryStore`] of
    /// [`DEFAULT_CAPACITY`] keys that reads the verifier's clock.
    #[must_use]
    pub fn new(verifier: Verifier) -> Self {
        let store = MemoryStore::build(DEFAULT_CAPACITY, Arc::clone(verifier.clock_ref()));
        Self {
            config: Arc::new(Config {
                verifier,
                store: Arc::new(store),
                dedup_ttl: DEFAULT_DEDUP_TTL,
                lease: DEFAULT_PROCESSING_LEASE,
                observer: None,
            }),
        }
    }

    /// The dedup store. Default is a [`MemoryStore`] of [`DEFAULT_CAPACITY`] keys; use
    /// the Redis store (feature `redis`) when several processes serve one endpoint.
    #[must_use]
    pub fn dedup_store(self, store: impl DedupStore) -> Self {
        self.with(|config| config.store = Arc::new(store))
    }

    /// How long a handled delivery's key is remembered, so that a sender retry whose
    /// acknowledgement was lost is answered as a duplicate. Default is 1 hour. Never
    /// shorter than the verifier's [replay horizon](Verifier::replay_horizon), whatever
    /// is set: twice the tolerance for the event style and Standard Webhooks, the
    /// maximum resource age plus the tolerance (4 h 5 min by default) for the domain
    /// style.
    #[must_use]
    pub fn dedup_ttl(self, ttl: Duration) -> Self {
        self.with(|config| config.dedup_ttl = ttl)
    }

    /// How long a request may hold a delivery's key while its handler runs. Default is
    /// 300 s. A delivery whose holder dies (the process crashes) is handled again after
    /// the lease; a handler running longer than the lease may see a retry run
    /// concurrently, so keep it above your slowest handler (or use
    /// [`QuickAck`](crate::QuickAck)).
    #[must_use]
    pub fn processing_lease(self, lease: Duration) -> Self {
        self.with(|config| config.lease = lease)
    }

    /// Calls `observer` for every request answered without the handler: duplicates and
    /// rejections (see [`Observation`]). It runs on the request's task: keep it quick.
    #[must_use]
    pub fn observe(self, observer: impl Fn(Observation<'_>) + Send + Sync + 'static) -> Self {
        self.with(|config| config.observer = Some(Observer::new(observer)))
    }

    /// The verifier in use.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.config.verifier
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        Self {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for WebhookLayer {
    type Service = Webhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Webhook {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ttl_never_below_the_replay_horizon() {
        let verifier = Verifier::event_secrets(["s"])
            .unwrap()
            .tolerance(Duration::from_secs(600));
        let layer = WebhookLayer::new(verifier.clone()).dedup_ttl(Duration::from_secs(60));
        assert_eq!(layer.config.effective_ttl(), Duration::from_secs(1200));
        let layer = layer.dedup_ttl(Duration::from_secs(7200));
        assert_eq!(layer.config.effective_ttl(), Duration::from_secs(7200));

        let lax = WebhookLayer::new(verifier.dangerous().skip_timestamp_check())
            .dedup_ttl(Duration::from_secs(60));
        assert_eq!(lax.config.effective_ttl(), Duration::from_secs(60));
    }
}
