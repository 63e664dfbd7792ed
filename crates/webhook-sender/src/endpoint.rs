//! Endpoints: where an organization's webhooks go, how they are signed, and how hard the
//! sender tries.
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::domain::Domain;
//! use webhook_core::event::EventType;
//! use webhook_core::keys::EcdsaSigningKey;
//! use webhook_sender::{EndpointConfig, RateLimit, RetryPolicy};
//!
//! // Event style, signed with the organization's secret.
//! let events = EndpointConfig::event("org-1", "https://hooks.example.com/planbok",
//!         [EventType::TransactionConfirmed, EventType::WalletCreated])
//!     .timeout(Duration::from_secs(5))
//!     .max_concurrency(4)
//!     .rate_limit(RateLimit::per_second(50))
//!     .header("X-Tenant", "acme");
//!
//! // Domain style, with its own ECDSA key pair and the seed 001 schedule (the default).
//! let (key, _pkcs8) = EcdsaSigningKey::generate()?;
//! let domains = EndpointConfig::domain("org-1", "https://hooks.example.com/palisade", key,
//!         [Domain::Transaction, Domain::Wallet])
//!     .retry(RetryPolicy::domain_default());
//! # drop((events, domains));
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde::{Deserialize, Serialize};
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_core::keys::EcdsaSigningKey;
use webhook_core::{Style, scheme};

use crate::error::Error;
use crate::ids::{EndpointId, OrganizationId};
use crate::retry::RetryPolicy;
use crate::secret::{KeyRing, Secret, StoredKey};
use crate::store::StoredEndpoint;

/// Default per-attempt timeout (SPEC §4).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default per-endpoint concurrency cap.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 8;
const MAX_URL_LEN: usize = 2048;

/// Headers an endpoint's custom headers may not set: the scheme's own and transport ones.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "user-agent",
    scheme::EVENT_TIMESTAMP_HEADER,
    scheme::EVENT_SIGNATURE_HEADER,
    scheme::DOMAIN_SIGNATURE_HEADER,
    scheme::STANDARD_ID_HEADER,
    scheme::STANDARD_TIMESTAMP_HEADER,
    scheme::STANDARD_SIGNATURE_HEADER,
];

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

/// What to create or update an endpoint with.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    organization: OrganizationId,
    url: String,
    style: Style,
    subscriptions: Vec<String>,
    secrets: Vec<Secret>,
    retry: Option<RetryPolicy>,
    timeout: Duration,
    max_concurrency: u32,
    rate_limit: Option<RateLimit>,
    enabled: bool,
    headers: CustomHeaders,
}

/// Custom headers as configured. Their values may be credentials, so `Debug` shows names
/// only.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct CustomHeaders(Vec<(String, String)>);

impl fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
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
            enabled: true,
            headers: CustomHeaders::default(),
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
        let types = types.into_iter().map(|t| t.as_str().to_owned()).collect();
        Self::new(organization, url, Style::Event, types, Vec::new())
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
        let domains = domains.into_iter().map(|d| d.as_str().to_owned()).collect();
        Self::new(organization, url, Style::Domain, domains, vec![key.into()])
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
        let types = types.into_iter().map(|t| t.as_str().to_owned()).collect();
        Self::new(organization, url, Style::Standard, types, vec![key.into()])
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

    /// Whether the endpoint receives deliveries. Default is true.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Adds a header sent with every request. Scheme, transport and `User-Agent` headers
    /// cannot be set this way.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.0.push((name.into(), value.into()));
        self
    }

    /// The organization.
    #[must_use]
    pub fn organization(&self) -> &OrganizationId {
        &self.organization
    }

    /// The host of the URL, when it parses.
    pub(crate) fn host(&self) -> Option<String> {
        self.url
            .parse::<Uri>()
            .ok()
            .and_then(|uri| uri.host().map(str::to_owned))
    }

    pub(crate) fn style(&self) -> Style {
        self.style
    }

    pub(crate) fn has_own_secret(&self) -> bool {
        !self.secrets.is_empty()
    }
}

/// What the store keeps about an endpoint (serialized into [`StoredEndpoint::data`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EndpointSpec {
    pub(crate) id: EndpointId,
    pub(crate) organization: OrganizationId,
    pub(crate) url: String,
    pub(crate) style: Style,
    pub(crate) subscriptions: Vec<String>,
    pub(crate) keys: Vec<StoredKey>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout_ms: u64,
    pub(crate) max_concurrency: u32,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) enabled: bool,
    pub(crate) disabled_reason: Option<String>,
    pub(crate) headers: CustomHeaders,
}

/// A live endpoint: its spec, parsed.
pub(crate) struct Endpoint {
    pub(crate) spec: EndpointSpec,
    pub(crate) uri: Uri,
    pub(crate) keys: KeyRing,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.spec.id)
            .field("organization", &self.spec.organization)
            .field("style", &self.spec.style)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Validates a config into a live endpoint.
    pub(crate) fn from_config(
        id: EndpointId,
        config: EndpointConfig,
        max_timeout: Duration,
    ) -> Result<Self, Error> {
        if !config.organization.is_valid() {
            return Err(Error::config(
                "organization id must be 1 to 256 bytes without control characters",
            ));
        }
        if config.subscriptions.is_empty() {
            return Err(Error::config("an endpoint must subscribe to something"));
        }
        let all_fit = config.secrets.iter().all(|s| s.fits(config.style));
        match config.style {
            Style::Event if !all_fit => {
                return Err(Error::config(
                    "event-style endpoints sign with HMAC secrets",
                ));
            }
            Style::Domain if config.secrets.len() != 1 || !all_fit => {
                return Err(Error::config(
                    "domain-style endpoints sign with one ECDSA key",
                ));
            }
            Style::Standard if config.secrets.is_empty() || !all_fit => {
                return Err(Error::config(
                    "Standard Webhooks endpoints sign with an HMAC secret or an Ed25519 key",
                ));
            }
            _ => {}
        }
        let retry = config.retry.unwrap_or_else(|| match config.style {
            Style::Domain => RetryPolicy::domain_default(),
            _ => RetryPolicy::event_default(),
        });
        if !retry.is_valid() {
            return Err(Error::config(
                "a retry policy must allow at least one attempt",
            ));
        }
        if config.timeout.is_zero() || config.timeout > max_timeout {
            return Err(Error::config(format!(
                "timeout must be between 1 ms and {} ms (half the lease)",
                max_timeout.as_millis()
            )));
        }
        if config.max_concurrency == 0 {
            return Err(Error::config("max_concurrency must be at least 1"));
        }
        let spec = EndpointSpec {
            id,
            organization: config.organization,
            url: config.url,
            style: config.style,
            subscriptions: config.subscriptions,
            keys: KeyRing::new(config.secrets).to_stored(),
            retry,
            timeout_ms: u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX),
            max_concurrency: config.max_concurrency,
            rate_limit: config.rate_limit,
            enabled: config.enabled,
            disabled_reason: None,
            headers: config.headers,
        };
        Self::from_spec(spec)
    }

    /// Parses a stored spec.
    pub(crate) fn from_spec(spec: EndpointSpec) -> Result<Self, Error> {
        let uri = parse_url(&spec.url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers.0 {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| Error::config(format!("invalid header name {name:?}")))?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(Error::config(format!("header {name} cannot be set")));
            }
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| Error::config(format!("invalid value for header {name}")))?;
            headers.append(name, value);
        }
        let keys = KeyRing::from_stored(&spec.keys)
            .map_err(|e| Error::config(format!("stored key: {e}")))?;
        Ok(Self {
            timeout: Duration::from_millis(spec.timeout_ms),
            uri,
            keys,
            headers,
            spec,
        })
    }

    /// The form the store keeps.
    pub(crate) fn to_stored(&self) -> Result<StoredEndpoint, Error> {
        let mut spec = self.spec.clone();
        spec.keys = self.keys.to_stored();
        Ok(StoredEndpoint {
            id: spec.id,
            max_concurrency: spec.max_concurrency,
            enabled: spec.enabled,
            data: serde_json::to_vec(&spec)
                .map_err(|e| Error::config(format!("endpoint does not serialize: {e}")))?,
        })
    }

    /// Reads a stored endpoint.
    pub(crate) fn from_stored(stored: &StoredEndpoint) -> Result<Self, Error> {
        let spec: EndpointSpec = serde_json::from_slice(&stored.data)
            .map_err(|e| Error::config(format!("stored endpoint {}: {e}", stored.id)))?;
        Self::from_spec(spec)
    }

    /// Whether a publish of `kind` in `style` family goes to this endpoint.
    pub(crate) fn wants(&self, domain_publish: bool, kind: &str) -> bool {
        let style_matches = match self.spec.style {
            Style::Domain => domain_publish,
            Style::Event | Style::Standard => !domain_publish,
        };
        self.spec.enabled && style_matches && self.spec.subscriptions.iter().any(|s| s == kind)
    }

    /// A public view.
    pub(crate) fn info(&self) -> EndpointInfo {
        EndpointInfo {
            id: self.spec.id,
            organization: self.spec.organization.clone(),
            url: self.spec.url.clone(),
            style: self.spec.style,
            subscriptions: self.spec.subscriptions.clone(),
            enabled: self.spec.enabled,
            disabled_reason: self.spec.disabled_reason.clone(),
            retry: self.spec.retry.clone(),
            timeout: self.timeout,
            max_concurrency: self.spec.max_concurrency,
            rate_limit: self.spec.rate_limit,
            signing_keys: self.keys.all().count(),
        }
    }
}

fn parse_url(url: &str) -> Result<Uri, Error> {
    if url.len() > MAX_URL_LEN {
        return Err(Error::config("URL is too long"));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| Error::config("URL does not parse"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(Error::config("URL must be http or https")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| Error::config("URL has no host"))?;
    if authority.as_str().contains('@') {
        return Err(Error::config("URL must not carry credentials"));
    }
    if authority.host().is_empty() {
        return Err(Error::config("URL has no host"));
    }
    Ok(uri)
}

/// What [`Endpoints::get`](crate::Endpoints::get) tells about an endpoint (no secrets).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// The endpoint.
    pub id: EndpointId,
    /// Its organization.
    pub organization: OrganizationId,
    /// Where it receives.
    pub url: String,
    /// Its wire style.
    pub style: Style,
    /// Event types or domains it subscribes to.
    pub subscriptions: Vec<String>,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Why it was disabled, when the sender disabled it (`410 Gone`).
    pub disabled_reason: Option<String>,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// Its per-attempt timeout.
    pub timeout: Duration,
    /// Its concurrency cap.
    pub max_concurrency: u32,
    /// Its rate cap.
    pub rate_limit: Option<RateLimit>,
    /// How many signing secrets it holds (more than one during a rotation).
    pub signing_keys: usize,
}

/// Every live endpoint, by id and by organization.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    endpoints: HashMap<EndpointId, std::sync::Arc<Endpoint>>,
    by_organization: HashMap<OrganizationId, Vec<EndpointId>>,
}

impl Registry {
    pub(crate) fn insert(&mut self, endpoint: Endpoint) {
        let id = endpoint.spec.id;
        if let Some(old) = self.endpoints.get(&id) {
            let organization = old.spec.organization.clone();
            if let Some(ids) = self.by_organization.get_mut(&organization) {
                ids.retain(|e| *e != id);
            }
        }
        self.by_organization
            .entry(endpoint.spec.organization.clone())
            .or_default()
            .push(id);
        self.endpoints.insert(id, std::sync::Arc::new(endpoint));
    }

    pub(crate) fn get(&self, id: EndpointId) -> Option<std::sync::Arc<Endpoint>> {
        self.endpoints.get(&id).cloned()
    }

    pub(crate) fn of_organization(
        &self,
        organization: &OrganizationId,
    ) -> impl Iterator<Item = &std::sync::Arc<Endpoint>> {
        self.by_organization
            .get(organization)
            .into_iter()
            .flatten()
            .filter_map(|id| self.endpoints.get(id))
    }
}

/// Creates, updates, disables and rotates endpoints. Obtained from
/// [`Sender::endpoints`](crate::Sender::endpoints).
#[derive(Debug, Clone, Copy)]
pub struct Endpoints<'a> {
    pub(crate) shared: &'a crate::sender::Shared,
}

impl Endpoints<'_> {
    /// Creates an endpoint and returns its id.
    ///
    /// # Errors
    /// [`Error::is_invalid`] for a bad configuration (URL, subscriptions, keys, timeout,
    /// headers; an event-style endpoint without a secret of its own whose organization has
    /// none), [`Error::is_forbidden_address`] when the host is an address the SSRF guard
    /// refuses, [`Error::is_store`] when it could not be saved.
    pub async fn create(&self, config: EndpointConfig) -> Result<EndpointId, Error> {
        self.shared.check_open()?;
        self.check(&config).await?;
        let id = EndpointId::generate();
        let endpoint = Endpoint::from_config(id, config, self.max_timeout())?;
        let _guard = self.shared.config_write.lock().await;
        self.save(endpoint).await?;
        Ok(id)
    }

    /// Replaces an endpoint's configuration (its organization cannot change). Deliveries
    /// already queued keep their place and are sent with the new settings.
    ///
    /// # Errors
    /// As [`Endpoints::create`], plus [`Error::is_not_found`].
    pub async fn update(&self, id: EndpointId, config: EndpointConfig) -> Result<(), Error> {
        self.shared.check_open()?;
        self.check(&config).await?;
        let _guard = self.shared.config_write.lock().await;
        let current = self.current(id)?;
        if current.spec.organization != config.organization {
            return Err(Error::config(
                "an endpoint cannot move to another organization",
            ));
        }
        let endpoint = Endpoint::from_config(id, config, self.max_timeout())?;
        crate::sender::lock(&self.shared.breakers).reset(id);
        self.save(endpoint).await
    }

    /// Stops deliveries to the endpoint. Its queued deliveries wait (they are not failed)
    /// and new events are not queued for it.
    ///
    /// # Errors
    /// [`Error::is_not_found`], [`Error::is_store`].
    pub async fn disable(&self, id: EndpointId) -> Result<(), Error> {
        self.set_enabled(id, false, None).await
    }

    /// Resumes deliveries to a disabled endpoint.
    ///
    /// # Errors
    /// [`Error::is_not_found`], [`Error::is_store`].
    pub async fn enable(&self, id: EndpointId) -> Result<(), Error> {
        crate::sender::lock(&self.shared.breakers).reset(id);
        self.set_enabled(id, true, None).await
    }

    /// Rotates the endpoint's signing secret: `new` signs from now on, and the current one
    /// keeps signing beside it for `overlap` (see [`Secret`] for the domain style, whose
    /// header carries one signature). For an event-style endpoint that signed with its
    /// organization's secret, the endpoint gets a secret of its own.
    ///
    /// # Errors
    /// [`Error::is_invalid`] when `new` does not fit the endpoint's style;
    /// [`Error::is_not_found`], [`Error::is_store`].
    pub async fn rotate_secret(
        &self,
        id: EndpointId,
        new: impl Into<Secret>,
        overlap: Duration,
    ) -> Result<(), Error> {
        self.shared.check_open()?;
        let new = new.into();
        let _guard = self.shared.config_write.lock().await;
        let current = self.current(id)?;
        if !new.fits(current.spec.style) {
            return Err(Error::config(format!(
                "a {} key cannot sign for a {}-style endpoint",
                new.algorithm(),
                current.spec.style
            )));
        }
        let now = self.shared.now_ms();
        let mut keys = current.keys.clone();
        if keys.is_empty() {
            // It signed with the organization's secrets: keep those during the overlap.
            if let Some(org) = self.shared.organization(&current.spec.organization) {
                keys = org.secrets.clone();
            }
        }
        keys.rotate(
            new,
            now,
            now.saturating_add(crate::delivery::duration_millis(overlap)),
        );
        let mut spec = current.spec.clone();
        spec.keys = keys.to_stored();
        self.save(Endpoint::from_spec(spec)?).await
    }

    /// An endpoint's settings (never its secrets).
    #[must_use]
    pub fn get(&self, id: EndpointId) -> Option<EndpointInfo> {
        self.shared.endpoint(id).map(|endpoint| endpoint.info())
    }

    /// Every endpoint of an organization.
    #[must_use]
    pub fn list(&self, organization: &OrganizationId) -> Vec<EndpointInfo> {
        let registry = self
            .shared
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        registry
            .of_organization(organization)
            .map(|endpoint| endpoint.info())
            .collect()
    }

    pub(crate) async fn set_enabled(
        &self,
        id: EndpointId,
        enabled: bool,
        reason: Option<String>,
    ) -> Result<(), Error> {
        let _guard = self.shared.config_write.lock().await;
        let current = self.current(id)?;
        let mut spec = current.spec.clone();
        spec.keys = current.keys.to_stored();
        spec.enabled = enabled;
        spec.disabled_reason = if enabled { None } else { reason };
        self.save(Endpoint::from_spec(spec)?).await
    }

    fn current(&self, id: EndpointId) -> Result<std::sync::Arc<Endpoint>, Error> {
        self.shared
            .endpoint(id)
            .ok_or_else(|| Error::not_found("endpoint"))
    }

    fn max_timeout(&self) -> Duration {
        self.shared.settings.lease / 2
    }

    async fn check(&self, config: &EndpointConfig) -> Result<(), Error> {
        if config.style() == Style::Event
            && !config.has_own_secret()
            && self
                .shared
                .organization(config.organization())
                .is_none_or(|org| org.secrets.is_empty())
        {
            return Err(Error::config(
                "event-style endpoint has no secret and its organization has none",
            ));
        }
        let host = config
            .host()
            .ok_or_else(|| Error::config("URL has no host"))?;
        self.shared.client.check_host(&host).await
    }

    async fn save(&self, endpoint: Endpoint) -> Result<(), Error> {
        self.shared
            .store
            .put_endpoint(endpoint.to_stored()?)
            .await?;
        self.shared.put_endpoint(endpoint);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use webhook_core::keys::HmacSecret;

    use super::*;

    #[test]
    fn debug_shows_no_secret_and_no_header_value() {
        let config = EndpointConfig::event("org", "https://h.example/", [EventType::WalletCreated])
            .secret(HmacSecret::from_utf8("hunter2-secret").unwrap())
            .header("Authorization", "Bearer top-secret-token");
        let endpoint =
            Endpoint::from_config(EndpointId::generate(), config.clone(), DEFAULT_TIMEOUT).unwrap();
        let debug = format!("{config:?} {endpoint:?} {:?}", endpoint.spec);
        assert!(debug.contains("Authorization"), "{debug}");
        for secret in ["hunter2", "top-secret-token"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn every_given_secret_signs_and_each_must_fit_the_style() {
        let secret = |text: &str| Secret::from(HmacSecret::from_utf8(text).unwrap());
        let config = EndpointConfig::event("org", "https://h.example/", [EventType::WalletCreated])
            .secrets([secret("old"), secret("new")]);
        let endpoint =
            Endpoint::from_config(EndpointId::generate(), config, DEFAULT_TIMEOUT).unwrap();
        assert_eq!(endpoint.keys.active(0).count(), 2);

        let (key, _) = EcdsaSigningKey::generate().unwrap();
        let mixed = EndpointConfig::event("org", "https://h.example/", [EventType::WalletCreated])
            .secrets([secret("s"), Secret::from(key.clone())]);
        assert!(Endpoint::from_config(EndpointId::generate(), mixed, DEFAULT_TIMEOUT).is_err());
        let two_domain_keys =
            EndpointConfig::domain("org", "https://h.example/", key.clone(), [Domain::Wallet])
                .secrets([key.clone(), key]);
        assert!(
            Endpoint::from_config(EndpointId::generate(), two_domain_keys, DEFAULT_TIMEOUT)
                .is_err()
        );
    }

    #[test]
    fn stored_endpoints_round_trip() {
        let (key, _) = EcdsaSigningKey::generate().unwrap();
        let config = EndpointConfig::domain("org", "https://h.example/x", key, [Domain::Wallet])
            .rate_limit(RateLimit::per_second(3))
            .header("X-A", "1");
        let endpoint =
            Endpoint::from_config(EndpointId::generate(), config, DEFAULT_TIMEOUT).unwrap();
        let back = Endpoint::from_stored(&endpoint.to_stored().unwrap()).unwrap();
        assert_eq!(back.info(), endpoint.info());
        assert_eq!(back.headers["x-a"], "1");
        assert_eq!(back.spec.retry, RetryPolicy::domain_default());
        assert!(back.wants(true, "WALLET"));
        assert!(
            !back.wants(false, "WALLET"),
            "event publishes never reach domain endpoints"
        );
    }
}
