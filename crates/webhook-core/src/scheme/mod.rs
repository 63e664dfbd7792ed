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
use crate::{KeyError, SignError, VerifyError};

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

impl StandardSigningKey {
    /// Parses `whsec_…` (a `v1` secret) or `whsk_…` (a `v1a` Ed25519 key).
    ///
    /// # Errors
    /// [`KeyError`] when the text has neither prefix or its key is invalid.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.trim_start().starts_with("whsk_") {
            Ed25519SigningKey::from_whsk(text).map(Self::Asymmetric)
        } else {
            HmacSecret::from_whsec(text).map(Self::Symmetric)
        }
    }
}

impl StandardVerifyingKey {
    /// Parses `whsec_…` (a `v1` secret) or `whpk_…` (a `v1a` Ed25519 public key).
    ///
    /// # Errors
    /// [`KeyError`] when the text has neither prefix or its key is invalid.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.trim_start().starts_with("whpk_") {
            Ed25519PublicKey::from_whpk(text).map(Self::Asymmetric)
        } else {
            HmacSecret::from_whsec(text).map(Self::Symmetric)
        }
    }
}

/// Parses every string with `parse`, refusing an empty list.
fn parse_all<T, S: AsRef<str>>(
    texts: impl IntoIterator<Item = S>,
    what: &'static str,
    parse: impl Fn(&str) -> Result<T, KeyError>,
) -> Result<Vec<T>, KeyError> {
    let parsed = texts
        .into_iter()
        .map(|text| parse(text.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Err(KeyError::Empty { what });
    }
    Ok(parsed)
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

    /// Parses signing keys from their text forms: event style, secrets (their UTF-8 bytes);
    /// domain style, one base64 PKCS#8 private key; standard, `whsec_…` / `whsk_…`.
    ///
    /// # Errors
    /// [`KeyError`] when a key is invalid, the list is empty, or the domain style gets
    /// more than one key.
    pub fn parse<S: AsRef<str>>(
        style: Style,
        texts: impl IntoIterator<Item = S>,
    ) -> Result<Self, KeyError> {
        match style {
            Style::Event => {
                parse_all(texts, "event secret list", HmacSecret::from_utf8).map(Self::Event)
            }
            Style::Domain => {
                let keys = parse_all(
                    texts,
                    "domain private key",
                    EcdsaSigningKey::from_pkcs8_base64,
                )?;
                <[_; 1]>::try_from(keys)
                    .map(|[key]| Self::Domain(Box::new(key)))
                    .map_err(|keys| KeyError::InvalidLength {
                        what: "domain private key list",
                        expected: "exactly one key",
                        actual: keys.len(),
                    })
            }
            Style::Standard => parse_all(
                texts,
                "Standard Webhooks key list",
                StandardSigningKey::parse,
            )
            .map(Self::Standard),
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
    /// Parses trusted keys from their text forms: event style, secrets (their UTF-8 bytes);
    /// domain style, base64 SPKI public keys; standard, `whsec_…` / `whpk_…`, in any mix.
    ///
    /// # Errors
    /// [`KeyError`] when a key is invalid or the list is empty.
    pub fn parse<S: AsRef<str>>(
        style: Style,
        texts: impl IntoIterator<Item = S>,
    ) -> Result<Self, KeyError> {
        match style {
            Style::Event => {
                parse_all(texts, "event secret list", HmacSecret::from_utf8).map(Self::Event)
            }
            Style::Domain => parse_all(
                texts,
                "domain public key list",
                EcdsaPublicKey::from_spki_base64,
            )
            .map(Self::Domain),
            Style::Standard => parse_all(
                texts,
                "Standard Webhooks key list",
                StandardVerifyingKey::parse,
            )
            .map(Self::Standard),
        }
    }

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
        match self {
            Self::Event(secrets) => {
                let timestamp = event_hmac::authenticate(secrets, headers, body, now, tolerance)?;
                event_hmac::decode(body, timestamp)
            }
            Self::Domain(keys) => {
                let (envelope, timestamp) =
                    domain_ecdsa::authenticate(keys, headers, body, now, tolerance)?;
                domain_ecdsa::decode(envelope, timestamp)
            }
            Self::Standard(keys) => {
                let timestamp = standard::authenticate(keys, headers, body, now, tolerance)?;
                standard::decode(headers, body, timestamp)
            }
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
            Self::Domain(keys) => domain_ecdsa::authenticate(keys, headers, body, now, tolerance)
                .map(|(_, timestamp)| timestamp),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_their_text_forms() {
        let (ecdsa, pkcs8) = EcdsaSigningKey::generate().unwrap();
        let private = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &*pkcs8);
        let public = ecdsa.public_key().to_spki_base64();
        let whsec = HmacSecret::generate().unwrap().to_whsec();
        let ed = Ed25519SigningKey::generate().unwrap();
        let (whsk, whpk) = (ed.to_whsk(), ed.public_key().to_whpk());

        assert_eq!(
            SigningKeys::parse(Style::Event, ["s1", "s2"])
                .unwrap()
                .style(),
            Style::Event
        );
        assert_eq!(
            SigningKeys::parse(Style::Domain, [&private])
                .unwrap()
                .style(),
            Style::Domain
        );
        let standard =
            SigningKeys::parse(Style::Standard, [whsec.as_str(), whsk.as_str()]).unwrap();
        assert!(matches!(&standard, SigningKeys::Standard(keys) if keys.len() == 2));
        assert!(matches!(
            TrustedKeys::parse(Style::Standard, [whsec.as_str(), whpk.as_str()]).unwrap(),
            TrustedKeys::Standard(keys) if matches!(keys[..], [StandardVerifyingKey::Symmetric(_), StandardVerifyingKey::Asymmetric(_)])
        ));
        assert_eq!(
            TrustedKeys::parse(Style::Domain, [&public])
                .unwrap()
                .style(),
            Style::Domain
        );

        let empty: [&str; 0] = [];
        assert!(matches!(
            SigningKeys::parse(Style::Event, empty),
            Err(KeyError::Empty { .. })
        ));
        assert!(matches!(
            TrustedKeys::parse(Style::Domain, empty),
            Err(KeyError::Empty { .. })
        ));
        assert!(SigningKeys::parse(Style::Domain, [&private, &private]).is_err());
        assert!(matches!(
            TrustedKeys::parse(Style::Standard, ["secret"]),
            Err(KeyError::MissingPrefix { .. })
        ));
        assert!(
            TrustedKeys::parse(Style::Domain, [&private]).is_err(),
            "a private key is no public key"
        );
        assert!(SigningKeys::parse(Style::Domain, [&public]).is_err());
    }
}
