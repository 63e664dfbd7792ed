//! Signature schemes behind one interface: the sender signs with [`SigningKeys`], the
//! receiver verifies with [`TrustedKeys`], and neither cares which style an endpoint uses.
//!
//! | style | headers | signed bytes | algorithm |
//! |---|---|---|---|
//! | [`Style::Event`] | `X-Webhook-Timestamp`, `X-Webhook-Signature` | `{timestamp}.{body}` | HMAC-SHA256, hex |
//! | [`Style::Domain`] | `Signature` | the envelope's `payload` string | ECDSA P-256 SHA-256, DER, base64 |
//! | [`Style::Standard`] | `webhook-id`, `webhook-timestamp`, `webhook-signature` | `{id}.{timestamp}.{body}` | `v1` HMAC-SHA256 / `v1a` Ed25519, base64 |
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::keys::HmacSecret;
//! use webhook_core::scheme::{Outgoing, SigningKeys, VerifiedMessage};
//!
//! let keys = SigningKeys::Event(vec![HmacSecret::from_utf8("org-secret")?]);
//! let body = br#"{"id":"e1","type":"wallet.created","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{}}"#;
//! let at = time::OffsetDateTime::from_unix_timestamp(1_746_714_600).unwrap();
//! let request = keys.sign(&Outgoing::new("e1", body), at)?;
//!
//! let mut headers = http::HeaderMap::new();
//! headers.extend(request.headers.clone());
//! let verified = keys.trusted_keys().verify(&headers, &request.body, 1_746_714_660, Duration::from_secs(300))?;
//! assert_eq!(verified.dedup_key, "k1");
//! assert!(matches!(verified.message, VerifiedMessage::Event(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod domain_ecdsa;
mod event_hmac;
mod header;
mod standard;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Domain, Envelope, Resource};
use crate::event::Event;
use crate::keys::{
    EcdsaPublicKey, EcdsaSigningKey, Ed25519PublicKey, Ed25519SigningKey, HmacSecret,
};
use crate::{SignError, VerifyError};

pub use domain_ecdsa::SIGNATURE as DOMAIN_SIGNATURE_HEADER;
pub use event_hmac::{SIGNATURE as EVENT_SIGNATURE_HEADER, TIMESTAMP as EVENT_TIMESTAMP_HEADER};
pub use standard::{
    ID as STANDARD_ID_HEADER, SIGNATURE as STANDARD_SIGNATURE_HEADER,
    TIMESTAMP as STANDARD_TIMESTAMP_HEADER,
};

/// At most this many signatures are read from one header; more is a malformed request.
pub const MAX_SIGNATURES: usize = 16;

/// The wire style of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Event objects signed with HMAC-SHA256 in `X-Webhook-*` headers (seed 000).
    Event,
    /// `{domain, timestamp, payload}` envelopes signed with ECDSA P-256 (seed 001).
    Domain,
    /// Standard Webhooks `webhook-*` headers, `v1` and `v1a`.
    Standard,
}

impl Style {
    /// The lowercase name: `event`, `domain` or `standard`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Domain => "domain",
            Self::Standard => "standard",
        }
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A style name that is not `event`, `domain` or `standard`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("style must be one of event, domain, standard")]
pub struct UnknownStyle;

impl FromStr for Style {
    type Err = UnknownStyle;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "event" => Ok(Self::Event),
            "domain" => Ok(Self::Domain),
            "standard" => Ok(Self::Standard),
            _ => Err(UnknownStyle),
        }
    }
}

/// What the sender hands a scheme to sign.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The message id: stable across retries (`webhook-id` in Standard Webhooks).
    pub id: &'a str,
    /// The event JSON (event and standard styles) or the resource JSON (domain style).
    pub content: &'a [u8],
    /// The domain, required by the domain style.
    pub domain: Option<&'a Domain>,
}

impl<'a> Outgoing<'a> {
    /// A message without a domain (event and standard styles).
    #[must_use]
    pub fn new(id: &'a str, content: &'a [u8]) -> Self {
        Self {
            id,
            content,
            domain: None,
        }
    }

    /// Sets the domain (domain style).
    #[must_use]
    pub fn with_domain(mut self, domain: &'a Domain) -> Self {
        self.domain = Some(domain);
        self
    }
}

/// A signed request, ready to POST: its headers (including `Content-Type`) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// Headers to send, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The exact body that was signed.
    pub body: Vec<u8>,
}

/// A Standard Webhooks signing key: symmetric `v1` or asymmetric `v1a`.
#[derive(Debug, Clone)]
pub enum StandardSigningKey {
    /// `v1`: HMAC-SHA256 with a `whsec_` secret.
    Symmetric(HmacSecret),
    /// `v1a`: Ed25519 with a `whsk_` key.
    Asymmetric(Ed25519SigningKey),
}

/// A Standard Webhooks verification key.
#[derive(Debug, Clone)]
pub enum StandardVerifyingKey {
    /// `v1`: HMAC-SHA256 with a `whsec_` secret.
    Symmetric(HmacSecret),
    /// `v1a`: Ed25519 with a `whpk_` public key.
    Asymmetric(Ed25519PublicKey),
}

/// What an endpoint signs with. Several secrets sign at once during a rotation.
#[derive(Debug, Clone)]
pub enum SigningKeys {
    /// Event style: one signature per secret, comma-separated.
    Event(Vec<HmacSecret>),
    /// Domain style: one key pair per endpoint.
    Domain(Box<EcdsaSigningKey>),
    /// Standard Webhooks: one entry per key, space-separated.
    Standard(Vec<StandardSigningKey>),
}

impl SigningKeys {
    /// The style these keys sign for.
    #[must_use]
    pub fn style(&self) -> Style {
        match self {
            Self::Event(_) => Style::Event,
            Self::Domain(_) => Style::Domain,
            Self::Standard(_) => Style::Standard,
        }
    }

    /// Signs one attempt at time `at`. Every attempt is signed afresh with its own time.
    ///
    /// # Errors
    /// [`SignError`] when no key is configured, the domain is missing (domain style),
    /// the id is not usable (standard style) or the signing operation fails.
    pub fn sign(
        &self,
        message: &Outgoing<'_>,
        at: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        let unix = at.unix_timestamp();
        match self {
            Self::Event(secrets) => event_hmac::sign(secrets, message.content, unix),
            Self::Domain(key) => {
                let domain = message.domain.ok_or(SignError::MissingDomain)?;
                domain_ecdsa::sign(key, domain, message.content, at)
            }
            Self::Standard(keys) => standard::sign(keys, message.id, message.content, unix),
        }
    }

    /// The keys a receiver of these signatures trusts (public keys for asymmetric schemes).
    #[must_use]
    pub fn trusted_keys(&self) -> TrustedKeys {
        match self {
            Self::Event(secrets) => TrustedKeys::Event(secrets.clone()),
            Self::Domain(key) => TrustedKeys::Domain(vec![key.public_key()]),
            Self::Standard(keys) => TrustedKeys::Standard(
                keys.iter()
                    .map(|key| match key {
                        StandardSigningKey::Symmetric(secret) => {
                            StandardVerifyingKey::Symmetric(secret.clone())
                        }
                        StandardSigningKey::Asymmetric(key) => {
                            StandardVerifyingKey::Asymmetric(key.public_key())
                        }
                    })
                    .collect(),
            ),
        }
    }
}

/// What a receiver trusts. A request is accepted if any signature matches any key.
#[derive(Debug, Clone)]
pub enum TrustedKeys {
    /// Event style: the organization's secrets (several during a rotation).
    Event(Vec<HmacSecret>),
    /// Domain style: the endpoint's public keys (several during a rotation).
    Domain(Vec<EcdsaPublicKey>),
    /// Standard Webhooks: `whsec_` secrets and/or `whpk_` public keys.
    Standard(Vec<StandardVerifyingKey>),
}

impl TrustedKeys {
    /// The style these keys verify.
    #[must_use]
    pub fn style(&self) -> Style {
        match self {
            Self::Event(_) => Style::Event,
            Self::Domain(_) => Style::Domain,
            Self::Standard(_) => Style::Standard,
        }
    }

    /// Verifies one request: timestamp window first, then the signature, then the body's
    /// shape. `now` is Unix seconds from the caller's clock.
    ///
    /// # Errors
    /// [`VerifyError`]; its [`status`](VerifyError::status) is the HTTP answer.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
        tolerance: Duration,
    ) -> Result<Verified, VerifyError> {
        let timestamp = self.authenticate(headers, body, now, tolerance)?;
        match self {
            Self::Event(_) => event_hmac::decode(body, timestamp),
            Self::Domain(_) => domain_ecdsa::decode(body, timestamp),
            Self::Standard(_) => standard::decode(headers, body, timestamp),
        }
    }

    /// Checks only the timestamp window and the signature, without decoding the body
    /// (for the domain style the envelope is parsed, since it carries both). Returns the
    /// signed timestamp. [`TrustedKeys::verify`] is this plus decoding.
    ///
    /// # Errors
    /// [`VerifyError`]; its [`status`](VerifyError::status) is the HTTP answer.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
        tolerance: Duration,
    ) -> Result<i64, VerifyError> {
        match self {
            Self::Event(secrets) => {
                event_hmac::authenticate(secrets, headers, body, now, tolerance)
            }
            Self::Domain(keys) => domain_ecdsa::authenticate(keys, headers, body, now, tolerance),
            Self::Standard(keys) => standard::authenticate(keys, headers, body, now, tolerance),
        }
    }
}

/// A request whose signature, timestamp and body shape have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The style it arrived in.
    pub style: Style,
    /// The signed timestamp (Unix seconds); for the domain style, the envelope's.
    pub timestamp: i64,
    /// What the receiver deduplicates on: `idempotencyKey` (event), resource
    /// `id@updatedAt` (domain), `webhook-id` (standard).
    pub dedup_key: String,
    /// The decoded message.
    pub message: VerifiedMessage,
}

/// The decoded content of a verified request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VerifiedMessage {
    /// An event-style event.
    Event(Box<Event>),
    /// A domain-style envelope and its decoded resource.
    Domain {
        /// The envelope as received.
        envelope: Envelope,
        /// The typed resource from its payload.
        resource: Resource,
    },
    /// A Standard Webhooks message.
    Standard {
        /// The `webhook-id`.
        id: String,
        /// The JSON body.
        payload: serde_json::Value,
    },
}

impl VerifiedMessage {
    /// The event type (event style), the domain (domain style) or the body's `type` field
    /// (standard style, empty if absent).
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Event(event) => event.event_type.as_str(),
            Self::Domain { envelope, .. } => envelope.domain.as_str(),
            Self::Standard { payload, .. } => payload
                .get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
        }
    }
}
