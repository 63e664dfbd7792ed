//! One endpoint's verification settings: scheme and keys, timestamp tolerance, body limit, clock.
//!
//! ```
//! use std::time::Duration;
//! use webhook_receiver::Verifier;
//!
//! let verifier = Verifier::event_secrets(["old-org-secret", "new-org-secret"])?
//!     .tolerance(Duration::from_secs(120))
//!     .max_body_size(256 * 1024);
//! assert_eq!(verifier.style(), webhook_core::Style::Event);
//! assert_eq!(verifier.get_tolerance(), Some(Duration::from_secs(120)));
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use webhook_core::clock::{Clock, SystemClock};
use webhook_core::domain::Resource;
use webhook_core::keys::{EcdsaPublicKey, HmacSecret};
use webhook_core::scheme::StandardVerifyingKey;
use webhook_core::timestamp::DEFAULT_TOLERANCE;
use webhook_core::{KeyError, Style, TrustedKeys, Verified, VerifiedMessage, VerifyError};

use crate::{Rejection, VerifiedWebhook, shape};

/// The body size limit unless configured otherwise: 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// The longest a domain-style resource's `updatedAt` may lie in the past unless
/// configured otherwise: 4 hours. Seed 001's whole retry schedule (attempts 1 to 10)
/// spans 11,720 s (3 h 15 min 20 s), so every scheduled retry of a delivery passes, with
/// 44 minutes to spare for an attempt's own duration and a sender's backlog.
pub const DEFAULT_MAX_RESOURCE_AGE: Duration = Duration::from_secs(4 * 3600);

/// The tolerance used when the timestamp check is switched off through
/// [`DangerousVerifier::skip_timestamp_check`]: core's window check caps any tolerance at
/// `u32::MAX` seconds (about 136 years), which admits every realistic timestamp.
const SKIPPED_TOLERANCE: Duration = Duration::from_secs(u32::MAX as u64);

/// Verification settings for one endpoint: what it trusts and how strict it is.
///
/// Built once, shared by every request (the middleware keeps it in an `Arc`).
/// Verification is core's [`TrustedKeys::verify`]: the timestamp window is checked
/// first, then the signature, then the body's shape.
#[derive(Clone)]
pub struct Verifier {
    keys: TrustedKeys,
    tolerance: Duration,
    check_timestamp: bool,
    max_resource_age: Duration,
    max_body_size: usize,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    /// A verifier for already-loaded keys. Default tolerance is 300 s both ways, default
    /// body limit is 1 MiB, default clock is the system clock.
    #[must_use]
    pub fn new(keys: TrustedKeys) -> Self {
        Self {
            keys,
            tolerance: DEFAULT_TOLERANCE,
            check_timestamp: true,
            max_resource_age: DEFAULT_MAX_RESOURCE_AGE,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            clock: Arc::new(SystemClock),
        }
    }

    /// Event style (HMAC-SHA256, `X-Webhook-*` headers) with one or more organization
    /// secrets; several secrets cover a rotation (any one matching is enough).
    #[must_use]
    pub fn event(secrets: impl IntoIterator<Item = HmacSecret>) -> Self {
        Self::new(TrustedKeys::Event(secrets.into_iter().collect()))
    }

    /// Event style from secret strings, whose UTF-8 bytes are the HMAC keys (SPEC §1).
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty secret or an empty list.
    pub fn event_secrets<I, T>(secrets: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        TrustedKeys::parse(Style::Event, secrets).map(Self::new)
    }

    /// Domain style (ECDSA P-256 `Signature` header) with one or more public keys.
    #[must_use]
    pub fn domain(public_keys: impl IntoIterator<Item = EcdsaPublicKey>) -> Self {
        Self::new(TrustedKeys::Domain(public_keys.into_iter().collect()))
    }

    /// Domain style from the base64 SubjectPublicKeyInfo strings customers are given
    /// (they start `MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE`).
    ///
    /// # Errors
    /// [`KeyError`] when a key is not valid base64 SPKI of a P-256 key, or the list is empty.
    pub fn domain_public_keys<I, T>(public_keys: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        TrustedKeys::parse(Style::Domain, public_keys).map(Self::new)
    }

    /// Standard Webhooks with `v1` secrets and/or `v1a` public keys.
    #[must_use]
    pub fn standard(keys: impl IntoIterator<Item = StandardVerifyingKey>) -> Self {
        Self::new(TrustedKeys::Standard(keys.into_iter().collect()))
    }

    /// Standard Webhooks from strings: `whsec_…` secrets (`v1`) and `whpk_…` Ed25519
    /// public keys (`v1a`), in any mix.
    ///
    /// # Errors
    /// [`KeyError`] when a string has neither prefix, is not valid base64 or has the wrong
    /// length, or the list is empty.
    pub fn standard_keys<I, T>(keys: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        TrustedKeys::parse(Style::Standard, keys).map(Self::new)
    }

    /// How far a timestamp may lie from now, into the past or the future.
    /// Default is 300 s.
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Domain style: the oldest a resource's signed `updatedAt` may be. Default is 4 hours
    /// ([`DEFAULT_MAX_RESOURCE_AGE`]); other styles ignore it.
    ///
    /// Seed 001 signs only the payload, not the envelope timestamp, so a captured
    /// delivery can be re-wrapped with a fresh timestamp; the resource's `updatedAt` is
    /// inside the signed payload and is what bounds a replay: older than this is refused
    /// with 401 `stale_resource`, and the middleware keeps domain dedup keys at least
    /// this long (plus the tolerance), so a replay is caught by dedup or by age.
    ///
    /// **Redrives.** A delivery redriven by hand after its resource's `updatedAt` is older
    /// than this is refused too (401, which the sender does not retry). Raise the age on
    /// the receiver for the redrive, or have the platform republish the resource with a
    /// fresh `updatedAt`.
    #[must_use]
    pub fn max_resource_age(mut self, age: Duration) -> Self {
        self.max_resource_age = age;
        self
    }

    /// The largest body accepted, in bytes; larger requests get 413 before the body is
    /// buffered. Default is 1 MiB ([`DEFAULT_MAX_BODY_SIZE`]).
    #[must_use]
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The clock that timestamps are compared with. Default is the system clock; tests
    /// use [`ManualClock`](webhook_core::clock::ManualClock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Settings that weaken verification, each named for what it gives up.
    #[must_use]
    pub fn dangerous(self) -> DangerousVerifier {
        DangerousVerifier { verifier: self }
    }

    /// The style this verifier accepts.
    #[must_use]
    pub fn style(&self) -> Style {
        self.keys.style()
    }

    /// The timestamp tolerance, or `None` when the check is switched off.
    #[must_use]
    pub fn get_tolerance(&self) -> Option<Duration> {
        self.check_timestamp.then_some(self.tolerance)
    }

    /// Domain style: the maximum age of a resource's `updatedAt`, or `None` when the
    /// verifier is of another style or its freshness checks are switched off.
    #[must_use]
    pub fn get_max_resource_age(&self) -> Option<Duration> {
        (self.check_timestamp && self.style() == Style::Domain).then_some(self.max_resource_age)
    }

    /// The body size limit in bytes.
    #[must_use]
    pub fn get_max_body_size(&self) -> usize {
        self.max_body_size
    }

    /// How long after first sight a captured copy of a request could still pass the
    /// freshness checks, so how long its dedup key must be kept for dedup to catch it.
    ///
    /// - Event style and Standard Webhooks sign their timestamp: it may be up to one
    ///   tolerance ahead of the clock when first seen and is accepted until one tolerance
    ///   after it, so twice the tolerance.
    /// - Domain style signs only the payload: a replay passes as long as the resource's
    ///   `updatedAt` is younger than the maximum resource age, and `updatedAt` may be up
    ///   to one tolerance ahead when first seen, so the maximum age plus the tolerance.
    ///
    /// `None` when the freshness checks are off (replays are then only caught by dedup).
    #[must_use]
    pub fn replay_horizon(&self) -> Option<Duration> {
        let tolerance = self.get_tolerance()?;
        Some(match self.get_max_resource_age() {
            Some(age) => age.saturating_add(tolerance),
            None => tolerance.saturating_mul(2),
        })
    }

    /// Verifies one request's headers and complete body against the configured keys at
    /// the clock's current time: core's checks (timestamp window, signature, body shape),
    /// then, for the domain style, the age of the resource's `updatedAt`.
    ///
    /// The body limit is not checked here; the middleware applies it while reading.
    ///
    /// # Errors
    /// [`Rejection::Verify`] with core's reason; [`Rejection::StaleResource`] or
    /// [`Rejection::MalformedUpdatedAt`] for a domain resource whose `updatedAt` is out
    /// of bounds or unreadable. [`Rejection::status`] is the HTTP answer.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, Rejection> {
        let tolerance = if self.check_timestamp {
            self.tolerance
        } else {
            SKIPPED_TOLERANCE
        };
        let now = self.clock.unix_seconds();
        let verified = self.keys.verify(headers, body, now, tolerance)?;
        if let Some(max_age) = self.get_max_resource_age() {
            check_resource_age(&verified, now, max_age, tolerance)?;
        }
        Ok(verified)
    }

    /// What the middleware calls: the same checks as [`Verifier::verify`], in the same
    /// order and with the same answers, but for the event style the body's shape is
    /// checked without decoding the event (see [`crate::shape`]); the handler decodes it
    /// if and when it reads it.
    pub(crate) fn verify_request(
        &self,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<VerifiedWebhook, Rejection> {
        let TrustedKeys::Event(_) = &self.keys else {
            return self
                .verify(headers, &body)
                .map(|verified| VerifiedWebhook::new(verified, body));
        };
        let tolerance = if self.check_timestamp {
            self.tolerance
        } else {
            SKIPPED_TOLERANCE
        };
        let now = self.clock.unix_seconds();
        let timestamp = self.keys.authenticate(headers, &body, now, tolerance)?;
        let head = shape::event_head(&body)
            .map_err(|error| VerifyError::malformed_body("event", &error))?;
        Ok(VerifiedWebhook::event_checked(head, timestamp, body))
    }

    /// The clock in use.
    pub(crate) fn clock_ref(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// Refuses a domain resource whose `updatedAt` is older than `max_age` or further than
/// `tolerance` in the future.
fn check_resource_age(
    verified: &Verified,
    now: i64,
    max_age: Duration,
    tolerance: Duration,
) -> Result<(), Rejection> {
    let VerifiedMessage::Domain { resource, .. } = &verified.message else {
        return Ok(());
    };
    let updated_at = match resource {
        Resource::Transaction(transaction) => transaction.updated_at,
        Resource::Wallet(wallet) => wallet.updated_at,
        Resource::Approval(approval) => approval.updated_at,
        // Unknown domains: core's dedup key already required a string `updatedAt`.
        Resource::Unknown(json) => json
            .get("updatedAt")
            .and_then(serde_json::Value::as_str)
            .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
            .ok_or(Rejection::MalformedUpdatedAt)?,
        _ => return Err(Rejection::MalformedUpdatedAt),
    };
    let age = i128::from(now) - i128::from(updated_at.unix_timestamp());
    let too_old = age > i128::from(max_age.as_secs());
    let too_new = -age > i128::from(tolerance.as_secs());
    if too_old || too_new {
        return Err(Rejection::StaleResource);
    }
    Ok(())
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `TrustedKeys`' Debug prints only algorithms and public keys.
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("tolerance", &self.get_tolerance())
            .field("max_resource_age", &self.get_max_resource_age())
            .field("max_body_size", &self.max_body_size)
            .field("clock", &self.clock)
            .finish()
    }
}

/// The risky settings of a [`Verifier`], reached through [`Verifier::dangerous`].
#[derive(Debug)]
pub struct DangerousVerifier {
    verifier: Verifier,
}

impl DangerousVerifier {
    /// Accepts any timestamp (up to about 136 years away) and, for the domain style, any
    /// resource age, so a captured request stays valid for ever as far as freshness
    /// goes; only the dedup store's memory stands between it and a replay. Meant for
    /// replaying recorded deliveries in tests and tools, never for a public endpoint.
    #[must_use]
    pub fn skip_timestamp_check(mut self) -> Verifier {
        self.verifier.check_timestamp = false;
        self.verifier
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use webhook_core::clock::ManualClock;
    use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey};
    use webhook_core::{Outgoing, SigningKeys};

    const BODY: &[u8] = br#"{"id":"e1","type":"wallet.created","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{}}"#;

    fn headers(request: &webhook_core::SignedRequest) -> HeaderMap {
        request.headers.iter().cloned().collect()
    }

    #[test]
    fn parses_each_key_form() {
        assert!(Verifier::event_secrets(["a", "b"]).is_ok());
        assert!(matches!(
            Verifier::event_secrets([""]),
            Err(KeyError::Empty { .. })
        ));
        assert!(matches!(
            Verifier::event_secrets(Vec::<String>::new()),
            Err(KeyError::Empty { .. })
        ));

        let (key, _) = EcdsaSigningKey::generate().unwrap();
        let spki = key.public_key().to_spki_base64();
        assert_eq!(
            Verifier::domain_public_keys([spki.as_str()])
                .unwrap()
                .style(),
            Style::Domain
        );
        assert!(Verifier::domain_public_keys(["not base64!"]).is_err());

        let secret = HmacSecret::generate().unwrap();
        let ed = Ed25519SigningKey::generate().unwrap();
        let whsec = secret.to_whsec();
        let whpk = ed.public_key().to_whpk();
        let verifier = Verifier::standard_keys([whsec.as_str(), whpk.as_str()]).unwrap();
        assert_eq!(verifier.style(), Style::Standard);
        assert!(Verifier::standard_keys(["whsec_%%%"]).is_err());
        assert!(matches!(
            Verifier::standard_keys(["plain"]),
            Err(KeyError::MissingPrefix { .. })
        ));
    }

    #[test]
    fn domain_resources_need_a_readable_updated_at_within_the_age() {
        let (key, _) = EcdsaSigningKey::generate().unwrap();
        let spki = key.public_key().to_spki_base64();
        let signer = SigningKeys::Domain(Box::new(key));
        let clock = ManualClock::at_unix(1_746_714_600); // 2025-05-08T14:30:00Z
        let verifier = Verifier::domain_public_keys([spki.as_str()])
            .unwrap()
            .clock(clock.clone());
        assert_eq!(
            verifier.get_max_resource_age(),
            Some(DEFAULT_MAX_RESOURCE_AGE)
        );
        assert_eq!(
            verifier.replay_horizon(),
            Some(DEFAULT_MAX_RESOURCE_AGE + Duration::from_secs(300))
        );
        let at = time::OffsetDateTime::from_unix_timestamp(1_746_714_600).unwrap();
        let ledger = webhook_core::domain::Domain::from("LEDGER");
        let verify = |resource: &str| {
            let outgoing = Outgoing::new("m1", resource.as_bytes()).with_domain(&ledger);
            let request = signer.sign(&outgoing, at).unwrap();
            verifier.verify(&headers(&request), &request.body)
        };
        // An unknown domain is accepted with a fresh updatedAt…
        assert!(verify(r#"{"id":"l1","updatedAt":"2025-05-08T14:00:00Z"}"#).is_ok());
        // …refused when it cannot be read, or is too old.
        assert_eq!(
            verify(r#"{"id":"l1","updatedAt":"yesterday"}"#).unwrap_err(),
            Rejection::MalformedUpdatedAt
        );
        assert_eq!(
            verify(r#"{"id":"l1","updatedAt":"2025-05-08T10:29:59Z"}"#).unwrap_err(),
            Rejection::StaleResource
        );
        // Missing: core already refuses it (no dedup key without updatedAt).
        assert_eq!(verify(r#"{"id":"l1"}"#).unwrap_err().status(), 400);
        // Without the freshness checks, age is not checked either.
        let lax = verifier.clone().dangerous().skip_timestamp_check();
        assert_eq!(lax.get_max_resource_age(), None);
        let outgoing = Outgoing::new("m1", br#"{"id":"l1","updatedAt":"2020-01-01T00:00:00Z"}"#)
            .with_domain(&ledger);
        let request = signer.sign(&outgoing, at).unwrap();
        assert!(lax.verify(&headers(&request), &request.body).is_ok());
        // Event style has no resource age.
        assert_eq!(
            Verifier::event_secrets(["s"])
                .unwrap()
                .get_max_resource_age(),
            None
        );
    }

    #[test]
    fn the_middlewares_path_answers_as_verify_does() {
        let signer = SigningKeys::Event(vec![HmacSecret::from_utf8("s").unwrap()]);
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let clock = ManualClock::at_unix(1_700_000_000);
        let verifier = Verifier::event_secrets(["s"]).unwrap().clock(clock.clone());
        let bodies: [&[u8]; 5] = [
            BODY,
            br#"{"id":"e1","type":"wallet.created","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":[1e999]}"#,
            br#"{"id":"e1","type":"wallet.created","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z"}"#,
            b"not json",
            // Not UTF-8 inside a string of `data`.
            b"{\"id\":\"e1\",\"type\":\"wallet.created\",\"idempotencyKey\":\"k1\",\"organizationId\":\"o1\",\"createdAt\":\"2025-05-08T14:30:00Z\",\"data\":{\"a\":\"\xff\"}}",
        ];
        for body in bodies {
            let signed = signer.sign(&Outgoing::new("e1", body), at).unwrap();
            let mut forged = headers(&signed);
            forged.insert(
                "x-webhook-signature",
                http::HeaderValue::from_static(
                    "0000000000000000000000000000000000000000000000000000000000000000",
                ),
            );
            for (request_headers, offset) in [
                (headers(&signed), 0),
                (forged, 0),
                (headers(&signed), 301),
                (HeaderMap::new(), 0),
            ] {
                clock.set_unix(1_700_000_000 + offset);
                let eager = verifier
                    .verify(&request_headers, body)
                    .map(|verified| (verified.dedup_key, verified.message.kind().to_owned()));
                let checked = verifier
                    .verify_request(&request_headers, Bytes::copy_from_slice(body))
                    .map(|webhook| (webhook.dedup_key().to_owned(), webhook.kind().to_owned()));
                assert_eq!(eager, checked, "{}", String::from_utf8_lossy(body));
            }
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let verifier = Verifier::event_secrets(["super-secret-value"]).unwrap();
        let text = format!("{verifier:?}");
        assert!(!text.contains("super-secret-value"), "{text}");
        assert!(text.contains("tolerance"));
    }

    #[test]
    fn uses_injected_clock_and_tolerance() {
        let signer = SigningKeys::Event(vec![HmacSecret::from_utf8("s").unwrap()]);
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let request = signer.sign(&Outgoing::new("e1", BODY), at).unwrap();
        let clock = ManualClock::at_unix(1_700_000_000);
        let verifier = Verifier::event_secrets(["s"])
            .unwrap()
            .clock(clock.clone())
            .tolerance(Duration::from_secs(10));
        assert!(verifier.verify(&headers(&request), BODY).is_ok());
        clock.advance(Duration::from_secs(11));
        assert_eq!(
            verifier
                .verify(&headers(&request), BODY)
                .unwrap_err()
                .code(),
            "timestamp_out_of_window"
        );
        assert_eq!(verifier.replay_horizon(), Some(Duration::from_secs(20)));

        let lax = verifier.dangerous().skip_timestamp_check();
        clock.advance(Duration::from_secs(10 * 365 * 86_400));
        assert!(lax.verify(&headers(&request), BODY).is_ok());
        assert_eq!(lax.get_tolerance(), None);
        assert_eq!(lax.replay_horizon(), None);
    }
}
