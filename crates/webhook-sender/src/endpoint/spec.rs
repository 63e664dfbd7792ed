//! An endpoint as stored ([`EndpointSpec`], versioned) and as live ([`Endpoint`]: parsed URL,
//! headers and keys), with the validation both go through.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde::{Deserialize, Serialize};
use webhook_core::{Style, scheme};

use super::config::{CustomHeaders, EndpointConfig, EndpointUpdate, RateLimit, Subscriptions};
use super::info::{EndpointInfo, EndpointState};
use crate::error::Error;
use crate::ids::{EndpointId, OrganizationId};
use crate::retry::RetryPolicy;
use crate::secret::{KeyRing, StoredKey};
use crate::store::StoredEndpoint;
use crate::store::record::{decode_versioned, encode_versioned};

const MAX_URL_LEN: usize = 2048;
const MAX_DESCRIPTION_LEN: usize = 1024;

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
    "traceparent",
    scheme::EVENT_TIMESTAMP_HEADER,
    scheme::EVENT_SIGNATURE_HEADER,
    scheme::DOMAIN_SIGNATURE_HEADER,
    scheme::STANDARD_ID_HEADER,
    scheme::STANDARD_TIMESTAMP_HEADER,
    scheme::STANDARD_SIGNATURE_HEADER,
];

/// What the store keeps about an endpoint (the versioned bytes of
/// [`StoredEndpoint::data`]).
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
    pub(crate) state: EndpointState,
    pub(crate) headers: CustomHeaders,
    pub(crate) created_at_ms: i64,
    #[serde(default)]
    pub(crate) description: String,
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

fn check_organization(organization: &OrganizationId) -> Result<(), Error> {
    if organization.is_valid() {
        Ok(())
    } else {
        Err(Error::config(
            "organization id must be 1 to 256 bytes without control characters",
        ))
    }
}

impl Endpoint {
    /// Validates a config into a live endpoint.
    pub(crate) fn from_config(
        id: EndpointId,
        config: EndpointConfig,
        max_timeout: Duration,
        now_ms: i64,
    ) -> Result<Self, Error> {
        check_organization(&config.organization)?;
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
            state: if config.paused {
                EndpointState::Paused
            } else {
                EndpointState::Active
            },
            headers: config.headers,
            created_at_ms: now_ms,
            description: config.description,
        };
        Self::checked(spec, max_timeout)
    }

    /// The endpoint with `update` applied: what is not set stays, keys included.
    pub(crate) fn updated(
        &self,
        update: EndpointUpdate,
        max_timeout: Duration,
    ) -> Result<Self, Error> {
        let mut spec = self.spec.clone();
        spec.keys = self.keys.to_stored();
        if let Some(url) = update.url {
            spec.url = url;
        }
        match (update.subscriptions, spec.style) {
            (None, _) => {}
            (Some(Subscriptions::Domains(domains)), Style::Domain) => spec.subscriptions = domains,
            (Some(Subscriptions::EventTypes(types)), Style::Event | Style::Standard) => {
                spec.subscriptions = types;
            }
            (Some(_), style) => {
                return Err(Error::config(format!(
                    "these subscriptions do not fit a {style}-style endpoint"
                )));
            }
        }
        if let Some(retry) = update.retry {
            spec.retry = retry;
        }
        if let Some(timeout) = update.timeout {
            spec.timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        }
        if let Some(n) = update.max_concurrency {
            spec.max_concurrency = n;
        }
        if let Some(limit) = update.rate_limit {
            spec.rate_limit = limit;
        }
        if let Some(headers) = update.headers {
            spec.headers = headers;
        }
        if let Some(description) = update.description {
            spec.description = description;
        }
        Self::checked(spec, max_timeout)
    }

    /// Checks the settings a config or update may change, then parses.
    fn checked(spec: EndpointSpec, max_timeout: Duration) -> Result<Self, Error> {
        if spec.subscriptions.is_empty() {
            return Err(Error::config("an endpoint must subscribe to something"));
        }
        spec.retry
            .validate()
            .map_err(|e| Error::config(format!("retry policy: {e}")))?;
        let max_ms = u64::try_from(max_timeout.as_millis()).unwrap_or(u64::MAX);
        if spec.timeout_ms == 0 || spec.timeout_ms > max_ms {
            return Err(Error::config(format!(
                "timeout must be between 1 ms and {max_ms} ms (half the lease)"
            )));
        }
        if spec.max_concurrency == 0 {
            return Err(Error::config("max_concurrency must be at least 1"));
        }
        if spec.description.len() > MAX_DESCRIPTION_LEN {
            return Err(Error::config("description must be at most 1024 bytes"));
        }
        Self::from_spec(spec)
    }

    /// Parses a spec.
    pub(crate) fn from_spec(spec: EndpointSpec) -> Result<Self, Error> {
        check_organization(&spec.organization)?;
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

    /// The same endpoint in another state.
    pub(crate) fn with_state(&self, state: EndpointState) -> Result<Self, Error> {
        let mut spec = self.spec.clone();
        spec.keys = self.keys.to_stored();
        spec.state = state;
        Self::from_spec(spec)
    }

    /// The same endpoint with other keys.
    pub(crate) fn with_keys(&self, keys: &KeyRing) -> Result<Self, Error> {
        let mut spec = self.spec.clone();
        spec.keys = keys.to_stored();
        Self::from_spec(spec)
    }

    /// The form the store keeps.
    pub(crate) fn to_stored(&self) -> Result<StoredEndpoint, Error> {
        let mut spec = self.spec.clone();
        spec.keys = self.keys.to_stored();
        Ok(StoredEndpoint::new(
            spec.id,
            spec.max_concurrency,
            spec.state == EndpointState::Active,
            encode_versioned(&spec),
        ))
    }

    /// Reads a stored endpoint.
    pub(crate) fn from_stored(stored: &StoredEndpoint) -> Result<Self, Error> {
        let spec: EndpointSpec = decode_versioned(&stored.data)?;
        Self::from_spec(spec)
    }

    /// Whether a publish of `kind` in the domain or the event family is queued for this
    /// endpoint: it subscribes, has the style, and is not disabled (a paused endpoint
    /// queues).
    pub(crate) fn wants(&self, domain_publish: bool, kind: &str) -> bool {
        let style_matches = match self.spec.style {
            Style::Domain => domain_publish,
            Style::Event | Style::Standard => !domain_publish,
        };
        !matches!(self.spec.state, EndpointState::Disabled { .. })
            && style_matches
            && self.spec.subscriptions.iter().any(|s| s == kind)
    }

    /// A public view.
    pub(crate) fn info(&self) -> EndpointInfo {
        EndpointInfo {
            id: self.spec.id,
            organization: self.spec.organization.clone(),
            url: self.spec.url.clone(),
            style: self.spec.style,
            subscriptions: self.spec.subscriptions.clone(),
            state: self.spec.state.clone(),
            retry: self.spec.retry.clone(),
            timeout: self.timeout,
            max_concurrency: self.spec.max_concurrency,
            rate_limit: self.spec.rate_limit,
            signing_keys: self.keys.all().count(),
            public_keys: self.keys.public_keys(),
            created_at_ms: self.spec.created_at_ms,
            description: self.spec.description.clone(),
            header_names: self.spec.headers.0.iter().map(|(n, _)| n.clone()).collect(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use webhook_core::domain::Domain;
    use webhook_core::event::EventType;
    use webhook_core::keys::{EcdsaSigningKey, HmacSecret};

    use super::*;
    use crate::endpoint::DEFAULT_TIMEOUT;
    use crate::secret::Secret;

    fn build(config: EndpointConfig) -> Result<Endpoint, Error> {
        Endpoint::from_config(EndpointId::generate(), config, DEFAULT_TIMEOUT, 0)
    }

    #[test]
    fn debug_shows_no_secret_and_no_header_value() {
        let config = EndpointConfig::event("org", "https://h.example/", [EventType::WalletCreated])
            .secret(HmacSecret::from_utf8("hunter2-secret").unwrap())
            .header("Authorization", "Bearer top-secret-token");
        let endpoint = build(config.clone()).unwrap();
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
        assert_eq!(build(config).unwrap().keys.active(0).count(), 2);

        let (key, _) = EcdsaSigningKey::generate().unwrap();
        let mixed = EndpointConfig::event("org", "https://h.example/", [EventType::WalletCreated])
            .secrets([secret("s"), Secret::from(key.clone())]);
        assert!(build(mixed).is_err());
        let two_domain_keys =
            EndpointConfig::domain("org", "https://h.example/", key.clone(), [Domain::Wallet])
                .secrets([key.clone(), key]);
        assert!(build(two_domain_keys).is_err());
    }

    #[test]
    fn stored_endpoints_round_trip() {
        let (key, _) = EcdsaSigningKey::generate().unwrap();
        let config = EndpointConfig::domain("org", "https://h.example/x", key, [Domain::Wallet])
            .rate_limit(RateLimit::per_second(3))
            .header("X-A", "1");
        let endpoint = build(config).unwrap();
        let back = Endpoint::from_stored(&endpoint.to_stored().unwrap()).unwrap();
        assert_eq!(back.info(), endpoint.info());
        assert_eq!(back.headers["x-a"], "1");
        assert_eq!(back.spec.retry, RetryPolicy::domain_default());
        assert!(back.wants(true, "WALLET"));
        assert!(
            !back.wants(false, "WALLET"),
            "event publishes never reach domain endpoints"
        );
        assert_eq!(back.info().public_keys.len(), 1);
        assert!(back.info().public_keys[0].starts_with("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"));
    }

    #[test]
    fn a_v1a_endpoint_shows_its_whpk_key_and_an_hmac_one_shows_none() {
        let key = webhook_core::keys::Ed25519SigningKey::generate().unwrap();
        let expected = key.public_key().to_whpk();
        let v1a = EndpointConfig::standard(
            "org",
            "https://h.example/",
            Secret::from(key),
            [EventType::WalletCreated],
        );
        let info = build(v1a).unwrap().info();
        assert_eq!(info.public_keys, vec![expected]);
        assert!(info.public_keys[0].starts_with("whpk_"));
        let hmac = EndpointConfig::event("org", "https://h.example/", [EventType::WalletCreated])
            .secret(HmacSecret::from_utf8("s").unwrap());
        assert!(build(hmac).unwrap().info().public_keys.is_empty());
    }

    #[test]
    fn an_update_changes_only_what_it_names() {
        let config = EndpointConfig::event("org", "https://h.example/", [EventType::WalletCreated])
            .secret(HmacSecret::from_utf8("s").unwrap())
            .max_concurrency(3)
            .header("X-A", "1");
        let endpoint = build(config).unwrap();
        let updated = endpoint
            .updated(
                EndpointUpdate::default().timeout(Duration::from_secs(2)),
                DEFAULT_TIMEOUT,
            )
            .unwrap();
        assert_eq!(updated.timeout, Duration::from_secs(2));
        assert_eq!(updated.spec.max_concurrency, 3);
        assert_eq!(updated.headers["x-a"], "1");
        assert_eq!(updated.keys.all().count(), 1);
        let wrong = EndpointUpdate::default().domains([Domain::Wallet]);
        assert!(
            endpoint
                .updated(wrong, DEFAULT_TIMEOUT)
                .unwrap_err()
                .is_invalid()
        );
        let empty = EndpointUpdate::default().event_types([]);
        assert!(
            endpoint
                .updated(empty, DEFAULT_TIMEOUT)
                .unwrap_err()
                .is_invalid()
        );
    }
}
