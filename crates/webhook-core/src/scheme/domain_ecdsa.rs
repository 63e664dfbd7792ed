//! Domain style (SPEC §2): the `{domain, timestamp, payload}` envelope, with a
//! `Signature` header holding base64 of the DER ECDSA P-256/SHA-256 signature over the
//! ASCII bytes of the `payload` field's value.
//!
//! The envelope timestamp is not signed; replay defence rests on the window plus
//! dedup on the resource's `id` and `updatedAt`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};
use time::OffsetDateTime;

use super::{SignedRequest, Style, Verified, VerifiedMessage, header};
use crate::domain::{Domain, Envelope, Resource, dedup_key};
use crate::keys::{EcdsaPublicKey, EcdsaSigningKey};
use crate::timestamp::check_window;
use crate::{SignError, VerifyError};

/// `Signature`.
pub const SIGNATURE: &str = "signature";
static SIGNATURE_NAME: HeaderName = HeaderName::from_static(SIGNATURE);

/// A DER ECDSA P-256 signature is at most 72 bytes; base64 of that is 96 characters.
const MAX_SIGNATURE_BASE64: usize = 96;

pub(super) fn sign(
    key: &EcdsaSigningKey,
    domain: &Domain,
    resource_json: &[u8],
    at: OffsetDateTime,
) -> Result<SignedRequest, SignError> {
    if !is_json_object(resource_json) {
        return Err(SignError::ResourceNotObject);
    }
    let envelope = Envelope::new(domain.clone(), at, resource_json);
    let signature = STANDARD.encode(key.sign(envelope.payload.as_bytes())?);
    let body = serde_json::to_vec(&envelope).map_err(|_| SignError::Crypto)?;
    Ok(SignedRequest {
        headers: vec![
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (SIGNATURE_NAME.clone(), header::value(signature)?),
        ],
        body,
    })
}

/// Whether `json` is one JSON object (and nothing after it), checked without building it.
fn is_json_object(json: &[u8]) -> bool {
    struct ObjectOnly;
    impl<'de> serde::de::Visitor<'de> for ObjectOnly {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(())
        }
    }
    let mut reader = serde_json::Deserializer::from_slice(json);
    serde::Deserializer::deserialize_map(&mut reader, ObjectOnly).is_ok() && reader.end().is_ok()
}

fn parse_envelope(body: &[u8]) -> Result<Envelope, VerifyError> {
    serde_json::from_slice(body).map_err(|e| VerifyError::malformed_body("envelope", &e))
}

/// Parses the envelope and checks its timestamp and signature; returns the envelope with
/// its timestamp, so that [`decode`] does not parse the body again.
pub(super) fn authenticate(
    keys: &[EcdsaPublicKey],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(Envelope, i64), VerifyError> {
    if keys.is_empty() {
        return Err(VerifyError::NoKeys);
    }
    let envelope = parse_envelope(body)?;
    let timestamp = envelope.unix_timestamp()?;
    check_window(timestamp, now, tolerance)?;

    let signature_text = header::signature(headers, &SIGNATURE_NAME)?;
    let signature = (signature_text.len() <= MAX_SIGNATURE_BASE64)
        .then(|| STANDARD.decode(signature_text).ok())
        .flatten()
        .ok_or(VerifyError::NoMatchingSignature)?;
    if !keys
        .iter()
        .any(|key| key.verify(envelope.payload.as_bytes(), &signature))
    {
        return Err(VerifyError::NoMatchingSignature);
    }
    Ok((envelope, timestamp))
}

pub(super) fn decode(envelope: Envelope, timestamp: i64) -> Result<Verified, VerifyError> {
    let resource_json = envelope.payload_bytes()?;
    let resource = Resource::from_json(&envelope.domain, &resource_json)?;
    Ok(Verified {
        style: Style::Domain,
        timestamp,
        dedup_key: dedup_key(&resource_json)?,
        message: VerifiedMessage::Domain { envelope, resource },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_a_json_object_is_signed_as_a_resource() {
        let (key, _) = EcdsaSigningKey::generate().unwrap();
        let at = OffsetDateTime::UNIX_EPOCH;
        for object in [&b"{}"[..], br#" {"id":"w1","a":[1,{"b":null}]} "#] {
            assert!(sign(&key, &Domain::Wallet, object, at).is_ok());
        }
        for not_object in [
            &b"[]"[..],
            br#"[{"id":"w1"}]"#,
            br#""{}""#,
            b"42",
            b"null",
            b"true",
            b"",
            b"{",
            br#"{"id":"w1"} {}"#,
            br#"{"id":"w1"}]"#,
            b"not json",
        ] {
            assert_eq!(
                sign(&key, &Domain::Wallet, not_object, at),
                Err(SignError::ResourceNotObject),
                "{}",
                String::from_utf8_lossy(not_object)
            );
        }
    }
}
