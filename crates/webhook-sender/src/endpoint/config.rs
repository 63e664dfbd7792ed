//! What an endpoint is created with ([`EndpointConfig`]) and changed with
//! ([`EndpointUpdate`]).

use std::fmt;
use std::time::Duration;

use http::Uri;
use serde::{Deserialize, Serialize};
use webhook_core::Style;
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_core::keys::EcdsaSigningKey;

use crate::ids::OrganizationId;
use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// Default per-attempt timeout (SPEC §4).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default per-endpoint concurrency cap.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 8;

/// An endpoint's delivery rate cap: at most `per_second` attempts per second, in bursts of
/// at most `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    per_second: u32,
}

impl RateLimit {
    /// At most `n` attempts per second (at least 1).
    #[must_use]
    pub fn per_second(n: u32) -> Self {
        Self {
            per_second: n.max(1),
        }
    }

    /// Attempts per second.
    #[must_use]
    pub fn rate(&self) -> u32 {
        self.per_second
    }
}

/// Custom headers as configured. Their values may be credentials, so `Debug` shows names
/// only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct CustomHeaders(pub(crate) Vec<(String, String)>);

impl fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// What to create an endpoint with.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub(crate) organization: OrganizationId,
    pub(crate) url: String,
    pub(crate) style: Style,
    pub(crate) subscriptions: Vec<String>,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) timeout: Duration,
    pub(crate) max_concurrency: u32,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) paused: bool,
    pub(crate) headers: CustomHeaders,
    pub(crate) description: String,
}

impl EndpointConfig {
    fn new(
        organization: impl Into<OrganizationId>,
        url: impl Into<String>,
        style: Style,
        subscriptions: Vec<String>,
        secrets: Vec<Secret>,
    ) -> Self {
        Self {
            organization: organization.into(),
            url: url.into(),
            style,
            subscriptions,
            secrets,
            retry: None,
            timeout: DEFAULT_TIMEOUT,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            rate_limit: None,
            paused: false,
            headers: CustomHeaders::default(),
            description: String::new(),
        }
    }

    /// An event-style endpoint (seed 000) subscribed to `types`. It signs with the
    /// organization's webhook secret unless given its own with [`EndpointConfig::secret`].
    #[must_use]
    pub fn event(
        organization: impl Into<OrganizationId>,
        url: impl Into<String>,
        types: impl IntoIterator<Item = EventType>,
    ) -> Self {
        Self::new(
            organization,
            url,
            Style::Event,
            type_names(types),
            Vec::new(),
        )
    }

    /// A domain-style endpoint (seed 001) subscribed to `domains`, signing with its own
    /// ECDSA P-256 key pair.
    #[must_use]
    pub fn domain(
        organization: impl Into<OrganizationId>,
        url: impl Into<String>,
        key: EcdsaSigningKey,
        domains: impl IntoIterator<Item = Domain>,
    ) -> Self {
        Self::new(
            organization,
            url,
            Style::Domain,
            domain_names(domains),
            vec![key.into()],
        )
    }

    /// A Standard Webhooks endpoint subscribed to event `types`, signing with an HMAC
    /// secret (`v1`) or an Ed25519 key (`v1a`).
    #[must_use]
    pub fn standard(
        organization: impl Into<OrganizationId>,
        url: impl Into<String>,
        key: impl Into<Secret>,
        types: impl IntoIterator<Item = EventType>,
    ) -> Self {
        Self::new(
            organization,
            url,
            Style::Standard,
            type_names(types),
            vec![key.into()],
        )
    }

    /// Signs with this secret (replacing any other). For event style, this endpoint then
    /// no longer uses the organization's secret. Default: none for event style (the
    /// organization's), the key given to the constructor otherwise.
    #[must_use]
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets = vec![secret.into()];
        self
    }

    /// Signs with all of these secrets at once, as during a rotation's overlap (replacing
    /// any other). The domain style takes exactly one key.
    #[must_use]
    pub fn secrets<S: Into<Secret>>(mut self, secrets: impl IntoIterator<Item = S>) -> Self {
        self.secrets = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// The retry policy. Default is [`RetryPolicy::domain_default`] for domain style and
    /// [`RetryPolicy::event_default`] otherwise.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The per-attempt timeout, covering connecting, sending and reading the response head
    /// and the start of its body. Default is 15 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// At most this many attempts to this endpoint at once. Default is 8.
    #[must_use]
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = n;
        self
    }

    /// A rate cap. Default is none. It is enforced by each sender process on its own
    /// claims: with several sender nodes on one Redis, the endpoint receives up to the
    /// number of nodes times this rate (the concurrency cap, by contrast, is counted over
    /// all nodes).
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Creates the endpoint paused: deliveries queue up for it and none is sent until it
    /// is resumed. Default is active.
    #[must_use]
    pub fn paused(mut self) -> Self {
        self.paused = true;
        self
    }

    /// Adds a header sent with every request. Scheme, transport and `User-Agent` headers
    /// cannot be set this way.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.0.push((name.into(), value.into()));
        self
    }

    /// A note about the endpoint for operators, at most 1 KiB. Default: empty.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The organization.
    #[must_use]
    pub fn organization(&self) -> &OrganizationId {
        &self.organization
    }

    /// The host of the URL, when it parses.
    pub(crate) fn host(&self) -> Option<String> {
        host_of(&self.url)
    }

    pub(crate) fn style(&self) -> webhook_core::Style {
        self.style
    }

    pub(crate) fn has_own_secret(&self) -> bool {
        !self.secrets.is_empty()
    }
}

/// A partial change to an endpoint: only what is set changes; its keys and their rotation
/// state, its organization, style and state are kept (rotate keys with
/// [`Endpoints::rotate_secret`](crate::Endpoints::rotate_secret), pause with
/// [`Endpoints::pause`](crate::Endpoints::pause)).
///
/// ```
/// use std::time::Duration;
/// use webhook_core::event::EventType;
/// use webhook_sender::EndpointUpdate;
///
/// let update = EndpointUpdate::default()
///     .url("https://hooks.example.com/v2")
///     .event_types([EventType::TransactionConfirmed])
///     .timeout(Duration::from_secs(5));
/// # drop(update);
/// ```
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub(crate) url: Option<String>,
    pub(crate) subscriptions: Option<Subscriptions>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_concurrency: Option<u32>,
    pub(crate) rate_limit: Option<Option<RateLimit>>,
    pub(crate) headers: Option<CustomHeaders>,
    pub(crate) description: Option<String>,
}

/// New subscriptions, which must fit the endpoint's style.
#[derive(Debug, Clone)]
pub(crate) enum Subscriptions {
    EventTypes(Vec<String>),
    Domains(Vec<String>),
}

impl EndpointUpdate {
    /// A new URL (checked by the SSRF guard as at creation).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// New event types, for an event-style or Standard Webhooks endpoint.
    #[must_use]
    pub fn event_types(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.subscriptions = Some(Subscriptions::EventTypes(type_names(types)));
        self
    }

    /// New domains, for a domain-style endpoint.
    #[must_use]
    pub fn domains(mut self, domains: impl IntoIterator<Item = Domain>) -> Self {
        self.subscriptions = Some(Subscriptions::Domains(domain_names(domains)));
        self
    }

    /// A new retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// A new per-attempt timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A new concurrency cap.
    #[must_use]
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = Some(n);
        self
    }

    /// A new rate cap, or none.
    #[must_use]
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Replaces the custom headers with these.
    #[must_use]
    pub fn headers<N: Into<String>, V: Into<String>>(
        mut self,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        self.headers = Some(CustomHeaders(
            headers
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        ));
        self
    }

    /// A new description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

fn type_names(types: impl IntoIterator<Item = EventType>) -> Vec<String> {
    types.into_iter().map(|t| t.as_str().to_owned()).collect()
}

fn domain_names(domains: impl IntoIterator<Item = Domain>) -> Vec<String> {
    domains.into_iter().map(|d| d.as_str().to_owned()).collect()
}

/// The host of a URL, when it parses.
pub(crate) fn host_of(url: &str) -> Option<String> {
    url.parse::<Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned))
}
